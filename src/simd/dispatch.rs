//! Choosing a tier: detect the CPU once, cache the choice, let tests and benches pin one.

use core::cell::Cell;
use core::sync::atomic::{AtomicU8, Ordering};

use super::portable::Portable;
use super::scalar::Scalar;
use super::Kernel;
use crate::{Float, LossError};

/// An instruction-set tier that the kernels can run on.
///
/// By default every call uses the best tier this CPU has ([`Tier::best`]). The environment
/// variable `LOSSKIT_FORCE=scalar|portable|avx2|avx512`, read once on first use, lowers the
/// default (a tier the CPU lacks is ignored), and [`with_tier`] pins a tier for one closure on
/// the calling thread.
///
/// # Which tiers agree bit for bit
///
/// [`Tier::Avx2`] and [`Tier::Avx512`] give **bit-identical results** for every loss and form
/// (reduced, `_each`, `_and_grad`, in place), every storage type and any number of threads: the
/// AVX2 tier runs the AVX-512 tier's lane widths (16 f32, 8 f64, as pairs of `ymm`
/// registers), with the same association order and the same fused multiply-adds, so a result
/// computed on an AVX2-only CPU equals the one computed on an AVX-512 CPU (NaN results are NaN
/// on both; their payloads are not compared). [`Tier::Scalar`] and [`Tier::Portable`] may
/// differ from those two and from each other in the last bits: they have no fused
/// multiply-add and other widths, so they round and sum in another order, within each loss's
/// documented error bound.
///
/// ```
/// use losskit::Tier;
/// let best = Tier::best();
/// assert!(best.is_available());
/// assert!(Tier::available().contains(&Tier::Scalar));
/// println!("losskit runs on {best}");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// One lane of plain scalar code. Always available.
    Scalar = 1,
    /// The `wide` crate's portable vectors (SSE2, NEON, wasm simd128). Always available.
    Portable = 2,
    /// x86-64 AVX2 with FMA: bit-identical to [`Tier::Avx512`].
    Avx2 = 3,
    /// x86-64 AVX-512F: bit-identical to [`Tier::Avx2`].
    Avx512 = 4,
}

impl Tier {
    const ALL: [Tier; 4] = [Tier::Scalar, Tier::Portable, Tier::Avx2, Tier::Avx512];

    /// Whether this CPU can run the tier (detected once, then cached).
    pub fn is_available(self) -> bool {
        detected() & (1 << self as u8) != 0
    }

    /// Every tier this CPU can run, slowest first.
    pub fn available() -> Vec<Tier> {
        Tier::ALL.into_iter().filter(|t| t.is_available()).collect()
    }

    /// The tier calls use by default: the fastest available one, unless `LOSSKIT_FORCE`
    /// names another available tier. Detected once, then cached.
    pub fn best() -> Tier {
        static CACHED: AtomicU8 = AtomicU8::new(0);
        if let Some(t) = Tier::from_u8(CACHED.load(Ordering::Relaxed)) {
            return t;
        }
        let fastest = Tier::ALL
            .into_iter()
            .rev()
            .find(|t| t.is_available())
            .unwrap_or(Tier::Scalar);
        let forced = std::env::var("LOSSKIT_FORCE")
            .ok()
            .and_then(|s| Tier::from_name(&s));
        let chosen = match forced {
            Some(t) if t.is_available() => t,
            _ => fastest,
        };
        CACHED.store(chosen as u8, Ordering::Relaxed);
        chosen
    }

    /// The tier a call made now on this thread would use: the one pinned by an enclosing
    /// [`with_tier`], else [`Tier::best`].
    pub fn active() -> Tier {
        PINNED.with(|p| p.get()).unwrap_or_else(Tier::best)
    }

    /// The tier's lower-case name, as `LOSSKIT_FORCE` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Scalar => "scalar",
            Tier::Portable => "portable",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
        }
    }

    /// The tier named `name` (as [`Tier::name`] spells it, ignoring ASCII case).
    pub fn from_name(name: &str) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }

    fn from_u8(v: u8) -> Option<Tier> {
        Tier::ALL.into_iter().find(|&t| t as u8 == v)
    }

    /// The tier with the proof that it may run here (the portable tier if it may not), from
    /// the cached detection: no CPU query per call.
    #[inline]
    pub(crate) fn resolve(self) -> Resolved {
        if !self.is_available() {
            return Resolved::Portable;
        }
        match self {
            Tier::Scalar => Resolved::Scalar,
            Tier::Portable => Resolved::Portable,
            // SAFETY: `is_available` read the bit that `detected` set only after
            // `Avx2::detect` found the features.
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => Resolved::Avx2(unsafe { super::avx2::Avx2::new_unchecked() }),
            // SAFETY: as above, with `Avx512::detect`.
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => Resolved::Avx512(unsafe { super::avx512::Avx512::new_unchecked() }),
            #[cfg(not(target_arch = "x86_64"))]
            _ => Resolved::Portable,
        }
    }
}

/// The tiers this CPU can run, one bit each (`1 << tier as u8`): detected on first use, then
/// cached. Detection is idempotent, so threads racing on the first call store the same bits.
fn detected() -> u8 {
    static DETECTED: AtomicU8 = AtomicU8::new(0);
    let bits = DETECTED.load(Ordering::Relaxed);
    if bits != 0 {
        return bits;
    }
    let mut bits = (1 << Tier::Scalar as u8) | (1 << Tier::Portable as u8);
    #[cfg(target_arch = "x86_64")]
    {
        if super::avx2::Avx2::detect().is_some() {
            bits |= 1 << Tier::Avx2 as u8;
        }
        if super::avx512::Avx512::detect().is_some() {
            bits |= 1 << Tier::Avx512 as u8;
        }
    }
    DETECTED.store(bits, Ordering::Relaxed);
    bits
}

impl core::fmt::Display for Tier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    static PINNED: Cell<Option<Tier>> = const { Cell::new(None) };
}

/// Runs `f` with every `losskit` call made on this thread pinned to `tier`.
///
/// The tier is chosen when a call starts, on the calling thread, and the work that call hands
/// to rayon's threads runs on the same tier. Calls nest; the previous tier is restored when `f`
/// returns or unwinds.
///
/// # Errors
/// [`LossError::TierUnavailable`] if this CPU cannot run `tier`; `f` is not called then.
///
/// ```
/// use losskit::{with_tier, Reduction, Tier};
/// let a = [1.0f32, 2.0, 3.0];
/// let b = [1.5f32, 2.0, 2.0];
/// for tier in Tier::available() {
///     let m = with_tier(tier, || losskit::mse(&a, &b, Reduction::Mean)).unwrap().unwrap();
///     assert!((m - 1.25 / 3.0).abs() < 1e-7);
/// }
/// ```
pub fn with_tier<R>(tier: Tier, f: impl FnOnce() -> R) -> Result<R, LossError> {
    if !tier.is_available() {
        return Err(LossError::TierUnavailable { tier });
    }
    struct Restore(Option<Tier>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PINNED.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PINNED.with(|p| p.replace(Some(tier))));
    Ok(f())
}

/// A tier together with the token that proves this CPU can run it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resolved {
    Scalar,
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2(super::avx2::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(super::avx512::Avx512),
}

impl Resolved {
    /// The tier for a call starting now on this thread.
    #[inline]
    pub(crate) fn active() -> Resolved {
        Tier::active().resolve()
    }

    /// Runs `kernel` on this tier, inside a function compiled for it.
    #[inline]
    pub(crate) fn run<T: Float, K: Kernel<T>>(self, kernel: K) -> K::Output {
        match self {
            Resolved::Scalar => kernel.run::<T::Scalar>(Scalar),
            Resolved::Portable => kernel.run::<T::Portable>(Portable),
            // SAFETY: the token inside proves that the CPU has the function's target features.
            #[cfg(target_arch = "x86_64")]
            Resolved::Avx2(isa) => unsafe { super::avx2::run(isa, kernel) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Resolved::Avx512(isa) => unsafe { super::avx512::run(isa, kernel) },
        }
    }
}
