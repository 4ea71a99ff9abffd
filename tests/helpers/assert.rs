//! Assertions on what the server answers: micro errors (as bodies and as stream frames),
//! messages and groups, each checked to have exactly its fields.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use serde_json::Value;

/// The fields of a Message, as History returns it and as each stream frame carries it.
pub const MESSAGE_KEYS: [&str; 8] = ["chat_id", "client_id", "id", "sent_at", "seq", "subject", "text", "user_id"];

/// The fields of a group, exactly.
pub const GROUP_KEYS: [&str; 6] = ["created_at", "description", "id", "name", "private", "user_ids"];

/// Asserts a micro error: the status, `id`, and a body of exactly id, code, detail, status
/// with `code` equal to the HTTP status.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_id: &str) {
    assert_eq!(status, want_status, "status of {body}");
    assert_error_frame(body, want_status, want_id, None);
}

/// [`assert_error`], naming `what` was asked when the status is wrong (for tests looping over
/// many requests).
#[track_caller]
pub fn assert_error_for(status: StatusCode, body: &Value, want_status: u16, want_id: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: status of {body}");
    assert_error_frame(body, want_status, want_id, None);
}

/// A micro error body or stream frame: exactly id, code, detail, status (and client_id when
/// expected), with `status` the reason phrase of `code`.
#[track_caller]
pub fn assert_error_frame(frame: &Value, code: u16, id: &str, client_id: Option<&str>) {
    let keys: BTreeSet<&str> =
        frame.as_object().unwrap_or_else(|| panic!("not an object: {frame}")).keys().map(String::as_str).collect();
    let mut want = BTreeSet::from(["code", "detail", "id", "status"]);
    if client_id.is_some() {
        want.insert("client_id");
    }
    assert_eq!(keys, want, "fields of {frame}");
    assert_eq!(frame["id"], id, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    assert!(frame["detail"].is_string(), "{frame}");
    let reason = StatusCode::from_u16(code).expect("an HTTP status").canonical_reason().expect("a reason phrase");
    assert_eq!(frame["status"], reason, "{frame}");
    if let Some(client_id) = client_id {
        assert_eq!(frame["client_id"], client_id, "{frame}");
    }
}

/// A Message with exactly its fields.
#[track_caller]
pub fn assert_message_shape(m: &Value) {
    let keys: BTreeSet<&str> =
        m.as_object().unwrap_or_else(|| panic!("not an object: {m}")).keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(MESSAGE_KEYS), "fields of {m}");
}

/// The group of a `{"group"}` reply, checked to have exactly a group's fields.
#[track_caller]
pub fn group_of(reply: &Value) -> &Value {
    let g = &reply["group"];
    assert_group_shape(g);
    g
}

/// A group with exactly its fields, of their types.
#[track_caller]
pub fn assert_group_shape(g: &Value) {
    let keys: Vec<&str> =
        g.as_object().unwrap_or_else(|| panic!("not a group: {g}")).keys().map(String::as_str).collect();
    assert_eq!(keys, GROUP_KEYS, "fields of {g}");
    assert!(g["id"].is_string() && g["name"].is_string() && g["description"].is_string());
    assert!(g["created_at"].is_i64() && g["private"].is_boolean() && g["user_ids"].is_array());
}
