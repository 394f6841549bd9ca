//! Issue 9, item 2: webhooks and apps' HTTP cannot reach inside the host's network. Each
//! test plays the attacker against the real binary on loopback: an account key tries to
//! point a webhook at a local listener in every spelling (refused at creation, the listener
//! hears nothing), a name that resolved fine when the webhook was made and points inside
//! when it is delivered (refused at delivery, logged only as "refused by policy"), a dead
//! port inside an allowed network (logged only as "unreachable", never the OS's reason),
//! and an app whose allow-list names a loopback host (refused by the runtime policy).

use std::time::Duration;

use pbx_tests::paths::plugin_path;
use pbx_tests::{Api, HttpRecorder, Pbx, PbxOptions, expect_status, list_of, str_field};
use serde_json::{Value, json};

use crate::common::{HELLO, HISTORY_TIMEOUT, assert_sipp_ok, hold_call, sipp_call_id};

/// The flag that lets webhooks and apps reach the test's loopback listeners.
const ALLOW_LOOPBACK: [&str; 2] = ["--allow-private-networks", "127.0.0.0/8"];

/// A name for this host that resolves to loopback addresses only, so the refusal comes
/// from judging what the resolver answered: the machine's host name when /etc/hosts maps
/// it to 127.0.x.x (as Debian's 127.0.1.1 does), else `localhost` (loopback by definition).
async fn loopback_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let loopback_only = match tokio::net::lookup_host((host.as_str(), 80)).await {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if loopback_only && valid && host != "localhost" {
        host
    } else {
        "localhost".into()
    }
}

/// Creates an account and an API key for it; returns a client that uses the key.
async fn account_key(admin: &Api, name: &str) -> Api {
    let created = expect_status(
        "create account",
        201,
        admin
            .post_json("/v1/accounts", &json!({ "name": name }))
            .await
            .unwrap(),
    )
    .unwrap();
    let id = str_field(&created, "id").to_string();
    let key = expect_status(
        "create key",
        201,
        admin
            .post_json(
                &format!("/v1/accounts/{id}/keys"),
                &json!({ "name": "e2e" }),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    admin.with_token(str_field(&key, "key"))
}

/// One held call to `number`, waited for until its history row (in `api`'s account) says
/// it hung up.
async fn one_call(pbx: &Pbx, api: &Api, number: &str) {
    let run = hold_call(pbx, number, Duration::from_millis(500))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    let sip_call_id = sipp_call_id(&run).unwrap();
    api.wait_history(HISTORY_TIMEOUT, |c| {
        str_field(c, "sip_call_id") == sip_call_id && str_field(c, "status") == "hangup"
    })
    .await
    .unwrap();
}

/// A webhook created with `api` for `types`; returns its id.
async fn webhook(api: &Api, url: &str, types: &[&str]) -> String {
    let hook = expect_status(
        &format!("POST /v1/webhooks {url}"),
        201,
        api.post_json("/v1/webhooks", &json!({ "url": url, "event_types": types }))
            .await
            .unwrap(),
    )
    .unwrap();
    str_field(&hook, "id").to_string()
}

/// The webhook's delivery log once `done` holds for it (or after 15 s).
async fn deliveries(api: &Api, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let path = format!("/v1/webhooks/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = api.get(&path).await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        let log = list_of(&body, "deliveries");
        if done(&log) || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery in `log` settled (not pending), and there is at least one.
fn settled(log: &[Value]) -> bool {
    !log.is_empty() && log.iter().all(|d| str_field(d, "status") != "pending")
}

#[tokio::test]
async fn an_account_key_cannot_point_a_webhook_inside() {
    let pbx = Pbx::start().await.unwrap();
    let admin = pbx.api();
    let attacker = account_key(&admin, "attacker").await;
    let listener = HttpRecorder::start_ok().await.unwrap();
    let port = listener.addr().port();
    let number = "3300";
    attacker
        .deploy_app("hello", &plugin_path("hello").unwrap(), number)
        .await
        .unwrap();

    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://LOCALHOST.:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://0x7f.1:{port}/hook"),
        format!("http://0.0.0.0:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://10.0.0.1/".to_string(),
    ] {
        for api in [&attacker, &admin] {
            let (status, body) = api
                .post_json("/v1/webhooks", &json!({ "url": url, "event_types": ["*"] }))
                .await
                .unwrap();
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["error"]["code"], "target_not_allowed", "{url}: {body}");
            assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        }
    }
    // PATCH cannot move a public webhook inside either.
    let id = webhook(&attacker, "https://hooks.invalid/hook", &["*"]).await;
    let (status, body) = attacker
        .patch_json(
            &format!("/v1/webhooks/{id}"),
            &json!({ "url": format!("http://localhost:{port}/hook") }),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "target_not_allowed", "{body}");
    let (_, shown) = attacker.get(&format!("/v1/webhooks/{id}")).await.unwrap();
    assert_eq!(
        str_field(&shown, "url"),
        "https://hooks.invalid/hook",
        "{shown}"
    );

    one_call(&pbx, &attacker, number).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        listener.requests().is_empty(),
        "the local listener was reached: {:?}",
        listener.requests()
    );
}

/// A name that pointed where it was allowed when the webhook was made points inside when
/// it is delivered (here: the admin took the allowance away and restarted): every delivery
/// is refused by policy and the listener hears nothing. Inside an allowed network a dead
/// port is logged as "unreachable", never as the OS's "connection refused".
#[tokio::test]
async fn deliveries_are_checked_when_they_connect() {
    let data = tempfile::tempdir().unwrap();
    let options = |args: &[&str]| PbxOptions {
        data_dir: Some(data.path().to_path_buf()),
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..PbxOptions::default()
    };
    let listener = HttpRecorder::start_ok().await.unwrap();
    let dead_port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };

    let mut allowed = Pbx::start_with(options(&[
        ALLOW_LOOPBACK[0],
        ALLOW_LOOPBACK[1],
        "--webhook-retry-ms",
        "20",
    ]))
    .await
    .unwrap();
    let api = allowed.api();
    api.deploy_app("hello", &plugin_path("hello").unwrap(), HELLO)
        .await
        .unwrap();
    let by_name = webhook(
        &api,
        &listener.url("/hook").replace("127.0.0.1", "localhost"),
        &["CALL_RECEIVED", "CALL_FINISHED"],
    )
    .await;
    let dead = webhook(
        &api,
        &format!("http://127.0.0.1:{dead_port}/hook"),
        &["CALL_ESTABLISHED"],
    )
    .await;
    one_call(&allowed, &api, HELLO).await;
    let log = deliveries(&api, &by_name, |log| {
        log.len() >= 2 && log.iter().all(|d| str_field(d, "status") == "delivered")
    })
    .await;
    assert!(
        log.len() >= 2 && log.iter().all(|d| str_field(d, "status") == "delivered"),
        "allowed loopback deliveries: {log:?}"
    );
    let reached = listener.requests().len();
    assert!(reached >= 2, "{reached} requests reached the listener");
    let log = deliveries(&api, &dead, settled).await;
    assert!(settled(&log), "{log:?}");
    for delivery in &log {
        assert_eq!(str_field(delivery, "status"), "failed", "{delivery}");
        assert_eq!(
            str_field(delivery, "last_error"),
            "unreachable",
            "{delivery}"
        );
    }
    allowed.stop().await.unwrap();
    drop(allowed);

    let denied = Pbx::start_with(options(&["--webhook-retry-ms", "20"]))
        .await
        .unwrap();
    let api = denied.api();
    let before = list_of(
        &api.get(&format!("/v1/webhooks/{by_name}/deliveries"))
            .await
            .unwrap()
            .1,
        "deliveries",
    )
    .len();
    one_call(&denied, &api, HELLO).await;
    for id in [&by_name, &dead] {
        let log = deliveries(&api, id, |log| {
            log.iter()
                .filter(|d| str_field(d, "status") == "failed")
                .any(|d| str_field(d, "last_error") == "refused by policy")
                && settled(log)
        })
        .await;
        let refused = log
            .iter()
            .filter(|d| str_field(d, "last_error") == "refused by policy")
            .count();
        assert!(refused >= 1, "webhook {id}: {log:?}");
        assert!(settled(&log), "webhook {id}: {log:?}");
        if *id == by_name {
            assert_eq!(refused, log.len() - before, "{log:?}");
        }
    }
    assert_eq!(
        listener.requests().len(),
        reached,
        "a refused delivery reached the listener"
    );
    let text = denied.log_text().to_lowercase();
    assert!(
        !text.contains("connection refused"),
        "the log names the OS's reason"
    );
}

/// An admin allow-lists a loopback host for an app: a literal address is refused when the
/// settings are saved, and a name for it (see [`loopback_name`]) is refused by the runtime
/// policy when the app's request resolves it; the app gets a generic error and the site nothing.
#[tokio::test]
async fn app_http_to_a_loopback_name_is_refused_at_run_time() {
    let number = "3201";
    let pbx = Pbx::start().await.unwrap();
    let api = pbx.api();
    let app = api
        .deploy_app(
            "capabilities",
            &plugin_path("capabilities").unwrap(),
            number,
        )
        .await
        .unwrap();
    let site = HttpRecorder::start(|_, _| (200, "secret-internal-page".into()))
        .await
        .unwrap();
    let port = site.addr().port();
    let name = loopback_name().await;
    eprintln!("the app's loopback name: {name}");
    let settings = format!("/v1/apps/{}/settings", app.app_id);
    let (status, body) = api
        .put_json(
            &settings,
            &json!({ "http_allow": [format!("127.0.0.1:{port}")] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "target_not_allowed", "{body}");
    assert_eq!(body["error"]["field"], "http_allow", "{body}");

    expect_status(
        "allow localhost",
        200,
        api.put_json(
            &settings,
            &json!({ "http_allow": [format!("{name}:{port}")] }),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    expect_status(
        "config url",
        200,
        api.put_json(
            &format!("/v1/apps/{}/config/url", app.app_id),
            &json!({ "value": format!("http://{name}:{port}/fetch") }),
        )
        .await
        .unwrap(),
    )
    .unwrap();

    let run = hold_call(&pbx, number, Duration::from_millis(2500))
        .run()
        .await
        .unwrap();
    assert_sipp_ok(&run, 1);
    pbx.wait_for_log("http failed", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("the fixture never reported its failed request: {e}"));
    let text = pbx.log_text();
    let line = text
        .lines()
        .find(|l| l.contains("http failed"))
        .unwrap_or_default();
    assert!(line.contains("refused by policy"), "{line}");
    assert!(
        !text.contains("secret-internal-page"),
        "the app read the site"
    );
    assert!(site.requests().is_empty(), "the site was reached");
}
