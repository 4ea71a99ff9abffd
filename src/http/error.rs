//! The one place a domain [`Error`] becomes the wire's micro error body, with the HTTP status
//! equal to its `code`:
//! `{"id":"chat.Send.MissingText","code":400,"detail":"Text is missing","status":"Bad Request"}`.
//!
//! Lower layers do not know which endpoint failed; handlers add it with [`At::at`].

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::Error;

/// The last part of the error id.
pub fn reason(error: &Error) -> String {
    match error {
        Error::Missing(field) => format!("Missing{field}"),
        Error::BadRequest(_) => "BadRequest".into(),
        Error::BadId(_) => "BadID".into(),
        Error::NotFound(_) => "NotFound".into(),
        Error::Unauthorized(_) => "Unauthorized".into(),
        Error::Forbidden(_) => "Forbidden".into(),
        Error::TooLarge(_) => "TooLarge".into(),
        Error::RateLimited(_) => "RateLimited".into(),
        Error::Timeout(_) => "Timeout".into(),
        Error::MethodNotAllowed(_) => "MethodNotAllowed".into(),
        Error::Unavailable(_) => "Unavailable".into(),
        Error::Internal(_) => "Internal".into(),
        Error::DiskFull => "DiskFull".into(),
    }
}

pub fn status(error: &Error) -> StatusCode {
    match error {
        Error::Missing(_) | Error::BadRequest(_) | Error::BadId(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
    }
}

/// Names the endpoint an error happened at, e.g. `"chat.Send"`.
pub trait At {
    fn at(self, endpoint: &'static str) -> ApiError;
}

impl At for Error {
    fn at(self, endpoint: &'static str) -> ApiError {
        ApiError { endpoint, error: self }
    }
}

/// An [`Error`] and the endpoint it happened at: everything a micro error body needs.
#[derive(Debug)]
pub struct ApiError {
    pub endpoint: &'static str,
    pub error: Error,
}

/// The body m3o's gateway returned for every failure.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct MicroError {
    pub id: String,
    pub code: u16,
    pub detail: String,
    pub status: String,
}

impl ApiError {
    /// The error for a path that names no endpoint.
    pub fn no_route() -> ApiError {
        Error::NotFound("no endpoint at this path".into()).at("chatd")
    }

    pub fn body(&self) -> MicroError {
        let status = status(&self.error);
        MicroError {
            id: format!("{}.{}", self.endpoint, reason(&self.error)),
            code: status.as_u16(),
            detail: self.error.to_string(),
            status: status.canonical_reason().unwrap_or("Error").to_owned(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.endpoint, self.error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(&self.error)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Error::MethodNotAllowed(allow) = self.error {
            response.insert_header((header::ALLOW, allow));
        }
        response.json(self.body())
    }
}
