use losskit::*;
use std::time::Instant;
fn time<F: FnMut() -> f32>(mut f: F, reps: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..reps { let t = Instant::now(); std::hint::black_box(f()); best = best.min(t.elapsed().as_secs_f64()); }
    best
}
fn main() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
    for n in [16usize << 10, 1 << 20, 64 << 20] {
        let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 0.001).collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 0.001).collect();
        let reps = if n > 1<<24 { 5 } else { 200 };
        let c = time(|| read_ceiling(&a, &b), reps);
        let m = time(|| mse(&a, &b, Reduction::Mean).unwrap(), reps);
        let h = time(|| huber(&a, &b, 0.5, Reduction::Mean).unwrap(), reps);
        let r = time(|| reference::reduce(a.iter().zip(&b).map(|(&x,&y)| reference::mse(x,y)), Reduction::Mean), reps.min(20));
        let gb = (8 * n) as f64 / 1e9;
        println!("n={n}: ceiling {:.2} GB/s, mse {:.2} GB/s ({:.2}), huber {:.2} ({:.2}), ref {:.2} GB/s", gb/c, gb/m, c/m, gb/h, c/h, gb/r);
    }});
}
