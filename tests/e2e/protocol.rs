//! Protocol versions side by side (`docs/protocol.md`, "Versions"): a phone of
//! this build with a relay from before version 2, a phone from before it with
//! this relay, and version 2's grouping seen on the wire.

use std::cell::RefCell;

use gridsync_core::sync::wire::{self, ErrorBody, PullRequest, PullResponse, PushResponse};
use gridsync_core::sync::{self, Transport, TransportError};
use gridsync_core::{Action, CaseFilter, DocId};
use gridsync_tests::{LocalTransport, SimDevice, SimRelay};
use serde::{Deserialize, Serialize};

use crate::workflow::{leak, DISPATCHER};

const TOWN_DISPATCHER: &str = "td-339901001";
/// A grid of the community of `DISPATCHER`.
const GRID: &str = "339901001001001";

/// The version a message says it is in.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

/// Between a device and the relay: keeps each request's route and version and
/// each answer. Playing a relay from before version 2, it refuses any other
/// version as that relay's check did, and its answers say nothing of `speaks`.
struct Recorder<'a> {
    relay: LocalTransport<'a>,
    before_2: bool,
    requests: RefCell<Vec<(String, u32)>>,
    answers: RefCell<Vec<Vec<u8>>>,
}

impl<'a> Recorder<'a> {
    fn new(relay: &'a SimRelay, before_2: bool) -> Self {
        Recorder {
            relay: LocalTransport::new(&relay.relay),
            before_2,
            requests: RefCell::default(),
            answers: RefCell::default(),
        }
    }

    fn versions(&self, path: &str) -> Vec<u32> {
        let requests = self.requests.borrow();
        requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| *v)
            .collect()
    }

    fn sync(&self, device: &SimDevice<'_>) -> sync::SyncReport {
        sync::sync(&device.engine, self, &mut |_| {}).expect("sync")
    }
}

impl Transport for Recorder<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let v = wire::decode::<Version>(&body).expect("a version").v;
        self.requests.borrow_mut().push((path.to_owned(), v));
        if self.before_2 && v != 1 {
            return Err(TransportError::Status {
                status: 400,
                body: wire::encode(&ErrorBody {
                    v: 1,
                    error: "unsupported_version".into(),
                    message: format!("this server speaks protocol version 1, the app sent {v}"),
                    wipe: false,
                }),
            });
        }
        let mut answer = self.relay.post(path, token, body)?;
        if self.before_2 {
            answer = match path {
                "/v1/push" => {
                    let mut a: PushResponse = wire::decode(&answer).expect("push answer");
                    a.speaks = None;
                    wire::encode(&a)
                }
                "/v1/pull" => {
                    let mut a: PullResponse = wire::decode(&answer).expect("pull answer");
                    a.speaks = None;
                    wire::encode(&a)
                }
                _ => answer,
            };
        }
        self.answers.borrow_mut().push(answer.clone());
        Ok(answer)
    }
}

/// `cases` cases reported offline by `device` and accepted: two changes each,
/// one after the other in its outbox.
fn reported_and_accepted(device: &SimDevice<'_>, cases: usize) -> Vec<DocId> {
    (0..cases)
        .map(|_| {
            let mut case = leak();
            case.grid = Some(GRID.parse().expect("a grid"));
            let id = device.report_case(case).expect("report");
            device.act(&id, Action::Accept).expect("accept");
            id
        })
        .collect()
}

fn listed(device: &SimDevice<'_>) -> usize {
    device
        .list_cases(&CaseFilter {
            limit: 100,
            ..Default::default()
        })
        .expect("list")
        .len()
}

/// A change as version 1 writes it, and a pull answer as a phone before version
/// 2 reads it.
#[derive(Serialize, Deserialize)]
struct FirstChange {
    doc: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
}

#[derive(Deserialize)]
struct FirstPull {
    v: u32,
    changes: Vec<FirstChange>,
    more: bool,
}

#[derive(Serialize)]
struct FirstPush {
    v: u32,
    changes: Vec<FirstChange>,
}

#[derive(Deserialize)]
struct FirstResult {
    status: String,
}

#[derive(Deserialize)]
struct FirstPushAnswer {
    v: u32,
    results: Vec<FirstResult>,
}

#[test]
fn a_phone_speaks_version_1_until_the_relay_says_it_speaks_2_then_groups() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let writer = relay.enroll(DISPATCHER, dir.path());
    let reader = relay.enroll(TOWN_DISPATCHER, dir.path());
    reported_and_accepted(&writer, 5);

    let link = Recorder::new(&relay, false);
    assert_eq!(link.sync(&writer).pushed, 10);
    // Knowing nothing of the relay, the first push is in version 1; its answer
    // says the relay speaks 2, and from then on the phone does.
    assert_eq!(link.versions("/v1/push"), vec![1]);
    assert_eq!(link.versions("/v1/pull"), vec![2]);
    reported_and_accepted(&writer, 2);
    assert_eq!(link.sync(&writer).pushed, 4);
    assert_eq!(link.versions("/v1/push"), vec![1, 2]);

    // The reader's first request is its pull, in version 1: one entry per change,
    // as a phone before 2 reads it.
    let link = Recorder::new(&relay, false);
    link.sync(&reader);
    assert_eq!(listed(&reader), 7);
    assert_eq!(link.versions("/v1/pull"), vec![1]);
    let first = link.answers.borrow_mut().remove(0);
    let page: FirstPull = wire::decode(&first).expect("a version 1 answer");
    assert_eq!((page.v, page.changes.len()), (1, 14));

    // Its next pull is in version 2: three new cases, six changes, each
    // document named once.
    reported_and_accepted(&writer, 3);
    writer.sync().unwrap();
    link.answers.borrow_mut().clear();
    link.sync(&reader);
    assert_eq!(link.versions("/v1/pull"), vec![1, 2]);
    assert_eq!(listed(&reader), 10);
    let answers = link.answers.borrow();
    let body = answers.last().expect("a pull answer");
    let pull: PullResponse = wire::decode(body).unwrap();
    assert_eq!((pull.v, pull.changes.len()), (2, 6));
    #[derive(Deserialize)]
    struct Entry {
        doc: DocId,
    }
    #[derive(Deserialize)]
    struct Entries {
        changes: Vec<Entry>,
    }
    let entries: Entries = wire::decode(body).unwrap();
    let docs: std::collections::HashSet<_> = entries.changes.iter().map(|e| &e.doc).collect();
    assert_eq!(
        (entries.changes.len(), docs.len()),
        (3, 3),
        "three cases, six changes: one entry each"
    );
    assert!(
        wire::decode::<FirstPull>(body).is_err(),
        "runs, not one entry each"
    );
}

#[test]
fn a_phone_of_this_build_syncs_with_a_relay_from_before_version_2() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let writer = relay.enroll(DISPATCHER, dir.path());
    let reader = relay.enroll(TOWN_DISPATCHER, dir.path());
    reported_and_accepted(&writer, 5);

    let old = Recorder::new(&relay, true);
    assert_eq!(old.sync(&writer).pushed, 10);
    reported_and_accepted(&writer, 2);
    assert_eq!(old.sync(&writer).pushed, 4);
    old.sync(&reader);
    assert_eq!(listed(&reader), 7);
    // Every request was in version 1: the refusal above never happened.
    let versions: Vec<u32> = old.requests.borrow().iter().map(|(_, v)| *v).collect();
    assert!(versions.len() >= 5, "{versions:?}");
    assert!(versions.iter().all(|&v| v == 1), "{versions:?}");
}

#[test]
fn a_phone_from_before_version_2_is_answered_in_version_1() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let writer = relay.enroll(DISPATCHER, dir.path());
    let old_phone = relay.enroll(TOWN_DISPATCHER, dir.path());
    reported_and_accepted(&writer, 4);
    writer.sync().unwrap();

    // Its pull, as it writes it: one entry per change back, in version 1.
    let request = PullRequest {
        v: 1,
        cursor: 0,
        max_bytes: 1024 * 1024,
        purged: vec![],
        ack_page: 0,
        directory: None,
    };
    let answer = old_phone
        .transport
        .post("/v1/pull", Some(&old_phone.token), wire::encode(&request))
        .expect("pulled");
    let page: FirstPull = wire::decode(&answer).expect("read as version 1");
    assert_eq!((page.v, page.changes.len(), page.more), (1, 8, false));

    // Its push, one entry per change: accepted, answered in version 1.
    reported_and_accepted(&old_phone, 1);
    let changes: Vec<FirstChange> = old_phone
        .outbox_pending(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|c| FirstChange {
            doc: c.doc.to_string(),
            bytes: c.bytes,
        })
        .collect();
    assert_eq!(changes.len(), 2);
    let answer = old_phone
        .transport
        .post(
            "/v1/push",
            Some(&old_phone.token),
            wire::encode(&FirstPush { v: 1, changes }),
        )
        .expect("pushed");
    let answer: FirstPushAnswer = wire::decode(&answer).expect("read as version 1");
    assert_eq!(answer.v, 1);
    assert!(answer.results.iter().all(|r| r.status == "accepted"));
    assert_eq!(answer.results.len(), 2);
}

#[test]
fn a_run_past_the_bound_is_refused_before_it_is_unpacked() {
    #[derive(Serialize)]
    struct Run {
        doc: String,
        bytes: Vec<serde_bytes::ByteBuf>,
    }
    #[derive(Serialize)]
    struct Push {
        v: u32,
        changes: Vec<Run>,
    }
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let phone = relay.enroll(DISPATCHER, dir.path());
    // Forty thousand empty changes under one id: 40 KB that would be 40,000
    // changes, each carrying its document id.
    let body = wire::encode(&Push {
        v: 2,
        changes: vec![Run {
            doc: DocId::new(gridsync_core::DocKind::Case).to_string(),
            bytes: vec![serde_bytes::ByteBuf::new(); 40_000],
        }],
    });
    assert!(body.len() < 41_000);
    match phone.transport.post("/v1/push", Some(&phone.token), body) {
        Err(TransportError::Status { status, body }) => {
            let e: ErrorBody = wire::decode(&body).unwrap();
            assert_eq!((status, e.error.as_str()), (400, "bad_request"));
            assert!(
                e.message.contains("more than 20000 changes"),
                "{}",
                e.message
            );
        }
        other => panic!("not refused: {other:?}"),
    }
}
