//! Gradients: every fused kernel against the scalar reference gradient on every tier, the
//! reference gradients against central finite differences of the reference losses (f64), and
//! identical bits in place, out of place and for any thread count.

use crate::common;

use common::Elem;
use losskit::reference;
use losskit::{with_tier, CrossEntropy, Reduction, Tier};
use proptest::prelude::*;

use crate::registry::{Domain, Pointwise, POINTWISE};

/// Every pointwise loss of the registry at every setting.
fn settings() -> impl Iterator<Item = (&'static Pointwise, Option<f64>)> {
    POINTWISE
        .iter()
        .flat_map(|&l| l.settings.iter().map(move |&p| (l, p)))
}

/// Inputs valid for `loss`: each argument folded into its domain (probabilities for bce, soft
/// labels for bce_with_logits's target), anything moderate otherwise.
fn inputs(loss: &Pointwise, raw_x: &[f64], raw_y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    (
        raw_x.iter().map(|&v| loss.input.fold(v)).collect(),
        raw_y.iter().map(|&v| loss.target.fold(v)).collect(),
    )
}

fn check_pointwise<T: Elem>(
    raw_x: &[f64],
    raw_y: &[f64],
    offset: usize,
    unit: f64,
) -> Result<(), TestCaseError> {
    for (loss, setting) in settings() {
        let name = loss.label(setting);
        let p = setting.map(T::of);
        let (x, y) = inputs(loss, raw_x, raw_y);
        let x: Vec<T> = common::to(&x);
        let y: Vec<T> = common::to(&y);
        let (x, y) = (&x[offset..], &y[offset..]);
        let n = x.len();
        let want: Vec<T> = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| loss.reference_grad(a, b, p))
            .collect();
        for tier in Tier::available() {
            with_tier(tier, || -> Result<(), TestCaseError> {
                for (r, scale) in [
                    (Reduction::Sum, 1.0),
                    (Reduction::Mean, 1.0 / n.max(1) as f64),
                ] {
                    let mut grad = vec![T::of(9.0); n];
                    let loss_value = loss.and_grad(x, y, p, r, &mut grad).unwrap();
                    let plain = match r {
                        Reduction::Sum => reference::reduce(
                            x.iter().zip(y).map(|(&a, &b)| loss.reference(a, b, p)),
                            r,
                        ),
                        Reduction::Mean => reference::reduce(
                            x.iter().zip(y).map(|(&a, &b)| loss.reference(a, b, p)),
                            r,
                        ),
                    };
                    let (lv, pv) = (loss_value.f64(), plain.f64());
                    prop_assert!(
                        (lv - pv).abs() <= 64.0 * unit * (pv.abs() + 1.0)
                            || (lv.is_nan() && pv.is_nan()),
                        "{name} {r:?} on {tier}: loss {lv} vs {pv}"
                    );
                    // The gradient is a difference of terms of this size (lw·sigmoid - pw·t for
                    // bce_with_logits), so rounding errors are relative to it, not to the result.
                    let terms = (loss.grad_terms)(setting);
                    for (i, (g, w)) in grad.iter().zip(&want).enumerate() {
                        let (g, w) = (g.f64(), w.f64() * scale);
                        // Exact formulas agree to the last bit but for the mean's scaling and,
                        // for bce_with_logits, the vector exp (1 ulp).
                        prop_assert!(
                            (g - w).abs() <= 4.0 * unit * (w.abs() + terms * scale),
                            "{name} {r:?} on {tier}: grad[{i}] {g} vs {w} (x={:?}, y={:?})",
                            x[i],
                            y[i]
                        );
                    }
                }
                Ok(())
            })
            .unwrap()?;
        }
    }
    Ok(())
}

/// Central difference of `f` at `x` in f64.
fn central(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-6 * x.abs().max(1.0);
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// The five-point central difference `(-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h`, for
/// smooth functions that are sums of many terms. Its truncation error is `O(h^4)`, so `h` can
/// be large enough that the rounding of the sum (a few hundred ulps of a loss of up to ~1000,
/// for a row of 300 classes against unnormalised probability targets) is divided by `1e-3`
/// rather than by `1e-6`: with the two-point difference and `h = 1e-6` that rounding alone
/// reached 1e-6 (row 3 class 21 of a 9x266 case: fd -0.0970172 vs -0.0970183).
fn central5(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    let h = 1e-3 * x.abs().max(1.0);
    (f(x - 2.0 * h) - 8.0 * f(x - h) + 8.0 * f(x + h) - f(x + 2.0 * h)) / (12.0 * h)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn pointwise_gradients_match_the_reference_on_every_tier(
        (x, y, offset) in (0usize..3000, 0usize..9).prop_flat_map(|(n, off)| (
            proptest::collection::vec(-6.0..6.0f64, n + off),
            proptest::collection::vec(-6.0..6.0f64, n + off),
            Just(off),
        ))
    ) {
        check_pointwise::<f32>(&x, &y, offset, f32::EPSILON as f64 / 2.0)?;
        check_pointwise::<f64>(&x, &y, offset, f64::EPSILON / 2.0)?;
    }

    #[test]
    fn reference_gradients_match_finite_differences(x in -6.0..6.0f64, y in -6.0..6.0f64, p in 0.02..0.98f64, t in 0.0..1.0f64) {
        for (loss, setting) in settings() {
            // A probability where the domain is [0, 1], away from its ends.
            let x = if loss.input == Domain::Real { x } else { p };
            let y = if loss.target == Domain::Real { y } else { t };
            // Stay away from the kinks (|d| = 0, delta, beta), where one-sided slopes differ.
            let d = (x - y).abs();
            let kink = loss.param.is_some_and(|param| param.kink);
            prop_assume!(d > 1e-3 && !(kink && (d - setting.unwrap()).abs() <= 1e-3));
            let fd = central(|v| loss.reference::<f64>(v, y, setting), x);
            let g = loss.reference_grad::<f64>(x, y, setting);
            prop_assert!((fd - g).abs() <= 1e-6 * (g.abs() + 1.0), "{} at x={x}, y={y}: fd {fd} vs {g}", loss.label(setting));
        }
    }

    #[test]
    fn cross_entropy_gradients_match_the_reference_and_finite_differences(
        (rows, classes, logits, labels, probs, smoothing, weighted) in (1usize..12, 1usize..300, prop_oneof![Just(0.0), 0.0..1.0f64], any::<bool>())
            .prop_flat_map(|(rows, classes, smoothing, weighted)| (
                Just(rows),
                Just(classes),
                proptest::collection::vec(-8.0..8.0f64, rows * classes),
                proptest::collection::vec(prop_oneof![9 => 0..classes as i64, 1 => Just(-100i64)], rows),
                proptest::collection::vec(0.0..1.0f64, rows * classes),
                Just(smoothing),
                Just(weighted),
            ))
    ) {
        let weight: Option<Vec<f64>> = weighted.then(|| (0..classes).map(|k| 0.5 + (k % 3) as f64 * 0.25).collect());
        let mut ce = CrossEntropy::new().label_smoothing(smoothing);
        if let Some(w) = &weight {
            ce = ce.weight(w);
        }
        let target =
            |r: usize, as_probs: bool| common::row_target(r, as_probs, &probs, &labels, classes);
        for as_probs in [false, true] {
            // Reference gradient of the summed loss, checked against finite differences.
            let mut want = Vec::with_capacity(rows * classes);
            for r in 0..rows {
                let row = &logits[r * classes..(r + 1) * classes];
                let g = reference::cross_entropy_row_grad(row, target(r, as_probs), weight.as_deref(), smoothing);
                let j = (r * 7) % classes;
                let fd = central5(|v| {
                    let mut moved = row.to_vec();
                    moved[j] = v;
                    reference::cross_entropy_row(&moved, target(r, as_probs), weight.as_deref(), smoothing).0
                }, row[j]);
                prop_assert!((fd - g[j]).abs() <= 1e-6 * (g[j].abs() + 1.0), "row {r} class {j}: fd {fd} vs {}", g[j]);
                want.extend(g);
            }
            for tier in Tier::available() {
                with_tier(tier, || -> Result<(), TestCaseError> {
                    let mut grad = vec![7.0f64; rows * classes];
                    if as_probs {
                        ce.loss_and_grad_probs(&logits, classes, &probs, Reduction::Sum, &mut grad).unwrap();
                    } else {
                        ce.loss_and_grad(&logits, classes, &labels, Reduction::Sum, &mut grad).unwrap();
                        let mut in_place = logits.clone();
                        ce.loss_and_grad_in_place(&mut in_place, classes, &labels, Reduction::Sum).unwrap();
                        prop_assert!(in_place.iter().zip(&grad).all(|(a, b)| a.to_bits() == b.to_bits()), "{tier}: in place differs");
                    }
                    for (i, (g, w)) in grad.iter().zip(&want).enumerate() {
                        prop_assert!((g - w).abs() <= 1e-12 * (w.abs() + 1.0), "{tier} probs={as_probs} grad[{i}] {g} vs {w}");
                    }
                    Ok(())
                })
                .unwrap()?;
            }
        }
    }
}

#[test]
fn gradients_are_bit_identical_for_1_2_3_and_8_threads() {
    let n = 300_007;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2003) as f32 / 200.0 - 5.0)
        .collect();
    let y: Vec<f32> = (0..n)
        .map(|i| ((i * 104_729) % 1999) as f32 / 200.0 - 5.0)
        .collect();
    let (rows, classes) = (37, 9001);
    let logits: Vec<f32> = (0..rows * classes)
        .map(|i| ((i * 31) % 4001) as f32 / 400.0 - 5.0)
        .collect();
    let labels: Vec<u64> = (0..rows as u64)
        .map(|r| (r * 977) % classes as u64)
        .collect();
    for tier in Tier::available() {
        let run = |threads: usize| {
            common::on_pool(threads, tier, || {
                let mut g1 = vec![0.0f32; n];
                let l1 = losskit::mse_and_grad(&x, &y, Reduction::Mean, &mut g1).unwrap();
                let mut g2 = vec![0.0f32; rows * classes];
                let l2 = losskit::cross_entropy_and_grad(
                    &logits,
                    classes,
                    &labels,
                    Reduction::Mean,
                    &mut g2,
                )
                .unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                (l1.to_bits(), bits(&g1), l2.to_bits(), bits(&g2))
            })
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert!(
                run(threads) == one,
                "tier {tier}: {threads} threads differ from 1"
            );
        }
    }
}
