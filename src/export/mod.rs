//! Exports (`callrecords export`, `GET /export/{what}`): a tenant's call records, sessions and
//! classified streams, and its PSTN and Direct Routing rows, as NDJSON or Parquet. Read a page
//! at a time and handed to an `Output` as it is written, so an export of any size holds a page
//! and a Parquet row group's open pages in memory, never the whole.
//!
//! `records` as NDJSON is each record as `GET …/callRecords/{id}?$expand=sessions($expand=segments),participants_v2`
//! serves it with every page merged in and no `@odata` annotations: the form `import` and
//! `POST /ingest/callRecords` take, so an export is a backup. The usage logs as NDJSON are their
//! rows as served, the form `import --kind` takes. Everything else is a flat table
//! (`columns`), in Parquet or as one JSON object a row.
//!
//! Never: HTTP, files, the command line. Those are `api::export` and `cli::export`.

pub(crate) mod columns;
mod table;

use async_trait::async_trait;
use serde::Deserialize as _;
use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::model::LogKind;
use crate::model::{CallType, Endpoint, MediaStream, MediaStreamDirection, NetworkInfo};
use crate::quality::{classify, is_conference, CallFacts, MediaType, QualityRows};
use crate::store::{
    all_children, LogRowQuery, RecordCursor, RecordSelection, Store, StoreError, StoredRecord, TenantId,
};
use columns::{Cell, Column, Scope, Scopes};
use table::TableWriter;

/// Records read a page at a time.
const RECORD_PAGE: u32 = 100;
/// Records read a page at a time when each becomes rows of a table: a page's rows are held
/// until they are appended, some 17 streams of 176 columns a record.
const TABLE_RECORD_PAGE: u32 = 32;
/// Usage-log rows read a page at a time.
const LOG_PAGE: u32 = 1000;
/// Sessions and participants read a page at a time (the store's own part size).
const CHILD_PAGE: u32 = 200;
/// NDJSON lines are handed out in pieces of about this size.
const TEXT_CHUNK: usize = 1 << 20;

/// What an export holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Records,
    Streams,
    Sessions,
    PstnCalls,
    DirectRoutingCalls,
    SmsLogs,
    PstnBlockedUsers,
    PstnOnlineMeetingDialoutReport,
}

impl What {
    /// The usage logs are named as `import --kind` and `/ingest/{kind}` name them.
    pub const NAMES: [&'static str; 8] = [
        "records",
        "streams",
        "sessions",
        "pstnCalls",
        "directRoutingCalls",
        "smsLogs",
        "pstnBlockedUsers",
        "pstnOnlineMeetingDialoutReport",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "records" => What::Records,
            "streams" => What::Streams,
            "sessions" => What::Sessions,
            "pstnCalls" => What::PstnCalls,
            "directRoutingCalls" => What::DirectRoutingCalls,
            "smsLogs" => What::SmsLogs,
            "pstnBlockedUsers" => What::PstnBlockedUsers,
            "pstnOnlineMeetingDialoutReport" => What::PstnOnlineMeetingDialoutReport,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub(crate) fn log_kind(self) -> Option<LogKind> {
        match self {
            What::PstnCalls => Some(LogKind::PstnCall),
            What::DirectRoutingCalls => Some(LogKind::DirectRoutingCall),
            What::SmsLogs => Some(LogKind::SmsLog),
            What::PstnBlockedUsers => Some(LogKind::PstnBlockedUser),
            What::PstnOnlineMeetingDialoutReport => Some(LogKind::PstnOnlineMeetingDialout),
            _ => None,
        }
    }

    fn columns(self) -> &'static [Column] {
        match self {
            What::Records => &columns::RECORDS,
            What::Streams => &columns::STREAMS,
            What::Sessions => &columns::SESSIONS,
            What::PstnCalls => &columns::PSTN_CALLS,
            What::DirectRoutingCalls => &columns::DIRECT_ROUTING_CALLS,
            What::SmsLogs => &columns::SMS_LOGS,
            What::PstnBlockedUsers => &columns::PSTN_BLOCKED_USERS,
            What::PstnOnlineMeetingDialoutReport => &columns::PSTN_ONLINE_MEETING_DIALOUT_REPORT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Parquet,
}

impl Format {
    pub const NAMES: [&'static str; 2] = ["ndjson", "parquet"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ndjson" => Some(Format::Ndjson),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// One export: whose, what, in which form, and which part.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub tenant: TenantId,
    pub what: What,
    pub format: Format,
    /// Records (or rows) that started at or after this instant.
    pub from: Option<Timestamp>,
    /// Records (or rows) that started before this instant.
    pub to: Option<Timestamp>,
    /// Call records stored (new, or a new version) at or after this instant: what changed since
    /// a previous export.
    pub changed_since: Option<Timestamp>,
}

/// Why a request cannot be exported, found before anything is read or written. The command
/// line and HTTP name the parameters at fault in their own spelling.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The range `[from, to)` is empty or reversed.
    ToNotAfterFrom,
    /// Usage-log rows never change once stored: new ones are selected by start time.
    ChangedSinceOnLogs(What),
}

impl ExportRequest {
    pub fn check(&self) -> Result<(), RequestError> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                return Err(RequestError::ToNotAfterFrom);
            }
        }
        if self.changed_since.is_some() && self.what.log_kind().is_some() {
            return Err(RequestError::ChangedSinceOnLogs(self.what));
        }
        Ok(())
    }
}

/// Where an export's bytes go, in order.
#[async_trait]
pub trait Output: Send {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()>;
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Call records (or usage-log rows) read.
    pub records: u64,
    /// Rows written: lines of NDJSON, or rows of the table.
    pub rows: u64,
    pub bytes: u64,
}

/// Counts what passes to the output.
struct Counted<'a> {
    output: &'a mut dyn Output,
    summary: Summary,
}

impl Counted<'_> {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.summary.bytes += bytes.len() as u64;
        self.output.write(bytes).await
    }
}

/// Writes the export `request` asks for to `output`; `visible_from` is the oldest start the
/// reader may see (the retention window), if any.
pub async fn export(
    store: &dyn Store,
    request: &ExportRequest,
    visible_from: Option<Timestamp>,
    output: &mut dyn Output,
) -> anyhow::Result<Summary> {
    request
        .check()
        .map_err(|error| anyhow::anyhow!("the export request does not hold: {error:?}"))?;
    let mut out = Counted {
        output,
        summary: Summary::default(),
    };
    match (request.what.log_kind(), request.what, request.format) {
        // The log functions show every stored row (the purge alone applies the logs' retention),
        // so their export does too.
        (Some(kind), _, format) => export_log_rows(store, request, kind, format, &mut out).await?,
        (None, What::Records, Format::Ndjson) => {
            export_record_documents(store, request, visible_from, &mut out).await?
        }
        (None, what, format) => export_record_table(store, request, what, format, visible_from, &mut out).await?,
    }
    Ok(out.summary)
}

/// Every record the request selects, a page at a time, in (start, id) order.
struct RecordPages<'a> {
    store: &'a dyn Store,
    tenant: &'a TenantId,
    selection: RecordSelection,
    cursor: Option<RecordCursor>,
    page_size: u32,
    done: bool,
}

impl<'a> RecordPages<'a> {
    fn new(store: &'a dyn Store, request: &'a ExportRequest, visible_from: Option<Timestamp>, page_size: u32) -> Self {
        let mut selection = RecordSelection {
            stored_since: request.changed_since,
            ..RecordSelection::default()
        };
        for from in [request.from, visible_from].into_iter().flatten() {
            selection.start_at_or_after(from);
        }
        if let Some(to) = request.to {
            selection.start_before(to);
        }
        Self {
            store,
            tenant: &request.tenant,
            done: selection.is_empty_range(),
            selection,
            cursor: None,
            page_size,
        }
    }

    async fn next(&mut self) -> Result<Vec<StoredRecord>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let page = self
            .store
            .list_call_records(self.tenant, &self.selection, self.cursor.as_ref(), self.page_size)
            .await?;
        self.done = page.len() < self.page_size as usize;
        if let Some(last) = page.last() {
            self.cursor = Some(RecordCursor {
                start: last.start,
                id: last.id.clone(),
            });
        }
        Ok(page)
    }
}

/// A record as one JSON object with all its sessions (segments inline) and, when asked, all
/// its participants.
async fn full_record(
    store: &dyn Store,
    tenant: &TenantId,
    record: &StoredRecord,
    with_participants: bool,
) -> Result<String, StoreError> {
    let sessions = all_children(|after| store.list_sessions(tenant, &record.id, after, CHILD_PAGE)).await?;
    let participants = if with_participants {
        all_children(|after| store.list_participants(tenant, &record.id, after, CHILD_PAGE)).await?
    } else {
        Vec::new()
    };
    let document = record.document.trim_end();
    let members = document.strip_suffix('}').unwrap_or(document);
    let length = document.len()
        + sessions.iter().map(|s| s.document.len() + 1).sum::<usize>()
        + participants.iter().map(|p| p.document.len() + 1).sum::<usize>()
        + 64;
    let mut text = String::with_capacity(length);
    text.push_str(members);
    if !members.trim_end().ends_with('{') {
        text.push(',');
    }
    let array = |text: &mut String, name: &str, documents: &[crate::store::StoredChild]| {
        text.push('"');
        text.push_str(name);
        text.push_str("\":[");
        for (index, child) in documents.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            text.push_str(&child.document);
        }
        text.push(']');
    };
    array(&mut text, "sessions", &sessions);
    if with_participants {
        text.push(',');
        array(&mut text, "participants_v2", &participants);
    }
    text.push('}');
    Ok(text)
}

async fn export_record_documents(
    store: &dyn Store,
    request: &ExportRequest,
    visible_from: Option<Timestamp>,
    out: &mut Counted<'_>,
) -> anyhow::Result<()> {
    let mut pages = RecordPages::new(store, request, visible_from, RECORD_PAGE);
    let mut text = Vec::with_capacity(TEXT_CHUNK + (64 << 10));
    loop {
        let page = pages.next().await?;
        if page.is_empty() {
            break;
        }
        for record in &page {
            let line = full_record(store, &request.tenant, record, true).await?;
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
            out.summary.records += 1;
            out.summary.rows += 1;
            if text.len() >= TEXT_CHUNK {
                out.write(std::mem::take(&mut text)).await?;
            }
        }
    }
    out.write(text).await
}

fn writer(what: What, format: Format) -> anyhow::Result<TableWriter> {
    Ok(match format {
        Format::Parquet => TableWriter::parquet(what.columns())?,
        Format::Ndjson => TableWriter::ndjson(what.columns()),
    })
}

async fn export_record_table(
    store: &dyn Store,
    request: &ExportRequest,
    what: What,
    format: Format,
    visible_from: Option<Timestamp>,
    out: &mut Counted<'_>,
) -> anyhow::Result<()> {
    let mut table = writer(what, format)?;
    let page_size = if what == What::Records {
        RECORD_PAGE
    } else {
        TABLE_RECORD_PAGE
    };
    let mut pages = RecordPages::new(store, request, visible_from, page_size);
    let workers = (what != What::Records).then(|| RowWorkers::start(what));
    loop {
        let page = pages.next().await?;
        if page.is_empty() {
            break;
        }
        out.summary.records += page.len() as u64;
        let mut ready = Vec::new();
        if let Some(workers) = &workers {
            let mut texts = Vec::with_capacity(page.len());
            for record in &page {
                texts.push((
                    record.id.clone(),
                    full_record(store, &request.tenant, record, false).await?,
                ));
            }
            let rows = workers.rows(texts).await?;
            for row in rows {
                ready.extend(table.push_cells(row)?);
            }
        } else {
            for record in &page {
                ready.extend(record_row(record, &mut table)?);
            }
        }
        for bytes in ready {
            out.write(bytes).await?;
        }
    }
    out.summary.rows = table.rows();
    let tail = table.finish()?;
    out.write(tail).await
}

/// A row of a table, its cells owned so that it can come back from the thread that read it.
type OwnedRow = Vec<Cell<'static>>;

/// A page's records (id and whole text) for a worker, and where its rows go.
type Job = (
    Vec<(String, String)>,
    tokio::sync::oneshot::Sender<anyhow::Result<Vec<OwnedRow>>>,
);

/// Threads that turn records into the sessions' or streams' rows, one a core, kept for the
/// whole export. Threads started per page (or the runtime's blocking threads, which come and
/// go) each took an allocator arena of their own, and the export's memory grew by the freed
/// memory those arenas held (measured: 300 MB instead of 140 MB live).
struct RowWorkers {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl RowWorkers {
    fn start(what: What) -> Self {
        let count = std::thread::available_parallelism().map_or(1, usize::from).max(1);
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(count);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let threads = (0..count)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|queue| queue.recv().map_err(|_| ()));
                    let Ok((records, answer)) = job else { return };
                    let mut rows = Vec::new();
                    let outcome = records.iter().try_for_each(|(id, text)| {
                        rows.extend(record_parts(id, text, what)?);
                        anyhow::Ok(())
                    });
                    let _ = answer.send(outcome.map(|()| rows));
                })
            })
            .collect();
        Self {
            jobs: Some(jobs),
            threads,
        }
    }

    /// The rows of a page of records, in the records' order, worked out on every worker.
    async fn rows(&self, records: Vec<(String, String)>) -> anyhow::Result<Vec<OwnedRow>> {
        let jobs = self.jobs.as_ref().expect("workers run until dropped");
        let share = records.len().div_ceil(self.threads.len()).max(1);
        let mut records = records.into_iter();
        let mut answers = Vec::new();
        loop {
            let chunk: Vec<(String, String)> = records.by_ref().take(share).collect();
            if chunk.is_empty() {
                break;
            }
            let (answer, rows) = tokio::sync::oneshot::channel();
            // Never waits: the queue holds a job a worker and a page is at most that many.
            jobs.send((chunk, answer))
                .map_err(|_| anyhow::anyhow!("the export's workers stopped"))?;
            answers.push(rows);
        }
        let mut rows = Vec::new();
        for answer in answers {
            rows.extend(
                answer
                    .await
                    .map_err(|_| anyhow::anyhow!("an export worker panicked"))??,
            );
        }
        Ok(rows)
    }
}

impl Drop for RowWorkers {
    fn drop(&mut self) {
        self.jobs.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A record's row of the records table: the record itself, without its parts, and their counts.
fn record_row(record: &StoredRecord, table: &mut TableWriter) -> anyhow::Result<Vec<Vec<u8>>> {
    let value: Value = serde_json::from_str(&record.document)?;
    let duration_ms = |value: &Value| {
        let at = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .and_then(|text| crate::model::DateTimeOffset::parse(text).ok())
        };
        Some((at("endDateTime")?.unix_ticks() - at("startDateTime")?.unix_ticks()) / 10_000)
    };
    let derived = json!({
        "callDurationMs": duration_ms(&value),
        "sessionCount": record.n_sessions,
        "participantCount": record.n_participants,
    });
    let row = Scopes::default()
        .with(Scope::Record, &value)
        .with(Scope::Derived, &derived);
    Ok(table.push(&row)?.into_iter().collect())
}

/// A member read as a model type, straight from the parsed tree; absent and null are `None`.
fn typed<T: serde::de::DeserializeOwned>(value: Option<&Value>) -> Result<Option<T>, serde_json::Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value).map(Some),
    }
}

fn items<'a>(value: &'a Value, name: &str) -> impl Iterator<Item = &'a Value> {
    value.get(name).and_then(Value::as_array).into_iter().flatten()
}

fn owned(columns: &[Column], row: &Scopes<'_>) -> OwnedRow {
    columns.iter().map(|column| column.cell(row).into_owned()).collect()
}

/// A record's rows of the sessions or streams table. Only what CQD's rules read is turned into
/// model types (a stream, a segment's endpoints, a media's networks; a session table needs the
/// whole record, for how each leg ended).
fn record_parts(id: &str, text: &str, what: What) -> anyhow::Result<Vec<OwnedRow>> {
    let columns = what.columns();
    let unreadable = |error: &dyn std::fmt::Display| anyhow::anyhow!("stored call record {id} does not parse: {error}");
    let value: Value = serde_json::from_str(text).map_err(|error| unreadable(&error))?;
    let conference = typed::<CallType>(value.get("type"))
        .map_err(|error| unreadable(&error))?
        .is_some_and(is_conference);
    let mut rows = Vec::new();
    if what == What::Sessions {
        let typed = crate::model::parse_call_record(text.as_bytes()).map_err(|error| unreadable(&error))?;
        let legs = QualityRows::of(&typed).legs;
        for (index, session) in items(&value, "sessions").enumerate() {
            let leg = legs.get(index);
            let facts = leg.map(|leg| &leg.call);
            let derived = json!({
                "segmentCount": session.get("segments").and_then(Value::as_array).map(Vec::len),
                "outcome": leg.map(|leg| leg.outcome.as_str()),
                "isConference": conference,
                "isPstn": facts.map(|f| f.pstn),
                "excludedByDefaultFilters": facts.map(|f| f.excluded),
                "firstIsCaller": facts.map(|f| f.first_is_caller),
                "callerIsServer": facts.map(|f| side_is_server(f, true)),
                "calleeIsServer": facts.map(|f| side_is_server(f, false)),
            });
            let row = Scopes::default()
                .with(Scope::Record, &value)
                .with(Scope::Session, session)
                .with(Scope::Derived, &derived);
            rows.push(owned(columns, &row));
        }
        return Ok(rows);
    }
    for session in items(&value, "sessions") {
        for segment in items(session, "segments") {
            let caller: Option<Endpoint> = typed(segment.get("caller")).map_err(|error| unreadable(&error))?;
            let callee: Option<Endpoint> = typed(segment.get("callee")).map_err(|error| unreadable(&error))?;
            for media in items(segment, "media") {
                let media_type = media.get("label").and_then(Value::as_str).and_then(MediaType::of_label);
                let network = |name: &str| typed::<NetworkInfo>(media.get(name)).map_err(|error| unreadable(&error));
                let (caller_network, callee_network) = (network("callerNetwork")?, network("calleeNetwork")?);
                let facts = CallFacts::of(
                    conference,
                    caller.as_ref(),
                    callee.as_ref(),
                    caller_network.as_ref(),
                    callee_network.as_ref(),
                );
                for stream in items(media, "streams") {
                    let typed_stream: MediaStream =
                        MediaStream::deserialize(stream).map_err(|error| unreadable(&error))?;
                    let verdict = media_type.map(|media_type| classify(media_type, &typed_stream));
                    let caller_to_callee = typed_stream.stream_direction == MediaStreamDirection::CallerToCallee;
                    let derived = json!({
                        "mediaType": media_type.map(MediaType::as_str),
                        "classification": verdict.as_ref().map(|v| v.classification.as_str()),
                        "poorDueTo": verdict.as_ref().map(|v| {
                            v.poor_due_to.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",")
                        }),
                        "firstToSecond": caller_to_callee == facts.first_is_caller,
                        "isConference": conference,
                        "isPstn": facts.pstn,
                        "excludedByDefaultFilters": facts.excluded,
                        "firstIsCaller": facts.first_is_caller,
                        "callerIsServer": side_is_server(&facts, true),
                        "calleeIsServer": side_is_server(&facts, false),
                    });
                    let row = Scopes::default()
                        .with(Scope::Record, &value)
                        .with(Scope::Session, session)
                        .with(Scope::Segment, segment)
                        .with(Scope::Media, media)
                        .with(Scope::Stream, stream)
                        .with(Scope::Derived, &derived);
                    rows.push(owned(columns, &row));
                }
            }
        }
    }
    Ok(rows)
}

/// Whether the caller's (or the callee's) side is a server, from CQD's First/Second facts.
fn side_is_server(facts: &CallFacts, caller: bool) -> bool {
    let first = facts.first_is_caller == caller;
    if first {
        facts.first.server
    } else {
        facts.second.server
    }
}

async fn export_log_rows(
    store: &dyn Store,
    request: &ExportRequest,
    kind: LogKind,
    format: Format,
    out: &mut Counted<'_>,
) -> anyhow::Result<()> {
    let mut query = LogRowQuery {
        kind,
        from: request.from.unwrap_or(Timestamp::from_ticks(i64::MIN)),
        to: request.to.unwrap_or(Timestamp::from_ticks(i64::MAX)),
        after: None,
        skip: 0,
        limit: LOG_PAGE,
    };
    let mut table = match format {
        Format::Parquet => Some(writer(request.what, format)?),
        Format::Ndjson => None,
    };
    let mut text = Vec::new();
    if query.from < query.to {
        loop {
            let page = store.list_log_rows(&request.tenant, &query).await?;
            for row in &page {
                out.summary.records += 1;
                match table.as_mut() {
                    Some(table) => {
                        let value: Value = serde_json::from_str(&row.document)?;
                        if let Some(bytes) = table.push(&Scopes::default().with(Scope::Record, &value))? {
                            out.write(bytes).await?;
                        }
                    }
                    None => {
                        out.summary.rows += 1;
                        text.extend_from_slice(row.document.as_bytes());
                        text.push(b'\n');
                        if text.len() >= TEXT_CHUNK {
                            out.write(std::mem::take(&mut text)).await?;
                        }
                    }
                }
            }
            match page.last() {
                Some(last) if page.len() == LOG_PAGE as usize => {
                    query.after = Some(RecordCursor {
                        start: last.start,
                        id: last.id.clone(),
                    });
                }
                _ => break,
            }
        }
    }
    match table {
        Some(table) => {
            out.summary.rows = table.rows();
            let tail = table.finish()?;
            out.write(tail).await
        }
        None => out.write(text).await,
    }
}
