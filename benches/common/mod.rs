//! What the bench files share: the thread settings, the read ceiling on them, the input
//! generator, criterion's per-size settings and the `LOSSKIT_BENCH_MAX` filter.
//!
//! Each bench includes this module (`mod common;`) and uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use criterion::{measurement::WallTime, BenchmarkGroup, SamplingMode};
use losskit::Float;
use rayon::prelude::*;
use rayon::ThreadPool;

/// Elements per chunk of the all-threads ceiling: the reduce driver's chunk size.
const CHUNK: usize = 1 << 16;

#[derive(Clone, Copy)]
pub enum Threads {
    /// Inside the one-thread pool.
    One,
    /// On rayon's global pool.
    All,
}

impl Threads {
    pub const BOTH: [Threads; 2] = [Threads::One, Threads::All];

    /// The suffix of the group name: `1t` or `mt`.
    pub fn suffix(self) -> &'static str {
        match self {
            Threads::One => "1t",
            Threads::All => "mt",
        }
    }

    /// Runs `f` (one criterion routine: many timed iterations) on this many threads.
    pub fn run(self, pool: &ThreadPool, f: impl FnOnce() + Send) {
        match self {
            Threads::One => pool.install(f),
            Threads::All => f(),
        }
    }

    /// The read ceiling of `x` and `y` on this many threads.
    pub fn ceiling<T: Float + std::iter::Sum>(self, x: &[T], y: &[T]) -> T {
        match self {
            Threads::One => losskit::read_ceiling(x, y),
            Threads::All => x
                .par_chunks(CHUNK)
                .zip(y.par_chunks(CHUNK))
                .map(|(a, b)| losskit::read_ceiling(a, b))
                .sum(),
        }
    }
}

/// Values per pass of the exp ceiling: 16 KiB of f32, resident in L1.
const EXP_BUFFER: usize = 4096;

/// The L1-resident buffer the exp ceiling sweeps: logits in [-8, 8), as the benches' inputs.
pub fn exp_buffer() -> Vec<f32> {
    let mut next = lcg(0x5DEE_CE66_D1CE_4E5B);
    (0..EXP_BUFFER).map(|_| logit(next())).collect()
}

impl Threads {
    /// The exp ceiling of `n` elements on this many threads: `losskit::exp_ceiling` over the
    /// L1-resident `buffer` (from [`exp_buffer`]), `n / buffer.len()` passes (at least one).
    pub fn exp_ceiling(self, buffer: &[f32], n: usize) -> f32 {
        let passes = n.div_ceil(buffer.len()).max(1);
        match self {
            Threads::One => losskit::exp_ceiling(buffer, passes),
            Threads::All => (0..passes)
                .into_par_iter()
                .with_min_len(16)
                .map(|_| losskit::exp_ceiling(buffer, 1))
                .sum(),
        }
    }
}

/// A 64-bit LCG: deterministic, about a nanosecond a value, and irregular enough that branchy
/// code cannot predict it. Each call returns the new state; use its high bits.
pub fn lcg(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state
    }
}

/// The top 24 bits of an LCG state as a value in [0, 1).
pub fn unit(state: u64) -> f32 {
    (state >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// The top 24 bits of an LCG state as a logit in [-8, 8) (exact: a multiple of 2^-20).
pub fn logit(state: u64) -> f32 {
    unit(state) * 16.0 - 8.0
}

/// `rows · classes` logits in [-8, 8) and `rows` labels pseudo-random in `0..classes`.
pub fn ce_inputs(rows: usize, classes: usize) -> (Vec<f32>, Vec<i64>) {
    let mut next = lcg(0x2545_F491_4F6C_DD1D);
    let logits = (0..rows * classes).map(|_| logit(next())).collect();
    let labels = (0..rows)
        .map(|_| ((next() >> 32) % classes as u64) as i64)
        .collect();
    (logits, labels)
}

/// Criterion settings per size (`bytes` read by one iteration), so that a full run stays within
/// minutes: from 16 MiB up (milliseconds an iteration, and up to a second or two for the
/// scalar reference) ten flat samples; from 1 MiB 30 samples; below, 100.
pub fn configure(g: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    g.warm_up_time(Duration::from_secs(1));
    if bytes >= 16 << 20 {
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(3));
    } else if bytes >= 1 << 20 {
        g.sample_size(30).measurement_time(Duration::from_secs(2));
    } else {
        g.sample_size(100).measurement_time(Duration::from_secs(2));
    }
}

/// `LOSSKIT_BENCH_MAX`: the largest size to run, in elements, with an optional `K`/`M` suffix
/// (binary: `1M` is 2^20). Unset means every size.
pub fn max_size() -> usize {
    let Ok(s) = std::env::var("LOSSKIT_BENCH_MAX") else {
        return usize::MAX;
    };
    let t = s.trim();
    let (digits, scale) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1 << 20),
        _ => (t, 1),
    };
    match digits.parse::<usize>() {
        Ok(v) => v.saturating_mul(scale),
        Err(_) => panic!(
            "LOSSKIT_BENCH_MAX={s:?}: expected a number of elements such as 65536, 16K or 1M"
        ),
    }
}
