//! loadgen: a small closed-loop HTTP/1.1 load generator, built to cost the server's machine as
//! little as possible (the load runs on the same 2 cores as the server it measures).
//!
//! Each of C connections keeps exactly one request in flight (no pipelining): write one POST,
//! read its whole response, record the latency, send the next. Raw keep-alive HTTP/1.1 over a
//! tokio `TcpStream`, parsed with `httparse`; by default on one thread (a current-thread runtime),
//! so it never competes with the server for more than one core. Every response is checked: a
//! non-200, a 200 whose body does not carry the request's `client_id`, a broken connection are
//! all counted and reported, never dropped.
//!
//! While it measures it also samples, from /proc, the CPU time of itself, of the server process
//! (`--server-pid`, per thread name) and of the whole machine. `table` adds, when run.sh could
//! count them with `perf stat` (file `<phase>.perf.csv`), the server's fdatasync calls and
//! context switches in the window: sends ÷ fdatasyncs is the average group-commit batch.
//!
//! Subcommands:
//!   loadgen run    --url http://127.0.0.1:PORT/path [-c 32] [-d 10] [--warmup 1] [--chats FILE]
//!                  [--threads 1] [--text-bytes 64] [--label NAME] [--json FILE] [--server-pid PID]
//!   loadgen setup  --url http://127.0.0.1:PORT [--chats 100] --out FILE   (POST /chat/New ×N)
//!   loadgen verify --url http://127.0.0.1:PORT --chats FILE --expect N    (sum of last seqs)
//!   loadgen table  FILE.json...                                             (the summary table)
//!
//! The body of every request is the one a chat Send takes, for chat `i + n·C mod #chats`:
//! `{"chat_id":..,"user_id":..,"text":..,"client_id":"<run>-<conn>-<n>"}` (client ids unique).

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        "table" => cmd_table(&args),
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("loadgen {cmd}: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: loadgen run|setup|verify|table ... (see the comment at the top of bench/src/bin/loadgen.rs)");
    std::process::exit(2);
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

/// A loopback HTTP target: the only kind this tool will load.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

fn target(url: &str) -> Res<Target> {
    let rest = url.strip_prefix("http://").ok_or("the url must start with http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host.to_socket_addrs()?.next().ok_or("the url's host does not resolve")?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address; loadgen only loads this machine").into());
    }
    Ok(Target { addr, host: host.to_string(), path: path.to_string() })
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1, the little of it a closed loop needs.

struct Response {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

fn put_request(out: &mut Vec<u8>, t: &Target, path: &str, body: &[u8]) {
    out.clear();
    let _ = write!(
        out,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        t.host,
        body.len()
    );
    out.extend_from_slice(body);
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(8192);
    }
    s.read_buf(buf).await
}

/// Reads one whole response (Content-Length, chunked, or until close). `buf` is scratch.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    buf.clear();
    loop {
        let (status, head_len, length, chunked, close) = {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut length = None;
                    let mut chunked = false;
                    let mut close = resp.version == Some(0);
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            length = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = h.value.eq_ignore_ascii_case(b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    (resp.code.unwrap_or(0), n, length, chunked, close)
                }
                Ok(httparse::Status::Partial) => {
                    if fill(s, buf).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before a response",
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        };
        let no_body = status == 204 || status == 304 || (100..200).contains(&status);
        let body = if no_body {
            Vec::new()
        } else if let Some(len) = length {
            while buf.len() < head_len + len {
                if fill(s, buf).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated body"));
                }
            }
            buf[head_len..head_len + len].to_vec()
        } else if chunked {
            loop {
                if let Some(body) = dechunk(&buf[head_len..])? {
                    break body;
                }
                if fill(s, buf).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated chunks"));
                }
            }
        } else {
            while fill(s, buf).await? != 0 {}
            let body = buf[head_len..].to_vec();
            return Ok(Response { status, body, close: true });
        };
        return Ok(Response { status, body, close });
    }
}

/// The body of a complete chunked encoding, or None if more bytes are needed.
fn dechunk(mut data: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete((n, size))) => {
                let size = size as usize;
                if size == 0 {
                    // Trailers are not expected; the final CRLF must be there.
                    return Ok(if data.len() >= n + 2 { Some(body) } else { None });
                }
                if data.len() < n + size + 2 {
                    return Ok(None);
                }
                body.extend_from_slice(&data[n..n + size]);
                data = &data[n + size + 2..];
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// One request on a fresh connection (setup and verify; not on the measured path).
async fn call(t: &Target, path: &str, body: &str) -> Res<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(t.addr).await?;
    let mut req = Vec::new();
    put_request(&mut req, t, path, body.as_bytes());
    s.write_all(&req).await?;
    let mut buf = Vec::new();
    let resp = read_response(&mut s, &mut buf).await?;
    let value = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    Ok((resp.status, value))
}

// ---------------------------------------------------------------------------------------------
// run: the measured closed loop.

struct RunOpts {
    target: Target,
    conns: usize,
    warmup: Duration,
    duration: Duration,
    /// (chat id, user id), each already a JSON string literal.
    chats: Vec<(String, String)>,
    text_bytes: usize,
    run_id: String,
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
    non_200: BTreeMap<u16, u64>,
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
    let mut req = Vec::with_capacity(1024);
    let mut body = Vec::with_capacity(512);
    let mut client_id = Vec::with_capacity(64);
    let mut buf = Vec::with_capacity(8192);
    let mut stream: Option<TcpStream> = None;
    let mut n: usize = 0;
    let text_pad = "x".repeat(o.text_bytes);
    loop {
        if Instant::now() >= w.end {
            break;
        }
        let s = match stream.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(o.target.addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream.insert(s)
                }
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
        let (chat, user) = &o.chats[(i + n * o.conns) % o.chats.len()];
        client_id.clear();
        let _ = write!(client_id, "{}-{i}-{n}", o.run_id);
        body.clear();
        let _ = write!(body, "{{\"chat_id\":{chat},\"user_id\":{user},\"text\":\"bench message {n} ");
        let room = o.text_bytes.saturating_sub(20);
        body.extend_from_slice(&text_pad.as_bytes()[..room]);
        body.extend_from_slice(b"\",\"client_id\":\"");
        body.extend_from_slice(&client_id);
        body.extend_from_slice(b"\"}");
        put_request(&mut req, &o.target, &o.target.path, &body);
        n += 1;

        let t0 = Instant::now();
        let result = match s.write_all(&req).await {
            Ok(()) => read_response(s, &mut buf).await,
            Err(e) => Err(e),
        };
        let t1 = Instant::now();
        let in_window = t1 >= w.start && t1 < w.end;
        match result {
            Ok(resp) => {
                if resp.status == 200 && contains(&resp.body, &client_id) {
                    st.total_ok += 1;
                    if in_window {
                        st.ok += 1;
                        let us = (t1 - t0).as_micros().max(1) as u64;
                        let _ = st.hist.record(us.min(60_000_000));
                    }
                } else {
                    st.total_errors += 1;
                    if in_window {
                        if resp.status == 200 {
                            st.bad_body += 1;
                        } else {
                            *st.non_200.entry(resp.status).or_default() += 1;
                        }
                    }
                    let text = String::from_utf8_lossy(&resp.body);
                    st.sample(format!("{}: {}", resp.status, text.chars().take(300).collect::<String>()));
                }
                if resp.close {
                    stream = None;
                }
            }
            Err(e) => {
                st.total_errors += 1;
                if in_window {
                    st.conn_errors += 1;
                }
                st.sample(format!("i/o: {e}"));
                stream = None;
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
    let chats = match m.get("chats") {
        Some(file) => read_chats(file)?,
        None => (0..100).map(|i| (format!("\"chat-{i}\""), format!("\"user-{i}\""))).collect(),
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
        conns,
        warmup: Duration::from_secs_f64(warmup),
        duration: Duration::from_secs_f64(secs),
        chats,
        text_bytes,
        run_id,
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
    Ok(())
}

fn read_chats(file: &str) -> Res<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file)?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (chat, user) =
            line.split_once('\t').ok_or_else(|| format!("{file}: expected `chat_id<TAB>user_id` lines"))?;
        out.push((serde_json::to_string(chat)?, serde_json::to_string(user)?));
    }
    Ok(out)
}

async fn run(o: Arc<RunOpts>, label: String, url: String, pid: Option<u32>) -> Res<Report> {
    let start = Instant::now() + o.warmup;
    let w = Window { start, end: start + o.duration };
    let tasks: Vec<_> = (0..o.conns).map(|i| tokio::spawn(connection(i, o.clone(), w))).collect();
    tokio::time::sleep_until(w.start.into()).await;
    let before = CpuSample::take(pid);
    tokio::time::sleep_until(w.end.into()).await;
    let after = CpuSample::take(pid);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut r = Report {
        label,
        url,
        connections: o.conns,
        window_s: o.duration.as_secs_f64(),
        warmup_s: o.warmup.as_secs_f64(),
        ..Default::default()
    };
    for t in tasks {
        let st = t.await?;
        hist.add(&st.hist)?;
        r.ok += st.ok;
        for (code, n) in st.non_200 {
            *r.non_200.entry(code.to_string()).or_default() += n;
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
    let n: usize = get(&m, &["chats"], 100)?;
    let out = m.get("out").ok_or("--out is required")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lines = rt.block_on(async {
        let mut lines = String::new();
        for i in 0..n {
            // A distinct member set per chat (New is idempotent on the set).
            let (a, b) = (format!("bench-u{i}-a"), format!("bench-u{i}-b"));
            let body = serde_json::json!({ "user_ids": [a, b] }).to_string();
            let (status, v) = call(&t, "/chat/New", &body).await?;
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

fn cmd_verify(args: &[String]) -> Res<()> {
    let (m, _) = flags(args)?;
    let t = target(m.get("url").ok_or("--url is required")?)?;
    let chats = read_chats(m.get("chats").ok_or("--chats is required")?)?;
    let expect: Option<u64> = m.get("expect").map(|v| v.parse()).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stored = rt.block_on(async {
        let mut stored = 0u64;
        for (chat, _) in &chats {
            let body = format!("{{\"chat_id\":{chat},\"limit\":1}}");
            let (status, v) = call(&t, "/chat/History", &body).await?;
            if status != 200 {
                return Err(format!("POST /chat/History answered {status}: {v}").into());
            }
            stored += v["messages"][0]["seq"].as_u64().unwrap_or(0);
        }
        Ok::<_, Box<dyn std::error::Error>>(stored)
    })?;
    match expect {
        Some(e) if e == stored => {
            println!("verified: the {} chats hold {stored} messages = the {e} sends answered 200", chats.len());
            Ok(())
        }
        Some(e) => {
            Err(format!("the {} chats hold {stored} messages but {e} sends were answered 200", chats.len()).into())
        }
        None => {
            println!("the {} chats hold {stored} messages", chats.len());
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
