//! Compiled app versions: each version is compiled once per process and its artifact kept on
//! disk, so a restart does not recompile and a call never waits for the compiler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use pbx_plugin::{CompiledApp, Runtime};
use tracing::{info, warn};

/// Names the compiler that made a stored artifact.
const ENGINE_KEY: &str = "wasmtime-48.0.8";

/// The in-memory map from (app id, version) to its compiled form, backed by the store.
pub struct AppCache {
    runtime: Arc<Runtime>,
    store: Arc<pbx_store::Store>,
    compiled: Mutex<HashMap<(String, u32), Arc<CompiledApp>>>,
}

impl AppCache {
    /// Creates an empty cache.
    pub fn new(runtime: Arc<Runtime>, store: Arc<pbx_store::Store>) -> Self {
        AppCache {
            runtime,
            store,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The runtime the cache compiles for.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Returns the compiled version: from memory, from the runtime's cache (a component
    /// compiled when it was uploaded is keyed by its sha256), from the stored artifact, or by
    /// compiling; whatever was compiled here is stored as an artifact for the next start.
    /// Blocking: call it from a blocking thread when it may compile.
    pub fn get(&self, app_id: &str, version: u32) -> anyhow::Result<Arc<CompiledApp>> {
        let key = (app_id.to_string(), version);
        if let Some(app) = self.lock().get(&key) {
            return Ok(app.clone());
        }
        let sha = self
            .store
            .stored_version(app_id, version)?
            .with_context(|| format!("app {app_id} has no version {version}"))?
            .sha256;
        let stored = match self.store.artifact(app_id, version, ENGINE_KEY) {
            Ok(Some(artifact)) => match self.runtime.cached(&sha) {
                Some(app) => Some(app),
                None => match self.runtime.load_serialized(&artifact) {
                    Ok(app) => Some(self.runtime.insert_cached(&sha, app)),
                    Err(err) => {
                        warn!(app_id, version, %err, "stored artifact unusable; recompiling");
                        None
                    }
                },
            },
            _ => None,
        };
        let app = match stored {
            Some(app) => app,
            None => {
                let bytes = self.store.version_bytes(app_id, version)?;
                let app = self.runtime.compile_cached(&sha, &bytes)?;
                info!(
                    app_id,
                    version, "app version compiled (or reused from upload); storing its artifact"
                );
                match app.serialize() {
                    Ok(artifact) => {
                        if let Err(err) = self
                            .store
                            .put_artifact(app_id, version, ENGINE_KEY, &artifact)
                        {
                            warn!(app_id, version, %err, "cannot store compiled artifact");
                        }
                    }
                    Err(err) => warn!(app_id, version, %err, "cannot serialize compiled app"),
                }
                app
            }
        };
        let app = Arc::new(app);
        self.lock().insert(key, app.clone());
        Ok(app)
    }

    /// Like `get`, on a blocking thread.
    pub async fn get_async(
        self: &Arc<Self>,
        app_id: &str,
        version: u32,
    ) -> anyhow::Result<Arc<CompiledApp>> {
        if let Some(app) = self.lock().get(&(app_id.to_string(), version)) {
            return Ok(app.clone());
        }
        let this = self.clone();
        let app_id = app_id.to_string();
        tokio::task::spawn_blocking(move || this.get(&app_id, version)).await?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Arc<CompiledApp>>> {
        self.compiled.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
