//! The photo capture pipeline: decode under hard limits set before any pixel is
//! allocated, apply the EXIF orientation, and re-encode a display-size JPEG and a
//! thumbnail. Re-encoding writes pixels only, so every piece of metadata of the
//! original (GPS, camera serials, XMP, embedded thumbnails) is left behind: a
//! photo's location belongs in the case document, not in the file.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::ids::PhotoHash;

/// Hard limits on what a phone's camera may hand over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Largest file accepted.
    pub max_file_bytes: usize,
    /// Largest width or height, as declared in the header (checked before decoding).
    pub max_dimension: u32,
    /// Most pixels (width × height) decoded.
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate.
    pub max_alloc: u64,
    /// Long side of the display image.
    pub display_px: u32,
    /// Long side of the thumbnail.
    pub thumb_px: u32,
    /// JPEG quality of both outputs.
    pub quality: u8,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits {
            max_file_bytes: 40 * 1024 * 1024,
            max_dimension: 12_000,
            max_pixels: 64_000_000,
            max_alloc: 512 * 1024 * 1024,
            display_px: 1600,
            thumb_px: 320,
            quality: 82,
        }
    }
}

/// Why a photo was refused. Says what was wrong, never what the photo shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// Empty or larger than the limit.
    #[error("the photo file is {0} bytes; it must be between 1 byte and the limit of {1}")]
    Size(usize, usize),
    /// A format the pipeline does not take (HEIC, GIF, TIFF, or not an image).
    #[error("unsupported format: {0}; take photos as JPEG, PNG or WebP")]
    Unsupported(String),
    /// The file's name says one format, its content another.
    #[error("the file is named as {named} but its content is {actual}")]
    Disguised {
        /// What the name says.
        named: String,
        /// What the content is.
        actual: String,
    },
    /// Declared dimensions beyond the limits (a decompression bomb, or a panorama).
    #[error("the image declares {width}×{height} pixels; the limit is {max_dimension} px a side and {max_pixels} pixels")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Limit per side.
        max_dimension: u32,
        /// Limit on pixels.
        max_pixels: u64,
    },
    /// Truncated or corrupt.
    #[error("the image cannot be decoded: {0}")]
    Corrupt(String),
}

/// One stored rendition of a photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// SHA-256 of `bytes`.
    pub hash: PhotoHash,
    /// JPEG bytes, without metadata.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What the pipeline makes of one photo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// The display image.
    pub display: Rendition,
    /// The thumbnail.
    pub thumb: Rendition,
}

fn format_name(f: ImageFormat) -> String {
    format!("{f:?}").to_uppercase()
}

/// The format a file name claims, if it claims one we know.
pub fn format_from_name(name: &str) -> Option<ImageFormat> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "heic" | "heif" => None,
        _ => ImageFormat::from_extension(ext),
    }
}

fn is_heic(bytes: &[u8]) -> bool {
    bytes.len() > 12
        && &bytes[4..8] == b"ftyp"
        && matches!(
            &bytes[8..12],
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1"
        )
}

/// Run the pipeline on a photo's bytes. `name`, when given, must agree with the
/// content.
pub fn process(
    bytes: &[u8],
    name: Option<&str>,
    limits: &PhotoLimits,
) -> Result<Processed, PhotoError> {
    if bytes.is_empty() || bytes.len() > limits.max_file_bytes {
        return Err(PhotoError::Size(bytes.len(), limits.max_file_bytes));
    }
    if is_heic(bytes) {
        return Err(PhotoError::Unsupported("HEIC".into()));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| PhotoError::Unsupported("not a recognised image".into()))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(PhotoError::Unsupported(format_name(format)));
    }
    if let Some(named) = name.and_then(format_from_name) {
        if named != format {
            return Err(PhotoError::Disguised {
                named: format_name(named),
                actual: format_name(format),
            });
        }
    }
    // The JPEG decoder fills a cut-off file with grey rather than failing.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(PhotoError::Corrupt(
            "the JPEG file is truncated (its image data has no end marker)".into(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_dimension);
    decoder_limits.max_image_height = Some(limits.max_dimension);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let too_large = |(width, height): (u32, u32)| PhotoError::TooLarge {
        width,
        height,
        max_dimension: limits.max_dimension,
        max_pixels: limits.max_pixels,
    };
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => PhotoError::TooLarge {
            width: 0,
            height: 0,
            max_dimension: limits.max_dimension,
            max_pixels: limits.max_pixels,
        },
        other => PhotoError::Corrupt(other.to_string()),
    })?;
    // The declared size is checked before a single pixel buffer exists.
    let (w, h) = decoder.dimensions();
    if w == 0
        || h == 0
        || w > limits.max_dimension
        || h > limits.max_dimension
        || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(too_large((w, h)));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large((w, h)),
        other => PhotoError::Corrupt(other.to_string()),
    })?;
    // Scale first, then turn: turning the full-size image would double the peak
    // memory. `fit` bounds both sides, so the order does not change the result.
    let mut display = fit(&img, limits.display_px);
    drop(img);
    display.apply_orientation(orientation);
    let thumb = fit(&display, limits.thumb_px);
    Ok(Processed {
        display: encode(&display, limits.quality)?,
        thumb: encode(&thumb, limits.quality)?,
    })
}

/// Whether a JPEG's image data is followed by its end-of-image marker. Walks the
/// segments from the start, skipping metadata (whose embedded thumbnails have markers
/// of their own), to the first scan; data appended after the end marker (camera
/// trailers, motion-photo videos) is allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if marker == 0xDA {
            // Entropy-coded data escapes 0xFF, so the first FF D9 after the first scan
            // header ends the image (progressive images have more scans before it).
            return bytes[i + 2 + len.min(bytes.len() - i - 2)..]
                .windows(2)
                .any(|w| w == [0xFF, 0xD9]);
        }
        i += 2 + len;
    }
    false
}

/// Scale down so the long side is at most `px` (never up). Area averaging: every
/// source pixel counts once, which is what a large downscale wants, and fast.
fn fit(img: &DynamicImage, px: u32) -> DynamicImage {
    if img.width().max(img.height()) <= px {
        return img.clone();
    }
    img.thumbnail(px, px)
}

fn encode(img: &DynamicImage, quality: u8) -> Result<Rendition, PhotoError> {
    let converted;
    let rgb = match img.as_rgb8() {
        Some(rgb) => rgb,
        None => {
            converted = img.to_rgb8();
            &converted
        }
    };
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(rgb)
        .map_err(|e| PhotoError::Corrupt(e.to_string()))?;
    Ok(Rendition {
        hash: hash_of(&bytes),
        bytes,
        width: rgb.width(),
        height: rgb.height(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes` as a photo hash (used to verify blobs received from elsewhere).
pub fn hash_of(bytes: &[u8]) -> PhotoHash {
    // 64 lowercase hex digits always parse.
    hex(&Sha256::digest(bytes))
        .parse()
        .expect("a SHA-256 in hex is a PhotoHash")
}
