//! Cross-entropy with Gemma 2's logit softcap (`CrossEntropy::softcap`) on every tier against
//! its `reference` twins (`cross_entropy_softcap_row`, `..._row_grad`): class labels (weights,
//! ignore_index, label smoothing) and probability targets; the loss, each row's loss, the
//! gradient out of place and in place (bit-identical to each other, and its loss to the
//! reduced one's); masked (`-inf`) and huge logits; a few long rows split over segments.

use crate::common;

use common::Elem;
use losskit::reference::{self, RowTarget};
use losskit::{with_tier, CrossEntropy, LossError, Reduction, Tier};
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
    cap: f64,
}

fn logit() -> impl Strategy<Value = f64> {
    prop_oneof![
        10 => -40.0..40.0f64,
        1 => -1e4..1e4f64,
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..24,
        prop_oneof![1usize..40, 1usize..3000],
        any::<bool>(),
        prop_oneof![Just(0.0), 0.0..1.0f64],
        prop_oneof![Just(5.0), Just(30.0), 0.5..50.0f64],
    )
        .prop_flat_map(|(rows, classes, weighted, smoothing, cap)| {
            let rows = if classes > 600 { rows.min(4) } else { rows };
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
                .prop_map(move |(logits, labels, raw, weight)| Case {
                    rows,
                    classes,
                    logits,
                    labels,
                    probs: normalised(raw, classes),
                    weight,
                    smoothing,
                    cap,
                })
        })
}

/// Each row of `raw` divided by its sum.
fn normalised(mut raw: Vec<f64>, classes: usize) -> Vec<f64> {
    for row in raw.chunks_mut(classes) {
        let s: f64 = row.iter().sum::<f64>().max(1e-12);
        row.iter_mut().for_each(|p| *p /= s);
    }
    raw
}

/// Agreement with the f64 twin: relative 3e-5 (f32) / 1e-12 (f64) of `scale + |want|`, plus
/// that much absolutely (the capped logits are within about 4.5·u·cap of exact, 8e-6 for an
/// f32 cap of 30, and a row's loss within twice that); non-finite values match in kind.
fn close(got: f64, want: f64, scale: f64, f32: bool) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    let rel = if f32 { 3e-5 } else { 1e-12 };
    (got - want).abs() <= rel * (scale + want.abs()) + rel
}

fn check<T: Elem>(c: &Case) -> Result<(), TestCaseError> {
    let is_f32 = std::mem::size_of::<T>() == 4;
    let logits: Vec<T> = common::to(&c.logits);
    let probs: Vec<T> = common::to(&c.probs);
    let weight: Option<Vec<T>> = c.weight.as_ref().map(|w| common::to(w));
    let k = c.classes;
    let mut ce = CrossEntropy::new()
        .label_smoothing(c.smoothing)
        .softcap(T::of(c.cap));
    if let Some(w) = &weight {
        ce = ce.weight(w);
    }
    let cap = T::of(c.cap).f64();
    for probs_target in [false, true] {
        let target = |r: usize| common::row_target(r, probs_target, &probs, &c.labels, k);
        let rows: Vec<&[T]> = logits.chunks(k.max(1)).take(c.rows).collect();
        // The twin's gradient against central differences of the twin's loss (one class a
        // row, where the row is finite).
        for (r, row) in rows.iter().enumerate() {
            let j = (r * 7) % k;
            let w = weight.as_deref();
            let at = |v: f64| {
                let mut moved: Vec<f64> = row.iter().map(|x| x.f64()).collect();
                moved[j] = v;
                let moved: Vec<T> = common::to(&moved);
                reference::cross_entropy_softcap_row(&moved, target(r), w, c.smoothing, cap).0
            };
            let x = row[j].f64();
            if !is_f32 && row.iter().all(|v| v.f64().is_finite()) && x.abs() < 1e3 {
                let h = 1e-4;
                let fd = (at(x + h) - at(x - h)) / (2.0 * h);
                let g =
                    reference::cross_entropy_softcap_row_grad(row, target(r), w, c.smoothing, cap)
                        [j];
                prop_assert!(
                    (fd - g).abs() <= 1e-6 * (g.abs() + 1.0),
                    "row {r} class {j}: fd {fd} vs {g}"
                );
            }
        }
        let want: Vec<(f64, f64)> = (0..c.rows)
            .map(|r| {
                let w = weight.as_deref();
                reference::cross_entropy_softcap_row(rows[r], target(r), w, c.smoothing, cap)
            })
            .collect();
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
                let mut grad = vec![T::of(7.0); logits.len()];
                let mut in_place = logits.clone();
                let (sum, mean, fused, fused_in_place) = if probs_target {
                    ce.each_probs(&logits, k, &probs, &mut each).unwrap();
                    let fused = ce
                        .loss_and_grad_probs(&logits, k, &probs, Reduction::Sum, &mut grad)
                        .unwrap();
                    (
                        ce.loss_probs(&logits, k, &probs, Reduction::Sum).unwrap(),
                        ce.loss_probs(&logits, k, &probs, Reduction::Mean).unwrap(),
                        fused,
                        None,
                    )
                } else {
                    ce.each(&logits, k, &c.labels, &mut each).unwrap();
                    let fused = ce
                        .loss_and_grad(&logits, k, &c.labels, Reduction::Sum, &mut grad)
                        .unwrap();
                    let fused_in_place = ce
                        .loss_and_grad_in_place(&mut in_place, k, &c.labels, Reduction::Sum)
                        .unwrap();
                    (
                        ce.loss(&logits, k, &c.labels, Reduction::Sum).unwrap(),
                        ce.loss(&logits, k, &c.labels, Reduction::Mean).unwrap(),
                        fused,
                        Some(fused_in_place),
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
                prop_assert_eq!(fused.bits(), sum.bits(), "{} fused loss", tier);
                if let Some(l) = fused_in_place {
                    prop_assert_eq!(l.bits(), sum.bits(), "{} in-place loss", tier);
                    for (j, (a, b)) in grad.iter().zip(&in_place).enumerate() {
                        prop_assert_eq!(a.bits(), b.bits(), "{} in-place gradient {}", tier, j);
                    }
                }
                for r in 0..c.rows {
                    let w = weight.as_deref();
                    let want_grad = reference::cross_entropy_softcap_row_grad(
                        rows[r],
                        target(r),
                        w,
                        c.smoothing,
                        cap,
                    );
                    for (j, wg) in want_grad.iter().enumerate() {
                        let g = grad[r * k + j].f64();
                        prop_assert!(
                            close(g, *wg, 0.0, is_f32),
                            "{tier} probs={probs_target} row {r} class {j}: {g} vs {wg}"
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
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn f32_softcapped_cross_entropy_matches_its_twin_on_every_tier(c in case()) {
        check::<f32>(&c)?;
    }

    #[test]
    fn f64_softcapped_cross_entropy_matches_its_twin_on_every_tier(c in case()) {
        check::<f64>(&c)?;
    }
}

#[test]
fn few_long_rows_split_into_segments_match_the_twin_on_every_tier() {
    // Three rows of 150,001 classes: the engine sweeps each in parallel segments and begins
    // each row (the capped target logit) on the tier, outside the leaves.
    let (rows, classes) = (3usize, 150_001usize);
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f64 / (1u64 << 24) as f64
    };
    let mut logits: Vec<f64> = (0..rows * classes)
        .map(|_| (next() - 0.5) * 120.0)
        .collect();
    logits[..70_000].fill(f64::NEG_INFINITY);
    let probs = normalised((0..rows * classes).map(|_| next()).collect(), classes);
    let c = Case {
        rows,
        classes,
        logits,
        labels: vec![100_000, -100, 149_999],
        probs,
        weight: Some((0..classes).map(|_| 0.5 + next()).collect()),
        smoothing: 0.1,
        cap: 30.0,
    };
    check::<f32>(&c).unwrap();
    check::<f64>(&c).unwrap();
}

#[test]
fn a_masked_row_is_uniform_over_its_capped_logits() {
    // Every logit -inf: each becomes -cap, so the softmax is uniform and the loss ln(classes),
    // with gradient 0 (the slope of tanh at -inf is 0).
    let logits = [f32::NEG_INFINITY; 4];
    let ce = CrossEntropy::new().softcap(5.0f32);
    for tier in Tier::available() {
        with_tier(tier, || {
            let loss = ce.loss(&logits, 4, &[2i64], Reduction::Sum).unwrap();
            assert!((loss - 4.0f32.ln()).abs() <= 1e-6, "{tier}: {loss}");
            let mut grad = [1.0f32; 4];
            ce.loss_and_grad(&logits, 4, &[2i64], Reduction::Sum, &mut grad)
                .unwrap();
            assert_eq!(grad, [0.0; 4], "{tier}");
            // A single class: the loss is exactly 0, whatever the cap does to the logit.
            let one = ce.loss(&[-26.288f32], 1, &[0i64], Reduction::Sum).unwrap();
            assert_eq!(one, 0.0, "{tier}");
        })
        .unwrap();
    }
}

#[test]
fn softcaps_that_are_not_finite_and_positive_are_rejected_and_vocab_shards_refuse_one() {
    let logits = [0.0f32, 1.0];
    for cap in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        let err = CrossEntropy::new()
            .softcap(cap)
            .loss(&logits, 2, &[0i64], Reduction::Sum)
            .unwrap_err();
        match err {
            LossError::InvalidParameter { name, value, .. } => {
                assert_eq!(name, "softcap");
                assert!(value.to_bits() == (cap as f64).to_bits() || value.is_nan());
            }
            other => panic!("cap {cap}: {other:?}"),
        }
        assert!(err.to_string().contains("softcap"), "{err}");
    }
    let shard = losskit::VocabShard::new(0, 2, 2).unwrap();
    let mut out = [losskit::VocabRow::default()];
    let err = CrossEntropy::new()
        .softcap(30.0f32)
        .vocab_rows(&logits, shard, &[0i64], &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::InvalidParameter {
                name: "softcap",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn statistics_of_softcapped_rows_match_the_twin_on_every_tier() {
    // Entropy and loss of the capped rows; ranks of the raw logits.
    let (rows, classes, cap) = (48usize, 1000usize, 5.0f64);
    let mut state = 3u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f64 / (1u64 << 24) as f64
    };
    let logits: Vec<f32> = (0..rows * classes)
        .map(|_| ((next() - 0.5) * 60.0) as f32)
        .collect();
    let labels: Vec<i64> = (0..rows)
        .map(|r| match r % 5 {
            0 => -100,
            // The row's argmax: a top-1 hit.
            1 => {
                let row = &logits[r * classes..(r + 1) * classes];
                (0..classes).fold(0, |b, j| if row[j] > row[b] { j } else { b }) as i64
            }
            _ => (next() * classes as f64) as i64,
        })
        .collect();
    let (mut loss, mut entropy, mut top1, mut top5, mut counted) = (0.0, 0.0, 0u64, 0u64, 0u64);
    for r in 0..rows {
        let row = &logits[r * classes..(r + 1) * classes];
        if labels[r] == -100 {
            continue;
        }
        let t = labels[r] as usize;
        let capped = reference::softcap_row(row, cap);
        loss += reference::cross_entropy_row(&capped, RowTarget::Class(t), None, 0.0).0;
        entropy += reference::cross_entropy_row_stats(&capped, t).1;
        let rank = reference::cross_entropy_row_stats(row, t).0;
        top1 += u64::from(rank == 0);
        top5 += u64::from(rank < 5);
        counted += 1;
    }
    let n = counted as f64;
    let ce = CrossEntropy::new().softcap(cap as f32);
    for tier in Tier::available() {
        with_tier(tier, || {
            let s = ce.stats(&logits, classes, &labels).unwrap();
            assert_eq!(s.counted(), counted, "{tier}");
            assert_eq!(s.accuracy(), top1 as f64 / n, "{tier}");
            assert_eq!(s.top_k_accuracy(), top5 as f64 / n, "{tier}");
            let mean = ce.loss(&logits, classes, &labels, Reduction::Mean).unwrap();
            assert!(
                close(s.loss(Reduction::Mean), loss / n, 0.0, true),
                "{tier}"
            );
            assert!(close(mean as f64, loss / n, 0.0, true), "{tier}");
            let got = s.mean_entropy();
            assert!(
                close(got, entropy / n, 0.0, true),
                "{tier}: {got} vs {}",
                entropy / n
            );
        })
        .unwrap();
    }
}

#[test]
fn bf16_and_f16_logits_match_the_twin_on_their_widened_values_on_every_tier() {
    // Half logits are read in place and computed in f32: the loss at the f32 tolerance, the
    // gradient (written in the half type) at the conformance README's half tolerances.
    let (rows, classes, cap) = (9usize, 301usize, 30.0f64);
    let mut state = 17u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f64 / (1u64 << 24) as f64
    };
    let raw: Vec<f64> = (0..rows * classes).map(|_| (next() - 0.5) * 90.0).collect();
    let labels: Vec<i64> = (0..rows)
        .map(|r| {
            if r == 4 {
                -100
            } else {
                (r * 37 % classes) as i64
            }
        })
        .collect();
    fn run<H: losskit::Storage<Compute = f32> + Copy>(
        raw: &[f64],
        classes: usize,
        labels: &[i64],
        cap: f64,
        round: fn(f64) -> H,
        widen: fn(H) -> f64,
        (grad_rtol, grad_atol): (f64, f64),
    ) {
        let logits: Vec<H> = raw.iter().map(|&v| round(v)).collect();
        let widened: Vec<f64> = logits.iter().map(|&v| widen(v)).collect();
        let rows = labels.len();
        let target = |r: usize| match labels[r] {
            -100 => RowTarget::Ignored,
            t => RowTarget::Class(t as usize),
        };
        let want: Vec<(f64, f64)> = (0..rows)
            .map(|r| {
                let row = &widened[r * classes..(r + 1) * classes];
                reference::cross_entropy_softcap_row(row, target(r), None, 0.0, cap)
            })
            .collect();
        let want_sum: f64 = want.iter().map(|w| w.0).sum();
        let scale: f64 = want.iter().map(|w| w.0.abs()).sum();
        let ce = CrossEntropy::new().softcap(cap as f32);
        for tier in Tier::available() {
            with_tier(tier, || {
                let sum = ce.loss(&logits, classes, labels, Reduction::Sum).unwrap();
                assert!(
                    close(sum as f64, want_sum, scale, true),
                    "{tier}: {sum} vs {want_sum}"
                );
                let mut each = vec![0.0f32; rows];
                ce.each(&logits, classes, labels, &mut each).unwrap();
                for (r, (g, w)) in each.iter().zip(&want).enumerate() {
                    assert!(
                        close(*g as f64, w.0, 0.0, true),
                        "{tier} row {r}: {g} vs {}",
                        w.0
                    );
                }
                let mut grad = logits.clone();
                let fused = ce
                    .loss_and_grad(&logits, classes, labels, Reduction::Sum, &mut grad)
                    .unwrap();
                assert_eq!(fused.to_bits(), sum.to_bits(), "{tier}");
                for r in 0..rows {
                    let row = &widened[r * classes..(r + 1) * classes];
                    let w =
                        reference::cross_entropy_softcap_row_grad(row, target(r), None, 0.0, cap);
                    for (j, w) in w.iter().enumerate() {
                        let g = widen(grad[r * classes + j]);
                        assert!(
                            (g - w).abs() <= grad_atol + grad_rtol * w.abs(),
                            "{tier} row {r} class {j}: {g} vs {w}"
                        );
                    }
                }
            })
            .unwrap();
        }
    }
    use losskit::{bf16, f16};
    run::<bf16>(
        &raw,
        classes,
        &labels,
        cap,
        bf16::from_f64,
        bf16::to_f64,
        (8e-3, 1e-6),
    );
    run::<f16>(
        &raw,
        classes,
        &labels,
        cap,
        f16::from_f64,
        f16::to_f64,
        (1e-3, 1e-7),
    );
}
