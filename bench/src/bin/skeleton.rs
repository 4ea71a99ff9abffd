//! skeleton: chatd's send path in miniature, to price each of its layers on this machine.
//!
//! It answers `POST /chat/Send` with chatd's request and response shapes, but keeps only the
//! path's structure, adding one layer per mode:
//!
//! - `inline`: parse the body, build the message, answer `{"message": ...}` on the HTTP worker
//!   (the echo baseline plus chatd's request/response types; no hop);
//! - `actor`:  + the chat-actor hop: the message goes to one of 100 chat actors spread over one
//!   arbiter per core (as chatd's registry spreads them), which assigns `seq` and answers at once:
//!   HTTP worker → arbiter → HTTP worker;
//! - `wal`:    + the log-writer hop: the actor queues the record to one writer thread that takes
//!   all that is queued, writes it with one `write` and completes each record back to its actor
//!   with `do_send`, which then answers (chatd with `fsync = "never"`);
//! - `fsync`:  `wal` with one `fdatasync` per batch (chatd with `fsync = "always"`);
//! - `direct-wal`, `direct-fsync`: the same log writer without the chat actor: the HTTP handler
//!   takes the chat's mutex, assigns `seq` and queues the record while holding it (so the log
//!   order is the seq order), and the writer completes the request itself (updating the chat's
//!   durable count under the mutex, then waking the HTTP task): two thread handoffs per send
//!   instead of four. A possible shape for chatd's send path, priced here before anyone builds it.
//!
//! No registry, no validation, no CORS, no routing beyond one static path, no UUIDs (ids come from
//! a counter), serde_json instead of bincode+CRC for the record: what is left is the hops. The
//! gap between a skeleton mode and chatd in the same mode is what chatd's own per-request work
//! costs; the gap between the echo and a skeleton mode is what the architecture costs.
//!
//! `--prealloc-mib N` fills the log file with N MiB of zeros (synced) before serving and then
//! overwrites it in place: an fdatasync then has no file size to commit, which is what makes
//! it cheap (see fsyncbench --prealloc). The file lives in DIR and is removed at exit.
//!
//! Usage: skeleton --mode inline|actor|wal|fsync|direct-wal|direct-fsync [--port N] [--dir DIR]
//!                 [--workers N] [--prealloc-mib N]

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use actix::prelude::*;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Inline,
    Actor,
    Wal,
    Fsync,
    Direct,
}

#[derive(Deserialize)]
struct SendRequest {
    chat_id: Option<String>,
    user_id: Option<String>,
    text: Option<String>,
    subject: Option<String>,
    client_id: Option<String>,
}

#[derive(Clone, Serialize)]
struct Message {
    id: String,
    client_id: String,
    chat_id: String,
    user_id: String,
    subject: String,
    text: String,
    sent_at: i64,
    seq: u64,
}

type Done = Box<dyn FnOnce() + Send>;

/// Opens the log file. With `prealloc` bytes > 0 it is first filled with zeros and synced, to be
/// overwritten in place, so that an fdatasync has no file size (metadata) to commit.
fn open_log(path: &Path, prealloc: u64) -> std::io::Result<std::fs::File> {
    let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(path)?;
    if prealloc > 0 {
        let zeros = vec![0u8; 8 << 20];
        let mut left = prealloc;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(file)
}

/// The log writer: takes all that is queued, writes it with one call, syncs once (under
/// `fsync`), completes the batch in order. It never waits to fill a batch.
fn writer(rx: mpsc::Receiver<(Vec<u8>, Done)>, file: std::fs::File, fsync: bool) {
    let mut offset = 0u64;
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        buf.clear();
        for (frame, _) in &batch {
            buf.extend_from_slice(frame);
        }
        file.write_all_at(&buf, offset).expect("write the log");
        offset += buf.len() as u64;
        if fsync {
            file.sync_data().expect("fsync the log");
        }
        for (_, done) in batch {
            done();
        }
    }
}

struct Chat {
    seq: u64,
    wal: Option<mpsc::Sender<(Vec<u8>, Done)>>,
    pending: VecDeque<(Message, oneshot::Sender<Message>)>,
}

impl Actor for Chat {
    type Context = Context<Self>;
}

#[derive(actix::Message)]
#[rtype(result = "Result<Message, ()>")]
struct Post(Message);

impl Handler<Post> for Chat {
    type Result = ResponseFuture<Result<Message, ()>>;

    fn handle(&mut self, Post(mut msg): Post, ctx: &mut Context<Self>) -> Self::Result {
        self.seq += 1;
        msg.seq = self.seq;
        let Some(wal) = &self.wal else {
            return Box::pin(std::future::ready(Ok(msg)));
        };
        let frame = serde_json::to_vec(&msg).expect("encode");
        let me = ctx.address();
        let (tx, rx) = oneshot::channel();
        self.pending.push_back((msg, tx));
        wal.send((frame, Box::new(move || me.do_send(Durable)))).expect("the writer is running");
        Box::pin(async move { rx.await.map_err(|_| ()) })
    }
}

#[derive(actix::Message)]
#[rtype(result = "()")]
struct Durable;

impl Handler<Durable> for Chat {
    type Result = ();

    fn handle(&mut self, _: Durable, _: &mut Context<Self>) {
        if let Some((msg, tx)) = self.pending.pop_front() {
            let _ = tx.send(msg);
        }
    }
}

struct State {
    mode: Mode,
    chats: Vec<Addr<Chat>>,
    ids: AtomicU64,
    /// The direct modes: each chat's state behind a mutex, and the writer's queue.
    direct: Vec<Arc<Mutex<DirectChat>>>,
    wal: Option<mpsc::Sender<(Vec<u8>, Done)>>,
}

#[derive(Default)]
struct DirectChat {
    seq: u64,
    durable: u64,
}

#[derive(Serialize)]
struct Reply<'a> {
    message: &'a Message,
}

async fn send(state: web::Data<State>, body: web::Json<SendRequest>) -> HttpResponse {
    let r = body.into_inner();
    let (Some(chat_id), Some(user_id), Some(text)) = (r.chat_id, r.user_id, r.text) else {
        return HttpResponse::BadRequest().json(serde_json::json!({"code": 400}));
    };
    let id = state.ids.fetch_add(1, Ordering::Relaxed);
    let mut msg = Message {
        id: format!("{id:032x}"),
        client_id: r.client_id.unwrap_or_else(|| format!("{id:032x}")),
        chat_id,
        user_id,
        subject: r.subject.unwrap_or_default(),
        text,
        sent_at: 1_700_000_000,
        seq: 0,
    };
    let mut h = DefaultHasher::new();
    msg.chat_id.hash(&mut h);
    let slot = (h.finish() % 100) as usize;
    if state.mode == Mode::Inline {
        msg.seq = 1;
    } else if state.mode == Mode::Direct {
        let (tx, rx) = oneshot::channel();
        let chat = state.direct[slot].clone();
        {
            let mut c = chat.lock().unwrap_or_else(|p| p.into_inner());
            c.seq += 1;
            msg.seq = c.seq;
            let frame = serde_json::to_vec(&msg).expect("encode");
            let done = chat.clone();
            let wal = state.wal.as_ref().expect("the writer");
            wal.send((
                frame,
                Box::new(move || {
                    done.lock().unwrap_or_else(|p| p.into_inner()).durable += 1;
                    let _ = tx.send(msg);
                }),
            ))
            .expect("the writer is running");
        }
        msg = match rx.await {
            Ok(msg) => msg,
            Err(_) => return HttpResponse::InternalServerError().finish(),
        };
    } else {
        let chat = &state.chats[slot];
        msg = match chat.send(Post(msg)).await {
            Ok(Ok(msg)) => msg,
            _ => return HttpResponse::InternalServerError().finish(),
        };
    }
    HttpResponse::Ok().json(Reply { message: &msg })
}

fn main() -> std::io::Result<()> {
    let mut port: u16 = 0;
    let mut workers: usize = 0;
    let mut mode = None;
    let mut fsync = false;
    let mut prealloc: u64 = 0;
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let v = args.next().unwrap_or_default();
        match arg.as_str() {
            "--port" => port = v.parse().expect("--port takes a number"),
            "--workers" => workers = v.parse().expect("--workers takes a number"),
            "--dir" => dir = v.into(),
            "--prealloc-mib" => prealloc = v.parse::<u64>().expect("--prealloc-mib takes a number") << 20,
            "--mode" => {
                mode = Some(match v.as_str() {
                    "inline" => Mode::Inline,
                    "actor" => Mode::Actor,
                    "wal" => Mode::Wal,
                    "fsync" => Mode::Fsync,
                    "direct-wal" => Mode::Direct,
                    "direct-fsync" => {
                        fsync = true;
                        Mode::Direct
                    }
                    _ => panic!("--mode inline|actor|wal|fsync|direct-wal|direct-fsync"),
                })
            }
            _ => {
                eprintln!("usage: skeleton --mode inline|actor|wal|fsync|direct-wal|direct-fsync [--port N] [--dir DIR] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    let mode = mode.expect("--mode inline|actor|wal|fsync|direct-wal|direct-fsync");
    let fsync = fsync || mode == Mode::Fsync;
    actix_web::rt::System::new().block_on(async move {
        let log = dir.join(format!("skeleton-{}.wal", std::process::id()));
        let wal = if matches!(mode, Mode::Wal | Mode::Fsync | Mode::Direct) {
            let (tx, rx) = mpsc::channel();
            let file = open_log(&log, prealloc)?;
            std::thread::Builder::new().name("skeleton-wal".into()).spawn(move || writer(rx, file, fsync))?;
            Some(tx)
        } else {
            None
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arbiters: Vec<Arbiter> = (0..cores).map(|_| Arbiter::new()).collect();
        let actor_wal = wal.clone().filter(|_| mode != Mode::Direct);
        let chats: Vec<Addr<Chat>> = (0..100)
            .map(|i| {
                let wal = actor_wal.clone();
                Chat::start_in_arbiter(&arbiters[i % cores].handle(), move |_| Chat {
                    seq: 0,
                    wal,
                    pending: VecDeque::new(),
                })
            })
            .collect();
        let state = web::Data::new(State {
            mode,
            chats,
            ids: AtomicU64::new(1),
            direct: (0..100).map(|_| Arc::default()).collect(),
            wal: wal.filter(|_| mode == Mode::Direct),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().limit(65536))
                .route("/chat/Send", web::post().to(send))
        })
        .bind(("127.0.0.1", port))?;
        if workers > 0 {
            server = server.workers(workers);
        }
        println!("listening on {}", server.addrs()[0].port());
        let served = server.run().await;
        drop(arbiters);
        let _ = std::fs::remove_file(&log);
        served
    })
}
