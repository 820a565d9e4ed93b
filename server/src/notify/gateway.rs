//! Where messages leave the relay: a [`Gateway`]. [`WebhookGateway`] posts each
//! message as JSON to the town's SMS platform or messaging service (the shape in
//! `docs/notifications.md`); [`LogGateway`] only logs that a message would go, for
//! development.

use std::time::Duration;

use gridsync_core::sync::client::{plain_http_off_machine, root_certs};
use gridsync_core::UserId;
use serde::Serialize;

use super::rules::Message;

/// The `format` field of every message.
pub const FORMAT: &str = "gridsync-notification";
/// The `version` of the message shape.
pub const VERSION: u32 = 1;

/// One message as the gateway receives it.
#[derive(Debug, Serialize)]
pub struct Outgoing<'a> {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// Always [`VERSION`].
    pub version: u32,
    /// The message's number, the same on every attempt: the receiver's
    /// deduplication key.
    pub id: i64,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// When the event was noticed, ms since the epoch.
    pub queued: i64,
    /// To whom.
    pub recipient: Recipient<'a>,
    /// What.
    #[serde(flatten)]
    pub message: &'a Message,
}

/// Whom a message is for.
#[derive(Debug, Serialize)]
pub struct Recipient<'a> {
    /// The user's id in the directory.
    pub user: &'a UserId,
    /// Their `contact` from the directory, if any (a phone number or messaging id).
    pub contact: Option<&'a str>,
}

/// Why a message did not go. Short and free of the far end's answer, which is
/// never read into a log or the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No answer within the timeout.
    #[error("timeout")]
    Timeout,
    /// The gateway answered with a status other than 2xx.
    #[error("http_{0}")]
    Status(u16),
    /// It could not be reached (name, connection, TLS).
    #[error("unreachable")]
    Unreachable,
    /// The recipient is no longer in the directory.
    #[error("unknown_recipient")]
    UnknownRecipient,
    /// The stored message could not be read or written as JSON.
    #[error("bad_payload")]
    BadPayload,
}

/// An outbound message gateway. Called off the async runtime (it may block for
/// up to its timeout), never on a sync request's path.
pub trait Gateway: Send + Sync {
    /// Deliver one message: `Ok` once the far end has accepted it.
    fn send(&self, message: &Outgoing<'_>) -> Result<(), GatewayError>;
    /// What it is, for the start-up log (no secrets).
    fn describe(&self) -> String;
}

/// Logs each message's event, case and recipient id; sends nothing.
pub struct LogGateway;

impl Gateway for LogGateway {
    fn send(&self, m: &Outgoing<'_>) -> Result<(), GatewayError> {
        tracing::info!(
            notification = m.id,
            event = m.message.event.as_str(),
            case = %m.message.case,
            recipient = %m.recipient.user,
            "notification (log gateway: not sent)"
        );
        Ok(())
    }

    fn describe(&self) -> String {
        "log".into()
    }
}

/// Posts each message as JSON to a URL.
pub struct WebhookGateway {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

/// Why a webhook could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("notify webhook: {0}")]
pub struct WebhookConfigError(String);

impl WebhookGateway {
    /// A webhook posting to `url` with an optional bearer `token`, giving up on an
    /// attempt after `timeout`. Plain `http://` only to this machine, unless
    /// `allow_http` (a messaging service on the same private network). With
    /// `ca_pem`, only its certificates are trusted (the town's own CA); otherwise
    /// the public roots.
    pub fn new(
        url: &str,
        token: Option<String>,
        timeout: Duration,
        allow_http: bool,
        ca_pem: Option<&str>,
    ) -> Result<Self, WebhookConfigError> {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(WebhookConfigError(
                "the URL must be http:// or https://".into(),
            ));
        }
        if !allow_http && plain_http_off_machine(url) {
            return Err(WebhookConfigError(
                "plain http:// only to this machine unless notify.allow_http is set".into(),
            ));
        }
        if url.len() > 2048 {
            return Err(WebhookConfigError(
                "the URL is longer than 2048 bytes".into(),
            ));
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = ca_pem {
            tls = tls.root_certs(root_certs(pem).map_err(WebhookConfigError)?);
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls.build())
            .build()
            .into();
        Ok(WebhookGateway {
            agent,
            url: url.to_owned(),
            token,
        })
    }
}

impl Gateway for WebhookGateway {
    fn send(&self, m: &Outgoing<'_>) -> Result<(), GatewayError> {
        let body = serde_json::to_vec(m).map_err(|_| GatewayError::BadPayload)?;
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Idempotency-Key", format!("gridsync-{}", m.id));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        match request.send(&body[..]) {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(GatewayError::Status(answer.status().as_u16())),
            Err(ureq::Error::Timeout(_)) => Err(GatewayError::Timeout),
            Err(_) => Err(GatewayError::Unreachable),
        }
    }

    fn describe(&self) -> String {
        // The path may carry a key; the scheme and host say enough.
        let host = self
            .url
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', '?']).next())
            .map(|h| h.rsplit_once('@').map_or(h, |(_, h)| h))
            .unwrap_or_default();
        format!(
            "webhook {}://{host}",
            self.url.split("://").next().unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        let t = Duration::from_secs(1);
        for ok in [
            "https://sms.example.cn/hook",
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://[::1]:80/x",
        ] {
            assert!(
                WebhookGateway::new(ok, None, t, false, None).is_ok(),
                "{ok}"
            );
        }
        assert!(WebhookGateway::new("http://10.0.0.5/hook", None, t, false, None).is_err());
        assert!(WebhookGateway::new("http://10.0.0.5/hook", None, t, true, None).is_ok());
        assert!(WebhookGateway::new("ftp://x/y", None, t, true, None).is_err());
        let no_cert = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(WebhookGateway::new("https://h/x", None, t, false, Some(no_cert)).is_err());
        let secret = "https://user:pw@sms.example.cn/k/SECRET";
        let g = WebhookGateway::new(secret, None, t, false, None).unwrap();
        assert_eq!(g.describe(), "webhook https://sms.example.cn");
    }
}
