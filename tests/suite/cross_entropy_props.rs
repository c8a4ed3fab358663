//! Differential tests of cross-entropy on every tier against `losskit::reference`: rows 0..64,
//! classes 1..5000, masked (-inf) classes, extreme magnitudes, weights, ignore_index and label
//! smoothing, class-label and probability targets.

use crate::common;

use common::Elem;
use losskit::reference::{self, RowTarget};
use losskit::{with_tier, CrossEntropy, Reduction, Tier};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    rows: usize,
    classes: usize,
    logits: Vec<f64>,
    labels: Vec<i64>,
    probs: Vec<f64>,
    weight: Option<Vec<f64>>,
    smoothing: f64,
}

fn logit() -> impl Strategy<Value = f64> {
    prop_oneof![
        10 => -8.0..8.0f64,
        1 => -1e4..1e4f64,
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..64,
        prop_oneof![1usize..40, 1usize..5000],
        any::<bool>(),
        prop_oneof![Just(0.0), 0.0..1.0f64],
    )
        .prop_flat_map(|(rows, classes, weighted, smoothing)| {
            let rows = if classes > 600 { rows.min(6) } else { rows };
            let n = rows * classes;
            (
                proptest::collection::vec(logit(), n),
                proptest::collection::vec(
                    prop_oneof![9 => 0..classes as i64, 1 => Just(-100i64)],
                    rows,
                ),
                proptest::collection::vec(0.0..1.0f64, n),
                proptest::collection::vec(0.0..2.0f64, classes)
                    .prop_map(move |w| weighted.then_some(w)),
            )
                .prop_map(move |(logits, labels, raw, weight)| {
                    // Normalise each row of probabilities.
                    let mut probs = raw;
                    for row in probs.chunks_mut(classes) {
                        let s: f64 = row.iter().sum::<f64>().max(1e-12);
                        row.iter_mut().for_each(|p| *p /= s);
                    }
                    Case {
                        rows,
                        classes,
                        logits,
                        labels,
                        probs,
                        weight,
                        smoothing,
                    }
                })
        })
}

/// Agreement with the f64 oracle: relative 2e-5 (f32) / 1e-12 (f64) of the magnitude, plus an
/// absolute floor; non-finite values must match in kind.
fn close(got: f64, want: f64, scale: f64, f32: bool) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    let rel = if f32 { 2e-5 } else { 1e-12 };
    (got - want).abs() <= rel * (scale + want.abs()) + rel
}

fn check<T: Elem>(c: &Case) -> Result<(), TestCaseError> {
    let is_f32 = std::mem::size_of::<T>() == 4;
    let logits: Vec<T> = common::to(&c.logits);
    let probs: Vec<T> = common::to(&c.probs);
    let weight: Option<Vec<T>> = c.weight.as_ref().map(|w| common::to(w));
    let k = c.classes;
    let mut ce = CrossEntropy::new().label_smoothing(c.smoothing);
    if let Some(w) = &weight {
        ce = ce.weight(w);
    }
    let target_of =
        |r: usize, probs_target: bool| common::row_target(r, probs_target, &probs, &c.labels, k);
    // The oracle, per row, on the rounded inputs.
    let rows_of = |probs_target: bool| -> Vec<(f64, f64)> {
        (0..c.rows)
            .map(|r| {
                let row = &logits[r * k..(r + 1) * k];
                reference::cross_entropy_row(
                    row,
                    target_of(r, probs_target),
                    weight.as_deref(),
                    c.smoothing,
                )
            })
            .collect()
    };
    for probs_target in [false, true] {
        let want = rows_of(probs_target);
        let scale: f64 = want
            .iter()
            .map(|(l, _)| l.abs())
            .filter(|l| l.is_finite())
            .sum();
        let want_sum: f64 = want.iter().map(|(l, _)| l).sum();
        let divisor: f64 = if probs_target {
            c.rows as f64
        } else {
            want.iter().map(|(_, w)| w).sum()
        };
        for tier in Tier::available() {
            with_tier(tier, || -> Result<(), TestCaseError> {
                let mut each = vec![T::of(7.0); c.rows];
                let (sum, mean) = if probs_target {
                    ce.each_probs(&logits, k, &probs, &mut each).unwrap();
                    (
                        ce.loss_probs(&logits, k, &probs, Reduction::Sum).unwrap(),
                        ce.loss_probs(&logits, k, &probs, Reduction::Mean).unwrap(),
                    )
                } else {
                    ce.each(&logits, k, &c.labels, &mut each).unwrap();
                    (
                        ce.loss(&logits, k, &c.labels, Reduction::Sum).unwrap(),
                        ce.loss(&logits, k, &c.labels, Reduction::Mean).unwrap(),
                    )
                };
                for (r, (g, (w, _))) in each.iter().zip(&want).enumerate() {
                    prop_assert!(
                        close(g.f64(), *w, 0.0, is_f32),
                        "{tier} probs={probs_target} row {r}: {g:?} vs {w}"
                    );
                }
                prop_assert!(
                    close(sum.f64(), want_sum, scale, is_f32),
                    "{tier} probs={probs_target} sum {sum:?} vs {want_sum}"
                );
                let want_mean = want_sum / divisor;
                prop_assert!(
                    close(mean.f64(), want_mean, scale / divisor, is_f32),
                    "{tier} probs={probs_target} mean {mean:?} vs {want_mean}"
                );
                // The gradient of the sum against the oracle's, element by element; for labels
                // also in place (the same bits), and the loss it returns is the reduced one's.
                let mut grad = vec![T::of(7.0); c.rows * k];
                let and_grad = if probs_target {
                    ce.loss_and_grad_probs(&logits, k, &probs, Reduction::Sum, &mut grad)
                } else {
                    ce.loss_and_grad(&logits, k, &c.labels, Reduction::Sum, &mut grad)
                }
                .unwrap();
                // Bit for bit (a NaN as a NaN).
                let same =
                    |a: T, b: T| a.bits() == b.bits() || (a.f64().is_nan() && b.f64().is_nan());
                prop_assert!(
                    same(and_grad, sum),
                    "{tier} probs={probs_target}: loss_and_grad {and_grad:?} vs loss {sum:?}"
                );
                if !probs_target {
                    let mut in_place = logits.clone();
                    let l = ce
                        .loss_and_grad_in_place(&mut in_place, k, &c.labels, Reduction::Sum)
                        .unwrap();
                    prop_assert!(same(l, sum), "{tier}: in place loss {l:?} vs {sum:?}");
                    prop_assert!(
                        in_place.iter().zip(&grad).all(|(&a, &b)| same(a, b)),
                        "{tier}: the gradient in place differs"
                    );
                }
                for r in 0..c.rows {
                    let want = reference::cross_entropy_row_grad(
                        &logits[r * k..(r + 1) * k],
                        target_of(r, probs_target),
                        weight.as_deref(),
                        c.smoothing,
                    );
                    for (j, (g, w)) in grad[r * k..(r + 1) * k].iter().zip(&want).enumerate() {
                        prop_assert!(
                            close(g.f64(), *w, 0.0, is_f32),
                            "{tier} probs={probs_target} grad[{r}][{j}]: {g:?} vs {w}"
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn f32_cross_entropy_matches_the_oracle_on_every_tier(c in case()) {
        check::<f32>(&c)?;
    }

    #[test]
    fn f64_cross_entropy_matches_the_oracle_on_every_tier(c in case()) {
        check::<f64>(&c)?;
    }
}

#[test]
fn cross_entropy_of_512_x_50257_f32_is_within_1e_6_of_f64_and_identical_for_1_2_3_8_threads() {
    let (rows, classes) = (512usize, 50257usize);
    let mut state = 0x1234_5678_u64;
    let logits: Vec<f32> = (0..rows * classes)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 16.0
        })
        .collect();
    let labels: Vec<u32> = (0..rows as u32)
        .map(|r| (r * 7919) % classes as u32)
        .collect();
    let exact: f64 = (0..rows)
        .map(|r| {
            let row = &logits[r * classes..(r + 1) * classes];
            reference::cross_entropy_row(row, RowTarget::Class(labels[r] as usize), None, 0.0).0
        })
        .sum::<f64>()
        / rows as f64;
    for tier in Tier::available() {
        let run = |threads: usize| {
            common::on_pool(threads, tier, || {
                losskit::cross_entropy(&logits, classes, &labels, Reduction::Mean).unwrap()
            })
        };
        let one = run(1);
        let rel = (one as f64 - exact).abs() / exact;
        println!("tier {tier}: {one} vs f64 {exact}: relative error {rel:.2e}");
        assert!(rel <= 1e-6, "tier {tier}: relative error {rel:e}");
        for threads in [2, 3, 8] {
            assert_eq!(
                run(threads).to_bits(),
                one.to_bits(),
                "tier {tier}: {threads} threads differ"
            );
        }
    }
}

/// Rows of `SPLIT` classes (3 rows: a batch of few long rows) are swept as parallel segments
/// whose partial sums are merged in a fixed tree. Row 0 has its whole first segment masked
/// (`-inf`), row 1 a masked run across a segment boundary.
fn split_case(seed: u64, weighted: bool, smoothing: f64) -> Case {
    const SPLIT: usize = 200_003;
    let (rows, classes) = (3usize, SPLIT);
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f64 / (1u64 << 24) as f64
    };
    let mut logits: Vec<f64> = (0..rows * classes).map(|_| (next() - 0.5) * 16.0).collect();
    logits[..65_536].fill(f64::NEG_INFINITY);
    logits[classes + 120_000..classes + 140_000].fill(f64::NEG_INFINITY);
    let mut probs: Vec<f64> = (0..rows * classes).map(|_| next()).collect();
    for row in probs.chunks_mut(classes) {
        let total: f64 = row.iter().sum();
        row.iter_mut().for_each(|p| *p /= total);
    }
    Case {
        rows,
        classes,
        logits,
        labels: vec![70_000, -100, 199_999],
        probs,
        weight: weighted.then(|| (0..classes).map(|_| 0.5 + 1.5 * next()).collect()),
        smoothing,
    }
}

#[test]
fn few_long_rows_split_into_segments_match_the_oracle_on_every_tier() {
    for (weighted, smoothing) in [(false, 0.0), (true, 0.1)] {
        let mut c = split_case(11, weighted, smoothing);
        check::<f32>(&c).unwrap();
        check::<f64>(&c).unwrap();
        // A NaN in the last segment of row 2 makes that row NaN, and only that row.
        c.logits[2 * c.classes + 190_000] = f64::NAN;
        check::<f32>(&c).unwrap();
    }
}

#[test]
fn few_long_rows_split_into_segments_give_identical_bits_and_gradients_for_1_2_3_8_threads() {
    let c = split_case(5, true, 0.1);
    let logits: Vec<f32> = common::to(&c.logits);
    let probs: Vec<f32> = common::to(&c.probs);
    let weight: Vec<f32> = common::to(c.weight.as_deref().unwrap());
    let ce = CrossEntropy::new().weight(&weight).label_smoothing(0.1);
    let k = c.classes;
    for tier in Tier::available() {
        let run = |threads: usize| {
            common::on_pool(threads, tier, || {
                let mut grad = vec![0.0f32; logits.len()];
                let loss = ce
                    .loss_and_grad(&logits, k, &c.labels, Reduction::Mean, &mut grad)
                    .unwrap();
                let mut in_place = logits.clone();
                let loss_in_place = ce
                    .loss_and_grad_in_place(&mut in_place, k, &c.labels, Reduction::Mean)
                    .unwrap();
                let mut grad_probs = vec![0.0f32; logits.len()];
                let loss_probs = ce
                    .loss_and_grad_probs(&logits, k, &probs, Reduction::Sum, &mut grad_probs)
                    .unwrap();
                assert_eq!(loss.to_bits(), loss_in_place.to_bits(), "{tier}");
                assert!(grad
                    .iter()
                    .zip(&in_place)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                (loss, grad, loss_probs, grad_probs)
            })
        };
        let one = run(1);
        // The gradient against the oracle's, per row (Mean divides by the summed target weights).
        let targets = |r: usize| match c.labels[r] {
            -100 => RowTarget::Ignored,
            t => RowTarget::Class(t as usize),
        };
        let divisor: f64 = (0..c.rows)
            .map(|r| {
                reference::cross_entropy_row(
                    &logits[r * k..(r + 1) * k],
                    targets(r),
                    Some(&weight),
                    0.1,
                )
                .1
            })
            .sum();
        for r in 0..c.rows {
            let row = &logits[r * k..(r + 1) * k];
            let want = reference::cross_entropy_row_grad(row, targets(r), Some(&weight), 0.1);
            let want_probs = reference::cross_entropy_row_grad(
                row,
                RowTarget::Probs(&probs[r * k..(r + 1) * k]),
                Some(&weight),
                0.1,
            );
            for (j, (w, wp)) in want.iter().zip(&want_probs).enumerate() {
                let (g, gp) = (one.1[r * k + j] as f64, one.3[r * k + j] as f64);
                let w = w / divisor;
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs() + 1e-9,
                    "{tier} row {r} class {j}: {g} vs {w}"
                );
                assert!(
                    (gp - wp).abs() <= 1e-5 * wp.abs() + 1e-9,
                    "{tier} row {r} class {j}: {gp} vs {wp}"
                );
            }
        }
        for threads in [2, 3, 8] {
            let other = run(threads);
            let same =
                |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert_eq!(
                other.0.to_bits(),
                one.0.to_bits(),
                "{tier}: {threads} threads"
            );
            assert_eq!(
                other.2.to_bits(),
                one.2.to_bits(),
                "{tier}: {threads} threads"
            );
            assert!(
                same(&other.1, &one.1),
                "{tier}: {threads} threads, gradient"
            );
            assert!(
                same(&other.3, &one.3),
                "{tier}: {threads} threads, probs gradient"
            );
        }
    }
}

/// Half-precision logits are widened exactly and swept in f32 (a row of four blocks or more
/// through a widened copy of each block that pass 1 stores and pass 2 reads): every form gives
/// the bits of the same call on the f32 widening, on every tier. A copy that misplaced, dropped
/// or padded a vector wrongly would change them.
#[test]
fn half_logits_give_the_bits_of_their_f32_widening_on_every_tier() {
    use losskit::{bf16, f16, Storage};
    fn run<H: Storage<Compute = f32>>(round: fn(f32) -> H, widen: fn(H) -> f32) {
        let mut bits = common::splitmix(29);
        let mut next = move || (bits() >> 40) as f32 / (1u64 << 24) as f32;
        // Mid rows (no copy), rows of 4–9 blocks with ragged ends, a row split into segments.
        for (rows, classes) in [
            (3usize, 1000usize),
            (3, 4096 + 17),
            (2, 9000 + 5),
            (1, 140_001),
        ] {
            let n = rows * classes;
            // A ramp, so that later blocks raise the max (the rescale), and masked classes.
            let logits: Vec<H> = (0..n)
                .map(|i| match i % 997 {
                    13 => round(f32::NEG_INFINITY),
                    _ => round((next() - 0.5) * 24.0 + (i % classes) as f32 * 4e-4),
                })
                .collect();
            let wide: Vec<f32> = logits.iter().map(|&v| widen(v)).collect();
            let labels: Vec<i64> = (0..rows)
                .map(|r| {
                    if r == 1 {
                        -100
                    } else {
                        ((r * 7919) % classes) as i64
                    }
                })
                .collect();
            let probs: Vec<f32> = (0..n)
                .map(|i| ((i % 7) as f32) / (3.0 * classes as f32))
                .collect();
            let weight: Vec<f32> = (0..classes).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
            let plain = CrossEntropy::new();
            let smooth = CrossEntropy::new().weight(&weight).label_smoothing(0.1);
            let capped = CrossEntropy::new().softcap(15.0);
            let tag = format!("{} {rows}x{classes}", core::any::type_name::<H>());
            for tier in Tier::available() {
                with_tier(tier, || {
                    for (name, ce) in [
                        ("plain", &plain),
                        ("smoothed", &smooth),
                        ("capped", &capped),
                    ] {
                        let (h, f) = (
                            ce.loss(&logits, classes, &labels, Reduction::Sum).unwrap(),
                            ce.loss(&wide, classes, &labels, Reduction::Sum).unwrap(),
                        );
                        assert_eq!(h.to_bits(), f.to_bits(), "{tier} {tag} {name}: {h} vs {f}");
                        let (mut each_h, mut each_f) = (vec![0.0f32; rows], vec![0.0f32; rows]);
                        ce.each(&logits, classes, &labels, &mut each_h).unwrap();
                        ce.each(&wide, classes, &labels, &mut each_f).unwrap();
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&each_h), bits(&each_f), "{tier} {tag} {name} each");
                    }
                    let (h, f) = (
                        smooth
                            .loss_probs(&logits, classes, &probs, Reduction::Mean)
                            .unwrap(),
                        smooth
                            .loss_probs(&wide, classes, &probs, Reduction::Mean)
                            .unwrap(),
                    );
                    assert_eq!(h.to_bits(), f.to_bits(), "{tier} {tag} probs: {h} vs {f}");
                    assert_eq!(
                        plain.stats(&logits, classes, &labels).unwrap(),
                        plain.stats(&wide, classes, &labels).unwrap(),
                        "{tier} {tag} stats"
                    );
                    // The gradient is computed in f32 and rounded once into the half type.
                    let (mut grad_h, mut grad_f) = (logits.clone(), vec![0.0f32; n]);
                    let h = plain
                        .loss_and_grad(&logits, classes, &labels, Reduction::Mean, &mut grad_h)
                        .unwrap();
                    let f = plain
                        .loss_and_grad(&wide, classes, &labels, Reduction::Mean, &mut grad_f)
                        .unwrap();
                    assert_eq!(h.to_bits(), f.to_bits(), "{tier} {tag} fused: {h} vs {f}");
                    let wrong = (0..n)
                        .filter(|&i| {
                            widen(grad_h[i]).to_bits() != widen(round(grad_f[i])).to_bits()
                        })
                        .count();
                    assert_eq!(wrong, 0, "{tier} {tag}: gradients not the rounded f32 ones");
                })
                .unwrap();
            }
        }
    }
    run::<bf16>(bf16::from_f32, bf16::to_f32);
    run::<f16>(f16::from_f32, f16::to_f32);
}
