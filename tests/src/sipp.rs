//! sipp runs: built-in scenarios (`uac`, `uac_pcap`, `uas`) or custom XML written to a temp
//! dir, with statistics, the message flow and the error log collected into a [`SippRun`].
//!
//! Invariants: each run has its own temp cwd (so `uac_pcap`'s relative `pcap/` symlink and all
//! trace files are private to it), its own SIP, media and control ports (sipp's defaults 5060,
//! 6000 and 8888 would collide between parallel tests), a `-timeout`, and a harness deadline
//! beyond that after which the process is killed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::Command;

use crate::error::{HarnessError, Result};
use crate::net::{free_port_block, free_udp_port, free_udp_tcp_port};
use crate::paths::program;
use crate::process::{ChildProcess, read_lossy, tail, write_file};

/// Where sipp's pcap files live (Debian's `sip-tester`).
pub const PCAP_DIR: &str = "/usr/share/sip-tester";

/// The SIP transport of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `-t u1`: one UDP socket.
    Udp,
    /// `-t t1`: one TCP connection.
    Tcp,
}

impl Transport {
    fn flag(self) -> &'static str {
        match self {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
        }
    }
}

#[derive(Debug, Clone)]
enum Scenario {
    Builtin(String),
    Xml { name: String, xml: String },
}

/// A sipp invocation, built up and then run with [`Sipp::run`] (client) or started in the
/// background with [`Sipp::spawn`] (server).
#[derive(Debug, Clone)]
pub struct Sipp {
    scenario: Scenario,
    target: Option<SocketAddr>,
    service: Option<String>,
    transport: Transport,
    calls: u32,
    timeout: Duration,
    rtp_echo: bool,
    pcap: bool,
    extra: Vec<String>,
}

impl Sipp {
    fn new(scenario: Scenario, target: Option<SocketAddr>, service: Option<&str>) -> Sipp {
        Sipp {
            scenario,
            target,
            service: service.map(str::to_string),
            transport: Transport::Udp,
            calls: 1,
            timeout: Duration::from_secs(30),
            rtp_echo: false,
            pcap: false,
            extra: Vec::new(),
        }
    }

    /// The built-in `uac`: INVITE, 200, ACK, BYE, 200 (no RTP is sent).
    pub fn uac(target: SocketAddr, number: &str) -> Sipp {
        Sipp::new(Scenario::Builtin("uac".into()), Some(target), Some(number))
    }

    /// The built-in `uac_pcap`: like `uac` but plays G.711 A-law RTP and an RFC 2833 digit `1`
    /// from pcap files for about 9 s before the BYE.
    pub fn uac_pcap(target: SocketAddr, number: &str) -> Sipp {
        let mut sipp = Sipp::new(
            Scenario::Builtin("uac_pcap".into()),
            Some(target),
            Some(number),
        );
        sipp.pcap = true;
        sipp
    }

    /// The built-in `uas` (answers one call; add [`Sipp::rtp_echo`] to echo RTP).
    pub fn uas() -> Sipp {
        Sipp::new(Scenario::Builtin("uas".into()), None, None)
    }

    /// A custom client scenario (see [`crate::scenarios`]) against `target`, calling `number`.
    pub fn custom(name: &str, xml: String, target: SocketAddr, number: &str) -> Sipp {
        Sipp::new(
            Scenario::Xml {
                name: name.into(),
                xml,
            },
            Some(target),
            Some(number),
        )
    }

    /// A custom server scenario, listening for one call.
    pub fn custom_server(name: &str, xml: String) -> Sipp {
        Sipp::new(
            Scenario::Xml {
                name: name.into(),
                xml,
            },
            None,
            None,
        )
    }

    /// The transport (UDP by default).
    pub fn transport(mut self, transport: Transport) -> Sipp {
        self.transport = transport;
        self
    }

    /// How many calls before sipp exits (`-m`, default 1).
    pub fn calls(mut self, calls: u32) -> Sipp {
        self.calls = calls;
        self
    }

    /// sipp's global timeout (`-timeout`, default 30 s) after which it fails.
    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.timeout = timeout;
        self
    }

    /// Echo received RTP back (`-rtp_echo`, for a server).
    pub fn rtp_echo(mut self) -> Sipp {
        self.rtp_echo = true;
        self
    }

    /// Any extra argument.
    pub fn arg(mut self, arg: &str) -> Sipp {
        self.extra.push(arg.to_string());
        self
    }

    fn scenario_name(&self) -> &str {
        match &self.scenario {
            Scenario::Builtin(name) => name,
            Scenario::Xml { name, .. } => name,
        }
    }

    /// Starts sipp in the background; for servers (the client side of a test runs later).
    pub async fn spawn(self) -> Result<RunningSipp> {
        let binary = program("sipp")?;
        let dir = crate::paths::temp_dir("sipp-")?;
        if self.pcap {
            std::os::unix::fs::symlink(PCAP_DIR, dir.path().join("pcap"))
                .map_err(|e| HarnessError::io("symlink pcap dir", e))?;
        }
        let sip_port = free_udp_tcp_port()?;
        let media_port = free_port_block(4)?;
        let control_port = free_udp_port()?;
        let mut cmd = Command::new(binary);
        cmd.current_dir(dir.path());
        match &self.scenario {
            Scenario::Builtin(name) => {
                cmd.arg("-sn").arg(name);
            }
            Scenario::Xml { name, xml } => {
                let path = dir.path().join(format!("{name}.xml"));
                write_file(&path, xml)?;
                cmd.arg("-sf").arg(&path);
            }
        }
        if let Some(target) = self.target {
            cmd.arg(target.to_string());
        }
        if let Some(service) = &self.service {
            cmd.arg("-s").arg(service);
        }
        let p = dir.path();
        cmd.args(["-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .arg("-p")
            .arg(sip_port.to_string())
            .arg("-mp")
            .arg(media_port.to_string())
            .arg("-cp")
            .arg(control_port.to_string())
            .arg("-t")
            .arg(self.transport.flag())
            .arg("-m")
            .arg(self.calls.to_string())
            .arg("-timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)))
            .args(["-timeout_error", "-nostdin"])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(p.join("stats.csv"))
            .args(["-trace_shortmsg", "-shortmessage_file"])
            .arg(p.join("short.csv"))
            .args(["-trace_msg", "-message_file"])
            .arg(p.join("messages.log"))
            .args(["-trace_err", "-error_file"])
            .arg(p.join("errors.log"))
            .args(["-trace_screen", "-screen_file"])
            .arg(p.join("screen.log"));
        if self.rtp_echo {
            cmd.arg("-rtp_echo");
        }
        cmd.args(&self.extra);
        let name = format!("sipp {}", self.scenario_name());
        let process = ChildProcess::spawn(&name, cmd, &dir.path().join("stdout.log"))?;
        Ok(RunningSipp {
            process,
            dir,
            sip_port,
            deadline: self.timeout + Duration::from_secs(20),
            name,
        })
    }

    /// Runs sipp to completion (bounded by its `-timeout` plus 20 s) and collects the results.
    pub async fn run(self) -> Result<SippRun> {
        self.spawn().await?.finish().await
    }
}

/// sipp running in the background.
#[derive(Debug)]
pub struct RunningSipp {
    process: ChildProcess,
    dir: TempDir,
    sip_port: u16,
    deadline: Duration,
    name: String,
}

impl RunningSipp {
    /// Where it listens for SIP (UDP or TCP, per its transport).
    pub fn addr(&self) -> SocketAddr {
        crate::net::loopback(self.sip_port)
    }

    /// Waits for it to exit (bounded) and collects the results; kills it at the deadline.
    pub async fn finish(mut self) -> Result<SippRun> {
        let exit = match self.process.wait_timeout(self.deadline).await {
            Ok(status) => (status.code(), false),
            Err(HarnessError::Timeout { .. }) => {
                let _ = self.process.kill().await;
                (None, true)
            }
            Err(e) => return Err(e),
        };
        Ok(SippRun::collect(self.name, exit.0, exit.1, self.dir))
    }

    /// Kills it now and collects what it wrote.
    pub async fn kill(mut self) -> Result<SippRun> {
        let _ = self.process.kill().await;
        Ok(SippRun::collect(self.name, None, true, self.dir))
    }
}

/// Whether sipp sent or received a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// sipp sent it.
    Sent,
    /// sipp received it.
    Received,
}

/// One line of sipp's short message trace.
#[derive(Debug, Clone)]
pub struct ShortMessage {
    /// Sent or received.
    pub direction: Direction,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq, e.g. "CSeq:1 INVITE".
    pub cseq: String,
    /// The start line, e.g. "SIP/2.0 200 OK" or "BYE sip:... SIP/2.0".
    pub first_line: String,
}

impl ShortMessage {
    /// The status code when this is a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.first_line.strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// The method when this is a request.
    pub fn method(&self) -> Option<&str> {
        if self.first_line.starts_with("SIP/2.0") {
            return None;
        }
        self.first_line.split_whitespace().next()
    }

    /// The CSeq method ("INVITE", "CANCEL", ...).
    pub fn cseq_method(&self) -> &str {
        self.cseq.split_whitespace().last().unwrap_or("")
    }
}

/// What a finished sipp run produced.
#[derive(Debug)]
pub struct SippRun {
    /// Which scenario ran.
    pub name: String,
    /// sipp's exit code (0: every call succeeded; 1: some failed; None: killed).
    pub exit_code: Option<i32>,
    /// Whether the harness had to kill it at its deadline.
    pub killed: bool,
    /// The last row of the statistics CSV, by column name.
    pub stats: HashMap<String, String>,
    /// The message flow, in order.
    pub messages: Vec<ShortMessage>,
    /// The unexpected-message log.
    pub errors: String,
    /// The full message log.
    pub message_log: String,
    /// Its stdout and stderr.
    pub stdout: String,
    /// The final statistics screen.
    pub screen: String,
    dir: TempDir,
}

impl SippRun {
    fn collect(name: String, exit_code: Option<i32>, killed: bool, dir: TempDir) -> SippRun {
        let p = dir.path();
        SippRun {
            name,
            exit_code,
            killed,
            stats: parse_stats(&read_lossy(&p.join("stats.csv"))),
            messages: parse_short(&read_lossy(&p.join("short.csv"))),
            errors: read_lossy(&p.join("errors.log")),
            message_log: read_lossy(&p.join("messages.log")),
            stdout: read_lossy(&p.join("stdout.log")),
            screen: read_lossy(&p.join("screen.log")),
            dir,
        }
    }

    /// The run's temp dir (traces, scenario file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn stat(&self, key: &str) -> u64 {
        self.stats
            .get(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `SuccessfulCall(C)`.
    pub fn successful_calls(&self) -> u64 {
        self.stat("SuccessfulCall(C)")
    }

    /// `FailedCall(C)`.
    pub fn failed_calls(&self) -> u64 {
        self.stat("FailedCall(C)")
    }

    /// Exit 0 with `calls` successful and no failed calls.
    pub fn succeeded(&self, calls: u64) -> bool {
        self.exit_code == Some(0) && self.successful_calls() == calls && self.failed_calls() == 0
    }

    /// The status codes sipp received, in order.
    pub fn received_statuses(&self) -> Vec<u16> {
        self.messages
            .iter()
            .filter(|m| m.direction == Direction::Received)
            .filter_map(ShortMessage::status)
            .collect()
    }

    /// Whether sipp received a response with `status` to a request of `cseq_method`.
    pub fn received_response(&self, status: u16, cseq_method: &str) -> bool {
        self.messages.iter().any(|m| {
            m.direction == Direction::Received
                && m.status() == Some(status)
                && m.cseq_method() == cseq_method
        })
    }

    /// Whether sipp received a request with `method` (e.g. the server's BYE).
    pub fn received_request(&self, method: &str) -> bool {
        self.messages
            .iter()
            .any(|m| m.direction == Direction::Received && m.method() == Some(method))
    }

    /// The final non-provisional status received for `cseq_method`, if any.
    pub fn final_status(&self, cseq_method: &str) -> Option<u16> {
        self.messages
            .iter()
            .filter(|m| m.direction == Direction::Received && m.cseq_method() == cseq_method)
            .filter_map(ShortMessage::status)
            .rfind(|&s| s >= 200)
    }

    /// The message flow as text, one message per line (`>` sent, `<` received).
    pub fn flow(&self) -> String {
        self.messages
            .iter()
            .map(|m| {
                let arrow = match m.direction {
                    Direction::Sent => ">",
                    Direction::Received => "<",
                };
                format!("  {arrow} {} ({})", m.first_line, m.cseq)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything a failing assertion should show: exit, counts, flow, errors, output.
    pub fn report(&self) -> String {
        format!(
            "sipp {} (dir {}): exit {:?}{}, successful {}, failed {}\nmessage flow:\n{}\nunexpected messages (tail):\n{}\nstdout (tail):\n{}\nmessage log (tail):\n{}",
            self.name,
            self.dir.path().display(),
            self.exit_code,
            if self.killed {
                " (killed at the harness deadline)"
            } else {
                ""
            },
            self.successful_calls(),
            self.failed_calls(),
            self.flow(),
            tail(&self.errors, 30),
            tail(&self.stdout, 20),
            tail(&self.message_log, 60),
        )
    }

    /// Keeps the run's files after the test (returns the path).
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

fn parse_stats(csv: &str) -> HashMap<String, String> {
    let lines: Vec<&str> = csv.lines().filter(|l| !l.trim().is_empty()).collect();
    let (Some(header), Some(last)) = (lines.first(), lines.get(1..).and_then(<[_]>::last)) else {
        return HashMap::new();
    };
    header
        .split(';')
        .map(str::to_string)
        .zip(last.split(';').map(str::to_string))
        .collect()
}

fn parse_short(text: &str) -> Vec<ShortMessage> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() < 7 {
                return None;
            }
            let direction = match fields[3] {
                "S" => Direction::Sent,
                "R" => Direction::Received,
                _ => return None,
            };
            Some(ShortMessage {
                direction,
                call_id: fields[4].to_string(),
                cseq: fields[5].to_string(),
                first_line: fields[6..].join("\t").trim().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn parses_the_short_trace() {
        let text = "2026-11-21\t00:06:55.607652\t1795219615.607652\tS\t1-12871@127.0.0.1\tCSeq:1 INVITE\tINVITE sip:1000@127.0.0.1:5070 SIP/2.0\n\
                    2026-11-21\t00:06:55.609003\t1795219615.609003\tR\t1-12871@127.0.0.1\tCSeq:1 INVITE\tSIP/2.0 200 OK\n\
                    2026-11-21\t00:06:55.615662\t1795219615.615662\tR\t1-12871@127.0.0.1\tCSeq:2 BYE\tBYE sip:sipp@127.0.0.1:5071 SIP/2.0\n";
        let msgs = parse_short(text);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].method(), Some("INVITE"));
        assert_eq!(msgs[1].status(), Some(200));
        assert_eq!(msgs[1].cseq_method(), "INVITE");
        assert_eq!(msgs[2].method(), Some("BYE"));
    }

    #[test]
    fn parses_the_last_stats_row() {
        let csv = "A;SuccessfulCall(C);FailedCall(C)\n1;0;0\n2;1;0\n";
        let stats = parse_stats(csv);
        assert_eq!(stats.get("SuccessfulCall(C)").unwrap(), "1");
    }
}
