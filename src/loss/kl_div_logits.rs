//! Distillation KL over row-major `[rows, classes]` logits of a student and a teacher:
//! `KL(softmax(teacher/T) ‖ softmax(student/T))` per row, a paired row spec ([`KlRows`]) on the
//! engine's row driver, which hands it the same row of both matrices.
//!
//! # The sweep
//!
//! One pass over both rows, in blocks that stay in L1 between a max pass and an exp pass (as
//! [`row_stats`](super::log_sum_exp::row_stats) does for one row): per row it gathers, with
//! `s`, `t` the logits, `mₛ`, `mₜ` their maxes and `1/T` rounded to the compute type,
//!
//! ```text
//! Sₛ = Σ e^((s - mₛ)/T)      Sₜ = Σ e^((t - mₜ)/T)      D = Σ e^((t - mₜ)/T)·(t - s)
//! ```
//!
//! (two online log-sum-exps: when a block raises a max, what was summed against the old one is
//! rescaled by `e^((old - new)/T)`, `D` with the teacher's factor), and the row's loss is
//!
//! ```text
//! KL = Σ pᶜ (log pᶜ - log qᶜ) = D / (T·Sₜ) - (mₜ - mₛ)/T - ln Sₜ + ln Sₛ
//! ```
//!
//! in `f64`. No buffer holds a probability: the gradient `(q - p)/T` is a second sweep that
//! recomputes both exponentials from the row's maxes and sums.
//!
//! # Masks and non-finite logits
//!
//! A `-inf` teacher class has `p = 0` and contributes exactly 0, whatever the student's logit:
//! the teacher's exponential is flushed to `+0` below the normal range (`exp_nonpositive`), and
//! `t - s` is clamped below at `-MAX` (so `-inf` and the NaN of `-inf - -inf` become finite),
//! so the product is `+0`, never `0·(-inf)`. A genuine NaN still reaches the result through
//! `Sₜ` or `Sₛ`. A row whose student or teacher logits are all `-inf` is NaN (PyTorch's
//! `log_softmax` of such a row is NaN), as is a row holding `+inf` or NaN.
//!
//! # Error bound
//!
//! With `u` the compute type's unit roundoff (`2^-24` for f32 and the 16-bit types, `2^-53`
//! for f64): each block's `e^c` (`c = (x - m)·(1/T)`) and `e^c·(t - s)` are summed in two
//! lane accumulators of at most `BLOCK_VECS / 2 = 32` terms, added and widened exactly into
//! `f64` per block, so each sum is within `33·u` of its magnitude sum; each exponential adds 1
//! ULP, and the rounding of `c` (`2u·|c|` absolute, `2u·|c|·e^c ≤ u` relative to the sum) and of
//! `t - s` (`u`) about `3u` more. So `ln Sₛ` and `ln Sₜ` are each within about `36·u`
//! absolutely, `D / (T·Sₜ)` within `72·u·E_p|t - s|/T`, and the row's loss within
//!
//! ```text
//! 72·u·(1 + E_p|t - s|/T)          (about 4.3e-6·(1 + E_p|t - s|/T) for f32)
//! ```
//!
//! of the KL of the inputs at the temperature `1/fl(1/T)`, plus the `f64` finish (negligible
//! for f32, whose shifts `m·(1/T)` are exact products in `f64`; about `u·(|mₛ| + |mₜ|)/T` for
//! f64, where they are rounded):
//! an absolute bound, as the KL of two close distributions is a small difference of numbers of
//! the size of the logits. The differential tests hold every row to
//! `80·u·(1 + E_p|t - s|/T + (|mₛ| + |mₜ|)/T)`;
//! the bound is a worst case of aligned roundings, and on the conformance cases (KL down to
//! 1e-4) the f32 error stays within a fraction of PyTorch's tolerance (`1e-6 + 1e-5·|KL|`).
//! The gradient `(q - p)/T` is within about `(36 + |c|)·2u` of `q` and of `p` each.

use core::ops::Range;

use crate::engine::{run_rows2, LossSum, Merge, RowSpec, RowsOut};
use crate::float::sealed::Sealed;
use crate::simd::{math, Lanes};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// Vectors per block and stream: 2 × 4 KiB of f32 stay in L1 between the two passes.
const BLOCK_VECS: usize = 64;
/// How many blocks ahead of the exp pass both streams are prefetched.
const PREFETCH_BLOCKS: usize = 2;

/// One softmax's share of a row sweep: its max (the compute-type logit, widened), the max
/// times `1/T` (the shift the exponentials were taken against, in `f64`), and `Σ e^(x/T - shift)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Side {
    max: f64,
    shift: f64,
    sum: f64,
}

impl Default for Side {
    fn default() -> Side {
        Side {
            max: f64::NEG_INFINITY,
            shift: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
}

/// What a sweep over a row (or a segment of it) gathers: the student's and the teacher's
/// softmax sums and `D = Σ e^((t - mₜ)/T)·(t - s)` against the teacher's shift.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KlSweep {
    s: Side,
    t: Side,
    d: f64,
}

impl Side {
    /// The factor that moves this side's sums to `shift` (1 for a side without a finite max,
    /// whose sum is 0, a clamped residue, or NaN, and is added as it is).
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn factor(&self, shift: f64) -> f64 {
        if self.max == f64::NEG_INFINITY {
            1.0
        } else {
            (self.shift - shift).exp()
        }
    }

    /// The side of the larger max.
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn top(a: Side, b: Side) -> Side {
        if b.max > a.max {
            b
        } else {
            a
        }
    }
}

impl Merge for KlSweep {
    /// Two adjacent segments of a row, as one sweep of both would give them (up to rounding):
    /// each part's sums moved to the common shifts.
    #[inline]
    fn merge(self, other: KlSweep) -> KlSweep {
        let (s, t) = (Side::top(self.s, other.s), Side::top(self.t, other.t));
        let (fs1, fs2) = (self.s.factor(s.shift), other.s.factor(s.shift));
        let (ft1, ft2) = (self.t.factor(t.shift), other.t.factor(t.shift));
        KlSweep {
            s: Side {
                sum: self.s.sum * fs1 + other.s.sum * fs2,
                ..s
            },
            t: Side {
                sum: self.t.sum * ft1 + other.t.sum * ft2,
                ..t
            },
            d: self.d * ft1 + other.d * ft2,
        }
    }
}

/// What the gradient sweep of a row needs: `g = kₛ·e^((s - mₛ)/T) - kₜ·e^((t - mₜ)/T)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KlGrad<T> {
    s_max: T,
    t_max: T,
    k_s: T,
    k_t: T,
}

/// A checked `kl_div_logits` call: the paired row spec the engine runs.
pub struct KlRows<T> {
    rows: usize,
    classes: usize,
    /// `1/T` in the compute type: every exponent is `(x - max)·inv_t`.
    inv_t: T,
}

impl<T: Float> KlRows<T> {
    /// Checks the arguments every form shares.
    fn new(
        student: usize,
        teacher: usize,
        classes: usize,
        temperature: T,
    ) -> Result<Self, LossError> {
        let rows = check::rows(student, classes, None::<&[T]>)?;
        check::same_len("teacher", teacher, "student", student)?;
        let t = temperature.to_f64();
        if !(t > 0.0 && t.is_finite()) {
            return Err(LossError::InvalidParameter {
                name: "temperature",
                value: t,
                requirement: "finite and > 0",
            });
        }
        Ok(KlRows {
            rows,
            classes,
            inv_t: T::ONE / temperature,
        })
    }

    /// Runs the rows (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage<Compute = T>>(
        &self,
        student: &[S],
        teacher: &[S],
        out: RowsOut<'_, S>,
    ) -> LossSum {
        run_rows2(self, student, teacher, self.rows, self.classes, out)
    }

    /// The gradient's scale for `reduction` (over the rows).
    fn scale(&self, reduction: Reduction) -> f64 {
        reduction.row_grad_scale(self.rows as f64)
    }
}

impl<T: Float, S: Storage<Compute = T>> RowSpec<S> for KlRows<T> {
    type Row = ();
    type Sweep = KlSweep;
    type Grad = KlGrad<T>;
    type Total = LossSum;
    const SWEEPS: bool = true;
    const PAIRED: bool = true;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn begin<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        _: usize,
        _: &[R],
    ) -> Option<()> {
        Some(())
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn sweep<V: Lanes<Elem = T>, R: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        _: &(),
        seg: Range<usize>,
        stream: &[R],
        other: &[S],
    ) -> KlSweep {
        // T = 1 (the common case) skips a multiplication per element and stream; `x·1` is
        // exact, so the bits are those of the scaled sweep.
        if self.inv_t == T::ONE {
            kl_sweep::<V, R, S, false>(isa, stream, other, seg.len(), self.inv_t)
        } else {
            kl_sweep::<V, R, S, true>(isa, stream, other, seg.len(), self.inv_t)
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn finish<R: Storage<Compute = T>>(
        &self,
        _: &(),
        k: KlSweep,
        _: &[R],
        scale: f64,
    ) -> (LossSum, f64, KlGrad<T>) {
        let inv_t = self.inv_t.to_f64();
        let (s, t) = (k.s, k.t);
        let all_masked = s.max == f64::NEG_INFINITY || t.max == f64::NEG_INFINITY;
        let loss = if all_masked {
            f64::NAN
        } else {
            // Σ p (log p - log q), with log p = (t - mₜ)/T - ln Sₜ and log q likewise.
            inv_t * k.d / t.sum - (t.shift - s.shift) - t.sum.ln() + s.sum.ln()
        };
        let k_of = |side: Side| {
            if all_masked {
                T::from_f64(f64::NAN)
            } else {
                T::from_f64(scale * inv_t / side.sum)
            }
        };
        let grad = KlGrad {
            s_max: T::from_f64(s.max),
            t_max: T::from_f64(t.max),
            k_s: k_of(s),
            k_t: k_of(t),
        };
        (LossSum::unweighted(loss, 1), loss, grad)
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        isa: V::Isa,
        g: &KlGrad<T>,
        _: Range<usize>,
        src: Option<&[S]>,
        other: &[S],
        dst: &mut [O],
        _: T,
    ) {
        // On the tier's lanes, not pairs: each element already has two independent exp chains,
        // and pairs of both streams would spill on AVX2.
        if self.inv_t == T::ONE {
            kl_grad::<V, S, O, false>(isa, src, other, dst, g, self.inv_t);
        } else {
            kl_grad::<V, S, O, true>(isa, src, other, dst, g, self.inv_t);
        }
    }

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn grad_fix<V: Lanes<Elem = T>, O: Storage<Compute = T>>(
        &self,
        _: V::Isa,
        _: &KlGrad<T>,
        _: &mut [O],
        _: T,
    ) {
    }
}

/// Sweeps one row (or segment) of both matrices (see the module docs): the first `len`
/// elements of `student` and `teacher`, whose remainders (the next rows) are only prefetched.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn kl_sweep<
    V: Lanes,
    R: Storage<Compute = V::Elem>,
    S: Storage<Compute = V::Elem>,
    const SCALED: bool,
>(
    isa: V::Isa,
    student: &[R],
    teacher: &[S],
    len: usize,
    inv_t: V::Elem,
) -> KlSweep {
    let (xs, xt) = (&student[..len], &teacher[..len]);
    let neg_inf = V::Elem::from_f64(f64::NEG_INFINITY);
    let lanes = V::LANES;
    let block = lanes * BLOCK_VECS;
    let zero = V::splat(isa, V::Elem::ZERO);
    let inv = V::splat(isa, inv_t);
    let inv64 = inv_t.to_f64();
    // t - s clamped at -MAX: a masked teacher class (e = +0) then adds +0, never NaN.
    let floor = V::splat(isa, V::Elem::LOWEST);
    let (mut ms, mut mt) = (neg_inf, neg_inf);
    let (mut ss, mut st, mut d) = (0.0f64, 0.0f64, 0.0f64);
    let (mut acc_s, mut acc_t, mut acc_d) = (V::acc_zero(isa), V::acc_zero(isa), V::acc_zero(isa));
    for (b, (bs, bt)) in xs.chunks(block).zip(xt.chunks(block)).enumerate() {
        let start = b * block;
        let n = bs.len();
        let whole = n - n % lanes;
        let pairs = whole - whole % (2 * lanes);
        // Pass 1: both blocks' maxes, lane-wise, two chains each.
        let ninf = V::splat(isa, neg_inf);
        let (mut s0, mut s1, mut t0, mut t1) = (ninf, ninf, ninf, ninf);
        let mut at = 0;
        while at < pairs {
            s0 = s0.max(R::load::<V>(isa, &bs[at..]));
            s1 = s1.max(R::load::<V>(isa, &bs[at + lanes..]));
            t0 = t0.max(S::load::<V>(isa, &bt[at..]));
            t1 = t1.max(S::load::<V>(isa, &bt[at + lanes..]));
            at += 2 * lanes;
        }
        if pairs < whole {
            s0 = s0.max(R::load::<V>(isa, &bs[pairs..]));
            t0 = t0.max(S::load::<V>(isa, &bt[pairs..]));
        }
        if whole < n {
            s1 = s1.max(R::load_prefix::<V>(isa, &bs[whole..], neg_inf));
            t1 = t1.max(S::load_prefix::<V>(isa, &bt[whole..], neg_inf));
        }
        let (vs, vt) = (s0.max(s1), t0.max(t1));
        // Only a block that raises a max pays for the horizontal reduction and the rescale.
        if V::any(V::splat(isa, ms).lt(vs)) {
            let new = vs.reduce_max();
            if ms > neg_inf {
                let f = ((ms.to_f64() - new.to_f64()) * inv64).exp();
                ss = (ss + V::acc_sum(acc_s)) * f;
                acc_s = V::acc_zero(isa);
            }
            ms = new;
        }
        if V::any(V::splat(isa, mt).lt(vt)) {
            let new = vt.reduce_max();
            if mt > neg_inf {
                let f = ((mt.to_f64() - new.to_f64()) * inv64).exp();
                st = (st + V::acc_sum(acc_t)) * f;
                d = (d + V::acc_sum(acc_d)) * f;
                acc_t = V::acc_zero(isa);
                acc_d = V::acc_zero(isa);
            }
            mt = new;
        }
        // Without a finite max yet, centre on 0: `-inf` logits then give e = +0 (teacher) or
        // the clamped residue (student), NaN stays NaN, and nothing is rescaled later.
        // (No closure: closures do not get the tier's target features.)
        let cs = V::splat(isa, if ms > neg_inf { ms } else { V::Elem::ZERO });
        let ct = V::splat(isa, if mt > neg_inf { mt } else { V::Elem::ZERO });
        // Pass 2, from L1: two vectors of each stream a step, four exp chains in flight.
        let (mut a0, mut a1, mut p0, mut p1, mut d0, mut d1) = (zero, zero, zero, zero, zero, zero);
        let mut at = 0;
        while at < pairs {
            let ahead = start + PREFETCH_BLOCKS * block + at;
            V::prefetch_lines(isa, student.get(ahead..).unwrap_or_default(), 2 * lanes);
            V::prefetch_lines(isa, teacher.get(ahead..).unwrap_or_default(), 2 * lanes);
            let (x0, x1) = (
                R::load::<V>(isa, &bs[at..]),
                R::load::<V>(isa, &bs[at + lanes..]),
            );
            let (y0, y1) = (
                S::load::<V>(isa, &bt[at..]),
                S::load::<V>(isa, &bt[at + lanes..]),
            );
            let es0 = math::exp_nonpositive_clamped(isa, centred::<V, SCALED>(x0, cs, inv));
            let es1 = math::exp_nonpositive_clamped(isa, centred::<V, SCALED>(x1, cs, inv));
            let et0 = math::exp_nonpositive(isa, centred::<V, SCALED>(y0, ct, inv));
            let et1 = math::exp_nonpositive(isa, centred::<V, SCALED>(y1, ct, inv));
            a0 = a0 + es0;
            a1 = a1 + es1;
            p0 = p0 + et0;
            p1 = p1 + et1;
            d0 = et0.mul_add((y0 - x0).max(floor), d0);
            d1 = et1.mul_add((y1 - x1).max(floor), d1);
            at += 2 * lanes;
        }
        if pairs < whole {
            let x0 = R::load::<V>(isa, &bs[pairs..]);
            let y0 = S::load::<V>(isa, &bt[pairs..]);
            let et0 = math::exp_nonpositive(isa, centred::<V, SCALED>(y0, ct, inv));
            a0 = a0 + math::exp_nonpositive_clamped(isa, centred::<V, SCALED>(x0, cs, inv));
            p0 = p0 + et0;
            d0 = et0.mul_add((y0 - x0).max(floor), d0);
        }
        if whole < n {
            // Padding lanes are -inf in both: e = +0 for the teacher (so d adds +0), the
            // clamped residue for the student, as `row_stats` pads.
            let x1 = R::load_prefix::<V>(isa, &bs[whole..], neg_inf);
            let y1 = S::load_prefix::<V>(isa, &bt[whole..], neg_inf);
            let et1 = math::exp_nonpositive(isa, centred::<V, SCALED>(y1, ct, inv));
            a1 = a1 + math::exp_nonpositive_clamped(isa, centred::<V, SCALED>(x1, cs, inv));
            p1 = p1 + et1;
            d1 = et1.mul_add((y1 - x1).max(floor), d1);
        }
        acc_s = V::acc_add(acc_s, a0 + a1);
        acc_t = V::acc_add(acc_t, p0 + p1);
        acc_d = V::acc_add(acc_d, d0 + d1);
    }
    let side = |m: V::Elem, sum: f64| Side {
        max: m.to_f64(),
        shift: m.to_f64() * inv64,
        sum,
    };
    KlSweep {
        s: side(ms, ss + V::acc_sum(acc_s)),
        t: side(mt, st + V::acc_sum(acc_t)),
        d: d + V::acc_sum(acc_d),
    }
}

/// Writes one row's (or segment's) gradient `kₛ·e^((s - mₛ)/T) - kₜ·e^((t - mₜ)/T)` into `dst`,
/// reading the student from `src`, or from `dst` itself when `src` is `None` (in place: each
/// vector is read before it is written), and the teacher from `teacher`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn kl_grad<
    V: Lanes,
    S: Storage<Compute = V::Elem>,
    O: Storage<Compute = V::Elem>,
    const SCALED: bool,
>(
    isa: V::Isa,
    src: Option<&[S]>,
    teacher: &[S],
    dst: &mut [O],
    g: &KlGrad<V::Elem>,
    inv_t: V::Elem,
) {
    let lanes = V::LANES;
    let n = dst.len();
    let whole = n - n % lanes;
    let (ms, mt) = (V::splat(isa, g.s_max), V::splat(isa, g.t_max));
    let (ks, kt) = (V::splat(isa, g.k_s), V::splat(isa, g.k_t));
    let inv = V::splat(isa, inv_t);
    let mut at = 0;
    while at < whole {
        let x = match src {
            Some(s) => S::load::<V>(isa, &s[at..]),
            None => O::load::<V>(isa, &dst[at..]),
        };
        let y = S::load::<V>(isa, &teacher[at..]);
        O::store(
            grad_value::<V, SCALED>(isa, x, y, ms, mt, ks, kt, inv),
            &mut dst[at..],
        );
        at += lanes;
    }
    if whole < n {
        let zero = V::Elem::ZERO;
        let x = match src {
            Some(s) => S::load_prefix::<V>(isa, &s[whole..n], zero),
            None => O::load_prefix::<V>(isa, &dst[whole..], zero),
        };
        let y = S::load_prefix::<V>(isa, &teacher[whole..n], zero);
        let v = grad_value::<V, SCALED>(isa, x, y, ms, mt, ks, kt, inv);
        O::store_prefix(v, &mut dst[whole..]);
    }
}

/// `kₛ·e^((x - mₛ)/T) - kₜ·e^((y - mₜ)/T)`, lane-wise (a function, not a closure: closures do
/// not get the tier's target features). Both exponentials are flushed below the normal range,
/// so a masked class's term is exactly 0.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn grad_value<V: Lanes, const SCALED: bool>(
    isa: V::Isa,
    x: V,
    y: V,
    ms: V,
    mt: V,
    ks: V,
    kt: V,
    inv: V,
) -> V {
    let q = math::exp_nonpositive(isa, centred::<V, SCALED>(x, ms, inv));
    let p = math::exp_nonpositive(isa, centred::<V, SCALED>(y, mt, inv));
    q.mul_add(ks, -(p * kt))
}

/// `(x - m)·(1/T)`, or `x - m` when `T = 1` (`!SCALED`: the same value).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn centred<V: Lanes, const SCALED: bool>(x: V, m: V, inv: V) -> V {
    if SCALED {
        (x - m) * inv
    } else {
        x - m
    }
}

/// Checks a call and returns its spec.
fn spec<S: Storage>(
    student: &[S],
    teacher: &[S],
    classes: usize,
    temperature: S::Compute,
) -> Result<KlRows<S::Compute>, LossError> {
    KlRows::new(student.len(), teacher.len(), classes, temperature)
}

/// Distillation KL divergence between a student's and a teacher's logits (`[rows, classes]`
/// row-major, the same shape): per row `KL(softmax(teacher/T) ‖ softmax(student/T))`
/// `= Σ_c p_c (log p_c - log q_c)` with `p = softmax(teacher/T)`, `q = softmax(student/T)`,
/// and no `T²` factor; [`Reduction::Mean`] averages over rows (NaN for no rows). One sweep over
/// both matrices, no intermediate buffer.
///
/// A `-inf` teacher logit masks its class: it contributes 0 (and a masked student class under
/// an unmasked teacher class gives `+inf`). A row whose student or teacher logits are all
/// `-inf`, or hold `+inf` or NaN, gives NaN.
///
/// # Errors
/// - [`LossError::ZeroClasses`] if `classes == 0`.
/// - [`LossError::NotMultipleOfClasses`] if `student.len() % classes != 0`.
/// - [`LossError::LengthMismatch`] if `teacher.len() != student.len()`.
/// - [`LossError::InvalidParameter`] if `temperature` is not finite and `> 0`.
///
/// ```
/// use losskit::Reduction;
/// let student = [1.0f32, 0.0, /* row 2 */ 0.0, 0.0];
/// let teacher = [0.0f32, 1.0, /* row 2 */ 0.0, f32::NEG_INFINITY];
/// let kl = losskit::kl_div_logits(&student, &teacher, 2, 1.0, Reduction::Sum)?;
/// // Row 1: p = (a, b) = softmax(0, 1), q = (b, a): (b - a)·ln(b / a); row 2: p = (1, 0), q = (½, ½).
/// let (a, b) = (1.0 / (1.0 + 1f32.exp()), 1.0 / (1.0 + (-1f32).exp()));
/// assert!((kl - ((b - a) * (b / a).ln() + 2f32.ln())).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_logits<S: Storage>(
    student: &[S],
    teacher: &[S],
    classes: usize,
    temperature: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let spec = spec(student, teacher, classes, temperature)?;
    let sum = S::kl_rows(&spec, student, teacher, RowsOut::Reduce);
    Ok(sum.finish(spec.rows as f64, reduction))
}

/// Each row's distillation KL (see [`kl_div_logits`]) into `out` (`len == rows`).
///
/// # Errors
/// As [`kl_div_logits`], and [`LossError::LengthMismatch`] if `out.len()` is not the number of
/// rows.
///
/// ```
/// let mut out = [9.0f64; 2];
/// losskit::kl_div_logits_each(&[0.0f64, 3.0, 1.0, 1.0], &[0.0, 3.0, 2.0, 0.0], 2, 2.0, &mut out)?;
/// assert!(out[0].abs() < 1e-15 && out[1] > 0.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_logits_each<S: Storage>(
    student: &[S],
    teacher: &[S],
    classes: usize,
    temperature: S::Compute,
    out: &mut [S::Compute],
) -> Result<(), LossError> {
    let spec = spec(student, teacher, classes, temperature)?;
    check::same_len("out", out.len(), "rows of student", spec.rows)?;
    S::kl_rows(&spec, student, teacher, RowsOut::Each(out));
    Ok(())
}

/// [`kl_div_logits`] and its gradient with respect to the student's logits into `dstudent`
/// (same length), in the same call: `(q - p)/T` per class, divided by the rows for
/// [`Reduction::Mean`]; 0 at classes where both are masked.
///
/// # Errors
/// As [`kl_div_logits`], and [`LossError::LengthMismatch`] if `dstudent.len()` is not
/// `student.len()`.
///
/// ```
/// use losskit::Reduction;
/// let mut grad = [0.0f32; 2];
/// let kl = losskit::kl_div_logits_and_grad(&[0.0f32, 0.0], &[0.0, f32::NEG_INFINITY], 2, 1.0, Reduction::Mean, &mut grad)?;
/// assert!((kl - 2f32.ln()).abs() < 1e-6);
/// assert_eq!(grad, [-0.5, 0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_logits_and_grad<S: Storage>(
    student: &[S],
    teacher: &[S],
    classes: usize,
    temperature: S::Compute,
    reduction: Reduction,
    dstudent: &mut [S],
) -> Result<S::Compute, LossError> {
    let spec = spec(student, teacher, classes, temperature)?;
    check::same_len("dstudent", dstudent.len(), "student", student.len())?;
    let out = RowsOut::Grad(dstudent, spec.scale(reduction));
    let sum = S::kl_rows(&spec, student, teacher, out);
    Ok(sum.finish(spec.rows as f64, reduction))
}

/// [`kl_div_logits_and_grad`] with the gradient written over the student's logits (the same
/// bits as the out-of-place form): no second buffer.
///
/// # Errors
/// As [`kl_div_logits`] (of `student`'s length).
///
/// ```
/// use losskit::Reduction;
/// let mut student = [0.0f32, 0.0];
/// let kl = losskit::kl_div_logits_and_grad_in_place(&mut student, &[0.0, f32::NEG_INFINITY], 2, 1.0, Reduction::Sum)?;
/// assert!((kl - 2f32.ln()).abs() < 1e-6);
/// assert_eq!(student, [-0.5, 0.5]);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn kl_div_logits_and_grad_in_place<S: Storage>(
    student: &mut [S],
    teacher: &[S],
    classes: usize,
    temperature: S::Compute,
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    let spec = spec(student, teacher, classes, temperature)?;
    let out = RowsOut::GradInPlace(student, spec.scale(reduction));
    let sum = S::kl_rows(&spec, &[], teacher, out);
    Ok(sum.finish(spec.rows as f64, reduction))
}
