//! Cross-entropy in every form (free functions, `CrossEntropy` builder `.loss`, `.each`,
//! `.loss_probs`, `.each_probs`), with labels of every integer type, on arbitrary shapes
//! (`classes` from 0 to `usize::MAX`, logits of any length), arbitrary label values, ignore
//! index, class weights, label smoothing and probability targets, on a fuzzer-chosen tier.
//!
//! Checks: no panic; `Ok` exactly when the call is valid, otherwise one of the errors that
//! applies (the order of the checks is not documented); errors leave `out` untouched; with no
//! scored rows the mean is NaN and the sum 0; ignored rows are 0 in `each`; NaN or +inf in a
//! scored row's logits makes that row and the reduction NaN; moderate inputs give finite,
//! non-negative losses that agree with `losskit::reference` (unweighted labels, loosely).
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "../../tests/registry/mod.rs"]
#[macro_use]
mod registry;

use arbitrary::Arbitrary;
use common::{build, check_outcome, mismatch, same, untouched, Elem};
use libfuzzer_sys::fuzz_target;
use losskit::{reference, with_tier, CrossEntropy, LossError, Reduction, Tier};

/// A label type, built from fuzzer bits.
trait Lab: losskit::Label + core::fmt::Debug {
    fn from_raw(v: u64) -> Self;
    fn wide(self) -> i128;
}

macro_rules! lab {
    ($($t:ty),*) => {$(
        impl Lab for $t {
            fn from_raw(v: u64) -> Self {
                v as $t
            }
            fn wide(self) -> i128 {
                self as i128
            }
        }
    )*};
}
lab!(i32, i64, u32, u64, usize);

#[derive(Arbitrary, Debug, Clone, Copy)]
enum LabelType {
    I32,
    I64,
    U32,
    U64,
    Usize,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Form {
    /// `losskit::cross_entropy` (no options).
    Free(bool),
    /// `losskit::cross_entropy_probs` (no options).
    FreeProbs(bool),
    Loss(bool),
    Each,
    LossProbs(bool),
    EachProbs,
    /// `loss_and_grad` (Sum when true), the gradient into its own buffer.
    Grad(bool),
    GradProbs(bool),
    /// `loss_and_grad_in_place` on a copy of the logits.
    GradInPlace(bool),
    /// `loss` (Sum when true), then the same call over vocabulary shards (`vocab_rows`,
    /// `vocab_stats_rows`, `vocab_loss`, `vocab_each`, `vocab_stats`, `vocab_grad`), merged
    /// as they should be or misused as the `u8` says.
    Vocab(bool, u8, u8),
}

impl Form {
    fn probs(self) -> bool {
        matches!(
            self,
            Form::FreeProbs(_) | Form::LossProbs(_) | Form::EachProbs | Form::GradProbs(_)
        )
    }
    fn free(self) -> bool {
        matches!(self, Form::Free(_) | Form::FreeProbs(_))
    }
    fn reduction(self) -> Option<Reduction> {
        match self {
            Form::Free(s)
            | Form::FreeProbs(s)
            | Form::Loss(s)
            | Form::LossProbs(s)
            | Form::Grad(s)
            | Form::GradProbs(s)
            | Form::GradInPlace(s)
            | Form::Vocab(s, _, _) => Some(if s { Reduction::Sum } else { Reduction::Mean }),
            Form::Each | Form::EachProbs => None,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Classes {
    Tiny(u8),
    Medium(u16),
    Huge(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Rows {
    Tiny(u8),
    Medium(u16),
    /// Enough rows for several parallel chunks.
    Big(u16),
}

/// A length relative to the one that would be valid.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Same,
    Near(i8),
    Other(u16),
}

impl Len {
    fn get(self, valid: usize) -> usize {
        match self {
            Len::Same => valid,
            Len::Near(k) => valid.saturating_add_signed(k as isize),
            Len::Other(k) => k as usize,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum LabelMode {
    /// `raw % classes`: valid.
    Valid,
    /// Mostly valid; some raw (usually out of range) and some equal to the ignore index.
    Mixed,
    /// Raw bits cast to the label type.
    Raw,
    /// Every row ignored.
    AllIgnored,
}

#[derive(Arbitrary, Debug)]
struct Case {
    double: bool,
    tier: u8,
    form: Form,
    label_type: LabelType,
    classes: Classes,
    rows: Rows,
    logits_len: Len,
    labels_len: Len,
    probs_len: Len,
    out_len: Len,
    label_mode: LabelMode,
    raw_labels: Vec<u64>,
    ignore_index: Option<i64>,
    weight: Option<(Len, Vec<u64>, bool)>,
    smoothing: Option<u64>,
    raw_logits: Vec<u64>,
    tame_logits: bool,
    raw_probs: Vec<u64>,
    squash_probs: bool,
    at: u32,
}

/// Logits capped so that one input stays cheap.
const MAX_ELEMS: usize = 1 << 20;

fn tame<T: Elem>(v: T) -> T {
    if v.f64().is_finite() && v.f64().abs() <= 30.0 {
        v
    } else {
        T::of(((v.bits() >> 5) % 6001) as f64 / 100.0 - 30.0)
    }
}

fn squash<T: Elem>(v: T) -> T {
    if v.f64() >= 0.0 && v.f64() <= 1.0 {
        v
    } else {
        T::of(((v.bits() >> 3) % 1025) as f64 / 1024.0)
    }
}

fn run<T: Elem, L: Lab>(c: &Case) {
    let classes = match c.classes {
        Classes::Tiny(k) => k as usize % 40,
        Classes::Medium(k) => k as usize % 5000,
        Classes::Huge(k) => k as usize,
    };
    let mut rows = match c.rows {
        Rows::Tiny(k) => k as usize % 40,
        Rows::Medium(k) => k as usize % 2000,
        Rows::Big(k) => (3 * 65_536 + k as usize) / classes.max(1),
    };
    // At most MAX_ELEMS logits (any number of rows of zero classes).
    if let Some(cap) = MAX_ELEMS.checked_div(classes) {
        rows = rows.min(cap);
    }
    let valid_len = rows * classes;
    let n = c.logits_len.get(valid_len).min(MAX_ELEMS + 64);
    let mut logits = build::<T>(n, 0, c.at, &c.raw_logits, 5);
    if c.tame_logits {
        logits.iter_mut().for_each(|v| *v = tame(*v));
    }

    // Options (the free functions use PyTorch's defaults).
    let free = c.form.free();
    let ignore = if free {
        -100
    } else {
        c.ignore_index.unwrap_or(-100)
    };
    let smoothing = if free {
        0.0
    } else {
        c.smoothing.map_or(0.0, f64::from_bits)
    };
    let weight: Option<Vec<T>> = match (&c.weight, free) {
        (Some((len, raw, tamed)), false) => {
            let w = build::<T>(len.get(classes).min(MAX_ELEMS), 0, 0, raw, 6);
            Some(if *tamed {
                w.into_iter()
                    .map(|v| T::of(tame(v).f64().abs() / 3.0))
                    .collect()
            } else {
                w
            })
        }
        _ => None,
    };
    let mut ce = CrossEntropy::new()
        .ignore_index(ignore)
        .label_smoothing(smoothing);
    if let Some(w) = &weight {
        ce = ce.weight(w);
    }

    // The errors that apply.
    let mut allowed = Vec::new();
    let mut shape_ok = false;
    if classes == 0 {
        allowed.push(LossError::ZeroClasses);
    } else if !n.is_multiple_of(classes) {
        allowed.push(LossError::NotMultipleOfClasses { len: n, classes });
    } else {
        shape_ok = true;
    }
    let rows = if shape_ok { n / classes } else { 0 };
    if let Some(w) = &weight {
        allowed.extend(mismatch("weight", w.len(), "classes", classes));
    }
    if !(0.0..=1.0).contains(&smoothing) {
        allowed.push(LossError::InvalidParameter {
            name: "label_smoothing",
            value: smoothing,
            requirement: "in [0, 1]",
        });
    }

    // Labels or probabilities.
    let n_labels = c.labels_len.get(rows).min(MAX_ELEMS);
    let labels: Vec<L> = (0..n_labels)
        .map(|i| {
            let raw = c
                .raw_labels
                .get(i % c.raw_labels.len().max(1))
                .copied()
                .unwrap_or(i as u64);
            let raw = raw.rotate_left((i / c.raw_labels.len().max(1)) as u32);
            let valid = || {
                L::from_raw(if classes == 0 {
                    0
                } else {
                    raw % classes as u64
                })
            };
            match c.label_mode {
                LabelMode::Valid => valid(),
                LabelMode::Raw => L::from_raw(raw),
                LabelMode::AllIgnored => L::from_raw(ignore as u64),
                LabelMode::Mixed => match raw >> 61 {
                    0 => L::from_raw(raw),
                    1 => L::from_raw(ignore as u64),
                    _ => valid(),
                },
            }
        })
        .collect();
    let n_probs = c.probs_len.get(n).min(MAX_ELEMS + 64);
    let mut probs = build::<T>(n_probs, 0, c.at.rotate_left(9), &c.raw_probs, 7);
    if c.squash_probs {
        probs.iter_mut().for_each(|v| *v = squash(*v));
    }
    if shape_ok {
        if c.form.probs() {
            allowed.extend(mismatch("probs", n_probs, "logits", n));
        } else if n_labels != rows {
            allowed.push(LossError::LengthMismatch {
                name: "labels",
                len: n_labels,
                expected_name: "rows of logits",
                expected: rows,
            });
        } else if let Some((row, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| l.wide() != ignore as i128 && !(0..classes as i128).contains(&l.wide()))
        {
            allowed.push(LossError::LabelOutOfRange {
                row,
                label: l.wide(),
                classes,
            });
        }
    }
    let n_out = c.out_len.get(rows).min(MAX_ELEMS);
    if shape_ok && c.form.reduction().is_none() {
        allowed.extend(mismatch("out", n_out, "rows of logits", rows));
    }

    let grad_form = matches!(c.form, Form::Grad(_) | Form::GradProbs(_));
    let n_grad = if grad_form {
        c.out_len.get(n).min(MAX_ELEMS + 64)
    } else {
        0
    };
    if grad_form {
        allowed.extend(mismatch("grad", n_grad, "logits", n));
    }

    let tiers = Tier::available();
    let tier = tiers[c.tier as usize % tiers.len()];
    let sentinel = T::of(-4321.0);
    let mut out = vec![sentinel; n_out];
    let mut grad = vec![sentinel; n_grad];
    let mut in_place = logits.clone();
    let what = format!(
        "{:?} {rows}x{classes} (n={n}) {} on {tier}",
        c.form,
        std::any::type_name::<L>()
    );
    let result: Result<Option<T>, LossError> = with_tier(tier, || match c.form {
        Form::Free(_) => {
            losskit::cross_entropy(&logits, classes, &labels, c.form.reduction().unwrap()).map(Some)
        }
        Form::FreeProbs(_) => {
            losskit::cross_entropy_probs(&logits, classes, &probs, c.form.reduction().unwrap())
                .map(Some)
        }
        Form::Loss(_) | Form::Vocab(..) => ce
            .loss(&logits, classes, &labels, c.form.reduction().unwrap())
            .map(Some),
        Form::LossProbs(_) => ce
            .loss_probs(&logits, classes, &probs, c.form.reduction().unwrap())
            .map(Some),
        Form::Each => ce.each(&logits, classes, &labels, &mut out).map(|()| None),
        Form::EachProbs => ce
            .each_probs(&logits, classes, &probs, &mut out)
            .map(|()| None),
        Form::Grad(_) => ce
            .loss_and_grad(
                &logits,
                classes,
                &labels,
                c.form.reduction().unwrap(),
                &mut grad,
            )
            .map(Some),
        Form::GradProbs(_) => ce
            .loss_and_grad_probs(
                &logits,
                classes,
                &probs,
                c.form.reduction().unwrap(),
                &mut grad,
            )
            .map(Some),
        Form::GradInPlace(_) => ce
            .loss_and_grad_in_place(&mut in_place, classes, &labels, c.form.reduction().unwrap())
            .map(Some),
    })
    .unwrap();
    check_outcome(&what, &result, &allowed);
    let Ok(result) = result else {
        untouched(&out, sentinel, &format!("{what} (out)"));
        untouched(&grad, sentinel, &format!("{what} (grad)"));
        assert!(
            in_place
                .iter()
                .zip(&logits)
                .all(|(a, b)| a.bits() == b.bits()),
            "{what}: an error wrote to the logits (in place)"
        );
        return;
    };

    // The call was valid: rows x classes logits, and labels or probabilities to match.
    let row = |r: usize| &logits[r * classes..(r + 1) * classes];
    let scored: Vec<bool> = (0..rows)
        .map(|r| c.form.probs() || labels[r].wide() != ignore as i128)
        .collect();
    let any_scored = scored.iter().any(|&s| s);
    let bad_row = |r: usize| row(r).iter().any(|v| v.nan() || v.f64() == f64::INFINITY);
    let moderate_weight = weight
        .as_ref()
        .is_none_or(|w| w.iter().all(|v| v.f64() >= 0.0 && v.f64() <= 1e3));
    let moderate_probs = !c.form.probs() || probs.iter().all(|v| v.f64() >= 0.0 && v.f64() <= 1.0);
    let moderate = logits.iter().all(|v| v.f64().abs() <= 1e3) && moderate_weight && moderate_probs;

    if let (Some(loss), Form::Grad(_) | Form::GradProbs(_) | Form::GradInPlace(_)) =
        (result, c.form)
    {
        let r = c.form.reduction().unwrap();
        let in_place_form = matches!(c.form, Form::GradInPlace(_));
        // The forward loss of the same call, computed apart from the fused one.
        let plain = with_tier(tier, || {
            if c.form.probs() {
                ce.loss_probs(&logits, classes, &probs, r)
            } else {
                ce.loss(&logits, classes, &labels, r)
            }
        })
        .unwrap()
        .expect("the fused form was valid");
        let (a, b) = (loss.f64(), plain.f64());
        assert_eq!(a.is_nan(), b.is_nan(), "{what}: fused {a}, forward {b}");
        if moderate && a.is_finite() && b.is_finite() {
            let tol = 2048.0 * T::UNIT * (b.abs() + 1.0);
            assert!((a - b).abs() <= tol, "{what}: fused {a}, forward {b}");
        }
        let written = if in_place_form { &in_place } else { &grad };
        if in_place_form {
            // Bit-identical to the out-of-place form.
            let mut outside = vec![T::of(0.0); n];
            let l2 = with_tier(tier, || {
                ce.loss_and_grad(&logits, classes, &labels, r, &mut outside)
            })
            .unwrap()
            .unwrap();
            assert!(same(l2, loss), "{what}: in place loss differs");
            assert!(
                outside.iter().zip(&in_place).all(|(&x, &y)| same(x, y)),
                "{what}: in place gradient differs"
            );
        }
        for (r, g) in written.chunks(classes.max(1)).enumerate().take(rows) {
            if !scored[r] {
                assert!(
                    g.iter().all(|v| v.f64() == 0.0),
                    "{what}: ignored row {r} has a gradient"
                );
            }
        }
    }

    if let (Form::Vocab(_, shards, misuse), Some(loss)) = (c.form, result) {
        let r = c.form.reduction().unwrap();
        vocab::<T, L>(&ce, tier, &logits, classes, &labels, ignore, r, loss, shards, misuse, &what);
    }

    match result {
        Some(loss) => {
            let g = loss.f64();
            let sum = c.form.reduction() == Some(Reduction::Sum);
            if !any_scored {
                if sum {
                    assert!(g == 0.0, "{what}: nothing scored, sum {g}");
                } else {
                    assert!(g.is_nan(), "{what}: nothing scored, mean {g}");
                }
            } else if (0..rows).any(|r| scored[r] && bad_row(r)) {
                assert!(
                    g.is_nan(),
                    "{what}: NaN or +inf logits in a scored row, loss {g}"
                );
            } else if moderate && (sum || weight.is_none() || c.form.probs()) {
                // (A weighted mean of labels divides by the summed weights, which may be 0.)
                assert!(
                    g.is_finite() && g >= 0.0,
                    "{what}: moderate inputs, loss {g}"
                );
            }
        }
        None => {
            for (r, &o) in out.iter().enumerate() {
                let o = o.f64();
                if !scored[r] {
                    assert!(o == 0.0, "{what}: ignored row {r} is {o}");
                } else if bad_row(r) {
                    assert!(
                        o.is_nan(),
                        "{what}: row {r} has NaN or +inf logits, loss {o}"
                    );
                } else if moderate {
                    assert!(o.is_finite() && o >= 0.0, "{what}: row {r} is {o}");
                    if !c.form.probs() && weight.is_none() && smoothing == 0.0 {
                        let t = labels[r].wide() as usize;
                        let (want, _) = reference::cross_entropy_row(
                            row(r),
                            reference::RowTarget::Class(t),
                            None,
                            0.0,
                        );
                        let spread = row(r).iter().map(|v| v.f64().abs()).fold(1.0, f64::max);
                        let tol =
                            64.0 * T::UNIT * (spread + want.abs() + (classes as f64).ln().max(1.0));
                        assert!(
                            (o - want).abs() <= tol,
                            "{what}: row {r} is {o}, reference {want}"
                        );
                    }
                }
            }
        }
    }
}

/// A shard's own `[rows, width]` matrix.
fn slice<T: Copy>(logits: &[T], classes: usize, offset: usize, width: usize) -> Vec<T> {
    logits
        .chunks_exact(classes)
        .flat_map(|row| row[offset..offset + width].iter().copied())
        .collect()
}

/// The valid call `ce.loss(logits, classes, labels, r) == loss` over vocabulary shards: cut into
/// `1 + shards % 4` shards, merged correctly (`misuse % 5 == 0`: the results agree with the
/// unsharded ones; every shard's gradient is finite where the unsharded one is) or misused (a
/// shard left out or merged twice, other labels at the finish, unranked statistics): errors,
/// never a panic, and an erroring `vocab_grad` writes nothing.
#[allow(clippy::too_many_arguments)]
fn vocab<T: Elem, L: Lab>(
    ce: &CrossEntropy<'_, T>,
    tier: Tier,
    logits: &[T],
    classes: usize,
    labels: &[L],
    ignore: i64,
    r: Reduction,
    loss: T,
    shards: u8,
    misuse: u8,
    what: &str,
) {
    use losskit::{VocabRow, VocabShard};
    let rows = labels.len();
    let n = (1 + shards as usize % 4).min(classes);
    // Uneven cuts: shard i ends at classes·(i+1)²/n², at least one class each.
    let mut cuts = vec![0usize];
    for i in 1..=n {
        let end = (classes as u128 * (i * i) as u128 / (n * n) as u128) as usize;
        cuts.push(end.max(cuts[i - 1] + 1).min(classes - (n - i)));
    }
    let parts: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1] - w[0])).collect();
    let targets: Vec<T> = (0..rows)
        .map(|row| {
            let l = labels[row].wide();
            if l == ignore as i128 {
                T::of(0.0)
            } else {
                logits[row * classes + l as usize]
            }
        })
        .collect();
    let scored = labels.iter().any(|l| l.wide() != ignore as i128);
    with_tier(tier, || {
        let mut plain = vec![VocabRow::default(); rows];
        let mut ranked = vec![VocabRow::default(); rows];
        for (i, &(offset, width)) in parts.iter().enumerate() {
            let shard = VocabShard::new(offset, width, classes).expect("a valid shard");
            let x = slice(logits, classes, offset, width);
            let mut p = vec![VocabRow::default(); rows];
            let mut q = vec![VocabRow::default(); rows];
            ce.vocab_rows(&x, shard, labels, &mut p).expect("valid");
            ce.vocab_stats_rows(&x, shard, labels, &targets, &mut q)
                .expect("valid");
            // Misuse 1 leaves the last shard out (when there are two), 2 merges the first twice.
            let times = match misuse % 5 {
                1 if n > 1 && i == n - 1 => 0,
                2 if i == 0 => 2,
                _ => 1,
            };
            for _ in 0..times {
                for (m, v) in plain.iter_mut().zip(&p).chain(ranked.iter_mut().zip(&q)) {
                    // Compared as printed: NaN (from NaN logits) is never `==` itself.
                    let (mv, vm) = (m.merge(v), v.merge(m));
                    assert!(
                        format!("{mv:?}") == format!("{vm:?}"),
                        "{what}: merge not commutative: {mv:?} vs {vm:?}"
                    );
                    *m = m.merge(v);
                }
            }
        }
        let broken = scored && (misuse % 5 == 2 || (misuse % 5 == 1 && n > 1));
        let other: Vec<L> = labels.iter().rev().copied().collect();
        let finish_labels: &[L] = if misuse % 5 == 3 { &other } else { labels };
        let got = ce.vocab_loss(&plain, finish_labels, r);
        let stats_rows = if misuse % 5 == 4 { &plain } else { &ranked };
        let stats = ce.vocab_stats(stats_rows, finish_labels);
        let mut each = vec![T::of(0.0); rows];
        let each_result = ce.vocab_each(&plain, finish_labels, &mut each);
        assert_eq!(got.is_ok(), each_result.is_ok(), "{what}: vocab_loss vs vocab_each");
        if broken {
            assert!(
                matches!(got, Err(LossError::IncompleteRow { .. })),
                "{what}: a misused merge gave {got:?}"
            );
        }
        if misuse % 5 == 4 && scored {
            assert!(
                matches!(stats, Err(LossError::NotRanked { .. })),
                "{what}: unranked statistics gave {stats:?}"
            );
        }
        for &(offset, width) in &parts {
            let shard = VocabShard::new(offset, width, classes).unwrap();
            let x = slice(logits, classes, offset, width);
            let sentinel = T::of(-4321.0);
            let mut g = vec![sentinel; x.len()];
            if ce
                .vocab_grad(&x, shard, finish_labels, &plain, r, &mut g)
                .is_err()
            {
                untouched(&g, sentinel, &format!("{what} (vocab grad)"));
            }
        }
        if misuse % 5 != 0 {
            return;
        }
        let got = got.expect("a correct merge is valid").f64();
        let want = loss.f64();
        assert_eq!(got.is_nan(), want.is_nan(), "{what}: sharded {got}, unsharded {want}");
        let moderate = logits.iter().all(|v| v.f64().abs() <= 1e3);
        if moderate && got.is_finite() && want.is_finite() {
            let tol = 2048.0 * T::UNIT * (want.abs() + 1.0);
            assert!((got - want).abs() <= tol, "{what}: sharded {got}, unsharded {want}");
        }
        let s = stats.expect("ranked rows of a correct merge are valid");
        let t = ce.stats(logits, classes, labels).expect("valid");
        assert_eq!(s.counted(), t.counted(), "{what}: counted");
        assert_eq!(
            s.accuracy().to_bits(),
            t.accuracy().to_bits(),
            "{what}: sharded accuracy"
        );
        assert_eq!(
            s.top_k_accuracy().to_bits(),
            t.top_k_accuracy().to_bits(),
            "{what}: sharded top-k accuracy"
        );
    })
    .unwrap();
}

fn by_label<T: Elem>(c: &Case) {
    match c.label_type {
        LabelType::I32 => run::<T, i32>(c),
        LabelType::I64 => run::<T, i64>(c),
        LabelType::U32 => run::<T, u32>(c),
        LabelType::U64 => run::<T, u64>(c),
        LabelType::Usize => run::<T, usize>(c),
    }
}

fuzz_target!(|c: Case| {
    if c.double {
        by_label::<f64>(&c)
    } else {
        by_label::<f32>(&c)
    }
});
