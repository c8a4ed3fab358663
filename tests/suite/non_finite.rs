//! NaN, infinities and empty inputs, as PyTorch treats them: NaN propagates to the reduced loss
//! and to its own `*_each` element (and only there); the mean over nothing is NaN and the sum
//! is 0; infinities follow IEEE arithmetic. Lengths are chosen so that NaN lands in vector
//! bodies, masked tails and every parallel chunk, on every tier this CPU has.

use losskit::{with_tier, CrossEntropy, LossError, Reduction, Tier};

use crate::common::Elem;
use crate::registry::{
    Domain, Pointwise, Range, BCE_WITH_LOGITS, HUBER, L1, MSE, POINTWISE, SMOOTH_L1,
};

/// The registry's element types, with the short `f` this file's assertions use.
trait E: Elem {
    fn f(self) -> f64 {
        Elem::f64(self)
    }
}
impl E for f32 {}
impl E for f64 {}

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

/// Every pointwise loss at every setting whose inputs may be NaN (a loss with a probability
/// argument rejects NaN as not a probability; bce is tested below).
fn nan_accepting() -> Vec<(&'static Pointwise, Option<f64>)> {
    POINTWISE
        .iter()
        .filter(|l| l.input != Domain::Probability && l.target != Domain::Probability)
        .flat_map(|&l| l.settings.iter().map(move |&p| (l, p)))
        .collect()
}

fn reduce<T: E>(loss: &Pointwise, p: Option<f64>, x: &[T], y: &[T], r: Reduction) -> T {
    loss.reduce(x, y, p.map(T::of), r).unwrap()
}

fn each<T: E>(loss: &Pointwise, p: Option<f64>, x: &[T], y: &[T]) -> Vec<T> {
    let mut out = vec![T::of(-7.25); x.len()];
    loss.each(x, y, p.map(T::of), &mut out).unwrap();
    out
}

/// The reference's value of one element (PyTorch's formula, scalar).
fn oracle<T: E>(loss: &Pointwise, p: Option<f64>, x: T, y: T) -> T {
    loss.reference(x, y, p.map(T::of))
}

/// Ordinary values in a range every loss accepts (targets in [0, 1]).
fn ordinary<T: E>(n: usize, salt: usize) -> Vec<T> {
    (0..n)
        .map(|i| T::of(((i * 7 + salt) % 11) as f64 / 10.0))
        .collect()
}

const LENGTHS: [usize; 8] = [1, 7, 8, 9, 31, 1000, 70_000, 200_003];

fn nan_propagates<T: E>() {
    for tier in Tier::available() {
        with_tier(tier, || {
            for n in LENGTHS {
                for at in [0, n / 2, n - 1] {
                    for in_target in [false, true] {
                        let mut x = ordinary::<T>(n, 1);
                        let mut y = ordinary::<T>(n, 2);
                        if in_target {
                            y[at] = T::of(NAN);
                        } else {
                            x[at] = T::of(NAN);
                        }
                        for (loss, p) in nan_accepting() {
                            // PyTorch's hinge_embedding gives a NaN target (neither 1 nor -1)
                            // both of its terms, finite: a NaN target need only propagate where
                            // the reference says so.
                            let nan_target = oracle(loss, p, T::of(0.5), T::of(NAN));
                            if in_target && !nan_target.f().is_nan() {
                                continue;
                            }
                            let what = format!(
                                "{} {} n={n} NaN at {at} (target: {in_target}) on {tier}",
                                loss.label(p),
                                std::any::type_name::<T>()
                            );
                            for r in [Reduction::Mean, Reduction::Sum] {
                                let got = reduce(loss, p, &x, &y, r);
                                assert!(got.f().is_nan(), "{what} {r:?}: {got:?}");
                            }
                            // Only the NaN element is NaN; the others are the reference's values.
                            let out = each(loss, p, &x, &y);
                            for (i, &o) in out.iter().enumerate() {
                                if i == at {
                                    assert!(o.f().is_nan(), "{what}: each[{i}] = {o:?}");
                                } else {
                                    // Unbounded losses (kl_div, poisson_nll) may be negative.
                                    let signed = loss.range == Range::Unbounded;
                                    assert!(
                                        !o.f().is_nan() && (signed || o.f() >= 0.0),
                                        "{what}: each[{i}] = {o:?}"
                                    );
                                    let want = oracle(loss, p, x[i], y[i]).f();
                                    assert!(
                                        (o.f() - want).abs() <= 1e-5 * want.abs().max(1.0),
                                        "{what}: each[{i}] = {o:?}, reference {want}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn nan_in_any_element_gives_nan_f32() {
    nan_propagates::<f32>();
}

#[test]
fn nan_in_any_element_gives_nan_f64() {
    nan_propagates::<f64>();
}

fn empty<T: E>() {
    for tier in Tier::available() {
        with_tier(tier, || {
            let e: &[T] = &[];
            for loss in POINTWISE {
                for &p in loss.settings {
                    let name = loss.label(p);
                    let (mean, sum) = (
                        loss.reduce(e, e, p.map(T::of), Reduction::Mean),
                        loss.reduce(e, e, p.map(T::of), Reduction::Sum),
                    );
                    assert!(mean.unwrap().f().is_nan(), "{name} on {tier}");
                    assert_eq!(sum.unwrap().f(), 0.0, "{name} on {tier}");
                    loss.each(e, e, p.map(T::of), &mut []).unwrap();
                }
            }
            // Cross-entropy over zero rows, for every form.
            for r in [Reduction::Mean, Reduction::Sum] {
                let want_nan = r == Reduction::Mean;
                let w = [T::of(1.0), T::of(2.0), T::of(3.0)];
                let results = [
                    losskit::cross_entropy(e, 3, &[0i64; 0], r).unwrap(),
                    losskit::cross_entropy_probs(e, 3, e, r).unwrap(),
                    CrossEntropy::new()
                        .weight(&w)
                        .loss(e, 3, &[0u32; 0], r)
                        .unwrap(),
                    CrossEntropy::new()
                        .weight(&w)
                        .label_smoothing(0.2)
                        .loss_probs(e, 3, e, r)
                        .unwrap(),
                ];
                for (k, got) in results.into_iter().enumerate() {
                    if want_nan {
                        assert!(
                            got.f().is_nan(),
                            "cross-entropy form {k} {r:?} on {tier}: {got:?}"
                        );
                    } else {
                        assert_eq!(got.f(), 0.0, "cross-entropy form {k} {r:?} on {tier}");
                    }
                }
            }
            CrossEntropy::new()
                .each(e, 5, &[0usize; 0], &mut [])
                .unwrap();
            CrossEntropy::new().each_probs(e, 5, e, &mut []).unwrap();
        })
        .unwrap();
    }
}

#[test]
fn empty_mean_is_nan_and_empty_sum_is_zero() {
    empty::<f32>();
    empty::<f64>();
}

/// Asserts a loss of a single element, reduced (Mean and Sum agree for one element) and each.
#[track_caller]
fn one<T: E>(loss: &Pointwise, p: Option<f64>, x: f64, y: f64, want: f64) {
    for tier in Tier::available() {
        with_tier(tier, || {
            let (x, y) = ([T::of(x)], [T::of(y)]);
            let got = [
                reduce(loss, p, &x, &y, Reduction::Mean).f(),
                reduce(loss, p, &x, &y, Reduction::Sum).f(),
                each(loss, p, &x, &y)[0].f(),
            ];
            for g in got {
                let ok = if want.is_nan() { g.is_nan() } else { g == want };
                assert!(
                    ok,
                    "{}({x:?}, {y:?}) on {tier} = {g}, expected {want}",
                    loss.label(p)
                );
            }
        })
        .unwrap();
    }
}

fn infinities<T: E>() {
    let (huber, smooth_l1, smooth_l1_beta_0) = (
        (&HUBER, Some(0.75)),
        (&SMOOTH_L1, Some(0.75)),
        (&SMOOTH_L1, Some(0.0)),
    );
    let (mse, l1) = ((&MSE, None), (&L1, None));
    let cases = [
        (mse, INF, 0.0, INF),
        (mse, -INF, 0.0, INF),
        (mse, 0.0, INF, INF),
        (mse, -INF, INF, INF),
        (mse, INF, INF, NAN),
        (mse, -INF, -INF, NAN),
        (l1, -INF, 0.0, INF),
        (l1, 3.0, -INF, INF),
        (l1, INF, INF, NAN),
        (huber, INF, 0.0, INF),
        (huber, 1.0, -INF, INF),
        (huber, INF, INF, NAN),
        (smooth_l1, -INF, 0.0, INF),
        (smooth_l1, INF, INF, NAN),
        (smooth_l1_beta_0, INF, 0.0, INF),
        (smooth_l1_beta_0, -INF, -INF, NAN),
        // Logits of ±inf follow PyTorch's formula `(1 - t)·x - w·log_sigmoid(x)` in IEEE
        // arithmetic: a certain wrong answer costs +inf, and the corners where it meets 0·inf or
        // inf - inf are NaN in PyTorch and here alike.
        ((&BCE_WITH_LOGITS, None), INF, 0.0, INF),
        ((&BCE_WITH_LOGITS, None), INF, 0.5, INF),
        ((&BCE_WITH_LOGITS, Some(2.5)), INF, 0.0, INF),
    ];
    for ((loss, p), x, y, want) in cases {
        one::<T>(loss, p, x, y, want);
    }
    // Every loss whose inputs may be infinite, at every setting: the reference's value.
    for (loss, p) in nan_accepting() {
        for x in [-INF, INF] {
            for y in [0.0, 0.5, 1.0] {
                one::<T>(loss, p, x, y, oracle(loss, p, T::of(x), T::of(y)).f());
            }
        }
    }
    // A sum with an infinite element is infinite; with inf - inf somewhere it is NaN.
    let regression = || {
        POINTWISE
            .iter()
            .filter(|l| l.range == Range::NonNegative)
            .flat_map(|&l| l.settings.iter().map(move |&p| (l, p)))
    };
    let x = [T::of(1.0), T::of(INF), T::of(2.0)];
    let y = [T::of(0.0), T::of(0.0), T::of(2.0)];
    for (loss, p) in regression() {
        let name = loss.label(p);
        assert_eq!(reduce(loss, p, &x, &y, Reduction::Sum).f(), INF, "{name}");
        assert_eq!(reduce(loss, p, &x, &y, Reduction::Mean).f(), INF, "{name}");
    }
    let y = [T::of(0.0), T::of(INF), T::of(2.0)];
    for (loss, p) in regression() {
        assert!(
            reduce(loss, p, &x, &y, Reduction::Sum).f().is_nan(),
            "{}",
            loss.label(p)
        );
    }
}

#[test]
fn infinities_follow_ieee_like_pytorch() {
    infinities::<f32>();
    infinities::<f64>();
}

#[test]
fn f32_overflow_of_an_element_is_inf_not_nan() {
    // (3e38 - -3e38)² overflows f32 to inf, as in PyTorch; the sum is inf, not NaN.
    let x = [3e38f32, 1.0];
    let y = [-3e38f32, 0.0];
    assert_eq!(losskit::mse(&x, &y, Reduction::Sum).unwrap(), f32::INFINITY);
    let mut out = [0.0f32; 2];
    losskit::mse_each(&x, &y, &mut out).unwrap();
    assert_eq!(out, [f32::INFINITY, 1.0]);
    // And x - y overflowing for l1 likewise.
    assert_eq!(losskit::l1(&x, &y, Reduction::Mean).unwrap(), f32::INFINITY);
}

fn bce_non_finite<T: E>() {
    // NaN and ±inf are not probabilities: bce reports them instead of returning NaN.
    for bad in [NAN, INF, -INF] {
        for n in [1usize, 9, 70_000] {
            for at in [0, n / 2, n - 1] {
                let mut p = ordinary::<T>(n, 3);
                p[at] = T::of(bad);
                let t = ordinary::<T>(n, 4);
                for r in [Reduction::Mean, Reduction::Sum] {
                    match losskit::bce(&p, &t, r) {
                        Err(LossError::NotAProbability {
                            name: "input",
                            index,
                            value,
                        }) => {
                            assert_eq!(index, at);
                            assert!(
                                value.to_bits() == bad.to_bits()
                                    || (value.is_nan() && bad.is_nan())
                            );
                        }
                        other => panic!("bce with {bad} at {at} of {n}: {other:?}"),
                    }
                }
            }
        }
    }
    // log(0) is clamped at -100, as in PyTorch: a certain wrong answer costs exactly 100.
    for tier in Tier::available() {
        with_tier(tier, || {
            let p = [T::of(0.0), T::of(1.0), T::of(0.0), T::of(1.0)];
            let t = [T::of(1.0), T::of(0.0), T::of(0.0), T::of(1.0)];
            let mut out = vec![T::of(-1.0); 4];
            losskit::bce_each(&p, &t, &mut out).unwrap();
            let out: Vec<f64> = out.iter().map(|v| v.f()).collect();
            assert_eq!(out, [100.0, 100.0, 0.0, 0.0], "on {tier}");
            assert_eq!(
                losskit::bce(&p, &t, Reduction::Sum).unwrap().f(),
                200.0,
                "on {tier}"
            );
        })
        .unwrap();
    }
}

#[test]
fn bce_rejects_non_finite_probabilities_and_clamps_log_zero() {
    bce_non_finite::<f32>();
    bce_non_finite::<f64>();
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy.
// ---------------------------------------------------------------------------------------------

/// `rows` rows of `classes` ordinary logits.
fn logits<T: E>(rows: usize, classes: usize) -> Vec<T> {
    (0..rows * classes)
        .map(|i| T::of(((i * 13) % 17) as f64 * 0.25 - 2.0))
        .collect()
}

fn labels(rows: usize, classes: usize) -> Vec<i64> {
    (0..rows).map(|r| ((r * 5) % classes) as i64).collect()
}

fn ce_all_ignored<T: E>() {
    for tier in Tier::available() {
        with_tier(tier, || {
            for (rows, classes) in [(1usize, 3usize), (9, 4), (100, 40), (3000, 64)] {
                let x = logits::<T>(rows, classes);
                let ignored = vec![-100i64; rows];
                let w: Vec<T> = (0..classes).map(|c| T::of(c as f64 + 0.5)).collect();
                for ce in [
                    CrossEntropy::new(),
                    CrossEntropy::new().weight(&w),
                    CrossEntropy::new().label_smoothing(0.3),
                ] {
                    let mean = ce.loss(&x, classes, &ignored, Reduction::Mean).unwrap();
                    let sum = ce.loss(&x, classes, &ignored, Reduction::Sum).unwrap();
                    assert!(
                        mean.f().is_nan(),
                        "{rows}x{classes} on {tier}: all-ignored mean {mean:?}"
                    );
                    assert_eq!(sum.f(), 0.0, "{rows}x{classes} on {tier}");
                    let mut out = vec![T::of(-7.25); rows];
                    ce.each(&x, classes, &ignored, &mut out).unwrap();
                    assert!(
                        out.iter().all(|v| v.f() == 0.0),
                        "{rows}x{classes} on {tier}: {out:?}"
                    );
                }
                // Ignored rows contribute nothing even when their logits are NaN.
                let mut x = x;
                x[0] = T::of(NAN);
                let mut l = labels(rows, classes);
                l[0] = -100;
                if rows > 1 {
                    let got = losskit::cross_entropy(&x, classes, &l, Reduction::Mean).unwrap();
                    assert!(got.f().is_finite(), "{rows}x{classes} on {tier}: {got:?}");
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn cross_entropy_all_ignored_mean_is_nan_and_sum_is_zero() {
    ce_all_ignored::<f32>();
    ce_all_ignored::<f64>();
}

fn ce_masked<T: E>() {
    for tier in Tier::available() {
        with_tier(tier, || {
            // Short rows (one row per lane), medium rows and rows longer than a block.
            for classes in [2usize, 3, 8, 17, 33, 300, 5000] {
                let rows = 11;
                let x = logits::<T>(rows, classes);
                let l = labels(rows, classes);
                let mut masked = x.clone();
                for (r, &t) in l.iter().enumerate() {
                    // Mask one class other than the target (the next one) in every row.
                    masked[r * classes + (t as usize + 1) % classes] = T::of(-INF);
                }
                let mut out = vec![T::of(0.0); rows];
                CrossEntropy::new()
                    .each(&masked, classes, &l, &mut out)
                    .unwrap();
                for (r, &o) in out.iter().enumerate() {
                    // The reference on the row without the masked class (log-softmax in f64).
                    let row = &masked[r * classes..(r + 1) * classes];
                    let kept: Vec<f64> = row
                        .iter()
                        .map(|v| v.f())
                        .filter(|v| v.is_finite())
                        .collect();
                    let t = row[l[r] as usize].f();
                    let max = kept.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let want = max + kept.iter().map(|v| (v - max).exp()).sum::<f64>().ln() - t;
                    if classes == 2 {
                        // Only the target is left: the loss is exactly 0 in exact arithmetic.
                        assert!(
                            o.f().abs() < 1e-6,
                            "{classes} classes row {r} on {tier}: {o:?}"
                        );
                    }
                    assert!(
                        o.f().is_finite() && (o.f() - want).abs() <= 1e-5 * want.abs().max(1.0),
                        "{classes} classes row {r} on {tier}: {o:?} vs {want}"
                    );
                }
                let mean = losskit::cross_entropy(&masked, classes, &l, Reduction::Mean).unwrap();
                assert!(
                    mean.f().is_finite(),
                    "{classes} classes on {tier}: {mean:?}"
                );

                // -inf on the target class: +inf for that row and for the reduction.
                for at in [0, rows / 2, rows - 1] {
                    let mut bad = x.clone();
                    bad[at * classes + l[at] as usize] = T::of(-INF);
                    let mut out = vec![T::of(0.0); rows];
                    CrossEntropy::new()
                        .each(&bad, classes, &l, &mut out)
                        .unwrap();
                    for (r, &o) in out.iter().enumerate() {
                        if r == at {
                            assert_eq!(
                                o.f(),
                                INF,
                                "{classes} classes, target masked in row {r} on {tier}"
                            );
                        } else {
                            assert!(
                                o.f().is_finite(),
                                "{classes} classes, row {r} on {tier}: {o:?}"
                            );
                        }
                    }
                    for r in [Reduction::Mean, Reduction::Sum] {
                        let got = losskit::cross_entropy(&bad, classes, &l, r).unwrap();
                        assert_eq!(got.f(), INF, "{classes} classes {r:?} on {tier}");
                    }
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn cross_entropy_minus_inf_logits_mask_classes() {
    ce_masked::<f32>();
    ce_masked::<f64>();
}

fn ce_nan_rows<T: E>() {
    for tier in Tier::available() {
        with_tier(tier, || {
            // 20000 x 8 is 160000 logits: several parallel chunks, short-row path.
            for (rows, classes) in [
                (1usize, 5usize),
                (9, 3),
                (17, 8),
                (20_000, 8),
                (40, 5000),
                (3, 70_000),
            ] {
                let x = logits::<T>(rows, classes);
                let l = labels(rows, classes);
                for at_row in [0, rows / 2, rows - 1] {
                    for at_col in [0, classes / 2, classes - 1] {
                        for bad in [NAN, INF] {
                            let mut x = x.clone();
                            x[at_row * classes + at_col] = T::of(bad);
                            let what = format!(
                                "{rows}x{classes}, {bad} at ({at_row}, {at_col}) on {tier}"
                            );
                            for r in [Reduction::Mean, Reduction::Sum] {
                                let got = losskit::cross_entropy(&x, classes, &l, r).unwrap();
                                assert!(got.f().is_nan(), "{what} {r:?}: {got:?}");
                                let got = CrossEntropy::new()
                                    .label_smoothing(0.1)
                                    .loss(&x, classes, &l, r)
                                    .unwrap();
                                assert!(got.f().is_nan(), "{what} smoothed {r:?}: {got:?}");
                            }
                            let mut out = vec![T::of(0.0); rows];
                            CrossEntropy::new().each(&x, classes, &l, &mut out).unwrap();
                            for (r, &o) in out.iter().enumerate() {
                                assert_eq!(o.f().is_nan(), r == at_row, "{what}: row {r} = {o:?}");
                            }
                        }
                    }
                }
                // A NaN probability target makes its row NaN.
                let mut p: Vec<T> = vec![T::of(1.0 / classes as f64); rows * classes];
                p[(rows / 2) * classes] = T::of(NAN);
                let got = losskit::cross_entropy_probs(&x, classes, &p, Reduction::Sum).unwrap();
                assert!(
                    got.f().is_nan(),
                    "{rows}x{classes} NaN probability on {tier}: {got:?}"
                );
                // A row of all -inf is NaN (log-softmax of nothing), as in PyTorch.
                let mut x = x.clone();
                let r0 = rows / 2;
                x[r0 * classes..(r0 + 1) * classes].fill(T::of(-INF));
                let mut out = vec![T::of(0.0); rows];
                CrossEntropy::new().each(&x, classes, &l, &mut out).unwrap();
                for (r, &o) in out.iter().enumerate() {
                    assert_eq!(
                        o.f().is_nan(),
                        r == r0,
                        "{rows}x{classes} all -inf row {r0} on {tier}: row {r} = {o:?}"
                    );
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn cross_entropy_nan_and_plus_inf_logits_give_nan() {
    ce_nan_rows::<f32>();
    ce_nan_rows::<f64>();
}

#[test]
fn cross_entropy_zero_total_weight_mean_is_nan() {
    // PyTorch divides by the summed weights of the scored rows: 0/0.
    let x = logits::<f32>(4, 3);
    let w = [0.0f32, 0.0, 1.0];
    let got = CrossEntropy::new()
        .weight(&w)
        .loss(&x, 3, &[0i64, 1, 0, 1], Reduction::Mean)
        .unwrap();
    assert!(got.is_nan(), "{got}");
    let got = CrossEntropy::new()
        .weight(&w)
        .loss(&x, 3, &[0i64, 1, 0, 1], Reduction::Sum)
        .unwrap();
    assert_eq!(got, 0.0);
}
