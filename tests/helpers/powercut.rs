//! The power-loss filesystem of `powercut/` for tests: [`PowerCut`] mounts a directory over a
//! backing one and sends its control commands (`cut`, the faults; see `powercut/README.md`).
//!
//! It needs the built binary (`cargo build --release --manifest-path powercut/Cargo.toml`),
//! `/dev/fuse` and `fusermount3` (Debian's `fuse3`). Without them a test is skipped with a note
//! ([`can_run_powercut`]), unless `CHATD_REQUIRE_POWERCUT=1` (as `.ci/run` sets), which makes a
//! missing piece a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Set to `1`, a missing powercut piece fails the tests that need it instead of skipping them.
pub const REQUIRE_POWERCUT: &str = "CHATD_REQUIRE_POWERCUT";

/// How long a control command may take to answer.
const ANSWER: Duration = Duration::from_secs(20);

pub fn powercut_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("powercut/target/release/powercut")
}

/// What is missing to mount a powercut filesystem, if anything.
pub fn powercut_missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !powercut_binary().exists() {
        missing.push(
            "powercut/target/release/powercut (cargo build --release --manifest-path powercut/Cargo.toml)".into(),
        );
    }
    if !Path::new("/dev/fuse").exists() {
        missing.push("/dev/fuse".into());
    }
    if Command::new("fusermount3").arg("-V").output().is_err() {
        missing.push("fusermount3 (apt-get install -y fuse3)".into());
    }
    missing
}

/// Whether `test` can run: yes when nothing is missing; otherwise it is skipped with a note, or
/// fails under `CHATD_REQUIRE_POWERCUT=1`.
#[track_caller]
pub fn can_run_powercut(test: &str) -> bool {
    let missing = powercut_missing();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(REQUIRE_POWERCUT).as_deref() == Ok("1") {
        panic!("{test} needs {} ({REQUIRE_POWERCUT}=1)", missing.join(" and "));
    }
    eprintln!("SKIPPED {test}: it needs {}; install them (see .ci/run) to run it", missing.join(" and "));
    false
}

/// A mounted powercut filesystem. Dropping it unmounts it (lazily, whatever holds it).
pub struct PowerCut {
    pub mountpoint: PathBuf,
    pub backing: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl PowerCut {
    /// Mounts a fresh power-loss filesystem at `dir/mnt` over `dir/backing`: the mount and the
    /// path to serve from.
    pub fn mount_in(dir: &Path) -> (PowerCut, std::path::PathBuf) {
        let (backing, mnt) = (dir.join("backing"), dir.join("mnt"));
        std::fs::create_dir_all(&backing).expect("backing"); // ok: test
        std::fs::create_dir_all(&mnt).expect("mountpoint"); // ok: test
        (PowerCut::mount(&backing, &mnt), mnt)
    }

    /// Mounts `mountpoint` over `backing` (both must exist) and waits until it is ready.
    pub fn mount(backing: &Path, mountpoint: &Path) -> PowerCut {
        let mut child = Command::new(powercut_binary())
            .arg(backing)
            .arg(mountpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", powercut_binary().display()));
        let stdout = child.stdout.take().expect("powercut's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut pc = PowerCut {
            mountpoint: mountpoint.to_path_buf(),
            backing: backing.to_path_buf(),
            child: Some(child),
            stdin,
            lines,
        };
        let ready = pc.answer();
        assert_eq!(ready, "ready", "powercut did not mount {}", mountpoint.display());
        pc
    }

    fn answer(&mut self) -> String {
        self.lines.recv_timeout(ANSWER).unwrap_or_else(|e| panic!("no answer from powercut within {ANSWER:?}: {e}"))
    }

    /// Sends one control command: `Ok` with the text after `ok`, or `Err` with the text after `error`.
    pub fn command(&mut self, line: &str) -> Result<String, String> {
        let stdin = self.stdin.as_mut().expect("a mounted powercut");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("write to powercut");
        let answer = self.answer();
        if let Some(ok) = answer.strip_prefix("ok") {
            Ok(ok.trim().to_owned())
        } else {
            Err(answer.strip_prefix("error").unwrap_or(&answer).trim().to_owned())
        }
    }

    /// A number of `status`, such as `file-fsyncs` or `dir-fsyncs`.
    pub fn counter(&mut self, name: &str) -> u64 {
        let status = self.command("status").unwrap_or_else(|e| panic!("powercut status: {e}"));
        let prefix = format!("{name}=");
        let found = status.split_whitespace().find_map(|word| word.strip_prefix(prefix.as_str()));
        found.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no {name} in powercut's status: {status}"))
    }

    /// Cuts the power: the mount freezes and the backing dir holds only what was synced.
    pub fn cut(&mut self) {
        self.command("cut").unwrap_or_else(|e| panic!("powercut cut: {e}"));
    }

    /// Unmounts and waits for powercut to exit (after a flush of everything, unless cut).
    pub fn unmount(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Still mounted only if powercut could not unmount: detach it, lazily.
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3").arg("-u").arg("-z").arg(&self.mountpoint).status();
        }
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        self.finish();
    }
}

fn is_mounted(mountpoint: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let path = mountpoint.to_string_lossy();
    mounts.lines().any(|line| line.split(' ').nth(1) == Some(path.as_ref()))
}
