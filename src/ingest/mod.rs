//! Ingest: validation of incoming call records, Graph's version rule applied through the store,
//! and per-line error reports. Shared by `POST /ingest/callRecords` and `callrecords import`.
//!
//! Never: HTTP status codes or headers (the api module maps our results), SQL.

use anyhow::Context as _;
use serde::Serialize;

use crate::generate::{self, GenerateOptions, Generated};
use crate::model::{self, to_json, CallRecord, DateTimeOffset, LogKind, RecordError};
use crate::store::{
    PreparedLogRow, PreparedRecord, Store, StoreError, StoreResult, TenantId, Timestamp, UpsertOutcome,
};

/// What one ingest stream carries: call records, or one kind of usage-log row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IngestKind {
    CallRecords,
    Log(LogKind),
}

impl IngestKind {
    /// Parses the names used by `import --kind` and the ingest paths.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "callRecords" => Some(Self::CallRecords),
            other => LogKind::from_name(other).map(Self::Log),
        }
    }

    /// The name `parse` reads.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CallRecords => "callRecords",
            Self::Log(kind) => kind.as_str(),
        }
    }

    pub(crate) const NAMES: &'static [&'static str] = &[
        "callRecords",
        "pstnCalls",
        "directRoutingCalls",
        "smsLogs",
        "pstnBlockedUsers",
        "pstnOnlineMeetingDialoutReport",
    ];
}

/// How many records one store transaction takes: large enough that the commit's fsync is paid
/// rarely, small enough that a batch's documents stay a few megabytes in memory.
pub(crate) const BATCH_SIZE: usize = 500;

/// At most this many line errors are listed in a report; the counts stay exact.
pub(crate) const MAX_REPORTED_ERRORS: usize = 1000;

/// One refused line of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// 1-based line number in the NDJSON body (1 for a single JSON document).
    pub line: u64,
    /// The record's id, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub path: String,
    pub reason: String,
}

/// What a batch did: counts by outcome, and the refused lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub stored: u64,
    pub replaced: u64,
    pub ignored: u64,
    pub rejected: u64,
    pub errors: Vec<LineError>,
    #[serde(rename = "errorsTruncated", skip_serializing_if = "std::ops::Not::not")]
    pub errors_truncated: bool,
    /// The streams of the records stored or replaced, by CQD's classification (for `/metrics`).
    #[serde(skip)]
    pub(crate) streams: crate::quality::StreamTally,
}

impl IngestReport {
    pub fn accepted(&self) -> u64 {
        self.stored + self.replaced + self.ignored
    }

    fn reject(&mut self, error: LineError) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        } else {
            self.errors_truncated = true;
        }
    }

    /// Counts what a committed batch came to.
    fn counted(&mut self, (outcomes, streams): (Vec<UpsertOutcome>, crate::quality::StreamTally)) {
        for outcome in outcomes {
            match outcome {
                UpsertOutcome::Stored => self.stored += 1,
                UpsertOutcome::Replaced => self.replaced += 1,
                UpsertOutcome::Ignored => self.ignored += 1,
            }
        }
        self.streams.add(&streams);
    }
}

/// Parses and checks one record's JSON, and makes it ready for the store.
pub fn prepare_record(json: &[u8], now: DateTimeOffset) -> Result<PreparedRecord, RecordError> {
    let record = model::parse_call_record(json)?;
    record.validate()?;
    Ok(prepare(record, now))
}

/// Splits a valid record into the documents the store keeps, filling derived properties.
pub fn prepare(mut record: CallRecord, now: DateTimeOffset) -> PreparedRecord {
    record.fill_derived(now);
    let quality = crate::quality::QualityRows::of(&record);
    let streams = crate::quality::StreamTally::of(&quality);
    let sessions = record.sessions.take().unwrap_or_default();
    let participants = record.participants_v2.take().unwrap_or_default();
    let (document, organizer_at) = record_document(&mut record);
    PreparedRecord {
        id: record.id.clone(),
        version: record.version,
        start: Timestamp::from(record.start_date_time),
        end: Timestamp::from(record.end_date_time),
        document,
        organizer_at,
        sessions: sessions
            .into_iter()
            .map(|mut session| {
                session.segments.get_or_insert_with(Vec::new);
                (session.id.clone(), to_json(&session))
            })
            .collect(),
        participants: participants
            .into_iter()
            .map(|participant| (participant.id.clone(), to_json(&participant)))
            .collect(),
        streams,
        quality,
        rewrite: false,
    }
}

/// The record's stored document (`sessions` and `participants_v2` already taken out; this takes
/// `organizer_v2` too), and where its `organizer_v2` member starts (0 when it has none).
/// `organizer_v2` is the last member `model::CallRecord` serializes once those two are gone, so
/// appending it to the rest writes the same text as serializing the whole record, and tells us
/// where it starts.
fn record_document(record: &mut CallRecord) -> (String, i64) {
    let Some(organizer) = record.organizer_v2.take() else {
        return (to_json(&*record), 0);
    };
    let mut document = to_json(&*record);
    let closing = document.pop();
    debug_assert_eq!(closing, Some('}'));
    if document.len() > 1 {
        document.push(',');
    }
    let organizer_at = document.len() as i64;
    document.push_str(r#""organizer_v2":"#);
    document.push_str(&to_json(&organizer));
    document.push('}');
    (document, organizer_at)
}

/// Best-effort id of a line that failed to parse, so the report can name the record.
fn sniff_id(json: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_slice::<IdOnly>(json).ok().map(|r| r.id)
}

/// Feeds records to the store in batches of `BATCH_SIZE`, keeping the report.
///
/// Lines are only collected on the caller's task; parsing and checking a batch (CPU work that
/// takes milliseconds for large records) runs on the blocking pool, so a large ingest never
/// stalls the requests that share the async runtime.
pub(crate) struct BatchIngest<'a> {
    store: &'a dyn Store,
    clock: &'a dyn crate::clock::Clock,
    tenant: &'a TenantId,
    kind: IngestKind,
    raw: Vec<(u64, Vec<u8>)>,
    raw_bytes: usize,
    /// A parsed batch waiting to be committed by the next flush (or by `finish`).
    ready: Option<ReadyBatch>,
    report: IngestReport,
}

#[derive(Default)]
struct ReadyBatch {
    records: Vec<PreparedRecord>,
    rows: Vec<PreparedLogRow>,
}

/// Commits a batch; the outcome of each record and row, and the streams of the records that
/// were stored or replaced.
async fn commit_batch(
    store: &dyn Store,
    tenant: &TenantId,
    kind: IngestKind,
    batch: ReadyBatch,
    clock: &dyn crate::clock::Clock,
) -> StoreResult<(Vec<UpsertOutcome>, crate::quality::StreamTally)> {
    let mut outcomes = Vec::new();
    let mut streams = crate::quality::StreamTally::default();
    if !batch.records.is_empty() {
        let recorded = store
            .upsert_call_records(tenant, &batch.records, clock.timestamp())
            .await?;
        for (record, outcome) in batch.records.iter().zip(&recorded) {
            if *outcome != UpsertOutcome::Ignored {
                streams.add(&record.streams);
            }
        }
        outcomes.extend(recorded);
    }
    if let (IngestKind::Log(log_kind), false) = (kind, batch.rows.is_empty()) {
        outcomes.extend(store.upsert_log_rows(tenant, log_kind, &batch.rows).await?);
    }
    Ok((outcomes, streams))
}

/// A batch is parsed and committed when it holds this many bytes, even before `BATCH_SIZE`
/// records, so that memory stays bounded for very large records.
pub(crate) const BATCH_BYTES: usize = 4 << 20;

enum Prepared {
    Record(Box<PreparedRecord>),
    Row(PreparedLogRow),
}

fn prepare_line(kind: IngestKind, json: &[u8], now: DateTimeOffset) -> Result<Prepared, RecordError> {
    match kind {
        IngestKind::CallRecords => prepare_record(json, now).map(|record| Prepared::Record(Box::new(record))),
        IngestKind::Log(log_kind) => model::parse_log_row(log_kind, json).map(|row| {
            Prepared::Row(PreparedLogRow {
                id: row.id,
                start: Timestamp::from(row.start),
                document: row.document,
            })
        }),
    }
}

impl<'a> BatchIngest<'a> {
    pub(crate) fn of_kind(
        store: &'a dyn Store,
        tenant: &'a TenantId,
        kind: IngestKind,
        clock: &'a dyn crate::clock::Clock,
    ) -> Self {
        Self {
            store,
            clock,
            tenant,
            kind,
            raw: Vec::new(),
            raw_bytes: 0,
            ready: None,
            report: IngestReport::default(),
        }
    }

    /// Takes one NDJSON line (blank lines are skipped). A bad line is reported, never fatal;
    /// only a store failure is an error, and batches committed before it stay committed.
    pub(crate) async fn push_line(&mut self, line: u64, json: &[u8]) -> StoreResult<()> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.push_owned_line(line, json.to_vec()).await
    }

    /// `push_line` for a line the caller already owns.
    pub(crate) async fn push_owned_line(&mut self, line: u64, json: Vec<u8>) -> StoreResult<()> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.raw_bytes += json.len();
        self.raw.push((line, json));
        if self.batch_is_full() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Reports a line that was longer than `limit` bytes; it was not read.
    pub(crate) fn push_oversized_line(&mut self, line: u64, limit: usize) {
        self.report.reject(LineError {
            line,
            id: None,
            path: ".".to_owned(),
            reason: format!("the line is longer than {limit} bytes"),
        });
    }

    pub(crate) fn report(&self) -> &IngestReport {
        &self.report
    }

    fn batch_is_full(&self) -> bool {
        self.raw.len() >= BATCH_SIZE || self.raw_bytes >= BATCH_BYTES
    }

    /// Parses the collected lines on the blocking pool while the previous batch commits, so a
    /// long ingest keeps both cores busy; the parsed batch waits in `ready` for the next flush.
    async fn flush(&mut self) -> StoreResult<()> {
        let lines = std::mem::take(&mut self.raw);
        self.raw_bytes = 0;
        let previous = self.ready.take();
        let kind = self.kind;
        let now = self.clock.now();
        let parse = async move {
            if lines.is_empty() {
                return Ok(Vec::new());
            }
            tokio::task::spawn_blocking(move || {
                lines
                    .into_iter()
                    .map(|(line, json)| {
                        prepare_line(kind, &json, now).map_err(|error| LineError {
                            line,
                            id: sniff_id(&json),
                            reason: if error.not_json {
                                format!("line {line} is not JSON: {}", error.reason)
                            } else {
                                error.reason
                            },
                            path: error.path,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|error| StoreError::Other(anyhow::anyhow!("parsing a batch panicked: {error}")))
        };
        let (store, tenant, clock) = (self.store, self.tenant, self.clock);
        let commit = async move {
            match previous {
                Some(batch) => commit_batch(store, tenant, kind, batch, clock).await.map(Some),
                None => Ok(None),
            }
        };
        let (parsed, committed) = tokio::join!(parse, commit);
        if let Some(committed) = committed? {
            self.report.counted(committed);
        }
        let mut batch = ReadyBatch::default();
        for item in parsed? {
            match item {
                Ok(Prepared::Record(record)) => batch.records.push(*record),
                Ok(Prepared::Row(row)) => batch.rows.push(row),
                Err(error) => self.report.reject(error),
            }
        }
        if !batch.records.is_empty() || !batch.rows.is_empty() {
            self.ready = Some(batch);
        }
        Ok(())
    }

    /// Commits every line taken so far; returns once they are durable. The ingest can go on.
    pub(crate) async fn commit_pending(&mut self) -> StoreResult<()> {
        self.flush().await?;
        if let Some(batch) = self.ready.take() {
            let committed = commit_batch(self.store, self.tenant, self.kind, batch, self.clock).await?;
            self.report.counted(committed);
        }
        Ok(())
    }

    /// Commits what is pending; returns once everything accepted is durable.
    pub(crate) async fn finish(mut self) -> StoreResult<IngestReport> {
        self.commit_pending().await?;
        Ok(self.report)
    }
}

/// What `ingest_generated` fed through ingest.
#[derive(Clone, Debug)]
pub struct GeneratedIngest {
    /// The call records' report; the usage-log rows' counts are logged.
    pub call_records: IngestReport,
    /// The call records as NDJSON: bytes of their lines, newlines included.
    pub call_record_bytes: u64,
}

impl IngestKind {
    /// The kind a generated item is ingested as.
    pub(crate) fn of_generated(item: &Generated) -> IngestKind {
        match item {
            Generated::CallRecord(_) => IngestKind::CallRecords,
            Generated::PstnCall(_) => IngestKind::Log(LogKind::PstnCall),
            Generated::DirectRoutingCall(_) => IngestKind::Log(LogKind::DirectRoutingCall),
            Generated::SmsLog(_) => IngestKind::Log(LogKind::SmsLog),
            Generated::PstnBlockedUser(_) => IngestKind::Log(LogKind::PstnBlockedUser),
            Generated::PstnOnlineMeetingDialout(_) => IngestKind::Log(LogKind::PstnOnlineMeetingDialout),
        }
    }
}

/// Runs the generator on a blocking thread and feeds everything it makes through ingest, each
/// kind in its own batches. Returns the call records' report; the log rows' counts are logged.
pub async fn ingest_generated(
    store: &dyn Store,
    tenant: &TenantId,
    options: GenerateOptions,
) -> anyhow::Result<GeneratedIngest> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(IngestKind, Vec<u8>)>(1024);
    let producer = tokio::task::spawn_blocking(move || {
        generate::generate(&options, |item| {
            let kind = IngestKind::of_generated(&item);
            // A closed channel means the consumer failed; its error is the one reported.
            let _ = sender.blocking_send((kind, serde_json::to_vec(item.value()).unwrap_or_default()));
        });
    });
    let kinds = [
        IngestKind::CallRecords,
        IngestKind::Log(LogKind::PstnCall),
        IngestKind::Log(LogKind::DirectRoutingCall),
        IngestKind::Log(LogKind::SmsLog),
        IngestKind::Log(LogKind::PstnBlockedUser),
        IngestKind::Log(LogKind::PstnOnlineMeetingDialout),
    ];
    let mut batches: Vec<BatchIngest> = kinds
        .iter()
        .map(|kind| BatchIngest::of_kind(store, tenant, *kind, &crate::clock::SystemClock))
        .collect();
    let mut line = 0;
    let mut call_record_bytes = 0;
    while let Some((kind, json)) = receiver.recv().await {
        line += 1;
        if kind == IngestKind::CallRecords {
            call_record_bytes += json.len() as u64 + 1;
        }
        let index = kinds.iter().position(|k| *k == kind).expect("every kind has a batch");
        batches[index].push_line(line, &json).await?;
    }
    producer.await.context("the generator thread panicked")?;
    let mut reports = Vec::with_capacity(kinds.len());
    for batch in batches {
        reports.push(batch.finish().await?);
    }
    for report in &reports {
        if let Some(error) = report.errors.first() {
            anyhow::bail!(
                "the generator made a record the model refuses (line {}): {}: {}",
                error.line,
                error.path,
                error.reason
            );
        }
    }
    tracing::info!(
        pstn_calls = reports[1].stored,
        direct_routing_calls = reports[2].stored,
        sms_logs = reports[3].stored,
        "generated usage-log rows"
    );
    Ok(GeneratedIngest {
        call_records: reports.swap_remove(0),
        call_record_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, GenerateOptions, Generated};

    /// The stored text is what serializing the whole record writes, and `organizer_at` points at
    /// the member the API annotates (api::call_records::write_record relies on both).
    #[test]
    fn the_organizer_offset_points_at_the_organizer_member() {
        let options = GenerateOptions {
            calls: 40,
            seed: 7,
            days: 3,
            until: time::macros::datetime!(2024-06-01 00:00 UTC),
        };
        let now = DateTimeOffset::parse("2024-06-02T00:00:00Z").unwrap();
        let mut records = Vec::new();
        generate(&options, |item| {
            if let Generated::CallRecord(value) = item {
                records.push(value);
            }
        });
        let mut without_organizer = records[0].clone();
        without_organizer.as_object_mut().unwrap().remove("organizer_v2");
        records.push(without_organizer);

        for value in records {
            let json = serde_json::to_vec(&value).unwrap();
            let prepared = prepare_record(&json, now).unwrap();
            let mut record = model::parse_call_record(&json).unwrap();
            record.fill_derived(now);
            record.sessions = None;
            record.participants_v2 = None;
            assert_eq!(prepared.document, to_json(&record));
            let members: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&prepared.document).unwrap();
            match usize::try_from(prepared.organizer_at).unwrap() {
                0 => assert!(!members.contains_key("organizer_v2")),
                at => {
                    assert!(prepared.document[at..].starts_with(r#""organizer_v2":{"#));
                    assert_eq!(members.keys().next_back().unwrap(), "organizer_v2");
                }
            }
        }
    }
}
