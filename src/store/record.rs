//! What the write-ahead log and the snapshots hold. Plain structs and enums only:
//! serde attributes such as `flatten`, `skip` or `tag` would lose data under bincode.

use serde::{Deserialize, Serialize};

use crate::model::{ChatId, ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, Namespace};
use crate::names::ChatNames;

mod catalog;
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
    /// A message compaction copied forward out of a segment it removes (`compact.rs`): the same
    /// message, read where the chat's index points, never replayed as a new one.
    Copied {
        chat: ChatNo,
        msg: Message,
    },
    /// A chat's metadata as its `.meta` snapshot holds it, which covers every change logged
    /// before `covers`: compaction writes it before removing a segment that holds the chat's
    /// creation or changes, so the log alone still rebuilds the chat (`recovery.rs`).
    Recreated {
        chat: ChatNo,
        ns: Namespace,
        meta: ChatMeta,
        covers: Pos,
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
            | Record::Member { chat, .. }
            | Record::Copied { chat, .. }
            | Record::Recreated { chat, .. } => *chat,
            Record::Erased(_) | Record::Commit => NO_CHAT,
        }
    }
}

/// A [`Record`] decoded without copying what recovery does not keep: same variants, same order,
/// same encoding; a message's user, subject and text are borrowed from the log's bytes.
#[derive(Debug, Deserialize)]
pub enum RecordView<'a> {
    ChatCreated {
        chat: ChatNo,
        ns: Namespace,
        meta: ChatMeta,
    },
    Message {
        chat: ChatNo,
        #[serde(borrow)]
        msg: MessageView<'a>,
    },
    ChatUpdated {
        chat: ChatNo,
        meta: ChatMeta,
    },
    ChatDeleted {
        chat: ChatNo,
    },
    Erased(&'a [u8]),
    Commit,
    Member {
        chat: ChatNo,
        edit: MemberEdit,
    },
    Copied {
        chat: ChatNo,
        #[serde(borrow)]
        msg: MessageView<'a>,
    },
    Recreated {
        chat: ChatNo,
        ns: Namespace,
        meta: ChatMeta,
        covers: Pos,
    },
}

/// A [`Message`] as [`RecordView`] reads it: the keys the index keeps are owned, the rest borrowed.
#[derive(Debug, Deserialize)]
pub struct MessageView<'a> {
    pub seq: u64,
    pub id: MessageId,
    pub client_id: ClientId,
    pub user_id: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub sent_at: i64,
}

impl MessageView<'_> {
    /// The message's index entry, were it found at `loc`.
    pub fn entry(self, loc: Loc) -> IndexEntry {
        let id = (self.id.as_str() != self.client_id.as_str()).then_some(self.id);
        IndexEntry { loc, client_id: self.client_id, id }
    }
}

impl IndexEntry {
    /// The index entry of `msg`, found at `loc`.
    pub fn of(msg: &Message, loc: Loc) -> IndexEntry {
        let id = (msg.id.as_str() != msg.client_id.as_str()).then(|| msg.id.clone());
        IndexEntry { loc, client_id: msg.client_id.clone(), id }
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

/// A chat as it is loaded: its metadata, and where each of its messages lies in the log
/// (seq = index + 1) with the keys that make sends retry-safe. Versions before the append-only
/// index stored it whole in `chat-….snap` (still read, and converted on first load).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatSnapshot {
    pub chat: ChatNo,
    pub meta: ChatMeta,
    pub entries: Vec<IndexEntry>,
}

/// A chat's metadata snapshot (`chat-….meta`): small, replaced atomically at each snapshot
/// after the index append. `indexed` is how many entries its index file held by then: an index
/// found shorter is damaged, not torn (a torn append only ever loses entries past it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatHead {
    pub chat: ChatNo,
    pub meta: ChatMeta,
    pub indexed: u64,
}

/// One append to a chat's index file (`chat-….idx`): the entries of seqs `first_seq..`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexChunk {
    pub chat: ChatNo,
    pub first_seq: u64,
    pub entries: Vec<IndexEntry>,
}

/// The start of an [`IndexChunk`]'s encoding (bincode writes a Vec's length first), decoded
/// alone where only the count matters.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IndexChunkHead {
    pub chat: ChatNo,
    pub first_seq: u64,
    pub count: u64,
}

/// How much of a chat's index is in its index file: `entries` entries in `bytes` bytes of
/// whole chunks (anything after is a torn append, cut off by the next one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMark {
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub loc: Loc,
    pub client_id: ClientId,
    /// The message's id, when it is not its client id.
    pub id: Option<MessageId>,
}

/// The directory of every chat and the log position up to which every chat's snapshot is
/// complete. Restart replays the log from `pos` only. On disk it is these fields and then each
/// entry's `bare`, in the entries' order (see `record/catalog.rs`).
#[derive(Debug, Clone, Default)]
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
    /// `Some(created_at)` when this entry is the chat's whole metadata and the chat has no files
    /// of its own in `snap/` (a chat with no messages whose metadata [fits](fits_catalog)):
    /// what a million chats made and never written to cost the disk is this catalog, not two
    /// million files. Its first message gives it files; where a chat has files, they win.
    pub bare: Option<i64>,
}

impl CatalogEntry {
    pub fn new(chat: ChatNo, ns: &Namespace, id: &ChatId, group: bool, members: &Members) -> CatalogEntry {
        CatalogEntry { chat, group, names: ChatNames::new(ns, id, members), bare: None }
    }

    /// The entry of a chat made with `meta`: bare if its metadata fits.
    pub fn of(chat: ChatNo, ns: &Namespace, meta: &ChatMeta) -> CatalogEntry {
        let bare = fits_catalog(meta).then_some(meta.created_at);
        CatalogEntry { bare, ..CatalogEntry::new(chat, ns, &meta.id, meta.group, &meta.user_ids) }
    }
}

/// Whether a catalog entry can hold all of `meta`: nothing set but its id, members, group flag
/// and creation time (what `New` makes, and a `Create` with no name, description or privacy).
pub fn fits_catalog(meta: &ChatMeta) -> bool {
    meta.name.is_empty() && meta.description.is_empty() && !meta.private && meta.invited.is_empty()
}

/// The whole metadata of a chat whose catalog entry holds it (see [`CatalogEntry::bare`]).
pub fn bare_meta(id: ChatId, members: Members, group: bool, created_at: i64) -> ChatMeta {
    ChatMeta {
        id,
        user_ids: members,
        created_at,
        name: String::new(),
        description: String::new(),
        group,
        private: false,
        invited: Members::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::{self, Frame};

    fn id<T: From<MessageId>>(s: &str) -> T {
        T::from(MessageId::parse(s, 64).expect("id")) // ok: test
    }

    /// The view reads every record exactly as the record decodes: same variant, same fields.
    #[test]
    fn a_record_view_reads_what_the_record_wrote() {
        let meta = ChatMeta {
            id: ChatId::parse("chat", 64).expect("id"), // ok: test
            user_ids: Members::new(vec![crate::model::UserId::parse("u", 64).expect("id")]), // ok: test
            created_at: 5,
            name: "n".into(),
            description: "d".into(),
            group: true,
            private: false,
            invited: Members::default(),
        };
        let msg = Message {
            seq: 300,
            id: id("m-1"),
            client_id: id("c-1"),
            user_id: crate::model::UserId::parse("u", 64).expect("id"), // ok: test
            subject: "s".into(),
            text: "hello ".repeat(30),
            sent_at: -7,
        };
        let records = [
            Record::ChatCreated { chat: 1, ns: Namespace::parse("ns", 64).expect("ns"), meta: meta.clone() }, // ok: test
            Record::Message { chat: 2, msg: msg.clone() },
            Record::ChatUpdated { chat: 3, meta },
            Record::ChatDeleted { chat: 4 },
            Record::Erased(vec![9; 70]),
            Record::Commit,
            Record::Member { chat: 5, edit: MemberEdit::Add(msg.user_id.clone()) },
            Record::Copied { chat: 6, msg: msg.clone() },
        ];
        for record in &records {
            let bytes = codec::frame(record, record.tag()).expect("frame"); // ok: test
            let Frame::Valid { payload, .. } = codec::read_frame(&bytes) else { panic!("frame") };
            let view: RecordView = codec::decode_record_view(payload).expect("view"); // ok: test
            let same = match (record, view) {
                (Record::ChatCreated { chat, ns, meta }, RecordView::ChatCreated { chat: c, ns: n, meta: m }) => {
                    (chat, ns, meta) == (&c, &n, &m)
                }
                (Record::Message { chat, msg }, RecordView::Message { chat: c, msg: v }) => {
                    *chat == c
                        && (v.seq, v.user_id, v.subject, v.text, v.sent_at)
                            == (msg.seq, msg.user_id.as_str(), msg.subject.as_str(), msg.text.as_str(), msg.sent_at)
                        && v.entry(Loc { pos: Pos { segment: 1, offset: 2 }, len: 3 })
                            == IndexEntry::of(msg, Loc { pos: Pos { segment: 1, offset: 2 }, len: 3 })
                }
                (Record::ChatUpdated { chat, meta }, RecordView::ChatUpdated { chat: c, meta: m }) => {
                    (chat, meta) == (&c, &m)
                }
                (Record::ChatDeleted { chat }, RecordView::ChatDeleted { chat: c }) => *chat == c,
                (Record::Erased(fill), RecordView::Erased(f)) => fill.as_slice() == f,
                (Record::Commit, RecordView::Commit) => true,
                (Record::Member { chat, edit }, RecordView::Member { chat: c, edit: e }) => (chat, edit) == (&c, &e),
                (Record::Copied { chat, msg }, RecordView::Copied { chat: c, msg: v }) => {
                    *chat == c && (v.seq, v.text) == (msg.seq, msg.text.as_str())
                }
                _ => false,
            };
            assert!(same, "{record:?} reads back differently");
        }
    }
}
