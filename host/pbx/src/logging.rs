//! Logging setup: `tracing` to stderr, human-readable or JSON, filtered by `RUST_LOG`.
//! Colours only on a terminal: a log file or the journal gets plain `key=value` fields, so
//! log scanners (fail2ban on `SIP authentication failed source=...`) can match them.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; the default level is `info` for pbx and `warn` elsewhere.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("warn,pbx=info,pbx_sip=info,pbx_media=info,pbx_plugin=info,pbx_api=info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests) is not an error worth reporting.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
