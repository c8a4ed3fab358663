//! The dispatched kernels of every registry loss whose `each` is exact (`tests/registry`)
//! against their twins in `losskit::reference`, on every tier this CPU has.
//!
//! - `*_each` is bit-identical to the reference per-element function (NaN matches any NaN);
//! - reductions are within the reduce driver's documented bound (`reduce.rs`) of the exact
//!   sum: `(BLOCK_STEPS·UNROLL + 2)·u·S + (n/LANES + log2 n)·2^-53·S` with `S = Σ|mᵢ|`, divided
//!   by the count for a mean, plus the final roundings `2·u·|result|` (and two subnormal steps
//!   when the result is subnormal). The `2^-53` term is what
//!   the `f64` accumulators add; for f32 it is negligible, for f64 it is the larger term, and
//!   `tests/suite/pointwise_props.rs` (lengths below 5000) leaves it out. The exact sum is computed
//!   with compensated (Neumaier) summation, since `reference::reduce`'s plain sequential `f64`
//!   sum is itself off by up to `n·2^-53·S`;
//! - results are bit-identical on a 1-thread pool, a 3-thread pool and the global pool.
//!
//! Values are arbitrary bit patterns. The bound assumes that no element-type partial sum
//! overflows; f32 partial sums beyond f32's range may be inf (as PyTorch's are) where the f64
//! oracle is finite, so when `Σ|mᵢ|` comes within a factor 4 of the type's maximum only the
//! NaN-ness and sign of the result are checked.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../../tests/registry/mod.rs"]
#[macro_use]
mod registry;

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use common::{build, same, Elem, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{reference, with_tier, Reduction, Tier};
use registry::{Pointwise, POINTWISE};

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    /// The registry entry among the exact ones (see [`pick`]); decoded as the `Loss` enum
    /// this field replaced was, so the corpus seeds keep choosing the loss they were written for.
    loss: u32,
    param: u64,
    input: Size,
    offset: u8,
    at: u32,
    raw_input: Vec<u64>,
    raw_target: Vec<u64>,
}

fn pools() -> &'static [rayon::ThreadPool; 2] {
    static POOLS: OnceLock<[rayon::ThreadPool; 2]> = OnceLock::new();
    POOLS.get_or_init(|| {
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        [pool(1), pool(3)]
    })
}

/// The registry's losses whose `each` is bit for bit the reference's.
fn exact_losses() -> &'static [&'static Pointwise] {
    static EXACT: OnceLock<Vec<&'static Pointwise>> = OnceLock::new();
    EXACT.get_or_init(|| POINTWISE.iter().copied().filter(|l| l.exact).collect())
}

/// The entry of `table` that `raw` selects, as `arbitrary` derives an enum's variant from a
/// `u32` (`raw · len / 2^32`), and whether a loss whose parameter is optional gets it (the
/// low bit; a required parameter is always passed).
fn pick(table: &[&'static Pointwise], raw: u32) -> (&'static Pointwise, bool) {
    let index = (u64::from(raw) * table.len() as u64) >> 32;
    (table[index as usize], raw & 1 == 1)
}

/// Everything one call sequence produces, as bits: Mean, Sum, and each element.
type Bits = (u64, u64, Vec<u64>);

fn kernels<T: Elem>(loss: &Pointwise, x: &[T], y: &[T], p: Option<T>) -> (T, T, Vec<T>) {
    let mut out = vec![T::of(0.75); x.len()];
    loss.each(x, y, p, &mut out).unwrap();
    let mean = loss.reduce(x, y, p, Reduction::Mean);
    let sum = loss.reduce(x, y, p, Reduction::Sum);
    (mean.unwrap(), sum.unwrap(), out)
}

fn bits<T: Elem>(r: &(T, T, Vec<T>)) -> Bits {
    (
        r.0.bits(),
        r.1.bits(),
        r.2.iter().map(|v| v.bits()).collect(),
    )
}

/// Lanes per vector of each tier (the table in `src/simd/mod.rs`).
fn lanes<T: Elem>(tier: Tier) -> f64 {
    let wide = core::mem::size_of::<T>() == 4;
    match tier {
        Tier::Portable | Tier::Avx2 => {
            if wide {
                8.0
            } else {
                4.0
            }
        }
        Tier::Avx512 => {
            if wide {
                16.0
            } else {
                8.0
            }
        }
        _ => 1.0,
    }
}

/// `Σ values` to within `2^-52·|Σ| + O(n·2^-106)·Σ|v|` (Neumaier's compensated sum).
fn accurate_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = s + v;
        c += if s.abs() >= v.abs() {
            (s - t) + v
        } else {
            (v - t) + s
        };
        s = t;
    }
    s + c
}

fn run<T: Elem>(c: &Case) {
    let n = c.input.get();
    let offset = c.offset as usize % 16;
    let xs = build::<T>(n, offset, c.at, &c.raw_input, 3);
    let ys = build::<T>(n, offset, c.at.rotate_left(7), &c.raw_target, 4);
    let (x, y) = (&xs[offset..], &ys[offset..]);
    let (loss, with_param) = pick(exact_losses(), c.loss);
    // A valid parameter from arbitrary bits: |p|, and 1 where that is still invalid (NaN,
    // huber's delta 0).
    let p = T::from_bits64(c.param);
    let p = if p.f64() < 0.0 { -p } else { p };
    let p = if loss.param_error(Some(p.f64())).is_some() {
        T::of(1.0)
    } else {
        p
    };
    let setting = (loss.param.is_some() && (with_param || !loss.param_optional)).then_some(p);
    let name = loss.label(setting.map(|p| p.f64()));

    let elems: Vec<T> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| loss.reference(a, b, setting))
        .collect();
    let magnitude: f64 = elems.iter().map(|v| v.f64().abs()).sum();
    let want_sum = reference::reduce(elems.iter().copied(), Reduction::Sum);
    let want_mean = reference::reduce(elems.iter().copied(), Reduction::Mean);
    let checkable = !(magnitude.is_finite() && magnitude > T::MAX / 4.0);

    for tier in Tier::available() {
        let direct = with_tier(tier, || kernels(loss, x, y, setting)).unwrap();
        let (mean, sum, out) = &direct;
        for (i, (&g, &w)) in out.iter().zip(&elems).enumerate() {
            assert!(
                same(g, w),
                "{name} each[{i}] on {tier}: {g:?} vs reference {w:?} (x={:?} y={:?})",
                x[i],
                y[i]
            );
        }
        let exact_sum = accurate_sum(elems.iter().map(|v| v.f64()));
        let f64_terms =
            (n as f64 / lanes::<T>(tier) + (n.max(1) as f64).log2() + 2.0) * f64::EPSILON / 2.0;
        for (got, want, exact, count) in [
            (*mean, want_mean, exact_sum / n as f64, n as f64),
            (*sum, want_sum, exact_sum, 1.0),
        ] {
            let (g, w) = (got.f64(), want.f64());
            let what = format!("{name} n={n} count={count} on {tier}: {g:e} vs reference {w:e}",);
            if w.is_nan() || g.is_nan() {
                assert!(w.is_nan() && g.is_nan(), "{what}");
            } else if !checkable {
                assert!(g >= 0.0, "{what}");
            } else if w.is_infinite() || g.is_infinite() {
                assert!(g == w, "{what}");
            } else {
                let bound = (34.0 * T::UNIT + f64_terms) * magnitude / count
                    + 2.0 * T::UNIT * exact.abs()
                    + 2.0 * T::TINY;
                assert!(
                    (g - exact).abs() <= bound,
                    "{what}, exact {exact:e}: off by {:e} > {bound:e}",
                    (g - exact).abs()
                );
            }
        }

        // Bit-identical whatever the pool. `with_tier` goes inside `install`, as the tier is
        // pinned per thread.
        let want = bits(&direct);
        for pool in pools() {
            let got =
                pool.install(|| with_tier(tier, || bits(&kernels(loss, x, y, setting))).unwrap());
            assert!(
                got == want,
                "{name} n={n} on {tier}: {} threads give different bits than the global pool",
                pool.current_num_threads()
            );
        }
    }
}

fuzz_target!(|c: Case| {
    if c.double {
        run::<f64>(&c)
    } else {
        run::<f32>(&c)
    }
});
