//! A [`Catalog`] on disk: `pos`, `next_chat`, `chats`, `unavailable` as the derived impls of the
//! plain struct it was wrote them, then one `Option<i64>` per entry, in the entries' order: each
//! entry's `bare` (see [`CatalogEntry::bare`]).
//!
//! Why after, not inside each entry: a catalog from before bare chats is the same bytes without
//! the last field, and is read as one whose chats all have files ([`Catalog::decode`]); a version
//! from before reads a new catalog too (it leaves the last field unread), and rebuilds each bare
//! chat from the log, the one copy of every record, on its first load.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Catalog, CatalogEntry, ChatNo, Pos};
use crate::store::{codec, StoreError};

const FIELDS: &[&str] = &["pos", "next_chat", "chats", "unavailable", "bare"];

impl Serialize for Catalog {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Catalog", FIELDS.len())?;
        out.serialize_field("pos", &self.pos)?;
        out.serialize_field("next_chat", &self.next_chat)?;
        out.serialize_field("chats", &self.chats)?;
        out.serialize_field("unavailable", &self.unavailable)?;
        out.serialize_field("bare", &BareList(&self.chats))?;
        out.end()
    }
}

struct BareList<'a>(&'a [CatalogEntry]);

impl Serialize for BareList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|entry| entry.bare))
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Catalog, D::Error> {
        d.deserialize_struct("Catalog", FIELDS, CatalogVisitor)
    }
}

struct CatalogVisitor;

impl<'de> Visitor<'de> for CatalogVisitor {
    type Value = Catalog;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a catalog")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Catalog, A::Error> {
        let missing = |at: usize| de::Error::invalid_length(at, &"5 fields");
        let pos = seq.next_element()?.ok_or_else(|| missing(0))?;
        let next_chat = seq.next_element()?.ok_or_else(|| missing(1))?;
        let mut chats: Vec<CatalogEntry> = seq.next_element()?.ok_or_else(|| missing(2))?;
        let unavailable = seq.next_element()?.ok_or_else(|| missing(3))?;
        let bare: Vec<Option<i64>> = seq.next_element()?.ok_or_else(|| missing(4))?;
        if bare.len() != chats.len() {
            return Err(de::Error::invalid_length(bare.len(), &"one bare mark per chat"));
        }
        for (entry, bare) in chats.iter_mut().zip(bare) {
            entry.bare = bare;
        }
        Ok(Catalog { pos, next_chat, chats, unavailable })
    }
}

/// A catalog as versions before bare chats wrote it.
#[derive(Deserialize)]
struct Unbare {
    pos: Option<Pos>,
    next_chat: ChatNo,
    chats: Vec<CatalogEntry>,
    unavailable: Vec<ChatNo>,
}

impl Catalog {
    /// Decodes a catalog of this version or of one before bare chats (every chat with files).
    pub fn decode(payload: &[u8]) -> Result<Catalog, StoreError> {
        codec::decode::<Catalog>(payload).or_else(|err| match codec::decode::<Unbare>(payload) {
            Ok(Unbare { pos, next_chat, chats, unavailable }) => Ok(Catalog { pos, next_chat, chats, unavailable }),
            Err(_) => Err(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChatId, Members, Namespace, UserId};

    /// The plain struct catalogs were before bare chats: their layout on disk.
    #[derive(Serialize)]
    struct Old<'a> {
        pos: Option<Pos>,
        next_chat: ChatNo,
        chats: &'a [CatalogEntry],
        unavailable: Vec<ChatNo>,
    }

    fn entries() -> Vec<CatalogEntry> {
        let ns = Namespace::parse("micro", 256).expect("ns"); // ok: test
        (0..4u64)
            .map(|n| {
                let id = ChatId::parse(&format!("chat-{n}"), 256).expect("id"); // ok: test
                let users = Members::new(vec![UserId::parse(&format!("u{n}"), 256).expect("user")]); // ok: test
                CatalogEntry {
                    bare: (n % 2 == 0).then_some(1_700_000_000 + n as i64),
                    ..CatalogEntry::new(n, &ns, &id, false, &users)
                }
            })
            .collect()
    }

    fn same(a: &Catalog, b: &Catalog) -> bool {
        let key = |c: &Catalog| {
            let chats: Vec<_> = c.chats.iter().map(|e| (e.chat, e.group, e.names.clone(), e.bare)).collect();
            (c.pos, c.next_chat, chats, c.unavailable.clone())
        };
        key(a) == key(b)
    }

    #[test]
    fn a_catalog_round_trips_with_its_bare_chats() {
        let catalog =
            Catalog { pos: Some(Pos { segment: 3, offset: 9 }), next_chat: 7, chats: entries(), unavailable: vec![2] };
        let bytes = codec::frame(&catalog, 0).expect("encode"); // ok: test
        let back = Catalog::decode(&bytes[codec::HEADER_LEN..]).expect("decode"); // ok: test
        assert!(same(&back, &catalog), "{back:?}");
    }

    /// An old data dir's catalog reads, every chat in it with files; fails if the fallback goes.
    #[test]
    fn a_catalog_from_before_bare_chats_reads_with_no_bare_chat() {
        let chats: Vec<CatalogEntry> = entries().into_iter().map(|e| CatalogEntry { bare: None, ..e }).collect();
        let old = Old { pos: Some(Pos { segment: 1, offset: 5 }), next_chat: 4, chats: &chats, unavailable: vec![] };
        let bytes = codec::frame(&old, 0).expect("encode"); // ok: test
        let back = Catalog::decode(&bytes[codec::HEADER_LEN..]).expect("decode"); // ok: test
        let want = Catalog { pos: old.pos, next_chat: 4, chats: chats.clone(), unavailable: vec![] };
        assert!(same(&back, &want), "{back:?}");
        // And a version before reads a new catalog: the bare marks come last, left unread.
        let new = codec::frame(&Catalog { pos: old.pos, next_chat: 4, chats: entries(), unavailable: vec![] }, 0)
            .expect("encode"); // ok: test
        let read = codec::decode::<Unbare>(&new[codec::HEADER_LEN..]).expect("old reader"); // ok: test
        assert_eq!(read.chats.len(), 4);
    }
}
