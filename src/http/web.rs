//! The browser side, embedded in the binary so it runs with no build step and no files beside
//! it: `/` is a chat page, `/chatd.js` the dependency-free client it (or any page) uses.
//!
//! Assets carry a strong ETag (a hash of their bytes, computed at compile time) and
//! `Cache-Control: no-cache`: browsers keep them but revalidate, so an upgraded server never
//! leaves a page running yesterday's client.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::At;
use crate::error::Error;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: u64,
}

macro_rules! asset {
    ($path:literal, $file:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!("../../web/", $file)),
            etag: fnv1a(include_bytes!(concat!("../../web/", $file))),
        }
    };
}

static ASSETS: [Asset; 4] = [
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!("/chatd.js", "chatd.js", "application/javascript; charset=utf-8"),
    asset!("/app.js", "app.js", "application/javascript; charset=utf-8"),
    asset!("/style.css", "style.css", "text/css; charset=utf-8"),
];

/// The page loads only its own scripts and styles and talks only to its own origin.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// 64-bit FNV-1a: a cheap content hash for the ETags.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// The assets' paths, for the route table's listing.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.path)
}

/// GET (and HEAD) on each asset's path; any other method gets 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for asset in &ASSETS {
        cfg.service(
            web::resource(asset.path)
                .route(web::get().to(move |req: HttpRequest| serve(asset, req)))
                .route(web::head().to(move |req: HttpRequest| serve(asset, req)))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(Error::MethodNotAllowed("GET, HEAD").at("chatd.Web"))
                })),
        );
    }
}

async fn serve(asset: &'static Asset, req: HttpRequest) -> HttpResponse {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if asset.path == "/" {
        response
            .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
            .insert_header((header::REFERRER_POLICY, "no-referrer"));
    }
    if fresh {
        return response.finish();
    }
    response.insert_header((header::CONTENT_TYPE, asset.content_type)).body(asset.body)
}
