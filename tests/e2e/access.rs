//! Who may read and write what: tokens, replays, forged changes, and an access
//! matrix that plants marker strings and searches every answer for them.

use std::cell::RefCell;

use automerge::Automerge;
use gridsync_core::doc::case::append_entry;
use gridsync_core::sync::wire::{self, ChangeStatus, PushRequest, WireChange};
use gridsync_core::sync::{self, SyncError, Transport, TransportError};
use gridsync_core::{Action, DocId, Entry, Role};
use gridsync_tests::{LocalTransport, SimDevice, SimRelay};

use crate::workflow::{leak, DISPATCHER, HANDLER, WORKER};

pub(crate) fn push_raw(d: &SimDevice<'_>, doc: &DocId, bytes: Vec<u8>) -> wire::ChangeResult {
    let body = wire::encode(&PushRequest {
        v: 1,
        changes: vec![WireChange {
            doc: doc.clone(),
            bytes,
        }]
        .into(),
        erased: vec![],
    });
    let answer = d
        .transport
        .post("/v1/push", Some(&d.token), body)
        .expect("push answered");
    let resp: wire::PushResponse = wire::decode(&answer).unwrap();
    resp.results.into_iter().next().unwrap()
}

/// A change made outside the engine's own checks, as a tampered app would.
pub(crate) fn forged_entry(d: &SimDevice<'_>, doc: &DocId, entry: Entry) -> Vec<u8> {
    forge(d, doc, |tx| append_entry(tx, &entry))
}

/// Any edit to the device's copy of a document, as a raw change with its actor.
pub(crate) fn forge(
    d: &SimDevice<'_>,
    doc: &DocId,
    edit: impl FnOnce(
        &mut automerge::transaction::Transaction<'_>,
    ) -> Result<(), automerge::AutomergeError>,
) -> Vec<u8> {
    let mut am = Automerge::new();
    let changes: Vec<automerge::Change> = d.changes_since(doc, &[]).unwrap().into_iter().collect();
    am.apply_changes(changes).unwrap();
    am.set_actor(d.device.actor());
    am.transact(edit).map_err(|f| f.error).unwrap();
    am.get_last_local_change().unwrap().raw_bytes().to_vec()
}

#[test]
fn forged_and_revoked_tokens_get_401_and_revoked_devices_are_told_to_wipe() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    worker.report_case(leak()).unwrap();
    worker.sync().unwrap();

    let t = LocalTransport::new(&relay.relay);
    let pull = wire::encode(&wire::PullRequest {
        v: 1,
        cursor: 0,
        max_bytes: 1 << 20,
        purged: vec![],
        ack_page: 0,
        directory: None,
    });
    for token in [None, Some(""), Some("forged"), Some(&worker.token[..10])] {
        match t.post("/v1/pull", token, pull.clone()) {
            Err(TransportError::Status { status: 401, body }) => {
                let e: wire::ErrorBody = wire::decode(&body).unwrap();
                assert_eq!(e.error, "unauthorized");
                assert!(!e.wipe);
            }
            other => panic!("expected 401 for {token:?}, got {other:?}"),
        }
    }
    assert!(relay.relay.store().revoke(worker.device, 0).unwrap());
    // The wipe order is obeyed by the core before the app hears of it.
    match worker.sync() {
        Err(SyncError::Wiped { left }) => assert!(left.is_empty(), "{left:?}"),
        other => panic!("expected a wipe, got {other:?}"),
    }
    // An enrollment code works once.
    let code = relay.relay.create_enrollment(DISPATCHER).unwrap();
    let id = gridsync_core::DeviceId::random();
    sync::enroll(&t, &code, id, "1").unwrap();
    assert!(matches!(
        sync::enroll(&t, &code, gridsync_core::DeviceId::random(), "1"),
        Err(SyncError::Unauthorized { .. })
    ));
    let bad_version = wire::encode(&wire::PullRequest {
        v: 99,
        cursor: 0,
        max_bytes: 1,
        purged: vec![],
        ack_page: 0,
        directory: None,
    });
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    match dispatcher
        .transport
        .post("/v1/pull", Some(&dispatcher.token), bad_version)
    {
        Err(TransportError::Status { status: 400, body }) => {
            let e: wire::ErrorBody = wire::decode(&body).unwrap();
            assert_eq!(e.error, "unsupported_version");
            assert!(e.message.contains("update the app"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn expired_tokens_get_401_and_are_not_told_to_wipe() {
    let mut relay = SimRelay::new();
    relay
        .relay
        .set_token_lifetime(chrono::Duration::milliseconds(50));
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    worker.report_case(leak()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    match worker.sync() {
        Err(SyncError::Unauthorized {
            wipe: false,
            message,
        }) => {
            assert!(message.contains("expired"), "{message}")
        }
        other => panic!("expected an expired token, got {other:?}"),
    }
    assert_eq!(
        worker.outbox_pending(usize::MAX).unwrap().len(),
        1,
        "nothing lost"
    );
}

#[test]
fn replayed_and_reordered_pushes_change_nothing() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker.add_note(&id, "补充").unwrap();
    let changes = worker.changes_since(&id, &[]).unwrap();

    // The second change first: deferred, not lost; then in order; then replayed.
    let early = push_raw(&worker, &id, changes[1].raw_bytes().to_vec());
    assert_eq!(early.status, ChangeStatus::Deferred, "{:?}", early.reason);
    assert_eq!(relay.relay.store().log_len().unwrap(), 0);
    assert_eq!(
        push_raw(&worker, &id, changes[0].raw_bytes().to_vec()).status,
        ChangeStatus::Accepted
    );
    assert_eq!(
        push_raw(&worker, &id, changes[1].raw_bytes().to_vec()).status,
        ChangeStatus::Accepted
    );
    for c in &changes {
        assert_eq!(
            push_raw(&worker, &id, c.raw_bytes().to_vec()).status,
            ChangeStatus::Duplicate
        );
    }
    assert_eq!(
        relay.relay.store().log_len().unwrap(),
        2,
        "each change stored once"
    );
    let r = worker.sync().unwrap();
    assert_eq!(r.pushed, 2, "the device's outbox is settled as duplicates");
    assert!(worker.outbox_pending(usize::MAX).unwrap().is_empty());
    assert_eq!(relay.relay.store().log_len().unwrap(), 2);
}

/// A change a rooted phone crafts: seq `seq` of its actor, no dependencies, one
/// new key on the document's root set to `value` — so it applies to any document
/// where the actor has `seq - 1` changes, and leaves the document valid.
fn rootless_change(d: &SimDevice<'_>, seq: u64, value: &str) -> Vec<u8> {
    use automerge::legacy::{Key, ObjectId, Op, OpType, SortedVec};
    let change: automerge::Change = automerge::ExpandedChange {
        operations: vec![Op {
            action: OpType::Put(automerge::ScalarValue::Str(value.into())),
            obj: ObjectId::Root,
            key: Key::from("zz"),
            pred: SortedVec::new(),
            insert: false,
        }],
        actor_id: d.device.actor(),
        hash: None,
        seq,
        start_op: std::num::NonZeroU64::new(1000).unwrap(),
        time: 0,
        message: None,
        deps: vec![],
        extra_bytes: vec![],
        author: None,
    }
    .into();
    change.raw_bytes().to_vec()
}

#[test]
fn a_change_sent_again_under_another_document_is_refused() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let first = worker.report_case(leak()).unwrap();
    let second = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    let seq = worker.changes_since(&first, &[]).unwrap().len() as u64 + 1;
    assert_eq!(
        worker.changes_since(&second, &[]).unwrap().len() as u64 + 1,
        seq
    );
    let crafted = rootless_change(&worker, seq, "first");
    assert_eq!(
        push_raw(&worker, &first, crafted.clone()).status,
        ChangeStatus::Accepted
    );
    let logged = relay.relay.store().log_len().unwrap();

    // The same bytes under the worker's other case: refused, not applied there.
    let copied = push_raw(&worker, &second, crafted.clone());
    assert_eq!(copied.status, ChangeStatus::Rejected);
    assert_eq!(
        copied.reason.as_deref(),
        Some("the change belongs to another record")
    );
    // Within one push too: the document named first keeps it.
    let (third, fourth) = (
        worker.report_case(leak()).unwrap(),
        worker.report_case(leak()).unwrap(),
    );
    let crafted = rootless_change(&worker, seq, "third");
    let mut changes = Vec::new();
    for id in [&third, &fourth] {
        for c in worker.changes_since(id, &[]).unwrap() {
            changes.push(WireChange {
                doc: id.clone(),
                bytes: c.raw_bytes().to_vec(),
            });
        }
        changes.push(WireChange {
            doc: id.clone(),
            bytes: crafted.clone(),
        });
    }
    let body = wire::encode(&PushRequest {
        v: 1,
        changes: wire::Changes::new(changes, 1),
        erased: vec![],
    });
    worker
        .transport
        .post("/v1/push", Some(&worker.token), body)
        .expect("push answered");
    assert_eq!(
        relay.relay.store().log_len().unwrap(),
        logged + 2 * (seq - 1) + 1,
        "both reports and the crafted change once"
    );

    // Every phone that syncs holds what the relay holds of each case.
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    dispatcher.sync().unwrap();
    for id in [&first, &second, &third, &fourth] {
        assert_eq!(
            dispatcher.heads(id).unwrap(),
            relay.relay.engine().heads(id).unwrap(),
            "{id}"
        );
    }
}

#[test]
fn forged_workflow_actions_and_foreign_changes_are_rejected_and_never_forwarded() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    let before = relay.relay.store().log_len().unwrap();
    let last = worker.get_case(&id).unwrap().doc.timeline[0].id.clone();
    let entry = |actor: &str, role, action| Entry {
        id: "forged".into(),
        after: Some(last.clone()),
        actor: actor.parse().unwrap(),
        role,
        at: chrono::Utc::now(),
        action,
    };

    let archive = forged_entry(
        &worker,
        &id,
        entry(WORKER, Role::GridWorker, Action::Archive),
    );
    let r = push_raw(&worker, &id, archive);
    assert_eq!(r.status, ChangeStatus::Rejected);
    assert_eq!(
        r.reason.as_deref(),
        Some("workflow: a grid_worker may not archive")
    );

    let impersonation = forged_entry(
        &worker,
        &id,
        entry(DISPATCHER, Role::CommunityDispatcher, Action::Accept),
    );
    let r = push_raw(&worker, &id, impersonation);
    assert_eq!(
        r.reason.as_deref(),
        Some("a timeline entry must name you and your role")
    );

    // The dispatcher's own change, replayed with the worker's token.
    dispatcher.act(&id, Action::Accept).unwrap();
    let theirs = dispatcher.outbox_pending(usize::MAX).unwrap().remove(0);
    let r = push_raw(&worker, &id, theirs.bytes);
    assert_eq!(
        r.reason.as_deref(),
        Some("the change was not made on this device")
    );

    assert_eq!(
        relay.relay.store().log_len().unwrap(),
        before,
        "nothing stored"
    );
    let handler = relay.enroll(HANDLER, dir.path());
    for d in [&dispatcher, &handler] {
        d.sync().unwrap();
    }
    let case = dispatcher.get_case(&id).unwrap();
    assert!(
        case.doc.timeline.iter().all(|e| e.id != "forged"),
        "nothing forwarded"
    );
}

/// Records every answer body a device receives.
struct Recording<'a> {
    inner: LocalTransport<'a>,
    seen: RefCell<Vec<u8>>,
}

impl Transport for Recording<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let r = self.inner.post(path, token, body);
        match &r {
            Ok(b) | Err(TransportError::Status { body: b, .. }) => self.seen.borrow_mut().extend(b),
            Err(TransportError::Network(_) | TransportError::Insecure(_)) => {}
        }
        r
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_device_ever_receives_another_grids_cases() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    // Grid A is in town 001, grid B in town 002.
    let worker_a = relay.enroll(WORKER, dir.path());
    let worker_b = relay.enroll("w-339901002001001", dir.path());
    let a = worker_a
        .report_case(gridsync_core::NewCase {
            title: "MARKER-GRID-A 漏水".into(),
            ..leak()
        })
        .unwrap();
    worker_a.sync().unwrap();
    worker_b
        .report_case(gridsync_core::NewCase {
            title: "MARKER-GRID-B 纠纷".into(),
            ..leak()
        })
        .unwrap();
    worker_b.sync().unwrap();
    let _ = a;

    // user, sees A, sees B
    let matrix = [
        (WORKER, true, false),
        ("w-339901002001001", false, true),
        ("w-339901001001002", false, false),
        (DISPATCHER, true, false),
        ("cd-339901002001", false, true),
        ("td-339901001", true, false),
        ("td-339901002", false, true),
        (HANDLER, false, false),
        ("dd-339901-1", true, true),
    ];
    for (user, sees_a, sees_b) in matrix {
        let d = relay.enroll(user, dir.path());
        let rec = Recording {
            inner: LocalTransport::new(&relay.relay),
            seen: RefCell::new(Vec::new()),
        };
        sync::sync(&d.engine, &rec, &mut |_| {}).unwrap();
        // Every endpoint a device may call, with its token.
        let pull = wire::encode(&wire::PullRequest {
            v: 1,
            cursor: 0,
            max_bytes: 1 << 20,
            purged: vec![],
            ack_page: 0,
            directory: None,
        });
        let _ = rec.post("/v1/pull", Some(&d.token), pull);
        let _ = rec.post(
            "/v1/push",
            Some(&d.token),
            wire::encode(&PushRequest {
                v: 1,
                changes: vec![].into(),
                erased: vec![],
            }),
        );
        let seen = rec.seen.borrow();
        assert_eq!(
            contains(&seen, "MARKER-GRID-A"),
            sees_a,
            "{user} and grid A"
        );
        assert_eq!(
            contains(&seen, "MARKER-GRID-B"),
            sees_b,
            "{user} and grid B"
        );
        let local = d.list_cases(&Default::default()).unwrap();
        assert_eq!(
            local.len(),
            usize::from(sees_a) + usize::from(sees_b),
            "{user}'s device"
        );
    }
}

#[test]
fn a_case_leaving_a_handlers_scope_is_purged_but_unsent_work_is_reported_not_dropped() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let h1 = relay.enroll(HANDLER, dir.path());
    let h2 = relay.enroll("h-water-2", dir.path());
    let img = image::ImageBuffer::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .unwrap();
    let photo = worker.ingest_photo(&jpeg, None).unwrap();
    let id = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher
        .dispatch(&id, "water".parse().unwrap(), None)
        .unwrap();
    dispatcher.sync().unwrap();
    h1.sync().unwrap();
    sync::fetch_photo(&h1.engine, &h1.transport, &photo.thumb).unwrap();
    assert!(h1.has_photo(&photo.thumb).unwrap());
    h2.sync().unwrap();
    assert_eq!(h2.doc_ids().unwrap(), vec![id.clone()]);

    // h2 writes a note offline while h1 returns the case and it goes to housing.
    h2.set_online(false);
    h2.add_note(&id, "已联系业主").unwrap();
    h1.act(
        &id,
        Action::Return {
            reason: "属于住建部门".into(),
        },
    )
    .unwrap();
    h1.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher
        .dispatch(&id, "housing".parse().unwrap(), None)
        .unwrap();
    dispatcher.sync().unwrap();

    let r = h1.sync().unwrap();
    assert_eq!(r.purged, 1);
    assert!(
        h1.doc_ids().unwrap().is_empty(),
        "no longer visible, removed"
    );
    let thumb_file = gridsync_core::blobs::Blobs::for_db(h1.db_path()).path(&photo.thumb);
    assert!(
        !h1.has_photo(&photo.thumb).unwrap() && !thumb_file.exists(),
        "its photos go too"
    );

    h2.set_online(true);
    let r = h2.sync().unwrap();
    assert_eq!(r.rejected.len(), 1, "the note is refused, and said so");
    assert!(
        r.rejected[0].1.contains("outside your scope"),
        "{:?}",
        r.rejected
    );
    let kept = h2.rejected_changes().unwrap();
    assert_eq!(kept.len(), 1, "the refusal is kept for the user to see");
    assert!(h2.doc_ids().unwrap().is_empty(), "then the case is removed");
}

#[test]
fn history_cannot_be_rewritten_only_added_to() {
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher.add_note(&id, "调度员的批示").unwrap();
    dispatcher.sync().unwrap();
    worker.sync().unwrap();

    let retitle = forge(&worker, &id, |tx| tx.put(ROOT, "title", "改过的标题"));
    assert_eq!(
        push_raw(&worker, &id, retitle).reason.as_deref(),
        Some("what was reported cannot be changed afterwards")
    );
    let erase = forge(&worker, &id, |tx| {
        let notes = tx.get(ROOT, "notes")?.unwrap().1;
        tx.delete(&notes, 0)
    });
    assert_eq!(
        push_raw(&worker, &id, erase).reason.as_deref(),
        Some("notes and photos cannot be changed or removed")
    );

    // A patrol log can only grow, and only its worker writes it.
    let patrol = worker.start_patrol().unwrap();
    worker.add_observation(&patrol, "东门路灯不亮").unwrap();
    worker.sync().unwrap();
    let wipe = forge(&worker, &patrol, |tx| {
        let obs = tx.get(ROOT, "observations")?.unwrap().1;
        tx.delete(&obs, 0)
    });
    assert_eq!(
        push_raw(&worker, &patrol, wipe).reason.as_deref(),
        Some("a patrol log can only be added to")
    );
    dispatcher.sync().unwrap();
    let takeover = forge(&dispatcher, &patrol, |tx| {
        tx.put(ROOT, "worker", DISPATCHER)
    });
    assert_eq!(
        push_raw(&dispatcher, &patrol, takeover).reason.as_deref(),
        Some("a patrol's worker, grid and start cannot change")
    );
    let case = dispatcher.get_case(&id).unwrap();
    assert_eq!(case.doc.title, "楼上管道漏水");
    assert_eq!(case.doc.notes.len(), 1);
}

#[test]
fn a_worker_moved_to_another_grid_loses_the_old_grids_cases() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    assert_eq!(worker.doc_ids().unwrap(), vec![id.clone()]);

    // The command centre moves her to a grid in another town.
    let mut directory: serde_json::Value =
        serde_json::from_str(&relay.relay.engine().directory_json().unwrap()).unwrap();
    let users = directory["users"].as_array_mut().unwrap();
    let me = users.iter_mut().find(|u| u["id"] == WORKER).unwrap();
    me["region"] = "339901002001002".into();
    relay
        .relay
        .import_directory(&directory.to_string())
        .unwrap();

    let r = worker.sync().unwrap();
    assert_eq!(r.purged, 1, "her old grid's case leaves her phone");
    assert!(
        r.directory_updated,
        "and her phone knows where she works now"
    );
    assert_eq!(worker.me().unwrap().region.as_str(), "339901002001002");
    assert!(worker.doc_ids().unwrap().is_empty());
    // Her old community's dispatcher still has it.
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    dispatcher.sync().unwrap();
    assert_eq!(dispatcher.doc_ids().unwrap(), vec![id]);
}

/// 积分调整: a grid worker's tampered app rewarding herself (in her own name or
/// her dispatcher's) is refused by the relay and nothing is stored; the
/// dispatcher's own adjustment is stored, cannot be changed afterwards, and
/// reaches the worker's phone with its reason.
#[test]
fn only_a_leader_adjusts_points_and_the_adjustment_reaches_the_workers_phone() {
    use automerge::transaction::Transactable;
    use automerge::ROOT;
    use gridsync_core::doc::adjustment::{AdjustmentDoc, Month, NewAdjustment};
    use gridsync_core::DocKind;

    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let grid = "339901001001001";
    let month = Month::new(2026, 11).unwrap();
    let before = relay.relay.store().log_len().unwrap();
    // An adjustment as a tampered app on `from` would write it.
    let forged = |from: &SimDevice<'_>, by: &str, grid: &str| {
        let a = AdjustmentDoc {
            id: DocId::new(DocKind::Adjustment),
            grid: grid.parse().unwrap(),
            worker: WORKER.parse().unwrap(),
            month,
            points: 100,
            reason: "自己加分".into(),
            by: by.parse().unwrap(),
            at: chrono::Utc::now(),
        };
        let mut am = Automerge::new();
        am.set_actor(from.device.actor());
        am.transact(|t| a.write_new(t))
            .map_err(|f| f.error)
            .unwrap();
        let bytes = am.get_last_local_change().unwrap().raw_bytes().to_vec();
        push_raw(from, &a.id, bytes)
    };
    for by in [WORKER, DISPATCHER] {
        let r = forged(&worker, by, grid);
        assert_eq!(r.status, ChangeStatus::Rejected, "in {by}'s name");
        assert_eq!(
            r.reason,
            Some(format!(
                "only a community or town dispatcher over grid {grid} may adjust its points"
            ))
        );
    }
    // Her dispatcher leads grid 2 as well, but the worker is not in it.
    let r = forged(&dispatcher, DISPATCHER, "339901001001002");
    assert_eq!(
        r.reason.as_deref(),
        Some("a points adjustment must name a grid worker of its grid")
    );
    assert_eq!(
        relay.relay.store().log_len().unwrap(),
        before,
        "nothing stored"
    );

    let id = dispatcher
        .adjust_points(NewAdjustment {
            worker: WORKER.parse().unwrap(),
            month,
            points: 5,
            reason: "协助处置火情".into(),
        })
        .unwrap();
    dispatcher.sync().unwrap();
    let raised = forge(&dispatcher, &id, |tx| tx.put(ROOT, "points", 500i64));
    let r = push_raw(&dispatcher, &id, raised);
    assert_eq!(
        r.reason.as_deref(),
        Some("a points adjustment cannot be changed")
    );
    worker.sync().unwrap();
    let [mine] = &worker.points(None, 2026, 11).unwrap()[..] else {
        panic!("one row: hers")
    };
    assert_eq!((mine.computed, mine.adjusted, mine.points), (0, 5, 5));
    let ledger = worker.points_adjustments(None, 2026, 11).unwrap();
    assert_eq!(
        ledger
            .iter()
            .map(|a| (a.points, a.reason.as_str(), a.by.as_str()))
            .collect::<Vec<_>>(),
        vec![(5, "协助处置火情", DISPATCHER)]
    );
}

/// The directory with `user` placed anew.
fn moved(relay: &SimRelay, user: &str, role: &str, region: &str) -> String {
    let mut directory: serde_json::Value =
        serde_json::from_str(&relay.relay.engine().directory_json().unwrap()).unwrap();
    let users = directory["users"].as_array_mut().unwrap();
    let entry = users.iter_mut().find(|u| u["id"] == user).unwrap();
    entry["region"] = region.into();
    entry["role"] = role.into();
    directory.to_string()
}

#[test]
fn a_moved_workers_former_grid_is_hers_only_until_her_phone_hears_of_the_move() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    // Two phones of hers: one hears of the move, the other is still offline.
    let heard = relay.enroll(WORKER, dir.path());
    let offline = relay.enroll(WORKER, dir.path());
    let id = heard.report_case(leak()).unwrap();
    heard.sync().unwrap();
    offline.sync().unwrap();
    let last = heard.get_case(&id).unwrap().doc.timeline[0].id.clone();
    let handled = Entry {
        id: "offline-handling".into(),
        after: Some(last),
        actor: WORKER.parse().unwrap(),
        role: Role::GridWorker,
        at: chrono::Utc::now(),
        action: Action::SelfHandle {
            result: "已处理".into(),
        },
    };
    // The same work in her old grid from each phone (kept aside, as a tampered
    // app would push it whenever it liked).
    let from_heard = forged_entry(&heard, &id, handled.clone());
    let from_offline = forged_entry(&offline, &id, handled);

    relay
        .relay
        .import_directory(&moved(&relay, WORKER, "grid_worker", "339901002001002"))
        .unwrap();
    assert!(heard.sync().unwrap().directory_updated);
    // Its next pull says it holds that revision (an answer lost on the way would
    // not count).
    heard.sync().unwrap();
    // From the phone that holds the revision that moved her: her old grid is no
    // longer hers.
    let r = push_raw(&heard, &id, from_heard);
    assert_eq!(r.status, ChangeStatus::Rejected);
    assert!(r.reason.unwrap().contains("outside your scope"));
    // From the phone that has not heard: what it did there still arrives.
    let r = push_raw(&offline, &id, from_offline);
    assert_eq!(r.status, ChangeStatus::Accepted, "{:?}", r.reason);
}

#[test]
fn a_new_role_counts_at_once_with_no_grace() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let id = worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    let last = dispatcher.get_case(&id).unwrap().doc.timeline[0].id.clone();
    let accept = forged_entry(
        &dispatcher,
        &id,
        Entry {
            id: "accept-after-demotion".into(),
            after: Some(last),
            actor: DISPATCHER.parse().unwrap(),
            role: Role::CommunityDispatcher,
            at: chrono::Utc::now(),
            action: Action::Accept,
        },
    );
    // The community dispatcher becomes a grid worker of one of its grids; her
    // phone has not heard of it, but a dispatcher's acceptance is refused now.
    relay
        .relay
        .import_directory(&moved(&relay, DISPATCHER, "grid_worker", "339901001001002"))
        .unwrap();
    let r = push_raw(&dispatcher, &id, accept);
    assert_eq!(r.status, ChangeStatus::Rejected, "{:?}", r.reason);
}
