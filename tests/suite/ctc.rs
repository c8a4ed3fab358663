//! ctc: the kernels against the scalar f64 twin (`reference::ctc`) on every tier, identical
//! bits for 1, 2 and 3 threads, and every argument error.

use proptest::prelude::*;

use crate::common;

use losskit::{reference, Ctc, LossError, Reduction, Tier};

/// A ctc problem: `[T, N, C]` log-probabilities (rows of a log_softmax), the targets and
/// lengths, and the options.
#[derive(Clone, Debug)]
struct Problem {
    shape: [usize; 3],
    lp: Vec<f64>,
    targets: Vec<usize>,
    input_lengths: Vec<usize>,
    target_lengths: Vec<usize>,
    blank: usize,
}

/// A random problem from `seed`: logits of spread `spread` (large: peaky, as a trained
/// model), target lengths up to `max_target` (some impossible for their input length).
fn problem(seed: u64, [t, n, c]: [usize; 3], max_target: usize, spread: f64) -> Problem {
    let mut next = common::splitmix(seed);
    let mut unit = move || (next() >> 11) as f64 / (1u64 << 53) as f64;
    let mut lp = Vec::with_capacity(t * n * c);
    for _ in 0..t * n {
        let row: Vec<f64> = (0..c).map(|_| (unit() * 2.0 - 1.0) * spread).collect();
        let m = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        lp.extend(row.iter().map(|x| x - lse));
    }
    let blank = (unit() * c as f64) as usize % c;
    let input_lengths: Vec<usize> = (0..n)
        .map(|_| ((unit() * (t + 1) as f64) as usize).min(t))
        .collect();
    let target_lengths: Vec<usize> = (0..n)
        .map(|_| (unit() * (max_target + 1) as f64) as usize % (max_target + 1))
        .collect();
    let total = target_lengths.iter().sum();
    let targets = (0..total)
        .map(|_| {
            // A label other than the blank; repeats are frequent with few classes.
            let l = (unit() * (c - 1) as f64) as usize % (c - 1);
            if l >= blank {
                l + 1
            } else {
                l
            }
        })
        .collect();
    Problem {
        shape: [t, n, c],
        lp,
        targets,
        input_lengths,
        target_lengths,
        blank,
    }
}

/// What a `T`-typed ctc call returns: per sample, mean, sum, the Mean gradient.
type Run = (Vec<f64>, f64, f64, Vec<f64>);

fn run<T: common::Elem + losskit::Storage<Compute = T>>(p: &Problem, zero_inf: bool) -> Run {
    let lp: Vec<T> = p.lp.iter().map(|&x| T::of(x)).collect();
    let c = Ctc::new().blank(p.blank).zero_infinity(zero_inf);
    let args = (&p.targets, &p.input_lengths, &p.target_lengths);
    let mut each = vec![T::of(0.0); p.shape[1]];
    c.each(&lp, p.shape, args.0, args.1, args.2, &mut each)
        .unwrap();
    let mean = c.loss(&lp, p.shape, args.0, args.1, args.2, Reduction::Mean);
    let sum = c.loss(&lp, p.shape, args.0, args.1, args.2, Reduction::Sum);
    let mut grad = vec![T::of(f64::NAN); lp.len()];
    let fused = c.loss_and_grad(
        &lp,
        p.shape,
        args.0,
        args.1,
        args.2,
        Reduction::Mean,
        &mut grad,
    );
    let mean = mean.unwrap().f64();
    assert_eq!(fused.unwrap().f64().to_bits(), mean.to_bits(), "fused mean");
    (
        each.iter().map(|x| x.f64()).collect(),
        mean,
        sum.unwrap().f64(),
        grad.iter().map(|g| g.f64()).collect(),
    )
}

/// Whether `got` is within `tol` of `want` (equal infinities, both NaN).
fn close(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() {
        got.is_nan()
    } else if want.is_infinite() {
        got == want
    } else {
        (got - want).abs() <= tol
    }
}

/// The kernels of `T` (unit roundoff `u`) against the reference: each sample's loss within
/// `2·(T+1)·u·(3 + |loss|)` (the module's bound, twice), the mean and sum with their `f64`
/// reductions, and each gradient element within `w·8·(T+1)·u·(3 + |loss|) + 4u` (a posterior
/// carries the absolute error of α + β + loss as a relative one; `exp(lp)` adds an ulp).
fn check<T: common::Elem + losskit::Storage<Compute = T>>(
    p: &Problem,
    zero_inf: bool,
    u: f64,
) -> Result<(), TestCaseError> {
    let [t, n, c] = p.shape;
    let (nll, grad) = reference::ctc(
        &p.lp.iter().map(|&x| T::of(x)).collect::<Vec<T>>(),
        p.shape,
        &p.targets,
        &p.input_lengths,
        &p.target_lengths,
        p.blank,
    );
    let (each, mean, sum, g) = run::<T>(p, zero_inf);
    let bound =
        |l: f64| 2.0 * (t + 1) as f64 * u * (3.0 + if l.is_finite() { l.abs() } else { 0.0 });
    let fixed: Vec<f64> = nll
        .iter()
        .map(|&l| {
            if zero_inf && l == f64::INFINITY {
                0.0
            } else {
                l
            }
        })
        .collect();
    for i in 0..n {
        prop_assert!(
            close(each[i], fixed[i], bound(nll[i])),
            "sample {i}: {} vs {}",
            each[i],
            fixed[i]
        );
    }
    let total_bound: f64 = nll.iter().map(|&l| bound(l)).sum::<f64>() + 1e-300;
    let want_sum: f64 = fixed.iter().sum();
    prop_assert!(
        close(sum, want_sum, total_bound + 4.0 * u * want_sum.abs()),
        "sum {sum} vs {want_sum}"
    );
    let want_mean = fixed
        .iter()
        .zip(&p.target_lengths)
        .map(|(l, &len)| l / len.max(1) as f64)
        .sum::<f64>()
        / n as f64;
    prop_assert!(
        close(mean, want_mean, total_bound + 4.0 * u * want_mean.abs())
            || (n == 0 && mean.is_nan()),
        "mean {mean} vs {want_mean}"
    );
    for (i, (&got, &want)) in g.iter().zip(&grad).enumerate() {
        let b = (i / c) % n;
        let w = 1.0 / n as f64 / p.target_lengths[b].max(1) as f64;
        let (want, tol) = if zero_inf && nll[b] == f64::INFINITY {
            (0.0, 0.0)
        } else {
            (want * w, w * (4.0 * bound(nll[b]) + 4.0 * u))
        };
        prop_assert!(
            close(got, want, tol),
            "grad[{i}] (t {}, n {b}): {got:e} vs {want:e}",
            i / (n * c)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn ctc_matches_the_scalar_reference_on_every_tier(
        seed in any::<u64>(),
        t in 0usize..40,
        n in 0usize..5,
        c in 2usize..12,
        max_target in 0usize..14,
        spread in prop_oneof![Just(1.0f64), Just(5.0), Just(40.0)],
        zero_inf in any::<bool>(),
    ) {
        let p = problem(seed, [t, n, c], max_target, spread);
        for tier in Tier::available() {
            losskit::with_tier(tier, || -> Result<(), TestCaseError> {
                check::<f64>(&p, zero_inf, f64::EPSILON / 2.0)?;
                check::<f32>(&p, zero_inf, f32::EPSILON as f64 / 2.0)
            }).unwrap()?;
        }
    }
}

#[test]
fn long_peaky_sequences_match_the_reference_on_every_tier() {
    // Trained-model-like posteriors (logit spread 60: most classes e^-60 and below) over 400
    // frames, where a linear-space recursion would underflow.
    let p = problem(7, [400, 3, 30], 120, 60.0);
    for tier in Tier::available() {
        losskit::with_tier(tier, || {
            check::<f64>(&p, false, f64::EPSILON / 2.0).unwrap();
            check::<f32>(&p, false, f32::EPSILON as f64 / 2.0).unwrap();
        })
        .unwrap();
    }
}

#[test]
fn ctc_is_bit_identical_for_1_2_and_3_threads() {
    // Enough work for the samples to run in parallel, and gradient rows over several leaves.
    let p = problem(11, [120, 9, 700], 40, 4.0);
    for tier in Tier::available() {
        let bits = |threads: usize| {
            common::pool(threads).install(|| {
                losskit::with_tier(tier, || {
                    let r64 = run::<f64>(&p, true);
                    let r32 = run::<f32>(&p, false);
                    let key = |r: Run| {
                        let mut k: Vec<u64> = r.0.iter().map(|x| x.to_bits()).collect();
                        k.extend([r.1.to_bits(), r.2.to_bits()]);
                        k.extend(r.3.iter().map(|x| x.to_bits()));
                        k
                    };
                    (key(r64), key(r32))
                })
                .unwrap()
            })
        };
        let one = bits(1);
        assert!(
            one.0.iter().any(|&b| f64::from_bits(b) != 0.0),
            "{tier}: all zero"
        );
        for threads in [2, 3] {
            assert!(
                bits(threads) == one,
                "{tier}: {threads} threads differ from 1"
            );
        }
    }
}

#[test]
fn every_argument_error_names_its_argument() {
    let lp = vec![0.25f32.ln(); 3 * 2 * 4]; // T = 3, N = 2, C = 4
    let shape = [3, 2, 4];
    let c = Ctc::new();
    let call = |c: Ctc, shape: [usize; 3], t: &[i64], il: &[i64], tl: &[i64]| {
        c.loss(&lp, shape, t, il, tl, Reduction::Mean)
    };
    let ok = call(c, shape, &[1, 2, 3], &[3, 2], &[2, 1]);
    assert!(ok.unwrap().is_finite());
    let cases: Vec<(Result<f32, LossError>, LossError)> = vec![
        (
            call(c, [3, 2, 5], &[1], &[3, 2], &[1, 0]),
            LossError::LengthMismatch {
                name: "log_probs",
                len: 24,
                expected_name: "time * batch * classes",
                expected: 30,
            },
        ),
        (call(c, [0, 0, 0], &[], &[], &[]), LossError::ZeroClasses),
        (
            call(c, [usize::MAX, 2, 4], &[], &[0, 0], &[0, 0]),
            LossError::SizeOverflow {
                rows: usize::MAX,
                classes: 4,
            },
        ),
        (
            call(c.blank(4), shape, &[1], &[3, 2], &[1, 0]),
            LossError::InvalidParameter {
                name: "blank",
                value: 4.0,
                requirement: "< classes",
            },
        ),
        (
            call(c, shape, &[1], &[3], &[1, 0]),
            LossError::LengthMismatch {
                name: "input_lengths",
                len: 1,
                expected_name: "batch",
                expected: 2,
            },
        ),
        (
            call(c, shape, &[1], &[3, 2], &[1]),
            LossError::LengthMismatch {
                name: "target_lengths",
                len: 1,
                expected_name: "batch",
                expected: 2,
            },
        ),
        (
            call(c, shape, &[1], &[3, 4], &[1, 0]),
            LossError::OutOfRange {
                name: "input_lengths",
                index: 1,
                value: 4,
                min: 0,
                max: 3,
            },
        ),
        (
            call(c, shape, &[1], &[-1, 2], &[1, 0]),
            LossError::OutOfRange {
                name: "input_lengths",
                index: 0,
                value: -1,
                min: 0,
                max: 3,
            },
        ),
        (
            call(c, shape, &[1], &[3, 2], &[1, -2]),
            LossError::OutOfRange {
                name: "target_lengths",
                index: 1,
                value: -2,
                min: 0,
                max: 1,
            },
        ),
        (
            call(c, shape, &[1, 2], &[3, 2], &[2, 2]),
            LossError::LengthMismatch {
                name: "targets",
                len: 2,
                expected_name: "the sum of target_lengths",
                expected: 4,
            },
        ),
        (
            call(c, shape, &[1, 2, 3], &[3, 2], &[2, 2]),
            LossError::LengthMismatch {
                name: "targets",
                len: 3,
                expected_name: "the sum of target_lengths",
                expected: 4,
            },
        ),
        (
            call(c, shape, &[1, 4], &[3, 2], &[1, 1]),
            LossError::OutOfRange {
                name: "targets",
                index: 1,
                value: 4,
                min: 0,
                max: 3,
            },
        ),
        (
            call(c, shape, &[1, -1], &[3, 2], &[1, 1]),
            LossError::OutOfRange {
                name: "targets",
                index: 1,
                value: -1,
                min: 0,
                max: 3,
            },
        ),
        (
            call(c, shape, &[1, 0], &[3, 2], &[1, 1]),
            LossError::BlankInTargets { index: 1, blank: 0 },
        ),
        (
            call(c.blank(2), shape, &[2], &[3, 2], &[1, 0]),
            LossError::BlankInTargets { index: 0, blank: 2 },
        ),
    ];
    for (i, (got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case {i}");
    }
    // The output slices, checked after the arguments, before any work.
    let mut out = [7.0f32; 1];
    let r = c.each(&lp, shape, &[1i64], &[3i64, 2], &[1i64, 0], &mut out);
    assert_eq!(
        r,
        Err(LossError::LengthMismatch {
            name: "out",
            len: 1,
            expected_name: "batch",
            expected: 2
        })
    );
    assert_eq!(out, [7.0]);
    let mut grad = vec![7.0f32; 23];
    let r = c.loss_and_grad(
        &lp,
        shape,
        &[1i64],
        &[3i64, 2],
        &[1i64, 0],
        Reduction::Sum,
        &mut grad,
    );
    assert_eq!(
        r,
        Err(LossError::LengthMismatch {
            name: "grad",
            len: 23,
            expected_name: "log_probs",
            expected: 24
        })
    );
    assert!(grad.iter().all(|&g| g == 7.0));
    // Messages read as sentences.
    assert_eq!(
        call(c, shape, &[1, 2, 3], &[3, 2], &[2, 2])
            .unwrap_err()
            .to_string(),
        "targets has 3 elements but the sum of target_lengths is 4"
    );
    assert_eq!(
        call(c, shape, &[1, 0], &[3, 2], &[1, 1])
            .unwrap_err()
            .to_string(),
        "targets[1] is the blank label 0, which may not appear in a target"
    );
}

#[test]
fn impossible_alignments_are_inf_or_zero_with_zero_infinity() {
    // "1 1" needs 3 frames; 2 are given. The second sample is possible.
    let lp = vec![(1.0f64 / 3.0).ln(); 2 * 2 * 3];
    let (t, il, tl) = ([1i64, 1, 2], [2i64, 2], [2i64, 1]);
    let mut each = [0.0; 2];
    Ctc::new()
        .each(&lp, [2, 2, 3], &t, &il, &tl, &mut each)
        .unwrap();
    assert_eq!(each[0], f64::INFINITY);
    assert!((each[1] - -(3.0f64 / 9.0).ln()).abs() < 1e-12);
    let z = Ctc::new().zero_infinity(true);
    let mut grad = vec![f64::NAN; lp.len()];
    let mean = z
        .loss_and_grad(&lp, [2, 2, 3], &t, &il, &tl, Reduction::Mean, &mut grad)
        .unwrap();
    assert!((mean - each[1] / 2.0).abs() < 1e-12);
    for (i, g) in grad.iter().enumerate() {
        if (i / 3) % 2 == 0 {
            assert_eq!(*g, 0.0, "grad[{i}]");
        }
    }
    // The possible sample: frame 0's posteriors are 1/3 blank ("_ 2"), 2/3 label 2 ("2 2",
    // "2 _"), against softmax 1/3 each; weight 1/2 (mean over 2 samples, length 1).
    let want = [0.0, 1.0 / 6.0, -1.0 / 6.0];
    for (c, w) in want.iter().enumerate() {
        assert!(
            (grad[3 + c] - w).abs() < 1e-12,
            "grad[{}] = {}",
            3 + c,
            grad[3 + c]
        );
    }
    // Without zero_infinity the impossible sample's frames are NaN, as PyTorch's.
    let sum = Ctc::new()
        .loss_and_grad(&lp, [2, 2, 3], &t, &il, &tl, Reduction::Sum, &mut grad)
        .unwrap();
    assert_eq!(sum, f64::INFINITY);
    assert!(grad[..3].iter().all(|g| g.is_nan()) && grad[3..6].iter().all(|g| g.is_finite()));
}
