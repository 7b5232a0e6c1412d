//! Private files, written so that a reader never sees half of one.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::error::SecretsError;

/// Creates `dir` (and parents) readable by the owner only, if missing.
pub(crate) fn private_dir(dir: &Path) -> Result<(), SecretsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SecretsError::io(format!("creating directory {}", dir.display()), e))
}

/// Writes `bytes` to `path` with mode 0600 through a temporary file in the
/// same directory and a rename, then syncs the directory, so a crash leaves
/// the old content or the new, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SecretsError> {
    let dir = path.parent().ok_or_else(|| {
        SecretsError::Invalid(format!("{} has no parent directory", path.display()))
    })?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| SecretsError::Invalid(format!("{} has no file name", path.display())))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(8)?));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        SecretsError::io(format!("writing {}", path.display()), e)
    })
}

/// `N` random bytes from the system generator.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SecretsError::Backend {
        backend: "embedded",
        operation: "random",
        detail: "the system random generator failed".into(),
    })?;
    Ok(bytes)
}

/// `len` (at most 32) random bytes, hex-encoded.
pub(crate) fn random_hex(len: usize) -> Result<String, SecretsError> {
    let bytes = random_bytes::<32>()?;
    Ok(hex::encode(bytes.get(..len.min(32)).unwrap_or(&bytes)))
}
