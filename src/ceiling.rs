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
        let mut total = s
            .iter()
            .fold(V::splat(isa, T::ZERO), |t, &x| t + x)
            .reduce_sum();
        for (&x, &y) in a[whole..].iter().zip(&b[whole..]) {
            total = total + x + y;
        }
        total
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
        let mut tail = T::ZERO;
        for _ in 0..self.passes {
            for xv in self.x[..whole].chunks_exact(4 * lanes) {
                for (k, s) in s.iter_mut().enumerate() {
                    let c = V::load(isa, &xv[k * lanes..]) - one;
                    *s = *s + math::exp_nonpositive_clamped(isa, c);
                }
            }
            for &x in &self.x[whole..] {
                tail = tail + (x - T::ONE).exp();
            }
        }
        ((s[0] + s[1]) + (s[2] + s[3])).reduce_sum() + tail
    }
}
