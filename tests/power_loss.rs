//! Power loss (docs/API.md section 6, docs/DESIGN.md section 2): the real `chatd` binary on a
//! `powercut` filesystem (`powercut/`), which keeps only what was fsynced when the power is cut.
//!
//! The crash loop (`power/`) runs concurrent HTTP senders with unique client ids, retries of the
//! unanswered ones, and WebSocket subscribers resuming with `since`; cuts the power at a random
//! moment; kills chatd; restarts it on the surviving files; and checks that every acknowledged
//! message is there exactly once at its seq, seqs are gap-free, retries were stored once, and
//! every stream showed each message once and in order. With `fsync = "never"` it must find
//! losses, so it can never go blind. `CHATD_POWER_CYCLES` sets the length of the main loop
//! (default 20), `CHATD_POWER_SEED` replays a run; see RELIABILITY.md.
//!
//! Needs the powercut binary, `/dev/fuse` and `fusermount3`: without them each test is skipped
//! with a note, unless `CHATD_REQUIRE_POWERCUT=1` (as `.ci/run` sets).

mod helpers;
mod power;

use std::fs::{self, File};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use helpers::{can_run_powercut, sleep_ms, PowerCut};
use power::model::{check, Ack, ChatModel};
use power::{crash_loop, env_number, history, seed, Disk, Report, Variant};

/// One of these tests at a time: each runs a server and a filesystem, and the interval test's
/// timing must not depend on what else runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const INTERVAL_MS: u64 = 100;
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn variant(name: &'static str, fsync: &'static str, cycles: usize) -> Variant {
    Variant { name, fsync, fsync_interval_ms: INTERVAL_MS, cycles, chats: 3, senders: 4, cut_after_ms: (20, 2000) }
}

/// The filesystem itself: what survives a cut is what was synced, and the faults fire.
#[test]
fn powercut_keeps_exactly_what_was_synced_and_injects_faults() {
    if !can_run_powercut("the powercut test") {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    fs::create_dir(&backing).and_then(|()| fs::create_dir(&mnt)).expect("create dirs");
    fs::write(backing.join("kept"), "old").expect("write kept");
    let mut pc = PowerCut::mount(&backing, &mnt);
    let sync = |path: &std::path::Path| File::open(path).and_then(|d| d.sync_all()).expect("fsync a dir");

    fs::create_dir(mnt.join("d")).expect("mkdir");
    sync(&mnt);
    let mut f = File::create(mnt.join("d/synced")).expect("create");
    f.write_all(b"synced").and_then(|()| f.sync_data()).expect("write, fdatasync");
    sync(&mnt.join("d"));
    f.write_all(b" unsynced").expect("write");
    fs::write(mnt.join("d/unsynced-entry"), "x").expect("write");
    File::open(mnt.join("d/unsynced-entry")).and_then(|f| f.sync_all()).expect("fsync the file, not its dir");
    fs::rename(mnt.join("kept"), mnt.join("renamed")).expect("rename");
    assert_eq!(fs::read(mnt.join("d/synced")).expect("read"), b"synced unsynced", "the mount shows the current bytes");

    pc.command("eio-fsync 1 d/synced").expect("eio-fsync");
    assert_eq!(f.sync_data().map_err(|e| e.raw_os_error()), Err(Some(EIO)), "the armed fsync fails");
    f.sync_data().expect("the next fsync succeeds (without making the bytes durable)");
    pc.command("flip d/synced 0 2").expect("flip");
    assert_eq!(&fs::read(mnt.join("d/synced")).expect("read")[..3], b"rxn", "bits 0 of bytes 0 and 1 flipped");
    let used = pc.counter("used-bytes");
    assert_eq!(pc.counter("failed-fsyncs"), 1);
    pc.command(&format!("enospc {}", used + 10)).expect("enospc");
    let full = fs::write(mnt.join("big"), [0u8; 100]).map_err(|e| e.raw_os_error());
    assert_eq!(full, Err(Some(ENOSPC)), "ENOSPC past the limit");
    pc.command("clear").expect("clear");
    assert_eq!(&fs::read(mnt.join("d/synced")).expect("read")[..3], b"syn", "clear disarms the flip");
    assert!(pc.command("no-such-command").is_err());

    pc.cut();
    assert!(fs::metadata(mnt.join("d")).is_err(), "frozen after the cut");
    drop(f);
    pc.unmount();
    assert_eq!(fs::read(backing.join("kept")).expect("kept"), b"old", "the rename was never made durable");
    assert!(!backing.join("renamed").exists());
    assert_eq!(fs::read(backing.join("d/synced")).expect("synced"), b"synced", "only the synced bytes");
    assert!(!backing.join("d/unsynced-entry").exists(), "its directory was never fsynced after the create");
    assert!(!backing.join("big").exists());
}

/// The loop of issue 10 under `fsync = "always"`: nothing acknowledged is ever lost, doubled or
/// moved, and every stream shows each message once, in order.
#[actix_web::test]
#[allow(clippy::await_holding_lock)] // each test has its own thread and runtime; the lock only serializes them
async fn every_acknowledged_message_survives_power_cuts() {
    if !can_run_powercut("the crash loop") {
        return;
    }
    let _serial = one_at_a_time();
    let cycles = env_number("CHATD_POWER_CYCLES", 20);
    let report = crash_loop(&variant("fsync=always", "always", cycles), seed()).await;
    assert!(report.acked > 0, "the loop acknowledged nothing: {}", report.summary());
    assert!(report.clean(None), "{}", report.summary());
}

/// The self-check: without fsync a cut must lose acknowledged messages, and the loop must say so.
#[actix_web::test]
#[allow(clippy::await_holding_lock)] // see above
async fn without_fsync_the_crash_loop_reports_lost_messages() {
    if !can_run_powercut("the crash loop's self-check") {
        return;
    }
    let _serial = one_at_a_time();
    let report = crash_loop(&variant("fsync=never", "never", 4), seed()).await;
    assert!(!report.lost.is_empty(), "the harness is blind: fsync = \"never\" lost nothing: {}", report.summary());
}

/// `fsync = "interval"`: a cut may lose the messages of the last interval, nothing acknowledged
/// well before it, and never holds a chat out of service.
#[actix_web::test]
#[allow(clippy::await_holding_lock)] // see above
async fn interval_fsync_loses_at_most_the_last_interval_and_holds_no_chat_out() {
    if !can_run_powercut("the interval crash loop") {
        return;
    }
    let _serial = one_at_a_time();
    let report = crash_loop(&variant("fsync=interval", "interval", 8), seed()).await;
    // Two intervals, and a little for the cut itself on a busy machine.
    let window = Duration::from_millis(2 * INTERVAL_MS + 100);
    let old = report.lost_older_than(window);
    assert!(
        report.clean(Some(window)),
        "{} lost messages acknowledged more than {window:?} before their cut; {}",
        old.len(),
        report.summary()
    );
}

/// A cut soon after the very first start, on an empty disk: the data dir and its subdirectories
/// must be durable before anything is acknowledged.
#[actix_web::test]
#[allow(clippy::await_holding_lock)] // see above
async fn a_cut_right_after_the_first_start_loses_nothing_acknowledged() {
    if !can_run_powercut("the first-start cut") {
        return;
    }
    let _serial = one_at_a_time();
    let disk = Disk::new("always", INTERVAL_MS);
    let mut pc = disk.mount();
    let chatd = disk.start().await;
    let mut model = ChatModel::new(chatd.api.new_chat(&["u", "v"]).await);
    for i in 0..5 {
        let client_id = format!("first-{i}");
        let seq = chatd.api.send_ok(&model.id, &client_id).await;
        model.acked.insert(client_id, Ack { seq, at: Instant::now() });
    }
    sleep_ms(50).await;
    pc.cut();
    let cut = Instant::now();
    chatd.kill9();
    pc.unmount();

    let pc = disk.mount();
    let chatd = disk.start().await;
    let mut report = Report { cycles: 1, acked: model.acked.len(), ..Report::default() };
    let served = history(&chatd.api, &model.id).await;
    check(0, &mut model, served, cut, &mut report);
    drop(chatd);
    pc.unmount();
    println!("first start: {}", report.summary());
    assert!(report.clean(None), "{}", report.summary());
}
