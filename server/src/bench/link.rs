//! `gridsync bench link`: a phone on a weak link. A proxy on loopback carries the
//! phone's connections to a relay at `rate` bytes per second (both directions
//! share it, as on a poor mobile link) and cuts every connection every
//! `cut_every` seconds. Two runs: a grid worker's day going up (cases, each with a
//! photo), and a fresh phone pulling a town's cases down. Each is run once through
//! the proxy unthrottled and uncut, to count the bytes a clean run moves, and once
//! throttled and cut, retrying at once after every cut as an app does.
//!
//! Figures: `time_over_ideal`, the time taken over clean bytes ÷ rate (1.0 is the
//! link's floor); `extra_bytes_per_cut` and `extra_pages_per_cut`, the bytes the
//! weak run moved beyond the clean run, per cut, in bytes and in its average
//! request. That is an upper bound on what a cut made the phone send again: it
//! also holds the smaller pages' own cost (more requests, less to gzip per answer).
//! `lost_bytes_per_cut` and `lost_pages_per_cut` count what a cut really threw
//! away: the bytes of the request under way on each connection it cut, and of its
//! answer as far as it got (counted from the request line the proxy saw last).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{hotline_cases, report_with_photos, small_jpeg, BenchResult};
use crate::sim::{self, SimClock};
use gridsync_core::Engine;

/// What the proxy counts.
#[derive(Default)]
struct Counters {
    /// Bytes carried, both directions.
    bytes: AtomicU64,
    /// HTTP requests seen going up.
    requests: AtomicU64,
    /// Cuts made while a connection was open.
    cuts: AtomicU64,
    /// Bytes of the requests (and their answers, as far as they got) a cut cut
    /// off: what the phone must send or fetch again.
    lost: AtomicU64,
    /// Connections open now.
    open: AtomicU64,
}

/// A token bucket shared by every connection: `rate` bytes per second.
struct Bucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// The most a connection sends at once: a tenth of a second of the link.
    fn burst(&self) -> usize {
        ((self.rate / 10.0) as usize).max(512)
    }

    /// Wait until `want` bytes (at most a burst) may pass; how many may.
    async fn take(&self, want: usize) -> usize {
        let n = want.min(self.burst());
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let (tokens, at) = &mut *state;
                let now = Instant::now();
                *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate)
                    .min(self.burst() as f64);
                *at = now;
                if *tokens >= n as f64 {
                    *tokens -= n as f64;
                    return n;
                }
                (n as f64 - *tokens) / self.rate
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The proxy: how the phone reaches the relay.
pub(super) struct Proxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    /// Runs the proxy's tasks for as long as the proxy lives.
    _runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
}

impl Proxy {
    /// A proxy to `upstream`, throttled to `rate` bytes/s if given, cutting every
    /// connection every `cut_every` if given.
    pub(super) fn start(
        upstream: SocketAddr,
        rate: Option<f64>,
        cut_every: Option<Duration>,
    ) -> BenchResult<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let bucket = rate.map(|rate| {
            Arc::new(Bucket {
                rate,
                state: Mutex::new((0.0, Instant::now())),
            })
        });
        let (stop, _) = watch::channel(false);
        let (cut_tx, cut_rx) = watch::channel(0u64);
        if let Some(every) = cut_every {
            let counters = counters.clone();
            runtime.spawn(async move {
                let mut n = 0;
                loop {
                    tokio::time::sleep(every).await;
                    n += 1;
                    if counters.open.load(Ordering::Relaxed) > 0 {
                        counters.cuts.fetch_add(1, Ordering::Relaxed);
                    }
                    if cut_tx.send(n).is_err() {
                        return;
                    }
                }
            });
        }
        let mut stopped = stop.subscribe();
        let accept_counters = counters.clone();
        runtime.spawn(async move {
            loop {
                let phone = tokio::select! {
                    _ = stopped.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((phone, _)) => phone,
                        Err(_) => continue,
                    },
                };
                let (counters, bucket, cut) =
                    (accept_counters.clone(), bucket.clone(), cut_rx.clone());
                tokio::spawn(carry(phone, upstream, counters, bucket, cut));
            }
        });
        Ok(Proxy {
            addr,
            counters,
            _runtime: runtime,
            stop,
        })
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bytes carried so far, both directions.
    pub(super) fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    /// Stop accepting; connections still open end with the runtime.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// One phone connection, carried both ways until either side closes or a cut.
async fn carry(
    mut phone: TcpStream,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    bucket: Option<Arc<Bucket>>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(mut relay) = TcpStream::connect(upstream).await else {
        return;
    };
    counters.open.fetch_add(1, Ordering::Relaxed);
    cut.borrow_and_update();
    let (mut phone_r, mut phone_w) = phone.split();
    let (mut relay_r, mut relay_w) = relay.split();
    // Bytes of the request under way on this connection and of its answer.
    let in_flight = AtomicU64::new(0);
    let up = pump(
        &mut phone_r,
        &mut relay_w,
        &counters,
        bucket.as_deref(),
        &in_flight,
        true,
    );
    let down = pump(
        &mut relay_r,
        &mut phone_w,
        &counters,
        bucket.as_deref(),
        &in_flight,
        false,
    );
    // A proxy that never cuts has dropped the sender: then this never fires.
    let cut_now = async {
        if cut.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = cut_now => {
            counters.lost.fetch_add(in_flight.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        _ = async { tokio::join!(up, down) } => {}
    }
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

/// Copy `from` to `to` through the bucket, counting bytes, and adding them to the
/// connection's `in_flight`; going `up`, also count requests, each one restarting
/// the count of bytes in flight.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    counters: &Counters,
    bucket: Option<&Bucket>,
    in_flight: &AtomicU64,
    up: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    // The last bytes of the previous read, so a request line split across reads
    // is still counted once.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if up {
            let mut seen = std::mem::take(&mut tail);
            seen.extend_from_slice(&buf[..n]);
            let found = seen.windows(9).filter(|w| w == b"POST /v1/").count();
            counters.requests.fetch_add(found as u64, Ordering::Relaxed);
            if found > 0 {
                in_flight.store(0, Ordering::Relaxed);
            }
            tail = seen[seen.len().saturating_sub(8)..].to_vec();
        }
        let mut sent = 0;
        while sent < n {
            let take = match bucket {
                Some(b) => b.take(n - sent).await,
                None => n - sent,
            };
            if to.write_all(&buf[sent..sent + take]).await.is_err() {
                return;
            }
            counters.bytes.fetch_add(take as u64, Ordering::Relaxed);
            in_flight.fetch_add(take as u64, Ordering::Relaxed);
            sent += take;
        }
    }
    let _ = to.shutdown().await;
}

/// What one run through the proxy took.
struct Run {
    seconds: f64,
    bytes: u64,
    requests: u64,
    cuts: u64,
    lost: u64,
    failed_syncs: u64,
}

/// Sync `phone` through `proxy` until `done` says so, retrying at once after a
/// failure, within `deadline`.
fn run(
    phone: &Engine,
    proxy: &Proxy,
    token: &str,
    done: &dyn Fn(&Engine) -> BenchResult<bool>,
    deadline: Duration,
) -> BenchResult<Run> {
    phone.set_server(&proxy.url(), token)?;
    let start = Instant::now();
    let mut failed_syncs = 0;
    loop {
        match phone.sync(&mut |_| {}) {
            Ok(_) if done(phone)? => break,
            Ok(_) => {}
            Err(gridsync_core::sync::SyncError::Network(_)) => failed_syncs += 1,
            Err(e) => return Err(e.into()),
        }
        if start.elapsed() > deadline {
            return Err(format!("the link run took longer than {deadline:?}").into());
        }
    }
    let c = &proxy.counters;
    Ok(Run {
        seconds: start.elapsed().as_secs_f64(),
        bytes: proxy.bytes(),
        requests: c.requests.load(Ordering::Relaxed),
        cuts: c.cuts.load(Ordering::Relaxed),
        lost: c.lost.load(Ordering::Relaxed),
        failed_syncs,
    })
}

/// One scenario: a clean run and a throttled, cut run of the same work, each on
/// phones made fresh by `phone` (which returns the phone and its token).
fn scenario(
    name: &str,
    relay: SocketAddr,
    rate: f64,
    cut_every: f64,
    phone: &dyn Fn(&str) -> BenchResult<(Engine, String)>,
    done: &dyn Fn(&Engine) -> BenchResult<bool>,
) -> BenchResult {
    let clean_proxy = Proxy::start(relay, None, None)?;
    let (clean_phone, token) = phone("clean")?;
    let clean = run(
        &clean_phone,
        &clean_proxy,
        &token,
        done,
        Duration::from_secs(600),
    )?;
    let ideal = clean.bytes as f64 / rate;
    let proxy = Proxy::start(relay, Some(rate), Some(Duration::from_secs_f64(cut_every)))?;
    let (weak_phone, token) = phone("weak")?;
    // Bounded: several times the link's floor, plus time for the cuts.
    let deadline = Duration::from_secs_f64(4.0 * ideal + 300.0);
    let weak = run(&weak_phone, &proxy, &token, done, deadline)?;
    let extra = weak.bytes.saturating_sub(clean.bytes);
    let per_request = weak.bytes as f64 / weak.requests.max(1) as f64;
    let per_cut = |x: f64| (weak.cuts > 0).then(|| x / weak.cuts as f64);
    println!(
        "{}",
        json!({
            "bench": "link",
            "scenario": name,
            "rate_bytes_per_s": rate,
            "cut_every_s": cut_every,
            "clean_bytes": clean.bytes,
            "clean_requests": clean.requests,
            "bytes": weak.bytes,
            "requests": weak.requests,
            "seconds": weak.seconds,
            "ideal_seconds": ideal,
            "time_over_ideal": weak.seconds / ideal,
            "cuts": weak.cuts,
            "failed_syncs": weak.failed_syncs,
            "extra_bytes_per_cut": per_cut(extra as f64),
            "extra_pages_per_cut": per_cut(extra as f64 / per_request),
            "lost_bytes_per_cut": per_cut(weak.lost as f64),
            "lost_pages_per_cut": per_cut(weak.lost as f64 / per_request),
        })
    );
    Ok(())
}

/// The socket address of a relay at `http://host:port`.
pub(super) fn address(url: &str) -> BenchResult<SocketAddr> {
    Ok(url
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("the relay's address {url}: {e}"))?)
}

/// `gridsync bench link`: see the module documentation.
pub fn link(rate: f64, cut_every: f64, cases: usize, pull_cases: usize) -> BenchResult {
    if !(rate >= 512.0 && cut_every >= 5.0) {
        return Err("--rate must be at least 512 bytes/s and --cut-every at least 5 s".into());
    }
    let dir = tempfile::tempdir()?;
    let relay = sim::RelayProcess::start(&dir.path().join("relay"))?;
    let upstream = address(&relay.url)?;
    let clock = SimClock::new(Utc::now());
    let enroll = |user: &str, folder: &str| -> BenchResult<(Engine, String)> {
        let devices = dir.path().join(folder);
        std::fs::create_dir_all(&devices)?;
        let engine = relay.enroll(&devices, user, &clock)?;
        let (_, token) = engine.server()?.ok_or("not enrolled")?;
        Ok((engine, token))
    };

    // A grid worker's day going up: cases with a photo each, made offline. The
    // clean and the weak run are workers of two grids with photos of their own,
    // so neither finds the other's work on the relay.
    let day = |tag: &str| -> BenchResult<(Engine, String)> {
        let (user, seed) = match tag {
            "clean" => ("w-339901001001001", 1),
            _ => ("w-339901001002001", 1_000_001),
        };
        let (worker, token) = enroll(user, &format!("day-{tag}"))?;
        for i in 0..cases {
            let photo = worker.ingest_photo(&small_jpeg(seed + i as u64)?, None)?;
            report_with_photos(&worker, vec![photo.hash])?;
        }
        Ok((worker, token))
    };
    let all_up = |phone: &Engine| -> BenchResult<bool> {
        Ok(phone.outbox_len()? == 0 && phone.photos_to_upload()?.is_empty())
    };
    scenario("day_up", upstream, rate, cut_every, &day, &all_up)?;

    // A fresh phone pulling a town's cases down.
    let (writer, _) = enroll("cd-339901001001", "writer")?;
    hotline_cases(&writer, pull_cases)?;
    writer.sync(&mut |_| {})?;
    let fresh = |tag: &str| enroll("td-339901001", &format!("fresh-{tag}"));
    let all_down = |phone: &Engine| -> BenchResult<bool> {
        let held = phone.count_cases(&gridsync_core::CaseFilter::default())?;
        Ok(held.iter().map(|(_, n)| n).sum::<u64>() >= pull_cases as u64)
    };
    scenario("fresh_pull", upstream, rate, cut_every, &fresh, &all_down)
}
