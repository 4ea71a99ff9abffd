//! Streams: each subscriber gets every durable message through a bounded queue, and is told
//! why when the chat ends its subscription (too slow, kicked, chat deleted).

use std::time::Instant;

use actix::prelude::*;
use bytestring::ByteString;
use tokio::sync::mpsc;

use super::{blocking, ChatActor};
use crate::error::Error;
use crate::model::{ChatMeta, Message, MessageView, UserId};

/// One message of a chat's stream: its seq and its JSON, encoded once and shared.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub json: ByteString,
}

/// Why the chat ended a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Its queue was full: the reader is too slow. It may resume with `since`.
    SlowReader,
    /// Its user was removed from the chat.
    Kicked,
    /// The chat was deleted.
    Deleted,
}

pub(super) struct Subscriber {
    pub(super) events: mpsc::Sender<Event>,
    close: mpsc::Sender<Close>,
    user: Option<UserId>,
}

impl ChatActor {
    /// Hands a durable message to every subscriber; drops those that cannot keep up.
    pub(super) fn broadcast(&mut self, msg: &Message) {
        if self.subscribers.is_empty() {
            return;
        }
        let json = serde_json::to_string(&MessageView::new(&self.init.meta.id, msg)).unwrap_or_default();
        let event = Event { seq: msg.seq, json: ByteString::from(json) };
        self.subscribers.retain(|sub| match sub.events.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = sub.close.try_send(Close::SlowReader);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Ends the subscriptions `which` selects, telling each why.
    pub(super) fn close_subscribers(&mut self, why: Close, which: impl Fn(&Subscriber) -> bool) {
        self.subscribers.retain(|sub| {
            if which(sub) {
                let _ = sub.close.try_send(why);
                false
            } else {
                true
            }
        });
    }
}

/// Subscribe to the chat's messages. Answers the last durable seq at this moment: every later
/// message arrives on `events`; earlier ones are for the subscriber to read (its replay).
#[derive(Message, Clone)]
#[rtype(result = "Result<u64, Error>")]
pub struct Subscribe {
    pub events: mpsc::Sender<Event>,
    pub close: mpsc::Sender<Close>,
    /// The stream's user: its stream closes if the user leaves the chat.
    pub user: Option<UserId>,
    /// A user token's user, who must be a member to read.
    pub reader: Option<UserId>,
}

impl Handler<Subscribe> for ChatActor {
    type Result = Result<u64, Error>;

    fn handle(&mut self, sub: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        if let Some(reader) = &sub.reader {
            self.check_member(reader)?;
        }
        self.subscribers.push(Subscriber { events: sub.events, close: sub.close, user: sub.user });
        Ok(self.index.len() as u64)
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
            self.close_subscribers(Close::Kicked, |sub| sub.user.as_ref().is_some_and(|u| removed.contains(u)));
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
        self.close_subscribers(Close::Deleted, |_| true);
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
