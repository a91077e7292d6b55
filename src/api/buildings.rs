//! CQD building data: `PUT /ingest/buildings` takes a tenant's building file (headerless CSV or
//! TSV in CQD's column order) and makes it the active one; `GET /analytics/buildings` answers the
//! active file's subnets, or (`?address=`) the one an address is in.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ErrorDetail, Result};
use super::AppState;
use crate::auth::Principal;
use crate::quality::buildings::{self, BuildingMap};
use crate::store::StoredBuildingFile;

/// The largest building file taken: a file lists one subnet a line, about 100 bytes each, so
/// this is some 160,000 subnets; a larger body is answered 413 before it is read whole.
pub(crate) const MAX_FILE_BYTES: usize = 16 << 20;

/// Line problems named in a refusal's message; all of them (up to the parser's limit) are in
/// its details.
const PROBLEMS_IN_MESSAGE: usize = 5;

pub(crate) async fn upload(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Result<Response> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("The building file is not UTF-8 text."))?;
    let parsed = buildings::parse(text).map_err(|problems| {
        let named: Vec<String> = problems
            .iter()
            .take(PROBLEMS_IN_MESSAGE)
            .map(|problem| format!("line {}: {}", problem.line, problem.problem))
            .collect();
        ApiError::bad_request(format!(
            "The building file was not taken ({} bad line{}); the active file is unchanged. {}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            named.join("; ")
        ))
        .with_details(
            problems
                .iter()
                .map(|problem| ErrorDetail {
                    code: "InvalidLine".to_owned(),
                    message: problem.problem.clone(),
                    target: format!("line {}", problem.line),
                })
                .collect(),
        )
    })?;
    let file = StoredBuildingFile {
        uploaded: state.clock.timestamp(),
        subnets: parsed.len() as i64,
        body: text.to_owned(),
    };
    state.store.add_building_file(&principal.tenant, &file).await?;
    Ok(Json(json!({
        "subnets": file.subnets,
        "uploadedDateTime": file.uploaded.to_date_time().map(|at| at.to_string()),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ActiveQuery {
    address: Option<String>,
}

pub(crate) async fn active(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(query): Query<ActiveQuery>,
) -> Result<Response> {
    let Some(file) = state.store.active_building_file(&principal.tenant).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            "This tenant has uploaded no building file (PUT /ingest/buildings).",
        ));
    };
    // A stored file was checked when it was taken; one that no longer parses is a fault here.
    let parsed = buildings::parse(&file.body).map_err(|problems| {
        ApiError::internal(anyhow::anyhow!("the stored building file does not parse: {problems:?}"))
    })?;
    let value = match &query.address {
        Some(address) => {
            if address.trim().parse::<std::net::IpAddr>().is_err() {
                return Err(
                    ApiError::bad_request(format!("address '{address}' is not an IP address")).with_target("address"),
                );
            }
            BuildingMap::new(parsed).lookup(address).cloned().into_iter().collect()
        }
        None => parsed,
    };
    Ok(Json(json!({
        "uploadedDateTime": file.uploaded.to_date_time().map(|at| at.to_string()),
        "subnets": file.subnets,
        "value": value,
    }))
    .into_response())
}
