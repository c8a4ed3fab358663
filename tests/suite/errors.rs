//! Every row of DESIGN.md's error list, for every public function that can hit it: the exact
//! `LossError` variant and fields, a Display message that names the argument, and `out` left
//! untouched by an error. Each group also has a control (the same call made valid succeeds), so
//! that a function that rejected everything would fail here too.

use std::fmt::Debug;

use losskit::{Bce, BceWithLogits, CrossEntropy, LossError, Reduction};

use crate::common::Elem as E;

fn v<T: E>(xs: &[f64]) -> Vec<T> {
    xs.iter().map(|&x| T::of(x)).collect()
}

/// Equality of errors with NaN values equal to each other (`LossError: PartialEq` compares
/// `f64` fields with `==`).
fn same(a: &LossError, b: &LossError) -> bool {
    match (a, b) {
        (
            LossError::InvalidParameter {
                name: n1,
                value: v1,
                requirement: r1,
            },
            LossError::InvalidParameter {
                name: n2,
                value: v2,
                requirement: r2,
            },
        ) => n1 == n2 && r1 == r2 && (v1 == v2 || (v1.is_nan() && v2.is_nan())),
        (
            LossError::NotAProbability {
                name: n1,
                index: i1,
                value: v1,
            },
            LossError::NotAProbability {
                name: n2,
                index: i2,
                value: v2,
            },
        ) => n1 == n2 && i1 == i2 && (v1 == v2 || (v1.is_nan() && v2.is_nan())),
        _ => a == b,
    }
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
// Length mismatches of the pointwise losses: one module per public function.
// ---------------------------------------------------------------------------------------------

/// Generates, for one pointwise loss, tests of a target shorter and longer than the input (for
/// the reduced form and for `each`), of `out` shorter and longer, and a valid control.
/// Values are probabilities so that every loss (bce included) accepts them.
macro_rules! length_tests {
    ($module:ident,
     reduce: |$x:ident, $y:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ey:ident, $out:ident| $each:expr) => {
        mod $module {
            use super::*;

            fn reduce<T: E>($x: &[T], $y: &[T], $r: Reduction) -> Result<T, LossError> {
                $reduce
            }

            fn each<T: E>($ex: &[T], $ey: &[T], $out: &mut [T]) -> Result<(), LossError> {
                $each
            }

            fn input<T: E>(n: usize) -> Vec<T> {
                (0..n).map(|i| T::of((i % 5) as f64 * 0.25)).collect()
            }

            fn target_mismatch<T: E>() {
                for (n, nt) in [(4, 3), (4, 5), (0, 1), (1, 0), (9, 8)] {
                    let (x, y) = (input::<T>(n), input::<T>(nt));
                    let want = mismatch("target", nt, "input", n);
                    let msg = format!("target has {nt} elements but input has {n}");
                    for r in [Reduction::Mean, Reduction::Sum] {
                        expect_err(reduce(&x, &y, r), &want, &msg);
                    }
                    expect_err_untouched::<T>(n, &want, &msg, |out| each(&x, &y, out));
                }
            }

            fn out_mismatch<T: E>() {
                for (n, no) in [(4, 3), (4, 5), (0, 1), (1, 0), (17, 16)] {
                    let (x, y) = (input::<T>(n), input::<T>(n));
                    let want = mismatch("out", no, "input", n);
                    let msg = format!("out has {no} elements but input has {n}");
                    expect_err_untouched::<T>(no, &want, &msg, |out| each(&x, &y, out));
                }
            }

            fn valid<T: E>() {
                for n in [0, 1, 4, 17] {
                    let (x, y) = (
                        input::<T>(n),
                        input::<T>(n).into_iter().rev().collect::<Vec<_>>(),
                    );
                    for r in [Reduction::Mean, Reduction::Sum] {
                        assert!(reduce(&x, &y, r).is_ok(), "n={n} {r:?}");
                    }
                    let mut out = vec![T::of(-7.25); n];
                    each(&x, &y, &mut out).unwrap();
                    assert!(
                        out.iter().all(|&o| o != T::of(-7.25)),
                        "each did not write every element"
                    );
                }
            }

            #[test]
            fn target_length_mismatch() {
                target_mismatch::<f32>();
                target_mismatch::<f64>();
            }

            #[test]
            fn out_length_mismatch_leaves_out_untouched() {
                out_mismatch::<f32>();
                out_mismatch::<f64>();
            }

            #[test]
            fn matching_lengths_are_accepted() {
                valid::<f32>();
                valid::<f64>();
            }
        }
    };
}

length_tests!(mse, reduce: |x, y, r| losskit::mse(x, y, r), each: |x, y, out| losskit::mse_each(x, y, out));
length_tests!(l1, reduce: |x, y, r| losskit::l1(x, y, r), each: |x, y, out| losskit::l1_each(x, y, out));
length_tests!(huber,
    reduce: |x, y, r| losskit::huber(x, y, T::of(1.0), r),
    each: |x, y, out| losskit::huber_each(x, y, T::of(1.0), out));
length_tests!(smooth_l1,
    reduce: |x, y, r| losskit::smooth_l1(x, y, T::of(0.5), r),
    each: |x, y, out| losskit::smooth_l1_each(x, y, T::of(0.5), out));
length_tests!(bce, reduce: |x, y, r| losskit::bce(x, y, r), each: |x, y, out| losskit::bce_each(x, y, out));
length_tests!(bce_builder,
    reduce: |x, y, r| Bce::new().epsilon(T::of(1e-3)).loss(x, y, r),
    each: |x, y, out| Bce::new().epsilon(T::of(1e-3)).each(x, y, out));
length_tests!(bce_with_logits,
    reduce: |x, y, r| losskit::bce_with_logits(x, y, r),
    each: |x, y, out| losskit::bce_with_logits_each(x, y, out));
length_tests!(bce_with_logits_builder,
    reduce: |x, y, r| BceWithLogits::new().pos_weight(T::of(2.5)).loss(x, y, r),
    each: |x, y, out| BceWithLogits::new().pos_weight(T::of(2.5)).each(x, y, out));

// ---------------------------------------------------------------------------------------------
// Scalar parameters.
// ---------------------------------------------------------------------------------------------

/// Checks that `param` is rejected by both forms of a loss with `InvalidParameter { name,
/// value: param, requirement }` and the message `"{name} is {shown}; it must be {requirement}"`.
fn rejects_param<T: E>(
    name: &'static str,
    requirement: &'static str,
    param: f64,
    shown: &str,
    reduce: impl Fn(&[T], &[T], T, Reduction) -> Result<T, LossError>,
    each: impl Fn(&[T], &[T], T, &mut [T]) -> Result<(), LossError>,
) {
    let (x, y) = (v::<T>(&[0.5, 0.25, 1.0]), v::<T>(&[0.0, 1.0, 0.75]));
    let p = T::of(param);
    let want = invalid(name, param, requirement);
    let msg = format!("{name} is {shown}; it must be {requirement}");
    for r in [Reduction::Mean, Reduction::Sum] {
        expect_err(reduce(&x, &y, p, r), &want, &msg);
    }
    expect_err_untouched::<T>(3, &want, &msg, |out| each(&x, &y, p, out));
    // Parameter errors win over nothing else being wrong, and also hold for empty inputs.
    expect_err(reduce(&[], &[], p, Reduction::Mean), &want, &msg);
}

fn accepts_param<T: E>(
    param: f64,
    reduce: impl Fn(&[T], &[T], T, Reduction) -> Result<T, LossError>,
    each: impl Fn(&[T], &[T], T, &mut [T]) -> Result<(), LossError>,
) {
    let (x, y) = (v::<T>(&[0.5, 0.25, 1.0]), v::<T>(&[0.0, 1.0, 0.75]));
    let p = T::of(param);
    for r in [Reduction::Mean, Reduction::Sum] {
        reduce(&x, &y, p, r).unwrap_or_else(|e| panic!("param {param} rejected: {e}"));
    }
    let mut out = vec![T::of(0.0); 3];
    each(&x, &y, p, &mut out).unwrap_or_else(|e| panic!("param {param} rejected: {e}"));
}

const BAD_POSITIVE: [(f64, &str); 5] = [
    (-1.0, "-1"),
    (f64::NAN, "NaN"),
    (0.0, "0"),
    (-0.0, "-0"),
    (f64::NEG_INFINITY, "-inf"),
];
const BAD_NON_NEGATIVE: [(f64, &str); 4] = [
    (-1.0, "-1"),
    (-0.5, "-0.5"),
    (f64::NAN, "NaN"),
    (f64::NEG_INFINITY, "-inf"),
];

fn huber_delta<T: E>() {
    // PyTorch rejects delta <= 0 (and NaN).
    for (p, shown) in BAD_POSITIVE {
        rejects_param::<T>(
            "delta",
            "> 0",
            p,
            shown,
            losskit::huber,
            losskit::huber_each,
        );
    }
    for p in [1e-30, 0.5, 1.0, f64::INFINITY] {
        accepts_param::<T>(p, losskit::huber, losskit::huber_each);
    }
}

#[test]
fn huber_rejects_zero_negative_and_nan_delta() {
    huber_delta::<f32>();
    huber_delta::<f64>();
}

fn smooth_l1_beta<T: E>() {
    for (p, shown) in BAD_NON_NEGATIVE {
        rejects_param::<T>(
            "beta",
            ">= 0",
            p,
            shown,
            losskit::smooth_l1,
            losskit::smooth_l1_each,
        );
    }
    // beta = 0 is plain L1 in PyTorch; -0.0 passes `>= 0` as it does there.
    for p in [0.0, -0.0, 1e-30, 1.0, f64::INFINITY] {
        accepts_param::<T>(p, losskit::smooth_l1, losskit::smooth_l1_each);
    }
}

#[test]
fn smooth_l1_rejects_negative_and_nan_beta() {
    smooth_l1_beta::<f32>();
    smooth_l1_beta::<f64>();
}

fn bce_epsilon<T: E>() {
    let reduce = |x: &[T], y: &[T], p: T, r| Bce::new().epsilon(p).loss(x, y, r);
    let each = |x: &[T], y: &[T], p: T, out: &mut [T]| Bce::new().epsilon(p).each(x, y, out);
    for (p, shown) in [
        (-0.25, "-0.25"),
        (0.75, "0.75"),
        (1.0, "1"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
    ] {
        rejects_param::<T>("epsilon", "in [0, 0.5]", p, shown, reduce, each);
    }
    for p in [0.0, 1e-7, 0.5] {
        accepts_param::<T>(p, reduce, each);
    }
}

#[test]
fn bce_builder_rejects_epsilon_outside_0_to_one_half() {
    bce_epsilon::<f32>();
    bce_epsilon::<f64>();
}

fn pos_weight<T: E>() {
    let reduce = |x: &[T], y: &[T], p: T, r| BceWithLogits::new().pos_weight(p).loss(x, y, r);
    let each =
        |x: &[T], y: &[T], p: T, out: &mut [T]| BceWithLogits::new().pos_weight(p).each(x, y, out);
    for (p, shown) in BAD_NON_NEGATIVE {
        rejects_param::<T>("pos_weight", ">= 0", p, shown, reduce, each);
    }
    for p in [0.0, 1.0, 2.5] {
        accepts_param::<T>(p, reduce, each);
    }
}

#[test]
fn bce_with_logits_builder_rejects_negative_and_nan_pos_weight() {
    pos_weight::<f32>();
    pos_weight::<f64>();
}

// ---------------------------------------------------------------------------------------------
// Probabilities for bce.
// ---------------------------------------------------------------------------------------------

type ReduceFn<T> = fn(&[T], &[T], Reduction) -> Result<T, LossError>;
type EachFn<T> = fn(&[T], &[T], &mut [T]) -> Result<(), LossError>;

fn bce_forms<T: E>() -> Vec<(&'static str, ReduceFn<T>, EachFn<T>)> {
    vec![
        ("bce", losskit::bce, losskit::bce_each),
        (
            "Bce::new()",
            |x, y, r| Bce::new().loss(x, y, r),
            |x, y, o| Bce::new().each(x, y, o),
        ),
        (
            "Bce::new().epsilon(1e-7)",
            |x, y, r| Bce::new().epsilon(T::of(1e-7)).loss(x, y, r),
            |x, y, o| Bce::new().epsilon(T::of(1e-7)).each(x, y, o),
        ),
    ]
}

fn bce_probabilities<T: E>(which: &'static str) {
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
                for (form, reduce, each) in bce_forms::<T>() {
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
fn bce_rejects_an_input_outside_0_1_or_nan() {
    bce_probabilities::<f32>("input");
    bce_probabilities::<f64>("input");
}

#[test]
fn bce_rejects_a_target_outside_0_1_or_nan() {
    bce_probabilities::<f32>("target");
    bce_probabilities::<f64>("target");
}

#[test]
fn bce_accepts_the_closed_interval_and_negative_zero() {
    for (form, reduce, each) in bce_forms::<f32>() {
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
fn bce_with_logits_does_not_restrict_its_target() {
    // PyTorch does not check targets of binary_cross_entropy_with_logits.
    let got = losskit::bce_with_logits(&[0.5f64, -1.0], &[2.0, -3.0], Reduction::Sum).unwrap();
    assert!(got.is_finite());
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
        let msg = format!("weight has {} elements but classes has 3", w.len());
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
        let want = mismatch("target", n, "logits", 6);
        let msg = format!("target has {n} elements but logits has 6");
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
