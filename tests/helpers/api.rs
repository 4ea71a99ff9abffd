//! The endpoints' helpers on a [`TestApp`], each expecting success: `chat` New, Send and
//! History (in the default namespace, or as a [`Who`]), the `chats` service, the groups, and
//! the URLs of the streams.

use serde_json::{json, Value};

use super::{group_of, TestApp, Who};

impl TestApp {
    /// `chat.New` in the default namespace: the chat id.
    pub async fn new_chat(&self, user_ids: &[&str]) -> String {
        let (status, body) = self.post("/chat/New", json!({ "user_ids": user_ids })).await;
        assert_eq!(status, 200, "chat.New: {body}");
        body["chat_id"].as_str().expect("chat_id").to_owned()
    }

    /// `chat.Send` in the default namespace: the message.
    pub async fn send(&self, chat_id: &str, user_id: &str, text: &str) -> Value {
        let (status, body) =
            self.post("/chat/Send", json!({ "chat_id": chat_id, "user_id": user_id, "text": text })).await;
        assert_eq!(status, 200, "chat.Send: {body}");
        body["message"].clone()
    }

    /// `chat.History` with `request` in the default namespace: the messages.
    pub async fn history(&self, request: Value) -> Vec<Value> {
        let (status, body) = self.post("/chat/History", request).await;
        assert_eq!(status, 200, "chat.History: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// `chat.New` as `who`: the chat id.
    pub async fn new_chat_as(&self, who: &Who, user_ids: &[&str]) -> String {
        let (status, body) = self.post_as(who, "/chat/New", json!({ "user_ids": user_ids })).await;
        assert_eq!(status, 200, "chat.New: {body}");
        body["chat_id"].as_str().expect("chat_id").to_owned()
    }

    /// `chat.Send` as `who`: the message.
    pub async fn send_as(&self, who: &Who, chat_id: &str, user_id: &str, text: &str) -> Value {
        let (status, body) =
            self.post_as(who, "/chat/Send", json!({ "chat_id": chat_id, "user_id": user_id, "text": text })).await;
        assert_eq!(status, 200, "chat.Send: {body}");
        body["message"].clone()
    }

    /// `chat.Send` as `who`, retry-safe by `client_id`: the message.
    pub async fn send_with_client_id(
        &self,
        who: &Who,
        chat_id: &str,
        user_id: &str,
        text: &str,
        client_id: &str,
    ) -> Value {
        let body = json!({ "chat_id": chat_id, "user_id": user_id, "text": text, "client_id": client_id });
        let (status, body) = self.post_as(who, "/chat/Send", body).await;
        assert_eq!(status, 200, "chat.Send: {body}");
        body["message"].clone()
    }

    /// Every message of a chat (up to 1000), oldest first, read as `who`.
    pub async fn history_as(&self, who: &Who, chat_id: &str) -> Vec<Value> {
        let (status, body) =
            self.post_as(who, "/chat/History", json!({ "chat_id": chat_id, "after_seq": 0, "limit": 1000 })).await;
        assert_eq!(status, 200, "chat.History: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// `chats.CreateChat` in the default namespace: the chat.
    pub async fn create_chat(&self, request: Value) -> Value {
        let (status, body) = self.post("/chats/CreateChat", request).await;
        assert_eq!(status, 200, "CreateChat: {body}");
        body["chat"].clone()
    }

    /// `chats.SendMessage` in the default namespace: the message.
    pub async fn send_message(&self, chat_id: &str, author_id: &str, text: &str) -> Value {
        let request = json!({ "chat_id": chat_id, "author_id": author_id, "text": text });
        let (status, body) = self.post("/chats/SendMessage", request).await;
        assert_eq!(status, 200, "SendMessage: {body}");
        body["message"].clone()
    }

    /// `chats.ListMessages` with `request` (its chat_id filled in) in the default namespace.
    pub async fn list_messages(&self, chat_id: &str, mut request: Value) -> Vec<Value> {
        request["chat_id"] = json!(chat_id);
        let (status, body) = self.post("/chats/ListMessages", request).await;
        assert_eq!(status, 200, "ListMessages: {body}");
        body["messages"].as_array().expect("messages").clone()
    }

    /// `chat.Create` as `who`: the group's id.
    pub async fn create_group(&self, who: &Who, body: Value) -> String {
        let (status, reply) = self.post_as(who, "/chat/Create", body).await;
        assert_eq!(status, 200, "chat.Create: {reply}");
        let g = group_of(&reply);
        g["id"].as_str().expect("id").to_owned()
    }

    /// The group as its members see it (through a no-op Kick, which answers the group).
    pub async fn group(&self, who: &Who, id: &str) -> Value {
        let (status, reply) =
            self.post_as(who, "/chat/Kick", json!({ "group_id": id, "user_id": "nobody-at-all" })).await;
        assert_eq!(status, 200, "chat.Kick (no-op): {reply}");
        group_of(&reply).clone()
    }

    /// The ids of the chats `user` is a member of (groups and unnamed chats), in List's order,
    /// each checked for a group's fields.
    pub async fn list_groups(&self, who: &Who, user: &str) -> Vec<String> {
        let (status, reply) = self.post_as(who, "/chat/List", json!({ "user_id": user })).await;
        assert_eq!(status, 200, "chat.List: {reply}");
        let groups = reply["groups"].as_array().expect("groups");
        groups.iter().for_each(super::assert_group_shape);
        groups.iter().map(|g| g["id"].as_str().expect("id").to_owned()).collect()
    }
}

/// The `seq` of each message.
pub fn seqs(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["seq"].as_u64().expect("seq")).collect()
}

/// The `text` of each message.
pub fn texts(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["text"].as_str().expect("text").to_owned()).collect()
}

/// A Connect (or Join) path naming chat and user by query parameters.
pub fn connect_url(path: &str, chat: &str, user: &str) -> String {
    format!("{path}?chat_id={}&user_id={}", enc(chat), enc(user))
}

/// Percent-encodes everything but unreserved characters.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
