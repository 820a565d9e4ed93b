//! WGS-84 and GCJ-02 at the edges. gridsync keeps every coordinate in WGS-84 (the
//! directory's boundaries, cases, tracks: what a phone's GPS and a browser's
//! geolocation give). Chinese map services publish GCJ-02 ("火星坐标", offset
//! by a few hundred metres inside China): an app that takes positions from such
//! an SDK converts them with [`gcj02_to_wgs84`] before handing them to the core,
//! and the console places GCJ-02 base-map tiles with it. Outside China the two
//! are the same.
//!
//! The transform is the published one (as in the `eviltransform` libraries, whose
//! test points the tests below use); its inverse is found by iteration.

use std::f64::consts::PI;

/// Semi-major axis of the Krasovsky 1940 ellipsoid the transform uses.
const A: f64 = 6_378_245.0;
/// Its first eccentricity squared.
const EE: f64 = 0.006_693_421_622_965_943;

/// Whether a WGS-84 position is where GCJ-02 differs from it (a rough box
/// around China, as the transform defines it).
pub fn offset_applies(lat: f64, lon: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

fn shift(x: f64, y: f64) -> (f64, f64) {
    let common = 20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin();
    let mut lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    let mut lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    lat += (common + 20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    lon += (common + 20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    lat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    lon += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    (lat, lon)
}

/// The GCJ-02 position of a WGS-84 one.
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if !offset_applies(lat, lon) {
        return (lat, lon);
    }
    let (dlat, dlon) = shift(lon - 105.0, lat - 35.0);
    let rad = lat.to_radians();
    let magic = 1.0 - EE * rad.sin() * rad.sin();
    let root = magic.sqrt();
    let dlat = dlat * 180.0 / ((A * (1.0 - EE)) / (magic * root) * PI);
    let dlon = dlon * 180.0 / (A / root * rad.cos() * PI);
    (lat + dlat, lon + dlon)
}

/// The WGS-84 position of a GCJ-02 one, to within a centimetre or so.
pub fn gcj02_to_wgs84(lat: f64, lon: f64) -> (f64, f64) {
    let (mut wlat, mut wlon) = (lat, lon);
    // The offset changes slowly: each step moves the guess by the error left.
    for _ in 0..10 {
        let (glat, glon) = wgs84_to_gcj02(wlat, wlon);
        let (elat, elon) = (glat - lat, glon - lon);
        wlat -= elat;
        wlon -= elon;
        if elat.abs() < 1e-9 && elon.abs() < 1e-9 {
            break;
        }
    }
    (wlat, wlon)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (WGS-84 lat, lon) → (GCJ-02 lat, lon): Shanghai, Shenzhen, Beijing.
    const POINTS: [(f64, f64, f64, f64); 3] = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    ];

    #[test]
    fn published_points_transform_both_ways() {
        for (wlat, wlon, glat, glon) in POINTS {
            let (lat, lon) = wgs84_to_gcj02(wlat, wlon);
            assert!(
                (lat - glat).abs() < 1e-9 && (lon - glon).abs() < 1e-9,
                "{lat} {lon}"
            );
            let (lat, lon) = gcj02_to_wgs84(glat, glon);
            // 1e-7 degrees is about a centimetre.
            assert!(
                (lat - wlat).abs() < 1e-7 && (lon - wlon).abs() < 1e-7,
                "{lat} {lon}"
            );
        }
    }

    #[test]
    fn outside_china_nothing_moves() {
        assert_eq!(wgs84_to_gcj02(48.8566, 2.3522), (48.8566, 2.3522));
        assert_eq!(gcj02_to_wgs84(-33.86, 151.21), (-33.86, 151.21));
    }
}
