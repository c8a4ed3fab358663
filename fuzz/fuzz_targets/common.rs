//! Shared by the fuzz targets: element types built from raw bits, sizes that reach every code
//! path of the reduce driver (vector bodies, masked tails, several parallel chunks), and the
//! outcome checks. The losses themselves come from the registry (`tests/registry`), which every
//! target includes as `crate::registry`.
#![allow(dead_code)]

use arbitrary::Arbitrary;
use losskit::{LossError, Reduction};

/// `f32` or `f64`, built from fuzzer-chosen bits; the registry has forms and reference twins
/// for both.
pub trait Elem:
    losskit::Float + crate::registry::Stored<Compute = Self> + crate::registry::Computed
{
    /// The float whose bits are the low bits of `bits`.
    fn from_bits64(bits: u64) -> Self;
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
    fn bits(self) -> u64;
    fn nan(self) -> bool {
        self.f64().is_nan()
    }
    /// The unit roundoff.
    const UNIT: f64;
    const MAX: f64;
    /// The smallest subnormal: the absolute rounding step near 0.
    const TINY: f64;
}

impl Elem for f32 {
    fn from_bits64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    const UNIT: f64 = f32::EPSILON as f64 / 2.0;
    const MAX: f64 = f32::MAX as f64;
    const TINY: f64 = f32::from_bits(1) as f64;
}

impl Elem for f64 {
    fn from_bits64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    const UNIT: f64 = f64::EPSILON / 2.0;
    const MAX: f64 = f64::MAX;
    const TINY: f64 = f64::from_bits(1);
}

/// The parallel threshold of the reduce driver is 2 chunks of 65536 elements.
pub const CHUNK: usize = 1 << 16;

/// A slice length: small ones cover vector bodies and tails, big ones cover several chunks
/// (and rayon) with a ragged last chunk.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Size {
    Tiny(u8),
    Medium(u16),
    /// `2 * CHUNK + k`: above the parallel threshold.
    Big(u16),
}

impl Size {
    pub fn get(self) -> usize {
        match self {
            Size::Tiny(k) => k as usize % 80,
            Size::Medium(k) => k as usize % 5000,
            Size::Big(k) => 2 * CHUNK - 8 + k as usize % (CHUNK + 16),
        }
    }
}

/// Where a second slice's length comes from.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Len {
    /// As long as the input (the valid case).
    Same,
    /// Off by `k` (±), so near misses are common.
    Near(i8),
    /// Anything.
    Other(Size),
}

impl Len {
    pub fn get(self, n: usize) -> usize {
        match self {
            Len::Same => n,
            Len::Near(k) => n.saturating_add_signed(k as isize),
            Len::Other(s) => s.get(),
        }
    }
}

/// A vector of `n` floats: an ordinary deterministic filler with the fuzzer's raw bit patterns
/// written over it from position `at` on (wrapping), then the first `offset` elements dropped by
/// the caller to misalign it.
pub fn build<T: Elem>(n: usize, offset: usize, at: u32, raw: &[u64], filler_seed: u64) -> Vec<T> {
    let len = n + offset;
    let mut s = filler_seed;
    let mut v: Vec<T> = (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            T::of(((s >> 40) as f64 / (1u64 << 24) as f64) * 8.0 - 4.0)
        })
        .collect();
    if len > 0 {
        let start = at as usize % len;
        for (k, &bits) in raw.iter().enumerate().take(len) {
            v[(start + k) % len] = T::from_bits64(bits);
        }
    }
    v
}

/// Equality of errors, with NaN parameter values equal to each other.
pub fn same_error(a: &LossError, b: &LossError) -> bool {
    match (a, b) {
        (
            LossError::InvalidParameter {
                name: n1,
                value: v1,
                requirement: r1,
            },
            LossError::InvalidParameter {
                name: n2,
                value: v2,
                requirement: r2,
            },
        ) => n1 == n2 && r1 == r2 && (v1 == v2 || (v1.is_nan() && v2.is_nan())),
        (
            LossError::NotAProbability {
                name: n1,
                index: i1,
                value: v1,
            },
            LossError::NotAProbability {
                name: n2,
                index: i2,
                value: v2,
            },
        ) => n1 == n2 && i1 == i2 && (v1 == v2 || (v1.is_nan() && v2.is_nan())),
        _ => a == b,
    }
}

/// Asserts that `result` is `Ok` when `allowed` is empty and otherwise one of `allowed` (the
/// order in which arguments are checked is not documented, so any applicable error will do).
pub fn check_outcome<R: core::fmt::Debug>(
    what: &str,
    result: &Result<R, LossError>,
    allowed: &[LossError],
) {
    match result {
        Ok(_) => assert!(
            allowed.is_empty(),
            "{what}: Ok, but expected one of {allowed:?}"
        ),
        Err(e) => {
            assert!(
                allowed.iter().any(|a| same_error(a, e)),
                "{what}: got {e:?}, expected {}",
                if allowed.is_empty() {
                    "Ok".to_string()
                } else {
                    format!("one of {allowed:?}")
                }
            );
            // Display must name the problem.
            assert!(!e.to_string().is_empty());
        }
    }
}

/// The `LengthMismatch` a call reports when argument `name` has `len` elements where
/// `expected_name` calls for `expected`; `None` when they agree.
pub fn mismatch(
    name: &'static str,
    len: usize,
    expected_name: &'static str,
    expected: usize,
) -> Option<LossError> {
    (len != expected).then_some(LossError::LengthMismatch {
        name,
        len,
        expected_name,
        expected,
    })
}

/// Bit-identical, except that any NaN equals any NaN: Rust leaves the payload of a NaN result
/// unspecified (LLVM may swap the operands of an add or a multiply, and which NaN operand's
/// payload survives then changes), so two code paths computing the same value may differ there.
pub fn same<T: Elem>(a: T, b: T) -> bool {
    a.bits() == b.bits() || (a.nan() && b.nan())
}

/// Asserts that a failed call left its output buffer as it was: every element still `sentinel`.
pub fn untouched<T: Elem>(buf: &[T], sentinel: T, what: &str) {
    assert!(
        buf.iter().all(|v| v.bits() == sentinel.bits()),
        "{what}: an error wrote to the output"
    );
}

pub fn reductions() -> [Reduction; 2] {
    [Reduction::Mean, Reduction::Sum]
}
