//! The `pbx` binary: parses the command line; `serve` sets up logging and runs the server,
//! every other subcommand is the CLI in `pbx::cli` (apps, numbers, calls, events, simulate).

use clap::{Parser, Subcommand};

use pbx::config::{Config, ServeArgs};

/// A programmable PBX whose call logic runs as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "pbx", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the PBX: SIP on UDP and TCP, RTP media, the app runtime and the admin HTTP API.
    Serve(ServeArgs),
    #[command(flatten)]
    Cli(pbx::cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Cli(command) => pbx::cli::run(command),
        Command::Serve(args) => {
            let config = match Config::resolve(args) {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("pbx: {err:#}");
                    return std::process::ExitCode::from(2);
                }
            };
            pbx::logging::init(config.log_json);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("pbx: cannot start the async runtime: {err}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on(pbx::server::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("pbx: {err:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}
