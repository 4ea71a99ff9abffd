//! Streams: one broadcast channel per chat carries every durable message to all of its
//! subscribers, and the chat's reasons to end subscriptions (users removed, chat deleted).
//! The channel holds the last `STREAM_BUFFER` events: a subscriber that falls further behind
//! finds out it lagged and is closed as too slow, so a slow reader can neither slow the chat down
//! nor grow memory; it resumes with `since`.
//!
//! A message travels as one shared [`Delivered`]: the first subscriber to need its JSON encodes
//! it (the wire shape belongs to `http/`), and every other subscriber reuses the bytes.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::prelude::*;
use bytestring::ByteString;
use tokio::sync::broadcast;

use super::ChatActor;
use crate::error::Error;
use crate::model::{Message, UserId};

/// How many events a chat's stream holds for subscribers that are behind.
const STREAM_BUFFER: usize = 1024;

/// How many wire shapes a delivered message may be encoded in (the HTTP layer's to name).
pub const SHAPES: usize = 4;

/// A durable message on its way to subscribers and readers, with its JSON in each wire shape
/// once someone has made it: a message is encoded once per shape, however many streams and
/// history pages carry it.
#[derive(Debug)]
pub struct Delivered {
    pub msg: Message,
    pub json: [OnceLock<ByteString>; SHAPES],
}

impl Delivered {
    pub fn new(msg: Message) -> Arc<Delivered> {
        Arc::new(Delivered { msg, json: Default::default() })
    }
}

/// What a chat's stream carries.
#[derive(Debug, Clone)]
pub enum Event {
    Message(Arc<Delivered>),
    /// These users left the chat: their streams end.
    Removed(Arc<[UserId]>),
    /// The chat was deleted: every stream ends.
    Deleted,
}

impl ChatActor {
    /// Hands an event to every subscriber; with none left, the channel goes.
    pub(super) fn publish(&mut self, event: Event) {
        match &self.stream {
            Some(stream) if stream.receiver_count() > 0 => drop(stream.send(event)),
            _ => self.stream = None,
        }
    }

    /// Streams a durable message, if anyone listens.
    pub(super) fn broadcast(&mut self, delivered: &Arc<Delivered>) {
        if self.has_subscribers() {
            self.publish(Event::Message(delivered.clone()));
        }
    }

    /// Whether anyone is subscribed (a chat with subscribers does not go idle).
    pub(super) fn has_subscribers(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.receiver_count() > 0)
    }
}

/// Subscribe to the chat's stream. Answers the last durable seq at this moment and a receiver:
/// every later message arrives on it; earlier ones are for the subscriber to read (its replay).
#[derive(Message, Clone)]
#[rtype(result = "Result<(u64, broadcast::Receiver<Event>), Error>")]
pub struct Subscribe {
    /// A user token's user, who must be a member to read.
    pub reader: Option<UserId>,
}

impl Handler<Subscribe> for ChatActor {
    type Result = Result<(u64, broadcast::Receiver<Event>), Error>;

    fn handle(&mut self, sub: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        if let Some(reader) = &sub.reader {
            self.core.check_member(reader)?;
        }
        let stream = self.stream.get_or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
        Ok((self.core.durable_len(), stream.subscribe()))
    }
}
