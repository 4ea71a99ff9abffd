//! The control commands, one per line on stdin, each answered by one line on stdout that starts
//! with `ok` or `error`. The list is in README.md and [`HELP`].

use std::path::Path;

use crate::faults::{FailFsync, Flip};
use crate::fs::{lock, Shared};

pub const HELP: &str = "commands: cut | sync | eio-fsync N [PATH] | enospc BYTES | flip PATH OFFSET [LEN] | clear \
                        | status | quit";

/// What a line asks for, if not `quit`.
pub fn execute(state: &Shared, backing: &Path, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |at: usize, what: &str| -> Result<u64, String> {
        let word = words.get(at).ok_or_else(|| format!("missing {what}; {HELP}"))?;
        word.parse().map_err(|_| format!("{what} {word:?} is not a number"))
    };
    let mut s = lock(state);
    let inode = |s: &crate::fs::State, at: usize| -> Result<u64, String> {
        let path = words.get(at).ok_or_else(|| format!("missing PATH; {HELP}"))?;
        s.tree.resolve(path).map_err(|e| format!("{path}: {}", std::io::Error::from_raw_os_error(e)))
    };
    match words.first().copied().unwrap_or("") {
        "cut" => {
            s.frozen = true;
            s.tree
                .write_durable(backing)
                .map_err(|e| format!("writing the synced state to {}: {e}", backing.display()))?;
            Ok(format!("cut: frozen; {} holds only what was synced", backing.display()))
        }
        "sync" if s.frozen => Err("frozen by a cut".into()),
        "sync" => {
            s.tree.sync_all();
            Ok("synced everything".into())
        }
        "eio-fsync" => {
            let nth = number(1, "N")?.max(1);
            let ino = if words.len() > 2 { Some(inode(&s, 2)?) } else { None };
            s.faults.fail_fsync = Some(FailFsync { nth, ino, seen: 0 });
            Ok(s.faults.describe())
        }
        "enospc" => {
            s.faults.space = Some(number(1, "BYTES")?);
            Ok(s.faults.describe())
        }
        "flip" => {
            let ino = inode(&s, 1)?;
            let start = number(2, "OFFSET")?;
            let len = if words.len() > 3 { number(3, "LEN")? } else { 1 };
            s.faults.flips.push(Flip { ino, start, end: start.saturating_add(len) });
            Ok(s.faults.describe())
        }
        "clear" => {
            s.faults = Default::default();
            Ok(s.faults.describe())
        }
        "status" => Ok(format!(
            "frozen={} file-fsyncs={} dir-fsyncs={} failed-fsyncs={} used-bytes={} {}",
            s.frozen,
            s.file_fsyncs,
            s.dir_fsyncs,
            s.failed_fsyncs,
            s.tree.used_bytes(),
            s.faults.describe()
        )),
        "help" => Ok(HELP.into()),
        other => Err(format!("unknown command {other:?}; {HELP}")),
    }
}
