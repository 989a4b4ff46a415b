//! What handlers read from a request, each refusing in the error shape ([`ApiError`]) with the
//! field at fault named: axum's own extractors answer in plain text.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::api::MAX_BODY_BYTES;
use crate::error::ApiError;

/// The request body, at most [`MAX_BODY_BYTES`] (over it: 413 `body_too_large`).
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(MAX_BODY_BYTES)
                } else {
                    ApiError::invalid("(body)", rejection.body_text())
                }
            })
    }
}

/// Parses a JSON body strictly: unknown, missing or repeated fields, a key written twice
/// anywhere, wrong types and text after the document are errors naming the field.
///
/// # Errors
/// 400 `invalid_request` naming the field (`(body)` for the document as a whole).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    refuse_repeated_keys(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        // Broken syntax is the document's fault wherever it stops (the message says where).
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid("(body)", message);
        }
        ApiError::invalid(field_at(&path, &message, "(body)"), message)
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::invalid("(body)", error.to_string()))?;
    Ok(value)
}

/// Refuses a document in which an object names a key twice. serde keeps the last of them
/// without a word, and the portfolios, markets, scenarios and events a body carries are read
/// through `serde_json::Value` before they are checked, so no check would see the first: what
/// the request means would hang on a reader's choice (RFC 8259 section 4 leaves it open).
/// Other faults (syntax, depth) are left to the typed parse, which names them.
fn refuse_repeated_keys(body: &[u8]) -> Result<(), ApiError> {
    let walk = Walk::default();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    // The error itself says nothing more than what the walk recorded.
    let _ = Node(&walk).deserialize(&mut deserializer);
    match walk.repeated.into_inner() {
        Some((field, key)) => Err(ApiError::invalid(
            field,
            format!("the key {key:?} appears twice in one object; name each key once"),
        )),
        None => Ok(()),
    }
}

/// Where the walk of [`refuse_repeated_keys`] is, and the first key it found twice (its path
/// as `serde_path_to_error` writes paths, and the key).
#[derive(Default)]
struct Walk {
    path: RefCell<Vec<Step>>,
    repeated: RefCell<Option<(String, String)>>,
}

enum Step {
    Key(String),
    Index(usize),
}

impl Walk {
    fn field(&self, key: &str) -> String {
        let mut field = String::new();
        for step in self.path.borrow().iter() {
            match step {
                Step::Key(name) if field.is_empty() => field.push_str(name),
                Step::Key(name) => {
                    field.push('.');
                    field.push_str(name);
                }
                Step::Index(index) => {
                    let _ = write!(field, "[{index}]");
                }
            }
        }
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(key);
        if field.is_empty() {
            "(body)".to_owned()
        } else {
            field
        }
    }
}

/// One value of the document (the walk visits every value, keeping nothing).
struct Node<'w>(&'w Walk);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        for index in 0.. {
            self.0.path.borrow_mut().push(Step::Index(index));
            let item = items.next_element_seed(Node(self.0))?;
            self.0.path.borrow_mut().pop();
            if item.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = entries.next_key::<String>()? {
            if seen.contains(&key) {
                let field = self.0.field(&key);
                *self.0.repeated.borrow_mut() = Some((field, key));
                return Err(de::Error::custom("a key appears twice"));
            }
            self.0.path.borrow_mut().push(Step::Key(key.clone()));
            entries.next_value_seed(Node(self.0))?;
            self.0.path.borrow_mut().pop();
            seen.insert(key);
        }
        Ok(())
    }
}

/// The field at fault: serde reports a missing or repeated field at its parent (`path`), so
/// the field itself is taken from the message; `whole` stands for the root, and for a field
/// whose name is empty (`?=1`, `{"": 1}`).
fn field_at(path: &str, message: &str, whole: &str) -> String {
    let named = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => String::new(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    };
    if field.is_empty() {
        whole.to_owned()
    } else {
        field
    }
}

/// The account id of a path `/v1/accounts/{id}/...` (not text once percent-decoded: 400 naming
/// `id`).
pub struct AccountId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AccountId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|rejection| {
                if rejection.status().is_server_error() {
                    ApiError::unavailable(rejection.body_text())
                } else {
                    ApiError::invalid("id", rejection.body_text())
                }
            })
    }
}

/// The query string's parameters as `T` (which should deny unknown fields), naming the
/// parameter at fault. `api_key` is the caller's key where a header cannot carry it (read by
/// [`crate::api::Caller`]), never a parameter.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let parameters = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name != "api_key"),
            )
            .finish();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(parameters.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Self)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                ApiError::invalid(field_at(&path, &message, "(query)"), message)
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_key_written_twice_anywhere_is_refused_naming_its_path() {
        for (body, field) in [
            (r#"{"a": 1, "a": 2}"#, "a"),
            (
                r#"{"events": [{"type": "deposit"}, {"amount": "1", "amount": "9"}]}"#,
                "events[1].amount",
            ),
            (
                r#"{"p": {"collateral": {"BTC": "1", "USDT": "2", "BTC": "3"}}}"#,
                "p.collateral.BTC",
            ),
            (r#"[[{"x": [], "y": {}, "x": null}]]"#, "[0][0].x"),
            (r#"{"": 1, "": 2}"#, "(body)"),
        ] {
            let error = parse::<serde_json::Value>(body.as_bytes()).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{body}");
            assert!(error.message.contains("twice"), "{}", error.message);
        }
        // The same key in two objects is no repetition; syntax is left to the typed parse.
        parse::<serde_json::Value>(br#"{"a": {"k": 1}, "b": {"k": 1}, "k": [{"k": 2}]}"#).unwrap();
        let error = parse::<serde_json::Value>(br#"{"a": 1,"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("(body)"));
    }

    #[test]
    fn a_missing_or_repeated_field_is_named_not_its_parent() {
        for (path, message, field) in [
            (".", "missing field `trades`", "trades"),
            (".", "duplicate field `limit`", "limit"),
            (
                "portfolio",
                "missing field `mode` at line 1 column 9",
                "portfolio.mode",
            ),
            ("events[0]", "invalid type: integer", "events[0]"),
            (".", "expected value at line 1 column 1", "(body)"),
            ("", "unknown field ``, expected `limit`", "(body)"),
        ] {
            assert_eq!(field_at(path, message, "(body)"), field, "{message}");
        }
    }
}
