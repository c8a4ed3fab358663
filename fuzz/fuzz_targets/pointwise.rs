//! Every pointwise loss, reduced and `*_each`, on arbitrary bit patterns, parameters and
//! (mismatched) lengths. Checks the documented contract: no panic; `Ok` exactly when lengths
//! and parameters are valid, otherwise the error that names the argument; errors leave `out`
//! untouched; NaN in an element gives a NaN reduction and a NaN in that `out` element; the mean
//! over nothing is NaN and the sum over nothing is 0; losses are never negative.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use common::{build, check_outcome, Elem, Len, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{reference, LossError, Reduction};

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Loss {
    Mse,
    L1,
    Huber,
    SmoothL1,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mode {
    Reduce(bool),
    Each,
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
}

/// The loss of one element as the reference defines it (`None` for a parameter the loss
/// rejects).
fn element<T: Elem>(loss: Loss, x: T, y: T, p: T) -> T {
    match loss {
        Loss::Mse => reference::mse(x, y),
        Loss::L1 => reference::l1(x, y),
        Loss::Huber => reference::huber(x, y, p),
        Loss::SmoothL1 => reference::smooth_l1(x, y, p),
    }
}

fn param_error<T: Elem>(loss: Loss, p: T) -> Option<LossError> {
    match loss {
        Loss::Mse | Loss::L1 => None,
        // PyTorch: delta must be > 0, beta >= 0; NaN fails both.
        Loss::Huber => (!(p.f64() > 0.0)).then(|| LossError::InvalidParameter {
            name: "delta",
            value: p.f64(),
            requirement: "> 0",
        }),
        Loss::SmoothL1 => (!(p.f64() >= 0.0)).then(|| LossError::InvalidParameter {
            name: "beta",
            value: p.f64(),
            requirement: ">= 0",
        }),
    }
}

fn reduce<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, r: Reduction) -> Result<T, LossError> {
    match loss {
        Loss::Mse => losskit::mse(x, y, r),
        Loss::L1 => losskit::l1(x, y, r),
        Loss::Huber => losskit::huber(x, y, p, r),
        Loss::SmoothL1 => losskit::smooth_l1(x, y, p, r),
    }
}

fn each<T: Elem>(loss: Loss, x: &[T], y: &[T], p: T, out: &mut [T]) -> Result<(), LossError> {
    match loss {
        Loss::Mse => losskit::mse_each(x, y, out),
        Loss::L1 => losskit::l1_each(x, y, out),
        Loss::Huber => losskit::huber_each(x, y, p, out),
        Loss::SmoothL1 => losskit::smooth_l1_each(x, y, p, out),
    }
}

fn run<T: Elem>(c: &Case) {
    let n = c.input.get();
    let (nt, no) = (c.target.get(n), c.out.get(n));
    let offset = c.offset as usize % 16;
    let xs = build::<T>(n, offset, c.at, &c.raw_input, 1);
    let ys = build::<T>(nt, offset, c.at, &c.raw_target, 2);
    let (x, y) = (&xs[offset..], &ys[offset..]);
    let p = T::from_bits64(c.param);

    let mut allowed: Vec<LossError> = param_error(c.loss, p).into_iter().collect();
    if nt != n {
        allowed.push(LossError::LengthMismatch {
            name: "target",
            len: nt,
            expected_name: "input",
            expected: n,
        });
    }
    // The reference per-element losses (only meaningful when the call is valid).
    let elems: Vec<T> = if allowed.is_empty() || matches!(c.mode, Mode::Each) {
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
            } else if any_nan_input || any_nan_elem {
                assert!(
                    g.is_nan(),
                    "{:?} {r:?}: NaN element but the loss is {g}",
                    c.loss
                );
            } else {
                // Every element is >= 0 or +inf; their sum can overflow to inf but never be NaN.
                assert!(
                    g >= 0.0,
                    "{:?} {r:?}: non-NaN elements but the loss is {g}",
                    c.loss
                );
            }
        }
        Mode::Each => {
            if no != n {
                allowed.push(LossError::LengthMismatch {
                    name: "out",
                    len: no,
                    expected_name: "input",
                    expected: n,
                });
            }
            let sentinel = T::of(-1234.5);
            let mut out = vec![sentinel; no];
            let got = each(c.loss, x, y, p, &mut out);
            check_outcome(
                &format!("{:?} each n={n} target={nt} out={no}", c.loss),
                &got,
                &allowed,
            );
            if got.is_err() {
                assert!(
                    out.iter().all(|v| v.bits() == sentinel.bits()),
                    "{:?}: an error wrote to out",
                    c.loss
                );
                return;
            }
            for (i, (&o, &e)) in out.iter().zip(&elems).enumerate() {
                if x[i].nan() || y[i].nan() {
                    assert!(o.nan(), "{:?} each[{i}]: NaN input gives {o:?}", c.loss);
                }
                assert_eq!(
                    o.nan(),
                    e.nan(),
                    "{:?} each[{i}]: {o:?} vs reference {e:?}",
                    c.loss
                );
                if !o.nan() {
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
