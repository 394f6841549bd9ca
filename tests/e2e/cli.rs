//! Issue 4, the plugin author's path end to end with the real `pbx` binary: `pbx app new`,
//! `pbx app build`, `pbx simulate` of the template's scenario, `pbx app deploy --number`,
//! then a real SIP call to the new app and `pbx events` listing that call's events.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use pbx_tests::paths::{pbx_binary, workspace_root};
use pbx_tests::{Pbx, Sipp, list_of, str_field};
use tokio::process::Command;

use crate::common::{assert_sipp_ok, finished_call, sipp_call_id};

/// The new app's name and the number it is deployed on.
const APP: &str = "e2e-cli-app";
const NUMBER: &str = "7100";

/// Runs `pbx <args>` in `cwd` with `env`, at most `timeout`; panics with its output unless
/// it exits 0.
async fn pbx_cli(args: &[&str], cwd: &Path, env: &[(&str, String)], timeout: Duration) -> Output {
    let mut cmd = Command::new(pbx_binary().unwrap());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("PBX_CONFIG")
        .env_remove("PBX_URL")
        .env_remove("PBX_API_KEY")
        // Builds run inside a network namespace: cargo must use what is cached.
        .env("CARGO_NET_OFFLINE", "true")
        // Share the example apps' target dir, so the SDK and its dependencies are built once.
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("plugins").join("target"),
        )
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = tokio::time::timeout(timeout, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`pbx {}` took more than {timeout:?}", args.join(" ")))
        .unwrap_or_else(|e| panic!("`pbx {}` could not run: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "`pbx {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn new_build_simulate_deploy_then_call() {
    let pbx = Pbx::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join(APP);
    let dir_arg = dir.to_str().unwrap().to_string();

    pbx_cli(
        &["app", "new", APP],
        work.path(),
        &[],
        Duration::from_secs(30),
    )
    .await;
    for file in ["Cargo.toml", "src/lib.rs", "scenarios/basic.sim"] {
        assert!(dir.join(file).is_file(), "`app new` did not write {file}");
    }
    // The first build of the SDK for wasm takes a while; later runs reuse the target dir.
    pbx_cli(
        &["app", "build", "--dir", &dir_arg],
        work.path(),
        &[],
        Duration::from_secs(600),
    )
    .await;
    let wasm = workspace_root()
        .join("plugins/target/wasm32-wasip2/release")
        .join(format!("{}.wasm", APP.replace('-', "_")));
    assert!(wasm.is_file(), "no component at {}", wasm.display());

    let scenario = dir.join("scenarios").join("basic.sim");
    let simulated = pbx_cli(
        &[
            "simulate",
            wasm.to_str().unwrap(),
            scenario.to_str().unwrap(),
        ],
        work.path(),
        &[],
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "pbx simulate:\n{}",
        String::from_utf8_lossy(&simulated.stdout)
    );

    let env = [
        ("PBX_URL", pbx.http_base()),
        ("PBX_API_KEY", pbx.token().to_string()),
    ];
    pbx_cli(
        &["app", "deploy", "--dir", &dir_arg, "--number", NUMBER],
        work.path(),
        &env,
        Duration::from_secs(60),
    )
    .await;
    let api = pbx.api();
    let (_, apps) = api.apps().await.unwrap();
    let app = list_of(&apps, "apps")
        .into_iter()
        .find(|a| str_field(a, "name") == APP)
        .unwrap_or_else(|| panic!("`app deploy` did not create {APP}: {apps}"));
    let app_id = str_field(&app, "id").to_string();

    // A real call to the new app is answered.
    let run = Sipp::uac(pbx.sip_addr(), NUMBER).run().await.unwrap();
    assert_sipp_ok(&run, 1);
    assert!(run.received_response(200, "INVITE"), "{}", run.report());
    let record = finished_call(&pbx, NUMBER, sipp_call_id(&run).as_deref()).await;
    assert_eq!(str_field(&record, "app_id"), app_id, "{record}");
    let call_id = str_field(&record, "id").to_string();

    // `pbx events` (the history, no --follow) lists that call's events.
    let wanted = format!("call={call_id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = pbx_cli(&["events"], work.path(), &env, Duration::from_secs(30)).await;
        let text = String::from_utf8_lossy(&events.stdout).into_owned();
        let of_call: Vec<&str> = text.lines().filter(|l| l.contains(&wanted)).collect();
        if of_call.iter().any(|l| l.contains("CALL_RECEIVED"))
            && of_call.iter().any(|l| l.contains("CALL_FINISHED"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`pbx events` does not list CALL_RECEIVED and CALL_FINISHED of {call_id}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
