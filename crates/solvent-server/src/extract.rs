//! What handlers read from a request, each refusing in the error shape ([`ApiError`]) with the
//! field at fault named: axum's own extractors answer in plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

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
