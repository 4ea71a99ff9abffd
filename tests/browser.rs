//! The chat page in a real browser: `node e2e/chat.spec.mjs` drives headless Chromium
//! (Debian's `chromium`, through playwright-core) against a server started here. Two pages talk
//! to each other, then one loses its connection and must show every message once after it
//! reconnects. And the operator page: `node e2e/admin.spec.mjs` opens `/admin`, runs a send
//! load, and sees the charts and the namespace's message count move.
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`) and `e2e/node_modules` (`npm ci` in
//! `e2e/`). Without them the test is skipped with a note, so `cargo test` passes on a fresh
//! machine; `.ci/run` installs both and sets `CHATD_REQUIRE_BROWSER=1`, which makes a missing
//! piece a failure instead.

mod helpers;

use std::path::Path;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use helpers::{can_run, node_missing, run_node, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script stops itself after 120 s; this is the backstop.
const LIMIT: Duration = Duration::from_secs(180);

/// What is missing for the browser test, if anything.
fn missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install -y chromium)"));
    }
    missing.extend(node_missing(&["playwright-core"]));
    missing
}

#[actix_web::test]
async fn two_pages_talk_and_a_dropped_connection_loses_and_repeats_nothing() {
    if !can_run("the browser test", &missing()) {
        return;
    }
    let app = spawn_app().await;
    let address = app.address.clone();
    let run = run_node("chat.spec.mjs", &[], &[("CHATD_URL", &address), ("CHROMIUM_PATH", CHROMIUM)], LIMIT).await;
    println!("{}", run.report());
    assert!(run.success(), "e2e/chat.spec.mjs failed against {address}: {}", run.failure());
}

#[actix_web::test]
async fn the_operator_page_charts_a_send_load_as_it_runs() {
    if !can_run("the operator page's browser test", &missing()) {
        return;
    }
    let app = spawn_app().await;
    let address = app.address.clone();
    let run = run_node("admin.spec.mjs", &[], &[("CHATD_URL", &address), ("CHROMIUM_PATH", CHROMIUM)], LIMIT).await;
    println!("{}", run.report());
    assert!(run.success(), "e2e/admin.spec.mjs failed against {address}: {}", run.failure());
}

/// The page and the client are served from the binary, whatever is installed.
#[actix_web::test]
async fn the_page_and_the_client_are_served() {
    let app = spawn_app().await;
    for (path, content_type, needle) in [
        ("/", "text/html", "<script src=\"/chatd.js\""),
        ("/chatd.js", "application/javascript", "class ChatdStream"),
        ("/app.js", "application/javascript", "chat.connect"),
        ("/style.css", "text/css", "#messages"),
    ] {
        let res = app.request(Method::GET, path, &[], "").await;
        assert_eq!(res.status, StatusCode::OK, "GET {path}");
        let header = |name: &str| res.header(name).unwrap_or("").to_owned();
        assert!(
            header("content-type").starts_with(content_type),
            "GET {path}: content-type {:?}",
            header("content-type")
        );
        assert_eq!(header("cache-control"), "no-cache", "GET {path}");
        let etag = header("etag");
        assert!(!etag.is_empty(), "GET {path}: no ETag");
        let body = res.body.as_str().unwrap_or_else(|| panic!("GET {path}: a text body, not {}", res.body));
        assert!(body.contains(needle), "GET {path}: no {needle:?} in the body");

        let res = app.request(Method::GET, path, &[("if-none-match", etag.as_str())], "").await;
        assert_eq!(res.status, StatusCode::NOT_MODIFIED, "GET {path} with its ETag");
    }

    let res = app.post_raw("/chatd.js", "", &[]).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.body["id"], "chatd.Web.MethodNotAllowed", "a micro error: {}", res.body);
}
