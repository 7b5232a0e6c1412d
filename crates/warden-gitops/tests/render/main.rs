#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! warden render's tests, in one binary: snapshots of the example's twelve
//! states, effective permissions, schema validation and checkov, the Helm
//! chart with the real Helm CLI, the policies in a real OpenBao, and
//! deterministic, all-or-nothing writing.

mod helm;
mod manifests;
mod openbao;
mod permissions;
mod snapshots;
mod support;
mod write;
