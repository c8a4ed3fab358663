//! `multilabel_soft_margin` ([`MultilabelSoftMargin`]), in every storage type on every tier,
//! against the scalar twins `reference::multilabel_soft_margin_row{,_grad}`: each row's loss,
//! the reduced loss and the gradient within the bounds of the kernel (bce_with_logits's
//! element error, the flat sweep's `34·u` of a row's summed terms), the fused mean the mean's
//! bits, the plain functions the builder's bits, the x86 tiers and thread counts bit-identical,
//! split rows (fewer rows than threads, over `SPLIT_CLASSES` classes), and every argument
//! error before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{bf16, f16, reference, with_tier, LossError, MultilabelSoftMargin, Reduction, Tier};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    rows: usize,
    classes: usize,
    x: Vec<f64>,
    t: Vec<f64>,
    w: Option<Vec<f64>>,
}

fn data() -> impl Strategy<Value = Data> {
    let classes = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(63usize), Just(256), Just(1000), Just(4099)],
    ];
    (classes, 0usize..24, any::<bool>()).prop_flat_map(|(classes, rows, weighted)| {
        let rows = if classes > 1000 { rows.min(3) } else { rows };
        let n = rows * classes;
        let logit = prop_oneof![8 => -12.0..12.0f64, 1 => -300.0..300.0f64];
        let target = prop_oneof![3 => Just(0.0), 3 => Just(1.0), 1 => 0.0..=1.0f64];
        let weight = proptest::collection::vec(prop_oneof![Just(0.0), 0.0..4.0f64], classes);
        (
            proptest::collection::vec(logit, n),
            proptest::collection::vec(target, n),
            weight,
        )
            .prop_map(move |(x, t, w)| Data {
                rows,
                classes,
                x,
                t,
                w: weighted.then_some(w),
            })
    })
}

/// Every output on the active tier as bits (NaN as one value), with each row's loss and the
/// gradient of the sum.
fn outputs<S: AnyStorage>(
    d: &Data,
    x: &[S],
    t: &[S],
    w: Option<&[S::Compute]>,
) -> (Vec<u64>, Vec<f64>, Vec<f64>) {
    let mut loss = MultilabelSoftMargin::new();
    if let Some(w) = w {
        loss = loss.weight(w);
    }
    let c = d.classes;
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut each = vec![S::Compute::of(0.5); d.rows];
    loss.each(x, t, c, &mut each).unwrap();
    let mut grad_mean = vec![S::of(0.5); x.len()];
    let fused = loss
        .loss_and_grad(x, t, c, Reduction::Mean, &mut grad_mean)
        .unwrap();
    let mut grad_sum = vec![S::of(0.5); x.len()];
    loss.loss_and_grad(x, t, c, Reduction::Sum, &mut grad_sum)
        .unwrap();
    let mut out = vec![
        bits(loss.loss(x, t, c, Reduction::Mean).unwrap().f64()),
        bits(loss.loss(x, t, c, Reduction::Sum).unwrap().f64()),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(grad_mean.iter().map(|g| bits(g.wide())));
    if w.is_none() {
        // The plain functions are the builder with its defaults.
        let mut plain_each = vec![S::Compute::of(0.5); d.rows];
        losskit::multilabel_soft_margin_each(x, t, c, &mut plain_each).unwrap();
        let mut plain_grad = vec![S::of(0.5); x.len()];
        let plain_fused =
            losskit::multilabel_soft_margin_and_grad(x, t, c, Reduction::Mean, &mut plain_grad)
                .unwrap();
        let mut plain = vec![
            bits(
                losskit::multilabel_soft_margin(x, t, c, Reduction::Mean)
                    .unwrap()
                    .f64(),
            ),
            bits(
                losskit::multilabel_soft_margin(x, t, c, Reduction::Sum)
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
    let t: Vec<S> = d.t.iter().map(|&v| S::of(v)).collect();
    let w: Option<Vec<S::Compute>> =
        d.w.as_ref()
            .map(|w| w.iter().map(|&v| S::Compute::of(v)).collect());
    let (xs, ts): (Vec<f64>, Vec<f64>) = (
        x.iter().map(|v| v.wide()).collect(),
        t.iter().map(|v| v.wide()).collect(),
    );
    let ws: Option<Vec<f64>> = w.as_ref().map(|w| w.iter().map(|v| v.f64()).collect());
    let weight = |k: usize| ws.as_ref().map_or(1.0, |w| w[k]);
    let mut twin_loss = Vec::with_capacity(rows);
    let mut twin_bound = Vec::with_capacity(rows);
    let mut twin_grad = Vec::with_capacity(rows * c);
    for r in 0..rows {
        let at = r * c..(r + 1) * c;
        let (xr, tr) = (&xs[at.clone()], &ts[at]);
        twin_loss.push(reference::multilabel_soft_margin_row(xr, tr, ws.as_deref()));
        twin_grad.extend(reference::multilabel_soft_margin_row_grad(
            xr,
            tr,
            ws.as_deref(),
        ));
        // Each term within 16u of `w·(|x| + 1)` (bce_with_logits's stable form), the row's sum
        // within 34u of the summed terms (the flat sweep's bound), then the division.
        let terms: f64 = (0..c)
            .map(|k| weight(k) * reference::bce_with_logits(xr[k], tr[k], None))
            .sum();
        let sizes: f64 = (0..c).map(|k| weight(k) * (xr[k].abs() + 1.0)).sum();
        twin_bound.push((16.0 * u * sizes + 34.0 * u * terms) / c as f64);
    }
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, grad_sum) =
            with_tier(tier, || outputs::<S>(d, &x, &t, w.as_deref())).unwrap();
        common::check_row_losses(tier, u, &bits, &each, &twin_loss, &twin_bound)?;
        // The exponentials below the compute type's normal range are flushed to 0.
        let min_normal = if u < 1e-10 {
            f64::MIN_POSITIVE
        } else {
            f32::MIN_POSITIVE as f64
        };
        for (i, (&got, &want)) in grad_sum.iter().zip(&twin_grad).enumerate() {
            let k = i % c;
            let sigmoid = 1.0 / (1.0 + (-xs[i]).exp());
            let bound = weight(k) * (16.0 * u * (sigmoid + ts[i]) + 2.0 * min_normal) / c as f64
                + store * want.abs() * 1.01
                + tiny;
            prop_assert!(
                (got - want).abs() <= bound,
                "grad[{i}] on {tier}: {got:e} vs twin {want:e} (bound {bound:e})"
            );
        }
        if matches!(tier, Tier::Avx2 | Tier::Avx512) {
            x86.push((tier, bits));
        }
    }
    common::check_x86_and_threads(&x86, || outputs::<S>(d, &x, &t, w.as_deref()).0)?;
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
/// in parallel, their sums merged in the fixed tree, and its gradient written per segment.
#[test]
fn split_rows_match_the_twin() {
    let mut next = common::splitmix(29);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let classes = 140_000;
    let d = Data {
        rows: 2,
        classes,
        x: (0..2 * classes).map(|_| 20.0 * unit() - 10.0).collect(),
        t: (0..2 * classes).map(|_| unit().round()).collect(),
        w: Some((0..classes).map(|_| 2.0 * unit()).collect()),
    };
    check::<f32>(&d).unwrap();
    check::<bf16>(&d).unwrap();
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [0.0f32; 6];
    let w = [1.0f32; 3];
    let mut out = [7.0f32; 6];
    let mut grad = [7.0f32; 6];
    let plain = MultilabelSoftMargin::new();
    let weighted = MultilabelSoftMargin::new().weight(&w[..2]);
    let cases: [(&MultilabelSoftMargin<'_, f32>, usize, &[f32], LossError); 4] = [
        (&plain, 0, &x, LossError::ZeroClasses),
        (
            &plain,
            4,
            &x,
            LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        ),
        (
            &plain,
            3,
            &x[..5],
            common::length_mismatch("target", 5, "input", 6),
        ),
        (
            &weighted,
            3,
            &x,
            common::length_mismatch("weight", 2, "classes", 3),
        ),
    ];
    for (loss, classes, target, want) in cases {
        let got = loss.loss(&x, target, classes, Reduction::Mean).unwrap_err();
        assert_eq!(got, want);
        let got = loss.each(&x, target, classes, &mut out[..2]).unwrap_err();
        assert_eq!(got, want);
        let got = loss
            .loss_and_grad(&x, target, classes, Reduction::Sum, &mut grad)
            .unwrap_err();
        assert_eq!(got, want);
    }
    let got = plain.each(&x, &x, 3, &mut out[..3]).unwrap_err();
    assert_eq!(got, common::length_mismatch("out", 3, "rows of input", 2));
    let got = plain
        .loss_and_grad(&x, &x, 3, Reduction::Mean, &mut grad[..5])
        .unwrap_err();
    assert_eq!(got, common::length_mismatch("grad", 5, "input", 6));
    assert!(out.iter().chain(&grad).all(|&v| v == 7.0), "an error wrote");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The twin's gradient against central differences of the twin's loss, in f64.
    #[test]
    fn the_twins_gradient_is_the_derivative_of_its_loss(
        x in proptest::collection::vec(-6.0..6.0f64, 1..12),
        t in proptest::collection::vec(0.0..=1.0f64, 12),
        w in proptest::collection::vec(0.0..3.0f64, 12),
        weighted in any::<bool>(),
    ) {
        let c = x.len();
        let (t, w) = (&t[..c], &w[..c]);
        let weight = weighted.then_some(w);
        let grad = reference::multilabel_soft_margin_row_grad(&x, t, weight);
        let h = 1e-6;
        for k in 0..c {
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[k] += h;
            lo[k] -= h;
            let diff = (reference::multilabel_soft_margin_row(&hi, t, weight)
                - reference::multilabel_soft_margin_row(&lo, t, weight))
                / (2.0 * h);
            prop_assert!(
                (grad[k] - diff).abs() <= 1e-7 * (1.0 + diff.abs()),
                "d/dx[{k}] = {:e}, central difference {diff:e}",
                grad[k]
            );
        }
    }
}
