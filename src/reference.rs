//! The scalar oracle: plain loops, one element at a time, no SIMD, sums in `f64`.
//!
//! Every kernel is differentially tested against these functions. Each per-element function
//! computes in the element type exactly as PyTorch's CPU kernel writes it, so the kernels'
//! results can be held to a few ulps of it; [`reduce`] sums in `f64` in index order.
//! They check nothing: lengths are the caller's business (extra elements are ignored).
//!
//! ```
//! use losskit::{reference, Reduction};
//! let (x, y) = ([1.0f32, 2.0], [0.0f32, 0.0]);
//! let oracle = reference::reduce(x.iter().zip(&y).map(|(&x, &y)| reference::mse(x, y)), Reduction::Mean);
//! assert_eq!(oracle, losskit::mse(&x, &y, Reduction::Mean).unwrap());
//! ```

use crate::{Float, Label, Reduction};

/// Reduces per-element losses: the `f64` sum in index order, divided by the count for
/// [`Reduction::Mean`] (NaN for no elements), then rounded to `T`.
pub fn reduce<T: Float>(values: impl IntoIterator<Item = T>, reduction: Reduction) -> T {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for v in values {
        sum += v.to_f64();
        n += 1;
    }
    reduction.finish(sum, n)
}

/// `(x - y)²`.
pub fn mse<T: Float>(x: T, y: T) -> T {
    let d = x - y;
    d * d
}

/// `|x - y|`.
pub fn l1<T: Float>(x: T, y: T) -> T {
    (x - y).abs()
}

/// Huber: `z = |x - y|`; `0.5 z²` if `z < delta`, else `delta (z - 0.5 delta)`.
pub fn huber<T: Float>(x: T, y: T, delta: T) -> T {
    let half = T::from_f64(0.5);
    let z = (x - y).abs();
    if z < delta {
        half * z * z
    } else {
        delta * (z - half * delta)
    }
}

/// Smooth L1: `z = |x - y|`; `0.5 z² / beta` if `z < beta`, else `z - 0.5 beta`.
pub fn smooth_l1<T: Float>(x: T, y: T, beta: T) -> T {
    let half = T::from_f64(0.5);
    let z = (x - y).abs();
    if z < beta {
        half * z * z / beta
    } else {
        z - half * beta
    }
}

/// PyTorch's `binary_cross_entropy`: `(t - 1)·max(log1p(-p), -100) - t·max(ln p, -100)`.
pub fn bce<T: Float>(p: T, t: T) -> T {
    let floor = T::from_f64(-100.0);
    let log_p = p.ln();
    let log_1mp = (-p).ln_1p();
    let log_p = if log_p > floor { log_p } else { floor };
    let log_1mp = if log_1mp > floor { log_1mp } else { floor };
    (t - T::ONE) * log_1mp - t * log_p
}

/// Keras / scikit-learn binary cross-entropy: `p` clipped to `[eps, 1 - eps]`, then [`bce`].
pub fn bce_clipped<T: Float>(p: T, t: T, eps: T) -> T {
    let p = if p < eps { eps } else { p };
    let hi = T::ONE - eps;
    let p = if p > hi { hi } else { p };
    bce(p, t)
}

/// `log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))`.
pub fn log_sigmoid<T: Float>(x: T) -> T {
    let m = if x < T::ZERO { x } else { T::ZERO };
    m - (-x.abs()).exp().ln_1p()
}

/// PyTorch's `binary_cross_entropy_with_logits`, `(1 - t)·x - lw·log_sigmoid(x)` with
/// `lw = 1 + (pw - 1)·t`, in the form that does not cancel (as the kernel): with
/// `l = log1p(exp(-|x|))`, `-pw·t·x + lw·l` for `x < 0` and `(1 - t)·x + lw·l` otherwise (the
/// two are equal in exact arithmetic; PyTorch's literal form loses digits for soft targets at
/// large `|x|`). `x = -inf` gives NaN, as PyTorch's does.
pub fn bce_with_logits<T: Float>(x: T, t: T, pos_weight: Option<T>) -> T {
    let pw = pos_weight.unwrap_or(T::ONE);
    let weight = match pos_weight {
        Some(pw) => T::ONE + (pw - T::ONE) * t,
        None => T::ONE,
    };
    if x == T::from_f64(f64::NEG_INFINITY) {
        return T::from_f64(f64::NAN);
    }
    let l = (-x.abs()).exp().ln_1p();
    let linear = if x < T::ZERO {
        -(pw * t) * x
    } else {
        (T::ONE - t) * x
    };
    linear + weight * l
}

/// `Σ terms` with Neumaier's compensation: within `2u` of the sum relative to `Σ |terms|`
/// (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.3), whatever the count, so
/// that a twin's own error does not grow with the row length the kernels are tested at.
fn compensated_sum(terms: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut carry) = (0.0f64, 0.0f64);
    for t in terms {
        let next = sum + t;
        carry += if sum.abs() >= t.abs() {
            (sum - next) + t
        } else {
            (t - next) + sum
        };
        sum = next;
    }
    sum + carry
}

/// `log_softmax` of one row, in `f64`: `x - max - ln Σ exp(x - max)`, as PyTorch computes it
/// (so a row of all `-inf`, or with `+inf` or NaN, is all NaN).
pub fn log_softmax<T: Float>(row: &[T]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| {
        let v = v.to_f64();
        if v.is_nan() || m.is_nan() {
            f64::NAN
        } else if v > m {
            v
        } else {
            m
        }
    });
    let lse = compensated_sum(row.iter().map(|&v| (v.to_f64() - max).exp())).ln();
    row.iter().map(|&v| v.to_f64() - max - lse).collect()
}

/// `ln Σ exp(x)` of one row, in `f64`, as `max + ln Σ exp(x - max)` (NaN as `log_softmax`).
pub fn log_sum_exp<T: Float>(row: &[T]) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| {
        let v = v.to_f64();
        if v.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(v)
        }
    });
    max + row
        .iter()
        .map(|&v| (v.to_f64() - max).exp())
        .sum::<f64>()
        .ln()
}

/// The target of one cross-entropy row.
#[derive(Clone, Copy, Debug)]
pub enum RowTarget<'a, T> {
    /// A class index.
    Class(usize),
    /// An ignored row (contributes 0 and no weight).
    Ignored,
    /// A probability distribution over the classes.
    Probs(&'a [T]),
}

/// One row's cross-entropy loss and the weight it adds to a weighted mean, in `f64`, following
/// PyTorch's `cross_entropy` with class weights and label smoothing `eps`.
pub fn cross_entropy_row<T: Float>(
    row: &[T],
    target: RowTarget<'_, T>,
    weight: Option<&[T]>,
    eps: f64,
) -> (f64, f64) {
    let c = row.len();
    let w = |k: usize| weight.map_or(1.0, |w| w[k].to_f64());
    match target {
        RowTarget::Ignored => (0.0, 0.0),
        RowTarget::Class(t) => {
            let logp = log_softmax(row);
            let nll = -w(t) * logp[t];
            if eps > 0.0 {
                let smooth: f64 = -(0..c).map(|k| logp[k] * w(k)).sum::<f64>();
                ((1.0 - eps) * nll + eps / c as f64 * smooth, w(t))
            } else {
                (nll, w(t))
            }
        }
        RowTarget::Probs(p) => {
            let logp = log_softmax(row);
            let loss = -(0..c)
                .map(|k| logp[k] * ((1.0 - eps) * p[k].to_f64() + eps / c as f64) * w(k))
                .sum::<f64>();
            (loss, 1.0)
        }
    }
}

/// The eval statistics of one class-label row, in `f64`: the rank of `label` under the tie
/// rule of [`CeStats`](crate::CeStats) (`#{c : x_c > x_y} + #{c < y : x_c == x_y}`, so rank 0 is
/// the first-index argmax) and the softmax's entropy `-Σ p log p` in nats (`0·log 0 = 0`).
pub fn cross_entropy_row_stats<T: Float>(row: &[T], label: usize) -> (u64, f64) {
    let x_y = row[label].to_f64();
    let above = row.iter().filter(|&&v| v.to_f64() > x_y).count();
    let tied_before = row[..label].iter().filter(|&&v| v.to_f64() == x_y).count();
    let entropy = -log_softmax(row)
        .into_iter()
        .map(|lp| {
            let p = lp.exp();
            if p == 0.0 {
                0.0
            } else {
                p * lp
            }
        })
        .sum::<f64>();
    ((above + tied_before) as u64, entropy)
}

/// The negative log-likelihood of one row of log-probabilities against class `target` (`None`
/// for an ignored row), `(loss, weight)`: `-w_t·x_t` in `T`, as PyTorch's `nll_loss`; an
/// ignored row gives 0 and weight 0.
pub fn nll_row<T: Float>(row: &[T], target: Option<usize>, weight: Option<&[T]>) -> (T, f64) {
    match target {
        Some(t) => {
            let w = weight.map_or(T::ONE, |w| w[t]);
            (-(w * row[t]), w.to_f64())
        }
        None => (T::ZERO, 0.0),
    }
}

/// d/dx of [`mse`]: `2 (x - y)`.
pub fn mse_grad<T: Float>(x: T, y: T) -> T {
    let d = x - y;
    d + d
}

/// `sgn(d)`: 1, -1, or `d` itself for ±0 and NaN.
fn sgn<T: Float>(d: T) -> T {
    if d > T::ZERO {
        T::ONE
    } else if d < T::ZERO {
        -T::ONE
    } else {
        d
    }
}

/// d/dx of [`l1`]: `sgn(x - y)` (0 at a tie, as PyTorch's `sgn`).
pub fn l1_grad<T: Float>(x: T, y: T) -> T {
    sgn(x - y)
}

/// d/dx of [`huber`]: `x - y` clamped to `[-delta, delta]`.
pub fn huber_grad<T: Float>(x: T, y: T, delta: T) -> T {
    let d = x - y;
    if d <= -delta {
        -delta
    } else if d >= delta {
        delta
    } else {
        d
    }
}

/// d/dx of [`smooth_l1`]: `(x - y) / beta` clamped to `[-1, 1]`; `sgn(x - y)` for `beta = 0`.
pub fn smooth_l1_grad<T: Float>(x: T, y: T, beta: T) -> T {
    let d = x - y;
    if beta == T::ZERO {
        return sgn(d);
    }
    if d <= -beta {
        -T::ONE
    } else if d >= beta {
        T::ONE
    } else {
        d / beta
    }
}

/// d/dp of [`bce`] as PyTorch computes it: `(p - t) / max((1 - p) p, 1e-12)`, where the floor
/// is the `f32` value of 1e-12 in every dtype.
pub fn bce_grad<T: Float>(p: T, t: T) -> T {
    let floor = T::from_f64(1e-12f32 as f64);
    let den = (T::ONE - p) * p;
    (p - t) / if den > floor { den } else { floor }
}

/// d/dx of [`bce_with_logits`]: `(1 + (pw - 1) t)·sigmoid(x) - pw·t`.
pub fn bce_with_logits_grad<T: Float>(x: T, t: T, pos_weight: Option<T>) -> T {
    let sigmoid = T::from_f64(1.0 / (1.0 + (-x.to_f64()).exp()));
    match pos_weight {
        Some(pw) => (T::ONE + (pw - T::ONE) * t) * sigmoid - pw * t,
        None => sigmoid - t,
    }
}

/// One row of PyTorch's `multilabel_soft_margin_loss`, in `f64`: the mean over the classes of
/// `w_c·bce_with_logits(x_c, t_c)` (that is `-w_c·(t·log σ(x) + (1 - t)·log σ(-x))`), the sum
/// compensated.
///
/// ```
/// let loss = losskit::reference::multilabel_soft_margin_row(&[0.0f64, 0.0], &[1.0, 0.0], Some(&[3.0, 1.0]));
/// assert!((loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-15);
/// ```
pub fn multilabel_soft_margin_row<T: Float>(x: &[T], t: &[T], weight: Option<&[T]>) -> f64 {
    let w = |c: usize| weight.map_or(1.0, |w| w[c].to_f64());
    let terms = (0..x.len()).map(|c| w(c) * bce_with_logits(x[c].to_f64(), t[c].to_f64(), None));
    compensated_sum(terms) / x.len() as f64
}

/// d/dx of one row's [`multilabel_soft_margin_row`], in `f64`: `w_c·(σ(x_c) - t_c) / classes`.
///
/// ```
/// let g = losskit::reference::multilabel_soft_margin_row_grad(&[0.0f64, 0.0], &[1.0, 0.0], None);
/// assert_eq!(g, [-0.25, 0.25]);
/// ```
pub fn multilabel_soft_margin_row_grad<T: Float>(
    x: &[T],
    t: &[T],
    weight: Option<&[T]>,
) -> Vec<f64> {
    let c = x.len() as f64;
    (0..x.len())
        .map(|k| {
            let w = weight.map_or(1.0, |w| w[k].to_f64());
            w * bce_with_logits_grad(x[k].to_f64(), t[k].to_f64(), None) / c
        })
        .collect()
}

/// One row of PyTorch's `multi_margin_loss`: `Σ_{i≠y} w_y·max(0, z_i)^p / classes` with the
/// hinge argument `z_i = (margin - x_y) + x_i` rounded in `T` as PyTorch computes it (so a term
/// counts exactly where PyTorch's does: `z_i > 0`), the powers and the compensated sum in `f64`.
/// `p` is 1 or 2; `weight` is per class (the label's is used).
///
/// ```
/// let loss = losskit::reference::multi_margin_row(&[0.1f64, 0.2, 0.4, 0.8], 3, 1, 1.0, None);
/// assert!((loss - 0.325).abs() < 1e-15);
/// ```
pub fn multi_margin_row<T: Float>(
    x: &[T],
    y: usize,
    p: u32,
    margin: T,
    weight: Option<&[T]>,
) -> f64 {
    let shift = margin - x[y];
    let terms = (0..x.len()).filter(|&i| i != y).map(|i| {
        let z = (shift + x[i]).to_f64();
        match (z > 0.0, p) {
            (false, _) => 0.0,
            (true, 1) => z,
            (true, _) => z * z,
        }
    });
    let w = weight.map_or(1.0, |w| w[y].to_f64());
    w * compensated_sum(terms) / x.len() as f64
}

/// d/dx of one row's [`multi_margin_row`], in `f64`: `w_y/classes` times `1` (p = 1) or `2z_i`
/// (p = 2) where `z_i > 0`, and minus their sum at the label.
///
/// ```
/// let g = losskit::reference::multi_margin_row_grad(&[0.0f64, 0.5, -2.0], 1, 1, 1.0, None);
/// assert_eq!(g, [1.0 / 3.0, -1.0 / 3.0, 0.0]);
/// ```
pub fn multi_margin_row_grad<T: Float>(
    x: &[T],
    y: usize,
    p: u32,
    margin: T,
    weight: Option<&[T]>,
) -> Vec<f64> {
    let shift = margin - x[y];
    let factor = weight.map_or(1.0, |w| w[y].to_f64()) / x.len() as f64;
    let mut grad: Vec<f64> = (0..x.len())
        .map(|i| {
            let z = (shift + x[i]).to_f64();
            match (i != y && z > 0.0, p) {
                (false, _) => 0.0,
                (true, 1) => factor,
                (true, _) => factor * 2.0 * z,
            }
        })
        .collect();
    grad[y] = -compensated_sum(grad.iter().copied());
    grad
}

/// A row's targets of PyTorch's `multilabel_margin_loss`: its entries up to the first
/// negative one, as classes.
fn multilabel_targets<L: Label>(targets: &[L]) -> Vec<usize> {
    targets
        .iter()
        .map(|t| t.to_i128())
        .take_while(|&t| t >= 0)
        .map(|t| t as usize)
        .collect()
}

/// The classes of a row of `classes` that are not among `targets`, in order.
fn non_targets(classes: usize, targets: &[usize]) -> Vec<usize> {
    let mut target = vec![false; classes];
    for &t in targets {
        target[t] = true;
    }
    (0..classes).filter(|&i| !target[i]).collect()
}

/// One row of PyTorch's `multilabel_margin_loss`: `Σ_{j∈T} Σ_{i∉T} max(0, z_ji) / classes`
/// with `T` the row's `targets` up to the first `-1` (a target listed twice counts twice) and
/// the hinge argument `z_ji = (1 - x_j) + x_i` rounded in `T` as PyTorch computes it, the
/// compensated sum in `f64`.
///
/// ```
/// let loss = losskit::reference::multilabel_margin_row(&[0.1f64, 0.2, 0.4, 0.8], &[3i64, 0, -1, 1]);
/// assert!((loss - 0.85).abs() < 1e-15);
/// ```
pub fn multilabel_margin_row<T: Float, L: Label>(x: &[T], targets: &[L]) -> f64 {
    let targets = multilabel_targets(targets);
    let others = non_targets(x.len(), &targets);
    let terms = targets.iter().flat_map(|&j| {
        let shift = T::ONE - x[j];
        others
            .iter()
            .map(move |&i| (shift + x[i]).to_f64())
            .filter(|&z| z > 0.0)
    });
    compensated_sum(terms) / x.len() as f64
}

/// d/dx of one row's [`multilabel_margin_row`], in `f64`: `1/classes` for each active hinge
/// `z_ji > 0` at the class `i`, and minus that at the target `j`.
///
/// ```
/// let g = losskit::reference::multilabel_margin_row_grad(&[0.0f64, 0.5, -2.0], &[0i64, -1, 2]);
/// assert_eq!(g, [-1.0 / 3.0, 1.0 / 3.0, 0.0]);
/// ```
pub fn multilabel_margin_row_grad<T: Float, L: Label>(x: &[T], targets: &[L]) -> Vec<f64> {
    let targets = multilabel_targets(targets);
    let others = non_targets(x.len(), &targets);
    // Counts are exact integers; each gradient is then one correctly rounded division.
    let mut counts = vec![0i64; x.len()];
    for &j in &targets {
        let shift = T::ONE - x[j];
        for &i in &others {
            if (shift + x[i]).to_f64() > 0.0 {
                counts[i] += 1;
                counts[j] -= 1;
            }
        }
    }
    let classes = x.len() as f64;
    counts.iter().map(|&n| n as f64 / classes).collect()
}

/// The cosine of PyTorch's `cosine_embedding_loss` and its two squared norms plus its
/// `EPSILON` (`1e-12` as an `f32`, as PyTorch's kernel declares it), in `f64`, the sums
/// compensated.
fn cosine<T: Float>(x1: &[T], x2: &[T]) -> (f64, f64, f64) {
    let eps = f64::from(1e-12_f32);
    let dot = compensated_sum(x1.iter().zip(x2).map(|(a, b)| a.to_f64() * b.to_f64()));
    let m1 = compensated_sum(x1.iter().map(|a| a.to_f64() * a.to_f64())) + eps;
    let m2 = compensated_sum(x2.iter().map(|b| b.to_f64() * b.to_f64())) + eps;
    (dot / (m1 * m2).sqrt(), m1, m2)
}

/// One row of PyTorch's `cosine_embedding_loss`, in `f64`: `1 - cos` for `y = 1`,
/// `max(0, cos - margin)` for `y = -1`, 0 for any other label, with
/// `cos = x1·x2 / sqrt((|x1|² + 1e-12)(|x2|² + 1e-12))`.
///
/// ```
/// let loss = losskit::reference::cosine_embedding_row(&[1.0f64, 0.0], &[0.0, 1.0], 1.0, 0.0);
/// assert_eq!(loss, 1.0);
/// ```
pub fn cosine_embedding_row<T: Float>(x1: &[T], x2: &[T], y: T, margin: T) -> f64 {
    let (cos, _, _) = cosine(x1, x2);
    match y.to_f64() {
        1.0 => 1.0 - cos,
        -1.0 if cos - margin.to_f64() > 0.0 => cos - margin.to_f64(),
        -1.0 if cos.is_nan() => cos,
        _ => 0.0,
    }
}

/// d/dx1 and d/dx2 of one row's [`cosine_embedding_row`], in `f64`: `g·(x2/denom - cos·x1/m1)`
/// and `g·(x1/denom - cos·x2/m2)`, `g` the loss's slope in `cos` (-1, 1 or 0 where the hinge is
/// not positive or the label is not ±1).
///
/// ```
/// let (g1, g2) = losskit::reference::cosine_embedding_row_grad(&[1.0f64, 0.0], &[0.0, 1.0], 1.0, 0.0);
/// assert!((g1[1] + 1.0).abs() < 1e-11 && (g2[0] + 1.0).abs() < 1e-11);
/// ```
pub fn cosine_embedding_row_grad<T: Float>(
    x1: &[T],
    x2: &[T],
    y: T,
    margin: T,
) -> (Vec<f64>, Vec<f64>) {
    let (cos, m1, m2) = cosine(x1, x2);
    let g = match y.to_f64() {
        1.0 => -1.0,
        -1.0 if cos - margin.to_f64() > 0.0 => 1.0,
        -1.0 if cos.is_nan() => cos,
        _ => 0.0,
    };
    let denom = (m1 * m2).sqrt();
    let d = |x: &[T], other: &[T], m: f64| -> Vec<f64> {
        x.iter()
            .zip(other)
            .map(|(a, b)| g * (b.to_f64() / denom - cos * a.to_f64() / m))
            .collect()
    };
    (d(x1, x2, m1), d(x2, x1, m2))
}

/// PyTorch's `pairwise_distance` of one row pair with `p` 1 or 2: `‖u - v + eps‖_p`, each
/// difference rounded in `T` as PyTorch computes it, the norm in `f64` (compensated).
fn pairwise_distance<T: Float>(u: &[T], v: &[T], p: u32, eps: T) -> f64 {
    let diffs = u.iter().zip(v).map(|(&a, &b)| (a - b + eps).to_f64());
    match p {
        1 => compensated_sum(diffs.map(f64::abs)),
        _ => compensated_sum(diffs.map(|d| d * d)).sqrt(),
    }
}

/// The hinge argument of one triplet row and the shares of its negative distance's gradient
/// that go to `d(a, n)` and `d(p, n)` (`torch.minimum` halves a tie), with the three distances.
fn triplet_parts<T: Float>(
    a: &[T],
    pos: &[T],
    neg: &[T],
    p: u32,
    eps: T,
    swap: bool,
) -> ([f64; 3], f64, f64) {
    let (ap, an) = (
        pairwise_distance(a, pos, p, eps),
        pairwise_distance(a, neg, p, eps),
    );
    let pn = if swap {
        pairwise_distance(pos, neg, p, eps)
    } else {
        0.0
    };
    let (to_an, to_pn) = match (swap, pn.partial_cmp(&an)) {
        (true, Some(core::cmp::Ordering::Less)) => (0.0, 1.0),
        (true, Some(core::cmp::Ordering::Equal)) => (0.5, 0.5),
        _ => (1.0, 0.0),
    };
    ([ap, an, pn], to_an, to_pn)
}

/// One row of PyTorch's `triplet_margin_loss`, in `f64`: `max(0, margin + d(a, p) - d(a, n))`
/// with `d(u, v) = ‖u - v + eps‖_p` as PyTorch's `pairwise_distance` (`p` 1 or 2) and, with
/// `swap`, `min(d(a, n), d(p, n))` as the negative distance.
///
/// ```
/// let loss = losskit::reference::triplet_margin_row(&[0.0f64, 0.0], &[3.0, 4.0], &[1.0, 0.0], 1.0, 2, 0.0, false);
/// assert_eq!(loss, 5.0);
/// ```
pub fn triplet_margin_row<T: Float>(
    a: &[T],
    pos: &[T],
    neg: &[T],
    margin: T,
    p: u32,
    eps: T,
    swap: bool,
) -> f64 {
    let ([ap, an, pn], to_an, _) = triplet_parts(a, pos, neg, p, eps, swap);
    let negative = if to_an < 1.0 { pn } else { an };
    let hinge = margin.to_f64() + ap - negative;
    if hinge > 0.0 || hinge.is_nan() {
        hinge
    } else {
        0.0
    }
}

/// d/d anchor, d/d positive and d/d negative of one row's [`triplet_margin_row`], in `f64`:
/// per distance `d(u, v)`, `diff/d` (p = 2; 0 where `d = 0`) or `sign(diff)` (p = 1) for `u`
/// and its negative for `v`, where the hinge is `> 0`.
///
/// ```
/// let [ga, gp, gn] = losskit::reference::triplet_margin_row_grad(&[0.0f64], &[2.0], &[1.0], 1.0, 2, 0.0, false);
/// assert_eq!((ga[0], gp[0], gn[0]), (0.0, 1.0, -1.0));
/// ```
pub fn triplet_margin_row_grad<T: Float>(
    a: &[T],
    pos: &[T],
    neg: &[T],
    margin: T,
    p: u32,
    eps: T,
    swap: bool,
) -> [Vec<f64>; 3] {
    let ([ap, an, pn], to_an, to_pn) = triplet_parts(a, pos, neg, p, eps, swap);
    let negative = if to_an < 1.0 { pn } else { an };
    let hinge = margin.to_f64() + ap - negative;
    let g = match hinge > 0.0 {
        true => 1.0,
        false if hinge.is_nan() => hinge,
        false => 0.0,
    };
    // `∂d(u, v)/∂u` of one element's difference, times the distance's coefficient `c`.
    let slope = |c: f64, d: f64, u: T, v: T| -> f64 {
        let diff = (u - v + eps).to_f64();
        match p {
            1 => {
                c * if diff > 0.0 {
                    1.0
                } else if diff < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            _ if d == 0.0 => 0.0,
            _ => c * diff / d,
        }
    };
    let (c_ap, c_an, c_pn) = (g, -g * to_an, -g * to_pn);
    let dim = a.len();
    let mut out = [vec![0.0; dim], vec![0.0; dim], vec![0.0; dim]];
    for k in 0..dim {
        let s_ap = slope(c_ap, ap, a[k], pos[k]);
        let s_an = slope(c_an, an, a[k], neg[k]);
        let s_pn = if swap {
            slope(c_pn, pn, pos[k], neg[k])
        } else {
            0.0
        };
        out[0][k] = s_ap + s_an;
        out[1][k] = s_pn - s_ap;
        out[2][k] = -(s_an + s_pn);
    }
    out
}

/// d/dx of one row's [`cross_entropy_row`] loss, in `f64`: `A·softmax - a`, where `a` is the
/// (smoothed, weighted) target and `A = Σ a`.
pub fn cross_entropy_row_grad<T: Float>(
    row: &[T],
    target: RowTarget<'_, T>,
    weight: Option<&[T]>,
    eps: f64,
) -> Vec<f64> {
    let c = row.len();
    let w = |k: usize| weight.map_or(1.0, |w| w[k].to_f64());
    let a: Vec<f64> = match target {
        RowTarget::Ignored => return vec![0.0; c],
        RowTarget::Class(t) => (0..c)
            .map(|k| (1.0 - eps) * w(t) * f64::from(u8::from(k == t)) + eps / c as f64 * w(k))
            .collect(),
        RowTarget::Probs(p) => (0..c)
            .map(|k| ((1.0 - eps) * p[k].to_f64() + eps / c as f64) * w(k))
            .collect(),
    };
    let total: f64 = a.iter().sum();
    log_softmax(row)
        .iter()
        .zip(&a)
        .map(|(lp, ak)| total * lp.exp() - ak)
        .collect()
}

/// Gemma 2's logit softcap of one row, in `f64`: `cap·tanh(x / cap)` (a `-inf` logit becomes
/// `-cap`).
///
/// ```
/// let capped = losskit::reference::softcap_row(&[f64::NEG_INFINITY, 0.0], 30.0);
/// assert_eq!(capped, [-30.0, 0.0]);
/// ```
pub fn softcap_row<T: Float>(row: &[T], cap: f64) -> Vec<f64> {
    row.iter()
        .map(|&v| cap * (v.to_f64() / cap).tanh())
        .collect()
}

/// [`cross_entropy_row`] of the softcapped row ([`softcap_row`]), in `f64`.
pub fn cross_entropy_softcap_row<T: Float>(
    row: &[T],
    target: RowTarget<'_, T>,
    weight: Option<&[T]>,
    eps: f64,
    cap: f64,
) -> (f64, f64) {
    let (weight, probs) = widened(weight, target);
    let target = widened_target(target, &probs);
    cross_entropy_row(&softcap_row(row, cap), target, weight.as_deref(), eps)
}

/// d/dx of [`cross_entropy_softcap_row`], in `f64`: the gradient of the capped row's loss
/// ([`cross_entropy_row_grad`]) times the softcap's slope `1 - tanh²(x / cap)`.
pub fn cross_entropy_softcap_row_grad<T: Float>(
    row: &[T],
    target: RowTarget<'_, T>,
    weight: Option<&[T]>,
    eps: f64,
    cap: f64,
) -> Vec<f64> {
    let (weight, probs) = widened(weight, target);
    let target = widened_target(target, &probs);
    let g = cross_entropy_row_grad(&softcap_row(row, cap), target, weight.as_deref(), eps);
    g.iter()
        .zip(row)
        .map(|(g, &x)| {
            let t = (x.to_f64() / cap).tanh();
            g * (1.0 - t * t)
        })
        .collect()
}

/// The weights and probability targets of a row, widened to `f64`.
fn widened<T: Float>(
    weight: Option<&[T]>,
    target: RowTarget<'_, T>,
) -> (Option<Vec<f64>>, Vec<f64>) {
    let widen = |s: &[T]| s.iter().map(|v| v.to_f64()).collect::<Vec<f64>>();
    let probs = match target {
        RowTarget::Probs(p) => widen(p),
        _ => Vec::new(),
    };
    (weight.map(widen), probs)
}

/// `target` with its probabilities replaced by `probs`, their widened copy.
fn widened_target<'a, T>(target: RowTarget<'_, T>, probs: &'a [f64]) -> RowTarget<'a, f64> {
    match target {
        RowTarget::Class(t) => RowTarget::Class(t),
        RowTarget::Ignored => RowTarget::Ignored,
        RowTarget::Probs(_) => RowTarget::Probs(probs),
    }
}

/// One row of distillation KL, `KL(softmax(teacher/T) ‖ softmax(student/T))`, in `f64`, in two
/// plain passes: the two `log_softmax`es of the rows divided by `temperature`, then
/// `Σ p (log p - log q)` over the classes with `p > 0` (a `-inf` teacher class contributes 0).
/// A row of all `-inf`, or with `+inf` or NaN, in either matrix is NaN, as `log_softmax` makes
/// it.
///
/// ```
/// let kl = losskit::reference::kl_div_logits_row(&[0.0f64, 0.0], &[0.0, f64::NEG_INFINITY], 1.0);
/// assert!((kl - std::f64::consts::LN_2).abs() < 1e-15);
/// ```
pub fn kl_div_logits_row<T: Float>(student: &[T], teacher: &[T], temperature: f64) -> f64 {
    let (log_q, log_p) = scaled_log_softmaxes(student, teacher, temperature);
    if log_q.iter().chain(&log_p).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    log_p
        .iter()
        .zip(&log_q)
        .filter(|(lp, _)| **lp > f64::NEG_INFINITY)
        .map(|(lp, lq)| lp.exp() * (lp - lq))
        .sum()
}

/// d/d student of one row's [`kl_div_logits_row`], in `f64`: `(q - p) / T`.
///
/// ```
/// let g = losskit::reference::kl_div_logits_row_grad(&[0.0f64, 0.0], &[0.0, f64::NEG_INFINITY], 2.0);
/// assert_eq!(g, [-0.25, 0.25]);
/// ```
pub fn kl_div_logits_row_grad<T: Float>(
    student: &[T],
    teacher: &[T],
    temperature: f64,
) -> Vec<f64> {
    let (log_q, log_p) = scaled_log_softmaxes(student, teacher, temperature);
    log_q
        .iter()
        .zip(&log_p)
        .map(|(lq, lp)| (lq.exp() - lp.exp()) / temperature)
        .collect()
}

/// `log_softmax(student / T)` and `log_softmax(teacher / T)`, in `f64`.
fn scaled_log_softmaxes<T: Float>(
    student: &[T],
    teacher: &[T],
    temperature: f64,
) -> (Vec<f64>, Vec<f64>) {
    let scaled = |row: &[T]| -> Vec<f64> { row.iter().map(|v| v.to_f64() / temperature).collect() };
    (log_softmax(&scaled(student)), log_softmax(&scaled(teacher)))
}

/// `ln(e^a + e^b)` in `f64` (both `-inf`: `-inf`).
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// CTC over time-major `[T, N, C]` log-probabilities (`shape = [T, N, C]`), in `f64` log
/// space over the interleaved extended labels `_ l₀ _ l₁ … _` (Graves' α and β, both including
/// the emission of their frame), one state at a time.
///
/// Returns each sample's `-ln p` (`+inf` for an impossible alignment, before any
/// `zero_infinity`) and the unweighted gradient with respect to the logits, `[T, N, C]`:
/// `exp(lp) - Σ_{s: l'_s = c} α_t(s)·β_t(s) / (p · y_t(c))` for `t < input_lengths[n]`, 0 after,
/// NaN on the frames of a sample whose loss is not finite (PyTorch's). `targets` holds the
/// samples' labels concatenated; nothing is checked.
///
/// ```
/// let lp = [0.5f64.ln(); 4]; // T = 2, N = 1, C = 2
/// let (nll, grad) = losskit::reference::ctc(&lp, [2, 1, 2], &[1], &[2], &[1], 0);
/// assert!((nll[0] - -(0.75f64).ln()).abs() < 1e-15);
/// assert!((grad[0] - 1.0 / 6.0).abs() < 1e-15);
/// ```
pub fn ctc<T: Float>(
    log_probs: &[T],
    shape: [usize; 3],
    targets: &[usize],
    input_lengths: &[usize],
    target_lengths: &[usize],
    blank: usize,
) -> (Vec<f64>, Vec<f64>) {
    let args = (targets, input_lengths, target_lengths);
    ctc_passes(log_probs, shape, args, blank, true)
}

/// Each sample's `-ln p` as [`ctc`] computes it, by the forward recursion alone (no β, no
/// gradient).
///
/// ```
/// let lp = [0.5f64.ln(); 4]; // T = 2, N = 1, C = 2
/// let nll = losskit::reference::ctc_loss(&lp, [2, 1, 2], &[1], &[2], &[1], 0);
/// assert!((nll[0] - -(0.75f64).ln()).abs() < 1e-15);
/// ```
pub fn ctc_loss<T: Float>(
    log_probs: &[T],
    shape: [usize; 3],
    targets: &[usize],
    input_lengths: &[usize],
    target_lengths: &[usize],
    blank: usize,
) -> Vec<f64> {
    let args = (targets, input_lengths, target_lengths);
    ctc_passes(log_probs, shape, args, blank, false).0
}

/// [`ctc`]'s body; without `with_grad` only the forward pass (and an empty gradient).
fn ctc_passes<T: Float>(
    log_probs: &[T],
    [time, batch, classes]: [usize; 3],
    (targets, input_lengths, target_lengths): (&[usize], &[usize], &[usize]),
    blank: usize,
    with_grad: bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut nlls = Vec::with_capacity(batch);
    let mut grad = vec![0.0; if with_grad { time * batch * classes } else { 0 }];
    let mut offset = 0;
    for n in 0..batch {
        let (frames, len) = (input_lengths[n], target_lengths[n]);
        let labels = &targets[offset..offset + len];
        offset += len;
        let lp = |t: usize, c: usize| log_probs[(t * batch + n) * classes + c].to_f64();
        let states = 2 * len + 1;
        let ext = |s: usize| {
            if s.is_multiple_of(2) {
                blank
            } else {
                labels[s / 2]
            }
        };
        let skip = |s: usize| s % 2 == 1 && s >= 3 && ext(s) != ext(s - 2);
        if frames == 0 {
            nlls.push(if len == 0 { 0.0 } else { f64::INFINITY });
            continue;
        }
        let ninf = f64::NEG_INFINITY;
        let mut alpha = vec![vec![ninf; states]; frames];
        alpha[0][0] = lp(0, blank);
        if len > 0 {
            alpha[0][1] = lp(0, ext(1));
        }
        for t in 1..frames {
            for s in 0..states {
                let mut a = alpha[t - 1][s];
                if s >= 1 {
                    a = log_add_exp(a, alpha[t - 1][s - 1]);
                }
                if skip(s) {
                    a = log_add_exp(a, alpha[t - 1][s - 2]);
                }
                alpha[t][s] = a + lp(t, ext(s));
            }
        }
        let last = &alpha[frames - 1];
        let ll = if len == 0 {
            last[0]
        } else {
            log_add_exp(last[states - 1], last[states - 2])
        };
        let nll = -ll;
        nlls.push(nll);
        if !with_grad {
            continue;
        }
        let mut beta = vec![vec![ninf; states]; frames];
        beta[frames - 1][states - 1] = lp(frames - 1, blank);
        if len > 0 {
            beta[frames - 1][states - 2] = lp(frames - 1, ext(states - 2));
        }
        for t in (0..frames - 1).rev() {
            for s in 0..states {
                let mut b = beta[t + 1][s];
                if s + 1 < states {
                    b = log_add_exp(b, beta[t + 1][s + 1]);
                }
                if s + 2 < states && skip(s + 2) {
                    b = log_add_exp(b, beta[t + 1][s + 2]);
                }
                beta[t][s] = b + lp(t, ext(s));
            }
        }
        for t in 0..frames {
            let row = &mut grad[(t * batch + n) * classes..][..classes];
            if !nll.is_finite() {
                row.fill(f64::NAN);
                continue;
            }
            let mut lcab = vec![ninf; classes];
            for s in 0..states {
                let c = ext(s);
                lcab[c] = log_add_exp(lcab[c], alpha[t][s] + beta[t][s]);
            }
            for (c, g) in row.iter_mut().enumerate() {
                *g = lp(t, c).exp() - (lcab[c] + nll - lp(t, c)).exp();
            }
        }
    }
    (nlls, grad)
}

// PyTorch's other elementwise losses (issue 16). Their twins compute in `f64` from the
// element-type inputs (the difference or product the kernel forms is formed in `T` first, as
// the kernel does) and round once: a more accurate oracle than the kernels, which compute in
// `T` with vector `exp`/`ln`, so they are held to it within a bound, not bit for bit.

/// `f64` NaN-propagating `max(v, 0)` (`f64::max` would drop the NaN).
fn relu(v: f64) -> f64 {
    if v.is_nan() || v > 0.0 {
        v
    } else {
        0.0
    }
}

/// `log cosh(x - y)`: `log1p(2 sinh²(d/2))` for `|d| < 1`, `|d| - ln 2 + log1p(e^(-2|d|))`
/// otherwise (no overflow, no cancellation).
pub fn log_cosh<T: Float>(x: T, y: T) -> T {
    let a = (x - y).to_f64().abs();
    T::from_f64(if a < 1.0 {
        let s = (a / 2.0).sinh();
        (2.0 * s * s).ln_1p()
    } else {
        a - core::f64::consts::LN_2 + (-2.0 * a).exp().ln_1p()
    })
}

/// d/dx of [`log_cosh`]: `tanh(x - y)`.
pub fn log_cosh_grad<T: Float>(x: T, y: T) -> T {
    T::from_f64((x - y).to_f64().tanh())
}

/// PyTorch's `hinge_embedding_loss`: `max(0, margin - x)` where `y != 1`, plus `x` where
/// `y != -1` (computed in `T`, as the kernel).
pub fn hinge_embedding<T: Float>(x: T, y: T, margin: T) -> T {
    // `max(0, d)` as x86's `max(0, d)` (the kernel's): `d` itself when it is NaN or either
    // zero, so a `-0` hinge is `-0` here too.
    let d = margin - x;
    let hinge = if d < T::ZERO { T::ZERO } else { d };
    let a = if y == T::ONE { T::ZERO } else { hinge };
    let b = if y == -T::ONE { T::ZERO } else { x };
    a + b
}

/// d/dx of [`hinge_embedding`]: 1 where `y != -1`, minus 1 where `y != 1` and `x < margin`
/// (0 at the kink); NaN for NaN `x`.
pub fn hinge_embedding_grad<T: Float>(x: T, y: T, margin: T) -> T {
    if x.to_f64().is_nan() {
        return x;
    }
    let a = if y != T::ONE && x < margin {
        -T::ONE
    } else {
        T::ZERO
    };
    let b = if y == -T::ONE { T::ZERO } else { T::ONE };
    a + b
}

/// `log(1 + e^(-y·x))`, exact: `max(z, 0) + log1p(e^(-|z|))` with `z = -y·x` (formed in `T`).
pub fn soft_margin<T: Float>(x: T, y: T) -> T {
    let z = (-(y * x)).to_f64();
    T::from_f64(relu(z) + (-z.abs()).exp().ln_1p())
}

/// d/dx of [`soft_margin`]: `-y·sigmoid(-y·x)`.
pub fn soft_margin_grad<T: Float>(x: T, y: T) -> T {
    let z = (-(y * x)).to_f64();
    let e = (-z.abs()).exp();
    let sigmoid = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    T::from_f64(-y.to_f64() * sigmoid)
}

/// PyTorch's `poisson_nll_loss`: `e^x - t·x` (`log_input`) or `x - t·ln(x + eps)` (with
/// `x + eps` formed in `T`), plus with `full` `t·ln t - t + ½·ln(2πt)` where `t > 1`.
pub fn poisson_nll<T: Float>(x: T, t: T, log_input: bool, full: bool, eps: T) -> T {
    let (xf, tf) = (x.to_f64(), t.to_f64());
    let base = if log_input {
        xf.exp() - tf * xf
    } else {
        xf - tf * (x + eps).to_f64().ln()
    };
    // PyTorch masks `t <= 1`: a NaN target is not masked.
    let stirling = if full && (tf > 1.0 || tf.is_nan()) {
        tf * tf.ln() - tf + 0.5 * (2.0 * core::f64::consts::PI * tf).ln()
    } else {
        0.0
    };
    T::from_f64(base + stirling)
}

/// d/dx of [`poisson_nll`]: `e^x - t`, or `1 - t/(x + eps)`.
pub fn poisson_nll_grad<T: Float>(x: T, t: T, log_input: bool, eps: T) -> T {
    let tf = t.to_f64();
    T::from_f64(if log_input {
        x.to_f64().exp() - tf
    } else {
        1.0 - tf / (x + eps).to_f64()
    })
}

/// PyTorch's `kl_div` element: `xlogy(t, t) - t·x` (`0·ln 0 = 0`), or with `log_target`
/// `e^t·(t - x)` (with `t - x` formed in `T`).
pub fn kl_div<T: Float>(x: T, t: T, log_target: bool) -> T {
    let tf = t.to_f64();
    T::from_f64(if log_target {
        tf.exp() * (t - x).to_f64()
    } else {
        let xlogy = if tf == 0.0 { 0.0 } else { tf * tf.ln() };
        xlogy - tf * x.to_f64()
    })
}

/// d/dx of [`kl_div`]: `-t`, or `-e^t`.
pub fn kl_div_grad<T: Float>(_x: T, t: T, log_target: bool) -> T {
    if log_target {
        T::from_f64(-t.to_f64().exp())
    } else {
        -t
    }
}

/// The parts of torchvision's focal loss in `f64`: `(w, ce, p, 1 - p, q)`.
fn focal_parts(x: f64, t: f64, alpha: f64) -> (f64, f64, f64, f64, f64) {
    let e = (-x.abs()).exp();
    let l = e.ln_1p();
    let ce = if x == f64::NEG_INFINITY {
        f64::NAN
    } else if x < 0.0 {
        -t * x + l
    } else {
        (1.0 - t) * x + l
    };
    let (p, pn) = if x >= 0.0 {
        (1.0 / (1.0 + e), e / (1.0 + e))
    } else {
        (e / (1.0 + e), 1.0 / (1.0 + e))
    };
    let q = p * (1.0 - t) + pn * t;
    let w = if alpha < 0.0 {
        1.0
    } else {
        alpha * t + (1.0 - alpha) * (1.0 - t)
    };
    (w, ce, p, pn, q)
}

/// torchvision's `sigmoid_focal_loss` element: `w·ce·q^γ` with `ce` binary cross-entropy on
/// logits, `q = p(1 - t) + (1 - p)t`, `w = α·t + (1 - α)(1 - t)` (1 when `α < 0`).
pub fn sigmoid_focal<T: Float>(x: T, t: T, alpha: T, gamma: T) -> T {
    let (w, ce, _, _, q) = focal_parts(x.to_f64(), t.to_f64(), alpha.to_f64());
    T::from_f64(w * ce * q.powf(gamma.to_f64()))
}

/// d/dx of [`sigmoid_focal`]: `w·[(p - t)·q^γ + γ·ce·q^(γ-1)·p(1 - p)(1 - 2t)]`, 0 where
/// `q = 0`.
pub fn sigmoid_focal_grad<T: Float>(x: T, t: T, alpha: T, gamma: T) -> T {
    let (tf, g) = (t.to_f64(), gamma.to_f64());
    let (w, ce, p, pn, q) = focal_parts(x.to_f64(), tf, alpha.to_f64());
    if q == 0.0 {
        return T::ZERO;
    }
    let second = if g == 0.0 {
        0.0
    } else {
        g * ce * q.powf(g - 1.0) * p * pn * (1.0 - 2.0 * tf)
    };
    T::from_f64(w * ((p - tf) * q.powf(g) + second))
}

/// PyTorch's `gaussian_nll_loss` element: `½·(ln v + (x - t)²/v)` with `v = max(var, eps)`,
/// plus `½·ln 2π` with `full` (`x - t` formed in `T`, the rest in `f64`). A NaN `var` is NaN;
/// a negative one (an error for the kernels) is NaN here.
pub fn gaussian_nll<T: Float>(x: T, t: T, var: T, full: bool, eps: T) -> T {
    let (d, vf) = ((x - t).to_f64(), var.to_f64());
    if vf < 0.0 || vf.is_nan() {
        return T::from_f64(f64::NAN);
    }
    let v = vf.max(eps.to_f64());
    let c = if full {
        0.5 * (2.0 * core::f64::consts::PI).ln()
    } else {
        0.0
    };
    T::from_f64(0.5 * (v.ln() + d * d / v) + c)
}

/// d/dx of [`gaussian_nll`]: `(x - t)/v` at the clamped `v`.
pub fn gaussian_nll_grad<T: Float>(x: T, t: T, var: T, eps: T) -> T {
    let (d, vf) = ((x - t).to_f64(), var.to_f64());
    if vf < 0.0 || vf.is_nan() {
        return T::from_f64(f64::NAN);
    }
    T::from_f64(d / vf.max(eps.to_f64()))
}

/// d/dvar of [`gaussian_nll`]: `½·(1/v - (x - t)²/v²)` at the clamped `v`, also where
/// `var < eps` (PyTorch clamps under `no_grad`, so the clamp passes the gradient through).
pub fn gaussian_nll_grad_var<T: Float>(x: T, t: T, var: T, eps: T) -> T {
    let (d, vf) = ((x - t).to_f64(), var.to_f64());
    if vf < 0.0 || vf.is_nan() {
        return T::from_f64(f64::NAN);
    }
    let v = vf.max(eps.to_f64());
    T::from_f64(0.5 * (1.0 / v - d * d / (v * v)))
}

/// PyTorch's `margin_ranking_loss` element: `max(0, -y·(x1 - x2) + margin)`, computed in `T`
/// in PyTorch's order (as the kernel, bit for bit), NaN kept.
pub fn margin_ranking<T: Float>(x1: T, x2: T, y: T, margin: T) -> T {
    // `max(0, a)` as x86's `max(0, a)` (the kernel's): `a` itself when it is NaN or either zero.
    let arg = -y * (x1 - x2) + margin;
    if arg < T::ZERO {
        T::ZERO
    } else {
        arg
    }
}

/// d/dx1 of [`margin_ranking`]: `-y` where the argument is `> 0`, 0 at the kink and beyond,
/// NaN where it is NaN. d/dx2 is its negation.
pub fn margin_ranking_grad<T: Float>(x1: T, x2: T, y: T, margin: T) -> T {
    let arg = -y * (x1 - x2) + margin;
    if arg.to_f64().is_nan() {
        arg
    } else if arg > T::ZERO {
        -y
    } else {
        T::ZERO
    }
}
