//! A guard over a WebSocket's request payload, between the socket and actix-ws's decoder.
//!
//! Why: actix-ws 0.3.1 reads the payload until it is `Pending` before it decodes, and actix-http
//! checks a frame's size only once the whole frame is buffered, so a client announcing a 2^40-byte
//! frame could fill the server's memory as fast as it can send. This guard reads each frame header
//! as the bytes pass (RFC 6455 section 5.2) and fails the moment one announces more than the
//! limit; and it hands on at most [`READ_AHEAD`] bytes per poll, then yields, so the decoder's
//! buffer never runs more than that ahead of what it has decoded.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

/// Bytes handed on before yielding to let the decoder catch up.
pub const READ_AHEAD: usize = 8 * 1024;

/// The longest header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Where the guard is in the client's byte stream.
enum At {
    /// Inside a frame header: the bytes of it seen so far.
    Header { bytes: [u8; MAX_HEADER], seen: usize },
    /// Inside a frame's payload: how many bytes of it are still to come.
    Payload(u64),
}

impl At {
    fn header() -> At {
        At::Header { bytes: [0; MAX_HEADER], seen: 0 }
    }
}

pub struct FrameGuard<S> {
    inner: S,
    limit: usize,
    at: At,
    /// The rest of a chunk larger than what one poll hands on.
    held: Option<Bytes>,
    /// Bytes handed on since the last `Pending`.
    passed: usize,
    refused: bool,
}

impl<S> FrameGuard<S> {
    /// Guards `inner`, refusing any frame whose header announces more than `limit` bytes.
    pub fn new(inner: S, limit: usize) -> FrameGuard<S> {
        FrameGuard { inner, limit, at: At::header(), held: None, passed: 0, refused: false }
    }

    /// Follows the frame headers through `chunk`; `Err` once one announces too much.
    fn scan(&mut self, mut chunk: &[u8]) -> Result<(), PayloadError> {
        while !chunk.is_empty() {
            match &mut self.at {
                At::Payload(left) => {
                    let skip = usize::try_from(*left).unwrap_or(usize::MAX).min(chunk.len());
                    chunk = &chunk[skip..];
                    *left -= skip as u64;
                    if *left == 0 {
                        self.at = At::header();
                    }
                }
                At::Header { bytes, seen } => {
                    bytes[*seen] = chunk[0];
                    *seen += 1;
                    chunk = &chunk[1..];
                    match header(&bytes[..*seen]) {
                        Header::Partial => {}
                        Header::Announces(len) if len > self.limit as u64 => return Err(PayloadError::Overflow),
                        Header::Announces(_) => {}
                        Header::Complete(0) => self.at = At::header(),
                        Header::Complete(len) if len > self.limit as u64 => return Err(PayloadError::Overflow),
                        Header::Complete(len) => self.at = At::Payload(len),
                    }
                }
            }
        }
        Ok(())
    }
}

/// What the first bytes of a frame header say.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// Not enough yet to know the payload length.
    Partial,
    /// The payload length is known; the mask is still to come.
    Announces(u64),
    /// The whole header is in: the payload length.
    Complete(u64),
}

fn header(bytes: &[u8]) -> Header {
    let Some(&second) = bytes.get(1) else { return Header::Partial };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (extended, len) = match second & 0x7F {
        126 => (2, bytes.get(2..4).map(|b| u64::from(u16::from_be_bytes([b[0], b[1]])))),
        127 => (8, bytes.get(2..10).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)),
        n => (0, Some(u64::from(n))),
    };
    match len {
        None => Header::Partial,
        Some(len) if bytes.len() == 2 + extended + mask => Header::Complete(len),
        Some(len) => Header::Announces(len),
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        if this.passed >= READ_AHEAD {
            // Let the decoder run on what it has; come straight back for more.
            this.passed = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut chunk = match this.held.take() {
            Some(chunk) => chunk,
            None => match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => chunk,
                Poll::Pending => {
                    this.passed = 0;
                    return Poll::Pending;
                }
                other => return other,
            },
        };
        let room = READ_AHEAD - this.passed;
        if chunk.len() > room {
            this.held = Some(chunk.split_off(room));
        }
        if let Err(err) = this.scan(&chunk) {
            this.refused = true;
            this.held = None;
            return Poll::Ready(Some(Err(err)));
        }
        this.passed += chunk.len();
        Poll::Ready(Some(Ok(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_header(len: u64) -> Vec<u8> {
        let mut h = vec![0x81];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xFFFF => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    /// Runs `bytes`, cut into `piece`-byte chunks, through a guard: what it hands on, or its error.
    fn run(bytes: Vec<u8>, piece: usize, limit: usize) -> Result<Vec<u8>, PayloadError> {
        let chunks: Vec<Result<Bytes, PayloadError>> =
            bytes.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let mut guard = FrameGuard::new(futures_util::stream::iter(chunks), limit);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut guard).poll_next(&mut cx) {
                Poll::Ready(Some(chunk)) => {
                    let chunk = chunk?;
                    assert!(chunk.len() <= READ_AHEAD);
                    out.extend_from_slice(&chunk);
                }
                Poll::Ready(None) => return Ok(out),
                Poll::Pending => {} // the guard yielded to the decoder and woke itself
            }
        }
    }

    #[test]
    fn frames_within_the_limit_pass_unchanged_however_they_are_cut() {
        let mut bytes = Vec::new();
        for len in [0u64, 5, 125, 126, 1000, 65_535, 65_536] {
            bytes.extend(frame_header(len));
            bytes.extend(std::iter::repeat_n(b'x', len as usize));
        }
        for piece in [1, 2, 3, 7, 14, 1000, 100_000] {
            let got = run(bytes.clone(), piece, 65_536).expect("within the limit"); // ok: test
            assert_eq!(got, bytes, "pieces of {piece}");
            // ok: test
            // ok: test
        }
    }

    #[test]
    fn a_header_announcing_more_than_the_limit_fails_before_its_payload() {
        for (len, piece) in [(65_537u64, 1), (1 << 40, 3), (1 << 40, 100_000), (u64::MAX, 1)] {
            let mut bytes = frame_header(100);
            bytes.extend([b'y'; 100]);
            bytes.extend(frame_header(len));
            bytes.extend([b'z'; 50_000]);
            assert!(matches!(run(bytes, piece, 65_536), Err(PayloadError::Overflow)), "{len} in pieces of {piece}");
        }
    }

    #[test]
    fn header_reads_each_length_form() {
        assert_eq!(header(&[0x81]), Header::Partial);
        assert_eq!(header(&[0x81, 0x85]), Header::Announces(5));
        assert_eq!(header(&[0x81, 0x85, 1, 2, 3, 4]), Header::Complete(5));
        assert_eq!(header(&[0x81, 0xFE, 0x01]), Header::Partial);
        assert_eq!(header(&[0x81, 0xFE, 0x01, 0x00]), Header::Announces(256));
        assert_eq!(header(&[0x81, 0x7F, 0, 0, 1, 0, 0, 0, 0, 0]), Header::Complete(1 << 40));
    }
}
