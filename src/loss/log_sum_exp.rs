//! The log-sum-exp of a row and the softmax gradient: the pieces every softmax loss shares.
//!
//! A row is swept once from memory in blocks that fit in L1 ([`row_stats`]): a vector max over
//! the block, then `Σ exp(x - max)` (and, for coefficients such as label smoothing or
//! probability targets, `Σ aᶜ (xᶜ - max)`) over the same block while it is still in L1. When a
//! block raises the running max, the partial sums are rescaled by `exp(old - new)` — the online
//! log-sum-exp, applied per block so that the hot loops stay branch-free. The state of a sweep,
//! [`RowStats`], merges across segments of a row ([`Merge`]), which is how the engine splits a
//! long row over threads. [`grad_sweep`] writes `k·exp(x - max) - scale·a` over a row.
//!
//! Half-precision logits (bf16, f16) are widened as they are loaded; a long row's pass 1 also
//! stores each widened block on the stack, and pass 2 reads that copy, so the exp-bound pass
//! does not pay for the widening a second time.

use super::softcap::{LogitMap, Raw, Softcap};
use crate::engine::Merge;
use crate::float::sealed::Sealed;
use crate::simd::pair::Pair;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::Float;

/// What the gradient sweep of a row needs: `g_c = k·exp(x_c - max) - scale·a_c`, then
/// `g_t -= scale·delta` for a class-label target `t`.
#[derive(Clone, Copy)]
pub(crate) struct RowGrad<'a, T> {
    pub max: T,
    pub k: T,
    pub coef: Option<Coef<'a, T>>,
    /// A class-label target: its class, `delta`, and its logit (raw: read before any gradient
    /// is written in place).
    pub target: Option<(usize, f64, T)>,
    /// The softcap the logits went through (then `max` is the capped logits').
    pub cap: Option<Softcap<T>>,
}

/// Per-element coefficients `a_c = (q_c·alpha + beta)·r_c` of the dot product a row sweep
/// accumulates (`q`, `r` absent mean 1).
#[derive(Clone, Copy)]
pub(crate) struct Coef<'a, T> {
    pub q: Option<&'a [T]>,
    pub alpha: T,
    pub beta: T,
    pub r: Option<&'a [T]>,
}

impl<'a, T> Coef<'a, T> {
    /// The coefficients of the classes in `seg` (the slices cut to it).
    pub(crate) fn segment(self, seg: core::ops::Range<usize>) -> Coef<'a, T> {
        Coef {
            q: self.q.map(|q| &q[seg.clone()]),
            r: self.r.map(|r| &r[seg]),
            ..self
        }
    }
}

/// One sweep of a row: its max, `Σ exp(x - max)`, and optionally `Σ a_c (x_c - max)`, `Σ a_c`;
/// for the eval statistics also `Σ exp(x - max)·(x - max)` (the entropy's numerator) and how
/// many classes lie above and at the target's logit (its rank).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct RowStats {
    pub max: f64,
    pub sum: f64,
    pub dot: f64,
    pub coef: f64,
    /// `Σ exp(x - max)·(x - max)`, with `x - max` clamped at `ln(MIN_POSITIVE)` so that a
    /// masked class adds nothing measurable (0·log 0 = 0).
    pub ent: f64,
    /// Classes whose logit is greater than the target's.
    pub above: u64,
    /// Classes whose logit equals the target's (the target included).
    pub tied: u64,
}

/// The stats of no classes.
impl Default for RowStats {
    fn default() -> RowStats {
        RowStats {
            max: f64::NEG_INFINITY,
            sum: 0.0,
            dot: 0.0,
            coef: 0.0,
            ent: 0.0,
            above: 0,
            tied: 0,
        }
    }
}

impl Merge for RowStats {
    /// The stats of two adjacent segments of a row, as one sweep of both would give them (up to
    /// rounding): each part is moved to the common max, `sum·exp(max - m)`,
    /// `dot + coef·(max - m)` and `(ent + (max - m)·sum)·exp(max - m)`. A part without a finite
    /// max (all `-inf`, or empty) is added as it is, as [`row_stats`] does with blocks seen
    /// before the first finite max: its sum is 0 (or NaN) and its dot already holds `Σ a·x`
    /// (`-inf`, or NaN).
    #[inline]
    fn merge(self, other: RowStats) -> RowStats {
        let m = self.max.max(other.max);
        let shift = |s: RowStats| {
            if s.max == f64::NEG_INFINITY {
                (s.sum, s.dot, s.ent)
            } else {
                let d = s.max - m;
                let e = d.exp();
                (s.sum * e, s.dot + s.coef * d, (s.ent + d * s.sum) * e)
            }
        };
        let ((s1, d1, e1), (s2, d2, e2)) = (shift(self), shift(other));
        RowStats {
            max: m,
            sum: s1 + s2,
            dot: d1 + d2,
            coef: self.coef + other.coef,
            ent: e1 + e2,
            above: self.above + other.above,
            tied: self.tied + other.tied,
        }
    }
}

/// How many blocks ahead of the exp pass the stream (the row and what follows it) is
/// prefetched.
const PREFETCH_BLOCKS: usize = 2;

/// Vectors per block: 64 vectors (4 KiB of f32 on the AVX2 and AVX-512 tiers) stay in L1 between
/// the two passes, and the per-block work (a compare, a widening add) is amortised over them.
const BLOCK_VECS: usize = 64;

/// The elements of the stack copy that a row of half-precision logits keeps of each block
/// between its two passes (4 KiB of f32: one block of 16 lanes): pass 1 widens each vector once
/// and stores it, pass 2 reads the copy, so the widening (two operations a vector for bf16 on
/// AVX-512, a two-uop `vcvtph2ps` for f16) is not paid twice on the exp-bound pass.
const WIDE_BLOCK: usize = 1024;

/// The blocks a row needs before it gets the copy: zeroing the buffer costs about what the
/// copy saves on one block.
const WIDE_MIN_BLOCKS: usize = 4;

/// Sweeps one row (see the module docs): the first `len` elements of `stream`, whose remainder
/// (what follows the row in memory, typically the next rows) is only prefetched, up to
/// [`PREFETCH_BLOCKS`] blocks past the row's end. A segment of a split row is its own stream.
///
/// Accuracy: each block's exponentials are summed in four f32 (f64) lane accumulators of at
/// most `BLOCK_VECS / 4 + 4` terms, which are added, widened exactly, into an `f64` vector that
/// is only reduced at the end of the row (or when the max moves). The sum `s` of the row is so
/// within `(BLOCK_VECS / 4 + 6)·u·s` of exact (with `u` the element type's unit roundoff: about
/// 1.3e-6 relative for f32), plus one ulp per term from `exp_nonpositive_clamped`, whose clamp
/// of `x - max` below `ln(MIN_POSITIVE)` adds at most 1.2e-38 (f32) a class to a sum of at
/// least 1; the log-sum-exp is then within that much, absolutely.
///
/// `map` is applied to each logit as pass 2 loads it, and to the block's max ([`LogitMap`]: the
/// softcap, or nothing); the rank counts compare raw logits.
///
/// With `STATS`, the exp pass sums `e^c·c` beside `e^c` (`c = x - max` clamped at
/// `ln(MIN_POSITIVE)`), in the same blocked way and rescaled with the sum when the max moves: the
/// same bound, relative to `Σ e^c·|c|`.
///
/// The rank counts (classes above and at `x_t`) are needed exactly only while fewer than
/// `top_k` classes are above: beyond that the rank is decided, and a lower bound of `above` is
/// all the caller reads. So after a block's two passes, only while `above < top_k`:
/// - the lanes of the block's two max chains above `x_t` are counted (each is an element of its
///   own, and max returns one of its operands, so a NaN never makes a lane above): if they
///   reach `top_k`, that lower bound decides the rank — a badly predicted row is decided in its
///   first block;
/// - else the block is counted exactly from L1 ([`count_block`]) if it can hold a class at or
///   above `x_t`: a lane maximum reaches it, or the block holds a NaN (which can hide a lane's
///   maximum; +inf also makes the sum NaN, which only counts needlessly).
///
/// A well-predicted row so counts only the blocks that hold its target or its rivals: one block
/// of 128K classes, but every row of 1000.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn row_stats<
    V: Lanes,
    R: Storage<Compute = V::Elem>,
    M: LogitMap<V::Elem>,
    const STATS: bool,
>(
    isa: V::Isa,
    stream: &[R],
    len: usize,
    coef: Option<Coef<'_, V::Elem>>,
    x_t: V::Elem,
    top_k: u64,
    map: M,
) -> RowStats {
    let block = V::LANES * BLOCK_VECS;
    // The copy's buffer is declared (and zeroed) only on this branch: a row of one or two
    // blocks would pay more for zeroing it than the copy saves.
    if core::mem::size_of::<R>() < core::mem::size_of::<V::Elem>()
        && block <= WIDE_BLOCK
        && len >= WIDE_MIN_BLOCKS * block
    {
        let mut wide = [V::Elem::ZERO; WIDE_BLOCK];
        sweep_row::<V, R, M, STATS>(isa, stream, len, coef, x_t, top_k, map, Some(&mut wide))
    } else {
        sweep_row::<V, R, M, STATS>(isa, stream, len, coef, x_t, top_k, map, None)
    }
}

/// [`row_stats`], with `wide` (at least one block long) to keep each block's widened logits
/// between the two passes.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn sweep_row<V: Lanes, R: Storage<Compute = V::Elem>, M: LogitMap<V::Elem>, const STATS: bool>(
    isa: V::Isa,
    stream: &[R],
    len: usize,
    coef: Option<Coef<'_, V::Elem>>,
    x_t: V::Elem,
    top_k: u64,
    map: M,
    mut wide: Option<&mut [V::Elem]>,
) -> RowStats {
    let x = &stream[..len];
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let lanes = V::LANES;
    let block = lanes * BLOCK_VECS;
    let zero = V::splat(isa, V::Elem::ZERO);
    let target = V::splat(isa, x_t);
    let (mut max, mut sum, mut dot, mut coef_sum) = (neg_inf, 0.0f64, 0.0f64, 0.0f64);
    let (mut ent, mut above, mut tied) = (0.0f64, 0u64, 0u64);
    // Σ exp(x - max) (and Σ e^c·c) of the blocks since `max` last moved.
    let mut acc = V::acc_zero(isa);
    let mut acc_ent = V::acc_zero(isa);
    for (b, xb) in x.chunks(block).enumerate() {
        let start = b * block;
        let whole = xb.len() - xb.len() % lanes;
        let pairs = whole - whole % (2 * lanes);
        // Pass 1: the block's max, lane-wise, in two chains.
        let (mut m0, mut m1) = (V::splat(isa, neg_inf), V::splat(isa, neg_inf));
        match wide.as_deref_mut() {
            None => {
                for xv in xb[..pairs].chunks_exact(2 * lanes) {
                    m0 = m0.max(R::load::<V>(isa, xv));
                    m1 = m1.max(R::load::<V>(isa, &xv[lanes..]));
                }
                if pairs < whole {
                    m0 = m0.max(R::load::<V>(isa, &xb[pairs..]));
                }
                if whole < xb.len() {
                    m1 = m1.max(R::load_prefix::<V>(isa, &xb[whole..], neg_inf));
                }
            }
            // The same loads and maxima, each vector also stored for pass 2. The padded last
            // vector fits: `whole < xb.len() <= block`, both multiples of `lanes`.
            Some(w) => {
                for (i, xv) in xb[..pairs].chunks_exact(2 * lanes).enumerate() {
                    let (v0, v1) = (R::load::<V>(isa, xv), R::load::<V>(isa, &xv[lanes..]));
                    let wv = &mut w[2 * i * lanes..][..2 * lanes];
                    v0.store(wv);
                    v1.store(&mut wv[lanes..]);
                    m0 = m0.max(v0);
                    m1 = m1.max(v1);
                }
                if pairs < whole {
                    let v0 = R::load::<V>(isa, &xb[pairs..]);
                    v0.store(&mut w[pairs..]);
                    m0 = m0.max(v0);
                }
                if whole < xb.len() {
                    let v1 = R::load_prefix::<V>(isa, &xb[whole..], neg_inf);
                    v1.store(&mut w[whole..]);
                    m1 = m1.max(v1);
                }
            }
        }
        let raw_max = m0.max(m1);
        // A map is increasing, so the block's mapped max is the map of its max (to its
        // rounding: a mapped logit a rounding above it only makes its `x - max` a tiny
        // positive number). The rank counts stay on the raw logits.
        let lane_max = map.map(isa, raw_max);
        // Only a block that raises the max pays for the horizontal reduction (NaN lanes do not
        // compare greater; their NaN reaches the sum in pass 2).
        if V::any(V::splat(isa, max).lt(lane_max)) {
            let new_max = lane_max.reduce_max();
            if max > neg_inf {
                // Rescale what was summed against the old max.
                let shift = max.to_f64() - new_max.to_f64();
                let old_sum = sum + V::acc_sum(acc);
                if STATS {
                    // Σ e^(x-new)(x-new) = e^shift·(Σ e^(x-old)(x-old) + shift·Σ e^(x-old)).
                    ent = (ent + V::acc_sum(acc_ent) + shift * old_sum) * shift.exp();
                    acc_ent = V::acc_zero(isa);
                }
                sum = old_sum * shift.exp();
                acc = V::acc_zero(isa);
                dot += shift * coef_sum;
            }
            max = new_max;
        }
        if max == neg_inf {
            if STATS && above < top_k {
                let (a, t) = count_block::<V, R>(isa, xb, target);
                above += a;
                tied += t;
            }
            // Nothing finite yet: exp contributes 0, but NaN must survive, and a·x keeps the
            // -inf (or 0·-inf = NaN) PyTorch would produce.
            for (i, &v) in xb.iter().enumerate() {
                if v.to_compute().to_f64().is_nan() {
                    sum = f64::NAN;
                }
                if let Some(cf) = coef {
                    let a = coef_at(cf, start + i).to_f64();
                    dot += a * v.to_compute().to_f64();
                    coef_sum += a;
                }
            }
            continue;
        }
        // Pass 2, from L1 (from the widened copy, if pass 1 made one: the same values).
        let mv = V::splat(isa, max);
        let sums = match wide.as_deref() {
            Some(w) => exp_pass::<V, V::Elem, R, M, STATS>(
                isa,
                &w[..xb.len()],
                stream,
                start,
                coef,
                mv,
                map,
            ),
            None => exp_pass::<V, R, R, M, STATS>(isa, xb, stream, start, coef, mv, map),
        };
        let block_sum = sums.exp;
        acc = V::acc_add(acc, block_sum);
        if STATS {
            acc_ent = V::acc_add(acc_ent, sums.ent);
            // A NaN in the block reaches its sum (exp keeps NaN); +inf does too (inf - inf),
            // which only makes the test conservative.
            if above < top_k {
                // Each lane of the two max chains is an element of its own: if enough of them
                // are above the target, the rank is decided without a count (a lower bound of
                // `above` is all the caller needs then; max returns one of its operands, so a
                // NaN cannot make a lane above).
                let one = V::splat(isa, V::Elem::ONE);
                let lanes_above =
                    V::select(target.lt(m0), one, zero) + V::select(target.lt(m1), one, zero);
                let lanes_above = lanes_above.reduce_sum().to_f64() as u64;
                if lanes_above >= top_k - above {
                    above += lanes_above;
                } else if V::any(target.le(raw_max)) || V::any(block_sum.is_nan()) {
                    let (a, t) = count_block::<V, R>(isa, xb, target);
                    above += a;
                    tied += t;
                }
            }
        }
        if coef.is_some() {
            dot += V::acc_sum(V::acc_add(V::acc_zero(isa), sums.dot));
            coef_sum += V::acc_sum(V::acc_add(V::acc_zero(isa), sums.coef));
        }
    }
    RowStats {
        max: max.to_f64(),
        sum: sum + V::acc_sum(acc),
        dot,
        coef: coef_sum,
        ent: if STATS {
            ent + V::acc_sum(acc_ent)
        } else {
            0.0
        },
        above,
        tied,
    }
}

/// The sums of one block's exp pass ([`exp_pass`]).
struct BlockSums<V> {
    /// `Σ exp(x - max)`.
    exp: V,
    /// `Σ e^c·c` (with `STATS`).
    ent: V,
    /// `Σ a·(x - max)` and `Σ a` (with coefficients).
    dot: V,
    coef: V,
}

/// Pass 2 of [`row_stats`] over one block `xb` (which starts at `start` in `stream`), from L1:
/// `Σ exp(x - max)`, four vectors a step so that four independent exp chains and sums are in
/// flight; with coefficients, `Σ a (x - max)` too. `xb` is the block itself or its widened copy
/// (`S` = the compute type): the same values, so the same bits. `stream` is what is prefetched.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn exp_pass<
    V: Lanes,
    S: Storage<Compute = V::Elem>,
    R: Storage,
    M: LogitMap<V::Elem>,
    const STATS: bool,
>(
    isa: V::Isa,
    xb: &[S],
    stream: &[R],
    start: usize,
    coef: Option<Coef<'_, V::Elem>>,
    mv: V,
    map: M,
) -> BlockSums<V> {
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let lanes = V::LANES;
    let block = lanes * BLOCK_VECS;
    let zero = V::splat(isa, V::Elem::ZERO);
    let lowest = V::splat(isa, V::Elem::LN_MIN_POSITIVE);
    let whole = xb.len() - xb.len() % lanes;
    let (mut s0, mut s1, mut s2, mut s3) = (zero, zero, zero, zero);
    let (mut d, mut a_acc) = (zero, zero);
    let (mut t0, mut t1) = (zero, zero);
    let quads = whole - whole % (4 * lanes);
    for (j, xv) in xb[..quads].chunks_exact(4 * lanes).enumerate() {
        // Pass 1 of the block after next reads from DRAM; start those lines now so that
        // the memory stream overlaps this block's exp work instead of stalling pass 1. Near
        // the row's end they are the next row's (a row of a few blocks would otherwise
        // begin every max pass with a miss to DRAM).
        let ahead = start + PREFETCH_BLOCKS * block + 4 * j * lanes;
        V::prefetch_lines(isa, stream.get(ahead..).unwrap_or_default(), 4 * lanes);
        let c0 = map.map(isa, S::load::<V>(isa, xv)) - mv;
        let c1 = map.map(isa, S::load::<V>(isa, &xv[lanes..])) - mv;
        let c2 = map.map(isa, S::load::<V>(isa, &xv[2 * lanes..])) - mv;
        let c3 = map.map(isa, S::load::<V>(isa, &xv[3 * lanes..])) - mv;
        if STATS {
            let (e0, e1) = (
                math::exp_nonpositive_clamped(isa, c0),
                math::exp_nonpositive_clamped(isa, c1),
            );
            let (e2, e3) = (
                math::exp_nonpositive_clamped(isa, c2),
                math::exp_nonpositive_clamped(isa, c3),
            );
            s0 = s0 + e0;
            s1 = s1 + e1;
            s2 = s2 + e2;
            s3 = s3 + e3;
            t0 = e2.mul_add(lowest.max(c2), e0.mul_add(lowest.max(c0), t0));
            t1 = e3.mul_add(lowest.max(c3), e1.mul_add(lowest.max(c1), t1));
        } else {
            // The loss alone: the order of the loss-only sweep before the statistics.
            s0 = s0 + math::exp_nonpositive_clamped(isa, c0);
            s1 = s1 + math::exp_nonpositive_clamped(isa, c1);
            s2 = s2 + math::exp_nonpositive_clamped(isa, c2);
            s3 = s3 + math::exp_nonpositive_clamped(isa, c3);
        }
        if let Some(cf) = coef {
            let at = start + 4 * j * lanes;
            for (k, c) in [c0, c1, c2, c3].into_iter().enumerate() {
                let a = coef_vec::<V>(isa, cf, at + k * lanes, None);
                d = a.mul_add(c, d);
                a_acc = a_acc + a;
            }
        }
    }
    for (j, xv) in xb[quads..whole].chunks_exact(lanes).enumerate() {
        let c0 = map.map(isa, S::load::<V>(isa, xv)) - mv;
        let e0 = math::exp_nonpositive_clamped(isa, c0);
        s0 = s0 + e0;
        if STATS {
            t0 = e0.mul_add(lowest.max(c0), t0);
        }
        if let Some(cf) = coef {
            let a = coef_vec::<V>(isa, cf, start + quads + j * lanes, None);
            d = a.mul_add(c0, d);
            a_acc = a_acc + a;
        }
    }
    if whole < xb.len() {
        let n = xb.len() - whole;
        let padded = S::load_prefix::<V>(isa, &xb[whole..], neg_inf);
        // The padding stays -inf (a map would move it: softcap(-inf) = -cap).
        let mapped = if M::RAW {
            padded
        } else {
            let fill = V::splat(isa, neg_inf);
            V::select(V::first_lanes(isa, n), map.map(isa, padded), fill)
        };
        let centered = mapped - mv;
        let e1 = math::exp_nonpositive_clamped(isa, centered);
        s1 = s1 + e1;
        if STATS {
            let keep = V::first_lanes(isa, n);
            t1 = t1 + V::select(keep, e1 * lowest.max(centered), zero);
        }
        if let Some(cf) = coef {
            let a = coef_vec::<V>(isa, cf, start + whole, Some(n));
            let keep = V::first_lanes(isa, n);
            d = d + V::select(keep, a * centered, zero);
            a_acc = a_acc + a;
        }
    }
    BlockSums {
        exp: (s0 + s1) + (s2 + s3),
        ent: t0 + t1,
        dot: d,
        coef: a_acc,
    }
}

/// The classes of a block (at most [`BLOCK_VECS`] vectors, so each lane's count is exact in any
/// float type) above and at `target`: the rank counts of [`row_stats`].
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn count_block<V: Lanes, R: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    xb: &[R],
    target: V,
) -> (u64, u64) {
    let lanes = V::LANES;
    let whole = xb.len() - xb.len() % lanes;
    let zero = V::splat(isa, V::Elem::ZERO);
    let (mut gt, mut eq) = (zero, zero);
    for xv in xb[..whole].chunks_exact(lanes) {
        count(isa, target, &mut gt, &mut eq, R::load::<V>(isa, xv), None);
    }
    if whole < xb.len() {
        let v = R::load_prefix::<V>(isa, &xb[whole..], V::Elem::ZERO);
        let keep = V::first_lanes(isa, xb.len() - whole);
        count(isa, target, &mut gt, &mut eq, v, Some(keep));
    }
    (
        gt.reduce_sum().to_f64() as u64,
        eq.reduce_sum().to_f64() as u64,
    )
}

/// Adds the lanes of `v` above and at `target` (only those of `keep`, if given) to the counts.
/// A function, not a closure: closures do not get the tier's target features, so a closure in
/// the counting loop would be called out of line.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn count<V: Lanes>(isa: V::Isa, target: V, gt: &mut V, eq: &mut V, v: V, keep: Option<V::Mask>) {
    let (zero, one) = (V::splat(isa, V::Elem::ZERO), V::splat(isa, V::Elem::ONE));
    let (g, e) = (
        V::select(target.lt(v), one, zero),
        V::select(target.eq(v), one, zero),
    );
    match keep {
        None => {
            *gt = *gt + g;
            *eq = *eq + e;
        }
        Some(k) => {
            *gt = *gt + V::select(k, g, zero);
            *eq = *eq + V::select(k, e, zero);
        }
    }
}

/// `a_c` for one class.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn coef_at<T: Float>(cf: Coef<'_, T>, c: usize) -> T {
    let q = cf.q.map_or(T::ZERO, |q| q[c]);
    let r = cf.r.map_or(T::ONE, |r| r[c]);
    (q * cf.alpha + cf.beta) * r
}

/// `a_c` for the lanes starting at class `c` (`n` of them for a prefix; padding lanes are 0).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn coef_vec<V: Lanes>(isa: V::Isa, cf: Coef<'_, V::Elem>, c: usize, n: Option<usize>) -> V {
    let zero = V::splat(isa, V::Elem::ZERO);
    let q = match cf.q {
        Some(q) => load_at::<V>(isa, q, c, n),
        None => zero,
    };
    let base = q.mul_add(V::splat(isa, cf.alpha), V::splat(isa, cf.beta));
    let a = match cf.r {
        Some(r) => base * load_at::<V>(isa, r, c, n),
        None => base,
    };
    match n {
        Some(n) => V::select(V::first_lanes(isa, n), a, zero),
        None => a,
    }
}

/// The lanes of `s` starting at `c`: a whole vector, or the `n` elements of a prefix.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn load_at<V: Lanes>(isa: V::Isa, s: &[V::Elem], c: usize, n: Option<usize>) -> V {
    match n {
        None => V::load(isa, &s[c..]),
        Some(n) => V::load_prefix(isa, &s[c..c + n], V::Elem::ZERO),
    }
}

/// Writes one row's gradient `k·exp(x - max) - scale·a` into `dst`, reading `x` from `src`, or
/// from `dst` itself when `src` is `None` (in place: each vector is read before it is written);
/// with a `map`, of the mapped `x`, times the map's slope (the chain rule through a softcap).
/// Callers run it on [`Pair`]s, so that two exp chains interleave (see BENCHMARKS.md: 10–15%
/// faster on Zen 3 than a vector at a time).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn grad_sweep<
    V: Lanes,
    S: Storage<Compute = V::Elem>,
    O: Storage<Compute = V::Elem>,
    M: LogitMap<V::Elem>,
>(
    isa: V::Isa,
    src: Option<&[S]>,
    dst: &mut [O],
    g: &RowGrad<'_, V::Elem>,
    scale: V::Elem,
    map: M,
) {
    let lanes = V::LANES;
    let n = dst.len();
    let whole = n - n % lanes;
    let max = V::splat(isa, g.max);
    let k = V::splat(isa, g.k);
    let neg_scale = V::splat(isa, -scale);
    let mut at = 0;
    while at < whole {
        let x = match src {
            Some(s) => S::load::<V>(isa, &s[at..]),
            None => O::load::<V>(isa, &dst[at..]),
        };
        let (y, slope) = map.map_with_slope(isa, x);
        let mut v = k * math::exp_nonpositive(isa, y - max);
        if let Some(cf) = g.coef {
            v = coef_vec::<V>(isa, cf, at, None).mul_add(neg_scale, v);
        }
        if !M::RAW {
            v = v * slope;
        }
        O::store(v, &mut dst[at..]);
        at += lanes;
    }
    if whole < n {
        let rest = n - whole;
        let x = match src {
            Some(s) => S::load_prefix::<V>(isa, &s[whole..n], V::Elem::ZERO),
            None => O::load_prefix::<V>(isa, &dst[whole..], V::Elem::ZERO),
        };
        let (y, slope) = map.map_with_slope(isa, x);
        let mut v = k * math::exp_nonpositive(isa, y - max);
        if let Some(cf) = g.coef {
            v = coef_vec::<V>(isa, cf, whole, Some(rest)).mul_add(neg_scale, v);
        }
        if !M::RAW {
            v = v * slope;
        }
        O::store_prefix(v, &mut dst[whole..]);
    }
}

/// The classes `seg` of a softmax row's gradient (a row spec's `grad`): `g` cut to them, swept
/// on [`Pair`]s with the map `g` names.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn segment_grad<
    V: Lanes,
    S: Storage<Compute = V::Elem>,
    O: Storage<Compute = V::Elem>,
>(
    isa: V::Isa,
    g: &RowGrad<'_, V::Elem>,
    seg: core::ops::Range<usize>,
    src: Option<&[S]>,
    dst: &mut [O],
    scale: V::Elem,
) {
    let g = RowGrad {
        coef: g.coef.map(|c| c.segment(seg)),
        ..*g
    };
    grad_sweep_mapped::<Pair<V>, S, O>(isa, src, dst, &g, scale);
}

/// The target class's element of a class-label row's gradient (a row spec's `grad_fix`),
/// rounded once ([`target_grad`]); nothing for probability targets.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn fix_target_grad<V: Lanes, O: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    g: &RowGrad<'_, V::Elem>,
    dst: &mut [O],
    scale: V::Elem,
) {
    if let Some((t, delta, x_t)) = g.target {
        dst[t] = O::from_compute(target_grad::<V>(isa, g, t, x_t, delta, scale));
    }
}

/// [`grad_sweep`] with the map `g` names: the raw form, or the softcap.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn grad_sweep_mapped<V: Lanes, S: Storage<Compute = V::Elem>, O: Storage<Compute = V::Elem>>(
    isa: V::Isa,
    src: Option<&[S]>,
    dst: &mut [O],
    g: &RowGrad<'_, V::Elem>,
    scale: V::Elem,
) {
    match g.cap {
        None => grad_sweep::<V, S, O, Raw>(isa, src, dst, g, scale, Raw),
        Some(cap) => grad_sweep::<V, S, O, Softcap<V::Elem>>(isa, src, dst, g, scale, cap),
    }
}

/// The gradient of a class-label row at its target `t`, whose raw logit is `x_t`: what
/// [`grad_sweep`] computes in that lane before the slope (the same operations, so the same
/// bits), minus `delta`, times the softcap's slope if there is one, in `f64`, rounded once. Computed apart from the sweep's stored value so that a 16-bit
/// gradient is rounded once: the sweep's `p_t` rounded to bf16 and then reduced by 1 would
/// lose all the digits of `p_t - 1` near 1.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn target_grad<V: Lanes>(
    isa: V::Isa,
    g: &RowGrad<'_, V::Elem>,
    t: usize,
    x_t: V::Elem,
    delta: f64,
    scale: V::Elem,
) -> V::Elem {
    let (y, slope) = match g.cap {
        None => (V::splat(isa, x_t), V::splat(isa, V::Elem::ONE)),
        Some(cap) => cap.map_with_slope(isa, V::splat(isa, x_t)),
    };
    let x = y - V::splat(isa, g.max);
    let mut v = V::splat(isa, g.k) * math::exp_nonpositive(isa, x);
    if let Some(cf) = g.coef {
        v = V::splat(isa, coef_at(cf, t)).mul_add(V::splat(isa, -scale), v);
    }
    V::Elem::from_f64((first_lane(v).to_f64() - delta) * first_lane(slope).to_f64())
}

/// Lane 0 of `v`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn first_lane<V: Lanes>(v: V) -> V::Elem {
    let mut lanes = [V::Elem::ZERO; 32];
    v.store(&mut lanes[..V::LANES]);
    lanes[0]
}
