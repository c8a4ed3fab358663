//! The reduce driver's promises: identical bits for any number of threads, and f32 sums that
//! stay accurate at 2^26 elements.

use crate::common;

use losskit::{reference, Reduction, Tier};

/// A deterministic pseudo-random stream in [-1, 1).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut next = common::splitmix(seed);
    (0..n)
        .map(|_| (next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect()
}

#[test]
fn reductions_are_bit_identical_for_1_2_3_and_8_threads() {
    // Lengths below, at and well above the parallel threshold, with ragged tails.
    for n in [1000, 131_072, 131_073, 3 * 65_536 + 17, 1_000_003] {
        let x = noise(1, n);
        let y = noise(2, n);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        for tier in Tier::available() {
            let run = |threads: usize| {
                common::pool(threads).install(|| {
                    losskit::with_tier(tier, || {
                        let mut each = vec![0.0f32; n];
                        losskit::huber_each(&x, &y, 0.5, &mut each).unwrap();
                        (
                            losskit::mse(&x, &y, Reduction::Mean).unwrap().to_bits(),
                            losskit::l1(&x, &y, Reduction::Sum).unwrap().to_bits(),
                            losskit::huber(&x, &y, 0.5, Reduction::Mean)
                                .unwrap()
                                .to_bits(),
                            losskit::smooth_l1(&x64, &y64, 0.25, Reduction::Sum)
                                .unwrap()
                                .to_bits(),
                            each.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        )
                    })
                    .unwrap()
                })
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                assert!(
                    run(threads) == one,
                    "n={n} tier={tier}: {threads} threads differ from 1"
                );
            }
            // And across repeated runs on the same pool.
            assert!(run(8) == one, "n={n} tier={tier}: a second run differs");
        }
    }
}

#[test]
fn f32_mean_of_2_pow_26_squared_errors_is_within_1e_6_relative() {
    let n = 1usize << 26;
    let x = noise(3, n);
    let y = noise(4, n);
    // The exact value, to f64 precision: f64 differences of the f32 inputs are exact.
    let exact: f64 = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    for tier in Tier::available() {
        let got =
            losskit::with_tier(tier, || losskit::mse(&x, &y, Reduction::Mean).unwrap()).unwrap();
        let rel = (got as f64 - exact).abs() / exact;
        println!("tier {tier}: mean {got} vs exact {exact}, relative error {rel:.2e}");
        assert!(rel <= 1e-6, "tier {tier}: relative error {rel:e}");
    }
    // What the bound protects against: a plain sequential f32 sum drifts far off.
    let naive = x
        .iter()
        .zip(&y)
        .fold(0.0f32, |s, (&a, &b)| s + reference::mse(a, b))
        / n as f32;
    let naive_rel = (naive as f64 - exact).abs() / exact;
    println!("plain sequential f32 sum: relative error {naive_rel:.2e}");
    assert!(
        naive_rel > 1e-3,
        "the naive sum was expected to drift; the test data lost its teeth"
    );
}

/// The stated bound of `reduce.rs` for f32 sums of non-negative terms, `10·u·Σm` with
/// `u = 2^-24`, against summands ordered so that the f32 adds of a lane accumulator all round
/// the same way: every 2^18 elements start with 64 ones (one for each accumulator lane of the
/// widest tier) and go on with terms just over half an ulp of 1, each of which an f32 add to a
/// sum in [1, 2) rounds up by almost half an ulp. Random data cannot show the bound, as its
/// errors cancel. With the flush every `BLOCK_STEPS = 8` steps a lane gathers at most 7 such
/// errors before its sum is widened to f64; an accumulator that went 4096 steps would gather
/// 4095 (a relative error near 4095 u) and fail here.
#[test]
fn f32_sum_stays_within_the_stated_bound_on_adversarial_summands() {
    let tiny = (1.0 + 2f64.powi(-10)) * 2f64.powi(-24);
    assert_eq!(tiny as f32 as f64, tiny, "the tiny term is an f32 value");
    let (n, period) = (1usize << 20, 1usize << 18);
    let x: Vec<f32> = (0..n)
        .map(|i| if i % period < 64 { 1.0 } else { tiny as f32 })
        .collect();
    let zeros = vec![0.0f32; n];
    let ones = (n / period * 64) as f64;
    let exact = ones + (n as f64 - ones) * tiny;
    let u = 2f64.powi(-24);
    for tier in Tier::available() {
        let got = losskit::with_tier(tier, || losskit::l1(&x, &zeros, Reduction::Sum).unwrap())
            .unwrap() as f64;
        let err = (got - exact).abs() / exact;
        println!("tier {tier}: relative error {err:.3e} = {:.2} u", err / u);
        assert!(
            err <= 10.0 * u,
            "tier {tier}: {:.2} u over the stated 10 u",
            err / u
        );
    }
    // The data has teeth: a plain sequential f32 sum is far outside the bound.
    let naive = x.iter().fold(0.0f32, |s, &v| s + v) as f64;
    let naive_err = (naive - exact).abs() / exact;
    assert!(
        naive_err > 100.0 * u,
        "naive sum error {:.2} u",
        naive_err / u
    );
}
