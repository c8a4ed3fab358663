//! Pointwise regression losses (mse, l1, huber; f32 and f64) against the scalar reference and
//! the memory-read ceiling, at 16K (L1/L2), 1M (L3) and 64M (DRAM) elements.
//!
//! Every group holds, at each size, the three things to compare, measured in the same run:
//!
//! - `losskit`: the kernel, `Reduction::Mean` (Huber with `delta = 1`);
//! - `reference`: the scalar oracle, `reference::reduce(x.zip(y).map(reference::<loss>), Mean)`;
//! - `ceiling`: `losskit::read_ceiling` — a plain SIMD sum of the same bytes on the best tier.
//!   These losses need no `exp` (a few adds and multiplies per element), so their roofline is
//!   the read ceiling alone; the exp-bound losses' groups (classification, gradients, half) also
//!   hold the exp ceiling.
//!
//! `partial_mse_<type>_1t` (1M only) compares the exact partial path, `partial::mse`, with
//! `losskit` on the same inputs.
//!
//! Groups are named `<loss>_<type>_<threads>`: `_1t` runs inside a one-thread rayon pool, `_mt`
//! on rayon's global pool (all threads). On all threads the ceiling is split into the same
//! 65536-element chunks as the reduce driver and summed with `par_chunks`; the reference is
//! scalar and single-threaded in both. Throughput is bytes read (`2 · n · size_of::<T>()`), so
//! `losskit / ceiling` and `losskit / reference` can be read straight off one group:
//!
//! ```text
//! cargo bench --bench pointwise                      # everything (~7 minutes)
//! cargo bench --bench pointwise -- mse_f32_1t        # one group
//! cargo bench --bench pointwise -- '_f32_.*/1M'      # a regex over ids
//! cargo bench --bench pointwise -- --test            # each benchmark once (smoke test)
//! LOSSKIT_BENCH_MAX=1M cargo bench --bench pointwise # skip sizes above 1M elements
//! ```
//!
//! Inputs (512 MiB a pair at 64M f32, 1 GiB at 64M f64) are generated on first use by a
//! deterministic LCG, shared by all groups of one size, and dropped before the next size; sizes
//! whose benchmarks are all filtered out are never allocated.

mod common;

use std::cell::OnceCell;
use std::hint::black_box;
use std::mem::size_of;

use common::{configure, lcg, max_size, Threads};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use losskit::{reference, Float, Reduction};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Sizes in elements, with the label used as the benchmark parameter.
const SIZES: [(usize, &str); 3] = [(16 << 10, "16K"), (1 << 20, "1M"), (64 << 20, "64M")];

/// The Huber threshold benchmarked. Inputs are spread over [-2, 2), so `|x - y|` falls on both
/// sides of it, unpredictably.
const HUBER_DELTA: f64 = 1.0;

/// The element types benchmarked, with what the bench needs beyond [`Float`].
trait Elem: Float + std::iter::Sum {
    const TY: &'static str;
    fn of_f64(v: f64) -> Self;
}

impl Elem for f32 {
    const TY: &'static str = "f32";
    fn of_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for f64 {
    const TY: &'static str = "f64";
    fn of_f64(v: f64) -> Self {
        v
    }
}

#[derive(Clone, Copy)]
enum Loss {
    Mse,
    L1,
    Huber,
}

impl Loss {
    const ALL: [Loss; 3] = [Loss::Mse, Loss::L1, Loss::Huber];

    fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::L1 => "l1",
            Loss::Huber => "huber",
        }
    }

    /// The `losskit` kernel, mean reduction.
    fn kernel<T: Elem>(self, x: &[T], y: &[T]) -> T {
        let m = Reduction::Mean;
        match self {
            Loss::Mse => losskit::mse(x, y, m),
            Loss::L1 => losskit::l1(x, y, m),
            Loss::Huber => losskit::huber(x, y, T::of_f64(HUBER_DELTA), m),
        }
        .expect("inputs have equal lengths")
    }

    /// The scalar oracle, mean reduction.
    fn reference<T: Elem>(self, x: &[T], y: &[T]) -> T {
        let pairs = x.iter().zip(y);
        let m = Reduction::Mean;
        match self {
            Loss::Mse => reference::reduce(pairs.map(|(&a, &b)| reference::mse(a, b)), m),
            Loss::L1 => reference::reduce(pairs.map(|(&a, &b)| reference::l1(a, b)), m),
            Loss::Huber => {
                let delta = T::of_f64(HUBER_DELTA);
                reference::reduce(pairs.map(|(&a, &b)| reference::huber(a, b, delta)), m)
            }
        }
    }
}

/// Two inputs of `n` elements in [-2, 2) from a 64-bit LCG: deterministic, about a nanosecond an
/// element, and irregular enough that branchy code cannot predict it.
fn inputs<T: Elem>(n: usize) -> (Vec<T>, Vec<T>) {
    let mut state = lcg(0x9E37_79B9_7F4A_7C15);
    let mut next = move || T::of_f64((state() >> 40) as f64 * (4.0 / (1u64 << 24) as f64) - 2.0);
    let x = (0..n).map(|_| next()).collect();
    let y = (0..n).map(|_| next()).collect();
    (x, y)
}

fn bench_type<T: Elem>(c: &mut Criterion, pool: &ThreadPool, max: usize) {
    for (n, label) in SIZES.into_iter().filter(|&(n, _)| n <= max) {
        // Generated when the first benchmark of this size runs (never, if the filter skips them
        // all) and dropped at the end of this iteration.
        let data: OnceCell<(Vec<T>, Vec<T>)> = OnceCell::new();
        let get = || {
            let (x, y) = data.get_or_init(|| inputs(n));
            (x.as_slice(), y.as_slice())
        };
        for loss in Loss::ALL {
            for threads in [Threads::One, Threads::All] {
                let mut g =
                    c.benchmark_group(format!("{}_{}_{}", loss.name(), T::TY, threads.suffix()));
                g.throughput(Throughput::Bytes((2 * n * size_of::<T>()) as u64));
                configure(&mut g, 2 * n * size_of::<T>());
                g.bench_function(BenchmarkId::new("losskit", label), |b| {
                    let (x, y) = get();
                    threads.run(pool, || b.iter(|| loss.kernel(black_box(x), black_box(y))));
                });
                g.bench_function(BenchmarkId::new("reference", label), |b| {
                    let (x, y) = get();
                    threads.run(pool, || {
                        b.iter(|| loss.reference(black_box(x), black_box(y)))
                    });
                });
                g.bench_function(BenchmarkId::new("ceiling", label), |b| {
                    let (x, y) = get();
                    threads.run(pool, || {
                        b.iter(|| threads.ceiling(black_box(x), black_box(y)))
                    });
                });
                g.finish();
            }
        }
        if n == 1 << 20 {
            bench_partial(c, pool, label, &get);
        }
    }
}

/// The exact partial path (`partial::mse`: every element's loss added to an exact accumulator,
/// the state an engine merges) against the one-call `mse` on the same inputs, one thread.
fn bench_partial<'a, T: Elem>(
    c: &mut Criterion,
    pool: &ThreadPool,
    label: &str,
    get: &impl Fn() -> (&'a [T], &'a [T]),
) {
    let bytes = 2 * (1 << 20) * size_of::<T>();
    let mut g = c.benchmark_group(format!("partial_mse_{}_1t", T::TY));
    g.throughput(Throughput::Bytes(bytes as u64));
    configure(&mut g, bytes);
    g.bench_function(BenchmarkId::new("partial", label), |b| {
        let (x, y) = get();
        pool.install(|| {
            b.iter(|| {
                losskit::partial::mse(black_box(x), black_box(y))
                    .expect("inputs have equal lengths")
                    .finish(Reduction::Mean)
            })
        });
    });
    g.bench_function(BenchmarkId::new("losskit", label), |b| {
        let (x, y) = get();
        pool.install(|| b.iter(|| Loss::Mse.kernel(black_box(x), black_box(y))));
    });
    g.finish();
}

fn pointwise(c: &mut Criterion) {
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread rayon pool");
    let max = max_size();
    bench_type::<f32>(c, &pool, max);
    bench_type::<f64>(c, &pool, max);
}

criterion_group!(benches, pointwise);
criterion_main!(benches);
