//! The pointwise losses: one `const` per loss, listed once in [`pointwise_losses!`].

use losskit::{reference, Bce, BceWithLogits};

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
