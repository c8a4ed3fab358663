//! Classification losses: softmax cross-entropy with class labels, `bce` on probabilities and
//! `bce_with_logits` (f32), against the scalar reference and the memory-read ceiling; the eval
//! statistics of cross-entropy against its loss, and distillation KL (f32 and bf16), against
//! the two ceilings.
//!
//! Every group holds, at each size, the three things to compare, measured in the same run:
//!
//! - `losskit`: the kernel, `Reduction::Mean` (`cross_entropy`, `bce`, `bce_with_logits`, with
//!   PyTorch's defaults: no weights, no smoothing, no `pos_weight`);
//! - `reference`: the scalar oracle — for cross-entropy the `f64` sum over rows of
//!   `reference::cross_entropy_row(row, RowTarget::Class(label), None, 0.0).0` divided by the
//!   rows, for the binary losses `reference::reduce(x.zip(t).map(reference::<loss>), Mean)`;
//! - `ceiling`: `losskit::read_ceiling` — a plain SIMD sum of the same bytes on the best tier
//!   (for cross-entropy, of the two halves of the logits);
//! - `exp_ceiling`: `losskit::exp_ceiling` — one vector `exp` (the cross-entropy sweep's) and
//!   one add per element, over a 16 KiB buffer that stays in L1, as many elements as the
//!   kernel's input: what an exp-bound kernel cannot beat on the tier. The roofline is the
//!   slower of the two ceilings (DESIGN.md, "Measuring against the machine's limit").
//!
//! Groups are named `<loss>_f32_<threads>` (`ce`, `bce`, `bce_with_logits`): `_1t` runs inside a
//! one-thread rayon pool, `_mt` on rayon's global pool (all threads). On all threads the ceiling
//! is split into 65536-element chunks (the reduce driver's) and summed with `par_chunks`; the
//! reference is scalar and single-threaded in both. Benchmark ids are `<function>/<size>`:
//!
//! - cross-entropy at `65536x10` (2.5 MiB of logits, L2/L3), `8192x1000` (31 MiB) and
//!   `256x128256` (125 MiB, a large-vocabulary batch; PyTorch's CPU cross-entropy reads it at
//!   about 1.1 GB/s, see DESIGN.md). Logits are in [-8, 8), labels `i64` (PyTorch's `long`)
//!   pseudo-random in `0..classes`. Throughput is the bytes of the logits (`rows · classes · 4`);
//!   the labels (8 bytes a row) are not counted.
//! - `bce` and `bce_with_logits` at `1M` (L3) and `64M` (DRAM) elements: probabilities and
//!   targets in [0, 1) for `bce`, logits in [-8, 8) and targets in [0, 1) for `bce_with_logits`.
//!   Throughput is the bytes of both inputs (`2 · n · 4`).
//!
//! - `ce_stats_<f32|bf16>_1t` (one thread, the issue's target): `CrossEntropy::stats` (`stats`)
//!   beside `CrossEntropy::loss` (`loss`, `Reduction::Mean`) and the loss with a softcap of 30
//!   (`softcap`) on the same logits at `8192x1000` and `256x128256`, with `ceiling` (the read ceiling of the logits' bytes: for bf16, f32
//!   buffers of the same byte size) and `exp_ceiling` (one exp per logit).
//! - `kl_div_logits_<f32|bf16>_1t` at `256x128256`: `losskit` (`kl_div_logits`, mean, T = 1),
//!   `and_grad` (`kl_div_logits_and_grad`: the loss and the student's gradient), `ceiling`
//!   (the read ceiling of both matrices' bytes: two streams) and `exp_ceiling` (two exps per
//!   class, one per softmax: `2 · rows · classes`). Student logits as cross-entropy's, the
//!   teacher an independent draw in [-8, 8). Throughput is the bytes of both matrices.
//!
//! - `ce_vocab_f32_1t` at `256x128256`: vocabulary-sharded cross-entropy over four shards
//!   (every shard's work, on the one thread) against the unsharded call: `vocab_loss` beside
//!   `loss`, `vocab_grad` beside `loss_and_grad` (see `bench_vocab`), and `ceiling`.
//!
//! So `losskit / ceiling` and `losskit / reference` can be read straight off one group:
//!
//! ```text
//! cargo bench --bench classification                      # everything (~4-6 minutes)
//! cargo bench --bench classification -- ce_f32_1t         # one group
//! cargo bench --bench classification -- 'ce_f32_.*/256x'  # a regex over ids
//! cargo bench --bench classification -- --test            # each benchmark once (smoke test)
//! LOSSKIT_BENCH_MAX=1M cargo bench --bench classification # skip sizes above 1M elements
//! ```
//!
//! `LOSSKIT_BENCH_MAX` counts elements: logits (`rows · classes`) for cross-entropy, the length
//! of one input for the binary losses. The scalar reference runs at a few hundred MB/s, so an
//! iteration of it takes up to about a second at the largest sizes: those sizes get ten flat
//! samples of one iteration or more, and criterion warns that it cannot complete them in the
//! 3 s target (expected: the reference is there for the ratio, not for precision). Inputs are
//! generated on first use by a deterministic LCG and dropped before the next size (or loss);
//! sizes whose benchmarks are all filtered out are never allocated.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::mem::size_of;

use common::{ce_inputs, configure, exp_buffer, lcg, logit, max_size, unit, Threads};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use losskit::reference::{self, RowTarget};
use losskit::{bf16, CrossEntropy, Reduction, VocabRow, VocabShard};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Cross-entropy shapes `(rows, classes)`, with the label used as the benchmark parameter.
const CE_SHAPES: [(usize, usize, &str); 3] = [
    (65536, 10, "65536x10"),
    (8192, 1000, "8192x1000"),
    (256, 128_256, "256x128256"),
];

/// Binary-loss sizes in elements, with the label used as the benchmark parameter.
const SIZES: [(usize, &str); 2] = [(1 << 20, "1M"), (64 << 20, "64M")];

#[derive(Clone, Copy)]
enum Binary {
    Bce,
    BceWithLogits,
}

impl Binary {
    const ALL: [Binary; 2] = [Binary::Bce, Binary::BceWithLogits];

    fn name(self) -> &'static str {
        match self {
            Binary::Bce => "bce",
            Binary::BceWithLogits => "bce_with_logits",
        }
    }

    /// Two inputs of `n` elements: (probabilities, targets) for `bce`, (logits, targets) for
    /// `bce_with_logits`.
    fn inputs(self, n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut next = lcg(0x9E37_79B9_7F4A_7C15);
        let x = match self {
            Binary::Bce => (0..n).map(|_| unit(next())).collect(),
            Binary::BceWithLogits => (0..n).map(|_| logit(next())).collect(),
        };
        let t = (0..n).map(|_| unit(next())).collect();
        (x, t)
    }

    /// The `losskit` kernel, mean reduction.
    fn kernel(self, x: &[f32], t: &[f32]) -> f32 {
        let m = Reduction::Mean;
        match self {
            Binary::Bce => losskit::bce(x, t, m),
            Binary::BceWithLogits => losskit::bce_with_logits(x, t, m),
        }
        .expect("inputs have equal lengths and valid values")
    }

    /// The scalar oracle, mean reduction.
    fn reference(self, x: &[f32], t: &[f32]) -> f32 {
        let pairs = x.iter().zip(t);
        let m = Reduction::Mean;
        match self {
            Binary::Bce => reference::reduce(pairs.map(|(&p, &t)| reference::bce(p, t)), m),
            Binary::BceWithLogits => reference::reduce(
                pairs.map(|(&x, &t)| reference::bce_with_logits(x, t, None)),
                m,
            ),
        }
    }
}

/// The scalar oracle of mean cross-entropy: the `f64` sum of the rows' losses over the rows.
fn ce_reference(logits: &[f32], classes: usize, labels: &[i64]) -> f64 {
    let sum: f64 = logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            reference::cross_entropy_row(row, RowTarget::Class(label as usize), None, 0.0).0
        })
        .sum();
    sum / labels.len() as f64
}

fn bench_cross_entropy(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (rows, classes, label) in CE_SHAPES.into_iter().filter(|&(r, c, _)| r * c <= max) {
        let n = rows * classes;
        // Generated when the first benchmark of this shape runs (never, if the filter skips them
        // all) and dropped at the end of this iteration.
        let data: OnceCell<(Vec<f32>, Vec<i64>)> = OnceCell::new();
        let get = || {
            let (logits, labels) = data.get_or_init(|| ce_inputs(rows, classes));
            (logits.as_slice(), labels.as_slice())
        };
        for threads in Threads::BOTH {
            let mut g = c.benchmark_group(format!("ce_f32_{}", threads.suffix()));
            g.throughput(Throughput::Bytes((n * size_of::<f32>()) as u64));
            configure(&mut g, n * size_of::<f32>());
            g.bench_function(BenchmarkId::new("losskit", label), |b| {
                let (logits, labels) = get();
                threads.run(pool, || {
                    b.iter(|| {
                        losskit::cross_entropy(
                            black_box(logits),
                            classes,
                            black_box(labels),
                            Reduction::Mean,
                        )
                        .expect("valid shape and labels")
                    })
                });
            });
            g.bench_function(BenchmarkId::new("reference", label), |b| {
                let (logits, labels) = get();
                threads.run(pool, || {
                    b.iter(|| ce_reference(black_box(logits), classes, black_box(labels)))
                });
            });
            g.bench_function(BenchmarkId::new("ceiling", label), |b| {
                let (logits, _) = get();
                // Every shape has an even number of logits: the halves cover all of them.
                let (lo, hi) = logits.split_at(n / 2);
                threads.run(pool, || {
                    b.iter(|| threads.ceiling(black_box(lo), black_box(hi)))
                });
            });
            // One vector exp per logit from L1: the other half of the roofline.
            g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
                let buffer = exp_buffer();
                threads.run(pool, || {
                    b.iter(|| threads.exp_ceiling(black_box(&buffer), n))
                });
            });
            g.finish();
        }
    }
}

fn bench_binary(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (n, label) in SIZES.into_iter().filter(|&(n, _)| n <= max) {
        for loss in Binary::ALL {
            // One loss's inputs at a time (512 MiB at 64M): generated on first use, dropped at
            // the end of this iteration.
            let data: OnceCell<(Vec<f32>, Vec<f32>)> = OnceCell::new();
            let get = || {
                let (x, t) = data.get_or_init(|| loss.inputs(n));
                (x.as_slice(), t.as_slice())
            };
            for threads in Threads::BOTH {
                let mut g = c.benchmark_group(format!("{}_f32_{}", loss.name(), threads.suffix()));
                g.throughput(Throughput::Bytes((2 * n * size_of::<f32>()) as u64));
                configure(&mut g, 2 * n * size_of::<f32>());
                g.bench_function(BenchmarkId::new("losskit", label), |b| {
                    let (x, t) = get();
                    threads.run(pool, || b.iter(|| loss.kernel(black_box(x), black_box(t))));
                });
                g.bench_function(BenchmarkId::new("reference", label), |b| {
                    let (x, t) = get();
                    threads.run(pool, || {
                        b.iter(|| loss.reference(black_box(x), black_box(t)))
                    });
                });
                g.bench_function(BenchmarkId::new("ceiling", label), |b| {
                    let (x, t) = get();
                    threads.run(pool, || {
                        b.iter(|| threads.ceiling(black_box(x), black_box(t)))
                    });
                });
                g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
                    let buffer = exp_buffer();
                    threads.run(pool, || {
                        b.iter(|| threads.exp_ceiling(black_box(&buffer), n))
                    });
                });
                g.finish();
            }
        }
    }
}

/// Shapes of the statistics and distillation groups.
const STATS_SHAPES: [(usize, usize, &str); 2] =
    [(8192, 1000, "8192x1000"), (256, 128_256, "256x128256")];
const KL_SHAPE: (usize, usize, &str) = (256, 128_256, "256x128256");

/// f32 buffers holding `bytes` bytes, split in two: the read ceiling of 16-bit data.
fn ceiling_buffers(bytes: usize) -> (Vec<f32>, Vec<f32>) {
    let n = bytes / size_of::<f32>();
    let mut next = lcg(0x0123_4567_89AB_CDEF);
    let mut fill = |k: usize| (0..k).map(|_| unit(next())).collect::<Vec<f32>>();
    (fill(n / 2), fill(n - n / 2))
}

/// Logits of one storage type for the statistics and distillation groups.
trait Logit: losskit::Storage<Compute = f32> + Copy + Send + Sync {
    const NAME: &'static str;
    fn of(x: f32) -> Self;
    /// f32 buffers of `bytes` bytes for [`Logit::ceiling`] (empty where it reads the data).
    fn spare(bytes: usize) -> (Vec<f32>, Vec<f32>);
    /// The one-thread read ceiling of the bytes of `x` and `y`: the slices themselves for f32,
    /// the `spare` buffers of the same bytes for a 16-bit type.
    fn ceiling(x: &[Self], y: &[Self], spare: &(Vec<f32>, Vec<f32>)) -> f32;
}
impl Logit for f32 {
    const NAME: &'static str = "f32";
    fn of(x: f32) -> f32 {
        x
    }
    fn spare(_: usize) -> (Vec<f32>, Vec<f32>) {
        (Vec::new(), Vec::new())
    }
    fn ceiling(x: &[f32], y: &[f32], _: &(Vec<f32>, Vec<f32>)) -> f32 {
        Threads::One.ceiling(x, y)
    }
}
impl Logit for bf16 {
    const NAME: &'static str = "bf16";
    fn of(x: f32) -> bf16 {
        bf16::from_f32(x)
    }
    fn spare(bytes: usize) -> (Vec<f32>, Vec<f32>) {
        ceiling_buffers(bytes)
    }
    fn ceiling(_: &[bf16], _: &[bf16], (lo, hi): &(Vec<f32>, Vec<f32>)) -> f32 {
        Threads::One.ceiling(lo, hi)
    }
}

fn bench_stats<L: Logit>(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (rows, classes, label) in STATS_SHAPES.into_iter().filter(|&(r, c, _)| r * c <= max) {
        let n = rows * classes;
        let bytes = n * size_of::<L>();
        type Inputs<L> = (Vec<L>, Vec<i64>, (Vec<f32>, Vec<f32>));
        let data: OnceCell<Inputs<L>> = OnceCell::new();
        let get = || {
            data.get_or_init(|| {
                let (logits, labels) = ce_inputs(rows, classes);
                let logits = logits.into_iter().map(L::of).collect();
                (logits, labels, L::spare(bytes))
            })
        };
        let mut g = c.benchmark_group(format!("ce_stats_{}_1t", <L as Logit>::NAME));
        g.throughput(Throughput::Bytes(bytes as u64));
        configure(&mut g, bytes);
        g.bench_function(BenchmarkId::new("loss", label), |b| {
            let (logits, labels, _) = get();
            pool.install(|| {
                b.iter(|| {
                    CrossEntropy::new()
                        .loss(
                            black_box(logits.as_slice()),
                            classes,
                            black_box(labels.as_slice()),
                            Reduction::Mean,
                        )
                        .expect("valid shape and labels")
                })
            });
        });
        g.bench_function(BenchmarkId::new("stats", label), |b| {
            let (logits, labels, _) = get();
            pool.install(|| {
                b.iter(|| {
                    CrossEntropy::new()
                        .stats(
                            black_box(logits.as_slice()),
                            classes,
                            black_box(labels.as_slice()),
                        )
                        .expect("valid shape and labels")
                })
            });
        });
        g.bench_function(BenchmarkId::new("softcap", label), |b| {
            // Gemma 2's softcap: a vector tanh per logit on top of the loss's sweep.
            let (logits, labels, _) = get();
            pool.install(|| {
                b.iter(|| {
                    CrossEntropy::new()
                        .softcap(30.0)
                        .loss(
                            black_box(logits.as_slice()),
                            classes,
                            black_box(labels.as_slice()),
                            Reduction::Mean,
                        )
                        .expect("valid shape and labels")
                })
            });
        });
        g.bench_function(BenchmarkId::new("ceiling", label), |b| {
            let (logits, _, spare) = get();
            // Every shape has an even number of logits: the halves cover all of them.
            let (lo, hi) = logits.split_at(n / 2);
            pool.install(|| b.iter(|| L::ceiling(black_box(lo), black_box(hi), spare)));
        });
        g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
            let buffer = exp_buffer();
            pool.install(|| b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), n)));
        });
        g.finish();
    }
}

fn bench_kl<L: Logit>(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    let (rows, classes, label) = KL_SHAPE;
    let n = rows * classes;
    if n > max {
        return;
    }
    let bytes = 2 * n * size_of::<L>();
    type Inputs<L> = (Vec<L>, Vec<L>, Vec<L>, (Vec<f32>, Vec<f32>));
    let data: OnceCell<Inputs<L>> = OnceCell::new();
    let get = || {
        data.get_or_init(|| {
            let (student, _) = ce_inputs(rows, classes);
            let mut next = lcg(0x5851_F42D_4C95_7F2D);
            let teacher = (0..n).map(|_| L::of(logit(next()))).collect();
            let student = student.into_iter().map(L::of).collect();
            (student, teacher, vec![L::of(0.0); n], L::spare(bytes))
        })
    };
    let mut g = c.benchmark_group(format!("kl_div_logits_{}_1t", <L as Logit>::NAME));
    g.throughput(Throughput::Bytes(bytes as u64));
    configure(&mut g, bytes);
    g.bench_function(BenchmarkId::new("losskit", label), |b| {
        let (student, teacher, _, _) = get();
        pool.install(|| {
            b.iter(|| {
                losskit::kl_div_logits(
                    black_box(student.as_slice()),
                    black_box(teacher.as_slice()),
                    classes,
                    1.0,
                    Reduction::Mean,
                )
                .expect("valid shapes")
            })
        });
    });
    g.bench_function(BenchmarkId::new("and_grad", label), |b| {
        let (student, teacher, grad, _) = get();
        let mut grad = grad.clone();
        pool.install(|| {
            b.iter(|| {
                losskit::kl_div_logits_and_grad(
                    black_box(student.as_slice()),
                    black_box(teacher.as_slice()),
                    classes,
                    1.0,
                    Reduction::Mean,
                    &mut grad,
                )
                .expect("valid shapes")
            })
        });
    });
    g.bench_function(BenchmarkId::new("ceiling", label), |b| {
        let (student, teacher, _, spare) = get();
        // Two streams, as the kernel reads them.
        pool.install(|| b.iter(|| L::ceiling(black_box(student), black_box(teacher), spare)));
    });
    g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
        let buffer = exp_buffer();
        pool.install(|| b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), 2 * n)));
    });
    g.finish();
}

/// Vocabulary-sharded cross-entropy at 256x128256 in four even shards, every shard's work on
/// one thread: `vocab_loss` (each shard's `vocab_rows`, the merge, `vocab_loss`) beside `loss`,
/// and `vocab_grad` (that, then every shard's `vocab_grad`) beside `loss_and_grad`, with the
/// read ceiling of the logits. What a shard costs is a quarter of the sharded figures; the
/// ratios say what sharding adds.
fn bench_vocab(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    let (rows, classes, label) = KL_SHAPE;
    let n = rows * classes;
    if n > max {
        return;
    }
    const SHARDS: usize = 4;
    let width = classes / SHARDS;
    let bytes = n * size_of::<f32>();
    type Inputs = (Vec<f32>, Vec<i64>, Vec<Vec<f32>>, Vec<f32>);
    let data: OnceCell<Inputs> = OnceCell::new();
    let get = || {
        data.get_or_init(|| {
            let (logits, labels) = ce_inputs(rows, classes);
            let shards = (0..SHARDS)
                .map(|s| {
                    logits
                        .chunks_exact(classes)
                        .flat_map(|r| r[s * width..(s + 1) * width].iter().copied())
                        .collect()
                })
                .collect();
            (logits, labels, shards, vec![0.0; n])
        })
    };
    let merged = |shards: &[Vec<f32>], labels: &[i64], parts: &mut [Vec<VocabRow>]| {
        let ce = CrossEntropy::new();
        for (s, (x, part)) in shards.iter().zip(parts.iter_mut()).enumerate() {
            let shard = VocabShard::new(s * width, width, classes).expect("a valid shard");
            ce.vocab_rows(black_box(x.as_slice()), shard, labels, part)
                .expect("valid shapes");
        }
        let mut rows = parts[0].clone();
        for part in &parts[1..] {
            rows.iter_mut().zip(part).for_each(|(r, p)| *r = r.merge(p));
        }
        rows
    };
    let mut g = c.benchmark_group("ce_vocab_f32_1t");
    g.throughput(Throughput::Bytes(bytes as u64));
    configure(&mut g, bytes);
    g.bench_function(BenchmarkId::new("loss", label), |b| {
        let (logits, labels, _, _) = get();
        pool.install(|| {
            b.iter(|| {
                CrossEntropy::new()
                    .loss(
                        black_box(logits.as_slice()),
                        classes,
                        labels,
                        Reduction::Mean,
                    )
                    .expect("valid shape and labels")
            })
        });
    });
    g.bench_function(BenchmarkId::new("vocab_loss", label), |b| {
        let (_, labels, shards, _) = get();
        let mut parts = vec![vec![VocabRow::default(); rows]; SHARDS];
        pool.install(|| {
            b.iter(|| {
                let rows = merged(shards, labels, &mut parts);
                CrossEntropy::<f32>::new()
                    .vocab_loss(&rows, labels, Reduction::Mean)
                    .expect("complete rows")
            })
        });
    });
    g.bench_function(BenchmarkId::new("loss_and_grad", label), |b| {
        let (logits, labels, _, grad) = get();
        let mut grad = grad.clone();
        pool.install(|| {
            b.iter(|| {
                CrossEntropy::new()
                    .loss_and_grad(
                        black_box(logits.as_slice()),
                        classes,
                        labels,
                        Reduction::Mean,
                        &mut grad,
                    )
                    .expect("valid shape and labels")
            })
        });
    });
    g.bench_function(BenchmarkId::new("vocab_grad", label), |b| {
        let (_, labels, shards, grad) = get();
        let mut grad = grad.clone();
        let mut parts = vec![vec![VocabRow::default(); rows]; SHARDS];
        pool.install(|| {
            b.iter(|| {
                let merged_rows = merged(shards, labels, &mut parts);
                let ce = CrossEntropy::new();
                for (s, (x, g)) in shards
                    .iter()
                    .zip(grad.chunks_exact_mut(rows * width))
                    .enumerate()
                {
                    let shard = VocabShard::new(s * width, width, classes).expect("a valid shard");
                    ce.vocab_grad(
                        x.as_slice(),
                        shard,
                        labels,
                        &merged_rows,
                        Reduction::Mean,
                        g,
                    )
                    .expect("complete rows");
                }
            })
        });
    });
    g.bench_function(BenchmarkId::new("ceiling", label), |b| {
        let (logits, _, _, _) = get();
        let (lo, hi) = logits.split_at(n / 2);
        pool.install(|| b.iter(|| Threads::One.ceiling(black_box(lo), black_box(hi))));
    });
    g.finish();
}

fn classification(c: &mut Criterion) {
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread rayon pool");
    let max = max_size();
    bench_cross_entropy(c, &pool, max);
    bench_binary(c, &pool, max);
    bench_stats::<f32>(c, &pool, max);
    bench_stats::<bf16>(c, &pool, max);
    bench_kl::<f32>(c, &pool, max);
    bench_kl::<bf16>(c, &pool, max);
    bench_vocab(c, &pool, max);
}

criterion_group!(benches, classification);
criterion_main!(benches);
