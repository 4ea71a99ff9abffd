//! The registry's directory: every chat, idle or live, found by (namespace, id) and, for chats
//! that are not groups, by (namespace, member set).
//!
//! It is sized for a million idle chats. Each chat is one map entry of a few words, holding its
//! names packed in one allocation ([`ChatNames`]); the two lookups are hash tables of bare chat
//! numbers whose keys are read from the entries, so no id or member list is stored twice. Live
//! actors are kept apart (see `Registry`), so an idle chat pays nothing for them.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use hashbrown::HashTable;

use crate::model::Members;
use crate::names::ChatNames;
#[cfg(doc)]
use crate::store::record::CatalogEntry;
use crate::store::record::ChatNo;

/// What the directory knows of one chat.
pub struct Entry {
    pub names: ChatNames,
    /// Made by `Create`: never matched by member set.
    pub group: bool,
    /// False until the chat's creation is durable: the catalog lists only durable chats.
    pub durable: bool,
    /// Its stored data failed a check at recovery.
    pub unavailable: bool,
    /// An actor of it has started since the server did: its messages are in the tally.
    pub counted: bool,
    /// `Some(created_at)` while the chat has no files: with the names and `group`, its whole
    /// metadata, which the catalog keeps for it (see [`CatalogEntry::bare`]).
    pub bare: Option<i64>,
}

#[derive(Default)]
pub struct Directory {
    chats: HashMap<ChatNo, Entry>,
    /// Every chat, by the hash of (ns, id).
    by_id: HashTable<ChatNo>,
    /// Chats that are not groups, by the hash of (ns, members); several may share a set.
    by_members: HashTable<ChatNo>,
    hasher: RandomState,
}

impl Directory {
    pub fn with_capacity(chats: usize) -> Directory {
        Directory {
            chats: HashMap::with_capacity(chats),
            by_id: HashTable::with_capacity(chats),
            by_members: HashTable::with_capacity(chats),
            hasher: RandomState::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.chats.len()
    }

    pub fn get(&self, no: ChatNo) -> Option<&Entry> {
        self.chats.get(&no)
    }

    pub fn get_mut(&mut self, no: ChatNo) -> Option<&mut Entry> {
        self.chats.get_mut(&no)
    }

    pub fn iter(&self) -> impl Iterator<Item = (ChatNo, &Entry)> {
        self.chats.iter().map(|(&no, e)| (no, e))
    }

    /// The number of the chat `id` of `ns`.
    pub fn find(&self, ns: &str, id: &str) -> Option<ChatNo> {
        let chats = &self.chats;
        let hash = id_hash(&self.hasher, ns, id);
        self.by_id.find(hash, |no| chats.get(no).is_some_and(|e| e.names.is(ns, id))).copied()
    }

    /// The lowest-numbered chat of `ns` that is not a group and whose members are `members`.
    pub fn find_by_members(&self, ns: &str, members: &Members) -> Option<ChatNo> {
        let chats = &self.chats;
        let hash = members_hash(&self.hasher, ns, members.as_slice().iter().map(|m| m.as_str()));
        let same = |no: &&ChatNo| chats.get(no).is_some_and(|e| e.names.ns() == ns && e.names.has_members(members));
        self.by_members.iter_hash(hash).filter(same).min().copied()
    }

    /// Adds a chat; its (ns, id) must not be in the directory yet.
    pub fn insert(&mut self, no: ChatNo, entry: Entry) {
        let id = id_hash(&self.hasher, entry.names.ns(), entry.names.id());
        let indexed = !entry.group;
        let members = names_members_hash(&self.hasher, &entry.names);
        if let Some(old) = self.chats.insert(no, entry) {
            // A number is never reused; were it, the old chat's index slots must not stay.
            self.unindex(no, &old);
        }
        let (chats, hasher) = (&self.chats, &self.hasher);
        let rehash_id = |n: &ChatNo| chats.get(n).map_or(0, |e| id_hash(hasher, e.names.ns(), e.names.id()));
        self.by_id.insert_unique(id, no, rehash_id);
        if indexed {
            let rehash = |n: &ChatNo| chats.get(n).map_or(0, |e| names_members_hash(hasher, &e.names));
            self.by_members.insert_unique(members, no, rehash);
        }
    }

    /// Gives a chat new members, moving it in the member-set index.
    pub fn set_members(&mut self, no: ChatNo, members: &Members) {
        let Some(entry) = self.chats.get(&no) else { return };
        let (names, group) = (entry.names.with_members(members), entry.group);
        if !group {
            remove_from(&mut self.by_members, names_members_hash(&self.hasher, &entry.names), no);
        }
        let hash = names_members_hash(&self.hasher, &names);
        if let Some(entry) = self.chats.get_mut(&no) {
            entry.names = names;
        }
        if !group {
            let (chats, hasher) = (&self.chats, &self.hasher);
            let rehash = |n: &ChatNo| chats.get(n).map_or(0, |e| names_members_hash(hasher, &e.names));
            self.by_members.insert_unique(hash, no, rehash);
        }
    }

    pub fn remove(&mut self, no: ChatNo) -> Option<Entry> {
        let entry = self.chats.remove(&no)?;
        self.unindex(no, &entry);
        Some(entry)
    }

    fn unindex(&mut self, no: ChatNo, entry: &Entry) {
        remove_from(&mut self.by_id, id_hash(&self.hasher, entry.names.ns(), entry.names.id()), no);
        if !entry.group {
            remove_from(&mut self.by_members, names_members_hash(&self.hasher, &entry.names), no);
        }
    }

    /// Gives back what loading grew and no longer needs.
    pub fn shrink_to_fit(&mut self) {
        let (chats, hasher) = (&mut self.chats, &self.hasher);
        chats.shrink_to_fit();
        let chats = &*chats;
        self.by_id.shrink_to_fit(|n| chats.get(n).map_or(0, |e| id_hash(hasher, e.names.ns(), e.names.id())));
        self.by_members.shrink_to_fit(|n| chats.get(n).map_or(0, |e| names_members_hash(hasher, &e.names)));
    }
}

fn remove_from(table: &mut HashTable<ChatNo>, hash: u64, no: ChatNo) {
    if let Ok(found) = table.find_entry(hash, |&n| n == no) {
        found.remove();
    }
}

fn id_hash(hasher: &RandomState, ns: &str, id: &str) -> u64 {
    hasher.hash_one((ns, id))
}

fn members_hash<'a>(hasher: &RandomState, ns: &str, members: impl ExactSizeIterator<Item = &'a str>) -> u64 {
    let mut h = hasher.build_hasher();
    ns.hash(&mut h);
    h.write_usize(members.len());
    for member in members {
        member.hash(&mut h);
    }
    h.finish()
}

fn names_members_hash(hasher: &RandomState, names: &ChatNames) -> u64 {
    members_hash(hasher, names.ns(), names.members())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatId, Namespace, UserId};

    fn members(users: &[&str]) -> Members {
        let user = |u: &&str| UserId::parse(u, 256).expect("user"); // ok: test
        Members::new(users.iter().map(user).collect())
        // ok: test
    }

    fn entry(ns: &str, id: &str, users: &[&str], group: bool) -> Entry {
        let ns = Namespace::parse(ns, 256).expect("ns"); // ok: test
        let id = ChatId::parse(id, 256).expect("id"); // ok: test
        Entry {
            names: ChatNames::new(&ns, &id, &members(users)),
            group,
            durable: true,
            unavailable: false,
            counted: false,
            bare: None,
        }
    }

    #[test]
    fn finds_chats_by_id_and_the_lowest_by_member_set() {
        let mut dir = Directory::default();
        dir.insert(5, entry("micro", "b", &["x", "y"], false));
        dir.insert(3, entry("micro", "a", &["x", "y"], false));
        dir.insert(4, entry("other", "a", &["x", "y"], false));
        dir.insert(2, entry("micro", "g", &["x", "y"], true));
        assert_eq!((dir.find("micro", "a"), dir.find("other", "a"), dir.find("micro", "c")), (Some(3), Some(4), None));
        assert_eq!(dir.find("micro", "g"), Some(2));
        let xy = members(&["y", "x"]);
        assert_eq!(dir.find_by_members("micro", &xy), Some(3), "the lowest, never a group");
        assert_eq!(dir.find_by_members("other", &xy), Some(4));
        assert_eq!(dir.find_by_members("micro", &members(&["x"])), None);

        dir.set_members(3, &members(&["x"]));
        assert_eq!(dir.find_by_members("micro", &xy), Some(5));
        assert_eq!(dir.find_by_members("micro", &members(&["x"])), Some(3));
        assert_eq!(dir.find("micro", "a"), Some(3), "still found by id");
        dir.set_members(2, &members(&["x"]));
        assert_eq!(dir.find_by_members("micro", &members(&["x"])), Some(3), "a group is never indexed");

        assert!(dir.remove(5).is_some());
        assert_eq!((dir.find("micro", "b"), dir.find_by_members("micro", &xy)), (None, None));
        assert!(dir.remove(5).is_none());
        assert_eq!(dir.len(), 3);
    }

    #[test]
    fn survives_growth_and_shrinking() {
        let mut dir = Directory::with_capacity(4);
        for no in 0..2000u64 {
            dir.insert(no, entry("micro", &format!("chat-{no}"), &[&format!("u{}", no % 700)], false));
        }
        for no in (0..2000u64).step_by(2) {
            dir.remove(no);
        }
        dir.shrink_to_fit();
        for no in 0..2000u64 {
            let found = dir.find("micro", &format!("chat-{no}"));
            assert_eq!(found, (no % 2 == 1).then_some(no));
        }
        // u1 is the member of chats 1, 701, 1401: the lowest left wins.
        assert_eq!(dir.find_by_members("micro", &members(&["u1"])), Some(1));
    }
}
