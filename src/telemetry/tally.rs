//! What the operator page (`/admin`) lists per namespace: its chats and their messages, kept as
//! counters as things happen, so an answer costs the namespaces it shows, never the chats.
//!
//! The registry owns the counters and hands each chat actor its namespace's. Chats are counted
//! exactly by the registry as its directory gains and loses them. Messages are counted by the
//! chats themselves: a chat's stored messages join its namespace's count the first time it is
//! loaded after a start (an idle chat's are on disk only, and reading a
//! million chats' indexes to count them is what this avoids), and each durable send adds one.
//! So `messages` covers the `counted` chats of `chats`; the page says so.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// One namespace's counters, shared by the registry and its live chats.
#[derive(Default)]
pub struct NsTally {
    chats: AtomicU64,
    messages: AtomicU64,
    counted: AtomicU64,
}

impl NsTally {
    /// A chat's stored messages, counted once per start (see the module comment).
    pub fn counted(&self, messages: u64) {
        self.counted.fetch_add(1, Ordering::Relaxed);
        self.messages.fetch_add(messages, Ordering::Relaxed);
    }

    /// One more durable message.
    pub fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A counted chat of `messages` was deleted.
    pub fn uncounted(&self, messages: u64) {
        let less = |by: u64| move |n: u64| Some(n.saturating_sub(by));
        let _ = self.counted.fetch_update(Ordering::Relaxed, Ordering::Relaxed, less(1));
        let _ = self.messages.fetch_update(Ordering::Relaxed, Ordering::Relaxed, less(messages));
    }
}

/// Every namespace's counters, by name.
#[derive(Default)]
pub struct Tally {
    namespaces: BTreeMap<String, Arc<NsTally>>,
}

/// One row of the answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NsCounts {
    pub namespace: String,
    pub chats: u64,
    pub messages: u64,
    /// The chats whose stored messages `messages` includes.
    pub counted_chats: u64,
}

impl Tally {
    /// The counters of `ns`, made on first use.
    pub fn of(&mut self, ns: &str) -> Arc<NsTally> {
        if let Some(found) = self.namespaces.get(ns) {
            return found.clone();
        }
        self.namespaces.entry(ns.to_owned()).or_default().clone()
    }

    pub fn chat_added(&mut self, ns: &str) {
        self.of(ns).chats.fetch_add(1, Ordering::Relaxed);
    }

    pub fn chat_removed(&mut self, ns: &str) {
        if let Some(found) = self.namespaces.get(ns) {
            let _ = found.chats.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
        }
    }

    /// The first `limit` namespaces by name (from `after`, exclusive) and how many there are.
    pub fn list(&self, after: Option<&str>, limit: usize) -> (Vec<NsCounts>, usize) {
        let from = match after {
            Some(after) => {
                self.namespaces.range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => self.namespaces.range::<str, _>(..),
        };
        let rows = from
            .take(limit)
            .map(|(name, t)| NsCounts {
                namespace: name.clone(),
                chats: t.chats.load(Ordering::Relaxed),
                messages: t.messages.load(Ordering::Relaxed),
                counted_chats: t.counted.load(Ordering::Relaxed),
            })
            .collect();
        (rows, self.namespaces.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_chats_and_the_messages_of_counted_chats() {
        let mut tally = Tally::default();
        for ns in ["b", "a", "b", "c"] {
            tally.chat_added(ns);
        }
        let b = tally.of("b");
        b.counted(5);
        b.message();
        tally.chat_removed("b");
        b.uncounted(2);
        tally.chat_removed("nowhere");
        let (rows, total) = tally.list(None, 2);
        assert_eq!(total, 3);
        assert_eq!(rows.iter().map(|r| r.namespace.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((rows[1].chats, rows[1].messages, rows[1].counted_chats), (1, 4, 0));
        let (rows, _) = tally.list(Some("b"), 10);
        assert_eq!(rows.iter().map(|r| r.namespace.as_str()).collect::<Vec<_>>(), ["c"]);
    }
}
