//! Group membership and deletion (the m3o chat v2 endpoints).
//!
//! The registry owns each chat's metadata. A change applies at once, here and in the chat's live
//! actor (so a kicked user's next send is refused and their streams close), is logged, and is
//! answered once its record is durable.

use actix::prelude::*;

use super::{ChatKey, Registry};
use crate::chat::{self, SetMeta};
use crate::error::Error;
use crate::model::{ChatId, ChatMeta, Namespace, UserId};
use crate::store::record::Record;

#[derive(Debug, Clone)]
pub enum Change {
    /// Lets a user join a private group.
    Invite(UserId),
    Join(UserId),
    Leave(UserId),
    /// Removes a member (and their invitation).
    Kick(UserId),
}

/// Change a chat's membership. `by` is a user token's user, who must be a member to invite or kick.
#[derive(Message)]
#[rtype(result = "Result<ChatMeta, Error>")]
pub struct Update {
    pub ns: Namespace,
    pub id: ChatId,
    pub change: Change,
    pub by: Option<UserId>,
}

fn not_member(user: &UserId) -> Error {
    Error::Forbidden(format!("{user} is not a member of this chat"))
}

impl Handler<Update> for Registry {
    type Result = ResponseFuture<Result<ChatMeta, Error>>;

    fn handle(&mut self, msg: Update, _: &mut Self::Context) -> Self::Result {
        let max_members = self.settings.limits.max_members;
        let key = (msg.ns, msg.id);
        let Some(entry) = self.chats.get_mut(&key) else {
            return Box::pin(async { Err(Error::chat_not_found()) });
        };
        let mut meta = entry.meta.clone();
        // A user token may change a chat only as a member; anyone may try to join.
        if let (Change::Invite(_) | Change::Kick(_) | Change::Leave(_), Some(by)) = (&msg.change, &msg.by) {
            if !meta.user_ids.contains(by) {
                let err = not_member(by);
                return Box::pin(async move { Err(err) });
            }
        }
        let changed = match msg.change {
            Change::Invite(user) => meta.invited.insert(user),
            Change::Join(user) if meta.user_ids.contains(&user) => false,
            // A chat made by New or CreateChat is its members' own: nobody joins it uninvited.
            Change::Join(user) if (meta.private || !meta.group) && !meta.invited.contains(&user) => {
                return Box::pin(async move {
                    Err(Error::Forbidden(format!("{user} needs an invitation to join this private group")))
                });
            }
            Change::Join(_) if meta.user_ids.len() >= max_members => {
                return Box::pin(
                    async move { Err(Error::BadRequest(format!("a chat has at most {max_members} members"))) },
                );
            }
            Change::Join(user) => meta.user_ids.insert(user),
            Change::Leave(user) => meta.user_ids.remove(&user),
            Change::Kick(user) => meta.invited.remove(&user) | meta.user_ids.remove(&user),
        };
        if !changed {
            return self.when_durable(&key);
        }
        entry.meta = meta.clone();
        if let Some(actor) = entry.actor.as_ref().filter(|a| a.connected()) {
            actor.do_send(SetMeta(meta.clone()));
        }
        let durable = self.store.append_durable(&Record::ChatUpdated { chat: entry.no, meta: meta.clone() });
        Box::pin(async move { durable.await.map(|_| meta) })
    }
}

/// The chats `user` is a member of, oldest first.
#[derive(Message)]
#[rtype(result = "Vec<ChatMeta>")]
pub struct List {
    pub ns: Namespace,
    pub user: UserId,
}

impl Handler<List> for Registry {
    type Result = MessageResult<List>;

    fn handle(&mut self, msg: List, _: &mut Self::Context) -> Self::Result {
        let mut chats: Vec<ChatMeta> = self
            .chats
            .iter()
            .filter(|((ns, _), e)| *ns == msg.ns && e.durable && e.meta.user_ids.contains(&msg.user))
            .map(|(_, e)| e.meta.clone())
            .collect();
        chats.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        MessageResult(chats)
    }
}

/// Delete a chat for good: its streams close, its messages are erased from the log, its
/// snapshot goes. `by` is a user token's user, who must be a member.
#[derive(Message)]
#[rtype(result = "Result<ChatMeta, Error>")]
pub struct Delete {
    pub ns: Namespace,
    pub id: ChatId,
    pub by: Option<UserId>,
}

impl Handler<Delete> for Registry {
    type Result = ResponseFuture<Result<ChatMeta, Error>>;

    fn handle(&mut self, msg: Delete, _: &mut Self::Context) -> Self::Result {
        let key: ChatKey = (msg.ns, msg.id);
        match (self.chats.get(&key), &msg.by) {
            (None, _) => return Box::pin(async { Err(Error::chat_not_found()) }),
            (Some(entry), Some(by)) if !entry.meta.user_ids.contains(by) => {
                let err = not_member(by);
                return Box::pin(async move { Err(err) });
            }
            _ => {}
        }
        let Some(entry) = self.remove(&key) else {
            return Box::pin(async { Err(Error::chat_not_found()) });
        };
        let durable = self.store.append_durable(&Record::ChatDeleted { chat: entry.no });
        let store = self.store.clone();
        let actor = entry.actor.filter(|a| a.connected());
        let no = entry.no;
        Box::pin(async move {
            // Erase only once the deletion is durable: a crash in between finishes it on restart.
            durable.await?;
            let live = match &actor {
                Some(actor) => actor.send(chat::Delete).await.ok(),
                None => None,
            };
            match live {
                Some(res) => res?,
                None => match tokio::task::spawn_blocking(move || store.erase_chat(no)).await {
                    Ok(res) => res?,
                    Err(e) => return Err(Error::Internal(format!("erase task failed: {e}"))),
                },
            }
            Ok(entry.meta)
        })
    }
}
