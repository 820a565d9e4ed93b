//! The phone as a vault: photo files sealed on disk, a remote wipe that really
//! erases, and device tokens that rotate so that a copied phone gives itself away.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use gridsync_core::sync::{self, wire, HttpTransport, SyncError, Transport, TransportError};
use gridsync_core::vault::DeviceKey;
use gridsync_core::{CaseFilter, DeviceId, Engine, Error, Identity};
use gridsync_server::relay::store::TokenKind;
use gridsync_server::relay::{RelayError, TokenRotation};
use gridsync_tests::canary::{contains, files_under};
use gridsync_tests::{LocalTransport, SimDevice, SimRelay};
use sha2::{Digest, Sha256};

use crate::sockets::{gridsync, start};
use crate::workflow::{leak, WORKER};

/// The word a patrol photo carries in its metadata (and a camera app might print).
const CANARY: &[u8] = b"CANARY-PATROL-4417";

/// A camera JPEG of `w`×`h` whose EXIF description and comment hold [`CANARY`].
fn camera_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::ImageBuffer::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 77])
    });
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 90)
        .encode_image(&img)
        .unwrap();
    // EXIF: one IFD entry, ImageDescription (ASCII) pointing past the IFD.
    let mut desc = CANARY.to_vec();
    desc.push(0);
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(0x010Eu16.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend((desc.len() as u32).to_le_bytes());
    tiff.extend(26u32.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(&desc);
    let mut out = plain[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((tiff.len() + 8) as u16).to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend([0xFF, 0xFE]);
    out.extend(((CANARY.len() + 2) as u16).to_be_bytes());
    out.extend(CANARY);
    out.extend(&plain[2..]);
    out
}

fn photo_folder(engine: &Engine) -> PathBuf {
    let mut name = engine.db_path().file_name().unwrap().to_os_string();
    name.push(".photos");
    engine.db_path().with_file_name(name)
}

#[test]
fn photo_files_on_a_phone_hold_no_jpeg_no_exif_and_no_canary() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity {
        user: WORKER.parse().unwrap(),
        device: DeviceId::random(),
    };
    let key = DeviceKey::from_bytes([0x5a; 32]);
    let camera = camera_jpeg(900, 700);
    assert!(contains(&camera, CANARY) && contains(&camera, b"Exif"));

    let sealed = Engine::open_encrypted(dir.path().join("phone.db"), identity.clone(), &key)
        .expect("the phone opens");
    let photo = sealed.ingest_photo(&camera, Some("IMG_0001.jpg")).unwrap();
    let plain = sealed.photo(&photo.hash).unwrap();
    assert_eq!(&plain[..3], b"\xFF\xD8\xFF", "the app still gets a JPEG");

    let files = files_under(&photo_folder(&sealed));
    assert_eq!(
        files.len(),
        2,
        "the display image and the thumbnail: {files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [CANARY, b"Exif", b"JFIF", b"\xFF\xD8\xFF"] {
            assert!(
                !contains(&bytes, needle),
                "{needle:?} readable in {}",
                file.display()
            );
        }
        // Not a single 16-byte run of the display image, anywhere.
        for at in (0..plain.len() - 16).step_by(997) {
            assert!(
                !contains(&bytes, &plain[at..at + 16]),
                "plain bytes at {at}"
            );
        }
    }

    // One flipped byte: the photo is an error, never another picture.
    let display = files
        .iter()
        .find(|f| f.to_string_lossy().contains(photo.hash.as_str()))
        .unwrap();
    let mut bytes = std::fs::read(display).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(display, &bytes).unwrap();
    assert!(sealed.photo(&photo.hash).is_err());
    assert_eq!(sealed.photo(&photo.thumb).unwrap()[..3], *b"\xFF\xD8\xFF");

    // The same scan finds the JPEG in the folder of an engine opened without a key
    // (a relay's replica): it would catch a file written plain.
    let other = tempfile::tempdir().unwrap();
    let plain_engine = Engine::open(other.path().join("replica.db"), identity).unwrap();
    let p = plain_engine.ingest_photo(&camera, None).unwrap();
    let plain_file = std::fs::read(
        files_under(&photo_folder(&plain_engine))
            .into_iter()
            .find(|f| f.to_string_lossy().contains(p.hash.as_str()))
            .unwrap(),
    )
    .unwrap();
    assert!(contains(&plain_file, b"\xFF\xD8\xFF"));
}

#[test]
fn a_phone_rekeyed_to_a_new_device_key_still_shows_its_photos() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let identity = Identity {
        user: WORKER.parse().unwrap(),
        device: DeviceId::random(),
    };
    let (old, new) = (
        DeviceKey::from_bytes([1; 32]),
        DeviceKey::from_bytes([2; 32]),
    );
    let engine = Engine::open_encrypted(&path, identity.clone(), &old).unwrap();
    let photo = engine.ingest_photo(&camera_jpeg(400, 300), None).unwrap();
    let before = engine.photo(&photo.hash).unwrap();
    engine.rekey(&new).unwrap();
    assert_eq!(engine.photo(&photo.hash).unwrap(), before);
    drop(engine);
    let engine = Engine::open_encrypted(&path, identity, &new).unwrap();
    assert_eq!(engine.photo(&photo.hash).unwrap(), before);
    assert_eq!(engine.photo(&photo.thumb).unwrap()[..3], *b"\xFF\xD8\xFF");
}

/// Enroll `user` over HTTP with `gridsync admin enroll`, and open its engine
/// encrypted in `folder` (the app's folder).
fn enroll_encrypted(data: &Path, url: &str, user: &str, folder: &Path, key: &DeviceKey) -> Engine {
    let code = crate::sockets::enrollment_code(data, &[], user);
    let device = DeviceId::random();
    let e = sync::enroll(&HttpTransport::new(url), &code, device, "e2e").expect("enroll");
    let engine = Engine::open_encrypted(
        folder.join("worker.db"),
        Identity {
            user: e.user,
            device,
        },
        key,
    )
    .unwrap();
    engine.load_directory(&e.directory).unwrap();
    engine.set_server(url, &e.token).unwrap();
    engine
}

#[test]
fn a_revoked_phone_erases_everything_at_its_next_sync_and_the_app_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let app = dir.path().join("app-files");
    std::fs::create_dir_all(&app).unwrap();
    let key = DeviceKey::from_bytes([7; 32]);
    let phone = enroll_encrypted(&data, &server.url, WORKER, &app, &key);

    // A synced case with a photo, then work that never reached the server: another
    // case, another photo, and the leftovers of a crash in the photo folder.
    let case = phone.report_case(leak()).unwrap();
    let photo = phone.ingest_photo(&camera_jpeg(640, 480), None).unwrap();
    phone.attach_photo(&case, photo.hash.clone()).unwrap();
    let r = phone.sync(&mut |_| {}).unwrap();
    assert_eq!(r.photos_uploaded, 2);
    phone.report_case(leak()).unwrap();
    phone.ingest_photo(&camera_jpeg(500, 400), None).unwrap();
    let crumbs = photo_folder(&phone).join("ab");
    std::fs::create_dir_all(&crumbs).unwrap();
    std::fs::write(crumbs.join(".tmp-abcd-0001"), b"half a sealed file").unwrap();
    std::fs::create_dir_all(photo_folder(&phone).join(".unswept")).unwrap();
    std::fs::write(photo_folder(&phone).join(".unswept/0001"), b"").unwrap();
    assert!(files_under(&app).len() >= 6, "{:?}", files_under(&app));

    // The operator revokes the phone; at its next sync it erases itself.
    let device = phone.identity().device.to_string();
    let out = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args(["revoke", "--device", &device])
        .output()
        .expect("admin revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    match phone.sync(&mut |_| {}) {
        Err(SyncError::Wiped { left }) => assert!(left.is_empty(), "left: {left:?}"),
        other => panic!("the app must be told of the wipe, got {other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(&app).unwrap().collect();
    assert!(left.is_empty(), "files left in the app's folder: {left:?}");

    // Every later call is refused as wiped, and none writes a file again.
    assert!(phone.is_wiped());
    assert!(matches!(
        phone.list_cases(&CaseFilter::default()),
        Err(Error::Wiped)
    ));
    assert!(matches!(phone.report_case(leak()), Err(Error::Wiped)));
    assert!(matches!(
        phone.ingest_photo(&camera_jpeg(64, 64), None),
        Err(Error::Wiped)
    ));
    assert!(matches!(phone.photo(&photo.hash), Err(Error::Wiped)));
    assert!(matches!(
        phone.sync(&mut |_| {}),
        Err(SyncError::Local(Error::Wiped))
    ));
    assert!(matches!(phone.me(), Err(Error::Wiped)));
    assert!(std::fs::read_dir(&app).unwrap().next().is_none());
    phone.wipe().expect("wiping again finds nothing to do");
    assert!(std::fs::read_dir(&app).unwrap().next().is_none());
}

#[test]
fn wipe_erases_a_phone_on_the_apps_command() {
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity {
        user: WORKER.parse().unwrap(),
        device: DeviceId::random(),
    };
    let key = DeviceKey::from_bytes([3; 32]);
    let engine = Engine::open_encrypted(dir.path().join("w.db"), identity, &key).unwrap();
    engine.ingest_photo(&camera_jpeg(300, 200), None).unwrap();
    assert!(!files_under(dir.path()).is_empty());
    engine.wipe().unwrap();
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

// ---- token rotation --------------------------------------------------------

fn token_of(engine: &Engine) -> String {
    engine.server().unwrap().expect("enrolled").1
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn kind(relay: &SimRelay, token: &str) -> Option<TokenKind> {
    relay
        .relay
        .store()
        .find_token(&hash(token))
        .unwrap()
        .map(|(_, k)| k)
}

fn rotation(after_ms: i64, grace_ms: i64) -> TokenRotation {
    TokenRotation {
        after: chrono::Duration::milliseconds(after_ms),
        grace: chrono::Duration::milliseconds(grace_ms),
    }
}

#[test]
fn a_token_rotates_after_its_period_and_the_old_one_ends_once_the_new_is_used() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let t0 = token_of(&worker);

    // Within the period: no new token.
    worker.report_case(leak()).unwrap();
    worker.sync().unwrap();
    assert_eq!(token_of(&worker), t0);
    assert_eq!(kind(&relay, &t0), Some(TokenKind::Current));

    // Past it: the pull brings a successor, stored with the page; the old token
    // still works until the successor is used.
    relay.relay.set_token_rotation(rotation(0, 3_600_000));
    worker.sync().unwrap();
    let t1 = token_of(&worker);
    assert_ne!(t1, t0);
    assert_eq!(kind(&relay, &t0), Some(TokenKind::Current));
    assert_eq!(kind(&relay, &t1), Some(TokenKind::Next));

    // The next sync uses it: it becomes the token, the old one is retired.
    relay
        .relay
        .set_token_rotation(rotation(3_600_000, 3_600_000));
    worker.report_case(leak()).unwrap();
    assert_eq!(worker.sync().unwrap().pushed, 1);
    assert_eq!(token_of(&worker), t1);
    assert_eq!(kind(&relay, &t1), Some(TokenKind::Current));
    assert!(matches!(kind(&relay, &t0), Some(TokenKind::Retired { .. })));
    // Within the grace period a request begun with the old token still works (a
    // photo download beside the sync), but never earns a successor.
    let late = relay.relay.authenticate(&t0).expect("in the grace period");
    assert!(late.current_token.is_none());
    // After it, the old token revokes the device.
    relay.relay.set_token_rotation(rotation(3_600_000, 0));
    assert_eq!(
        relay.relay.authenticate(&t0).unwrap_err(),
        RelayError::Revoked
    );
    match worker.sync() {
        Err(SyncError::Wiped { left }) => assert!(left.is_empty()),
        other => panic!("a revoked device wipes, got {other:?}"),
    }
}

#[test]
fn the_rest_of_a_sync_goes_on_with_the_token_it_received() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let t0 = token_of(&worker);
    // A case with a photo: after the pull that brings the new token, the photo
    // uploads of the same sync bear it, which confirms it there and then.
    let case = worker.report_case(leak()).unwrap();
    let photo = worker.ingest_photo(&camera_jpeg(640, 480), None).unwrap();
    worker.attach_photo(&case, photo.hash).unwrap();
    relay.relay.set_token_rotation(rotation(0, 3_600_000));
    let r = worker.sync().unwrap();
    assert_eq!(r.photos_uploaded, 2);
    let t1 = token_of(&worker);
    assert_ne!(t1, t0);
    assert_eq!(kind(&relay, &t1), Some(TokenKind::Current));
    assert!(matches!(kind(&relay, &t0), Some(TokenKind::Retired { .. })));
}

/// A link that loses the answers bringing a new token (the relay has acted on
/// them; the device never sees them), `lose` times.
struct Lossy<'a> {
    inner: LocalTransport<'a>,
    lose: Cell<u32>,
}

impl Transport for Lossy<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let answer = self.inner.post(path, token, body)?;
        if path == "/v1/pull" && self.lose.get() > 0 {
            let pull: wire::PullResponse = wire::decode(&answer).unwrap();
            if pull.new_token.is_some() {
                self.lose.set(self.lose.get() - 1);
                return Err(TransportError::Network("the answer was lost".into()));
            }
        }
        Ok(answer)
    }
}

#[test]
fn a_lost_rotation_answer_does_not_lock_the_device_out() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let t0 = token_of(&worker);
    relay.relay.set_token_rotation(rotation(0, 0));
    let lossy = Lossy {
        inner: LocalTransport::new(&relay.relay),
        lose: Cell::new(2),
    };
    for _ in 0..2 {
        worker.report_case(leak()).unwrap();
        assert!(matches!(
            sync::sync(&worker, &lossy, &mut |_| {}),
            Err(SyncError::Network(_))
        ));
        // The successor the device never saw is offered; its token still works.
        assert_eq!(token_of(&worker), t0);
        assert_eq!(kind(&relay, &t0), Some(TokenKind::Current));
    }
    // The answer gets through at last; the device moves on to the new token.
    let r = sync::sync(&worker, &lossy, &mut |_| {}).unwrap();
    assert_eq!(r.pushed, 0, "both cases went up with the lost syncs");
    let t1 = token_of(&worker);
    assert_ne!(t1, t0);
    sync::sync(&worker, &lossy, &mut |_| {}).unwrap();
    assert_eq!(kind(&relay, &t1), Some(TokenKind::Current));
    assert_eq!(worker.list_cases(&CaseFilter::default()).unwrap().len(), 2);
}

#[test]
fn a_copied_phone_is_revoked_and_both_copies_wipe_then_the_worker_enrolls_again() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let SimDevice {
        engine,
        token,
        device,
        ..
    } = relay.enroll(WORKER, dir.path());
    engine.report_case(leak()).unwrap();
    sync::sync(&engine, &LocalTransport::new(&relay.relay), &mut |_| {}).unwrap();
    // The phone's files copied, whole, to another phone.
    let path = engine.db_path().to_owned();
    let identity = engine.identity().clone();
    drop(engine);
    let copy_dir = tempfile::tempdir().unwrap();
    let copy_path = copy_dir.path().join(path.file_name().unwrap());
    std::fs::copy(&path, &copy_path).unwrap();
    let open = |p: &Path| SimDevice {
        engine: Engine::open(p, identity.clone()).unwrap(),
        transport: LocalTransport::new(&relay.relay),
        token: token.clone(),
        device,
    };
    let (phone, copy) = (open(&path), open(&copy_path));
    assert_eq!(token_of(&copy), token_of(&phone));

    // The phone rotates its token and uses the new one; the copy still holds the old.
    relay.relay.set_token_rotation(rotation(0, 0));
    phone.sync().unwrap();
    phone.sync().unwrap();
    assert!(matches!(
        kind(&relay, &token_of(&copy)),
        Some(TokenKind::Retired { .. })
    ));
    // The copy's next sync gives it away: the device is revoked, the copy wipes.
    match copy.sync() {
        Err(SyncError::Wiped { left }) => assert!(left.is_empty()),
        other => panic!("the copy must wipe, got {other:?}"),
    }
    assert!(std::fs::read_dir(copy_dir.path()).unwrap().next().is_none());
    // The relay cannot tell which copy is the worker's: the device is revoked for
    // both, so the phone wipes at its next contact too.
    let record = relay.relay.store().devices().unwrap();
    assert!(record.iter().any(|d| d.device == device && d.revoked));
    assert!(matches!(phone.sync(), Err(SyncError::Wiped { .. })));
    // The worker enrolls again, as a new device, and works.
    let again = tempfile::tempdir().unwrap();
    let fresh = relay.enroll(WORKER, again.path());
    fresh.report_case(leak()).unwrap();
    assert_eq!(fresh.sync().unwrap().pushed, 1);
    assert!(fresh.list_cases(&CaseFilter::default()).unwrap().len() >= 2);
}
