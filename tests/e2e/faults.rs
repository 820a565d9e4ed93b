//! Faults: the relay killed with SIGKILL at random moments during pushes, many
//! times. After a restart and a re-sync every acknowledged change is there exactly
//! once and the replicas converge.

use std::time::Duration;

use gridsync_core::CaseFilter;

use crate::sockets::{enroll, start};
use crate::workflow::{leak, DISPATCHER, WORKER};

#[test]
fn killing_the_relay_mid_push_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());
    drop(server);

    let mut reported = 0;
    // A cheap deterministic spread of kill delays (ms).
    let delays = [3u64, 11, 0, 25, 7, 40, 1, 18];
    for (round, delay) in delays.iter().enumerate() {
        for i in 0..40 {
            let mut c = leak();
            c.title = format!("第{round}轮第{i}件");
            worker.report_case(c).unwrap();
            reported += 1;
        }
        let server = start(&data);
        let mut child = server;
        let killer = {
            let pid = child.child.id();
            let delay = *delay;
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(delay));
                // SIGKILL: no chance to flush or finish anything.
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            })
        };
        let _ = worker.sync(&mut |_| {});
        killer.join().unwrap();
        let _ = child.child.wait();
        child.url.clear();
    }

    // Restart for good; everything left goes through.
    let server = start(&data);
    worker
        .set_server(&server.url, &worker.server().unwrap().unwrap().1)
        .unwrap();
    dispatcher
        .set_server(&server.url, &dispatcher.server().unwrap().unwrap().1)
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();
    assert!(worker.outbox_pending(usize::MAX).unwrap().is_empty());
    dispatcher.sync(&mut |_| {}).unwrap();
    let all = CaseFilter {
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(dispatcher.list_cases(&all).unwrap().len(), reported);
    assert_eq!(worker.list_cases(&all).unwrap().len(), reported);
    let mut titles: Vec<String> = dispatcher
        .list_cases(&all)
        .unwrap()
        .into_iter()
        .map(|c| c.title)
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), reported, "every case exactly once");
}
