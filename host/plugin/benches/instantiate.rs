//! Per-call costs of the plugin runtime: instantiating hello from the pooling allocator, and
//! delivering one event (`on_dtmf`) to a live instance.
//!
//! Needs the built components (scripts/build-plugins.sh). Quick check:
//! `cargo bench -p pbx-plugin --bench instantiate -- --test`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_plugin::{CallContext, CallInfo, Direction, Runtime, RuntimeConfig};

fn hello_bytes() -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "../../plugins/target/wasm32-wasip2/release/hello.wasm",
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run scripts/build-plugins.sh",
            path.display()
        )
    })
}

fn ctx() -> CallContext {
    CallContext::new("call-1", "bench").with_files(Arc::new(|_| false))
}

fn bench(c: &mut Criterion) {
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("plugin runtime");
    let app = runtime
        .compile_cached("hello", &hello_bytes())
        .expect("hello compiles");

    c.bench_function("instantiate hello (pooling)", |b| {
        b.iter(|| {
            executor
                .block_on(runtime.instantiate(&app, ctx()))
                .expect("instantiate")
        })
    });

    let info = CallInfo {
        id: "call-1".into(),
        direction: Direction::Inbound,
        from: "alice".into(),
        to: "1000".into(),
        caller_name: None,
        config: Vec::new(),
        handed_over: None,
    };
    let mut instance = executor
        .block_on(runtime.instantiate(&app, ctx()))
        .expect("instantiate");
    executor
        .block_on(instance.on_call_received(&info))
        .expect("on_call_received");
    c.bench_function("deliver on_dtmf to hello", |b| {
        b.iter(|| {
            executor
                .block_on(instance.on_dtmf("call-1", "5"))
                .expect("on_dtmf")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
