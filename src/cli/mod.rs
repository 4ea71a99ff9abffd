//! The client commands, in the seeds' style (`chatd new --user_ids=John,Barry`): one command
//! per endpoint of both services. Each prints the server's JSON answer on stdout (pretty on a
//! terminal, one line otherwise), or a micro error on stderr with a non-zero exit.
//!
//! - this module: the command tree and [`run`], which turns a command into a call;
//! - `requests`: each unary command's flags and the JSON body it posts;
//! - `stream`: `connect` and `join`, which print each frame as a line;
//! - `output`: how answers and errors are printed, and the errors the client itself makes;
//! - `backup` and `check`: the operator's `chatd backup --out DIR` (of a running server) and
//!   `chatd check --data DIR` (offline).

pub mod backup;
pub mod check;
mod output;
mod requests;
mod stream;

use clap::{Args, Subcommand};
use serde_json::Value;

pub use output::{client_error, print_answer, Failure};
pub use requests::*;
pub use stream::StreamArgs;

/// Where and as whom the client commands talk.
#[derive(Debug, Args)]
pub struct Target {
    /// The server's base URL.
    #[arg(long, env = "CHATD_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// The namespace (`micro-namespace` header).
    #[arg(long, env = "CHATD_NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// An API key or user token, sent as `authorization: Bearer ...`.
    #[arg(long, env = "CHATD_TOKEN", global = true)]
    pub token: Option<String>,
}

/// The client commands of the `chat` service, and `chats` for the other one.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a chat for a set of users (the same set gives the same chat).
    #[command(after_help = "Example:\n  chatd new --user_ids=John,Barry")]
    New(NewArgs),
    /// Send a message to a chat.
    #[command(after_help = "Example:\n  chatd send --chat_id=... --user_id=John --subject=Hello --text='Hey Barry'")]
    Send(SendArgs),
    /// Print a chat's messages, oldest first.
    #[command(after_help = "Example:\n  chatd history --chat_id=... --limit=20")]
    History(HistoryArgs),
    /// Print a chat's messages as they arrive, one JSON object per line, until interrupted.
    #[command(after_help = "Example:\n  chatd connect --chat_id=... --user_id=John --since=0")]
    Connect(StreamArgs),
    /// Create a group: a chat with a name.
    #[command(
        after_help = "Example:\n  chatd create --name=general --description='Anything goes' --user_ids=John,Barry"
    )]
    Create(CreateArgs),
    /// Make a user a member of a group.
    #[command(after_help = "Example:\n  chatd invite --group_id=... --user_id=Barry")]
    Invite(MemberArgs),
    /// Join a group and print its messages as they arrive, one line each, until interrupted.
    #[command(after_help = "Example:\n  chatd join --group_id=... --user_id=Barry")]
    Join(StreamArgs),
    /// Leave a group.
    #[command(after_help = "Example:\n  chatd leave --group_id=... --user_id=Barry")]
    Leave(MemberArgs),
    /// Remove a user from a group.
    #[command(after_help = "Example:\n  chatd kick --group_id=... --user_id=Barry")]
    Kick(MemberArgs),
    /// List the groups of a user (or every group of the namespace).
    #[command(after_help = "Example:\n  chatd list --user_id=John")]
    List(ListArgs),
    /// Delete a group and all its messages.
    #[command(after_help = "Example:\n  chatd delete --group_id=...")]
    Delete(DeleteArgs),
    /// The `chats` service: create-chat, send-message, list-messages.
    #[command(subcommand, after_help = "Example:\n  chatd chats create-chat --user_ids=alice,bob")]
    Chats(ChatsCommand),
}

/// The `chats` service's commands.
#[derive(Debug, Subcommand)]
pub enum ChatsCommand {
    /// Create a chat between two or more users.
    #[command(after_help = "Example:\n  chatd chats create-chat --id=general --user_ids=alice,bob")]
    CreateChat(CreateChatArgs),
    /// Send a message to a chat.
    #[command(after_help = "Example:\n  chatd chats send-message --chat_id=general --author_id=alice --text='hi bob'")]
    SendMessage(SendMessageArgs),
    /// List a chat's messages, newest first unless --order=asc.
    #[command(after_help = "Example:\n  chatd chats list-messages --chat_id=general --limit=10 --order=asc")]
    ListMessages(ListMessagesArgs),
}

impl ClientCommand {
    /// The path and body a unary command posts; `None` for the streams.
    fn request(&self) -> Option<(&'static str, Value)> {
        Some(match self {
            ClientCommand::New(args) => args.request(),
            ClientCommand::Send(args) => args.request(),
            ClientCommand::History(args) => args.request(),
            ClientCommand::Create(args) => args.request(),
            ClientCommand::Invite(args) => args.request("/chat/Invite"),
            ClientCommand::Leave(args) => args.request("/chat/Leave"),
            ClientCommand::Kick(args) => args.request("/chat/Kick"),
            ClientCommand::List(args) => args.request(),
            ClientCommand::Delete(args) => args.request(),
            ClientCommand::Chats(ChatsCommand::CreateChat(args)) => args.request(),
            ClientCommand::Chats(ChatsCommand::SendMessage(args)) => args.request(),
            ClientCommand::Chats(ChatsCommand::ListMessages(args)) => args.request(),
            ClientCommand::Connect(_) | ClientCommand::Join(_) => return None,
        })
    }
}

/// Runs one client command; `Err` is what to print on stderr.
pub async fn run(target: &Target, command: &ClientCommand) -> Result<(), Failure> {
    match (command, command.request()) {
        (ClientCommand::Connect(args), _) => stream::watch(target, args, "/chat/Connect").await,
        (ClientCommand::Join(args), _) => stream::watch(target, args, "/chat/Join").await,
        (_, Some((path, body))) => {
            let answer = call(target, path, &body).await?;
            print_answer(&answer);
            Ok(())
        }
        (_, None) => Err(client_error("BadRequest", "this command has no request")),
    }
}

/// POSTs `body` to `path`: the JSON answer, or the micro error (the server's, or the client's
/// own when the server could not be reached or answered something else).
pub async fn call(target: &Target, path: &str, body: &Value) -> Result<Value, Failure> {
    let url = format!("{}{}", target.url.trim_end_matches('/'), path);
    let mut request = awc::Client::builder().timeout(std::time::Duration::from_secs(30)).finish().post(&url);
    if let Some(ns) = &target.namespace {
        request = request.insert_header(("micro-namespace", ns.as_str()));
    }
    if let Some(token) = &target.token {
        request = request.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut response = request
        .send_json(body)
        .await
        .map_err(|e| client_error("Unreachable", &format!("could not reach {url}: {e}")))?;
    let bytes = response
        .body()
        .limit(256 << 20)
        .await
        .map_err(|e| client_error("BadResponse", &format!("could not read the response: {e}")))?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        client_error("BadResponse", &format!("{} answered with something not JSON: {shown}", response.status()))
    })?;
    if response.status().is_success() {
        Ok(answer)
    } else {
        Err(Failure(answer))
    }
}
