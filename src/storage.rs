//! What the kernels read and write: `f32`, `f64`, `bf16`, `f16` — storage beside compute.
//!
//! A loss is written once over lanes of its compute type ([`Float`]: `f32` or `f64`); the
//! storage type only decides how lanes are loaded from and stored to memory. `f32` and `f64`
//! are their own compute type. `bf16` and `f16` compute in `f32`: each load widens exactly
//! (a 16-bit shift for bf16, F16C `vcvtph2ps` for f16 on x86), each store rounds to nearest
//! even, in registers, so a half-precision input is read in place with no conversion pass and
//! no allocation.
//!
//! The sealed half of [`Storage`] also carries the non-generic entry points of every kernel,
//! implemented for the four types inside this crate (see `entry.rs`): a dependent crate's
//! generic call compiles down to a call of one of them, so none of the kernels is compiled
//! again in the dependent crate.

use core::fmt::Debug;

use crate::simd::Lanes;
use crate::Float;

pub use half::{bf16, f16};

/// An element type the losses read: `f32`, `f64`, [`bf16`] or [`f16`](struct@f16).
///
/// Losses are computed in [`Storage::Compute`] — the type itself for `f32` and `f64`, `f32`
/// for the 16-bit types — and return it; gradients are written back in the storage type
/// (rounded to nearest even). The trait is sealed.
///
/// ```
/// use losskit::{bf16, Reduction};
/// let pred: Vec<bf16> = [0.5f32, 1.5, -0.25].iter().map(|&x| bf16::from_f32(x)).collect();
/// let target: Vec<bf16> = [0.0f32, 2.0, 0.0].iter().map(|&x| bf16::from_f32(x)).collect();
/// let loss: f32 = losskit::mse(&pred, &target, Reduction::Sum)?;
/// assert_eq!(loss, 0.5625);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub trait Storage: sealed::Sealed + Copy + Debug + Send + Sync + 'static {
    /// The type the losses are computed and returned in.
    type Compute: Float;
}

pub(crate) mod sealed {
    use super::*;

    /// The hidden half of [`Storage`](super::Storage): lane loads and stores per tier, and
    /// (in `entry.rs`) the kernels' entry points.
    pub trait Sealed: crate::entry::Entry {
        /// `"f32"`, `"f64"`, `"bf16"` or `"f16"`.
        const NAME: &'static str;
        /// The value in the compute type (exact).
        fn to_compute(self) -> <Self as Storage>::Compute
        where
            Self: Storage;
        /// `x` rounded to nearest even.
        fn from_compute(x: <Self as Storage>::Compute) -> Self
        where
            Self: Storage;
        /// The first `V::LANES` values of `src`.
        fn load<V: Lanes<Elem = <Self as Storage>::Compute>>(isa: V::Isa, src: &[Self]) -> V
        where
            Self: Storage;
        /// `src` (shorter than `V::LANES`) in the low lanes, `fill` in the rest.
        fn load_prefix<V: Lanes<Elem = <Self as Storage>::Compute>>(
            isa: V::Isa,
            src: &[Self],
            fill: V::Elem,
        ) -> V
        where
            Self: Storage;
        /// All lanes of `v` into the first `V::LANES` values of `dst`.
        fn store<V: Lanes<Elem = <Self as Storage>::Compute>>(v: V, dst: &mut [Self])
        where
            Self: Storage;
        /// The low `dst.len()` lanes of `v` (fewer than `V::LANES`) into `dst`.
        fn store_prefix<V: Lanes<Elem = <Self as Storage>::Compute>>(v: V, dst: &mut [Self])
        where
            Self: Storage;
    }
}

macro_rules! impl_float_storage {
    ($t:ident) => {
        impl Storage for $t {
            type Compute = $t;
        }
        impl sealed::Sealed for $t {
            const NAME: &'static str = stringify!($t);
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn to_compute(self) -> $t {
                self
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn from_compute(x: $t) -> $t {
                x
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load<V: Lanes<Elem = $t>>(isa: V::Isa, src: &[$t]) -> V {
                V::load(isa, src)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load_prefix<V: Lanes<Elem = $t>>(isa: V::Isa, src: &[$t], fill: $t) -> V {
                V::load_prefix(isa, src, fill)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store<V: Lanes<Elem = $t>>(v: V, dst: &mut [$t]) {
                v.store(dst)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store_prefix<V: Lanes<Elem = $t>>(v: V, dst: &mut [$t]) {
                v.store_prefix(dst)
            }
        }
    };
}
impl_float_storage!(f32);
impl_float_storage!(f64);

macro_rules! impl_half_storage {
    ($t:ident) => {
        impl Storage for $t {
            type Compute = f32;
        }
        impl sealed::Sealed for $t {
            const NAME: &'static str = stringify!($t);
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn to_compute(self) -> f32 {
                self.to_f32()
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn from_compute(x: f32) -> $t {
                $t::from_f32(x)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load<V: Lanes<Elem = f32>>(isa: V::Isa, src: &[$t]) -> V {
                V::load_half(isa, src)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn load_prefix<V: Lanes<Elem = f32>>(isa: V::Isa, src: &[$t], fill: f32) -> V {
                V::load_half_prefix(isa, src, fill)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store<V: Lanes<Elem = f32>>(v: V, dst: &mut [$t]) {
                v.store_half(dst)
            }
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn store_prefix<V: Lanes<Elem = f32>>(v: V, dst: &mut [$t]) {
                v.store_half_prefix(dst)
            }
        }
    };
}
impl_half_storage!(bf16);
impl_half_storage!(f16);
