//! Misbehaving apps: each failure is reported as its `AppError` within a bounded time,
//! poisons only its own instance, and is counted; a hello instance in the same runtime keeps
//! working afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::time::{Duration, Instant};

use common::{CALL, call_info, compile, ctx, instance, runtime};
use pbx_plugin::{Action, AppError, PluginError, Runtime, RuntimeConfig};

/// Generous bound for a 200 ms deadline on a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(5);

async fn hello_still_works(rt: &Runtime) {
    let mut hello = instance(rt, "hello").await;
    let actions = hello.on_call_received(&call_info()).await.unwrap();
    assert_eq!(actions.first(), Some(&Action::Answer { call: CALL.into() }));
}

#[tokio::test]
async fn a_panic_is_a_trap_with_the_panic_message() {
    let rt = runtime();
    let mut app = instance(&rt, "trap").await;
    let started = Instant::now();
    let err = app.on_call_received(&call_info()).await.unwrap_err();
    assert!(started.elapsed() < BOUND);
    match &err {
        AppError::Trap(msg) => {
            assert!(msg.contains("unreachable"), "{msg}");
            assert!(
                msg.contains("panicked at") && msg.contains("deliberate panic"),
                "{msg}"
            );
            assert!(!msg.contains("RUST_BACKTRACE"), "{msg}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    // Poisoned: the same error again, without entering wasm.
    assert_eq!(app.on_dtmf(CALL, "1").await.unwrap_err(), err);
    assert_eq!(app.failed(), Some(&err));
    assert_eq!(rt.stats().traps, 1);
    hello_still_works(&rt).await;
}

#[tokio::test]
async fn an_endless_loop_hits_the_deadline() {
    let rt = runtime();
    let mut app = instance(&rt, "spin").await;
    let started = Instant::now();
    let err = app.on_call_received(&call_info()).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, AppError::Deadline);
    assert!(
        took >= Duration::from_millis(150),
        "stopped too early: {took:?}"
    );
    assert!(took < BOUND, "took {took:?}");
    assert_eq!(rt.stats().deadlines, 1);
    assert_eq!(
        app.on_dtmf(CALL, "1").await.unwrap_err(),
        AppError::Deadline
    );
    hello_still_works(&rt).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_app_does_not_block_other_tasks() {
    let rt = runtime();
    let mut app = instance(&rt, "spin").await;
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    // On a single-threaded executor this task only runs if the spinning app yields.
    let other = tokio::spawn(async move {
        loop {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(
        app.on_call_received(&call_info()).await.unwrap_err(),
        AppError::Deadline
    );
    other.abort();
    let n = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        n >= 5,
        "the other task ran only {n} times during the 200 ms deadline"
    );
}

#[tokio::test]
async fn a_memory_hog_is_out_of_memory() {
    let rt = runtime();
    let mut app = instance(&rt, "hog").await;
    let started = Instant::now();
    let err = app.on_call_received(&call_info()).await.unwrap_err();
    assert!(started.elapsed() < BOUND);
    assert_eq!(err, AppError::OutOfMemory);
    assert_eq!(rt.stats().out_of_memory, 1);
    hello_still_works(&rt).await;
}

#[tokio::test]
async fn failures_are_isolated_between_instances_of_one_runtime() {
    let rt = runtime();
    let mut hello = instance(&rt, "hello").await;
    let mut trap = instance(&rt, "trap").await;
    let mut spin = instance(&rt, "spin").await;
    let mut hog = instance(&rt, "hog").await;
    hello.on_call_received(&call_info()).await.unwrap();
    assert!(matches!(
        trap.on_call_received(&call_info()).await,
        Err(AppError::Trap(_))
    ));
    assert_eq!(
        spin.on_call_received(&call_info()).await,
        Err(AppError::Deadline)
    );
    assert_eq!(
        hog.on_call_received(&call_info()).await,
        Err(AppError::OutOfMemory)
    );
    // The hello instance created before the failures is untouched.
    assert_eq!(hello.on_dtmf(CALL, "3").await.unwrap().len(), 1);
    let stats = rt.stats();
    assert_eq!(
        (stats.traps, stats.deadlines, stats.out_of_memory),
        (1, 1, 1)
    );
    assert_eq!(stats.instances, 4);
}

#[tokio::test]
async fn the_pool_refuses_instances_beyond_max_instances() {
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 2,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let app = compile(&rt, "hello");
    let a = rt.instantiate(&app, ctx()).await.unwrap();
    let _b = rt.instantiate(&app, ctx()).await.unwrap();
    assert!(matches!(
        rt.instantiate(&app, ctx()).await,
        Err(PluginError::AtCapacity(2))
    ));
    drop(a);
    // A slot is free again once an instance is dropped.
    assert!(rt.instantiate(&app, ctx()).await.is_ok());
}

/// A failed instance gives its pool slot back when it is dropped, whatever the failure: many
/// more failing sessions than slots run one after another, and a good app still instantiates.
#[tokio::test]
async fn failed_instances_give_their_slots_back() {
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 2,
        max_memory_bytes: 16 * 1024 * 1024,
        event_deadline: Duration::from_millis(20),
        ..RuntimeConfig::default()
    })
    .unwrap();
    for name in ["trap", "spin", "hog"] {
        let app = compile(&rt, name);
        for round in 0..6 {
            let mut failing = rt
                .instantiate(&app, ctx())
                .await
                .unwrap_or_else(|e| panic!("{name} round {round}: {e}"));
            assert!(failing.on_call_received(&call_info()).await.is_err());
            drop(failing);
        }
    }
    hello_still_works(&rt).await;
}
