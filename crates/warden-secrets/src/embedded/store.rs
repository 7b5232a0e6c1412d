//! The encrypted store: one AES-256-GCM blob per secret path.
//!
//! A blob is a small JSON document: the path, a version counter and the time
//! of the last write in the clear (so `list` needs no key and shows no value),
//! a fresh random 96-bit nonce, and the ciphertext. The path, version and time
//! are the associated data, so a blob copied over another path's file, or a
//! version edited by hand, fails authentication instead of decrypting into
//! someone else's secret. File names are the hex of the path: any path maps
//! to a flat, safe name.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::check_path;
use crate::error::SecretsError;
use crate::fsutil::{random_bytes, write_atomic};

const FORMAT: u32 = 1;

/// What `list` shows of a stored secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    pub path: String,
    /// 1 on first write, one more on every write after.
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Blob {
    format: u32,
    path: String,
    version: u64,
    updated_at: DateTime<Utc>,
    nonce: String,
    ciphertext: String,
}

pub(crate) struct SecretStore {
    dir: PathBuf,
    key: LessSafeKey,
}

fn crypto_error(operation: &'static str) -> SecretsError {
    SecretsError::Backend {
        backend: "embedded",
        operation,
        detail: "the AEAD primitive failed".into(),
    }
}

fn associated_data(path: &str, version: u64, updated_at: &DateTime<Utc>) -> String {
    format!(
        "warden-secrets/v{FORMAT}\0{path}\0{version}\0{}",
        updated_at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    )
}

impl SecretStore {
    pub(crate) fn new(dir: PathBuf, key: &SecretBox<[u8; 32]>) -> Result<Self, SecretsError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.expose_secret()).map_err(|_| crypto_error("open"))?;
        Ok(SecretStore {
            dir,
            key: LessSafeKey::new(unbound),
        })
    }

    fn file_for(&self, path: &str) -> PathBuf {
        self.dir.join(hex::encode(path.as_bytes()))
    }

    /// Writes `value` at `path` as the next version. With `must_exist`, a
    /// path with no secret yet is an error (rotation of a typo must not
    /// silently create a new secret).
    pub(crate) fn write(
        &self,
        path: &str,
        value: &SecretString,
        must_exist: bool,
    ) -> Result<SecretMeta, SecretsError> {
        check_path(path)?;
        let file = self.file_for(path);
        let version = match read_blob(&file)? {
            Some(old) => old.version.saturating_add(1),
            None if must_exist => {
                return Err(SecretsError::NotFound {
                    path: path.to_string(),
                });
            }
            None => 1,
        };
        let updated_at = Utc::now();
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let aad = associated_data(path, version, &updated_at);
        let mut sealed = Zeroizing::new(value.expose_secret().as_bytes().to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut *sealed,
            )
            .map_err(|_| crypto_error("encrypt"))?;
        let blob = Blob {
            format: FORMAT,
            path: path.to_string(),
            version,
            updated_at,
            nonce: hex::encode(nonce_bytes),
            ciphertext: hex::encode(&*sealed),
        };
        let json = serde_json::to_vec(&blob).map_err(|e| SecretsError::Backend {
            backend: "embedded",
            operation: "write",
            detail: format!("encoding the blob: {e}"),
        })?;
        write_atomic(&file, &json)?;
        Ok(SecretMeta {
            path: path.to_string(),
            version,
            updated_at,
        })
    }

    /// The current value at `path`, authenticated.
    pub(crate) fn read(&self, path: &str) -> Result<SecretString, SecretsError> {
        check_path(path)?;
        let corrupt = || SecretsError::Corrupt {
            path: path.to_string(),
        };
        let blob = read_blob(&self.file_for(path))?.ok_or_else(|| SecretsError::NotFound {
            path: path.to_string(),
        })?;
        if blob.format != FORMAT {
            return Err(corrupt());
        }
        let nonce: [u8; NONCE_LEN] = hex::decode(&blob.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(corrupt)?;
        let mut buf = Zeroizing::new(hex::decode(&blob.ciphertext).map_err(|_| corrupt())?);
        // The path bound into the associated data is the one asked for, not
        // the one the blob claims: a blob moved between files cannot verify.
        let aad = associated_data(path, blob.version, &blob.updated_at);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| corrupt())?;
        let text = std::str::from_utf8(plain).map_err(|_| corrupt())?;
        Ok(SecretString::from(text.to_owned()))
    }

    /// Every stored path with its version; no value is decrypted.
    pub(crate) fn list(&self) -> Result<Vec<SecretMeta>, SecretsError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| SecretsError::io(format!("listing {}", self.dir.display()), e))?;
        let mut metas = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| SecretsError::io(format!("listing {}", self.dir.display()), e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue; // a write in progress
            }
            if let Some(blob) = read_blob(&entry.path())? {
                metas.push(SecretMeta {
                    path: blob.path,
                    version: blob.version,
                    updated_at: blob.updated_at,
                });
            }
        }
        metas.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(metas)
    }
}

fn read_blob(file: &Path) -> Result<Option<Blob>, SecretsError> {
    let bytes = match fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretsError::io(format!("reading {}", file.display()), e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| SecretsError::Corrupt {
            path: file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| hex::decode(n).ok())
                .and_then(|p| String::from_utf8(p).ok())
                .unwrap_or_else(|| file.display().to_string()),
        })
}
