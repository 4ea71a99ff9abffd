//! The operator's endpoints: `/health` (alive; served from `routes.rs`), `/ready` (200 while
//! the server takes writes, 503 naming why not) and `/metrics` (Prometheus text). While the data
//! dir is being recovered, [`recovering`] answers in place of the whole API.
//!
//! They say how the server is doing, which is nobody else's business: they answer loopback
//! peers, and others only with `authorization: Bearer <auth.admin_key>` (401 without a key, 403
//! with another one, or when no admin key is configured).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{ApiError, At};
use crate::config::Secret;
use crate::error::Error;
use crate::registry::{LiveCount, Registry};
use crate::store::Store;
use crate::telemetry::measure::{self, Scrape};

/// What the operator's endpoints look at.
#[derive(Clone)]
pub struct Ops {
    pub store: Arc<Store>,
    pub registry: Addr<Registry>,
    pub data_dir: PathBuf,
}

/// `auth.admin_key`, shared by the server and the one answering during recovery.
pub struct AdminKey(pub Secret);

/// Whether `req` may see an admin endpoint `id` (`chatd.Ready`, ...): its error if not.
pub fn admitted(req: &HttpRequest, id: &'static str) -> Result<(), ApiError> {
    let loopback = req.peer_addr().is_some_and(|peer| match peer.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    });
    if loopback {
        return Ok(());
    }
    let Some(given) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(Error::Unauthorized("an admin key is needed off loopback".into()).at(id));
    };
    let given = given.strip_prefix("Bearer ").or_else(|| given.strip_prefix("bearer ")).unwrap_or("").trim();
    let key = req.app_data::<web::Data<AdminKey>>().map(|k| k.0.expose());
    match key {
        Some(key) if !key.is_empty() && same(given.as_bytes(), key.as_bytes()) => Ok(()),
        Some("") => Err(Error::Forbidden("no auth.admin_key is configured: this answers loopback only".into()).at(id)),
        _ => Err(Error::Forbidden("that is not the admin key".into()).at(id)),
    }
}

/// Compares in time independent of where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 200 once recovery is done (it is, or nothing would be listening) and the log takes writes.
async fn ready(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    admitted(&req, "chatd.Ready")?;
    match ops.store.failure() {
        None => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
        Some(why) => Err(Error::Unavailable(format!("the log takes no more writes: {why}")).at("chatd.Ready")),
    }
}

async fn metrics(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    admitted(&req, "chatd.Metrics")?;
    let live_chats = ops.registry.send(LiveCount).await.unwrap_or(0);
    let dir = ops.data_dir.clone();
    let (log_bytes, snapshot_bytes) =
        web::block(move || (dir_bytes(&dir.join("wal")), dir_bytes(&dir.join("snap")))).await.unwrap_or((0, 0));
    let scrape = Scrape { live_chats, log_bytes, snapshot_bytes, log_writable: ops.store.failure().is_none() };
    match measure::render(&scrape) {
        Some(text) => Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)),
        None => Err(Error::Unavailable("metrics are off (see the log)".into()).at("chatd.Metrics")),
    }
}

/// The bytes of the files directly in `dir` (0 if it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, id) in [("/ready", "chatd.Ready"), ("/metrics", "chatd.Metrics")] {
        let resource = web::resource(path).default_service(web::to(move || async move {
            Err::<HttpResponse, _>(Error::MethodNotAllowed("GET, HEAD").at(id))
        }));
        cfg.service(match id {
            "chatd.Ready" => resource.route(web::get().to(ready)).route(web::head().to(ready)),
            _ => resource.route(web::get().to(metrics)).route(web::head().to(metrics)),
        });
    }
}

/// What answers while the data dir is recovered, before the API can: `/health` is 200 (alive),
/// `/ready` and everything else 503.
pub fn recovering(cfg: &mut web::ServiceConfig) {
    let health = |req: HttpRequest| async move {
        admitted(&req, "chatd.Health")?;
        Ok::<_, ApiError>(HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })))
    };
    let ready = |req: HttpRequest| async move {
        admitted(&req, "chatd.Ready")?;
        Err::<HttpResponse, _>(Error::Unavailable("recovering the data dir".into()).at("chatd.Ready"))
    };
    cfg.route("/health", web::get().to(health)).route("/ready", web::get().to(ready)).default_service(web::to(
        || async {
            Err::<HttpResponse, _>(Error::Unavailable("recovering the data dir; try again shortly".into()).at("chatd"))
        },
    ));
}
