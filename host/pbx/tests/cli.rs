//! End-to-end tests of the `pbx` CLI: the built binary run as a user would, against a real
//! `pbx serve` on free loopback ports (and a stand-in event websocket).
//!
//! Invariants: every child process runs with the caller's `PBX_*` settings removed and its
//! config directory in a temp dir, so the developer's own config never leaks in; servers are
//! killed when their guard drops; every wait is bounded.
//!
//! How the lead's e2e suite can place a real call to an app deployed this way: start the
//! server with `tests/src/pbx.rs` (`Pbx::start`), run `pbx app deploy --dir DIR --number N`
//! with `PBX_URL = pbx.http_base()` and `PBX_API_KEY = pbx.token()`, then dial
//! `sip:N@<pbx.sip_addr()>` with sipp or baresip as the other e2e tests do.
#![allow(clippy::unwrap_used, reason = "tests may unwrap")]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `pbx` binary under test, with a clean environment.
fn pbx(config_home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pbx"));
    for var in [
        "PBX_URL",
        "PBX_API_KEY",
        "PBX_CONFIG",
        "PBX_SDK_PATH",
        "PBX_SIP",
        "PBX_HTTP",
        "PBX_DATA",
        "PBX_ADMIN_TOKEN",
        "PBX_EXAMPLE_APPS",
        "PBX_PUBLIC_IP",
        "PBX_LOG_JSON",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd.output().unwrap();
    eprintln!(
        "$ {:?}\n-- status {}\n-- stdout\n{}-- stderr\n{}",
        cmd,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository root (two levels above this crate).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn app_new_creates_a_crate_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hello2");
    let out = run(pbx(tmp.path())
        .args(["app", "new", "hello2", "--dir"])
        .arg(&dir));
    assert!(out.status.success());
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/lib.rs",
        "scenarios/basic.sim",
        "README.md",
        ".gitignore",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("hello2"));
    assert_eq!(
        manifest["lib"]["crate-type"].as_array().unwrap()[0].as_str(),
        Some("cdylib")
    );
    assert!(manifest.contains_key("workspace"));
    let sdk = manifest["dependencies"]["pbx-sdk"]["path"]
        .as_str()
        .unwrap();
    assert!(Path::new(sdk).join("Cargo.toml").is_file(), "{sdk}");
    assert!(stdout(&out).contains(sdk), "prints the SDK used");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("hello2.wasm"));

    // The same directory again: refused, nothing overwritten.
    std::fs::write(dir.join("src/lib.rs"), "// mine").unwrap();
    let again = run(pbx(tmp.path())
        .args(["app", "new", "hello2", "--dir"])
        .arg(&dir));
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
        "// mine"
    );

    // An existing empty directory is fine; the default directory is ./NAME.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(
        run(pbx(tmp.path())
            .args(["app", "new", "x1", "--dir"])
            .arg(&empty))
        .status
        .success()
    );
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    assert!(
        run(pbx(tmp.path())
            .current_dir(&cwd)
            .args(["app", "new", "in-cwd"]))
        .status
        .success()
    );
    assert!(cwd.join("in-cwd/Cargo.toml").is_file());

    for bad in ["Hello", "hello_world", "9lives", "bad-", "fn"] {
        let out = run(pbx(tmp.path()).current_dir(&cwd).args(["app", "new", bad]));
        assert_eq!(out.status.code(), Some(1), "{bad} accepted");
        assert!(stderr(&out).contains("invalid app name"), "{bad}");
        assert!(!cwd.join(bad).exists());
    }

    // A PBX_SDK_PATH that is not the SDK is refused.
    let out = run(pbx(tmp.path())
        .env("PBX_SDK_PATH", tmp.path())
        .args(["app", "new", "other", "--dir"])
        .arg(tmp.path().join("other")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PBX_SDK_PATH"), "{}", stderr(&out));
}

/// A free port on 127.0.0.1 for both UDP and TCP (SIP listens on both).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A running `pbx serve`, killed on drop.
struct Server {
    child: Child,
    http: SocketAddr,
    token: String,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(config_home: &Path) -> Server {
        let data = tempfile::tempdir().unwrap();
        let log = data.path().join("server.log");
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let sip: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let token = "cli-test-token-0123456789".to_string();
        let child = pbx(config_home)
            .args([
                "serve",
                "--sip",
                &sip.to_string(),
                "--http",
                &http.to_string(),
            ])
            .arg("--data")
            .arg(data.path().join("data"))
            .args(["--admin-token", &token])
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(data.path().join("server.err")).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            http,
            token,
            log,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("pbx serve exited with {status}:\n{}", server.logs());
            }
            if let Ok((200, _)) = server.http_get("/healthz", false) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "pbx serve never became healthy:\n{}",
                server.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("server.err");
        format!(
            "{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }

    /// A tiny HTTP/1.1 GET (so the test checks the API independently of the CLI's client).
    fn http_get(&self, path: &str, auth: bool) -> std::io::Result<(u16, Value)> {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect_timeout(&self.http, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let auth = if auth {
            format!("Authorization: Bearer {}\r\n", self.token)
        } else {
            String::new()
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            self.http
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    }

    /// The CLI pointed at this server with the admin token in the environment.
    fn cli(&self, config_home: &Path) -> Command {
        let mut cmd = pbx(config_home);
        cmd.env("PBX_URL", self.url())
            .env("PBX_API_KEY", &self.token);
        cmd
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("-- pbx serve log\n{}", self.logs());
        }
    }
}

/// `new` → `build` → `serve` → `deploy --number 7000`, checked through the API; then the
/// list commands, API errors, and a second deploy making version 2 and a rollback.
#[test]
fn new_build_deploy_against_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cli-e2e-app");
    assert!(
        run(pbx(tmp.path())
            .args(["app", "new", "cli-e2e-app", "--dir"])
            .arg(&dir))
        .status
        .success()
    );

    // Share the example apps' target dir: wit-bindgen for wasm32 is compiled there already.
    let target = repo_root().join("plugins/target");
    let build = run(pbx(tmp.path())
        .env("CARGO_TARGET_DIR", &target)
        .args(["app", "build", "--dir"])
        .arg(&dir));
    assert!(build.status.success(), "build failed");
    let wasm = target.join("wasm32-wasip2/release/cli_e2e_app.wasm");
    let built = stdout(&build);
    assert!(built.contains("cli_e2e_app.wasm"), "{built}");
    let bytes = std::fs::read(&wasm).unwrap();
    assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "a component");

    // The template's scenario passes in the simulator.
    let simulated = run(pbx(tmp.path())
        .arg("simulate")
        .arg(&wasm)
        .arg(dir.join("scenarios/basic.sim")));
    assert!(simulated.status.success(), "the template's scenario failed");

    let server = Server::start(tmp.path());
    let deploy = run(server
        .cli(tmp.path())
        .env("CARGO_TARGET_DIR", &target)
        .args(["app", "deploy", "--number", "7000", "--dir"])
        .arg(&dir));
    assert!(deploy.status.success(), "deploy failed");
    let said = stdout(&deploy);
    assert!(said.contains("version  1 deployed"), "{said}");
    assert!(said.contains("7000"), "{said}");

    let (status, apps) = server.http_get("/v1/apps", true).unwrap();
    assert_eq!(status, 200, "{apps}");
    let app = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "cli-e2e-app")
        .cloned()
        .unwrap();
    let app_id = app["id"].as_str().unwrap().to_string();
    assert_eq!(app["active_version"], json!(1));
    let (status, number) = server.http_get("/v1/numbers/7000", true).unwrap();
    assert_eq!(status, 200, "{number}");
    assert_eq!(number["app_id"].as_str(), Some(app_id.as_str()));

    // Tables.
    let numbers = run(server.cli(tmp.path()).arg("numbers"));
    assert!(numbers.status.success());
    let text = stdout(&numbers);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("NUMBER  APP"), "{text}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("7000") && row.contains("cli-e2e-app") && row.contains(&app_id),
        "{text}"
    );
    let json_out = run(server.cli(tmp.path()).args(["numbers", "--json"]));
    let parsed: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(parsed["numbers"][0]["number"], "7000");

    let calls = run(server.cli(tmp.path()).arg("calls"));
    assert!(calls.status.success());
    assert_eq!(stdout(&calls).trim(), "no live calls");
    let history = run(server.cli(tmp.path()).args(["calls", "--history"]));
    assert!(history.status.success());

    let list = run(server.cli(tmp.path()).args(["app", "list"]));
    let text = stdout(&list);
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains("cli-e2e-app"), "{text}");

    // Second deploy of the same file (by --wasm, named explicitly): version 2; rollback to 1.
    let again = run(server
        .cli(tmp.path())
        .args(["app", "deploy", "--name", "cli-e2e-app", "--wasm"])
        .arg(&wasm));
    assert!(
        stdout(&again).contains("version  2 deployed"),
        "second deploy"
    );
    let versions = run(server
        .cli(tmp.path())
        .args(["app", "versions", "cli-e2e-app"]));
    let text = stdout(&versions);
    assert!(
        text.lines().any(|l| l.starts_with("2") && l.contains('*')),
        "{text}"
    );
    let rollback = run(server
        .cli(tmp.path())
        .args(["app", "rollback", &app_id, "1"]));
    assert!(rollback.status.success());
    let (_, app) = server
        .http_get(&format!("/v1/apps/{app_id}"), true)
        .unwrap();
    assert_eq!(app["active_version"], json!(1));

    // Number routing by app name, then removal.
    assert!(
        run(server
            .cli(tmp.path())
            .args(["numbers", "set", "7001", "cli-e2e-app"]))
        .status
        .success()
    );
    let (status, _) = server.http_get("/v1/numbers/7001", true).unwrap();
    assert_eq!(status, 200);
    assert!(
        run(server.cli(tmp.path()).args(["numbers", "delete", "7001"]))
            .status
            .success()
    );
    let (status, _) = server.http_get("/v1/numbers/7001", true).unwrap();
    assert_eq!(status, 404);

    // API errors print `pbx: <code>: <message>` and exit 1.
    let missing = run(server.cli(tmp.path()).args(["numbers", "delete", "7001"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).starts_with("pbx: not_found: "),
        "{}",
        stderr(&missing)
    );
    let bad_key = run(server
        .cli(tmp.path())
        .env("PBX_API_KEY", "wrong")
        .args(["app", "list"]));
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(
        stderr(&bad_key).starts_with("pbx: unauthorized: "),
        "{}",
        stderr(&bad_key)
    );
    let bad_rollback = run(server
        .cli(tmp.path())
        .args(["app", "rollback", &app_id, "9"]));
    assert_eq!(bad_rollback.status.code(), Some(1));

    // The key and URL can come from the config file instead.
    let config = tmp.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("url = \"{}\"\nkey = \"{}\"\n", server.url(), server.token),
    )
    .unwrap();
    let from_file = run(pbx(tmp.path())
        .env("PBX_CONFIG", &config)
        .args(["app", "list"]));
    assert!(from_file.status.success());
    assert!(stdout(&from_file).contains("cli-e2e-app"));

    // `pbx app delete` by name: the app and its versions go.
    let deleted = run(server
        .cli(tmp.path())
        .args(["app", "delete", "cli-e2e-app"]));
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let (status, _) = server
        .http_get(&format!("/v1/apps/{app_id}"), true)
        .unwrap();
    assert_eq!(status, 404, "the app is gone after `pbx app delete`");
}

#[test]
fn connection_errors_name_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["app", "list"],
        vec!["numbers"],
        vec!["calls"],
        vec!["events"],
        vec!["events", "--follow"],
    ] {
        let out = run(pbx(tmp.path())
            .env("PBX_URL", &url)
            .env("PBX_API_KEY", "k")
            .args(&args));
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("127.0.0.1:{port}")),
            "{args:?}: {err}"
        );
    }
    let no_key = run(pbx(tmp.path()).env("PBX_URL", &url).args(["app", "list"]));
    assert_eq!(no_key.status.code(), Some(1));
    assert!(stderr(&no_key).contains("no API key"));
}

/// `pbx events --follow` against a stand-in websocket: the bearer key and filters arrive,
/// events print one per line, a lagged notice goes to stderr, a restart is survived, and
/// SIGINT exits 0.
#[test]
fn events_follow_prints_lines_and_reconnects() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    let tmp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<String>();
    runtime.spawn(async move {
        for round in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let seen = seen_tx.clone();
            #[allow(
                clippy::result_large_err,
                reason = "tungstenite's callback signature returns its own error response"
            )]
            let callback = move |req: &Request, resp: Response| {
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let _ = seen.send(format!("{} {auth}", req.uri()));
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
                .await
                .unwrap();
            let event = json!({
                "id": format!("ev{round}"), "type": "CALL_RECEIVED", "account_id": "acc",
                "call_id": format!("call-{round}"), "conference_id": null, "app_id": "app_1",
                "timestamp": "2024-05-01T12:00:03Z", "properties": {"from": "alice"}
            });
            if round == 0 {
                ws.send(Message::text(r#"{"type":"STREAM_LAGGED","missed":3}"#))
                    .await
                    .unwrap();
            }
            ws.send(Message::text(event.to_string())).await.unwrap();
            if round == 0 {
                // A "restart": the server closes the stream.
                ws.close(None).await.unwrap();
            } else {
                // Keep the second connection open until the client goes away.
                use futures_util::StreamExt;
                while ws.next().await.is_some() {}
            }
        }
    });

    let mut child = pbx(tmp.path())
        .env("PBX_URL", format!("http://{addr}"))
        .env("PBX_API_KEY", "sekrit")
        .args([
            "events",
            "--follow",
            "--type",
            "CALL_RECEIVED",
            "--app",
            "app_1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = seen_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        first,
        "/v1/events/ws?types=CALL_RECEIVED&app_id=app_1 Bearer sekrit"
    );
    seen_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "pbx events did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains("CALL_RECEIVED") && lines[0].contains("call=call-0"));
    assert!(lines[0].contains("app=app_1") && lines[0].ends_with("from=alice"));
    assert!(lines[1].contains("call=call-1"));
    assert!(err.contains("3 events were missed"), "{err}");
    assert!(err.contains("reconnect"), "{err}");
}
