//! How anything we store becomes bytes: a checksummed frame around a bincode payload.
//!
//! ```text
//! +----------+----------+---------------------------+----------------------+-------------------+
//! | len: u32 | tag: u64 | crc32c(len ++ tag): u32   | crc32c(payload): u32 | payload (bincode) |
//! +----------+----------+---------------------------+----------------------+-------------------+
//! ```
//! The header has a checksum of its own, so a record whose payload is damaged still says how
//! long it is (the log stays readable past it) and whose it is (`tag`, the chat's number): the
//! damage is pinned on one chat instead of being silently skipped.
//!
//! Every use of bincode lives here, so the encoding can be swapped in one place.
//! Decoding is size-limited: a corrupt length can never make us allocate gigabytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

pub const HEADER_LEN: usize = 20;
/// The largest payload a frame may hold (snapshots of long chats are the big ones).
pub const MAX_PAYLOAD: usize = 1 << 30;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// Encodes `value` as one complete frame labelled `tag`.
pub fn frame<T: Serialize>(value: &T, tag: u64) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![0u8; HEADER_LEN];
    bincode::serde::encode_into_std_write(value, &mut out, bincode_config())
        .map_err(|e| StoreError::Io(format!("encode: {e}")))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_PAYLOAD {
        return Err(StoreError::Io(format!("record of {len} bytes is too large")));
    }
    out[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    out[4..12].copy_from_slice(&tag.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[0..12]);
    out[12..16].copy_from_slice(&header_crc.to_le_bytes());
    let payload_crc = crc32c::crc32c(&out[HEADER_LEN..]);
    out[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    Ok(out)
}

/// What is at the start of a byte slice that should begin with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame whose checksums hold; `len` counts header and payload.
    Valid { payload: &'a [u8], len: usize, tag: u64 },
    /// The slice ends before the frame does (a torn write, if at the end of a log).
    Short,
    /// A sound header but a damaged payload: `len` bytes belonging to `tag`.
    BadPayload { len: usize, tag: u64 },
    /// The header itself fails its checksum: neither length nor owner can be trusted.
    Bad,
}

pub fn read_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < HEADER_LEN {
        return Frame::Short;
    }
    let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    if crc32c::crc32c(&buf[0..12]) != word(12) {
        return Frame::Bad;
    }
    let len = word(0) as usize;
    let tag = u64::from_le_bytes([buf[4], buf[5], buf[6], buf[7], buf[8], buf[9], buf[10], buf[11]]);
    if len > MAX_PAYLOAD {
        return Frame::Bad;
    }
    if buf.len() < HEADER_LEN + len {
        return Frame::Short;
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + len];
    if crc32c::crc32c(payload) != word(16) {
        return Frame::BadPayload { len: HEADER_LEN + len, tag };
    }
    Frame::Valid { payload, len: HEADER_LEN + len, tag }
}

/// The largest a log record decodes to. Records are small (a message is bounded by the request
/// limits; a chat's creation by its members), so a corrupt length inside one cannot make the
/// decoder allocate more than this, whatever [`MAX_PAYLOAD`] allows a snapshot.
pub const MAX_RECORD: usize = 4 << 20;

/// Decodes a log record (see [`MAX_RECORD`]).
pub fn decode_record<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StoreError> {
    let config = bincode::config::standard().with_limit::<MAX_RECORD>();
    bincode::serde::decode_from_slice(payload, config)
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}")))
}

/// Decodes a log record that borrows from `payload` (see [`MAX_RECORD`]).
pub fn decode_record_view<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T, StoreError> {
    let config = bincode::config::standard().with_limit::<MAX_RECORD>();
    bincode::serde::borrow_decode_from_slice(payload, config)
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}")))
}

/// Decodes a value from the start of `payload`; bytes after it are left unread.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(payload, bincode_config())
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Corrupt(format!("undecodable record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_any_flipped_bit_is_caught() {
        let bytes = frame(&("hello", 42u64), 7).expect("encode"); // ok: test
        let Frame::Valid { payload, len, tag } = read_frame(&bytes) else { panic!("not valid") };
        assert_eq!((len, tag), (bytes.len(), 7));
        assert_eq!(decode::<(String, u64)>(payload).expect("decode"), ("hello".to_string(), 42)); // ok: test
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let read = read_frame(&bad);
            assert!(!matches!(read, Frame::Valid { .. }), "flip at {i} went unnoticed");
            if i >= HEADER_LEN {
                assert_eq!(
                    read,
                    Frame::BadPayload { len: bytes.len(), tag: 7 },
                    "payload damage is pinned on its owner"
                );
            }
        }
        assert_eq!(read_frame(&bytes[..bytes.len() - 1]), Frame::Short);
    }
}
