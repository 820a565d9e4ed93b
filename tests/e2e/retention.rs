//! Retention (issue #19, scenario 9): a closed case of a category with a
//! retention period leaves the relay, the phones, the photo store and the
//! backups taken afterwards once it is due by the relay's clock, and a canary
//! scan of every file finds it nowhere; open cases and categories kept for good
//! stay. Time passes by moving the relay's receipts back, as its clock would have
//! recorded them had the case reached it 40 days ago.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Duration, Utc};
use gridsync_core::{Action, CaseFilter, DocId, Engine, NewCase};
use gridsync_server::relay::ErasureReason;
use gridsync_tests::{canary, SimRelay};

use crate::erasure::{admin, enroll_encrypted};
use crate::sockets::{enroll, enroll_with_clock, gridsync, start};
use crate::tiers::connect;
use crate::workflow::{leak, DISPATCHER, WORKER};

/// The sample directory with `retention_days` set on `category`.
fn with_retention(category: &str, days: u32) -> String {
    let mut directory: serde_json::Value =
        serde_json::from_str(gridsync_server::SAMPLE_DIRECTORY).unwrap();
    let entry = directory["taxonomy"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["code"] == category)
        .expect("the category is in the directory");
    entry["retention_days"] = days.into();
    directory.to_string()
}

fn sorted(mut ids: Vec<DocId>) -> Vec<DocId> {
    ids.sort();
    ids
}

fn case_ids(phone: &Engine) -> Vec<DocId> {
    sorted(
        phone
            .list_cases(&CaseFilter::default())
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect(),
    )
}

#[test]
fn a_case_past_its_retention_is_in_no_file_of_the_relay_the_phones_or_a_new_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let folders: Vec<PathBuf> = ["worker", "dispatcher", "sealed"]
        .iter()
        .map(|f| dir.path().join(f))
        .collect();
    for f in &folders {
        std::fs::create_dir_all(f).unwrap();
    }
    let server = start(&data);

    // A retention shorter than the floor is refused, with the reason.
    let file = dir.path().join("directory.json");
    std::fs::write(&file, with_retention("livelihood", 3)).unwrap();
    let refused = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args(["directory", "import"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("retention_days must be 30 to 36500"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Livelihood's closed cases are kept 30 days; safety's for good.
    std::fs::write(&file, with_retention("livelihood", 30)).unwrap();
    admin(&data, &["directory", "import", &file.to_string_lossy()]);

    // The worker and the dispatcher acted 40 days ago (their clocks say so); the
    // encrypted phone, as in the app, receives.
    let past: gridsync_core::Clock = Arc::new(|| Utc::now() - Duration::days(40));
    let worker = enroll_with_clock(&data, &server, WORKER, &folders[0], past.clone());
    let dispatcher = enroll_with_clock(&data, &server, DISPATCHER, &folders[1], past);
    let sealed = enroll_encrypted(&data, &server, DISPATCHER, &folders[2]);
    let sync_all = || {
        for phone in [&worker, &dispatcher, &sealed] {
            let r = phone.sync(&mut |_| {}).expect("sync");
            assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        }
    };
    sync_all();

    // The case that goes: reported with a photo, handled on the spot, archived.
    let photo = worker
        .ingest_photo(
            &gridsync_tests::photo(0x5eed_c0de, 1200, 900),
            Some("IMG_4001.jpg"),
        )
        .unwrap();
    let title = "雀鸟巷漏水 zqretain7c41";
    let description = "CANARY-CASE-5d2e 雀鸟巷三楼楼梯间漏水";
    let gone = worker
        .report_case(NewCase {
            title: title.into(),
            description: description.into(),
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker
        .act(
            &gone,
            Action::SelfHandle {
                result: "已关闭总阀 CANARY-RESULT-9b0a".into(),
            },
        )
        .unwrap();
    // An open case of the same category, and a closed one of a category kept for good.
    let open = worker.report_case(leak()).unwrap();
    let kept = worker
        .report_case(NewCase {
            category: "safety".parse().unwrap(),
            subcategory: None,
            ..leak()
        })
        .unwrap();
    sync_all();
    dispatcher.act(&gone, Action::Archive).unwrap();
    dispatcher
        .act(
            &kept,
            Action::Invalidate {
                reason: "重复上报".into(),
            },
        )
        .unwrap();
    sync_all();
    sync_all();
    let all = sorted(vec![gone.clone(), open.clone(), kept.clone()]);
    for phone in [&worker, &dispatcher, &sealed] {
        assert_eq!(case_ids(phone), all);
    }

    let strings = [
        "zqretain7c41",
        "CANARY-CASE-5d2e",
        "CANARY-RESULT-9b0a",
        photo.hash.as_str(),
    ];
    let canaries: Vec<&[u8]> = strings.iter().map(|s| s.as_bytes()).collect();
    let photos = [photo.hash.as_str(), photo.thumb.as_str()];
    // The scan can fail: before the sweep each canary, and the photo and its
    // thumbnail whole, are in the relay's files.
    let found = canary::scan(&data, &canaries);
    for s in strings {
        assert!(
            found.iter().any(|(_, f)| strings[*f] == s),
            "{s} not in the relay's files before the sweep: the scan proves nothing"
        );
    }
    assert_eq!(canary::copies(&data, &photos).len(), 2);

    let backups = dir.path().join("backups");
    let before = backups.join("before");
    admin(&data, &["backup", "--to", &before.to_string_lossy()]);

    // The phones' clocks say 40 days, but the relay received it all today: not due.
    let said = admin(&data, &["sweep-retention"]);
    assert!(said.contains(", 0 erased"), "{said}");
    assert_eq!(case_ids(&dispatcher), all);

    // 40 days pass on the relay's clock (for these cases' receipts and changes).
    {
        let relay_db = rusqlite::Connection::open(data.join("relay.db")).unwrap();
        relay_db
            .busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let back = [Duration::days(40).num_milliseconds()];
        let moved = relay_db
            .execute(
                "UPDATE entry_receipts SET received_ms = received_ms - ?1",
                back,
            )
            .unwrap();
        let logged = relay_db
            .execute("UPDATE log SET received_ms = received_ms - ?1", back)
            .unwrap();
        assert!(logged >= moved, "every change is in the log: {logged}");
        assert!(moved >= 4, "every entry has a receipt: {moved}");
    }
    let said = admin(
        &data,
        &["sweep-retention", "--backups", &backups.to_string_lossy()],
    );
    assert!(said.contains(", 1 erased"), "{said}");
    let log = std::fs::read_to_string(backups.join("erasures.log")).unwrap();
    assert!(
        log.contains(gone.as_str()) && log.contains("case-retention"),
        "{log}"
    );
    // Again: nothing more is due.
    assert!(admin(&data, &["sweep-retention"]).contains(", 0 erased"));

    // The worker added a note offline meanwhile: refused as erased, and the
    // refused change (with the note's text) forgotten with the case.
    let late = "CANARY-LATE-3e1f 补充说明";
    worker.add_note(&gone, late).unwrap();
    let r = worker.sync(&mut |_| {}).expect("sync");
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    assert!(r.rejected[0].1.contains("erased"), "{:?}", r.rejected);

    // Purged from every phone at its next pull, with its photo.
    sync_all();
    sync_all();
    let left = sorted(vec![open.clone(), kept.clone()]);
    for phone in [&worker, &dispatcher, &sealed] {
        assert_eq!(case_ids(phone), left);
        assert!(phone.get_case(&gone).is_err());
        assert!(!phone.has_photo(&photo.hash).unwrap());
        assert!(phone
            .rejected_changes()
            .unwrap()
            .iter()
            .all(|(doc, _, _)| *doc != gone));
    }
    let after = backups.join("after");
    admin(&data, &["backup", "--to", &after.to_string_lossy()]);
    drop(server);

    // A restore of the backup from before the sweep applies erasures.log.
    let restored = dir.path().join("restored");
    let said = admin(&restored, &["restore", "--from", &before.to_string_lossy()]);
    assert!(said.contains("1 erasures applied"), "{said}");

    // Nothing readable anywhere: the relay (killed while serving), the plaintext
    // phones, the backup taken after, the restored relay. The encrypted phone's
    // file is ciphertext; it was checked through its API above.
    let mut canaries = canaries;
    canaries.push(b"CANARY-LATE-3e1f");
    let mut leftovers = Vec::new();
    let mut photo_copies = Vec::new();
    for root in [&data, &folders[0], &folders[1], &after, &restored] {
        leftovers.extend(canary::scan(root, &canaries));
        photo_copies.extend(canary::copies(root, &photos));
    }
    assert!(leftovers.is_empty(), "canaries left: {leftovers:?}");
    assert!(photo_copies.is_empty(), "photos left: {photo_copies:?}");

    // The restored relay serves the two that stay.
    let server = start(&restored);
    let late = dir.path().join("late");
    std::fs::create_dir_all(&late).unwrap();
    let newcomer = enroll(&restored, &server, DISPATCHER, &late);
    newcomer.sync(&mut |_| {}).unwrap();
    assert_eq!(case_ids(&newcomer), left);
}

#[test]
fn a_tiers_retention_tombstone_is_applied_only_where_the_case_is_due() {
    use gridsync_server::relay::ErasureReason;
    use gridsync_tests::{LocalTransport, SimRelay};
    const TOWN: &str = "td-339901001";
    let district = SimRelay::new();
    let town = SimRelay::new();
    let folder = tempfile::tempdir().unwrap();
    // The district keeps livelihood's closed cases 30 days; the town follows.
    district
        .relay
        .import_directory(&with_retention("livelihood", 30))
        .unwrap();
    let up = LocalTransport::new(&district.relay);
    let code = district.relay.create_relay_enrollment(TOWN).unwrap();
    let link = connect(&town, &up, &code);
    let worker = town.enroll(WORKER, folder.path());
    let dispatcher = town.enroll(DISPATCHER, folder.path());
    town.relay.sync_upstream(&link, &up).unwrap();

    let id = worker.report_case(leak()).unwrap();
    worker
        .act(
            &id,
            Action::SelfHandle {
                result: "已处理".into(),
            },
        )
        .unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher.act(&id, Action::Archive).unwrap();
    dispatcher.sync().unwrap();
    town.relay.sync_upstream(&link, &up).unwrap();
    assert!(district.relay.engine().read_doc(&id).unwrap().is_some());

    // Closed today: not due at either tier.
    assert_eq!(town.relay.sweep_retention(Utc::now()).unwrap().erased, 0);
    assert_eq!(
        district.relay.sweep_retention(Utc::now()).unwrap().erased,
        0
    );

    // A change received after the moment a sweep judged it due keeps it: the
    // store refuses the erasure in the transaction that would make it.
    assert_eq!(
        town.relay
            .store()
            .erase(
                &id,
                "case-retention",
                Utc::now().timestamp_millis(),
                Some(0)
            )
            .unwrap(),
        gridsync_server::relay::store::Erased::Renewed
    );
    assert!(!town.relay.store().is_erased(&id).unwrap());

    // A town that erases it (its clock ahead, or compromised) sends the
    // tombstone up; the district, where it is not due, keeps the case.
    assert_eq!(
        town.relay
            .erase_all(std::slice::from_ref(&id), ErasureReason::CaseRetention)
            .unwrap(),
        1
    );
    let round = town.relay.sync_upstream(&link, &up).unwrap();
    assert_eq!(round.erased_up, 1, "{round:?}");
    assert!(!district.relay.store().is_erased(&id).unwrap());
    assert!(district.relay.engine().read_doc(&id).unwrap().is_some());
    // The town's phones purge it.
    worker.sync().unwrap();
    assert!(worker.get_case(&id).is_err());

    // Thirty-one days on, the district's own sweep erases it.
    let later = Utc::now() + Duration::days(31);
    let sweep = district.relay.sweep_retention(later).unwrap();
    assert_eq!((sweep.looked_at, sweep.erased), (1, 1));
    assert!(district.relay.store().is_erased(&id).unwrap());
    assert!(district.relay.engine().read_doc(&id).unwrap().is_none());
}

/// An erasure cut short after its tombstone committed (the relay died before its
/// photos went and its files were scrubbed) is finished by the next sweep, which
/// also runs when no category has a retention; a photo whose same bytes were
/// sent again meanwhile, for another case, stays.
#[test]
fn an_erasure_cut_short_is_finished_by_the_next_sweep() {
    let sim = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = sim.enroll(WORKER, dir.path());
    let other = sim.enroll(WORKER, dir.path());
    let only_jpeg = gridsync_tests::photo(0x0c07_5401, 1200, 900);
    let shared_jpeg = gridsync_tests::photo(0x0c07_5402, 1200, 900);
    let only = worker.ingest_photo(&only_jpeg, None).unwrap();
    let shared = worker.ingest_photo(&shared_jpeg, None).unwrap();
    let gone = worker
        .report_case(NewCase {
            title: "CANARY-CUT-41aa 漏水".into(),
            photos: vec![only.hash.clone(), shared.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync().unwrap();
    let data = sim.dir.path();
    let only_files = [only.hash.as_str(), only.thumb.as_str()];
    let shared_files = [shared.hash.as_str(), shared.thumb.as_str()];
    assert_eq!(canary::copies(data, &only_files).len(), 2);
    assert_eq!(canary::copies(data, &shared_files).len(), 2);

    // The tombstone commits; the relay dies before the rest.
    let store = sim.relay.store();
    let now = Utc::now().timestamp_millis();
    store.erase(&gone, "case-retention", now, None).unwrap();
    assert_eq!(store.erased_photos_left("", 10).unwrap().len(), 4);
    assert!(store.scrub_pending().unwrap().is_some());
    assert_eq!(canary::copies(data, &only_files).len(), 2, "still there");

    // Another phone sends the same bytes as one of them, for a case of its own.
    let shared_again = other.ingest_photo(&shared_jpeg, None).unwrap();
    assert_eq!(shared_again.hash, shared.hash);
    let stays = other
        .report_case(NewCase {
            photos: vec![shared_again.hash.clone()],
            ..leak()
        })
        .unwrap();
    let r = other.sync().unwrap();
    assert_eq!(r.photos_uploaded, 2, "{r:?}");
    assert_eq!(store.erased_photos_left("", 10).unwrap().len(), 2);

    // Restarted: the replica drops the erased case, the sweep does the rest.
    sim.relay.apply_erasures().unwrap();
    let swept = sim.relay.sweep_retention(Utc::now()).unwrap();
    assert_eq!(swept.erased, 0, "no category has a retention");
    assert!(store.erased_photos_left("", 10).unwrap().is_empty());
    assert!(store.scrub_pending().unwrap().is_none());
    assert!(canary::copies(data, &only_files).is_empty());
    assert_eq!(canary::copies(data, &shared_files).len(), 2, "kept whole");
    // Nothing names the erased photo any more, and no mark is left.
    let names: [&[u8]; 3] = [
        b"CANARY-CUT-41aa",
        only.hash.as_str().as_bytes(),
        only.thumb.as_str().as_bytes(),
    ];
    assert!(canary::scan(data, &names).is_empty());
    assert!(canary::files_under(data)
        .iter()
        .all(|f| !f.to_string_lossy().contains("scrub-pending")));
    assert!(sim.relay.engine().read_doc(&stays).unwrap().is_some());
    // A second sweep finds nothing left to do.
    assert_eq!(sim.relay.sweep_retention(Utc::now()).unwrap().erased, 0);
}

/// A phone that attached an erased case's photo to a new case before its pull
/// told it of the erasure (the relay removed the photo with the case) sends the
/// photo up again, so the new case does not lose it.
#[test]
fn a_photo_kept_by_a_new_case_goes_up_again_after_its_old_case_is_erased() {
    let sim = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = sim.enroll(WORKER, dir.path());
    let photo = worker
        .ingest_photo(&gridsync_tests::photo(0x0c07_5403, 1200, 900), None)
        .unwrap();
    let gone = worker
        .report_case(NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync().unwrap();
    let files = [photo.hash.as_str(), photo.thumb.as_str()];
    let data = sim.dir.path();
    assert_eq!(canary::copies(data, &files).len(), 2);

    // The same photo on a new case, not yet sent; meanwhile the old case goes.
    let stays = worker
        .report_case(NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    assert!(sim
        .relay
        .erase(&gone, ErasureReason::CaseRetention)
        .unwrap());
    assert!(canary::copies(data, &files).is_empty());

    // The sync that pushes the new case learns of the erasure; the next sends
    // the photo again.
    assert_eq!(worker.sync().unwrap().purged, 1);
    worker.sync().unwrap();
    assert!(worker.get_case(&gone).is_err());
    assert!(worker.has_photo(&photo.hash).unwrap());
    assert_eq!(canary::copies(data, &files).len(), 2, "the photo is back");
    assert!(sim.relay.engine().read_doc(&stays).unwrap().is_some());
    assert_eq!(worker.photos_to_upload().unwrap(), vec![]);
}
