//! Issue test 12: OPTIONS is answered 200 (with Allow) over UDP and TCP.

use std::time::Duration;

use pbx_tests::{Pbx, RawTransport, sip_raw};

#[tokio::test]
async fn options_is_200_over_udp_and_tcp() {
    let pbx = Pbx::start().await.unwrap();
    for transport in [RawTransport::Udp, RawTransport::Tcp] {
        let resp = sip_raw::options(pbx.sip_addr(), transport, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("OPTIONS over {transport:?}: {e}"));
        assert_eq!(
            resp.status, 200,
            "OPTIONS over {transport:?}:\n{}",
            resp.raw
        );
        assert!(
            resp.header("Allow").is_some_and(|a| a.contains("INVITE")),
            "OPTIONS over {transport:?} without Allow: INVITE:\n{}",
            resp.raw
        );
    }
}
