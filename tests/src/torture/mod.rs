//! The torture suite's frame: a seeded PRNG, the report line every scenario prints,
//! the real `gridsync` relay as a child process, and enrollment of phones against it.
//! The scenarios are in their own files; `src/bin/torture.rs` runs them.

pub mod bad_links;
pub mod clocks;
pub mod disk_full;
pub mod io_errors;
pub mod long_offline;
pub mod phone_killed;
pub mod power_lost;
pub mod relay_killed;
pub mod retention;
pub mod soak;
pub mod versions;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridsync_core::sync::{self, HttpTransport};
use gridsync_core::vault::DeviceKey;
use gridsync_core::{DeviceId, Engine, Identity};
use serde_json::{json, Map, Value};

/// The grid worker who reports (a user of the sample directory).
pub const WORKER: &str = "w-339901001001001";
/// Another grid worker of the same community, for a second phone.
pub const WORKER_2: &str = "w-339901001001002";
/// The community dispatcher: sees every report of the community, so the relay's
/// copy is read through a phone enrolled as this user.
pub const DISPATCHER: &str = "cd-339901001001";

/// How hard a run pushes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// CI: the whole suite in a few minutes.
    Quick,
    /// Before a release.
    Long,
}

/// splitmix64: small, seedable, the same sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    /// A derived generator (for a sub-task that must not shift this one's sequence).
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// What one scenario measured: the fixed counters of the issue, plus extra figures.
#[derive(Debug, Default)]
pub struct Report {
    /// Scenario name.
    pub scenario: &'static str,
    /// Its seed.
    pub seed: u64,
    /// Rounds run (process lifetimes, phones, relay starts).
    pub runs: u64,
    /// Faults injected.
    pub faults: u64,
    /// Writes the app was told succeeded.
    pub acked: u64,
    /// Acknowledged writes missing afterwards.
    pub lost: u64,
    /// Writes present more than once.
    pub duplicates: u64,
    /// Queues (outboxes, photo uploads) that did not drain when they should have.
    pub stuck: u64,
    /// Replicas that disagree with the relay after everything drained.
    pub diverged: u64,
    /// Panics in any process of the system under test.
    pub panics: u64,
    /// Other failed checks (a database that fails `integrity_check` or does not open,
    /// a local change neither in the outbox nor acknowledged, a soak measure trending
    /// upward after warm-up).
    pub broken: u64,
    /// Scenario-specific figures.
    pub extra: Map<String, Value>,
    /// Wall time.
    pub seconds: f64,
}

impl Report {
    /// An empty report.
    pub fn new(scenario: &'static str, seed: u64) -> Report {
        Report {
            scenario,
            seed,
            ..Default::default()
        }
    }

    /// Record a scenario-specific figure.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// Count a queue that did not drain, and say which and why (in the figures'
    /// `stuck_queues`, and on stderr).
    pub fn stuck_queue(&mut self, queue: &str, why: Stuck) {
        self.stuck += 1;
        let said = format!("{queue}: {why}");
        eprintln!("{}: stuck: {said}", self.scenario);
        match self.extra.get_mut("stuck_queues") {
            Some(Value::Array(queues)) => queues.push(said.into()),
            _ => self.set("stuck_queues", vec![said]),
        }
    }

    /// Whether anything failed.
    pub fn failed(&self) -> bool {
        self.lost + self.duplicates + self.stuck + self.diverged + self.panics + self.broken > 0
    }

    /// The JSON line: the fields first, in its order, then the figures of
    /// the scenario.
    pub fn json(&self) -> String {
        let fixed = [
            ("scenario", json!(self.scenario)),
            ("seed", json!(self.seed)),
            ("runs", json!(self.runs)),
            ("faults", json!(self.faults)),
            ("acked", json!(self.acked)),
            ("lost", json!(self.lost)),
            ("duplicates", json!(self.duplicates)),
            ("stuck", json!(self.stuck)),
            ("diverged", json!(self.diverged)),
            ("panics", json!(self.panics)),
            ("broken", json!(self.broken)),
            ("seconds", json!((self.seconds * 10.0).round() / 10.0)),
        ];
        let fields: Vec<String> = fixed
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(self.extra.iter().map(|(k, v)| (k.as_str(), v)))
            .map(|(k, v)| format!("{}:{v}", Value::from(k)))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// A binary built next to this one (`target/<profile>/NAME`), or `env` if set.
pub fn sibling_binary(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the torture binary knows its path");
    exe.parent()
        .expect("the torture binary is in a folder")
        .join(name)
}

/// The processes this run started and has not reaped, for the watchdog.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Remember a child process until [`reaped`].
pub fn started(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.push(pid);
    }
}

/// Forget a child process that was waited for.
pub fn reaped(pid: u32) {
    if let Ok(mut c) = CHILDREN.lock() {
        c.retain(|p| *p != pid);
    }
}

/// SIGKILL every child not yet reaped (the watchdog, before it exits).
pub fn kill_children() {
    if let Ok(c) = CHILDREN.lock() {
        for pid in c.iter() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// A command running `program` with SIGXFSZ ignored (set by `sh`, kept across its
/// `exec`, so the pid is the program's): a write past a file size cap
/// ([`cap_file_size`]) then fails with `EFBIG`, as a full disk fails a write, instead
/// of killing the process. Without a cap it changes nothing.
pub fn command(program: &Path) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(program);
    c
}

/// Cap the size any file of the running process `pid` may grow to (the soft
/// RLIMIT_FSIZE, through `prlimit`), or lift the cap (`None`). Raising it back needs
/// no privilege: the hard limit is left alone.
pub fn cap_file_size(pid: u32, bytes: Option<u64>) -> std::io::Result<()> {
    let soft = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:"))
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("prlimit: {status}")))
    }
}

/// A `gridsync serve` child on a loopback port; SIGKILLed when dropped.
pub struct RelayProcess {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl RelayProcess {
    /// Start `gridsync serve` on `data`, on `listen` (`127.0.0.1:0` for any port).
    pub fn start(data: &Path, listen: &str, log: &Path) -> std::io::Result<RelayProcess> {
        let program = sibling_binary("gridsync", "GRIDSYNC_BIN");
        RelayProcess::start_program(&program, &[], data, listen, log)
    }

    /// Start the relay's code under the power-cut VFS (`torture_relay`, see
    /// `gridsync_tests::powerloss_vfs`) with `vfs` as its environment
    /// (`TORTURE_VFS`, `TORTURE_VFS_FAULTS`).
    pub fn start_under_vfs(
        vfs: &[(&str, String)],
        data: &Path,
        listen: &str,
        log: &Path,
    ) -> std::io::Result<RelayProcess> {
        let program = sibling_binary("torture_relay", "TORTURE_RELAY_BIN");
        RelayProcess::start_program(&program, vfs, data, listen, log)
    }

    /// Start `program serve --listen … --data …` with `env` added.
    pub fn start_program(
        program: &Path,
        env: &[(&str, String)],
        data: &Path,
        listen: &str,
        log: &Path,
    ) -> std::io::Result<RelayProcess> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = command(program)
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .env("GRIDSYNC_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()?;
        started(child.id());
        let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("gridsync listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            reaped(child.id());
            return Err(std::io::Error::other(format!(
                "gridsync serve did not start: {line:?}"
            )));
        };
        Ok(RelayProcess {
            url: addr.to_owned(),
            child,
        })
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .expect("the relay prints a socket address")
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        reaped(self.child.id());
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Panics recorded in a log file (`panicked at`).
pub fn panics_in(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .map(|s| s.matches("panicked at").count() as u64)
        .unwrap_or(0)
}

/// A one-time enrollment code from `gridsync admin enroll`.
pub fn enrollment_code(data: &Path, user: &str) -> std::io::Result<String> {
    let out = Command::new(sibling_binary("gridsync", "GRIDSYNC_BIN"))
        .args(["admin", "--data"])
        .arg(data)
        .args(["enroll", "--user", user])
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "admin enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A phone's identity and key, enough to reopen its database in another process.
#[derive(Clone)]
pub struct PhoneId {
    /// Its database file.
    pub db: PathBuf,
    /// Who and which device.
    pub identity: Identity,
    /// The 32-byte device key the app keeps in the keystore.
    pub key: [u8; 32],
}

impl PhoneId {
    /// Open its engine (SQLCipher, as on a phone).
    pub fn open(&self) -> Result<Engine, gridsync_core::OpenError> {
        Engine::open_encrypted(
            &self.db,
            self.identity.clone(),
            &DeviceKey::from_bytes(self.key),
        )
    }

    /// Start the phone workload (`torture_phone`) on this phone for `ops` operations,
    /// its stdout piped, its stderr to `log`; a child of this run until [`reaped`].
    pub fn workload(&self, seed: u64, run: u64, ops: u64, log: &Path) -> std::io::Result<Child> {
        self.workload_with(seed, run, ops, log, &[])
    }

    /// [`PhoneId::workload`] with `env` added (the power-cut VFS's settings,
    /// `TORTURE_FULL_FLAG`).
    pub fn workload_with(
        &self,
        seed: u64,
        run: u64,
        ops: u64,
        log: &Path,
        env: &[(&str, String)],
    ) -> std::io::Result<Child> {
        let child = command(&sibling_binary("torture_phone", "TORTURE_PHONE_BIN"))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg(&self.db)
            .arg(self.identity.user.to_string())
            .arg(self.identity.device.to_string())
            .arg(self.key_hex())
            .arg(seed.to_string())
            .arg(run.to_string())
            .arg(ops.to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        started(child.id());
        Ok(child)
    }

    /// The key as 64 hex digits (how the workload binary receives it).
    pub fn key_hex(&self) -> String {
        self.key.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Enroll `user` with the relay at `url` (code from the data folder `data`), as a
/// phone with an encrypted database in `folder`, pointed at `server_url` (the relay
/// itself or a proxy before it).
pub fn enroll_phone(
    data: &Path,
    url: &str,
    server_url: &str,
    user: &str,
    folder: &Path,
    rng: &mut Rng,
) -> Result<PhoneId, Box<dyn std::error::Error>> {
    let code = enrollment_code(data, user)?;
    let device = DeviceId::random();
    let e = sync::enroll(&HttpTransport::new(url), &code, device, "torture")?;
    let mut key = [0u8; 32];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let phone = PhoneId {
        db: folder.join(format!("{user}-{device}.db")),
        identity: Identity {
            user: e.user,
            device,
        },
        key,
    };
    let engine = phone.open()?;
    engine.load_directory(&e.directory)?;
    engine.set_server(server_url, &e.token)?;
    Ok(phone)
}

/// `PRAGMA integrity_check` on a phone's encrypted database, through a connection of
/// its own (the engine is closed): `Ok(())` when SQLite answers `ok`.
pub fn integrity_check(phone: &PhoneId) -> Result<(), String> {
    sqlite_integrity(&open_raw(phone)?)
}

/// `PRAGMA integrity_check` through `conn`: `Ok(())` when SQLite answers `ok`.
pub fn sqlite_integrity(conn: &rusqlite::Connection) -> Result<(), String> {
    let answer: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if answer == "ok" {
        Ok(())
    } else {
        Err(answer)
    }
}

/// A plain SQLCipher connection to a phone's database, keyed as the engine keys it
/// (core's `db.rs`, `apply_key`: the key, then HMAC-SHA256 for the page HMAC).
pub fn open_raw(phone: &PhoneId) -> Result<rusqlite::Connection, String> {
    let conn = rusqlite::Connection::open(&phone.db).map_err(|e| e.to_string())?;
    let hex: String = DeviceKey::from_bytes(phone.key)
        .derive(gridsync_core::vault::KeyUse::Database)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256;"
    ))
    .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// A queue that did not drain by its deadline: what was still in it, and what its
/// syncs were doing, so a `stuck` says which queue and why.
#[derive(Debug, Default)]
pub struct Stuck {
    /// Changes still in the outbox (`None`: it could not be read).
    outbox: Option<u64>,
    /// Photos still to upload (`None`: they could not be read).
    photos: Option<usize>,
    /// Sync rounds tried, and how many of them failed.
    syncs: u64,
    failed: u64,
    /// The last failed round's error.
    last_error: Option<String>,
    /// What the last round that succeeded moved.
    last_moved: u64,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_unread = |n: Option<String>| n.unwrap_or_else(|| "unread".into());
        write!(
            f,
            "outbox {}, photos {}, {} syncs ({} failed, the last one that worked moved {})",
            or_unread(self.outbox.map(|n| n.to_string())),
            or_unread(self.photos.map(|n| n.to_string())),
            self.syncs,
            self.failed,
            self.last_moved
        )?;
        match &self.last_error {
            Some(e) => write!(f, ", last error: {e}"),
            None => Ok(()),
        }
    }
}

/// Sync `engine` until a round moves nothing and its outbox and photo queue are
/// empty, or `deadline` passes (then what was left, in `Err`). A failed round
/// counts as movement: the next one may succeed.
pub fn drain(engine: &Engine, deadline: Instant) -> Result<(), Stuck> {
    let mut stuck = Stuck::default();
    loop {
        stuck.syncs += 1;
        let moved = match engine.sync(&mut |_| {}) {
            Ok(r) => {
                stuck.last_moved = r.pushed + r.pulled + r.purged + r.photos_uploaded;
                stuck.last_moved
            }
            Err(e) => {
                stuck.failed += 1;
                stuck.last_error = Some(e.to_string());
                1
            }
        };
        stuck.outbox = engine.outbox_len().ok();
        stuck.photos = engine.photos_to_upload().ok().map(|p| p.len());
        if moved == 0 && stuck.outbox == Some(0) && stuck.photos == Some(0) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(stuck);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
