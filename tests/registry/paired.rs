//! The paired row-wise losses: a `[rows, classes]` matrix and a second one of the same shape
//! read beside it (distillation KL's student and teacher), with a scalar parameter; one `const`
//! per loss, listed once in [`PAIRED`]. Their gradient is with respect to the first matrix.

use losskit::{bf16, f16, reference, LossError, Reduction, Storage};

use super::{Param, Stored};

/// Every paired row-wise loss.
pub const PAIRED: &[&Paired] = &[&KL_DIV_LOGITS];

/// The public-API forms of one paired loss for storage `S`: `(x, y, classes, param, ..)`.
// The fn-pointer types are spelled out so that each field reads as the API call it stands for.
#[allow(clippy::type_complexity)]
pub struct PairedForms<S: Storage> {
    /// The reduced loss.
    pub reduce: fn(&[S], &[S], usize, S::Compute, Reduction) -> Result<S::Compute, LossError>,
    /// One loss per row into `out`.
    pub each: fn(&[S], &[S], usize, S::Compute, &mut [S::Compute]) -> Result<(), LossError>,
    /// The fused loss and gradient with respect to `x`.
    pub and_grad:
        fn(&[S], &[S], usize, S::Compute, Reduction, &mut [S]) -> Result<S::Compute, LossError>,
    /// The fused loss with the gradient written over `x`.
    pub in_place: fn(&mut [S], &[S], usize, S::Compute, Reduction) -> Result<S::Compute, LossError>,
}

/// One paired loss: an entry of [`PAIRED`].
pub struct Paired {
    /// The loss's name as the golden files spell it (`Case::loss`).
    pub id: &'static str,
    /// The names of the two matrices in the golden files' `inputs` (`x` first).
    pub inputs: [&'static str; 2],
    /// Its scalar parameter (always given).
    pub param: Param,
    /// Its forms over `f32` matrices (reach them generically with [`PairedStored::paired_forms`]).
    pub f32: PairedForms<f32>,
    /// Its forms over `f64` matrices.
    pub f64: PairedForms<f64>,
    /// Its forms over `bf16` matrices (computing in `f32`).
    pub bf16: PairedForms<bf16>,
    /// Its forms over `f16` matrices (computing in `f32`).
    pub f16: PairedForms<f16>,
    /// The reference loss of one row, in `f64`, from the rows of `x` and `y` and the parameter.
    pub reference: fn(&[f64], &[f64], f64) -> f64,
    /// The reference gradient of one row's loss with respect to `x`, in `f64`.
    pub reference_grad: fn(&[f64], &[f64], f64) -> Vec<f64>,
}

/// The storage types the paired table has forms for.
pub trait PairedStored: Stored {
    /// `loss`'s forms for this storage type.
    fn paired_forms(loss: &Paired) -> &PairedForms<Self>;
}

macro_rules! paired_stored {
    ($($t:ident),*) => {$(
        impl PairedStored for $t {
            fn paired_forms(loss: &Paired) -> &PairedForms<$t> {
                &loss.$t
            }
        }
    )*};
}
paired_stored!(f32, f64, bf16, f16);

/// [`PairedForms`] for one storage type from the four generic functions.
macro_rules! paired_forms {
    ($s:ty, $reduce:path, $each:path, $grad:path, $in_place:path) => {
        PairedForms::<$s> {
            reduce: |x, y, c, p, r| $reduce(x, y, c, p, r),
            each: |x, y, c, p, out| $each(x, y, c, p, out),
            and_grad: |x, y, c, p, r, g| $grad(x, y, c, p, r, g),
            in_place: |x, y, c, p, r| $in_place(x, y, c, p, r),
        }
    };
}

macro_rules! kl_forms {
    ($s:ty) => {
        paired_forms!(
            $s,
            losskit::kl_div_logits,
            losskit::kl_div_logits_each,
            losskit::kl_div_logits_and_grad,
            losskit::kl_div_logits_and_grad_in_place
        )
    };
}

/// Distillation KL, `KL(softmax(teacher/T) ‖ softmax(student/T))` per row (`kl_div_logits`).
pub const KL_DIV_LOGITS: Paired = Paired {
    id: "kl_div_logits",
    inputs: ["student", "teacher"],
    param: Param {
        name: "temperature",
        requirement: "finite and > 0",
        valid: |t| t > 0.0 && t.is_finite(),
        rejected: &[
            (0.0, "0"),
            (-1.0, "-1"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "NaN"),
        ],
        accepted: &[1e-3, 0.5, 1.0, 2.0, 1e3],
        kink: false,
    },
    f32: kl_forms!(f32),
    f64: kl_forms!(f64),
    bf16: kl_forms!(bf16),
    f16: kl_forms!(f16),
    reference: reference::kl_div_logits_row,
    reference_grad: reference::kl_div_logits_row_grad,
};

impl Paired {
    /// The reduced loss in storage `S`.
    pub fn reduce<S: PairedStored>(
        &self,
        x: &[S],
        y: &[S],
        classes: usize,
        p: S::Compute,
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::paired_forms(self).reduce)(x, y, classes, p, r)
    }

    /// One loss per row into `out`, in storage `S`.
    pub fn each<S: PairedStored>(
        &self,
        x: &[S],
        y: &[S],
        classes: usize,
        p: S::Compute,
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        (S::paired_forms(self).each)(x, y, classes, p, out)
    }

    /// The fused loss and gradient with respect to `x`, in storage `S`.
    pub fn and_grad<S: PairedStored>(
        &self,
        x: &[S],
        y: &[S],
        classes: usize,
        p: S::Compute,
        r: Reduction,
        grad: &mut [S],
    ) -> Result<S::Compute, LossError> {
        (S::paired_forms(self).and_grad)(x, y, classes, p, r, grad)
    }

    /// The fused loss with the gradient written over `x`, in storage `S`.
    pub fn and_grad_in_place<S: PairedStored>(
        &self,
        x: &mut [S],
        y: &[S],
        classes: usize,
        p: S::Compute,
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::paired_forms(self).in_place)(x, y, classes, p, r)
    }
}

/// The paired loss named `id`.
pub fn find_paired(id: &str) -> Option<&'static Paired> {
    PAIRED.iter().copied().find(|l| l.id == id)
}
