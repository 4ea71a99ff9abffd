//! The streams (WebSocket or Server-Sent Events on GET) and the pages: the web assets,
//! `/health`, `/openapi.json` itself, and the operator's (`/ready`, `/metrics`, `/admin`...).

use serde_json::{json, Map, Value};

use super::*;

impl Describe {
    pub(super) fn stream_operation(&self, id: &str) -> Value {
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

    pub(super) fn page_operation(&self, route: &Route) -> Option<Value> {
        if let Some(op) = self.admin_operation(route) {
            return Some(op);
        }
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

    /// The operator's resources: loopback peers, or the admin key (`src/http/admin.rs`).
    fn admin_operation(&self, route: &Route) -> Option<Value> {
        let count = || json!({ "type": "integer", "minimum": 0 });
        let list = |field: &str, row: Value, what: &str| {
            json!({ "description": format!("The first {} {what} and how many there are", super::super::admin::LIST_LIMIT),
                "content": json_content(exact(json!({
                    field: { "type": "array", "items": row, "maxItems": super::super::admin::LIST_LIMIT },
                    "total": count(),
                    "more": { "type": "integer", "minimum": 0, "description": "total minus the rows answered" },
                }))) })
        };
        let (summary, description, ok, mut errors) = match route.path.as_str() {
            "/ready" => (
                "Readiness",
                "200 once recovery is done and while the log takes writes; 503 naming why not.",
                json!({ "description": "Taking writes", "content": json_content(exact(json!({
                    "status": { "const": "ready" } }))) }),
                vec![503],
            ),
            "/metrics" => (
                "Prometheus metrics",
                "The Prometheus text format (0.0.4): requests by endpoint and status, the send latency \
                 histogram (`chatd_send_seconds`), log batches and fsyncs, live chats, open streams by kind, \
                 bytes on disk by kind, whether the log takes writes.",
                json!({ "description": "The metrics", "content": { "text/plain": { "schema": { "type": "string" } } } }),
                vec![503],
            ),
            "/admin" => (
                "The operator page",
                "An HTML page charting `/metrics` every second and listing `/admin/namespaces` and `/admin/held`. \
                 Off loopback its 401 asks for HTTP Basic credentials: the admin key as the password.",
                json!({ "description": "The page", "headers": {
                    "Cache-Control": { "required": true, "schema": { "const": "no-store" } },
                }, "content": { "text/html": { "schema": { "type": "string" } } } }),
                vec![],
            ),
            "/admin/namespaces" => (
                "Namespaces with their chats and messages",
                "By name. `messages` counts the stored messages of the `counted_chats` chats opened since the \
                 server started, and every message sent since; idle chats are counted when next opened.",
                list(
                    "namespaces",
                    exact(json!({ "namespace": { "type": "string" }, "chats": count(), "messages": count(),
                        "counted_chats": count() })),
                    "namespaces",
                ),
                vec![500],
            ),
            "/admin/held" => (
                "Chats held out of service",
                "Chats whose stored data failed a check (at recovery, or when first loaded); they answer 503. \
                 Lowest number first.",
                list(
                    "chats",
                    exact(json!({ "chat": count(), "namespace": { "type": "string" }, "id": { "type": "string" } })),
                    "held chats",
                ),
                vec![500],
            ),
            _ => return None,
        };
        errors.extend([401, 403, 405]);
        errors.sort_unstable();
        let mut responses = json!({ "200": ok });
        for status in errors {
            let mut response = self.error_response(route.id, status);
            match status {
                401 => response["description"] = json!("Off loopback without the admin key (`Unauthorized`)"),
                403 => {
                    response["description"] =
                        json!("Off loopback with another key, or no auth.admin_key configured (`Forbidden`)")
                }
                503 if route.path == "/ready" => {
                    response["description"] = json!("The log takes no more writes (`Unavailable`)")
                }
                503 => response["description"] = json!("Metrics are off: see the log (`Unavailable`)"),
                _ => {}
            }
            if status == 401 && route.path == "/admin" {
                response["headers"] = json!({ "WWW-Authenticate": {
                    "required": true, "description": "Basic, realm \"chatd admin\"", "schema": { "type": "string" },
                } });
            }
            responses[status.to_string()] = response;
        }
        Some(json!({
            "tags": ["admin"],
            "summary": summary,
            "description": format!("{description} GET or HEAD; any other method is 405."),
            "parameters": [],
            "responses": responses,
            "security": [{}, { "admin": [] }, { "adminBasic": [] }],
        }))
    }
}
