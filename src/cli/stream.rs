//! `connect` and `join`: a WebSocket to the stream endpoint, each frame printed as one JSON
//! line as it arrives, until the server closes or the user interrupts. The server reports a
//! failure as one micro error frame, then a close with 4000 + its code: that frame goes to
//! stderr and the command fails.

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use super::output::{client_error, Failure};
use super::Target;

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[arg(long = "chat_id")]
    pub chat_id: Option<String>,
    #[arg(long = "group_id", conflicts_with = "chat_id")]
    pub group_id: Option<String>,
    /// The user the stream is for (Join needs one; a user token implies it).
    #[arg(long = "user_id")]
    pub user_id: Option<String>,
    /// Replay every message after this seq first.
    #[arg(long)]
    pub since: Option<u64>,
}

/// Whether a frame is a micro error rather than a message.
fn is_error(frame: &Value) -> bool {
    ["id", "code", "detail", "status"].iter().all(|k| frame.get(k).is_some()) && frame.get("seq").is_none()
}

pub async fn watch(target: &Target, args: &StreamArgs, path: &str) -> Result<(), Failure> {
    let mut query = Vec::new();
    query.extend(args.chat_id.clone().map(|c| ("chat_id", c)));
    query.extend(args.group_id.clone().map(|g| ("group_id", g)));
    query.extend(args.user_id.clone().map(|u| ("user_id", u)));
    query.extend(args.since.map(|s| ("since", s.to_string())));
    query.extend(target.namespace.clone().map(|ns| ("namespace", ns)));
    query.extend(target.token.clone().map(|t| ("token", t)));
    let query = serde_urlencoded::to_string(&query).map_err(|e| client_error("BadRequest", &e.to_string()))?;
    let base = target.url.trim_end_matches('/').replacen("http", "ws", 1);
    let url = format!("{base}{path}?{query}");
    let (_, mut conn) = awc::Client::new()
        .ws(&url)
        .max_frame_size(16 << 20)
        .connect()
        .await
        .map_err(|e| client_error("Unreachable", &format!("could not connect to {url}: {e}")))?;
    let mut error = None;
    while let Some(frame) = conn.next().await {
        match frame.map_err(|e| client_error("StreamFailed", &format!("stream failed: {e}")))? {
            awc::ws::Frame::Text(text) => match serde_json::from_slice::<Value>(&text) {
                Ok(frame) if is_error(&frame) => error = Some(frame),
                _ => println!("{}", String::from_utf8_lossy(&text)),
            },
            awc::ws::Frame::Ping(bytes) => {
                let _ = conn.send(awc::ws::Message::Pong(bytes)).await;
            }
            awc::ws::Frame::Close(reason) => {
                let code = reason.as_ref().map_or(1000, |r| u16::from(r.code));
                return match (code, error) {
                    (0..=3999, None) => Ok(()),
                    (_, Some(frame)) => Err(Failure(frame)),
                    (_, None) => {
                        let why = reason.and_then(|r| r.description).unwrap_or_default();
                        Err(client_error("StreamClosed", &format!("closed with {code}: {why}")))
                    }
                };
            }
            _ => {}
        }
    }
    match error {
        Some(frame) => Err(Failure(frame)),
        None => Ok(()),
    }
}
