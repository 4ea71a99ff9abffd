//! Every JSON shape a response or a stream frame takes, in one place: the wire belongs here,
//! not to the model.
//!
//! Two generations of m3o's chat API share the chat service: v1 (`New`, `Send`, `History`,
//! `Connect`: `chat_id`, `client_id`, Unix-second `sent_at`) and v2 (the group endpoints, and a
//! `Send`/`History` naming `group_id`: `group_id`, `client`, RFC 3339 times), as the published
//! `m3o` client reads them (docs/API.md section 10).

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

    /// The JSON of a Join frame: `{"message": ...}`.
    pub fn frame(group_id: &ChatId, m: &Message) -> String {
        serde_json::to_string(&MessageReply { message: V2MessageView::new(group_id, m) }).unwrap_or_default()
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
