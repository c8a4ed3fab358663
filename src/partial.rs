//! Partial results of the reduced losses, for engines that split a batch into shards, compute
//! each shard where it lives (another thread, process or machine) and combine them.
//!
//! A [`Partial`] holds the exact sum of a shard's per-element losses, their summed weights and
//! their count. Two partials [`merge`](Partial::merge) exactly, and the per-element losses are
//! summed exactly too, so **the bits do not depend on how the batch was sharded** (any split
//! points, any merge order or grouping): the partial of a whole batch and the merge of the
//! partials of its shards are equal, and finish to the same `f64`. That is stronger than the
//! main functions promise ([`mse`](crate::mse) is bit-identical for any thread count, not for
//! any split of its input, since it rounds its sums per leaf), and it costs more:
//!
//! - each element's loss is computed by the same kernel as the `*_each` form (so it is the
//!   value [`mse_each`](crate::mse_each) writes, on the same tier), into a 16 KiB block on the
//!   stack, then added to an exact accumulator: blocks of 4096 losses go through a fixed-point
//!   window scaled to the block's largest loss, summed in `f64` vector lanes with no rounding
//!   (every `f32` loss within 56 binades of the block's largest, every `f64` loss within 27),
//!   and the rest one by one into per-exponent bins (`f32`, 8 KiB on the stack) or into the
//!   long fixed-point digits (`f64`, a few integer operations);
//! - so the partial path runs at the speed of the accumulator, not at memory speed: on one
//!   Sapphire Rapids core, `mse` over 1M values takes 0.87 ns per element in `f32` (3.0x
//!   [`mse`](crate::mse)'s time, which is at the memory-read ceiling) and 1.3 ns in `f64`
//!   (2.2x), on the calling thread. Shards are the unit of parallelism here: an engine computes
//!   its partitions concurrently.
//!
//! This is the role ReproBLAS's binned sums (Demmel, Ahrens and Nguyen) play for BLAS
//! reductions; here the accumulator is exact, not just reproducible, so the result is also the
//! correctly rounded sum of the per-element losses.
//!
//! Cross-entropy's partial result is [`CeStats`](crate::CeStats) (loss and eval statistics);
//! its sums merge exactly, and its per-row losses are summed per call.
//!
//! ```
//! use losskit::{partial, Partial, Reduction};
//! let input = [0.5f32, 1.5, -0.25, 2.0, 1.0];
//! let target = [0.0f32, 2.0, 0.0, 2.5, 1.0];
//! let whole = partial::mse(&input, &target)?;
//! // Any split, merged in any order, gives the same bits.
//! let (a, b) = (partial::mse(&input[..2], &target[..2])?, partial::mse(&input[2..], &target[2..])?);
//! assert_eq!(b.merge(&a), whole);
//! assert_eq!(whole.count(), 5);
//! assert_eq!(whole.finish(Reduction::Mean), 0.1625);
//! // Any per-element form, options included, through `Partial::from_each`.
//! let huber = Partial::from_each(input.len(), |range, out| {
//!     losskit::huber_each(&input[range.clone()], &target[range], 0.5, out)
//! })?;
//! assert_eq!(huber.count(), 5);
//! # Ok::<(), losskit::LossError>(())
//! ```

use core::ops::Range;

use crate::engine::{BinnedExactSum, ExactSum};
use crate::storage::Storage;
use crate::{check, Float, LossError, Reduction};

/// Elements per block of the per-element pass: 16 KiB of `f32` (32 KiB of `f64`) on the stack.
const BLOCK: usize = 4096;

/// Inputs of at least this many elements add their losses through [`BinnedExactSum`] (its
/// fixed-point window, and bins for the rest).
const BINNED_FROM: usize = 128;

/// The partial result of a reduced loss over a shard: the exact sum of its per-element (or
/// per-row) losses, of their weights, and their count; see the [module docs](self).
///
/// With the `serde` feature it is `Serialize` and `Deserialize`: a struct of `loss` and
/// `weight` (exact sums, in the form [`CeStats`](crate::CeStats) documents) and `count`.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Partial {
    loss: ExactSum,
    weight: ExactSum,
    count: u64,
}

impl Partial {
    /// The partial result of nothing: merging it changes nothing.
    ///
    /// ```
    /// let p = losskit::partial::l1(&[1.0f64], &[3.0])?;
    /// assert_eq!(losskit::Partial::new().merge(&p), p);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn new() -> Partial {
        Partial::default()
    }

    /// The partial result of `len` unweighted elements whose losses `each` writes, a block at a
    /// time: `each(range, out)` must write the losses of elements `range` into `out` (as long as
    /// the range). A `*_each` function over the sub-slices does exactly that; its error (an
    /// invalid parameter, a probability out of range, ...) is returned as is. `each` is called
    /// once with an empty range when `len` is 0, so that its parameters are still checked.
    ///
    /// ```
    /// use losskit::{BceWithLogits, Partial, Reduction};
    /// let (logits, target) = ([2.0f32, -1.0, 0.5], [1.0f32, 0.0, 1.0]);
    /// let loss = BceWithLogits::new().pos_weight(2.0);
    /// let p = Partial::from_each(logits.len(), |r, out| {
    ///     loss.each(&logits[r.clone()], &target[r], out)
    /// })?;
    /// let direct = loss.loss(&logits, &target, Reduction::Sum)?;
    /// assert!((p.finish(Reduction::Sum) - f64::from(direct)).abs() < 1e-6);
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    ///
    /// # Errors
    /// Whatever `each` returns.
    pub fn from_each<T: Float>(
        len: usize,
        mut each: impl FnMut(Range<usize>, &mut [T]) -> Result<(), LossError>,
    ) -> Result<Partial, LossError> {
        let mut buffer = [T::ZERO; BLOCK];
        if len == 0 {
            each(0..0, &mut buffer[..0])?;
        }
        // Short inputs (an engine's runs of rows between NULLs) skip the window and the bins:
        // clearing the bins (8 KiB), and folding them when the window leaves values out, costs
        // about as much as adding 70 values one by one (an estimate from 255 bins folded and
        // 3.4 ns saved a value). The exact total is the same.
        let mut binned = (len >= BINNED_FROM).then(BinnedExactSum::new);
        let mut direct = ExactSum::ZERO;
        for start in (0..len).step_by(BLOCK) {
            let end = (start + BLOCK).min(len);
            let out = &mut buffer[..end - start];
            each(start..end, out)?;
            match &mut binned {
                Some(bins) => T::add_exact(out, bins),
                None => out.iter().for_each(|value| direct.add(value.to_f64())),
            }
        }
        let count = len as u64;
        Ok(Partial {
            loss: binned.map_or(direct, BinnedExactSum::total),
            weight: ExactSum::of(len as f64),
            count,
        })
    }

    /// Both shards' partial result, exactly: merge order and grouping never change the bits.
    ///
    /// ```
    /// use losskit::partial;
    /// let x = [0.25f32, -1.0, 3.0];
    /// let y = [0.0f32, 0.0, 0.0];
    /// let (a, b, c) = (
    ///     partial::l1(&x[..1], &y[..1])?,
    ///     partial::l1(&x[1..2], &y[1..2])?,
    ///     partial::l1(&x[2..], &y[2..])?,
    /// );
    /// assert_eq!(a.merge(&b).merge(&c), c.merge(&a.merge(&b)));
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn merge(&self, other: &Partial) -> Partial {
        Partial {
            loss: self.loss.merge(&other.loss),
            weight: self.weight.merge(&other.weight),
            // Wrapping, so that no input (a deserialized one included) panics.
            count: self.count.wrapping_add(other.count),
        }
    }

    /// Elements (or rows) counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The reduced loss: the exact sum rounded once, or for [`Reduction::Mean`] that sum divided
    /// by the summed weights (the count, for unweighted losses; NaN when nothing was counted).
    ///
    /// ```
    /// use losskit::{partial, Reduction};
    /// let p = partial::mse(&[1.0f32, 3.0], &[0.0, 0.0])?;
    /// assert_eq!((p.finish(Reduction::Sum), p.finish(Reduction::Mean)), (10.0, 5.0));
    /// assert!(partial::mse::<f32>(&[], &[])?.finish(Reduction::Mean).is_nan());
    /// # Ok::<(), losskit::LossError>(())
    /// ```
    pub fn finish(&self, reduction: Reduction) -> f64 {
        match reduction {
            Reduction::Sum => self.loss.value(),
            Reduction::Mean => self.loss.value() / self.weight.value(),
        }
    }
}

/// Checks two inputs' lengths, then sums `each` over them.
fn pair<S: Storage>(
    input: &[S],
    target: &[S],
    each: impl Fn(&[S], &[S], &mut [S::Compute]) -> Result<(), LossError>,
) -> Result<Partial, LossError> {
    check::same_len("target", target.len(), "input", input.len())?;
    Partial::from_each(input.len(), |r, out| {
        each(&input[r.clone()], &target[r], out)
    })
}

/// The partial result of [`mse`](crate::mse).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// let p = losskit::partial::mse(&[1.0f32, 3.0], &[0.0, 1.0])?;
/// assert_eq!(p.finish(losskit::Reduction::Sum), 5.0);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn mse<S: Storage>(input: &[S], target: &[S]) -> Result<Partial, LossError> {
    pair(input, target, crate::mse_each)
}

/// The partial result of [`l1`](crate::l1).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != input.len()`.
///
/// ```
/// let p = losskit::partial::l1(&[1.0f32, -3.0], &[0.0, 1.0])?;
/// assert_eq!(p.finish(losskit::Reduction::Mean), 2.5);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn l1<S: Storage>(input: &[S], target: &[S]) -> Result<Partial, LossError> {
    pair(input, target, crate::l1_each)
}

/// The partial result of [`huber`](crate::huber).
///
/// # Errors
/// As [`huber`](crate::huber): an invalid `delta` or a length mismatch.
///
/// ```
/// let p = losskit::partial::huber(&[0.5f64, 3.0], &[0.0, 0.0], 1.0)?;
/// assert_eq!(p.finish(losskit::Reduction::Sum), 0.125 + 2.5);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn huber<S: Storage>(
    input: &[S],
    target: &[S],
    delta: S::Compute,
) -> Result<Partial, LossError> {
    pair(input, target, |x, y, out| {
        crate::huber_each(x, y, delta, out)
    })
}

/// The partial result of [`smooth_l1`](crate::smooth_l1).
///
/// # Errors
/// As [`smooth_l1`](crate::smooth_l1): an invalid `beta` or a length mismatch.
///
/// ```
/// let p = losskit::partial::smooth_l1(&[0.5f64, 3.0], &[0.0, 0.0], 1.0)?;
/// assert_eq!(p.finish(losskit::Reduction::Sum), 0.125 + 2.5);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn smooth_l1<S: Storage>(
    input: &[S],
    target: &[S],
    beta: S::Compute,
) -> Result<Partial, LossError> {
    pair(input, target, |x, y, out| {
        crate::smooth_l1_each(x, y, beta, out)
    })
}

/// The partial result of [`bce`](crate::bce) (probabilities).
///
/// # Errors
/// As [`bce`](crate::bce): a length mismatch, or a probability outside `[0, 1]` (NaN included).
///
/// ```
/// let p = losskit::partial::bce(&[0.5f64, 0.5], &[1.0, 0.0])?;
/// assert!((p.finish(losskit::Reduction::Mean) - std::f64::consts::LN_2).abs() < 1e-15);
/// assert!(losskit::partial::bce(&[1.5f32], &[1.0]).is_err());
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce<S: Storage>(probs: &[S], target: &[S]) -> Result<Partial, LossError> {
    check::same_len("target", target.len(), "probs", probs.len())?;
    Partial::from_each(probs.len(), |r, out| {
        crate::bce_each(&probs[r.clone()], &target[r], out)
    })
}

/// The partial result of [`bce_with_logits`](crate::bce_with_logits).
///
/// # Errors
/// [`LossError::LengthMismatch`] if `target.len() != logits.len()`.
///
/// ```
/// let p = losskit::partial::bce_with_logits(&[0.0f64, 0.0], &[1.0, 0.0])?;
/// assert!((p.finish(losskit::Reduction::Mean) - std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), losskit::LossError>(())
/// ```
pub fn bce_with_logits<S: Storage>(logits: &[S], target: &[S]) -> Result<Partial, LossError> {
    check::same_len("target", target.len(), "logits", logits.len())?;
    Partial::from_each(logits.len(), |r, out| {
        crate::bce_with_logits_each(&logits[r.clone()], &target[r], out)
    })
}
