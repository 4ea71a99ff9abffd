//! Property tests (issue 10), through the public API only:
//! - the record codec (`store::codec`): every record round-trips through a frame, bytes and all;
//!   a log of frames reads back in order; a cut frame is `Short` and a flipped bit never `Valid`;
//!   any byte string reads as a frame or a refusal and decodes to a record or an error, never a
//!   panic, and never allocates past the codec's size limit (a counting allocator watches);
//! - the id parsers (`model`): valid exactly when 1 to max bytes without control characters;
//! - the paging arithmetic (`chat::Page::seqs`) against a brute-force model of each listing;
//! - the HTTP request parsers, through the real server: random JSON and random bytes to every
//!   unary endpoint get a 200 or a micro error body, never a 5xx or a dropped connection; integer
//!   fields take any whole number, as a number or a numeric string.
//!
//! Case counts are modest so the suite stays quick.

mod helpers;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use chatd::chat::Page;
use chatd::config::FsyncMode;
use chatd::model::{ChatId, ChatMeta, ClientId, MemberEdit, Members, Message, MessageId, Namespace, UserId};
use chatd::store::codec::{decode, decode_record, frame, read_frame, Frame, HEADER_LEN, MAX_PAYLOAD, MAX_RECORD};
use chatd::store::record::{Catalog, CatalogEntry, ChatSnapshot, IndexEntry, Loc, Pos, Record};

// ---- the allocator that watches decoding ----

/// The system allocator, noting the largest single request made on a thread that asked for it.
struct Watching;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: an allocation during thread teardown finds no thread-locals, and counts nothing.
    if WATCHING.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// Runs `f`, answering with its result and the largest single allocation it made.
fn watched<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    WATCHING.with(|w| w.set(true));
    let out = f();
    WATCHING.with(|w| w.set(false));
    (out, LARGEST.with(Cell::get))
}

/// Decoding may claim what a frame may hold, and not a byte more (plus a little for bookkeeping).
/// (It may claim that much from a payload of a few bytes: a string whose length prefix says
/// 900 MB is allocated before the payload is found short. The limit holds; a bound by the
/// payload's own length would be tighter.)
const ALLOCATION_LIMIT: usize = MAX_PAYLOAD + 4096;
/// The same for a log record, whose limit is far smaller.
const RECORD_ALLOCATION_LIMIT: usize = MAX_RECORD + 4096;

// ---- strategies for what the log holds ----

fn id_text() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,12}"
}

fn chat_id() -> impl Strategy<Value = ChatId> {
    id_text().prop_map(|s| ChatId::parse(&s, 256).expect("a valid id"))
}

fn user_id() -> impl Strategy<Value = UserId> {
    id_text().prop_map(|s| UserId::parse(&s, 256).expect("a valid id"))
}

fn members() -> impl Strategy<Value = Members> {
    prop::collection::vec(user_id(), 0..6).prop_map(Members::new)
}

fn meta() -> impl Strategy<Value = ChatMeta> {
    (chat_id(), members(), any::<i64>(), any::<String>(), any::<String>(), any::<bool>(), any::<bool>(), members())
        .prop_map(|(id, user_ids, created_at, name, description, group, private, invited)| ChatMeta {
            id,
            user_ids,
            created_at,
            name,
            description,
            group,
            private,
            invited,
        })
}

fn message() -> impl Strategy<Value = Message> {
    (any::<u64>(), id_text(), id_text(), user_id(), any::<String>(), any::<String>(), any::<i64>()).prop_map(
        |(seq, id, client_id, user_id, subject, text, sent_at)| Message {
            seq,
            id: MessageId::parse(&id, 256).expect("a valid id"),
            client_id: ClientId::parse(&client_id, 256).expect("a valid id"),
            user_id,
            subject,
            text,
            sent_at,
        },
    )
}

fn record() -> impl Strategy<Value = Record> {
    let ns = id_text().prop_map(|s| Namespace::parse(&s, 256).expect("a valid namespace"));
    let edit = prop_oneof![user_id().prop_map(MemberEdit::Add), user_id().prop_map(MemberEdit::Remove)];
    prop_oneof![
        (any::<u64>(), ns, meta()).prop_map(|(chat, ns, meta)| Record::ChatCreated { chat, ns, meta }),
        (any::<u64>(), message()).prop_map(|(chat, msg)| Record::Message { chat, msg }),
        (any::<u64>(), meta()).prop_map(|(chat, meta)| Record::ChatUpdated { chat, meta }),
        any::<u64>().prop_map(|chat| Record::ChatDeleted { chat }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Record::Erased),
        Just(Record::Commit),
        (any::<u64>(), edit).prop_map(|(chat, edit)| Record::Member { chat, edit }),
    ]
}

fn loc() -> impl Strategy<Value = Loc> {
    (any::<u64>(), any::<u64>(), any::<u32>())
        .prop_map(|(segment, offset, len)| Loc { pos: Pos { segment, offset }, len })
}

fn snapshot() -> impl Strategy<Value = ChatSnapshot> {
    let entry = (loc(), id_text(), proptest::option::of(id_text())).prop_map(|(loc, client_id, id)| IndexEntry {
        loc,
        client_id: ClientId::parse(&client_id, 256).expect("a valid id"),
        id: id.map(|id| MessageId::parse(&id, 256).expect("a valid id")),
    });
    (any::<u64>(), meta(), prop::collection::vec(entry, 0..8)).prop_map(|(chat, meta, entries)| ChatSnapshot {
        chat,
        meta,
        entries,
    })
}

fn catalog() -> impl Strategy<Value = Catalog> {
    let entry =
        (any::<u64>(), id_text(), chat_id(), any::<bool>(), members()).prop_map(|(chat, ns, id, group, members)| {
            CatalogEntry::new(chat, &Namespace::parse(&ns, 256).expect("a valid namespace"), &id, group, &members)
        });
    let pos = proptest::option::of((any::<u64>(), any::<u64>()).prop_map(|(segment, offset)| Pos { segment, offset }));
    (pos, any::<u64>(), prop::collection::vec(entry, 0..6), prop::collection::vec(any::<u64>(), 0..4))
        .prop_map(|(pos, next_chat, chats, unavailable)| Catalog { pos, next_chat, chats, unavailable })
}

/// Frames `value`, reads the frame back, decodes it and frames that again: the same bytes.
fn round_trip<T>(value: &T, tag: u64) -> Result<T, TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let bytes = frame(value, tag).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    let Frame::Valid { payload, len, tag: read_tag } = read_frame(&bytes) else {
        return Err(TestCaseError::fail(format!("not a valid frame: {:?}", read_frame(&bytes))));
    };
    prop_assert_eq!((len, read_tag), (bytes.len(), tag));
    let back: T = decode(payload).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(format!("{back:?}"), format!("{value:?}"));
    prop_assert_eq!(frame(&back, tag).expect("encode again"), bytes);
    Ok(back)
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn every_record_round_trips(record in record()) {
        round_trip(&record, record.tag())?;
    }

    #[test]
    fn every_snapshot_and_catalog_round_trips(snapshot in snapshot(), catalog in catalog(), tag in any::<u64>()) {
        round_trip(&snapshot, snapshot.chat)?;
        round_trip(&catalog, tag)?;
    }

    /// A log is frames back to back: it reads back record by record, in order, to its end.
    #[test]
    fn a_log_of_frames_reads_back_in_order(records in prop::collection::vec(record(), 0..12)) {
        let log: Vec<u8> = records.iter().flat_map(|r| frame(r, r.tag()).expect("encode")).collect();
        let mut at = 0;
        for record in &records {
            let Frame::Valid { payload, len, tag } = read_frame(&log[at..]) else {
                return Err(TestCaseError::fail(format!("frame at {at} is not valid")));
            };
            prop_assert_eq!(tag, record.tag());
            let back: Record = decode(payload).expect("decode");
            prop_assert_eq!(format!("{back:?}"), format!("{record:?}"));
            at += len;
        }
        prop_assert_eq!(at, log.len());
        prop_assert_eq!(read_frame(&log[at..]), Frame::Short);
    }

    /// A torn write is `Short`, whatever its length; one flipped bit is never `Valid`, and in the
    /// payload it is pinned on the frame's owner.
    #[test]
    fn a_cut_or_flipped_frame_is_never_valid(record in record(), cut in any::<prop::sample::Index>(),
                                             flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = frame(&record, record.tag()).expect("encode");
        let cut = cut.index(bytes.len());
        prop_assert_eq!(read_frame(&bytes[..cut]), Frame::Short);
        let at = flip.index(bytes.len());
        let mut bad = bytes.clone();
        bad[at] ^= 1 << bit;
        let read = read_frame(&bad);
        prop_assert!(!matches!(read, Frame::Valid { .. }), "a flip at {} went unnoticed", at);
        if at >= HEADER_LEN {
            prop_assert_eq!(read, Frame::BadPayload { len: bytes.len(), tag: record.tag() });
        }
    }

    /// Any bytes: a frame or a refusal, and whatever a frame holds decodes to a record or an
    /// error, within the size limit.
    #[test]
    fn any_bytes_read_as_a_frame_or_a_refusal(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (read, largest) = watched(|| match read_frame(&bytes) {
            Frame::Valid { payload, len, .. } => {
                assert_eq!(payload.len() + HEADER_LEN, len);
                assert!(len <= bytes.len());
                let _ = decode_record::<Record>(payload);
                true
            }
            Frame::Short | Frame::Bad | Frame::BadPayload { .. } => false,
        });
        let _ = read;
        prop_assert!(largest <= RECORD_ALLOCATION_LIMIT, "allocated {} bytes", largest);
    }

    /// Any bytes as a payload, and real payloads damaged: a record or an error, never a panic,
    /// never an allocation past the size limit.
    #[test]
    fn any_payload_decodes_to_a_record_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        record in record(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let ((), largest) = watched(|| {
            let _ = decode_record::<Record>(&bytes);
        });
        prop_assert!(largest <= RECORD_ALLOCATION_LIMIT, "allocated {} bytes for {:?}", largest, bytes);
        let ((), largest) = watched(|| {
            let _ = decode::<ChatSnapshot>(&bytes);
            let _ = decode::<Catalog>(&bytes);
        });
        prop_assert!(largest <= ALLOCATION_LIMIT, "allocated {} bytes for {:?}", largest, bytes);
        // A real record's payload, with bytes overwritten, inserted or cut.
        let framed = frame(&record, record.tag()).expect("encode");
        let mut payload = framed[HEADER_LEN..].to_vec();
        for (at, byte, how) in edits {
            let i = at.index(payload.len() + 1);
            match how {
                0 if i < payload.len() => payload[i] = byte,
                1 => payload.insert(i, byte),
                _ => payload.truncate(i),
            }
        }
        let ((), largest) = watched(|| {
            let _ = decode_record::<Record>(&payload);
        });
        prop_assert!(largest <= RECORD_ALLOCATION_LIMIT, "allocated {} bytes for {:?}", largest, payload);
    }

    /// Every id type is valid exactly when it has 1 to `max` bytes and no control character,
    /// and keeps its string as given.
    #[test]
    fn ids_are_valid_exactly_when_short_enough_and_without_control_characters(
        s in prop_oneof!["\\PC{0,40}", any::<String>(), "[a-z\\x00-\\x1f\\x7f-\\x9f é中😀]{0,30}"],
        max in 1usize..64,
    ) {
        let valid = !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control);
        let checks = [
            ChatId::parse(&s, max).map(|id| id.as_str() == s),
            UserId::parse(&s, max).map(|id| id.as_str() == s),
            ClientId::parse(&s, max).map(|id| id.as_str() == s),
            MessageId::parse(&s, max).map(|id| id.as_str() == s),
            Namespace::parse(&s, max).map(|id| id.as_str() == s),
        ];
        for check in checks {
            prop_assert_eq!(check.clone().is_ok(), valid, "{:?} with max {}: {:?}", s, max, check);
            prop_assert!(check.unwrap_or(true));
        }
    }
}

// ---- paging ----

/// What a listing holds, by brute force over the chat's seqs.
fn model(page: Page, len: u64) -> Vec<u64> {
    let all = 1..=len;
    match page {
        Page::History { limit, before, after } => {
            let window: Vec<u64> =
                all.filter(|s| before.is_none_or(|b| *s < b) && after.is_none_or(|a| *s > a)).collect();
            let take = usize::try_from(limit).unwrap_or(usize::MAX).min(window.len());
            // Paging up from `after` takes the lowest seqs; otherwise the newest below `before`.
            match after {
                Some(_) => window[..take].to_vec(),
                None => window[window.len() - take..].to_vec(),
            }
        }
        Page::List { limit, offset, newest_first } => {
            let ordered: Vec<u64> = if newest_first { all.rev().collect() } else { all.collect() };
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            ordered.into_iter().skip(skip).take(usize::try_from(limit).unwrap_or(usize::MAX)).collect()
        }
    }
}

/// A paging number: small, near the chat's length, or huge.
fn seq_like() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..8, 0u64..700, Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn history_pages_are_the_models(len in 0u64..600, limit in seq_like(),
                                    before in proptest::option::of(seq_like()),
                                    after in proptest::option::of(seq_like())) {
        let page = Page::History { limit, before, after };
        let got: Vec<u64> = page.seqs(len).take(2000).collect();
        prop_assert_eq!(got, model(page, len), "{:?} of {}", page, len);
    }

    #[test]
    fn list_pages_are_the_models(len in 0u64..600, limit in seq_like(), offset in seq_like(),
                                 newest_first in any::<bool>()) {
        let page = Page::List { limit, offset, newest_first };
        let got: Vec<u64> = page.seqs(len).take(2000).collect();
        prop_assert_eq!(got, model(page, len), "{:?} of {}", page, len);
    }
}

// ---- the HTTP request parsers, through the real server ----

/// The real server on a thread of its own (with its own actix system), so the cases can use a
/// plain blocking socket: a response cut short is then seen as exactly that.
struct Server {
    port: u16,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    fn start() -> Server {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = helpers::spawn_app_with(|s| s.storage.fsync = FsyncMode::Never).await;
                port_tx.send(app.port).expect("the test waits for the port");
                while stop_rx.try_recv().is_err() {
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
                app.stop().await;
            })
        });
        let port = port_rx.recv_timeout(helpers::WAIT).expect("the server starts");
        Server { port, stop, thread }
    }

    fn stop(self) {
        self.stop.send(()).expect("the server thread runs");
        self.thread.join().expect("the server stops cleanly");
    }

    /// One POST on its own connection: the status and the body, or how the answer fell short.
    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let mut socket = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| format!("connect: {e}"))?;
        socket.set_read_timeout(Some(helpers::WAIT)).map_err(|e| e.to_string())?;
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        socket.write_all(request.as_bytes()).map_err(|e| format!("write: {e}"))?;
        socket.write_all(body).map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).map_err(|e| format!("read (after {} bytes): {e}", answer.len()))?;
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the connection closed before a head")?;
        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status: {head}"))?;
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no content-length: {head}"))?;
        let body = answer[end + 4..].to_vec();
        if body.len() != length {
            return Err(format!("the body has {} of its {length} bytes", body.len()));
        }
        Ok((status, body))
    }
}

/// A 200 with a JSON object, or a micro error naming `endpoint` with the status as its code.
fn assert_answer(endpoint: &str, status: u16, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{}: {} {}", what, status, String::from_utf8_lossy(body));
    let json: Value = serde_json::from_slice(body)
        .map_err(|_| TestCaseError::fail(format!("{what}: not JSON: {}", String::from_utf8_lossy(body))))?;
    let object = json.as_object().ok_or_else(|| TestCaseError::fail(format!("{what}: not an object: {json}")))?;
    if status == 200 {
        return Ok(());
    }
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    prop_assert_eq!(keys, vec!["code", "detail", "id", "status"], "{}: {}", what, json);
    prop_assert_eq!(json["code"].as_u64(), Some(u64::from(status)), "{}: {}", what, json);
    let id = json["id"].as_str().unwrap_or_default();
    prop_assert!(id.starts_with(&format!("{endpoint}.")), "{}: {}", what, json);
    Ok(())
}

/// Any JSON value, objects mostly made of the fields the endpoints read.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof!["[a-z0-9]{0,6}", "\\PC{0,12}", any::<String>(), "[0-9]{1,22}"].prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let field = prop::sample::select(vec![
        "chat_id",
        "group_id",
        "user_id",
        "author_id",
        "text",
        "subject",
        "client_id",
        "client",
        "id",
        "user_ids",
        "limit",
        "offset",
        "before_seq",
        "after_seq",
        "order",
        "name",
        "description",
        "private",
    ]);
    prop_oneof![
        value.clone(),
        prop::collection::btree_map(field, value, 0..7)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
    ]
}

#[test]
fn random_bodies_to_every_unary_endpoint_get_a_200_or_a_micro_error() {
    let server = Server::start();
    // A chat for the generated ids to find now and then.
    let seed = json!({ "id": "a", "user_ids": ["a", "b"] }).to_string();
    assert_eq!(server.post("/chats/CreateChat", &[], seed.as_bytes()).map(|r| r.0), Ok(200));
    let routes: Vec<(String, &'static str)> =
        chatd::http::route_table().into_iter().filter(|r| r.method == "POST").map(|r| (r.path, r.id)).collect();
    let route = prop::sample::select(routes);
    let namespace = prop::sample::select(vec!["", "micro", "other", "é"]);
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let json_case = (route.clone(), any_json(), namespace);
    let result = runner.run(&json_case, |((path, endpoint), body, ns)| {
        let mut headers = vec![("content-type", "application/json")];
        if !ns.is_empty() {
            headers.push(("micro-namespace", ns));
        }
        let what = format!("POST {path} {body}");
        let (status, answer) =
            server.post(&path, &headers, body.to_string().as_bytes()).map_err(TestCaseError::fail)?;
        assert_answer(endpoint, status, &answer, &what)
    });
    if let Err(e) = result {
        server.stop();
        panic!("{e}");
    }
    let bytes_case = (route, prop::collection::vec(any::<u8>(), 0..600));
    let result = runner.run(&bytes_case, |((path, endpoint), body)| {
        let what = format!("POST {path} {body:?}");
        let (status, answer) = server.post(&path, &[], &body).map_err(TestCaseError::fail)?;
        assert_answer(endpoint, status, &answer, &what)
    });
    server.stop();
    result.unwrap();
}

#[test]
fn integer_fields_take_any_whole_number_as_a_number_or_a_numeric_string() {
    let server = Server::start();
    let seed = json!({ "id": "c", "user_ids": ["a", "b"] }).to_string();
    assert_eq!(server.post("/chats/CreateChat", &[], seed.as_bytes()).map(|r| r.0), Ok(200));
    let send = json!({ "chat_id": "c", "author_id": "a", "text": "t" }).to_string();
    for _ in 0..3 {
        assert_eq!(server.post("/chats/SendMessage", &[], send.as_bytes()).map(|r| r.0), Ok(200));
    }
    let mut runner = TestRunner::new(Config { cases: 128, failure_persistence: None, ..Config::default() });
    let spelled = prop_oneof![
        any::<u64>().prop_map(|n| (n.to_string(), true)),
        any::<u64>().prop_map(|n| (format!("\"{n}\""), true)),
        (0u64..1 << 53).prop_map(|n| (format!("{n}.0"), true)),
        any::<i64>().prop_filter("negative", |n| *n < 0).prop_map(|n| (n.to_string(), false)),
        (0u64..1000).prop_map(|n| (format!("{n}.5"), false)),
        "[a-z]{1,4}".prop_map(|s| (format!("\"{s}\""), false)),
    ];
    let case = (prop::sample::select(vec!["limit", "offset"]), spelled);
    let result = runner.run(&case, |(field, (number, whole))| {
        let body = format!("{{\"chat_id\":\"c\",\"{field}\":{number}}}");
        let (status, answer) = server.post("/chats/ListMessages", &[], body.as_bytes()).map_err(TestCaseError::fail)?;
        let want = if whole { 200 } else { 400 };
        prop_assert_eq!(status, want, "{}: {}", body, String::from_utf8_lossy(&answer));
        Ok(())
    });
    server.stop();
    result.unwrap();
}
