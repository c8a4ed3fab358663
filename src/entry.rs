//! The kernels' non-generic entry points, one set per storage type, compiled in this crate.
//!
//! The public functions are generic over [`Storage`] and [`Label`](crate::Label); if they
//! called the generic drivers directly, every dependent crate would compile every tier of every
//! kernel it calls (measured: 23–26 s for a release rebuild of a dependent's `main.rs` that
//! calls the losses). Instead they check their arguments and call one of these methods, which
//! the sealed storage trait implements for `f32`, `f64`, `bf16` and `f16` here — non-generic
//! functions, so their code is generated once, in this crate.

use crate::loss::cross_entropy::Job;
use crate::loss::Pointwise;
use crate::storage::{bf16, f16, Storage};

/// The entry points (a supertrait of the sealed half of [`Storage`]).
pub trait Entry {
    /// `Σ map(a[i], b[i])` in `f64`.
    fn pointwise_sum(map: &Pointwise<<Self as Storage>::Compute>, a: &[Self], b: &[Self]) -> f64
    where
        Self: Storage;
    /// The sum, writing `scale · d map / d a` to `grad`.
    fn pointwise_sum_and_grad(
        map: &Pointwise<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        grad: &mut [Self],
        scale: <Self as Storage>::Compute,
    ) -> f64
    where
        Self: Storage;
    /// `out[i] = map(a[i], b[i])`.
    fn pointwise_each(
        map: &Pointwise<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        out: &mut [<Self as Storage>::Compute],
    ) where
        Self: Storage;
    /// Every row of a softmax job: `[Σ loss, Σ weight]`, each row's loss into `out` if given.
    fn softmax_rows(
        job: &Job<'_, Self>,
        out: Option<&mut [<Self as Storage>::Compute]>,
    ) -> [f64; 2]
    where
        Self: Storage;
    /// Every row of a softmax job with its gradient times `scale` into `grad` (which holds the
    /// logits when the job has none: in place).
    fn softmax_rows_grad(job: &Job<'_, Self>, grad: &mut [Self], scale: f64) -> [f64; 2]
    where
        Self: Storage;
}

macro_rules! impl_entry {
    ($t:ident, $c:ident) => {
        impl Entry for $t {
            fn pointwise_sum(map: &Pointwise<$c>, a: &[$t], b: &[$t]) -> f64 {
                map.sum(a, b)
            }
            fn pointwise_sum_and_grad(
                map: &Pointwise<$c>,
                a: &[$t],
                b: &[$t],
                grad: &mut [$t],
                scale: $c,
            ) -> f64 {
                map.sum_and_grad(a, b, grad, scale)
            }
            fn pointwise_each(map: &Pointwise<$c>, a: &[$t], b: &[$t], out: &mut [$c]) {
                map.each(a, b, out)
            }
            fn softmax_rows(job: &Job<'_, $t>, out: Option<&mut [$c]>) -> [f64; 2] {
                job.run::<$c>(out, None)
            }
            fn softmax_rows_grad(job: &Job<'_, $t>, grad: &mut [$t], scale: f64) -> [f64; 2] {
                job.run::<$t>(Some(grad), Some(scale))
            }
        }
    };
}
impl_entry!(f32, f32);
impl_entry!(f64, f64);
impl_entry!(bf16, f32);
impl_entry!(f16, f32);
