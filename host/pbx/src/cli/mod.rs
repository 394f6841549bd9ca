//! The `pbx` subcommands beside `serve`: app scaffolding and builds on this machine, and
//! everything else through the admin HTTP API (apps, numbers, calls, events), plus the local
//! simulator.
//!
//! Invariants: every command returns an exit code instead of exiting, errors are printed once
//! as `pbx: <message>` (an API error as `pbx: <code>: <message>`) with exit code 1, and
//! nothing here panics on input from the API, the user or a file.

mod app;
mod client;
mod config;
mod error;
mod events;
mod resources;
pub mod simulate;
mod table;
mod template;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use config::{ConnArgs, Connection, FileConfig};
pub use error::CliError;
pub use table::Table;

/// The subcommands that talk to a pbx or build apps; `main.rs` puts them beside `serve`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, build, deploy and manage call apps.
    #[command(subcommand)]
    App(AppCommand),
    /// List the numbers bound to apps, or bind and unbind one.
    Numbers(NumbersArgs),
    /// List live calls, the call history, or follow call changes as they happen.
    Calls(CallsArgs),
    /// Show recent events, or follow them live over the event websocket.
    Events(EventsArgs),
    /// Run an app in-process against a scripted caller (virtual time, no network) and print
    /// what it did.
    Simulate(simulate::SimulateArgs),
}

/// `pbx app ...`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create a ready-to-build app crate from the template.
    New {
        /// The app's name: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Where to create it [default: ./NAME]; must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the app in DIR as a WebAssembly component (cargo, target wasm32-wasip2).
    Build {
        /// The app's crate directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Upload the built component as a new version, deploy it and route numbers to it.
    Deploy(DeployArgs),
    /// List apps.
    List {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an app's versions.
    Versions {
        /// The app's name or id.
        app: String,
        #[command(flatten)]
        conn: ConnArgs,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deploy an earlier version of an app again.
    Rollback {
        /// The app's name or id.
        app: String,
        /// The version to deploy.
        version: u32,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete an app with its versions, settings, configuration and kv state; the numbers
    /// bound to it become unbound. Refused while a live call runs it.
    Delete {
        /// The app's name or id.
        app: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `pbx app deploy` flags.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The app's crate directory; its built component is deployed.
    #[arg(long, default_value = ".", conflicts_with = "wasm")]
    pub dir: PathBuf,
    /// Deploy this component file instead of a crate's build output.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// The app's name on the pbx [default: the crate's package name, or the file's stem].
    #[arg(long)]
    pub name: Option<String>,
    /// Route this number to the app (repeatable).
    #[arg(long = "number", value_name = "NUMBER")]
    pub numbers: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `pbx numbers [set|delete]`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NumbersArgs {
    #[command(subcommand)]
    pub action: Option<NumbersAction>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `pbx numbers` does besides listing.
#[derive(Debug, Subcommand)]
pub enum NumbersAction {
    /// Route NUMBER to APP (its name or id).
    Set {
        /// The dialled number.
        number: String,
        /// The app's name or id.
        app: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Stop routing NUMBER.
    Delete {
        /// The dialled number.
        number: String,
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `pbx calls`.
#[derive(Debug, Args)]
pub struct CallsArgs {
    /// Finished calls, newest first, instead of live ones.
    #[arg(long, conflicts_with = "follow")]
    pub history: bool,
    /// How many finished calls `--history` shows.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Stay connected and print each call change as it happens (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

/// `pbx events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Stay connected to the event websocket and print events as they happen (Ctrl-C stops);
    /// without it, the last events are shown.
    #[arg(long)]
    pub follow: bool,
    /// Only events of this type, such as CALL_RECEIVED (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events of this call.
    #[arg(long = "call", value_name = "CALL_ID")]
    pub call_id: Option<String>,
    /// Only events of this app.
    #[arg(long = "app", value_name = "APP_ID")]
    pub app_id: Option<String>,
    /// How many past events to show without `--follow`.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print each event's JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one subcommand on a fresh tokio runtime and returns the process's exit code.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("pbx: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(command));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("pbx: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Routes a parsed command to its implementation.
async fn dispatch(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::App(cmd) => app::run(cmd).await.map(|()| ExitCode::SUCCESS),
        Command::Numbers(args) => resources::numbers(args).await.map(|()| ExitCode::SUCCESS),
        Command::Calls(args) => resources::calls(args).await.map(|()| ExitCode::SUCCESS),
        Command::Events(args) => events::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Simulate(args) => simulate::run(args)
            .await
            .map_err(|err| CliError::Other(format!("{err:#}"))),
    }
}
