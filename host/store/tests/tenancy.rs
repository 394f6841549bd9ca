//! Accounts, API keys, per-account scoping of every resource, quotas, version deletion,
//! app settings, configuration merging and key-value limits, against a temporary store.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

use std::collections::BTreeMap;

use pbx_store::{
    AppSettingsPatch, ConferenceRecord, DEFAULT_ACCOUNT_ID, NewRecording, NewTrunk, Quotas,
    QuotasPatch, RecordingFilter, RecordingTarget, Store, StoreError,
};
use serde_json::json;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn two_accounts(store: &Store) -> (String, String) {
    let a = store.create_account("alpha", Quotas::default()).unwrap();
    let b = store.create_account("beta", Quotas::default()).unwrap();
    (a.id, b.id)
}

#[test]
fn accounts_are_created_listed_and_patched() {
    let (_dir, store) = open();
    let all = store.accounts().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, DEFAULT_ACCOUNT_ID);
    assert_eq!(all[0].name, "default");
    assert_eq!(all[0].quotas, Quotas::default());

    let a = store
        .create_account(
            "alpha",
            Quotas {
                max_apps: Some(3),
                ..Quotas::default()
            },
        )
        .unwrap();
    assert!(a.id.starts_with("acc_") && a.id.len() == 20, "{}", a.id);
    assert!(matches!(
        store.create_account("alpha", Quotas::default()),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_account("bad name", Quotas::default()),
        Err(StoreError::Invalid { field: "name", .. })
    ));
    assert_eq!(store.account(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.account("acc_ffffffffffffffff").unwrap(), None);
    assert_eq!(store.account("nope").unwrap(), None);

    let patched = store
        .update_account_quotas(
            &a.id,
            QuotasPatch {
                max_apps: Some(None),
                max_storage_bytes: Some(Some(1000)),
                ..QuotasPatch::default()
            },
        )
        .unwrap();
    assert_eq!(
        patched.quotas,
        Quotas {
            max_concurrent_calls: None,
            max_apps: None,
            max_storage_bytes: Some(1000),
        }
    );
    assert_eq!(store.account_quotas(&a.id).unwrap(), patched.quotas);
    assert!(matches!(
        store.update_account_quotas("acc_ffffffffffffffff", QuotasPatch::default()),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn api_keys_are_shown_once_and_revocable() {
    let (_dir, store) = open();
    let (a, b) = two_accounts(&store);
    let (meta, key) = store.create_api_key(&a, "ci").unwrap();
    assert!(key.starts_with("pbx_") && key.len() == 44, "{key}");
    assert!(key[4..].bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(meta.prefix, key[..12]);
    assert!(meta.id.starts_with("key_"));
    assert_eq!(meta.account_id, a);
    // The key itself is nowhere in what is listed.
    let listed = serde_json::to_string(&store.api_keys(&a).unwrap()).unwrap();
    assert!(!listed.contains(&key));
    assert!(store.api_keys(&b).unwrap().is_empty());

    assert_eq!(store.account_for_key(&key).unwrap(), Some(a.clone()));
    assert_eq!(store.account_for_key("pbx_0000").unwrap(), None);
    assert_eq!(store.account_for_key("something").unwrap(), None);
    let used = store.api_keys(&a).unwrap();
    assert!(used[0].last_used_at.is_some());

    // Another account cannot revoke it.
    assert!(matches!(
        store.revoke_api_key(&b, &meta.id),
        Err(StoreError::NotFound(_))
    ));
    let revoked = store.revoke_api_key(&a, &meta.id).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(store.account_for_key(&key).unwrap(), None);
    // Revoking again keeps the first time.
    assert_eq!(
        store.revoke_api_key(&a, &meta.id).unwrap().revoked_at,
        revoked.revoked_at
    );
    assert!(matches!(
        store.create_api_key("acc_ffffffffffffffff", "x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_api_key(&a, ""),
        Err(StoreError::Invalid { field: "name", .. })
    ));
}

#[test]
fn every_resource_is_scoped_by_account() {
    let (_dir, store) = open();
    let (a, b) = two_accounts(&store);

    let app = store.create_app(&a, "hello").unwrap();
    assert_eq!(app.account_id, a);
    // App names are unique per account only.
    store.create_app(&b, "hello").unwrap();
    assert!(matches!(
        store.create_app(&a, "hello"),
        Err(StoreError::Conflict(_))
    ));
    store.add_version(&a, &app.id, b"\0asm one").unwrap();
    store.deploy(&a, &app.id, 1).unwrap();
    store.set_number(&a, "1000", &app.id).unwrap();
    let file = store
        .add_file(&a, None, "audio/wav", b"RIFF", json!({}))
        .unwrap();
    let trunk = store
        .create_trunk(&a, NewTrunk::new("gw", "sip:gw.example.com"))
        .unwrap();
    store
        .create_trunk(&b, NewTrunk::new("gw", "sip:gw.example.com"))
        .unwrap();
    let user = store
        .create_sip_user(&a, "alice", "correct horse", None, "pbx")
        .unwrap();
    let mut call = pbx_store::CallRecord {
        id: "call-a".into(),
        account_id: a.clone(),
        app_id: Some(app.id.clone()),
        app_version: Some(1),
        direction: pbx_store::Direction::Inbound,
        from: "x".into(),
        to: "1000".into(),
        status: pbx_store::CallStatus::Hangup,
        hangup_by: None,
        hangup_reason: None,
        tm_create: chrono::Utc::now(),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: Some(chrono::Utc::now()),
        sip_call_id: None,
        master_call_id: None,
    };
    store.upsert_call(&call).unwrap();
    call.id = "call-a2".into();
    call.master_call_id = Some("call-a".into());
    store.upsert_call(&call).unwrap();
    let conference = ConferenceRecord {
        id: "cnf_0123456789abcdef".into(),
        account_id: a.clone(),
        app_id: Some(app.id.clone()),
        name: None,
        created_at: chrono::Utc::now(),
        ended_at: None,
    };
    store.upsert_conference(&conference).unwrap();
    let recording = store
        .start_recording(NewRecording {
            id: None,
            account_id: a.clone(),
            app_id: app.id.clone(),
            call_id: Some("call-a".into()),
            conference_id: None,
            target: RecordingTarget::Call,
            per_participant: false,
            stereo: false,
            metadata: BTreeMap::new(),
        })
        .unwrap();

    // The owner sees everything.
    assert!(store.app(&a, &app.id).unwrap().is_some());
    assert!(store.number(&a, "1000").unwrap().is_some());
    assert!(store.file(&a, &file.id).unwrap().is_some());
    assert!(store.file_exists(&a, &file.id).unwrap());
    assert!(store.trunk(&a, &trunk.id).unwrap().is_some());
    assert!(store.sip_user(&a, &user.id).unwrap().is_some());
    assert!(store.call(&a, "call-a").unwrap().is_some());
    assert_eq!(store.history(&a, 10, None).unwrap().len(), 2);
    assert_eq!(store.chained_call_ids(&a, "call-a").unwrap(), ["call-a2"]);
    assert!(store.conference(&a, &conference.id).unwrap().is_some());
    assert!(store.recording(&a, &recording.id).unwrap().is_some());

    // The other account sees nothing, exactly as if it did not exist.
    assert_eq!(store.app(&b, &app.id).unwrap(), None);
    assert!(matches!(
        store.versions(&b, &app.id),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.version(&b, &app.id, 1).unwrap(), None);
    assert!(matches!(
        store.add_version(&b, &app.id, b"x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.deploy(&b, &app.id, 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_version(&b, &app.id, 1),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_apps(&b).unwrap().len(), 1);
    assert_eq!(store.number(&b, "1000").unwrap(), None);
    assert!(store.list_numbers(&b).unwrap().is_empty());
    assert!(matches!(
        store.delete_number(&b, "1000"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_number(&b, "1000", &app.id),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.file(&b, &file.id).unwrap(), None);
    assert!(!store.file_exists(&b, &file.id).unwrap());
    assert!(store.list_files(&b).unwrap().is_empty());
    assert_eq!(store.trunk(&b, &trunk.id).unwrap(), None);
    assert_eq!(store.list_trunks(&b).unwrap().len(), 1);
    assert!(matches!(
        store.delete_trunk(&b, &trunk.id),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_trunk(&b, &trunk.id, Default::default()),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.trunks_for_dial(&b, None).unwrap()[0].account_id,
        b.clone()
    );
    assert_eq!(store.sip_user(&b, &user.id).unwrap(), None);
    assert!(store.list_sip_users(&b).unwrap().is_empty());
    assert!(matches!(
        store.set_sip_user_password(&b, &user.id, "another pass", "pbx"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_sip_user(&b, &user.id),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.call(&b, "call-a").unwrap(), None);
    assert!(store.history(&b, 10, None).unwrap().is_empty());
    assert!(matches!(
        store.history(&b, 10, Some("call-a")),
        Err(StoreError::Invalid {
            field: "before",
            ..
        })
    ));
    assert!(store.chained_call_ids(&b, "call-a").unwrap().is_empty());
    assert_eq!(store.conference(&b, &conference.id).unwrap(), None);
    assert!(store.list_conferences(&b, 10).unwrap().is_empty());
    assert_eq!(store.recording(&b, &recording.id).unwrap(), None);
    assert!(
        store
            .list_recordings(&b, &RecordingFilter::default())
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recording_file(&b, &recording.id, 0).unwrap(), None);
    assert!(matches!(
        store.delete_recording(&b, &recording.id),
        Err(StoreError::NotFound(_))
    ));

    // Numbers and SIP user names are unique across the server.
    let b_app = store.list_apps(&b).unwrap().remove(0);
    match store.set_number(&b, "1000", &b_app.id) {
        Err(StoreError::Conflict(m)) => assert_eq!(m, "number is taken"),
        other => panic!("{other:?}"),
    }
    match store.create_sip_user(&b, "alice", "correct horse", None, "pbx") {
        Err(StoreError::Conflict(m)) => assert_eq!(m, "username is taken"),
        other => panic!("{other:?}"),
    }
    // The SIP side routes without an account and learns it.
    let route = store.route("1000").unwrap().unwrap();
    assert_eq!(
        (route.app_id.as_str(), route.account_id.as_str()),
        (app.id.as_str(), a.as_str())
    );
    assert_eq!(
        store
            .sip_user_by_username("alice")
            .unwrap()
            .unwrap()
            .account_id,
        a
    );
    assert_eq!(store.app_account(&app.id).unwrap(), Some(a.clone()));
}

#[test]
fn quotas_refuse_apps_and_storage() {
    let (_dir, store) = open();
    let acc = store
        .create_account(
            "small",
            Quotas {
                max_concurrent_calls: Some(1),
                max_apps: Some(1),
                max_storage_bytes: Some(20),
            },
        )
        .unwrap()
        .id;
    let app = store.create_app(&acc, "one").unwrap();
    match store.create_app(&acc, "two") {
        Err(StoreError::QuotaExceeded {
            quota,
            limit,
            message,
        }) => {
            assert_eq!((quota, limit), ("max_apps", 1));
            assert!(message.contains("max_apps = 1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    store.add_version(&acc, &app.id, &[0u8; 12]).unwrap();
    match store.add_version(&acc, &app.id, &[0u8; 9]) {
        Err(StoreError::QuotaExceeded {
            quota,
            limit,
            message,
        }) => {
            assert_eq!((quota, limit), ("max_storage_bytes", 20));
            assert!(message.contains("max_storage_bytes = 20"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.add_file(&acc, None, "audio/wav", &[0u8; 9], json!({})),
        Err(StoreError::QuotaExceeded {
            quota: "max_storage_bytes",
            ..
        })
    ));
    store
        .add_file(&acc, None, "audio/wav", &[0u8; 8], json!({}))
        .unwrap();
    let usage = store.account_usage(&acc).unwrap();
    assert_eq!((usage.apps, usage.storage_bytes), (1, 20));
    // Nothing was left behind by the refused uploads.
    assert_eq!(store.versions(&acc, &app.id).unwrap().len(), 1);
    assert_eq!(store.list_files(&acc).unwrap().len(), 1);
    // The default account is unlimited.
    for i in 0..3 {
        store
            .create_app(DEFAULT_ACCOUNT_ID, &format!("app{i}"))
            .unwrap();
    }
}

#[test]
fn deleting_accounts() {
    let (_dir, store) = open();
    let (a, b) = two_accounts(&store);
    assert!(matches!(
        store.delete_account(DEFAULT_ACCOUNT_ID),
        Err(StoreError::Conflict(_))
    ));
    let app = store.create_app(&a, "x").unwrap();
    match store.delete_account(&a) {
        Err(StoreError::Conflict(m)) => assert!(m.contains("apps"), "{m}"),
        other => panic!("{other:?}"),
    }
    let _ = app;
    let (_, key) = store.create_api_key(&b, "k").unwrap();
    store
        .upsert_conference(&ConferenceRecord {
            id: "cnf_00000000000000bb".into(),
            account_id: b.clone(),
            app_id: None,
            name: None,
            created_at: chrono::Utc::now(),
            ended_at: None,
        })
        .unwrap();
    store.delete_account(&b).unwrap();
    assert_eq!(store.account(&b).unwrap(), None);
    assert_eq!(store.account_for_key(&key).unwrap(), None);
    assert!(matches!(
        store.delete_account(&b),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn versions_are_deleted_but_numbers_never_reused() {
    let (dir, store) = open();
    let app = store.create_app(DEFAULT_ACCOUNT_ID, "hot").unwrap();
    for bytes in [b"\0asm v1".as_slice(), b"\0asm v2", b"\0asm v3"] {
        store
            .add_version(DEFAULT_ACCOUNT_ID, &app.id, bytes)
            .unwrap();
    }
    store.deploy(DEFAULT_ACCOUNT_ID, &app.id, 3).unwrap();
    store
        .put_artifact(&app.id, 2, "engine", b"compiled")
        .unwrap();
    store
        .set_app_config(DEFAULT_ACCOUNT_ID, &app.id, Some(2), "x", "y", false)
        .unwrap();
    assert!(matches!(
        store.delete_version(DEFAULT_ACCOUNT_ID, &app.id, 3),
        Err(StoreError::Conflict(_))
    ));
    store
        .delete_version(DEFAULT_ACCOUNT_ID, &app.id, 2)
        .unwrap();
    let component = dir
        .path()
        .join("components")
        .join(format!("{}-v2.wasm", app.id));
    assert!(!component.exists());
    assert!(
        !dir.path()
            .join("artifacts")
            .join(format!("{}-v2.bin", app.id))
            .exists()
    );
    assert_eq!(store.artifact(&app.id, 2, "engine").unwrap(), None);
    assert!(
        store
            .app_config(DEFAULT_ACCOUNT_ID, &app.id)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_version(DEFAULT_ACCOUNT_ID, &app.id, 2),
        Err(StoreError::NotFound(_))
    ));
    // Delete the newest non-active one too: the counter still moves on.
    store.deploy(DEFAULT_ACCOUNT_ID, &app.id, 1).unwrap();
    store
        .delete_version(DEFAULT_ACCOUNT_ID, &app.id, 3)
        .unwrap();
    let next = store
        .add_version(DEFAULT_ACCOUNT_ID, &app.id, b"\0asm v4")
        .unwrap();
    assert_eq!(next.version, 4);
    let numbers: Vec<u32> = store
        .versions(DEFAULT_ACCOUNT_ID, &app.id)
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, [1, 4]);
    // Rollback to an older version is a deploy.
    store.deploy(DEFAULT_ACCOUNT_ID, &app.id, 4).unwrap();
    let app = store.deploy(DEFAULT_ACCOUNT_ID, &app.id, 1).unwrap();
    assert_eq!(app.active_version, Some(1));
}

#[test]
fn app_settings_default_patch_and_validate() {
    let (_dir, store) = open();
    let (a, b) = two_accounts(&store);
    let app = store.create_app(&a, "s").unwrap();
    let defaults = store.app_settings(&app.id).unwrap();
    assert!(!defaults.kv_enabled);
    assert_eq!(defaults.kv_max_bytes, 1024 * 1024);
    assert!(defaults.http_allow.is_empty());
    assert_eq!(defaults.http_timeout_ms, 5000);
    assert_eq!(defaults.max_memory_bytes, None);

    let set = store
        .update_app_settings(
            &a,
            &app.id,
            AppSettingsPatch {
                kv_enabled: Some(true),
                http_allow: Some(vec!["api.example.com".into(), "10.0.0.1:8080".into()]),
                max_memory_bytes: Some(Some(64 * 1024 * 1024)),
                event_deadline_ms: Some(Some(200)),
                ..AppSettingsPatch::default()
            },
        )
        .unwrap();
    assert!(set.kv_enabled);
    assert_eq!(store.app_settings(&app.id).unwrap(), set);
    // A patch keeps what it does not name; `Some(None)` returns to the server default.
    let set = store
        .update_app_settings(
            &a,
            &app.id,
            AppSettingsPatch {
                event_deadline_ms: Some(None),
                ..AppSettingsPatch::default()
            },
        )
        .unwrap();
    assert_eq!(set.event_deadline_ms, None);
    assert_eq!(set.max_memory_bytes, Some(64 * 1024 * 1024));

    for (patch, field) in [
        (
            AppSettingsPatch {
                max_memory_bytes: Some(Some(512 * 1024 * 1024)),
                ..AppSettingsPatch::default()
            },
            "max_memory_bytes",
        ),
        (
            AppSettingsPatch {
                event_deadline_ms: Some(Some(5001)),
                ..AppSettingsPatch::default()
            },
            "event_deadline_ms",
        ),
        (
            AppSettingsPatch {
                http_allow: Some(vec!["Upper.Example.com".into()]),
                ..AppSettingsPatch::default()
            },
            "http_allow",
        ),
        (
            AppSettingsPatch {
                http_timeout_ms: Some(30_001),
                ..AppSettingsPatch::default()
            },
            "http_timeout_ms",
        ),
    ] {
        match store.update_app_settings(&a, &app.id, patch) {
            Err(StoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(store.app_settings(&app.id).unwrap(), set);
    assert!(matches!(
        store.update_app_settings(&b, &app.id, AppSettingsPatch::default()),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn config_merges_version_over_app_wide() {
    let (_dir, store) = open();
    let (a, b) = two_accounts(&store);
    let app = store.create_app(&a, "c").unwrap();
    store.add_version(&a, &app.id, b"\0asm 1").unwrap();
    store.add_version(&a, &app.id, b"\0asm 2").unwrap();
    store
        .set_app_config(&a, &app.id, None, "greeting", "hello", false)
        .unwrap();
    store
        .set_app_config(&a, &app.id, None, "token", "s3cret", true)
        .unwrap();
    store
        .set_app_config(&a, &app.id, Some(2), "greeting", "hi", false)
        .unwrap();
    assert!(matches!(
        store.set_app_config(&a, &app.id, Some(9), "x", "y", false),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_app_config(&a, &app.id, None, "bad name", "y", false),
        Err(StoreError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        store.set_app_config(&b, &app.id, None, "x", "y", false),
        Err(StoreError::NotFound(_))
    ));
    let pairs = |v: u32| -> Vec<(String, String, bool)> {
        store
            .app_config_for(&app.id, v)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value, e.secret))
            .collect()
    };
    assert_eq!(
        pairs(1),
        [
            ("greeting".into(), "hello".into(), false),
            ("token".into(), "s3cret".into(), true)
        ]
    );
    assert_eq!(
        pairs(2),
        [
            ("greeting".into(), "hi".into(), false),
            ("token".into(), "s3cret".into(), true)
        ]
    );
    let listed = store.app_config(&a, &app.id).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2].version, Some(2));
    store
        .delete_app_config(&a, &app.id, "greeting", Some(2))
        .unwrap();
    assert_eq!(pairs(2)[0].1, "hello");
    assert!(matches!(
        store.delete_app_config(&a, &app.id, "greeting", Some(2)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn kv_limits_and_listing() {
    let (_dir, store) = open();
    let app = store.create_app(DEFAULT_ACCOUNT_ID, "kv").unwrap();
    let id = app.id.as_str();
    store.kv_set(id, "user:1", b"alice", 100).unwrap();
    store.kv_set(id, "user:2", b"bob", 100).unwrap();
    store.kv_set(id, "other", b"x", 100).unwrap();
    assert_eq!(
        store.kv_get(id, "user:1").unwrap().as_deref(),
        Some(&b"alice"[..])
    );
    assert_eq!(store.kv_get(id, "missing").unwrap(), None);
    let keys: Vec<String> = store
        .kv_list(id, "user:", 10)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["user:1", "user:2"]);
    assert_eq!(store.kv_list(id, "", 2).unwrap().len(), 2);
    assert_eq!(store.kv_list(id, "user:2", 10).unwrap()[0].size, 3);
    // 6+5 + 6+3 + 5+1 = 26 bytes.
    assert_eq!(store.kv_usage(id).unwrap(), 26);
    // Replacing a value counts only its new size.
    store.kv_set(id, "user:1", b"alicia", 27).unwrap();
    match store.kv_set(id, "big", &[0u8; 80], 100) {
        Err(StoreError::QuotaExceeded { quota, limit, .. }) => {
            assert_eq!((quota, limit), ("kv_max_bytes", 100));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.kv_get(id, "big").unwrap(), None);
    assert!(matches!(
        store.kv_set(id, "", b"x", 100),
        Err(StoreError::Invalid { field: "key", .. })
    ));
    assert!(matches!(
        store.kv_set(id, &"k".repeat(257), b"x", 1 << 20),
        Err(StoreError::Invalid { field: "key", .. })
    ));
    assert!(matches!(
        store.kv_set(id, "v", &vec![0u8; 64 * 1024 + 1], 1 << 20),
        Err(StoreError::Invalid { field: "value", .. })
    ));
    store
        .kv_set(id, "v", &vec![0u8; 64 * 1024], 1 << 20)
        .unwrap();
    assert!(matches!(
        store.kv_set("app_ffffffffffffffff", "k", b"x", 100),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.kv_delete(id, "other").unwrap());
    assert!(!store.kv_delete(id, "other").unwrap());
}

#[test]
fn deleting_an_app_takes_its_versions_numbers_settings_config_and_kv() {
    let (dir, store) = open();
    let (a, b) = two_accounts(&store);
    let app = store.create_app(&a, "doomed").unwrap();
    let kept = store.create_app(&a, "kept").unwrap();
    for bytes in [b"\0asm v1".as_slice(), b"\0asm v2"] {
        store.add_version(&a, &app.id, bytes).unwrap();
    }
    store.add_version(&a, &kept.id, b"\0asm k1").unwrap();
    store.deploy(&a, &app.id, 2).unwrap();
    store
        .put_artifact(&app.id, 2, "engine", b"compiled")
        .unwrap();
    store.set_number(&a, "100", &app.id).unwrap();
    store.set_number(&a, "200", &kept.id).unwrap();
    store
        .update_app_settings(
            &a,
            &app.id,
            AppSettingsPatch {
                kv_enabled: Some(true),
                ..AppSettingsPatch::default()
            },
        )
        .unwrap();
    store
        .set_app_config(&a, &app.id, None, "greeting", "hi", false)
        .unwrap();
    store.kv_set(&app.id, "k", b"v", 1 << 20).unwrap();

    // Another account's app is missing, and deleting it changes nothing.
    assert!(matches!(
        store.delete_app(&b, &app.id),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.app(&a, &app.id).unwrap().is_some());

    // Undeploying (the first step of a delete) stops routing; putting the version back
    // restores it, but never over a version deployed in between.
    assert!(matches!(
        store.undeploy(&b, &app.id),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.undeploy(&a, &app.id).unwrap(), Some(2));
    assert!(store.route("100").unwrap().is_none());
    assert_eq!(
        store.app(&a, &app.id).unwrap().unwrap().active_version,
        None
    );
    store.redeploy_if_undeployed(&a, &app.id, 2).unwrap();
    assert_eq!(store.route("100").unwrap().unwrap().version, 2);
    assert_eq!(store.undeploy(&a, &app.id).unwrap(), Some(2));
    store.deploy(&a, &app.id, 1).unwrap();
    store.redeploy_if_undeployed(&a, &app.id, 2).unwrap();
    assert_eq!(store.route("100").unwrap().unwrap().version, 1);

    store.delete_app(&a, &app.id).unwrap();
    assert!(store.app(&a, &app.id).unwrap().is_none());
    assert!(store.number(&a, "100").unwrap().is_none());
    assert!(store.route("100").unwrap().is_none());
    assert_eq!(store.kv_get(&app.id, "k").unwrap(), None);
    assert_eq!(store.artifact(&app.id, 2, "engine").unwrap(), None);
    assert_eq!(store.app_settings(&app.id).unwrap(), Default::default());
    for v in [1, 2] {
        let component = dir
            .path()
            .join("components")
            .join(format!("{}-v{v}.wasm", app.id));
        assert!(!component.exists(), "{component:?}");
    }
    assert!(
        !dir.path()
            .join("artifacts")
            .join(format!("{}-v2.bin", app.id))
            .exists()
    );
    // The other app is untouched, and the name can be used again.
    assert!(store.number(&a, "200").unwrap().is_some());
    assert_eq!(store.versions(&a, &kept.id).unwrap().len(), 1);
    store.create_app(&a, "doomed").unwrap();
    assert!(matches!(
        store.delete_app(&a, &app.id),
        Err(StoreError::NotFound(_))
    ));
}
