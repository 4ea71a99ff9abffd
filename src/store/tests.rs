//! The store across restarts: recovery tails, interrupted checkpoints, torn index appends and
//! the old snapshot format, driven through `Store` itself on a temporary data dir.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::record::{Catalog, CatalogEntry, ChatNo, ChatSnapshot, IndexEntry, IndexMark, Pos, Record};
use super::{snapshot, Fsync, Options, Store};
use crate::model::{ChatId, ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, Namespace, UserId};

pub(super) fn options(dir: &Path) -> Options {
    Options {
        data_dir: dir.to_path_buf(),
        fsync: Fsync::Always,
        fsync_interval: Duration::from_millis(10),
        segment_bytes: 64 << 20,
    }
}

pub(super) fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    runtime.expect("runtime").block_on(future) // ok: test
}

pub(super) fn open(dir: &Path) -> Arc<Store> {
    Store::open(&options(dir)).expect("open").0 // ok: test
}

pub(super) fn meta(chat: ChatNo) -> ChatMeta {
    ChatMeta {
        id: ChatId::parse(&format!("chat-{chat}"), 64).expect("id"), // ok: test
        user_ids: Members::new(vec![UserId::parse("u", 64).expect("id")]), // ok: test
        created_at: 0,
        name: String::new(),
        description: String::new(),
        group: false,
        private: false,
        invited: Members::default(),
    }
}

pub(super) fn catalog(pos: Pos, chats: &[ChatNo]) -> Catalog {
    let ns = Namespace::parse("ns", 64).expect("ns"); // ok: test
    let entry = |chat: ChatNo| CatalogEntry::new(chat, &ns, &meta(chat).id, false, &meta(chat).user_ids);
    Catalog { pos: Some(pos), next_chat: 100, chats: chats.iter().map(|&c| entry(c)).collect(), unavailable: vec![] }
}

pub(super) fn create(store: &Store, chat: ChatNo) {
    let ns = Namespace::parse("ns", 64).expect("ns"); // ok: test
    let created = block_on(store.append_durable(&Record::ChatCreated { chat, ns, meta: meta(chat) }));
    created.expect("create"); // ok: test
}

/// Sends messages `seqs` to `chat`; answers their index entries.
pub(super) fn send(store: &Store, chat: ChatNo, seqs: std::ops::RangeInclusive<u64>) -> Vec<IndexEntry> {
    seqs.map(|seq| {
        let msg = Message {
            seq,
            id: MessageId::parse(&format!("m{chat}-{seq}"), 64).expect("id"), // ok: test
            client_id: ClientId::parse(&format!("c{chat}-{seq}"), 64).expect("id"), // ok: test
            user_id: UserId::parse("u", 64).expect("id"),                     // ok: test
            subject: String::new(),
            text: format!("message {seq} of chat {chat}"),
            sent_at: 0,
        };
        let loc = block_on(store.append_durable(&Record::Message { chat, msg: msg.clone() })).expect("send"); // ok: test
        IndexEntry::of(&msg, loc)
    })
    .collect()
}

pub(super) fn entries_of(store: &Store, chat: ChatNo) -> Vec<IndexEntry> {
    store.load_chat(chat, None).expect("load").snapshot.entries // ok: test
}

/// A whole checkpoint of `chats`, each saving `entries` from its mark.
pub(super) fn checkpoint(store: &Store, saves: &mut [(ChatNo, IndexMark, Vec<IndexEntry>)]) {
    let pos = block_on(store.mark()).expect("mark"); // ok: test
    for (chat, mark, entries) in saves.iter_mut() {
        let saved = store.save_chat(*chat, &meta(*chat), entries, *mark);
        *mark = saved.expect("save"); // ok: test
    }
    let chats: Vec<ChatNo> = saves.iter().map(|(c, _, _)| *c).collect();
    store.save_catalog(&catalog(pos, &chats)).expect("catalog"); // ok: test
}

/// A checkpoint that died after some chats appended to their index and before the catalog:
/// the replayed log repeats entries the index holds already, and must not index them twice;
/// and the chat whose append was torn gets its entries from the log. Fails if the tail's
/// entries at or below the index's length are appended again (seqs would no longer be indexes).
#[test]
fn an_interrupted_checkpoint_neither_loses_nor_repeats_entries() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let (mut one, mut two) = (Vec::new(), Vec::new());
    {
        let store = open(dir.path());
        create(&store, 1);
        create(&store, 2);
        one.extend(send(&store, 1, 1..=5));
        two.extend(send(&store, 2, 1..=5));
        let mut saves = [(1, IndexMark::default(), one.clone()), (2, IndexMark::default(), two.clone())];
        checkpoint(&store, &mut saves);
        let new_one = send(&store, 1, 6..=8);
        let new_two = send(&store, 2, 6..=8);
        one.extend(new_one.clone());
        two.extend(new_two.clone());
        // The next checkpoint: chat 1's append is whole, chat 2's torn; no catalog.
        block_on(store.mark()).expect("mark"); // ok: test
        store.save_chat(1, &meta(1), &new_one, saves[0].1).expect("save"); // ok: test
        let full = store.save_chat(2, &meta(2), &new_two, saves[1].1).expect("save"); // ok: test
        let file = std::fs::OpenOptions::new().write(true).open(store.layout.index(2)).expect("idx"); // ok: test
        let torn = file.set_len(saves[1].1.bytes + (full.bytes - saves[1].1.bytes) / 2);
        torn.expect("tear"); // ok: test
    }
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), one);
    assert_eq!(entries_of(&store, 2), two);
    drop(store);
    // Loading wrote the tails into the chats' files: a checkpoint may now move past them.
    let store = open(dir.path());
    let pos = block_on(store.mark()).expect("mark"); // ok: test
    store.save_catalog(&catalog(pos, &[1, 2])).expect("catalog"); // ok: test
    drop(store);
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), one);
    assert_eq!(entries_of(&store, 2), two);
}

/// Recovery keeps each chat's replayed tail in memory; a chat nobody loads before the next
/// checkpoint must still have it written to its files before that checkpoint's catalog moves
/// past it. Fails without the checkpoint's fold of unloaded tails (messages 4 and 5 are lost).
#[test]
fn a_checkpoint_writes_the_tails_of_chats_nobody_loaded() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let mut all = Vec::new();
    {
        let store = open(dir.path());
        create(&store, 1);
        all.extend(send(&store, 1, 1..=3));
        checkpoint(&store, &mut [(1, IndexMark::default(), all.clone())]);
        all.extend(send(&store, 1, 4..=5));
    }
    {
        let store = open(dir.path());
        let pos = block_on(store.mark()).expect("mark"); // ok: test
        store.save_catalog(&catalog(pos, &[1])).expect("catalog"); // ok: test
    }
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), all);
}

/// An index shorter than its metadata snapshot says was damaged after a checkpoint moved past
/// it (not torn by a crash): the chat is rebuilt from the log, never served short.
#[test]
fn an_index_cut_short_after_its_checkpoint_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let mut all = Vec::new();
    let first;
    {
        let store = open(dir.path());
        create(&store, 1);
        all.extend(send(&store, 1, 1..=3));
        let mut saves = [(1, IndexMark::default(), all.clone())];
        checkpoint(&store, &mut saves);
        first = saves[0].1;
        let more = send(&store, 1, 4..=6);
        all.extend(more.clone());
        saves[0].2 = more;
        checkpoint(&store, &mut saves);
        let file = std::fs::OpenOptions::new().write(true).open(store.layout.index(1)).expect("idx"); // ok: test
        file.set_len(first.bytes).expect("cut"); // ok: test
    }
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), all);
}

/// A data dir written before the append-only index (one whole snapshot per chat) still loads,
/// and is converted: the next restart reads the new files.
#[test]
fn an_old_format_snapshot_loads_and_is_converted() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let mut all;
    {
        let store = open(dir.path());
        create(&store, 1);
        all = send(&store, 1, 1..=4);
        let pos = block_on(store.mark()).expect("mark"); // ok: test
        let old = ChatSnapshot { chat: 1, meta: meta(1), entries: all.clone() };
        snapshot::write(&store.layout.chat(1), &old).expect("old snapshot"); // ok: test
        store.save_catalog(&catalog(pos, &[1])).expect("catalog"); // ok: test
        all.extend(send(&store, 1, 5..=5));
    }
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), all);
    assert!(!store.layout.chat(1).exists(), "the old snapshot is gone once converted");
    assert!(store.layout.head(1).exists() && store.layout.index(1).exists());
    drop(store);
    let store = open(dir.path());
    assert_eq!(entries_of(&store, 1), all);
}

/// The backup's sink, held at its first write (before any file is read) until told to go on.
struct Held {
    started: std::sync::mpsc::Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
    out: Arc<std::sync::Mutex<Vec<u8>>>,
    first: bool,
}

impl std::io::Write for Held {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::mem::take(&mut self.first) {
            let _ = self.started.send(());
            let _ = self.go.recv();
        }
        self.out.lock().expect("lock").extend_from_slice(buf); // ok: test
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Proves a backup copies the chats' files as of the log end it took, though chats go on
/// sending and writing their files while it runs: a chat's snapshot written meanwhile waits
/// for the copy of `snap/` (and no checkpoint gets the turn), so the restored copy holds the
/// chat's five messages before the backup, each readable. Fails without the freeze of chat file
/// writes: the copied index then names messages past the copied log, which do not read back.
#[test]
fn a_backup_copies_chat_files_as_of_its_log_end_while_chats_write_on() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let store = open(dir.path());
    create(&store, 1);
    let first = send(&store, 1, 1..=5);
    let mut saves = [(1, IndexMark::default(), first.clone())];
    checkpoint(&store, &mut saves);
    let mark = saves[0].1;

    let (started, started_rx) = std::sync::mpsc::channel();
    let (go_tx, go) = std::sync::mpsc::channel();
    let out = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Held { started, go, out: out.clone(), first: true };
    let backing = store.clone();
    let backup = std::thread::spawn(move || {
        block_on(async move {
            let turn = backing.maintenance().try_turn().expect("nothing else holds the turn"); // ok: test
            backing.backup(turn, sink).await
        })
    });
    started_rx.recv_timeout(Duration::from_secs(10)).expect("the backup starts"); // ok: test
    assert!(store.maintenance().try_turn().is_none(), "a checkpoint would run during the backup");
    let later = send(&store, 1, 6..=8);
    let (saved_tx, saved) = std::sync::mpsc::channel();
    let writer = store.clone();
    std::thread::spawn(move || {
        let _ = saved_tx.send(writer.save_chat(1, &meta(1), &later, mark));
    });
    assert!(saved.recv_timeout(Duration::from_millis(300)).is_err(), "a chat wrote its files during the copy");
    go_tx.send(()).expect("go"); // ok: test
    backup.join().expect("backup thread").expect("backup"); // ok: test
    saved.recv_timeout(Duration::from_secs(10)).expect("the chat's snapshot once the copy is done").expect("save"); // ok: test

    let copy = tempfile::tempdir().expect("tmp"); // ok: test
    let bytes = out.lock().expect("lock").clone(); // ok: test
    tar::Archive::new(bytes.as_slice()).unpack(copy.path()).expect("unpack"); // ok: test
    let restored = open(copy.path());
    let entries = entries_of(&restored, 1);
    assert_eq!(entries, first, "the copy is of the moment the backup began");
    for (i, entry) in entries.iter().enumerate() {
        let msg = restored.read_message(1, entry.loc).expect("a copied message reads back"); // ok: test
        assert_eq!(msg.seq, i as u64 + 1);
    }
}

/// A bare chat (no files: its catalog entry holds it) whose membership changed after the
/// catalog loads from its entry with the change folded in and still has no files; a bare
/// chat whose first message is in the tail gets its files from the next checkpoint, and the
/// catalog keeps which chats are bare across a restart. Fails if a chat with no files ignores
/// the metadata its entry gives (it is rebuilt from the log, and gets files).
#[test]
fn a_bare_chat_loads_from_its_catalog_entry_and_gets_files_with_its_first_message() {
    let dir = tempfile::tempdir().expect("tmp"); // ok: test
    let bare = |pos: Pos| {
        let mut catalog = catalog(pos, &[1, 2]);
        for entry in &mut catalog.chats {
            entry.bare = Some(meta(entry.chat).created_at);
        }
        catalog
    };
    let joined = UserId::parse("v", 64).expect("id"); // ok: test
    let message;
    {
        let store = open(dir.path());
        create(&store, 1);
        create(&store, 2);
        let pos = block_on(store.mark()).expect("mark"); // ok: test
        store.save_catalog(&bare(pos)).expect("catalog"); // ok: test
        let edit = Record::Member { chat: 1, edit: MemberEdit::Add(joined.clone()) };
        block_on(store.append_durable(&edit)).expect("join"); // ok: test
        message = send(&store, 2, 1..=1);
    }
    let (store, recovered) = Store::open(&options(dir.path())).expect("open"); // ok: test
    assert!(recovered.catalog.chats.iter().all(|e| e.bare == Some(0)), "{:?}", recovered.catalog.chats);
    let loaded = store.load_chat(1, Some(&meta(1))).expect("load"); // ok: test
    assert!(!loaded.filed && loaded.snapshot.entries.is_empty());
    assert!(loaded.snapshot.meta.user_ids.contains(&joined), "the join after the catalog is folded in");
    assert!(!store.layout.head(1).exists() && !store.layout.index(1).exists(), "a bare chat has no files");
    // Chat 2, loaded by nobody: the checkpoint folds its message into files of its own.
    let pos = block_on(store.mark()).expect("mark"); // ok: test
    store.save_catalog(&bare(pos)).expect("catalog"); // ok: test
    assert!(store.layout.head(2).exists() && store.layout.index(2).exists(), "its first message gives it files");
    assert!(!store.layout.head(1).exists());
    drop(store);
    let store = open(dir.path());
    let loaded = store.load_chat(2, Some(&meta(2))).expect("load"); // ok: test
    assert_eq!(loaded.snapshot.entries, message);
}
