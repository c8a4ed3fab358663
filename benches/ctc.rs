//! CTC loss (f32, `Reduction::Mean`) on the issue's two shapes, forward and forward+gradient,
//! on one and two threads, against the scalar `f64` reference (`reference::ctc_loss`, one
//! thread: it has no threads).
//!
//! - `ctc_asr`: `T = 500`, batch 32, 32 classes, every target 100 labels long (a typical ASR
//!   batch), every input 500 frames;
//! - `ctc_vocab`: `T = 2000`, batch 8, 5000 classes, targets 200 labels long (a large
//!   vocabulary: the gradient writes `T·N·C` = 80M values, the forward reads `T·N·(S+1)`).
//!
//! Log-probabilities are `log_softmax` rows of logits in `[-4, 4)` from a fixed LCG; labels are
//! drawn from `1..C` (blank 0), so targets have repeats (ASR) or hardly any (vocab).
//!
//! ```text
//! cargo bench --bench ctc                        # everything
//! cargo bench --bench ctc -- ctc_asr             # one shape
//! cargo bench --bench ctc -- --test              # each benchmark once (smoke test)
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use losskit::{reference, Ctc, Reduction};
use rayon::ThreadPoolBuilder;

/// A bench problem: log-probs `[T, N, C]`, targets, lengths.
struct Problem {
    shape: [usize; 3],
    lp: Vec<f32>,
    targets: Vec<usize>,
    input_lengths: Vec<usize>,
    target_lengths: Vec<usize>,
}

fn problem([t, n, c]: [usize; 3], target: usize) -> Problem {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    let mut lp = Vec::with_capacity(t * n * c);
    let mut row = vec![0.0f64; c];
    for _ in 0..t * n {
        for x in row.iter_mut() {
            *x = next() as f64 / (1u64 << 31) as f64 * 8.0 - 4.0;
        }
        let m = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        lp.extend(row.iter().map(|x| (x - lse) as f32));
    }
    let targets = (0..n * target)
        .map(|_| 1 + next() as usize % (c - 1))
        .collect();
    Problem {
        shape: [t, n, c],
        lp,
        targets,
        input_lengths: vec![t; n],
        target_lengths: vec![target; n],
    }
}

fn bench(c: &mut Criterion) {
    let shapes = [
        ("ctc_asr", [500, 32, 32], 100),
        ("ctc_vocab", [2000, 8, 5000], 200),
    ];
    for (name, shape, target) in shapes {
        let p = problem(shape, target);
        let args = (&p.targets[..], &p.input_lengths[..], &p.target_lengths[..]);
        let mut grad = vec![0.0f32; p.lp.len()];
        let mut g = c.benchmark_group(name);
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for threads in [1, 2] {
            let pool = ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            g.bench_function(format!("forward_{threads}t"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        Ctc::new()
                            .loss(&p.lp, p.shape, args.0, args.1, args.2, Reduction::Mean)
                            .unwrap()
                    })
                })
            });
            g.bench_function(format!("forward_grad_{threads}t"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        Ctc::new()
                            .loss_and_grad(
                                &p.lp,
                                p.shape,
                                args.0,
                                args.1,
                                args.2,
                                Reduction::Mean,
                                black_box(&mut grad),
                            )
                            .unwrap()
                    })
                })
            });
        }
        g.bench_function("reference_forward_1t", |b| {
            b.iter(|| reference::ctc_loss(&p.lp, p.shape, args.0, args.1, args.2, 0))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
