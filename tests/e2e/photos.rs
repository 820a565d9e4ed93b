//! Photos through the relay: reports before photos, thumbnails before display
//! images, resumable uploads over a link that keeps dropping, downloads on demand
//! and only within scope.

use std::cell::Cell;

use gridsync_core::sync::client::PHOTO_CHUNK_BYTES;
use gridsync_core::sync::{self, SyncError, Transport, TransportError};
use gridsync_core::Status;
use gridsync_tests::{LocalTransport, SimRelay};

use crate::workflow::{leak, DISPATCHER, WORKER};

/// A noisy JPEG, so the display image spans several upload chunks.
pub(crate) fn camera_jpeg() -> Vec<u8> {
    noisy_jpeg(0x2545_f491, 1800, 1200, 92)
}

/// A case with a photo, reported and sent.
pub(crate) fn report_with_photo(
    worker: &gridsync_core::Engine,
) -> (gridsync_core::DocId, gridsync_core::PhotoHash) {
    let photo = worker
        .ingest_photo(&crate::photos::camera_jpeg(), Some("IMG_0002.jpg"))
        .unwrap();
    let id = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..crate::workflow::leak()
        })
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();
    (id, photo.hash)
}

/// A JPEG of noise from `seed` (non-zero), different for each seed: noise
/// compresses badly, so even a small one's display image takes several chunks.
pub(crate) fn noisy_jpeg(seed: u32, width: u32, height: u32, quality: u8) -> Vec<u8> {
    let mut seed = seed;
    let img = image::ImageBuffer::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        image::Rgb([(seed & 0xff) as u8, (x % 256) as u8, (y % 256) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&img)
        .unwrap();
    out
}

/// Drops every `every`-th photo request: half of the drops before the relay sees
/// the request, half after it answered (the answer is lost).
struct Flaky<'a> {
    inner: LocalTransport<'a>,
    every: u32,
    calls: Cell<u32>,
    cuts: Cell<u32>,
    /// Photo bytes in every upload chunk attempted, delivered or not.
    chunk_bytes: Cell<u64>,
}

impl Transport for Flaky<'_> {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if !path.starts_with("/v1/blob/") {
            return self.inner.post(path, token, body);
        }
        if path == "/v1/blob/put" {
            let chunk: gridsync_core::sync::wire::BlobPutRequest =
                gridsync_core::sync::wire::decode(&body).unwrap();
            self.chunk_bytes
                .set(self.chunk_bytes.get() + chunk.bytes.len() as u64);
        }
        let n = self.calls.get() + 1;
        self.calls.set(n);
        if n % self.every != 0 {
            return self.inner.post(path, token, body);
        }
        self.cuts.set(self.cuts.get() + 1);
        if n % (2 * self.every) == 0 {
            let _ = self.inner.post(path, token, body);
        }
        Err(TransportError::Network("connection reset".into()))
    }
}

#[test]
fn a_report_arrives_before_its_photos_and_photos_resume_after_cuts() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let outsider = relay.enroll("cd-339901002001", dir.path());

    let photo = worker
        .ingest_photo(&camera_jpeg(), Some("IMG_2001.JPG"))
        .unwrap();
    let display = worker.photo(&photo.hash).unwrap();
    assert!(
        display.len() > 2 * PHOTO_CHUNK_BYTES,
        "{} bytes",
        display.len()
    );
    let id = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();

    // The link drops every third photo request. Each sync gets further; the case
    // itself went up with the first one.
    let flaky = Flaky {
        inner: LocalTransport::new(&relay.relay),
        every: 3,
        calls: Cell::new(0),
        cuts: Cell::new(0),
        chunk_bytes: Cell::new(0),
    };
    let mut sent = 0;
    let mut uploaded = 0;
    for attempt in 0.. {
        assert!(attempt < 50, "the upload never finished");
        match sync::sync(&worker.engine, &flaky, &mut |_| {}) {
            Ok(r) => {
                sent += r.photo_bytes_sent;
                uploaded += r.photos_uploaded;
                break;
            }
            Err(SyncError::Network(_)) => {
                if attempt == 0 {
                    dispatcher.sync().unwrap();
                    let case = dispatcher.get_case(&id).unwrap();
                    assert_eq!(
                        case.state.status,
                        Status::Reported,
                        "the report is there before its photos"
                    );
                }
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let thumb = worker.photo(&photo.thumb).unwrap();
    let total = (display.len() + thumb.len()) as u64;
    assert!(uploaded >= 1);
    assert!(
        worker.photos_to_upload().unwrap().is_empty(),
        "everything is up"
    );
    assert!(sent <= total, "the last sync only sent what was missing");
    let cuts = u64::from(flaky.cuts.get());
    assert!(cuts >= 2, "the link really dropped");
    // Each cut costs at most one chunk sent again.
    let resent = flaky.chunk_bytes.get() - total;
    assert!(
        resent <= cuts * PHOTO_CHUNK_BYTES as u64,
        "{resent} bytes re-sent for {cuts} cuts"
    );

    // Never uploaded twice.
    assert_eq!(worker.sync().unwrap().photo_bytes_sent, 0);

    // Downloads on demand: thumbnail, then the display image, verified.
    dispatcher.sync().unwrap();
    assert!(!dispatcher.has_photo(&photo.thumb).unwrap());
    sync::fetch_photo(&dispatcher.engine, &dispatcher.transport, &photo.thumb).unwrap();
    sync::fetch_photo(&dispatcher.engine, &dispatcher.transport, &photo.hash).unwrap();
    assert_eq!(dispatcher.photo(&photo.hash).unwrap(), display);
    assert_eq!(dispatcher.photo(&photo.thumb).unwrap(), thumb);

    // Another community's dispatcher gets nothing: as if the photo did not exist.
    outsider.sync().unwrap();
    match sync::fetch_photo(&outsider.engine, &outsider.transport, &photo.hash) {
        Err(SyncError::Refused { code, .. }) => assert_eq!(code, "not_found"),
        other => panic!("an outsider must not get the photo: {other:?}"),
    }
    let t = LocalTransport::new(&relay.relay);
    let body = gridsync_core::sync::wire::encode(&gridsync_core::sync::wire::BlobGetRequest {
        v: 1,
        hash: photo.hash.clone(),
        offset: 0,
        max_bytes: 1 << 20,
    });
    match t.post("/v1/blob/get", Some(&outsider.token), body) {
        Err(TransportError::Status { status: 404, .. }) => {}
        other => panic!("expected 404, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn display_images_of_closed_cases_are_evicted_once_uploaded_and_fetched_again_on_demand() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let dispatcher = relay.enroll(DISPATCHER, dir.path());
    let small = |seed: u8| {
        let img =
            image::ImageBuffer::from_fn(400, 300, |x, y| image::Rgb([seed, x as u8, y as u8]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    };
    let open_photo = worker.ingest_photo(&small(1), None).unwrap();
    let closed_photo = worker.ingest_photo(&small(2), None).unwrap();
    let unsent_photo = worker.ingest_photo(&small(3), None).unwrap();
    let open_case = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![open_photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    let closed = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![closed_photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker
        .act(
            &closed,
            gridsync_core::Action::SelfHandle {
                result: "已处理".into(),
            },
        )
        .unwrap();
    worker.sync().unwrap();
    dispatcher.sync().unwrap();
    dispatcher
        .act(&closed, gridsync_core::Action::Archive)
        .unwrap();
    dispatcher.sync().unwrap();
    worker.sync().unwrap();
    // A photo of a third case that has not gone up yet.
    worker.set_online(false);
    worker
        .report_case(gridsync_core::NewCase {
            photos: vec![unsent_photo.hash.clone()],
            ..leak()
        })
        .unwrap();

    let freed = worker.evict_photos(0).unwrap();
    assert!(freed > 0);
    let file = gridsync_core::blobs::Blobs::for_db(worker.db_path()).path(&closed_photo.hash);
    assert!(!file.exists(), "the file itself is gone");
    assert!(
        !worker.has_photo(&closed_photo.hash).unwrap(),
        "the archived case's display image went"
    );
    assert!(
        worker.has_photo(&closed_photo.thumb).unwrap(),
        "thumbnails stay"
    );
    assert!(
        worker.has_photo(&open_photo.hash).unwrap(),
        "an open case's photo stays"
    );
    assert!(
        worker.has_photo(&unsent_photo.hash).unwrap(),
        "nothing unsent is evicted"
    );
    let _ = open_case;

    worker.set_online(true);
    sync::fetch_photo(&worker.engine, &worker.transport, &closed_photo.hash).unwrap();
    assert!(
        worker.has_photo(&closed_photo.hash).unwrap(),
        "fetched again when opened"
    );
}

#[test]
fn a_photo_upload_through_a_cutting_proxy_completes_resending_at_most_a_chunk_per_cut() {
    use gridsync_tests::proxy::CuttingProxy;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = crate::sockets::start(&data);
    let worker = crate::sockets::enroll(&data, &server, WORKER, dir.path());
    let photo = worker.ingest_photo(&camera_jpeg(), None).unwrap();
    worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    let total = (worker.photo(&photo.hash).unwrap().len()
        + worker.photo(&photo.thumb).unwrap().len()) as u64;

    // The first six connections are cut at deterministic points between 20 and 180 KB.
    let upstream: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = CuttingProxy::start(upstream, 200, |i| {
        (i < 6).then(|| 20_000 + (i as u64 * 37_000) % 160_000)
    })
    .unwrap();
    let token = worker.server().unwrap().unwrap().1;
    worker.set_server(&proxy.url(), &token).unwrap();
    let mut done = false;
    for _ in 0..40 {
        if worker.sync(&mut |_| {}).is_ok() && worker.photos_to_upload().unwrap().is_empty() {
            done = true;
            break;
        }
    }
    assert!(done, "the upload finished despite the cuts");
    let cuts = proxy.stats.cuts.load(Ordering::Relaxed);
    let up = proxy.stats.up.load(Ordering::Relaxed);
    assert!(cuts >= 2, "the proxy really cut ({cuts})");
    // Request bytes through the proxy: the photos once, at most one chunk per cut,
    // and per-request framing (HTTP headers, CBOR) for the changes and chunks.
    let budget = total + cuts * PHOTO_CHUNK_BYTES as u64 + 64 * 1024;
    assert!(
        up <= budget,
        "{up} bytes sent up for {total} bytes of photos and {cuts} cuts"
    );
}

#[test]
fn killing_the_device_mid_ingest_leaves_no_orphan_and_loses_no_acknowledged_photo() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("phone.db");
    let identity = gridsync_core::Identity {
        user: WORKER.parse().unwrap(),
        device: gridsync_core::DeviceId::random(),
    };
    drop(gridsync_core::Engine::open(&db, identity.clone()).unwrap());
    let photos_dir = dir.path().join("phone.db.photos");
    let mut acknowledged = Vec::new();
    for round in 0..4u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ingest_loop"))
            .arg(&db)
            .arg(identity.user.as_str())
            .arg(identity.device.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let a few photos through, then kill at a point that varies by round.
        for _ in 0..(2 + round) {
            let line = lines.next().unwrap().unwrap();
            let mut parts = line.split(' ');
            let hash: gridsync_core::PhotoHash = parts.next().unwrap().parse().unwrap();
            let thumb: gridsync_core::PhotoHash = parts.next().unwrap().parse().unwrap();
            acknowledged.push((hash, thumb));
        }
        std::thread::sleep(std::time::Duration::from_millis(7 * round));
        child.kill().unwrap();
        child.wait().unwrap();

        let engine = gridsync_core::Engine::open(&db, identity.clone()).unwrap();
        for (hash, thumb) in &acknowledged {
            assert!(engine.has_photo(hash).unwrap() && engine.has_photo(thumb).unwrap());
            // Reading checks the file against its hash.
            engine.photo(hash).unwrap();
            engine.photo(thumb).unwrap();
        }
        // After opening, every file on disk has its row: orphans and halves are gone.
        for entry in walk(&photos_dir) {
            let name = entry.file_name().unwrap().to_str().unwrap().to_owned();
            let hash: gridsync_core::PhotoHash = name
                .strip_suffix(".jpg")
                .unwrap_or_else(|| panic!("a leftover file {name}"))
                .parse()
                .unwrap();
            assert!(engine.has_photo(&hash).unwrap(), "{name} has no row");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(sub.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out
}

#[test]
fn knowing_a_photos_hash_is_no_way_to_read_it() {
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let stranger = relay.enroll("w-339901002001001", dir.path());
    let bytes = camera_jpeg();
    let mine = worker.ingest_photo(&bytes, None).unwrap();
    worker
        .report_case(gridsync_core::NewCase {
            photos: vec![mine.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync().unwrap();

    // The same picture (a forwarded file): same hash. Attaching it in another town
    // must not make the first case's photo readable there.
    let theirs = stranger.ingest_photo(&bytes, None).unwrap();
    assert_eq!(theirs.hash, mine.hash);
    stranger
        .report_case(gridsync_core::NewCase {
            photos: vec![theirs.hash.clone()],
            ..leak()
        })
        .unwrap();
    let r = stranger.sync().unwrap();
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(
        r.rejected[0].1,
        "a photo outside your scope cannot be attached"
    );
    // Asked directly (the stranger holds the bytes locally, so ask the relay).
    let body = gridsync_core::sync::wire::encode(&gridsync_core::sync::wire::BlobGetRequest {
        v: 1,
        hash: mine.thumb.clone(),
        offset: 0,
        max_bytes: 1 << 20,
    });
    match stranger
        .transport
        .post("/v1/blob/get", Some(&stranger.token), body)
    {
        Err(TransportError::Status { status: 404, .. }) => {}
        other => panic!("expected 404, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn unfinished_uploads_are_bounded_per_device_and_forgotten_when_stale() {
    use gridsync_core::sync::wire::{self, BlobPutRequest, BlobPutResponse};
    use gridsync_server::relay::{MAX_PARTIALS_PER_DEVICE, PARTIAL_DAYS};
    let relay = SimRelay::new();
    let dir = tempfile::tempdir().unwrap();
    let worker = relay.enroll(WORKER, dir.path());
    let photo = worker.ingest_photo(&camera_jpeg(), None).unwrap();
    let id = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    // The report goes up, its photo does not: a photo she may upload.
    for c in worker.changes_since(&id, &[]).unwrap() {
        crate::access::push_raw(&worker, &id, c.raw_bytes().to_vec());
    }
    let put = |total: u64, offset: u64, bytes: Vec<u8>| -> BlobPutResponse {
        let body = wire::encode(&BlobPutRequest {
            v: 1,
            hash: photo.hash.clone(),
            total,
            offset,
            bytes,
        });
        let answer = worker
            .transport
            .post("/v1/blob/put", Some(&worker.token), body)
            .expect("answered");
        wire::decode(&answer).unwrap()
    };
    let partials = relay.dir.path().join("blobs").join("partial");
    let count = || std::fs::read_dir(&partials).map_or(0, |d| d.count());

    // A rooted phone starts the same photo under ever another size, and never
    // finishes: each a partial of its own, up to a photo's 16 MiB.
    let started = 3 * MAX_PARTIALS_PER_DEVICE as u64;
    for total in 1_000..1_000 + started {
        assert_eq!(put(total, 0, vec![7u8; 100]).received, 100);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(count(), MAX_PARTIALS_PER_DEVICE, "the newest kept, no more");
    // The last started is among them: it goes on where it stopped.
    assert_eq!(put(1_000 + started - 1, 0, vec![7u8; 100]).received, 100);

    // Two weeks without a byte and the daily sweep forgets them, not one
    // started since.
    let stale = std::time::SystemTime::now()
        - std::time::Duration::from_secs((PARTIAL_DAYS + 1) * 24 * 3600);
    for entry in std::fs::read_dir(&partials).unwrap() {
        std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap()
            .set_modified(stale)
            .unwrap();
    }
    assert_eq!(put(5_000, 0, vec![7u8; 100]).received, 100);
    assert_eq!(
        relay
            .relay
            .sweep_partials(std::time::SystemTime::now())
            .unwrap(),
        MAX_PARTIALS_PER_DEVICE - 1
    );
    assert_eq!(count(), 1, "the fresh one stays");

    // The photo's own upload goes through as ever.
    let display = worker.photo(&photo.hash).unwrap();
    let mut done = None;
    for (i, chunk) in display.chunks(PHOTO_CHUNK_BYTES).enumerate() {
        done = Some(put(
            display.len() as u64,
            (i * PHOTO_CHUNK_BYTES) as u64,
            chunk.to_vec(),
        ));
    }
    assert!(done.is_some_and(|d| d.done), "the photo is stored");
}
