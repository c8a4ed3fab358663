//! Every case of the PyTorch conformance vectors (`tests/data/golden.jsonl.gz`), in both dtypes,
//! for mean, sum and each. A case whose loss this test does not know fails it.

use crate::common;

use common::{check, golden_cases, nums, to, Case, CeInputs, Elem};
use losskit::{LossError, Reduction};

use crate::registry;

/// Runs one case's loss in element type `T`: (mean, sum, each).
fn run<T: Elem>(case: &Case) -> Result<(T, T, Vec<T>), String> {
    let err = |e: LossError| format!("{}: error {e}", case.id);
    if let Some(loss) = registry::find_rows(&case.loss) {
        let ce_case = CeInputs::<T>::of(case);
        let (logits, classes) = (&ce_case.logits, ce_case.classes);
        let targets = ce_case.targets(loss.kind);
        let options = ce_case.options();
        let mut each = vec![T::of(0.0); logits.len() / classes];
        let mean = loss
            .reduce(logits, classes, targets, options, Reduction::Mean)
            .map_err(err)?;
        let sum = loss
            .reduce(logits, classes, targets, options, Reduction::Sum)
            .map_err(err)?;
        loss.each(logits, classes, targets, options, &mut each)
            .map_err(err)?;
        if ce_case.plain() {
            // The plain function must agree with the builder's defaults bit for bit.
            let plain = loss
                .plain(logits, classes, targets, Reduction::Mean)
                .map_err(err)?;
            assert!(
                plain.f64().to_bits() == mean.f64().to_bits(),
                "{}: {} != builder",
                case.id,
                case.loss
            );
        }
        return Ok((mean, sum, each));
    }
    let (loss, setting) = common::pointwise_case(case);
    let p = setting.map(T::of);
    let input: Vec<T> = to(&nums(&case.inputs["input"]));
    let target: Vec<T> = to(&nums(&case.inputs["target"]));
    let mut each = vec![T::of(0.0); input.len()];
    let r: Result<_, LossError> = (|| {
        Ok((
            loss.reduce(&input, &target, p, Reduction::Mean)?,
            loss.reduce(&input, &target, p, Reduction::Sum)?,
            loss.each(&input, &target, p, &mut each)?,
        ))
    })();
    let (mean, sum, ()) = r.map_err(err)?;
    Ok((mean, sum, each))
}

fn check_case<T: Elem>(case: &Case, failures: &mut Vec<String>) {
    let (mean, sum, each) = match run::<T>(case) {
        Ok(r) => r,
        Err(e) => return failures.push(e),
    };
    let e = &case.expected;
    check(
        failures,
        &case.id,
        "mean",
        mean.f64(),
        common::num(&e["mean"]),
        &case.dtype,
    );
    check(
        failures,
        &case.id,
        "sum",
        sum.f64(),
        common::num(&e["sum"]),
        &case.dtype,
    );
    let want = nums(&e["none"]);
    if want.len() != each.len() {
        return failures.push(format!(
            "{}: each has {} values, expected {}",
            case.id,
            each.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in each.iter().zip(&want).enumerate() {
        check(
            failures,
            &case.id,
            &format!("each[{i}]"),
            g.f64(),
            *w,
            &case.dtype,
        );
    }
}

/// Runs every case of the given losses on every tier; returns how many were checked.
fn run_cases(losses: &[&str], expected_count: usize) {
    let cases: Vec<Case> = golden_cases()
        .into_iter()
        .filter(|c| losses.contains(&c.loss.as_str()))
        .collect();
    assert_eq!(
        cases.len(),
        expected_count,
        "cases of {losses:?} in the vendored vectors"
    );
    for tier in losskit::Tier::available() {
        let mut failures = Vec::new();
        losskit::with_tier(tier, || {
            for case in &cases {
                match case.dtype.as_str() {
                    "f32" => check_case::<f32>(case, &mut failures),
                    "f64" => check_case::<f64>(case, &mut failures),
                    other => panic!("{}: unknown dtype {other}", case.id),
                }
            }
        })
        .unwrap();
        println!(
            "tier {tier}: {} cases of {losses:?}, {} disagreements",
            cases.len(),
            failures.len()
        );
        assert!(failures.is_empty(), "tier {tier}:\n{}", failures.join("\n"));
    }
}

/// The losses of the three tests below, which between them run every case.
const REGRESSION: [&str; 4] = ["mse", "l1", "huber", "smooth_l1"];
const BINARY: [&str; 2] = ["bce", "bce_with_logits"];
const CROSS_ENTROPY: [&str; 2] = ["cross_entropy", "cross_entropy_probs"];

#[test]
fn every_case_names_a_known_loss() {
    let cases = golden_cases();
    assert_eq!(cases.len(), 720);
    for case in &cases {
        let loss = case.loss.as_str();
        assert!(
            registry::find_pointwise(loss).is_some() || registry::find_rows(loss).is_some(),
            "{}: unknown loss {:?}",
            case.id,
            case.loss
        );
        // A loss the registry knows but no test below runs would be skipped silently.
        assert!(
            REGRESSION.contains(&loss) || BINARY.contains(&loss) || CROSS_ENTROPY.contains(&loss),
            "{}: no test of this file runs loss {:?}",
            case.id,
            case.loss
        );
        assert!(
            case.dtype == "f32" || case.dtype == "f64",
            "{}: unknown dtype {:?}",
            case.id,
            case.dtype
        );
    }
}

#[test]
fn regression_losses_match_pytorch_on_every_tier() {
    run_cases(&REGRESSION, 416);
}

#[test]
fn binary_cross_entropy_matches_pytorch_on_every_tier() {
    run_cases(&BINARY, 160);
}

#[test]
fn cross_entropy_matches_pytorch_on_every_tier() {
    run_cases(&CROSS_ENTROPY, 144);
}
