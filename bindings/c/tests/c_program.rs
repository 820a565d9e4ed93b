//! The C API from a real C program: `tests/day.c` is compiled with `cc` against
//! `include/gridsync.h` and the `libgridsync_c` of this build (`cargo build`), and runs a
//! grid worker's day against a real `gridsync serve` on loopback. Then a dispatcher's
//! device (through `gridsync_ffi`, the facade the C API wraps) syncs and must see the
//! case and its photo: the server side of what the C program claims it did.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

const WORKER: &str = "w-339901001001001";
const DISPATCHER: &str = "cd-339901001001";

/// The folder cargo put this test's build in (`target/debug`, or the same under
/// `CARGO_TARGET_DIR`): the test executable is in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps")
        .to_owned()
}

/// Wait for `child` at most `limit`; kill it after that.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {limit:?}; killed");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }
}

/// Run a command to completion within `limit`, its output kept in files under `logs`.
fn run_bounded(mut command: Command, logs: &Path, name: &str, limit: Duration) -> (bool, String) {
    let out_path = logs.join(format!("{name}.out"));
    let err_path = logs.join(format!("{name}.err"));
    let stdout = std::fs::File::create(&out_path).expect("a log file");
    let stderr = std::fs::File::create(&err_path).expect("a log file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    let status = wait_bounded(&mut child, limit, name);
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status.success(), format!("{out}{err}"))
}

/// `cargo build --locked --workspace --all-targets` into this build's target folder
/// and profile, so what it makes sits where this test looks for it. The whole
/// workspace with its tests, so features resolve as in `cargo test --workspace`:
/// under that, everything is already built and this only puts the `gridsync`
/// binary and the cdylib in the profile folder. (A narrower build, `-p` one
/// package, resolves other features and rebuilt most of the tree, twice: ten
/// minutes of CI.) Once per test process: both tests need it.
fn cargo_build(logs: &Path) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_workspace(logs));
}

fn build_workspace(logs: &Path) {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let mut cargo = Command::new(env!("CARGO"));
    // Without the variables cargo sets for this test: a build script that watches
    // one (ring watches CARGO_MANIFEST_DIR) would otherwise rebuild half the tree
    // here, and again in the next ordinary build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref())
        {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--locked", "--workspace", "--all-targets"])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(other) => {
            cargo.args(["--profile", other]);
        }
        None => {}
    }
    let (ok, output) = run_bounded(cargo, logs, "cargo-build", Duration::from_secs(1800));
    assert!(
        ok,
        "`cargo build --workspace --all-targets` failed:\n{output}"
    );
}

/// The `gridsync` binary: `GRIDSYNC_BIN`, or built (or found up to date) by cargo in
/// this build's target folder and profile.
fn gridsync_bin(logs: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("GRIDSYNC_BIN") {
        return PathBuf::from(path);
    }
    cargo_build(logs);
    let path = profile_dir().join(format!("gridsync{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found after the build",
        path.display()
    );
    path
}

/// The shared library a C program links. `cargo test` compiles the crate but leaves
/// the cdylib in `deps/` only; `cargo build` puts it in the profile folder, where a
/// C build finds it by its plain name.
fn gridsync_c_lib(logs: &Path) -> PathBuf {
    cargo_build(logs);
    let lib = profile_dir().join(format!(
        "{}gridsync_c{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.exists(), "{} not found after the build", lib.display());
    lib
}

/// `tests/day.c` compiled against the header and the shared library of this build.
fn compile_day(out_dir: &Path, logs: &Path) -> PathBuf {
    let lib = gridsync_c_lib(logs);
    let lib_dir = lib.parent().expect("the library's folder");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    if Command::new(&cc).arg("--version").output().is_err() {
        panic!(
            "the C compiler `{cc}` was not found: this test compiles tests/day.c with it; \
             install one (Debian: apt-get install gcc) or set CC"
        );
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = out_dir.join("day");
    let mut command = Command::new(&cc);
    command
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/day.c"))
        .arg("-L")
        .arg(lib_dir)
        .arg("-lgridsync_c")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe);
    let (ok, output) = run_bounded(command, logs, "cc", Duration::from_secs(300));
    assert!(ok, "cc could not build tests/day.c:\n{output}");
    exe
}

/// A `gridsync serve` on a loopback port; stopped when dropped.
struct Server {
    child: Child,
    url: String,
    data: PathBuf,
    bin: PathBuf,
}

impl Server {
    fn start(bin: &Path, data: &Path) -> Server {
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("GRIDSYNC_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("gridsync serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gridsync serve did not say where it listens within 60 s");
            }
        };
        let Some(url) = line.trim().strip_prefix("gridsync listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line from gridsync serve: {line:?}");
        };
        Server {
            url: url.to_owned(),
            child,
            data: data.to_owned(),
            bin: bin.to_owned(),
        }
    }

    /// A one-time enrollment code for `user` (`gridsync admin enroll`).
    fn enrollment_code(&self, user: &str, logs: &Path) -> String {
        let mut command = Command::new(&self.bin);
        command
            .args(["admin", "--data"])
            .arg(&self.data)
            .args(["enroll", "--user", user]);
        let name = format!("enroll-{user}");
        let (ok, output) = run_bounded(command, logs, &name, Duration::from_secs(60));
        assert!(ok, "gridsync admin enroll --user {user}:\n{output}");
        let code = std::fs::read_to_string(logs.join(format!("{name}.out"))).unwrap_or_default();
        code.trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A device enrolled through the facade itself (not the C API).
struct Device {
    engine: Arc<gridsync_ffi::GridEngine>,
    path: PathBuf,
    user: String,
    device_id: String,
}

const FACADE_KEY: [u8; 32] = [9; 32];

/// A device of `user`, enrolled through the facade, its directory loaded and its
/// server set, under `FACADE_KEY`.
fn enrolled(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    user: &str,
    folder: &Path,
    logs: &Path,
) -> Device {
    let device_id = gridsync_ffi::new_device_id();
    let enrollment = rt
        .block_on(gridsync_ffi::enroll(
            server.url.clone(),
            server.enrollment_code(user, logs),
            device_id.clone(),
            "c_program.rs".into(),
            None,
        ))
        .expect("the device enrolls");
    let path = folder.join(format!("{user}.db"));
    let engine = gridsync_ffi::GridEngine::open(
        path.display().to_string(),
        enrollment.user.clone(),
        device_id.clone(),
        FACADE_KEY.to_vec(),
    )
    .expect("the engine opens");
    engine
        .load_directory(enrollment.directory_json)
        .expect("the directory loads");
    engine
        .set_server(server.url.clone(), enrollment.token)
        .expect("the server is set");
    Device {
        engine,
        path,
        user: enrollment.user,
        device_id,
    }
}

/// `harmonyos/gridsync_napi.c` built as a Node.js addon: the same `napi_*` calls
/// as on HarmonyOS, with Node's headers standing in for `napi/native_api.h`.
fn compile_napi_addon(out_dir: &Path, logs: &Path) -> PathBuf {
    let node_include = Command::new("node")
        .args([
            "-p",
            "require('path').join(process.execPath, '..', '..', 'include', 'node')",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| {
            panic!("`node` was not found ({e}): this test runs the N-API example under Node.js")
        });
    assert!(
        Path::new(&node_include).join("node_api.h").exists(),
        "Node-API headers not found in {node_include} (Debian: the nodejs package)"
    );
    let shim = out_dir.join("shim/napi");
    std::fs::create_dir_all(&shim).expect("a shim folder");
    std::fs::write(shim.join("native_api.h"), "#include <node_api.h>\n").expect("the shim");

    let lib = gridsync_c_lib(logs);
    let lib_dir = lib.parent().expect("the library's folder");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let addon = out_dir.join("gridsync_napi.node");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut command = Command::new(&cc);
    command
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-shared", "-fPIC"])
        .arg("-I")
        .arg(out_dir.join("shim"))
        .arg("-I")
        .arg(&node_include)
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("harmonyos/gridsync_napi.c"))
        .arg("-L")
        .arg(lib_dir)
        .arg("-lgridsync_c")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&addon);
    let (ok, output) = run_bounded(command, logs, "cc-napi", Duration::from_secs(300));
    assert!(
        ok,
        "cc could not build harmonyos/gridsync_napi.c:\n{output}"
    );
    addon
}

#[test]
fn a_c_program_enrolls_reports_with_a_photo_and_syncs_and_the_dispatcher_sees_it() {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let logs = scratch.path().join("logs");
    let data = scratch.path().join("relay");
    let worker_dir = scratch.path().join("worker");
    let dispatcher_dir = scratch.path().join("dispatcher");
    for dir in [&logs, &data, &worker_dir, &dispatcher_dir] {
        std::fs::create_dir_all(dir).expect("a scratch folder");
    }

    let started = Instant::now();
    let bin = gridsync_bin(&logs);
    println!("gridsync built or found in {:?}", started.elapsed());
    let step = Instant::now();
    let day = compile_day(scratch.path(), &logs);
    println!("day.c compiled in {:?}", step.elapsed());
    let server = Server::start(&bin, &data);

    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/photo.jpg");
    let mut command = Command::new(&day);
    command
        .arg(&server.url)
        .arg(server.enrollment_code(WORKER, &logs))
        .arg(&worker_dir)
        .arg(&photo);
    let step = Instant::now();
    let (ok, output) = run_bounded(command, &logs, "day", Duration::from_secs(300));
    println!("{output}day.c ran in {:?}", step.elapsed());
    assert!(ok, "tests/day.c failed:\n{output}");
    let figures: HashMap<&str, &str> = output
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    assert_eq!(figures.get("user"), Some(&WORKER));
    assert_eq!(figures.get("pending_after"), Some(&"0"));
    let case_id = figures.get("case_id").expect("day.c prints the case id");
    let photo_hash = figures
        .get("photo_hash")
        .expect("day.c prints the photo hash");

    let rt = runtime();
    let dispatcher = enrolled(&rt, &server, DISPATCHER, &dispatcher_dir, &logs).engine;
    let summary = rt
        .block_on(dispatcher.sync(None))
        .expect("the dispatcher syncs");
    assert!(
        summary.pulled >= 1,
        "the dispatcher pulled the worker's report"
    );

    let case = dispatcher
        .get_case((*case_id).to_owned())
        .expect("the case reached the dispatcher");
    assert_eq!(case.title, "楼上管道漏水");
    assert_eq!(case.status, "reported");
    assert_eq!(
        case.photos
            .iter()
            .map(|p| p.hash.as_str())
            .collect::<Vec<_>>(),
        [*photo_hash]
    );
    assert_eq!(
        case.timeline
            .iter()
            .map(|e| e.label_zh.as_str())
            .collect::<Vec<_>>(),
        ["发现上报"]
    );
    // Not on the dispatcher's device yet: downloaded from the relay, checked
    // against its hash.
    let bytes = rt
        .block_on(dispatcher.fetch_photo((*photo_hash).to_owned(), None))
        .expect("the relay has the photo the C program uploaded");
    assert!(
        bytes.starts_with(&[0xFF, 0xD8]),
        "the dispatcher's photo is a JPEG"
    );
    dispatcher.close_store();
    drop(server);
    println!("the whole test took {:?}", started.elapsed());
}

#[test]
fn the_harmonyos_napi_example_opens_reports_and_syncs_under_node() {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let logs = scratch.path().join("logs");
    let data = scratch.path().join("relay");
    let devices = scratch.path().join("devices");
    for dir in [&logs, &data, &devices] {
        std::fs::create_dir_all(dir).expect("a scratch folder");
    }
    let bin = gridsync_bin(&logs);
    let addon = compile_napi_addon(scratch.path(), &logs);
    let server = Server::start(&bin, &data);
    let rt = runtime();

    // The worker's database, prepared through the facade and closed: the module
    // under test only opens, reports and syncs.
    let worker = enrolled(&rt, &server, WORKER, &devices, &logs);
    worker.engine.close_store();
    let key_hex: String = FACADE_KEY.iter().map(|b| format!("{b:02x}")).collect();

    let mut node = Command::new("node");
    node.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/napi_day.js"))
        .arg(&addon)
        .arg(&worker.path)
        .arg(&worker.user)
        .arg(&worker.device_id)
        .arg(key_hex);
    let (ok, output) = run_bounded(node, &logs, "napi_day", Duration::from_secs(300));
    println!("{output}");
    assert!(ok, "tests/napi_day.js failed:\n{output}");
    let answer: serde_json::Value = output
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("napi_day.js printed no JSON:\n{output}"));
    assert_eq!(answer["summary"]["pushed"], 1, "{answer}");
    let case_id = answer["caseId"].as_str().expect("a case id").to_owned();

    let dispatcher = enrolled(&rt, &server, DISPATCHER, &devices, &logs).engine;
    rt.block_on(dispatcher.sync(None))
        .expect("the dispatcher syncs");
    let case = dispatcher
        .get_case(case_id)
        .expect("the case reported through N-API reached the dispatcher");
    assert_eq!(case.title, "消防通道堵塞");
    dispatcher.close_store();
    drop(server);
}
