//! The versioned wire format: CBOR maps with short field names, decodable from any
//! language with a CBOR library. Every list and byte string is bounded by the
//! receiver before use.

use automerge::ChangeHash;
use serde::de::{SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{DeviceId, DocId, PhotoHash, UserId};

/// The newest protocol version this code speaks: 2, where consecutive changes to
/// one document travel as one entry (see [`Changes`]).
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest protocol version this code still speaks, to peers from before 2.
pub const FIRST_PROTOCOL_VERSION: u32 = 1;

/// Whether this code speaks protocol version `v`.
pub fn speaks(v: u32) -> bool {
    (FIRST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v)
}
/// Most bytes in one request or response body.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Most changes in one push or pull page.
pub const MAX_CHANGES_PER_MESSAGE: usize = 20_000;
/// Most bytes of changes a client asks for in one pull page.
pub const MAX_PULL_PAGE_BYTES: u64 = 8 * 1024 * 1024;

/// `POST /v1/enroll`: redeem a one-time code for a device token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// Protocol version.
    pub v: u32,
    /// The one-time enrollment code.
    pub code: String,
    /// The device's id (a UUID it generated).
    pub device: DeviceId,
    /// The app's version, for the console's device list.
    pub app_version: String,
}

/// Answer to [`EnrollRequest`]. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Protocol version.
    pub v: u32,
    /// The bearer token for every later request. Shown once; stored hashed on the server.
    pub token: String,
    /// The user the code was issued for.
    pub user: UserId,
    /// The directory (JSON, `docs/directory-format.md`).
    pub directory: String,
}

/// One change in a push or pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChange {
    /// Document id.
    pub doc: DocId,
    /// Raw (uncompressed) Automerge change bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The changes of a push or a pull page, in order.
///
/// On the wire, a list of entries `{doc, bytes}`. In protocol 1 each entry is one
/// change, `bytes` a byte string, so the document id travels with every change.
/// From protocol 2 an entry may also be a run of consecutive changes to one
/// document, `bytes` an array of byte strings: the id travels once per run. A
/// reader takes either form in any entry; a writer groups only for a peer that
/// speaks 2 (see [`Changes::new`]), and writes a run of one as a plain entry.
/// Decoding stops at [`MAX_CHANGES_PER_MESSAGE`] changes, however they are grouped.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    list: Vec<WireChange>,
    grouped: bool,
}

impl Changes {
    /// `list`, to be written for a peer that speaks protocol version `v`.
    pub fn new(list: Vec<WireChange>, v: u32) -> Changes {
        Changes {
            list,
            grouped: v >= 2,
        }
    }

    /// The changes, in order.
    pub fn into_vec(self) -> Vec<WireChange> {
        self.list
    }
}

impl From<Vec<WireChange>> for Changes {
    /// `list`, written for a peer of this protocol version.
    fn from(list: Vec<WireChange>) -> Changes {
        Changes::new(list, PROTOCOL_VERSION)
    }
}

impl FromIterator<WireChange> for Changes {
    /// The changes, written for a peer of this protocol version.
    fn from_iter<I: IntoIterator<Item = WireChange>>(iter: I) -> Changes {
        Vec::from_iter(iter).into()
    }
}

impl std::ops::Deref for Changes {
    type Target = [WireChange];
    fn deref(&self) -> &[WireChange] {
        &self.list
    }
}

impl PartialEq for Changes {
    /// The same changes in the same order, however they are written.
    fn eq(&self, other: &Changes) -> bool {
        self.list == other.list
    }
}

impl Serialize for Changes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.grouped {
            return self.list.serialize(s);
        }
        let runs: Vec<&[WireChange]> = self.list.chunk_by(|a, b| a.doc == b.doc).collect();
        let mut seq = s.serialize_seq(Some(runs.len()))?;
        for run in runs {
            match run {
                [one] => seq.serialize_element(one)?,
                _ => seq.serialize_element(&Run(run))?,
            }
        }
        seq.end()
    }
}

/// Consecutive changes to one document, as one entry.
struct Run<'a>(&'a [WireChange]);

impl Serialize for Run<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entry = s.serialize_struct("WireChange", 2)?;
        entry.serialize_field("doc", &self.0[0].doc)?;
        entry.serialize_field("bytes", &RunBytes(self.0))?;
        entry.end()
    }
}

struct RunBytes<'a>(&'a [WireChange]);

impl Serialize for RunBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|c| serde_bytes::Bytes::new(&c.bytes)))
    }
}

/// One entry as read: a change, or a run of changes, of one document.
#[derive(Deserialize)]
struct Entry {
    doc: DocId,
    bytes: EntryBytes,
}

enum EntryBytes {
    One(Vec<u8>),
    Run(Vec<Vec<u8>>),
}

fn too_many<E: serde::de::Error>() -> E {
    E::custom(format!(
        "more than {MAX_CHANGES_PER_MESSAGE} changes in one message"
    ))
}

impl<'de> Deserialize<'de> for EntryBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = EntryBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a change (a byte string) or a run of them (an array of byte strings)")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<EntryBytes, E> {
                Ok(EntryBytes::One(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<EntryBytes, E> {
                Ok(EntryBytes::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EntryBytes, A::Error> {
                let mut run = Vec::new();
                while let Some(bytes) = seq.next_element::<serde_bytes::ByteBuf>()? {
                    if run.len() == MAX_CHANGES_PER_MESSAGE {
                        return Err(too_many());
                    }
                    run.push(bytes.into_vec());
                }
                Ok(EntryBytes::Run(run))
            }
        }
        d.deserialize_any(Bytes)
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Changes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of changes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Changes, A::Error> {
                let mut list = Vec::new();
                let mut grouped = false;
                while let Some(entry) = seq.next_element::<Entry>()? {
                    match entry.bytes {
                        EntryBytes::One(bytes) => list.push(WireChange {
                            doc: entry.doc,
                            bytes,
                        }),
                        EntryBytes::Run(run) => {
                            grouped = true;
                            list.extend(run.into_iter().map(|bytes| WireChange {
                                doc: entry.doc.clone(),
                                bytes,
                            }));
                        }
                    }
                    if list.len() > MAX_CHANGES_PER_MESSAGE {
                        return Err(too_many());
                    }
                }
                Ok(Changes { list, grouped })
            }
        }
        d.deserialize_seq(Entries)
    }
}

/// `POST /v1/push`: local changes the server has not acknowledged, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// Protocol version.
    pub v: u32,
    /// The changes, dependencies before dependants.
    pub changes: Changes,
    /// Documents erased at the sender, a relay syncing upward: persons and
    /// households (ADR 0011), cases past their retention (ADR 0017; the receiver
    /// erases those only once due by its own clock). Only a relay device may send
    /// any; absent (empty) from phones and from relays before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<DocId>,
}

/// What the server did with one pushed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Stored durably now.
    Accepted,
    /// Already stored before (a replay or a retry).
    Duplicate,
    /// Refused; never stored or forwarded. See the reason.
    Rejected,
    /// Not stored yet: it depends on a change the server does not have. Keep it and
    /// send it again (with its dependencies first).
    Deferred,
}

/// The server's answer for one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeResult {
    /// The change hash (32 bytes); for bytes that are not a change at all, the
    /// SHA-256 of the bytes.
    #[serde(with = "hash_bytes")]
    pub hash: ChangeHash,
    /// Accepted, duplicate or rejected.
    pub status: ChangeStatus,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer to [`PushRequest`]: one result per change, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Protocol version.
    pub v: u32,
    /// Results.
    pub results: Vec<ChangeResult>,
    /// The newest protocol version the server speaks; absent from servers that
    /// speak only 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaks: Option<u32>,
}

/// `POST /v1/pull`: what is new since `cursor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Protocol version.
    pub v: u32,
    /// The last server sequence number this device has applied (0 at first).
    pub cursor: u64,
    /// Page size in bytes of changes.
    pub max_bytes: u64,
    /// The `purge` list of the last answer this device applied: the server stops
    /// repeating those.
    #[serde(default)]
    pub purged: Vec<DocId>,
    /// The `page` number of the last answer this device applied.
    #[serde(default)]
    pub ack_page: u64,
    /// The directory revision this device holds, if it takes directory updates
    /// (`docs/protocol.md`, "Directory updates"): the server answers a newer one.
    /// Absent from clients before it, which keep the directory they enrolled with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<u64>,
}

/// A directory revision newer than the one a device said it holds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryUpdate {
    /// Its number.
    pub revision: u64,
    /// The directory (`docs/directory-format.md`): a phone's copy (no boundaries,
    /// no staff contacts) for a phone, the whole for a downstream relay.
    pub json: String,
}

impl std::fmt::Debug for DirectoryUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryUpdate")
            .field("revision", &self.revision)
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// Answer to [`PullRequest`]. Its `Debug` hides a new token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    /// Protocol version.
    pub v: u32,
    /// Changes visible to the device, in server order; a document that has just
    /// become visible arrives with its whole history.
    pub changes: Changes,
    /// The cursor to send next time (store it with the changes, atomically).
    pub cursor: u64,
    /// Whether another page is waiting.
    pub more: bool,
    /// Documents no longer visible to the device: remove them.
    pub purge: Vec<DocId>,
    /// This answer's number; acknowledge it in the next request once applied.
    pub page: u64,
    /// A new bearer token for this device (token rotation, `docs/protocol.md`):
    /// store it together with this page and use it from the next request on; the
    /// old one stops working once the new one has been used. Absent from most
    /// answers; a client that ignores it keeps its token, which goes on working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_token: Option<String>,
    /// When `more` is set: about how much is still waiting for this device after
    /// this page, for a progress bar. Absent otherwise, and from servers before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Backlog>,
    /// Of `purge`, the documents that were erased (ADR 0011, 0017): a relay
    /// syncing upward erases them from its own log and replica rather than
    /// keeping them; a phone forgets its refused changes of them too. Absent
    /// (empty) from servers before it (to phones, before retention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<DocId>,
    /// A newer directory revision than the request's `directory`; absent when
    /// the device holds the newest, did not ask, or the server is before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryUpdate>,
    /// The newest protocol version the server speaks; absent from servers that
    /// speak only 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaks: Option<u32>,
}

/// Changes still waiting for a device after a page: counted up to a cap the server
/// chooses (1,000 here), so a figure at the cap means "at least". Documents that
/// have just become visible, which arrive with their whole history, are not in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlog {
    /// Changes.
    pub changes: u64,
    /// Their bytes (as stored, before any compression on the link).
    pub bytes: u64,
}

/// How a token appears in `Debug` output: never itself.
pub(crate) fn redacted(token: &Option<String>) -> Option<&'static str> {
    token.as_ref().map(|_| "…")
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("v", &self.v)
            .field("token", &"…")
            .field("user", &self.user)
            .field("directory_bytes", &self.directory.len())
            .finish()
    }
}

impl std::fmt::Debug for PullResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullResponse")
            .field("v", &self.v)
            .field("changes", &self.changes)
            .field("cursor", &self.cursor)
            .field("more", &self.more)
            .field("purge", &self.purge)
            .field("page", &self.page)
            .field("new_token", &redacted(&self.new_token))
            .field("backlog", &self.backlog)
            .field("erased", &self.erased)
            .field("directory", &self.directory)
            .field("speaks", &self.speaks)
            .finish()
    }
}

/// Longest bearer token a client accepts from a server (and a server looks up).
pub const MAX_TOKEN_LEN: usize = 256;

/// Whether `token` can be a bearer token: 1 to [`MAX_TOKEN_LEN`] visible ASCII
/// characters (it goes into an `Authorization` header).
pub fn is_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Most bytes of one photo blob.
pub const MAX_BLOB_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes in one blob chunk.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// `POST /v1/blob/put`: one chunk of a photo upload. Chunks are sent in order; an
/// upload cut off resumes from the `received` count the server answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobPutRequest {
    /// Protocol version.
    pub v: u32,
    /// SHA-256 (hex) of the whole blob.
    pub hash: PhotoHash,
    /// Size of the whole blob.
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// The chunk.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// Answer to [`BlobPutRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobPutResponse {
    /// Protocol version.
    pub v: u32,
    /// Bytes the server holds for this blob; the next chunk starts here.
    pub received: u64,
    /// The whole blob is stored and its hash verified.
    pub done: bool,
}

/// `POST /v1/blob/get`: part of a photo this device may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobGetRequest {
    /// Protocol version.
    pub v: u32,
    /// SHA-256 (hex).
    pub hash: PhotoHash,
    /// From where.
    pub offset: u64,
    /// At most this many bytes.
    pub max_bytes: u64,
}

/// Answer to [`BlobGetRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobGetResponse {
    /// Protocol version.
    pub v: u32,
    /// Size of the whole blob.
    pub total: u64,
    /// The bytes from `offset`.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Protocol version.
    pub v: u32,
    /// A stable code: `unauthorized`, `revoked`, `bad_request`, `unsupported_version`,
    /// `too_large`, `internal`.
    pub error: String,
    /// What was wrong, for people.
    pub message: String,
    /// The device must erase its data (it was revoked).
    #[serde(default)]
    pub wipe: bool,
}

/// A change hash as a CBOR byte string of exactly 32 bytes.
mod hash_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(hash: &ChangeHash, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::Bytes::new(&hash.0).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChangeHash, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        ChangeHash::try_from(&bytes[..])
            .map_err(|_| serde::de::Error::custom("a change hash must be 32 bytes"))
    }
}

/// A body that is not valid CBOR of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct DecodeError(pub String);

/// Encode a message as CBOR.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and every message type is plain data.
    ciborium::into_writer(msg, &mut out).expect("CBOR encoding into a Vec");
    out
}

/// Decode a CBOR message, refusing oversized bodies.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(DecodeError(format!(
            "body of {} bytes exceeds {MAX_BODY_BYTES}",
            bytes.len()
        )));
    }
    ciborium::from_reader(bytes).map_err(|e| DecodeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show_in_debug_output() {
        let enrolled = EnrollResponse {
            v: PROTOCOL_VERSION,
            token: "secret-token-123".into(),
            user: "w-339901001001001".parse().unwrap(),
            directory: "{}".into(),
        };
        let pulled = PullResponse {
            v: PROTOCOL_VERSION,
            changes: vec![].into(),
            cursor: 1,
            more: false,
            purge: vec![],
            page: 1,
            new_token: Some("secret-token-456".into()),
            backlog: None,
            erased: vec![],
            directory: None,
            speaks: None,
        };
        let shown = format!("{enrolled:?} {pulled:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("new_token: Some"), "{shown}");
    }

    #[test]
    fn messages_round_trip_and_use_short_keys() {
        let req = PushRequest {
            v: PROTOCOL_VERSION,
            changes: vec![WireChange {
                doc: "case-0123456789abcdef0123456789abcdef".parse().unwrap(),
                bytes: vec![1, 2, 3],
            }]
            .into(),
            erased: vec![],
        };
        let bytes = encode(&req);
        assert_eq!(decode::<PushRequest>(&bytes).unwrap(), req);
        // A fixture another language can check against: map {v: 1, changes: [...]}.
        assert_eq!(bytes[0], 0xa2, "a CBOR map of two fields");
        assert!(decode::<PushRequest>(b"\xff\x00").is_err());
        assert!(
            decode::<PullRequest>(&bytes).is_err(),
            "wrong shape is an error"
        );
    }

    /// A change as protocol 1 writes it, and the push request of protocol 1: what
    /// a peer from before version 2 reads.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct FirstChange {
        doc: DocId,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct FirstPush {
        v: u32,
        changes: Vec<FirstChange>,
    }

    fn doc(n: u8) -> DocId {
        format!("case-{}", format!("{n:02x}").repeat(16))
            .parse()
            .unwrap()
    }

    /// Changes to documents 1, 1, 1, 2, 1, 2, 2: four runs.
    fn interleaved() -> Vec<WireChange> {
        [1, 1, 1, 2, 1, 2, 2]
            .iter()
            .enumerate()
            .map(|(i, &d)| WireChange {
                doc: doc(d),
                bytes: vec![i as u8; 300],
            })
            .collect()
    }

    #[test]
    fn version_2_names_a_document_once_per_run_of_its_changes() {
        let list = interleaved();
        let grouped = PushRequest {
            v: 2,
            changes: Changes::new(list.clone(), 2),
            erased: vec![],
        };
        let first = PushRequest {
            v: 1,
            changes: Changes::new(list.clone(), 1),
            erased: vec![],
        };
        let (grouped_bytes, first_bytes) = (encode(&grouped), encode(&first));
        // Read back: the same changes in the same order, either way.
        assert_eq!(
            decode::<PushRequest>(&grouped_bytes)
                .unwrap()
                .changes
                .into_vec(),
            list
        );
        assert_eq!(
            decode::<PushRequest>(&first_bytes)
                .unwrap()
                .changes
                .into_vec(),
            list
        );
        // Protocol 1 is written as it always was: a peer before 2 reads it.
        let old: FirstPush = decode(&first_bytes).unwrap();
        assert_eq!(old.changes.len(), 7);
        assert_eq!(encode(&old), first_bytes);
        // Version 2: four entries, three fewer document ids (39 bytes each) less
        // the arrays' headers.
        let ids = |b: &[u8]| b.windows(37).filter(|w| w.starts_with(b"case-")).count();
        assert_eq!((ids(&first_bytes), ids(&grouped_bytes)), (7, 4));
        assert!(grouped_bytes.len() + 3 * 39 - 3 * 2 <= first_bytes.len());
        // A peer before 2 cannot read a run: why a writer groups only for a peer
        // that said it speaks 2.
        assert!(decode::<FirstPush>(&grouped_bytes).is_err());
        // A list without runs of two is the same bytes in either version.
        let apart = vec![list[0].clone(), list[3].clone(), list[4].clone()];
        assert_eq!(
            encode(&Changes::new(apart.clone(), 2)),
            encode(&Changes::new(apart, 1))
        );
    }

    #[test]
    fn a_reader_counts_the_changes_in_runs_against_the_bound() {
        #[derive(Serialize)]
        struct RunOf {
            doc: DocId,
            bytes: Vec<serde_bytes::ByteBuf>,
        }
        #[derive(Serialize)]
        struct Push {
            v: u32,
            changes: Vec<RunOf>,
        }
        let run = |n: usize| RunOf {
            doc: doc(1),
            bytes: vec![serde_bytes::ByteBuf::new(); n],
        };
        // Empty byte strings are one byte each: a small body that would become
        // millions of changes, each with its document id, if runs were unbounded.
        let at_bound = encode(&Push {
            v: 2,
            changes: vec![run(MAX_CHANGES_PER_MESSAGE - 1), run(1)],
        });
        assert_eq!(
            decode::<PushRequest>(&at_bound).unwrap().changes.len(),
            MAX_CHANGES_PER_MESSAGE
        );
        for over in [
            vec![run(MAX_CHANGES_PER_MESSAGE + 1)],
            vec![run(MAX_CHANGES_PER_MESSAGE), run(1)],
        ] {
            let e = decode::<PushRequest>(&encode(&Push {
                v: 2,
                changes: over,
            }))
            .unwrap_err();
            assert!(e.0.contains("more than 20000 changes"), "{e}");
        }
        // A run of something else than changes is refused as such.
        #[derive(Serialize)]
        struct Texts {
            doc: DocId,
            bytes: Vec<String>,
        }
        let texts = encode(&(
            2,
            vec![Texts {
                doc: doc(1),
                bytes: vec!["x".into()],
            }],
        ));
        assert!(decode::<Changes>(&texts[1..]).is_err());
    }

    #[test]
    fn a_new_token_is_optional_both_ways() {
        #[derive(Serialize, Deserialize)]
        struct OldPullResponse {
            v: u32,
            changes: Vec<WireChange>,
            cursor: u64,
            more: bool,
            purge: Vec<DocId>,
            page: u64,
        }
        let mut answer = PullResponse {
            v: PROTOCOL_VERSION,
            changes: vec![].into(),
            cursor: 3,
            more: false,
            purge: vec![],
            page: 2,
            new_token: None,
            backlog: None,
            erased: vec![],
            directory: None,
            speaks: None,
        };
        // Without a token the answer is the same bytes as before the field existed.
        let plain = encode(&answer);
        let old: OldPullResponse = decode(&plain).unwrap();
        assert_eq!(encode(&old), plain);
        // With one, an old client reads the rest and ignores it.
        answer.new_token = Some("tok".into());
        let old: OldPullResponse = decode(&encode(&answer)).unwrap();
        assert_eq!((old.cursor, old.page), (3, 2));
        assert_eq!(decode::<PullResponse>(&encode(&answer)).unwrap(), answer);
        // The same for the backlog.
        answer.backlog = Some(Backlog {
            changes: 7,
            bytes: 7_000,
        });
        let old: OldPullResponse = decode(&encode(&answer)).unwrap();
        assert_eq!((old.cursor, old.page), (3, 2));
        assert_eq!(decode::<PullResponse>(&encode(&answer)).unwrap(), answer);
        // And for a directory update.
        answer.directory = Some(DirectoryUpdate {
            revision: 4,
            json: "{}".into(),
        });
        let old: OldPullResponse = decode(&encode(&answer)).unwrap();
        assert_eq!((old.cursor, old.page), (3, 2));
        assert_eq!(decode::<PullResponse>(&encode(&answer)).unwrap(), answer);
        assert!(is_token("abc_-0") && !is_token("") && !is_token("a b") && !is_token("é"));
    }

    #[test]
    fn a_request_before_directory_updates_asks_for_none() {
        #[derive(Serialize)]
        struct OldPullRequest {
            v: u32,
            cursor: u64,
            max_bytes: u64,
        }
        let old = encode(&OldPullRequest {
            v: PROTOCOL_VERSION,
            cursor: 9,
            max_bytes: 1024,
        });
        assert_eq!(decode::<PullRequest>(&old).unwrap().directory, None);
        let asking = PullRequest {
            v: PROTOCOL_VERSION,
            cursor: 9,
            max_bytes: 1024,
            purged: vec![],
            ack_page: 0,
            directory: Some(3),
        };
        assert_eq!(decode::<PullRequest>(&encode(&asking)).unwrap(), asking);
    }

    #[test]
    fn erased_lists_are_optional_both_ways() {
        #[derive(Serialize, Deserialize)]
        struct OldPushRequest {
            v: u32,
            changes: Vec<WireChange>,
        }
        let person: DocId = "person-0123456789abcdef0123456789abcdef".parse().unwrap();
        let mut push = PushRequest {
            v: PROTOCOL_VERSION,
            changes: vec![].into(),
            erased: vec![],
        };
        // Empty, the request is the same bytes as before the field existed.
        let plain = encode(&push);
        let old: OldPushRequest = decode(&plain).unwrap();
        assert_eq!(encode(&old), plain);
        // An old request decodes with nothing erased.
        assert_eq!(decode::<PushRequest>(&plain).unwrap().erased, vec![]);
        // A server before it reads the rest and ignores the list.
        push.erased = vec![person.clone()];
        let bytes = encode(&push);
        assert_eq!(
            decode::<PushRequest>(&bytes).unwrap().erased,
            vec![person.clone()]
        );
        assert!(decode::<OldPushRequest>(&bytes).is_ok());

        let answer = PullResponse {
            v: PROTOCOL_VERSION,
            changes: vec![].into(),
            cursor: 3,
            more: false,
            purge: vec![person.clone()],
            page: 2,
            new_token: None,
            backlog: None,
            erased: vec![person.clone()],
            directory: None,
            speaks: None,
        };
        let decoded: PullResponse = decode(&encode(&answer)).unwrap();
        assert_eq!(decoded.erased, vec![person]);
    }
}
