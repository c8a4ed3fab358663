//! The row-wise losses: `[rows, classes]` logits (or log-probabilities) with a label or a
//! probability row per row; one `const` per loss, listed once in [`ROWS`].

use losskit::reference::{self, RowTarget};
use losskit::{CrossEntropy, Float, MultiMargin, Nll};

use super::{Kind, RowOptions, Rows, RowsForms, Targets};

/// Every row-wise loss.
pub const ROWS: &[&Rows] = &[&CROSS_ENTROPY, &CROSS_ENTROPY_PROBS, &NLL, &MULTI_MARGIN];

/// `CrossEntropy` with exactly the options `o` sets.
fn cross_entropy<'w, T: Float>(o: RowOptions<'w, T>) -> CrossEntropy<'w, T> {
    let mut ce = CrossEntropy::new();
    if let Some(w) = o.weight {
        ce = ce.weight(w);
    }
    if let Some(i) = o.ignore_index {
        ce = ce.ignore_index(i);
    }
    if let Some(s) = o.label_smoothing {
        ce = ce.label_smoothing(s);
    }
    if let Some(z) = o.z_loss {
        ce = ce.z_loss(z);
    }
    if let Some(cap) = o.softcap {
        ce = ce.softcap(T::from_f64(cap));
    }
    ce
}

/// `Nll` with exactly the options `o` sets (it has no label smoothing).
fn nll<'w, T: Float>(o: RowOptions<'w, T>) -> Nll<'w, T> {
    assert!(o.label_smoothing.is_none(), "nll has no label smoothing");
    assert!(o.z_loss.is_none(), "nll has no z-loss");
    assert!(o.softcap.is_none(), "nll has no softcap");
    assert!(o.p.is_none() && o.margin.is_none(), "nll has no margin");
    let mut nll = Nll::new();
    if let Some(w) = o.weight {
        nll = nll.weight(w);
    }
    if let Some(i) = o.ignore_index {
        nll = nll.ignore_index(i);
    }
    nll
}

/// `MultiMargin` with exactly the options `o` sets (weight, p, margin).
fn multi_margin<'w, T: Float>(o: RowOptions<'w, T>) -> MultiMargin<'w, T> {
    assert!(
        o.label_smoothing.is_none()
            && o.z_loss.is_none()
            && o.softcap.is_none()
            && o.ignore_index.is_none(),
        "multi_margin has no label smoothing, z-loss or ignored label"
    );
    let mut loss = MultiMargin::new();
    if let Some(w) = o.weight {
        loss = loss.weight(w);
    }
    if let Some(p) = o.p {
        loss = loss.p(p);
    }
    if let Some(m) = o.margin {
        loss = loss.margin(T::from_f64(m));
    }
    loss
}

/// The labels of a call that takes labels.
fn labels<'a, T>(t: Targets<'a, T>, id: &str) -> &'a [i64] {
    match t {
        Targets::Labels(l) => l,
        Targets::Probs(_) => panic!("{id} takes labels"),
    }
}

/// The probability rows of a call that takes probabilities.
fn probs<'a, T>(t: Targets<'a, T>, id: &str) -> &'a [T] {
    match t {
        Targets::Probs(p) => p,
        Targets::Labels(_) => panic!("{id} takes probabilities"),
    }
}

/// Cross-entropy against class labels (`cross_entropy`, `CrossEntropy::loss`).
pub const CROSS_ENTROPY: Rows = rows_entry! {
    {
        id: "cross_entropy",
        kind: Kind::RowsWithLabels,
        options: &["weight", "ignore_index", "label_smoothing", "z_loss", "softcap"],
    }
    reduce: |x, c, t, o, r| cross_entropy(o).loss(x, c, labels(t, "cross_entropy"), r),
    each: |x, c, t, o, out| cross_entropy(o).each(x, c, labels(t, "cross_entropy"), out),
    and_grad: |x, c, t, o, r, grad| {
        cross_entropy(o).loss_and_grad(x, c, labels(t, "cross_entropy"), r, grad)
    },
    in_place: Some(|x, c, t, o, r| {
        cross_entropy(o).loss_and_grad_in_place(x, c, labels(t, "cross_entropy"), r)
    }),
    plain: |x, c, t, r| losskit::cross_entropy(x, c, labels(t, "cross_entropy"), r),
    reference: |row, t, o| {
        let eps = o.label_smoothing.unwrap_or(0.0);
        // The softcap applies first: the loss and the z-loss are the capped row's.
        let capped = match o.softcap {
            Some(cap) => reference::softcap_row(row, cap),
            None => row.to_vec(),
        };
        let (loss, weight) = reference::cross_entropy_row(&capped, t, o.weight, eps);
        match (o.z_loss, t) {
            (Some(z), RowTarget::Class(_)) => {
                let lse = reference::log_sum_exp(&capped);
                (loss + z * lse * lse, weight)
            }
            _ => (loss, weight),
        }
    },
};

/// Cross-entropy against probability rows (`cross_entropy_probs`,
/// `CrossEntropy::loss_probs`).
pub const CROSS_ENTROPY_PROBS: Rows = rows_entry! {
    {
        id: "cross_entropy_probs",
        kind: Kind::RowsWithProbs,
        options: &["weight", "label_smoothing"],
    }
    reduce: |x, c, t, o, r| cross_entropy(o).loss_probs(x, c, probs(t, "cross_entropy_probs"), r),
    each: |x, c, t, o, out| {
        cross_entropy(o).each_probs(x, c, probs(t, "cross_entropy_probs"), out)
    },
    and_grad: |x, c, t, o, r, grad| {
        cross_entropy(o).loss_and_grad_probs(x, c, probs(t, "cross_entropy_probs"), r, grad)
    },
    in_place: None,
    plain: |x, c, t, r| losskit::cross_entropy_probs(x, c, probs(t, "cross_entropy_probs"), r),
    reference: |row, t, o| {
        let eps = o.label_smoothing.unwrap_or(0.0);
        reference::cross_entropy_row(row, t, o.weight, eps)
    },
};

/// The negative log-likelihood of log-probability rows against class labels (`nll`, `Nll`).
pub const NLL: Rows = rows_entry! {
    {
        id: "nll",
        kind: Kind::RowsWithLabels,
        options: &["weight", "ignore_index"],
    }
    reduce: |x, c, t, o, r| nll(o).loss(x, c, labels(t, "nll"), r),
    each: |x, c, t, o, out| nll(o).each(x, c, labels(t, "nll"), out),
    and_grad: |x, c, t, o, r, grad| nll(o).loss_and_grad(x, c, labels(t, "nll"), r, grad),
    in_place: None,
    plain: |x, c, t, r| losskit::nll(x, c, labels(t, "nll"), r),
    reference: |row, t, o| {
        let class = match t {
            RowTarget::Class(k) => Some(k),
            RowTarget::Ignored => None,
            RowTarget::Probs(_) => panic!("nll takes labels"),
        };
        let (loss, weight) = reference::nll_row(row, class, o.weight);
        (loss, weight)
    },
};

/// PyTorch's multi-class hinge loss against class labels (`multi_margin`, `MultiMargin`); a
/// row adds 1 to the mean's divisor.
pub const MULTI_MARGIN: Rows = rows_entry! {
    {
        id: "multi_margin",
        kind: Kind::RowsWithLabels,
        options: &["weight", "p", "margin"],
    }
    reduce: |x, c, t, o, r| multi_margin(o).loss(x, c, labels(t, "multi_margin"), r),
    each: |x, c, t, o, out| multi_margin(o).each(x, c, labels(t, "multi_margin"), out),
    and_grad: |x, c, t, o, r, grad| {
        multi_margin(o).loss_and_grad(x, c, labels(t, "multi_margin"), r, grad)
    },
    in_place: None,
    plain: |x, c, t, r| losskit::multi_margin(x, c, labels(t, "multi_margin"), r),
    reference: |row, t, o| {
        let RowTarget::Class(y) = t else {
            panic!("multi_margin takes labels")
        };
        let (p, margin) = (o.p.unwrap_or(1), o.margin.unwrap_or(1.0));
        (reference::multi_margin_row(row, y, p, margin, o.weight), 1.0)
    },
};
