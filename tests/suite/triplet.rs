//! `triplet_margin` ([`TripletMargin`]), in every storage type on every tier, against the
//! scalar twins `reference::triplet_margin_row{,_grad}`: each row's loss, the reduced loss and
//! the three gradients within the bounds of the kernel (two or three flat sweeps of the
//! differences, `35·u` of each distance), p 1 and 2, `eps`, `swap`, the fused mean the mean's
//! bits, the plain functions the builder's bits, the x86 tiers and thread counts bit-identical,
//! split rows, and every argument error before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{bf16, f16, reference, with_tier, LossError, Reduction, Tier, TripletMargin};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    rows: usize,
    dim: usize,
    x: [Vec<f64>; 3],
    margin: f64,
    p: u32,
    eps: f64,
    swap: bool,
}

fn data() -> impl Strategy<Value = Data> {
    let dim = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(63usize), Just(256), Just(1000), Just(4099)],
    ];
    let margin = prop_oneof![Just(1.0), Just(0.5), 0.0..3.0f64];
    let eps = prop_oneof![Just(1e-6), Just(0.0)];
    (dim, 0usize..24, margin, 1u32..=2, eps, any::<bool>()).prop_flat_map(
        |(dim, rows, margin, p, eps, swap)| {
            let rows = if dim > 1000 { rows.min(3) } else { rows };
            let n = rows * dim;
            let v = || proptest::collection::vec(-2.0..2.0f64, n);
            (v(), v(), v()).prop_map(move |(a, b, c)| Data {
                rows,
                dim,
                x: [a, b, c],
                margin,
                p,
                eps,
                swap,
            })
        },
    )
}

fn loss_of<T: losskit::Float>(d: &Data) -> TripletMargin<T> {
    TripletMargin::new()
        .margin(T::from_f64(d.margin))
        .p(d.p)
        .eps(T::from_f64(d.eps))
        .swap(d.swap)
}

/// Every output on the active tier as bits (NaN as one value), with each row's loss and the
/// three gradients of the sum.
fn outputs<S: AnyStorage>(d: &Data, x: &[Vec<S>; 3]) -> (Vec<u64>, Vec<f64>, [Vec<f64>; 3]) {
    let loss = loss_of::<S::Compute>(d);
    let (a, p, n, dim) = (&x[0][..], &x[1][..], &x[2][..], d.dim);
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut each = vec![S::Compute::of(0.5); d.rows];
    loss.each(a, p, n, dim, &mut each).unwrap();
    let grads = || [0, 1, 2].map(|_| vec![S::of(0.5); a.len()]);
    let mut mean_grads = grads();
    let [ga, gp, gn] = &mut mean_grads;
    let fused = loss
        .loss_and_grad(a, p, n, dim, Reduction::Mean, ga, gp, gn)
        .unwrap();
    let mut sum_grads = grads();
    let [sa, sp, sn] = &mut sum_grads;
    loss.loss_and_grad(a, p, n, dim, Reduction::Sum, sa, sp, sn)
        .unwrap();
    let mut out = vec![
        bits(loss.loss(a, p, n, dim, Reduction::Mean).unwrap().f64()),
        bits(loss.loss(a, p, n, dim, Reduction::Sum).unwrap().f64()),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(mean_grads.iter().flatten().map(|g| bits(g.wide())));
    if (d.margin, d.p, d.eps, d.swap) == (1.0, 2, 1e-6, false) {
        // The plain functions are the builder with its defaults.
        let mut plain_each = vec![S::Compute::of(0.5); d.rows];
        losskit::triplet_margin_each(a, p, n, dim, &mut plain_each).unwrap();
        let mut plain_grads = grads();
        let [pa, pp, pn] = &mut plain_grads;
        let plain_fused =
            losskit::triplet_margin_and_grad(a, p, n, dim, Reduction::Mean, pa, pp, pn).unwrap();
        let mut plain = vec![
            bits(
                losskit::triplet_margin(a, p, n, dim, Reduction::Mean)
                    .unwrap()
                    .f64(),
            ),
            bits(
                losskit::triplet_margin(a, p, n, dim, Reduction::Sum)
                    .unwrap()
                    .f64(),
            ),
            bits(plain_fused.f64()),
        ];
        plain.extend(plain_each.iter().map(|e| bits(e.f64())));
        plain.extend(plain_grads.iter().flatten().map(|g| bits(g.wide())));
        assert!(plain == out, "the plain functions differ from the builder");
    }
    let wide = |g: &[S]| g.iter().map(|v| v.wide()).collect::<Vec<f64>>();
    (
        out,
        each.iter().map(|e| e.f64()).collect(),
        sum_grads.each_ref().map(|g| wide(g)),
    )
}

fn check<S: AnyStorage>(d: &Data) -> Result<(), TestCaseError> {
    let (u, store, tiny) = common::units::<S>();
    let (rows, dim) = (d.rows, d.dim);
    let x: [Vec<S>; 3] =
        d.x.each_ref()
            .map(|v| v.iter().map(|&v| S::of(v)).collect());
    // The twins take the compute type: their differences are rounded as the kernel's are.
    let xc: [Vec<S::Compute>; 3] = x
        .each_ref()
        .map(|v| v.iter().map(|v| S::Compute::of(v.wide())).collect());
    let (margin, eps) = (S::Compute::of(d.margin), S::Compute::of(d.eps));
    let mut twin_loss = Vec::with_capacity(rows);
    let mut twin_bound = Vec::with_capacity(rows);
    let mut twin_grads: [Vec<f64>; 3] = Default::default();
    // Per element: Σ over the distances it enters of |∂d/∂x| (1 for p = 1, |diff|/d for p = 2).
    let mut envelope = vec![0.0; rows * dim];
    for r in 0..rows {
        let at = r * dim..(r + 1) * dim;
        let inputs = xc.each_ref().map(|v| &v[at.clone()]);
        let [a, p, n] = inputs;
        let loss = reference::triplet_margin_row(a, p, n, margin, d.p, eps, d.swap);
        twin_loss.push(loss);
        let grads = reference::triplet_margin_row_grad(a, p, n, margin, d.p, eps, d.swap);
        for (all, g) in twin_grads.iter_mut().zip(grads) {
            all.extend(g);
        }
        // The distances, as pairs of inputs: d(a, p), d(a, n) and with swap d(p, n).
        let pairs: &[(usize, usize)] = if d.swap {
            &[(0, 1), (0, 2), (1, 2)]
        } else {
            &[(0, 1), (0, 2)]
        };
        let mut distances = 0.0;
        for &(i, j) in pairs {
            let (x, y) = (inputs[i], inputs[j]);
            let diffs: Vec<f64> = x
                .iter()
                .zip(y)
                .map(|(&x, &y)| (x - y + eps).f64())
                .collect();
            let dist = match d.p {
                1 => diffs.iter().map(|v| v.abs()).sum::<f64>(),
                _ => diffs.iter().map(|v| v * v).sum::<f64>().sqrt(),
            };
            distances += dist;
            for (k, diff) in diffs.iter().enumerate() {
                envelope[r * dim + k] += match d.p {
                    1 => 1.0,
                    _ if dist == 0.0 => 0.0,
                    _ => diff.abs() / dist,
                };
            }
        }
        // Each distance within 35u (its sum's 34u and the power's rounding), then the hinge.
        twin_bound.push(36.0 * u * distances);
    }
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, grads) = with_tier(tier, || outputs::<S>(d, &x)).unwrap();
        common::check_row_losses(tier, u, &bits, &each, &twin_loss, &twin_bound)?;
        for (which, (got, want)) in ["anchor", "positive", "negative"]
            .iter()
            .zip(grads.iter().zip(&twin_grads))
        {
            for (i, (&got, &want)) in got.iter().zip(want).enumerate() {
                // Each coefficient within 19u (a distance's 18u, the division), the products
                // and the sum rounded, then the store.
                let bound = 22.0 * u * envelope[i] + (2.0 * u + store * 1.01) * want.abs() + tiny;
                prop_assert!(
                    (got - want).abs() <= bound,
                    "grad_{which}[{i}] on {tier}: {got:e} vs twin {want:e} (bound {bound:e})"
                );
            }
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

/// Rows of more than `SPLIT_CLASSES` (131072) elements: each row is cut into segments swept in
/// parallel, their distance sums merged in the fixed tree, and the three gradients written per
/// segment.
#[test]
fn split_rows_match_the_twin() {
    let mut next = common::splitmix(41);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let dim = 140_000;
    let mut v = || {
        (0..2 * dim)
            .map(|_| 2.0 * unit() - 1.0)
            .collect::<Vec<f64>>()
    };
    for (p, swap) in [(2, true), (1, false)] {
        let d = Data {
            rows: 2,
            dim,
            x: [v(), v(), v()],
            margin: 1.0,
            p,
            eps: 1e-6,
            swap,
        };
        check::<f32>(&d).unwrap();
        check::<bf16>(&d).unwrap();
    }
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [1.0f32; 6];
    let mut out = [7.0f32; 6];
    let mut g = [[7.0f32; 6]; 3];
    let plain = TripletMargin::new();
    let cubed = TripletMargin::new().p(3);
    let p3 = LossError::InvalidParameter {
        name: "p",
        value: 3.0,
        requirement: "1 or 2",
    };
    // (loss, dim, positive, negative, the error)
    type Case<'a> = (
        &'a TripletMargin<f32>,
        usize,
        &'a [f32],
        &'a [f32],
        LossError,
    );
    let cases: [Case<'_>; 5] = [
        (&cubed, 3, &x, &x, p3),
        (&plain, 0, &x, &x, LossError::ZeroClasses),
        (
            &plain,
            4,
            &x,
            &x,
            LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        ),
        (
            &plain,
            3,
            &x[..5],
            &x,
            common::length_mismatch("positive", 5, "anchor", 6),
        ),
        (
            &plain,
            3,
            &x,
            &x[..3],
            common::length_mismatch("negative", 3, "anchor", 6),
        ),
    ];
    for (loss, dim, p, n, want) in cases {
        let got = loss.loss(&x, p, n, dim, Reduction::Mean).unwrap_err();
        assert_eq!(got, want);
        let got = loss.each(&x, p, n, dim, &mut out[..2]).unwrap_err();
        assert_eq!(got, want);
        let [ga, gp, gn] = &mut g;
        let got = loss
            .loss_and_grad(&x, p, n, dim, Reduction::Sum, ga, gp, gn)
            .unwrap_err();
        assert_eq!(got, want);
    }
    let got = plain.each(&x, &x, &x, 3, &mut out[..3]).unwrap_err();
    assert_eq!(got, common::length_mismatch("out", 3, "rows of anchor", 2));
    for (k, name) in ["grad_anchor", "grad_positive", "grad_negative"]
        .iter()
        .enumerate()
    {
        let mut short = [7.0f32; 5];
        let mut full = [[7.0f32; 6]; 2];
        let [f1, f2] = &mut full;
        let (ga, gp, gn): (&mut [f32], &mut [f32], &mut [f32]) = match k {
            0 => (&mut short, f1, f2),
            1 => (f1, &mut short, f2),
            _ => (f1, f2, &mut short),
        };
        let got = plain
            .loss_and_grad(&x, &x, &x, 3, Reduction::Mean, ga, gp, gn)
            .unwrap_err();
        assert_eq!(got, common::length_mismatch(name, 5, "anchor", 6));
        assert!(
            short.iter().chain(full.iter().flatten()).all(|&v| v == 7.0),
            "an error wrote"
        );
    }
    assert!(
        out.iter().chain(g.iter().flatten()).all(|&v| v == 7.0),
        "an error wrote"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The twin's gradients against central differences of the twin's loss, in f64, away from
    /// the kinks (the hinge at 0, a swap tie, a zero difference for p = 1).
    #[test]
    fn the_twins_gradients_are_the_derivatives_of_its_loss(
        x in proptest::collection::vec(-2.0..2.0f64, 3..36),
        margin in 0.0..3.0f64,
        p in 1u32..=2,
        swap in any::<bool>(),
    ) {
        let dim = x.len() / 3;
        let eps = 1e-6;
        let (a, pos, neg) = (&x[..dim], &x[dim..2 * dim], &x[2 * dim..3 * dim]);
        let h = 1e-6;
        let loss = |v: &[f64]| {
            reference::triplet_margin_row(&v[..dim], &v[dim..2 * dim], &v[2 * dim..3 * dim], margin, p, eps, swap)
        };
        let d = |u: &[f64], v: &[f64]| -> Vec<f64> { u.iter().zip(v).map(|(a, b)| a - b + eps).collect() };
        let (dap, dan, dpn) = (d(a, pos), d(a, neg), d(pos, neg));
        let norm = |v: &[f64]| if p == 1 { v.iter().map(|x| x.abs()).sum::<f64>() } else { v.iter().map(|x| x * x).sum::<f64>().sqrt() };
        let (nap, nan, npn) = (norm(&dap), norm(&dan), norm(&dpn));
        let negative = if swap { nan.min(npn) } else { nan };
        prop_assume!((margin + nap - negative).abs() > 1e-4);
        prop_assume!(!swap || (nan - npn).abs() > 1e-4);
        prop_assume!(dap.iter().chain(&dan).chain(&dpn).all(|v| v.abs() > 1e-4));
        let grads = reference::triplet_margin_row_grad(a, pos, neg, margin, p, eps, swap);
        for k in 0..3 * dim {
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[k] += h;
            lo[k] -= h;
            let diff = (loss(&hi) - loss(&lo)) / (2.0 * h);
            let g = grads[k / dim][k % dim];
            prop_assert!(
                (g - diff).abs() <= 1e-6 * (1.0 + diff.abs()),
                "d/dx[{k}] = {g:e}, central difference {diff:e}"
            );
        }
    }
}
