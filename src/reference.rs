//! The scalar oracle: plain loops, one element at a time, no SIMD, sums in `f64`.
//!
//! Every kernel is differentially tested against these functions. Each per-element function
//! computes in the element type exactly as PyTorch's CPU kernel writes it, so the kernels'
//! results can be held to a few ulps of it; [`reduce`] sums in `f64` in index order.
//! They check nothing: lengths are the caller's business (extra elements are ignored).
//!
//! ```
//! use losskit::{reference, Reduction};
//! let (x, y) = ([1.0f32, 2.0], [0.0f32, 0.0]);
//! let oracle = reference::reduce(x.iter().zip(&y).map(|(&x, &y)| reference::mse(x, y)), Reduction::Mean);
//! assert_eq!(oracle, losskit::mse(&x, &y, Reduction::Mean).unwrap());
//! ```

use crate::{Float, Reduction};

/// Reduces per-element losses: the `f64` sum in index order, divided by the count for
/// [`Reduction::Mean`] (NaN for no elements), then rounded to `T`.
pub fn reduce<T: Float>(values: impl IntoIterator<Item = T>, reduction: Reduction) -> T {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for v in values {
        sum += v.to_f64();
        n += 1;
    }
    reduction.finish(sum, n)
}

/// `(x - y)²`.
pub fn mse<T: Float>(x: T, y: T) -> T {
    let d = x - y;
    d * d
}

/// `|x - y|`.
pub fn l1<T: Float>(x: T, y: T) -> T {
    (x - y).abs()
}

/// Huber: `z = |x - y|`; `0.5 z²` if `z < delta`, else `delta (z - 0.5 delta)`.
pub fn huber<T: Float>(x: T, y: T, delta: T) -> T {
    let half = T::from_f64(0.5);
    let z = (x - y).abs();
    if z < delta {
        half * z * z
    } else {
        delta * (z - half * delta)
    }
}

/// Smooth L1: `z = |x - y|`; `0.5 z² / beta` if `z < beta`, else `z - 0.5 beta`.
pub fn smooth_l1<T: Float>(x: T, y: T, beta: T) -> T {
    let half = T::from_f64(0.5);
    let z = (x - y).abs();
    if z < beta {
        half * z * z / beta
    } else {
        z - half * beta
    }
}
