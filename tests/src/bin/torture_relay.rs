//! The relay of the torture suite's power-cut and I/O-error scenarios: the relay's
//! library code started as `gridsync serve` starts it (server/src/main.rs, `serve`),
//! with the power-cut VFS (`gridsync_tests::powerloss_vfs`, configured from
//! `TORTURE_VFS` and `TORTURE_VFS_FAULTS`) registered as SQLite's default first. The
//! shipped `gridsync` binary never carries that VFS; this binary is built only by the
//! tests crate.
//!
//! `serve` is not a library function (its settings, `config.rs`, belong to the
//! binary), so the steps below repeat it for the settings the suite uses — every
//! default: SQLite and photos in the data folder, no directory file, no TLS,
//! upstream, notifications or metrics listener. Keep them in step with `serve`.
//!
//! Usage: torture_relay serve --listen ADDR --data DIR (the arguments the suite
//! gives `gridsync serve`); prints `gridsync listening on http://ADDR` as it does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use gridsync_server::http::{EdgeLimits, ServeOptions};
use gridsync_server::relay::{Relay, Storage, TokenRotation, DEFAULT_TOKEN_DAYS};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torture_relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Before the relay opens a database.
    let vfs = gridsync_tests::powerloss_vfs::install_from_env()?;
    let (mut listen, mut data) = (None, None);
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("serve") {
        return Err("usage: torture_relay serve --listen ADDR --data DIR".into());
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next(),
            "--data" => data = args.next().map(PathBuf::from),
            _ => return Err(format!("unknown argument {a:?}").into()),
        }
    }
    let listen: std::net::SocketAddr = listen.ok_or("--listen is needed")?.parse()?;
    let data = data.ok_or("--data is needed")?;
    if vfs {
        eprintln!("torture_relay: SQLite through the power-cut VFS");
    }

    // What `serve` does with default settings, in its order.
    let mut relay = Relay::open_with(&data, None, &Storage::default())?;
    relay.catch_up().map_err(|e| e.to_string())?;
    relay.set_token_lifetime(chrono::Duration::days(DEFAULT_TOKEN_DAYS));
    relay.set_token_rotation(TokenRotation {
        after: chrono::Duration::hours(24),
        ..Default::default()
    });
    relay.set_trusted_proxies(Vec::new());
    relay.set_map_tiles(None);
    relay.set_resident_channel(true);
    let relay = Arc::new(relay);
    let keep = relay.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let options = ServeOptions {
        listen,
        tls: None,
        limits: EdgeLimits::default(),
        metrics_listen: None,
        metrics_token: None,
    };
    runtime.block_on(gridsync_server::http::serve(relay, options, |addr| {
        println!("gridsync listening on http://{addr}");
    }))?;
    drop(runtime);
    drop(keep);
    Ok(())
}
