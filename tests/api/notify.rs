//! Integration tests for `vkyc::notify`: a tiny in-test SMTP server and an
//! axum HTTP receiver, both on 127.0.0.1 with OS-assigned ports.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use tokio::net::TcpListener;
use vkyc::notify::*;

// ---------------------------------------------------------------------------
// SMTP receiver
// ---------------------------------------------------------------------------

use crate::support::smtp_receiver;
use smtp_receiver::start_smtp;

// --- minimal MIME decoding for assertions ----------------------------------

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn qp_decode(s: &str, underscore_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b.get(i + 1) == Some(&b'\r') => i += 3,
            b'=' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < b.len() => {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
                );
                i += 3;
            }
            b'_' if underscore_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Splits raw message data into unfolded headers and the body.
fn split_mail(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = data.split_once("\r\n\r\n").expect("header/body separator");
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in head.split("\r\n") {
        if l.starts_with(' ') || l.starts_with('\t') {
            let last = headers.last_mut().expect("continuation line first");
            last.1.push_str(l);
        } else if let Some((k, v)) = l.split_once(':') {
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> &'a str {
    hs.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {hs:?}"))
}

/// Decodes RFC 2047 encoded-words (B and Q), dropping whitespace between
/// adjacent encoded words as the RFC requires.
fn decode_rfc2047(v: &str) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut prev_encoded = false;
    for (i, tok) in v.split_whitespace().enumerate() {
        let enc = tok
            .strip_prefix("=?")
            .and_then(|t| t.strip_suffix("?="))
            .and_then(|t| {
                let mut parts = t.splitn(3, '?');
                let (_cs, e, text) = (parts.next()?, parts.next()?, parts.next()?);
                Some((e.to_ascii_uppercase(), text.to_string()))
            });
        match enc {
            Some((e, text)) => {
                if i > 0 && !prev_encoded {
                    out.push(b' ');
                }
                out.extend(if e == "B" {
                    b64_decode(&text)
                } else {
                    qp_decode(&text, true)
                });
                prev_encoded = true;
            }
            None => {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(tok.as_bytes());
                prev_encoded = false;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 subject")
}

fn decoded_body(hs: &[(String, String)], body: &str) -> String {
    let cte = hs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .map(|(_, v)| v.to_ascii_lowercase());
    let bytes = match cte.as_deref() {
        Some("base64") => b64_decode(body),
        Some("quoted-printable") => qp_decode(body, false),
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8(bytes).expect("utf-8 body")
}

fn email_settings(port: u16, query: &str) -> NotifySettings {
    NotifySettings {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}{query}")),
        email_from: Some("Acme KYC <kyc@acme.example>".into()),
        timeout_seconds: Some(5),
        ..NotifySettings::default()
    }
}

fn params(slot: Option<&str>) -> Params {
    Params {
        name: "Asha Verma".into(),
        link: "https://kyc.acme.example/j/AbC123?t=x_y".into(),
        slot_start: slot.map(str::to_string),
        merchant: "Acme Finance".into(),
        code: "482913".into(),
    }
}

// ---------------------------------------------------------------------------
// SMTP tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn smtp_delivers_english_email() {
    let (port, mb) = start_smtp(false).await;
    let n = Notifier::new(&email_settings(port, "?tls=none")).unwrap();
    assert!(n.supports(Channel::Email));
    let p = params(Some("2 Dec 2026, 11:30 IST"));
    let m = render(
        Channel::Email,
        Kind::SlotBooked,
        Lang::En,
        " customer@example.com ",
        &p,
    );
    n.send(&m).await.unwrap();

    let mails = mb.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "kyc@acme.example");
    assert_eq!(mail.rcpt_to, vec!["customer@example.com".to_string()]);
    let (hs, body) = split_mail(&mail.data);
    assert!(header(&hs, "From").contains("kyc@acme.example"));
    assert!(header(&hs, "To").contains("customer@example.com"));
    assert_eq!(decode_rfc2047(header(&hs, "Subject")), m.subject);
    assert!(header(&hs, "Content-Type").starts_with("text/plain"));
    let mid = header(&hs, "Message-ID");
    assert!(
        mid.starts_with('<') && mid.ends_with("@acme.example>"),
        "{mid}"
    );
    assert!(!header(&hs, "Date").is_empty());
    let text = decoded_body(&hs, &body);
    assert!(text.contains(&p.link), "{text}");
    assert!(text.contains("2 Dec 2026, 11:30 IST"));
    assert!(text.contains("Asha Verma"));
}

#[tokio::test]
async fn smtp_hindi_subject_survives_rfc2047() {
    let (port, mb) = start_smtp(false).await;
    // Loopback without ?tls: plain text is the default there.
    let n = Notifier::new(&email_settings(port, "")).unwrap();
    let p = params(None);
    let m = render(
        Channel::Email,
        Kind::Link,
        Lang::Hi,
        "grahak@example.in",
        &p,
    );
    assert!(m.subject.contains("वीडियो KYC"));
    n.send(&m).await.unwrap();

    let mails = mb.mails();
    assert_eq!(mails.len(), 1);
    let (hs, body) = split_mail(&mails[0].data);
    let raw_subject = header(&hs, "Subject");
    assert!(
        raw_subject.is_ascii(),
        "header must be 7-bit: {raw_subject}"
    );
    assert!(
        raw_subject.to_ascii_lowercase().contains("=?utf-8?"),
        "{raw_subject}"
    );
    assert_eq!(decode_rfc2047(raw_subject), m.subject);
    let text = decoded_body(&hs, &body);
    assert!(text.contains(&p.link));
    assert!(text.contains("नमस्ते Asha Verma"));
}

#[tokio::test]
async fn smtp_rejected_recipient_is_smtp_error() {
    let (port, mb) = start_smtp(true).await;
    let n = Notifier::new(&email_settings(port, "?tls=none")).unwrap();
    let m = render(
        Channel::Email,
        Kind::Link,
        Lang::En,
        "customer@example.com",
        &params(None),
    );
    match n.send(&m).await {
        Err(NotifyError::Smtp(msg)) => {
            assert!(msg.contains("550") || msg.contains("mailbox"), "{msg}")
        }
        other => panic!("expected Smtp error, got {other:?}"),
    }
    assert!(mb.mails().is_empty());
}

#[tokio::test]
async fn smtp_required_tls_fails_without_starttls() {
    // The test server does not advertise STARTTLS, so tls=required must not
    // fall back to plain text.
    let (port, mb) = start_smtp(false).await;
    let n = Notifier::new(&email_settings(port, "?tls=required")).unwrap();
    let m = render(
        Channel::Email,
        Kind::Link,
        Lang::En,
        "customer@example.com",
        &params(None),
    );
    let err = n.send(&m).await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Smtp(_) | NotifyError::Transport(_)),
        "{err:?}"
    );
    assert!(mb.mails().is_empty());
}

#[tokio::test]
async fn smtp_unreachable_is_error() {
    // Bind then drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let n = Notifier::new(&email_settings(port, "?tls=none")).unwrap();
    let m = render(
        Channel::Email,
        Kind::Link,
        Lang::En,
        "customer@example.com",
        &params(None),
    );
    let err = n.send(&m).await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Smtp(_) | NotifyError::Transport(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn smtp_silent_server_times_out() {
    // Accepts the connection but never sends the greeting.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut s = email_settings(port, "?tls=none");
    s.timeout_seconds = Some(1);
    let n = Notifier::new(&s).unwrap();
    let m = render(
        Channel::Email,
        Kind::Link,
        Lang::En,
        "customer@example.com",
        &params(None),
    );
    let started = std::time::Instant::now();
    let err = n.send(&m).await.unwrap_err();
    assert!(matches!(err, NotifyError::Transport(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    hold.abort();
}

// ---------------------------------------------------------------------------
// HTTP provider receiver
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Hits(Arc<Mutex<Vec<Hit>>>);

impl Hits {
    fn all(&self) -> Vec<Hit> {
        self.0.lock().unwrap().clone()
    }
}

async fn start_http() -> (String, Hits) {
    async fn record(
        State(h): State<Hits>,
        uri: axum::http::Uri,
        method: Method,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, String) {
        let path = uri.path().to_string();
        h.0.lock().unwrap().push(Hit {
            path: path.clone(),
            method,
            query,
            headers,
            body,
        });
        match path.as_str() {
            // Longer than the 256-byte cap, with multi-byte characters.
            "/fail" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{{\"error\":\"quota\"}}{}", "é".repeat(300)),
            ),
            "/slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                (StatusCode::OK, "late".into())
            }
            "/redirect" => (StatusCode::FOUND, "moved".into()),
            _ => (StatusCode::OK, "{\"status\":\"queued\"}".into()),
        }
    }
    let hits = Hits::default();
    let app = axum::Router::new()
        .route("/{*path}", any(record))
        .with_state(hits.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, hits)
}

fn sms_template(base: &str, path: &str) -> HttpTemplate {
    let mut headers = BTreeMap::new();
    headers.insert(
        "Authorization".to_string(),
        "Bearer sk_test_123".to_string(),
    );
    headers.insert("X-Kind".to_string(), "vkyc-{{kind}}".to_string());
    headers.insert("X-To".to_string(), "{{to}}".to_string());
    HttpTemplate {
        url: format!("{base}{path}"),
        method: "POST".into(),
        headers,
        body: r#"{"to":"{{to}}","text":"{{text}}","kind":"{{kind}}","sender":"ACMEKY"}"#.into(),
    }
}

#[tokio::test]
async fn sms_posts_escaped_json_with_header_placeholders() {
    let (base, hits) = start_http().await;
    let n = Notifier::new(&NotifySettings {
        sms: Some(sms_template(&base, "/sms")),
        ..Default::default()
    })
    .unwrap();
    assert!(n.supports(Channel::Sms));
    assert!(!n.supports(Channel::Email) && !n.supports(Channel::Whatsapp));

    let mut p = params(Some("2 Dec 2026, 11:30 IST"));
    p.name = "Ravi \"RK\"\nKumar \\ Jr".into();
    let m = render(
        Channel::Sms,
        Kind::SlotReminder,
        Lang::En,
        "98765 43210",
        &p,
    );
    assert!(
        !m.body.contains('\n'),
        "SMS must be one paragraph: {:?}",
        m.body
    );
    n.send(&m).await.unwrap();

    // A hand-built message with a raw newline and quotes must still give valid JSON.
    let raw = Message {
        channel: Channel::Sms,
        kind: Kind::Link,
        to: "+919876543210".into(),
        subject: String::new(),
        body: "line \"one\"\nline two\t</end>".into(),
    };
    n.send(&raw).await.unwrap();

    let hits = hits.all();
    assert_eq!(hits.len(), 2);
    let h = &hits[0];
    assert_eq!(h.path, "/sms");
    assert_eq!(h.method, Method::POST);
    assert_eq!(h.headers["authorization"], "Bearer sk_test_123");
    assert_eq!(h.headers["x-kind"], "vkyc-slot_reminder");
    assert_eq!(h.headers["x-to"], "+919876543210");
    assert_eq!(h.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&h.body).expect("valid JSON");
    assert_eq!(v["to"], "+919876543210");
    assert_eq!(v["kind"], "slot_reminder");
    assert_eq!(v["sender"], "ACMEKY");
    assert_eq!(v["text"], m.body.as_str());
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("Ravi \"RK\" Kumar \\ Jr"), "{text}");
    assert!(text.contains(&p.link) && text.contains("2 Dec 2026, 11:30 IST"));

    let v2: serde_json::Value = serde_json::from_slice(&hits[1].body).expect("valid JSON");
    assert_eq!(v2["text"], "line \"one\"\nline two\t</end>");
    assert_eq!(hits[1].headers["x-kind"], "vkyc-link");
}

#[tokio::test]
async fn whatsapp_put_with_url_placeholders_and_own_content_type() {
    let (base, hits) = start_http().await;
    let mut headers = BTreeMap::new();
    headers.insert(
        "Content-Type".to_string(),
        "application/vnd.acme+json".to_string(),
    );
    let tpl = HttpTemplate {
        url: format!("{base}/wa/send?to={{{{to}}}}&k={{{{kind}}}}"),
        method: "put".into(),
        headers,
        body: r#"{"messaging_product":"whatsapp","to":"{{to}}","type":"text","text":{"body":"{{text}}"}}"#.into(),
    };
    let n = Notifier::new(&NotifySettings {
        whatsapp: Some(tpl),
        ..Default::default()
    })
    .unwrap();
    let p = params(Some("3 दिसंबर 2026, 10:00 IST"));
    let m = render(
        Channel::Whatsapp,
        Kind::SlotBooked,
        Lang::Hi,
        "+44 7700 900123",
        &p,
    );
    n.send(&m).await.unwrap();

    let hits = hits.all();
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!(h.method, Method::PUT);
    assert_eq!(h.path, "/wa/send");
    assert_eq!(h.query.as_deref(), Some("to=%2B447700900123&k=slot_booked"));
    assert_eq!(h.headers["content-type"], "application/vnd.acme+json");
    let v: serde_json::Value = serde_json::from_slice(&h.body).expect("valid JSON");
    assert_eq!(v["to"], "+447700900123");
    assert_eq!(v["text"]["body"], m.body.as_str());
    assert!(m.body.contains("3 दिसंबर 2026, 10:00 IST") && m.body.contains(&p.link));
}

#[tokio::test]
async fn provider_500_is_provider_error_with_capped_body() {
    let (base, _hits) = start_http().await;
    let n = Notifier::new(&NotifySettings {
        sms: Some(sms_template(&base, "/fail")),
        ..Default::default()
    })
    .unwrap();
    let m = render(
        Channel::Sms,
        Kind::Link,
        Lang::En,
        "9876543210",
        &params(None),
    );
    match n.send(&m).await {
        Err(NotifyError::Provider { status, body }) => {
            assert_eq!(status, 500);
            assert!(body.starts_with("{\"error\":\"quota\"}"), "{body}");
            assert!(body.len() <= 256, "{}", body.len());
            assert!(body.len() >= 254, "{}", body.len());
            assert!(!body.contains('\u{FFFD}'));
        }
        other => panic!("expected Provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn provider_redirect_is_not_followed() {
    let (base, hits) = start_http().await;
    let n = Notifier::new(&NotifySettings {
        sms: Some(sms_template(&base, "/redirect")),
        ..Default::default()
    })
    .unwrap();
    let m = render(
        Channel::Sms,
        Kind::Link,
        Lang::En,
        "9876543210",
        &params(None),
    );
    assert!(matches!(
        n.send(&m).await,
        Err(NotifyError::Provider { status: 302, .. })
    ));
    assert_eq!(hits.all().len(), 1);
}

#[tokio::test]
async fn provider_timeout_is_transport_error() {
    let (base, _hits) = start_http().await;
    let n = Notifier::new(&NotifySettings {
        sms: Some(sms_template(&base, "/slow")),
        timeout_seconds: Some(1),
        ..Default::default()
    })
    .unwrap();
    let m = render(
        Channel::Sms,
        Kind::Link,
        Lang::En,
        "9876543210",
        &params(None),
    );
    let started = std::time::Instant::now();
    assert!(matches!(n.send(&m).await, Err(NotifyError::Transport(_))));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn provider_unreachable_is_transport_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let n = Notifier::new(&NotifySettings {
        sms: Some(sms_template(&format!("http://127.0.0.1:{port}"), "/sms")),
        ..Default::default()
    })
    .unwrap();
    let m = render(
        Channel::Sms,
        Kind::Link,
        Lang::En,
        "9876543210",
        &params(None),
    );
    match n.send(&m).await {
        Err(NotifyError::Transport(msg)) => assert!(!msg.contains("sk_test"), "{msg}"),
        other => panic!("expected Transport, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Configuration and validation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unconfigured_channels_are_reported() {
    let n = Notifier::new(&NotifySettings::default()).unwrap();
    for c in Channel::ALL {
        assert!(!n.supports(c));
        let to = if c == Channel::Email {
            "a@example.com"
        } else {
            "9876543210"
        };
        let m = render(c, Kind::Link, Lang::En, to, &params(None));
        match n.send(&m).await {
            Err(NotifyError::NotConfigured(got)) => assert_eq!(got, c),
            other => panic!("{c}: expected NotConfigured, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn invalid_addresses_never_reach_the_network() {
    let (base, hits) = start_http().await;
    let (port, mb) = start_smtp(false).await;
    let mut s = email_settings(port, "?tls=none");
    s.sms = Some(sms_template(&base, "/sms"));
    s.whatsapp = Some(sms_template(&base, "/wa"));
    let n = Notifier::new(&s).unwrap();
    let p = params(None);

    for bad in [
        "",
        "not-an-email",
        "a@b",
        "a b@example.com",
        "a@example.com\r\nBcc: x@evil.example",
        "@example.com",
        "a@",
        "a@example.",
    ] {
        let m = render(Channel::Email, Kind::Link, Lang::En, bad, &p);
        assert!(
            matches!(n.send(&m).await, Err(NotifyError::InvalidAddress(_))),
            "email {bad:?}"
        );
    }
    for bad in [
        "",
        "12345",
        "+0123456789",
        "+91 98765",
        "5876543210",
        "98765-4321x",
        "+1",
        "phone",
        "++919876543210",
        "98765\n43210",
        "+9198765432101",
    ] {
        for c in [Channel::Sms, Channel::Whatsapp] {
            let m = render(c, Kind::Link, Lang::En, bad, &p);
            assert!(
                matches!(n.send(&m).await, Err(NotifyError::InvalidAddress(_))),
                "{c} {bad:?}"
            );
        }
    }
    assert!(hits.all().is_empty());
    assert!(mb.mails().is_empty());
}

#[test]
fn phone_normalisation() {
    let ok = [
        ("9876543210", "+919876543210"),
        ("098765 43210", "+919876543210"),
        ("91-98765-43210", "+919876543210"),
        ("+91 (98765) 43210", "+919876543210"),
        ("0091 98765 43210", "+919876543210"),
        ("+1 415 555 0100", "+14155550100"),
        (" 6000000000 ", "+916000000000"),
    ];
    for (input, want) in ok {
        assert_eq!(
            validate_address(Channel::Sms, input).unwrap(),
            want,
            "{input}"
        );
        assert_eq!(
            validate_address(Channel::Whatsapp, input).unwrap(),
            want,
            "{input}"
        );
    }
    assert_eq!(
        validate_address(Channel::Email, " Asha@Example.com ").unwrap(),
        "Asha@Example.com"
    );
    // No panic on odd Unicode input.
    for junk in ["९८७६५४३२१०", "+", "00", "0", "📞", "\u{0}"] {
        assert!(validate_address(Channel::Sms, junk).is_err(), "{junk}");
        assert!(validate_address(Channel::Email, junk).is_err(), "{junk}");
    }
}

#[test]
fn settings_validation_without_runtime() {
    // `new` must work outside a tokio runtime (no background tasks).
    let good = NotifySettings {
        smtp_url: Some("smtps://user:p%40ss@smtp.example.com".into()),
        email_from: Some("kyc@example.com".into()),
        ..Default::default()
    };
    let n = Notifier::new(&good).unwrap();
    assert!(n.supports(Channel::Email));
    for url in [
        "smtp://mail.example.com",
        "smtp://u:p@mail.example.com:587?tls=required",
        "smtp://localhost:2525",
        "smtp://[::1]:25",
        "smtp://mailpit:1025?tls=none",
        "smtp://relay.example.com?tls=starttls",
    ] {
        let s = NotifySettings {
            smtp_url: Some(url.into()),
            ..good.clone()
        };
        assert!(Notifier::new(&s).is_ok(), "{url}");
    }

    let bad_smtp = [
        "http://mail.example.com",
        "smtp://",
        "not a url",
        "smtp://mail.example.com?tls=maybe",
        "smtp://mail.example.com?tsl=none",
        "smtps://mail.example.com?tls=none",
        // Credentials in clear text to a remote host.
        "smtp://user:pw@mail.example.com?tls=none",
        "smtp://user:pw@mail.example.com?tls=starttls",
    ];
    for url in bad_smtp {
        let s = NotifySettings {
            smtp_url: Some(url.into()),
            ..good.clone()
        };
        match Notifier::new(&s) {
            Err(NotifyError::Config(msg)) => {
                assert!(!msg.contains("p%40ss") && !msg.contains(":pw@"), "{msg}")
            }
            other => panic!("{url}: expected Config, got {other:?}"),
        }
    }
    // Credentials over plain text to a local relay are fine.
    let local = NotifySettings {
        smtp_url: Some("smtp://u:p@127.0.0.1:25".into()),
        ..good.clone()
    };
    assert!(Notifier::new(&local).is_ok());

    let no_from = NotifySettings {
        email_from: None,
        ..good.clone()
    };
    assert!(matches!(
        Notifier::new(&no_from),
        Err(NotifyError::Config(_))
    ));
    let bad_from = NotifySettings {
        email_from: Some("nobody".into()),
        ..good.clone()
    };
    assert!(matches!(
        Notifier::new(&bad_from),
        Err(NotifyError::Config(_))
    ));
    for t in [0, 100_000] {
        let s = NotifySettings {
            timeout_seconds: Some(t),
            ..Default::default()
        };
        assert!(matches!(Notifier::new(&s), Err(NotifyError::Config(_))));
    }

    let tpl = sms_template("https://sms.example.com", "/send");
    let bad_templates = [
        HttpTemplate {
            url: "ftp://x.example.com/".into(),
            ..tpl.clone()
        },
        HttpTemplate {
            url: "/relative".into(),
            ..tpl.clone()
        },
        HttpTemplate {
            method: "NOT A METHOD".into(),
            ..tpl.clone()
        },
        HttpTemplate {
            headers: BTreeMap::from([("Bad Header".into(), "x".into())]),
            ..tpl.clone()
        },
        HttpTemplate {
            headers: BTreeMap::from([("X-Ok".into(), "a\nb".into())]),
            ..tpl.clone()
        },
    ];
    for t in bad_templates {
        let s = NotifySettings {
            whatsapp: Some(t.clone()),
            ..Default::default()
        };
        assert!(
            matches!(Notifier::new(&s), Err(NotifyError::Config(_))),
            "{t:?}"
        );
    }
}

#[test]
fn settings_deserialize_and_debug_redacts_secrets() {
    let json = r#"{
        "smtp_url": "smtp://user:hunter2@mail.example.com:587?tls=required",
        "email_from": "kyc@example.com",
        "sms": {"url": "https://sms.example.com/send?apikey=SECRET1", "headers": {"Authorization": "Bearer SECRET2"}, "body": "{\"to\":\"{{to}}\"}"}
    }"#;
    let s: NotifySettings = serde_json::from_str(json).unwrap();
    assert_eq!(s.sms.as_ref().unwrap().method, "POST");
    assert!(s.whatsapp.is_none() && s.timeout_seconds.is_none());
    let dbg = format!("{s:?}");
    for secret in ["hunter2", "SECRET1", "SECRET2"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(Notifier::new(&s).is_ok());
}

#[test]
fn channel_and_kind_names() {
    for c in Channel::ALL {
        assert_eq!(Channel::parse(c.as_str()), Some(c));
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        assert_eq!(
            serde_json::from_value::<Channel>(serde_json::json!(c.as_str())).unwrap(),
            c
        );
    }
    assert_eq!(Channel::parse(" WhatsApp "), Some(Channel::Whatsapp));
    assert_eq!(Channel::parse("fax"), None);
    for k in Kind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        assert_eq!(Kind::parse(k.as_str()), Some(k));
    }
    assert_eq!(Kind::SlotCancelled.as_str(), "slot_cancelled");
    assert_eq!(Lang::parse("hi-IN"), Some(Lang::Hi));
    assert_eq!(Lang::parse("EN"), Some(Lang::En));
    assert_eq!(Lang::parse("ta"), None);
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

#[test]
fn render_every_kind_and_language() {
    let slot = "2 Dec 2026, 11:30 IST";
    for lang in [Lang::En, Lang::Hi] {
        for kind in Kind::ALL {
            for with_slot in [true, false] {
                let p = params(with_slot.then_some(slot));
                let e = render(Channel::Email, kind, lang, "a@example.com", &p);
                assert_eq!(
                    (e.channel, e.kind, e.to.as_str()),
                    (Channel::Email, kind, "a@example.com")
                );
                assert!(!e.subject.trim().is_empty(), "{lang:?} {kind:?}");
                assert!(!e.subject.contains('\n'));
                // The OTP carries its code and never a link (a code next to a link is
                // what phishing looks like); the others carry the link.
                let carried = if kind == Kind::Otp { &p.code } else { &p.link };
                assert!(e.body.contains(carried), "{lang:?} {kind:?}: {}", e.body);
                assert!(e.body.contains("Asha Verma") && e.body.contains("Acme Finance"));
                for c in [Channel::Sms, Channel::Whatsapp] {
                    let s = render(c, kind, lang, "9876543210", &p);
                    assert!(s.subject.is_empty());
                    assert!(!s.body.trim().is_empty());
                    assert!(
                        s.body.contains(carried) && (kind != Kind::Otp || !s.body.contains("http")),
                        "{lang:?} {kind:?} {c}: {}",
                        s.body
                    );
                    assert!(!s.body.contains('\n'), "{lang:?} {kind:?}: {:?}", s.body);
                    assert!(s.body.chars().count() < 300, "too long: {}", s.body);
                    if with_slot && kind != Kind::Otp {
                        assert!(s.body.contains(slot), "{lang:?} {kind:?}: {}", s.body);
                    }
                }
                if with_slot && kind != Kind::Otp {
                    assert!(e.body.contains(slot), "{lang:?} {kind:?}: {}", e.body);
                }
                // No placeholder may leak into customer text.
                for text in [&e.subject, &e.body] {
                    assert!(
                        !text.contains('{') && !text.contains('}'),
                        "{lang:?} {kind:?}: {text}"
                    );
                }
            }
        }
    }
    let hi = render(
        Channel::Email,
        Kind::SlotReminder,
        Lang::Hi,
        "a@example.com",
        &params(Some(slot)),
    );
    assert!(hi.body.contains("वीडियो KYC") && hi.subject.contains("रिमाइंडर"));
    let en = render(
        Channel::Email,
        Kind::SlotCancelled,
        Lang::En,
        "a@example.com",
        &params(Some(slot)),
    );
    assert!(en.subject.contains("cancelled"));
}

#[test]
fn render_is_safe_with_odd_params() {
    let p = Params {
        name: "{link} \r\n\u{0}".repeat(50),
        link: "https://kyc.example/j/1".into(),
        slot_start: Some("\n\n".into()),
        merchant: String::new(),
        code: "{link}".into(),
    };
    for lang in [Lang::En, Lang::Hi] {
        for kind in Kind::ALL {
            let m = render(Channel::Sms, kind, lang, "x", &p);
            assert!(!m.body.contains('\n') && !m.body.contains('\u{0}'));
            // The name is kept literal (not expanded) and bounded.
            // (The OTP carries no link at all.)
            let links = usize::from(kind != Kind::Otp);
            assert!(
                m.body.matches("https://kyc.example/j/1").count() == links,
                "{}",
                m.body
            );
            assert!(m.body.chars().count() < 400);
            let e = render(Channel::Email, kind, lang, "x", &p);
            assert!(!e.subject.is_empty());
            assert_eq!(
                e.body.contains("https://kyc.example/j/1"),
                kind != Kind::Otp
            );
        }
    }
    let empty = render(Channel::Email, Kind::Link, Lang::En, "", &Params::default());
    assert!(empty.body.contains("Customer") && empty.subject.contains("your service provider"));
}
