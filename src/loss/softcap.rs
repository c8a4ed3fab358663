//! What a softmax sweep applies to each logit as it loads it: nothing ([`Raw`]), or Gemma 2's
//! logit softcap `cap·tanh(x / cap)` ([`Softcap`]), with the derivative the gradient needs. The
//! sweeps are generic over the map, so the raw form compiles to the loads alone.

use crate::simd::{math, Lanes};
use crate::Float;

/// A map of the logits, applied lane-wise as they are loaded.
pub(crate) trait LogitMap<T: Float>: Copy {
    /// Whether the map is the identity (then the sweeps skip what only a map needs).
    const RAW: bool;

    /// The mapped logits.
    fn map<V: Lanes<Elem = T>>(self, isa: V::Isa, x: V) -> V;

    /// The mapped logits and the map's derivative at `x`.
    fn map_with_slope<V: Lanes<Elem = T>>(self, isa: V::Isa, x: V) -> (V, V);
}

/// The logits as they are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw;

impl<T: Float> LogitMap<T> for Raw {
    const RAW: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(self, _: V::Isa, x: V) -> V {
        x
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_with_slope<V: Lanes<Elem = T>>(self, isa: V::Isa, x: V) -> (V, V) {
        (x, V::splat(isa, T::ONE))
    }
}

/// `cap·tanh(x / cap)`: logits squashed into `(-cap, cap)` (a `-inf` logit becomes `-cap`),
/// slope `1 - tanh²(x / cap)`.
///
/// The division is a multiplication by `1 / cap` rounded once to `T` (PyTorch divides): the
/// argument of `tanh` is within 1.5 ULP of PyTorch's, and [`math::tanh`] within 3 ULP of the
/// exact value, so a capped logit is within about `4.5·u·cap` of the exact one (`u` the
/// type's unit roundoff; 2.7e-7·cap for f32), whatever its size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Softcap<T> {
    cap: T,
    inv: T,
}

impl<T: Float> Softcap<T> {
    /// The softcap `cap` (finite and `> 0`, checked by the caller).
    pub(crate) fn new(cap: T) -> Self {
        Softcap {
            cap,
            inv: T::from_f64(1.0 / cap.to_f64()),
        }
    }
}

impl<T: Float> LogitMap<T> for Softcap<T> {
    const RAW: bool = false;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map<V: Lanes<Elem = T>>(self, isa: V::Isa, x: V) -> V {
        math::tanh(isa, x * V::splat(isa, self.inv)) * V::splat(isa, self.cap)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn map_with_slope<V: Lanes<Elem = T>>(self, isa: V::Isa, x: V) -> (V, V) {
        let t = math::tanh(isa, x * V::splat(isa, self.inv));
        // 1 - t² in one rounding.
        let slope = (-t).mul_add(t, V::splat(isa, T::ONE));
        (t * V::splat(isa, self.cap), slope)
    }
}
