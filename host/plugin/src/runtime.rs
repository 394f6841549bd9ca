//! The engine, the linker, the compile cache and instantiation of one app per call.
//!
//! Invariants:
//! - One `Engine` (component model, epoch interruption, pooling allocator sized from
//!   [`RuntimeConfig`]) and one `Linker` (WASI p2 granting nothing, plus our imports) per
//!   `Runtime`, built once; clones of a `Runtime` share them.
//! - A component is compiled once per cache key per process; a [`CompiledApp`] is a
//!   pre-instantiated, type-checked component, cheap to clone and to instantiate, bound to
//!   the one contract version it exports handlers for ([`AbiVersion`]).
//! - The linker holds the `pbx:app@0.3.0`, `@0.2.0` and `@0.1.0` imports over the same
//!   `HostState`; a component may only import the version it exports (validate.rs).
//! - An instance's memory cap and event deadline are the app's [`AppLimits`] clamped to the
//!   runtime's (the pooling allocator's slot size and the global deadline), never above.
//! - Only artifacts this crate serialized are ever deserialized (see
//!   [`Runtime::load_serialized`]).
//! - Compilation is CPU-heavy and blocking: call `validate`, `compile` and
//!   `compile_cached` from a blocking thread (`tokio::task::spawn_blocking`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::{v0_1, v0_2, v0_3};
use crate::error::{PluginError, chain};
use crate::grants::{AppLimits, Capabilities};
use crate::host::{Directory, FileExists, HostState, Leg, NameExists};
use crate::instance::{AppInstance, Guest};
use crate::limits::{Counters, RuntimeStats, Ticker};
use crate::validate::{self, ValidationError};
use pbx_app::{AbiVersion, Direction, LegPhase};

/// Core instances one app component may contain (Rust std components have a handful).
const CORE_INSTANCES_PER_APP: u32 = 16;
/// Linear memories one app component may contain.
const MEMORIES_PER_APP: u32 = 2;
/// Tables one app component may contain.
const TABLES_PER_APP: u32 = 4;
/// Wasm page size; memory caps are rounded up to it.
const WASM_PAGE: usize = 64 * 1024;

/// Limits and sizing of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Cap on the linear memory of one instance (all its memories together).
    pub max_memory_bytes: usize,
    /// CPU time one event may run before the app is stopped with [`AppError::Deadline`](crate::AppError::Deadline).
    pub event_deadline: Duration,
    /// Most instances (calls) alive at once; sizes the pooling allocator.
    pub max_instances: u32,
    /// How often the epoch ticks; the deadline's resolution.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_memory_bytes: 64 * 1024 * 1024,
            event_deadline: Duration::from_millis(200),
            max_instances: 10_000,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// What the runtime needs to know about the session an instance serves.
#[derive(Clone)]
pub struct CallContext {
    /// The id of the leg that starts the session; it enters the session mirror at once
    /// (`Ringing` when inbound, `Dialing` when outbound).
    pub call_id: String,
    /// Which way that first leg was set up (inbound unless [`CallContext::outbound`]).
    pub direction: Direction,
    /// The app's id, for log lines.
    pub app_id: String,
    /// Whether a file id names an uploaded file, so that `play` can answer `not-found` at once.
    pub file_exists: FileExists,
    /// Whether a SIP user exists, so that dialing `user(..)` can answer `not-found` at once.
    pub user_exists: NameExists,
    /// Whether a trunk exists, so that dialing a phone number on it can answer `not-found`.
    pub trunk_exists: NameExists,
    /// What the app may use beyond call control (0.3 apps); the default grants nothing.
    /// Its `config` also fills an empty `CallInfo::config` of `on-call-received`.
    pub capabilities: Capabilities,
    /// The app's own memory cap and event deadline, within the runtime's.
    pub limits: AppLimits,
}

impl CallContext {
    /// An inbound session in which no file exists (every `play` gets `not-found`) and every
    /// user and trunk name is accepted (the call layer finds out when it dials).
    pub fn new(call_id: impl Into<String>, app_id: impl Into<String>) -> Self {
        CallContext {
            call_id: call_id.into(),
            direction: Direction::Inbound,
            app_id: app_id.into(),
            file_exists: Arc::new(|_| false),
            user_exists: Arc::new(|_| true),
            trunk_exists: Arc::new(|_| true),
            capabilities: Capabilities::default(),
            limits: AppLimits::default(),
        }
    }

    /// Marks the first leg as outbound (a call placed with `POST /v1/calls`), so it starts
    /// as `Dialing`.
    pub fn outbound(mut self) -> Self {
        self.direction = Direction::Outbound;
        self
    }

    /// Sets how `play` and music options check file ids.
    pub fn with_files(mut self, file_exists: FileExists) -> Self {
        self.file_exists = file_exists;
        self
    }

    /// Sets how dialing checks SIP user names.
    pub fn with_users(mut self, user_exists: NameExists) -> Self {
        self.user_exists = user_exists;
        self
    }

    /// Sets how dialing checks trunk names.
    pub fn with_trunks(mut self, trunk_exists: NameExists) -> Self {
        self.trunk_exists = trunk_exists;
        self
    }

    /// Grants the app its key-value store, HTTP hosts, configuration and secrets.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Sets the app's own memory cap and event deadline (clamped to the runtime's).
    pub fn with_limits(mut self, limits: AppLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("call_id", &self.call_id)
            .field("direction", &self.direction)
            .field("app_id", &self.app_id)
            .field("capabilities", &self.capabilities)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A validated, compiled and pre-instantiated app version, ready for per-call instances.
#[derive(Clone)]
pub struct CompiledApp {
    component: Component,
    pre: Pre,
}

/// The pre-instantiated component, by contract version.
#[derive(Clone)]
enum Pre {
    V0_1(v0_1::CallAppPre<HostState>),
    V0_2(v0_2::CallAppPre<HostState>),
    V0_3(v0_3::CallAppPre<HostState>),
}

impl CompiledApp {
    /// The contract version the component was built against.
    pub fn abi(&self) -> AbiVersion {
        match self.pre {
            Pre::V0_1(_) => AbiVersion::V0_1,
            Pre::V0_2(_) => AbiVersion::V0_2,
            Pre::V0_3(_) => AbiVersion::V0_3,
        }
    }

    /// Serializes the compiled code for an on-disk cache; load it back with
    /// [`Runtime::load_serialized`] in a runtime of the same build and configuration.
    pub fn serialize(&self) -> Result<Vec<u8>, PluginError> {
        self.component
            .serialize()
            .map_err(|e| PluginError::Artifact(chain(&e)))
    }
}

impl std::fmt::Debug for CompiledApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledApp")
            .field("abi", &self.abi())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    linker: Linker<HostState>,
    pub(crate) config: RuntimeConfig,
    pub(crate) deadline_ticks: u64,
    pub(crate) counters: Counters,
    cache: Mutex<HashMap<String, CompiledApp>>,
    _ticker: Ticker,
}

/// The plugin runtime: validates, compiles and caches apps, and instantiates one per call.
/// Cheap to clone; the epoch ticker runs while any clone or instance is alive.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let max_memory_bytes = config
            .max_memory_bytes
            .max(WASM_PAGE)
            .div_ceil(WASM_PAGE)
            .saturating_mul(WASM_PAGE);
        let config = RuntimeConfig {
            max_memory_bytes,
            max_instances: config.max_instances.max(1),
            epoch_tick: config.epoch_tick.max(Duration::from_micros(100)),
            ..config
        };
        let n = config.max_instances;

        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_APP))
            .total_memories(n.saturating_mul(MEMORIES_PER_APP))
            .total_tables(n.saturating_mul(TABLES_PER_APP))
            .total_stacks(n)
            .max_core_instances_per_component(CORE_INSTANCES_PER_APP)
            .max_memories_per_component(MEMORIES_PER_APP)
            .max_tables_per_component(TABLES_PER_APP)
            .max_memory_size(max_memory_bytes);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            // A reservation of exactly the cap keeps address space per slot small; wasm
            // accesses are then bounds-checked, which call apps do not notice.
            .memory_reservation(max_memory_bytes as u64)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| PluginError::Setup(chain(&e)))?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Setup(chain(&e)))?;
        v0_3::CallApp::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Setup(chain(&e)))?;
        v0_2::CallApp::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Setup(chain(&e)))?;
        v0_1::CallApp::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Setup(chain(&e)))?;

        let ticker = Ticker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| PluginError::Setup(format!("epoch ticker: {e}")))?;
        let deadline_ticks = ticks(config.event_deadline, config.epoch_tick);

        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                deadline_ticks,
                config,
                counters: Counters::default(),
                cache: Mutex::new(HashMap::new()),
                _ticker: ticker,
            }),
        })
    }

    /// The configuration in effect (memory cap rounded up to whole wasm pages).
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Counters of instances, events, traps, deadline hits and memory-cap hits.
    pub fn stats(&self) -> RuntimeStats {
        self.inner.counters.snapshot()
    }

    /// Checks an upload: a component, that compiles, exporting `pbx:app/handlers@0.3.0` (or
    /// `@0.2.0`, `@0.1.0`) at the right types and importing only what we grant at that same
    /// version.
    /// Blocking (it compiles).
    pub fn validate(&self, bytes: &[u8]) -> Result<(), ValidationError> {
        self.compile(bytes).map(|_| ())
    }

    /// Validates and compiles a component. Blocking; prefer [`Runtime::compile_cached`].
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledApp, ValidationError> {
        validate::check_header(bytes)?;
        let component = Component::new(&self.inner.engine, bytes).map_err(|e| {
            ValidationError::CompileFailed(format!("the component does not compile: {}", chain(&e)))
        })?;
        self.prepare(component)
    }

    /// Returns the app compiled under `key` (for example "app_id:version" or the sha256),
    /// compiling and caching it on first use, so each version compiles once per process.
    pub fn compile_cached(&self, key: &str, bytes: &[u8]) -> Result<CompiledApp, ValidationError> {
        if let Some(app) = self.cached(key) {
            return Ok(app);
        }
        let app = self.compile(bytes)?;
        Ok(self.insert_cached(key, app))
    }

    /// The app cached under `key`, if any.
    pub fn cached(&self, key: &str) -> Option<CompiledApp> {
        self.cache().get(key).cloned()
    }

    /// Caches `app` under `key` (keeping an entry already there) and returns the cached one.
    pub fn insert_cached(&self, key: &str, app: CompiledApp) -> CompiledApp {
        self.cache().entry(key.to_owned()).or_insert(app).clone()
    }

    /// Drops the app cached under `key` (a deleted version); live instances keep working.
    pub fn evict(&self, key: &str) {
        self.cache().remove(key);
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, CompiledApp>> {
        // The map is consistent after any panic mid-operation (single inserts/removes).
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads an artifact written by [`CompiledApp::serialize`] and checks it as an upload.
    ///
    /// Only pass bytes this crate wrote to the pbx data directory: deserializing runs no
    /// verification of the machine code. A stale or foreign artifact (other wasmtime
    /// version or configuration) is refused with [`PluginError::Artifact`]; recompile then.
    #[allow(unsafe_code, reason = "deserializing our own compiled artifacts")]
    pub fn load_serialized(&self, bytes: &[u8]) -> Result<CompiledApp, PluginError> {
        // SAFETY: `Component::deserialize` requires trusted input. The only artifacts given
        // here are ones `CompiledApp::serialize` wrote into our own data directory; wasmtime
        // still checks the header (version, target, engine configuration) and refuses
        // artifacts from another build or configuration.
        let component = unsafe { Component::deserialize(&self.inner.engine, bytes) }
            .map_err(|e| PluginError::Artifact(chain(&e)))?;
        Ok(self.prepare(component)?)
    }

    fn prepare(&self, component: Component) -> Result<CompiledApp, ValidationError> {
        let engine = &self.inner.engine;
        let abi = validate::check_exports(engine, &component)?;
        validate::check_imports(engine, &component, abi)?;
        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            ValidationError::ImportNotGranted(format!(
                "the component's imports do not match what the host grants: {}",
                chain(&e)
            ))
        })?;
        let missing = |e: wasmtime::Error| ValidationError::MissingExport(chain(&e));
        let pre = match abi {
            AbiVersion::V0_1 => Pre::V0_1(v0_1::CallAppPre::new(pre).map_err(missing)?),
            AbiVersion::V0_2 => Pre::V0_2(v0_2::CallAppPre::new(pre).map_err(missing)?),
            AbiVersion::V0_3 => Pre::V0_3(v0_3::CallAppPre::new(pre).map_err(missing)?),
        };
        Ok(CompiledApp { component, pre })
    }

    /// Creates the instance serving one session: its own store, memory cap and CPU deadline
    /// (the context's [`AppLimits`] within the runtime's), the context's [`Capabilities`],
    /// and a WASI context that grants nothing. Runs the component's start code under the
    /// deadline.
    pub async fn instantiate(
        &self,
        app: &CompiledApp,
        ctx: CallContext,
    ) -> Result<AppInstance, PluginError> {
        let inner = &self.inner;
        let first = Leg {
            phase: match ctx.direction {
                Direction::Inbound => LegPhase::Ringing,
                Direction::Outbound => LegPhase::Dialing,
            },
            direction: ctx.direction,
        };
        let directory = Directory {
            files: ctx.file_exists,
            users: ctx.user_exists,
            trunks: ctx.trunk_exists,
        };
        let max_memory_bytes =
            ctx.limits
                .max_memory_bytes
                .map_or(inner.config.max_memory_bytes, |m| {
                    m.div_ceil(WASM_PAGE)
                        .saturating_mul(WASM_PAGE)
                        .min(inner.config.max_memory_bytes)
                });
        let deadline_ticks = ctx.limits.event_deadline.map_or(inner.deadline_ticks, |d| {
            ticks(d, inner.config.epoch_tick).min(inner.deadline_ticks)
        });
        let state = HostState::new(
            ctx.call_id,
            first,
            ctx.app_id,
            directory,
            ctx.capabilities,
            max_memory_bytes,
            deadline_ticks,
        );
        let mut store = Store::new(&inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|mut cx| Ok(cx.data_mut().deadline.on_tick()));
        store.data_mut().deadline.reset(deadline_ticks);
        store.set_epoch_deadline(1);
        let instantiated = match &app.pre {
            Pre::V0_1(pre) => pre.instantiate_async(&mut store).await.map(Guest::V0_1),
            Pre::V0_2(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(|app| Guest::V0_2(Box::new(app))),
            Pre::V0_3(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(|app| Guest::V0_3(Box::new(app))),
        };
        match instantiated {
            Ok(bindings) => {
                inner
                    .counters
                    .instances
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(AppInstance::new(Arc::clone(inner), store, bindings))
            }
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                Err(PluginError::AtCapacity(inner.config.max_instances))
            }
            Err(e)
                if e.downcast_ref::<wasmtime::Trap>().is_some()
                    || store.data().limiter.exceeded() =>
            {
                Err(PluginError::App(crate::instance::classify(
                    inner, &store, &e,
                )))
            }
            Err(e) => Err(PluginError::Instantiate(chain(&e))),
        }
    }
}

/// How many epoch ticks of `tick` make `deadline` (at least one).
fn ticks(deadline: Duration, tick: Duration) -> u64 {
    let tick_nanos = tick.as_nanos().max(1);
    u64::try_from(deadline.as_nanos().div_ceil(tick_nanos))
        .unwrap_or(u64::MAX)
        .max(1)
}
