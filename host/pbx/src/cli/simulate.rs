//! `pbx simulate APP.wasm SCENARIO`: runs a built app component in-process against a
//! scripted caller (`pbx-sim`), in virtual time and without a network, and prints what the
//! app did.
//!
//! Invariants: the component is validated and run by the same `pbx_plugin::Runtime` as
//! `pbx serve` (so the imports refuse what the server would refuse), with every leg's phase
//! synchronised into its mirror before each event, as the call session does; nothing here
//! touches the network or the clock. Exit codes: 0 when every expectation held, 1 when one
//! failed (or the app failed unexpectedly), 2 for a scenario that does not parse or a
//! component that does not load.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use pbx_plugin::{
    Action, AppInstance, CallContext, CallEnded, CallInfo, Capabilities, CollectedDigits, Endpoint,
    Event, HttpError, HttpResponse, MediaFinished, MemoryKv, RingStrategy, Runtime, RuntimeConfig,
};
use pbx_sim::{LogLevel, Scenario, SimEvent, SimRequest, Simulation};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

/// Bytes the simulated app's key-value store may hold.
const KV_LIMIT_BYTES: usize = 1024 * 1024;
/// The tracing target of the app's log lines (`pbx_plugin`'s `log` import).
const APP_LOG_TARGET: &str = "pbx::app";

/// The simulator's command-line arguments.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The app component to run (for example target/wasm32-wasip2/release/my_app.wasm).
    pub app: PathBuf,
    /// The scenario: what the caller does and what the app must have done (host/sim/README.md).
    pub scenario: PathBuf,
    /// A configuration value for the app, NAME=VALUE (repeatable; wins over the scenario's
    /// `config` lines).
    #[arg(long = "config", value_name = "NAME=VALUE", value_parser = name_value)]
    pub config: Vec<(String, String)>,
    /// A secret the app reads with `config.secret`, NAME=VALUE (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = name_value)]
    pub secrets: Vec<(String, String)>,
    /// A host the app may reach with `http.send` (repeatable; the scenario answers with
    /// `http-response`, nothing leaves this machine).
    #[arg(long = "allow-http", value_name = "HOST")]
    pub allow_http: Vec<String>,
    /// Print only failed expectations and the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

fn name_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

/// Why the simulation could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Scenario {
        path: String,
        source: pbx_sim::ParseError,
    },
    #[error("{path}: {message}")]
    App { path: String, message: String },
}

/// Runs the scenario against the app, prints the transcript and returns the exit code.
pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    match simulate(&args).await {
        Ok(outcome) => {
            for line in outcome.lines() {
                let shown = !args.quiet
                    || line.contains(" FAIL ")
                    || line.contains(" !! ")
                    || line == outcome.lines().last().map_or("", String::as_str);
                if shown {
                    println!("{line}");
                }
            }
            for f in outcome.failures() {
                let step = if f.step.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", f.step)
                };
                eprintln!(
                    "{}:{}: {step}{}",
                    args.scenario.display(),
                    f.line,
                    f.message
                );
            }
            Ok(if outcome.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(err) => {
            eprintln!("pbx: {err}");
            Ok(ExitCode::from(2))
        }
    }
}

async fn simulate(args: &SimulateArgs) -> Result<pbx_sim::Transcript, SetupError> {
    let scenario_path = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario).map_err(|source| SetupError::Read {
        path: scenario_path.clone(),
        source,
    })?;
    let scenario = Scenario::parse(&text)
        .map_err(|source| SetupError::Scenario {
            path: scenario_path,
            source,
        })?
        .with_config(args.config.iter().cloned());
    let app_path = args.app.display().to_string();
    let bytes = std::fs::read(&args.app).map_err(|source| SetupError::Read {
        path: app_path.clone(),
        source,
    })?;
    let app_err = |message: String| SetupError::App {
        path: app_path.clone(),
        message,
    };
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .map_err(|e| app_err(e.to_string()))?;
    let compiler = runtime.clone();
    let compiled = tokio::task::spawn_blocking(move || compiler.compile(&bytes))
        .await
        .map_err(|e| app_err(format!("compilation stopped: {e}")))?
        .map_err(|e| app_err(e.to_string()))?;
    let capabilities = Capabilities {
        kv: Some(Arc::new(MemoryKv::new(KV_LIMIT_BYTES))),
        http_allow: args.allow_http.clone(),
        config: scenario.config().to_vec(),
        secrets: args.secrets.clone(),
        ..Capabilities::default()
    };
    let mut ctx = CallContext::new(scenario.first_leg(), "simulate")
        .with_files(Arc::new(|_: &str| true))
        .with_capabilities(capabilities);
    if scenario.direction() == pbx_sim::Direction::Outbound {
        ctx = ctx.outbound();
    }
    let mut instance = runtime
        .instantiate(&compiled, ctx)
        .await
        .map_err(|e| app_err(e.to_string()))?;
    Ok(drive(&scenario, &mut instance).await)
}

/// The engine's loop, with the app's log lines captured from the plugin's tracing events.
async fn drive(scenario: &Scenario, instance: &mut AppInstance) -> pbx_sim::Transcript {
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(Registry::default().with(logs.clone()));
    let mut sim = Simulation::new(scenario);
    while let Some(event) = sim.poll_event() {
        for leg in sim.legs() {
            instance.set_leg(&leg.id, leg.phase, leg.direction);
        }
        logs.take();
        let result = instance.deliver(&to_event(&event)).await;
        let mut requests: Vec<SimRequest> = logs
            .take()
            .into_iter()
            .map(|(level, message)| SimRequest::Log { level, message })
            .collect();
        let result = result
            .map(|actions| {
                requests.extend(actions.iter().map(to_request));
                requests
            })
            .map_err(|e| e.to_string());
        sim.handle_response(result);
    }
    sim.finish()
}

fn to_event(event: &SimEvent) -> Event {
    match event {
        SimEvent::CallReceived(info) => Event::CallReceived(CallInfo {
            id: info.id.clone(),
            direction: info.direction,
            from: info.from.clone(),
            to: info.to.clone(),
            caller_name: info.caller_name.clone(),
            config: info.config.clone(),
            handed_over: None,
        }),
        SimEvent::Ringing { call } => Event::CallRinging { call: call.clone() },
        SimEvent::Answered { call } => Event::CallAnswered { call: call.clone() },
        SimEvent::Dtmf { call, digit } => Event::Dtmf {
            call: call.clone(),
            digit: digit.clone(),
        },
        SimEvent::SayFinished { call, finished } => Event::SayFinished {
            call: call.clone(),
            finished: media(finished),
        },
        SimEvent::PlayFinished { call, finished } => Event::PlayFinished {
            call: call.clone(),
            finished: media(finished),
        },
        SimEvent::Collected { call, digits, end } => Event::Collected {
            call: call.clone(),
            collected: CollectedDigits {
                digits: digits.clone(),
                end: *end,
            },
        },
        SimEvent::Finished { call, ended } => Event::CallFinished {
            call: call.clone(),
            ended: CallEnded {
                hangup_by: ended.by,
                hangup_reason: ended.reason,
                sip_status: ended.sip_status,
                answered: ended.answered,
            },
        },
        SimEvent::Timer { id, tag } => Event::Timer {
            id: *id,
            tag: tag.clone(),
        },
        SimEvent::HttpResponse { id, result } => Event::HttpResponse {
            id: *id,
            result: match result {
                Ok(reply) => Ok(HttpResponse {
                    status: reply.status,
                    headers: Vec::new(),
                    body: reply.body.as_bytes().to_vec(),
                }),
                Err(e) if e == "timeout" => Err(HttpError::Timeout),
                Err(e) if e == "too-large" => Err(HttpError::TooLarge),
                Err(e) => Err(HttpError::ConnectionFailed(e.clone())),
            },
        },
    }
}

fn media(m: &pbx_sim::MediaEnd) -> MediaFinished {
    MediaFinished {
        id: m.id,
        played_completely: m.completed,
        digit: m.digit.clone(),
    }
}

/// An endpoint as the scenario language names it: `user:bob`, a SIP URI, or a number
/// (with `;trunk=NAME`).
fn endpoint(e: &Endpoint) -> String {
    match e {
        Endpoint::SipUri(uri) => uri.clone(),
        Endpoint::User(name) => format!("user:{name}"),
        Endpoint::Phone {
            number,
            trunk: Some(trunk),
        } => format!("{number};trunk={trunk}"),
        Endpoint::Phone {
            number,
            trunk: None,
        } => number.clone(),
    }
}

fn to_request(action: &Action) -> SimRequest {
    match action {
        Action::Answer { call } => SimRequest::Answer { call: call.clone() },
        Action::EarlyMedia { call } => SimRequest::EarlyMedia { call: call.clone() },
        Action::Reject { call, status } => SimRequest::Reject {
            call: call.clone(),
            status: *status,
        },
        Action::Hangup { call } => SimRequest::Hangup { call: call.clone() },
        Action::Say {
            call,
            id,
            text,
            opts,
        } => SimRequest::Say {
            call: call.clone(),
            id: *id,
            text: text.clone(),
            opts: pbx_sim::SayOpts {
                loops: opts.loop_count,
                stop_on_dtmf: opts.stop_on_dtmf,
                language: opts.language.clone(),
            },
        },
        Action::Play {
            call,
            id,
            file_id,
            opts,
        } => SimRequest::Play {
            call: call.clone(),
            id: *id,
            file: file_id.clone(),
            opts: pbx_sim::PlayOpts {
                loops: opts.loop_count,
                offset_ms: opts.offset_ms,
                timeout_ms: opts.timeout_ms,
                stop_on_dtmf: opts.stop_on_dtmf,
            },
        },
        Action::PlayMusic { call, id, file_id } => SimRequest::PlayMusic {
            call: call.clone(),
            id: *id,
            file: file_id.clone(),
        },
        Action::StopMedia { call } => SimRequest::StopMedia { call: call.clone() },
        Action::CollectDtmf { call, opts } => SimRequest::Collect {
            call: call.clone(),
            max_digits: opts.max_digits,
            terminator: opts.terminator,
            timeout_ms: opts.timeout_ms,
        },
        Action::SendDtmf { call, digits, .. } => SimRequest::SendDtmf {
            call: call.clone(),
            digits: digits.clone(),
        },
        Action::Dial { call, target, opts } => SimRequest::Dial {
            new_leg: call.clone(),
            endpoint: endpoint(target),
            timeout_ms: opts.connect_timeout_ms,
        },
        Action::DialGroup { call, stages, .. } => {
            // The group rings until its last stage is exhausted.
            let total: u64 = stages
                .iter()
                .map(|s| match s.strategy {
                    RingStrategy::RingAll => u64::from(s.timeout_ms),
                    RingStrategy::Linear => u64::from(s.timeout_ms) * s.members.len() as u64,
                })
                .sum();
            let members: Vec<String> = stages
                .iter()
                .flat_map(|s| s.members.iter().map(endpoint))
                .collect();
            SimRequest::Dial {
                new_leg: call.clone(),
                endpoint: format!("group[{}]", members.join(", ")),
                timeout_ms: u32::try_from(total).unwrap_or(u32::MAX).max(1),
            }
        }
        Action::DialAndConnect {
            call,
            new_call,
            target,
            opts,
        } => SimRequest::DialAndConnect {
            call: call.clone(),
            new_leg: new_call.clone(),
            endpoint: endpoint(target),
            timeout_ms: opts.connect_timeout_ms,
        },
        Action::Connect { a, b } => SimRequest::Connect {
            a: a.clone(),
            b: b.clone(),
        },
        Action::Disconnect { call } => SimRequest::Disconnect { call: call.clone() },
        Action::SetTimer { id, ms, tag } => SimRequest::SetTimer {
            id: *id,
            ms: *ms,
            tag: tag.clone(),
        },
        Action::CancelTimer { id } => SimRequest::CancelTimer { id: *id },
        Action::HttpRequest { id, request } => SimRequest::Http {
            id: *id,
            method: request.method.as_str().to_owned(),
            url: request.url.clone(),
        },
        other => SimRequest::Other(format!("{other:?}")),
    }
}

/// Collects the app's log lines (the plugin logs them as tracing events with target
/// `pbx::app`) while the simulation's thread-local subscriber is installed.
#[derive(Clone, Default)]
struct LogCapture {
    lines: Arc<Mutex<Vec<(LogLevel, String)>>>,
}

impl LogCapture {
    fn take(&self) -> Vec<(LogLevel, String)> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: tracing::Subscriber> Layer<S> for LogCapture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() != APP_LOG_TARGET {
            return;
        }
        let level = match *meta.level() {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((level, message.0));
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_pairs() {
        assert_eq!(
            name_value("greeting=hi=there"),
            Ok(("greeting".to_owned(), "hi=there".to_owned()))
        );
        assert!(name_value("=x").is_err());
        assert!(name_value("novalue").is_err());
    }

    #[test]
    fn endpoints_print_as_the_scenario_names_them() {
        assert_eq!(endpoint(&Endpoint::User("bob".into())), "user:bob");
        assert_eq!(
            endpoint(&Endpoint::Phone {
                number: "+1555".into(),
                trunk: Some("t1".into())
            }),
            "+1555;trunk=t1"
        );
    }
}
