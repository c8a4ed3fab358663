//! The regression and binary losses as aggregates: `mse`, `l1`, `huber`, `smooth_l1`, `bce` and
//! `bce_with_logits` over two float columns, the mean over the rows where neither is NULL.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::scalar::ScalarValue;
use losskit::{partial, Partial, Reduction};

use crate::columns::{counted_runs, exec, Floats};
use crate::{literal_f64, state, CallSite};

/// Which loss an aggregate computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Mse,
    L1,
    Huber,
    SmoothL1,
    Bce,
    BceWithLogits,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Mse,
        Kind::L1,
        Kind::Huber,
        Kind::SmoothL1,
        Kind::Bce,
        Kind::BceWithLogits,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Mse => "mse",
            Kind::L1 => "l1",
            Kind::Huber => "huber",
            Kind::SmoothL1 => "smooth_l1",
            Kind::Bce => "bce",
            Kind::BceWithLogits => "bce_with_logits",
        }
    }

    /// The name of the optional third argument (a literal), if the loss takes one.
    fn parameter(self) -> Option<&'static str> {
        match self {
            Kind::Huber => Some("delta"),
            Kind::SmoothL1 => Some("beta"),
            _ => None,
        }
    }

    /// The partial result of rows `input`, `target` (of one storage type).
    fn partial<S: losskit::Storage>(
        self,
        input: &[S],
        target: &[S],
        parameter: S::Compute,
    ) -> Result<Partial, losskit::LossError> {
        match self {
            Kind::Mse => partial::mse(input, target),
            Kind::L1 => partial::l1(input, target),
            Kind::Huber => partial::huber(input, target, parameter),
            Kind::SmoothL1 => partial::smooth_l1(input, target, parameter),
            Kind::Bce => partial::bce(input, target),
            Kind::BceWithLogits => partial::bce_with_logits(input, target),
        }
    }
}

/// One of the six pointwise aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PointwiseUdaf {
    kind: Kind,
    signature: Signature,
}

impl PointwiseUdaf {
    pub(crate) fn new(kind: Kind) -> Self {
        PointwiseUdaf {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The common float type of two columns: `Float64` if either is (or is an integer or decimal),
/// else `Float32` if either is, else `Float16`.
pub(crate) fn common_float(a: &DataType, b: &DataType, what: &str) -> Result<DataType> {
    let rank = |t: &DataType| match t {
        DataType::Null | DataType::Float16 => Ok(0),
        DataType::Float32 => Ok(1),
        t if t.is_numeric() => Ok(2),
        t => Err(exec(format!("{what}: {t} is not a number type"))),
    };
    Ok(match rank(a)?.max(rank(b)?) {
        0 => DataType::Float16,
        1 => DataType::Float32,
        _ => DataType::Float64,
    })
}

impl AggregateUDFImpl for PointwiseUdaf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.kind.name();
        let max = if self.kind.parameter().is_some() {
            3
        } else {
            2
        };
        if arg_types.len() < 2 || arg_types.len() > max {
            return Err(exec(format!(
                "{name} takes {} arguments (input, target{}), not {}",
                if max == 3 { "2 or 3" } else { "2" },
                self.kind
                    .parameter()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default(),
                arg_types.len()
            )));
        }
        let float = common_float(&arg_types[0], &arg_types[1], name)?;
        let mut types = vec![float.clone(), float];
        if arg_types.len() == 3 {
            types.push(DataType::Float64);
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "partial"),
            DataType::Binary,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let site = CallSite::new(self.kind.name(), &args);
        let parameter = match self.kind.parameter() {
            Some(name) if args.exprs.len() == 3 => {
                let value = literal_f64(&args.exprs[2], &site, name)?;
                // As losskit checks them: Huber's delta > 0, smooth L1's beta >= 0 (0 is L1).
                let (valid, bound) = match self.kind {
                    Kind::Huber => (value > 0.0, "> 0"),
                    _ => (value >= 0.0, ">= 0"),
                };
                if !(value.is_finite() && valid) {
                    return Err(exec(format!(
                        "{}: {name} must be a finite number {bound}, not {value}",
                        site.call
                    )));
                }
                value
            }
            _ => 1.0,
        };
        Ok(Box::new(PointwiseAccumulator {
            kind: self.kind,
            parameter,
            site,
            partial: Partial::new(),
        }))
    }
}

#[derive(Debug)]
struct PointwiseAccumulator {
    kind: Kind,
    /// Huber's delta or smooth L1's beta (1 unless given).
    parameter: f64,
    site: CallSite,
    partial: Partial,
}

impl PointwiseAccumulator {
    fn add<S: losskit::Storage>(
        &mut self,
        input: &[S],
        target: &[S],
        parameter: S::Compute,
        runs: &[(usize, usize)],
    ) -> Result<()> {
        for &(start, end) in runs {
            let part = self
                .kind
                .partial(&input[start..end], &target[start..end], parameter)
                .map_err(|e| exec(format!("{}: {e}", self.site.call)))?;
            self.partial = self.partial.merge(&part);
        }
        Ok(())
    }
}

impl Accumulator for PointwiseAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (input, target) = (&values[0], &values[1]);
        let runs = counted_runs(input.len(), &[input.nulls(), target.nulls()], None);
        let input_values = Floats::of(input.as_ref(), &self.site.arg(0))?;
        let target_values = Floats::of(target.as_ref(), &self.site.arg(1))?;
        let p = self.parameter;
        match (input_values, target_values) {
            (Floats::F16(x), Floats::F16(y)) => self.add(x, y, p as f32, &runs),
            (Floats::F32(x), Floats::F32(y)) => self.add(x, y, p as f32, &runs),
            (Floats::F64(x), Floats::F64(y)) => self.add(x, y, p, &runs),
            _ => Err(exec(format!(
                "{}: the input and target columns have different types ({} and {})",
                self.site.call,
                input.data_type(),
                target.data_type()
            ))),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.partial.count() > 0).then(|| self.partial.finish(Reduction::Mean)),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.site.heap_size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![state::encode(&self.partial)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        state::decode_each(&states[0], |other: Partial| {
            self.partial = self.partial.merge(&other);
            Ok(())
        })
    }
}
