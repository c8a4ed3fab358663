//! Labels outside a range, found at the speed of reading them: the check that runs before a
//! row-wise loss over a whole target matrix (multilabel_margin reads one as large as its
//! scores) or a long label column (cross-entropy's, with PyTorch's `ignore_index`).

use crate::simd::dispatch::Resolved;
use crate::simd::{Kernel, Lanes};

/// Labels compared per step: a chunk is tested whole, branch-free, and only a chunk with a
/// label outside the range is looked at label by label.
const CHUNK: usize = 256;

/// The scan as a kernel, so that it runs on the active tier: compiled with its target
/// features, the compares are as wide as its vectors (about 15% faster than the baseline
/// build's SSE2 over a 32 MB matrix on a Sapphire Rapids core).
struct Scan<'a, L> {
    labels: &'a [L],
    lo: L,
    last: L,
    ignore: Option<L>,
}

/// Whether any of `labels` is below `lo` or above `last`. `#[inline(always)]`, so that it is
/// compiled into the tier's kernel (a closure there would not get its target features).
#[cfg_attr(not(losskit_unoptimized), inline(always))]
pub(crate) fn any_in<L: Copy + PartialOrd>(labels: &[L], lo: L, last: L) -> bool {
    labels
        .iter()
        .fold(false, |any, &t| any | (t < lo) | (t > last))
}

impl<L: Copy + PartialOrd + Send + Sync> Kernel<f32> for Scan<'_, L> {
    type Output = Result<usize, usize>;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = f32>>(self, _: V::Isa) -> Result<usize, usize> {
        let (lo, last) = (self.lo, self.last);
        let mut ignored = 0;
        for (c, chunk) in self.labels.chunks(CHUNK).enumerate() {
            if !any_in(chunk, lo, last) {
                continue;
            }
            for (i, &t) in chunk.iter().enumerate() {
                if (t < lo) | (t > last) {
                    match self.ignore {
                        Some(ignore) if t == ignore => ignored += 1,
                        _ => return Err(c * CHUNK + i),
                    }
                }
            }
        }
        Ok(ignored)
    }
}

/// The number of `labels` outside `lo..=last` that equal `ignore`, or the index of the first
/// that is outside and does not; on the active tier, one pass.
pub(crate) fn scan<L: Copy + PartialOrd + Send + Sync>(
    labels: &[L],
    lo: L,
    last: L,
    ignore: Option<L>,
) -> Result<usize, usize> {
    Resolved::active().run(Scan {
        labels,
        lo,
        last,
        ignore,
    })
}

#[cfg(test)]
mod tests {
    use super::scan;
    use crate::Tier;

    /// A bad label at every position, alone and among ignored ones before and after it, at
    /// lengths around the chunk, on every tier.
    #[test]
    fn finds_the_first_bad_label_on_every_tier() {
        for tier in Tier::available() {
            crate::with_tier(tier, || {
                for len in [0usize, 1, 2, 255, 256, 257, 511, 513, 1000] {
                    let mut labels = vec![3i64; len];
                    assert_eq!(scan(&labels, 0, 9, None), Ok(0), "{tier} len {len}");
                    for at in 0..len {
                        for bad in [-1i64, 10, i64::MIN, i64::MAX] {
                            labels[at] = bad;
                            assert_eq!(scan(&labels, 0, 9, None), Err(at), "{tier} {len} {at}");
                        }
                        // Ignored labels before and after it: counted, then the bad one.
                        labels[at] = -100;
                        assert_eq!(scan(&labels, 0, 9, Some(-100)), Ok(1), "{tier} {len} {at}");
                        labels[len - 1] = -100;
                        labels[0] = -100;
                        let ignored = if len == 1 {
                            1
                        } else {
                            2 + usize::from(at != 0 && at != len - 1)
                        };
                        assert_eq!(
                            scan(&labels, 0, 9, Some(-100)),
                            Ok(ignored),
                            "{tier} {len} {at}"
                        );
                        if at != 0 && at != len - 1 {
                            labels[at] = 12;
                            assert_eq!(
                                scan(&labels, 0, 9, Some(-100)),
                                Err(at),
                                "{tier} {len} {at}"
                            );
                        }
                        labels.fill(3);
                    }
                }
            })
            .unwrap();
        }
    }
}
