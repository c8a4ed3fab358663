//! Differential tests: every pointwise kernel, on every tier this CPU has, against the scalar
//! oracle in `losskit::reference`, over lengths 0..5000, unaligned sub-slices and hostile values.

use crate::common;

use common::Elem;
use losskit::{reference, with_tier, Reduction, Tier};
use proptest::prelude::*;

/// Values that stress the kernels: ordinary, ±0, subnormal, large, ±inf and NaN. Magnitudes
/// stay below 1e18 so that a block of 32 squared differences cannot overflow f32: partial sums
/// beyond f32's range are allowed to be inf (as PyTorch's are), which the f64 oracle is not.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -10.0..10.0f64,
        1 => -1e18..1e18f64,
        1 => prop_oneof![
            Just(0.0), Just(-0.0), Just(1e-40), Just(-1e-45), Just(1e-310),
            Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN),
        ],
    ]
}

#[derive(Clone, Debug)]
struct Data {
    x: Vec<f64>,
    y: Vec<f64>,
    offset: usize,
    param: f64,
}

fn data() -> impl Strategy<Value = Data> {
    (
        0usize..5000,
        0usize..16,
        prop_oneof![Just(0.0), 0.01..5.0f64],
    )
        .prop_flat_map(|(n, offset, param)| {
            (
                proptest::collection::vec(value(), n + offset),
                proptest::collection::vec(value(), n + offset),
            )
                .prop_map(move |(x, y)| Data {
                    x,
                    y,
                    offset,
                    param,
                })
        })
}

#[derive(Clone, Copy, Debug)]
enum Loss {
    Mse,
    L1,
    Huber,
    SmoothL1,
}

const LOSSES: [Loss; 4] = [Loss::Mse, Loss::L1, Loss::Huber, Loss::SmoothL1];

fn kernel<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, r: Reduction) -> T {
    match loss {
        Loss::Mse => losskit::mse(x, y, r),
        Loss::L1 => losskit::l1(x, y, r),
        Loss::Huber => losskit::huber(x, y, p, r),
        Loss::SmoothL1 => losskit::smooth_l1(x, y, p, r),
    }
    .unwrap()
}

fn kernel_each<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, out: &mut [T]) {
    match loss {
        Loss::Mse => losskit::mse_each(x, y, out),
        Loss::L1 => losskit::l1_each(x, y, out),
        Loss::Huber => losskit::huber_each(x, y, p, out),
        Loss::SmoothL1 => losskit::smooth_l1_each(x, y, p, out),
    }
    .unwrap()
}

fn oracle<T: Elem>(loss: Loss, x: T, y: T, p: T) -> T {
    match loss {
        Loss::Mse => reference::mse(x, y),
        Loss::L1 => reference::l1(x, y),
        Loss::Huber => reference::huber(x, y, p),
        Loss::SmoothL1 => reference::smooth_l1(x, y, p),
    }
}

/// The documented bound of the reduce driver (`reduce.rs`): `(BLOCK_STEPS·UNROLL + 2)·u·S` with
/// BLOCK_STEPS·UNROLL = 32, plus its f64 term `(n/LANES + log2 n)·2^-53·S` (taken with one lane,
/// the widest case), the same again for the oracle's own sequential f64 sum, plus the final
/// rounding of the oracle and of the kernel (one ulp).
fn within_bound<T: Elem>(got: T, want: T, magnitude: f64, count: f64, unit: f64, n: usize) -> bool {
    let (g, w) = (got.f64(), want.f64());
    if w.is_nan() || g.is_nan() {
        return w.is_nan() && g.is_nan();
    }
    if w.is_infinite() || g.is_infinite() {
        return g == w;
    }
    let f64_terms = 2.0 * (n as f64 + (n.max(1) as f64).log2() + 1.0) * f64::EPSILON / 2.0;
    (g - w).abs() <= (34.0 * unit + f64_terms) * magnitude / count + 2.0 * unit * w.abs()
}

fn check<T: Elem>(d: &Data, unit: f64) -> Result<(), TestCaseError> {
    let x: Vec<T> = common::to(&d.x);
    let y: Vec<T> = common::to(&d.y);
    let (x, y) = (&x[d.offset..], &y[d.offset..]);
    let n = x.len();
    let p = T::of(d.param);
    for loss in LOSSES {
        if matches!(loss, Loss::Huber) && d.param == 0.0 {
            // PyTorch rejects delta = 0, and so must the kernel.
            prop_assert!(losskit::huber(x, y, p, Reduction::Mean).is_err());
            continue;
        }
        let elems: Vec<T> = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| oracle(loss, a, b, p))
            .collect();
        let magnitude: f64 = elems.iter().map(|v| v.f64().abs()).sum();
        for tier in Tier::available() {
            with_tier(tier, || -> Result<(), TestCaseError> {
                let mut out = vec![T::of(0.5); n];
                kernel_each(loss, x, y, p, &mut out);
                for (i, (g, w)) in out.iter().zip(&elems).enumerate() {
                    let same = g.f64().to_bits() == w.f64().to_bits()
                        || (g.f64().is_nan() && w.f64().is_nan());
                    prop_assert!(
                        same,
                        "{loss:?} each[{i}] on {tier}: {g:?} vs oracle {w:?} (x={:?}, y={:?})",
                        x[i],
                        y[i]
                    );
                }
                for (r, count) in [(Reduction::Sum, 1.0), (Reduction::Mean, n as f64)] {
                    let got = kernel(loss, x, y, p, r);
                    let want = reference::reduce(elems.iter().copied(), r);
                    prop_assert!(
                        within_bound(got, want, magnitude, count, unit, n)
                            || (n == 0 && got.f64().is_nan() == want.f64().is_nan()),
                        "{loss:?} {r:?} on {tier}, n={n}: {got:?} vs oracle {want:?}"
                    );
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
    fn f32_kernels_match_the_oracle_on_every_tier(d in data()) {
        check::<f32>(&d, f32::EPSILON as f64 / 2.0)?;
    }

    #[test]
    fn f64_kernels_match_the_oracle_on_every_tier(d in data()) {
        check::<f64>(&d, f64::EPSILON / 2.0)?;
    }
}
