//! How accurate the results are, and what is bit-identical: the error bounds the kernels are
//! built to, and the figures the tests assert. (Documentation only; nothing to call.)
//!
//! The statements below are copied from the comments of the code they describe (the reduction
//! engine, the vector math, the log-sum-exp sweep); each "tested" figure is asserted by a test
//! of the crate's suite on every SIMD tier the CPU running it has.
//!
//! # Per-element arithmetic
//!
//! Each element's (or row's) loss is computed in the element type, as PyTorch computes it:
//! `f32` in `f32`, `f64` in `f64`; `bf16` and `f16` are widened exactly and computed in `f32`.
//! Gradients are computed the same way and rounded to the storage type once per element.
//! All 720 cases of the PyTorch truth vectors (both dtypes, mean, sum, per element and 714
//! gradients), and the 318 half-precision and `nll` cases of the second file, agree with
//! PyTorch on every tier at `rtol = 1e-5` (f32) and `1e-11` (f64).
//!
//! # Sums
//!
//! Every reduction runs on one map-reduce driver. An element-wise input is cut into chunks of
//! 65536 elements; each chunk is summed in 4 independent vector accumulators of the element
//! type, which are folded pairwise and added, widened exactly, into an `f64` vector every 8
//! steps (32 values per lane); the chunks' `f64` partial sums are combined in a balanced binary
//! tree over the chunk indices. [`Reduction::Mean`](crate::Reduction::Mean) divides the `f64` sum
//! and rounds once to the element type.
//!
//! **Bound.** With `u` the unit roundoff of the element type (`2^-24` for f32, `2^-53` for
//! f64), `S = Σ|mᵢ|` the sum of the magnitudes of the per-element losses `mᵢ`, `LANES` the
//! vector width and `S_tail` the magnitude sum of the last, partial block (fewer than 1024
//! elements), the sum `ŝ` satisfies
//!
//! ```text
//! |ŝ - Σmᵢ| ≤ 10·u·S + 34·u·S_tail + (n/LANES + log2 n)·2^-53·S
//! ```
//!
//! (`10 = BLOCK_STEPS + 2`, `34 = BLOCK_STEPS·UNROLL + 2`, with `BLOCK_STEPS = 8`,
//! `UNROLL = 4`). For f32 that is `10·u ≈ 6.0e-7` relative for a sum of non-negative terms,
//! such as squared errors, **at any length**. A plain sequential f32 sum has the bound `n·u`,
//! which at `n = 2^26` is 4 (400%).
//!
//! | tested | asserted | measured |
//! |---|---|---|
//! | f32 mean of 2^26 squared errors (uniform noise), every tier | relative error ≤ 1e-6 | 3.3e-8 (a plain sequential f32 sum: 18% off) |
//! | f32 sum of 2^20 adversarial terms (every lane add rounds the same way), every tier | ≤ 10 u | 1 / 3 / 3 / 7 u on the scalar / portable / AVX2 / AVX-512 tiers |
//!
//! The adversarial test has teeth: an accumulator flushed every 4096 steps instead of every 8
//! fails it (255 u).
//!
//! ```
//! use losskit::Reduction;
//!
//! // 2^20 copies of 0.1f32 (0.100000001490116...): the exact sum is 104857.6015625.
//! let x = vec![0.1f32; 1 << 20];
//! let zeros = vec![0.0f32; 1 << 20];
//! let exact = (1u32 << 20) as f64 * 0.1f32 as f64;
//!
//! let sum = losskit::l1(&x, &zeros, Reduction::Sum)? as f64;
//! assert!((sum - exact).abs() <= 6.0e-7 * exact);
//!
//! // A plain f32 loop drifts by about 1%.
//! let naive = x.iter().fold(0.0f32, |s, &v| s + v) as f64;
//! assert!((naive - exact).abs() > 1e-3 * exact);
//! # Ok::<(), losskit::LossError>(())
//! ```
//!
//! # Cross-entropy rows
//!
//! Each row's `Σ exp(x - max)` is summed per block of 64 vectors in four lane accumulators of
//! at most 20 terms, added, widened exactly, into an `f64` vector that is reduced only at the
//! end of the row (or when the running max moves). The row's sum `s` is so within
//! `22·u·s` of exact (about `1.3e-6` relative for f32), plus one ulp per term from the vector
//! `exp` (next section), whose clamp of `x - max` below `ln(MIN_POSITIVE)` adds at most
//! `1.2e-38` (f32) a class to a sum of at least 1; the log-sum-exp is then within that much,
//! absolutely. Each row's loss is computed in `f64` from its sweep; the rows' losses are added
//! in `f64`, in row order within a leaf of the fixed tree and then over the leaves, so their
//! sum is within `(rows_per_leaf + log2 leaves)·2^-53·Σ|lossᵣ|` of the exact sum of the rows'
//! losses.
//!
//! # Distillation KL rows
//!
//! [`kl_div_logits`](crate::kl_div_logits) sweeps a student and a teacher row once (two online
//! log-sum-exps and `D = Σ e^((t - mₜ)/T)·(t - s)`, each summed as the cross-entropy rows are)
//! and finishes `KL = D/(T·Sₜ) - (mₜ - mₛ)/T - ln Sₜ + ln Sₛ` in `f64`: a row's loss is within
//! `72·u·(1 + E_p|t - s|/T)` of exact (about `4.3e-6·(1 + E_p|t - s|/T)` for f32), an absolute
//! bound, since the KL of two close distributions is a small difference of numbers of the size
//! of the logits. Tested: every row within `80·u·(1 + E_p|t - s|/T)` of the `f64` twin on every
//! tier and storage type, and the 96 `kl_div_logits` cases of the second truth file at PyTorch's
//! tolerances.
//!
//! # Vector `exp`, `ln`, `log1p`
//!
//! The kernels use their own vector functions, written once for every tier. Each is within the
//! stated number of ULP (units in the last place) of the correctly rounded result, for `f32`
//! and `f64`, on every tier; the tests assert the bound (for `f64`, plus one ULP for the
//! reference, see below). The last two columns are the largest errors the tests measured on an
//! AMD EPYC Zen 4 (every tier; 2·10^7 points a function and type): for `f32` against the `f64`
//! result rounded to `f32`, for `f64` against `std`.
//!
//! | function | used by | bound | `f32`: AVX2, AVX-512 / scalar, portable | `f64` |
//! |---|---|---|---|---|
//! | `exp` (full range, subnormal results included) | the reference point of the two below | 1 ULP | 1 / 1 | 1 |
//! | `exp` for `x ≤ 0`, flushed below `MIN_POSITIVE` | sigmoids (`bce_with_logits`), the cross-entropy gradient | 1 ULP | 1 / 1 | 1 |
//! | `exp` for `x ≤ 0`, clamped at `ln(MIN_POSITIVE)` | softmax sums (cross-entropy) | 1 ULP | 1 / 1 | 1 |
//! | `ln` (subnormal inputs included) | `bce` | 1 ULP | 1 / 1 | 1 |
//! | `log1p` | `bce` | 1 ULP | 1 / 1 | 1 |
//! | `log1p` on `[0, 1]` (`log1p(exp(-|x|))`) | `bce_with_logits` | 2 ULP | 2 / 2 | 1 |
//! | `softplus`, `log_sigmoid` | (kept for the log-sigmoid losses) | 3 ULP | 2 / 3 | 2 |
//! | `tanh` (`expm1(2|x|) / (expm1(2|x|) + 2)`) | cross-entropy's softcap | 3 ULP | 3 / 3 | 4 |
//!
//! `tanh` was measured on an AMD EPYC Zen 5 (the rest on a Zen 4); its largest `f32` error
//! against the exact value is 2.6 ULP on every tier. A softcapped logit `cap·tanh(x·(1/cap))`
//! is so within about `4.5·u·cap` of exact (2.7e-7·cap for `f32`).
//!
//! The scalar and portable tiers round `mul_add` twice; AVX2 and AVX-512 fuse it.
//!
//! **How it is tested.** For each function and each of `f32` and `f64`: 10^7 bit patterns
//! spread over the whole number line, 10^7 random points in the function's working range, and
//! the special values (signed zeros, infinities, NaN, subnormals, the overflow and underflow
//! thresholds and their neighbours), on every tier the CPU can run. `f32` results are
//! compared with the `f64` computation rounded to `f32`; `f64` results with the system `libm`,
//! itself not correctly rounded, so the `f64` tests allow one more ULP for the reference. The
//! `f64` bounds were also checked offline against 200-bit `mpmath` values on 250,000 points
//! (largest errors against the exact value: `exp` 0.99, `ln` 0.75, `log1p` 0.77 ULP). Special
//! values (`exp(-inf) = 0`, `ln(0) = -inf`, `log1p(-0) = -0`, NaN in gives NaN out, ...) are
//! asserted bit for bit.
//!
//! # What is bit-identical
//!
//! - **Across thread counts and runs: yes.** Chunk boundaries and the combine tree depend
//!   only on the input's shape, never on the number of threads, so a call gives the same bits
//!   on any rayon pool, without the `rayon` feature, and on every run (1, 2, 3 and 8 threads
//!   tested, at lengths below, at and above the parallel threshold). Cross-entropy splits
//!   rows, and the rows of a small batch of long rows, by the shape alone, so the same holds
//!   there. Gradients too: the same bits for any thread count.
//! - **In place and out of place**: [`CrossEntropy::loss_and_grad_in_place`] returns and
//!   writes the same bits as [`CrossEntropy::loss_and_grad`]. The pointwise `*_and_grad`
//!   functions return the same loss bits as their reduced forms (cross-entropy's fused loss
//!   agrees with [`CrossEntropy::loss`] to about `1e-6` relative, not always to the bit).
//! - **Across tiers**: the `Avx2` and `Avx512` tiers give the same bits for every loss and
//!   form (the AVX2 tier runs the AVX-512 widths as pairs of 256-bit vectors, with the same
//!   association order and the same fused arithmetic); tested on every loss, form and storage
//!   type wherever both run. NaN payloads are not part of the promise. The `Scalar` and
//!   `Portable` tiers may differ from them (and from each other) in the last bits, within the
//!   bounds above. See [`Tier`](crate::Tier).
//!
//! [`CrossEntropy::loss_and_grad_in_place`]: crate::CrossEntropy::loss_and_grad_in_place
//! [`CrossEntropy::loss_and_grad`]: crate::CrossEntropy::loss_and_grad
//! [`CrossEntropy::loss`]: crate::CrossEntropy::loss
