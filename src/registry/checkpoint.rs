//! Checkpoints: take the log's durable end, have every live chat snapshot all it has up to
//! there, then record that position in the catalog, so a restart replays only the log after it.
//! They run every `checkpoint_interval` and after every `checkpoint_bytes` of log (so the log a
//! restart replays stays short at any send rate), and once more at shutdown. Each but the last
//! then compacts the log its catalog no longer needs (`compaction.rs`), in the same task.
//!
//! Each holds the store's maintenance turn while it runs (`store/maintenance.rs`): one at a
//! time, never during a backup, and whatever else a checkpoint does to the files already on
//! disk (log compaction) runs inside it, under the same turn. A checkpoint asked for while the
//! turn is taken is skipped; the next tick asks again.

use std::time::Duration;

use actix::prelude::*;
use futures_util::stream::{self, StreamExt};

use super::Registry;
use crate::chat::{ChatActor, Snapshot};
use crate::error::Error;
use crate::store::maintenance::Turn;
use crate::store::record::{Catalog, Pos};

/// How long the final checkpoint waits for a backup under way (stopping cuts its stream off).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

impl Registry {
    /// Starts the timers that ask for checkpoints.
    pub(super) fn schedule_checkpoints(&self, ctx: &mut Context<Self>) {
        let every = self.options.checkpoint_interval.max(Duration::from_secs(1));
        ctx.run_interval(every, |_, ctx| {
            ctx.address().do_send(Checkpoint);
        });
        if self.options.checkpoint_bytes > 0 {
            ctx.run_interval(Duration::from_millis(100), |act, ctx| {
                if act.store.log_bytes() - act.checkpointed_bytes >= act.options.checkpoint_bytes {
                    ctx.address().do_send(Checkpoint);
                }
            });
        }
    }
}

/// Snapshot every live chat up to the log's durable end, then move the catalog's replay point there.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Checkpoint;

impl Handler<Checkpoint> for Registry {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Checkpoint, ctx: &mut Self::Context) -> Self::Result {
        // Another checkpoint, or a backup, is running.
        let Some(turn) = self.store.maintenance().try_turn() else {
            tracing::debug!("checkpoint skipped: another checkpoint or a backup holds the maintenance turn");
            return Box::pin(actix::fut::ready(Ok(())));
        };
        self.checkpointed_bytes = self.store.log_bytes();
        Box::pin(actix::fut::wrap_future(self.checkpoint(ctx.address(), turn, true)))
    }
}

impl Registry {
    /// A checkpoint, then (with `compact`) compaction of the log before its catalog's position,
    /// holding `turn` until both are done.
    fn checkpoint(
        &self,
        me: Addr<Registry>,
        turn: Turn,
        compact: bool,
    ) -> impl std::future::Future<Output = Result<(), Error>> {
        let store = self.store.clone();
        async move {
            let _turn = turn;
            let pos = store.mark().await?;
            // Asked once the mark is in: a chat that starts later writes only after it, and
            // a bare chat settled now has no durable change the directory has not heard of.
            let live = me.send(Unsettled).await.map_err(|e| Error::Internal(format!("registry: {e}")))?;
            // Many chats at once: their snapshots' fsyncs then share the filesystem's journal
            // commits, where one chat after another paid a commit each (minutes for 1M chats).
            let mut snapshots =
                stream::iter(live).map(|actor| actor.send(Snapshot)).buffer_unordered(SNAPSHOTS_AT_ONCE);
            while let Some(sent) = snapshots.next().await {
                match sent {
                    Ok(res) => res?,
                    // A chat that stopped meanwhile snapshotted as it stopped.
                    Err(err) => tracing::debug!(error = %err, "chat stopped before its checkpoint snapshot"),
                }
            }
            // Through the mailbox, so every notice the chats sent before their snapshots is in.
            let catalog = me.send(CatalogAt(pos)).await.map_err(|e| Error::Internal(format!("registry: {e}")))?;
            let saving = store.clone();
            let saved = tokio::task::spawn_blocking(move || saving.save_catalog(&catalog).map(|()| catalog)).await;
            let res = match saved {
                Ok(res) => res.map_err(Error::from),
                Err(e) => Err(Error::Internal(format!("checkpoint task failed: {e}"))),
            };
            let catalog = match res {
                Ok(catalog) => catalog,
                Err(err) => {
                    tracing::error!(error = %err, "checkpoint failed");
                    return Err(err);
                }
            };
            if !compact {
                return Ok(());
            }
            // The checkpoint is done whatever happens here: a failed compaction is tried again
            // after the next one.
            if let Err(err) = super::compaction::compact(store, me, catalog).await {
                tracing::error!(error = %err, "log compaction failed");
            }
            Ok(())
        }
    }
}

/// The live chats a checkpoint must ask for a snapshot: all but the settled bare ones, whose
/// catalog entries the directory already holds whole (a million chats made and never written
/// to cost a checkpoint no round trip each).
#[derive(Message)]
#[rtype(result = "Vec<Addr<ChatActor>>")]
struct Unsettled;

impl Handler<Unsettled> for Registry {
    type Result = MessageResult<Unsettled>;

    fn handle(&mut self, _: Unsettled, _: &mut Self::Context) -> Self::Result {
        let live = self.live.values().filter(|l| !l.settled.is_settled());
        MessageResult(live.map(|l| l.actor.clone()).collect())
    }
}

/// How many chats a checkpoint snapshots concurrently.
const SNAPSHOTS_AT_ONCE: usize = 8;

/// The directory as a catalog whose replay point is `pos`.
#[derive(Message)]
#[rtype(result = "Catalog")]
struct CatalogAt(Pos);

impl Handler<CatalogAt> for Registry {
    type Result = MessageResult<CatalogAt>;

    fn handle(&mut self, CatalogAt(pos): CatalogAt, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.catalog(pos))
    }
}

/// Final checkpoint, then stop every chat actor and arbiter.
#[derive(Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Shutdown;

impl Handler<Shutdown> for Registry {
    type Result = ResponseActFuture<Self, Result<(), Error>>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let (started, chats, live) = (std::time::Instant::now(), self.chats.len(), self.live.len());
        let store = self.store.clone();
        let turn = async move { store.maintenance().turn(SHUTDOWN_WAIT).await };
        let checkpoint = actix::fut::wrap_future(turn).then(|turn, act: &mut Self, ctx: &mut Context<Self>| {
            let me = ctx.address();
            let run = match turn {
                Ok(turn) => Some(act.checkpoint(me, turn, false)),
                Err(err) => {
                    tracing::warn!(error = %err, "no final checkpoint: the next start replays the log since the last one");
                    None
                }
            };
            actix::fut::wrap_future(async move {
                match run {
                    Some(run) => run.await,
                    None => Ok(()),
                }
            })
        });
        Box::pin(checkpoint.map(move |res, act: &mut Self, ctx: &mut Context<Self>| {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(chats, live, ms, "final checkpoint written; stopping the chats");
            for arbiter in &act.arbiters {
                arbiter.stop();
            }
            ctx.stop();
            res
        }))
    }
}
