//! What the write-ahead log and the snapshots hold. Plain structs and enums only:
//! serde attributes such as `flatten`, `skip` or `tag` would lose data under bincode.

use serde::{Deserialize, Serialize};

use crate::model::{ChatMeta, ClientId, Message, Namespace};

/// Chats are known on disk by a number the server allocates, never by a client's string.
pub type ChatNo = u64;

/// One entry of the shared write-ahead log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Record {
    ChatCreated {
        chat: ChatNo,
        ns: Namespace,
        meta: ChatMeta,
    },
    Message {
        chat: ChatNo,
        msg: Message,
    },
    /// New metadata (members, invites) for a chat; replaces the old.
    ChatUpdated {
        chat: ChatNo,
        meta: ChatMeta,
    },
    ChatDeleted {
        chat: ChatNo,
    },
    /// What a deleted chat's message record is overwritten with, in place and of the same length.
    Erased(Vec<u8>),
    /// Ends each batch the writer writes: a batch without it was never made durable.
    Commit,
}

impl Record {
    /// The chat a record belongs to, written into its frame header (see `codec.rs`).
    pub fn tag(&self) -> u64 {
        match self {
            Record::ChatCreated { chat, .. }
            | Record::Message { chat, .. }
            | Record::ChatUpdated { chat, .. }
            | Record::ChatDeleted { chat } => *chat,
            Record::Erased(_) | Record::Commit => NO_CHAT,
        }
    }
}

/// The tag of records that belong to no chat.
pub const NO_CHAT: u64 = u64::MAX;

/// A position in the log: a segment number and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// Where one record lies: its position and its framed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub pos: Pos,
    pub len: u32,
}

/// A chat's index: where each of its messages lies in the log (seq = index + 1) and its
/// client id, from which the chat rebuilds its de-duplication map.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatIndex {
    pub chat: ChatNo,
    pub entries: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub loc: Loc,
    pub client_id: ClientId,
}

/// Every chat's metadata and the log position up to which every chat's snapshot is complete.
/// Restart replays the log from `pos` only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub pos: Option<Pos>,
    pub next_chat: ChatNo,
    pub chats: Vec<CatalogEntry>,
    /// Chats held out of service because their stored data failed a check.
    pub unavailable: Vec<ChatNo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub chat: ChatNo,
    pub ns: Namespace,
    pub meta: ChatMeta,
}
