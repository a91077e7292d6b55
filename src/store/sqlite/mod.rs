//! The embedded store: one SQLite file in WAL mode. One connection writes (SQLite admits one
//! writer at a time, and a single writer never meets SQLITE_BUSY on lock upgrade); a small pool
//! reads concurrently beside it. `synchronous=FULL` makes a commit durable before we acknowledge.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::*;
use crate::model::{LogKind, SubscriptionScope};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &str) -> anyhow::Result<Self> {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the directory of the SQLite file {path}"))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .with_context(|| format!("parsing the SQLite path {path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 8 MB a connection, five connections: the OS page cache holds the rest of a warm
            // store, shared and outside our resident set (issue 7: 32 MB each cost 160 MB RSS).
            .pragma("cache_size", "-8000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening the SQLite file {path}"))?;
        MIGRATOR
            .run(&writer)
            .await
            .with_context(|| format!("migrating the SQLite file {path}"))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("opening read connections to {path}"))?;
        Ok(Self { writer, reader })
    }
}

/// The tenant's unexpired subscriptions, read inside the ingest transaction so that the
/// notifications it plans commit (or roll back) with the records.
async fn active_scopes(
    tx: &mut sqlx::SqliteConnection,
    tenant: &TenantId,
    now_ticks: i64,
) -> Result<Vec<(String, SubscriptionScope)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, wants_created, wants_updated, participant_ids FROM subscription WHERE tenant_id = ? AND expiration_ticks > ?",
    )
    .bind(tenant.as_str())
    .bind(now_ticks)
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
        expiration_ticks: row.try_get("expiration_ticks")?,
        scope: SubscriptionScope {
            created: row.try_get("wants_created")?,
            updated: row.try_get("wants_updated")?,
            participant_ids: participant_ids.and_then(|text| serde_json::from_str(&text).ok()),
        },
        document: row.try_get("document")?,
    })
}

fn participant_ids_column(scope: &SubscriptionScope) -> Option<String> {
    scope
        .participant_ids
        .as_ref()
        .map(|ids| serde_json::Value::from(ids.clone()).to_string())
}

const SUBSCRIPTION_COLUMNS: &str = "id, expiration_ticks, wants_created, wants_updated, participant_ids, document";

fn stored_record(row: &sqlx::sqlite::SqliteRow) -> Result<StoredRecord, sqlx::Error> {
    Ok(StoredRecord {
        id: row.try_get("id")?,
        start_ticks: row.try_get("start_ticks")?,
        document: row.try_get("document")?,
        n_sessions: row.try_get("n_sessions")?,
        n_participants: row.try_get("n_participants")?,
    })
}

fn stored_child(row: &sqlx::sqlite::SqliteRow) -> Result<StoredChild, sqlx::Error> {
    Ok(StoredChild {
        ordinal: row.try_get("ordinal")?,
        document: row.try_get("document")?,
    })
}

/// Appends the WHERE clause of a selection over `r` (call_record), driving from the participant
/// index `p` when a participant is named. Values are bound, never spliced.
fn push_selection<'a>(
    query: &mut QueryBuilder<'a, Sqlite>,
    tenant: &'a TenantId,
    selection: &'a RecordSelection,
    cursor: Option<&'a RecordCursor>,
) {
    let (start_column, id_column) = match selection.participant_ids.first() {
        Some(first) => {
            query.push(" FROM participant p JOIN call_record r ON r.tenant_id = p.tenant_id AND r.id = p.call_record_id WHERE p.tenant_id = ");
            query.push_bind(tenant.as_str());
            query.push(" AND p.id = ");
            query.push_bind(first.as_str());
            ("p.start_ticks", "p.call_record_id")
        }
        None => {
            query.push(" FROM call_record r WHERE r.tenant_id = ");
            query.push_bind(tenant.as_str());
            ("r.start_ticks", "r.id")
        }
    };
    if let Some(from) = selection.start_from {
        query.push(format_args!(" AND {start_column} >= ")).push_bind(from);
    }
    if let Some(before) = selection.start_before {
        query.push(format_args!(" AND {start_column} < ")).push_bind(before);
    }
    if let Some(cursor) = cursor {
        query.push(format_args!(" AND ({start_column}, {id_column}) > ("));
        query
            .push_bind(cursor.start_ticks)
            .push(", ")
            .push_bind(cursor.id.as_str())
            .push(")");
    }
    for other in selection.participant_ids.iter().skip(1) {
        query.push(" AND EXISTS (SELECT 1 FROM participant q WHERE q.tenant_id = r.tenant_id AND q.call_record_id = r.id AND q.id = ");
        query.push_bind(other.as_str()).push(")");
    }
    query.push(format_args!(" ORDER BY {start_column}, {id_column}"));
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(skip_all, fields(n_records = batch.len()))]
    async fn upsert_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let stored_at = DateTimeOffset::now().unix_ticks();
        let scopes = active_scopes(&mut tx, tenant, stored_at).await?;
        for record in batch {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT version FROM call_record WHERE tenant_id = ? AND id = ?")
                    .bind(tenant.as_str())
                    .bind(&record.id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let outcome = match existing {
                Some(version) if version >= record.version => {
                    outcomes.push(UpsertOutcome::Ignored);
                    continue;
                }
                Some(_) => {
                    for table in ["session", "participant"] {
                        sqlx::query(&format!(
                            "DELETE FROM {table} WHERE tenant_id = ? AND call_record_id = ?"
                        ))
                        .bind(tenant.as_str())
                        .bind(&record.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    UpsertOutcome::Replaced
                }
                None => UpsertOutcome::Stored,
            };
            sqlx::query(
                "INSERT INTO call_record (tenant_id, id, version, start_ticks, end_ticks, n_sessions, n_participants, stored_at_ticks, document)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, id) DO UPDATE SET version = excluded.version, start_ticks = excluded.start_ticks,
                   end_ticks = excluded.end_ticks, n_sessions = excluded.n_sessions, n_participants = excluded.n_participants,
                   stored_at_ticks = excluded.stored_at_ticks, document = excluded.document",
            )
            .bind(tenant.as_str())
            .bind(&record.id)
            .bind(record.version)
            .bind(record.start_ticks)
            .bind(record.end_ticks)
            .bind(record.sessions.len() as i64)
            .bind(record.participants.len() as i64)
            .bind(stored_at)
            .bind(&record.document)
            .execute(&mut *tx)
            .await?;
            // SQLite allows 32,766 bound values a statement; 5 a session row keeps chunks well under.
            for (chunk_index, chunk) in record.sessions.chunks(1000).enumerate() {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO session (tenant_id, call_record_id, ordinal, id, document) ",
                );
                insert.push_values(chunk.iter().enumerate(), |mut row, (i, (id, document))| {
                    row.push_bind(tenant.as_str())
                        .push_bind(&record.id)
                        .push_bind((chunk_index * 1000 + i) as i64)
                        .push_bind(id)
                        .push_bind(document);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for (chunk_index, chunk) in record.participants.chunks(1000).enumerate() {
                let mut insert = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO participant (tenant_id, call_record_id, ordinal, id, start_ticks, document) ",
                );
                insert.push_values(chunk.iter().enumerate(), |mut row, (i, (id, document))| {
                    row.push_bind(tenant.as_str())
                        .push_bind(&record.id)
                        .push_bind((chunk_index * 1000 + i) as i64)
                        .push_bind(id)
                        .push_bind(record.start_ticks)
                        .push_bind(document);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for (subscription_id, change) in plan_notifications(&scopes, record, outcome) {
                sqlx::query(
                    "INSERT INTO outbox (tenant_id, subscription_id, event, call_record_id, created_ticks, due_ticks)
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(tenant.as_str())
                .bind(subscription_id)
                .bind(change.as_str())
                .bind(&record.id)
                .bind(stored_at)
                .bind(stored_at)
                .execute(&mut *tx)
                .await?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn list_call_records(
        &self,
        tenant: &TenantId,
        selection: &RecordSelection,
        cursor: Option<&RecordCursor>,
        limit: u32,
    ) -> StoreResult<Vec<StoredRecord>> {
        if selection.is_empty_range() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT r.id, r.start_ticks, r.document, r.n_sessions, r.n_participants");
        push_selection(&mut query, tenant, selection, cursor);
        query.push(" LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.reader).await?;
        Ok(rows.iter().map(stored_record).collect::<Result<_, _>>()?)
    }

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64> {
        if selection.is_empty_range() {
            return Ok(0);
        }
        let mut query = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        push_selection(&mut query, tenant, selection, None);
        Ok(query.build_query_scalar().fetch_one(&self.reader).await?)
    }

    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<i64>,
    ) -> StoreResult<Option<StoredRecord>> {
        let row = sqlx::query(
            "SELECT id, start_ticks, document, n_sessions, n_participants FROM call_record
             WHERE tenant_id = ? AND id = ? AND start_ticks >= ?",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(visible_from.unwrap_or(i64::MIN))
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_record).transpose()?)
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let rows = sqlx::query(
            "SELECT ordinal, document FROM session WHERE tenant_id = ? AND call_record_id = ? AND ordinal > ?
             ORDER BY ordinal LIMIT ?",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(after_ordinal.unwrap_or(-1))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_child).collect::<Result<_, _>>()?)
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let row =
            sqlx::query("SELECT ordinal, document FROM session WHERE tenant_id = ? AND call_record_id = ? AND id = ?")
                .bind(tenant.as_str())
                .bind(call_record_id)
                .bind(session_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.as_ref().map(stored_child).transpose()?)
    }

    async fn list_participants(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let rows = sqlx::query(
            "SELECT ordinal, document FROM participant WHERE tenant_id = ? AND call_record_id = ? AND ordinal > ?
             ORDER BY ordinal LIMIT ?",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(after_ordinal.unwrap_or(-1))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_child).collect::<Result<_, _>>()?)
    }

    async fn get_participant(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let row = sqlx::query(
            "SELECT ordinal, document FROM participant WHERE tenant_id = ? AND call_record_id = ? AND id = ?",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(participant_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_child).transpose()?)
    }

    #[tracing::instrument(skip_all, fields(kind = kind.as_str(), n_rows = batch.len()))]
    async fn upsert_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for row in batch {
            let inserted = sqlx::query(
                "INSERT INTO log_row (tenant_id, kind, id, start_ticks, document) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (tenant_id, kind, id) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(&row.id)
            .bind(row.start_ticks)
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
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT id, start_ticks, document FROM log_row WHERE tenant_id = ");
        sql.push_bind(tenant.as_str())
            .push(" AND kind = ")
            .push_bind(query.kind.as_str())
            .push(" AND start_ticks >= ")
            .push_bind(query.from_ticks)
            .push(" AND start_ticks < ")
            .push_bind(query.to_ticks);
        if let Some(after) = &query.after {
            sql.push(" AND (start_ticks, id) > (")
                .push_bind(after.start_ticks)
                .push(", ")
                .push_bind(after.id.as_str())
                .push(")");
        }
        sql.push(" ORDER BY start_ticks, id LIMIT ")
            .push_bind(i64::from(query.limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(query.skip).unwrap_or(i64::MAX));
        let rows = sql.build().fetch_all(&self.reader).await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(StoredLogRow {
                    id: row.try_get("id")?,
                    start_ticks: row.try_get("start_ticks")?,
                    document: row.try_get("document")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    #[tracing::instrument(skip(self))]
    async fn purge_call_records_before(&self, before_ticks: i64, limit: u32) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let victims: Vec<(String, String)> =
            sqlx::query_as("SELECT tenant_id, id FROM call_record WHERE start_ticks < ? ORDER BY start_ticks LIMIT ?")
                .bind(before_ticks)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
        for (tenant_id, id) in &victims {
            for table in ["session", "participant"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE tenant_id = ? AND call_record_id = ?"
                ))
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM call_record WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(victims.len() as u64)
    }

    #[tracing::instrument(skip(self))]
    async fn purge_log_rows_before(&self, before_ticks: i64, limit: u32) -> StoreResult<u64> {
        let removed =
            sqlx::query("DELETE FROM log_row WHERE rowid IN (SELECT rowid FROM log_row WHERE start_ticks < ? LIMIT ?)")
                .bind(before_ticks)
                .bind(i64::from(limit))
                .execute(&self.writer)
                .await?
                .rows_affected();
        Ok(removed)
    }

    async fn create_subscription(
        &self,
        tenant: &TenantId,
        subscription: &StoredSubscription,
        quota: u32,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let existing: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscription WHERE tenant_id = ? AND expiration_ticks > ?")
                .bind(tenant.as_str())
                .bind(DateTimeOffset::now().unix_ticks())
                .fetch_one(&mut *tx)
                .await?;
        if existing >= i64::from(quota) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO subscription (tenant_id, id, expiration_ticks, wants_created, wants_updated, participant_ids, document)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant.as_str())
        .bind(&subscription.id)
        .bind(subscription.expiration_ticks)
        .bind(subscription.scope.created)
        .bind(subscription.scope.updated)
        .bind(participant_ids_column(&subscription.scope))
        .bind(&subscription.document)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &str,
        now_ticks: i64,
    ) -> StoreResult<Option<StoredSubscription>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription WHERE tenant_id = ? AND id = ? AND expiration_ticks > ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .bind(now_ticks)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_subscription).transpose()?)
    }

    async fn list_subscriptions(&self, tenant: &TenantId, now_ticks: i64) -> StoreResult<Vec<StoredSubscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription WHERE tenant_id = ? AND expiration_ticks > ? ORDER BY id"
        ))
        .bind(tenant.as_str())
        .bind(now_ticks)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_subscription).collect::<Result<_, _>>()?)
    }

    async fn replace_subscription(&self, tenant: &TenantId, subscription: &StoredSubscription) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE subscription SET expiration_ticks = ?, wants_created = ?, wants_updated = ?, participant_ids = ?, document = ?,
               reauthorization_notice_ticks = 0
             WHERE tenant_id = ? AND id = ?",
        )
        .bind(subscription.expiration_ticks)
        .bind(subscription.scope.created)
        .bind(subscription.scope.updated)
        .bind(participant_ids_column(&subscription.scope))
        .bind(&subscription.document)
        .bind(tenant.as_str())
        .bind(&subscription.id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    async fn delete_subscription(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query("DELETE FROM subscription WHERE tenant_id = ? AND id = ?")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM outbox WHERE tenant_id = ? AND subscription_id = ? AND target_url IS NULL")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn remove_expired_subscriptions(&self, now_ticks: i64) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "DELETE FROM outbox WHERE target_url IS NULL AND EXISTS (SELECT 1 FROM subscription s
               WHERE s.tenant_id = outbox.tenant_id AND s.id = outbox.subscription_id AND s.expiration_ticks <= ?)",
        )
        .bind(now_ticks)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM subscription WHERE expiration_ticks <= ?")
            .bind(now_ticks)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn take_reauthorization_due(
        &self,
        now_ticks: i64,
        within_ticks: i64,
        every_ticks: i64,
    ) -> StoreResult<Vec<(TenantId, StoredSubscription)>> {
        let rows = sqlx::query(&format!(
            "UPDATE subscription SET reauthorization_notice_ticks = ?
             WHERE expiration_ticks > ? AND expiration_ticks <= ? AND reauthorization_notice_ticks <= ?
             RETURNING tenant_id, {SUBSCRIPTION_COLUMNS}"
        ))
        .bind(now_ticks)
        .bind(now_ticks)
        .bind(now_ticks.saturating_add(within_ticks))
        .bind(now_ticks.saturating_sub(every_ticks))
        .fetch_all(&self.writer)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok((
                    TenantId::from_stored(row.try_get("tenant_id")?),
                    stored_subscription(row)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn enqueue_lifecycle_events(
        &self,
        tenant: &TenantId,
        events: &[LifecycleEvent],
        now_ticks: i64,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
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
            .bind(event.expiration_ticks)
            .bind(now_ticks)
            .bind(now_ticks)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_notifications(
        &self,
        worker: &str,
        now_ticks: i64,
        lease_ticks: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedNotification>> {
        let mut tx = self.writer.begin().await?;
        // Change rows whose subscription is gone (deleted, expired) are dropped, never sent.
        sqlx::query(
            "DELETE FROM outbox WHERE target_url IS NULL AND NOT EXISTS (SELECT 1 FROM subscription s
               WHERE s.tenant_id = outbox.tenant_id AND s.id = outbox.subscription_id AND s.expiration_ticks > ?)",
        )
        .bind(now_ticks)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "UPDATE outbox SET lease_owner = ?, lease_until_ticks = ?
             WHERE id IN (SELECT id FROM outbox WHERE due_ticks <= ? AND lease_until_ticks <= ? ORDER BY id LIMIT ?)
             RETURNING id, tenant_id, subscription_id, event, call_record_id, target_url, client_state, expiration_ticks,
                       created_ticks, first_attempt_ticks, attempts",
        )
        .bind(worker)
        .bind(now_ticks.saturating_add(lease_ticks))
        .bind(now_ticks)
        .bind(now_ticks)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let target_url: Option<String> = row.try_get("target_url")?;
            let tenant_id: String = row.try_get("tenant_id")?;
            let subscription_id: String = row.try_get("subscription_id")?;
            let (url, client_state, expiration) = match target_url {
                Some(url) => (
                    url,
                    row.try_get("client_state")?,
                    row.try_get::<Option<i64>, _>("expiration_ticks")?.unwrap_or(0),
                ),
                None => {
                    let Some(subscription) = sqlx::query(
                        "SELECT expiration_ticks, document FROM subscription WHERE tenant_id = ? AND id = ?",
                    )
                    .bind(&tenant_id)
                    .bind(&subscription_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    else {
                        continue;
                    };
                    let document: String = subscription.try_get("document")?;
                    let parsed: crate::model::Subscription = serde_json::from_str(&document).map_err(|error| {
                        StoreError::Other(anyhow::anyhow!("stored subscription is not valid: {error}"))
                    })?;
                    (
                        parsed.notification_url,
                        parsed.client_state,
                        subscription.try_get("expiration_ticks")?,
                    )
                }
            };
            claimed.push(ClaimedNotification {
                id: row.try_get("id")?,
                tenant_id,
                subscription_id,
                event: row.try_get("event")?,
                call_record_id: row.try_get("call_record_id")?,
                url,
                client_state,
                subscription_expiration_ticks: expiration,
                created_ticks: row.try_get("created_ticks")?,
                first_attempt_ticks: row.try_get("first_attempt_ticks")?,
                attempts: row.try_get("attempts")?,
            });
        }
        tx.commit().await?;
        claimed.sort_by_key(|notification| notification.id);
        Ok(claimed)
    }

    async fn complete_notifications(&self, ids: &[i64]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM outbox WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retry_notifications(&self, retries: &[(i64, i64)], now_ticks: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for (id, due_ticks) in retries {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, due_ticks = ?, lease_owner = NULL, lease_until_ticks = 0,
                   first_attempt_ticks = COALESCE(first_attempt_ticks, ?)
                 WHERE id = ?",
            )
            .bind(due_ticks)
            .bind(now_ticks)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, private_key_pem, created_ticks, retired_ticks FROM signing_key ORDER BY created_ticks DESC, kid",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(stored_signing_key).collect::<Result<_, _>>()?)
    }

    async fn add_signing_key(&self, key: &StoredSigningKey, retire_others_at: Option<i64>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        if let Some(at) = retire_others_at {
            sqlx::query("UPDATE signing_key SET retired_ticks = ? WHERE retired_ticks IS NULL OR retired_ticks > ?")
                .bind(at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO signing_key (kid, private_key_pem, created_ticks, retired_ticks) VALUES (?, ?, ?, ?)")
            .bind(&key.kid)
            .bind(&key.private_key_pem)
            .bind(key.created_ticks)
            .bind(key.retired_ticks)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_app(&self, tenant: &TenantId, app: &StoredApp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO app (tenant_id, client_id, name, roles, secret_sha256, created_ticks) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant.as_str())
        .bind(&app.client_id)
        .bind(&app.name)
        .bind(serde_json::to_string(&app.roles).map_err(anyhow::Error::new)?)
        .bind(&app.secret_sha256)
        .bind(app.created_ticks)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_app(&self, tenant: &TenantId, client_id: &str) -> StoreResult<Option<StoredApp>> {
        let row = sqlx::query(
            "SELECT client_id, name, roles, secret_sha256, created_ticks FROM app WHERE tenant_id = ? AND client_id = ?",
        )
        .bind(tenant.as_str())
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.as_ref().map(stored_app).transpose()?)
    }
}
