//! A child process of the harness: its stdout and stderr go to one log file, every wait on it
//! is bounded, and it is killed when dropped.
//!
//! Invariant: a `ChildProcess` never outlives its owner (SIGKILL on drop, plus tokio's
//! `kill_on_drop` as a second line), so a failing test cannot leave a pbx, sipp or baresip
//! behind holding ports.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

use crate::error::{HarnessError, Result};

/// A running child process with its output captured in a file.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `cmd` with stdin closed and stdout/stderr appended to `log_path` (created when
    /// missing, so a restarted process keeps the earlier output above a marker line).
    pub fn spawn(name: &str, mut cmd: Command, log_path: &Path) -> Result<Self> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| HarnessError::io(format!("open log {}", log_path.display()), e))?;
        // A marker makes restarts and the exact command line visible in the log.
        let _ = writeln!(log, "=== harness: starting {name}: {cmd:?}");
        let err = log
            .try_clone()
            .map_err(|e| HarnessError::io("clone log handle", e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError::io(format!("spawn {name} ({cmd:?})"), e))?;
        Ok(ChildProcess {
            name: name.to_string(),
            child,
            log_path: log_path.to_path_buf(),
            exit: None,
        })
    }

    /// The process name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Where its output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Its whole output so far (lossy UTF-8; empty when unreadable).
    pub fn log_text(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// The last `lines` lines of its output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_text(), lines)
    }

    /// Its exit status if it has ended, without waiting.
    pub fn try_status(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.exit {
            return Ok(Some(status));
        }
        let status = self
            .child
            .try_wait()
            .map_err(|e| HarnessError::io(format!("try_wait {}", self.name), e))?;
        self.exit = status;
        Ok(status)
    }

    /// Fails with its log tail when it has already exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.try_status()? {
            None => Ok(()),
            Some(status) => Err(HarnessError::Exited {
                what: self.name.clone(),
                status: status.to_string(),
                log_tail: self.log_tail(40),
            }),
        }
    }

    /// Waits for it to exit, at most `timeout`.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exit = Some(status);
                Ok(status)
            }
            Ok(Err(e)) => Err(HarnessError::io(format!("wait {}", self.name), e)),
            Err(_) => Err(HarnessError::timeout(
                format!("{} to exit", self.name),
                timeout,
            )),
        }
    }

    /// Sends a signal; an already finished process is not an error.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.try_status()?.is_some() {
            return Ok(());
        }
        let Some(pid) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
        else {
            return Ok(());
        };
        match kill_process(pid, signal) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(HarnessError::io(
                format!("signal {} ({signal:?})", self.name),
                e.into(),
            )),
        }
    }

    /// Stops it politely: SIGTERM, then SIGKILL if it has not exited after `grace`.
    /// Returns the exit status and whether SIGKILL was needed.
    pub async fn terminate(&mut self, grace: Duration) -> Result<(ExitStatus, bool)> {
        self.signal(Signal::TERM)?;
        match self.wait_timeout(grace).await {
            Ok(status) => Ok((status, false)),
            Err(HarnessError::Timeout { .. }) => {
                self.signal(Signal::KILL)?;
                let status = self.wait_timeout(Duration::from_secs(10)).await?;
                Ok((status, true))
            }
            Err(e) => Err(e),
        }
    }

    /// Kills it at once (SIGKILL) and reaps it, bounded.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::KILL)?;
        self.wait_timeout(Duration::from_secs(10)).await
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // tokio's kill_on_drop also does this; being explicit keeps the guarantee
            // independent of how the Child is dropped.
            let _ = self.child.start_kill();
        }
    }
}

/// The file's contents as lossy UTF-8, or an empty string when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Writes a whole file, naming it in the error.
pub(crate) fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("write {}", path.display()), e))
}
