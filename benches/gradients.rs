//! Fused loss-and-gradient kernels (f32, one thread) against the forward pass alone and against
//! a plain copy of the same bytes — the write-bandwidth reference for a pass that reads its input
//! and writes a gradient of the same size.
//!
//! Groups, all f32, all inside a one-thread rayon pool (`_1t`):
//!
//! - `ce_128256_grad_1t` (256 x 128256 logits, 125 MiB), `ce_1000_grad_1t` (8192 x 1000,
//!   31 MiB) and `ce_10_grad_1t` (65536 x 10, 2.5 MiB: short rows): cross-entropy with `i64` labels, `Reduction::Mean`, logits in [-8, 8):
//!   - `forward`: `cross_entropy`;
//!   - `loss_and_grad`: `CrossEntropy::loss_and_grad` into a preallocated gradient buffer;
//!   - `in_place`: `CrossEntropy::loss_and_grad_in_place`, which overwrites the logits with the
//!     gradient: every iteration starts from a fresh clone of the logits, made outside the
//!     timing (`iter_batched_ref`);
//!   - `memcpy`: `copy_from_slice` of the logits into a preallocated buffer;
//!   - `exp_ceiling`: one vector `exp` per logit over an L1-resident buffer
//!     (`losskit::exp_ceiling`), the arithmetic no softmax gradient avoids.
//!
//!   Throughput is the bytes of the logits (`rows · classes · 4`; labels not counted).
//! - `mse_grad_1t` and `bce_with_logits_grad_1t` at `1M` (L3) and `64M` (DRAM) elements, inputs
//!   in [-8, 8) and targets in [0, 1):
//!   - `forward`: `mse` / `bce_with_logits`;
//!   - `and_grad`: `mse_and_grad` / `bce_with_logits_and_grad` into a preallocated buffer;
//!   - `memcpy`: `copy_from_slice` of one input into a preallocated buffer of the same length;
//!   - `exp_ceiling` (bce_with_logits only, the exp-bound one): one vector `exp` per element.
//!
//!   Throughput is the bytes of both inputs (`2 · n · 4`).
//!
//! Within a group every function is credited with the same bytes, so the ratios of their
//! throughputs are the ratios of their times: `loss_and_grad / forward` is what the gradient
//! costs, `loss_and_grad / memcpy` how close it comes to copying the logits once, and the larger of
//! `memcpy` and `exp_ceiling` is the roofline (DESIGN.md, "Measuring against the machine's
//! limit").
//!
//! ```text
//! cargo bench --bench gradients                       # everything (~2 minutes)
//! cargo bench --bench gradients -- ce_128256_grad_1t  # one group
//! cargo bench --bench gradients -- '/64M'             # a regex over ids
//! cargo bench --bench gradients -- --test             # each benchmark once (smoke test)
//! LOSSKIT_BENCH_MAX=1M cargo bench --bench gradients  # skip sizes above 1M elements
//! ```
//!
//! `LOSSKIT_BENCH_MAX` counts elements: logits (`rows · classes`) for cross-entropy, the length
//! of one input for the pointwise losses. Inputs are generated on first use by a deterministic
//! LCG and dropped before the next size; sizes whose benchmarks are all filtered out are never
//! allocated. Output buffers are written once before timing starts, so no iteration pays for
//! first-touch page faults.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::mem::size_of;

use common::{ce_inputs, configure, exp_buffer, lcg, logit, max_size, unit, Threads};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use losskit::{CrossEntropy, Reduction};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Cross-entropy shapes `(rows, classes)`, with the group name and the benchmark parameter.
const CE_SHAPES: [(usize, usize, &str, &str); 3] = [
    (256, 128_256, "ce_128256_grad_1t", "256x128256"),
    (8192, 1000, "ce_1000_grad_1t", "8192x1000"),
    (65536, 10, "ce_10_grad_1t", "65536x10"),
];

/// Pointwise sizes in elements, with the label used as the benchmark parameter.
const SIZES: [(usize, &str); 2] = [(1 << 20, "1M"), (64 << 20, "64M")];

#[derive(Clone, Copy)]
enum Pointwise {
    Mse,
    BceWithLogits,
}

impl Pointwise {
    const ALL: [Pointwise; 2] = [Pointwise::Mse, Pointwise::BceWithLogits];

    fn name(self) -> &'static str {
        match self {
            Pointwise::Mse => "mse",
            Pointwise::BceWithLogits => "bce_with_logits",
        }
    }

    /// Whether its arithmetic is bound by one `exp` per element.
    fn exp_bound(self) -> bool {
        matches!(self, Pointwise::BceWithLogits)
    }

    /// The forward kernel, mean reduction.
    fn forward(self, x: &[f32], t: &[f32]) -> f32 {
        let m = Reduction::Mean;
        match self {
            Pointwise::Mse => losskit::mse(x, t, m),
            Pointwise::BceWithLogits => losskit::bce_with_logits(x, t, m),
        }
        .expect("inputs have equal lengths")
    }

    /// The fused loss-and-gradient kernel, mean reduction, gradient into `grad`.
    fn and_grad(self, x: &[f32], t: &[f32], grad: &mut [f32]) -> f32 {
        let m = Reduction::Mean;
        match self {
            Pointwise::Mse => losskit::mse_and_grad(x, t, m, grad),
            Pointwise::BceWithLogits => losskit::bce_with_logits_and_grad(x, t, m, grad),
        }
        .expect("inputs and gradient have equal lengths")
    }
}

/// `n` inputs in [-8, 8) and `n` targets in [0, 1), valid for both pointwise losses.
fn pointwise_inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut next = lcg(0x9E37_79B9_7F4A_7C15);
    let x = (0..n).map(|_| logit(next())).collect();
    let t = (0..n).map(|_| unit(next())).collect();
    (x, t)
}

/// A buffer of `n` elements whose pages are already written (`vec![0.0; n]` would hand back
/// untouched zero pages and bill the first iterations for faulting them in).
fn out_buffer(n: usize) -> Vec<f32> {
    vec![1.0; n]
}

fn bench_cross_entropy(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    let ce = CrossEntropy::<f32>::new();
    let m = Reduction::Mean;
    for (rows, classes, group, label) in CE_SHAPES.into_iter().filter(|&(r, c, _, _)| r * c <= max)
    {
        let n = rows * classes;
        // Generated when the first benchmark of this shape runs (never, if the filter skips them
        // all) and dropped at the end of this iteration.
        let data: OnceCell<(Vec<f32>, Vec<i64>)> = OnceCell::new();
        let get = || {
            let (logits, labels) = data.get_or_init(|| ce_inputs(rows, classes));
            (logits.as_slice(), labels.as_slice())
        };
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes((n * size_of::<f32>()) as u64));
        configure(&mut g, n * size_of::<f32>());
        g.bench_function(BenchmarkId::new("forward", label), |b| {
            let (logits, labels) = get();
            pool.install(|| {
                b.iter(|| {
                    losskit::cross_entropy(black_box(logits), classes, black_box(labels), m)
                        .expect("valid shape and labels")
                })
            });
        });
        g.bench_function(BenchmarkId::new("loss_and_grad", label), |b| {
            let (logits, labels) = get();
            let mut grad = out_buffer(n);
            pool.install(|| {
                b.iter(|| {
                    ce.loss_and_grad(
                        black_box(logits),
                        classes,
                        black_box(labels),
                        m,
                        black_box(&mut grad),
                    )
                    .expect("valid shape, labels and gradient length")
                })
            });
        });
        g.bench_function(BenchmarkId::new("in_place", label), |b| {
            let (logits, labels) = get();
            pool.install(|| {
                // The kernel overwrites its logits, so each iteration gets a fresh clone of the
                // originals. The clone is made in the setup closure and is excluded from the
                // timing (as is dropping it); with LargeInput and iterations of milliseconds,
                // batches hold a single clone, so only one extra copy is alive at a time. The
                // clone leaves at most the tail of the logits in cache (much less than the
                // 31-125 MiB read), and its pages are already faulted in when timing starts.
                b.iter_batched_ref(
                    || logits.to_vec(),
                    |work| {
                        ce.loss_and_grad_in_place(black_box(work), classes, black_box(labels), m)
                            .expect("valid shape and labels")
                    },
                    BatchSize::LargeInput,
                )
            });
        });
        g.bench_function(BenchmarkId::new("memcpy", label), |b| {
            let (logits, _) = get();
            let mut out = out_buffer(n);
            pool.install(|| {
                b.iter(|| {
                    black_box(&mut out).copy_from_slice(black_box(logits));
                })
            });
        });
        g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
            let buffer = exp_buffer();
            pool.install(|| b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), n)));
        });
        g.finish();
    }
}

fn bench_pointwise(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (n, label) in SIZES.into_iter().filter(|&(n, _)| n <= max) {
        // Shared by both losses of this size: generated on first use, dropped at the end of
        // this iteration.
        let data: OnceCell<(Vec<f32>, Vec<f32>)> = OnceCell::new();
        let get = || {
            let (x, t) = data.get_or_init(|| pointwise_inputs(n));
            (x.as_slice(), t.as_slice())
        };
        for loss in Pointwise::ALL {
            let mut g = c.benchmark_group(format!("{}_grad_1t", loss.name()));
            g.throughput(Throughput::Bytes((2 * n * size_of::<f32>()) as u64));
            configure(&mut g, 2 * n * size_of::<f32>());
            g.bench_function(BenchmarkId::new("forward", label), |b| {
                let (x, t) = get();
                pool.install(|| b.iter(|| loss.forward(black_box(x), black_box(t))));
            });
            g.bench_function(BenchmarkId::new("and_grad", label), |b| {
                let (x, t) = get();
                let mut grad = out_buffer(n);
                pool.install(|| {
                    b.iter(|| loss.and_grad(black_box(x), black_box(t), black_box(&mut grad)))
                });
            });
            g.bench_function(BenchmarkId::new("memcpy", label), |b| {
                let (x, _) = get();
                let mut out = out_buffer(n);
                pool.install(|| {
                    b.iter(|| {
                        black_box(&mut out).copy_from_slice(black_box(x));
                    })
                });
            });
            if loss.exp_bound() {
                g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
                    let buffer = exp_buffer();
                    pool.install(|| b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), n)));
                });
            }
            g.finish();
        }
    }
}

fn gradients(c: &mut Criterion) {
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread rayon pool");
    let max = max_size();
    bench_cross_entropy(c, &pool, max);
    bench_pointwise(c, &pool, max);
}

criterion_group!(benches, gradients);
criterion_main!(benches);
