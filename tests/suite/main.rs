//! The integration tests, as one test binary with a module per subject: each test binary
//! compiles its own optimised copy of every kernel it calls, so one binary instead of eleven
//! keeps `cargo test` (and CI) several minutes shorter.

// Declared first: its macros (`pointwise_losses!`) are in scope only in the modules after it.
#[path = "../registry/mod.rs"]
#[macro_use]
mod registry;

mod common;

mod allocation;
mod ce_stats;
mod concurrency;
mod conformance;
mod conformance2;
mod cosine;
mod cross_entropy_props;
mod ctc;
mod determinism;
mod errors;
mod gradient_errors;
mod gradient_props;
mod gradients;
mod guard_page;
mod multi_margin;
mod multilabel;
mod multilabel_margin;
mod non_finite;
mod paired_props;
mod partial;
mod pointwise_props;
mod pos_weight;
mod serde_form;
mod softcap;
mod ternary_props;
mod tier_agreement;
mod triplet;
mod vocab_shard;
