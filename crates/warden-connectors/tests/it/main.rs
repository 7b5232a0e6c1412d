#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Integration tests of the connectors, in one binary (each links kube,
//! axum and the agent; one binary keeps the build small).

mod config;
mod kubernetes_fake;
mod loki_recorded;
mod prometheus_real;
