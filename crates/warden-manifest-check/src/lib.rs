//! Test support: check Kubernetes manifests with the real tools.
//!
//! warden renders and creates Kubernetes objects it cannot apply to a real
//! API server in tests (none installs on these machines), so each object is
//! checked against the official schemas with `kubernetes-validate` (v1.33,
//! strict: unknown fields are errors) and scanned by `checkov`. [`helm`]
//! finds the Helm CLI for chart tests.
//!
//! The tools are installed by `scripts/install-test-deps.sh` under
//! `/opt/warden-test` (or `$WARDEN_TEST_DIR`); that location is tried first,
//! then `PATH`. A missing tool is an error naming the script, never a skip:
//! a test that cannot check must fail.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The Kubernetes version manifests are validated against.
pub const KUBERNETES_VERSION: &str = "1.33";

const INSTALL_HINT: &str = "run scripts/install-test-deps.sh to install it";

/// Where `scripts/install-test-deps.sh` puts the tools.
pub fn install_dir() -> PathBuf {
    std::env::var_os("WARDEN_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/warden-test"))
}

/// The path of the tool `name`: the install location first, then `PATH`.
pub fn locate(name: &str) -> Result<PathBuf, String> {
    let installed = install_dir().join("bin").join(name);
    if is_executable(&installed) {
        return Ok(installed);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "{name} not found in {} or on PATH; {INSTALL_HINT}",
        installed.display()
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The Helm CLI installed by `scripts/install-test-deps.sh`.
pub fn helm() -> Result<PathBuf, String> {
    locate("helm")
}

/// The objects as one multi-document YAML text.
pub fn to_multi_doc_yaml(objects: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        let doc = serde_yaml::to_string(o).map_err(|e| format!("object {i}: {e}"))?;
        out.push_str("---\n");
        out.push_str(&doc);
    }
    Ok(out)
}

fn temp_yaml(objects: &[Value]) -> Result<tempfile::NamedTempFile, String> {
    let yaml = to_multi_doc_yaml(objects)?;
    let mut file = tempfile::Builder::new()
        .prefix("warden-manifests-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| format!("cannot create a temporary manifest file: {e}"))?;
    file.write_all(yaml.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write the temporary manifest file: {e}"))?;
    Ok(file)
}

fn run(tool: &Path, cmd: &mut Command) -> Result<Output, String> {
    cmd.output()
        .map_err(|e| format!("cannot run {}: {e}; {INSTALL_HINT}", tool.display()))
}

/// Validates every object against the Kubernetes 1.33 schemas, strictly
/// (unknown fields are errors, and so is a kind without a schema). The error
/// lists every failing object, one line each.
pub fn validate_k8s(objects: &[Value]) -> Result<(), String> {
    if objects.is_empty() {
        return Err("no objects to validate".into());
    }
    let tool = locate("kubernetes-validate")?;
    let file = temp_yaml(objects)?;
    let out = run(
        &tool,
        Command::new(&tool)
            .args(["-k", KUBERNETES_VERSION, "--strict"])
            .arg(file.path()),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line per document: INFO (passed), ERROR (invalid) or WARN (no
    // schema for the kind, which means it was not checked at all).
    let mut passed = 0;
    let mut failures = Vec::new();
    for line in stdout.lines().chain(stderr.lines()) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("INFO ") && line.contains(" passed ") {
            passed += 1;
        } else {
            failures.push(line.replace(&file.path().display().to_string(), "<manifests>"));
        }
    }
    if failures.is_empty() && out.status.success() && passed == objects.len() {
        Ok(())
    } else {
        Err(format!(
            "kubernetes-validate {KUBERNETES_VERSION} --strict: {passed} of {} objects passed (exit {}):\n{}",
            objects.len(),
            out.status,
            failures.join("\n")
        ))
    }
}

/// One checkov result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckovFinding {
    pub check_id: String,
    pub check_name: String,
    /// The object, e.g. `Role.warden-investigations.warden-agent-shadow`.
    pub resource: String,
}

/// What checkov found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckovReport {
    pub passed: usize,
    pub failed: Vec<CheckovFinding>,
    /// Failures of checks skipped on request (with the justification given)
    /// and checks skipped by an annotation in the manifest.
    pub skipped: Vec<(CheckovFinding, String)>,
}

impl CheckovReport {
    /// `Ok` when no check failed; otherwise every failure, one line each.
    pub fn ensure_clean(&self) -> Result<(), String> {
        if self.failed.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("{} {} ({})", f.check_id, f.resource, f.check_name))
            .collect();
        Err(format!(
            "checkov: {} failed check(s):\n{}",
            lines.len(),
            lines.join("\n")
        ))
    }
}

/// Scans the objects with checkov's Kubernetes checks. `skip` lists checks
/// whose failures are accepted, each with the reason it does not apply (an
/// empty reason is refused). Failed checks are in the report, not an error: call
/// [`CheckovReport::ensure_clean`] to require none.
pub fn checkov(objects: &[Value], skip: &[(&str, &str)]) -> Result<CheckovReport, String> {
    if objects.is_empty() {
        return Err("no objects to scan".into());
    }
    let mut reasons = BTreeMap::new();
    for (id, why) in skip {
        if !id.starts_with("CKV") || why.trim().is_empty() {
            return Err(format!(
                "skip {id:?}: give a checkov check id (CKV_...) and why it does not apply"
            ));
        }
        reasons.insert(id.to_string(), why.to_string());
    }
    let tool = locate("checkov")?;
    let file = temp_yaml(objects)?;
    let mut cmd = Command::new(&tool);
    cmd.arg("-f")
        .arg(file.path())
        .args([
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    // Every check runs; a failure of a skipped check is moved to `skipped`
    // here rather than with `--skip-check`, so the report shows which
    // objects each justification covers and a scan that checked nothing
    // cannot look clean.
    let out = run(&tool, &mut cmd)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        format!(
            "checkov printed no JSON report ({e}; exit {}):\n{}\n{}",
            out.status,
            truncate(&stdout, 2000),
            truncate(&String::from_utf8_lossy(&out.stderr), 2000)
        )
    })?;
    parse_report(&parsed, &reasons)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Reads checkov's JSON output: one report object (or a list of them, one
/// per framework), or a summary alone when nothing was scanned.
fn parse_report(
    parsed: &Value,
    reasons: &BTreeMap<String, String>,
) -> Result<CheckovReport, String> {
    let reports: Vec<&Value> = match parsed {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut report = CheckovReport::default();
    let mut scanned = false;
    for r in reports {
        if r.get("check_type").and_then(Value::as_str) != Some("kubernetes") {
            continue;
        }
        let results = r
            .get("results")
            .ok_or_else(|| format!("checkov report without results: {r}"))?;
        scanned = true;
        report.passed += results
            .get("passed_checks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for f in array(results, "failed_checks") {
            let finding = finding(f);
            match reasons.get(&finding.check_id) {
                Some(why) => report.skipped.push((finding, why.clone())),
                None => report.failed.push(finding),
            }
        }
        for f in array(results, "skipped_checks") {
            let finding = finding(f);
            let why = reasons
                .get(&finding.check_id)
                .cloned()
                .unwrap_or_else(|| "skipped in the manifest".into());
            report.skipped.push((finding, why));
        }
    }
    if !scanned {
        return Err(format!("checkov scanned no Kubernetes objects: {parsed}"));
    }
    Ok(report)
}

fn array<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn finding(v: &Value) -> CheckovFinding {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    CheckovFinding {
        check_id: s("check_id"),
        check_name: s("check_name"),
        resource: s("resource"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_lists_failures_and_the_reasons_for_skips() {
        let parsed = json!([{
            "check_type": "kubernetes",
            "results": {
                "passed_checks": [{"check_id": "CKV_K8S_1"}],
                "failed_checks": [{"check_id": "CKV_K8S_21", "check_name": "default ns", "resource": "Pod.default.x"}],
                "skipped_checks": [{"check_id": "CKV_K8S_43", "check_name": "digest", "resource": "Pod.default.x"}]
            }
        }]);
        let reasons = BTreeMap::from([("CKV_K8S_43".to_string(), "tags pinned".to_string())]);
        let r = parse_report(&parsed, &reasons).unwrap();
        assert_eq!(r.passed, 1);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.skipped[0].1, "tags pinned");
        let err = r.ensure_clean().unwrap_err();
        assert!(err.contains("CKV_K8S_21 Pod.default.x"), "{err}");
    }

    #[test]
    fn a_summary_without_kubernetes_results_is_an_error() {
        let parsed = json!({"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0});
        assert!(parse_report(&parsed, &BTreeMap::new()).is_err());
    }

    #[test]
    fn objects_become_one_document_each() {
        let yaml = to_multi_doc_yaml(&[json!({"a": 1}), json!({"b": 2})]).unwrap();
        assert_eq!(yaml, "---\na: 1\n---\nb: 2\n");
    }
}
