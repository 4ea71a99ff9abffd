//! Log compaction's storage steps (`compact.rs`), driven by hand against a real store in a
//! temp dir, with the helpers of `tests.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::record::{ChatNo, IndexMark, Record};
use super::tests::{block_on, catalog, checkpoint, create, entries_of, meta, open, options, send};
use super::{Options, Store};
use crate::model::Namespace;

fn small_segments(dir: &Path) -> Arc<Store> {
    let opened = Store::open(&Options { segment_bytes: 4096, ..options(dir) });
    opened.expect("open").0 // ok: test
}

/// A page read that took a message's position just before compaction removed its segment
/// still reads it: the removed segment stays open for the grace period, and only then goes.
/// Fails if `retire` unlinks the file without keeping it open for readers.
#[test]
fn a_removed_segment_stays_readable_for_the_grace_period() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let store = small_segments(dir.path());
    create(&store, 1);
    let entries = send(&store, 1, 1..=200);
    let old = entries[0].loc;
    assert_eq!(old.pos.segment, 1);
    assert!(entries.last().expect("sent").loc.pos.segment > 1, "the log rotated"); // ok: test
    store.retire(&[1]).expect("retire"); // ok: test
    assert!(!super::wal::segment_path(&dir.path().join("wal"), 1).exists());
    assert_eq!(store.read_message(1, old).expect("read in the grace period").seq, 1); // ok: test
    store.evict_retired(Duration::ZERO);
    assert!(store.read_message(1, old).is_err(), "the file is closed after the grace period");
}

/// Compaction's storage steps by hand: a chat's live messages in old segments are copied,
/// its index moved onto the copies, the old segments removed; after a restart the chat reads
/// every message once from the copies (recovery replays none of them as new), and the removed
/// segments are no loss (no chat held out). Fails (the reads of removed segments fail) if the
/// index rewrite keeps the old positions.
#[test]
fn copied_messages_are_read_once_from_their_copies_after_a_restart() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let store = small_segments(dir.path());
    create(&store, 1);
    create(&store, 2);
    let keep = send(&store, 1, 1..=60);
    send(&store, 2, 1..=60);
    let mut saves = vec![(1, IndexMark::default(), keep.clone()), (2, IndexMark::default(), Vec::new())];
    checkpoint(&store, &mut saves);
    // Chat 2 is deleted: erased in place, its files gone.
    let chat2: Vec<_> = entries_of(&store, 2).iter().map(|e| e.loc).collect();
    store.delete_chat(2, &chat2).expect("delete"); // ok: test
    let pos = block_on(store.mark()).expect("mark"); // ok: test
    store.save_catalog(&catalog(pos, &[1])).expect("catalog"); // ok: test

    let chats = [1].into_iter().collect();
    let plan = store.compaction_plan(pos.segment, &chats, &Default::default(), u64::MAX).expect("plan"); // ok: test
    assert!(!plan.is_empty(), "half-dead segments are worth compacting");
    let mut indexes = super::compact::Indexes::new(Arc::new(chats.clone()));
    let mut moves = Vec::new();
    let mut removed = Vec::new();
    for (segment, _) in plan {
        let live = store.live_records(segment, &Default::default(), &mut indexes).expect("live"); // ok: test
        let live = live.expect("not held"); // ok: test
        for l in live.live {
            let to = block_on(store.append_durable(&Record::Copied { chat: l.chat, msg: l.msg.clone() }));
            let to = to.expect("copy"); // ok: test
            moves.push(super::compact::Move { seq: l.msg.seq, from: l.loc, to });
        }
        removed.push(segment);
    }
    block_on(store.mark()).expect("mark"); // ok: test
    let mark = saves[0].1;
    let (_, applied) = store.relocate_index(1, mark, &moves).expect("relocate"); // ok: test
    assert_eq!(applied.len(), moves.len());
    store.retire(&removed).expect("retire"); // ok: test
    drop(store);

    let (store, recovered) = Store::open(&Options { segment_bytes: 4096, ..options(dir.path()) }).expect("reopen"); // ok: test
    assert!(recovered.unavailable.is_empty(), "a compacted segment taken for lost: {:?}", recovered.unavailable);
    let entries = entries_of(&store, 1);
    assert_eq!(entries.len(), 60, "every message once");
    for (i, entry) in entries.iter().enumerate() {
        assert!(!removed.contains(&entry.loc.pos.segment));
        let msg = store.read_message(1, entry.loc).expect("read"); // ok: test
        assert_eq!(msg.seq, i as u64 + 1);
    }
}

/// Compaction may write a chat's metadata forward while the chat is being deleted, so a
/// `Recreated` record can follow the chat's deletion in the log: replaying it must not bring
/// the chat back. Fails if recovery adds every `Recreated` chat its directory lacks.
#[test]
fn metadata_written_forward_after_a_deletion_does_not_bring_the_chat_back() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let store = open(dir.path());
    create(&store, 1);
    create(&store, 2);
    let mut saves = vec![(1, IndexMark::default(), Vec::new()), (2, IndexMark::default(), Vec::new())];
    checkpoint(&store, &mut saves);
    let ns = Namespace::parse("ns", 64).expect("ns"); // ok: test
    block_on(store.append_durable(&Record::ChatDeleted { chat: 2 })).expect("delete"); // ok: test
    let covers = block_on(store.mark()).expect("mark"); // ok: test
    block_on(store.append_durable(&Record::Recreated { chat: 2, ns, meta: meta(2), covers })).expect("forward"); // ok: test
    drop(store);
    let (_, recovered) = Store::open(&options(dir.path())).expect("reopen"); // ok: test
    let chats: Vec<ChatNo> = recovered.catalog.chats.iter().map(|e| e.chat).collect();
    assert_eq!(chats, vec![1], "a deleted chat came back");
}
