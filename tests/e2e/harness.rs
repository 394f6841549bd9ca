//! Self-tests of the harness against real peers without pbx: sipp against sipp, baresip
//! against sipp and baresip, raw SIP against sipp, and the `Pbx` lifecycle against a fake
//! server. They prove each piece the pbx tests rely on; run them alone with
//! `cargo test -p pbx-tests --test e2e harness`.

use std::path::Path;
use std::time::{Duration, Instant};

use pbx_tests::sipp::RunningSipp;
use pbx_tests::{
    AnswerMode, Audio, AudioSource, Baresip, BaresipOptions, HarnessError, Pbx, PbxOptions,
    RawTransport, Sipp, Transport, media, paths, scenarios, sip_raw,
};

use crate::common::assert_sipp_ok;

async fn server(sipp: Sipp) -> RunningSipp {
    let server = sipp.timeout(Duration::from_secs(40)).spawn().await.unwrap();
    // sipp binds at startup; give it a moment before the client sends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server
}

async fn uac_against_uas(transport: Transport) {
    let uas = server(Sipp::uas().transport(transport)).await;
    let uac = Sipp::uac(uas.addr(), "1000")
        .transport(transport)
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&uac, 1);
    assert!(uac.received_response(200, "INVITE"), "{}", uac.report());
    assert!(uac.received_response(200, "BYE"), "{}", uac.report());
    let uas = uas.finish().await.unwrap();
    // Over TCP the built-in uas counts its call as failed when the uac closes the connection
    // during the uas's closing pause (FailedTcpClosed); only the client is used against pbx.
    if transport == Transport::Udp {
        assert_sipp_ok(&uas, 1);
    } else {
        assert!(uas.received_request("BYE"), "{}", uas.report());
    }
}

#[tokio::test]
async fn harness_sipp_uac_to_sipp_uas_udp() {
    uac_against_uas(Transport::Udp).await;
}

#[tokio::test]
async fn harness_sipp_uac_to_sipp_uas_tcp() {
    uac_against_uas(Transport::Tcp).await;
}

#[tokio::test]
async fn harness_sipp_uac_pcap_to_echoing_uas() {
    let uas = server(Sipp::uas().rtp_echo()).await;
    let uac = Sipp::uac_pcap(uas.addr(), "1000").run().await.unwrap();
    assert_sipp_ok(&uac, 1);
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

#[tokio::test]
async fn harness_scenario_expect_404() {
    let uas = server(Sipp::custom_server(
        "reject",
        scenarios::server_reject(404, "Not Found"),
    ))
    .await;
    let run = Sipp::custom(
        "expect_404",
        scenarios::expect_final(404),
        uas.addr(),
        "9999",
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&run, 1);
    assert_eq!(run.final_status("INVITE"), Some(404), "{}", run.report());
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

#[tokio::test]
async fn harness_scenario_expect_404_fails_on_200() {
    let uas = server(Sipp::uas()).await;
    let run = Sipp::custom(
        "expect_404",
        scenarios::expect_final(404),
        uas.addr(),
        "1000",
    )
    .timeout(Duration::from_secs(10))
    .run()
    .await
    .unwrap();
    assert!(
        !run.succeeded(1),
        "a 200 must fail the 404 scenario:\n{}",
        run.report()
    );
    let _ = uas.kill().await;
}

async fn cancel_against(server_xml: String) -> pbx_tests::SippRun {
    let uas = server(Sipp::custom_server("cancel_server", server_xml)).await;
    let run = Sipp::custom("cancel", scenarios::cancel(), uas.addr(), "1000")
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
    run
}

#[tokio::test]
async fn harness_scenario_cancel_gets_487() {
    for cancel_200_first in [true, false] {
        let run = cancel_against(scenarios::server_cancel_487(cancel_200_first)).await;
        assert!(run.received_response(487, "INVITE"), "{}", run.report());
        assert!(run.received_response(200, "CANCEL"), "{}", run.report());
    }
}

#[tokio::test]
async fn harness_scenario_cancel_losing_the_race_hangs_up() {
    for cancel_200_first in [true, false] {
        let run = cancel_against(scenarios::server_answer_despite_cancel(cancel_200_first)).await;
        assert!(!run.received_response(487, "INVITE"), "{}", run.report());
        assert!(run.received_response(200, "INVITE"), "{}", run.report());
        assert!(run.received_response(200, "CANCEL"), "{}", run.report());
        assert!(run.received_response(200, "BYE"), "{}", run.report());
    }
}

#[tokio::test]
async fn harness_scenario_waits_for_server_bye() {
    let uas = server(Sipp::custom_server(
        "answer_bye",
        scenarios::server_answer_then_bye(1000),
    ))
    .await;
    let started = Instant::now();
    let run = Sipp::custom(
        "wait_bye",
        scenarios::answer_then_wait_bye(),
        uas.addr(),
        "1000",
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_request("BYE"), "{}", run.report());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "BYE came too early"
    );
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

#[tokio::test]
async fn harness_scenario_wait_ends_on_error_response() {
    let uas = server(Sipp::custom_server(
        "reject",
        scenarios::server_reject(503, "Service Unavailable"),
    ))
    .await;
    let run = Sipp::custom(
        "wait_bye",
        scenarios::answer_then_wait_bye(),
        uas.addr(),
        "1000",
    )
    .run()
    .await
    .unwrap();
    assert_sipp_ok(&run, 1);
    assert_eq!(run.final_status("INVITE"), Some(503), "{}", run.report());
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

/// `expect_final_any` accepts each listed refusal and ACKs it.
#[tokio::test]
async fn harness_scenario_expect_any_refusal() {
    for (status, reason) in [(486, "Busy Here"), (503, "Service Unavailable")] {
        let uas = server(Sipp::custom_server(
            "reject",
            scenarios::server_reject(status, reason),
        ))
        .await;
        let run = Sipp::custom(
            "refused",
            scenarios::expect_final_any(&[486, 503]),
            uas.addr(),
            "1000",
        )
        .run()
        .await
        .unwrap();
        assert_sipp_ok(&run, 1);
        assert_eq!(run.final_status("INVITE"), Some(status), "{}", run.report());
        assert_sipp_ok(&uas.finish().await.unwrap(), 1);
    }
}

/// `hold` keeps the call up for the pause, then hangs up with BYE.
#[tokio::test]
async fn harness_scenario_hold_then_bye() {
    let uas = server(Sipp::uas()).await;
    let started = Instant::now();
    let run = Sipp::custom("hold", scenarios::hold(1500), uas.addr(), "1000")
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_response(200, "BYE"), "{}", run.report());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the call was not held: {:?}",
        started.elapsed()
    );
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

#[tokio::test]
async fn harness_raw_options_udp_and_tcp() {
    for (transport, raw) in [
        (Transport::Udp, RawTransport::Udp),
        (Transport::Tcp, RawTransport::Tcp),
    ] {
        let uas = server(
            Sipp::custom_server("options", scenarios::server_options()).transport(transport),
        )
        .await;
        let resp = sip_raw::options(uas.addr(), raw, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.raw);
        assert!(
            resp.header("Allow").unwrap_or("").contains("INVITE"),
            "{}",
            resp.raw
        );
        assert_sipp_ok(&uas.finish().await.unwrap(), 1);
    }
}

/// baresip calls sipp's echoing UAS with a spoken microphone, sends a digit, hangs up, and its
/// recording (the echo) is speech.
#[tokio::test]
async fn harness_baresip_to_sipp_echo_records_speech() {
    let uas = server(Sipp::uas().rtp_echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let mic = dir.path().join("speech8k.wav");
    media::write_speech(
        &mic,
        "Hello, this is a test of the private branch exchange. One two three four five.",
        8000,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let mut ua = Baresip::start(BaresipOptions {
        name: "bob".into(),
        source: AudioSource::File(mic.clone()),
        ..BaresipOptions::default()
    })
    .await
    .unwrap();
    ua.dial(&format!("sip:echo@{}", uas.addr())).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.pump_events(Duration::from_secs(1)).await.unwrap();
    ua.send_dtmf("5").await.unwrap();
    ua.pump_events(Duration::from_secs(5)).await.unwrap();
    ua.hangup().await.unwrap();
    let closed = ua
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.quit().await.unwrap();
    let recording = ua.last_recording().unwrap();
    let audio = Audio::read(&recording).unwrap();
    let report = audio.speech_report();
    eprintln!("echoed speech: {report}");
    assert!(
        report.is_speech(),
        "echoed speech not recognised ({}): {report}; close: {}",
        recording.display(),
        closed.param
    );
    assert!(
        audio
            .slice(Duration::ZERO, Duration::from_secs(4))
            .rms_dbfs()
            > -40.0,
        "{report}"
    );
    let uas = uas.finish().await.unwrap();
    assert_sipp_ok(&uas, 1);
    // The microphone file itself is speech too: the analysis agrees with the source.
    assert!(Audio::read(&mic).unwrap().speech_report().is_speech());
}

/// A 440 Hz tone echoed back is found by the dominant-frequency helper and is not speech.
#[tokio::test]
async fn harness_baresip_tone_echo_dominant_frequency() {
    let uas = server(Sipp::uas().rtp_echo()).await;
    let mut ua = Baresip::start(BaresipOptions {
        name: "tone".into(),
        source: AudioSource::Sine(440),
        ..BaresipOptions::default()
    })
    .await
    .unwrap();
    ua.dial(&format!("sip:echo@{}", uas.addr())).await.unwrap();
    ua.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.pump_events(Duration::from_secs(4)).await.unwrap();
    ua.hangup().await.unwrap();
    ua.wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    ua.quit().await.unwrap();
    let audio = Audio::read(&ua.last_recording().unwrap()).unwrap();
    let freq = audio.dominant_freq(Duration::from_secs(1), Duration::from_secs(1));
    assert!(
        (418..=462).contains(&freq),
        "dominant frequency {freq} Hz, want ~440"
    );
    let report = audio.speech_report();
    eprintln!("echoed tone: {report}, dominant {freq} Hz");
    assert!(
        !report.is_speech(),
        "a steady tone passed as speech: {report}"
    );
    assert!(report.active_rms_dbfs > -30.0, "{report}");
    let _ = uas.finish().await;
}

/// baresip sees the SIP status of a rejected call in CALL_CLOSED's param.
#[tokio::test]
async fn harness_baresip_sees_rejection_status() {
    let uas = server(Sipp::custom_server(
        "reject",
        scenarios::server_reject(404, "Not Found"),
    ))
    .await;
    let mut ua = Baresip::start(BaresipOptions::default()).await.unwrap();
    ua.dial(&format!("sip:9999@{}", uas.addr())).await.unwrap();
    let closed = ua
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        closed.param.contains("404"),
        "CALL_CLOSED param: {:?}",
        closed.param
    );
    ua.quit().await.unwrap();
    assert_sipp_ok(&uas.finish().await.unwrap(), 1);
}

/// baresip calls baresip over TCP; DTMF sent with `send_dtmf` arrives as CALL_DTMF_START events,
/// and the callee hears the caller's tone.
#[tokio::test]
async fn harness_baresip_pair_dtmf_over_tcp() {
    let mut callee = Baresip::start(BaresipOptions {
        name: "callee".into(),
        answer_mode: AnswerMode::Auto,
        ..BaresipOptions::default()
    })
    .await
    .unwrap();
    let mut caller = Baresip::start(BaresipOptions {
        name: "caller".into(),
        source: AudioSource::Sine(1000),
        ..BaresipOptions::default()
    })
    .await
    .unwrap();
    caller
        .dial(&format!("{};transport=tcp", callee.sip_uri()))
        .await
        .unwrap();
    caller
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await
        .unwrap();
    callee
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await
        .unwrap();
    caller.pump_events(Duration::from_secs(1)).await.unwrap();
    caller.send_dtmf("5#").await.unwrap();
    let mut digits = String::new();
    while digits.len() < 2 {
        let event = callee
            .wait_event("CALL_DTMF_START", Duration::from_secs(5))
            .await
            .unwrap();
        digits.push_str(&event.param);
    }
    assert_eq!(digits, "5#");
    caller.pump_events(Duration::from_secs(2)).await.unwrap();
    caller.hangup().await.unwrap();
    callee
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .await
        .unwrap();
    caller.quit().await.unwrap();
    callee.quit().await.unwrap();
    let heard = Audio::read(&callee.last_recording().unwrap()).unwrap();
    let freq = heard.dominant_freq(Duration::from_millis(500), Duration::from_secs(1));
    assert!(
        (980..=1020).contains(&freq),
        "callee heard {freq} Hz, want ~1000"
    );
}

const FAKE_PBX: &str = r#"#!/usr/bin/env python3
# A stand-in for `pbx serve` used by the harness self-test: /healthz, a token check, a data dir
# that counts starts, SIGTERM handling, and a failure mode.
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
args = sys.argv[1:]
assert args[0] == "serve", args
opts = dict(zip(args[1::2], args[2::2]))
host, port = opts["--http"].rsplit(":", 1)
token, data = opts["--admin-token"], opts["--data"]
if os.environ.get("FAKE_PBX_MODE") == "fail":
    print("pbx: cannot bind " + opts["--sip"] + ": Address already in use", file=sys.stderr)
    sys.exit(1)
os.makedirs(data, exist_ok=True)
with open(os.path.join(data, "starts"), "a") as f:
    f.write("start\n")
class H(BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def authed(self):
        return self.headers.get("Authorization") == "Bearer " + token
    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if not self.authed():
            return self.reply(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        if self.path == "/v1/calls/history":
            n = open(os.path.join(data, "starts")).read().count("start")
            return self.reply(200, {"calls": [{"id": "run%d" % i} for i in range(n)]})
        self.reply(404, {"error": {"code": "not_found", "message": self.path}})
    def do_POST(self):
        if not self.authed():
            return self.reply(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n) or b"null")
        self.reply(201, {"id": "app_fake", "name": body.get("name")})
    def log_message(self, fmt, *a):
        print("fake-pbx http: " + fmt % a, file=sys.stderr, flush=True)
def term(*_):
    print("fake-pbx: SIGTERM, exiting", file=sys.stderr, flush=True)
    os._exit(0)
signal.signal(signal.SIGTERM, term)
srv = HTTPServer((host, int(port)), H)
print("fake-pbx: listening http " + opts["--http"] + " sip " + opts["--sip"], file=sys.stderr, flush=True)
srv.serve_forever()
"#;

fn write_fake_pbx(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-pbx");
    std::fs::write(&path, FAKE_PBX).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Start, API with token, restart on the same ports and data dir, SIGTERM stop, log capture.
#[tokio::test]
async fn harness_pbx_lifecycle_with_fake_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut pbx = Pbx::start_with(PbxOptions {
        binary: Some(write_fake_pbx(dir.path())),
        ..PbxOptions::default()
    })
    .await
    .unwrap();
    let api = pbx.api();
    let (status, body) = api.create_app("hello").await.unwrap();
    assert_eq!(
        (status, body["name"].as_str()),
        (201, Some("hello")),
        "{body}"
    );
    let (status, _) = api.with_token("wrong").apps().await.unwrap();
    assert_eq!(status, 401);
    let (sip, http) = (pbx.sip_addr(), pbx.http_base());
    pbx.restart().await.unwrap();
    assert_eq!((pbx.sip_addr(), pbx.http_base()), (sip, http));
    let (status, body) = pbx.api().history().await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body["calls"].as_array().map(Vec::len),
        Some(2),
        "the data dir must survive the restart: {body}"
    );
    let (exit, killed) = pbx.stop().await.unwrap();
    assert!(exit.success() && !killed, "exit {exit}, SIGKILL {killed}");
    let log = pbx.log_text();
    assert_eq!(log.matches("fake-pbx: listening").count(), 2, "{log}");
    assert!(log.contains("SIGTERM, exiting"), "{log}");
    assert!(
        log.contains("--admin-token"),
        "the command line is logged: {log}"
    );
}

/// A server that dies at startup is reported with its log, after retrying with fresh ports.
#[tokio::test]
async fn harness_pbx_startup_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = Pbx::start_with(PbxOptions {
        binary: Some(write_fake_pbx(dir.path())),
        env: vec![("FAKE_PBX_MODE".into(), "fail".into())],
        ..PbxOptions::default()
    })
    .await
    .unwrap_err();
    match err {
        HarnessError::Exited { log_tail, .. } => {
            assert!(log_tail.contains("Address already in use"), "{log_tail}");
        }
        other => panic!("want Exited, got {other}"),
    }
}

/// Missing components and binaries name the fix.
#[tokio::test]
async fn harness_missing_files_are_explained() {
    let err = paths::plugin_path("no-such-app").unwrap_err().to_string();
    assert!(err.contains("scripts/build-plugins.sh"), "{err}");
    let err = Pbx::start_with(PbxOptions {
        binary: Some("/nonexistent/pbx".into()),
        ..PbxOptions::default()
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("/nonexistent/pbx"), "{err}");
}
