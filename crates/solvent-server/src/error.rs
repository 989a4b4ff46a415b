//! Errors as the API answers them (DESIGN.md 10): `{"error": {"code", "field", "message"}}` with
//! a 4xx status for anything the caller can fix, 429 with `Retry-After` when the engine's queue
//! is full, 503 once the journal has failed.
//!
//! Handlers and extractors answer with an [`ApiError`]; what the router answers by itself (a
//! method the path does not serve, a request over its time) passes through [`error_shape`],
//! which gives it the same shape, so no answer of the service is a bare status or plain text.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, snake_case code.
    pub code: &'static str,
    /// The request field at fault (a JSON path such as `events[3].amount`), if one is.
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    field: Option<&'a str>,
    message: &'a str,
}

impl ApiError {
    /// 400: the request is malformed or a field is invalid.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// 401: no key, or not a live one.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            field: None,
            message: "give a live API key as `Authorization: Bearer sk_...`".to_owned(),
        }
    }

    /// 403: the key's scope does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            field: None,
            message: message.into(),
        }
    }

    /// 404: no such account (or route).
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// 422: the request is well formed but cannot be computed (a missing price, an unsupported
    /// instrument under the venue's rules).
    pub fn unprocessable(field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "cannot_compute",
            field,
            message: message.into(),
        }
    }

    /// 429: the engine's queue (or the key's rate) is full.
    pub fn busy(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code,
            field: None,
            message: message.into(),
        }
    }

    /// 413: the body is longer than `limit_bytes`.
    #[must_use]
    pub fn too_large(limit_bytes: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            field: None,
            message: format!(
                "the request body is over the limit of {limit_bytes} bytes ({} MiB); split a batch of events into several requests",
                limit_bytes / (1024 * 1024)
            ),
        }
    }

    /// An answer the router gave without a handler (`status`, and its plain-text `text` if it
    /// had one), in the error shape.
    #[must_use]
    pub fn from_router(status: StatusCode, method: &Method, text: &str) -> Self {
        let said = |otherwise: String| {
            if text.trim().is_empty() {
                otherwise
            } else {
                text.trim().to_owned()
            }
        };
        let (code, field, message) = match status {
            StatusCode::BAD_REQUEST => (
                "invalid_request",
                Some("(request)".to_owned()),
                said("the request is malformed".to_owned()),
            ),
            StatusCode::NOT_FOUND => (
                "not_found",
                Some("(path)".to_owned()),
                said("no such route; the API lives under /v1".to_owned()),
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                None,
                format!(
                    "this path does not answer {method}; the Allow header lists the methods it does"
                ),
            ),
            StatusCode::REQUEST_TIMEOUT => (
                "timeout",
                None,
                said("the request was not answered in the time the service allows".to_owned()),
            ),
            StatusCode::PAYLOAD_TOO_LARGE => return Self::too_large(crate::api::MAX_BODY_BYTES),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                Some("(headers)".to_owned()),
                said("send the body as application/json".to_owned()),
            ),
            StatusCode::UPGRADE_REQUIRED => (
                "upgrade_required",
                Some("(headers)".to_owned()),
                said("this path answers WebSocket upgrades only".to_owned()),
            ),
            other if other.is_server_error() => (
                "unavailable",
                None,
                said(format!("the service could not answer ({other})")),
            ),
            other => (
                "refused",
                None,
                said(format!("the request was refused ({other})")),
            ),
        };
        Self {
            status,
            code,
            field,
            message,
        }
    }

    /// 503: the service is stopping (the journal failed).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            field: None,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                field: self.field.as_deref(),
                message: &self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The longest plain-text answer [`error_shape`] reads to put in a message.
const ROUTER_TEXT_BYTES: usize = 4096;

/// Middleware: an error answer (4xx or 5xx) that is not already JSON — the router's own 405,
/// the timeout's 408, a rejection no handler mapped — is answered in the error shape instead,
/// with its status and headers (`Allow`, `Retry-After`) kept and its text, if any, as the
/// message.
pub async fn error_shape(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ROUTER_TEXT_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let shaped = ApiError::from_router(status, &method, &text).into_response();
    let (shaped_parts, shaped_body) = shaped.into_parts();
    // The router's headers stay (Allow, Retry-After); the body's own are the new body's.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    for (name, value) in &shaped_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, shaped_body)
}
