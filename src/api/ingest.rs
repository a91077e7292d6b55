//! `POST /ingest/callRecords`, `/ingest/pstnCalls`, `/ingest/directRoutingCalls` and
//! `/ingest/smsLogs` (not part of Graph): one record as `application/json`, or many as
//! NDJSON (`application/x-ndjson`). The body is read as a stream and committed in batches, so a
//! large import needs no more memory than a batch; the response is sent only once every accepted
//! record is durable.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;

use super::error::{ApiError, ErrorDetail, Result};
use super::AppState;
use crate::auth::Principal;
use crate::ingest::{BatchIngest, IngestKind, IngestReport};
use crate::model::LogKind;

/// The largest single record we accept: far above any real record (a 150-session meeting with
/// full media detail is a few megabytes), small enough that one line cannot exhaust memory.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

enum BodyKind {
    Json,
    Ndjson,
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => Ok(BodyKind::Ndjson),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("Content-Type '{content_type}' is not supported: send one record as application/json or many as application/x-ndjson."),
        )),
    }
}

pub async fn ingest_call_records(
    state: State<AppState>,
    principal: Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    ingest(state, principal, headers, body, IngestKind::CallRecords).await
}

pub async fn ingest_pstn_calls(
    state: State<AppState>,
    principal: Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    ingest(state, principal, headers, body, IngestKind::Log(LogKind::PstnCall)).await
}

pub async fn ingest_direct_routing_calls(
    state: State<AppState>,
    principal: Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    ingest(
        state,
        principal,
        headers,
        body,
        IngestKind::Log(LogKind::DirectRoutingCall),
    )
    .await
}

pub async fn ingest_sms_logs(
    state: State<AppState>,
    principal: Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    ingest(state, principal, headers, body, IngestKind::Log(LogKind::SmsLog)).await
}

async fn ingest(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
    ingest_kind: IngestKind,
) -> Result<Response> {
    let kind = body_kind(&headers)?;
    // Waiting here, before the body is read, leaves it in the socket: TCP flow control holds
    // the sender back instead of our memory growing with every request in flight.
    let _slot = state
        .ingest_slots
        .acquire()
        .await
        .map_err(|error| ApiError::internal(anyhow::Error::new(error)))?;
    let tenant = principal.tenant;
    let mut batch = BatchIngest::of_kind(state.store.as_ref(), &tenant, ingest_kind);
    let mut stream = body.into_data_stream();
    let mut line_buffer: Vec<u8> = Vec::new();
    let mut line_number: u64 = 1;
    let mut oversized = false;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::bad_request(format!("The request body could not be read: {error}")))?;
        let mut rest: &[u8] = &chunk;
        if matches!(kind, BodyKind::Json) {
            if line_buffer.len() + rest.len() > MAX_RECORD_BYTES {
                return Err(too_large());
            }
            line_buffer.extend_from_slice(rest);
            continue;
        }
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            if !oversized {
                line_buffer.extend_from_slice(&rest[..newline]);
                batch.push_line(line_number, &line_buffer).await?;
            } else {
                batch.push_oversized_line(line_number, MAX_RECORD_BYTES);
            }
            line_buffer.clear();
            oversized = false;
            line_number += 1;
            rest = &rest[newline + 1..];
        }
        if !oversized {
            if line_buffer.len() + rest.len() > MAX_RECORD_BYTES {
                oversized = true;
                line_buffer.clear();
            } else {
                line_buffer.extend_from_slice(rest);
            }
        }
    }
    if oversized {
        batch.push_oversized_line(line_number, MAX_RECORD_BYTES);
    } else {
        batch.push_line(line_number, &line_buffer).await?;
    }
    let report = batch.finish().await?;
    // Ingest may have queued notifications; the delivery worker need not wait for its next poll.
    state.notifier.wake.notify_one();
    match kind {
        BodyKind::Json => single_record_response(report),
        BodyKind::Ndjson => Ok((StatusCode::OK, Json(report)).into_response()),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("A single record may be at most {MAX_RECORD_BYTES} bytes; send many records as NDJSON."),
    )
}

/// One JSON record: a refused record is a 400 naming where and why; an empty body too.
fn single_record_response(report: IngestReport) -> Result<Response> {
    if let Some(error) = report.errors.first() {
        let message = format!("The record is not valid: {}: {}", error.path, error.reason);
        return Err(ApiError::bad_request(message).with_details(vec![ErrorDetail {
            code: "InvalidProperty".into(),
            message: error.reason.clone(),
            target: error.path.clone(),
        }]));
    }
    if report.accepted() == 0 {
        return Err(ApiError::bad_request(
            "The request body is empty: send one record as JSON.",
        ));
    }
    Ok((StatusCode::OK, Json(report)).into_response())
}
