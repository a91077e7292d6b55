//! `/v1.0/subscriptions` and `/beta/subscriptions`. The rules live in `notify::subscriptions`;
//! these handlers parse, call one function, and shape Graph's response.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::{ApiError, Result};
use super::odata::{self, context_url};
use super::AppState;
use crate::auth::Principal;
use crate::model::Subscription;
use crate::notify::subscriptions::{self, SubscriptionInput};
use crate::notify::{SubscriptionError, SubscriptionErrorKind};

impl From<SubscriptionError> for ApiError {
    fn from(error: SubscriptionError) -> Self {
        match error {
            SubscriptionError::Store(store) => store.into(),
            SubscriptionError::Rejected { kind, message } => match kind {
                SubscriptionErrorKind::InvalidRequest => {
                    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
                }
                SubscriptionErrorKind::ValidationError => {
                    ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
                }
                SubscriptionErrorKind::ValidationTimeout => {
                    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
                }
                // Graph's answer when a tenant has its quota of subscriptions: 403, the limit named
                // in the message.
                SubscriptionErrorKind::QuotaExceeded => ApiError::new(StatusCode::FORBIDDEN, "Forbidden", message),
                SubscriptionErrorKind::NotFound => ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", message),
            },
        }
    }
}

fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<SubscriptionInput> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("Content-Type '{content_type}' is not supported: send the subscription as application/json."),
        ));
    }
    Ok(subscriptions::parse_input(body)?)
}

fn entity(ctx: &RequestContext, subscription: &Subscription) -> Value {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        context_url(ctx, "subscriptions/$entity").into(),
    );
    if let Value::Object(fields) = serde_json::to_value(subscription).unwrap_or_default() {
        body.extend(fields);
    }
    Value::Object(body)
}

fn created(ctx: &RequestContext, subscription: &Subscription) -> Response {
    let mut response = odata::json_response(ctx, entity(ctx, subscription), Vec::new());
    *response.status_mut() = StatusCode::CREATED;
    response
}

pub(crate) async fn collection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ctx: RequestContext,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    match method {
        Method::GET => {
            let list = subscriptions::list(&state.notifier, &principal.tenant).await?;
            let mut page = Map::new();
            page.insert("@odata.context".into(), context_url(&ctx, "subscriptions").into());
            page.insert("value".into(), serde_json::to_value(&list).unwrap_or_default());
            Ok(odata::json_response(&ctx, Value::Object(page), Vec::new()))
        }
        Method::POST => {
            let input = json_body(&headers, &body)?;
            let subscription = subscriptions::create(&state.notifier, &principal.tenant, input, None).await?;
            Ok(created(&ctx, &subscription))
        }
        _ => Err(ApiError::method_not_allowed("GET, POST")),
    }
}

pub(crate) async fn item(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ctx: RequestContext,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    match method {
        Method::GET => {
            let subscription = subscriptions::get(&state.notifier, &principal.tenant, &id).await?;
            Ok(odata::json_response(&ctx, entity(&ctx, &subscription), Vec::new()))
        }
        Method::PATCH => {
            let input = json_body(&headers, &body)?;
            let subscription = subscriptions::update(&state.notifier, &principal.tenant, &id, input).await?;
            Ok(odata::json_response(&ctx, entity(&ctx, &subscription), Vec::new()))
        }
        Method::DELETE => {
            subscriptions::delete(&state.notifier, &principal.tenant, &id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(ApiError::method_not_allowed("GET, PATCH, DELETE")),
    }
}

pub(crate) async fn reauthorize(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    method: Method,
    Path(id): Path<String>,
) -> Result<Response> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed("POST"));
    }
    subscriptions::reauthorize(&state.notifier, &principal.tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
