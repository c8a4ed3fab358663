//! `bce_with_logits` with a per-class `pos_weight` ([`BceWithLogitsPerClass`]), in every
//! storage type on every tier: each element's loss and gradient bit for bit as the scalar
//! `pos_weight` path (`BceWithLogits::new().pos_weight(pw[c])`, itself tested against the
//! scalar twins) gives for the elements of class `c`; the sums within the driver's bound of
//! those elements' sum; the fused mean the mean; the x86 tiers and thread counts bit-identical;
//! and every argument error before any write.

use crate::common::{self, AnyStorage, Elem};
use losskit::{
    bf16, f16, with_tier, BceWithLogits, BceWithLogitsPerClass, LossError, Reduction, Tier,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Data {
    classes: usize,
    x: Vec<f64>,
    t: Vec<f64>,
    w: Vec<f64>,
    pw: Vec<f64>,
    weighted: bool,
}

fn data() -> impl Strategy<Value = Data> {
    let classes = prop_oneof![
        4 => 1usize..=40,
        1 => prop_oneof![Just(64usize), Just(100), Just(257), Just(1000)],
    ];
    (classes, 0usize..30, any::<bool>()).prop_flat_map(|(classes, rows, weighted)| {
        let n = rows * classes;
        let logit = prop_oneof![8 => -12.0..12.0f64, 1 => -200.0..200.0f64];
        let target = prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64];
        (
            proptest::collection::vec(logit, n),
            proptest::collection::vec(target, n),
            proptest::collection::vec(0.0..3.0f64, n),
            proptest::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0..8.0f64], classes),
        )
            .prop_map(move |(x, t, w, pw)| Data {
                classes,
                x,
                t,
                w,
                pw,
                weighted,
            })
    })
}

/// Every output of one call on the active tier: mean, sum, each, the fused mean and its
/// gradient, the fused sum's gradient; as bits (NaN as one value).
fn outputs<S: AnyStorage>(d: &Data) -> (Vec<u64>, Vec<S::Compute>, Vec<S>) {
    let [x, t, w, pw]: [Vec<S>; 4] =
        [&d.x, &d.t, &d.w, &d.pw].map(|v| v.iter().map(|&v| S::of(v)).collect());
    let mut loss = BceWithLogitsPerClass::new(&pw);
    if d.weighted {
        loss = loss.weight(&w);
    }
    let n = x.len();
    let mut each = vec![S::Compute::of(0.5); n];
    loss.each(&x, &t, &mut each).unwrap();
    let mut grad_mean = vec![S::of(0.5); n];
    let fused = loss
        .loss_and_grad(&x, &t, Reduction::Mean, &mut grad_mean)
        .unwrap();
    let mut grad_sum = vec![S::of(0.5); n];
    loss.loss_and_grad(&x, &t, Reduction::Sum, &mut grad_sum)
        .unwrap();
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let mut out = vec![
        bits(loss.loss(&x, &t, Reduction::Mean).unwrap().f64()),
        bits(loss.loss(&x, &t, Reduction::Sum).unwrap().f64()),
        bits(fused.f64()),
    ];
    out.extend(each.iter().map(|e| bits(e.f64())));
    out.extend(grad_mean.iter().map(|g| bits(g.wide())));
    (out, each, grad_sum)
}

fn check<S: AnyStorage>(d: &Data) -> Result<(), TestCaseError> {
    let unit = if S::Compute::of(1.0).bits() == 1f64.to_bits() {
        f64::EPSILON / 2.0
    } else {
        f32::EPSILON as f64 / 2.0
    };
    let c = d.classes;
    let n = d.x.len();
    let [x, t, w, pw]: [Vec<S>; 4] =
        [&d.x, &d.t, &d.w, &d.pw].map(|v| v.iter().map(|&v| S::of(v)).collect());
    let mut x86 = Vec::new();
    for tier in Tier::available() {
        let (bits, each, grad_sum) = with_tier(tier, || outputs::<S>(d)).unwrap();
        // Column by column through the scalar `pos_weight` path on the same tier.
        for (class, &class_pw) in pw.iter().enumerate() {
            let col = |v: &[S]| v.iter().skip(class).step_by(c).copied().collect::<Vec<S>>();
            let (xc, tc, wc) = (col(&x), col(&t), col(&w));
            let scalar = BceWithLogits::new().pos_weight(class_pw.to_compute_value());
            let rows = xc.len();
            let mut want = vec![S::Compute::of(0.5); rows];
            let mut want_grad = vec![S::of(0.5); rows];
            with_tier(tier, || {
                if d.weighted {
                    scalar.each_weighted(&xc, &tc, &wc, &mut want).unwrap();
                    scalar
                        .loss_and_grad_weighted(&xc, &tc, &wc, Reduction::Sum, &mut want_grad)
                        .unwrap();
                } else {
                    scalar.each(&xc, &tc, &mut want).unwrap();
                    scalar
                        .loss_and_grad(&xc, &tc, Reduction::Sum, &mut want_grad)
                        .unwrap();
                }
            })
            .unwrap();
            for r in 0..rows {
                let i = r * c + class;
                let (g, e) = (each[i].f64(), want[r].f64());
                prop_assert!(
                    g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                    "each[{i}] on {tier}: {g:e}, the scalar pos_weight path {e:e}"
                );
                let (g, e) = (grad_sum[i].wide(), want_grad[r].wide());
                prop_assert!(
                    g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                    "grad[{i}] on {tier}: {g:e}, the scalar pos_weight path {e:e}"
                );
            }
        }
        // The sums against the f64 sum of the (checked) elements: the driver's bound.
        let exact: f64 = each.iter().map(|e| e.f64()).sum();
        let magnitude: f64 = each.iter().map(|e| e.f64().abs()).sum();
        let (mean, sum, fused) = (
            f64::from_bits(bits[0]),
            f64::from_bits(bits[1]),
            f64::from_bits(bits[2]),
        );
        let bound = (34.0 * unit + 4.0 * n as f64 * f64::EPSILON) * magnitude;
        if exact.is_finite() {
            let want = S::Compute::of(exact).f64();
            prop_assert!(
                (sum - want).abs() <= bound + 2.0 * unit * want.abs(),
                "sum on {tier}: {sum:e}, elements' sum {want:e}"
            );
            if n > 0 {
                let want = S::Compute::of(exact / n as f64).f64();
                prop_assert!(
                    (mean - want).abs() <= bound / n as f64 + 2.0 * unit * want.abs(),
                    "mean on {tier}: {mean:e}, elements' mean {want:e}"
                );
            }
        }
        prop_assert_eq!(
            bits[0],
            bits[2],
            "the fused mean {:e} is not the mean",
            fused
        );
        if matches!(tier, Tier::Avx2 | Tier::Avx512) {
            x86.push((tier, bits));
        }
    }
    if let [(a, first), (b, second)] = &x86[..] {
        prop_assert!(first == second, "{a} and {b} differ");
    }
    // Thread counts: the same bits on one and two threads.
    let tier = *Tier::available().last().unwrap();
    let one = common::on_pool(1, tier, || outputs::<S>(d).0);
    let two = common::on_pool(2, tier, || outputs::<S>(d).0);
    prop_assert!(one == two, "1 and 2 threads differ on {tier}");
    Ok(())
}

/// The value of a storage element in its compute type (exact).
trait ToComputeValue: AnyStorage {
    fn to_compute_value(self) -> Self::Compute {
        Self::Compute::of(self.wide())
    }
}
impl<S: AnyStorage> ToComputeValue for S {}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn per_class_pos_weight_is_the_scalar_path_per_class(d in data()) {
        check::<f32>(&d)?;
        check::<f64>(&d)?;
        check::<bf16>(&d)?;
        check::<f16>(&d)?;
    }
}

/// More rows than one leaf of the flat driver (65536 elements), so the per-class stream is
/// cut inside a row: the leaves' class offsets must follow.
#[test]
fn leaves_that_start_inside_a_row_keep_the_classes() {
    let mut next = common::splitmix(17);
    let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
    for classes in [3usize, 7, 1000] {
        let rows = 200_000 / classes;
        let d = Data {
            classes,
            x: (0..rows * classes).map(|_| 16.0 * unit() - 8.0).collect(),
            t: (0..rows * classes).map(|_| unit().round()).collect(),
            w: (0..rows * classes).map(|_| 2.0 * unit()).collect(),
            pw: (0..classes).map(|_| 6.0 * unit()).collect(),
            weighted: classes != 7,
        };
        check::<f32>(&d).unwrap();
    }
}

#[test]
fn arguments_are_checked_before_any_write() {
    let x = [0.0f32; 6];
    let pw = [1.0f32, 2.0, 3.0];
    let mut out = [7.0f32; 6];
    let mut grad = [7.0f32; 6];
    type Case<'a> = (
        BceWithLogitsPerClass<'a, f32>,
        &'a [f32],
        &'a [f32],
        LossError,
    );
    let cases: [Case<'_>; 6] = [
        (
            BceWithLogitsPerClass::new(&[]),
            &x,
            &x,
            LossError::ZeroClasses,
        ),
        (
            BceWithLogitsPerClass::new(&pw[..2]),
            &x[..5],
            &x[..5],
            LossError::NotMultipleOfClasses { len: 5, classes: 2 },
        ),
        (
            BceWithLogitsPerClass::new(&pw),
            &x,
            &x[..3],
            common::length_mismatch("target", 3, "input", 6),
        ),
        (
            BceWithLogitsPerClass::new(&pw).weight(&x[..3]),
            &x,
            &x,
            common::length_mismatch("weight", 3, "input", 6),
        ),
        (
            BceWithLogitsPerClass::new(&[1.0, -0.5, 1.0]),
            &x,
            &x,
            LossError::InvalidParameter {
                name: "pos_weight",
                value: -0.5,
                requirement: ">= 0",
            },
        ),
        (
            BceWithLogitsPerClass::new(&[1.0, f32::NAN, 1.0]),
            &x,
            &x,
            LossError::InvalidParameter {
                name: "pos_weight",
                value: f64::NAN,
                requirement: ">= 0",
            },
        ),
    ];
    for (loss, input, target, want) in &cases {
        let got = loss.loss(input, target, Reduction::Mean).unwrap_err();
        assert!(common::same_error(&got, want), "{got} vs {want}");
        let got = loss
            .each(input, target, &mut out[..input.len()])
            .unwrap_err();
        assert!(common::same_error(&got, want), "{got} vs {want}");
        let got = loss
            .loss_and_grad(input, target, Reduction::Sum, &mut grad[..input.len()])
            .unwrap_err();
        assert!(common::same_error(&got, want), "{got} vs {want}");
        assert!(out.iter().chain(&grad).all(|&v| v == 7.0), "an error wrote");
    }
    let loss = BceWithLogitsPerClass::new(&pw);
    let want = common::length_mismatch("out", 5, "input", 6);
    assert_eq!(loss.each(&x, &x, &mut out[..5]).unwrap_err(), want);
    let want = common::length_mismatch("grad", 5, "input", 6);
    let got = loss.loss_and_grad(&x, &x, Reduction::Mean, &mut grad[..5]);
    assert_eq!(got.unwrap_err(), want);
    assert!(out.iter().chain(&grad).all(|&v| v == 7.0), "an error wrote");
}
