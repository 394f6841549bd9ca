//! Shared helpers of the runtime tests: loading the built components and a small runtime.
//!
//! Invariant: components come from `plugins/target/wasm32-wasip2/release/` (built by
//! `scripts/build-plugins.sh`); a missing one fails the test with that instruction.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pbx_plugin::{
    AppInstance, CallContext, CallInfo, CompiledApp, Direction, Runtime, RuntimeConfig,
};

pub(crate) const CALL: &str = "call-1";

/// Reads a built component, or fails with the command that builds it.
pub(crate) fn component(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "plugins",
        "target",
        "wasm32-wasip2",
        "release",
        &format!("{name}.wasm"),
    ]
    .iter()
    .collect();
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => panic!(
            "component {} is missing ({e}): run scripts/build-plugins.sh",
            path.display()
        ),
    }
}

/// A runtime sized for tests: few instances, a 16 MiB memory cap, a 200 ms deadline.
pub(crate) fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 8,
        max_memory_bytes: 16 * 1024 * 1024,
        event_deadline: Duration::from_millis(200),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub(crate) fn compile(rt: &Runtime, name: &str) -> CompiledApp {
    rt.compile_cached(name, &component(name))
        .unwrap_or_else(|e| panic!("{name} does not validate: {} {}", e.code(), e.message()))
}

pub(crate) fn ctx() -> CallContext {
    CallContext::new(CALL, "test-app").with_files(Arc::new(|id| id == "known-file"))
}

pub(crate) fn call_info() -> CallInfo {
    CallInfo {
        id: CALL.into(),
        direction: Direction::Inbound,
        from: "alice".into(),
        to: "1000".into(),
        caller_name: Some("Alice".into()),
        config: vec![("greeting".into(), "hi".into())],
        handed_over: None,
    }
}

pub(crate) async fn instance(rt: &Runtime, name: &str) -> AppInstance {
    let app = compile(rt, name);
    rt.instantiate(&app, ctx()).await.expect("instantiate")
}
