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
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Link,
        Kind::SlotBooked,
        Kind::SlotReminder,
        Kind::SlotCancelled,
    ];

    /// Same spelling as the serde form; also what `{{kind}}` expands to.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Link => "link",
            Kind::SlotBooked => "slot_booked",
            Kind::SlotReminder => "slot_reminder",
            Kind::SlotCancelled => "slot_cancelled",
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

// ---------------------------------------------------------------------------
// Texts: the one place with customer-facing wording
// ---------------------------------------------------------------------------
//
// Placeholders: {name} {merchant} {link} {slot} {slot_note}.
// `{slot}` is the formatted slot time, or `slot_fallback` when the caller has
// none. `{slot_note}` (used by the link texts only) is `slot_note` filled in
// when a slot is known and empty otherwise, so a link sent for an already
// booked slot still tells the customer when. `short` is the SMS / WhatsApp
// text: one paragraph, no line breaks. Hindi fallbacks are in the oblique
// case because they are always followed by a postposition (के लिए / पर / का /
// के साथ / ने).

struct KindTexts {
    subject: &'static str,
    email: &'static str,
    short: &'static str,
}

struct LangTexts {
    link: KindTexts,
    slot_booked: KindTexts,
    slot_reminder: KindTexts,
    slot_cancelled: KindTexts,
    slot_note: &'static str,
    slot_fallback: &'static str,
    name_fallback: &'static str,
    merchant_fallback: &'static str,
}

static EN: LangTexts = LangTexts {
    link: KindTexts {
        subject: "Complete your Video KYC for {merchant}",
        email: "Hello {name},\n\n\
                {merchant} has requested a Video KYC to verify your identity. {slot_note}\
                Please join using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready and join from a quiet, well-lit place \
                with a stable internet connection. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, please complete your Video KYC for {merchant} at {link} {slot_note}\
                Do not share this link.",
    },
    slot_booked: KindTexts {
        subject: "Your Video KYC with {merchant} is scheduled",
        email: "Hello {name},\n\n\
                Your Video KYC with {merchant} is booked for {slot}. \
                Please join on time using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, your Video KYC with {merchant} is booked for {slot}. Join at {link}",
    },
    slot_reminder: KindTexts {
        subject: "Reminder: your Video KYC with {merchant}",
        email: "Hello {name},\n\n\
                This is a reminder that your Video KYC with {merchant} is at {slot}. \
                Please join on time using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Reminder: Dear {name}, your Video KYC with {merchant} is at {slot}. Join at {link}",
    },
    slot_cancelled: KindTexts {
        subject: "Your Video KYC slot with {merchant} was cancelled",
        email: "Hello {name},\n\n\
                Your Video KYC slot with {merchant} for {slot} has been cancelled. \
                You can book a new slot or join now using this link:\n\n\
                {link}\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, your Video KYC slot with {merchant} for {slot} was cancelled. \
                Book a new slot at {link}",
    },
    slot_note: "Your slot: {slot}. ",
    slot_fallback: "your selected time",
    name_fallback: "Customer",
    merchant_fallback: "your service provider",
};

static HI: LangTexts = LangTexts {
    link: KindTexts {
        subject: "{merchant} के लिए अपना वीडियो KYC पूरा करें",
        email: "नमस्ते {name},\n\n\
                {merchant} ने आपकी पहचान सत्यापित करने के लिए वीडियो KYC का अनुरोध किया है। {slot_note}\
                कृपया इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें और स्थिर इंटरनेट के साथ किसी शांत, अच्छी रोशनी वाली \
                जगह से जुड़ें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के लिए अपना वीडियो KYC {link} पर पूरा करें। {slot_note}\
                यह लिंक किसी से साझा न करें।",
    },
    slot_booked: KindTexts {
        subject: "{merchant} के साथ आपका वीडियो KYC निर्धारित हो गया है",
        email: "नमस्ते {name},\n\n\
                {merchant} के साथ आपका वीडियो KYC {slot} के लिए बुक हो गया है। \
                कृपया समय पर इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के साथ आपका वीडियो KYC {slot} के लिए बुक है। जुड़ें: {link}",
    },
    slot_reminder: KindTexts {
        subject: "रिमाइंडर: {merchant} के साथ आपका वीडियो KYC",
        email: "नमस्ते {name},\n\n\
                याद दिला दें कि {merchant} के साथ आपका वीडियो KYC {slot} पर है। \
                कृपया समय पर इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "रिमाइंडर: प्रिय {name}, {merchant} के साथ आपका वीडियो KYC {slot} पर है। जुड़ें: {link}",
    },
    slot_cancelled: KindTexts {
        subject: "{merchant} के साथ आपका वीडियो KYC स्लॉट रद्द हो गया है",
        email: "नमस्ते {name},\n\n\
                {merchant} के साथ {slot} का आपका वीडियो KYC स्लॉट रद्द कर दिया गया है। \
                आप इस लिंक से नया स्लॉट बुक कर सकते हैं या अभी जुड़ सकते हैं:\n\n\
                {link}\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के साथ {slot} का आपका वीडियो KYC स्लॉट रद्द हो गया है। \
                नया स्लॉट बुक करें: {link}",
    },
    slot_note: "आपका स्लॉट: {slot}। ",
    slot_fallback: "आपके चुने हुए समय",
    name_fallback: "ग्राहक",
    merchant_fallback: "आपके सेवा प्रदाता",
};

fn texts(lang: Lang) -> &'static LangTexts {
    match lang {
        Lang::En => &EN,
        Lang::Hi => &HI,
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Renders the text for one channel. `to` is copied as given; it is
/// validated and normalised by [`Notifier::send`] (or [`validate_address`]).
pub fn render(channel: Channel, kind: Kind, lang: Lang, to: &str, p: &Params) -> Message {
    let t = texts(lang);
    let kt = match kind {
        Kind::Link => &t.link,
        Kind::SlotBooked => &t.slot_booked,
        Kind::SlotReminder => &t.slot_reminder,
        Kind::SlotCancelled => &t.slot_cancelled,
    };

    // Customer and merchant names come from merchant API input: a line break
    // in them would split an SMS into paragraphs or fold a mail header, so
    // every value is flattened to one line first.
    let name = or_fallback(clean_inline(&p.name, MAX_PARAM_CHARS), t.name_fallback);
    let merchant = or_fallback(
        clean_inline(&p.merchant, MAX_PARAM_CHARS),
        t.merchant_fallback,
    );
    let link = clean_inline(&p.link, usize::MAX);
    let slot_given = p
        .slot_start
        .as_deref()
        .map(|s| clean_inline(s, MAX_PARAM_CHARS))
        .filter(|s| !s.is_empty());
    let slot = slot_given
        .clone()
        .unwrap_or_else(|| t.slot_fallback.to_string());
    let slot_note = match &slot_given {
        Some(s) => expand(t.slot_note, "{", "}", |k| (k == "slot").then(|| s.clone())),
        None => String::new(),
    };

    // Single pass: a customer name that happens to contain "{link}" stays
    // literal text instead of being expanded again.
    let vars = |key: &str| -> Option<String> {
        match key {
            "name" => Some(name.clone()),
            "merchant" => Some(merchant.clone()),
            "link" => Some(link.clone()),
            "slot" => Some(slot.clone()),
            "slot_note" => Some(slot_note.clone()),
            _ => None,
        }
    };

    let (subject, body) = match channel {
        Channel::Email => (
            expand(kt.subject, "{", "}", vars),
            expand(kt.email, "{", "}", vars),
        ),
        Channel::Sms | Channel::Whatsapp => (
            String::new(),
            expand(kt.short, "{", "}", vars).trim_end().to_string(),
        ),
    };

    Message {
        channel,
        kind,
        to: to.trim().to_string(),
        subject,
        body,
    }
}

fn or_fallback(s: String, fallback: &str) -> String {
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

/// Replaces control characters (line breaks, tabs, ...) with spaces, collapses
/// runs of whitespace, trims, and cuts to `max_chars` characters.
fn clean_inline(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut count = 0usize;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if count >= max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
            if count >= max_chars {
                break;
            }
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// Substitutes `open key close` placeholders in one pass; values are never
/// re-scanned. Unknown keys are left untouched.
fn expand(tpl: &str, open: &str, close: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(tpl.len() + 64);
    let mut rest = tpl;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else {
            out.push_str(&rest[start..]);
            return out;
        };
        match lookup(after[..end].trim()) {
            Some(v) => {
                out.push_str(&v);
                rest = &after[end + close.len()..];
            }
            None => {
                // Emit the opener literally and keep scanning right after it,
                // so "{{{to}}}" still finds the inner placeholder.
                out.push_str(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Address validation
// ---------------------------------------------------------------------------

/// Validates and normalises a recipient for `channel`: an e-mail address as
/// given (trimmed), or a phone number in E.164 form (`+<8..15 digits>`).
pub fn validate_address(channel: Channel, to: &str) -> Result<String, NotifyError> {
    match channel {
        Channel::Email => parse_email(to).map(|a| a.to_string()),
        Channel::Sms | Channel::Whatsapp => normalize_phone(to),
    }
}

fn parse_email(to: &str) -> Result<lettre::Address, NotifyError> {
    let t = to.trim();
    let bad = || NotifyError::InvalidAddress(format!("not an e-mail address: {}", preview(t)));
    // RFC 5321 path limit; lettre would accept longer ones that servers reject.
    if t.is_empty() || t.len() > 254 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let addr = lettre::Address::from_str(t).map_err(|_| bad())?;
    // A customer address on a dot-less domain ("a@gmail") is a typo in
    // practice; catching it here beats a bounce nobody reads.
    if !addr.domain().contains('.') || addr.domain().ends_with('.') {
        return Err(bad());
    }
    Ok(addr)
}

/// Accepts `+` followed by 8–15 digits (E.164, first digit not 0), `00` as an
/// international prefix, and Indian mobile numbers written nationally:
/// 10 digits starting 6–9, optionally preceded by `0` or `91`. Spaces,
/// dashes, dots and parentheses are ignored.
fn normalize_phone(to: &str) -> Result<String, NotifyError> {
    let t = to.trim();
    let bad = || NotifyError::InvalidAddress(format!("not a phone number: {}", preview(t)));
    let mut plus = false;
    let mut digits = String::with_capacity(16);
    for (i, c) in t.char_indices() {
        match c {
            '+' if i == 0 => plus = true,
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(bad()),
        }
        if digits.len() > 20 {
            return Err(bad());
        }
    }
    if !plus && digits.len() > 2 && digits.starts_with("00") {
        digits.drain(..2);
        plus = true;
    }
    let indian_mobile = |d: &str| d.len() == 10 && matches!(d.as_bytes()[0], b'6'..=b'9');
    if plus {
        let ok = (8..=15).contains(&digits.len())
            && !digits.starts_with('0')
            // +91 numbers have exactly 10 national digits; anything else is a typo.
            && (!digits.starts_with("91") || digits.len() == 12);
        return if ok {
            Ok(format!("+{digits}"))
        } else {
            Err(bad())
        };
    }
    let national = if digits.len() == 11 && digits.starts_with('0') {
        &digits[1..]
    } else if digits.len() == 12 && digits.starts_with("91") {
        &digits[2..]
    } else {
        &digits[..]
    };
    if indian_mobile(national) {
        Ok(format!("+91{national}"))
    } else {
        Err(bad())
    }
}

/// Bounded, single-line echo of user input for error messages.
fn preview(s: &str) -> String {
    let mut p = clean_inline(s, 64);
    if s.chars().count() > 64 {
        p.push('…');
    }
    format!("{p:?}")
}

// ---------------------------------------------------------------------------
// Notifier
// ---------------------------------------------------------------------------

/// Sends messages. Build once at startup and share (it is cheap to clone).
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    smtp: Option<SmtpSender>,
    sms: Option<PreparedTemplate>,
    whatsapp: Option<PreparedTemplate>,
    timeout: Duration,
}

#[derive(Clone)]
struct SmtpSender {
    // No connection pool: notifications are a handful per KYC session, and
    // lettre's pool spawns a background task at build time, which would tie
    // `Notifier::new` to a running tokio runtime and keep idle connections
    // that servers drop anyway. One connection per message is simpler.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Clone)]
struct PreparedTemplate {
    url: String,
    method: reqwest::Method,
    headers: Vec<(HeaderName, String)>,
    body: String,
    has_content_type: bool,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("email", &self.smtp.is_some())
            .field("sms", &self.sms.is_some())
            .field("whatsapp", &self.whatsapp.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Notifier {
    /// Validates the settings up front, so a typo in the operator's config
    /// fails at startup rather than at the first customer message. Does not
    /// connect anywhere and does not need a tokio runtime.
    pub fn new(settings: &NotifySettings) -> Result<Notifier, NotifyError> {
        let secs = settings.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if secs == 0 || secs > MAX_TIMEOUT_SECS {
            return Err(NotifyError::Config(format!(
                "timeout_seconds must be 1..={MAX_TIMEOUT_SECS}, got {secs}"
            )));
        }
        let timeout = Duration::from_secs(secs);

        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Provider templates carry API keys in custom headers, which
            // reqwest does not strip on cross-host redirects; a provider that
            // redirects is misconfigured anyway, so 3xx surfaces as an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vkyc-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Config(format!("http client: {}", error_chain(&e))))?;

        let smtp = match settings
            .smtp_url
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(url) => Some(build_smtp(url, settings.email_from.as_deref(), timeout)?),
        };
        let sms = settings
            .sms
            .as_ref()
            .map(|t| prepare_template("sms", t))
            .transpose()?;
        let whatsapp = settings
            .whatsapp
            .as_ref()
            .map(|t| prepare_template("whatsapp", t))
            .transpose()?;

        Ok(Notifier {
            http,
            smtp,
            sms,
            whatsapp,
            timeout,
        })
    }

    pub fn supports(&self, c: Channel) -> bool {
        match c {
            Channel::Email => self.smtp.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::Whatsapp => self.whatsapp.is_some(),
        }
    }

    /// Delivers one message. The recipient is validated first, so a bad
    /// address never reaches the network.
    pub async fn send(&self, m: &Message) -> Result<(), NotifyError> {
        match m.channel {
            Channel::Email => {
                let smtp = self
                    .smtp
                    .as_ref()
                    .ok_or(NotifyError::NotConfigured(Channel::Email))?;
                let to = parse_email(&m.to)?;
                self.send_email(smtp, to, m).await
            }
            Channel::Sms | Channel::Whatsapp => {
                let tpl = match m.channel {
                    Channel::Sms => self.sms.as_ref(),
                    _ => self.whatsapp.as_ref(),
                }
                .ok_or(NotifyError::NotConfigured(m.channel))?;
                let to = normalize_phone(&m.to)?;
                self.send_http(tpl, &to, m).await
            }
        }
    }

    async fn send_email(
        &self,
        smtp: &SmtpSender,
        to: lettre::Address,
        m: &Message,
    ) -> Result<(), NotifyError> {
        // A hand-built Message could carry a line break in the subject; keep
        // it a single header line.
        let subject = clean_inline(&m.subject, 500);
        let email = lettre::Message::builder()
            .message_id(Some(message_id(smtp.from.email.domain())))
            .from(smtp.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| NotifyError::Config(format!("building e-mail: {e}")))?;

        // lettre's timeout applies to each network operation; the outer
        // deadline bounds the whole dialogue (connect, TLS, EHLO, AUTH, DATA)
        // against a server that answers just slowly enough never to trip it.
        let deadline = self.timeout.saturating_mul(3);
        match tokio::time::timeout(deadline, smtp.transport.send(email)).await {
            Err(_) => Err(NotifyError::Transport(format!(
                "smtp: no answer within {}s",
                deadline.as_secs()
            ))),
            Ok(Err(e)) if e.is_timeout() => {
                Err(NotifyError::Transport(format!("smtp: {}", error_chain(&e))))
            }
            Ok(Err(e)) => Err(NotifyError::Smtp(error_chain(&e))),
            Ok(Ok(_)) => Ok(()),
        }
    }

    async fn send_http(
        &self,
        tpl: &PreparedTemplate,
        to: &str,
        m: &Message,
    ) -> Result<(), NotifyError> {
        let value = |key: &str| -> Option<&str> {
            match key {
                "to" => Some(to),
                "text" => Some(&m.body),
                "kind" => Some(m.kind.as_str()),
                _ => None,
            }
        };

        let url = expand(&tpl.url, "{{", "}}", |k| value(k).map(percent_encode));
        let url = reqwest::Url::parse(&url)
            .map_err(|e| NotifyError::Config(format!("{} url: {e}", m.channel)))?;

        let mut headers = HeaderMap::new();
        for (name, raw) in &tpl.headers {
            let v = expand(raw, "{{", "}}", |k| value(k).map(header_safe));
            // from_bytes (unlike from_str) lets UTF-8 through; control
            // characters were replaced above, so this only fails on odd input.
            let v = HeaderValue::from_bytes(v.as_bytes()).map_err(|_| {
                NotifyError::Config(format!("{} header {name}: invalid value", m.channel))
            })?;
            headers.append(name.clone(), v);
        }

        let mut req = self.http.request(tpl.method.clone(), url);
        if !tpl.body.is_empty() {
            if !tpl.has_content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            req = req.body(expand(&tpl.body, "{{", "}}", |k| value(k).map(json_escape)));
        }
        let resp = req.headers(headers).send().await.map_err(transport_error)?;

        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(NotifyError::Provider {
            status: status.as_u16(),
            body: read_prefix(resp, PROVIDER_BODY_LIMIT).await,
        })
    }
}

fn build_smtp(url: &str, from: Option<&str>, timeout: Duration) -> Result<SmtpSender, NotifyError> {
    let cfg = |msg: String| NotifyError::Config(format!("smtp_url: {msg}"));
    let parsed = url::Url::parse(url).map_err(|e| cfg(format!("{e} ({})", redact_url(url))))?;

    let (server, loopback) = match parsed.host() {
        // smtp:// is not a "special" scheme for the URL parser, so an IPv4
        // literal arrives as a domain string and has to be parsed here.
        Some(url::Host::Domain(d)) => {
            let loopback = d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            (d.to_string(), loopback)
        }
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), ip.is_loopback()),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), ip.is_loopback()),
        None => return Err(cfg("missing host".into())),
    };

    let mut tls_flag: Option<String> = None;
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "tls" => tls_flag = Some(v.to_ascii_lowercase()),
            // Unknown keys are rejected so that a typo (e.g. "?tsl=none")
            // does not silently fall back to a different TLS mode.
            other => return Err(cfg(format!("unknown query parameter {other:?}"))),
        }
    }

    #[derive(PartialEq)]
    enum Mode {
        Plain,
        Opportunistic,
        Required,
        Wrapper,
    }
    let mode = match (parsed.scheme(), tls_flag.as_deref()) {
        ("smtps", None | Some("required")) => Mode::Wrapper,
        ("smtps", Some(other)) => {
            return Err(cfg(format!("tls={other} makes no sense with smtps://")))
        }
        ("smtp", None) if loopback => Mode::Plain,
        ("smtp", None | Some("required")) => Mode::Required,
        ("smtp", Some("starttls")) => Mode::Opportunistic,
        ("smtp", Some("none")) => Mode::Plain,
        ("smtp", Some(other)) => {
            return Err(cfg(format!(
                "tls must be none, starttls or required, got {other:?}"
            )))
        }
        (scheme, _) => return Err(cfg(format!("scheme must be smtp or smtps, got {scheme:?}"))),
    };
    let port = parsed.port().unwrap_or(match mode {
        Mode::Wrapper => 465,
        Mode::Plain => 25,
        Mode::Opportunistic | Mode::Required => 587,
    });

    let user = percent_decode(parsed.username())
        .ok_or_else(|| cfg("user name is not valid UTF-8".into()))?;
    let pass = percent_decode(parsed.password().unwrap_or(""))
        .ok_or_else(|| cfg("password is not valid UTF-8".into()))?;
    let has_credentials = !user.is_empty();
    // Plain text is fine for a relay on this machine or an unauthenticated
    // dev catcher (e.g. a mailpit container), but never with a password on
    // the wire. Opportunistic STARTTLS can be stripped by an attacker, so it
    // counts as plain text here too.
    if has_credentials && !loopback && matches!(mode, Mode::Plain | Mode::Opportunistic) {
        return Err(cfg("refusing to send credentials to a non-local server without required TLS; use tls=required or smtps://".into()));
    }

    let from_raw = from
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NotifyError::Config("email_from is required when smtp_url is set".into()))?;
    let from = Mailbox::from_str(from_raw)
        .map_err(|e| NotifyError::Config(format!("email_from {from_raw:?}: {e}")))?;

    let tls_params =
        || TlsParameters::new(server.clone()).map_err(|e| cfg(format!("tls: {}", error_chain(&e))));
    let tls = match mode {
        Mode::Plain => Tls::None,
        Mode::Opportunistic => Tls::Opportunistic(tls_params()?),
        Mode::Required => Tls::Required(tls_params()?),
        Mode::Wrapper => Tls::Wrapper(tls_params()?),
    };

    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(timeout));
    if has_credentials {
        builder = builder.credentials(Credentials::new(user, pass));
    }
    Ok(SmtpSender {
        transport: builder.build(),
        from,
    })
}

fn prepare_template(which: &str, t: &HttpTemplate) -> Result<PreparedTemplate, NotifyError> {
    let cfg = |msg: String| NotifyError::Config(format!("{which}: {msg}"));
    // Check the URL as it will look after substitution (placeholders may sit
    // in the query), using harmless sample values.
    let sample = expand(&t.url, "{{", "}}", |k| {
        matches!(k, "to" | "text" | "kind").then(|| "x".to_string())
    });
    let parsed = reqwest::Url::parse(&sample).map_err(|e| cfg(format!("url: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(cfg("url must be http(s)://host/...".into()));
    }
    let method = reqwest::Method::from_bytes(t.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| cfg(format!("invalid method {:?}", t.method)))?;
    let mut headers = Vec::with_capacity(t.headers.len());
    let mut has_content_type = false;
    for (k, v) in &t.headers {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| cfg(format!("invalid header name {k:?}")))?;
        if v.chars().any(|c| c.is_control() && c != '\t') {
            return Err(cfg(format!("header {k} contains a control character")));
        }
        has_content_type |= name == CONTENT_TYPE;
        headers.push((name, v.clone()));
    }
    Ok(PreparedTemplate {
        url: t.url.trim().to_string(),
        method,
        headers,
        body: t.body.clone(),
        has_content_type,
    })
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// A unique `Message-ID` on the sender's domain. lettre adds none by
/// default, and large mailbox providers (Gmail among them) reject or junk
/// mail without one. Uniqueness comes from time, a process-wide counter and
/// std's randomly keyed hasher, so no extra RNG dependency is needed.
fn message_id(domain: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u64(n);
    format!("<{nanos:x}.{n:x}.{:016x}@{domain}>", h.finish())
}

/// JSON string escaping without the surrounding quotes.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    // serde_json always produces `"..."` for a string value.
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or("")
        .to_string()
}

/// Header values cannot hold line breaks (that would be header injection).
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Percent-encodes everything except RFC 3986 unreserved characters, so the
/// result is safe in a path segment as well as in a query value.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences (the URL crate keeps user info encoded).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Hides the password in `scheme://user:pass@host` and any query string
/// (which may carry an API key) for logs and error messages.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

/// Reads at most `limit` bytes of the body, so a provider's multi-megabyte
/// error page is neither buffered nor logged. Cuts at a UTF-8 boundary.
async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> String {
    let mut buf: Vec<u8> = Vec::with_capacity(limit);
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = (limit - buf.len()).min(chunk.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            // The status is what matters; a body that fails mid-way still
            // reports what arrived.
            Ok(None) | Err(_) => break,
        }
    }
    match std::str::from_utf8(&buf) {
        Ok(s) => s.to_string(),
        // Truncation can split a multi-byte character at the very end: drop
        // that partial character rather than show a replacement mark.
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&buf[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&buf).into_owned(),
    }
}

fn transport_error(e: reqwest::Error) -> NotifyError {
    if e.is_timeout() {
        return NotifyError::Transport("provider did not answer in time".to_string());
    }
    // without_url: the provider URL may carry an API key in its query.
    NotifyError::Transport(error_chain(&e.without_url()))
}

/// "outer: cause: root cause" — top-level messages of reqwest and lettre
/// alone ("error sending request") do not say what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_is_single_pass_and_keeps_unknown() {
        let out = expand("{{a}} {{b}} {{{a}}} {{", "{{", "}}", |k| {
            (k == "a").then(|| "{{a}}".to_string())
        });
        assert_eq!(out, "{{a}} {{b}} {{{a}}} {{");
    }

    #[test]
    fn clean_inline_flattens() {
        assert_eq!(clean_inline("  a\r\n\tb  c ", 100), "a b c");
        assert_eq!(clean_inline("abcdef", 3), "abc");
        assert_eq!(clean_inline("\n\n", 3), "");
    }

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_encode("a b+ü"), "a%20b%2B%C3%BC");
        assert_eq!(percent_decode("p%40ss%3Aw").as_deref(), Some("p@ss:w"));
        assert_eq!(percent_decode("%").as_deref(), Some("%"));
        assert_eq!(percent_decode("%zz%f").as_deref(), Some("%zz%f"));
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn json_escape_no_quotes() {
        assert_eq!(json_escape("a\"b\nc\\"), "a\\\"b\\nc\\\\");
    }

    #[test]
    fn redaction() {
        let r = redact_url("smtp://u:secret@host:25?tls=none");
        assert!(!r.contains("secret") && !r.contains("tls=none"), "{r}");
    }
}
