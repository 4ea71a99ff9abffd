//! The real `chatd` binary as a child process ([`Chatd`]), so a crash is a real `kill -9` and
//! a stop a real SIGTERM, and [`Api`], a small client of a server's `chat` API that reports a
//! server gone away as an `Err` instead of failing. Every message [`Api`] sends has the text
//! [`text_of`] its client id, which [`check_chat`] checks when reading back.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

pub async fn sleep_ms(ms: u64) {
    actix_web::rt::time::sleep(Duration::from_millis(ms)).await
}

/// The text [`Api`] sends with `client_id`.
pub fn text_of(client_id: &str) -> String {
    format!("text of {client_id}")
}

/// A small client of one server's `chat` API, on 127.0.0.1:`port`.
#[derive(Clone)]
pub struct Api {
    client: awc::Client,
    port: u16,
}

impl Api {
    pub fn new(port: u16) -> Api {
        let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
        Api { client, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// POSTs `body`; the status and JSON answer, or `Err` if no complete answer came back.
    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, Value), String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let mut res = self.client.post(url).send_json(&body).await.map_err(|e| e.to_string())?;
        let bytes = res.body().limit(64 << 20).await.map_err(|e| e.to_string())?;
        let json = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?;
        Ok((res.status().as_u16(), json))
    }

    pub async fn new_chat(&self, user_ids: &[&str]) -> String {
        let (status, body) = self.post("/chat/New", json!({ "user_ids": user_ids })).await.expect("New");
        assert_eq!(status, 200, "New: {body}");
        body["chat_id"].as_str().expect("chat_id").to_string()
    }

    /// Sends [`text_of`] `client_id` as user `u`.
    pub async fn send(&self, chat: &str, client_id: &str) -> Result<(u16, Value), String> {
        let body = json!({ "chat_id": chat, "user_id": "u", "text": text_of(client_id), "client_id": client_id });
        self.post("/chat/Send", body).await
    }

    /// Sends and asserts success; the stored seq.
    pub async fn send_ok(&self, chat: &str, client_id: &str) -> u64 {
        let (status, body) = self.send(chat, client_id).await.expect("Send");
        assert_eq!(status, 200, "Send {client_id}: {body}");
        assert_eq!(body["message"]["client_id"], client_id, "{body}");
        body["message"]["seq"].as_u64().expect("seq")
    }

    /// Every message of a chat, read with `after_seq` pages of 1000.
    pub async fn history(&self, chat: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m["seq"].as_u64().expect("seq"));
            let (status, body) = self
                .post("/chat/History", json!({ "chat_id": chat, "after_seq": after, "limit": 1000 }))
                .await
                .expect("History");
            assert_eq!(status, 200, "History of {chat}: {body}");
            let page = body["messages"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }
}

/// Asserts a chat's messages have seqs exactly 1..=N, distinct client ids, and the text each
/// client id was sent with. Returns client id -> seq.
pub fn check_chat(chat: &str, msgs: &[Value]) -> HashMap<String, u64> {
    let mut seqs = HashMap::new();
    for (i, m) in msgs.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(m["seq"].as_u64(), Some(seq), "chat {chat}: gap or disorder: {m}");
        assert_eq!(m["chat_id"], chat, "{m}");
        let client_id = m["client_id"].as_str().expect("client_id").to_string();
        assert_eq!(m["text"], text_of(&client_id), "chat {chat}: wrong text: {m}");
        if let Some(first) = seqs.insert(client_id.clone(), seq) {
            panic!("chat {chat}: client_id {client_id} stored twice, at seq {first} and {seq}");
        }
    }
    seqs
}

/// The `chatd` binary serving `<dir>/data` on `port` with open membership (or as
/// [`Chatd::start_with`] overrides), logging to `<dir>/chatd.log`. Dropping it kills it (printing its log if the test is failing).
pub struct Chatd {
    child: Option<Child>,
    pub api: Api,
    log: PathBuf,
}

impl Chatd {
    /// Starts the binary and waits until it answers (20 s at most).
    pub async fn start(dir: &Path, port: u16) -> Chatd {
        Chatd::start_with(dir, port, &[]).await
    }

    /// Like [`Chatd::start`], with `env` set last, so it may override any setting above (for
    /// example `CHATD__STORAGE__DATA_DIR` or `CHATD__STORAGE__FSYNC`).
    pub async fn start_with(dir: &Path, port: u16, env: &[(&str, &str)]) -> Chatd {
        let log_path = dir.join("chatd.log");
        let log = OpenOptions::new().create(true).append(true).open(&log_path).expect("open log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatd"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHATD")) {
            cmd.env_remove(key);
        }
        let child = cmd
            .args(["--config", "/nonexistent.toml"])
            .env("CHATD__SERVER__PORT", port.to_string())
            .env("CHATD__STORAGE__DATA_DIR", dir.join("data"))
            .env("CHATD__CHAT__MEMBERSHIP", "open")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn chatd");
        let mut chatd = Chatd { child: Some(child), api: Api::new(port), log: log_path };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = json!({ "user_ids": ["probe"] });
            if let Ok((200, _)) = chatd.api.post("/chat/New", probe).await {
                return chatd;
            }
            let child = chatd.child.as_mut().expect("a running chatd");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("chatd exited while starting: {status}");
            }
            assert!(Instant::now() < deadline, "chatd did not answer within 20 s");
            sleep_ms(20).await;
        }
    }

    /// A crash: SIGKILL, then reap the process.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("a running chatd");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// SIGTERM, then wait for the exit, failing the test if it takes over 10 s.
    pub async fn sigterm(mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("a running chatd");
        let sent = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
        assert!(kill.success());
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (status, sent.elapsed());
            }
            if sent.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chatd did not exit within 10 s of SIGTERM");
            }
            sleep_ms(20).await;
        }
    }
}

impl Drop for Chatd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let from = (log.len().saturating_sub(6000)..).find(|&i| log.is_char_boundary(i)).unwrap_or(0);
            let tail = &log[from..];
            eprintln!("---- chatd log (tail) ----\n{tail}\n---- end of chatd log ----");
        }
    }
}

/// What the `chatd` started in `dir` has logged so far.
pub fn server_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("chatd.log")).unwrap_or_default()
}
