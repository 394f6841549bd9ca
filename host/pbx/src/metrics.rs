//! Prometheus metrics: the names the server records and the text `/metrics` serves.
//!
//! Invariants: every metric name lives here as a constant with its description, so the
//! exposition and the docs list the same set; recording a metric never blocks or fails (the
//! `metrics` facade is a no-op until [`init`] installs the recorder); gauges that mirror live
//! state (active calls, registrations) are set at render time from the state itself, so they
//! cannot drift.

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
/// INVITEs refused before an app saw them, by `reason` (`draining`, `quota`, `no_route`, ...).
pub const CALLS_REFUSED: &str = "pbx_calls_refused_total";
/// Time the app took to handle one event (its export call), in seconds.
pub const EVENT_DISPATCH_SECONDS: &str = "pbx_event_dispatch_seconds";
/// App failures, by `kind` (`trap`, `deadline`, `memory`, ...).
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
}
