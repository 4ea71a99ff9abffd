//! NATS, the little of its client protocol a JetStream publisher needs: CONNECT with headers,
//! one inbox subscription, and request/reply over it (`PUB`/`HPUB` with a reply subject, the
//! answer arriving as `MSG`/`HMSG` on the inbox). The server's `PING`s are answered in passing.
//!
//! A JetStream publish is an `HPUB` to a subject the stream captures, carrying a `Nats-Msg-Id`
//! header (the stream's de-duplication key, chatd's `client_id`), with a reply inbox: the
//! server answers with a PubAck (`{"stream":..,"seq":..}`) once the message is stored, here
//! with `sync_interval: always`, so after its fsync.

use std::io::{self, Write as _};
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A reply on the inbox: the status line of its headers (`NATS/1.0 503` for "no responders"),
/// if it had headers, and its payload.
pub struct Reply {
    pub status: Option<String>,
    pub payload: Vec<u8>,
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    inbox: String,
    out: Vec<u8>,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Conn {
    pub async fn connect(addr: SocketAddr, inbox: String) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Conn { stream, buf: Vec::with_capacity(8192), start: 0, inbox, out: Vec::with_capacity(1024) };
        let info = c.line().await?;
        if !info.starts_with("INFO ") {
            return Err(invalid(format!("expected INFO, got {info}")));
        }
        let hello = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"protocol\":1,\"name\":\"loadgen\",\"lang\":\"rust\",\"version\":\"0\"}}\r\nSUB {}.* 1\r\nPING\r\n",
            c.inbox
        );
        c.stream.write_all(hello.as_bytes()).await?;
        loop {
            let line = c.line().await?;
            match line.as_str() {
                "PONG" => return Ok(c),
                "PING" => c.stream.write_all(b"PONG\r\n").await?,
                l if l.starts_with("-ERR") => return Err(invalid(l.to_string())),
                _ => {}
            }
        }
    }

    /// One protocol line, without its CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            let rest = &self.buf[self.start..];
            if let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&rest[..end]).into_owned();
                self.start += end + 2;
                return Ok(line);
            }
            self.more().await?;
        }
    }

    /// `n` bytes of payload and the CRLF after them.
    async fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < self.start + n + 2 {
            self.more().await?;
        }
        let v = self.buf[self.start..self.start + n].to_vec();
        self.start += n + 2;
        Ok(v)
    }

    async fn more(&mut self) -> io::Result<()> {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 32 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "nats closed the connection"));
        }
        Ok(())
    }

    /// Publishes `payload` to `subject` (with a `Nats-Msg-Id` header when `msg_id` is given)
    /// with reply subject `<inbox>.<n>`, and waits for the reply addressed there.
    pub async fn request(&mut self, subject: &str, msg_id: Option<&[u8]>, payload: &[u8], n: u64) -> io::Result<Reply> {
        let reply_to = format!("{}.{n}", self.inbox);
        self.out.clear();
        match msg_id {
            Some(id) => {
                let mut headers = Vec::with_capacity(64);
                headers.extend_from_slice(b"NATS/1.0\r\nNats-Msg-Id: ");
                headers.extend_from_slice(id);
                headers.extend_from_slice(b"\r\n\r\n");
                let _ = write!(
                    self.out,
                    "HPUB {subject} {reply_to} {} {}\r\n",
                    headers.len(),
                    headers.len() + payload.len()
                );
                self.out.extend_from_slice(&headers);
            }
            None => {
                let _ = write!(self.out, "PUB {subject} {reply_to} {}\r\n", payload.len());
            }
        }
        self.out.extend_from_slice(payload);
        self.out.extend_from_slice(b"\r\n");
        self.stream.write_all(&self.out).await?;
        loop {
            let line = self.line().await?;
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "MSG" | "HMSG" => {
                    // MSG <subject> <sid> [reply-to] <#bytes>; HMSG ... <#header bytes> <#total bytes>
                    let nums = if f[0] == "MSG" { 1 } else { 2 };
                    if f.len() < 3 + nums {
                        return Err(invalid(format!("bad {}: {line}", f[0])));
                    }
                    let num = |s: &str| s.parse::<usize>().map_err(|_| invalid(format!("bad size in {line}")));
                    let total = num(f[f.len() - 1])?;
                    let head = if nums == 2 { num(f[f.len() - 2])? } else { 0 };
                    if head > total {
                        return Err(invalid(format!("bad sizes in {line}")));
                    }
                    let body = self.bytes(total).await?;
                    if f[1] != reply_to {
                        continue; // a late answer to an earlier request
                    }
                    let status = (head > 0).then(|| {
                        let h = String::from_utf8_lossy(&body[..head]);
                        h.lines().next().unwrap_or("").to_string()
                    });
                    return Ok(Reply { status, payload: body[head..].to_vec() });
                }
                "PING" => self.stream.write_all(b"PONG\r\n").await?,
                "-ERR" => return Err(invalid(line)),
                _ => {} // +OK, PONG, INFO
            }
        }
    }
}
