//! Membership changes and deletion: the chat writes the record of the change and holds its
//! mailbox until it is durable, then applies it, tells the directory, and answers. Nothing the
//! chat answers in between can come from a state the log does not hold.
//!
//! Deletion: from the moment Delete is accepted every other request is 404 and nothing more is
//! written. The deletion record follows every message already written, so when it is durable
//! those are too; they are all erased in place, the snapshot goes, the directory forgets the
//! chat, and only then does Delete answer. No message acknowledged before that answer remains
//! on disk, and none is acknowledged after it.

use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{blocking, ready, Change, ChatActor, Event};
use crate::error::Error;
use crate::model::{ChatMeta, Members, UserId};
use crate::store::record::Record;
use crate::store::StoreError;

/// The chat's metadata as it stands. With `members`: only if the chat still has exactly those
/// members and is not a group (`None` otherwise: the directory's answer was overtaken).
#[derive(Message, Clone)]
#[rtype(result = "Result<Option<ChatMeta>, Error>")]
pub struct Describe {
    pub members: Option<Members>,
}

impl Handler<Describe> for ChatActor {
    type Result = Result<Option<ChatMeta>, Error>;

    fn handle(&mut self, describe: Describe, _: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Err(err);
        }
        let meta = self.core.meta();
        match describe.members {
            Some(members) if meta.group || meta.user_ids != members => Ok(None),
            _ => Ok(Some(meta.clone())),
        }
    }
}

/// Change the chat's membership. `by` is a user token's user: they act as themselves, must be a
/// member to invite, leave or kick, and their changes count against their send rate.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChatMeta, Error>")]
pub struct Update {
    pub change: Change,
    pub by: Option<UserId>,
}

impl Handler<Update> for ChatActor {
    type Result = ResponseActFuture<Self, Result<ChatMeta, Error>>;

    fn handle(&mut self, update: Update, ctx: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return Box::pin(actix::fut::ready(Err(err)));
        }
        let edits = match self.core.plan(&update.change, update.by.as_ref()) {
            Ok(edits) if edits.is_empty() => return Box::pin(actix::fut::ready(Ok(self.core.meta().clone()))),
            Ok(edits) => edits,
            Err(err) => return Box::pin(actix::fut::ready(Err(err))),
        };
        if let Some(by) = &update.by {
            if !self.init.limiter.allow(&self.init.ns, by) {
                return Box::pin(actix::fut::ready(Err(Error::RateLimited(format!("{by} is changing too fast")))));
            }
        }
        self.unsettle();
        let durable: Vec<_> = edits
            .iter()
            .map(|edit| self.init.store.append_durable(&Record::Member { chat: self.init.no, edit: edit.clone() }))
            .collect();
        let all_durable = async move {
            for record in durable {
                record.await?;
            }
            Ok::<_, StoreError>(())
        };
        let (tx, rx) = oneshot::channel();
        // `wait`: no other message is handled until the change is durable and applied.
        ctx.wait(actix::fut::wrap_future(all_durable).map(move |res, act: &mut Self, _| {
            let answer = match res {
                Ok(()) => {
                    let removed = act.core.apply(&edits);
                    act.tell_directory(act.members_notice());
                    act.settle();
                    if !removed.is_empty() {
                        act.publish(Event::Removed(removed.into()));
                    }
                    Ok(act.core.meta().clone())
                }
                Err(StoreError::DiskFull) => {
                    act.init.store.resume(act.init.no);
                    Err(Error::DiskFull)
                }
                Err(err) => {
                    let err = Error::from(err);
                    act.broken = Some(err.clone());
                    Err(err)
                }
            };
            let _ = tx.send(answer);
        }));
        Box::pin(actix::fut::wrap_future(async move {
            rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before answering".into())))
        }))
    }
}

/// Delete the chat for good. `by` is a user token's user, who must be a member.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChatMeta, Error>")]
pub struct Delete {
    pub by: Option<UserId>,
}

impl Handler<Delete> for ChatActor {
    type Result = ResponseFuture<Result<ChatMeta, Error>>;

    fn handle(&mut self, delete: Delete, ctx: &mut Self::Context) -> Self::Result {
        self.last_used = Instant::now();
        if let Some(err) = self.unservable() {
            return ready(Err(err));
        }
        if let Some(by) = &delete.by {
            if !self.core.members().contains(by) {
                return ready(Err(Error::not_member(by)));
            }
        }
        self.deleted = true;
        self.unsettle();
        self.publish(Event::Deleted);
        let (tx, rx) = oneshot::channel();
        let me = ctx.address();
        self.init.store.append(
            &Record::ChatDeleted { chat: self.init.no },
            Box::new(move |result| me.do_send(Erase { result: result.map(drop), reply: tx })),
        );
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped before it was deleted".into())))
        })
    }
}

/// From the log writer: the deletion record is durable (after every message before it).
#[derive(Message)]
#[rtype(result = "()")]
struct Erase {
    result: Result<(), StoreError>,
    reply: oneshot::Sender<Result<ChatMeta, Error>>,
}

impl Handler<Erase> for ChatActor {
    type Result = ();

    fn handle(&mut self, erase: Erase, ctx: &mut Self::Context) {
        if let Err(err) = erase.result {
            if err == StoreError::DiskFull {
                // Not deleted after all: the chat serves on, and Delete may be tried again.
                self.deleted = false;
                self.init.store.resume(self.init.no);
            } else {
                self.broken = Some(Error::from(err.clone()));
            }
            let _ = erase.reply.send(Err(Error::from(err)));
            return;
        }
        if self.core.has_pending() {
            tracing::error!(chat = self.init.no, "messages still in flight after the deletion record");
        }
        let locs = self.core.all_locs().to_vec();
        let store = self.init.store.clone();
        let chat = self.init.no;
        let work = async move { blocking(move || store.delete_chat(chat, &locs)).await };
        let reply = erase.reply;
        ctx.wait(actix::fut::wrap_future(work).map(move |res, act: &mut Self, ctx: &mut Context<Self>| {
            match res {
                Ok(()) => {
                    act.init.tally.uncounted(act.core.durable_len());
                    act.tell_directory(act.gone());
                    let _ = reply.send(Ok(act.core.meta().clone()));
                    ctx.stop();
                }
                Err(err) => {
                    // The deletion is durable: a restart finishes the erasure.
                    tracing::error!(chat, error = %err, "could not erase a deleted chat; a restart will finish it");
                    act.broken = Some(err.clone());
                    let _ = reply.send(Err(err));
                }
            }
        }));
    }
}
