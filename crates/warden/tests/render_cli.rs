#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `warden render` as a user runs it: the built-in default equals the
//! example, output is deterministic, and a bad file is reported with its
//! location, exit code 2 and nothing written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env_remove("WARDEN_LOG")
        .output()
        .unwrap()
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/warden.yaml")
}

fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_default_renders_twelve_states_identical_to_the_example_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let out = warden(&["render", "--out", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("rendered 12 states"), "{said}");
    let out = warden(&[
        "render",
        "--config",
        example().to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta, tb);
    let states: Vec<&String> = ta
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.ends_with("/values.yaml"))
        .collect();
    assert_eq!(states.len(), 12, "{states:?}");
    for env in ["dev", "staging", "prod"] {
        assert!(a.join(format!("values-{env}.yaml")).exists());
    }

    // Rendering again over the previous output gives the same bytes.
    let out = warden(&["render", "--out", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tree(&a), tb);
}

#[test]
fn a_bad_file_is_located_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.yaml");
    fs::write(
        &config,
        "namespaces:\n  targets: [default, kube-system]\nsecrets:\n  domains:\n    - name: metrics\n      path: agent/data/metrics\n      serves: [\"*\"]\n      endpoints:\n        - {cidr: 10.0.0.1/24, port: 9090}\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = warden(&[
        "render",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let file = config.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:9:12: secrets.domains[0].endpoints[0].cidr \"10.0.0.1/24\": host bits are set"
        )),
        "{err}"
    );
    assert!(!out_dir.exists());

    // Valid as configuration, but not renderable: a protected target.
    fs::write(&config, "namespaces:\n  targets: [default, kube-system]\n").unwrap();
    let out = warden(&[
        "render",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{file}:2:22: namespaces.targets[1] \"kube-system\" is also in namespaces.protected"
        )),
        "{err}"
    );
    assert!(!out_dir.exists());

    // A previous render is left exactly as it was.
    let good = warden(&["render", "--out", out_dir.to_str().unwrap()]);
    assert!(good.status.success(), "{}", stderr(&good));
    let before = tree(&out_dir);
    fs::write(&config, "runtime:\n  max_concurent: 3\n").unwrap();
    let out = warden(&[
        "render",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("{file}:2:3")),
        "{}",
        stderr(&out)
    );
    assert_eq!(tree(&out_dir), before);
}
