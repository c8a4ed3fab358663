//! `multilabel_margin`, in every storage type on every tier, against the scalar twins
//! `reference::multilabel_margin_row{,_grad}`: each row's loss, the reduced loss and the
//! gradient within the bounds of the kernel (the flat sweep's `34·u` of a row's summed terms),
//! rows of no targets, of every class, of targets listed twice, of leftovers after the `-1`,
//! rows wider than a window (1024 classes), hinge arguments exactly 0 (half-integer scores) and
//! NaN scores counted as PyTorch counts them, the fused mean the mean's bits, the x86 tiers and
//! thread counts bit-identical, split rows, and every argument error before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{bf16, f16, reference, with_tier, LossError, Reduction, Tier};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    rows: usize,
    classes: usize,
    x: Vec<f64>,
    /// `[rows, classes]`: a row's targets, then (unless it has `classes`) a -1 and leftovers.
    targets: Vec<i64>,
}

fn data() -> impl Strategy<Value = Data> {
    let classes = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(63usize), Just(256), Just(1000), Just(1100), Just(3001)],
    ];
    (classes, 0usize..16).prop_flat_map(|(classes, rows)| {
        let rows = if classes > 1000 { rows.min(3) } else { rows };
        let n = rows * classes;
        // Half-integers make hinge arguments of exactly 0 (kinks: term and slope 0).
        let score = prop_oneof![
            6 => -3.0..3.0f64,
            3 => (-6i32..=6).prop_map(|k| k as f64 / 2.0),
            1 => -300.0..300.0f64,
            1 => Just(f64::NAN),
        ];
        // How many targets a row lists: none, a few, up to all (the work is targets·classes).
        let count = prop_oneof![
            1 => Just(0usize),
            6 => 1usize..=12,
            1 => Just(usize::MAX),
        ];
        let c = classes as i64;
        (
            proptest::collection::vec(score, n),
            proptest::collection::vec(count, rows),
            // The targets themselves (duplicates come by chance), then the leftovers.
            proptest::collection::vec(0..c, n),
            proptest::collection::vec(-1..c, n),
        )
            .prop_map(move |(x, counts, picks, leftovers)| {
                let mut targets = Vec::with_capacity(n);
                for (r, &k) in counts.iter().enumerate() {
                    let k = k.min(classes);
                    let row = r * classes..(r + 1) * classes;
                    for j in row {
                        let at = j - r * classes;
                        targets.push(match at.cmp(&k) {
                            core::cmp::Ordering::Less if k == classes => at as i64,
                            core::cmp::Ordering::Less => picks[j],
                            core::cmp::Ordering::Equal => -1,
                            core::cmp::Ordering::Greater => leftovers[j],
                        });
                    }
                }
                Data {
                    rows,
                    classes,
                    x,
                    targets,
                }
            })
    })
}

/// Every output on the active tier as bits (NaN as one value), with each row's loss and the
/// gradient of the sum.
fn outputs<S: AnyStorage>(d: &Data, x: &[S]) -> (Vec<u64>, Vec<f64>, Vec<f64>) {
    let (c, t) = (d.classes, &d.targets[..]);
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut each = vec![S::Compute::of(0.5); d.rows];
    losskit::multilabel_margin_each(x, t, c, &mut each).unwrap();
    let mut grad_mean = vec![S::of(0.5); x.len()];
    let fused =
        losskit::multilabel_margin_and_grad(x, t, c, Reduction::Mean, &mut grad_mean).unwrap();
    let mut grad_sum = vec![S::of(0.5); x.len()];
    losskit::multilabel_margin_and_grad(x, t, c, Reduction::Sum, &mut grad_sum).unwrap();
    let mut out = vec![
        bits(
            losskit::multilabel_margin(x, t, c, Reduction::Mean)
                .unwrap()
                .f64(),
        ),
        bits(
            losskit::multilabel_margin(x, t, c, Reduction::Sum)
                .unwrap()
                .f64(),
        ),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(grad_mean.iter().map(|g| bits(g.wide())));
    (
        out,
        each.iter().map(|e| e.f64()).collect(),
        grad_sum.iter().map(|g| g.wide()).collect(),
    )
}

fn check<S: AnyStorage>(d: &Data) -> Result<(), TestCaseError> {
    let (u, store, tiny) = common::units::<S>();
    let (rows, c) = (d.rows, d.classes);
    let x: Vec<S> = d.x.iter().map(|&v| S::of(v)).collect();
    // The twin computes the hinge arguments in the compute type, as the kernel and PyTorch do.
    let xc: Vec<S::Compute> = x.iter().map(|v| S::Compute::of(v.wide())).collect();
    let mut twin_loss = Vec::with_capacity(rows);
    let mut twin_bound = Vec::with_capacity(rows);
    let mut twin_grad = Vec::with_capacity(rows * c);
    let mut listings = Vec::with_capacity(rows * c);
    for r in 0..rows {
        let (row, t) = (&xc[r * c..(r + 1) * c], &d.targets[r * c..(r + 1) * c]);
        let loss = reference::multilabel_margin_row(row, t);
        twin_loss.push(loss);
        twin_grad.extend(reference::multilabel_margin_row_grad(row, t));
        // How often each class is listed among the row's targets (before its first -1).
        let mut listed = vec![0.0f64; c];
        for &j in t.iter().take_while(|&&j| j >= 0) {
            listed[j as usize] += 1.0;
        }
        listings.extend(listed.iter().map(|&n| n.max(1.0)));
        // The terms are non-negative: each window's sum within 34u of its summed terms (the
        // flat sweep's bound), then the f64 additions and the division.
        twin_bound.push(36.0 * u * loss);
    }
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, grad_sum) = with_tier(tier, || outputs::<S>(d, &x)).unwrap();
        common::check_row_losses(tier, u, &bits, &each, &twin_loss, &twin_bound)?;
        for (i, (&got, &want)) in grad_sum.iter().zip(&twin_grad).enumerate() {
            // A count (exact) times the factor (rounded once), rounded, then the store; a target
            // listed n times is stored n times (each listing's share added to the stored value),
            // so rounds n times into the storage type.
            let bound = (4.0 * u + store * 1.01 * listings[i]) * want.abs() + tiny;
            prop_assert!(
                (got - want).abs() <= bound,
                "grad[{i}] on {tier}: {got:e} vs twin {want:e} (bound {bound:e})"
            );
        }
        if matches!(tier, Tier::Avx2 | Tier::Avx512) {
            x86.push((tier, bits));
        }
    }
    common::check_x86_and_threads(&x86, || outputs::<S>(d, &x).0)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn rows_match_the_twin_on_every_tier(d in data()) {
        check::<f32>(&d)?;
        check::<f64>(&d)?;
        check::<bf16>(&d)?;
        check::<f16>(&d)?;
    }
}

/// Two rows of more than `SPLIT_CLASSES` (131072) classes: each row is cut into segments swept
/// in parallel (each segment masks the targets that fall in it), their sums merged in the fixed
/// tree, and the gradient written per segment, the targets' elements after them.
#[test]
fn split_rows_match_the_twin() {
    let mut next = common::splitmix(37);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let classes = 140_000;
    let mut targets = vec![-1i64; 2 * classes];
    // Row 1: targets in the first segment and a later one, one listed twice; row 2: one target.
    targets[..4].copy_from_slice(&[17, 135_000, 17, 70_001]);
    targets[classes] = 99_999;
    let d = Data {
        rows: 2,
        classes,
        x: (0..2 * classes).map(|_| 4.0 * unit() - 3.0).collect(),
        targets,
    };
    check::<f32>(&d).unwrap();
    check::<bf16>(&d).unwrap();
}

/// PyTorch's documented example, a hinge argument of exactly 0 (no term, slope 0), and a row
/// whose every class is a target (0).
#[test]
fn pytorchs_example_and_the_edges() {
    let x = [0.1f32, 0.2, 0.4, 0.8];
    let loss = losskit::multilabel_margin(&x, &[3i64, 0, -1, 1], 4, Reduction::Mean).unwrap();
    assert!((loss - 0.85).abs() < 1e-6, "{loss}");
    // Target 1 (score 1.5): the hinge with 0.5 is exactly 0, with 0.75 it is 0.25.
    let x = [0.5f32, 1.5, -2.0, 0.75];
    let mut grad = [9.0f32; 4];
    let loss =
        losskit::multilabel_margin_and_grad(&x, &[1u32, 1, 1, 1], 4, Reduction::Sum, &mut grad);
    // Unsigned targets cannot end with -1: four listings of target 1, so four times the terms.
    assert_eq!(loss, Ok(4.0 * 0.25 / 4.0));
    assert_eq!(grad, [0.0, -1.0, 0.0, 1.0]);
    let mut each = [9.0f32; 1];
    losskit::multilabel_margin_each(&x, &[2i32, 0, 3, 1], 4, &mut each).unwrap();
    assert_eq!(each, [0.0]);
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [0.0f32; 6];
    let mut out = [7.0f32; 6];
    let mut grad = [7.0f32; 6];
    let cases: [(usize, &[i64], LossError); 5] = [
        (0, &[0; 6], LossError::ZeroClasses),
        (
            4,
            &[0; 6],
            LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        ),
        (3, &[0; 5], common::length_mismatch("target", 5, "input", 6)),
        // Out of range after the row's -1 too, as PyTorch checks every entry.
        (
            3,
            &[0, -1, 0, 1, 2, 3],
            LossError::LabelOutOfRange {
                row: 1,
                label: 3,
                classes: 3,
            },
        ),
        (
            3,
            &[-2, -1, 0, 1, 2, 0],
            LossError::LabelOutOfRange {
                row: 0,
                label: -2,
                classes: 3,
            },
        ),
    ];
    for (classes, targets, want) in cases {
        let got = losskit::multilabel_margin(&x, targets, classes, Reduction::Mean).unwrap_err();
        assert_eq!(got, want);
        let got = losskit::multilabel_margin_each(&x, targets, classes, &mut out[..2]).unwrap_err();
        assert_eq!(got, want);
        let got =
            losskit::multilabel_margin_and_grad(&x, targets, classes, Reduction::Sum, &mut grad)
                .unwrap_err();
        assert_eq!(got, want);
    }
    let t = [0i64; 6];
    let got = losskit::multilabel_margin_each(&x, &t, 3, &mut out[..3]).unwrap_err();
    assert_eq!(got, common::length_mismatch("out", 3, "rows of input", 2));
    let got = losskit::multilabel_margin_and_grad(&x, &t, 3, Reduction::Mean, &mut grad[..5])
        .unwrap_err();
    assert_eq!(got, common::length_mismatch("grad", 5, "input", 6));
    assert!(out.iter().chain(&grad).all(|&v| v == 7.0), "an error wrote");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The twin's gradient against central differences of the twin's loss, in f64, away from
    /// the kinks (every hinge argument at least `10h` from 0).
    #[test]
    fn the_twins_gradient_is_the_derivative_of_its_loss(
        x in proptest::collection::vec(-3.0..3.0f64, 1..12),
        targets in proptest::collection::vec(-1i64..12, 12),
    ) {
        let c = x.len();
        let t: Vec<i64> = targets[..c].iter().map(|&t| if t < 0 { -1 } else { t % c as i64 }).collect();
        let h = 1e-6;
        let listed: Vec<usize> = t.iter().take_while(|&&t| t >= 0).map(|&t| t as usize).collect();
        prop_assume!(listed.iter().all(|&j| {
            (0..c).all(|i| listed.contains(&i) || (1.0 - x[j] + x[i]).abs() > 10.0 * h)
        }));
        let grad = reference::multilabel_margin_row_grad(&x, &t);
        for k in 0..c {
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[k] += h;
            lo[k] -= h;
            let diff = (reference::multilabel_margin_row(&hi, &t)
                - reference::multilabel_margin_row(&lo, &t))
                / (2.0 * h);
            prop_assert!(
                (grad[k] - diff).abs() <= 1e-7 * (1.0 + diff.abs()),
                "d/dx[{k}] = {:e}, central difference {diff:e}",
                grad[k]
            );
        }
    }
}

/// The range check of every entry (done in each label type's own width, a chunk at a time;
/// by the rows' sweeps in the reduced form, before any work in the forms that write) names
/// the first entry outside `-1..classes`, as a plain scan does: at each type's extremes, at
/// every position of a target matrix longer than one chunk, on every tier and in all forms.
#[test]
fn the_first_entry_out_of_range_is_named_for_every_label_type() {
    fn first<L: losskit::Label>(targets: &[L], classes: usize) -> Option<LossError> {
        let x = vec![0.0f32; targets.len()];
        let mut firsts = Tier::available().into_iter().flat_map(|tier| {
            with_tier(tier, || {
                let mut each = vec![0.0f32; targets.len() / classes];
                let mut grad = vec![0.0f32; targets.len()];
                [
                    losskit::multilabel_margin(&x, targets, classes, Reduction::Sum).err(),
                    losskit::multilabel_margin_each(&x, targets, classes, &mut each).err(),
                    losskit::multilabel_margin_and_grad(
                        &x,
                        targets,
                        classes,
                        Reduction::Sum,
                        &mut grad,
                    )
                    .err(),
                ]
            })
            .unwrap()
        });
        let first = firsts.next().unwrap();
        for other in firsts {
            assert_eq!(other, first, "the forms and tiers disagree");
        }
        first
    }
    fn scan<L: losskit::Label>(targets: &[L], classes: usize) -> Option<LossError> {
        let at = targets
            .iter()
            .position(|t| !(-1..classes as i128).contains(&t.to_i128()))?;
        Some(LossError::LabelOutOfRange {
            row: at / classes,
            label: targets[at].to_i128(),
            classes,
        })
    }
    fn sweep<L: losskit::Label>(bad: &[L], good: L) {
        // 600 entries (more than two chunks of 256) in rows of 3, and of 600 classes.
        for classes in [3, 600] {
            for at in [0, 1, 255, 256, 257, 511, 512, 599] {
                for &b in bad {
                    let mut t = vec![good; 600];
                    t[at] = b;
                    let want = scan(&t, classes);
                    assert!(want.is_some(), "{} is in range", b.to_i128());
                    assert_eq!(first(&t, classes), want, "entry {at}, classes {classes}");
                    // An earlier bad entry is the one named.
                    if at > 0 {
                        t[at - 1] = b;
                        assert_eq!(first(&t, classes), scan(&t, classes));
                    }
                }
            }
            assert_eq!(first(&[good; 600], classes), None);
        }
    }
    sweep(&[-2, 600, i32::MIN, i32::MAX], 2i32);
    sweep(&[-2, 600, i64::MIN, i64::MAX], -1i64);
    sweep(&[600, 601, u32::MAX], 2u32);
    sweep(&[600, 601, u64::MAX], 0u64);
    sweep(&[600, 601, usize::MAX], 1usize);
}

/// The reduced form checks a split row (few rows of at least `2 · CHUNK` classes, cut into
/// segments swept apart) segment by segment: a bad entry in any segment is found, and a bad
/// target listed in the first segment is never used to read a score by the others.
#[test]
fn a_split_row_is_checked_in_every_segment() {
    let classes = 3 << 16;
    let x = vec![0.5f32; classes];
    for (at, bad) in [
        (0usize, classes as i32),
        (1, -2),
        (70_000, classes as i32),
        (classes - 1, -5),
    ] {
        for tier in Tier::available() {
            let mut t = vec![-1i32; classes];
            t[0] = 7;
            t[at] = bad;
            let want = LossError::LabelOutOfRange {
                row: 0,
                label: bad as i128,
                classes,
            };
            let got = with_tier(tier, || {
                losskit::multilabel_margin(&x, &t, classes, Reduction::Sum)
            })
            .unwrap();
            assert_eq!(got, Err(want), "{tier}: entry {at}");
        }
    }
}
