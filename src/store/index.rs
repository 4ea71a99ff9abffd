//! A chat's index file: where each of its messages lies in the log, appended to, never rewritten.
//!
//! ```text
//! snap/chat-000000000000002a.idx   frame(IndexChunk { first_seq: 1, entries })   seqs 1..=n
//!                                  frame(IndexChunk { first_seq: n + 1, .. })     the next checkpoint's
//!                                  ...
//! ```
//! Each chunk is one checksummed frame (`codec.rs`) holding the entries one checkpoint added, so
//! a checkpoint costs what changed since the last one, not the chat's length. An append is
//! written at the end of the last whole chunk and fsynced before the checkpoint that needs it
//! goes on; a crash during it leaves a torn last chunk, which reading stops before and the next
//! append cuts off. The log stays the one copy of every message and the truth: what an index
//! lacks at its end, recovery replays from the log since the catalog's position (every entry
//! before that position was fsynced here before the catalog moved). A chunk that fails its
//! checksum before a whole one, one whose seqs do not follow on, or an index shorter than the
//! count its chat's metadata snapshot was written with after the append (`ChatHead::indexed`:
//! a cut at a chunk boundary looks whole) is damage: the chat is rebuilt from the log, as for
//! a damaged snapshot.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::codec::{self, Frame};
use super::record::{ChatNo, IndexChunk, IndexChunkHead, IndexEntry, IndexMark};
use super::{io_error, sync_dir, StoreError};

/// What reading an index file found.
pub struct Read {
    pub entries: Vec<IndexEntry>,
    /// The whole chunks: where the next append goes.
    pub mark: IndexMark,
    /// Bytes after the last whole chunk: a torn append (cut off by the next one).
    pub torn: u64,
}

/// Reads every entry; with `heads_only`, only counts them (what an append needs to know).
pub fn read(path: &Path, chat: ChatNo, heads_only: bool) -> Result<Read, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(e)),
    };
    let damaged = |why: &str| StoreError::Corrupt(format!("index {} of chat {chat}: {why}", path.display()));
    let mut found = Read { entries: Vec::new(), mark: IndexMark::default(), torn: 0 };
    let mut at = 0;
    while at < bytes.len() {
        let (payload, len) = match codec::read_frame(&bytes[at..]) {
            Frame::Valid { payload, len, .. } => (payload, len),
            // A torn append is always the last thing in the file: nothing whole may follow it.
            _ if !whole_chunk_after(&bytes, at + 1) => {
                found.torn = (bytes.len() - at) as u64;
                break;
            }
            _ => return Err(damaged("a damaged chunk before a whole one")),
        };
        let head: IndexChunkHead = codec::decode(payload)?;
        if head.chat != chat || head.first_seq != found.mark.entries + 1 {
            return Err(damaged("a chunk out of sequence"));
        }
        if !heads_only {
            let chunk: IndexChunk = codec::decode(payload)?;
            found.entries.extend(chunk.entries);
        }
        found.mark.entries += head.count;
        at += len;
        found.mark.bytes = at as u64;
    }
    Ok(found)
}

fn whole_chunk_after(bytes: &[u8], from: usize) -> bool {
    (from..bytes.len()).any(|at| matches!(codec::read_frame(&bytes[at..]), Frame::Valid { .. }))
}

/// Appends `entries` (seqs `mark.entries + 1..`) at `mark`, cutting off whatever follows it (a
/// torn append), and fsyncs. Answers the new mark. Blocking.
pub fn append(path: &Path, chat: ChatNo, mark: IndexMark, entries: &[IndexEntry]) -> Result<IndexMark, StoreError> {
    if entries.is_empty() {
        return Ok(mark);
    }
    let chunk = IndexChunk { chat, first_seq: mark.entries + 1, entries: entries.to_vec() };
    let frame = codec::frame(&chunk, chat)?;
    let created = !path.exists();
    let file = OpenOptions::new().create(true).write(true).truncate(false).open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    if len != mark.bytes {
        file.set_len(mark.bytes).map_err(io_error)?;
    }
    file.write_all_at(&frame, mark.bytes).map_err(io_error)?;
    file.sync_data().map_err(io_error)?;
    if created {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(IndexMark { entries: mark.entries + entries.len() as u64, bytes: mark.bytes + frame.len() as u64 })
}

/// Replaces the whole index with `entries` (a rebuilt or converted chat): written beside it,
/// fsynced and renamed over it, so a crash leaves the old index or the new one. Blocking.
pub fn replace(path: &Path, chat: ChatNo, entries: &[IndexEntry]) -> Result<IndexMark, StoreError> {
    let tmp = path.with_extension("idx.tmp");
    let _ = fs::remove_file(&tmp);
    let mark = append(&tmp, chat, IndexMark::default(), entries)?;
    if mark.bytes == 0 {
        File::create(&tmp).and_then(|f| f.sync_all()).map_err(io_error)?;
    }
    fs::rename(&tmp, path).map_err(io_error)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(mark)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClientId;
    use crate::store::record::{Loc, Pos};

    fn entries(from: u64, n: u64) -> Vec<IndexEntry> {
        (from..from + n)
            .map(|seq| IndexEntry {
                loc: Loc { pos: Pos { segment: 1, offset: seq * 100 }, len: 100 },
                client_id: ClientId::parse(&format!("c{seq}"), 64).expect("id"), // ok: test
                id: None,
            })
            .collect()
    }

    #[test]
    fn appends_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tmp"); // ok: test
        let path = dir.path().join("chat.idx");
        let mark = append(&path, 7, IndexMark::default(), &entries(1, 3)).expect("append"); // ok: test
        let mark = append(&path, 7, mark, &entries(4, 2)).expect("append"); // ok: test
        let read = read(&path, 7, false).expect("read"); // ok: test
        assert_eq!(read.entries, entries(1, 5));
        assert_eq!((read.mark, read.torn), (mark, 0));
        assert_eq!(super::read(&path, 7, true).expect("heads").mark, mark); // ok: test
    }

    /// A crash in the middle of an append: the whole chunks before it still read, and the next
    /// append cuts the torn one off. Without the cut, the next chunk would follow garbage and
    /// the index would read as damaged.
    #[test]
    fn a_torn_append_is_ignored_then_cut_off() {
        let dir = tempfile::tempdir().expect("tmp"); // ok: test
        let path = dir.path().join("chat.idx");
        let mark = append(&path, 7, IndexMark::default(), &entries(1, 3)).expect("append"); // ok: test
        let full = append(&path, 7, mark, &entries(4, 3)).expect("append"); // ok: test
        for cut in [mark.bytes + 1, mark.bytes + 25, full.bytes - 1] {
            let file = OpenOptions::new().write(true).open(&path).expect("open"); // ok: test
            file.set_len(cut).expect("cut"); // ok: test
            let read = read(&path, 7, false).expect("a torn tail is no damage"); // ok: test
            assert_eq!(read.entries, entries(1, 3));
            assert_eq!((read.mark, read.torn), (mark, cut - mark.bytes));
        }
        let again = append(&path, 7, mark, &entries(4, 1)).expect("append"); // ok: test
        let read = read(&path, 7, false).expect("read"); // ok: test
        assert_eq!(read.entries, entries(1, 4));
        assert_eq!((read.mark, read.torn), (again, 0));
    }

    #[test]
    fn damage_before_a_whole_chunk_or_a_gap_in_seqs_is_corruption() {
        let dir = tempfile::tempdir().expect("tmp"); // ok: test
        let path = dir.path().join("chat.idx");
        let mark = append(&path, 7, IndexMark::default(), &entries(1, 3)).expect("append"); // ok: test
        append(&path, 7, mark, &entries(4, 3)).expect("append"); // ok: test
        let mut bytes = fs::read(&path).expect("read"); // ok: test
        bytes[30] ^= 1;
        fs::write(&path, &bytes).expect("write"); // ok: test
        assert!(matches!(read(&path, 7, false), Err(StoreError::Corrupt(_))));

        let gap = dir.path().join("gap.idx");
        let mark = append(&gap, 7, IndexMark::default(), &entries(1, 3)).expect("append"); // ok: test
        append(&gap, 7, IndexMark { entries: mark.entries + 1, ..mark }, &entries(5, 1)).expect("append"); // ok: test
        assert!(matches!(read(&gap, 7, false), Err(StoreError::Corrupt(_))));
        assert!(matches!(read(&gap, 8, false), Err(StoreError::Corrupt(_))), "another chat's index");
    }

    #[test]
    fn replace_starts_over() {
        let dir = tempfile::tempdir().expect("tmp"); // ok: test
        let path = dir.path().join("chat.idx");
        append(&path, 7, IndexMark::default(), &entries(1, 3)).expect("append"); // ok: test
        let mark = replace(&path, 7, &entries(1, 2)).expect("replace"); // ok: test
        let read = read(&path, 7, false).expect("read"); // ok: test
        assert_eq!((read.entries, read.mark), (entries(1, 2), mark));
        assert_eq!(replace(&path, 7, &[]).expect("empty").bytes, 0); // ok: test
        let read = super::read(&path, 7, false).expect("read"); // ok: test
        assert!(read.entries.is_empty());
        // ok: test
        // ok: test
    }
}
