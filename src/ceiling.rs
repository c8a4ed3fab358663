//! The memory-read ceiling: the fastest this crate knows how to read the bytes a two-input loss
//! reads, with nothing else done to them. Benchmarks and the quickstart report each kernel's
//! throughput as a fraction of it. Deliberately independent of the reduce driver: a plain SIMD
//! sum, eight vector accumulators wide, on the best tier.

use crate::simd::dispatch::Resolved;
use crate::simd::{Kernel, Lanes};
use crate::Float;

struct ReadSum<'a, T> {
    a: &'a [T],
    b: &'a [T],
}

impl<T: Float> Kernel<T> for ReadSum<'_, T> {
    type Output = T;

    #[inline(always)]
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
