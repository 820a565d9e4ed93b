//! Patrol logs: compact tracks, check-ins, and the "two patrols a day" figure.

use chrono::{Duration, NaiveDate};
use gridsync_core::{TrackPoint, UserId};

use crate::support::*;

/// Walk for `minutes`, one point every 5 s, recording in batches as a phone would.
fn walk(worker: &Device, clock: &TestClock, id: &gridsync_core::DocId, minutes: i64) {
    let start = clock.now();
    let mut batch = Vec::new();
    for i in 0..minutes * 12 {
        batch.push(TrackPoint {
            at: start + Duration::seconds(5 * i),
            lat: 30.27 + 0.00001 * (i % 300) as f64,
            lon: 120.15 + 0.00001 * (i / 300) as f64,
        });
        if batch.len() == 12 {
            worker.add_track_points(id, &batch).unwrap();
            batch.clear();
            clock.advance_minutes(1);
        }
    }
}

#[test]
fn a_two_hour_track_is_stored_compactly_and_read_back_whole() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.start_patrol().unwrap();
    walk(&worker, &clock, &id, 120);
    worker.check_in(&id, "3号楼", 30.271, 120.151).unwrap();
    worker.add_observation(&id, "东门路灯不亮").unwrap();
    let case = worker.report_case(leak_case()).unwrap();
    worker.link_case_to_patrol(&id, &case).unwrap();
    worker.end_patrol(&id).unwrap();

    let p = worker.get_patrol(&id).unwrap();
    assert_eq!(p.track.len(), 1440);
    assert_eq!(p.checkins.len(), 1);
    assert_eq!(p.cases, vec![case]);
    assert!(p.ended.is_some());
    let change_bytes: usize = worker
        .changes_since(&id, &[])
        .unwrap()
        .iter()
        .map(|c| c.raw_bytes().len())
        .sum();
    assert!(
        change_bytes < 16 * 1024,
        "a two-hour track costs {change_bytes} bytes of changes"
    );
    let err = worker.add_observation(&id, "迟到的记录").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: the patrol has already ended"
    );
}

#[test]
fn buffered_points_reach_other_replicas_when_synced() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let id = worker.start_patrol().unwrap();
    worker
        .add_track_points(
            &id,
            &[TrackPoint {
                at: clock.now(),
                lat: 30.0,
                lon: 120.0,
            }],
        )
        .unwrap();
    let dispatcher = device(COMMUNITY, &clock);
    push(&worker, &dispatcher);
    assert_eq!(dispatcher.get_patrol(&id).unwrap().track.len(), 1);
    let err = worker
        .add_track_points(
            &id,
            &[TrackPoint {
                at: clock.now(),
                lat: 95.0,
                lon: 120.0,
            }],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input: latitude: must be between -90 and 90"
    );
}

#[test]
fn compliance_counts_patrols_of_two_hours_per_local_day() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let patrol = |minutes: i64| {
        let id = worker.start_patrol().unwrap();
        clock.advance_minutes(minutes);
        worker.end_patrol(&id).unwrap();
        clock.advance_minutes(30);
    };
    // Day 1 (starts 08:00 CST): two patrols of 2 h 10 min: compliant.
    patrol(130);
    patrol(130);
    // Day 2: one long patrol and one of 90 minutes: not compliant.
    clock.advance_minutes(24 * 60 - 2 * 160);
    patrol(125);
    patrol(90);

    let me: UserId = WORKER.parse().unwrap();
    let d1 = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let rows = worker
        .patrol_compliance(&[me], d1, d1 + Duration::days(2))
        .unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.patrols, r.qualifying, r.compliant))
        .collect();
    assert_eq!(summary, vec![(2, 2, true), (2, 1, false), (0, 0, false)]);
    assert_eq!(rows[0].minutes, 260);
}
