//! `pbx serve` refuses to start, with a non-zero exit and a message naming the problem, when a
//! port is taken or the data directory is unusable.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

use pbx_tests::paths::pbx_binary;

/// Runs `pbx serve` with `args` and returns (exit code, stderr); it must exit by itself.
fn serve(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(pbx_binary().unwrap())
        .arg("serve")
        .args(args)
        .env_remove("PBX_CONFIG")
        .env_remove("PBX_EXAMPLE_APPS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
            }
            return (status.code(), stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("pbx serve {args:?} did not exit on its own");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `pbx serve` on the given SIP and HTTP addresses and data directory.
fn serve_on(sip: &str, http: &str, data: &std::path::Path) -> (Option<i32>, String) {
    serve(&[
        "--sip",
        sip,
        "--http",
        http,
        "--data",
        data.to_str().unwrap(),
        "--admin-token",
        "startup-test-token",
    ])
}

#[test]
fn taken_sip_port_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sip = taken.local_addr().unwrap().to_string();
    let (code, stderr) = serve_on(&sip, "127.0.0.1:0", data.path());
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {stderr}");
    assert!(
        stderr.contains("cannot bind SIP UDP") && stderr.contains(&sip),
        "message does not name the SIP port: {stderr}"
    );
}

#[test]
fn taken_http_port_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = taken.local_addr().unwrap().to_string();
    let (code, stderr) = serve_on("127.0.0.1:0", &http, data.path());
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {stderr}");
    assert!(
        stderr.contains("admin API") && stderr.contains(&http),
        "message does not name the HTTP port: {stderr}"
    );
}

#[test]
fn unusable_data_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let (code, stderr) = serve_on("127.0.0.1:0", "127.0.0.1:0", &file);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {stderr}");
    assert!(
        stderr.contains("data directory") && stderr.contains("not-a-directory"),
        "message does not name the data directory: {stderr}"
    );
}
