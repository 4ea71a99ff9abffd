//! A chat's state and rules as plain data: no actor, socket or disk, so unit tests drive it.
//!
//! It assigns seqs, de-duplicates sends by client id (and by message id), keeps the messages
//! that are written but not yet durable in seq order, decides what a membership change writes,
//! and holds the index of where each durable message lies in the log. The actor around it
//! (`mod.rs`) does the waiting: for the log, for snapshots, for subscribers.

use std::collections::{HashMap, VecDeque};

use crate::error::Error;
use crate::model::{ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, UserId};
use crate::store::compact::Move;
use crate::store::record::{ChatSnapshot, IndexEntry, Loc};

/// A message to send, parsed and bounded at the edge (see `http/draft.rs`).
#[derive(Debug, Clone)]
pub struct Draft {
    pub user_id: UserId,
    pub subject: String,
    pub text: String,
    pub client_id: Option<ClientId>,
    /// The message id the caller chose (the `chats` API), else the server makes one.
    pub id: Option<MessageId>,
}

/// A membership change as an endpoint asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Makes a user a member at once, of any chat (as m3o's Invite appended to `user_ids`).
    Invite(UserId),
    /// Makes a user a member of a public group; anywhere else they must be one already.
    Join(UserId),
    Leave(UserId),
    Kick(UserId),
}

/// The settings a chat's rules depend on.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `chat.membership = "open"`: anyone in the namespace may send and read.
    pub open: bool,
    /// Bounds members.
    pub max_members: usize,
}

pub struct ChatCore {
    meta: ChatMeta,
    rules: Rules,
    /// Durable messages: `index[seq - 1]` is where message `seq` lies in the log.
    index: Vec<Loc>,
    /// Client id → seq, for durable and in-flight messages alike.
    clients: HashMap<ClientId, u64>,
    /// Message id → seq, for messages whose id is not their client id.
    ids: HashMap<MessageId, u64>,
    /// Written but not yet durable, in seq order: the log completes them in this order.
    pending: VecDeque<Message>,
    /// Counts durable changes, so a snapshot is written only when something changed.
    version: u64,
    /// The index entries of durable messages not yet in the chat's index file, oldest first:
    /// what the next snapshot appends.
    unsaved: Vec<IndexEntry>,
}

impl ChatCore {
    /// A chat about to be created: nothing stored yet.
    pub fn new(meta: ChatMeta, rules: Rules) -> ChatCore {
        ChatCore {
            meta,
            rules,
            index: Vec::new(),
            clients: HashMap::new(),
            ids: HashMap::new(),
            pending: VecDeque::new(),
            version: 0,
            unsaved: Vec::new(),
        }
    }

    pub fn from_snapshot(snapshot: ChatSnapshot, rules: Rules) -> ChatCore {
        let mut core = ChatCore::new(snapshot.meta, rules);
        core.clients.reserve(snapshot.entries.len());
        for (i, entry) in snapshot.entries.into_iter().enumerate() {
            let seq = i as u64 + 1;
            core.clients.insert(entry.client_id, seq);
            if let Some(id) = entry.id {
                core.ids.insert(id, seq);
            }
            core.index.push(entry.loc);
        }
        core
    }

    /// The index entries of durable messages not yet saved (see [`saved`](ChatCore::saved)).
    pub fn unsaved(&self) -> &[IndexEntry] {
        &self.unsaved
    }

    /// The first `n` unsaved entries are in the chat's index file now.
    pub fn saved(&mut self, n: usize) {
        self.unsaved.drain(..n.min(self.unsaved.len()));
    }

    pub fn meta(&self) -> &ChatMeta {
        &self.meta
    }

    pub fn members(&self) -> &Members {
        &self.meta.user_ids
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Marks a change made outside the message path (the chat's creation) as durable.
    pub fn touch(&mut self) {
        self.version += 1;
    }

    /// How many messages are durable: the last durable seq.
    pub fn durable_len(&self) -> u64 {
        self.index.len() as u64
    }

    /// The seq the next message will get.
    pub fn next_seq(&self) -> u64 {
        self.index.len() as u64 + self.pending.len() as u64 + 1
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Where message `seq` lies, if it is durable.
    pub fn loc(&self, seq: u64) -> Option<Loc> {
        self.index.get((seq as usize).wrapping_sub(1)).copied()
    }

    /// Compaction copied these messages forward: each is read at its copy from now on.
    pub fn relocate(&mut self, moves: &[Move]) {
        for m in moves {
            if let Some(loc) = self.index.get_mut((m.seq as usize).wrapping_sub(1)) {
                if *loc == m.from {
                    *loc = m.to;
                }
            }
        }
        for entry in &mut self.unsaved {
            if let Some(m) = moves.iter().find(|m| m.from == entry.loc) {
                entry.loc = m.to;
            }
        }
    }

    /// Every durable message's place in the log (what deletion erases).
    pub fn all_locs(&self) -> &[Loc] {
        &self.index
    }

    /// Membership gates sends, and reads by user tokens, unless membership is open.
    pub fn check_member(&self, user: &UserId) -> Result<(), Error> {
        if self.rules.open || self.meta.user_ids.contains(user) {
            Ok(())
        } else {
            Err(Error::not_member(user))
        }
    }

    /// The seq of a message this draft repeats (by client id, or by message id), if any. Seqs
    /// above [`durable_len`](ChatCore::durable_len) are still in flight.
    pub fn find(&self, draft: &Draft) -> Result<Option<u64>, Error> {
        self.check_member(&draft.user_id)?;
        let key = draft.client_id.as_ref().map(ClientId::as_str).or(draft.id.as_ref().map(MessageId::as_str));
        Ok(key.and_then(|key| self.seq_of(key)))
    }

    /// Client ids and message ids are one key space: a key may name either.
    fn seq_of(&self, key: &str) -> Option<u64> {
        self.clients.get(key).or_else(|| self.ids.get(key)).copied()
    }

    /// A new message for `draft` with the next seq, in flight until [`durable`](ChatCore::durable).
    /// Call [`find`](ChatCore::find) first: a repeat must not be stored twice.
    pub fn push(&mut self, draft: Draft, now: i64) -> Message {
        let (client_id, id) = match (draft.client_id, draft.id) {
            (Some(client), Some(id)) => (client, id),
            (Some(client), None) => (client, MessageId::random()),
            (None, Some(id)) => (ClientId::from(id.clone()), id),
            // One fresh UUID serves as both: a smaller index, and either finds the message.
            (None, None) => {
                let id = MessageId::random();
                (ClientId::from(id.clone()), id)
            }
        };
        let seq = self.next_seq();
        self.clients.insert(client_id.clone(), seq);
        if id.as_str() != client_id.as_str() {
            self.ids.insert(id.clone(), seq);
        }
        let msg = Message {
            seq,
            id,
            client_id,
            user_id: draft.user_id,
            subject: draft.subject,
            text: draft.text,
            sent_at: now,
        };
        self.pending.push_back(msg.clone());
        msg
    }

    /// The oldest in-flight message is durable at `loc`: it is indexed and returned.
    pub fn durable(&mut self, seq: u64, loc: Loc) -> Option<Message> {
        let msg = self.pending.pop_front()?;
        debug_assert_eq!(msg.seq, seq, "the log completes in order");
        self.index.push(loc);
        self.unsaved.push(IndexEntry::of(&msg, loc));
        self.version += 1;
        Some(msg)
    }

    /// The log refused message `seq`: nothing in flight will be durable, so everything in flight
    /// is given up (its seqs are returned, to be assigned again). A refusal of a message given
    /// up already changes nothing: the messages in flight by then were sent after it and the log
    /// takes them.
    pub fn abandon(&mut self, seq: u64) -> Vec<u64> {
        if self.pending.front().is_none_or(|first| first.seq != seq) {
            return Vec::new();
        }
        let lost: Vec<Message> = self.pending.drain(..).collect();
        for msg in &lost {
            self.clients.remove(&msg.client_id);
            self.ids.remove(&msg.id);
        }
        lost.into_iter().map(|m| m.seq).collect()
    }

    /// What a membership change must write, in order; empty if it changes nothing. `by` is a
    /// user token's user: to invite, leave or kick they must be a member themselves.
    pub fn plan(&self, change: &Change, by: Option<&UserId>) -> Result<Vec<MemberEdit>, Error> {
        let meta = &self.meta;
        if let (Change::Invite(_) | Change::Kick(_) | Change::Leave(_), Some(by)) = (change, by) {
            if !meta.user_ids.contains(by) {
                return Err(Error::not_member(by));
            }
        }
        let full = |set: &Members| set.len() >= self.rules.max_members;
        let too_many = || Error::BadRequest(format!("a chat has at most {} members", self.rules.max_members));
        Ok(match change {
            Change::Invite(user) | Change::Join(user) if meta.user_ids.contains(user) => vec![],
            // A private group, or a chat made by New or CreateChat, is its members' own: nobody
            // joins it uninvited.
            Change::Join(user) if meta.private || !meta.group => {
                return Err(Error::Forbidden(format!("{user} needs an invitation to join this chat")));
            }
            Change::Invite(_) | Change::Join(_) if full(&meta.user_ids) => return Err(too_many()),
            Change::Invite(user) | Change::Join(user) => vec![MemberEdit::Add(user.clone())],
            Change::Leave(user) | Change::Kick(user) if meta.user_ids.contains(user) => {
                vec![MemberEdit::Remove(user.clone())]
            }
            Change::Leave(_) | Change::Kick(_) => vec![],
        })
    }

    /// Applies durable membership edits; answers the users they removed.
    pub fn apply(&mut self, edits: &[MemberEdit]) -> Vec<UserId> {
        let mut removed = Vec::new();
        for edit in edits {
            if self.meta.apply(edit) {
                self.version += 1;
                if let MemberEdit::Remove(user) = edit {
                    removed.push(user.clone());
                }
            }
        }
        removed
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
