//! Sending what is queued: one attempt per due message, retried with exponential
//! backoff up to a bounded number of attempts, at most so many messages per
//! recipient per hour (the excess waits for the next free slot; nothing is
//! dropped), each outcome written to the ledger.

use std::time::{Duration, Instant};

use chrono::Utc;
use gridsync_core::{Directory, DocContent, Status};

use super::gateway::{Gateway, GatewayError, Outgoing, Recipient, FORMAT, VERSION};
use super::rules::{Message, Rule};
use super::NotifyError;
use crate::relay::store::{NotificationRecord, Settle};
use crate::relay::Relay;

const HOUR_MS: i64 = 3_600_000;
/// Due messages read at once.
const BATCH: u32 = 50;
/// A round stops taking new messages after this long, so that a slow gateway
/// cannot hold a shutdown for more than about this plus one timeout.
const ROUND_BUDGET: Duration = Duration::from_secs(15);

/// How sends are retried and paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts per message before it is recorded as failed (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_cap: Duration,
    /// Messages per recipient in any hour (at least 1).
    pub per_hour: u32,
    /// How long an attempt may take before another node may try the message.
    pub lease: Duration,
}

/// The wait before the next attempt after `failures` failed ones (from 1):
/// base, 2×base, 4×base … up to the cap.
pub fn backoff(policy: &Policy, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    policy
        .retry_base
        .saturating_mul(1u32 << doublings)
        .min(policy.retry_cap)
}

/// When the recipient may next be sent to, if not now: `sent_ms` are the times
/// (oldest first) of the messages sent to them in the hour before `now_ms`.
pub fn next_slot(sent_ms: &[i64], per_hour: u32, now_ms: i64) -> Option<i64> {
    let recent: Vec<i64> = sent_ms
        .iter()
        .copied()
        .filter(|t| *t > now_ms - HOUR_MS)
        .collect();
    let per_hour = per_hour.max(1) as usize;
    (recent.len() >= per_hour).then(|| recent[recent.len() - per_hour] + HOUR_MS)
}

/// What an attempt's result makes of a message that had `attempts` before it.
pub fn settle(
    policy: &Policy,
    attempts: u32,
    result: &Result<(), GatewayError>,
    now_ms: i64,
) -> Settle {
    let attempts = attempts.saturating_add(1);
    match result {
        Ok(()) => Settle::Sent {
            attempts,
            at_ms: now_ms,
        },
        Err(e)
            if attempts >= policy.max_attempts.max(1)
                || matches!(e, GatewayError::UnknownRecipient | GatewayError::BadPayload) =>
        {
            Settle::Failed {
                attempts,
                at_ms: now_ms,
                detail: e.to_string(),
            }
        }
        Err(e) => Settle::Retry {
            attempts,
            next_ms: now_ms
                + i64::try_from(backoff(policy, attempts).as_millis()).unwrap_or(HOUR_MS),
            detail: e.to_string(),
        },
    }
}

/// Whether a message about an open dispatch still holds: the case is still
/// dispatched, with the deadline the message names (a case returned, handled or
/// dispatched anew since is not announced late). A return always holds, and so
/// does a message about a case the replica cannot read (it was read when the
/// message was queued; better sent than stuck at the head of the queue).
fn still_holds(relay: &Relay, r: &NotificationRecord, message: &Message) -> bool {
    if r.rule == Rule::Returned {
        return true;
    }
    match relay.engine().read_doc(&r.doc) {
        Ok(Some(DocContent::Case(doc))) => {
            // The deadline as the relay judges it, as the message was queued.
            let state = relay.judged_state(&doc);
            state.status == Status::Dispatched
                && state.deadline.map(|d| d.timestamp_millis()) == message.deadline
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(notification = r.id, case = %r.doc, error = %e, "case not readable; sending as queued");
            true
        }
    }
}

/// One attempt at one message.
fn attempt(
    dir: &Directory,
    gateway: &dyn Gateway,
    r: &NotificationRecord,
    message: &Message,
) -> Result<(), GatewayError> {
    let user = dir
        .user(&r.recipient)
        .ok_or(GatewayError::UnknownRecipient)?;
    gateway.send(&Outgoing {
        format: FORMAT,
        version: VERSION,
        id: r.id,
        attempt: r.attempts.saturating_add(1),
        queued: r.created_ms,
        recipient: Recipient {
            user: &user.id,
            contact: user.contact.as_deref(),
        },
        message,
    })
}

/// Send what is due now; how many messages were attempted.
pub fn send_due(
    relay: &Relay,
    gateway: &dyn Gateway,
    policy: &Policy,
) -> Result<usize, NotifyError> {
    let store = relay.store();
    let dir = relay.engine().directory()?;
    let started = Instant::now();
    let mut tried = 0;
    for r in store.due_notifications(Utc::now().timestamp_millis(), BATCH)? {
        if started.elapsed() > ROUND_BUDGET {
            break;
        }
        let now_ms = Utc::now().timestamp_millis();
        let Ok(message) = serde_json::from_str::<Message>(&r.payload) else {
            let outcome = settle(policy, r.attempts, &Err(GatewayError::BadPayload), now_ms);
            store.settle_notification(r.id, &outcome)?;
            continue;
        };
        if !still_holds(relay, &r, &message) {
            store.settle_notification(r.id, &Settle::Cancelled { at_ms: now_ms })?;
            tracing::info!(notification = r.id, event = r.rule.as_str(), case = %r.doc, "notification cancelled: the case moved on");
            continue;
        }
        let sent = store.notifications_sent_since(&r.recipient, now_ms - HOUR_MS)?;
        if let Some(slot) = next_slot(&sent, policy.per_hour, now_ms) {
            store.settle_notification(r.id, &Settle::Deferred { next_ms: slot })?;
            tracing::info!(notification = r.id, recipient = %r.recipient, "notification deferred by the rate limit");
            continue;
        }
        let lease_ms = now_ms + i64::try_from(policy.lease.as_millis()).unwrap_or(HOUR_MS);
        if !store.claim_notification(r.id, r.next_ms, lease_ms)? {
            continue; // another node took it
        }
        let result = attempt(&dir, gateway, &r, &message);
        let outcome = settle(policy, r.attempts, &result, Utc::now().timestamp_millis());
        match &outcome {
            Settle::Sent { attempts, .. } => tracing::info!(
                notification = r.id, event = r.rule.as_str(), case = %r.doc,
                recipient = %r.recipient, attempts, "notification sent"
            ),
            Settle::Retry {
                attempts, detail, ..
            }
            | Settle::Failed {
                attempts, detail, ..
            } => {
                tracing::warn!(
                    notification = r.id, event = r.rule.as_str(), case = %r.doc,
                    recipient = %r.recipient, attempts, error = %detail,
                    gave_up = matches!(outcome, Settle::Failed { .. }),
                    "notification not sent"
                )
            }
            Settle::Deferred { .. } | Settle::Cancelled { .. } => {}
        }
        store.settle_notification(r.id, &outcome)?;
        tried += 1;
    }
    Ok(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_attempts: 4,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(600),
            per_hour: 3,
            lease: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy();
        let waits: Vec<u64> = (1..=7).map(|n| backoff(&p, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(&p, u32::MAX).as_secs(), 600, "no overflow");
    }

    #[test]
    fn failures_retry_then_give_up() {
        let p = policy();
        let failed = Err(GatewayError::Status(500));
        assert_eq!(
            settle(&p, 0, &failed, 1000),
            Settle::Retry {
                attempts: 1,
                next_ms: 31_000,
                detail: "http_500".into()
            }
        );
        assert_eq!(
            settle(&p, 2, &Err(GatewayError::Timeout), 0),
            Settle::Retry {
                attempts: 3,
                next_ms: 120_000,
                detail: "timeout".into()
            }
        );
        assert_eq!(
            settle(&p, 3, &failed, 5),
            Settle::Failed {
                attempts: 4,
                at_ms: 5,
                detail: "http_500".into()
            }
        );
        assert_eq!(
            settle(&p, 0, &Err(GatewayError::UnknownRecipient), 5),
            Settle::Failed {
                attempts: 1,
                at_ms: 5,
                detail: "unknown_recipient".into()
            },
            "retrying cannot find a person who left"
        );
        assert_eq!(
            settle(&p, 1, &Ok(()), 9),
            Settle::Sent {
                attempts: 2,
                at_ms: 9
            }
        );
    }

    #[test]
    fn the_rate_limit_waits_for_the_oldest_send_to_leave_the_hour() {
        let now = 10 * HOUR_MS;
        assert_eq!(next_slot(&[], 3, now), None);
        assert_eq!(next_slot(&[now - 100, now - 50], 3, now), None);
        let three = [now - 1000, now - 500, now - 10];
        assert_eq!(next_slot(&three, 3, now), Some(now - 1000 + HOUR_MS));
        // Sends older than an hour do not count.
        assert_eq!(
            next_slot(&[now - HOUR_MS - 1, now - 500, now - 10], 3, now),
            None
        );
        // Five in the hour with a limit of three: free once the third-newest leaves.
        let five = [now - 3000, now - 2000, now - 1000, now - 500, now - 10];
        assert_eq!(next_slot(&five, 3, now), Some(now - 1000 + HOUR_MS));
        assert_eq!(
            next_slot(&[now - 1], 0, now),
            Some(now - 1 + HOUR_MS),
            "at least one"
        );
    }
}
