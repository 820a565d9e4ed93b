//! `gridsync serve` settings: flags, then `GRIDSYNC_*` environment variables, then a
//! TOML config file, then defaults (loopback, `./gridsync-data`, the edge's limits
//! in `gridsync_server::http::EdgeLimits::default`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gridsync_server::http::EdgeLimits;

use gridsync_server::blobstore::S3Config;
use gridsync_server::relay::Storage;
use serde::Deserialize;

/// Default data folder.
pub const DEFAULT_DATA: &str = "gridsync-data";
/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// Where what the relay's nodes share is kept (flags, each also from the
/// environment; `serve` also reads them from its config file).
#[derive(clap::Args, Debug, Default)]
pub struct StorageArgs {
    /// PostgreSQL shared by several nodes, `postgres://user:password@host:port/db`
    /// [default: relay.db in the data folder].
    #[arg(long, env = "GRIDSYNC_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// An S3-compatible object store for photos, `s3://bucket` or
    /// `s3://bucket/prefix`; keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    /// [default: blobs/ in the data folder].
    #[arg(long, env = "GRIDSYNC_PHOTOS_URL")]
    photos_url: Option<String>,
    /// The object store's endpoint, for a store other than AWS (MinIO, Ceph, a
    /// cloud's S3-compatible service).
    #[arg(long, env = "GRIDSYNC_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// The object store's region.
    #[arg(long, env = "GRIDSYNC_S3_REGION")]
    s3_region: Option<String>,
    /// Allow a plain-HTTP endpoint (an object store on the same private network).
    #[arg(long, env = "GRIDSYNC_S3_ALLOW_HTTP")]
    s3_allow_http: bool,
}

impl StorageArgs {
    /// These settings over `file`'s.
    fn over(self, file: StorageArgs) -> StorageArgs {
        StorageArgs {
            database_url: self.database_url.or(file.database_url),
            photos_url: self.photos_url.or(file.photos_url),
            s3_endpoint: self.s3_endpoint.or(file.s3_endpoint),
            s3_region: self.s3_region.or(file.s3_region),
            s3_allow_http: self.s3_allow_http || file.s3_allow_http,
        }
    }

    /// The storage these settings name.
    pub fn storage(self) -> Result<Storage, String> {
        if self.photos_url.is_none()
            && (self.s3_endpoint.is_some() || self.s3_region.is_some() || self.s3_allow_http)
        {
            return Err("s3_endpoint, s3_region and s3_allow_http need photos_url".into());
        }
        Ok(Storage {
            database_url: self.database_url,
            photos: self.photos_url.map(|url| S3Config {
                url,
                endpoint: self.s3_endpoint,
                region: self.s3_region,
                allow_http: self.s3_allow_http,
                ..S3Config::default()
            }),
        })
    }
}

/// Flags (each also from the environment).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file with `listen`, `data`, `directory`, `token_days`,
    /// `token_rotate_hours`,
    /// `upstream_interval_secs`, `tls_cert`, `tls_key`, `database_url`,
    /// `photos_url`, `s3_endpoint`, `s3_region`, `s3_allow_http`,
    /// `max_connections`, `header_timeout_secs`, `body_idle_timeout_secs`,
    /// `request_timeout_secs`, `body_budget_mib`, `busy_wait_secs`,
    /// `metrics_listen`, `metrics_token`, `trusted_proxies`, `map_tile_url`,
    /// `map_tile_coordinates` and `resident_channel` keys, and
    /// a `[notify]` table (docs/notifications.md).
    #[arg(long, env = "GRIDSYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long, env = "GRIDSYNC_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data folder [default: ./gridsync-data].
    #[arg(long, env = "GRIDSYNC_DATA")]
    data: Option<PathBuf>,
    /// Directory JSON file to load (otherwise the stored one, or the sample).
    #[arg(long, env = "GRIDSYNC_DIRECTORY")]
    directory: Option<PathBuf>,
    /// Days a device token works before the device must enroll again [default: 365].
    #[arg(long, env = "GRIDSYNC_TOKEN_DAYS")]
    token_days: Option<u32>,
    /// Hours after which a phone's token is replaced at its next pull; the old one
    /// stops working once the new one is used [default: 24].
    #[arg(long, env = "GRIDSYNC_TOKEN_ROTATE_HOURS")]
    token_rotate_hours: Option<u32>,
    /// Seconds between rounds with the upstream server, if one is connected
    /// (`gridsync admin upstream`) [default: 30].
    #[arg(long, env = "GRIDSYNC_UPSTREAM_INTERVAL")]
    upstream_interval_secs: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "GRIDSYNC_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "GRIDSYNC_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Open connections at most; at the cap, the one idle longest is closed to
    /// make room [default: 1024].
    #[arg(long, env = "GRIDSYNC_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a new connection has for its TLS handshake, and each request for
    /// its headers; also how long an idle connection is kept [default: 10].
    #[arg(long, env = "GRIDSYNC_HEADER_TIMEOUT")]
    header_timeout_secs: Option<u64>,
    /// Seconds a request body may send nothing before it is given up (408), and
    /// an answer may go unread before the connection is closed [default: 15].
    #[arg(long, env = "GRIDSYNC_BODY_IDLE_TIMEOUT")]
    body_idle_timeout_secs: Option<u64>,
    /// Seconds within which a request must be answered (408) [default: 120].
    #[arg(long, env = "GRIDSYNC_REQUEST_TIMEOUT")]
    request_timeout_secs: Option<u64>,
    /// MiB of request bodies held at once across all requests; at least 32
    /// [default: 64].
    #[arg(long, env = "GRIDSYNC_BODY_BUDGET_MIB")]
    body_budget_mib: Option<usize>,
    /// Seconds a request waits for room in the body budget before it is answered
    /// 503 busy [default: 5].
    #[arg(long, env = "GRIDSYNC_BUSY_WAIT")]
    busy_wait_secs: Option<u64>,
    /// Serve /metrics on this address (plain HTTP, no token): loopback or a
    /// private network [default: not served].
    #[arg(long, env = "GRIDSYNC_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// A reverse proxy in front of the relay whose `X-Forwarded-For` is believed
    /// for the resident page's per-address limits (repeat, or comma-separated)
    /// [default: none; the connection's address counts].
    #[arg(
        long = "trusted-proxy",
        env = "GRIDSYNC_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve /metrics on the public address to requests bearing this token (at
    /// least 16 characters; better from the environment than the command line)
    /// [default: not served there].
    #[arg(long, env = "GRIDSYNC_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// The bearer token for the notification webhook (`[notify]` in the config
    /// file; better from the environment than the file).
    #[arg(long, env = "GRIDSYNC_NOTIFY_TOKEN", hide_env_values = true)]
    notify_token: Option<String>,
    /// A base map under the console's map: a tile server's URL template with
    /// `{z}`, `{x}` and `{y}` (Web Mercator tiles in WGS-84, like the directory's
    /// coordinates) [default: none; the map is vector shapes only].
    #[arg(long, env = "GRIDSYNC_MAP_TILE_URL")]
    map_tile_url: Option<String>,
    /// The base map's coordinates: `wgs84` (天地图 and other CGCS2000 maps) or
    /// `gcj02` (AMap's and other Chinese services' tiles, placed where their
    /// corners really are) [default: wgs84].
    #[arg(long, env = "GRIDSYNC_MAP_TILE_COORDINATES")]
    map_tile_coordinates: Option<String>,
    /// Serve residents' public report pages (`/r`): `true` or `false`
    /// [default: true]. The console's hotline form works either way.
    #[arg(long, env = "GRIDSYNC_RESIDENT_CHANNEL")]
    resident_channel: Option<bool>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    database_url: Option<String>,
    photos_url: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    #[serde(default)]
    s3_allow_http: bool,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    directory: Option<PathBuf>,
    token_days: Option<u32>,
    token_rotate_hours: Option<u32>,
    upstream_interval_secs: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_idle_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    body_budget_mib: Option<usize>,
    busy_wait_secs: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    notify: gridsync_server::notify::Config,
    map_tile_url: Option<String>,
    map_tile_coordinates: Option<String>,
    resident_channel: Option<bool>,
}

/// The smallest body budget: one push whole and inflated (16 MiB each).
const MIN_BODY_BUDGET_MIB: usize = 32;
/// The shortest metrics token.
const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// The settings in force.
#[derive(Debug)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data folder.
    pub data: PathBuf,
    /// Directory file, if any.
    pub directory: Option<PathBuf>,
    /// Token lifetime in days.
    pub token_days: u32,
    /// Hours before a phone's token is rotated (at least 1).
    pub token_rotate_hours: u32,
    /// Seconds between upstream rounds (at least 1).
    pub upstream_interval_secs: u64,
    /// HTTPS, when a certificate and key are configured.
    pub tls: Option<gridsync_server::http::Tls>,
    /// The database and photo store.
    pub storage: Storage,
    /// The HTTP edge's limits and timeouts.
    pub edge: EdgeLimits,
    /// Where /metrics is served without a token, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// The token for /metrics on the public address, if it is served there.
    pub metrics_token: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` the resident page believes.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Outbound notifications (`[notify]`; none by default).
    pub notify: gridsync_server::notify::Config,
    /// The console map's base map, if any.
    pub map_tile_url: Option<gridsync_server::relay::TileUrl>,
    /// Whether residents' public report pages (`/r`) are served.
    pub resident_channel: bool,
}

/// Seconds from a setting, at least 1.
fn secs(name: &str, value: Option<u64>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(0) => Err(format!("{name} must be at least 1")),
        Some(n) => Ok(Duration::from_secs(n)),
    }
}

impl ServeArgs {
    /// Merge flags/environment over the file over the defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| format!("config {}: {e}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(gridsync_server::http::Tls { cert, key }),
            (None, None) => None,
            _ => {
                return Err("TLS needs both a certificate (tls_cert) and its key (tls_key)".into())
            }
        };
        let defaults = EdgeLimits::default();
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections);
        if max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        let body_budget_mib = self.body_budget_mib.or(file.body_budget_mib);
        if body_budget_mib.is_some_and(|m| m < MIN_BODY_BUDGET_MIB) {
            return Err(format!(
                "body_budget_mib must be at least {MIN_BODY_BUDGET_MIB} (a 16 MiB push, whole and inflated)"
            ));
        }
        let edge = EdgeLimits {
            max_connections,
            header_timeout: secs(
                "header_timeout_secs",
                self.header_timeout_secs.or(file.header_timeout_secs),
                defaults.header_timeout,
            )?,
            body_idle_timeout: secs(
                "body_idle_timeout_secs",
                self.body_idle_timeout_secs.or(file.body_idle_timeout_secs),
                defaults.body_idle_timeout,
            )?,
            request_timeout: secs(
                "request_timeout_secs",
                self.request_timeout_secs.or(file.request_timeout_secs),
                defaults.request_timeout,
            )?,
            body_budget_bytes: body_budget_mib.map_or(defaults.body_budget_bytes, |m| {
                m.saturating_mul(1024 * 1024)
            }),
            busy_wait: self
                .busy_wait_secs
                .or(file.busy_wait_secs)
                .map_or(defaults.busy_wait, Duration::from_secs),
        };
        let metrics_token = self.metrics_token.or(file.metrics_token);
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.chars().count() < MIN_METRICS_TOKEN_CHARS)
        {
            return Err(format!(
                "metrics_token must be at least {MIN_METRICS_TOKEN_CHARS} characters"
            ));
        }
        let storage = self
            .storage
            .over(StorageArgs {
                database_url: file.database_url,
                photos_url: file.photos_url,
                s3_endpoint: file.s3_endpoint,
                s3_region: file.s3_region,
                s3_allow_http: file.s3_allow_http,
            })
            .storage()?;
        let mut notify = file.notify;
        notify.token = self.notify_token.or(notify.token);
        let gcj02 = match self
            .map_tile_coordinates
            .or(file.map_tile_coordinates)
            .as_deref()
        {
            None | Some("wgs84") => false,
            Some("gcj02") => true,
            Some(other) => {
                return Err(format!(
                    "map_tile_coordinates is {other:?}: wgs84 (天地图 and other CGCS2000 maps) or gcj02 (AMap and other services' tiles)"
                ))
            }
        };
        let map_tile_url = self
            .map_tile_url
            .or(file.map_tile_url)
            .map(|u| u.parse::<gridsync_server::relay::TileUrl>())
            .transpose()?
            .map(|u| u.in_gcj02(gcj02));
        Ok(Settings {
            notify,
            map_tile_url,
            resident_channel: self
                .resident_channel
                .or(file.resident_channel)
                .unwrap_or(true),
            tls,
            storage,
            edge,
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            metrics_token,
            trusted_proxies: if self.trusted_proxies.is_empty() {
                file.trusted_proxies
            } else {
                self.trusted_proxies
            },
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address")),
            data: self
                .data
                .or(file.data)
                .unwrap_or_else(|| DEFAULT_DATA.into()),
            directory: self.directory.or(file.directory),
            token_days: self
                .token_days
                .or(file.token_days)
                .unwrap_or(gridsync_server::relay::DEFAULT_TOKEN_DAYS as u32),
            token_rotate_hours: self
                .token_rotate_hours
                .or(file.token_rotate_hours)
                .unwrap_or(24)
                .max(1),
            upstream_interval_secs: self
                .upstream_interval_secs
                .or(file.upstream_interval_secs)
                .unwrap_or(gridsync_server::relay::DEFAULT_INTERVAL_SECS)
                .max(1),
        })
    }
}
