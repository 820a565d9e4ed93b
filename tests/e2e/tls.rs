//! HTTPS: `gridsync serve` terminating TLS itself, devices trusting a town's own
//! certificate, and plain HTTP refused off this machine.

use std::path::Path;
use std::process::Command;

use gridsync_core::sync::{self, HttpTransport, ServerSecurity, SyncError};
use gridsync_core::{DeviceId, Engine, Identity};

use crate::sockets::start_with;
use crate::workflow::{leak, WORKER};

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A town's own certificate authority and a server certificate it signed for
/// localhost and 127.0.0.1, made with openssl: (CA, server certificate, key) paths.
fn certificates(dir: &Path) -> (String, String, String) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=town-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
        dir,
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ],
        dir,
    );
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

fn code(data: &Path, user: &str) -> String {
    let out = crate::sockets::gridsync()
        .args(["admin", "--data"])
        .arg(data)
        .args(["enroll", "--user", user])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn devices_sync_over_https_trusting_the_towns_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let (ca, cert, key) = certificates(dir.path());
    let server = start_with(&data, &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    // The public roots do not know a town's own certificate: nothing is sent.
    let untrusted = sync::enroll(
        &HttpTransport::new(&server.url),
        &code(&data, WORKER),
        DeviceId::random(),
        "e2e",
    );
    assert!(
        matches!(untrusted, Err(SyncError::Network(_))),
        "{untrusted:?}"
    );

    let security = ServerSecurity {
        ca_pem: Some(std::fs::read_to_string(&ca).unwrap()),
        allow_plain_http: false,
    };
    let transport = HttpTransport::with_security(&server.url, &security).unwrap();
    let device = DeviceId::random();
    let e =
        sync::enroll(&transport, &code(&data, WORKER), device, "e2e").expect("enrolled over https");
    let worker = Engine::open(
        dir.path().join("worker.db"),
        Identity {
            user: e.user,
            device,
        },
    )
    .unwrap();
    worker.load_directory(&e.directory).unwrap();
    worker.set_server(&server.url, &e.token).unwrap();
    worker.set_server_security(&security).unwrap();
    worker.report_case(leak()).unwrap();
    let report = worker.sync(&mut |_| {}).expect("sync over https");
    assert_eq!(report.pushed, 1);
}

#[test]
fn plain_http_off_this_machine_is_refused_before_anything_is_sent() {
    let refused = sync::enroll(
        &HttpTransport::new("http://192.0.2.10:7878"),
        "ABCD",
        DeviceId::random(),
        "e2e",
    );
    match refused {
        Err(SyncError::Insecure(why)) => assert!(why.contains("https://"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let bad_pem = HttpTransport::with_security(
        "https://town.example",
        &ServerSecurity {
            ca_pem: Some("not a certificate".into()),
            allow_plain_http: false,
        },
    );
    assert!(matches!(bad_pem, Err(SyncError::Insecure(_))));
}
