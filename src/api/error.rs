//! `ApiError` and the one place that maps every failure to Graph's status, OData `code` and
//! message. Handlers return `ApiError`; the `odata_envelope` middleware in
//! `api::mod` writes the body, because only it knows the request-id and client-request-id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::path::PathError;
use crate::query::QueryError;
use crate::store::StoreError;

/// The message Graph writes for a missing, foreign or expired call record (as observed).
pub(crate) const CALL_RECORD_NOT_FOUND: &str = "Could not find the requested call record. Records about calls or online meetings that started more than 30 days ago are not available.";

pub(crate) type Result<T, E = ApiError> = std::result::Result<T, E>;

/// One entry of `error.details`: which part of the request was wrong and why.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ErrorDetail {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) target: String,
}

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) target: Option<String>,
    pub(crate) details: Vec<ErrorDetail>,
    /// For 5xx: the cause, logged with the request-id and never shown to the client.
    pub(crate) source: Option<anyhow::Error>,
    pub(crate) allow: Option<&'static str>,
    pub(crate) retry_after_seconds: Option<u64>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub(crate) www_authenticate: Option<String>,
    /// Extra members of `innerError` (Graph's 429 carries `code`, `status` and `message` there).
    pub(crate) inner: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            target: None,
            details: Vec::new(),
            source: None,
            allow: None,
            retry_after_seconds: None,
            www_authenticate: None,
            inner: Vec::new(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub(crate) fn call_record_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", CALL_RECORD_NOT_FOUND)
    }

    pub(crate) fn resource_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", "Resource not found.")
    }

    /// An unknown or unparseable segment under `/v1.0` is a 400, as OData answers.
    pub(crate) fn unknown_segment(segment: &str) -> Self {
        PathError::unknown_segment(segment).into()
    }

    /// Call records are read-only: the SDKs' generated POST, PATCH and DELETE get a 405.
    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The HTTP method is not allowed on this resource.",
        );
        error.allow = Some(allow);
        error
    }

    pub(crate) fn internal(source: anyhow::Error) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An unexpected error occurred. Quote the request-id when reporting it.",
        );
        error.source = Some(source);
        error
    }

    pub(crate) fn with_details(mut self, details: Vec<ErrorDetail>) -> Self {
        self.details = details;
        self
    }

    pub(crate) fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

impl From<PathError> for ApiError {
    fn from(error: PathError) -> Self {
        ApiError {
            target: error.target,
            ..ApiError::bad_request(error.message)
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError::bad_request(error.message).with_target(error.option)
    }
}

impl From<StoreError> for ApiError {
    /// Names the class of the failure (full, busy, unavailable) and never its internals; the
    /// cause goes to the log with the request-id.
    fn from(error: StoreError) -> Self {
        let (status, code, message, retry_after) = match &error {
            StoreError::Full(_) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "InsufficientStorage",
                "The store is full: nothing more can be written until space is freed. What this request sent was not stored; send it again later.",
                None,
            ),
            StoreError::Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The store is busy. Retry after the interval in Retry-After.",
                Some(1),
            ),
            StoreError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The store is unavailable. Retry after the interval in Retry-After.",
                Some(5),
            ),
            StoreError::Other(_) => return ApiError::internal(anyhow::Error::new(error)),
        };
        let mut api = ApiError::new(status, code, message);
        api.retry_after_seconds = retry_after;
        api.source = Some(anyhow::Error::new(error));
        api
    }
}

/// What the envelope middleware needs to write the body; carried in the response's extensions.
#[derive(Clone, Debug)]
pub(crate) struct ErrorPayload {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) target: Option<String>,
    pub(crate) details: Vec<ErrorDetail>,
    /// The cause chain of a 5xx, for the log line the middleware writes.
    pub(crate) cause: Option<String>,
    pub(crate) inner: Vec<(&'static str, String)>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(challenge) = self
            .www_authenticate
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(ErrorPayload {
            code: self.code,
            message: self.message,
            target: self.target,
            details: self.details,
            cause: self.source.map(|source| format!("{source:#}")),
            inner: self.inner,
        });
        response
    }
}

/// The payload for an error response that did not come from an `ApiError` (a panic caught by
/// tower-http, a body over the size limit, a timeout): Graph's code for the status.
pub(crate) fn payload_for_status(status: StatusCode) -> ErrorPayload {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("NotFound", "Resource not found."),
        StatusCode::METHOD_NOT_ALLOWED => ("MethodNotAllowed", "The HTTP method is not allowed on this resource."),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "RequestEntityTooLarge",
            "The request body is larger than the service accepts.",
        ),
        StatusCode::REQUEST_TIMEOUT => ("RequestTimeout", "The request took too long to process."),
        StatusCode::URI_TOO_LONG => (
            "RequestUriTooLong",
            "The request URL is longer than the service accepts.",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "RequestHeaderFieldsTooLarge",
            "The request has more headers, or larger ones, than the service accepts.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UnsupportedMediaType",
            "The request body's media type is not supported.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("ServiceUnavailable", "The service is temporarily unavailable."),
        s if s.is_server_error() => (
            "InternalServerError",
            "An unexpected error occurred. Quote the request-id when reporting it.",
        ),
        _ => ("BadRequest", "The request is not valid."),
    };
    ErrorPayload {
        code,
        message: message.to_owned(),
        target: None,
        details: Vec::new(),
        cause: None,
        inner: Vec::new(),
    }
}
