//! The HTTP layer: routes, request parsing and validation, the calls into the actors, and
//! everything the wire sees (statuses, micro error bodies in `error.rs`, JSON shapes in `views.rs`).
//!
//! `routes.rs` maps paths to endpoints. A unary handler takes a [`call::Call`] (caller and parsed
//! body), parses the rest once into domain types (a failure is a micro error naming the endpoint),
//! then asks the registry or a chat actor. Chat actor addresses are cached here so a send goes
//! straight to its chat; the registry is asked only on a miss or when a cached chat has stopped
//! (idle chats stop themselves). Streams live in `stream/`, the browser page in `web.rs`, the
//! OpenAPI description of every route in `openapi/`.

mod admin;
mod auth;
mod backup;
pub(crate) mod body;
mod call;
pub(crate) mod chat;
mod chats;
mod conn;
mod cors;
mod draft;
pub mod error;
mod groups;
mod observe;
pub mod openapi;
mod routes;
mod stream;
mod views;
mod web;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use actix_web::HttpRequest;
use tokio::sync::oneshot;

use crate::chat::{ChatActor, Describe, Post, Posting};
use crate::config::Settings;
use crate::error::Error;
use crate::model::{ChatId, ChatMeta, Message, Namespace};
use crate::registry::{Lookup, Open, Registry};
use auth::Auth;

pub use admin::{recovering, AdminKey, Ops};
pub use auth::Caller;
pub use conn::remember as remember_connection;
pub use cors::Cors;
pub use observe::observe;
pub use routes::{not_found, paths as endpoint_paths, routes, table as route_table, Kind, Route, ENDPOINTS};

/// What every handler shares, across all workers.
pub struct AppState {
    pub registry: Addr<Registry>,
    pub settings: Arc<Settings>,
    auth: Auth,
    /// Turns true when the server begins to shut down: streams close with 1001.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// `/openapi.json`, built once from the settings.
    pub openapi: actix_web::web::Bytes,
    /// Namespace → chat id → live actor: nested so a lookup borrows the ids instead of cloning.
    chats: RwLock<HashMap<Namespace, LiveChats>>,
}

/// One namespace's cached actors. Entries of chats that stopped are swept when the cache has
/// doubled since the last sweep, so sweeping costs O(1) per insert however many chats are live.
struct LiveChats {
    actors: HashMap<ChatId, Addr<ChatActor>>,
    sweep_at: usize,
}

/// The first sweep comes at this size.
const CACHE_SWEEP_AT: usize = 4096;

impl Default for LiveChats {
    fn default() -> Self {
        LiveChats { actors: HashMap::new(), sweep_at: CACHE_SWEEP_AT }
    }
}

impl LiveChats {
    fn insert(&mut self, id: ChatId, actor: Addr<ChatActor>) {
        if self.actors.len() >= self.sweep_at {
            self.actors.retain(|_, a| a.connected());
            self.sweep_at = (self.actors.len() * 2).max(CACHE_SWEEP_AT);
        }
        self.actors.insert(id, actor);
    }
}

impl AppState {
    pub fn new(
        registry: Addr<Registry>,
        settings: Arc<Settings>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> AppState {
        let openapi = serde_json::to_vec(&openapi::document(&settings)).unwrap_or_default().into();
        AppState {
            auth: Auth::new(&settings),
            registry,
            settings,
            shutdown,
            openapi,
            chats: RwLock::new(HashMap::new()),
        }
    }

    /// Who is calling, for which namespace: the `micro-namespace` header (`micro` when absent
    /// or empty) and the `authorization: Bearer` value. 401, then 403 for another namespace.
    pub fn caller(&self, req: &HttpRequest) -> Result<Caller, Error> {
        let header = |name: &str| req.headers().get(name).map(|v| std::str::from_utf8(v.as_bytes()));
        let ns = header("micro-namespace").transpose().map_err(|_| Error::BadId("namespace must be UTF-8".into()))?;
        let token = header("authorization")
            .and_then(Result::ok)
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        self.auth.check(ns, token)
    }

    /// Like [`caller`](AppState::caller), for streams that name namespace and token in parameters.
    pub fn authenticate(&self, ns: Option<&str>, token: Option<&str>) -> Result<Caller, Error> {
        self.auth.check(ns, token)
    }

    /// Sends `msg` to a chat's actor, starting the actor if needed. Unknown chat: 404.
    pub async fn ask<M>(&self, ns: &Namespace, id: &ChatId, msg: M) -> Result<M::Result, Error>
    where
        M: actix::Message + std::marker::Send + Clone + 'static,
        M::Result: std::marker::Send,
        ChatActor: Handler<M>,
    {
        // A chat that stops between lookup and delivery drops the message unprocessed, so
        // asking again is safe; three tries cover any real race.
        for _ in 0..3 {
            let actor = match self.cached(ns, id) {
                Some(actor) => actor,
                None => self.lookup(ns, id).await?,
            };
            match actor.send(msg.clone()).await {
                Ok(result) => return Ok(result),
                Err(_) => self.forget(ns, id),
            }
        }
        Err(Error::Internal("the chat kept stopping; try again".into()))
    }

    /// Sends a message to a chat and waits until it is stored (see [`Posting`]): one wake-up of
    /// this task for a new message, by the log writer, where [`AppState::ask`] would take two.
    pub async fn post(&self, ns: &Namespace, id: &ChatId, post: Post) -> Result<Message, Error> {
        for _ in 0..3 {
            let actor = match self.cached(ns, id) {
                Some(actor) => actor,
                None => self.lookup(ns, id).await?,
            };
            let (reply, answer) = oneshot::channel();
            let posting = Posting { post: post.clone(), reply };
            let queued = match actor.try_send(posting) {
                Ok(()) => true,
                // A full mailbox: wait for room, as `send` would.
                Err(SendError::Full(posting)) => actor.send(posting).await.is_ok(),
                Err(SendError::Closed(_)) => false,
            };
            // Unanswered means unseen: the chat stopped first, so posting again is safe.
            if queued {
                if let Ok(receipt) = answer.await {
                    return receipt?.message().await;
                }
            }
            self.forget(ns, id);
        }
        Err(Error::Internal("the chat kept stopping; try again".into()))
    }

    /// Finds or creates a chat (see [`Open`]) and answers its metadata as it stands.
    pub async fn open(&self, open: Open) -> Result<ChatMeta, Error> {
        // A chat found by member set confirms it still has them; if a change overtook the
        // directory's answer, the directory has heard of it by now, so asking again settles it.
        for _ in 0..3 {
            let opened =
                self.registry.send(open.clone()).await.map_err(|e| Error::Internal(format!("registry: {e}")))??;
            self.remember(&open.ns, &opened.id, &opened.actor);
            match opened.actor.send(Describe { members: opened.by_members }).await {
                Ok(Ok(Some(meta))) => return Ok(meta),
                Ok(Ok(None)) => {}
                Ok(Err(err)) => return Err(err),
                Err(_) => self.forget(&open.ns, &opened.id),
            }
        }
        Err(Error::Internal("the chat kept changing; try again".into()))
    }

    fn cached(&self, ns: &Namespace, id: &ChatId) -> Option<Addr<ChatActor>> {
        let chats = self.chats.read().unwrap_or_else(|p| p.into_inner());
        chats.get(ns)?.actors.get(id).filter(|a| a.connected()).cloned()
    }

    async fn lookup(&self, ns: &Namespace, id: &ChatId) -> Result<Addr<ChatActor>, Error> {
        let lookup = Lookup { ns: ns.clone(), id: id.clone() };
        let actor = self.registry.send(lookup).await.map_err(|e| Error::Internal(format!("registry: {e}")))??;
        self.remember(ns, id, &actor);
        Ok(actor)
    }

    fn remember(&self, ns: &Namespace, id: &ChatId, actor: &Addr<ChatActor>) {
        let mut chats = self.chats.write().unwrap_or_else(|p| p.into_inner());
        chats.entry(ns.clone()).or_default().insert(id.clone(), actor.clone());
    }

    fn forget(&self, ns: &Namespace, id: &ChatId) {
        if let Some(in_ns) = self.chats.write().unwrap_or_else(|p| p.into_inner()).get_mut(ns) {
            in_ns.actors.remove(id);
        }
    }
}
