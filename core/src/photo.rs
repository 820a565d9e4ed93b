//! The photo capture pipeline: decode under hard limits set before any pixel is
//! allocated, apply the EXIF orientation, and re-encode a display-size JPEG and a
//! thumbnail. Re-encoding writes pixels only, so every piece of metadata of the
//! original (GPS, camera serials, XMP, embedded thumbnails) is left behind: a
//! photo's location belongs in the case document, not in the file.

use std::io::Cursor;

use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use sha2::{Digest, Sha256};

use crate::ids::PhotoHash;

/// What the display image of a typical scene (a street, a stairwell, a notice on a
/// wall, shot by a phone at 12 MP) should weigh at most: 200 KiB is 6 s on a 32 KB/s
/// link and under a minute at 4 KB/s, sent in chunks of about 5 s of the link each.
/// A 1600 px JPEG at the default quality (82, 4:2:0 chroma, Huffman tables fitted to
/// the image) stays within it; noise, foliage or gravel in every pixel can go past it
/// (`gridsync bench photo` prints both).
pub const DISPLAY_BUDGET_BYTES: usize = 200 * 1024;

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
    // A JPEG is decoded straight at the scale the display image needs; anything the
    // scaled decoder does not take (CMYK, lossless, 12-bit, or a file it finds
    // corrupt) goes the general way, which then decides.
    let scaled = match format {
        ImageFormat::Jpeg => decode_jpeg_scaled(bytes, limits)?,
        _ => None,
    };
    let (pixels, orientation) = match scaled {
        Some(decoded) => decoded,
        None => decode_any(bytes, format, limits)?,
    };
    // Scale first, then turn: turning the larger image would cost more time and
    // memory. `fit` bounds both sides, so the order does not change the result.
    let display = match fit(&pixels, limits.display_px)? {
        Some(smaller) => smaller,
        None => pixels,
    };
    let display = orient(display, orientation);
    let thumb = fit(&display, limits.thumb_px)?;
    Ok(Processed {
        thumb: encode(thumb.as_ref().unwrap_or(&display), limits.quality)?,
        display: encode(&display, limits.quality)?,
    })
}

fn too_large(limits: &PhotoLimits, (width, height): (u32, u32)) -> PhotoError {
    PhotoError::TooLarge {
        width,
        height,
        max_dimension: limits.max_dimension,
        max_pixels: limits.max_pixels,
    }
}

/// The declared size against the limits, before a single pixel buffer exists.
fn check_size(limits: &PhotoLimits, (w, h): (u32, u32)) -> Result<(), PhotoError> {
    if w == 0
        || h == 0
        || w > limits.max_dimension
        || h > limits.max_dimension
        || u64::from(w) * u64::from(h) > limits.max_pixels
    {
        return Err(too_large(limits, (w, h)));
    }
    Ok(())
}

/// A JPEG decoded in the DCT domain at the smallest of 1/1, 1/2, 1/4 and 1/8 that
/// still gives the display image its long side (a 4000×3000 photo decodes to
/// 2000×1500 for a 1600 px display: a quarter of the pixels to reconstruct, convert
/// and hold). `None` when this decoder cannot take the file; the limits are checked
/// on the header all the same, and a refusal for them is final.
fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: &PhotoLimits,
) -> Result<Option<(RgbImage, Orientation)>, PhotoError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_size(limits, (w, h))?;
    let channels: u64 = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => 3,
        jpeg_decoder::PixelFormat::L8 => 1,
        // CMYK and 16-bit grey: rare from a camera, left to the general decoder.
        _ => return Ok(None),
    };
    let px = u16::try_from(limits.display_px).unwrap_or(u16::MAX);
    let Ok((sw, sh)) = decoder.scale(px, px) else {
        return Ok(None);
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    // What the decoder holds at once: its planes and its output at the scaled size,
    // the RGB image made from them, and for a progressive file every coefficient of
    // the full-size image (two bytes each, at most one per pixel and channel).
    let coefficients = match info.coding_process {
        jpeg_decoder::CodingProcess::DctProgressive => {
            (u64::from(w) + 15) * (u64::from(h) + 15) * channels * 2
        }
        _ => 0,
    };
    let alloc = u64::from(sw) * u64::from(sh) * (2 * channels + 3) + coefficients;
    if alloc > limits.max_alloc {
        return Err(too_large(limits, (w, h)));
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    let Ok(raw) = decoder.decode() else {
        return Ok(None);
    };
    let rgb = if channels == 1 {
        raw.iter().flat_map(|&l| [l, l, l]).collect()
    } else {
        raw
    };
    let Some(pixels) = RgbImage::from_raw(sw, sh, rgb) else {
        return Ok(None);
    };
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Ok(Some((pixels, orientation)))
}

/// Any accepted format through the `image` crate, full size, under its limits. A
/// colour type other than 8-bit RGB is brought to the display size in its own type
/// first, so a large 16-bit or RGBA image is never converted whole.
fn decode_any(
    bytes: &[u8],
    format: ImageFormat,
    limits: &PhotoLimits,
) -> Result<(RgbImage, Orientation), PhotoError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_dimension);
    decoder_limits.max_image_height = Some(limits.max_dimension);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(limits, (0, 0)),
        other => PhotoError::Corrupt(other.to_string()),
    })?;
    let (w, h) = decoder.dimensions();
    check_size(limits, (w, h))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(limits, (w, h)),
        other => PhotoError::Corrupt(other.to_string()),
    })?;
    let rgb = match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other if other.width().max(other.height()) > limits.display_px => other
            .thumbnail(limits.display_px, limits.display_px)
            .into_rgb8(),
        other => other.into_rgb8(),
    };
    Ok((rgb, orientation))
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

/// The size with the long side at most `px` and the proportions kept (never up).
fn fit_size((w, h): (u32, u32), px: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= px {
        return (w, h);
    }
    let scaled = |side: u32| {
        let s = (u64::from(side) * u64::from(px) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(s).unwrap_or(px).max(1)
    };
    (scaled(w), scaled(h))
}

/// Scale down so the long side is at most `px`; `None` when it already is. A
/// bilinear filter stretched over the scale (every source pixel weighs in, so a
/// large downscale does not alias), with SIMD where the CPU has it: the display
/// image is looked at on a phone, and this is a tenth of the time of `image`'s.
fn fit(img: &RgbImage, px: u32) -> Result<Option<RgbImage>, PhotoError> {
    let (w, h) = fit_size(img.dimensions(), px);
    if (w, h) == img.dimensions() {
        return Ok(None);
    }
    let failed = |e: &dyn std::fmt::Display| PhotoError::Corrupt(format!("resize: {e}"));
    let src = fir::images::ImageRef::new(
        img.width(),
        img.height(),
        img.as_raw(),
        fir::PixelType::U8x3,
    )
    .map_err(|e| failed(&e))?;
    let mut dst = fir::images::Image::new(w, h, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| failed(&e))?;
    RgbImage::from_raw(w, h, dst.into_vec())
        .map(Some)
        .ok_or_else(|| failed(&"the resized image has the wrong size"))
}

/// Turn the image upright as its EXIF orientation says.
fn orient(img: RgbImage, orientation: Orientation) -> RgbImage {
    if orientation == Orientation::NoTransforms {
        return img;
    }
    let mut img = DynamicImage::ImageRgb8(img);
    img.apply_orientation(orientation);
    img.into_rgb8()
}

/// Baseline JPEG, 4:2:0 below quality 90, the standard's Huffman tables, a plain
/// JFIF header and nothing else: the pixels are all that is written. Tables fitted to
/// the image would save about a tenth, but zune-jpeg 0.5 (the `image` crate's JPEG
/// decoder, the relay's among others) decodes this encoder's fitted 4:2:0 tables into
/// wrong colours, where libjpeg-turbo and jpeg-decoder get them right.
fn encode(img: &RgbImage, quality: u8) -> Result<Rendition, PhotoError> {
    let failed = |e: &dyn std::fmt::Display| PhotoError::Corrupt(format!("encode: {e}"));
    let side = |n: u32| u16::try_from(n).map_err(|e| failed(&e));
    let (w, h) = (side(img.width())?, side(img.height())?);
    let mut bytes = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut bytes, quality);
    encoder
        .encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| failed(&e))?;
    Ok(Rendition {
        hash: hash_of(&bytes),
        bytes,
        width: img.width(),
        height: img.height(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::check_clean_jpeg;

    /// A camera-like JPEG of `w`×`h`: red on the left half, blue on the right, so a
    /// turn shows where the left edge went.
    fn camera(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            let shade = (y % 64) as u8;
            if x < w / 2 {
                image::Rgb([220, shade, shade])
            } else {
                image::Rgb([shade, shade, 220])
            }
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// `jpeg` with an APP1 EXIF segment right after SOI: orientation `orientation`,
    /// and a GPS position (30°16'27" N).
    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut t: Vec<u8> = b"II*\0".to_vec();
        t.extend(8u32.to_le_bytes());
        let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
            t.extend(tag.to_le_bytes());
            t.extend(typ.to_le_bytes());
            t.extend(count.to_le_bytes());
            t.extend(value.to_le_bytes());
        };
        // IFD0 at 8 with 2 entries ends at 8 + 2 + 24 + 4 = 38; the GPS IFD there
        // (2 entries) ends at 38 + 2 + 24 + 4 = 68, where its latitude is.
        t.extend(2u16.to_le_bytes());
        entry(&mut t, 0x0112, 3, 1, u32::from(orientation));
        entry(&mut t, 0x8825, 4, 1, 38);
        t.extend(0u32.to_le_bytes());
        t.extend(2u16.to_le_bytes());
        entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
        entry(&mut t, 0x0002, 5, 3, 68);
        t.extend(0u32.to_le_bytes());
        for (n, d) in [(30u32, 1u32), (16, 1), (27, 1)] {
            t.extend(n.to_le_bytes());
            t.extend(d.to_le_bytes());
        }
        let mut body = b"Exif\0\0".to_vec();
        body.extend(t);
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(u16::try_from(body.len() + 2).unwrap().to_be_bytes());
        out.extend(body);
        out.extend(&jpeg[2..]);
        out
    }

    /// `jpeg` with the size its frame header declares replaced.
    fn declaring(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
        let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
        let mut out = jpeg.to_vec();
        out[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        out[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        out
    }

    fn decoded(r: &Rendition) -> RgbImage {
        image::load_from_memory(&r.bytes).unwrap().into_rgb8()
    }

    #[test]
    fn a_12_megapixel_photo_held_upright_comes_out_turned_at_display_size_without_metadata() {
        let limits = PhotoLimits::default();
        let original = with_exif(&camera(4000, 3000), 6);
        assert!(original.windows(4).any(|w| w == b"Exif"));
        let done = process(&original, Some("IMG_0001.JPG"), &limits).unwrap();
        // Orientation 6: the sensor's 4000×3000 landscape is a portrait photo.
        assert_eq!((done.display.width, done.display.height), (1200, 1600));
        assert_eq!((done.thumb.width, done.thumb.height), (240, 320));
        // Turned a quarter clockwise: the sensor's left half (red) is now on top.
        for (r, (w, h)) in [(&done.display, (1200, 1600)), (&done.thumb, (240, 320))] {
            let img = decoded(r);
            assert_eq!(img.dimensions(), (w, h));
            let top = img.get_pixel(w / 2, h / 8);
            let bottom = img.get_pixel(w / 2, h - h / 8);
            assert!(top[0] > 180 && top[2] < 100, "top is {top:?}");
            assert!(bottom[2] > 180 && bottom[0] < 100, "bottom is {bottom:?}");
            // Pixels only: the relay's strict check finds no segment beyond what
            // an encoder needs, so no EXIF, GPS or orientation tag.
            assert_eq!(check_clean_jpeg(&r.bytes, limits.display_px), Ok((w, h)));
            assert!(!r.bytes.windows(4).any(|w| w == b"Exif"));
        }
        // Without EXIF the same photo stays landscape.
        let done = process(&camera(4000, 3000), None, &limits).unwrap();
        assert_eq!((done.display.width, done.display.height), (1600, 1200));
        assert!(done.display.bytes.len() < done.display.width as usize * 1200);
    }

    #[test]
    fn every_exif_orientation_is_applied() {
        let limits = PhotoLimits::default();
        let jpeg = camera(2400, 1200);
        for orientation in 1..=8u16 {
            let done = process(&with_exif(&jpeg, orientation), None, &limits).unwrap();
            let turned = orientation >= 5;
            let size = if turned { (800, 1600) } else { (1600, 800) };
            assert_eq!(
                (done.display.width, done.display.height),
                size,
                "orientation {orientation}"
            );
        }
    }

    #[test]
    fn a_scaled_decode_still_refuses_what_the_limits_refuse() {
        let limits = PhotoLimits::default();
        let jpeg = camera(4000, 3000);
        // Cut off in the middle of its image data.
        assert!(matches!(
            process(&jpeg[..jpeg.len() / 2], None, &limits),
            Err(PhotoError::Corrupt(_))
        ));
        // A header claiming 50000×50000 on a small file: refused on the header.
        let small = camera(64, 48);
        assert_eq!(
            process(&declaring(&small, 50_000, 50_000), None, &limits),
            Err(too_large(&limits, (50_000, 50_000)))
        );
        // Within the side limit, over the pixel limit (81 MP).
        assert_eq!(
            process(&declaring(&small, 9000, 9000), None, &limits),
            Err(too_large(&limits, (9000, 9000)))
        );
        // Over what the decoder may allocate, even at the scale it decodes at.
        let tight = PhotoLimits {
            max_alloc: 4 << 20,
            ..limits
        };
        assert_eq!(
            process(&jpeg, None, &tight),
            Err(too_large(&tight, (4000, 3000)))
        );
        // Disguised, either way round.
        assert!(matches!(
            process(&jpeg, Some("scan.png"), &limits),
            Err(PhotoError::Disguised { .. })
        ));
        let mut png = Vec::new();
        RgbImage::new(8, 8)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(
            process(&png, Some("IMG_0002.JPG"), &limits),
            Err(PhotoError::Disguised {
                named: "JPEG".into(),
                actual: "PNG".into()
            })
        );
    }

    #[test]
    fn grey_and_progressive_jpegs_come_out_as_colour_jpegs() {
        let limits = PhotoLimits::default();
        // 3200×2400 grey decodes at half scale to exactly the display size.
        let grey = image::GrayImage::from_fn(3200, 2400, |x, _| image::Luma([(x / 13) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&grey)
            .unwrap();
        let done = process(&jpeg, None, &limits).unwrap();
        assert_eq!((done.display.width, done.display.height), (1600, 1200));
        let img = decoded(&done.display);
        let px = img.get_pixel(1200, 600);
        assert!(px[0].abs_diff(px[1]) < 4 && px[1].abs_diff(px[2]) < 4);
        assert!(px[0].abs_diff((2400 / 13) as u8) < 6, "{px:?}");
        // jpegtran -progressive -restart 1: 11 scans, smaller than any display.
        let progressive = include_bytes!("../tests/fixtures/progressive.jpg");
        let done = process(progressive, None, &limits).unwrap();
        assert_eq!((done.display.width, done.display.height), (24, 16));
        assert_eq!(
            check_clean_jpeg(&done.display.bytes, limits.display_px),
            Ok((24, 16))
        );
    }

    #[test]
    fn sizes_keep_their_proportions_and_never_grow() {
        assert_eq!(fit_size((4000, 3000), 1600), (1600, 1200));
        assert_eq!(fit_size((2016, 1512), 1600), (1600, 1200));
        assert_eq!(fit_size((3000, 4000), 1600), (1200, 1600));
        assert_eq!(fit_size((1200, 1600), 320), (240, 320));
        assert_eq!(fit_size((8000, 3), 1600), (1600, 1));
        assert_eq!(fit_size((1000, 700), 1600), (1000, 700));
    }
}
