//! Half-precision storage: bf16 and f16 inputs read in place, computed in f32.
//!
//! Each group holds, measured in the same run: the `losskit` kernel on 16-bit inputs, the same
//! kernel on the f32 copy of those inputs (`f32`, twice the bytes), and the read ceiling of the
//! 16-bit inputs' bytes (`ceiling`: the SIMD sum of f32 buffers of the same byte size); the
//! cross-entropy groups also hold `exp_ceiling` (one vector `exp` per logit over an L1-resident
//! buffer), so the roofline, the larger of the two ceilings, is read off the same group. One
//! thread, as the targets in BENCHMARKS.md are stated.
//!
//! ```text
//! cargo bench --bench half                           # everything
//! LOSSKIT_FORCE=avx2 cargo bench --bench half        # the AVX2 tier on an AVX-512 machine
//! ```
//!
//! `LOSSKIT_BENCH_MAX` (see `common`) skips the larger sizes.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;

use common::{ce_inputs, configure, exp_buffer, lcg, max_size, Threads};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use losskit::{bf16, f16, Reduction};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Cross-entropy shapes `(rows, classes)` with their labels.
const CE_SHAPES: [(usize, usize, &str); 2] =
    [(8192, 1000, "8192x1000"), (256, 128_256, "256x128256")];

/// Pointwise sizes in elements.
const SIZES: [(usize, &str); 2] = [(1 << 20, "1M"), (64 << 20, "64M")];

/// f32 buffers holding as many bytes as `n` 16-bit values, split in two for the ceiling.
fn ceiling_buffers(n: usize) -> (Vec<f32>, Vec<f32>) {
    let half = n / 4;
    let mut next = lcg(0x0123_4567_89AB_CDEF);
    let mut fill = |k: usize| (0..k).map(|_| common::unit(next())).collect::<Vec<f32>>();
    (fill(half), fill(n / 2 - half))
}

fn bench_cross_entropy(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (rows, classes, label) in CE_SHAPES.into_iter().filter(|&(r, c, _)| r * c <= max) {
        let n = rows * classes;
        let (logits, labels) = ce_inputs(rows, classes);
        let logits_bf16: Vec<bf16> = logits.iter().map(|&x| bf16::from_f32(x)).collect();
        // The f32 kernel on the same (rounded) values, so the two read the same numbers.
        let logits_f32: Vec<f32> = logits_bf16.iter().map(|x| x.to_f32()).collect();
        drop(logits);
        let (lo, hi) = ceiling_buffers(n);
        let mut g = c.benchmark_group("ce_bf16_1t");
        g.throughput(Throughput::Bytes((n * 2) as u64));
        configure(&mut g, n * 2);
        g.bench_function(BenchmarkId::new("losskit", label), |b| {
            pool.install(|| {
                b.iter(|| {
                    losskit::cross_entropy(
                        black_box(&logits_bf16),
                        classes,
                        &labels,
                        Reduction::Mean,
                    )
                    .expect("valid shape and labels")
                })
            })
        });
        g.bench_function(BenchmarkId::new("f32", label), |b| {
            pool.install(|| {
                b.iter(|| {
                    losskit::cross_entropy(
                        black_box(&logits_f32),
                        classes,
                        &labels,
                        Reduction::Mean,
                    )
                    .expect("valid shape and labels")
                })
            })
        });
        g.bench_function(BenchmarkId::new("ceiling", label), |b| {
            pool.install(|| b.iter(|| Threads::One.ceiling(black_box(&lo), black_box(&hi))))
        });
        g.bench_function(BenchmarkId::new("exp_ceiling", label), |b| {
            let buffer = exp_buffer();
            pool.install(|| b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), n)))
        });
        g.finish();
    }
}

/// Two inputs in a 16-bit type and their f32 twins.
type Inputs<H> = (Vec<H>, Vec<H>, Vec<f32>, Vec<f32>);

/// `mse` of `n` 16-bit values of type `H` made by `of`, against its f32 twin and the ceiling.
fn bench_mse<H: losskit::Storage<Compute = f32>>(
    c: &mut Criterion,
    pool: &ThreadPool,
    max: usize,
    name: &str,
    of: fn(f32) -> H,
    to: fn(H) -> f32,
) {
    for (n, label) in SIZES.into_iter().filter(|&(n, _)| n <= max) {
        let data: OnceCell<Inputs<H>> = OnceCell::new();
        let get = || {
            data.get_or_init(|| {
                let mut next = lcg(0x9E37_79B9_7F4A_7C15);
                let mut values = |k: usize| -> Vec<H> {
                    (0..k)
                        .map(|_| of(common::unit(next()) * 4.0 - 2.0))
                        .collect()
                };
                let (x, y) = (values(n), values(n));
                let (xf, yf) = (
                    x.iter().map(|&v| to(v)).collect(),
                    y.iter().map(|&v| to(v)).collect(),
                );
                (x, y, xf, yf)
            })
        };
        let (lo, hi) = ceiling_buffers(2 * n);
        let mut g = c.benchmark_group(format!("mse_{name}_1t"));
        g.throughput(Throughput::Bytes((4 * n) as u64));
        configure(&mut g, 4 * n);
        g.bench_function(BenchmarkId::new("losskit", label), |b| {
            let (x, y, _, _) = get();
            pool.install(|| {
                b.iter(|| losskit::mse(black_box(x), black_box(y), Reduction::Mean).unwrap())
            })
        });
        g.bench_function(BenchmarkId::new("f32", label), |b| {
            let (_, _, x, y) = get();
            pool.install(|| {
                b.iter(|| losskit::mse(black_box(x), black_box(y), Reduction::Mean).unwrap())
            })
        });
        g.bench_function(BenchmarkId::new("ceiling", label), |b| {
            pool.install(|| b.iter(|| Threads::One.ceiling(black_box(&lo), black_box(&hi))))
        });
        g.finish();
    }
}

fn half(c: &mut Criterion) {
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread rayon pool");
    let max = max_size();
    bench_cross_entropy(c, &pool, max);
    bench_mse(c, &pool, max, "bf16", bf16::from_f32, bf16::to_f32);
    bench_mse(c, &pool, max, "f16", f16::from_f32, f16::to_f32);
}

criterion_group!(benches, half);
criterion_main!(benches);
