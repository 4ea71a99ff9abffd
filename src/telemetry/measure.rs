//! The metrics: their names, the calls that record them, and the Prometheus text they render to.
//!
//! One recorder per process (the `metrics` crate's global one), installed by [`install`] when a
//! server is built; before that every call is a no-op. Histograms keep their samples until the
//! next upkeep, so a thread runs it every few seconds: memory stays bounded with nobody scraping.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by endpoint (`service.Endpoint`, or the page's name) and HTTP status.
pub const REQUESTS: &str = "chatd_requests_total";
/// Seconds from a send's request to its (durable) answer: `chat.Send` and `chats.SendMessage`.
pub const SEND_SECONDS: &str = "chatd_send_seconds";
/// Records written to the log per batch (one write, at most one fsync: group commit's width).
pub const BATCH_RECORDS: &str = "chatd_log_batch_records";
/// Seconds each fsync of the log took.
pub const FSYNC_SECONDS: &str = "chatd_log_fsync_seconds";
/// Whether the log takes writes (1), or is out of service after a failed write or fsync (0).
pub const LOG_WRITABLE: &str = "chatd_log_writable";
/// Chat actors in memory.
pub const LIVE_CHATS: &str = "chatd_live_chats";
/// Streams open, by kind (`chat.Connect`, `chat.Join`).
pub const OPEN_STREAMS: &str = "chatd_open_streams";
/// Bytes of the data dir, by kind of file (`log` segments, `snapshot`s).
pub const DISK_BYTES: &str = "chatd_disk_bytes";
/// Seconds the last start spent recovering the data dir.
pub const RECOVERY_SECONDS: &str = "chatd_recovery_seconds";

/// Log bytes compaction freed (segments removed), since the server started.
pub const COMPACTION_RECLAIMED: &str = "chatd_compaction_reclaimed_bytes_total";
/// Log segments compaction removed, since the server started.
pub const COMPACTION_REMOVED: &str = "chatd_compaction_segments_removed_total";
/// Bytes of live messages compaction copied forward, since the server started.
pub const COMPACTION_COPIED: &str = "chatd_compaction_copied_bytes_total";
/// Segments worth compacting that the running (or last) compaction run has not got to yet.
pub const COMPACTION_PENDING: &str = "chatd_compaction_pending_segments";
/// When the last compaction run ended (Unix seconds), and how long it took.
pub const COMPACTION_LAST_RUN: &str = "chatd_compaction_last_run_timestamp_seconds";
pub const COMPACTION_SECONDS: &str = "chatd_compaction_last_run_duration_seconds";

/// How often histogram samples are folded into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

const SECONDS_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle). `None` when
/// another recorder was installed first: then `/metrics` says so instead of lying.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_RECORDS.into()), BATCH_BUCKETS))
                .map(PrometheusBuilder::build_recorder);
            let recorder = match recorder {
                Ok(recorder) => recorder,
                Err(err) => {
                    tracing::error!(error = %err, "metrics are off: the recorder could not be built");
                    return None;
                }
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::error!("metrics are off: another metrics recorder is installed");
                return None;
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("chatd-metrics".into()).spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            });
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "no metrics upkeep thread: histograms fold in only when scraped");
            }
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(REQUESTS, "Requests answered, by endpoint and HTTP status");
    describe_histogram!(SEND_SECONDS, Unit::Seconds, "Send requests' time to a durable answer");
    describe_histogram!(BATCH_RECORDS, "Records per log batch (one write, at most one fsync)");
    describe_histogram!(FSYNC_SECONDS, Unit::Seconds, "Time of each fsync of the log");
    describe_gauge!(LOG_WRITABLE, "1 while the log takes writes, 0 once a write or fsync failed");
    describe_gauge!(LIVE_CHATS, "Chat actors in memory");
    describe_gauge!(OPEN_STREAMS, "Open streams, by kind");
    describe_gauge!(DISK_BYTES, Unit::Bytes, "Bytes in the data dir, by kind of file");
    describe_gauge!(RECOVERY_SECONDS, Unit::Seconds, "Time the last start spent recovering the data dir");
    describe_counter!(COMPACTION_RECLAIMED, Unit::Bytes, "Log bytes freed by compaction");
    describe_counter!(COMPACTION_REMOVED, "Log segments removed by compaction");
    describe_counter!(COMPACTION_COPIED, Unit::Bytes, "Live message bytes compaction copied forward");
    describe_gauge!(COMPACTION_PENDING, "Segments worth compacting the running or last compaction run has not got to");
    describe_gauge!(COMPACTION_LAST_RUN, Unit::Seconds, "When the last compaction run ended (Unix time)");
    describe_gauge!(COMPACTION_SECONDS, Unit::Seconds, "How long the last compaction run took");
}

/// One answered request.
pub fn request(endpoint: &'static str, status: u16, elapsed: Duration) {
    counter!(REQUESTS, "endpoint" => endpoint, "status" => status.to_string()).increment(1);
    if matches!(endpoint, "chat.Send" | "chats.SendMessage") {
        histogram!(SEND_SECONDS, "endpoint" => endpoint).record(elapsed.as_secs_f64());
    }
}

/// A batch of `records` written to the log (called by the log writer).
pub fn log_batch(records: usize) {
    histogram!(BATCH_RECORDS).record(records as f64);
}

/// One fsync of the log (called by the log writer).
pub fn fsync(elapsed: Duration) {
    histogram!(FSYNC_SECONDS).record(elapsed.as_secs_f64());
}

/// Compaction removed `segments` segments, freeing `bytes`, after copying `copied` bytes forward.
pub fn compacted(segments: usize, bytes: u64, copied: u64) {
    counter!(COMPACTION_REMOVED).increment(segments as u64);
    counter!(COMPACTION_RECLAIMED).increment(bytes);
    counter!(COMPACTION_COPIED).increment(copied);
}

/// The running compaction has `segments` segments left to remove.
pub fn compaction_pending(segments: usize) {
    gauge!(COMPACTION_PENDING).set(segments as f64);
}

/// A compaction run ended, after `elapsed`.
pub fn compaction_ran(elapsed: Duration) {
    gauge!(COMPACTION_LAST_RUN).set(crate::model::now_secs() as f64);
    gauge!(COMPACTION_SECONDS).set(elapsed.as_secs_f64());
}

pub fn recovered(elapsed: Duration) {
    gauge!(RECOVERY_SECONDS).set(elapsed.as_secs_f64());
}

/// Counts a stream as open for as long as it is held.
pub struct OpenStream(&'static str);

impl OpenStream {
    pub fn new(kind: &'static str) -> OpenStream {
        gauge!(OPEN_STREAMS, "kind" => kind).increment(1.0);
        OpenStream(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        gauge!(OPEN_STREAMS, "kind" => self.0).decrement(1.0);
    }
}

/// What is measured at scrape time rather than counted as it changes.
pub struct Scrape {
    pub live_chats: usize,
    pub log_bytes: u64,
    pub snapshot_bytes: u64,
    pub log_writable: bool,
}

/// The Prometheus text of every metric, with `scrape`'s values set first; `None` when the
/// recorder is not ours (see [`install`]).
pub fn render(scrape: &Scrape) -> Option<String> {
    let handle = install()?;
    gauge!(LIVE_CHATS).set(scrape.live_chats as f64);
    gauge!(DISK_BYTES, "kind" => "log").set(scrape.log_bytes as f64);
    gauge!(DISK_BYTES, "kind" => "snapshot").set(scrape.snapshot_bytes as f64);
    gauge!(LOG_WRITABLE).set(if scrape.log_writable { 1.0 } else { 0.0 });
    Some(handle.render())
}
