//! baresip as a scriptable SIP user agent: a config written into a temp dir (the keys of
//! `/work/shared/peers/baresip/mkconf.sh`), driven over its ctrl_tcp socket (netstring-framed
//! JSON), recording what it hears into `dump-*-dec.wav`.
//!
//! Invariants: the ctrl socket is connected before `start` returns, so no event of a call is
//! missed (the peers README pitfall); every wait is bounded; the process is killed on drop,
//! and when a test panics its log and the events it saw are printed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::error::{HarnessError, Result};
use crate::media;
use crate::net::{free_port_block, free_tcp_port, loopback};
use crate::paths::program;
use crate::process::{ChildProcess, tail, write_file};

/// What baresip sends as its microphone.
#[derive(Debug, Clone)]
pub enum AudioSource {
    /// A WAV file, 8 kHz mono 16-bit (aufile needs exactly `ausrc_srate`/`ausrc_channels`).
    /// aufile ends the call at the end of the file, so pad it to outlast the call.
    File(PathBuf),
    /// Two minutes of generated silence (the default: the recording then holds only what the
    /// far end sent).
    Silence,
    /// A sine of this many Hz from the ausine module (48 kHz stereo).
    Sine(u32),
}

/// Whether baresip answers incoming calls by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// Incoming calls ring until `accept` (a caller).
    Manual,
    /// Incoming calls are answered at once (a callee).
    Auto,
}

/// How a [`Baresip`] is configured.
#[derive(Debug, Clone)]
pub struct BaresipOptions {
    /// The account's user part (`sip:NAME@127.0.0.1:PORT`).
    pub name: String,
    /// The microphone.
    pub source: AudioSource,
    /// Auto-answer or not.
    pub answer_mode: AnswerMode,
    /// The account's `audio_codecs`, e.g. "pcmu" or "pcmu,pcma".
    pub codecs: String,
    /// How long to wait for the ctrl socket after spawning.
    pub startup_timeout: Duration,
    /// REGISTER with a registrar (the pbx) instead of being a standalone UA.
    pub register: Option<Registration>,
    /// The audio player (`audio_player`); None is `aubridge,nowhere` (no CPU, but baresip 1.0
    /// stops recording what it hears after a re-INVITE with it, see [`HOLD_SAFE_PLAYER`]).
    pub player: Option<String>,
}

/// A player that keeps baresip's recording of what it hears going across re-INVITEs (hold,
/// resume): ALSA's `null` device. It costs a CPU core while a call is up, so use it only for
/// a party that will be put on hold.
pub const HOLD_SAFE_PLAYER: &str = "alsa,null";

/// A registration with a registrar: the account becomes `<sip:NAME@REGISTRAR>` with digest
/// credentials, so that the UA REGISTERs at startup and can be reached as a SIP user.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The registrar's SIP address (the pbx's `--sip` address).
    pub registrar: SocketAddr,
    /// The digest password (the username is the account's name).
    pub password: String,
}

impl Default for BaresipOptions {
    fn default() -> Self {
        BaresipOptions {
            name: "alice".into(),
            source: AudioSource::Silence,
            answer_mode: AnswerMode::Manual,
            codecs: "pcmu,pcma".into(),
            startup_timeout: Duration::from_secs(10),
            register: None,
            player: None,
        }
    }
}

/// One event pushed by baresip over ctrl_tcp.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event type, e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`, `CALL_DTMF_START`.
    pub kind: String,
    /// The event's `param`: for `CALL_CLOSED` the reason (e.g. "404 Not Found",
    /// "Connection reset by peer", "end of file"), for DTMF the digit.
    pub param: String,
    /// The whole JSON object.
    pub raw: Value,
    /// When the harness read it.
    pub at: Instant,
}

/// A response to a ctrl_tcp command.
#[derive(Debug, Clone)]
pub struct CommandReply {
    /// Whether baresip accepted the command.
    pub ok: bool,
    /// Its text output.
    pub data: String,
}

/// A netstring JSON client for baresip's ctrl_tcp module.
#[derive(Debug)]
struct Ctrl {
    stream: TcpStream,
    buf: Vec<u8>,
    next_token: u64,
}

impl Ctrl {
    async fn connect(port: u16, timeout: Duration) -> Result<Ctrl> {
        let deadline = Instant::now() + timeout;
        loop {
            match TcpStream::connect(loopback(port)).await {
                Ok(stream) => {
                    return Ok(Ctrl {
                        stream,
                        buf: Vec::new(),
                        next_token: 1,
                    });
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(HarnessError::io(
                        format!("connect to baresip ctrl_tcp on port {port} within {timeout:?}"),
                        e,
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn send(&mut self, command: &str, params: Option<&str>, token: &str) -> Result<()> {
        let mut msg = json!({ "command": command, "token": token });
        if let Some(params) = params {
            msg["params"] = Value::String(params.to_string());
        }
        let body = msg.to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.stream
            .write_all(frame.as_bytes())
            .await
            .map_err(|e| HarnessError::io(format!("send `{command}` to baresip"), e))
    }

    /// Takes one complete netstring from the buffer, if there is one.
    fn take_frame(&mut self) -> Result<Option<Value>> {
        let Some(colon) = self.buf.iter().position(|&b| b == b':') else {
            if self.buf.len() > 10 {
                return Err(HarnessError::protocol(
                    "baresip ctrl_tcp",
                    "netstring length prefix too long",
                ));
            }
            return Ok(None);
        };
        let len: usize = std::str::from_utf8(&self.buf[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                HarnessError::protocol(
                    "baresip ctrl_tcp",
                    format!(
                        "bad netstring length {:?}",
                        String::from_utf8_lossy(&self.buf[..colon])
                    ),
                )
            })?;
        let end = colon + 1 + len;
        if self.buf.len() < end + 1 {
            return Ok(None);
        }
        let value = serde_json::from_slice(&self.buf[colon + 1..end]).map_err(|e| {
            HarnessError::protocol("baresip ctrl_tcp", format!("bad JSON in netstring: {e}"))
        })?;
        self.buf.drain(..=end);
        Ok(Some(value))
    }

    /// Reads one message, waiting until `deadline`; `Ok(None)` when the deadline passed.
    async fn read(&mut self, deadline: Instant) -> Result<Option<Value>> {
        loop {
            if let Some(value) = self.take_frame()? {
                return Ok(Some(value));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => {
                    return Err(HarnessError::protocol(
                        "baresip ctrl_tcp",
                        "connection closed by baresip",
                    ));
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(HarnessError::io("read baresip ctrl_tcp", e)),
            }
        }
    }
}

/// A running baresip user agent.
#[derive(Debug)]
pub struct Baresip {
    process: ChildProcess,
    dir: TempDir,
    ctrl: Ctrl,
    name: String,
    sip_port: u16,
    pending: VecDeque<Event>,
    history: Vec<Event>,
}

impl Baresip {
    /// Writes the config, starts `baresip -4 -f DIR` and connects to its ctrl socket.
    pub async fn start(options: BaresipOptions) -> Result<Baresip> {
        let binary = program("baresip")?;
        let dir = crate::paths::temp_dir("baresip-")?;
        let rec = dir.path().join("rec");
        std::fs::create_dir_all(&rec)
            .map_err(|e| HarnessError::io(format!("create {}", rec.display()), e))?;
        let source = match &options.source {
            AudioSource::File(path) => AudioSpec::File(path.clone()),
            AudioSource::Silence => {
                let path = dir.path().join("silence8k.wav");
                media::write_silence(&path, 8000, Duration::from_secs(120))?;
                AudioSpec::File(path)
            }
            AudioSource::Sine(hz) => AudioSpec::Sine(*hz),
        };
        // baresip listens on SIP_PORT for UDP and TCP and on SIP_PORT+1 for TLS.
        let sip_port = free_port_block(2)?;
        let ctrl_port = free_tcp_port()?;
        let rtp_base = free_port_block(20)?;
        let config = config_text(&ConfigParams {
            sip_port,
            ctrl_port,
            rtp_range: (rtp_base, rtp_base + 19),
            source: &source,
            rec_dir: &rec,
            player: options.player.as_deref().unwrap_or("aubridge,nowhere"),
        });
        write_file(&dir.path().join("config"), config)?;
        let answer = match options.answer_mode {
            AnswerMode::Manual => "manual",
            AnswerMode::Auto => "auto",
        };
        // A registering account is added over ctrl_tcp (`uanew`) once the socket is
        // connected: baresip REGISTERs as soon as the account exists, and an account from the
        // file would register before anyone listens for REGISTER_OK.
        let account = account_line(&options, sip_port, answer);
        let file_account = if options.register.is_some() {
            String::new()
        } else {
            account.clone()
        };
        write_file(&dir.path().join("accounts"), file_account)?;
        write_file(&dir.path().join("contacts"), "")?;
        let mut cmd = Command::new(binary);
        cmd.arg("-4")
            .arg("-f")
            .arg(dir.path())
            .current_dir(dir.path())
            .env("HOME", dir.path());
        let log_path = dir.path().join("baresip.log");
        let mut process =
            ChildProcess::spawn(&format!("baresip {}", options.name), cmd, &log_path)?;
        let ctrl = match Ctrl::connect(ctrl_port, options.startup_timeout).await {
            Ok(ctrl) => ctrl,
            Err(err) => {
                process.ensure_running()?;
                return Err(err);
            }
        };
        let mut ua = Baresip {
            process,
            dir,
            ctrl,
            name: options.name,
            sip_port,
            pending: VecDeque::new(),
            history: Vec::new(),
        };
        if options.register.is_some() {
            ua.command_ok("uanew", Some(account.trim_end())).await?;
        }
        Ok(ua)
    }

    /// This UA's own SIP URI (for calling it).
    pub fn sip_uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.name, self.sip_port)
    }

    /// Its SIP port (UDP and TCP).
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// Its config dir (config, accounts, log, `rec/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a ctrl_tcp command and waits (at most 10 s) for its response; events that
    /// arrive meanwhile are kept for [`Baresip::wait_event`].
    pub async fn command(&mut self, command: &str, params: Option<&str>) -> Result<CommandReply> {
        let token = format!("t{}", self.ctrl.next_token);
        self.ctrl.next_token += 1;
        self.ctrl.send(command, params, &token).await?;
        let timeout = Duration::from_secs(10);
        let deadline = Instant::now() + timeout;
        loop {
            let Some(msg) = self.ctrl.read(deadline).await? else {
                return Err(HarnessError::timeout(
                    format!("baresip response to `{command}`"),
                    timeout,
                ));
            };
            if msg.get("event").and_then(Value::as_bool) == Some(true) {
                self.push_event(msg);
                continue;
            }
            if msg.get("response").and_then(Value::as_bool) == Some(true)
                && msg.get("token").and_then(Value::as_str) == Some(token.as_str())
            {
                return Ok(CommandReply {
                    ok: msg.get("ok").and_then(Value::as_bool).unwrap_or(false),
                    data: msg
                        .get("data")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        }
    }

    async fn command_ok(&mut self, command: &str, params: Option<&str>) -> Result<CommandReply> {
        let reply = self.command(command, params).await?;
        if reply.ok {
            Ok(reply)
        } else {
            Err(HarnessError::protocol(
                "baresip",
                format!(
                    "`{command} {}` refused: {}",
                    params.unwrap_or(""),
                    reply.data
                ),
            ))
        }
    }

    fn push_event(&mut self, raw: Value) {
        let event = Event {
            kind: raw
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            param: raw
                .get("param")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            raw,
            at: Instant::now(),
        };
        self.history.push(event.clone());
        self.pending.push_back(event);
    }

    /// Calls `uri` (append `;transport=tcp` for TCP).
    pub async fn dial(&mut self, uri: &str) -> Result<()> {
        self.command_ok("dial", Some(uri)).await.map(|_| ())
    }

    /// Sends DTMF digits as RFC 4733 events (`sndcode`; queued and sent in order).
    pub async fn send_dtmf(&mut self, digits: &str) -> Result<()> {
        self.command_ok("sndcode", Some(digits)).await.map(|_| ())
    }

    /// Hangs up the current call.
    pub async fn hangup(&mut self) -> Result<()> {
        self.command_ok("hangup", None).await.map(|_| ())
    }

    /// Answers the ringing incoming call.
    pub async fn accept(&mut self) -> Result<()> {
        self.command_ok("accept", None).await.map(|_| ())
    }

    /// The text of `listcalls`.
    pub async fn list_calls(&mut self) -> Result<String> {
        Ok(self.command("listcalls", None).await?.data)
    }

    /// Waits for the first not yet consumed event of type `kind` (e.g. `CALL_ESTABLISHED`,
    /// `CALL_CLOSED`), at most `timeout`, and consumes it. Other events stay available.
    pub async fn wait_event(&mut self, kind: &str, timeout: Duration) -> Result<Event> {
        self.wait_any(&[kind], timeout).await
    }

    /// Waits for the first not yet consumed event whose type is one of `kinds`, at most
    /// `timeout`, and consumes it (so a test can wait for "established or closed").
    pub async fn wait_any(&mut self, kinds: &[&str], timeout: Duration) -> Result<Event> {
        let kind = kinds.join(" or ");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self
                .pending
                .iter()
                .position(|e| kinds.contains(&e.kind.as_str()))
                && let Some(event) = self.pending.remove(pos)
            {
                return Ok(event);
            }
            match self.ctrl.read(deadline).await {
                Ok(Some(msg)) => {
                    if msg.get("event").and_then(Value::as_bool) == Some(true) {
                        self.push_event(msg);
                    }
                }
                Ok(None) => {
                    return Err(HarnessError::timeout(
                        format!(
                            "baresip event {kind} (events so far: {})",
                            self.event_summary()
                        ),
                        timeout,
                    ));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits for the registrar's 200 (`REGISTER_OK`); a `REGISTER_FAIL` first is an error
    /// carrying its reason (e.g. "401 Unauthorized").
    pub async fn wait_registered(&mut self, timeout: Duration) -> Result<()> {
        let event = self
            .wait_any(&["REGISTER_OK", "REGISTER_FAIL"], timeout)
            .await?;
        if event.kind == "REGISTER_OK" {
            Ok(())
        } else {
            Err(HarnessError::protocol(
                format!("baresip {}", self.name),
                format!("registration failed: {}", event.param),
            ))
        }
    }

    /// Waits for the registration to fail (`REGISTER_FAIL`) and returns its reason; a
    /// `REGISTER_OK` first is an error.
    pub async fn wait_register_failed(&mut self, timeout: Duration) -> Result<String> {
        let event = self
            .wait_any(&["REGISTER_OK", "REGISTER_FAIL"], timeout)
            .await?;
        if event.kind == "REGISTER_FAIL" {
            Ok(event.param)
        } else {
            Err(HarnessError::protocol(
                format!("baresip {}", self.name),
                format!(
                    "registration succeeded but a failure was expected: {}",
                    event.param
                ),
            ))
        }
    }

    /// Whether an event of type `kind` was seen (consumed or not).
    pub fn saw(&self, kind: &str) -> bool {
        self.history.iter().any(|e| e.kind == kind)
    }

    /// The account's name (the user part of its AOR).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads whatever events arrive for `duration` (to let a call run while collecting them).
    pub async fn pump_events(&mut self, duration: Duration) -> Result<()> {
        let deadline = Instant::now() + duration;
        while let Some(msg) = self.ctrl.read(deadline).await? {
            if msg.get("event").and_then(Value::as_bool) == Some(true) {
                self.push_event(msg);
            }
        }
        Ok(())
    }

    /// Every event seen so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.history
    }

    /// The events seen so far as `TYPE(param)` text, for messages.
    pub fn event_summary(&self) -> String {
        self.history
            .iter()
            .map(|e| {
                if e.param.is_empty() {
                    e.kind.clone()
                } else {
                    format!("{}({})", e.kind, e.param)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The recordings of what it heard (`dump-*-dec.wav`), oldest first.
    pub fn recordings(&self) -> Vec<PathBuf> {
        list_dumps(&self.dir.path().join("rec"), "-dec.wav")
    }

    /// The recordings of what it sent (`dump-*-enc.wav`), oldest first.
    pub fn sent_recordings(&self) -> Vec<PathBuf> {
        list_dumps(&self.dir.path().join("rec"), "-enc.wav")
    }

    /// The newest recording of what it heard. The file is complete once the call closed.
    pub fn last_recording(&self) -> Result<PathBuf> {
        self.recordings()
            .pop()
            .ok_or_else(|| HarnessError::Missing {
                what: "a baresip recording (dump-*-dec.wav)".into(),
                path: self.dir.path().join("rec"),
                hint: format!(
                    "the call never carried audio? events: {}",
                    self.event_summary()
                ),
            })
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Asks it to quit and waits (at most 10 s) for it to exit, killing it otherwise.
    pub async fn quit(&mut self) -> Result<()> {
        // The reply may not arrive when baresip exits first; that is fine.
        let _ = self.command("quit", None).await;
        if self
            .process
            .wait_timeout(Duration::from_secs(10))
            .await
            .is_err()
        {
            self.process.kill().await?;
        }
        Ok(())
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== baresip {} ({}) events: {}\n----- log tail -----\n{}\n===== end of baresip log =====",
                self.name,
                self.dir.path().display(),
                self.event_summary(),
                tail(&self.process.log_text(), 60)
            );
        }
    }
}

fn list_dumps(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("dump-") && n.ends_with(suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The `accounts` line. A standalone UA's AOR is its own listen address with `regint=0`; a
/// registering UA's AOR is at the registrar (baresip sends REGISTER to the AOR's host), with
/// `auth_user`/`auth_pass` for the digest challenge. Its Contact is still its own listen
/// address, because `sip_listen` and `net_interface` pin it to 127.0.0.1:SIP_PORT.
fn account_line(options: &BaresipOptions, sip_port: u16, answer: &str) -> String {
    match &options.register {
        None => format!(
            "<sip:{}@127.0.0.1:{sip_port}>;regint=0;answermode={answer};audio_codecs={}\n",
            options.name, options.codecs
        ),
        Some(reg) => format!(
            "<sip:{name}@{registrar}>;auth_user={name};auth_pass={pass};regint=300;\
             answermode={answer};audio_codecs={codecs}\n",
            name = options.name,
            registrar = reg.registrar,
            pass = reg.password,
            codecs = options.codecs
        ),
    }
}

enum AudioSpec {
    File(PathBuf),
    Sine(u32),
}

struct ConfigParams<'a> {
    sip_port: u16,
    ctrl_port: u16,
    rtp_range: (u16, u16),
    source: &'a AudioSpec,
    rec_dir: &'a Path,
    player: &'a str,
}

/// The baresip 1.0 config: headless, loopback only, audio discarded (aubridge to nowhere,
/// about 0% CPU; alsa,null would spin), mic from a WAV or a sine, recordings into `rec/`.
fn config_text(p: &ConfigParams<'_>) -> String {
    let (source, srate, channels) = match p.source {
        AudioSpec::File(path) => (format!("aufile,{}", path.display()), 8000, 1),
        AudioSpec::Sine(hz) => (format!("ausine,{hz}"), 48000, 2),
    };
    format!(
        "\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip}
call_local_timeout\t120
call_max_calls\t\t4
audio_player\t\t{player}
audio_alert\t\taubridge,nowhere
audio_source\t\t{source}
ausrc_srate\t\t{srate}
ausrc_channels\t\t{channels}
audio_level\t\tno
ausrc_format\t\ts16
auplay_format\t\ts16
auenc_format\t\ts16
audec_format\t\ts16
rtp_tos\t\t\t0
rtp_ports\t\t{rtp_lo}-{rtp_hi}
rtcp_mux\t\tno
jitter_buffer_delay\t5-10
rtp_stats\t\tyes
net_interface\t\t127.0.0.1
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\topus.so
module\t\t\tsndfile.so
module\t\t\taubridge.so
module\t\t\taufile.so
module\t\t\tausine.so
{player_module}module_tmp\t\taccount.so
module_app\t\tmenu.so
module_app\t\tctrl_tcp.so
ctrl_tcp_listen\t\t127.0.0.1:{ctrl}
snd_path\t\t{rec}
ringback_disabled\tyes
statmode_default\toff
",
        sip = p.sip_port,
        ctrl = p.ctrl_port,
        rtp_lo = p.rtp_range.0,
        rtp_hi = p.rtp_range.1,
        rec = p.rec_dir.display(),
        player = p.player,
        player_module = match p.player.split(',').next() {
            Some(module) if module != "aubridge" => format!("module\t\t\t{module}.so\n"),
            _ => String::new(),
        },
    )
}
