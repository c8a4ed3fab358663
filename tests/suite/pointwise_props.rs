//! Differential tests: every pointwise kernel of the registry whose `each` is exact, on every
//! tier this CPU has, against the scalar oracle in `losskit::reference`, over lengths 0..5000,
//! unaligned sub-slices and hostile values.

use crate::common;

use common::Elem;
use losskit::{reference, with_tier, Reduction, Tier};
use proptest::prelude::*;

use crate::registry::{Pointwise, POINTWISE};

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

/// The registry's losses whose `each` is exact (bit for bit the reference's), at parameter
/// `param`: without the parameter where the loss has a form without it, and with it.
fn exact_losses(param: f64) -> impl Iterator<Item = (&'static Pointwise, Option<f64>)> {
    POINTWISE.iter().filter(|l| l.exact).flat_map(move |&l| {
        let with = l.param.map(|_| param);
        let without = (l.param.is_none() || l.param_optional).then_some(None);
        without
            .into_iter()
            .chain(l.param.map(|_| with))
            .map(move |p| (l, p))
    })
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
    for (loss, setting) in exact_losses(d.param) {
        let name = loss.label(setting);
        let p = setting.map(T::of);
        if let Some(want) = loss.param_error(setting) {
            // PyTorch rejects huber's delta = 0, and so must the kernel.
            let got = loss.reduce(x, y, p, Reduction::Mean);
            prop_assert!(
                got.as_ref().is_err_and(|e| common::same_error(e, &want)),
                "{name}: {got:?}, expected {want:?}"
            );
            continue;
        }
        let elems: Vec<T> = x
            .iter()
            .zip(y)
            .map(|(&a, &b)| loss.reference(a, b, p))
            .collect();
        let magnitude: f64 = elems.iter().map(|v| v.f64().abs()).sum();
        for tier in Tier::available() {
            with_tier(tier, || -> Result<(), TestCaseError> {
                let mut out = vec![T::of(0.5); n];
                loss.each(x, y, p, &mut out).unwrap();
                for (i, (g, w)) in out.iter().zip(&elems).enumerate() {
                    let same = g.f64().to_bits() == w.f64().to_bits()
                        || (g.f64().is_nan() && w.f64().is_nan());
                    prop_assert!(
                        same,
                        "{name} each[{i}] on {tier}: {g:?} vs oracle {w:?} (x={:?}, y={:?})",
                        x[i],
                        y[i]
                    );
                }
                for (r, count) in [(Reduction::Sum, 1.0), (Reduction::Mean, n as f64)] {
                    let got = loss.reduce(x, y, p, r).unwrap();
                    let want = reference::reduce(elems.iter().copied(), r);
                    prop_assert!(
                        within_bound(got, want, magnitude, count, unit, n)
                            || (n == 0 && got.f64().is_nan() == want.f64().is_nan()),
                        "{name} {r:?} on {tier}, n={n}: {got:?} vs oracle {want:?}"
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
