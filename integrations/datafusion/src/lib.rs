//! [losskit]'s losses and eval statistics as [DataFusion] aggregate functions, so that an eval
//! over Parquet (or any table DataFusion reads) is one query, on one machine or, through
//! Ballista, on many:
//!
//! ```sql
//! SELECT model, cross_entropy(logits, label), ce_accuracy(logits, label),
//!        ce_top_k_accuracy(logits, label, 5), perplexity(logits, label)
//! FROM preds GROUP BY model
//! ```
//!
//! [`register`] adds ten aggregates to a `SessionContext`:
//!
//! | function | arguments | value |
//! |---|---|---|
//! | `mse`, `l1`, `bce`, `bce_with_logits` | `(input, target)` float columns | the mean loss |
//! | `huber`, `smooth_l1` | `(input, target [, delta or beta])`, the literal 1 if absent | the mean loss |
//! | `cross_entropy` | `(logits, label)`: a list of floats a row, an integer label | the mean loss |
//! | `perplexity` | `(logits, label)` | `exp` of the mean cross-entropy |
//! | `ce_accuracy` | `(logits, label)` | the share of rows whose label is the (first) argmax |
//! | `ce_top_k_accuracy` | `(logits, label, k)`, `k` a literal integer | the share within the top `k` |
//!
//! Inputs are `Float16`, `Float32` or `Float64` (two columns of different float types are
//! computed in the wider one; integers as `Float64`); logits are a `List`, `LargeList` or
//! `FixedSizeList` of one of them. Each batch goes to losskit's kernels whole, in place: a run of
//! rows without NULLs is one call, never one call a row.
//!
//! # Semantics
//! - A row where an argument is NULL is skipped, as SQL aggregates skip NULLs; so is a row
//!   whose label is PyTorch's `ignore_index`, [`IGNORE_INDEX`] (-100). The value over no
//!   counted rows is NULL.
//! - Every counted row of `logits` must have the same length (the number of classes), with no
//!   NULL inside; a label must be in `0..classes`; `bce`'s probabilities and targets in
//!   `[0, 1]`. Anything else is a query error that names the call and its columns, never a
//!   panic.
//!
//! # Exact, mergeable states
//! An aggregate's state is a losskit partial result: [`losskit::Partial`] (the exact sum of
//! the per-element or per-row losses, and their count) or [`losskit::CeStats`] (hit counts),
//! carried as one `Binary` value in its serde form (JSON) between partitions, and between
//! Ballista's executors. Merging is exact, and each row's loss is added exactly, so **the
//! result's bits do not depend on how the rows were batched, partitioned or merged**: a query
//! gives the same bits with 1, 2 or 8 target partitions, and on a cluster. (One exception,
//! which losskit documents: cross-entropy rows of at least 131072 classes in a batch run of
//! fewer than 16 rows are split within the row, whose loss may then differ in its last bits.)
//!
//! The price is losskit's partial path: each loss is computed by the kernel, then added to an
//! exact accumulator, which runs at a few ns an element rather than at memory speed (see
//! [`losskit::partial`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::error::Result<()> {
//! use datafusion::prelude::SessionContext;
//! let ctx = SessionContext::new();
//! losskit_datafusion::register(&ctx);
//! let df = ctx
//!     .sql("SELECT mse(x, y) AS mse, l1(x, y) AS l1 \
//!           FROM (VALUES (1.0, 0.0), (3.0, 1.0), (NULL, 4.0)) AS t(x, y)")
//!     .await?;
//! let batches = df.collect().await?;
//! let mse = batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Float64Array>();
//! assert_eq!(mse.unwrap().value(0), 2.5); // (1 + 4) / 2: the NULL row is skipped
//! # Ok(())
//! # }
//! ```
//!
//! # On Ballista
//!
//! Ballista (DataFusion's distributed scheduler) ships each aggregate's state between its
//! stages in the same serde form, so a cluster gives the bits of one process. Its executors
//! resolve aggregates by name from their own function registry: register the aggregates in the
//! session state the scheduler and executors are built from, and again on the client context
//! (Ballista 55's `upgrade_for_ballista` resets the client's aggregate list). For the
//! in-process standalone cluster:
//!
//! ```no_run
//! # async fn cluster() -> datafusion::error::Result<()> {
//! use ballista::prelude::{SessionConfigExt, SessionContextExt};
//! use datafusion::execution::SessionStateBuilder;
//! use datafusion::prelude::{SessionConfig, SessionContext};
//!
//! let state = SessionStateBuilder::new()
//!     .with_default_features()
//!     .with_config(SessionConfig::new_with_ballista().with_target_partitions(8))
//!     .build();
//! let local = SessionContext::new_with_state(state);
//! losskit_datafusion::register(&local); // the scheduler's and the executors' registries
//! let ctx = SessionContext::standalone_with_state(local.state()).await?;
//! losskit_datafusion::register(&ctx); // the client's, for planning
//! ctx.sql("SELECT cross_entropy(logits, label) FROM preds").await?;
//! # Ok(())
//! # }
//! ```
//!
//! A remote cluster's executors need the same: an executor process whose
//! `ExecutorProcessConfig::override_function_registry` holds [`udafs`] (a
//! `BallistaFunctionRegistry` built from a session state on which [`register`] ran).
//!
//! [losskit]: https://docs.rs/losskit
//! [DataFusion]: https://datafusion.apache.org

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::AggregateUDF;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

mod classification;
mod columns;
mod pointwise;
mod state;

pub use classification::IGNORE_INDEX;

/// Registers every aggregate of this crate (the [table above](crate)) on `ctx`, replacing any
/// function of the same name.
///
/// ```
/// use datafusion::execution::FunctionRegistry;
/// let ctx = datafusion::prelude::SessionContext::new();
/// losskit_datafusion::register(&ctx);
/// assert!(ctx.udaf("cross_entropy").is_ok());
/// ```
pub fn register(ctx: &SessionContext) {
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
}

/// The aggregates of this crate, for a registry other than a `SessionContext` (a Ballista
/// executor's, say).
///
/// ```
/// let names: Vec<String> =
///     losskit_datafusion::udafs().iter().map(|f| f.name().to_string()).collect();
/// assert_eq!(names.len(), 10);
/// assert!(names.contains(&"ce_top_k_accuracy".to_string()));
/// ```
pub fn udafs() -> Vec<AggregateUDF> {
    let pointwise = pointwise::Kind::ALL
        .into_iter()
        .map(|kind| AggregateUDF::from(pointwise::PointwiseUdaf::new(kind)));
    let classification = classification::Kind::ALL
        .into_iter()
        .map(|kind| AggregateUDF::from(classification::ClassificationUdaf::new(kind)));
    pointwise.chain(classification).collect()
}

/// A call as errors name it: `mse(pred, y)`.
#[derive(Debug)]
pub(crate) struct CallSite {
    /// The call, with its argument columns.
    call: String,
    /// The argument columns' names.
    args: Vec<String>,
}

impl CallSite {
    fn new(name: &str, args: &AccumulatorArgs) -> CallSite {
        let args: Vec<String> = args
            .expr_fields
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        CallSite {
            call: format!("{name}({})", args.join(", ")),
            args,
        }
    }

    /// Argument `i` as errors name it: "column `pred`".
    fn arg(&self, i: usize) -> String {
        match self.args.get(i) {
            Some(name) => format!("column `{name}`"),
            None => format!("argument {}", i + 1),
        }
    }

    fn heap_size(&self) -> usize {
        self.call.capacity() + self.args.iter().map(String::capacity).sum::<usize>()
    }
}

/// The value of a literal numeric argument (`name` in errors).
fn literal_f64(expr: &Arc<dyn PhysicalExpr>, site: &CallSite, name: &str) -> Result<f64> {
    let value = expr
        .downcast_ref::<Literal>()
        .map(Literal::value)
        .and_then(|v| {
            v.cast_to(&datafusion::arrow::datatypes::DataType::Float64)
                .ok()
        });
    match value {
        Some(ScalarValue::Float64(Some(v))) => Ok(v),
        _ => Err(columns::exec(format!(
            "{}: {name} must be a literal number",
            site.call
        ))),
    }
}
