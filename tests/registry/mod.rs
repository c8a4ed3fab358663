//! The one table of losses that the test suites and the fuzz targets iterate.
//!
//! A loss is one entry here: its id as the golden files spell it, its kind, how each form is
//! called through the public API for each storage type, its scalar twin in
//! `losskit::reference`, the domain of its inputs and parameter, and the errors it must give.
//! A suite loops over [`POINTWISE`] (or expands [`pointwise_losses!`] for one test module per
//! loss), so a loss added here is tested by every suite that iterates the table.
//!
//! This file is shared: `tests/suite/main.rs` and the fuzz targets include it with
//! `#[path = ...] mod registry;`, so it depends on `losskit` and `std` only (no proptest, no
//! arbitrary); each side builds its own generators from the plain data here.
#![allow(dead_code)]

use losskit::reference::RowTarget;
use losskit::{bf16, f16, LossError, Reduction, Storage};

/// How a loss reads its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Two equally long slices (input, target) and at most one scalar parameter.
    Pointwise,
    /// `[rows, classes]` logits and one class label per row.
    RowsWithLabels,
    /// `[rows, classes]` logits and a `[rows, classes]` probability target.
    RowsWithProbs,
}

/// The values an argument is meant to hold, and whether the loss checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Any float; NaN and infinities are data, not errors.
    Real,
    /// `[0, 1]` by meaning (soft labels), but not checked: PyTorch accepts anything.
    UnitUnchecked,
    /// `[0, 1]`, checked: anything else, NaN included, is `LossError::NotAProbability`.
    Probability,
    /// `>= 0` by meaning (a rate, a probability whose log is taken), not checked: PyTorch
    /// computes NaN below 0, and so does the loss.
    NonNegative,
}

impl Domain {
    /// Whether the loss rejects `v` for this argument.
    pub fn rejects(self, v: f64) -> bool {
        self == Domain::Probability && !(0.0..=1.0).contains(&v)
    }

    /// `v` moved into the domain the way the property tests do it: `|v|`'s fractional part for
    /// the unit domains, `v` itself for [`Domain::Real`].
    pub fn fold(self, v: f64) -> f64 {
        match self {
            Domain::Real => v,
            Domain::UnitUnchecked | Domain::Probability => v.abs().fract(),
            Domain::NonNegative => v.abs(),
        }
    }

    /// The first element this domain rejects, as the error the loss must report for argument
    /// `name` (`"input"` or `"target"`).
    pub fn first_error(
        self,
        name: &'static str,
        values: impl Iterator<Item = f64>,
    ) -> Option<LossError> {
        values
            .enumerate()
            .find(|&(_, v)| self.rejects(v))
            .map(|(index, value)| LossError::NotAProbability { name, index, value })
    }
}

/// A loss's scalar parameter (`delta`, `beta`, `epsilon`, `pos_weight`, `margin`, `eps`,
/// `alpha`, `gamma`). A loss with more options than one has one entry per fixed combination of
/// the others (`poisson_nll_full`, `sigmoid_focal_gamma`, ...).
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Its name in `LossError::InvalidParameter`.
    pub name: &'static str,
    /// Its requirement as `LossError::InvalidParameter` states it.
    pub requirement: &'static str,
    /// Whether it is valid; anything else must be rejected with `InvalidParameter`.
    pub valid: fn(f64) -> bool,
    /// Values it must reject, with their `Display` spelling.
    pub rejected: &'static [(f64, &'static str)],
    /// Values it must accept, edges included.
    pub accepted: &'static [f64],
    /// Whether the formula changes where `|x - y|` equals the parameter (huber's `delta`,
    /// smooth_l1's `beta`): finite differences must stay away from there.
    pub kink: bool,
}

impl Param {
    /// The error a call with parameter `value` must return, if any.
    pub fn error(&self, value: f64) -> Option<LossError> {
        (!(self.valid)(value)).then_some(LossError::InvalidParameter {
            name: self.name,
            value,
            requirement: self.requirement,
        })
    }
}

/// What every element of a loss is, for inputs in its domain that are not NaN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// `>= 0` or `+inf` (the regression losses; IEEE arithmetic on infinities may give NaN).
    NonNegative,
    /// In `[0, 100]`: logs are clamped at -100, as PyTorch's `binary_cross_entropy`.
    UpTo100,
    /// Finite wherever the inputs are moderate ([`Range::moderate`]); any sign (soft targets
    /// outside `[0, 1]` are not checked).
    FiniteWhenModerate,
    /// Any sign, and what IEEE arithmetic gives on large or infinite inputs (`inf`, `inf - inf`,
    /// `0·inf`), computed in the element type where the reference works in `f64`: so nothing
    /// is asserted of an element but that NaN in the *input* gives NaN (a NaN target need not:
    /// PyTorch's hinge_embedding gives it both terms, finite).
    Unbounded,
}

impl Range {
    /// Whether no intermediate of bce_with_logits can overflow: `|x| <= 1e15`, `|t| <= 1e6`
    /// and a parameter `<= 1e6` keep every intermediate below 1e28.
    pub fn moderate(x: f64, t: f64, param: Option<f64>) -> bool {
        x.abs() <= 1e15 && t.abs() <= 1e6 && param.is_none_or(|p| p.abs() <= 1e6)
    }
}

/// The public-API forms of one pointwise loss for storage `S`. `param` is the loss's scalar
/// parameter: `None` calls the form without it (the plain function), and a loss whose
/// parameter is not [`Pointwise::param_optional`] is never called with `None`.
// The fn-pointer types are spelled out so that each field reads as the API call it stands for.
#[allow(clippy::type_complexity)]
pub struct PointwiseForms<S: Storage> {
    /// The reduced loss (`mse`, `Bce::loss`, ...).
    pub reduce: fn(&[S], &[S], Option<S::Compute>, Reduction) -> Result<S::Compute, LossError>,
    /// The unreduced loss into `out` (`mse_each`, ...).
    pub each: fn(&[S], &[S], Option<S::Compute>, &mut [S::Compute]) -> Result<(), LossError>,
    /// The fused loss and gradient (`mse_and_grad`, ...).
    pub and_grad:
        fn(&[S], &[S], Option<S::Compute>, Reduction, &mut [S]) -> Result<S::Compute, LossError>,
}

/// The scalar twins of one pointwise loss in `losskit::reference`, in compute type `T`.
pub struct PointwiseReference<T> {
    /// The loss of one element.
    pub loss: fn(T, T, Option<T>) -> T,
    /// Its derivative with respect to the input.
    pub grad: fn(T, T, Option<T>) -> T,
}

/// One pointwise loss: an entry of [`POINTWISE`].
pub struct Pointwise {
    /// The loss's name as the golden files spell it (`Case::loss`), and in failure messages.
    pub id: &'static str,
    /// Always [`Kind::Pointwise`]; kept so that a suite over every kind can match on it.
    pub kind: Kind,
    /// Its scalar parameter, if it has one.
    pub param: Option<Param>,
    /// Whether the loss also has a form without its parameter (`bce` beside
    /// `Bce::epsilon`, `bce_with_logits` beside `BceWithLogits::pos_weight`).
    pub param_optional: bool,
    /// The parameter settings the deterministic suites run it at (`None`: without it). For
    /// the losses that predate the registry: every value any suite used before it.
    pub settings: &'static [Option<f64>],
    /// The domain of the first argument.
    pub input: Domain,
    /// The domain of the second argument.
    pub target: Domain,
    /// What its elements are.
    pub range: Range,
    /// The size of the terms its gradient is a difference of, at parameter setting `p`:
    /// rounding errors of the gradient are relative to it, not to the result
    /// (`lw·sigmoid - pw·t` for bce_with_logits with a `pos_weight`).
    pub grad_terms: fn(Option<f64>) -> f64,
    /// Whether every `*_each` element equals the reference bit for bit, on every tier and for
    /// any input: exact formulas without vector `exp`/`ln`. The bit-exact differential suites
    /// (`pointwise_props`, fuzz `differential`) run only these.
    pub exact: bool,
    /// Its forms over `f32` slices (reach them generically with [`Stored::forms`]).
    pub f32: PointwiseForms<f32>,
    /// Its forms over `f64` slices.
    pub f64: PointwiseForms<f64>,
    /// Its forms over `bf16` slices (computing in `f32`).
    pub bf16: PointwiseForms<bf16>,
    /// Its forms over `f16` slices (computing in `f32`).
    pub f16: PointwiseForms<f16>,
    /// Its reference twins in `f32` (reach them generically with [`Computed::reference`]).
    pub reference_f32: PointwiseReference<f32>,
    /// Its reference twins in `f64`.
    pub reference_f64: PointwiseReference<f64>,
}

/// A row-wise call's target: one class label per row, or one probability row per row (in the
/// compute type `T`, as the API takes them).
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a, T> {
    /// Class labels (or the ignore index), one per row.
    Labels(&'a [i64]),
    /// `[rows, classes]` probabilities.
    Probs(&'a [T]),
}

/// A row-wise call's options, PyTorch's keyword arguments; `None` leaves PyTorch's default.
#[derive(Clone, Copy, Debug)]
pub struct RowOptions<'a, T> {
    /// Class weights (`[classes]`).
    pub weight: Option<&'a [T]>,
    /// The label of rows to ignore (PyTorch's default: -100).
    pub ignore_index: Option<i64>,
    /// Label smoothing in `[0, 1]`.
    pub label_smoothing: Option<f64>,
    /// PaLM's z-loss coefficient (cross-entropy only).
    pub z_loss: Option<f64>,
    /// Gemma 2's logit softcap (cross-entropy only).
    pub softcap: Option<f64>,
    /// The power of the hinge terms (multi_margin only).
    pub p: Option<u32>,
    /// The hinge margin (multi_margin only).
    pub margin: Option<f64>,
}

impl<T> Default for RowOptions<'_, T> {
    fn default() -> Self {
        RowOptions {
            weight: None,
            ignore_index: None,
            label_smoothing: None,
            z_loss: None,
            softcap: None,
            p: None,
            margin: None,
        }
    }
}

/// The public-API forms of one row-wise loss for storage `S`; `usize` is the class count.
// The fn-pointer types are spelled out so that each field reads as the API call it stands for.
#[allow(clippy::type_complexity)]
pub struct RowsForms<S: Storage> {
    /// The reduced loss (the builder's `loss` / `loss_probs`).
    pub reduce: fn(
        &[S],
        usize,
        Targets<'_, S::Compute>,
        RowOptions<'_, S::Compute>,
        Reduction,
    ) -> Result<S::Compute, LossError>,
    /// One loss per row into `out` (`each` / `each_probs`).
    pub each: fn(
        &[S],
        usize,
        Targets<'_, S::Compute>,
        RowOptions<'_, S::Compute>,
        &mut [S::Compute],
    ) -> Result<(), LossError>,
    /// The fused loss and gradient with respect to the logits.
    pub and_grad: fn(
        &[S],
        usize,
        Targets<'_, S::Compute>,
        RowOptions<'_, S::Compute>,
        Reduction,
        &mut [S],
    ) -> Result<S::Compute, LossError>,
    /// The fused loss with the gradient written over the logits, where the API has it.
    pub in_place: Option<
        fn(
            &mut [S],
            usize,
            Targets<'_, S::Compute>,
            RowOptions<'_, S::Compute>,
            Reduction,
        ) -> Result<S::Compute, LossError>,
    >,
    /// The free function, with PyTorch's defaults for every option.
    pub plain: fn(&[S], usize, Targets<'_, S::Compute>, Reduction) -> Result<S::Compute, LossError>,
}

/// One row-wise loss: an entry of [`ROWS`].
#[allow(clippy::type_complexity)]
pub struct Rows {
    /// The loss's name as the golden files spell it (`Case::loss`).
    pub id: &'static str,
    /// [`Kind::RowsWithLabels`] or [`Kind::RowsWithProbs`].
    pub kind: Kind,
    /// The options it takes, by the names the golden files give them in `params`.
    pub options: &'static [&'static str],
    /// Its forms over `f32` logits (reach them generically with [`Stored::rows_forms`]).
    pub f32: RowsForms<f32>,
    /// Its forms over `f64` logits.
    pub f64: RowsForms<f64>,
    /// Its forms over `bf16` logits (computing in `f32`).
    pub bf16: RowsForms<bf16>,
    /// Its forms over `f16` logits (computing in `f32`).
    pub f16: RowsForms<f16>,
    /// The reference loss of one row and the weight it adds to a weighted mean, in `f64`
    /// (`reference::cross_entropy_row`, `reference::nll_row`).
    pub reference: fn(&[f64], RowTarget<'_, f64>, RowOptions<'_, f64>) -> (f64, f64),
}

/// The storage types the registry has forms for: `f32`, `f64`, `bf16`, `f16`.
pub trait Stored: Storage {
    /// `loss`'s forms for this storage type.
    fn forms(loss: &Pointwise) -> &PointwiseForms<Self>;
    /// `loss`'s forms for this storage type.
    fn rows_forms(loss: &Rows) -> &RowsForms<Self>;
}

/// The compute types the reference twins are written in: `f32`, `f64`.
pub trait Computed: losskit::Float {
    /// `loss`'s reference twins in this type.
    fn reference(loss: &Pointwise) -> &PointwiseReference<Self>;
}

macro_rules! stored {
    ($($t:ident),*) => {$(
        impl Stored for $t {
            fn forms(loss: &Pointwise) -> &PointwiseForms<$t> {
                &loss.$t
            }
            fn rows_forms(loss: &Rows) -> &RowsForms<$t> {
                &loss.$t
            }
        }
    )*};
}
stored!(f32, f64, bf16, f16);

impl Computed for f32 {
    fn reference(loss: &Pointwise) -> &PointwiseReference<f32> {
        &loss.reference_f32
    }
}
impl Computed for f64 {
    fn reference(loss: &Pointwise) -> &PointwiseReference<f64> {
        &loss.reference_f64
    }
}

impl Pointwise {
    /// The reduced loss in storage `S`.
    pub fn reduce<S: Stored>(
        &self,
        x: &[S],
        y: &[S],
        p: Option<S::Compute>,
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::forms(self).reduce)(x, y, p, r)
    }

    /// The unreduced loss into `out`, in storage `S`.
    pub fn each<S: Stored>(
        &self,
        x: &[S],
        y: &[S],
        p: Option<S::Compute>,
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        (S::forms(self).each)(x, y, p, out)
    }

    /// The fused loss and gradient, in storage `S`.
    pub fn and_grad<S: Stored>(
        &self,
        x: &[S],
        y: &[S],
        p: Option<S::Compute>,
        r: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        (S::forms(self).and_grad)(x, y, p, r, grad)
    }

    /// The reference loss of one element.
    pub fn reference<T: Computed>(&self, x: T, y: T, p: Option<T>) -> T {
        (T::reference(self).loss)(x, y, p)
    }

    /// The reference gradient of one element.
    pub fn reference_grad<T: Computed>(&self, x: T, y: T, p: Option<T>) -> T {
        (T::reference(self).grad)(x, y, p)
    }

    /// `id` with the parameter setting, for failure messages: `huber(delta=0.7)`.
    pub fn label(&self, p: Option<f64>) -> String {
        match (self.param, p) {
            (Some(param), Some(v)) => format!("{}({}={v})", self.id, param.name),
            _ => self.id.to_string(),
        }
    }

    /// The error a call with parameter setting `p` must return, if any.
    pub fn param_error(&self, p: Option<f64>) -> Option<LossError> {
        self.param.zip(p).and_then(|(param, v)| param.error(v))
    }
}

/// [`PointwiseForms`] for all four storage types from three generic call expressions, each
/// written once with `$x, $y, $p` (and `$r`, `$out`, `$grad`) as the arguments.
macro_rules! pointwise_forms {
    ($s:ty;
     reduce: |$x:ident, $y:ident, $p:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ey:ident, $ep:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gy:ident, $gp:ident, $gr:ident, $grad:ident| $and_grad:expr $(,)?) => {
        PointwiseForms::<$s> {
            reduce: |$x, $y, $p, $r| $reduce,
            each: |$ex, $ey, $ep, $out| $each,
            and_grad: |$gx, $gy, $gp, $gr, $grad| $and_grad,
        }
    };
}

/// A [`Pointwise`] entry's four `PointwiseForms` fields and two reference fields, from one set
/// of generic call expressions.
macro_rules! pointwise_entry {
    ({ $($field:ident: $value:expr,)* }
     reduce: |$x:ident, $y:ident, $p:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ey:ident, $ep:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gy:ident, $gp:ident, $gr:ident, $grad:ident| $and_grad:expr,
     reference: |$rx:ident, $ry:ident, $rp:ident| $reference:expr,
     reference_grad: |$dx:ident, $dy:ident, $dp:ident| $reference_grad:expr $(,)?) => {
        Pointwise {
            $($field: $value,)*
            f32: pointwise_forms!(f32; reduce: |$x, $y, $p, $r| $reduce,
                each: |$ex, $ey, $ep, $out| $each,
                and_grad: |$gx, $gy, $gp, $gr, $grad| $and_grad),
            f64: pointwise_forms!(f64; reduce: |$x, $y, $p, $r| $reduce,
                each: |$ex, $ey, $ep, $out| $each,
                and_grad: |$gx, $gy, $gp, $gr, $grad| $and_grad),
            bf16: pointwise_forms!(losskit::bf16; reduce: |$x, $y, $p, $r| $reduce,
                each: |$ex, $ey, $ep, $out| $each,
                and_grad: |$gx, $gy, $gp, $gr, $grad| $and_grad),
            f16: pointwise_forms!(losskit::f16; reduce: |$x, $y, $p, $r| $reduce,
                each: |$ex, $ey, $ep, $out| $each,
                and_grad: |$gx, $gy, $gp, $gr, $grad| $and_grad),
            reference_f32: PointwiseReference::<f32> {
                loss: |$rx, $ry, $rp| $reference,
                grad: |$dx, $dy, $dp| $reference_grad,
            },
            reference_f64: PointwiseReference::<f64> {
                loss: |$rx, $ry, $rp| $reference,
                grad: |$dx, $dy, $dp| $reference_grad,
            },
        }
    };
}

/// [`RowsForms`] for one storage type from generic call expressions.
macro_rules! rows_forms {
    ($s:ty;
     reduce: |$x:ident, $c:ident, $t:ident, $o:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ec:ident, $et:ident, $eo:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gc:ident, $gt:ident, $go:ident, $gr:ident, $grad:ident| $and_grad:expr,
     in_place: $in_place:expr,
     plain: |$px:ident, $pc:ident, $pt:ident, $pr:ident| $plain:expr $(,)?) => {
        RowsForms::<$s> {
            reduce: |$x, $c, $t, $o, $r| $reduce,
            each: |$ex, $ec, $et, $eo, $out| $each,
            and_grad: |$gx, $gc, $gt, $go, $gr, $grad| $and_grad,
            in_place: $in_place,
            plain: |$px, $pc, $pt, $pr| $plain,
        }
    };
}

/// A [`Rows`] entry's four `RowsForms` fields from one set of generic call expressions.
macro_rules! rows_entry {
    ({ $($field:ident: $value:expr,)* }
     reduce: |$x:ident, $c:ident, $t:ident, $o:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ec:ident, $et:ident, $eo:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gc:ident, $gt:ident, $go:ident, $gr:ident, $grad:ident| $and_grad:expr,
     in_place: $in_place:expr,
     plain: |$px:ident, $pc:ident, $pt:ident, $pr:ident| $plain:expr,
     reference: |$rrow:ident, $rt:ident, $ro:ident| $reference:expr $(,)?) => {
        Rows {
            $($field: $value,)*
            f32: rows_forms!(f32; reduce: |$x, $c, $t, $o, $r| $reduce,
                each: |$ex, $ec, $et, $eo, $out| $each,
                and_grad: |$gx, $gc, $gt, $go, $gr, $grad| $and_grad,
                in_place: $in_place, plain: |$px, $pc, $pt, $pr| $plain),
            f64: rows_forms!(f64; reduce: |$x, $c, $t, $o, $r| $reduce,
                each: |$ex, $ec, $et, $eo, $out| $each,
                and_grad: |$gx, $gc, $gt, $go, $gr, $grad| $and_grad,
                in_place: $in_place, plain: |$px, $pc, $pt, $pr| $plain),
            bf16: rows_forms!(losskit::bf16; reduce: |$x, $c, $t, $o, $r| $reduce,
                each: |$ex, $ec, $et, $eo, $out| $each,
                and_grad: |$gx, $gc, $gt, $go, $gr, $grad| $and_grad,
                in_place: $in_place, plain: |$px, $pc, $pt, $pr| $plain),
            f16: rows_forms!(losskit::f16; reduce: |$x, $c, $t, $o, $r| $reduce,
                each: |$ex, $ec, $et, $eo, $out| $each,
                and_grad: |$gx, $gc, $gt, $go, $gr, $grad| $and_grad,
                in_place: $in_place, plain: |$px, $pc, $pt, $pr| $plain),
            reference: |$rrow, $rt, $ro| $reference,
        }
    };
}

mod paired;
#[macro_use]
mod pointwise;
mod rows;
mod ternary;

// The fuzz targets use the pointwise and rows tables only.
#[allow(unused_imports)]
pub use paired::*;
pub use pointwise::*;
pub use rows::*;
#[allow(unused_imports)]
pub use ternary::*;

impl Rows {
    /// The reduced loss in storage `S`.
    pub fn reduce<S: Stored>(
        &self,
        x: &[S],
        classes: usize,
        t: Targets<'_, S::Compute>,
        o: RowOptions<'_, S::Compute>,
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::rows_forms(self).reduce)(x, classes, t, o, r)
    }

    /// One loss per row into `out`, in storage `S`.
    pub fn each<S: Stored>(
        &self,
        x: &[S],
        classes: usize,
        t: Targets<'_, S::Compute>,
        o: RowOptions<'_, S::Compute>,
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        (S::rows_forms(self).each)(x, classes, t, o, out)
    }

    /// The fused loss and gradient, in storage `S`.
    pub fn and_grad<S: Stored>(
        &self,
        x: &[S],
        classes: usize,
        t: Targets<'_, S::Compute>,
        o: RowOptions<'_, S::Compute>,
        r: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        (S::rows_forms(self).and_grad)(x, classes, t, o, r, grad)
    }

    /// The fused loss with the gradient written over `x`, in storage `S`; `None` where the API
    /// has no in-place form.
    pub fn and_grad_in_place<S: Stored>(
        &self,
        x: &mut [S],
        classes: usize,
        t: Targets<'_, S::Compute>,
        o: RowOptions<'_, S::Compute>,
        r: Reduction,
    ) -> Option<Result<S::Compute, LossError>> {
        S::rows_forms(self)
            .in_place
            .map(|in_place| in_place(x, classes, t, o, r))
    }

    /// The free function with PyTorch's defaults, in storage `S`.
    pub fn plain<S: Stored>(
        &self,
        x: &[S],
        classes: usize,
        t: Targets<'_, S::Compute>,
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::rows_forms(self).plain)(x, classes, t, r)
    }
}

/// The row-wise loss whose golden-file id is `id`.
pub fn find_rows(id: &str) -> Option<&'static Rows> {
    ROWS.iter().copied().find(|l| l.id == id)
}

/// The pointwise loss whose golden-file id is `id`.
pub fn find_pointwise(id: &str) -> Option<&'static Pointwise> {
    POINTWISE.iter().copied().find(|l| l.id == id)
}
