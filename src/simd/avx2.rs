//! The AVX2+FMA tier: 8 x f32 and 4 x f64 lanes in `ymm` registers, via `core::arch`, which
//! [`run`] pairs into the AVX-512 tier's 16 x f32 and 8 x f64 (see [`Pair`]).
//!
//! `wide`'s types are not upgraded inside `#[target_feature]` functions (they are chosen by
//! compile-time `cfg`), so this tier is written with intrinsics. Every method is
//! `#[inline(always)]` so that it is inlined into [`run`], which carries the target features.

use core::arch::x86_64::*;
use core::ops::{Add, Div, Mul, Neg, Sub};

use super::half::{self, Half, HalfFormat};
use super::pair::Pair;
use super::{Kernel, Lanes};
use crate::Float;

/// Token of the AVX2+FMA tier: a value exists only on a CPU that has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// The token, if this CPU has AVX2, FMA and F16C (every AVX2 CPU has F16C).
    #[inline]
    pub fn detect() -> Option<Self> {
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: just detected.
            Some(unsafe { Self::new_unchecked() })
        } else {
            None
        }
    }

    /// The token, without checking the CPU: the only constructor besides [`Avx2::detect`].
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) const unsafe fn new_unchecked() -> Self {
        Avx2(())
    }
}

/// Runs `kernel` with this tier's lanes, compiled with AVX2, FMA and F16C enabled.
///
/// The lanes are [`Pair`]s of the `ymm` types below (`T::Avx2`): 16 f32 or 8 f64 lanes, the
/// AVX-512 tier's widths, so that every kernel lays its data out on the same lanes and sums in
/// the same order on both tiers, and their results agree bit for bit (see [`Pair`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn run<T: Float, K: Kernel<T>>(isa: Avx2, kernel: K) -> K::Output {
    kernel.run::<Pair<T::Avx2>>(isa)
}

/// Eight `f32` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F32x8(__m256);

/// Four `f64` lanes.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct F64x4(__m256d);

// SAFETY (for every `unsafe` block below that only calls intrinsics on register values): a
// value of `F32x8`/`F64x4` can only be created through a method that takes the `Avx2` token
// (or from another such value), and the token exists only when AVX2 and FMA were detected, so
// the instructions are available. Blocks that also touch memory say why the access is in bounds.

macro_rules! binary_ops {
    ($v:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $xor:ident, $set1:ident) => {
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
                $v(unsafe { $xor(self.0, $set1(-0.0)) })
            }
        }
    };
}
binary_ops!(
    F32x8,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_mul_ps,
    _mm256_div_ps,
    _mm256_xor_ps,
    _mm256_set1_ps
);
binary_ops!(
    F64x4,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_mul_pd,
    _mm256_div_pd,
    _mm256_xor_pd,
    _mm256_set1_pd
);

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// The bits of `sqrt(1/2)` as `frexp_centered` centres it: the `m` it returns starts here
/// (`SQRT_2` halved, the bound the other tiers compare with), for `f32` and `f64`.
pub(super) const FREXP_F32_C: i32 = 0x3f35_04f3;
pub(super) const FREXP_F64_C: i64 = 0x3fe6_a09e_667f_3bcd;

/// `2^k` for integral `k` in `[-126, 127]`.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn pow2_f32(k: __m256) -> __m256 {
    // SAFETY: register-only; AVX2 is the caller's obligation.
    unsafe {
        let bits = _mm256_castps_si256(_mm256_add_ps(k, _mm256_set1_ps(12582912.0)));
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            bits,
            _mm256_set1_epi32(127),
        )))
    }
}

/// `2^k` for integral `k` in `[-1022, 1023]`.
///
/// # Safety
/// The CPU must have AVX2.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn pow2_f64(k: __m256d) -> __m256d {
    // SAFETY: register-only; AVX2 is the caller's obligation.
    unsafe {
        let bits = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(6755399441055744.0)));
        _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_add_epi64(
            bits,
            _mm256_set1_epi64x(1023),
        )))
    }
}

impl Lanes for F32x8 {
    type Elem = f32;
    type Isa = Avx2;
    type Mask = __m256;
    type Acc = (__m256d, __m256d);
    const LANES: usize = 8;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn splat(_: Avx2, x: f32) -> Self {
        // SAFETY: the token proves AVX2; register-only.
        F32x8(unsafe { _mm256_set1_ps(x) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load(_: Avx2, src: &[f32]) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX2; `src` has exactly 8 elements to read.
        F32x8(unsafe { _mm256_loadu_ps(src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_prefix(isa: Avx2, src: &[f32], fill: f32) -> Self {
        let mask = Self::first_lanes(isa, src.len());
        // SAFETY: the token proves AVX2. `vmaskmovps` reads only lanes whose mask bit is set,
        // which are lanes `0..src.len()` (at most 8): all inside `src`. Masked-off lanes do not
        // fault even when they would lie past the end of the allocation.
        unsafe {
            let v = _mm256_maskload_ps(src.as_ptr(), _mm256_castps_si256(mask));
            F32x8(_mm256_blendv_ps(_mm256_set1_ps(fill), v, mask))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(_: Avx2, src: &[i64], ignore: i64) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX2; the two unaligned loads read the 8 labels of `src`.
        // Each 64-bit label and compare mask is cut to its low 32 bits (which keep every class;
        // the ignored lanes are replaced by -1): gather the low halves into the low 128 bits,
        // then join the two vectors' low halves.
        unsafe {
            let lo = _mm256_loadu_si256(src.as_ptr().cast());
            let hi = _mm256_loadu_si256(src[4..].as_ptr().cast());
            let ig = _mm256_set1_epi64x(ignore);
            let low_dwords = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
            let labels = _mm256_permute2x128_si256::<0x20>(
                _mm256_permutevar8x32_epi32(lo, low_dwords),
                _mm256_permutevar8x32_epi32(hi, low_dwords),
            );
            let ignored = _mm256_permute2x128_si256::<0x20>(
                _mm256_permutevar8x32_epi32(_mm256_cmpeq_epi64(lo, ig), low_dwords),
                _mm256_permutevar8x32_epi32(_mm256_cmpeq_epi64(hi, ig), low_dwords),
            );
            F32x8(_mm256_blendv_ps(
                _mm256_cvtepi32_ps(labels),
                _mm256_set1_ps(-1.0),
                _mm256_castsi256_ps(ignored),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(_: Avx2, src: &[i32], ignore: i32) -> Self {
        let src = &src[..8];
        // SAFETY: the token proves AVX2; the unaligned load reads the 8 labels of `src`.
        unsafe {
            let labels = _mm256_loadu_si256(src.as_ptr().cast());
            let ignored = _mm256_cmpeq_epi32(labels, _mm256_set1_epi32(ignore));
            F32x8(_mm256_blendv_ps(
                _mm256_cvtepi32_ps(labels),
                _mm256_set1_ps(-1.0),
                _mm256_castsi256_ps(ignored),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn transpose(_: Avx2, block: &mut [Self]) {
        let b: &mut [Self; 8] = block.try_into().expect("a block of 8 vectors");
        // SAFETY: register-only; the vectors prove AVX2. The classic 24-shuffle 8x8 transpose:
        // interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
        unsafe {
            let t0 = _mm256_unpacklo_ps(b[0].0, b[1].0);
            let t1 = _mm256_unpackhi_ps(b[0].0, b[1].0);
            let t2 = _mm256_unpacklo_ps(b[2].0, b[3].0);
            let t3 = _mm256_unpackhi_ps(b[2].0, b[3].0);
            let t4 = _mm256_unpacklo_ps(b[4].0, b[5].0);
            let t5 = _mm256_unpackhi_ps(b[4].0, b[5].0);
            let t6 = _mm256_unpacklo_ps(b[6].0, b[7].0);
            let t7 = _mm256_unpackhi_ps(b[6].0, b[7].0);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            b[0] = F32x8(_mm256_permute2f128_ps::<0x20>(u0, u4));
            b[1] = F32x8(_mm256_permute2f128_ps::<0x20>(u1, u5));
            b[2] = F32x8(_mm256_permute2f128_ps::<0x20>(u2, u6));
            b[3] = F32x8(_mm256_permute2f128_ps::<0x20>(u3, u7));
            b[4] = F32x8(_mm256_permute2f128_ps::<0x31>(u0, u4));
            b[5] = F32x8(_mm256_permute2f128_ps::<0x31>(u1, u5));
            b[6] = F32x8(_mm256_permute2f128_ps::<0x31>(u2, u6));
            b[7] = F32x8(_mm256_permute2f128_ps::<0x31>(u3, u7));
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(_: Avx2, src: &[E]) {
        if let Some(first) = src.first() {
            // SAFETY: `prefetcht0` only hints the cache; it never faults and reads no data
            // into the program. The address is that of a live element.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((first as *const E).cast::<i8>()) }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store(self, dst: &mut [f32]) {
        let dst = &mut dst[..8];
        // SAFETY: the token proves AVX2; `dst` has exactly 8 elements to write.
        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_prefix(self, dst: &mut [f32]) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let mask = Self::first_lanes(unsafe { Avx2::new_unchecked() }, dst.len());
        // SAFETY: the token proves AVX2 (`self` exists). `vmaskmovps` writes only lanes
        // `0..dst.len()` (at most 8), all inside `dst`.
        unsafe { _mm256_maskstore_ps(dst.as_mut_ptr(), _mm256_castps_si256(mask), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half<H: Half>(_: Avx2, src: &[H]) -> Self {
        let src: &[u16] = bytemuck::cast_slice(&src[..8]);
        // SAFETY: the token proves AVX2 and F16C; `src` has exactly 8 values (16 bytes) to read.
        F32x8(unsafe { widen_half::<H>(_mm_loadu_si128(src.as_ptr().cast())) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half_prefix<H: Half>(isa: Avx2, src: &[H], fill: f32) -> Self {
        let bits = half::prefix_bits(src);
        // SAFETY: the token proves AVX2 and F16C; `bits` is a local array of 16 values.
        let v = F32x8(unsafe { widen_half::<H>(_mm_loadu_si128(bits.as_ptr().cast())) });
        Self::select(Self::first_lanes(isa, src.len()), v, Self::splat(isa, fill))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half<H: Half>(self, dst: &mut [H]) {
        let dst: &mut [u16] = bytemuck::cast_slice_mut(&mut dst[..8]);
        // SAFETY: `self` proves AVX2 and F16C; `dst` has exactly 8 values (16 bytes) to write.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), narrow_half::<H>(self.0)) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half_prefix<H: Half>(self, dst: &mut [H]) {
        let mut bits = [0u16; 8];
        // SAFETY: `self` proves AVX2 and F16C; `bits` is a local array of 8 values.
        unsafe { _mm_storeu_si128(bits.as_mut_ptr().cast(), narrow_half::<H>(self.0)) };
        let n = dst.len().min(8);
        bytemuck::cast_slice_mut(&mut dst[..n]).copy_from_slice(&bits[..n]);
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: register-only; FMA is part of the token's proof.
        F32x8(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn abs(self) -> Self {
        // SAFETY: register-only.
        F32x8(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn min(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F32x8(unsafe { _mm256_min_ps(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn max(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F32x8(unsafe { _mm256_max_ps(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn round(self) -> Self {
        // SAFETY: register-only.
        F32x8(unsafe { _mm256_round_ps::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lt(self, rhs: Self) -> __m256 {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn le(self, rhs: Self) -> __m256 {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_ps::<_CMP_LE_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn eq(self, rhs: Self) -> __m256 {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn is_nan(self) -> __m256 {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn first_lanes(_: Avx2, n: usize) -> __m256 {
        // SAFETY: the token proves AVX2; register-only.
        unsafe {
            let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let n = _mm256_set1_epi32(n.min(8) as i32);
            _mm256_castsi256_ps(_mm256_cmpgt_epi32(n, iota))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn select(mask: __m256, if_true: Self, if_false: Self) -> Self {
        // SAFETY: register-only (the operands prove AVX2).
        F32x8(unsafe { _mm256_blendv_ps(if_false.0, if_true.0, mask) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn any(mask: __m256) -> bool {
        // SAFETY: register-only; a mask of this tier comes from a comparison of its vectors.
        unsafe { _mm256_movemask_ps(mask) != 0 }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn ldexp(self, n: Self) -> Self {
        // 2^k from bits: adding 1.5 * 2^23 puts k in the low mantissa bits, and shifting
        // (k + 127) into the exponent field drops everything above it. Two factors of at most
        // 2^±125 cover every n for which the product is neither 0 nor inf at |self| ~ 1.
        // SAFETY: register-only.
        unsafe {
            let lim = _mm256_set1_ps(250.0);
            let n = _mm256_min_ps(
                _mm256_max_ps(n.0, _mm256_sub_ps(_mm256_setzero_ps(), lim)),
                lim,
            );
            let half = _mm256_round_ps::<ROUND_NEAREST>(_mm256_mul_ps(n, _mm256_set1_ps(0.5)));
            let rest = _mm256_sub_ps(n, half);
            F32x8(_mm256_mul_ps(
                _mm256_mul_ps(self.0, pow2_f32(half)),
                pow2_f32(rest),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn pow2_from_rounded(self) -> Self {
        // SAFETY: register-only.
        F32x8(unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_castps_si256(self.0))) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn frexp_centered(self) -> (Self, Self) {
        // SAFETY: register-only.
        unsafe {
            // With C the bits of sqrt(1/2) rounded (the bound `m` starts at) and
            // D = C - (126 << 23), u = bits - D does not wrap for positive normal inputs; its
            // exponent field is e + 126 and its low bits are m's offset from C. Five operations,
            // where masking the fields and re-centring `m` by compare-and-blend took ten. The
            // same bits as that and as the other tiers: `m` and `e` are determined exactly.
            let bits = _mm256_castps_si256(self.0);
            let u = _mm256_sub_epi32(bits, _mm256_set1_epi32(FREXP_F32_C - (126 << 23)));
            let m = _mm256_add_epi32(
                _mm256_and_si256(u, _mm256_set1_epi32((1 << 23) - 1)),
                _mm256_set1_epi32(FREXP_F32_C),
            );
            // e + 126 as a float: OR it into the mantissa of 2^23.
            let two23 = _mm256_set1_ps(8388608.0);
            let field = _mm256_or_si256(_mm256_srli_epi32::<23>(u), _mm256_castps_si256(two23));
            let e = _mm256_sub_ps(
                _mm256_castsi256_ps(field),
                _mm256_set1_ps(8388608.0 + 126.0),
            );
            (F32x8(_mm256_castsi256_ps(m)), F32x8(e))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_sum(self) -> f32 {
        // Pairwise over halves: (lane i) + (lane i + 4), then + 2, then + 1.
        // SAFETY: register-only.
        unsafe {
            let x = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_max(self) -> f32 {
        // SAFETY: register-only.
        unsafe {
            let x = _mm_max_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
            _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_zero(_: Avx2) -> Self::Acc {
        // SAFETY: the token proves AVX2; register-only.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc {
        // SAFETY: register-only.
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v.0));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v.0));
            (_mm256_add_pd(acc.0, lo), _mm256_add_pd(acc.1, hi))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc {
        // SAFETY: register-only; accumulators are made only by `acc_zero`, which takes the token.
        unsafe { (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1)) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_sum(acc: Self::Acc) -> f64 {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_add_pd(acc.0, acc.1) }).reduce_sum()
    }
}

impl Lanes for F64x4 {
    type Elem = f64;
    type Isa = Avx2;
    type Mask = __m256d;
    type Acc = __m256d;
    const LANES: usize = 4;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn splat(_: Avx2, x: f64) -> Self {
        // SAFETY: the token proves AVX2; register-only.
        F64x4(unsafe { _mm256_set1_pd(x) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load(_: Avx2, src: &[f64]) -> Self {
        let src = &src[..4];
        // SAFETY: the token proves AVX2; `src` has exactly 4 elements to read.
        F64x4(unsafe { _mm256_loadu_pd(src.as_ptr()) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_prefix(isa: Avx2, src: &[f64], fill: f64) -> Self {
        let mask = Self::first_lanes(isa, src.len());
        // SAFETY: the token proves AVX2. `vmaskmovpd` reads only lanes `0..src.len()` (at most
        // 4), all inside `src`; masked-off lanes do not fault.
        unsafe {
            let v = _mm256_maskload_pd(src.as_ptr(), _mm256_castpd_si256(mask));
            F64x4(_mm256_blendv_pd(_mm256_set1_pd(fill), v, mask))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(_: Avx2, src: &[i64], ignore: i64) -> Self {
        let src = &src[..4];
        // SAFETY: the token proves AVX2; the unaligned load reads the 4 labels of `src`. The
        // low 32 bits of each label (which keep every class) go to the low 128 bits.
        unsafe {
            let labels = _mm256_loadu_si256(src.as_ptr().cast());
            let ignored = _mm256_cmpeq_epi64(labels, _mm256_set1_epi64x(ignore));
            let low = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
                labels,
                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7),
            ));
            F64x4(_mm256_blendv_pd(
                _mm256_cvtepi32_pd(low),
                _mm256_set1_pd(-1.0),
                _mm256_castsi256_pd(ignored),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(_: Avx2, src: &[i32], ignore: i32) -> Self {
        let src = &src[..4];
        // SAFETY: the token proves AVX2; the unaligned load reads the 4 labels of `src`.
        unsafe {
            let labels = _mm_loadu_si128(src.as_ptr().cast());
            let ignored = _mm256_cvtepi32_epi64(_mm_cmpeq_epi32(labels, _mm_set1_epi32(ignore)));
            F64x4(_mm256_blendv_pd(
                _mm256_cvtepi32_pd(labels),
                _mm256_set1_pd(-1.0),
                _mm256_castsi256_pd(ignored),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn transpose(_: Avx2, block: &mut [Self]) {
        let b: &mut [Self; 4] = block.try_into().expect("a block of 4 vectors");
        // SAFETY: register-only; the vectors prove AVX2.
        unsafe {
            let t0 = _mm256_unpacklo_pd(b[0].0, b[1].0);
            let t1 = _mm256_unpackhi_pd(b[0].0, b[1].0);
            let t2 = _mm256_unpacklo_pd(b[2].0, b[3].0);
            let t3 = _mm256_unpackhi_pd(b[2].0, b[3].0);
            b[0] = F64x4(_mm256_permute2f128_pd::<0x20>(t0, t2));
            b[1] = F64x4(_mm256_permute2f128_pd::<0x20>(t1, t3));
            b[2] = F64x4(_mm256_permute2f128_pd::<0x31>(t0, t2));
            b[3] = F64x4(_mm256_permute2f128_pd::<0x31>(t1, t3));
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(_: Avx2, src: &[E]) {
        if let Some(first) = src.first() {
            // SAFETY: `prefetcht0` only hints the cache; it never faults and reads no data
            // into the program. The address is that of a live element.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((first as *const E).cast::<i8>()) }
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store(self, dst: &mut [f64]) {
        let dst = &mut dst[..4];
        // SAFETY: the token proves AVX2; `dst` has exactly 4 elements to write.
        unsafe { _mm256_storeu_pd(dst.as_mut_ptr(), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_prefix(self, dst: &mut [f64]) {
        // SAFETY: `self` exists, so the CPU has the tier's features.
        let mask = Self::first_lanes(unsafe { Avx2::new_unchecked() }, dst.len());
        // SAFETY: AVX2 is proven by `self`. `vmaskmovpd` writes only lanes `0..dst.len()`
        // (at most 4), all inside `dst`.
        unsafe { _mm256_maskstore_pd(dst.as_mut_ptr(), _mm256_castpd_si256(mask), self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: register-only; FMA is part of the token's proof.
        F64x4(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn abs(self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn min(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_min_pd(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn max(self, rhs: Self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_max_pd(self.0, rhs.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn round(self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_round_pd::<ROUND_NEAREST>(self.0) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lt(self, rhs: Self) -> __m256d {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn le(self, rhs: Self) -> __m256d {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_pd::<_CMP_LE_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn eq(self, rhs: Self) -> __m256d {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_pd::<_CMP_EQ_OQ>(self.0, rhs.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn is_nan(self) -> __m256d {
        // SAFETY: register-only.
        unsafe { _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn first_lanes(_: Avx2, n: usize) -> __m256d {
        // SAFETY: the token proves AVX2; register-only.
        unsafe {
            let iota = _mm256_setr_epi64x(0, 1, 2, 3);
            let n = _mm256_set1_epi64x(n.min(4) as i64);
            _mm256_castsi256_pd(_mm256_cmpgt_epi64(n, iota))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn select(mask: __m256d, if_true: Self, if_false: Self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_blendv_pd(if_false.0, if_true.0, mask) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn any(mask: __m256d) -> bool {
        // SAFETY: register-only.
        unsafe { _mm256_movemask_pd(mask) != 0 }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn ldexp(self, n: Self) -> Self {
        // As for f32, with 1.5 * 2^52, a bias of 1023 and two factors of at most 2^±1021.
        // SAFETY: register-only.
        unsafe {
            let lim = _mm256_set1_pd(2042.0);
            let n = _mm256_min_pd(
                _mm256_max_pd(n.0, _mm256_sub_pd(_mm256_setzero_pd(), lim)),
                lim,
            );
            let half = _mm256_round_pd::<ROUND_NEAREST>(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
            let rest = _mm256_sub_pd(n, half);
            F64x4(_mm256_mul_pd(
                _mm256_mul_pd(self.0, pow2_f64(half)),
                pow2_f64(rest),
            ))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn pow2_from_rounded(self) -> Self {
        // SAFETY: register-only.
        F64x4(unsafe { _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_castpd_si256(self.0))) })
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn frexp_centered(self) -> (Self, Self) {
        // SAFETY: register-only.
        unsafe {
            // As for f32 (`F32x8::frexp_centered`), with 52-bit fields and 1022.
            let bits = _mm256_castpd_si256(self.0);
            let u = _mm256_sub_epi64(bits, _mm256_set1_epi64x(FREXP_F64_C - (1022 << 52)));
            let m = _mm256_add_epi64(
                _mm256_and_si256(u, _mm256_set1_epi64x((1 << 52) - 1)),
                _mm256_set1_epi64x(FREXP_F64_C),
            );
            let two52 = _mm256_set1_pd(4503599627370496.0);
            let field = _mm256_or_si256(_mm256_srli_epi64::<52>(u), _mm256_castpd_si256(two52));
            let e = _mm256_sub_pd(
                _mm256_castsi256_pd(field),
                _mm256_set1_pd(4503599627370496.0 + 1022.0),
            );
            (F64x4(_mm256_castsi256_pd(m)), F64x4(e))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_sum(self) -> f64 {
        // SAFETY: register-only.
        unsafe {
            let x = _mm_add_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd::<1>(self.0),
            );
            _mm_cvtsd_f64(_mm_add_sd(x, _mm_unpackhi_pd(x, x)))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_max(self) -> f64 {
        // SAFETY: register-only.
        unsafe {
            let x = _mm_max_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd::<1>(self.0),
            );
            _mm_cvtsd_f64(_mm_max_sd(x, _mm_unpackhi_pd(x, x)))
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_zero(_: Avx2) -> __m256d {
        // SAFETY: the token proves AVX2; register-only.
        unsafe { _mm256_setzero_pd() }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_add(acc: __m256d, v: Self) -> __m256d {
        // SAFETY: register-only.
        unsafe { _mm256_add_pd(acc, v.0) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_merge(a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: register-only; accumulators are made only by `acc_zero`, which takes the token.
        unsafe { _mm256_add_pd(a, b) }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_sum(acc: __m256d) -> f64 {
        F64x4(acc).reduce_sum()
    }
}

impl Avx2 {
    /// AVX-512 detection included AVX2, FMA and F16C, so its token implies this one.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn from_avx512(_: super::avx512::Avx512) -> Self {
        // SAFETY: an `Avx512` token exists only where those features were detected.
        unsafe { Avx2::new_unchecked() }
    }
}

/// Eight 16-bit values (bf16 or f16 bits) widened to f32 lanes.
///
/// # Safety
/// The CPU must have AVX2 and F16C (a token of the tier proves it).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn widen_half<H: Half>(bits: __m128i) -> __m256 {
    // SAFETY: register-only intrinsics, which the caller guarantees (AVX2 and F16C).
    unsafe {
        match H::FORMAT {
            // A bf16 is the upper half of the f32 with the same value. One shuffle places
            // each value there and zeroes the low half (index bytes with the top bit set give
            // 0); `vpshufb` stays within 128-bit lanes, so both lanes get all 16 bytes by a
            // broadcast, which a load from memory does on a load port (`vbroadcasti128`): one
            // ALU operation a vector instead of a zero-extension and a shift.
            HalfFormat::Bf16 => {
                #[rustfmt::skip]
                let spread = _mm256_setr_epi8(
                    -128, -128, 0, 1, -128, -128, 2, 3, -128, -128, 4, 5, -128, -128, 6, 7,
                    -128, -128, 8, 9, -128, -128, 10, 11, -128, -128, 12, 13, -128, -128, 14, 15,
                );
                _mm256_castsi256_ps(_mm256_shuffle_epi8(
                    _mm256_broadcastsi128_si256(bits),
                    spread,
                ))
            }
            HalfFormat::F16 => _mm256_cvtph_ps(bits),
        }
    }
}

/// f32 lanes rounded to nearest even into eight 16-bit values (bf16 or f16 bits).
///
/// # Safety
/// As [`widen_half`].
#[cfg_attr(not(losskit_unoptimized), inline(always))]
unsafe fn narrow_half<H: Half>(v: __m256) -> __m128i {
    // SAFETY: register-only intrinsics, which the caller guarantees (AVX2 and F16C).
    unsafe {
        match H::FORMAT {
            HalfFormat::Bf16 => {
                // As `half::bf16::from_f32`: add 0x7FFF plus the kept lowest bit, so that the
                // carry rounds to nearest even, then keep the upper 16 bits; a NaN keeps its
                // upper bits with the quiet bit set instead.
                let x = _mm256_castps_si256(v);
                let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(1));
                let bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
                let rounded = _mm256_srli_epi32::<16>(_mm256_add_epi32(x, bias));
                let quiet = _mm256_or_si256(_mm256_srli_epi32::<16>(x), _mm256_set1_epi32(0x40));
                let nan = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                let r = _mm256_blendv_epi8(rounded, quiet, nan);
                // Every lane is below 2^16, so the unsigned saturating pack is exact; it packs
                // within 128-bit halves, and the permute gathers the two halves' results.
                let packed = _mm256_packus_epi32(r, r);
                _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(packed))
            }
            HalfFormat::F16 => _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v),
        }
    }
}

impl F32x8 {
    /// Wraps a register of this tier (the token proves the tier).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn from_raw(_: Avx2, v: __m256) -> Self {
        F32x8(v)
    }
}

impl F64x4 {
    /// Wraps a register of this tier (the token proves the tier).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    pub(crate) fn from_raw(_: Avx2, v: __m256d) -> Self {
        F64x4(v)
    }
}
