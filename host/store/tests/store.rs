//! Round-trip tests of pbx-store against a temporary data directory, including reopening.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

/// The account every resource of these tests belongs to.
const A: &str = pbx_store::DEFAULT_ACCOUNT_ID;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pbx_store::{
    CallRecord, CallStatus, Direction, HangupBy, HangupReason, Route, Store, StoreError,
};
use serde_json::json;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 123_456_789)
        .unwrap()
}

fn call(id: &str, created: i64, hangup: Option<i64>) -> CallRecord {
    CallRecord {
        id: id.to_owned(),
        account_id: A.into(),
        app_id: Some("app_0123456789abcdef".into()),
        app_version: Some(2),
        direction: Direction::Inbound,
        from: "alice".into(),
        to: "1000".into(),
        status: if hangup.is_some() {
            CallStatus::Hangup
        } else {
            CallStatus::Ringing
        },
        hangup_by: hangup.map(|_| HangupBy::Remote),
        hangup_reason: hangup.map(|_| HangupReason::Normal),
        tm_create: t(created),
        tm_ringing: Some(t(created) + Duration::milliseconds(5)),
        tm_progressing: None,
        tm_hangup: hangup.map(t),
        sip_call_id: Some(format!("{id}@client")),
        master_call_id: None,
    }
}

#[test]
fn apps_create_list_and_conflict() {
    let (_dir, store) = open();
    let a = store.create_app(A, "hello").unwrap();
    assert!(a.id.starts_with("app_") && a.id.len() == 20, "{}", a.id);
    assert_eq!(a.active_version, None);
    let b = store.create_app(A, "ivr.v2_x-y").unwrap();
    assert!(matches!(
        store.create_app(A, "hello"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_app(A, "bad name"),
        Err(StoreError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        store.create_app(A, ""),
        Err(StoreError::Invalid { field: "name", .. })
    ));
    assert_eq!(store.list_apps(A).unwrap(), vec![a.clone(), b]);
    assert_eq!(store.app(A, &a.id).unwrap(), Some(a));
    assert_eq!(store.app(A, "app_0000000000000000").unwrap(), None);
    assert_eq!(store.app(A, "../../etc").unwrap(), None);
}

#[test]
fn versions_are_numbered_and_checked() {
    let (_dir, store) = open();
    let app = store.create_app(A, "hello").unwrap();
    let v1 = store.add_version(A, &app.id, b"\0asm one").unwrap();
    let v2 = store.add_version(A, &app.id, b"\0asm two!").unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v2.size, 9);
    assert_eq!(v1.sha256.len(), 64);
    assert_eq!(
        store.versions(A, &app.id).unwrap(),
        vec![v1.clone(), v2.clone()]
    );
    assert_eq!(store.version(A, &app.id, 2).unwrap(), Some(v2));
    assert_eq!(store.version_bytes(&app.id, 1).unwrap(), b"\0asm one");
    assert!(matches!(
        store.version_bytes(&app.id, 3),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.add_version(A, "app_0000000000000000", b"x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.versions(A, "app_0000000000000000"),
        Err(StoreError::NotFound(_))
    ));
    // Versions of another app count from 1 again.
    let other = store.create_app(A, "other").unwrap();
    assert_eq!(store.add_version(A, &other.id, b"x").unwrap().version, 1);
}

#[test]
fn sha256_is_of_the_bytes() {
    let (_dir, store) = open();
    let app = store.create_app(A, "hello").unwrap();
    let v = store.add_version(A, &app.id, b"abc").unwrap();
    assert_eq!(
        v.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn damaged_component_is_reported() {
    let (dir, store) = open();
    let app = store.create_app(A, "hello").unwrap();
    store.add_version(A, &app.id, b"\0asm one").unwrap();
    let path = dir
        .path()
        .join("components")
        .join(format!("{}-v1.wasm", app.id));
    std::fs::write(&path, b"\0asm 0ne").unwrap();
    assert!(matches!(
        store.version_bytes(&app.id, 1),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn artifacts_match_engine_key_and_checksum() {
    let (dir, store) = open();
    let app = store.create_app(A, "hello").unwrap();
    store.add_version(A, &app.id, b"component").unwrap();
    assert_eq!(store.artifact(&app.id, 1, "engine-a").unwrap(), None);
    store
        .put_artifact(&app.id, 1, "engine-a", b"compiled-a")
        .unwrap();
    assert_eq!(
        store.artifact(&app.id, 1, "engine-a").unwrap().as_deref(),
        Some(&b"compiled-a"[..])
    );
    assert_eq!(store.artifact(&app.id, 1, "engine-b").unwrap(), None);
    store
        .put_artifact(&app.id, 1, "engine-b", b"compiled-b")
        .unwrap();
    assert_eq!(store.artifact(&app.id, 1, "engine-a").unwrap(), None);
    assert_eq!(
        store.artifact(&app.id, 1, "engine-b").unwrap().as_deref(),
        Some(&b"compiled-b"[..])
    );
    assert!(matches!(
        store.put_artifact(&app.id, 2, "engine-a", b"x"),
        Err(StoreError::NotFound(_))
    ));
    let path = dir
        .path()
        .join("artifacts")
        .join(format!("{}-v1.bin", app.id));
    std::fs::write(&path, b"tampered").unwrap();
    assert_eq!(store.artifact(&app.id, 1, "engine-b").unwrap(), None);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(store.artifact(&app.id, 1, "engine-b").unwrap(), None);
}

#[test]
fn deploy_rollback_and_routes() {
    let (_dir, store) = open();
    let app = store.create_app(A, "hello").unwrap();
    store.set_number(A, "1000", &app.id).unwrap();
    assert_eq!(store.route("1000").unwrap(), None, "nothing deployed yet");
    assert!(matches!(
        store.deploy(A, &app.id, 1),
        Err(StoreError::NotFound(_))
    ));
    store.add_version(A, &app.id, b"one").unwrap();
    store.add_version(A, &app.id, b"two").unwrap();
    assert_eq!(store.deploy(A, &app.id, 2).unwrap().active_version, Some(2));
    assert_eq!(
        store.route("1000").unwrap(),
        Some(Route {
            app_id: app.id.clone(),
            account_id: A.into(),
            version: 2
        })
    );
    // Rollback is deploying an earlier version.
    store.deploy(A, &app.id, 1).unwrap();
    assert_eq!(store.route("1000").unwrap().map(|r| r.version), Some(1));
    assert_eq!(
        store.app(A, &app.id).unwrap().unwrap().active_version,
        Some(1)
    );
    assert!(matches!(
        store.deploy(A, "app_0000000000000000", 1),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.route("2000").unwrap(), None);
}

#[test]
fn numbers_bind_rebind_and_delete() {
    let (_dir, store) = open();
    let a = store.create_app(A, "a").unwrap();
    let b = store.create_app(A, "b").unwrap();
    store.set_number(A, "+49*30#1", &a.id).unwrap();
    store.set_number(A, "1000", &a.id).unwrap();
    let rebound = store.set_number(A, "1000", &b.id).unwrap();
    assert_eq!(rebound.app_id, b.id);
    let numbers = store.list_numbers(A).unwrap();
    assert_eq!(
        numbers
            .iter()
            .map(|n| (n.number.as_str(), n.app_id.as_str()))
            .collect::<Vec<_>>(),
        vec![("+49*30#1", a.id.as_str()), ("1000", b.id.as_str())]
    );
    assert_eq!(store.number(A, "1000").unwrap(), Some(rebound));
    assert!(matches!(
        store.set_number(A, "10 00", &a.id),
        Err(StoreError::Invalid {
            field: "number",
            ..
        })
    ));
    assert!(matches!(
        store.set_number(A, "1001", "app_0000000000000000"),
        Err(StoreError::NotFound(_))
    ));
    store.delete_number(A, "1000").unwrap();
    assert!(matches!(
        store.delete_number(A, "1000"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_numbers(A).unwrap().len(), 1);
}

#[test]
fn files_round_trip() {
    let (_dir, store) = open();
    let meta = json!({"format": "wav", "rate": 8000, "channels": 1, "duration_ms": 1500});
    let f = store
        .add_file(
            A,
            Some("greeting.wav".into()),
            "audio/wav",
            b"RIFF....",
            meta.clone(),
        )
        .unwrap();
    assert!(f.id.starts_with("file_"), "{}", f.id);
    assert_eq!(f.size, 8);
    assert_eq!(f.meta, meta);
    assert!(store.file_exists(A, &f.id).unwrap());
    assert!(!store.file_exists(A, "file_0000000000000000").unwrap());
    assert!(!store.file_exists(A, "../pbx.sqlite3").unwrap());
    assert_eq!(store.file(A, &f.id).unwrap(), Some(f.clone()));
    assert_eq!(store.file_bytes(&f.id).unwrap(), b"RIFF....");
    assert!(matches!(
        store.file_bytes("file_0000000000000000"),
        Err(StoreError::NotFound(_))
    ));
    let g = store
        .add_file(A, None, "audio/mpeg", b"ID3", json!({}))
        .unwrap();
    assert_eq!(store.list_files(A).unwrap(), vec![f, g]);
    assert!(matches!(
        store.add_file(A, Some("bad\nname".into()), "audio/wav", b"x", json!({})),
        Err(StoreError::Invalid { field: "name", .. })
    ));
}

#[test]
fn calls_upsert_and_history_pages() {
    let (_dir, store) = open();
    let live = call("c-live", 0, None);
    store.upsert_call(&live).unwrap();
    assert_eq!(store.call(A, "c-live").unwrap(), Some(live.clone()));
    assert_eq!(
        store.history(A, 10, None).unwrap(),
        vec![],
        "live calls are not history"
    );

    // Update on hangup: the whole record is replaced.
    let mut ended = live.clone();
    ended.status = CallStatus::Hangup;
    ended.hangup_by = Some(HangupBy::Local);
    ended.hangup_reason = Some(HangupReason::AppError);
    ended.tm_hangup = Some(t(30));
    store.upsert_call(&ended).unwrap();
    assert_eq!(store.call(A, "c-live").unwrap(), Some(ended.clone()));

    store.upsert_call(&call("c1", 1, Some(10))).unwrap();
    store.upsert_call(&call("c2", 2, Some(20))).unwrap();
    store.upsert_call(&call("c3", 3, Some(20))).unwrap(); // same hangup, later create
    store.upsert_call(&call("c4", 4, Some(40))).unwrap();
    let ids = |calls: Vec<CallRecord>| calls.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.history(A, 10, None).unwrap()),
        ["c4", "c-live", "c3", "c2", "c1"]
    );
    assert_eq!(ids(store.history(A, 2, None).unwrap()), ["c4", "c-live"]);
    assert_eq!(
        ids(store.history(A, 2, Some("c-live")).unwrap()),
        ["c3", "c2"]
    );
    assert_eq!(ids(store.history(A, 2, Some("c2")).unwrap()), ["c1"]);
    assert_eq!(
        ids(store.history(A, 2, Some("c1")).unwrap()),
        Vec::<String>::new()
    );
    assert!(matches!(
        store.history(A, 2, Some("nope")),
        Err(StoreError::Invalid {
            field: "before",
            ..
        })
    ));
    assert!(matches!(
        store.upsert_call(&call("", 0, None)),
        Err(StoreError::Invalid { field: "id", .. })
    ));
}

#[test]
fn call_record_json_shape() {
    let c = call("c1", 0, Some(10));
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["direction"], "inbound");
    assert_eq!(v["status"], "hangup");
    assert_eq!(v["hangup_by"], "remote");
    assert_eq!(v["hangup_reason"], "normal");
    assert_eq!(v["tm_progressing"], serde_json::Value::Null);
    assert_eq!(v["tm_create"], "2023-11-14T22:13:20.123456789Z");
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 16, "{keys:?}");
    assert_eq!(v["account_id"], A);
    let back: CallRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, c);
}

#[test]
fn interrupted_calls_are_closed() {
    let (_dir, store) = open();
    store.upsert_call(&call("open", 0, None)).unwrap();
    store.upsert_call(&call("done", 1, Some(5))).unwrap();
    assert_eq!(store.close_interrupted_calls(t(100)).unwrap(), 1);
    let closed = store.call(A, "open").unwrap().unwrap();
    assert_eq!(closed.status, CallStatus::Hangup);
    assert_eq!(closed.hangup_reason, Some(HangupReason::Failed));
    assert_eq!(closed.tm_hangup, Some(t(100)));
    assert_eq!(store.close_interrupted_calls(t(200)).unwrap(), 0);
}

#[test]
fn concurrent_uploads_get_distinct_versions() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let app = store.create_app(A, "hello").unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let id = app.id.clone();
            std::thread::spawn(move || {
                store
                    .add_version(A, &id, format!("v{i}").as_bytes())
                    .unwrap()
            })
        })
        .collect();
    let mut versions: Vec<u32> = handles
        .into_iter()
        .map(|h| h.join().unwrap().version)
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    for v in store.versions(A, &app.id).unwrap() {
        let bytes = store.version_bytes(&app.id, v.version).unwrap();
        assert_eq!(bytes.len() as u64, v.size);
    }
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (app, file, finished) = {
        let store = Store::open(dir.path()).unwrap();
        let app = store.create_app(A, "hello").unwrap();
        store.add_version(A, &app.id, b"one").unwrap();
        store.add_version(A, &app.id, b"two").unwrap();
        store.put_artifact(&app.id, 2, "key", b"compiled").unwrap();
        let app = store.deploy(A, &app.id, 2).unwrap();
        store.set_number(A, "1000", &app.id).unwrap();
        let file = store
            .add_file(
                A,
                Some("hi".into()),
                "audio/wav",
                b"RIFF",
                json!({"rate": 8000}),
            )
            .unwrap();
        let finished = call("c1", 0, Some(3));
        store.upsert_call(&finished).unwrap();
        (app, file, finished)
    };
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.list_apps(A).unwrap(), vec![app.clone()]);
    assert_eq!(store.versions(A, &app.id).unwrap().len(), 2);
    assert_eq!(store.version_bytes(&app.id, 1).unwrap(), b"one");
    assert_eq!(
        store.artifact(&app.id, 2, "key").unwrap().as_deref(),
        Some(&b"compiled"[..])
    );
    assert_eq!(
        store.route("1000").unwrap(),
        Some(Route {
            app_id: app.id.clone(),
            account_id: A.into(),
            version: 2
        })
    );
    assert_eq!(store.file(A, &file.id).unwrap(), Some(file.clone()));
    assert_eq!(store.file_bytes(&file.id).unwrap(), b"RIFF");
    assert_eq!(store.history(A, 10, None).unwrap(), vec![finished]);
    // Ids keep counting where they were.
    assert_eq!(store.add_version(A, &app.id, b"three").unwrap().version, 3);
}
