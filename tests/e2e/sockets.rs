//! Over real sockets: `gridsync serve` on a loopback port, `gridsync admin enroll`,
//! and devices syncing through HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use gridsync_core::sync::{self, HttpTransport};
use gridsync_core::{DeviceId, Engine, Identity, Status};

use crate::workflow::{leak, DISPATCHER, WORKER};

/// The `gridsync` binary: `GRIDSYNC_BIN`, or the one `cargo test --workspace` built
/// next to this test executable.
pub fn gridsync() -> Command {
    let path = std::env::var_os("GRIDSYNC_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test executable path");
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("gridsync")
        });
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p gridsync-server` or set GRIDSYNC_BIN",
        path.display()
    );
    Command::new(path)
}

/// A `gridsync serve` process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(data: &Path) -> Server {
    start_with(data, &[])
}

/// `gridsync serve` with extra flags.
pub fn start_with(data: &Path, flags: &[&str]) -> Server {
    start_with_env(data, flags, &[])
}

/// `gridsync serve` with extra flags and environment variables.
pub fn start_with_env(data: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
    let child = gridsync()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(flags)
        .env("GRIDSYNC_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gridsync serve starts");
    listening(child)
}

/// The server a `gridsync serve` child (stdout piped) says it listens as.
pub fn listening(mut child: Child) -> Server {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let url = line
        .trim()
        .strip_prefix("gridsync listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, url }
}

pub fn enroll(data: &Path, server: &Server, user: &str, folder: &Path) -> Engine {
    enroll_with_clock(
        data,
        server,
        user,
        folder,
        std::sync::Arc::new(chrono::Utc::now),
    )
}

/// Like [`enroll`], for a device whose clock is `clock` (e.g. one that acted days ago).
pub fn enroll_with_clock(
    data: &Path,
    server: &Server,
    user: &str,
    folder: &Path,
    clock: gridsync_core::Clock,
) -> Engine {
    enroll_on(data, &[], server, user, folder, clock)
}

/// A one-time enrollment code for `user` from `gridsync admin enroll`.
pub fn enrollment_code(data: &Path, admin_flags: &[&str], user: &str) -> String {
    let out = gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(admin_flags)
        .args(["enroll", "--user", user])
        .output()
        .expect("admin enroll");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Like [`enroll_with_clock`], with storage flags for `gridsync admin` (e.g. the
/// `--database-url` of a relay on PostgreSQL).
pub fn enroll_on(
    data: &Path,
    admin_flags: &[&str],
    server: &Server,
    user: &str,
    folder: &Path,
    clock: gridsync_core::Clock,
) -> Engine {
    let code = enrollment_code(data, admin_flags, user);
    let device = DeviceId::random();
    let e = sync::enroll(&HttpTransport::new(&server.url), &code, device, "e2e")
        .expect("enroll over HTTP");
    let engine = Engine::open_with_clock(
        folder.join(format!("{user}.db")),
        Identity {
            user: e.user,
            device,
        },
        clock,
    )
    .unwrap();
    engine.load_directory(&e.directory).unwrap();
    engine.set_server(&server.url, &e.token).unwrap();
    engine
}

#[test]
fn devices_sync_through_gridsync_serve_on_a_loopback_port() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start(&data);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());

    let id = worker.report_case(leak()).unwrap();
    let mut seen = Vec::new();
    let r = worker.sync(&mut |p| seen.push(p)).unwrap();
    assert_eq!(r.pushed, 1);
    assert!(!seen.is_empty(), "progress is reported");
    dispatcher.sync(&mut |_| {}).unwrap();
    dispatcher.act(&id, gridsync_core::Action::Accept).unwrap();
    dispatcher.sync(&mut |_| {}).unwrap();
    worker.sync(&mut |_| {}).unwrap();
    assert_eq!(worker.get_case(&id).unwrap().state.status, Status::Accepted);

    // The relay survives a restart with everything it acknowledged.
    drop(server);
    let server = start(&data);
    let late = enroll(&data, &server, "td-339901001", dir.path());
    late.sync(&mut |_| {}).unwrap();
    assert_eq!(late.get_case(&id).unwrap().state.status, Status::Accepted);
}

#[test]
fn metrics_count_requests_changes_and_backlog_without_naming_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let token = "e2e-metrics-token-0123456789";
    let server = start_with(&data, &["--metrics-token", token]);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let dispatcher = enroll(&data, &server, DISPATCHER, dir.path());
    worker.report_case(leak()).unwrap();
    worker.sync(&mut |_| {}).unwrap();

    let scrape = || -> String {
        ureq::get(format!("{}/metrics", server.url))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("metrics answered")
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let text = scrape();
    for line in [
        "gridsync_pushed_changes_total{outcome=\"accepted\"} 1",
        "gridsync_http_requests_total{route=\"push\",status=\"200\"} 1",
        "gridsync_log_changes 1",
        "gridsync_devices 2",
        "gridsync_devices_behind 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("gridsync_sync_request_seconds_bucket{le="));
    assert!(
        !text.contains(WORKER) && !text.contains("漏水"),
        "no one is named"
    );

    dispatcher.sync(&mut |_| {}).unwrap();
    let text = scrape();
    assert!(
        text.lines().any(|l| l == "gridsync_pulled_changes_total 1"),
        "{text}"
    );
}
