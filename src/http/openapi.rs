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

    // ---- unary endpoints ----

    fn unary_operation(&self, id: &str, unary: Unary) -> Value {
        let service = id.split('.').next().unwrap_or("chat");
        let mut statuses = vec![400, 403, 405, 408, 413, 500];
        if self.keyed {
            statuses.push(401);
        }
        statuses.extend(unary.errors.iter().filter(|&&s| s != 429 || self.tokens));
        statuses.sort_unstable();
        let mut responses = Map::new();
        responses.insert("200".into(), json!({ "description": "Done", "content": json_content(unary.ok) }));
        for status in statuses {
            responses.insert(status.to_string(), self.error_response(id, status));
        }
        json!({
            "tags": [service],
            "summary": unary.summary,
            "description": unary.description,
            "parameters": [{ "$ref": "#/components/parameters/Namespace" }],
            "requestBody": {
                // An empty body means `{}`: it may be left out where `{}` is a whole request.
                "required": !matches!(id, "chat.Create" | "chat.List"),
                "description": "JSON, whatever the Content-Type says; an empty body means `{}`",
                "content": { "application/json": { "schema": unary.request, "examples": unary.examples } },
            },
            "responses": responses,
        })
    }

    fn unary(&self, id: &str) -> Option<Unary> {
        Some(match id {
            "chat.New" => Unary {
                summary: "Find or create the unnamed chat of a set of users",
                description: "Idempotent on the set of user ids: the same set, in any order, answers the same \
                    chat_id (400 `chat.New.MissingUserIDs` when empty).",
                request: object(json!({ "user_ids": self.user_ids(1, true) }), &["user_ids"]),
                examples: json!({ "pair": { "value": { "user_ids": ["alice", "bob"] } } }),
                ok: exact(json!({ "chat_id": { "type": "string" } })),
                errors: &[503, 507],
            },
            "chat.Send" => Unary {
                summary: "Send a message, retry-safe by client_id",
                description: "Checks chat_id, user_id, text in that order; unknown chat 404; a sender who is not a \
                    member 403. A client_id the chat has stored already answers the stored message and writes \
                    nothing. Answered once the message is durable. A request naming `group_id` (not `chat_id`) \
                    is a chat v2 call and answers the v2 message.",
                request: self.send_request(),
                examples: json!({
                    "v1": { "value": { "chat_id": "general", "user_id": "alice", "subject": "Hello",
                        "text": "Hey Bob", "client_id": "6ba0d2a6" } },
                    "v2": { "value": { "group_id": "general", "user_id": "alice", "text": "Hey Bob",
                        "client": "7c1e0f3b" } },
                }),
                ok: json!({ "oneOf": [
                    exact(json!({ "message": schema("Message") })),
                    exact(json!({ "message": schema("V2Message") })),
                ] }),
                errors: &[404, 429, 503, 507],
            },
            "chat.History" => Unary {
                summary: "A page of a chat's messages, oldest first",
                description: "Without paging fields: the newest `limit` messages. `before_seq=K`: the `limit` \
                    messages just below K; `after_seq=K`: just above K; both: the lowest seqs strictly between. \
                    A request naming `group_id` answers v2 messages (an empty page is `{\"messages\": []}` \
                    either way).",
                request: {
                    let mut r = object(
                        json!({
                            "chat_id": schema("OptionalId"),
                            "group_id": unread(),
                            "limit": self.limit(),
                            "before_seq": schema("Count"),
                            "after_seq": schema("Count"),
                        }),
                        &[],
                    );
                    r["allOf"] = json!([first_of("chat_id", "group_id")]);
                    r
                },
                examples: json!({
                    "newest": { "value": { "chat_id": "general" } },
                    "older": { "value": { "chat_id": "general", "before_seq": "10", "limit": "20" } },
                    "v2": { "value": { "group_id": "general", "after_seq": 0, "limit": 100 } },
                }),
                ok: json!({ "oneOf": [
                    exact(json!({ "messages": { "type": "array", "items": schema("Message") } })),
                    exact(json!({ "messages": { "type": "array", "items": schema("V2Message"), "minItems": 1 } })),
                ] }),
                errors: &[404, 503],
            },
            "chat.Create" => Unary {
                summary: "Create a group (chat v2): a named chat, never matched by member set",
                description: "The caller's user (for a user token) is made a member.",
                request: self.group_request("chat.Create"),
                examples: json!({ "group": { "value": { "name": "general", "description": "Talk here",
                    "user_ids": ["alice", "bob"], "private": false } } }),
                ok: schema("GroupReply"),
                errors: &[503, 507],
            },
            "chat.Invite" => Unary {
                summary: "Make a user a member of a group",
                description: "The answer's group includes them; they may send and Join, private group or not.",
                request: self.group_request("chat.Invite"),
                examples: json!({ "carol": { "value": { "group_id": "general", "user_id": "carol" } } }),
                ok: schema("GroupReply"),
                errors: &[404, 429, 503, 507],
            },
            "chat.Leave" => Unary {
                summary: "Leave a group",
                description: "Answers the group as it stands after the change.",
                request: self.group_request("chat.Leave"),
                examples: json!({ "bob": { "value": { "group_id": "general", "user_id": "bob" } } }),
                ok: schema("GroupReply"),
                errors: &[404, 429, 503, 507],
            },
            "chat.Kick" => Unary {
                summary: "Remove a user from a group",
                description: "Answers the group as it stands after the change.",
                request: self.group_request("chat.Kick"),
                examples: json!({ "bob": { "value": { "group_id": "general", "user_id": "bob" } } }),
                ok: schema("GroupReply"),
                errors: &[404, 429, 503, 507],
            },
            "chat.List" => Unary {
                summary: "The chats a user is a member of, or every group of the namespace",
                description: "`{user_id}`: the groups and chats whose members include the user. `{}`: every group \
                    of the namespace for an API key or an anonymous caller, the token's user's chats for a user \
                    token. Oldest first.",
                request: self.group_request("chat.List"),
                examples: json!({
                    "user": { "value": { "user_id": "alice" } },
                    "all": { "value": {} },
                }),
                ok: exact(json!({ "groups": { "type": "array", "items": schema("Group") } })),
                errors: &[],
            },
            "chat.Delete" => Unary {
                summary: "Delete a chat and every message of it",
                description: "Answers the group as it was. Its messages are overwritten on disk before the answer.",
                request: self.group_request("chat.Delete"),
                examples: json!({ "general": { "value": { "group_id": "general" } } }),
                ok: schema("GroupReply"),
                errors: &[404, 503, 507],
            },
            "chats.CreateChat" => Unary {
                summary: "Create a chat of two or more users, idempotent",
                description: "An existing `id` answers that chat unchanged; otherwise an existing chat with the same \
                    set of users is answered. `id` defaults to a UUID. `user_ids` come back sorted.",
                request: object(
                    json!({ "id": schema("OptionalId"), "user_ids": self.user_ids(2, true) }),
                    &["user_ids"],
                ),
                examples: json!({ "general": { "value": { "id": "general", "user_ids": ["alice", "bob"] } } }),
                ok: exact(json!({ "chat": schema("Chat") })),
                errors: &[503, 507],
            },
            "chats.SendMessage" => Unary {
                summary: "Send a message, retry-safe by id",
                description: "Checks author_id, chat_id, text in that order; unknown chat 404. An `id` already \
                    stored in the chat answers the stored message unchanged.",
                request: {
                    let mut r = object(
                        json!({
                            "chat_id": schema("OptionalId"),
                            "group_id": schema("OptionalId"),
                            "author_id": self.user("author_id"),
                            "text": self.text(),
                            "id": schema("OptionalId"),
                        }),
                        &self.required(&["text"], "author_id"),
                    );
                    r["allOf"] = json!([target("chat_id", "group_id"), not_both("chat_id", "group_id")]);
                    r
                },
                examples: json!({ "hi": { "value": { "author_id": "alice", "chat_id": "general", "id": "msg-1",
                    "text": "hi bob" } } }),
                ok: exact(json!({ "message": schema("AuthoredMessage") })),
                errors: &[404, 429, 503, 507],
            },
            "chats.ListMessages" => Unary {
                summary: "A page of a chat's messages, newest first unless asked",
                description: "`order` `asc` oldest first, `desc` (or absent) newest first; `offset` skips that many \
                    in the chosen order; `limit` defaults to 25.",
                request: {
                    let mut r = object(
                        json!({
                            "chat_id": schema("OptionalId"),
                            "group_id": schema("OptionalId"),
                            "limit": self.limit(),
                            "offset": schema("Count"),
                            "order": nullable(json!({ "enum": ["asc", "desc", ""] })),
                        }),
                        &[],
                    );
                    r["allOf"] = json!([target("chat_id", "group_id"), not_both("chat_id", "group_id")]);
                    r
                },
                examples: json!({ "oldest": { "value": { "chat_id": "general", "limit": 10, "offset": 0,
                    "order": "asc" } } }),
                ok: exact(json!({ "messages": { "type": "array", "items": schema("AuthoredMessage") } })),
                errors: &[404, 503],
            },
            _ => return None,
        })
    }

    /// `required` plus the user field when no user token may stand in for it.
    fn required<'a>(&self, required: &[&'a str], user: &'a str) -> Vec<&'a str> {
        let mut all = required.to_vec();
        if !self.tokens {
            all.push(user);
        }
        all
    }

    /// A user id field: required and non-empty, unless a user token may omit it.
    fn user(&self, field: &str) -> Value {
        if self.tokens {
            let mut s = schema("OptionalId");
            s["description"] = json!(format!("required for an API key; a user token may omit {field} (its user)"));
            s
        } else {
            schema("Id")
        }
    }

    fn user_ids(&self, min: usize, unique: bool) -> Value {
        let mut s = json!({
            "type": "array",
            "items": schema("Id"),
            "minItems": min,
            "maxItems": self.max_members,
            "description": format!("Member user ids (de-duplicated and sorted; at most limits.max_members = {})",
                self.max_members),
        });
        if unique && min > 1 {
            s["uniqueItems"] = json!(true);
        }
        s
    }

    fn text(&self) -> Value {
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_text,
            "description": format!("Required; at most limits.max_text_bytes = {} bytes of UTF-8 (413 beyond)",
                self.max_text),
        })
    }

    fn limit(&self) -> Value {
        let mut s = schema("Count");
        s["description"] = json!(format!(
            "Page size: 0 or absent means the default ({} for History, 25 for ListMessages); at most \
             history.max_limit = {}",
            self.default_limit, self.max_limit
        ));
        s
    }

    fn send_request(&self) -> Value {
        let mut r = object(
            json!({
                "chat_id": schema("OptionalId"),
                "group_id": unread(),
                "user_id": self.user("user_id"),
                "text": self.text(),
                "subject": nullable(json!({ "type": "string", "maxLength": self.max_subject })),
                "client_id": schema("OptionalId"),
                "client": schema("OptionalId"),
            }),
            &self.required(&["text"], "user_id"),
        );
        r["allOf"] = json!([first_of("chat_id", "group_id"), not_both("client_id", "client")]);
        r
    }

    /// The fields the group calls share: each call reads some of them, and the rest must only
    /// have their types (serde reads every field, and group_id and its alias chat_id as one).
    fn group_request(&self, call: &str) -> Value {
        let mut properties = json!({
            "group_id": unread(),
            "chat_id": unread(),
            "user_id": unread(),
            "name": unread(),
            "description": unread(),
            "user_ids": nullable(json!({ "type": "array", "items": { "type": "string" } })),
            "private": { "type": "boolean", "description": "Create: a private group streams only to its members" },
        });
        let mut required = Vec::new();
        let mut all = vec![not_both("group_id", "chat_id")];
        let names_group = matches!(call, "chat.Invite" | "chat.Leave" | "chat.Kick" | "chat.Delete");
        if names_group {
            properties["group_id"] = schema("OptionalId");
            properties["chat_id"] = schema("OptionalId");
            all.insert(0, target("group_id", "chat_id"));
        }
        match call {
            "chat.Create" => {
                properties["name"] = nullable(json!({ "type": "string", "maxLength": self.max_subject }));
                properties["description"] = nullable(json!({ "type": "string", "maxLength": self.max_text }));
                properties["user_ids"] = nullable(self.user_ids(0, false));
            }
            "chat.Invite" | "chat.Leave" | "chat.Kick" => {
                properties["user_id"] = self.user("user_id");
                required = self.required(&[], "user_id");
            }
            "chat.List" => properties["user_id"] = schema("OptionalId"),
            _ => {}
        }
        let mut r = object(properties, &required);
        r["allOf"] = Value::Array(all);
        r
    }

    // ---- streams ----

    fn stream_operation(&self, id: &str) -> Value {
        let join = id == "chat.Join";
        let frame = if join { "`{\"message\": V2Message}`" } else { "a bare Message, as History answers it" };
        let mut statuses = vec![400, 403, 404, 405, 500, 503];
        if self.keyed {
            statuses.push(401);
        }
        if join {
            statuses.push(507);
            if self.tokens {
                statuses.push(429);
            }
        }
        statuses.sort_unstable();
        let mut responses = Map::new();
        responses.insert(
            "101".into(),
            json!({ "description": format!(
                "WebSocket (with `Upgrade: websocket`): each server frame is one JSON text frame, {frame}; every \
                 client frame `{{\"text\",\"subject\",\"client_id\"}}` is a Send. A failure after the upgrade is \
                 one micro error frame, then a close with 4000 + its code.") }),
        );
        responses.insert(
            "200".into(),
            json!({
                "description": format!(
                    "Server-Sent Events (with `Accept: text/event-stream`): each event's `id:` is the message's seq \
                     and its `data:` {frame}; an `event: error` carries a micro error and ends the stream; a `:` \
                     comment every 15 s keeps it open."),
                "content": { "text/event-stream": {
                    "schema": { "type": "string" },
                    "x-event-data": schema(if join { "MessageFrame" } else { "Message" }),
                } },
            }),
        );
        for status in statuses {
            let mut response = self.error_response(id, status);
            if status == 400 {
                response["description"] = json!(
                    "A GET that is neither a WebSocket upgrade nor `Accept: text/event-stream`, a missing chat \
                     or user, a bad id or a bad `since`"
                );
            }
            responses.insert(status.to_string(), response);
        }
        let query = |name: &str, description: &str, s: Value| json!({ "name": name, "in": "query", "required": false, "description": description, "schema": s });
        let header = |name: &str, description: &str, s: Value| json!({ "name": name, "in": "header", "required": false, "description": description, "schema": s });
        let digits = json!({ "type": "string", "pattern": "^[0-9]{1,19}$" });
        let mut parameters = vec![
            query("chat_id", "The chat to stream", schema("OptionalId")),
            query("group_id", "The chat to stream, by its chat v2 name", schema("OptionalId")),
            query("user_id", "The streaming user (required for Join)", schema("OptionalId")),
            query("namespace", "The namespace, for clients that cannot set headers", schema("OptionalId")),
            query("since", "Replay every message with a greater seq first, then go live", digits.clone()),
            query("token", "A user token, for clients that cannot set headers", json!({ "type": "string" })),
            header("Chat-Id", "The chat, as a header", schema("OptionalId")),
            header("User-Id", "The user, as a header", schema("OptionalId")),
            json!({ "$ref": "#/components/parameters/Namespace" }),
            header("Last-Event-ID", "SSE: the last seq seen; wins over since", digits),
            header(
                "Accept",
                "`text/event-stream` for Server-Sent Events",
                json!({ "type": "string", "examples": ["text/event-stream"] }),
            ),
        ];
        if !join {
            parameters.retain(|p| p["name"] != "group_id");
        }
        let mut op = json!({
            "tags": ["chat"],
            "summary": if join { "Join a group, then stream its messages (not the joiner's own)" }
                else { "Stream a chat's messages, the sender's own included" },
            "description": "Name the chat by query parameters, headers or (on a WebSocket) a first text frame \
                `{\"chat_id\",\"user_id\",\"namespace\"}`. With `since` the server first replays every later \
                message, then goes live, with no gap and no duplicate.",
            "parameters": parameters,
            "responses": responses,
            "x-frames": schema(if join { "MessageFrame" } else { "Message" }),
        });
        if self.keyed {
            op["security"] = json!([{ "bearer": [] }, { "token": [] }]);
        }
        op
    }

    // ---- pages ----

    fn page_operation(&self, route: &Route) -> Option<Value> {
        let (summary, ok) = match route.path.as_str() {
            "/health" => (
                "Health check",
                json!({ "description": "Serving", "content": json_content(exact(json!({
                    "status": { "const": "ok" } }))) }),
            ),
            "/openapi.json" => (
                "This description",
                json!({ "description": "The OpenAPI 3.1 document", "content": json_content(json!({
                    "type": "object", "required": ["openapi", "info", "paths"] })) }),
            ),
            path => {
                let (summary, media) = match path {
                    "/" => ("The chat page", "text/html"),
                    p if p.ends_with(".js") => ("A script of the browser client", "application/javascript"),
                    p if p.ends_with(".css") => ("The chat page's styles", "text/css"),
                    _ => return None,
                };
                (
                    summary,
                    json!({
                        "description": "The asset, with a strong ETag; revalidate with If-None-Match",
                        "headers": {
                            "ETag": { "required": true, "schema": { "type": "string" } },
                            "Cache-Control": { "required": true, "schema": { "const": "no-cache" } },
                        },
                        "content": { media: { "schema": { "type": "string" } } },
                    }),
                )
            }
        };
        let mut responses = json!({ "200": ok, "405": self.error_response(route.id, 405) });
        let mut parameters = Vec::new();
        if route.id == "chatd.Web" {
            responses["304"] = json!({
                "description": "Not modified: If-None-Match names the current ETag",
                "headers": { "ETag": { "required": true, "schema": { "type": "string" } } },
            });
            parameters.push(json!({
                "name": "If-None-Match", "in": "header", "required": false,
                "description": "ETags the client holds", "schema": { "type": "string" },
            }));
        }
        Some(json!({
            "tags": ["chatd"],
            "summary": summary,
            "description": "GET or HEAD; any other method is 405.",
            "parameters": parameters,
            "responses": responses,
            "security": [],
        }))
    }

    // ---- errors ----

    fn error_response(&self, endpoint: &str, status: u16) -> Value {
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

    fn components(&self) -> Value {
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
