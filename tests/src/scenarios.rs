//! Custom sipp scenarios: the client flows the tests need beyond the built-in `uac`, and the
//! server flows that prove those clients against sipp itself in the harness self-tests.
//!
//! Invariants: the INVITE's Via branch is fixed per call (`z9hG4bK-inv-[pid]-[call_number]`)
//! so that its CANCEL and its ACK for a non-2xx final response carry the same branch (RFC 3261
//! §9.1, §17.1.1.3) without index arithmetic on sipp's `[branch]`; every wait is bounded by
//! sipp's `-timeout`.

use std::fmt::Write as _;

/// The final statuses an INVITE may get when the pbx refuses or fails a call; a client scenario
/// that waits for "any final error" lists these (sipp cannot match a status range).
pub const ERROR_STATUSES: &[u16] = &[
    400, 403, 404, 405, 408, 410, 413, 415, 420, 480, 481, 482, 483, 484, 485, 486, 487, 488, 491,
    500, 501, 502, 503, 504, 513, 600, 603, 604, 606,
];

const INVITE_BRANCH: &str = "z9hG4bK-inv-[pid]-[call_number]";

/// The INVITE; `txn` names it as sipp transaction "invite" (responses then match by branch).
fn invite(txn: bool) -> String {
    let start = if txn { r#" start_txn="invite""# } else { "" };
    format!(
        r#"  <send retrans="500"{start}>
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={INVITE_BRANCH};rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: pbx-e2e-sipp
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv

    ]]>
  </send>
"#
    )
}

/// The ACK for a non-2xx final response: same branch as the INVITE, the response's To tag.
fn ack_non_2xx(txn: bool) -> String {
    let ack = if txn { r#" ack_txn="invite""# } else { "" };
    format!(
        r#"  <send{ack}>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={INVITE_BRANCH};rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

/// The ACK for a 2xx: a new transaction (new branch) in the dialog.
fn ack_2xx(txn: bool) -> String {
    let ack = if txn { r#" ack_txn="invite""# } else { "" };
    format!(
        r#"  <send{ack}>
    <![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

fn bye_and_200() -> &'static str {
    r#"  <send retrans="500" start_txn="bye">
    <![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" response_txn="bye"/>
"#
}

fn provisional_optional() -> &'static str {
    r#"  <recv response="100" response_txn="invite" optional="true"/>
  <recv response="180" response_txn="invite" optional="true"/>
  <recv response="183" response_txn="invite" optional="true"/>
"#
}

fn wrap(name: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n<scenario name=\"{name}\">\n{body}</scenario>\n"
    )
}

/// INVITE expecting the final response `status` (e.g. 404 for an unknown number), then ACK.
/// Any other final response is an unexpected message: the call fails and sipp exits 1.
pub fn expect_final(status: u16) -> String {
    let mut body = invite(true);
    body.push_str(provisional_optional());
    let _ = writeln!(
        body,
        r#"  <recv response="{status}" response_txn="invite"/>"#
    );
    body.push_str(&ack_non_2xx(true));
    wrap(&format!("INVITE expecting {status}"), &body)
}

/// INVITE expecting one of `statuses` as the final response (e.g. 486 or 503 for a refused
/// call), then ACK; tests read which with [`crate::sipp::SippRun::final_status`]. Anything
/// else (a 200 among them) fails the call.
pub fn expect_final_any(statuses: &[u16]) -> String {
    let mut body = invite(true);
    body.push_str(provisional_optional());
    for (i, status) in statuses.iter().enumerate() {
        let optional = if i + 1 < statuses.len() {
            r#" optional="true" next="refused""#
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"  <recv response="{status}" response_txn="invite"{optional}/>"#
        );
    }
    body.push_str("  <label id=\"refused\"/>\n");
    body.push_str(&ack_non_2xx(true));
    wrap("INVITE expecting a refusal", &body)
}

/// INVITE, 200, ACK, then the call is held for `hold_ms` before the caller's BYE (answered
/// 200). Unlike the built-in `uac`, the length of the call is fixed, so several runs can
/// overlap for a known time.
pub fn hold(hold_ms: u32) -> String {
    let mut body = invite(true);
    body.push_str(provisional_optional());
    body.push_str("  <recv response=\"200\" response_txn=\"invite\"/>\n");
    body.push_str(&ack_2xx(true));
    let _ = writeln!(body, r#"  <pause milliseconds="{hold_ms}"/>"#);
    body.push_str(bye_and_200());
    wrap(&format!("INVITE, hold {hold_ms} ms, BYE"), &body)
}

/// INVITE, then CANCEL as soon as the call rings (180 or 183). The expected end is 200 for the
/// CANCEL and 487 for the INVITE, then ACK. If the callee answered first (a race the caller
/// cannot prevent), the 200 is ACKed and the call ended with BYE; both paths succeed, and the
/// test tells them apart by whether 487 was received ([`crate::sipp::SippRun::received_response`]).
///
/// How it works around sipp 3.6: a CANCEL shares the INVITE's branch, so sipp's transactions
/// (matched by branch) cannot tell their responses apart, and neither starts one; a 200 is told
/// apart by its CSeq (`ereg` into `invite_answered`, then `test`/`next`). A message that arrives
/// while sipp rests on a `<send>` is matched only against earlier recvs and usually aborts the
/// call, so the scenario waits for the CANCEL's own final response before it ACKs or hangs up,
/// and every branch goes from a recv straight to the next group of recvs.
pub fn cancel() -> String {
    let mut body = invite(false);
    // CANCEL on 180/183, not on 100: a pbx sends 100 and 180 back to back, and a 180 arriving
    // while sipp rests on the CANCEL <send> would abort the call.
    body.push_str(
        r#"  <recv response="100" optional="true"/>
  <recv response="180" optional="true" next="cancel"/>
  <recv response="183" optional="true" next="cancel"/>
  <recv response="200" next="answered"/>
  <label id="cancel"/>
"#,
    );
    let _ = write!(
        body,
        r#"  <send retrans="500" next="wait">
    <![CDATA[

      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={INVITE_BRANCH};rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <label id="wait"/>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="481" optional="true" next="cancel_done"/>
  <recv response="487" optional="true" next="terminated_cancel_pending"/>
  <recv response="200" test="invite_answered" next="answered_cancel_pending">
    <action>
      <ereg regexp="INVITE" search_in="hdr" header="CSeq:" assign_to="invite_answered"/>
    </action>
  </recv>
  <label id="cancel_done"/>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="487" optional="true" next="terminated"/>
  <recv response="200" next="answered"/>
  <label id="terminated_cancel_pending"/>
  <recv response="481" optional="true" next="terminated"/>
  <recv response="200" next="terminated"/>
  <label id="terminated"/>
"#
    );
    body.push_str(&ack_non_2xx(false).replacen("<send>", r#"<send next="end">"#, 1));
    body.push_str(
        r#"  <label id="answered_cancel_pending"/>
  <recv response="481" optional="true" next="answered"/>
  <recv response="200" next="answered"/>
  <label id="answered"/>
"#,
    );
    body.push_str(&ack_2xx(false));
    body.push_str(bye_and_200());
    body.push_str("  <label id=\"end\"/>\n  <pause milliseconds=\"10\"/>\n");
    wrap("INVITE then CANCEL", &body)
}

/// INVITE, then either a final error response (ACKed; the call ends there) or 200, ACK and
/// wait for the server's BYE (answered 200). Tests tell the paths apart with
/// [`crate::sipp::SippRun::final_status`] and `received_request("BYE")`.
pub fn answer_then_wait_bye() -> String {
    let mut body = invite(true);
    body.push_str(provisional_optional());
    body.push_str(
        "  <recv response=\"200\" response_txn=\"invite\" optional=\"true\" next=\"answered\"/>\n",
    );
    // sipp needs a mandatory <recv> before the next <send>: the last status is it.
    for (i, status) in ERROR_STATUSES.iter().enumerate() {
        let optional = if i + 1 < ERROR_STATUSES.len() {
            r#" optional="true""#
        } else {
            ""
        };
        let _ = writeln!(
            body,
            r#"  <recv response="{status}" response_txn="invite"{optional} next="rejected"/>"#
        );
    }
    body.push_str("  <label id=\"rejected\"/>\n");
    body.push_str(&ack_non_2xx(true));
    body.push_str("  <nop next=\"end\"/>\n  <label id=\"answered\"/>\n");
    body.push_str(&ack_2xx(true));
    body.push_str(
        r#"  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
"#,
    );
    wrap("INVITE then wait for the end", &body)
}

// ---- server scenarios for the harness self-tests ----

fn response(status: &str, to_tag: bool, sdp: bool) -> String {
    let to = if to_tag {
        "[last_To:];tag=[pid]SIPpTag01[call_number]"
    } else {
        "[last_To:]"
    };
    let (content_type, body) = if sdp {
        (
            "      Content-Type: application/sdp\n",
            "\n      v=0\n      o=uas 1 1 IN IP[local_ip_type] [local_ip]\n      s=-\n      c=IN IP[media_ip_type] [media_ip]\n      t=0 0\n      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"  <send>
    <![CDATA[

      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      {to}
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{content_type}      Content-Length: [len]
{body}
    ]]>
  </send>
"#
    )
}

/// Server: rejects the INVITE with `status` (after 100 Trying) and waits for the ACK.
pub fn server_reject(status: u16, reason: &str) -> String {
    let mut body = String::from("  <recv request=\"INVITE\"/>\n");
    body.push_str(&response("100 Trying", false, false));
    body.push_str(&response(&format!("{status} {reason}"), true, false));
    body.push_str("  <recv request=\"ACK\"/>\n");
    wrap(&format!("server rejecting with {status}"), &body)
}

/// Captures the INVITE's Via, From and To, for responses sent after other requests arrived.
const CAPTURE_INVITE: &str = r#"  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="Via:" assign_to="via"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
    </action>
  </recv>
"#;

/// A response to the INVITE (`cseq` "1 INVITE") or its CANCEL ("1 CANCEL") built from the
/// captured INVITE headers, so it can be sent after other requests arrived.
fn invite_txn_response(status: &str, cseq: &str, sdp: bool) -> String {
    let (content_type, body) = if sdp {
        (
            "      Content-Type: application/sdp\n",
            "\n      v=0\n      o=uas 1 1 IN IP[local_ip_type] [local_ip]\n      s=-\n      c=IN IP[media_ip_type] [media_ip]\n      t=0 0\n      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"  <send>
    <![CDATA[

      SIP/2.0 {status}
      Via:[$via]
      From:[$from]
      To:[$to];tag=[pid]SIPpTag01[call_number]
      Call-ID: [call_id]
      CSeq: {cseq}
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{content_type}      Content-Length: [len]
{body}
    ]]>
  </send>
"#
    )
}

/// Server: sends 100 and 180 and waits for the CANCEL, then sends 200 for the CANCEL and 487 for the
/// INVITE (in either order) and waits for the ACK. (sipp sends consecutive messages in separate
/// passes, so a server scenario never expects a request between two of its own sends.)
pub fn server_cancel_487(cancel_200_first: bool) -> String {
    let mut body = String::from(CAPTURE_INVITE);
    body.push_str(&response("100 Trying", false, false));
    body.push_str(&response("180 Ringing", true, false));
    body.push_str("  <recv request=\"CANCEL\"/>\n");
    let ok = invite_txn_response("200 OK", "1 CANCEL", false);
    let terminated = invite_txn_response("487 Request Terminated", "1 INVITE", false);
    if cancel_200_first {
        body.push_str(&ok);
        body.push_str(&terminated);
    } else {
        body.push_str(&terminated);
        body.push_str(&ok);
    }
    body.push_str("  <recv request=\"ACK\"/>\n");
    wrap("server answering CANCEL with 487", &body)
}

/// Server: the race a CANCEL can lose. After 100 and 180 the CANCEL arrives, but the INVITE is answered
/// 200 anyway; the CANCEL gets its 200 after (or before) that; then the ACK and the caller's
/// BYE (answered 200).
pub fn server_answer_despite_cancel(cancel_200_first: bool) -> String {
    let mut body = String::from(CAPTURE_INVITE);
    body.push_str(&response("100 Trying", false, false));
    body.push_str(&response("180 Ringing", true, false));
    body.push_str("  <recv request=\"CANCEL\"/>\n");
    let ok = invite_txn_response("200 OK", "1 CANCEL", false);
    let answer = invite_txn_response("200 OK", "1 INVITE", true);
    if cancel_200_first {
        body.push_str(&ok);
        body.push_str(&answer);
    } else {
        body.push_str(&answer);
        body.push_str(&ok);
    }
    body.push_str("  <recv request=\"ACK\"/>\n  <recv request=\"BYE\"/>\n");
    body.push_str(&response("200 OK", false, false));
    wrap("server answering despite the CANCEL", &body)
}

/// Server: answers (100, 180, 200), waits for the ACK, holds the call for `hold_ms`, then
/// sends BYE to the INVITE's Contact (RFC 3261 §12.2.1.1: the remote target) and waits for
/// its 200.
pub fn server_answer_then_bye(hold_ms: u32) -> String {
    let mut body = String::from(
        r#"  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="target"/>
    </action>
  </recv>
"#,
    );
    body.push_str(&response("100 Trying", false, false));
    body.push_str(&response("180 Ringing", true, false));
    body.push_str(&response("200 OK", true, true));
    let _ = write!(
        body,
        r#"  <recv request="ACK"/>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500">
    <![CDATA[

      BYE [$target] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
      To:[$caller]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
"#
    );
    wrap("server answering then hanging up", &body)
}

/// Server: answers one OPTIONS with 200.
pub fn server_options() -> String {
    let body = r#"  <recv request="OPTIONS"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
      Content-Length: 0

    ]]>
  </send>
"#;
    wrap("server answering OPTIONS", body)
}

/// Server: a digest registrar for one REGISTER flow, checked with sipp's own `verifyauth`
/// (MD5): the first REGISTER gets 401 with a challenge in realm "pbx"; a retry with valid
/// credentials for `username`/`password` gets 200 with the Contact echoed, anything else
/// gets 401 again, as often as the client retries.
pub fn server_registrar(username: &str, password: &str) -> String {
    registrar(username, password, false)
}

/// [`server_registrar`] that also offers a SHA-256 challenge after the MD5 one (RFC 8760),
/// as a registrar supporting both does.
pub fn server_registrar_md5_and_sha256(username: &str, password: &str) -> String {
    registrar(username, password, true)
}

fn registrar(username: &str, password: &str, sha256: bool) -> String {
    let extra = if sha256 {
        "\n      WWW-Authenticate: Digest realm=\"pbx\", nonce=\"[pid]n[call_number]\", algorithm=SHA-256, qop=\"auth\""
    } else {
        ""
    };
    let challenge = |status: &str| {
        format!(
            r#"  <send>
    <![CDATA[

      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="pbx", nonce="[pid]n[call_number]", algorithm=MD5, qop="auth"{extra}
      Content-Length: 0

    ]]>
  </send>
"#
        )
    };
    let mut body = String::from("  <recv request=\"REGISTER\"/>\n");
    body.push_str(&challenge("401 Unauthorized"));
    let _ = write!(
        body,
        r#"  <label id="retry"/>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="{username}" password="{password}"/>
      <ereg regexp=".*" search_in="hdr" header="Contact:" assign_to="contact"/>
    </action>
  </recv>
  <nop test="authvalid" next="good"/>
"#
    );
    body.push_str(&challenge("401 Unauthorized").replacen("<send>", r#"<send next="retry">"#, 1));
    body.push_str(
        r#"  <label id="good"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact:[$contact];expires=300
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
  <pause milliseconds="10"/>
"#,
    );
    wrap("digest registrar", &body)
}
