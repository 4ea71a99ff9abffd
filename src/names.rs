//! [`ChatNames`]: what finds a chat — its namespace, its id and its members — packed into one
//! shared allocation, for the directory, which holds one per chat, idle or not (a million chats
//! are a million of these).
//!
//! As separate `String`s and a `Vec` they cost a heap allocation each (five for a chat of two)
//! plus their headers; packed they cost one. Shared (an `Arc`), so a checkpoint's copy of the
//! whole directory allocates nothing per chat.
//!
//! Layout: `ns`, `id`, then the member count and each member, every string preceded by its
//! length; lengths and the count are LEB128 varints (one byte below 128). Members keep the
//! sorted order of [`Members`].

use std::sync::Arc;

use crate::model::{ChatId, Members, Namespace, UserId};

#[derive(Clone, PartialEq, Eq)]
pub struct ChatNames(Arc<[u8]>);

impl ChatNames {
    pub fn new(ns: &Namespace, id: &ChatId, members: &Members) -> ChatNames {
        let users = members.as_slice().iter().map(UserId::as_str);
        ChatNames::pack(ns.as_str(), id.as_str(), users)
    }

    /// From strings that are valid ids already; `members` sorted and without duplicates.
    pub fn pack<'a>(ns: &str, id: &str, members: impl ExactSizeIterator<Item = &'a str> + Clone) -> ChatNames {
        let mut out =
            Builder::with_capacity(ns.len() + id.len() + members.clone().map(|m| m.len() + 1).sum::<usize>() + 8);
        out.push_str(ns);
        out.push_str(id);
        out.push_len(members.len());
        for member in members {
            out.push_str(member);
        }
        out.finish()
    }

    pub fn ns(&self) -> &str {
        self.reader().string()
    }

    pub fn id(&self) -> &str {
        let mut r = self.reader();
        r.string();
        r.string()
    }

    /// The members, in sorted order.
    pub fn members(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        let mut r = self.reader();
        r.string();
        r.string();
        let count = r.len();
        Strings { r, left: count }
    }

    pub fn is(&self, ns: &str, id: &str) -> bool {
        let mut r = self.reader();
        r.string() == ns && r.string() == id
    }

    pub fn has_members(&self, members: &Members) -> bool {
        self.members().eq(members.as_slice().iter().map(UserId::as_str))
    }

    pub fn has_member(&self, user: &str) -> bool {
        self.members().any(|m| m == user)
    }

    pub fn namespace(&self) -> Namespace {
        Namespace::trusted(self.ns())
    }

    pub fn chat_id(&self) -> ChatId {
        ChatId::trusted(self.id())
    }

    pub fn member_set(&self) -> Members {
        Members::new(self.members().map(UserId::trusted).collect())
    }

    /// Its packed bytes, to be moved elsewhere and back with [`ChatNames::from_packed`].
    pub fn packed(&self) -> &[u8] {
        &self.0
    }

    /// Names from bytes that [`ChatNames::packed`] gave.
    pub fn from_packed(bytes: &[u8]) -> ChatNames {
        ChatNames(Arc::from(bytes))
    }

    /// The same chat with other members.
    pub fn with_members(&self, members: &Members) -> ChatNames {
        ChatNames::pack(self.ns(), self.id(), members.as_slice().iter().map(UserId::as_str))
    }

    fn reader(&self) -> Reader<'_> {
        Reader(&self.0)
    }
}

impl std::fmt::Debug for ChatNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<&str> = self.members().collect();
        f.debug_struct("ChatNames").field("ns", &self.ns()).field("id", &self.id()).field("members", &members).finish()
    }
}

/// Packs strings one after the other, for [`ChatNames`] (and for decoding straight into one).
pub struct Builder(Vec<u8>);

impl Builder {
    pub fn with_capacity(bytes: usize) -> Builder {
        Builder(Vec::with_capacity(bytes))
    }

    pub fn push_len(&mut self, mut n: usize) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    pub fn push_str(&mut self, s: &str) {
        self.push_len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Its bytes so far: a caller that pushes a count after its items moves them behind it.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Moves the bytes from `from` on to after a count of `n`, pushed at `from`.
    pub fn insert_len(&mut self, from: usize, n: usize) {
        let tail = self.0.split_off(from);
        self.push_len(n);
        self.0.extend_from_slice(&tail);
    }

    pub fn finish(self) -> ChatNames {
        ChatNames(Arc::from(self.0))
    }
}

/// Reads what a [`Builder`] wrote. Only ever given bytes it wrote, from `&str`s: a malformed
/// length (impossible) reads as the empty rest rather than a panic.
#[derive(Clone)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn len(&mut self) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        while let Some((&byte, rest)) = self.0.split_first() {
            self.0 = rest;
            n |= ((byte & 0x7f) as usize).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        n
    }

    fn string(&mut self) -> &'a str {
        let len = self.len().min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(s).unwrap_or_default()
    }
}

#[derive(Clone)]
struct Strings<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.left = self.left.checked_sub(1)?;
        Some(self.r.string())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Strings<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(users: &[&str]) -> Members {
        let user = |u: &&str| UserId::parse(u, 1 << 20).expect("a user id"); // ok: test
        Members::new(users.iter().map(user).collect())
        // ok: test
    }

    #[test]
    fn packs_and_reads_back_every_name() {
        let long = "x".repeat(300); // a length past one varint byte
        let set = members(&["bob", &long, "alice"]);
        let ns = Namespace::parse("micro", 256).expect("ns"); // ok: test
        let id = ChatId::parse("chat-1", 256).expect("id"); // ok: test
        let names = ChatNames::new(&ns, &id, &set);
        assert_eq!((names.ns(), names.id()), ("micro", "chat-1"));
        assert_eq!(names.members().collect::<Vec<_>>(), vec!["alice", "bob", long.as_str()]);
        assert_eq!(names.members().len(), 3);
        assert!(names.is("micro", "chat-1") && !names.is("micro", "chat-2") && !names.is("other", "chat-1"));
        assert!(names.has_members(&set) && !names.has_members(&members(&["alice", "bob"])));
        assert!(names.has_member("bob") && !names.has_member("carol"));
        assert_eq!((names.namespace(), names.chat_id(), names.member_set()), (ns, id, set));
        let fewer = names.with_members(&members(&["carol"]));
        assert_eq!((fewer.ns(), fewer.id()), ("micro", "chat-1"));
        assert_eq!(fewer.members().collect::<Vec<_>>(), vec!["carol"]);
        let none = names.with_members(&Members::default());
        assert_eq!(none.members().count(), 0);
    }

    #[test]
    fn a_count_inserted_before_its_items_reads_as_if_pushed_first() {
        let mut b = Builder::with_capacity(0);
        b.push_str("ns");
        let from = b.len();
        for i in 0..200 {
            b.push_str(&format!("u{i:03}"));
        }
        b.insert_len(from, 200);
        let mut r = Reader(&b.0);
        assert_eq!(r.string(), "ns");
        assert_eq!(r.len(), 200);
        assert_eq!(r.string(), "u000");
    }
}
