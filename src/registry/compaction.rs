//! Log compaction, run by the checkpoint task right after its catalog is durable (never beside
//! a checkpoint, and never in a backup, which excludes checkpoints). The storage steps and why
//! they are safe at every crash are in `store/compact.rs`; this is their order:
//!
//! 1. plan: the sealed segments wholly before the catalog's position whose live bytes are under
//!    two thirds of their size (an upper bound, from a summary of each segment kept in memory);
//! 2. per round of a few MiB of live messages: find exactly which records chats' indexes point at;
//! 3. copy them forward through the log writer, [`COPY_BATCH`] at a time (sends wait behind one
//!    such batch at most), with the metadata of each chat whose creation or changes the round's
//!    segments hold (so the log alone still rebuilds it), then make the copies durable;
//! 4. have each chat with a copied message move onto its copies: through its chat actor, the only
//!    owner of its index and positions (an idle chat is started for it, and stops again later);
//! 5. remove the round's segments whose every moved chat moved (or is gone): listed as removed,
//!    kept open [`GRACE`] for page reads that took a position in them just before, then closed.
//!
//! A run does at most [`ROUNDS_PER_RUN`] rounds and reads at most [`SUMMARY_BYTES_PER_RUN`] of
//! segments it has not looked at before; what is left waits for the next checkpoint. A failure
//! stops the run and removes nothing more; the next checkpoint tries again. Debug
//! builds pause at a step named by `CHATD_FAULT_COMPACT_PAUSE` (`copied`, `swapping`, `swapped`,
//! optionally `:seconds`) so a test can kill the server there, or act meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;

use super::Registry;
use crate::chat::{Relocate, Start};
use crate::error::Error;
use crate::store::compact::{Found, Indexes, Live, Move};
use crate::store::record::{bare_meta, Catalog, CatalogEntry, ChatNo, Loc, Pos, Record};
use crate::store::{Store, StoreError};
use crate::telemetry::measure;

/// Live bytes copied per round before its segments are removed.
const ROUND_BYTES: u64 = 4 << 20;
/// Rounds per run, and bytes of segments not looked at before read per run: the checkpoint
/// task waits for its compaction, so one run stays short and the next goes on.
const ROUNDS_PER_RUN: usize = 16;
const SUMMARY_BYTES_PER_RUN: u64 = 512 << 20;
/// Copies appended to the log at once.
const COPY_BATCH: usize = 64;
/// How long a removed segment's file stays open for readers holding a position in it.
const GRACE: Duration = Duration::from_secs(10);

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(res) => res.map_err(Error::from),
        Err(e) => Err(Error::Internal(format!("compaction task failed: {e}"))),
    }
}

/// Debug builds only: waits at `step` for a test to kill the server (or act meanwhile):
/// `CHATD_FAULT_COMPACT_PAUSE=step` waits 600 s, `step:N` N seconds.
async fn fault_pause(step: &str) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Ok(fault) = std::env::var("CHATD_FAULT_COMPACT_PAUSE") else {
        return;
    };
    let (at, secs) = fault.split_once(':').map_or((fault.as_str(), 600), |(at, n)| (at, n.parse().unwrap_or(600)));
    if at == step {
        tracing::warn!(step, secs, "fault injection: compaction paused (CHATD_FAULT_COMPACT_PAUSE)");
        actix::clock::sleep(Duration::from_secs(secs)).await;
    }
}

/// Compacts the log before the position of `catalog`, which is durable; the chats it holds out
/// of service keep all their records.
pub(super) async fn compact(store: Arc<Store>, me: Addr<Registry>, catalog: Catalog) -> Result<(), Error> {
    let started = Instant::now();
    let Some(before) = catalog.pos else {
        return Ok(());
    };
    let held: Arc<HashSet<ChatNo>> = Arc::new(catalog.unavailable.iter().copied().collect());
    let (plan, catalog, directory) = {
        let (store, held) = (store.clone(), held.clone());
        blocking(move || {
            let chats: HashSet<ChatNo> = catalog.chats.iter().map(|entry| entry.chat).collect();
            Ok((store.compaction_plan(before.segment, &chats, &held, SUMMARY_BYTES_PER_RUN)?, catalog, chats))
        })
        .await?
    };
    if plan.is_empty() {
        measure::compaction_pending(0);
        measure::compaction_ran(started.elapsed());
        return Ok(());
    }
    let entries: HashMap<ChatNo, CatalogEntry> = catalog.chats.into_iter().map(|entry| (entry.chat, entry)).collect();
    let mut pending = plan.len();
    measure::compaction_pending(pending);
    let mut indexes = Indexes::new(Arc::new(directory));
    let mut rest = plan.as_slice();
    let mut rounds = 0;
    while !rest.is_empty() && rounds < ROUNDS_PER_RUN {
        rounds += 1;
        let mut take = 0;
        let mut bytes = 0;
        while take < rest.len() && (take == 0 || bytes + rest[take].1 <= ROUND_BYTES) {
            bytes += rest[take].1;
            take += 1;
        }
        let round: Vec<u64> = rest[..take].iter().map(|(segment, _)| *segment).collect();
        rest = &rest[take..];
        let found;
        (found, indexes) = {
            let (store, held) = (store.clone(), held.clone());
            blocking(move || {
                let mut found = Vec::new();
                for segment in round {
                    if let Some(live) = store.live_records(segment, &held, &mut indexes)? {
                        found.push((segment, live));
                    }
                }
                Ok((found, indexes))
            })
            .await?
        };
        let (removed, freed, copied) = compact_round(&store, &me, before, &entries, found).await?;
        measure::compacted(removed, freed, copied);
        pending = pending.saturating_sub(take);
        measure::compaction_pending(pending);
    }
    measure::compaction_ran(started.elapsed());
    let evict = store.clone();
    actix::spawn(async move {
        actix::clock::sleep(GRACE + Duration::from_secs(1)).await;
        evict.evict_retired(GRACE);
    });
    Ok(())
}

/// Copies the live messages of `found`'s segments forward (and the metadata of the chats
/// whose creation or changes they hold, as of snapshots covering `before`), moves their chats
/// onto the copies, removes the segments. Answers the segments removed, the bytes freed and the
/// bytes copied.
async fn compact_round(
    store: &Arc<Store>,
    me: &Addr<Registry>,
    before: Pos,
    entries: &HashMap<ChatNo, CatalogEntry>,
    found: Vec<(u64, Found)>,
) -> Result<(usize, u64, u64), Error> {
    let mut moves: HashMap<ChatNo, Vec<Move>> = HashMap::new();
    let mut chats_in: HashMap<u64, HashSet<ChatNo>> = HashMap::new();
    let mut stuck: HashSet<ChatNo> = HashSet::new();
    let mut copied = 0;
    let all: Vec<(u64, Live)> =
        found.iter().flat_map(|(segment, f)| f.live.iter().map(|l| (*segment, l.clone()))).collect();
    for batch in all.chunks(COPY_BATCH) {
        let appends =
            batch.iter().map(|(_, l)| store.append_durable(&Record::Copied { chat: l.chat, msg: l.msg.clone() }));
        for ((segment, live), to) in batch.iter().zip(join_all(appends).await) {
            let to = to?;
            copied += u64::from(to.len);
            moves.entry(live.chat).or_default().push(Move { seq: live.msg.seq, from: live.loc, to });
            chats_in.entry(*segment).or_default().insert(live.chat);
        }
    }
    let mut meta_chats: Vec<ChatNo> = Vec::new();
    for (segment, f) in &found {
        chats_in.entry(*segment).or_default().extend(f.meta_chats.iter().copied());
        meta_chats.extend(f.meta_chats.iter().copied());
    }
    meta_chats.sort_unstable();
    meta_chats.dedup();
    for batch in meta_chats.chunks(COPY_BATCH) {
        let chats = batch.to_vec();
        let reading = store.clone();
        let metas =
            blocking(move || Ok(chats.into_iter().map(|c| (c, reading.stored_meta(c))).collect::<Vec<_>>())).await?;
        let mut appends = Vec::new();
        for (chat, meta) in metas {
            let entry = entries.get(&chat);
            // A chat with no files of its own has its whole metadata in its catalog entry.
            let bare = |entry: &CatalogEntry| {
                let created_at = entry.bare?;
                Some(bare_meta(entry.names.chat_id(), entry.names.member_set(), entry.group, created_at))
            };
            match (meta.map(|meta| meta.or_else(|| entry.and_then(bare))), entry) {
                (Ok(None), None) => {} // deleted: nothing of it must outlive the segment
                (Ok(Some(meta)), Some(entry)) => {
                    let record = Record::Recreated { chat, ns: entry.names.namespace(), meta, covers: before };
                    appends.push(store.append_durable(&record));
                }
                // No metadata to write (no files, not bare), or no namespace known: it stays.
                (Ok(None), Some(_)) | (Ok(Some(_)), None) | (Err(_), _) => {
                    tracing::warn!(chat, "compaction: a chat's metadata cannot be written forward; its segments stay");
                    stuck.insert(chat);
                }
            }
        }
        for res in join_all(appends).await {
            res?;
        }
    }
    // Durable whatever the fsync mode, before any index points at them.
    store.mark().await?;
    fault_pause("copied").await;
    let mut stopped = false;
    for (i, (chat, moves)) in moves.into_iter().enumerate() {
        if stopped {
            stuck.insert(chat);
            continue;
        }
        let copies: Vec<Loc> = moves.iter().map(|m| m.to).collect();
        match me.send(RelocateChat { chat, moves }).await {
            Ok(Ok(true)) => {}
            // Deleted meanwhile: its copies go as its records went (erased in place).
            Ok(Ok(false)) => {
                let erasing = store.clone();
                if let Err(err) = blocking(move || erasing.erase(&copies)).await {
                    tracing::warn!(chat, error = %err, "compaction: could not erase the copies of a deleted chat");
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(chat, error = %err, "compaction: a chat could not move onto its copies; its segments stay");
                stuck.insert(chat);
            }
            Err(err) => {
                tracing::warn!(chat, error = %err, "compaction: the registry did not answer; stopping");
                stuck.insert(chat);
                stopped = true;
            }
        }
        if i == 0 {
            fault_pause("swapping").await;
        }
    }
    fault_pause("swapped").await;
    let removable: Vec<u64> = found
        .iter()
        .map(|(segment, _)| *segment)
        .filter(|segment| chats_in.get(segment).is_none_or(|chats| chats.is_disjoint(&stuck)))
        .collect();
    let count = removable.len();
    let retire = store.clone();
    let freed = blocking(move || retire.retire(&removable)).await?;
    if count > 0 {
        tracing::info!(segments = count, freed, copied, "compaction removed log segments");
    }
    Ok((count, freed, copied))
}

/// Has a chat's actor (started if idle) move onto its copies. `false`: the chat is gone.
#[derive(Message)]
#[rtype(result = "Result<bool, Error>")]
struct RelocateChat {
    chat: ChatNo,
    moves: Vec<Move>,
}

impl Handler<RelocateChat> for Registry {
    type Result = ResponseFuture<Result<bool, Error>>;

    fn handle(&mut self, RelocateChat { chat, moves }: RelocateChat, ctx: &mut Self::Context) -> Self::Result {
        let Some(entry) = self.chats.get(chat) else {
            return Box::pin(std::future::ready(Ok(false)));
        };
        let key = (entry.names.namespace(), entry.names.chat_id());
        let actor = match self.actor(&key, &ctx.address(), Start::Load) {
            Ok(actor) => actor,
            Err(err) => return Box::pin(std::future::ready(Err(err))),
        };
        Box::pin(async move {
            actor.send(Relocate(moves)).await.unwrap_or_else(|e| Err(Error::Internal(format!("chat {chat}: {e}"))))
        })
    }
}
