//! A chat's state and rules as plain data: no actor, socket or disk, so unit tests drive it.
//!
//! It assigns seqs, de-duplicates sends by client id (and by message id), keeps the messages
//! that are written but not yet durable in seq order, decides what a membership change writes,
//! and holds the index of where each durable message lies in the log. The actor around it
//! (`mod.rs`) does the waiting: for the log, for snapshots, for subscribers.

use std::collections::{HashMap, VecDeque};

use crate::error::Error;
use crate::model::{ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, UserId};
use crate::store::record::{ChatNo, ChatSnapshot, IndexEntry, Loc};

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

    /// Everything a snapshot holds: the metadata and the durable messages' index.
    pub fn snapshot(&self, chat: ChatNo) -> ChatSnapshot {
        let mut client_of = vec![None; self.index.len()];
        for (client, &seq) in &self.clients {
            if let Some(slot) = client_of.get_mut((seq as usize).wrapping_sub(1)) {
                *slot = Some(client.clone());
            }
        }
        let mut id_of = vec![None; self.index.len()];
        for (id, &seq) in &self.ids {
            if let Some(slot) = id_of.get_mut((seq as usize).wrapping_sub(1)) {
                *slot = Some(id.clone());
            }
        }
        let entries = self
            .index
            .iter()
            .zip(client_of)
            .zip(id_of)
            .filter_map(|((&loc, client_id), id)| client_id.map(|client_id| IndexEntry { loc, client_id, id }))
            .collect();
        ChatSnapshot { chat, meta: self.meta.clone(), entries }
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

    /// Where messages `seqs` lie, for those that are durable.
    pub fn locs(&self, seqs: impl Iterator<Item = u64>) -> Vec<Loc> {
        seqs.filter_map(|seq| self.index.get((seq as usize).wrapping_sub(1)).copied()).collect()
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
        self.version += 1;
        Some(msg)
    }

    /// The log failed: nothing in flight will ever be durable. Returns the seqs given up.
    pub fn abandon(&mut self) -> Vec<u64> {
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
mod tests {
    use super::*;
    use crate::store::record::Pos;

    fn user(s: &str) -> UserId {
        UserId::parse(s, 64).expect("valid id") // ok: test
    }

    fn meta(members: &[&str], group: bool, private: bool) -> ChatMeta {
        ChatMeta {
            id: crate::model::ChatId::parse("c", 64).expect("valid id"), // ok: test
            user_ids: Members::new(members.iter().map(|m| user(m)).collect()),
            created_at: 0,
            name: String::new(),
            description: String::new(),
            group,
            private,
            invited: Members::default(),
        }
    }

    const RULES: Rules = Rules { open: false, max_members: 3 };

    fn draft(from: &str, client: Option<&str>, id: Option<&str>) -> Draft {
        Draft {
            user_id: user(from),
            subject: String::new(),
            text: "hi".into(),
            client_id: client.map(|c| ClientId::parse(c, 64).expect("valid id")), // ok: test
            id: id.map(|c| MessageId::parse(c, 64).expect("valid id")),           // ok: test
        }
    }

    fn loc(n: u64) -> Loc {
        Loc { pos: Pos { segment: 1, offset: n * 100 }, len: 100 }
    }

    #[test]
    fn seqs_are_assigned_in_order_and_indexed_when_durable() {
        let mut core = ChatCore::new(meta(&["a", "b"], false, false), RULES);
        let m1 = core.push(draft("a", Some("x"), None), 5);
        let m2 = core.push(draft("b", None, None), 6);
        assert_eq!((m1.seq, m2.seq), (1, 2));
        assert_eq!(core.durable_len(), 0);
        assert_eq!(core.durable(1, loc(1)).map(|m| m.seq), Some(1));
        assert_eq!(core.durable_len(), 1);
        assert_eq!(core.locs(1..=2), vec![loc(1)], "seq 2 is still in flight");
        assert_eq!(core.durable(2, loc(2)).map(|m| m.seq), Some(2));
        assert_eq!(core.locs(1..=3), vec![loc(1), loc(2)]);
    }

    #[test]
    fn repeats_are_found_by_client_id_or_message_id_in_flight_or_durable() {
        let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
        let sent = core.push(draft("a", Some("c1"), None), 0);
        assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(Some(1)), "in flight");
        core.durable(1, loc(1));
        assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(Some(1)), "durable");
        // A chats API id equal to the server-made id of a message finds it too.
        assert_eq!(core.find(&draft("a", None, Some(sent.id.as_str()))), Ok(Some(1)));
        assert_eq!(core.find(&draft("a", None, Some("c1"))), Ok(Some(1)), "an id equal to a client id");
        assert_eq!(core.find(&draft("a", Some("other"), None)), Ok(None));
        let plain = core.push(draft("a", None, None), 0);
        assert_eq!(plain.id.as_str(), plain.client_id.as_str(), "one UUID for both when none is given");
    }

    #[test]
    fn non_members_cannot_send_unless_membership_is_open() {
        let core = ChatCore::new(meta(&["a"], false, false), RULES);
        assert!(matches!(core.find(&draft("z", None, None)), Err(Error::Forbidden(_))));
        let open = ChatCore::new(meta(&["a"], false, false), Rules { open: true, ..RULES });
        assert_eq!(open.find(&draft("z", None, None)), Ok(None));
    }

    #[test]
    fn a_failed_log_gives_up_every_message_in_flight() {
        let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
        core.push(draft("a", Some("c1"), None), 0);
        core.push(draft("a", Some("c2"), None), 0);
        assert_eq!(core.abandon(), vec![1, 2]);
        assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(None), "a retry may write again later");
        assert_eq!(core.push(draft("a", None, None), 0).seq, 1);
    }

    #[test]
    fn a_snapshot_round_trips() {
        let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
        core.push(draft("a", Some("c1"), None), 0);
        core.push(draft("a", None, Some("m2")), 0);
        core.push(draft("a", Some("c3"), None), 0);
        core.durable(1, loc(1));
        core.durable(2, loc(2));
        let snap = core.snapshot(7);
        assert_eq!(snap.entries.len(), 2, "only durable messages");
        let back = ChatCore::from_snapshot(snap, RULES);
        assert_eq!(back.durable_len(), 2);
        assert_eq!(back.find(&draft("a", Some("c1"), None)), Ok(Some(1)));
        assert_eq!(back.find(&draft("a", None, Some("m2"))), Ok(Some(2)));
        assert_eq!(back.find(&draft("a", Some("c3"), None)), Ok(None));
    }

    #[test]
    fn membership_changes_write_only_what_changes() {
        let mut core = ChatCore::new(meta(&["a", "b"], true, false), RULES);
        assert_eq!(core.plan(&Change::Join(user("c")), None), Ok(vec![MemberEdit::Add(user("c"))]));
        assert_eq!(core.plan(&Change::Join(user("a")), None), Ok(vec![]), "already a member");
        assert_eq!(core.plan(&Change::Leave(user("z")), None), Ok(vec![]));
        let edits = core.plan(&Change::Leave(user("b")), Some(&user("b"))).expect("b may leave"); // ok: test
        assert_eq!(core.apply(&edits), vec![user("b")]);
        assert!(!core.members().contains(&user("b")));
        assert!(matches!(core.plan(&Change::Kick(user("a")), Some(&user("b"))), Err(Error::Forbidden(_))));
        let joined = core.plan(&Change::Join(user("c")), None).expect("c may join"); // ok: test
        core.apply(&joined);
        core.apply(&[MemberEdit::Add(user("d"))]);
        assert!(matches!(core.plan(&Change::Join(user("e")), None), Err(Error::BadRequest(_))), "full");
    }

    #[test]
    fn private_groups_and_plain_chats_are_joined_by_invitation() {
        let mut core = ChatCore::new(meta(&["a"], true, true), RULES);
        assert!(matches!(core.plan(&Change::Join(user("b")), None), Err(Error::Forbidden(_))));
        let invite = core.plan(&Change::Invite(user("b")), Some(&user("a"))).expect("a member invites"); // ok: test
        assert_eq!(invite, vec![MemberEdit::Add(user("b"))], "an invitation makes a member");
        core.apply(&invite);
        assert_eq!(core.plan(&Change::Join(user("b")), None), Ok(vec![]), "a member joins as they are");
        let plain = ChatCore::new(meta(&["a"], false, false), RULES);
        assert!(matches!(plain.plan(&Change::Join(user("b")), None), Err(Error::Forbidden(_))));
        let kick = core.plan(&Change::Kick(user("b")), None).expect("a key may kick"); // ok: test
        assert_eq!(kick, vec![MemberEdit::Remove(user("b"))]);
    }

    #[test]
    fn invitations_are_bounded_by_max_members() {
        let mut core = ChatCore::new(meta(&["a"], true, true), RULES);
        for u in ["b", "c"] {
            let edits = core.plan(&Change::Invite(user(u)), None).expect("room to invite"); // ok: test
            core.apply(&edits);
        }
        assert!(matches!(core.plan(&Change::Invite(user("e")), None), Err(Error::BadRequest(_))));
    }
}
