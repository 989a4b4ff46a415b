//! Errors as the API answers them (DESIGN.md 10): `{"error": {"code", "field", "message"}}` with
//! a 4xx status for anything the caller can fix, 429 with `Retry-After` when the engine's queue
//! is full, 503 once the journal has failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
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
