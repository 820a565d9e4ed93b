//! The map (网格化地图): the boundaries of the grids, communities and towns the user
//! may see, drawn from the directory as SVG on the server (no script, no tile
//! server, no network), each grid shaded by how many of the selected cases it
//! holds; the cases with a position as markers coloured by status, filtered like
//! the board; and, when asked, a grid worker's patrol tracks for a day over her
//! grid. Coordinates are WGS-84 throughout (the directory's and the phones'),
//! projected equirectangularly at the map's middle latitude: at a district's
//! size the distortion is far below a marker's width.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::NaiveDate;
use gridsync_core::coords::{gcj02_to_wgs84, wgs84_to_gcj02};
use gridsync_core::directory::{Directory, Region};
use gridsync_core::track::TrackPoint;
use gridsync_core::{access, CaseMap, RegionCode, RegionLevel, Role, Status, UserId};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::error::PageError;
use super::i18n::Lang;
use super::pages::{case_filters, layout};
use super::{
    blocking, failure, given, html as page, lang, scope_grids, seal_search, to_sealed, BoardQuery,
};
use crate::http::AppState;
use crate::relay::{ConsoleUser, Relay, RelayError, TileUrl};

/// Width of the map in SVG units; its height follows the region's shape.
const WIDTH: f64 = 960.0;
/// Shades of the choropleth, lightest (no case) to darkest (the busiest grid).
const SHADES: [&str; 6] = [
    "#f4f6f8", "#dbe9f6", "#b3d3ee", "#7fb2dd", "#4a8cc7", "#1f5f9e",
];

/// The map's filters: the board's, and a worker and day for patrol tracks.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct MapQuery {
    status: Option<String>,
    grid: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    channel: Option<String>,
    dept: Option<String>,
    overdue: Option<String>,
    /// As the board's: posted, never in a URL; sealed in `qt`.
    #[serde(skip_serializing)]
    q: Option<String>,
    qt: Option<String>,
    worker: Option<String>,
    day: Option<String>,
}

impl MapQuery {
    /// The search text sealed into `qt`, for the map's URL.
    fn seal(&mut self, relay: &Relay) -> Result<(), PageError> {
        seal_search(&mut self.q, &mut self.qt, relay)
    }

    fn board(&self) -> BoardQuery {
        BoardQuery {
            status: self.status.clone(),
            grid: self.grid.clone(),
            category: self.category.clone(),
            severity: self.severity.clone(),
            channel: self.channel.clone(),
            dept: self.dept.clone(),
            overdue: self.overdue.clone(),
            q: self.q.clone(),
            qt: self.qt.clone(),
            offset: None,
        }
    }

    /// The worker and day whose tracks are asked for, checked: a grid worker
    /// of `who`'s region.
    fn track(
        &self,
        dir: &Directory,
        who: &ConsoleUser,
    ) -> Result<Option<(UserId, NaiveDate)>, PageError> {
        let (Some(worker), Some(day)) = (given(&self.worker), given(&self.day)) else {
            return Ok(None);
        };
        let scope = access::scope_of(&who.user);
        let worker: UserId = worker
            .parse()
            .ok()
            .filter(|w| {
                dir.user(w)
                    .is_some_and(|u| u.role == Role::GridWorker && scope.covers(&u.region))
            })
            .ok_or_else(|| PageError::form("unknown grid worker"))?;
        let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|_| PageError::form("day is YYYY-MM-DD"))?;
        Ok(Some((worker, day)))
    }
}

/// The map's words.
struct Words {
    map: &'static str,
    show: &'static str,
    status: &'static str,
    all: &'static str,
    worker: &'static str,
    none: &'static str,
    day: &'static str,
    cases_shown: &'static str,
    outside: &'static str,
    no_boundaries: &'static str,
    per_grid: &'static str,
    grid: &'static str,
    cases: &'static str,
    track: &'static str,
    no_track: &'static str,
    points: &'static str,
    /// The marker colours' meanings, in [`LEGEND`]'s order.
    legend: [&'static str; 5],
}

const ZH: Words = Words {
    map: "网格化地图",
    show: "显示",
    status: "状态",
    all: "全部",
    worker: "网格员巡查轨迹",
    none: "不显示",
    day: "日期",
    cases_shown: "地图上的事件",
    outside: "件位置在地图范围外，未标出",
    no_boundaries: "目录中没有可绘制的网格边界。",
    per_grid: "各网格事件数",
    grid: "网格",
    cases: "事件数",
    track: "巡查轨迹",
    no_track: "当天没有巡查轨迹。",
    points: "个定位点",
    legend: [
        "待受理 · 已受理",
        "处置中",
        "待核查",
        "已核查 · 已结案",
        "无效",
    ],
};

const EN: Words = Words {
    map: "Grid map",
    show: "Show",
    status: "Status",
    all: "All",
    worker: "Patrol track of grid worker",
    none: "None",
    day: "Day",
    cases_shown: "Cases on the map",
    outside: "cases lie outside the map and are not drawn",
    no_boundaries: "The directory has no grid boundaries to draw.",
    per_grid: "Cases per grid",
    grid: "Grid",
    cases: "Cases",
    track: "Patrol track",
    no_track: "No patrol track that day.",
    points: "points",
    legend: [
        "Reported or accepted",
        "Dispatched",
        "Handled, to verify",
        "Verified or closed",
        "Invalid",
    ],
};

/// The map's name, for the console's menu.
pub fn title(lang: Lang) -> &'static str {
    words(lang).map
}

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// A marker's colour: where the case stands in the loop.
fn status_colour(s: Status) -> &'static str {
    match s {
        Status::Reported | Status::Accepted => "#d97706",
        Status::Dispatched => "#c81e1e",
        Status::Handled => "#7c3aed",
        Status::Verified | Status::Archived | Status::Evaluated => "#15803d",
        Status::Invalid => "#6b7280",
    }
}

/// Longitude/latitude to SVG units: equirectangular at the middle latitude,
/// north up, fitted to the width. Also the resident page's map of grids.
pub(crate) struct Projection {
    /// The westmost longitude (x = 0).
    pub(crate) west: f64,
    /// The northmost latitude (y = 0).
    pub(crate) north: f64,
    east: f64,
    south: f64,
    /// SVG units per degree of latitude.
    pub(crate) scale: f64,
    /// Cosine of the middle latitude: degrees of longitude shrink by it.
    pub(crate) shrink: f64,
}

impl Projection {
    /// Fitted to every point of `rings`, [`WIDTH`] wide; `None` without any.
    fn fit<'a>(rings: impl Iterator<Item = &'a [[f64; 2]]>) -> Option<Projection> {
        Projection::fit_width(rings, WIDTH)
    }

    /// Fitted to every point of `rings`, `width` units wide; `None` without any.
    pub(crate) fn fit_width<'a>(
        rings: impl Iterator<Item = &'a [[f64; 2]]>,
        width: f64,
    ) -> Option<Projection> {
        let (mut west, mut east) = (f64::MAX, f64::MIN);
        let (mut south, mut north) = (f64::MAX, f64::MIN);
        for &[lon, lat] in rings.flatten() {
            west = west.min(lon);
            east = east.max(lon);
            south = south.min(lat);
            north = north.max(lat);
        }
        if west > east {
            return None;
        }
        let shrink = ((north + south) / 2.0).to_radians().cos().max(0.1);
        // At least ~100 m across, so a lone tiny ring is not blown up.
        let span = ((east - west) * shrink).max(north - south).max(0.001);
        Some(Projection {
            west,
            north,
            east,
            south,
            scale: width / span,
            shrink,
        })
    }

    pub(crate) fn height(&self) -> f64 {
        ((self.north - self.south) * self.scale).max(1.0)
    }

    pub(crate) fn width(&self) -> f64 {
        ((self.east - self.west) * self.shrink * self.scale).max(1.0)
    }

    fn xy(&self, lat: f64, lon: f64) -> (f64, f64) {
        (
            (lon - self.west) * self.shrink * self.scale,
            (self.north - lat) * self.scale,
        )
    }

    /// The base map's tiles (Web Mercator) covering the map, at the zoom whose
    /// tiles are closest to 256 units wide, with where each goes: none beyond
    /// [`MAX_TILES`] (a coarser zoom then). Over a town the projection and Web
    /// Mercator differ by far less than a pixel's worth.
    fn tiles(&self, gcj02: bool) -> Vec<Tile> {
        // GCJ-02 tiles: the tiles covering the map's corners in GCJ-02, each
        // placed where its corners are in WGS-84 (the offset hardly changes
        // across a tile).
        let to_tiles = |lat, lon| match gcj02 {
            true => wgs84_to_gcj02(lat, lon),
            false => (lat, lon),
        };
        let to_map = |lat, lon| match gcj02 {
            true => gcj02_to_wgs84(lat, lon),
            false => (lat, lon),
        };
        let (north, west) = to_tiles(self.north, self.west);
        let (south, east) = to_tiles(self.south, self.east);
        let units_per_degree = self.shrink * self.scale;
        let ideal = (360.0 * units_per_degree / 256.0).log2().round();
        let mut z = ideal.clamp(0.0, f64::from(MAX_ZOOM)) as u8;
        loop {
            let n = f64::from(1u32 << z);
            let x = |lon: f64| ((lon + 180.0) / 360.0 * n).floor().clamp(0.0, n - 1.0) as u32;
            let y = |lat: f64| {
                let r = lat.clamp(-85.0, 85.0).to_radians();
                let t = (1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0;
                (t * n).floor().clamp(0.0, n - 1.0) as u32
            };
            let (xs, ys) = (x(west)..=x(east), y(north)..=y(south));
            if xs.clone().count() * ys.clone().count() <= MAX_TILES || z == 0 {
                let lon = |tx: u32| f64::from(tx) / n * 360.0 - 180.0;
                let lat = |ty: u32| {
                    (std::f64::consts::PI * (1.0 - 2.0 * f64::from(ty) / n))
                        .sinh()
                        .atan()
                        .to_degrees()
                };
                return ys
                    .flat_map(|ty| xs.clone().map(move |tx| (tx, ty)))
                    .map(|(tx, ty)| {
                        let (nw_lat, nw_lon) = to_map(lat(ty), lon(tx));
                        let (se_lat, se_lon) = to_map(lat(ty + 1), lon(tx + 1));
                        let (left, top) = self.xy(nw_lat, nw_lon);
                        let (right, bottom) = self.xy(se_lat, se_lon);
                        Tile {
                            z,
                            x: tx,
                            y: ty,
                            left,
                            top,
                            width: right - left,
                            height: bottom - top,
                        }
                    })
                    .collect();
            }
            z -= 1;
        }
    }

    fn holds(&self, lat: f64, lon: f64) -> bool {
        (self.south..=self.north).contains(&lat) && (self.west..=self.east).contains(&lon)
    }

    /// An SVG path of a closed ring, its coordinates with `decimals` decimals.
    pub(crate) fn ring(&self, ring: &[[f64; 2]], decimals: usize) -> String {
        let mut d = String::with_capacity(ring.len() * 16);
        for (i, &[lon, lat]) in ring.iter().enumerate() {
            let (x, y) = self.xy(lat, lon);
            let step = if i == 0 { "M" } else { "L" };
            d.push_str(&format!("{step}{x:.decimals$},{y:.decimals$}"));
        }
        d.push('Z');
        d
    }

    /// An SVG polyline's points.
    fn line(&self, track: &[TrackPoint]) -> String {
        track
            .iter()
            .map(|p| {
                let (x, y) = self.xy(p.lat, p.lon);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Most base-map tiles one map draws.
const MAX_TILES: usize = 48;
/// The finest zoom asked of a tile server.
const MAX_ZOOM: u8 = 18;

/// One base-map tile and where it goes on the map, in SVG units.
#[derive(Debug, PartialEq)]
struct Tile {
    z: u8,
    x: u32,
    y: u32,
    left: f64,
    top: f64,
    width: f64,
    height: f64,
}

/// The shade of a grid holding `n` of the cases, the busiest holding `max`.
fn shade(n: u64, max: u64) -> &'static str {
    if n == 0 || max == 0 {
        return SHADES[0];
    }
    let steps = (SHADES.len() - 1) as u64;
    SHADES[(1 + (n * steps - 1) / max).min(steps) as usize]
}

/// The regions drawn for `who`: those in their region's subtree with a boundary
/// (a department handler, whose cases may be anywhere, sees every one).
fn drawn<'a>(dir: &'a Directory, who: &ConsoleUser) -> Vec<&'a Region> {
    let scope = access::scope_of(&who.user);
    dir.regions()
        .iter()
        .filter(|r| r.boundary.is_some())
        .filter(|r| match scope.region() {
            Some(mine) => mine.contains(&r.code),
            None => true,
        })
        .collect()
}

/// `GET /console/map`.
pub async fn map(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Query(q): Query<MapQuery>,
) -> Response {
    let lang = lang(&headers);
    if given(&q.q).is_some() {
        return to_sealed(&state, lang, &who, "/console/map", q, MapQuery::seal).await;
    }
    let (board2, who2) = (q.board(), who.clone());
    let worker = q.worker.clone();
    let day = q.day.clone();
    let result = blocking(&state, move |r| {
        let engine = r.engine();
        let dir = engine.directory().map_err(RelayError::internal)?;
        let mut board2 = board2;
        board2.open(r)?;
        let filter = board2.filter(&who2)?;
        let cases = engine.case_map(&filter).map_err(RelayError::internal)?;
        let asked = MapQuery {
            worker,
            day,
            ..MapQuery::default()
        };
        let tracks = match asked.track(&dir, &who2)? {
            Some((worker, day)) => Some(
                engine
                    .patrol_tracks_as(&who2.user, &worker, day)
                    .map_err(RelayError::internal)?,
            ),
            None => None,
        };
        Ok::<_, PageError>((dir, cases, tracks, r.map_tiles().cloned(), board2))
    })
    .await;
    let (dir, cases, tracks, tiles, board) = match result {
        Ok(v) => v,
        Err(e) => return failure(lang, Some(&who), &e),
    };
    let data = MapData {
        cases,
        tracks,
        tiles,
    };
    let body = map_page(lang, &who, &dir, &q, &board, &data);
    page(
        StatusCode::OK,
        layout(lang, Some(&who), "/console/map", body),
    )
}

/// The map's filter form, posted: the same map, its search sealed.
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: ConsoleUser,
    Form(q): Form<MapQuery>,
) -> Response {
    let lang = lang(&headers);
    to_sealed(&state, lang, &who, "/console/map", q, MapQuery::seal).await
}

/// What the map shows.
struct MapData {
    cases: CaseMap,
    tracks: Option<Vec<Vec<TrackPoint>>>,
    /// The base map's tiles, if configured.
    tiles: Option<TileUrl>,
}

fn map_page(
    lang: Lang,
    who: &ConsoleUser,
    dir: &Directory,
    q: &MapQuery,
    board: &BoardQuery,
    data: &MapData,
) -> Markup {
    let w = words(lang);
    let regions = drawn(dir, who);
    let projection = Projection::fit(regions.iter().filter_map(|r| r.boundary.as_deref()));
    let count_of = |code: &RegionCode| {
        data.cases
            .per_grid
            .iter()
            .find(|(g, _)| g == code)
            .map_or(0, |(_, n)| *n)
    };
    let max = data
        .cases
        .per_grid
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let scope = access::scope_of(&who.user);
    let workers: Vec<_> = dir
        .users()
        .iter()
        .filter(|u| u.role == Role::GridWorker && scope.covers(&u.region))
        .collect();
    let mut per_grid: Vec<(&RegionCode, u64)> =
        data.cases.per_grid.iter().map(|(g, n)| (g, *n)).collect();
    per_grid.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    html! {
        h2 { (w.map) }
        form.filters method="post" action="/console/map" {
            label { (w.status) select name="status" {
                option value="" { (w.all) }
                @for s in Status::ALL {
                    option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (lang.status(s)) }
                }
            } }
            (case_filters(lang, dir, board, &scope_grids(dir, who)))
            label { (w.worker) select name="worker" {
                option value="" { (w.none) }
                @for u in &workers {
                    option value=(u.id.as_str()) selected[q.worker.as_deref() == Some(u.id.as_str())] { (u.name) }
                }
            } }
            label { (w.day) input type="date" name="day" value=(q.day.clone().unwrap_or_default()); }
            button type="submit" { (w.show) }
        }
        @match &projection {
            None => p id="no-boundaries" { (w.no_boundaries) },
            Some(pr) => {
                @let outside = data.cases.points.iter().filter(|c| !pr.holds(c.lat, c.lon)).count();
                p id="map-summary" {
                    (w.cases_shown) " " strong { (data.cases.points.len() - outside) }
                    @if outside > 0 { " · " (outside) " " (w.outside) }
                }
                (legend(lang))
                svg #map xmlns="http://www.w3.org/2000/svg" role="img"
                    width=(format!("{:.0}", pr.width())) height=(format!("{:.0}", pr.height()))
                    viewBox=(format!("-4 -4 {:.0} {:.0}", pr.width() + 8.0, pr.height() + 8.0)) {
                    title { (w.map) }
                    @if let Some(tiles) = &data.tiles {
                        g #basemap {
                            @for t in pr.tiles(tiles.gcj02()) {
                                image href=(tiles.tile(t.z, t.x, t.y)) preserveAspectRatio="none"
                                    x=(format!("{:.1}", t.left)) y=(format!("{:.1}", t.top))
                                    width=(format!("{:.1}", t.width)) height=(format!("{:.1}", t.height)) {}
                            }
                        }
                    }
                    // Over a base map the choropleth lets it show through.
                    @let opacity = if data.tiles.is_some() { "0.55" } else { "1" };
                    @for r in regions.iter().filter(|r| r.level == RegionLevel::Grid) {
                        @if let Some(ring) = &r.boundary {
                            @let n = count_of(&r.code);
                            path.grid d=(pr.ring(ring, 1)) fill=(shade(n, max)) fill-opacity=(opacity)
                                stroke="#9aa5b1" stroke-width="0.6"
                                data-grid=(r.code.as_str()) data-cases=(n) {
                                title { (r.name) " · " (n) }
                            }
                        }
                    }
                    @for r in regions.iter().filter(|r| r.level != RegionLevel::Grid) {
                        @if let Some(ring) = &r.boundary {
                            path.outline d=(pr.ring(ring, 1)) fill="none" stroke="#3e4c59"
                                stroke-width=(match r.level { RegionLevel::Community => "1.2", RegionLevel::Town => "2.2", _ => "3" })
                                data-region=(r.code.as_str()) {
                                title { (r.name) }
                            }
                        }
                    }
                    @if let Some(tracks) = &data.tracks {
                        @for t in tracks.iter().filter(|t| !t.is_empty()) {
                            polyline.track points=(pr.line(t)) fill="none" stroke="#111827" stroke-width="2"
                                stroke-linejoin="round" {}
                        }
                    }
                    @for c in data.cases.points.iter().filter(|c| pr.holds(c.lat, c.lon)) {
                        @let (x, y) = pr.xy(c.lat, c.lon);
                        a href=(format!("/console/cases/{}", c.id)) {
                            circle.case cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="4.5"
                                fill=(status_colour(c.status)) stroke="#ffffff" stroke-width="1"
                                data-status=(c.status.as_str()) {
                                title { (c.title) " · " (lang.status(c.status)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(tracks) = &data.tracks {
            @let n: usize = tracks.iter().map(Vec::len).sum();
            p id="track-summary" {
                @if n == 0 { (w.no_track) } @else { (w.track) ": " (tracks.len()) " · " (n) " " (w.points) }
            }
        }
        details id="per-grid" {
            summary { (w.per_grid) }
            table {
                tr { th { (w.grid) } th { (w.cases) } }
                @for (g, n) in &per_grid {
                    tr { td { (super::pages::region_name(dir, g)) } td { (n) } }
                }
            }
        }
    }
}

/// One status of each marker colour, in the legend's order.
const LEGEND: [Status; 5] = [
    Status::Reported,
    Status::Dispatched,
    Status::Handled,
    Status::Verified,
    Status::Invalid,
];

/// What the colours mean.
fn legend(lang: Lang) -> Markup {
    html! {
        p.legend {
            @for (s, label) in LEGEND.iter().zip(words(lang).legend) {
                span { svg width="12" height="12" { circle cx="6" cy="6" r="5" fill=(status_colour(*s)) {} } " " (label) } " "
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_grow_with_the_count_and_the_busiest_is_darkest() {
        assert_eq!(shade(0, 10), SHADES[0]);
        assert_eq!(shade(1, 10), SHADES[1]);
        assert_eq!(shade(10, 10), SHADES[5]);
        assert_eq!(shade(5, 0), SHADES[0]);
        let order: Vec<usize> = (0..=10)
            .map(|n| SHADES.iter().position(|s| *s == shade(n, 10)).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    /// A square of about 3 km near 30.25° N 120.0° E.
    const RING: [[f64; 2]; 4] = [
        [120.0, 30.24],
        [120.03, 30.24],
        [120.03, 30.27],
        [120.0, 30.27],
    ];

    /// The base map's tiles cover the map edge to edge, at a zoom where a tile
    /// is about 256 units wide, and sit where the projection puts their corners:
    /// tile (15, 27_306, 13_490) of Web Mercator holds 30.27° N 120.0° E.
    #[test]
    fn base_map_tiles_cover_the_map_at_a_fitting_zoom() {
        let p = Projection::fit(std::iter::once(&RING[..])).unwrap();
        let tiles = p.tiles(false);
        assert!(!tiles.is_empty() && tiles.len() <= MAX_TILES);
        let z = tiles[0].z;
        assert!(tiles.iter().all(|t| t.z == z));
        assert!(
            tiles.iter().all(|t| (128.0..512.0).contains(&t.width)),
            "{tiles:?}"
        );
        let left = tiles.iter().map(|t| t.left).fold(f64::MAX, f64::min);
        let right = tiles
            .iter()
            .map(|t| t.left + t.width)
            .fold(f64::MIN, f64::max);
        let top = tiles.iter().map(|t| t.top).fold(f64::MAX, f64::min);
        let bottom = tiles
            .iter()
            .map(|t| t.top + t.height)
            .fold(f64::MIN, f64::max);
        assert!(left <= 0.0 && right >= p.width(), "{left} {right}");
        assert!(top <= 0.0 && bottom >= p.height(), "{top} {bottom}");
        // At zoom 15 the north-west corner lies in tile 27_306, 13_490.
        let far = Projection {
            scale: p.scale * f64::from(1u32 << 15) / f64::from(1u32 << z),
            ..p
        };
        let corner = far.tiles(false).into_iter().next().unwrap();
        assert_eq!((corner.z, corner.x, corner.y), (15, 27_306, 13_490));
        // A region far too large for 48 tiles is drawn at a coarser zoom.
        let wide = Projection {
            scale: 1e9,
            ..Projection::fit(std::iter::once(&RING[..])).unwrap()
        };
        let coarse = wide.tiles(false);
        assert!(coarse.len() <= MAX_TILES && coarse[0].z < MAX_ZOOM);
    }

    /// GCJ-02 tiles sit a few hundred metres from where WGS-84 tiles of the same
    /// numbers would: each where its GCJ-02 corners are in WGS-84, so the
    /// directory's shapes fall on the streets they follow.
    #[test]
    fn gcj02_tiles_are_placed_where_their_corners_really_are() {
        let p = Projection::fit(std::iter::once(&RING[..])).unwrap();
        let (plain, mars) = (p.tiles(false), p.tiles(true));
        let moved = mars.iter().find_map(|m| {
            plain
                .iter()
                .find(|t| (t.z, t.x, t.y) == (m.z, m.x, m.y))
                .map(|t| (t, m))
        });
        let (t, m) = moved.expect("a tile drawn either way");
        // Around Hangzhou GCJ-02 lies some 450 m east and 270 m south of
        // WGS-84: its tiles are drawn west and north of the same tiles in WGS-84.
        let unit_m = 111_000.0 / p.scale;
        let (dx, dy) = ((m.left - t.left) * unit_m, (m.top - t.top) * unit_m);
        assert!((-600.0..-300.0).contains(&dx), "{dx} m");
        assert!((-400.0..-150.0).contains(&dy), "{dy} m");
        // Still edge to edge over the map.
        let left = mars.iter().map(|t| t.left).fold(f64::MAX, f64::min);
        let top = mars.iter().map(|t| t.top).fold(f64::MAX, f64::min);
        assert!(left <= 0.0 && top <= 0.0, "{left} {top}");
    }

    #[test]
    fn the_projection_keeps_north_up_and_fits_the_width() {
        let ring = [[120.0, 30.0], [120.1, 30.0], [120.1, 30.05], [120.0, 30.05]];
        let p = Projection::fit(std::iter::once(&ring[..])).unwrap();
        let (x0, y0) = p.xy(30.05, 120.0);
        let (x1, y1) = p.xy(30.0, 120.1);
        assert!((x0, y0) == (0.0, 0.0));
        assert!((x1 - WIDTH).abs() < 1e-6, "{x1}");
        // 0.05° of latitude is about 0.0577° of longitude at 30°: taller than half.
        assert!(y1 > WIDTH / 2.0 && y1 < WIDTH * 0.6, "{y1}");
        assert!(p.holds(30.02, 120.05) && !p.holds(39.9, 116.4));
        // The south-west corner first: left edge, bottom; then three lines, closed.
        let d = p.ring(&ring, 1);
        let bottom = format!("M0.0,{y1:.1}L");
        assert!(
            d.starts_with(&bottom) && d.matches('L').count() == 3 && d.ends_with('Z'),
            "{d}"
        );
    }
}
