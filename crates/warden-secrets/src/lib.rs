//! Per-investigation identities: a credential for each investigation, scoped
//! to the data domains its trust phase and plan allow, living no longer than
//! its deadline, attributable to it and revoked when it ends.
//!
//! Two implementations of the [`SecretBroker`](warden_core::ports::SecretBroker)
//! port live here:
//!
//! - [`openbao`]: OpenBao/Vault issues one token per investigation through a
//!   token role, response-wrapped so only the job ever sees the token itself;
//!   dynamic database users hang off that token and die with it.
//! - [`embedded`]: for the single-machine mode, an encrypted-at-rest store that
//!   issues the same kind of leases without any server.
//!
//! Both speak in [`SecretsDomain`]s: a named data domain and the one path its
//! secret lives at. Every secret value is a [`secrecy::SecretString`] from the
//! moment it is read until the caller exposes it; no error, log line, `Debug`
//! output or file outside the encrypted store ever holds one.

pub mod domain;
pub mod embedded;
mod error;
mod fsutil;
pub mod openbao;

pub use domain::{DATABASE_DOMAIN, DATABASE_ROLE, SecretsDomain, default_domains};
pub use embedded::{EmbeddedBroker, KeySource, SecretMeta};
pub use error::{DenyReason, SecretsError};
pub use openbao::{DbCredentials, JobClient, OpenBaoAdmin, OpenBaoBroker, OpenBaoConfig};
