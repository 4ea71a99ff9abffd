//! RESP2, the little of it the Redis workloads need: commands out, replies walked in place.
//!
//! Replies are read with a [`Cursor`] over the connection's buffer, without building a tree (an
//! `XREVRANGE … COUNT 50` reply is ~400 values, and the generator reads tens of thousands of
//! them a second on one thread). A parse that runs out of bytes says [`Need::More`] and is
//! started again once more bytes have arrived.

use std::io::{self, Write as _};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Appends one command, as an array of bulk strings.
pub fn put_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

pub enum Need {
    /// The reply is not complete yet.
    More,
    /// Not RESP, or not the reply the caller expects.
    Bad(String),
}

pub type Parsed<T> = Result<T, Need>;

pub fn bad<T>(what: impl Into<String>) -> Parsed<T> {
    Err(Need::Bad(what.into()))
}

/// A read position in a buffer of replies.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// The type byte of the next value, without consuming it.
    pub fn peek(&self) -> Parsed<u8> {
        self.buf.get(self.pos).copied().ok_or(Need::More)
    }

    /// One line after its type byte, without the CRLF.
    fn line(&mut self) -> Parsed<(u8, &'a [u8])> {
        let rest = &self.buf[self.pos..];
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(Need::More)?;
        if end == 0 {
            return bad("empty RESP line");
        }
        self.pos += end + 2;
        Ok((rest[0], &rest[1..end]))
    }

    fn number(text: &[u8]) -> Parsed<i64> {
        std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()).ok_or_else(|| Need::Bad("bad RESP number".into()))
    }

    /// A simple string, an error (as `Err(Bad)` with its text), an integer, a bulk string or an
    /// array header, whichever comes: the caller asks for the kind it expects.
    pub fn int(&mut self) -> Parsed<i64> {
        match self.line()? {
            (b':', n) => Self::number(n),
            (b'-', e) => bad(String::from_utf8_lossy(e)),
            (t, _) => bad(format!("expected an integer, got a '{}' reply", t as char)),
        }
    }

    /// A bulk string (None for the null bulk string).
    pub fn bulk(&mut self) -> Parsed<Option<&'a [u8]>> {
        match self.line()? {
            (b'$', n) => {
                let n = Self::number(n)?;
                if n < 0 {
                    return Ok(None);
                }
                let n = n as usize;
                if self.buf.len() < self.pos + n + 2 {
                    return Err(Need::More);
                }
                let s = &self.buf[self.pos..self.pos + n];
                self.pos += n + 2;
                Ok(Some(s))
            }
            (b'+', s) => Ok(Some(s)),
            (b'-', e) => bad(String::from_utf8_lossy(e)),
            (t, _) => bad(format!("expected a bulk string, got a '{}' reply", t as char)),
        }
    }

    /// An array's length (-1 for the null array).
    pub fn array(&mut self) -> Parsed<i64> {
        match self.line()? {
            (b'*', n) => Self::number(n),
            (b'-', e) => bad(String::from_utf8_lossy(e)),
            (t, _) => bad(format!("expected an array, got a '{}' reply", t as char)),
        }
    }
}

/// A connection to Redis with its read buffer: replies are parsed where they land.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
}

impl Conn {
    pub async fn connect(addr: std::net::SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(32 * 1024), start: 0 })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Parses the next reply with `f`, reading more bytes until it is complete. `Need::Bad`
    /// becomes an `InvalidData` error for a malformed reply and `Ok(Err(text))` for a reply
    /// the caller refused (a Redis error, an unexpected value): the stream is still in step.
    pub async fn reply<T>(&mut self, mut f: impl FnMut(&mut Cursor) -> Parsed<T>) -> io::Result<Result<T, String>> {
        loop {
            let mut c = Cursor::new(&self.buf[self.start..]);
            match f(&mut c) {
                Ok(v) => {
                    self.start += c.pos;
                    return Ok(Ok(v));
                }
                Err(Need::Bad(e)) => {
                    // Skip the whole reply so the next one starts in step.
                    let mut skip = Cursor::new(&self.buf[self.start..]);
                    match skip_value(&mut skip) {
                        Ok(()) => {
                            self.start += skip.pos;
                            return Ok(Err(e));
                        }
                        Err(Need::More) => {}
                        Err(Need::Bad(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    }
                }
                Err(Need::More) => {}
            }
            if self.start > 0 && self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            } else if self.start > 64 * 1024 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "redis closed the connection"));
            }
        }
    }
}

/// Steps over one whole value of any kind.
pub fn skip_value(c: &mut Cursor) -> Parsed<()> {
    match c.peek()? {
        b'*' => {
            let n = c.array()?;
            for _ in 0..n.max(0) {
                skip_value(c)?;
            }
            Ok(())
        }
        b'$' => c.bulk().map(|_| ()),
        b':' => c.int().map(|_| ()),
        b'+' | b'-' => c.line().map(|_| ()),
        t => bad(format!("unknown RESP type '{}'", t as char)),
    }
}
