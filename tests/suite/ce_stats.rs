//! `CrossEntropy::stats` against its scalar twin (`reference::cross_entropy_row_stats`) on every
//! tier and storage type, its loss against `loss` bit for bit, merges of shards in any order and
//! grouping, and thread counts.

use losskit::{bf16, reference, CeStats, CrossEntropy, Reduction, Storage, Tier};

use crate::common::{on_pool, splitmix};

/// A batch: logits with ties (integer logits), `-inf` masks and `+-0`, labels with some rows
/// ignored (-100).
struct Batch {
    logits: Vec<f64>,
    labels: Vec<i64>,
    classes: usize,
}

fn batch(seed: u64, rows: usize, classes: usize) -> Batch {
    let mut next = splitmix(seed);
    let integer = next().is_multiple_of(3);
    let logits = (0..rows * classes)
        .map(|_| {
            let r = next();
            match r % 50 {
                0 => f64::NEG_INFINITY,
                1 => -0.0,
                _ if integer => (r >> 32) as f64 % 7.0 - 3.0,
                _ => ((r >> 11) as f64 / (1u64 << 53) as f64) * 24.0 - 12.0,
            }
        })
        .collect();
    let labels = (0..rows)
        .map(|_| {
            let r = next();
            if r.is_multiple_of(9) {
                -100
            } else {
                ((r >> 20) % classes as u64) as i64
            }
        })
        .collect();
    Batch {
        logits,
        labels,
        classes,
    }
}

/// The shapes: short, mid and long rows, and few rows long enough to be split over segments.
const SHAPES: [(usize, usize); 9] = [
    (1, 1),
    (37, 2),
    (50, 5),
    (64, 10),
    (33, 33),
    (20, 1000),
    (5, 4099),
    (3, 70001),
    (2, 140_000),
];

/// The reference statistics of a batch of (widened) logits: (counted, top-1 hits, top-k hits,
/// Σ entropy).
fn expected(widened: &[f64], b: &Batch, k: usize) -> (u64, u64, u64, f64) {
    let mut out = (0, 0, 0, 0.0);
    for (row, &label) in widened.chunks_exact(b.classes).zip(&b.labels) {
        if label == -100 {
            continue;
        }
        let (rank, entropy) = reference::cross_entropy_row_stats(row, label as usize);
        out.0 += 1;
        out.1 += u64::from(rank == 0);
        out.2 += u64::from(rank < k as u64);
        out.3 += entropy;
    }
    out
}

/// How a logit is rounded to `S`, and how `S` is widened back.
type Conversions<S> = (fn(f64) -> S, fn(S) -> f64);

/// Checks one batch stored as `S` (`convert` rounds a logit to `S`, `widen` widens it back).
fn check_batch<S: Storage>(
    tier: Tier,
    b: &Batch,
    k: usize,
    (convert, widen): Conversions<S>,
    tol: f64,
) where
    S::Compute: Into<f64>,
{
    let logits: Vec<S> = b.logits.iter().map(|&v| convert(v)).collect();
    let widened: Vec<f64> = logits.iter().map(|&v| widen(v)).collect();
    let ce = CrossEntropy::new().top_k(k);
    let (s, loss_mean, loss_sum) = losskit::with_tier(tier, || {
        (
            ce.stats(&logits, b.classes, &b.labels).unwrap(),
            ce.loss(&logits, b.classes, &b.labels, Reduction::Mean)
                .unwrap(),
            ce.loss(&logits, b.classes, &b.labels, Reduction::Sum)
                .unwrap(),
        )
    })
    .unwrap();
    let (counted, top1, topk, entropy) = expected(&widened, b, k);
    let what = format!(
        "{tier} {} {}x{} k={k}",
        std::any::type_name::<S>(),
        b.labels.len(),
        b.classes
    );
    assert_eq!(s.counted(), counted, "{what}: counted");
    assert_eq!(s.k(), Some(k), "{what}");
    let share = |n: u64| n as f64 / counted as f64;
    assert_eq!(
        s.accuracy().to_bits(),
        share(top1).to_bits(),
        "{what}: accuracy"
    );
    assert_eq!(
        s.top_k_accuracy().to_bits(),
        share(topk).to_bits(),
        "{what}: top-k accuracy"
    );
    // The statistics' loss is the loss's own sum and mean, rounded as `loss` rounds them: bit
    // for bit where both sweep the rows alike (rows of more than 32 classes, or one lane);
    // short rows, which `loss` sweeps one row per lane, within the summation bound.
    let round = |x: f64| -> f64 { convert_compute::<S>(x) };
    let pairs = [
        (round(s.loss(Reduction::Mean)), loss_mean.into()),
        (round(s.loss(Reduction::Sum)), loss_sum.into()),
    ];
    for (got, want) in pairs {
        if b.classes > 32 || tier == Tier::Scalar {
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{what}: loss {got} vs {want}"
            );
        } else {
            let ulp = if std::mem::size_of::<S::Compute>() == 4 {
                1.2e-7
            } else {
                2.3e-16
            };
            assert!(
                (got - want).abs() <= 2.0 * ulp * want.abs() || got.to_bits() == want.to_bits(),
                "{what}: loss {got} vs {want}"
            );
        }
    }
    let want = entropy / counted as f64;
    let got = s.mean_entropy();
    if counted == 0 {
        assert!(
            got.is_nan() && s.accuracy().is_nan(),
            "{what}: nothing counted"
        );
    } else if want.is_nan() {
        assert!(got.is_nan(), "{what}: entropy {got} for a NaN row");
    } else {
        assert!(
            (got - want).abs() <= tol * (1.0 + want.abs()),
            "{what}: mean entropy {got} vs {want}"
        );
    }
}

/// `x` rounded to the compute type of `S`, widened back.
fn convert_compute<S: Storage>(x: f64) -> f64 {
    if std::mem::size_of::<S::Compute>() == 4 {
        x as f32 as f64
    } else {
        x
    }
}

#[test]
fn stats_match_the_reference_on_every_tier_and_storage() {
    for tier in Tier::available() {
        for (i, &(rows, classes)) in SHAPES.iter().enumerate() {
            let b = batch(0x5EED + i as u64, rows, classes);
            let k = 1 + i % 6;
            check_batch::<f64>(tier, &b, k, (|v| v, |v| v), 1e-12);
            check_batch::<f32>(tier, &b, k, (|v| v as f32, f64::from), 2e-5);
            check_batch::<bf16>(tier, &b, k, (bf16::from_f64, bf16::to_f64), 2e-5);
        }
    }
}

/// A batch whose labels sit near the top of their rows (the `r`-th largest logit, `r` in
/// `0..8`, ties and NaN included): the rows an eval of a good model scores, where the sweep
/// must count exactly instead of deciding the rank from its lane maxima.
fn near_the_top(seed: u64, rows: usize, classes: usize) -> Batch {
    let mut b = batch(seed, rows, classes);
    let mut next = splitmix(seed ^ 0xA11CE);
    for (row, label) in b.logits.chunks_exact_mut(classes).zip(&mut b.labels) {
        if *label == -100 {
            continue;
        }
        // A NaN in some rows, a tie with the top in others (copied from the row's max).
        match next() % 4 {
            0 => row[(next() % classes as u64) as usize] = f64::NAN,
            1 => {
                let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                row[(next() % classes as u64) as usize] = top;
            }
            _ => {}
        }
        let mut order: Vec<usize> = (0..classes).filter(|&c| !row[c].is_nan()).collect();
        order.sort_by(|&a, &c| row[c].partial_cmp(&row[a]).unwrap());
        if !order.is_empty() {
            let r = (next() % 8) as usize;
            *label = order[r.min(order.len() - 1)] as i64;
        }
    }
    b
}

#[test]
fn stats_match_the_reference_for_labels_near_the_top() {
    // Rows of one block, of a few blocks, and long enough to be split over segments.
    let shapes = [(64, 40), (40, 1000), (9, 4099), (3, 70001), (2, 140_000)];
    for tier in Tier::available() {
        for (i, &(rows, classes)) in shapes.iter().enumerate() {
            for k in [1, 3, 5] {
                let b = near_the_top(0x70B + i as u64 * 8 + k as u64, rows, classes);
                check_batch::<f64>(tier, &b, k, (|v| v, |v| v), 1e-12);
                check_batch::<f32>(tier, &b, k, (|v| v as f32, f64::from), 2e-5);
                check_batch::<bf16>(tier, &b, k, (bf16::from_f64, bf16::to_f64), 2e-5);
            }
        }
    }
}

#[test]
fn stats_reject_a_top_k_of_zero_and_bad_shapes() {
    let logits = [0.0f32; 6];
    let e = CrossEntropy::new().top_k(0).stats(&logits, 3, &[0i64, 1]);
    assert!(matches!(
        e,
        Err(losskit::LossError::InvalidParameter { name: "top_k", .. })
    ));
    let e = CrossEntropy::new().stats(&logits, 4, &[0i64]);
    assert!(matches!(
        e,
        Err(losskit::LossError::NotMultipleOfClasses { .. })
    ));
    let e = CrossEntropy::new().stats(&logits, 3, &[0i64, 3]);
    assert!(matches!(e, Err(losskit::LossError::LabelOutOfRange { .. })));
}

/// The bits that must not depend on how shards were merged.
fn fingerprint(s: &CeStats) -> [u64; 6] {
    [
        s.counted(),
        s.loss(Reduction::Sum).to_bits(),
        s.loss(Reduction::Mean).to_bits(),
        s.accuracy().to_bits(),
        s.top_k_accuracy().to_bits(),
        s.mean_entropy().to_bits(),
    ]
}

#[test]
fn merged_shards_give_the_same_bits_in_any_order_and_the_whole_within_the_bound() {
    let mut next = splitmix(0xC0FFEE);
    for (i, &(rows, classes)) in SHAPES.iter().enumerate().filter(|(_, s)| s.0 >= 5) {
        let b = batch(0xBA7C4 + i as u64, rows, classes);
        let ce = CrossEntropy::new();
        let whole = ce.stats(&b.logits, classes, &b.labels).unwrap();
        for trial in 0..6 {
            // Random cut points between rows (empty shards included).
            let mut cuts: Vec<usize> = (0..1 + trial % 4)
                .map(|_| next() as usize % (rows + 1))
                .collect();
            cuts.extend([0, rows]);
            cuts.sort_unstable();
            let shards: Vec<CeStats> = cuts
                .windows(2)
                .map(|w| {
                    let (r0, r1) = (w[0], w[1]);
                    ce.stats(
                        &b.logits[r0 * classes..r1 * classes],
                        classes,
                        &b.labels[r0..r1],
                    )
                    .unwrap()
                })
                .collect();
            let in_order = shards[1..]
                .iter()
                .fold(shards[0].clone(), |a, s| a.merge(s));
            let reversed = shards[..shards.len() - 1]
                .iter()
                .rev()
                .fold(shards[shards.len() - 1].clone(), |a, s| a.merge(s));
            let paired = shards
                .chunks(2)
                .map(|p| p[1..].iter().fold(p[0].clone(), |a, s| s.merge(&a)))
                .collect::<Vec<_>>();
            let grouped = paired[1..]
                .iter()
                .fold(paired[0].clone(), |a, s| s.merge(&a));
            let want = fingerprint(&in_order);
            assert_eq!(
                fingerprint(&reversed),
                want,
                "{rows}x{classes} trial {trial}"
            );
            assert_eq!(
                fingerprint(&grouped),
                want,
                "{rows}x{classes} trial {trial}"
            );
            // Against the unsplit batch: counts exactly, sums within f64 summation error.
            assert_eq!(in_order.counted(), whole.counted());
            assert_eq!(in_order.accuracy().to_bits(), whole.accuracy().to_bits());
            assert_eq!(
                in_order.top_k_accuracy().to_bits(),
                whole.top_k_accuracy().to_bits()
            );
            for (got, want) in [
                (in_order.loss(Reduction::Sum), whole.loss(Reduction::Sum)),
                (in_order.mean_entropy(), whole.mean_entropy()),
            ] {
                assert!(
                    (got - want).abs() <= 1e-12 * want.abs().max(1e-300) || got == want,
                    "{rows}x{classes}: merged {got} vs whole {want}"
                );
            }
        }
    }
}

#[test]
fn merging_stats_of_different_k_leaves_no_top_k_accuracy() {
    let logits = [1.0f32, 0.0, 2.0, 0.0];
    let a = CrossEntropy::new()
        .top_k(1)
        .stats(&logits, 2, &[0i64, 0])
        .unwrap();
    let b = CrossEntropy::new()
        .top_k(2)
        .stats(&logits, 2, &[1i64, 1])
        .unwrap();
    let m = a.merge(&b);
    assert_eq!(m.k(), None);
    assert!(m.top_k_accuracy().is_nan());
    assert_eq!((m.counted(), m.accuracy()), (4, 0.5));
}

#[test]
fn stats_are_bit_identical_across_thread_counts() {
    for (i, &(rows, classes)) in SHAPES.iter().enumerate() {
        let b = batch(0x7EAD + i as u64, rows, classes);
        let logits: Vec<f32> = b.logits.iter().map(|&v| v as f32).collect();
        for tier in Tier::available() {
            let run = |threads| {
                on_pool(threads, tier, || {
                    fingerprint(
                        &CrossEntropy::new()
                            .stats(&logits, classes, &b.labels)
                            .unwrap(),
                    )
                })
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                assert_eq!(
                    run(threads),
                    one,
                    "{tier} {rows}x{classes} {threads} threads"
                );
            }
        }
    }
}
