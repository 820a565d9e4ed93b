//! The relay under pressure, over loopback against the real `gridsync serve`:
//! bodies that stall, headers that trickle, more connections than the cap, gzip
//! bombs, strangers sending 16 MiB, `/metrics` on the public port, query strings in
//! debug logs. Each test prints its figures as JSON lines.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use gridsync_core::sync::wire::{self, ErrorBody, PushRequest, PushResponse, WireChange};
use gridsync_core::Engine;

use crate::sockets::{enroll, gridsync, start_with, Server};
use crate::workflow::{leak, DISPATCHER, WORKER};

const MIB: usize = 1024 * 1024;

/// VmRSS and VmHWM of a process, in KiB.
fn mem(pid: u32) -> (u64, u64) {
    let m = gridsync_tests::probe::memory(pid);
    (m.rss_kib, m.hwm_kib)
}

fn addr(server: &Server) -> SocketAddr {
    server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("a loopback address")
}

fn token(engine: &Engine) -> String {
    engine.server().unwrap().expect("enrolled").1
}

/// Time a sync of `engine` with one new case.
fn timed_sync(engine: &Engine) -> Duration {
    engine.report_case(leak()).unwrap();
    let t = Instant::now();
    engine.sync(&mut |_| {}).expect("sync under pressure");
    t.elapsed()
}

fn push_head(addr: SocketAddr, length: usize, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /v1/push HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/cbor\r\n{auth}content-length: {length}\r\n\r\n"
    )
}

/// Read what the relay sends until it closes the connection (or `deadline`):
/// (HTTP status if an answer came, when the connection ended).
fn until_closed(stream: &mut TcpStream, deadline: Instant) -> (Option<u16>, Option<Instant>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (status_of(&got), None);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (status_of(&got), Some(Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (status_of(&got), None)
            }
            // A reset is the relay closing too.
            Err(_) => return (status_of(&got), Some(Instant::now())),
        }
    }
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn stalled_bodies_neither_starve_a_device_nor_grow_the_relays_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let idle = Duration::from_secs(2);
    let server = start_with(&data, &["--body-idle-timeout-secs", "2"]);
    let at = addr(&server);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let thief = enroll(&data, &server, DISPATCHER, dir.path());
    worker.sync(&mut |_| {}).unwrap();
    let pid = server.child.id();
    let (rss_idle, _) = mem(pid);

    // 250 strangers and 50 holders of a stolen token each announce a 16 MiB push,
    // send 4 KiB of it and stall.
    let stolen = token(&thief);
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(at).expect("connect");
        let token = (i >= 250).then_some(stolen.as_str());
        s.write_all(push_head(at, 16 * MIB, token).as_bytes())
            .unwrap();
        s.write_all(&[0u8; 4096]).unwrap();
        conns.push(s);
    }
    let stalled_at = Instant::now();
    let took = timed_sync(&worker);
    let (rss, hwm) = mem(pid);

    let deadline = stalled_at + idle + Duration::from_secs(3);
    let (mut unauthorized, mut timed_out, mut other, mut last_close) = (0, 0, 0, Duration::ZERO);
    for s in &mut conns {
        let (status, closed) = until_closed(s, deadline);
        match status {
            Some(401) => unauthorized += 1,
            Some(408) => timed_out += 1,
            _ => other += 1,
        }
        let closed = closed.expect("the relay closes a stalled connection");
        last_close = last_close.max(closed - stalled_at);
    }
    println!(
        "{{\"test\":\"stalled_bodies\",\"connections\":300,\"answered_401\":{unauthorized},\"answered_408\":{timed_out},\"other\":{other},\"sync_ms\":{},\"last_closed_ms\":{},\"body_idle_timeout_ms\":{},\"rss_idle_kib\":{rss_idle},\"rss_kib\":{rss},\"hwm_kib\":{hwm}}}",
        took.as_millis(),
        last_close.as_millis(),
        idle.as_millis()
    );
    assert!(took < Duration::from_secs(1), "sync took {took:?}");
    assert_eq!(
        unauthorized, 250,
        "strangers are answered without their body"
    );
    assert_eq!(timed_out, 50, "a stalled body is given up");
    assert!(
        last_close < idle + Duration::from_millis(1500),
        "closed after {last_close:?}"
    );
    assert!(
        hwm < rss_idle + 64 * 1024,
        "peak {hwm} KiB against {rss_idle} KiB idle"
    );
}

#[test]
fn slow_headers_are_closed_and_past_the_cap_a_device_still_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let header_timeout = Duration::from_secs(2);
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = start_with(
        &data,
        &[
            "--header-timeout-secs",
            "2",
            "--max-connections",
            "200",
            "--metrics-listen",
            &metrics,
        ],
    );
    let at = addr(&server);
    let worker = enroll(&data, &server, WORKER, dir.path());
    worker.sync(&mut |_| {}).unwrap();
    let pid = server.child.id();
    let (rss_idle, _) = mem(pid);

    // 1,100 connections that send one header byte a second.
    let head = push_head(at, 10, None).into_bytes();
    let mut slow: Vec<Slow> = Vec::new();
    let mut refused = 0;
    for i in 0..1100 {
        match TcpStream::connect(at) {
            Ok(stream) => {
                stream.set_nonblocking(true).unwrap();
                let _ = (&stream).write(&head[..1]);
                let now = Instant::now();
                slow.push(Slow {
                    stream,
                    opened: now,
                    last_byte: now,
                    sent: 1,
                    closed: None,
                });
            }
            Err(_) => refused += 1,
        }
        if i % 100 == 99 {
            trickle(&mut slow, &head);
        }
    }
    let flooded = Instant::now();
    let took = timed_sync(&worker);
    trickle(&mut slow, &head);
    let open_after_sync = slow.iter().filter(|c| c.closed.is_none()).count();

    // Keep trickling until every one is closed (or long past the timeout).
    let stop = flooded + header_timeout + Duration::from_secs(6);
    while Instant::now() < stop && slow.iter().any(|c| c.closed.is_none()) {
        std::thread::sleep(Duration::from_millis(100));
        trickle(&mut slow, &head);
    }
    let (rss, hwm) = mem(pid);
    let (_, scraped) = get(&format!("http://{metrics}/metrics"), None);
    let closed = |reason: &str| {
        counter(
            &scraped,
            &format!("gridsync_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    let (evicted, timed_out) = (closed("evicted"), closed("header_timeout"));
    let still_open = slow.iter().filter(|c| c.closed.is_none()).count();
    let mut open_for: Vec<Duration> = slow
        .iter()
        .filter_map(|c| c.closed.map(|closed| closed - c.opened))
        .collect();
    open_for.sort();
    let longest = open_for.last().copied().unwrap_or_default();
    let p50 = open_for
        .get(open_for.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "{{\"test\":\"slow_headers\",\"connections\":1100,\"connect_refused\":{refused},\"max_connections\":200,\"open_after_sync\":{open_after_sync},\"evicted\":{evicted},\"closed_by_header_timeout\":{timed_out},\"still_open_at_end\":{still_open},\"sync_ms\":{},\"median_open_ms\":{},\"longest_open_ms\":{},\"header_timeout_ms\":{},\"rss_idle_kib\":{rss_idle},\"rss_kib\":{rss},\"hwm_kib\":{hwm}}}",
        took.as_millis(),
        p50.as_millis(),
        longest.as_millis(),
        header_timeout.as_millis()
    );
    assert!(took < Duration::from_secs(1), "sync took {took:?}");
    assert!(
        open_after_sync <= 200,
        "the cap holds: {open_after_sync} open"
    );
    assert_eq!(still_open, 0, "every slow connection is closed");
    assert!(
        evicted + timed_out >= 1100,
        "{evicted} evicted, {timed_out} timed out"
    );
    assert!(evicted > 0 && timed_out > 0);
    assert!(
        longest < header_timeout + Duration::from_millis(1500),
        "one stayed {longest:?}"
    );
    assert!(
        hwm < rss_idle + 64 * 1024,
        "peak {hwm} KiB against {rss_idle} KiB idle"
    );
}

/// The value of a counter line in a metrics scrape (0 when absent).
fn counter(scrape: &str, name: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Strangers' uploads to the public resident page have a budget of their own.
/// With 15 MiB of the phones' 32 MiB held by a stalled push, two residents'
/// uploads stalled at 8 MiB each would have filled the rest (a 4 MiB push then
/// answered `busy`); apart, the push is read and answered.
#[test]
fn stalled_resident_uploads_never_take_the_phones_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start_with(&data, &["--body-budget-mib", "32", "--busy-wait-secs", "1"]);
    let at = addr(&server);
    let holder = enroll(&data, &server, DISPATCHER, dir.path());
    let stolen = token(&holder);
    let chunk = vec![b'x'; MIB];
    let mut held = Vec::new();
    let mut push = TcpStream::connect(at).unwrap();
    push.write_all(push_head(at, 16 * MIB, Some(&stolen)).as_bytes())
        .unwrap();
    for _ in 0..15 {
        push.write_all(&chunk).unwrap();
    }
    held.push(push);
    let boundary = "gridsyncpressure";
    let part = |last: bool| {
        let mut p = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"photo\"; \
             filename=\"a.jpg\"\r\ncontent-type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        p.extend(std::iter::repeat_n(b'x', 4 * MIB));
        if !last {
            p.extend_from_slice(b"\r\n");
        }
        p
    };
    for _ in 0..2 {
        let mut s = TcpStream::connect(at).unwrap();
        s.write_all(
            format!(
                "POST /r/report HTTP/1.1\r\nhost: {at}\r\n\
                 content-type: multipart/form-data; boundary={boundary}\r\n\
                 content-length: {}\r\n\r\n",
                9 * MIB
            )
            .as_bytes(),
        )
        .unwrap();
        for i in 0..2 {
            if s.write_all(&part(i == 1)).is_err() {
                break;
            }
        }
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));

    let mut next = TcpStream::connect(at).unwrap();
    next.write_all(push_head(at, 4 * MIB, Some(&stolen)).as_bytes())
        .unwrap();
    for _ in 0..4 {
        if next.write_all(&chunk).is_err() {
            break;
        }
    }
    let (status, _) = until_closed(&mut next, Instant::now() + Duration::from_secs(5));
    println!(
        "{{\"test\":\"public_budget_apart\",\"staff_budget_mib\":32,\"held_by_push_mib\":15,\"stalled_public_mib\":16,\"next_push_status\":{}}}",
        status.unwrap_or(0)
    );
    assert!(
        status.is_some_and(|s| s != 503),
        "{status:?}: the push found room"
    );
    drop(held);
}

#[test]
fn a_full_body_budget_answers_busy_and_frees_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let idle = Duration::from_secs(3);
    let server = start_with(
        &data,
        &[
            "--body-budget-mib",
            "32",
            "--busy-wait-secs",
            "1",
            "--body-idle-timeout-secs",
            "3",
        ],
    );
    let at = addr(&server);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let holder = enroll(&data, &server, DISPATCHER, dir.path());
    let stolen = token(&holder);

    // Two holders of a token take 15 MiB of the budget each and stall.
    let chunk = vec![0u8; MIB];
    let mut hogs = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(at).unwrap();
        s.write_all(push_head(at, 16 * MIB, Some(&stolen)).as_bytes())
            .unwrap();
        for _ in 0..15 {
            s.write_all(&chunk).unwrap();
        }
        hogs.push(s);
    }
    let stalled_at = Instant::now();
    std::thread::sleep(Duration::from_millis(300));

    // A third push finds no room for its 4 MiB: busy, after the wait.
    let mut third = TcpStream::connect(at).unwrap();
    third
        .write_all(push_head(at, 4 * MIB, Some(&stolen)).as_bytes())
        .unwrap();
    let t = Instant::now();
    for _ in 0..4 {
        if third.write_all(&chunk).is_err() {
            break;
        }
    }
    let (busy, _) = until_closed(&mut third, Instant::now() + Duration::from_secs(5));
    let busy_ms = t.elapsed().as_millis();

    // Once the stalled bodies are given up, the budget is free again.
    let mut hog_status = Vec::new();
    for s in &mut hogs {
        hog_status.push(until_closed(s, stalled_at + idle + Duration::from_secs(3)).0);
    }
    let took = timed_sync(&worker);
    println!(
        "{{\"test\":\"body_budget\",\"budget_mib\":32,\"held_by_stalled_mib\":30,\"third_status\":{},\"third_answered_ms\":{busy_ms},\"stalled_status\":{:?},\"sync_after_ms\":{}}}",
        busy.unwrap_or(0),
        hog_status.iter().map(|s| s.unwrap_or(0)).collect::<Vec<_>>(),
        took.as_millis()
    );
    assert_eq!(busy, Some(503));
    assert_eq!(hog_status, [Some(408), Some(408)]);
    assert!(took < Duration::from_secs(1), "sync took {took:?}");
}

#[test]
fn a_strangers_sign_in_body_is_refused_before_it_takes_the_phones_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start_with(&data, &["--body-budget-mib", "32", "--busy-wait-secs", "1"]);
    let at = addr(&server);
    let holder = enroll(&data, &server, DISPATCHER, dir.path());
    let stolen = token(&holder);
    // Three strangers post 16 MiB sign-in forms and stall after 12 MiB each: more
    // than the whole budget, were the forms read.
    let chunk = vec![b'x'; MIB];
    let mut strangers = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(at).unwrap();
        // A relay that stops reading must not leave the test blocked in a write.
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            format!(
                "POST /console/sign-in HTTP/1.1\r\nhost: {at}\r\n\
                 content-type: application/x-www-form-urlencoded\r\n\
                 content-length: {}\r\n\r\nuser=",
                16 * MIB
            )
            .as_bytes(),
        )
        .unwrap();
        for _ in 0..12 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
        strangers.push(s);
    }
    let refused: Vec<Option<u16>> = strangers
        .iter_mut()
        .map(|s| until_closed(s, Instant::now() + Duration::from_secs(5)).0)
        .collect();

    // A phone's 4 MiB push finds room.
    let mut push = TcpStream::connect(at).unwrap();
    push.write_all(push_head(at, 4 * MIB, Some(&stolen)).as_bytes())
        .unwrap();
    for _ in 0..4 {
        if push.write_all(&chunk).is_err() {
            break;
        }
    }
    let (status, _) = until_closed(&mut push, Instant::now() + Duration::from_secs(5));
    println!(
        "{{\"test\":\"sign_in_body_limit\",\"budget_mib\":32,\"strangers\":3,\"stranger_status\":{:?},\"next_push_status\":{}}}",
        refused.iter().map(|s| s.unwrap_or(0)).collect::<Vec<_>>(),
        status.unwrap_or(0)
    );
    assert_eq!(refused, [Some(413), Some(413), Some(413)]);
    assert!(
        status.is_some_and(|s| s != 503),
        "{status:?}: the push found room"
    );
}

/// A connection sending its headers one byte a second.
struct Slow {
    stream: TcpStream,
    opened: Instant,
    last_byte: Instant,
    sent: usize,
    closed: Option<Instant>,
}

/// One pass over the slow connections: note those the relay closed, send the next
/// byte on those whose second is up.
fn trickle(slow: &mut [Slow], head: &[u8]) {
    let mut buf = [0u8; 512];
    for c in slow.iter_mut().filter(|c| c.closed.is_none()) {
        match c.stream.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if c.last_byte.elapsed() >= Duration::from_secs(1) {
                    let _ = c.stream.write(&head[c.sent % head.len()..][..1]);
                    c.sent += 1;
                    c.last_byte = Instant::now();
                }
            }
            // An answer, the end, or a reset: closed by the relay.
            _ => c.closed = Some(Instant::now()),
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn post(url: &str, token: &str, encoding: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(url)
        .header("Content-Type", "application/cbor")
        .header("Authorization", format!("Bearer {token}"));
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let mut resp = req.send(body).expect("an answer");
    let status = resp.status().as_u16();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(32 * MIB as u64)
        .read_to_vec()
        .unwrap();
    (status, bytes)
}

#[test]
fn gzip_pushes_inflate_within_the_limit_and_strangers_are_answered_before_their_body() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let server = start_with(&data, &[]);
    let worker = enroll(&data, &server, WORKER, dir.path());
    let token = token(&worker);
    let push_url = format!("{}/v1/push", server.url);

    // A real change, pushed gzip-compressed.
    let id = worker.report_case(leak()).unwrap();
    let changes = worker
        .changes_since(&id, &[])
        .unwrap()
        .into_iter()
        .map(|c| WireChange {
            doc: id.to_string().parse().expect("a document id"),
            bytes: c.raw_bytes().to_vec(),
        })
        .collect();
    let cbor = wire::encode(&PushRequest {
        v: 1,
        changes,
        erased: vec![],
    });
    let gz = gzip(&cbor);
    let (status, body) = post(&push_url, &token, Some("gzip"), &gz);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: PushResponse = wire::decode(&body).unwrap();
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].status, wire::ChangeStatus::Accepted);

    // 17 MiB of zeros in a few KiB of gzip: refused once past 16 MiB.
    let bomb = gzip(&vec![0u8; 17 * MIB]);
    let t = Instant::now();
    let (status, body) = post(&push_url, &token, Some("gzip"), &bomb);
    let bomb_ms = t.elapsed().as_millis();
    assert_eq!(status, 413);
    let refusal: ErrorBody = wire::decode(&body).unwrap();
    assert_eq!(refusal.error, "too_large");
    assert!(refusal.message.contains("16777216"), "{}", refusal.message);

    let (status, body) = post(&push_url, &token, Some("br"), &cbor);
    assert_eq!(status, 415);
    let refusal: ErrorBody = wire::decode(&body).unwrap();
    assert_eq!(refusal.error, "unsupported_encoding");

    // A stranger announcing 16 MiB is answered after a part of it.
    let at = addr(&server);
    let mut s = TcpStream::connect(at).unwrap();
    let t = Instant::now();
    s.write_all(push_head(at, 16 * MIB, Some("not-a-token")).as_bytes())
        .unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut sent = 0;
    for _ in 0..4 {
        s.write_all(&chunk).unwrap();
        sent += chunk.len();
    }
    let mut answer = [0u8; 512];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = s.read(&mut answer).expect("an answer before the body");
    let answered = t.elapsed();
    let status = status_of(&answer[..n]);
    println!(
        "{{\"test\":\"gzip_and_early_refusal\",\"gzip_push\":\"accepted\",\"bomb_compressed_bytes\":{},\"bomb_status\":413,\"bomb_ms\":{bomb_ms},\"stranger_status\":{},\"stranger_sent_bytes\":{sent},\"stranger_announced_bytes\":{},\"stranger_answered_ms\":{}}}",
        bomb.len(),
        status.unwrap_or(0),
        16 * MIB,
        answered.as_millis()
    );
    assert_eq!(status, Some(401));
    assert!(answered < Duration::from_millis(500), "{answered:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("an answer");
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn metrics_are_served_only_where_configured() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let plain = start_with(&data, &[]);
    let (by_default, _) = get(&format!("{}/metrics", plain.url), None);
    assert_eq!(by_default, 404, "not on the public port by default");
    drop(plain);

    let port = free_port();
    let private = format!("127.0.0.1:{port}");
    let secret = "metrics-secret-0123456789";
    let server = start_with(
        &data,
        &["--metrics-listen", &private, "--metrics-token", secret],
    );
    let (on_private, text) = get(&format!("http://{private}/metrics"), None);
    let (public_without, _) = get(&format!("{}/metrics", server.url), None);
    let (public_wrong, _) = get(
        &format!("{}/metrics", server.url),
        Some("wrong-token-0000000"),
    );
    let (public_with, _) = get(&format!("{}/metrics", server.url), Some(secret));
    let (private_healthz, _) = get(&format!("http://{private}/healthz"), None);
    println!(
        "{{\"test\":\"metrics_placement\",\"public_default\":{by_default},\"private\":{on_private},\"public_without_token\":{public_without},\"public_wrong_token\":{public_wrong},\"public_with_token\":{public_with},\"private_other_path\":{private_healthz}}}"
    );
    assert_eq!(on_private, 200);
    assert!(text.contains("gridsync_connections_open"), "{text}");
    assert_eq!(public_without, 401);
    assert_eq!(public_wrong, 401);
    assert_eq!(public_with, 200);
    assert_eq!(
        private_healthz, 404,
        "the metrics address serves only /metrics"
    );
}

/// `gridsync serve` at debug level, its log in `log`.
fn start_logging(data: &Path, log: &Path) -> Server {
    let child = gridsync()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("GRIDSYNC_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("gridsync serve starts");
    crate::sockets::listening(child)
}

#[test]
fn debug_logs_carry_paths_but_never_query_strings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    // The account exists before the relay starts: it reads nothing else.
    let mut admin = gridsync()
        .args(["admin", "--data"])
        .arg(&data)
        .args(["password", "--user", DISPATCHER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(admin.stdin.take().unwrap(), "wanghu-2026-dispatch").unwrap();
    assert!(admin.wait().unwrap().success());
    let log = dir.path().join("relay.log");
    let server = start_logging(&data, &log);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let signed_in = agent
        .post(format!("{}/console/sign-in", server.url))
        .send_form([("user", DISPATCHER), ("password", "wanghu-2026-dispatch")])
        .unwrap();
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_owned();
    // 张三 and a mobile number, as typed into the console's search box.
    let query = "/console/cases?q=%E5%BC%A0%E4%B8%8913812345678";
    let searched = agent
        .get(format!("{}{query}", server.url))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    let status = searched.status().as_u16();
    let stranger = agent
        .get(format!("{}{query}&page=2", server.url))
        .call()
        .unwrap();
    let _ = stranger.status();
    std::thread::sleep(Duration::from_millis(200));
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines = text.lines().count();
    let leaks = ["13812345678", "张三", "%E5%BC%A0", "q="]
        .iter()
        .filter(|needle| text.contains(*needle))
        .count();
    println!(
        "{{\"test\":\"debug_log_query_strings\",\"search_status\":{status},\"log_lines\":{lines},\"leaked_fragments\":{leaks}}}"
    );
    assert_eq!(status, 303, "answered with the search sealed into the link");
    assert!(
        text.contains("/console/cases"),
        "the path is logged at debug level"
    );
    assert_eq!(leaks, 0, "the query reached the log:\n{text}");
}
