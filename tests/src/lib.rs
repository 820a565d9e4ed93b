//! The deterministic simulator: a relay and several devices in one process, talking
//! through an in-process transport that encodes and decodes every message exactly
//! as HTTP would carry it, with a switch to take a device offline.

pub mod canary;
pub mod fake_server;
pub mod powerloss_vfs;
pub mod probe;
pub mod proxy;

use std::cell::Cell;
use std::path::Path;

use gridsync_core::sync::route::{Request, Route};
use gridsync_core::sync::wire;
use gridsync_core::sync::{self, SyncError, SyncReport, Transport, TransportError};
use gridsync_core::{DeviceId, Engine, Identity};
use gridsync_server::relay::{Relay, RelayError};
use tempfile::TempDir;

/// The golden generations in `tests/golden` this build must open: the e2e test
/// (`tests/e2e/golden.rs`) and the torture suite's versions scenario run them all.
pub const GOLDEN_GENERATIONS: &[&str] = &["v1", "v2"];

/// A `width`×`height` JPEG that differs for every `salt` (a new photo, a new hash).
pub fn photo(salt: u64, width: u32, height: u32) -> Vec<u8> {
    let img = image::ImageBuffer::from_fn(width, height, |x, y| {
        image::Rgb([
            (x as u64 ^ salt) as u8,
            (y as u64).wrapping_add(salt >> 8) as u8,
            (salt >> 16) as u8,
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&img)
        .expect("a JPEG encodes into memory");
    jpeg
}

/// A relay in a temporary data folder.
pub struct SimRelay {
    /// The relay.
    pub relay: Relay,
    /// Its data folder.
    pub dir: TempDir,
}

impl SimRelay {
    /// A fresh relay with the sample directory.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let relay = Relay::open(dir.path(), None).expect("relay opens");
        SimRelay { relay, dir }
    }

    /// Enroll a new device for `user` and open its engine in `folder`.
    pub fn enroll(&self, user: &str, folder: &Path) -> SimDevice<'_> {
        let code = self.relay.create_enrollment(user).expect("code");
        let device = DeviceId::random();
        let transport = LocalTransport::new(&self.relay);
        let e = sync::enroll(&transport, &code, device, "sim-1.0").expect("enroll");
        let engine = Engine::open(
            folder.join(format!("{user}-{device}.db")),
            Identity {
                user: e.user,
                device,
            },
        )
        .expect("device opens");
        engine.load_directory(&e.directory).expect("directory");
        engine.set_server("local:", &e.token).expect("server");
        SimDevice {
            engine,
            transport,
            token: e.token,
            device,
        }
    }
}

impl Default for SimRelay {
    fn default() -> Self {
        Self::new()
    }
}

/// Calls the relay directly, through the wire encoding.
pub struct LocalTransport<'a> {
    relay: &'a Relay,
    /// While false, every request fails as if the link were down.
    pub online: Cell<bool>,
}

impl<'a> LocalTransport<'a> {
    /// Online, to `relay`.
    pub fn new(relay: &'a Relay) -> Self {
        LocalTransport {
            relay,
            online: Cell::new(true),
        }
    }
}

impl Transport for LocalTransport<'_> {
    /// The same steps as the HTTP shell: the route from the table, the token
    /// checked before the body, the body decoded by the route's type, the relay's
    /// answer or error encoded as HTTP would carry it.
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if !self.online.get() {
            return Err(TransportError::Network("offline".into()));
        }
        let refuse = |e: RelayError| TransportError::Status {
            status: gridsync_server::http::error::status(&e).as_u16(),
            body: wire::encode(&e.body()),
        };
        let Some(route) = Route::from_path(path) else {
            return Err(TransportError::Status {
                status: 404,
                body: Vec::new(),
            });
        };
        let caller = if route.needs_token() {
            Some(
                self.relay
                    .authenticate(token.unwrap_or(""))
                    .map_err(refuse)?,
            )
        } else {
            None
        };
        let request = Request::decode(route, &body)
            .map_err(|e| refuse(RelayError::bad_request(e.to_string())))?;
        self.relay
            .answer(caller.as_ref(), request)
            .map(|a| a.encode())
            .map_err(refuse)
    }
}

/// A device of the simulation.
pub struct SimDevice<'a> {
    /// Its engine.
    pub engine: Engine,
    /// Its link to the relay.
    pub transport: LocalTransport<'a>,
    /// Its token.
    pub token: String,
    /// Its id.
    pub device: DeviceId,
}

impl SimDevice<'_> {
    /// Push then pull.
    pub fn sync(&self) -> Result<SyncReport, SyncError> {
        sync::sync(&self.engine, &self.transport, &mut |_| {})
    }

    /// Take the device offline or bring it back.
    pub fn set_online(&self, online: bool) {
        self.transport.online.set(online);
    }
}

impl std::ops::Deref for SimDevice<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

/// Sync every online device until a full round moves nothing.
pub fn run_until_quiet(devices: &[&SimDevice<'_>]) {
    for _ in 0..10 {
        let mut moved = 0;
        for d in devices {
            if let Ok(r) = d.sync() {
                moved += r.pushed + r.pulled + r.purged;
            }
        }
        if moved == 0 {
            return;
        }
    }
    panic!("the devices did not go quiet in 10 rounds");
}

/// A fresh, empty PostgreSQL database on the test server and its URL. The server is
/// the one `GRIDSYNC_TEST_DATABASE_URL` names (any database on it): `scripts/test`
/// starts one with `scripts/postgres start`. Each call makes a new database, so
/// tests run side by side.
pub fn postgres_database() -> String {
    let Ok(base) = std::env::var("GRIDSYNC_TEST_DATABASE_URL") else {
        panic!(
            "the PostgreSQL tests need a server: run `scripts/postgres start` and export \
             GRIDSYNC_TEST_DATABASE_URL as it prints (scripts/test does both)"
        );
    };
    let mut admin = postgres::Client::connect(&base, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
    let name = format!(
        "gridsync_test_{}",
        DeviceId::random().to_string().replace('-', "")
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    let path_start = base.rfind('/').expect("a database URL has a path");
    let query = base.find('?').map(|q| &base[q..]).unwrap_or("");
    format!("{}/{name}{query}", &base[..path_start])
}
pub mod s3;
