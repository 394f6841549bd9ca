//! Prometheus metrics: the names the server records and the text `/metrics` serves.
//!
//! Invariants: every metric name lives here as a constant with its description, so the
//! exposition and the docs list the same set; recording a metric never blocks or fails (the
//! `metrics` facade is a no-op until [`init`] installs the recorder); gauges that mirror live
//! state (active calls, registrations) are set at render time from the state itself, so they
//! cannot drift.
//! Every metric is exported from start-up, at zero ([`init`] registers each one), and
//! README's list names exactly the constants here (a test compares them).

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Calls live now (every leg of every session).
pub const ACTIVE_CALLS: &str = "pbx_active_calls";
/// Calls attempted, by `direction` (`inbound`, `outbound`).
pub const CALL_ATTEMPTS: &str = "pbx_call_attempts_total";
/// Calls ended, by `direction`, `status` (completed, busy, failed, ...) and `reason`
/// (the hangup reason).
pub const CALL_OUTCOMES: &str = "pbx_call_outcomes_total";
/// INVITEs refused before an app saw them, by `reason` (`draining`, `quota`, `no_route`,
/// `overload` (shed by the SIP endpoint's call cap), `banned`, ...).
pub const CALLS_REFUSED: &str = "pbx_calls_refused_total";
/// Time the app took to handle one event (its export call), in seconds.
pub const EVENT_DISPATCH_SECONDS: &str = "pbx_event_dispatch_seconds";
/// App failures, by `kind` (`trap`, `deadline`, `out_of_memory`).
pub const APP_FAILURES: &str = "pbx_app_failures_total";
/// Apps stopped because one event ran past its CPU deadline.
pub const APP_DEADLINE_HITS: &str = "pbx_app_deadline_hits_total";
/// App traps (panics, unreachable, out-of-bounds...).
pub const APP_TRAPS: &str = "pbx_app_traps_total";
/// RTP packets received on ended legs.
pub const RTP_PACKETS_RECEIVED: &str = "pbx_rtp_packets_received_total";
/// RTP packets sent on ended legs.
pub const RTP_PACKETS_SENT: &str = "pbx_rtp_packets_sent_total";
/// RTP packets lost (sequence gaps) on ended legs.
pub const RTP_PACKETS_LOST: &str = "pbx_rtp_packets_lost_total";
/// Interarrival jitter (RFC 3550) of each ended leg, in seconds.
pub const RTP_JITTER_SECONDS: &str = "pbx_rtp_jitter_seconds";
/// Webhook delivery attempts, by `outcome` (`delivered`, `retry`, `failed`).
pub const WEBHOOK_DELIVERIES: &str = "pbx_webhook_deliveries_total";
/// Platform events recorded.
pub const EVENTS_RECORDED: &str = "pbx_events_recorded_total";
/// Platform events dropped because the recorder's queue was full.
pub const EVENTS_DROPPED: &str = "pbx_events_dropped_total";
/// HTTP requests apps made through the `http` capability, by `outcome`.
pub const APP_HTTP_REQUESTS: &str = "pbx_app_http_requests_total";
/// 1 while the server drains (refuses new calls), else 0.
pub const DRAINING: &str = "pbx_draining";
/// Failed SIP digest authentications, by `reason` (`bad_credentials`, `replay`).
pub const SIP_AUTH_FAILURES: &str = "pbx_sip_auth_failures_total";
/// Sources banned for failed SIP authentications.
pub const SIP_BANS: &str = "pbx_sip_bans_total";
/// Sources banned now.
pub const SIP_ACTIVE_BANS: &str = "pbx_sip_active_bans";
/// SIP TCP connections refused or closed by the limits, by `reason` (`total`, `per_source`,
/// `idle`).
pub const SIP_TCP_REFUSED: &str = "pbx_sip_tcp_refused_total";

/// Answered calls ended with reason `timeout`, by `cause` (`rtp`: no media for the RTP
/// inactivity timeout; `max_length`: the maximum call length).
pub const CALL_TIMEOUTS: &str = "pbx_call_timeouts_total";
/// New calls refused because the app instance pool was full (503 with Retry-After).
pub const APP_POOL_EXHAUSTED: &str = "pbx_app_pool_exhausted_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (later calls reuse it) and describes every metric.
/// Returns false when another recorder was installed first (metrics then go there).
pub fn init() -> bool {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            register_at_zero();
            Some(handle)
        })
        .is_some()
}

/// The Prometheus text exposition of everything recorded so far; `None` before [`init`].
pub fn render() -> Option<String> {
    HANDLE.get()?.as_ref().map(PrometheusHandle::render)
}

fn describe() {
    describe_gauge!(ACTIVE_CALLS, "Calls (legs) live now.");
    describe_counter!(CALL_ATTEMPTS, "Calls attempted, by direction.");
    describe_counter!(
        CALL_OUTCOMES,
        "Calls ended, by direction, status and reason."
    );
    describe_counter!(
        CALLS_REFUSED,
        "INVITEs refused before an app saw them, by reason."
    );
    describe_histogram!(
        EVENT_DISPATCH_SECONDS,
        Unit::Seconds,
        "Time an app took to handle one event."
    );
    describe_counter!(APP_FAILURES, "App failures that ended a session, by kind.");
    describe_counter!(APP_DEADLINE_HITS, "Apps stopped at their CPU deadline.");
    describe_counter!(APP_TRAPS, "App traps.");
    describe_counter!(RTP_PACKETS_RECEIVED, "RTP packets received (ended legs).");
    describe_counter!(RTP_PACKETS_SENT, "RTP packets sent (ended legs).");
    describe_counter!(RTP_PACKETS_LOST, "RTP packets lost (ended legs).");
    describe_histogram!(
        RTP_JITTER_SECONDS,
        Unit::Seconds,
        "Interarrival jitter of each ended leg."
    );
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by outcome.");
    describe_counter!(EVENTS_RECORDED, "Platform events recorded.");
    describe_counter!(EVENTS_DROPPED, "Platform events dropped (queue full).");
    describe_counter!(APP_HTTP_REQUESTS, "App HTTP requests, by outcome.");
    describe_gauge!(DRAINING, "1 while the server drains.");
    describe_counter!(
        CALL_TIMEOUTS,
        "Answered calls ended with reason timeout, by cause (rtp, max_length)."
    );
    describe_counter!(
        APP_POOL_EXHAUSTED,
        "New calls refused with 503 because the app instance pool was full."
    );
    describe_counter!(SIP_AUTH_FAILURES, "Failed SIP authentications, by reason.");
    describe_counter!(SIP_BANS, "Sources banned for failed SIP authentications.");
    describe_gauge!(SIP_ACTIVE_BANS, "Sources banned now.");
    describe_counter!(
        SIP_TCP_REFUSED,
        "SIP TCP connections refused or closed by the limits, by reason."
    );
}

/// Exports every metric from start-up, at zero, so dashboards show 0 rather than no data and
/// `increase()` sees the first event: counters and gauges without labels as one series,
/// labelled ones with each value their label can take where the values are few and fixed,
/// else one label-less series; histograms with no observations.
fn register_at_zero() {
    for name in [
        APP_DEADLINE_HITS,
        APP_TRAPS,
        RTP_PACKETS_RECEIVED,
        RTP_PACKETS_SENT,
        RTP_PACKETS_LOST,
        EVENTS_RECORDED,
        EVENTS_DROPPED,
        CALL_OUTCOMES,
        CALLS_REFUSED,
        APP_HTTP_REQUESTS,
        SIP_AUTH_FAILURES,
        SIP_BANS,
        SIP_TCP_REFUSED,
        CALL_TIMEOUTS,
        APP_POOL_EXHAUSTED,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for direction in ["inbound", "outbound"] {
        metrics::counter!(CALL_ATTEMPTS, "direction" => direction).absolute(0);
    }
    for kind in ["trap", "deadline", "out_of_memory"] {
        metrics::counter!(APP_FAILURES, "kind" => kind).absolute(0);
    }
    for outcome in ["delivered", "retry", "failed"] {
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).absolute(0);
    }
    for name in [ACTIVE_CALLS, DRAINING, SIP_ACTIVE_BANS] {
        metrics::gauge!(name).set(0.0);
    }
    for name in [EVENT_DISPATCH_SECONDS, RTP_JITTER_SECONDS] {
        drop(metrics::histogram!(name));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        assert!(init());
        metrics::counter!(CALL_ATTEMPTS, "direction" => "inbound").increment(2);
        metrics::histogram!(EVENT_DISPATCH_SECONDS).record(0.0003);
        let text = render().unwrap();
        assert!(
            text.contains("pbx_call_attempts_total{direction=\"inbound\"} 2"),
            "{text}"
        );
        assert!(text.contains("pbx_event_dispatch_seconds_bucket"), "{text}");
        assert!(init(), "a second init reuses the recorder");
    }

    /// The metric names this file defines (`pub const X: &str = "pbx_..."`).
    fn defined() -> std::collections::BTreeSet<String> {
        include_str!("metrics.rs")
            .lines()
            .filter(|l| l.starts_with("pub const ") && l.contains(": &str = \"pbx_"))
            .filter_map(|l| l.split('"').nth(1))
            .map(str::to_owned)
            .collect()
    }

    /// The metric names README's metrics paragraph lists, `{a,b}` groups expanded.
    fn in_readme() -> std::collections::BTreeSet<String> {
        let readme = include_str!("../../../README.md");
        let start = readme.find("`GET /metrics`").unwrap();
        let paragraph = readme[start..].split("\n- ").next().unwrap();
        let mut names = std::collections::BTreeSet::new();
        for quoted in paragraph.split('`').skip(1).step_by(2) {
            let name = quoted.split('{').next().unwrap_or_default();
            let Some(rest) = quoted.strip_prefix(name) else {
                continue;
            };
            if !name.starts_with("pbx_") {
                continue;
            }
            // `pbx_rtp_packets_{received,sent,lost}_total` names three metrics.
            match rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
                Some((group, tail)) if !tail.is_empty() => {
                    for part in group.split(',') {
                        names.insert(format!("{name}{part}{tail}"));
                    }
                }
                _ => {
                    names.insert(name.to_owned());
                }
            }
        }
        names
    }

    #[test]
    fn every_metric_is_documented_and_exported_from_start_up() {
        assert!(init());
        let text = render().unwrap();
        let defined = defined();
        assert!(defined.len() >= 17, "{defined:?}");
        assert_eq!(
            in_readme(),
            defined,
            "README's metrics paragraph and metrics.rs name different metrics"
        );
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split([' ', '{']).next())
            .collect();
        for name in &defined {
            let present = [
                name.clone(),
                format!("{name}_bucket"),
                format!("{name}_count"),
            ]
            .iter()
            .any(|n| exported.contains(n.as_str()));
            assert!(present, "{name} is not exported at start-up:\n{text}");
        }
        for name in [APP_TRAPS, APP_DEADLINE_HITS, EVENTS_DROPPED] {
            assert!(text.contains(&format!("\n{name} 0\n")), "{name}:\n{text}");
        }
        assert!(text.contains(&format!("\n{DRAINING} 0\n")), "{text}");
    }
}
