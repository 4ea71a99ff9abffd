//! Compaction moving this chat's messages onto their copies (`store/compact.rs`): the chat's
//! index file is rewritten and its positions in memory follow, both here, since this actor is
//! the only owner of its chat's state and the only writer of its index. The mailbox is held
//! meanwhile (one atomic index rewrite), so no snapshot or page sees half of it.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{blocking, ChatActor};
use crate::error::Error;
use crate::store::compact::Move;

/// Read these messages at their copies from now on. Answers `false` if the chat is deleted.
#[derive(Message)]
#[rtype(result = "Result<bool, Error>")]
pub struct Relocate(pub Vec<Move>);

impl Handler<Relocate> for ChatActor {
    type Result = ResponseFuture<Result<bool, Error>>;

    fn handle(&mut self, Relocate(moves): Relocate, ctx: &mut Self::Context) -> Self::Result {
        if self.deleted {
            return Box::pin(std::future::ready(Ok(false)));
        }
        if let Some(err) = self.broken.clone() {
            return Box::pin(std::future::ready(Err(err)));
        }
        let (tx, rx) = oneshot::channel();
        let (no, mark, store) = (self.init.no, self.index_mark, self.init.store.clone());
        let work = async move { blocking(move || store.relocate_index(no, mark, &moves)).await };
        ctx.wait(actix::fut::wrap_future(work).map(move |res, act: &mut Self, _| {
            let res = res.map(|(mark, applied)| {
                act.index_mark = mark;
                act.core.relocate(&applied);
                true
            });
            let _ = tx.send(res);
        }));
        Box::pin(
            async move { rx.await.unwrap_or_else(|_| Err(Error::Internal("the chat stopped while moving".into()))) },
        )
    }
}
