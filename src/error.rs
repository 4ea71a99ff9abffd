//! One error type, and the one place it becomes the micro error body:
//! `{"id":"chat.Send.MissingText","code":400,"detail":"Text is missing","status":"Bad Request"}`.
//!
//! Lower layers return [`Error`], which knows its reason and status but not which endpoint
//! failed; the HTTP layer adds that with [`Error::at`], giving an [`ApiError`].

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0} is missing")]
    Missing(Field),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    BadId(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
    /// A request body that did not arrive in time: 408, reason `Timeout` (not in API.md's
    /// list of reasons, which predates the limit; named like the others).
    #[error("{0}")]
    Timeout(String),
    #[error("method not allowed; use {0}")]
    MethodNotAllowed(&'static str),
    /// A chat held out of service after its stored data failed a check.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    #[error("the server's disk is full")]
    DiskFull,
}

/// The required request fields, named as the error ids name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ChatId,
    UserId,
    Text,
    AuthorId,
    UserIds,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::ChatId => "ChatID",
            Field::UserId => "UserID",
            Field::Text => "Text",
            Field::AuthorId => "AuthorID",
            Field::UserIds => "UserIDs",
        })
    }
}

impl Error {
    /// The last part of the error id.
    pub fn reason(&self) -> String {
        match self {
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

    pub fn status(&self) -> StatusCode {
        match self {
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

    pub fn chat_not_found() -> Error {
        Error::NotFound("chat not found".into())
    }

    /// Names the endpoint that failed, e.g. `"chat.Send"`.
    pub fn at(self, endpoint: &'static str) -> ApiError {
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
        let status = self.error.status();
        MicroError {
            id: format!("{}.{}", self.endpoint, self.error.reason()),
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
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Error::MethodNotAllowed(allow) = self.error {
            response.insert_header((header::ALLOW, allow));
        }
        response.json(self.body())
    }
}
