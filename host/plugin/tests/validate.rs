//! Upload validation against real components: the examples pass, everything else is refused
//! with a stable code and a message naming the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{component, runtime};
use pbx_plugin::{AbiVersion, PluginError, ValidationError};

fn code(r: Result<(), ValidationError>) -> (&'static str, String) {
    let e = r.expect_err("should be refused");
    (e.code(), e.message().to_owned())
}

#[test]
fn accepts_the_example_apps_and_fixtures_that_are_apps() {
    let rt = runtime();
    for name in [
        "hello",
        "ivr",
        "trap",
        "spin",
        "hog",
        "probe",
        "ringer",
        "conference_callback",
        "follow_me",
        "attended_transfer",
        "handover",
        "handover_refuser",
        "capabilities",
        "big_alloc",
        "legacy_v0_2_hello",
        "legacy_hello",
    ] {
        match rt.compile(&component(name)) {
            Ok(app) => {
                let expected = match name {
                    "legacy_hello" => AbiVersion::V0_1,
                    "legacy_v0_2_hello" => AbiVersion::V0_2,
                    _ => AbiVersion::V0_3,
                };
                assert_eq!(app.abi(), expected, "{name}");
            }
            Err(e) => panic!("{name}: {} {}", e.code(), e.message()),
        }
    }
}

#[test]
fn refuses_garbage_and_core_modules() {
    let rt = runtime();
    let (c, m) = code(rt.validate(b"definitely not wasm"));
    assert_eq!(c, "not_a_component");
    assert!(m.contains("not a WebAssembly component"), "{m}");

    let (c, m) = code(rt.validate(b"\0asm\x01\0\0\0"));
    assert_eq!(c, "not_a_component");
    assert!(m.contains("core WebAssembly module"), "{m}");

    let (c, _) = code(rt.validate(&[]));
    assert_eq!(c, "not_a_component");
}

#[test]
fn refuses_an_empty_component_as_missing_the_export() {
    let rt = runtime();
    let (c, m) = code(rt.validate(b"\0asm\x0d\0\x01\0"));
    assert_eq!(c, "missing_export");
    assert!(m.contains("pbx:app/handlers@0.3.0"), "{m}");
    assert!(m.contains("pbx:app/handlers@0.2.0"), "{m}");
    assert!(m.contains("pbx:app/handlers@0.1.0"), "{m}");
}

#[test]
fn refuses_a_truncated_component_as_not_compiling() {
    let rt = runtime();
    let hello = component("hello");
    let (c, m) = code(rt.validate(&hello[..hello.len() / 2]));
    assert_eq!(c, "compile_failed");
    assert!(!m.is_empty());
}

#[test]
fn refuses_another_world_and_names_its_exports() {
    let rt = runtime();
    let (c, m) = code(rt.validate(&component("wrong_world")));
    assert_eq!(c, "wrong_world");
    assert!(m.contains("example:other/greeter"), "{m}");
}

#[test]
fn names_missing_handler_functions() {
    let rt = runtime();
    let (c, m) = code(rt.validate(&component("partial")));
    assert_eq!(c, "missing_export");
    for f in [
        "on-call-received",
        "on-say-finished",
        "on-play-finished",
        "on-dtmf-collected",
        "on-call-finished",
        "on-http-response",
    ] {
        assert!(m.contains(f), "{f} not named in: {m}");
    }
    assert!(!m.contains("on-dtmf`,"), "on-dtmf is present: {m}");
}

#[test]
fn refuses_handlers_of_the_wrong_type() {
    let rt = runtime();
    let (c, m) = code(rt.validate(&component("wrong_type")));
    assert_eq!(c, "wrong_world");
    assert!(
        m.contains("on-call-received") && m.contains("func(string)"),
        "{m}"
    );
}

#[test]
fn names_an_import_that_is_not_granted() {
    let rt = runtime();
    let (c, m) = code(rt.validate(&component("bad_import")));
    assert_eq!(c, "import_not_granted");
    assert!(m.contains("import `foo:bar/baz` is not granted"), "{m}");
}

#[test]
fn compile_cache_and_serialized_artifacts() {
    let rt = runtime();
    assert!(rt.cached("hello:1").is_none());
    let app = rt.compile_cached("hello:1", &component("hello")).unwrap();
    assert!(rt.cached("hello:1").is_some());
    // A second call with other bytes under the same key is a cache hit: no recompile.
    assert!(rt.compile_cached("hello:1", b"garbage").is_ok());

    let bytes = app.serialize().unwrap();
    let loaded = rt.load_serialized(&bytes).unwrap();
    let rt2 = runtime();
    // Same build and configuration: a second runtime loads it too.
    assert!(rt2.load_serialized(&bytes).is_ok());
    drop(loaded);

    assert!(matches!(
        rt.load_serialized(b"not an artifact"),
        Err(PluginError::Artifact(_))
    ));
    rt.evict("hello:1");
    assert!(rt.cached("hello:1").is_none());
}
