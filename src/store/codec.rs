//! How anything we store becomes bytes: a checksummed frame around a bincode payload.
//!
//! ```text
//! +-----------+-------------------------------+-------------------+
//! | len: u32  | crc32c(len bytes ++ payload)  | payload (bincode) |
//! +-----------+-------------------------------+-------------------+
//! ```
//! Every use of bincode lives here, so the encoding can be swapped in one place.
//! Decoding is size-limited: a corrupt length can never make us allocate gigabytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

pub const HEADER_LEN: usize = 8;
/// The largest payload a frame may hold (snapshots of long chats are the big ones).
pub const MAX_PAYLOAD: usize = 1 << 30;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// Encodes `value` as one complete frame.
pub fn frame<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![0u8; HEADER_LEN];
    bincode::serde::encode_into_std_write(value, &mut out, bincode_config())
        .map_err(|e| StoreError::Io(format!("encode: {e}")))?;
    let len = out.len() - HEADER_LEN;
    if len > MAX_PAYLOAD {
        return Err(StoreError::Io(format!(
            "record of {len} bytes is too large"
        )));
    }
    let len_bytes = (len as u32).to_le_bytes();
    out[..4].copy_from_slice(&len_bytes);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &out[HEADER_LEN..]);
    out[4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// What is at the start of a byte slice that should begin with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame whose checksum holds; `len` counts header and payload.
    Valid { payload: &'a [u8], len: usize },
    /// The slice ends before the frame does (a torn write, if at the end of a log).
    Short,
    /// The checksum fails or the length is impossible.
    Bad,
}

pub fn read_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < HEADER_LEN {
        return Frame::Short;
    }
    let len_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD {
        return Frame::Bad;
    }
    if buf.len() < HEADER_LEN + len {
        return Frame::Short;
    }
    let payload = &buf[HEADER_LEN..HEADER_LEN + len];
    if crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
        return Frame::Bad;
    }
    Frame::Valid {
        payload,
        len: HEADER_LEN + len,
    }
}

/// The payload length a frame header announces, if it could be a header at all.
pub fn announced_len(header: &[u8; HEADER_LEN]) -> Option<usize> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (len <= MAX_PAYLOAD).then_some(HEADER_LEN + len)
}

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
        let bytes = frame(&("hello", 42u64)).expect("encode");
        let Frame::Valid { payload, len } = read_frame(&bytes) else {
            panic!("not valid")
        };
        assert_eq!(len, bytes.len());
        assert_eq!(
            decode::<(String, u64)>(payload).expect("decode"),
            ("hello".to_string(), 42)
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_ne!(
                read_frame(&bad),
                Frame::Valid { payload, len },
                "flip at {i} went unnoticed"
            );
        }
        assert_eq!(read_frame(&bytes[..bytes.len() - 1]), Frame::Short);
    }
}
