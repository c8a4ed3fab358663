//! Small calls, as an inference gateway makes them (one request at a time, on the caller's
//! thread): what a call costs when the data is small enough that dispatch and setup could
//! dominate. One group, `small_calls`, on the calling thread (no pool: a call this small is one
//! leaf of the engine's tree and never reaches rayon):
//!
//! - `cross_entropy_1x32000/{losskit,read_ceiling,exp_ceiling}`: one row of a 32000-token
//!   vocabulary (`CrossEntropy::loss`, mean), against the read ceiling of its 125 KiB and the exp
//!   ceiling (one vector `exp` per element from L1). The row sits in L2, so the exp ceiling is
//!   its roofline. The exp ceiling runs 8 whole passes over its 4096-value buffer, 32768 exps:
//!   scale its time by 32000/32768 (a ragged last pass would time the ceiling's own tail, about
//!   10% slower, not the exps).
//! - `mse_1000/{losskit,read_ceiling,reference}` and `bce_with_logits_64/{losskit,reference}`:
//!   the call against the scalar oracle over the same elements (which has no dispatch or
//!   setup), and for mse against the read ceiling of its 8 KB (a plain sum, also one call).
//!
//! ```text
//! cargo bench --bench small_calls                  # the group (~30 s)
//! cargo bench --bench small_calls -- --test        # each benchmark once (smoke test)
//! ```

mod common;

use std::hint::black_box;

use common::{ce_inputs, exp_buffer, lcg, logit, unit, Threads};
use criterion::{criterion_group, criterion_main, Criterion};
use losskit::{reference, CrossEntropy, Reduction};

/// One row of a 32000-token vocabulary (Llama 2's).
const VOCAB: usize = 32_000;

fn small_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("small_calls");
    g.sample_size(100);

    let (row, label) = ce_inputs(1, VOCAB);
    let half = VOCAB / 2;
    let buffer = exp_buffer();
    g.bench_function("cross_entropy_1x32000/losskit", |b| {
        b.iter(|| {
            CrossEntropy::new()
                .loss(
                    black_box(row.as_slice()),
                    VOCAB,
                    black_box(label.as_slice()),
                    Reduction::Mean,
                )
                .expect("valid shape and label")
        })
    });
    g.bench_function("cross_entropy_1x32000/read_ceiling", |b| {
        b.iter(|| losskit::read_ceiling(black_box(&row[..half]), black_box(&row[half..])))
    });
    g.bench_function("cross_entropy_1x32000/exp_ceiling", |b| {
        b.iter(|| Threads::One.exp_ceiling(black_box(&buffer), VOCAB))
    });

    let mut next = lcg(0x9E37_79B9_7F4A_7C15);
    let x: Vec<f32> = (0..1000).map(|_| unit(next()) * 4.0 - 2.0).collect();
    let y: Vec<f32> = (0..1000).map(|_| unit(next()) * 4.0 - 2.0).collect();
    g.bench_function("mse_1000/losskit", |b| {
        b.iter(|| {
            losskit::mse(black_box(&x), black_box(&y), Reduction::Mean).expect("equal lengths")
        })
    });
    g.bench_function("mse_1000/read_ceiling", |b| {
        b.iter(|| losskit::read_ceiling(black_box(&x), black_box(&y)))
    });
    g.bench_function("mse_1000/reference", |b| {
        b.iter(|| {
            let pairs = black_box(&x).iter().zip(black_box(&y));
            reference::reduce(pairs.map(|(&a, &b)| reference::mse(a, b)), Reduction::Mean)
        })
    });

    let z: Vec<f32> = (0..64).map(|_| logit(next())).collect();
    let t: Vec<f32> = (0..64).map(|_| unit(next())).collect();
    g.bench_function("bce_with_logits_64/losskit", |b| {
        b.iter(|| {
            losskit::bce_with_logits(black_box(&z), black_box(&t), Reduction::Mean)
                .expect("equal lengths")
        })
    });
    g.bench_function("bce_with_logits_64/reference", |b| {
        b.iter(|| {
            let pairs = black_box(&z).iter().zip(black_box(&t));
            reference::reduce(
                pairs.map(|(&z, &t)| reference::bce_with_logits(z, t, None)),
                Reduction::Mean,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, small_calls);
criterion_main!(benches);
