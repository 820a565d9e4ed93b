//! The strict check a photo passes before a relay stores it and hands it to other
//! devices. The capture pipeline ([`crate::photo`]) strips every piece of metadata
//! by re-encoding pixels; this check is what makes that a promise that holds even
//! against a modified app, which could upload any bytes under any hash.
//!
//! It walks the JPEG's marker segments itself and accepts only what an encoder needs
//! to describe pixels: a plain JFIF header without a thumbnail, quantisation and
//! Huffman tables, restart intervals, one baseline, extended or progressive Huffman
//! frame and its scans, then the end marker with nothing after it. Every table is
//! read to its last byte, and every scan's entropy-coded data is read block by block
//! to its last bit (only the standard's one-bit padding may follow), so no segment
//! and no scan has room for anything else. Then the image is decoded under limits.
//!
//! What it cannot see: information hidden in the pixels themselves. Metadata — GPS,
//! camera serials, XMP, ICC profiles, IPTC, comments, embedded thumbnails, trailers —
//! has no place left to go.

use std::fmt;
use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Why a photo is not one of the app's stripped renditions. Messages say what is
/// wrong with the file, never what it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegRefusal {
    /// Does not start with the JPEG start-of-image marker.
    #[error("the file is not a JPEG; only the app's JPEG renditions are accepted")]
    NotJpeg,
    /// A segment that carries metadata rather than pixels.
    #[error(
        "the photo carries {what} ({marker}); only the app's stripped renditions are accepted"
    )]
    Metadata {
        /// What the segment holds, e.g. "EXIF metadata".
        what: &'static str,
        /// Its marker.
        marker: Marker,
    },
    /// A JPEG coding the app never writes (arithmetic, lossless, hierarchical).
    #[error("the photo uses {what} ({marker}); only baseline, extended or progressive Huffman JPEG is accepted")]
    UnsupportedCoding {
        /// The coding process.
        what: &'static str,
        /// Its marker.
        marker: Marker,
    },
    /// A marker that has no place where it stands.
    #[error("unexpected marker {marker} at byte {offset}")]
    UnexpectedMarker {
        /// The marker.
        marker: Marker,
        /// Where it starts.
        offset: usize,
    },
    /// A segment, or a scan's data, that does not follow the JPEG standard exactly.
    #[error("malformed {marker} segment at byte {offset}: {reason}")]
    Malformed {
        /// The segment's marker.
        marker: Marker,
        /// Where the segment starts.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Cut off before its end-of-image marker.
    #[error("the JPEG is truncated: {0}")]
    Truncated(&'static str),
    /// Bytes after the end-of-image marker (camera trailers, motion-photo videos,
    /// anything appended).
    #[error(
        "{0} bytes follow the end of the image; only the app's stripped renditions are accepted"
    )]
    TrailingData(usize),
    /// Declared dimensions of zero or beyond the limit.
    #[error("the photo is {width}×{height} px; a photo must be 1 to {max} px a side")]
    Dimensions {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit per side.
        max: u32,
    },
    /// Well-formed data the decoder still refuses.
    #[error("the JPEG image cannot be decoded: {0}")]
    Undecodable(String),
}

/// A JPEG marker (the byte after `0xFF`), shown by its standard name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker(pub u8);

const SOF0: u8 = 0xC0;
const SOF1: u8 = 0xC1;
const SOF2: u8 = 0xC2;
const DHT: u8 = 0xC4;
const DAC: u8 = 0xCC;
const RST0: u8 = 0xD0;
const RST7: u8 = 0xD7;
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DQT: u8 = 0xDB;
const DNL: u8 = 0xDC;
const DRI: u8 = 0xDD;
const DHP: u8 = 0xDE;
const EXP: u8 = 0xDF;
const APP0: u8 = 0xE0;
const APP15: u8 = 0xEF;
const COM: u8 = 0xFE;

/// More scans than any encoder writes (libjpeg's progressive script has 10, jpegtran
/// 11); each scan reads every block, so this bounds the work a file can ask for.
const MAX_SCANS: usize = 128;

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            m @ (SOF0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) => {
                write!(f, "SOF{}", m - SOF0)
            }
            DHT => f.write_str("DHT"),
            0xC8 => f.write_str("JPG"),
            DAC => f.write_str("DAC"),
            m @ RST0..=RST7 => write!(f, "RST{}", m - RST0),
            SOI => f.write_str("SOI"),
            EOI => f.write_str("EOI"),
            SOS => f.write_str("SOS"),
            DQT => f.write_str("DQT"),
            DNL => f.write_str("DNL"),
            DRI => f.write_str("DRI"),
            DHP => f.write_str("DHP"),
            EXP => f.write_str("EXP"),
            m @ APP0..=APP15 => write!(f, "APP{}", m - APP0),
            COM => f.write_str("COM"),
            m => write!(f, "0xFF{m:02X}"),
        }
    }
}

/// Check that `bytes` are a JPEG as the app's capture pipeline writes it — pixels
/// and the tables to decode them, no metadata of any kind, nothing appended — at
/// most `max_side_px` on each side, and that it decodes. Returns its width and
/// height.
pub fn check_clean_jpeg(bytes: &[u8], max_side_px: u32) -> Result<(u32, u32), JpegRefusal> {
    let size = Walk::new(bytes, max_side_px).run()?;
    decode(bytes, size, max_side_px)?;
    Ok(size)
}

/// Decode under limits set from the largest allowed image, so a forged header cannot
/// make the decoder allocate more than a legitimate photo would.
fn decode(bytes: &[u8], declared: (u32, u32), max_side_px: u32) -> Result<(), JpegRefusal> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side_px);
    limits.max_image_height = Some(max_side_px);
    // Four bytes a pixel covers every output the decoder may choose.
    limits.max_alloc = Some(u64::from(max_side_px).pow(2) * 4);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Jpeg);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| JpegRefusal::Undecodable(e.to_string()))?;
    if (img.width(), img.height()) != declared {
        return Err(JpegRefusal::Undecodable(
            "the decoded size differs from the declared size".into(),
        ));
    }
    Ok(())
}

/// One component of the frame.
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: u8,
    /// Blocks across and down when the component is scanned alone.
    blocks_w: usize,
    blocks_h: usize,
    /// Per block, which coefficients (zig-zag bit k) a progressive scan has made
    /// non-zero: refinement scans carry a correction bit for each of those.
    nonzero: Vec<u64>,
    /// Per coefficient, the lowest bit position sent so far (progressive), or
    /// whether the component was scanned (sequential, entry 0).
    sent: [Option<u8>; 64],
}

/// What the frame header declares.
struct Frame {
    progressive: bool,
    width: u32,
    height: u32,
    mcus_x: usize,
    mcus_y: usize,
    components: Vec<Component>,
}

/// The segment walk, with the tables defined so far.
struct Walk<'a> {
    bytes: &'a [u8],
    max_side: u32,
    frame: Option<Frame>,
    quant: [bool; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    scans: usize,
}

impl<'a> Walk<'a> {
    fn new(bytes: &'a [u8], max_side: u32) -> Self {
        Walk {
            bytes,
            max_side,
            frame: None,
            quant: [false; 4],
            dc: Default::default(),
            ac: Default::default(),
            restart_interval: 0,
            scans: 0,
        }
    }

    /// Every segment from SOI to EOI; the frame's (width, height).
    fn run(mut self) -> Result<(u32, u32), JpegRefusal> {
        let bytes = self.bytes;
        if bytes.get(..2) != Some(&[0xFF, SOI][..]) {
            return Err(JpegRefusal::NotJpeg);
        }
        let mut pos = 2;
        let mut prev = SOI;
        loop {
            let (offset, marker) = next_marker(bytes, pos, prev)?;
            let malformed = |reason| JpegRefusal::Malformed {
                marker: Marker(marker),
                offset,
                reason,
            };
            if marker == EOI {
                self.check_complete().map_err(malformed)?;
                let after = offset + 2;
                if after < bytes.len() {
                    return Err(JpegRefusal::TrailingData(bytes.len() - after));
                }
                let frame = self.frame.as_ref().ok_or(malformed("no frame"))?;
                return Ok((frame.width, frame.height));
            }
            refuse_by_type(bytes, marker, offset)?;
            let body = segment(bytes, offset, marker)?;
            pos = offset + 4 + body.len();
            match marker {
                APP0 => {
                    if !body.starts_with(b"JFIF\0") {
                        return Err(JpegRefusal::Metadata {
                            what: if body.starts_with(b"JFXX\0") {
                                "a JFIF extension (JFXX, an embedded thumbnail)"
                            } else {
                                "application data"
                            },
                            marker: Marker(marker),
                        });
                    }
                    if prev != SOI {
                        return Err(malformed("the JFIF header must follow the start of image"));
                    }
                    check_jfif(body, offset)?;
                }
                DQT => self.read_dqt(body).map_err(malformed)?,
                DHT => self.read_dht(body).map_err(malformed)?,
                DRI => {
                    let [hi, lo] = *body else {
                        return Err(malformed("a restart interval is two bytes"));
                    };
                    self.restart_interval = usize::from(u16::from_be_bytes([hi, lo]));
                }
                SOF0 | SOF1 | SOF2 => {
                    if self.frame.is_some() {
                        return Err(malformed("a second frame header"));
                    }
                    let frame = read_sof(body, marker == SOF2).map_err(malformed)?;
                    let (width, height) = (frame.width, frame.height);
                    if width == 0 || height == 0 || width > self.max_side || height > self.max_side
                    {
                        return Err(JpegRefusal::Dimensions {
                            width,
                            height,
                            max: self.max_side,
                        });
                    }
                    self.frame = Some(frame.with_blocks());
                }
                SOS => {
                    let scan = self.read_sos(body).map_err(malformed)?;
                    let (end, intervals) = entropy_coded_data(bytes, pos, self.restart_interval)?;
                    self.decode_scan(&scan, &intervals).map_err(malformed)?;
                    pos = end;
                }
                _ => {
                    return Err(JpegRefusal::UnexpectedMarker {
                        marker: Marker(marker),
                        offset,
                    })
                }
            }
            prev = marker;
        }
    }

    /// Quantisation tables filling the segment exactly.
    fn read_dqt(&mut self, mut body: &[u8]) -> Result<(), &'static str> {
        if body.is_empty() {
            return Err("no quantisation table");
        }
        while let Some((&pq_tq, rest)) = body.split_first() {
            let size = match pq_tq >> 4 {
                0 => 64,
                1 => 128,
                _ => return Err("a quantisation table precision other than 8 or 16 bits"),
            };
            let slot = self
                .quant
                .get_mut(usize::from(pq_tq & 0x0F))
                .ok_or("a quantisation table number above 3")?;
            body = rest.get(size..).ok_or("a quantisation table cut short")?;
            *slot = true;
        }
        Ok(())
    }

    /// Huffman tables filling the segment exactly.
    fn read_dht(&mut self, mut body: &[u8]) -> Result<(), &'static str> {
        if body.is_empty() {
            return Err("no Huffman table");
        }
        while let Some((&tc_th, rest)) = body.split_first() {
            let counts = rest.get(..16).ok_or("Huffman code counts cut short")?;
            let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = rest
                .get(16..16 + n)
                .ok_or("Huffman code values cut short")?;
            let table = Huffman::new(counts, values)?;
            let slot = match tc_th >> 4 {
                0 => self.dc.get_mut(usize::from(tc_th & 0x0F)),
                1 => self.ac.get_mut(usize::from(tc_th & 0x0F)),
                _ => None,
            }
            .ok_or("a Huffman table class above 1 or number above 3")?;
            *slot = Some(table);
            body = &rest[16 + n..];
        }
        Ok(())
    }

    /// A scan header naming the frame's components, with tables defined, and the
    /// spectral selection and successive approximation the frame's process allows.
    fn read_sos(&mut self, body: &[u8]) -> Result<Scan, &'static str> {
        let frame = self
            .frame
            .as_mut()
            .ok_or("a scan before the frame header")?;
        self.scans += 1;
        if self.scans > MAX_SCANS {
            return Err("more scans than any encoder writes");
        }
        let [count, ref rest @ ..] = *body else {
            return Err("a scan header cut short");
        };
        let count = usize::from(count);
        if count == 0 || count > frame.components.len() || rest.len() != 2 * count + 3 {
            return Err("a scan of no or too many components, or a header of the wrong length");
        }
        let (selectors, spectral) = rest.split_at(2 * count);
        let (ss, se) = (spectral[0], spectral[1]);
        let (ah, al) = (spectral[2] >> 4, spectral[2] & 0x0F);
        let mut scan = Scan {
            components: Vec::with_capacity(count),
            ss,
            se,
            ah,
        };
        for s in selectors.chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == s[0])
                .ok_or("a scan names a component the frame lacks")?;
            if scan.components.iter().any(|c| c.index == index) {
                return Err("a scan names a component twice");
            }
            let (td, ta) = (usize::from(s[1] >> 4), usize::from(s[1] & 0x0F));
            if td > 3 || ta > 3 {
                return Err("a scan's Huffman table number above 3");
            }
            if !self.quant[usize::from(frame.components[index].tq)] {
                return Err("a component's quantisation table is not defined before its scan");
            }
            scan.components.push(ScanComponent { index, td, ta });
        }
        if count > 1 {
            let blocks: usize = scan
                .components
                .iter()
                .map(|c| frame.components[c.index].h * frame.components[c.index].v)
                .sum();
            if blocks > 10 {
                return Err("more than 10 blocks in an interleaved unit");
            }
        }
        let dc_needed;
        let ac_needed;
        if frame.progressive {
            let dc_scan = ss == 0;
            let ok = if dc_scan {
                se == 0
            } else {
                ss <= se && se <= 63 && count == 1
            };
            if !ok || ah > 13 || al > 13 || (ah != 0 && al + 1 != ah) {
                return Err("a progressive scan's spectral selection or successive approximation is out of range");
            }
            for c in &scan.components {
                let sent = &mut frame.components[c.index].sent;
                if !dc_scan && sent[0].is_none() {
                    return Err("an AC scan before the component's DC scan");
                }
                let expected = (ah != 0).then_some(ah);
                for bit in &mut sent[usize::from(ss)..=usize::from(se)] {
                    if *bit != expected {
                        return Err("a progressive scan out of order (a band sent twice, or refined before it was sent)");
                    }
                    *bit = Some(al);
                }
            }
            dc_needed = dc_scan && ah == 0;
            ac_needed = !dc_scan;
        } else {
            if ss != 0 || se != 63 || ah != 0 || al != 0 {
                return Err("a sequential scan must cover every coefficient at full precision");
            }
            for c in &scan.components {
                let sent = &mut frame.components[c.index].sent[0];
                if sent.is_some() {
                    return Err("a component scanned twice in a sequential image");
                }
                *sent = Some(0);
            }
            dc_needed = true;
            ac_needed = true;
        }
        for c in &scan.components {
            if (dc_needed && self.dc[c.td].is_none()) || (ac_needed && self.ac[c.ta].is_none()) {
                return Err("a scan uses a Huffman table not defined before it");
            }
        }
        Ok(scan)
    }

    /// Read every block of a scan's data, interval by interval.
    fn decode_scan(&mut self, scan: &Scan, intervals: &[&[u8]]) -> Result<(), &'static str> {
        let Walk {
            frame,
            dc,
            ac,
            restart_interval,
            ..
        } = self;
        let frame = frame.as_mut().ok_or("a scan before the frame header")?;
        let units = if scan.components.len() > 1 {
            frame.mcus_x * frame.mcus_y
        } else {
            let c = &frame.components[scan.components[0].index];
            c.blocks_w * c.blocks_h
        };
        let per_interval = if *restart_interval == 0 {
            units
        } else {
            *restart_interval
        };
        if intervals.len() != units.div_ceil(per_interval) {
            return Err("the number of restart markers does not match the restart interval");
        }
        let mut unit = 0;
        for data in intervals {
            let mut bits = Bits::new(data);
            let mut eobrun = 0u32;
            let end = (unit + per_interval).min(units);
            while unit < end {
                if scan.components.len() > 1 {
                    for c in &scan.components {
                        let comp = &frame.components[c.index];
                        for _ in 0..comp.h * comp.v {
                            scan.block(&mut bits, dc, ac, c, &mut eobrun, None)?;
                        }
                    }
                } else {
                    let c = &scan.components[0];
                    let nonzero = frame.components[c.index].nonzero.get_mut(unit);
                    scan.block(&mut bits, dc, ac, c, &mut eobrun, nonzero)?;
                }
                unit += 1;
            }
            if eobrun != 0 {
                return Err("an end-of-band run beyond its restart interval or scan");
            }
            bits.finish()?;
        }
        Ok(())
    }

    /// At EOI: a frame, and every component fully scanned (sequential) or at least
    /// its DC coefficients sent (progressive).
    fn check_complete(&self) -> Result<(), &'static str> {
        let frame = self
            .frame
            .as_ref()
            .ok_or("the image ends before any image data")?;
        if frame.components.iter().all(|c| c.sent[0].is_some()) {
            Ok(())
        } else {
            Err("the image ends before every component was scanned")
        }
    }
}

impl Frame {
    /// Fill in the MCU and block counts of each component (JPEG standard A.1.1).
    fn with_blocks(mut self) -> Self {
        let hmax = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        let (w, h) = (self.width as usize, self.height as usize);
        self.mcus_x = w.div_ceil(8 * hmax);
        self.mcus_y = h.div_ceil(8 * vmax);
        for c in &mut self.components {
            c.blocks_w = (w * c.h).div_ceil(hmax).div_ceil(8);
            c.blocks_h = (h * c.v).div_ceil(vmax).div_ceil(8);
            if self.progressive {
                c.nonzero = vec![0; c.blocks_w * c.blocks_h];
            }
        }
        self
    }
}

/// An 8-bit frame of one (grey) or three (colour) components.
fn read_sof(body: &[u8], progressive: bool) -> Result<Frame, &'static str> {
    let [precision, h1, h2, w1, w2, count, ref comps @ ..] = *body else {
        return Err("a frame header cut short");
    };
    if precision != 8 {
        return Err("a sample precision other than 8 bits");
    }
    if !matches!(count, 1 | 3) || comps.len() != 3 * usize::from(count) {
        return Err("a frame of other than one or three components, or extra bytes");
    }
    let mut components: Vec<Component> = Vec::with_capacity(3);
    for c in comps.chunks_exact(3) {
        let (id, h, v, tq) = (c[0], c[1] >> 4, c[1] & 0x0F, c[2]);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            return Err("a component's sampling factor or quantisation table is out of range");
        }
        if components.iter().any(|c| c.id == id) {
            return Err("two components with the same id");
        }
        components.push(Component {
            id,
            h: usize::from(h),
            v: usize::from(v),
            tq,
            blocks_w: 0,
            blocks_h: 0,
            nonzero: Vec::new(),
            sent: [None; 64],
        });
    }
    Ok(Frame {
        progressive,
        width: u32::from(u16::from_be_bytes([w1, w2])),
        height: u32::from(u16::from_be_bytes([h1, h2])),
        mcus_x: 0,
        mcus_y: 0,
        components,
    })
}

/// JFIF 1.x: version, units, densities, and a thumbnail of 0×0 — nothing more.
fn check_jfif(body: &[u8], offset: usize) -> Result<(), JpegRefusal> {
    let malformed = |reason| JpegRefusal::Malformed {
        marker: Marker(APP0),
        offset,
        reason,
    };
    let [b'J', b'F', b'I', b'F', 0, major, _minor, units, _xd1, _xd2, _yd1, _yd2, tw, th, ref rest @ ..] =
        *body
    else {
        return Err(malformed("a JFIF header cut short"));
    };
    if tw != 0 || th != 0 || !rest.is_empty() {
        return Err(JpegRefusal::Metadata {
            what: "an embedded JFIF thumbnail",
            marker: Marker(APP0),
        });
    }
    if major != 1 || units > 2 {
        return Err(malformed("an unknown JFIF version or density unit"));
    }
    Ok(())
}

/// The marker at `pos`, after any fill bytes (0xFF) the standard allows before it:
/// (offset of the 0xFF immediately before the marker byte, marker). `prev` is the
/// segment that ended at `pos`.
fn next_marker(bytes: &[u8], pos: usize, prev: u8) -> Result<(usize, u8), JpegRefusal> {
    let truncated = || JpegRefusal::Truncated("no end-of-image marker");
    match bytes.get(pos) {
        None => return Err(truncated()),
        Some(0xFF) => {}
        Some(_) => {
            return Err(JpegRefusal::Malformed {
                marker: Marker(prev),
                offset: pos,
                reason: "the segment is followed by bytes that are not a marker",
            })
        }
    }
    let mut i = pos;
    while bytes.get(i + 1) == Some(&0xFF) {
        i += 1;
    }
    let marker = *bytes.get(i + 1).ok_or_else(truncated)?;
    Ok((i, marker))
}

/// Refuse a marker by its type alone, before reading its segment; `bytes` from
/// `offset` name what an APPn segment holds.
fn refuse_by_type(bytes: &[u8], marker: u8, offset: usize) -> Result<(), JpegRefusal> {
    let unsupported = |what| {
        Err(JpegRefusal::UnsupportedCoding {
            what,
            marker: Marker(marker),
        })
    };
    let metadata = |what| {
        Err(JpegRefusal::Metadata {
            what,
            marker: Marker(marker),
        })
    };
    match marker {
        APP0 | DQT | DHT | DRI | SOF0 | SOF1 | SOF2 | SOS => Ok(()),
        0xC3 | 0xC7 | 0xCB | 0xCF => unsupported("lossless coding"),
        0xC5 | 0xC6 | 0xCD | 0xCE | DHP | EXP => unsupported("hierarchical coding"),
        0xC9 | 0xCA | DAC => unsupported("arithmetic coding"),
        COM => metadata("a comment"),
        0xE1..=APP15 => metadata(app_kind(marker, bytes.get(offset + 4..).unwrap_or(&[]))),
        _ => Err(JpegRefusal::UnexpectedMarker {
            marker: Marker(marker),
            offset,
        }),
    }
}

/// What an APPn segment (n ≥ 1) holds, from its identifier.
fn app_kind(marker: u8, body: &[u8]) -> &'static str {
    const KINDS: &[(u8, &[u8], &str)] = &[
        (0xE1, b"Exif\0", "EXIF metadata"),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\0", "XMP metadata"),
        (
            0xE1,
            b"http://ns.adobe.com/xmp/extension/\0",
            "XMP metadata",
        ),
        (0xE2, b"ICC_PROFILE\0", "an ICC colour profile"),
        (0xE2, b"FPXR\0", "FlashPix data"),
        (0xE2, b"MPF\0", "a multi-picture index"),
        (0xED, b"Photoshop 3.0\0", "IPTC/Photoshop metadata"),
        (0xEE, b"Adobe", "an Adobe colour-transform segment"),
    ];
    KINDS
        .iter()
        .find(|(m, id, _)| *m == marker && body.starts_with(id))
        .map_or("application data", |(_, _, what)| what)
}

/// The body of the segment whose marker is at `offset` (after its length field).
fn segment(bytes: &[u8], offset: usize, marker: u8) -> Result<&[u8], JpegRefusal> {
    let malformed = |reason| JpegRefusal::Malformed {
        marker: Marker(marker),
        offset,
        reason,
    };
    let len = match bytes.get(offset + 2..offset + 4) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(JpegRefusal::Truncated("cut off inside a segment header")),
    };
    if len < 2 {
        return Err(malformed("a segment length below 2"));
    }
    bytes
        .get(offset + 4..offset + 2 + len)
        .ok_or_else(|| malformed("the segment runs past the end of the file"))
}

/// A scan's entropy-coded data from `pos`: where the marker after it starts, and
/// the data of each restart interval (restart markers in sequence, only where a
/// restart interval is defined; 0xFF otherwise only stuffed as 0xFF00).
fn entropy_coded_data(
    bytes: &[u8],
    pos: usize,
    interval: usize,
) -> Result<(usize, Vec<&[u8]>), JpegRefusal> {
    let truncated = JpegRefusal::Truncated("the image data has no end");
    let mut intervals = Vec::new();
    let mut start = pos;
    let mut i = pos;
    let mut next_rst = 0u8;
    loop {
        let ff = bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .map(|p| i + p)
            .ok_or(truncated.clone())?;
        match bytes.get(ff + 1) {
            None => return Err(truncated),
            Some(0x00) => i = ff + 2,
            Some(&m @ RST0..=RST7) => {
                if interval == 0 || m != RST0 + next_rst {
                    return Err(JpegRefusal::UnexpectedMarker {
                        marker: Marker(m),
                        offset: ff,
                    });
                }
                next_rst = (next_rst + 1) % 8;
                intervals.push(&bytes[start..ff]);
                i = ff + 2;
                start = i;
            }
            Some(_) => {
                intervals.push(&bytes[start..ff]);
                return Ok((ff, intervals));
            }
        }
    }
}

/// A canonical Huffman table (JPEG standard C.2), decoded one bit at a time.
struct Huffman {
    /// For each code length, the first code and how many codes have it.
    first: [u32; 17],
    count: [u32; 17],
    /// Where each length's symbols start in `values`.
    offset: [usize; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8], values: &[u8]) -> Result<Self, &'static str> {
        if values.len() > 256 {
            return Err("more than 256 Huffman codes");
        }
        let mut t = Huffman {
            first: [0; 17],
            count: [0; 17],
            offset: [0; 17],
            values: values.to_vec(),
        };
        let (mut code, mut offset) = (0u32, 0usize);
        for (len, &n) in (1..=16).zip(counts) {
            t.first[len] = code;
            t.count[len] = u32::from(n);
            t.offset[len] = offset;
            code += u32::from(n);
            offset += usize::from(n);
            if code > 1 << len {
                return Err("Huffman code lengths that do not fit");
            }
            code <<= 1;
        }
        Ok(t)
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u8, &'static str> {
        let mut code = 0u32;
        for len in 1..=16 {
            code = (code << 1) | bits.bit()?;
            let i = code.wrapping_sub(self.first[len]);
            if code >= self.first[len] && i < self.count[len] {
                return Ok(self.values[self.offset[len] + i as usize]);
            }
        }
        Err("a Huffman code that is not in its table")
    }
}

/// The bits of one restart interval's data, 0xFF00 read as 0xFF.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    byte: u32,
    left: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            byte: 0,
            left: 0,
        }
    }

    fn bit(&mut self) -> Result<u32, &'static str> {
        if self.left == 0 {
            let b = *self
                .data
                .get(self.pos)
                .ok_or("the image data ends before its last block")?;
            // The scanner only lets 0xFF through as 0xFF00.
            self.pos += if b == 0xFF { 2 } else { 1 };
            self.byte = u32::from(b);
            self.left = 8;
        }
        self.left -= 1;
        Ok((self.byte >> self.left) & 1)
    }

    /// The next `n` bits (n ≤ 16) as a number.
    fn read(&mut self, n: u8) -> Result<u32, &'static str> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    /// The data ends here: nothing but the standard's padding of one-bits.
    fn finish(&self) -> Result<(), &'static str> {
        let pad = (1u32 << self.left) - 1;
        if self.pos < self.data.len() {
            Err("bytes after the last block of a restart interval or scan")
        } else if self.byte & pad != pad {
            Err("padding bits that are not ones")
        } else {
            Ok(())
        }
    }
}

struct ScanComponent {
    /// Index into the frame's components.
    index: usize,
    td: usize,
    ta: usize,
}

struct Scan {
    components: Vec<ScanComponent>,
    ss: u8,
    se: u8,
    ah: u8,
}

impl Scan {
    /// Read one block (JPEG standard F.2.2 for sequential scans, G.1.2 for
    /// progressive ones). `nonzero` is the block's coefficient history, kept for
    /// progressive refinement scans.
    fn block(
        &self,
        bits: &mut Bits<'_>,
        dc: &[Option<Huffman>; 4],
        ac: &[Option<Huffman>; 4],
        c: &ScanComponent,
        eobrun: &mut u32,
        nonzero: Option<&mut u64>,
    ) -> Result<(), &'static str> {
        const UNDEFINED: &str = "a scan uses a Huffman table not defined before it";
        let (ss, se) = (usize::from(self.ss), usize::from(self.se));
        if ss == 0 {
            if self.ah == 0 {
                let s = dc[c.td].as_ref().ok_or(UNDEFINED)?.decode(bits)?;
                if s > 11 {
                    return Err("a DC difference of more than 11 bits");
                }
                bits.read(s)?;
            } else {
                bits.read(1)?;
            }
            if se == 0 {
                return Ok(());
            }
        }
        let table = ac[c.ta].as_ref().ok_or(UNDEFINED)?;
        let sequential = ss == 0;
        if sequential || self.ah == 0 {
            if *eobrun > 0 {
                *eobrun -= 1;
                return Ok(());
            }
            ac_first(bits, table, ss.max(1), se, sequential, eobrun, nonzero)
        } else {
            let nonzero = nonzero.ok_or("a refinement scan of an interleaved unit")?;
            ac_refine(bits, table, ss, se, eobrun, nonzero)
        }
    }
}

/// The AC coefficients `k..=se` of a sequential block, or of a progressive block's
/// first pass over a band.
fn ac_first(
    bits: &mut Bits<'_>,
    table: &Huffman,
    mut k: usize,
    se: usize,
    sequential: bool,
    eobrun: &mut u32,
    mut nonzero: Option<&mut u64>,
) -> Result<(), &'static str> {
    while k <= se {
        let rs = table.decode(bits)?;
        let (r, s) = (usize::from(rs >> 4), rs & 0x0F);
        if s == 0 {
            if r == 15 {
                k += 16;
                if k > se + 1 {
                    return Err("a run of zeros beyond the end of the block");
                }
                continue;
            }
            if sequential {
                return if r == 0 {
                    Ok(())
                } else {
                    Err("an AC code a sequential scan does not define")
                };
            }
            // An end-of-band run: this block and the next `run - 1`.
            let run = (1u32 << r) + bits.read(rs >> 4)?;
            *eobrun = run - 1;
            return Ok(());
        }
        if s > 10 {
            return Err("an AC coefficient of more than 10 bits");
        }
        k += r;
        if k > se {
            return Err("a coefficient beyond the end of the block");
        }
        bits.read(s)?;
        if let Some(nz) = nonzero.as_deref_mut() {
            *nz |= 1 << k;
        }
        k += 1;
    }
    Ok(())
}

/// A progressive refinement pass over coefficients `ss..=se` of one block: a
/// correction bit for each coefficient already non-zero, new coefficients of ±1.
fn ac_refine(
    bits: &mut Bits<'_>,
    table: &Huffman,
    ss: usize,
    se: usize,
    eobrun: &mut u32,
    nonzero: &mut u64,
) -> Result<(), &'static str> {
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = table.decode(bits)?;
            let (mut r, s) = (rs >> 4, rs & 0x0F);
            if s == 0 && r != 15 {
                *eobrun = (1u32 << r) + bits.read(r)?;
                break;
            }
            if s > 1 {
                return Err("a refinement coefficient other than ±1");
            }
            bits.read(s)?;
            // Pass over `r` coefficients still zero, correcting those already set.
            while k <= se {
                if *nonzero & (1 << k) != 0 {
                    bits.read(1)?;
                } else if r == 0 {
                    break;
                } else {
                    r -= 1;
                }
                k += 1;
            }
            if s == 1 {
                if k > se {
                    return Err("a coefficient beyond the end of the band");
                }
                *nonzero |= 1 << k;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        for k in k..=se {
            if *nonzero & (1 << k) != 0 {
                bits.read(1)?;
            }
        }
        *eobrun -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::{self, PhotoLimits};

    const MAX: u32 = 1600;

    fn encode(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, (x ^ y) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img)
            .unwrap();
        out
    }

    /// A small JPEG as the pipeline writes it.
    fn clean() -> Vec<u8> {
        photo::process(&encode(64, 48), None, &PhotoLimits::default())
            .unwrap()
            .display
            .bytes
    }

    fn app(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut seg = vec![0xFF, marker];
        seg.extend(u16::try_from(body.len() + 2).unwrap().to_be_bytes());
        seg.extend(body);
        seg
    }

    /// `seg` inserted right after the JFIF header, where cameras put metadata.
    fn inject(jpeg: &[u8], seg: &[u8]) -> Vec<u8> {
        let after_app0 = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        let mut out = jpeg[..after_app0].to_vec();
        out.extend(seg);
        out.extend(&jpeg[after_app0..]);
        out
    }

    /// EXIF with a GPS latitude and a body serial number, as a phone writes it.
    fn exif_gps() -> Vec<u8> {
        let mut t: Vec<u8> = b"II*\0".to_vec();
        t.extend(8u32.to_le_bytes());
        let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: u32| {
            t.extend(tag.to_le_bytes());
            t.extend(typ.to_le_bytes());
            t.extend(count.to_le_bytes());
            t.extend(value.to_le_bytes());
        };
        t.extend(1u16.to_le_bytes());
        entry(&mut t, 0x8825, 4, 1, 26); // GPS IFD right after IFD0
        t.extend(0u32.to_le_bytes());
        t.extend(2u16.to_le_bytes());
        entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
        entry(&mut t, 0x0002, 5, 3, 56);
        t.extend(0u32.to_le_bytes());
        for (n, d) in [(30u32, 1u32), (16, 1), (27, 1)] {
            t.extend(n.to_le_bytes());
            t.extend(d.to_le_bytes());
        }
        let mut body = b"Exif\0\0".to_vec();
        body.extend(t);
        app(0xE1, &body)
    }

    fn refused(bytes: &[u8]) -> JpegRefusal {
        match check_clean_jpeg(bytes, MAX) {
            Err(e) => e,
            Ok(size) => panic!("accepted as {size:?}"),
        }
    }

    #[test]
    fn the_pipelines_own_display_image_and_thumbnail_pass() {
        let done = photo::process(&encode(2400, 1800), None, &PhotoLimits::default()).unwrap();
        for r in [&done.display, &done.thumb] {
            assert_eq!(
                check_clean_jpeg(&r.bytes, PhotoLimits::default().display_px),
                Ok((r.width, r.height))
            );
        }
        // Grey input comes out as colour; a tiny image still has its one MCU.
        let grey = image::GrayImage::from_fn(3, 2, |x, _| image::Luma([x as u8 * 80]));
        let mut png = Vec::new();
        grey.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let done = photo::process(&png, None, &PhotoLimits::default()).unwrap();
        assert_eq!(check_clean_jpeg(&done.display.bytes, MAX), Ok((3, 2)));
        // Sizes that leave partial blocks at the right and bottom edges.
        for (w, h) in [(1, 1), (7, 3), (17, 9), (333, 127), (1600, 9)] {
            assert_eq!(check_clean_jpeg(&encode(w, h), MAX), Ok((w, h)));
        }
    }

    #[test]
    fn a_progressive_jpeg_with_restart_markers_and_tables_between_scans_passes() {
        // jpegtran -progressive -restart 1 -copy none: 11 scans, DHT and DRI
        // between them, RST0 inside them.
        let bytes = include_bytes!("../tests/fixtures/progressive.jpg");
        assert_eq!(check_clean_jpeg(bytes, MAX), Ok((24, 16)));
    }

    #[test]
    fn metadata_segments_are_refused_by_what_they_carry() {
        let jpeg = clean();
        let xmp = app(
            0xE1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>30,16.45N</exif:GPSLatitude></x:xmpmeta>",
        );
        let iptc = app(
            0xED,
            b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0a\x1c\x02\x5a\0\x05Hefei",
        );
        let icc = app(0xE2, b"ICC_PROFILE\0\x01\x01not really a profile");
        let adobe = app(0xEE, b"Adobe\0\x64\0\0\0\0\x01");
        let cases = [
            (exif_gps(), "EXIF metadata (APP1)"),
            (xmp, "XMP metadata (APP1)"),
            (icc, "an ICC colour profile (APP2)"),
            (iptc, "IPTC/Photoshop metadata (APP13)"),
            (adobe, "an Adobe colour-transform segment (APP14)"),
            (app(0xE9, b"\x00\x01"), "application data (APP9)"),
            (app(0xFE, b"30.2741N 120.1551E"), "a comment (COM)"),
        ];
        for (seg, what) in cases {
            let e = refused(&inject(&jpeg, &seg));
            assert!(matches!(e, JpegRefusal::Metadata { .. }), "{what}: {e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "the photo carries {what}; only the app's stripped renditions are accepted"
                )
            );
        }
        assert_eq!(
            refused(&inject(&jpeg, &exif_gps())).to_string(),
            "the photo carries EXIF metadata (APP1); only the app's stripped renditions are accepted"
        );
        // Metadata before the JFIF header is refused just the same.
        let mut first = jpeg[..2].to_vec();
        first.extend(exif_gps());
        first.extend(&jpeg[2..]);
        assert!(matches!(refused(&first), JpegRefusal::Metadata { .. }));
    }

    #[test]
    fn a_jfif_thumbnail_or_extension_is_refused() {
        let jpeg = clean();
        let app0_end = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        assert_eq!(app0_end, 20, "the encoder writes a 16-byte JFIF header");
        // The same header declaring a 2×1 RGB thumbnail, with its six bytes.
        let mut body = jpeg[6..18].to_vec();
        body.extend([2, 1, 255, 0, 0, 0, 255, 0]);
        let mut with_thumb = jpeg[..2].to_vec();
        with_thumb.extend(app(0xE0, &body));
        with_thumb.extend(&jpeg[app0_end..]);
        assert_eq!(
            refused(&with_thumb).to_string(),
            "the photo carries an embedded JFIF thumbnail (APP0); only the app's stripped renditions are accepted"
        );
        // Bytes after a header that declares none are refused alike.
        let mut padded = jpeg[..2].to_vec();
        padded.extend(app(0xE0, &[&jpeg[6..20], &b"hidden"[..]].concat()));
        padded.extend(&jpeg[app0_end..]);
        assert!(matches!(refused(&padded), JpegRefusal::Metadata { .. }));
        let jfxx = app(0xE0, b"JFXX\0\x10\xff\xd8\xff\xd9");
        let e = refused(&inject(&jpeg, &jfxx));
        assert!(e.to_string().contains("JFXX"), "{e}");
    }

    #[test]
    fn anything_after_the_end_marker_is_refused() {
        let mut jpeg = clean();
        let trailer = b"MotionPhoto_Data\0\0\0\x18ftypmp42";
        jpeg.extend(trailer);
        assert_eq!(refused(&jpeg), JpegRefusal::TrailingData(trailer.len()));
        let mut jpeg = clean();
        jpeg.push(0);
        assert_eq!(refused(&jpeg), JpegRefusal::TrailingData(1));
    }

    #[test]
    fn truncated_files_are_refused_wherever_they_are_cut() {
        let jpeg = clean();
        for cut in [
            1,
            2,
            3,
            5,
            19,
            21,
            100,
            jpeg.len() / 2,
            jpeg.len() - 2,
            jpeg.len() - 1,
        ] {
            let e = refused(&jpeg[..cut]);
            assert!(
                matches!(
                    e,
                    JpegRefusal::Truncated(_)
                        | JpegRefusal::NotJpeg
                        | JpegRefusal::Malformed { .. }
                ),
                "cut at {cut}: {e:?}"
            );
        }
        // Cut halfway through the entropy-coded data (after the start of scan).
        let sos = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xDA])
            .expect("a start of scan");
        assert!(matches!(
            refused(&jpeg[..(sos + jpeg.len()) / 2]),
            JpegRefusal::Truncated(_)
        ));
    }

    #[test]
    fn a_segment_running_past_the_end_is_refused() {
        let jpeg = clean();
        let mut long = jpeg[..20].to_vec();
        long.extend([0xFF, 0xDB, 0xFF, 0xF0, 0x00]);
        let e = refused(&long);
        assert!(e.to_string().contains("runs past the end"), "{e}");
    }

    #[test]
    fn sizes_beyond_the_limit_or_zero_are_refused() {
        assert_eq!(
            refused(&encode(1601, 8)),
            JpegRefusal::Dimensions {
                width: 1601,
                height: 8,
                max: MAX
            }
        );
        assert_eq!(check_clean_jpeg(&encode(1600, 8), MAX), Ok((1600, 8)));
        // A frame header patched to 0 lines (a DNL would give the height later).
        let mut jpeg = clean();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, SOF0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&[0, 0]);
        assert!(matches!(
            refused(&jpeg),
            JpegRefusal::Dimensions { height: 0, .. }
        ));
    }

    #[test]
    fn other_formats_and_codings_are_refused() {
        let mut png = Vec::new();
        image::RgbImage::new(4, 4)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        assert_eq!(refused(&png), JpegRefusal::NotJpeg);
        assert_eq!(refused(b""), JpegRefusal::NotJpeg);
        for (marker, what) in [
            (0xC3, "lossless"),
            (0xC9, "arithmetic"),
            (0xC5, "hierarchical"),
        ] {
            let mut jpeg = clean();
            let sof = jpeg.windows(2).position(|w| w == [0xFF, SOF0]).unwrap();
            jpeg[sof + 1] = marker;
            let e = refused(&jpeg);
            assert!(matches!(e, JpegRefusal::UnsupportedCoding { .. }), "{e:?}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn headers_that_hide_bytes_or_break_the_standard_are_refused() {
        let jpeg = clean();
        // A DQT with four spare bytes after its table.
        let dqt = jpeg.windows(2).position(|w| w == [0xFF, DQT]).unwrap();
        let len = usize::from(u16::from_be_bytes([jpeg[dqt + 2], jpeg[dqt + 3]]));
        let mut body = jpeg[dqt + 4..dqt + 2 + len].to_vec();
        body.extend(b"N30E");
        let mut padded = jpeg[..dqt].to_vec();
        padded.extend(app(DQT, &body));
        padded.extend(&jpeg[dqt + 2 + len..]);
        assert!(matches!(refused(&padded), JpegRefusal::Malformed { .. }));
        // A DNL, an RST outside a scan, a reserved marker.
        for marker in [DNL, RST0, 0x02, 0xF0] {
            let e = refused(&inject(&jpeg, &app(marker, &[0, 1])));
            assert!(matches!(e, JpegRefusal::UnexpectedMarker { .. }), "{e:?}");
        }
        // A restart marker in the data without a restart interval.
        let eoi = jpeg.len() - 2;
        let mut rst = jpeg[..eoi - 4].to_vec();
        rst.extend([0xFF, RST0]);
        rst.extend(&jpeg[eoi - 4..]);
        assert!(matches!(
            refused(&rst),
            JpegRefusal::UnexpectedMarker {
                marker: Marker(RST0),
                ..
            }
        ));
        // No image data at all.
        let sos = jpeg.windows(2).position(|w| w == [0xFF, SOS]).unwrap();
        let mut empty = jpeg[..sos].to_vec();
        empty.extend([0xFF, EOI]);
        assert!(matches!(refused(&empty), JpegRefusal::Malformed { .. }));
    }

    fn before_eoi(jpeg: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..jpeg.len() - 2].to_vec();
        out.extend(extra);
        out.extend([0xFF, EOI]);
        out
    }

    #[test]
    fn bytes_hidden_after_the_last_block_of_a_scan_are_refused() {
        // Decoders stop after the last block and ignore the rest of the scan.
        let jpeg = clean();
        for extra in [&b"N30.2741 E120.1551 SN123456789"[..], &[0xFF, 0x00, 0x12]] {
            let e = refused(&before_eoi(&jpeg, extra));
            assert!(
                e.to_string()
                    .contains("bytes after the last block of a restart interval or scan"),
                "{e}"
            );
        }
        // The same in the progressive image, whose last scan ends at EOI.
        let prog = include_bytes!("../tests/fixtures/progressive.jpg");
        assert!(matches!(
            refused(&before_eoi(prog, b"hidden")),
            JpegRefusal::Malformed { .. }
        ));
    }

    #[test]
    fn well_formed_headers_around_too_little_image_data_are_refused() {
        // The image crate's decoder fills missing blocks with grey; the walk reads
        // every block and finds the data ends first.
        let jpeg = clean();
        let sos = jpeg.windows(2).position(|w| w == [0xFF, SOS]).unwrap();
        let len = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
        let short = before_eoi(&jpeg[..sos + 2 + len + 2], &[]);
        let e = refused(&short);
        assert!(e.to_string().contains("ends before its last block"), "{e}");
        // A frame header patched to 1000×1000 around the data of 64×48.
        let mut forged = jpeg.clone();
        let sof = forged.windows(2).position(|w| w == [0xFF, SOF0]).unwrap();
        forged[sof + 5..sof + 9].copy_from_slice(&[0x03, 0xE8, 0x03, 0xE8]);
        let e = refused(&forged);
        assert!(e.to_string().contains("ends before its last block"), "{e}");
        // Flipped bits in the data: a code not in the table, a coefficient past
        // the block, or blocks that end elsewhere — never accepted silently.
        let data_start = sos + 2 + len;
        let mut flipped = 0;
        for i in (data_start..jpeg.len() - 2).step_by(7) {
            let mut bad = jpeg.clone();
            bad[i] ^= 0x10;
            if check_clean_jpeg(&bad, MAX).is_err() {
                flipped += 1;
            }
        }
        assert!(flipped > 0);
    }

    #[test]
    fn markers_have_their_standard_names() {
        let names: Vec<String> = [0xC0, 0xC2, 0xC4, 0xD3, 0xDA, 0xE1, 0xED, 0xFE, 0x02]
            .into_iter()
            .map(|m| Marker(m).to_string())
            .collect();
        assert_eq!(
            names,
            ["SOF0", "SOF2", "DHT", "RST3", "SOS", "APP1", "APP13", "COM", "0xFF02"]
        );
    }
}
