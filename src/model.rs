//! The domain types every layer shares: ids that are valid by construction, chats and messages.
//!
//! Ids arrive as client strings. They are parsed once, at the edge, into these types; after that
//! nobody checks them again. They are data only: no id ever becomes part of a file path.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a client string is not a valid id; the HTTP layer answers it as 400 `BadID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadId(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to `max_bytes` bytes of UTF-8 without control characters.
            pub fn parse(s: &str, max_bytes: usize) -> Result<Self, BadId> {
                check_id(s, max_bytes, $what).map(|()| Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A string that was this id already, checked when it first came in (e.g. read
            /// back from a packed copy such as `names::ChatNames`).
            #[allow(dead_code)] // not every kind of id is packed
            pub(crate) fn trusted(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        /// Lookups by `&str`: the derived `Hash` of the newtype is its string's.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: chats in different namespaces never see each other.
    Namespace,
    "namespace"
);
id_type!(ChatId, "chat id");
id_type!(UserId, "user id");
id_type!(
    /// The sender's own id for a message; a chat stores each client id once (retry safety).
    ClientId,
    "client id"
);
id_type!(MessageId, "message id");

impl Namespace {
    /// The namespace of requests that name none.
    pub fn default_ns() -> Self {
        Namespace("micro".to_owned())
    }
}

impl ChatId {
    pub fn random() -> Self {
        ChatId(uuid::Uuid::new_v4().to_string())
    }
}

impl ClientId {
    pub fn random() -> Self {
        ClientId(uuid::Uuid::new_v4().to_string())
    }
}

impl MessageId {
    pub fn random() -> Self {
        MessageId(uuid::Uuid::new_v4().to_string())
    }
}

impl From<ClientId> for MessageId {
    fn from(c: ClientId) -> Self {
        MessageId(c.0)
    }
}

impl From<MessageId> for ClientId {
    fn from(m: MessageId) -> Self {
        ClientId(m.0)
    }
}

fn check_id(s: &str, max_bytes: usize, what: &str) -> Result<(), BadId> {
    if s.is_empty() || s.len() > max_bytes {
        return Err(BadId(format!("{what} must be 1 to {max_bytes} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(BadId(format!("{what} must not contain control characters")));
    }
    Ok(())
}

/// A sorted, de-duplicated set of users: the key that makes `New` idempotent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Members(Vec<UserId>);

impl Members {
    pub fn new(mut ids: Vec<UserId>) -> Self {
        ids.sort();
        ids.dedup();
        Members(ids)
    }

    pub fn contains(&self, user: &UserId) -> bool {
        self.0.binary_search(user).is_ok()
    }

    /// Adds `user`; false if it was there already.
    pub fn insert(&mut self, user: UserId) -> bool {
        match self.0.binary_search(&user) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, user);
                true
            }
        }
    }

    /// Removes `user`; false if it was not there.
    pub fn remove(&mut self, user: &UserId) -> bool {
        match self.0.binary_search(user) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[UserId] {
        &self.0
    }
}

/// What a chat is, apart from its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMeta {
    pub id: ChatId,
    pub user_ids: Members,
    /// Unix seconds.
    pub created_at: i64,
    pub name: String,
    pub description: String,
    /// Made by the group API's `Create`: never matched by member set.
    pub group: bool,
    /// A private group can be joined only by its members (an invitation makes one).
    pub private: bool,
    /// Invitations as earlier versions kept them, apart from members (an invitation now makes a
    /// member at once). Kept so their records still decode; nothing reads it.
    pub invited: Members,
}

/// One change to a chat's membership, as its record in the log says it (never the whole list
/// again: a change costs its own size on disk, whatever the chat's size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberEdit {
    Add(UserId),
    Remove(UserId),
}

impl ChatMeta {
    /// Applies one membership change; false if it changed nothing.
    pub fn apply(&mut self, edit: &MemberEdit) -> bool {
        match edit {
            MemberEdit::Add(user) => self.user_ids.insert(user.clone()),
            MemberEdit::Remove(user) => self.user_ids.remove(user),
        }
    }
}

/// One stored message. `seq` is its 1-based place in its chat's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    pub id: MessageId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub subject: String,
    pub text: String,
    /// Unix seconds.
    pub sent_at: i64,
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
