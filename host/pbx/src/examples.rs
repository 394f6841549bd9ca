//! Installs the example apps at start, so that `scripts/run.sh` gives a newcomer a PBX that
//! answers 1000 (hello) and 2000 (ivr) with nothing else to do, and has the call-control
//! examples ready: conference-callback on 3000, follow-me on 4000, attended-transfer on 5000
//! (those dial SIP users, which the admin creates).
//!
//! Idempotent: an app already stored with the same component bytes is left alone; a changed
//! component becomes a new version and is deployed; a number bound to another app by the admin
//! is never taken over.

use std::path::Path;

use anyhow::Context;
use pbx_plugin::Runtime;
use tracing::{info, warn};

use crate::backend::component_key;

/// The example apps and the numbers they answer.
const EXAMPLES: &[(&str, &str)] = &[
    ("hello", "1000"),
    ("ivr", "2000"),
    ("conference_callback", "3000"),
    ("follow_me", "4000"),
    ("attended_transfer", "5000"),
];

/// Installs every example found in `dir`; returns (name, number) for each one routed.
pub fn install(
    store: &pbx_store::Store,
    runtime: &Runtime,
    dir: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut installed = Vec::new();
    for (name, number) in EXAMPLES {
        let path = dir.join(format!("{name}.wasm"));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) => {
                warn!(path = %path.display(), %err, "example app not built; skipped (run scripts/build-plugins.sh)");
                continue;
            }
        };
        let sha = component_key(&bytes);
        runtime
            .compile_cached(&sha, &bytes)
            .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
        // The example apps belong to the default account.
        let account = pbx_store::DEFAULT_ACCOUNT_ID;
        let app = match store
            .list_apps(account)?
            .into_iter()
            .find(|a| a.name == *name)
        {
            Some(app) => app,
            None => store.create_app(account, name)?,
        };
        let versions = store.versions(account, &app.id)?;
        let current = versions.iter().find(|v| v.sha256 == sha);
        let version = match current {
            Some(version) => version.version,
            None => {
                let version = store.add_version(account, &app.id, &bytes)?;
                info!(
                    app = name,
                    version = version.version,
                    "stored example app version"
                );
                version.version
            }
        };
        if app.active_version != Some(version) {
            store
                .deploy(account, &app.id, version)
                .with_context(|| format!("cannot deploy {name}"))?;
        }
        let bound = store
            .list_numbers(account)?
            .into_iter()
            .find(|n| n.number == *number);
        match bound {
            Some(route) if route.app_id != app.id => {
                warn!(number, "number is bound to another app; example not routed");
                continue;
            }
            Some(_) => {}
            None => {
                store.set_number(account, number, &app.id)?;
            }
        }
        installed.push((name.to_string(), number.to_string()));
    }
    Ok(installed)
}
