//! `losskit::partial`: the partial results of the reduced losses are the same bits however a
//! batch is sharded and merged, equal the correctly rounded sum of the per-element losses, agree
//! with the main functions within their bound, and check their arguments.

use losskit::{bf16, partial, LossError, Partial, Reduction, Storage};

/// One loss of the partial API, by name, with its main function's mean for comparison.
type PartialFn<S> = fn(&[S], &[S]) -> Result<Partial, LossError>;

fn losses<S: Storage>() -> [(&'static str, PartialFn<S>); 6]
where
    S::Compute: From<f32>,
{
    [
        ("mse", |x, y| partial::mse(x, y)),
        ("l1", |x, y| partial::l1(x, y)),
        ("huber", |x, y| partial::huber(x, y, S::Compute::from(0.75))),
        ("smooth_l1", |x, y| {
            partial::smooth_l1(x, y, S::Compute::from(0.5))
        }),
        ("bce", |x, y| partial::bce(x, y)),
        ("bce_with_logits", |x, y| partial::bce_with_logits(x, y)),
    ]
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Inputs valid for every loss above: values in [0, 1] (probabilities for bce), targets in
/// [0, 1]; a few magnitudes apart so that the sums round.
fn inputs<S: Storage>(n: usize, seed: u64, from: fn(f64) -> S) -> (Vec<S>, Vec<S>) {
    let mut rng = Rng(seed | 1);
    let x = (0..n).map(|_| from(rng.unit())).collect();
    let y = (0..n)
        .map(|i| {
            from(if i % 3 == 0 {
                rng.unit()
            } else {
                (rng.below(2)) as f64
            })
        })
        .collect();
    (x, y)
}

/// Random cut points of `0..n` (sorted, with both ends), up to `max_cuts` inner ones.
fn cuts(rng: &mut Rng, n: usize, max_cuts: usize) -> Vec<usize> {
    let mut c: Vec<usize> = (0..rng.below(max_cuts + 1))
        .map(|_| rng.below(n + 1))
        .collect();
    c.push(0);
    c.push(n);
    c.sort_unstable();
    c
}

fn check_sharding<S: Storage>(from: fn(f64) -> S, n: usize, seed: u64)
where
    S::Compute: From<f32>,
{
    let (x, y) = inputs(n, seed, from);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for (name, f) in losses::<S>() {
        let whole = f(&x, &y).unwrap();
        assert_eq!(whole.count(), n as u64, "{name}");
        for trial in 0..6 {
            let c = cuts(&mut rng, n, 1 + trial * 3);
            let parts: Vec<Partial> = c
                .windows(2)
                .map(|w| f(&x[w[0]..w[1]], &y[w[0]..w[1]]).unwrap())
                .collect();
            // Left fold in a rotated order, and a right-leaning tree.
            let k = parts.len();
            let rotated = (0..k).fold(Partial::new(), |acc, i| acc.merge(&parts[(i + trial) % k]));
            let tree = parts
                .chunks(2)
                .map(|p| p.iter().fold(Partial::new(), |a, b| b.merge(&a)))
                .rev()
                .fold(Partial::new(), |a, b| b.merge(&a));
            for merged in [&rotated, &tree] {
                assert_eq!(merged, &whole, "{name}: n {n}, cuts {c:?}");
                for r in [Reduction::Sum, Reduction::Mean] {
                    assert_eq!(
                        merged.finish(r).to_bits(),
                        whole.finish(r).to_bits(),
                        "{name}: n {n}, cuts {c:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn any_sharding_and_merge_order_gives_the_same_bits() {
    // Across the 4096-element blocks of the per-element pass and the 65536-element leaves of
    // the kernels.
    for (n, seed) in [(0, 1), (1, 2), (37, 3), (4097, 4), (70_001, 5)] {
        check_sharding::<f32>(|v| v as f32, n, seed);
        check_sharding::<f64>(|v| v, n, seed + 100);
        check_sharding::<bf16>(bf16::from_f64, n, seed + 200);
    }
}

/// `Σ values`, correctly rounded: Shewchuk's exact expansion (as Python's `math.fsum`).
fn fsum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in values {
        let mut kept = 0;
        for i in 0..partials.len() {
            let mut y = partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    // Round the expansion once (its terms are non-overlapping, largest last).
    let mut hi = 0.0;
    while let Some(y) = partials.pop() {
        // Fast two-sum: |hi| >= |y| (the terms are popped largest first).
        let x = hi;
        hi = x + y;
        let lo = y - (hi - x);
        if lo != 0.0 {
            if let Some(&next) = partials.last() {
                if (lo < 0.0) == (next < 0.0) {
                    let doubled = lo * 2.0;
                    let candidate = hi + doubled;
                    if doubled == candidate - hi {
                        hi = candidate;
                    }
                }
            }
            break;
        }
    }
    hi
}

#[test]
fn the_sum_is_the_correctly_rounded_sum_of_the_per_element_losses() {
    let n = 50_000;
    let (x, y) = inputs::<f32>(n, 17, |v| (v * 1e3) as f32);
    let (xp, yp) = inputs::<f32>(n, 18, |v| v as f32);
    let mut each = vec![0.0f32; n];
    losskit::mse_each(&x, &y, &mut each).unwrap();
    let p = partial::mse(&x, &y).unwrap();
    assert_eq!(
        p.finish(Reduction::Sum),
        fsum(each.iter().map(|&v| v as f64))
    );
    losskit::bce_each(&xp, &yp, &mut each).unwrap();
    let p = partial::bce(&xp, &yp).unwrap();
    assert_eq!(
        p.finish(Reduction::Sum),
        fsum(each.iter().map(|&v| v as f64))
    );
    let mut each = vec![0.0f64; n];
    let (x, y) = inputs::<f64>(n, 19, |v| v * 1e6 - 5e5);
    losskit::l1_each(&x, &y, &mut each).unwrap();
    let p = partial::l1(&x, &y).unwrap();
    assert_eq!(p.finish(Reduction::Sum), fsum(each.iter().copied()));
    assert_eq!(
        p.finish(Reduction::Mean),
        p.finish(Reduction::Sum) / n as f64
    );
}

#[test]
fn agrees_with_the_main_functions() {
    let n = 200_003;
    let (x, y) = inputs::<f32>(n, 23, |v| v as f32);
    let pairs: [(f64, f32); 4] = [
        (
            partial::mse(&x, &y).unwrap().finish(Reduction::Mean),
            losskit::mse(&x, &y, Reduction::Mean).unwrap(),
        ),
        (
            partial::huber(&x, &y, 0.75)
                .unwrap()
                .finish(Reduction::Mean),
            losskit::huber(&x, &y, 0.75, Reduction::Mean).unwrap(),
        ),
        (
            partial::bce(&x, &y).unwrap().finish(Reduction::Mean),
            losskit::bce(&x, &y, Reduction::Mean).unwrap(),
        ),
        (
            partial::bce_with_logits(&x, &y)
                .unwrap()
                .finish(Reduction::Mean),
            losskit::bce_with_logits(&x, &y, Reduction::Mean).unwrap(),
        ),
    ];
    for (i, (exact, main)) in pairs.into_iter().enumerate() {
        // The main function's f32 result: its sum's bound plus the final rounding to f32.
        let err = (exact - main as f64).abs() / exact.abs();
        assert!(err <= 1e-6, "loss {i}: {exact} vs {main} ({err:e})");
    }
}

#[test]
fn arguments_are_checked_even_for_empty_inputs() {
    let e = |r: Result<Partial, LossError>| r.unwrap_err().to_string();
    assert!(e(partial::mse(&[1.0f32, 2.0], &[1.0])).contains("target"));
    assert!(e(partial::bce(&[0.5f64], &[1.0, 0.0])).contains("probs"));
    assert!(e(partial::huber::<f32>(&[], &[], -1.0)).contains("delta"));
    assert!(e(partial::smooth_l1::<f64>(&[], &[], f64::NAN)).contains("beta"));
    // A probability out of range far into the input (past the first block) is found.
    let mut p = vec![0.5f32; 10_000];
    p[9_000] = 1.5;
    assert!(e(partial::bce(&p, &vec![1.0; 10_000])).contains("1.5"));
    let empty = partial::mse::<f32>(&[], &[]).unwrap();
    assert_eq!((empty.count(), empty.finish(Reduction::Sum)), (0, 0.0));
    assert!(empty.finish(Reduction::Mean).is_nan());
}
