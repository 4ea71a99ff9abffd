//! The read path: the chat picks which seqs a page holds; those in its in-memory tail
//! (`tail.rs`) come as they are, and the HTTP task reads the older ones from the log itself, off
//! every actor's thread.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::{blocking, ChatActor, Delivered};
use crate::error::Error;
use crate::model::UserId;
use crate::store::record::{ChatNo, Loc};
use crate::store::{Store, StoreError};

/// A page's messages, or where they lie; [`Fetch::messages`] completes it.
pub struct Fetch {
    store: Arc<Store>,
    chat: ChatNo,
    items: Vec<Item>,
}

enum Item {
    /// In the chat's tail, JSON and all.
    Cached(Arc<Delivered>),
    /// In the log only.
    Stored(Loc),
}

impl Fetch {
    /// The page's messages, in order. Those only in the log are read back on the blocking pool;
    /// a message erased meanwhile (its chat was deleted) makes the page a 404.
    pub async fn messages(self) -> Result<Vec<Arc<Delivered>>, Error> {
        let Fetch { store, chat, items } = self;
        let in_memory = items.iter().all(|item| matches!(item, Item::Cached(_)));
        let complete = move || -> Result<Vec<Arc<Delivered>>, StoreError> {
            items
                .into_iter()
                .map(|item| match item {
                    Item::Cached(d) => Ok(d),
                    Item::Stored(loc) => store.read_message(chat, loc).map(Delivered::new),
                })
                .collect()
        };
        if in_memory {
            // Nothing to read: no trip to the blocking pool.
            return complete().map_err(Error::from);
        }
        blocking(complete).await
    }
}

/// Which messages a listing wants.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The chat API's History: `limit` messages, oldest first, bounded by seqs (exclusive).
    History { limit: u64, before: Option<u64>, after: Option<u64> },
    /// The chats API's ListMessages: skip `offset` in the chosen order, then take `limit`.
    List { limit: u64, offset: u64, newest_first: bool },
}

impl Page {
    /// The seqs this page holds, in the order they are listed, for a chat of `len` messages.
    pub fn seqs(self, len: u64) -> Box<dyn Iterator<Item = u64>> {
        match self {
            Page::History { limit, before, after } => {
                let hi = before.map_or(len, |b| b.saturating_sub(1).min(len));
                let lo = match after {
                    Some(a) => a.saturating_add(1),
                    None => hi.saturating_sub(limit).saturating_add(1),
                };
                let hi = hi.min(lo.saturating_add(limit).saturating_sub(1));
                Box::new(lo.max(1)..=hi)
            }
            Page::List { limit, offset, newest_first: false } => {
                Box::new(offset.saturating_add(1)..=len.min(offset.saturating_add(limit)))
            }
            Page::List { limit, offset, newest_first: true } => {
                let top = len.saturating_sub(offset);
                Box::new((top.saturating_sub(limit).saturating_add(1)..=top).rev())
            }
        }
    }
}

/// Read a page of messages. A `reader` (a user token's user) must be a member.
#[derive(Message, Clone)]
#[rtype(result = "Result<Fetch, Error>")]
pub struct Read {
    pub page: Page,
    pub reader: Option<UserId>,
}

impl Handler<Read> for ChatActor {
    type Result = Result<Fetch, Error>;

    fn handle(&mut self, read: Read, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        if let Some(reader) = &read.reader {
            self.core.check_member(reader)?;
        }
        let items = read
            .page
            .seqs(self.core.durable_len())
            .filter_map(|seq| match self.tail.get(seq) {
                Some(d) => Some(Item::Cached(d.clone())),
                None => self.core.loc(seq).map(Item::Stored),
            })
            .collect();
        Ok(Fetch { store: self.init.store.clone(), chat: self.init.no, items })
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    fn seqs(page: Page, len: u64) -> Vec<u64> {
        page.seqs(len).collect()
    }

    #[test]
    fn history_pages() {
        let h = |limit, before, after| Page::History { limit, before, after };
        assert_eq!(seqs(h(3, None, None), 10), vec![8, 9, 10]);
        assert_eq!(seqs(h(3, None, None), 2), vec![1, 2]);
        assert_eq!(seqs(h(3, Some(5), None), 10), vec![2, 3, 4]);
        assert_eq!(seqs(h(3, Some(0), None), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(3, Some(1), None), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(3, None, Some(0)), 10), vec![1, 2, 3]);
        assert_eq!(seqs(h(3, None, Some(9)), 10), vec![10]);
        assert_eq!(seqs(h(3, None, Some(10)), 10), Vec::<u64>::new());
        assert_eq!(seqs(h(50, Some(6), Some(2)), 10), vec![3, 4, 5]);
        assert_eq!(seqs(h(2, Some(9), Some(2)), 10), vec![3, 4]);
        assert_eq!(seqs(h(3, Some(100), None), 10), vec![8, 9, 10]);
    }

    #[test]
    fn list_pages() {
        let l = |limit, offset, newest_first| Page::List { limit, offset, newest_first };
        assert_eq!(seqs(l(5, 15, true), 50), vec![35, 34, 33, 32, 31]);
        assert_eq!(seqs(l(5, 15, false), 50), vec![16, 17, 18, 19, 20]);
        assert_eq!(seqs(l(5, 48, true), 50), vec![2, 1]);
        assert_eq!(seqs(l(5, 60, true), 50), Vec::<u64>::new());
        assert_eq!(seqs(l(5, 48, false), 50), vec![49, 50]);
    }
}
