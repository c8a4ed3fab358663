//! Every case of the PyTorch conformance vectors (`tests/data/golden.jsonl.gz`), in both dtypes,
//! for mean, sum and each. A case whose loss this test does not know fails it.

mod common;

use common::{check, golden_cases, nums, to, Case, Elem};
use losskit::{LossError, Reduction};

/// Runs one case's loss in element type `T`: (mean, sum, each).
fn run<T: Elem>(case: &Case) -> Result<(T, T, Vec<T>), String> {
    let p = &case.params;
    let input: Vec<T> = to(&nums(&case.inputs["input"]));
    let target: Vec<T> = to(&nums(&case.inputs["target"]));
    let mut each = vec![T::of(0.0); input.len()];
    let r: Result<_, LossError> = (|| match case.loss.as_str() {
        "mse" => Ok((
            losskit::mse(&input, &target, Reduction::Mean)?,
            losskit::mse(&input, &target, Reduction::Sum)?,
            losskit::mse_each(&input, &target, &mut each)?,
        )),
        "l1" => Ok((
            losskit::l1(&input, &target, Reduction::Mean)?,
            losskit::l1(&input, &target, Reduction::Sum)?,
            losskit::l1_each(&input, &target, &mut each)?,
        )),
        "huber" => {
            let delta = T::of(p["delta"].as_f64().unwrap());
            Ok((
                losskit::huber(&input, &target, delta, Reduction::Mean)?,
                losskit::huber(&input, &target, delta, Reduction::Sum)?,
                losskit::huber_each(&input, &target, delta, &mut each)?,
            ))
        }
        "smooth_l1" => {
            let beta = T::of(p["beta"].as_f64().unwrap());
            Ok((
                losskit::smooth_l1(&input, &target, beta, Reduction::Mean)?,
                losskit::smooth_l1(&input, &target, beta, Reduction::Sum)?,
                losskit::smooth_l1_each(&input, &target, beta, &mut each)?,
            ))
        }
        other => panic!("{}: unknown loss {other:?}", case.id),
    })();
    let (mean, sum, ()) = r.map_err(|e| format!("{}: error {e}", case.id))?;
    Ok((mean, sum, each))
}

fn check_case<T: Elem>(case: &Case, failures: &mut Vec<String>) {
    let (mean, sum, each) = match run::<T>(case) {
        Ok(r) => r,
        Err(e) => return failures.push(e),
    };
    let e = &case.expected;
    check(failures, &case.id, "mean", mean.f64(), common::num(&e["mean"]), &case.dtype);
    check(failures, &case.id, "sum", sum.f64(), common::num(&e["sum"]), &case.dtype);
    let want = nums(&e["none"]);
    if want.len() != each.len() {
        return failures.push(format!("{}: each has {} values, expected {}", case.id, each.len(), want.len()));
    }
    for (i, (g, w)) in each.iter().zip(&want).enumerate() {
        check(failures, &case.id, &format!("each[{i}]"), g.f64(), *w, &case.dtype);
    }
}

#[test]
fn regression_losses_match_pytorch_on_every_tier() {
    let cases: Vec<Case> = golden_cases()
        .into_iter()
        .filter(|c| matches!(c.loss.as_str(), "mse" | "l1" | "huber" | "smooth_l1"))
        .collect();
    assert_eq!(cases.len(), 416, "regression cases in the vendored vectors");
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
        println!("tier {tier}: {} regression cases, {} disagreements", cases.len(), failures.len());
        assert!(failures.is_empty(), "tier {tier}:\n{}", failures.join("\n"));
    }
}
