//! The kernels allocate nothing per call: a counting global allocator (the suite binary's) counts
//! the allocations each thread makes, and every form of the LLM-evaluation calls (cross-entropy
//! loss, rows, gradients out of place and in place, statistics, z-loss, softcap, distillation KL;
//! f32 and bf16) and a pointwise loss makes none on the calling thread, on every tier. The
//! shapes are small enough that the engine runs them on the calling thread (its plan is
//! sequential below a few leaves), so every allocation the call could make would be counted;
//! rayon's own (its pool, its job queues) is what the brief exempts, and does not arise here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use losskit::{bf16, with_tier, CrossEntropy, Reduction, Tier};

/// The system allocator, counting each thread's allocations.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments; the count is a
// const-initialised thread-local `Cell` (no allocation, no destructor), so counting cannot
// re-enter the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The allocations `f` makes on this thread (after one warm-up call, which may set up what is
/// set up once per process, e.g. the tier's detection).
fn allocations(mut f: impl FnMut()) -> u64 {
    f();
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn llm_evaluation_calls_allocate_nothing_on_every_tier() {
    // The counter counts (a test that could not fail would prove nothing).
    let control = allocations(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(control, 1, "one Vec, one allocation");
    let (rows, classes) = (6usize, 777usize);
    let x: Vec<f32> = (0..rows * classes)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 50.0)
        .collect();
    let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 1.0).collect();
    let xh: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let labels: Vec<i64> = vec![3, -100, 776, 0, 12, 400];
    let (mut grad, mut each) = (vec![0.0f32; x.len()], vec![0.0f32; rows]);
    let mut grad_h = vec![bf16::ZERO; x.len()];
    let mut in_place = x.clone();
    let plain = CrossEntropy::new();
    let z = CrossEntropy::new().z_loss(1e-3).label_smoothing(0.1);
    let cap = CrossEntropy::new().softcap(30.0f32);
    let vocab = 32_000usize;
    let vocab_row: Vec<f32> = (0..vocab).map(|i| x[i % x.len()]).collect();
    let probs: Vec<f32> = x.iter().map(|v| (v.abs() / 10.0).min(1.0)).collect();
    for tier in Tier::available() {
        with_tier(tier, || {
            let mut calls: Vec<(&str, u64)> = Vec::new();
            let mut count = |name, f: &mut dyn FnMut()| calls.push((name, allocations(f)));
            count("loss", &mut || {
                plain.loss(&x, classes, &labels, Reduction::Mean).unwrap();
            });
            count("loss bf16", &mut || {
                plain.loss(&xh, classes, &labels, Reduction::Mean).unwrap();
            });
            count("each", &mut || {
                plain.each(&x, classes, &labels, &mut each).unwrap();
            });
            count("stats", &mut || {
                plain.stats(&x, classes, &labels).unwrap();
            });
            count("stats bf16", &mut || {
                plain.stats(&xh, classes, &labels).unwrap();
            });
            count("z-loss smoothed", &mut || {
                z.loss(&x, classes, &labels, Reduction::Sum).unwrap();
            });
            count("softcap", &mut || {
                cap.loss(&x, classes, &labels, Reduction::Mean).unwrap();
            });
            count("loss_and_grad", &mut || {
                plain
                    .loss_and_grad(&x, classes, &labels, Reduction::Mean, &mut grad)
                    .unwrap();
            });
            count("loss_and_grad bf16", &mut || {
                plain
                    .loss_and_grad(&xh, classes, &labels, Reduction::Mean, &mut grad_h)
                    .unwrap();
            });
            count("softcap loss_and_grad_in_place", &mut || {
                in_place.copy_from_slice(&x);
                cap.loss_and_grad_in_place(&mut in_place, classes, &labels, Reduction::Mean)
                    .unwrap();
            });
            count("kl_div_logits", &mut || {
                losskit::kl_div_logits(&x, &y, classes, 2.0, Reduction::Mean).unwrap();
            });
            count("kl_div_logits_and_grad", &mut || {
                losskit::kl_div_logits_and_grad(&x, &y, classes, 2.0, Reduction::Mean, &mut grad)
                    .unwrap();
            });
            count("mse", &mut || {
                losskit::mse(&x, &y, Reduction::Mean).unwrap();
            });
            // The small calls of an inference gateway (bench `small_calls`).
            count("cross_entropy 1x32000", &mut || {
                plain
                    .loss(&vocab_row, vocab, &[31_999], Reduction::Mean)
                    .unwrap();
            });
            count("mse 1000", &mut || {
                losskit::mse(&x[..1000], &y[..1000], Reduction::Mean).unwrap();
            });
            count("bce_with_logits 64", &mut || {
                losskit::bce_with_logits(&x[..64], &probs[..64], Reduction::Mean).unwrap();
            });
            for (name, n) in calls {
                assert_eq!(n, 0, "{tier} {name}: {n} allocations");
            }
        })
        .unwrap();
    }
}
