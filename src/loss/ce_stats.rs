//! Eval statistics of class-label cross-entropy, gathered by the loss's own sweep
//! ([`CrossEntropy::stats`](crate::CrossEntropy::stats)), and mergeable across shards.

use super::log_sum_exp::RowStats;
use crate::engine::{ExactSum, LossSum, Merge};
use crate::Reduction;

/// What a softmax row contributes: its loss state and, for the statistics, whether its label
/// is the top-1 and within the top-k, and its softmax entropy. The plain loss leaves the
/// statistics at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CeTotal {
    pub(crate) loss: LossSum,
    pub(crate) top1: u64,
    pub(crate) top_k: u64,
    pub(crate) entropy: f64,
}

impl CeTotal {
    /// A scored row of loss `loss` and weight `weight`, its statistics at zero.
    pub(crate) fn scored(loss: f64, weight: f64) -> CeTotal {
        CeTotal {
            loss: LossSum {
                loss,
                weight,
                count: 1,
            },
            ..CeTotal::default()
        }
    }

    /// The row with its statistics: its target of rank `rank` (top-1, top-`k`) and the entropy
    /// of its softmax from its sweep `s`.
    pub(crate) fn ranked(self, rank: u64, k: u64, s: &RowStats) -> CeTotal {
        CeTotal {
            top1: u64::from(rank == 0),
            top_k: u64::from(rank < k),
            // -Σ p log p = ln S - Σ e^c·c / S, with c = x - max.
            entropy: s.sum.ln() - s.ent / s.sum,
            ..self
        }
    }
}

impl Merge for CeTotal {
    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn merge(self, other: CeTotal) -> CeTotal {
        CeTotal {
            loss: self.loss.merge(other.loss),
            top1: self.top1 + other.top1,
            top_k: self.top_k + other.top_k,
            entropy: self.entropy + other.entropy,
        }
    }
}

/// Cross-entropy eval statistics of a batch: the loss, top-1 and top-k accuracy, the mean
/// entropy of the softmax and the perplexity, all from the one sweep that computes the loss
/// ([`CrossEntropy::stats`](crate::CrossEntropy::stats)).
///
/// The loss is the one [`loss`](crate::CrossEntropy::loss) returns for the same call: bit for
/// bit for rows of more than 32 classes, within the summation bound (a few ulps of the f64
/// sum) for shorter rows, which `loss` sweeps one row per vector lane.
///
/// Statistics of shards of a batch combine with [`merge`](CeStats::merge). The sums are held
/// in exact accumulators, so merging in any order or grouping gives the same bits; the merged
/// loss equals the one-call loss of the whole batch within the crate's summation bound (the
/// shards are summed separately), and the counts exactly.
///
/// Accuracy counts every row that is not ignored (unweighted, as top-k accuracy is usually
/// reported); the loss is weighted as [`CrossEntropy::loss`](crate::CrossEntropy::loss) is.
/// Ranks follow DESIGN's rule for ties: label `y` is within the top `k` iff
/// `#{c : x_c > x_y} + #{c < y : x_c == x_y} < k`, so top-1 is PyTorch's first-index argmax.
/// NaN logits compare neither greater nor equal, so they do not push a label down; such a row's
/// loss and entropy are NaN.
///
/// ```
/// use losskit::{CrossEntropy, Reduction};
/// let logits = [2.0f32, 0.5, -1.0, /* row 2 */ 0.0, 3.0, 1.0, /* row 3 */ 1.0, 1.0, 1.0];
/// let ce = CrossEntropy::new().top_k(2);
/// let first = ce.stats(&logits[..6], 3, &[0i64, 2])?;
/// let second = ce.stats(&logits[6..], 3, &[1i64])?;
/// let all = first.merge(&second);
/// assert_eq!(all.counted(), 3);
/// assert_eq!(all.accuracy(), 1.0 / 3.0); // row 1 only; row 3's tie goes to class 0
/// assert_eq!(all.top_k_accuracy(), 1.0); // every label is within the top 2
/// let whole = ce.stats(&logits, 3, &[0i64, 2, 1])?;
/// assert!((all.loss(Reduction::Mean) - whole.loss(Reduction::Mean)).abs() < 1e-6);
/// assert_eq!(all.merge(&first).counted(), second.merge(&first).merge(&first).counted());
/// # Ok::<(), losskit::LossError>(())
/// ```
///
/// With the `serde` feature, `CeStats` is `Serialize` and `Deserialize`, in a form that is
/// stable across versions and exact, so that statistics of shards computed in other processes
/// or machines merge to the same bits as in one process: a struct with `counted`, `top1`
/// (rows whose label is the top-1), `top_k` (rows whose label is within the top `k`), `k`
/// (`null` after merging different `k`), and the exact sums `loss`, `weight` (the summed
/// weights of counted rows) and `entropy`, each in the form of the crate's exact accumulator:
/// `{negative, exponent, digits, nan, infinities}`, the total being
/// `± Σ digits[j] · 2^(exponent + 32·j)`, exactly (`digits` are `u32`, least significant
/// first; `infinities` is `[+inf, -inf]` added).
///
/// For one row of loss `0.24...` (in JSON, with `serde_json`):
///
/// ```text
/// {"counted":1,"top1":1,"top_k":1,"k":5,
///  "loss":{"negative":false,"exponent":-66,"digits":[0,1048576,...],"nan":false,"infinities":[false,false]},
///  "weight":{"negative":false,"exponent":-42,"digits":[1048576],"nan":false,"infinities":[false,false]},
///  "entropy":{...}}
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CeStats {
    counted: u64,
    top1: u64,
    top_k: u64,
    /// The `k` of [`top_k_accuracy`](CeStats::top_k_accuracy); `None` after merging
    /// statistics of different `k`.
    k: Option<usize>,
    loss: ExactSum,
    weight: ExactSum,
    entropy: ExactSum,
}

impl CeStats {
    /// The statistics of one call's rows.
    pub(crate) fn from_total(total: CeTotal, k: usize) -> CeStats {
        CeStats {
            counted: total.loss.count,
            top1: total.top1,
            top_k: total.top_k,
            k: Some(k),
            loss: ExactSum::of(total.loss.loss),
            weight: ExactSum::of(total.loss.weight),
            entropy: ExactSum::of(total.entropy),
        }
    }

    /// The statistics of both batches: counts and exact sums added, so the result does not
    /// depend on the order or grouping of merges. Merging statistics taken with different
    /// `top_k` makes [`top_k_accuracy`](CeStats::top_k_accuracy) NaN.
    pub fn merge(&self, other: &CeStats) -> CeStats {
        CeStats {
            // Wrapping, so that no input (a deserialized one included) panics, and the counts
            // still add associatively; a real batch never reaches 2^64 rows.
            counted: self.counted.wrapping_add(other.counted),
            top1: self.top1.wrapping_add(other.top1),
            top_k: self.top_k.wrapping_add(other.top_k),
            k: self.k.filter(|&k| other.k == Some(k)),
            loss: self.loss.merge(&other.loss),
            weight: self.weight.merge(&other.weight),
            entropy: self.entropy.merge(&other.entropy),
        }
    }

    /// Rows that were scored (not ignored).
    pub fn counted(&self) -> u64 {
        self.counted
    }

    /// The loss: the sum, or the mean as [`CrossEntropy::loss`](crate::CrossEntropy::loss)
    /// takes it (divided by the summed weights of the counted rows; NaN when none).
    pub fn loss(&self, reduction: Reduction) -> f64 {
        match reduction {
            Reduction::Sum => self.loss.value(),
            Reduction::Mean => self.loss.value() / self.weight.value(),
        }
    }

    /// The share of counted rows whose label is the first-index argmax; NaN when none.
    pub fn accuracy(&self) -> f64 {
        self.top1 as f64 / self.counted as f64
    }

    /// The share of counted rows whose label is within the top `k` (the builder's
    /// [`top_k`](crate::CrossEntropy::top_k), 5 by default); NaN when none.
    pub fn top_k_accuracy(&self) -> f64 {
        match self.k {
            Some(_) => self.top_k as f64 / self.counted as f64,
            None => f64::NAN,
        }
    }

    /// The `k` of [`top_k_accuracy`](CeStats::top_k_accuracy) (`None` after merging statistics
    /// of different `k`).
    pub fn k(&self) -> Option<usize> {
        self.k
    }

    /// The mean over counted rows of the softmax's entropy `-Σ p log p`, in nats; NaN when none.
    pub fn mean_entropy(&self) -> f64 {
        self.entropy.value() / self.counted as f64
    }

    /// `exp` of the mean loss.
    pub fn perplexity(&self) -> f64 {
        self.loss(Reduction::Mean).exp()
    }
}
