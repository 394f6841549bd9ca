//! The runtime's error types: [`PluginError`] for the host's own failures and [`AppError`]
//! for an app that misbehaved.
//!
//! Invariant: an [`AppError`] concerns one call only; the runtime and other instances are
//! unaffected by it.

use crate::validate::ValidationError;

/// How an app failed while handling an event; the call then ends with `app-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The app trapped (a panic, `unreachable`, a bad memory access ...); the message says
    /// which, with the app's last output when there was some.
    #[error("app trapped: {0}")]
    Trap(String),
    /// The app ran past its CPU deadline for one event.
    #[error("app ran past its CPU deadline")]
    Deadline,
    /// The app tried to grow its memory past the cap.
    #[error("app exceeded its memory limit")]
    OutOfMemory,
}

impl AppError {
    /// A stable short name for logs and metrics: `trap`, `deadline` or `out_of_memory`.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Trap(_) => "trap",
            AppError::Deadline => "deadline",
            AppError::OutOfMemory => "out_of_memory",
        }
    }
}

/// Failures of the runtime itself, or of preparing an app for a call.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The wasmtime engine, linker or epoch ticker could not be set up.
    #[error("plugin runtime setup failed: {0}")]
    Setup(String),
    /// The component was refused (see the code and message).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A compiled artifact could not be serialized or loaded (corrupt, or written by another
    /// wasmtime version or configuration); recompile from the component bytes.
    #[error("compiled artifact unusable: {0}")]
    Artifact(String),
    /// Every instance slot is in use (`max_instances` concurrent calls).
    #[error("no free app instance slot (limit {0} concurrent instances)")]
    AtCapacity(u32),
    /// Instantiation failed for another reason inside wasmtime.
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    /// The app failed while being instantiated (its start code trapped or ran too long).
    #[error(transparent)]
    App(#[from] AppError),
}

/// Renders an error with its causes, `outer: inner: root`.
pub(crate) fn chain(err: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
