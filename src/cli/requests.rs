//! Each unary command's flags, named as the endpoint's JSON fields (docs/API.md), and the
//! path and body it posts. A flag left out is a field left out, so the server's defaults and
//! its checks (a missing `--text` is `chat.Send.MissingText`) apply as to any other client.

use clap::Args;
use serde_json::{json, Map, Value};

/// A JSON object of the fields that were given.
fn body(fields: impl IntoIterator<Item = (&'static str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = fields.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect();
    Value::Object(map)
}

fn some<T: Into<Value> + Clone>(value: &Option<T>) -> Option<Value> {
    value.clone().map(Into::into)
}

/// A comma-separated id list, left out when not given.
fn list(values: &[String]) -> Option<Value> {
    (!values.is_empty()).then(|| json!(values))
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The chat's members, comma-separated.
    #[arg(long = "user_ids", value_delimiter = ',')]
    pub user_ids: Vec<String>,
}

impl NewArgs {
    pub fn request(&self) -> (&'static str, Value) {
        ("/chat/New", body([("user_ids", list(&self.user_ids))]))
    }
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[arg(long = "chat_id")]
    pub chat_id: Option<String>,
    /// A group's id: the answer then has the v2 shape.
    #[arg(long = "group_id", conflicts_with = "chat_id")]
    pub group_id: Option<String>,
    #[arg(long = "user_id")]
    pub user_id: Option<String>,
    #[arg(long)]
    pub text: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// Makes the send retry-safe; the server makes a fresh one when absent.
    #[arg(long = "client_id")]
    pub client_id: Option<String>,
}

impl SendArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let fields = [
            ("chat_id", some(&self.chat_id)),
            ("group_id", some(&self.group_id)),
            ("user_id", some(&self.user_id)),
            ("subject", some(&self.subject)),
            ("text", some(&self.text)),
            ("client_id", some(&self.client_id)),
        ];
        ("/chat/Send", body(fields))
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long = "chat_id")]
    pub chat_id: Option<String>,
    /// A group's id: the answer then has the v2 shape.
    #[arg(long = "group_id", conflicts_with = "chat_id")]
    pub group_id: Option<String>,
    #[arg(long)]
    pub limit: Option<u64>,
    #[arg(long = "before_seq")]
    pub before_seq: Option<u64>,
    #[arg(long = "after_seq")]
    pub after_seq: Option<u64>,
}

impl HistoryArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let fields = [
            ("chat_id", some(&self.chat_id)),
            ("group_id", some(&self.group_id)),
            ("limit", some(&self.limit)),
            ("before_seq", some(&self.before_seq)),
            ("after_seq", some(&self.after_seq)),
        ];
        ("/chat/History", body(fields))
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// The group's first members, comma-separated.
    #[arg(long = "user_ids", value_delimiter = ',')]
    pub user_ids: Vec<String>,
    /// Only members may join (others need an invite).
    #[arg(long)]
    pub private: bool,
}

impl CreateArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let fields = [
            ("name", some(&self.name)),
            ("description", some(&self.description)),
            ("user_ids", list(&self.user_ids)),
            ("private", Some(json!(self.private))),
        ];
        ("/chat/Create", body(fields))
    }
}

/// Invite, Leave and Kick: a group and a user.
#[derive(Debug, Args)]
pub struct MemberArgs {
    #[arg(long = "group_id", visible_alias = "chat_id")]
    pub group_id: Option<String>,
    #[arg(long = "user_id")]
    pub user_id: Option<String>,
}

impl MemberArgs {
    pub fn request(&self, path: &'static str) -> (&'static str, Value) {
        (path, body([("group_id", some(&self.group_id)), ("user_id", some(&self.user_id))]))
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the chats this user is a member of.
    #[arg(long = "user_id")]
    pub user_id: Option<String>,
}

impl ListArgs {
    pub fn request(&self) -> (&'static str, Value) {
        ("/chat/List", body([("user_id", some(&self.user_id))]))
    }
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(long = "group_id", visible_alias = "chat_id")]
    pub group_id: Option<String>,
}

impl DeleteArgs {
    pub fn request(&self) -> (&'static str, Value) {
        ("/chat/Delete", body([("group_id", some(&self.group_id))]))
    }
}

#[derive(Debug, Args)]
pub struct CreateChatArgs {
    /// The chat's id (a UUID when absent).
    #[arg(long)]
    pub id: Option<String>,
    /// Two or more members, comma-separated.
    #[arg(long = "user_ids", value_delimiter = ',')]
    pub user_ids: Vec<String>,
}

impl CreateChatArgs {
    pub fn request(&self) -> (&'static str, Value) {
        ("/chats/CreateChat", body([("id", some(&self.id)), ("user_ids", list(&self.user_ids))]))
    }
}

#[derive(Debug, Args)]
pub struct SendMessageArgs {
    #[arg(long = "chat_id")]
    pub chat_id: Option<String>,
    #[arg(long = "author_id")]
    pub author_id: Option<String>,
    #[arg(long)]
    pub text: Option<String>,
    /// The message's id, which makes the send retry-safe (a UUID when absent).
    #[arg(long)]
    pub id: Option<String>,
}

impl SendMessageArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let fields = [
            ("chat_id", some(&self.chat_id)),
            ("author_id", some(&self.author_id)),
            ("text", some(&self.text)),
            ("id", some(&self.id)),
        ];
        ("/chats/SendMessage", body(fields))
    }
}

#[derive(Debug, Args)]
pub struct ListMessagesArgs {
    #[arg(long = "chat_id")]
    pub chat_id: Option<String>,
    /// How many (default 25).
    #[arg(long)]
    pub limit: Option<u64>,
    /// How many to skip, in the chosen order.
    #[arg(long)]
    pub offset: Option<u64>,
    /// `asc` (oldest first) or `desc` (newest first, the default).
    #[arg(long)]
    pub order: Option<String>,
}

impl ListMessagesArgs {
    pub fn request(&self) -> (&'static str, Value) {
        let fields = [
            ("chat_id", some(&self.chat_id)),
            ("limit", some(&self.limit)),
            ("offset", some(&self.offset)),
            ("order", some(&self.order)),
        ];
        ("/chats/ListMessages", body(fields))
    }
}
