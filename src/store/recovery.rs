//! Recovery: from the last catalog checkpoint to a consistent store, before anything is served.
//!
//! 1. Read the catalog (the directory of chats and the log position their files cover).
//! 2. Scan the log from that position only, so restart time follows what changed since the last
//!    checkpoint, not the total history (and checkpoints run by log bytes too, so that stays
//!    short at any send rate). A torn record at the very end (a crash mid-write) is cut off with
//!    a warning. A bad record followed by good ones is corruption: it is reported loudly,
//!    skipped over, and every chat it leaves with a gap is held out of service.
//! 3. Gather the scanned records (creations, membership changes, messages) into one [`Tail`]
//!    per chat and the directory. The tails stay in memory: each chat folds its own into its
//!    files when it is first loaded, and the next checkpoint folds the rest before its catalog
//!    moves past them. A chat made and never written to needs no tail: its catalog entry is
//!    all of it (a bare chat). Nothing is rewritten before the server serves; a second crash
//!    replays the same tail again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;

use super::chats::stored_entries;
use super::record::{fits_catalog, Catalog, CatalogEntry, ChatNo, ChatSnapshot, IndexEntry, Loc, Pos, RecordView};
use super::scan::{list_segments, scan, Chats, Repair};
use super::tail::{Edit, Tail};
use super::wal::segment_path;
use super::{io_error, snapshot, Layout, StoreError};
use crate::model::{ChatMeta, MemberEdit, Members};

/// What the server starts from.
pub struct Recovered {
    pub catalog: Catalog,
    /// Where the log ends: the writer appends here.
    pub end: Pos,
    /// Chats whose stored data failed a check; they answer 503 rather than serve wrong data.
    pub unavailable: HashSet<ChatNo>,
}

fn apply_to_members(members: &mut Members, edit: &MemberEdit) {
    match edit {
        MemberEdit::Add(user) => drop(members.insert(user.clone())),
        MemberEdit::Remove(user) => drop(members.remove(user)),
    }
}

/// Recovers the store; answers, besides, each chat's tail for the store to hold.
pub fn recover(layout: &Layout) -> Result<(Recovered, HashMap<ChatNo, Tail>), StoreError> {
    let mut catalog = match snapshot::read_with(&layout.catalog(), Catalog::decode) {
        Ok(found) => found.unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, "the catalog is damaged; rebuilding it from the whole log");
            Catalog::default()
        }
    };
    let segments = list_segments(&layout.wal)?;
    let from_scratch = catalog.pos.is_none();
    let from = catalog.pos.unwrap_or(Pos { segment: segments.first().copied().unwrap_or(1), offset: 0 });

    let mut directory: BTreeMap<ChatNo, CatalogEntry> =
        std::mem::take(&mut catalog.chats).into_iter().map(|entry| (entry.chat, entry)).collect();
    let mut tails: BTreeMap<ChatNo, Tail> = BTreeMap::new();
    let mut deleted = Vec::new();
    let mut next_chat = catalog.next_chat;
    let (started, mut replayed) = (std::time::Instant::now(), 0u64);
    let scanned = scan(layout, &segments, from, Repair::CutTornTail, Chats::All, |loc, record| {
        replayed += 1;
        match record {
            RecordView::ChatCreated { chat, ns, meta } => {
                next_chat = next_chat.max(chat + 1);
                directory.entry(chat).or_insert_with(|| CatalogEntry::of(chat, &ns, &meta));
                tails.entry(chat).or_default().created = Some(meta);
            }
            RecordView::Message { chat, msg } => tails.entry(chat).or_default().message(loc, msg),
            RecordView::Member { chat, edit } => {
                if let Some(found) = directory.get_mut(&chat) {
                    let mut members = found.names.member_set();
                    apply_to_members(&mut members, &edit);
                    found.names = found.names.with_members(&members);
                }
                tails.entry(chat).or_default().edits.push(Edit::Member(edit));
            }
            RecordView::ChatUpdated { chat, meta } => {
                if let Some(found) = directory.get_mut(&chat) {
                    found.names = found.names.with_members(&meta.user_ids);
                }
                tails.entry(chat).or_default().edits.push(Edit::Replace(meta));
            }
            RecordView::ChatDeleted { chat } => {
                directory.remove(&chat);
                let tail = tails.remove(&chat).unwrap_or_default();
                deleted.push((chat, tail.messages.into_iter().map(|(_, e)| e.loc).collect::<Vec<Loc>>()));
            }
            // Only a directory rebuilt from the whole log (the catalog is damaged) needs it; a
            // catalog that lacks the chat had it deleted, as has a replayed deletion before it
            // (compaction may write it forward while the chat is being deleted).
            RecordView::Recreated { chat, ns, meta, .. } => {
                next_chat = next_chat.max(chat + 1);
                if from_scratch && !deleted.iter().any(|(gone, _)| *gone == chat) {
                    directory
                        .entry(chat)
                        .or_insert_with(|| CatalogEntry::new(chat, &ns, &meta.id, meta.group, &meta.user_ids));
                }
            }
            // A copy is read where its chat's index points; replaying it would index it twice.
            RecordView::Copied { .. } | RecordView::Erased(_) | RecordView::Commit => {}
        }
    })?;
    tracing::info!(
        records = replayed,
        chats = tails.len(),
        from = ?from,
        to = ?scanned.end,
        ms = started.elapsed().as_millis() as u64,
        "replayed the log since the last checkpoint"
    );
    // What a crash left in the page cache is on disk only once fsynced: the chat files and
    // catalogs written from the tails refer to it, and must never outlive it in a power cut.
    // Nothing replayed (a clean stop): nothing new to make durable.
    let replayed_any = scanned.end != from;
    for &segment in segments.iter().filter(|&&s| replayed_any && s >= from.segment) {
        fs::File::open(segment_path(&layout.wal, segment)).and_then(|f| f.sync_all()).map_err(io_error)?;
    }
    // Chats held out before stay held out: nothing has repaired them.
    let mut unavailable: HashSet<ChatNo> = catalog.unavailable.iter().copied().collect();
    unavailable.extend(scanned.damaged);
    unavailable.extend(held_by_missing_segments(layout, &segments, catalog.pos, &directory));

    // A crash may have come between a deletion and its erasure: finish it.
    for (chat, tail) in deleted {
        erase_deleted(layout, &segments, chat, tail)?;
    }

    tails.retain(|chat, tail| {
        let known = directory.contains_key(chat);
        if !known {
            tracing::error!(chat, "the log holds records of a chat it never created; ignoring them");
        }
        // A chat made since the checkpoint and never written to: its directory entry holds it
        // all (it is bare), so its tail would only cost memory (a million after a kill -9).
        let bare = directory.get(chat).is_some_and(|e| e.bare.is_some())
            && tail.messages.is_empty()
            && tail.edits.is_empty()
            && tail.created.as_ref().is_some_and(fits_catalog);
        known && !unavailable.contains(chat) && !bare
    });
    let end = scanned.end;
    // The catalog on disk keeps its position: it is right until the tails are in the chats' files.
    catalog.next_chat = next_chat;
    catalog.chats = directory.into_values().collect();
    catalog.unavailable = unavailable.iter().copied().collect();
    Ok((Recovered { catalog, end, unavailable }, tails.into_iter().collect()))
}

/// Segments are numbered from 1 with no gaps, and only compaction removes one (listed in
/// `snap/compacted.snap` before it goes, see `compact.rs`), so any other missing number is lost
/// records: every chat whose snapshot points into it is held out, and if it was part of the log
/// replayed since the checkpoint (whose records no snapshot names), every chat is, since any of
/// them may have lost messages there. Reported loudly, never passed over.
fn held_by_missing_segments(
    layout: &Layout,
    segments: &[u64],
    checkpoint: Option<Pos>,
    directory: &BTreeMap<ChatNo, CatalogEntry>,
) -> HashSet<ChatNo> {
    // The checkpoint's segment existed when it was written, whether or not it is still there.
    let replayed_from = checkpoint.map_or(1, |pos| pos.segment);
    let last = segments.last().copied().unwrap_or(0).max(checkpoint.map_or(0, |pos| pos.segment));
    let removed = super::compact::removed(layout);
    let missing: Vec<u64> =
        (1..=last).filter(|n| segments.binary_search(n).is_err() && removed.binary_search(n).is_err()).collect();
    let mut held = HashSet::new();
    if missing.is_empty() {
        return held;
    }
    for &segment in &missing {
        if segment >= replayed_from {
            held.extend(directory.keys().copied());
        }
    }
    for &chat in directory.keys() {
        if let Ok(entries) = stored_entries(layout, chat) {
            if entries.iter().any(|e| missing.binary_search(&e.loc.pos.segment).is_ok()) {
                held.insert(chat);
            }
        }
    }
    let mut chats: Vec<ChatNo> = held.iter().copied().collect();
    chats.sort_unstable();
    tracing::error!(
        ?missing,
        held_out = ?chats,
        "CORRUPTION: log segments are missing from {}; the chats whose records they held are held out of service",
        layout.wal.display()
    );
    held
}

/// Overwrites every message record of a deleted chat: those its files know and those in the
/// replayed tail (or, if its files are damaged, every one in the log).
fn erase_deleted(layout: &Layout, segments: &[u64], chat: ChatNo, tail: Vec<Loc>) -> Result<(), StoreError> {
    let known = match stored_entries(layout, chat) {
        Ok(entries) => entries,
        Err(_) => message_locs(layout, segments, chat)?,
    };
    let mut locs: Vec<Loc> = known.into_iter().map(|e| e.loc).collect();
    locs.extend(tail);
    super::erase_in_place(layout, &locs)?;
    super::chats::remove(layout, chat)
}

/// Every message record of `chat` in the whole log, gaps or not.
fn message_locs(layout: &Layout, segments: &[u64], chat: ChatNo) -> Result<Vec<IndexEntry>, StoreError> {
    let mut found = Vec::new();
    let from = Pos { segment: segments.first().copied().unwrap_or(1), offset: 0 };
    scan(layout, segments, from, Repair::ReadOnly, Chats::Only(chat), |loc, record| {
        if let RecordView::Message { chat: c, msg } | RecordView::Copied { chat: c, msg } = record {
            if c == chat {
                found.push(msg.entry(loc));
            }
        }
    })?;
    Ok(found)
}

/// The slow path: a chat from every record of the log. Fails on any gap in seq, or if the log
/// holds neither the chat's creation nor its metadata as compaction copied it forward.
///
/// Compaction leaves the log out of seq order (copies lie after later messages) and may have
/// removed the creation: so messages are gathered by seq (an original and its copy are the same
/// message: the first found counts), and the metadata is the latest base (the creation, a
/// whole replacement, or compaction's [`RecordView::Recreated`], which covers every change
/// logged before its `covers`) with every change logged after that base applied in log order.
pub fn rebuild_chat(layout: &Layout, segments: &[u64], chat: ChatNo) -> Result<ChatSnapshot, StoreError> {
    let mut base: Option<(Pos, ChatMeta)> = None;
    let mut edits: Vec<(Pos, MemberEdit)> = Vec::new();
    let mut by_seq: BTreeMap<u64, IndexEntry> = BTreeMap::new();
    let mut newer_base = |covers: Pos, meta: ChatMeta| {
        if base.as_ref().is_none_or(|(at, _)| *at < covers) {
            base = Some((covers, meta));
        }
    };
    let from = Pos { segment: segments.first().copied().unwrap_or(1), offset: 0 };
    let scanned = scan(layout, segments, from, Repair::ReadOnly, Chats::Only(chat), |loc, record| match record {
        RecordView::ChatCreated { chat: c, meta, .. } | RecordView::ChatUpdated { chat: c, meta } if c == chat => {
            newer_base(loc.pos, meta)
        }
        RecordView::Recreated { chat: c, meta, covers, .. } if c == chat => newer_base(covers, meta),
        RecordView::Member { chat: c, edit } if c == chat => edits.push((loc.pos, edit)),
        RecordView::Message { chat: c, msg } | RecordView::Copied { chat: c, msg } if c == chat => {
            by_seq.entry(msg.seq).or_insert_with(|| msg.entry(loc));
        }
        _ => {}
    })?;
    if scanned.damaged.contains(&chat) {
        return Err(StoreError::Corrupt(format!("a record of chat {chat} in the log is damaged")));
    }
    if let Some(expected) = (1..).zip(by_seq.keys()).find(|(want, got)| want != *got).map(|(want, _)| want) {
        let found = by_seq.range(expected..).next().map_or(0, |(seq, _)| *seq);
        return Err(StoreError::Corrupt(format!(
            "the log lacks message {expected} of chat {chat} (next found: {found})"
        )));
    }
    let entries: Vec<IndexEntry> = by_seq.into_values().collect();
    let (covers, mut meta) =
        base.ok_or_else(|| StoreError::Corrupt(format!("the log does not hold the creation of chat {chat}")))?;
    for (_, edit) in edits.iter().filter(|(at, _)| *at >= covers) {
        meta.apply(edit);
    }
    Ok(ChatSnapshot { chat, meta, entries })
}
