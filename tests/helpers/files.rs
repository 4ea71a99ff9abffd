//! What is on disk under a data dir: every file, the files holding some bytes, the chats'
//! snapshot files.

use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// How many files under `dir` contain `needle`, byte for byte.
pub fn grep(dir: &Path, needle: &str) -> usize {
    files_under(dir)
        .iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .count()
}

/// The chats' metadata snapshots under data dir `data` (`snap/chat-*.meta`, one per chat).
pub fn snapshot_files(data: &Path) -> Vec<PathBuf> {
    chat_files(data, ".meta")
}

/// The chats' index files under data dir `data` (`snap/chat-*.idx`).
pub fn index_files(data: &Path) -> Vec<PathBuf> {
    chat_files(data, ".idx")
}

fn chat_files(data: &Path, ext: &str) -> Vec<PathBuf> {
    files_under(&data.join("snap"))
        .into_iter()
        .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("chat-") && n.ends_with(ext)))
        .collect()
}
