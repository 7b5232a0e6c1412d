//! The twelve states of the shipped example, compared file by file with the
//! committed snapshot under `tests/snapshots/example/`. Regenerate with
//! `WARDEN_UPDATE_SNAPSHOTS=1 cargo nextest run -p warden-gitops snapshots`
//! and review the diff like any other change of permissions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use warden_control::config::Config;

const EXAMPLE: &str = include_str!("../../../../examples/warden.yaml");

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/example")
}

fn read_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read_to_string(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

#[test]
fn the_example_renders_twelve_states_matching_the_committed_snapshot() {
    let config = Config::parse(EXAMPLE, "examples/warden.yaml").unwrap();
    let rendered = warden_gitops::render(&config).unwrap();
    assert_eq!(rendered.states.len(), 12);

    let dir = snapshot_dir();
    if std::env::var_os("WARDEN_UPDATE_SNAPSHOTS").is_some() {
        warden_gitops::write(&rendered, &dir).unwrap();
    }
    let committed = read_tree(&dir);
    let mut problems = Vec::new();
    for (path, text) in &rendered.files {
        match committed.get(path) {
            None => problems.push(format!("new file {}", path.display())),
            Some(old) if old != text => problems.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in committed.keys() {
        if !rendered.files.contains_key(path) {
            problems.push(format!("removed {}", path.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "the render differs from {}:\n  {}\nIf the change is intended, run WARDEN_UPDATE_SNAPSHOTS=1 cargo nextest run -p warden-gitops snapshots and review the diff.",
        dir.display(),
        problems.join("\n  ")
    );
}
