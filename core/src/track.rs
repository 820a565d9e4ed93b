//! Compact GPS tracks. A two-hour patrol with a point every 5 s is 1,440 points; as
//! one CRDT object per point that would cost tens of kilobytes of metadata. Instead
//! points are buffered on the device and written into the patrol document as opaque
//! chunks: delta-encoded, zigzag varints, microdegrees and milliseconds.

use chrono::{DateTime, Utc};

/// Most points accepted in one chunk (a chunk is written every few minutes).
pub const MAX_POINTS_PER_CHUNK: usize = 10_000;
const CHUNK_VERSION: u8 = 1;

/// One GPS fix. Personal data: never logged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackPoint {
    /// When.
    pub at: DateTime<Utc>,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

/// A chunk that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("track chunk is malformed: {0}")]
pub struct TrackError(&'static str);

fn micro(deg: f64) -> i64 {
    (deg * 1e6).round() as i64
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(input: &mut &[u8]) -> Result<i64, TrackError> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(TrackError("truncated"))?;
        *input = rest;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err(TrackError("varint too long"))
}

/// Encode points (at most [`MAX_POINTS_PER_CHUNK`]; the caller splits longer runs).
pub fn encode(points: &[TrackPoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + points.len() * 5);
    out.push(CHUNK_VERSION);
    put_varint(&mut out, points.len() as i64);
    let (mut t, mut lat, mut lon) = (0i64, 0i64, 0i64);
    for p in points {
        let (pt, plat, plon) = (p.at.timestamp_millis(), micro(p.lat), micro(p.lon));
        put_varint(&mut out, pt.wrapping_sub(t));
        put_varint(&mut out, plat - lat);
        put_varint(&mut out, plon - lon);
        (t, lat, lon) = (pt, plat, plon);
    }
    out
}

/// Decode a chunk, refusing anything malformed or oversized.
pub fn decode(mut bytes: &[u8]) -> Result<Vec<TrackPoint>, TrackError> {
    let (&version, rest) = bytes.split_first().ok_or(TrackError("empty"))?;
    if version != CHUNK_VERSION {
        return Err(TrackError("unknown version"));
    }
    bytes = rest;
    let n = get_varint(&mut bytes)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_POINTS_PER_CHUNK)
        .ok_or(TrackError("bad point count"))?;
    let mut points = Vec::with_capacity(n.min(bytes.len() / 3 + 1));
    let (mut t, mut lat, mut lon) = (0i64, 0i64, 0i64);
    for _ in 0..n {
        t = t.wrapping_add(get_varint(&mut bytes)?);
        lat = lat
            .checked_add(get_varint(&mut bytes)?)
            .ok_or(TrackError("overflow"))?;
        lon = lon
            .checked_add(get_varint(&mut bytes)?)
            .ok_or(TrackError("overflow"))?;
        let at = DateTime::from_timestamp_millis(t).ok_or(TrackError("bad time"))?;
        let (flat, flon) = (lat as f64 / 1e6, lon as f64 / 1e6);
        if !(-90.0..=90.0).contains(&flat) || !(-180.0..=180.0).contains(&flon) {
            return Err(TrackError("coordinate out of range"));
        }
        points.push(TrackPoint {
            at,
            lat: flat,
            lon: flon,
        });
    }
    if !bytes.is_empty() {
        return Err(TrackError("trailing bytes"));
    }
    Ok(points)
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(a: &TrackPoint, b: &TrackPoint) -> f64 {
    const R: f64 = 6_371_000.0;
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().asin()
}

/// Length of a track in metres.
pub fn length_m(points: &[TrackPoint]) -> f64 {
    points.windows(2).map(|w| distance_m(&w[0], &w[1])).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn walk(n: usize) -> Vec<TrackPoint> {
        let start = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        (0..n)
            .map(|i| TrackPoint {
                at: start + chrono::Duration::seconds(5 * i as i64),
                lat: 30.25 + 0.00002 * i as f64,
                lon: 120.15,
            })
            .collect()
    }

    #[test]
    fn a_walking_track_costs_a_few_bytes_per_point() {
        let points = walk(720);
        let bytes = encode(&points);
        assert!(bytes.len() < 720 * 6, "{} bytes", bytes.len());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.len(), 720);
        assert!((back[719].lat - points[719].lat).abs() < 1e-6);
        // 719 steps of 0.00002° north: 719 × 2.2239 m.
        let len = length_m(&back);
        assert!((len - 1599.0).abs() < 2.0, "{len} m");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let bytes = encode(&walk(10));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 0]).is_err());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        // A declared count far above the limit must not allocate.
        let mut huge = vec![CHUNK_VERSION];
        put_varint(&mut huge, i64::MAX);
        assert!(decode(&huge).is_err());
        assert!(decode(&[
            CHUNK_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x01
        ])
        .is_err());
    }

    proptest! {
        #[test]
        fn round_trips_to_the_microdegree(
            raw in proptest::collection::vec((0i64..4_000_000_000_000, -90.0f64..90.0, -180.0f64..180.0), 0..200)
        ) {
            let points: Vec<TrackPoint> = raw.iter().map(|&(ms, lat, lon)| TrackPoint {
                at: DateTime::from_timestamp_millis(ms).unwrap(), lat, lon,
            }).collect();
            let back = decode(&encode(&points)).unwrap();
            prop_assert_eq!(back.len(), points.len());
            for (a, b) in points.iter().zip(&back) {
                prop_assert_eq!(a.at, b.at);
                prop_assert!((a.lat - b.lat).abs() <= 5e-7);
                prop_assert!((a.lon - b.lon).abs() <= 5e-7);
            }
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
