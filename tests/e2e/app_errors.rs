//! Issue test 10: an app that traps, spins or eats memory ends only its own call (`app-error`), while a
//! parallel call to hello succeeds and the server stays healthy.

use pbx_tests::{Pbx, Sipp, SippRun, scenarios, str_field};

use crate::common::{HELLO, assert_sipp_ok, finished_call, pbx_with, sipp_call_id};

async fn faulty_call(pbx: &Pbx, number: &str) -> SippRun {
    Sipp::custom(
        &format!("faulty_{number}"),
        scenarios::answer_then_wait_bye(),
        pbx.sip_addr(),
        number,
    )
    .run()
    .await
    .unwrap()
}

#[tokio::test]
async fn app_errors_end_only_their_call() {
    let faulty = [("trap", "1001"), ("spin", "1002"), ("hog", "1003")];
    let mut apps = vec![("hello", HELLO)];
    apps.extend(faulty);
    let (pbx, _) = pbx_with(&apps).await;

    let (trap, spin, hog, hello) = tokio::join!(
        faulty_call(&pbx, "1001"),
        faulty_call(&pbx, "1002"),
        faulty_call(&pbx, "1003"),
        Sipp::uac_pcap(pbx.sip_addr(), HELLO).run(),
    );
    let hello = hello.unwrap();
    assert_sipp_ok(&hello, 1);

    for ((app, number), run) in faulty.iter().zip([trap, spin, hog]) {
        assert_sipp_ok(&run, 1);
        let ended =
            run.final_status("INVITE").is_some_and(|s| s >= 300) || run.received_request("BYE");
        assert!(
            ended,
            "{app}'s call was neither refused nor hung up by the pbx:\n{}",
            run.report()
        );
        let record = finished_call(&pbx, number, sipp_call_id(&run).as_deref()).await;
        assert_eq!(
            str_field(&record, "hangup_reason"),
            "app-error",
            "{app}: {record}"
        );
        assert_eq!(str_field(&record, "hangup_by"), "local", "{app}: {record}");
    }

    let (status, _) = pbx.api().healthz().await.unwrap();
    assert_eq!(status, 200, "the server must survive its apps");
    // And a fresh call to hello after all that still works.
    let again = Sipp::uac(pbx.sip_addr(), HELLO).run().await.unwrap();
    assert_sipp_ok(&again, 1);
}
