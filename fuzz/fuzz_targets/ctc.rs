//! ctc on fuzzer-chosen shapes, lengths, labels and values: no input panics; an error leaves
//! the output slices untouched; and where the arguments are valid and the log-probabilities
//! are finite `log_softmax` rows, the f64 losses and gradients agree with the scalar twin
//! (`reference::ctc`) and the f32 ones stay within the module's error bound.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use losskit::{bf16, reference, Ctc, LossError, Reduction};

#[derive(Arbitrary, Debug)]
struct Input {
    time: u8,
    batch: u8,
    classes: u8,
    blank: u8,
    zero_infinity: bool,
    /// Raw log-probabilities (bits), or, with `softmax`, logits turned into log-probabilities.
    softmax: bool,
    values: Vec<u32>,
    /// Target labels and lengths as the fuzzer wrote them (any i64), and a switch that folds
    /// them into the valid range most of the time.
    raw: bool,
    targets: Vec<i64>,
    input_lengths: Vec<i64>,
    target_lengths: Vec<i64>,
    /// Off-by-some shape (a LengthMismatch) when non-zero.
    shape_skew: i8,
    threads: u8,
}

/// `-inf`-free log_softmax of `logits` (f64), row by row.
fn log_softmax(logits: &[f64], c: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(c) {
        let m = row.iter().copied().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        out.extend(row.iter().map(|x| x - lse));
    }
    out
}

fuzz_target!(|inp: Input| {
    let (t, n, c) = (
        inp.time as usize % 48,
        inp.batch as usize % 6,
        inp.classes as usize % 40,
    );
    let len = (t * n * c) as i64
        + if inp.shape_skew % 7 == 0 {
            0
        } else {
            inp.shape_skew as i64
        };
    let len = len.max(0) as usize;
    let bits = |i: usize| {
        inp.values
            .get(i % inp.values.len().max(1))
            .copied()
            .unwrap_or(0)
    };
    let logits: Vec<f64> = (0..len)
        .map(|i| {
            if inp.softmax {
                (bits(i) % 2000) as f64 / 100.0 - 10.0
            } else {
                f32::from_bits(bits(i)) as f64
            }
        })
        .collect();
    let valid_values = inp.softmax && c > 0 && len == t * n * c;
    let lp64 = if valid_values {
        log_softmax(&logits, c)
    } else {
        logits
    };
    let lp32: Vec<f32> = lp64.iter().map(|&x| x as f32).collect();
    let lph: Vec<bf16> = lp64.iter().map(|&x| bf16::from_f64(x)).collect();
    let blank = if inp.raw {
        inp.blank as usize
    } else {
        inp.blank as usize % c.max(1)
    };
    let fold = |v: &[i64], m: usize| -> Vec<i64> {
        if inp.raw {
            v.to_vec()
        } else {
            v.iter().map(|&x| x.rem_euclid(m as i64 + 1)).collect()
        }
    };
    let input_lengths = fold(&inp.input_lengths, t);
    let input_lengths: Vec<i64> = if inp.raw {
        input_lengths
    } else {
        (0..n)
            .map(|i| input_lengths.get(i).copied().unwrap_or(t as i64))
            .collect()
    };
    let target_lengths = fold(&inp.target_lengths, 12);
    let target_lengths: Vec<i64> = if inp.raw {
        target_lengths
    } else {
        (0..n)
            .map(|i| target_lengths.get(i).copied().unwrap_or(0))
            .collect()
    };
    // Saturating: raw lengths may be anything (the library checks them; this sum only sizes
    // the generated targets).
    let total: i64 = target_lengths
        .iter()
        .fold(0i64, |s, &l| s.saturating_add(l.max(0)));
    let targets: Vec<i64> = if inp.raw {
        inp.targets.clone()
    } else {
        // Labels in 0..c other than the blank (a repeat every so often).
        (0..total.min(1000) as usize)
            .map(|i| {
                let x = inp.targets.get(i).copied().unwrap_or(i as i64);
                if c < 2 {
                    x
                } else {
                    let l = x.rem_euclid(c as i64 - 1);
                    if l >= blank as i64 {
                        l + 1
                    } else {
                        l
                    }
                }
            })
            .collect()
    };
    let ctc = Ctc::new().blank(blank).zero_infinity(inp.zero_infinity);
    let shape = [t, n, c];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1 + inp.threads as usize % 3)
        .build()
        .unwrap();
    pool.install(|| {
        // Every form and storage type: none may panic; errors leave outputs untouched.
        let mut each = vec![7.0f64; n];
        let r64 = ctc.each(
            &lp64,
            shape,
            &targets,
            &input_lengths,
            &target_lengths,
            &mut each,
        );
        if r64.is_err() {
            assert!(each.iter().all(|&x| x == 7.0));
        }
        let mut g64 = vec![7.0f64; lp64.len()];
        let m64 = ctc.loss_and_grad(
            &lp64,
            shape,
            &targets,
            &input_lengths,
            &target_lengths,
            Reduction::Mean,
            &mut g64,
        );
        assert_eq!(m64.is_ok(), r64.is_ok());
        if m64.is_err() {
            assert!(g64.iter().all(|&x| x == 7.0));
        }
        let mut g32 = vec![7.0f32; lp32.len()];
        let s32 = ctc.loss_and_grad(
            &lp32,
            shape,
            &targets,
            &input_lengths,
            &target_lengths,
            Reduction::Sum,
            &mut g32,
        );
        let mut gh = vec![bf16::ZERO; lph.len()];
        let sh = ctc.loss_and_grad(
            &lph,
            shape,
            &targets,
            &input_lengths,
            &target_lengths,
            Reduction::Sum,
            &mut gh,
        );
        assert_eq!(s32.is_ok(), sh.is_ok());
        let err: Option<LossError> = m64.clone().err();
        if let Some(e) = err {
            // Every error is a sentence naming an argument.
            assert!(!e.to_string().is_empty());
            return;
        }
        if !valid_values {
            return;
        }
        // Valid: compare with the twin.
        let us = |v: &[i64]| -> Vec<usize> { v.iter().map(|&x| x as usize).collect() };
        let (tg, il, tl) = (us(&targets), us(&input_lengths), us(&target_lengths));
        let (nll, grad) = reference::ctc(&lp64, shape, &tg, &il, &tl, blank);
        for (i, (&got, &want)) in each.iter().zip(&nll).enumerate() {
            let want = if inp.zero_infinity && want == f64::INFINITY {
                0.0
            } else {
                want
            };
            if want.is_finite() {
                assert!(
                    (got - want).abs() <= 1e-12 * (t as f64 + 1.0) * (3.0 + want.abs()),
                    "sample {i}: {got} vs {want}"
                );
            } else {
                assert_eq!(got, want, "sample {i}");
            }
        }
        for (i, (&got, &want)) in g64.iter().zip(&grad).enumerate() {
            let b = (i / c.max(1)) % n.max(1);
            let w = 1.0 / n as f64 / tl[b].max(1) as f64;
            if nll[b].is_finite() {
                assert!(
                    (got - w * want).abs() <= 1e-11 * (t as f64 + 1.0) * (3.0 + nll[b].abs()),
                    "grad[{i}]: {got} vs {}",
                    w * want
                );
            } else if inp.zero_infinity && nll[b] == f64::INFINITY {
                assert_eq!(got, 0.0, "grad[{i}]");
            }
        }
        let sum32 = s32.unwrap() as f64;
        let fixed: Vec<f64> = nll
            .iter()
            .map(|&l| {
                if inp.zero_infinity && l == f64::INFINITY {
                    0.0
                } else {
                    l
                }
            })
            .collect();
        let want: f64 = fixed.iter().sum();
        if want.is_finite() {
            let bound: f64 = fixed
                .iter()
                .map(|l| 2.0 * (t as f64 + 1.0) * 6e-8 * (3.0 + l.abs()))
                .sum();
            assert!(
                (sum32 - want).abs() <= bound + 1e-6,
                "f32 sum {sum32} vs {want}"
            );
        } else {
            assert_eq!(sum32, want);
        }
    });
});
