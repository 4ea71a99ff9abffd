//! The operator's endpoints: `/health` (alive; served from `routes.rs`), `/ready` (200 while
//! the server takes writes, 503 naming why not), `/metrics` (Prometheus text), and the operator
//! page `/admin` (`web/admin.html`) with the two lists it shows, `/admin/namespaces` and
//! `/admin/held`. While the data dir is being recovered, [`recovering`] answers in place of the
//! whole API.
//!
//! They say how the server is doing, which is nobody else's business: they answer loopback
//! peers, and others only with the admin key (`auth.admin_key`): 401 without a key, 403 with
//! another one, or when no admin key is configured. The key comes as `authorization: Bearer
//! <key>`, or as the password of HTTP Basic authentication (any user name): that is how a
//! browser off loopback opens `/admin`. Its 401 asks for Basic credentials, the browser prompts
//! for them once, and then sends them itself with the page's own requests (`/metrics` and the
//! lists), so the page never holds the key in script or storage.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::Addr;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::Engine;

use super::error::{ApiError, At};
use crate::config::Secret;
use crate::error::Error;
use crate::registry::{Held, LiveCount, Namespaces, Registry};
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
    let given = presented(given).unwrap_or_default();
    let key = req.app_data::<web::Data<AdminKey>>().map(|k| k.0.expose());
    match key {
        Some(key) if !key.is_empty() && same(given.as_bytes(), key.as_bytes()) => Ok(()),
        Some("") => Err(Error::Forbidden("no auth.admin_key is configured: this answers loopback only".into()).at(id)),
        _ => Err(Error::Forbidden("that is not the admin key".into()).at(id)),
    }
}

/// The key an `authorization` value presents: a bearer value, or a Basic password.
fn presented(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
    let (_user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_owned())
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

/// The operator page: charts from `/metrics`, the namespaces, the held chats (`web/admin.html`).
const PAGE: &str = include_str!("../../web/admin.html");

/// The page runs only its own inline script and style, and talks only to its own origin. It
/// puts what it reads (namespace names, chat ids) into the page as text, never as markup.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How many rows a list answers at most: its `total` says how many there are.
pub const LIST_LIMIT: usize = 100;

async fn page(req: HttpRequest) -> HttpResponse {
    if let Err(refused) = admitted(&req, "chatd.Admin") {
        let mut response = refused.error_response();
        if response.status() == actix_web::http::StatusCode::UNAUTHORIZED {
            let challenge = header::HeaderValue::from_static("Basic realm=\"chatd admin\", charset=\"UTF-8\"");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        return response;
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(PAGE)
}

/// The first namespaces by name with their chats and messages (see `telemetry/tally.rs`).
async fn namespaces(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    admitted(&req, "chatd.AdminNamespaces")?;
    let asked = ops.registry.send(Namespaces { after: None, limit: LIST_LIMIT }).await;
    let (rows, total) = asked.map_err(|e| Error::Internal(format!("registry: {e}")).at("chatd.AdminNamespaces"))?;
    let more = total.saturating_sub(rows.len());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "namespaces": rows, "total": total, "more": more })))
}

/// The chats held out of service after their stored data failed a check, the first by number.
async fn held(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    admitted(&req, "chatd.AdminHeld")?;
    let asked = ops.registry.send(Held { limit: LIST_LIMIT }).await;
    let (chats, total) = asked.map_err(|e| Error::Internal(format!("registry: {e}")).at("chatd.AdminHeld"))?;
    let more = total.saturating_sub(chats.len());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "chats": chats, "total": total, "more": more })))
}

/// The bytes of the files directly in `dir` (0 if it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

/// The operator's GET resources besides `/health`: path and the name their errors carry.
pub const PATHS: [(&str, &str); 5] = [
    ("/ready", "chatd.Ready"),
    ("/metrics", "chatd.Metrics"),
    ("/admin", "chatd.Admin"),
    ("/admin/namespaces", "chatd.AdminNamespaces"),
    ("/admin/held", "chatd.AdminHeld"),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, id) in PATHS {
        let resource = web::resource(path).default_service(web::to(move || async move {
            Err::<HttpResponse, _>(Error::MethodNotAllowed("GET, HEAD").at(id))
        }));
        cfg.service(match id {
            "chatd.Ready" => resource.route(web::get().to(ready)).route(web::head().to(ready)),
            "chatd.Metrics" => resource.route(web::get().to(metrics)).route(web::head().to(metrics)),
            "chatd.Admin" => resource.route(web::get().to(page)).route(web::head().to(page)),
            "chatd.AdminNamespaces" => resource.route(web::get().to(namespaces)).route(web::head().to(namespaces)),
            _ => resource.route(web::get().to(held)).route(web::head().to(held)),
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
