//! `GET /admin/backup`: a consistent copy of the running server's data dir, streamed as a tar
//! (`store/backup.rs` says what it holds and why it is consistent). An admin endpoint: loopback,
//! or `authorization: Bearer <auth.admin_key>`. `chatd backup --out DIR` writes it out; so does
//! `curl -o chatd.tar http://127.0.0.1:8080/admin/backup` then `tar -xf chatd.tar -C DIR`.
//!
//! The status is sent once the backup has its turn (a checkpoint under way may hold it up to
//! `TURN_WAIT`: else 503); a failure after that cuts the stream off, so a copy is whole exactly
//! when it ends with its manifest (`chatd-backup.json`).

use std::io;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::admin::{admitted, Ops};
use super::error::{ApiError, At};
use crate::error::Error;
use crate::store::backup::TURN_WAIT;

const ID: &str = "chatd.AdminBackup";

/// Chunks in flight to the client, and the bytes of each: the memory bound.
const CHUNKS_IN_FLIGHT: usize = 8;
const CHUNK_BYTES: usize = 64 << 10;
/// A client that reads nothing for this long is dropped: the backup holds checkpoints back.
const STALL: Duration = Duration::from_secs(60);

async fn backup(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    admitted(&req, ID)?;
    let turn = ops.store.maintenance().turn(TURN_WAIT).await.map_err(|e| Error::from(e).at(ID))?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(CHUNKS_IN_FLIGHT);
    let store = ops.store.clone();
    actix_web::rt::spawn(async move {
        let sink = tx.clone();
        match store.backup(turn, io::BufWriter::with_capacity(CHUNK_BYTES, Chunks(tx))).await {
            Ok(manifest) => tracing::info!(?manifest.end, manifest.files, manifest.bytes, "backup streamed"),
            Err(err) => {
                tracing::error!(error = %err, "backup failed; its stream is cut off");
                let _ = sink.send(Err(io::Error::other(err.to_string()))).await;
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .insert_header(("content-disposition", "attachment; filename=\"chatd-backup.tar\""))
        .streaming(body))
}

/// The backup's writer: each write goes to the response as a chunk, waiting while the client
/// is behind (up to [`STALL`]). Fails once the client is gone or stalled, which ends the
/// backup. Blocking.
struct Chunks(mpsc::Sender<Result<Bytes, io::Error>>);

impl io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let deadline = Instant::now() + STALL;
        let mut chunk = Ok(Bytes::copy_from_slice(buf));
        loop {
            match self.0.try_send(chunk) {
                Ok(()) => return Ok(buf.len()),
                Err(TrySendError::Closed(_)) => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
                }
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    chunk = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => {
                    let why = format!("the client read nothing for {} s", STALL.as_secs());
                    return Err(io::Error::new(io::ErrorKind::TimedOut, why));
                }
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/backup")
            .route(web::get().to(backup))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(Error::MethodNotAllowed("GET").at(ID)) })),
    );
}
