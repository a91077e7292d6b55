//! The embedded store: one SQLite file in WAL mode. One connection writes (SQLite admits one
//! writer at a time, and a single writer never meets SQLITE_BUSY on lock upgrade); a small pool
//! reads concurrently beside it. `synchronous=FULL` makes a commit durable before we acknowledge.
//!
//! The hot reads of one record and its sessions and participants go through `rusqlite` on the
//! blocking pool instead of sqlx: sqlx's SQLite driver runs each connection on a worker thread
//! and hands every row across threads, and those wake-ups were a third of the CPU of a GET with
//! its sessions. Here one call is one hop, whatever the number of rows.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::*;
use crate::model::{LogKind, SubscriptionScope};
use crate::quality::QualityRows;
use std::collections::{HashMap, HashSet};

pub struct SqliteStore {
    writer: SqlitePool,
    /// The most the database file may grow to, in bytes (0: as large as the disk allows).
    /// Every writer connection applies it as it opens; `set_max_size` changes it at run time.
    max_size: Arc<AtomicU64>,
    reader: SqlitePool,
    /// Analytics scans (`AnalyticsStore`), apart from `reader` so that a long one waits only
    /// behind another.
    analytics_reader: SqlitePool,
    hot_reader: HotReader,
    codec: Arc<codec::Codec>,
    tenant_keys: TenantKeys,
}

/// Takes the write lock at the start, so a transaction that reads before it writes never has to
/// upgrade its lock (an upgrade that another process blocks fails at once instead of waiting).
const BEGIN: &str = "BEGIN IMMEDIATE";

/// Connections analytics scans run on at once; more would only share the two cores.
const ANALYTICS_READ_CONNECTIONS: u32 = 2;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite's own ceiling on `max_page_count`, which "no limit" restores.
const UNLIMITED_PAGES: u64 = 4_294_967_294;

/// How much write-ahead log SQLite lets grow before the committing connection copies it into the
/// file. At SQLite's default (1,000 pages, 4 MB on 4 KB pages) nearly every 4 MB ingest batch paid
/// for a checkpoint and its fsync; at 64 MB they come several batches apart, and a page rewritten
/// by several batches is copied once. Set in pages, so it depends on the file's page size.
const WAL_BYTES_BEFORE_CHECKPOINT: i64 = 64 << 20;

/// Sets the checkpoint interval of a writer connection (`WAL_BYTES_BEFORE_CHECKPOINT`).
async fn apply_checkpoint_interval(connection: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *connection)
        .await?;
    let pages = WAL_BYTES_BEFORE_CHECKPOINT / page_size.max(512);
    sqlx::query(&format!("PRAGMA wal_autocheckpoint = {pages}"))
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Applies the size limit to one writer connection. A limit below the file's current size
/// leaves it at the current size (SQLite's rule), so the file never has to shrink.
async fn apply_max_size(connection: &mut sqlx::SqliteConnection, max_size: u64) -> Result<(), sqlx::Error> {
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut *connection)
        .await?;
    let pages = match max_size {
        0 => UNLIMITED_PAGES,
        bytes => (bytes / page_size.max(512) as u64).clamp(1, UNLIMITED_PAGES),
    };
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&mut *connection)
        .await?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file in an existing directory and applies pending
    /// migrations.
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        Self::open_with(path, &StoreOptions::default()).await
    }

    /// `open`, with the file capped at `options.sqlite_max_size` bytes (past it, writes fail as
    /// if the disk were full, `StoreError::Full`, and reads go on).
    pub(crate) async fn open_with(path: &str, store_options: &StoreOptions) -> anyhow::Result<Self> {
        let max_size = Arc::new(AtomicU64::new(store_options.sqlite_max_size.unwrap_or(0)));
        // The file is created, its directory is not: a mistyped path should be an error rather
        // than a new empty store in a new directory.
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                anyhow::bail!(
                    "the directory {} of the SQLite file {path} does not exist; create it first",
                    parent.display()
                );
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .with_context(|| format!("parsing the SQLite path {path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 8 MB a connection, seven connections: the OS page cache holds the rest of a warm
            // store, shared and outside our resident set (32 MB each cost 160 MB of RSS).
            .pragma("cache_size", "-8000")
            // For a store created now (SQLite fixes the page size at creation): most parts of a
            // record's sessions are a few kilobytes compressed, and on 4 KB pages a quarter of
            // them spilled into overflow pages, half of whose last page was left empty.
            .page_size(16384);
        let limit = max_size.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_connect(move |connection, _| {
                let limit = limit.clone();
                Box::pin(async move {
                    apply_checkpoint_interval(connection).await?;
                    apply_max_size(connection, limit.load(Ordering::Relaxed)).await
                })
            })
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening the SQLite file {path}"))?;
        MIGRATOR
            .run(&writer)
            .await
            .with_context(|| format!("migrating the SQLite file {path}"))?;
        // The colder reads (usage logs, subscriptions, keys); the hot ones have `HotReader`.
        let reader = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().read_only(true))
            .await
            .with_context(|| format!("opening read connections to {path}"))?;
        let analytics_reader = SqlitePoolOptions::new()
            .max_connections(ANALYTICS_READ_CONNECTIONS)
            // A scan over a large store's rows can take tens of seconds (BENCHMARKS.md).
            .acquire_timeout(Duration::from_secs(120))
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("opening analytics read connections to {path}"))?;
        let codec = Arc::new(
            load_codec(&writer)
                .await
                .with_context(|| format!("opening the SQLite file {path}"))?,
        );
        let hot_reader = HotReader::open(path, codec.clone());
        let store = Self {
            writer,
            max_size,
            reader,
            analytics_reader,
            hot_reader,
            codec,
            tenant_keys: TenantKeys::default(),
        };
        store
            .convert_previous_layout(store_options.conversion_batch)
            .await
            .with_context(|| format!("converting the SQLite file {path} to the compact layout"))?;
        store
            .add_missing_analytics_rows(store_options.conversion_batch)
            .await
            .with_context(|| format!("adding analytics rows to the records of the SQLite file {path}"))?;
        analytics::rebuild_pending_rollups(&store)
            .await
            .with_context(|| format!("summing the analytics rollups of the SQLite file {path}"))?;
        Ok(store)
    }

    /// Writes the analytics rows of every record stored before they existed, `batch` records a
    /// transaction, in key order from where the last open stopped (the pending fact's value);
    /// removes the fact when done. Each record's old rows go first, so doing one twice is
    /// harmless.
    async fn add_missing_analytics_rows(&self, batch: u32) -> anyhow::Result<()> {
        loop {
            let Some(next): Option<i64> = sqlx::query_scalar("SELECT value FROM store_fact WHERE name = ?")
                .bind(analytics::ROWS_PENDING)
                .fetch_optional(&self.writer)
                .await?
            else {
                return Ok(());
            };
            let records: Vec<(i64, i64, i64, String, Vec<u8>)> = sqlx::query_as(
                "SELECT key, tenant_key, start_ticks, id, document FROM record WHERE key >= ? ORDER BY key LIMIT ?",
            )
            .bind(next)
            .bind(i64::from(batch))
            .fetch_all(&self.writer)
            .await?;
            let Some(last) = records.last().map(|(key, ..)| *key) else {
                let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
                sqlx::query("DELETE FROM store_fact WHERE name = ?")
                    .bind(analytics::ROWS_PENDING)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!("every stored record has its analytics rows");
                return Ok(());
            };
            let mut all_rows = Vec::with_capacity(records.len());
            for (key, tenant_key, _, id, document) in &records {
                let parts: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT body FROM record_part WHERE tenant_key = ? AND record_key = ? AND kind = ? ORDER BY first_ordinal",
                )
                .bind(tenant_key)
                .bind(key)
                .bind(codec::PartKind::Sessions.code())
                .fetch_all(&self.writer)
                .await?;
                let document = self.codec.decode(document)?;
                let mut sessions = Vec::new();
                for part in &parts {
                    sessions.extend(self.codec.decode_part(part)?.into_iter().map(|(_, session)| session));
                }
                all_rows.push(analytics::rows_of_stored(id, &document, sessions));
            }
            let by_tenant: Vec<(i64, &QualityRows)> = records
                .iter()
                .zip(&all_rows)
                .map(|((_, tenant_key, ..), rows)| (*tenant_key, rows))
                .collect();
            let keys = analytics::resolve_dimensions_by_tenant(self, &by_tenant).await?;
            // Read again under the write lock: the records a batch ingested meanwhile replaced
            // are skipped here, their new rows written with them.
            let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
            for ((key, tenant_key, start, ..), rows) in records.iter().zip(&all_rows) {
                let still_there: Option<i64> = sqlx::query_scalar("SELECT key FROM record WHERE key = ?")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if still_there.is_none() {
                    continue;
                }
                let (record, start) = (analytics::RecordRef::Key(*key), Timestamp::from_ticks(*start));
                let statements = analytics::delete_rows(sql::Dialect::Sqlite, *tenant_key, record, start)
                    .into_iter()
                    .chain(analytics::added_rows(
                        sql::Dialect::Sqlite,
                        *tenant_key,
                        &[(record, start, rows)],
                        &keys[tenant_key],
                    )?);
                for statement in statements {
                    bound(&statement).execute(&mut *tx).await?;
                }
            }
            sqlx::query("UPDATE store_fact SET value = ? WHERE name = ?")
                .bind(last + 1)
                .bind(analytics::ROWS_PENDING)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
    }

    /// Moves records kept in the previous layout (a row per record, session and participant, as
    /// text) into the compact one, `batch` records per transaction, each of which inserts them
    /// compressed and deletes their old rows together: an interruption at any point leaves every
    /// record in exactly one layout, and the next open carries on. Drops the old tables once they
    /// are empty. Returns how many records it moved.
    pub(crate) async fn convert_previous_layout(&self, batch: u32) -> anyhow::Result<u64> {
        let mut converted = 0;
        loop {
            let previous_layout: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'call_record')",
            )
            .fetch_one(&self.writer)
            .await?;
            if !previous_layout {
                return Ok(converted);
            }
            let moved = self.convert_batch(batch).await?;
            if moved == 0 {
                let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
                for table in ["session", "participant", "call_record"] {
                    sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                if converted > 0 {
                    tracing::info!(
                        converted,
                        "the compact layout holds every record; the previous tables are gone"
                    );
                }
                return Ok(converted);
            }
            converted += moved;
            tracing::info!(converted, "moved call records to the compact layout");
        }
    }

    /// Converts up to `batch` records of the previous layout, in one transaction per tenant among
    /// them.
    async fn convert_batch(&self, batch: u32) -> anyhow::Result<u64> {
        let rows: Vec<PreviousRecordRow> = sqlx::query_as(
            "SELECT tenant_id, id, version, start_ticks, end_ticks, stored_at_ticks, organizer_at, document
             FROM call_record ORDER BY tenant_id, id LIMIT ?",
        )
        .bind(i64::from(batch))
        .fetch_all(&self.writer)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut by_tenant: Vec<PreviousRecords> = Vec::new();
        for PreviousRecordRow {
            tenant_id,
            id,
            version,
            start_ticks: start,
            end_ticks: end,
            stored_at_ticks: stored_at,
            organizer_at,
            document,
        } in rows
        {
            let mut children = Vec::new();
            for table in ["session", "participant"] {
                let rows: Vec<(String, String)> = sqlx::query_as(&format!(
                    "SELECT id, document FROM {table} WHERE tenant_id = ? AND call_record_id = ? ORDER BY ordinal"
                ))
                .bind(&tenant_id)
                .bind(&id)
                .fetch_all(&self.writer)
                .await?;
                children.push(rows);
            }
            let participants = children.pop().unwrap_or_default();
            let sessions = children.pop().unwrap_or_default();
            let record = PreparedRecord {
                id,
                version,
                start: Timestamp::from_ticks(start),
                end: Timestamp::from_ticks(end),
                document,
                organizer_at: organizer_at.unwrap_or(0),
                sessions,
                participants,
                streams: Default::default(),
                quality: Default::default(),
                rewrite: false,
            };
            if by_tenant.last().is_none_or(|group| group.tenant.as_str() != tenant_id) {
                by_tenant.push(PreviousRecords {
                    tenant: TenantId::from_stored(tenant_id),
                    records: Vec::new(),
                    kept: Vec::new(),
                });
            }
            if let Some(group) = by_tenant.last_mut() {
                group.records.push(record);
                group.kept.push((organizer_at, Timestamp::from_ticks(stored_at)));
            }
        }
        let mut moved = 0;
        for PreviousRecords { tenant, records, kept } in by_tenant {
            // A dictionary trained here dates from when the records it learnt from were stored.
            let compressed = compress_for_storage(&self.codec, self, &records, kept[0].1).await?;
            let tenant_key = self.tenant_key_for_writing(&tenant).await?;
            // Converted records get their analytics rows afterwards, as any record stored before
            // the rows existed.
            let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
            for ((record, (organizer_at, stored_at)), compressed) in records.iter().zip(&kept).zip(&compressed) {
                let row = RecordWrite {
                    prepared: record,
                    organizer_at: *organizer_at,
                    stored_at: *stored_at,
                    compressed,
                };
                insert_record(&mut tx, tenant_key, &row).await?;
                for table in ["session", "participant"] {
                    sqlx::query(&format!(
                        "DELETE FROM {table} WHERE tenant_id = ? AND call_record_id = ?"
                    ))
                    .bind(tenant.as_str())
                    .bind(&record.id)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("DELETE FROM call_record WHERE tenant_id = ? AND id = ?")
                    .bind(tenant.as_str())
                    .bind(&record.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            moved += records.len() as u64;
        }
        Ok(moved)
    }

    async fn tenant_key_for_writing(&self, tenant: &TenantId) -> StoreResult<i64> {
        sql::tenant_key_for_writing(self, &self.tenant_keys, tenant).await
    }

    /// A record's children of one kind, as `read` wants them (none for a tenant that never
    /// stored a record).
    async fn children(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        kind: codec::PartKind,
        read: ChildRead,
    ) -> StoreResult<Vec<StoredChild>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(Vec::new());
        };
        let call_record_id = call_record_id.to_owned();
        self.hot_reader
            .read(move |connection, codec| read_children(connection, codec, tenant_key, &call_record_id, kind, &read))
            .await
    }

    /// The tenant's key, or `None` for a tenant that never stored a record.
    async fn tenant_key(&self, tenant: &TenantId) -> StoreResult<Option<i64>> {
        sql::tenant_key(self, &self.tenant_keys, tenant).await
    }

    /// Changes the size limit (`None`: no limit) for the writer connection and any it is
    /// replaced by. Writes refused as full succeed again once the limit is above the file.
    pub async fn set_max_size(&self, max_size: Option<u64>) -> StoreResult<()> {
        let bytes = max_size.unwrap_or(0);
        self.max_size.store(bytes, Ordering::Relaxed);
        let mut connection = self.writer.acquire().await?;
        apply_max_size(&mut connection, bytes).await?;
        Ok(())
    }
}

/// Read-only rusqlite connections, used on the blocking pool.
#[derive(Clone)]
struct HotReader {
    pool: r2d2::Pool<r2d2_sqlite::SqliteConnectionManager>,
    codec: Arc<codec::Codec>,
}

/// Connections of the hot reader: as many as cores are likely to use them at once.
const HOT_READ_CONNECTIONS: u32 = 4;

impl HotReader {
    fn open(path: &str, codec: Arc<codec::Codec>) -> Self {
        use rusqlite::OpenFlags;
        let manager = r2d2_sqlite::SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
            .with_init(|connection| {
                connection.busy_timeout(Duration::from_secs(30))?;
                // The same 8 MB page cache as sqlx's readers (see `open`).
                connection.execute_batch("PRAGMA cache_size = -8000; PRAGMA query_only = ON;")
            });
        // Connections are opened when first needed, not here: `open` runs on the async runtime.
        let pool = r2d2::Pool::builder()
            .max_size(HOT_READ_CONNECTIONS)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(manager);
        Self { pool, codec }
    }

    /// Runs `read` on a pooled connection on the blocking pool, where documents are decoded too.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection, &codec::Codec) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let pool = self.pool.clone();
        let codec = self.codec.clone();
        tokio::task::spawn_blocking(move || {
            let connection = pool
                .get()
                .map_err(|error| StoreError::Unavailable(anyhow::Error::new(error)))?;
            read(&connection, &codec)
        })
        .await
        .map_err(|error| StoreError::Other(anyhow::anyhow!("a store read stopped: {error}")))?
    }
}

fn store_error(error: rusqlite::Error) -> StoreError {
    let class = error.sqlite_error().map_or(FailureClass::Other, |failure| {
        FailureClass::of_sqlite_code(failure.extended_code)
    });
    StoreError::classified(class, anyhow::Error::new(error))
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        store_error(error)
    }
}

/// Maps the columns of `sql::RECORD_COLUMNS`.
fn record_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EncodedRecord> {
    Ok(EncodedRecord {
        id: row.get(0)?,
        start: row.get(1)?,
        document: row.get(2)?,
        n_sessions: row.get(3)?,
        n_participants: row.get(4)?,
        organizer_at: row.get(5)?,
    })
}

/// What a child read wants of a record's parts of one kind.
#[derive(Clone)]
enum ChildRead {
    /// Up to `limit` children after `after` (all, for `None`), in order.
    Page { after: Option<i64>, limit: u32 },
    /// The child with this id.
    Id(String),
}

/// Reads a record's children of one kind from its parts, decoding only the parts it needs.
fn read_children(
    connection: &rusqlite::Connection,
    codec: &codec::Codec,
    tenant_key: i64,
    record_id: &str,
    kind: codec::PartKind,
    read: &ChildRead,
) -> StoreResult<Vec<StoredChild>> {
    let first_part = match read {
        ChildRead::Page { after: Some(after), .. } => kind.part_start(after + 1),
        _ => 0,
    };
    let mut statement = connection.prepare_cached(
        "SELECT p.first_ordinal, p.body FROM record r
         JOIN record_part p ON p.tenant_key = r.tenant_key AND p.record_key = r.key
         WHERE r.tenant_key = ?1 AND r.id = ?2 AND p.kind = ?3 AND p.first_ordinal >= ?4
         ORDER BY p.first_ordinal",
    )?;
    let mut parts = statement.query(rusqlite::params![tenant_key, record_id, kind.code(), first_part])?;
    let mut children = Vec::new();
    while let Some(part) = parts.next()? {
        let first_ordinal: i64 = part.get(0)?;
        let body = part.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        let items = codec.decode_part(body).map_err(codec_failure)?;
        for (offset, (id, document)) in items.into_iter().enumerate() {
            let ordinal = first_ordinal + offset as i64;
            match read {
                ChildRead::Page { after, limit } => {
                    if after.is_some_and(|after| ordinal <= after) {
                        continue;
                    }
                    children.push(StoredChild { ordinal, document });
                    if children.len() >= *limit as usize {
                        return Ok(children);
                    }
                }
                ChildRead::Id(wanted) => {
                    if id == *wanted {
                        return Ok(vec![StoredChild { ordinal, document }]);
                    }
                }
            }
        }
    }
    Ok(children)
}

/// A record about to be written: what ingest prepared, as compressed, with what the row keeps
/// beside it.
struct RecordWrite<'a> {
    prepared: &'a PreparedRecord,
    /// `None` only for records converted from a layout that did not know it.
    organizer_at: Option<i64>,
    stored_at: Timestamp,
    compressed: &'a codec::CompressedRecord,
}

/// Inserts a record, its parts and its participant references, and answers its key. Its
/// analytics rows follow with `analytics::added_rows`, a batch at a time.
async fn insert_record(tx: &mut sqlx::SqliteConnection, tenant_key: i64, row: &RecordWrite<'_>) -> StoreResult<i64> {
    let record = row.prepared;
    let key: i64 = sqlx::query_scalar(
        "INSERT INTO record (tenant_key, id, version, start_ticks, end_ticks, n_sessions, n_participants, stored_at_ticks,
                             organizer_at, document)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING key",
    )
    .bind(tenant_key)
    .bind(&record.id)
    .bind(record.version)
    .bind(record.start)
    .bind(record.end)
    .bind(record.sessions.len() as i64)
    .bind(record.participants.len() as i64)
    .bind(row.stored_at)
    .bind(row.organizer_at)
    .bind(&row.compressed.document)
    .fetch_one(&mut *tx)
    .await?;
    for part in &row.compressed.parts {
        sqlx::query(
            "INSERT INTO record_part (tenant_key, record_key, kind, first_ordinal, body) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(tenant_key)
        .bind(key)
        .bind(part.kind.code())
        .bind(part.first_ordinal)
        .bind(&part.body)
        .execute(&mut *tx)
        .await?;
    }
    // SQLite allows 32,766 bound values a statement; 4 a reference keeps chunks well under.
    for chunk in record.participants.chunks(1000) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO participant_ref (tenant_key, participant_id, start_ticks, record_key) ",
        );
        insert.push_values(chunk, |mut row, (id, _)| {
            row.push_bind(tenant_key)
                .push_bind(id)
                .push_bind(record.start)
                .push_bind(key);
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(key)
}

/// Deletes the record with `key` and start `start`, with its parts and participant references
/// (whose ids are read from its participant parts, the one place they are kept).
async fn delete_record(
    tx: &mut sqlx::SqliteConnection,
    codec: &codec::Codec,
    tenant_key: i64,
    key: i64,
    start: i64,
) -> StoreResult<()> {
    let parts: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body FROM record_part WHERE tenant_key = ? AND record_key = ? AND kind = ?")
            .bind(tenant_key)
            .bind(key)
            .bind(codec::PartKind::Participants.code())
            .fetch_all(&mut *tx)
            .await?;
    for part in parts {
        for (participant_id, _) in codec.decode_part(&part).map_err(codec_failure)? {
            sqlx::query(
                "DELETE FROM participant_ref WHERE tenant_key = ? AND participant_id = ? AND start_ticks = ? AND record_key = ?",
            )
            .bind(tenant_key)
            .bind(participant_id)
            .bind(start)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
    }
    let rows = analytics::delete_rows(
        sql::Dialect::Sqlite,
        tenant_key,
        analytics::RecordRef::Key(key),
        Timestamp::from_ticks(start),
    );
    for statement in &rows {
        bound(statement).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM record_part WHERE tenant_key = ? AND record_key = ?")
        .bind(tenant_key)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM record WHERE key = ?")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A row of the previous layout's `call_record` table.
#[derive(sqlx::FromRow)]
struct PreviousRecordRow {
    tenant_id: String,
    id: String,
    version: i64,
    start_ticks: i64,
    end_ticks: i64,
    stored_at_ticks: i64,
    organizer_at: Option<i64>,
    document: String,
}

/// One tenant's records of the previous layout on their way to the compact one, with what each
/// keeps that `PreparedRecord` does not carry: its organizer offset (unknown for the oldest) and
/// its time of storage.
struct PreviousRecords {
    tenant: TenantId,
    records: Vec<PreparedRecord>,
    kept: Vec<(Option<i64>, Timestamp)>,
}

/// The store's dictionaries, checked (`store::checked_dictionaries`).
async fn load_codec(pool: &SqlitePool) -> anyhow::Result<codec::Codec> {
    let rows: Vec<DictionaryRow> = sqlx::query_as(sql::DICTIONARIES).fetch_all(pool).await?;
    let issued: Option<i64> = sqlx::query_scalar(sql::DICTIONARIES_ISSUED)
        .fetch_optional(pool)
        .await?;
    Ok(codec::Codec::with_dictionaries(&checked_dictionaries(rows, issued)?))
}

#[async_trait]
impl DictionaryStore for SqliteStore {
    async fn add_dictionary(
        &self,
        kind: codec::DocumentKind,
        trained: Vec<u8>,
        now: Timestamp,
    ) -> StoreResult<codec::StoredDictionary> {
        // The one writer connection takes the write lock at BEGIN, so ids are taken in turn.
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        let id: i64 = sqlx::query_scalar(sql::NEXT_DICTIONARY_ID).fetch_one(&mut *tx).await?;
        let id = u32::try_from(id).map_err(|_| StoreError::Other(anyhow::anyhow!("dictionary ids are exhausted")))?;
        let dictionary = codec::StoredDictionary::new(id, kind, trained, now);
        for statement in sql::insert_dictionary(sql::Dialect::Sqlite, &dictionary) {
            bound(&statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(dictionary)
    }
}

/// The tenant's unexpired subscriptions, read inside the ingest transaction so that the
/// notifications it plans commit (or roll back) with the records.
async fn active_scopes(
    tx: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Vec<(String, SubscriptionScope)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, wants_created, wants_updated, participant_ids FROM subscription WHERE tenant_id = ? AND expiration_ticks > ?
         ORDER BY id",
    )
    .bind(tenant.as_str())
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|row| {
            let participant_ids: Option<String> = row.try_get("participant_ids")?;
            Ok((
                row.try_get("id")?,
                SubscriptionScope {
                    created: row.try_get("wants_created")?,
                    updated: row.try_get("wants_updated")?,
                    participant_ids: participant_ids.and_then(|text| serde_json::from_str(&text).ok()),
                },
            ))
        })
        .collect()
}

fn stored_subscription(row: &sqlx::sqlite::SqliteRow) -> Result<StoredSubscription, sqlx::Error> {
    let participant_ids: Option<String> = row.try_get("participant_ids")?;
    Ok(StoredSubscription {
        id: row.try_get("id")?,
        expiration: row.try_get("expiration_ticks")?,
        scope: SubscriptionScope {
            created: row.try_get("wants_created")?,
            updated: row.try_get("wants_updated")?,
            participant_ids: participant_ids.and_then(|text| serde_json::from_str(&text).ok()),
        },
        document: row.try_get("document")?,
    })
}

/// A list of texts as SQLite keeps it: a JSON array in a text column.
fn json_text_list(list: &Option<Vec<String>>) -> Option<String> {
    list.as_deref().map(json_list)
}

/// A list bound as SQLite takes one: a JSON array, which `json_each` reads.
fn json_list<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("a list of plain values serializes")
}

/// The values of a statement from `sql`, as rusqlite binds them.
fn rusqlite_values(statement: &sql::Statement) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    statement
        .values
        .iter()
        .map(|value| match value {
            sql::SqlValue::Text(text) => Value::Text(text.clone()),
            sql::SqlValue::OptionalText(text) => text.clone().map_or(Value::Null, Value::Text),
            sql::SqlValue::Integer(integer) => Value::Integer(*integer),
            sql::SqlValue::OptionalInteger(integer) => integer.map_or(Value::Null, Value::Integer),
            sql::SqlValue::Bool(value) => Value::Integer(i64::from(*value)),
            sql::SqlValue::TextList(list) => json_text_list(list).map_or(Value::Null, Value::Text),
            sql::SqlValue::IntegerList(list) => Value::Text(json_list(list)),
            sql::SqlValue::OptionalIntegerList(list) => Value::Text(json_list(list)),
            sql::SqlValue::BoolList(list) => Value::Text(json_list(list)),
            sql::SqlValue::OptionalTextList(list) => Value::Text(json_list(list)),
            sql::SqlValue::Bytes(bytes) => Value::Blob(bytes.clone()),
        })
        .collect()
}

/// A statement from `sql`, with its values bound, for sqlx.
fn bound(statement: &sql::Statement) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    statement.values.iter().fold(
        sqlx::query(&statement.sql).persistent(!statement.one_off),
        |query, value| match value {
            sql::SqlValue::Text(text) => query.bind(text.as_str()),
            sql::SqlValue::OptionalText(text) => query.bind(text.as_deref()),
            sql::SqlValue::Integer(integer) => query.bind(*integer),
            sql::SqlValue::OptionalInteger(integer) => query.bind(*integer),
            sql::SqlValue::Bool(value) => query.bind(*value),
            sql::SqlValue::TextList(list) => query.bind(json_text_list(list)),
            sql::SqlValue::IntegerList(list) => query.bind(json_list(list)),
            sql::SqlValue::OptionalIntegerList(list) => query.bind(json_list(list)),
            sql::SqlValue::BoolList(list) => query.bind(json_list(list)),
            sql::SqlValue::OptionalTextList(list) => query.bind(json_list(list)),
            sql::SqlValue::Bytes(bytes) => query.bind(bytes.as_slice()),
        },
    )
}

#[async_trait]
impl CallRecordStore for SqliteStore {
    #[tracing::instrument(skip_all, fields(n_records = batch.len()))]
    async fn upsert_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
        now: Timestamp,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let compressed = compress_for_storage(&self.codec, self, batch, now).await?;
        let tenant_key = self.tenant_key_for_writing(tenant).await?;
        let rows: Vec<&QualityRows> = batch.iter().map(|record| &record.quality).collect();
        let dimensions = analytics::resolve_dimensions(self, tenant_key, &rows).await?;
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        let scopes = active_scopes(&mut tx, tenant, now).await?;
        let mut stored = HashMap::new();
        let mut keys = HashMap::new();
        let mut looked_up = HashSet::new();
        for record in batch {
            if !looked_up.insert(record.id.as_str()) {
                continue;
            }
            let existing: Option<(i64, i64, i64)> =
                sqlx::query_as("SELECT key, version, start_ticks FROM record WHERE tenant_key = ? AND id = ?")
                    .bind(tenant_key)
                    .bind(&record.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((key, version, start)) = existing {
                stored.insert(record.id.clone(), (version, start));
                keys.insert(record.id.as_str(), key);
            }
        }
        let plan = rules::plan_upsert(&stored, batch);
        for (id, start) in &plan.replaces {
            delete_record(&mut tx, &self.codec, tenant_key, keys[id.as_str()], *start).await?;
        }
        let mut written = Vec::with_capacity(plan.writes.len());
        for index in plan.writes.iter().copied() {
            rules::refuse_repeated_ids(&batch[index])?;
            let row = RecordWrite {
                prepared: &batch[index],
                organizer_at: Some(batch[index].organizer_at),
                stored_at: now,
                compressed: &compressed[index],
            };
            let key = insert_record(&mut tx, tenant_key, &row).await?;
            written.push((
                analytics::RecordRef::Key(key),
                batch[index].start,
                &batch[index].quality,
            ));
        }
        for statement in analytics::added_rows(sql::Dialect::Sqlite, tenant_key, &written, &dimensions)? {
            bound(&statement).execute(&mut *tx).await?;
        }
        for planned in rules::plan_notifications(&scopes, batch, &plan.outcomes) {
            sqlx::query(
                "INSERT INTO outbox (tenant_id, subscription_id, event, call_record_id, created_ticks, due_ticks)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(tenant.as_str())
            .bind(planned.subscription_id)
            .bind(planned.change.as_str())
            .bind(planned.record_id)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    async fn list_call_records(
        &self,
        tenant: &TenantId,
        selection: &RecordSelection,
        cursor: Option<&RecordCursor>,
        limit: u32,
    ) -> StoreResult<Vec<StoredRecord>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(Vec::new());
        };
        if selection.is_empty_range() {
            return Ok(Vec::new());
        }
        let read = sql::SelectionRead::Page { cursor, limit };
        let statement = sql::selection_statement(sql::Dialect::Sqlite, tenant_key, selection, read);
        let values = rusqlite_values(&statement);
        self.hot_reader
            .read(move |connection, codec| {
                let rows = connection
                    .prepare_cached(&statement.sql)?
                    .query_map(rusqlite::params_from_iter(values), record_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.iter()
                    .map(|row| row.decode(codec).map_err(codec_failure))
                    .collect()
            })
            .await
    }

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(0);
        };
        if selection.is_empty_range() {
            return Ok(0);
        }
        let read = sql::SelectionRead::Count;
        let statement = sql::selection_statement(sql::Dialect::Sqlite, tenant_key, selection, read);
        let values = rusqlite_values(&statement);
        self.hot_reader
            .read(move |connection, _| {
                Ok(connection
                    .prepare_cached(&statement.sql)?
                    .query_row(rusqlite::params_from_iter(values), |row| row.get(0))?)
            })
            .await
    }

    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
    ) -> StoreResult<Option<StoredRecord>> {
        Ok(self
            .get_call_record_with_sessions(tenant, id, visible_from, 0)
            .await?
            .map(|(record, _)| record))
    }

    async fn get_call_record_with_sessions(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
        limit: u32,
    ) -> StoreResult<Option<(StoredRecord, Vec<StoredChild>)>> {
        use rusqlite::OptionalExtension;
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(None);
        };
        let id = id.to_owned();
        let visible_from = visible_from.unwrap_or(Timestamp::from_ticks(i64::MIN));
        self.hot_reader
            .read(move |connection, codec| {
                // One read transaction: one snapshot of the WAL for the record and its parts.
                let snapshot = connection.unchecked_transaction()?;
                let record = snapshot
                    .prepare_cached(&format!(
                        "SELECT {} FROM record r WHERE r.tenant_key = ?1 AND r.id = ?2 AND r.start_ticks >= ?3",
                        sql::RECORD_COLUMNS
                    ))?
                    .query_row(rusqlite::params![tenant_key, id, visible_from], record_row)
                    .optional()?;
                let Some(record) = record else {
                    return Ok(None);
                };
                let sessions = if limit == 0 {
                    Vec::new()
                } else {
                    let page = ChildRead::Page { after: None, limit };
                    read_children(&snapshot, codec, tenant_key, &id, codec::PartKind::Sessions, &page)?
                };
                snapshot.finish()?;
                Ok(Some((record.decode(codec).map_err(codec_failure)?, sessions)))
            })
            .await
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let read = ChildRead::Page {
            after: after_ordinal,
            limit,
        };
        self.children(tenant, call_record_id, codec::PartKind::Sessions, read)
            .await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let read = ChildRead::Id(session_id.to_owned());
        let found = self
            .children(tenant, call_record_id, codec::PartKind::Sessions, read)
            .await?;
        Ok(found.into_iter().next())
    }

    async fn list_participants(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let read = ChildRead::Page {
            after: after_ordinal,
            limit,
        };
        self.children(tenant, call_record_id, codec::PartKind::Participants, read)
            .await
    }

    async fn get_participant(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let read = ChildRead::Id(participant_id.to_owned());
        let found = self
            .children(tenant, call_record_id, codec::PartKind::Participants, read)
            .await?;
        Ok(found.into_iter().next())
    }
}

#[async_trait]
impl UsageLogStore for SqliteStore {
    #[tracing::instrument(skip_all, fields(kind = kind.as_str(), n_rows = batch.len()))]
    async fn upsert_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for row in batch {
            let inserted = sqlx::query(
                "INSERT INTO log_row (tenant_id, kind, id, start_ticks, document) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, kind, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(&row.id)
            .bind(row.start)
            .bind(&row.document)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            outcomes.push(if inserted == 1 {
                UpsertOutcome::Stored
            } else {
                UpsertOutcome::Ignored
            });
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn list_log_rows(&self, tenant: &TenantId, query: &LogRowQuery) -> StoreResult<Vec<StoredLogRow>> {
        let statement = sql::log_rows_statement(sql::Dialect::Sqlite, tenant, query);
        let rows = bound(&statement).fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(StoredLogRow {
                    id: row.try_get("id")?,
                    start: row.try_get("start_ticks")?,
                    document: row.try_get("document")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    #[tracing::instrument(skip(self))]
    async fn purge_call_records_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        let victims: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT key, tenant_key, start_ticks FROM record WHERE start_ticks < ? ORDER BY start_ticks LIMIT ?",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        for (key, tenant_key, start) in &victims {
            delete_record(&mut tx, &self.codec, *tenant_key, *key, *start).await?;
        }
        tx.commit().await?;
        Ok(victims.len() as u64)
    }

    #[tracing::instrument(skip(self))]
    async fn purge_log_rows_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let removed =
            sqlx::query("DELETE FROM log_row WHERE rowid IN (SELECT rowid FROM log_row WHERE start_ticks < ? LIMIT ?)")
                .bind(before)
                .bind(i64::from(limit))
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(removed)
    }
}

#[async_trait]
impl sql::SqlBackend for SqliteStore {
    const DIALECT: sql::Dialect = sql::Dialect::Sqlite;
    type Row = sqlx::sqlite::SqliteRow;

    async fn fetch_all(&self, statement: sql::Statement) -> StoreResult<Vec<Self::Row>> {
        Ok(bound(&statement).fetch_all(&self.reader).await?)
    }

    async fn fetch_optional(&self, statement: sql::Statement) -> StoreResult<Option<Self::Row>> {
        Ok(bound(&statement).fetch_optional(&self.reader).await?)
    }

    async fn fetch_analytics(&self, statement: sql::Statement) -> StoreResult<Vec<Self::Row>> {
        Ok(bound(&statement).fetch_all(&self.analytics_reader).await?)
    }

    async fn count(&self, statement: sql::Statement) -> StoreResult<i64> {
        Ok(bound(&statement).fetch_one(&self.reader).await?.try_get(0)?)
    }

    async fn write_returning(&self, statement: sql::Statement) -> StoreResult<Vec<Self::Row>> {
        Ok(bound(&statement).fetch_all(&self.writer).await?)
    }

    async fn write_all(&self, statements: Vec<sql::Statement>) -> StoreResult<Vec<u64>> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        let mut changed = Vec::with_capacity(statements.len());
        for statement in &statements {
            changed.push(bound(statement).execute(&mut *tx).await?.rows_affected());
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn insert_within_quota(
        &self,
        _tenant: &TenantId,
        count: sql::Statement,
        quota: u32,
        insert: sql::Statement,
    ) -> StoreResult<bool> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        // The one writer connection takes the write lock at BEGIN, so creators take turns.
        let unexpired: i64 = bound(&count).fetch_one(&mut *tx).await?.try_get(0)?;
        if !rules::quota_allows(unexpired, quota) {
            tx.rollback().await?;
            return Ok(false);
        }
        bound(&insert).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    fn subscription(row: &Self::Row) -> Result<StoredSubscription, sqlx::Error> {
        stored_subscription(row)
    }

    fn tenant(row: &Self::Row) -> Result<TenantId, sqlx::Error> {
        Ok(TenantId::from_stored(row.try_get("tenant_id")?))
    }

    fn signing_key(row: &Self::Row) -> Result<StoredSigningKey, sqlx::Error> {
        stored_signing_key(row)
    }

    fn app(row: &Self::Row) -> Result<StoredApp, sqlx::Error> {
        stored_app(row)
    }

    fn text_at(row: &Self::Row, index: usize) -> Result<String, sqlx::Error> {
        row.try_get(index)
    }

    fn integer_at(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn optional_text_at(row: &Self::Row, index: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get(index)
    }

    fn optional_integer_at(row: &Self::Row, index: usize) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(index)
    }

    fn optional_bool_at(row: &Self::Row, index: usize) -> Result<Option<bool>, sqlx::Error> {
        row.try_get(index)
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_lifecycle_events(
        &self,
        tenant: &TenantId,
        events: &[LifecycleEvent],
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        for event in events {
            sqlx::query(
                "INSERT INTO outbox (tenant_id, subscription_id, event, target_url, client_state, expiration_ticks, created_ticks, due_ticks)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(tenant.as_str())
            .bind(&event.subscription_id)
            .bind(&event.event)
            .bind(&event.target_url)
            .bind(&event.client_state)
            .bind(event.expiration)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_notifications(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedNotification>> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        // Change rows whose subscription is gone (deleted, expired) are dropped, never sent.
        sqlx::query(
            "DELETE FROM outbox WHERE target_url IS NULL AND NOT EXISTS (SELECT 1 FROM subscription s
               WHERE s.tenant_id = outbox.tenant_id AND s.id = outbox.subscription_id AND s.expiration_ticks > ?)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A row waits while an earlier row of its record and subscription waits for a retry or
        // is leased: one record's versions go out in the order they were made.
        let rows = sqlx::query(
            "UPDATE outbox SET lease_owner = ?1, lease_until_ticks = ?2
             WHERE id IN (
                 SELECT id FROM outbox o WHERE due_ticks <= ?3 AND lease_until_ticks <= ?3
                   AND NOT EXISTS (SELECT 1 FROM outbox e
                     WHERE e.tenant_id = o.tenant_id AND e.subscription_id = o.subscription_id
                       AND e.call_record_id = o.call_record_id AND e.id < o.id
                       AND (e.due_ticks > ?3 OR e.lease_until_ticks > ?3))
                 ORDER BY id LIMIT ?4)
             RETURNING id, tenant_id, subscription_id, event, call_record_id, target_url, client_state, expiration_ticks,
                       created_ticks, first_attempt_ticks, attempts",
        )
        .bind(worker)
        .bind(now + lease)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let row = rules::ClaimedRow::from_row(row)?;
            let subscription: Option<(Timestamp, String)> = match row.target_url {
                Some(_) => None,
                None => {
                    sqlx::query_as("SELECT expiration_ticks, document FROM subscription WHERE tenant_id = ? AND id = ?")
                        .bind(&row.tenant_id)
                        .bind(&row.subscription_id)
                        .fetch_optional(&mut *tx)
                        .await?
                }
            };
            let subscription = subscription
                .as_ref()
                .map(|(expiration, document)| (*expiration, document.as_str()));
            claimed.extend(row.deliver_to(subscription)?);
        }
        tx.commit().await?;
        claimed.sort_by_key(|notification| notification.id);
        Ok(claimed)
    }

    async fn complete_notifications(&self, ids: &[i64]) -> StoreResult<()> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        for id in ids {
            sqlx::query("DELETE FROM outbox WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_notifications(&self, worker: &str, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        for id in ids {
            sqlx::query("UPDATE outbox SET lease_owner = NULL, lease_until_ticks = 0 WHERE id = ? AND lease_owner = ?")
                .bind(id)
                .bind(worker)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retry_notifications(&self, retries: &[(i64, Timestamp)], now: Timestamp) -> StoreResult<()> {
        let mut tx = WriteTransaction::<Sqlite>::begin(&self.writer, BEGIN).await?;
        for (id, due) in retries {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, due_ticks = ?, lease_owner = NULL, lease_until_ticks = 0,
                   first_attempt_ticks = COALESCE(first_attempt_ticks, ?)
                 WHERE id = ?",
            )
            .bind(due)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> StoreResult<i64> {
        let depth = sql::Statement::new(<Self as sql::SqlBackend>::DIALECT, sql::OUTBOX_DEPTH, Vec::new());
        sql::SqlBackend::count(self, depth).await
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        let bytes: i64 =
            sqlx::query_scalar("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
                .fetch_one(&self.reader)
                .await?;
        let call_records_by_tenant = sqlx::query_as::<_, (String, i64)>(sql::RECORDS_BY_TENANT)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(|(tenant, count)| (TenantId::from_stored(tenant), count))
            .collect();
        let log_rows_by_kind = sqlx::query_as::<_, (String, i64)>(sql::LOG_ROWS_BY_KIND)
            .fetch_all(&self.reader)
            .await?;
        Ok(StoreStats {
            bytes,
            call_records_by_tenant,
            log_rows_by_kind,
        })
    }
}
