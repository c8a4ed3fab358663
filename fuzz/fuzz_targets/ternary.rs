//! Every three-input loss of the registry (`TERNARY`: gaussian_nll, margin_ranking and the
//! `*_weighted` first-wave losses), reduced, `_each` and fused, on arbitrary bit patterns in
//! all three inputs and (mismatched) lengths of every argument. Checks the contract: no
//! panic; `Ok` exactly when every length matches and every checked domain holds (gaussian_nll's
//! `var >= 0`, bce's probabilities), otherwise an error naming the argument; an error writes
//! nothing; NaN in an element gives NaN in that `out` element; the fused form's loss is the
//! reduced loss, bit for bit (any NaN for a NaN).
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
use registry::{Ternary, TernaryComputed, TernaryStored, TERNARY};

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    loss: u32,
    sum: bool,
    first: Size,
    second: Len,
    third: Len,
    out: Len,
    out2: Len,
    offset: u8,
    at: [u32; 3],
    raw: [Vec<u64>; 3],
}

fn pick(raw: u32) -> &'static Ternary {
    TERNARY[((u64::from(raw) * TERNARY.len() as u64) >> 32) as usize]
}

fn run<T: Elem + TernaryStored<Compute = T> + TernaryComputed>(c: &Case) {
    let loss = pick(c.loss);
    let n = c.first.get();
    let lens = [n, c.second.get(n), c.third.get(n)];
    let offset = c.offset as usize % 16;
    let v: Vec<Vec<T>> = (0..3)
        .map(|i| build::<T>(lens[i], offset, c.at[i], &c.raw[i], i as u64 + 1))
        .collect();
    let (x, y, z) = (&v[0][offset..], &v[1][offset..], &v[2][offset..]);
    let [a, b, cn] = loss.names;
    let mut errors: Vec<LossError> = Vec::new();
    errors.extend(mismatch(b, y.len(), a, n));
    errors.extend(mismatch(cn, z.len(), a, n));
    let lengths_ok = errors.is_empty();
    // Domain errors are checked only once the lengths agree (any applicable error will do).
    let mut domain = Vec::new();
    if lengths_ok {
        for (i, s) in [x, y, z].into_iter().enumerate() {
            domain.extend(loss.inputs[i].first_error(loss.names[i], s.iter().map(|v| v.f64())));
        }
    }
    let r = if c.sum { Reduction::Sum } else { Reduction::Mean };
    let reduced = loss.reduce(x, y, z, r);
    let allowed: Vec<LossError> = errors.iter().chain(&domain).cloned().collect();
    check_outcome("reduce", &reduced, &allowed);

    let sentinel = T::of(0.375);
    let no = c.out.get(n);
    let mut out = vec![sentinel; no];
    let mut each_errors = allowed.clone();
    each_errors.extend(mismatch("out", no, a, n));
    let each = loss.each(x, y, z, &mut out);
    check_outcome("each", &each, &each_errors);
    match &each {
        Err(_) => untouched(&out, sentinel, "each"),
        Ok(()) => {
            for i in 0..n {
                if x[i].nan() || y[i].nan() || z[i].nan() {
                    assert!(out[i].nan(), "{}: NaN input, out[{i}] = {:?}", loss.id, out[i]);
                }
            }
        }
    }

    let ng = c.out.get(n);
    let ng2 = if loss.grad2.is_some() { c.out2.get(n) } else { 0 };
    let mut g = vec![sentinel; ng];
    let mut g2 = vec![sentinel; ng2];
    let mut grad_errors = allowed;
    grad_errors.extend(mismatch(loss.grad_name(), ng, a, n));
    if loss.grad2.is_some() {
        grad_errors.extend(mismatch(loss.grad2_name(), ng2, a, n));
    }
    let fused = loss.and_grad(x, y, z, r, &mut g, &mut g2);
    check_outcome("and_grad", &fused, &grad_errors);
    match (&fused, &reduced) {
        (Err(_), _) => {
            untouched(&g, sentinel, "and_grad");
            untouched(&g2, sentinel, "and_grad (second gradient)");
        }
        (Ok(f), Ok(l)) => assert!(same(*f, *l), "{}: fused {f:?} vs reduced {l:?}", loss.id),
        (Ok(_), Err(_)) => {}
    }
}

fuzz_target!(|c: Case| {
    if c.double {
        run::<f64>(&c);
    } else {
        run::<f32>(&c);
    }
});
