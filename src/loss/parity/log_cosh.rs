//! `log_cosh` (Keras): `log cosh(input - target)`, without overflow or cancellation.
//!
//! # Numerics
//!
//! With `d = x - y`, `a = |d|`, `h = d/2`:
//! - `a < 1`: `log cosh d = log1p(2 sinh²(h))`, `sinh h` by its Taylor series `h·Σ h^2k/(2k+1)!`
//!   (all terms positive, `|h| < 1/2`: 5 terms reach f32's precision, 8 f64's), so no
//!   `cosh d - 1` cancels;
//! - `a >= 1`: `a - ln 2 + log1p(e^(-2a))`, which cannot overflow (`|d|` up to `f32::MAX`); the
//!   result is at least `log cosh 1 = 0.43`, so the subtraction of `ln 2` loses at most a
//!   factor of 2.6 in relative error.
//!
//! One `exp` and one `log1p` per element (the two branches share the `log1p`). The derivative
//! `tanh d` is `2 sinh(h) cosh(h) / (1 + 2 sinh²(h))` below 1 (`cosh h` by its series too) and
//! `sgn(d)·(1 - e^(-2a)) / (1 + e^(-2a))` above. NaN gives NaN, `±inf` gives `+inf` (and
//! gradient `±1`).

use crate::engine::Map2;
use crate::float::sealed::Sealed as _;
use crate::loss::pointwise::{each, reduce2, reduce2_grad};
use crate::loss::Pointwise;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// `sinh(h)/h = Σ h^2k/(2k+1)!`, k = 0..8.
const SINH: [f64; 8] = [
    1.0,
    1.0 / 6.0,
    1.0 / 120.0,
    1.0 / 5040.0,
    1.0 / 362_880.0,
    1.0 / 39_916_800.0,
    1.0 / 6_227_020_800.0,
    1.0 / 1_307_674_368_000.0,
];

/// `cosh(h) = Σ h^2k/(2k)!`, k = 0..8.
const COSH: [f64; 8] = [
    1.0,
    1.0 / 2.0,
    1.0 / 24.0,
    1.0 / 720.0,
    1.0 / 40_320.0,
    1.0 / 3_628_800.0,
    1.0 / 479_001_600.0,
    1.0 / 87_178_291_200.0,
];

/// Terms of the series for `T`: for `|h| < 1/2` the k-th term is below `4^-k/(2k)!`, under
/// half an ulp of 1 from k = 5 in f32 and k = 8 in f64.
fn terms<T: Float>() -> usize {
    if core::mem::size_of::<T>() == 4 {
        5
    } else {
        8
    }
}

/// The parts of `log cosh d` both the loss and its derivative use.
struct Parts<V: Lanes> {
    small: V::Mask,
    /// `sinh(d/2)` (meaningful where `small`).
    s: V,
    /// `(d/2)²`.
    h2: V,
    /// `2 sinh²(d/2)`.
    u: V,
    /// `e^(-2|d|)`.
    e: V,
    loss: V,
}

#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn parts<V: Lanes>(isa: V::Isa, d: V) -> Parts<V> {
    let k = |c: f64| V::splat(isa, V::Elem::from_f64(c));
    let n = terms::<V::Elem>();
    let a = d.abs();
    let small = a.lt(k(1.0));
    let h = d * k(0.5);
    let h2 = h * h;
    let s = h * math::horner(isa, h2, &SINH[..n]);
    let u = (s * s) * k(2.0);
    // NaN d: `small` is false and `e` is NaN, so the loss is NaN.
    let e = math::exp_nonpositive(isa, -(a + a));
    // Both arguments are in [0, 1] (u < 2 sinh²(1/2) = 0.543, e <= e^-2).
    let l = math::log1p_unit(isa, V::select(small, u, e));
    let loss = V::select(small, l, (a - k(core::f64::consts::LN_2)) + l);
    Parts {
        small,
        s,
        h2,
        u,
        e,
        loss,
    }
}

/// `log cosh(x - y)`.
#[derive(Clone, Copy, Debug)]
pub struct LogCosh;

impl<T: Float> Map2<T> for LogCosh {
    // One exp-then-log1p chain per element, like bce: interleave two.
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> V {
        parts(isa, x - y).loss
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_grad<V: Lanes<Elem = T>>(&self, isa: V::Isa, x: V, y: V) -> (V, V) {
        let d = x - y;
        let p = parts(isa, d);
        let one = V::splat(isa, T::ONE);
        let c = math::horner(isa, p.h2, &COSH[..terms::<T>()]);
        let sc = p.s * c;
        let near = (sc + sc) / (one + p.u);
        let far = (one - p.e) / (one + p.e);
        // NaN d keeps NaN: `far` is NaN and the sign select leaves it so.
        let far = V::select(d.lt(V::splat(isa, T::ZERO)), -far, far);
        (p.loss, V::select(p.small, near, far))
    }
}

/// `log cosh(input - target)` (Keras's `log_cosh`), reduced; computed without overflow or
/// cancellation for any difference (see the numerics above the kernel in `log_cosh.rs`).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// use losskit::Reduction;
/// let loss = losskit::log_cosh(&[0.0f64, 1e4], &[0.0, 0.0], Reduction::Sum)?;
/// assert!((loss - (1e4 - std::f64::consts::LN_2)).abs() < 1e-9); // no overflow
/// let tiny = losskit::log_cosh(&[1e-4f32], &[0.0], Reduction::Mean)?;
/// assert!((tiny - 5e-9).abs() < 1e-14); // no cancellation
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn log_cosh<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    reduce2(input, target, reduction, Pointwise::LogCosh)
}

/// [`log_cosh`] without reduction, into `out`.
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `out` is not as long as `input`.
///
/// ```
/// let mut out = [0.0f64; 2];
/// losskit::log_cosh_each(&[0.0, 2.0], &[0.0, 0.0], &mut out)?;
/// assert_eq!(out[0], 0.0);
/// assert!((out[1] - 2f64.cosh().ln()).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn log_cosh_each<S: Storage>(
    input: &[S],
    target: &[S],
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    each(input, target, out, Pointwise::LogCosh)
}

/// [`log_cosh`] and its gradient `tanh(input - target)` in one pass, divided by the length for
/// [`Reduction::Mean`].
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target` or `grad` is not as long as `input`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f64; 2];
/// losskit::log_cosh_and_grad(&[0.5, -30.0], &[0.0, 0.0], Reduction::Sum, &mut grad)?;
/// assert!((grad[0] - 0.5f64.tanh()).abs() < 1e-15);
/// assert_eq!(grad[1], -1.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn log_cosh_and_grad<S: Storage>(
    input: &[S],
    target: &[S],
    reduction: Reduction,
    grad: &mut [S],
) -> Result<S::Compute, LossError> {
    reduce2_grad(input, target, reduction, grad, Pointwise::LogCosh)
}
