//! Property tests for the field validators of the merchant API (src/domain/validate.rs) and for
//! reading request bodies, query strings and ids (src/http/input.rs).
//!
//! For every function: it never panics on any input; every error is an HTTP 400 whose code
//! names the field (`<field>_missing`, `<field>_value_missing`, `<field>_value_invalid`)
//! or is one of the documented body codes; and what it accepts is what the API documents.

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use vkyc::domain::validate;
use vkyc::error::Error;
use vkyc::http::input::{JsonBody, Query};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `cases` per property, or `PROPTEST_CASES` when set (for a longer hunt).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // Keep failures in the test output rather than in files next to the tests.
        failure_persistence: None,
        ..Config::default()
    }
}

/// The error is a 400 whose code is one of `codes`.
fn check_400(err: &Error, codes: &[&str]) -> Result<(), TestCaseError> {
    prop_assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{}", err);
    prop_assert!(
        codes.contains(&err.code()),
        "code {:?} is not one of {:?}",
        err.code(),
        codes
    );
    prop_assert!(!err.to_string().is_empty());
    Ok(())
}

fn field_codes(field: &str) -> [String; 3] {
    [
        format!("{field}_missing"),
        format!("{field}_value_missing"),
        format!("{field}_value_invalid"),
    ]
}

fn check_field_error(err: &Error, field: &str) -> Result<(), TestCaseError> {
    let codes = field_codes(field);
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    check_400(err, &codes)
}

fn is_id(s: &str) -> bool {
    (1..=50).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_mobile(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) && matches!(s.as_bytes()[0], b'6'..=b'9')
}

/// Strings of every kind: arbitrary Unicode, near-valid ids, digits, whitespace, control
/// characters, long runs.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9._-]{0,60}",
        "[A-Za-z0-9._ @/+\\-]{0,60}",
        "[+0-9 ]{0,15}",
        "[ \\t\\r\\n\\x00-\\x1f\\x7f\u{85}\u{a0}\u{2028}\u{3000}a]{0,8}",
        "\\PC{0,40}",
        (0usize..600).prop_map(|n| "é".repeat(n)),
        (0usize..600).prop_map(|n| "a".repeat(n)),
    ]
}

/// Object keys: mostly the names the validators look for, sometimes anything.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "order", "question", "answer", "last_verified_at", "care_of", "dob", "name",
            "photo_link", "gender", "split_address", "country", "dist", "house", "state",
            "street", "pincode", "po", "subdist", "vtc", "verification_id",
        ])
        .prop_map(String::from),
        1 => ".{0,8}",
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-2000i64..2_000_000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (0u32..2000).prop_map(|n| json!(n as f64 + 0.5)),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_text().prop_map(Value::String),
        prop::sample::select(vec![
            "sms", "SMS", "WhatsApp", "email", "M", "F", "O", "X", "123456", "0"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((any_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut s = String::with_capacity(depth * (open.len() + close.len()));
    for _ in 0..depth {
        s.push_str(open);
    }
    for _ in 0..depth {
        s.push_str(close);
    }
    s.into_bytes()
}

// ---------------------------------------------------------------------------------------
// Ids and templates
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn merchant_ids_are_accepted_exactly_when_they_match_the_documented_pattern(
        field in prop::sample::select(vec!["verification_id", "user_id"]),
        value in any_text(),
    ) {
        match validate::merchant_id_field(field, &value) {
            Ok(id) => {
                prop_assert!(is_id(&id), "accepted {:?}", id);
                prop_assert_eq!(id, value);
            }
            Err(err) => {
                prop_assert!(!is_id(&value), "refused the valid id {:?}", value);
                check_field_error(&err, field)?;
                if value.is_empty() {
                    prop_assert_eq!(err.code(), format!("{field}_value_missing"));
                } else {
                    prop_assert_eq!(err.code(), format!("{field}_value_invalid"));
                }
            }
        }
    }

    #[test]
    fn valid_merchant_ids_are_kept_as_given(value in "[A-Za-z0-9._-]{1,50}") {
        prop_assert_eq!(validate::merchant_id_field("verification_id", &value).ok(), Some(value));
    }

    #[test]
    fn templates_are_accepted_exactly_when_they_are_ids(
        field in prop::sample::select(vec!["template_name", "notification_template", "x"]),
        value in any_text(),
    ) {
        match validate::template(field, &value) {
            Ok(t) => {
                prop_assert!(is_id(&t));
                prop_assert_eq!(t, value);
            }
            Err(err) => {
                prop_assert!(!is_id(&value), "refused {:?}", value);
                check_400(&err, &[format!("{field}_value_invalid").as_str()])?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Phones, emails and text
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn accepted_phones_are_ten_digits_starting_with_six_to_nine(value in any_text()) {
        match validate::phone(&value) {
            Ok(digits) => {
                prop_assert!(is_mobile(&digits), "accepted {:?} as {:?}", value, digits);
                prop_assert!(
                    value == digits || value == format!("+91{digits}") || value == format!("91{digits}"),
                    "{:?} became {:?}", value, digits
                );
            }
            Err(err) => check_400(&err, &["phone_value_invalid"])?,
        }
    }

    #[test]
    fn every_indian_mobile_is_accepted_with_or_without_its_country_code(
        digits in "[6-9][0-9]{9}",
    ) {
        for written in [digits.clone(), format!("+91{digits}"), format!("91{digits}")] {
            prop_assert_eq!(validate::phone(&written).ok(), Some(digits.clone()), "{}", written);
        }
    }

    #[test]
    fn numbers_that_are_not_indian_mobiles_are_refused(
        digits in "[0-5][0-9]{9}|[0-9]{0,9}|[0-9]{11}|[0-9]{13,16}",
    ) {
        // A 12-digit number starting with 91 is the country code form; any other length or
        // first digit is not a mobile.
        prop_assert!(validate::phone(&digits).is_err(), "{}", digits);
    }

    #[test]
    fn accepted_emails_have_one_at_sign_a_dotted_domain_and_no_spaces(value in any_text()) {
        match validate::email(&value) {
            Ok(email) => {
                prop_assert_eq!(&email, &value);
                prop_assert!(email.len() <= 254);
                prop_assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
                let (local, domain) = email.split_once('@').expect("an @");
                prop_assert!(!local.is_empty());
                prop_assert!(!domain.contains('@'));
                prop_assert!(domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
            }
            Err(err) => check_400(&err, &["email_value_invalid"])?,
        }
    }

    #[test]
    fn ordinary_emails_are_accepted(value in "[a-z0-9._%+-]{1,30}@[a-z0-9-]{1,30}(\\.[a-z]{2,6}){1,2}") {
        prop_assert_eq!(validate::email(&value).ok(), Some(value));
    }

    #[test]
    fn accepted_text_is_trimmed_non_blank_short_enough_and_free_of_control_characters(
        field in prop::sample::select(vec!["name", "address", "remarks"]),
        value in any_text(),
        max in 0usize..700,
    ) {
        match validate::text(field, &value, max) {
            Ok(text) => {
                prop_assert_eq!(text.as_str(), value.trim());
                prop_assert!(!text.is_empty());
                prop_assert!(text.chars().count() <= max);
                prop_assert!(!text.chars().any(char::is_control));
            }
            Err(err) => {
                check_400(&err, &[format!("{field}_value_invalid").as_str()])?;
                let t = value.trim();
                prop_assert!(t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn ordinary_names_are_accepted(value in "[A-Za-z][A-Za-z .'-]{0,60}") {
        prop_assert_eq!(validate::text("name", &value, 100).ok(), Some(value.trim().to_string()));
    }
}

// ---------------------------------------------------------------------------------------
// JSON fields
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn notification_types_are_a_repeat_free_subset_of_sms_whatsapp_email(value in any_json()) {
        match validate::notification_types(&value) {
            Ok(kinds) => {
                let items = value.as_array().expect("only arrays are accepted");
                prop_assert!(kinds.len() <= 3);
                for (i, kind) in kinds.iter().enumerate() {
                    prop_assert!(validate::NOTIFICATION_TYPES.contains(&kind.as_str()));
                    prop_assert!(!kinds[..i].contains(kind), "{:?} repeats", kinds);
                }
                // Every item was one of the kinds, in any case.
                for item in items {
                    let lower = item.as_str().expect("a string").to_ascii_lowercase();
                    prop_assert!(kinds.contains(&lower));
                }
            }
            Err(err) => check_400(&err, &["notification_types_value_invalid"])?,
        }
    }

    #[test]
    fn notification_types_keep_the_first_occurrence_of_each_kind(
        items in prop::collection::vec(
            prop::sample::select(vec!["sms", "SMS", "whatsapp", "WhatsApp", "email", "Email"]),
            0..10,
        ),
    ) {
        let mut expected: Vec<String> = Vec::new();
        for item in &items {
            let lower = item.to_ascii_lowercase();
            if !expected.contains(&lower) {
                expected.push(lower);
            }
        }
        prop_assert_eq!(validate::notification_types(&json!(items)).ok(), Some(expected));
    }

    #[test]
    fn aadhaar_details_never_panic_and_name_the_field_when_refused(value in any_json()) {
        match validate::aadhaar_details(&value) {
            Ok(out) => check_normalised_aadhaar(&out)?,
            Err(err) => check_400(&err, &["aadhaar_details_value_invalid"])?,
        }
    }

    #[test]
    fn aadhaar_details_close_to_valid_are_accepted_or_refused_by_field(
        base in valid_aadhaar(),
        mutations in prop::collection::vec((any_aadhaar_path(), any_json()), 0..3),
    ) {
        let mut value = base;
        for (path, replacement) in mutations {
            set_path(&mut value, &path, replacement);
        }
        match validate::aadhaar_details(&value) {
            Ok(out) => check_normalised_aadhaar(&out)?,
            Err(err) => check_400(&err, &["aadhaar_details_value_invalid"])?,
        }
    }

    #[test]
    fn valid_aadhaar_details_are_accepted(value in valid_aadhaar()) {
        let out = validate::aadhaar_details(&value);
        prop_assert!(out.is_ok(), "{} refused: {:?}", value, out.err());
        let out = out.unwrap();
        check_normalised_aadhaar(&out)?;
        for key in ["last_verified_at", "care_of", "dob", "name", "photo_link", "gender"] {
            prop_assert_eq!(&out[key], &value[key]);
        }
    }

    #[test]
    fn security_questions_are_at_most_twenty_well_formed_questions(value in any_json()) {
        match validate::security_questions(&value) {
            Ok(out) => check_questions(&out)?,
            Err(err) => check_400(&err, &["security_questions_value_invalid"])?,
        }
    }

    #[test]
    fn valid_security_questions_are_accepted_one_or_many(
        questions in prop::collection::vec((0i64..=1000, "[A-Za-z?]{1,40}", "[A-Za-z ]{0,40}"), 1..=20),
        as_single in any::<bool>(),
    ) {
        let items: Vec<Value> = questions
            .iter()
            .map(|(o, q, a)| json!({"order": o, "question": q, "answer": a}))
            .collect();
        let value = if as_single { items[0].clone() } else { Value::Array(items.clone()) };
        let out = validate::security_questions(&value);
        prop_assert!(out.is_ok(), "{} refused", value);
        let out = out.unwrap();
        check_questions(&out)?;
        let expected = if as_single { vec![items[0].clone()] } else { items };
        prop_assert_eq!(out, Value::Array(expected));
    }

    #[test]
    fn more_than_twenty_security_questions_are_refused(n in 21usize..40) {
        let items: Vec<Value> = (0..n).map(|i| json!({"order": i, "question": "q", "answer": "a"})).collect();
        let err = validate::security_questions(&Value::Array(items)).unwrap_err();
        check_400(&err, &["security_questions_value_invalid"])?;
    }
}

fn valid_aadhaar() -> impl Strategy<Value = Value> {
    let text = "[A-Za-z0-9 ,./-]{0,30}[A-Za-z0-9]";
    (
        prop::collection::vec(text, 5),
        prop::sample::select(vec!["M", "F", "O"]),
        prop::option::of((
            prop::collection::vec(text, 5),
            prop_oneof![
                (100_000i64..=999_999).prop_map(Value::from),
                (100_000i64..=999_999).prop_map(|p| Value::from(p.to_string())),
            ],
            prop::collection::vec(prop::option::of(text), 3),
        )),
    )
        .prop_map(|(texts, gender, address)| {
            let mut obj = json!({
                "last_verified_at": texts[0],
                "care_of": texts[1],
                "dob": texts[2],
                "name": texts[3],
                "photo_link": texts[4],
                "gender": gender,
            });
            if let Some((parts, pincode, optional)) = address {
                let mut addr = json!({
                    "country": parts[0], "dist": parts[1], "house": parts[2],
                    "state": parts[3], "street": parts[4], "pincode": pincode,
                });
                for (key, v) in ["po", "subdist", "vtc"].iter().zip(optional) {
                    if let Some(v) = v {
                        addr[*key] = json!(v);
                    }
                }
                obj["split_address"] = addr;
            }
            obj
        })
}

fn any_aadhaar_path() -> impl Strategy<Value = Vec<String>> {
    let top = prop::sample::select(vec![
        "last_verified_at",
        "care_of",
        "dob",
        "name",
        "photo_link",
        "gender",
        "split_address",
        "extra",
    ]);
    let inner = prop::sample::select(vec![
        "country", "dist", "house", "state", "street", "pincode", "po", "subdist", "vtc",
    ]);
    prop_oneof![
        top.prop_map(|k| vec![k.to_string()]),
        inner.prop_map(|k| vec!["split_address".to_string(), k.to_string()]),
    ]
}

fn set_path(value: &mut Value, path: &[String], replacement: Value) {
    let mut at = value;
    for key in &path[..path.len() - 1] {
        match at.get_mut(key.as_str()) {
            Some(next) if next.is_object() => at = next,
            _ => return,
        }
    }
    if let Some(obj) = at.as_object_mut() {
        obj.insert(path[path.len() - 1].clone(), replacement);
    }
}

fn check_normalised_aadhaar(out: &Value) -> Result<(), TestCaseError> {
    let obj = out.as_object().expect("an object");
    for key in ["last_verified_at", "care_of", "dob", "name", "photo_link"] {
        let s = obj.get(key).and_then(Value::as_str).expect("a string");
        prop_assert!(
            !s.trim().is_empty() && s.chars().count() <= 500,
            "{key}: {s:?}"
        );
    }
    prop_assert!(matches!(
        obj.get("gender").and_then(Value::as_str),
        Some("M" | "F" | "O")
    ));
    if let Some(addr) = obj.get("split_address") {
        let addr = addr.as_object().expect("an object");
        let pincode = addr
            .get("pincode")
            .and_then(Value::as_i64)
            .expect("a number");
        prop_assert!((100_000..=999_999).contains(&pincode));
        for key in ["country", "dist", "house", "state", "street"] {
            let s = addr.get(key).and_then(Value::as_str).expect("a string");
            prop_assert!(!s.trim().is_empty() && s.chars().count() <= 200);
        }
        for key in addr.keys() {
            prop_assert!(
                [
                    "country", "dist", "house", "state", "street", "pincode", "po", "subdist",
                    "vtc"
                ]
                .contains(&key.as_str()),
                "unexpected key {key} kept"
            );
        }
    }
    for key in obj.keys() {
        prop_assert!(
            [
                "last_verified_at",
                "care_of",
                "dob",
                "name",
                "photo_link",
                "gender",
                "split_address"
            ]
            .contains(&key.as_str()),
            "unexpected key {key} kept"
        );
    }
    Ok(())
}

fn check_questions(out: &Value) -> Result<(), TestCaseError> {
    let items = out.as_array().expect("stored as an array");
    prop_assert!(items.len() <= validate::MAX_SECURITY_QUESTIONS);
    for item in items {
        let obj = item.as_object().expect("an object");
        prop_assert_eq!(obj.len(), 3);
        let order = obj["order"].as_i64().expect("an integer order");
        prop_assert!((0..=1000).contains(&order));
        let q = obj["question"].as_str().expect("a string");
        prop_assert!(!q.trim().is_empty() && q.chars().count() <= 500);
        let a = obj["answer"].as_str().expect("a string");
        prop_assert!(a.chars().count() <= 500);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// link_expiry
// ---------------------------------------------------------------------------------------

const YEAR_MS: i64 = 366 * 24 * 3600 * 1000;

fn rfc3339(ms: i64, offset_minutes: i32) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn an_accepted_link_expiry_is_in_the_future_and_within_the_limit(
        value in prop_oneof![
            any_text(),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2}))?",
        ],
        now_ms in prop_oneof![any::<i64>(), 0i64..4_102_444_800_000],
        lifetime in prop_oneof![any::<i64>(), 0i64..10 * YEAR_MS],
    ) {
        let max_ms = now_ms.saturating_add(lifetime);
        match validate::link_expiry(&value, now_ms, max_ms) {
            Ok(at) => prop_assert!(now_ms < at && at <= max_ms, "{} -> {}", value, at),
            Err(err) => check_400(&err, &["link_expiry_value_invalid"])?,
        }
    }

    #[test]
    fn an_rfc3339_time_inside_the_window_is_accepted_at_that_instant(
        now_ms in 0i64..4_102_444_800_000,
        ahead in 1i64..YEAR_MS,
        slack in 0i64..YEAR_MS,
        offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
    ) {
        let at = now_ms + ahead;
        let text = rfc3339(at, offset_minutes);
        prop_assert_eq!(validate::link_expiry(&text, now_ms, at + slack).ok(), Some(at), "{}", text);
        // Not after the limit, and not now or in the past.
        prop_assert!(validate::link_expiry(&text, now_ms, at - 1).is_err());
        prop_assert!(validate::link_expiry(&text, at, at + slack).is_err());
    }

    #[test]
    fn a_date_means_midnight_utc(
        days in 0i64..60_000,
    ) {
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(days as u64);
        let at = days * 24 * 3600 * 1000;
        let text = date.format("%Y-%m-%d").to_string();
        prop_assert_eq!(validate::link_expiry(&text, at - 1, at).ok(), Some(at), "{}", text);
    }
}

// ---------------------------------------------------------------------------------------
// Bodies, query strings and ids
// ---------------------------------------------------------------------------------------

const BODY_CODES: &[&str] = &["request_body_missing", "request_body_invalid"];

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_bytes_give_an_object_or_a_documented_body_error(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            any_text().prop_map(String::into_bytes),
            "[{}\\[\\]\":, 0-9a-z\\\\]{0,40}".prop_map(String::into_bytes),
        ],
    ) {
        match JsonBody::parse(&bytes) {
            Ok(body) => {
                let parsed: Value = serde_json::from_slice(&bytes).expect("only valid JSON is accepted");
                prop_assert_eq!(Value::Object(body.0), parsed);
            }
            Err(err) => {
                check_400(&err, BODY_CODES)?;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    prop_assert_eq!(err.code(), "request_body_missing");
                } else {
                    prop_assert_eq!(err.code(), "request_body_invalid");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_json_is_accepted_exactly_when_it_is_an_object(value in any_json(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_vec_pretty(&value).unwrap()
        } else {
            serde_json::to_vec(&value).unwrap()
        };
        match JsonBody::parse(&text) {
            Ok(body) => {
                prop_assert!(value.is_object());
                // Compare with a plain parse of the same text (floats need not round-trip
                // through text exactly).
                let parsed: Value = serde_json::from_slice(&text).unwrap();
                prop_assert_eq!(Value::Object(body.0), parsed);
            }
            Err(err) => {
                prop_assert!(!value.is_object(), "refused the object {}", value);
                check_400(&err, &["request_body_invalid"])?;
            }
        }
    }

    #[test]
    fn body_fields_are_read_by_type_and_name_the_field_when_wrong(
        value in any_json(),
        key in any_key(),
    ) {
        let mut map = Map::new();
        map.insert(key.clone(), value);
        let text = serde_json::to_vec(&Value::Object(map)).unwrap();
        let body = JsonBody::parse(&text).expect("an object");
        let value = body.0[&key].clone();
        match body.str(&key) {
            Ok(None) => prop_assert!(value.is_null()),
            Ok(Some(s)) => prop_assert_eq!(Some(s), value.as_str()),
            Err(err) => {
                prop_assert!(!value.is_null() && !value.is_string());
                check_field_error(&err, &key)?;
            }
        }
        match body.id(&key) {
            Ok(None) => prop_assert!(value.is_null()),
            Ok(Some(id)) => prop_assert_eq!(Some(id), validate::positive_id(&value)),
            Err(err) => {
                prop_assert_eq!(validate::positive_id(&value), None);
                check_field_error(&err, &key)?;
            }
        }
        prop_assert_eq!(body.get("surely-absent-key"), None);
    }
}

#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")] {
        for depth in [200, 1_000, 10_000, 100_000] {
            let mut bytes = b"{\"x\":".to_vec();
            bytes.extend(nested(depth, open, close));
            bytes.push(b'}');
            let err = JsonBody::parse(&bytes).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert_eq!(err.code(), "request_body_invalid", "{open} x {depth}");
            let err = JsonBody::parse(&nested(depth, open, close)).unwrap_err();
            assert_eq!(err.code(), "request_body_invalid", "{open} x {depth}");
        }
    }
    // Unterminated nesting too.
    let err = JsonBody::parse(&vec![b'['; 100_000]).unwrap_err();
    assert_eq!(err.code(), "request_body_invalid");
}

#[test]
fn empty_and_blank_bodies_are_missing() {
    for body in [&b""[..], b" ", b"\n\t\r ", b"   \n"] {
        assert_eq!(
            JsonBody::parse(body).unwrap_err().code(),
            "request_body_missing"
        );
    }
    for body in [
        &b"null"[..],
        b"[]",
        b"1",
        b"\"x\"",
        b"true",
        b"{",
        b"{}x",
        b"\xff",
    ] {
        assert_eq!(
            JsonBody::parse(body).unwrap_err().code(),
            "request_body_invalid"
        );
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn a_query_string_is_accepted_exactly_when_no_key_repeats(
        query in prop_oneof![
            any_text(),
            "([a-c%=&+]|%[0-9A-Fa-f]{2}){0,30}",
            "(verification_id|user_id|a|b)=[a-z0-9%]{0,5}(&(verification_id|user_id|a|b)=[a-z0-9%]{0,5}){0,4}",
        ],
    ) {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let mut seen: HashMap<&str, &str> = HashMap::new();
        let mut repeated = None;
        for (k, v) in &pairs {
            if seen.insert(k.as_str(), v.as_str()).is_some() && repeated.is_none() {
                repeated = Some(k.clone());
            }
        }
        match Query::parse(&query) {
            Ok(q) => {
                prop_assert!(repeated.is_none(), "{:?} repeats {:?}", query, repeated);
                let expected: HashMap<String, String> = pairs.into_iter().collect();
                prop_assert_eq!(&q.0, &expected);
                for (k, v) in &expected {
                    prop_assert_eq!(q.get(k), Some(v.as_str()));
                }
            }
            Err(err) => {
                let key = repeated.expect("only a repeated key is refused");
                // A key of ours is named in the code; any other key is not echoed back.
                let plain = key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                if plain {
                    check_field_error(&err, &key)?;
                    prop_assert_eq!(err.code(), format!("{key}_value_invalid"));
                } else {
                    check_400(&err, &["request_query_invalid"])?;
                }
            }
        }
    }

    #[test]
    fn an_encoded_query_reads_back_as_its_map(
        map in prop::collection::btree_map(any_text(), any_text(), 0..6),
    ) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(map.iter())
            .finish();
        let q = Query::parse(&query).expect("distinct keys");
        let got: BTreeMap<String, String> = q.0.into_iter().collect();
        prop_assert_eq!(got, map);
    }

    #[test]
    fn parse_id_accepts_exactly_positive_decimal_int64(text in prop_oneof![
        any_text(),
        "[0-9]{0,25}",
        "[+-]?[0-9]{1,20}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ]) {
        let oracle = if !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<i64>().ok().filter(|n| *n > 0)
        } else {
            None
        };
        let got = validate::parse_id(&text);
        prop_assert_eq!(got, oracle, "{:?}", text);
        if let Some(n) = got {
            prop_assert!(n > 0);
            prop_assert_eq!(n.to_string(), text.trim_start_matches('0'));
        }
    }

    #[test]
    fn every_positive_int64_round_trips_through_parse_id(n in 1i64..=i64::MAX) {
        prop_assert_eq!(validate::parse_id(&n.to_string()), Some(n));
    }

    #[test]
    fn positive_id_takes_positive_integers_and_digit_strings_only(value in prop_oneof![
        any_json(),
        any::<i64>().prop_map(Value::from),
        any::<i64>().prop_map(|n| Value::from(n.to_string())),
        any::<u64>().prop_map(Value::from),
    ]) {
        let expected = match &value {
            Value::Number(n) => n.as_i64().filter(|n| *n > 0),
            Value::String(s) => validate::parse_id(s),
            _ => None,
        };
        let got = validate::positive_id(&value);
        prop_assert_eq!(got, expected, "{}", value);
        if let Some(n) = got {
            prop_assert!(n > 0);
            match &value {
                Value::Number(num) => prop_assert!(num.is_i64() || num.is_u64()),
                Value::String(_) => {}
                other => prop_assert!(false, "accepted {}", other),
            }
        }
    }
}

#[test]
fn positive_id_refuses_zero_negatives_fractions_and_out_of_range_numbers() {
    for bad in [
        json!(0),
        json!(-1),
        json!(1.0),
        json!(1.5),
        json!(u64::MAX),
        json!((i64::MAX as u64) + 1),
        json!("0"),
        json!("-1"),
        json!("+1"),
        json!(" 1"),
        json!("9223372036854775808"),
        json!(null),
        json!(true),
        json!([1]),
        json!({"id": 1}),
    ] {
        assert_eq!(validate::positive_id(&bad), None, "{bad}");
    }
    assert_eq!(validate::positive_id(&json!(i64::MAX)), Some(i64::MAX));
    assert_eq!(validate::positive_id(&json!("42")), Some(42));
}
