//! The `chatd` binary: `chatd` / `chatd serve` runs the server; every other command is a client
//! of a running server (`cli/`), one per endpoint, printing the server's JSON answer.

use std::path::PathBuf;
use std::process::ExitCode;

use chatd::cli::{self, ClientCommand, Target};
use chatd::config::{Settings, DEFAULT_CONFIG_FILE};
use chatd::startup::Application;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chatd",
    version,
    about = "A self-hosted chat server speaking the m3o chat and chats APIs",
    after_help = "Examples:\n  chatd serve --config /etc/chatd/chatd.toml\n  chatd new --user_ids=John,Barry\n  chatd chats list-messages --chat_id=general"
)]
struct Cli {
    /// The config file, layered over the built-in defaults (a missing file is fine).
    #[arg(long, global = true, default_value = DEFAULT_CONFIG_FILE)]
    config: PathBuf,
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    #[command(after_help = "Example:\n  chatd serve --config config/default.toml")]
    Serve,
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match &cli.command {
        None | Some(Command::Serve) => return serve(&cli.config),
        Some(Command::Client(command)) => command,
    };
    match actix_web::rt::System::new().block_on(cli::run(&cli.target, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            ExitCode::FAILURE
        }
    }
}

fn serve(config: &std::path::Path) -> ExitCode {
    let settings = match Settings::load(config) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("chatd: bad configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    chatd::telemetry::logs::init(&settings.log);
    let result = actix_web::rt::System::new()
        .block_on(async move { Application::build(settings).await?.run_until_stopped().await });
    match result {
        Ok(()) => {
            tracing::info!("chatd stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!(error = %err, "chatd failed");
            eprintln!("chatd: {err}");
            ExitCode::FAILURE
        }
    }
}
