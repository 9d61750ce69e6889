//! Customer notifications: the Video KYC link and slot messages, sent by
//! e-mail (SMTP), SMS and WhatsApp (operator-configured HTTP providers).
//!
//! * [`render`] turns a [`Kind`] + [`Params`] into a channel-specific
//!   [`Message`]. Every customer-facing text lives in the [`EN`] / [`HI`]
//!   tables below, so translators have exactly one place to look.
//! * [`Notifier`] is built once from [`NotifySettings`] and shared; it owns one
//!   `reqwest::Client` and one SMTP transport. Sandbox deployments do not call
//!   [`Notifier::send`] at all (the caller records the rendered [`Message`]).
//!
//! `texts` holds the wording and the rendering; `send` the address checks and the
//! transports.
//!
//! Nothing in here panics on bad input: settings, addresses and provider
//! replies all come from outside, so every failure is a [`NotifyError`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

/// Used when `timeout_seconds` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Upper bound for `timeout_seconds`: a notification stuck for longer than
/// this is a misconfiguration, and it would hold a task for that long.
const MAX_TIMEOUT_SECS: u64 = 300;
/// How much of a failing provider's reply is kept in [`NotifyError::Provider`]
/// (enough to see the provider's error code, not enough to flood the logs).
const PROVIDER_BODY_LIMIT: usize = 256;
/// Names and merchant names are cut to this many characters so that a long
/// (or hostile) value cannot blow up an SMS into many billable segments.
const MAX_PARAM_CHARS: usize = 80;

mod send;
mod texts;

use send::redact_url;
pub use send::{validate_address, Notifier};
pub use texts::render;

// ---------------------------------------------------------------------------
// Public data types
// ---------------------------------------------------------------------------

/// A delivery channel, as named in a merchant's `notification_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }

    /// Case-insensitive; `None` for anything else, so API input can be
    /// rejected with a clear message instead of being silently dropped.
    pub fn parse(s: &str) -> Option<Channel> {
        let s = s.trim();
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Link,
    SlotBooked,
    SlotReminder,
    SlotCancelled,
    /// The mobile OTP: sent as it is made, never through the outbox (its code is not
    /// stored), by SMS or WhatsApp.
    Otp,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Link,
        Kind::SlotBooked,
        Kind::SlotReminder,
        Kind::SlotCancelled,
        Kind::Otp,
    ];

    /// Same spelling as the serde form; also what `{{kind}}` expands to.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Link => "link",
            Kind::SlotBooked => "slot_booked",
            Kind::SlotReminder => "slot_reminder",
            Kind::SlotCancelled => "slot_cancelled",
            Kind::Otp => "otp",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        let s = s.trim();
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// Language of the customer-facing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Hi,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Hi => "hi",
        }
    }

    /// Accepts `en`, `hi` and region-tagged forms such as `hi-IN` / `en_IN`.
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("hi") {
            Some(Lang::Hi)
        } else {
            None
        }
    }
}

/// Values substituted into the texts.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub name: String,
    pub link: String,
    /// Already formatted for the customer, e.g. "2 Dec 2026, 11:30 IST".
    pub slot_start: Option<String>,
    pub merchant: String,
    /// The one-time code, for [`Kind::Otp`].
    pub code: String,
}

/// A rendered message, ready to send (or to record, in sandbox mode).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub channel: Channel,
    pub kind: Kind,
    pub to: String,
    /// Empty for SMS and WhatsApp.
    pub subject: String,
    pub body: String,
}

/// Operator configuration for outgoing notifications.
#[derive(Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct NotifySettings {
    /// `smtp://user:pass@host:port?tls=none|starttls|required` or
    /// `smtps://user:pass@host:port` (implicit TLS). For `smtp://` the default
    /// is required STARTTLS, except on loopback hosts (127.0.0.1, ::1,
    /// localhost) where a local relay usually has no certificate, so the
    /// default there is plain text. `starttls` means opportunistic.
    pub smtp_url: Option<String>,
    /// `noreply@example.com` or `Example KYC <noreply@example.com>`.
    pub email_from: Option<String>,
    pub sms: Option<HttpTemplate>,
    pub whatsapp: Option<HttpTemplate>,
    /// Per-request timeout, default [`DEFAULT_TIMEOUT_SECS`].
    pub timeout_seconds: Option<u64>,
}

// Hand-written so that logging the settings never prints the SMTP password or
// provider API keys.
impl fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifySettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("email_from", &self.email_from)
            .field("sms", &self.sms)
            .field("whatsapp", &self.whatsapp)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// An HTTP call to an SMS / WhatsApp provider.
///
/// Placeholders `{{to}}`, `{{text}}` and `{{kind}}` are replaced in `body`
/// (JSON-string-escaped, without the surrounding quotes, so the template
/// provides the quotes), in header values (control characters replaced by
/// spaces) and in `url` (percent-encoded, for GET-style gateways). `{{to}}`
/// is the normalised E.164 number, e.g. `+919876543210`. Unknown `{{...}}`
/// are left as they are. When `headers` has no `Content-Type` and `body` is
/// not empty, `application/json` is sent.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
pub struct HttpTemplate {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// May be empty (e.g. for a GET gateway that takes everything in the URL).
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".to_string()
}

// Header values usually hold API keys; the URL query may too.
impl fmt::Debug for HttpTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTemplate")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body", &self.body)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification channel {0} is not configured")]
    NotConfigured(Channel),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    #[error("notification settings: {0}")]
    Config(String),
    #[error("smtp: {0}")]
    Smtp(String),
    #[error("provider answered HTTP {status}: {body}")]
    Provider { status: u16, body: String },
    #[error("transport: {0}")]
    Transport(String),
}
