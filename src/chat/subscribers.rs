//! Streams: one broadcast channel per chat carries every durable message, encoded once, to all
//! of its subscribers, and the chat's reasons to end subscriptions (users removed, chat deleted).
//! The channel holds the last `STREAM_BUFFER` events: a subscriber that falls further behind
//! finds out it lagged and is closed as too slow, so a slow reader can neither slow the chat down
//! nor grow memory; it resumes with `since`.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytestring::ByteString;
use tokio::sync::broadcast;

use super::{blocking, ChatActor};
use crate::error::Error;
use crate::model::{ChatMeta, Message, MessageView, UserId};

/// How many events a chat's stream holds for subscribers that are behind.
const STREAM_BUFFER: usize = 1024;

/// What a chat's stream carries.
#[derive(Debug, Clone)]
pub enum Event {
    /// A durable message: its seq and its JSON, shared by every subscriber.
    Message { seq: u64, json: ByteString },
    /// These users left the chat: their streams end.
    Removed(Arc<[UserId]>),
    /// The chat was deleted: every stream ends.
    Deleted,
}

impl ChatActor {
    /// Hands an event to every subscriber; with none left, the channel goes.
    fn publish(&mut self, event: Event) {
        match &self.stream {
            Some(stream) if stream.receiver_count() > 0 => drop(stream.send(event)),
            _ => self.stream = None,
        }
    }

    /// Streams a durable message (its JSON is made only if someone listens).
    pub(super) fn broadcast(&mut self, msg: &Message) {
        if self.has_subscribers() {
            let json = serde_json::to_string(&MessageView::new(&self.init.meta.id, msg)).unwrap_or_default();
            self.publish(Event::Message { seq: msg.seq, json: ByteString::from(json) });
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
            self.check_member(reader)?;
        }
        let stream = self.stream.get_or_insert_with(|| broadcast::channel(STREAM_BUFFER).0);
        Ok((self.index.len() as u64, stream.subscribe()))
    }
}

/// New metadata from the registry (members, invites): takes effect at once; the streams of
/// users it removes close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetMeta(pub ChatMeta);

impl Handler<SetMeta> for ChatActor {
    type Result = ();

    fn handle(&mut self, SetMeta(meta): SetMeta, _: &mut Self::Context) {
        let old = std::mem::replace(&mut self.init.meta, meta);
        let now = &self.init.meta.user_ids;
        // Only the users this change removed lose their streams; observers who never were
        // members (an API key's stream, or anyone under open membership) keep theirs.
        let removed: Vec<UserId> = old.user_ids.as_slice().iter().filter(|u| !now.contains(u)).cloned().collect();
        if !removed.is_empty() {
            self.publish(Event::Removed(removed.into()));
        }
    }
}

/// The chat is deleted: close every stream, erase every message from the log, drop the snapshot.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Delete;

impl Handler<Delete> for ChatActor {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Delete, _: &mut Self::Context) -> Self::Result {
        self.deleted = true;
        self.publish(Event::Deleted);
        let locs = std::mem::take(&mut self.index);
        self.by_client.clear();
        let store = self.init.store.clone();
        let chat = self.init.no;
        let erase = async move { blocking(move || store.erase(&locs).and_then(|()| store.remove_index(chat))).await };
        Box::pin(actix::fut::wrap_future(erase).map(|res, _, ctx: &mut Context<Self>| {
            ctx.stop();
            res
        }))
    }
}
