//! What the write-ahead log and the snapshots hold. Plain structs and enums only:
//! serde attributes such as `flatten`, `skip` or `tag` would lose data under bincode.

use serde::{Deserialize, Serialize};

use crate::model::{ChatId, ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, Namespace};
use crate::names::ChatNames;

mod catalog_entry;

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
    /// New metadata for a chat, replacing the old: written by earlier versions, read for their logs.
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
    /// One membership change (appended last: bincode numbers the variants).
    Member {
        chat: ChatNo,
        edit: MemberEdit,
    },
}

impl Record {
    /// The chat a record belongs to, written into its frame header (see `codec.rs`).
    pub fn tag(&self) -> u64 {
        match self {
            Record::ChatCreated { chat, .. }
            | Record::Message { chat, .. }
            | Record::ChatUpdated { chat, .. }
            | Record::ChatDeleted { chat }
            | Record::Member { chat, .. } => *chat,
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

/// A chat's snapshot: its metadata, and where each of its messages lies in the log
/// (seq = index + 1) with the keys that make sends retry-safe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatSnapshot {
    pub chat: ChatNo,
    pub meta: ChatMeta,
    pub entries: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub loc: Loc,
    pub client_id: ClientId,
    /// The message's id, when it is not its client id.
    pub id: Option<MessageId>,
}

/// The directory of every chat and the log position up to which every chat's snapshot is
/// complete. Restart replays the log from `pos` only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub pos: Option<Pos>,
    pub next_chat: ChatNo,
    pub chats: Vec<CatalogEntry>,
    /// Chats held out of service because their stored data failed a check.
    pub unavailable: Vec<ChatNo>,
}

/// What the directory knows of a chat: enough to find it by id or by member set. Its names are
/// packed (see `names.rs`) and decoded straight into that form, so loading a million-chat
/// catalog holds each chat's strings once; on disk it is the plain struct it always was (chat,
/// ns, id, group, members: see `record/catalog_entry.rs`).
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub chat: ChatNo,
    /// Made by `Create`: never matched by member set.
    pub group: bool,
    /// Its namespace, id and members.
    pub names: ChatNames,
}

impl CatalogEntry {
    pub fn new(chat: ChatNo, ns: &Namespace, id: &ChatId, group: bool, members: &Members) -> CatalogEntry {
        CatalogEntry { chat, group, names: ChatNames::new(ns, id, members) }
    }
}
