//! Cross-entropy and its eval statistics as aggregates over a column of logit rows (`List`,
//! `LargeList` or `FixedSizeList` of floats) and a column of integer labels: `cross_entropy`,
//! `perplexity`, `ce_accuracy` and `ce_top_k_accuracy`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};
use datafusion::scalar::ScalarValue;
use losskit::{CeStats, CrossEntropy, Partial, Reduction};

use crate::columns::{counted_runs, exec, Floats, ListRows};
use crate::{literal_f64, state, CallSite};

/// PyTorch's default `ignore_index`: rows with this label are not counted.
pub const IGNORE_INDEX: i64 = -100;

/// Which statistic an aggregate computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    CrossEntropy,
    Perplexity,
    Accuracy,
    TopKAccuracy,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [
        Kind::CrossEntropy,
        Kind::Perplexity,
        Kind::Accuracy,
        Kind::TopKAccuracy,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::CrossEntropy => "cross_entropy",
            Kind::Perplexity => "perplexity",
            Kind::Accuracy => "ce_accuracy",
            Kind::TopKAccuracy => "ce_top_k_accuracy",
        }
    }

    /// Whether the aggregate sums per-row losses (a [`Partial`]) rather than counting hits
    /// (a [`CeStats`]).
    fn sums_losses(self) -> bool {
        matches!(self, Kind::CrossEntropy | Kind::Perplexity)
    }
}

/// One of the four classification aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClassificationUdaf {
    kind: Kind,
    signature: Signature,
}

impl ClassificationUdaf {
    pub(crate) fn new(kind: Kind) -> Self {
        ClassificationUdaf {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ClassificationUdaf {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.kind.name();
        let arity = if self.kind == Kind::TopKAccuracy {
            3
        } else {
            2
        };
        if arg_types.len() != arity {
            return Err(exec(format!(
                "{name} takes {arity} arguments (logits, label{}), not {}",
                if arity == 3 { ", k" } else { "" },
                arg_types.len()
            )));
        }
        let logits = match &arg_types[0] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if matches!(
                    f.data_type(),
                    DataType::Float16 | DataType::Float32 | DataType::Float64
                ) =>
            {
                arg_types[0].clone()
            }
            other => {
                return Err(exec(format!(
                    "{name}: the logits must be a list of floats (List, LargeList or \
                     FixedSizeList of Float16, Float32 or Float64), not {other}"
                )))
            }
        };
        if !(arg_types[1].is_integer() || arg_types[1] == DataType::Null) {
            return Err(exec(format!(
                "{name}: the labels must be integers, not {}",
                arg_types[1]
            )));
        }
        let mut types = vec![logits, DataType::Int64];
        if arity == 3 {
            types.push(DataType::Int64);
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format_state_name(args.name, "partial"),
                DataType::Binary,
                true,
            )),
            Arc::new(Field::new(
                format_state_name(args.name, "classes"),
                DataType::UInt64,
                true,
            )),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let site = CallSite::new(self.kind.name(), &args);
        let k = if self.kind == Kind::TopKAccuracy {
            let k = literal_f64(&args.exprs[2], &site, "k")?;
            if !(k >= 1.0 && k <= u32::MAX as f64 && k.fract() == 0.0) {
                return Err(exec(format!(
                    "{}: k must be an integer >= 1, not {k}",
                    site.call
                )));
            }
            k as usize
        } else {
            5
        };
        Ok(Box::new(ClassificationAccumulator {
            kind: self.kind,
            k,
            site,
            classes: None,
            sums: if self.kind.sums_losses() {
                Sums::Losses(Partial::new())
            } else {
                Sums::Stats(None)
            },
        }))
    }
}

#[derive(Debug)]
struct ClassificationAccumulator {
    kind: Kind,
    k: usize,
    site: CallSite,
    /// Every counted row's length (set by the first one).
    classes: Option<usize>,
    sums: Sums,
}

/// What an accumulator sums, by kind.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per group, inside the accumulator DataFusion boxes; both variants are over 1 KiB"
)]
enum Sums {
    /// The per-row losses' exact sum (cross-entropy, perplexity).
    Losses(Partial),
    /// The hit counts (accuracies); `None` before the first row.
    Stats(Option<CeStats>),
}

impl Sums {
    fn merge_losses(&mut self, other: &Partial) {
        if let Sums::Losses(losses) = self {
            *losses = losses.merge(other);
        }
    }

    fn merge_stats(&mut self, other: CeStats) {
        if let Sums::Stats(stats) = self {
            *stats = Some(match stats {
                Some(stats) => stats.merge(&other),
                None => other,
            });
        }
    }
}

impl ClassificationAccumulator {
    /// Adds the rows `logits` (`classes` each) with `labels`.
    fn add<S: losskit::Storage>(
        &mut self,
        logits: &[S],
        classes: usize,
        labels: &[i64],
    ) -> Result<()> {
        let call = &self.site.call;
        let error = |e: losskit::LossError| exec(format!("{call}: {e}"));
        if self.kind.sums_losses() {
            // Each row's loss is added exactly, so the sum's bits do not depend on how rows
            // were batched or partitioned.
            let ce = CrossEntropy::<S::Compute>::new();
            let part = Partial::from_each(labels.len(), |r, out| {
                let x = &logits[r.start * classes..r.end * classes];
                ce.each(x, classes, &labels[r], out)
            })
            .map_err(error)?;
            self.sums.merge_losses(&part);
        } else {
            let part = CrossEntropy::<S::Compute>::new()
                .top_k(self.k)
                .stats(logits, classes, labels)
                .map_err(error)?;
            self.sums.merge_stats(part);
        }
        Ok(())
    }

    fn set_classes(&mut self, classes: usize) -> Result<()> {
        match self.classes {
            Some(c) if c != classes => Err(exec(format!(
                "{}: {} has rows of {classes} values and of {c}",
                self.site.call,
                self.site.arg(0)
            ))),
            _ => {
                self.classes = Some(classes);
                Ok(())
            }
        }
    }
}

impl Accumulator for ClassificationAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let logits_name = self.site.arg(0);
        let rows = ListRows::of(&values[0], &logits_name)?;
        let labels = values[1]
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| exec(format!("{}: labels are not Int64", self.site.call)))?;
        let keep: BooleanBuffer = labels.values().iter().map(|&l| l != IGNORE_INDEX).collect();
        let runs = counted_runs(labels.len(), &[rows.nulls(), labels.nulls()], Some(keep));
        let child = rows.values();
        let floats = Floats::of(child.as_ref(), &logits_name)?;
        for (start, end) in runs {
            let classes = match self.classes {
                Some(c) => c,
                None => rows.len_of(start),
            };
            if classes == 0 {
                return Err(exec(format!(
                    "{}: {logits_name} has a row of no values",
                    self.site.call
                )));
            }
            self.set_classes(classes)?;
            let span = rows.contiguous(start..end, classes, &logits_name)?;
            if let Some(nulls) = child.nulls() {
                if nulls.slice(span.start, span.len()).null_count() > 0 {
                    return Err(exec(format!(
                        "{}: {logits_name} has a NULL inside a row",
                        self.site.call
                    )));
                }
            }
            let labels = &labels.values()[start..end];
            match floats {
                Floats::F16(x) => self.add(&x[span], classes, labels)?,
                Floats::F32(x) => self.add(&x[span], classes, labels)?,
                Floats::F64(x) => self.add(&x[span], classes, labels)?,
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = match &self.sums {
            Sums::Losses(losses) => (losses.count() > 0).then(|| losses.finish(Reduction::Mean)),
            Sums::Stats(stats) => {
                stats
                    .as_ref()
                    .filter(|s| s.counted() > 0)
                    .map(|s| match self.kind {
                        Kind::TopKAccuracy => s.top_k_accuracy(),
                        _ => s.accuracy(),
                    })
            }
        };
        Ok(ScalarValue::Float64(match self.kind {
            Kind::Perplexity => value.map(f64::exp),
            _ => value,
        }))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.site.heap_size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let partial = match &self.sums {
            Sums::Losses(losses) => state::encode(losses)?,
            Sums::Stats(Some(stats)) => state::encode(stats)?,
            Sums::Stats(None) => ScalarValue::Binary(None),
        };
        Ok(vec![
            partial,
            ScalarValue::UInt64(self.classes.map(|c| c as u64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let classes = states[1].as_primitive_opt::<UInt64Type>().ok_or_else(|| {
            exec(format!(
                "{}: a state's classes are not UInt64",
                self.site.call
            ))
        })?;
        for c in classes.iter().flatten() {
            let c = usize::try_from(c)
                .map_err(|_| exec(format!("{}: a state has {c} classes", self.site.call)))?;
            self.set_classes(c)?;
        }
        match self.sums {
            Sums::Losses(_) => state::decode_each(&states[0], |other: Partial| {
                self.sums.merge_losses(&other);
                Ok(())
            }),
            Sums::Stats(_) => state::decode_each(&states[0], |other: CeStats| {
                self.sums.merge_stats(other);
                Ok(())
            }),
        }
    }
}
