//! Vocabulary-sharded cross-entropy against the unsharded call: 2, 3 and 7 uneven shards (and
//! one shard of a row long enough for the engine to split it), on every tier and storage type,
//! with and without the options; the loss, each row's loss, the statistics and the gradient
//! within the bound, counts and ranks exactly; one whole-row shard bit for bit; thread counts
//! bit for bit; every misuse an error that writes nothing.

use losskit::{bf16, CrossEntropy, LossError, Reduction, Tier, VocabRow, VocabShard};

use crate::common::{on_pool, splitmix, units, AnyStorage, Elem};

/// A batch as `f64` logits (ties, `-inf` masks, a few large ones) and labels (some ignored).
struct Batch {
    logits: Vec<f64>,
    labels: Vec<i64>,
    weights: Vec<f64>,
    rows: usize,
    classes: usize,
}

fn batch(seed: u64, rows: usize, classes: usize) -> Batch {
    let mut next = splitmix(seed);
    let integer = next().is_multiple_of(3);
    let logits: Vec<f64> = (0..rows * classes)
        .map(|_| {
            let r = next();
            match r % 64 {
                0 => f64::NEG_INFINITY,
                1 => 40.0,
                _ if integer => (r >> 32) as f64 % 7.0 - 3.0,
                _ => ((r >> 11) as f64 / (1u64 << 53) as f64) * 24.0 - 12.0,
            }
        })
        .collect();
    let labels: Vec<i64> = (0..rows)
        .map(|_| {
            let r = next();
            if r.is_multiple_of(7) {
                -100
            } else {
                ((r >> 20) % classes as u64) as i64
            }
        })
        .collect();
    // A label on a masked class makes its row's loss infinite and every sum with it: keep the
    // sums finite, so that the bounds below say something.
    let mut logits = logits;
    for (row, &l) in labels.iter().enumerate() {
        if l >= 0 && logits[row * classes + l as usize] == f64::NEG_INFINITY {
            logits[row * classes + l as usize] = 0.0;
        }
    }
    let weights = (0..classes)
        .map(|_| 0.25 + (next() % 16) as f64 / 8.0)
        .collect();
    Batch {
        logits,
        labels,
        weights,
        rows,
        classes,
    }
}

/// `n` uneven shards of `classes` (each at least one class), as (offset, width).
fn shards(seed: u64, classes: usize, n: usize) -> Vec<(usize, usize)> {
    let mut next = splitmix(seed);
    let mut cuts: Vec<usize> = vec![0, classes];
    while cuts.len() < n + 1 {
        let c = 1 + (next() % (classes as u64 - 1)) as usize;
        if !cuts.contains(&c) {
            cuts.push(c);
        }
    }
    cuts.sort_unstable();
    cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect()
}

/// A shard's own `[rows, width]` matrix.
fn slice<S: Copy>(logits: &[S], classes: usize, (offset, width): (usize, usize)) -> Vec<S> {
    logits
        .chunks_exact(classes)
        .flat_map(|row| row[offset..offset + width].iter().copied())
        .collect()
}

/// The target logit of each row (0 for ignored rows), as every shard's stats sweep takes it.
fn target_logits<S: AnyStorage>(logits: &[S], b: &Batch) -> Vec<S::Compute> {
    b.labels
        .iter()
        .enumerate()
        .map(|(row, &l)| match l {
            -100 => S::Compute::of(0.0),
            _ => S::Compute::of(logits[row * b.classes + l as usize].wide()),
        })
        .collect()
}

/// What every shard computes, merged in shard order: the plain partials and the ranked ones.
fn merged_rows<S: AnyStorage>(
    ce: &CrossEntropy<'_, S::Compute>,
    logits: &[S],
    b: &Batch,
    parts: &[(usize, usize)],
) -> (Vec<VocabRow>, Vec<VocabRow>) {
    let targets = target_logits(logits, b);
    let mut plain = vec![VocabRow::default(); b.rows];
    let mut ranked = vec![VocabRow::default(); b.rows];
    for &part in parts {
        let shard = VocabShard::new(part.0, part.1, b.classes).unwrap();
        let x = slice(logits, b.classes, part);
        let mut p = vec![VocabRow::default(); b.rows];
        let mut r = vec![VocabRow::default(); b.rows];
        ce.vocab_rows(&x, shard, &b.labels, &mut p).unwrap();
        ce.vocab_stats_rows(&x, shard, &b.labels, &targets, &mut r)
            .unwrap();
        for (m, q) in plain.iter_mut().zip(&p).chain(ranked.iter_mut().zip(&r)) {
            // Commutative, bit for bit, and the default is the identity (a fold starts there).
            assert_eq!(m.merge(q), q.merge(m));
            assert_eq!(VocabRow::default().merge(q), *q);
            *m = m.merge(q);
        }
    }
    (plain, ranked)
}

/// The options of the two runs: PyTorch's defaults, and weights, smoothing and z-loss.
fn builders<T: Elem>(w: &[T]) -> [CrossEntropy<'_, T>; 2] {
    [
        CrossEntropy::new().top_k(3),
        CrossEntropy::new()
            .weight(w)
            .label_smoothing(0.1)
            .z_loss(1e-3)
            .top_k(2),
    ]
}

/// Checks every sharded result of `b` stored as `S` against the unsharded call, on `tier`.
fn check_sharded<S: AnyStorage>(tier: Tier, b: &Batch, parts: &[(usize, usize)])
where
    S::Compute: Elem,
{
    let w: Vec<S::Compute> = b.weights.iter().map(|&v| S::Compute::of(v)).collect();
    let (u, store, tiny) = units::<S>();
    // Each row's log-sum-exp is within (BLOCK_VECS / 4 + 6)·u = 22u of exact (plus an ulp per
    // term of exp) whatever its blocks, sharded or not; the smoothing sums the same, relative
    // to Σ w|x - max|. So a row's losses differ by at most twice that, relative to those
    // magnitudes, plus the final roundings.
    let row_tol = |loss: f64, lse: f64| 48.0 * u * (2.0 + loss.abs() + 2.0 * lse.abs());
    for (o, ce) in builders(&w).into_iter().enumerate() {
        // Smoothing spreads the target over every class, masked ones too, which makes a masked
        // row's loss infinite (as in PyTorch): unmask them for that run.
        let logits: Vec<S> = b
            .logits
            .iter()
            .map(|&v| S::of(if o == 1 { v.max(-30.0) } else { v }))
            .collect();
        let what = format!(
            "{tier} {} {}x{} {} shards, options {o}",
            std::any::type_name::<S>(),
            b.rows,
            b.classes,
            parts.len()
        );
        losskit::with_tier(tier, || {
            let (plain, ranked) = merged_rows(&ce, &logits, b, parts);
            let (c, labels) = (b.classes, &b.labels);
            // Each row.
            let mut each = vec![S::Compute::of(0.0); b.rows];
            let mut want = vec![S::Compute::of(0.0); b.rows];
            ce.vocab_each(&plain, labels, &mut each).unwrap();
            ce.each(&logits, c, labels, &mut want).unwrap();
            let mut bound = 0.0;
            for (row, ((g, e), m)) in each.iter().zip(&want).zip(&plain).enumerate() {
                let (g, e) = (g.f64(), e.f64());
                if labels[row] == -100 {
                    assert_eq!(g, 0.0, "{what}: ignored row {row}");
                    continue;
                }
                let tol = row_tol(e, m.log_sum_exp());
                bound += tol;
                assert!(
                    (g - e).abs() <= tol || g.to_bits() == e.to_bits(),
                    "{what}: row {row}: {g} vs {e}"
                );
            }
            // What Mean divides by: the summed weights of the scored rows.
            let weights: f64 = labels
                .iter()
                .filter(|&&l| l != -100)
                .map(|&l| if o == 0 { 1.0 } else { w[l as usize].f64() })
                .sum();
            let divisor = |r| if r == Reduction::Mean { weights } else { 1.0 };
            // The reductions: the rows' bounds summed, and the final rounding.
            for r in [Reduction::Sum, Reduction::Mean] {
                let got = ce.vocab_loss(&plain, labels, r).unwrap().f64();
                let want = ce.loss(&logits, c, labels, r).unwrap().f64();
                let divisor = divisor(r);
                let tol = bound / divisor + 4.0 * u * want.abs();
                assert!(
                    (got - want).abs() <= tol || got.to_bits() == want.to_bits(),
                    "{what}: {r:?} {got} vs {want}"
                );
            }
            // The statistics: counts and ranks exactly.
            let s = ce.vocab_stats(&ranked, labels).unwrap();
            let t = ce.stats(&logits, c, labels).unwrap();
            assert_eq!(s.counted(), t.counted(), "{what}: counted");
            assert_eq!(
                s.accuracy().to_bits(),
                t.accuracy().to_bits(),
                "{what}: top-1"
            );
            assert_eq!(
                s.top_k_accuracy().to_bits(),
                t.top_k_accuracy().to_bits(),
                "{what}: top-k"
            );
            let counted = t.counted() as f64;
            let (gl, tl) = (s.loss(Reduction::Sum), t.loss(Reduction::Sum));
            assert!(
                (gl - tl).abs() <= bound + 4.0 * u * tl.abs(),
                "{what}: stats loss {gl} vs {tl}"
            );
            let (ge, te) = (s.mean_entropy(), t.mean_entropy());
            assert!(
                (ge - te).abs() <= bound / counted.max(1.0) || ge.to_bits() == te.to_bits(),
                "{what}: entropy {ge} vs {te}"
            );
            // Each shard's gradient, assembled, against the unsharded one: an element
            // `scale·(A·p_c - a_c)` moves with the row's sum (44u relative, times `scale·A`,
            // A at most the largest weight) and rounds once into `S`.
            for r in [Reduction::Sum, Reduction::Mean] {
                let mut whole = vec![S::of(0.0); logits.len()];
                ce.loss_and_grad(&logits, c, labels, r, &mut whole).unwrap();
                let scale = 1.0 / divisor(r);
                let wmax = if o == 0 { 1.0 } else { 2.25 };
                for &part in parts {
                    let shard = VocabShard::new(part.0, part.1, c).unwrap();
                    let x = slice(&logits, c, part);
                    let mut g = vec![S::of(0.0); x.len()];
                    ce.vocab_grad(&x, shard, labels, &plain, r, &mut g).unwrap();
                    for (i, (gv, wv)) in g.iter().zip(slice(&whole, c, part)).enumerate() {
                        let (gv, wv) = (gv.wide(), wv.wide());
                        let tol = 96.0 * u * scale * wmax + 2.0 * store * wv.abs() + tiny;
                        assert!(
                            (gv - wv).abs() <= tol || gv.to_bits() == wv.to_bits(),
                            "{what}: {r:?} grad row {} class {}: {gv} vs {wv}",
                            i / part.1,
                            part.0 + i % part.1
                        );
                    }
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn shards_match_the_unsharded_call_on_every_tier_and_storage() {
    let shapes = [(41, 7), (20, 1000), (6, 4099), (3, 70001)];
    for tier in Tier::available() {
        for (i, &(rows, classes)) in shapes.iter().enumerate() {
            let b = batch(0x5A4D + i as u64, rows, classes);
            for n in [2, 3, 7] {
                let parts = shards(i as u64 * 16 + n as u64, classes, n);
                check_sharded::<f64>(tier, &b, &parts);
                check_sharded::<f32>(tier, &b, &parts);
                check_sharded::<bf16>(tier, &b, &parts);
            }
        }
    }
}

#[test]
fn a_shard_the_engine_splits_matches_the_unsharded_call() {
    // A shard of 140,000 classes is swept in segments over threads, as a long row is.
    let b = batch(0xB16, 2, 150_000);
    let parts = [(0, 140_000), (140_000, 10_000)];
    for tier in Tier::available() {
        check_sharded::<f32>(tier, &b, &parts);
    }
}

#[test]
fn one_shard_of_whole_rows_gives_the_unsharded_bits() {
    // The same sweep over the same classes: each row's loss and the gradient bit for bit.
    for tier in Tier::available() {
        for &(rows, classes) in &[(30, 33), (12, 1000), (2, 140_000)] {
            let b = batch(0x0E + classes as u64, rows, classes);
            let logits: Vec<f32> = b.logits.iter().map(|&v| v as f32).collect();
            let w: Vec<f32> = b.weights.iter().map(|&v| v as f32).collect();
            for ce in builders(&w) {
                losskit::with_tier(tier, || {
                    let (plain, _) = merged_rows(&ce, &logits, &b, &[(0, classes)]);
                    let mut each = vec![0.0f32; rows];
                    let mut want = vec![0.0f32; rows];
                    ce.vocab_each(&plain, &b.labels, &mut each).unwrap();
                    ce.each(&logits, classes, &b.labels, &mut want).unwrap();
                    assert_eq!(each, want, "{tier} {rows}x{classes}");
                    let shard = VocabShard::new(0, classes, classes).unwrap();
                    let mut g = vec![0.0f32; logits.len()];
                    let mut gw = vec![1.0f32; logits.len()];
                    ce.vocab_grad(&logits, shard, &b.labels, &plain, Reduction::Mean, &mut g)
                        .unwrap();
                    ce.loss_and_grad(&logits, classes, &b.labels, Reduction::Mean, &mut gw)
                        .unwrap();
                    assert!(
                        g.iter().zip(&gw).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{tier} {rows}x{classes}: gradient"
                    );
                })
                .unwrap();
            }
        }
    }
}

#[test]
fn shards_are_bit_identical_across_thread_counts() {
    let b = batch(0x7EAD, 4, 150_000);
    let logits: Vec<f32> = b.logits.iter().map(|&v| v as f32).collect();
    let parts = [(0, 140_000), (140_000, 10_000)];
    for tier in Tier::available() {
        let run = |threads| {
            on_pool(threads, tier, || {
                let ce = CrossEntropy::new().label_smoothing(0.05);
                let (plain, ranked) = merged_rows(&ce, &logits, &b, &parts);
                let mut grads = Vec::new();
                for &part in &parts {
                    let shard = VocabShard::new(part.0, part.1, b.classes).unwrap();
                    let x = slice(&logits, b.classes, part);
                    let mut g = vec![0.0f32; x.len()];
                    ce.vocab_grad(&x, shard, &b.labels, &plain, Reduction::Mean, &mut g)
                        .unwrap();
                    grads.extend(g.iter().map(|v| v.to_bits()));
                }
                (plain, ranked, grads)
            })
        };
        assert!(run(1) == run(2), "{tier}");
    }
}

#[test]
fn merging_in_any_order_keeps_counts_and_stays_within_the_bound() {
    let b = batch(0x0DE, 16, 997);
    let logits: Vec<f32> = b.logits.iter().map(|&v| v as f32).collect();
    let parts = shards(5, b.classes, 7);
    let ce = CrossEntropy::new().top_k(4);
    let targets = target_logits(&logits, &b);
    let partials: Vec<Vec<VocabRow>> = parts
        .iter()
        .map(|&part| {
            let shard = VocabShard::new(part.0, part.1, b.classes).unwrap();
            let mut out = vec![VocabRow::default(); b.rows];
            let x = slice(&logits, b.classes, part);
            ce.vocab_stats_rows(&x, shard, &b.labels, &targets, &mut out)
                .unwrap();
            out
        })
        .collect();
    let want = ce.stats(&logits, b.classes, &b.labels).unwrap();
    let mut next = splitmix(9);
    for _ in 0..20 {
        // A random order and grouping: merge random pairs until one partial is left.
        let mut pool: Vec<Vec<VocabRow>> = partials.clone();
        while pool.len() > 1 {
            let i = (next() % pool.len() as u64) as usize;
            let a = pool.swap_remove(i);
            let j = (next() % pool.len() as u64) as usize;
            let m = a.iter().zip(&pool[j]).map(|(x, y)| x.merge(y)).collect();
            pool[j] = m;
        }
        let s = ce.vocab_stats(&pool[0], &b.labels).unwrap();
        assert_eq!(s.counted(), want.counted());
        assert_eq!(s.accuracy().to_bits(), want.accuracy().to_bits());
        assert_eq!(
            s.top_k_accuracy().to_bits(),
            want.top_k_accuracy().to_bits()
        );
        let (got, exp) = (s.loss(Reduction::Sum), want.loss(Reduction::Sum));
        // 48u·(2 + |loss| + 2|lse|) per row; the logits are within ±40, the losses below 60.
        let tol = b.rows as f64 * 48.0 * 6e-8 * (2.0 + 60.0 + 2.0 * 45.0);
        assert!((got - exp).abs() <= tol, "{got} vs {exp}");
    }
}

#[test]
fn misuse_is_an_error_that_writes_nothing() {
    let logits = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0]; // 2 rows x 3 classes
    let labels = [2i64, 0];
    let ce = CrossEntropy::new();
    // The shard itself.
    assert_eq!(VocabShard::new(0, 0, 3), Err(LossError::ZeroClasses));
    assert!(matches!(
        VocabShard::new(2, 2, 3),
        Err(LossError::InvalidParameter { name: "offset", .. })
    ));
    assert!(VocabShard::new(usize::MAX, 2, 3).is_err());
    let left = VocabShard::new(0, 2, 3).unwrap();
    let right = VocabShard::new(2, 1, 3).unwrap();
    let (xl, xr) = (slice(&logits, 3, (0, 2)), slice(&logits, 3, (2, 1)));
    let mut a = vec![VocabRow::default(); 2];
    let mut b = vec![VocabRow::default(); 2];
    // Labels outside the whole row, logits not a multiple of the shard, short outputs.
    assert!(matches!(
        ce.vocab_rows(&xl, left, &[3i64, 0], &mut a),
        Err(LossError::LabelOutOfRange {
            row: 0,
            label: 3,
            classes: 3
        })
    ));
    assert!(matches!(
        ce.vocab_rows(&xl[..3], left, &labels, &mut a),
        Err(LossError::NotMultipleOfClasses { .. })
    ));
    assert!(matches!(
        ce.vocab_rows(&xl, left, &labels, &mut a[..1]),
        Err(LossError::LengthMismatch { name: "out", .. })
    ));
    assert!(matches!(
        ce.vocab_stats_rows(&xl, left, &labels, &[1.0], &mut a),
        Err(LossError::LengthMismatch {
            name: "targets",
            ..
        })
    ));
    assert_eq!(a, vec![VocabRow::default(); 2], "an error wrote partials");
    ce.vocab_rows(&xl, left, &labels, &mut a).unwrap();
    ce.vocab_rows(&xr, right, &labels, &mut b).unwrap();
    // A shard missing, or merged twice.
    assert_eq!(
        ce.vocab_loss(&a, &labels, Reduction::Sum),
        Err(LossError::IncompleteRow {
            row: 0,
            covered: 2,
            classes: 3
        })
    );
    let twice: Vec<VocabRow> = a.iter().zip(&b).map(|(x, y)| x.merge(y).merge(y)).collect();
    assert!(matches!(
        ce.vocab_stats(&twice, &labels),
        Err(LossError::IncompleteRow { covered: 4, .. })
    ));
    let merged: Vec<VocabRow> = a.iter().zip(&b).map(|(x, y)| x.merge(y)).collect();
    // Statistics need ranked partials.
    assert_eq!(
        ce.vocab_stats(&merged, &labels),
        Err(LossError::NotRanked { row: 0 })
    );
    // An ignored row is never checked: its partial may be anything.
    let mut partly = merged.clone();
    partly[1] = VocabRow::default();
    assert!(ce
        .vocab_loss(&partly, &[2i64, -100], Reduction::Sum)
        .is_ok());
    // The gradient: wrong lengths, rows of another width; nothing written.
    let mut g = vec![7.0f32; 4];
    let e = ce.vocab_grad(&xl, left, &labels, &merged[..1], Reduction::Sum, &mut g);
    assert!(matches!(
        e,
        Err(LossError::LengthMismatch { name: "rows", .. })
    ));
    let e = ce.vocab_grad(&xl, left, &labels, &merged, Reduction::Sum, &mut g[..3]);
    assert!(matches!(
        e,
        Err(LossError::LengthMismatch { name: "grad", .. })
    ));
    let wide = VocabShard::new(0, 2, 4).unwrap();
    let e = ce.vocab_grad(&xl, wide, &labels, &merged, Reduction::Sum, &mut g);
    assert_eq!(
        e,
        Err(LossError::IncompleteRow {
            row: 0,
            covered: 3,
            classes: 4
        })
    );
    let e = ce.vocab_grad(&xl, left, &labels, &a, Reduction::Sum, &mut g);
    assert!(matches!(e, Err(LossError::IncompleteRow { .. })));
    assert_eq!(g, vec![7.0f32; 4], "an error wrote the gradient");
    // Every row ignored, with class weights: nothing to check, so no error (found by the fuzz
    // target: the rows' classes were then taken as 1, and the weights failed their check).
    let w = [1.0f32, 2.0, 3.0];
    let weighted = CrossEntropy::new().weight(&w);
    let none = [VocabRow::default(); 2];
    let ignored = [-100i64, -100];
    assert_eq!(
        weighted.vocab_loss(&none, &ignored, Reduction::Sum),
        Ok(0.0)
    );
    assert!(weighted
        .vocab_loss(&none, &ignored, Reduction::Mean)
        .unwrap()
        .is_nan());
    assert_eq!(weighted.vocab_stats(&none, &ignored).unwrap().counted(), 0);
    let mut each = [5.0f32; 2];
    weighted.vocab_each(&none, &ignored, &mut each).unwrap();
    assert_eq!(each, [0.0; 2]);
    let e = CrossEntropy::<f32>::new()
        .top_k(0)
        .vocab_stats(&merged, &labels);
    assert!(matches!(
        e,
        Err(LossError::InvalidParameter { name: "top_k", .. })
    ));
}
