//! Builds the running server: bind, recover the store (answering only `/health` and a 503
//! `/ready` meanwhile), start the registry, serve.
//! Tests start it the same way on port 0 with a temporary data dir.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use tokio::sync::watch;

use crate::chat::{Rules, TailLimits};
use crate::config::{FsyncMode, Membership, Settings};
use crate::http::{observe, recovering, routes, AdminKey, AppState, Cors, Ops};
use crate::rate::RateLimiter;
use crate::registry::{ChatOptions, Registry, Shutdown};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("could not open the data dir: {0}")]
    Store(#[from] StoreError),
    #[error("could not listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("final checkpoint failed: {0}")]
    Shutdown(String),
}

pub struct Application {
    port: u16,
    server: Server,
    registry: Addr<Registry>,
    shutdown: Arc<watch::Sender<bool>>,
}

/// Stops a running [`Application`] as SIGTERM does: streams close with 1001, then the server
/// stops accepting and gives in-flight requests up to 5 s.
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Stopper {
    pub async fn stop(&self, graceful: bool) {
        let _ = self.shutdown.send(true);
        self.server.stop(graceful).await;
    }
}

impl Application {
    /// Recovers the data dir and binds the listener; serving starts with [`run_until_stopped`].
    ///
    /// [`run_until_stopped`]: Application::run_until_stopped
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        settings.check_anonymous().map_err(StartError::Config)?;
        if settings.anonymous() {
            tracing::warn!(host = %settings.server.host, "no API keys or user token secrets are configured: serving anonymous requests");
        }
        crate::telemetry::measure::install();
        let settings = Arc::new(settings);
        let admin_key = web::Data::new(AdminKey(settings.auth.admin_key.clone()));

        // Listen first: while recovery runs, `/health` answers 200 and `/ready` (and the rest)
        // 503. Connections arriving as the real server takes over wait in the listen backlog.
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))?;
        let port = listener.local_addr()?.port();
        let interim = {
            let admin_key = admin_key.clone();
            HttpServer::new(move || {
                App::new()
                    .wrap(actix_web::middleware::from_fn(observe))
                    .app_data(admin_key.clone())
                    .configure(recovering)
            })
            .listen(listener.try_clone()?)?
            .workers(1)
            .disable_signals()
            .run()
        };
        let interim_handle = interim.handle();
        actix_web::rt::spawn(interim);
        let started = Instant::now();
        let options = store_options(&settings);
        let opened = tokio::task::spawn_blocking(move || Store::open(&options)).await;
        interim_handle.stop(false).await;
        let (store, recovered) = opened.map_err(|e| StoreError::Failed(format!("recovery stopped: {e}")))??;
        crate::telemetry::measure::recovered(started.elapsed());
        tracing::info!(chats = recovered.catalog.chats.len(), data_dir = %settings.storage.data_dir.display(), ms = started.elapsed().as_millis() as u64, "store recovered");
        let registry = Registry::new(store.clone(), recovered, chat_options(&settings)).start();
        let ops =
            web::Data::new(Ops { store, registry: registry.clone(), data_dir: settings.storage.data_dir.clone() });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = web::Data::new(AppState::new(registry.clone(), settings.clone(), shutdown_rx));
        let origins = settings.server.cors_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(Cors::new(origins.clone()))
                // Outermost: its request span and id cover everything inside, Cors included.
                .wrap(actix_web::middleware::from_fn(observe))
                .app_data(state.clone())
                .app_data(ops.clone())
                .app_data(admin_key.clone())
                .configure(routes)
                .default_service(web::to(crate::http::not_found))
        })
        // Keeps each connection's socket, so a stalled stream can be cut off (http/conn.rs).
        .on_connect(crate::http::remember_connection)
        .listen(listener)?
        // Our own signal handling (below): actix-server's would stop the whole actor system,
        // chat actors included, before the final checkpoint could snapshot them.
        .disable_signals()
        .shutdown_timeout(5);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(host = %settings.server.host, port, "chatd listening");
        Ok(Application { port, server: server.run(), registry, shutdown: Arc::new(shutdown) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn registry(&self) -> Addr<Registry> {
        self.registry.clone()
    }

    /// Stops the server as SIGTERM would.
    pub fn handle(&self) -> Stopper {
        Stopper { server: self.server.handle(), shutdown: self.shutdown.clone() }
    }

    /// Serves until SIGINT/SIGTERM (or [`handle`](Application::handle)`.stop`): stop accepting,
    /// give in-flight requests up to 5 s, then snapshot every chat and flush the log.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        let handle = self.handle();
        actix_web::rt::spawn(async move {
            if let Some(signal) = shutdown_signal().await {
                tracing::info!(signal, "shutting down gracefully");
                handle.stop(true).await;
            }
        });
        self.server.await?;
        tracing::info!("stopped serving; writing a final checkpoint");
        match self.registry.send(Shutdown).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(StartError::Shutdown(err.to_string())),
            Err(err) => Err(StartError::Shutdown(err.to_string())),
        }
    }
}

/// The store's own options, from the configuration.
fn store_options(settings: &Settings) -> store::Options {
    let storage = &settings.storage;
    store::Options {
        data_dir: storage.data_dir.clone(),
        fsync: match storage.fsync {
            FsyncMode::Always => store::Fsync::Always,
            FsyncMode::Interval => store::Fsync::Interval,
            FsyncMode::Never => store::Fsync::Never,
        },
        fsync_interval: Duration::from_millis(storage.fsync_interval_ms),
        segment_bytes: storage.segment_bytes,
    }
}

/// What every chat actor is started with, from the configuration.
fn chat_options(settings: &Settings) -> ChatOptions {
    let limits = &settings.limits;
    ChatOptions {
        rules: Rules { open: settings.chat.membership == Membership::Open, max_members: limits.max_members },
        idle_timeout: Duration::from_secs(settings.chat.idle_timeout_secs),
        checkpoint_interval: Duration::from_secs(settings.storage.checkpoint_interval_secs),
        checkpoint_bytes: settings.storage.checkpoint_bytes,
        limiter: Arc::new(RateLimiter::new(limits.sends_per_second, limits.send_burst)),
        tail: TailLimits { messages: settings.history.memory_tail, bytes: settings.history.memory_tail_bytes },
    }
}

/// Resolves with the name of the first SIGTERM or SIGINT.
async fn shutdown_signal() -> Option<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("could not listen for SIGTERM/SIGINT; stop chatd with SIGKILL only after a checkpoint");
        return None;
    };
    tokio::select! {
        _ = term.recv() => Some("SIGTERM"),
        _ = int.recv() => Some("SIGINT"),
    }
}
