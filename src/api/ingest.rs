//! `POST /ingest/callRecords`, `/ingest/pstnCalls`, `/ingest/directRoutingCalls` and
//! `/ingest/smsLogs` (not part of Graph): one record as `application/json`, or many as
//! NDJSON (`application/x-ndjson`). The body is read as a stream and committed in batches, so a
//! large import needs no more memory than a batch; the response is sent only once every accepted
//! record is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ApiError, ErrorDetail, Result};
use super::AppState;
use crate::auth::Principal;
use crate::ingest::{BatchIngest, IngestKind, IngestReport, BATCH_BYTES, BATCH_SIZE};
use crate::model::LogKind;
use crate::store::StoreError;

/// The largest single record we accept: far above any real record (a 150-session meeting with
/// full media detail is a few megabytes), small enough that one line cannot exhaust memory.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;

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

pub(crate) async fn ingest_call_records(
    state: State<AppState>,
    principal: Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    ingest(state, principal, headers, body, IngestKind::CallRecords).await
}

/// `POST /ingest/{kind}` for the usage-log kinds (`LogKind::as_str` names them).
pub(crate) async fn ingest_log_rows(
    state: State<AppState>,
    principal: Extension<Principal>,
    axum::extract::Path(kind): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let Some(kind) = LogKind::from_name(&kind) else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "There is no ingest endpoint for '{kind}'; the kinds are: {}.",
                crate::ingest::IngestKind::NAMES.join(", ")
            ),
        ));
    };
    ingest(state, principal, headers, body, IngestKind::Log(kind)).await
}

/// How long a sender's rate is judged over: each window of this much time spent waiting for
/// the body must bring `ApiSettings::ingest_min_rate` bytes a second.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// How soon a request holding a slot must have its next batch in hand to keep the slot.
const SLOT_KEEPING: Duration = Duration::from_secs(1);

async fn ingest(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
    ingest_kind: IngestKind,
) -> Result<Response> {
    let kind = body_kind(&headers)?;
    let limit = state.settings.max_ingest_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(body_too_large(limit));
    }
    let tenant = principal.tenant;
    let mut batch = BatchIngest::of_kind(state.store.as_ref(), &tenant, ingest_kind, state.clock.as_ref());
    let mut reader = BodyReader::new(body, &state);
    let result = match kind {
        BodyKind::Json => ingest_document(&state, &mut reader, batch).await,
        BodyKind::Ndjson => match ingest_lines(&state, &mut reader, &mut batch).await {
            // The last batches commit under the slot that parsed them.
            Ok(_slot) => batch
                .finish()
                .await
                .map_err(|error| IngestFailure::Store(error, IngestReport::default())),
            Err(IngestFailure::Store(error, _)) => Err(IngestFailure::Store(error, batch.report().clone())),
            // A refusal after whole batches were committed says so, as a store failure does.
            Err(IngestFailure::Api(error)) if batch.report().accepted() > 0 => {
                state
                    .metrics
                    .observe_ingest(ingest_kind.name(), reader.received, batch.report());
                return Err(stopped_midway(error, batch.report()));
            }
            Err(other) => Err(other),
        },
    };
    let observe = |report: &IngestReport| {
        state
            .metrics
            .observe_ingest(ingest_kind.name(), reader.received, report)
    };
    let report = match result {
        Ok(report) => {
            observe(&report);
            state.write_health.record_success();
            report
        }
        Err(IngestFailure::Api(error)) => {
            observe(&IngestReport::default());
            return Err(error);
        }
        Err(IngestFailure::Store(error, stored_before)) => {
            observe(&stored_before);
            state.write_health.record_failure(&error);
            return Err(stopped_midway(ApiError::from(error), &stored_before));
        }
    };
    // Ingest may have queued notifications; the delivery worker need not wait for its next poll.
    state.notifier.wake.notify_one();
    match kind {
        BodyKind::Json => single_record_response(report),
        BodyKind::Ndjson if report.accepted() + report.rejected == 0 => Err(ApiError::bad_request(
            "The request body holds no records: send one JSON record a line (application/x-ndjson).",
        )),
        BodyKind::Ndjson => Ok((StatusCode::OK, Json(report)).into_response()),
    }
}

/// Why an ingest stopped: a refusal of the request itself, or a store failure after the
/// batches in the report (if any) were committed.
enum IngestFailure {
    Api(ApiError),
    Store(StoreError, IngestReport),
}

impl From<ApiError> for IngestFailure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// One JSON document: read whole (it is one record), then parsed and committed in a slot.
async fn ingest_document(
    state: &AppState,
    reader: &mut BodyReader,
    mut batch: BatchIngest<'_>,
) -> Result<IngestReport, IngestFailure> {
    let mut document = Vec::new();
    while let Some(chunk) = reader.next_chunk().await? {
        if document.len() + chunk.len() > MAX_RECORD_BYTES {
            return Err(too_large().into());
        }
        document.extend_from_slice(&chunk);
    }
    let _slot = take_slot(state).await?;
    let stored = async {
        batch.push_owned_line(1, document).await?;
        batch.finish().await
    };
    stored
        .await
        .map_err(|error| IngestFailure::Store(error, IngestReport::default()))
}

/// NDJSON. A request takes a slot only once it holds a batch's worth of lines (or the body's
/// end), and keeps it while the next batch arrives within `SLOT_KEEPING`, so a fast upload runs
/// through as one (parsing each batch while the previous one commits); when the body slows,
/// what was taken is committed and the slot goes back, so nothing parsed waits without one.
async fn ingest_lines<'s>(
    state: &'s AppState,
    reader: &mut BodyReader,
    batch: &mut BatchIngest<'_>,
) -> Result<tokio::sync::SemaphorePermit<'s>, IngestFailure> {
    let stored = |error: StoreError| IngestFailure::Store(error, IngestReport::default());
    let mut lines = LineSplitter::default();
    let mut slot = None;
    loop {
        let window_started = Instant::now();
        let mut ended = false;
        while !lines.holds_a_batch() {
            let next = if slot.is_some() {
                match tokio::time::timeout_at((window_started + SLOT_KEEPING).into(), reader.next_chunk()).await {
                    Ok(next) => next?,
                    Err(_) => {
                        batch.commit_pending().await.map_err(stored)?;
                        slot = None;
                        continue;
                    }
                }
            } else {
                reader.next_chunk().await?
            };
            let Some(chunk) = next else {
                lines.end();
                ended = true;
                break;
            };
            let reserved = slot.is_some() || reader.try_reserve(chunk.len());
            lines.extend(&chunk);
            if !reserved {
                if lines.has_complete_lines() {
                    // Committing what we hold frees memory sooner than waiting for others to.
                    break;
                }
                reader.wait_for_memory(chunk.len()).await?;
            }
        }
        let held = match slot.take() {
            Some(held) => held,
            None => take_slot(state).await?,
        };
        for line in lines.take() {
            let pushed = match line {
                Line::Text(number, json) => batch.push_owned_line(number, json).await,
                Line::Oversized(number) => {
                    batch.push_oversized_line(number, MAX_RECORD_BYTES);
                    Ok(())
                }
            };
            pushed.map_err(stored)?;
        }
        // What was read without a slot is now held under one.
        reader.keep_reserved(lines.buffered_bytes());
        if ended {
            return Ok(held);
        }
        slot = Some(held);
    }
}

async fn take_slot(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state
        .ingest_slots
        .acquire()
        .await
        .map_err(|error| ApiError::internal(anyhow::Error::new(error)))
}

/// One line of an NDJSON body, numbered from 1.
enum Line {
    Text(u64, Vec<u8>),
    /// Longer than `MAX_RECORD_BYTES`: not kept, only reported.
    Oversized(u64),
}

/// Cuts a body into lines as its chunks arrive, keeping at most `MAX_RECORD_BYTES` of an
/// unfinished line.
#[derive(Default)]
struct LineSplitter {
    complete: Vec<Line>,
    complete_bytes: usize,
    partial: Vec<u8>,
    partial_oversized: bool,
    next_number: u64,
}

impl LineSplitter {
    fn extend(&mut self, mut chunk: &[u8]) {
        while let Some(newline) = memchr::memchr(b'\n', chunk) {
            self.add_to_partial(&chunk[..newline]);
            self.finish_line();
            chunk = &chunk[newline + 1..];
        }
        self.add_to_partial(chunk);
    }

    fn add_to_partial(&mut self, bytes: &[u8]) {
        if self.partial_oversized {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_RECORD_BYTES {
            self.partial_oversized = true;
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn finish_line(&mut self) {
        self.next_number += 1;
        let number = self.next_number;
        if std::mem::take(&mut self.partial_oversized) {
            self.complete.push(Line::Oversized(number));
        } else {
            let json = std::mem::take(&mut self.partial);
            self.complete_bytes += json.len();
            self.complete.push(Line::Text(number, json));
        }
    }

    /// The body ended: what remains is its last line (if it has any bytes).
    fn end(&mut self) {
        if self.partial_oversized || !self.partial.is_empty() {
            self.finish_line();
        }
    }

    /// Enough complete lines for `BatchIngest` to parse a batch.
    fn holds_a_batch(&self) -> bool {
        self.complete.len() >= BATCH_SIZE || self.complete_bytes >= BATCH_BYTES
    }

    fn has_complete_lines(&self) -> bool {
        !self.complete.is_empty()
    }

    fn take(&mut self) -> Vec<Line> {
        self.complete_bytes = 0;
        std::mem::take(&mut self.complete)
    }

    fn buffered_bytes(&self) -> usize {
        self.complete_bytes + self.partial.len()
    }
}

/// Reads an ingest body: refuses it past `max_ingest_bytes` or when it arrives slower than
/// `ingest_min_rate`, and accounts the bytes it holds against the shared ingest memory, so
/// that past the budget the bytes of waiting requests stay in their sockets.
struct BodyReader {
    stream: axum::body::BodyDataStream,
    limit: usize,
    received: usize,
    min_rate: u64,
    waited_in_window: Duration,
    bytes_in_window: u64,
    memory: Arc<Semaphore>,
    memory_budget: usize,
    reserved: Option<OwnedSemaphorePermit>,
}

/// How long a request holding only an unfinished line waits for ingest memory.
const MEMORY_WAIT: Duration = Duration::from_secs(30);

impl BodyReader {
    fn new(body: Body, state: &AppState) -> Self {
        Self {
            stream: body.into_data_stream(),
            limit: state.settings.max_ingest_bytes,
            received: 0,
            min_rate: state.settings.ingest_min_rate,
            waited_in_window: Duration::ZERO,
            bytes_in_window: 0,
            memory: state.ingest_memory.clone(),
            memory_budget: state.settings.ingest_memory_bytes.max(1),
            reserved: None,
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            let started = Instant::now();
            let remaining = RATE_WINDOW.saturating_sub(self.waited_in_window);
            let next = tokio::time::timeout(remaining, self.stream.next()).await;
            self.waited_in_window += started.elapsed();
            match next {
                Ok(Some(Ok(chunk))) => {
                    self.received += chunk.len();
                    if self.received > self.limit {
                        return Err(body_too_large(self.limit));
                    }
                    self.bytes_in_window += chunk.len() as u64;
                    self.judge_rate()?;
                    return Ok(Some(chunk));
                }
                Ok(Some(Err(error))) => {
                    return Err(ApiError::bad_request(format!(
                        "The request body could not be read: {error}"
                    )))
                }
                Ok(None) => return Ok(None),
                Err(_) => self.judge_rate()?,
            }
        }
    }

    /// At the end of each rate window, the body must have brought `min_rate` bytes a second.
    fn judge_rate(&mut self) -> Result<(), ApiError> {
        if self.waited_in_window < RATE_WINDOW {
            return Ok(());
        }
        let needed = self.min_rate * RATE_WINDOW.as_secs();
        if self.bytes_in_window < needed {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                format!(
                    "The request body arrived too slowly: {} bytes in the last {} seconds, where at least {} bytes a second are needed. {} bytes were received in all.",
                    self.bytes_in_window,
                    RATE_WINDOW.as_secs(),
                    self.min_rate,
                    self.received
                ),
            ));
        }
        self.waited_in_window = Duration::ZERO;
        self.bytes_in_window = 0;
        Ok(())
    }

    /// Reserves a chunk's bytes if the budget has them now.
    fn try_reserve(&mut self, bytes: usize) -> bool {
        let wanted = self.permits_for(bytes);
        match self.memory.clone().try_acquire_many_owned(wanted) {
            Ok(permit) => {
                self.add_reserved(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for a chunk's bytes, for a request that holds nothing it could commit to free
    /// memory; a bounded wait, so requests that each hold an unfinished line cannot wait on each
    /// other for ever.
    async fn wait_for_memory(&mut self, bytes: usize) -> Result<(), ApiError> {
        let wanted = self.permits_for(bytes);
        match tokio::time::timeout(MEMORY_WAIT, self.memory.clone().acquire_many_owned(wanted)).await {
            Ok(Ok(permit)) => {
                self.add_reserved(permit);
                Ok(())
            }
            Ok(Err(error)) => Err(ApiError::internal(anyhow::Error::new(error))),
            Err(_) => {
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service holds as much ingest data in memory as it may; retry after the interval in Retry-After.",
                );
                error.retry_after_seconds = Some(5);
                Err(error)
            }
        }
    }

    /// A chunk larger than the whole budget reserves the whole budget.
    fn permits_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.clamp(1, self.memory_budget)).unwrap_or(u32::MAX)
    }

    fn add_reserved(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.reserved {
            Some(reserved) => reserved.merge(permit),
            None => self.reserved = Some(permit),
        }
    }

    /// Gives back all but `bytes` of what this request reserved.
    fn keep_reserved(&mut self, bytes: usize) {
        if let Some(reserved) = &mut self.reserved {
            let excess = reserved.num_permits().saturating_sub(bytes);
            drop(reserved.split(excess));
        }
    }
}

/// Prefixes a store failure's message with what the request had stored before it, so a
/// client knows that sending the whole request again is harmless and what it would repeat.
fn stopped_midway(mut error: ApiError, stored_before: &IngestReport) -> ApiError {
    let accepted = stored_before.accepted();
    error.message = if accepted == 0 {
        format!("{} Nothing of this request was stored.", error.message)
    } else {
        format!(
            "{} The first {accepted} records of this request were stored before it stopped and the rest were not; sending it again is harmless.",
            error.message
        )
    };
    error
}

fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!("An ingest body may be at most {limit} bytes; send larger imports in several requests."),
    )
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
