//! The errors of the fused loss-and-gradient functions: each returns the same `LossError` as
//! its loss-only form, plus a length check of the gradient slice, and writes nothing to the
//! gradient (or, in place, to the logits) when it fails. Each group has a valid control call.

use losskit::{CrossEntropy, LossError, Reduction};

use crate::common::same_error;
use crate::registry::{Domain, POINTWISE};

const SENTINEL: f32 = 7.25;
const MEAN: Reduction = Reduction::Mean;

use crate::common::length_mismatch as len_err;

/// Runs `call` on a sentinel-filled gradient of `n` elements; returns its result and whether
/// the gradient was left untouched.
fn with_grad(
    n: usize,
    call: impl FnOnce(&mut [f32]) -> Result<f32, LossError>,
) -> (Result<f32, LossError>, bool) {
    let mut grad = vec![SENTINEL; n];
    let r = call(&mut grad);
    (r, grad.iter().all(|&g| g == SENTINEL))
}

fn expect_err(r: (Result<f32, LossError>, bool), want: LossError, words: &str) {
    let (r, untouched) = r;
    let err = r.expect_err("an error");
    assert!(same_error(&err, &want), "expected {want:?}, got {err:?}");
    assert!(
        err.to_string().contains(words),
        "{err} should mention {words:?}"
    );
    assert!(untouched, "the gradient was written despite {err}");
}

#[test]
fn pointwise_gradients_check_lengths_and_parameters() {
    let (x, y) = ([0.5f32, 0.25, 0.75], [0.0f32, 1.0, 0.5]);
    for loss in POINTWISE {
        for &setting in loss.settings {
            let name = loss.label(setting);
            let p = setting.map(|v| v as f32);
            let f = |x: &[f32], y: &[f32], g: &mut [f32]| loss.and_grad(x, y, p, MEAN, g);
            let (ok, _) = with_grad(3, |g| f(&x, &y, g));
            assert!(ok.is_ok(), "{name}: the control call failed: {ok:?}");
            expect_err(
                with_grad(2, |g| f(&x, &y, g)),
                len_err("grad", 2, "input", 3),
                "grad has 2 elements",
            );
            expect_err(
                with_grad(4, |g| f(&x, &y, g)),
                len_err("grad", 4, "input", 3),
                "grad has 4 elements",
            );
            expect_err(
                with_grad(3, |g| f(&x, &y[..2], g)),
                len_err("target", 2, "input", 3),
                "target",
            );
            // An invalid probability is found before anything is written.
            if loss.input == Domain::Probability {
                let bad = [0.5f32, 1.5, 0.25];
                expect_err(
                    with_grad(3, |g| f(&bad, &y, g)),
                    LossError::NotAProbability {
                        name: "input",
                        index: 1,
                        value: 1.5,
                    },
                    "input[1] is 1.5",
                );
            }
        }
        if let Some(param) = &loss.param {
            for &(bad, _) in param.rejected {
                expect_err(
                    with_grad(3, |g| loss.and_grad(&x, &y, Some(bad as f32), MEAN, g)),
                    param.error(bad).expect("a rejected value"),
                    param.name,
                );
            }
        }
    }
}

#[test]
fn cross_entropy_gradients_check_shapes_labels_and_options() {
    let logits = [0.5f32, 1.0, -1.0, 2.0, 0.0, 0.25];
    let labels = [2i64, 0];
    let probs = [0.25f32, 0.25, 0.5, 1.0, 0.0, 0.0];
    let ce = CrossEntropy::new();
    assert!(
        with_grad(6, |g| ce.loss_and_grad(&logits, 3, &labels, MEAN, g))
            .0
            .is_ok()
    );
    assert!(
        with_grad(6, |g| ce.loss_and_grad_probs(&logits, 3, &probs, MEAN, g))
            .0
            .is_ok()
    );
    expect_err(
        with_grad(5, |g| ce.loss_and_grad(&logits, 3, &labels, MEAN, g)),
        len_err("grad", 5, "logits", 6),
        "grad",
    );
    expect_err(
        with_grad(7, |g| ce.loss_and_grad_probs(&logits, 3, &probs, MEAN, g)),
        len_err("grad", 7, "logits", 6),
        "grad",
    );
    expect_err(
        with_grad(6, |g| {
            losskit::cross_entropy_and_grad(&logits, 4, &labels, MEAN, g)
        }),
        LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        "not a multiple",
    );
    expect_err(
        with_grad(6, |g| ce.loss_and_grad(&logits, 0, &labels, MEAN, g)),
        LossError::ZeroClasses,
        "classes",
    );
    expect_err(
        with_grad(6, |g| ce.loss_and_grad(&logits, 3, &[2i64, 3], MEAN, g)),
        LossError::LabelOutOfRange {
            row: 1,
            label: 3,
            classes: 3,
        },
        "label 3 in row 1",
    );
    let w = [1.0f32, 2.0];
    expect_err(
        with_grad(6, |g| {
            CrossEntropy::new()
                .weight(&w)
                .loss_and_grad(&logits, 3, &labels, MEAN, g)
        }),
        len_err("weight", 2, "classes", 3),
        "weight",
    );
    expect_err(
        with_grad(6, |g| {
            CrossEntropy::new()
                .label_smoothing(1.5)
                .loss_and_grad_probs(&logits, 3, &probs, MEAN, g)
        }),
        LossError::InvalidParameter {
            name: "label_smoothing",
            value: 1.5,
            requirement: "in [0, 1]",
        },
        "label_smoothing",
    );
    // In place: the logits stay as they were when the call fails.
    let mut in_place = logits;
    let err = ce
        .loss_and_grad_in_place(&mut in_place, 3, &[-5i64, 0], MEAN)
        .unwrap_err();
    assert_eq!(
        err,
        LossError::LabelOutOfRange {
            row: 0,
            label: -5,
            classes: 3
        }
    );
    assert_eq!(
        in_place, logits,
        "the logits were overwritten despite {err}"
    );
    let err = ce
        .loss_and_grad_in_place(&mut in_place, 3, &[0i64], MEAN)
        .unwrap_err();
    assert_eq!(err, len_err("labels", 1, "rows of logits", 2));
    assert_eq!(in_place, logits);
    assert!(ce
        .loss_and_grad_in_place(&mut in_place, 3, &labels, MEAN)
        .is_ok());
    assert_ne!(in_place, logits, "the control call wrote the gradient");
}
