//! Reading a state from a directory of exported manifests and policies.
//!
//! `*.yaml`, `*.yml` and `*.json` files hold objects (several YAML documents
//! per file, and `kind: List` / `*List` objects with `items`); `*.hcl` files
//! hold Vault/OpenBao policies named after the file; `{path: auth/...,
//! data: {...}}` documents are Vault auth roles. Subdirectories are read
//! too, in name order, hidden ones skipped. Documents that are not
//! Kubernetes objects (no apiVersion/kind, such as Helm values) are skipped
//! and listed, never guessed at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::object::ObjectRef;
use crate::{Error, Result, State};

/// A state read from disk, with what was skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    pub state: State,
    /// "file: document N" of documents that are not Kubernetes objects.
    pub skipped: Vec<String>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |error| Error::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses one manifest text (YAML or JSON, multi-document) into objects.
pub fn parse_manifests(text: &str, origin: &str, skipped: &mut Vec<String>) -> Result<Vec<Value>> {
    parse_all(text, origin, skipped, &mut Vec::new())
}

/// Objects, and Vault auth roles (`{path: auth/..., data: {...}}` documents,
/// as `warden render` writes them) into `roles`.
fn parse_all(
    text: &str,
    origin: &str,
    skipped: &mut Vec<String>,
    roles: &mut Vec<(String, Value)>,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let here = format!("{origin}: document {}", i + 1);
        let v = Value::deserialize(doc).map_err(|e| Error::Manifest {
            origin: here.clone(),
            message: e.to_string(),
        })?;
        if let (Some(path), Some(data)) = (
            v.get("path").and_then(Value::as_str),
            v.get("data").filter(|d| d.is_object()),
        ) && path.starts_with("auth/")
        {
            roles.push((path.to_string(), data.clone()));
            continue;
        }
        flatten(v, &here, &mut out, skipped)?;
    }
    Ok(out)
}

fn flatten(v: Value, here: &str, out: &mut Vec<Value>, skipped: &mut Vec<String>) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    let kind = v.get("kind").and_then(Value::as_str);
    let is_object = v.get("apiVersion").and_then(Value::as_str).is_some() && kind.is_some();
    if !is_object {
        skipped.push(here.to_string());
        return Ok(());
    }
    if kind.is_some_and(|k| k == "List" || k.ends_with("List"))
        && let Some(items) = v.get("items").and_then(Value::as_array)
    {
        for (j, item) in items.iter().enumerate() {
            flatten(
                item.clone(),
                &format!("{here} item {}", j + 1),
                out,
                skipped,
            )?;
        }
        return Ok(());
    }
    ObjectRef::of(&v).map_err(|message| Error::Manifest {
        origin: here.to_string(),
        message,
    })?;
    out.push(v);
    Ok(())
}

/// Reads every manifest and policy below `dir`.
pub fn load_dir(dir: &Path) -> Result<Loaded> {
    let mut paths = Vec::new();
    files(dir, &mut paths)?;
    let mut loaded = Loaded::default();
    let mut seen: BTreeMap<crate::object::Key, String> = BTreeMap::new();
    let mut policy_files: BTreeMap<String, String> = BTreeMap::new();
    for path in paths {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !["yaml", "yml", "json", "hcl"].contains(&ext) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })?;
        let origin = path.display().to_string();
        if ext == "hcl" {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if let Some(first) = policy_files.insert(name.clone(), origin.clone()) {
                return Err(Error::Manifest {
                    origin,
                    message: format!("Vault policy {name:?} is also defined in {first}"),
                });
            }
            loaded.state.vault_policies.insert(name, text);
            continue;
        }
        let mut roles = Vec::new();
        let objects = parse_all(&text, &origin, &mut loaded.skipped, &mut roles)?;
        for (path, data) in roles {
            if loaded
                .state
                .vault_roles
                .insert(path.clone(), data)
                .is_some()
            {
                return Err(Error::Manifest {
                    origin,
                    message: format!("Vault auth role {path:?} is defined twice"),
                });
            }
        }
        for v in objects {
            let r = ObjectRef::of(&v).map_err(|message| Error::Manifest {
                origin: origin.clone(),
                message,
            })?;
            if let Some(first) = seen.insert(r.key(), origin.clone()) {
                return Err(Error::Duplicate {
                    object: r.to_string(),
                    first,
                    second: origin,
                });
            }
            loaded.state.objects.push(v);
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_multi_documents_and_non_objects() {
        let mut skipped = Vec::new();
        let objs = parse_manifests(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata: {name: a, namespace: n}\n---\n---\nreplicas: 3\n---\n{\"apiVersion\": \"v1\", \"kind\": \"ServiceAccount\", \"metadata\": {\"name\": \"b\"}}\n",
            "f.yaml",
            &mut skipped,
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(skipped, vec!["f.yaml: document 3"]);
    }

    #[test]
    fn bad_yaml_and_nameless_objects_are_errors_naming_the_document() {
        let e = parse_manifests("a: b\n---\nkind: [\n", "x.yaml", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().starts_with("x.yaml: document 2"), "{e}");
        let e = parse_manifests(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {}\n",
            "y.yaml",
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("without metadata.name"), "{e}");
    }
}
