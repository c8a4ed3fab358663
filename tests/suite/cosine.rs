//! `cosine_embedding` ([`CosineEmbedding`]), in every storage type on every tier, against the
//! scalar twins `reference::cosine_embedding_row{,_grad}`: each row's loss, the reduced loss and
//! both gradients within the bounds of the kernel (three flat sweeps, `35·u` of the summed
//! magnitudes each, so the cosine within `71·u`), zero rows and labels other than ±1, the
//! fused mean the mean's bits, the plain functions the builder's bits, the x86 tiers and thread
//! counts bit-identical, split rows, and every argument error before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{bf16, f16, reference, with_tier, CosineEmbedding, LossError, Reduction, Tier};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    rows: usize,
    dim: usize,
    x1: Vec<f64>,
    x2: Vec<f64>,
    y: Vec<f64>,
    margin: f64,
}

fn data() -> impl Strategy<Value = Data> {
    let dim = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(63usize), Just(256), Just(1000), Just(4099)],
    ];
    let margin = prop_oneof![Just(0.0), Just(0.5), Just(-0.5), -1.0..1.0f64];
    (dim, 0usize..24, margin).prop_flat_map(|(dim, rows, margin)| {
        let rows = if dim > 1000 { rows.min(3) } else { rows };
        let n = rows * dim;
        let label = prop_oneof![8 => Just(1.0), 8 => Just(-1.0), 1 => Just(0.0), 1 => Just(0.5)];
        (
            proptest::collection::vec(-3.0..3.0f64, n),
            proptest::collection::vec(-3.0..3.0f64, n),
            proptest::collection::vec(label, rows),
            // Rows of x1 or x2 set to zero (cos = 0).
            proptest::collection::vec(0u8..8, rows),
        )
            .prop_map(move |(mut x1, mut x2, y, zero)| {
                for (r, &z) in zero.iter().enumerate() {
                    let row = r * dim..(r + 1) * dim;
                    match z {
                        0 => x1[row].fill(0.0),
                        1 => x2[row].fill(0.0),
                        _ => {}
                    }
                }
                Data {
                    rows,
                    dim,
                    x1,
                    x2,
                    y,
                    margin,
                }
            })
    })
}

/// Every output on the active tier as bits (NaN as one value), with each row's loss and the
/// gradients of the sum.
fn outputs<S: AnyStorage>(
    d: &Data,
    x1: &[S],
    x2: &[S],
    y: &[S],
) -> (Vec<u64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let loss = CosineEmbedding::new().margin(S::Compute::of(d.margin));
    let dim = d.dim;
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut each = vec![S::Compute::of(0.5); d.rows];
    loss.each(x1, x2, y, dim, &mut each).unwrap();
    let (mut g1_mean, mut g2_mean) = (vec![S::of(0.5); x1.len()], vec![S::of(0.5); x1.len()]);
    let fused = loss
        .loss_and_grad(x1, x2, y, dim, Reduction::Mean, &mut g1_mean, &mut g2_mean)
        .unwrap();
    let (mut g1, mut g2) = (vec![S::of(0.5); x1.len()], vec![S::of(0.5); x1.len()]);
    loss.loss_and_grad(x1, x2, y, dim, Reduction::Sum, &mut g1, &mut g2)
        .unwrap();
    let mut out = vec![
        bits(loss.loss(x1, x2, y, dim, Reduction::Mean).unwrap().f64()),
        bits(loss.loss(x1, x2, y, dim, Reduction::Sum).unwrap().f64()),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(g1_mean.iter().chain(&g2_mean).map(|g| bits(g.wide())));
    if d.margin == 0.0 {
        // The plain functions are the builder with its default.
        let mut plain_each = vec![S::Compute::of(0.5); d.rows];
        losskit::cosine_embedding_each(x1, x2, y, dim, &mut plain_each).unwrap();
        let (mut p1, mut p2) = (vec![S::of(0.5); x1.len()], vec![S::of(0.5); x1.len()]);
        let plain_fused =
            losskit::cosine_embedding_and_grad(x1, x2, y, dim, Reduction::Mean, &mut p1, &mut p2)
                .unwrap();
        let mut plain = vec![
            bits(
                losskit::cosine_embedding(x1, x2, y, dim, Reduction::Mean)
                    .unwrap()
                    .f64(),
            ),
            bits(
                losskit::cosine_embedding(x1, x2, y, dim, Reduction::Sum)
                    .unwrap()
                    .f64(),
            ),
            bits(plain_fused.f64()),
        ];
        plain.extend(plain_each.iter().map(|e| bits(e.f64())));
        plain.extend(p1.iter().chain(&p2).map(|g| bits(g.wide())));
        assert!(plain == out, "the plain functions differ from the builder");
    }
    let wide = |g: &[S]| g.iter().map(|v| v.wide()).collect::<Vec<f64>>();
    (
        out,
        each.iter().map(|e| e.f64()).collect(),
        wide(&g1),
        wide(&g2),
    )
}

fn check<S: AnyStorage>(d: &Data) -> Result<(), TestCaseError> {
    let (u, store, tiny) = common::units::<S>();
    let (rows, dim) = (d.rows, d.dim);
    let of = |v: &[f64]| v.iter().map(|&v| S::of(v)).collect::<Vec<S>>();
    let (x1, x2, y) = (of(&d.x1), of(&d.x2), of(&d.y));
    let wide = |v: &[S]| v.iter().map(|v| v.wide()).collect::<Vec<f64>>();
    let (w1, w2) = (wide(&x1), wide(&x2));
    let margin = S::Compute::of(d.margin).f64();
    let mut twin_loss = Vec::with_capacity(rows);
    let mut twin_g1 = Vec::with_capacity(rows * dim);
    let mut twin_g2 = Vec::with_capacity(rows * dim);
    // Per element: the factors of |x2_k| (x1's gradient) and |x1_k| in the bound.
    let mut scales = Vec::with_capacity(rows * dim);
    for (r, label) in y.iter().enumerate() {
        let at = r * dim..(r + 1) * dim;
        let (a, b, label) = (&w1[at.clone()], &w2[at], label.wide());
        twin_loss.push(reference::cosine_embedding_row(a, b, label, margin));
        let (g1, g2) = reference::cosine_embedding_row_grad(a, b, label, margin);
        twin_g1.extend(g1);
        twin_g2.extend(g2);
        let eps = f64::from(1e-12_f32);
        let m1 = a.iter().map(|v| v * v).sum::<f64>() + eps;
        let m2 = b.iter().map(|v| v * v).sum::<f64>() + eps;
        scales.push((1.0 / (m1 * m2).sqrt(), 1.0 / m1, 1.0 / m2));
    }
    // The cosine within 71u (three sums of 35u each of their magnitudes), the loss within 72u.
    let twin_bound = vec![72.0 * u; rows];
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, g1, g2) = with_tier(tier, || outputs::<S>(d, &x1, &x2, &y)).unwrap();
        common::check_row_losses(tier, u, &bits, &each, &twin_loss, &twin_bound)?;
        for (which, got, want) in [("x1", &g1, &twin_g1), ("x2", &g2, &twin_g2)] {
            for (i, (&got, &want)) in got.iter().zip(want.iter()).enumerate() {
                // Beyond the storage type's range (f16 near a zero row), the infinity.
                let stored = S::of(want).wide();
                if stored.is_infinite() {
                    prop_assert!(
                        got == stored,
                        "grad_{which}[{i}] on {tier}: {got:e} vs {want:e}"
                    );
                    continue;
                }
                let (inv_denom, inv_m1, inv_m2) = scales[i / dim];
                let (own, other, inv_m) = match which {
                    "x1" => (w1[i], w2[i], inv_m1),
                    _ => (w2[i], w1[i], inv_m2),
                };
                // `a·other - b·own`: a (1/denom) within 37u, b (cos/m) within 110u of
                // |own|/m (the cosine's 71u among them), the products and the difference
                // rounded, then the store.
                let bound = 40.0 * u * other.abs() * inv_denom
                    + 110.0 * u * own.abs() * inv_m
                    + 2.0 * u * want.abs()
                    + store * want.abs() * 1.01
                    + tiny;
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
    common::check_x86_and_threads(&x86, || outputs::<S>(d, &x1, &x2, &y).0)?;
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
/// parallel, their three sums merged in the fixed tree, and both gradients written per segment.
#[test]
fn split_rows_match_the_twin() {
    let mut next = common::splitmix(37);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let dim = 140_000;
    let d = Data {
        rows: 3,
        dim,
        x1: (0..3 * dim).map(|_| 2.0 * unit() - 1.0).collect(),
        x2: (0..3 * dim).map(|_| 2.0 * unit() - 1.0).collect(),
        y: vec![1.0, -1.0, 1.0],
        margin: -0.25,
    };
    check::<f32>(&d).unwrap();
    check::<bf16>(&d).unwrap();
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [1.0f32; 6];
    let y = [1.0f32, -1.0];
    let mut out = [7.0f32; 6];
    let (mut g1, mut g2) = ([7.0f32; 6], [7.0f32; 6]);
    let loss = CosineEmbedding::new();
    let cases: [(usize, &[f32], &[f32], LossError); 4] = [
        (0, &x, &y, LossError::ZeroClasses),
        (
            4,
            &x,
            &y,
            LossError::NotMultipleOfClasses { len: 6, classes: 4 },
        ),
        (3, &x[..5], &y, common::length_mismatch("x2", 5, "x1", 6)),
        (
            3,
            &x,
            &y[..1],
            common::length_mismatch("y", 1, "rows of x1", 2),
        ),
    ];
    for (dim, x2, y, want) in cases {
        let got = loss.loss(&x, x2, y, dim, Reduction::Mean).unwrap_err();
        assert_eq!(got, want);
        let got = loss.each(&x, x2, y, dim, &mut out[..2]).unwrap_err();
        assert_eq!(got, want);
        let got = loss
            .loss_and_grad(&x, x2, y, dim, Reduction::Sum, &mut g1, &mut g2)
            .unwrap_err();
        assert_eq!(got, want);
    }
    let got = loss.each(&x, &x, &y, 3, &mut out[..3]).unwrap_err();
    assert_eq!(got, common::length_mismatch("out", 3, "rows of x1", 2));
    let got = loss
        .loss_and_grad(&x, &x, &y, 3, Reduction::Mean, &mut g1[..5], &mut g2)
        .unwrap_err();
    assert_eq!(got, common::length_mismatch("grad1", 5, "x1", 6));
    let got = loss
        .loss_and_grad(&x, &x, &y, 3, Reduction::Mean, &mut g1, &mut g2[..4])
        .unwrap_err();
    assert_eq!(got, common::length_mismatch("grad2", 4, "x1", 6));
    assert!(
        out.iter().chain(&g1).chain(&g2).all(|&v| v == 7.0),
        "an error wrote"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The twin's gradients against central differences of the twin's loss, in f64, away from
    /// the hinge's kink and from a zero vector (where the cosine jumps: in one dimension it is
    /// the product of the signs).
    #[test]
    fn the_twins_gradients_are_the_derivatives_of_its_loss(
        x in proptest::collection::vec(-3.0..3.0f64, 2..24),
        similar in any::<bool>(),
        margin in -1.0..1.0f64,
    ) {
        let dim = x.len() / 2;
        let (x1, x2) = (&x[..dim], &x[dim..2 * dim]);
        let y = if similar { 1.0 } else { -1.0 };
        let h = 1e-6;
        let cos = 1.0 - reference::cosine_embedding_row(x1, x2, 1.0, 0.0);
        prop_assume!((cos - margin).abs() > 1e-4);
        let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
        prop_assume!(norm(x1) > 1e-3 && norm(x2) > 1e-3);
        let (g1, g2) = reference::cosine_embedding_row_grad(x1, x2, y, margin);
        for k in 0..2 * dim {
            let (mut hi, mut lo) = (x.clone(), x.clone());
            hi[k] += h;
            lo[k] -= h;
            let loss = |v: &[f64]| reference::cosine_embedding_row(&v[..dim], &v[dim..2 * dim], y, margin);
            let diff = (loss(&hi) - loss(&lo)) / (2.0 * h);
            let g = if k < dim { g1[k] } else { g2[k - dim] };
            prop_assert!(
                (g - diff).abs() <= 1e-6 * (1.0 + diff.abs()),
                "d/dx[{k}] = {g:e}, central difference {diff:e}"
            );
        }
    }
}
