//! Sending: address checks, the SMTP transport and the operator's HTTP providers for SMS
//! and WhatsApp, with provider replies read under a bound.

use super::texts::{clean_inline, expand};
use super::*;

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

pub(super) fn parse_email(to: &str) -> Result<lettre::Address, NotifyError> {
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
pub(super) fn normalize_phone(to: &str) -> Result<String, NotifyError> {
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
pub(super) fn preview(s: &str) -> String {
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
pub(super) struct SmtpSender {
    // No connection pool: notifications are a handful per KYC session, and
    // lettre's pool spawns a background task at build time, which would tie
    // `Notifier::new` to a running tokio runtime and keep idle connections
    // that servers drop anyway. One connection per message is simpler.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Clone)]
pub(super) struct PreparedTemplate {
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
    /// [`Notifier::new`] from the configuration file's section, where an empty string
    /// means "not configured".
    pub fn from_config(settings: &NotifySettings) -> Result<Notifier, NotifyError> {
        let mut settings = settings.clone();
        settings.smtp_url = settings.smtp_url.filter(|s| !s.is_empty());
        settings.email_from = settings.email_from.filter(|s| !s.is_empty());
        Notifier::new(&settings)
    }

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

pub(super) fn build_smtp(
    url: &str,
    from: Option<&str>,
    timeout: Duration,
) -> Result<SmtpSender, NotifyError> {
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

pub(super) fn prepare_template(
    which: &str,
    t: &HttpTemplate,
) -> Result<PreparedTemplate, NotifyError> {
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
pub(super) fn message_id(domain: &str) -> String {
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
pub(super) fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    // serde_json always produces `"..."` for a string value.
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or("")
        .to_string()
}

/// Header values cannot hold line breaks (that would be header injection).
pub(super) fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Percent-encodes everything except RFC 3986 unreserved characters, so the
/// result is safe in a path segment as well as in a query value.
pub(super) fn percent_encode(s: &str) -> String {
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
pub(super) fn percent_decode(s: &str) -> Option<String> {
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
pub(super) fn redact_url(raw: &str) -> String {
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
pub(super) async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> String {
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

pub(super) fn transport_error(e: reqwest::Error) -> NotifyError {
    if e.is_timeout() {
        return NotifyError::Transport("provider did not answer in time".to_string());
    }
    // without_url: the provider URL may carry an API key in its query.
    NotifyError::Transport(error_chain(&e.without_url()))
}

/// "outer: cause: root cause" — top-level messages of reqwest and lettre
/// alone ("error sending request") do not say what went wrong.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
