//! The `chatd` binary: `chatd` / `chatd serve` runs the server; `new`, `send` and `history` are
//! client commands that print the server's JSON answer.

use std::path::PathBuf;
use std::process::ExitCode;

use chatd::cli::{self, ConnectArgs, HistoryArgs, NewArgs, SendArgs, Target};
use chatd::config::{Settings, DEFAULT_CONFIG_FILE};
use chatd::startup::Application;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "chatd", version, about = "A self-hosted chat server speaking the m3o chat and chats APIs")]
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
    Serve,
    /// Create a chat: `chatd new --user_ids=John,Barry`.
    New(NewArgs),
    /// Send a message: `chatd send --chat_id=.. --user_id=John --subject=Hello --text='Hey Barry'`.
    Send(SendArgs),
    /// Print a chat's history: `chatd history --chat_id=..`.
    History(HistoryArgs),
    /// Print a chat's messages as they arrive: `chatd connect --chat_id=.. --user_id=..`.
    Connect(ConnectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (path, body) = match &cli.command {
        None | Some(Command::Serve) => return serve(&cli.config),
        Some(Command::Connect(args)) => {
            let streamed = actix_web::rt::System::new().block_on(cli::connect(&cli.target, args));
            return report(streamed.map(|()| String::new()));
        }
        Some(Command::New(args)) => args.request(),
        Some(Command::Send(args)) => args.request(),
        Some(Command::History(args)) => args.request(),
    };
    report(actix_web::rt::System::new().block_on(cli::call(&cli.target, path, body)))
}

/// Prints a client command's output, or its error on stderr with a failing exit code.
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
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
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
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
