//! What handlers read from a request, each refusing in the error shape ([`ApiError`]) with the
//! field at fault named: axum's own extractors answer in plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

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

/// Parses a JSON body strictly: unknown, missing or repeated fields, wrong types and text after
/// the document are errors naming the field.
///
/// # Errors
/// 400 `invalid_request` naming the field (`(body)` for the document as a whole).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::invalid(field_at(&path, &message, "(body)"), message)
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::invalid("(body)", error.to_string()))?;
    Ok(value)
}

/// The field at fault: serde reports a missing or repeated field at its parent (`path`), so
/// the field itself is taken from the message; `whole` stands for the root.
fn field_at(path: &str, message: &str, whole: &str) -> String {
    let named = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => whole.to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
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
    use super::*;

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
        ] {
            assert_eq!(field_at(path, message, "(body)"), field, "{message}");
        }
    }
}
