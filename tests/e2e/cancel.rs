//! CANCEL before answer: 200 for the CANCEL, 487 for the INVITE, and the history says the
//! caller cancelled; and a CANCEL racing an answer still ends the call cleanly.

use std::time::Duration;

use pbx_tests::{Sipp, scenarios, str_field};

use crate::common::{
    HELLO, assert_ended, assert_sipp_ok, finished_call, pbx_with, pbx_with_hello, sipp_call_id,
};

/// The number the never-answering fixture is bound to.
const RINGER: &str = "1005";

#[tokio::test]
async fn cancel_before_answer_is_487_and_remote_cancel() {
    // `ringer` never answers, so the CANCEL always arrives while the call rings.
    let (pbx, _) = pbx_with(&[("ringer", RINGER)]).await;
    let run = Sipp::custom("cancel", scenarios::cancel(), pbx.sip_addr(), RINGER)
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_response(487, "INVITE"), "{}", run.report());
    assert!(run.received_response(200, "CANCEL"), "{}", run.report());
    let record = finished_call(&pbx, RINGER, sipp_call_id(&run).as_deref()).await;
    assert_ended(&record, "remote", "cancel");
    assert_eq!(str_field(&record, "status"), "hangup", "{record}");
    assert!(
        !record["tm_ringing"].is_null() && record["tm_progressing"].is_null(),
        "a cancelled call rang and was never answered: {record}"
    );
    // The app heard how its call ended.
    pbx.wait_for_log(
        "ringer finished: HangupReason::Cancel by HangupBy::Remote",
        Duration::from_secs(5),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn cancel_racing_an_answer_ends_cleanly() {
    // hello answers at once, so the CANCEL may arrive after the 200: then the caller hangs up
    // with BYE instead. Either way the call must end cleanly and be recorded as the caller's.
    let (pbx, _) = pbx_with_hello().await;
    let run = Sipp::custom("cancel", scenarios::cancel(), pbx.sip_addr(), HELLO)
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    let record = finished_call(&pbx, HELLO, sipp_call_id(&run).as_deref()).await;
    if run.received_response(487, "INVITE") {
        assert_ended(&record, "remote", "cancel");
    } else {
        assert!(run.received_response(200, "INVITE"), "{}", run.report());
        assert_ended(&record, "remote", "normal");
    }
}
