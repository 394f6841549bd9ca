//! `pbx app new|build|deploy|list|versions|rollback`: scaffolding and building app crates on
//! this machine, and managing apps through the admin API.
//!
//! Invariants: `build` and `deploy` agree on where a crate's component is
//! (`<target dir>/wasm32-wasip2/release/<crate name>.wasm`, the target dir as cargo reports
//! it); `deploy` checks locally that the file is a component before uploading, and routes
//! numbers only after the version is deployed, so a routed number never reaches an app
//! without an active version.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::Command;

use super::client::Api;
use super::resources::{format_time, opt_str, str_of};
use super::{AppCommand, CliError, ConnArgs, DeployArgs, Table, template};

/// The Rust target apps are built for; it produces components.
const TARGET: &str = "wasm32-wasip2";

/// Runs one `pbx app` subcommand.
pub(crate) async fn run(command: AppCommand) -> Result<(), CliError> {
    match command {
        AppCommand::New { name, dir } => new_app(&name, dir),
        AppCommand::Build { dir } => build(&dir).await.map(|_| ()),
        AppCommand::Deploy(args) => deploy(args).await,
        AppCommand::List { conn, json } => list(&conn, json).await,
        AppCommand::Versions { app, conn, json } => versions(&conn, &app, json).await,
        AppCommand::Rollback { app, version, conn } => rollback(&conn, &app, version).await,
        AppCommand::Delete { app, conn } => delete(&conn, &app).await,
    }
}

/// `pbx app new NAME [--dir PATH]`.
fn new_app(name: &str, dir: Option<PathBuf>) -> Result<(), CliError> {
    template::validate_name(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let (sdk, source) = template::find_sdk(std::env::var("PBX_SDK_PATH").ok())?;
    let files = template::render(name, &sdk, &source);
    template::create(&dir, &files)?;
    println!("created app {name} in {}", dir.display());
    println!("pbx-sdk: {} (from {source})", sdk.display());
    let crate_name = template::crate_name(name);
    println!();
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  pbx app build");
    println!("  pbx simulate target/{TARGET}/release/{crate_name}.wasm scenarios/basic.sim");
    println!("  pbx app deploy --number 1234");
    Ok(())
}

/// A crate's package name, read from `dir/Cargo.toml`.
fn package_name(dir: &Path) -> Result<String, CliError> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|err| {
        CliError::io(
            format!(
                "cannot read {} (is {} an app crate? create one with `pbx app new`)",
                manifest.display(),
                dir.display()
            ),
            err,
        )
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|err| CliError::Invalid(format!("{}: {err}", manifest.display())))?;
    table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "{} has no [package] name; run this in an app crate",
                manifest.display()
            ))
        })
}

/// The target directory cargo uses for the crate in `dir`: `cargo metadata`'s answer, else
/// `$CARGO_TARGET_DIR` (relative to `dir`), else `dir/target`.
async fn target_dir(dir: &Path) -> PathBuf {
    let metadata = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    if let Ok(output) = metadata
        && output.status.success()
        && let Ok(value) = serde_json::from_slice::<Value>(&output.stdout)
        && let Some(target) = value.get("target_directory").and_then(Value::as_str)
    {
        return PathBuf::from(target);
    }
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(target) => dir.join(target),
        None => dir.join("target"),
    }
}

/// Where the crate in `dir`'s release component is, and the package name.
async fn component_path(dir: &Path) -> Result<(PathBuf, String), CliError> {
    let package = package_name(dir)?;
    let wasm = target_dir(dir)
        .await
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", template::crate_name(&package)));
    Ok((wasm, package))
}

/// Checks that `bytes` are a WebAssembly component (not a core module or something else),
/// with the same check the server's upload runs first.
fn check_component(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    pbx_plugin::check_component_header(bytes)
        .map_err(|err| CliError::Invalid(format!("{}: {err}", path.display())))
}

/// Reads a component file and checks it.
fn read_component(path: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|err| CliError::io(format!("cannot read {}", path.display()), err))?;
    check_component(path, &bytes)?;
    Ok(bytes)
}

/// A size for people: bytes, KiB or MiB.
fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    // Precision loss above 2^52 bytes does not matter for a display.
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{:.1} MiB", b / KIB / KIB)
    }
}

/// Adds the wasm target with rustup when it is missing (skipped when rustup is not there).
async fn ensure_target() -> Result<(), CliError> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await;
    let output = match listed {
        Ok(output) if output.status.success() => output,
        _ => {
            eprintln!("pbx: rustup not found; assuming the {TARGET} target is installed");
            return Ok(());
        }
    };
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    eprintln!("pbx: adding the {TARGET} target: rustup target add {TARGET}");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|err| CliError::io("cannot run rustup", err))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Tool(format!(
            "rustup target add {TARGET} failed ({status})"
        )))
    }
}

/// `pbx app build [--dir PATH]`: builds the component and returns its path.
async fn build(dir: &Path) -> Result<PathBuf, CliError> {
    package_name(dir)?;
    ensure_target().await?;
    eprintln!(
        "pbx: cargo build --release --target {TARGET} in {}",
        dir.display()
    );
    // cargo's output goes straight to the terminal (both streams inherited).
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|err| CliError::io("cannot run cargo", err))?;
    if !status.success() {
        return Err(CliError::Tool(format!("cargo build failed ({status})")));
    }
    let (wasm, _) = component_path(dir).await?;
    let bytes = read_component(&wasm)?;
    println!(
        "built {} ({})",
        wasm.display(),
        human_size(bytes.len() as u64)
    );
    Ok(wasm)
}

/// The component to deploy and the app name to deploy it as.
async fn deploy_source(args: &DeployArgs) -> Result<(PathBuf, String), CliError> {
    match &args.wasm {
        Some(wasm) => {
            let name = match &args.name {
                Some(name) => name.clone(),
                None => wasm
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        CliError::Invalid(format!(
                            "cannot name an app after {}; pass --name",
                            wasm.display()
                        ))
                    })?,
            };
            Ok((wasm.clone(), name))
        }
        None => {
            let (wasm, package) = component_path(&args.dir).await?;
            if !wasm.is_file() {
                return Err(CliError::Invalid(format!(
                    "{} does not exist; run `pbx app build` first",
                    wasm.display()
                )));
            }
            Ok((wasm, args.name.clone().unwrap_or(package)))
        }
    }
}

/// The upload's progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("uploading [{bar:40}] {bytes}/{total_bytes} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Finds the app named `name`, or creates it.
async fn find_or_create(api: &Api, name: &str) -> Result<(Value, bool), CliError> {
    let apps = api.get(api.url(&["v1", "apps"], &[])).await?;
    if let Some(app) = items(&apps, "apps")
        .iter()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(name))
    {
        return Ok((app.clone(), false));
    }
    let app = api
        .send(
            Method::POST,
            api.url(&["v1", "apps"], &[]),
            Some(&json!({ "name": name })),
        )
        .await?;
    Ok((app, true))
}

/// `pbx app deploy`.
async fn deploy(args: DeployArgs) -> Result<(), CliError> {
    let api = Api::connect(&args.conn)?;
    let (wasm, name) = deploy_source(&args).await?;
    let bytes = read_component(&wasm)?;
    let (app, created) = find_or_create(&api, &name).await?;
    let app_id = str_of(&app, "id");
    if app_id.is_empty() {
        return Err(CliError::Unexpected {
            url: api.url(&["v1", "apps"], &[]).to_string(),
            reason: "the app has no id".into(),
        });
    }
    if created {
        eprintln!("pbx: created app {name} ({app_id})");
    }

    let bar = progress_bar(bytes.len() as u64);
    let uploaded = api
        .upload_wasm(
            api.url(&["v1", "apps", &app_id, "versions"], &[]),
            bytes.into(),
            &bar,
        )
        .await;
    bar.finish_and_clear();
    let uploaded = uploaded?;
    let version = uploaded
        .get("version")
        .and_then(Value::as_u64)
        .ok_or_else(|| CliError::Unexpected {
            url: api
                .url(&["v1", "apps", &app_id, "versions"], &[])
                .to_string(),
            reason: "the upload's answer has no version number".into(),
        })?;
    api.send(
        Method::POST,
        api.url(&["v1", "apps", &app_id, "deploy"], &[]),
        Some(&json!({ "version": version })),
    )
    .await?;
    for number in &args.numbers {
        api.send(
            Method::PUT,
            api.url(&["v1", "numbers", number], &[]),
            Some(&json!({ "app_id": app_id })),
        )
        .await?;
    }
    println!("app      {name} ({app_id})");
    println!(
        "version  {version} deployed ({}, sha256 {})",
        human_size(uploaded.get("size").and_then(Value::as_u64).unwrap_or(0)),
        short(&str_of(&uploaded, "sha256"), 12)
    );
    if args.numbers.is_empty() {
        println!("numbers  (none given; route one with --number or `pbx numbers set`)");
    } else {
        println!("numbers  {}", args.numbers.join(", "));
    }
    Ok(())
}

/// The list under `key` of an answer like `{"apps": [...]}`; a bare array is accepted too.
pub(crate) fn items<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer
        .get(key)
        .or(Some(answer))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// At most `n` characters of `text`.
fn short(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// The app whose id or name is `app`.
pub(crate) async fn resolve_app(api: &Api, app: &str) -> Result<Value, CliError> {
    let apps = api.get(api.url(&["v1", "apps"], &[])).await?;
    let list = items(&apps, "apps");
    list.iter()
        .find(|a| a.get("id").and_then(Value::as_str) == Some(app))
        .or_else(|| {
            list.iter()
                .find(|a| a.get("name").and_then(Value::as_str) == Some(app))
        })
        .cloned()
        .ok_or_else(|| CliError::Invalid(format!("no app with the name or id {app:?}")))
}

/// `pbx app list`.
async fn list(conn: &ConnArgs, json: bool) -> Result<(), CliError> {
    let api = Api::connect(conn)?;
    let apps = api.get(api.url(&["v1", "apps"], &[])).await?;
    if json {
        println!("{apps:#}");
        return Ok(());
    }
    let mut table = Table::new(&["ID", "NAME", "ACTIVE", "CREATED"]);
    for app in items(&apps, "apps") {
        table.row([
            str_of(app, "id"),
            str_of(app, "name"),
            opt_str(app, "active_version").unwrap_or_else(|| "-".into()),
            format_time(app.get("created_at")),
        ]);
    }
    table.print_or("no apps; deploy one with `pbx app deploy`");
    Ok(())
}

/// `pbx app versions APP`.
async fn versions(conn: &ConnArgs, app: &str, json: bool) -> Result<(), CliError> {
    let api = Api::connect(conn)?;
    let app = resolve_app(&api, app).await?;
    let app_id = str_of(&app, "id");
    let answer = api
        .get(api.url(&["v1", "apps", &app_id, "versions"], &[]))
        .await?;
    if json {
        println!("{answer:#}");
        return Ok(());
    }
    let active = app.get("active_version").and_then(Value::as_u64);
    let mut table = Table::new(&["VERSION", "ACTIVE", "SIZE", "SHA256", "CREATED"]);
    for version in items(&answer, "versions") {
        let number = version.get("version").and_then(Value::as_u64);
        table.row([
            opt_str(version, "version").unwrap_or_default(),
            if number.is_some() && number == active {
                "*".to_string()
            } else {
                String::new()
            },
            human_size(version.get("size").and_then(Value::as_u64).unwrap_or(0)),
            short(&str_of(version, "sha256"), 12),
            format_time(version.get("created_at")),
        ]);
    }
    table.print_or("no versions uploaded");
    Ok(())
}

/// `pbx app rollback APP VERSION`.
async fn rollback(conn: &ConnArgs, app: &str, version: u32) -> Result<(), CliError> {
    let api = Api::connect(conn)?;
    let app = resolve_app(&api, app).await?;
    let app_id = str_of(&app, "id");
    let previous = opt_str(&app, "active_version");
    api.send(
        Method::POST,
        api.url(&["v1", "apps", &app_id, "deploy"], &[]),
        Some(&json!({ "version": version })),
    )
    .await?;
    println!(
        "app {} ({app_id}) now runs version {version} for new calls (was {}); live calls \
         keep theirs",
        str_of(&app, "name"),
        previous.unwrap_or_else(|| "none".into())
    );
    Ok(())
}

/// `pbx app delete APP`.
async fn delete(conn: &ConnArgs, app: &str) -> Result<(), CliError> {
    let api = Api::connect(conn)?;
    let app = resolve_app(&api, app).await?;
    let app_id = str_of(&app, "id");
    api.send(Method::DELETE, api.url(&["v1", "apps", &app_id], &[]), None)
        .await?;
    println!(
        "app {} ({app_id}) deleted with its versions; its numbers are unbound",
        str_of(&app, "name")
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    #[test]
    fn component_check() {
        let p = Path::new("x.wasm");
        check_component(p, b"\0asm\x0d\0\x01\0rest").unwrap();
        let core = check_component(p, b"\0asm\x01\0\0\0").unwrap_err();
        assert!(core.to_string().contains("core"), "{core}");
        assert!(check_component(p, b"hello").is_err());
        assert!(check_component(p, b"").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn items_accepts_wrapped_and_bare_lists() {
        assert_eq!(items(&json!({"apps": [1, 2]}), "apps").len(), 2);
        assert_eq!(items(&json!([1]), "apps").len(), 1);
        assert!(items(&json!({"other": 1}), "apps").is_empty());
    }
}
