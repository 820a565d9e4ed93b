//! The one way bytes from outside become an Automerge change.
//!
//! Automerge bounds none of its inputs: it inflates a compressed chunk (type 2, and
//! the deflated columns of a document chunk, type 0) without limit, accepts bundles
//! (type 3) of many changes, and does not verify a change's header checksum. Every
//! path that takes changes from a phone, a relay, a log or a backup goes through
//! [`decode_change`], which looks at the bytes before the library does:
//!
//! 1. size: at most [`MAX_CHANGE_BYTES`];
//! 2. header: the Automerge magic, chunk type 1 (an uncompressed change) and a
//!    length that covers exactly the rest of the bytes;
//! 3. checksum: the header's four checksum bytes equal the first four bytes of the
//!    SHA-256 over type, length and data (the same hash that names the change);
//! 4. the library's decode, with a panic caught and turned into an error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::{Change, ChangeHash};
use sha2::{Digest, Sha256};

use super::wire::WireChange;
use crate::ids::DocId;

/// Largest change accepted from another replica.
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Magic (4), checksum (4), chunk type (1).
const FIXED_HEADER: usize = 9;
const CHUNK_CHANGE: u8 = 1;

/// Why bytes are not an acceptable change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Larger than [`MAX_CHANGE_BYTES`].
    #[error("a change of {0} bytes exceeds the limit of {MAX_CHANGE_BYTES}")]
    TooLarge(usize),
    /// Not an Automerge chunk at all (wrong magic, or cut off inside the header).
    #[error("not an Automerge change")]
    NotAChunk,
    /// A document (0), compressed change (2), bundle (3) or unknown chunk.
    #[error("chunk type {0} refused: only uncompressed changes (type 1) are accepted")]
    ChunkType(u8),
    /// The header's length does not match the bytes that follow it.
    #[error("the change header announces {announced} bytes but {actual} follow")]
    Length {
        /// What the header says.
        announced: u64,
        /// What is there.
        actual: usize,
    },
    /// The header checksum does not match the change's bytes.
    #[error("the change checksum does not match its bytes (corrupted in storage or transit)")]
    Checksum,
    /// Automerge could not read it.
    #[error("malformed change: {0}")]
    Malformed(String),
    /// Automerge panicked on it.
    #[error("the change could not be decoded (the decoder failed on it)")]
    Panicked,
}

/// Decode untrusted bytes into a change, checking size, chunk type, length and
/// checksum before Automerge sees them, with a panic inside Automerge caught.
pub fn decode_change(bytes: &[u8]) -> Result<Change, ChangeError> {
    if bytes.len() > MAX_CHANGE_BYTES {
        return Err(ChangeError::TooLarge(bytes.len()));
    }
    let header = bytes.get(..FIXED_HEADER).ok_or(ChangeError::NotAChunk)?;
    if header[..4] != MAGIC {
        return Err(ChangeError::NotAChunk);
    }
    if header[8] != CHUNK_CHANGE {
        return Err(ChangeError::ChunkType(header[8]));
    }
    let (announced, leb_len) = read_uleb(&bytes[FIXED_HEADER..]).ok_or(ChangeError::NotAChunk)?;
    let data_start = FIXED_HEADER + leb_len;
    let actual = bytes.len() - data_start;
    if announced != actual as u64 {
        return Err(ChangeError::Length { announced, actual });
    }
    // Type byte, length and data: what Automerge hashes to name the change.
    let hash = Sha256::digest(&bytes[8..]);
    if hash[..4] != header[4..8] {
        return Err(ChangeError::Checksum);
    }
    match catch_unwind(AssertUnwindSafe(|| Change::try_from(bytes))) {
        Ok(Ok(change)) => Ok(change),
        Ok(Err(e)) => Err(ChangeError::Malformed(e.to_string())),
        Err(_) => Err(ChangeError::Panicked),
    }
}

/// Decode one change of a message: the document and the change, or, for bytes
/// that are refused, the name to answer them under (the SHA-256 of the bytes, which
/// is the change hash of a well-formed change) and why.
pub fn decode_wire_change(wire: WireChange) -> Result<(DocId, Change), (ChangeHash, ChangeError)> {
    match decode_change(&wire.bytes) {
        Ok(change) => Ok((wire.doc, change)),
        Err(e) => Err((name_bytes(&wire.bytes), e)),
    }
}

/// The name of refused bytes in an answer: for a framed change the hash that names
/// it (so the sender finds its change), otherwise the SHA-256 of the bytes.
fn name_bytes(bytes: &[u8]) -> ChangeHash {
    let framed = bytes.len() >= FIXED_HEADER && bytes[..4] == MAGIC;
    let hashed = if framed { &bytes[8..] } else { bytes };
    ChangeHash(Sha256::digest(hashed).into())
}

/// An unsigned LEB128 number at the start of `bytes` (at most 10 bytes, no
/// overflow): the value and how many bytes it took.
fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(10).enumerate() {
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    fn sample_change() -> Vec<u8> {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "title", "消防通道堵塞").unwrap();
        doc.commit();
        doc.get_changes(&[])[0].raw_bytes().to_vec()
    }

    /// A chunk of `typ` around `data`, with a correct checksum.
    fn chunk(typ: u8, data: &[u8]) -> Vec<u8> {
        let mut body = vec![typ];
        let mut n = data.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            body.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
        body.extend_from_slice(data);
        let hash = Sha256::digest(&body);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&hash[..4]);
        out.extend(body);
        out
    }

    #[test]
    fn a_real_change_decodes_with_its_hash() {
        let bytes = sample_change();
        let change = decode_change(&bytes).unwrap();
        assert_eq!(change.raw_bytes(), &bytes[..]);
        assert_eq!(&change.hash().0[..4], &bytes[4..8]);
    }

    #[test]
    fn other_chunk_types_are_refused_by_their_header_byte() {
        for typ in [0u8, 2, 3, 4, 255] {
            let bytes = chunk(typ, &[0u8; 64]);
            assert_eq!(decode_change(&bytes), Err(ChangeError::ChunkType(typ)));
        }
    }

    #[test]
    fn a_corrupted_checksum_or_body_is_refused() {
        let mut bytes = sample_change();
        bytes[5] ^= 0x01;
        assert_eq!(decode_change(&bytes), Err(ChangeError::Checksum));
        let mut bytes = sample_change();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        assert_eq!(decode_change(&bytes), Err(ChangeError::Checksum));
    }

    #[test]
    fn truncated_extended_and_oversized_input_is_refused() {
        let bytes = sample_change();
        for cut in [0, 3, 8, 9, bytes.len() - 1] {
            assert!(decode_change(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode_change(&longer),
            Err(ChangeError::Length { .. })
        ));
        let huge = chunk(1, &vec![0u8; MAX_CHANGE_BYTES]);
        assert_eq!(decode_change(&huge), Err(ChangeError::TooLarge(huge.len())));
        assert_eq!(decode_change(b"hello world"), Err(ChangeError::NotAChunk));
    }

    #[test]
    fn a_well_framed_chunk_of_garbage_is_malformed_not_a_panic() {
        let bytes = chunk(1, &[0xff; 200]);
        assert!(matches!(
            decode_change(&bytes),
            Err(ChangeError::Malformed(_) | ChangeError::Panicked)
        ));
    }

    #[test]
    fn uleb_reads_and_bounds() {
        assert_eq!(read_uleb(&[0x05]), Some((5, 1)));
        assert_eq!(read_uleb(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(read_uleb(&[0x80; 11]), None);
        assert_eq!(read_uleb(&[]), None);
    }
}
