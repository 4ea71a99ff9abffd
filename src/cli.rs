//! The client commands, mirroring the seeds' `micro chat ...` CLI: each prints the JSON response,
//! or the micro error on stderr with a non-zero exit.

use clap::Args;
use serde_json::{json, Value};

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

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The chat's members, comma-separated.
    #[arg(long = "user_ids", value_delimiter = ',', required = true)]
    pub user_ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[arg(long = "chat_id")]
    pub chat_id: String,
    #[arg(long = "user_id")]
    pub user_id: String,
    #[arg(long)]
    pub text: String,
    #[arg(long, default_value = "")]
    pub subject: String,
    /// Makes the send retry-safe; a fresh one is made by the server when absent.
    #[arg(long = "client_id")]
    pub client_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long = "chat_id")]
    pub chat_id: String,
    #[arg(long)]
    pub limit: Option<u64>,
    #[arg(long = "before_seq")]
    pub before_seq: Option<u64>,
    #[arg(long = "after_seq")]
    pub after_seq: Option<u64>,
}

impl NewArgs {
    pub fn request(&self) -> (&'static str, Value) {
        ("/chat/New", json!({ "user_ids": self.user_ids }))
    }
}

impl SendArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let mut body =
            json!({ "chat_id": self.chat_id, "user_id": self.user_id, "subject": self.subject, "text": self.text });
        if let Some(client_id) = &self.client_id {
            body["client_id"] = json!(client_id);
        }
        ("/chat/Send", body)
    }
}

impl HistoryArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let mut body = json!({ "chat_id": self.chat_id });
        for (key, value) in [("limit", self.limit), ("before_seq", self.before_seq), ("after_seq", self.after_seq)] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        ("/chat/History", body)
    }
}

/// POSTs `body` to `path`, prints the answer; `Err` carries what to print on stderr.
pub async fn call(target: &Target, path: &str, body: Value) -> Result<String, String> {
    let url = format!("{}{}", target.url.trim_end_matches('/'), path);
    let mut request = awc::Client::default().post(&url);
    if let Some(ns) = &target.namespace {
        request = request.insert_header(("micro-namespace", ns.as_str()));
    }
    if let Some(token) = &target.token {
        request = request.insert_header(("authorization", format!("Bearer {token}")));
    }
    let mut response = request.send_json(&body).await.map_err(|e| format!("could not reach {url}: {e}"))?;
    let bytes = response.body().await.map_err(|e| format!("could not read the response: {e}"))?;
    let pretty = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    if response.status().is_success() {
        Ok(pretty)
    } else {
        Err(pretty)
    }
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[arg(long = "chat_id")]
    pub chat_id: String,
    /// The user the stream is for (needed to post; a user token implies it).
    #[arg(long = "user_id")]
    pub user_id: Option<String>,
    /// Replay every message after this seq first.
    #[arg(long)]
    pub since: Option<u64>,
}

/// Streams a chat over a WebSocket, printing each message (one JSON object per line) until the
/// server closes the stream. A close with an error code is an error.
pub async fn connect(target: &Target, args: &ConnectArgs) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};

    let mut query = vec![("chat_id", args.chat_id.clone())];
    query.extend(args.user_id.clone().map(|u| ("user_id", u)));
    query.extend(args.since.map(|s| ("since", s.to_string())));
    query.extend(target.namespace.clone().map(|ns| ("namespace", ns)));
    query.extend(target.token.clone().map(|t| ("token", t)));
    let query = serde_urlencoded::to_string(&query).map_err(|e| e.to_string())?;
    let base = target.url.trim_end_matches('/').replacen("http", "ws", 1);
    let url = format!("{base}/chat/Connect?{query}");
    let (_, mut conn) =
        awc::Client::new().ws(&url).connect().await.map_err(|e| format!("could not connect to {url}: {e}"))?;
    while let Some(frame) = conn.next().await {
        match frame.map_err(|e| format!("stream failed: {e}"))? {
            awc::ws::Frame::Text(text) => println!("{}", String::from_utf8_lossy(&text)),
            awc::ws::Frame::Ping(bytes) => {
                let _ = conn.send(awc::ws::Message::Pong(bytes)).await;
            }
            awc::ws::Frame::Close(reason) => {
                return match reason {
                    Some(r) if u16::from(r.code) >= 4000 => {
                        Err(format!("closed: {}", r.description.unwrap_or_default()))
                    }
                    _ => Ok(()),
                };
            }
            _ => {}
        }
    }
    Ok(())
}
