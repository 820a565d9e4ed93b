//! Photos: the capture pipeline (`gridsync_core::photo::process`, what
//! `Engine::ingest_photo` runs on a camera's bytes) and the relay's strict check
//! (`gridsync_core::jpeg::check_clean_jpeg`), from small valid JPEG, PNG and WebP.

use std::io::Cursor;

use gridsync_core::jpeg::check_clean_jpeg;
use gridsync_core::photo::{process, PhotoLimits};
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

use crate::engine::{fuzz, Target, Verdict};

/// The pipeline's code with limits scaled down, so a mutated header declaring a
/// large image costs milliseconds, not a second and hundreds of megabytes.
fn limits() -> PhotoLimits {
    PhotoLimits {
        max_file_bytes: 1 << 20,
        max_dimension: 1024,
        max_pixels: 1 << 20,
        max_alloc: 32 << 20,
        display_px: 96,
        thumb_px: 32,
        quality: 80,
    }
}

fn encoded(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn jpeg(img: &DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

fn gradient(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([(x * 17) as u8, (y * 29) as u8, ((x * y) % 251) as u8])
    }))
}

/// An EXIF segment with orientation 6, spliced after the JFIF header.
fn rotated(jpeg: &[u8]) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(((tiff.len() + 8) as u16).to_be_bytes());
    seg.extend(b"Exif\0\0");
    seg.extend(tiff);
    let mut out = jpeg[..20].to_vec();
    out.extend(seg);
    out.extend(&jpeg[20..]);
    out
}

fn progressive() -> Vec<u8> {
    include_bytes!("../../core/tests/fixtures/progressive.jpg").to_vec()
}

/// JPEG (baseline colour and grey, rotated by EXIF, progressive with restart
/// markers), PNG (RGB, RGBA, grey, grey+alpha, 16-bit) and lossless WebP.
fn pipeline_seeds() -> Vec<Vec<u8>> {
    let rgb = gradient(19, 11);
    let grey = DynamicImage::ImageLuma8(ImageBuffer::from_fn(9, 14, |x, y| Luma([(x * y) as u8])));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(7, 5, |x, y| {
        Rgba([x as u8 * 30, y as u8 * 40, 200, (x + y) as u8 * 20])
    }));
    let grey_alpha = DynamicImage::ImageLumaA8(ImageBuffer::from_fn(6, 6, |x, y| {
        LumaA([x as u8 * 40, y as u8 * 40])
    }));
    let deep = DynamicImage::ImageRgb16(ImageBuffer::from_fn(5, 4, |x, y| {
        Rgb([x as u16 * 9000, y as u16 * 12000, 40_000])
    }));
    vec![
        jpeg(&rgb, 85),
        jpeg(&grey, 60),
        rotated(&jpeg(&gradient(24, 12), 75)),
        progressive(),
        encoded(&rgb, ImageFormat::Png),
        encoded(&rgba, ImageFormat::Png),
        encoded(&grey, ImageFormat::Png),
        encoded(&grey_alpha, ImageFormat::Png),
        encoded(&deep, ImageFormat::Png),
        encoded(&rgba, ImageFormat::WebP),
        encoded(&rgb, ImageFormat::WebP),
    ]
}

/// JPEG markers and the heads of PNG and WebP chunks.
const TOKENS: &[&[u8]] = &[
    b"\xff\xd8",
    b"\xff\xd9",
    b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00",
    b"\xff\xc4",
    b"\xff\xdb",
    b"\xff\xdd\x00\x04\x00\x01",
    b"\xff\xd0",
    b"\xff\x00",
    b"\xff\xff",
    b"\xff\xc0\x00\x11\x08",
    b"\xff\xc2\x00\x11\x08",
    b"\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a",
    b"\xff\xe0\x00\x10JFIF\x00",
    b"\xff\xfe\x00\x04",
    b"IHDR",
    b"IDAT",
    b"IEND",
    b"PLTE",
    b"tRNS",
    b"acTL",
    b"RIFF",
    b"WEBP",
    b"VP8L",
    b"VP8X",
    b"VP8 ",
    b"ALPH",
];

#[test]
fn pipeline_seeds_are_photos_the_pipeline_takes() {
    for (i, seed) in pipeline_seeds().iter().enumerate() {
        if let Err(e) = process(seed, None, &limits()) {
            panic!("seed {i}: {e}");
        }
    }
}

#[test]
fn capture_pipeline() {
    let seeds = pipeline_seeds();
    let limits = limits();
    fuzz(Target {
        name: "photo-pipeline",
        max_len: 2 * seeds.iter().map(Vec::len).max().unwrap_or(0) + 256,
        seeds,
        tokens: TOKENS,
        max_iterations: 200_000,
        max_corpus: 64,
        mutator: None,
        run: &|bytes| {
            // The name changes which checks run (a file named as PNG holding a JPEG).
            let name = match bytes.len() % 4 {
                0 => Some("IMG_0001.JPG"),
                1 => Some("shot.png"),
                _ => None,
            };
            match process(bytes, name, &limits) {
                Ok(done) => {
                    // What the pipeline writes, the relay must take.
                    for r in [&done.display, &done.thumb] {
                        assert_eq!(
                            check_clean_jpeg(&r.bytes, limits.display_px),
                            Ok((r.width, r.height)),
                            "a rendition the pipeline made is refused by the relay's check"
                        );
                    }
                    Verdict::Accepted
                }
                Err(_) => Verdict::Refused,
            }
        },
    });
}

/// The relay's check from the pipeline's own renditions, the progressive fixture
/// and JPEGs carrying metadata (so mutations also reach the refusals' paths).
fn rendition_seeds() -> Vec<Vec<u8>> {
    let limits = PhotoLimits::default();
    let mut seeds = Vec::new();
    for img in [gradient(40, 30), gradient(9, 17)] {
        let done = process(&jpeg(&img, 90), None, &limits).unwrap();
        seeds.push(done.display.bytes);
        seeds.push(done.thumb.bytes);
    }
    seeds.push(progressive());
    seeds.push(rotated(&jpeg(&gradient(16, 8), 70)));
    let mut comment = jpeg(&gradient(8, 8), 70);
    comment.splice(20..20, b"\xff\xfe\x00\x0630.27".iter().copied());
    seeds.push(comment);
    seeds
}

#[test]
fn relay_jpeg_check() {
    let seeds = rendition_seeds();
    fuzz(Target {
        name: "jpeg-check",
        max_len: 2 * seeds.iter().map(Vec::len).max().unwrap_or(0) + 256,
        seeds,
        tokens: TOKENS,
        max_iterations: 1_000_000,
        max_corpus: 128,
        mutator: None,
        run: &|bytes| match check_clean_jpeg(bytes, 1600) {
            Ok((w, h)) => {
                assert!((1..=1600).contains(&w) && (1..=1600).contains(&h));
                // The end marker ends the file: one byte less or more is refused.
                assert!(check_clean_jpeg(&bytes[..bytes.len() - 1], 1600).is_err());
                assert!(check_clean_jpeg(&[bytes, &[0]].concat(), 1600).is_err());
                Verdict::Accepted
            }
            Err(_) => Verdict::Refused,
        },
    });
}
