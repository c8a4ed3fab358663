//! The same bits on every x86 CPU: the AVX2 and AVX-512 tiers give bit-identical results for
//! every loss and every form (reduced, `_each`, `_and_grad`, in place; distillation KL's two
//! matrices included), in f32, f64, bf16 and
//! f16 storage, on random shapes (short, mid and long rows, lengths around the driver's chunk
//! boundaries) and with non-finite values. Two NaNs count as equal (their payloads may differ);
//! every other value must match bit for bit, signed zeros included.
//!
//! Every call of the battery is recorded, on each tier, as its label and the bits of all it
//! returned or wrote; the records of two tiers must be equal entry by entry.

use crate::common;

use losskit::{
    bf16, f16, Bce, BceWithLogits, CrossEntropy, Ctc, LossError, Nll, Reduction, Storage,
};
use losskit::{with_tier, Tier};

/// What one call returned or wrote, as bits (`Err` as its message).
type Outcome = Result<Vec<u64>, String>;

/// Every call of a battery, in order: its label and its outcome.
type Record = Vec<(String, Outcome)>;

/// The bits every NaN maps to: NaNs are compared as equal, whatever their payload.
const NAN: u64 = u64::MAX;

/// A storage type the battery runs on, with the conversions the test needs.
trait Elem: Storage + Copy + Send + Sync {
    const LABEL: &'static str;
    /// `x` rounded to the storage type.
    fn of(x: f64) -> Self;
    /// The bits of a stored value (NaNs: [`NAN`]).
    fn key(self) -> u64;
    /// `x` rounded to the compute type.
    fn c(x: f64) -> Self::Compute;
    /// The bits of a compute-type value (NaNs: [`NAN`]).
    fn ckey(x: Self::Compute) -> u64;
}

macro_rules! float_elem {
    ($t:ident) => {
        impl Elem for $t {
            const LABEL: &'static str = stringify!($t);
            fn of(x: f64) -> Self {
                x as $t
            }
            fn key(self) -> u64 {
                if self.is_nan() {
                    NAN
                } else {
                    self.to_bits() as u64
                }
            }
            fn c(x: f64) -> $t {
                x as $t
            }
            fn ckey(x: $t) -> u64 {
                x.key()
            }
        }
    };
}
float_elem!(f32);
float_elem!(f64);

macro_rules! half_elem {
    ($t:ident) => {
        impl Elem for $t {
            const LABEL: &'static str = stringify!($t);
            fn of(x: f64) -> Self {
                $t::from_f64(x)
            }
            fn key(self) -> u64 {
                if self.is_nan() {
                    NAN
                } else {
                    self.to_bits() as u64
                }
            }
            fn c(x: f64) -> f32 {
                x as f32
            }
            fn ckey(x: f32) -> u64 {
                x.key()
            }
        }
    };
}
half_elem!(bf16);
half_elem!(f16);

/// A SplitMix64 stream with the draws the battery needs.
struct Rng(Box<dyn FnMut() -> u64>);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(Box::new(common::splitmix(seed)))
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        ((self.0)() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `lo..hi` (`lo < hi`).
    fn below(&mut self, lo: usize, hi: usize) -> usize {
        lo + ((self.0)() % (hi - lo) as u64) as usize
    }
    /// A value of random sign and magnitude between 1e-3 and 1e2 (some exactly 0).
    fn wide(&mut self) -> f64 {
        if self.below(0, 64) == 0 {
            return 0.0;
        }
        let mag = 10f64.powf(self.unit() * 5.0 - 3.0);
        if self.unit() < 0.5 {
            -mag
        } else {
            mag
        }
    }
    /// Replaces about one value in `1/rate` by NaN, +inf or -inf.
    fn spice(&mut self, v: &mut [f64], rate: usize) {
        for x in v.iter_mut() {
            if self.below(0, rate) == 0 {
                *x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][self.below(0, 3)];
            }
        }
    }
}

fn store<S: Elem>(v: &[f64]) -> Vec<S> {
    v.iter().map(|&x| S::of(x)).collect()
}

fn keys<S: Elem>(v: &[S]) -> Vec<u64> {
    v.iter().map(|&x| x.key()).collect()
}

fn ckeys<S: Elem>(v: &[S::Compute]) -> Vec<u64> {
    v.iter().map(|&x| S::ckey(x)).collect()
}

/// Records a reduced loss.
fn scalar<S: Elem>(rec: &mut Record, label: String, r: Result<S::Compute, LossError>) {
    rec.push((
        label,
        r.map(|v| vec![S::ckey(v)]).map_err(|e| e.to_string()),
    ));
}

/// Records a reduced loss and the gradient written beside it.
fn with_grad<S: Elem>(
    rec: &mut Record,
    label: String,
    r: Result<S::Compute, LossError>,
    grad: &[S],
) {
    let out = r.map(|v| {
        let mut k = vec![S::ckey(v)];
        k.extend(keys(grad));
        k
    });
    rec.push((label, out.map_err(|e| e.to_string())));
}

/// Records a reduced loss and a digest of the gradient written beside it (the bits of every
/// element, NaNs as [`NAN`], hashed): the distillation battery's gradients of long rows would
/// otherwise hold gigabytes of records.
fn with_grad_digest<S: Elem>(
    rec: &mut Record,
    label: String,
    r: Result<S::Compute, LossError>,
    grad: &[S],
) {
    use std::hash::{Hash, Hasher};
    let out = r.map(|v| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        keys(grad).hash(&mut h);
        vec![S::ckey(v), h.finish()]
    });
    rec.push((label, out.map_err(|e| e.to_string())));
}

/// Records an `_each` form's output.
fn each<S: Elem>(rec: &mut Record, label: String, r: Result<(), LossError>, out: &[S::Compute]) {
    rec.push((
        label,
        r.map(|()| ckeys::<S>(out)).map_err(|e| e.to_string()),
    ));
}

const REDUCTIONS: [(&str, Reduction); 2] = [("mean", Reduction::Mean), ("sum", Reduction::Sum)];

/// mse, l1, huber, smooth_l1 in every form over `x`, `y`.
fn pointwise<S: Elem>(rec: &mut Record, tag: &str, x: &[S], y: &[S]) {
    let n = x.len();
    let (delta, beta) = (S::c(0.7), S::c(0.3));
    for (rn, red) in REDUCTIONS {
        let l = |name: &str| format!("{tag} {name} {rn}");
        scalar::<S>(rec, l("mse"), losskit::mse(x, y, red));
        scalar::<S>(rec, l("l1"), losskit::l1(x, y, red));
        scalar::<S>(rec, l("huber"), losskit::huber(x, y, delta, red));
        scalar::<S>(rec, l("smooth_l1"), losskit::smooth_l1(x, y, beta, red));
        let mut g = vec![S::of(0.0); n];
        let r = losskit::mse_and_grad(x, y, red, &mut g);
        with_grad(rec, l("mse_and_grad"), r, &g);
        let r = losskit::l1_and_grad(x, y, red, &mut g);
        with_grad(rec, l("l1_and_grad"), r, &g);
        let r = losskit::huber_and_grad(x, y, delta, red, &mut g);
        with_grad(rec, l("huber_and_grad"), r, &g);
        let r = losskit::smooth_l1_and_grad(x, y, beta, red, &mut g);
        with_grad(rec, l("smooth_l1_and_grad"), r, &g);
    }
    let mut out = vec![S::c(0.0); n];
    let r = losskit::mse_each(x, y, &mut out);
    each::<S>(rec, format!("{tag} mse_each"), r, &out);
    let r = losskit::l1_each(x, y, &mut out);
    each::<S>(rec, format!("{tag} l1_each"), r, &out);
    let r = losskit::huber_each(x, y, delta, &mut out);
    each::<S>(rec, format!("{tag} huber_each"), r, &out);
    let r = losskit::smooth_l1_each(x, y, beta, &mut out);
    each::<S>(rec, format!("{tag} smooth_l1_each"), r, &out);
}

/// bce (on probabilities `p`) and bce_with_logits (on logits `z`) in every form, targets `t`.
fn binary<S: Elem>(rec: &mut Record, tag: &str, p: &[S], z: &[S], t: &[S]) {
    let n = p.len();
    let bces = [
        ("bce", Bce::new()),
        ("bce eps", Bce::new().epsilon(S::c(1e-3))),
    ];
    let logits = [
        ("bce_with_logits", BceWithLogits::new()),
        (
            "bce_with_logits pw",
            BceWithLogits::new().pos_weight(S::c(2.5)),
        ),
    ];
    for (rn, red) in REDUCTIONS {
        let mut g = vec![S::of(0.0); n];
        for (name, b) in &bces {
            scalar::<S>(rec, format!("{tag} {name} {rn}"), b.loss(p, t, red));
            let r = b.loss_and_grad(p, t, red, &mut g);
            with_grad(rec, format!("{tag} {name} and_grad {rn}"), r, &g);
        }
        for (name, b) in &logits {
            scalar::<S>(rec, format!("{tag} {name} {rn}"), b.loss(z, t, red));
            let r = b.loss_and_grad(z, t, red, &mut g);
            with_grad(rec, format!("{tag} {name} and_grad {rn}"), r, &g);
        }
        scalar::<S>(rec, format!("{tag} bce fn {rn}"), losskit::bce(p, t, red));
        let r = losskit::bce_with_logits(z, t, red);
        scalar::<S>(rec, format!("{tag} bce_with_logits fn {rn}"), r);
        let r = losskit::bce_and_grad(p, t, red, &mut g);
        with_grad(rec, format!("{tag} bce_and_grad fn {rn}"), r, &g);
        let r = losskit::bce_with_logits_and_grad(z, t, red, &mut g);
        with_grad(
            rec,
            format!("{tag} bce_with_logits_and_grad fn {rn}"),
            r,
            &g,
        );
    }
    let mut out = vec![S::c(0.0); n];
    for (name, b) in &bces {
        let r = b.each(p, t, &mut out);
        each::<S>(rec, format!("{tag} {name} each"), r, &out);
    }
    for (name, b) in &logits {
        let r = b.each(z, t, &mut out);
        each::<S>(rec, format!("{tag} {name} each"), r, &out);
    }
    let r = losskit::bce_each(p, t, &mut out);
    each::<S>(rec, format!("{tag} bce_each fn"), r, &out);
    let r = losskit::bce_with_logits_each(z, t, &mut out);
    each::<S>(rec, format!("{tag} bce_with_logits_each fn"), r, &out);
}

/// The pointwise and binary batteries over `n` elements drawn from `seed`, finite or spiced
/// with non-finite values.
fn elementwise<S: Elem>(rec: &mut Record, n: usize, seed: u64, nonfinite: bool) {
    let mut rng = Rng::new(seed);
    let mut x: Vec<f64> = (0..n).map(|_| rng.wide()).collect();
    let mut y: Vec<f64> = (0..n).map(|_| rng.wide()).collect();
    // Probabilities with exact 0s and 1s, logits over the whole interesting range.
    let mut p: Vec<f64> = (0..n)
        .map(|_| match rng.below(0, 32) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.unit(),
        })
        .collect();
    let mut z: Vec<f64> = (0..n).map(|_| (rng.unit() - 0.5) * 80.0).collect();
    let mut t: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
    if nonfinite {
        for v in [&mut x, &mut y, &mut p, &mut z, &mut t] {
            rng.spice(v, 97);
        }
    }
    let tag = format!("{} n={n} seed={seed} nonfinite={nonfinite}", S::LABEL);
    pointwise::<S>(rec, &tag, &store(&x), &store(&y));
    binary::<S>(rec, &tag, &store(&p), &store(&z), &store(&t));
}

/// Cross-entropy (labels and probabilities, with weights, ignore_index and label smoothing, in
/// every form) and nll over `rows x classes` drawn from `seed`.
fn classification<S: Elem>(rec: &mut Record, rows: usize, classes: usize, seed: u64, nf: bool) {
    let mut rng = Rng::new(seed);
    let n = rows * classes;
    let spread = [1.0, 8.0, 40.0][rng.below(0, 3)];
    let mut x: Vec<f64> = (0..n).map(|_| (rng.unit() - 0.5) * spread).collect();
    if nf {
        // Masked classes (-inf) everywhere, and a row with NaN or +inf now and then.
        for v in x.iter_mut() {
            if rng.below(0, 13) == 0 {
                *v = f64::NEG_INFINITY;
            }
        }
        for r in 0..rows {
            if rng.below(0, 5) == 0 {
                let at = r * classes + rng.below(0, classes);
                x[at] = [f64::NAN, f64::INFINITY][rng.below(0, 2)];
            }
        }
    }
    let logits: Vec<S> = store(&x);
    let labels: Vec<i64> = (0..rows)
        .map(|_| {
            if rng.below(0, 7) == 0 {
                -100
            } else {
                rng.below(0, classes) as i64
            }
        })
        .collect();
    let plain: Vec<i64> = labels.iter().map(|&l| l.max(0)).collect();
    let weight: Vec<S::Compute> = (0..classes).map(|_| S::c(0.1 + 2.0 * rng.unit())).collect();
    let probs: Vec<S::Compute> = (0..rows)
        .flat_map(|_| {
            let row: Vec<f64> = (0..classes).map(|_| rng.unit() * rng.unit()).collect();
            let total: f64 = row.iter().sum();
            row.into_iter().map(move |v| v / total)
        })
        .map(S::c)
        .collect();
    let tag = format!("{} {rows}x{classes} seed={seed} nonfinite={nf}", S::LABEL);
    let l = |name: &str| format!("{tag} {name}");

    let builders = [
        ("plain", CrossEntropy::new()),
        ("weighted", CrossEntropy::new().weight(&weight)),
        ("smoothed", CrossEntropy::new().label_smoothing(0.1)),
        (
            "weighted smoothed",
            CrossEntropy::new().weight(&weight).label_smoothing(0.25),
        ),
        ("z-loss", CrossEntropy::new().z_loss(1e-3)),
        (
            "z-loss smoothed",
            CrossEntropy::new().z_loss(0.5).label_smoothing(0.1),
        ),
        ("softcap", CrossEntropy::new().softcap(S::c(5.0))),
        (
            "softcap weighted smoothed z-loss",
            CrossEntropy::new()
                .softcap(S::c(30.0))
                .weight(&weight)
                .label_smoothing(0.1)
                .z_loss(1e-3),
        ),
    ];
    let mut out = vec![S::c(0.0); rows];
    let mut grad = vec![S::of(0.0); n];
    for (rn, red) in REDUCTIONS {
        let r = losskit::cross_entropy(&logits, classes, &plain, red);
        scalar::<S>(rec, l(&format!("cross_entropy fn {rn}")), r);
        let r = losskit::cross_entropy_probs(&logits, classes, &probs, red);
        scalar::<S>(rec, l(&format!("cross_entropy_probs fn {rn}")), r);
        let r = losskit::cross_entropy_and_grad(&logits, classes, &plain, red, &mut grad);
        with_grad(rec, l(&format!("cross_entropy_and_grad fn {rn}")), r, &grad);
        for (bn, ce) in &builders {
            let r = ce.loss(&logits, classes, &labels, red);
            scalar::<S>(rec, l(&format!("ce {bn} labels {rn}")), r);
            let r = ce.loss_probs(&logits, classes, &probs, red);
            scalar::<S>(rec, l(&format!("ce {bn} probs {rn}")), r);
            let r = ce.loss_and_grad(&logits, classes, &labels, red, &mut grad);
            with_grad(rec, l(&format!("ce {bn} loss_and_grad {rn}")), r, &grad);
            let r = ce.loss_and_grad_probs(&logits, classes, &probs, red, &mut grad);
            with_grad(
                rec,
                l(&format!("ce {bn} loss_and_grad_probs {rn}")),
                r,
                &grad,
            );
            let mut in_place = logits.clone();
            let r = ce.loss_and_grad_in_place(&mut in_place, classes, &labels, red);
            with_grad(rec, l(&format!("ce {bn} in_place {rn}")), r, &in_place);
        }
        let nlls = [
            ("plain", Nll::new()),
            ("weighted", Nll::new().weight(&weight).ignore_index(-100)),
        ];
        let r = losskit::nll(&logits, classes, &plain, red);
        scalar::<S>(rec, l(&format!("nll fn {rn}")), r);
        for (bn, nll) in &nlls {
            let r = nll.loss(&logits, classes, &labels, red);
            scalar::<S>(rec, l(&format!("nll {bn} {rn}")), r);
            let r = nll.loss_and_grad(&logits, classes, &labels, red, &mut grad);
            with_grad(rec, l(&format!("nll {bn} loss_and_grad {rn}")), r, &grad);
        }
        if rn == "mean" {
            for (bn, ce) in &builders {
                // The eval statistics, every field's bits (NaN as one key).
                let r = ce
                    .clone()
                    .top_k(3)
                    .stats(&logits, classes, &labels)
                    .map(|s| {
                        let key = |x: f64| if x.is_nan() { NAN } else { x.to_bits() };
                        vec![
                            s.counted(),
                            key(s.loss(Reduction::Sum)),
                            key(s.loss(Reduction::Mean)),
                            key(s.accuracy()),
                            key(s.top_k_accuracy()),
                            key(s.mean_entropy()),
                        ]
                    });
                rec.push((l(&format!("ce {bn} stats")), r.map_err(|e| e.to_string())));
                let r = ce.each(&logits, classes, &labels, &mut out);
                each::<S>(rec, l(&format!("ce {bn} each")), r, &out);
                let mut per_row = vec![S::c(0.0); rows];
                let r = ce.each_probs(&logits, classes, &probs, &mut per_row);
                each::<S>(rec, l(&format!("ce {bn} each_probs")), r, &per_row);
            }
            for (bn, nll) in &nlls {
                let r = nll.each(&logits, classes, &labels, &mut out);
                each::<S>(rec, l(&format!("nll {bn} each")), r, &out);
            }
        }
    }
}

/// `kl_div_logits` in every form (reduced, each, gradient out of place and in place) over a
/// student and a teacher of `rows x classes`, at two temperatures; with `nf`, masked teacher
/// and student classes (-inf) and now and then a NaN or +inf.
fn distillation<S: Elem>(rec: &mut Record, rows: usize, classes: usize, seed: u64, nf: bool) {
    let mut rng = Rng::new(seed);
    let n = rows * classes;
    let spread = [1.0, 8.0, 40.0][rng.below(0, 3)];
    let mut s: Vec<f64> = (0..n).map(|_| (rng.unit() - 0.5) * spread).collect();
    // A teacher near the student in some rows (a small KL, the cancelling case), far in others.
    let mut t: Vec<f64> = s
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if (i / classes).is_multiple_of(2) {
                v + (rng.unit() - 0.5) * 0.01 * spread
            } else {
                (rng.unit() - 0.5) * spread
            }
        })
        .collect();
    if nf {
        for i in 0..n {
            if rng.below(0, 7) == 0 {
                t[i] = f64::NEG_INFINITY;
            }
            if rng.below(0, 31) == 0 {
                s[i] = f64::NEG_INFINITY;
            }
        }
        for r in 0..rows {
            if rng.below(0, 5) == 0 {
                let at = r * classes + rng.below(0, classes);
                let v = [f64::NAN, f64::INFINITY][rng.below(0, 2)];
                if rng.below(0, 2) == 0 {
                    s[at] = v;
                } else {
                    t[at] = v;
                }
            }
        }
    }
    let (student, teacher) = (store::<S>(&s), store::<S>(&t));
    let l = |what: &str| format!("{} kl {rows}x{classes} nf={nf} {what}", S::LABEL);
    for temp in [1.0, 0.7] {
        let temp_c = S::c(temp);
        for (rn, red) in REDUCTIONS {
            let r = losskit::kl_div_logits(&student, &teacher, classes, temp_c, red);
            scalar::<S>(rec, l(&format!("T={temp} {rn}")), r);
            let mut g = vec![S::of(0.0); n];
            let r =
                losskit::kl_div_logits_and_grad(&student, &teacher, classes, temp_c, red, &mut g);
            with_grad_digest::<S>(rec, l(&format!("T={temp} {rn} grad")), r, &g);
            let mut inp = student.clone();
            let r =
                losskit::kl_div_logits_and_grad_in_place(&mut inp, &teacher, classes, temp_c, red);
            with_grad_digest::<S>(rec, l(&format!("T={temp} {rn} in place")), r, &inp);
        }
        let mut out = vec![S::c(0.0); rows];
        let r = losskit::kl_div_logits_each(&student, &teacher, classes, temp_c, &mut out);
        each::<S>(rec, l(&format!("T={temp} each")), r, &out);
    }
}

/// ctc in every form on `[t, n, c]` log-probabilities (log_softmax rows of wide logits, some
/// spiced with non-finite values when `nf`), with target lengths up to `max_target`.
fn ctc<S: Elem>(rec: &mut Record, [t, n, c]: [usize; 3], max_target: usize, seed: u64, nf: bool) {
    let mut rng = Rng::new(seed);
    let mut lp = Vec::with_capacity(t * n * c);
    for _ in 0..t * n {
        let row: Vec<f64> = (0..c).map(|_| rng.wide().clamp(-30.0, 30.0)).collect();
        let m = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        lp.extend(row.iter().map(|x| x - lse));
    }
    if nf {
        rng.spice(&mut lp, 200);
    }
    let lp = store::<S>(&lp);
    let il: Vec<i64> = (0..n).map(|_| rng.below(0, t + 1) as i64).collect();
    let tl: Vec<i64> = (0..n)
        .map(|_| rng.below(0, max_target + 1) as i64)
        .collect();
    let total = tl.iter().sum::<i64>() as usize;
    let targets: Vec<i64> = (0..total).map(|_| rng.below(1, c) as i64).collect();
    let shape = [t, n, c];
    let l = |s: &str| format!("{} ctc [{t},{n},{c}] nf={nf} {s}", S::LABEL);
    for zi in [false, true] {
        let ctc = Ctc::new().zero_infinity(zi);
        for (rn, red) in REDUCTIONS {
            let r = ctc.loss(&lp, shape, &targets, &il, &tl, red);
            scalar::<S>(rec, l(&format!("zi={zi} {rn}")), r);
            let mut grad = vec![S::of(0.0); lp.len()];
            let r = ctc.loss_and_grad(&lp, shape, &targets, &il, &tl, red, &mut grad);
            with_grad(rec, l(&format!("zi={zi} {rn} and_grad")), r, &grad);
        }
        let mut out = vec![S::c(0.0); n];
        let r = ctc.each(&lp, shape, &targets, &il, &tl, &mut out);
        each::<S>(rec, l(&format!("zi={zi} each")), r, &out);
    }
}

/// Lengths at and around the driver's chunk boundaries (65536·k ± small), short ones around
/// the lane counts, and random ones.
fn lengths(rng: &mut Rng, coverage: Coverage) -> Vec<usize> {
    if coverage == Coverage::EachPath {
        // Empty, a lane tail, whole vectors with a tail.
        return vec![0, 17, 1025];
    }
    let mut v = vec![
        0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024,
    ];
    v.extend([1025, 4095, 4096, 4097]);
    for k in 1..=3usize {
        for d in [-3i64, -1, 0, 1, 5] {
            v.push((65_536 * k as i64 + d) as usize);
        }
    }
    v.extend((0..4).map(|_| rng.below(2, 300)));
    v.extend((0..3).map(|_| rng.below(300, 20_000)));
    v
}

/// Shapes `(rows, classes)`: short rows (2–32 classes, with rows that fill whole lane groups
/// and a ragged rest), mid (100–3000) and long (at least 140000 classes, few rows: the
/// within-row split).
fn shapes(rng: &mut Rng, coverage: Coverage) -> Vec<(usize, usize)> {
    if coverage == Coverage::EachPath {
        // Short rows in lane groups with a ragged rest, one class, mid rows, and the within-row
        // split of a long row.
        return vec![(33, 2), (17, 32), (5, 1), (7, 1000), (1, 131_073)];
    }
    let mut v = vec![(33, 2), (48, 16), (17, 32), (1, 1), (5, 1)];
    v.extend((0..6).map(|_| (rng.below(1, 80), rng.below(2, 33))));
    v.extend((0..4).map(|_| (rng.below(1, 24), rng.below(100, 3001))));
    v.push((2, 140_000 + rng.below(0, 3000)));
    v.push((1, 200_000 + rng.below(0, 70_000)));
    v.push((3, 140_000));
    v
}

/// How much of the battery to run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Coverage {
    /// Every length and shape: the tier-agreement tests.
    Full,
    /// One case of each code path (lane tails, parallel leaves, short, mid and split long
    /// rows), for tests that need every kernel to run but not every size: the stack test,
    /// which CI also runs unoptimised, where the full battery takes 18 minutes.
    EachPath,
}

/// The battery for one storage type.
fn battery<S: Elem>(rec: &mut Record, seed: u64, coverage: Coverage) {
    let mut rng = Rng::new(seed);
    for (i, n) in lengths(&mut rng, coverage).into_iter().enumerate() {
        elementwise::<S>(rec, n, seed + i as u64, i % 2 == 1);
    }
    // Non-finite logits take other branches, not other functions: one path needs one of them.
    let nonfinite_too = coverage == Coverage::Full;
    for (i, (rows, classes)) in shapes(&mut rng, coverage).into_iter().enumerate() {
        classification::<S>(rec, rows, classes, seed + 1000 + i as u64, false);
        distillation::<S>(rec, rows, classes, seed + 3000 + i as u64, false);
        if nonfinite_too {
            classification::<S>(rec, rows, classes, seed + 2000 + i as u64, true);
            distillation::<S>(rec, rows, classes, seed + 4000 + i as u64, true);
        }
    }
    // ctc: short and long targets (lane tails of 16 and 8), repeats, impossible alignments,
    // vocabularies around the lane counts, and a batch large enough to run in parallel.
    let ctc_shapes = [
        ([1, 1, 2], 1),
        ([7, 3, 5], 4),
        ([30, 4, 17], 20),
        ([60, 5, 9], 40),
        ([200, 6, 33], 70),
    ];
    let ctc_cases = match coverage {
        Coverage::Full => &ctc_shapes[..],
        Coverage::EachPath => &ctc_shapes[3..],
    };
    for (i, &(shape, max_target)) in ctc_cases.iter().enumerate() {
        ctc::<S>(rec, shape, max_target, seed + 3000 + i as u64, false);
        if nonfinite_too {
            ctc::<S>(rec, shape, max_target, seed + 4000 + i as u64, true);
        }
    }
}

/// Every call of the battery on `tier`, for the four storage types.
fn record(tier: Tier, coverage: Coverage) -> Record {
    with_tier(tier, || {
        let mut rec = Record::new();
        battery::<f32>(&mut rec, 0x5eed_0001, coverage);
        battery::<f64>(&mut rec, 0x5eed_0002, coverage);
        battery::<bf16>(&mut rec, 0x5eed_0003, coverage);
        battery::<f16>(&mut rec, 0x5eed_0004, coverage);
        rec
    })
    .expect("the tier is available")
}

/// Asserts that two tiers' records are equal entry by entry, naming the first differences.
fn assert_same(a: (Tier, &Record), b: (Tier, &Record)) {
    assert_eq!(
        a.1.len(),
        b.1.len(),
        "{} and {} ran different batteries",
        a.0,
        b.0
    );
    let mut differing = Vec::new();
    for ((la, oa), (lb, ob)) in a.1.iter().zip(b.1) {
        assert_eq!(la, lb, "the batteries diverged");
        if oa != ob {
            let detail = match (oa, ob) {
                (Ok(x), Ok(y)) => {
                    let at = x.iter().zip(y).position(|(p, q)| p != q).unwrap_or(0);
                    let n = x.iter().zip(y).filter(|(p, q)| p != q).count();
                    format!("{n} of {} values differ, first at {at}", x.len())
                }
                _ => format!("{oa:?} vs {ob:?}"),
            };
            differing.push(format!("{la}: {detail}"));
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} calls differ between {} and {}; first ones:\n{}",
        differing.len(),
        a.1.len(),
        a.0,
        b.0,
        differing[..differing.len().min(20)].join("\n")
    );
}

#[test]
fn avx2_and_avx512_give_the_same_bits_for_every_loss_and_form() {
    let x86: Vec<Tier> = Tier::available()
        .into_iter()
        .filter(|t| matches!(t, Tier::Avx2 | Tier::Avx512))
        .collect();
    let records: Vec<(Tier, Record)> = x86
        .iter()
        .map(|&t| (t, record(t, Coverage::Full)))
        .collect();
    match records.as_slice() {
        [] => {
            // No x86 SIMD tier here: nothing to compare; say so rather than pass silently.
            println!("tier_agreement: no AVX2 or AVX-512 tier on this CPU; nothing compared");
            assert!(!Tier::Avx2.is_available() && !Tier::Avx512.is_available());
        }
        [(tier, rec)] => {
            // One x86 tier: the other cannot run here. The battery must at least be
            // deterministic on the tier present (the property the comparison builds on).
            println!(
                "tier_agreement: only {tier} runs on this CPU; compared {tier} with itself \
                 ({} calls)",
                rec.len()
            );
            assert_same((*tier, rec), (*tier, &record(*tier, Coverage::Full)));
        }
        [first, rest @ ..] => {
            for other in rest {
                println!(
                    "tier_agreement: compared {} and {} ({} calls)",
                    first.0,
                    other.0,
                    first.1.len()
                );
                assert_same((first.0, &first.1), (other.0, &other.1));
            }
        }
    }
    // The records must hold what they claim: values, not only errors.
    let ok = records
        .first()
        .map_or(0, |(_, r)| r.iter().filter(|(_, o)| o.is_ok()).count());
    assert!(records.is_empty() || ok > 1000, "only {ok} calls succeeded");
}

/// The stack the kernels must fit in: an eighth of the 2 MiB that Rust gives a spawned thread
/// (test threads, rayon's and tokio's workers).
const SMALL_STACK: usize = 256 << 10;

#[test]
fn every_loss_and_form_fits_a_256_kib_thread_stack_on_every_tier() {
    // One case of each path on every tier, on a pool whose threads (the caller's included: `install`
    // runs on one of them) have a 256 KiB stack. Unoptimised builds are the ones at risk (LLVM
    // gives every temporary of an inlined call its own slot at O0; the largest tier functions'
    // frames once reached 2 MB there): CI runs this test in the dev profile too. An overflow
    // aborts the test binary.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .stack_size(SMALL_STACK)
        .build()
        .unwrap();
    for tier in Tier::available() {
        let rec = pool.install(|| record(tier, Coverage::EachPath));
        // The battery's few error cases aside, every call must have run.
        let ok = rec.iter().filter(|(_, o)| o.is_ok()).count();
        assert!(
            ok > 3000,
            "{tier}: only {ok} of {} calls succeeded",
            rec.len()
        );
    }
}
