//! Month partitions: which month a tick falls in, what its partitions are called, and the DDL
//! that creates and drops them. Names encode the month (`record_y2024m03`), so any node can
//! tell from the catalog alone which months exist and which have expired.
//!
//! Never: decide what expires (the caller passes the cutoff) or touch rows other than by
//! dropping a whole expired month.

use std::collections::BTreeSet;

use sqlx::{PgPool, Postgres};

use super::{PgStore, StoreError, StoreResult, Timestamp, WriteTransaction};

const TICKS_PER_DAY: i64 = 864_000_000_000;

/// The one advisory lock every partition creation and drop takes, on every node: without it two
/// nodes could both see a month missing and race on `CREATE TABLE`, or one could create a month
/// another is dropping. The value spells "cr-parts" so it is recognisable in `pg_locks`.
const PARTITION_LOCK: i64 = 0x6372_2d70_6172_7473;

/// How long partition DDL waits for its locks. DDL on a partition locks the parent table, and
/// every query that arrives meanwhile queues behind it, so failing fast (and answering
/// "unavailable", which the caller may retry) is kinder than stalling every read.
const DDL_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '10s'";

/// A calendar month (UTC), counted as `year * 12 + (month - 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Month(i64);

impl Month {
    pub(super) fn of_ticks(ticks: i64) -> Month {
        let (year, month, _) = civil_from_days(ticks.div_euclid(TICKS_PER_DAY));
        Month(year * 12 + i64::from(month) - 1)
    }

    pub(super) fn next(self) -> Month {
        Month(self.0 + 1)
    }

    fn year_and_month(self) -> (i64, u32) {
        // rem_euclid(12) is in 0..12, so the cast cannot truncate.
        (self.0.div_euclid(12), self.0.rem_euclid(12) as u32 + 1)
    }

    /// The first tick of the month. Wider than `i64` because the months holding `i64::MIN` and
    /// `i64::MAX` start or end beyond it.
    fn start(self) -> i128 {
        let (year, month) = self.year_and_month();
        i128::from(days_from_civil(year, month, 1)) * i128::from(TICKS_PER_DAY)
    }

    /// The range bound a partition's `FOR VALUES` takes for this month's first tick.
    fn bound(self) -> String {
        let start = self.start();
        if start < i128::from(i64::MIN) {
            "MINVALUE".to_owned()
        } else if start > i128::from(i64::MAX) {
            "MAXVALUE".to_owned()
        } else {
            start.to_string()
        }
    }

    /// Whether every tick of the month is before `ticks`.
    fn ends_by(self, ticks: i64) -> bool {
        self.next().start() <= i128::from(ticks)
    }

    /// `y2024m03`; a year before 0 is written `yn0001`, keeping the name a plain identifier.
    pub(super) fn suffix(self) -> String {
        let (year, month) = self.year_and_month();
        let sign = if year < 0 { "n" } else { "" };
        format!("y{sign}{:04}m{month:02}", year.unsigned_abs())
    }

    pub(super) fn parse_suffix(suffix: &str) -> Option<Month> {
        let rest = suffix.strip_prefix('y')?;
        let (negative, rest) = match rest.strip_prefix('n') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let (year, month) = rest.split_once('m')?;
        if !year.bytes().all(|b| b.is_ascii_digit()) || month.len() != 2 {
            return None;
        }
        let year: i64 = year.parse().ok()?;
        let month: i64 = month.parse().ok()?;
        if !(1..=12).contains(&month) {
            return None;
        }
        let year = if negative { -year } else { year };
        Some(Month(year * 12 + month - 1))
    }
}

/// Tables partitioned and retained together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    /// Call records with their parts, participant references and analytics rows: they share a
    /// month by construction.
    Records,
    /// Usage-log rows, kept for their own (longer) window.
    Logs,
}

impl Family {
    pub(super) fn tables(self) -> &'static [&'static str] {
        match self {
            Family::Records => &[
                "record",
                "record_part",
                "participant_ref",
                "stream",
                "call_leg",
                "stream_day",
                "stream_client_day",
                "stream_network_day",
                "stream_network_week",
                "stream_place_day",
                "call_leg_day",
            ],
            Family::Logs => &["log_row"],
        }
    }

    /// The table whose rows a purge reports: records, not their parts.
    fn counted_table(self) -> &'static str {
        self.tables()[0]
    }
}

/// The partition of `table` for `month`. Built only from our table names and integers.
/// Storage parameters of a new month of `table` (partitioned tables take none themselves).
/// A record's parts are compressed already and mostly 1 to 8 KB: kept in the row up to almost a
/// page rather than moved to TOAST from 2 KB on, they take 4.5 % less room (one month's parts
/// of a generated store, copied both ways).
fn storage_parameters(table: &str) -> &'static str {
    match table {
        "record_part" => " WITH (toast_tuple_target = 8160)",
        _ => "",
    }
}

pub(super) fn partition_name(table: &str, month: Month) -> String {
    format!("{table}_{}", month.suffix())
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm), for every `i64` tick; the `time` crate stops at year 9999.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

async fn begin_ddl(pool: &PgPool) -> Result<WriteTransaction<Postgres>, sqlx::Error> {
    let mut tx = WriteTransaction::<Postgres>::begin(pool, "BEGIN").await?;
    sqlx::query(DDL_LOCK_TIMEOUT).execute(&mut *tx).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PARTITION_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

async fn exists(tx: &mut WriteTransaction<Postgres>, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut **tx)
        .await
}

impl PgStore {
    /// Makes sure `family` has partitions for the month of every instant given, and for the current
    /// and next month so that a month's first writes rarely pay for DDL. Months this process
    /// already knows cost a set lookup; each missing month is created in its own short
    /// transaction.
    pub(super) async fn ensure_partitions(
        &self,
        family: Family,
        instants: impl IntoIterator<Item = Timestamp>,
    ) -> StoreResult<()> {
        let this_month = Month::of_ticks(crate::model::DateTimeOffset::now().unix_ticks());
        let mut wanted: BTreeSet<Month> = instants.into_iter().map(|at| Month::of_ticks(at.ticks())).collect();
        wanted.insert(this_month);
        wanted.insert(this_month.next());
        let missing: Vec<Month> = {
            let known = self.known_months(family).lock().expect("months cache poisoned");
            wanted.into_iter().filter(|m| !known.contains(m)).collect()
        };
        for month in missing {
            self.create_month(family, month).await.map_err(StoreError::from)?;
            self.known_months(family)
                .lock()
                .expect("months cache poisoned")
                .insert(month);
        }
        Ok(())
    }

    async fn create_month(&self, family: Family, month: Month) -> Result<(), sqlx::Error> {
        let mut tx = begin_ddl(&self.pool).await?;
        for table in family.tables() {
            let name = partition_name(table, month);
            // Checked under the lock rather than with IF NOT EXISTS, which would log a notice
            // on every node that loses the race.
            if !exists(&mut tx, &name).await? {
                let ddl = format!(
                    "CREATE TABLE \"{name}\" PARTITION OF {table} FOR VALUES FROM ({}) TO ({}){}",
                    month.bound(),
                    month.next().bound(),
                    storage_parameters(table)
                );
                sqlx::query(&ddl).execute(&mut *tx).await?;
                tracing::info!(partition = %name, "created partition");
            }
        }
        tx.commit().await
    }

    /// Forgets every month of `family`: another node dropped one we thought existed.
    pub(super) fn forget_months(&self, family: Family) {
        self.known_months(family).lock().expect("months cache poisoned").clear();
    }

    /// Drops every month of `family` that ends by `before`, one month per transaction, and
    /// returns how many rows of the counted table went with them. Months are read from the
    /// catalog, not the cache, because other nodes create partitions too.
    pub(super) async fn drop_expired_months(&self, family: Family, before: Timestamp) -> StoreResult<u64> {
        let mut expired = BTreeSet::new();
        for table in family.tables() {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = $1::text::regclass",
            )
            .bind(*table)
            .fetch_all(&self.pool)
            .await?;
            expired.extend(
                names
                    .iter()
                    .filter_map(|name| name.strip_prefix(table)?.strip_prefix('_'))
                    .filter_map(Month::parse_suffix)
                    .filter(|month| month.ends_by(before.ticks())),
            );
        }
        let mut removed = 0;
        for month in expired {
            removed += self.drop_month(family, month).await.map_err(StoreError::from)?;
            self.known_months(family)
                .lock()
                .expect("months cache poisoned")
                .remove(&month);
        }
        Ok(removed)
    }

    async fn drop_month(&self, family: Family, month: Month) -> Result<u64, sqlx::Error> {
        let mut tx = begin_ddl(&self.pool).await?;
        let counted = partition_name(family.counted_table(), month);
        let mut removed = 0;
        if exists(&mut tx, &counted).await? {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{counted}\""))
                .fetch_one(&mut *tx)
                .await?;
            removed = n.unsigned_abs();
        }
        for table in family.tables() {
            let name = partition_name(table, month);
            if exists(&mut tx, &name).await? {
                sqlx::query(&format!("DROP TABLE \"{name}\"")).execute(&mut *tx).await?;
                tracing::info!(partition = %name, "dropped expired partition");
            }
        }
        tx.commit().await?;
        Ok(removed)
    }
}

#[cfg(test)]
mod month_tests {
    use super::*;
    use crate::model::DateTimeOffset;

    fn ticks(text: &str) -> i64 {
        DateTimeOffset::parse(text).unwrap().unix_ticks()
    }

    #[test]
    fn months_and_bounds_agree_with_the_calendar() {
        let march = Month::of_ticks(ticks("2024-03-31T23:59:59.9999999Z"));
        assert_eq!(march.suffix(), "y2024m03");
        assert_eq!(march.bound(), ticks("2024-03-01T00:00:00Z").to_string());
        assert_eq!(march.next().bound(), ticks("2024-04-01T00:00:00Z").to_string());
        assert_eq!(Month::of_ticks(ticks("2024-04-01T00:00:00Z")), march.next());
        assert_eq!(
            Month::of_ticks(ticks("2023-12-31T12:00:00Z")).next().suffix(),
            "y2024m01"
        );
        assert_eq!(Month::of_ticks(ticks("1969-12-31T23:59:59Z")).suffix(), "y1969m12");
        assert_eq!(Month::of_ticks(ticks("0001-01-01T00:00:00Z")).suffix(), "y0001m01");
        assert!(march.ends_by(ticks("2024-04-01T00:00:00Z")));
        assert!(!march.ends_by(ticks("2024-03-31T23:59:59Z")));
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        for days in -80_000..80_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn extreme_ticks_get_open_bounds_and_names_parse_back() {
        let first = Month::of_ticks(i64::MIN);
        let last = Month::of_ticks(i64::MAX);
        assert_eq!(first.bound(), "MINVALUE");
        assert_eq!(last.next().bound(), "MAXVALUE");
        for month in [first, last, Month(-1), Month(0), Month(2024 * 12 + 2)] {
            assert_eq!(Month::parse_suffix(&month.suffix()), Some(month));
        }
        assert_eq!(Month::parse_suffix("y2024m13"), None);
        assert_eq!(Month::parse_suffix("y2024m3"), None);
        assert_eq!(Month::parse_suffix("default"), None);
    }
}
