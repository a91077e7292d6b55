//! The operator's endpoints. `GET /metrics`: the service's metrics, the store's figures read
//! fresh at each scrape. `GET /healthz`: 200 when the store answers and accepts writes; 503 (as an OData error) when
//! it does not answer, or when the last write found it full, until a write succeeds again.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::{ApiError, Result};
use super::AppState;
use crate::model::DateTimeOffset;
use crate::store::StoreError;

/// What the writes of this process last found. Only a write shows whether space was freed, so
/// "full" lasts until one succeeds (clients retry refused ingests, so that comes soon enough).
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    full_since: Mutex<Option<DateTimeOffset>>,
}

impl WriteHealth {
    pub(crate) fn record_success(&self) {
        *self.full_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    pub(crate) fn record_failure(&self, error: &StoreError) {
        if matches!(error, StoreError::Full(_)) {
            self.full_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get_or_insert_with(DateTimeOffset::now);
        }
    }

    pub(crate) fn full_since(&self) -> Option<DateTimeOffset> {
        *self.full_since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Value>> {
    state.store.ping().await?;
    if let Some(since) = state.write_health.full_since() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "InsufficientStorage",
            format!("The store is full: writes have been refused since {since} and are until space is freed. Reads are served."),
        ));
    }
    Ok(Json(json!({ "status": "ok" })))
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let depth = state.store.outbox_depth().await?;
    state.notifier.metrics.outbox_depth.set(depth);
    state.metrics.set_store(&state.store.stats().await?);
    let mut response = (StatusCode::OK, state.metrics.render()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}
