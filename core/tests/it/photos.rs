//! The photo pipeline against what a camera — or an attacker — hands over: EXIF
//! with GPS and serials (checked with exiftool), rotation, bombs, truncated and
//! disguised files, HEIC; content addressing; crash leftovers.

use std::process::Command;

use gridsync_core::photo::{self, PhotoError, PhotoLimits};
use gridsync_core::{CaseFilter, Error};
use image::{ImageBuffer, Rgb};

use crate::support::*;

/// A JPEG of `w`×`h` with a gradient.
pub(crate) fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, y| Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, _| Rgb([x as u8, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An APP1 EXIF segment with orientation 6 (rotate 90° clockwise), a body serial
/// number and a GPS position — what a phone camera writes.
fn exif_app1() -> Vec<u8> {
    let mut t: Vec<u8> = b"II*\0".to_vec();
    t.extend(8u32.to_le_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
        t.extend(tag.to_le_bytes());
        t.extend(typ.to_le_bytes());
        t.extend(count.to_le_bytes());
        t.extend(value.to_le_bytes());
    };
    // IFD0 at 8: 3 entries → ends at 8 + 2 + 36 + 4 = 50.
    let exif_ifd = 50u32;
    let gps_ifd = exif_ifd + 2 + 12 + 4; // 68
    let serial_at = gps_ifd + 2 + 24 + 4; // 98
    let lat_at = serial_at + 12; // 110
    t.extend(3u16.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, 6); // Orientation = 6
    entry(&mut t, 0x8769, 4, 1, exif_ifd);
    entry(&mut t, 0x8825, 4, 1, gps_ifd);
    t.extend(0u32.to_le_bytes());
    // Exif IFD: BodySerialNumber.
    t.extend(1u16.to_le_bytes());
    entry(&mut t, 0xA431, 2, 12, serial_at);
    t.extend(0u32.to_le_bytes());
    // GPS IFD: GPSLatitudeRef "N", GPSLatitude 30/1 16/1 27/1.
    t.extend(2u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, lat_at);
    t.extend(0u32.to_le_bytes());
    assert_eq!(t.len() as u32, serial_at);
    t.extend(b"SN123456789\0");
    for (n, d) in [(30u32, 1u32), (16, 1), (27, 1)] {
        t.extend(n.to_le_bytes());
        t.extend(d.to_le_bytes());
    }
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(((t.len() + 8) as u16).to_be_bytes());
    seg.extend(b"Exif\0\0");
    seg.extend(t);
    seg
}

fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend(exif_app1());
    out.extend(&jpeg[2..]);
    out
}

fn exiftool(path: &std::path::Path) -> String {
    let out = Command::new("exiftool")
        .args(["-a", "-G1", "-s"])
        .arg(path)
        .output()
        .expect("exiftool is installed (scripts/test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gps_and_serials_never_survive_and_the_photo_is_turned_upright() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let original = with_exif(&jpeg(2400, 1800));
    let dir = tempfile::tempdir().unwrap();
    let orig_path = dir.path().join("camera.jpg");
    std::fs::write(&orig_path, &original).unwrap();
    let tags = exiftool(&orig_path);
    assert!(
        tags.contains("GPSLatitude"),
        "the fixture carries GPS:\n{tags}"
    );
    assert!(
        tags.contains("SerialNumber"),
        "the fixture carries a serial:\n{tags}"
    );

    let info = worker
        .ingest_photo(&original, Some("IMG_0001.JPG"))
        .unwrap();
    // Orientation 6: the 2400×1800 landscape sensor image is a portrait photo.
    assert_eq!((info.width, info.height), (1200, 1600));
    for hash in [&info.hash, &info.thumb] {
        let stored = dir.path().join(format!("{hash}.jpg"));
        std::fs::write(&stored, worker.photo(hash).unwrap()).unwrap();
        let tags = exiftool(&stored);
        for leaked in [
            "GPS",
            "SerialNumber",
            "Orientation",
            "XMP",
            "ThumbnailImage",
        ] {
            assert!(
                !tags.contains(leaked),
                "{leaked} survived in {hash}:\n{tags}"
            );
        }
    }
    let thumb = image::load_from_memory(&worker.photo(&info.thumb).unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (240, 320));
}

#[test]
fn hostile_files_are_refused_with_a_clear_reason() {
    let limits = PhotoLimits::default();
    // A PNG that declares 100,000 × 100,000 pixels (patched header, valid CRC).
    let mut bomb = png(8, 8);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        photo::process(&bomb, None, &limits),
        Err(PhotoError::TooLarge { .. })
    ));
    // A real image within the side limit but over the pixel limit.
    let small = PhotoLimits {
        max_pixels: 1_000_000,
        ..limits
    };
    let err = photo::process(&png(1200, 1000), None, &small).unwrap_err();
    assert!(
        matches!(
            err,
            PhotoError::TooLarge {
                width: 1200,
                height: 1000,
                ..
            }
        ),
        "{err}"
    );

    let good = jpeg(640, 480);
    let truncated = &good[..good.len() / 2];
    let err = photo::process(truncated, None, &limits).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    let png_cut = png(64, 64);
    assert!(matches!(
        photo::process(&png_cut[..png_cut.len() - 20], None, &limits),
        Err(PhotoError::Corrupt(_))
    ));
    let err = photo::process(&png(10, 10), Some("photo.jpg"), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the file is named as JPEG but its content is PNG"
    );
    let mut heic = vec![0, 0, 0, 24];
    heic.extend(b"ftypheic");
    heic.extend([0u8; 16]);
    let err = photo::process(&heic, Some("IMG.HEIC"), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported format: HEIC; take photos as JPEG, PNG or WebP"
    );
    assert!(matches!(
        photo::process(b"not a photo", None, &limits),
        Err(PhotoError::Unsupported(_))
    ));
    assert!(matches!(
        photo::process(b"", None, &limits),
        Err(PhotoError::Size(0, _))
    ));

    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    assert!(matches!(
        worker.ingest_photo(&bomb, None),
        Err(Error::Photo(_))
    ));
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn photos_are_stored_once_attached_by_hash_and_leftovers_are_swept() {
    let clock = TestClock::new();
    let worker = device(WORKER, &clock);
    let bytes = jpeg(1000, 800);
    let a = worker.ingest_photo(&bytes, None).unwrap();
    let b = worker.ingest_photo(&bytes, None).unwrap();
    assert_eq!(a, b, "the same photo is stored once");

    let mut input = leak_case();
    input.photos = vec![a.hash.clone()];
    let id = worker.report_case(input).unwrap();
    let case = worker.get_case(&id).unwrap();
    assert_eq!(case.doc.photos[0].thumb.as_ref(), Some(&a.thumb));
    assert_eq!(
        (case.doc.photos[0].width, case.doc.photos[0].height),
        (1000, 800)
    );
    assert_eq!(
        worker.list_cases(&CaseFilter::default()).unwrap()[0].photo_count,
        1
    );
    let unknown = "0".repeat(64).parse().unwrap();
    assert!(matches!(
        worker.attach_photo(&id, unknown),
        Err(Error::NotFound { what: "photo", .. })
    ));

    // What a crash between file and row, or mid-write, leaves behind is swept on
    // open. The interrupted work left its note (taken before the files, never
    // cleared); a clean open finds no note and does not walk the folder.
    let folder = worker.path().with_file_name("device.db.photos");
    let blobs = gridsync_core::blobs::Blobs::for_db(&worker.path());
    let note = blobs.note_unswept().unwrap();
    let stray = folder.join("ab").join(format!("{}.jpg", "ab".repeat(32)));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"orphan").unwrap();
    let tmp = folder.join("ab").join(".tmp-half-written");
    std::fs::write(&tmp, b"half").unwrap();
    drop(note);
    assert!(blobs.sweep_noted());
    let worker = worker.reopen(&clock);
    assert!(!stray.exists() && !tmp.exists());
    assert!(!blobs.sweep_noted(), "the sweep settles the notes");
    assert!(!worker.photo(&a.hash).unwrap().is_empty());
    assert!(!worker.photo(&a.thumb).unwrap().is_empty());
}
