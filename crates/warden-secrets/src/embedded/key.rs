//! The store's master key: 32 random bytes in a file only its owner can read,
//! or bytes the caller read from a mounted Kubernetes Secret.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

use crate::error::SecretsError;
use crate::fsutil::random_bytes;

/// Where the store's 256-bit key comes from.
pub enum KeySource {
    /// A key file; created with mode 0600 when missing. A file readable or
    /// writable by group or others is refused.
    File(PathBuf),
    /// Key bytes the caller already holds (a mounted Secret).
    Bytes(SecretBox<[u8; 32]>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            KeySource::Bytes(_) => f.write_str("Bytes([REDACTED])"),
        }
    }
}

impl KeySource {
    pub(crate) fn load(self) -> Result<SecretBox<[u8; 32]>, SecretsError> {
        match self {
            KeySource::Bytes(key) => Ok(key),
            KeySource::File(path) => load_or_create(&path),
        }
    }
}

fn key_error(path: &Path, detail: impl Into<String>) -> SecretsError {
    SecretsError::KeyFile {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn load_or_create(path: &Path) -> Result<SecretBox<[u8; 32]>, SecretsError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let key = SecretBox::new(Box::new(random_bytes::<32>()?));
            file.write_all(key.expose_secret())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    let _ = fs::remove_file(path);
                    key_error(path, format!("could not write a new key: {e}"))
                })?;
            Ok(key)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read_existing(path),
        Err(e) => Err(key_error(path, format!("could not create: {e}"))),
    }
}

fn read_existing(path: &Path) -> Result<SecretBox<[u8; 32]>, SecretsError> {
    let meta = fs::metadata(path).map_err(|e| key_error(path, format!("unreadable: {e}")))?;
    if !meta.is_file() {
        return Err(key_error(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!("mode {mode:04o} lets group or others at the key; run chmod 600 on it"),
        ));
    }
    let mut file = fs::File::open(path).map_err(|e| key_error(path, format!("unreadable: {e}")))?;
    let mut key = SecretBox::new(Box::new([0u8; 32]));
    let mut extra = [0u8; 1];
    let read = file
        .read_exact(key.expose_secret_mut())
        .and_then(|()| file.read(&mut extra));
    match read {
        Ok(0) => Ok(key),
        Ok(_) => Err(key_error(path, "longer than 32 bytes")),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            Err(key_error(path, "shorter than 32 bytes"))
        }
        Err(e) => Err(key_error(path, format!("unreadable: {e}"))),
    }
}
