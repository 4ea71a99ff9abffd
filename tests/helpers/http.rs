//! The HTTP clients of a [`TestApp`]: any request, read leniently into a [`Reply`]; JSON posts
//! in the default namespace, in a namespace or as a [`Who`], read strictly (the answer must
//! be JSON); chunked bodies, raw header bytes and raw TCP for requests awc would not send.

use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use serde_json::Value;
use tokio::time::timeout;

use super::{TestApp, Who, WAIT};

/// What came back: the body parsed as JSON (`Null` when empty, a JSON string when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The status and body of `res`, which must be JSON.
pub async fn read_json(path: &str, mut res: awc::ClientResponse) -> (StatusCode, Value) {
    let bytes = timeout(WAIT, res.body().limit(64 << 20))
        .await
        .unwrap_or_else(|_| panic!("{path}: no body"))
        .unwrap_or_else(|e| panic!("{path}: body: {e}"));
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{path}: {} not JSON: {:?}", res.status(), String::from_utf8_lossy(&bytes)));
    (res.status(), json)
}

impl TestApp {
    /// Any request; `body` is sent as is.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        for &(name, value) in headers {
            req = req.insert_header((name, value));
        }
        let mut res = timeout(WAIT, req.send_body(body.into()))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
        let bytes = timeout(WAIT, res.body().limit(16 << 20))
            .await
            .unwrap_or_else(|_| panic!("{path}: no body"))
            .expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status: res.status(), headers: res.headers().clone(), body }
    }

    /// POSTs raw bytes with exactly `headers` (no Content-Type unless given).
    pub async fn post_raw(&self, path: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> Reply {
        self.request(Method::POST, path, headers, body).await
    }

    /// POSTs `json` as `application/json` in the default namespace.
    pub async fn post(&self, path: &str, json: Value) -> (StatusCode, Value) {
        let reply = self.post_raw(path, json.to_string(), &[("content-type", "application/json")]).await;
        (reply.status, reply.body)
    }

    /// POSTs `json` in namespace `ns` (the `micro-namespace` header).
    pub async fn post_ns(&self, ns: &str, path: &str, json: Value) -> (StatusCode, Value) {
        let reply = self
            .post_raw(path, json.to_string(), &[("content-type", "application/json"), ("micro-namespace", ns)])
            .await;
        (reply.status, reply.body)
    }

    /// POSTs `body` as JSON from `who`; the answer must be JSON.
    pub async fn post_as(&self, who: &Who, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(path, &who.headers(), body).await
    }

    /// POSTs `body` as JSON with `headers` added; the answer must be JSON.
    pub async fn call(&self, path: &str, headers: &[(&str, String)], body: Value) -> (StatusCode, Value) {
        self.call_raw(path, headers, body.to_string()).await
    }

    /// POSTs raw bytes as `application/json` with `headers` added; the answer must be JSON.
    pub async fn call_raw(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: impl Into<Bytes>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path)).insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            req = req.insert_header((*name, value.as_str()));
        }
        let body: Bytes = body.into();
        let res = timeout(WAIT, req.send_body(body))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        read_json(path, res).await
    }

    /// POSTs `body` chunked (no Content-Length), in small pieces, with exactly `headers`.
    pub async fn call_chunked(&self, path: &str, headers: &[(&str, String)], body: String) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path));
        for (name, value) in headers {
            req = req.insert_header((*name, value.as_str()));
        }
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            body.into_bytes().chunks(512).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let res = timeout(WAIT, req.send_stream(futures_util::stream::iter(chunks)))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        read_json(path, res).await
    }

    /// POSTs with one header given as raw bytes (which need not be ASCII or UTF-8).
    pub async fn call_bytes_header(&self, path: &str, name: &str, value: &[u8], body: Value) -> (StatusCode, Value) {
        let value = HeaderValue::from_bytes(value).expect("a header value");
        let req = self.client.post(self.url(path)).insert_header((name, value));
        let res = timeout(WAIT, req.send_body(body.to_string()))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        read_json(path, res).await
    }

    /// Writes `request` on a raw TCP connection and reads the response's status and JSON body.
    pub async fn raw_http(&self, request: &str) -> (StatusCode, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.address.trim_start_matches("http://");
        let mut stream = actix_web::rt::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = timeout(WAIT, stream.read(&mut chunk)).await.expect("an answer in time").unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().expect("a numeric content-length"))
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let status: u16 = head[9..12].parse().expect("a numeric status");
                    let status = StatusCode::from_u16(status).expect("a valid status");
                    let body = serde_json::from_slice(&buf[end + 4..end + 4 + len])
                        .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&buf)));
                    return (status, body);
                }
            }
        }
        panic!("the connection closed without a full answer: {:?}", String::from_utf8_lossy(&buf));
    }
}
