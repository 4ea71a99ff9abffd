//! The OpenAPI 3.1 description of every route of the route table, served at `/openapi.json`.
//!
//! It is built once at startup from the route table ([`routes::table`]) and the settings, so the
//! limits it states (id, text and subject sizes, members, page sizes) and whether it asks for a
//! bearer value are the running server's own. Nothing is fetched at build or run time.
//! `tests/openapi.rs` checks that every route is described and answers as described, and
//! `.ci/run` fuzzes the unary endpoints against it with schemathesis.
//!
//! JSON Schema counts `maxLength` in characters where chatd counts bytes of UTF-8: for ASCII the
//! two agree, and every description says which the server means.

mod components;
mod streams;
mod unary;

use actix_web::http::StatusCode;
use serde_json::{json, Map, Value};

use super::routes::{self, Route};
use crate::config::Settings;

/// What a string must not contain to be an id: a control character (Unicode category Cc).
const CONTROL: &str = "[\\u0000-\\u001f\\u007f-\\u009f]";

/// The document, as the server with `settings` serves it.
pub fn document(settings: &Settings) -> Value {
    let d = Describe::new(settings);
    let mut paths = Map::new();
    for route in routes::table() {
        let Some(operation) = d.operation(&route) else { continue };
        let method = route.method.to_ascii_lowercase();
        let item = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        item[method.as_str()] = operation;
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "chatd",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A self-hosted chat server speaking the m3o chat and chats APIs",
            "description": INFO,
            "license": { "name": "MIT", "identifier": "MIT" },
        },
        "tags": [
            { "name": "chat", "description": "The chat service: New, Send, History, Connect, and the chat v2 group calls" },
            { "name": "chats", "description": "The chats service: the same chats, with author_id for user_id" },
            { "name": "chatd", "description": "The health check, this description and the chat page" },
            { "name": "admin", "description": "The operator's: readiness, metrics, the operator page and its lists" },
        ],
        "paths": paths,
        "components": d.components(),
    });
    if d.keyed {
        doc["security"] = json!([{ "bearer": [] }]);
    }
    doc
}

const INFO: &str = "A drop-in replacement for the retired m3o `chat` and `chats` APIs.\n\n\
Every unary endpoint is `POST` with a JSON body on three equivalent paths: `/{service}/{Endpoint}`, \
`/{service}/{Service}/{Endpoint}` and `/v1/{service}/{Endpoint}`. The body is read as JSON whatever the \
Content-Type says; an empty body means `{}`; unknown fields are ignored. Integer fields take a JSON number or \
a numeric string. Every failure is a micro error body `{id, code, detail, status}` with the HTTP status equal \
to `code` and `id` `{service}.{Endpoint}.{Reason}`; a path that names no endpoint answers 404 \
`chatd.NotFound`. `OPTIONS` on any path is a CORS preflight answered 204. The `micro-namespace` header names \
the tenant. Streams (`Connect`, `Join`) are a WebSocket upgrade or Server-Sent Events on `GET`.";

/// What one unary endpoint takes and answers.
struct Unary {
    summary: &'static str,
    description: &'static str,
    request: Value,
    examples: Value,
    ok: Value,
    /// Error statuses besides the ones every unary endpoint can answer.
    errors: &'static [u16],
}

struct Describe {
    /// Keys or secrets are configured: requests need a bearer value (else anonymous mode).
    keyed: bool,
    /// User tokens are possible: user id fields may be omitted, and some calls are rate-limited.
    tokens: bool,
    max_id: usize,
    max_text: usize,
    max_subject: usize,
    max_members: usize,
    max_body: usize,
    default_limit: u64,
    max_limit: u64,
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// An answer of exactly these fields.
fn exact(properties: Value) -> Value {
    let required: Vec<&String> = properties.as_object().map(|p| p.keys().collect()).unwrap_or_default();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// One of two fields naming the chat, as a non-empty id (for a field and its alias, which
/// cannot both be given).
fn target(a: &str, b: &str) -> Value {
    json!({ "anyOf": [
        { "required": [a], "properties": { a: schema("Id") } },
        { "required": [b], "properties": { b: schema("Id") } },
    ] })
}

/// `a` names the chat when it is given (`b` is then not read), else `b` does.
fn first_of(a: &str, b: &str) -> Value {
    json!({ "anyOf": [
        { "required": [a], "properties": { a: schema("Id") } },
        { "required": [b], "properties": { b: schema("Id"), a: { "enum": ["", null] } } },
    ] })
}

/// What a call's answer leads to (OpenAPI links, on the same kind of path): the endpoint, and
/// the request fields filled from the answer or the request.
fn links(id: &str) -> Vec<(&'static str, Value)> {
    match id {
        "chat.New" => vec![
            ("Send", json!({ "chat_id": "$response.body#/chat_id", "user_id": "$request.body#/user_ids/0" })),
            ("History", json!({ "chat_id": "$response.body#/chat_id" })),
        ],
        "chat.Create" => vec![
            ("Invite", json!({ "group_id": "$response.body#/group/id" })),
            ("History", json!({ "group_id": "$response.body#/group/id" })),
        ],
        "chats.CreateChat" => vec![
            (
                "SendMessage",
                json!({ "chat_id": "$response.body#/chat/id", "author_id": "$response.body#/chat/user_ids/0" }),
            ),
            ("ListMessages", json!({ "chat_id": "$response.body#/chat/id" })),
        ],
        _ => Vec::new(),
    }
}

/// A string field the call does not read: only its type is checked.
fn unread() -> Value {
    nullable(json!({ "type": "string" }))
}

/// A field and its alias: either, not both (serde reads them as one field).
fn not_both(a: &str, b: &str) -> Value {
    json!({ "not": { "required": [a, b] } })
}

impl Describe {
    fn new(settings: &Settings) -> Describe {
        let limits = &settings.limits;
        Describe {
            keyed: !settings.anonymous(),
            tokens: !settings.auth.user_token_secrets.is_empty(),
            max_id: limits.max_id_bytes,
            max_text: limits.max_text_bytes,
            max_subject: limits.max_subject_bytes,
            max_members: limits.max_members,
            max_body: settings.server.max_body_bytes,
            default_limit: settings.history.default_limit,
            max_limit: settings.history.max_limit,
        }
    }

    fn operation(&self, route: &Route) -> Option<Value> {
        let operation_id = match route.path.trim_matches('/') {
            "" => "index".to_owned(),
            path => path.replace('/', "."),
        };
        let mut op = match (route.method, route.id) {
            ("POST", id) => self.unary_operation(id, self.unary(id)?),
            ("GET", "chat.Connect" | "chat.Join") => self.stream_operation(route.id),
            ("GET", _) => self.page_operation(route)?,
            _ => return None,
        };
        let prefix = operation_id.rsplit_once('.').map_or("", |(prefix, _)| prefix).to_owned();
        let links: Map<String, Value> = links(route.id)
            .into_iter()
            .map(|(target, body)| {
                (target.to_owned(), json!({ "operationId": format!("{prefix}.{target}"), "requestBody": body }))
            })
            .collect();
        if route.method == "POST" && !links.is_empty() {
            op["responses"]["200"]["links"] = Value::Object(links);
        }
        op["operationId"] = json!(operation_id);
        Some(op)
    }
}
