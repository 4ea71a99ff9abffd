//! Request bodies: JSON whatever the Content-Type says (the seeds' `curl -d` sends
//! `application/x-www-form-urlencoded`), an empty body meaning `{}`, a size limit, and a time
//! limit: actix has no timer on a body once its headers are in, so a client announcing
//! `Content-Length: 1000` and sending nothing would hold its connection forever.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::Error;

/// How long a body may take to arrive once its headers have (docs/API.md section 8).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads at most `limit` bytes, within [`BODY_TIMEOUT`], and parses them as `T`.
pub async fn parse<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: actix_web::dev::Payload,
    limit: usize,
) -> Result<T, Error> {
    let too_large = || Error::TooLarge(format!("request body is larger than {limit} bytes"));
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| Error::BadRequest(format!("could not read the request body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(BODY_TIMEOUT, read).await.map_err(|_| {
        Error::Timeout(format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()))
    })??;
    let text = if body.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &body[..] };
    serde_json::from_slice(text).map_err(|e| Error::BadRequest(format!("malformed request body: {e}")))
}

/// An optional non-negative integer given as a JSON number or a numeric string
/// (m3o clients sent int64 fields as strings). A number written with a fraction or an exponent
/// counts when its value is a whole number (`20.0`, `2e1`), as JSON Schema's `integer` has it.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error as _;
    let bad = |v: &dyn std::fmt::Display| D::Error::custom(format!("expected a non-negative integer, got {v}"));
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().or_else(|| n.as_f64().and_then(whole)).map(Some).ok_or_else(|| bad(&n))
        }
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad(&format!("{s:?}"))),
        Some(other) => Err(bad(&other)),
    }
}

/// A float that is a whole number a `u64` holds exactly as written.
fn whole(f: f64) -> Option<u64> {
    // 2^64 as f64 is exact; every whole f64 below it converts without loss.
    (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
}

/// A required string: absent, `null` and `""` all count as missing.
pub fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}
