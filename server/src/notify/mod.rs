//! Outbound notifications (`docs/notifications.md`): the messages a person must
//! hear about — a case dispatched to their department, their case returned, a
//! deadline about to pass, level-4 supervision (短信督办) — sent through a
//! pluggable [`Gateway`].
//!
//! Two background tasks, never on a sync request's path: `scan` notices events
//! in the change log and the case index and queues them in the relay's ledger
//! (once per case, rule, recipient and occurrence); `sender` sends what is due,
//! with retries, backoff and a per-recipient rate limit, and records each outcome
//! in the ledger, which the console shows on the case's timeline. `rules` says
//! which events go to whom; `gateway` is the webhook and the log-only gateway.

mod gateway;
mod rules;
mod scan;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use gateway::{Gateway, GatewayError, LogGateway, Outgoing, Recipient, WebhookGateway};
pub use rules::{Message, Rule};
use scan::Reach;
use sender::Policy;

use crate::relay::store::StoreError;
use crate::relay::{Relay, RelayError};

/// Why a round of the notifier failed (logged; the next round tries again).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The relay's store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The server's replica.
    #[error(transparent)]
    Core(#[from] gridsync_core::Error),
    /// A message could not be written as JSON.
    #[error("a message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Which gateway carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayKind {
    /// No notifications: nothing is noticed, queued or sent (the default).
    #[default]
    None,
    /// Noticed, queued and recorded, and logged instead of sent (development).
    Log,
    /// Posted as JSON to `url`.
    Webhook,
}

/// The `[notify]` table of the `serve` config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `none` (default), `log` or `webhook`.
    #[serde(default)]
    pub gateway: GatewayKind,
    /// The webhook's URL.
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …` to the webhook (also
    /// `GRIDSYNC_NOTIFY_TOKEN`).
    pub token: Option<String>,
    /// Allow a plain-http:// webhook that is not on this machine.
    #[serde(default)]
    pub allow_http: bool,
    /// PEM certificates to trust for the webhook's https:// instead of the public
    /// roots (the town's own CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// Seconds an attempt may take [default: 10].
    pub timeout_secs: Option<u64>,
    /// Seconds between rounds looking for events [default: 30].
    pub scan_interval_secs: Option<u64>,
    /// Minutes before a deadline that the department is reminded [default: 120].
    pub deadline_lead_minutes: Option<u64>,
    /// Announce only the cases of these region subtrees [default: every case this
    /// relay holds]. For tiers: a district leaves its towns' cases to them.
    #[serde(default)]
    pub regions: Vec<gridsync_core::RegionCode>,
    /// Messages per recipient per hour [default: 20].
    pub max_per_hour: Option<u32>,
    /// Attempts per message before it is recorded as failed [default: 8].
    pub max_attempts: Option<u32>,
    /// Seconds before the first retry, doubled after each failure [default: 30].
    pub retry_base_secs: Option<u64>,
}

impl std::fmt::Debug for Config {
    /// Without the token, and without the URL's path, which may carry a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("gateway", &self.gateway)
            .field("token", &self.token.is_some())
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("scan_interval_secs", &self.scan_interval_secs)
            .field("deadline_lead_minutes", &self.deadline_lead_minutes)
            .field("regions", &self.regions)
            .field("max_per_hour", &self.max_per_hour)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_secs", &self.retry_base_secs)
            .finish()
    }
}

/// The longest wait between two attempts.
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// How often the sender looks for due messages.
const SEND_POLL: Duration = Duration::from_secs(1);

/// A running configuration: the gateway and the pacing.
pub struct Notifier {
    gateway: Arc<dyn Gateway>,
    scan_every: Duration,
    reach: Reach,
    policy: Policy,
}

/// The most regions `notify.regions` may list.
const MAX_REGIONS: usize = 1000;
/// The largest `ca_file` read.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

fn read_pem(path: &std::path::Path) -> Result<String, String> {
    let cannot = |e: std::io::Error| format!("notify.ca_file {}: {e}", path.display());
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_PEM_BYTES {
        return Err(format!(
            "notify.ca_file {} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(cannot)
}

fn positive(name: &str, v: Option<u64>, default: u64, max: u64) -> Result<u64, String> {
    match v.unwrap_or(default) {
        0 => Err(format!("notify.{name} must be at least 1")),
        n if n > max => Err(format!("notify.{name} must be at most {max}")),
        n => Ok(n),
    }
}

impl Config {
    /// The notifier this configures, or `None` for `gateway = "none"`.
    pub fn notifier(&self) -> Result<Option<Notifier>, String> {
        let timeout = Duration::from_secs(positive("timeout_secs", self.timeout_secs, 10, 120)?);
        let gateway: Arc<dyn Gateway> = match self.gateway {
            GatewayKind::None => return Ok(None),
            GatewayKind::Log => Arc::new(LogGateway),
            GatewayKind::Webhook => {
                let url = self
                    .url
                    .as_deref()
                    .ok_or("notify.gateway = \"webhook\" needs notify.url")?;
                let ca = self.ca_file.as_deref().map(read_pem).transpose()?;
                Arc::new(
                    WebhookGateway::new(
                        url,
                        self.token.clone(),
                        timeout,
                        self.allow_http,
                        ca.as_deref(),
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
        };
        if self.regions.len() > MAX_REGIONS {
            return Err(format!(
                "notify.regions lists at most {MAX_REGIONS} regions"
            ));
        }
        let lead = positive(
            "deadline_lead_minutes",
            self.deadline_lead_minutes,
            120,
            7 * 24 * 60,
        )?;
        let per_hour = positive("max_per_hour", self.max_per_hour.map(u64::from), 20, 10_000)?;
        let attempts = positive("max_attempts", self.max_attempts.map(u64::from), 8, 100)?;
        Ok(Some(Notifier {
            gateway,
            scan_every: Duration::from_secs(positive(
                "scan_interval_secs",
                self.scan_interval_secs,
                30,
                3600,
            )?),
            reach: Reach {
                lead: chrono::Duration::minutes(i64::try_from(lead).unwrap_or(120)),
                regions: self.regions.clone(),
            },
            policy: Policy {
                max_attempts: u32::try_from(attempts).unwrap_or(8),
                retry_base: Duration::from_secs(positive(
                    "retry_base_secs",
                    self.retry_base_secs,
                    30,
                    3600,
                )?),
                retry_cap: RETRY_CAP,
                per_hour: u32::try_from(per_hour).unwrap_or(20),
                lease: timeout + Duration::from_secs(30),
            },
        }))
    }
}

impl Notifier {
    /// What the gateway is, for the start-up log.
    pub fn describe(&self) -> String {
        self.gateway.describe()
    }

    /// Before serving: fix where the change log's scan starts on a relay that
    /// never ran notifications (its end), so nothing logged from now on is missed.
    pub fn prepare(&self, relay: &Relay) -> Result<(), NotifyError> {
        scan::start_cursor(relay).map(drop)
    }

    /// Look for events and send messages for as long as the relay runs. Each round
    /// runs off the async runtime; a failed round is logged and tried again.
    pub async fn run(self, relay: Arc<Relay>) {
        let Notifier {
            gateway,
            scan_every,
            reach,
            policy,
        } = self;
        let scanning = every(scan_every, {
            let relay = relay.clone();
            move || {
                let n = scan::scan(&relay, &reach)?;
                if n > 0 {
                    tracing::info!(queued = n, "notifications queued");
                }
                Ok(())
            }
        });
        let sending = every(SEND_POLL, move || {
            sender::send_due(&relay, gateway.as_ref(), &policy).map(drop)
        });
        tokio::join!(scanning, sending);
    }
}

/// Run `round` on the blocking pool every `period`, for ever.
async fn every<F>(period: Duration, round: F)
where
    F: Fn() -> Result<(), NotifyError> + Send + Sync + 'static,
{
    let round = Arc::new(round);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let round = round.clone();
        match tokio::task::spawn_blocking(move || round()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "notifier round failed; trying again"),
            Err(e) => tracing::error!(error = %e, "notifier round panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Config {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn nothing_is_sent_unless_configured() {
        assert!(Config::default().notifier().unwrap().is_none());
        assert!(parse("gateway = \"none\"").notifier().unwrap().is_none());
        let log = parse("gateway = \"log\"").notifier().unwrap().unwrap();
        assert_eq!(log.describe(), "log");
        assert_eq!(log.scan_every, Duration::from_secs(30));
        assert_eq!(log.reach.lead, chrono::Duration::hours(2));
        assert!(log.reach.regions.is_empty(), "every case");
        assert_eq!(
            log.policy,
            Policy {
                max_attempts: 8,
                retry_base: Duration::from_secs(30),
                retry_cap: RETRY_CAP,
                per_hour: 20,
                lease: Duration::from_secs(40),
            }
        );
    }

    #[test]
    fn a_bad_notify_table_is_refused_with_the_reason() {
        let refused = |t: &str| parse(t).notifier().err().unwrap_or_default();
        assert!(refused("gateway = \"webhook\"").contains("notify.url"));
        assert!(
            refused("gateway = \"webhook\"\nurl = \"http://10.1.2.3/x\"").contains("allow_http")
        );
        assert!(refused("gateway = \"log\"\nmax_per_hour = 0").contains("max_per_hour"));
        assert!(refused("gateway = \"log\"\ntimeout_secs = 600").contains("at most 120"));
        assert!(toml::from_str::<Config>("gateway = \"sms\"").is_err());
        assert!(toml::from_str::<Config>("regions = [\"33990\"]").is_err());
        let towns = parse("gateway = \"log\"\nregions = [\"339901001\", \"339901002\"]");
        assert_eq!(towns.notifier().unwrap().unwrap().reach.regions.len(), 2);
        assert!(toml::from_str::<Config>("gateway = \"log\"\nurll = \"x\"").is_err());
        let debug = format!(
            "{:?}",
            parse("gateway = \"webhook\"\nurl = \"https://h/KEY\"\ntoken = \"SECRET\"")
        );
        assert!(
            !debug.contains("SECRET") && !debug.contains("KEY"),
            "{debug}"
        );
    }
}
