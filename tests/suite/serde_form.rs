//! The serde form of the partial results (feature `serde`): a round trip through JSON keeps
//! the exact sums, so statistics merged after crossing a process boundary have the same bits as
//! those merged in place; malformed forms are errors, not panics.

use losskit::{partial, CeStats, CrossEntropy, Partial, Reduction};
use serde_json::Value;

fn stats_of(rows: usize, classes: usize, seed: u64) -> CeStats {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let logits: Vec<f64> = (0..rows * classes)
        .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 40.0 - 20.0)
        .collect();
    let labels: Vec<i64> = (0..rows)
        .map(|r| {
            if r % 7 == 3 {
                -100
            } else {
                (next() % classes as u64) as i64
            }
        })
        .collect();
    CrossEntropy::new()
        .top_k(3)
        .stats(&logits, classes, &labels)
        .unwrap()
}

#[test]
fn json_round_trip_keeps_the_exact_sums() {
    let parts: Vec<CeStats> = (0..6)
        .map(|i| stats_of(50 + 13 * i, 37, i as u64 + 7))
        .collect();
    let sent: Vec<CeStats> = parts
        .iter()
        .map(|s| {
            let json = serde_json::to_string(s).unwrap();
            let back: CeStats = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, s, "{json}");
            back
        })
        .collect();
    let merge = |v: &[CeStats]| v.iter().skip(1).fold(v[0].clone(), |a, b| a.merge(b));
    let (here, there) = (merge(&parts), merge(&sent));
    assert_eq!(here, there);
    assert_eq!(
        here.loss(Reduction::Mean).to_bits(),
        there.loss(Reduction::Mean).to_bits()
    );
    assert_eq!(
        here.mean_entropy().to_bits(),
        there.mean_entropy().to_bits()
    );
    assert!(here.counted() > 0 && here.loss(Reduction::Sum) > 0.0);
    // The merged statistics themselves round-trip too, with their exact sums.
    let json = serde_json::to_string(&here).unwrap();
    assert_eq!(serde_json::from_str::<CeStats>(&json).unwrap(), here);
}

#[test]
fn the_form_is_the_documented_one() {
    // One row with logits (0, 0): loss ln 2, weight 1, entropy ln 2.
    let stats = CrossEntropy::new()
        .stats(&[0.0f64, 0.0], 2, &[1i64])
        .unwrap();
    let v: Value = serde_json::to_value(&stats).unwrap();
    assert_eq!(v["counted"], 1);
    assert_eq!(v["top1"], 0);
    assert_eq!(v["top_k"], 1);
    assert_eq!(v["k"], 5);
    let weight = &v["weight"];
    assert_eq!(weight["negative"], false);
    assert_eq!(weight["nan"], false);
    assert_eq!(weight["infinities"], serde_json::json!([false, false]));
    // 1 = digits · 2^exponent with base-2^32 digits, least significant first.
    let value = |form: &Value| -> f64 {
        let e = form["exponent"].as_i64().unwrap() as i32;
        let sign = if form["negative"].as_bool().unwrap() {
            -1.0
        } else {
            1.0
        };
        form["digits"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(j, d)| d.as_u64().unwrap() as f64 * 2f64.powi(e + 32 * j as i32))
            .sum::<f64>()
            * sign
    };
    assert_eq!(value(weight), 1.0);
    assert_eq!((weight["exponent"].as_i64().unwrap() + 1074) % 32, 0);
    assert_eq!(value(&v["loss"]), std::f64::consts::LN_2);
    assert_eq!(value(&v["entropy"]), std::f64::consts::LN_2);
}

#[test]
fn malformed_forms_are_errors() {
    let good = serde_json::to_value(stats_of(20, 5, 3)).unwrap();
    let with_all = |fields: &[(&str, Value)]| {
        let mut v = good.clone();
        for (name, value) in fields {
            v["loss"][*name] = value.clone();
        }
        serde_json::from_value::<CeStats>(v)
    };
    let with = |name: &str, value: Value| with_all(&[(name, value)]);
    assert!(with("exponent", serde_json::json!(-1075)).is_err());
    assert!(with("exponent", serde_json::json!(-1073)).is_err());
    assert!(with("exponent", serde_json::json!(i32::MAX)).is_err());
    assert!(with("digits", serde_json::json!(vec![u32::MAX; 69])).is_err());
    assert!(with("digits", serde_json::json!([1u64 << 32])).is_err());
    assert!(with("nan", serde_json::json!("yes")).is_err());
    // In range: accepted, and a NaN flag makes the loss NaN.
    let low = serde_json::json!(-1074);
    assert!(with_all(&[
        ("exponent", low.clone()),
        ("digits", serde_json::json!(vec![u32::MAX; 67]))
    ])
    .is_ok());
    assert!(with_all(&[
        ("exponent", low.clone()),
        ("digits", serde_json::json!(vec![u32::MAX; 68]))
    ])
    .is_err());
    assert!(with_all(&[
        ("exponent", low),
        ("digits", serde_json::json!(vec![7u32; 68]))
    ])
    .is_ok());
    let nan = with("nan", serde_json::json!(true)).unwrap();
    assert!(nan.loss(Reduction::Sum).is_nan());
    let mut extra = good.clone();
    extra["loss"]["extra"] = serde_json::json!(0);
    assert!(serde_json::from_value::<CeStats>(extra).is_err());
}

#[test]
fn partials_round_trip_and_merge_to_the_same_bits() {
    let x: Vec<f32> = (0..10_000)
        .map(|i| (i as f32 * 0.37).sin() * 50.0)
        .collect();
    let y: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.11).cos()).collect();
    let whole = partial::huber(&x, &y, 1.5).unwrap();
    let parts = [
        partial::huber(&x[..3_000], &y[..3_000], 1.5).unwrap(),
        partial::huber(&x[3_000..], &y[3_000..], 1.5).unwrap(),
    ];
    let sent: Vec<Partial> = parts
        .iter()
        .map(|p| serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap())
        .collect();
    assert_eq!(sent[1].merge(&sent[0]), whole);
    let v = serde_json::to_value(&whole).unwrap();
    assert_eq!(v["count"], 10_000);
    assert!(v["loss"]["digits"]
        .as_array()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(
        serde_json::from_value::<Partial>(v)
            .unwrap()
            .finish(Reduction::Mean)
            .to_bits(),
        whole.finish(Reduction::Mean).to_bits()
    );
}

#[test]
fn vocab_rows_round_trip_in_the_documented_form() {
    use losskit::{VocabRow, VocabShard};
    // Two rows of 6 classes in two shards; the second row's label is in the right shard.
    let logits = [
        0.5f32, 1.0, -2.0, 3.0, 0.25, 1.0, 2.0, 2.0, 0.0, 1.0, -1.0, 2.0,
    ];
    let labels = [1i64, 3];
    let targets = [1.0f32, 1.0];
    let ce = CrossEntropy::new().top_k(2);
    let mut merged = [VocabRow::default(); 2];
    for (i, (offset, width)) in [(0usize, 4usize), (4, 2)].into_iter().enumerate() {
        let x: Vec<f32> = logits
            .chunks_exact(6)
            .flat_map(|r| r[offset..offset + width].to_vec())
            .collect();
        let mut part = [VocabRow::default(); 2];
        let shard = VocabShard::new(offset, width, 6).unwrap();
        ce.vocab_stats_rows(&x, shard, &labels, &targets, &mut part)
            .unwrap();
        for (m, p) in merged.iter_mut().zip(&part) {
            // Through JSON before merging, as a shard's partial crosses processes.
            let back: VocabRow = serde_json::from_str(&serde_json::to_string(p).unwrap()).unwrap();
            assert_eq!(&back, p);
            *m = if i == 0 { back } else { m.merge(&back) };
        }
    }
    let value = serde_json::to_value(merged[1]).unwrap();
    // (serde_json's maps list their keys sorted.)
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        ["before", "classes", "ranked", "stats", "target", "total"],
        "{value}"
    );
    let stats: Vec<&str> = value["stats"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(stats, ["above", "coef", "dot", "ent", "max", "sum", "tied"]);
    assert_eq!(value["classes"], 6);
    assert_eq!(value["target"], 1.0);
    assert_eq!(value["stats"]["max"], 2.0);
    // Row 2: classes 0, 1 and 5 (2.0) lie above the label's 1.0.
    assert_eq!(value["stats"]["above"], 3);
    let s = ce.vocab_stats(&merged, &labels).unwrap();
    let whole = ce.stats(&logits, 6, &labels).unwrap();
    assert_eq!(
        (s.counted(), s.accuracy(), s.top_k_accuracy()),
        (2, 0.0, 0.5)
    );
    assert_eq!(
        (whole.accuracy(), whole.top_k_accuracy()),
        (s.accuracy(), s.top_k_accuracy())
    );
}
