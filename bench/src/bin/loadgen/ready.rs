//! `loadgen ready`: restart to ready. The caller (compare.sh) notes the time, spawns chatd with
//! its log going to `--log`, and starts this at once with that time (`--since-ns`, nanoseconds
//! since the epoch). It waits for the log's `chatd listening ... port=N` line (chatd binds after
//! recovery, port 0 picks a fresh port), then asks `POST /chat/History {"chat_id": --chat,
//! "limit": 1}` on a fresh connection every millisecond until one is answered 200 with a
//! message. Ready = that answer's arrival − the spawn time. It prints the port on its last line
//! (`port N`) for the caller.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{flags, get, http, target, Res};

#[derive(serde::Serialize)]
struct Ready {
    /// Spawn → the first History answered 200 with a message.
    ready_s: f64,
    /// Spawn → the listening line seen in the log.
    listening_s: f64,
    port: u16,
    /// Requests that failed (refused, reset, not 200) before the first good one.
    failed_attempts: u64,
}

fn since(t0_ns: u128) -> f64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    now.saturating_sub(t0_ns) as f64 / 1e9
}

/// The port of the `chatd listening` line, if the log has it yet.
fn port_in_log(log: &str) -> Option<u16> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("chatd listening"))?;
    let at = line.find("port=")? + 5;
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

pub fn cmd_ready(args: &[String]) -> Res<()> {
    let (m, _) = flags(args)?;
    let log = m.get("log").ok_or("--log is required")?;
    let chat = m.get("chat").ok_or("--chat is required")?;
    let t0: u128 = get(&m, &["since-ns"], 0)?;
    if t0 == 0 {
        return Err("--since-ns is required".into());
    }
    let timeout = Duration::from_secs_f64(get(&m, &["timeout"], 120.0)?);
    let pid: Option<u32> = m.get("pid").map(|p| p.parse()).transpose()?;
    let started = Instant::now();
    let alive = || pid.is_none_or(|p| std::path::Path::new(&format!("/proc/{p}")).exists());

    let port = loop {
        if let Some(port) = port_in_log(log) {
            break port;
        }
        if !alive() {
            return Err(format!("the server exited before listening; see {log}").into());
        }
        if started.elapsed() > timeout {
            return Err(format!("no `chatd listening` line in {log} after {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let listening_s = since(t0);
    let t = target(&format!("http://127.0.0.1:{port}"))?;
    let body = serde_json::json!({ "chat_id": chat, "limit": 1 }).to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut failed = 0u64;
    let mut last = String::new();
    let ready_s = rt.block_on(async {
        loop {
            match http::call(&t, "/chat/History", &body).await {
                Ok((200, v)) if v["messages"][0]["seq"].as_u64().is_some() => return Ok(since(t0)),
                Ok((status, v)) => last = format!("{status}: {v}"),
                Err(e) => last = e.to_string(),
            }
            failed += 1;
            if !alive() {
                return Err(format!("the server exited before it was ready ({last}); see {log}"));
            }
            if started.elapsed() > timeout {
                return Err(format!("not ready after {timeout:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })?;
    let r = Ready { ready_s, listening_s, port, failed_attempts: failed };
    println!(
        "ready in {:.3} s (listening logged at {:.3} s, {} failed attempts before)",
        r.ready_s, r.listening_s, r.failed_attempts
    );
    if let Some(file) = m.get("json") {
        std::fs::write(file, serde_json::to_string_pretty(&r)?)?;
    }
    println!("port {port}");
    Ok(())
}
