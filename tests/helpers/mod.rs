//! The one test harness: every test file uses it (`mod helpers;`) and keeps no copy of it.
//!
//! - this module: [`TestApp`], the real server started in-process on port 0 with a temporary
//!   data dir ([`spawn_app`], [`spawn_app_with`]), restarted on the same data dir or stopped
//!   gracefully;
//! - `http`: its HTTP clients, from any request read leniently into a [`Reply`] to JSON posts
//!   as a [`Who`], chunked bodies, raw header bytes and raw TCP;
//! - `api`: the endpoints' helpers (`new_chat`, `send`, `history`, the chats service, groups);
//! - `ws` and `sse`: the WebSocket and Server-Sent Events clients of `chat.Connect` and `Join`;
//! - `auth`: who a request comes from, the fixture keys and secrets, and JWT minting;
//! - `assert`: the shapes of micro errors, messages and groups;
//! - `files`: what is on disk under a data dir;
//! - `process`: the real `chatd` binary as a child process (for `kill -9`) and its client;
//! - `powercut`: the power-loss filesystem of `powercut/` (mount, control commands, cut),
//!   skipped with a note when missing (unless `CHATD_REQUIRE_POWERCUT=1`);
//! - `node`: the Node scripts of `e2e/`, skipped with a note when Node or their packages are
//!   missing (unless `CHATD_REQUIRE_BROWSER=1`), run with a timeout.
//!
//! Tests run under `#[actix_web::test]`: the chat actors need actix's runtime. Every request,
//! frame and event has a timeout ([`WAIT`]), so a bug fails a test instead of hanging it.

#![allow(dead_code)]

mod api;
mod assert;
mod auth;
mod files;
mod http;
mod node;
mod powercut;
mod process;
mod sse;
mod ws;

// Re-exported flat, as `helpers::name`; each test binary uses only part of them.
#[allow(unused_imports)]
pub use {api::*, assert::*, auth::*, files::*, http::*, node::*, powercut::*, process::*, sse::*, ws::*};

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::rt::task::JoinHandle;
use tempfile::TempDir;
use tokio::time::timeout;

use chatd::config::Settings;
use chatd::registry::{Checkpoint, LiveCount, Registry};
use chatd::startup::{Application, StartError, Stopper};

/// The longest any single request, frame, event or stop may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The real server, in-process: its address, an HTTP client, its registry and stop handle,
/// the settings it runs with and the temporary dir its data lives in.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: awc::Client,
    pub registry: actix::Addr<Registry>,
    pub handle: Stopper,
    pub settings: Settings,
    pub dir: TempDir,
    join: JoinHandle<Result<(), StartError>>,
}

/// The server with the default settings (and two workers).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with `tweak` applied to the default settings (port and data dir are
/// the harness's).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    try_spawn_app_with(tweak).await.expect("the server starts")
}

/// Like [`spawn_app_with`], for a test that expects the server to refuse its settings.
pub async fn try_spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> Result<TestApp, StartError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().to_path_buf();
    start(settings(data_dir, tweak), dir).await
}

/// Like [`spawn_app_with`], with the data dir nested at `<dir>/outer/inner/data`, so a write
/// escaping it would still land inside [`TestApp::dir`], where the test can look.
pub async fn spawn_app_nested(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("outer/inner/data");
    start(settings(data_dir, tweak), dir).await.expect("the server starts")
}

fn settings(data_dir: PathBuf, tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings::default();
    settings.server.workers = 2;
    tweak(&mut settings);
    settings.server.port = 0;
    settings.storage.data_dir = data_dir;
    settings
}

async fn start(settings: Settings, dir: TempDir) -> Result<TestApp, StartError> {
    let app = Application::build(settings.clone()).await?;
    let port = app.port();
    let registry = app.registry();
    let handle = app.handle();
    let join = actix_web::rt::spawn(app.run_until_stopped());
    Ok(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: awc::Client::builder().timeout(WAIT).finish(),
        registry,
        handle,
        settings,
        dir,
        join,
    })
}

impl TestApp {
    /// The URL of `path` (with its query) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Where the server keeps its data.
    pub fn data_dir(&self) -> PathBuf {
        self.settings.storage.data_dir.clone()
    }

    /// Runs a checkpoint: every live chat snapshots, then the catalog is written.
    pub async fn checkpoint(&self) {
        timeout(WAIT, self.registry.send(Checkpoint))
            .await
            .expect("a checkpoint in time")
            .expect("the registry answers")
            .expect("the checkpoint succeeds");
    }

    /// How many chat actors are running.
    pub async fn live_chats(&self) -> usize {
        timeout(WAIT, self.registry.send(LiveCount)).await.expect("an answer in time").expect("the registry answers")
    }

    /// Stops the server gracefully and waits for its final checkpoint.
    pub async fn stop(self) {
        self.shutdown().await;
    }

    /// Stops the server, then starts a new one on the same data dir and settings.
    pub async fn restart(self) -> TestApp {
        let (settings, dir) = self.shutdown().await;
        start(settings, dir).await.expect("the server starts")
    }

    /// Stops the server, runs `meddle` on its stopped data dir (to damage it, say), then starts
    /// a new one there.
    pub async fn restart_after(self, meddle: impl FnOnce(&Path)) -> TestApp {
        let (settings, dir) = self.shutdown().await;
        meddle(&settings.storage.data_dir);
        start(settings, dir).await.expect("the server starts")
    }

    /// Waits for a server stopped through [`TestApp::handle`] to finish, cleanly.
    pub async fn wait_stopped(self) {
        self.finished().await;
    }

    async fn shutdown(self) -> (Settings, TempDir) {
        self.handle.stop(true).await;
        self.finished().await
    }

    async fn finished(self) -> (Settings, TempDir) {
        timeout(WAIT, self.join)
            .await
            .expect("the server stops in time")
            .expect("the server task")
            .expect("a clean shutdown");
        (self.settings, self.dir)
    }
}
