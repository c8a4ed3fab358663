//! The memory-read ceiling: the fastest this crate knows how to read the bytes a two-input loss
//! reads, with nothing else done to them. Benchmarks and the quickstart report each kernel's
//! throughput as a fraction of it. Deliberately independent of the reduce driver: a plain SIMD
//! sum, eight vector accumulators wide, on the best tier.

use crate::simd::dispatch::Resolved;
use crate::simd::{math, Kernel, Lanes};
use crate::Float;

struct ReadSum<'a, T> {
    a: &'a [T],
    b: &'a [T],
}

impl<T: Float> Kernel<T> for ReadSum<'_, T> {
    type Output = T;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> T {
        const ACCS: usize = 8;
        let lanes = V::LANES;
        let step = ACCS * lanes;
        let n = self.a.len().min(self.b.len());
        let (a, b) = (&self.a[..n], &self.b[..n]);
        let mut s = [V::splat(isa, T::ZERO); ACCS];
        let whole = n - n % step;
        for (av, bv) in a[..whole]
            .chunks_exact(step)
            .zip(b[..whole].chunks_exact(step))
        {
            for (k, s) in s.iter_mut().enumerate() {
                *s = *s + V::load(isa, &av[k * lanes..]) + V::load(isa, &bv[k * lanes..]);
            }
        }
        // The rest as whole vectors and one partial load, not element by element: a scalar
        // chain of up to `2·step` dependent adds would cost a small call (1000 elements) more
        // than its vectors.
        let (a, b) = (&a[whole..], &b[whole..]);
        let full = a.len() - a.len() % lanes;
        for (k, (av, bv)) in a[..full]
            .chunks_exact(lanes)
            .zip(b[..full].chunks_exact(lanes))
            .enumerate()
        {
            s[k] = s[k] + V::load(isa, av) + V::load(isa, bv);
        }
        let zero = T::ZERO;
        s[ACCS - 1] = s[ACCS - 1]
            + V::load_prefix(isa, &a[full..], zero)
            + V::load_prefix(isa, &b[full..], zero);
        s.iter()
            .fold(V::splat(isa, T::ZERO), |t, &x| t + x)
            .reduce_sum()
    }
}

/// Sums every element of `a` and `b` (over their common length) on one thread, at the speed of
/// reading them: the reference point for throughput figures. Not a loss; hidden from the docs.
///
/// ```
/// assert_eq!(losskit::read_ceiling(&[1.0f32, 2.0], &[3.0, 4.0]), 10.0);
/// ```
#[doc(hidden)]
pub fn read_ceiling<T: Float>(a: &[T], b: &[T]) -> T {
    Resolved::active().run(ReadSum { a, b })
}

/// `Σ e^(x - 1)` over `x` on the active tier, `passes` times: one vector `exp` (the one the
/// cross-entropy sweep uses, `exp_nonpositive_clamped`) and one add per element, four chains
/// in flight, nothing else. Over a buffer that stays in L1 (a few KiB) its time per element is
/// the exp ceiling: what an exp-bound kernel cannot beat on this tier (DESIGN.md, "Measuring
/// against the machine's limit"). Not a loss; hidden from the docs.
///
/// ```
/// let x = [1.0f32; 64];
/// assert_eq!(losskit::exp_ceiling(&x, 2), 128.0);
/// ```
#[doc(hidden)]
pub fn exp_ceiling<T: Float>(x: &[T], passes: usize) -> T {
    Resolved::active().run(ExpSum { x, passes })
}

struct ExpSum<'a, T> {
    x: &'a [T],
    passes: usize,
}

impl<T: Float> Kernel<T> for ExpSum<'_, T> {
    type Output = T;

    #[cfg_attr(not(losskit_unoptimized), inline(always))]
    fn run<V: Lanes<Elem = T>>(self, isa: V::Isa) -> T {
        let lanes = V::LANES;
        let one = V::splat(isa, T::ONE);
        let mut s = [V::splat(isa, T::ZERO); 4];
        let whole = self.x.len() - self.x.len() % (4 * lanes);
        // The rest as whole vectors and one partial load (whose padding, -inf, adds e^-inf = 0):
        // every element costs one vector exp's share, as in the loops it bounds.
        let rest = &self.x[whole..];
        let full = rest.len() - rest.len() % lanes;
        let pad = T::from_f64(f64::NEG_INFINITY);
        for _ in 0..self.passes {
            for xv in self.x[..whole].chunks_exact(4 * lanes) {
                for (k, s) in s.iter_mut().enumerate() {
                    let c = V::load(isa, &xv[k * lanes..]) - one;
                    *s = *s + math::exp_nonpositive_clamped(isa, c);
                }
            }
            for (k, xv) in rest[..full].chunks_exact(lanes).enumerate() {
                let c = V::load(isa, xv) - one;
                s[k] = s[k] + math::exp_nonpositive_clamped(isa, c);
            }
            if full < rest.len() {
                let c = V::load_prefix(isa, &rest[full..], pad) - one;
                s[3] = s[3] + math::exp_nonpositive_clamped(isa, c);
            }
        }
        ((s[0] + s[1]) + (s[2] + s[3])).reduce_sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{with_tier, Tier};

    #[test]
    fn the_ceilings_count_every_element_on_every_tier() {
        // Ragged lengths: whole blocks, whole vectors and a partial one (every path), small
        // integers so that every sum is exact.
        for tier in Tier::available() {
            for n in [0usize, 1, 15, 16, 17, 127, 128, 129, 1000, 1023] {
                let a: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
                let b: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
                let want: f32 = a.iter().chain(&b).sum();
                let (read, exp) = with_tier(tier, || {
                    (read_ceiling(&a, &b), exp_ceiling(&vec![1.0f32; n], 3))
                })
                .unwrap();
                assert_eq!(read, want, "{tier}: read_ceiling over {n}");
                assert_eq!(exp, (3 * n) as f32, "{tier}: exp_ceiling over {n}");
                let a64: Vec<f64> = a.iter().map(|&v| v.into()).collect();
                let b64: Vec<f64> = b.iter().map(|&v| v.into()).collect();
                let read64 =
                    with_tier(tier, || read_ceiling(&a64, &b64[..n.saturating_sub(1)])).unwrap();
                let want64: f64 = a64[..n.saturating_sub(1)]
                    .iter()
                    .chain(&b64[..n.saturating_sub(1)])
                    .sum();
                assert_eq!(
                    read64, want64,
                    "{tier}: f64 read_ceiling over {n} (unequal lengths)"
                );
            }
        }
    }
}
