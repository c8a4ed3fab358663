//! The kernels' non-generic entry points, one set per storage type, compiled in this crate.
//!
//! The public functions are generic over [`Storage`] and [`Label`](crate::Label); if they
//! called the generic drivers directly, every dependent crate would compile every tier of every
//! kernel it calls (measured: 23–26 s for a release rebuild of a dependent's `main.rs` that
//! calls the losses). Instead they check their arguments and call one of these methods, which
//! the sealed storage trait implements for `f32`, `f64`, `bf16` and `f16` here — non-generic
//! functions, so their code is generated once, in this crate.

use crate::engine::{each_per_class, sum_and_grad_per_class, sum_per_class, LossSum, RowsOut};
use crate::loss::ce_stats::CeTotal;
use crate::loss::cross_entropy::Softmax;
use crate::loss::ctc::{CtcOut, CtcSpec};
use crate::loss::kl_div_logits::KlRows;
use crate::loss::nll::NllRows;
use crate::loss::parity::cosine::CosineEmbeddingRows;
use crate::loss::parity::multi_margin::MultiMarginRows;
use crate::loss::parity::multilabel::MultilabelSoftMarginRows;
use crate::loss::parity::multilabel_margin::MultilabelMarginRows;
use crate::loss::parity::triplet::TripletRows;
use crate::loss::pos_weight::PerClassBceLogitsMap;
use crate::loss::vocab_shard::{VocabGrad, VocabRow, VocabSweep};
use crate::loss::{Pointwise, Pointwise3};
use crate::storage::{bf16, f16, Storage};

/// The entry points (a supertrait of the sealed half of [`Storage`]).
pub trait Entry {
    /// `Σ map(a[i], b[i])`.
    fn pointwise_sum(
        map: &Pointwise<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
    ) -> LossSum
    where
        Self: Storage;
    /// The sum, writing `scale · d map / d a` to `grad`.
    fn pointwise_sum_and_grad(
        map: &Pointwise<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        grad: &mut [Self],
        scale: <Self as Storage>::Compute,
    ) -> LossSum
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
    /// `Σ map(a[i], b[i], c[i])`.
    fn pointwise3_sum(
        map: &Pointwise3<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        c: &[Self],
    ) -> LossSum
    where
        Self: Storage;
    /// The sum, writing `scale · d map / d a` to `grad` and, for a map with a second
    /// differentiable input, `scale ·` its derivative to `grad2` (empty otherwise).
    #[allow(clippy::too_many_arguments)]
    fn pointwise3_sum_and_grad(
        map: &Pointwise3<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        c: &[Self],
        grad: &mut [Self],
        grad2: &mut [Self],
        scale: <Self as Storage>::Compute,
    ) -> LossSum
    where
        Self: Storage;
    /// `out[i] = map(a[i], b[i], c[i])`.
    fn pointwise3_each(
        map: &Pointwise3<<Self as Storage>::Compute>,
        a: &[Self],
        b: &[Self],
        c: &[Self],
        out: &mut [<Self as Storage>::Compute],
    ) where
        Self: Storage;
    /// `Σ w[i]·bce_with_logits(a[i], b[i]; pos_weight[i % classes])` over a `[rows, classes]`
    /// matrix read flat (`w[i] = 1` without `weight`).
    fn per_class_sum(
        a: &[Self],
        b: &[Self],
        weight: Option<&[Self]>,
        pos_weight: &[Self],
    ) -> LossSum
    where
        Self: Storage;
    /// The sum, writing `scale ·` its derivative with respect to `a` to `grad`.
    fn per_class_sum_and_grad(
        a: &[Self],
        b: &[Self],
        weight: Option<&[Self]>,
        pos_weight: &[Self],
        grad: &mut [Self],
        scale: <Self as Storage>::Compute,
    ) -> LossSum
    where
        Self: Storage;
    /// Each element's term of [`per_class_sum`](Entry::per_class_sum) into `out`.
    fn per_class_each(
        a: &[Self],
        b: &[Self],
        weight: Option<&[Self]>,
        pos_weight: &[Self],
        out: &mut [<Self as Storage>::Compute],
    ) where
        Self: Storage;
    /// `Σ a[i]` (the summed weights of a weighted mean).
    fn total(a: &[Self]) -> LossSum
    where
        Self: Storage;
    /// Every row of a softmax cross-entropy call over `x`, writing what `out` asks for.
    fn softmax_rows(
        spec: &Softmax<'_, <Self as Storage>::Compute, false>,
        x: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a cross-entropy call over `x` with its eval statistics.
    fn softmax_stats(spec: &Softmax<'_, <Self as Storage>::Compute, true>, x: &[Self]) -> CeTotal
    where
        Self: Storage;
    /// Every row of an nll call over `x`, writing what `out` asks for.
    fn nll_rows(
        spec: &NllRows<'_, <Self as Storage>::Compute>,
        x: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `kl_div_logits` call over the student `x` and the teacher `y`, writing
    /// what `out` asks for (`x` empty: in place over the student in `out`).
    fn kl_rows(
        spec: &KlRows<<Self as Storage>::Compute>,
        x: &[Self],
        y: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `multilabel_soft_margin` call over the logits `x` and the targets `y`,
    /// writing what `out` asks for.
    fn multilabel_soft_margin_rows(
        spec: &MultilabelSoftMarginRows<'_, <Self as Storage>::Compute>,
        x: &[Self],
        y: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `multi_margin` call over `x`, writing what `out` asks for.
    fn multi_margin_rows(
        spec: &MultiMarginRows<'_, <Self as Storage>::Compute>,
        x: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `multilabel_margin` call (its input is in `spec`), writing what `out`
    /// asks for.
    fn multilabel_margin_rows(
        spec: &MultilabelMarginRows<'_, Self>,
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `cosine_embedding` call over `x` and `y` (the gradient, in the grad
    /// modes, with respect to `x`), writing what `out` asks for.
    fn cosine_embedding_rows(
        spec: &CosineEmbeddingRows<'_, Self>,
        x: &[Self],
        y: &[Self],
        out: RowsOut<'_, Self>,
    ) -> LossSum
    where
        Self: Storage;
    /// Every row of a `triplet_margin` call (the distances read from the spec's three inputs;
    /// `x` the one whose gradient a grad mode writes), writing what `out` asks for.
    fn triplet_rows(spec: &TripletRows<'_, Self>, x: &[Self], out: RowsOut<'_, Self>) -> LossSum
    where
        Self: Storage;
    /// Each row's partial over a vocabulary shard.
    fn vocab_rows(
        spec: &VocabSweep<'_, <Self as Storage>::Compute, false>,
        x: &[Self],
        out: &mut [VocabRow],
    ) where
        Self: Storage;
    /// Each row's partial over a vocabulary shard, with the rank counts.
    fn vocab_stats_rows(
        spec: &VocabSweep<'_, <Self as Storage>::Compute, true>,
        x: &[Self],
        out: &mut [VocabRow],
    ) where
        Self: Storage;
    /// A vocabulary shard's gradient from the merged partials.
    fn vocab_grad(
        spec: &VocabGrad<'_, <Self as Storage>::Compute>,
        x: &[Self],
        out: RowsOut<'_, Self>,
    ) where
        Self: Storage;
    /// Every sample of a ctc call over `x`, computing what `out` asks for.
    fn ctc(spec: &CtcSpec<'_>, x: &[Self], out: CtcOut<'_, Self>) -> LossSum
    where
        Self: Storage;
}

macro_rules! impl_entry {
    ($t:ident, $c:ident) => {
        impl Entry for $t {
            fn pointwise_sum(map: &Pointwise<$c>, a: &[$t], b: &[$t]) -> LossSum {
                map.sum(a, b)
            }
            fn pointwise_sum_and_grad(
                map: &Pointwise<$c>,
                a: &[$t],
                b: &[$t],
                grad: &mut [$t],
                scale: $c,
            ) -> LossSum {
                map.sum_and_grad(a, b, grad, scale)
            }
            fn pointwise_each(map: &Pointwise<$c>, a: &[$t], b: &[$t], out: &mut [$c]) {
                map.each(a, b, out)
            }
            fn pointwise3_sum(map: &Pointwise3<$c>, a: &[$t], b: &[$t], c: &[$t]) -> LossSum {
                map.sum(a, b, c)
            }
            fn pointwise3_sum_and_grad(
                map: &Pointwise3<$c>,
                a: &[$t],
                b: &[$t],
                c: &[$t],
                grad: &mut [$t],
                grad2: &mut [$t],
                scale: $c,
            ) -> LossSum {
                map.sum_and_grad(a, b, c, grad, grad2, scale)
            }
            fn pointwise3_each(map: &Pointwise3<$c>, a: &[$t], b: &[$t], c: &[$t], out: &mut [$c]) {
                map.each(a, b, c, out)
            }
            fn per_class_sum(
                a: &[$t],
                b: &[$t],
                weight: Option<&[$t]>,
                pos_weight: &[$t],
            ) -> LossSum {
                sum_per_class(a, b, weight, pos_weight, PerClassBceLogitsMap)
            }
            fn per_class_sum_and_grad(
                a: &[$t],
                b: &[$t],
                weight: Option<&[$t]>,
                pos_weight: &[$t],
                grad: &mut [$t],
                scale: $c,
            ) -> LossSum {
                let map = PerClassBceLogitsMap;
                sum_and_grad_per_class(a, b, weight, pos_weight, grad, scale, map)
            }
            fn per_class_each(
                a: &[$t],
                b: &[$t],
                weight: Option<&[$t]>,
                pos_weight: &[$t],
                out: &mut [$c],
            ) {
                each_per_class(a, b, weight, pos_weight, out, PerClassBceLogitsMap)
            }
            fn total(a: &[$t]) -> LossSum {
                crate::loss::total(a)
            }
            fn softmax_rows(
                spec: &Softmax<'_, $c, false>,
                x: &[$t],
                out: RowsOut<'_, $t>,
            ) -> LossSum {
                spec.run(x, out)
            }
            fn softmax_stats(spec: &Softmax<'_, $c, true>, x: &[$t]) -> CeTotal {
                spec.run_stats(x)
            }
            fn nll_rows(spec: &NllRows<'_, $c>, x: &[$t], out: RowsOut<'_, $t>) -> LossSum {
                spec.run(x, out)
            }
            fn kl_rows(spec: &KlRows<$c>, x: &[$t], y: &[$t], out: RowsOut<'_, $t>) -> LossSum {
                spec.run(x, y, out)
            }
            fn multilabel_soft_margin_rows(
                spec: &MultilabelSoftMarginRows<'_, $c>,
                x: &[$t],
                y: &[$t],
                out: RowsOut<'_, $t>,
            ) -> LossSum {
                spec.run(x, y, out)
            }
            fn multi_margin_rows(
                spec: &MultiMarginRows<'_, $c>,
                x: &[$t],
                out: RowsOut<'_, $t>,
            ) -> LossSum {
                spec.run(x, out)
            }
            fn multilabel_margin_rows(
                spec: &MultilabelMarginRows<'_, $t>,
                out: RowsOut<'_, $t>,
            ) -> LossSum {
                spec.run(out)
            }
            fn cosine_embedding_rows(
                spec: &CosineEmbeddingRows<'_, $t>,
                x: &[$t],
                y: &[$t],
                out: RowsOut<'_, $t>,
            ) -> LossSum {
                spec.run(x, y, out)
            }
            fn triplet_rows(spec: &TripletRows<'_, $t>, x: &[$t], out: RowsOut<'_, $t>) -> LossSum {
                spec.run(x, out)
            }
            fn vocab_rows(spec: &VocabSweep<'_, $c, false>, x: &[$t], out: &mut [VocabRow]) {
                spec.run(x, out)
            }
            fn vocab_stats_rows(spec: &VocabSweep<'_, $c, true>, x: &[$t], out: &mut [VocabRow]) {
                spec.run(x, out)
            }
            fn vocab_grad(spec: &VocabGrad<'_, $c>, x: &[$t], out: RowsOut<'_, $t>) {
                spec.run(x, out)
            }
            fn ctc(spec: &CtcSpec<'_>, x: &[$t], out: CtcOut<'_, $t>) -> LossSum {
                spec.run(x, out)
            }
        }
    };
}
impl_entry!(f32, f32);
impl_entry!(f64, f64);
impl_entry!(bf16, f32);
impl_entry!(f16, f32);
