//! Every `grad_mean` of the PyTorch conformance vectors, on every tier, for both dtypes; the
//! in-place cross-entropy gradient is bit-identical to the out-of-place one.

use crate::common;

use common::{check, golden_cases, nums, to, Case, CeInputs, Elem};
use losskit::{Bce, BceWithLogits, Reduction};

/// d(mean loss)/d(first input) for one case, in element type `T`.
fn grad_of<T: Elem>(case: &Case) -> Vec<T> {
    let p = &case.params;
    let param = |name: &str| p.get(name).and_then(|v| v.as_f64());
    let mean = Reduction::Mean;
    if case.loss.starts_with("cross_entropy") {
        let ce_case = CeInputs::<T>::of(case);
        let (ce, logits, classes) = (ce_case.builder(), &ce_case.logits, ce_case.classes);
        let mut grad = vec![T::of(0.0); logits.len()];
        if case.loss == "cross_entropy" {
            let labels = &ce_case.labels;
            let loss = ce
                .loss_and_grad(logits, classes, labels, mean, &mut grad)
                .unwrap();
            let mut in_place = logits.clone();
            let loss_in_place = ce
                .loss_and_grad_in_place(&mut in_place, classes, labels, mean)
                .unwrap();
            assert!(
                loss.f64().to_bits() == loss_in_place.f64().to_bits(),
                "{}: in-place loss differs",
                case.id
            );
            let same = grad
                .iter()
                .zip(&in_place)
                .all(|(a, b)| a.f64().to_bits() == b.f64().to_bits());
            assert!(
                same,
                "{}: in-place gradient differs from out-of-place",
                case.id
            );
            let plain = ce.loss(logits, classes, labels, mean).unwrap();
            assert!(
                plain.f64().to_bits() == loss.f64().to_bits()
                    || (plain.f64() - loss.f64()).abs() <= 1e-6 * loss.f64().abs(),
                "{}: loss_and_grad's loss {loss:?} vs loss {plain:?}",
                case.id
            );
        } else {
            ce.loss_and_grad_probs(logits, classes, &ce_case.probs, mean, &mut grad)
                .unwrap();
        }
        return grad;
    }
    let input: Vec<T> = to(&nums(&case.inputs["input"]));
    let target: Vec<T> = to(&nums(&case.inputs["target"]));
    let mut grad = vec![T::of(0.0); input.len()];
    match case.loss.as_str() {
        "mse" => losskit::mse_and_grad(&input, &target, mean, &mut grad),
        "l1" => losskit::l1_and_grad(&input, &target, mean, &mut grad),
        "huber" => losskit::huber_and_grad(
            &input,
            &target,
            T::of(param("delta").unwrap()),
            mean,
            &mut grad,
        ),
        "smooth_l1" => losskit::smooth_l1_and_grad(
            &input,
            &target,
            T::of(param("beta").unwrap()),
            mean,
            &mut grad,
        ),
        "bce" => Bce::new().loss_and_grad(&input, &target, mean, &mut grad),
        "bce_with_logits" => {
            let mut b = BceWithLogits::new();
            if let Some(pw) = param("pos_weight") {
                b = b.pos_weight(T::of(pw));
            }
            b.loss_and_grad(&input, &target, mean, &mut grad)
        }
        other => panic!("{}: unknown loss {other:?}", case.id),
    }
    .unwrap();
    grad
}

fn check_grad<T: Elem>(case: &Case, want: &[f64], failures: &mut Vec<String>) {
    let got = grad_of::<T>(case);
    if got.len() != want.len() {
        return failures.push(format!(
            "{}: {} gradient values, expected {}",
            case.id,
            got.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        check(
            failures,
            &case.id,
            &format!("grad[{i}]"),
            g.f64(),
            *w,
            &case.dtype,
        );
    }
}

#[test]
fn every_grad_mean_matches_pytorch_on_every_tier() {
    let (cases, without): (Vec<Case>, Vec<Case>) = golden_cases()
        .into_iter()
        .partition(|c| c.grad_mean.is_some());
    // The vectors give no gradient for six cases: all rows ignored (NaN mean), probabilities of
    // exactly 0 or 1 in bce, and two 2049-class rows. They are named so that none slips out.
    assert_eq!(cases.len(), 714, "cases with a grad_mean");
    let mut ids: Vec<&str> = without.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "bce-f32-286",
            "bce-f64-574",
            "cross_entropy-f32-591",
            "cross_entropy-f32-643",
            "cross_entropy-f32-645",
            "cross_entropy-f64-652"
        ]
    );
    for tier in losskit::Tier::available() {
        let mut failures = Vec::new();
        losskit::with_tier(tier, || {
            for case in &cases {
                let want = case.grad_mean.as_deref().unwrap();
                match case.dtype.as_str() {
                    "f32" => check_grad::<f32>(case, want, &mut failures),
                    "f64" => check_grad::<f64>(case, want, &mut failures),
                    other => panic!("{}: unknown dtype {other}", case.id),
                }
            }
        })
        .unwrap();
        println!(
            "tier {tier}: {} grad_mean cases, {} disagreements",
            cases.len(),
            failures.len()
        );
        assert!(failures.is_empty(), "tier {tier}:\n{}", failures.join("\n"));
    }
}
