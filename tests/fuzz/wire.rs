//! The CBOR wire messages: every request and answer type of
//! `gridsync_core::sync::wire`, decoded from mutated valid messages.

use gridsync_core::sync::wire::{self, *};
use serde::{Serialize, Serializer};

use crate::engine::{fuzz, Target, Verdict};

/// A CBOR byte string.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// The messages as `docs/protocol.md` describes them, written independently of the
/// types that decode them, so a seed that stops decoding shows the format moved.
mod mirror {
    use super::*;

    #[derive(Serialize)]
    pub struct Enroll<'a> {
        pub v: u32,
        pub code: &'a str,
        pub device: &'a str,
        pub app_version: &'a str,
    }

    #[derive(Serialize)]
    pub struct Enrolled<'a> {
        pub v: u32,
        pub token: &'a str,
        pub user: &'a str,
        pub directory: &'a str,
    }

    #[derive(Serialize)]
    pub struct Change<'a> {
        pub doc: &'a str,
        pub bytes: Bytes<'a>,
    }

    #[derive(Serialize)]
    pub struct Push<'a> {
        pub v: u32,
        pub changes: Vec<Change<'a>>,
    }

    /// Version 2: consecutive changes to one document as one entry.
    #[derive(Serialize)]
    pub struct Run<'a> {
        pub doc: &'a str,
        pub bytes: Vec<Bytes<'a>>,
    }

    #[derive(Serialize)]
    pub struct GroupedPull<'a> {
        pub v: u32,
        pub changes: (Run<'a>, Change<'a>),
        pub cursor: u64,
        pub more: bool,
        pub purge: Vec<&'a str>,
        pub page: u64,
        pub speaks: u32,
    }

    #[derive(Serialize)]
    pub struct Verdict<'a> {
        pub hash: Bytes<'a>,
        pub status: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub reason: Option<&'a str>,
    }

    #[derive(Serialize)]
    pub struct Pushed<'a> {
        pub v: u32,
        pub results: Vec<Verdict<'a>>,
    }

    #[derive(Serialize)]
    pub struct Pull<'a> {
        pub v: u32,
        pub cursor: u64,
        pub max_bytes: u64,
        pub purged: Vec<&'a str>,
        pub ack_page: u64,
    }

    #[derive(Serialize)]
    pub struct Pulled<'a> {
        pub v: u32,
        pub changes: Vec<Change<'a>>,
        pub cursor: u64,
        pub more: bool,
        pub purge: Vec<&'a str>,
        pub page: u64,
    }

    #[derive(Serialize)]
    pub struct BlobPut<'a> {
        pub v: u32,
        pub hash: &'a str,
        pub total: u64,
        pub offset: u64,
        pub bytes: Bytes<'a>,
    }

    #[derive(Serialize)]
    pub struct BlobPutAnswer {
        pub v: u32,
        pub received: u64,
        pub done: bool,
    }

    #[derive(Serialize)]
    pub struct BlobGet<'a> {
        pub v: u32,
        pub hash: &'a str,
        pub offset: u64,
        pub max_bytes: u64,
    }

    #[derive(Serialize)]
    pub struct BlobGetAnswer<'a> {
        pub v: u32,
        pub total: u64,
        pub bytes: Bytes<'a>,
    }

    #[derive(Serialize)]
    pub struct Error<'a> {
        pub v: u32,
        pub error: &'a str,
        pub message: &'a str,
        pub wipe: bool,
    }
}

const DOC: &str = "case-0123456789abcdef0123456789abcdef";
const PATROL: &str = "patrol-00112233445566778899aabbccddeeff";
const PHOTO: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Decode `bytes` as every message type; how many accepted them.
fn decode_as_every_type(bytes: &[u8]) -> usize {
    macro_rules! each {
        ($($t:ty),*) => { 0 $(+ usize::from(wire::decode::<$t>(bytes).is_ok()))* };
    }
    each!(
        EnrollRequest,
        EnrollResponse,
        WireChange,
        PushRequest,
        ChangeStatus,
        ChangeResult,
        PushResponse,
        PullRequest,
        PullResponse,
        BlobPutRequest,
        BlobPutResponse,
        BlobGetRequest,
        BlobGetResponse,
        ErrorBody
    )
}

/// A seed: its type's name, its bytes, and whether they decode as that type.
type Seed = (&'static str, Vec<u8>, fn(&[u8]) -> bool);

/// One valid encoding of each message type, with the type that must decode it.
fn seeds() -> Vec<Seed> {
    fn is<T: for<'de> serde::Deserialize<'de>>(b: &[u8]) -> bool {
        wire::decode::<T>(b).is_ok()
    }
    let changes = crate::change::real_changes();
    let change = |i: usize, doc| mirror::Change {
        doc,
        bytes: Bytes(&changes[i % changes.len()]),
    };
    let hash = [0xA5u8; 32];
    let photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00";
    vec![
        (
            "EnrollRequest",
            wire::encode(&mirror::Enroll {
                v: 1,
                code: "K7M2-Q9XD-4HPA",
                device: "67e55044-10b1-426f-9247-bb680e5fe0c8",
                app_version: "1.4.0 (android)",
            }),
            is::<EnrollRequest>,
        ),
        (
            "EnrollResponse",
            wire::encode(&mirror::Enrolled {
                v: 1,
                token: "gs1_3q2+7w==.b64-token-0123456789",
                user: "w-339901001001001",
                directory: r#"{"regions":[{"code":"339901001001","name":"望湖社区一网格"}]}"#,
            }),
            is::<EnrollResponse>,
        ),
        (
            "WireChange",
            wire::encode(&change(0, DOC)),
            is::<WireChange>,
        ),
        (
            "PushRequest",
            wire::encode(&mirror::Push {
                v: 1,
                changes: vec![change(0, DOC), change(1, DOC), change(2, PATROL)],
            }),
            is::<PushRequest>,
        ),
        (
            "ChangeStatus",
            wire::encode(&"deferred"),
            is::<ChangeStatus>,
        ),
        (
            "ChangeResult",
            wire::encode(&mirror::Verdict {
                hash: Bytes(&hash),
                status: "rejected",
                reason: Some("a photo outside your scope cannot be attached"),
            }),
            is::<ChangeResult>,
        ),
        (
            "PushResponse",
            wire::encode(&mirror::Pushed {
                v: 1,
                results: vec![
                    mirror::Verdict {
                        hash: Bytes(&hash),
                        status: "accepted",
                        reason: None,
                    },
                    mirror::Verdict {
                        hash: Bytes(&[7; 32]),
                        status: "duplicate",
                        reason: None,
                    },
                ],
            }),
            is::<PushResponse>,
        ),
        (
            "PullRequest",
            wire::encode(&mirror::Pull {
                v: 1,
                cursor: 42,
                max_bytes: 4 << 20,
                purged: vec![DOC],
                ack_page: 3,
            }),
            is::<PullRequest>,
        ),
        (
            "PullResponse",
            wire::encode(&mirror::Pulled {
                v: 1,
                changes: vec![change(0, DOC), change(3, PATROL)],
                cursor: 44,
                more: true,
                purge: vec![PATROL],
                page: 4,
            }),
            is::<PullResponse>,
        ),
        (
            "PullResponse",
            wire::encode(&mirror::GroupedPull {
                v: 2,
                changes: (
                    mirror::Run {
                        doc: DOC,
                        bytes: (0..3).map(|i| Bytes(&changes[i % changes.len()])).collect(),
                    },
                    change(3, PATROL),
                ),
                cursor: 47,
                more: false,
                purge: vec![],
                page: 5,
                speaks: 2,
            }),
            is::<PullResponse>,
        ),
        (
            "BlobPutRequest",
            wire::encode(&mirror::BlobPut {
                v: 1,
                hash: PHOTO,
                total: 131_072,
                offset: 65_536,
                bytes: Bytes(photo),
            }),
            is::<BlobPutRequest>,
        ),
        (
            "BlobPutResponse",
            wire::encode(&mirror::BlobPutAnswer {
                v: 1,
                received: 131_072,
                done: false,
            }),
            is::<BlobPutResponse>,
        ),
        (
            "BlobGetRequest",
            wire::encode(&mirror::BlobGet {
                v: 1,
                hash: PHOTO,
                offset: 0,
                max_bytes: 1 << 20,
            }),
            is::<BlobGetRequest>,
        ),
        (
            "BlobGetResponse",
            wire::encode(&mirror::BlobGetAnswer {
                v: 1,
                total: 20,
                bytes: Bytes(photo),
            }),
            is::<BlobGetResponse>,
        ),
        (
            "ErrorBody",
            wire::encode(&mirror::Error {
                v: 1,
                error: "unauthorized",
                message: "the device was revoked",
                wipe: true,
            }),
            is::<ErrorBody>,
        ),
    ]
}

/// CBOR heads that stress a decoder: indefinite lengths, breaks, huge lengths,
/// tags, floats, deep nesting, and the protocol's own keys.
const TOKENS: &[&[u8]] = &[
    b"\x9f",
    b"\xbf",
    b"\xff",
    b"\x5f",
    b"\x7f",
    b"\xf6",
    b"\xf7",
    b"\xf5",
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x3b\x7f\xff\xff\xff\xff\xff\xff\xff",
    b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00",
    b"\x7b\x00\x00\x00\x10\x00\x00\x00\x00",
    b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00",
    b"\xbb\x00\x00\x00\x10\x00\x00\x00\x00",
    b"\x5a\xff\xff\xff\xff",
    b"\xd9\xd9\xf7",
    b"\xc2\x49\x01\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\xf9\x7e\x00",
    b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81",
    b"\x61v",
    b"\x67changes",
    b"\x63doc",
    b"\x65bytes",
    b"\x64hash",
    b"\x66cursor",
    b"\x66purged",
    b"\x66status",
    b"\x68accepted",
    b"\x68rejected",
    b"\x62\xff\xfe",
];

#[test]
fn every_seed_is_a_valid_message_of_its_type() {
    for (name, bytes, decodes) in seeds() {
        assert!(
            decodes(&bytes),
            "the {name} seed no longer decodes as {name}"
        );
    }
}

#[test]
fn wire_messages() {
    let seeds: Vec<Vec<u8>> = seeds().into_iter().map(|(_, b, _)| b).collect();
    let max_len = 2 * seeds.iter().map(Vec::len).max().unwrap_or(0) + 256;
    fuzz(Target {
        name: "wire",
        seeds,
        tokens: TOKENS,
        max_len,
        max_iterations: 3_000_000,
        max_corpus: 256,
        mutator: None,
        run: &|bytes| {
            if decode_as_every_type(bytes) > 0 {
                Verdict::Accepted
            } else {
                Verdict::Refused
            }
        },
    });
}
