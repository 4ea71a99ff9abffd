//! The client commands (`src/cli/`) against a real `chatd` process: every command of both
//! services, its one-line JSON output when stdout is not a terminal, the micro error on stderr
//! with a non-zero exit, the streams printing a line per frame, and an example in each --help.

mod helpers;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use helpers::{free_port, Chatd};
use serde_json::Value;

/// What one run of a client command did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The answer, asserting success and a single line of JSON.
    fn json(&self) -> Value {
        assert!(self.ok, "the command failed: {}", self.stderr);
        assert_eq!(self.stdout.lines().count(), 1, "one line when not on a terminal: {:?}", self.stdout);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }

    /// The micro error on stderr, asserting a failing exit, nothing on stdout, and its id.
    fn error(&self, id: &str, code: u64) -> Value {
        assert!(!self.ok, "the command should fail; it printed {:?}", self.stdout);
        assert_eq!(self.stdout, "", "nothing on stdout for an error");
        let error: Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not a micro error ({e}): {:?}", self.stderr));
        assert_eq!(error["id"], id, "{error}");
        assert_eq!(error["code"], code, "{error}");
        assert!(error["detail"].is_string() && error["status"].is_string(), "{error}");
        error
    }
}

/// Runs `chatd ARGS` as a client of the server on `port`.
fn chatd(port: u16, args: &[&str]) -> Run {
    let output =
        client(port).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("run the chatd client");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn client(port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatd"));
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHATD")) {
        cmd.env_remove(key);
    }
    cmd.env("CHATD_URL", format!("http://127.0.0.1:{port}"));
    cmd
}

/// A stream command running in the background, its stdout lines arriving on a channel.
struct Streaming {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Streaming {
    fn start(port: u16, args: &[&str]) -> Streaming {
        let mut child =
            client(port).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn a stream");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Streaming { child, lines }
    }

    fn next(&self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(20)).expect("a line within 20 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("a frame line is JSON ({e}): {line:?}"))
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn the_chat_service_commands_answer_as_its_endpoints_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Chatd::start(dir.path(), free_port()).await;
    let port = server.api.port();

    let chat = chatd(port, &["new", "--user_ids=John,Barry"]).json();
    let chat_id = chat["chat_id"].as_str().expect("chat_id").to_owned();
    assert_eq!(chatd(port, &["new", "--user_ids=Barry,John"]).json(), chat, "the same set, the same chat");

    let chat_flag = format!("--chat_id={chat_id}");
    let sent =
        chatd(port, &["send", &chat_flag, "--user_id=John", "--subject=Hello", "--text=Hey Barry", "--client_id=c1"])
            .json();
    assert_eq!(sent["message"]["text"], "Hey Barry");
    assert_eq!(sent["message"]["seq"], 1);
    chatd(port, &["send", &chat_flag, "--user_id=Barry", "--text=Hi John"]).json();

    let history = chatd(port, &["history", &chat_flag]).json();
    let texts: Vec<&str> =
        history["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["Hey Barry", "Hi John"]);
    let page = chatd(port, &["history", &chat_flag, "--after_seq=1", "--limit=5"]).json();
    assert_eq!(page["messages"][0]["seq"], 2, "{page}");
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));

    // The groups (chat v2).
    let created = chatd(port, &["create", "--name=general", "--description=Anything", "--user_ids=John"]).json();
    let group_id = created["group"]["id"].as_str().expect("group id").to_owned();
    assert_eq!(created["group"]["name"], "general");
    let group_flag = format!("--group_id={group_id}");
    let invited = chatd(port, &["invite", &group_flag, "--user_id=Barry"]).json();
    assert_eq!(invited["group"]["user_ids"], serde_json::json!(["Barry", "John"]));
    chatd(port, &["invite", &group_flag, "--user_id=Eve"]).json();
    let kicked = chatd(port, &["kick", &group_flag, "--user_id=Eve"]).json();
    assert_eq!(kicked["group"]["user_ids"], serde_json::json!(["Barry", "John"]));
    let sent = chatd(port, &["send", &group_flag, "--user_id=John", "--text=in the group"]).json();
    assert_eq!(sent["message"]["group_id"], group_id.as_str(), "a group_id send answers the v2 shape: {sent}");
    let listed = chatd(port, &["list", "--user_id=Barry"]).json();
    let ids: Vec<&str> = listed["groups"].as_array().expect("groups").iter().filter_map(|g| g["id"].as_str()).collect();
    assert!(ids.contains(&group_id.as_str()) && ids.contains(&chat_id.as_str()), "{listed}");
    let left = chatd(port, &["leave", &group_flag, "--user_id=Barry"]).json();
    assert_eq!(left["group"]["user_ids"], serde_json::json!(["John"]));
    let deleted = chatd(port, &["delete", &group_flag]).json();
    assert_eq!(deleted["group"]["id"], group_id.as_str());
    chatd(port, &["history", &group_flag]).error("chat.History.NotFound", 404);
}

#[actix_web::test]
async fn the_chats_service_commands_answer_as_its_endpoints_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Chatd::start(dir.path(), free_port()).await;
    let port = server.api.port();

    let created = chatd(port, &["chats", "create-chat", "--id=general", "--user_ids=bob,alice"]).json();
    assert_eq!(created["chat"]["id"], "general");
    assert_eq!(created["chat"]["user_ids"], serde_json::json!(["alice", "bob"]));
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let text_flag = format!("--text={text}");
        let id_flag = format!("--id=m{i}");
        let sent =
            chatd(port, &["chats", "send-message", "--chat_id=general", "--author_id=alice", &text_flag, &id_flag])
                .json();
        assert_eq!(sent["message"]["author_id"], "alice");
        assert_eq!(sent["message"]["id"], format!("m{i}"));
    }
    let newest = chatd(port, &["chats", "list-messages", "--chat_id=general", "--limit=2"]).json();
    let texts = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["text"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(texts(&newest), ["three", "two"]);
    let oldest = chatd(port, &["chats", "list-messages", "--chat_id=general", "--order=asc", "--offset=1"]).json();
    assert_eq!(texts(&oldest), ["two", "three"]);

    chatd(port, &["chats", "create-chat", "--user_ids=alice"]).error("chats.CreateChat.MissingUserIDs", 400);
    chatd(port, &["chats", "send-message", "--chat_id=general", "--author_id=alice"])
        .error("chats.SendMessage.MissingText", 400);
    chatd(port, &["chats", "list-messages", "--chat_id=general", "--order=sideways"])
        .error("chats.ListMessages.BadRequest", 400);
    chatd(port, &["chats", "list-messages", "--chat_id=nowhere"]).error("chats.ListMessages.NotFound", 404);
}

#[actix_web::test]
async fn errors_are_micro_errors_on_stderr_with_a_failing_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Chatd::start(dir.path(), free_port()).await;
    let port = server.api.port();

    chatd(port, &["new"]).error("chat.New.MissingUserIDs", 400);
    let chat = chatd(port, &["new", "--user_ids=John"]).json();
    let chat_flag = format!("--chat_id={}", chat["chat_id"].as_str().expect("chat_id"));
    chatd(port, &["send", &chat_flag, "--user_id=John"]).error("chat.Send.MissingText", 400);
    chatd(port, &["send", "--user_id=John", "--text=hi"]).error("chat.Send.MissingChatID", 400);
    chatd(port, &["history", "--chat_id=nowhere"]).error("chat.History.NotFound", 404);
    chatd(port, &["invite", "--group_id=nowhere", "--user_id=x"]).error("chat.Invite.NotFound", 404);
    chatd(port, &["leave", "--user_id=x"]).error("chat.Leave.MissingChatID", 400);
    chatd(port, &["kick", "--group_id=nowhere", "--user_id=x"]).error("chat.Kick.NotFound", 404);
    chatd(port, &["delete", "--group_id=nowhere"]).error("chat.Delete.NotFound", 404);
    chatd(port, &["list", "--user_id="]).json();
    // Namespaces are isolated: the chat is not in another one.
    chatd(port, &["--namespace=elsewhere", "history", &chat_flag]).error("chat.History.NotFound", 404);
    // A stream that fails prints the error frame on stderr.
    let joined = chatd(port, &["join", "--group_id=nowhere", "--user_id=x"]);
    joined.error("chat.Join.NotFound", 404);

    // No server at all: the client's own micro error.
    drop(server);
    chatd(port, &["history", "--chat_id=x"]).error("chatd.Client.Unreachable", 503);
}

#[actix_web::test]
async fn connect_and_join_print_one_line_per_frame() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Chatd::start(dir.path(), free_port()).await;
    let port = server.api.port();
    let group = chatd(port, &["create", "--name=live", "--user_ids=John"]).json();
    let group_flag = format!("--group_id={}", group["group"]["id"].as_str().expect("group id"));
    chatd(port, &["send", &group_flag, "--user_id=John", "--text=before"]).json();

    let join = Streaming::start(port, &["join", &group_flag, "--user_id=Barry", "--since=0"]);
    let connect = Streaming::start(port, &["connect", &group_flag.replace("group_id", "chat_id"), "--since=0"]);
    assert_eq!(join.next()["message"]["text"], "before", "Join frames are {{\"message\": ...}}");
    assert_eq!(connect.next()["text"], "before", "Connect frames are bare messages");
    // Join made Barry a member; what John sends now arrives live on both.
    chatd(port, &["send", &group_flag, "--user_id=John", "--text=after"]).json();
    assert_eq!(join.next()["message"]["text"], "after");
    assert_eq!(connect.next()["text"], "after");
    let members = chatd(port, &["list", "--user_id=Barry"]).json();
    assert_eq!(members["groups"][0]["name"], "live", "{members}");
}

#[test]
fn every_command_has_an_example_in_its_help() {
    let commands: &[&[&str]] = &[
        &["serve"],
        &["new"],
        &["send"],
        &["history"],
        &["connect"],
        &["create"],
        &["invite"],
        &["join"],
        &["leave"],
        &["kick"],
        &["list"],
        &["delete"],
        &["chats"],
        &["chats", "create-chat"],
        &["chats", "send-message"],
        &["chats", "list-messages"],
    ];
    for command in commands {
        let run = chatd(1, &[command, &["--help"][..]].concat());
        assert!(run.ok, "{command:?} --help: {}", run.stderr);
        let example = format!("chatd {}", command.join(" "));
        assert!(
            run.stdout.contains("Example:") && run.stdout.contains(&example),
            "{command:?} --help shows no example of `{example}`:\n{}",
            run.stdout
        );
    }
}
