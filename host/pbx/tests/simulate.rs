//! `pbx simulate` end to end: the built binary runs the real `hello` and `ivr` components
//! through the scenarios in `plugins/*/scenarios/`, and a failing expectation gives exit
//! code 1 naming its line.
//!
//! Invariants: the components come from `plugins/target/wasm32-wasip2/release/`; the test
//! first asks `scripts/build-plugins.sh -p hello -p ivr` to bring them up to date (a no-op
//! when nothing changed) and, if that cannot run, uses what is there; with no component at
//! all it skips with a message saying how to build them. Nothing here uses the network.
#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built component `name`, or `None` (after saying why) when it cannot be had.
fn component(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = root().join("scripts/build-plugins.sh");
        let status = Command::new("bash")
            .arg(&script)
            .args(["-p", "hello", "-p", "ivr"])
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "note: {} failed ({status:?}); using the components already built",
                script.display()
            );
        }
    });
    let path = root()
        .join("plugins/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is not built; run scripts/build-plugins.sh (needs the wasm32-wasip2 target)",
            path.display()
        );
        None
    }
}

fn simulate(app: &Path, scenario: &Path, extra: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_pbx"))
        .arg("simulate")
        .arg(app)
        .arg(scenario)
        .args(extra)
        .env_remove("PBX_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    eprintln!(
        "$ pbx simulate {} {}\n-- status {}\n-- stdout\n{}-- stderr\n{}",
        app.display(),
        scenario.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every scenario of a plugin passes against its built component.
fn scenarios_pass(plugin: &str) {
    let Some(app) = component(plugin) else { return };
    let dir = root().join("plugins").join(plugin).join("scenarios");
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sim"))
        .collect();
    scenarios.sort();
    assert!(!scenarios.is_empty(), "no scenarios in {}", dir.display());
    for scenario in scenarios {
        let output = simulate(&app, &scenario, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", scenario.display());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.lines().last().unwrap().contains("passed"),
            "{stdout}"
        );
    }
}

#[test]
fn hello_scenarios_pass() {
    scenarios_pass("hello");
}

#[test]
fn ivr_scenarios_pass() {
    scenarios_pass("ivr");
}

#[test]
fn a_failed_expectation_exits_1_and_names_its_line() {
    let Some(app) = component("ivr") else { return };
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("wrong.sim");
    std::fs::write(
        &scenario,
        "call from=alice to=2000\nexpect answer\n# sales is 1, not 3\npress 3\nexpect say \"to sales\"\n",
    )
    .unwrap();
    let output = simulate(&app, &scenario, &["--quiet"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("FAIL line 5: expect say \"to sales\""),
        "{stdout}"
    );
    assert!(
        !stdout.contains("ok   line 2"),
        "--quiet hides passing lines: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("wrong.sim:5: expect say \"to sales\""),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2_and_options_parse() {
    let Some(app) = component("hello") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sim");
    std::fs::write(&bad, "call\ndance\n").unwrap();
    let output = simulate(&app, &bad, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 2: unknown step `dance`"));

    let output = simulate(&bad, &bad, &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a scenario is not a component"
    );

    let ok = dir.path().join("ok.sim");
    std::fs::write(&ok, "call\nexpect answer\n").unwrap();
    let output = simulate(
        &app,
        &ok,
        &["--config", "greeting=hi", "--config", "lang=en"],
    );
    assert_eq!(output.status.code(), Some(0));
    let output = simulate(&app, &ok, &["--config", "nonsense"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "clap refuses a malformed --config"
    );
}
