//! Where configured policies come from: `*.cedar` files in a directory, or
//! text inline in warden.yaml. Each keeps its origin for error messages.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// Cedar policy text and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySource {
    /// A file path, or `policy.inline[<n>]`.
    pub origin: String,
    pub text: String,
}

impl PolicySource {
    pub fn new(origin: impl Into<String>, text: impl Into<String>) -> PolicySource {
        PolicySource {
            origin: origin.into(),
            text: text.into(),
        }
    }

    /// Every `*.cedar` file directly in `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Vec<PolicySource>, PolicyError> {
        let read_err = |source| PolicyError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().is_some_and(|e| e == "cedar") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(PolicySource::new(path.display().to_string(), text))
            })
            .collect()
    }

    /// The configured extra policies: the directory's files (if any) then
    /// the inline texts, named `policy.inline[<n>]`.
    pub fn from_config(
        directory: Option<&Path>,
        inline: &[String],
    ) -> Result<Vec<PolicySource>, PolicyError> {
        let mut out = match directory {
            Some(dir) => PolicySource::load_dir(dir)?,
            None => Vec::new(),
        };
        out.extend(
            inline
                .iter()
                .enumerate()
                .map(|(i, text)| PolicySource::new(format!("policy.inline[{i}]"), text.clone())),
        );
        Ok(out)
    }
}
