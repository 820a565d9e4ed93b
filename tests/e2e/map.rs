//! The console's map over a real `gridsync serve`: the grids of the dispatcher's
//! community drawn from the directory's boundaries and shaded by their cases,
//! the cases with a position as markers filtered like the board, a case placed
//! outside the map counted rather than drawn, and a grid worker's patrol track.

use chrono::Utc;
use gridsync_core::track::TrackPoint;
use gridsync_core::{Location, NewCase};

use crate::registry_import::{console_get, console_session};
use crate::sockets::{enroll, gridsync, start, start_with};
use crate::workflow::{leak, DISPATCHER, HANDLER, WORKER};

fn at(title: &str, lat: f64, lon: f64) -> NewCase {
    NewCase {
        title: title.into(),
        location: Some(Location {
            lat,
            lon,
            address: "望湖小区".into(),
        }),
        ..leak()
    }
}

/// How many times `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn the_map_draws_the_grids_the_cases_and_a_workers_track() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let phones = tempfile::tempdir().unwrap();
    let worker = enroll(data.path(), &server, WORKER, phones.path());
    worker
        .report_case(at("楼道堆物", 30.2741, 120.1551))
        .unwrap();
    worker
        .report_case(at("路灯损坏", 30.2745, 120.1540))
        .unwrap();
    // A position far from the district (a phone's GPS gone wrong).
    worker
        .report_case(at("位置异常", 39.9042, 116.4074))
        .unwrap();
    let patrol = worker.start_patrol().unwrap();
    let now = Utc::now();
    let track: Vec<TrackPoint> = (0..20)
        .map(|i| TrackPoint {
            at: now + chrono::Duration::seconds(i * 30),
            lat: 30.2740 + f64::from(i as i32) * 0.00005,
            lon: 120.1530 + f64::from(i as i32) * 0.00008,
        })
        .collect();
    worker.add_track_points(&patrol, &track).unwrap();
    worker.sync(&mut |_| {}).unwrap();

    let cookie = console_session(data.path(), &server.url, DISPATCHER);
    let (status, body) = console_get(&server.url, &cookie, "/console/map");
    assert_eq!(status, 200, "{body}");
    // Every grid of 望湖社区 drawn, and the community's outline; no other community.
    let dir = gridsync_core::directory::Directory::from_json(include_str!(
        "../../core/data/sample-directory.json"
    ))
    .unwrap();
    let grids = dir
        .regions()
        .iter()
        .filter(|r| r.code.as_str().starts_with("339901001001") && r.code.as_str().len() == 15)
        .count();
    assert_eq!(count(&body, "class=\"grid\""), grids, "one shape per grid");
    assert!(body.contains("data-region=\"339901001001\""));
    assert!(!body.contains("data-grid=\"339901001002001\""));
    // The first grid holds all three cases, the busiest: darkest shade.
    assert!(
        body.contains("data-grid=\"339901001001001\" data-cases=\"3\""),
        "the choropleth counts every case of the grid"
    );
    // Two markers; the third counted as outside.
    assert_eq!(count(&body, "class=\"case\""), 2, "{body}");
    assert!(body.contains("1 件位置在地图范围外"));
    // Filtered like the board: no case is archived yet.
    let (_, archived) = console_get(&server.url, &cookie, "/console/map?status=archived");
    assert_eq!(count(&archived, "class=\"case\""), 0);
    assert!(archived.contains("data-grid=\"339901001001001\" data-cases=\"0\""));

    // The worker's track for today, in local time (UTC+8).
    let day = now
        .with_timezone(&gridsync_core::index::local_offset())
        .date_naive();
    let (status, tracked) = console_get(
        &server.url,
        &cookie,
        &format!("/console/map?worker={WORKER}&day={day}"),
    );
    assert_eq!(status, 200, "{tracked}");
    assert_eq!(count(&tracked, "class=\"track\""), 1);
    assert!(tracked.contains("20 个定位点"), "{tracked}");
    let (_, other_day) = console_get(
        &server.url,
        &cookie,
        &format!("/console/map?worker={WORKER}&day=2020-01-01"),
    );
    assert!(other_day.contains("当天没有巡查轨迹"));
    let (status, bad) = console_get(
        &server.url,
        &cookie,
        &format!("/console/map?worker={WORKER}&day=yesterday"),
    );
    assert_eq!(status, 400, "{bad}");
    assert!(bad.contains("day is YYYY-MM-DD"));

    // Another community's dispatcher sees her own grids and none of these cases;
    // the worker is not hers, so asking for her track is refused.
    let other = console_session(data.path(), &server.url, "cd-339901001002");
    let (_, theirs) = console_get(&server.url, &other, "/console/map");
    assert_eq!(count(&theirs, "class=\"case\""), 0);
    assert!(!theirs.contains("data-grid=\"339901001001001\""));
    assert!(theirs.contains("data-grid=\"339901001002001\""));
    let (status, refused) = console_get(
        &server.url,
        &other,
        &format!("/console/map?worker={WORKER}&day={day}"),
    );
    assert_eq!(status, 400);
    assert!(refused.contains("unknown grid worker") && !refused.contains("class=\"track\""));
    // A department handler: the cases dispatched to her department (none yet).
    let handler = console_session(data.path(), &server.url, HANDLER);
    let (status, hers) = console_get(&server.url, &handler, "/console/map");
    assert_eq!(status, 200);
    assert_eq!(count(&hers, "class=\"case\""), 0);
    // No base map configured: vector shapes only, the choropleth opaque.
    assert_eq!(count(&body, "<image"), 0);
    assert!(!body.contains("id=\"basemap\"") && !body.contains("fill-opacity=\"0.55\""));
}

/// With `map_tile_url` configured, tiles from it lie under the shapes (which
/// let them show through); a template that is not a tile URL stops the server
/// from starting, saying why.
#[test]
fn a_configured_tile_server_draws_a_base_map_under_the_shapes() {
    let data = tempfile::tempdir().unwrap();
    let tiles = "https://tiles.example.cn/wgs84/{z}/{x}/{y}.png";
    let server = start_with(data.path(), &["--map-tile-url", tiles]);
    let cookie = console_session(data.path(), &server.url, DISPATCHER);
    let (status, body) = console_get(&server.url, &cookie, "/console/map");
    assert_eq!(status, 200, "{body}");
    let basemap = body
        .split("id=\"basemap\"")
        .nth(1)
        .expect("a base map group")
        .split("</g>")
        .next()
        .unwrap();
    let n = count(basemap, "<image");
    assert!((1..=48).contains(&n), "{n} tiles");
    assert!(basemap.contains("href=\"https://tiles.example.cn/wgs84/"));
    // Under the shapes: the base map comes before the first grid.
    assert!(body.find("id=\"basemap\"") < body.find("class=\"grid\""));
    assert!(body.contains("fill-opacity=\"0.55\""));

    let mut child = gridsync()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path().join("other"))
        .args(["--map-tile-url", "https://tiles.example.cn/{z}/{x}.png"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway is stopped, and the test fails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("map_tile_url must contain {y} exactly once"),
        "{said}"
    );
}
