//! Backup while the relay serves, restore into a new data folder, and carry on.

use gridsync_core::CaseFilter;

use crate::sockets::{enroll, enroll_on, gridsync, start, start_with};
use crate::workflow::{DISPATCHER, WORKER};

fn admin(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(args)
        .output()
        .expect("gridsync admin")
}

#[test]
fn a_backup_taken_while_serving_restores_every_case_and_photo_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let (id, photo) = crate::photos::report_with_photo(&worker);
    // Someone saw a resident's full numbers: the audit log has a line to keep.
    let seen: gridsync_core::DocId = "person-0192f0c0a1b27c3d8e9f001122334455".parse().unwrap();
    gridsync_server::audit::record(&data, &DISPATCHER.parse().unwrap(), "identity_view", &seen)
        .unwrap();

    let backup = dir.path().join("backup");
    let out = admin(&data, &["backup", "--to", &backup.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 databases and 2 photos"), "{said}");
    // A backup never overwrites.
    let again = admin(&data, &["backup", "--to", &backup.to_string_lossy()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    drop(server);

    let restored = dir.path().join("restored");
    let out = admin(&restored, &["restore", "--from", &backup.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let into_used = admin(&data, &["restore", "--from", &backup.to_string_lossy()]);
    assert!(
        !into_used.status.success(),
        "a restore never mixes two relays' data"
    );

    let audited = gridsync_server::audit::recent(&restored, 10).unwrap();
    assert_eq!(
        audited.iter().map(|e| e.doc.as_str()).collect::<Vec<_>>(),
        [seen.as_str()],
        "the audit log is restored with the relay"
    );

    let server = start(&restored);
    let dispatcher = enroll(&restored, &server, DISPATCHER, dir.path());
    holds_what_was_backed_up(&dispatcher, &worker, &id, &photo);
}

/// A device enrolled on a restored relay gets the one case and its photo, the same
/// bytes as the device that took it.
fn holds_what_was_backed_up(
    dispatcher: &gridsync_core::Engine,
    worker: &gridsync_core::Engine,
    id: &gridsync_core::DocId,
    photo: &gridsync_core::PhotoHash,
) {
    dispatcher.sync(&mut |_| {}).unwrap();
    let cases = dispatcher.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(cases.iter().map(|c| &c.id).collect::<Vec<_>>(), [id]);
    dispatcher
        .fetch_photo(photo)
        .expect("the photo was restored");
    assert_eq!(
        dispatcher.photo(photo).unwrap(),
        worker.photo(photo).unwrap()
    );
}

/// The same on PostgreSQL: `pg_dump` while serving, photos out of the photo store,
/// and a restore into a new, empty database and a new node.
#[test]
fn a_postgres_relay_backed_up_while_serving_restores_into_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = gridsync_tests::postgres_database();
    let on_pg = ["--database-url", url.as_str()];
    let data = dir.path().join("node");
    let server = start_with(&data, &on_pg);
    let now: gridsync_core::Clock = std::sync::Arc::new(chrono::Utc::now);
    let worker = enroll_on(&data, &on_pg, &server, WORKER, dir.path(), now.clone());
    let (id, photo) = crate::photos::report_with_photo(&worker);

    let backup = dir.path().join("backup");
    let backup_arg = backup.to_string_lossy().into_owned();
    let out = admin(
        &data,
        &["--database-url", &url, "backup", "--to", &backup_arg],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 databases and 2 photos"), "{said}");
    drop(server);

    // A PostgreSQL backup is not restored as a SQLite relay, nor into a database
    // that is in use.
    let wrong = admin(&dir.path().join("x"), &["restore", "--from", &backup_arg]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("PostgreSQL relay's backup"));
    let used = admin(
        &dir.path().join("y"),
        &["--database-url", &url, "restore", "--from", &backup_arg],
    );
    assert!(!used.status.success());
    assert!(String::from_utf8_lossy(&used.stderr).contains("not empty"));

    let new_url = gridsync_tests::postgres_database();
    let on_new = ["--database-url", new_url.as_str()];
    let restored = dir.path().join("restored-node");
    let out = admin(
        &restored,
        &["--database-url", &new_url, "restore", "--from", &backup_arg],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start_with(&restored, &on_new);
    let dispatcher = enroll_on(&restored, &on_new, &server, DISPATCHER, dir.path(), now);
    holds_what_was_backed_up(&dispatcher, &worker, &id, &photo);
    // The worker's phone carries on with the restored relay: its device is known.
    let token = worker.server().unwrap().expect("enrolled").1;
    worker.set_server(&server.url, &token).unwrap();
    worker
        .sync(&mut |_| {})
        .expect("the restored relay knows the worker's device");
}

#[test]
fn a_backup_whose_log_was_tampered_with_is_refused_at_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let id = worker.report_case(crate::workflow::leak()).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    let backup = dir.path().join("backup");
    let out = admin(&data, &["backup", "--to", &backup.to_string_lossy()]);
    assert!(out.status.success());
    drop(server);

    // One byte inside the logged report changes: the file stays a sound SQLite
    // database, but the change no longer matches its checksum.
    let change = worker.changes_since(&id, &[]).unwrap()[0]
        .raw_bytes()
        .to_vec();
    let path = backup.join("relay.db");
    let mut file = std::fs::read(&path).unwrap();
    let at = file
        .windows(change.len())
        .position(|w| w == change)
        .expect("the logged change is in the backup's relay.db");
    file[at + change.len() / 2] ^= 0x55;
    std::fs::write(&path, file).unwrap();

    let restored = dir.path().join("restored");
    let out = admin(&restored, &["restore", "--from", &backup.to_string_lossy()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered log must be refused");
    assert!(said.contains("not acceptable Automerge changes"), "{said}");
}
