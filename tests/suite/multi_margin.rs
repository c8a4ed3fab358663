//! `multi_margin` ([`MultiMargin`]), in every storage type on every tier, against the scalar
//! twins `reference::multi_margin_row{,_grad}`: each row's loss, the reduced loss and the
//! gradient within the bounds of the kernel (the square's rounding, the flat sweep's `34·u` of
//! a row's summed terms), hinge arguments exactly 0 (half-integer scores) and NaN scores counted
//! as PyTorch counts them, the fused mean the mean's bits, the plain functions the builder's
//! bits, the x86 tiers and thread counts bit-identical, split rows, and every argument error
//! before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{bf16, f16, reference, with_tier, LossError, MultiMargin, Reduction, Tier};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    rows: usize,
    classes: usize,
    x: Vec<f64>,
    labels: Vec<u32>,
    w: Option<Vec<f64>>,
    p: u32,
    margin: f64,
}

fn data() -> impl Strategy<Value = Data> {
    let classes = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(63usize), Just(256), Just(1000), Just(4099)],
    ];
    let margin = prop_oneof![Just(1.0), Just(0.5), Just(0.0), Just(-0.5), -3.0..3.0f64];
    (classes, 0usize..24, any::<bool>(), 1u32..=2, margin).prop_flat_map(
        |(classes, rows, weighted, p, margin)| {
            let rows = if classes > 1000 { rows.min(3) } else { rows };
            let n = rows * classes;
            // Half-integers make hinge arguments of exactly 0 (kinks: term and slope 0).
            let score = prop_oneof![
                6 => -3.0..3.0f64,
                3 => (-6i32..=6).prop_map(|k| k as f64 / 2.0),
                1 => -300.0..300.0f64,
                1 => Just(f64::NAN),
            ];
            let weight = proptest::collection::vec(prop_oneof![Just(0.0), 0.0..4.0f64], classes);
            (
                proptest::collection::vec(score, n),
                proptest::collection::vec(0..classes as u32, rows),
                weight,
            )
                .prop_map(move |(x, labels, w)| Data {
                    rows,
                    classes,
                    x,
                    labels,
                    w: weighted.then_some(w),
                    p,
                    margin,
                })
        },
    )
}

/// Every output on the active tier as bits (NaN as one value), with each row's loss and the
/// gradient of the sum.
fn outputs<S: AnyStorage>(
    d: &Data,
    x: &[S],
    w: Option<&[S::Compute]>,
) -> (Vec<u64>, Vec<f64>, Vec<f64>) {
    let mut loss = MultiMargin::new().p(d.p).margin(S::Compute::of(d.margin));
    if let Some(w) = w {
        loss = loss.weight(w);
    }
    let (c, labels) = (d.classes, &d.labels[..]);
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut each = vec![S::Compute::of(0.5); d.rows];
    loss.each(x, c, labels, &mut each).unwrap();
    let mut grad_mean = vec![S::of(0.5); x.len()];
    let fused = loss
        .loss_and_grad(x, c, labels, Reduction::Mean, &mut grad_mean)
        .unwrap();
    let mut grad_sum = vec![S::of(0.5); x.len()];
    loss.loss_and_grad(x, c, labels, Reduction::Sum, &mut grad_sum)
        .unwrap();
    let mut out = vec![
        bits(loss.loss(x, c, labels, Reduction::Mean).unwrap().f64()),
        bits(loss.loss(x, c, labels, Reduction::Sum).unwrap().f64()),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(grad_mean.iter().map(|g| bits(g.wide())));
    if w.is_none() && d.p == 1 && d.margin == 1.0 {
        // The plain functions are the builder with its defaults.
        let mut plain_each = vec![S::Compute::of(0.5); d.rows];
        losskit::multi_margin_each(x, c, labels, &mut plain_each).unwrap();
        let mut plain_grad = vec![S::of(0.5); x.len()];
        let plain_fused =
            losskit::multi_margin_and_grad(x, c, labels, Reduction::Mean, &mut plain_grad).unwrap();
        let mut plain = vec![
            bits(
                losskit::multi_margin(x, c, labels, Reduction::Mean)
                    .unwrap()
                    .f64(),
            ),
            bits(
                losskit::multi_margin(x, c, labels, Reduction::Sum)
                    .unwrap()
                    .f64(),
            ),
            bits(plain_fused.f64()),
        ];
        plain.extend(plain_each.iter().map(|e| bits(e.f64())));
        plain.extend(plain_grad.iter().map(|g| bits(g.wide())));
        assert!(plain == out, "the plain functions differ from the builder");
    }
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
    let w: Option<Vec<S::Compute>> =
        d.w.as_ref()
            .map(|w| w.iter().map(|&v| S::Compute::of(v)).collect());
    // The twin computes the hinge arguments in the compute type, as the kernel and PyTorch do.
    let xc: Vec<S::Compute> = x.iter().map(|v| S::Compute::of(v.wide())).collect();
    let margin = S::Compute::of(d.margin);
    let mut twin_loss = Vec::with_capacity(rows);
    let mut twin_bound = Vec::with_capacity(rows);
    let mut twin_grad = Vec::with_capacity(rows * c);
    for r in 0..rows {
        let (row, y) = (&xc[r * c..(r + 1) * c], d.labels[r] as usize);
        let loss = reference::multi_margin_row(row, y, d.p, margin, w.as_deref());
        twin_loss.push(loss);
        twin_grad.extend(reference::multi_margin_row_grad(
            row,
            y,
            d.p,
            margin,
            w.as_deref(),
        ));
        // The terms are non-negative: the square within u of each, the row's sum within 34u
        // of the summed terms (the flat sweep's bound), then the product and the division.
        twin_bound.push(36.0 * u * loss);
    }
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, grad_sum) = with_tier(tier, || outputs::<S>(d, &x, w.as_deref())).unwrap();
        common::check_row_losses(tier, u, &bits, &each, &twin_loss, &twin_bound)?;
        for (i, (&got, &want)) in grad_sum.iter().zip(&twin_grad).enumerate() {
            // A slope's factor rounded once and multiplied once; the label's element the sum
            // of the row's slopes (34u) rounded once; then the store.
            let bound = (36.0 * u + store * 1.01) * want.abs() + tiny;
            prop_assert!(
                (got - want).abs() <= bound,
                "grad[{i}] on {tier}: {got:e} vs twin {want:e} (bound {bound:e})"
            );
        }
        if matches!(tier, Tier::Avx2 | Tier::Avx512) {
            x86.push((tier, bits));
        }
    }
    common::check_x86_and_threads(&x86, || outputs::<S>(d, &x, w.as_deref()).0)?;
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
/// in parallel (the label's segment leaves it out), their sums merged in the fixed tree, and its
/// gradient written per segment with the label's element after them.
#[test]
fn split_rows_match_the_twin() {
    let mut next = common::splitmix(31);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let classes = 140_000;
    for p in [1, 2] {
        let d = Data {
            rows: 2,
            classes,
            x: (0..2 * classes).map(|_| 4.0 * unit() - 3.0).collect(),
            // One label in the first segment, one in a later one.
            labels: vec![17, 135_000],
            w: Some((0..classes).map(|_| 2.0 * unit()).collect()),
            p,
            margin: 1.0,
        };
        check::<f32>(&d).unwrap();
        check::<bf16>(&d).unwrap();
    }
}

/// A hinge argument of exactly 0 adds no term and has slope 0, as in PyTorch (`z > 0`).
#[test]
fn hinge_arguments_of_zero_count_nothing() {
    let x = [0.5f32, 1.5, -2.0, 0.75];
    let mut grad = [9.0f32; 4];
    let loss = MultiMargin::new()
        .loss_and_grad(&x, 4, &[1u32], Reduction::Sum, &mut grad)
        .unwrap();
    assert_eq!(loss, 0.25 / 4.0);
    assert_eq!(grad, [0.0, -0.25, 0.0, 0.25]);
    let mut each = [9.0f32; 1];
    MultiMargin::new()
        .margin(1.0)
        .each(&x[..3], 3, &[1u32], &mut each)
        .unwrap();
    assert_eq!(each, [0.0]);
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [0.0f32; 6];
    let w = [1.0f32; 3];
    let mut out = [7.0f32; 6];
    let mut grad = [7.0f32; 6];
    let plain = MultiMargin::new();
    let weighted = MultiMargin::new().weight(&w[..2]);
    let cubed = MultiMargin::new().p(3);
    let cases: [(&MultiMargin<'_, f32>, usize, &[i64], LossError); 6] = [
        (&plain, 0, &[0, 0], LossError::ZeroClasses),
        (
            &plain,
            4,
            &[0, 0],
            LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        ),
        (
            &plain,
            3,
            &[0],
            common::length_mismatch("labels", 1, "rows of input", 2),
        ),
        (
            &weighted,
            3,
            &[0, 0],
            common::length_mismatch("weight", 2, "classes", 3),
        ),
        (
            &plain,
            3,
            &[0, 3],
            LossError::LabelOutOfRange {
                row: 1,
                label: 3,
                classes: 3,
            },
        ),
        (
            &cubed,
            3,
            &[0, 0],
            LossError::InvalidParameter {
                name: "p",
                value: 3.0,
                requirement: "1 or 2",
            },
        ),
    ];
    for (loss, classes, labels, want) in cases {
        let got = loss.loss(&x, classes, labels, Reduction::Mean).unwrap_err();
        assert_eq!(got, want);
        let got = loss.each(&x, classes, labels, &mut out[..2]).unwrap_err();
        assert_eq!(got, want);
        let got = loss
            .loss_and_grad(&x, classes, labels, Reduction::Sum, &mut grad)
            .unwrap_err();
        assert_eq!(got, want);
    }
    let got = plain.each(&x, 3, &[0i64, -1], &mut out[..2]).unwrap_err();
    let negative = LossError::LabelOutOfRange {
        row: 1,
        label: -1,
        classes: 3,
    };
    assert_eq!(got, negative);
    let got = plain.each(&x, 3, &[0u32, 1], &mut out[..3]).unwrap_err();
    assert_eq!(got, common::length_mismatch("out", 3, "rows of input", 2));
    let got = plain
        .loss_and_grad(&x, 3, &[0u32, 1], Reduction::Mean, &mut grad[..5])
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
        label in 0usize..12,
        w in proptest::collection::vec(0.0..3.0f64, 12),
        weighted in any::<bool>(),
        p in 1u32..=2,
        margin in -1.0..2.0f64,
    ) {
        let c = x.len();
        let (y, w) = (label % c, &w[..c]);
        let weight = weighted.then_some(w);
        let h = 1e-6;
        prop_assume!((0..c).all(|i| i == y || (margin - x[y] + x[i]).abs() > 10.0 * h));
        let grad = reference::multi_margin_row_grad(&x, y, p, margin, weight);
        for k in 0..c {
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[k] += h;
            lo[k] -= h;
            let diff = (reference::multi_margin_row(&hi, y, p, margin, weight)
                - reference::multi_margin_row(&lo, y, p, margin, weight))
                / (2.0 * h);
            prop_assert!(
                (grad[k] - diff).abs() <= 1e-7 * (1.0 + diff.abs()),
                "d/dx[{k}] = {:e}, central difference {diff:e}",
                grad[k]
            );
        }
    }
}
