//! Faults: the relay killed with SIGKILL at random moments during pushes, many
//! times. After a restart and a re-sync every acknowledged change is there exactly
//! once and the replicas converge. The worker pushes through a proxy that follows
//! the HTTP requests, which proves that kills landed mid-push: a push's whole body
//! went to the relay and its answer never came. (`scripts/torture` runs the same
//! fault hundreds of times; see docs/reliability.md.)

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gridsync_core::CaseFilter;
use gridsync_tests::proxy::{Fault, FaultProxy};

use crate::sockets::{enroll, start};
use crate::workflow::{leak, DISPATCHER, WORKER};

#[test]
fn killing_the_relay_mid_push_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());
    let token = worker.server().unwrap().unwrap().1;
    drop(server);

    let mut reported = 0;
    let mut mid_push = 0;
    // A cheap deterministic spread of kill delays (ms); `None`: kill as soon as a
    // push's body has reached the relay.
    let delays = [
        None,
        Some(3u64),
        None,
        Some(25),
        None,
        Some(40),
        None,
        Some(1),
    ];
    for (round, delay) in delays.iter().enumerate() {
        for i in 0..40 {
            let mut c = leak();
            c.title = format!("第{round}轮第{i}件");
            worker.report_case(c).unwrap();
            reported += 1;
        }
        let mut server = start(&data);
        let upstream = server
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("a loopback address");
        let proxy = FaultProxy::start(upstream, |_| Fault::Clean).expect("proxy");
        worker.set_server(&proxy.url(), &token).unwrap();
        let pid = server.child.id();
        let stats = proxy.stats.clone();
        let delay = *delay;
        let killer = std::thread::spawn(move || {
            match delay {
                Some(ms) => std::thread::sleep(Duration::from_millis(ms)),
                None => {
                    let t = Instant::now();
                    while stats.pushes_sent.load(Ordering::Relaxed) == 0
                        && t.elapsed() < Duration::from_secs(10)
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            // SIGKILL: no chance to flush or finish anything.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        });
        let _ = worker.sync(&mut |_| {});
        killer.join().unwrap();
        let _ = server.child.wait();
        server.url.clear();
        mid_push += proxy.stats.pushes_unanswered.load(Ordering::Relaxed);
    }
    assert!(mid_push > 0, "no kill landed mid-push");

    // Restart for good; everything left goes through.
    let server = start(&data);
    worker.set_server(&server.url, &token).unwrap();
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
