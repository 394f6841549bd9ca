//! The pbx server under test: started on free loopback ports with a temp data dir and a random
//! admin token, health-checked, restartable with the same dir and ports, and stopped with
//! SIGTERM then SIGKILL.
//!
//! Invariants: every wait is bounded; the process is killed when the `Pbx` is dropped; when a
//! test panics while a `Pbx` is alive, its log tail is printed to stderr (the test output), so
//! a failure always shows what the server said.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::Command;

use crate::api::Api;
use crate::error::{HarnessError, Result};
use crate::net::{free_tcp_port, free_udp_tcp_port, loopback};
use crate::paths::pbx_binary;
use crate::process::{ChildProcess, tail};

/// How a pbx is started.
#[derive(Debug, Clone)]
pub struct PbxOptions {
    /// Run this binary instead of [`pbx_binary`]'s (the harness self-test uses a fake server).
    pub binary: Option<PathBuf>,
    /// Use this data dir (kept after the test) instead of a fresh temp dir.
    pub data_dir: Option<PathBuf>,
    /// How long to wait for `/healthz` after spawning.
    pub startup_timeout: Duration,
    /// How long SIGTERM may take before SIGKILL.
    pub stop_grace: Duration,
    /// Extra command-line arguments after the required ones.
    pub extra_args: Vec<String>,
    /// Extra environment for the server.
    pub env: Vec<(String, String)>,
}

impl Default for PbxOptions {
    fn default() -> Self {
        PbxOptions {
            binary: None,
            data_dir: None,
            startup_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(10),
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// An app deployed by [`Pbx::deploy_app`].
#[derive(Debug, Clone)]
pub struct DeployedApp {
    /// The app's id.
    pub app_id: String,
    /// The deployed version.
    pub version: u64,
    /// The number bound to it.
    pub number: String,
}

/// A running pbx with its ports, token, data dir and log.
#[derive(Debug)]
pub struct Pbx {
    process: Option<ChildProcess>,
    binary: PathBuf,
    options: PbxOptions,
    sip_port: u16,
    http_port: u16,
    token: String,
    data_dir: PathBuf,
    work: TempDir,
    _data_tmp: Option<TempDir>,
    api: Api,
}

/// How many times a fresh start is retried with new ports when the server dies at startup
/// (another process took a port between our probe and its bind).
const START_ATTEMPTS: usize = 3;

impl Pbx {
    /// Starts a pbx with default options: fresh ports, temp data dir, random token.
    pub async fn start() -> Result<Pbx> {
        Pbx::start_with(PbxOptions::default()).await
    }

    /// Starts a pbx with `options`; waits until `/healthz` answers 200.
    pub async fn start_with(options: PbxOptions) -> Result<Pbx> {
        let binary = match &options.binary {
            Some(binary) => binary.clone(),
            None => pbx_binary()?,
        };
        let work = crate::paths::temp_dir("pbx-e2e-")?;
        let (data_dir, data_tmp) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let tmp = crate::paths::temp_dir("pbx-data-")?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        let token = format!("e2e-{:032x}", rand::random::<u128>());
        let api = Api::new("http://127.0.0.1:1", &token)?;
        let mut pbx = Pbx {
            process: None,
            binary,
            options,
            sip_port: 0,
            http_port: 0,
            token,
            data_dir,
            work,
            _data_tmp: data_tmp,
            api,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            pbx.sip_port = free_udp_tcp_port()?;
            pbx.http_port = free_tcp_port()?;
            pbx.api = Api::new(&pbx.http_base(), &pbx.token)?;
            match pbx.launch().await {
                Ok(()) => return Ok(pbx),
                // Died at startup: maybe another process took a port between our probe and
                // its bind; retry with new ports. A server that is alive but never healthy
                // is not a race: report it at once.
                Err(err @ HarnessError::Exited { .. }) if attempt < START_ATTEMPTS => {
                    eprintln!("harness: pbx died at startup (attempt {attempt}), retrying: {err}");
                    pbx.process = None;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .arg("--sip")
            .arg(self.sip_addr().to_string())
            .arg("--http")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--admin-token")
            .arg(&self.token)
            .args(&self.options.extra_args)
            .current_dir(self.work.path())
            // Settings from the caller's environment must not change what is tested.
            .env_remove("PBX_CONFIG")
            .env_remove("PBX_EXAMPLE_APPS")
            .env_remove("PBX_PUBLIC_IP")
            .env_remove("PBX_LOG_JSON")
            // The tests grep the log for app lines at info level (`received digit 5`) and
            // for the call sessions' own lines, which are at debug (per-call lines).
            .env(
                "RUST_LOG",
                std::env::var("PBX_E2E_RUST_LOG").unwrap_or_else(|_| "info,pbx::call=debug".into()),
            )
            .env("NO_COLOR", "1");
        for (key, value) in &self.options.env {
            cmd.env(key, value);
        }
        cmd
    }

    async fn launch(&mut self) -> Result<()> {
        let process = ChildProcess::spawn("pbx", self.command(), &self.log_path())?;
        self.process = Some(process);
        self.wait_healthy(self.options.startup_timeout).await
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(process) = self.process.as_mut() {
                process.ensure_running()?;
            }
            if let Ok((200, _)) = self.api.healthz().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!(
                        "pbx /healthz on {} to answer 200; log tail:\n{}",
                        self.api.base(),
                        self.log_tail(40)
                    ),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after the grace period) and returns its exit
    /// status; `true` in the second field when SIGKILL was needed.
    pub async fn stop(&mut self) -> Result<(ExitStatus, bool)> {
        let grace = self.options.stop_grace;
        match self.process.as_mut() {
            Some(process) => process.terminate(grace).await,
            None => Err(HarnessError::protocol("pbx", "not running")),
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildProcess::id)
    }

    /// Sends `signal` to the server (SIGTERM to make it drain); a finished server is not an
    /// error.
    pub fn signal(&mut self, signal: rustix::process::Signal) -> Result<()> {
        match self.process.as_mut() {
            Some(process) => process.signal(signal),
            None => Err(HarnessError::protocol("pbx", "not running")),
        }
    }

    /// Waits for the server to exit by itself, at most `timeout`, and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match self.process.as_mut() {
            Some(process) => process.wait_timeout(timeout).await,
            None => Err(HarnessError::protocol("pbx", "not running")),
        }
    }

    /// Whether the server has exited (its status), without waiting.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        match self.process.as_mut() {
            Some(process) => process.try_status(),
            None => Err(HarnessError::protocol("pbx", "not running")),
        }
    }

    /// Stops the server and starts it again with the same data dir, ports and token.
    pub async fn restart(&mut self) -> Result<()> {
        let (status, killed) = self.stop().await?;
        eprintln!("harness: pbx stopped with {status} (SIGKILL needed: {killed}); restarting");
        self.process = None;
        // The old process has exited, but give the kernel a moment if a port is still held.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !port_bindable(self.sip_port, self.http_port) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.launch().await
    }

    /// The SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        loopback(self.sip_port)
    }

    /// A SIP URI for `user` at this pbx, e.g. `sip:1000@127.0.0.1:PORT`.
    pub fn sip_uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.sip_addr())
    }

    /// The HTTP API base URL.
    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The admin token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A temp dir owned by this pbx for the test's own files (removed with it).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The admin API client.
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// The server's log file (stdout and stderr, all runs).
    pub fn log_path(&self) -> PathBuf {
        self.work.path().join("pbx.log")
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        crate::process::read_lossy(&self.log_path())
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_text(), lines)
    }

    /// Fails with the log tail when the server has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.process.as_mut() {
            Some(process) => process.ensure_running(),
            None => Err(HarnessError::protocol("pbx", "not running")),
        }
    }

    /// Waits until the log contains `needle`, at most `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_text().contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::timeout(
                    format!("`{needle}` in the pbx log"),
                    timeout,
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates app `name`, uploads the component at `wasm_path`, deploys version 1 and binds
    /// `number` to it; every step must succeed with the contract's status.
    pub async fn deploy_app(
        &self,
        name: &str,
        wasm_path: &Path,
        number: &str,
    ) -> Result<DeployedApp> {
        self.api().deploy_app(name, wasm_path, number).await
    }
}

impl Drop for Pbx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== pbx log tail ({}; sip {} http {}) =====\n{}\n===== end of pbx log =====",
                self.log_path().display(),
                self.sip_addr(),
                self.http_base(),
                self.log_tail(150)
            );
        }
        if let Some(process) = self.process.as_mut() {
            let _ = process.signal(rustix::process::Signal::KILL);
        }
    }
}

fn port_bindable(sip: u16, http: u16) -> bool {
    std::net::UdpSocket::bind(loopback(sip)).is_ok()
        && std::net::TcpListener::bind(loopback(sip)).is_ok()
        && std::net::TcpListener::bind(loopback(http)).is_ok()
}
