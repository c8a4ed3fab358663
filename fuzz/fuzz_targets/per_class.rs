//! The `[rows, classes]` losses whose second argument is a matrix of targets and whose options
//! are per class: bce_with_logits with a per-class `pos_weight` (and optionally a per-element
//! `weight`), multilabel_soft_margin (optionally with per-class weights), and multi_margin
//! (labels instead of the target matrix; `p`, `margin` and per-class weights), and
//! cosine_embedding (the target matrix as `x2`, the weights as the per-row `y`), and
//! triplet_margin (input, target and weights as anchor, positive and negative), and
//! multilabel_margin (a matrix of class indices, each row's list ended by -1). Arbitrary bit
//! patterns in every input, any number of classes (0 included), labels in and out of range,
//! and (mismatched) lengths of every argument. Checks the contract: no panic; `Ok` exactly when
//! the shape and every length hold (and every `pos_weight` is `>= 0`, every label a class, `p`
//! 1 or 2), otherwise an error naming the argument; an error writes nothing; the fused form's
//! loss is the reduced loss, bit for bit (any NaN for a NaN).
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../../tests/registry/mod.rs"]
#[macro_use]
mod registry;

use arbitrary::Arbitrary;
use common::{build, check_outcome, mismatch, same, untouched, Elem, Len, Size};
use libfuzzer_sys::fuzz_target;
use losskit::{
    multilabel_margin, multilabel_margin_and_grad, multilabel_margin_each, BceWithLogitsPerClass,
    CosineEmbedding, LossError, MultiMargin, MultilabelSoftMargin, Reduction, TripletMargin,
};

#[derive(Arbitrary, Debug)]
enum Family {
    PosWeight,
    Multilabel,
    /// With its `p` (any value, 1 and 2 valid).
    MultiMargin(u8),
    Cosine,
    /// With its `p` (any value, 1 and 2 valid) and `swap`.
    Triplet(u8, bool),
    MultilabelMargin,
}

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    family: Family,
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
        match c.family {
            Family::PosWeight | Family::Triplet(..) => c.weight.get(n),
            Family::Cosine => c.weight.get(n.checked_div(classes).unwrap_or(0)),
            _ => c.weight.get(classes),
        },
        classes,
    ];
    let v: Vec<Vec<T>> = (0..4)
        .map(|i| build::<T>(lens[i], offset, c.at[i], &c.raw[i], i as u64 + 1))
        .collect();
    let (x, t, w, pw) = (&v[0][offset..], &v[1][offset..], &v[2][offset..], &v[3][offset..]);
    let r = if c.sum { Reduction::Sum } else { Reduction::Mean };
    let mut errors: Vec<LossError> = Vec::new();
    errors.extend(shape(n, classes));
    errors.extend(mismatch("target", t.len(), "input", n));
    let rows = if classes == 0 { 0 } else { n / classes };
    match c.family {
        Family::Multilabel => {
            if c.weighted {
                errors.extend(mismatch("weight", w.len(), "classes", classes));
            }
            let mut loss = MultilabelSoftMargin::new();
            if c.weighted {
                loss = loss.weight(w);
            }
            let reduced = loss.loss(x, t, classes, r);
            check_forms(
                c,
                &errors,
                &reduced,
                (rows, "rows of input"),
                (n, "grad", "input"),
                |out| loss.each(x, t, classes, out),
                |g| loss.loss_and_grad(x, t, classes, r, g),
            );
        }
        Family::MultiMargin(p) => {
            // Labels from fuzzer bits: mostly classes, sometimes -1, `classes` or anything.
            let labels: Vec<i64> = (0..t.len())
                .map(|i| {
                    let raw = c.raw[1].get(i).copied().unwrap_or(i as u64);
                    match raw % 64 {
                        0 => raw as i64,
                        1 => classes as i64,
                        2 => -1,
                        _ => ((raw >> 6) % classes.max(1) as u64) as i64,
                    }
                })
                .collect();
            let p = u32::from(p % 4);
            let mut errors: Vec<LossError> = Vec::new();
            if !matches!(p, 1 | 2) {
                errors.push(LossError::InvalidParameter {
                    name: "p",
                    value: f64::from(p),
                    requirement: "1 or 2",
                });
            }
            errors.extend(shape(n, classes));
            if c.weighted {
                errors.extend(mismatch("weight", w.len(), "classes", classes));
            }
            errors.extend(mismatch("labels", labels.len(), "rows of input", rows));
            // A label out of range is an error only once the lengths agree.
            if errors.is_empty() {
                let bad = labels.iter().position(|&l| !(0..classes as i64).contains(&l));
                if let Some(row) = bad {
                    errors.push(LossError::LabelOutOfRange {
                        row,
                        label: i128::from(labels[row]),
                        classes,
                    });
                }
            }
            let margin = t.first().copied().unwrap_or(T::of(1.0));
            let mut loss = MultiMargin::new().p(p).margin(margin);
            if c.weighted {
                loss = loss.weight(w);
            }
            let reduced = loss.loss(x, classes, &labels, r);
            check_forms(
                c,
                &errors,
                &reduced,
                (rows, "rows of input"),
                (n, "grad", "input"),
                |out| loss.each(x, classes, &labels, out),
                |g| loss.loss_and_grad(x, classes, &labels, r, g),
            );
        }
        Family::MultilabelMargin => {
            // Class indices from fuzzer bits: mostly classes or -1, sometimes `classes`, -2 or
            // anything.
            let targets: Vec<i64> = (0..t.len())
                .map(|i| {
                    let raw = c.raw[1].get(i).copied().unwrap_or(i as u64);
                    match raw % 64 {
                        0 => raw as i64,
                        1 => classes as i64,
                        2 => -2,
                        3..=12 => -1,
                        _ => ((raw >> 6) % classes.max(1) as u64) as i64,
                    }
                })
                .collect();
            // Every entry out of -1..classes is an error (those after a row's -1 too), only
            // once the lengths agree.
            if errors.is_empty() {
                let bad = targets.iter().position(|&l| !(-1..classes as i64).contains(&l));
                if let Some(at) = bad {
                    errors.push(LossError::LabelOutOfRange {
                        row: at / classes,
                        label: i128::from(targets[at]),
                        classes,
                    });
                }
            }
            let reduced = multilabel_margin(x, &targets, classes, r);
            check_forms(
                c,
                &errors,
                &reduced,
                (rows, "rows of input"),
                (n, "grad", "input"),
                |out| multilabel_margin_each(x, &targets, classes, out),
                |g| multilabel_margin_and_grad(x, &targets, classes, r, g),
            );
        }
        Family::Cosine => {
            let mut errors: Vec<LossError> = shape(n, classes).into_iter().collect();
            errors.extend(mismatch("x2", t.len(), "x1", n));
            errors.extend(mismatch("y", w.len(), "rows of x1", rows));
            let loss = CosineEmbedding::new().margin(pw.first().copied().unwrap_or(T::of(0.0)));
            let reduced = loss.loss(x, t, w, classes, r);
            let mut g2 = vec![T::of(0.375); n];
            check_forms(
                c,
                &errors,
                &reduced,
                (rows, "rows of x1"),
                (n, "grad1", "x1"),
                |out| loss.each(x, t, w, classes, out),
                |g| loss.loss_and_grad(x, t, w, classes, r, g, &mut g2),
            );
        }
        Family::Triplet(p, swap) => {
            let p = u32::from(p % 4);
            let mut errors: Vec<LossError> = Vec::new();
            if !matches!(p, 1 | 2) {
                errors.push(LossError::InvalidParameter {
                    name: "p",
                    value: f64::from(p),
                    requirement: "1 or 2",
                });
            }
            errors.extend(shape(n, classes));
            errors.extend(mismatch("positive", t.len(), "anchor", n));
            errors.extend(mismatch("negative", w.len(), "anchor", n));
            let first = |v: &[T]| v.first().copied();
            let loss = TripletMargin::new()
                .p(p)
                .swap(swap)
                .margin(first(pw).unwrap_or(T::of(1.0)))
                .eps(pw.get(1).copied().unwrap_or(T::of(1e-6)));
            let reduced = loss.loss(x, t, w, classes, r);
            let (mut gp, mut gn) = (vec![T::of(0.375); n], vec![T::of(0.375); n]);
            check_forms(
                c,
                &errors,
                &reduced,
                (rows, "rows of anchor"),
                (n, "grad_anchor", "anchor"),
                |out| loss.each(x, t, w, classes, out),
                |g| loss.loss_and_grad(x, t, w, classes, r, g, &mut gp, &mut gn),
            );
        }
        Family::PosWeight => {
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
            check_forms(
                c,
                &errors,
                &reduced,
                (n, "input"),
                (n, "grad", "input"),
                |out| loss.each(x, t, out),
                |g| loss.loss_and_grad(x, t, r, g),
            );
        }
    }
}

/// One call's forms: the reduced result fails exactly with one of `errors`; `each` (its `out`
/// valid at `each_len`, named against what it counts) and the fused form (its gradient valid at
/// `n`, named `grad` against `of`) with one of those or their own length's; a failed `each` or fused call writes nothing,
/// and a successful fused call returns the reduced loss's bits.
fn check_forms<T: Elem>(
    c: &Case,
    errors: &[LossError],
    reduced: &Result<T, LossError>,
    (each_len, each_of): (usize, &'static str),
    (n, grad, of): (usize, &'static str, &'static str),
    each: impl FnOnce(&mut [T]) -> Result<(), LossError>,
    fused: impl FnOnce(&mut [T]) -> Result<T, LossError>,
) {
    let sentinel = T::of(0.375);
    check_outcome("reduce", reduced, errors);
    let mut out = vec![sentinel; c.out.get(each_len)];
    let mut each_errors = errors.to_vec();
    each_errors.extend(mismatch("out", out.len(), each_of, each_len));
    let each = each(&mut out);
    check_outcome("each", &each, &each_errors);
    if each.is_err() {
        untouched(&out, sentinel, "each");
    }
    let mut g = vec![sentinel; c.out.get(n)];
    let mut grad_errors = errors.to_vec();
    grad_errors.extend(mismatch(grad, g.len(), of, n));
    let fused = fused(&mut g);
    check_outcome("and_grad", &fused, &grad_errors);
    fused_matches(&fused, reduced, &g, sentinel);
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
