//! fanout: one chat, many WebSocket subscribers, a steady stream of sends; measures chatd's
//! deliveries/s, the send-to-delivery latency, and its memory per idle WebSocket connection.
//!
//! `fanout run` does, against a chatd on loopback (`--url`, whose pid `--server-pid` is):
//!
//!   1. creates a fresh chat with `POST /chat/New` (chatd must run with `chat.membership = "open"`);
//!   2. reads chatd's RSS (`/proc/PID/status`) and its own: the baseline;
//!   3. opens the subscribers, `GET /chat/Connect?chat_id=..&user_id=fanout-sub-I` upgraded to a
//!      WebSocket (tokio-tungstenite), at most `--connect-concurrency` handshakes at a time, in
//!      `--steps` (default: all N at once). After each step, once every subscriber has its 101, it
//!      lets them sit idle for `--idle` seconds and reads both RSS again: (RSS − baseline) ÷
//!      connections is the memory per idle connection, and the difference between two steps ÷
//!      the connections added is the marginal cost, without any one-time allocation;
//!   4. sends `--rate` messages/s (open loop: message k is due at t0 + k/rate) for `--warmup` +
//!      `--duration` seconds with `POST /chat/Send`, over `--senders` keep-alive HTTP/1.1
//!      connections on a thread of their own. Each text carries the time read just before its
//!      request is written (`fanout k=K t=NANOS xxx…`, nanoseconds since the run's start, one
//!      monotonic clock); each client_id is unique (`fo-RUN-K`);
//!   5. every subscriber records, for every frame, the latency from that send time to the frame's
//!      arrival, its seq (duplicates, gaps), and any close or error; warm-up messages are
//!      delivered and checked but left out of the latency figures;
//!   6. after the last send it waits (at most `--drain` seconds) until every subscriber has every
//!      message, then reports: expected deliveries (subscribers × sends answered 200) against
//!      those received, missing, duplicated and per-subscriber seq gaps, deliveries/s in the
//!      measured window, p50/p90/p99/max latency, per message the latency of its last copy
//!      (when all subscribers had it) and the five slowest messages, the HTTP latency of the
//!      sends, how late the sender was against its schedule, and the CPU of chatd, of itself,
//!      of the kernel's softirq threads and of the machine.
//!
//! Subscribers run as tasks on a multi-thread runtime of `--threads` workers (default 2). With
//! one, the client reads the 1,000 copies of a message one after another (~4 µs each, mostly the
//! kernel's recv), and that serial reading shows up in the latency it measures: on this 2-core
//! machine, back to back, p99 was 32–36 ms with 1 thread and 10–11 ms with 2, at about the same
//! total client CPU. The
//! sender has its own thread, so a burst of deliveries never delays a send. Every frame's text is
//! found with a plain scan rather than a JSON parse, and tungstenite's read buffer is 4 KiB
//! (it zero-fills that much before each read): the client shares the machine with chatd.
//!
//!   fanout run   --url http://127.0.0.1:PORT --server-pid PID [--subscribers 1000] [--rate 200]
//!                [--duration 20] [--warmup 2] [--idle 5] [--steps 500,1000] [--threads 2]
//!                [--senders 4] [--connect-concurrency 64] [--drain 10] [--text-bytes 64]
//!                [--label NAME] [--json FILE] [--hold SECS]
//!   fanout table FILE.json...     (markdown tables of runs)
//!
//! With a `redis://127.0.0.1:PORT` url (and Redis's pid) it runs the same against Redis pub/sub
//! (fanout/redis.rs): SUBSCRIBE connections on channel `chat:fanout`, PUBLISH at the same rate.
//!
//! With `--duration 0` it only measures memory (step 3). After the sends it lets the connections
//! sit idle for `--idle` seconds once more and reads chatd's RSS again (a connection that has
//! carried traffic); `--hold SECS` keeps them open that much longer, to inspect chatd.

mod redis;
// The RESP reader the load generator uses (only part of it is needed here).
#[allow(dead_code)]
#[path = "../loadgen/resp.rs"]
mod resp;

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        usage();
    }
    let cmd = args.remove(0);
    let result = match cmd.as_str() {
        "run" => cmd_run(&args),
        "table" => cmd_table(&args),
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("fanout {cmd}: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: fanout run|table ... (see the comment at the top of bench/src/bin/fanout.rs)");
    std::process::exit(2);
}

fn flags(args: &[String]) -> Res<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a.strip_prefix("--").ok_or_else(|| format!("unexpected argument {a}"))?;
        let value = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        map.insert(key.to_string(), value.clone());
    }
    Ok(map)
}

fn get<T: std::str::FromStr>(m: &BTreeMap<String, String>, key: &str, default: T) -> Res<T> {
    match m.get(key) {
        Some(v) => v.parse().map_err(|_| format!("bad value for --{key}: {v}").into()),
        None => Ok(default),
    }
}

/// A loopback address from an http:// (chatd) or redis:// URL: the only kind of target this tool
/// will load. The flag: is it Redis?
fn target(url: &str) -> Res<(SocketAddr, String, bool)> {
    let (rest, is_redis) = match url.strip_prefix("redis://") {
        Some(rest) => (rest, true),
        None => (url.strip_prefix("http://").ok_or("the url must start with http:// or redis://")?, false),
    };
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    let addr = host.to_socket_addrs()?.next().ok_or("the url's host does not resolve")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address; fanout only loads this machine").into());
    }
    Ok((addr, host, is_redis))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1: the little of it the sender needs (chatd answers with Content-Length).

async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<(u16, Vec<u8>)> {
    buf.clear();
    loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let len = resp
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no content-length"))?;
                    Some((resp.code.unwrap_or(0), n, len))
                }
                Ok(httparse::Status::Partial) => None,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        if let Some((status, head, len)) = parsed {
            if buf.len() >= head + len {
                return Ok((status, buf[head..head + len].to_vec()));
            }
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(8192);
        }
        if s.read_buf(buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
    }
}

fn put_post(out: &mut Vec<u8>, host: &str, path: &str, body: &[u8]) {
    out.clear();
    let _ = write!(
        out,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

async fn call(addr: SocketAddr, host: &str, path: &str, body: &str) -> Res<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut req = Vec::new();
    put_post(&mut req, host, path, body.as_bytes());
    s.write_all(&req).await?;
    let (status, body) = read_response(&mut s, &mut Vec::new()).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
}

// ---------------------------------------------------------------------------------------------
// Memory and CPU from /proc.

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Mem {
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    hwm_kib: u64,
}

fn mem(pid: &str) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    Mem { rss_kib: field("VmRSS:"), anon_kib: field("RssAnon:"), file_kib: field("RssFile:"), hwm_kib: field("VmHWM:") }
}

/// Kernel memory of all TCP sockets (`/proc/net/sockstat` "TCP: ... mem N", in pages), in KiB.
fn tcp_kernel_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages: u64 = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter().position(|x| *x == "mem").and_then(|i| f.get(i + 1)?.parse().ok())
        })
        .unwrap_or(0);
    pages * 4
}

fn ticks() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime of a /proc/.../stat file, in seconds.
fn proc_cpu(path: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(path) else { return 0.0 };
    let Some(close) = text.rfind(')') else { return 0.0 };
    let f: Vec<&str> = text[close + 2..].split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (num(11) + num(12)) / ticks()
}

struct Cpu {
    at: Instant,
    client: f64,
    server: f64,
    /// The kernel's softirq threads: network work the kernel deferred (loopback TCP, here).
    softirqd: f64,
    busy: u64,
    total: u64,
}

/// CPU seconds of the `ksoftirqd/N` kernel threads.
fn softirqd_cpu() -> f64 {
    let mut sum = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.starts_with("ksoftirqd/") {
            sum += proc_cpu(&path.join("stat").to_string_lossy());
        }
    }
    sum
}

impl Cpu {
    fn take(pid: &str) -> Cpu {
        let (mut busy, mut total) = (0, 0);
        if let Some(line) = std::fs::read_to_string("/proc/stat").ok().and_then(|t| t.lines().next().map(String::from))
        {
            let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
            total = v.iter().take(8).sum();
            busy = total - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0);
        }
        Cpu {
            at: Instant::now(),
            client: proc_cpu("/proc/self/stat"),
            server: proc_cpu(&format!("/proc/{pid}/stat")),
            softirqd: softirqd_cpu(),
            busy,
            total,
        }
    }

    /// (client %, server %, ksoftirqd %, machine busy %), in % of one core (the machine has
    /// nproc × 100%).
    fn since(&self, before: &Cpu) -> (f64, f64, f64, f64) {
        let wall = (self.at - before.at).as_secs_f64().max(1e-9);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy = self.busy.saturating_sub(before.busy) as f64 / self.total.saturating_sub(before.total).max(1) as f64;
        (
            100.0 * (self.client - before.client) / wall,
            100.0 * (self.server - before.server) / wall,
            100.0 * (self.softirqd - before.softirqd) / wall,
            100.0 * cores * busy,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Subscribers.

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Latencies in µs: every delivery, and those of messages sent after the warm-up.
pub struct Lat {
    all: Histogram<u64>,
    measured: Histogram<u64>,
    /// Per message k: the latency (µs) of its slowest delivery in this group.
    last_copy: Vec<u64>,
}

pub struct Shared {
    base: Instant,
    /// Messages with k below this are warm-up: checked, but not in `measured`.
    warm_k: AtomicU64,
    delivered: AtomicU64,
    /// Subscribers write their latencies into one of these (i mod len): few, short locks.
    lat: Vec<Mutex<Lat>>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SubStats {
    received: u64,
    duplicates: u64,
    /// Seqs skipped between two frames.
    gap_seqs: u64,
    gaps: u64,
    last_seq: u64,
    /// Frames that are not a chat message (an error frame, say).
    other_frames: u64,
    /// How the stream ended before the run did, if it did.
    ended: Option<String>,
}

/// Pulls seq, k and the send time out of a delivered Message frame: a plain scan for `"seq":`
/// and for the text `fanout k=K t=NANOS` this tool sent, cheaper than a JSON parse (the client
/// shares the machine with chatd). Anything else (an error frame, say) gives None.
fn parse_frame(text: &str) -> Option<(u64, u64, u64)> {
    fn number(s: &str) -> Option<u64> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        s[..end].parse().ok()
    }
    let seq = number(&text[text.find("\"seq\":")? + 6..])?;
    let rest = &text[text.find("\"text\":\"fanout k=")? + 17..];
    let k = number(rest)?;
    let t = number(&rest[rest.find(" t=")? + 3..])?;
    Some((seq, k, t))
}

async fn subscriber(
    i: usize,
    url: Arc<String>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) -> SubStats {
    let mut st = SubStats::default();
    let connected = async {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let request = format!("{url}&user_id=fanout-sub-{i}");
        // tungstenite zero-fills this much before every read: keep it small (frames are ~350 B).
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (ws, resp) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        if resp.status().as_u16() != 101 {
            return Err(format!("handshake answered {}", resp.status()));
        }
        Ok(ws)
    }
    .await;
    let mut ws = match connected {
        Ok(ws) => {
            let _ = ready.send(Ok(()));
            ws
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            st.ended = Some(e);
            return st;
        }
    };
    drop(ready);
    let lat = &shared.lat[i % shared.lat.len()];
    // One stop future for the whole loop: re-creating it per frame costs a Notify registration.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stopped => break,
            msg = ws.next() => msg,
        };
        match msg {
            Some(Ok(WsMessage::Text(text))) => {
                let now = shared.base.elapsed().as_nanos() as u64;
                let Some((seq, k, sent)) = parse_frame(text.as_str()) else {
                    st.other_frames += 1;
                    continue;
                };
                if seq <= st.last_seq {
                    st.duplicates += 1;
                    continue;
                }
                if seq > st.last_seq + 1 {
                    st.gaps += 1;
                    st.gap_seqs += seq - st.last_seq - 1;
                }
                st.last_seq = seq;
                st.received += 1;
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                let us = (now.saturating_sub(sent) / 1000).max(1);
                let mut l = lat.lock().unwrap();
                let _ = l.all.record(us);
                if k >= shared.warm_k.load(Ordering::Relaxed) {
                    let _ = l.measured.record(us);
                }
                if let Some(slot) = l.last_copy.get_mut(k as usize) {
                    *slot = (*slot).max(us);
                }
            }
            // tungstenite answers pings by itself.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(WsMessage::Close(frame))) => {
                st.ended = Some(format!("closed by server: {frame:?}"));
                break;
            }
            Some(Ok(_)) => st.other_frames += 1,
            Some(Err(e)) => {
                st.ended = Some(format!("error: {e}"));
                break;
            }
            None => {
                st.ended = Some("stream ended".into());
                break;
            }
        }
    }
    st
}

// ---------------------------------------------------------------------------------------------
// The sender: open loop, its own thread.

struct SendPlan {
    addr: SocketAddr,
    host: String,
    /// Redis: PUBLISH to channel `chat_id`, expecting this many receivers.
    redis_subscribers: Option<usize>,
    chat_id: String,
    run: String,
    rate: f64,
    total: u64,
    senders: usize,
    text_bytes: usize,
    base: Instant,
    t0: Instant,
}

#[derive(Default)]
struct SendResult {
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
    http: Option<Histogram<u64>>,
    /// How late a send started against its schedule, µs.
    lag: Option<Histogram<u64>>,
    /// seq answered for each k (0 = not answered 200).
    seqs: Vec<u64>,
}

fn send_all(plan: Arc<SendPlan>) -> SendResult {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for c in 0..plan.senders {
            let plan = plan.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = SendResult { http: Some(hist()), lag: Some(hist()), ..Default::default() };
                let mut conn: Option<TcpStream> = None;
                let (mut req, mut buf) = (Vec::new(), Vec::new());
                let mut k = c as u64;
                while k < plan.total {
                    let due = plan.t0 + Duration::from_secs_f64(k as f64 / plan.rate);
                    tokio::time::sleep_until(due.into()).await;
                    let started = Instant::now();
                    let _ = out.lag.as_mut().unwrap().record((started - due).as_micros() as u64 + 1);
                    if conn.is_none() {
                        match TcpStream::connect(plan.addr).await {
                            Ok(s) => {
                                let _ = s.set_nodelay(true);
                                conn = Some(s);
                            }
                            Err(e) => {
                                out.errors += 1;
                                out.error_samples.push(format!("k={k}: connect: {e}"));
                                k += plan.senders as u64;
                                continue;
                            }
                        }
                    }
                    let s = conn.as_mut().unwrap();
                    let client_id = format!("fo-{}-{k}", plan.run);
                    let sent = plan.base.elapsed().as_nanos() as u64;
                    let mut text = format!("fanout k={k} t={sent} ");
                    while text.len() < plan.text_bytes {
                        text.push('x');
                    }
                    if let Some(subscribers) = plan.redis_subscribers {
                        let t = Instant::now();
                        let result = redis::publish(s, &mut buf, &plan.chat_id, &text, subscribers).await;
                        let _ = out.http.as_mut().unwrap().record(t.elapsed().as_micros() as u64 + 1);
                        match result {
                            Ok(Ok(())) => {
                                out.ok += 1;
                                // No seqs in Redis: k + 1 stands for one, so "contiguous" means
                                // every publish reached every subscriber.
                                out.seqs.push(k);
                                out.seqs.push(k + 1);
                            }
                            Ok(Err(e)) => {
                                out.errors += 1;
                                out.error_samples.push(format!("k={k}: {e}"));
                            }
                            Err(e) => {
                                out.errors += 1;
                                out.error_samples.push(format!("k={k}: {e}"));
                                conn = None;
                            }
                        }
                        k += plan.senders as u64;
                        continue;
                    }
                    let body = format!(
                        r#"{{"chat_id":"{}","user_id":"fanout-sender","text":"{text}","client_id":"{client_id}"}}"#,
                        plan.chat_id
                    );
                    put_post(&mut req, &plan.host, "/chat/Send", body.as_bytes());
                    let t = Instant::now();
                    let result = match s.write_all(&req).await {
                        Ok(()) => read_response(s, &mut buf).await,
                        Err(e) => Err(e),
                    };
                    let _ = out.http.as_mut().unwrap().record(t.elapsed().as_micros() as u64 + 1);
                    match result {
                        Ok((200, body)) => {
                            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                            let m = if v.get("message").is_some() { &v["message"] } else { &v };
                            if m["client_id"] == client_id.as_str() {
                                out.ok += 1;
                                out.seqs.push(k);
                                out.seqs.push(m["seq"].as_u64().unwrap_or(0));
                            } else {
                                out.errors += 1;
                                out.error_samples.push(format!("k={k}: 200 without its client_id: {v}"));
                            }
                        }
                        Ok((status, body)) => {
                            out.errors += 1;
                            out.error_samples.push(format!("k={k}: {status} {}", String::from_utf8_lossy(&body)));
                        }
                        Err(e) => {
                            out.errors += 1;
                            out.error_samples.push(format!("k={k}: {e}"));
                            conn = None;
                        }
                    }
                    k += plan.senders as u64;
                }
                out
            }));
        }
        let mut all = SendResult {
            http: Some(hist()),
            lag: Some(hist()),
            seqs: vec![0; plan.total as usize],
            ..Default::default()
        };
        for t in tasks {
            let r = t.await.expect("sender task");
            all.ok += r.ok;
            all.errors += r.errors;
            all.error_samples.extend(r.error_samples);
            all.http.as_mut().unwrap().add(r.http.unwrap()).unwrap();
            all.lag.as_mut().unwrap().add(r.lag.unwrap()).unwrap();
            for pair in r.seqs.chunks(2) {
                all.seqs[pair[0] as usize] = pair[1];
            }
        }
        all
    })
}

// ---------------------------------------------------------------------------------------------
// run

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Step {
    connections: usize,
    connect_secs: f64,
    server_just_connected: Mem,
    server: Mem,
    client: Mem,
    /// (server RSS − baseline) ÷ connections, KiB.
    server_kib_per_conn: f64,
    /// (server RSS − previous step's) ÷ connections added, KiB.
    server_marginal_kib_per_conn: Option<f64>,
    client_kib_per_conn: f64,
    tcp_kernel_kib: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Quantiles {
    count: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
}

fn quantiles(h: &Histogram<u64>) -> Quantiles {
    Quantiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Report {
    label: String,
    subscribers: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    threads: usize,
    senders: usize,
    text_bytes: usize,
    chat_id: String,
    baseline_server: Mem,
    baseline_client: Mem,
    baseline_tcp_kernel_kib: u64,
    steps: Vec<Step>,
    connect_failures: usize,
    // Delivery phase (absent with --duration 0).
    sent_ok: u64,
    send_errors: u64,
    send_error_samples: Vec<String>,
    /// The seqs answered are exactly 1..=sent_ok.
    seqs_contiguous: bool,
    expected_deliveries: u64,
    received: u64,
    missing: u64,
    duplicates: u64,
    subscribers_with_gaps: usize,
    gap_seqs: u64,
    subscribers_complete: usize,
    subscribers_ended: usize,
    ended_samples: Vec<String>,
    other_frames: u64,
    /// Deliveries counted inside the measured window ÷ its length.
    deliveries_per_sec: f64,
    offered_deliveries_per_sec: f64,
    /// From the first send until the last delivery arrived.
    drain_secs: f64,
    latency_us: Quantiles,
    latency_all_us: Quantiles,
    /// Per message (after warm-up): the latency of its last copy, when every subscriber had it.
    all_subscribers_us: Quantiles,
    /// The slowest messages: (k, seconds after the first send, latency of the last copy in µs).
    slowest: Vec<(u64, f64, u64)>,
    send_http_us: Quantiles,
    send_lag_us: Quantiles,
    client_cpu_pct: f64,
    server_cpu_pct: f64,
    softirqd_cpu_pct: f64,
    machine_busy_pct: f64,
    server_after: Mem,
    client_after: Mem,
    /// After the traffic, once the connections have been idle for `--idle` seconds again.
    server_after_idle: Mem,
    server_after_idle_kib_per_conn: f64,
}

fn cmd_run(args: &[String]) -> Res<()> {
    let m = flags(args)?;
    let url = m.get("url").ok_or("--url is required")?.clone();
    let pid: String = m.get("server-pid").ok_or("--server-pid is required")?.clone();
    if !std::path::Path::new(&format!("/proc/{pid}/status")).exists() {
        return Err(format!("no process {pid}").into());
    }
    let n: usize = get(&m, "subscribers", 1000)?;
    let mut steps: Vec<usize> = match m.get("steps") {
        Some(s) => s.split(',').map(|x| x.trim().parse()).collect::<Result<_, _>>().map_err(|_| "bad --steps")?,
        None => vec![n],
    };
    steps.retain(|&s| s > 0 && s <= n);
    if steps.last() != Some(&n) {
        steps.push(n);
    }
    let threads: usize = get(&m, "threads", 2)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
    let report = rt.block_on(run(m, url, pid, n, steps, threads))?;
    print_report(&report);
    if let Some(file) = report_file(args) {
        std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
    }
    // Don't wait for the subscriber tasks' sockets to close one by one.
    rt.shutdown_timeout(Duration::from_secs(1));
    if report.missing > 0 || report.duplicates > 0 || report.send_errors > 0 || report.connect_failures > 0 {
        std::process::exit(3);
    }
    Ok(())
}

fn report_file(args: &[String]) -> Option<String> {
    flags(args).ok()?.get("json").cloned()
}

async fn run(
    m: BTreeMap<String, String>,
    url: String,
    pid: String,
    n: usize,
    steps: Vec<usize>,
    threads: usize,
) -> Res<Report> {
    let (addr, host, is_redis) = target(&url)?;
    let rate: f64 = get(&m, "rate", 200.0)?;
    let duration: f64 = get(&m, "duration", 20.0)?;
    let warmup: f64 = get(&m, "warmup", 2.0)?;
    let idle: f64 = get(&m, "idle", 5.0)?;
    let senders: usize = get(&m, "senders", 4)?;
    let concurrency: usize = get(&m, "connect-concurrency", 64)?;
    let drain: f64 = get(&m, "drain", 10.0)?;
    let text_bytes: usize = get(&m, "text-bytes", 64)?;
    let label = m.get("label").cloned().unwrap_or_else(|| format!("fanout-{n}"));
    let run_id = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());

    let chat_id = if is_redis {
        "chat:fanout".to_string()
    } else {
        let body = format!(r#"{{"user_ids":["fanout-sender-{run_id}","fanout-reader-{run_id}"]}}"#);
        let (status, v) = call(addr, &host, "/chat/New", &body).await?;
        v["chat_id"]
            .as_str()
            .or(v["chat"]["id"].as_str())
            .filter(|_| status == 200)
            .ok_or_else(|| format!("POST /chat/New answered {status}: {v}"))?
            .to_string()
    };
    println!("chat {chat_id}; {n} subscribers in steps {steps:?}; client runtime: {threads} worker thread(s)");

    let mut r = Report {
        label,
        subscribers: n,
        rate,
        duration,
        warmup,
        threads,
        senders,
        text_bytes,
        chat_id: chat_id.clone(),
        ..Default::default()
    };
    let shared = Arc::new(Shared {
        base: Instant::now(),
        warm_k: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        // A few histograms: each is ~200 KiB, and more of them only means more cache misses.
        lat: (0..2 * threads.max(1))
            .map(|_| {
                let last_copy = vec![0; (rate * (warmup + duration)).round() as usize];
                Mutex::new(Lat { all: hist(), measured: hist(), last_copy })
            })
            .collect(),
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    r.baseline_server = mem(&pid);
    r.baseline_client = mem("self");
    r.baseline_tcp_kernel_kib = tcp_kernel_kib();
    println!(
        "baseline: chatd RSS {} KiB (anon {}), client RSS {} KiB, kernel TCP memory {} KiB",
        r.baseline_server.rss_kib, r.baseline_server.anon_kib, r.baseline_client.rss_kib, r.baseline_tcp_kernel_kib
    );

    let ws_url = Arc::new(format!("ws://{host}/chat/Connect?chat_id={chat_id}"));
    let channel = Arc::new(chat_id.clone());
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles = Vec::with_capacity(n);
    let mut prev: Option<(usize, u64)> = None;
    for &step in &steps {
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let from = handles.len();
        let t = Instant::now();
        for i in from..step {
            if is_redis {
                handles.push(tokio::spawn(redis::subscriber(
                    addr,
                    channel.clone(),
                    shared.clone(),
                    i,
                    gate.clone(),
                    ready_tx.clone(),
                    stop_rx.clone(),
                )));
                continue;
            }
            handles.push(tokio::spawn(subscriber(
                i,
                ws_url.clone(),
                addr,
                shared.clone(),
                gate.clone(),
                ready_tx.clone(),
                stop_rx.clone(),
            )));
        }
        drop(ready_tx);
        let mut failures = Vec::new();
        while let Some(res) = ready_rx.recv().await {
            if let Err(e) = res {
                failures.push(e);
            }
        }
        let connect_secs = t.elapsed().as_secs_f64();
        if !failures.is_empty() {
            r.connect_failures += failures.len();
            eprintln!("{} subscribers failed to connect, e.g. {}", failures.len(), failures[0]);
        }
        let just = mem(&pid);
        tokio::time::sleep(Duration::from_secs_f64(idle)).await;
        let (server, client) = (mem(&pid), mem("self"));
        let per = |now: u64, base: u64| (now as f64 - base as f64) / step as f64;
        let s = Step {
            connections: step,
            connect_secs,
            server_just_connected: just,
            server,
            client,
            server_kib_per_conn: per(server.rss_kib, r.baseline_server.rss_kib),
            server_marginal_kib_per_conn: prev.map(|(c, rss)| (server.rss_kib as f64 - rss as f64) / (step - c) as f64),
            client_kib_per_conn: per(client.rss_kib, r.baseline_client.rss_kib),
            tcp_kernel_kib: tcp_kernel_kib(),
        };
        println!(
            "{step} connected in {connect_secs:.2}s; after {idle}s idle: chatd RSS {} KiB (+{} KiB = {:.1} KiB per connection{}), client RSS {} KiB ({:.1} KiB per connection), kernel TCP memory {} KiB",
            server.rss_kib,
            server.rss_kib as i64 - r.baseline_server.rss_kib as i64,
            s.server_kib_per_conn,
            s.server_marginal_kib_per_conn.map(|x| format!("; {x:.1} KiB per added connection")).unwrap_or_default(),
            client.rss_kib,
            s.client_kib_per_conn,
            s.tcp_kernel_kib,
        );
        prev = Some((step, server.rss_kib));
        r.steps.push(s);
    }

    if duration > 0.0 && rate > 0.0 {
        let total = (rate * (warmup + duration)).round() as u64;
        let warm_k = (rate * warmup).round() as u64;
        shared.warm_k.store(warm_k, Ordering::Relaxed);
        let t0 = Instant::now() + Duration::from_millis(200);
        let plan = Arc::new(SendPlan {
            addr,
            host: host.clone(),
            redis_subscribers: is_redis.then_some(n - r.connect_failures),
            chat_id: chat_id.clone(),
            run: run_id.clone(),
            rate,
            total,
            senders: senders.max(1),
            text_bytes,
            base: shared.base,
            t0,
        });
        println!(
            "sending {rate}/s for {warmup}s warm-up + {duration}s over {senders} connections: {total} messages, {} deliveries expected",
            total as usize * n
        );
        let sender = std::thread::Builder::new().name("fanout-send".into()).spawn({
            let plan = plan.clone();
            move || send_all(plan)
        })?;
        // The measured window: after the warm-up, for `duration`.
        let w0 = t0 + Duration::from_secs_f64(warmup);
        tokio::time::sleep_until(w0.into()).await;
        let (cpu0, d0) = (Cpu::take(&pid), shared.delivered.load(Ordering::Relaxed));
        tokio::time::sleep_until((w0 + Duration::from_secs_f64(duration)).into()).await;
        let (cpu1, d1) = (Cpu::take(&pid), shared.delivered.load(Ordering::Relaxed));
        (r.client_cpu_pct, r.server_cpu_pct, r.softirqd_cpu_pct, r.machine_busy_pct) = cpu1.since(&cpu0);
        r.deliveries_per_sec = (d1 - d0) as f64 / (cpu1.at - cpu0.at).as_secs_f64();
        r.offered_deliveries_per_sec = rate * n as f64;

        let sent = tokio::task::spawn_blocking(move || sender.join()).await?.map_err(|_| "sender thread panicked")?;
        r.sent_ok = sent.ok;
        r.send_errors = sent.errors;
        r.send_error_samples = sent.error_samples.iter().take(5).cloned().collect();
        let mut answered: Vec<u64> = sent.seqs.iter().copied().filter(|&s| s > 0).collect();
        answered.sort_unstable();
        r.seqs_contiguous = answered.iter().enumerate().all(|(i, &s)| s == i as u64 + 1);
        r.send_http_us = quantiles(sent.http.as_ref().unwrap());
        r.send_lag_us = quantiles(sent.lag.as_ref().unwrap());
        r.expected_deliveries = sent.ok * (n - r.connect_failures) as u64;

        let deadline = Instant::now() + Duration::from_secs_f64(drain);
        while Instant::now() < deadline && shared.delivered.load(Ordering::Relaxed) < r.expected_deliveries {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        r.drain_secs = (Instant::now() - t0).as_secs_f64();
        r.server_after = mem(&pid);
        r.client_after = mem("self");
        // The same connections, idle again once they have carried traffic.
        tokio::time::sleep(Duration::from_secs_f64(idle)).await;
        r.server_after_idle = mem(&pid);
        r.server_after_idle_kib_per_conn =
            (r.server_after_idle.rss_kib as f64 - r.baseline_server.rss_kib as f64) / n as f64;
    }
    let hold: f64 = get(&m, "hold", 0.0)?;
    if hold > 0.0 {
        println!("holding the {n} connections for {hold}s (chatd pid {pid})");
        tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    }
    let _ = stop_tx.send(true);
    let mut lat_all = hist();
    let mut lat = hist();
    let mut last_copy: Vec<u64> = Vec::new();
    for l in &shared.lat {
        let l = l.lock().unwrap();
        lat_all.add(&l.all).unwrap();
        lat.add(&l.measured).unwrap();
        last_copy.resize(l.last_copy.len(), 0);
        for (m, &us) in last_copy.iter_mut().zip(&l.last_copy) {
            *m = (*m).max(us);
        }
    }
    for h in handles {
        let st = h.await?;
        r.received += st.received;
        r.duplicates += st.duplicates;
        r.other_frames += st.other_frames;
        if st.gaps > 0 {
            r.subscribers_with_gaps += 1;
            r.gap_seqs += st.gap_seqs;
        }
        if r.sent_ok > 0 && st.received == r.sent_ok && st.last_seq == r.sent_ok && st.gaps == 0 {
            r.subscribers_complete += 1;
        }
        if let Some(e) = st.ended {
            r.subscribers_ended += 1;
            if r.ended_samples.len() < 5 {
                r.ended_samples.push(e);
            }
        }
    }
    r.missing = r.expected_deliveries.saturating_sub(r.received);
    r.latency_us = quantiles(&lat);
    r.latency_all_us = quantiles(&lat_all);
    if r.sent_ok > 0 {
        let warm_k = shared.warm_k.load(Ordering::Relaxed) as usize;
        let mut h = hist();
        let mut per: Vec<(u64, u64)> = Vec::new();
        for (k, &us) in last_copy.iter().enumerate() {
            if us > 0 {
                per.push((us, k as u64));
                if k >= warm_k {
                    let _ = h.record(us);
                }
            }
        }
        r.all_subscribers_us = quantiles(&h);
        per.sort_unstable_by(|a, b| b.cmp(a));
        r.slowest = per.iter().take(5).map(|&(us, k)| (k, k as f64 / r.rate, us)).collect();
    }
    Ok(r)
}

/// Busy CPU charged to neither chatd, this client nor the kernel's softirq threads: mostly
/// other tenants of the machine.
fn rest(r: &Report) -> f64 {
    (r.machine_busy_pct - r.server_cpu_pct - r.client_cpu_pct - r.softirqd_cpu_pct).max(0.0)
}

fn kib(x: u64) -> String {
    format!("{x} KiB")
}

fn print_report(r: &Report) {
    println!("== {}", r.label);
    for s in &r.steps {
        println!(
            "memory @ {} idle connections: chatd RSS {} → {} (+{} KiB, {:.1} KiB/conn{}; anon {} → {}), client RSS {} → {} ({:.1} KiB/conn)",
            s.connections,
            kib(r.baseline_server.rss_kib),
            kib(s.server.rss_kib),
            s.server.rss_kib as i64 - r.baseline_server.rss_kib as i64,
            s.server_kib_per_conn,
            s.server_marginal_kib_per_conn.map(|x| format!(", {x:.1} KiB per added conn")).unwrap_or_default(),
            kib(r.baseline_server.anon_kib),
            kib(s.server.anon_kib),
            kib(r.baseline_client.rss_kib),
            kib(s.client.rss_kib),
            s.client_kib_per_conn,
        );
    }
    if r.connect_failures > 0 {
        println!("CONNECT FAILURES: {}", r.connect_failures);
    }
    if r.sent_ok + r.send_errors == 0 {
        return;
    }
    println!(
        "sends: {} answered 200, {} errors{}; seqs 1..={} {}",
        r.sent_ok,
        r.send_errors,
        if r.send_error_samples.is_empty() { String::new() } else { format!(" (e.g. {})", r.send_error_samples[0]) },
        r.sent_ok,
        if r.seqs_contiguous { "contiguous" } else { "NOT contiguous" }
    );
    println!(
        "deliveries: expected {} ({} × {}), received {}, missing {}, duplicated {}, subscribers complete {}/{}, with seq gaps {} ({} seqs), ended early {}{}, other frames {}",
        r.expected_deliveries,
        r.subscribers - r.connect_failures,
        r.sent_ok,
        r.received,
        r.missing,
        r.duplicates,
        r.subscribers_complete,
        r.subscribers,
        r.subscribers_with_gaps,
        r.gap_seqs,
        r.subscribers_ended,
        r.ended_samples.first().map(|e| format!(" (e.g. {e})")).unwrap_or_default(),
        r.other_frames,
    );
    let q = &r.latency_us;
    println!(
        "deliveries/s in the {}s window: {:.0} (offered {:.0}); send-to-delivery latency µs (after warm-up, {} deliveries): p50 {} p90 {} p99 {} p99.9 {} max {} mean {:.0}",
        r.duration, r.deliveries_per_sec, r.offered_deliveries_per_sec, q.count, q.p50, q.p90, q.p99, q.p999, q.max, q.mean
    );
    let a = &r.latency_all_us;
    println!("  including warm-up ({} deliveries): p50 {} p99 {} max {}", a.count, a.p50, a.p99, a.max);
    let c = &r.all_subscribers_us;
    println!(
        "until all {} subscribers had a message, µs ({} messages after warm-up): p50 {} p90 {} p99 {} max {}; slowest: {}",
        r.subscribers - r.connect_failures,
        c.count,
        c.p50,
        c.p90,
        c.p99,
        c.max,
        r.slowest.iter().map(|(k, at, us)| format!("k={k} (sent at {at:.2}s) {:.1} ms", *us as f64 / 1000.0)).collect::<Vec<_>>().join(", ")
    );
    let h = &r.send_http_us;
    let l = &r.send_lag_us;
    println!(
        "send HTTP latency µs: p50 {} p90 {} p99 {} max {}; sender lag behind schedule µs: p50 {} p99 {} max {}",
        h.p50, h.p90, h.p99, h.max, l.p50, l.p99, l.max
    );
    println!(
        "CPU in the window (% of one core; the machine has {}%): chatd {:.0}%, fanout client {:.0}%, ksoftirqd {:.0}%, machine busy {:.0}% (rest of machine {:.0}%)",
        100 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        r.server_cpu_pct,
        r.client_cpu_pct,
        r.softirqd_cpu_pct,
        r.machine_busy_pct,
        rest(r),
    );
    println!(
        "after the sends: chatd RSS {} (peak {}), client RSS {}; idle again: chatd RSS {} = {:.1} KiB per connection over the baseline",
        kib(r.server_after.rss_kib),
        kib(r.server_after.hwm_kib),
        kib(r.client_after.rss_kib),
        kib(r.server_after_idle.rss_kib),
        r.server_after_idle_kib_per_conn,
    );
}

// ---------------------------------------------------------------------------------------------
// table

fn cmd_table(files: &[String]) -> Res<()> {
    let reports: Vec<Report> =
        files.iter().map(|f| Ok(serde_json::from_str(&std::fs::read_to_string(f)?)?)).collect::<Res<_>>()?;
    println!("| run | subscribers | msgs/s | sent | expected | received | missing | dup | deliveries/s | p50 ms | p90 ms | p99 ms | max ms | send p50 ms | send p99 ms | chatd CPU | client CPU | ksoftirqd | rest of machine |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
    for r in reports.iter().filter(|r| r.sent_ok + r.send_errors > 0) {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {:.0}% | {:.0}% |",
            r.label,
            r.subscribers,
            r.rate,
            r.sent_ok,
            r.expected_deliveries,
            r.received,
            r.missing,
            r.duplicates,
            r.deliveries_per_sec,
            ms(r.latency_us.p50),
            ms(r.latency_us.p90),
            ms(r.latency_us.p99),
            ms(r.latency_us.max),
            ms(r.send_http_us.p50),
            ms(r.send_http_us.p99),
            r.server_cpu_pct,
            r.client_cpu_pct,
            r.softirqd_cpu_pct,
            rest(r),
        );
    }
    println!();
    println!("| run | idle connections | chatd RSS before KiB | chatd RSS after KiB | KiB per connection | KiB per added connection | chatd anon before → after KiB | client RSS before → after KiB | client KiB per connection | chatd KiB per connection, idle again after the sends |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &reports {
        for s in &r.steps {
            let after = if r.sent_ok > 0 && s.connections == r.subscribers {
                format!("{:.1} (RSS {})", r.server_after_idle_kib_per_conn, r.server_after_idle.rss_kib)
            } else {
                "–".into()
            };
            println!(
                "| {} | {} | {} | {} | {:.1} | {} | {} → {} | {} → {} | {:.1} | {} |",
                r.label,
                s.connections,
                r.baseline_server.rss_kib,
                s.server.rss_kib,
                s.server_kib_per_conn,
                s.server_marginal_kib_per_conn.map(|x| format!("{x:.1}")).unwrap_or_else(|| "–".into()),
                r.baseline_server.anon_kib,
                s.server.anon_kib,
                r.baseline_client.rss_kib,
                s.client.rss_kib,
                s.client_kib_per_conn,
                after,
            );
        }
    }
    Ok(())
}
