//! One request of a workload, per kind of target, and the check of its answer.
//!
//! The same generator loads every target, with the same message (chat, user, a text of
//! `--text-bytes` bytes, a unique client id) each time:
//!
//! | workload | `http://` (chatd, echo) | `redis://` | `nats://` (JetStream) |
//! | --- | --- | --- | --- |
//! | send | `POST <path>` Send body; a 200 carrying the client id | `XADD <chat> * user_id .. text .. client_id ..`; an entry id | `HPUB <chat> <inbox>` with `Nats-Msg-Id: <client id>`, the Send body as payload; a PubAck with a `seq` |
//! | history | `POST /chat/History {"chat_id","limit"}`; a 200 with exactly `limit` messages, each of this chat | `XREVRANGE <chat> + - COUNT <limit>`; exactly `limit` entries, each with this chat's `user_id` | - |
//! | new | `POST /chat/New` with a fresh pair of users; a 200 with a `chat_id` | - | - |
//!
//! For Redis and NATS the chat "id" is the stream key (`chat:N`) or the subject (`chat.N`).

use std::io::{self, Write as _};

use memchr::memmem;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{http, nats, resp, RunOpts};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    Http,
    Redis,
    Nats,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    Send,
    History,
    New,
}

impl Workload {
    pub fn parse(s: &str) -> Result<Workload, String> {
        match s {
            "send" => Ok(Workload::Send),
            "history" => Ok(Workload::History),
            "new" => Ok(Workload::New),
            _ => Err(format!("unknown workload {s} (send, history, new)")),
        }
    }
}

/// A chat (or stream key, or subject) and the user who writes to it.
pub struct Chat {
    pub id: String,
    pub user: String,
    /// `id` and `user` as JSON string literals, ready to paste into a body.
    pub id_json: String,
    pub user_json: String,
    /// What every message of this chat carries in a History response: `"chat_id":"<id>"`.
    pub history_mark: Vec<u8>,
}

impl Chat {
    pub fn new(id: &str, user: &str) -> Chat {
        let id_json = serde_json::to_string(id).unwrap_or_default();
        Chat {
            id: id.to_string(),
            user: user.to_string(),
            history_mark: format!("\"chat_id\":{id_json}").into_bytes(),
            user_json: serde_json::to_string(user).unwrap_or_default(),
            id_json,
        }
    }
}

/// The outcome of one request that got an answer.
pub enum Answer {
    Ok,
    /// The target said no: an HTTP status other than 200, a Redis error, a JetStream error.
    Refused(String, String),
    /// It said yes, but not what was asked for (another client id, a short page...).
    Bad(String),
}

/// Per connection buffers, reused for every request.
#[derive(Default)]
pub struct Scratch {
    pub req: Vec<u8>,
    pub body: Vec<u8>,
    pub text: Vec<u8>,
    pub buf: Vec<u8>,
}

pub enum Conn {
    Http(TcpStream),
    Redis(resp::Conn),
    Nats(Box<nats::Conn>),
}

fn sample(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(300).collect()
}

impl Conn {
    pub async fn open(o: &RunOpts, i: usize) -> io::Result<Conn> {
        Ok(match o.target.proto {
            Proto::Http => {
                let s = TcpStream::connect(o.target.addr).await?;
                s.set_nodelay(true)?;
                Conn::Http(s)
            }
            Proto::Redis => Conn::Redis(resp::Conn::connect(o.target.addr).await?),
            Proto::Nats => {
                let inbox = format!("_INBOX.{}.{i}", o.run_id);
                Conn::Nats(Box::new(nats::Conn::connect(o.target.addr, inbox).await?))
            }
        })
    }

    /// Request `n` (the connection's n-th, or the fill's n-th job) for `chat`; returns the
    /// answer and whether the connection must be dropped afterwards.
    pub async fn call(
        &mut self,
        o: &RunOpts,
        s: &mut Scratch,
        chat: &Chat,
        client_id: &[u8],
        n: u64,
    ) -> io::Result<(Answer, bool)> {
        // The message text: `bench message N ` padded with x to exactly `text_bytes`.
        s.text.clear();
        let _ = write!(s.text, "bench message {n} ");
        s.text.resize(o.text_bytes.max(s.text.len()), b'x');
        s.text.truncate(o.text_bytes.max(20));
        match self {
            Conn::Http(stream) => {
                s.body.clear();
                let path = match o.workload {
                    Workload::Send => {
                        put_send_body(&mut s.body, chat, &s.text, client_id);
                        o.target.path.as_str()
                    }
                    Workload::History => {
                        let _ = write!(s.body, "{{\"chat_id\":{},\"limit\":{}}}", chat.id_json, o.limit);
                        "/chat/History"
                    }
                    Workload::New => {
                        let _ = write!(s.body, "{{\"user_ids\":[\"bench-m{n}-a\",\"bench-m{n}-b\"]}}");
                        "/chat/New"
                    }
                };
                http::put_request(&mut s.req, &o.target, path, &s.body);
                stream.write_all(&s.req).await?;
                let resp = http::read_response(stream, &mut s.buf).await?;
                let answer = if resp.status != 200 {
                    Answer::Refused(resp.status.to_string(), sample(&resp.body))
                } else {
                    match o.workload {
                        Workload::Send if !http::contains(&resp.body, client_id) => {
                            Answer::Bad(format!("no client_id in {}", sample(&resp.body)))
                        }
                        Workload::History => {
                            let seqs = memmem::find_iter(&resp.body, b"\"seq\":").count();
                            let ours = memmem::find_iter(&resp.body, &chat.history_mark).count();
                            if seqs == o.limit && ours == o.limit {
                                Answer::Ok
                            } else {
                                Answer::Bad(format!(
                                    "{seqs} messages, {ours} of chat {}, want {}: {}",
                                    chat.id,
                                    o.limit,
                                    sample(&resp.body)
                                ))
                            }
                        }
                        Workload::New if !http::contains(&resp.body, b"\"chat_id\"") => {
                            Answer::Bad(format!("no chat_id in {}", sample(&resp.body)))
                        }
                        _ => Answer::Ok,
                    }
                };
                Ok((answer, resp.close))
            }
            Conn::Redis(c) => {
                s.req.clear();
                match o.workload {
                    Workload::Send => resp::put_command(
                        &mut s.req,
                        &[
                            b"XADD",
                            chat.id.as_bytes(),
                            b"*",
                            b"user_id",
                            chat.user.as_bytes(),
                            b"text",
                            &s.text,
                            b"client_id",
                            client_id,
                        ],
                    ),
                    Workload::History => {
                        let count = o.limit.to_string();
                        resp::put_command(
                            &mut s.req,
                            &[b"XREVRANGE", chat.id.as_bytes(), b"+", b"-", b"COUNT", count.as_bytes()],
                        )
                    }
                    Workload::New => return Err(io::Error::other("redis has no `new` workload")),
                }
                c.send(&s.req).await?;
                let answer = match o.workload {
                    Workload::Send => c.reply(|r| r.bulk().map(|id| id.is_some_and(|id| id.contains(&b'-')))).await?,
                    _ => c.reply(|r| check_page(r, chat.user.as_bytes(), o.limit)).await?,
                };
                Ok((
                    match answer {
                        Ok(true) => Answer::Ok,
                        Ok(false) => Answer::Bad("an unexpected reply".into()),
                        Err(e) if e.starts_with("page:") => Answer::Bad(e),
                        Err(e) => Answer::Refused("redis-error".into(), e),
                    },
                    false,
                ))
            }
            Conn::Nats(c) => {
                if o.workload != Workload::Send {
                    return Err(io::Error::other("nats has only the `send` workload"));
                }
                s.body.clear();
                put_send_body(&mut s.body, chat, &s.text, client_id);
                let reply = c.request(&chat.id, Some(client_id), &s.body, n).await?;
                let refused = reply.status.as_deref().and_then(|l| l.split(' ').nth(1)).filter(|code| !code.is_empty());
                Ok((
                    if let Some(code) = refused {
                        Answer::Refused(format!("nats-{code}"), reply.status.clone().unwrap_or_default())
                    } else if memmem::find(&reply.payload, b"\"error\"").is_some() {
                        Answer::Refused("jetstream-error".into(), sample(&reply.payload))
                    } else if memmem::find(&reply.payload, b"\"seq\"").is_none()
                        || memmem::find(&reply.payload, b"\"duplicate\":true").is_some()
                    {
                        Answer::Bad(format!("not a fresh PubAck: {}", sample(&reply.payload)))
                    } else {
                        Answer::Ok
                    },
                    false,
                ))
            }
        }
    }
}

/// chatd's Send body (also the echo's, and the payload published to JetStream).
fn put_send_body(out: &mut Vec<u8>, chat: &Chat, text: &[u8], client_id: &[u8]) {
    let _ = write!(out, "{{\"chat_id\":{},\"user_id\":{},\"text\":\"", chat.id_json, chat.user_json);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\",\"client_id\":\"");
    out.extend_from_slice(client_id);
    out.extend_from_slice(b"\"}");
}

/// An `XREVRANGE` reply: exactly `limit` entries, each `[id, [field, value, ...]]` with
/// `user_id` = `user`. A wrong page is refused as `page: ...` (the stream stays in step).
fn check_page(r: &mut resp::Cursor, user: &[u8], limit: usize) -> resp::Parsed<bool> {
    let n = r.array()?;
    let mut ok = 0;
    for _ in 0..n.max(0) {
        if r.array()? != 2 {
            return resp::bad("page: an entry is not [id, fields]");
        }
        r.bulk()?;
        let fields = r.array()?;
        let mut mine = false;
        for _ in 0..fields.max(0) / 2 {
            let key = r.bulk()?;
            let value = r.bulk()?;
            if key == Some(b"user_id") && value == Some(user) {
                mine = true;
            }
        }
        ok += mine as usize;
    }
    if n as usize == limit && ok == limit {
        Ok(true)
    } else {
        resp::bad(format!("page: {n} entries, {ok} of this stream's user, want {limit}"))
    }
}
