//! The micro error answers of every status, and the shared schemas (`components`).

use serde_json::{json, Value};

use super::*;

impl Describe {
    pub(super) fn error_response(&self, endpoint: &str, status: u16) -> Value {
        let description = match status {
            400 => "Malformed JSON or a wrong type (`BadRequest`), a missing field (`Missing...`), a bad id \
                (`BadID`), or a bad paging value"
                .to_owned(),
            401 => "A missing or bad bearer value (`Unauthorized`)".to_owned(),
            403 => "A key or token for another namespace, a user token acting as someone else, or a non-member \
                (`Forbidden`)"
                .to_owned(),
            404 => "No such chat (`NotFound`)".to_owned(),
            405 => "Any other method on this path (`MethodNotAllowed`); `Allow` names the ones it takes".to_owned(),
            408 => "The body did not arrive within 10 s of the headers (`Timeout`)".to_owned(),
            413 => format!(
                "The body is larger than server.max_body_bytes = {} bytes, or a field is longer than its limit \
                 (`TooLarge`)",
                self.max_body
            ),
            429 => "A user token sending or changing membership too fast (`RateLimited`)".to_owned(),
            500 => "An internal failure (`Internal`)".to_owned(),
            503 => "The chat is held out of service: its stored data failed a check (`Unavailable`)".to_owned(),
            507 => "The server's disk is full (`DiskFull`)".to_owned(),
            _ => "An error".to_owned(),
        };
        let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        let id_pattern = format!("^{}\\.[A-Za-z]+$", endpoint.replace('.', "\\."));
        let body = json!({ "allOf": [
            schema("MicroError"),
            { "properties": {
                "id": { "pattern": id_pattern },
                "code": { "const": status },
                "status": { "const": reason },
            } },
        ] });
        let mut response = json!({ "description": description, "content": json_content(body) });
        if status == 405 {
            response["headers"] = json!({ "Allow": {
                "required": true, "description": "The methods this path takes", "schema": { "type": "string" },
            } });
        }
        response
    }

    // ---- components ----

    pub(super) fn components(&self) -> Value {
        let id_text = format!(
            "1 to limits.max_id_bytes = {} bytes of UTF-8 without control characters; Unicode, spaces, `/`, `.` \
             and `$` are data",
            self.max_id
        );
        let string = || json!({ "type": "string" });
        let time = || json!({ "type": "string", "format": "date-time", "description": "RFC 3339, UTC" });
        json!({
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from auth.api_keys (acts for any user of its namespaces), or an \
                        HS256 user token signed with the namespace's secret, carrying sub, exp and ns (acts only \
                        as sub). Ignored in anonymous mode.",
                },
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "auth.admin_key, for the operator's resources off loopback (loopback needs none)",
                },
                "adminBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "auth.admin_key as the password (any user name): how a browser opens /admin",
                },
                "token": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "A user token, for streams opened by browsers (which cannot set headers)",
                },
            },
            "parameters": {
                "Namespace": {
                    "name": "micro-namespace",
                    "in": "header",
                    "required": false,
                    "description": "The tenant. Missing or empty: the namespace of an API key bound to exactly \
                        one, the `ns` of a user token, else `micro`.",
                    "schema": {
                        "type": "string",
                        "maxLength": self.max_id,
                        "not": { "pattern": CONTROL },
                    },
                },
            },
            "schemas": {
                "Id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": self.max_id,
                    "not": { "pattern": CONTROL },
                    "description": id_text,
                },
                "OptionalId": {
                    "anyOf": [
                        { "type": "string", "maxLength": self.max_id, "not": { "pattern": CONTROL } },
                        { "type": "null" },
                    ],
                    "description": format!("An id, or absent: `null` and `\"\"` count as absent. {id_text}"),
                },
                "Count": {
                    "anyOf": [
                        { "type": "integer", "minimum": 0, "maximum": u64::MAX },
                        { "type": "string", "pattern": "^[0-9]{1,19}$" },
                        { "type": "null" },
                    ],
                    "description": "A non-negative integer, as a JSON number or a numeric string (m3o clients \
                        sent int64 as strings); `null` counts as absent",
                },
                "MicroError": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string", "description": "{service}.{Endpoint}.{Reason}" },
                        "code": { "type": "integer", "description": "The HTTP status" },
                        "detail": string(),
                        "status": { "type": "string", "description": "The status's reason phrase" },
                    },
                    "required": ["id", "code", "detail", "status"],
                    "additionalProperties": false,
                },
                "Message": exact(json!({
                    "id": string(),
                    "client_id": string(),
                    "chat_id": string(),
                    "user_id": string(),
                    "subject": string(),
                    "text": string(),
                    "sent_at": { "type": "integer", "description": "Unix seconds" },
                    "seq": { "type": "integer", "minimum": 1, "description": "Its 1-based place in the chat" },
                })),
                "V2Message": exact(json!({
                    "id": string(),
                    "client": string(),
                    "group_id": string(),
                    "user_id": string(),
                    "subject": string(),
                    "text": string(),
                    "sent_at": time(),
                    "seq": { "type": "integer", "minimum": 1 },
                })),
                "MessageFrame": exact(json!({ "message": schema("V2Message") })),
                "AuthoredMessage": exact(json!({
                    "id": string(),
                    "author_id": string(),
                    "chat_id": string(),
                    "text": string(),
                    "sent_at": { "type": "integer", "description": "Unix seconds" },
                    "seq": { "type": "integer", "minimum": 1 },
                })),
                "Chat": exact(json!({
                    "id": string(),
                    "user_ids": { "type": "array", "items": string() },
                    "created_at": { "type": "integer", "description": "Unix seconds" },
                })),
                "Group": exact(json!({
                    "id": string(),
                    "name": string(),
                    "description": string(),
                    "created_at": time(),
                    "user_ids": { "type": "array", "items": string() },
                    "private": { "type": "boolean" },
                })),
                "GroupReply": exact(json!({ "group": schema("Group") })),
            },
        })
    }
}
