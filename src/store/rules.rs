//! The storage rules every backend applies, as pure code: Graph's version rule over a batch, the
//! change notifications a batch plans, where an outbox row is delivered, and the SQL of a record
//! selection and a usage-log page, written once over the small difference between the backends'
//! dialects. A backend runs what these return and maps rows; it decides none of it itself.

use std::collections::HashMap;

use crate::model::{ChangeType, SubscriptionScope};

use super::{
    ClaimedNotification, LogRowQuery, PreparedRecord, RecordCursor, RecordSelection, StoreError, TenantId, Timestamp,
    UpsertOutcome,
};

/// What a batch of call records does, by Graph's version rule applied in order, as if record by
/// record: a later copy of an id in the same batch is judged against the earlier one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UpsertPlan {
    /// One outcome per record of the batch, in its order.
    pub(crate) outcomes: Vec<UpsertOutcome>,
    /// The records to write, by index into the batch, in batch order: each accepted id's last
    /// accepted version (an earlier accepted copy is superseded within the batch).
    pub(crate) writes: Vec<usize>,
    /// Stored ids that a write replaces, with the start they are stored under, so the old row
    /// and its children can be removed first (a new version may start at another time).
    pub(crate) replaces: Vec<(String, i64)>,
}

/// Plans a batch against the `(version, start)` of the ids already stored.
pub(crate) fn plan_upsert(stored: &HashMap<String, (i64, i64)>, batch: &[PreparedRecord]) -> UpsertPlan {
    let mut version_of: HashMap<&str, i64> = stored
        .iter()
        .map(|(id, (version, _))| (id.as_str(), *version))
        .collect();
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
    let mut writes: Vec<usize> = accepted.values().copied().collect();
    writes.sort_unstable();
    let mut replaces: Vec<(String, i64)> = writes
        .iter()
        .filter_map(|&index| {
            let id = &batch[index].id;
            stored.get(id).map(|(_, start)| (id.clone(), *start))
        })
        .collect();
    replaces.sort();
    UpsertPlan {
        outcomes,
        writes,
        replaces,
    }
}

/// One change notification to queue: `change` of `record_id` for `subscription_id`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlannedNotification<'a> {
    pub(crate) subscription_id: &'a str,
    pub(crate) change: ChangeType,
    pub(crate) record_id: &'a str,
}

/// The change notifications a planned batch gives, in batch order and, for one record, in the
/// order of `scopes` (the tenant's unexpired subscriptions, by id). Every accepted version
/// notifies, even one a later copy in the same batch superseded: each was stored, if only for an
/// instant, and a sender that sends versions one by one would have caused the same.
pub(crate) fn plan_notifications<'a>(
    scopes: &'a [(String, SubscriptionScope)],
    batch: &'a [PreparedRecord],
    outcomes: &[UpsertOutcome],
) -> Vec<PlannedNotification<'a>> {
    let mut planned = Vec::new();
    if scopes.is_empty() {
        return planned;
    }
    for (record, &outcome) in batch.iter().zip(outcomes) {
        let first_version = match outcome {
            UpsertOutcome::Stored => true,
            UpsertOutcome::Replaced => false,
            UpsertOutcome::Ignored => continue,
        };
        let participant_ids: Vec<&str> = record.participants.iter().map(|(id, _)| id.as_str()).collect();
        for (subscription_id, scope) in scopes {
            if let Some(change) = scope.notification_for(first_version, &participant_ids) {
                planned.push(PlannedNotification {
                    subscription_id,
                    change,
                    record_id: &record.id,
                });
            }
        }
    }
    planned
}

/// Whether a tenant with `unexpired` subscriptions may create another under `quota`.
pub(crate) fn quota_allows(unexpired: i64, quota: u32) -> bool {
    unexpired < i64::from(quota)
}

/// An outbox row as claimed, before its delivery target is known.
#[derive(Debug)]
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: String,
    pub(crate) subscription_id: String,
    pub(crate) event: String,
    pub(crate) call_record_id: Option<String>,
    /// A lifecycle row's own target; `None` for a change row.
    pub(crate) target_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expiration: Option<Timestamp>,
    pub(crate) created: Timestamp,
    pub(crate) first_attempt: Option<Timestamp>,
    pub(crate) attempts: i64,
}

impl ClaimedRow {
    /// Reads the outbox columns of a claim's row (named as in the table).
    pub(crate) fn from_row<R: sqlx::Row>(row: &R) -> Result<Self, sqlx::Error>
    where
        for<'r> &'r str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            subscription_id: row.try_get("subscription_id")?,
            event: row.try_get("event")?,
            call_record_id: row.try_get("call_record_id")?,
            target_url: row.try_get("target_url")?,
            client_state: row.try_get("client_state")?,
            expiration: instant_or_none(row.try_get("expiration_ticks")?),
            created: Timestamp::from_ticks(row.try_get("created_ticks")?),
            first_attempt: instant_or_none(row.try_get("first_attempt_ticks")?),
            attempts: row.try_get("attempts")?,
        })
    }

    /// Where the row goes. A lifecycle row carries its own target; a change row goes to its
    /// subscription's current `notificationUrl` with its current `clientState`, so a renewed or
    /// re-pointed subscription gets its backlog at its new address. `subscription` is the
    /// subscription's `(expiration, stored document)`, read with the claim; `None` when it is
    /// gone, and then so is the row's delivery.
    pub(crate) fn deliver_to(
        self,
        subscription: Option<(Timestamp, &str)>,
    ) -> Result<Option<ClaimedNotification>, StoreError> {
        let (url, client_state, subscription_expiration) = match self.target_url {
            Some(url) => (
                url,
                self.client_state,
                self.expiration.unwrap_or(Timestamp::from_ticks(0)),
            ),
            None => {
                let Some((expiration, document)) = subscription else {
                    return Ok(None);
                };
                let parsed: crate::model::Subscription = serde_json::from_str(document)
                    .map_err(|error| StoreError::Other(anyhow::anyhow!("stored subscription is not valid: {error}")))?;
                (parsed.notification_url, parsed.client_state, expiration)
            }
        };
        Ok(Some(ClaimedNotification {
            id: self.id,
            tenant_id: self.tenant_id,
            subscription_id: self.subscription_id,
            event: self.event,
            call_record_id: self.call_record_id,
            url,
            client_state,
            subscription_expiration,
            created: self.created,
            first_attempt: self.first_attempt,
            attempts: self.attempts,
        }))
    }
}

/// An optional instant column, read generically as the integer it is stored as.
pub(crate) fn instant_or_none(ticks: Option<i64>) -> Option<Timestamp> {
    ticks.map(Timestamp::from_ticks)
}

/// What differs between the backends' SQL for the statements built here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?` placeholders.
    Sqlite,
    /// `$1`, `$2`… placeholders; children are partitioned by their record's start, so every join
    /// from a participant to its record also matches on `start_ticks` and stays in one month.
    Postgres,
}

/// A value bound to a statement built here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SqlValue {
    Text(String),
    Integer(i64),
}

/// SQL text with its values, every value a placeholder in the text and never spliced into it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) values: Vec<SqlValue>,
}

impl Statement {
    fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    fn bind(&mut self, dialect: Dialect, value: SqlValue) {
        self.values.push(value);
        match dialect {
            Dialect::Sqlite => self.sql.push('?'),
            Dialect::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.values.len().to_string());
            }
        }
    }

    fn bind_text(&mut self, dialect: Dialect, text: &str) {
        self.bind(dialect, SqlValue::Text(text.to_owned()));
    }

    fn bind_integer(&mut self, dialect: Dialect, value: i64) {
        self.bind(dialect, SqlValue::Integer(value));
    }

    fn bind_instant(&mut self, dialect: Dialect, value: Timestamp) {
        self.bind_integer(dialect, value.ticks());
    }
}

/// `Store::stats`' counts: call records by tenant (most first), and log rows by kind. The same
/// text in every dialect; the store's size in bytes is each backend's own.
pub(crate) const RECORDS_BY_TENANT: &str =
    "SELECT tenant_id, COUNT(*) FROM call_record GROUP BY tenant_id ORDER BY COUNT(*) DESC, tenant_id";
pub(crate) const LOG_ROWS_BY_KIND: &str = "SELECT kind, COUNT(*) FROM log_row GROUP BY kind ORDER BY kind";

/// The columns a call-record read returns, in the order backends map them.
pub(crate) const RECORD_COLUMNS: &str =
    "r.id, r.start_ticks, r.document, r.n_sessions, r.n_participants, r.organizer_at";

/// What a record selection reads: a page of records (`limit` of them after `cursor`, in (start,
/// id) order) or their count.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SelectionRead<'a> {
    Page {
        cursor: Option<&'a RecordCursor>,
        limit: u32,
    },
    Count,
}

/// The statement of a record selection over `r` (call_record): driven from the participant
/// index `p` when a participant is named (the most selective access), the others required by
/// `EXISTS`, the start range and the keyset cursor on the driving table's columns so the index
/// walk starts at the cursor.
pub(crate) fn selection_statement(
    dialect: Dialect,
    tenant: &TenantId,
    selection: &RecordSelection,
    read: SelectionRead<'_>,
) -> Statement {
    let same_month = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " AND r.start_ticks = p.start_ticks",
    };
    let mut statement = Statement::default();
    statement.push(match read {
        SelectionRead::Page { .. } => "SELECT ",
        SelectionRead::Count => "SELECT COUNT(*)",
    });
    if let SelectionRead::Page { .. } = read {
        statement.push(RECORD_COLUMNS);
    }
    let (start_column, id_column) = match selection.participant_ids.first() {
        Some(first) => {
            statement.push(&format!(
                " FROM participant p JOIN call_record r ON r.tenant_id = p.tenant_id AND r.id = p.call_record_id{same_month} WHERE p.tenant_id = "
            ));
            statement.bind_text(dialect, tenant.as_str());
            statement.push(" AND p.id = ");
            statement.bind_text(dialect, first);
            ("p.start_ticks", "p.call_record_id")
        }
        None => {
            statement.push(" FROM call_record r WHERE r.tenant_id = ");
            statement.bind_text(dialect, tenant.as_str());
            ("r.start_ticks", "r.id")
        }
    };
    if let Some(from) = selection.start_from {
        statement.push(&format!(" AND {start_column} >= "));
        statement.bind_instant(dialect, from);
    }
    if let Some(before) = selection.start_before {
        statement.push(&format!(" AND {start_column} < "));
        statement.bind_instant(dialect, before);
    }
    if let SelectionRead::Page {
        cursor: Some(cursor), ..
    } = read
    {
        statement.push(&format!(" AND ({start_column}, {id_column}) > ("));
        statement.bind_instant(dialect, cursor.start);
        statement.push(", ");
        statement.bind_text(dialect, &cursor.id);
        statement.push(")");
    }
    let same_month = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " AND q.start_ticks = r.start_ticks",
    };
    for other in selection.participant_ids.iter().skip(1) {
        statement.push(&format!(
            " AND EXISTS (SELECT 1 FROM participant q WHERE q.tenant_id = r.tenant_id AND q.call_record_id = r.id{same_month} AND q.id = "
        ));
        statement.bind_text(dialect, other);
        statement.push(")");
    }
    if let SelectionRead::Page { limit, .. } = read {
        statement.push(&format!(" ORDER BY {start_column}, {id_column} LIMIT "));
        statement.bind_integer(dialect, i64::from(limit));
    }
    statement
}

/// The statement of a usage-log page: rows of one kind in `[from, to)`, in (time, id) order,
/// after the keyset position and the client's `$skip`.
pub(crate) fn log_rows_statement(dialect: Dialect, tenant: &TenantId, query: &LogRowQuery) -> Statement {
    let mut statement = Statement::default();
    statement.push("SELECT id, start_ticks, document FROM log_row WHERE tenant_id = ");
    statement.bind_text(dialect, tenant.as_str());
    statement.push(" AND kind = ");
    statement.bind_text(dialect, query.kind.as_str());
    statement.push(" AND start_ticks >= ");
    statement.bind_instant(dialect, query.from);
    statement.push(" AND start_ticks < ");
    statement.bind_instant(dialect, query.to);
    if let Some(after) = &query.after {
        statement.push(" AND (start_ticks, id) > (");
        statement.bind_instant(dialect, after.start);
        statement.push(", ");
        statement.bind_text(dialect, &after.id);
        statement.push(")");
    }
    statement.push(" ORDER BY start_ticks, id LIMIT ");
    statement.bind_integer(dialect, i64::from(query.limit));
    statement.push(" OFFSET ");
    statement.bind_integer(dialect, i64::try_from(query.skip).unwrap_or(i64::MAX));
    statement
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::record;
    use UpsertOutcome::{Ignored, Replaced, Stored};

    #[test]
    fn the_version_rule_judges_copies_in_a_batch_against_each_other() {
        let stored = HashMap::from([("a".to_owned(), (2, 100)), ("b".to_owned(), (1, 200))]);
        let batch = [
            record("a", 2, "2024-03-01T00:00:00Z", &[], &[]),
            record("b", 3, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 1, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 1, "2024-03-01T00:00:00Z", &[], &[]),
            record("b", 4, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 2, "2024-03-01T00:00:00Z", &[], &[]),
            record("a", 1, "2024-03-01T00:00:00Z", &[], &[]),
        ];
        let plan = plan_upsert(&stored, &batch);
        assert_eq!(
            plan.outcomes,
            [Ignored, Replaced, Stored, Ignored, Replaced, Replaced, Ignored]
        );
        assert_eq!(plan.writes, [4, 5], "b's and c's last accepted versions");
        assert_eq!(plan.replaces, [("b".to_owned(), 200)], "c was not stored before");
        assert_eq!(
            plan_upsert(&HashMap::new(), &[]),
            UpsertPlan {
                outcomes: vec![],
                writes: vec![],
                replaces: vec![]
            }
        );
    }

    #[test]
    fn every_accepted_version_notifies_the_subscriptions_that_want_it() {
        let all = SubscriptionScope {
            created: true,
            updated: true,
            participant_ids: None,
        };
        let updates_of_p2 = SubscriptionScope {
            created: false,
            updated: true,
            participant_ids: Some(vec!["p2".to_owned()]),
        };
        let scopes = [("all".to_owned(), all), ("p2".to_owned(), updates_of_p2)];
        let batch = [
            record("a", 1, "2024-03-01T00:00:00Z", &[], &["p1"]),
            record("a", 2, "2024-03-01T00:00:00Z", &[], &["p2"]),
            record("a", 2, "2024-03-01T00:00:00Z", &[], &["p2"]),
        ];
        let planned = plan_notifications(&scopes, &batch, &[Stored, Replaced, Ignored]);
        let seen: Vec<(&str, &str)> = planned.iter().map(|p| (p.subscription_id, p.change.as_str())).collect();
        assert_eq!(seen, [("all", "created"), ("all", "updated"), ("p2", "updated")]);
        assert!(plan_notifications(&[], &batch, &[Stored, Replaced, Ignored]).is_empty());
    }

    #[test]
    fn the_quota_counts_unexpired_subscriptions() {
        assert!(quota_allows(0, 1));
        assert!(quota_allows(2, 3));
        assert!(!quota_allows(3, 3));
        assert!(!quota_allows(0, 0));
    }

    #[test]
    fn a_selection_is_one_statement_in_either_dialect() {
        let tenant = TenantId::default_tenant();
        let selection = RecordSelection {
            start_from: Some(Timestamp::from_ticks(10)),
            start_before: Some(Timestamp::from_ticks(20)),
            participant_ids: vec!["alice".to_owned(), "bob".to_owned()],
        };
        let cursor = RecordCursor {
            start: Timestamp::from_ticks(15),
            id: "r".to_owned(),
        };
        let page = SelectionRead::Page {
            cursor: Some(&cursor),
            limit: 7,
        };
        let sqlite = selection_statement(Dialect::Sqlite, &tenant, &selection, page);
        let postgres = selection_statement(Dialect::Postgres, &tenant, &selection, page);
        assert_eq!(sqlite.values, postgres.values);
        assert_eq!(
            sqlite.values,
            [
                SqlValue::Text(tenant.as_str().to_owned()),
                SqlValue::Text("alice".to_owned()),
                SqlValue::Integer(10),
                SqlValue::Integer(20),
                SqlValue::Integer(15),
                SqlValue::Text("r".to_owned()),
                SqlValue::Text("bob".to_owned()),
                SqlValue::Integer(7),
            ]
        );
        assert_eq!(sqlite.sql.matches('?').count(), 8);
        assert!(postgres.sql.contains("$8") && !postgres.sql.contains('?'));
        assert!(postgres.sql.contains("r.start_ticks = p.start_ticks"));
        assert!(!sqlite.sql.contains("r.start_ticks = p.start_ticks"));
        assert!(sqlite.sql.ends_with("ORDER BY p.start_ticks, p.call_record_id LIMIT ?"));

        let count = selection_statement(
            Dialect::Postgres,
            &tenant,
            &RecordSelection::default(),
            SelectionRead::Count,
        );
        assert_eq!(count.sql, "SELECT COUNT(*) FROM call_record r WHERE r.tenant_id = $1");
    }
}
