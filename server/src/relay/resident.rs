//! The resident channel (居民上报), free of HTTP: a report from the public page or
//! from a dispatcher taking a hotline call becomes a case in the six-step loop,
//! routed to the grid holding its position; the resident follows it with a
//! tracking code and scores the return visit. ADR 0013 says in whose name.
//!
//! Everything here comes from strangers: every field is bounded and checked,
//! every refusal is a sentence in Chinese ([`ResidentError`]), and nothing a
//! resident typed reaches a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use gridsync_core::doc::case::{self, Channel};
use gridsync_core::photo::{PhotoError, PhotoLimits};
use gridsync_core::sync::wire::{ChangeStatus, WireChange};
use gridsync_core::workflow::{fold, Outcome};
use gridsync_core::{
    Action, CaseDoc, CategoryCode, DeviceId, DocContent, DocId, Identity, Location, NewCase,
    Person, PhotoInfo, RegionCode, RegionLevel, Role, Severity, Status, User,
};
use sha2::{Digest, Sha256};

use super::console::{ConsoleUser, SignInSlot};
use super::push::Trust;
use super::{random_bytes, Relay, RelayError};
use gridsync_core::sync::change::decode_wire_changes;

/// Limits of a resident's report.
pub mod limits {
    /// Photos in one report.
    pub const PHOTOS: usize = 3;
    /// One photo's file, in bytes.
    pub const PHOTO_BYTES: usize = 8 * 1024 * 1024;
    /// Description, in characters (at least [`DESCRIPTION_MIN`]).
    pub const DESCRIPTION: usize = 1000;
    /// Shortest description, in characters.
    pub const DESCRIPTION_MIN: usize = 5;
    /// Address, in characters.
    pub const ADDRESS: usize = 100;
    /// A phone number, in characters.
    pub const PHONE: usize = 20;
    /// A caller's name (hotline form), in characters.
    pub const CALLER: usize = 20;
    /// A resident's comment with the score, in characters.
    pub const COMMENT: usize = 200;
    /// Reports whose photos are decoded at once (each may take ~100 MiB).
    pub const PHOTO_WORK: usize = 2;
    /// Reports from the page read and taken at once: their bodies (up to 24 MiB
    /// each) share the relay's body budget with the phones' pushes.
    pub const IN_FLIGHT: usize = 2;
}

/// The capture pipeline's limits for photos from the public: the phone's, with a
/// smaller file and fewer pixels (a 24-megapixel phone photo still passes).
fn photo_limits() -> PhotoLimits {
    PhotoLimits {
        max_file_bytes: limits::PHOTO_BYTES,
        max_pixels: 40_000_000,
        max_alloc: 256 * 1024 * 1024,
        ..PhotoLimits::default()
    }
}

/// How long a proof-of-work challenge is good for, in milliseconds.
pub const CHALLENGE_MS: i64 = 10 * 60 * 1000;
/// Leading zero bits the proof of work needs (about 65,000 hashes: a second or
/// two on a cheap phone).
pub const WORK_BITS: u32 = 16;
/// Two reports are the same within this window, in milliseconds …
pub const DUPLICATE_MS: i64 = 24 * 3600 * 1000;
/// Where the duplicate-detection entries are kept (`meta`): the report's words
/// hashed, its grid, when, and its position if it had one.
const DUPLICATE_PREFIX: &str = "resident.dup.";
/// How often a node forgets the entries older than [`DUPLICATE_MS`].
const FORGET_EVERY_MS: i64 = 10 * 60 * 1000;
/// Entries looked at per forgetting (the report limits keep far fewer a day).
const FORGET_BATCH: u32 = 10_000;
/// … and this distance, in metres, when both have a position.
pub const DUPLICATE_METRES: f64 = 300.0;

/// Why a resident's request was refused, in Chinese, for the page.
#[derive(Debug, thiserror::Error)]
pub enum ResidentError {
    /// What was sent cannot be taken; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Too many requests, from this address or from everyone.
    #[error("{0}")]
    TooMany(&'static str),
    /// No case has this tracking code.
    #[error("查询码不正确，请核对后重新输入")]
    UnknownCode,
    /// The relay failed; the page says to try again.
    #[error(transparent)]
    Relay(#[from] RelayError),
}

fn invalid(message: impl Into<String>) -> ResidentError {
    ResidentError::Invalid(message.into())
}

/// Where a resident says the problem is.
#[derive(Clone, Debug, PartialEq)]
pub enum Whereabouts {
    /// A position from the phone (WGS-84).
    Point {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
    },
    /// A grid chosen from the list (and usually an address typed).
    Grid(RegionCode),
}

/// A photo as uploaded: its bytes and file name.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The file.
    pub bytes: Vec<u8>,
    /// Its name, if the browser gave one.
    pub name: Option<String>,
}

/// A report from a resident, as the page or the hotline form sent it.
#[derive(Clone, Debug)]
pub struct ResidentReport {
    /// The category's code (checked against the taxonomy).
    pub category: String,
    /// What is wrong.
    pub description: String,
    /// Where.
    pub at: Whereabouts,
    /// An address or landmark, may be empty.
    pub address: String,
    /// A phone number to call back, may be empty.
    pub phone: String,
    /// The caller's name (the hotline form), may be empty.
    pub caller: String,
    /// At most [`limits::PHOTOS`].
    pub photos: Vec<Upload>,
}

/// What a resident is given for a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The tracking code, `XXXX-XXXX-XXXX`; none for a public report that
    /// repeats an earlier one (its code is the first reporter's, and it is the key
    /// to scoring that case: never handed to whoever types the same words).
    pub code: Option<String>,
    /// The same report was already received.
    pub duplicate: bool,
    /// The case.
    pub case: DocId,
}

/// One step of a case as the public sees it: what and when, never who or why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicStep {
    /// What happened, in Chinese.
    pub label: &'static str,
    /// When.
    pub at: DateTime<Utc>,
}

/// A case's public progress.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicProgress {
    /// The category's name.
    pub category: String,
    /// The status, in Chinese.
    pub status: &'static str,
    /// The steps taken, oldest first.
    pub steps: Vec<PublicStep>,
    /// Whether the resident may score it now (archived, not yet scored).
    pub can_evaluate: bool,
    /// The score given, if any.
    pub satisfaction: Option<u8>,
    /// The case was found invalid.
    pub invalid: bool,
}

/// Steps shown to the public and what they are called there.
fn public_label(action: &Action) -> Option<&'static str> {
    Some(match action {
        Action::Report { .. } => "已收到上报",
        Action::Accept => "社区已受理",
        Action::Dispatch { .. } => "已派遣至职能部门处置",
        Action::SelfHandle { .. } => "网格员已现场处置",
        Action::Feedback { .. } => "职能部门已反馈处置结果",
        Action::Return { .. } => "职能部门退回，重新派遣中",
        Action::Verify { passed: true, .. } => "现场核查通过",
        Action::Verify { passed: false, .. } => "现场核查未通过，继续处置",
        Action::Archive => "已办结",
        Action::Evaluate { .. } => "已评价",
        Action::Escalate { .. } => "已提交上级处理",
        Action::Invalidate { .. } => "经核实为无效上报",
        // Internal supervision is not the public's business.
        Action::Urge { .. } => return None,
    })
}

/// A token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bucket's size and how fast it fills.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests in a burst.
    pub burst: f64,
    /// Seconds for one more.
    pub every_secs: f64,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs / rate.every_secs).min(rate.burst);
        self.at = now;
    }
}

/// One token bucket per client address, in bounded memory: at
/// [`Clients::MAX`] addresses the full buckets (idle addresses) are dropped.
#[derive(Debug)]
pub struct Clients {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// Why a client's request was not taken.
#[derive(Debug, PartialEq)]
pub(super) enum Refused {
    /// Its own bucket is empty.
    Spent,
    /// [`Clients::MAX`] other addresses are all still limited: no room to count it.
    Crowded,
}

impl Clients {
    /// Addresses remembered at most.
    pub const MAX: usize = 10_000;

    /// Buckets of this rate.
    pub fn new(rate: Rate) -> Clients {
        Clients {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one request from `client` at `now`.
    pub(super) fn take(&self, client: IpAddr, now: Instant) -> Result<(), Refused> {
        let rate = self.rate;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&client) && buckets.len() >= Self::MAX {
            buckets.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
            if buckets.len() >= Self::MAX {
                return Err(Refused::Crowded);
            }
        }
        let mine = buckets
            .entry(client)
            .or_insert_with(|| Bucket::full(rate, now));
        mine.refill(rate, now);
        if mine.tokens < 1.0 {
            return Err(Refused::Spent);
        }
        mine.tokens -= 1.0;
        Ok(())
    }

    /// Give back a request taken from `client` that turned out not to count.
    pub(super) fn give_back(&self, client: IpAddr) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get_mut(&client) {
            b.tokens = (b.tokens + 1.0).min(self.rate.burst);
        }
    }
}

/// Per-address and global token buckets for one kind of request; when the
/// addresses fill [`Clients::MAX`] the request is refused as if the global
/// bucket were empty.
#[derive(Debug)]
pub struct Limiter {
    clients: Clients,
    global_rate: Rate,
    global: Mutex<Bucket>,
}

impl Limiter {
    /// A limiter with these rates.
    pub fn new(per_client: Rate, global: Rate) -> Limiter {
        Limiter {
            clients: Clients::new(per_client),
            global_rate: global,
            global: Mutex::new(Bucket::full(global, Instant::now())),
        }
    }

    /// Take one request from `client` at `now`, or say which limit it met.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), ResidentError> {
        self.take_client(client, now)?;
        self.take_global(now)
    }

    /// Everyone's share, taken once a request has shown it is worth it (a
    /// report: its proof of work checked), so junk spends only its sender's.
    fn take_global(&self, now: Instant) -> Result<(), ResidentError> {
        let mut global = self.global.lock().unwrap_or_else(|e| e.into_inner());
        global.refill(self.global_rate, now);
        if global.tokens < 1.0 {
            return Err(ResidentError::TooMany(BUSY));
        }
        global.tokens -= 1.0;
        Ok(())
    }

    /// The address's own share.
    fn take_client(&self, client: IpAddr, now: Instant) -> Result<(), ResidentError> {
        self.clients.take(client, now).map_err(|refused| {
            ResidentError::TooMany(match refused {
                Refused::Spent => "您提交得太频繁了，请过几分钟再试",
                Refused::Crowded => BUSY,
            })
        })
    }
}

/// What a request is told when everyone's share is spent.
const BUSY: &str = "当前提交的人数较多，请稍后再试";

/// Reports: 5 from one address at once, then one every 4 minutes; 60 from
/// everyone at once, then one every 5 seconds.
pub const REPORT_RATES: (Rate, Rate) = (
    Rate {
        burst: 5.0,
        every_secs: 240.0,
    },
    Rate {
        burst: 60.0,
        every_secs: 5.0,
    },
);
/// Tracking look-ups and scores: 20 from one address at once, then one every 10
/// seconds; 600 from everyone, then 20 a second (a 60-bit code is not guessed).
pub const TRACK_RATES: (Rate, Rate) = (
    Rate {
        burst: 20.0,
        every_secs: 10.0,
    },
    Rate {
        burst: 600.0,
        every_secs: 0.05,
    },
);

/// The resident channel's state on this node: rate limits, the challenges
/// already used, and the decoding work in progress.
#[derive(Debug)]
pub struct Gate {
    reports: Limiter,
    lookups: Limiter,
    used: Mutex<HashMap<[u8; 16], i64>>,
    photo_work: AtomicUsize,
    secret: OnceLock<[u8; 32]>,
    proxies: std::sync::RwLock<Vec<IpAddr>>,
    in_flight: Arc<AtomicUsize>,
    /// When this node last forgot old duplicate-detection entries.
    forgotten_ms: std::sync::atomic::AtomicI64,
    /// Whether the public pages are served (`serve`'s `resident_channel`).
    open: std::sync::atomic::AtomicBool,
    /// Whether a forwarded request was seen with no proxy trusted (warned once).
    unbelieved: std::sync::atomic::AtomicBool,
}

/// A report's place among those read and taken at once; given back when dropped.
#[derive(Debug)]
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            reports: Limiter::new(REPORT_RATES.0, REPORT_RATES.1),
            lookups: Limiter::new(TRACK_RATES.0, TRACK_RATES.1),
            used: Mutex::new(HashMap::new()),
            photo_work: AtomicUsize::new(0),
            secret: OnceLock::new(),
            proxies: std::sync::RwLock::new(Vec::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            forgotten_ms: std::sync::atomic::AtomicI64::new(0),
            open: std::sync::atomic::AtomicBool::new(true),
            unbelieved: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Challenges remembered as used, at most (the report limit lets far fewer
/// through within [`CHALLENGE_MS`]).
const MAX_USED: usize = 100_000;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Whether `nonce` solves `challenge`: SHA-256 of `challenge:nonce` starts with
/// [`WORK_BITS`] zero bits.
pub fn solves(challenge: &str, nonce: &str) -> bool {
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    leading_zero_bits(&digest) >= WORK_BITS
}

/// The tracking code's alphabet: no 0/O, no 1/I.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A tracking code as typed, in its canonical form (12 characters, no dashes).
fn normalise_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{3000}'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 12 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

fn grouped(code: &str) -> String {
    format!("{}-{}-{}", &code[0..4], &code[4..8], &code[8..12])
}

fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

fn check_len(what: &str, s: &str, max: usize) -> Result<(), ResidentError> {
    let n = s.chars().count();
    if n > max {
        return Err(invalid(format!("{what}最多 {max} 个字，现在是 {n} 个字")));
    }
    Ok(())
}

/// Text from the public without control characters (line breaks kept, as `\n`).
fn plain(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

/// Digits (at least five), spaces, dashes and a plus: a mobile or a landline.
fn plausible_phone(phone: &str) -> bool {
    phone.chars().filter(char::is_ascii_digit).count() >= 5
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || "+- ".contains(c))
}

fn photo_problem(i: usize, e: &PhotoError) -> ResidentError {
    let why = match e {
        PhotoError::Size(0, _) => "是空文件".to_owned(),
        PhotoError::Size(..) => format!("超过 {} MB", limits::PHOTO_BYTES / (1024 * 1024)),
        PhotoError::Unsupported(_) | PhotoError::Disguised { .. } => {
            "不是可识别的照片，请使用 JPEG、PNG 或 WebP 格式".to_owned()
        }
        PhotoError::TooLarge { .. } => "像素过大，请用手机相机直接拍摄".to_owned(),
        PhotoError::Corrupt(_) => "已损坏，无法读取".to_owned(),
    };
    invalid(format!("第 {} 张照片{why}", i + 1))
}

/// A report checked and routed, before anything is stored.
struct Checked {
    input: NewCase,
    grid: RegionCode,
    point: Option<(f64, f64)>,
    dup_key: String,
}

/// The client behind `peer`: the right-most address of `forwarded`
/// (`X-Forwarded-For`) that is not one of `proxies`, when `peer` is one of them;
/// otherwise `peer` itself (a header anyone else sends is not believed).
fn client_address(peer: IpAddr, forwarded: Option<&str>, proxies: &[IpAddr]) -> IpAddr {
    // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
    let peer = peer.to_canonical();
    let address = if !proxies.contains(&peer) {
        peer
    } else {
        forwarded
            .into_iter()
            .flat_map(|v| v.rsplit(','))
            .map(|a| a.trim().parse::<IpAddr>().map(|a| a.to_canonical()))
            .take_while(Result::is_ok)
            .flatten()
            .find(|a| !proxies.contains(a))
            .unwrap_or(peer)
    };
    limit_key(address)
}

/// What a rate limit counts an address as: an IPv6 client by its /64 (one
/// subscriber's whole block, which it may rotate through at will).
fn limit_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Relay {
    /// Serve the resident's public pages or not (`serve`'s `resident_channel`;
    /// on by default). The console's hotline form works either way.
    pub fn set_resident_channel(&self, open: bool) {
        self.resident.open.store(open, Ordering::Relaxed);
    }

    /// Whether the resident's public pages are served.
    pub fn resident_channel_open(&self) -> bool {
        self.resident.open.load(Ordering::Relaxed)
    }

    /// Believe `X-Forwarded-For` from these reverse proxies for the resident
    /// page's per-address limits (`serve`'s `trusted_proxies`).
    pub fn set_trusted_proxies(&self, proxies: Vec<IpAddr>) {
        *self
            .resident
            .proxies
            .write()
            .unwrap_or_else(|e| e.into_inner()) =
            proxies.into_iter().map(|p| p.to_canonical()).collect();
    }

    /// The address a resident's request counts against: the connection's
    /// `peer`, or the client a trusted proxy says it forwards.
    pub fn resident_client(&self, peer: IpAddr, forwarded: Option<&str>) -> IpAddr {
        let proxies = self
            .resident
            .proxies
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if forwarded.is_some()
            && proxies.is_empty()
            && !self.resident.unbelieved.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a request carried X-Forwarded-For, and trusted_proxies is not set: if this \
                 relay is behind a proxy, every client counts as the proxy's one address in \
                 the per-address limits (docs/operations.md)"
            );
        }
        client_address(peer, forwarded, &proxies)
    }

    /// The secret this relay signs challenges and derives tracking codes with,
    /// shared by the nodes of a cluster (kept in the store's `meta`).
    fn resident_secret(&self) -> Result<[u8; 32], RelayError> {
        if let Some(secret) = self.resident.secret.get() {
            return Ok(*secret);
        }
        let fresh = hex(&random_bytes::<32>()?);
        let kept = self
            .store
            .meta_or_insert("resident.secret", &fresh)
            .map_err(RelayError::internal)?;
        let secret = from_hex(&kept)
            .ok_or_else(|| RelayError::internal("resident.secret is not 32 hex bytes"))?;
        Ok(*self.resident.secret.get_or_init(|| secret))
    }

    /// A key for `purpose`, derived from the secret above: one secret per relay,
    /// a key of its own for each use.
    pub(super) fn derived_secret(&self, purpose: &str) -> Result<[u8; 32], RelayError> {
        Ok(hmac(&self.resident_secret()?, purpose.as_bytes()))
    }

    /// A proof-of-work challenge: `expiry.random.mac`, good for [`CHALLENGE_MS`].
    pub fn resident_challenge(&self) -> Result<String, RelayError> {
        let expires = Utc::now().timestamp_millis() + CHALLENGE_MS;
        let body = format!("{expires}.{}", hex(&random_bytes::<16>()?));
        let mac = hmac(&self.resident_secret()?, body.as_bytes());
        Ok(format!("{body}.{}", hex(&mac[..16])))
    }

    /// Check a solved challenge and spend it (each is good for one report).
    fn spend_challenge(&self, challenge: &str, nonce: &str) -> Result<(), ResidentError> {
        let stale = || invalid("页面已过期，请刷新页面后重新提交");
        let parts: Vec<&str> = challenge.split('.').collect();
        let [expires, random, mac] = parts.as_slice() else {
            return Err(stale());
        };
        let body = format!("{expires}.{random}");
        let want = hmac(&self.resident_secret()?, body.as_bytes());
        let given: [u8; 16] = from_hex(mac).ok_or_else(stale)?;
        let random: [u8; 16] = from_hex(random).ok_or_else(stale)?;
        if want[..16]
            .iter()
            .zip(given)
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
        {
            return Err(stale());
        }
        let now = Utc::now().timestamp_millis();
        let expires: i64 = expires.parse().map_err(|_| stale())?;
        if expires < now {
            return Err(stale());
        }
        if nonce.is_empty() || nonce.len() > 20 || !solves(challenge, nonce) {
            return Err(invalid(
                "安全校验未完成，请等待页面提示“校验完成”后再提交（需要开启浏览器脚本）",
            ));
        }
        let mut used = self.resident.used.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, until| *until >= now);
        if used.len() >= MAX_USED {
            return Err(ResidentError::TooMany("当前提交的人数较多，请稍后再试"));
        }
        if used.insert(random, expires).is_some() {
            return Err(invalid("这份表单已经提交过了，请刷新页面后再提交新的问题"));
        }
        Ok(())
    }

    /// Check a resident's fields and find the grid the report goes to.
    fn check_report(&self, r: &ResidentReport, channel: Channel) -> Result<Checked, ResidentError> {
        let dir = self.directory()?;
        let category: CategoryCode = r
            .category
            .trim()
            .parse()
            .ok()
            .filter(|c| dir.category(c).is_some())
            .ok_or_else(|| invalid("请选择问题类别"))?;
        let description = plain(&r.description);
        let description = description.trim();
        if description.chars().count() < limits::DESCRIPTION_MIN {
            return Err(invalid(format!(
                "请描述问题，至少 {} 个字",
                limits::DESCRIPTION_MIN
            )));
        }
        check_len("问题描述", description, limits::DESCRIPTION)?;
        let address = plain(&r.address).replace('\n', " ");
        let address = address.trim();
        check_len("地址", address, limits::ADDRESS)?;
        let phone = r.phone.trim();
        check_len("联系电话", phone, limits::PHONE)?;
        if !phone.is_empty() && !plausible_phone(phone) {
            return Err(invalid("联系电话只能包含数字，可留空"));
        }
        let caller = plain(&r.caller).replace('\n', " ");
        let caller = caller.trim();
        check_len("来电人", caller, limits::CALLER)?;
        if r.photos.len() > limits::PHOTOS {
            return Err(invalid(format!("最多上传 {} 张照片", limits::PHOTOS)));
        }
        let (grid, point) = match &r.at {
            Whereabouts::Point { lat, lon } => {
                if case::check_coordinates(*lat, *lon).is_err() {
                    return Err(invalid("定位无效，请重新定位或改为选择所在网格"));
                }
                let grid = dir.grid_at(*lat, *lon).ok_or_else(|| {
                    invalid("您所在的位置不在本平台服务的网格内，请改为选择所在社区和网格")
                })?;
                (grid.code.clone(), Some((*lat, *lon)))
            }
            Whereabouts::Grid(code) => match dir.region(code) {
                Some(g) if g.level == RegionLevel::Grid => (code.clone(), None),
                _ => return Err(invalid("请选择所在社区和网格")),
            },
        };
        let mut description = description.to_owned();
        if point.is_none() && !address.is_empty() {
            // An address without a position has nowhere else to go.
            description.push_str(&format!("\n地址：{address}"));
        }
        let title: String = description
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .take(30)
            .collect();
        let people = if phone.is_empty() && caller.is_empty() {
            Vec::new()
        } else {
            vec![Person {
                name: if caller.is_empty() { "居民" } else { caller }.to_owned(),
                role: if channel == Channel::Resident {
                    "上报居民"
                } else {
                    "来电人"
                }
                .to_owned(),
                phone: phone.to_owned(),
            }]
        };
        // The same words at the same address, in the same grid; reports with a
        // position and without one are kept apart (only like is compared).
        let dup_key = format!(
            "{DUPLICATE_PREFIX}{}.{grid}.{}",
            hex(&Sha256::digest(
                format!(
                    "{category}\n{}\n{}",
                    r.description.split_whitespace().collect::<String>(),
                    address.split_whitespace().collect::<String>()
                )
                .as_bytes()
            )),
            if point.is_some() { "at" } else { "address" }
        );
        Ok(Checked {
            input: NewCase {
                title: format!("【{}】{title}", channel.label_zh()),
                description,
                category,
                subcategory: None,
                severity: Severity::Normal,
                grid: Some(grid.clone()),
                location: point.map(|(lat, lon)| Location {
                    lat,
                    lon,
                    address: address.to_owned(),
                }),
                people,
                photos: Vec::new(),
                links: Default::default(),
            },
            grid,
            point,
            dup_key,
        })
    }

    /// Remove the duplicate-detection entries older than [`DUPLICATE_MS`] (they
    /// hold a report's position): at most every [`FORGET_EVERY_MS`] per node, a
    /// bounded batch at a time, when a report is taken.
    fn forget_old_duplicate_entries(&self) -> Result<(), RelayError> {
        let now = Utc::now().timestamp_millis();
        let last = self.resident.forgotten_ms.load(Ordering::Relaxed);
        if now - last < FORGET_EVERY_MS
            || self
                .resident
                .forgotten_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let old: Vec<String> = self
            .store
            .metas_with_prefix(DUPLICATE_PREFIX, FORGET_BATCH)
            .map_err(RelayError::internal)?
            .into_iter()
            .filter(|(_, value)| {
                let at = value.split(' ').nth(1).and_then(|t| t.parse::<i64>().ok());
                at.is_none_or(|at| now - at > DUPLICATE_MS)
            })
            .map(|(key, _)| key)
            .collect();
        if !old.is_empty() {
            self.store
                .delete_metas(&old)
                .map_err(RelayError::internal)?;
            tracing::info!(
                entries = old.len(),
                "old duplicate-detection entries forgotten"
            );
        }
        Ok(())
    }

    /// The case an earlier, identical report made, if it is recent and near.
    fn duplicate_of(&self, c: &Checked) -> Result<Option<DocId>, RelayError> {
        let Some(kept) = self.store.meta(&c.dup_key).map_err(RelayError::internal)? else {
            return Ok(None);
        };
        let mut parts = kept.split(' ');
        let (Some(doc), Some(at)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        let at: i64 = at.parse().unwrap_or(0);
        let there = match (parts.next(), parts.next()) {
            (Some(lat), Some(lon)) => lat.parse().ok().zip(lon.parse().ok()),
            _ => None,
        };
        // Both at a position and near, or both without one (at the same
        // address, which is in the key): never one with and one without.
        let near = match (c.point, there) {
            (Some(a), Some(b)) => metres(a, b) <= DUPLICATE_METRES,
            (None, None) => true,
            _ => false,
        };
        let recent = Utc::now().timestamp_millis() - at <= DUPLICATE_MS;
        Ok((near && recent).then(|| doc.parse().ok()).flatten())
    }

    /// The tracking code of a case (derived, never stored: a duplicate report is
    /// told the first one's code again).
    fn tracking_code(&self, case: &DocId) -> Result<String, RelayError> {
        let mac = hmac(&self.resident_secret()?, format!("track:{case}").as_bytes());
        // 12 characters of 5 bits: the first 60 bits.
        let bits = u64::from_be_bytes([
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
        ]) >> 4;
        Ok((0..12)
            .map(|i| char::from(ALPHABET[((bits >> (55 - 5 * i)) & 31) as usize]))
            .collect())
    }

    /// The dispatcher a channel's report is entered in the name of: the one of
    /// the grid's `level` region (the community for a new report), the first by
    /// id if there are several. ADR 0013.
    fn channel_author(&self, grid: &RegionCode, level: RegionLevel) -> Result<User, ResidentError> {
        let region = grid
            .ancestor(level)
            .ok_or_else(|| RelayError::internal("a grid without that level above it"))?;
        let dir = self.directory()?;
        dir.users()
            .iter()
            .filter(|u| u.region == region && u.role.dispatch_level() == Some(level))
            .filter(|u| u.role != Role::Admin)
            .min_by(|a, b| a.id.as_str().cmp(b.id.as_str()))
            .cloned()
            .ok_or_else(|| invalid("该网格所在社区暂未开通居民上报，请拨打 12345 热线"))
    }

    /// The device the resident page acts through (one per relay, kept in `meta`).
    fn channel_device(&self) -> Result<DeviceId, RelayError> {
        self.store
            .meta_or_insert("resident.device", &DeviceId::random().to_string())
            .map_err(RelayError::internal)?
            .parse()
            .map_err(RelayError::internal)
    }

    /// Run photos through the capture pipeline, a few reports at a time.
    fn resident_photos(&self, uploads: &[Upload]) -> Result<Vec<PhotoInfo>, ResidentError> {
        let _slot = SignInSlot::take(&self.resident.photo_work, limits::PHOTO_WORK)
            .ok_or(ResidentError::TooMany("当前提交的人数较多，请稍后再试"))?;
        let limits = photo_limits();
        let done = uploads
            .iter()
            .enumerate()
            .map(|(i, u)| {
                gridsync_core::photo::process(&u.bytes, u.name.as_deref(), &limits)
                    .map_err(|e| photo_problem(i, &e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(done
            .into_iter()
            .map(|d| self.keep_photo(d))
            .collect::<Result<_, _>>()?)
    }

    /// Store one drafted change made on `device` as `user`, through the checked push.
    fn store_one(
        &self,
        device: DeviceId,
        user: &User,
        doc: DocId,
        bytes: Vec<u8>,
    ) -> Result<(), RelayError> {
        let answer = self.push_as(
            device,
            &Trust::Device(user, Vec::new()),
            decode_wire_changes(vec![WireChange { doc, bytes }]),
        )?;
        match answer.results.into_iter().next() {
            Some(r) if r.status == ChangeStatus::Accepted => Ok(()),
            Some(r) => Err(RelayError::Forbidden {
                code: "refused",
                message: r
                    .reason
                    .unwrap_or_else(|| "the change was not stored".into()),
            }),
            None => Err(RelayError::internal("a channel change got no answer")),
        }
    }

    /// Take a report into the loop as `author` on `device`: checked, routed,
    /// photos through the pipeline, the case drafted and stored; the tracking
    /// code, or an identical recent report's.
    fn take_report(
        &self,
        report: &ResidentReport,
        channel: Channel,
        author: Option<(&User, DeviceId)>,
    ) -> Result<Receipt, ResidentError> {
        let checked = self.check_report(report, channel)?;
        if let Some((user, _)) = author {
            // A dispatcher enters calls for her own region only, duplicates too.
            if !gridsync_core::access::scope_of(user).covers(&checked.grid) {
                return Err(invalid("该网格不在您的管辖范围内"));
            }
        }
        if let Some(case) = self.duplicate_of(&checked)? {
            // The first report's code only to a dispatcher, who may see the case.
            let code = match author {
                Some(_) => Some(grouped(&self.tracking_code(&case)?)),
                None => None,
            };
            return Ok(Receipt {
                code,
                duplicate: true,
                case,
            });
        }
        self.forget_old_duplicate_entries()?;
        let (user, device) = match author {
            Some((user, device)) => (user.clone(), device),
            None => (
                self.channel_author(&checked.grid, RegionLevel::Community)?,
                self.channel_device()?,
            ),
        };
        let photos = self.resident_photos(&report.photos)?;
        let identity = Identity {
            user: user.id.clone(),
            device,
        };
        let case = {
            let _one_at_a_time = self.console_writes();
            let (case, bytes) = self
                .engine
                .draft_report(&identity, checked.input, channel, &photos)
                .map_err(|e| invalid(format!("无法受理：{e}")))?;
            self.store_one(device, &user, case.clone(), bytes)?;
            case
        };
        let code = self.tracking_code(&case)?;
        let now = Utc::now().timestamp_millis();
        let at = checked
            .point
            .map(|(lat, lon)| format!(" {lat} {lon}"))
            .unwrap_or_default();
        self.store
            .set_metas(&[
                (
                    &format!("resident.track.{}", hex(&Sha256::digest(code.as_bytes()))),
                    case.to_string(),
                ),
                (&checked.dup_key, format!("{case} {now}{at}")),
            ])
            .map_err(RelayError::internal)?;
        tracing::info!(channel = channel.as_str(), "resident report taken");
        Ok(Receipt {
            code: Some(grouped(&code)),
            duplicate: false,
            case,
        })
    }

    /// Let a report from `client` in, before its body is read: one of the
    /// address's and everyone's reports, and one of [`limits::IN_FLIGHT`] places,
    /// held until the returned [`Admission`] is dropped.
    pub fn resident_admit(&self, client: IpAddr) -> Result<Admission, ResidentError> {
        self.resident.reports.take_client(client, Instant::now())?;
        let count = self.resident.in_flight.clone();
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits::IN_FLIGHT).then_some(n + 1)
            })
            .map(|_| Admission(count))
            .map_err(|_| ResidentError::TooMany("当前提交的人数较多，请稍后再试"))
    }

    /// A report from the public page, let in by [`Relay::resident_admit`], with
    /// its solved challenge.
    pub fn resident_report(
        &self,
        _admitted: &Admission,
        challenge: &str,
        nonce: &str,
        report: &ResidentReport,
    ) -> Result<Receipt, ResidentError> {
        self.spend_challenge(challenge, nonce)?;
        self.resident.reports.take_global(Instant::now())?;
        self.take_report(report, Channel::Resident, None)
    }

    /// A resident's report a dispatcher enters from a call or a message, in her
    /// own name, under `channel` (one of [`Channel::ENTERED`]).
    pub fn console_report(
        &self,
        who: &ConsoleUser,
        channel: Channel,
        report: &ResidentReport,
    ) -> Result<Receipt, ResidentError> {
        if !Channel::ENTERED.contains(&channel) {
            return Err(invalid("请选择来源渠道"));
        }
        if !who.user.role.is_dispatcher() {
            return Err(invalid("只有调度员可以登记来电"));
        }
        self.take_report(report, channel, Some((&who.user, who.device)))
    }

    /// The case a tracking code names, read without a scope.
    fn tracked_case(&self, client: IpAddr, code: &str) -> Result<CaseDoc, ResidentError> {
        self.resident.lookups.take(client, Instant::now())?;
        let code = normalise_code(code).ok_or(ResidentError::UnknownCode)?;
        let key = format!("resident.track.{}", hex(&Sha256::digest(code.as_bytes())));
        let id: DocId = self
            .store
            .meta(&key)
            .map_err(RelayError::internal)?
            .and_then(|id| id.parse().ok())
            .ok_or(ResidentError::UnknownCode)?;
        match self.engine.read_doc(&id).map_err(RelayError::internal)? {
            Some(DocContent::Case(case)) => Ok(case),
            // Erased since (ADR 0011), or never synced to this node.
            _ => Err(ResidentError::UnknownCode),
        }
    }

    /// A case's public progress, by its tracking code.
    pub fn resident_track(
        &self,
        client: IpAddr,
        code: &str,
    ) -> Result<PublicProgress, ResidentError> {
        let case = self.tracked_case(client, code)?;
        let state = fold(&case.timeline);
        let steps = case
            .timeline
            .iter()
            .zip(&state.outcomes)
            .filter(|(_, o)| matches!(o, Outcome::Applied))
            .filter_map(|(e, _)| {
                public_label(&e.action).map(|label| PublicStep { label, at: e.at })
            })
            .collect();
        let category = self
            .directory()?
            .category(&case.category)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        Ok(PublicProgress {
            category,
            status: state.status.label_zh(),
            steps,
            can_evaluate: state.status == Status::Archived,
            satisfaction: state.satisfaction,
            invalid: state.status == Status::Invalid,
        })
    }

    /// The resident's satisfaction score (1–5) for a closed case: the loop's
    /// evaluation step, entered as the dispatcher the case is handled by.
    pub fn resident_evaluate(
        &self,
        client: IpAddr,
        code: &str,
        satisfaction: u8,
        comment: &str,
    ) -> Result<(), ResidentError> {
        if !(1..=5).contains(&satisfaction) {
            return Err(invalid("请选择 1 到 5 星的满意度"));
        }
        let comment = plain(comment);
        let comment = comment.trim();
        check_len("评价", comment, limits::COMMENT)?;
        let case = self.tracked_case(client, code)?;
        let state = fold(&case.timeline);
        match state.status {
            Status::Archived => {}
            Status::Evaluated => return Err(invalid("该事件已经评价过了，感谢您的反馈")),
            _ => return Err(invalid("事件办结后才能评价")),
        }
        let author = self.channel_author(&case.grid, state.level)?;
        let device = self.channel_device()?;
        let identity = Identity {
            user: author.id.clone(),
            device,
        };
        let text = if comment.is_empty() {
            "居民评价".to_owned()
        } else {
            format!("居民评价：{comment}")
        };
        let _one_at_a_time = self.console_writes();
        let bytes = self
            .engine
            .draft_action(
                &identity,
                &case.id,
                Action::Evaluate {
                    satisfaction,
                    comment: text,
                },
            )
            .map_err(|e| invalid(format!("无法评价：{e}")))?;
        self.store_one(device, &author, case.id, bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_an_ipv6_client_by_its_64_and_see_through_mapped_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_address(a, None, &[]), client_address(b, None, &[]));
        assert_ne!(client_address(a, None, &[]), client_address(c, None, &[]));
        // A proxy listed as IPv4, seen on a dual-stack socket as IPv4-mapped.
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            client_address(mapped, Some("203.0.113.7"), &[proxy]),
            client
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn codes_are_normalised_and_checked() {
        assert_eq!(
            normalise_code(" abcd-efgh-jk23 ").as_deref(),
            Some("ABCDEFGHJK23")
        );
        assert_eq!(normalise_code("ABCD-EFGH-JK2"), None, "too short");
        assert_eq!(normalise_code("ABCD-EFGH-JK20"), None, "0 is not used");
        assert_eq!(grouped("ABCDEFGHJK23"), "ABCD-EFGH-JK23");
    }

    #[test]
    fn the_proof_of_work_counts_leading_zero_bits() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x80]), 16);
        assert_eq!(leading_zero_bits(&[0, 0x01]), 15);
        let challenge = "1.00.00";
        let nonce = (0u64..)
            .map(|n| n.to_string())
            .find(|n| solves(challenge, n))
            .unwrap();
        assert!(solves(challenge, &nonce));
        let first = (0u64..)
            .find(|n| solves(challenge, &n.to_string()))
            .unwrap();
        assert!(
            (0..first).all(|n| !solves(challenge, &n.to_string())),
            "most nonces do not solve it"
        );
    }

    #[test]
    fn limits_hold_per_address_and_in_all() {
        let rate = Rate {
            burst: 2.0,
            every_secs: 60.0,
        };
        let global = Rate {
            burst: 3.0,
            every_secs: 60.0,
        };
        let limiter = Limiter::new(rate, global);
        let now = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limiter.take(a, now).is_ok());
        assert!(limiter.take(a, now).is_ok());
        let third = limiter.take(a, now).unwrap_err().to_string();
        assert!(third.contains("太频繁"), "{third}");
        assert!(limiter.take(b, now).is_ok());
        let all = limiter.take(b, now).unwrap_err().to_string();
        assert!(all.contains("人数较多"), "{all}");
        // A minute later each has one more, and everyone one more.
        let later = now + std::time::Duration::from_secs(60);
        assert!(limiter.take(a, later).is_ok());
        assert!(limiter.take(b, later).is_err());
    }

    #[test]
    fn a_request_given_back_is_there_again_and_a_spent_bucket_refills() {
        let clients = Clients::new(Rate {
            burst: 2.0,
            every_secs: 60.0,
        });
        let now = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(clients.take(a, now), Ok(()));
        clients.give_back(a);
        clients.give_back(a);
        // Given back up to the burst, never beyond it.
        assert_eq!(clients.take(a, now), Ok(()));
        assert_eq!(clients.take(a, now), Ok(()));
        assert_eq!(clients.take(a, now), Err(Refused::Spent));
        clients.give_back(a);
        assert_eq!(clients.take(a, now), Ok(()));
        assert_eq!(clients.take(a, now), Err(Refused::Spent));
        let later = now + std::time::Duration::from_secs(60);
        assert_eq!(clients.take(a, later), Ok(()));
        assert_eq!(clients.take(a, later), Err(Refused::Spent));
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let rate = Rate {
            burst: 1.0,
            every_secs: 3600.0,
        };
        let limiter = Limiter::new(
            rate,
            Rate {
                burst: 1e9,
                every_secs: 1e-9,
            },
        );
        let now = Instant::now();
        for i in 0..Clients::MAX as u32 {
            assert!(limiter.take(IpAddr::from(i.to_be_bytes()), now).is_ok());
        }
        // Every remembered address is still limited: a new one is refused.
        assert!(limiter
            .take(IpAddr::from([255, 255, 255, 255]), now)
            .is_err());
        // Once they have refilled, they are forgotten to make room.
        let later = now + std::time::Duration::from_secs(3600);
        assert!(limiter
            .take(IpAddr::from([255, 255, 255, 255]), later)
            .is_ok());
        let held = limiter.clients.buckets.lock().unwrap().len();
        assert!(held <= Clients::MAX, "{held}");
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let peer: IpAddr = [203, 0, 113, 7].into();
        let header = Some("198.51.100.1, 203.0.113.50");
        assert_eq!(client_address(peer, header, &[proxy]), peer, "not a proxy");
        assert_eq!(
            client_address(proxy, header, &[proxy]),
            IpAddr::from([203, 0, 113, 50]),
            "the last hop before the proxy, not what the client wrote first"
        );
        assert_eq!(client_address(proxy, None, &[proxy]), proxy);
        assert_eq!(client_address(proxy, Some("garbage"), &[proxy]), proxy);
        let two: IpAddr = [10, 0, 0, 8].into();
        assert_eq!(
            client_address(proxy, Some("198.51.100.1, 10.0.0.8"), &[proxy, two]),
            IpAddr::from([198, 51, 100, 1])
        );
    }

    #[test]
    fn public_text_loses_control_characters() {
        assert_eq!(
            plain("井盖\u{0}缺失\r\n第二行\u{1b}[31m"),
            "井盖缺失\n第二行[31m"
        );
    }

    #[test]
    fn distances_are_metres() {
        let d = metres((30.2741, 120.1551), (30.2750, 120.1551));
        assert!((90.0..110.0).contains(&d), "{d}");
    }
}
