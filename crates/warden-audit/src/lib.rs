//! warden's append-only, hash-chained audit log.
//!
//! Gate decisions, verdicts, approvals and denials, executions, phase
//! changes, demotions and credential issuance/revocation are appended as
//! JSON lines to `<data-dir>/audit/trust.log`:
//!
//! ```text
//! {"seq":1,"ts":..,"kind":"gate_decision",..,"prev_hash":"000…0","hash":"9f2c…"}
//! {"seq":2,"ts":..,"kind":"approval",..,     "prev_hash":"9f2c…","hash":"41ab…"}
//! ```
//!
//! `hash` is SHA-256 over the canonical JSON of the entry without `hash`
//! (object keys sorted, no whitespace), so it covers `prev_hash` and with
//! it the whole history. `trust.head` beside the log holds the last seq and
//! hash, rewritten (and fsynced) after every append.
//!
//! What [`verify`] detects, naming the first bad seq:
//! - an edited entry (its hash no longer matches its content);
//! - a deleted entry (a gap in `seq`, and the chain breaks);
//! - reordered entries (a `seq` out of place);
//! - an entry replaced together with a recomputed hash (the next entry's
//!   `prev_hash` no longer matches);
//! - a truncated tail (the log ends before the head says it does).
//!
//! Threat model, honestly: the head lives on the same disk. Whoever can
//! rewrite both files can recompute the whole chain and the head, and
//! nothing local detects that. Store [`AuditLog::anchor`] (or
//! [`VerifyReport::anchor`]) somewhere that writer cannot reach (a ticket,
//! another system's log, a signed commit) and check it with
//! [`verify_with_anchor`]; then a rewrite of any entry up to the anchored
//! one is detected.
//!
//! One writer: an [`AuditLog`] serialises appends through a mutex, so one
//! process may append from many threads; two processes must not open the
//! same log for writing. Appends block on fsync: call them from
//! `spawn_blocking` in async code.
//!
//! No secrets: [`AuditLog::append`] refuses details carrying fields named
//! like a credential (`token`, `secret_id`, `password`, ...); a
//! `credential_issued` entry records the accessor, never the token.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    GateDecision,
    Verdict,
    Approval,
    Denial,
    Execution,
    PhaseChange,
    Demotion,
    CredentialIssued,
    CredentialRevoked,
}

impl AuditKind {
    pub const ALL: [AuditKind; 9] = [
        AuditKind::GateDecision,
        AuditKind::Verdict,
        AuditKind::Approval,
        AuditKind::Denial,
        AuditKind::Execution,
        AuditKind::PhaseChange,
        AuditKind::Demotion,
        AuditKind::CredentialIssued,
        AuditKind::CredentialRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::GateDecision => "gate_decision",
            AuditKind::Verdict => "verdict",
            AuditKind::Approval => "approval",
            AuditKind::Denial => "denial",
            AuditKind::Execution => "execution",
            AuditKind::PhaseChange => "phase_change",
            AuditKind::Demotion => "demotion",
            AuditKind::CredentialIssued => "credential_issued",
            AuditKind::CredentialRevoked => "credential_revoked",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller appends; the log adds seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// Who did it: `agent:<investigation>`, `operator:<name>`, `warden`.
    pub actor: String,
    pub investigation: Option<String>,
    /// What it is about: an action id, an environment, a credential accessor.
    pub subject: String,
    /// Structured detail (e.g. a gate `DecisionRecord`). Never a secret.
    pub detail: Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, actor: impl Into<String>, subject: impl Into<String>) -> Self {
        AuditEvent {
            kind,
            actor: actor.into(),
            investigation: None,
            subject: subject.into(),
            detail: Value::Null,
        }
    }

    pub fn investigation(mut self, id: impl Into<String>) -> Self {
        self.investigation = Some(id.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub kind: AuditKind,
    pub actor: String,
    pub investigation: Option<String>,
    pub subject: String,
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The last entry's seq and hash, as stored in `trust.head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    fn empty() -> Head {
        Head {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }

    /// A value to store away from this machine: `<seq>:<hash>`.
    pub fn anchor(&self) -> String {
        format!("{}:{}", self.seq, self.hash)
    }
}

/// Why an append (or opening the log) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The existing log does not verify; nothing is appended to it.
    #[error("audit log {path} does not verify: {source}")]
    Corrupt { path: PathBuf, source: VerifyError },
    /// The detail carries a field that looks like a credential.
    #[error("audit detail field {field:?} looks like a secret; record an accessor or id instead")]
    SecretInDetail { field: String },
    #[error("audit entry cannot be encoded: {0}")]
    Encode(String),
    /// A previous append panicked while holding the lock.
    #[error("audit log lock poisoned")]
    Poisoned,
}

/// The first problem [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// A line is not a valid entry at all.
    #[error("entry {seq} (line {line}) is malformed (edited): {message}")]
    Malformed {
        seq: u64,
        line: u64,
        message: String,
    },
    /// The entry's content does not match its hash.
    #[error("entry {seq} was edited: its hash does not match its content")]
    Edited { seq: u64 },
    /// The entry's prev_hash does not match the previous entry's hash.
    #[error(
        "entry {seq} does not chain to entry {}: an entry was replaced or rewritten",
        seq.saturating_sub(1)
    )]
    ChainBroken { seq: u64 },
    /// Entries are missing: `seq` was expected, `found` came next.
    #[error("entry {seq} was deleted (the next line holds entry {found})")]
    Deleted { seq: u64, found: u64 },
    /// An entry appears out of order.
    #[error("entries were reordered: line {line} holds entry {found}, expected {seq}")]
    Reordered { seq: u64, found: u64, line: u64 },
    /// The log ends before the head says it does.
    #[error(
        "the log was truncated: it ends at entry {last}, the head records entry {head} (entry {} onwards deleted)",
        last + 1
    )]
    Truncated { last: u64, head: u64 },
    /// The log holds entries the head does not know about.
    #[error(
        "entries {} to {last} are not recorded in the head (appended outside warden, or an interrupted append)",
        head + 1
    )]
    BeyondHead { last: u64, head: u64 },
    /// The last entry's hash differs from the head's.
    #[error("entry {seq} differs from the head: the tail was rewritten")]
    HeadMismatch { seq: u64 },
    #[error("the head file {path} is missing or unreadable: {message}")]
    Head { path: String, message: String },
    /// The anchored entry is missing or has another hash.
    #[error("entry {seq} does not match the anchor: the log was rewritten")]
    AnchorMismatch { seq: u64 },
    #[error("bad anchor {0:?}: expected <seq>:<sha256 hex>")]
    BadAnchor(String),
}

impl VerifyError {
    /// The seq of the first bad entry, when one is known.
    pub fn first_bad_seq(&self) -> Option<u64> {
        match self {
            VerifyError::Malformed { seq, .. }
            | VerifyError::Edited { seq }
            | VerifyError::ChainBroken { seq }
            | VerifyError::Deleted { seq, .. }
            | VerifyError::Reordered { seq, .. }
            | VerifyError::HeadMismatch { seq }
            | VerifyError::AnchorMismatch { seq } => Some(*seq),
            VerifyError::Truncated { last, .. } => Some(last + 1),
            VerifyError::BeyondHead { head, .. } => Some(head + 1),
            _ => None,
        }
    }
}

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub head: Head,
}

impl VerifyReport {
    pub fn anchor(&self) -> String {
        self.head.anchor()
    }
}

/// `<log>.head`: where the head of `log` is kept.
pub fn head_path(log: &Path) -> PathBuf {
    log.with_extension("head")
}

/// `<data-dir>/audit/trust.log`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("trust.log")
}

/// Canonical JSON: object keys sorted, no whitespace. Independent of
/// serde_json's map ordering features.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 (hex) over the canonical encoding of `entry` (a JSON entry)
/// without its `hash` field: what `hash` must be.
pub fn hash_of(entry: &Value) -> String {
    let mut without = entry.clone();
    if let Value::Object(map) = &mut without {
        map.remove("hash");
    }
    let mut text = String::new();
    canonical(&without, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

const SECRET_FIELDS: [&str; 9] = [
    "token",
    "client_token",
    "secret",
    "secret_id",
    "password",
    "private_key",
    "api_key",
    "wrapped_token",
    "credential",
];

fn find_secret_field(v: &Value) -> Option<String> {
    match v {
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let key = k.to_ascii_lowercase();
            if SECRET_FIELDS.contains(&key.as_str()) && !v.is_null() {
                Some(k.clone())
            } else {
                find_secret_field(v)
            }
        }),
        Value::Array(items) => items.iter().find_map(find_secret_field),
        _ => None,
    }
}

/// Reads every line of the log, checks each entry's hash, seq and link,
/// and returns the entries' heads. `Ok` even when the log is missing.
fn scan(path: &Path) -> Result<Vec<Head>, VerifyError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(VerifyError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    let io = |e: std::io::Error| VerifyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // (line number, the entry and its seq or why it is not one)
    type Line = (u64, Result<(Value, u64), String>);
    let mut parsed: Vec<Line> = Vec::new();
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            break;
        }
        n += 1;
        let text = line.trim_end_matches('\n');
        let value = serde_json::from_str::<Value>(text)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                let seq = v
                    .get("seq")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| "no seq".to_string())?;
                serde_json::from_value::<Entry>(v.clone()).map_err(|e| e.to_string())?;
                Ok((v, seq))
            });
        parsed.push((n, value));
    }
    let seqs: Vec<Option<u64>> = parsed
        .iter()
        .map(|(_, r)| r.as_ref().ok().map(|(_, s)| *s))
        .collect();
    let mut heads = Vec::with_capacity(parsed.len());
    let mut prev = Head::empty();
    for (idx, (line_no, result)) in parsed.iter().enumerate() {
        let expected = prev.seq + 1;
        let (value, seq) = match result {
            Ok(v) => v,
            Err(message) => {
                return Err(VerifyError::Malformed {
                    seq: expected,
                    line: *line_no,
                    message: message.clone(),
                });
            }
        };
        if *seq != expected {
            let later = seqs.iter().skip(idx + 1).any(|s| *s == Some(expected));
            return Err(if *seq > expected && !later {
                VerifyError::Deleted {
                    seq: expected,
                    found: *seq,
                }
            } else {
                VerifyError::Reordered {
                    seq: expected,
                    found: *seq,
                    line: *line_no,
                }
            });
        }
        let stored = value.get("hash").and_then(Value::as_str).unwrap_or("");
        if hash_of(value) != stored {
            return Err(VerifyError::Edited { seq: *seq });
        }
        if value.get("prev_hash").and_then(Value::as_str) != Some(prev.hash.as_str()) {
            return Err(VerifyError::ChainBroken { seq: *seq });
        }
        prev = Head {
            seq: *seq,
            hash: stored.to_string(),
        };
        heads.push(prev.clone());
    }
    Ok(heads)
}

fn read_head(path: &Path) -> Result<Option<Head>, VerifyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| VerifyError::Head {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(VerifyError::Head {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

fn check_head(log: &Path, heads: &[Head]) -> Result<Head, VerifyError> {
    let last = heads.last().cloned().unwrap_or_else(Head::empty);
    let hp = head_path(log);
    let head = match read_head(&hp)? {
        Some(h) => h,
        None if heads.is_empty() => return Ok(last),
        None => {
            return Err(VerifyError::Head {
                path: hp.display().to_string(),
                message: "missing while the log holds entries".into(),
            });
        }
    };
    if head.seq > last.seq {
        return Err(VerifyError::Truncated {
            last: last.seq,
            head: head.seq,
        });
    }
    if head.seq < last.seq {
        return Err(VerifyError::BeyondHead {
            last: last.seq,
            head: head.seq,
        });
    }
    if head.hash != last.hash {
        return Err(VerifyError::HeadMismatch { seq: last.seq });
    }
    Ok(last)
}

/// Verifies the log at `path` against itself and its head file.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let heads = scan(path)?;
    let head = check_head(path, &heads)?;
    Ok(VerifyReport {
        entries: heads.len() as u64,
        head,
    })
}

/// Like [`verify`], and also checks that the entry named by `anchor`
/// (a value from [`Head::anchor`] stored elsewhere) is still there, unchanged.
pub fn verify_with_anchor(path: &Path, anchor: &str) -> Result<VerifyReport, VerifyError> {
    let bad = || VerifyError::BadAnchor(anchor.to_string());
    let (seq, hash) = anchor.trim().split_once(':').ok_or_else(bad)?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let heads = scan(path)?;
    let matches = if seq == 0 {
        hash == GENESIS
    } else {
        heads
            .iter()
            .find(|h| h.seq == seq)
            .is_some_and(|h| h.hash.eq_ignore_ascii_case(hash))
    };
    if !matches {
        return Err(VerifyError::AnchorMismatch { seq });
    }
    let head = check_head(path, &heads)?;
    Ok(VerifyReport {
        entries: heads.len() as u64,
        head,
    })
}

struct Inner {
    file: File,
    head: Head,
}

/// The log, open for appending. Share it (`Arc<AuditLog>`) within one
/// process; appends are serialised.
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path` after verifying it. A log that
    /// does not verify is refused, except for the two traces an interrupted
    /// append leaves: a torn last line without its newline (dropped) and a
    /// head one entry behind (moved forward).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |source| AuditError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let stored_head = read_head(&head_path(path)).map_err(corrupt)?;
        repair_torn_tail(path, stored_head.as_ref()).map_err(io)?;
        let heads = scan(path).map_err(corrupt)?;
        let last = heads.last().cloned().unwrap_or_else(Head::empty);
        match &stored_head {
            // The entry was fsynced, the head write after it was not.
            Some(h)
                if h.seq + 1 == last.seq
                    && heads
                        .iter()
                        .rev()
                        .nth(1)
                        .map_or(*h == Head::empty(), |prev| prev == h) =>
            {
                write_head(path, &last).map_err(io)?
            }
            _ => {
                check_head(path, &heads).map_err(corrupt)?;
            }
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(io)?;
        if stored_head.is_none() {
            write_head(path, &last).map_err(io)?;
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { file, head: last }),
        })
    }

    /// Opens `<data-dir>/audit/trust.log`.
    pub fn open_in(data_dir: &Path) -> Result<AuditLog, AuditError> {
        AuditLog::open(&log_path(data_dir))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last entry's seq and hash.
    pub fn head(&self) -> Result<Head, AuditError> {
        Ok(self
            .inner
            .lock()
            .map_err(|_| AuditError::Poisoned)?
            .head
            .clone())
    }

    /// The value to store elsewhere so a rewrite of both files is detected
    /// (see the crate docs): `<seq>:<hash>`.
    pub fn anchor(&self) -> Result<String, AuditError> {
        Ok(self.head()?.anchor())
    }

    /// Appends one entry: written and fsynced, then the head rewritten and
    /// fsynced. Returns the entry as stored.
    pub fn append(&self, event: AuditEvent) -> Result<Entry, AuditError> {
        if let Some(field) = find_secret_field(&event.detail) {
            return Err(AuditError::SecretInDetail { field });
        }
        let mut inner = self.inner.lock().map_err(|_| AuditError::Poisoned)?;
        let mut entry = Entry {
            seq: inner.head.seq + 1,
            ts: Utc::now(),
            kind: event.kind,
            actor: event.actor,
            investigation: event.investigation,
            subject: event.subject,
            detail: event.detail,
            prev_hash: inner.head.hash.clone(),
            hash: String::new(),
        };
        let value = serde_json::to_value(&entry).map_err(|e| AuditError::Encode(e.to_string()))?;
        entry.hash = hash_of(&value);
        let mut line =
            serde_json::to_string(&entry).map_err(|e| AuditError::Encode(e.to_string()))?;
        line.push('\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let head = Head {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        let len = inner.file.metadata().map_err(io)?.len();
        let written = inner
            .file
            .write_all(line.as_bytes())
            .and_then(|_| inner.file.sync_data())
            .and_then(|_| write_head(&self.path, &head));
        if let Err(e) = written {
            // An error means "not recorded": take back whatever part of the
            // line reached the file, so the next append chains cleanly.
            let _ = inner.file.set_len(len).and_then(|_| inner.file.sync_data());
            return Err(io(e));
        }
        inner.head = head;
        Ok(entry)
    }
}

/// A last line without its newline can only come from an interrupted
/// append. If the head records it, only the newline is missing; otherwise
/// the append never completed (the caller got an error) and it is dropped.
fn repair_torn_tail(path: &Path, head: Option<&Head>) -> std::io::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let cut = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let complete = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    let recorded = head.map_or(0, |h| h.seq);
    let tail_seq = bytes
        .get(cut..)
        .and_then(|t| serde_json::from_slice::<Value>(t).ok())
        .and_then(|v| v.get("seq").and_then(Value::as_u64));
    if tail_seq.is_some_and(|seq| seq <= recorded) {
        let mut f = OpenOptions::new().append(true).open(path)?;
        f.write_all(b"\n")?;
        return f.sync_all();
    }
    if recorded == complete {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(cut as u64)?;
        return f.sync_all();
    }
    // Anything else is not what an interrupted append leaves: leave the
    // file as it is for verification to report.
    Ok(())
}

fn tempdir_beside(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Replaces the head file atomically: temp file, fsync, rename, fsync dir.
fn write_head(log: &Path, head: &Head) -> std::io::Result<()> {
    let path = head_path(log);
    let tmp = path.with_extension("head.tmp");
    let text = serde_json::to_string(head).map_err(std::io::Error::other)?;
    {
        let mut options = OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    if let Ok(dir) = File::open(tempdir_beside(&path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "x"}], "c": null}});
        let mut s = String::new();
        canonical(&v, &mut s);
        assert_eq!(s, r#"{"a":{"c":null,"d":[1,{"y":"x","z":0}]},"b":1}"#);
    }

    #[test]
    fn secret_looking_fields_are_found_anywhere() {
        assert_eq!(
            find_secret_field(&json!({"lease": {"accessor": "a", "Token": "s"}})),
            Some("Token".into())
        );
        assert_eq!(
            find_secret_field(&json!({"accessor": "a", "ttl": 60})),
            None
        );
    }
}
