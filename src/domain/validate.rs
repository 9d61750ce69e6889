//! The rules for each field of the merchant API. Each function takes what the client sent
//! and returns the value to store, or the error the client sees; none of them panics on
//! any input (a property test feeds them arbitrary strings and JSON).

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

pub const MAX_ID_LEN: usize = 50;

/// `verification_id` and `user_id`: 1 to 50 characters of `[A-Za-z0-9._-]`.
pub fn merchant_id_field(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::validation(
            format!("{field}_value_missing"),
            format!("{field} is missing in the request."),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(Error::validation(
            format!("{field}_value_invalid"),
            format!("{field} can include only alphanum, dot, hyphen and underscores."),
        ));
    }
    if value.len() > MAX_ID_LEN {
        let words = field.replace("_id", " ID");
        return Err(Error::validation(
            format!("{field}_value_invalid"),
            format!("{words} entered is invalid."),
        ));
    }
    Ok(value.to_string())
}

/// An Indian mobile number: ten digits starting with 6 to 9, optionally written with a
/// `+91` or `91` country prefix. Stored as the ten digits.
pub fn phone(value: &str) -> Result<String> {
    let digits = value
        .strip_prefix("+91")
        .or_else(|| {
            (value.len() == 12)
                .then(|| value.strip_prefix("91"))
                .flatten()
        })
        .unwrap_or(value);
    let ok = digits.len() == 10
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(digits.as_bytes()[0], b'6'..=b'9');
    if ok {
        Ok(digits.to_string())
    } else {
        Err(Error::invalid("phone"))
    }
}

pub fn email(value: &str) -> Result<String> {
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::invalid("email"))
    }
}

/// Free text such as a name or an address: not blank, no control characters, at most
/// `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(field));
    }
    Ok(value.to_string())
}

pub const NOTIFICATION_TYPES: [&str; 3] = ["sms", "whatsapp", "email"];

/// `notification_types`: an array of `sms`, `whatsapp`, `email`, stored without repeats.
pub fn notification_types(value: &Value) -> Result<Vec<String>> {
    let invalid = || Error::invalid("notification_types");
    let items = value.as_array().ok_or_else(invalid)?;
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let kind = item.as_str().ok_or_else(invalid)?.to_ascii_lowercase();
        if !NOTIFICATION_TYPES.contains(&kind.as_str()) {
            return Err(invalid());
        }
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

/// A template name chosen by the operator: an id of up to 50 characters.
pub fn template(field: &str, value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(value.to_string())
    } else {
        Err(Error::invalid(field))
    }
}

fn aadhaar_error(path: &str) -> Error {
    Error::validation(
        "aadhaar_details_value_invalid",
        format!("aadhaar_details.{path} value is invalid."),
    )
}

fn required_text(obj: &Map<String, Value>, key: &str, path: &str, max: usize) -> Result<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => Ok(s.clone()),
        _ => Err(aadhaar_error(path)),
    }
}

fn optional_text(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    max: usize,
) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        _ => Err(aadhaar_error(path)),
    }
}

/// `aadhaar_details`, as the hosted API documents it. Returns the normalised object that
/// is stored and echoed back.
pub fn aadhaar_details(value: &Value) -> Result<Value> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid("aadhaar_details"))?;
    let mut out = Map::new();
    for key in ["last_verified_at", "care_of", "dob", "name", "photo_link"] {
        out.insert(key.into(), json!(required_text(obj, key, key, 500)?));
    }
    let gender = required_text(obj, "gender", "gender", 1)?;
    if !matches!(gender.as_str(), "M" | "F" | "O") {
        return Err(aadhaar_error("gender"));
    }
    out.insert("gender".into(), json!(gender));
    match obj.get("split_address") {
        None | Some(Value::Null) => {}
        Some(Value::Object(addr)) => {
            let mut split = Map::new();
            for key in ["country", "dist", "house", "state", "street"] {
                let path = format!("split_address.{key}");
                split.insert(key.into(), json!(required_text(addr, key, &path, 200)?));
            }
            let pincode = addr
                .get("pincode")
                .and_then(positive_id)
                .filter(|p| (100_000..=999_999).contains(p))
                .ok_or_else(|| aadhaar_error("split_address.pincode"))?;
            split.insert("pincode".into(), json!(pincode));
            for key in ["po", "subdist", "vtc"] {
                let path = format!("split_address.{key}");
                if let Some(v) = optional_text(addr, key, &path, 200)? {
                    split.insert(key.into(), json!(v));
                }
            }
            out.insert("split_address".into(), Value::Object(split));
        }
        Some(_) => return Err(aadhaar_error("split_address")),
    }
    Ok(Value::Object(out))
}

pub const MAX_SECURITY_QUESTIONS: usize = 20;

/// `security_questions`: one `{order, question, answer}` object or an array of them (the
/// SDK types it as one object, the documentation sends an array). Stored as an array.
pub fn security_questions(value: &Value) -> Result<Value> {
    let invalid = || Error::invalid("security_questions");
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![value],
        _ => return Err(invalid()),
    };
    if items.len() > MAX_SECURITY_QUESTIONS {
        return Err(invalid());
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item.as_object().ok_or_else(invalid)?;
        let order = obj
            .get("order")
            .and_then(Value::as_i64)
            .filter(|o| (0..=1000).contains(o))
            .ok_or_else(invalid)?;
        let question = obj
            .get("question")
            .and_then(Value::as_str)
            .filter(|q| !q.trim().is_empty() && q.chars().count() <= 500)
            .ok_or_else(invalid)?;
        let answer = obj
            .get("answer")
            .and_then(Value::as_str)
            .filter(|a| a.chars().count() <= 500)
            .ok_or_else(invalid)?;
        out.push(json!({"order": order, "question": question, "answer": answer}));
    }
    Ok(Value::Array(out))
}

/// `link_expiry`: an RFC 3339 time, or a `YYYY-MM-DD` date (midnight UTC, the form the
/// hosted API prints), later than `now_ms` and no later than `max_ms`.
pub fn link_expiry(value: &str, now_ms: i64, max_ms: i64) -> Result<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map(|d| {
                d.and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    .timestamp_millis()
            })
        })
        .map_err(|_| Error::invalid("link_expiry"))?;
    if at <= now_ms || at > max_ms {
        return Err(Error::validation(
            "link_expiry_value_invalid",
            "link_expiry must be in the future and within the allowed link lifetime.",
        ));
    }
    Ok(at)
}

/// A positive int64 from a JSON number or a digit string.
pub fn positive_id(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().filter(|n| *n > 0),
        Value::String(s) => parse_id(s),
        _ => None,
    }
}

/// A positive int64 written in decimal digits only.
pub fn parse_id(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_decimal_int64() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            "9223372036854775808",
            " 1",
            "1e3",
            "١",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_follow_the_documented_rules() {
        assert!(merchant_id_field("verification_id", "a.b-c_9").is_ok());
        let e = merchant_id_field("verification_id", "a b").unwrap_err();
        assert_eq!(e.code(), "verification_id_value_invalid");
        let long = "a".repeat(51);
        let e = merchant_id_field("verification_id", &long).unwrap_err();
        assert_eq!(
            e.to_string(),
            "400 Bad Request verification_id_value_invalid: verification ID entered is invalid."
        );
        assert!(merchant_id_field("verification_id", &"a".repeat(50)).is_ok());
    }

    #[test]
    fn phones_are_indian_mobiles() {
        assert_eq!(phone("9876543210").unwrap(), "9876543210");
        assert_eq!(phone("+919876543210").unwrap(), "9876543210");
        assert_eq!(phone("919876543210").unwrap(), "9876543210");
        for bad in [
            "",
            "1234567890",
            "98765",
            "98765432100",
            "987654321a",
            "+9198765",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn security_questions_accept_one_or_many() {
        let one = json!({"order": 1, "question": "q", "answer": "a"});
        assert_eq!(
            security_questions(&one).unwrap().as_array().unwrap().len(),
            1
        );
        let many = json!([one, {"order": 2, "question": "q2", "answer": "a2"}]);
        assert_eq!(
            security_questions(&many).unwrap().as_array().unwrap().len(),
            2
        );
        assert!(security_questions(&json!([{"order": "x"}])).is_err());
    }
}
