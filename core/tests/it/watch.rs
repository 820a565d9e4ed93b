//! "Documents changed" notifications: what a list screen subscribes to.

use std::sync::{Arc, Mutex};

use gridsync_core::{Action, DocId, Error};

use crate::support::*;

/// Every notification a listener received, in order.
type Seen = Arc<Mutex<Vec<Vec<DocId>>>>;

fn recorder() -> (Seen, impl Fn(&[DocId]) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    (seen, move |ids: &[DocId]| {
        sink.lock().unwrap().push(ids.to_vec())
    })
}

fn taken(seen: &Seen) -> Vec<Vec<DocId>> {
    std::mem::take(&mut *seen.lock().unwrap())
}

#[test]
fn committed_local_edits_imports_and_purges_are_announced_once_each() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let dispatcher = device(COMMUNITY, &clock);
    let (seen, listener) = recorder();
    let _subscription = dispatcher.watch(listener);

    let id = worker.report_case(leak_case()).unwrap();
    assert!(
        taken(&seen).is_empty(),
        "another device's edit is not announced"
    );

    push(&worker, &dispatcher);
    assert_eq!(taken(&seen), vec![vec![id.clone()]], "an import");
    push(&worker, &dispatcher);
    assert!(taken(&seen).is_empty(), "nothing new, nothing announced");

    dispatcher.act(&id, Action::Accept).unwrap();
    assert_eq!(taken(&seen), vec![vec![id.clone()]], "a local edit");

    let refused = dispatcher.act(&id, Action::Accept);
    assert!(matches!(refused, Err(Error::Refused(_))), "{refused:?}");
    assert!(taken(&seen).is_empty(), "a refused edit changes nothing");

    // The server stops showing a case this device has fully delivered: it goes.
    let acked: Vec<_> = dispatcher
        .outbox_pending(usize::MAX)
        .unwrap()
        .iter()
        .map(|o| o.hash)
        .collect();
    dispatcher.record_push_results(&acked, &[], &[]).unwrap();
    dispatcher
        .apply_pull(Vec::new(), std::slice::from_ref(&id), 1, 1)
        .unwrap();
    assert_eq!(taken(&seen), vec![vec![id.clone()]], "a purge");
    assert!(dispatcher.get_case(&id).is_err());
}

#[test]
fn dropping_the_subscription_stops_it_and_listeners_may_read_the_engine() {
    let clock = TestClock::new();
    let worker = Arc::new(device(WORKER, &clock));
    let titles = Arc::new(Mutex::new(Vec::new()));
    let (engine, sink) = (Arc::clone(&worker), Arc::clone(&titles));
    let subscription = worker.watch(move |ids| {
        // What a screen does: re-read what changed, here on the committing thread.
        for id in ids {
            let case = engine.get_case(id).expect("the change is committed");
            sink.lock().unwrap().push(case.doc.title.clone());
        }
    });
    let (seen, listener) = recorder();
    let other = worker.watch(listener);

    let id = worker.report_case(leak_case()).unwrap();
    assert_eq!(*titles.lock().unwrap(), vec!["楼上管道漏水".to_owned()]);
    assert_eq!(taken(&seen).len(), 1);

    drop(subscription);
    worker.add_note(&id, "已联系物业").unwrap();
    assert_eq!(titles.lock().unwrap().len(), 1, "no call after the drop");
    assert_eq!(
        taken(&seen),
        vec![vec![id]],
        "the other subscription lives on"
    );

    other.cancel();
    worker.start_patrol().unwrap();
    assert!(taken(&seen).is_empty());
}

#[test]
fn a_panicking_listener_does_not_make_a_committed_write_look_failed() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let _bad = worker.watch(|_| panic!("a listener's bug"));
    let (seen, listener) = recorder();
    let _good = worker.watch(listener);
    let id = worker.report_case(leak_case()).expect("the write succeeds");
    assert!(worker.get_case(&id).is_ok());
    assert_eq!(
        taken(&seen),
        vec![vec![id]],
        "later listeners are still told"
    );
}
