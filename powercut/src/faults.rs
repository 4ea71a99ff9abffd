//! The faults injected on demand: a failing fsync, a full disk, a flipped bit on read.
//!
//! Each is armed by a control command (see `control.rs`) and stays until `clear`, except the
//! failing fsync, which fires once.

use crate::tree::Ino;

/// The `nth` fsync of a regular file from now (of `ino` only, if given) fails with EIO.
pub struct FailFsync {
    pub nth: u64,
    pub ino: Option<Ino>,
    pub seen: u64,
}

/// Reads of `ino` see the lowest bit of each byte in `[start, end)` flipped.
pub struct Flip {
    pub ino: Ino,
    pub start: u64,
    pub end: u64,
}

#[derive(Default)]
pub struct Faults {
    pub fail_fsync: Option<FailFsync>,
    /// Writes and truncates that would take the files past this many bytes fail with ENOSPC.
    pub space: Option<u64>,
    pub flips: Vec<Flip>,
}

impl Faults {
    /// Counts an fsync of file `ino`: whether it is the one to fail (it fails once).
    pub fn fsync_fails(&mut self, ino: Ino) -> bool {
        let Some(fail) = self.fail_fsync.as_mut() else {
            return false;
        };
        if fail.ino.is_some_and(|only| only != ino) {
            return false;
        }
        fail.seen += 1;
        if fail.seen < fail.nth {
            return false;
        }
        self.fail_fsync = None;
        true
    }

    /// Whether the files may grow from `used` bytes by `growth`.
    pub fn has_room(&self, used: u64, growth: u64) -> bool {
        self.space.is_none_or(|limit| used.saturating_add(growth) <= limit)
    }

    /// Flips the armed bits of `buf`, which was read from `ino` at `offset`.
    pub fn flip(&self, ino: Ino, offset: u64, buf: &mut [u8]) {
        for flip in self.flips.iter().filter(|f| f.ino == ino) {
            let start = flip.start.max(offset);
            let end = flip.end.min(offset + buf.len() as u64);
            for at in start..end {
                buf[(at - offset) as usize] ^= 1;
            }
        }
    }

    pub fn describe(&self) -> String {
        let fail = match &self.fail_fsync {
            Some(f) => format!("fsync {} of {}", f.nth, f.ino.map_or("any file".into(), |i| format!("inode {i}"))),
            None => "none".into(),
        };
        let space = self.space.map_or("unlimited".into(), |s| s.to_string());
        let flips: Vec<String> =
            self.flips.iter().map(|f| format!("inode {} bytes {}..{}", f.ino, f.start, f.end)).collect();
        format!("eio-fsync={fail} space={space} flips=[{}]", flips.join(", "))
    }
}
