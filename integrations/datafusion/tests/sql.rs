//! The aggregates through SQL, against losskit's one-call API: the values within the one-call
//! API's bound (counts exactly), the bits identical for every partitioning and batch size and on
//! Ballista's standalone cluster, NULLs skipped, malformed rows a query error.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeListArray, Float16Array, Float32Array, Float64Array, Int64Array,
    ListArray, StringArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use losskit::{CrossEntropy, Reduction};

/// A deterministic stream of uniforms in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const ROWS: usize = 20_000;
const CLASSES: usize = 37;
const MODELS: [&str; 3] = ["a", "b", "c"];

/// Which rows are NULL in some column (every 97th input, every 89th target).
fn null_input(i: usize) -> bool {
    i % 97 == 5
}
fn null_target(i: usize) -> bool {
    i % 89 == 7
}

/// The regression table's columns, as plain vectors (None for NULL).
struct Regression {
    model: Vec<&'static str>,
    x: Vec<Option<f32>>,
    y: Vec<Option<f32>>,
    p: Vec<Option<f32>>,
    t: Vec<Option<f32>>,
}

fn regression() -> Regression {
    let mut rng = Lcg(7);
    let mut r = Regression {
        model: vec![],
        x: vec![],
        y: vec![],
        p: vec![],
        t: vec![],
    };
    for i in 0..ROWS {
        r.model.push(MODELS[i % 3]);
        let x = (rng.next() * 8.0 - 4.0) as f32;
        let y = (rng.next() * 8.0 - 4.0) as f32;
        let p = rng.next() as f32;
        let t = (rng.next() > 0.5) as u8 as f32;
        r.x.push((!null_input(i)).then_some(x));
        r.y.push((!null_target(i)).then_some(y));
        r.p.push((!null_input(i)).then_some(p));
        r.t.push((!null_target(i)).then_some(t));
    }
    r
}

fn regression_batch(r: &Regression, rows: std::ops::Range<usize>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("x", DataType::Float32, true),
        Field::new("y", DataType::Float32, true),
        Field::new("p", DataType::Float32, true),
        Field::new("t", DataType::Float32, true),
    ]));
    let col =
        |v: &[Option<f32>]| Arc::new(Float32Array::from(v[rows.clone()].to_vec())) as ArrayRef;
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(r.model[rows.clone()].to_vec())),
            col(&r.x),
            col(&r.y),
            col(&r.p),
            col(&r.t),
        ],
    )
    .unwrap()
}

/// The classification table: logits as a `List<Float32>` column and as a
/// `FixedSizeList<Float32>` column, labels with NULLs and PyTorch's ignore index.
struct Classification {
    model: Vec<&'static str>,
    logits: Vec<f32>,
    /// Rows whose logits are NULL.
    null_logits: Vec<bool>,
    labels: Vec<Option<i64>>,
}

fn classification() -> Classification {
    let mut rng = Lcg(11);
    let mut c = Classification {
        model: vec![],
        logits: vec![],
        null_logits: vec![],
        labels: vec![],
    };
    for i in 0..ROWS {
        c.model.push(MODELS[i % 3]);
        for _ in 0..CLASSES {
            c.logits.push((rng.next() * 10.0 - 5.0) as f32);
        }
        c.null_logits.push(null_input(i));
        let label = (rng.next() * CLASSES as f64) as i64;
        c.labels.push(match i % 211 {
            3 => None,
            4 => Some(-100),
            _ => Some(label),
        });
    }
    c
}

fn classification_batch(c: &Classification, rows: std::ops::Range<usize>) -> RecordBatch {
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values = Float32Array::from(c.logits[rows.start * CLASSES..rows.end * CLASSES].to_vec());
    let nulls = NullBuffer::from(
        c.null_logits[rows.clone()]
            .iter()
            .map(|&n| !n)
            .collect::<Vec<_>>(),
    );
    let fixed = FixedSizeListArray::new(
        item.clone(),
        CLASSES as i32,
        Arc::new(values.clone()),
        Some(nulls.clone()),
    );
    let list = ListArray::new(
        item.clone(),
        OffsetBuffer::from_lengths(std::iter::repeat_n(CLASSES, rows.len())),
        Arc::new(values),
        Some(nulls),
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("logits", fixed.data_type().clone(), true),
        Field::new("logit_list", list.data_type().clone(), true),
        Field::new("label", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(c.model[rows.clone()].to_vec())),
            Arc::new(fixed),
            Arc::new(list),
            Arc::new(Int64Array::from(c.labels[rows].to_vec())),
        ],
    )
    .unwrap()
}

/// Writes `batches` to a Parquet file of row groups of `group_rows` rows.
fn write_parquet(name: &str, batches: &[RecordBatch], group_rows: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "losskit-datafusion-{}-{name}.parquet",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut writer = ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    path
}

/// A context with the aggregates, `partitions` target partitions and batches of `batch_size`
/// rows, that splits even small files across partitions.
fn context(partitions: usize, batch_size: usize) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(batch_size);
    config.options_mut().optimizer.repartition_file_min_size = 0;
    let ctx = SessionContext::new_with_config(config);
    losskit_datafusion::register(&ctx);
    ctx
}

/// A Ballista standalone cluster (scheduler and executor in this process) of `partitions`
/// target partitions, with the aggregates in the scheduler's, the executor's and the client's
/// registries (see the crate docs, "On Ballista"), and the Parquet file `preds` as table
/// `preds`. The partition count is the cluster's: the
/// standalone scheduler ignores a later `SET`.
async fn ballista_context(partitions: usize, preds: &std::path::Path) -> SessionContext {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    let mut config = SessionConfig::new_with_ballista().with_target_partitions(partitions);
    config.options_mut().optimizer.repartition_file_min_size = 0;
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .build();
    let local = SessionContext::new_with_state(state);
    losskit_datafusion::register(&local);
    let ctx = SessionContext::standalone_with_state(local.state())
        .await
        .unwrap();
    losskit_datafusion::register(&ctx);
    ctx.register_parquet(
        "preds",
        preds.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    ctx
}

/// The query's rows, each as its first column (a string or "") and its f64 columns.
async fn query(ctx: &SessionContext, sql: &str) -> Vec<(String, Vec<Option<f64>>)> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut rows = vec![];
    for batch in batches {
        for i in 0..batch.num_rows() {
            let mut key = String::new();
            let mut values = vec![];
            for column in batch.columns() {
                if matches!(column.data_type(), DataType::Utf8 | DataType::Utf8View) {
                    let s = cast(column, &DataType::Utf8).unwrap();
                    key = s
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .value(i)
                        .to_string();
                } else {
                    let f = column.as_any().downcast_ref::<Float64Array>().unwrap();
                    values.push(f.is_valid(i).then(|| f.value(i)));
                }
            }
            rows.push((key, values));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// The rows of `model` ("" for all) where both columns are valid, as two dense vectors.
fn dense(
    r: &Regression,
    a: &[Option<f32>],
    b: &[Option<f32>],
    model: &str,
) -> (Vec<f32>, Vec<f32>) {
    let mut out = (vec![], vec![]);
    for i in 0..ROWS {
        if let (Some(x), Some(y)) = (a[i], b[i]) {
            if model.is_empty() || r.model[i] == model {
                out.0.push(x);
                out.1.push(y);
            }
        }
    }
    out
}

const REGRESSION_SQL: &str = "SELECT model, mse(x, y), l1(x, y), huber(x, y, 0.5), \
     smooth_l1(x, y, 2), bce(p, t), bce_with_logits(x, t) FROM preds GROUP BY model";

/// The one-call API's means for the six losses of `REGRESSION_SQL` over `model`'s rows.
fn regression_one_call(r: &Regression, model: &str) -> Vec<f64> {
    let (x, y) = dense(r, &r.x, &r.y, model);
    let (p, t) = dense(r, &r.p, &r.t, model);
    let (z, tz) = dense(r, &r.x, &r.t, model);
    let m = Reduction::Mean;
    vec![
        losskit::mse(&x, &y, m).unwrap(),
        losskit::l1(&x, &y, m).unwrap(),
        losskit::huber(&x, &y, 0.5, m).unwrap(),
        losskit::smooth_l1(&x, &y, 2.0, m).unwrap(),
        losskit::bce(&p, &t, m).unwrap(),
        losskit::bce_with_logits(&z, &tz, m).unwrap(),
    ]
    .into_iter()
    .map(f64::from)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_losses_agree_with_one_call_and_keep_their_bits_across_partitions() {
    let r = regression();
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(3000)
        .map(|s| regression_batch(&r, s..(s + 3000).min(ROWS)))
        .collect();
    let path = write_parquet("regression", &batches, 2500);
    let mut first: Option<Vec<(String, Vec<Option<f64>>)>> = None;
    for (partitions, batch_size) in [(1, 8192), (2, 1000), (8, 777), (3, 64)] {
        let ctx = context(partitions, batch_size);
        ctx.register_parquet(
            "preds",
            path.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        let rows = query(&ctx, REGRESSION_SQL).await;
        assert_eq!(rows.len(), 3);
        for (model, values) in &rows {
            let expected = regression_one_call(&r, model);
            for (got, want) in values.iter().zip(&expected) {
                let got = got.unwrap();
                // The SQL value is the correctly rounded mean of the per-element losses; the
                // one-call f32 mean is within 10 u of its exact sum (losskit's bound for sums
                // of non-negative terms) plus its own rounding to f32.
                let bound = 11.0 * f64::from(f32::EPSILON / 2.0) * want.abs();
                assert!((got - want).abs() <= bound, "{model}: {got} vs {want}");
            }
        }
        // The same bits for every partitioning and batch size.
        match &first {
            None => first = Some(rows),
            Some(first) => {
                let bits = |rows: &[(String, Vec<Option<f64>>)]| -> Vec<u64> {
                    rows.iter()
                        .flat_map(|(_, v)| v.iter().map(|x| x.unwrap().to_bits()))
                        .collect()
                };
                assert_eq!(bits(first), bits(&rows), "{partitions} partitions");
            }
        }
    }
    // On Ballista the partial states cross a shuffle between two stages; the same bits.
    let first = first.unwrap();
    for partitions in [1, 2, 8] {
        let ctx = ballista_context(partitions, &path).await;
        let rows = query(&ctx, REGRESSION_SQL).await;
        assert_eq!(
            keyed_bits(&rows),
            keyed_bits(&first),
            "Ballista, {partitions} partitions"
        );
    }
    std::fs::remove_file(path).unwrap();
}

/// The counted rows of `model` ("" for all): their logits and labels.
fn counted(c: &Classification, model: &str) -> (Vec<f32>, Vec<i64>) {
    let mut out = (vec![], vec![]);
    for i in 0..ROWS {
        if c.null_logits[i] || !(model.is_empty() || c.model[i] == model) {
            continue;
        }
        if let Some(label) = c.labels[i].filter(|&l| l != -100) {
            out.0
                .extend_from_slice(&c.logits[i * CLASSES..(i + 1) * CLASSES]);
            out.1.push(label);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_entropy_and_statistics_agree_with_one_call_and_keep_their_bits() {
    let c = classification();
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(4096)
        .map(|s| classification_batch(&c, s..(s + 4096).min(ROWS)))
        .collect();
    let path = write_parquet("classification", &batches, 3000);
    let mut first = None;
    for (partitions, batch_size) in [(1, 8192), (2, 1000), (8, 333)] {
        let ctx = context(partitions, batch_size);
        ctx.register_parquet(
            "preds",
            path.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
        for column in ["logits", "logit_list"] {
            let rows = query(&ctx, &classification_sql(column)).await;
            assert_eq!(rows.len(), 3);
            for (model, values) in &rows {
                let (logits, labels) = counted(&c, model);
                let loss = CrossEntropy::<f32>::new()
                    .loss(&logits, CLASSES, &labels, Reduction::Mean)
                    .unwrap();
                let stats = CrossEntropy::<f32>::new()
                    .top_k(3)
                    .stats(&logits, CLASSES, &labels)
                    .unwrap();
                let got = values[0].unwrap();
                let want = f64::from(loss);
                assert!(
                    (got - want).abs() <= 11.0 * f64::from(f32::EPSILON / 2.0) * want,
                    "{model}: {got} vs {want}"
                );
                assert_eq!(values[1].unwrap(), got.exp());
                // Counts are exact: the same shares as the one-call statistics.
                assert_eq!(values[2].unwrap(), stats.accuracy());
                assert_eq!(values[3].unwrap(), stats.top_k_accuracy());
            }
            let bits: Vec<u64> = rows
                .iter()
                .flat_map(|(_, v)| v.iter().map(|x| x.unwrap().to_bits()))
                .collect();
            match &first {
                None => first = Some(bits),
                Some(first) => assert_eq!(first, &bits, "{column}, {partitions} partitions"),
            }
        }
    }
    let first = first.unwrap();
    for partitions in [1, 2, 8] {
        let ctx = ballista_context(partitions, &path).await;
        for column in ["logits", "logit_list"] {
            let rows = query(&ctx, &classification_sql(column)).await;
            let bits: Vec<u64> = rows
                .iter()
                .flat_map(|(_, v)| v.iter().map(|x| x.unwrap().to_bits()))
                .collect();
            assert_eq!(bits, first, "Ballista, {column}, {partitions} partitions");
        }
    }
    std::fs::remove_file(path).unwrap();
}

/// The query's rows with their values as bits, so that a comparison tells -0 from +0.
fn keyed_bits(rows: &[(String, Vec<Option<f64>>)]) -> Vec<(String, Vec<Option<u64>>)> {
    rows.iter()
        .map(|(key, v)| (key.clone(), v.iter().map(|x| x.map(f64::to_bits)).collect()))
        .collect()
}

/// The classification query over the logits column `column`.
fn classification_sql(column: &str) -> String {
    format!(
        "SELECT model, cross_entropy({column}, label), perplexity({column}, label), \
         ce_accuracy({column}, label), ce_top_k_accuracy({column}, label, 3) \
         FROM preds GROUP BY model"
    )
}

fn memory_context(batches: Vec<RecordBatch>) -> SessionContext {
    let ctx = context(2, 8192);
    let table = MemTable::try_new(batches[0].schema(), vec![batches]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    ctx
}

async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    let result = match ctx.sql(sql).await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.expect_err(sql).to_string()
}

#[tokio::test]
async fn half_and_double_columns_and_empty_input() {
    let x = [0.5f64, -1.25, 3.0, 2.0];
    let y = [0.0f64, 1.0, 2.5, -2.0];
    let schema = Arc::new(Schema::new(vec![
        Field::new("x16", DataType::Float16, false),
        Field::new("y16", DataType::Float16, false),
        Field::new("x64", DataType::Float64, false),
        Field::new("y64", DataType::Float64, false),
    ]));
    let half = |v: &[f64]| {
        Arc::new(Float16Array::from(
            v.iter()
                .map(|&a| losskit::f16::from_f64(a))
                .collect::<Vec<_>>(),
        )) as ArrayRef
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            half(&x),
            half(&y),
            Arc::new(Float64Array::from(x.to_vec())),
            Arc::new(Float64Array::from(y.to_vec())),
        ],
    )
    .unwrap();
    let ctx = memory_context(vec![batch]);
    let rows = query(
        &ctx,
        "SELECT mse(x16, y16), mse(x64, y64), l1(x16, y64), \
         mse(x64, y64) FILTER (WHERE x64 > 100) FROM t",
    )
    .await;
    let values = &rows[0].1;
    // These values are exact in f16, so every form gives the same mean.
    let mse = losskit::mse(&x, &y, Reduction::Mean).unwrap();
    assert_eq!(values[0], Some(mse));
    assert_eq!(values[1], Some(mse));
    assert_eq!(
        values[2],
        Some(losskit::l1(&x, &y, Reduction::Mean).unwrap())
    );
    assert_eq!(values[3], None, "no counted rows: NULL");
}

#[tokio::test]
async fn malformed_rows_are_errors_naming_the_column() {
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    // Row 1 has 2 logits where row 0 has 3.
    let ragged = ListArray::new(
        item.clone(),
        OffsetBuffer::from_lengths([3, 2]),
        Arc::new(Float32Array::from(vec![0.0f32, 1.0, 2.0, 3.0, 4.0])),
        None,
    );
    let clean = ListArray::new(
        item.clone(),
        OffsetBuffer::from_lengths([3, 3]),
        Arc::new(Float32Array::from(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0])),
        None,
    );
    let with_null = ListArray::new(
        item,
        OffsetBuffer::from_lengths([3, 3]),
        Arc::new(Float32Array::from(vec![
            Some(0.0f32),
            Some(1.0),
            Some(2.0),
            Some(3.0),
            None,
            Some(5.0),
        ])),
        None,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("ragged", ragged.data_type().clone(), false),
        Field::new("holed", with_null.data_type().clone(), false),
        Field::new("clean", clean.data_type().clone(), false),
        Field::new("label", DataType::Int64, false),
        Field::new("big_label", DataType::Int64, false),
        Field::new("prob", DataType::Float32, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(ragged),
            Arc::new(with_null),
            Arc::new(clean),
            Arc::new(Int64Array::from(vec![0, 1])),
            Arc::new(Int64Array::from(vec![0, 3])),
            Arc::new(Float32Array::from(vec![0.5f32, 1.5])),
        ],
    )
    .unwrap();
    let ctx = memory_context(vec![batch]);
    let e = error_of(&ctx, "SELECT cross_entropy(ragged, label) FROM t").await;
    assert!(
        e.contains("column `ragged`") && e.contains("2 values"),
        "{e}"
    );
    let e = error_of(&ctx, "SELECT ce_accuracy(holed, label) FROM t").await;
    assert!(
        e.contains("NULL inside a row") && e.contains("holed"),
        "{e}"
    );
    let e = error_of(&ctx, "SELECT cross_entropy(clean, big_label) FROM t").await;
    assert!(
        e.contains("cross_entropy(clean, big_label)") && e.contains("label"),
        "{e}"
    );
    let e = error_of(&ctx, "SELECT bce(prob, prob) FROM t").await;
    assert!(e.contains("bce(prob, prob)"), "{e}");
    let e = error_of(&ctx, "SELECT ce_top_k_accuracy(holed, label, 0) FROM t").await;
    assert!(e.contains("k must be an integer >= 1"), "{e}");
    let e = error_of(&ctx, "SELECT huber(prob, prob, -1) FROM t").await;
    assert!(e.contains("delta must be"), "{e}");
    // Huber's delta must be positive (as in PyTorch); smooth L1's beta may be 0 (L1).
    let e = error_of(&ctx, "SELECT huber(prob, prob, 0) FROM t").await;
    assert!(
        e.contains("delta must be a finite number > 0, not 0"),
        "{e}"
    );
    let e = error_of(&ctx, "SELECT smooth_l1(prob, prob, -0.5) FROM t").await;
    assert!(e.contains("beta must be a finite number >= 0"), "{e}");
    let e = error_of(&ctx, "SELECT cross_entropy(prob, label) FROM t").await;
    assert!(e.contains("list of floats"), "{e}");
    let e = error_of(&ctx, "SELECT mse(prob) FROM t").await;
    assert!(e.contains("mse takes 2 arguments"), "{e}");
}
