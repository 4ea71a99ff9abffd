//! Each connection's socket, kept so that a stream whose client stopped reading can be cut off.
//!
//! Why: when a peer's TCP window is shut, actix-http's h1 dispatcher stops polling the response
//! body and has no write timer of its own, so ending a stalled stream's body frees nothing (the
//! connection stayed ESTABLISHED with 3.9 MB queued, measured). [`remember`], run by
//! `HttpServer::on_connect`, keeps a duplicate of each connection's socket in its connection
//! data; when a stream ends it holds that weakly, and resets the connection if it is still there
//! after [`LINGER`]. The duplicate lives exactly as long as the connection's data (the
//! dispatcher's), so it never keeps a closed connection open.

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::rc::{Rc, Weak};
use std::time::Duration;

use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use actix_web::HttpRequest;
use socket2::Socket;

/// How long an ended stream's connection may take to flush its last frames and close by itself.
pub const LINGER: Duration = Duration::from_secs(2);

/// The duplicate socket, in a connection's data.
struct ConnSocket(Rc<Socket>);

/// For `HttpServer::on_connect`: keeps a duplicate of a plain TCP connection's socket.
pub fn remember(conn: &dyn Any, data: &mut Extensions) {
    let Some(tcp) = conn.downcast_ref::<TcpStream>() else { return };
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            data.insert(ConnSocket(Rc::new(Socket::from(fd))));
        }
        // Out of descriptors: serve on; only a stall on this connection goes uncut.
        Err(err) => tracing::warn!(error = %err, "could not keep a connection's socket"),
    }
}

/// A weak handle on a request's connection: it resets the connection if it is still open.
pub struct Cutoff(Option<Weak<Socket>>);

impl Cutoff {
    pub fn of(req: &HttpRequest) -> Cutoff {
        Cutoff(req.conn_data::<ConnSocket>().map(|s| Rc::downgrade(&s.0)))
    }

    /// Gives the connection [`LINGER`] to close by itself, then resets it if it has not.
    pub async fn after_linger(self) {
        if self.0.is_none() {
            return;
        }
        tokio::time::sleep(LINGER).await;
        let Some(socket) = self.0.as_ref().and_then(Weak::upgrade) else { return };
        tracing::debug!("resetting a stream's connection that did not close by itself");
        // Linger 0: the kernel drops what is queued and sends RST when the last descriptor
        // closes, instead of keeping a FIN queued behind data a stalled peer will never take.
        let _ = socket.set_linger(Some(Duration::ZERO));
        // Wakes the dispatcher: its next write fails, so it drops the connection.
        let _ = socket.shutdown(Shutdown::Both);
    }
}
