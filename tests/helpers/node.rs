//! The Node scripts of `e2e/` (the browser test, the m3o client test): what they need, the
//! rule for a missing piece, and running one with a timeout.
//!
//! A test whose pieces are missing is skipped with a note, so `cargo test` passes on a fresh
//! machine; `.ci/run` installs them (`npm ci` in `e2e/`) and sets `CHATD_REQUIRE_BROWSER=1`,
//! which makes a missing piece a failure instead.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Set to `1`, a missing Node piece fails the tests that need it instead of skipping them.
pub const REQUIRE_NODE_TESTS: &str = "CHATD_REQUIRE_BROWSER";

/// `e2e/`: the Node scripts, their package.json and node_modules.
pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e")
}

/// What is missing to run a script of `e2e/` that imports `packages`: each one in
/// `e2e/node_modules`, and `node` itself.
pub fn node_missing(packages: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    for package in packages {
        if !e2e_dir().join("node_modules").join(package).exists() {
            missing.push(format!("e2e/node_modules/{package} (cd e2e && npm ci)"));
        }
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (Node 20 or later)".into());
    }
    missing
}

/// Whether `test` can run: yes when nothing is `missing`; otherwise it is skipped with a note,
/// or fails under `CHATD_REQUIRE_BROWSER=1`.
#[track_caller]
pub fn can_run(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    if std::env::var(REQUIRE_NODE_TESTS).as_deref() == Ok("1") {
        panic!("{test} needs {} ({REQUIRE_NODE_TESTS}=1)", missing.join(" and "));
    }
    eprintln!("SKIPPED {test}: it needs {}; install them (see .ci/run) to run it", missing.join(" and "));
    false
}

/// How a Node script ended and what it printed.
pub struct NodeRun {
    /// `None` when it was killed for running past its limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl NodeRun {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// How it ended, and when.
    pub fn ended(&self) -> String {
        let how = match self.status {
            Some(status) => status.to_string(),
            None => "killed: still running at its time limit".into(),
        };
        format!("{how} after {:.1} s", self.elapsed.as_secs_f64())
    }

    /// How it ended and everything it printed.
    pub fn report(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.ended(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    /// How it ended and what it printed on stderr (where the scripts say what failed), for a
    /// failure message; a test prints [`NodeRun::report`] before it.
    pub fn failure(&self) -> String {
        format!("{}; stderr:\n{}\n(the whole output is above)", self.ended(), self.stderr.trim_end())
    }
}

/// Runs `node script args..` in `e2e/` with `envs` added (and no other `CHATD_*` variable, so
/// the script sees only what the test gives it), killing it after `limit`. It runs off this
/// thread: the chat actors of the server under test run on it.
pub async fn run_node(script: &str, args: &[&str], envs: &[(&str, &str)], limit: Duration) -> NodeRun {
    let mut cmd = Command::new("node");
    cmd.arg(script).args(args).current_dir(e2e_dir()).stdin(Stdio::null());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHATD")) {
        cmd.env_remove(key);
    }
    cmd.envs(envs.iter().copied());
    let script = script.to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        // Files, not pipes: a chatty script can never block on a full pipe.
        let (mut out, mut err) =
            (tempfile::tempfile().expect("a temp file"), tempfile::tempfile().expect("a temp file"));
        cmd.stdout(out.try_clone().expect("a file handle")).stderr(err.try_clone().expect("a file handle"));
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("node {script}: {e}"));
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        NodeRun { status, stdout: read_all(&mut out), stderr: read_all(&mut err), elapsed }
    })
    .await
    .expect("the node task")
}

fn read_all(file: &mut File) -> String {
    let mut bytes = Vec::new();
    file.rewind().and_then(|_| file.read_to_end(&mut bytes)).expect("read the output");
    String::from_utf8_lossy(&bytes).into_owned()
}
