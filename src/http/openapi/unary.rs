//! The unary endpoints: their requests, answers and links, on their three paths each.

use serde_json::{json, Map, Value};

use super::*;

impl Describe {
    pub(super) fn unary_operation(&self, id: &str, unary: Unary) -> Value {
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

    pub(super) fn unary(&self, id: &str) -> Option<Unary> {
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
    pub(super) fn required<'a>(&self, required: &[&'a str], user: &'a str) -> Vec<&'a str> {
        let mut all = required.to_vec();
        if !self.tokens {
            all.push(user);
        }
        all
    }

    /// A user id field: required and non-empty, unless a user token may omit it.
    pub(super) fn user(&self, field: &str) -> Value {
        if self.tokens {
            let mut s = schema("OptionalId");
            s["description"] = json!(format!("required for an API key; a user token may omit {field} (its user)"));
            s
        } else {
            schema("Id")
        }
    }

    pub(super) fn user_ids(&self, min: usize, unique: bool) -> Value {
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

    pub(super) fn text(&self) -> Value {
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": self.max_text,
            "description": format!("Required; at most limits.max_text_bytes = {} bytes of UTF-8 (413 beyond)",
                self.max_text),
        })
    }

    pub(super) fn limit(&self) -> Value {
        let mut s = schema("Count");
        s["description"] = json!(format!(
            "Page size: 0 or absent means the default ({} for History, 25 for ListMessages); at most \
             history.max_limit = {}",
            self.default_limit, self.max_limit
        ));
        s
    }

    pub(super) fn send_request(&self) -> Value {
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
    pub(super) fn group_request(&self, call: &str) -> Value {
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
}
