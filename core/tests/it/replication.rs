//! Export and import between replicas, the outbox, and hostile input.

use gridsync_core::sync::decode_change;
use gridsync_core::{CaseFilter, DocId, DocKind};

use crate::support::*;

#[test]
fn local_changes_wait_in_the_outbox_until_acknowledged() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    worker.add_note(&id, "已电话联系物业").unwrap();
    let pending = worker.outbox_pending(usize::MAX).unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|p| p.doc == id));
    assert!(pending[0].seq < pending[1].seq, "oldest first");

    // Paging by bytes returns at least one change.
    assert_eq!(worker.outbox_pending(1).unwrap().len(), 1);

    assert_eq!(worker.mark_delivered(&[pending[0].hash]).unwrap(), 1);
    assert_eq!(
        worker.mark_delivered(&[pending[0].hash]).unwrap(),
        0,
        "idempotent"
    );
    let worker = worker.reopen(&clock);
    let left = worker.outbox_pending(usize::MAX).unwrap();
    assert_eq!(left.len(), 1, "acknowledgements are durable");
    assert_eq!(left[0].hash, pending[1].hash);

    // Changes received from other replicas never enter this device's outbox.
    let dispatcher = device(COMMUNITY, &clock);
    push(&worker, &dispatcher);
    assert!(dispatcher.outbox_pending(usize::MAX).unwrap().is_empty());
}

/// The outbox keeps no copy of a change: compaction keeps an unsent change's
/// bytes for it, and they leave once the server has it.
#[test]
fn unsent_changes_outlive_compaction_and_leave_once_acknowledged() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    for i in 0..40 {
        worker.add_note(&id, &format!("第{i}次回访")).unwrap();
    }
    let folded = |worker: &Device| -> i64 {
        rusqlite::Connection::open(worker.path())
            .unwrap()
            .query_row(
                "SELECT count(*) FROM doc_changes WHERE folded = 1",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert!(folded(&worker) > 0, "the case was compacted");
    let worker = worker.reopen(&clock);
    let pending = worker.outbox_pending(usize::MAX).unwrap();
    let made = worker.changes_since(&id, &[]).unwrap();
    assert_eq!(pending.len(), 41);
    assert_eq!(
        pending.iter().map(|p| p.bytes.clone()).collect::<Vec<_>>(),
        made.iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect::<Vec<_>>(),
        "every change goes up, in order, byte for byte"
    );
    assert_eq!(worker.get_case(&id).unwrap().doc.notes.len(), 40);

    let hashes: Vec<_> = pending.iter().map(|p| p.hash).collect();
    assert_eq!(worker.mark_delivered(&hashes).unwrap(), 41);
    assert_eq!(
        folded(&worker),
        0,
        "acknowledged: only the snapshot holds them"
    );
    let worker = worker.reopen(&clock);
    assert_eq!(worker.get_case(&id).unwrap().doc.notes.len(), 40);
    assert!(worker.outbox_pending(usize::MAX).unwrap().is_empty());
}

#[test]
fn importing_is_idempotent_and_order_independent() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    for i in 0..40 {
        worker.add_note(&id, &format!("第{i}次回访")).unwrap();
    }
    let changes = worker.changes_since(&id, &[]).unwrap();
    assert_eq!(changes.len(), 41);

    let dispatcher = device(COMMUNITY, &clock);
    let mut reversed = changes.clone();
    reversed.reverse();
    let r = dispatcher
        .import_changes(vec![(id.clone(), reversed)])
        .unwrap();
    let report = r[0].outcome.as_ref().unwrap();
    assert_eq!(
        report.applied.len(),
        41,
        "Automerge orders them by dependency"
    );
    let r = dispatcher
        .import_changes(vec![(id.clone(), changes)])
        .unwrap();
    let report = r[0].outcome.as_ref().unwrap();
    assert_eq!((report.applied.len(), report.duplicates.len()), (0, 41));
    assert_eq!(dispatcher.heads(&id).unwrap(), worker.heads(&id).unwrap());
    assert_eq!(dispatcher.get_case(&id).unwrap().doc.notes.len(), 40);
    // Compaction happened (more than 32 changes); reopening still reads it all.
    let dispatcher = dispatcher.reopen(&clock);
    assert_eq!(dispatcher.get_case(&id).unwrap().doc.notes.len(), 40);
}

#[test]
fn a_change_with_missing_dependencies_is_held_back_not_stored() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    worker.add_note(&id, "补充说明").unwrap();
    let changes = worker.changes_since(&id, &[]).unwrap();
    let dispatcher = device(COMMUNITY, &clock);
    let r = dispatcher
        .import_changes(vec![(id.clone(), vec![changes[1].clone()])])
        .unwrap();
    let report = r[0].outcome.as_ref().unwrap();
    assert!(report.applied.is_empty());
    assert_eq!(report.missing_deps.len(), 1);
    assert!(dispatcher.doc_ids().unwrap().is_empty());
}

#[test]
fn garbage_and_misshapen_documents_are_rejected_and_nothing_is_stored() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let case_id = worker.report_case(leak_case()).unwrap();
    let patrol_id = worker.start_patrol().unwrap();
    let patrol_changes = worker.changes_since(&patrol_id, &[]).unwrap();
    let dispatcher = device(COMMUNITY, &clock);

    let wrong_id: DocId = DocId::new(DocKind::Case);
    // Bytes never reach an import without the checked decoder: the same change as
    // a compressed chunk, garbage and an oversized chunk stop there.
    let mut compressed_change = worker.changes_since(&case_id, &[]).unwrap()[0].clone();
    let compressed = compressed_change.bytes().to_vec();
    assert_eq!(compressed[8], 2, "a compressed chunk");
    let refusal = |bytes: &[u8]| decode_change(bytes).unwrap_err().to_string();
    assert!(refusal(&compressed).contains("only uncompressed"));
    assert!(refusal(b"not an automerge change").contains("not an Automerge change"));
    assert!(refusal(&vec![0u8; 2 * 1024 * 1024]).contains("exceeds"));
    let batch = vec![
        // A patrol's changes presented under a case id: the content does not match.
        (wrong_id.clone(), patrol_changes),
        // A good document in the same batch still goes in.
        (
            case_id.clone(),
            worker.changes_since(&case_id, &[]).unwrap(),
        ),
    ];
    let results = dispatcher.import_changes(batch).unwrap();
    let misshapen = results[0].outcome.as_ref().unwrap_err().to_string();
    assert!(misshapen.contains("malformed"), "{misshapen}");
    assert!(results[1].outcome.is_ok());
    assert_eq!(dispatcher.doc_ids().unwrap(), vec![case_id]);
    assert_eq!(
        dispatcher.list_cases(&CaseFilter::default()).unwrap().len(),
        1
    );
}

#[test]
fn a_change_built_on_a_refused_one_is_refused_too_instead_of_waiting_for_ever() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.report_case(leak_case()).unwrap();
    worker.add_note(&id, "补充").unwrap();
    let pending = worker.outbox_pending(usize::MAX).unwrap();
    let (first, second) = (pending[0].hash, pending[1].hash);

    worker
        .record_push_results(&[], &[(first, "outside your scope".into())], &[])
        .unwrap();
    assert_eq!(worker.outbox_len().unwrap(), 1);
    // The server cannot take the note: it depends on the refused report.
    worker.record_push_results(&[], &[], &[second]).unwrap();
    assert_eq!(worker.outbox_len().unwrap(), 0);
    let refused = worker.rejected_changes().unwrap();
    let reasons: Vec<&str> = refused.iter().map(|(_, _, r)| r.as_str()).collect();
    assert!(reasons.contains(&"outside your scope"));
    assert!(reasons.contains(&"depends on a change the server refused"));
    // A deferred change with nothing refused beneath it keeps waiting.
    let other = worker.report_case(leak_case()).unwrap();
    let h = worker.outbox_pending(usize::MAX).unwrap()[0].hash;
    worker.record_push_results(&[], &[], &[h]).unwrap();
    assert_eq!(worker.outbox_len().unwrap(), 1, "{other} still waits");
}
