//! Every row of DESIGN.md's error list, for every public function that can hit it: the exact
//! `LossError` variant and fields, a Display message that names the argument, and `out` left
//! untouched by an error. Each group also has a control (the same call made valid succeeds), so
//! that a function that rejected everything would fail here too. The pointwise losses come from
//! the registry (`tests/registry`): one test module per loss, every form and parameter setting.

use std::fmt::Debug;

use losskit::{Bce, CrossEntropy, LossError, Reduction};

use crate::common::same_error as same;
use crate::common::Elem as E;
use crate::registry::{Domain, Pointwise, Range, POINTWISE};

fn v<T: E>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::of(x)).collect()
}

/// Asserts that `result` is exactly `want`, displayed as `message`.
#[track_caller]
fn expect_err<R: Debug>(result: Result<R, LossError>, want: &LossError, message: &str) {
    match result {
        Ok(r) => panic!("expected {want:?}, got Ok({r:?})"),
        Err(e) => {
            assert!(same(&e, want), "expected {want:?}, got {e:?}");
            assert_eq!(e.to_string(), message);
            // And it is a std error, usable with `?` into Box<dyn Error>.
            let boxed: Box<dyn std::error::Error> = Box::new(e);
            assert_eq!(boxed.to_string(), message);
        }
    }
}

/// Asserts that an `each` call fails with `want` and writes nothing.
#[track_caller]
fn expect_err_untouched<T: E>(
    out_len: usize,
    want: &LossError,
    message: &str,
    call: impl FnOnce(&mut [T]) -> Result<(), LossError>,
) {
    let sentinel = T::of(-7.25);
    let mut out = vec![sentinel; out_len];
    expect_err(call(&mut out), want, message);
    assert!(
        out.iter().all(|v| v.bits() == sentinel.bits()),
        "an error wrote to out: {out:?}"
    );
}

use crate::common::length_mismatch as mismatch;

fn invalid(name: &'static str, value: f64, requirement: &'static str) -> LossError {
    LossError::InvalidParameter {
        name,
        value,
        requirement,
    }
}

// ---------------------------------------------------------------------------------------------
// Pointwise losses: one module per registry entry, each form at each parameter setting.
// ---------------------------------------------------------------------------------------------

/// Values valid for every pointwise loss (probabilities, so bce accepts them).
fn pointwise_input<T: E>(n: usize) -> Vec<T> {
    (0..n).map(|i| T::of((i % 5) as f64 * 0.25)).collect()
}

/// A target shorter or longer than the input, for the reduced form and for `each`.
fn target_mismatch<T: E>(loss: &Pointwise) {
    for &setting in loss.settings {
        let p = setting.map(T::of);
        for (n, nt) in [(4, 3), (4, 5), (0, 1), (1, 0), (9, 8)] {
            let (x, y) = (pointwise_input::<T>(n), pointwise_input::<T>(nt));
            let want = mismatch("target", nt, "input", n);
            let msg = format!("target has {nt} elements but input has {n}");
            for r in [Reduction::Mean, Reduction::Sum] {
                expect_err(loss.reduce(&x, &y, p, r), &want, &msg);
            }
            expect_err_untouched::<T>(n, &want, &msg, |out| loss.each(&x, &y, p, out));
        }
    }
}

/// `out` shorter or longer than the input.
fn out_mismatch<T: E>(loss: &Pointwise) {
    for &setting in loss.settings {
        let p = setting.map(T::of);
        for (n, no) in [(4, 3), (4, 5), (0, 1), (1, 0), (17, 16)] {
            let (x, y) = (pointwise_input::<T>(n), pointwise_input::<T>(n));
            let want = mismatch("out", no, "input", n);
            let msg = format!("out has {no} elements but input has {n}");
            expect_err_untouched::<T>(no, &want, &msg, |out| loss.each(&x, &y, p, out));
        }
    }
}

/// `grad` shorter or longer than the input: the fused form fails and writes nothing.
fn grad_mismatch<T: E>(loss: &Pointwise) {
    for &setting in loss.settings {
        let p = setting.map(T::of);
        for (n, ng) in [(4, 3), (4, 5), (0, 1), (1, 0), (17, 16)] {
            let (x, y) = (pointwise_input::<T>(n), pointwise_input::<T>(n));
            let want = mismatch("grad", ng, "input", n);
            let msg = format!("grad has {ng} elements but input has {n}");
            let sentinel = T::of(-7.25);
            let mut grad = vec![sentinel; ng];
            for r in [Reduction::Mean, Reduction::Sum] {
                expect_err(loss.and_grad(&x, &y, p, r, &mut grad), &want, &msg);
            }
            assert!(
                grad.iter().all(|g| g.bits() == sentinel.bits()),
                "{}: an error wrote to grad: {grad:?}",
                loss.label(setting)
            );
        }
    }
}

/// The control: matching lengths are accepted, and `each` writes every element.
fn valid_lengths<T: E>(loss: &Pointwise) {
    for &setting in loss.settings {
        let p = setting.map(T::of);
        for n in [0, 1, 4, 17] {
            let (x, y) = (
                pointwise_input::<T>(n),
                pointwise_input::<T>(n)
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>(),
            );
            for r in [Reduction::Mean, Reduction::Sum] {
                assert!(
                    loss.reduce(&x, &y, p, r).is_ok(),
                    "{} n={n} {r:?}",
                    loss.label(setting)
                );
            }
            let mut out = vec![T::of(-7.25); n];
            loss.each(&x, &y, p, &mut out).unwrap();
            assert!(
                out.iter().all(|&o| o != T::of(-7.25)),
                "{}: each did not write every element",
                loss.label(setting)
            );
        }
    }
}

/// Checks that `param` is rejected by every form of `loss` with `InvalidParameter { name,
/// value: param, requirement }` and the message `"{name} is {shown}; it must be {requirement}"`.
fn rejects_param<T: E>(loss: &Pointwise, param: f64, shown: &str) {
    let spec = loss.param.as_ref().expect("a loss with a parameter");
    let (x, y) = (v::<T>(&[0.5, 0.25, 1.0]), v::<T>(&[0.0, 1.0, 0.75]));
    let p = Some(T::of(param));
    let want = invalid(spec.name, param, spec.requirement);
    let msg = format!("{} is {shown}; it must be {}", spec.name, spec.requirement);
    assert!(same(&spec.error(param).unwrap(), &want), "{}", loss.id);
    for r in [Reduction::Mean, Reduction::Sum] {
        expect_err(loss.reduce(&x, &y, p, r), &want, &msg);
    }
    expect_err_untouched::<T>(3, &want, &msg, |out| loss.each(&x, &y, p, out));
    // Parameter errors win over nothing else being wrong, and also hold for empty inputs.
    expect_err(loss.reduce::<T>(&[], &[], p, Reduction::Mean), &want, &msg);
}

fn accepts_param<T: E>(loss: &Pointwise, param: f64) {
    let (x, y) = (v::<T>(&[0.5, 0.25, 1.0]), v::<T>(&[0.0, 1.0, 0.75]));
    let p = Some(T::of(param));
    for r in [Reduction::Mean, Reduction::Sum] {
        loss.reduce(&x, &y, p, r)
            .unwrap_or_else(|e| panic!("{} param {param} rejected: {e}", loss.id));
    }
    let mut out = vec![T::of(0.0); 3];
    loss.each(&x, &y, p, &mut out)
        .unwrap_or_else(|e| panic!("{} param {param} rejected: {e}", loss.id));
}

/// The parameter's rejected values (PyTorch's rules: huber's delta > 0, smooth_l1's beta >= 0,
/// pos_weight >= 0, bce's epsilon in [0, 0.5]) and accepted edges; a loss without a parameter
/// must never be run with one (its forms would ignore it).
fn parameter<T: E>(loss: &Pointwise) {
    let Some(spec) = &loss.param else {
        assert_eq!(loss.settings, [None], "{} has no parameter", loss.id);
        return;
    };
    for &(p, shown) in spec.rejected {
        rejects_param::<T>(loss, p, shown);
    }
    for &p in spec.accepted {
        accepts_param::<T>(loss, p);
    }
    for &setting in loss.settings {
        assert!(
            setting.is_some() || loss.param_optional,
            "{}: setting without its required parameter",
            loss.id
        );
    }
}

/// One module per pointwise loss of the registry, so that a test name says which loss failed.
macro_rules! pointwise_error_tests {
    ($($module:ident: $loss:ident),* $(,)?) => {$(
        mod $module {
            use super::*;
            use crate::registry::$loss as LOSS;

            #[test]
            fn target_length_mismatch() {
                target_mismatch::<f32>(&LOSS);
                target_mismatch::<f64>(&LOSS);
            }

            #[test]
            fn out_length_mismatch_leaves_out_untouched() {
                out_mismatch::<f32>(&LOSS);
                out_mismatch::<f64>(&LOSS);
            }

            #[test]
            fn grad_length_mismatch_leaves_grad_untouched() {
                grad_mismatch::<f32>(&LOSS);
                grad_mismatch::<f64>(&LOSS);
            }

            #[test]
            fn matching_lengths_are_accepted() {
                valid_lengths::<f32>(&LOSS);
                valid_lengths::<f64>(&LOSS);
            }

            #[test]
            fn invalid_parameters_are_rejected() {
                parameter::<f32>(&LOSS);
                parameter::<f64>(&LOSS);
            }
        }
    )*};
}

pointwise_losses!(pointwise_error_tests);

// ---------------------------------------------------------------------------------------------
// Probabilities (bce's input and target).
// ---------------------------------------------------------------------------------------------

type ReduceFn<'a, T> = Box<dyn Fn(&[T], &[T], Reduction) -> Result<T, LossError> + 'a>;
type EachFn<'a, T> = Box<dyn Fn(&[T], &[T], &mut [T]) -> Result<(), LossError> + 'a>;

/// Every form of every loss with a probability argument, at each of its settings, and bce's
/// builder with its defaults (which must behave as the plain function).
fn probability_forms<T: E>() -> Vec<(String, ReduceFn<'static, T>, EachFn<'static, T>)> {
    let mut forms: Vec<(String, ReduceFn<'static, T>, EachFn<'static, T>)> = vec![(
        "Bce::new()".to_string(),
        Box::new(|x, y, r| Bce::new().loss(x, y, r)),
        Box::new(|x, y, o| Bce::new().each(x, y, o)),
    )];
    for loss in POINTWISE {
        if loss.input != Domain::Probability && loss.target != Domain::Probability {
            continue;
        }
        for &setting in loss.settings {
            let p = setting.map(T::of);
            forms.push((
                loss.label(setting),
                Box::new(move |x, y, r| loss.reduce(x, y, p, r)),
                Box::new(move |x, y, o| loss.each(x, y, p, o)),
            ));
        }
    }
    forms
}

fn probabilities<T: E>(which: &'static str) {
    // A bad value at the start, middle and end, in a short input and in one long enough to be
    // reduced on several threads; the first offending index is reported.
    for n in [1usize, 3, 9, 70_000, 200_003] {
        for index in [0, n / 2, n - 1] {
            for (bad, shown) in [
                (1.5, "1.5"),
                (-0.5, "-0.5"),
                (f64::NAN, "NaN"),
                (f64::INFINITY, "inf"),
                (-0.0625, "-0.0625"),
            ] {
                let mut p: Vec<T> = (0..n).map(|i| T::of((i % 7) as f64 / 6.0)).collect();
                let mut t: Vec<T> = (0..n).map(|i| T::of((i % 3) as f64 / 2.0)).collect();
                let bad_one = if which == "input" { &mut p } else { &mut t };
                bad_one[index] = T::of(bad);
                if index + 2 < n {
                    bad_one[index + 2] = T::of(2.0); // a later offender is not the one reported
                }
                let want = LossError::NotAProbability {
                    name: which,
                    index,
                    value: bad,
                };
                let msg = format!(
                    "{which}[{index}] is {shown}; every element of {which} must be in [0, 1]"
                );
                for (form, reduce, each) in probability_forms::<T>() {
                    for r in [Reduction::Mean, Reduction::Sum] {
                        let got = reduce(&p, &t, r);
                        assert!(
                            got.is_err(),
                            "{form} n={n} index={index} {bad}: Ok({:?})",
                            got.as_ref().ok()
                        );
                        expect_err(got, &want, &msg);
                    }
                    expect_err_untouched::<T>(n, &want, &msg, |out| each(&p, &t, out));
                }
            }
        }
    }
}

#[test]
fn probability_inputs_outside_0_1_or_nan_are_rejected() {
    probabilities::<f32>("input");
    probabilities::<f64>("input");
}

#[test]
fn probability_targets_outside_0_1_or_nan_are_rejected() {
    probabilities::<f32>("target");
    probabilities::<f64>("target");
}

#[test]
fn probabilities_accept_the_closed_interval_and_negative_zero() {
    for (form, reduce, each) in probability_forms::<f32>() {
        let p = [
            0.0f32,
            -0.0,
            1.0,
            0.5,
            f32::MIN_POSITIVE / 4.0,
            1.0 - f32::EPSILON / 2.0,
        ];
        let t = [0.0f32, 1.0, 1.0, 0.0, -0.0, 0.5];
        let got = reduce(&p, &t, Reduction::Sum).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert!(got.is_finite() && got >= 0.0, "{form}: {got}");
        let mut out = [f32::NAN; 6];
        each(&p, &t, &mut out).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert!(
            out.iter().all(|o| o.is_finite() && *o >= 0.0),
            "{form}: {out:?}"
        );
    }
}

#[test]
fn unchecked_soft_targets_are_not_restricted() {
    // PyTorch does not check targets of binary_cross_entropy_with_logits.
    let unchecked: Vec<&Pointwise> = POINTWISE
        .iter()
        .copied()
        .filter(|l| l.target == Domain::UnitUnchecked)
        .collect();
    assert!(
        !unchecked.is_empty(),
        "bce_with_logits has unchecked targets"
    );
    for loss in unchecked {
        for &setting in loss.settings {
            let got = loss
                .reduce(&[0.5f64, -1.0], &[2.0, -3.0], setting, Reduction::Sum)
                .unwrap();
            // Finite for bce_with_logits; sigmoid_focal's (1 - p_t)^γ is NaN for a negative
            // base and non-integer γ, as torchvision's `**` (accepted, not an error).
            if loss.range == Range::FiniteWhenModerate {
                assert!(got.is_finite(), "{}: {got}", loss.label(setting));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy.
// ---------------------------------------------------------------------------------------------

/// Every cross-entropy form, for one label type, called with a builder `ce`. Returns the
/// results of the six calls (loss and each with labels, loss_probs and each_probs, and the two
/// free functions), so that a test can assert the same error from each.
struct CeCall<'a, T: E> {
    logits: &'a [T],
    classes: usize,
    probs: &'a [T],
    out_len: usize,
}

impl<T: E> CeCall<'_, T> {
    /// Asserts `want`/`msg` from every labels form (free function, builder loss and each).
    #[track_caller]
    fn labels_err<L: losskit::Label + Debug>(
        &self,
        ce: &CrossEntropy<'_, T>,
        labels: &[L],
        want: &LossError,
        msg: &str,
    ) {
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(ce.loss(self.logits, self.classes, labels, r), want, msg);
        }
        expect_err_untouched::<T>(self.out_len, want, msg, |out| {
            ce.each(self.logits, self.classes, labels, out)
        });
    }

    /// Asserts `want`/`msg` from every probability form.
    #[track_caller]
    fn probs_err(&self, ce: &CrossEntropy<'_, T>, want: &LossError, msg: &str) {
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(
                ce.loss_probs(self.logits, self.classes, self.probs, r),
                want,
                msg,
            );
        }
        expect_err_untouched::<T>(self.out_len, want, msg, |out| {
            ce.each_probs(self.logits, self.classes, self.probs, out)
        });
    }
}

fn ce_zero_classes<T: E>() {
    let want = LossError::ZeroClasses;
    let msg = "classes is 0; it must be at least 1";
    for n in [0usize, 1, 6] {
        let logits = vec![T::of(0.5); n];
        let call = CeCall {
            logits: &logits,
            classes: 0,
            probs: &logits,
            out_len: 2,
        };
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(
                losskit::cross_entropy(&logits, 0, &[0i64, 0], r),
                &want,
                msg,
            );
            expect_err(
                losskit::cross_entropy_probs(&logits, 0, &logits, r),
                &want,
                msg,
            );
        }
        call.labels_err(&CrossEntropy::new(), &[0i32, 0], &want, msg);
        call.labels_err(&CrossEntropy::new(), &[0usize; 0], &want, msg);
        call.probs_err(&CrossEntropy::new(), &want, msg);
    }
}

#[test]
fn cross_entropy_rejects_zero_classes() {
    ce_zero_classes::<f32>();
    ce_zero_classes::<f64>();
}

fn ce_not_multiple<T: E>() {
    for (len, classes) in [(7usize, 3usize), (1, 2), (5, 4), (129, 128)] {
        let logits = vec![T::of(0.25); len];
        let want = LossError::NotMultipleOfClasses { len, classes };
        let msg =
            format!("logits has {len} elements, which is not a multiple of classes ({classes})");
        let rows = len / classes;
        let labels = vec![0u32; rows];
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(
                losskit::cross_entropy(&logits, classes, &labels, r),
                &want,
                &msg,
            );
            expect_err(
                losskit::cross_entropy_probs(&logits, classes, &logits, r),
                &want,
                &msg,
            );
        }
        let call = CeCall {
            logits: &logits,
            classes,
            probs: &logits,
            out_len: rows,
        };
        call.labels_err(&CrossEntropy::new(), &labels, &want, &msg);
        call.probs_err(&CrossEntropy::new(), &want, &msg);
    }
}

#[test]
fn cross_entropy_rejects_logits_not_a_multiple_of_classes() {
    ce_not_multiple::<f32>();
    ce_not_multiple::<f64>();
}

fn ce_labels_length<T: E>() {
    let logits = v::<T>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); // 2 rows of 3
    let call = CeCall {
        logits: &logits,
        classes: 3,
        probs: &logits,
        out_len: 2,
    };
    for labels in [vec![0i64], vec![0, 1, 2], vec![]] {
        let want = mismatch("labels", labels.len(), "rows of logits", 2);
        let msg = format!(
            "labels has {} elements but rows of logits has 2",
            labels.len()
        );
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(losskit::cross_entropy(&logits, 3, &labels, r), &want, &msg);
        }
        call.labels_err(&CrossEntropy::new(), &labels, &want, &msg);
    }
}

#[test]
fn cross_entropy_rejects_labels_of_the_wrong_length() {
    ce_labels_length::<f32>();
    ce_labels_length::<f64>();
}

fn ce_out_length<T: E>() {
    let logits = v::<T>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); // 2 rows of 3
    for out_len in [0usize, 1, 3, 6] {
        let call = CeCall {
            logits: &logits,
            classes: 3,
            probs: &logits,
            out_len,
        };
        let want = mismatch("out", out_len, "rows of logits", 2);
        let msg = format!("out has {out_len} elements but rows of logits has 2");
        let ce = CrossEntropy::new();
        expect_err_untouched::<T>(out_len, &want, &msg, |out| {
            ce.each(&logits, 3, &[0u64, 2], out)
        });
        expect_err_untouched::<T>(out_len, &want, &msg, |out| {
            ce.each_probs(call.logits, 3, call.probs, out)
        });
    }
    // Control: the right length works and writes both rows.
    let mut out = vec![T::of(-7.25); 2];
    CrossEntropy::new()
        .each(&logits, 3, &[0u64, 2], &mut out)
        .unwrap();
    assert!(out.iter().all(|&o| o != T::of(-7.25)));
}

#[test]
fn cross_entropy_each_rejects_out_of_the_wrong_length() {
    ce_out_length::<f32>();
    ce_out_length::<f64>();
}

/// Labels out of range for one label type: each `bad` value placed in row 1 of 3 rows of 4
/// classes, with a valid label elsewhere.
fn ce_label_range<T: E, L: losskit::Label + Debug + Copy>(valid: L, bad: &[(L, i128)]) {
    let logits: Vec<T> = (0..12).map(|i| T::of(i as f64 * 0.5 - 3.0)).collect();
    let call = CeCall {
        logits: &logits,
        classes: 4,
        probs: &logits,
        out_len: 3,
    };
    for &(label, wide) in bad {
        let labels = [valid, label, valid];
        let want = LossError::LabelOutOfRange {
            row: 1,
            label: wide,
            classes: 4,
        };
        let msg = format!("label {wide} in row 1 is outside 0..4 and is not the ignore index");
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(losskit::cross_entropy(&logits, 4, &labels, r), &want, &msg);
        }
        call.labels_err(&CrossEntropy::new(), &labels, &want, &msg);
        call.labels_err(&CrossEntropy::new().ignore_index(7), &labels, &want, &msg);
        // The first offending row is the one reported.
        let labels = [label, label, valid];
        let want = LossError::LabelOutOfRange {
            row: 0,
            label: wide,
            classes: 4,
        };
        let msg = format!("label {wide} in row 0 is outside 0..4 and is not the ignore index");
        call.labels_err(&CrossEntropy::new(), &labels, &want, &msg);
    }
    // Control: valid labels are accepted.
    losskit::cross_entropy(&logits, 4, &[valid, valid, valid], Reduction::Mean).unwrap();
}

fn ce_labels_all_types<T: E>() {
    ce_label_range::<T, i32>(
        3,
        &[
            (-1, -1),
            (4, 4),
            (-99, -99),
            (-101, -101),
            (i32::MIN, i32::MIN as i128),
            (i32::MAX, i32::MAX as i128),
        ],
    );
    ce_label_range::<T, i64>(
        0,
        &[
            (-1, -1),
            (4, 4),
            (i64::MIN, i64::MIN as i128),
            (i64::MAX, i64::MAX as i128),
        ],
    );
    ce_label_range::<T, u32>(
        2,
        &[
            (4, 4),
            (u32::MAX, u32::MAX as i128),
            (u32::MAX - 99, u32::MAX as i128 - 99),
        ],
    );
    // u64 labels that do not fit in i64 must not wrap to a negative (ignored) value.
    ce_label_range::<T, u64>(
        1,
        &[
            (4, 4),
            (1 << 63, 1i128 << 63),
            (u64::MAX, u64::MAX as i128),
            ((-100i64) as u64, (-100i64) as u64 as i128),
            (u64::MAX - 3, u64::MAX as i128 - 3),
        ],
    );
    ce_label_range::<T, usize>(
        3,
        &[
            (4, 4),
            (usize::MAX, usize::MAX as i128),
            ((-100isize) as usize, (-100isize) as usize as i128),
        ],
    );
}

#[test]
fn cross_entropy_rejects_labels_out_of_range_for_every_label_type() {
    ce_labels_all_types::<f32>();
    ce_labels_all_types::<f64>();
}

#[test]
fn cross_entropy_accepts_the_ignore_index_even_when_out_of_range() {
    let logits = [0.0f32, 1.0, 2.0, 3.0]; // 2 rows of 2
                                          // Default ignore index -100 for signed labels.
    losskit::cross_entropy(&logits, 2, &[-100i32, 1], Reduction::Sum).unwrap();
    losskit::cross_entropy(&logits, 2, &[-100i64, 1], Reduction::Sum).unwrap();
    // An ignore index that an unsigned type can hold.
    let ce = CrossEntropy::new().ignore_index(7);
    ce.loss(&logits, 2, &[7u32, 1], Reduction::Sum).unwrap();
    ce.loss(&logits, 2, &[7u64, 1], Reduction::Sum).unwrap();
    ce.loss(&logits, 2, &[7usize, 1], Reduction::Sum).unwrap();
    // The largest u64 that fits in i64 equals ignore_index(i64::MAX); one more does not.
    let ce = CrossEntropy::new().ignore_index(i64::MAX);
    ce.loss(&logits, 2, &[i64::MAX as u64, 0], Reduction::Sum)
        .unwrap();
    expect_err(
        ce.loss(&logits, 2, &[i64::MAX as u64 + 1, 0], Reduction::Sum),
        &LossError::LabelOutOfRange {
            row: 0,
            label: 1i128 << 63,
            classes: 2,
        },
        "label 9223372036854775808 in row 0 is outside 0..2 and is not the ignore index",
    );
    // -100 as an unsigned label is a huge number, not the ignore index.
    expect_err(
        losskit::cross_entropy(&logits, 2, &[0u32, (-100i32) as u32], Reduction::Sum),
        &LossError::LabelOutOfRange {
            row: 1,
            label: 4294967196,
            classes: 2,
        },
        "label 4294967196 in row 1 is outside 0..2 and is not the ignore index",
    );
}

fn ce_weight_length<T: E>() {
    let logits = v::<T>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); // 2 rows of 3
    let call = CeCall {
        logits: &logits,
        classes: 3,
        probs: &logits,
        out_len: 2,
    };
    for w in [v::<T>(&[1.0, 2.0]), v::<T>(&[1.0, 2.0, 3.0, 4.0]), vec![]] {
        let want = mismatch("weight", w.len(), "classes", 3);
        let msg = format!("weight has {} elements but classes is 3", w.len());
        let ce = CrossEntropy::new().weight(&w);
        call.labels_err(&ce, &[0i64, 2], &want, &msg);
        call.probs_err(&ce, &want, &msg);
    }
    let w = v::<T>(&[1.0, 2.0, 3.0]);
    CrossEntropy::new()
        .weight(&w)
        .loss(&logits, 3, &[0i64, 2], Reduction::Mean)
        .unwrap();
    CrossEntropy::new()
        .weight(&w)
        .loss_probs(&logits, 3, &logits, Reduction::Mean)
        .unwrap();
}

#[test]
fn cross_entropy_rejects_weight_of_the_wrong_length() {
    ce_weight_length::<f32>();
    ce_weight_length::<f64>();
}

fn ce_label_smoothing<T: E>() {
    let logits = v::<T>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); // 2 rows of 3
    let probs = v::<T>(&[0.5, 0.5, 0.0, 0.0, 0.0, 1.0]);
    let call = CeCall {
        logits: &logits,
        classes: 3,
        probs: &probs,
        out_len: 2,
    };
    for (s, shown) in [
        (-0.25, "-0.25"),
        (1.5, "1.5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (-0.0625, "-0.0625"),
    ] {
        let want = invalid("label_smoothing", s, "in [0, 1]");
        let msg = format!("label_smoothing is {shown}; it must be in [0, 1]");
        let ce = CrossEntropy::new().label_smoothing(s);
        call.labels_err(&ce, &[0u32, 2], &want, &msg);
        call.probs_err(&ce, &want, &msg);
    }
    for s in [0.0, 0.1, 1.0] {
        let ce = CrossEntropy::<T>::new().label_smoothing(s);
        ce.loss(&logits, 3, &[0u32, 2], Reduction::Mean).unwrap();
        ce.loss_probs(&logits, 3, &probs, Reduction::Mean).unwrap();
    }
}

#[test]
fn cross_entropy_rejects_label_smoothing_outside_0_1_or_nan() {
    ce_label_smoothing::<f32>();
    ce_label_smoothing::<f64>();
}

fn ce_probs_length<T: E>() {
    let logits = v::<T>(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]); // 2 rows of 3
    for n in [0usize, 3, 5, 7, 12] {
        let probs = vec![T::of(0.25); n];
        let call = CeCall {
            logits: &logits,
            classes: 3,
            probs: &probs,
            out_len: 2,
        };
        let want = mismatch("probs", n, "logits", 6);
        let msg = format!("probs has {n} elements but logits has 6");
        for r in [Reduction::Mean, Reduction::Sum] {
            expect_err(
                losskit::cross_entropy_probs(&logits, 3, &probs, r),
                &want,
                &msg,
            );
        }
        call.probs_err(&CrossEntropy::new(), &want, &msg);
    }
}

#[test]
fn cross_entropy_probs_rejects_probs_of_the_wrong_length() {
    ce_probs_length::<f32>();
    ce_probs_length::<f64>();
}

#[test]
fn error_messages_name_the_argument() {
    // A table of every variant's Display, as DESIGN.md promises errors that name the problem.
    let cases: Vec<(LossError, &str)> = vec![
        (
            mismatch("target", 3, "input", 4),
            "target has 3 elements but input has 4",
        ),
        (
            LossError::ZeroClasses,
            "classes is 0; it must be at least 1",
        ),
        (
            LossError::NotMultipleOfClasses { len: 7, classes: 3 },
            "logits has 7 elements, which is not a multiple of classes (3)",
        ),
        (
            LossError::SizeOverflow {
                rows: 5,
                classes: 6,
            },
            "rows (5) * classes (6) overflows usize",
        ),
        (invalid("delta", -1.0, "> 0"), "delta is -1; it must be > 0"),
        (
            LossError::NotAProbability {
                name: "input",
                index: 2,
                value: 1.5,
            },
            "input[2] is 1.5; every element of input must be in [0, 1]",
        ),
        (
            LossError::Negative {
                name: "var",
                index: 4,
                value: f64::from(-0.1f32),
            },
            "var[4] is -0.1; it must be >= 0",
        ),
        (
            LossError::IncompleteRow {
                row: 3,
                covered: 1000,
                classes: 32000,
            },
            "the merged partial of row 3 covers 1000 classes (or misses its target), not each \
             of the row's 32000 once",
        ),
        (
            LossError::NotRanked { row: 2 },
            "the merged partial of row 2 has no rank counts: statistics need vocab_stats_rows",
        ),
    ];
    for (e, msg) in cases {
        assert_eq!(e.to_string(), msg);
    }
    let Err(e) = losskit::with_tier(losskit::Tier::Avx512, || ()) else {
        // This CPU has AVX-512: ask for nothing unavailable, which cannot fail.
        assert!(losskit::Tier::Avx512.is_available());
        return;
    };
    assert_eq!(
        e,
        LossError::TierUnavailable {
            tier: losskit::Tier::Avx512
        }
    );
    assert_eq!(e.to_string(), "this CPU cannot run the avx512 tier");
}
