//! The paired row-wise losses of the registry (`registry::PAIRED`: `kl_div_logits`) against
//! their scalar twins, on every tier and in every storage type (bf16 and f16 included): the
//! reduced loss, each row, the gradient (out of place and in place, the same bits) within the
//! error bound the kernel documents; masks and non-finite rows; and every argument error.

use crate::registry::{self, Paired, PairedStored};

use losskit::{bf16, f16, with_tier, LossError, Reduction, Tier};
use proptest::prelude::*;

/// A storage type with its conversions and the unit roundoff of its compute type and of
/// itself (a gradient is rounded once to the storage type).
trait Elem: PairedStored {
    fn of(x: f64) -> Self;
    fn wide(self) -> f64;
    fn c(x: f64) -> Self::Compute;
    fn cwide(x: Self::Compute) -> f64;
    /// The compute type's unit roundoff.
    const U: f64;
    /// The storage type's unit roundoff (its gradient's rounding).
    const U_STORE: f64;
    /// The compute type's smallest normal value.
    const MIN_POSITIVE: f64;
    /// The storage type's smallest subnormal value.
    const TINY_STORE: f64;
}

macro_rules! elem {
    ($t:ident, $c:ident, $of:expr, $wide:expr, $u:expr, $us:expr, $tiny:expr) => {
        impl Elem for $t {
            fn of(x: f64) -> Self {
                $of(x)
            }
            fn wide(self) -> f64 {
                $wide(self)
            }
            fn c(x: f64) -> $c {
                x as $c
            }
            fn cwide(x: $c) -> f64 {
                x as f64
            }
            const U: f64 = $u;
            const U_STORE: f64 = $us;
            const MIN_POSITIVE: f64 = $c::MIN_POSITIVE as f64;
            const TINY_STORE: f64 = $tiny;
        }
    };
}
const U32: f64 = f32::EPSILON as f64 / 2.0;
elem!(f32, f32, |x| x as f32, |x| x as f64, U32, U32, 1.4e-45);
elem!(
    f64,
    f64,
    |x| x,
    |x| x,
    f64::EPSILON / 2.0,
    f64::EPSILON / 2.0,
    4.9e-324
);
elem!(
    bf16,
    f32,
    bf16::from_f64,
    |x: bf16| x.to_f64(),
    U32,
    1.0 / 256.0,
    9.2e-41
);
elem!(
    f16,
    f32,
    f16::from_f64,
    |x: f16| x.to_f64(),
    U32,
    1.0 / 2048.0,
    6.0e-8
);

#[derive(Clone, Debug)]
struct Case {
    rows: usize,
    classes: usize,
    student: Vec<f64>,
    teacher: Vec<f64>,
    temperature: f64,
}

fn logit() -> impl Strategy<Value = f64> {
    prop_oneof![10 => -8.0..8.0f64, 1 => -40.0..40.0f64]
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..12,
        prop_oneof![1usize..40, 1usize..3000],
        prop_oneof![Just(1.0), Just(2.0), 0.25..4.0f64],
        any::<bool>(),
    )
        .prop_flat_map(|(rows, classes, temperature, close)| {
            let rows = if classes > 600 { rows.min(4) } else { rows };
            let n = rows * classes;
            (
                proptest::collection::vec(logit(), n),
                proptest::collection::vec(-1.0..1.0f64, n),
                proptest::collection::vec(0u8..20, n),
            )
                .prop_map(move |(student, noise, mask)| {
                    // A teacher near the student (a small KL, the cancelling case) or apart,
                    // with masked (-inf) teacher classes, and now and then a masked student
                    // class (only where the teacher is masked too: else the KL is +inf).
                    let mut student = student;
                    let mut teacher: Vec<f64> = student
                        .iter()
                        .zip(&noise)
                        .map(|(&s, &e)| if close { s + 0.05 * e } else { 6.0 * e })
                        .collect();
                    for (i, &m) in mask.iter().enumerate() {
                        if m < 3 && i % classes != 0 {
                            teacher[i] = f64::NEG_INFINITY;
                            if m == 0 {
                                student[i] = f64::NEG_INFINITY;
                            }
                        }
                    }
                    Case {
                        rows,
                        classes,
                        student,
                        teacher,
                        temperature,
                    }
                })
        })
}

/// What the twin says of one row: its loss, its gradient (unscaled), and the size the kernel's
/// rounding errors are relative to: `1 + E_p|t - s|/T + (|mₛ| + |mₜ|)/T` for the loss (module
/// docs of `kl_div_logits`; the last term for the shifts `m·(1/T)`, rounded in f64, and for the
/// twin's own `x/T`); per class, for the gradient, the kernel's documented bound as a multiple
/// of its `u` — `2·(36 + |c|)` relative to `q` and to `p` each (`c` the class's shifted,
/// scaled logit), over `T` — and the twin's own error in `f64` as a multiple of `2^-53`:
/// `4 + |x/T| + |m/T| + 2·|c| + 2·|lse|` relative to each (it scales before it subtracts the
/// max, then subtracts the log-sum-exp, each rounded; the `exp` and the difference), which
/// matters only for f64 inputs.
struct Twin {
    loss: f64,
    grad: Vec<f64>,
    loss_size: f64,
    grad_size: Vec<f64>,
    twin_grad_size: Vec<f64>,
}

fn twin(loss: &Paired, s: &[f64], t: &[f64], temp: f64) -> Twin {
    let max = |v: &[f64]| v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    let (ms, mt) = (max(s), max(t));
    let lse =
        |v: &[f64], m: f64| m / temp + v.iter().map(|x| ((x - m) / temp).exp()).sum::<f64>().ln();
    let (ls, lt) = (lse(s, ms), lse(t, mt));
    let mut spread = 0.0;
    let mut grad_size = Vec::with_capacity(s.len());
    let mut twin_grad_size = Vec::with_capacity(s.len());
    for (&x, &y) in s.iter().zip(t) {
        let (q, p) = ((x / temp - ls).exp(), (y / temp - lt).exp());
        if p > 0.0 {
            spread += p * (y - x).abs() / temp;
        }
        let cs = if q > 0.0 { (x - ms).abs() / temp } else { 0.0 };
        let ct = if p > 0.0 { (y - mt).abs() / temp } else { 0.0 };
        grad_size.push(2.0 * (q * (36.0 + cs) + p * (36.0 + ct)) / temp);
        let twin = |v: f64, m: f64, c: f64, l: f64| {
            4.0 + (v / temp).abs() + (m / temp).abs() + 2.0 * c + 2.0 * l.abs()
        };
        let ts = if q > 0.0 {
            q * twin(x, ms, cs, ls)
        } else {
            0.0
        };
        let tt = if p > 0.0 {
            p * twin(y, mt, ct, lt)
        } else {
            0.0
        };
        twin_grad_size.push((ts + tt) / temp);
    }
    Twin {
        loss: (loss.reference)(s, t, temp),
        grad: (loss.reference_grad)(s, t, temp),
        loss_size: 1.0 + spread + (ms.abs() + mt.abs()) / temp,
        grad_size,
        twin_grad_size,
    }
}

/// The kernel's bound (module docs of `kl_div_logits`): `80·u` of the loss's size (two
/// log-sum-exps of `(BLOCK_VECS/2 + 6)·u` each and the dot product's), the documented bound
/// of a gradient element (with the twin's own error), plus the rounding to the storage type;
/// infinities and NaN must match in kind.
fn within(got: f64, want: f64, bound: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= bound
}

/// The twin's unit roundoff (it computes in `f64`).
const TWIN_U: f64 = f64::EPSILON / 2.0;

fn check<S: Elem>(loss: &Paired, c: &Case) -> Result<(), TestCaseError> {
    let (rows, classes) = (c.rows, c.classes);
    let x: Vec<S> = c.student.iter().map(|&v| S::of(v)).collect();
    let y: Vec<S> = c.teacher.iter().map(|&v| S::of(v)).collect();
    let (xs, ys): (Vec<f64>, Vec<f64>) = (
        x.iter().map(|v| v.wide()).collect(),
        y.iter().map(|v| v.wide()).collect(),
    );
    // The temperature as the kernel gets it, in the compute type; the kernel scales by
    // `1/T` rounded to the compute type, so the twin runs at the temperature that is exactly.
    let temp_c = S::c(c.temperature);
    let one = S::c(1.0);
    let temp = 1.0 / S::cwide(one / temp_c);
    let twins: Vec<Twin> = (0..rows)
        .map(|r| {
            let at = r * classes..(r + 1) * classes;
            twin(loss, &xs[at.clone()], &ys[at], temp)
        })
        .collect();
    let u = S::U;
    let mut each = vec![S::c(f64::NAN); rows];
    loss.each(&x, &y, classes, temp_c, &mut each).unwrap();
    for (r, tw) in twins.iter().enumerate() {
        let got = S::cwide(each[r]);
        let bound = 80.0 * u * tw.loss_size + 4.0 * u * tw.loss.abs();
        prop_assert!(
            within(got, tw.loss, bound),
            "{} {} row {r}: {got:e} vs {:e} (bound {bound:e})",
            loss.id,
            std::any::type_name::<S>(),
            tw.loss
        );
    }
    for (red, scale) in [(Reduction::Mean, 1.0 / rows as f64), (Reduction::Sum, 1.0)] {
        let got = S::cwide(loss.reduce(&x, &y, classes, temp_c, red).unwrap());
        let want: f64 = twins.iter().map(|t| t.loss).sum::<f64>() * scale;
        let size: f64 = twins.iter().map(|t| t.loss_size).sum::<f64>() * scale;
        let bound = 80.0 * u * size + 4.0 * u * want.abs();
        if rows == 0 {
            let empty_ok = if red == Reduction::Mean {
                got.is_nan()
            } else {
                got == 0.0
            };
            prop_assert!(empty_ok, "{:?} of no rows: {}", red, got);
            continue;
        }
        prop_assert!(
            within(got, want, bound),
            "{red:?}: {got:e} vs {want:e} (bound {bound:e})"
        );
        let mut g = vec![S::of(f64::NAN); x.len()];
        let fused = loss.and_grad(&x, &y, classes, temp_c, red, &mut g).unwrap();
        prop_assert_eq!(S::cwide(fused).to_bits(), got.to_bits(), "fused {:?}", red);
        let mut inp = x.clone();
        let fused_in_place = loss
            .and_grad_in_place(&mut inp, &y, classes, temp_c, red)
            .unwrap();
        prop_assert_eq!(S::cwide(fused_in_place).to_bits(), got.to_bits());
        for (i, (a, b)) in g.iter().zip(&inp).enumerate() {
            prop_assert_eq!(
                a.wide().to_bits(),
                b.wide().to_bits(),
                "in place differs at {}",
                i
            );
        }
        for (r, tw) in twins.iter().enumerate() {
            for k in 0..classes {
                let got = g[r * classes + k].wide();
                let want = tw.grad[k] * scale;
                // Exponentials below the normal range are flushed to 0 (less than `MIN_POSITIVE`
                // each), and the storage type's rounding: a unit in the last place, or its
                // smallest subnormal.
                let flushed = 2.0 * S::MIN_POSITIVE * scale / temp;
                let bound = (u * tw.grad_size[k] + TWIN_U * tw.twin_grad_size[k]) * scale
                    + flushed
                    + S::U_STORE * want.abs() * 1.01
                    + S::TINY_STORE;
                prop_assert!(
                    within(got, want, bound),
                    "{red:?} grad[{r}, {k}]: {got:e} vs {want:e} (bound {bound:e})"
                );
            }
        }
    }
    Ok(())
}

fn every_tier<S: Elem>(c: &Case) -> Result<(), TestCaseError> {
    for tier in Tier::available() {
        for loss in registry::PAIRED {
            with_tier(tier, || check::<S>(loss, c)).unwrap()?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn f32_matches_the_twin_on_every_tier(c in case()) {
        every_tier::<f32>(&c)?;
    }

    #[test]
    fn f64_matches_the_twin_on_every_tier(c in case()) {
        every_tier::<f64>(&c)?;
    }

    #[test]
    fn bf16_matches_the_twin_on_every_tier(c in case()) {
        every_tier::<bf16>(&c)?;
    }

    #[test]
    fn f16_matches_the_twin_on_every_tier(c in case()) {
        every_tier::<f16>(&c)?;
    }
}

/// Few long rows take the driver's within-row split (segments merged in the fixed tree):
/// they agree with the twin too, on every tier, with a max that moves between segments.
#[test]
fn split_rows_match_the_twin() {
    let classes = 140_000 + 77;
    let mut state = 3u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5
    };
    let mut student: Vec<f64> = (0..2 * classes).map(|_| 8.0 * next()).collect();
    let teacher: Vec<f64> = (0..2 * classes)
        .map(|i| {
            if i % 9 == 4 {
                f64::NEG_INFINITY
            } else {
                8.0 * next() + (i % classes) as f64 * 1e-4
            }
        })
        .collect();
    // A student max late in the second row's last segment.
    student[2 * classes - 5] = 12.0;
    let c = Case {
        rows: 2,
        classes,
        student,
        teacher,
        temperature: 1.5,
    };
    every_tier::<f32>(&c).unwrap();
    every_tier::<bf16>(&c).unwrap();
}

/// Masks and non-finite rows, as the module docs of `kl_div_logits` state them.
#[test]
fn masks_and_non_finite_rows() {
    let ninf = f64::NEG_INFINITY;
    // (student, teacher, what the row's loss is)
    type Row<'a> = (&'a [f64], &'a [f64], fn(f64) -> bool);
    let rows: [Row<'_>; 6] = [
        // A teacher mask contributes 0, whatever the student holds there.
        (&[0.0, 0.0], &[0.0, ninf], |v| {
            (v - std::f64::consts::LN_2).abs() < 1e-6
        }),
        (&[0.0, ninf], &[0.0, ninf], |v| v.abs() < 1e-6),
        // A student mask under an unmasked teacher class: +inf.
        (&[0.0, ninf], &[0.0, 0.0], |v| v == f64::INFINITY),
        // All masked, +inf or NaN in either: NaN.
        (&[0.0, 0.0], &[ninf, ninf], f64::is_nan),
        (&[ninf, ninf], &[0.0, 0.0], f64::is_nan),
        (&[0.0, f64::NAN], &[0.0, 1.0], f64::is_nan),
    ];
    for tier in Tier::available() {
        with_tier(tier, || {
            for (i, (s, t, ok)) in rows.iter().enumerate() {
                let loss = losskit::kl_div_logits(s, t, 2, 1.0, Reduction::Sum).unwrap();
                assert!(ok(loss), "{tier} row {i}: {loss}");
                let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
                let t32: Vec<f32> = t.iter().map(|&v| v as f32).collect();
                let loss = losskit::kl_div_logits(&s32, &t32, 2, 1.0, Reduction::Sum).unwrap();
                assert!(ok(loss as f64), "{tier} f32 row {i}: {loss}");
            }
            // The gradient of a masked teacher class is q/T exactly, and of a class masked in
            // both 0.
            let mut g = [9.0f32; 3];
            losskit::kl_div_logits_and_grad(
                &[0.0f32, 0.0, f32::NEG_INFINITY],
                &[0.0, f32::NEG_INFINITY, f32::NEG_INFINITY],
                3,
                2.0,
                Reduction::Sum,
                &mut g,
            )
            .unwrap();
            assert_eq!(g, [-0.25, 0.25, 0.0], "{tier}");
        })
        .unwrap();
    }
}

/// Every argument error, named, before any work: the same from every form and storage type.
#[test]
fn errors_name_the_argument() {
    for loss in registry::PAIRED {
        errors::<f32>(loss);
        errors::<f64>(loss);
        errors::<bf16>(loss);
        errors::<f16>(loss);
    }
}

fn errors<S: Elem>(loss: &Paired) {
    let x = vec![S::of(0.5); 6];
    let p = S::c(1.0);
    let mut out = vec![S::c(0.0); 2];
    let mut g = vec![S::of(0.0); 6];
    let all = |x: &[S],
               y: &[S],
               c: usize,
               p: S::Compute,
               out: &mut [S::Compute],
               g: &mut [S]|
     -> Vec<Result<(), LossError>> {
        let mut inp = x.to_vec();
        vec![
            loss.reduce(x, y, c, p, Reduction::Mean).map(|_| ()),
            loss.each(x, y, c, p, out),
            loss.and_grad(x, y, c, p, Reduction::Sum, g).map(|_| ()),
            loss.and_grad_in_place(&mut inp, y, c, p, Reduction::Mean)
                .map(|_| ()),
        ]
    };
    for r in all(&x, &x, 0, p, &mut out, &mut g) {
        assert_eq!(r, Err(LossError::ZeroClasses));
    }
    for r in all(&x, &x, 4, p, &mut out, &mut g) {
        assert_eq!(
            r,
            Err(LossError::NotMultipleOfClasses { len: 6, classes: 4 })
        );
    }
    let mismatch = LossError::LengthMismatch {
        name: "teacher",
        len: 3,
        expected_name: "student",
        expected: 6,
    };
    for r in all(&x, &x[..3], 3, p, &mut out, &mut g) {
        assert_eq!(r, Err(mismatch.clone()));
    }
    for &(v, shown) in loss.param.rejected {
        let want = loss.param.error(v).unwrap();
        assert_eq!(
            want.to_string(),
            format!(
                "{} is {shown}; it must be {}",
                loss.param.name, loss.param.requirement
            )
        );
        for r in all(&x, &x, 3, S::c(v), &mut out, &mut g) {
            let got = r.unwrap_err();
            // The value is reported in the compute type, widened.
            assert!(
                matches!(got, LossError::InvalidParameter { name, requirement, .. } if name == loss.param.name && requirement == loss.param.requirement),
                "{got:?}"
            );
        }
    }
    for &v in loss.param.accepted {
        for r in all(&x, &x, 3, S::c(v), &mut out, &mut g) {
            assert_eq!(r, Ok(()), "{} accepts {v}", loss.param.name);
        }
    }
    assert_eq!(
        loss.each(&x, &x, 3, p, &mut out[..1]),
        Err(LossError::LengthMismatch {
            name: "out",
            len: 1,
            expected_name: "rows of student",
            expected: 2
        })
    );
    assert_eq!(
        loss.and_grad(&x, &x, 3, p, Reduction::Mean, &mut g[..5])
            .map(|_| ()),
        Err(LossError::LengthMismatch {
            name: "dstudent",
            len: 5,
            expected_name: "student",
            expected: 6
        })
    );
}
