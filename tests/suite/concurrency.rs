//! Concurrent and nested calls: many OS threads calling the losses at once on inputs above the
//! parallel threshold (2 × 65536 elements) get the same bits as a lone call, and calls made from
//! inside rayon pools (nested parallelism: a `par_iter` whose items each call a loss that itself
//! splits over rayon) get the same bits and finish.

use crate::common;

use std::sync::mpsc;
use std::time::Duration;

use losskit::{with_tier, BceWithLogits, CrossEntropy, Reduction, Tier};
use rayon::prelude::*;

/// A deterministic pseudo-random stream in [0, 1).
fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut next = common::splitmix(seed);
    (0..n)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64)
        .collect()
}

/// Inputs for every kind of loss, all above the parallel threshold.
struct Data {
    x: Vec<f32>,
    y: Vec<f32>,
    p: Vec<f32>,
    x64: Vec<f64>,
    y64: Vec<f64>,
    logits: Vec<f32>,
    classes: usize,
    labels: Vec<i64>,
    probs: Vec<f32>,
    weight: Vec<f32>,
}

const N: usize = 300_007;
const ROWS: usize = 2_001;
const CLASSES: usize = 131;

fn data() -> Data {
    let x: Vec<f32> = noise(1, N)
        .iter()
        .map(|&v| (v * 8.0 - 4.0) as f32)
        .collect();
    let p: Vec<f32> = noise(2, N).iter().map(|&v| v as f32).collect();
    let x64: Vec<f64> = noise(3, N).iter().map(|&v| v * 6.0 - 3.0).collect();
    let y64: Vec<f64> = noise(4, N).to_vec();
    let logits: Vec<f32> = noise(5, ROWS * CLASSES)
        .iter()
        .map(|&v| (v * 20.0 - 10.0) as f32)
        .collect();
    let labels: Vec<i64> = noise(6, ROWS)
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if i % 17 == 0 {
                -100
            } else {
                (v * CLASSES as f64) as i64
            }
        })
        .collect();
    let mut probs: Vec<f32> = noise(7, ROWS * CLASSES).iter().map(|&v| v as f32).collect();
    for row in probs.chunks_mut(CLASSES) {
        let s: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    let weight: Vec<f32> = (0..CLASSES).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect();
    Data {
        y: p.clone(),
        x,
        p,
        x64,
        y64,
        logits,
        classes: CLASSES,
        labels,
        probs,
        weight,
    }
}

/// Every loss on `d`, as bits: reductions and `*_each` outputs.
fn all_bits(d: &Data) -> Vec<u64> {
    let mut bits = Vec::new();
    let mut push32 = |v: f32| bits.push(v.to_bits() as u64);
    for r in [Reduction::Mean, Reduction::Sum] {
        push32(losskit::mse(&d.x, &d.y, r).unwrap());
        push32(losskit::l1(&d.x, &d.y, r).unwrap());
        push32(losskit::huber(&d.x, &d.y, 0.5, r).unwrap());
        push32(losskit::smooth_l1(&d.x, &d.y, 0.25, r).unwrap());
        push32(losskit::bce(&d.p, &d.y, r).unwrap());
        push32(losskit::bce_with_logits(&d.x, &d.y, r).unwrap());
        push32(
            BceWithLogits::new()
                .pos_weight(2.5)
                .loss(&d.x, &d.y, r)
                .unwrap(),
        );
        push32(losskit::cross_entropy(&d.logits, d.classes, &d.labels, r).unwrap());
        push32(losskit::cross_entropy_probs(&d.logits, d.classes, &d.probs, r).unwrap());
        let ce = CrossEntropy::new().weight(&d.weight).label_smoothing(0.1);
        push32(ce.loss(&d.logits, d.classes, &d.labels, r).unwrap());
        push32(ce.loss_probs(&d.logits, d.classes, &d.probs, r).unwrap());
    }
    for r in [Reduction::Mean, Reduction::Sum] {
        bits.push(losskit::mse(&d.x64, &d.y64, r).unwrap().to_bits());
        bits.push(
            losskit::bce_with_logits(&d.x64, &d.y64, r)
                .unwrap()
                .to_bits(),
        );
    }
    let mut out = vec![0.0f32; N];
    losskit::huber_each(&d.x, &d.y, 0.5, &mut out).unwrap();
    bits.extend(out.iter().map(|v| v.to_bits() as u64));
    losskit::bce_each(&d.p, &d.y, &mut out).unwrap();
    bits.extend(out.iter().map(|v| v.to_bits() as u64));
    let mut rows = vec![0.0f32; ROWS];
    CrossEntropy::new()
        .each(&d.logits, d.classes, &d.labels, &mut rows)
        .unwrap();
    bits.extend(rows.iter().map(|v| v.to_bits() as u64));
    bits
}

/// Runs `f` on its own thread and fails (instead of hanging the test run) if it has not
/// finished after ten minutes: a deadlock watchdog, not a timing assertion.
fn watchdog<F: FnOnce() + Send + 'static>(what: &'static str, f: F) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(600)) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // `f` panicked: surface its panic.
            if let Err(e) = handle.join() {
                std::panic::resume_unwind(e);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no result after 10 minutes (deadlock?)")
        }
    }
}

#[test]
fn eight_threads_at_once_give_the_bits_of_a_lone_call() {
    watchdog("8 concurrent threads", || {
        let d = data();
        for tier in Tier::available() {
            let alone = with_tier(tier, || all_bits(&d)).unwrap();
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|t| {
                        let (d, alone) = (&d, &alone);
                        s.spawn(move || {
                            for round in 0..3 {
                                let got = with_tier(tier, || all_bits(d)).unwrap();
                                assert!(got == *alone, "thread {t} round {round} on {tier}: bits differ from a lone call");
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            });
        }
    });
}

#[test]
fn threads_on_different_tiers_at_once_do_not_disturb_each_other() {
    // `with_tier` is per thread: pinning one thread must not change another's results.
    watchdog("mixed tiers", || {
        let d = data();
        let tiers = Tier::available();
        let alone: Vec<Vec<u64>> = tiers
            .iter()
            .map(|&t| with_tier(t, || all_bits(&d)).unwrap())
            .collect();
        std::thread::scope(|s| {
            for k in 0..6 {
                let (d, tiers, alone) = (&d, &tiers, &alone);
                s.spawn(move || {
                    let i = k % tiers.len();
                    let got = with_tier(tiers[i], || all_bits(d)).unwrap();
                    assert!(got == alone[i], "thread {k} on {}: bits differ", tiers[i]);
                });
            }
        });
    });
}

#[test]
fn nested_calls_inside_rayon_pools_give_the_same_bits_and_finish() {
    watchdog("nested parallelism", || {
        let d = data();
        let want = all_bits(&d);
        let want_mse = losskit::mse(&d.x, &d.y, Reduction::Mean).unwrap().to_bits();
        for threads in [1, 2, 4] {
            let pool = common::pool(threads);
            // Many items in parallel, each a loss that itself splits over the same pool.
            let got: Vec<u32> = pool.install(|| {
                (0..32)
                    .into_par_iter()
                    .map(|_| losskit::mse(&d.x, &d.y, Reduction::Mean).unwrap().to_bits())
                    .collect()
            });
            assert!(
                got.iter().all(|&b| b == want_mse),
                "{threads}-thread pool: nested mse bits differ"
            );
            // Every loss, from inside a par_iter in the pool.
            let got: Vec<Vec<u64>> =
                pool.install(|| (0..3).into_par_iter().map(|_| all_bits(&d)).collect());
            for (i, g) in got.iter().enumerate() {
                assert!(*g == want, "{threads}-thread pool, item {i}: bits differ");
            }
            // Inside rayon::scope / join with a tier pinned on the worker thread.
            for tier in Tier::available() {
                let alone =
                    with_tier(tier, || losskit::mse(&d.x, &d.y, Reduction::Sum).unwrap()).unwrap();
                let (a, b) = pool.install(|| {
                    rayon::join(
                        || {
                            with_tier(tier, || losskit::mse(&d.x, &d.y, Reduction::Sum).unwrap())
                                .unwrap()
                        },
                        || {
                            with_tier(tier, || losskit::mse(&d.x, &d.y, Reduction::Sum).unwrap())
                                .unwrap()
                        },
                    )
                });
                assert_eq!(
                    (a.to_bits(), b.to_bits()),
                    (alone.to_bits(), alone.to_bits()),
                    "{threads} threads, {tier}"
                );
            }
        }
        // And from the global pool.
        let got: Vec<u32> = (0..16)
            .into_par_iter()
            .map(|_| losskit::mse(&d.x, &d.y, Reduction::Mean).unwrap().to_bits())
            .collect();
        assert!(
            got.iter().all(|&b| b == want_mse),
            "global pool: nested mse bits differ"
        );
    });
}

#[test]
fn nested_calls_from_inside_a_pool_of_one_thread_do_not_deadlock() {
    // A 1-thread pool whose only worker blocks in a loss that splits over rayon: the split work
    // must run (on that worker) rather than wait for a thread that does not exist.
    watchdog("1-thread pool", || {
        let d = data();
        let pool = common::pool(1);
        let want =
            losskit::cross_entropy(&d.logits, d.classes, &d.labels, Reduction::Mean).unwrap();
        let got: Vec<f32> = pool.install(|| {
            (0..4)
                .into_par_iter()
                .map(|_| {
                    losskit::cross_entropy(&d.logits, d.classes, &d.labels, Reduction::Mean)
                        .unwrap()
                })
                .collect()
        });
        assert!(
            got.iter().all(|g| g.to_bits() == want.to_bits()),
            "{got:?} vs {want}"
        );
    });
}
