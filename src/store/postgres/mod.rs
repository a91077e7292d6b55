//! The PostgreSQL store, for deployments that outgrow one SQLite file: several API nodes over one
//! database (or a Citus cluster sharded on `tenant_id`). Same semantics, ordering and outcomes as
//! `sqlite`; the schema and its reasons are in `migrations/postgres/0001_init.sql`.
//!
//! What differs from SQLite, and why:
//! - Tables are partitioned by calendar month of `start_ticks`, so retention drops whole months
//!   instead of deleting rows; `partitions` creates months on demand and drops expired ones.
//! - A partitioned table cannot declare `(tenant_id, id)` unique, so an upsert serialises on a
//!   transaction-scoped advisory lock per id, then deletes and inserts (a new version may start
//!   in another month).
//! - Writes are set-based (`UNNEST` of arrays, one statement per table), so a batch costs a few
//!   round trips whatever its size, and stays far from the protocol's 65,535 bind limit.
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
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use super::*;
use crate::model::LogKind;
use partitions::{Family, Month};

/// Connections per node. Each request holds one for a single statement or short transaction,
/// so 10 keeps a node's requests flowing while 10 nodes still fit PostgreSQL's default
/// `max_connections` of 100.
const POOL_SIZE: u32 = 10;

pub struct PgStore {
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
    ) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        lock_ids(&mut tx, tenant.as_str(), &ids).await?;
        let stored: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT id, version, start_ticks FROM call_record WHERE tenant_id = $1 AND id = ANY($2)")
                .bind(tenant.as_str())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;

        // Graph's version rule applied in order, as if record by record: a later copy of an id in
        // the same batch is judged against the earlier one. Only each id's last accepted version
        // is written.
        let mut version_of: HashMap<&str, i64> =
            stored.iter().map(|(id, version, _)| (id.as_str(), *version)).collect();
        let mut accepted: HashMap<&str, usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for (index, record) in batch.iter().enumerate() {
            let outcome = match version_of.get(record.id.as_str()) {
                Some(&version) if version >= record.version => UpsertOutcome::Ignored,
                Some(_) => UpsertOutcome::Replaced,
                None => UpsertOutcome::Stored,
            };
            if outcome != UpsertOutcome::Ignored {
                version_of.insert(&record.id, record.version);
                accepted.insert(&record.id, index);
            }
            outcomes.push(outcome);
        }

        let (old_ids, old_starts): (Vec<&str>, Vec<i64>) = stored
            .iter()
            .filter(|(id, _, _)| accepted.contains_key(id.as_str()))
            .map(|(id, _, start_ticks)| (id.as_str(), *start_ticks))
            .unzip();
        if !old_ids.is_empty() {
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

        let winners: Vec<&PreparedRecord> = {
            let mut indexes: Vec<usize> = accepted.into_values().collect();
            indexes.sort_unstable();
            indexes.into_iter().map(|i| &batch[i]).collect()
        };
        if !winners.is_empty() {
            insert_records(&mut tx, tenant, &winners).await?;
            insert_children(&mut tx, tenant, &winners, "session", |r| &r.sessions).await?;
            insert_children(&mut tx, tenant, &winners, "participant", |r| &r.participants).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn write_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> Result<Vec<UpsertOutcome>, sqlx::Error> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let mut tx = self.pool.begin().await?;
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
                new_starts.push(row.start_ticks);
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
async fn lock_ids(tx: &mut Transaction<'_, Postgres>, prefix: &str, ids: &[&str]) -> Result<(), sqlx::Error> {
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
    tx: &mut Transaction<'_, Postgres>,
    tenant: &TenantId,
    records: &[&PreparedRecord],
) -> Result<(), sqlx::Error> {
    let stored_at = DateTimeOffset::now().unix_ticks();
    let column = |f: fn(&PreparedRecord) -> i64| records.iter().map(|r| f(r)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO call_record (tenant_id, id, version, start_ticks, end_ticks, n_sessions, n_participants, stored_at_ticks, document)
         SELECT $1, u.id, u.version, u.start_ticks, u.end_ticks, u.n_sessions, u.n_participants, $2, u.document
         FROM UNNEST($3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::text[])
           AS u (id, version, start_ticks, end_ticks, n_sessions, n_participants, document)",
    )
    .bind(tenant.as_str())
    .bind(stored_at)
    .bind(records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(column(|r| r.version))
    .bind(column(|r| r.start_ticks))
    .bind(column(|r| r.end_ticks))
    .bind(column(|r| r.sessions.len() as i64))
    .bind(column(|r| r.participants.len() as i64))
    .bind(records.iter().map(|r| r.document.as_str()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the sessions or participants of `records`, numbering each record's children from 0
/// in the order sent, and giving them the record's start so they land in its month.
async fn insert_children(
    tx: &mut Transaction<'_, Postgres>,
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
            starts.push(record.start_ticks);
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

/// Whether an insert met a month with no partition: another node dropped one we had cached.
fn is_missing_partition(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23514") && db.message().starts_with("no partition of relation"))
}

fn stored_record(row: &PgRow) -> Result<StoredRecord, sqlx::Error> {
    Ok(StoredRecord {
        id: row.try_get("id")?,
        start_ticks: row.try_get("start_ticks")?,
        document: row.try_get("document")?,
        n_sessions: row.try_get("n_sessions")?,
        n_participants: row.try_get("n_participants")?,
    })
}

fn stored_child(row: &PgRow) -> Result<StoredChild, sqlx::Error> {
    Ok(StoredChild {
        ordinal: row.try_get("ordinal")?,
        document: row.try_get("document")?,
    })
}

/// Appends the FROM and WHERE clauses of a selection over `r` (call_record), driving from the
/// participant index `p` when a participant is named, exactly as the SQLite store does, and
/// returns the (start, id) columns a list orders by. Joins also match on start_ticks: it is part
/// of every key, and lets each probe stay within one month.
fn push_selection<'a>(
    query: &mut QueryBuilder<'a, Postgres>,
    tenant: &'a TenantId,
    selection: &'a RecordSelection,
    cursor: Option<&'a RecordCursor>,
) -> (&'static str, &'static str) {
    let (start_column, id_column) = match selection.participant_ids.first() {
        Some(first) => {
            query.push(
                " FROM participant p JOIN call_record r ON r.tenant_id = p.tenant_id AND r.id = p.call_record_id
                  AND r.start_ticks = p.start_ticks WHERE p.tenant_id = ",
            );
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
        query.push(
            " AND EXISTS (SELECT 1 FROM participant q WHERE q.tenant_id = r.tenant_id AND q.call_record_id = r.id
              AND q.start_ticks = r.start_ticks AND q.id = ",
        );
        query.push_bind(other.as_str()).push(")");
    }
    (start_column, id_column)
}

#[async_trait]
impl Store for PgStore {
    #[tracing::instrument(skip_all, fields(n_records = batch.len()))]
    async fn upsert_call_records(
        &self,
        tenant: &TenantId,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut retried = false;
        loop {
            self.ensure_partitions(Family::Records, batch.iter().map(|r| r.start_ticks))
                .await?;
            match self.write_call_records(tenant, batch).await {
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
        let mut query =
            QueryBuilder::<Postgres>::new("SELECT r.id, r.start_ticks, r.document, r.n_sessions, r.n_participants");
        let (start_column, id_column) = push_selection(&mut query, tenant, selection, cursor);
        query.push(format_args!(" ORDER BY {start_column}, {id_column} LIMIT "));
        query.push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(stored_record).collect::<Result<_, _>>()?)
    }

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64> {
        if selection.is_empty_range() {
            return Ok(0);
        }
        // PostgreSQL, unlike SQLite, rejects an ORDER BY beside an aggregate; a count needs none.
        let mut query = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        push_selection(&mut query, tenant, selection, None);
        Ok(query.build_query_scalar().fetch_one(&self.pool).await?)
    }

    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<i64>,
    ) -> StoreResult<Option<StoredRecord>> {
        let row = sqlx::query(
            "SELECT id, start_ticks, document, n_sessions, n_participants FROM call_record
             WHERE tenant_id = $1 AND id = $2 AND start_ticks >= $3",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(visible_from.unwrap_or(i64::MIN))
        .fetch_optional(&self.pool)
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

    #[tracing::instrument(skip_all, fields(kind = kind.as_str(), n_rows = batch.len()))]
    async fn upsert_log_rows(
        &self,
        tenant: &TenantId,
        kind: LogKind,
        batch: &[PreparedLogRow],
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let mut retried = false;
        loop {
            self.ensure_partitions(Family::Logs, batch.iter().map(|r| r.start_ticks))
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
        let mut sql = QueryBuilder::<Postgres>::new("SELECT id, start_ticks, document FROM log_row WHERE tenant_id = ");
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
        let rows = sql.build().fetch_all(&self.pool).await?;
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

    /// Drops every month that ended by `before_ticks` (reporting its records), then deletes up
    /// to `limit` records of the month that straddles it, with their children, in one statement.
    #[tracing::instrument(skip(self))]
    async fn purge_call_records_before(&self, before_ticks: i64, limit: u32) -> StoreResult<u64> {
        let dropped = self.drop_expired_months(Family::Records, before_ticks).await?;
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
        .bind(before_ticks)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(dropped + deleted.unsigned_abs())
    }

    /// Drops every month that ended by `before_ticks` (reporting its rows), then deletes up to
    /// `limit` rows of the month that straddles it.
    #[tracing::instrument(skip(self))]
    async fn purge_log_rows_before(&self, before_ticks: i64, limit: u32) -> StoreResult<u64> {
        let dropped = self.drop_expired_months(Family::Logs, before_ticks).await?;
        let deleted = sqlx::query(
            "WITH victim AS (
                 SELECT tenant_id, kind, id, start_ticks FROM log_row
                 WHERE start_ticks < $1 ORDER BY start_ticks LIMIT $2
             )
             DELETE FROM log_row l USING victim v
             WHERE l.start_ticks < $1 AND l.tenant_id = v.tenant_id AND l.kind = v.kind AND l.id = v.id
               AND l.start_ticks = v.start_ticks",
        )
        .bind(before_ticks)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(dropped + deleted)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
