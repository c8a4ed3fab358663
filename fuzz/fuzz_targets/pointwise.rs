//! Every pointwise loss (mse, l1, huber, smooth_l1, bce, `Bce` with epsilon, bce_with_logits,
//! `BceWithLogits` with pos_weight), reduced, `*_each` and fused with the gradient
//! (`*_and_grad`), on arbitrary bit patterns, parameters
//! and (mismatched) lengths. Checks the documented contract: no panic; `Ok` exactly when
//! lengths, parameters and (for bce) probabilities are valid, otherwise the error that names the
//! argument; errors leave `out` untouched; NaN in an element gives a NaN reduction and a NaN in
//! that `out` element; the mean over nothing is NaN and the sum over nothing is 0; regression
//! losses and bce are never negative, bce never exceeds 100 per element, and bce_with_logits
//! of moderate finite inputs is finite; the fused forms give the reduced loss, bit for bit (any
//! NaN for a NaN), and write nothing on error.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use common::{build, check_outcome, mismatch, same, untouched, Elem, Len, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{reference, Bce, BceWithLogits, LossError, Reduction};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Loss {
    Mse,
    L1,
    Huber,
    SmoothL1,
    Bce,
    /// `Bce::new().epsilon(param)`.
    BceEpsilon,
    BceWithLogits,
    /// `BceWithLogits::new().pos_weight(param)`.
    BceWithLogitsPosWeight,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mode {
    Reduce(bool),
    Each,
    /// The fused loss and gradient (Sum when true), the gradient into `out`.
    Grad(bool),
}

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    loss: Loss,
    mode: Mode,
    param: u64,
    input: Size,
    target: Len,
    out: Len,
    offset: u8,
    at: u32,
    raw_input: Vec<u64>,
    raw_target: Vec<u64>,
    /// Map input / target values outside [0, 1] into it, so that bce's valid paths are reached.
    squash_input: bool,
    squash_target: bool,
}

/// `v` if it is in [0, 1], else a value of [0, 1] (0 and 1 included) taken from its bits.
fn squash<T: Elem>(v: T) -> T {
    if v.f64() >= 0.0 && v.f64() <= 1.0 {
        v
    } else {
        T::of(((v.bits() >> 3) % 1025) as f64 / 1024.0)
    }
}

fn is_bce(loss: Loss) -> bool {
    matches!(loss, Loss::Bce | Loss::BceEpsilon)
}

fn is_logits(loss: Loss) -> bool {
    matches!(loss, Loss::BceWithLogits | Loss::BceWithLogitsPosWeight)
}

/// The first element outside [0, 1] (NaN included), as the error bce reports.
fn not_a_probability<T: Elem>(name: &'static str, v: &[T]) -> Option<LossError> {
    v.iter()
        .position(|x| !(x.f64() >= 0.0 && x.f64() <= 1.0))
        .map(|index| LossError::NotAProbability {
            name,
            index,
            value: v[index].f64(),
        })
}

/// The loss of one element as the reference defines it.
fn element<T: Elem>(loss: Loss, x: T, y: T, p: T) -> T {
    match loss {
        Loss::Mse => reference::mse(x, y),
        Loss::L1 => reference::l1(x, y),
        Loss::Huber => reference::huber(x, y, p),
        Loss::SmoothL1 => reference::smooth_l1(x, y, p),
        Loss::Bce => reference::bce(x, y),
        Loss::BceEpsilon => reference::bce_clipped(x, y, p),
        Loss::BceWithLogits => reference::bce_with_logits(x, y, None),
        Loss::BceWithLogitsPosWeight => reference::bce_with_logits(x, y, Some(p)),
    }
}

fn param_error<T: Elem>(loss: Loss, p: T) -> Option<LossError> {
    match loss {
        Loss::Mse | Loss::L1 | Loss::Bce | Loss::BceWithLogits => None,
        Loss::BceEpsilon => {
            (!(p.f64() >= 0.0 && p.f64() <= 0.5)).then(|| LossError::InvalidParameter {
                name: "epsilon",
                value: p.f64(),
                requirement: "in [0, 0.5]",
            })
        }
        Loss::BceWithLogitsPosWeight => {
            (p.f64().is_nan() || p.f64() < 0.0).then(|| LossError::InvalidParameter {
                name: "pos_weight",
                value: p.f64(),
                requirement: ">= 0",
            })
        }
        // PyTorch: delta must be > 0, beta >= 0; NaN fails both.
        Loss::Huber => (p.f64().is_nan() || p.f64() <= 0.0).then(|| LossError::InvalidParameter {
            name: "delta",
            value: p.f64(),
            requirement: "> 0",
        }),
        Loss::SmoothL1 => {
            (p.f64().is_nan() || p.f64() < 0.0).then(|| LossError::InvalidParameter {
                name: "beta",
                value: p.f64(),
                requirement: ">= 0",
            })
        }
    }
}

fn reduce<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, r: Reduction) -> Result<T, LossError> {
    match loss {
        Loss::Mse => losskit::mse(x, y, r),
        Loss::L1 => losskit::l1(x, y, r),
        Loss::Huber => losskit::huber(x, y, p, r),
        Loss::SmoothL1 => losskit::smooth_l1(x, y, p, r),
        Loss::Bce => losskit::bce(x, y, r),
        Loss::BceEpsilon => Bce::new().epsilon(p).loss(x, y, r),
        Loss::BceWithLogits => losskit::bce_with_logits(x, y, r),
        Loss::BceWithLogitsPosWeight => BceWithLogits::new().pos_weight(p).loss(x, y, r),
    }
}

fn and_grad<T: Elem>(
    loss: Loss,
    x: &[T],
    y: &[T],
    p: T,
    r: Reduction,
    grad: &mut [T],
) -> Result<T, LossError> {
    match loss {
        Loss::Mse => losskit::mse_and_grad(x, y, r, grad),
        Loss::L1 => losskit::l1_and_grad(x, y, r, grad),
        Loss::Huber => losskit::huber_and_grad(x, y, p, r, grad),
        Loss::SmoothL1 => losskit::smooth_l1_and_grad(x, y, p, r, grad),
        Loss::Bce => losskit::bce_and_grad(x, y, r, grad),
        Loss::BceEpsilon => Bce::new().epsilon(p).loss_and_grad(x, y, r, grad),
        Loss::BceWithLogits => losskit::bce_with_logits_and_grad(x, y, r, grad),
        Loss::BceWithLogitsPosWeight => BceWithLogits::new()
            .pos_weight(p)
            .loss_and_grad(x, y, r, grad),
    }
}

fn each<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, out: &mut [T]) -> Result<(), LossError> {
    match loss {
        Loss::Mse => losskit::mse_each(x, y, out),
        Loss::L1 => losskit::l1_each(x, y, out),
        Loss::Huber => losskit::huber_each(x, y, p, out),
        Loss::SmoothL1 => losskit::smooth_l1_each(x, y, p, out),
        Loss::Bce => losskit::bce_each(x, y, out),
        Loss::BceEpsilon => Bce::new().epsilon(p).each(x, y, out),
        Loss::BceWithLogits => losskit::bce_with_logits_each(x, y, out),
        Loss::BceWithLogitsPosWeight => BceWithLogits::new().pos_weight(p).each(x, y, out),
    }
}

/// Whether bce_with_logits of these values cannot overflow: |x| <= 1e15, |t| <= 1e6 and
/// pos_weight <= 1e6 keep every intermediate below 1e28.
fn moderate<T: Elem>(x: T, t: T, p: Option<T>) -> bool {
    x.f64().abs() <= 1e15 && t.f64().abs() <= 1e6 && p.is_none_or(|p| p.f64().abs() <= 1e6)
}

fn run<T: Elem>(c: &Case) {
    let n = c.input.get();
    let (nt, no) = (c.target.get(n), c.out.get(n));
    let offset = c.offset as usize % 16;
    let mut xs = build::<T>(n, offset, c.at, &c.raw_input, 1);
    let mut ys = build::<T>(nt, offset, c.at, &c.raw_target, 2);
    if c.squash_input {
        xs.iter_mut().for_each(|v| *v = squash(*v));
    }
    if c.squash_target {
        ys.iter_mut().for_each(|v| *v = squash(*v));
    }
    let (x, y) = (&xs[offset..], &ys[offset..]);
    let p = T::from_bits64(c.param);

    let mut allowed: Vec<LossError> = param_error(c.loss, p).into_iter().collect();
    allowed.extend(mismatch("target", nt, "input", n));
    // bce checks probabilities once the lengths match (either argument may be reported first).
    let probability_errors: Vec<LossError> = if is_bce(c.loss) && nt == n {
        not_a_probability("input", x)
            .into_iter()
            .chain(not_a_probability("target", y))
            .collect()
    } else {
        Vec::new()
    };
    let pw = (c.loss == Loss::BceWithLogitsPosWeight).then_some(p);
    // The reference per-element losses (only meaningful when the call is valid).
    let elems: Vec<T> = if allowed.is_empty() || matches!(c.mode, Mode::Each | Mode::Grad(_)) {
        x.iter()
            .zip(y)
            .map(|(&a, &b)| element(c.loss, a, b, p))
            .collect()
    } else {
        Vec::new()
    };
    let any_nan_input = x.iter().zip(y).any(|(a, b)| a.nan() || b.nan());
    let any_nan_elem = elems.iter().any(|v| v.nan());

    match c.mode {
        Mode::Reduce(sum) => {
            let r = if sum { Reduction::Sum } else { Reduction::Mean };
            allowed.extend(probability_errors.iter().cloned());
            let got = reduce(c.loss, x, y, p, r);
            check_outcome(
                &format!("{:?} {r:?} n={n} target={nt}", c.loss),
                &got,
                &allowed,
            );
            let Ok(got) = got else { return };
            let g = got.f64();
            if n == 0 {
                match r {
                    Reduction::Mean => {
                        assert!(g.is_nan(), "{:?}: mean of nothing is {g}, not NaN", c.loss)
                    }
                    Reduction::Sum => {
                        assert!(g == 0.0, "{:?}: sum of nothing is {g}, not 0", c.loss)
                    }
                }
            } else if any_nan_input || (any_nan_elem && !is_logits(c.loss)) {
                assert!(
                    g.is_nan(),
                    "{:?} {r:?}: NaN element but the loss is {g}",
                    c.loss
                );
            } else if is_logits(c.loss) {
                if x.iter().zip(y).all(|(&a, &b)| moderate(a, b, pw)) {
                    assert!(
                        g.is_finite(),
                        "{:?} {r:?}: moderate inputs, loss {g}",
                        c.loss
                    );
                }
            } else if is_bce(c.loss) {
                // Each element is in [0, 100] (logs clamped at -100).
                let per = 100.0 * (1.0 + 8.0 * T::UNIT);
                let max = if sum { per * n as f64 } else { per };
                assert!(
                    g >= 0.0 && g <= max,
                    "{:?} {r:?}: bce of probabilities is {g}",
                    c.loss
                );
            } else {
                // Every element is >= 0 or +inf; their sum can overflow to inf but never be NaN.
                assert!(g >= 0.0, "{:?} {r:?}: non-NaN elements, loss {g}", c.loss);
            }
        }
        Mode::Grad(sum) => {
            let r = if sum { Reduction::Sum } else { Reduction::Mean };
            allowed.extend(mismatch("grad", no, "input", n));
            allowed.extend(probability_errors.iter().cloned());
            let sentinel = T::of(-1234.5);
            let mut grad = vec![sentinel; no];
            let got = and_grad(c.loss, x, y, p, r, &mut grad);
            check_outcome(
                &format!("{:?} and_grad {r:?} n={n} target={nt} grad={no}", c.loss),
                &got,
                &allowed,
            );
            let Ok(loss) = got else {
                untouched(&grad, sentinel, &format!("{:?} (grad)", c.loss));
                return;
            };
            let plain = reduce(c.loss, x, y, p, r).expect("the fused form was valid");
            assert!(
                same(loss, plain),
                "{:?} {r:?}: fused loss {loss:?}, reduced {plain:?}",
                c.loss
            );
            if is_logits(c.loss) && p.f64().abs() <= 1e6 {
                for (i, g) in grad.iter().enumerate() {
                    if moderate(x[i], y[i], pw) {
                        let what = format!("{:?} grad[{i}]: f({:?}, {:?})", c.loss, x[i], y[i]);
                        assert!(g.f64().is_finite(), "{what} = {g:?}");
                    }
                }
            }
        }
        Mode::Each => {
            allowed.extend(mismatch("out", no, "input", n));
            allowed.extend(probability_errors.iter().cloned());
            let sentinel = T::of(-1234.5);
            let mut out = vec![sentinel; no];
            let got = each(c.loss, x, y, p, &mut out);
            check_outcome(
                &format!("{:?} each n={n} target={nt} out={no}", c.loss),
                &got,
                &allowed,
            );
            if got.is_err() {
                untouched(&out, sentinel, &format!("{:?} (out)", c.loss));
                return;
            }
            for (i, (&o, &e)) in out.iter().zip(&elems).enumerate() {
                if x[i].nan() || y[i].nan() {
                    assert!(o.nan(), "{:?} each[{i}]: NaN input gives {o:?}", c.loss);
                }
                if is_logits(c.loss) {
                    if moderate(x[i], y[i], pw) {
                        let what = format!("{:?} each[{i}]: f({:?}, {:?})", c.loss, x[i], y[i]);
                        assert!(o.f64().is_finite(), "{what} = {o:?}");
                    }
                    continue;
                }
                assert_eq!(
                    o.nan(),
                    e.nan(),
                    "{:?} each[{i}]: {o:?} vs reference {e:?}",
                    c.loss
                );
                if is_bce(c.loss) {
                    let ok = o.f64() >= 0.0 && o.f64() <= 100.0 * (1.0 + 8.0 * T::UNIT);
                    assert!(
                        ok,
                        "{:?} each[{i}]: bce({:?}, {:?}) = {o:?}",
                        c.loss, x[i], y[i]
                    );
                } else if !o.nan() {
                    assert!(o.f64() >= 0.0, "{:?} each[{i}] is negative: {o:?}", c.loss);
                }
            }
        }
    }
}

fuzz_target!(|c: Case| {
    if c.double {
        run::<f64>(&c)
    } else {
        run::<f32>(&c)
    }
});
