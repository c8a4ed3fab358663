//! An eval as one SQL query: writes Parquet files of predictions (regression columns, and
//! classifier logits with labels), runs losskit's aggregates over them with DataFusion, checks
//! the results against losskit's one-call API, and times both (Parquet decoding excluded: the
//! query is timed over the decoded batches in memory; each time is the fastest of five runs). Then runs each query on the Parquet file
//! with 1, 2 and 8 target partitions, in DataFusion and on Ballista's in-process standalone
//! cluster, and checks that all six give the in-memory result's bits.
//!
//! ```text
//! cargo run --release --example sql_eval                 # 10M regression rows, 200K x 1000 logits
//! cargo run --release --example sql_eval -- --small      # 1M rows, 20K x 1000 logits
//! ```
//!
//! The files go to the system's temporary directory and are removed at the end.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    AsArray, FixedSizeListArray, Float32Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::SessionStateBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use losskit::{CrossEntropy, Reduction};

/// A deterministic stream of uniforms in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

const BATCH: usize = 65536;

fn write(path: &std::path::Path, batches: &[RecordBatch]) -> Result<()> {
    let file = std::fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

fn regression_batches(rows: usize) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("pred", DataType::Float32, false),
        Field::new("y", DataType::Float32, false),
    ]));
    let mut rng = Lcg(1);
    (0..rows)
        .step_by(BATCH)
        .map(|start| {
            let n = BATCH.min(rows - start);
            let model: Vec<&str> = (0..n).map(|i| ["a", "b"][(start + i) % 2]).collect();
            let y: Vec<f32> = (0..n).map(|_| rng.next()).collect();
            let pred: Vec<f32> = y.iter().map(|&v| v + 0.1 * (rng.next() - 0.5)).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(model)),
                    Arc::new(Float32Array::from(pred)),
                    Arc::new(Float32Array::from(y)),
                ],
            )
            .unwrap()
        })
        .collect()
}

fn classification_batches(rows: usize, classes: usize) -> Vec<RecordBatch> {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let logits_type = DataType::FixedSizeList(item.clone(), classes as i32);
    let schema = Arc::new(Schema::new(vec![
        Field::new("logits", logits_type, false),
        Field::new("label", DataType::Int64, false),
    ]));
    let mut rng = Lcg(2);
    let per_batch = (BATCH * 16 / classes).max(1);
    (0..rows)
        .step_by(per_batch)
        .map(|start| {
            let n = per_batch.min(rows - start);
            let labels: Vec<i64> = (0..n)
                .map(|_| ((rng.next() * classes as f32) as i64).min(classes as i64 - 1))
                .collect();
            let mut logits: Vec<f32> = (0..n * classes).map(|_| 4.0 * rng.next()).collect();
            for (r, &l) in labels.iter().enumerate() {
                logits[r * classes + l as usize] += 3.0;
            }
            let list = FixedSizeListArray::new(
                item.clone(),
                classes as i32,
                Arc::new(Float32Array::from(logits)),
                None,
            );
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(list), Arc::new(Int64Array::from(labels))],
            )
            .unwrap()
        })
        .collect()
}

/// The query's first row, as f64 columns.
async fn first_row(ctx: &SessionContext, sql: &str) -> Result<Vec<f64>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(batches[0]
        .columns()
        .iter()
        .map(|c| c.as_primitive::<Float64Type>().value(0))
        .collect())
}

/// Decodes `path` into memory (timed on its own) and returns a context whose table `t` holds
/// the decoded batches.
async fn decoded(path: &std::path::Path) -> Result<(SessionContext, Vec<RecordBatch>, f64)> {
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    losskit_datafusion::register(&ctx);
    let t = Instant::now();
    let df = ctx
        .read_parquet(path.to_str().unwrap(), ParquetReadOptions::default())
        .await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let partitions = df.collect_partitioned().await?;
    let decode = t.elapsed().as_secs_f64();
    let all: Vec<RecordBatch> = partitions.iter().flatten().cloned().collect();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, partitions)?))?;
    Ok((ctx, all, decode))
}

/// A Ballista standalone cluster (scheduler and executor in this process) of `partitions`
/// target partitions with the aggregates registered where Ballista looks for them (the crate
/// docs, "On Ballista").
async fn ballista_context(partitions: usize) -> Result<SessionContext> {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new_with_ballista().with_target_partitions(partitions))
        .build();
    let local = SessionContext::new_with_state(state);
    losskit_datafusion::register(&local);
    let ctx = SessionContext::standalone_with_state(local.state()).await?;
    losskit_datafusion::register(&ctx);
    Ok(ctx)
}

/// `sql` over the Parquet file at `path` (as table `t`) with 1, 2 and 8 target partitions, in
/// DataFusion and on a Ballista standalone cluster: every run must give `want`'s bits.
async fn same_bits_everywhere(path: &std::path::Path, sql: &str, want: &[f64]) -> Result<()> {
    let want: Vec<u64> = want.iter().map(|v| v.to_bits()).collect();
    for partitions in [1, 2, 8] {
        for on_ballista in [false, true] {
            // One context (and for Ballista one cluster) at a time, dropped after its run.
            let (name, ctx) = if on_ballista {
                (
                    format!("Ballista standalone, {partitions} partitions"),
                    ballista_context(partitions).await?,
                )
            } else {
                let ctx = SessionContext::new_with_config(
                    SessionConfig::new().with_target_partitions(partitions),
                );
                losskit_datafusion::register(&ctx);
                (format!("DataFusion, {partitions} partitions"), ctx)
            };
            ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
                .await?;
            let t = Instant::now();
            let got: Vec<u64> = first_row(&ctx, sql)
                .await?
                .iter()
                .map(|v| v.to_bits())
                .collect();
            assert_eq!(got, want, "{name}: not the in-memory query's bits");
            println!(
                "  {name:<34} same bits ({:.3} s, Parquet decoding included)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn column_f32(batches: &[RecordBatch], name: &str) -> Vec<f32> {
    let mut out = vec![];
    for b in batches {
        out.extend_from_slice(
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Float32Type>()
                .values(),
        );
    }
    out
}

/// Runs of each timed computation: the fastest counts (the machine is shared and noisy).
const RUNS: usize = 5;

/// `f`'s result and the fastest of [`RUNS`] runs, in seconds.
fn seconds<R>(mut f: impl FnMut() -> R) -> (R, f64) {
    let mut best = f64::INFINITY;
    let mut result = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        result = Some(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (result.expect("RUNS > 0"), best)
}

/// The query's first row and the fastest of [`RUNS`] runs, in seconds (after one warm-up).
async fn timed_query(ctx: &SessionContext, sql: &str) -> Result<(Vec<f64>, f64)> {
    first_row(ctx, sql).await?;
    let mut best = f64::INFINITY;
    let mut row = vec![];
    for _ in 0..RUNS {
        let t = Instant::now();
        row = first_row(ctx, sql).await?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((row, best))
}

#[tokio::main]
async fn main() -> Result<()> {
    let small = std::env::args().any(|a| a == "--small");
    let (reg_rows, cls_rows, classes) = if small {
        (1_000_000, 20_000, 1000)
    } else {
        (10_000_000, 200_000, 1000)
    };
    let dir = std::env::temp_dir();
    let reg_path = dir.join(format!(
        "losskit-sql-eval-{}-regression.parquet",
        std::process::id()
    ));
    let cls_path = dir.join(format!(
        "losskit-sql-eval-{}-logits.parquet",
        std::process::id()
    ));
    println!("CPU: {}", cpu_name());
    println!("writing {reg_rows} regression rows and {cls_rows} x {classes} logits as Parquet ...");
    write(&reg_path, &regression_batches(reg_rows))?;
    write(&cls_path, &classification_batches(cls_rows, classes))?;

    // Regression: SQL over the decoded batches against the one-call API on the same values.
    let (ctx, batches, decode) = decoded(&reg_path).await?;
    let sql = "SELECT mse(pred, y), l1(pred, y), huber(pred, y) FROM t";
    let (row, t_sql) = timed_query(&ctx, sql).await?;
    let (pred, y) = (column_f32(&batches, "pred"), column_f32(&batches, "y"));
    let m = Reduction::Mean;
    let (api, t_api) = seconds(|| {
        [
            losskit::mse(&pred, &y, m).unwrap(),
            losskit::l1(&pred, &y, m).unwrap(),
            losskit::huber(&pred, &y, 1.0, m).unwrap(),
        ]
    });
    let (partial, t_partial) = seconds(|| {
        [
            losskit::partial::mse(&pred, &y).unwrap(),
            losskit::partial::l1(&pred, &y).unwrap(),
            losskit::partial::huber(&pred, &y, 1.0).unwrap(),
        ]
    });
    println!("\nregression, {reg_rows} rows (Parquet decode {decode:.3} s):");
    for (i, name) in ["mse", "l1", "huber"].iter().enumerate() {
        let exact = partial[i].finish(m);
        assert_eq!(row[i], exact, "{name}: SQL and the one-call partial differ");
        println!(
            "  {name:<6} SQL {:.9}  one call {:.9}  (relative difference {:.1e})",
            row[i],
            api[i],
            (row[i] - f64::from(api[i])).abs() / row[i]
        );
    }
    report(t_sql, t_api, t_partial);
    same_bits_everywhere(&reg_path, sql, &row).await?;

    // Classification.
    let (ctx, batches, decode) = decoded(&cls_path).await?;
    let sql = "SELECT cross_entropy(logits, label), ce_accuracy(logits, label), \
               ce_top_k_accuracy(logits, label, 5), perplexity(logits, label) FROM t";
    let (row, t_sql) = timed_query(&ctx, sql).await?;
    let mut logits = vec![];
    let mut labels = vec![];
    for b in &batches {
        let list = b.column_by_name("logits").unwrap().as_fixed_size_list();
        logits.extend_from_slice(list.values().as_primitive::<Float32Type>().values());
        labels.extend_from_slice(
            b.column_by_name("label")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values(),
        );
    }
    let ce = CrossEntropy::<f32>::new();
    let ((loss, stats), t_api) = seconds(|| {
        (
            ce.loss(&logits, classes, &labels, m).unwrap(),
            ce.stats(&logits, classes, &labels).unwrap(),
        )
    });
    let (_, t_partial) = seconds(|| {
        losskit::Partial::from_each(labels.len(), |r, out| {
            ce.each(
                &logits[r.start * classes..r.end * classes],
                classes,
                &labels[r],
                out,
            )
        })
        .unwrap()
    });
    println!("\ncross-entropy, {cls_rows} x {classes} (Parquet decode {decode:.3} s):");
    println!(
        "  cross_entropy      SQL {:.9}  one call {:.9}",
        row[0], loss
    );
    println!(
        "  ce_accuracy        SQL {:.6}  one call {:.6}",
        row[1],
        stats.accuracy()
    );
    println!(
        "  ce_top_k_accuracy  SQL {:.6}  one call {:.6}",
        row[2],
        stats.top_k_accuracy()
    );
    println!(
        "  perplexity         SQL {:.6}  one call {:.6}",
        row[3],
        stats.perplexity()
    );
    assert_eq!((row[1], row[2]), (stats.accuracy(), stats.top_k_accuracy()));
    report(t_sql, t_api, t_partial);
    same_bits_everywhere(&cls_path, sql, &row).await?;

    std::fs::remove_file(reg_path)?;
    std::fs::remove_file(cls_path)?;
    Ok(())
}

fn report(t_sql: f64, t_api: f64, t_partial: f64) {
    println!(
        "  time: SQL {:.3} s, one-call API {:.3} s ({:.2}x), one-call partial path {:.3} s ({:.2}x)",
        t_sql,
        t_api,
        t_sql / t_api,
        t_partial,
        t_sql / t_partial
    );
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}
