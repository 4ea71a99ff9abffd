//! Every JSON shape a response or a stream frame takes, in one place: the wire belongs here,
//! not to the model.

use serde::Serialize;

use crate::model::{ChatId, ChatMeta, Message, UserId};

/// `{"message": ...}`, serialized directly rather than through a JSON tree: the send path's answer.
#[derive(Serialize)]
pub struct MessageReply<T> {
    pub message: T,
}

/// A message as the `chat` service shows it (and as streams deliver it).
#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub chat_id: &'a str,
    pub user_id: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub sent_at: i64,
    pub seq: u64,
}

impl<'a> MessageView<'a> {
    pub fn new(chat_id: &'a ChatId, m: &'a Message) -> Self {
        MessageView {
            id: m.id.as_str(),
            client_id: m.client_id.as_str(),
            chat_id: chat_id.as_str(),
            user_id: m.user_id.as_str(),
            subject: &m.subject,
            text: &m.text,
            sent_at: m.sent_at,
            seq: m.seq,
        }
    }

    /// The JSON of a message as streams send it.
    pub fn json(chat_id: &ChatId, m: &Message) -> String {
        serde_json::to_string(&MessageView::new(chat_id, m)).unwrap_or_default()
    }
}

/// A message as the `chats` service shows it: `author_id` for `user_id`.
#[derive(Serialize)]
pub struct AuthoredView<'a> {
    id: &'a str,
    author_id: &'a str,
    chat_id: &'a str,
    text: &'a str,
    sent_at: i64,
    seq: u64,
}

impl<'a> AuthoredView<'a> {
    pub fn new(chat_id: &'a ChatId, m: &'a Message) -> Self {
        AuthoredView {
            id: m.id.as_str(),
            author_id: m.user_id.as_str(),
            chat_id: chat_id.as_str(),
            text: &m.text,
            sent_at: m.sent_at,
            seq: m.seq,
        }
    }
}

/// A chat as the `chats` service shows it.
#[derive(Serialize)]
pub struct ChatView<'a> {
    id: &'a str,
    user_ids: &'a [UserId],
    created_at: i64,
}

impl<'a> ChatView<'a> {
    pub fn new(meta: &'a ChatMeta) -> Self {
        ChatView { id: meta.id.as_str(), user_ids: meta.user_ids.as_slice(), created_at: meta.created_at }
    }
}

/// A group as the chat v2 endpoints show it.
#[derive(Serialize)]
pub struct GroupView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    created_at: i64,
    user_ids: &'a [UserId],
    private: bool,
}

impl<'a> GroupView<'a> {
    pub fn new(meta: &'a ChatMeta) -> Self {
        GroupView {
            id: meta.id.as_str(),
            name: &meta.name,
            description: &meta.description,
            created_at: meta.created_at,
            user_ids: meta.user_ids.as_slice(),
            private: meta.private,
        }
    }
}
