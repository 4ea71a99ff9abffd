//! `powercut BACKING MOUNTPOINT`: a power-loss filesystem for crash tests.
//!
//! It mounts MOUNTPOINT (FUSE, through Debian's `fusermount3`) over the tree in BACKING and keeps
//! every write, truncate, create, rename and unlink in a volatile layer until the file (or, for an
//! entry, its directory) is fsynced (see `tree.rs`). `cut` on stdin "cuts the power": the
//! filesystem freezes (every later request fails with EIO) and BACKING is rewritten to hold
//! exactly what was synced, as a disk would after a power failure. Faults (a failing fsync, a full
//! disk, a flipped bit) are armed the same way; see README.md and `control.rs`.
//!
//! It prints `ready` once mounted; each command gets one answer line. `quit` (or the end of stdin)
//! unmounts and exits; if no cut came first, BACKING gets everything, as after a clean shutdown.

mod control;
mod faults;
mod fs;
mod tree;

use std::io::{self, BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fuser::{Config, MountOption};

use fs::{lock, PowerFs, State};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: powercut BACKING MOUNTPOINT   (then commands on stdin; {})", control::HELP);
        return ExitCode::from(2);
    };
    match run(backing, mountpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("powercut: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(backing: &Path, mountpoint: &Path) -> io::Result<()> {
    let owner = std::fs::metadata(backing)?;
    let tree = tree::Tree::load(backing)?;
    let state = Arc::new(Mutex::new(State {
        tree,
        faults: Default::default(),
        frozen: false,
        file_fsyncs: 0,
        dir_fsyncs: 0,
        failed_fsyncs: 0,
    }));
    let fs = PowerFs { state: state.clone(), uid: owner.uid(), gid: owner.gid() };
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("powercut".into()), MountOption::Subtype("powercut".into())];
    let session = fuser::spawn_mount(fs, mountpoint, &config)?;
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;

    for line in io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" {
            break;
        }
        match control::execute(&state, backing, line) {
            Ok(answer) => writeln!(out, "ok {answer}")?,
            Err(why) => writeln!(out, "error {why}")?,
        }
        out.flush()?;
    }

    // A clean shutdown: whatever was not cut is flushed, as an unmount would.
    let flushed = {
        let mut s = lock(&state);
        let clean = !s.frozen;
        s.frozen = true;
        if clean {
            s.tree.sync_all();
            s.tree.write_durable(backing)?;
        }
        clean
    };
    unmount(session, mountpoint);
    writeln!(out, "ok unmounted{}", if flushed { " after flushing everything" } else { "" })?;
    out.flush()
}

/// Unmounts, lazily if something still holds the mount; gives up waiting after 5 s.
fn unmount(session: fuser::BackgroundSession, mountpoint: &Path) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || drop(tx.send(session.umount_and_join())));
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        outcome => {
            eprintln!("powercut: unmount: {outcome:?}; detaching lazily");
            let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(mountpoint).status();
        }
    }
}
