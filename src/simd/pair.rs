//! Two vectors of a tier as one of twice the width.
//!
//! Two uses:
//! - **The AVX2 tier's lanes.** [`avx2::run`](super::avx2::run) runs every kernel on
//!   `Pair<F32x8>` (16 f32 lanes) and `Pair<F64x4>` (8 f64 lanes), the AVX-512 tier's widths, so
//!   that both tiers lay every sweep out on the same lanes, in the same blocks, with the same
//!   association order: the two tiers then give the same bits (see the module docs of
//!   [`simd`](super)). For that, every method whose result depends on more than one lane is
//!   written here to combine lanes exactly as the AVX-512 types do: `reduce_sum`/`reduce_max`
//!   fold the high half onto the low half first, `acc_sum` merges the halves' accumulators
//!   lane by lane ([`Lanes::acc_merge`]) before the low half's fixed-order sum, and `transpose`
//!   is the transpose of the whole `2L x 2L` block (four `L x L` transposes).
//! - **Two chains in flight.** Kernels whose per-element work is a long dependent chain (an
//!   `exp` then a `log1p`: the reduce driver for `Map2::PAIRED` maps, cross-entropy's gradient
//!   sweep) run on `Pair<V>` of the tier's lanes: the generic math then computes every step for
//!   both halves next to each other, so the core sees two independent chains within a few
//!   instructions instead of one whole chain and then the next, which the out-of-order window
//!   of a core (tens of floating-point operations) cannot reach across.
//!
//! Because the lane-combining methods are defined by `V`'s and nothing else, `Pair<V>` and
//! `Pair<W>` agree bit for bit whenever `V` and `W` do: `Pair<Pair<avx2::F32x8>>` (the AVX2
//! tier's paired sweeps) and `Pair<avx512::F32x16>` give the same bits. The element-wise
//! methods apply `V`'s to both halves, low half first.

use core::ops::{Add, Div, Mul, Neg, Sub};

use super::{Half, Lanes};

/// `V` twice: lanes `0..V::LANES` in `.0`, the rest in `.1`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair<V>(V, V);

macro_rules! pair_op {
    ($tr:ident, $f:ident) => {
        impl<V: Lanes> $tr for Pair<V> {
            type Output = Self;
            #[cfg_attr(not(losskit_unoptimized), inline(always))]
            fn $f(self, rhs: Self) -> Self {
                Pair(self.0.$f(rhs.0), self.1.$f(rhs.1))
            }
        }
    };
}
pair_op!(Add, add);
pair_op!(Sub, sub);
pair_op!(Mul, mul);
pair_op!(Div, div);

impl<V: Lanes> Neg for Pair<V> {
    type Output = Self;
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn neg(self) -> Self {
        Pair(-self.0, -self.1)
    }
}

impl<V: Lanes> Lanes for Pair<V> {
    type Elem = V::Elem;
    type Isa = V::Isa;
    type Mask = (V::Mask, V::Mask);
    type Acc = (V::Acc, V::Acc);
    const LANES: usize = 2 * V::LANES;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn splat(isa: V::Isa, x: V::Elem) -> Self {
        Pair(V::splat(isa, x), V::splat(isa, x))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load(isa: V::Isa, src: &[V::Elem]) -> Self {
        Pair(V::load(isa, src), V::load(isa, &src[V::LANES..]))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_prefix(isa: V::Isa, src: &[V::Elem], fill: V::Elem) -> Self {
        if src.len() < V::LANES {
            Pair(V::load_prefix(isa, src, fill), V::splat(isa, fill))
        } else {
            Pair(
                V::load(isa, src),
                V::load_prefix(isa, &src[V::LANES..], fill),
            )
        }
    }
    /// The `2L x 2L` transpose (`L = V::LANES`, at most 16) from four `L x L` transposes: row
    /// `j < L` of the result is column `j` of the rows' low halves (rows `0..L`, then `L..2L`),
    /// row `L + j` column `j` of their high halves.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn transpose(isa: V::Isa, block: &mut [Self]) {
        let l = V::LANES;
        assert!(
            l <= 16 && block.len() == 2 * l,
            "a block of 2 x LANES pairs"
        );
        let fill = block[0].0;
        // [low halves of rows 0..L, low of L..2L, high of 0..L, high of L..2L].
        let mut q = [[fill; 16]; 4];
        for (r, p) in block.iter().enumerate() {
            let (top, i) = (r / l, r % l);
            q[top][i] = p.0;
            q[2 + top][i] = p.1;
        }
        for quarter in &mut q {
            V::transpose(isa, &mut quarter[..l]);
        }
        for (j, p) in block.iter_mut().enumerate() {
            let (right, i) = (j / l, j % l);
            *p = Pair(q[2 * right][i], q[2 * right + 1][i]);
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i64(isa: V::Isa, src: &[i64], ignore: i64) -> Self {
        Pair(
            V::from_labels_i64(isa, src, ignore),
            V::from_labels_i64(isa, &src[V::LANES..], ignore),
        )
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn from_labels_i32(isa: V::Isa, src: &[i32], ignore: i32) -> Self {
        Pair(
            V::from_labels_i32(isa, src, ignore),
            V::from_labels_i32(isa, &src[V::LANES..], ignore),
        )
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn prefetch<E>(isa: V::Isa, src: &[E]) {
        V::prefetch(isa, src);
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store(self, dst: &mut [V::Elem]) {
        self.0.store(dst);
        self.1.store(&mut dst[V::LANES..]);
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_prefix(self, dst: &mut [V::Elem]) {
        if dst.len() < V::LANES {
            self.0.store_prefix(dst);
        } else {
            self.0.store(dst);
            self.1.store_prefix(&mut dst[V::LANES..]);
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half<H: Half>(isa: V::Isa, src: &[H]) -> Self {
        Pair(V::load_half(isa, src), V::load_half(isa, &src[V::LANES..]))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn load_half_prefix<H: Half>(isa: V::Isa, src: &[H], fill: V::Elem) -> Self {
        if src.len() < V::LANES {
            Pair(V::load_half_prefix(isa, src, fill), V::splat(isa, fill))
        } else {
            Pair(
                V::load_half(isa, src),
                V::load_half_prefix(isa, &src[V::LANES..], fill),
            )
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half<H: Half>(self, dst: &mut [H]) {
        self.0.store_half(dst);
        self.1.store_half(&mut dst[V::LANES..]);
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn store_half_prefix<H: Half>(self, dst: &mut [H]) {
        if dst.len() < V::LANES {
            self.0.store_half_prefix(dst);
        } else {
            self.0.store_half(dst);
            self.1.store_half_prefix(&mut dst[V::LANES..]);
        }
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn mul_add(self, b: Self, c: Self) -> Self {
        Pair(self.0.mul_add(b.0, c.0), self.1.mul_add(b.1, c.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn abs(self) -> Self {
        Pair(self.0.abs(), self.1.abs())
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn min(self, rhs: Self) -> Self {
        Pair(self.0.min(rhs.0), self.1.min(rhs.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn max(self, rhs: Self) -> Self {
        Pair(self.0.max(rhs.0), self.1.max(rhs.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn round(self) -> Self {
        Pair(self.0.round(), self.1.round())
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn lt(self, rhs: Self) -> Self::Mask {
        (self.0.lt(rhs.0), self.1.lt(rhs.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn le(self, rhs: Self) -> Self::Mask {
        (self.0.le(rhs.0), self.1.le(rhs.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn eq(self, rhs: Self) -> Self::Mask {
        (self.0.eq(rhs.0), self.1.eq(rhs.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn is_nan(self) -> Self::Mask {
        (self.0.is_nan(), self.1.is_nan())
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn first_lanes(isa: V::Isa, n: usize) -> Self::Mask {
        (
            V::first_lanes(isa, n),
            V::first_lanes(isa, n.saturating_sub(V::LANES)),
        )
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn select(mask: Self::Mask, if_true: Self, if_false: Self) -> Self {
        Pair(
            V::select(mask.0, if_true.0, if_false.0),
            V::select(mask.1, if_true.1, if_false.1),
        )
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn any(mask: Self::Mask) -> bool {
        V::any(mask.0) || V::any(mask.1)
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn ldexp(self, n: Self) -> Self {
        Pair(self.0.ldexp(n.0), self.1.ldexp(n.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn pow2_from_rounded(self) -> Self {
        Pair(self.0.pow2_from_rounded(), self.1.pow2_from_rounded())
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn frexp_centered(self) -> (Self, Self) {
        let (m0, e0) = self.0.frexp_centered();
        let (m1, e1) = self.1.frexp_centered();
        (Pair(m0, m1), Pair(e0, e1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_sum(self) -> V::Elem {
        (self.0 + self.1).reduce_sum()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn reduce_max(self) -> V::Elem {
        self.0.max(self.1).reduce_max()
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_zero(isa: V::Isa) -> Self::Acc {
        (V::acc_zero(isa), V::acc_zero(isa))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_add(acc: Self::Acc, v: Self) -> Self::Acc {
        (V::acc_add(acc.0, v.0), V::acc_add(acc.1, v.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_merge(a: Self::Acc, b: Self::Acc) -> Self::Acc {
        (V::acc_merge(a.0, b.0), V::acc_merge(a.1, b.1))
    }
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn acc_sum(acc: Self::Acc) -> f64 {
        // Lane i of the high half onto lane i of the low half, then the low half's sum: the
        // order of a vector twice as wide (AVX-512's `acc_sum` for an AVX2 pair).
        V::acc_sum(V::acc_merge(acc.0, acc.1))
    }
}

#[cfg(test)]
mod tests {
    use super::Pair;
    use crate::float::sealed::Sealed;
    use crate::simd::{Kernel, Lanes};
    use crate::{Float, Tier};

    /// For every prefix length of a pair: what `load_prefix`, `first_lanes`/`select`,
    /// `store_prefix`, `reduce_sum` and `reduce_max` give, as `(stored, selected, sum, max)`.
    struct Prefixes;

    impl<T: Float> Kernel<T> for Prefixes {
        type Output = Vec<(Vec<f64>, Vec<f64>, f64, f64)>;
        #[cfg_attr(not(losskit_unoptimized), inline(always))]
        fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> Self::Output {
            let l = Pair::<V>::LANES;
            let data: Vec<T> = (1..=l).map(T::from_usize).collect();
            let fill = T::from_f64(-1.0);
            (0..l)
                .map(|n| {
                    let v = Pair::<V>::load_prefix(isa, &data[..n], fill);
                    let mut stored = vec![T::ZERO; n];
                    v.store_prefix(&mut stored);
                    let zero = Pair::<V>::splat(isa, T::ZERO);
                    let kept = Pair::<V>::select(Pair::<V>::first_lanes(isa, n), v, zero);
                    let mut selected = vec![T::ZERO; l];
                    kept.store(&mut selected);
                    (
                        stored.into_iter().map(Sealed::to_f64).collect(),
                        selected.into_iter().map(Sealed::to_f64).collect(),
                        v.reduce_sum().to_f64(),
                        v.reduce_max().to_f64(),
                    )
                })
                .collect()
        }
    }

    fn check<T: Float>() {
        for tier in Tier::available() {
            let out = tier.resolve().run::<T, _>(Prefixes);
            let l = out.len();
            for (n, (stored, selected, sum, max)) in out.into_iter().enumerate() {
                let want: Vec<f64> = (1..=n).map(|i| i as f64).collect();
                assert_eq!(stored, want, "{tier} {} n={n}: store_prefix", T::NAME);
                let mut padded = want.clone();
                padded.resize(l, 0.0);
                assert_eq!(selected, padded, "{tier} {} n={n}: select", T::NAME);
                let want_sum = (n * (n + 1) / 2) as f64 - (l - n) as f64;
                assert_eq!(sum, want_sum, "{tier} {} n={n}: reduce_sum", T::NAME);
                let want_max = if n == 0 { -1.0 } else { n as f64 };
                assert_eq!(max, want_max, "{tier} {} n={n}: reduce_max", T::NAME);
            }
        }
    }

    #[test]
    fn prefixes_of_a_pair_on_every_tier() {
        check::<f32>();
        check::<f64>();
    }
}
