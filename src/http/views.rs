//! Every JSON shape a response or a stream frame takes, in one place: the wire belongs here,
//! not to the model.
//!
//! Two generations of m3o's chat API share the chat service: v1 (`New`, `Send`, `History`,
//! `Connect`: `chat_id`, `client_id`, Unix-second `sent_at`) and v2 (the group endpoints, and a
//! `Send`/`History` naming `group_id`: `group_id`, `client`, RFC 3339 times), as the published
//! `m3o` client reads them (docs/API.md section 10).

use std::sync::Arc;

use bytestring::ByteString;
use serde::Serialize;

use crate::chat::{Delivered, SHAPES};
use crate::model::{ChatId, ChatMeta, Message, UserId};

/// The JSON shapes a message takes on the wire. Each durable message is encoded at most once per
/// shape: the bytes are kept with it ([`Delivered`]) for every page and stream frame that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// [`MessageView`]: History, Connect frames.
    V1,
    /// [`V2MessageView`]: History naming `group_id`.
    V2,
    /// `{"message": V2MessageView}`: Join frames.
    V2Frame,
    /// [`AuthoredView`]: the chats service's ListMessages.
    Authored,
}

const _: () = assert!(Shape::Authored as usize + 1 == SHAPES, "every shape has its cache slot");

impl Shape {
    fn encode(self, chat_id: &ChatId, m: &Message) -> String {
        let json = match self {
            Shape::V1 => serde_json::to_string(&MessageView::new(chat_id, m)),
            Shape::V2 => serde_json::to_string(&V2MessageView::new(chat_id, m)),
            Shape::V2Frame => serde_json::to_string(&MessageReply { message: V2MessageView::new(chat_id, m) }),
            Shape::Authored => serde_json::to_string(&AuthoredView::new(chat_id, m)),
        };
        // Plain strings and numbers only: serializing cannot fail.
        json.unwrap_or_default()
    }

    /// A message's JSON in this shape, made by the first caller and shared by the rest.
    pub fn json<'a>(self, chat_id: &ChatId, d: &'a Delivered) -> &'a ByteString {
        d.json[self as usize].get_or_init(|| self.encode(chat_id, &d.msg).into())
    }

    /// `{"messages": [...]}` from each message's shared JSON, without a JSON tree.
    pub fn page(self, chat_id: &ChatId, messages: &[Arc<Delivered>]) -> Vec<u8> {
        let jsons: Vec<&ByteString> = messages.iter().map(|d| self.json(chat_id, d)).collect();
        let mut out = Vec::with_capacity(16 + jsons.iter().map(|j| j.len() + 1).sum::<usize>());
        out.extend_from_slice(b"{\"messages\":[");
        for (i, json) in jsons.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(json.as_bytes());
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A 200 whose body is JSON made already.
pub fn json_body(json: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("application/json").body(json)
}

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

/// A message as the chat v2 calls show it.
#[derive(Serialize)]
pub struct V2MessageView<'a> {
    id: &'a str,
    client: &'a str,
    group_id: &'a str,
    user_id: &'a str,
    subject: &'a str,
    text: &'a str,
    sent_at: String,
    seq: u64,
}

impl<'a> V2MessageView<'a> {
    pub fn new(group_id: &'a ChatId, m: &'a Message) -> Self {
        V2MessageView {
            id: m.id.as_str(),
            client: m.client_id.as_str(),
            group_id: group_id.as_str(),
            user_id: m.user_id.as_str(),
            subject: &m.subject,
            text: &m.text,
            sent_at: rfc3339(m.sent_at),
            seq: m.seq,
        }
    }
}

/// A group as the chat v2 endpoints show it.
#[derive(Serialize)]
pub struct GroupView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    created_at: String,
    user_ids: &'a [UserId],
    private: bool,
}

impl<'a> GroupView<'a> {
    pub fn new(meta: &'a ChatMeta) -> Self {
        GroupView {
            id: meta.id.as_str(),
            name: &meta.name,
            description: &meta.description,
            created_at: rfc3339(meta.created_at),
            user_ids: meta.user_ids.as_slice(),
            private: meta.private,
        }
    }
}

/// Unix seconds as an RFC 3339 UTC time, `2026-12-01T08:57:30Z`.
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day count.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_115_450), "2026-12-01T08:57:30Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
