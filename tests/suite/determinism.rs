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
