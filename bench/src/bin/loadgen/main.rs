//! loadgen: a small closed-loop load generator, built to cost the server's machine as little as
//! possible (the load runs on the same 2 cores as the server it measures). One generator for every
//! target: chatd and the echo over HTTP/1.1, Redis over RESP, NATS JetStream over the NATS
//! protocol (loadgen/exchange.rs holds what one request is for each, and how it is checked).
//!
//! Each of C connections keeps exactly one request in flight (no pipelining): write one request,
//! read its whole answer, record the latency, send the next. Raw keep-alive connections over
//! tokio `TcpStream`s; by default on one thread (a current-thread runtime), so it never competes
//! with the server for more than one core. Every answer is checked: a non-200 (or a Redis or
//! JetStream error), a 200 that is not the answer asked for (no `client_id`, a short page), a
//! broken connection are all counted and reported, never dropped.
//!
//! While it measures it also samples, from /proc, the CPU time of itself, of the server process
//! (`--server-pid`, per thread name) and of the whole machine. `table` adds, when run.sh could
//! count them with `perf stat` (file `<phase>.perf.csv`), the server's fdatasync calls and
//! context switches in the window: sends ÷ fdatasyncs is the average group-commit batch.
//!
//! Subcommands:
//!   loadgen run    --url URL [-c 32] [-d 10] [--warmup 1] [--chats FILE] [--workload send]
//!                  [--limit 50] [--total N] [--threads 1] [--text-bytes 64] [--label NAME]
//!                  [--json FILE] [--server-pid PID] [--until-server-exits PID]
//!   loadgen setup  --url http://127.0.0.1:PORT [--chats 100] --out FILE   (POST /chat/New ×N)
//!   loadgen setup  --url nats://127.0.0.1:PORT --stream NAME --subjects 'chat.>'
//!                  (creates a JetStream stream, file storage)
//!   loadgen verify --url http://127.0.0.1:PORT --chats FILE --expect N [--at-least]
//!                  (sum of the chats' last seqs; with --at-least, ≥ N)
//!   loadgen ready  --url http://127.0.0.1 --log FILE --chat ID --since-ns EPOCH_NS [--timeout 120]
//!                  (restart to ready: see loadgen/ready.rs)
//!   loadgen freeport                                                        (a free loopback port)
//!   loadgen table  FILE.json...                                             (the summary table)
//!   loadgen summary DIR                  (compare.sh's table against the targets: loadgen/summary.rs)
//!
//! URL is `http://127.0.0.1:PORT/path`, `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`.
//! Workloads: `send` (default), `history` (newest page of `--limit`), `new` (create chats).
//! With `--total N` it is a fill, not a measurement: it runs until N requests have been answered,
//! job j going to chat `j mod #chats` (so every chat gets the same count), and reports the rate;
//! `-d` then bounds it (it stops there, with what it has done).
//! Otherwise request n on connection i is for chat `i + n·C mod #chats`; a send's body is the
//! one a chat Send takes, `{"chat_id":..,"user_id":..,"text":..,"client_id":"<run>-<conn>-<n>"}`
//! (client ids unique).

mod exchange;
mod http;
mod nats;
mod ready;
mod resp;
mod summary;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exchange::{Answer, Chat, Conn, Proto, Scratch, Workload};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        usage();
    }
    let cmd = args.remove(0);
    let result = match cmd.as_str() {
        "run" => cmd_run(&args),
        "setup" => cmd_setup(&args),
        "verify" => cmd_verify(&args),
        "ready" => ready::cmd_ready(&args),
        "freeport" => cmd_freeport(),
        "table" => cmd_table(&args),
        "summary" => summary::cmd_summary(&args),
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("loadgen {cmd}: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: loadgen run|setup|verify|ready|freeport|table|summary ... (see the comment at the top of bench/src/bin/loadgen.rs)");
    std::process::exit(2);
}

/// Prints a loopback port that was free a moment ago (for servers that cannot take port 0).
fn cmd_freeport() -> Res<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", l.local_addr()?.port());
    Ok(())
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `--key value` pairs; positional arguments are returned separately.
fn flags(args: &[String]) -> Res<(BTreeMap<String, String>, Vec<String>)> {
    let mut map = BTreeMap::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(key) = a.strip_prefix('-') {
            let key = key.trim_start_matches('-').to_string();
            let value = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            map.insert(key, value.clone());
        } else {
            rest.push(a.clone());
        }
    }
    Ok((map, rest))
}

fn get<T: std::str::FromStr>(m: &BTreeMap<String, String>, keys: &[&str], default: T) -> Res<T> {
    for k in keys {
        if let Some(v) = m.get(*k) {
            return v.parse().map_err(|_| format!("bad value for --{k}: {v}").into());
        }
    }
    Ok(default)
}

/// A loopback target: the only kind this tool will load.
#[derive(Clone)]
struct Target {
    proto: Proto,
    addr: SocketAddr,
    host: String,
    path: String,
}

fn target(url: &str) -> Res<Target> {
    let (proto, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Proto::Http, rest)
    } else if let Some(rest) = url.strip_prefix("redis://") {
        (Proto::Redis, rest)
    } else if let Some(rest) = url.strip_prefix("nats://") {
        (Proto::Nats, rest)
    } else {
        return Err("the url must start with http://, redis:// or nats://".into());
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host.to_socket_addrs()?.next().ok_or("the url's host does not resolve")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address; loadgen only loads this machine").into());
    }
    Ok(Target { proto, addr, host: host.to_string(), path: path.to_string() })
}

// ---------------------------------------------------------------------------------------------
// run: the measured closed loop.

struct RunOpts {
    target: Target,
    workload: Workload,
    /// History page size.
    limit: usize,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    chats: Vec<Chat>,
    text_bytes: usize,
    run_id: String,
    /// A fill: stop once this many jobs have been taken (`next_job` counts them).
    total: Option<u64>,
    next_job: AtomicU64,
    /// `--until-server-exits PID`: once that process is gone, connections stop (rather than
    /// hammer a dead port) and the run ends early; for a load that is cut by `kill -9`.
    until_exit: Option<u32>,
}

/// The process is gone (or a zombie waiting for its parent).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) == Some("Z"),
        Err(_) => true,
    }
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

struct ConnStats {
    hist: Histogram<u64>,
    /// In the measured window.
    ok: u64,
    non_200: BTreeMap<String, u64>,
    conn_errors: u64,
    bad_body: u64,
    /// Over the whole run: warm-up, window, and the requests in flight at its end.
    total_ok: u64,
    total_errors: u64,
    samples: Vec<String>,
}

impl ConnStats {
    fn new() -> Self {
        ConnStats {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ok: 0,
            non_200: BTreeMap::new(),
            conn_errors: 0,
            bad_body: 0,
            total_ok: 0,
            total_errors: 0,
            samples: Vec::new(),
        }
    }

    fn sample(&mut self, what: String) {
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }
}

async fn connection(i: usize, o: Arc<RunOpts>, w: Window) -> ConnStats {
    let mut st = ConnStats::new();
    let mut scratch = Scratch::default();
    let mut client_id = Vec::with_capacity(64);
    let mut conn: Option<Conn> = None;
    let mut n: u64 = 0;
    loop {
        if Instant::now() >= w.end {
            break;
        }
        // A fill takes numbered jobs until there are none left; a measurement runs on the clock.
        let (chat, job) = match o.total {
            Some(total) => {
                let j = o.next_job.fetch_add(1, Ordering::Relaxed);
                if j >= total {
                    break;
                }
                (&o.chats[(j % o.chats.len() as u64) as usize], j)
            }
            None => (&o.chats[(i + n as usize * o.conns) % o.chats.len()], n),
        };
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(&o, i).await {
                Ok(c) => conn.insert(c),
                Err(_) if o.until_exit.is_some_and(gone) => break,
                Err(e) => {
                    st.total_errors += 1;
                    if Instant::now() >= w.start {
                        st.conn_errors += 1;
                    }
                    st.sample(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        client_id.clear();
        let _ = write!(client_id, "{}-{i}-{n}", o.run_id);
        n += 1;

        let t0 = Instant::now();
        let result = c.call(&o, &mut scratch, chat, &client_id, job).await;
        let t1 = Instant::now();
        let in_window = t1 >= w.start && t1 < w.end;
        match result {
            Ok((answer, close)) => {
                match answer {
                    Answer::Ok => {
                        st.total_ok += 1;
                        if in_window {
                            st.ok += 1;
                            let us = (t1 - t0).as_micros().max(1) as u64;
                            let _ = st.hist.record(us.min(60_000_000));
                        }
                    }
                    Answer::Refused(code, text) => {
                        st.total_errors += 1;
                        if in_window {
                            *st.non_200.entry(code.clone()).or_default() += 1;
                        }
                        st.sample(format!("{code}: {text}"));
                    }
                    Answer::Bad(text) => {
                        st.total_errors += 1;
                        if in_window {
                            st.bad_body += 1;
                        }
                        st.sample(format!("bad answer: {text}"));
                    }
                }
                if close {
                    conn = None;
                }
            }
            Err(_) if o.until_exit.is_some_and(gone) => break,
            Err(e) => {
                st.total_errors += 1;
                if in_window {
                    st.conn_errors += 1;
                }
                st.sample(format!("i/o: {e}"));
                conn = None;
            }
        }
    }
    st
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Report {
    label: String,
    url: String,
    connections: usize,
    window_s: f64,
    warmup_s: f64,
    ok: u64,
    rps: f64,
    mean_us: f64,
    p50_us: u64,
    p90_us: u64,
    p99_us: u64,
    p999_us: u64,
    max_us: u64,
    non_200: BTreeMap<String, u64>,
    conn_errors: u64,
    bad_body: u64,
    /// Every error of the window (non-200 + bad body + connection).
    errors: u64,
    /// Over the whole run, warm-up and tail included.
    total_ok: u64,
    total_errors: u64,
    error_samples: Vec<String>,
    /// CPU use in the window, in % of one core.
    loadgen_cpu_pct: f64,
    machine_busy_pct: f64,
    /// Of machine_busy: interrupt and softirq time (with tick accounting, partly also charged to
    /// whichever process was current) and hypervisor steal.
    #[serde(default)]
    machine_irq_pct: f64,
    #[serde(default)]
    machine_steal_pct: f64,
    server_cpu_pct: Option<f64>,
    server_threads_pct: BTreeMap<String, f64>,
}

/// What `perf stat` counted on the server during a phase's window (`<phase>.perf.csv`).
#[derive(Default)]
struct PerfCounts {
    fdatasync: Option<f64>,
    context_switches: Option<f64>,
}

fn perf_counts(json_file: &str) -> PerfCounts {
    let mut c = PerfCounts::default();
    let csv = json_file.trim_end_matches(".json").to_string() + ".perf.csv";
    let Ok(text) = std::fs::read_to_string(csv) else {
        return c;
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(v), Some(name)) = (f.first().and_then(|v| v.parse::<f64>().ok()), f.get(2)) else {
            continue;
        };
        match *name {
            "syscalls:sys_enter_fdatasync" => c.fdatasync = Some(v),
            "context-switches" => c.context_switches = Some(v),
            _ => {}
        }
    }
    c
}

fn cmd_run(args: &[String]) -> Res<()> {
    let (m, _) = flags(args)?;
    let url = m.get("url").ok_or("--url is required")?;
    let target = target(url)?;
    let conns: usize = get(&m, &["c", "connections"], 32)?;
    let secs: f64 = get(&m, &["d", "duration"], 10.0)?;
    let warmup: f64 = get(&m, &["warmup"], 1.0)?;
    let threads: usize = get(&m, &["threads"], 1)?;
    let text_bytes: usize = get(&m, &["text-bytes"], 64)?.max(20);
    let label: String = get(&m, &["label"], "run".to_string())?;
    let server_pid: Option<u32> = m.get("server-pid").map(|p| p.parse()).transpose()?;
    let workload = Workload::parse(&get(&m, &["workload"], "send".to_string())?)?;
    let limit: usize = get(&m, &["limit"], 50)?;
    let total: Option<u64> = m.get("total").map(|t| t.parse()).transpose()?;
    let chats = match m.get("chats") {
        Some(file) => read_chats(file)?,
        None => (0..100).map(|i| Chat::new(&format!("chat-{i}"), &format!("user-{i}"))).collect(),
    };
    if chats.is_empty() || conns == 0 {
        return Err("need at least one chat and one connection".into());
    }
    let run_id = format!(
        "{}{:x}",
        label.chars().filter(char::is_ascii_alphanumeric).collect::<String>(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros()
    );
    let opts = Arc::new(RunOpts {
        target,
        workload,
        limit,
        conns,
        // A fill measures from its first request to its last.
        warmup: if total.is_some() { Duration::ZERO } else { Duration::from_secs_f64(warmup) },
        // A fill's -d, if given, bounds it: it stops there with the jobs done so far.
        duration: if total.is_some() && !m.contains_key("d") && !m.contains_key("duration") {
            Duration::from_secs(86_400)
        } else {
            Duration::from_secs_f64(secs)
        },
        chats,
        text_bytes,
        run_id,
        total,
        next_job: AtomicU64::new(0),
        until_exit: m.get("until-server-exits").map(|p| p.parse()).transpose()?,
    });
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    let report = rt.block_on(run(opts.clone(), label, url.clone(), server_pid))?;
    print_report(&report);
    if let Some(file) = m.get("json") {
        std::fs::write(file, serde_json::to_string_pretty(&report)?)?;
    }
    if opts.total.is_some() && report.total_errors > 0 {
        return Err(format!("the fill had {} failed requests", report.total_errors).into());
    }
    Ok(())
}

/// `chat_id<TAB>user_id` lines (for Redis the stream key, for NATS the subject).
fn read_chats(file: &str) -> Res<Vec<Chat>> {
    let text = std::fs::read_to_string(file)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (chat, user) =
            line.split_once('\t').ok_or_else(|| format!("{file}: expected `chat_id<TAB>user_id` lines"))?;
        out.push(Chat::new(chat, user));
    }
    Ok(out)
}

async fn run(o: Arc<RunOpts>, label: String, url: String, pid: Option<u32>) -> Res<Report> {
    let start = Instant::now() + o.warmup;
    let w = Window { start, end: start + o.duration };
    let tasks: Vec<_> = (0..o.conns).map(|i| tokio::spawn(connection(i, o.clone(), w))).collect();
    let mut stats = Vec::with_capacity(tasks.len());
    let (before, after, window_s) = if o.total.is_some() {
        let before = CpuSample::take(pid);
        for t in tasks {
            stats.push(t.await?);
        }
        let after = CpuSample::take(pid);
        let secs = (after.at - before.at).as_secs_f64();
        (before, after, secs)
    } else {
        tokio::time::sleep_until(w.start.into()).await;
        let before = CpuSample::take(pid);
        while Instant::now() < w.end && !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = CpuSample::take(pid);
        for t in tasks {
            stats.push(t.await?);
        }
        // A load cut short by the server's exit lasted until then.
        let window =
            if o.until_exit.is_some() { (after.at - before.at).as_secs_f64() } else { o.duration.as_secs_f64() };
        (before, after, window)
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut r =
        Report { label, url, connections: o.conns, window_s, warmup_s: o.warmup.as_secs_f64(), ..Default::default() };
    for st in stats {
        hist.add(&st.hist)?;
        r.ok += st.ok;
        for (code, n) in st.non_200 {
            *r.non_200.entry(code).or_default() += n;
        }
        r.conn_errors += st.conn_errors;
        r.bad_body += st.bad_body;
        r.total_ok += st.total_ok;
        r.total_errors += st.total_errors;
        for s in st.samples {
            if r.error_samples.len() < 5 {
                r.error_samples.push(s);
            }
        }
    }
    r.errors = r.non_200.values().sum::<u64>() + r.conn_errors + r.bad_body;
    r.rps = r.ok as f64 / r.window_s;
    r.mean_us = hist.mean();
    r.p50_us = hist.value_at_quantile(0.50);
    r.p90_us = hist.value_at_quantile(0.90);
    r.p99_us = hist.value_at_quantile(0.99);
    r.p999_us = hist.value_at_quantile(0.999);
    r.max_us = hist.max();
    after.diff(&before, &mut r);
    Ok(r)
}

fn print_report(r: &Report) {
    println!(
        "{:<16} {:>9.0} req/s  p50 {:>6} µs  p99 {:>6} µs  max {:>7} µs  ok {:>8}  errors {}  | cpu: loadgen {:.0}%  server {}  machine {:.0}%",
        r.label,
        r.rps,
        r.p50_us,
        r.p99_us,
        r.max_us,
        r.ok,
        r.errors,
        r.loadgen_cpu_pct,
        r.server_cpu_pct.map_or("-".into(), |c| format!("{c:.0}%")),
        r.machine_busy_pct,
    );
    if r.total_errors > 0 {
        println!(
            "  ERRORS: {} in the window ({:?} non-200, {} connection, {} bad body), {} over the whole run",
            r.errors, r.non_200, r.conn_errors, r.bad_body, r.total_errors
        );
        for s in &r.error_samples {
            println!("    e.g. {s}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc.

struct CpuSample {
    at: Instant,
    self_cpu: f64,
    machine_busy: u64,
    machine_total: u64,
    machine_irq: u64,
    machine_steal: u64,
    /// CPU seconds, in all and by thread name.
    server: Option<(f64, BTreeMap<String, f64>)>,
}

fn ticks() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// utime + stime in seconds, and the command name, of a /proc/.../stat file.
fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text[open + 1..close].to_string();
    let f: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / ticks()))
}

impl CpuSample {
    fn take(pid: Option<u32>) -> CpuSample {
        let at = Instant::now();
        let self_cpu = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(u.ru_utime) + tv(u.ru_stime)
        };
        let (mut busy, mut total, mut irq, mut steal) = (0, 0, 0, 0);
        if let Ok(text) = std::fs::read_to_string("/proc/stat") {
            if let Some(line) = text.lines().next() {
                let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal (guest is inside user)
                total = v.iter().take(8).sum();
                busy = total - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0);
                irq = v.get(5).copied().unwrap_or(0) + v.get(6).copied().unwrap_or(0);
                steal = v.get(7).copied().unwrap_or(0);
            }
        }
        let server = pid.and_then(|pid| {
            let (_, cpu) = stat_cpu(&format!("/proc/{pid}/stat"))?;
            let mut threads = BTreeMap::new();
            for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
                let dir = entry.path();
                let Some((name, t)) = stat_cpu(&format!("{}/stat", dir.display())) else {
                    continue;
                };
                // Group numbered threads ("actix-rt|system:0|arbiter:3") by their kind.
                let kind = name.trim_end_matches(|c: char| c.is_ascii_digit()).to_string();
                *threads.entry(kind).or_insert(0.0) += t;
            }
            Some((cpu, threads))
        });
        CpuSample {
            at,
            self_cpu,
            machine_busy: busy,
            machine_total: total,
            machine_irq: irq,
            machine_steal: steal,
            server,
        }
    }

    fn diff(&self, before: &CpuSample, r: &mut Report) {
        let wall = (self.at - before.at).as_secs_f64().max(1e-9);
        r.loadgen_cpu_pct = 100.0 * (self.self_cpu - before.self_cpu) / wall;
        let total = self.machine_total.saturating_sub(before.machine_total).max(1);
        let busy = self.machine_busy.saturating_sub(before.machine_busy);
        // % of one core, like the others: 200% = both cores of this machine.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share = |a: u64, b: u64| 100.0 * cores * a.saturating_sub(b) as f64 / total as f64;
        r.machine_busy_pct = 100.0 * cores * busy as f64 / total as f64;
        r.machine_irq_pct = share(self.machine_irq, before.machine_irq);
        r.machine_steal_pct = share(self.machine_steal, before.machine_steal);
        if let (Some((c1, t1)), Some((c0, t0))) = (&self.server, &before.server) {
            r.server_cpu_pct = Some(100.0 * (c1 - c0) / wall);
            for (name, t) in t1 {
                let d = t - t0.get(name).copied().unwrap_or(0.0);
                r.server_threads_pct.insert(name.clone(), 100.0 * d / wall);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// setup, verify, table.

fn cmd_setup(args: &[String]) -> Res<()> {
    let (m, _) = flags(args)?;
    let t = target(m.get("url").ok_or("--url is required")?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if t.proto == Proto::Nats {
        let name = m.get("stream").ok_or("--stream is required")?;
        let subjects = m.get("subjects").ok_or("--subjects is required")?;
        let config = serde_json::json!({
            "name": name, "subjects": [subjects], "storage": "file", "retention": "limits",
            "discard": "old", "num_replicas": 1,
        });
        let reply = rt.block_on(async {
            let mut c = nats::Conn::connect(t.addr, "_INBOX.setup".into()).await?;
            c.request(&format!("$JS.API.STREAM.CREATE.{name}"), None, config.to_string().as_bytes(), 0).await
        })?;
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
        if v.get("error").is_some() || v.get("config").is_none() {
            return Err(format!("creating stream {name}: {:?} {v}", reply.status).into());
        }
        println!("created JetStream stream {name} ({subjects}, storage {})", v["config"]["storage"]);
        return Ok(());
    }
    let n: usize = get(&m, &["chats"], 100)?;
    let out = m.get("out").ok_or("--out is required")?;
    let lines = rt.block_on(async {
        let mut lines = String::new();
        for i in 0..n {
            // A distinct member set per chat (New is idempotent on the set).
            let (a, b) = (format!("bench-u{i}-a"), format!("bench-u{i}-b"));
            let body = serde_json::json!({ "user_ids": [a, b] }).to_string();
            let (status, v) = http::call(&t, "/chat/New", &body).await?;
            let id = v["chat_id"]
                .as_str()
                .filter(|_| status == 200)
                .ok_or_else(|| format!("POST /chat/New answered {status}: {v}"))?;
            lines.push_str(&format!("{id}\t{a}\n"));
        }
        Ok::<_, Box<dyn std::error::Error>>(lines)
    })?;
    std::fs::write(out, lines)?;
    println!("created {n} chats");
    Ok(())
}

/// The messages the chats hold: chatd's last seqs (History, limit 1), or Redis's XLEN.
fn cmd_verify(args: &[String]) -> Res<()> {
    let (m, _) = flags(args)?;
    let t = target(m.get("url").ok_or("--url is required")?)?;
    let chats = read_chats(m.get("chats").ok_or("--chats is required")?)?;
    let expect: Option<u64> = m.get("expect").map(|v| v.parse()).transpose()?;
    let min: Option<u64> = m.get("min").map(|v| v.parse()).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stored = rt.block_on(async {
        let mut stored = 0u64;
        let mut redis = match t.proto {
            Proto::Redis => Some(resp::Conn::connect(t.addr).await?),
            _ => None,
        };
        for chat in &chats {
            if let Some(c) = redis.as_mut() {
                let mut cmd = Vec::new();
                resp::put_command(&mut cmd, &[b"XLEN", chat.id.as_bytes()]);
                c.send(&cmd).await?;
                stored += c.reply(|r| r.int()).await?.map_err(|e| format!("XLEN {}: {e}", chat.id))? as u64;
                continue;
            }
            let body = format!("{{\"chat_id\":{},\"limit\":1}}", chat.id_json);
            let (status, v) = http::call(&t, "/chat/History", &body).await?;
            if status != 200 {
                return Err(format!("POST /chat/History answered {status}: {v}").into());
            }
            stored += v["messages"][0]["seq"].as_u64().unwrap_or(0);
        }
        Ok::<_, Box<dyn std::error::Error>>(stored)
    })?;
    let n = chats.len();
    match (expect, min) {
        (Some(e), _) if e == stored => {
            println!("verified: the {n} chats hold {stored} messages = the {e} sends answered 200");
            Ok(())
        }
        (Some(e), _) => Err(format!("the {n} chats hold {stored} messages but {e} sends were answered 200").into()),
        (None, Some(e)) if stored >= e => {
            println!("verified: the {n} chats hold {stored} messages >= the {e} sends answered 200");
            Ok(())
        }
        (None, Some(e)) => {
            Err(format!("the {n} chats hold {stored} messages, fewer than the {e} sends answered 200").into())
        }
        (None, None) => {
            println!("the {n} chats hold {stored} messages");
            Ok(())
        }
    }
}

/// Prints the summary: one row per phase, then each kind's mean and its ratio to `echo`.
fn cmd_table(files: &[String]) -> Res<()> {
    let mut reports = Vec::new();
    let mut perf = Vec::new();
    for f in files {
        let r: Report = serde_json::from_str(&std::fs::read_to_string(f)?)?;
        reports.push(r);
        perf.push(perf_counts(f));
    }
    println!("| phase | req/s | p50 µs | p99 µs | max µs | errors | loadgen CPU | server CPU | server CPU µs/req | rest of machine | fsyncs/s | sends per fsync | ctx switches/req |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, p) in reports.iter().zip(&perf) {
        let per_s = |v: Option<f64>| v.map(|v| v / r.window_s);
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {:.0}% | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.rps,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.errors,
            r.loadgen_cpu_pct,
            r.server_cpu_pct.map_or("-".into(), |c| format!("{c:.0}%")),
            r.server_cpu_pct.filter(|_| r.rps > 0.0).map_or("-".into(), |c| format!("{:.1}", c / 100.0 / r.rps * 1e6)),
            // CPU busy on the machine beyond loadgen and server: other tenants, kernel threads
            // doing this server's I/O (block completions, ext4 journal), softirqs that ran while
            // no process of ours was current, hypervisor steal.
            r.server_cpu_pct
                .map_or("-".into(), |c| { format!("{:.0}%", (r.machine_busy_pct - r.loadgen_cpu_pct - c).max(0.0)) }),
            // A handful of syncs (a checkpoint's) in a window is not group commit: no batch size.
            per_s(p.fdatasync).map_or("-".into(), |f| format!("{f:.0}")),
            per_s(p.fdatasync).filter(|&f| f >= 10.0).map_or("-".into(), |f| format!("{:.1}", r.rps / f)),
            per_s(p.context_switches).filter(|_| r.rps > 0.0).map_or("-".into(), |c| format!("{:.2}", c / r.rps)),
        );
    }
    // Group by the label before '#': "echo#1", "echo#2" → "echo".
    let kind = |r: &Report| r.label.split('#').next().unwrap_or("").to_string();
    let mut groups: Vec<(String, Vec<&Report>)> = Vec::new();
    for r in &reports {
        match groups.iter_mut().find(|(k, _)| *k == kind(r)) {
            Some((_, v)) => v.push(r),
            None => groups.push((kind(r), vec![r])),
        }
    }
    let mean = |v: &[&Report], f: fn(&Report) -> f64| v.iter().map(|r| f(r)).sum::<f64>() / v.len() as f64;
    let echo = groups.iter().find(|(k, _)| k == "echo").map(|(_, v)| mean(v, |r| r.rps));
    println!();
    println!("| kind | phases | mean req/s | min–max req/s | mean p50 µs | mean p99 µs | ratio to echo (of means) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (k, v) in &groups {
        let rps = mean(v, |r| r.rps);
        let lo = v.iter().map(|r| r.rps).fold(f64::INFINITY, f64::min);
        let hi = v.iter().map(|r| r.rps).fold(0.0, f64::max);
        println!(
            "| {k} | {} | {rps:.0} | {lo:.0}–{hi:.0} | {:.0} | {:.0} | {} |",
            v.len(),
            mean(v, |r| r.p50_us as f64),
            mean(v, |r| r.p99_us as f64),
            echo.map_or("-".into(), |e| format!("{:.3}", rps / e)),
        );
    }
    // Per round: phase "X#k" against "echo#k".
    let mut rounds = Vec::new();
    for r in &reports {
        if let Some((k, round)) = r.label.split_once('#') {
            if k == "echo" {
                continue;
            }
            if let Some(e) = reports.iter().find(|e| e.label == format!("echo#{round}")) {
                rounds.push(format!("{} / {} = {:.3}", r.label, e.label, r.rps / e.rps));
            }
        }
    }
    if !rounds.is_empty() {
        println!();
        println!("per-round ratios: {}", rounds.join(";  "));
    }
    let errors: u64 = reports.iter().map(|r| r.total_errors).sum();
    if errors > 0 {
        println!();
        println!("WARNING: {errors} requests failed (see each phase's error lines above)");
    }
    Ok(())
}
