//! A real S3 server for the tests: moto's (`pip install "moto[server]"`;
//! scripts/test installs it) on a free loopback port, killed when dropped. Moto
//! takes any credentials; the tests pass [`ACCESS_KEY_ID`] and [`SECRET_ACCESS_KEY`].

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridsync_server::blobstore::S3Config;

/// The access key the tests give the S3 store.
pub const ACCESS_KEY_ID: &str = "testing";
/// The secret key the tests give the S3 store: it must never appear in a message.
pub const SECRET_ACCESS_KEY: &str = "moto-test-secret-key";

/// A moto S3 server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: tempfile::NamedTempFile,
}

/// A loopback port nothing listens on (at the moment of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Moto {
    /// Start moto's server and wait (up to 30 s) until it answers.
    pub fn start() -> Moto {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "the S3 photo store tests need moto's S3 server: pip install \"moto[server]\" \
             (scripts/test installs it)"
        );
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start python3 -m moto.server");
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = moto.child.try_wait().expect("moto's status") {
                panic!("moto's server exited ({status}):\n{}", moto.log_text());
            }
            if moto.request("GET", "/").is_ok() {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto's server did not answer on port {port} within 30 s:\n{}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its endpoint URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// One unsigned request (moto takes any); the status line of the answer.
    fn request(&self, method: &str, path: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer);
        let status = answer.lines().next().unwrap_or_default();
        if status.starts_with("HTTP/1.") {
            Ok(status.to_owned())
        } else {
            Err(std::io::Error::other(format!("not HTTP: {status:?}")))
        }
    }

    /// Create an empty bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let status = self
            .request("PUT", &format!("/{bucket}"))
            .expect("create the bucket");
        assert!(status.contains(" 200"), "creating {bucket}: {status}");
    }

    /// A store in this server, with the test credentials passed explicitly (the
    /// test's environment is left alone).
    pub fn config(&self, url: &str) -> S3Config {
        S3Config {
            url: url.into(),
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            allow_http: true,
            access_key_id: Some(ACCESS_KEY_ID.into()),
            secret_access_key: Some(SECRET_ACCESS_KEY.into()),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
