//! A live chat's newest durable messages, kept in memory so the pages most often asked for (the
//! newest) and stream replays of a short gap cost no disk read and no new JSON encoding: each
//! entry is the same shared [`Delivered`] the chat streamed, with its JSON made at most once per
//! wire shape. Bounded by a message count and by the bytes of the messages' texts and subjects,
//! so memory follows configuration whatever the clients send; older messages are read from the
//! log as before.

use std::collections::VecDeque;
use std::sync::Arc;

use super::Delivered;

/// How much a chat keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct TailLimits {
    /// At most this many messages (0: none, every page is read from the log).
    pub messages: usize,
    /// At most this many bytes of text and subject in all.
    pub bytes: usize,
}

pub struct Tail {
    limits: TailLimits,
    /// Consecutive seqs, oldest first.
    items: VecDeque<Arc<Delivered>>,
    bytes: usize,
}

/// What a message costs the tail's byte bound (its JSON encodings are proportional to it).
fn weight(d: &Delivered) -> usize {
    d.msg.text.len() + d.msg.subject.len()
}

impl Tail {
    pub fn new(limits: TailLimits) -> Tail {
        Tail { limits, items: VecDeque::new(), bytes: 0 }
    }

    /// Adds the chat's newest durable message, evicting the oldest beyond the limits. A message
    /// that does not follow the newest one (it cannot happen: the log completes in order) resets
    /// the tail rather than leave a gap in it.
    pub fn push(&mut self, delivered: &Arc<Delivered>) {
        if self.items.back().is_some_and(|last| last.msg.seq + 1 != delivered.msg.seq) {
            self.clear();
        }
        self.bytes += weight(delivered);
        self.items.push_back(delivered.clone());
        while self.items.len() > self.limits.messages || (self.bytes > self.limits.bytes && !self.items.is_empty()) {
            if let Some(old) = self.items.pop_front() {
                self.bytes -= weight(&old);
            }
        }
    }

    /// Message `seq`, if the tail holds it.
    pub fn get(&self, seq: u64) -> Option<&Arc<Delivered>> {
        let first = self.items.front()?.msg.seq;
        self.items.get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientId, Message, MessageId, UserId};

    fn delivered(seq: u64, text: &str) -> Arc<Delivered> {
        let id = MessageId::random();
        Delivered::new(Message {
            seq,
            client_id: ClientId::from(id.clone()),
            id,
            user_id: UserId::parse("u", 64).expect("valid id"), // ok: test
            subject: String::new(),
            text: text.to_owned(),
            sent_at: 0,
        })
    }

    fn held(tail: &Tail, upto: u64) -> Vec<u64> {
        (0..=upto).filter(|&seq| tail.get(seq).is_some()).collect()
    }

    #[test]
    fn keeps_the_newest_within_the_count() {
        let mut tail = Tail::new(TailLimits { messages: 3, bytes: 1 << 20 });
        for seq in 1..=5 {
            tail.push(&delivered(seq, "hi"));
        }
        assert_eq!(held(&tail, 9), vec![3, 4, 5]);
        assert_eq!(tail.get(4).map(|d| d.msg.seq), Some(4));
    }

    #[test]
    fn keeps_the_newest_within_the_bytes() {
        let mut tail = Tail::new(TailLimits { messages: 100, bytes: 10 });
        tail.push(&delivered(1, "aaaa"));
        tail.push(&delivered(2, "bbbb"));
        tail.push(&delivered(3, "cccc"));
        assert_eq!(held(&tail, 9), vec![2, 3]);
        // One message over the bound on its own is not kept either.
        tail.push(&delivered(4, "a text longer than ten bytes"));
        assert_eq!(held(&tail, 9), Vec::<u64>::new());
        tail.push(&delivered(5, "e"));
        assert_eq!(held(&tail, 9), vec![5]);
    }

    #[test]
    fn a_gap_resets_it() {
        let mut tail = Tail::new(TailLimits { messages: 10, bytes: 1 << 20 });
        tail.push(&delivered(1, "a"));
        tail.push(&delivered(2, "b"));
        tail.push(&delivered(4, "d"));
        assert_eq!(held(&tail, 9), vec![4]);
    }

    #[test]
    fn zero_keeps_nothing() {
        let mut tail = Tail::new(TailLimits { messages: 0, bytes: 1 << 20 });
        tail.push(&delivered(1, "a"));
        assert_eq!(held(&tail, 9), Vec::<u64>::new());
    }
}
