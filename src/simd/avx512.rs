//! The AVX-512F tier: 16 x f32 and 8 x f64 lanes in `zmm` registers, via `core::arch`.
//!
//! Masks are `k` registers, tails use masked loads and stores, and `ldexp` is one `vscalefps`.
//! As in `avx2.rs`, every method is `#[inline(always)]` so that it is inlined into [`run`].

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::avx2::{FREXP_F32_C, FREXP_F64_C};
use super::half::{self, Half, HalfFormat};
use super::{avx2, Kernel, Lanes};
use crate::Float;

/// Token of the AVX-512F tier: a value exists only on a CPU that has AVX-512F, AVX2, FMA and
/// F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    /// The token, if this CPU has AVX-512F (and the AVX2, FMA and F16C every such CPU has).
    #[inline]
    pub fn detect() -> Option<Self> {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: just detected.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }

    /// The token, without checking the CPU: the only constructor besides [`Avx512::detect`].
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2, FMA and F16C.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) const unsafe fn new_unchecked() -> Self {
        Avx512(())
    }

    /// The AVX2 token, which this one implies.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn avx2(self) -> avx2::Avx2 {
        // SAFETY-free: detection of this token included AVX2 and FMA.
        avx2::Avx2::from_avx512(self)
    }
}

/// Runs `kernel` with this tier's lanes, compiled with AVX-512F, AVX2, FMA and F16C enabled.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub(crate) fn run<T: Float, K: Kernel<T>>(isa: Avx512, kernel: K) -> K::Output {
    kernel.run::<T::Avx512>(isa)
}

/// Sixteen 16-bit values (bf16 or f16 bits) widened to f32 lanes.
///
/// # Safety
/// The CPU must have AVX-512F (a token of the tier proves it).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn widen_half<H: Half>(bits: __m256i) -> __m512 {
    // SAFETY: register-only intrinsics, which the caller guarantees (AVX-512F).
    unsafe {
        match H::FORMAT {
            HalfFormat::Bf16 => {
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
            }
            HalfFormat::F16 => _mm512_cvtph_ps(bits),
        }
    }
}

/// f32 lanes rounded to nearest even into sixteen 16-bit values (bf16 or f16 bits), as the
/// AVX2 tier's `narrow_half` (bit for bit).
///
/// # Safety
/// As [`widen_half`].
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn narrow_half<H: Half>(v: __m512) -> __m256i {
    // SAFETY: register-only intrinsics, which the caller guarantees (AVX-512F).
    unsafe {
        match H::FORMAT {
            HalfFormat::Bf16 => {
                let x = _mm512_castps_si512(v);
                let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
                let bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF));
                let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(x, bias));
                let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(0x40));
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet))
            }
            HalfFormat::F16 => {
                _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v)
            }
        }
    }
}

/// Sixteen `f32` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x16(__m512);

/// Eight `f64` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x8(__m512d);

// SAFETY (for every `unsafe` block below that only calls intrinsics on register values): a
// value of `F32x16`/`F64x8` can only be created through a method that takes the `Avx512` token
// (or from another such value), and the token exists only when AVX-512F, AVX2 and FMA were
// detected. Blocks that also touch memory say why the access is in bounds.

macro_rules! binary_ops {
    ($v:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $xor:ident, $cast:ident, $casti:ident, $set1:ident) => {
        impl Add for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn add(self, rhs: Self) -> Self {
                // SAFETY: register-only intrinsic; see the note above.
                $v(unsafe { $add(self.0, rhs.0) })
            }
        }
        impl Sub for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn sub(self, rhs: Self) -> Self {
                // SAFETY: register-only intrinsic; see the note above.
                $v(unsafe { $sub(self.0, rhs.0) })
            }
        }
        impl Mul for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn mul(self, rhs: Self) -> Self {
                // SAFETY: register-only intrinsic; see the note above.
                $v(unsafe { $mul(self.0, rhs.0) })
            }
        }
        impl Div for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn div(self, rhs: Self) -> Self {
                // SAFETY: register-only intrinsic; see the note above.
                $v(unsafe { $div(self.0, rhs.0) })
            }
        }
        impl Neg for $v {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn neg(self) -> Self {
                // SAFETY: register-only intrinsics; see the note above.
                $v(unsafe { $casti($xor($cast(self.0), $cast($set1(-0.0)))) })
            }
        }
    };
}
binary_ops!(
    F32x16,
    _mm512_add_ps,
    _mm512_sub_ps,
    _mm512_mul_ps,
    _mm512_div_ps,
    _mm512_xor_si512,
    _mm512_castps_si512,
    _mm512_castsi512_ps,
    _mm512_set1_ps
);
binary_ops!(
    F64x8,
    _mm512_add_pd,
    _mm512_sub_pd,
    _mm512_mul_pd,
    _mm512_div_pd,
    _mm512_xor_si512,
    _mm512_castpd_si512,
    _mm512_castsi512_pd,
    _mm512_set1_pd
);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

impl Lanes for F32x16 {
    type Elem = f32;
    type Isa = Avx512;
    type Mask = __mmask16;
    type Acc = (__m512d, __m512d);
    const LANES: usize = 16;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn splat(_: Avx512, x: f32) -> Self {
        // SAFETY: the token proves AVX-512F; register-only.
        F32x16(unsafe { _mm512_set1_ps(x) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load(_: Avx512, src: &[f32]) -> Self {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F; `src` has exactly 16 elements to read.
        F32x16(unsafe { _mm512_loadu_ps(src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_prefix(isa: Avx512, src: &[f32], fill: f32) -> Self {
        let mask = Self::first_lanes(isa, src.len());
        // SAFETY: the token proves AVX-512F. The masked load reads only lanes `0..src.len()`
        // (at most 16), all inside `src`; masked-off lanes are not accessed and do not fault.
        F32x16(unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask, src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(_: Avx512, src: &[i64], ignore: i64) -> Self {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F; the two unaligned loads read the 16 labels of
        // `src` and nothing else. Truncating to 32 bits keeps every class (below 2^24); the
        // ignored lanes it garbles are replaced by -1.
        unsafe {
            let lo = _mm512_loadu_si512(src.as_ptr().cast());
            let hi = _mm512_loadu_si512(src[8..].as_ptr().cast());
            let ig = _mm512_set1_epi64(ignore);
            let ignored = u16::from(_mm512_cmpeq_epi64_mask(lo, ig))
                | (u16::from(_mm512_cmpeq_epi64_mask(hi, ig)) << 8);
            let labels = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)),
                _mm512_cvtepi64_epi32(hi),
            );
            F32x16(_mm512_mask_blend_ps(
                ignored,
                _mm512_cvtepi32_ps(labels),
                _mm512_set1_ps(-1.0),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(_: Avx512, src: &[i32], ignore: i32) -> Self {
        let src = &src[..16];
        // SAFETY: the token proves AVX-512F; the unaligned load reads the 16 labels of `src`.
        unsafe {
            let labels = _mm512_loadu_si512(src.as_ptr().cast());
            let ignored = _mm512_cmpeq_epi32_mask(labels, _mm512_set1_epi32(ignore));
            F32x16(_mm512_mask_blend_ps(
                ignored,
                _mm512_cvtepi32_ps(labels),
                _mm512_set1_ps(-1.0),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn transpose(_: Avx512, block: &mut [Self]) {
        let b: &mut [Self; 16] = block.try_into().expect("a block of 16 vectors");
        // SAFETY: register-only; the vectors prove AVX-512F. 64 shuffles in four stages, as
        // the AVX2 8x8 transpose with a fourth: interleave pairs of rows within 128-bit lanes
        // (unpack), gather each lane's four rows (shuffle_ps), then move whole 128-bit lanes
        // (shuffle_f32x4, twice) so that column `4k + e` collects lane `k` of element `e` of
        // every group of four rows.
        unsafe {
            let mut t = [_mm512_setzero_ps(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_ps(b[2 * i].0, b[2 * i + 1].0);
                t[2 * i + 1] = _mm512_unpackhi_ps(b[2 * i].0, b[2 * i + 1].0);
            }
            // u[4g + e]: lane k holds rows 4g..4g+4 at column 4k + e.
            let mut u = [_mm512_setzero_ps(); 16];
            for g in 0..4 {
                let (lo0, hi0, lo1, hi1) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
                u[4 * g] = _mm512_shuffle_ps::<0x44>(lo0, lo1);
                u[4 * g + 1] = _mm512_shuffle_ps::<0xEE>(lo0, lo1);
                u[4 * g + 2] = _mm512_shuffle_ps::<0x44>(hi0, hi1);
                u[4 * g + 3] = _mm512_shuffle_ps::<0xEE>(hi0, hi1);
            }
            for e in 0..4 {
                let (u0, u1, u2, u3) = (u[e], u[4 + e], u[8 + e], u[12 + e]);
                let x0 = _mm512_shuffle_f32x4::<0x44>(u0, u1);
                let x1 = _mm512_shuffle_f32x4::<0xEE>(u0, u1);
                let y0 = _mm512_shuffle_f32x4::<0x44>(u2, u3);
                let y1 = _mm512_shuffle_f32x4::<0xEE>(u2, u3);
                b[e] = F32x16(_mm512_shuffle_f32x4::<0x88>(x0, y0));
                b[4 + e] = F32x16(_mm512_shuffle_f32x4::<0xDD>(x0, y0));
                b[8 + e] = F32x16(_mm512_shuffle_f32x4::<0x88>(x1, y1));
                b[12 + e] = F32x16(_mm512_shuffle_f32x4::<0xDD>(x1, y1));
            }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(_: Avx512, src: &[E]) {
        if let Some(first) = src.first() {
            // SAFETY: `prefetcht0` only hints the cache; it never faults and reads no data
            // into the program. The address is that of a live element.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((first as *const E).cast::<i8>()) }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store(self, dst: &mut [f32]) {
        let dst = &mut dst[..16];
        // SAFETY: AVX-512F is proven by `self`; `dst` has exactly 16 elements to write.
        unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_prefix(self, dst: &mut [f32]) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let mask = Self::first_lanes(unsafe { Avx512::new_unchecked() }, dst.len());
        // SAFETY: AVX-512F is proven by `self`. The masked store writes only lanes
        // `0..dst.len()` (at most 16), all inside `dst`.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), mask, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half<H: Half>(_: Avx512, src: &[H]) -> Self {
        let src: &[u16] = bytemuck::cast_slice(&src[..16]);
        // SAFETY: the token proves AVX-512F; `src` has exactly 16 values (32 bytes) to read.
        F32x16(unsafe { widen_half::<H>(_mm256_loadu_si256(src.as_ptr().cast())) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half_prefix<H: Half>(isa: Avx512, src: &[H], fill: f32) -> Self {
        let bits = half::prefix_bits(src);
        // SAFETY: the token proves AVX-512F; `bits` is a local array of 16 values.
        let v = F32x16(unsafe { widen_half::<H>(_mm256_loadu_si256(bits.as_ptr().cast())) });
        Self::select(Self::first_lanes(isa, src.len()), v, Self::splat(isa, fill))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half<H: Half>(self, dst: &mut [H]) {
        let dst: &mut [u16] = bytemuck::cast_slice_mut(&mut dst[..16]);
        // SAFETY: `self` proves AVX-512F; `dst` has exactly 16 values (32 bytes) to write.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), narrow_half::<H>(self.0)) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half_prefix<H: Half>(self, dst: &mut [H]) {
        let mut bits = [0u16; 16];
        // SAFETY: `self` proves AVX-512F; `bits` is a local array of 16 values.
        unsafe { _mm256_storeu_si256(bits.as_mut_ptr().cast(), narrow_half::<H>(self.0)) };
        let n = dst.len().min(16);
        bytemuck::cast_slice_mut(&mut dst[..n]).copy_from_slice(&bits[..n]);
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn abs(self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_abs_ps(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn min(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_min_ps(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn max(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_max_ps(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn round(self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_roundscale_ps::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lt(self, rhs: Self) -> __mmask16 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn le(self, rhs: Self) -> __mmask16 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LE_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn eq(self, rhs: Self) -> __mmask16 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn is_nan(self) -> __mmask16 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn first_lanes(_: Avx512, n: usize) -> __mmask16 {
        ((1u32 << n.min(16)) - 1) as __mmask16
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn select(mask: __mmask16, if_true: Self, if_false: Self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_mask_blend_ps(mask, if_false.0, if_true.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn any(mask: __mmask16) -> bool {
        mask != 0
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn ldexp(self, n: Self) -> Self {
        // `vscalefps` computes self * 2^floor(n) with one rounding and IEEE overflow/underflow.
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_scalef_ps(self.0, n.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn pow2_from_rounded(self) -> Self {
        // SAFETY: register-only.
        F32x16(unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(self.0))) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn frexp_centered(self) -> (Self, Self) {
        // SAFETY: register-only.
        unsafe {
            // As on the AVX2 tier (`avx2::F32x8::frexp_centered`), so the bits are the same.
            let bits = _mm512_castps_si512(self.0);
            let u = _mm512_sub_epi32(bits, _mm512_set1_epi32(FREXP_F32_C - (126 << 23)));
            let m = _mm512_add_epi32(
                _mm512_and_si512(u, _mm512_set1_epi32((1 << 23) - 1)),
                _mm512_set1_epi32(FREXP_F32_C),
            );
            let shift = _mm512_set1_ps(8388608.0);
            let field = _mm512_or_si512(_mm512_srli_epi32::<23>(u), _mm512_castps_si512(shift));
            let e = _mm512_sub_ps(
                _mm512_castsi512_ps(field),
                _mm512_set1_ps(8388608.0 + 126.0),
            );
            (F32x16(_mm512_castsi512_ps(m)), F32x16(e))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_sum(self) -> f32 {
        // Pairwise over halves, then the AVX2 tier's pairwise sum of the 8-lane half.
        let (lo, hi) = self.halves();
        (lo + hi).reduce_sum()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_max(self) -> f32 {
        let (lo, hi) = self.halves();
        lo.max(hi).reduce_max()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_zero(_: Avx512) -> Self::Acc {
        // SAFETY: the token proves AVX-512F; register-only.
        unsafe { (_mm512_setzero_pd(), _mm512_setzero_pd()) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc {
        // SAFETY: register-only.
        unsafe {
            let lo = _mm512_castps512_ps256(v.0);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v.0)));
            (
                _mm512_add_pd(acc.0, _mm512_cvtps_pd(lo)),
                _mm512_add_pd(acc.1, _mm512_cvtps_pd(hi)),
            )
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc {
        // SAFETY: register-only; accumulators are made only by `acc_zero`, which takes the token.
        unsafe { (_mm512_add_pd(a.0, b.0), _mm512_add_pd(a.1, b.1)) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_sum(acc: Self::Acc) -> f64 {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_add_pd(acc.0, acc.1) }).reduce_sum()
    }
}

impl F32x16 {
    /// The low and high eight lanes, as AVX2-tier vectors.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn halves(self) -> (avx2::F32x8, avx2::F32x8) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let isa = unsafe { Avx512::new_unchecked() }.avx2();
        // SAFETY: register-only; AVX-512F is proven by `self`.
        let (lo, hi) = unsafe {
            (
                _mm512_castps512_ps256(self.0),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0))),
            )
        };
        (
            avx2::F32x8::from_raw(isa, lo),
            avx2::F32x8::from_raw(isa, hi),
        )
    }
}

impl Lanes for F64x8 {
    type Elem = f64;
    type Isa = Avx512;
    type Mask = __mmask8;
    type Acc = __m512d;
    const LANES: usize = 8;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn splat(_: Avx512, x: f64) -> Self {
        // SAFETY: the token proves AVX-512F; register-only.
        F64x8(unsafe { _mm512_set1_pd(x) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load(_: Avx512, src: &[f64]) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX-512F; `src` has exactly 8 elements to read.
        F64x8(unsafe { _mm512_loadu_pd(src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_prefix(isa: Avx512, src: &[f64], fill: f64) -> Self {
        let mask = Self::first_lanes(isa, src.len());
        // SAFETY: the token proves AVX-512F. The masked load reads only lanes `0..src.len()`
        // (at most 8), all inside `src`; masked-off lanes are not accessed and do not fault.
        F64x8(unsafe { _mm512_mask_loadu_pd(_mm512_set1_pd(fill), mask, src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(_: Avx512, src: &[i64], ignore: i64) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX-512F; the unaligned load reads the 8 labels of `src`.
        // Truncating to 32 bits keeps every class; the ignored lanes are replaced by -1.
        unsafe {
            let labels = _mm512_loadu_si512(src.as_ptr().cast());
            let ignored = _mm512_cmpeq_epi64_mask(labels, _mm512_set1_epi64(ignore));
            F64x8(_mm512_mask_blend_pd(
                ignored,
                _mm512_cvtepi32_pd(_mm512_cvtepi64_epi32(labels)),
                _mm512_set1_pd(-1.0),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(_: Avx512, src: &[i32], ignore: i32) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX-512F; the unaligned load reads the 8 labels of `src`.
        unsafe {
            let labels = _mm256_loadu_si256(src.as_ptr().cast());
            let ignored = _mm512_cmpeq_epi64_mask(
                _mm512_cvtepi32_epi64(labels),
                _mm512_set1_epi64(i64::from(ignore)),
            );
            F64x8(_mm512_mask_blend_pd(
                ignored,
                _mm512_cvtepi32_pd(labels),
                _mm512_set1_pd(-1.0),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn transpose(_: Avx512, block: &mut [Self]) {
        let b: &mut [Self; 8] = block.try_into().expect("a block of 8 vectors");
        // SAFETY: register-only; the vectors prove AVX-512F. 24 shuffles: interleave pairs of
        // rows within 128-bit lanes, then move whole lanes twice (as the f32 transpose's last
        // two stages), so that column `2k + e` collects lane `k` of element `e` of every pair.
        unsafe {
            // t[2g + e]: lane k holds rows 2g, 2g+1 at column 2k + e.
            let mut t = [_mm512_setzero_pd(); 8];
            for g in 0..4 {
                t[2 * g] = _mm512_unpacklo_pd(b[2 * g].0, b[2 * g + 1].0);
                t[2 * g + 1] = _mm512_unpackhi_pd(b[2 * g].0, b[2 * g + 1].0);
            }
            for e in 0..2 {
                let (t0, t1, t2, t3) = (t[e], t[2 + e], t[4 + e], t[6 + e]);
                let x0 = _mm512_shuffle_f64x2::<0x44>(t0, t1);
                let x1 = _mm512_shuffle_f64x2::<0xEE>(t0, t1);
                let y0 = _mm512_shuffle_f64x2::<0x44>(t2, t3);
                let y1 = _mm512_shuffle_f64x2::<0xEE>(t2, t3);
                b[e] = F64x8(_mm512_shuffle_f64x2::<0x88>(x0, y0));
                b[2 + e] = F64x8(_mm512_shuffle_f64x2::<0xDD>(x0, y0));
                b[4 + e] = F64x8(_mm512_shuffle_f64x2::<0x88>(x1, y1));
                b[6 + e] = F64x8(_mm512_shuffle_f64x2::<0xDD>(x1, y1));
            }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(_: Avx512, src: &[E]) {
        if let Some(first) = src.first() {
            // SAFETY: `prefetcht0` only hints the cache; it never faults and reads no data
            // into the program. The address is that of a live element.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((first as *const E).cast::<i8>()) }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store(self, dst: &mut [f64]) {
        let dst = &mut dst[..8];
        // SAFETY: AVX-512F is proven by `self`; `dst` has exactly 8 elements to write.
        unsafe { _mm512_storeu_pd(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_prefix(self, dst: &mut [f64]) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let mask = Self::first_lanes(unsafe { Avx512::new_unchecked() }, dst.len());
        // SAFETY: AVX-512F is proven by `self`. The masked store writes only lanes
        // `0..dst.len()` (at most 8), all inside `dst`.
        unsafe { _mm512_mask_storeu_pd(dst.as_mut_ptr(), mask, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_fmadd_pd(self.0, b.0, c.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn abs(self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_abs_pd(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn min(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_min_pd(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn max(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_max_pd(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn round(self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_roundscale_pd::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lt(self, rhs: Self) -> __mmask8 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn le(self, rhs: Self) -> __mmask8 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_pd_mask::<_CMP_LE_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn eq(self, rhs: Self) -> __mmask8 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn is_nan(self) -> __mmask8 {
        // SAFETY: register-only.
        unsafe { _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn first_lanes(_: Avx512, n: usize) -> __mmask8 {
        ((1u32 << n.min(8)) - 1) as __mmask8
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn select(mask: __mmask8, if_true: Self, if_false: Self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_mask_blend_pd(mask, if_false.0, if_true.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn any(mask: __mmask8) -> bool {
        mask != 0
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn ldexp(self, n: Self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_scalef_pd(self.0, n.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn pow2_from_rounded(self) -> Self {
        // SAFETY: register-only.
        F64x8(unsafe { _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_castpd_si512(self.0))) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn frexp_centered(self) -> (Self, Self) {
        // SAFETY: register-only.
        unsafe {
            // As on the AVX2 tier (`avx2::F32x8::frexp_centered`), so the bits are the same.
            let bits = _mm512_castpd_si512(self.0);
            let u = _mm512_sub_epi64(bits, _mm512_set1_epi64(FREXP_F64_C - (1022 << 52)));
            let m = _mm512_add_epi64(
                _mm512_and_si512(u, _mm512_set1_epi64((1 << 52) - 1)),
                _mm512_set1_epi64(FREXP_F64_C),
            );
            let shift = _mm512_set1_pd(4503599627370496.0);
            let field = _mm512_or_si512(_mm512_srli_epi64::<52>(u), _mm512_castpd_si512(shift));
            let e = _mm512_sub_pd(
                _mm512_castsi512_pd(field),
                _mm512_set1_pd(4503599627370496.0 + 1022.0),
            );
            (F64x8(_mm512_castsi512_pd(m)), F64x8(e))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_sum(self) -> f64 {
        let (lo, hi) = self.halves();
        (lo + hi).reduce_sum()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_max(self) -> f64 {
        let (lo, hi) = self.halves();
        lo.max(hi).reduce_max()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_zero(_: Avx512) -> __m512d {
        // SAFETY: the token proves AVX-512F; register-only.
        unsafe { _mm512_setzero_pd() }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_add(acc: __m512d, v: Self) -> __m512d {
        // SAFETY: register-only.
        unsafe { _mm512_add_pd(acc, v.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_merge(a: __m512d, b: __m512d) -> __m512d {
        // SAFETY: register-only; accumulators are made only by `acc_zero`, which takes the token.
        unsafe { _mm512_add_pd(a, b) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_sum(acc: __m512d) -> f64 {
        F64x8(acc).reduce_sum()
    }
}

impl F64x8 {
    /// The low and high four lanes, as AVX2-tier vectors.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn halves(self) -> (avx2::F64x4, avx2::F64x4) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let isa = unsafe { Avx512::new_unchecked() }.avx2();
        // SAFETY: register-only; AVX-512F is proven by `self`.
        let (lo, hi) = unsafe {
            (
                _mm512_castpd512_pd256(self.0),
                _mm512_extractf64x4_pd::<1>(self.0),
            )
        };
        (
            avx2::F64x4::from_raw(isa, lo),
            avx2::F64x4::from_raw(isa, hi),
        )
    }
}
