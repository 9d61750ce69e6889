//! Reading what a client sent: the JSON body and the query string, field by field, so that
//! every wrong input gets an error that names the field, in the API's error shape.
//!
//! Bodies are parsed into a JSON object first and fields are taken out one by one, which
//! lets a wrong type say "verification_id value is invalid." rather than a serde message.

use crate::domain::validate::positive_id;
use crate::error::{Error, ErrorType, Result};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A request body that must be a JSON object.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody> {
        let json = is_json(req.headers().get(axum::http::header::CONTENT_TYPE));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorType::ValidationError,
                    "request_too_large",
                    "request body is too large.",
                )
            } else {
                // The body stopped arriving: the client went away or was too slow.
                Error::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorType::ValidationError,
                    "request_timeout",
                    "request body was not received in time.",
                )
            }
        })?;
        // Only JSON is read as JSON: a form or `text/plain` body is what a page on another
        // site can send without asking (a cross-site login, for one).
        if !json && !is_blank(&bytes) {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorType::ValidationError,
                "content_type_invalid",
                "content-type must be application/json.",
            ));
        }
        JsonBody::parse(&bytes)
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(value: Option<&axum::http::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Nothing but ASCII white space (form feed included): no body at all.
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl JsonBody {
    pub fn parse(bytes: &[u8]) -> Result<JsonBody> {
        if is_blank(bytes) {
            return Err(Error::validation(
                "request_body_missing",
                "request body is missing.",
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonBody(map)),
            Ok(_) => Err(Error::validation(
                "request_body_invalid",
                "request body must be a JSON object.",
            )),
            Err(_) => Err(Error::validation(
                "request_body_invalid",
                "request body is not valid JSON.",
            )),
        }
    }

    /// The raw value of `key`, with JSON `null` read as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A string field; any other JSON type is invalid.
    pub fn str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Error::invalid(key)),
        }
    }

    /// A required string field that must be one of `choices`.
    pub fn one_of(&self, key: &str, choices: &[&'static str]) -> Result<&'static str> {
        let given = self.str(key)?.ok_or_else(|| Error::missing(key))?;
        choices
            .iter()
            .find(|c| **c == given)
            .copied()
            .ok_or_else(|| Error::invalid(key))
    }

    /// A positive int64 field, given as a JSON number or a string of digits (SDKs type
    /// some ids as strings).
    pub fn id(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => positive_id(value)
                .map(Some)
                .ok_or_else(|| Error::invalid(key)),
        }
    }
}

/// The query string as a map. A key given twice is refused (it has no single meaning).
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query> {
        Query::parse(parts.uri.query().unwrap_or(""))
    }
}

impl Query {
    pub fn parse(query: &str) -> Result<Query> {
        let mut map = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if map.insert(key.to_string(), value.to_string()).is_some() {
                // Name the key in the code only when it is one of ours (a plain name).
                let plain =
                    key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                return Err(if plain {
                    Error::invalid(&key)
                } else {
                    Error::validation("request_query_invalid", "the query string is invalid.")
                });
            }
        }
        Ok(Query(map))
    }

    /// `None` when absent, `Some("")` when given empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(
            JsonBody::parse(b"").unwrap_err().code(),
            "request_body_missing"
        );
        assert_eq!(
            JsonBody::parse(b"[1]").unwrap_err().code(),
            "request_body_invalid"
        );
        assert_eq!(
            JsonBody::parse(b"{").unwrap_err().code(),
            "request_body_invalid"
        );
        assert!(JsonBody::parse(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn wrong_types_name_the_field() {
        let body = JsonBody::parse(br#"{"verification_id": 5, "n": null}"#).unwrap();
        assert_eq!(
            body.str("verification_id").unwrap_err().code(),
            "verification_id_value_invalid"
        );
        assert_eq!(body.str("n").unwrap(), None);
    }
}
