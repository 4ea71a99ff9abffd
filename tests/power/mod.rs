//! The crash loop: the real `chatd` binary on a powercut mount under concurrent load, the power
//! cut at a random moment, a restart on the surviving files, and a check of every promise, many
//! times over on the same data.
//!
//! - `load.rs`: the senders, the retrier and the stream subscribers of one cycle;
//! - `model.rs`: what was acknowledged and streamed, and the check against what is served.
//!
//! The cut moments come from a seeded RNG: the seed is printed, and `CHATD_POWER_SEED` replays it.

mod load;
pub mod model;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{free_port, sleep_ms, Api, Chatd, PowerCut};
pub use model::Report;
use model::{check, merge_stream, Ack, ChatModel};

/// How one loop runs.
pub struct Variant {
    pub name: &'static str,
    /// `storage.fsync`: "always", "interval" or "never".
    pub fsync: &'static str,
    pub fsync_interval_ms: u64,
    pub cycles: usize,
    pub chats: usize,
    pub senders: usize,
    /// The cut comes this many ms (picked uniformly) after the load starts.
    pub cut_after_ms: (u64, u64),
}

/// A small seeded generator (splitmix64): the same seed, the same cut moments and choices.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }
}

/// `CHATD_POWER_SEED` if set (decimal or 0x-hex), else one from the clock.
pub fn seed() -> u64 {
    match std::env::var("CHATD_POWER_SEED") {
        Ok(s) => {
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("CHATD_POWER_SEED={s:?} is not a number"))
        }
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    }
}

/// `name` from the environment as a number, else `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// A data dir on a powercut mount: the backing dir, the mountpoint, and chatd's settings for it.
pub struct Disk {
    pub dir: tempfile::TempDir,
    pub backing: PathBuf,
    pub mnt: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Disk {
    /// A fresh one, with `fsync` and the loop's settings: checkpoints every second (and every
    /// 64 KiB of log) and small log
    /// segments, so cuts fall among snapshot renames and segment creations too.
    /// With `CHATD_POWER_KEEP` set, the dir (chatd's log, the backing files) stays for a look.
    pub fn new(fsync: &str, fsync_interval_ms: u64) -> Disk {
        let mut dir = tempfile::tempdir().expect("temp dir");
        if std::env::var_os("CHATD_POWER_KEEP").is_some() {
            dir.disable_cleanup(true);
            println!("keeping {} (CHATD_POWER_KEEP)", dir.path().display());
        }
        let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
        std::fs::create_dir(&backing).and_then(|()| std::fs::create_dir(&mnt)).expect("create dirs");
        let env = vec![
            ("CHATD__STORAGE__DATA_DIR", mnt.join("data").to_string_lossy().into_owned()),
            ("CHATD__STORAGE__FSYNC", fsync.to_owned()),
            ("CHATD__STORAGE__FSYNC_INTERVAL_MS", fsync_interval_ms.to_string()),
            ("CHATD__STORAGE__CHECKPOINT_INTERVAL_SECS", "1".to_owned()),
            // ... and by log bytes, so cuts fall among index appends too.
            ("CHATD__STORAGE__CHECKPOINT_BYTES", (64 << 10).to_string()),
            ("CHATD__STORAGE__SEGMENT_BYTES", (256 << 10).to_string()),
        ];
        Disk { dir, backing, mnt, env }
    }

    pub fn mount(&self) -> PowerCut {
        PowerCut::mount(&self.backing, &self.mnt)
    }

    /// chatd on the mounted data dir, on a fresh port.
    pub async fn start(&self) -> Chatd {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Chatd::start_with(self.dir.path(), free_port(), &env).await
    }
}

/// Every message of `chat`, or the status (0: no answer) and what it answered instead of 200.
pub async fn history(api: &Api, chat: &str) -> Result<Vec<Value>, (u16, String)> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().and_then(|m| m["seq"].as_u64()).unwrap_or(0);
        let body = json!({ "chat_id": chat, "after_seq": after, "limit": 1000 });
        match api.post("/chat/History", body).await.map_err(|e| (0, e))? {
            (200, page) => match page["messages"].as_array() {
                Some(page) if !page.is_empty() => all.extend(page.iter().cloned()),
                _ => return Ok(all),
            },
            (status, body) => return Err((status, format!("History answered {status} {body}"))),
        }
    }
}

/// Waits for the moment of the cut: a random time into the load, or (every other cycle, at
/// random) just after one of the next few directory fsyncs, that is a snapshot's rename or a new
/// log segment made durable, where a store's ordering mistakes show. Says which it was.
async fn wait_for_cut(pc: &mut PowerCut, rng: &mut Rng, variant: &Variant) -> String {
    let started = Instant::now();
    let limit = Duration::from_millis(variant.cut_after_ms.1);
    if rng.below(2) == 0 {
        sleep_ms(rng.between(variant.cut_after_ms)).await;
        return format!("{} ms into the load", started.elapsed().as_millis());
    }
    let (nth, then) = (1 + rng.below(3), rng.below(40));
    let base = pc.counter("dir-fsyncs");
    while pc.counter("dir-fsyncs") < base + nth && started.elapsed() < limit * 2 {
        sleep_ms(2).await;
    }
    sleep_ms(then).await;
    format!("{} ms into the load, {then} ms after directory fsync {nth}", started.elapsed().as_millis())
}

async fn check_all(api: &Api, chats: &mut [ChatModel], cut: Instant, report: &mut Report) {
    for (n, model) in chats.iter_mut().enumerate() {
        let served = history(api, &model.id).await;
        check(n, model, served, cut, report);
    }
}

/// Runs `variant` from `seed` and reports what it found; panics only when the harness itself
/// cannot go on (chatd or powercut not starting).
pub async fn crash_loop(variant: &Variant, seed: u64) -> Report {
    println!("{}: seed {seed:#x} ({} cycles, fsync = {:?})", variant.name, variant.cycles, variant.fsync);
    let mut rng = Rng::new(seed);
    let disk = Disk::new(variant.fsync, variant.fsync_interval_ms);
    let mut report = Report::default();

    // A clean first start, stopped gracefully: the loop starts from a durable data dir (a cut
    // right after a first start is a test of its own).
    let pc = disk.mount();
    let chatd = disk.start().await;
    let mut chats = Vec::new();
    for n in 0..variant.chats {
        chats.push(ChatModel::new(chatd.api.new_chat(&["u", &format!("peer{n}")]).await));
    }
    let (status, _) = chatd.sigterm().await;
    assert!(status.success(), "chatd's first stop: {status}");
    pc.unmount();
    let ids: Vec<String> = chats.iter().map(|c| c.id.clone()).collect();

    let mut cut = Instant::now();
    let started = Instant::now();
    for cycle in 1..=variant.cycles {
        let mut pc = disk.mount();
        let chatd = disk.start().await;
        check_all(&chatd.api, &mut chats, cut, &mut report).await;
        if !report.unavailable.is_empty() {
            println!("{}: cycle {cycle}: a chat is unavailable; stopping the loop", variant.name);
            break;
        }
        report.cycles = cycle;

        let port = chatd.api.port();
        let subscribers: Vec<_> =
            chats.iter().map(|c| load::subscriber(port, c.id.clone(), c.streamed.len() as u64, None)).collect();
        let pending: Vec<(usize, String)> = chats
            .iter_mut()
            .enumerate()
            .flat_map(|(n, c)| std::mem::take(&mut c.pending).into_iter().map(move |id| (n, id)))
            .collect();
        let mut senders = vec![load::retrier(chatd.api.clone(), ids.clone(), pending)];
        for task in 0..variant.senders {
            senders.push(load::sender(chatd.api.clone(), ids.clone(), cycle, task, Rng::new(rng.next())));
        }

        let moment = wait_for_cut(&mut pc, &mut rng, variant).await;
        pc.cut();
        cut = Instant::now();
        chatd.kill9();

        for task in senders {
            let sent = load::join(task, Duration::from_secs(30), "a sender").await;
            report.retried += sent.retried;
            for (n, client_id, seq, at) in sent.acked {
                chats[n].pending.remove(&client_id);
                if chats[n].acked.insert(client_id, Ack { seq, at }).is_none() {
                    report.acked += 1;
                }
            }
            for (n, client_id) in sent.unanswered {
                chats[n].pending.insert(client_id);
            }
            report.refused.extend(sent.errors.into_iter().filter(|(at, _)| *at < cut).map(|(_, e)| e));
        }
        for (n, task) in subscribers.into_iter().enumerate() {
            let streamed = load::join(task, Duration::from_secs(30), "a subscriber").await;
            merge_stream(n, &mut chats[n], streamed.since, &streamed.frames, &mut report);
            report.refused.extend(streamed.errors.into_iter().filter(|(at, _)| *at < cut).map(|(_, e)| e));
        }
        pc.unmount();
        if cycle % 10 == 0 || cycle == variant.cycles {
            let secs = started.elapsed().as_secs();
            println!("{}: cycle {cycle} ({secs} s): cut {moment}; {} acknowledged so far", variant.name, report.acked);
        }
    }

    if report.unavailable.is_empty() {
        last_restart(&disk, &mut chats, cut, &mut report).await;
    }
    println!("{}: {} (seed {seed:#x}, {} s)", variant.name, report.summary(), started.elapsed().as_secs());
    report
}

/// The last restart: check it, then let every stream catch up to the end of its chat.
async fn last_restart(disk: &Disk, chats: &mut [ChatModel], cut: Instant, report: &mut Report) {
    let pc = disk.mount();
    let chatd = disk.start().await;
    check_all(&chatd.api, chats, cut, report).await;
    if report.unavailable.is_empty() {
        for (n, model) in chats.iter_mut().enumerate() {
            let end = history(&chatd.api, &model.id).await.map_or(0, |h| h.len() as u64);
            let since = model.streamed.len() as u64;
            if end > since {
                let task = load::subscriber(chatd.api.port(), model.id.clone(), since, Some(end));
                let streamed = load::join(task, Duration::from_secs(60), "the last subscriber").await;
                report.refused.extend(streamed.errors.into_iter().map(|(_, e)| e));
                merge_stream(n, model, since, &streamed.frames, report);
                if (model.streamed.len() as u64) < end {
                    report
                        .stream_order
                        .push(format!("chat {n}: the last stream stopped at {} of {end}", model.streamed.len()));
                }
            }
        }
    }
    drop(chatd);
    pc.unmount();
}
