//! `/metrics` in the Prometheus text format: requests and their latency per route,
//! changes pushed by outcome and pulled, bytes in and out, the edge (open
//! connections, connections closed and requests refused by its limits, body bytes
//! held), case timeline entries whose device time was implausible, and at scrape
//! time the log size, how far devices are behind and the notifications by state.
//! Counts only: no user, device or case.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::relay::Relay;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

/// The relay's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Family<Route, Histogram>,
    pushed: Family<Outcome, Counter>,
    pulled: Counter,
    bytes: Family<Direction, Counter>,
    log_changes: Gauge,
    devices: Gauge,
    devices_behind: Gauge,
    changes_behind: Gauge,
    connections_open: Gauge,
    connections_closed: Family<Reason, Counter>,
    refused: Family<Reason, Counter>,
    accept_errors: Counter,
    body_bytes_held: Gauge,
    notifications: Family<State, Gauge>,
    implausible_times: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gridsync");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "http_requests",
            "Sync protocol requests by route and HTTP status",
            requests.clone(),
        );
        let latency = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.002, 2.0, 15))
        });
        registry.register(
            "sync_request_seconds",
            "Time to answer a sync protocol request, by route",
            latency.clone(),
        );
        let pushed = Family::<Outcome, Counter>::default();
        registry.register(
            "pushed_changes",
            "Changes pushed, by what the relay did with them (rejected: refused)",
            pushed.clone(),
        );
        let pulled = Counter::default();
        registry.register(
            "pulled_changes",
            "Changes sent to devices in pulls",
            pulled.clone(),
        );
        let bytes = Family::<Direction, Counter>::default();
        registry.register(
            "body_bytes",
            "Request (in) and answer (out) body bytes of the sync protocol, before gzip",
            bytes.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let log_changes = gauge(&mut registry, "log_changes", "Changes in the relay's log");
        let devices = gauge(&mut registry, "devices", "Enrolled devices not revoked");
        let devices_behind = gauge(
            &mut registry,
            "devices_behind",
            "Devices whose cursor is behind the end of the log",
        );
        let changes_behind = gauge(
            &mut registry,
            "changes_behind",
            "Sum over devices of log changes after their cursor (an upper bound of the pull backlog)",
        );
        let connections_open = gauge(
            &mut registry,
            "connections_open",
            "Open connections on the public address",
        );
        let connections_closed = Family::<Reason, Counter>::default();
        registry.register(
            "connections_closed",
            "Connections the edge closed: evicted (idle, to make room at the cap), refused (at the cap, all busy), header_timeout, handshake_timeout, stalled (answer not read)",
            connections_closed.clone(),
        );
        let refused = Family::<Reason, Counter>::default();
        registry.register(
            "edge_refusals",
            "Requests refused by the edge's limits: too_large, busy, body_idle, unsupported_encoding",
            refused.clone(),
        );
        let accept_errors = Counter::default();
        registry.register(
            "accept_errors",
            "Failed accepts other than a client hanging up (e.g. out of file descriptors)",
            accept_errors.clone(),
        );
        let body_bytes_held = gauge(
            &mut registry,
            "body_bytes_held",
            "Bytes of request bodies held now, against the body budget",
        );
        let notifications = Family::<State, Gauge>::default();
        registry.register(
            "notifications",
            "Outbound notifications in the ledger by state: queued, sent, failed, cancelled",
            notifications.clone(),
        );
        let implausible_times = Counter::default();
        registry.register(
            "implausible_entry_times",
            "Case timeline entries received with an implausible device time (later than the relay received them, or earlier than the step they follow), judged at the relay's time instead",
            implausible_times.clone(),
        );
        Metrics {
            implausible_times,
            notifications,
            connections_open,
            connections_closed,
            refused,
            accept_errors,
            body_bytes_held,
            registry,
            requests,
            latency,
            pushed,
            pulled,
            bytes,
            log_changes,
            devices,
            devices_behind,
            changes_behind,
        }
    }
}

impl Metrics {
    /// One answered request.
    pub fn request(
        &self,
        route: &'static str,
        status: u16,
        took: Duration,
        bytes_in: usize,
        bytes_out: usize,
    ) {
        self.requests
            .get_or_create(&Request {
                route,
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&Route { route })
            .observe(took.as_secs_f64());
        self.bytes
            .get_or_create(&Direction { direction: "in" })
            .inc_by(bytes_in as u64);
        self.bytes
            .get_or_create(&Direction { direction: "out" })
            .inc_by(bytes_out as u64);
    }

    /// Changes of a push with their outcome (`accepted`, `duplicate`, `deferred`,
    /// `rejected`).
    pub fn pushed(&self, outcome: &'static str, n: u64) {
        self.pushed.get_or_create(&Outcome { outcome }).inc_by(n);
    }

    /// Changes sent in a pull.
    pub fn pulled(&self, n: u64) {
        self.pulled.inc_by(n);
    }

    /// A connection opened (+1) or closed (-1) on the public address.
    pub fn connection_open(&self, delta: i64) {
        self.connections_open.inc_by(delta);
    }

    /// A connection the edge closed, and why.
    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// A request refused by the edge's limits, and which.
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&Reason { reason }).inc();
    }

    /// A failed accept.
    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    /// Request body bytes taken (+) from or given back (-) to the budget.
    pub fn body_bytes_held(&self, delta: i64) {
        self.body_bytes_held.inc_by(delta);
    }

    /// The text exposition, with the gauges read from `relay` now.
    pub fn render(&self, relay: &Arc<Relay>) -> Result<String, String> {
        let store = relay.store();
        let log = store.log_len().map_err(|e| e.to_string())?;
        let (devices, behind, changes) = store.cursor_lag().map_err(|e| e.to_string())?;
        self.log_changes.set(clamp(log));
        self.devices.set(clamp(devices));
        self.devices_behind.set(clamp(behind));
        self.changes_behind.set(clamp(changes));
        // The relay counts them as it receives them; the counter catches up.
        let flagged = relay.implausible_times();
        self.implausible_times
            .inc_by(flagged.saturating_sub(self.implausible_times.get()));
        let counts = store.notification_counts().map_err(|e| e.to_string())?;
        for state in crate::relay::store::NotificationState::ALL {
            let n = counts.iter().find(|(s, _)| *s == state).map_or(0, |c| c.1);
            self.notifications
                .get_or_create(&State {
                    state: state.as_str(),
                })
                .set(clamp(n));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
