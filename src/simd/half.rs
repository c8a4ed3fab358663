//! The 16-bit storage formats, `bf16` and `f16`, as the lanes see them.
//!
//! Both widen exactly to `f32` (every bf16 and f16 value is an f32 value) and narrow with one
//! rounding to nearest, ties to even, as the `half` crate does: a NaN stays a NaN (quiet; its
//! payload is unspecified), overflow gives ±inf, and f16 keeps its subnormals. The x86 tiers
//! do this with a 16-bit shift (bf16) or F16C `vcvtph2ps`/`vcvtps2ph` (f16); the portable and
//! scalar tiers go through `half` element by element (the trait's default methods).

use super::Lanes;
use crate::float::sealed::Sealed as _;

/// A 16-bit float format the kernels read and write: `half::bf16` or `half::f16`.
pub trait Half: bytemuck::Pod + Send + Sync + 'static {
    /// Which of the two it is (the x86 tiers pick their conversion by it, at compile time).
    const FORMAT: HalfFormat;
    /// The value, exactly, as `f64`.
    fn to_f64(self) -> f64;
    /// `x` rounded to nearest, ties to even.
    fn from_f64(x: f64) -> Self;
}

/// The two formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfFormat {
    /// 1 sign, 8 exponent, 7 mantissa bits: the upper half of an f32.
    Bf16,
    /// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits.
    F16,
}

impl Half for half::bf16 {
    const FORMAT: HalfFormat = HalfFormat::Bf16;
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn to_f64(self) -> f64 {
        half::bf16::to_f64(self)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_f64(x: f64) -> Self {
        // Through f32 when x is an f32 value (every lane value is): one rounding either way,
        // and `from_f32` is the cheaper one.
        half::bf16::from_f32(x as f32)
    }
}

impl Half for half::f16 {
    const FORMAT: HalfFormat = HalfFormat::F16;
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn to_f64(self) -> f64 {
        half::f16::to_f64(self)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_f64(x: f64) -> Self {
        half::f16::from_f32(x as f32)
    }
}

/// The widest vector any tier builds (a `Pair` of AVX-512 f32 vectors).
const MAX_LANES: usize = 32;

/// [`Lanes::load_half`] element by element: the default of tiers without a vector conversion.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn load_by_elements<V: Lanes, H: Half>(isa: V::Isa, src: &[H]) -> V {
    let mut buf = [V::Elem::ZERO; MAX_LANES];
    for (b, &h) in buf[..V::LANES].iter_mut().zip(&src[..V::LANES]) {
        *b = V::Elem::from_f64(h.to_f64());
    }
    V::load(isa, &buf)
}

/// [`Lanes::load_half_prefix`] element by element.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn load_prefix_by_elements<V: Lanes, H: Half>(
    isa: V::Isa,
    src: &[H],
    fill: V::Elem,
) -> V {
    let mut buf = [fill; MAX_LANES];
    let n = src.len().min(V::LANES);
    for (b, &h) in buf[..n].iter_mut().zip(&src[..n]) {
        *b = V::Elem::from_f64(h.to_f64());
    }
    V::load(isa, &buf)
}

/// [`Lanes::store_half_prefix`] (and, with `dst.len() >= LANES`, `store_half`) element by
/// element: the first `min(dst.len(), LANES)` lanes.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn store_by_elements<V: Lanes, H: Half>(v: V, dst: &mut [H]) {
    let mut buf = [V::Elem::ZERO; MAX_LANES];
    v.store(&mut buf[..V::LANES]);
    let n = dst.len().min(V::LANES);
    for (d, &b) in dst[..n].iter_mut().zip(&buf[..n]) {
        *d = H::from_f64(b.to_f64());
    }
}

/// Copies the bits of `src` (at most 16 values) into a zeroed 16-value buffer, so that a tier
/// can convert a prefix with its whole-vector instructions.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn prefix_bits<H: Half>(src: &[H]) -> [u16; 16] {
    let mut buf = [0u16; 16];
    let n = src.len().min(16);
    buf[..n].copy_from_slice(bytemuck::cast_slice(&src[..n]));
    buf
}

#[cfg(test)]
mod tests {
    use super::Half;
    use crate::simd::pair::Pair;
    use crate::simd::{Kernel, Lanes};
    use crate::Tier;

    /// Widens every value of `src` and narrows every f32 of `wide` back, whole vectors and
    /// prefixes of each length, with `V` and with `Pair<V>`.
    struct RoundTrip<'a, H> {
        src: &'a [H],
        wide: &'a [f32],
    }

    /// What one tier produced: widened values (whole, then prefix rows) and narrowed bits.
    type Produced = (Vec<u32>, Vec<u16>);

    impl<H: Half> RoundTrip<'_, H> {
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn on<V: Lanes<Elem = f32>>(&self, isa: V::Isa) -> Produced {
            let l = V::LANES;
            let mut widened = Vec::new();
            let mut lanes = vec![0.0f32; l];
            for chunk in self.src.chunks_exact(l) {
                V::load_half(isa, chunk).store(&mut lanes);
                widened.extend(lanes.iter().map(|x| x.to_bits()));
            }
            // Prefixes of every length, padded with a fill that no input has.
            for n in 0..l {
                V::load_half_prefix(isa, &self.src[..n], 7.5).store(&mut lanes);
                widened.extend(lanes.iter().map(|x| x.to_bits()));
            }
            let mut narrowed = vec![H::from_f64(0.0); self.wide.len()];
            for (w, d) in self.wide.chunks_exact(l).zip(narrowed.chunks_exact_mut(l)) {
                V::load(isa, w).store_half(d);
            }
            // Prefix stores write only their prefix: the rest keeps a sentinel.
            let sentinel = H::from_f64(-3.0);
            for n in 0..l {
                let mut dst = vec![sentinel; l];
                V::load(isa, &self.wide[..l]).store_half_prefix(&mut dst[..n]);
                narrowed.extend(dst);
            }
            (widened, bytemuck::cast_slice(&narrowed).to_vec())
        }
    }

    impl<H: Half> Kernel<f32> for RoundTrip<'_, H> {
        type Output = (Produced, Produced);
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn run<V: Lanes<Elem = f32>>(self, isa: V::Isa) -> Self::Output {
            (self.on::<V>(isa), self.on::<Pair<V>>(isa))
        }
    }

    /// What `half` gives for the same calls, for a vector of `l` lanes.
    fn expected<H: Half>(src: &[H], wide: &[f32], l: usize) -> Produced {
        let whole = src.len() - src.len() % l;
        let mut widened: Vec<u32> = src[..whole]
            .iter()
            .map(|h| (h.to_f64() as f32).to_bits())
            .collect();
        for n in 0..l {
            widened.extend((0..l).map(|i| {
                let x = if i < n { src[i].to_f64() as f32 } else { 7.5 };
                x.to_bits()
            }));
        }
        let whole = wide.len() - wide.len() % l;
        let mut narrowed: Vec<H> = wide[..whole]
            .iter()
            .map(|&x| H::from_f64(x as f64))
            .collect();
        for n in 0..l {
            narrowed.extend((0..l).map(|i| {
                if i < n {
                    H::from_f64(wide[i] as f64)
                } else {
                    H::from_f64(-3.0)
                }
            }));
        }
        (widened, bytemuck::cast_slice(&narrowed).to_vec())
    }

    /// NaN bits compare equal to any NaN of the same sign class: payloads are unspecified.
    fn same_half<H: Half>(a: u16, b: u16) -> bool {
        let (x, y): (H, H) = (bytemuck::cast(a), bytemuck::cast(b));
        a == b || (x.to_f64().is_nan() && y.to_f64().is_nan())
    }

    fn check<H: Half>(name: &str) {
        // Every 16-bit pattern, and f32 values around every rounding boundary: ties, one ulp
        // either side, overflow, subnormals, ±0, ±inf and NaN.
        let src: Vec<H> = (0..=u16::MAX).map(bytemuck::cast).collect();
        let mut wide: Vec<f32> = Vec::new();
        for bits in (0..=u16::MAX as u32).step_by(3) {
            let base = bits << 16;
            for delta in [
                0u32, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x1000, 0x2000, 0x3FFF,
            ] {
                wide.push(f32::from_bits(base | delta));
            }
        }
        for x in [
            65504.0f32, 65519.99, 65520.0, 1e-8, 5.96e-8, 2.98e-8, 6.1e-5, -0.0, 1e30,
        ] {
            wide.extend([x, -x]);
        }
        wide.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
        ]);
        wide.truncate(wide.len() - wide.len() % 32);
        for tier in Tier::available() {
            let (plain, paired) = tier.resolve().run::<f32, _>(RoundTrip {
                src: &src,
                wide: &wide,
            });
            for (what, (widened, narrowed), l) in [
                ("vector", plain, lanes_of(tier)),
                ("pair", paired, 2 * lanes_of(tier)),
            ] {
                let (want_w, want_n) = expected(&src, &wide, l);
                assert_eq!(widened.len(), want_w.len(), "{tier} {name} {what}");
                for (i, (g, w)) in widened.iter().zip(&want_w).enumerate() {
                    let nan = f32::from_bits(*g).is_nan() && f32::from_bits(*w).is_nan();
                    assert!(
                        g == w || nan,
                        "{tier} {name} {what} widen #{i}: {g:#x} vs {w:#x}"
                    );
                }
                assert_eq!(narrowed.len(), want_n.len(), "{tier} {name} {what}");
                for (i, (g, w)) in narrowed.iter().zip(&want_n).enumerate() {
                    assert!(
                        same_half::<H>(*g, *w),
                        "{tier} {name} {what} narrow #{i}: {g:#x} vs {w:#x}"
                    );
                }
            }
        }
    }

    fn lanes_of(tier: Tier) -> usize {
        match tier {
            Tier::Scalar => 1,
            Tier::Avx2 | Tier::Avx512 => 16,
            _ => 8,
        }
    }

    #[test]
    fn bf16_loads_and_stores_match_half_on_every_tier() {
        check::<half::bf16>("bf16");
    }

    #[test]
    fn f16_loads_and_stores_match_half_on_every_tier() {
        check::<half::f16>("f16");
    }
}
