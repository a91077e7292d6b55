//! `GET /export/{what}`: `callrecords export` over HTTP, for the caller's tenant, streamed as it
//! is written. Parameters: `format` (`ndjson`, the default, or `parquet`), `fromDateTime`,
//! `toDateTime` and `changedSince`, checked before anything is read. An export that fails once
//! its answer has begun ends the connection without the chunked body's end, so no client takes
//! a cut file for a whole one.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures::SinkExt;

use super::analytics::parameters;
use super::error::{ApiError, Result};
use super::AppState;
use crate::auth::Principal;
use crate::clock::Timestamp;
use crate::export::{self, ExportRequest, Format, Output, RequestError, What};

/// Pieces of the answer waiting for the client: a slow reader holds the export back here.
const PIECES_IN_FLIGHT: usize = 4;

type Piece = std::result::Result<Bytes, std::io::Error>;

struct Channel(futures::channel::mpsc::Sender<Piece>);

#[async_trait::async_trait]
impl Output for Channel {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.0
            .send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| anyhow::anyhow!("the client went away"))
    }
}

fn instant(found: &std::collections::HashMap<String, String>, name: &'static str) -> Result<Option<Timestamp>> {
    found
        .get(name)
        .map(|text| {
            crate::analytics::parse_instant(text.trim()).ok_or_else(|| {
                ApiError::bad_request(format!("{name}: '{text}' is not an ISO 8601 date or date and time"))
                    .with_target(name)
            })
        })
        .transpose()
}

pub(crate) async fn export(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(what): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let what = What::parse(&what).ok_or_else(|| {
        ApiError::bad_request(format!(
            "what: '{what}' is not something to export; known: {}",
            What::NAMES.join(", ")
        ))
        .with_target("what")
    })?;
    let found = parameters(raw, &["format", "fromDateTime", "toDateTime", "changedSince"])?;
    let format = match found.get("format") {
        None => Format::Ndjson,
        Some(name) => Format::parse(name).ok_or_else(|| {
            ApiError::bad_request(format!("format: takes ndjson or parquet, not '{name}'")).with_target("format")
        })?,
    };
    let request = ExportRequest {
        tenant: principal.tenant.clone(),
        what,
        format,
        from: instant(&found, "fromDateTime")?,
        to: instant(&found, "toDateTime")?,
        changed_since: instant(&found, "changedSince")?,
    };
    request.check().map_err(|error| match error {
        RequestError::ToNotAfterFrom => {
            ApiError::bad_request("toDateTime: must be after fromDateTime").with_target("toDateTime")
        }
        RequestError::ChangedSinceOnLogs(what) => ApiError::bad_request(format!(
            "changedSince: applies to call records only; {} rows never change once stored, so select new ones by fromDateTime",
            what.as_str()
        ))
        .with_target("changedSince"),
    })?;
    let visible_from = crate::store::visible_from(state.settings.retention_days, state.clock.timestamp());
    let (sender, receiver) = futures::channel::mpsc::channel::<Piece>(PIECES_IN_FLIGHT);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut output = Channel(sender);
        if let Err(error) = export::export(store.as_ref(), &request, visible_from, &mut output).await {
            tracing::warn!(
                what = request.what.as_str(),
                error = format!("{error:#}"),
                "export failed midway"
            );
            let _ = output.0.send(Err(std::io::Error::other(format!("{error:#}")))).await;
        }
    });
    let extension = match format {
        Format::Ndjson => "ndjson",
        Format::Parquet => "parquet",
    };
    let mut response = Body::from_stream(receiver).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}.{extension}\"", what.as_str())) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
