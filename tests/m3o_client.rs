//! The published `m3o` npm client against the real server: `node e2e/m3o.spec.mjs` drives
//! `m3o`'s `ChatService` (every method, Join as a stream), `@m3o/m3o-node`'s `Client` (the v1
//! `chat` calls, a `Connect` stream, the `chats` calls), changing nothing but the client's
//! address, and fails on any field the client reads that is missing or of another type.
//!
//! Twice: against an anonymous server, and against one whose only API key is bound to acme,
//! where the client (which never sends a `micro-namespace` header) must read what acme holds
//! and write into acme, as the test then checks on its own with the header.
//!
//! Needs `e2e/node_modules/m3o` (`npm ci` in `e2e/`) and node; without them the tests are
//! skipped with a note, unless `CHATD_REQUIRE_BROWSER=1` (as `.ci/run` sets) makes that a
//! failure.

mod helpers;

use std::time::Duration;

use chatd::config::ApiKey;
use helpers::{can_run, key, node_missing, run_node, spawn_app, spawn_app_with, NodeRun, TestApp, ACME_KEY};
use serde_json::{json, Value};

/// The script stops itself after 120 s; this is the backstop.
const LIMIT: Duration = Duration::from_secs(150);
/// The text of the message acme holds before the client runs (the script's `SEED_TEXT`).
const SEED_TEXT: &str = "seeded in the key's namespace";

fn ready() -> bool {
    can_run("the m3o client test", &node_missing(&["m3o"]))
}

/// `m3o.spec.mjs` against `app` with `args` after its address.
async fn run_spec(app: &TestApp, args: &[&str]) -> NodeRun {
    let address = format!("{}/", app.address);
    let args: Vec<&str> = [address.as_str()].into_iter().chain(args.iter().copied()).collect();
    let run = run_node("m3o.spec.mjs", &args, &[], LIMIT).await;
    println!("e2e/m3o.spec.mjs {}: {}", args.join(" "), run.report());
    run
}

/// What the script says it wrote: the JSON of its `m3o: ids ` line.
fn written(run: &NodeRun) -> Value {
    let line = run.stdout.lines().find_map(|l| l.strip_prefix("m3o: ids "));
    line.and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null)
}

#[actix_web::test]
async fn the_m3o_client_works_against_an_anonymous_server() {
    if !ready() {
        return;
    }
    let app = spawn_app().await;
    let run = run_spec(&app, &[]).await;
    assert!(run.success(), "e2e/m3o.spec.mjs failed against the anonymous server {}: {}", app.address, run.failure());
}

#[actix_web::test]
async fn the_m3o_client_reads_and_writes_its_keys_namespace() {
    if !ready() {
        return;
    }
    let app =
        spawn_app_with(|s| s.auth.api_keys = vec![ApiKey { key: ACME_KEY.into(), namespaces: vec!["acme".into()] }])
            .await;
    let acme = key(ACME_KEY, "acme");
    // Something acme holds before the client runs, for it to read without naming acme.
    let seed = app.new_chat_as(&acme, &["seeder", "reader"]).await;
    app.send_as(&acme, &seed, "seeder", SEED_TEXT).await;

    let run = run_spec(&app, &[ACME_KEY, "acme", &seed]).await;

    // What the client wrote is in acme, asked with the header this time (as far as it got).
    let ids = written(&run);
    let mut problems = Vec::new();
    for (path, chat, text) in [
        ("/chat/History", "v1_chat", "v1_text"),
        ("/chat/History", "group", "group_text"),
        ("/chats/ListMessages", "chats_chat", "chats_text"),
    ] {
        let (Some(chat), Some(text)) = (ids[chat].as_str(), ids[text].as_str()) else {
            if run.success() {
                problems.push(format!("the script's ids have no {chat}: {ids}"));
            }
            continue;
        };
        let request = json!({ "chat_id": chat, "limit": 1000, "order": "asc" });
        let (status, body) = app.post_as(&acme, path, request).await;
        let messages = body["messages"].as_array().map(Vec::as_slice).unwrap_or_default();
        if status != 200 || !messages.iter().any(|m| m["text"] == text) {
            problems.push(format!("{path} of {chat} in acme has no {text:?}: {status} {body}"));
        }
    }
    assert!(
        run.success() && problems.is_empty(),
        "the m3o client with acme's key against {}: {}{}",
        app.address,
        problems.iter().map(|p| format!("{p}\n")).collect::<String>(),
        run.failure()
    );
}
