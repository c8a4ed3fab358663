//! Shared by the integration tests: the PyTorch conformance vectors and value generators.
#![allow(dead_code)]

use std::io::Read;

use serde_json::Value;

/// One line of `tests/data/golden.jsonl.gz` (or `golden2.jsonl.gz`).
pub struct Case {
    pub id: String,
    pub loss: String,
    pub dtype: String,
    pub params: Value,
    pub inputs: Value,
    pub shape: Vec<usize>,
    pub expected: Value,
    pub grad_mean: Option<Vec<f64>>,
    /// golden2's `grads` (`{name: d mean / d name}` for the differentiable inputs after the
    /// first), `Null` when absent. It is also named in `other_fields`, so a test that does not
    /// check it still rejects the case.
    pub grads: Value,
    /// The names of the line's other top-level fields (golden2's `grads`, `nonfinite`), which
    /// a test that does not handle them must reject.
    pub other_fields: Vec<String>,
}

/// The top-level fields [`Case`] parses.
const CASE_FIELDS: [&str; 8] = [
    "id",
    "loss",
    "dtype",
    "params",
    "inputs",
    "shape",
    "expected",
    "grad_mean",
];

/// Every case of the vendored PyTorch truth vectors.
pub fn golden_cases() -> Vec<Case> {
    read_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/data/golden.jsonl.gz"))
}

/// Every case of a gzipped JSON-lines file of PyTorch truth vectors, in file order.
pub fn read_cases(path: &str) -> Vec<Case> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{path}: not valid gzip text: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("valid JSON line");
            Case {
                other_fields: v
                    .as_object()
                    .expect("a JSON object per line")
                    .keys()
                    .filter(|k| !CASE_FIELDS.contains(&k.as_str()))
                    .cloned()
                    .collect(),
                id: v["id"].as_str().unwrap().to_owned(),
                loss: v["loss"].as_str().unwrap().to_owned(),
                dtype: v["dtype"].as_str().unwrap().to_owned(),
                params: v["params"].clone(),
                inputs: v["inputs"].clone(),
                shape: v["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as usize)
                    .collect(),
                expected: v["expected"].clone(),
                grad_mean: v["grad_mean"]
                    .as_array()
                    .map(|a| a.iter().map(num).collect()),
                grads: v.get("grads").cloned().unwrap_or(Value::Null),
            }
        })
        .collect()
}

/// A JSON number, or one of the strings "inf", "-inf", "nan".
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => panic!("unexpected number string {other:?}"),
        },
        other => panic!("expected a number, got {other}"),
    }
}

pub fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
        .iter()
        .map(num)
        .collect()
}

/// The conformance README's default `(rtol, atol)` for results of dtype `dtype`, which must be
/// "f32" or "f64" (half-precision cases have their own rules; see `conformance2.rs`).
pub fn tolerance(dtype: &str) -> (f64, f64) {
    match dtype {
        "f32" => (1e-5, 1e-6),
        "f64" => (1e-11, 1e-13),
        other => panic!("no default tolerance for dtype {other:?}"),
    }
}

/// The conformance README's agreement rule for a result `got` of dtype `dtype`.
pub fn agrees(got: f64, expected: f64, dtype: &str) -> bool {
    agrees_within(got, expected, tolerance(dtype))
}

/// The agreement rule `|got - expected| <= atol + rtol |expected|` for a finite `expected`; a
/// non-finite `expected` must be matched in kind (NaN by NaN, an infinity by itself).
pub fn agrees_within(got: f64, expected: f64, (rtol, atol): (f64, f64)) -> bool {
    if expected.is_nan() {
        got.is_nan()
    } else if expected.is_infinite() {
        got == expected
    } else {
        (got - expected).abs() <= atol + rtol * expected.abs()
    }
}

/// Element-type-generic access to the conformance values; the registry's forms and reference
/// twins exist for every `Elem`.
pub trait Elem:
    losskit::Float + crate::registry::Stored<Compute = Self> + crate::registry::Computed
{
    fn of(x: f64) -> Self;
    fn f64(self) -> f64;
    /// The bit pattern, widened to 64 bits (for bit-for-bit comparisons).
    fn bits(self) -> u64;
}
impl Elem for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}
impl Elem for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// Equality of errors with NaN values equal to each other (`LossError: PartialEq` compares
/// `f64` fields with `==`, so an error about a NaN parameter is never equal to itself).
pub fn same_error(a: &losskit::LossError, b: &losskit::LossError) -> bool {
    use losskit::LossError::{InvalidParameter, NotAProbability};
    let same_value = |v1: &f64, v2: &f64| v1 == v2 || (v1.is_nan() && v2.is_nan());
    match (a, b) {
        (
            InvalidParameter {
                name: n1,
                value: v1,
                requirement: r1,
            },
            InvalidParameter {
                name: n2,
                value: v2,
                requirement: r2,
            },
        ) => n1 == n2 && r1 == r2 && same_value(v1, v2),
        (
            NotAProbability {
                name: n1,
                index: i1,
                value: v1,
            },
            NotAProbability {
                name: n2,
                index: i2,
                value: v2,
            },
        ) => n1 == n2 && i1 == i2 && same_value(v1, v2),
        _ => a == b,
    }
}

/// `LossError::LengthMismatch` with these fields.
pub fn length_mismatch(
    name: &'static str,
    len: usize,
    expected_name: &'static str,
    expected: usize,
) -> losskit::LossError {
    losskit::LossError::LengthMismatch {
        name,
        len,
        expected_name,
        expected,
    }
}

pub fn to<T: Elem>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::of(x)).collect()
}

/// Checks one reduced or per-element result; records a failure message instead of panicking so
/// that one run reports every disagreement.
pub fn check(
    failures: &mut Vec<String>,
    id: &str,
    what: &str,
    got: f64,
    expected: f64,
    dtype: &str,
) {
    check_within(failures, id, what, got, expected, tolerance(dtype));
}

/// [`check`] at an explicit `(rtol, atol)`.
pub fn check_within(
    failures: &mut Vec<String>,
    id: &str,
    what: &str,
    got: f64,
    expected: f64,
    tol: (f64, f64),
) {
    if !agrees_within(got, expected, tol) {
        failures.push(format!("{id} {what}: got {got:e}, expected {expected:e}"));
    }
}

/// The registry's pointwise loss of `case` and the case's parameter, by the name the registry
/// gives it (`None`: the form without it); panics on an unknown loss or a missing parameter.
pub fn pointwise_case(case: &Case) -> (&'static crate::registry::Pointwise, Option<f64>) {
    let Some(loss) = crate::registry::find_pointwise(&case.loss) else {
        panic!("{}: unknown loss {:?}", case.id, case.loss);
    };
    let setting = loss
        .param
        .and_then(|spec| case.params.get(spec.name).and_then(|v| v.as_f64()));
    assert!(
        setting.is_some() || loss.param.is_none() || loss.param_optional,
        "{}: {} needs its parameter",
        case.id,
        case.loss
    );
    (loss, setting)
}

/// A cross-entropy case's inputs in element type `T`, with the builder its params describe.
pub struct CeInputs<T> {
    pub classes: usize,
    pub logits: Vec<T>,
    pub weight: Option<Vec<T>>,
    pub ignore_index: Option<i64>,
    pub smoothing: Option<f64>,
    /// Class labels (`cross_entropy`), or empty.
    pub labels: Vec<i64>,
    /// Probability targets (`cross_entropy_probs`), or empty.
    pub probs: Vec<T>,
}

impl<T: Elem> CeInputs<T> {
    pub fn of(case: &Case) -> Self {
        let p = &case.params;
        let target = &case.inputs["target"];
        let (labels, probs) = if case.loss == "cross_entropy" {
            (
                target
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect(),
                Vec::new(),
            )
        } else {
            (Vec::new(), to(&nums(target)))
        };
        CeInputs {
            classes: p["classes"].as_u64().unwrap() as usize,
            logits: to(&nums(&case.inputs["logits"])),
            weight: p.get("weight").map(|w| to(&nums(w))),
            ignore_index: p.get("ignore_index").and_then(|v| v.as_i64()),
            smoothing: p.get("label_smoothing").and_then(|v| v.as_f64()),
            labels,
            probs,
        }
    }

    /// The row targets a registry loss of `kind` takes from this case.
    pub fn targets(&self, kind: crate::registry::Kind) -> crate::registry::Targets<'_, T> {
        use crate::registry::{Kind, Targets};
        match kind {
            Kind::RowsWithLabels => Targets::Labels(&self.labels),
            Kind::RowsWithProbs => Targets::Probs(&self.probs),
            Kind::Pointwise => unreachable!("a cross-entropy case is row-wise"),
        }
    }

    /// The registry's options for exactly what the case sets.
    pub fn options(&self) -> crate::registry::RowOptions<'_, T> {
        crate::registry::RowOptions {
            weight: self.weight.as_deref(),
            ignore_index: self.ignore_index,
            label_smoothing: self.smoothing,
            z_loss: None,
            softcap: None,
            p: None,
            margin: None,
        }
    }

    /// `CrossEntropy` with exactly the options the case sets.
    pub fn builder(&self) -> losskit::CrossEntropy<'_, T> {
        let mut ce = losskit::CrossEntropy::new();
        if let Some(w) = &self.weight {
            ce = ce.weight(w);
        }
        if let Some(i) = self.ignore_index {
            ce = ce.ignore_index(i);
        }
        if let Some(s) = self.smoothing {
            ce = ce.label_smoothing(s);
        }
        ce
    }

    /// Whether the case uses PyTorch's defaults only.
    pub fn plain(&self) -> bool {
        self.weight.is_none() && self.ignore_index.is_none() && self.smoothing.is_none()
    }
}

/// A rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// `f` in a fresh pool of `threads` threads with `tier` pinned: the determinism tests run the
/// same computation this way for each thread count and compare bits.
pub fn on_pool<R: Send>(threads: usize, tier: losskit::Tier, f: impl FnOnce() -> R + Send) -> R {
    pool(threads).install(|| losskit::with_tier(tier, f).unwrap())
}

/// Row `r`'s target for the reference twins: its slice of `probs` (rows of `classes`) when
/// `as_probs`, else its class label, or [`RowTarget::Ignored`] for PyTorch's -100.
///
/// [`RowTarget::Ignored`]: losskit::reference::RowTarget::Ignored
pub fn row_target<'a, T>(
    r: usize,
    as_probs: bool,
    probs: &'a [T],
    labels: &[i64],
    classes: usize,
) -> losskit::reference::RowTarget<'a, T> {
    use losskit::reference::RowTarget;
    if as_probs {
        RowTarget::Probs(&probs[r * classes..(r + 1) * classes])
    } else if labels[r] == -100 {
        RowTarget::Ignored
    } else {
        RowTarget::Class(labels[r] as usize)
    }
}

/// A deterministic stream of 64-bit values (SplitMix64).
pub fn splitmix(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Any of the crate's storage types, with its values as `f64` (exactly), for suites that run
/// every storage type.
pub trait AnyStorage: losskit::Storage<Compute: Elem> {
    /// `x` rounded to the type.
    fn of(x: f64) -> Self;
    /// The value, exactly.
    fn wide(self) -> f64;
}
impl AnyStorage for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn wide(self) -> f64 {
        self as f64
    }
}
impl AnyStorage for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn wide(self) -> f64 {
        self
    }
}
impl AnyStorage for losskit::bf16 {
    fn of(x: f64) -> Self {
        losskit::bf16::from_f64(x)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
}
impl AnyStorage for losskit::f16 {
    fn of(x: f64) -> Self {
        losskit::f16::from_f64(x)
    }
    fn wide(self) -> f64 {
        self.to_f64()
    }
}

/// The unit roundoff of the compute type and the relative rounding of a store to `S`.
pub fn units<S: AnyStorage>() -> (f64, f64, f64) {
    let u = if S::Compute::of(1.0 + f64::EPSILON).f64() > 1.0 {
        f64::EPSILON / 2.0
    } else {
        f32::EPSILON as f64 / 2.0
    };
    // bf16 keeps 8 significant bits and f16 11; a store is within a unit in the last place, or
    // the smallest subnormal (bf16: 2^-133, f16: 2^-24) below their normal ranges.
    let (store, tiny) = match std::mem::size_of::<S>() {
        2 if S::of(1.0 + 1.0 / 1024.0).wide() > 1.0 => (1.0 / 2048.0, 2f64.powi(-24)),
        2 => (1.0 / 256.0, 2f64.powi(-133)),
        _ => (0.0, 0.0),
    };
    (u, store, tiny)
}

/// The checks every row-wise suite makes of one tier's results (`bits` = mean, sum, fused
/// mean, ...; `each` the rows' losses) against the twin's row losses `twin` and their error
/// bounds `bounds`, to which the final rounding is added here (`2u` of each row, of the sum and
/// of the mean, and `4·rows·ε` of the f64 sum of rows): each row's loss, the sum and the mean
/// (the mean of no rows NaN), and the fused mean the mean's bits.
pub fn check_row_losses(
    tier: losskit::Tier,
    u: f64,
    bits: &[u64],
    each: &[f64],
    twin: &[f64],
    bounds: &[f64],
) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prop_assert;
    let rows = twin.len();
    for r in 0..rows {
        let (got, want) = (each[r], twin[r]);
        let bound = bounds[r] + 2.0 * u * want.abs();
        prop_assert!(
            (got - want).abs() <= bound,
            "row {r} on {tier}: {got:e} vs twin {want:e} (bound {bound:e})"
        );
    }
    let total: f64 = twin.iter().sum();
    let bound = bounds.iter().sum::<f64>() + 4.0 * rows as f64 * f64::EPSILON * total.abs();
    let (mean, sum) = (f64::from_bits(bits[0]), f64::from_bits(bits[1]));
    prop_assert!(
        (sum - total).abs() <= bound + 2.0 * u * total.abs(),
        "sum on {tier}: {sum:e} vs twin {total:e}"
    );
    if rows == 0 {
        prop_assert!(bits[0] == 1, "the mean of no rows is NaN, got {mean:e}");
    } else {
        let want = total / rows as f64;
        prop_assert!(
            (mean - want).abs() <= bound / rows as f64 + 2.0 * u * want.abs(),
            "mean on {tier}: {mean:e} vs twin {want:e}"
        );
    }
    prop_assert!(
        bits[0] == bits[2],
        "the fused mean is not the mean on {tier}"
    );
    Ok(())
}

/// The two x86 tiers' results (`x86`, where the CPU has both) bit-identical, and `run` on the
/// last tier bit-identical on one and on two threads.
pub fn check_x86_and_threads(
    x86: &[(losskit::Tier, Vec<u64>)],
    run: impl Fn() -> Vec<u64> + Sync,
) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prop_assert;
    if let [(a, first), (b, second)] = x86 {
        prop_assert!(first == second, "{a} and {b} differ");
    }
    let tier = *losskit::Tier::available().last().unwrap();
    let one = on_pool(1, tier, &run);
    let two = on_pool(2, tier, &run);
    prop_assert!(one == two, "1 and 2 threads differ on {tier}");
    Ok(())
}
