//! Issue 9, hardening: the admin API does what its reference says, against the real binary.
//! Schemathesis (from PyPI; `scripts/install-deps.sh --test` installs it) generates requests
//! from `/v1/openapi.json` and the test fails on any status an operation does not document
//! or any 5xx; bounded by a fixed seed, a few examples per operation, a time budget and one
//! worker, and only inside a loopback-only network namespace (it refuses to run elsewhere,
//! or skips saying why under `PBX_TEST_NO_NETNS=1`): the fuzzer makes up webhook URLs,
//! trunk proxies and SIP targets that pbx would act on. Every operation is fuzzed, the
//! destructive ones included (the server is a throwaway one with its own data directory),
//! except the two whose bodies are binary (`upload_version`, `upload_file`): schemathesis has no serializer for
//! `application/wasm` or audio and reports an error for them; `uploads.rs` covers them.
//! Also: a misspelt field is refused naming it, every documented metric is exported from
//! start-up, and an app is deleted with its numbers, but not while a live call runs it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pbx_tests::Pbx;
use serde_json::json;

use crate::common::{HELLO, assert_sipp_ok, hold_call, pbx_with_hello};

/// Where `scripts/install-deps.sh --test` puts schemathesis's `st` (a venv of its own).
const VENV_ST: &str = ".local/share/pbx/schemathesis/bin/st";

/// The `st` binary: `PBX_SCHEMATHESIS`, else the install script's venv, else `PATH`.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PBX_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(VENV_ST);
        if path.is_file() {
            return Some(path);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("st"))
            .find(|p| p.is_file())
    })
}

/// The network interfaces of this process's network namespace. `/proc/self/net/dev` is
/// read, not `/sys/class/net`, which lists the interfaces of the namespace sysfs was
/// mounted in (`unshare -n` does not remount it). Unreadable: none.
fn network_interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn schemathesis_finds_no_undocumented_status_and_no_server_error() {
    // Generated webhook URLs, trunk proxies and call targets make pbx resolve names, POST
    // and send INVITEs: only where `lo` is the one interface can none of it leave the host.
    let interfaces = network_interfaces();
    if interfaces != ["lo"] {
        if std::env::var_os("PBX_TEST_NO_NETNS").is_some_and(|v| v == "1") {
            eprintln!(
                "SKIPPED schemathesis: PBX_TEST_NO_NETNS=1 and this is not a loopback-only \
                 network namespace (interfaces: {interfaces:?}); fuzzing here could send \
                 requests beyond the host. Run it under `unshare -n` (scripts/test.sh does \
                 when it can)."
            );
            return;
        }
        panic!(
            "refusing to fuzz outside a loopback-only network namespace (interfaces: \
             {interfaces:?}): the fuzzer's webhook URLs and call targets could reach the \
             network. Run inside one, as scripts/test.sh does (`unshare -n bash -c 'ip link \
             set lo up && cargo test ...'`), or set PBX_TEST_NO_NETNS=1 to skip this test."
        );
    }
    let st = schemathesis().expect(
        "schemathesis is not installed: run scripts/install-deps.sh --test \
         (or set PBX_SCHEMATHESIS to its `st`)",
    );
    // An app with a deployed version and a bound number, so the fuzzer meets real
    // resources as well as missing ones.
    let (pbx, _) = pbx_with_hello().await;
    let report = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(&st);
    cmd.arg("run")
        .arg(format!("{}/v1/openapi.json", pbx.http_base()))
        .arg("--url")
        .arg(pbx.http_base())
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", pbx.token()))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "12",
            "--max-time",
            "60",
            "--exclude-operation-id",
            "upload_version",
            "--exclude-operation-id",
            "upload_file",
            "--seed",
            "9",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--report-dir",
        ])
        .arg(report.path())
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(170), cmd.output())
        .await
        .expect("schemathesis ran past its bound")
        .expect("cannot run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{text}\n--- pbx log ---\n{}",
        out.status.code(),
        pbx.log_tail(40)
    );
    // It really ran: operations were tested, not all skipped or errored.
    assert!(
        text.contains("passed") && !text.contains("No test cases"),
        "schemathesis did not test anything:\n{text}"
    );
}

#[tokio::test]
async fn every_documented_metric_is_exported_from_start_up() {
    let pbx = Pbx::start().await.unwrap();
    let (status, text) = pbx
        .api()
        .get_text_unauthenticated("/metrics")
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    // README's list, as the operator reads it (`{a,b}` groups spelt out).
    for name in [
        "pbx_active_calls",
        "pbx_call_attempts_total",
        "pbx_call_outcomes_total",
        "pbx_calls_refused_total",
        "pbx_event_dispatch_seconds_bucket",
        "pbx_app_failures_total",
        "pbx_app_traps_total",
        "pbx_app_deadline_hits_total",
        "pbx_rtp_packets_received_total",
        "pbx_rtp_packets_sent_total",
        "pbx_rtp_packets_lost_total",
        "pbx_rtp_jitter_seconds_bucket",
        "pbx_webhook_deliveries_total",
        "pbx_events_recorded_total",
        "pbx_events_dropped_total",
        "pbx_app_http_requests_total",
        "pbx_draining",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])),
            "{name} is missing from a fresh server's /metrics:\n{text}"
        );
    }
    for zero in [
        "pbx_app_traps_total 0",
        "pbx_app_deadline_hits_total 0",
        "pbx_events_dropped_total 0",
        "pbx_draining 0",
    ] {
        assert!(text.lines().any(|l| l == zero), "no `{zero}`:\n{text}");
    }
}

#[tokio::test]
async fn an_app_goes_with_its_numbers_but_not_while_a_call_runs_it() {
    let (pbx, hello) = pbx_with_hello().await;
    let api = pbx.api();
    let app = &hello.app_id;

    let (status, body) = api
        .post_json("/v1/apps", &json!({ "name": "typo", "descripton": "x" }))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "descripton", "{body}");

    let holding = hold_call(&pbx, HELLO, Duration::from_secs(4))
        .spawn()
        .await
        .unwrap();
    api.wait_live_calls(Duration::from_secs(10), |calls| !calls.is_empty())
        .await
        .unwrap();
    let (status, body) = api.delete(&format!("/v1/apps/{app}")).await.unwrap();
    assert_eq!(status, 409, "DELETE while a call runs it: {body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let run = holding.finish().await.unwrap();
    assert_sipp_ok(&run, 1);
    api.wait_no_live_calls(Duration::from_secs(10))
        .await
        .unwrap();

    let (status, body) = api.delete(&format!("/v1/apps/{app}")).await.unwrap();
    assert_eq!(status, 204, "DELETE after the call ended: {body}");
    let (status, _) = api.app(app).await.unwrap();
    assert_eq!(status, 404);
    let (status, body) = api.get(&format!("/v1/numbers/{HELLO}")).await.unwrap();
    assert_eq!(status, 404, "the number went with the app: {body}");
    let (status, _) = api.delete(&format!("/v1/apps/{app}")).await.unwrap();
    assert_eq!(status, 404);
}
