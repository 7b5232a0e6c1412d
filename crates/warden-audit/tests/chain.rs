//! The audit log against the tampering it must detect, named by the first
//! bad entry: edits, deletions, reordering, replaced entries, a truncated or
//! rewritten tail, and (with an anchor) a rewrite of both files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use warden_audit::{
    AuditError, AuditEvent, AuditKind, AuditLog, GENESIS, VerifyError, hash_of, head_path, verify,
    verify_with_anchor,
};

fn event(i: usize) -> AuditEvent {
    let kind = AuditKind::ALL[i % AuditKind::ALL.len()];
    AuditEvent::new(kind, "warden", format!("subject-{i}"))
        .investigation(format!("inv-{}", i % 3))
        .detail(json!({"i": i, "note": format!("entry {i}"), "nested": {"b": 1, "a": [i, "x"]}}))
}

fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit").join("trust.log");
    let log = AuditLog::open(&path).unwrap();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    (dir, path)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

#[test]
fn appended_entries_verify_and_chain_from_genesis() {
    let (_dir, path) = log_with(40);
    let report = verify(&path).unwrap();
    assert_eq!(report.entries, 40);
    let all = lines(&path);
    assert_eq!(all.len(), 40);
    let first = parse(&all[0]);
    assert_eq!(first["seq"], 1);
    assert_eq!(first["prev_hash"], GENESIS);
    for pair in all.windows(2) {
        let (a, b) = (parse(&pair[0]), parse(&pair[1]));
        assert_eq!(b["prev_hash"], a["hash"]);
        assert_eq!(b["seq"].as_u64().unwrap(), a["seq"].as_u64().unwrap() + 1);
    }
    let last = parse(&all[39]);
    assert_eq!(report.head.seq, 40);
    assert_eq!(report.head.hash, last["hash"].as_str().unwrap());
    assert_eq!(report.anchor(), format!("40:{}", report.head.hash));
    // The head file says the same.
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(head_path(&path)).unwrap()).unwrap();
    assert_eq!(head["seq"], 40);
    assert_eq!(head["hash"], last["hash"]);
}

#[test]
fn an_empty_or_missing_log_verifies_with_no_entries() {
    let dir = tempfile::tempdir().unwrap();
    let report = verify(&dir.path().join("nothing.log")).unwrap();
    assert_eq!(report.entries, 0);
    assert_eq!(report.head.hash, GENESIS);
}

#[test]
fn editing_one_field_of_entry_k_is_detected_at_k() {
    for field in ["actor", "subject", "detail", "kind", "ts"] {
        let (_dir, path) = log_with(20);
        let mut all = lines(&path);
        let mut v = parse(&all[6]);
        v[field] = match field {
            "detail" => json!({"i": 6, "note": "approved by nobody"}),
            "kind" => json!("approval"),
            "ts" => json!("2020-01-01T00:00:00Z"),
            _ => json!("mallory"),
        };
        all[6] = v.to_string();
        write_lines(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err, VerifyError::Edited { seq: 7 }, "{field}");
        assert_eq!(err.first_bad_seq(), Some(7));
        assert!(err.to_string().contains("entry 7 was edited"), "{err}");
    }
}

#[test]
fn an_edit_that_breaks_the_json_is_named_by_seq_and_line() {
    let (_dir, path) = log_with(10);
    let mut all = lines(&path);
    let half = all[3].len() / 2;
    all[3].truncate(half);
    write_lines(&path, &all);
    let err = verify(&path).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Malformed {
                seq: 4,
                line: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn deleting_entry_k_is_detected_at_k() {
    let (_dir, path) = log_with(20);
    let mut all = lines(&path);
    all.remove(9);
    write_lines(&path, &all);
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::Deleted { seq: 10, found: 11 });
    assert!(err.to_string().contains("entry 10 was deleted"), "{err}");
}

#[test]
fn deleting_several_entries_names_the_first() {
    let (_dir, path) = log_with(20);
    let mut all = lines(&path);
    all.drain(4..8);
    write_lines(&path, &all);
    assert_eq!(
        verify(&path).unwrap_err(),
        VerifyError::Deleted { seq: 5, found: 9 }
    );
}

#[test]
fn reordering_entries_is_detected() {
    let (_dir, path) = log_with(20);
    let mut all = lines(&path);
    all.swap(11, 12);
    write_lines(&path, &all);
    let err = verify(&path).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Reordered {
            seq: 12,
            found: 13,
            line: 12
        }
    );
    assert!(err.to_string().contains("reordered"), "{err}");
}

#[test]
fn truncating_the_tail_is_detected_through_the_head() {
    let (_dir, path) = log_with(20);
    let all = lines(&path);
    write_lines(&path, &all[..17]);
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::Truncated { last: 17, head: 20 });
    assert_eq!(err.first_bad_seq(), Some(18));
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_replaced_entry_with_a_recomputed_hash_breaks_the_chain_after_it() {
    let (_dir, path) = log_with(20);
    let mut all = lines(&path);
    let mut v = parse(&all[4]);
    v["actor"] = json!("operator:mallory");
    v["hash"] = json!(hash_of(&v));
    all[4] = v.to_string();
    write_lines(&path, &all);
    let err = verify(&path).unwrap_err();
    assert_eq!(err, VerifyError::ChainBroken { seq: 6 });
}

#[test]
fn a_rewritten_last_entry_differs_from_the_head() {
    let (_dir, path) = log_with(5);
    let mut all = lines(&path);
    let mut v = parse(&all[4]);
    v["subject"] = json!("something else");
    v["hash"] = json!(hash_of(&v));
    all[4] = v.to_string();
    write_lines(&path, &all);
    assert_eq!(
        verify(&path).unwrap_err(),
        VerifyError::HeadMismatch { seq: 5 }
    );
}

#[test]
fn a_deleted_head_file_is_reported() {
    let (_dir, path) = log_with(3);
    std::fs::remove_file(head_path(&path)).unwrap();
    let err = verify(&path).unwrap_err();
    assert!(matches!(err, VerifyError::Head { .. }), "{err}");
}

/// The honest limit: rewriting both files with a recomputed chain passes
/// `verify`; only an anchor kept elsewhere catches it.
#[test]
fn a_full_rewrite_of_both_files_is_caught_only_by_an_anchor_kept_elsewhere() {
    let (_dir, path) = log_with(10);
    let anchor = verify(&path).unwrap().anchor();
    // Rewrite entry 3 and recompute every hash after it, and the head.
    let mut all = lines(&path);
    let mut prev = GENESIS.to_string();
    for (i, line) in all.iter_mut().enumerate() {
        let mut v = parse(line);
        if i == 2 {
            v["actor"] = json!("operator:mallory");
        }
        v["prev_hash"] = json!(prev);
        v["hash"] = json!(hash_of(&v));
        prev = v["hash"].as_str().unwrap().to_string();
        *line = v.to_string();
    }
    write_lines(&path, &all);
    std::fs::write(
        head_path(&path),
        json!({"seq": 10, "hash": prev}).to_string(),
    )
    .unwrap();
    assert!(
        verify(&path).is_ok(),
        "a consistent rewrite passes verify alone"
    );
    let err = verify_with_anchor(&path, &anchor).unwrap_err();
    assert_eq!(err, VerifyError::AnchorMismatch { seq: 10 });
    // A good anchor passes; a malformed one is named.
    let fresh = verify(&path).unwrap().anchor();
    assert!(verify_with_anchor(&path, &fresh).is_ok());
    assert!(matches!(
        verify_with_anchor(&path, "ten:abc"),
        Err(VerifyError::BadAnchor(_))
    ));
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, path) = log_with(5);
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().unwrap().seq, 5);
    let e = log.append(event(99)).unwrap();
    assert_eq!(e.seq, 6);
    assert_eq!(
        e.prev_hash,
        parse(&lines(&path)[4])["hash"].as_str().unwrap()
    );
    assert_eq!(verify(&path).unwrap().entries, 6);
    assert_eq!(log.anchor().unwrap(), format!("6:{}", e.hash));
}

#[test]
fn a_tampered_log_is_refused_on_open_and_left_unchanged() {
    let (_dir, path) = log_with(8);
    let mut all = lines(&path);
    all.remove(2);
    write_lines(&path, &all);
    let before = std::fs::read(&path).unwrap();
    let err = AuditLog::open(&path).unwrap_err();
    assert!(
        matches!(
            &err,
            AuditError::Corrupt {
                source: VerifyError::Deleted { seq: 3, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn concurrent_appends_from_many_threads_form_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.log");
    let log = Arc::new(AuditLog::open(&path).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| log.append(event(t * 100 + i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let report = verify(&path).unwrap();
    assert_eq!(report.entries, 200);
    assert_eq!(report.head, log.head().unwrap());
}

#[test]
fn a_secret_in_the_detail_is_refused_and_nothing_is_written() {
    let (_dir, path) = log_with(2);
    let log = AuditLog::open(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = log
        .append(
            AuditEvent::new(AuditKind::CredentialIssued, "warden", "accessor-1")
                .detail(json!({"accessor": "accessor-1", "lease": {"client_token": "s.abc"}})),
        )
        .unwrap_err();
    assert!(
        matches!(&err, AuditError::SecretInDetail { field } if field == "client_token"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The accessor alone is fine.
    let e = log
        .append(
            AuditEvent::new(AuditKind::CredentialIssued, "warden", "accessor-1")
                .investigation("inv-1")
                .detail(
                    json!({"accessor": "accessor-1", "ttl_seconds": 600, "domains": ["database"]}),
                ),
        )
        .unwrap();
    assert_eq!(e.seq, 3);
    assert!(verify(&path).is_ok());
}

#[test]
fn an_interrupted_append_is_repaired_on_open() {
    // A torn last line the head never recorded is dropped.
    let (_dir, path) = log_with(4);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(r#"{"seq":5,"ts":"2026-01-01T00:00:00Z","kind":"verd"#);
    std::fs::write(&path, &text).unwrap();
    assert!(verify(&path).is_err());
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().unwrap().seq, 4);
    assert_eq!(log.append(event(5)).unwrap().seq, 5);
    assert_eq!(verify(&path).unwrap().entries, 5);

    // An entry written whose head update was lost: the head moves forward.
    let (_dir2, path2) = log_with(3);
    let head_after_3 = std::fs::read(head_path(&path2)).unwrap();
    AuditLog::open(&path2).unwrap().append(event(3)).unwrap();
    std::fs::write(head_path(&path2), head_after_3).unwrap();
    assert!(matches!(
        verify(&path2),
        Err(VerifyError::BeyondHead { last: 4, head: 3 })
    ));
    let log = AuditLog::open(&path2).unwrap();
    assert_eq!(log.head().unwrap().seq, 4);
    assert_eq!(verify(&path2).unwrap().entries, 4);
}

#[cfg(unix)]
#[test]
fn the_log_and_head_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = log_with(1);
    for p in [path.clone(), head_path(&path)] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn a_cut_into_a_recorded_entry_is_not_mistaken_for_a_torn_append() {
    let (_dir, path) = log_with(4);
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.trim_end().len() - 10;
    std::fs::write(&path, &text[..cut]).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(AuditLog::open(&path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing changed");
    assert!(matches!(
        verify(&path),
        Err(VerifyError::Malformed { seq: 4, .. })
    ));
}

#[test]
fn a_failed_append_records_nothing_and_the_next_one_chains_cleanly() {
    let (_dir, path) = log_with(3);
    let log = AuditLog::open(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Make the head update fail: its temporary file's name is taken by a directory.
    let blocker = head_path(&path).with_extension("head.tmp");
    std::fs::create_dir(&blocker).unwrap();
    let err = log.append(event(3)).unwrap_err();
    assert!(matches!(err, AuditError::Io { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the line was taken back"
    );
    assert_eq!(log.head().unwrap().seq, 3);
    assert_eq!(verify(&path).unwrap().entries, 3);
    std::fs::remove_dir(&blocker).unwrap();
    assert_eq!(log.append(event(3)).unwrap().seq, 4);
    assert_eq!(verify(&path).unwrap().entries, 4);
}
