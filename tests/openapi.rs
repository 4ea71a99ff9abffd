//! `/openapi.json` (issue 10): the OpenAPI 3.1 description is served, describes every route of
//! the route table and nothing else, and every described path answers as described: each unary
//! path its examples with 200 and a body of the 200 schema, a malformed body, a wrong method and
//! an oversized body with the documented micro errors; each page and stream its described
//! answers. Bodies are checked by a small JSON Schema validator below, which refuses any keyword
//! it does not know, so the document cannot use what it does not check.
//!
//! `.ci/run` fuzzes the same document against the real server with schemathesis.

mod helpers;

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::Method;
use serde_json::{json, Value};

use chatd::config::ApiKey;
use helpers::{key, spawn_app, spawn_app_with, Reply, TestApp, ACME_KEY, ACME_SECRET};

// ---- a JSON Schema (2020-12) subset, as the document uses it ----

/// Keywords that only annotate.
const ANNOTATIONS: [&str; 5] = ["description", "examples", "title", "summary", "format"];

/// Checks `value` against `schema`, resolving `$ref`s in `doc`; the first failure, with where.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let fail = |why: String| Err(format!("{at}: {why} (value {value}, schema {schema})"));
    let Some(schema) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            _ => fail("not a schema".into()),
        };
    };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            "$ref" => {
                let pointer = arg.as_str().and_then(|r| r.strip_prefix('#')).expect("a local $ref");
                let target = doc.pointer(pointer).unwrap_or_else(|| panic!("{at}: $ref {pointer} resolves"));
                check(doc, target, value, at)?;
            }
            "allOf" => {
                for (i, sub) in arg.as_array().expect("allOf").iter().enumerate() {
                    check(doc, sub, value, &format!("{at}/allOf/{i}"))?;
                }
            }
            "anyOf" => {
                let subs = arg.as_array().expect("anyOf");
                let errors: Vec<String> = subs.iter().filter_map(|s| check(doc, s, value, at).err()).collect();
                if errors.len() == subs.len() {
                    return fail(format!("matches no anyOf branch: {errors:?}"));
                }
            }
            "oneOf" => {
                let matched = arg.as_array().expect("oneOf").iter().filter(|s| check(doc, s, value, at).is_ok());
                let n = matched.count();
                if n != 1 {
                    return fail(format!("matches {n} oneOf branches"));
                }
            }
            "not" => {
                if check(doc, arg, value, at).is_ok() {
                    return fail("matches the schema of `not`".into());
                }
            }
            "type" => {
                let types: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().map(|t| t.as_str().expect("a type name")).collect(),
                    _ => panic!("{at}: a type"),
                };
                if !types.iter().any(|t| is_type(value, t)) {
                    return fail(format!("not of type {types:?}"));
                }
            }
            "enum" => {
                if !arg.as_array().expect("enum").contains(value) {
                    return fail("not in enum".into());
                }
            }
            "const" => {
                if arg != value {
                    return fail("not the const".into());
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, sub) in arg.as_object().expect("properties") {
                        if let Some(v) = object.get(name) {
                            check(doc, sub, v, &format!("{at}/{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in arg.as_array().expect("required") {
                        if !object.contains_key(name.as_str().expect("a name")) {
                            return fail(format!("lacks {name}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(object) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (name, v) in object {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        if arg == &Value::Bool(false) {
                            return fail(format!("has {name}, which is not described"));
                        }
                        check(doc, arg, v, &format!("{at}/{name}"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        check(doc, arg, v, &format!("{at}/{i}"))?;
                    }
                }
            }
            "minItems" | "maxItems" | "uniqueItems" => {
                if let Some(items) = value.as_array() {
                    let ok = match keyword.as_str() {
                        "minItems" => items.len() as u64 >= arg.as_u64().expect("a count"),
                        "maxItems" => items.len() as u64 <= arg.as_u64().expect("a count"),
                        _ => {
                            arg == &Value::Bool(false)
                                || items.iter().map(Value::to_string).collect::<BTreeSet<_>>().len() == items.len()
                        }
                    };
                    if !ok {
                        return fail(format!("breaks {keyword}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(s) = value.as_str() {
                    let n = s.chars().count() as u64;
                    let bound = arg.as_u64().expect("a length");
                    if (keyword == "minLength" && n < bound) || (keyword == "maxLength" && n > bound) {
                        return fail(format!("breaks {keyword}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str() {
                    let re =
                        regex_lite::Regex::new(arg.as_str().expect("a pattern")).expect("a pattern regex-lite reads");
                    if !re.is_match(s) {
                        return fail("does not match the pattern".into());
                    }
                }
            }
            "minimum" | "maximum" => {
                if value.is_number() {
                    let ok = match (value.as_u64(), arg.as_u64()) {
                        (Some(v), Some(b)) => (keyword == "minimum" && v >= b) || (keyword == "maximum" && v <= b),
                        _ => {
                            let (v, b) = (value.as_f64().expect("a number"), arg.as_f64().expect("a bound"));
                            (keyword == "minimum" && v >= b) || (keyword == "maximum" && v <= b)
                        }
                    };
                    if !ok {
                        return fail(format!("breaks {keyword}"));
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {
                if k == "format" && arg == "date-time" && value.is_string() {
                    helpers::unix_secs(value);
                }
            }
            other => panic!("{at}: the test's validator does not know the keyword {other:?}"),
        }
    }
    Ok(())
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("unknown type {other}"),
    }
}

// ---- the document ----

/// The operator's resources (`src/http/admin.rs`) and the names their errors carry.
const ADMIN: [(&str, &str); 5] = [
    ("/ready", "chatd.Ready"),
    ("/metrics", "chatd.Metrics"),
    ("/admin", "chatd.Admin"),
    ("/admin/namespaces", "chatd.AdminNamespaces"),
    ("/admin/held", "chatd.AdminHeld"),
];

async fn document(app: &TestApp) -> Value {
    let reply = app.request(Method::GET, "/openapi.json", &[], "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.body
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

/// The described response for `status`, following a `$ref`.
fn response<'a>(doc: &'a Value, op: &'a Value, status: u16, what: &str) -> &'a Value {
    let r = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{what}: answered {status}, which is not described"));
    match r.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc.pointer(&pointer[1..]).expect("a response $ref resolves"),
        None => r,
    }
}

/// Asserts `reply` is described by `op`: its status is, and its body fits that status's schema
/// (and its content type, when the response has a body).
#[track_caller]
fn assert_described(doc: &Value, op: &Value, reply: &Reply, what: &str) {
    let status = reply.status.as_u16();
    let described = response(doc, op, status, what);
    for (name, header) in described.get("headers").and_then(Value::as_object).into_iter().flatten() {
        if header["required"] == true {
            assert!(reply.header(name).is_some(), "{what}: {status} without its {name} header");
        }
    }
    let Some(content) = described.get("content").and_then(Value::as_object) else {
        return;
    };
    let content_type = reply.header("content-type").unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let media_type = content.get(media).unwrap_or_else(|| panic!("{what}: {status} as {media:?} is not described"));
    if media == "application/json" {
        if let Err(why) = check(doc, &media_type["schema"], &reply.body, what) {
            panic!("{what}: {status} does not fit its schema: {why}");
        }
    }
}

#[actix_web::test]
async fn every_route_of_the_table_is_described_and_nothing_else() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let described: BTreeSet<(String, String)> =
        operations(&doc).into_iter().map(|(path, method, _)| (path, method.to_ascii_uppercase())).collect();
    let table: BTreeSet<(String, String)> =
        chatd::http::route_table().into_iter().map(|r| (r.path, r.method.to_owned())).collect();
    let undescribed: Vec<_> = table.difference(&described).collect();
    assert!(undescribed.is_empty(), "routes the document does not describe: {undescribed:?}");
    let unrouted: Vec<_> = described.difference(&table).collect();
    assert!(unrouted.is_empty(), "described paths that are no route: {unrouted:?}");
    // Every endpoint on its three paths, and the table's routes are the app's: none is a 404.
    assert_eq!(table.len(), chatd::http::ENDPOINTS.len() * 3 + 4 + 2 + ADMIN.len(), "{table:?}");
    for (path, _) in ADMIN {
        assert!(table.contains(&(path.to_owned(), "GET".to_owned())), "{path} is in the route table");
    }
    for (path, _) in &table {
        let reply = app.request(Method::PATCH, path, &[], "").await;
        assert_eq!(reply.status, 405, "{path}: PATCH answers {} {}", reply.status, reply.body);
    }
    app.stop().await;
}

#[actix_web::test]
async fn the_document_is_well_formed() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{what}: an operationId")).to_owned();
        assert!(ids.insert(id.clone()), "{what}: operationId {id} twice");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{what}: responses"));
        assert!(responses.contains_key("405"), "{what}: the 405 of any other method");
        for (status, r) in responses {
            let code: u16 = status.parse().unwrap_or_else(|_| panic!("{what}: status {status}"));
            assert!(r["description"].is_string() || r.get("$ref").is_some(), "{what} {status}: a description");
            if code >= 400 {
                // Every error is a micro error naming this endpoint, with its code and reason.
                let schema = &r["content"]["application/json"]["schema"];
                let endpoint = if method == "post" || path.ends_with("Connect") || path.ends_with("Join") {
                    let service = path.trim_start_matches("/v1").split('/').nth(1).expect("a service");
                    format!("{service}.{}", path.rsplit('/').next().expect("an endpoint"))
                } else {
                    match path.as_str() {
                        "/health" => "chatd.Health".to_owned(),
                        "/openapi.json" => "chatd.OpenAPI".to_owned(),
                        path => ADMIN.iter().find(|(p, _)| *p == path).map_or("chatd.Web", |(_, id)| id).to_owned(),
                    }
                };
                let reason = actix_web::http::StatusCode::from_u16(code).expect("a status").canonical_reason();
                let body = json!({ "id": format!("{endpoint}.Reason"), "code": code, "detail": "d", "status": reason });
                check(&doc, schema, &body, &what).unwrap_or_else(|e| panic!("{what} {status}: {e}"));
                let wrong = json!({ "id": "other.Endpoint.Reason", "code": code, "detail": "d", "status": reason });
                assert!(check(&doc, schema, &wrong, &what).is_err(), "{what} {status}: any id fits");
            }
        }
        if method == "post" {
            for status in [200, 400, 403, 405, 408, 413, 500] {
                assert!(responses.contains_key(&status.to_string()), "{what}: no {status}");
            }
            assert!(!responses.contains_key("401"), "{what}: an anonymous server answers no 401");
            let body = &op["requestBody"]["content"]["application/json"];
            let examples = body["examples"].as_object().unwrap_or_else(|| panic!("{what}: examples"));
            assert!(!examples.is_empty(), "{what}: examples");
            for (name, example) in examples {
                check(&doc, &body["schema"], &example["value"], &format!("{what} example {name}"))
                    .unwrap_or_else(|e| panic!("{what}: example {name} does not fit its own schema: {e}"));
            }
            assert_eq!(op["parameters"][0]["$ref"], "#/components/parameters/Namespace", "{what}");
        }
    }
    // What each request schema accepts and refuses, as the handlers do.
    let request =
        |path: &str| doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    let accepts = |path: &str, body: Value| check(&doc, &request(path), &body, path).is_ok();
    assert!(accepts("/chat/History", json!({ "chat_id": "c", "limit": "20", "before_seq": 5, "after_seq": null })));
    assert!(accepts("/chat/History", json!({ "chat_id": "c", "limit": 20.0 })), "a whole number is an integer");
    assert!(accepts("/chat/History", json!({ "group_id": "g", "chat_id": "" })));
    assert!(!accepts("/chat/History", json!({ "chat_id": "c", "limit": -1 })));
    assert!(!accepts("/chat/History", json!({ "chat_id": "c", "limit": "ten" })));
    assert!(!accepts("/chat/History", json!({ "limit": 5 })), "no chat named");
    assert!(accepts("/chat/Send", json!({ "group_id": "g", "user_id": "u", "text": "t", "client": "c" })));
    assert!(!accepts(
        "/chat/Send",
        json!({ "chat_id": "c", "user_id": "u", "text": "t", "client": "a", "client_id": "b" })
    ));
    assert!(!accepts("/chat/Send", json!({ "chat_id": "c\u{7}", "user_id": "u", "text": "t" })), "a control character");
    assert!(!accepts("/chat/Send", json!({ "chat_id": "c", "user_id": "u", "text": "" })), "no text");
    assert!(accepts("/chats/SendMessage", json!({ "group_id": "c", "author_id": "a", "text": "t" })));
    assert!(!accepts("/chats/SendMessage", json!({ "group_id": "c", "chat_id": "c", "author_id": "a", "text": "t" })));
    assert!(!accepts("/chats/CreateChat", json!({ "user_ids": ["a"] })));
    assert!(accepts("/chats/ListMessages", json!({ "chat_id": "c", "order": "asc", "offset": "3" })));
    assert!(!accepts("/chats/ListMessages", json!({ "chat_id": "c", "order": "up" })));
    assert!(accepts("/chat/List", json!({})));
    assert!(!accepts("/chat/Invite", json!({ "group_id": "g" })), "Invite names its user");
    assert!(!accepts("/chat/Create", json!({ "private": "yes" })));
    app.stop().await;
}

/// A fresh namespace holding the chat the examples name: `general`, of alice and bob.
async fn seed(app: &TestApp, ns: &str) {
    let (status, body) =
        app.post_ns(ns, "/chats/CreateChat", json!({ "id": "general", "user_ids": ["alice", "bob"] })).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn every_unary_path_answers_as_described() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut n = 0;
    for (path, method, op) in operations(&doc).into_iter().filter(|(_, m, _)| m == "post") {
        let examples = op["requestBody"]["content"]["application/json"]["examples"].as_object().cloned();
        for (name, example) in examples.into_iter().flatten() {
            let what = format!("{method} {path} example {name}");
            n += 1;
            let ns = format!("ns-{n}");
            seed(&app, &ns).await;
            let headers = [("content-type", "application/json"), ("micro-namespace", ns.as_str())];
            let reply = app.post_raw(&path, example["value"].to_string(), &headers).await;
            assert_eq!(reply.status, 200, "{what}: {}", reply.body);
            assert_described(&doc, &op, &reply, &what);
        }
        let what = format!("{method} {path}");
        // The seeds' curl sends form-urlencoded: still JSON; a malformed body is a 400.
        for (body, status) in [("{\"chat_id\":", 400), ("[1, 2]", 400), ("null", 400)] {
            let reply = app.post_raw(&path, body, &[("content-type", "application/x-www-form-urlencoded")]).await;
            assert_eq!(reply.status, status, "{what} {body}: {}", reply.body);
            assert_described(&doc, &op, &reply, &format!("{what} {body}"));
        }
        let empty = app.post_raw(&path, "", &[]).await;
        assert_described(&doc, &op, &empty, &format!("{what} with no body"));
        let required = op["requestBody"]["required"] == true;
        assert_eq!(empty.status != 200, required, "{what}: an empty body is {{}}; required is {required}");
        let big = app.post_raw(&path, vec![b' '; 70 << 10], &[]).await;
        assert_eq!(big.status, 413, "{what}");
        assert_described(&doc, &op, &big, &format!("{what} 70 KiB"));
        let get = app.request(Method::GET, &path, &[], "").await;
        assert_eq!(get.status, 405, "{what}");
        assert_eq!(get.header("allow"), Some("POST"), "{what}");
        assert_described(&doc, &op, &get, &format!("GET {path}"));
        let unknown = json!({ "chat_id": "no-such-chat", "group_id": "no-such-chat", "user_id": "alice",
            "author_id": "alice", "text": "t", "user_ids": ["alice", "bob"] });
        let reply = app.post_raw(&path, unknown.to_string(), &[]).await;
        assert_described(&doc, &op, &reply, &format!("{what} of an unknown chat"));
    }
    assert!(n >= 3 * 12, "every unary endpoint has an example on each path: {n}");
    app.stop().await;
}

#[actix_web::test]
async fn every_page_answers_as_described() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (path, method, op) in operations(&doc) {
        if method != "get" || path.ends_with("/Connect") || path.ends_with("/Join") {
            continue;
        }
        let what = format!("GET {path}");
        let reply = app.request(Method::GET, &path, &[], "").await;
        assert_eq!(reply.status, 200, "{what}");
        assert_described(&doc, &op, &reply, &what);
        if let Some(etag) = reply.header("etag") {
            let again = app.request(Method::GET, &path, &[("if-none-match", etag)], "").await;
            assert_eq!(again.status, 304, "{what}");
            assert_described(&doc, &op, &again, &format!("{what} If-None-Match"));
        }
        let head = app.request(Method::HEAD, &path, &[], "").await;
        assert_eq!(head.status, 200, "HEAD {path}");
        let post = app.request(Method::POST, &path, &[], "{}").await;
        assert_eq!(post.status, 405, "POST {path}");
        assert_eq!(post.header("allow"), Some("GET, HEAD"), "POST {path}");
        assert_described(&doc, &op, &post, &format!("POST {path}"));
    }
    // The document describes itself as the server serves it.
    let served = app.request(Method::GET, "/openapi.json", &[], "").await.body;
    assert_eq!(served, chatd::http::openapi::document(&app.settings));
    app.stop().await;
}

#[actix_web::test]
async fn every_stream_path_answers_as_described() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    seed(&app, "streams").await;
    let streams: Vec<_> =
        operations(&doc).into_iter().filter(|(p, _, _)| p.ends_with("/Connect") || p.ends_with("/Join")).collect();
    assert_eq!(streams.len(), 6);
    for (path, method, op) in streams {
        assert_eq!(method, "get");
        let what = format!("GET {path}");
        let query = "?chat_id=general&group_id=general&user_id=alice&namespace=streams";
        // Neither an upgrade nor SSE: 400.
        let plain = app.request(Method::GET, &format!("{path}{query}"), &[], "").await;
        assert_eq!(plain.status, 400, "{what}: {}", plain.body);
        assert_described(&doc, &op, &plain, &what);
        // SSE of an unknown chat: 404.
        let sse = [("accept", "text/event-stream")];
        let unknown_path = format!("{path}?chat_id=nope&group_id=nope&user_id=alice");
        let unknown = app.request(Method::GET, &unknown_path, &sse, "").await;
        assert_eq!(unknown.status, 404, "{what}: {}", unknown.body);
        assert_described(&doc, &op, &unknown, &format!("{what} of an unknown chat"));
        // SSE of the chat: 200, text/event-stream, its first comment at once.
        let mut stream = app.sse_with(&format!("{path}{query}"), &[]).await;
        assert!(op["responses"]["200"]["content"]["text/event-stream"].is_object(), "{what}");
        let first = tokio::time::timeout(helpers::WAIT, futures_util::StreamExt::next(&mut stream.body)).await;
        let first = first.expect("a first chunk").expect("a chunk").expect("bytes");
        assert!(first.starts_with(b": connected"), "{what}: {first:?}");
        drop(stream);
        // A WebSocket: 101.
        let ws = app.ws_with(&format!("{path}{query}"), &[]).await;
        assert!(op["responses"]["101"].is_object(), "{what}");
        drop(ws);
        let post = app.request(Method::POST, &path, &[], "{}").await;
        assert_eq!(post.status, 405, "POST {path}");
        assert_described(&doc, &op, &post, &format!("POST {path}"));
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_keyed_server_describes_its_bearer_and_its_401s() {
    let app = spawn_app_with(|s| {
        s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }];
        s.auth.user_token_secrets = BTreeMap::from([("acme".to_owned(), ACME_SECRET.to_owned())]);
    })
    .await;
    let doc = document(&app).await;
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, method, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let pages = method == "get" && !path.ends_with("/Connect") && !path.ends_with("/Join");
        if ADMIN.iter().any(|(p, _)| *p == path) {
            // The operator's take the admin key, not an API key; loopback needs neither.
            assert_eq!(op["security"], json!([{}, { "admin": [] }, { "adminBasic": [] }]), "{what}");
            assert!(op["responses"]["401"].is_object(), "{what}: no 401");
            let reply = app.request(Method::GET, &path, &[], "").await;
            assert_eq!(reply.status, 200, "{what} on loopback without a bearer");
            assert_described(&doc, &op, &reply, &what);
            continue;
        }
        if pages {
            assert_eq!(op["security"], json!([]), "{what}: a page needs no bearer");
            continue;
        }
        assert!(op["responses"]["401"].is_object(), "{what}: no 401");
        if method == "post" {
            let reply = app.post_raw(&path, "{}", &[]).await;
            assert_eq!(reply.status, 401, "{what}");
            assert_described(&doc, &op, &reply, &format!("{what} without a bearer"));
            // With user tokens, a user id may be left to the token.
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            let required: Vec<&Value> = schema["required"].as_array().into_iter().flatten().collect();
            assert!(!required.iter().any(|r| r == &"user_id" || r == &"author_id"), "{what}: {required:?}");
        }
    }
    let who = key(ACME_KEY, "acme");
    let headers: Vec<(&str, String)> = who.headers();
    let (status, body) = app.call("/chat/List", &headers, json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

/// schemathesis found it: JSON Schema's `integer` includes `20.0`, which chatd refused as "not a
/// non-negative integer". A whole number in any spelling is an integer; a fraction is not.
#[actix_web::test]
async fn an_integer_field_takes_a_whole_number_in_any_spelling() {
    let app = spawn_app().await;
    seed(&app, "ints").await;
    for _ in 0..3 {
        app.post_ns("ints", "/chats/SendMessage", json!({ "chat_id": "general", "author_id": "alice", "text": "t" }))
            .await;
    }
    for limit in ["2", "2.0", "2e0", "\"2\"", "0.2e1"] {
        let body = format!("{{\"chat_id\":\"general\",\"limit\":{limit}}}");
        let reply = app.post_raw("/chat/History", body, &[("micro-namespace", "ints")]).await;
        assert_eq!(reply.status, 200, "limit {limit}: {}", reply.body);
        assert_eq!(reply.body["messages"].as_array().map(Vec::len), Some(2), "limit {limit}");
    }
    for limit in ["2.5", "-1", "-2.0", "1e20", "\"2.0\""] {
        let body = format!("{{\"chat_id\":\"general\",\"limit\":{limit}}}");
        let reply = app.post_raw("/chat/History", body, &[("micro-namespace", "ints")]).await;
        helpers::assert_error(reply.status, &reply.body, 400, "chat.History.BadRequest");
    }
    app.stop().await;
}
