//! Assertions on what the server answers: micro errors (as bodies and as stream frames),
//! messages and groups, each checked to have exactly its fields.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use serde_json::Value;

/// The fields of a Message, as History returns it and as each stream frame carries it.
pub const MESSAGE_KEYS: [&str; 8] = ["chat_id", "client_id", "id", "sent_at", "seq", "subject", "text", "user_id"];

/// The fields of a chat v2 Message (docs/API.md section 10), as a Send or History naming
/// `group_id` answers it and as each Join frame's `message` carries it.
pub const V2_MESSAGE_KEYS: [&str; 8] = ["client", "group_id", "id", "sent_at", "seq", "subject", "text", "user_id"];

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

/// A chat v2 Message with exactly its fields, of their types: `sent_at` an RFC 3339 UTC time,
/// `seq` a number, the rest strings.
#[track_caller]
pub fn assert_v2_message_shape(m: &Value) {
    let keys: BTreeSet<&str> =
        m.as_object().unwrap_or_else(|| panic!("not an object: {m}")).keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(V2_MESSAGE_KEYS), "fields of {m}");
    for field in ["id", "client", "group_id", "user_id", "subject", "text"] {
        assert!(m[field].is_string(), "{field} in {m}");
    }
    assert!(m["seq"].is_u64(), "seq in {m}");
    unix_secs(&m["sent_at"]);
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
    assert!(g["private"].is_boolean() && g["user_ids"].is_array(), "types in {g}");
    unix_secs(&g["created_at"]);
}

/// The Unix seconds of an RFC 3339 UTC time as chatd writes them (`2026-12-01T08:57:30Z`);
/// panics on anything else.
#[track_caller]
pub fn unix_secs(time: &Value) -> i64 {
    let s = time.as_str().unwrap_or_else(|| panic!("not an RFC 3339 string: {time}"));
    let b = s.as_bytes();
    let shaped = b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    assert!(shaped && b[19] == b'Z', "not an RFC 3339 UTC time: {s}");
    let n = |from: usize, to: usize| s[from..to].parse::<i64>().unwrap_or_else(|_| panic!("not a time: {s}"));
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // days_from_civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}
