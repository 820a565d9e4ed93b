//! Backup while the relay serves, restore into a new data folder, and carry on.

use gridsync_core::{CaseFilter, NewCase};

use crate::sockets::{enroll, gridsync, start};
use crate::workflow::{leak, DISPATCHER, WORKER};

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
    let photo = worker
        .ingest_photo(&crate::photos::camera_jpeg(), Some("IMG_0002.jpg"))
        .unwrap();
    let id = worker
        .report_case(NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();

    let backup = dir.path().join("backup");
    let out = admin(&data, &["backup", "--to", &backup.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 databases and 2 photos"), "{said}");
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

    let server = start(&restored);
    let dispatcher = enroll(&restored, &server, DISPATCHER, dir.path());
    dispatcher.sync(&mut |_| {}).unwrap();
    let cases = dispatcher.list_cases(&CaseFilter::default()).unwrap();
    assert_eq!(cases.iter().map(|c| &c.id).collect::<Vec<_>>(), [&id]);
    dispatcher
        .fetch_photo(&photo.hash)
        .expect("the photo was restored");
    assert_eq!(
        dispatcher.photo(&photo.hash).unwrap(),
        worker.photo(&photo.hash).unwrap()
    );
}
