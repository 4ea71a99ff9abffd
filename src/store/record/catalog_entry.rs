//! A [`CatalogEntry`] on disk: the fields `chat`, `ns`, `id`, `group`, `members` in that order
//! (its `bare` comes after all the entries: see `catalog.rs`), exactly as the derived impls of the plain struct it once was wrote them (so old catalogs
//! read, and new ones read in old versions). Decoding pushes each string straight into the
//! entry's packed names instead of allocating it on its own.

use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CatalogEntry;
use crate::names::{Builder, ChatNames};

const FIELDS: &[&str] = &["chat", "ns", "id", "group", "members"];

impl Serialize for CatalogEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("CatalogEntry", FIELDS.len())?;
        out.serialize_field("chat", &self.chat)?;
        out.serialize_field("ns", self.names.ns())?;
        out.serialize_field("id", self.names.id())?;
        out.serialize_field("group", &self.group)?;
        out.serialize_field("members", &MemberList(&self.names))?;
        out.end()
    }
}

struct MemberList<'a>(&'a ChatNames);

impl Serialize for MemberList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.members())
    }
}

impl<'de> Deserialize<'de> for CatalogEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CatalogEntry, D::Error> {
        d.deserialize_struct("CatalogEntry", FIELDS, EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = CatalogEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a catalog entry")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CatalogEntry, A::Error> {
        let missing = |at: usize| de::Error::invalid_length(at, &"5 fields");
        let chat = seq.next_element()?.ok_or_else(|| missing(0))?;
        let mut names = Builder::with_capacity(96);
        seq.next_element_seed(Push(&mut names))?.ok_or_else(|| missing(1))?;
        seq.next_element_seed(Push(&mut names))?.ok_or_else(|| missing(2))?;
        let group = seq.next_element()?.ok_or_else(|| missing(3))?;
        let from = names.len();
        let count = seq.next_element_seed(PushAll(&mut names))?.ok_or_else(|| missing(4))?;
        names.insert_len(from, count);
        Ok(CatalogEntry { chat, group, names: names.finish(), bare: None })
    }
}

/// Decodes one string onto the end of the packed names.
struct Push<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for Push<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Push<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push_str(s);
        Ok(())
    }
}

/// Decodes a sequence of strings onto the end of the packed names; yields how many.
struct PushAll<'a>(&'a mut Builder);

impl<'de> DeserializeSeed<'de> for PushAll<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PushAll<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of user ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while seq.next_element_seed(Push(&mut *self.0))?.is_some() {
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatId, Members, Namespace, UserId};
    use crate::store::codec;

    /// The struct `CatalogEntry` was before its names were packed: the layout on disk.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        chat: u64,
        ns: Namespace,
        id: ChatId,
        group: bool,
        members: Members,
    }

    fn plain(users: &[&str]) -> Plain {
        Plain {
            chat: 300,
            ns: Namespace::parse("micro", 256).expect("ns"), // ok: test
            id: ChatId::parse("5f0c7a1e-2b7d-4c1a-9a7e-0d7b0a7d9c11", 256).expect("id"), // ok: test
            group: true,
            members: Members::new(users.iter().map(|u| UserId::parse(u, 1 << 20).expect("user")).collect()), // ok: test
        }
    }

    #[test]
    fn encodes_and_decodes_as_the_plain_struct_did() {
        let long = "u".repeat(200);
        for users in [vec![], vec!["alice", "bob"], vec!["carol", long.as_str(), "alice"]] {
            let old = plain(&users);
            let entry = CatalogEntry::new(old.chat, &old.ns, &old.id, old.group, &old.members);
            let bytes = codec::frame(&entry, 0).expect("encode"); // ok: test
            assert_eq!(bytes, codec::frame(&old, 0).expect("encode"), "the same bytes as before"); // ok: test
            let payload = &bytes[codec::HEADER_LEN..];
            let back: CatalogEntry = codec::decode(payload).expect("decode"); // ok: test
            assert_eq!((back.chat, back.group, back.names), (entry.chat, entry.group, entry.names));
            assert_eq!(codec::decode::<Plain>(payload).expect("decode"), old); // ok: test
        }
    }

    #[test]
    fn a_truncated_entry_is_an_error_not_a_panic() {
        let old = plain(&["alice", "bob"]);
        let bytes = codec::frame(&old, 0).expect("encode"); // ok: test
        let payload = &bytes[codec::HEADER_LEN..];
        for cut in 0..payload.len() {
            assert!(codec::decode::<CatalogEntry>(&payload[..cut]).is_err(), "cut at {cut}");
        }
    }
}
