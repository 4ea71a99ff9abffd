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
    /// Copy a running server's data into an empty directory, without stopping writes.
    #[command(after_help = "Example:\n  chatd backup --out /var/backups/chatd-2026-12-01")]
    Backup(cli::backup::BackupArgs),
    /// Verify every checksum of a stopped server's data dir (or a backup); non-zero exit on damage.
    #[command(after_help = "Example:\n  chatd check --data /var/lib/chatd")]
    Check(cli::check::CheckArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match &cli.command {
        None | Some(Command::Serve) => return serve(&cli.config),
        Some(Command::Check(args)) => return check(args),
        Some(Command::Backup(args)) => return backup(&cli, args),
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

fn backup(cli: &Cli, args: &cli::backup::BackupArgs) -> ExitCode {
    // The admin key of the config file, when it has one.
    let config_key = Settings::load(&cli.config).ok().map(|s| s.auth.admin_key.expose().to_string());
    let config_key = config_key.filter(|k| !k.is_empty());
    match actix_web::rt::System::new().block_on(cli::backup::run(&cli.target, args, config_key)) {
        Ok(answer) => {
            cli::print_answer(&answer);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            failure.print();
            ExitCode::FAILURE
        }
    }
}

fn check(args: &cli::check::CheckArgs) -> ExitCode {
    match cli::check::run(args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::FAILURE,
        Err(failure) => {
            failure.print();
            ExitCode::from(2)
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
