//! HTTP/1.1, the little of it a closed loop needs: one POST out, one whole response in
//! (Content-Length, chunked, or until close), parsed with `httparse`.

use std::io::{self, Write as _};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Res, Target};

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub close: bool,
}

pub fn put_request(out: &mut Vec<u8>, t: &Target, path: &str, body: &[u8]) {
    out.clear();
    let _ = write!(
        out,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        t.host,
        body.len()
    );
    out.extend_from_slice(body);
}

pub async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(8192);
    }
    s.read_buf(buf).await
}

/// Reads one whole response (Content-Length, chunked, or until close). `buf` is scratch.
pub async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
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
pub fn dechunk(mut data: &[u8]) -> io::Result<Option<Vec<u8>>> {
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

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// One request on a fresh connection (setup and verify; not on the measured path).
pub async fn call(t: &Target, path: &str, body: &str) -> Res<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(t.addr).await?;
    let mut req = Vec::new();
    put_request(&mut req, t, path, body.as_bytes());
    s.write_all(&req).await?;
    let mut buf = Vec::new();
    let resp = read_response(&mut s, &mut buf).await?;
    let value = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    Ok((resp.status, value))
}
