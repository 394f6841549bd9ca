//! Server configuration: command line, then environment, then a TOML file, then defaults.
//!
//! Every setting has one name in all three places (`--sip`, `PBX_SIP`, `sip = "..."`), so the
//! README can describe it once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// `pbx serve` flags; each can also come from the environment or the config file.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// SIP listen address, for UDP and TCP [default: 127.0.0.1:5060].
    #[arg(long, env = "PBX_SIP")]
    pub sip: Option<SocketAddr>,
    /// Admin HTTP API listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "PBX_HTTP")]
    pub http: Option<SocketAddr>,
    /// Data directory: SQLite database, components, uploaded files [default: ./pbx-data].
    #[arg(long, env = "PBX_DATA")]
    pub data: Option<PathBuf>,
    /// Bearer token for the admin API. When unset, one is generated on first start and kept
    /// in DATA/admin-token.
    #[arg(long, env = "PBX_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Address put in SDP and Contact when the SIP address is a wildcard (0.0.0.0 / ::).
    #[arg(long, env = "PBX_PUBLIC_IP")]
    pub public_ip: Option<std::net::IpAddr>,
    /// A TOML file with any of these settings (command line and environment win).
    #[arg(long, env = "PBX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Install the example apps from this folder of built components (hello on 1000, ivr on
    /// 2000) unless the data directory already has apps of those names at the same version.
    #[arg(long, env = "PBX_EXAMPLE_APPS")]
    pub example_apps: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "PBX_LOG_JSON")]
    pub log_json: bool,
    /// Digest algorithms offered to registering phones, in order: `md5`, `sha256`, or both
    /// (`sha256,md5`). Responses with either are verified whichever is offered. The default
    /// is `md5`, because common phones (baresip 1.0 among them) refuse a challenge list that
    /// contains SHA-256.
    #[arg(long, env = "PBX_SIP_DIGEST", value_delimiter = ',')]
    pub sip_digest: Vec<String>,
    /// Seconds live calls may go on after SIGTERM/Ctrl-C while new calls are refused (503);
    /// then the rest are hung up. A second signal stops at once [default: 30].
    #[arg(long, env = "PBX_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// Base delay in milliseconds between webhook delivery attempts; it doubles each retry
    /// [default: 1000].
    #[arg(long, env = "PBX_WEBHOOK_RETRY_MS")]
    pub webhook_retry_ms: Option<u64>,
    /// Networks (CIDR, comma-separated: `10.0.0.0/8,fd00::/8`) that webhooks and apps' HTTP
    /// requests may reach although they are loopback, private, link-local or reserved;
    /// by default none.
    #[arg(long, env = "PBX_ALLOW_PRIVATE_NETWORKS", value_delimiter = ',')]
    pub allow_private_networks: Vec<String>,
    /// Failed SIP authentications from one source (an IPv4 address or an IPv6 /64) within 5
    /// minutes before it is banned; half as many are answered at once, later ones are
    /// delayed; 0 disables [default: 50].
    #[arg(long, env = "PBX_SIP_AUTH_MAX_FAILURES")]
    pub sip_auth_max_failures: Option<u32>,
    /// Seconds a ban for failed SIP authentications lasts [default: 900].
    #[arg(long, env = "PBX_SIP_BAN_SECS")]
    pub sip_ban_secs: Option<u64>,
    /// Most SIP TCP connections open at once [default: 2048].
    #[arg(long, env = "PBX_SIP_TCP_MAX_CONNECTIONS")]
    pub sip_tcp_max_connections: Option<usize>,
    /// Most SIP TCP connections from one source (an IPv4 address or an IPv6 /64)
    /// [default: 32].
    #[arg(long, env = "PBX_SIP_TCP_MAX_PER_SOURCE")]
    pub sip_tcp_max_per_source: Option<usize>,
    /// Seconds a SIP TCP connection may carry no message before it is closed, unless a call
    /// or a live registration uses it [default: 120].
    #[arg(long, env = "PBX_SIP_TCP_IDLE_SECS")]
    pub sip_tcp_idle_secs: Option<u64>,
    /// Most calls (inbound and outbound) at once; new INVITEs beyond it get 503 with
    /// Retry-After, in-dialog requests are always served [default: 20000].
    #[arg(long, env = "PBX_SIP_MAX_CALLS")]
    pub sip_max_calls: Option<usize>,
    /// Seconds an answered call may receive no RTP (unless held) before it ends with reason
    /// `timeout`; 0 disables [default: 60].
    #[arg(long, env = "PBX_RTP_TIMEOUT")]
    pub rtp_timeout: Option<u64>,
    /// Seconds an answered call may last before it ends with reason `timeout`; 0 (the
    /// default) means no limit.
    #[arg(long, env = "PBX_MAX_CALL_SECS")]
    pub max_call_secs: Option<u64>,
    /// Most app instances (call sessions) alive at once; sizes the sandbox pool (address
    /// space is reserved per slot, memory is used only by live instances). Calls beyond it
    /// are refused with 503 and Retry-After [default: 10000].
    #[arg(long, env = "PBX_MAX_APP_INSTANCES")]
    pub max_app_instances: Option<u32>,
    /// UDP ports for RTP, `FIRST-LAST` (even ports are used); calls beyond them get 503
    /// [default: the kernel's ephemeral ports].
    #[arg(long, env = "PBX_RTP_PORTS")]
    pub rtp_ports: Option<crate::call::rtp_ports::RtpPortRange>,
}

/// The config file's shape: the same settings as the flags.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sip: Option<SocketAddr>,
    http: Option<SocketAddr>,
    data: Option<PathBuf>,
    admin_token: Option<String>,
    public_ip: Option<std::net::IpAddr>,
    example_apps: Option<PathBuf>,
    log_json: Option<bool>,
    sip_digest: Option<Vec<String>>,
    drain_timeout: Option<u64>,
    webhook_retry_ms: Option<u64>,
    allow_private_networks: Option<Vec<String>>,
    sip_auth_max_failures: Option<u32>,
    sip_ban_secs: Option<u64>,
    sip_tcp_max_connections: Option<usize>,
    sip_tcp_max_per_source: Option<usize>,
    sip_tcp_idle_secs: Option<u64>,
    sip_max_calls: Option<usize>,
    rtp_timeout: Option<u64>,
    max_call_secs: Option<u64>,
    max_app_instances: Option<u32>,
    rtp_ports: Option<String>,
}

/// The resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    pub admin_token: Option<String>,
    pub public_ip: Option<std::net::IpAddr>,
    pub example_apps: Option<PathBuf>,
    pub log_json: bool,
    /// The digest algorithms the registrar offers, in order.
    pub sip_digest: Vec<pbx_sip::digest::Algorithm>,
    /// How long live calls may go on after the first stop signal.
    pub drain_timeout: std::time::Duration,
    /// Base delay between webhook delivery attempts.
    pub webhook_retry: std::time::Duration,
    /// The outbound address policy of webhooks and apps' HTTP requests.
    pub net_policy: pbx_api::net_policy::NetPolicy,
    /// How failed SIP authentications are throttled and banned.
    pub sip_guard: crate::auth_guard::GuardConfig,
    /// SIP TCP connection limits.
    pub sip_tcp: crate::sip_shell::TcpLimits,
    /// Most calls at once before new INVITEs are shed.
    pub sip_max_calls: usize,
    /// RTP inactivity timeout and maximum call length of answered legs.
    pub call_limits: crate::call::CallLimits,
    /// Size of the app instance pool.
    pub max_app_instances: u32,
    /// The UDP ports RTP binds (`None`: ephemeral ports).
    pub rtp_ports: Option<crate::call::rtp_ports::RtpPortRange>,
}

/// A number of seconds where 0 means "never".
fn seconds(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

impl Config {
    /// Merges flags and environment (already combined by clap) over the config file and defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let default_sip: SocketAddr = ([127, 0, 0, 1], 5060).into();
        let default_http: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let config = Config {
            sip: args.sip.or(file.sip).unwrap_or(default_sip),
            http: args.http.or(file.http).unwrap_or(default_http),
            data: args
                .data
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("pbx-data")),
            admin_token: args.admin_token.or(file.admin_token),
            public_ip: args.public_ip.or(file.public_ip),
            example_apps: args.example_apps.or(file.example_apps),
            log_json: args.log_json || file.log_json.unwrap_or(false),
            sip_digest: parse_digest(if args.sip_digest.is_empty() {
                file.sip_digest.unwrap_or_default()
            } else {
                args.sip_digest
            })?,
            drain_timeout: std::time::Duration::from_secs(
                args.drain_timeout.or(file.drain_timeout).unwrap_or(30),
            ),
            net_policy: parse_networks(if args.allow_private_networks.is_empty() {
                file.allow_private_networks.unwrap_or_default()
            } else {
                args.allow_private_networks
            })?,
            webhook_retry: std::time::Duration::from_millis(
                args.webhook_retry_ms
                    .or(file.webhook_retry_ms)
                    .unwrap_or(1000)
                    .max(1),
            ),
            sip_guard: crate::auth_guard::GuardConfig {
                max_failures: args
                    .sip_auth_max_failures
                    .or(file.sip_auth_max_failures)
                    .unwrap_or(50),
                window: std::time::Duration::from_secs(300),
                ban: std::time::Duration::from_secs(
                    args.sip_ban_secs.or(file.sip_ban_secs).unwrap_or(900),
                ),
            },
            sip_tcp: crate::sip_shell::TcpLimits {
                max_connections: args
                    .sip_tcp_max_connections
                    .or(file.sip_tcp_max_connections)
                    .unwrap_or(2048)
                    .max(1),
                max_per_source: args
                    .sip_tcp_max_per_source
                    .or(file.sip_tcp_max_per_source)
                    .unwrap_or(32)
                    .max(1),
                idle: std::time::Duration::from_secs(
                    args.sip_tcp_idle_secs
                        .or(file.sip_tcp_idle_secs)
                        .unwrap_or(120)
                        .max(1),
                ),
            },
            sip_max_calls: args
                .sip_max_calls
                .or(file.sip_max_calls)
                .unwrap_or(20_000)
                .max(1),
            call_limits: crate::call::CallLimits {
                rtp_timeout: seconds(args.rtp_timeout.or(file.rtp_timeout).unwrap_or(60)),
                max_call: seconds(args.max_call_secs.or(file.max_call_secs).unwrap_or(0)),
            },
            max_app_instances: args
                .max_app_instances
                .or(file.max_app_instances)
                .unwrap_or(pbx_plugin::RuntimeConfig::default().max_instances)
                .max(1),
            rtp_ports: match (args.rtp_ports, file.rtp_ports) {
                (Some(range), _) => Some(range),
                (None, Some(text)) => Some(
                    text.parse()
                        .map_err(|e| anyhow::anyhow!("rtp_ports in the config file: {e}"))?,
                ),
                (None, None) => None,
            },
        };
        if let Some(token) = &config.admin_token
            && token.len() < 8
        {
            bail!("the admin token must be at least 8 characters");
        }
        Ok(config)
    }
}

/// The outbound address policy allowing `networks` (CIDR strings; empty ones skipped).
fn parse_networks(networks: Vec<String>) -> anyhow::Result<pbx_api::net_policy::NetPolicy> {
    let allowed = networks
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().context("--allow-private-networks"))
        .collect::<anyhow::Result<_>>()?;
    Ok(pbx_api::net_policy::NetPolicy::new(allowed))
}

/// The offered digest algorithms; none given means MD5 only.
fn parse_digest(names: Vec<String>) -> anyhow::Result<Vec<pbx_sip::digest::Algorithm>> {
    use pbx_sip::digest::Algorithm;
    let mut out = Vec::new();
    for name in names {
        let alg = match name.trim().to_ascii_lowercase().as_str() {
            "md5" => Algorithm::Md5,
            "sha256" | "sha-256" => Algorithm::Sha256,
            other => bail!("unknown digest algorithm `{other}`: use md5 and/or sha256"),
        };
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        out.push(Algorithm::Md5);
    }
    Ok(out)
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pbx.toml");
        std::fs::write(
            &path,
            "sip = \"127.0.0.1:5070\"\nhttp = \"127.0.0.1:9090\"\ndata = \"/tmp/x\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            http: Some("127.0.0.1:7070".parse().unwrap()),
            config: Some(path),
            ..Default::default()
        };
        let config = Config::resolve(args).unwrap();
        assert_eq!(config.sip, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(config.http, "127.0.0.1:7070".parse().unwrap());
        assert_eq!(config.data, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pbx.toml");
        std::fs::write(&path, "sipp = \"127.0.0.1:5070\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        let err = Config::resolve(args).unwrap_err();
        assert!(format!("{err:#}").contains("sipp"), "{err:#}");
    }

    #[test]
    fn private_networks_come_from_flags_or_file_and_must_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pbx.toml");
        std::fs::write(&path, "allow_private_networks = [\"10.0.0.0/8\"]\n").unwrap();
        let from_file = Config::resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert!(from_file.net_policy.permits(ip("10.1.2.3")));
        assert!(!from_file.net_policy.permits(ip("127.0.0.1")));
        let from_flag = Config::resolve(ServeArgs {
            config: Some(path),
            allow_private_networks: vec!["127.0.0.0/8".into(), "::1".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(from_flag.net_policy.permits(ip("127.0.0.1")));
        assert!(!from_flag.net_policy.permits(ip("10.1.2.3")));
        assert!(
            !Config::resolve(ServeArgs::default())
                .unwrap()
                .net_policy
                .permits(ip("::1"))
        );
        let err = Config::resolve(ServeArgs {
            allow_private_networks: vec!["10.0.0.0/33".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("10.0.0.0/33"), "{err:#}");
    }
}
