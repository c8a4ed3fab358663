//! Every `grad_mean` of the PyTorch conformance vectors, on every tier, for both dtypes; the
//! in-place cross-entropy gradient is bit-identical to the out-of-place one.

use crate::common;

use common::{check, golden_cases, nums, to, Case, CeInputs, Elem};
use losskit::Reduction;

use crate::registry;

/// d(mean loss)/d(first input) for one case of a registry loss, in element type `T`.
fn grad_of<T: Elem>(case: &Case) -> Vec<T> {
    let mean = Reduction::Mean;
    if let Some(loss) = registry::find_rows(&case.loss) {
        let ce_case = CeInputs::<T>::of(case);
        let (logits, classes) = (&ce_case.logits, ce_case.classes);
        let targets = ce_case.targets(loss.kind);
        let options = ce_case.options();
        let mut grad = vec![T::of(0.0); logits.len()];
        let fused = loss
            .and_grad(logits, classes, targets, options, mean, &mut grad)
            .unwrap();
        let mut in_place = logits.clone();
        if let Some(in_place_loss) =
            loss.and_grad_in_place(&mut in_place, classes, targets, options, mean)
        {
            let in_place_loss = in_place_loss.unwrap();
            assert!(
                fused.f64().to_bits() == in_place_loss.f64().to_bits(),
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
        }
        let plain = loss
            .reduce(logits, classes, targets, options, mean)
            .unwrap();
        assert!(
            plain.f64().to_bits() == fused.f64().to_bits()
                || (plain.f64() - fused.f64()).abs() <= 1e-6 * fused.f64().abs(),
            "{}: loss_and_grad's loss {fused:?} vs loss {plain:?}",
            case.id
        );
        return grad;
    }
    let (loss, setting) = common::pointwise_case(case);
    let input: Vec<T> = to(&nums(&case.inputs["input"]));
    let target: Vec<T> = to(&nums(&case.inputs["target"]));
    let mut grad = vec![T::of(0.0); input.len()];
    loss.and_grad(&input, &target, setting.map(T::of), mean, &mut grad)
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
