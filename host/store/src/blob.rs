//! Blob files on disk, written so that a crash never leaves half a file under a final name.
//!
//! Invariants: bytes go to `<dir>/.tmp-<random>` and are fsynced before being renamed to
//! their final name in the same directory (rename is atomic on one filesystem); a temp file
//! that is not persisted is removed on drop, and stale ones are swept at open.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::StoreError;

/// Prefix of temp files; nothing else in a blob directory starts with it.
const TEMP_PREFIX: &str = ".tmp-";

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fully written and synced temp file waiting to be renamed into place.
#[derive(Debug)]
pub(crate) struct TempBlob {
    path: PathBuf,
    persisted: bool,
}

impl TempBlob {
    /// Writes `bytes` to a new temp file in `dir` and syncs it to disk.
    pub(crate) fn write(dir: &Path, bytes: &[u8]) -> Result<TempBlob, StoreError> {
        let path = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        // From here on the file is ours: dropping `blob` on an error removes it.
        let blob = TempBlob {
            path,
            persisted: false,
        };
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io(&blob.path, e))?;
        Ok(blob)
    }

    /// Renames the temp file to `dest` (same directory) and syncs the directory entry.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<(), StoreError> {
        fs::rename(&self.path, dest).map_err(|e| StoreError::io(dest, e))?;
        self.persisted = true;
        if let Some(dir) = dest.parent() {
            sync_dir(dir);
        }
        Ok(())
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes a rename durable; best effort, since not every platform can open a directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir)
        && let Err(e) = d.sync_all()
    {
        tracing::debug!(dir = %dir.display(), error = %e, "directory sync failed");
    }
}

/// Removes temp files left by a crash; errors are logged, not fatal.
pub(crate) fn sweep_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed stale temp file"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove stale temp file")
                }
            }
        }
    }
}

/// Reads a whole blob; a missing file is `Ok(None)`.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
