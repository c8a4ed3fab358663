//! Connectionist temporal classification: PyTorch's `F.ctc_loss`, with its gradient.
//!
//! # Semantics
//!
//! `log_probs` is time-major `[T, N, C]` (as PyTorch's), `targets` the `N` label sequences
//! concatenated, `target_lengths[n]` long, and sample `n` reads frames `0..input_lengths[n]`.
//! A sample's loss is `-ln p(l | x)`, the negative log of the summed probability of every
//! alignment of its target (blanks anywhere, a blank required between repeated labels). An
//! impossible alignment (too few frames) gives `+inf`; with `zero_infinity` it gives 0 and a
//! zero gradient. [`Reduction::Mean`] divides each sample's loss by `max(1, target_length)` and
//! averages over the batch (NaN for an empty batch); [`Reduction::Sum`] adds the losses.
//!
//! The gradient is PyTorch's: with respect to the *logits* behind `log_probs` (through
//! `log_softmax`), `exp(log_probs[t, n, c]) - posterior(t, n, c)`, times the sample's reduction
//! weight (1, or `1 / (N · max(1, target_length))`), and 0 for `t >= input_lengths[n]`. A sample
//! whose loss is not finite (impossible without `zero_infinity`, or NaN input) gets NaN on its
//! frames, as PyTorch's `exp(lp) - exp(-inf + inf - lp)` does.
//!
//! # The recursion: log space, across the extended-label states
//!
//! The forward (α) and backward (β) recursions run in log space with a stable
//! log-add-exp, `m + ln Σ e^(xᵢ - m)` with `m` the largest term. Log space was chosen over
//! linear space with per-step rescaling because a trained model's posteriors are peaky: the
//! forward variables of the states that later carry the alignment can be e^-100 and more below
//! the largest ones at the same frame, which rescaled f32 (or even f64) flushes to zero and
//! would turn a finite loss into a wrong `+inf`. Log space has no such range limit, and the
//! transcendental cost per state is paid in vectors.
//!
//! The states are vectorised across the extended-label axis (the `2S + 1` states of one
//! sample), not across samples: the samples of a batch have different input and target
//! lengths, so lanes across samples would idle, while the states of one frame are independent
//! given the previous frame. The states are kept in two arrays, the `S + 1` blank states and
//! the `S` label states, so that a blank state's emission is one broadcast and only the label
//! states gather their emissions (one scalar gather of `S` values per frame):
//!
//! ```text
//! blank  B_t[k] = lp_t[blank] + lse(B_{t-1}[k], L_{t-1}[k-1])
//! label  L_t[k] = lp_t[l_k]   + lse(L_{t-1}[k], B_{t-1}[k], L_{t-1}[k-1] if l_k != l_{k-1})
//! ```
//!
//! The two-term `lse` is `max + log1p(exp(-|a - b|))` (one `exp`, one `log1p` on `[0, 1]`), the
//! three-term one `max + ln(Σ exp(xᵢ - max))` (three `exp`, one `ln`); a lane whose terms are
//! all `-inf` gives `-inf` and NaN propagates. The backward pass keeps `β'_t(s)`, the paths
//! from state `s` at frame `t` to the end *without* the emission at `t`, so that the posterior
//! of a state is `exp(α_t(s) + β'_t(s) + nll)` with no subtraction of `lp`.
//!
//! Samples are the leaves of the engine's fixed tree (`tree_reduce`), one sample per leaf, so
//! every sample (its loss and its gradient rows) is computed by one sequential recursion
//! whatever the threads, and the per-sample losses are summed in the tree's fixed order:
//! results are bit-identical for any number of threads, and between the AVX2 and AVX-512
//! tiers (same lane counts, same code). The batch runs in parallel when it has two samples or
//! more and at least 4096 frame-states of work.
//!
//! # Error bound
//!
//! Each step adds to a state's log value the rounding of one log-add-exp: at most about
//! `3·u` absolute for the `ln` of a sum in `[1, 3]` plus `u·|α|` for the addition of the
//! emission (`u` the unit roundoff: `2^-24` f32, `2^-53` f64). Over `T` frames the loss is within
//! about `T·(3 + 2)·u·max(1, |loss|)` of exact — for `T = 500` in f32, `1.5e-4·max(1, loss)`
//! absolute at worst and far less in practice (the roundings are not all one-sided); the
//! conformance tests assert PyTorch's tolerance (rtol 1e-5 for the loss; for gradients
//! `atol + 1e-6·|mean|` in f32, `1e-14` in f64) on every case. A posterior `exp(γ)` carries
//! the absolute error of `γ` as a relative error.
//!
//! # Memory
//!
//! Per call: three `usize` vectors of `N` (lengths and target offsets) and, for the gradient,
//! one slice reference per gradient row (`T·N`), which hands every sample its own rows of the
//! time-major gradient. Per sample in flight (one per thread): a handful of vectors of about
//! `S + 2·LANES` compute values (the recursion's two frames, the gathered emissions, the skip
//! mask, the labels) — `O(S)` for the loss. The gradient needs `α_t` when the backward pass
//! reaches frame `t`, so [`Ctc::loss_and_grad`] also keeps the sample's α, `input_length ·
//! (2S + 1)` compute values (400 KB for 500 frames and 100 labels in f32), and one row of `C`
//! values; the backward pass writes the sample's gradient rows as it goes, so nothing of size
//! `T·N·S` is ever allocated.

use crate::engine::{tree_reduce, LossSum};
use crate::float::sealed::Sealed;
use crate::loss::cross_entropy::{Label, Labels};
use crate::simd::dispatch::Resolved;
use crate::simd::{math, Kernel, Lanes};
use crate::storage::Storage;
use crate::{Float, LossError, Reduction};

/// CTC loss with options: the blank label and `zero_infinity`.
///
/// A plain `Copy` builder with PyTorch's defaults: `blank = 0`, `zero_infinity = false`. The
/// input holds log-probabilities (a `log_softmax` over classes), time-major `[T, N, C]`.
///
/// ```
/// use losskit::{Ctc, Reduction};
/// // T = 2 frames, N = 1 sample, C = 2 classes (0 is the blank); target "1".
/// let lp = [0.5f64.ln(), 0.5f64.ln(), 0.5f64.ln(), 0.5f64.ln()];
/// let loss = Ctc::new().loss(&lp, [2, 1, 2], &[1i64], &[2i64], &[1i64], Reduction::Sum)?;
/// // Alignments of "1" in 2 frames: "1 1", "_ 1", "1 _": p = 3/4.
/// assert!((loss - -(0.75f64).ln()).abs() < 1e-12);
/// # Ok::<(), losskit::LossError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctc {
    blank: usize,
    zero_infinity: bool,
}

impl Default for Ctc {
    fn default() -> Self {
        Self::new()
    }
}

/// A checked ctc call: what every leaf shares.
pub struct CtcSpec<'a> {
    time: usize,
    batch: usize,
    classes: usize,
    blank: usize,
    zero_infinity: bool,
    targets: Labels<'a>,
    input_len: Vec<usize>,
    target_len: Vec<usize>,
    offset: Vec<usize>,
    /// `Σ input_len · (target_len + 1)`: whether threads pay off.
    work: usize,
}

/// What a ctc call computes (an entry point's argument, see `entry.rs`).
pub enum CtcOut<'o, S: Storage> {
    /// The reduced loss.
    Reduce(Reduction),
    /// Each sample's loss.
    Each(&'o mut [S::Compute]),
    /// The reduced loss and the gradient with respect to the logits.
    Grad(Reduction, &'o mut [S]),
}

/// Below this much work (`Σ frames · (target length + 1)`) a call runs on one thread.
const PARALLEL_WORK: usize = 1 << 12;

/// A length or label as a `usize` in `0..=max`, or an [`LossError::OutOfRange`] naming it.
fn in_range(name: &'static str, index: usize, value: i128, max: usize) -> Result<usize, LossError> {
    if (0..=max as i128).contains(&value) {
        Ok(value as usize)
    } else {
        Err(LossError::OutOfRange {
            name,
            index,
            value,
            min: 0,
            max: max as i128,
        })
    }
}

impl Ctc {
    /// PyTorch's defaults: `blank = 0`, `zero_infinity = false`.
    ///
    /// ```
    /// assert_eq!(losskit::Ctc::new(), losskit::Ctc::default());
    /// ```
    pub fn new() -> Self {
        Ctc {
            blank: 0,
            zero_infinity: false,
        }
    }

    /// The blank label (in `0..classes`, checked when the loss is computed).
    ///
    /// ```
    /// use losskit::{Ctc, Reduction};
    /// let lp = [-0.1f32, -2.4, -2.4, -0.1]; // T = 2, N = 1, C = 2
    /// // Blank is class 1; target "0" in 2 frames.
    /// let loss = Ctc::new().blank(1).loss(&lp, [2, 1, 2], &[0u32], &[2u32], &[1u32], Reduction::Sum)?;
    /// assert!(loss.is_finite());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn blank(mut self, blank: usize) -> Self {
        self.blank = blank;
        self
    }

    /// Whether an impossible alignment (`+inf` loss) gives 0 and a zero gradient instead.
    ///
    /// ```
    /// use losskit::{Ctc, Reduction};
    /// let lp = [0.5f32.ln(); 2]; // T = 1, N = 1, C = 2: one frame cannot hold "1 1"
    /// let args = (&[1i64, 1][..], &[1i64][..], &[2i64][..]);
    /// let inf = Ctc::new().loss(&lp, [1, 1, 2], args.0, args.1, args.2, Reduction::Sum)?;
    /// let zero = Ctc::new().zero_infinity(true).loss(&lp, [1, 1, 2], args.0, args.1, args.2, Reduction::Sum)?;
    /// assert_eq!((inf, zero), (f32::INFINITY, 0.0));
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn zero_infinity(mut self, zero_infinity: bool) -> Self {
        self.zero_infinity = zero_infinity;
        self
    }

    /// Checks every argument (before any work) and gathers the lengths.
    fn spec<'a, L: Label, I: Label>(
        &self,
        len: usize,
        [time, batch, classes]: [usize; 3],
        targets: &'a [L],
        input_lengths: &[I],
        target_lengths: &[I],
    ) -> Result<CtcSpec<'a>, LossError> {
        if classes == 0 {
            return Err(LossError::ZeroClasses);
        }
        let rows = time.checked_mul(batch);
        let expected =
            rows.and_then(|r| r.checked_mul(classes))
                .ok_or(LossError::SizeOverflow {
                    rows: rows.unwrap_or(usize::MAX),
                    classes,
                })?;
        crate::check::same_len("log_probs", len, "time * batch * classes", expected)?;
        if self.blank >= classes {
            return Err(LossError::InvalidParameter {
                name: "blank",
                value: self.blank as f64,
                requirement: "< classes",
            });
        }
        crate::check::same_len("input_lengths", input_lengths.len(), "batch", batch)?;
        crate::check::same_len("target_lengths", target_lengths.len(), "batch", batch)?;
        let mut input_len = Vec::with_capacity(batch);
        let mut target_len = Vec::with_capacity(batch);
        let mut offset = Vec::with_capacity(batch);
        let (mut total, mut max_target, mut work) = (0usize, 0usize, 0usize);
        for (i, (&il, &tl)) in input_lengths.iter().zip(target_lengths).enumerate() {
            let il = in_range("input_lengths", i, il.to_i128(), time)?;
            let tl = in_range("target_lengths", i, tl.to_i128(), targets.len())?;
            offset.push(total);
            // Each is at most targets.len(), so the running sum cannot overflow before the
            // check below fails.
            total += tl;
            if total > targets.len() {
                return Err(LossError::LengthMismatch {
                    name: "targets",
                    len: targets.len(),
                    expected_name: "the sum of target_lengths",
                    expected: target_lengths[i + 1..]
                        .iter()
                        .fold(total, |s, l| s.saturating_add(l.to_i128().max(0) as usize)),
                });
            }
            input_len.push(il);
            target_len.push(tl);
            max_target = max_target.max(tl);
            work = work.saturating_add(il.saturating_mul(tl + 1));
        }
        let labels = L::labels(targets);
        for (i, &t) in targets[..total].iter().enumerate() {
            let t = t.to_i128();
            in_range("targets", i, t, classes - 1)?;
            if t == self.blank as i128 {
                return Err(LossError::BlankInTargets {
                    index: i,
                    blank: self.blank,
                });
            }
        }
        // A sample's α storage for the gradient, `T · (2S + 1)` values, must have a size.
        max_target
            .checked_mul(2)
            .and_then(|x| x.checked_add(1))
            .and_then(|x| x.checked_mul(time))
            .filter(|&x| x <= isize::MAX as usize / 8)
            .ok_or(LossError::SizeOverflow {
                rows: time,
                classes: max_target.saturating_mul(2).saturating_add(1),
            })?;
        Ok(CtcSpec {
            time,
            batch,
            classes,
            blank: self.blank,
            zero_infinity: self.zero_infinity,
            targets: labels,
            input_len,
            target_len,
            offset,
            work,
        })
    }

    /// The reduced loss over the batch.
    ///
    /// `log_probs` is `[T, N, C]` time-major (`shape = [T, N, C]`), `targets` the label
    /// sequences concatenated (only the first `Σ target_lengths` are read), `input_lengths` and
    /// `target_lengths` one per sample.
    ///
    /// # Errors
    /// Before any work: [`LossError::ZeroClasses`]; a [`LossError::LengthMismatch`] of
    /// `log_probs` (`T·N·C` values), of `input_lengths` or `target_lengths` (`N`), or of
    /// `targets` (shorter than the sum of `target_lengths`); [`LossError::SizeOverflow`];
    /// [`LossError::InvalidParameter`] for a `blank` not below `classes`;
    /// [`LossError::OutOfRange`] for an input length outside `0..=T`, a target length outside
    /// `0..=targets.len()` (negative ones included) or a label outside `0..C`; and
    /// [`LossError::BlankInTargets`].
    ///
    /// ```
    /// use losskit::{Ctc, LossError, Reduction};
    /// let lp = [0.5f32.ln(); 4]; // T = 2, N = 1, C = 2
    /// let err = Ctc::new().loss(&lp, [2, 1, 2], &[0i64], &[2i64], &[1i64], Reduction::Mean).unwrap_err();
    /// assert_eq!(err, LossError::BlankInTargets { index: 0, blank: 0 });
    /// let err = Ctc::new().loss(&lp, [2, 1, 2], &[1i64], &[3i64], &[1i64], Reduction::Mean).unwrap_err();
    /// assert_eq!(err.to_string(), "input_lengths[0] is 3; it must be in 0..=2");
    /// ```
    pub fn loss<S: Storage, L: Label, I: Label>(
        &self,
        log_probs: &[S],
        shape: [usize; 3],
        targets: &[L],
        input_lengths: &[I],
        target_lengths: &[I],
        reduction: Reduction,
    ) -> Result<S::Compute, LossError> {
        let spec = self.spec(
            log_probs.len(),
            shape,
            targets,
            input_lengths,
            target_lengths,
        )?;
        let sum = S::ctc(&spec, log_probs, CtcOut::Reduce(reduction));
        Ok(sum.finish(spec.batch as f64, reduction))
    }

    /// Each sample's loss, `-ln p(target | input)` (not divided by its length), into `out`
    /// (`len == N`).
    ///
    /// # Errors
    /// As [`Ctc::loss`], and a [`LossError::LengthMismatch`] of `out`.
    ///
    /// ```
    /// use losskit::Ctc;
    /// let lp = [0.5f64.ln(); 8]; // T = 2, N = 2, C = 2
    /// let mut out = [0.0; 2];
    /// Ctc::new().each(&lp, [2, 2, 2], &[1u32], &[2u32, 1], &[1u32, 0], &mut out)?;
    /// // Sample 0: "1" in 2 frames, p = 3/4; sample 1: "" in 1 frame, p = 1/2.
    /// assert!((out[0] - -(0.75f64).ln()).abs() < 1e-12 && (out[1] - 2f64.ln()).abs() < 1e-12);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn each<S: Storage, L: Label, I: Label>(
        &self,
        log_probs: &[S],
        shape: [usize; 3],
        targets: &[L],
        input_lengths: &[I],
        target_lengths: &[I],
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        let spec = self.spec(
            log_probs.len(),
            shape,
            targets,
            input_lengths,
            target_lengths,
        )?;
        crate::check::same_len("out", out.len(), "batch", spec.batch)?;
        S::ctc(&spec, log_probs, CtcOut::Each(out));
        Ok(())
    }

    /// The reduced loss and its gradient with respect to the logits behind `log_probs` into
    /// `grad` (same length), as PyTorch's backward writes it: `exp(lp) - posterior` times the
    /// sample's reduction weight, 0 on frames past a sample's input length.
    ///
    /// # Errors
    /// As [`Ctc::loss`], and a [`LossError::LengthMismatch`] of `grad`.
    ///
    /// ```
    /// use losskit::{Ctc, Reduction};
    /// let lp = [0.5f64.ln(); 4]; // T = 2, N = 1, C = 2
    /// let mut grad = [9.0; 4];
    /// let loss = Ctc::new().loss_and_grad(&lp, [2, 1, 2], &[1i64], &[2i64], &[1i64], Reduction::Sum, &mut grad)?;
    /// assert!((loss - -(0.75f64).ln()).abs() < 1e-12);
    /// // Frame 0: blank posterior 1/3 ("_ 1"), label 2/3: gradient 1/2 - 1/3, 1/2 - 2/3.
    /// assert!((grad[0] - 1.0 / 6.0).abs() < 1e-12 && (grad[1] + 1.0 / 6.0).abs() < 1e-12);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    // The argument list is F.ctc_loss's, plus the gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn loss_and_grad<S: Storage, L: Label, I: Label>(
        &self,
        log_probs: &[S],
        shape: [usize; 3],
        targets: &[L],
        input_lengths: &[I],
        target_lengths: &[I],
        reduction: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        let spec = self.spec(
            log_probs.len(),
            shape,
            targets,
            input_lengths,
            target_lengths,
        )?;
        crate::check::same_len("grad", grad.len(), "log_probs", log_probs.len())?;
        let sum = S::ctc(&spec, log_probs, CtcOut::Grad(reduction, grad));
        Ok(sum.finish(spec.batch as f64, reduction))
    }
}

/// CTC loss with PyTorch's defaults (`blank = 0`, `zero_infinity = false`): see [`Ctc`] for the
/// options and the `each` and gradient forms.
///
/// # Errors
/// As [`Ctc::loss`].
///
/// ```
/// use losskit::Reduction;
/// let lp = [0.5f32.ln(); 4]; // T = 2, N = 1, C = 2
/// let loss = losskit::ctc(&lp, [2, 1, 2], &[1i64], &[2i64], &[1i64], Reduction::Mean)?;
/// assert!((loss - -(0.75f32).ln()).abs() < 1e-6);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn ctc<S: Storage, L: Label, I: Label>(
    log_probs: &[S],
    shape: [usize; 3],
    targets: &[L],
    input_lengths: &[I],
    target_lengths: &[I],
    reduction: Reduction,
) -> Result<S::Compute, LossError> {
    Ctc::new().loss(
        log_probs,
        shape,
        targets,
        input_lengths,
        target_lengths,
        reduction,
    )
}

impl CtcSpec<'_> {
    /// The reduction weight of sample `n`: what its loss is multiplied by before the sum.
    fn weight(&self, n: usize, reduction: Reduction) -> f64 {
        match reduction {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / self.target_len[n].max(1) as f64,
        }
    }

    /// Runs the call (an entry point's body, see `entry.rs`).
    pub(crate) fn run<S: Storage>(&self, x: &[S], out: CtcOut<'_, S>) -> LossSum {
        let tier = Resolved::active();
        let parallel = self.batch >= 2 && self.work >= PARALLEL_WORK;
        let (reduction, zero_inf) = (
            match &out {
                CtcOut::Reduce(r) | CtcOut::Grad(r, _) => *r,
                CtcOut::Each(_) => Reduction::Sum,
            },
            self.zero_infinity,
        );
        // A sample's loss after zero_infinity, and its share of the reduced sum.
        let finish = |n: usize, nll: S::Compute| {
            let nll = if zero_inf && nll.to_f64() == f64::INFINITY {
                S::Compute::ZERO
            } else {
                nll
            };
            (
                nll,
                LossSum::unweighted(nll.to_f64() * self.weight(n, reduction), 1),
            )
        };
        match out {
            CtcOut::Reduce(_) => {
                let leaf = |n: usize, _: Option<&mut [()]>| {
                    finish(
                        n,
                        tier.run(Sample::<S> {
                            spec: self,
                            x,
                            n,
                            grad: None,
                        }),
                    )
                    .1
                };
                tree_reduce(self.batch, parallel, None, 0, &leaf).unwrap_or_default()
            }
            CtcOut::Each(out) => {
                let leaf = |n: usize, out: Option<&mut [S::Compute]>| {
                    let (nll, sum) = finish(
                        n,
                        tier.run(Sample::<S> {
                            spec: self,
                            x,
                            n,
                            grad: None,
                        }),
                    );
                    if let Some(o) = out.and_then(|o| o.first_mut()) {
                        *o = nll;
                    }
                    sum
                };
                tree_reduce(self.batch, parallel, Some(out), 1, &leaf).unwrap_or_default()
            }
            CtcOut::Grad(_, grad) => {
                // Each sample's gradient rows (frame t is row t·N + n): disjoint slices handed
                // to the sample's leaf, which writes them all (zeros past its input length).
                let mut rows: Vec<Vec<&mut [S]>> = (0..self.batch)
                    .map(|_| Vec::with_capacity(self.time))
                    .collect();
                for (r, row) in grad.chunks_mut(self.classes).enumerate() {
                    rows[r % self.batch].push(row);
                }
                let mean = matches!(reduction, Reduction::Mean);
                let leaf = |n: usize, out: Option<&mut [Vec<&mut [S]>]>| {
                    let Some(rows) = out.and_then(|o| o.first_mut()) else {
                        return LossSum::default();
                    };
                    // As PyTorch's autograd: the mean's 1/N, then 1/max(1, length).
                    let w = if mean {
                        1.0 / self.batch as f64 / self.target_len[n].max(1) as f64
                    } else {
                        1.0
                    };
                    let raw = tier.run(Sample::<S> {
                        spec: self,
                        x,
                        n,
                        grad: Some((&mut rows[..], S::Compute::from_f64(w))),
                    });
                    finish(n, raw).1
                };
                tree_reduce(self.batch, parallel, Some(&mut rows[..]), 1, &leaf).unwrap_or_default()
            }
        }
    }
}

/// `-inf` in `T`.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn neg_inf<T: Float>() -> T {
    T::from_f64(f64::NEG_INFINITY)
}

/// `ln(e^a + e^b)`, lane-wise: `max + log1p(exp(-|a - b|))`. Both `-inf` gives `-inf`; NaN in
/// either gives NaN.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn lse2<V: Lanes>(isa: V::Isa, a: V, b: V) -> V {
    let m = a.max(b);
    let e = math::exp_nonpositive(isa, -(a - b).abs());
    let r = m + math::log1p_unit(isa, e);
    // All -inf: a - b is NaN, so the sum a + b (-inf, or NaN if either was NaN) is the answer.
    V::select(m.eq(V::splat(isa, neg_inf())), a + b, r)
}

/// `ln(e^a + e^b + e^c)`, lane-wise: `max + ln(Σ exp(x - max))`. All `-inf` gives `-inf`; NaN
/// in any gives NaN.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn lse3<V: Lanes>(isa: V::Isa, a: V, b: V, c: V) -> V {
    let m = a.max(b).max(c);
    // The sum has a term e^0 = 1, so the clamp of tiny terms to MIN_POSITIVE changes nothing.
    let s = math::exp_nonpositive_clamped(isa, a - m)
        + math::exp_nonpositive_clamped(isa, b - m)
        + math::exp_nonpositive_clamped(isa, c - m);
    let r = m + math::ln(isa, s);
    V::select(m.eq(V::splat(isa, neg_inf())), a + b + c, r)
}

/// Scalar `ln(e^a + e^b)` for the final readout (both `-inf`: `-inf`).
fn lse2_scalar<T: Float>(a: T, b: T) -> T {
    let m = if a > b { a } else { b };
    if m == neg_inf() {
        return a + b;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// A buffer of `len` `-inf`s.
fn buffer<T: Float>(len: usize) -> Vec<T> {
    vec![neg_inf(); len]
}

/// One sample's forward recursion (and, with `post`, its backward recursion and posteriors).
struct Sample<'a, 'g, 'r, S: Storage> {
    spec: &'a CtcSpec<'a>,
    x: &'a [S],
    n: usize,
    /// The sample's `T` gradient rows (frame `t` at `t`) and its reduction weight.
    grad: Option<(&'g mut [&'r mut [S]], S::Compute)>,
}

impl<S: Storage> Kernel<S::Compute> for Sample<'_, '_, '_, S> {
    /// The sample's loss, `-ln p` (before zero_infinity).
    type Output = S::Compute;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = S::Compute>>(self, isa: V::Isa) -> S::Compute {
        let spec = self.spec;
        let (n, lanes) = (self.n, V::LANES);
        let frames = spec.input_len[n];
        let s_len = spec.target_len[n];
        let ninf = neg_inf::<S::Compute>();
        let zero = S::Compute::ZERO;
        let mut grad = self.grad;
        // Frames past the input length have gradient 0.
        if let Some((rows, _)) = grad.as_mut() {
            for r in rows.iter_mut().skip(frames) {
                r.fill(S::from_compute(zero));
            }
        }
        if frames == 0 {
            // No frames: only the empty target has an alignment (the empty one).
            return if s_len == 0 {
                zero
            } else {
                S::Compute::from_f64(f64::INFINITY)
            };
        }
        let (nb, nl) = (s_len + 1, s_len);
        let end = nb.div_ceil(lanes) * lanes;
        let len = end + lanes + 1;
        let labels: Vec<usize> = (0..nl)
            .map(|k| spec.targets.get(spec.offset[n] + k) as usize)
            .collect();
        // skip[k] = 0 where label state k may be entered from label state k - 1 (a different
        // label), -inf elsewhere (index 0 and padding included).
        let mut skip = buffer::<S::Compute>(len);
        for k in 1..nl {
            if labels[k] != labels[k - 1] {
                skip[k] = zero;
            }
        }
        let row = |t: usize| {
            let at = (t * spec.batch + n) * spec.classes;
            &self.x[at..at + spec.classes]
        };
        let mut em = buffer::<S::Compute>(len);
        let gather = |em: &mut [S::Compute], t: usize| {
            let r = row(t);
            for (e, &l) in em.iter_mut().zip(&labels) {
                *e = r[l].to_compute();
            }
            r[spec.blank].to_compute()
        };
        // bb[k] = B[k]; lb[k + 1] = L[k] (lb[0] = -inf: "L[-1]").
        let (mut bb, mut lb) = (buffer::<S::Compute>(len), buffer::<S::Compute>(len));
        let (mut bb2, mut lb2) = (buffer::<S::Compute>(len), buffer::<S::Compute>(len));
        let lpb = gather(&mut em, 0);
        bb[0] = lpb;
        if nl > 0 {
            lb[1] = em[0];
        }
        // The gradient needs every frame's α in the backward pass: `frames · (2S + 1)` values.
        let stride = nb + nl;
        let mut alpha = if grad.is_some() {
            vec![zero; frames * stride]
        } else {
            Vec::new()
        };
        let store_alpha =
            |alpha: &mut [S::Compute], t: usize, bb: &[S::Compute], lb: &[S::Compute]| {
                if !alpha.is_empty() {
                    let r = &mut alpha[t * stride..(t + 1) * stride];
                    r[..nb].copy_from_slice(&bb[..nb]);
                    r[nb..].copy_from_slice(&lb[1..1 + nl]);
                }
            };
        store_alpha(&mut alpha, 0, &bb, &lb);
        for t in 1..frames {
            let lpb = V::splat(isa, gather(&mut em, t));
            let mut k = 0;
            while k < nb {
                let b = V::load(isa, &bb[k..]);
                let l_prev = V::load(isa, &lb[k..]);
                let l_cur = V::load(isa, &lb[k + 1..]);
                let sk = V::load(isa, &skip[k..]);
                let e = V::load(isa, &em[k..]);
                (lse2(isa, b, l_prev) + lpb).store(&mut bb2[k..]);
                (lse3(isa, l_cur, b, l_prev + sk) + e).store(&mut lb2[k + 1..]);
                k += lanes;
            }
            // Padding back to -inf: only valid states feed valid states, but the invariant
            // keeps padding lanes from holding NaN garbage.
            bb2[nb..].fill(ninf);
            lb2[1 + nl..].fill(ninf);
            core::mem::swap(&mut bb, &mut bb2);
            core::mem::swap(&mut lb, &mut lb2);
            store_alpha(&mut alpha, t, &bb, &lb);
        }
        let ll = if nl == 0 {
            bb[0]
        } else {
            lse2_scalar(bb[nb - 1], lb[nl])
        };
        let nll = -ll;
        if let Some((rows, w)) = grad {
            let rows = &mut rows[..frames];
            if nll.to_f64().is_finite() {
                let b = Backward {
                    nb,
                    nl,
                    len,
                    nll,
                    w,
                    blank: spec.blank,
                    labels: &labels,
                    skip: &skip,
                    alpha: &alpha,
                    row: &row,
                    gather: &gather,
                    em,
                };
                backward::<S, V>(isa, b, rows);
            } else {
                // PyTorch's exp(lp) - exp(-inf + inf - lp): NaN, or 0 with zero_infinity.
                let zeroed = spec.zero_infinity && nll.to_f64() == f64::INFINITY;
                let v = if zeroed {
                    zero
                } else {
                    S::Compute::from_f64(f64::NAN)
                };
                for r in rows.iter_mut() {
                    r.fill(S::from_compute(v));
                }
            }
        }
        nll
    }
}

/// What the backward pass of one sample needs from its forward pass.
struct Backward<'g, T, R, G> {
    nb: usize,
    nl: usize,
    len: usize,
    nll: T,
    /// The sample's reduction weight.
    w: T,
    blank: usize,
    labels: &'g [usize],
    skip: &'g [T],
    /// α of every frame, `2S + 1` values each (the `S + 1` blank states, then the labels).
    alpha: &'g [T],
    row: &'g R,
    gather: &'g G,
    em: Vec<T>,
}

/// The backward recursion of one sample, writing its gradient rows (`rows[t]`, `t` below the
/// input length) as it reaches each frame.
#[cfg_attr(not(losskit_unoptimized), inline(always))]
fn backward<'x, S: Storage, V: Lanes<Elem = S::Compute>>(
    isa: V::Isa,
    b: Backward<
        '_,
        S::Compute,
        impl Fn(usize) -> &'x [S],
        impl Fn(&mut [S::Compute], usize) -> S::Compute,
    >,
    rows: &mut [&mut [S]],
) {
    let Backward {
        nb,
        nl,
        len,
        nll,
        w,
        blank: blank_class,
        labels,
        skip,
        alpha,
        row: lp_row,
        gather,
        mut em,
    } = b;
    let lanes = V::LANES;
    let ninf = neg_inf::<S::Compute>();
    let stride = nb + nl;
    let (mut bb, mut bl) = (buffer::<S::Compute>(len), buffer::<S::Compute>(len));
    let (mut ab, mut al) = (buffer::<S::Compute>(len), buffer::<S::Compute>(len));
    let mut pl = vec![S::Compute::ZERO; len];
    let zero = S::Compute::ZERO;
    let classes = rows.first().map_or(0, |r| r.len());
    let mut buf = vec![zero; classes];
    // β' at the last frame: 0 at the two final states.
    bb[nb - 1] = zero;
    if nl > 0 {
        bl[nl - 1] = zero;
    }
    let vnll = V::splat(isa, nll);
    let vw = V::splat(isa, w);
    let mut t = rows.len();
    while t > 0 {
        t -= 1;
        let a = &alpha[t * stride..(t + 1) * stride];
        ab[..nb].copy_from_slice(&a[..nb]);
        al[..nl].copy_from_slice(&a[nb..]);
        // One sweep per frame: the posteriors exp(α_t + β'_t + nll) (padding lanes are -inf and
        // give 0; the sum is at most 1 up to rounding, so the exponent is not above 0 by more
        // than a rounding error: `exp_nonpositive` is exact there) and, unless t = 0, β'_{t-1}
        // from c = β'_t + lp_t, written over β'_t in place: chunk k reads indices k.. and
        // writes k..k+LANES, which no later chunk reads.
        let lpb = if t > 0 {
            V::splat(isa, gather(&mut em, t))
        } else {
            V::splat(isa, zero)
        };
        let mut blank = V::splat(isa, zero);
        let mut k = 0;
        while k < nb {
            let b0 = V::load(isa, &bb[k..]);
            let l0 = V::load(isa, &bl[k..]);
            blank = blank + math::exp_nonpositive(isa, V::load(isa, &ab[k..]) + b0 + vnll);
            let gl = V::load(isa, &al[k..]) + l0 + vnll;
            math::exp_nonpositive(isa, gl).store(&mut pl[k..]);
            if t > 0 {
                let c_b = b0 + lpb;
                let c_l = l0 + V::load(isa, &em[k..]);
                let c_b1 = V::load(isa, &bb[k + 1..]) + lpb;
                let c_l1 = V::load(isa, &bl[k + 1..]) + V::load(isa, &em[k + 1..]);
                let sk1 = V::load(isa, &skip[k + 1..]);
                lse2(isa, c_b, c_l).store(&mut bb[k..]);
                lse3(isa, c_l, c_b1, c_l1 + sk1).store(&mut bl[k..]);
            }
            k += lanes;
        }
        // Padding back to -inf (the stores above ran past the states).
        bb[nb..].fill(ninf);
        bl[nl..].fill(ninf);
        // The gradient row: w·exp(lp) over the classes, minus w·posterior where a state sits.
        let x = lp_row(t);
        let mut j = 0;
        while j + lanes <= classes {
            (math::exp(isa, S::load::<V>(isa, &x[j..])) * vw).store(&mut buf[j..]);
            j += lanes;
        }
        if j < classes {
            let v = S::load_prefix::<V>(isa, &x[j..], zero);
            (math::exp(isa, v) * vw).store_prefix(&mut buf[j..]);
        }
        buf[blank_class] = buf[blank_class] - w * blank.reduce_sum();
        for (&l, &p) in labels.iter().zip(&pl) {
            buf[l] = buf[l] - w * p;
        }
        let out = &mut *rows[t];
        let mut j = 0;
        while j + lanes <= classes {
            S::store(V::load(isa, &buf[j..]), &mut out[j..]);
            j += lanes;
        }
        if j < classes {
            S::store_prefix(V::load_prefix(isa, &buf[j..], zero), &mut out[j..]);
        }
    }
}
