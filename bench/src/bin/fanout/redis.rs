//! The same fan-out on Redis pub/sub, chatd's peer for it: each subscriber is a connection that
//! has sent `SUBSCRIBE <channel>`, and the sender `PUBLISH`es the same texts (`fanout k=K
//! t=NANOS xxx…`) at the same rate. Redis keeps nothing, so there is no seq: a subscriber
//! checks each k against the ones it has seen (duplicates), and what is missing is what never
//! came. PUBLISH answers how many subscribers got the message; fewer than all is an error.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};

use super::resp::{self, Cursor};
use super::{Shared, SubStats};

/// One pub/sub `message` push: its payload.
fn message(c: &mut Cursor) -> resp::Parsed<Vec<u8>> {
    if c.array()? != 3 {
        return resp::bad("a push that is not [kind, channel, payload]");
    }
    let kind = c.bulk()?;
    let _channel = c.bulk()?;
    if kind != Some(b"message") {
        return resp::bad(format!("a {:?} push", kind.map(String::from_utf8_lossy)));
    }
    Ok(c.bulk()?.unwrap_or_default().to_vec())
}

/// k and the send time out of `fanout k=K t=NANOS …`.
fn parse_payload(p: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(p).ok()?;
    let number = |s: &str| s[..s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len())].parse::<u64>().ok();
    let rest = text.strip_prefix("fanout k=")?;
    let k = number(rest)?;
    let t = number(&rest[rest.find(" t=")? + 3..])?;
    Some((k, t))
}

pub async fn subscriber(
    addr: SocketAddr,
    channel: Arc<String>,
    shared: Arc<Shared>,
    lat_slot: usize,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) -> SubStats {
    let mut st = SubStats::default();
    let connected = async {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        let mut c = resp::Conn::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let mut cmd = Vec::new();
        resp::put_command(&mut cmd, &[b"SUBSCRIBE", channel.as_bytes()]);
        c.send(&cmd).await.map_err(|e| e.to_string())?;
        // [subscribe, channel, 1]: once it is here, every later PUBLISH reaches this connection.
        c.reply(|r| {
            r.array()?;
            r.bulk()?;
            r.bulk()?;
            r.int()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("SUBSCRIBE: {e}"))?;
        Ok::<_, String>(c)
    }
    .await;
    let mut c = match connected {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            st.ended = Some(e);
            return st;
        }
    };
    drop(ready);
    let lat = &shared.lat[lat_slot % shared.lat.len()];
    let mut seen: Vec<u64> = Vec::new();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        let msg = tokio::select! {
            biased;
            _ = &mut stopped => break,
            msg = c.reply(message) => msg,
        };
        let payload = match msg {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                st.other_frames += 1;
                continue;
            }
            Err(e) => {
                st.ended = Some(format!("error: {e}"));
                break;
            }
        };
        let now = shared.base.elapsed().as_nanos() as u64;
        let Some((k, sent)) = parse_payload(&payload) else {
            st.other_frames += 1;
            continue;
        };
        let (word, bit) = ((k / 64) as usize, 1u64 << (k % 64));
        if seen.len() <= word {
            seen.resize(word + 1, 0);
        }
        if seen[word] & bit != 0 {
            st.duplicates += 1;
            continue;
        }
        seen[word] |= bit;
        st.received += 1;
        // No seqs here: "last seq" is the count of distinct messages, so a complete subscriber
        // reads as complete in the report.
        st.last_seq = st.received;
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        let us = (now.saturating_sub(sent) / 1000).max(1);
        let mut l = lat.lock().unwrap_or_else(|e| e.into_inner());
        let _ = l.all.record(us);
        if k >= shared.warm_k.load(Ordering::Relaxed) {
            let _ = l.measured.record(us);
        }
        if let Some(slot) = l.last_copy.get_mut(k as usize) {
            *slot = (*slot).max(us);
        }
    }
    st
}

/// `PUBLISH <channel> <text>` on `s`; Ok once Redis says all `subscribers` got it.
pub async fn publish(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    channel: &str,
    text: &str,
    subscribers: usize,
) -> io::Result<Result<(), String>> {
    let mut cmd = Vec::with_capacity(text.len() + 64);
    resp::put_command(&mut cmd, &[b"PUBLISH", channel.as_bytes(), text.as_bytes()]);
    s.write_all(&cmd).await?;
    buf.clear();
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Ok(match line.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n == subscribers => Ok(()),
                Some(n) => Err(format!("published to {n} of {subscribers} subscribers")),
                None => Err(line),
            });
        }
        if s.read_buf(buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection"));
        }
    }
}
