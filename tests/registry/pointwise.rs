//! The pointwise losses: one `const` per loss, listed once in [`pointwise_losses!`].

use losskit::{reference, Bce, BceWithLogits, KlDiv, PoissonNll, SigmoidFocal};

use super::{Domain, Kind, Param, Pointwise, PointwiseForms, PointwiseReference, Range};

/// Calls `$callback! { module: CONST, ... }` with every pointwise loss: the one list of them.
/// [`POINTWISE`] is built from it, and a suite that wants one test module per loss (so that
/// test names say which loss failed) expands it with its own module-writing macro.
macro_rules! pointwise_losses {
    ($callback:ident) => {
        $callback! {
            mse: MSE,
            l1: L1,
            huber: HUBER,
            smooth_l1: SMOOTH_L1,
            bce: BCE,
            bce_with_logits: BCE_WITH_LOGITS,
            log_cosh: LOG_COSH,
            soft_margin: SOFT_MARGIN,
            hinge_embedding: HINGE_EMBEDDING,
            poisson_nll: POISSON_NLL,
            poisson_nll_full: POISSON_NLL_FULL,
            poisson_nll_rate: POISSON_NLL_RATE,
            kl_div: KL_DIV,
            kl_div_log_target: KL_DIV_LOG_TARGET,
            sigmoid_focal: SIGMOID_FOCAL,
            sigmoid_focal_gamma: SIGMOID_FOCAL_GAMMA,
        }
    };
}

/// `&[&A, &B, ...]` from a [`pointwise_losses!`] list.
macro_rules! pointwise_table {
    ($($module:ident: $loss:ident),* $(,)?) => {
        &[$(&$loss),*]
    };
}

/// Every pointwise loss.
pub const POINTWISE: &[&Pointwise] = pointwise_losses!(pointwise_table);

/// Values a parameter that must be `> 0` must reject, as `Display` shows them.
const NOT_POSITIVE: &[(f64, &str)] = &[
    (-1.0, "-1"),
    (f64::NAN, "NaN"),
    (0.0, "0"),
    (-0.0, "-0"),
    (f64::NEG_INFINITY, "-inf"),
];

/// Values a parameter that must be `>= 0` must reject, as `Display` shows them.
const NEGATIVE: &[(f64, &str)] = &[
    (-1.0, "-1"),
    (-2.0, "-2"),
    (-0.5, "-0.5"),
    (f64::NAN, "NaN"),
    (f64::NEG_INFINITY, "-inf"),
];

/// `(x - y)²`.
pub const MSE: Pointwise = pointwise_entry! {
    {
        id: "mse",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::NonNegative,
        grad_terms: |_| 1.0,
        exact: true,
    }
    reduce: |x, y, _p, r| losskit::mse(x, y, r),
    each: |x, y, _p, out| losskit::mse_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::mse_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::mse(x, y),
    reference_grad: |x, y, _p| reference::mse_grad(x, y),
};

/// `|x - y|`.
pub const L1: Pointwise = pointwise_entry! {
    {
        id: "l1",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::NonNegative,
        grad_terms: |_| 1.0,
        exact: true,
    }
    reduce: |x, y, _p, r| losskit::l1(x, y, r),
    each: |x, y, _p, out| losskit::l1_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::l1_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::l1(x, y),
    reference_grad: |x, y, _p| reference::l1_grad(x, y),
};

/// Huber with `delta`. The settings are every `delta` a suite used before the registry.
pub const HUBER: Pointwise = pointwise_entry! {
    {
        id: "huber",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "delta",
            requirement: "> 0",
            valid: |v| v > 0.0,
            rejected: NOT_POSITIVE,
            accepted: &[1e-30, 0.5, 1.0, f64::INFINITY],
            kink: true,
        }),
        param_optional: false,
        settings: &[Some(0.3), Some(0.7), Some(0.75), Some(1.0)],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::NonNegative,
        grad_terms: |_| 1.0,
        exact: true,
    }
    reduce: |x, y, p, r| losskit::huber(x, y, p.expect("huber takes delta"), r),
    each: |x, y, p, out| losskit::huber_each(x, y, p.expect("huber takes delta"), out),
    and_grad: |x, y, p, r, grad| {
        losskit::huber_and_grad(x, y, p.expect("huber takes delta"), r, grad)
    },
    reference: |x, y, p| reference::huber(x, y, p.expect("huber takes delta")),
    reference_grad: |x, y, p| reference::huber_grad(x, y, p.expect("huber takes delta")),
};

/// Smooth L1 with `beta` (`beta = 0` is L1). The settings are every `beta` a suite used before
/// the registry.
pub const SMOOTH_L1: Pointwise = pointwise_entry! {
    {
        id: "smooth_l1",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "beta",
            requirement: ">= 0",
            valid: |v| v >= 0.0,
            rejected: NEGATIVE,
            // beta = 0 is plain L1 in PyTorch; -0.0 passes `>= 0` as it does there.
            accepted: &[0.0, -0.0, 1e-30, 1.0, f64::INFINITY],
            kink: true,
        }),
        param_optional: false,
        settings: &[Some(0.0), Some(0.3), Some(0.5), Some(0.7), Some(0.75)],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::NonNegative,
        grad_terms: |_| 1.0,
        exact: true,
    }
    reduce: |x, y, p, r| losskit::smooth_l1(x, y, p.expect("smooth_l1 takes beta"), r),
    each: |x, y, p, out| losskit::smooth_l1_each(x, y, p.expect("smooth_l1 takes beta"), out),
    and_grad: |x, y, p, r, grad| {
        losskit::smooth_l1_and_grad(x, y, p.expect("smooth_l1 takes beta"), r, grad)
    },
    reference: |x, y, p| reference::smooth_l1(x, y, p.expect("smooth_l1 takes beta")),
    reference_grad: |x, y, p| reference::smooth_l1_grad(x, y, p.expect("smooth_l1 takes beta")),
};

/// Binary cross-entropy on probabilities: `bce` without a parameter, `Bce::epsilon` (inputs
/// clipped to `[eps, 1 - eps]`, as Keras) with one.
pub const BCE: Pointwise = pointwise_entry! {
    {
        id: "bce",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "epsilon",
            requirement: "in [0, 0.5]",
            valid: |v| (0.0..=0.5).contains(&v),
            rejected: &[
                (-0.25, "-0.25"),
                (0.75, "0.75"),
                (1.0, "1"),
                (f64::NAN, "NaN"),
                (f64::INFINITY, "inf"),
            ],
            accepted: &[0.0, 1e-7, 0.5],
            kink: false,
        }),
        param_optional: true,
        settings: &[None, Some(1e-3), Some(1e-7)],
        input: Domain::Probability,
        target: Domain::Probability,
        range: Range::UpTo100,
        grad_terms: |_| 1.0,
        exact: false,
    }
    reduce: |x, y, p, r| match p {
        None => losskit::bce(x, y, r),
        Some(eps) => Bce::new().epsilon(eps).loss(x, y, r),
    },
    each: |x, y, p, out| match p {
        None => losskit::bce_each(x, y, out),
        Some(eps) => Bce::new().epsilon(eps).each(x, y, out),
    },
    and_grad: |x, y, p, r, grad| match p {
        None => losskit::bce_and_grad(x, y, r, grad),
        Some(eps) => Bce::new().epsilon(eps).loss_and_grad(x, y, r, grad),
    },
    reference: |x, y, p| match p {
        None => reference::bce(x, y),
        Some(eps) => reference::bce_clipped(x, y, eps),
    },
    // `losskit::reference` has no gradient of the clipped form: clipping has derivative 0
    // outside [eps, 1 - eps] and leaves `bce_grad` inside (as the kernel computes it).
    reference_grad: |x, y, p| match p {
        Some(eps) if !(x >= eps && x <= 1.0 - eps) => 0.0,
        _ => reference::bce_grad(x, y),
    },
};

/// Binary cross-entropy on logits: `bce_with_logits` without a parameter,
/// `BceWithLogits::pos_weight` with one. Targets are soft labels and not checked.
pub const BCE_WITH_LOGITS: Pointwise = pointwise_entry! {
    {
        id: "bce_with_logits",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "pos_weight",
            requirement: ">= 0",
            valid: |v| v >= 0.0,
            rejected: NEGATIVE,
            accepted: &[0.0, 1.0, 2.5],
            kink: false,
        }),
        param_optional: true,
        settings: &[None, Some(2.5)],
        input: Domain::Real,
        target: Domain::UnitUnchecked,
        range: Range::FiniteWhenModerate,
        grad_terms: |p| p.map_or(1.0, |pw| 1.0 + 2.0 * pw),
        exact: false,
    }
    reduce: |x, y, p, r| match p {
        None => losskit::bce_with_logits(x, y, r),
        Some(pw) => BceWithLogits::new().pos_weight(pw).loss(x, y, r),
    },
    each: |x, y, p, out| match p {
        None => losskit::bce_with_logits_each(x, y, out),
        Some(pw) => BceWithLogits::new().pos_weight(pw).each(x, y, out),
    },
    and_grad: |x, y, p, r, grad| match p {
        None => losskit::bce_with_logits_and_grad(x, y, r, grad),
        Some(pw) => BceWithLogits::new().pos_weight(pw).loss_and_grad(x, y, r, grad),
    },
    reference: |x, y, p| reference::bce_with_logits(x, y, p),
    reference_grad: |x, y, p| reference::bce_with_logits_grad(x, y, p),
};

/// Parameters PyTorch does not check (hinge_embedding's margin, poisson_nll's eps): nothing is
/// rejected; NaN is data.
const ANY: Param = Param {
    name: "",
    requirement: "any value",
    valid: |_| true,
    rejected: &[],
    accepted: &[],
    kink: false,
};

/// Keras's `log cosh(x - y)`.
pub const LOG_COSH: Pointwise = pointwise_entry! {
    {
        id: "log_cosh",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::NonNegative,
        // tanh below |d| = 1 is a quotient of two series and a log1p-free product: a few
        // roundings of values up to 1.
        grad_terms: |_| 2.0,
        exact: false,
    }
    reduce: |x, y, _p, r| losskit::log_cosh(x, y, r),
    each: |x, y, _p, out| losskit::log_cosh_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::log_cosh_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::log_cosh(x, y),
    reference_grad: |x, y, _p| reference::log_cosh_grad(x, y),
};

/// `log(1 + e^(-y·x))`, exact. `0·inf` between the arguments is NaN, so not `NonNegative`.
pub const SOFT_MARGIN: Pointwise = pointwise_entry! {
    {
        id: "soft_margin",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::Unbounded,
        // -y·sigmoid: |y| up to 6 in the gradient suite.
        grad_terms: |_| 6.0,
        exact: false,
    }
    reduce: |x, y, _p, r| losskit::soft_margin(x, y, r),
    each: |x, y, _p, out| losskit::soft_margin_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::soft_margin_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::soft_margin(x, y),
    reference_grad: |x, y, _p| reference::soft_margin_grad(x, y),
};

/// PyTorch's hinge_embedding with `margin` (any value: PyTorch checks none). Exact: a max and
/// two selects.
pub const HINGE_EMBEDDING: Pointwise = pointwise_entry! {
    {
        id: "hinge_embedding",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "margin",
            accepted: &[-1.0, 0.0, 1.0, f64::INFINITY, f64::NAN],
            ..ANY
        }),
        param_optional: false,
        settings: &[Some(1.0), Some(0.5), Some(0.0)],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::Unbounded,
        grad_terms: |_| 1.0,
        exact: true,
    }
    reduce: |x, y, p, r| losskit::hinge_embedding(x, y, p.expect("margin"), r),
    each: |x, y, p, out| losskit::hinge_embedding_each(x, y, p.expect("margin"), out),
    and_grad: |x, y, p, r, grad| {
        losskit::hinge_embedding_and_grad(x, y, p.expect("margin"), r, grad)
    },
    reference: |x, y, p| reference::hinge_embedding(x, y, p.expect("margin")),
    reference_grad: |x, y, p| reference::hinge_embedding_grad(x, y, p.expect("margin")),
};

/// poisson_nll with PyTorch's defaults (`log_input`, no Stirling term): `e^x - t·x`.
pub const POISSON_NLL: Pointwise = pointwise_entry! {
    {
        id: "poisson_nll",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::Unbounded,
        // e^x - t: e^6 = 403 in the gradient suite, whose ulp the difference keeps.
        grad_terms: |_| 500.0,
        exact: false,
    }
    reduce: |x, y, _p, r| losskit::poisson_nll(x, y, r),
    each: |x, y, _p, out| losskit::poisson_nll_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::poisson_nll_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::poisson_nll(x, y, true, false, 1e-8),
    reference_grad: |x, y, _p| reference::poisson_nll_grad(x, y, true, 1e-8),
};

/// poisson_nll with `log_input` and `full` (the Stirling term where `t > 1`).
pub const POISSON_NLL_FULL: Pointwise = pointwise_entry! {
    {
        id: "poisson_nll_full",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::Unbounded,
        grad_terms: |_| 500.0,
        exact: false,
    }
    reduce: |x, y, _p, r| PoissonNll::new().full(true).loss(x, y, r),
    each: |x, y, _p, out| PoissonNll::new().full(true).each(x, y, out),
    and_grad: |x, y, _p, r, grad| PoissonNll::new().full(true).loss_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::poisson_nll(x, y, true, true, 1e-8),
    reference_grad: |x, y, _p| reference::poisson_nll_grad(x, y, true, 1e-8),
};

/// poisson_nll on rates (`log_input = false`), `full`, with `eps`: `x - t·ln(x + eps)` plus
/// the Stirling term. Rates are `>= 0` by meaning (PyTorch gives NaN below `-eps`).
pub const POISSON_NLL_RATE: Pointwise = pointwise_entry! {
    {
        id: "poisson_nll_rate",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "eps",
            accepted: &[0.0, 1e-8, 1.0, -1.0, f64::NAN],
            ..ANY
        }),
        param_optional: true,
        settings: &[None, Some(1e-8), Some(0.5)],
        input: Domain::NonNegative,
        target: Domain::Real,
        range: Range::Unbounded,
        grad_terms: |_| 1.0,
        exact: false,
    }
    reduce: |x, y, p, r| match p {
        None => PoissonNll::new().log_input(false).full(true).loss(x, y, r),
        Some(eps) => PoissonNll::new().log_input(false).full(true).eps(eps).loss(x, y, r),
    },
    each: |x, y, p, out| match p {
        None => PoissonNll::new().log_input(false).full(true).each(x, y, out),
        Some(eps) => PoissonNll::new().log_input(false).full(true).eps(eps).each(x, y, out),
    },
    and_grad: |x, y, p, r, grad| match p {
        None => PoissonNll::new().log_input(false).full(true).loss_and_grad(x, y, r, grad),
        Some(eps) => {
            PoissonNll::new().log_input(false).full(true).eps(eps).loss_and_grad(x, y, r, grad)
        }
    },
    reference: |x, y, p| reference::poisson_nll(x, y, false, true, p.unwrap_or(1e-8)),
    reference_grad: |x, y, p| reference::poisson_nll_grad(x, y, false, p.unwrap_or(1e-8)),
};

/// kl_div on probability targets (`>= 0` by meaning; PyTorch gives NaN below 0).
pub const KL_DIV: Pointwise = pointwise_entry! {
    {
        id: "kl_div",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::NonNegative,
        range: Range::Unbounded,
        grad_terms: |_| 1.0,
        exact: false,
    }
    reduce: |x, y, _p, r| losskit::kl_div(x, y, r),
    each: |x, y, _p, out| losskit::kl_div_each(x, y, out),
    and_grad: |x, y, _p, r, grad| losskit::kl_div_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::kl_div(x, y, false),
    reference_grad: |x, y, _p| reference::kl_div_grad(x, y, false),
};

/// kl_div on log-probability targets (`log_target`).
pub const KL_DIV_LOG_TARGET: Pointwise = pointwise_entry! {
    {
        id: "kl_div_log_target",
        kind: Kind::Pointwise,
        param: None,
        param_optional: false,
        settings: &[None],
        input: Domain::Real,
        target: Domain::Real,
        range: Range::Unbounded,
        grad_terms: |_| 1.0,
        exact: false,
    }
    reduce: |x, y, _p, r| KlDiv::new().log_target(true).loss(x, y, r),
    each: |x, y, _p, out| KlDiv::new().log_target(true).each(x, y, out),
    and_grad: |x, y, _p, r, grad| KlDiv::new().log_target(true).loss_and_grad(x, y, r, grad),
    reference: |x, y, _p| reference::kl_div(x, y, true),
    reference_grad: |x, y, _p| reference::kl_div_grad(x, y, true),
};

/// The focal loss's size of gradient terms: `(p - t)·q^γ` and `γ·ce·q^(γ-1)·p(1 - p)`, with
/// `ce` up to 6 for `|x| <= 6` (the gradient suite), each a product of several roundings.
const FOCAL_TERMS: fn(Option<f64>) -> f64 = |_| 16.0;

/// torchvision's sigmoid_focal at `gamma = 2` with `alpha` (negative disables it); without the
/// parameter, the plain function (`alpha = 0.25`).
pub const SIGMOID_FOCAL: Pointwise = pointwise_entry! {
    {
        id: "sigmoid_focal",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "alpha",
            requirement: "not NaN",
            valid: |v| !v.is_nan(),
            rejected: &[(f64::NAN, "NaN")],
            accepted: &[-1.0, 0.0, 0.25, 1.0, 2.0, f64::INFINITY],
            kink: false,
        }),
        param_optional: true,
        settings: &[None, Some(-1.0), Some(0.5)],
        input: Domain::Real,
        target: Domain::UnitUnchecked,
        range: Range::Unbounded,
        grad_terms: FOCAL_TERMS,
        exact: false,
    }
    reduce: |x, y, p, r| match p {
        None => losskit::sigmoid_focal(x, y, r),
        Some(a) => SigmoidFocal::new().alpha(a).loss(x, y, r),
    },
    each: |x, y, p, out| match p {
        None => losskit::sigmoid_focal_each(x, y, out),
        Some(a) => SigmoidFocal::new().alpha(a).each(x, y, out),
    },
    and_grad: |x, y, p, r, grad| match p {
        None => losskit::sigmoid_focal_and_grad(x, y, r, grad),
        Some(a) => SigmoidFocal::new().alpha(a).loss_and_grad(x, y, r, grad),
    },
    reference: |x, y, p| reference::sigmoid_focal(x, y, p.unwrap_or(0.25), 2.0),
    reference_grad: |x, y, p| reference::sigmoid_focal_grad(x, y, p.unwrap_or(0.25), 2.0),
};

/// sigmoid_focal without `alpha` at `gamma` (`>= 0` and finite).
pub const SIGMOID_FOCAL_GAMMA: Pointwise = pointwise_entry! {
    {
        id: "sigmoid_focal_gamma",
        kind: Kind::Pointwise,
        param: Some(Param {
            name: "gamma",
            requirement: ">= 0 and finite",
            valid: |v| v >= 0.0 && v.is_finite(),
            rejected: &[
                (-1.0, "-1"),
                (-0.5, "-0.5"),
                (f64::NAN, "NaN"),
                (f64::INFINITY, "inf"),
                (f64::NEG_INFINITY, "-inf"),
            ],
            accepted: &[0.0, 0.5, 1.0, 2.0, 5.0],
            kink: false,
        }),
        param_optional: false,
        settings: &[Some(0.0), Some(0.5), Some(1.0), Some(3.0)],
        input: Domain::Real,
        target: Domain::UnitUnchecked,
        range: Range::Unbounded,
        grad_terms: FOCAL_TERMS,
        exact: false,
    }
    reduce: |x, y, p, r| SigmoidFocal::new().alpha(-1.0).gamma(p.expect("gamma")).loss(x, y, r),
    each: |x, y, p, out| SigmoidFocal::new().alpha(-1.0).gamma(p.expect("gamma")).each(x, y, out),
    and_grad: |x, y, p, r, grad| {
        SigmoidFocal::new().alpha(-1.0).gamma(p.expect("gamma")).loss_and_grad(x, y, r, grad)
    },
    reference: |x, y, p| reference::sigmoid_focal(x, y, -1.0, p.expect("gamma")),
    reference_grad: |x, y, p| reference::sigmoid_focal_grad(x, y, -1.0, p.expect("gamma")),
};
