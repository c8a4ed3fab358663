//! The three-input pointwise losses (the flat driver's third stream): `gaussian_nll`,
//! `margin_ranking`, and the first-wave losses with PyTorch's per-element `weight`. One `const`
//! per loss and fixed parameter setting, listed once in [`TERNARY`].

use losskit::{bf16, f16, Storage};
use losskit::{reference, Bce, BceWithLogits, GaussianNll, LossError, MarginRanking, Reduction};

use super::Domain;

/// The values a third (or any) input of a three-input loss is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// As the two-input losses' [`Domain`].
    Plain(Domain),
    /// ±1 by meaning (margin_ranking's `y`), not checked: the generators draw ±1 mostly.
    Sign,
    /// `>= 0`, checked: a negative element is `LossError::Negative` (gaussian_nll's `var`).
    NonNegativeChecked,
}

impl Input {
    /// `v` moved into the domain the way the property tests do it.
    pub fn fold(self, v: f64) -> f64 {
        match self {
            Input::Plain(d) => d.fold(v),
            Input::Sign => {
                if v < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Input::NonNegativeChecked => v.abs(),
        }
    }

    /// The error the loss must report for `values` as argument `name`, if any.
    pub fn first_error(
        self,
        name: &'static str,
        values: impl Iterator<Item = f64>,
    ) -> Option<LossError> {
        match self {
            Input::Plain(d) => d.first_error(name, values),
            Input::Sign => None,
            Input::NonNegativeChecked => values
                .enumerate()
                .find(|&(_, v)| v < 0.0)
                .map(|(index, value)| LossError::Negative { name, index, value }),
        }
    }
}

/// What a three-input loss's mean divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divisor {
    /// The element count.
    Count,
    /// The summed third input (PyTorch's weighted `mse_loss` and `l1_loss`).
    Weights,
}

/// The public-API forms of one three-input loss for storage `S` (its parameter fixed).
#[allow(clippy::type_complexity)]
pub struct TernaryForms<S: Storage> {
    /// The reduced loss.
    pub reduce: fn(&[S], &[S], &[S], Reduction) -> Result<S::Compute, LossError>,
    /// The unreduced loss into `out`.
    pub each: fn(&[S], &[S], &[S], &mut [S::Compute]) -> Result<(), LossError>,
    /// The fused loss and gradients: `d/d first` into the first slice, and for a loss with a
    /// second gradient ([`Ternary::grad2`]) that one into the second (empty otherwise).
    pub and_grad:
        fn(&[S], &[S], &[S], Reduction, &mut [S], &mut [S]) -> Result<S::Compute, LossError>,
}

/// The scalar twins of one three-input loss in `losskit::reference`, in compute type `T`.
pub struct TernaryReference<T> {
    /// The loss of one element.
    pub loss: fn(T, T, T) -> T,
    /// Its derivative with respect to the first input.
    pub grad: fn(T, T, T) -> T,
    /// Its derivative with respect to the second differentiable input, if it has one.
    pub grad2: Option<fn(T, T, T) -> T>,
}

/// One three-input loss: an entry of [`TERNARY`].
pub struct Ternary {
    /// Its name (the golden2 id for the ones golden2 has, with the setting for the others).
    pub id: &'static str,
    /// Its inputs' names, as the errors name them.
    pub names: [&'static str; 3],
    /// Their domains.
    pub inputs: [Input; 3],
    /// Which input the second gradient is with respect to (`Some(2)`: var, `Some(1)`: x2).
    pub grad2: Option<usize>,
    /// What the mean divides by.
    pub divisor: Divisor,
    /// Whether every `_each` element equals the reference bit for bit on every tier.
    pub exact: bool,
    /// Whether the loss has a kink (a hinge, huber's delta) where finite differences fail: the
    /// gradient checks stay away from where `kink(x, y, z)` is small.
    pub kink: Option<fn(f64, f64, f64) -> f64>,
    /// The magnitudes of the terms an element's loss, gradient and second gradient are sums
    /// of (at inputs `x, y, z`): rounding errors of the non-exact kernels are relative to them.
    pub terms: fn(f64, f64, f64) -> [f64; 3],
    /// Forms per storage type.
    pub f32: TernaryForms<f32>,
    pub f64: TernaryForms<f64>,
    pub bf16: TernaryForms<bf16>,
    pub f16: TernaryForms<f16>,
    /// Reference twins.
    pub reference_f32: TernaryReference<f32>,
    pub reference_f64: TernaryReference<f64>,
}

/// The storage types with three-input forms.
pub trait TernaryStored: Storage {
    fn ternary_forms(loss: &Ternary) -> &TernaryForms<Self>;
}
macro_rules! ternary_stored {
    ($($t:ident),*) => {$(
        impl TernaryStored for $t {
            fn ternary_forms(loss: &Ternary) -> &TernaryForms<$t> {
                &loss.$t
            }
        }
    )*};
}
ternary_stored!(f32, f64, bf16, f16);

/// The compute types of the reference twins.
pub trait TernaryComputed: losskit::Float {
    fn ternary_reference(loss: &Ternary) -> &TernaryReference<Self>;
}
impl TernaryComputed for f32 {
    fn ternary_reference(loss: &Ternary) -> &TernaryReference<f32> {
        &loss.reference_f32
    }
}
impl TernaryComputed for f64 {
    fn ternary_reference(loss: &Ternary) -> &TernaryReference<f64> {
        &loss.reference_f64
    }
}

impl Ternary {
    pub fn reduce<S: TernaryStored>(
        &self,
        x: &[S],
        y: &[S],
        z: &[S],
        r: Reduction,
    ) -> Result<S::Compute, LossError> {
        (S::ternary_forms(self).reduce)(x, y, z, r)
    }
    pub fn each<S: TernaryStored>(
        &self,
        x: &[S],
        y: &[S],
        z: &[S],
        out: &mut [S::Compute],
    ) -> Result<(), LossError> {
        (S::ternary_forms(self).each)(x, y, z, out)
    }
    /// `grad2` must be empty for a loss without a second gradient.
    pub fn and_grad<S: TernaryStored>(
        &self,
        x: &[S],
        y: &[S],
        z: &[S],
        r: Reduction,
        grad: &mut [S],
        grad2: &mut [S],
    ) -> Result<S::Compute, LossError> {
        (S::ternary_forms(self).and_grad)(x, y, z, r, grad, grad2)
    }
    pub fn reference<T: TernaryComputed>(&self, x: T, y: T, z: T) -> T {
        (T::ternary_reference(self).loss)(x, y, z)
    }
    pub fn reference_grad<T: TernaryComputed>(&self, x: T, y: T, z: T) -> T {
        (T::ternary_reference(self).grad)(x, y, z)
    }
    pub fn reference_grad2<T: TernaryComputed>(&self, x: T, y: T, z: T) -> Option<T> {
        T::ternary_reference(self).grad2.map(|g| g(x, y, z))
    }
    /// The name of the second gradient slice in length errors.
    pub fn grad2_name(&self) -> &'static str {
        match self.grad2 {
            Some(2) => "grad_var",
            Some(1) => "grad_x2",
            _ => "",
        }
    }
    /// The name of the first gradient slice in length errors.
    pub fn grad_name(&self) -> &'static str {
        match self.grad2 {
            Some(2) => "grad_input",
            Some(1) => "grad_x1",
            _ => "grad",
        }
    }
}

macro_rules! ternary_forms {
    ($s:ty; reduce: |$x:ident, $y:ident, $z:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ey:ident, $ez:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gy:ident, $gz:ident, $gr:ident, $g:ident, $g2:ident| $and_grad:expr) => {
        TernaryForms::<$s> {
            reduce: |$x, $y, $z, $r| $reduce,
            each: |$ex, $ey, $ez, $out| $each,
            and_grad: |$gx, $gy, $gz, $gr, $g, $g2| $and_grad,
        }
    };
}

macro_rules! ternary_entry {
    ({ $($field:ident: $value:expr,)* }
     reduce: |$x:ident, $y:ident, $z:ident, $r:ident| $reduce:expr,
     each: |$ex:ident, $ey:ident, $ez:ident, $out:ident| $each:expr,
     and_grad: |$gx:ident, $gy:ident, $gz:ident, $gr:ident, $g:ident, $g2:ident| $and_grad:expr,
     reference: |$rx:ident, $ry:ident, $rz:ident| $reference:expr,
     grad: |$dx:ident, $dy:ident, $dz:ident| $grad:expr,
     grad2: $grad2:expr $(,)?) => {
        Ternary {
            $($field: $value,)*
            f32: ternary_forms!(f32; reduce: |$x, $y, $z, $r| $reduce,
                each: |$ex, $ey, $ez, $out| $each,
                and_grad: |$gx, $gy, $gz, $gr, $g, $g2| $and_grad),
            f64: ternary_forms!(f64; reduce: |$x, $y, $z, $r| $reduce,
                each: |$ex, $ey, $ez, $out| $each,
                and_grad: |$gx, $gy, $gz, $gr, $g, $g2| $and_grad),
            bf16: ternary_forms!(bf16; reduce: |$x, $y, $z, $r| $reduce,
                each: |$ex, $ey, $ez, $out| $each,
                and_grad: |$gx, $gy, $gz, $gr, $g, $g2| $and_grad),
            f16: ternary_forms!(f16; reduce: |$x, $y, $z, $r| $reduce,
                each: |$ex, $ey, $ez, $out| $each,
                and_grad: |$gx, $gy, $gz, $gr, $g, $g2| $and_grad),
            reference_f32: TernaryReference::<f32> {
                loss: |$rx, $ry, $rz| $reference,
                grad: |$dx, $dy, $dz| $grad,
                grad2: $grad2,
            },
            reference_f64: TernaryReference::<f64> {
                loss: |$rx, $ry, $rz| $reference,
                grad: |$dx, $dy, $dz| $grad,
                grad2: $grad2,
            },
        }
    };
}

/// Every three-input loss.
pub const TERNARY: &[&Ternary] = &[
    &GAUSSIAN_NLL,
    &GAUSSIAN_NLL_FULL,
    &MARGIN_RANKING,
    &MARGIN_RANKING_0,
    &MSE_WEIGHTED,
    &L1_WEIGHTED,
    &HUBER_WEIGHTED,
    &BCE_WEIGHTED,
    &BCE_WITH_LOGITS_WEIGHTED,
];

/// The three-input loss called `id`.
pub fn find_ternary(id: &str) -> Option<&'static Ternary> {
    TERNARY.iter().copied().find(|l| l.id == id)
}

const REAL: Input = Input::Plain(Domain::Real);

/// gaussian_nll with PyTorch's defaults (`full = false`, `eps = 1e-6`).
pub const GAUSSIAN_NLL: Ternary = ternary_entry! {
    {
        id: "gaussian_nll",
        terms: |x, y, z| gaussian_terms(x, y, z, 1e-6),
        names: ["input", "target", "var"],
        inputs: [REAL, REAL, Input::NonNegativeChecked],
        grad2: Some(2),
        divisor: Divisor::Count,
        exact: false,
        kink: None,
    }
    reduce: |x, y, z, r| losskit::gaussian_nll(x, y, z, r),
    each: |x, y, z, out| losskit::gaussian_nll_each(x, y, z, out),
    and_grad: |x, y, z, r, g, g2| losskit::gaussian_nll_and_grad(x, y, z, r, g, g2),
    reference: |x, y, z| reference::gaussian_nll(x, y, z, false, 1e-6 as _),
    grad: |x, y, z| reference::gaussian_nll_grad(x, y, z, 1e-6 as _),
    grad2: Some(|x, y, z| reference::gaussian_nll_grad_var(x, y, z, 1e-6 as _)),
};

/// gaussian_nll with `full` and `eps = 0.25` (so that the clamp is exercised).
pub const GAUSSIAN_NLL_FULL: Ternary = ternary_entry! {
    {
        id: "gaussian_nll_full_eps",
        terms: |x, y, z| gaussian_terms(x, y, z, 0.25),
        names: ["input", "target", "var"],
        inputs: [REAL, REAL, Input::NonNegativeChecked],
        grad2: Some(2),
        divisor: Divisor::Count,
        exact: false,
        // The clamp has no derivative (PyTorch's no_grad clamp): finite differences in var
        // differ from it near var = eps.
        kink: Some(|_, _, v| (v - 0.25).abs()),
    }
    reduce: |x, y, z, r| GaussianNll::new().full(true).eps(0.25).loss(x, y, z, r),
    each: |x, y, z, out| GaussianNll::new().full(true).eps(0.25).each(x, y, z, out),
    and_grad: |x, y, z, r, g, g2| GaussianNll::new().full(true).eps(0.25).loss_and_grad(x, y, z, r, g, g2),
    reference: |x, y, z| reference::gaussian_nll(x, y, z, true, 0.25),
    grad: |x, y, z| reference::gaussian_nll_grad(x, y, z, 0.25),
    grad2: Some(|x, y, z| reference::gaussian_nll_grad_var(x, y, z, 0.25)),
};

/// margin_ranking with margin 0.5.
pub const MARGIN_RANKING: Ternary = ternary_entry! {
    {
        id: "margin_ranking",
        terms: |_, _, _| [1.0, 1.0, 1.0],
        names: ["x1", "x2", "y"],
        inputs: [REAL, REAL, Input::Sign],
        grad2: Some(1),
        divisor: Divisor::Count,
        exact: true,
        kink: Some(|a, b, y| (-y * (a - b) + 0.5).abs()),
    }
    reduce: |x, y, z, r| losskit::margin_ranking(x, y, z, 0.5, r),
    each: |x, y, z, out| losskit::margin_ranking_each(x, y, z, 0.5, out),
    and_grad: |x, y, z, r, g, g2| losskit::margin_ranking_and_grad(x, y, z, 0.5, r, g, g2),
    reference: |x, y, z| reference::margin_ranking(x, y, z, 0.5),
    grad: |x, y, z| reference::margin_ranking_grad(x, y, z, 0.5),
    grad2: Some(|x, y, z| -reference::margin_ranking_grad(x, y, z, 0.5)),
};

/// margin_ranking with PyTorch's default margin 0, through the builder.
pub const MARGIN_RANKING_0: Ternary = ternary_entry! {
    {
        id: "margin_ranking_0",
        terms: |_, _, _| [1.0, 1.0, 1.0],
        names: ["x1", "x2", "y"],
        inputs: [REAL, REAL, Input::Sign],
        grad2: Some(1),
        divisor: Divisor::Count,
        exact: true,
        kink: Some(|a, b, y| (-y * (a - b)).abs()),
    }
    reduce: |x, y, z, r| MarginRanking::new().loss(x, y, z, r),
    each: |x, y, z, out| MarginRanking::new().each(x, y, z, out),
    and_grad: |x, y, z, r, g, g2| MarginRanking::new().loss_and_grad(x, y, z, r, g, g2),
    reference: |x, y, z| reference::margin_ranking(x, y, z, 0.0),
    grad: |x, y, z| reference::margin_ranking_grad(x, y, z, 0.0),
    grad2: Some(|x, y, z| -reference::margin_ranking_grad(x, y, z, 0.0)),
};

/// mse with a per-element weight (mean over Σw).
pub const MSE_WEIGHTED: Ternary = ternary_entry! {
    {
        id: "mse_weighted",
        terms: |x, y, w| [(w * (x - y) * (x - y)).abs(), (2.0 * w * (x - y)).abs(), 0.0],
        names: ["input", "target", "weight"],
        inputs: [REAL, REAL, REAL],
        grad2: None,
        divisor: Divisor::Weights,
        exact: true,
        kink: None,
    }
    reduce: |x, y, z, r| losskit::mse_weighted(x, y, z, r),
    each: |x, y, z, out| losskit::mse_weighted_each(x, y, z, out),
    and_grad: |x, y, z, r, g, _g2| losskit::mse_weighted_and_grad(x, y, z, r, g),
    reference: |x, y, z| reference::mse(x, y) * z,
    grad: |x, y, z| reference::mse_grad(x, y) * z,
    grad2: None,
};

/// l1 with a per-element weight (mean over Σw).
pub const L1_WEIGHTED: Ternary = ternary_entry! {
    {
        id: "l1_weighted",
        terms: |x, y, w| [(w * (x - y)).abs(), w.abs(), 0.0],
        names: ["input", "target", "weight"],
        inputs: [REAL, REAL, REAL],
        grad2: None,
        divisor: Divisor::Weights,
        exact: true,
        kink: Some(|x, y, _| (x - y).abs()),
    }
    reduce: |x, y, z, r| losskit::l1_weighted(x, y, z, r),
    each: |x, y, z, out| losskit::l1_weighted_each(x, y, z, out),
    and_grad: |x, y, z, r, g, _g2| losskit::l1_weighted_and_grad(x, y, z, r, g),
    reference: |x, y, z| reference::l1(x, y) * z,
    grad: |x, y, z| reference::l1_grad(x, y) * z,
    grad2: None,
};

/// huber (delta 0.75) with a per-element weight (mean over the count).
pub const HUBER_WEIGHTED: Ternary = ternary_entry! {
    {
        id: "huber_weighted",
        terms: |x, y, w| [(w * (x - y) * (x - y)).abs() + w.abs(), w.abs(), 0.0],
        names: ["input", "target", "weight"],
        inputs: [REAL, REAL, REAL],
        grad2: None,
        divisor: Divisor::Count,
        exact: true,
        kink: Some(|x, y, _| ((x - y).abs() - 0.75).abs()),
    }
    reduce: |x, y, z, r| losskit::huber_weighted(x, y, z, 0.75, r),
    each: |x, y, z, out| losskit::huber_weighted_each(x, y, z, 0.75, out),
    and_grad: |x, y, z, r, g, _g2| losskit::huber_weighted_and_grad(x, y, z, 0.75, r, g),
    reference: |x, y, z| reference::huber(x, y, 0.75) * z,
    grad: |x, y, z| reference::huber_grad(x, y, 0.75) * z,
    grad2: None,
};

/// bce with a per-element weight (mean over the count).
pub const BCE_WEIGHTED: Ternary = ternary_entry! {
    {
        id: "bce_weighted",
        terms: |p, t, w| bce_terms(p, t, w),
        names: ["input", "target", "weight"],
        inputs: [
            Input::Plain(Domain::Probability),
            Input::Plain(Domain::Probability),
            REAL,
        ],
        grad2: None,
        divisor: Divisor::Count,
        exact: false,
        kink: None,
    }
    reduce: |x, y, z, r| Bce::new().loss_weighted(x, y, z, r),
    each: |x, y, z, out| losskit::bce_weighted_each(x, y, z, out),
    and_grad: |x, y, z, r, g, _g2| losskit::bce_weighted_and_grad(x, y, z, r, g),
    reference: |x, y, z| reference::bce(x, y) * z,
    grad: |x, y, z| reference::bce_grad(x, y) * z,
    grad2: None,
};

/// bce_with_logits with a per-element weight (mean over the count).
pub const BCE_WITH_LOGITS_WEIGHTED: Ternary = ternary_entry! {
    {
        id: "bce_with_logits_weighted",
        terms: |x, t, w| [w.abs() * (x.abs() * (1.0 + t.abs()) + 1.0), w.abs() * (1.0 + t.abs()), 0.0],
        names: ["input", "target", "weight"],
        inputs: [REAL, Input::Plain(Domain::UnitUnchecked), REAL],
        grad2: None,
        divisor: Divisor::Count,
        exact: false,
        kink: None,
    }
    reduce: |x, y, z, r| losskit::bce_with_logits_weighted(x, y, z, r),
    each: |x, y, z, out| BceWithLogits::new().each_weighted(x, y, z, out),
    and_grad: |x, y, z, r, g, _g2| BceWithLogits::new().loss_and_grad_weighted(x, y, z, r, g),
    reference: |x, y, z| reference::bce_with_logits(x, y, None) * z,
    grad: |x, y, z| reference::bce_with_logits_grad(x, y, None) * z,
    grad2: None,
};

/// gaussian_nll's term magnitudes: `½(|ln v| + q) + 1`, `|x - t|/v`, `½(1/v + q/v)`.
fn gaussian_terms(x: f64, t: f64, var: f64, eps: f64) -> [f64; 3] {
    let v = var.max(eps);
    let d = x - t;
    let q = d * d / v;
    [
        0.5 * (v.ln().abs() + q) + 1.0,
        d.abs() / v,
        0.5 * (1.0 + q) / v,
    ]
}

/// bce's term magnitudes, times `|w|`: the two clamped logs, and the gradient itself.
fn bce_terms(p: f64, t: f64, w: f64) -> [f64; 3] {
    let a = (t - 1.0).abs() * (-p).ln_1p().max(-100.0).abs();
    let b = t.abs() * p.ln().max(-100.0).abs();
    let g = (p - t) / ((1.0 - p) * p).max(1e-12);
    [w.abs() * (a + b), (w * g).abs(), 0.0]
}
