//! REGISTER with digest against the pbx's registrar: baresip with the right password
//! registers (and the API shows its contact), a wrong password and an unknown user both end
//! in 401 and a failed registration, and on the wire the two are indistinguishable.

use std::collections::BTreeMap;

use pbx_tests::baresip::Registration;
use pbx_tests::digest::{md5_challenge, register_with_digest};
use pbx_tests::party::{REGISTER_TIMEOUT, USER_PASSWORD};
use pbx_tests::sip_raw::SipResponse;
use pbx_tests::{AnswerMode, Party, Pbx, TONES, expect_status, str_field};

/// The right password: 200, and `GET /v1/sip-users/{id}` lists the registration with
/// baresip's own address as the contact.
#[tokio::test]
async fn register_with_the_right_password_succeeds() {
    let pbx = Pbx::start().await.unwrap();
    let mut alice = Party::user(&pbx, "alice", TONES[0], AnswerMode::Auto)
        .await
        .unwrap();
    let port = alice.ua().sip_port();
    let api = pbx.api();
    let (_, users) = api.get("/v1/sip-users").await.unwrap();
    let id = pbx_tests::list_of(&users, "sip_users")
        .iter()
        .chain(pbx_tests::list_of(&users, "users").iter())
        .find(|u| str_field(u, "username") == "alice")
        .map(|u| str_field(u, "id").to_string())
        .unwrap_or_else(|| panic!("alice not listed: {users}"));
    let user = expect_status(
        "GET sip user",
        200,
        api.get(&format!("/v1/sip-users/{id}")).await.unwrap(),
    )
    .unwrap();
    assert!(
        user.to_string().contains(&format!("127.0.0.1:{port}")),
        "the registration's contact should be baresip's address: {user}"
    );
    assert!(
        !user.to_string().contains(USER_PASSWORD),
        "the password leaked: {user}"
    );
    alice.finish().await.unwrap();
}

async fn baresip_fails(pbx: &Pbx, name: &str, password: &str) -> String {
    let mut party = Party::with_registration(
        name,
        TONES[1],
        AnswerMode::Auto,
        Some(Registration {
            registrar: pbx.sip_addr(),
            password: password.into(),
        }),
    )
    .await
    .unwrap();
    let reason = party
        .ua()
        .wait_register_failed(REGISTER_TIMEOUT)
        .await
        .unwrap();
    party.finish().await.unwrap();
    reason
}

/// A wrong password and an unknown user: baresip's registration fails with 401 in both cases.
#[tokio::test]
async fn wrong_password_and_unknown_user_fail_with_401() {
    let pbx = Pbx::start().await.unwrap();
    expect_status(
        "create alice",
        201,
        pbx.api()
            .create_sip_user("alice", USER_PASSWORD)
            .await
            .unwrap(),
    )
    .unwrap();
    let wrong = baresip_fails(&pbx, "alice", "not-the-password").await;
    let unknown = baresip_fails(&pbx, "mallory", USER_PASSWORD).await;
    assert!(wrong.contains("401"), "wrong password: {wrong}");
    assert!(unknown.contains("401"), "unknown user: {unknown}");
    assert_eq!(wrong, unknown);
}

/// What a registrar's answer reveals: status, reason, header names, and the challenge's
/// parameters except the nonce (and anything derived from it).
fn shape(resp: &SipResponse) -> (u16, String, Vec<String>, BTreeMap<String, String>) {
    let mut names: Vec<String> = resp
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    let mut challenge = md5_challenge(resp).unwrap_or_default();
    challenge.remove("nonce");
    challenge.remove("opaque");
    (resp.status, resp.reason.clone(), names, challenge)
}

async fn raw_register(pbx: &Pbx, user: &str, password: &str) -> (SipResponse, SipResponse) {
    register_with_digest(pbx.sip_addr(), user, password)
        .await
        .unwrap()
}

/// On the wire: the unauthenticated REGISTER gets 401 with a realm "pbx" challenge for a known
/// and an unknown user alike; a wrong password and an unknown user get the same 401 again;
/// the right password gets 200.
#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable_on_the_wire() {
    let pbx = Pbx::start().await.unwrap();
    expect_status(
        "create alice",
        201,
        pbx.api()
            .create_sip_user("alice", USER_PASSWORD)
            .await
            .unwrap(),
    )
    .unwrap();
    let (known_first, wrong) = raw_register(&pbx, "alice", "not-the-password").await;
    let (unknown_first, unknown) = raw_register(&pbx, "mallory", "not-the-password").await;
    assert_eq!(known_first.status, 401, "{}", known_first.raw);
    let realm = md5_challenge(&known_first).and_then(|c| c.get("realm").cloned());
    assert_eq!(realm.as_deref(), Some("pbx"), "{}", known_first.raw);
    assert_eq!(shape(&known_first), shape(&unknown_first));
    assert_eq!(wrong.status, 401, "{}", wrong.raw);
    assert_eq!(
        shape(&wrong),
        shape(&unknown),
        "\n{}\n---\n{}",
        wrong.raw,
        unknown.raw
    );
    let (_, right) = raw_register(&pbx, "alice", USER_PASSWORD).await;
    assert_eq!(right.status, 200, "{}", right.raw);
}

/// No open relay: an INVITE from an unknown source to a registered user's name, which no app
/// is bound to, gets 404 and never reaches the user's phone.
#[tokio::test]
async fn a_registered_user_is_not_reachable_without_an_app() {
    use pbx_tests::{Sipp, scenarios};
    let pbx = Pbx::start().await.unwrap();
    let mut alice = Party::user(&pbx, "alice", TONES[0], AnswerMode::Auto)
        .await
        .unwrap();
    let run = Sipp::custom(
        "relay_404",
        scenarios::expect_final(404),
        pbx.sip_addr(),
        "alice",
    )
    .run()
    .await
    .unwrap();
    assert!(run.succeeded(1), "{}", run.report());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !alice.ua().saw("CALL_INCOMING"),
        "the call was relayed to alice: {}",
        alice.ua().event_summary()
    );
    alice.finish().await.unwrap();
}
