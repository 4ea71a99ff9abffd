//! The one domain error type. Every layer below HTTP answers with [`Error`]; it knows its reason
//! but nothing of the wire: `src/http/error.rs` turns it into a status and a micro error body.

use crate::model::BadId;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// A request body that did not arrive in time: 408, reason `Timeout` (not in docs/API.md's
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
    pub fn chat_not_found() -> Error {
        Error::NotFound("chat not found".into())
    }

    pub fn not_member(user: &crate::model::UserId) -> Error {
        Error::Forbidden(format!("{user} is not a member of this chat"))
    }
}

impl From<BadId> for Error {
    fn from(BadId(why): BadId) -> Error {
        Error::BadId(why)
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        match err {
            StoreError::DiskFull => Error::DiskFull,
            StoreError::Erased => Error::chat_not_found(),
            StoreError::Corrupt(detail) => Error::Unavailable(format!("stored data failed a check: {detail}")),
            StoreError::Busy(detail) => Error::Unavailable(detail),
            other => Error::Internal(other.to_string()),
        }
    }
}
