//! `GET /analytics/quality`, `/reliability`, `/rateMyCall`, `/worst`, `/calls` and
//! `/calls/{id}/streams`: CQD's measures over the caller's tenant (see `crate::analytics`).
//! Every parameter is checked before the store is asked; an error names the parameter.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::error::{ApiError, Result};
use super::AppState;
use crate::analytics::{self, AnalyticsError, Dimension, ParamError, Params, Places, Worst};
use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::quality::Classification;
use crate::store::TenantId;

/// Days a query covers at most: a year and a bit, enough for CQD's rolling views and for
/// month-on-month comparisons, and a bound on the work one request asks for.
const MAX_RANGE_DAYS: i64 = 400;
/// Rows `worst` and `calls` answer when `top` is not given, and at most.
const DEFAULT_TOP: u32 = 10;
const MAX_TOP: u32 = 1000;
/// Classified streams a subnet, building or user needs to be ranked by `worst`, by default.
const DEFAULT_MIN_STREAMS: i64 = 10;

const COMMON: &[&str] = &["fromDateTime", "toDateTime", "groupBy", "filter", "defaultFilters"];

impl From<ParamError> for ApiError {
    fn from(error: ParamError) -> Self {
        ApiError::bad_request(format!("{}: {}", error.parameter, error.message)).with_target(error.parameter)
    }
}

impl From<AnalyticsError> for ApiError {
    fn from(error: AnalyticsError) -> Self {
        match error {
            AnalyticsError::Param(error) => error.into(),
            AnalyticsError::Store(error) => error.into(),
        }
    }
}

/// The query string as names and values, each name once and known.
pub(super) fn parameters(raw: Option<String>, known: &[&str]) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let Some(name) = known.iter().find(|known| known.eq_ignore_ascii_case(&name)) else {
            return Err(
                ApiError::bad_request(format!("{name}: not a parameter here; known: {}", known.join(", ")))
                    .with_target(name.into_owned()),
            );
        };
        if found.insert((*name).to_owned(), value.into_owned()).is_some() {
            return Err(ApiError::bad_request(format!("{name}: given more than once")).with_target(*name));
        }
    }
    Ok(found)
}

fn instant(found: &HashMap<String, String>, name: &'static str) -> Result<Timestamp> {
    let text = found
        .get(name)
        .ok_or_else(|| ParamError::new(name, "is required (ISO 8601, e.g. 2026-11-01T00:00:00Z)"))?;
    Ok(analytics::parse_instant(text.trim())
        .ok_or_else(|| ParamError::new(name, format!("'{text}' is not an ISO 8601 date or date and time")))?)
}

/// The parameters every measure takes, checked.
fn params(state: &AppState, found: &HashMap<String, String>) -> Result<Params> {
    let from = instant(found, "fromDateTime")?;
    let to = instant(found, "toDateTime")?;
    if to <= from {
        return Err(ParamError::new("toDateTime", "must be after fromDateTime").into());
    }
    if to.duration_since(from).as_secs() as i64 > MAX_RANGE_DAYS * 86_400 {
        return Err(ParamError::new(
            "toDateTime",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        )
        .into());
    }
    let group_by = match found
        .get("groupBy")
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
    {
        None => Vec::new(),
        Some(text) => {
            let mut dimensions = Vec::new();
            for name in text.split(',').map(str::trim) {
                let dimension = Dimension::parse(name).ok_or_else(|| {
                    ParamError::new(
                        "groupBy",
                        format!("'{name}' is not a dimension; known: {}", Dimension::all_names()),
                    )
                })?;
                if dimensions.contains(&dimension) {
                    return Err(ParamError::new("groupBy", format!("'{name}' is listed twice")).into());
                }
                dimensions.push(dimension);
            }
            dimensions
        }
    };
    let filter = match found
        .get("filter")
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
    {
        None => Vec::new(),
        Some(text) => analytics::parse_filter(text)?,
    };
    let default_filters = match found.get("defaultFilters").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ParamError::new("defaultFilters", format!("takes true or false, not '{other}'")).into());
        }
    };
    // Records past the retention window are invisible here as everywhere.
    let from = match crate::store::visible_from(state.settings.retention_days, state.clock.timestamp()) {
        Some(visible) => from.max(visible),
        None => from,
    };
    Ok(Params {
        from,
        to: to.max(from),
        group_by,
        filter,
        default_filters,
    })
}

/// The tenant's building file as a map (none when it has uploaded none).
async fn places(state: &AppState, tenant: &TenantId) -> Result<Places> {
    analytics::places_of(state.store.as_ref(), tenant)
        .await
        .map_err(ApiError::internal)
}

fn answer(params: &Params, rows: Vec<serde_json::Value>) -> Response {
    Json(json!({
        "fromDateTime": params.from.to_date_time().map(|at| at.to_string()),
        "toDateTime": params.to.to_date_time().map(|at| at.to_string()),
        "groupBy": params.group_by.iter().map(|dimension| dimension.name()).collect::<Vec<_>>(),
        "defaultFilters": params.default_filters,
        "value": rows,
    }))
    .into_response()
}

/// Which measure a route answers.
#[derive(Clone, Copy)]
enum Measure {
    Quality,
    Reliability,
    RateMyCall,
}

async fn measure(state: AppState, principal: Principal, raw: Option<String>, measure: Measure) -> Result<Response> {
    let found = parameters(raw, COMMON)?;
    let params = params(&state, &found)?;
    let places = places(&state, &principal.tenant).await?;
    let store = state.store.as_ref();
    let rows = match measure {
        Measure::Quality => analytics::quality(store, &principal.tenant, &params, &places).await?,
        Measure::Reliability => analytics::reliability(store, &principal.tenant, &params, &places).await?,
        Measure::RateMyCall => analytics::rate_my_call(store, &principal.tenant, &params, &places).await?,
    };
    Ok(answer(&params, rows))
}

pub(crate) async fn quality(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    measure(state, principal, raw, Measure::Quality).await
}

pub(crate) async fn reliability(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    measure(state, principal, raw, Measure::Reliability).await
}

pub(crate) async fn rate_my_call(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    measure(state, principal, raw, Measure::RateMyCall).await
}

fn count(found: &HashMap<String, String>, name: &'static str, default: u32, max: u32) -> Result<u32> {
    match found.get(name) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(value) if (1..=max).contains(&value) => Ok(value),
            _ => Err(ParamError::new(name, format!("takes a whole number from 1 to {max}, not '{text}'")).into()),
        },
    }
}

pub(crate) async fn worst(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let known = [COMMON, &["by", "mediaType", "minStreams", "top"]].concat();
    let found = parameters(raw, &known)?;
    let mut params = params(&state, &found)?;
    if !params.group_by.is_empty() {
        return Err(ParamError::new("groupBy", "worst ranks by its own 'by'; groupBy is not taken here").into());
    }
    let by = found
        .get("by")
        .ok_or_else(|| ParamError::new("by", "is required: subnet, building or user"))?;
    let by =
        Worst::parse(by).ok_or_else(|| ParamError::new("by", format!("takes subnet, building or user, not '{by}'")))?;
    if let Some(media) = found.get("mediaType") {
        if !["audio", "video", "vbss"].contains(&media.as_str()) {
            return Err(ParamError::new("mediaType", format!("takes audio, video or vbss, not '{media}'")).into());
        }
        params.filter.push(analytics::Clause {
            dimension: Dimension::MediaType,
            operator: analytics::Operator::Eq,
            values: vec![Some(media.clone())],
        });
    }
    let min_streams = i64::from(count(&found, "minStreams", DEFAULT_MIN_STREAMS as u32, u32::MAX)?);
    let top = count(&found, "top", DEFAULT_TOP, MAX_TOP)? as usize;
    let places = places(&state, &principal.tenant).await?;
    let rows = analytics::worst(
        state.store.as_ref(),
        &principal.tenant,
        &params,
        &places,
        by,
        min_streams,
        top,
    )
    .await?;
    Ok(answer(&params, rows))
}

pub(crate) async fn calls(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let known = [COMMON, &["classification", "top"]].concat();
    let found = parameters(raw, &known)?;
    let params = params(&state, &found)?;
    if !params.group_by.is_empty() {
        return Err(ParamError::new("groupBy", "calls are listed, not grouped; use filter").into());
    }
    let classification = match found.get("classification").map(String::as_str) {
        None => None,
        Some("poor") => Some(Classification::Poor),
        Some("good") => Some(Classification::Good),
        Some("unclassified") => Some(Classification::Unclassified),
        Some(other) => {
            return Err(ParamError::new(
                "classification",
                format!("takes poor, good or unclassified, not '{other}'"),
            )
            .into())
        }
    };
    let top = count(&found, "top", 50, MAX_TOP)?;
    let places = places(&state, &principal.tenant).await?;
    let rows = analytics::calls(
        state.store.as_ref(),
        &principal.tenant,
        &params,
        &places,
        classification,
        top,
    )
    .await?;
    Ok(answer(&params, rows))
}

pub(crate) async fn call_streams(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    parameters(raw, &[])?;
    let places = places(&state, &principal.tenant).await?;
    let rows = analytics::call_streams(state.store.as_ref(), &principal.tenant, &id, &places).await?;
    if rows.is_empty() {
        return Err(ApiError::call_record_not_found());
    }
    Ok(Json(json!({ "id": id, "value": rows })).into_response())
}
