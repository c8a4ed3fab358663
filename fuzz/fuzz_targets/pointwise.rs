//! Every pointwise loss of the registry (`tests/registry`: mse, l1, huber, smooth_l1, bce and
//! `Bce` with epsilon, bce_with_logits and `BceWithLogits` with pos_weight, ...), reduced,
//! `*_each` and fused with the gradient (`*_and_grad`), on arbitrary bit patterns, parameters
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
#[path = "../../tests/registry/mod.rs"]
#[macro_use]
mod registry;

use arbitrary::Arbitrary;
use common::{build, check_outcome, mismatch, same, untouched, Elem, Len, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{LossError, Reduction};
use registry::{Domain, Pointwise, Range, POINTWISE};

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
    /// The registry entry and whether a loss whose parameter is optional (`Bce::epsilon`,
    /// `BceWithLogits::pos_weight`) gets it (see [`pick`]); a `u32`, as the `Loss` enum this
    /// field replaced was decoded, so the corpus seeds' other fields decode as before.
    loss: u32,
    mode: Mode,
    param: u64,
    input: Size,
    target: Len,
    out: Len,
    offset: u8,
    at: u32,
    raw_input: Vec<u64>,
    raw_target: Vec<u64>,
    /// Map input / target values outside [0, 1] into it, so that the valid paths of a loss with
    /// a probability argument (bce) are reached.
    squash_input: bool,
    squash_target: bool,
}

/// The registry entry that `raw` selects, as `arbitrary` derives an enum's variant from a
/// `u32` (`raw · len / 2^32`), and whether a loss whose parameter is optional gets it (the low
/// bit; a required parameter is always passed).
fn pick(raw: u32) -> (&'static Pointwise, bool) {
    let index = (u64::from(raw) * POINTWISE.len() as u64) >> 32;
    (POINTWISE[index as usize], raw & 1 == 1)
}

/// `v` if it is in [0, 1], else a value of [0, 1] (0 and 1 included) taken from its bits.
fn squash<T: Elem>(v: T) -> T {
    if v.f64() >= 0.0 && v.f64() <= 1.0 {
        v
    } else {
        T::of(((v.bits() >> 3) % 1025) as f64 / 1024.0)
    }
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
    let (loss, with_param) = pick(c.loss);
    let p = T::from_bits64(c.param);
    let setting = (loss.param.is_some() && (with_param || !loss.param_optional)).then_some(p);
    let name = loss.label(setting.map(|p| p.f64()));
    let checks_probabilities =
        loss.input == Domain::Probability || loss.target == Domain::Probability;
    let is_logits = loss.range == Range::FiniteWhenModerate;
    // Unbounded losses: only NaN in the input is asserted to propagate (a NaN target of
    // hinge_embedding gives a finite loss, as PyTorch's), and nothing of the sign or of NaN
    // from inf arithmetic, which the f64 reference may avoid.
    let unbounded = loss.range == Range::Unbounded;

    let mut allowed: Vec<LossError> = loss
        .param_error(setting.map(|p| p.f64()))
        .into_iter()
        .collect();
    allowed.extend(mismatch("target", nt, "input", n));
    // Probabilities are checked once the lengths match (either argument may be reported first).
    let probability_errors: Vec<LossError> = if checks_probabilities && nt == n {
        loss.input
            .first_error("input", x.iter().map(|v| v.f64()))
            .into_iter()
            .chain(loss.target.first_error("target", y.iter().map(|v| v.f64())))
            .collect()
    } else {
        Vec::new()
    };
    let pw = setting.filter(|_| is_logits).map(|p| p.f64());
    let moderate = |x: T, t: T| Range::moderate(x.f64(), t.f64(), pw);
    // The reference per-element losses (only meaningful when the call is valid).
    let elems: Vec<T> = if allowed.is_empty() || matches!(c.mode, Mode::Each | Mode::Grad(_)) {
        x.iter()
            .zip(y)
            .map(|(&a, &b)| loss.reference(a, b, setting))
            .collect()
    } else {
        Vec::new()
    };
    let any_nan_input = x
        .iter()
        .zip(y)
        .any(|(a, b)| a.nan() || (b.nan() && !unbounded));
    let any_nan_elem = elems.iter().any(|v| v.nan());

    match c.mode {
        Mode::Reduce(sum) => {
            let r = if sum { Reduction::Sum } else { Reduction::Mean };
            allowed.extend(probability_errors.iter().cloned());
            let got = loss.reduce(x, y, setting, r);
            check_outcome(&format!("{name} {r:?} n={n} target={nt}"), &got, &allowed);
            let Ok(got) = got else { return };
            let g = got.f64();
            if n == 0 {
                match r {
                    Reduction::Mean => {
                        assert!(g.is_nan(), "{name}: mean of nothing is {g}, not NaN")
                    }
                    Reduction::Sum => {
                        assert!(g == 0.0, "{name}: sum of nothing is {g}, not 0")
                    }
                }
            } else if any_nan_input || (any_nan_elem && !is_logits && !unbounded) {
                assert!(g.is_nan(), "{name} {r:?}: NaN element but the loss is {g}");
            } else if unbounded {
                // Any value.
            } else if is_logits {
                if x.iter().zip(y).all(|(&a, &b)| moderate(a, b)) {
                    assert!(g.is_finite(), "{name} {r:?}: moderate inputs, loss {g}");
                }
            } else if loss.range == Range::UpTo100 {
                // Each element is in [0, 100] (logs clamped at -100).
                let per = 100.0 * (1.0 + 8.0 * T::UNIT);
                let max = if sum { per * n as f64 } else { per };
                assert!(
                    g >= 0.0 && g <= max,
                    "{name} {r:?}: bce of probabilities is {g}"
                );
            } else {
                // Every element is >= 0 or +inf; their sum can overflow to inf but never be NaN.
                assert!(g >= 0.0, "{name} {r:?}: non-NaN elements, loss {g}");
            }
        }
        Mode::Grad(sum) => {
            let r = if sum { Reduction::Sum } else { Reduction::Mean };
            allowed.extend(mismatch("grad", no, "input", n));
            allowed.extend(probability_errors.iter().cloned());
            let sentinel = T::of(-1234.5);
            let mut grad = vec![sentinel; no];
            let got = loss.and_grad(x, y, setting, r, &mut grad);
            check_outcome(
                &format!("{name} and_grad {r:?} n={n} target={nt} grad={no}"),
                &got,
                &allowed,
            );
            let Ok(fused) = got else {
                untouched(&grad, sentinel, &format!("{name} (grad)"));
                return;
            };
            let plain = loss
                .reduce(x, y, setting, r)
                .expect("the fused form was valid");
            assert!(
                same(fused, plain),
                "{name} {r:?}: fused loss {fused:?}, reduced {plain:?}",
            );
            if is_logits && p.f64().abs() <= 1e6 {
                for (i, g) in grad.iter().enumerate() {
                    if moderate(x[i], y[i]) {
                        let what = format!("{name} grad[{i}]: f({:?}, {:?})", x[i], y[i]);
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
            let got = loss.each(x, y, setting, &mut out);
            check_outcome(
                &format!("{name} each n={n} target={nt} out={no}"),
                &got,
                &allowed,
            );
            if got.is_err() {
                untouched(&out, sentinel, &format!("{name} (out)"));
                return;
            }
            for (i, (&o, &e)) in out.iter().zip(&elems).enumerate() {
                if x[i].nan() || (y[i].nan() && !unbounded) {
                    assert!(o.nan(), "{name} each[{i}]: NaN input gives {o:?}");
                }
                if unbounded {
                    continue;
                }
                if is_logits {
                    if moderate(x[i], y[i]) {
                        let what = format!("{name} each[{i}]: f({:?}, {:?})", x[i], y[i]);
                        assert!(o.f64().is_finite(), "{what} = {o:?}");
                    }
                    continue;
                }
                assert_eq!(
                    o.nan(),
                    e.nan(),
                    "{name} each[{i}]: {o:?} vs reference {e:?}"
                );
                if loss.range == Range::UpTo100 {
                    let ok = o.f64() >= 0.0 && o.f64() <= 100.0 * (1.0 + 8.0 * T::UNIT);
                    assert!(ok, "{name} each[{i}]: bce({:?}, {:?}) = {o:?}", x[i], y[i]);
                } else if !o.nan() {
                    assert!(o.f64() >= 0.0, "{name} each[{i}] is negative: {o:?}");
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
