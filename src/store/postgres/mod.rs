//! The PostgreSQL store, for deployments that outgrow one SQLite file: several API nodes over one
//! database (or a Citus cluster sharded on `tenant_id`). Its semantics are the `Store` contract
//! (checked by `store::contract`), its rules those of `store::rules`; the schema and its reasons
//! are in `migrations/postgres/0001_init.sql` (records and logs) and
//! `0002_subscriptions_outbox.sql` (change notifications).
//!
//! What differs from SQLite, and why:
//! - Tables are partitioned by calendar month of `start`, so retention drops whole months
//!   instead of deleting rows; `partitions` creates months on demand and drops expired ones.
//! - A partitioned table cannot declare `(tenant_id, id)` unique, so an upsert serialises on a
//!   transaction-scoped advisory lock per id, then deletes and inserts (a new version may start
//!   in another month).
//! - Writes are set-based (`UNNEST` of arrays, one statement per table), so a batch costs a few
//!   round trips whatever its size, and stays far from the protocol's 65,535 bind limit.
//! - Several nodes share the outbox: a claim leases rows with `FOR UPDATE SKIP LOCKED`, so
//!   concurrent claimers take disjoint rows without waiting on each other, and the quota and
//!   reauthorization reminders are made atomic across nodes by locks instead of SQLite's single
//!   writer.
//!
//! Never: HTTP, or SQL text from anything but our own constants and integers; every value is a
//! bind parameter.

mod partitions;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};

use super::*;
use crate::model::{LogKind, SubscriptionScope};
use partitions::{Family, Month};

/// Connections per node. Each request holds one for a single statement or short transaction,
/// so 10 keeps a node's requests flowing while 10 nodes still fit PostgreSQL's default
/// `max_connections` of 100.
const POOL_SIZE: u32 = 10;

pub(crate) struct PgStore {
    pool: PgPool,
    /// Months whose call-record partitions exist, as far as this process knows: the hot path
    /// checks here and does no DDL. Another node may drop a month; an insert that then finds no
    /// partition clears this and retries once.
    record_months: Mutex<HashSet<Month>>,
    /// The same for usage-log rows, which expire on their own schedule.
    log_months: Mutex<HashSet<Month>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    /// Connects with the URL as given, applies pending migrations (sqlx's migrator holds an
    /// advisory lock, so nodes starting together take turns) and creates the partitions of the
    /// current and next month.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR.run(&pool).await.context("migrating the PostgreSQL database")?;
        let store = Self {
            pool,
            record_months: Mutex::default(),
            log_months: Mutex::default(),
        };
        for family in [Family::Records, Family::Logs] {
            store
                .ensure_partitions(family, [])
                .await
                .context("creating this month's partitions")?;
        }
        Ok(store)
    }

    fn known_months(&self, family: Family) -> &Mutex<HashSet<Month>> {
        match family {
            Family::Records => &self.record_months,
            Family::Logs => &self.log_months,
        }
    }

    async fn write_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
        now: Timestamp,
    ) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        lock_ids(&mut tx, tenant.as_str(), &ids).await?;
        let scopes = active_scopes(&mut tx, tenant, now).await?;
        let stored: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT id, version, start_ticks FROM call_record WHERE tenant_id = $1 AND id = ANY($2)")
                .bind(tenant.as_str())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        let stored: HashMap<String, (i64, i64)> = stored
            .into_iter()
            .map(|(id, version, start)| (id, (version, start)))
            .collect();
        let plan = rules::plan_upsert(&stored, batch);

        if !plan.replaces.is_empty() {
            let (old_ids, old_starts): (Vec<&str>, Vec<i64>) =
                plan.replaces.iter().map(|(id, start)| (id.as_str(), *start)).unzip();
            // Pairing the two lists loosely is exact: an id has one row, so its children all
            // carry its own start. The start list is there so only those months are visited.
            for (table, id_column) in [
                ("session", "call_record_id"),
                ("participant", "call_record_id"),
                ("call_record", "id"),
            ] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE tenant_id = $1 AND start_ticks = ANY($2) AND {id_column} = ANY($3)"
                ))
                .bind(tenant.as_str())
                .bind(&old_starts)
                .bind(&old_ids)
                .execute(&mut *tx)
                .await?;
            }
        }

        let writes: Vec<&PreparedRecord> = plan.writes.iter().map(|&index| &batch[index]).collect();
        if !writes.is_empty() {
            insert_records(&mut tx, tenant, &writes, now).await?;
            insert_children(&mut tx, tenant, &writes, "session", |r| &r.sessions).await?;
            insert_children(&mut tx, tenant, &writes, "participant", |r| &r.participants).await?;
        }
        let planned = rules::plan_notifications(&scopes, batch, &plan.outcomes);
        insert_planned_notifications(&mut tx, tenant, &planned, now).await?;
        tx.commit().await?;
        Ok(plan.outcomes)
    }

    async fn write_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        // The key cannot be unique without start_ticks, so idempotence by id is enforced here.
        lock_ids(&mut tx, &format!("{}:{}", tenant.as_str(), kind.as_str()), &ids).await?;
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT id FROM log_row WHERE tenant_id = $1 AND kind = $2 AND id = ANY($3)")
                .bind(tenant.as_str())
                .bind(kind.as_str())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        let mut seen: HashSet<&str> = stored.iter().map(String::as_str).collect();
        let mut outcomes = Vec::with_capacity(batch.len());
        let (mut new_ids, mut new_starts, mut new_documents) = (Vec::new(), Vec::new(), Vec::new());
        for row in batch {
            if seen.insert(&row.id) {
                new_ids.push(row.id.as_str());
                new_starts.push(row.start);
                new_documents.push(row.document.as_str());
                outcomes.push(UpsertOutcome::Stored);
            } else {
                outcomes.push(UpsertOutcome::Ignored);
            }
        }
        if !new_ids.is_empty() {
            sqlx::query(
                "INSERT INTO log_row (tenant_id, kind, id, start_ticks, document)
                 SELECT $1, $2, u.id, u.start_ticks, u.document
                 FROM UNNEST($3::text[], $4::int8[], $5::text[]) AS u (id, start_ticks, document)",
            )
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(&new_ids)
            .bind(&new_starts)
            .bind(&new_documents)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Takes a transaction-scoped advisory lock on `prefix:id` for each id, in ascending key order
/// so that two batches sharing ids cannot deadlock. This is what keeps an id unique across
/// partitions: a writer looks an id up only while holding its lock. Each id holds an entry of the
/// server's shared lock table until commit (`max_locks_per_transaction` × connections, about
/// 7,800 by default), so a 500-record ingest batch takes 500: many nodes ingesting at once need
/// that setting raised, as partitioned databases usually do anyway.
async fn lock_ids(tx: &mut WriteTransaction<Postgres>, prefix: &str, ids: &[&str]) -> Result<(), sqlx::Error> {
    // The ORDER BY sits in a subquery so that the locks are taken in sorted order: PostgreSQL
    // does not flatten a subquery that sorts.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended($1 || ':' || id, 0) AS k FROM UNNEST($2::text[]) AS u (id) ORDER BY k
         ) AS keys",
    )
    .bind(prefix)
    .bind(ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_records(
    tx: &mut WriteTransaction<Postgres>,
    tenant: &TenantId,
    records: &[&PreparedRecord],
    stored_at: Timestamp,
) -> Result<(), sqlx::Error> {
    let column = |f: fn(&PreparedRecord) -> i64| records.iter().map(|r| f(r)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO call_record (tenant_id, id, version, start_ticks, end_ticks, n_sessions, n_participants, stored_at_ticks, document,
                                  organizer_at)
         SELECT $1, u.id, u.version, u.start_ticks, u.end_ticks, u.n_sessions, u.n_participants, $2, u.document, u.organizer_at
         FROM UNNEST($3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::text[], $10::int8[])
           AS u (id, version, start_ticks, end_ticks, n_sessions, n_participants, document, organizer_at)",
    )
    .bind(tenant.as_str())
    .bind(stored_at)
    .bind(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(column(|r| r.version))
    .bind(column(|r| r.start.ticks()))
    .bind(column(|r| r.end.ticks()))
    .bind(column(|r| r.sessions.len() as i64))
    .bind(column(|r| r.participants.len() as i64))
    .bind(records.iter().map(|r| r.document.as_str()).collect::<Vec<_>>())
    .bind(column(|r| r.organizer_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the sessions or participants of `records`, numbering each record's children from 0
/// in the order sent, and giving them the record's start so they land in its month.
async fn insert_children(
    tx: &mut WriteTransaction<Postgres>,
    tenant: &TenantId,
    records: &[&PreparedRecord],
    table: &'static str,
    children: fn(&PreparedRecord) -> &Vec<(String, String)>,
) -> Result<(), sqlx::Error> {
    let n: usize = records.iter().map(|r| children(r).len()).sum();
    if n == 0 {
        return Ok(());
    }
    let mut record_ids = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut ordinals = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut documents = Vec::with_capacity(n);
    for record in records {
        for (ordinal, (id, document)) in children(record).iter().enumerate() {
            record_ids.push(record.id.as_str());
            starts.push(record.start);
            ordinals.push(ordinal as i64);
            ids.push(id.as_str());
            documents.push(document.as_str());
        }
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (tenant_id, call_record_id, start_ticks, ordinal, id, document)
         SELECT $1, u.call_record_id, u.start_ticks, u.ordinal, u.id, u.document
         FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[])
           AS u (call_record_id, start_ticks, ordinal, id, document)"
    ))
    .bind(tenant.as_str())
    .bind(&record_ids)
    .bind(&starts)
    .bind(&ordinals)
    .bind(&ids)
    .bind(&documents)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The tenant's unexpired subscriptions, read inside the ingest transaction, by id, so that one
/// record's notifications are queued in a stable order.
async fn active_scopes(
    tx: &mut WriteTransaction<Postgres>,
    tenant: &TenantId,
    now: Timestamp,
) -> Result<Vec<(String, SubscriptionScope)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, wants_created, wants_updated, participant_ids FROM subscription
         WHERE tenant_id = $1 AND expiration_ticks > $2 ORDER BY id",
    )
    .bind(tenant.as_str())
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, subscription_scope(row)?)))
        .collect()
}

/// Queues the planned change notifications, due at once, in one statement; ids follow the plan's
/// order.
async fn insert_planned_notifications(
    tx: &mut WriteTransaction<Postgres>,
    tenant: &TenantId,
    planned: &[rules::PlannedNotification<'_>],
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    if planned.is_empty() {
        return Ok(());
    }
    let subscription_ids: Vec<&str> = planned.iter().map(|p| p.subscription_id).collect();
    let events: Vec<&str> = planned.iter().map(|p| p.change.as_str()).collect();
    let record_ids: Vec<&str> = planned.iter().map(|p| p.record_id).collect();
    sqlx::query(
        "INSERT INTO outbox (tenant_id, subscription_id, event, call_record_id, created_ticks, due_ticks)
         SELECT $1, u.subscription_id, u.event, u.call_record_id, $2, $2
         FROM UNNEST($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u (subscription_id, event, call_record_id, n)
         ORDER BY u.n",
    )
    .bind(tenant.as_str())
    .bind(now)
    .bind(&subscription_ids)
    .bind(&events)
    .bind(&record_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn subscription_scope(row: &PgRow) -> Result<SubscriptionScope, sqlx::Error> {
    Ok(SubscriptionScope {
        created: row.try_get("wants_created")?,
        updated: row.try_get("wants_updated")?,
        participant_ids: row.try_get("participant_ids")?,
    })
}

fn stored_subscription(row: &PgRow) -> Result<StoredSubscription, sqlx::Error> {
    Ok(StoredSubscription {
        id: row.try_get("id")?,
        expiration: row.try_get("expiration_ticks")?,
        scope: subscription_scope(row)?,
        document: row.try_get("document")?,
    })
}

/// Whether an insert met a month with no partition: another node dropped one we had cached.
fn is_missing_partition(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"))
}

fn stored_record(row: &PgRow) -> Result<StoredRecord, sqlx::Error> {
    Ok(StoredRecord {
        id: row.try_get("id")?,
        start: row.try_get("start_ticks")?,
        document: row.try_get("document")?,
        n_sessions: row.try_get("n_sessions")?,
        n_participants: row.try_get("n_participants")?,
        organizer_at: row.try_get("organizer_at")?,
    })
}

fn stored_child(row: &PgRow) -> Result<StoredChild, sqlx::Error> {
    Ok(StoredChild {
        ordinal: row.try_get("ordinal")?,
        document: row.try_get("document")?,
    })
}

/// A statement from `sql`, with its values bound; a list of texts is a `text[]`.
fn bound(statement: &sql::Statement) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    statement
        .values
        .iter()
        .fold(sqlx::query(&statement.sql), |query, value| match value {
            sql::SqlValue::Text(text) => query.bind(text.as_str()),
            sql::SqlValue::Integer(integer) => query.bind(*integer),
            sql::SqlValue::OptionalInteger(integer) => query.bind(*integer),
            sql::SqlValue::Bool(value) => query.bind(*value),
            sql::SqlValue::TextList(list) => query.bind(list.as_deref()),
        })
}

#[async_trait]
impl CallRecordStore for PgStore {
    #[tracing::instrument(skip_all, fields(n_records = batch.len()))]
    async fn upsert_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
        now: Timestamp,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut retried = false;
        loop {
            self.ensure_partitions(Family::Records, batch.iter().map(|r| r.start))
                .await?;
            match self.write_call_records(tenant, batch, now).await {
                Err(error) if !retried && is_missing_partition(&error) => {
                    self.forget_months(Family::Records);
                    retried = true;
                }
                res => return Ok(res?),
            }
        }
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
        let read = sql::SelectionRead::Page { cursor, limit };
        let statement = sql::selection_statement(sql::Dialect::Postgres, tenant, selection, read);
        let rows = bound(&statement).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(stored_record).collect::<Result<_, _>>()?)
    }

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64> {
        if selection.is_empty_range() {
            return Ok(0);
        }
        let statement = sql::selection_statement(sql::Dialect::Postgres, tenant, selection, sql::SelectionRead::Count);
        let row = bound(&statement).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
    ) -> StoreResult<Option<StoredRecord>> {
        let row = sqlx::query(
            "SELECT id, start_ticks, document, n_sessions, n_participants, organizer_at FROM call_record
             WHERE tenant_id = $1 AND id = $2 AND start_ticks >= $3",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(visible_from.unwrap_or(Timestamp::from_ticks(i64::MIN)))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(stored_record).transpose()?)
    }

    async fn get_call_record_with_sessions(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
        limit: u32,
    ) -> StoreResult<Option<(StoredRecord, Vec<StoredChild>)>> {
        // One statement sees one snapshot (READ COMMITTED), so the sessions are those of the
        // version of the record returned with them. `s.start_ticks = r.start_ticks` lets the
        // executor prune the session partitions to the record's month.
        let row = sqlx::query(
            "SELECT r.id, r.start_ticks, r.document, r.n_sessions, r.n_participants, r.organizer_at,
                    ARRAY(SELECT s.ordinal FROM session s
                          WHERE s.tenant_id = r.tenant_id AND s.call_record_id = r.id AND s.start_ticks = r.start_ticks
                          ORDER BY s.ordinal LIMIT $4) AS session_ordinals,
                    ARRAY(SELECT s.document FROM session s
                          WHERE s.tenant_id = r.tenant_id AND s.call_record_id = r.id AND s.start_ticks = r.start_ticks
                          ORDER BY s.ordinal LIMIT $4) AS session_documents
             FROM call_record r WHERE r.tenant_id = $1 AND r.id = $2 AND r.start_ticks >= $3",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(visible_from.unwrap_or(Timestamp::from_ticks(i64::MIN)))
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = stored_record(&row)?;
        let ordinals: Vec<i64> = row.try_get("session_ordinals")?;
        let documents: Vec<String> = row.try_get("session_documents")?;
        if ordinals.len() != documents.len() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "record {id}: {} session ordinals against {} documents",
                ordinals.len(),
                documents.len()
            )));
        }
        let sessions = ordinals
            .into_iter()
            .zip(documents)
            .map(|(ordinal, document)| StoredChild { ordinal, document })
            .collect();
        Ok(Some((record, sessions)))
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let rows = sqlx::query(
            "SELECT ordinal, document FROM session WHERE tenant_id = $1 AND call_record_id = $2 AND ordinal > $3
             ORDER BY ordinal LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(after_ordinal.unwrap_or(-1))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(stored_child).collect::<Result<_, _>>()?)
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let row = sqlx::query(
            "SELECT ordinal, document FROM session WHERE tenant_id = $1 AND call_record_id = $2 AND id = $3",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(session_id)
        .fetch_optional(&self.pool)
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
            "SELECT ordinal, document FROM participant WHERE tenant_id = $1 AND call_record_id = $2 AND ordinal > $3
             ORDER BY ordinal LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(after_ordinal.unwrap_or(-1))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
            "SELECT ordinal, document FROM participant WHERE tenant_id = $1 AND call_record_id = $2 AND id = $3",
        )
        .bind(tenant.as_str())
        .bind(call_record_id)
        .bind(participant_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(stored_child).transpose()?)
    }
}

#[async_trait]
impl UsageLogStore for PgStore {
    #[tracing::instrument(skip_all, fields(kind = kind.as_str(), n_rows = batch.len()))]
    async fn upsert_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut retried = false;
        loop {
            self.ensure_partitions(Family::Logs, batch.iter().map(|r| r.start))
                .await?;
            match self.write_log_rows(tenant, kind, batch).await {
                Err(error) if !retried && is_missing_partition(&error) => {
                    self.forget_months(Family::Logs);
                    retried = true;
                }
                res => return Ok(res?),
            }
        }
    }

    async fn list_log_rows(&self, tenant: &TenantId, query: &LogRowQuery) -> StoreResult<Vec<StoredLogRow>> {
        let statement = sql::log_rows_statement(sql::Dialect::Postgres, tenant, query);
        let rows = bound(&statement).fetch_all(&self.pool).await?;
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
impl RetentionStore for PgStore {
    /// Drops every month that ended by `before` (reporting its records), then deletes up
    /// to `limit` records of the month that straddles it, with their children, in one statement.
    #[tracing::instrument(skip(self))]
    async fn purge_call_records_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let dropped = self.drop_expired_months(Family::Records, before).await?;
        // `start_ticks < $1` on each DELETE prunes the plan to the months the cutoff reaches.
        // A record replaced concurrently is left alone: its old row is gone (not counted) and
        // its new rows are not in this statement's snapshot.
        let deleted: i64 = sqlx::query_scalar(
            "WITH victim AS (
                 SELECT tenant_id, id, start_ticks FROM call_record
                 WHERE start_ticks < $1 ORDER BY start_ticks LIMIT $2
             ), deleted_session AS (
                 DELETE FROM session s USING victim v
                 WHERE s.start_ticks < $1 AND s.tenant_id = v.tenant_id AND s.call_record_id = v.id AND s.start_ticks = v.start_ticks
             ), deleted_participant AS (
                 DELETE FROM participant p USING victim v
                 WHERE p.start_ticks < $1 AND p.tenant_id = v.tenant_id AND p.call_record_id = v.id AND p.start_ticks = v.start_ticks
             ), deleted_record AS (
                 DELETE FROM call_record r USING victim v
                 WHERE r.start_ticks < $1 AND r.tenant_id = v.tenant_id AND r.id = v.id AND r.start_ticks = v.start_ticks
                 RETURNING 1
             )
             SELECT count(*) FROM deleted_record",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(dropped + deleted.unsigned_abs())
    }

    /// Drops every month that ended by `before` (reporting its rows), then deletes up to
    /// `limit` rows of the month that straddles it.
    #[tracing::instrument(skip(self))]
    async fn purge_log_rows_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let dropped = self.drop_expired_months(Family::Logs, before).await?;
        let deleted = sqlx::query(
            "WITH victim AS (
                 SELECT tenant_id, kind, id, start_ticks FROM log_row
                 WHERE start_ticks < $1 ORDER BY start_ticks LIMIT $2
             )
             DELETE FROM log_row l USING victim v
             WHERE l.start_ticks < $1 AND l.tenant_id = v.tenant_id AND l.kind = v.kind AND l.id = v.id
               AND l.start_ticks = v.start_ticks",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(dropped + deleted)
    }
}

#[async_trait]
impl sql::SqlBackend for PgStore {
    const DIALECT: sql::Dialect = sql::Dialect::Postgres;
    type Row = PgRow;

    async fn fetch_all(&self, statement: sql::Statement) -> StoreResult<Vec<Self::Row>> {
        Ok(bound(&statement).fetch_all(&self.pool).await?)
    }

    async fn fetch_optional(&self, statement: sql::Statement) -> StoreResult<Option<Self::Row>> {
        Ok(bound(&statement).fetch_optional(&self.pool).await?)
    }

    async fn count(&self, statement: sql::Statement) -> StoreResult<i64> {
        Ok(bound(&statement).fetch_one(&self.pool).await?.try_get(0)?)
    }

    async fn write_returning(&self, statement: sql::Statement) -> StoreResult<Vec<Self::Row>> {
        Ok(bound(&statement).fetch_all(&self.pool).await?)
    }

    async fn write_all(&self, statements: Vec<sql::Statement>) -> StoreResult<Vec<u64>> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        let mut changed = Vec::with_capacity(statements.len());
        for statement in &statements {
            changed.push(bound(statement).execute(&mut *tx).await?.rows_affected());
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn insert_within_quota(
        &self,
        tenant: &TenantId,
        count: sql::Statement,
        quota: u32,
        insert: sql::Statement,
    ) -> StoreResult<bool> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        // A transaction-scoped advisory lock on the tenant: nodes creating subscriptions for
        // one tenant at once take turns, so the quota holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('subscription-quota:' || $1, 0))")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?;
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
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn enqueue_lifecycle_events(
        &self,
        tenant: &TenantId,
        events: &[LifecycleEvent],
        now: Timestamp,
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (tenant_id, subscription_id, event, target_url, client_state, expiration_ticks, created_ticks, due_ticks)
             SELECT $1, u.subscription_id, u.event, u.target_url, u.client_state, u.expiration_ticks, $2, $2
             FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::int8[]) WITH ORDINALITY
               AS u (subscription_id, event, target_url, client_state, expiration_ticks, n)
             ORDER BY u.n",
        )
        .bind(tenant.as_str())
        .bind(now)
        .bind(events.iter().map(|e| e.subscription_id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.target_url.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.client_state.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.expiration).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drops change rows whose subscription is gone, then leases due rows whose lease has lapsed.
    /// `SKIP LOCKED` makes concurrent claimers pass over each other's rows instead of queueing
    /// behind them; a row they both saw unleased is re-checked on the locked version and left to
    /// whoever leased it first. The lease, not the row lock, then keeps it from other workers
    /// until it lapses.
    async fn claim_notifications(
        &self,
        worker: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedNotification>> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        // Change rows whose subscription is gone (deleted, expired) are dropped, never sent. A
        // row another claimer holds locked is skipped here too: the next claim drops it.
        sqlx::query(
            "DELETE FROM outbox WHERE id IN (
                 SELECT o.id FROM outbox o
                 WHERE o.target_url IS NULL AND NOT EXISTS (SELECT 1 FROM subscription s
                   WHERE s.tenant_id = o.tenant_id AND s.id = o.subscription_id AND s.expiration_ticks > $1)
                 FOR UPDATE OF o SKIP LOCKED
             )",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Change rows take the subscription's current notificationUrl and clientState, read in
        // the same statement. A row waits while an earlier row of its record and subscription
        // waits for a retry or is leased: one record's versions go out in the order they were
        // made, even when a failed batch is retried after later versions arrived.
        let rows = sqlx::query(
            "WITH claimed AS (
                 UPDATE outbox SET lease_owner = $1, lease_until_ticks = $2
                 WHERE id IN (
                     SELECT id FROM outbox o WHERE due_ticks <= $3 AND lease_until_ticks <= $3
                       AND NOT EXISTS (SELECT 1 FROM outbox e
                         WHERE e.tenant_id = o.tenant_id AND e.subscription_id = o.subscription_id
                           AND e.call_record_id = o.call_record_id AND e.id < o.id
                           AND (e.due_ticks > $3 OR e.lease_until_ticks > $3))
                     ORDER BY id LIMIT $4 FOR UPDATE OF o SKIP LOCKED
                 )
                 RETURNING id, tenant_id, subscription_id, event, call_record_id, target_url, client_state,
                           expiration_ticks, created_ticks, first_attempt_ticks, attempts
             )
             SELECT c.*, s.expiration_ticks AS subscription_expiration_ticks, s.document AS subscription_document
             FROM claimed c
             LEFT JOIN subscription s
               ON c.target_url IS NULL AND s.tenant_id = c.tenant_id AND s.id = c.subscription_id
             ORDER BY c.id",
        )
        .bind(worker)
        .bind(now + lease)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let expiration: Option<Timestamp> = row.try_get("subscription_expiration_ticks")?;
            let document: Option<String> = row.try_get("subscription_document")?;
            // A change row whose subscription was deleted since the sweep above has none: it
            // stays leased, and a later claim drops it.
            let subscription = expiration.zip(document.as_deref());
            claimed.extend(rules::ClaimedRow::from_row(row)?.deliver_to(subscription)?);
        }
        Ok(claimed)
    }

    async fn complete_notifications(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_notifications(&self, worker: &str, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until_ticks = 0 WHERE id = ANY($1) AND lease_owner = $2",
        )
        .bind(ids)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn retry_notifications(&self, retries: &[(i64, Timestamp)], now: Timestamp) -> StoreResult<()> {
        if retries.is_empty() {
            return Ok(());
        }
        let (ids, due): (Vec<i64>, Vec<i64>) = retries.iter().map(|&(id, due)| (id, due.ticks())).unzip();
        sqlx::query(
            "UPDATE outbox o SET attempts = o.attempts + 1, due_ticks = u.due_ticks, lease_owner = NULL,
               lease_until_ticks = 0, first_attempt_ticks = COALESCE(o.first_attempt_ticks, $3)
             FROM UNNEST($1::int8[], $2::int8[]) AS u (id, due_ticks)
             WHERE o.id = u.id",
        )
        .bind(&ids)
        .bind(&due)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> StoreResult<i64> {
        let depth = sql::Statement::new(<Self as sql::SqlBackend>::DIALECT, sql::OUTBOX_DEPTH, Vec::new());
        sql::SqlBackend::count(self, depth).await
    }
}

#[async_trait]
impl StoreHealth for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        let bytes: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')").fetch_one(&self.pool).await?;
        let call_records_by_tenant = sqlx::query_as::<_, (String, i64)>(sql::RECORDS_BY_TENANT)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(tenant, count)| (TenantId::from_stored(tenant), count))
            .collect();
        let log_rows_by_kind = sqlx::query_as::<_, (String, i64)>(sql::LOG_ROWS_BY_KIND)
            .fetch_all(&self.pool)
            .await?;
        Ok(StoreStats {
            bytes,
            call_records_by_tenant,
            log_rows_by_kind,
        })
    }
}
