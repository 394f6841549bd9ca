//! Upload validation: is it a component, does it compile, does it export the `handlers`
//! interface of `pbx:app@0.3.0` (or `@0.2.0`, `@0.1.0`) with the right function types, and
//! does it import only what we grant to that version.
//!
//! Invariants: every refusal is a [`ValidationError`] with a stable code and a message that
//! names the offending export or import; nothing here instantiates or runs the component.

use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};
use wasmtime::component::{Component, Type};

use pbx_app::AbiVersion;

/// The interface a 0.3 call app must export.
pub(crate) const HANDLERS_V0_3: &str = "pbx:app/handlers@0.3.0";
/// The interface a 0.2 call app must export.
pub(crate) const HANDLERS_V0_2: &str = "pbx:app/handlers@0.2.0";
/// The interface a 0.1 call app must export.
pub(crate) const HANDLERS_V0_1: &str = "pbx:app/handlers@0.1.0";

const CALL_INFO: &str = "record{id: string, direction: enum{inbound, outbound}, from: string, \
     to: string, caller-name: option<string>, config: list<tuple<string, string>>}";
const CALL_INFO_V0_2: &str = "record{id: string, direction: enum{inbound, outbound}, \
     from: string, to: string, caller-name: option<string>, config: list<tuple<string, string>>, \
     handed-over: option<record{from-app: string, data: string}>}";
const MEDIA_FINISHED: &str = "record{id: u64, played-completely: bool, digit: option<string>}";
const COLLECTED: &str =
    "record{digits: string, end: enum{max-digits, terminator, timeout, cancelled}}";
const HANGUP: &str = "hangup-by: enum{local, remote}, hangup-reason: enum{normal, failed, \
     busy, cancel, timeout, noanswer, app-error, rejected, admin}, sip-status: option<u16>";

/// `handlers@0.1.0` functions with their expected type, rendered the way [`render_func`] does.
fn expected_v0_1() -> Vec<(&'static str, String)> {
    vec![
        ("on-call-received", format!("func({CALL_INFO})")),
        ("on-dtmf", "func(string, string)".into()),
        ("on-say-finished", format!("func(string, {MEDIA_FINISHED})")),
        (
            "on-play-finished",
            format!("func(string, {MEDIA_FINISHED})"),
        ),
        ("on-dtmf-collected", format!("func(string, {COLLECTED})")),
        (
            "on-call-finished",
            format!("func(string, record{{{HANGUP}}})"),
        ),
    ]
}

/// `handlers@0.2.0` functions with their expected type, rendered the way [`render_func`] does.
fn expected_v0_2() -> Vec<(&'static str, String)> {
    let s = |t: &str| t.to_string();
    vec![
        ("on-call-received", format!("func({CALL_INFO_V0_2})")),
        ("on-call-ringing", s("func(string)")),
        ("on-call-early-media", s("func(string)")),
        ("on-call-answered", s("func(string)")),
        ("on-dtmf", s("func(string, string)")),
        ("on-say-finished", format!("func(string, {MEDIA_FINISHED})")),
        (
            "on-play-finished",
            format!("func(string, {MEDIA_FINISHED})"),
        ),
        ("on-dtmf-collected", format!("func(string, {COLLECTED})")),
        (
            "on-call-finished",
            format!("func(string, record{{{HANGUP}, answered: bool}})"),
        ),
        ("on-participant-joining", s("func(string, string)")),
        ("on-participant-joined", s("func(string, string)")),
        (
            "on-participant-join-failed",
            s("func(string, string, string)"),
        ),
        ("on-participant-left", s("func(string, string)")),
        ("on-conference-finished", s("func(string)")),
        (
            "on-conference-media-finished",
            format!("func(string, {MEDIA_FINISHED})"),
        ),
        (
            "on-recording-ready",
            s("func(record{id: string, duration-ms: u64, files: u32})"),
        ),
        ("on-timer", s("func(u64, string)")),
        (
            "on-hand-over-result",
            s("func(string, bool, option<string>)"),
        ),
    ]
}

/// `handlers@0.3.0` functions with their expected type: those of 0.2.0 plus
/// `on-http-response`.
fn expected_v0_3() -> Vec<(&'static str, String)> {
    let mut expected = expected_v0_2();
    expected.push((
        "on-http-response",
        "func(u64, result<record{status: u16, headers: list<tuple<string, string>>, \
         body: list<u8>}, variant{timeout, too-large, connection-failed(string), \
         invalid-response(string)}>)"
            .to_string(),
    ));
    expected
}

/// Our own interfaces a component of each version may import.
const GRANTED_PBX_V0_1: [&str; 3] = [
    "pbx:app/types@0.1.0",
    "pbx:app/call-control@0.1.0",
    "pbx:app/log@0.1.0",
];
const GRANTED_PBX_V0_2: [&str; 6] = [
    "pbx:app/types@0.2.0",
    "pbx:app/call-control@0.2.0",
    "pbx:app/conference@0.2.0",
    "pbx:app/recording@0.2.0",
    "pbx:app/timers@0.2.0",
    "pbx:app/log@0.2.0",
];
const GRANTED_PBX_V0_3: [&str; 10] = [
    "pbx:app/types@0.3.0",
    "pbx:app/call-control@0.3.0",
    "pbx:app/conference@0.3.0",
    "pbx:app/recording@0.3.0",
    "pbx:app/timers@0.3.0",
    "pbx:app/log@0.3.0",
    "pbx:app/capability-types@0.3.0",
    "pbx:app/kv@0.3.0",
    "pbx:app/http@0.3.0",
    "pbx:app/config@0.3.0",
];

/// WASI 0.2 packages that Rust std on `wasm32-wasip2` imports. Granting the interfaces is
/// harmless because the WASI context grants no resources (no dirs, env, args or network).
const GRANTED_WASI_PACKAGES: [&str; 5] = [
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Why an uploaded component was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The bytes are not a WebAssembly component (garbage, or a core module).
    #[error("{0}")]
    NotAComponent(String),
    /// The component is malformed or wasmtime could not compile it.
    #[error("{0}")]
    CompileFailed(String),
    /// The `pbx:app/handlers@0.3.0` (or `@0.2.0`, `@0.1.0`) export, or one of its functions,
    /// is missing.
    #[error("{0}")]
    MissingExport(String),
    /// The component targets another world (other exports, or handlers of the wrong type).
    #[error("{0}")]
    WrongWorld(String),
    /// The component imports something the host does not grant.
    #[error("{0}")]
    ImportNotGranted(String),
}

impl ValidationError {
    /// A stable machine-readable code for the admin API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::NotAComponent(_) => "not_a_component",
            ValidationError::CompileFailed(_) => "compile_failed",
            ValidationError::MissingExport(_) => "missing_export",
            ValidationError::WrongWorld(_) => "wrong_world",
            ValidationError::ImportNotGranted(_) => "import_not_granted",
        }
    }

    /// The human-readable explanation.
    pub fn message(&self) -> &str {
        match self {
            ValidationError::NotAComponent(m)
            | ValidationError::CompileFailed(m)
            | ValidationError::MissingExport(m)
            | ValidationError::WrongWorld(m)
            | ValidationError::ImportNotGranted(m) => m,
        }
    }
}

/// Checks the preamble: `\0asm`, then the component version/layer rather than a core module's.
/// Cheap (eight bytes), so tools can refuse a core module before uploading it.
pub fn check_header(bytes: &[u8]) -> Result<(), ValidationError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(ValidationError::NotAComponent(
            "not a WebAssembly component: the upload is not WebAssembly at all".into(),
        ));
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        COMPONENT => Ok(()),
        CORE_MODULE => Err(ValidationError::NotAComponent(
            "not a WebAssembly component: this is a core WebAssembly module; build the app \
             with `--target wasm32-wasip2` so that it is a component"
                .into(),
        )),
        other => Err(ValidationError::NotAComponent(format!(
            "not a WebAssembly component: unknown WebAssembly version/layer {other:02x?}"
        ))),
    }
}

/// Checks that the component exports `pbx:app/handlers@0.3.0` with all its functions at
/// the types of `wit/app.wit`, or else `@0.2.0` with those of `wit/legacy/0.2.0/app.wit`,
/// or `@0.1.0` with the six of `wit/legacy/0.1.0/app.wit`, and says which.
pub(crate) fn check_exports(
    engine: &Engine,
    component: &Component,
) -> Result<AbiVersion, ValidationError> {
    let ty = component.component_type();
    let (abi, handlers, item) = if let Some(item) = ty.get_export(engine, HANDLERS_V0_3) {
        (AbiVersion::V0_3, HANDLERS_V0_3, item)
    } else if let Some(item) = ty.get_export(engine, HANDLERS_V0_2) {
        (AbiVersion::V0_2, HANDLERS_V0_2, item)
    } else if let Some(item) = ty.get_export(engine, HANDLERS_V0_1) {
        (AbiVersion::V0_1, HANDLERS_V0_1, item)
    } else {
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        if exports.is_empty() {
            return Err(ValidationError::MissingExport(format!(
                "the component exports nothing; a call app must export `{HANDLERS_V0_3}` \
                 (or `{HANDLERS_V0_2}`, `{HANDLERS_V0_1}` for apps built against older \
                 versions)"
            )));
        }
        return Err(ValidationError::WrongWorld(format!(
            "the component exports {} but not `{HANDLERS_V0_3}`; it was built for another \
             world (a call app targets `pbx:app/call-app@0.3.0`, or the older \
             `pbx:app/call-app@0.2.0` and `@0.1.0`)",
            quote_list(&exports, 8)
        )));
    };
    let ComponentItem::ComponentInstance(instance) = item.ty else {
        return Err(ValidationError::WrongWorld(format!(
            "`{handlers}` is exported but is not an interface instance"
        )));
    };
    let expected = match abi {
        AbiVersion::V0_1 => expected_v0_1(),
        AbiVersion::V0_2 => expected_v0_2(),
        AbiVersion::V0_3 => expected_v0_3(),
    };
    check_funcs(engine, &instance, handlers, abi, &expected)?;
    Ok(abi)
}

fn check_funcs(
    engine: &Engine,
    instance: &ComponentInstance,
    handlers: &str,
    abi: AbiVersion,
    expected: &[(&'static str, String)],
) -> Result<(), ValidationError> {
    let mut missing = Vec::new();
    for (name, expected) in expected {
        match instance.get_export(engine, name).map(|e| e.ty) {
            None => missing.push(*name),
            Some(ComponentItem::ComponentFunc(func)) => {
                let found = render_func(&func);
                if &found != expected {
                    return Err(ValidationError::WrongWorld(format!(
                        "export `{handlers}#{name}` has type {found} but pbx:app@{} expects \
                         {expected}",
                        abi.as_str()
                    )));
                }
            }
            Some(_) => {
                return Err(ValidationError::WrongWorld(format!(
                    "export `{handlers}#{name}` is not a function"
                )));
            }
        }
    }
    if !missing.is_empty() {
        return Err(ValidationError::MissingExport(format!(
            "`{handlers}` lacks {}",
            quote_list(&missing, expected.len())
        )));
    }
    Ok(())
}

/// Checks that every import is one we grant to a component of `abi`, by name; the linker
/// checks their types after.
pub(crate) fn check_imports(
    engine: &Engine,
    component: &Component,
    abi: AbiVersion,
) -> Result<(), ValidationError> {
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        if !is_granted(name, abi) {
            return Err(ValidationError::ImportNotGranted(format!(
                "import `{name}` is not granted; call apps of pbx:app@{v} may import `pbx:app` \
                 {v} interfaces and the WASI 0.2 cli, io, clocks, random and filesystem \
                 interfaces",
                v = abi.as_str()
            )));
        }
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            return Err(ValidationError::ImportNotGranted(format!(
                "import `{name}` is not granted: only interfaces may be imported"
            )));
        }
    }
    Ok(())
}

fn is_granted(name: &str, abi: AbiVersion) -> bool {
    let pbx: &[&str] = match abi {
        AbiVersion::V0_1 => &GRANTED_PBX_V0_1,
        AbiVersion::V0_2 => &GRANTED_PBX_V0_2,
        AbiVersion::V0_3 => &GRANTED_PBX_V0_3,
    };
    if pbx.contains(&name) {
        return true;
    }
    GRANTED_WASI_PACKAGES.iter().any(|prefix| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('@'))
            .is_some_and(|(iface, version)| !iface.is_empty() && version.starts_with("0.2."))
    })
}

fn quote_list(names: &[&str], max: usize) -> String {
    let mut quoted: Vec<String> = names.iter().take(max).map(|n| format!("`{n}`")).collect();
    if names.len() > max {
        quoted.push("...".into());
    }
    quoted.join(", ")
}

/// Renders a function type without parameter names, e.g. `func(string, u64) -> bool`.
pub(crate) fn render_func(func: &ComponentFunc) -> String {
    let params: Vec<String> = func.params().map(|(_, ty)| render(&ty)).collect();
    let results: Vec<String> = func.results().map(|ty| render(&ty)).collect();
    let mut s = format!("func({})", params.join(", "));
    if !results.is_empty() {
        s.push_str(&format!(" -> {}", results.join(", ")));
    }
    if func.async_() {
        s.insert_str(0, "async ");
    }
    s
}

/// Renders a value type structurally (record field and case names included, type names not).
fn render(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", render(&l.ty())),
        Type::Map(m) => format!("map<{}, {}>", render(&m.key()), render(&m.value())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, render(&f.ty)))
                .collect();
            format!("record{{{}}}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let types: Vec<String> = t.types().map(|t| render(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, render(t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant{{{}}}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum{{{}}}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", render(&o.ty())),
        Type::Result(r) => {
            let part = |t: Option<Type>| t.map_or_else(|| "_".to_string(), |t| render(&t));
            format!("result<{}, {}>", part(r.ok()), part(r.err()))
        }
        Type::Flags(f) => format!("flags{{{}}}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
        Type::FixedLengthList(_) => "fixed-length-list".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn header_tells_garbage_core_modules_and_components_apart() {
        assert_eq!(
            check_header(b"hello world").map_err(|e| e.code()),
            Err("not_a_component")
        );
        let core = check_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert_eq!(core.code(), "not_a_component");
        assert!(core.message().contains("core WebAssembly module"));
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
        assert!(check_header(b"\0as").is_err());
    }

    #[test]
    fn granted_imports() {
        use AbiVersion::{V0_1, V0_2, V0_3};
        assert!(is_granted("pbx:app/call-control@0.1.0", V0_1));
        assert!(!is_granted("pbx:app/call-control@0.1.0", V0_2));
        assert!(is_granted("pbx:app/call-control@0.2.0", V0_2));
        assert!(!is_granted("pbx:app/call-control@0.2.0", V0_1));
        for iface in ["types", "conference", "recording", "timers", "log"] {
            assert!(
                is_granted(&format!("pbx:app/{iface}@0.2.0"), V0_2),
                "{iface}"
            );
        }
        assert!(!is_granted("pbx:app/conference@0.1.0", V0_1));
        assert!(!is_granted("pbx:app/timers@0.2.1", V0_2));
        for iface in [
            "kv",
            "http",
            "config",
            "capability-types",
            "call-control",
            "types",
        ] {
            assert!(
                is_granted(&format!("pbx:app/{iface}@0.3.0"), V0_3),
                "{iface}"
            );
        }
        assert!(!is_granted("pbx:app/kv@0.3.0", V0_2));
        assert!(!is_granted("pbx:app/call-control@0.2.0", V0_3));
        for abi in [V0_1, V0_2, V0_3] {
            assert!(is_granted("wasi:cli/environment@0.2.6", abi));
            assert!(is_granted("wasi:io/streams@0.2.0", abi));
            assert!(!is_granted("wasi:sockets/tcp@0.2.0", abi));
            assert!(!is_granted("wasi:http/outgoing-handler@0.2.0", abi));
            assert!(!is_granted("wasi:cli/environment@0.3.0", abi));
            assert!(!is_granted("foo:bar/baz", abi));
        }
    }

    #[test]
    fn expected_handler_sets() {
        assert_eq!(expected_v0_1().len(), 6);
        let v2 = expected_v0_2();
        assert_eq!(v2.len(), 18);
        let names: std::collections::HashSet<_> = v2.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 18);
        assert!(names.contains("on-hand-over-result"));
        let v3 = expected_v0_3();
        assert_eq!(v3.len(), 19);
        assert_eq!(v3.last().map(|(n, _)| *n), Some("on-http-response"));
    }

    #[test]
    fn quote_list_marks_truncation_only_when_truncated() {
        assert_eq!(quote_list(&["a", "b"], 2), "`a`, `b`");
        assert_eq!(quote_list(&["a", "b", "c"], 2), "`a`, `b`, ...");
    }
}
