//! The errors of the fused loss-and-gradient functions: each returns the same `LossError` as
//! its loss-only form, plus a length check of the gradient slice, and writes nothing to the
//! gradient (or, in place, to the logits) when it fails. Each group has a valid control call.

use losskit::{Bce, BceWithLogits, CrossEntropy, LossError, Reduction};

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
    assert_eq!(err, want);
    assert!(
        err.to_string().contains(words),
        "{err} should mention {words:?}"
    );
    assert!(untouched, "the gradient was written despite {err}");
}

#[test]
fn pointwise_gradients_check_lengths_and_parameters() {
    let (x, y) = ([0.5f32, 0.25, 0.75], [0.0f32, 1.0, 0.5]);
    type Fused = fn(&[f32], &[f32], Reduction, &mut [f32]) -> Result<f32, LossError>;
    let fused: [(&str, Fused); 6] = [
        ("mse", losskit::mse_and_grad),
        ("l1", losskit::l1_and_grad),
        ("huber", |x, y, r, g| {
            losskit::huber_and_grad(x, y, 1.0, r, g)
        }),
        ("smooth_l1", |x, y, r, g| {
            losskit::smooth_l1_and_grad(x, y, 0.5, r, g)
        }),
        ("bce", losskit::bce_and_grad),
        ("bce_with_logits", losskit::bce_with_logits_and_grad),
    ];
    for (name, f) in fused {
        let (ok, _) = with_grad(3, |g| f(&x, &y, MEAN, g));
        assert!(ok.is_ok(), "{name}: the control call failed: {ok:?}");
        expect_err(
            with_grad(2, |g| f(&x, &y, MEAN, g)),
            len_err("grad", 2, "input", 3),
            "grad has 2 elements",
        );
        expect_err(
            with_grad(4, |g| f(&x, &y, MEAN, g)),
            len_err("grad", 4, "input", 3),
            "grad has 4 elements",
        );
        expect_err(
            with_grad(3, |g| f(&x, &y[..2], MEAN, g)),
            len_err("target", 2, "input", 3),
            "target",
        );
    }
    let invalid = |name, value: f64, requirement| LossError::InvalidParameter {
        name,
        value,
        requirement,
    };
    expect_err(
        with_grad(3, |g| losskit::huber_and_grad(&x, &y, 0.0, MEAN, g)),
        invalid("delta", 0.0, "> 0"),
        "delta",
    );
    expect_err(
        with_grad(3, |g| losskit::smooth_l1_and_grad(&x, &y, -1.0, MEAN, g)),
        invalid("beta", -1.0, ">= 0"),
        "beta",
    );
    expect_err(
        with_grad(3, |g| {
            BceWithLogits::new()
                .pos_weight(-2.0)
                .loss_and_grad(&x, &y, MEAN, g)
        }),
        invalid("pos_weight", -2.0, ">= 0"),
        "pos_weight",
    );
    expect_err(
        with_grad(3, |g| {
            Bce::new().epsilon(0.75).loss_and_grad(&x, &y, MEAN, g)
        }),
        invalid("epsilon", 0.75, "in [0, 0.5]"),
        "epsilon",
    );
    // An invalid probability is found before anything is written.
    let p = [0.5f32, 1.5, 0.25];
    expect_err(
        with_grad(3, |g| losskit::bce_and_grad(&p, &y, MEAN, g)),
        LossError::NotAProbability {
            name: "input",
            index: 1,
            value: 1.5,
        },
        "input[1] is 1.5",
    );
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
