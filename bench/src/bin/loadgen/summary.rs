//! `loadgen summary DIR`: the table of a compare.sh run. It reads the run's raw results by
//! name (`send-chatd#1.json`, `fanout-redis#2.json`, `restart-kill#1.json`, `idle.json`, …),
//! puts each figure beside its peer and the target of issue 11, says whether it is met, and
//! then lists every load phase. A workload that was not run shows as such.

use std::path::Path;

use serde_json::Value;

use super::{cmd_table, Report, Res};

fn json(dir: &Path, name: &str) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).ok()
}

/// The rounds of one labelled phase: `<name>#1.json`, `<name>#2.json`, …
fn rounds(dir: &Path, name: &str) -> Vec<Value> {
    (1..).map_while(|r| json(dir, &format!("{name}#{r}.json"))).collect()
}

fn reports(dir: &Path, name: &str) -> Vec<Report> {
    rounds(dir, name).into_iter().filter_map(|v| serde_json::from_value(v).ok()).collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn k(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k/s", x / 1000.0)
    } else {
        format!("{x:.0}/s")
    }
}

fn ms(us: f64) -> String {
    format!("{:.1} ms", us / 1000.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "**yes**"
    } else {
        "**no**"
    }
}

/// "X/s, p50 a, p99 b" over rounds (means), and the errors if there were any.
fn load_figure(rs: &[Report]) -> String {
    let errors: u64 = rs.iter().map(|r| r.total_errors).sum();
    format!(
        "{}, p50 {}, p99 {}{}",
        k(mean(&rs.iter().map(|r| r.rps).collect::<Vec<_>>())),
        ms(mean(&rs.iter().map(|r| r.p50_us as f64).collect::<Vec<_>>())),
        ms(mean(&rs.iter().map(|r| r.p99_us as f64).collect::<Vec<_>>())),
        if errors > 0 { format!(", **{errors} errors**") } else { String::new() }
    )
}

/// A throughput ratio row: chatd's mean req/s over the peer's, and the per-round range.
fn ratio_row(out: &mut Vec<String>, what: &str, ours: &[Report], peer_name: &str, peer: &[Report], target: f64) {
    if ours.is_empty() || peer.is_empty() {
        out.push(format!("| {what} | not run | | | ≥ {target}× | - |"));
        return;
    }
    let ratio =
        mean(&ours.iter().map(|r| r.rps).collect::<Vec<_>>()) / mean(&peer.iter().map(|r| r.rps).collect::<Vec<_>>());
    let per: Vec<f64> = ours.iter().zip(peer).map(|(a, b)| a.rps / b.rps).collect();
    let lo = per.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per.iter().copied().fold(0.0, f64::max);
    let clean = ours.iter().chain(peer).all(|r| r.total_errors == 0);
    out.push(format!(
        "| {what} | {} | {peer_name}: {} | **{ratio:.2}×** (rounds {lo:.2}–{hi:.2}) | ≥ {target}× | {} |",
        load_figure(ours),
        load_figure(peer),
        met(ratio >= target && clean)
    ));
}

fn q(v: &Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64().unwrap_or(f64::NAN)
}

/// Nothing lost, nothing doubled, every send answered, every subscriber connected.
fn fanout_clean(v: &Value) -> bool {
    ["missing", "duplicates", "send_errors", "connect_failures"].iter().all(|f| v[*f].as_u64() == Some(0))
        && v["sent_ok"].as_u64().unwrap_or(0) > 0
}

fn fanout_figure(v: &Value) -> String {
    format!(
        "{:.0} deliveries/s, p50 {}, p99 {}{}",
        q(v, &["deliveries_per_sec"]),
        ms(q(v, &["latency_us", "p50"])),
        ms(q(v, &["latency_us", "p99"])),
        if fanout_clean(v) {
            ", none lost".to_string()
        } else {
            format!(", **missing {} dup {} send errors {}**", v["missing"], v["duplicates"], v["send_errors"])
        }
    )
}

pub fn cmd_summary(args: &[String]) -> Res<()> {
    let dir = Path::new(args.first().ok_or("usage: loadgen summary DIR")?);
    let mut rows = Vec::new();

    let send = |t: &str| reports(dir, &format!("send-{t}"));
    let (chatd, redis, nats, echo) = (send("chatd"), send("redis"), send("nats"), send("echo"));
    ratio_row(&mut rows, "durable send vs Redis `XADD`, `appendfsync always`", &chatd, "Redis", &redis, 1.2);
    ratio_row(&mut rows, "durable send vs actix-web echo", &chatd, "echo", &echo, 0.7);
    ratio_row(&mut rows, "durable send vs JetStream, `sync_interval: always`", &chatd, "JetStream", &nats, 4.0);
    let (hc, hr) = (reports(dir, "history-chatd"), reports(dir, "history-redis"));
    ratio_row(&mut rows, "history, newest 50 of 200, vs `XREVRANGE … COUNT 50`", &hc, "Redis", &hr, 1.2);

    let (fc, fr) = (rounds(dir, "fanout-chatd"), rounds(dir, "fanout-redis"));
    if fc.is_empty() {
        rows.push("| fan-out, 1,000 subscribers, 200 msgs/s | not run | | | p99 ≤ Redis's and < 50 ms, every run, none lost | - |".into());
    }
    for (i, c) in fc.iter().enumerate() {
        let r = fr.get(i);
        let (cp, rp) = (q(c, &["latency_us", "p99"]), r.map_or(f64::NAN, |r| q(r, &["latency_us", "p99"])));
        let ok = fanout_clean(c) && cp < 50_000.0 && cp <= rp;
        rows.push(format!(
            "| fan-out #{}, 1,000 subscribers, 200 msgs/s | {} | Redis pub/sub: {} | p99 {:.2}× Redis's | p99 ≤ Redis's and < 50 ms, none lost | {} |",
            i + 1,
            fanout_figure(c),
            r.map_or("not run".into(), fanout_figure),
            cp / rp,
            met(ok)
        ));
    }

    let ready = |name: &str| rounds(dir, name).iter().map(|v| q(v, &["ready_s"])).collect::<Vec<f64>>();
    let messages = json(dir, "restart-fill.json").map(|v| q(&v, &["total_ok"]));
    let on_disk = messages.map_or(String::new(), |m| format!(" with {:.1}M messages on disk", m / 1e6));
    for (name, what, limit) in
        [("restart-kill", "ready after `kill -9` under load", 1.0), ("restart-clean", "ready after a clean stop", 0.5)]
    {
        let v = ready(name);
        if v.is_empty() {
            rows.push(format!("| {what} | not run | | | < {limit} s | - |"));
            continue;
        }
        let worst = v.iter().copied().fold(0.0, f64::max);
        let all: Vec<String> = v.iter().map(|s| format!("{s:.3}")).collect();
        rows.push(format!(
            "| {what}{on_disk} | **{worst:.3} s** (worst; runs: {} s) | | | < {limit} s | {} |",
            all.join(", "),
            met(worst < limit)
        ));
    }

    match json(dir, "idle.json") {
        Some(v) => {
            let (chats, rss, asked) = (q(&v, &["chats"]), q(&v, &["rss_kib"]), q(&v, &["asked"]));
            let short = if chats < asked {
                format!(
                    " (only {chats:.0} of {asked:.0} made in {:.0} s: New averaged {:.0}/s)",
                    q(&v, &["make_secs"]),
                    chats / q(&v, &["make_secs"])
                )
            } else {
                String::new()
            };
            // The target is for 1M chats; a smaller run is held to the same share per chat.
            let limit_mib = 512.0 * chats / 1e6;
            rows.push(format!(
                "| idle chats: {:.0}{short} after a clean restart | **{:.0} MiB** RSS, {:.2} KiB/chat (empty chatd {:.0} MiB) | | | < {:.0} MiB{} | {} |",
                chats,
                rss / 1024.0,
                rss / chats,
                q(&v, &["empty_rss_kib"]) / 1024.0,
                limit_mib,
                if chats == 1e6 { "" } else { " (512 MiB per 1M, scaled)" },
                met(rss / 1024.0 < limit_mib)
            ));
        }
        None => rows.push("| idle chats | not run | | | < 512 MiB per 1M | - |".into()),
    }
    match json(dir, "wsmem.json") {
        Some(v) => {
            let steps = v["steps"].as_array().cloned().unwrap_or_default();
            let last = steps.last().cloned().unwrap_or_default();
            let marginal = last["server_marginal_kib_per_conn"].as_f64().unwrap_or(f64::NAN);
            rows.push(format!(
                "| idle WebSocket | **{marginal:.1} KiB** per added connection ({} → {} connections; {:.1} KiB each over the baseline) | | | ≤ 8 KiB | {} |",
                steps.get(steps.len().saturating_sub(2)).map_or(0, |s| s["connections"].as_u64().unwrap_or(0)),
                last["connections"],
                q(&last, &["server_kib_per_conn"]),
                met(marginal <= 8.0)
            ));
        }
        None => rows.push("| idle WebSocket | not run | | | ≤ 8 KiB | - |".into()),
    }

    println!("| workload | chatd | peer | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
    for f in ["send-verify.txt", "restart.txt"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(f)) {
            for line in text.lines().filter(|l| l.contains("verified") || l.contains("hold")) {
                println!();
                println!("check: {line}");
            }
        }
    }
    // Every load phase, for the CPU split and the errors.
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") && (name.starts_with("send-") || name.starts_with("history-"))
        })
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    if !files.is_empty() {
        println!();
        cmd_table(&files)?;
    }
    Ok(())
}
