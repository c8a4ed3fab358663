//! The element types the kernels accept: `f32` and `f64`.

use core::fmt::{Debug, Display};
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::simd::Lanes;
use crate::storage::Storage;

/// An element type the losses are computed in: `f32` or `f64`.
///
/// The trait is sealed: it exists so that every public function can be written once for both
/// widths, and it carries, hidden, the SIMD lane type of each instruction-set tier.
///
/// ```
/// fn mean_abs_error<T: losskit::Float>(a: &[T], b: &[T]) -> Result<T, losskit::LossError> {
///     losskit::l1(a, b, losskit::Reduction::Mean)
/// }
/// assert_eq!(mean_abs_error(&[1.0f32, 2.0], &[1.5, 2.5]).unwrap(), 0.5);
/// assert_eq!(mean_abs_error(&[1.0f64, 2.0], &[1.5, 2.5]).unwrap(), 0.5);
/// ```
pub trait Float:
    Storage<Compute = Self>
    + sealed::Sealed
    + Copy
    + Default
    + Debug
    + Display
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
}

impl Float for f32 {}
impl Float for f64 {}

pub(crate) mod sealed {
    use super::*;

    /// The hidden half of [`Float`](super::Float): conversions and the lane type per tier.
    pub trait Sealed {
        /// Lanes of the always-available scalar tier (one lane, plain arithmetic).
        type Scalar: Lanes<Elem = Self, Isa = crate::simd::scalar::Scalar>;
        /// Lanes of the portable tier (`wide`).
        type Portable: Lanes<Elem = Self, Isa = crate::simd::portable::Portable>;
        /// Lanes of the AVX2+FMA tier (one 256-bit vector; the tier runs kernels on pairs of them).
        #[cfg(target_arch = "x86_64")]
        type Avx2: Lanes<Elem = Self, Isa = crate::simd::avx2::Avx2>;
        /// Lanes of the AVX-512F tier.
        #[cfg(target_arch = "x86_64")]
        type Avx512: Lanes<Elem = Self, Isa = crate::simd::avx512::Avx512>;

        const ZERO: Self;
        const ONE: Self;
        /// `ln(MIN_POSITIVE)` rounded to `Self`: where `exp` leaves the normal range.
        const LN_MIN_POSITIVE: Self;
        /// The most negative finite value (`-MAX`).
        const LOWEST: Self;
        fn to_f64(self) -> f64;
        fn from_f64(x: f64) -> Self;
        fn from_usize(x: usize) -> Self;
        fn abs(self) -> Self;
        fn exp(self) -> Self;
        fn ln(self) -> Self;
        fn ln_1p(self) -> Self;
        /// Adds `values` to `sum` exactly (through its fixed-point window; what that leaves out
        /// through per-exponent bins for `f32`, the digits for `f64`).
        fn add_exact(values: &[Self], sum: &mut crate::engine::BinnedExactSum)
        where
            Self: Sized;
    }

    macro_rules! impl_sealed {
        ($t:ident, $portable:ident, $avx2:ident, $avx512:ident, $ln_min:expr, $add_exact:ident) => {
            impl Sealed for $t {
                type Scalar = crate::simd::scalar::One<$t>;
                type Portable = crate::simd::portable::$portable;
                #[cfg(target_arch = "x86_64")]
                type Avx2 = crate::simd::avx2::$avx2;
                #[cfg(target_arch = "x86_64")]
                type Avx512 = crate::simd::avx512::$avx512;

                const ZERO: Self = 0.0;
                const ONE: Self = 1.0;
                const LN_MIN_POSITIVE: Self = $ln_min;
                const LOWEST: Self = $t::MIN;
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn to_f64(self) -> f64 {
                    self as f64
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn from_f64(x: f64) -> Self {
                    x as $t
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn from_usize(x: usize) -> Self {
                    x as $t
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn abs(self) -> Self {
                    $t::abs(self)
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn exp(self) -> Self {
                    $t::exp(self)
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn ln(self) -> Self {
                    $t::ln(self)
                }
                #[cfg_attr(not(losskit_unoptimized), inline(always))]
                fn ln_1p(self) -> Self {
                    $t::ln_1p(self)
                }
                #[inline]
                fn add_exact(values: &[Self], sum: &mut crate::engine::BinnedExactSum) {
                    sum.$add_exact(values)
                }
            }
        };
    }
    // -126·ln 2 and -1022·ln 2.
    impl_sealed!(f32, F32x8, F32x8, F32x16, -87.336_55, add_f32s);
    impl_sealed!(f64, F64x4, F64x4, F64x8, -708.396_418_532_264_1, add_f64s);
}
