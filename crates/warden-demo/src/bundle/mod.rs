//! The telemetry bundle: every source an investigation may read, written
//! as files in the layout the bundle connector reads
//! (`warden_core::telemetry`).
//!
//! ```text
//! manifest.json            BundleManifest
//! topology.json            TopologyGraph
//! metrics/*.jsonl          one Series per line
//! logs/<service>.log       "<RFC 3339> <LEVEL> <message>" per line
//! changes.jsonl            ChangeRecord
//! network/flows.jsonl      FlowRecord
//! security/events.jsonl    SecurityEvent
//! ```

mod logs;
mod metrics;
mod records;

use std::fs;
use std::io;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use warden_core::telemetry::{BundleManifest, TopologyGraph};

use crate::fleet::Fleet;
use crate::timeline::{BUNDLE_AFTER, BUNDLE_BEFORE};

pub use logs::INJECTION_TEXT;
pub(crate) use records::firewall_change_id;
pub use records::{DENY_RULE, RESET_RULE};

/// Version of the bundle layout written here.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) fn manifest(base: DateTime<Utc>) -> BundleManifest {
    BundleManifest {
        format_version: FORMAT_VERSION,
        name: "firewall-cascade".to_string(),
        description: "A firewall change shortens the idle timeout of the app-to-database rule; \
                      pooled sessions die silently, queries time out, connection pools run dry, \
                      and about 300 alerts fire across network, application, database and security."
            .to_string(),
        start: base - TimeDelta::seconds(BUNDLE_BEFORE),
        end: base + TimeDelta::seconds(BUNDLE_AFTER),
    }
}

pub(crate) fn write(
    dir: &Path,
    base: DateTime<Utc>,
    seed: u64,
    fleet: &Fleet,
    topology: &TopologyGraph,
) -> io::Result<()> {
    for sub in ["metrics", "logs", "network", "security"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    write_json(&dir.join("manifest.json"), &manifest(base))?;
    write_json(&dir.join("topology.json"), topology)?;
    for (file, series) in metrics::files(base, seed) {
        write_lines(&dir.join(file), &series)?;
    }
    for (service, content) in logs::files(base, seed, fleet) {
        fs::write(dir.join("logs").join(format!("{service}.log")), content)?;
    }
    write_lines(&dir.join("changes.jsonl"), &records::changes(base))?;
    write_lines(
        &dir.join("network/flows.jsonl"),
        &records::flows(base, seed, topology),
    )?;
    write_lines(
        &dir.join("security/events.jsonl"),
        &records::security_events(base, seed, fleet),
    )?;
    Ok(())
}

fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fs::write(path, text).map_err(|e| with_path(e, path))
}

fn write_lines<T: Serialize>(path: &Path, items: &[T]) -> io::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| with_path(e, path))
}

/// Adds the path to an I/O error, which otherwise names no file.
fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
