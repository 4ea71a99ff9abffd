//! A chat's tail: what the log after the last checkpoint says about one chat.
//!
//! Recovery gathers one per chat the replayed log touches and keeps them in memory, so the
//! server serves as soon as the log is read, whatever the number of chats touched. A chat's tail
//! is folded into its files when the chat is first loaded, or, for chats nobody loads, by the
//! next checkpoint before its catalog moves past them (`Store::save_catalog`).

use super::record::{IndexEntry, Loc, MessageView};
use crate::model::{ChatMeta, MemberEdit};

#[derive(Debug, Default, Clone)]
pub struct Tail {
    /// The chat was created after the checkpoint: the tail holds all of it.
    pub created: Option<ChatMeta>,
    pub edits: Vec<Edit>,
    pub messages: Vec<(u64, IndexEntry)>,
}

/// A change to a chat's metadata, in log order.
#[derive(Debug, Clone)]
pub enum Edit {
    Member(MemberEdit),
    /// A whole new metadata record, as versions before membership records wrote them.
    Replace(ChatMeta),
}

impl Edit {
    pub fn apply(&self, meta: &mut ChatMeta) {
        match self {
            Edit::Member(edit) => drop(meta.apply(edit)),
            Edit::Replace(new) => *meta = new.clone(),
        }
    }
}

impl Tail {
    pub fn message(&mut self, loc: Loc, msg: MessageView) {
        self.messages.push((msg.seq, msg.entry(loc)));
    }

    /// Applies the tail to a chat whose index holds seqs `1..=len`: its edits to `meta` (replaying
    /// one the metadata already holds is harmless: each user's last edit wins) and answers the
    /// entries that follow `len`. `None` if the tail leaves a gap after `len`: the chat's files
    /// are missing something.
    pub fn fold(&self, meta: &mut ChatMeta, len: u64) -> Option<Vec<IndexEntry>> {
        for edit in &self.edits {
            edit.apply(meta);
        }
        let mut next = len + 1;
        let mut added = Vec::new();
        for (seq, entry) in &self.messages {
            if *seq == next {
                added.push(entry.clone());
                next += 1;
            } else if *seq > next {
                return None;
            }
        }
        Some(added)
    }
}
