//! The three-input losses of the registry ([`TERNARY`]: gaussian_nll, margin_ranking and the
//! `*_weighted` first-wave losses): every form on every tier against the scalar twins, their
//! gradients against central differences, the x86 tiers' bit-for-bit agreement, non-finite
//! data, the errors, and a weight of ones giving the unweighted loss's bits.

use crate::common;

use common::{same_error, Elem};
use losskit::{bf16, f16, reference, with_tier, LossError, Reduction, Storage, Tier};
use proptest::prelude::*;

use crate::registry::{Divisor, Input, Ternary, TernaryComputed, TernaryStored, TERNARY};

/// Ordinary values, signed zeros and infinities (NaN has its own test).
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => -10.0..10.0f64,
        1 => -1e4..1e4f64,
        1 => prop_oneof![
            Just(0.0), Just(-0.0), Just(1e-3), Just(f64::INFINITY), Just(f64::NEG_INFINITY),
        ],
    ]
}

#[derive(Clone, Debug)]
struct Data {
    v: [Vec<f64>; 3],
    offset: usize,
}

fn data() -> impl Strategy<Value = Data> {
    (0usize..3000, 0usize..16).prop_flat_map(|(n, offset)| {
        let vec = || proptest::collection::vec(value(), n + offset);
        (vec(), vec(), vec()).prop_map(move |(a, b, c)| Data {
            v: [a, b, c],
            offset,
        })
    })
}

/// `v` in the loss's domains (so that no call is an error).
fn inputs<T: Elem>(loss: &Ternary, d: &Data) -> [Vec<T>; 3] {
    [0, 1, 2].map(|i| {
        d.v[i][d.offset..]
            .iter()
            .map(|&x| {
                // The unit domains fold an infinity to NaN (its fraction): a NaN probability is
                // an error, which this test does not want.
                let v = loss.inputs[i].fold(x);
                T::of(if v.is_nan() { 0.5 } else { v })
            })
            .collect()
    })
}

/// `a` and `b` agree within `tol` (non-finite values in kind).
fn close(a: f64, b: f64, tol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        a.is_nan() && b.is_nan()
    } else if a.is_infinite() || b.is_infinite() {
        a == b
    } else {
        (a - b).abs() <= tol
    }
}

fn check<T: Elem + TernaryStored<Compute = T> + TernaryComputed>(
    d: &Data,
    unit: f64,
) -> Result<(), TestCaseError> {
    for &loss in TERNARY {
        let [x, y, z] = inputs::<T>(loss, d);
        let n = x.len();
        let id = loss.id;
        let wide = |v: &[T], i: usize| v[i].f64();
        let elems: Vec<T> = (0..n).map(|i| loss.reference(x[i], y[i], z[i])).collect();
        let terms: Vec<[f64; 3]> = (0..n)
            .map(|i| (loss.terms)(wide(&x, i), wide(&y, i), wide(&z, i)))
            .collect();
        let magnitude: f64 = (0..n)
            .map(|i| elems[i].f64().abs().max(terms[i][0]))
            .filter(|m| m.is_finite())
            .sum();
        // The divisor of the mean, from the reference: the count or Σw in f64.
        let divisor = match loss.divisor {
            Divisor::Count => n as f64,
            Divisor::Weights => z.iter().map(|w| w.f64()).sum::<f64>(),
        };
        let scale = match loss.divisor {
            Divisor::Count => T::of(1.0) / T::of(n as f64),
            Divisor::Weights => T::of(1.0 / divisor),
        };
        for tier in Tier::available() {
            with_tier(tier, || -> Result<(), TestCaseError> {
                let mut out = vec![T::of(0.5); n];
                loss.each(&x, &y, &z, &mut out).unwrap();
                for i in 0..n {
                    let (g, w) = (out[i].f64(), elems[i].f64());
                    let ok = if loss.exact {
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
                    } else {
                        close(g, w, 16.0 * unit * (w.abs() + terms[i][0]))
                    };
                    prop_assert!(
                        ok,
                        "{id} each[{i}] on {tier}: {g:e} vs oracle {w:e} at ({:?}, {:?}, {:?})",
                        x[i],
                        y[i],
                        z[i]
                    );
                }
                let sum: f64 = elems.iter().map(|e| e.f64()).sum();
                // The driver's bound (34 u of the magnitude), the f64 sums' and, for the
                // inexact maps, 16 u per element.
                let bound = (50.0 * unit + 4.0 * n as f64 * f64::EPSILON) * magnitude;
                for (r, want, div) in [
                    (Reduction::Sum, sum, 1.0),
                    (Reduction::Mean, sum / divisor, divisor.abs()),
                ] {
                    let got = loss.reduce(&x, &y, &z, r).unwrap().f64();
                    let want = T::of(want).f64();
                    prop_assert!(
                        close(got, want, bound / div + 2.0 * unit * want.abs())
                            || (n == 0 && got.is_nan() == want.is_nan()),
                        "{id} {r:?} on {tier}, n={n}: {got:e} vs oracle {want:e}"
                    );
                }
                let mut grad = vec![T::of(0.5); n];
                let mut grad2 = vec![T::of(0.5); if loss.grad2.is_some() { n } else { 0 }];
                let fused = loss
                    .and_grad(&x, &y, &z, Reduction::Mean, &mut grad, &mut grad2)
                    .unwrap();
                let mean = loss.reduce(&x, &y, &z, Reduction::Mean).unwrap();
                prop_assert!(
                    fused.bits() == mean.bits() || (fused.f64().is_nan() && mean.f64().is_nan()),
                    "{id} on {tier}: the fused mean {fused:?} is not the mean {mean:?}"
                );
                for i in 0..n {
                    let w = (loss.reference_grad(x[i], y[i], z[i]) * scale).f64();
                    let tol = 16.0 * unit * (w.abs() + terms[i][1] * scale.f64().abs());
                    prop_assert!(
                        close(grad[i].f64(), w, tol),
                        "{id} grad[{i}] on {tier}: {:e} vs oracle {w:e} at ({:?}, {:?}, {:?})",
                        grad[i].f64(),
                        x[i],
                        y[i],
                        z[i]
                    );
                    if let Some(w2) = loss.reference_grad2(x[i], y[i], z[i]) {
                        let w2 = (w2 * scale).f64();
                        let tol = 16.0 * unit * (w2.abs() + terms[i][2] * scale.f64().abs());
                        prop_assert!(
                            close(grad2[i].f64(), w2, tol),
                            "{id} grad2[{i}] on {tier}: {:e} vs oracle {w2:e} at ({:?}, {:?}, \
                             {:?})",
                            grad2[i].f64(),
                            x[i],
                            y[i],
                            z[i]
                        );
                    }
                }
                Ok(())
            })
            .unwrap()?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn f32_three_input_kernels_match_the_oracle_on_every_tier(d in data()) {
        check::<f32>(&d, f32::EPSILON as f64 / 2.0)?;
    }

    #[test]
    fn f64_three_input_kernels_match_the_oracle_on_every_tier(d in data()) {
        check::<f64>(&d, f64::EPSILON / 2.0)?;
    }
}

/// A moderate point of `loss`'s domain from three uniform numbers in [0, 1).
fn moderate(loss: &Ternary, u: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| match loss.inputs[i] {
        Input::Plain(domain) => match domain {
            crate::registry::Domain::Probability | crate::registry::Domain::UnitUnchecked => {
                0.05 + 0.9 * u[i]
            }
            _ => 4.0 * u[i] - 2.0,
        },
        Input::Sign => {
            if u[i] < 0.5 {
                -1.0
            } else {
                1.0
            }
        }
        Input::NonNegativeChecked => 0.05 + 3.0 * u[i],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// d/d(first input) and the second gradient against central differences of the f64 sum,
    /// away from kinks, on every tier.
    #[test]
    fn gradients_match_central_differences(u in proptest::array::uniform3(0.0..1.0f64)) {
        for &loss in TERNARY {
            let p = moderate(loss, u);
            if loss.kink.is_some_and(|k| k(p[0], p[1], p[2]) < 1e-3) {
                continue;
            }
            let f = |q: [f64; 3]| loss.reduce(&[q[0]], &[q[1]], &[q[2]], Reduction::Sum).unwrap();
            let h = 1e-6;
            let diff = |i: usize| {
                let (mut hi, mut lo) = (p, p);
                hi[i] += h;
                lo[i] -= h;
                (f(hi) - f(lo)) / (2.0 * h)
            };
            for tier in Tier::available() {
                with_tier(tier, || -> Result<(), TestCaseError> {
                    let (mut g, mut g2) = ([0.0f64], vec![0.0f64; usize::from(loss.grad2.is_some())]);
                    loss.and_grad(&[p[0]], &[p[1]], &[p[2]], Reduction::Sum, &mut g, &mut g2)
                        .unwrap();
                    let want = diff(0);
                    prop_assert!(
                        (g[0] - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{} on {tier}: d/d{} = {:e}, central difference {want:e} at {p:?}",
                        loss.id, loss.names[0], g[0]
                    );
                    // Below eps, PyTorch's d/dvar is the derivative at the clamped point (its
                    // clamp runs under no_grad), not the clamped loss's (0): no difference
                    // quotient to compare with there.
                    let clamped = loss.grad2 == Some(2) && loss.id.ends_with("_eps") && p[2] < 0.25;
                    if let Some(i) = loss.grad2.filter(|_| !clamped) {
                        let want = diff(i);
                        prop_assert!(
                            (g2[0] - want).abs() <= 1e-5 * (1.0 + want.abs()),
                            "{} on {tier}: d/d{} = {:e}, central difference {want:e} at {p:?}",
                            loss.id, loss.names[i], g2[0]
                        );
                    }
                    Ok(())
                })
                .unwrap()?;
            }
        }
    }
}

/// Every form's bits (NaN as one value) on the active tier.
fn fingerprint<S: TernaryStored + Widened>(loss: &Ternary, x: &[S], y: &[S], z: &[S]) -> Vec<u64>
where
    S::Compute: Elem,
{
    let bits = |v: f64| if v.is_nan() { 1 } else { v.to_bits() };
    let n = x.len();
    let mut fp = Vec::new();
    for r in [Reduction::Mean, Reduction::Sum] {
        fp.push(bits(loss.reduce(x, y, z, r).unwrap().f64()));
    }
    let mut out = vec![<S::Compute as Elem>::of(0.0); n];
    loss.each(x, y, z, &mut out).unwrap();
    fp.extend(out.iter().map(|v| bits(v.f64())));
    let zero = x.first().copied();
    if let Some(zero) = zero {
        let mut g = vec![zero; n];
        let mut g2 = vec![zero; if loss.grad2.is_some() { n } else { 0 }];
        for r in [Reduction::Mean, Reduction::Sum] {
            fp.push(bits(
                loss.and_grad(x, y, z, r, &mut g, &mut g2).unwrap().f64(),
            ));
            fp.extend(g.iter().chain(&g2).map(|v| bits(Widened::wide(*v))));
        }
    }
    fp
}

/// The storage types widened exactly to f64.
trait Widened: Copy {
    fn wide(self) -> f64;
    fn from(x: f64) -> Self;
}
impl Widened for f32 {
    fn wide(self) -> f64 {
        self as f64
    }
    fn from(x: f64) -> Self {
        x as f32
    }
}
impl Widened for f64 {
    fn wide(self) -> f64 {
        self
    }
    fn from(x: f64) -> Self {
        x
    }
}
impl Widened for bf16 {
    fn wide(self) -> f64 {
        self.to_f64()
    }
    fn from(x: f64) -> Self {
        bf16::from_f64(x)
    }
}
impl Widened for f16 {
    fn wide(self) -> f64 {
        self.to_f64()
    }
    fn from(x: f64) -> Self {
        f16::from_f64(x)
    }
}

/// Deterministic inputs in `loss`'s domains: `n` of each, from a small LCG.
fn sample<S: Widened>(loss: &Ternary, n: usize, seed: u64) -> [Vec<S>; 3] {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut v: [Vec<S>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..n {
        let p = moderate(loss, [next(), next(), next()]);
        for i in 0..3 {
            v[i].push(S::from(p[i]));
        }
    }
    v
}

fn tiers_agree<S: TernaryStored + Widened>()
where
    S::Compute: Elem,
{
    let avx: Vec<Tier> = Tier::available()
        .into_iter()
        .filter(|t| matches!(t, Tier::Avx2 | Tier::Avx512))
        .collect();
    if avx.len() < 2 {
        return;
    }
    for &loss in TERNARY {
        for (k, n) in [0usize, 1, 15, 17, 100, 1031, 65536 + 17, 140_000]
            .into_iter()
            .enumerate()
        {
            let [x, y, z] = sample::<S>(loss, n, k as u64 + 7);
            let fps: Vec<Vec<u64>> = avx
                .iter()
                .map(|&t| with_tier(t, || fingerprint(loss, &x, &y, &z)).unwrap())
                .collect();
            assert!(
                fps[0] == fps[1],
                "{} {} n={n}: the AVX2 and AVX-512 tiers differ",
                loss.id,
                std::any::type_name::<S>()
            );
        }
    }
}

#[test]
fn avx2_and_avx512_agree_bit_for_bit_on_every_storage_type() {
    tiers_agree::<f32>();
    tiers_agree::<f64>();
    tiers_agree::<bf16>();
    tiers_agree::<f16>();
}

#[test]
fn bits_do_not_depend_on_threads() {
    for &loss in TERNARY {
        let [x, y, z] = sample::<f32>(loss, 300_000, 3);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let a = one.install(|| fingerprint(loss, &x, &y, &z));
        let b = four.install(|| fingerprint(loss, &x, &y, &z));
        assert!(a == b, "{}: 1 and 4 threads differ", loss.id);
    }
}

#[test]
fn nan_in_any_input_propagates() {
    for &loss in TERNARY {
        for tier in Tier::available() {
            with_tier(tier, || {
                for at in 0..3 {
                    let [mut x, mut y, mut z] = sample::<f32>(loss, 37, 11);
                    [&mut x, &mut y, &mut z][at][20] = f32::NAN;
                    let probability =
                        loss.inputs[at] == Input::Plain(crate::registry::Domain::Probability);
                    let mean = loss.reduce(&x, &y, &z, Reduction::Mean);
                    if probability {
                        // PyTorch rejects a NaN probability, and so does the loss.
                        assert!(
                            matches!(mean, Err(LossError::NotAProbability { index: 20, .. })),
                            "{} on {tier}: NaN {}: {mean:?}",
                            loss.id,
                            loss.names[at]
                        );
                        continue;
                    }
                    assert!(
                        mean.unwrap().is_nan(),
                        "{} on {tier}: NaN {} mean",
                        loss.id,
                        loss.names[at]
                    );
                    let mut out = vec![0.0f32; 37];
                    loss.each(&x, &y, &z, &mut out).unwrap();
                    assert!(
                        out[20].is_nan(),
                        "{} on {tier}: NaN {} each",
                        loss.id,
                        loss.names[at]
                    );
                    assert!(
                        out.iter().enumerate().all(|(i, v)| i == 20 || !v.is_nan()),
                        "{} on {tier}: NaN {} leaks to other elements",
                        loss.id,
                        loss.names[at]
                    );
                    let mut g = vec![0.0f32; 37];
                    let mut g2 = vec![0.0f32; if loss.grad2.is_some() { 37 } else { 0 }];
                    let fused = loss
                        .and_grad(&x, &y, &z, Reduction::Sum, &mut g, &mut g2)
                        .unwrap();
                    assert!(
                        fused.is_nan(),
                        "{} on {tier}: NaN {} fused",
                        loss.id,
                        loss.names[at]
                    );
                }
            })
            .unwrap();
        }
    }
}

#[test]
fn errors_name_the_argument_and_write_nothing() {
    for &loss in TERNARY {
        let [x, y, z] = sample::<f64>(loss, 5, 1);
        let short = &x[..4];
        let [a, b, c] = loss.names;
        let mism = |name, len| common::length_mismatch(name, len, a, 5);
        let mut out = vec![7.0f64; 5];
        let mut g = vec![7.0f64; 5];
        let mut g2 = vec![7.0f64; if loss.grad2.is_some() { 5 } else { 0 }];
        let r = Reduction::Mean;
        assert_eq!(
            loss.reduce(&x, short, &z, r),
            Err(mism(b, 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.reduce(&x, &y, short, r),
            Err(mism(c, 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.each(&x, short, &z, &mut out),
            Err(mism(b, 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.each(&x, &y, short, &mut out),
            Err(mism(c, 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.each(&x, &y, &z, &mut out[..4]),
            Err(mism("out", 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.and_grad(&x, &y, short, r, &mut g, &mut g2),
            Err(mism(c, 4)),
            "{}",
            loss.id
        );
        assert_eq!(
            loss.and_grad(&x, &y, &z, r, &mut g[..4], &mut g2),
            Err(mism(loss.grad_name(), 4)),
            "{}",
            loss.id
        );
        if loss.grad2.is_some() {
            assert_eq!(
                loss.and_grad(&x, &y, &z, r, &mut g, &mut g2[..4]),
                Err(mism(loss.grad2_name(), 4)),
                "{}",
                loss.id
            );
        }
        assert!(
            out.iter().chain(&g).chain(&g2).all(|&v| v == 7.0),
            "{}: written",
            loss.id
        );
        // A checked domain: the first bad element of each checked input, in every form.
        for (i, input) in loss.inputs.iter().enumerate() {
            let bad = match input {
                Input::NonNegativeChecked => -0.5,
                Input::Plain(crate::registry::Domain::Probability) => 1.5,
                _ => continue,
            };
            let mut v = [x.clone(), y.clone(), z.clone()];
            v[i][3] = bad;
            let want = input
                .first_error(loss.names[i], v[i].iter().copied())
                .unwrap();
            let [p, q, s] = &v;
            let e1 = loss.reduce(p, q, s, r).unwrap_err();
            let e2 = loss.each(p, q, s, &mut out).unwrap_err();
            let e3 = loss.and_grad(p, q, s, r, &mut g, &mut g2).unwrap_err();
            for e in [e1, e2, e3] {
                assert!(
                    same_error(&e, &want),
                    "{}: {e:?}, expected {want:?}",
                    loss.id
                );
            }
            assert!(
                out.iter().chain(&g).chain(&g2).all(|&v| v == 7.0),
                "{}: written",
                loss.id
            );
        }
    }
}

#[test]
fn parameters_are_checked() {
    let (x, y, z) = ([0.5f32], [0.25f32], [1.0f32]);
    let r = Reduction::Mean;
    let param = |name, value, requirement| LossError::InvalidParameter {
        name,
        value,
        requirement,
    };
    for eps in [-1.0f32, f32::NAN, f32::NEG_INFINITY] {
        let g = losskit::GaussianNll::new().eps(eps);
        let want = param("eps", eps as f64, ">= 0");
        let mut out = [0.0f32];
        let (mut g1, mut g2) = ([0.0f32], [0.0f32]);
        for e in [
            g.loss(&x, &y, &z, r).unwrap_err(),
            g.each(&x, &y, &z, &mut out).unwrap_err(),
            g.loss_and_grad(&x, &y, &z, r, &mut g1, &mut g2)
                .unwrap_err(),
        ] {
            assert!(same_error(&e, &want), "eps {eps}: {e:?}");
        }
    }
    assert!(losskit::GaussianNll::new()
        .eps(0.0f32)
        .loss(&x, &y, &z, r)
        .is_ok());
    for m in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let want = param("margin", m as f64, "finite");
        let mut out = [0.0f32];
        let (mut g1, mut g2) = ([0.0f32], [0.0f32]);
        for e in [
            losskit::margin_ranking(&x, &y, &z, m, r).unwrap_err(),
            losskit::margin_ranking_each(&x, &y, &z, m, &mut out).unwrap_err(),
            losskit::margin_ranking_and_grad(&x, &y, &z, m, r, &mut g1, &mut g2).unwrap_err(),
        ] {
            assert!(same_error(&e, &want), "margin {m}: {e:?}");
        }
    }
    for delta in [0.0f32, -1.0, f32::NAN] {
        let want = param("delta", delta as f64, "> 0");
        let mut out = [0.0f32];
        let mut g = [0.0f32];
        for e in [
            losskit::huber_weighted(&x, &y, &z, delta, r).unwrap_err(),
            losskit::huber_weighted_each(&x, &y, &z, delta, &mut out).unwrap_err(),
            losskit::huber_weighted_and_grad(&x, &y, &z, delta, r, &mut g).unwrap_err(),
        ] {
            assert!(same_error(&e, &want), "delta {delta}: {e:?}");
        }
    }
    let bad = losskit::Bce::new()
        .epsilon(0.75f32)
        .loss_weighted(&x, &y, &z, r)
        .unwrap_err();
    assert!(
        same_error(&bad, &param("epsilon", 0.75, "in [0, 0.5]")),
        "{bad:?}"
    );
    let bad = losskit::BceWithLogits::new()
        .pos_weight(-1.0f32)
        .loss_weighted(&x, &y, &z, r)
        .unwrap_err();
    assert!(
        same_error(&bad, &param("pos_weight", -1.0, ">= 0")),
        "{bad:?}"
    );
}

/// With every weight 1 each weighted loss gives its unweighted loss's bits, in every form.
fn ones_are_unweighted<S: Storage<Compute = T> + Widened, T: Elem>() {
    let n = 70_001;
    let mut s = 5u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<S> = (0..n).map(|_| S::from(4.0 * next() - 2.0)).collect();
    let p: Vec<S> = (0..n).map(|_| S::from(0.05 + 0.9 * next())).collect();
    let t: Vec<S> = (0..n).map(|_| S::from(next())).collect();
    let w: Vec<S> = vec![S::from(1.0); n];
    let bits = |v: T| v.bits();
    let gbits = |g: &[S]| g.iter().map(|v| v.wide().to_bits()).collect::<Vec<_>>();
    for tier in Tier::available() {
        with_tier(tier, || {
            for r in [Reduction::Mean, Reduction::Sum] {
                let pairs: [(&str, T, T); 5] = [
                    (
                        "mse",
                        losskit::mse(&x, &t, r).unwrap(),
                        losskit::mse_weighted(&x, &t, &w, r).unwrap(),
                    ),
                    (
                        "l1",
                        losskit::l1(&x, &t, r).unwrap(),
                        losskit::l1_weighted(&x, &t, &w, r).unwrap(),
                    ),
                    (
                        "huber",
                        losskit::huber(&x, &t, T::of(0.5), r).unwrap(),
                        losskit::huber_weighted(&x, &t, &w, T::of(0.5), r).unwrap(),
                    ),
                    (
                        "bce",
                        losskit::bce(&p, &t, r).unwrap(),
                        losskit::bce_weighted(&p, &t, &w, r).unwrap(),
                    ),
                    (
                        "bce_with_logits",
                        losskit::bce_with_logits(&x, &t, r).unwrap(),
                        losskit::bce_with_logits_weighted(&x, &t, &w, r).unwrap(),
                    ),
                ];
                for (name, a, b) in pairs {
                    assert_eq!(bits(a), bits(b), "{name} {r:?} on {tier}");
                }
                let (mut g1, mut g2) = (vec![S::from(0.0); n], vec![S::from(0.0); n]);
                losskit::mse_and_grad(&x, &t, r, &mut g1).unwrap();
                losskit::mse_weighted_and_grad(&x, &t, &w, r, &mut g2).unwrap();
                assert_eq!(gbits(&g1), gbits(&g2), "mse grad {r:?} on {tier}");
                losskit::bce_with_logits_and_grad(&x, &t, r, &mut g1).unwrap();
                losskit::bce_with_logits_weighted_and_grad(&x, &t, &w, r, &mut g2).unwrap();
                assert_eq!(
                    gbits(&g1),
                    gbits(&g2),
                    "bce_with_logits grad {r:?} on {tier}"
                );
                losskit::bce_and_grad(&p, &t, r, &mut g1).unwrap();
                losskit::bce_weighted_and_grad(&p, &t, &w, r, &mut g2).unwrap();
                assert_eq!(gbits(&g1), gbits(&g2), "bce grad {r:?} on {tier}");
            }
            let mut o1 = vec![T::of(0.0); n];
            let mut o2 = vec![T::of(0.0); n];
            losskit::l1_each(&x, &t, &mut o1).unwrap();
            losskit::l1_weighted_each(&x, &t, &w, &mut o2).unwrap();
            assert!(
                o1.iter().zip(&o2).all(|(a, b)| a.bits() == b.bits()),
                "l1 each on {tier}"
            );
        })
        .unwrap();
    }
}

#[test]
fn a_weight_of_ones_is_the_unweighted_loss_bit_for_bit() {
    ones_are_unweighted::<f32, f32>();
    ones_are_unweighted::<f64, f64>();
    ones_are_unweighted::<bf16, f32>();
    ones_are_unweighted::<f16, f32>();
}

#[test]
fn the_oracle_itself_is_pytorch_on_hand_values() {
    // gaussian_nll: var below eps is clamped, and its gradient is taken at the clamp.
    let l = reference::gaussian_nll(1.0f64, 0.0, 0.0, false, 0.25);
    assert!((l - 0.5 * (0.25f64.ln() + 4.0)).abs() < 1e-15);
    let gv = reference::gaussian_nll_grad_var(1.0f64, 0.0, 0.0, 0.25);
    assert!((gv - 0.5 * (4.0 - 16.0)).abs() < 1e-15);
    assert_eq!(reference::margin_ranking(1.0f32, 0.0, 1.0, 0.5), 0.0);
    assert_eq!(reference::margin_ranking(0.0f32, 1.0, 1.0, 0.5), 1.5);
}
