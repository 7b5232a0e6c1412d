//! `warden audit verify` as an operator runs it: OK with the entry count and
//! head hash on an intact log; exit 1 naming the entry on an edited or a
//! deleted one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use warden_audit::{AuditEvent, AuditKind, AuditLog};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A data directory with `n` audit entries; returns the head hash.
fn data_dir_with(dir: &Path, n: usize) -> String {
    let log = AuditLog::open_in(dir).unwrap();
    for i in 0..n {
        log.append(
            AuditEvent::new(
                AuditKind::GateDecision,
                "agent:inv-1",
                format!("action-{i}"),
            )
            .investigation("inv-1")
            .detail(json!({"decision": "denied", "i": i})),
        )
        .unwrap();
    }
    log.head().unwrap().hash
}

fn log_file(dir: &Path) -> std::path::PathBuf {
    dir.join("audit").join("trust.log")
}

fn edit_lines(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let path = log_file(dir);
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    f(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn an_intact_log_verifies_with_its_entry_count_and_head_hash() {
    let dir = tempfile::tempdir().unwrap();
    let head = data_dir_with(dir.path(), 12);
    let out = warden(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("OK "), "{text}");
    assert!(text.contains("12 entries"), "{text}");
    assert!(text.contains(&head), "{text}");
    // The printed anchor checks out later.
    let anchor = text
        .lines()
        .find_map(|l| {
            l.rsplit_once(": ")
                .filter(|_| l.starts_with("anchor"))
                .map(|(_, a)| a.to_string())
        })
        .unwrap();
    assert_eq!(anchor, format!("12:{head}"));
    let file = log_file(dir.path());
    let out = warden(&[
        "audit",
        "verify",
        "--file",
        file.to_str().unwrap(),
        "--anchor",
        &anchor,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn an_edited_entry_fails_verification_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    data_dir_with(dir.path(), 8);
    edit_lines(dir.path(), |lines| {
        lines[4] = lines[4].replace("\"decision\":\"denied\"", "\"decision\":\"allowed\"");
    });
    let out = warden(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("FAILED "), "{text}");
    assert!(text.contains("entry 5 was edited"), "{text}");
}

#[test]
fn a_deleted_entry_fails_verification_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    data_dir_with(dir.path(), 8);
    edit_lines(dir.path(), |lines| {
        lines.remove(2);
    });
    let file = log_file(dir.path());
    let out = warden(&["audit", "verify", "--file", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("entry 3 was deleted"), "{text}");
}

#[test]
fn a_deleted_last_entry_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    data_dir_with(dir.path(), 8);
    edit_lines(dir.path(), |lines| {
        lines.pop();
    });
    let out = warden(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("truncated"), "{text}");
}

#[test]
fn a_missing_log_is_not_reported_as_intact() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no audit log there"), "{text}");
}
