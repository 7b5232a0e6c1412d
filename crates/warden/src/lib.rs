//! The `warden` command line and the composition root that wires the
//! embedded default: SQLite store, local runtime, built-in reasoner.
//!
//! Kept as a library so that tests and benchmarks start the same stack the
//! binary does.

pub mod audit;
pub mod cli;
pub mod demo;
pub mod drift;
pub mod eval;
pub mod eval_nezha;
pub mod job_manifest;
pub mod logs;
pub mod remediate;
pub mod render;
pub mod secrets;
pub mod serve;
pub mod trust;
