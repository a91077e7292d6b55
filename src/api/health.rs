//! `GET /healthz`: 200 when the store answers, 503 (as an OData error) when it does not.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::error::Result;
use super::AppState;

pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}
