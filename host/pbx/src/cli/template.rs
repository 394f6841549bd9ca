//! The app template behind `pbx app new`: the files of a ready-to-build app crate, embedded
//! in the binary, and the checks on the app's name and the SDK's location.
//!
//! Invariants: a rendered template names the package exactly as given (a valid name, checked
//! first), depends on `pbx-sdk` by an absolute path, is its own workspace, and starts from
//! the example apps' `Cargo.lock` so a build resolves the same dependency versions they were
//! tested with (cargo prunes the entries it does not need).

use std::path::{Path, PathBuf};

use super::CliError;

/// One file of the template: its path inside the new crate and its text with placeholders.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
}

/// The template's files; `{{name}}`, `{{crate}}`, `{{sdk_path}}` and `{{sdk_source}}` are
/// replaced when rendering.
const FILES: &[TemplateFile] = &[
    TemplateFile {
        path: "Cargo.toml",
        text: include_str!("../../templates/app/Cargo.toml.tmpl"),
    },
    TemplateFile {
        path: "src/lib.rs",
        text: include_str!("../../templates/app/lib.rs"),
    },
    TemplateFile {
        path: "scenarios/basic.sim",
        text: include_str!("../../templates/app/basic.sim"),
    },
    TemplateFile {
        path: "README.md",
        text: include_str!("../../templates/app/README.md"),
    },
    TemplateFile {
        path: ".gitignore",
        text: include_str!("../../templates/app/gitignore"),
    },
    TemplateFile {
        path: "Cargo.lock",
        text: include_str!("../../../../plugins/Cargo.lock"),
    },
];

/// Where this pbx's source tree keeps the SDK, fixed when the binary was built.
const BUILT_IN_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

/// Rust keywords and crate names that cannot be a package's name.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks an app name: 1 to 64 lowercase letters, digits and `-`, starting with a letter,
/// not ending with `-`, not a Rust keyword.
pub(crate) fn validate_name(name: &str) -> Result<(), CliError> {
    let bad = |why: &str| {
        Err(CliError::Invalid(format!(
            "invalid app name {name:?}: {why} (use lowercase letters, digits and `-`, \
             starting with a letter, such as `hello-world`)"
        )))
    };
    if name.is_empty() || name.len() > 64 {
        return bad("it must be 1 to 64 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a lowercase letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("it may only contain lowercase letters, digits and `-`");
    }
    if name.ends_with('-') {
        return bad("it must not end with `-`");
    }
    if RESERVED.contains(&name) {
        return bad("it is a reserved Rust name");
    }
    Ok(())
}

/// The Rust crate name of a package (`-` becomes `_`), which names its `.wasm` output.
pub(crate) fn crate_name(package: &str) -> String {
    package.replace('-', "_")
}

/// The SDK directory to depend on and a phrase saying where it came from.
pub(crate) fn find_sdk(env_path: Option<String>) -> Result<(PathBuf, String), CliError> {
    let (path, source) = match env_path.filter(|p| !p.is_empty()) {
        Some(path) => (PathBuf::from(path), "$PBX_SDK_PATH".to_string()),
        None => {
            let built_in = Path::new(BUILT_IN_SDK);
            if !built_in.join("Cargo.toml").is_file() {
                return Err(CliError::Config(format!(
                    "cannot find pbx-sdk: this pbx was built from a source tree that is gone \
                     ({BUILT_IN_SDK}); set PBX_SDK_PATH to a checkout's sdk directory"
                )));
            }
            (
                built_in.to_path_buf(),
                "the pbx source tree this binary was built from".to_string(),
            )
        }
    };
    let manifest = path.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|err| {
        CliError::Config(format!(
            "{} (from {source}) is not the pbx SDK: cannot read {}: {err}",
            path.display(),
            manifest.display()
        ))
    })?;
    if !text.contains("name = \"pbx-sdk\"") {
        return Err(CliError::Config(format!(
            "{} (from {source}) is not the pbx SDK: its Cargo.toml is not package pbx-sdk",
            path.display()
        )));
    }
    let path = std::fs::canonicalize(&path)
        .map_err(|err| CliError::io(format!("cannot resolve {}", path.display()), err))?;
    Ok((path, source))
}

/// A TOML basic string holding `text`.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The template's files for app `name` depending on the SDK at `sdk`, as (relative path,
/// contents).
pub(crate) fn render(name: &str, sdk: &Path, sdk_source: &str) -> Vec<(&'static str, String)> {
    let sdk_path = toml_string(&sdk.to_string_lossy());
    FILES
        .iter()
        .map(|file| {
            let text = if file.path == "Cargo.lock" {
                file.text.to_string()
            } else {
                file.text
                    .replace("{{name}}", name)
                    .replace("{{crate}}", &crate_name(name))
                    .replace("{{sdk_path}}", &sdk_path)
                    .replace("{{sdk_source}}", sdk_source)
            };
            (file.path, text)
        })
        .collect()
}

/// Writes the rendered template into `dir`, which must not exist or be empty.
pub(crate) fn create(dir: &Path, files: &[(&str, String)]) -> Result<(), CliError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::Invalid(format!(
                    "{} already exists and is not empty; choose another --dir or name",
                    dir.display()
                )));
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(CliError::io(
                format!("{} exists but cannot be read", dir.display()),
                err,
            ));
        }
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| CliError::io(format!("cannot create {}", parent.display()), err))?;
        }
        std::fs::write(&path, text)
            .map_err(|err| CliError::io(format!("cannot write {}", path.display()), err))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["hello", "hello-2", "a", "ivr-menu-v2"] {
            validate_name(good).unwrap();
        }
        for bad in [
            "",
            "Hello",
            "2fa",
            "-x",
            "x-",
            "hello_world",
            "héllo",
            "a b",
            "fn",
            "test",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn renders_placeholders_and_quotes_the_sdk_path() {
        let files = render("my-app", Path::new("/src/p\"bx/sdk"), "$PBX_SDK_PATH");
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(cargo.contains("name = \"my-app\""), "{cargo}");
        assert!(
            cargo.contains(r#"pbx-sdk = { path = "/src/p\"bx/sdk" }"#),
            "{cargo}"
        );
        let parsed: toml::Table = toml::from_str(cargo).unwrap();
        assert!(parsed.contains_key("workspace"));
        let readme = &files.iter().find(|(p, _)| *p == "README.md").unwrap().1;
        assert!(readme.contains("my_app.wasm"), "{readme}");
        assert!(!files.iter().any(|(_, t)| t.contains("{{")));
    }
}
