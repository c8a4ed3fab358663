//! The `[rows, classes]` losses whose second argument is a matrix of targets and whose options
//! are per class: bce_with_logits with a per-class `pos_weight` (and optionally a per-element
//! `weight`), and multilabel_soft_margin (optionally with per-class weights). Arbitrary bit
//! patterns in every input, any number of classes (0 included) and (mismatched) lengths of
//! every argument. Checks the contract: no panic; `Ok` exactly when the shape and every length
//! hold (and every `pos_weight` is `>= 0`), otherwise an error naming the argument; an error
//! writes nothing; the fused form's loss is the reduced loss, bit for bit (any NaN for a NaN).
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../../tests/registry/mod.rs"]
#[macro_use]
mod registry;

use arbitrary::Arbitrary;
use common::{build, check_outcome, mismatch, same, untouched, Elem, Len, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{BceWithLogitsPerClass, LossError, MultilabelSoftMargin, Reduction};

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    multilabel: bool,
    weighted: bool,
    sum: bool,
    classes: u8,
    input: Size,
    target: Len,
    weight: Len,
    out: Len,
    offset: u8,
    at: [u32; 4],
    raw: [Vec<u64>; 4],
}

/// The shape errors of `len` elements in rows of `classes`.
fn shape(len: usize, classes: usize) -> Option<LossError> {
    if classes == 0 {
        Some(LossError::ZeroClasses)
    } else if len % classes != 0 {
        Some(LossError::NotMultipleOfClasses { len, classes })
    } else {
        None
    }
}

fn run<T: Elem + losskit::Storage<Compute = T>>(c: &Case) {
    let classes = c.classes as usize % 70;
    let n = c.input.get();
    let offset = c.offset as usize % 16;
    // The per-element weight of pos_weight's form is as long as the input; the per-class
    // weights of multilabel's, and pos_weight itself, have one per class.
    let lens = [
        n,
        c.target.get(n),
        if c.multilabel { c.weight.get(classes) } else { c.weight.get(n) },
        classes,
    ];
    let v: Vec<Vec<T>> = (0..4)
        .map(|i| build::<T>(lens[i], offset, c.at[i], &c.raw[i], i as u64 + 1))
        .collect();
    let (x, t, w, pw) = (&v[0][offset..], &v[1][offset..], &v[2][offset..], &v[3][offset..]);
    let r = if c.sum { Reduction::Sum } else { Reduction::Mean };
    let sentinel = T::of(0.375);
    let mut errors: Vec<LossError> = Vec::new();
    errors.extend(shape(n, classes));
    errors.extend(mismatch("target", t.len(), "input", n));
    let rows = if classes == 0 { 0 } else { n / classes };
    if c.multilabel {
        if c.weighted {
            errors.extend(mismatch("weight", w.len(), "classes", classes));
        }
        let mut loss = MultilabelSoftMargin::new();
        if c.weighted {
            loss = loss.weight(w);
        }
        let reduced = loss.loss(x, t, classes, r);
        check_outcome("reduce", &reduced, &errors);
        let mut out = vec![sentinel; c.out.get(rows)];
        let mut each_errors = errors.clone();
        each_errors.extend(mismatch("out", out.len(), "rows of input", rows));
        let each = loss.each(x, t, classes, &mut out);
        check_outcome("each", &each, &each_errors);
        if each.is_err() {
            untouched(&out, sentinel, "each");
        }
        let mut g = vec![sentinel; c.out.get(n)];
        let mut grad_errors = errors.clone();
        grad_errors.extend(mismatch("grad", g.len(), "input", n));
        let fused = loss.loss_and_grad(x, t, classes, r, &mut g);
        check_outcome("and_grad", &fused, &grad_errors);
        fused_matches(&fused, &reduced, &g, sentinel);
    } else {
        if c.weighted {
            errors.extend(mismatch("weight", w.len(), "input", n));
        }
        // A negative or NaN pos_weight is an error only once the lengths agree.
        if errors.is_empty() {
            if let Some(&bad) = pw.iter().find(|p| !(p.f64() >= 0.0)) {
                errors.push(LossError::InvalidParameter {
                    name: "pos_weight",
                    value: bad.f64(),
                    requirement: ">= 0",
                });
            }
        }
        let mut loss = BceWithLogitsPerClass::new(pw);
        if c.weighted {
            loss = loss.weight(w);
        }
        let reduced = loss.loss(x, t, r);
        check_outcome("reduce", &reduced, &errors);
        let mut out = vec![sentinel; c.out.get(n)];
        let mut each_errors = errors.clone();
        each_errors.extend(mismatch("out", out.len(), "input", n));
        let each = loss.each(x, t, &mut out);
        check_outcome("each", &each, &each_errors);
        if each.is_err() {
            untouched(&out, sentinel, "each");
        }
        let mut g = vec![sentinel; c.out.get(n)];
        let mut grad_errors = errors.clone();
        grad_errors.extend(mismatch("grad", g.len(), "input", n));
        let fused = loss.loss_and_grad(x, t, r, &mut g);
        check_outcome("and_grad", &fused, &grad_errors);
        fused_matches(&fused, &reduced, &g, sentinel);
    }
}

/// A failed fused call wrote nothing; a successful one returned the reduced loss's bits.
fn fused_matches<T: Elem>(
    fused: &Result<T, LossError>,
    reduced: &Result<T, LossError>,
    g: &[T],
    sentinel: T,
) {
    match (fused, reduced) {
        (Err(_), _) => untouched(g, sentinel, "and_grad"),
        (Ok(f), Ok(l)) => assert!(same(*f, *l), "fused {f:?} vs reduced {l:?}"),
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
