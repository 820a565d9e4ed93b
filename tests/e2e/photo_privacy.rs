//! The photo privacy promise against a modified app: whatever bytes a device uploads
//! under a hash its case refers to, the relay stores only stripped JPEGs. A grid
//! worker's app is bypassed — the case is made to refer to photos carrying GPS, a
//! camera serial, an embedded thumbnail, XMP, IPTC, a comment, a trailer or bytes
//! hidden after the image data, and their bytes are sent in hand-built
//! `/v1/blob/put` requests — against the real `gridsync serve`. Each is refused with
//! its reason, the app's own path still works, and exiftool finds nothing but pixels
//! and the JFIF header in any file of the relay's photo folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use gridsync_core::sync::{HttpTransport, Transport, TransportError};
use gridsync_core::{Engine, PhotoInfo};
use serde::{Deserialize, Serialize, Serializer};

use crate::sockets::{enroll, start};
use crate::workflow::{leak, DISPATCHER, WORKER};

/// The wire messages as a modified app would write them from `docs/protocol.md`,
/// not through the app's client.
mod wire {
    use super::*;

    /// A CBOR byte string.
    pub struct Bytes<'a>(pub &'a [u8]);

    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[derive(Serialize)]
    pub struct Push<'a> {
        pub v: u32,
        pub changes: Vec<Change<'a>>,
    }

    #[derive(Serialize)]
    pub struct Change<'a> {
        pub doc: String,
        pub bytes: Bytes<'a>,
    }

    #[derive(Deserialize)]
    pub struct PushAnswer {
        pub results: Vec<Verdict>,
    }

    #[derive(Deserialize, Debug)]
    pub struct Verdict {
        pub status: String,
        #[serde(default)]
        #[allow(dead_code)] // shown when a push is not accepted
        pub reason: Option<String>,
    }

    #[derive(Serialize)]
    pub struct BlobPut<'a> {
        pub v: u32,
        pub hash: String,
        pub total: u64,
        pub offset: u64,
        pub bytes: Bytes<'a>,
    }

    #[derive(Deserialize, Debug)]
    pub struct BlobPutAnswer {
        pub received: u64,
        pub done: bool,
    }

    #[derive(Serialize)]
    pub struct BlobGet {
        pub v: u32,
        pub hash: String,
        pub offset: u64,
        pub max_bytes: u64,
    }

    #[derive(Deserialize, Debug)]
    pub struct ErrorBody {
        pub error: String,
        pub message: String,
    }
}

/// Run exiftool; its `-a -G1 -s` listing (group, tag, value per line).
fn exiftool(args: &[&str], file: &Path) -> String {
    let out = Command::new("exiftool")
        .args(args)
        .arg(file)
        .output()
        .expect("exiftool is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "exiftool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tags(file: &Path) -> String {
    exiftool(&["-a", "-G1", "-s"], file)
}

/// `clean` with what exiftool writes for `args` (a camera's or an editor's
/// metadata), checked to be there.
fn with_exiftool(dir: &Path, name: &str, clean: &[u8], args: &[&str], carries: &[&str]) -> Vec<u8> {
    let path = dir.join(format!("{name}.jpg"));
    std::fs::write(&path, clean).unwrap();
    let mut all = vec!["-q", "-overwrite_original"];
    all.extend(args);
    exiftool(&all, &path);
    let listing = tags(&path);
    for tag in carries {
        assert!(
            listing.contains(tag),
            "the {name} fixture carries {tag}:\n{listing}"
        );
    }
    std::fs::read(&path).unwrap()
}

/// The end of the JFIF header the image crate writes (SOI + a 16-byte APP0).
const AFTER_APP0: usize = 20;

/// `clean` with its JFIF header replaced by one declaring a 2×1 thumbnail.
fn with_jfif_thumbnail(clean: &[u8]) -> Vec<u8> {
    assert_eq!(&clean[6..11], b"JFIF\0");
    let mut out = clean[..2].to_vec();
    let mut body = clean[6..18].to_vec();
    body.extend([2, 1, 255, 0, 0, 0, 255, 0]);
    out.extend([0xFF, 0xE0]);
    out.extend(((body.len() + 2) as u16).to_be_bytes());
    out.extend(body);
    out.extend(&clean[AFTER_APP0..]);
    out
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// exiftool groups a stripped JPEG may show: exiftool's own, the file system's,
/// the JPEG's structure, the JFIF header and what exiftool derives from those.
const ALLOWED_GROUPS: [&str; 5] = ["ExifTool", "System", "File", "JFIF", "Composite"];
/// Tags that would give away where, with what or by whom a photo was taken.
const LEAKS: [&str; 8] = [
    "GPS",
    "Serial",
    "Thumbnail",
    "Comment",
    "Make",
    "Model",
    "ExifByteOrder",
    "IPTC",
];

/// What exiftool lists in `file` that a stripped photo must not carry.
fn leaks(file: &Path) -> Vec<String> {
    tags(file)
        .lines()
        .filter(|line| {
            let group = line
                .strip_prefix('[')
                .and_then(|l| l.split_once(']'))
                .map(|(g, _)| g)
                .unwrap_or("");
            let tag = line
                .split_once(']')
                .map(|(_, rest)| rest.trim_start())
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or("");
            !ALLOWED_GROUPS.contains(&group) || LEAKS.iter().any(|l| tag.contains(l))
        })
        .map(str::to_owned)
        .collect()
}

struct Modified<'a> {
    http: HttpTransport,
    token: String,
    worker: &'a Engine,
}

impl Modified<'_> {
    fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, (u16, wire::ErrorBody)> {
        match self.http.post(
            path,
            Some(&self.token),
            gridsync_core::sync::wire::encode(body),
        ) {
            Ok(answer) => Ok(gridsync_core::sync::wire::decode(&answer).unwrap()),
            Err(TransportError::Status { status, body }) => {
                Err((status, gridsync_core::sync::wire::decode(&body).unwrap()))
            }
            Err(other) => panic!("{path}: {other}"),
        }
    }

    /// Make a new case refer to `bytes` as its photo, as the relay requires before
    /// taking an upload: the case goes up through the app, then a change drafted in
    /// the worker's name is pushed directly. (A case of its own for each photo:
    /// the device never receives its own pushes back, so a second draft on the
    /// same case would reuse the first one's sequence number.)
    fn attach(&self, bytes: &[u8]) -> gridsync_core::PhotoHash {
        let id = self.worker.report_case(leak()).unwrap();
        self.worker.sync(&mut |_| {}).unwrap();
        let id = &id;
        let hash = gridsync_core::photo::hash_of(bytes);
        let change = self
            .worker
            .draft_photo(
                self.worker.identity(),
                id,
                &PhotoInfo {
                    hash: hash.clone(),
                    thumb: hash.clone(),
                    width: 800,
                    height: 600,
                },
            )
            .unwrap();
        let answer: wire::PushAnswer = self
            .post(
                "/v1/push",
                &wire::Push {
                    v: 1,
                    changes: vec![wire::Change {
                        doc: id.to_string(),
                        bytes: wire::Bytes(&change),
                    }],
                },
            )
            .unwrap_or_else(|(status, e)| panic!("push answered {status}: {e:?}"));
        assert_eq!(answer.results.len(), 1);
        assert!(
            answer.results[0].status == "accepted",
            "the reference is accepted (only the bytes are checked): {:?}",
            answer.results[0]
        );
        hash
    }

    /// Upload `bytes` in one hand-built chunk.
    fn put(
        &self,
        hash: &gridsync_core::PhotoHash,
        bytes: &[u8],
    ) -> Result<wire::BlobPutAnswer, (u16, wire::ErrorBody)> {
        self.post(
            "/v1/blob/put",
            &wire::BlobPut {
                v: 1,
                hash: hash.to_string(),
                total: bytes.len() as u64,
                offset: 0,
                bytes: wire::Bytes(bytes),
            },
        )
    }

    /// Whether the relay hands out anything for `hash`.
    fn stored(&self, hash: &gridsync_core::PhotoHash) -> bool {
        self.post::<serde::de::IgnoredAny>(
            "/v1/blob/get",
            &wire::BlobGet {
                v: 1,
                hash: hash.to_string(),
                offset: 0,
                max_bytes: 1,
            },
        )
        .is_ok()
    }
}

#[test]
fn the_relay_stores_no_photo_carrying_metadata_whatever_a_modified_app_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());

    // What the camera hands the app: GPS, a serial and a thumbnail in EXIF.
    let thumbnail = dir.path().join("thumbnail.jpg");
    std::fs::write(
        &thumbnail,
        crate::photos::noisy_jpeg(0x5eed_0003, 160, 120, 80),
    )
    .unwrap();
    let clean = crate::photos::noisy_jpeg(0x5eed_0001, 800, 600, 90);
    let camera = with_exiftool(
        dir.path(),
        "camera",
        &clean,
        &[
            "-GPSLatitude=30.2741",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=120.1551",
            "-GPSLongitudeRef=E",
            "-Make=Huawei",
            "-Model=P60",
            "-ExifIFD:SerialNumber=SN123456789",
            &format!("-ThumbnailImage<={}", thumbnail.display()),
        ],
        &["GPSLatitude", "SerialNumber", "ThumbnailImage"],
    );

    // The app's path: the pipeline strips it, the photo goes up with its case.
    let photo = worker.ingest_photo(&camera, Some("IMG_0001.JPG")).unwrap();
    let id = worker
        .report_case(gridsync_core::NewCase {
            photos: vec![photo.hash.clone()],
            ..leak()
        })
        .unwrap();
    worker.sync(&mut |_| {}).unwrap();
    assert!(worker.photos_to_upload().unwrap().is_empty());

    // A modified app sends the camera's bytes, and others, unstripped.
    let token = worker.server().unwrap().unwrap().1;
    let app = Modified {
        http: HttpTransport::new(&server.url),
        token,
        worker: &worker,
    };
    let mut trailer = clean.clone();
    trailer.extend(b"MotionPhoto_Data\0\0\0\x18ftypmp42 30.2741N 120.1551E");
    let mut hidden = clean[..clean.len() - 2].to_vec();
    hidden.extend(b"SN123456789 30.2741N 120.1551E");
    hidden.extend([0xFF, 0xD9]);
    let variants: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "EXIF GPS, serial and thumbnail",
            camera.clone(),
            "EXIF metadata (APP1)",
        ),
        (
            "XMP",
            with_exiftool(
                dir.path(),
                "xmp",
                &clean,
                &["-XMP:GPSLatitude=30.2741", "-XMP:GPSLongitude=120.1551"],
                &["XMP-exif", "GPSLatitude"],
            ),
            "XMP metadata (APP1)",
        ),
        (
            "IPTC",
            with_exiftool(
                dir.path(),
                "iptc",
                &clean,
                &["-IPTC:City=Hangzhou", "-IPTC:By-line=w-339901001001001"],
                &["[IPTC]"],
            ),
            "IPTC/Photoshop metadata (APP13)",
        ),
        (
            "comment",
            with_exiftool(
                dir.path(),
                "comment",
                &clean,
                &["-Comment=30.2741N 120.1551E"],
                &["Comment"],
            ),
            "a comment (COM)",
        ),
        (
            "JFIF thumbnail",
            with_jfif_thumbnail(&clean),
            "an embedded JFIF thumbnail (APP0)",
        ),
        ("trailer", trailer, "follow the end of the image"),
        (
            "bytes after the image data",
            hidden,
            "bytes after the last block",
        ),
    ];
    // Every outcome is gathered first, so a failure shows all of them and what
    // exiftool then finds in the relay's folder.
    let mut refusals = 0;
    let mut wrong = Vec::new();
    for (name, bytes, reason) in &variants {
        let hash = app.attach(bytes);
        match app.put(&hash, bytes) {
            Err((400, e)) if e.error == "bad_request" && e.message.contains(reason) => {
                refusals += 1;
            }
            Err((status, e)) => wrong.push(format!(
                "{name}: refused with {status} {e:?}, not for {reason:?}"
            )),
            Ok(answer) => wrong.push(format!(
                "{name}: stored although sent unstripped ({} bytes, done: {})",
                answer.received, answer.done
            )),
        }
        if app.stored(&hash) {
            wrong.push(format!("{name}: served by the relay"));
        }
    }

    // The app's path still works: another photo, stripped, reaches the dispatcher.
    let second = worker
        .ingest_photo(
            &crate::photos::noisy_jpeg(0x5eed_0002, 640, 480, 90),
            Some("IMG_0002.JPG"),
        )
        .unwrap();
    worker.attach_photo(&id, second.hash.clone()).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    assert!(worker.photos_to_upload().unwrap().is_empty());
    dispatcher.sync(&mut |_| {}).unwrap();
    for hash in [&photo.hash, &photo.thumb, &second.hash, &second.thumb] {
        dispatcher.fetch_photo(hash).unwrap();
        assert_eq!(dispatcher.photo(hash).unwrap(), worker.photo(hash).unwrap());
    }

    // Every file in the relay's photo folder, partial uploads included.
    let stored = files(&data.join("blobs"));
    let mut leaked = Vec::new();
    for file in &stored {
        for line in leaks(file) {
            leaked.push(format!("{}: {line}", file.display()));
        }
    }
    let photos = stored
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jpg"))
        .count();
    println!(
        "{}",
        serde_json::json!({
            "test": "photo_privacy",
            "variants": variants.len(),
            "refusals": refusals,
            "files_scanned": stored.len(),
            "photos_stored": photos,
            "leaks": leaked.len(),
        })
    );
    assert!(
        wrong.is_empty() && leaked.is_empty(),
        "uploads not refused as they should be:\n{wrong:#?}\nmetadata in stored photos:\n{leaked:#?}"
    );
    assert_eq!(refusals, variants.len());
    assert_eq!(
        photos, 4,
        "two display images and two thumbnails: {stored:?}"
    );
}
