//! What the operator's endpoints ask the directory (`/admin`, `/metrics`, the tests' live
//! count): answers from what the registry already keeps, bounded by the caller's limit.

use actix::prelude::*;

use super::Registry;
use crate::store::record::ChatNo;
use crate::telemetry::tally::NsCounts;

/// How many chat actors are running.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveCount;

impl Handler<LiveCount> for Registry {
    type Result = usize;

    fn handle(&mut self, _: LiveCount, _: &mut Self::Context) -> usize {
        self.live.values().filter(|l| l.actor.connected()).count()
    }
}

/// The namespaces by name, `limit` of them from `after` (exclusive), and how many there are.
#[derive(Message)]
#[rtype(result = "(Vec<NsCounts>, usize)")]
pub struct Namespaces {
    pub after: Option<String>,
    pub limit: usize,
}

impl Handler<Namespaces> for Registry {
    type Result = MessageResult<Namespaces>;

    fn handle(&mut self, msg: Namespaces, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.tally.list(msg.after.as_deref(), msg.limit))
    }
}

/// A chat held out of service because its stored data failed a check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldChat {
    /// Its number on disk (its files are `snap/chat-{chat:016x}.*`).
    pub chat: ChatNo,
    pub namespace: String,
    pub id: String,
}

/// The chats held out of service, the lowest-numbered `limit` of them, and how many there are.
#[derive(Message)]
#[rtype(result = "(Vec<HeldChat>, usize)")]
pub struct Held {
    pub limit: usize,
}

impl Handler<Held> for Registry {
    type Result = MessageResult<Held>;

    fn handle(&mut self, msg: Held, _: &mut Self::Context) -> Self::Result {
        let mut held = self.held.clone();
        held.extend(self.store.held());
        let chats = held
            .iter()
            .filter_map(|&chat| self.chats.get(chat).map(|e| (chat, e)))
            .take(msg.limit)
            .map(|(chat, e)| HeldChat { chat, namespace: e.names.ns().to_owned(), id: e.names.id().to_owned() })
            .collect();
        let total = held.iter().filter(|&&chat| self.chats.get(chat).is_some()).count();
        MessageResult((chats, total))
    }
}
