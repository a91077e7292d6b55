//! Moves the call records of the previous layout (`call_record`, `session`, `participant`, with
//! a row per session and participant and documents as text) to the compact one, when a store
//! is opened, then drops the previous tables.
//!
//! Each batch is one transaction that inserts the records in the compact tables and deletes
//! them from the previous ones, so a node killed at any point has lost nothing and stored
//! nothing twice, and the next start goes on from there. Batches lock their rows with
//! `SKIP LOCKED`, so nodes starting together share the work instead of queueing.
//!
//! Never: change what a record says. Versions, times, the time of storage and the organizer
//! offset (unknown for the oldest records) are kept as they were.

use anyhow::Context;
use sqlx::{Postgres, Row};

use super::{
    compress_for_storage, insert_records, Family, PgStore, PreparedRecord, RecordWrite, TenantId, Timestamp,
    WriteTransaction,
};

/// How the conversion runs: the records per batch and, for tests that stop it half way, how
/// many batches at most.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conversion {
    pub(super) batch: i64,
    pub(super) max_batches: Option<u64>,
}

impl Default for Conversion {
    fn default() -> Self {
        Self {
            batch: i64::from(super::CONVERSION_BATCH),
            max_batches: None,
        }
    }
}

/// What a record of the previous layout keeps that `PreparedRecord` does not carry.
struct Previous {
    tenant: String,
    stored_at: i64,
    organizer_at: Option<i64>,
}

impl PgStore {
    #[cfg(test)]
    /// Moves every record of the previous layout to the compact one and drops the previous
    /// tables; returns how many records it moved. Nothing to do on a store created with the
    /// compact layout, or already converted.
    pub(super) async fn convert_previous_layout(&self) -> anyhow::Result<u64> {
        self.convert(Conversion::default()).await
    }

    pub(super) async fn convert(&self, conversion: Conversion) -> anyhow::Result<u64> {
        let mut converted = 0;
        let mut batches = 0;
        loop {
            if !self.previous_layout_exists().await? {
                return Ok(converted);
            }
            if conversion.max_batches.is_some_and(|most| batches >= most) {
                return Ok(converted);
            }
            let moved = match self.convert_batch(conversion.batch).await {
                Ok(moved) => moved,
                // Another node found them empty and dropped them while this batch waited.
                Err(_) if !self.previous_layout_exists().await? => return Ok(converted),
                Err(error) => return Err(error),
            };
            batches += 1;
            if moved > 0 {
                converted += moved;
                tracing::info!(converted, "moved call records to the compact layout");
                continue;
            }
            match self.drop_previous_layout_if_empty().await {
                Ok(true) => {
                    tracing::info!(converted, "the previous layout's tables are empty and dropped");
                    return Ok(converted);
                }
                Ok(false) => {}
                // Another node dropped them first.
                Err(_) if !self.previous_layout_exists().await? => return Ok(converted),
                Err(error) => return Err(error),
            }
        }
    }

    async fn previous_layout_exists(&self) -> anyhow::Result<bool> {
        Ok(sqlx::query_scalar("SELECT to_regclass('call_record') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Moves up to `limit` records that no other node is moving; returns how many it moved
    /// (0 when every record left is locked by another node, or none is left).
    async fn convert_batch(&self, limit: i64) -> anyhow::Result<u64> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        let rows = sqlx::query(
            "SELECT tenant_id, id, start_ticks, version, end_ticks, stored_at_ticks, organizer_at, document
             FROM call_record ORDER BY tenant_id, id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("reading records of the previous layout")?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let (previous, mut records): (Vec<Previous>, Vec<PreparedRecord>) = rows
            .iter()
            .map(|row| {
                let previous = Previous {
                    tenant: row.try_get("tenant_id")?,
                    stored_at: row.try_get("stored_at_ticks")?,
                    organizer_at: row.try_get("organizer_at")?,
                };
                let record = PreparedRecord {
                    id: row.try_get("id")?,
                    version: row.try_get("version")?,
                    start: row.try_get("start_ticks")?,
                    end: row.try_get("end_ticks")?,
                    document: row.try_get("document")?,
                    // Not stored by this write: `Previous::organizer_at` is.
                    organizer_at: 0,
                    sessions: Vec::new(),
                    participants: Vec::new(),
                    streams: Default::default(),
                    quality: Default::default(),
                    rewrite: false,
                };
                Ok((previous, record))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
            .into_iter()
            .unzip();
        let tenants: Vec<String> = previous.iter().map(|p| p.tenant.clone()).collect();
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let starts: Vec<i64> = records.iter().map(|r| r.start.ticks()).collect();

        let mut children: [Vec<(i64, String, String)>; 2] = Default::default();
        for (table, rows) in ["session", "participant"].into_iter().zip(&mut children) {
            // LATERAL keeps each lookup an index probe of the record's own month, whatever the
            // planner thinks of the arrays' sizes.
            *rows = sqlx::query_as(&format!(
                "SELECT u.n, c.id, c.document
                 FROM UNNEST($1::text[], $2::text[], $3::int8[]) WITH ORDINALITY AS u (tenant_id, record_id, start_ticks, n)
                 CROSS JOIN LATERAL (
                     SELECT c.ordinal, c.id, c.document FROM {table} c
                     WHERE c.tenant_id = u.tenant_id AND c.call_record_id = u.record_id AND c.start_ticks = u.start_ticks
                 ) AS c
                 ORDER BY u.n, c.ordinal"
            ))
            .bind(&tenants)
            .bind(&ids)
            .bind(&starts)
            .fetch_all(&mut *tx)
            .await
            .with_context(|| format!("reading the {table}s of records of the previous layout"))?;
        }
        let [sessions, participants] = children;
        let n_records = records.len();
        for (n, id, document) in sessions {
            records[position(n, n_records)?].sessions.push((id, document));
        }
        for (n, id, document) in participants {
            records[position(n, n_records)?].participants.push((id, document));
        }

        self.ensure_partitions(Family::Records, records.iter().map(|r| r.start))
            .await?;
        let mut tenant_keys = Vec::with_capacity(previous.len());
        for p in &previous {
            tenant_keys.push(
                self.tenant_key_for_writing(&TenantId::from_stored(p.tenant.clone()))
                    .await?,
            );
        }
        // A dictionary trained here dates from when the records it learnt from were stored.
        let trained_at = Timestamp::from_ticks(previous[0].stored_at);
        let compressed = compress_for_storage(&self.codec, self, &records, trained_at).await?;
        let writes: Vec<RecordWrite<'_>> = previous
            .iter()
            .zip(&records)
            .zip(&tenant_keys)
            .zip(&compressed)
            .map(|(((p, record), &tenant_key), compressed)| RecordWrite {
                tenant_key,
                record,
                compressed,
                stored_at: p.stored_at,
                organizer_at: p.organizer_at,
            })
            .collect();
        insert_records(&mut tx, &writes)
            .await
            .context("writing records in the compact layout")?;

        for (table, id_column) in [
            ("session", "call_record_id"),
            ("participant", "call_record_id"),
            ("call_record", "id"),
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} c USING UNNEST($1::text[], $2::text[], $3::int8[]) AS u (tenant_id, id, start_ticks)
                 WHERE c.tenant_id = u.tenant_id AND c.{id_column} = u.id AND c.start_ticks = u.start_ticks"
            ))
            .bind(&tenants)
            .bind(&ids)
            .bind(&starts)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("deleting converted rows of {table}"))?;
        }
        tx.commit().await?;
        Ok(previous.len() as u64)
    }

    /// Drops the previous tables if no record is left in them; returns whether they are gone.
    /// Checked under the lock the drop takes: a record that another node's batch had locked,
    /// and gave back by rolling back, is still there and gets converted first.
    async fn drop_previous_layout_if_empty(&self) -> anyhow::Result<bool> {
        let mut tx = WriteTransaction::<Postgres>::begin(&self.pool, "BEGIN").await?;
        if !sqlx::query_scalar::<_, bool>("SELECT to_regclass('call_record') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?
        {
            tx.rollback().await?;
            return Ok(true);
        }
        sqlx::query("LOCK TABLE call_record, session, participant IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM call_record)")
            .fetch_one(&mut *tx)
            .await?;
        if left {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DROP TABLE IF EXISTS session, participant, call_record CASCADE")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The index in a batch of the record a child row's `WITH ORDINALITY` position names.
fn position(n: i64, len: usize) -> anyhow::Result<usize> {
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|&index| index < len)
        .with_context(|| format!("a child row names record {n} of a batch of {len}"))
}
