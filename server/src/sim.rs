//! Simulated devices on local SQLite files with a shared, controllable clock —
//! what the demo and the benchmarks run on.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gridsync_core::{DeviceId, Engine, Identity};

use gridsync_server::relay::{Relay, Storage};
use gridsync_server::SAMPLE_DIRECTORY;

/// A clock that only moves when told to.
#[derive(Clone)]
pub struct SimClock(Arc<AtomicI64>);

impl SimClock {
    /// Start at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        SimClock(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    /// The simulated time.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Move forward.
    pub fn advance(&self, d: chrono::Duration) {
        self.0.fetch_add(d.num_milliseconds(), Ordering::SeqCst);
    }

    /// Move to `t`. Simulations run devices one after another, so the clock may be
    /// set back to replay a second device's morning.
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }
}

/// Open a device for `user` at `dir/<user>.db` with the sample directory loaded.
pub fn device(
    dir: &Path,
    user: &str,
    clock: &SimClock,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let identity = Identity {
        user: user.parse()?,
        device: DeviceId::random(),
    };
    let c = clock.clone();
    let engine = Engine::open_with_clock(
        dir.join(format!("{user}.db")),
        identity,
        Arc::new(move || c.now()),
    )?;
    engine.load_directory(SAMPLE_DIRECTORY)?;
    Ok(engine)
}

/// Like [`device`], on a database encrypted under `key`, as on a phone.
pub fn device_encrypted(
    dir: &Path,
    user: &str,
    clock: &SimClock,
    key: &gridsync_core::vault::DeviceKey,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let identity = Identity {
        user: user.parse()?,
        device: DeviceId::random(),
    };
    let c = clock.clone();
    let engine = Engine::open_encrypted_with_clock(
        dir.join(format!("{user}.db")),
        identity,
        key,
        Arc::new(move || c.now()),
    )?;
    engine.load_directory(SAMPLE_DIRECTORY)?;
    Ok(engine)
}

/// A `gridsync serve` child process on a loopback port, for the demo and the
/// benchmarks. Stopped (SIGTERM, then waited for) when dropped.
pub struct RelayProcess {
    child: Option<std::process::Child>,
    /// Its base URL.
    pub url: String,
    data: std::path::PathBuf,
    storage: Storage,
}

/// `storage` as the environment `gridsync serve` reads it (the database URL stays
/// off the command line, where other users could read it).
fn storage_env(storage: &Storage) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(url) = &storage.database_url {
        env.push(("GRIDSYNC_DATABASE_URL", url.clone()));
    }
    if let Some(s3) = &storage.photos {
        env.push(("GRIDSYNC_PHOTOS_URL", s3.url.clone()));
        env.extend(s3.endpoint.clone().map(|e| ("GRIDSYNC_S3_ENDPOINT", e)));
        env.extend(s3.region.clone().map(|r| ("GRIDSYNC_S3_REGION", r)));
        if s3.allow_http {
            env.push(("GRIDSYNC_S3_ALLOW_HTTP", "true".into()));
        }
    }
    env
}

impl RelayProcess {
    /// Start this binary's `serve` on `data`, on a free loopback port.
    pub fn start(data: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        Self::start_on(data, &Storage::default())
    }

    /// Start a node of a relay on `storage`, with its own data folder `data`.
    pub fn start_on(data: &Path, storage: &Storage) -> Result<Self, Box<dyn std::error::Error>> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .envs(storage_env(storage))
            .env("GRIDSYNC_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout from gridsync serve")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("gridsync listening on ")
            .ok_or_else(|| format!("gridsync serve said {line:?}"))?
            .to_owned();
        Ok(RelayProcess {
            child: Some(child),
            url,
            data: data.to_owned(),
            storage: storage.clone(),
        })
    }

    /// A relay already running at `url` whose data folder is `data` and storage
    /// `storage` (enrollment codes are created there, as `gridsync admin enroll`
    /// does).
    pub fn external(url: &str, data: &Path, storage: &Storage) -> Self {
        RelayProcess {
            child: None,
            url: url.to_owned(),
            data: data.to_owned(),
            storage: storage.clone(),
        }
    }

    /// Open the relay this process serves (for admin work and checks).
    pub fn open(&self) -> Result<Relay, Box<dyn std::error::Error>> {
        Relay::open_with(&self.data, None, &self.storage)
    }

    /// The server's process id, when this started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Enroll a new device for `user`: a one-time code from the relay's data folder
    /// (as `gridsync admin enroll` does), redeemed over HTTP.
    pub fn enroll(
        &self,
        dir: &Path,
        user: &str,
        clock: &SimClock,
    ) -> Result<Engine, Box<dyn std::error::Error>> {
        let c = clock.clone();
        self.enroll_with_clock(dir, user, Arc::new(move || c.now()))
    }

    /// Like [`RelayProcess::enroll`], for a device on `clock` (e.g. the real one).
    pub fn enroll_with_clock(
        &self,
        dir: &Path,
        user: &str,
        clock: gridsync_core::Clock,
    ) -> Result<Engine, Box<dyn std::error::Error>> {
        let code = self
            .open()?
            .create_enrollment(user)
            .map_err(|e| e.to_string())?;
        let device = DeviceId::random();
        let transport = gridsync_core::sync::HttpTransport::new(&self.url);
        let e = gridsync_core::sync::enroll(&transport, &code, device, env!("CARGO_PKG_VERSION"))?;
        let engine = Engine::open_with_clock(
            dir.join(format!("{user}.db")),
            Identity {
                user: e.user,
                device,
            },
            clock,
        )?;
        engine.load_directory(&e.directory)?;
        engine.set_server(&self.url, &e.token)?;
        Ok(engine)
    }

    /// Give `user` a web console password (as `gridsync admin password` does).
    pub fn set_console_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        self.open()?
            .set_console_password(user, password)
            .map_err(|e| e.to_string().into())
    }

    /// Keep serving until the process is interrupted.
    pub fn wait(mut self) -> std::io::Result<()> {
        match self.child.take() {
            Some(mut c) => c.wait().map(drop),
            None => Ok(()),
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SIGTERM lets the relay finish requests in flight and shut down cleanly.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}
