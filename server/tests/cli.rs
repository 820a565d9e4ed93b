//! The `gridsync` binary as a person runs it: the demo's output and the benchmark's
//! JSON lines.

use std::process::Command;

fn gridsync(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gridsync"))
        .args(args)
        .output()
        .expect("gridsync runs");
    assert!(
        out.status.success(),
        "gridsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn the_demo_runs_a_day_through_the_closed_loop_in_chinese() {
    let out = gridsync(&["demo"]);
    for expected in [
        "望湖社区的一天",
        "【楼上管道漏水】",
        "发现上报",
        "派遣 → 区水务局",
        "处置反馈",
        "核查未通过",
        "核查通过",
        "回访评价 5/5",
        "冲突，未生效",
        "办结率: 75%",
        "达标（一日双巡）",
        "未达标",
    ] {
        assert!(
            out.contains(expected),
            "demo output lacks {expected:?}:\n{out}"
        );
    }
    assert!(
        out.contains("待上传变更 0, 被服务器拒绝 0"),
        "everything synced:\n{out}"
    );
    // Residents' details never reach the output.
    assert!(!out.contains("住户甲"));
}

#[test]
fn the_demo_speaks_english_on_request_and_keeps_its_data_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = gridsync(&["demo", "--lang", "en", "--data", data.to_str().unwrap()]);
    assert!(out.contains("closure rate: 75%"), "{out}");
    assert!(data.join("devices").join("cd-339901001001.db").exists());
    assert!(data.join("relay").join("relay.db").exists());
    let again = Command::new(env!("CARGO_BIN_EXE_gridsync"))
        .args(["demo", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "a non-empty data folder is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

#[test]
fn the_device_benchmark_prints_one_json_line_per_figure() {
    let out = gridsync(&["bench", "device", "--cases", "300", "--samples", "5"]);
    let figures: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let names: Vec<&str> = figures
        .iter()
        .map(|f| f["figure"].as_str().unwrap())
        .collect();
    for name in [
        "import",
        "db_bytes_per_case",
        "open",
        "list_first_page",
        "search_two_chars",
        "report_case",
        "act_accept",
        "track_bytes_per_patrol_hour",
    ] {
        assert!(names.contains(&name), "missing figure {name}: {names:?}");
    }
    let search = figures
        .iter()
        .find(|f| f["figure"] == "search_two_chars")
        .unwrap();
    assert!(
        search["rows"].as_u64().unwrap() > 0,
        "漏水 finds generated cases"
    );
    assert!(figures.iter().all(|f| f["bench"] == "device"));
}

#[test]
fn the_load_benchmark_checks_every_devices_data_on_the_relay() {
    let out = gridsync(&["bench", "load", "--devices", "3", "--minutes", "0.2"]);
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["bench"], "load");
    assert_eq!(line["devices"], 3);
    assert_eq!(line["errors"], 0, "{line}");
    assert_eq!(line["exactly_once"], true);
    assert_eq!(line["converged"], true);
    assert!(line["syncs"].as_u64().unwrap() >= 3);
    assert!(line["cases"].as_u64().unwrap() >= 1, "{line}");
    assert!(line["sync_p99_ms"].as_f64().unwrap() >= line["sync_p50_ms"].as_f64().unwrap());
}
