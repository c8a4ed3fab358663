//! The elementwise losses of issue 16 against the machine's limit, one thread, f32, 1M elements:
//! each loss's reduced (`Mean`) and fused-gradient forms beside the read ceiling
//! (`losskit::read_ceiling` of the same two inputs) and the exp ceiling (`losskit::exp_ceiling`,
//! one vector exp per element over an L1-resident buffer), on the AVX-512 and AVX2 tiers where
//! the CPU has them. A loss's roofline share is `max(read, exp) / time`: 1 is the limit.
//!
//! ```text
//! cargo bench --bench parity          # best of 60 runs per figure, about a minute
//! ```
//!
//! The three-input losses (the flat driver's third stream: gaussian_nll, margin_ranking and the
//! `*_weighted` first-wave losses) are timed the same way against the read ceiling of *their*
//! bytes: `read_ceiling` over two 1.5M-element slices, the 12 MB that three 1M-element f32
//! inputs hold. bce_with_logits with a per-class `pos_weight` (the flat driver's fourth stream,
//! read per class) is among them: its per-element `weight` is the third input when given.
//! The row-wise `multilabel_soft_margin` is timed over `[8192, 1000]` against the read ceiling
//! of its two matrices, and `multi_margin` (p = 1 and 2) over the same logits against the read
//! ceiling of the one matrix it reads (its labels are 64 KB beside 32 MB), `multilabel_margin`
//! over the logits and an i32 target matrix against the two matrices' ceiling, and
//! `cosine_embedding` over the two matrices as `x1` and `x2`, and `triplet_margin` over three
//! (against 1.5 times the two matrices' ceiling).
//!
//! Plain best-of-N timing (no criterion): the figures are compared with each other within one
//! run, and the best of many runs of a 1M-element sweep is stable to a few percent.

use std::hint::black_box;
use std::time::Instant;

use losskit::{BceWithLogitsPerClass, KlDiv, PoissonNll, Reduction, SigmoidFocal, Tier};

const N: usize = 1 << 20;
const REPS: usize = 60;
/// The shape of the row-wise losses.
const ROWS: usize = 8192;
const CLASSES: usize = 1000;

/// bce_with_logits with the per-class positive weights `pw`.
fn per_class(pw: &[f32]) -> BceWithLogitsPerClass<'_, f32> {
    BceWithLogitsPerClass::new(pw)
}

/// The best of `REPS` runs of `f`, in microseconds.
fn best(mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..REPS {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_secs_f64());
    }
    b * 1e6
}

/// A deterministic stream in `[lo, hi)`.
fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

type Reduce = Box<dyn Fn(&[f32], &[f32]) -> f32 + Send + Sync>;
type Grad = Box<dyn Fn(&[f32], &[f32], &mut [f32]) -> f32 + Send + Sync>;
/// A loss to time: its name, input, target, reduced and fused forms.
type Case<'a> = (&'static str, &'a [f32], &'a [f32], Reduce, Grad);
type Reduce3 = Box<dyn Fn(&[f32], &[f32], &[f32]) -> f32 + Send + Sync>;
/// The fused form of a three-input loss: the gradient(s) into the two slices (the second is
/// written by the losses with a second differentiable input only).
type Grad3 = Box<dyn Fn(&[f32], &[f32], &[f32], &mut [f32], &mut [f32]) -> f32 + Send + Sync>;
/// A three-input loss to time: its name, inputs, reduced and fused forms.
type Case3<'a> = (&'static str, [&'a [f32]; 3], Reduce3, Grad3);

fn main() {
    let mean = Reduction::Mean;
    let x = values(N, 1, -4.0, 4.0);
    let signs: Vec<f32> = values(N, 2, 0.0, 1.0)
        .iter()
        .map(|&v| if v < 0.5 { -1.0 } else { 1.0 })
        .collect();
    let unit = values(N, 3, 0.0, 1.0);
    let counts: Vec<f32> = values(N, 4, 0.0, 6.0).iter().map(|v| v.floor()).collect();
    let log_probs = values(N, 5, -9.0, -0.01);
    let rates = values(N, 6, 0.01, 6.0);
    // (name, input, target, reduced, fused)
    let losses: Vec<Case> = vec![
        (
            "log_cosh",
            &x,
            &unit,
            Box::new(move |a, b| losskit::log_cosh(a, b, mean).unwrap()),
            Box::new(move |a, b, g| losskit::log_cosh_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "soft_margin",
            &x,
            &signs,
            Box::new(move |a, b| losskit::soft_margin(a, b, mean).unwrap()),
            Box::new(move |a, b, g| losskit::soft_margin_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "hinge_embedding",
            &x,
            &signs,
            Box::new(move |a, b| losskit::hinge_embedding(a, b, 1.0, mean).unwrap()),
            Box::new(move |a, b, g| losskit::hinge_embedding_and_grad(a, b, 1.0, mean, g).unwrap()),
        ),
        (
            "poisson_nll",
            &x,
            &counts,
            Box::new(move |a, b| losskit::poisson_nll(a, b, mean).unwrap()),
            Box::new(move |a, b, g| losskit::poisson_nll_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "poisson_nll(rate, full)",
            &rates,
            &counts,
            Box::new(move |a, b| {
                let p = PoissonNll::new().log_input(false).full(true);
                p.loss(a, b, mean).unwrap()
            }),
            Box::new(move |a, b, g| {
                let p = PoissonNll::new().log_input(false).full(true);
                p.loss_and_grad(a, b, mean, g).unwrap()
            }),
        ),
        (
            "kl_div",
            &log_probs,
            &unit,
            Box::new(move |a, b| losskit::kl_div(a, b, mean).unwrap()),
            Box::new(move |a, b, g| losskit::kl_div_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "kl_div(log_target)",
            &log_probs,
            &log_probs,
            Box::new(move |a, b| KlDiv::new().log_target(true).loss(a, b, mean).unwrap()),
            Box::new(move |a, b, g| {
                KlDiv::new()
                    .log_target(true)
                    .loss_and_grad(a, b, mean, g)
                    .unwrap()
            }),
        ),
        (
            "sigmoid_focal",
            &x,
            &unit,
            Box::new(move |a, b| losskit::sigmoid_focal(a, b, mean).unwrap()),
            Box::new(move |a, b, g| losskit::sigmoid_focal_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "sigmoid_focal(gamma=0.5)",
            &x,
            &unit,
            Box::new(move |a, b| SigmoidFocal::new().gamma(0.5).loss(a, b, mean).unwrap()),
            Box::new(move |a, b, g| {
                SigmoidFocal::new()
                    .gamma(0.5)
                    .loss_and_grad(a, b, mean, g)
                    .unwrap()
            }),
        ),
    ];
    let var = values(N, 8, 0.05, 4.0);
    let weight = values(N, 9, 0.0, 2.0);
    let x2 = values(N, 10, -4.0, 4.0);
    let probs = values(N, 11, 0.01, 0.99);
    // Per-class positive weights of rows of 16 classes (shorter than a paired AVX-512 vector:
    // every vector is assembled) and of 1024 classes; static, so that every closure reads them.
    let pw16: &'static [f32] = values(16, 14, 0.5, 4.0).leak();
    let pw1024: &'static [f32] = values(1024, 15, 0.5, 4.0).leak();
    let losses3: Vec<Case3> = vec![
        (
            "gaussian_nll",
            [&x, &unit, &var],
            Box::new(move |a, b, c| losskit::gaussian_nll(a, b, c, mean).unwrap()),
            Box::new(move |a, b, c, g, g2| {
                losskit::gaussian_nll_and_grad(a, b, c, mean, g, g2).unwrap()
            }),
        ),
        (
            "margin_ranking",
            [&x, &x2, &signs],
            Box::new(move |a, b, c| losskit::margin_ranking(a, b, c, 0.5, mean).unwrap()),
            Box::new(move |a, b, c, g, g2| {
                losskit::margin_ranking_and_grad(a, b, c, 0.5, mean, g, g2).unwrap()
            }),
        ),
        (
            "mse_weighted (mean)",
            [&x, &unit, &weight],
            Box::new(move |a, b, c| losskit::mse_weighted(a, b, c, mean).unwrap()),
            Box::new(move |a, b, c, g, _| {
                losskit::mse_weighted_and_grad(a, b, c, mean, g).unwrap()
            }),
        ),
        (
            "mse_weighted (sum)",
            [&x, &unit, &weight],
            Box::new(|a, b, c| losskit::mse_weighted(a, b, c, Reduction::Sum).unwrap()),
            Box::new(|a, b, c, g, _| {
                losskit::mse_weighted_and_grad(a, b, c, Reduction::Sum, g).unwrap()
            }),
        ),
        (
            "l1_weighted",
            [&x, &unit, &weight],
            Box::new(move |a, b, c| losskit::l1_weighted(a, b, c, mean).unwrap()),
            Box::new(move |a, b, c, g, _| losskit::l1_weighted_and_grad(a, b, c, mean, g).unwrap()),
        ),
        (
            "huber_weighted",
            [&x, &unit, &weight],
            Box::new(move |a, b, c| losskit::huber_weighted(a, b, c, 1.0, mean).unwrap()),
            Box::new(move |a, b, c, g, _| {
                losskit::huber_weighted_and_grad(a, b, c, 1.0, mean, g).unwrap()
            }),
        ),
        (
            "bce_weighted",
            [&probs, &unit, &weight],
            Box::new(move |a, b, c| losskit::bce_weighted(a, b, c, mean).unwrap()),
            Box::new(move |a, b, c, g, _| {
                losskit::bce_weighted_and_grad(a, b, c, mean, g).unwrap()
            }),
        ),
        (
            "bce_with_logits_weighted",
            [&x, &unit, &weight],
            Box::new(move |a, b, c| losskit::bce_with_logits_weighted(a, b, c, mean).unwrap()),
            Box::new(move |a, b, c, g, _| {
                losskit::bce_with_logits_weighted_and_grad(a, b, c, mean, g).unwrap()
            }),
        ),
        (
            "bce_with_logits pos_weight[16]",
            [&x, &unit, &weight],
            Box::new(move |a, b, _| per_class(pw16).loss(a, b, mean).unwrap()),
            Box::new(move |a, b, _, g, _| per_class(pw16).loss_and_grad(a, b, mean, g).unwrap()),
        ),
        (
            "  ... and weight",
            [&x, &unit, &weight],
            Box::new(move |a, b, c| per_class(pw16).weight(c).loss(a, b, mean).unwrap()),
            Box::new(move |a, b, c, g, _| {
                per_class(pw16)
                    .weight(c)
                    .loss_and_grad(a, b, mean, g)
                    .unwrap()
            }),
        ),
        (
            "bce_with_logits pos_weight[1024]",
            [&x, &unit, &weight],
            Box::new(move |a, b, _| per_class(pw1024).loss(a, b, mean).unwrap()),
            Box::new(move |a, b, _, g, _| per_class(pw1024).loss_and_grad(a, b, mean, g).unwrap()),
        ),
    ];
    // Three 1M-element f32 inputs' bytes, as two slices for `read_ceiling`.
    let wide_a = values(N + N / 2, 12, -1.0, 1.0);
    let wide_b = values(N + N / 2, 13, -1.0, 1.0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let rows_x = values(ROWS * CLASSES, 16, -4.0, 4.0);
    let rows_t: Vec<f32> = values(ROWS * CLASSES, 17, 0.0, 1.0)
        .iter()
        .map(|v| v.round())
        .collect();
    let mut rows_grad = vec![0.0f32; ROWS * CLASSES];
    let l1 = values(1024, 7, -4.0, 4.0);
    let mut grad = vec![0.0f32; N];
    let mut grad2 = vec![0.0f32; N];
    for tier in [Tier::Avx512, Tier::Avx2] {
        if !tier.is_available() {
            println!("{tier}: not available on this CPU");
            continue;
        }
        losskit::with_tier(tier, || {
            pool.install(|| {
                let read = best(|| {
                    black_box(losskit::read_ceiling(black_box(&x), black_box(&unit)));
                });
                let exp = best(|| {
                    black_box(losskit::exp_ceiling(black_box(&l1), N / l1.len()));
                });
                println!(
                    "{tier}, one thread, f32, 1M: read ceiling {read:.0} us, exp ceiling {exp:.0} us"
                );
                let limit = read.max(exp);
                for (name, a, b, reduce, fused) in &losses {
                    let r = best(|| {
                        black_box(reduce(black_box(a), black_box(b)));
                    });
                    let g = best(|| {
                        black_box(fused(black_box(a), black_box(b), &mut grad));
                    });
                    println!(
                        "  {name:<26} reduce {r:>6.0} us  {:>5.2} of read  {:>5.2} of roofline | \
                         and_grad {g:>6.0} us",
                        read / r,
                        limit / r,
                    );
                }
                let read3 = best(|| {
                    black_box(losskit::read_ceiling(black_box(&wide_a), black_box(&wide_b)));
                });
                println!("  three inputs: read ceiling of their 12 MB {read3:.0} us");
                let limit3 = read3.max(exp);
                for (name, [a, b, c], reduce, fused) in &losses3 {
                    let r = best(|| {
                        black_box(reduce(black_box(a), black_box(b), black_box(c)));
                    });
                    let g = best(|| {
                        black_box(fused(black_box(a), black_box(b), black_box(c), &mut grad, &mut grad2));
                    });
                    println!(
                        "  {name:<30} reduce {r:>6.0} us  {:>5.2} of read  {:>5.2} of roofline | \
                         and_grad {g:>6.0} us",
                        read3 / r,
                        limit3 / r,
                    );
                }
                // The row-wise losses over [8192, 1000]: the logits and a second matrix (the
                // targets), read once each, against the read ceiling of the two matrices.
                let read_rows = best(|| {
                    black_box(losskit::read_ceiling(black_box(&rows_x), black_box(&rows_t)));
                });
                println!(
                    "  row-wise, [{ROWS}, {CLASSES}]: read ceiling of the two matrices {read_rows:.0} us"
                );
                let r = best(|| {
                    black_box(
                        losskit::multilabel_soft_margin(&rows_x, &rows_t, CLASSES, mean).unwrap(),
                    );
                });
                let g = best(|| {
                    black_box(
                        losskit::multilabel_soft_margin_and_grad(
                            &rows_x,
                            &rows_t,
                            CLASSES,
                            mean,
                            &mut rows_grad,
                        )
                        .unwrap(),
                    );
                });
                println!(
                    "  {:<30} reduce {r:>6.0} us  {:>5.2} of read  {:>5.2} of roofline | \
                     and_grad {g:>6.0} us",
                    "multilabel_soft_margin",
                    read_rows / r,
                    read_rows.max(exp * (ROWS * CLASSES) as f64 / N as f64) / r,
                );
                let signs: Vec<f32> = (0..ROWS).map(|r| [1.0, -1.0][r % 2]).collect();
                let mut rows_grad2 = vec![0.0f32; ROWS * CLASSES];
                let cosine = losskit::CosineEmbedding::new().margin(0.1);
                let r = best(|| {
                    black_box(cosine.loss(&rows_x, &rows_t, &signs, CLASSES, mean).unwrap());
                });
                let g = best(|| {
                    black_box(
                        cosine
                            .loss_and_grad(
                                &rows_x,
                                &rows_t,
                                &signs,
                                CLASSES,
                                mean,
                                &mut rows_grad,
                                &mut rows_grad2,
                            )
                            .unwrap(),
                    );
                });
                println!(
                    "  {:<30} reduce {r:>6.0} us  {:>5.2} of read (the roofline) | \
                     and_grad {g:>6.0} us (both gradients)",
                    "cosine_embedding",
                    read_rows / r,
                );
                // triplet_margin reads three matrices: the two above and the gradient buffer
                // as the negatives, against the two-matrix ceiling times 1.5.
                let negatives: Vec<f32> = rows_x.iter().map(|v| v * 0.5 + 0.25).collect();
                let mut rows_grad3 = vec![0.0f32; ROWS * CLASSES];
                for (p, swap) in [(2, false), (1, true)] {
                    let triplet = losskit::TripletMargin::new().p(p).swap(swap);
                    let r = best(|| {
                        black_box(
                            triplet
                                .loss(&rows_x, &rows_t, &negatives, CLASSES, mean)
                                .unwrap(),
                        );
                    });
                    let g = best(|| {
                        black_box(
                            triplet
                                .loss_and_grad(
                                    &rows_x,
                                    &rows_t,
                                    &negatives,
                                    CLASSES,
                                    mean,
                                    &mut rows_grad,
                                    &mut rows_grad2,
                                    &mut rows_grad3,
                                )
                                .unwrap(),
                        );
                    });
                    println!(
                        "  {:<30} reduce {r:>6.0} us  {:>5.2} of read (the roofline) | \
                         and_grad {g:>6.0} us (three gradients)",
                        format!("triplet_margin p={p} swap={swap}"),
                        1.5 * read_rows / r,
                    );
                }
                let half = ROWS * CLASSES / 2;
                let read_one = best(|| {
                    black_box(losskit::read_ceiling(
                        black_box(&rows_x[..half]),
                        black_box(&rows_x[half..]),
                    ));
                });
                println!("  read ceiling of the logits alone {read_one:.0} us");
                let labels: Vec<u32> = (0..ROWS).map(|r| (r * 7919 % CLASSES) as u32).collect();
                for p in [1, 2] {
                    let mm = losskit::MultiMargin::new().p(p);
                    let r = best(|| {
                        black_box(mm.loss(&rows_x, CLASSES, &labels, mean).unwrap());
                    });
                    let g = best(|| {
                        black_box(
                            mm.loss_and_grad(&rows_x, CLASSES, &labels, mean, &mut rows_grad)
                                .unwrap(),
                        );
                    });
                    println!(
                        "  {:<30} reduce {r:>6.0} us  {:>5.2} of read (the roofline) | \
                         and_grad {g:>6.0} us",
                        format!("multi_margin p={p}"),
                        read_one / r,
                    );
                }
                // Four targets a row, then -1: each target is one more sweep of its row (from
                // cache). The i32 target matrix is read whole (PyTorch checks every entry), so
                // the roofline is the read of both matrices: the two-matrix ceiling above (the
                // targets are as many bytes as the logits).
                let targets: Vec<i32> = (0..ROWS * CLASSES)
                    .map(|i| {
                        let (r, j) = (i / CLASSES, i % CLASSES);
                        match j {
                            0..4 => ((r * 7919 + j * 131) % CLASSES) as i32,
                            _ => -1,
                        }
                    })
                    .collect();
                let r = best(|| {
                    black_box(losskit::multilabel_margin(&rows_x, &targets, CLASSES, mean).unwrap());
                });
                let g = best(|| {
                    black_box(
                        losskit::multilabel_margin_and_grad(
                            &rows_x,
                            &targets,
                            CLASSES,
                            mean,
                            &mut rows_grad,
                        )
                        .unwrap(),
                    );
                });
                println!(
                    "  {:<30} reduce {r:>6.0} us  {:>5.2} of read (the roofline) | \
                     and_grad {g:>6.0} us  ({:.2} ns a target-class pair)",
                    "multilabel_margin 4 targets",
                    read_rows / r,
                    r * 1e3 / (4 * ROWS * CLASSES) as f64,
                );
            })
        })
        .unwrap();
    }
}
