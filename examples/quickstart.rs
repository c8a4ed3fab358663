//! A first look at losskit: compute each loss on four numbers, then time the kernels.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! Part 1 prints the losses of a tiny example (the same numbers as the README). Part 2 times each
//! loss over 1M f32 elements on one thread and compares it with the memory-read ceiling: a plain
//! SIMD sum of the same bytes, as fast as any kernel that reads them can go. The timings are a
//! quick look; figures worth quoting come from the criterion benches (`cargo bench`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use losskit::{
    bce, bce_with_logits, cross_entropy, cross_entropy_and_grad, huber, l1, mse, read_ceiling,
    reference, smooth_l1, Reduction, Tier,
};

fn main() -> Result<(), losskit::LossError> {
    // ---- Part 1: the losses of a small example -------------------------------------------
    let input = [0.5f32, 1.5, -0.25, 2.0];
    let target = [0.0f32, 2.0, 0.0, 2.5];
    let (x, y) = (&input[..], &target[..]);
    let mean = Reduction::Mean;
    println!("input  = {input:?}");
    println!("target = {target:?}");
    // One line a loss: what is computed, and its value.
    let losses = [
        ("mse (Mean)", mse(x, y, mean)?),
        ("l1 (Sum)", l1(x, y, Reduction::Sum)?),
        ("huber (delta 1.0, Mean)", huber(x, y, 1.0, mean)?),
        ("smooth_l1 (beta 0.5, Mean)", smooth_l1(x, y, 0.5, mean)?),
    ];
    for (name, value) in losses {
        // `{}` prints an f32 with the fewest digits that read back as exactly the same number.
        println!("{name:<26} = {value}");
    }

    // Classification: probabilities, logits, and two rows of three-class logits.
    let probs = [0.9f32, 0.2, 0.6, 0.5];
    let labels01 = [1.0f32, 0.0, 1.0, 0.0];
    let logits = [2.0f32, 1.0, 0.1, /* row 2 */ 0.5, 2.5, 0.3];
    let classes = [0u32, 1];
    let mut dlogits = [0.0f32; 6];
    let classification = [
        ("bce (Mean)", bce(&probs, &labels01, mean)?),
        (
            "bce_with_logits (Mean)",
            bce_with_logits(x, &labels01, mean)?,
        ),
        (
            "cross_entropy (Mean)",
            cross_entropy(&logits, 3, &classes, mean)?,
        ),
        (
            "cross_entropy_and_grad",
            cross_entropy_and_grad(&logits, 3, &classes, mean, &mut dlogits)?,
        ),
    ];
    for (name, value) in classification {
        println!("{name:<26} = {value}");
    }
    println!("{:<26} = {dlogits:?}", "  its d/dlogits");
    println!();

    // ---- Part 2: throughput over 1M f32 elements, on one thread --------------------------
    // losskit splits inputs this large over rayon's threads; a one-thread pool keeps every
    // row, and the ceiling, on one core so that they compare like with like.
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    let pool = one_thread.expect("a one-thread pool");
    pool.install(throughput_table);
    Ok(())
}

/// Times each loss over 1M f32 elements and prints GB/s, also as a fraction of the ceiling.
fn throughput_table() {
    const N: usize = 1 << 20;
    let (x, y) = sample_inputs(N);
    let x_and_y: Vec<f32> = x.iter().chain(&y).copied().collect();
    let x_and_y = &x_and_y[..];
    let (x, y) = (&x[..], &y[..]);
    let bytes = 2 * N * size_of::<f32>(); // what a two-input loss reads: both slices
    let mean = Reduction::Mean;
    let mse_reference =
        || reference::reduce(x.iter().zip(y).map(|(&a, &b)| reference::mse(a, b)), mean);

    let mut table = Table::new(bytes, || read_ceiling(x, y));
    // One line a row: a name and the call. Each call here reads `bytes`; a loss that reads
    // another amount is added with `table.row_reading(name, its_bytes, call)`.
    table.row("mse", || mse(x, y, mean).unwrap());
    table.row("l1", || l1(x, y, mean).unwrap());
    table.row("huber delta=1.0", || huber(x, y, 1.0, mean).unwrap());
    table.row("smooth_l1 beta=0.5", || smooth_l1(x, y, 0.5, mean).unwrap());
    table.row("bce_with_logits", || bce_with_logits(x, y, mean).unwrap());
    table.row("mse, scalar reference", mse_reference);

    let tier = Tier::best();
    println!("{N} f32 elements, Mean, one thread, tier {tier}:");
    table.measure_and_print();

    // Cross-entropy over the same bytes read as 128 rows of 8192 classes, and 104857 rows of
    // 10 classes (the 6 elements left over are not read).
    let ce = |classes: usize| {
        let rows = 2 * N / classes;
        let logits = &x_and_y[..rows * classes];
        let labels: Vec<u32> = (0..rows as u32)
            .map(|r| r.wrapping_mul(7919) % classes as u32)
            .collect();
        move || cross_entropy(logits, classes, &labels, mean).unwrap()
    };
    let mut table = Table::new(bytes, || read_ceiling(x, y));
    table.row("cross_entropy 128x8192", ce(8192));
    table.row("cross_entropy 104857x10", ce(10));
    println!();
    println!("{} f32 logits, Mean, one thread, tier {tier}:", 2 * N);
    table.measure_and_print();
}

/// Rows of calls to time, the first being the read ceiling that the others are compared with.
struct Table<'a> {
    /// Bytes a call reads, unless its row says otherwise.
    bytes: usize,
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    name: &'a str,
    bytes: usize,
    call: Box<dyn Fn() + 'a>,
}

impl<'a> Table<'a> {
    /// A table whose first row is the ceiling, one call of which reads `bytes`.
    fn new<R>(bytes: usize, ceiling: impl Fn() -> R + 'a) -> Table<'a> {
        let mut table = Table {
            bytes,
            rows: Vec::new(),
        };
        table.row("read ceiling", ceiling);
        table
    }

    /// Adds a row: `call` reads the table's bytes.
    fn row<R>(&mut self, name: &'a str, call: impl Fn() -> R + 'a) {
        self.row_reading(name, self.bytes, call);
    }

    /// Adds a row: `call` reads `bytes`.
    fn row_reading<R>(&mut self, name: &'a str, bytes: usize, call: impl Fn() -> R + 'a) {
        let call = Box::new(move || drop(black_box(call())));
        self.rows.push(Row { name, bytes, call });
    }

    /// Times every row, best of many calls, and prints GB/s (10^9 bytes a second), also as a
    /// fraction of the ceiling. The rows take turns, a few dozen milliseconds at a time, so that
    /// a burst of other work on the machine cannot spoil all the calls of one row.
    fn measure_and_print(&self) {
        let mut best = vec![Duration::MAX; self.rows.len()];
        for row in &self.rows {
            (row.call)(); // warm-up: caches, and the CPU tier detected on first use
        }
        for _round in 0..8 {
            for (row, best) in self.rows.iter().zip(&mut best) {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(30) {
                    let t = Instant::now();
                    (row.call)();
                    *best = (*best).min(t.elapsed());
                }
            }
        }
        let rate = |i: usize| self.rows[i].bytes as f64 / best[i].as_secs_f64() / 1e9;
        println!("  {:<24} {:>8}  {:>10}", "", "GB/s", "of ceiling");
        for (i, row) in self.rows.iter().enumerate() {
            println!(
                "  {:<24} {:>8.2}  {:>10.2}",
                row.name,
                rate(i),
                rate(i) / rate(0)
            );
        }
    }
}

/// Two deterministic inputs in [-2, 2) from a cheap integer hash, so that |x - y| falls on both
/// sides of the Huber and smooth-L1 thresholds in no predictable pattern.
fn sample_inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let value = |i: usize| {
        let h = (i as u32).wrapping_mul(0x9E37_79B9).rotate_left(13);
        (h.wrapping_mul(0x85EB_CA6B) >> 8) as f32 * (4.0 / (1 << 24) as f32) - 2.0
    };
    ((0..n).map(value).collect(), (n..2 * n).map(value).collect())
}
