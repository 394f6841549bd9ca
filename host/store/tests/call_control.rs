//! Round-trip tests of the call-control tables (migration 2): trunks, SIP users,
//! conferences, recordings and chained calls, including reopening and restart clean-up.

#![allow(clippy::unwrap_used, reason = "tests unwrap known-good values")]

/// The account every resource of these tests belongs to.
const A: &str = pbx_store::DEFAULT_ACCOUNT_ID;

use std::collections::BTreeMap;
use std::fs;

use chrono::{Duration, TimeZone, Utc};
use pbx_store::{
    CONFERENCE_PREFIX, CallRecord, CallStatus, ConferenceRecord, Direction, NewRecording, NewTrunk,
    RecordedFile, RecordingFilter, RecordingStatus, RecordingTarget, Store, StoreError, TrunkPatch,
    digest_ha1, is_id, new_id,
};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn invalid_field(err: StoreError) -> &'static str {
    match err {
        StoreError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn trunks_create_validate_and_order() {
    let (_dir, store) = open();
    let mut a = NewTrunk::new("carrier-a", "sip:gw.example.com:5060;transport=tcp");
    a.username = Some("acct".into());
    a.password = Some("s3cret".into());
    a.priority = 20;
    let a = store.create_trunk(A, a).unwrap();
    assert!(is_id("trk_", &a.id), "{}", a.id);
    assert_eq!(a.password.as_deref(), Some("s3cret"));
    let json = serde_json::to_value(&a).unwrap();
    assert!(json.get("password").is_none(), "{json}");
    assert!(!format!("{a:?}").contains("s3cret"));

    let mut b = NewTrunk::new("carrier-b", "sips:[2001:db8::1]:5061");
    b.priority = 10;
    b.strip_plus = true;
    b.number_prefix = Some("00".into());
    let b = store.create_trunk(A, b).unwrap();
    let mut c = NewTrunk::new("disabled", "sip:10.0.0.1");
    c.enabled = false;
    c.priority = 0;
    let c = store.create_trunk(A, c).unwrap();

    let names: Vec<_> = store
        .list_trunks(A)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["disabled", "carrier-b", "carrier-a"]);
    let dial: Vec<_> = store
        .trunks_for_dial(A, None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(dial, [b.id.clone(), a.id.clone()]);
    assert_eq!(
        store.trunks_for_dial(A, Some("carrier-a")).unwrap(),
        std::slice::from_ref(&a)
    );
    assert!(
        store
            .trunks_for_dial(A, Some("disabled"))
            .unwrap()
            .is_empty()
    );
    assert!(store.trunks_for_dial(A, Some("nope")).unwrap().is_empty());
    assert_eq!(store.trunk_by_name(A, "disabled").unwrap(), Some(c));
    assert_eq!(b.dial_string("+4930123"), "004930123");
    assert_eq!(a.dial_string("+4930123"), "+4930123");

    assert!(matches!(
        store.create_trunk(A, NewTrunk::new("carrier-a", "sip:x.example")),
        Err(StoreError::Conflict(_))
    ));
    for (trunk, field) in [
        (NewTrunk::new("bad name", "sip:x"), "name"),
        (NewTrunk::new("t", "http://x"), "proxy"),
        (NewTrunk::new("t", "sip:"), "proxy"),
        (NewTrunk::new("t", "sip:user@"), "proxy"),
        (NewTrunk::new("t", "sip:host:99999"), "proxy"),
        (NewTrunk::new("t", "sip:ho st"), "proxy"),
        (NewTrunk::new("t", "sip:[::1"), "proxy"),
        (
            NewTrunk {
                priority: 1001,
                ..NewTrunk::new("t", "sip:x")
            },
            "priority",
        ),
        (
            NewTrunk {
                caller_id: Some("a b".into()),
                ..NewTrunk::new("t", "sip:x")
            },
            "caller_id",
        ),
        (
            NewTrunk {
                number_prefix: Some("x".into()),
                ..NewTrunk::new("t", "sip:x")
            },
            "number_prefix",
        ),
        (
            NewTrunk {
                username: Some("a\"b".into()),
                ..NewTrunk::new("t", "sip:x")
            },
            "username",
        ),
        (
            NewTrunk {
                password: Some(String::new()),
                ..NewTrunk::new("t", "sip:x")
            },
            "password",
        ),
    ] {
        assert_eq!(
            invalid_field(store.create_trunk(A, trunk).unwrap_err()),
            field
        );
    }
    assert_eq!(store.list_trunks(A).unwrap().len(), 3);
}

#[test]
fn trunks_update_and_delete() {
    let (_dir, store) = open();
    let mut new = NewTrunk::new("a", "sip:a.example");
    new.password = Some("pw".into());
    new.caller_id = Some("+4930".into());
    let a = store.create_trunk(A, new).unwrap();
    store
        .create_trunk(A, NewTrunk::new("b", "sip:b.example"))
        .unwrap();

    let patched = store
        .update_trunk(
            A,
            &a.id,
            TrunkPatch {
                priority: Some(5),
                caller_id: Some(None),
                enabled: Some(false),
                ..TrunkPatch::default()
            },
        )
        .unwrap();
    assert_eq!(patched.priority, 5);
    assert_eq!(patched.caller_id, None);
    assert!(!patched.enabled);
    assert_eq!(patched.password.as_deref(), Some("pw"));
    assert_eq!(store.trunk(A, &a.id).unwrap(), Some(patched.clone()));

    let taken = TrunkPatch {
        name: Some("b".into()),
        ..TrunkPatch::default()
    };
    assert!(matches!(
        store.update_trunk(A, &a.id, taken),
        Err(StoreError::Conflict(_))
    ));
    let bad = TrunkPatch {
        proxy: Some("tel:+1".into()),
        priority: Some(7),
        ..TrunkPatch::default()
    };
    assert_eq!(
        invalid_field(store.update_trunk(A, &a.id, bad).unwrap_err()),
        "proxy"
    );
    assert_eq!(store.trunk(A, &a.id).unwrap(), Some(patched));
    assert!(matches!(
        store.update_trunk(A, "trk_0000000000000000", TrunkPatch::default()),
        Err(StoreError::NotFound(_))
    ));

    store.delete_trunk(A, &a.id).unwrap();
    assert_eq!(store.trunk(A, &a.id).unwrap(), None);
    assert!(matches!(
        store.delete_trunk(A, &a.id),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_trunk(A, "../x"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn sip_users_hash_passwords_and_never_show_them() {
    let (_dir, store) = open();
    let alice = store
        .create_sip_user(A, "alice", "correct horse", Some("Alice A."), "pbx")
        .unwrap();
    assert!(is_id("usr_", &alice.id));
    let (md5, sha) = digest_ha1("alice", "pbx", "correct horse");
    assert_eq!(
        (alice.ha1_md5.as_str(), alice.ha1_sha256.as_str()),
        (md5.as_str(), sha.as_str())
    );
    let json = serde_json::to_value(&alice).unwrap().to_string();
    assert!(
        !json.contains(&md5) && !json.contains(&sha) && !json.contains("horse"),
        "{json}"
    );
    assert!(!format!("{alice:?}").contains(&md5));

    assert!(matches!(
        store.create_sip_user(A, "alice", "another password", None, "pbx"),
        Err(StoreError::Conflict(_))
    ));
    let bad = [
        ("al ice", "long enough", None, "username"),
        ("bob", "short", None, "password"),
        (
            "bob",
            "long enough",
            Some("A \"quoted\" name"),
            "display_name",
        ),
        ("bob", "long enough", None, "realm"),
    ];
    for (user, pw, display, field) in bad {
        let realm = if field == "realm" { "" } else { "pbx" };
        let err = store
            .create_sip_user(A, user, pw, display, realm)
            .unwrap_err();
        assert_eq!(invalid_field(err), field);
    }

    let bob = store
        .create_sip_user(A, "bob", "12345678", None, "pbx")
        .unwrap();
    let list: Vec<_> = store
        .list_sip_users(A)
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(list, ["alice", "bob"]);
    assert_eq!(
        store.sip_user_by_username("bob").unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.sip_user(A, &bob.id).unwrap(), Some(bob.clone()));
    assert_eq!(store.sip_user_by_username("carol").unwrap(), None);

    let changed = store
        .set_sip_user_password(A, &bob.id, "new password", "example.com")
        .unwrap();
    assert_eq!(changed.realm, "example.com");
    assert_eq!(
        changed.ha1_md5,
        digest_ha1("bob", "example.com", "new password").0
    );
    assert_eq!(store.sip_user(A, &bob.id).unwrap(), Some(changed));
    assert_eq!(
        invalid_field(
            store
                .set_sip_user_password(A, &bob.id, "short", "pbx")
                .unwrap_err()
        ),
        "password"
    );

    store.delete_sip_user(A, &bob.id).unwrap();
    assert_eq!(store.sip_user(A, &bob.id).unwrap(), None);
    assert!(matches!(
        store.delete_sip_user(A, &bob.id),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn conferences_round_trip() {
    let (_dir, store) = open();
    let id = new_id(CONFERENCE_PREFIX);
    assert!(is_id("cnf_", &id));
    let t0 = Utc.timestamp_opt(1_700_000_000, 5).unwrap();
    let mut conf = ConferenceRecord {
        id: id.clone(),
        account_id: A.into(),
        app_id: Some("app_0123456789abcdef".into()),
        name: Some("standup".into()),
        created_at: t0,
        ended_at: None,
    };
    store.upsert_conference(&conf).unwrap();
    conf.ended_at = Some(t0 + Duration::seconds(30));
    store.upsert_conference(&conf).unwrap();
    assert_eq!(store.conference(A, &id).unwrap(), Some(conf.clone()));
    let later = ConferenceRecord {
        id: new_id(CONFERENCE_PREFIX),
        account_id: A.into(),
        created_at: t0 + Duration::seconds(1),
        ..conf.clone()
    };
    store.upsert_conference(&later).unwrap();
    assert_eq!(
        store.list_conferences(A, 10).unwrap(),
        [later, conf.clone()]
    );
    assert_eq!(store.list_conferences(A, 1).unwrap().len(), 1);
    assert_eq!(store.conference(A, "cnf_nope").unwrap(), None);
    let bad = ConferenceRecord {
        id: "conf-1".into(),
        account_id: A.into(),
        ..conf
    };
    assert_eq!(
        invalid_field(store.upsert_conference(&bad).unwrap_err()),
        "id"
    );
}

fn new_recording(call_id: &str) -> NewRecording {
    NewRecording {
        id: None,
        account_id: A.into(),
        app_id: "app_0123456789abcdef".into(),
        call_id: Some(call_id.into()),
        conference_id: None,
        target: RecordingTarget::Call,
        per_participant: false,
        stereo: true,
        metadata: BTreeMap::from([("customer".to_owned(), "42".to_owned())]),
    }
}

#[test]
fn recordings_start_finish_list_and_delete() {
    let (dir, store) = open();
    let rec = store.start_recording(new_recording("call-1")).unwrap();
    assert!(is_id("rec_", &rec.id));
    assert_eq!(rec.status, RecordingStatus::Recording);
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["target"], "call");
    assert_eq!(json["status"], "recording");
    assert_eq!(json["metadata"]["customer"], "42");

    let path = store.recording_path(&rec.id, 0).unwrap();
    assert_eq!(
        path,
        dir.path()
            .join("recordings")
            .join(format!("{}-0.wav", rec.id))
    );
    assert!(store.recording_path("../../x", 0).is_err());
    assert!(matches!(
        store.delete_recording(A, &rec.id),
        Err(StoreError::Conflict(_))
    ));
    // A file the recorder never wrote cannot be finished.
    let missing = RecordedFile {
        index: 0,
        label: "mixed".into(),
        channels: 2,
    };
    assert!(
        store
            .finish_recording(&rec.id, 1, vec![missing.clone()])
            .is_err()
    );

    fs::write(&path, b"RIFF....WAVE").unwrap();
    let ready = store
        .finish_recording(&rec.id, 1500, vec![missing])
        .unwrap();
    assert_eq!(ready.status, RecordingStatus::Ready);
    assert_eq!(ready.duration_ms, Some(1500));
    assert_eq!(ready.files.len(), 1);
    assert_eq!(ready.files[0].size, 12);
    assert_eq!(ready.files[0].label, "mixed");
    assert!(matches!(
        store.finish_recording(&rec.id, 1, vec![]),
        Err(StoreError::Conflict(_))
    ));
    let (file, file_path) = store.recording_file(A, &rec.id, 0).unwrap().unwrap();
    assert_eq!((file.size, file_path), (12, path.clone()));
    assert!(store.recording_file(A, &rec.id, 1).unwrap().is_none());

    // Per-participant conference recording and a second leg.
    let conf = store
        .start_recording(NewRecording {
            call_id: None,
            conference_id: Some("cnf_0123456789abcdef".into()),
            target: RecordingTarget::Conference,
            per_participant: true,
            ..new_recording("unused")
        })
        .unwrap();
    let files: Vec<_> = ["leg-a", "leg-b"]
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let index = u32::try_from(i).unwrap();
            fs::write(store.recording_path(&conf.id, index).unwrap(), b"RIFF").unwrap();
            RecordedFile {
                index,
                label: (*label).to_owned(),
                channels: 1,
            }
        })
        .collect();
    store.finish_recording(&conf.id, 10, files).unwrap();
    let other = store.start_recording(new_recording("call-2")).unwrap();

    let all = store
        .list_recordings(A, &RecordingFilter::default())
        .unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, [other.id.clone(), conf.id.clone(), rec.id.clone()]);
    assert_eq!(all[1].files.len(), 2);
    let by_call = store
        .list_recordings(
            A,
            &RecordingFilter {
                call_id: Some("call-1".into()),
                ..RecordingFilter::default()
            },
        )
        .unwrap();
    assert_eq!(by_call, [ready]);
    let by_conf = store
        .list_recordings(
            A,
            &RecordingFilter {
                conference_id: Some("cnf_0123456789abcdef".into()),
                ..RecordingFilter::default()
            },
        )
        .unwrap();
    assert_eq!(by_conf.len(), 1);
    assert_eq!(by_conf[0].id, conf.id);

    store.delete_recording(A, &rec.id).unwrap();
    assert!(!path.exists());
    assert_eq!(store.recording(A, &rec.id).unwrap(), None);
    assert!(matches!(
        store.delete_recording(A, &rec.id),
        Err(StoreError::NotFound(_))
    ));

    fs::write(store.recording_path(&other.id, 0).unwrap(), b"half").unwrap();
    store.fail_recording(&other.id).unwrap();
    assert!(!store.recording_path(&other.id, 0).unwrap().exists());
    let failed = store.recording(A, &other.id).unwrap().unwrap();
    assert_eq!(failed.status, RecordingStatus::Failed);
    assert!(failed.files.is_empty());
    store.delete_recording(A, &other.id).unwrap();
}

#[test]
fn recording_input_is_checked() {
    let (_dir, store) = open();
    let none = NewRecording {
        call_id: None,
        ..new_recording("x")
    };
    assert_eq!(
        invalid_field(store.start_recording(none).unwrap_err()),
        "target"
    );
    let mut big = new_recording("x");
    big.metadata = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
    assert_eq!(
        invalid_field(store.start_recording(big).unwrap_err()),
        "metadata"
    );
    let mut empty_key = new_recording("x");
    empty_key.metadata.insert(String::new(), "v".into());
    assert_eq!(
        invalid_field(store.start_recording(empty_key).unwrap_err()),
        "metadata"
    );
}

fn leg(id: &str, master: Option<&str>, secs: i64) -> CallRecord {
    CallRecord {
        id: id.into(),
        account_id: A.into(),
        app_id: Some("app_0123456789abcdef".into()),
        app_version: Some(1),
        direction: if master.is_some() {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        from: "alice".into(),
        to: "bob".into(),
        status: CallStatus::Progressing,
        hangup_by: None,
        hangup_reason: None,
        tm_create: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
        tm_ringing: None,
        tm_progressing: None,
        tm_hangup: None,
        sip_call_id: None,
        master_call_id: master.map(str::to_owned),
    }
}

#[test]
fn chained_calls_follow_their_master() {
    let (_dir, store) = open();
    store.upsert_call(&leg("m", None, 0)).unwrap();
    store.upsert_call(&leg("c2", Some("m"), 2)).unwrap();
    store.upsert_call(&leg("c1", Some("m"), 1)).unwrap();
    store.upsert_call(&leg("other", Some("x"), 1)).unwrap();
    assert_eq!(store.chained_call_ids(A, "m").unwrap(), ["c1", "c2"]);
    assert!(store.chained_call_ids(A, "c1").unwrap().is_empty());
    assert_eq!(
        store
            .call(A, "c1")
            .unwrap()
            .unwrap()
            .master_call_id
            .as_deref(),
        Some("m")
    );
}

#[test]
fn restart_closes_conferences_and_fails_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let (conf_id, rec_id, trunk_id, user_id);
    {
        let store = Store::open(dir.path()).unwrap();
        conf_id = new_id(CONFERENCE_PREFIX);
        store
            .upsert_conference(&ConferenceRecord {
                id: conf_id.clone(),
                account_id: A.into(),
                app_id: None,
                name: None,
                created_at: Utc::now(),
                ended_at: None,
            })
            .unwrap();
        let rec = store.start_recording(new_recording("c")).unwrap();
        fs::write(store.recording_path(&rec.id, 0).unwrap(), b"half").unwrap();
        rec_id = rec.id;
        trunk_id = store
            .create_trunk(A, NewTrunk::new("t", "sip:t.example"))
            .unwrap()
            .id;
        user_id = store
            .create_sip_user(A, "alice", "password1", None, "pbx")
            .unwrap()
            .id;
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.trunk(A, &trunk_id).unwrap().is_some());
    assert!(store.sip_user(A, &user_id).unwrap().is_some());
    store.close_interrupted_calls(Utc::now()).unwrap();
    assert!(
        store
            .conference(A, &conf_id)
            .unwrap()
            .unwrap()
            .ended_at
            .is_some()
    );
    let rec = store.recording(A, &rec_id).unwrap().unwrap();
    assert_eq!(rec.status, RecordingStatus::Failed);
    assert!(!store.recording_path(&rec_id, 0).unwrap().exists());
}
