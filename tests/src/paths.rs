//! Where the things under test live: the pbx binary, the example app components, the peers.
//!
//! Invariant: every lookup fails with `HarnessError::Missing` and a hint on how to produce the
//! missing file, never with a bare "No such file".

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The pbx binary: `$PBX_BIN` if set, else `$CARGO_TARGET_DIR/debug/pbx`, else
/// `<root>/target/debug/pbx` (Cargo gives `CARGO_BIN_EXE_*` only to the binary's own package).
pub fn pbx_binary() -> Result<PathBuf> {
    let path = if let Some(bin) = std::env::var_os("PBX_BIN") {
        PathBuf::from(bin)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        let target = PathBuf::from(target);
        let target = if target.is_absolute() {
            target
        } else {
            workspace_root().join(target)
        };
        target.join("debug").join("pbx")
    } else {
        workspace_root().join("target").join("debug").join("pbx")
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::Missing {
            what: "the pbx binary".into(),
            path,
            hint: "build it with `cargo build -p pbx` or set PBX_BIN to its path".into(),
        })
    }
}

/// The directory the example apps are built into.
pub fn plugins_dir() -> PathBuf {
    workspace_root()
        .join("plugins")
        .join("target")
        .join("wasm32-wasip2")
        .join("release")
}

/// The built component of the example app or fixture `name` (hello, ivr, trap, spin, hog).
pub fn plugin_path(name: &str) -> Result<PathBuf> {
    let path = plugins_dir().join(format!("{name}.wasm"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::Missing {
            what: format!("the `{name}` app component"),
            path,
            hint: "run scripts/build-plugins.sh".into(),
        })
    }
}

/// A program the tests need on PATH (sipp, baresip), as an absolute path.
pub fn program(name: &str) -> Result<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(HarnessError::Missing {
        what: format!("the `{name}` program"),
        path: PathBuf::from(name),
        hint: "install it (see /work/shared/peers/install.sh)".into(),
    })
}

/// A fresh temp dir named `<prefix>XXXX`; kept after the test when `PBX_E2E_KEEP` is set, so
/// logs, recordings and sipp traces can be inspected.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| crate::error::HarnessError::io(format!("create temp dir {prefix}*"), e))?;
    if std::env::var_os("PBX_E2E_KEEP").is_some() {
        dir.disable_cleanup(true);
    }
    Ok(dir)
}
