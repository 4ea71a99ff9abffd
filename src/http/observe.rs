//! Wraps every request: gives it a request id (the caller's `x-request-id` when sane, else a
//! fresh one), runs it inside a `request` span carrying that id (so each of its log lines names
//! it), returns the id in the `x-request-id` header, and counts it in `/metrics` by endpoint and
//! status. Neither bodies nor query strings (a stream's token) are logged.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::telemetry::measure;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An incoming request id longer than this, or with other characters, is replaced.
const MAX_ID_BYTES: usize = 128;

/// The caller's request id if it is one we can log and echo safely.
fn sane(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Route pattern → endpoint (or page) name, from the route table: a bounded set of labels.
fn endpoint_of(pattern: Option<&str>) -> &'static str {
    static NAMES: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| super::route_table().into_iter().map(|route| (route.path, route.id)).collect());
    pattern.and_then(|p| names.get(p).copied()).unwrap_or("chatd.Unrouted")
}

pub async fn observe<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let given = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|id| sane(id));
    let id = given.map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    // (The request must not be cloned before routing: the router needs it unshared.)
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            // Handlers answer their errors themselves; this is a middleware's, answered outside.
            let status = err.as_response_error().status_code().as_u16();
            measure::request("chatd.Unrouted", status, started.elapsed());
            return Err(err);
        }
    };
    let status = res.status().as_u16();
    let endpoint = endpoint_of(res.request().match_pattern().as_deref());
    measure::request(endpoint, status, started.elapsed());
    span.in_scope(|| tracing::debug!(endpoint, status, micros = started.elapsed().as_micros() as u64, "answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
