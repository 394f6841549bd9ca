//! Helpers shared by the e2e tests: a pbx with apps deployed, callers, and assertions whose
//! failure messages carry the peer's report (the pbx and baresip print their own logs when a
//! test panics).

use std::time::Duration;

use pbx_tests::{
    AnswerMode, AudioSource, Baresip, BaresipOptions, DeployedApp, Pbx, PbxOptions, Sipp, SippRun,
    paths::plugin_path, scenarios, str_field,
};
use serde_json::Value;

/// The number the tests bind the `hello` app to.
pub(crate) const HELLO: &str = "1000";

/// How long a call may take to be established.
pub(crate) const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the call history may lag behind the end of a call.
pub(crate) const HISTORY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a pbx and deploys each `(app, number)`; the app component comes from
/// `plugins/target/wasm32-wasip2/release/<app>.wasm`.
pub(crate) async fn pbx_with(apps: &[(&str, &str)]) -> (Pbx, Vec<DeployedApp>) {
    pbx_with_args(&[], apps).await
}

/// [`pbx_with`] for a server started with extra command-line arguments (e.g.
/// `--drain-timeout 20`).
pub(crate) async fn pbx_with_args(args: &[&str], apps: &[(&str, &str)]) -> (Pbx, Vec<DeployedApp>) {
    let options = PbxOptions {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..PbxOptions::default()
    };
    let pbx = Pbx::start_with(options).await.unwrap();
    let mut deployed = Vec::new();
    for (app, number) in apps {
        let wasm = plugin_path(app).unwrap();
        deployed.push(pbx.deploy_app(app, &wasm, number).await.unwrap());
    }
    (pbx, deployed)
}

/// A pbx with `hello` bound to [`HELLO`].
pub(crate) async fn pbx_with_hello() -> (Pbx, DeployedApp) {
    let (pbx, mut apps) = pbx_with(&[("hello", HELLO)]).await;
    let hello = apps.remove(0);
    (pbx, hello)
}

/// A baresip caller whose microphone is silence (so its recording holds only the pbx's audio).
pub(crate) async fn caller() -> Baresip {
    Baresip::start(BaresipOptions {
        name: "caller".into(),
        source: AudioSource::Silence,
        answer_mode: AnswerMode::Manual,
        ..BaresipOptions::default()
    })
    .await
    .unwrap()
}

/// Panics with the run's report unless sipp exited 0 with `calls` successful calls.
pub(crate) fn assert_sipp_ok(run: &SippRun, calls: u64) {
    assert!(
        run.succeeded(calls),
        "sipp did not complete {calls} call(s) cleanly:\n{}",
        run.report()
    );
}

/// Waits until the history holds a finished call to `number` (matching `sip_call_id` when
/// given and present) and returns it.
pub(crate) async fn finished_call(pbx: &Pbx, number: &str, sip_call_id: Option<&str>) -> Value {
    let api = pbx.api();
    let number = number.to_string();
    let wanted = sip_call_id.map(str::to_string);
    api.wait_history(HISTORY_TIMEOUT, |c| {
        let id_ok = match &wanted {
            Some(id) if c.get("sip_call_id").is_some_and(|v| !v.is_null()) => {
                str_field(c, "sip_call_id") == id
            }
            _ => true,
        };
        id_ok && str_field(c, "to") == number && str_field(c, "status") == "hangup"
    })
    .await
    .unwrap()
}

/// Panics unless the record ended with `hangup_by` and `hangup_reason`.
pub(crate) fn assert_ended(record: &Value, hangup_by: &str, hangup_reason: &str) {
    assert_eq!(
        str_field(record, "status"),
        "hangup",
        "call record: {record}"
    );
    assert_eq!(
        str_field(record, "hangup_by"),
        hangup_by,
        "call record: {record}"
    );
    assert_eq!(
        str_field(record, "hangup_reason"),
        hangup_reason,
        "call record: {record}"
    );
}

/// The Call-ID of the first message of a sipp run.
pub(crate) fn sipp_call_id(run: &SippRun) -> Option<String> {
    run.messages.first().map(|m| m.call_id.clone())
}

/// A sipp call to `number` that is answered, held for `hold` and then hung up by sipp (BYE).
pub(crate) fn hold_call(pbx: &Pbx, number: &str, hold: Duration) -> Sipp {
    let ms = u32::try_from(hold.as_millis()).unwrap_or(u32::MAX);
    Sipp::custom("hold", scenarios::hold(ms), pbx.sip_addr(), number)
        .timeout(hold + Duration::from_secs(30))
}

/// The `type` of an event.
pub(crate) fn event_type(event: &Value) -> &str {
    str_field(event, "type")
}

/// The numeric `id` of an event (0 when absent).
pub(crate) fn event_id(event: &Value) -> i64 {
    event.get("id").and_then(Value::as_i64).unwrap_or(0)
}

/// Panics unless `types` contains `expected` as a subsequence (in this order).
pub(crate) fn assert_in_order(types: &[&str], expected: &[&str], context: &str) {
    let mut rest = types.iter();
    for want in expected {
        assert!(
            rest.any(|t| t == want),
            "{want} missing or out of order in {types:?} (expected the order {expected:?}); {context}"
        );
    }
}
