//! The PostgreSQL store, for deployments that outgrow one SQLite file: several API nodes over one
//! database (or a Citus cluster sharded on the tenant). Its semantics are the `Store` contract
//! (checked by `store::contract`), its rules those of `store::rules`; the schema and its reasons
//! are in `migrations/postgres/0001_init.sql` (logs, and the partitioning every family shares),
//! `0002_subscriptions_outbox.sql` (change notifications) and `0006_compact_records.sql` (call
//! records: compressed documents, sessions and participants in parts, integer tenant keys).
//!
//! What differs from SQLite, and why:
//! - Tables are partitioned by calendar month of `start`, so retention drops whole months
//!   instead of deleting rows; `partitions` creates months on demand and drops expired ones.
//! - A partitioned table cannot declare `(tenant_key, id)` unique, so an upsert serialises on a
//!   transaction-scoped advisory lock per id, then deletes and inserts (a new version may start
//!   in another month).
//! - Writes are set-based (`UNNEST` of arrays, one statement per table), so a batch costs a few
//!   round trips whatever its size, and stays far from the protocol's 65,535 bind limit.
//! - Several nodes share the outbox: a claim leases rows with `FOR UPDATE SKIP LOCKED`, so
//!   concurrent claimers take disjoint rows without waiting on each other, and the quota and
//!   reauthorization reminders are made atomic across nodes by locks instead of SQLite's single
//!   writer.
//! - Several nodes train compression dictionaries: ids are handed out under an advisory lock, and
//!   a node that meets a frame naming a dictionary it does not hold loads the new ones.
//! - A store written by the previous layout is moved to this one when it is opened
//!   (`conversion`), in batches that each commit on their own, so several nodes may start at
//!   once and an interrupted start loses nothing.
//!
//! Never: HTTP, or SQL text from anything but our own constants and integers; every value is a
//! bind parameter.

mod conversion;
mod partitions;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};

use super::codec::{Codec, CodecError, CompressedRecord, DocumentKind, PartKind, StoredDictionary};
use super::*;
use crate::model::{LogKind, SubscriptionScope};
use crate::quality::QualityRows;
#[cfg(test)]
use conversion::Conversion;
use partitions::{Family, Month};

/// Connections per node. Each request holds one for a single statement or short transaction,
/// so 10 keeps a node's requests flowing while 10 nodes still fit PostgreSQL's default
/// `max_connections` of 100.
const POOL_SIZE: u32 = 10;

/// The advisory lock under which a node gives a new dictionary the next id, so that nodes
/// training at once never take the same one. The value spells "cr-dicts".
const DICTIONARY_LOCK: i64 = 0x6372_2d64_6963_7473;

pub(crate) struct PgStore {
    pool: PgPool,
    codec: Arc<Codec>,
    tenant_keys: TenantKeys,
    /// Months whose call-record partitions exist, as far as this process knows: the hot path
    /// checks here and does no DDL. Another node may drop a month; an insert that then finds no
    /// partition clears this and retries once.
    record_months: Mutex<HashSet<Month>>,
    /// The same for usage-log rows, which expire on their own schedule.
    log_months: Mutex<HashSet<Month>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    #[cfg(test)]
    /// Connects with the URL as given, applies pending migrations (sqlx's migrator holds an
    /// advisory lock, so nodes starting together take turns), loads the compression
    /// dictionaries, creates the partitions of the current and next month, and moves any
    /// records of the previous layout to the compact one.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// `open`, converting `options.conversion_batch` records per transaction.
    pub(crate) async fn open_with(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        let conversion = conversion::Conversion {
            batch: i64::from(options.conversion_batch),
            max_batches: None,
        };
        store
            .convert(conversion)
            .await
            .context("moving call records of the previous layout to the compact one")?;
        store
            .add_missing_analytics_rows(i64::from(options.conversion_batch))
            .await
            .context("adding analytics rows to stored call records")?;
        analytics::rebuild_pending_rollups(&store)
            .await
            .context("summing the analytics rollups from the rows")?;
        Ok(store)
    }

    /// Writes the analytics rows of every record stored before they existed, `batch` records a
    /// transaction, then removes the pending fact. Each transaction takes the records' write
    /// locks and reads them under them, so a node ingesting meanwhile is never overwritten with
    /// an older version's rows; a record's old rows go first, so doing one twice is harmless.
    async fn add_missing_analytics_rows(&self, batch: i64) -> anyhow::Result<()> {
        let pending: Option<i64> = sqlx::query_scalar("SELECT value FROM store_fact WHERE name = $1")
            .bind(analytics::ROWS_PENDING)
            .fetch_optional(&self.pool)
            .await?;
        if pending.is_none() {
            return Ok(());
        }
        let (mut after_tenant, mut after_id) = (i64::MIN, String::new());
        loop {
            let candidates: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT r.tenant_key, t.id, r.id FROM record r JOIN tenant t ON t.key = r.tenant_key
                 WHERE (r.tenant_key, r.id) > ($1, $2) ORDER BY r.tenant_key, r.id LIMIT $3",
            )
            .bind(after_tenant)
            .bind(&after_id)
            .bind(batch)
            .fetch_all(&self.pool)
            .await?;
            let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
            let Some((last_tenant, _, last_id)) = candidates.last().cloned() else {
                sqlx::query("DELETE FROM store_fact WHERE name = $1")
                    .bind(analytics::ROWS_PENDING)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                tracing::info!("every stored record has its analytics rows");
                return Ok(());
            };
            let keys: Vec<String> = candidates
                .iter()
                .map(|(_, tenant, id)| format!("{tenant}:{id}"))
                .collect();
            lock_keys(&mut tx, &keys).await?;
            let mut found = Vec::with_capacity(candidates.len());
            for (tenant_key, _, id) in &candidates {
                let Some((start, document)): Option<(i64, Vec<u8>)> =
                    sqlx::query_as("SELECT start_ticks, document FROM record WHERE tenant_key = $1 AND id = $2")
                        .bind(tenant_key)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?
                else {
                    continue;
                };
                let parts: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT body FROM record_part WHERE tenant_key = $1 AND record_id = $2 AND start_ticks = $3
                       AND kind = $4 ORDER BY first_ordinal",
                )
                .bind(tenant_key)
                .bind(id)
                .bind(start)
                .bind(part_code(PartKind::Sessions))
                .fetch_all(&mut *tx)
                .await?;
                let (document, sessions) = self
                    .decoded(|codec| {
                        let mut sessions = Vec::new();
                        for part in &parts {
                            sessions.extend(codec.decode_part(part)?.into_iter().map(|(_, session)| session));
                        }
                        Ok((codec.decode(&document)?, sessions))
                    })
                    .await?;
                found.push((
                    *tenant_key,
                    id,
                    start,
                    analytics::rows_of_stored(id, &document, sessions),
                ));
            }
            // Outside the transaction (on other connections), as ingest writes them.
            let rows: Vec<(i64, &QualityRows)> = found
                .iter()
                .map(|(tenant_key, _, _, rows)| (*tenant_key, rows))
                .collect();
            let dimensions = analytics::resolve_dimensions_by_tenant(self, &rows).await?;
            for (tenant_key, id, start, rows) in &found {
                let (record, start) = (analytics::RecordRef::Id(id), Timestamp::from_ticks(*start));
                let statements = analytics::delete_rows(sql::Dialect::Postgres, *tenant_key, record, start)
                    .into_iter()
                    .chain(analytics::added_rows(
                        sql::Dialect::Postgres,
                        *tenant_key,
                        &[(record, start, rows)],
                        &dimensions[tenant_key],
                    )?);
                for statement in statements {
                    bound(&statement).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            (after_tenant, after_id) = (last_tenant, last_id);
        }
    }

    /// `open`, with the conversion run as a test asks.
    #[cfg(test)]
    async fn open_converting(url: &str, conversion: Conversion) -> anyhow::Result<Self> {
        let store = Self::connect(url).await?;
        store.convert(conversion).await?;
        Ok(store)
    }

    /// `open` but for the conversion.
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        MIGRATOR.run(&pool).await.context("migrating the PostgreSQL database")?;
        let dictionaries = load_dictionaries(&pool).await?;
        let codec = Codec::with_dictionaries(&dictionaries);
        let store = Self {
            pool,
            codec: Arc::new(codec),
            tenant_keys: TenantKeys::default(),
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

    /// The tenant's key, if it ever wrote a record.
    async fn tenant_key(&self, tenant: &TenantId) -> StoreResult<Option<i64>> {
        sql::tenant_key(self, &self.tenant_keys, tenant).await
    }

    async fn tenant_key_for_writing(&self, tenant: &TenantId) -> StoreResult<i64> {
        sql::tenant_key_for_writing(self, &self.tenant_keys, tenant).await
    }

    /// Runs `decode`, and when it meets a frame naming a dictionary this node does not hold
    /// (another node trained it since this one loaded its own), loads the store's dictionaries
    /// and runs it once more.
    async fn decoded<T>(&self, decode: impl Fn(&Codec) -> Result<T, CodecError> + Send + Sync) -> StoreResult<T> {
        match decode(&self.codec) {
            Err(CodecError::UnknownDictionary(_)) => {
                self.load_new_dictionaries().await?;
                decode(&self.codec).map_err(codec_failure)
            }
            result => result.map_err(codec_failure),
        }
    }

    async fn load_new_dictionaries(&self) -> StoreResult<()> {
        // Checked as a whole, as at startup; installing one this node holds already changes
        // nothing.
        let dictionaries = load_dictionaries(&self.pool).await.map_err(StoreError::Other)?;
        for dictionary in &dictionaries {
            self.codec.install(dictionary);
        }
        Ok(())
    }

    async fn write_call_records(
        &self,
        tenant: &TenantId,
        tenant_key: i64,
        batch: &[PreparedRecord],
        compressed: &[CompressedRecord],
        now: Timestamp,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let rows: Vec<&QualityRows> = batch.iter().map(|record| &record.quality).collect();
        let dimensions = analytics::resolve_dimensions(self, tenant_key, &rows).await?;
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        lock_ids(&mut tx, tenant.as_str(), &ids).await?;
        let scopes = active_scopes(&mut tx, tenant, now).await?;
        let stored: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT id, version, start_ticks FROM record WHERE tenant_key = $1 AND id = ANY($2)")
                .bind(tenant_key)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
        let stored: HashMap<String, (i64, i64)> = stored
            .into_iter()
            .map(|(id, version, start)| (id, (version, start)))
            .collect();
        let plan = rules::plan_upsert(&stored, batch);
        for &index in &plan.writes {
            rules::refuse_repeated_ids(&batch[index])?;
        }

        if !plan.replaces.is_empty() {
            let (old_ids, old_starts): (Vec<&str>, Vec<i64>) =
                plan.replaces.iter().map(|(id, start)| (id.as_str(), *start)).unzip();
            // The replaced records' rows are found by (start, id) pairs, which the planner looks
            // up one by one by the primary key whatever it knows of the tables (see
            // analytics::ChangedRows).
            let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT c.body FROM unnest($2::BIGINT[], $3::TEXT[]) AS old(start_ticks, id)
                 JOIN record_part c ON c.tenant_key = $1 AND c.start_ticks = old.start_ticks
                   AND c.record_id = old.id AND c.kind = $4",
            )
            .bind(tenant_key)
            .bind(&old_starts)
            .bind(&old_ids)
            .bind(part_code(PartKind::Participants))
            .fetch_all(&mut *tx)
            .await?;
            let old_participants: Vec<String> = self
                .decoded(|codec| {
                    let mut ids = HashSet::new();
                    for body in &bodies {
                        ids.extend(codec.decode_part(body)?.into_iter().map(|(id, _)| id));
                    }
                    Ok(ids.into_iter().collect())
                })
                .await?;
            // Every reference naming a replaced id is one of its record's, which goes whole; the
            // participant ids only let the primary key find them. Pairing the lists of starts and
            // ids loosely is exact: an id has one record, so its references carry its own start.
            sqlx::query(
                "DELETE FROM participant_ref
                 WHERE tenant_key = $1 AND participant_id = ANY($2) AND start_ticks = ANY($3) AND record_id = ANY($4)",
            )
            .bind(tenant_key)
            .bind(&old_participants)
            .bind(&old_starts)
            .bind(&old_ids)
            .execute(&mut *tx)
            .await?;
            let replaced: Vec<_> = plan
                .replaces
                .iter()
                .map(|(id, start)| (analytics::RecordRef::Id(id), Timestamp::from_ticks(*start)))
                .collect();
            for statement in analytics::daily_changes(sql::Dialect::Postgres, tenant_key, &replaced, -1) {
                bound(&statement).execute(&mut *tx).await?;
            }
            for (table, id_column) in [
                ("record_part", "record_id"),
                ("stream", "record_id"),
                ("call_leg", "record_id"),
                ("record", "id"),
            ] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE tenant_key = $1
                     AND (start_ticks, {id_column}) IN (SELECT * FROM unnest($2::BIGINT[], $3::TEXT[]))"
                ))
                .bind(tenant_key)
                .bind(&old_starts)
                .bind(&old_ids)
                .execute(&mut *tx)
                .await?;
            }
        }

        let writes: Vec<RecordWrite<'_>> = plan
            .writes
            .iter()
            .map(|&index| RecordWrite {
                tenant_key,
                record: &batch[index],
                compressed: &compressed[index],
                stored_at: now.ticks(),
                organizer_at: Some(batch[index].organizer_at),
            })
            .collect();
        insert_records(&mut tx, &writes).await?;
        let rows: Vec<_> = writes
            .iter()
            .map(|write| {
                let record = write.record;
                (analytics::RecordRef::Id(&record.id), record.start, &record.quality)
            })
            .collect();
        for statement in analytics::added_rows(sql::Dialect::Postgres, tenant_key, &rows, &dimensions)? {
            bound(&statement).execute(&mut *tx).await?;
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
    let keys: Vec<String> = ids.iter().map(|id| format!("{prefix}:{id}")).collect();
    lock_keys(tx, &keys).await
}

/// The advisory locks of `lock_ids`, given whole keys (`tenant:id`), so that a purge can lock
/// records of several tenants in the same order and the same lock space as their writers.
async fn lock_keys(tx: &mut WriteTransaction<Postgres>, keys: &[String]) -> Result<(), sqlx::Error> {
    // The ORDER BY sits in a subquery so that the locks are taken in sorted order: PostgreSQL
    // does not flatten a subquery that sorts.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended(key, 0) AS k FROM UNNEST($1::text[]) AS u (key) ORDER BY k
         ) AS keys",
    )
    .bind(keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A record to insert, compressed, with the columns that are not in `PreparedRecord`: an
/// upsert stores `now` and the record's own organizer offset, the conversion what the previous
/// layout held (where the offset may be unknown).
struct RecordWrite<'a> {
    tenant_key: i64,
    record: &'a PreparedRecord,
    compressed: &'a CompressedRecord,
    stored_at: i64,
    organizer_at: Option<i64>,
}

fn part_code(kind: PartKind) -> i16 {
    // The codes are 0 and 1.
    kind.code() as i16
}

/// Inserts records with their parts and a participant reference for each participant of each
/// record, one statement per table. A record's parts and references carry its start,
/// so they land in its month.
async fn insert_records(tx: &mut WriteTransaction<Postgres>, writes: &[RecordWrite<'_>]) -> Result<(), sqlx::Error> {
    if writes.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&RecordWrite<'_>) -> i64| writes.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO record (tenant_key, id, start_ticks, version, end_ticks, n_sessions, n_participants,
                             stored_at_ticks, organizer_at, document)
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::int8[],
                              $8::int8[], $9::int8[], $10::bytea[])",
    )
    .bind(column(|w| w.tenant_key))
    .bind(writes.iter().map(|w| w.record.id.as_str()).collect::<Vec<_>>())
    .bind(column(|w| w.record.start.ticks()))
    .bind(column(|w| w.record.version))
    .bind(column(|w| w.record.end.ticks()))
    .bind(column(|w| w.record.sessions.len() as i64))
    .bind(column(|w| w.record.participants.len() as i64))
    .bind(column(|w| w.stored_at))
    .bind(writes.iter().map(|w| w.organizer_at).collect::<Vec<_>>())
    .bind(
        writes
            .iter()
            .map(|w| w.compressed.document.as_slice())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;

    let n_parts: usize = writes.iter().map(|w| w.compressed.parts.len()).sum();
    if n_parts > 0 {
        let mut tenant_keys = Vec::with_capacity(n_parts);
        let mut record_ids = Vec::with_capacity(n_parts);
        let mut starts = Vec::with_capacity(n_parts);
        let mut kinds = Vec::with_capacity(n_parts);
        let mut first_ordinals = Vec::with_capacity(n_parts);
        let mut bodies = Vec::with_capacity(n_parts);
        for write in writes {
            for part in &write.compressed.parts {
                tenant_keys.push(write.tenant_key);
                record_ids.push(write.record.id.as_str());
                starts.push(write.record.start.ticks());
                kinds.push(part_code(part.kind));
                first_ordinals.push(part.first_ordinal);
                bodies.push(part.body.as_slice());
            }
        }
        sqlx::query(
            "INSERT INTO record_part (tenant_key, record_id, start_ticks, kind, first_ordinal, body)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::int2[], $5::int8[], $6::bytea[])",
        )
        .bind(&tenant_keys)
        .bind(&record_ids)
        .bind(&starts)
        .bind(&kinds)
        .bind(&first_ordinals)
        .bind(&bodies)
        .execute(&mut **tx)
        .await?;
    }

    let (mut tenant_keys, mut participant_ids, mut starts, mut record_ids) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for write in writes {
        for (participant_id, _) in &write.record.participants {
            tenant_keys.push(write.tenant_key);
            participant_ids.push(participant_id.as_str());
            starts.push(write.record.start.ticks());
            record_ids.push(write.record.id.as_str());
        }
    }
    if !participant_ids.is_empty() {
        sqlx::query(
            "INSERT INTO participant_ref (tenant_key, participant_id, start_ticks, record_id)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[])",
        )
        .bind(&tenant_keys)
        .bind(&participant_ids)
        .bind(&starts)
        .bind(&record_ids)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The store's dictionaries, checked (`store::checked_dictionaries`).
async fn load_dictionaries(pool: &PgPool) -> anyhow::Result<Vec<StoredDictionary>> {
    let rows: Vec<DictionaryRow> = sqlx::query_as(sql::DICTIONARIES).fetch_all(pool).await?;
    let issued: Option<i64> = sqlx::query_scalar(sql::DICTIONARIES_ISSUED)
        .fetch_optional(pool)
        .await?;
    checked_dictionaries(rows, issued)
}

#[async_trait]
impl DictionaryStore for PgStore {
    async fn add_dictionary(
        &self,
        kind: DocumentKind,
        trained: Vec<u8>,
        now: Timestamp,
    ) -> StoreResult<StoredDictionary> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DICTIONARY_LOCK)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(sql::NEXT_DICTIONARY_ID).fetch_one(&mut *tx).await?;
        let id = u32::try_from(id).map_err(|_| StoreError::Other(anyhow::anyhow!("dictionary ids are exhausted")))?;
        let dictionary = StoredDictionary::new(id, kind, trained, now);
        for statement in sql::insert_dictionary(sql::Dialect::Postgres, &dictionary) {
            bound(&statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(dictionary)
    }
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

/// `is_missing_partition`, of a write that may also fail for reasons of its own.
fn store_missing_partition(error: &StoreError) -> bool {
    matches!(error, StoreError::Other(error) if error.downcast_ref::<sqlx::Error>().is_some_and(is_missing_partition))
}

/// Maps the columns of `sql::RECORD_COLUMNS`.
fn encoded_record(row: &PgRow) -> Result<EncodedRecord, sqlx::Error> {
    Ok(EncodedRecord {
        id: row.try_get("id")?,
        start: row.try_get("start_ticks")?,
        document: row.try_get("document")?,
        n_sessions: row.try_get("n_sessions")?,
        n_participants: row.try_get("n_participants")?,
        organizer_at: row.try_get("organizer_at")?,
    })
}

/// The items of consecutive parts `(first ordinal, frame)` from ordinal `first` on, at most
/// `limit` of them.
fn children_from(
    codec: &Codec,
    parts: &[(i64, Vec<u8>)],
    first: i64,
    limit: usize,
) -> Result<Vec<StoredChild>, CodecError> {
    let mut children = Vec::new();
    for (first_ordinal, body) in parts {
        if children.len() >= limit {
            break;
        }
        for (ordinal, (_, document)) in (*first_ordinal..).zip(codec.decode_part(body)?) {
            if ordinal >= first && children.len() < limit {
                children.push(StoredChild { ordinal, document });
            }
        }
    }
    Ok(children)
}

/// The first item with `id` among consecutive parts, with its ordinal.
fn child_with_id(codec: &Codec, parts: &[(i64, Vec<u8>)], id: &str) -> Result<Option<StoredChild>, CodecError> {
    for (first_ordinal, body) in parts {
        let found = (*first_ordinal..)
            .zip(codec.decode_part(body)?)
            .find(|(_, (item_id, _))| item_id == id);
        if let Some((ordinal, (_, document))) = found {
            return Ok(Some(StoredChild { ordinal, document }));
        }
    }
    Ok(None)
}

/// A statement from `sql`, with its values bound; a list of texts is a `text[]`.
fn bound(statement: &sql::Statement) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    statement
        .values
        .iter()
        .fold(sqlx::query(&statement.sql), |query, value| match value {
            sql::SqlValue::Text(text) => query.bind(text.as_str()),
            sql::SqlValue::OptionalText(text) => query.bind(text.as_deref()),
            sql::SqlValue::Integer(integer) => query.bind(*integer),
            sql::SqlValue::OptionalInteger(integer) => query.bind(*integer),
            sql::SqlValue::Bool(value) => query.bind(*value),
            sql::SqlValue::TextList(list) => query.bind(list.as_deref()),
            sql::SqlValue::IntegerList(list) => query.bind(list.as_slice()),
            sql::SqlValue::OptionalIntegerList(list) => query.bind(list.as_slice()),
            sql::SqlValue::BoolList(list) => query.bind(list.as_slice()),
            sql::SqlValue::OptionalTextList(list) => query.bind(list.as_slice()),
            sql::SqlValue::Bytes(bytes) => query.bind(bytes.as_slice()),
        })
}

impl PgStore {
    /// The parts of one kind of a record, in order, from the part holding ordinal `first` up to
    /// the one holding ordinal `end - 1`. Joining the record gives its start, which prunes the
    /// parts to its month.
    async fn parts(
        &self,
        tenant_key: i64,
        record_id: &str,
        kind: PartKind,
        first: i64,
        end: i64,
    ) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        Ok(sqlx::query_as(
            "SELECT c.first_ordinal, c.body FROM record r
             JOIN record_part c ON c.tenant_key = r.tenant_key AND c.record_id = r.id AND c.start_ticks = r.start_ticks
             WHERE r.tenant_key = $1 AND r.id = $2 AND c.kind = $3 AND c.first_ordinal >= $4 AND c.first_ordinal < $5
             ORDER BY c.first_ordinal",
        )
        .bind(tenant_key)
        .bind(record_id)
        .bind(part_code(kind))
        .bind(kind.part_start(first))
        .bind(end)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_children(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        kind: PartKind,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let first = after_ordinal.map_or(0, |after| after.saturating_add(1)).max(0);
        let end = first.saturating_add(i64::from(limit));
        let parts = self.parts(tenant_key, call_record_id, kind, first, end).await?;
        self.decoded(|codec| children_from(codec, &parts, first, limit as usize))
            .await
    }

    async fn get_child(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        kind: PartKind,
        id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(None);
        };
        let parts = self.parts(tenant_key, call_record_id, kind, 0, i64::MAX).await?;
        self.decoded(|codec| child_with_id(codec, &parts, id)).await
    }
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
        let tenant_key = self.tenant_key_for_writing(tenant).await?;
        let compressed = compress_for_storage(&self.codec, self, batch, now).await?;
        let mut retried = false;
        loop {
            self.ensure_partitions(Family::Records, batch.iter().map(|r| r.start))
                .await?;
            match self
                .write_call_records(tenant, tenant_key, batch, &compressed, now)
                .await
            {
                Err(error) if !retried && store_missing_partition(&error) => {
                    self.forget_months(Family::Records);
                    retried = true;
                }
                res => return res,
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
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(Vec::new());
        };
        let read = sql::SelectionRead::Page { cursor, limit };
        let statement = sql::selection_statement(sql::Dialect::Postgres, tenant_key, selection, read);
        let rows = bound(&statement).fetch_all(&self.pool).await?;
        let rows: Vec<EncodedRecord> = rows.iter().map(encoded_record).collect::<Result<_, _>>()?;
        self.decoded(|codec| rows.iter().map(|row| row.decode(codec)).collect())
            .await
    }

    async fn count_call_records(&self, tenant: &TenantId, selection: &RecordSelection) -> StoreResult<i64> {
        if selection.is_empty_range() {
            return Ok(0);
        }
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(0);
        };
        let statement =
            sql::selection_statement(sql::Dialect::Postgres, tenant_key, selection, sql::SelectionRead::Count);
        let row = bound(&statement).fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    async fn get_call_record(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
    ) -> StoreResult<Option<StoredRecord>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(None);
        };
        let row = sqlx::query(&format!(
            "SELECT {} FROM record r WHERE r.tenant_key = $1 AND r.id = $2 AND r.start_ticks >= $3",
            sql::RECORD_COLUMNS
        ))
        .bind(tenant_key)
        .bind(id)
        .bind(visible_from.unwrap_or(Timestamp::from_ticks(i64::MIN)))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row.as_ref().map(encoded_record).transpose()? else {
            return Ok(None);
        };
        Ok(Some(self.decoded(|codec| row.decode(codec)).await?))
    }

    async fn get_call_record_with_sessions(
        &self,
        tenant: &TenantId,
        id: &str,
        visible_from: Option<Timestamp>,
        limit: u32,
    ) -> StoreResult<Option<(StoredRecord, Vec<StoredChild>)>> {
        let Some(tenant_key) = self.tenant_key(tenant).await? else {
            return Ok(None);
        };
        // One statement sees one snapshot (READ COMMITTED), so the sessions are those of the
        // version of the record returned with them. `c.start_ticks = r.start_ticks` lets the
        // executor prune the parts to the record's month.
        let row = sqlx::query(&format!(
            "SELECT {},
                    ARRAY(SELECT c.first_ordinal FROM record_part c
                          WHERE c.tenant_key = r.tenant_key AND c.record_id = r.id AND c.start_ticks = r.start_ticks
                            AND c.kind = $4 AND c.first_ordinal < $5
                          ORDER BY c.first_ordinal) AS part_ordinals,
                    ARRAY(SELECT c.body FROM record_part c
                          WHERE c.tenant_key = r.tenant_key AND c.record_id = r.id AND c.start_ticks = r.start_ticks
                            AND c.kind = $4 AND c.first_ordinal < $5
                          ORDER BY c.first_ordinal) AS part_bodies
             FROM record r WHERE r.tenant_key = $1 AND r.id = $2 AND r.start_ticks >= $3",
            sql::RECORD_COLUMNS
        ))
        .bind(tenant_key)
        .bind(id)
        .bind(visible_from.unwrap_or(Timestamp::from_ticks(i64::MIN)))
        .bind(part_code(PartKind::Sessions))
        .bind(i64::from(limit))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = encoded_record(&row)?;
        let ordinals: Vec<i64> = row.try_get("part_ordinals")?;
        let bodies: Vec<Vec<u8>> = row.try_get("part_bodies")?;
        if ordinals.len() != bodies.len() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "record {id}: {} session part ordinals against {} parts",
                ordinals.len(),
                bodies.len()
            )));
        }
        let parts: Vec<(i64, Vec<u8>)> = ordinals.into_iter().zip(bodies).collect();
        let decoded = self
            .decoded(|codec| Ok((record.decode(codec)?, children_from(codec, &parts, 0, limit as usize)?)))
            .await?;
        Ok(Some(decoded))
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        self.list_children(tenant, call_record_id, PartKind::Sessions, after_ordinal, limit)
            .await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        session_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        self.get_child(tenant, call_record_id, PartKind::Sessions, session_id)
            .await
    }

    async fn list_participants(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        after_ordinal: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredChild>> {
        self.list_children(tenant, call_record_id, PartKind::Participants, after_ordinal, limit)
            .await
    }

    async fn get_participant(
        &self,
        tenant: &TenantId,
        call_record_id: &str,
        participant_id: &str,
    ) -> StoreResult<Option<StoredChild>> {
        self.get_child(tenant, call_record_id, PartKind::Participants, participant_id)
            .await
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
    /// to `limit` records of the month that straddles it, with their parts and references, in
    /// one transaction.
    #[tracing::instrument(skip(self))]
    async fn purge_call_records_before(&self, before: Timestamp, limit: u32) -> StoreResult<u64> {
        let dropped = self.drop_expired_months(Family::Records, before).await?;
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        // `start_ticks < $1` on each statement prunes the plan to the months the cutoff reaches.
        let victims: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT v.tenant_key, t.id, v.id, v.start_ticks FROM (
                 SELECT tenant_key, id, start_ticks FROM record WHERE start_ticks < $1 ORDER BY start_ticks LIMIT $2
             ) AS v JOIN tenant t ON t.key = v.tenant_key",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if victims.is_empty() {
            tx.rollback().await?;
            return Ok(dropped);
        }
        // The writers' locks: a record being replaced is purged after its writer commits, so
        // the parts read below are those of the version that is deleted. A version replaced
        // meanwhile by one of another start is gone and not counted; one of the same start has
        // expired as well.
        let keys: Vec<String> = victims
            .iter()
            .map(|(_, tenant, id, _)| format!("{tenant}:{id}"))
            .collect();
        lock_keys(&mut tx, &keys).await?;
        let tenant_keys: Vec<i64> = victims.iter().map(|v| v.0).collect();
        let ids: Vec<&str> = victims.iter().map(|v| v.2.as_str()).collect();
        let starts: Vec<i64> = victims.iter().map(|v| v.3).collect();
        let parts: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT u.n, c.body
             FROM UNNEST($1::int8[], $2::text[], $3::int8[]) WITH ORDINALITY AS u (tenant_key, record_id, start_ticks, n)
             CROSS JOIN LATERAL (
                 SELECT c.body FROM record_part c
                 WHERE c.start_ticks < $4 AND c.tenant_key = u.tenant_key AND c.record_id = u.record_id
                   AND c.start_ticks = u.start_ticks AND c.kind = $5
             ) AS c",
        )
        .bind(&tenant_keys)
        .bind(&ids)
        .bind(&starts)
        .bind(before)
        .bind(part_code(PartKind::Participants))
        .fetch_all(&mut *tx)
        .await?;
        // (index of the victim, participant id)
        let references: Vec<(usize, String)> = self
            .decoded(|codec| {
                let mut references = HashSet::new();
                for (n, body) in &parts {
                    // WITH ORDINALITY counts the victims from 1.
                    let Some(victim) = usize::try_from(*n).ok().and_then(|n| n.checked_sub(1)) else {
                        continue;
                    };
                    references.extend(codec.decode_part(body)?.into_iter().map(|(id, _)| (victim, id)));
                }
                Ok(references
                    .into_iter()
                    .filter(|(victim, _)| *victim < victims.len())
                    .collect())
            })
            .await?;
        let reference_column = |f: fn(&(i64, String, String, i64)) -> i64| {
            references
                .iter()
                .map(|(victim, _)| f(&victims[*victim]))
                .collect::<Vec<i64>>()
        };
        sqlx::query(
            "DELETE FROM participant_ref p
             USING UNNEST($1::int8[], $2::text[], $3::int8[], $4::text[]) AS u (tenant_key, participant_id, start_ticks, record_id)
             WHERE p.start_ticks < $5 AND p.tenant_key = u.tenant_key AND p.participant_id = u.participant_id
               AND p.start_ticks = u.start_ticks AND p.record_id = u.record_id",
        )
        .bind(reference_column(|v| v.0))
        .bind(references.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>())
        .bind(reference_column(|v| v.3))
        .bind(references.iter().map(|(victim, _)| victims[*victim].2.as_str()).collect::<Vec<_>>())
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let mut locked_tenants = tenant_keys.clone();
        locked_tenants.sort_unstable();
        locked_tenants.dedup();
        for tenant_key in locked_tenants {
            if let Some(statement) = analytics::rollups_writer_lock(sql::Dialect::Postgres, tenant_key) {
                bound(&statement).execute(&mut *tx).await?;
            }
        }
        for fact in [analytics::Fact::Streams, analytics::Fact::Legs] {
            for change in analytics::daily_change(
                sql::Dialect::Postgres,
                fact,
                -1,
                &analytics::ChangedRows::Where(
                    "start_ticks < $4 AND (tenant_key, record_id, start_ticks) IN
                     (SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[]))",
                ),
            ) {
                sqlx::query(&change)
                    .bind(&tenant_keys)
                    .bind(&ids)
                    .bind(&starts)
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for table in ["stream", "call_leg"] {
            sqlx::query(&format!(
                "DELETE FROM {table} c USING UNNEST($1::int8[], $2::text[], $3::int8[]) AS u (tenant_key, record_id, start_ticks)
                 WHERE c.start_ticks < $4 AND c.tenant_key = u.tenant_key AND c.record_id = u.record_id
                   AND c.start_ticks = u.start_ticks"
            ))
            .bind(&tenant_keys)
            .bind(&ids)
            .bind(&starts)
            .bind(before)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "DELETE FROM record_part c USING UNNEST($1::int8[], $2::text[], $3::int8[]) AS u (tenant_key, record_id, start_ticks)
             WHERE c.start_ticks < $4 AND c.tenant_key = u.tenant_key AND c.record_id = u.record_id
               AND c.start_ticks = u.start_ticks",
        )
        .bind(&tenant_keys)
        .bind(&ids)
        .bind(&starts)
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "DELETE FROM record r USING UNNEST($1::int8[], $2::text[], $3::int8[]) AS u (tenant_key, id, start_ticks)
             WHERE r.start_ticks < $4 AND r.tenant_key = u.tenant_key AND r.id = u.id AND r.start_ticks = u.start_ticks",
        )
        .bind(&tenant_keys)
        .bind(&ids)
        .bind(&starts)
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(dropped + deleted)
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
