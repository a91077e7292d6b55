//! The SQL both backends run, written once over the small difference between their dialects
//! (`Dialect`): the selection of records, a usage-log page, and the statements of subscriptions,
//! the outbox's depth and the local issuer. A backend binds what these return (`SqlValue` in its
//! driver's types), runs it in the transaction the trait method asks for, and maps the rows.
//!
//! Where a capability is nothing but these statements (subscriptions, the issuer), it is
//! implemented here once for every `SqlBackend`: a backend says how it runs a statement, a
//! transaction and a quota-guarded insert, and how it maps a row, and gets the capability.

use std::time::Duration;

use async_trait::async_trait;

use super::{
    codec, BuildingStore, IssuerStore, LogRowQuery, RecordCursor, RecordSelection, StoreResult, StoredApp,
    StoredBuildingFile, StoredSigningKey, StoredSubscription, SubscriptionStore, SyncStore, TenantId, Timestamp,
};

/// What differs between the backends' SQL for the statements written here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?` placeholders.
    Sqlite,
    /// `$1`, `$2`… placeholders.
    Postgres,
}

/// A value bound to a statement built here. A list of texts or integers is a `text[]` or
/// `bigint[]` on PostgreSQL and a JSON array in a text column on SQLite; each backend's binder
/// says so once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SqlValue {
    Text(String),
    OptionalText(Option<String>),
    Integer(i64),
    OptionalInteger(Option<i64>),
    Bool(bool),
    TextList(Option<Vec<String>>),
    IntegerList(Vec<i64>),
    /// A column of `bound_rows` on PostgreSQL: a `bigint[]`, `boolean[]` or `text[]` with nulls.
    OptionalIntegerList(Vec<Option<i64>>),
    BoolList(Vec<bool>),
    OptionalTextList(Vec<Option<String>>),
    Bytes(Vec<u8>),
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> Self {
        SqlValue::Text(text.to_owned())
    }
}

impl From<&String> for SqlValue {
    fn from(text: &String) -> Self {
        SqlValue::Text(text.clone())
    }
}

impl From<&TenantId> for SqlValue {
    fn from(tenant: &TenantId) -> Self {
        SqlValue::Text(tenant.as_str().to_owned())
    }
}

impl From<Timestamp> for SqlValue {
    fn from(instant: Timestamp) -> Self {
        SqlValue::Integer(instant.ticks())
    }
}

impl From<Option<Timestamp>> for SqlValue {
    fn from(instant: Option<Timestamp>) -> Self {
        SqlValue::OptionalInteger(instant.map(Timestamp::ticks))
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}

/// SQL text with its values, every value a placeholder in the text and never spliced into it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    pub(crate) values: Vec<SqlValue>,
    /// Its text was made for these values (a placeholder per value of a batch's rows), so a
    /// connection should not keep it prepared: no other batch would use it again.
    pub(crate) one_off: bool,
}

impl Statement {
    /// `sql` written with `?` for each value in order, in the dialect's placeholders. The text is
    /// ours, so a `?` is always a placeholder.
    pub(crate) fn new(dialect: Dialect, sql: &str, values: Vec<SqlValue>) -> Self {
        let mut statement = Statement::default();
        let mut values = values.into_iter();
        let mut parts = sql.split('?');
        statement.push(parts.next().unwrap_or_default());
        for part in parts {
            let value = values.next().expect("a value for every placeholder");
            statement.bind(dialect, value);
            statement.push(part);
        }
        debug_assert!(values.next().is_none(), "a placeholder for every value");
        statement
    }

    /// The statement, marked `one_off` when it is.
    pub(crate) fn one_off(mut self, one_off: bool) -> Self {
        self.one_off = one_off;
        self
    }

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

/// Many rows as a table a statement reads: `source` is a `FROM` item named by the alias given,
/// with the columns named, and `values` are its placeholders' values.
#[derive(Clone, Debug)]
pub(crate) struct BoundRows {
    pub(crate) source: String,
    pub(crate) values: Vec<SqlValue>,
    /// Whether `source`'s text depends on the number of rows (`Statement::one_off`).
    pub(crate) one_off: bool,
}

/// `rows` as a table named `alias` with the columns `names`. On PostgreSQL an array per column,
/// which `unnest` reads: the text is the same whatever the batch's size, so a connection
/// prepares and plans it once. On SQLite a `VALUES` list of the rows, made and prepared for the
/// batch and then dropped: SQLite prepares it faster than it reads the rows out of one bound
/// JSON text (`json_each` parses each row's text again for every column, three times slower
/// for a batch's streams), and kept in the statement cache such lists held tens of megabytes.
/// Each row has a value for each name, of one kind down a column (on PostgreSQL, that kind is
/// the column's type); integers, booleans and texts only. The rows come in as many parts as
/// SQLite's limit on a statement's values asks for (one on PostgreSQL), and none for no rows.
pub(crate) fn bound_rows(dialect: Dialect, alias: &str, names: &[&str], rows: &[Vec<SqlValue>]) -> Vec<BoundRows> {
    if rows.is_empty() {
        return Vec::new();
    }
    match dialect {
        Dialect::Sqlite => {
            let columns: Vec<String> = (0..names.len())
                .map(|index| format!("column{} AS {}", index + 1, names[index]))
                .collect();
            let row = format!("({})", vec!["?"; names.len()].join(", "));
            rows.chunks((SQLITE_VALUES_PER_STATEMENT / names.len().max(1)).max(1))
                .map(|part| BoundRows {
                    source: format!(
                        "(SELECT {} FROM (VALUES {})) AS {alias}",
                        columns.join(", "),
                        vec![row.as_str(); part.len()].join(", ")
                    ),
                    values: part.iter().flatten().cloned().collect(),
                    one_off: true,
                })
                .collect()
        }
        Dialect::Postgres => {
            let mut casts = Vec::with_capacity(names.len());
            let mut values = Vec::with_capacity(names.len());
            for index in 0..names.len() {
                let column = rows.iter().map(|row| &row[index]);
                let (sql_type, value) = match rows.first().map(|row| &row[index]) {
                    Some(SqlValue::Bool(_)) => (
                        "BOOLEAN",
                        SqlValue::BoolList(column.map(|value| matches!(value, SqlValue::Bool(true))).collect()),
                    ),
                    Some(SqlValue::Text(_) | SqlValue::OptionalText(_)) => (
                        "TEXT",
                        SqlValue::OptionalTextList(
                            column
                                .map(|value| match value {
                                    SqlValue::Text(text) => Some(text.clone()),
                                    SqlValue::OptionalText(text) => text.clone(),
                                    _ => None,
                                })
                                .collect(),
                        ),
                    ),
                    _ => (
                        "BIGINT",
                        SqlValue::OptionalIntegerList(
                            column
                                .map(|value| match value {
                                    SqlValue::Integer(integer) => Some(*integer),
                                    SqlValue::OptionalInteger(integer) => *integer,
                                    _ => None,
                                })
                                .collect(),
                        ),
                    ),
                };
                casts.push(format!("CAST(? AS {sql_type}[])"));
                values.push(value);
            }
            vec![BoundRows {
                source: format!("unnest({}) AS {alias}({})", casts.join(", "), names.join(", ")),
                values,
                one_off: false,
            }]
        }
    }
}

/// Values a statement may carry on SQLite, a little under its limit (32,766), leaving room for
/// those the rest of the statement binds.
const SQLITE_VALUES_PER_STATEMENT: usize = 30_000;

/// `Store::stats`' counts: call records by tenant (most first), and log rows by kind. The same
/// text in every dialect; the store's size in bytes is each backend's own.
pub(crate) const RECORDS_BY_TENANT: &str = "SELECT t.id, COUNT(*) FROM record r JOIN tenant t ON t.key = r.tenant_key
     GROUP BY t.id ORDER BY COUNT(*) DESC, t.id";
pub(crate) const LOG_ROWS_BY_KIND: &str = "SELECT kind, COUNT(*) FROM log_row GROUP BY kind ORDER BY kind";

/// Every compression dictionary, as `store::checked_dictionaries` takes them.
pub(crate) const DICTIONARIES: &str = "SELECT id, kind, created_ticks, sha256, body FROM dictionary ORDER BY id";

/// The id of the newest dictionary ever stored, if any was.
pub(crate) const DICTIONARIES_ISSUED: &str = "SELECT value FROM store_fact WHERE name = 'dictionaries_issued'";

/// The id the next dictionary gets, read under the lock that serialises their writers.
pub(crate) const NEXT_DICTIONARY_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM dictionary";

/// Stores a dictionary and records it as the newest issued, in one transaction.
pub(crate) fn insert_dictionary(dialect: Dialect, dictionary: &codec::StoredDictionary) -> [Statement; 2] {
    [
        Statement::new(
            dialect,
            "INSERT INTO dictionary (id, kind, created_ticks, sha256, body) VALUES (?, ?, ?, ?, ?)",
            vec![
                SqlValue::Integer(i64::from(dictionary.id)),
                dictionary.kind.as_str().into(),
                dictionary.created.into(),
                (&dictionary.sha256).into(),
                SqlValue::Bytes(dictionary.body.clone()),
            ],
        ),
        Statement::new(
            dialect,
            "INSERT INTO store_fact (name, value) VALUES ('dictionaries_issued', ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            vec![SqlValue::Integer(i64::from(dictionary.id))],
        ),
    ]
}

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

/// The statement of a record selection over `r` (record) of the tenant with key `tenant_key`:
/// driven from the participant index `p` (participant_ref) when a participant is named (the most
/// selective access), the others required by `EXISTS`, the start range and the keyset cursor on
/// the driving table's columns so the index walk starts at the cursor.
pub(crate) fn selection_statement(
    dialect: Dialect,
    tenant_key: i64,
    selection: &RecordSelection,
    read: SelectionRead<'_>,
) -> Statement {
    let mut statement = Statement::default();
    statement.push(match read {
        SelectionRead::Page { .. } => "SELECT ",
        SelectionRead::Count => "SELECT COUNT(*)",
    });
    if let SelectionRead::Page { .. } = read {
        statement.push(RECORD_COLUMNS);
    }
    let (same_record, id_column) = match dialect {
        // A reference names its record by the record's rowid, the smallest key there is.
        Dialect::Sqlite => ("r.key = p.record_key", "r.id"),
        // Records have no single-column key on PostgreSQL: their key is (tenant, id, start).
        Dialect::Postgres => (
            "r.tenant_key = p.tenant_key AND r.id = p.record_id AND r.start_ticks = p.start_ticks",
            "p.record_id",
        ),
    };
    let (start_column, id_column) = match selection.participant_ids.first() {
        Some(first) => {
            statement.push(&format!(
                " FROM participant_ref p JOIN record r ON {same_record} WHERE p.tenant_key = "
            ));
            statement.bind_integer(dialect, tenant_key);
            statement.push(" AND p.participant_id = ");
            statement.bind_text(dialect, first);
            ("p.start_ticks", id_column)
        }
        None => {
            statement.push(" FROM record r WHERE r.tenant_key = ");
            statement.bind_integer(dialect, tenant_key);
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
    if let Some(since) = selection.stored_since {
        statement.push(" AND r.stored_at_ticks >= ");
        statement.bind_instant(dialect, since);
    }
    if let SelectionRead::Page {
        cursor: Some(cursor), ..
    } = read
    {
        // The first comparison alone is what lets the index walk start at the cursor.
        statement.push(&format!(" AND {start_column} >= "));
        statement.bind_instant(dialect, cursor.start);
        statement.push(&format!(" AND ({start_column}, {id_column}) > ("));
        statement.bind_instant(dialect, cursor.start);
        statement.push(", ");
        statement.bind_text(dialect, &cursor.id);
        statement.push(")");
    }
    let names_record = match dialect {
        Dialect::Sqlite => "q.record_key = r.key",
        Dialect::Postgres => "q.record_id = r.id",
    };
    for other in selection.participant_ids.iter().skip(1) {
        statement.push(
            " AND EXISTS (SELECT 1 FROM participant_ref q WHERE q.tenant_key = r.tenant_key AND q.participant_id = ",
        );
        statement.bind_text(dialect, other);
        statement.push(&format!(" AND q.start_ticks = r.start_ticks AND {names_record})"));
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

/// The columns a subscription read returns, named as `stored_subscription` maps them.
pub(crate) const SUBSCRIPTION_COLUMNS: &str =
    "id, expiration_ticks, wants_created, wants_updated, participant_ids, document";

/// A tenant's subscriptions unexpired at `now`, counted for the quota.
pub(crate) fn count_unexpired_subscriptions(dialect: Dialect, tenant: &TenantId, now: Timestamp) -> Statement {
    Statement::new(
        dialect,
        "SELECT COUNT(*) FROM subscription WHERE tenant_id = ? AND expiration_ticks > ?",
        vec![tenant.into(), now.into()],
    )
}

pub(crate) fn insert_subscription(dialect: Dialect, tenant: &TenantId, subscription: &StoredSubscription) -> Statement {
    Statement::new(
        dialect,
        "INSERT INTO subscription (tenant_id, id, expiration_ticks, wants_created, wants_updated, participant_ids, document)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            tenant.into(),
            (&subscription.id).into(),
            subscription.expiration.into(),
            subscription.scope.created.into(),
            subscription.scope.updated.into(),
            SqlValue::TextList(subscription.scope.participant_ids.clone()),
            (&subscription.document).into(),
        ],
    )
}

/// The subscription, unless it expired by `now` (an expired one is gone, whether or not the
/// sweep removed it yet).
pub(crate) fn get_subscription(dialect: Dialect, tenant: &TenantId, id: &str, now: Timestamp) -> Statement {
    Statement::new(
        dialect,
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription WHERE tenant_id = ? AND id = ? AND expiration_ticks > ?"
        ),
        vec![tenant.into(), id.into(), now.into()],
    )
}

pub(crate) fn list_subscriptions(dialect: Dialect, tenant: &TenantId, now: Timestamp) -> Statement {
    Statement::new(
        dialect,
        &format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscription WHERE tenant_id = ? AND expiration_ticks > ? ORDER BY id"
        ),
        vec![tenant.into(), now.into()],
    )
}

/// A renewal or update: the new form, and the reauthorization reminder due again.
pub(crate) fn replace_subscription(
    dialect: Dialect,
    tenant: &TenantId,
    subscription: &StoredSubscription,
) -> Statement {
    Statement::new(
        dialect,
        "UPDATE subscription SET expiration_ticks = ?, wants_created = ?, wants_updated = ?, participant_ids = ?,
           document = ?, reauthorization_notice_ticks = 0
         WHERE tenant_id = ? AND id = ?",
        vec![
            subscription.expiration.into(),
            subscription.scope.created.into(),
            subscription.scope.updated.into(),
            SqlValue::TextList(subscription.scope.participant_ids.clone()),
            (&subscription.document).into(),
            tenant.into(),
            (&subscription.id).into(),
        ],
    )
}

/// A deletion: the subscription, then its pending change rows (lifecycle rows carry their own
/// target and still go out). One transaction.
pub(crate) fn delete_subscription(dialect: Dialect, tenant: &TenantId, id: &str) -> [Statement; 2] {
    [
        Statement::new(
            dialect,
            "DELETE FROM subscription WHERE tenant_id = ? AND id = ?",
            vec![tenant.into(), id.into()],
        ),
        Statement::new(
            dialect,
            "DELETE FROM outbox WHERE tenant_id = ? AND subscription_id = ? AND target_url IS NULL",
            vec![tenant.into(), id.into()],
        ),
    ]
}

/// The sweep: the pending change rows of every subscription expired by `now`, then those
/// subscriptions. One transaction; the second statement's count is the answer.
pub(crate) fn remove_expired_subscriptions(dialect: Dialect, now: Timestamp) -> [Statement; 2] {
    [
        Statement::new(
            dialect,
            "DELETE FROM outbox WHERE target_url IS NULL AND EXISTS (SELECT 1 FROM subscription s
               WHERE s.tenant_id = outbox.tenant_id AND s.id = outbox.subscription_id AND s.expiration_ticks <= ?)",
            vec![now.into()],
        ),
        Statement::new(
            dialect,
            "DELETE FROM subscription WHERE expiration_ticks <= ?",
            vec![now.into()],
        ),
    ]
}

/// Marks and returns, in one statement, the subscriptions that expire within `within` of `now`
/// and were not reminded in the last `every`. On PostgreSQL a node meeting a row another node is
/// marking waits, then re-checks the WHERE on the updated row (READ COMMITTED) and leaves it, so
/// each subscription is reminded once per interval across nodes.
pub(crate) fn take_reauthorization_due(
    dialect: Dialect,
    now: Timestamp,
    within: Duration,
    every: Duration,
) -> Statement {
    Statement::new(
        dialect,
        &format!(
            "UPDATE subscription SET reauthorization_notice_ticks = ?
             WHERE expiration_ticks > ? AND expiration_ticks <= ? AND reauthorization_notice_ticks <= ?
             RETURNING tenant_id, {SUBSCRIPTION_COLUMNS}"
        ),
        vec![now.into(), now.into(), (now + within).into(), (now - every).into()],
    )
}

/// Rows waiting in the outbox.
pub(crate) const OUTBOX_DEPTH: &str = "SELECT COUNT(*) FROM outbox";

/// Every signing key, newest first, as `stored_signing_key` maps them.
pub(crate) const SIGNING_KEYS: &str =
    "SELECT kid, private_key_pem, created_ticks, retired_ticks FROM signing_key ORDER BY created_ticks DESC, kid";

/// A rotation: every key still current at `at` is retired at `at`.
pub(crate) fn retire_signing_keys(dialect: Dialect, at: Timestamp) -> Statement {
    Statement::new(
        dialect,
        "UPDATE signing_key SET retired_ticks = ? WHERE retired_ticks IS NULL OR retired_ticks > ?",
        vec![at.into(), at.into()],
    )
}

pub(crate) fn insert_signing_key(dialect: Dialect, key: &StoredSigningKey) -> Statement {
    Statement::new(
        dialect,
        "INSERT INTO signing_key (kid, private_key_pem, created_ticks, retired_ticks) VALUES (?, ?, ?, ?)",
        vec![
            (&key.kid).into(),
            (&key.private_key_pem).into(),
            key.created.into(),
            key.retired.into(),
        ],
    )
}

/// An app of the local issuer; its roles are kept as a JSON array of text on both stores.
pub(crate) fn insert_app(dialect: Dialect, tenant: &TenantId, app: &StoredApp) -> Statement {
    let roles = serde_json::Value::from(app.roles.clone()).to_string();
    Statement::new(
        dialect,
        "INSERT INTO app (tenant_id, client_id, name, roles, secret_sha256, created_ticks) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            tenant.into(),
            (&app.client_id).into(),
            (&app.name).into(),
            SqlValue::Text(roles),
            (&app.secret_sha256).into(),
            app.created.into(),
        ],
    )
}

pub(crate) fn get_app(dialect: Dialect, tenant: &TenantId, client_id: &str) -> Statement {
    Statement::new(
        dialect,
        "SELECT client_id, name, roles, secret_sha256, created_ticks FROM app WHERE tenant_id = ? AND client_id = ?",
        vec![tenant.into(), client_id.into()],
    )
}

/// The tenant's key, or `None` for a tenant that never stored a record (keys count from 1),
/// remembered once found.
pub(crate) async fn tenant_key<B: SqlBackend>(
    backend: &B,
    keys: &super::TenantKeys,
    tenant: &TenantId,
) -> StoreResult<Option<i64>> {
    if let Some(key) = keys.cached(tenant) {
        return Ok(Some(key));
    }
    let lookup = Statement::new(
        B::DIALECT,
        "SELECT COALESCE(MAX(key), 0) FROM tenant WHERE id = ?",
        vec![tenant.into()],
    );
    let key = Some(backend.count(lookup).await?).filter(|key| *key > 0);
    if let Some(key) = key {
        keys.remember(tenant, key);
    }
    Ok(key)
}

/// The tenant's key, given one first if it has none. The key is committed on its own, before any
/// transaction that refers to it, so a key a node caches always exists (and one that outlives a
/// failed write is harmless: keys are never reused).
pub(crate) async fn tenant_key_for_writing<B: SqlBackend>(
    backend: &B,
    keys: &super::TenantKeys,
    tenant: &TenantId,
) -> StoreResult<i64> {
    if let Some(key) = tenant_key(backend, keys, tenant).await? {
        return Ok(key);
    }
    let insert = Statement::new(
        B::DIALECT,
        "INSERT INTO tenant (id) VALUES (?) ON CONFLICT (id) DO NOTHING",
        vec![tenant.into()],
    );
    backend.write_all(vec![insert]).await?;
    tenant_key(backend, keys, tenant).await?.ok_or_else(|| {
        super::StoreError::Other(anyhow::anyhow!(
            "tenant {} has no key right after it was given one",
            tenant.as_str()
        ))
    })
}

/// How a SQL backend runs the statements above and maps their rows: all a backend provides to
/// have `SubscriptionStore` and `IssuerStore`.
#[async_trait]
pub(crate) trait SqlBackend: Send + Sync {
    const DIALECT: Dialect;
    type Row: Send + Sync;

    /// Runs a read, on the backend's read connections.
    async fn fetch_all(&self, statement: Statement) -> StoreResult<Vec<Self::Row>>;
    /// Runs an analytics read, which may scan for seconds: where the backend has few read
    /// connections, on connections of its own, so such a scan never holds up the other reads.
    async fn fetch_analytics(&self, statement: Statement) -> StoreResult<Vec<Self::Row>> {
        self.fetch_all(statement).await
    }
    async fn fetch_optional(&self, statement: Statement) -> StoreResult<Option<Self::Row>>;
    /// The one integer a `SELECT COUNT(*)` answers.
    async fn count(&self, statement: Statement) -> StoreResult<i64>;
    /// Runs a write that returns rows (`UPDATE … RETURNING`), durably.
    async fn write_returning(&self, statement: Statement) -> StoreResult<Vec<Self::Row>>;
    /// Runs writes in one transaction, durably; the rows each one changed.
    async fn write_all(&self, statements: Vec<Statement>) -> StoreResult<Vec<u64>>;
    /// Runs `insert` only if `count` answers less than `quota` allows (`rules::quota_allows`),
    /// in one write transaction that no other creator for `tenant` interleaves with, on any node.
    async fn insert_within_quota(
        &self,
        tenant: &TenantId,
        count: Statement,
        quota: u32,
        insert: Statement,
    ) -> StoreResult<bool>;

    fn subscription(row: &Self::Row) -> Result<StoredSubscription, sqlx::Error>;
    /// The `tenant_id` column of a row.
    fn tenant(row: &Self::Row) -> Result<TenantId, sqlx::Error>;
    fn signing_key(row: &Self::Row) -> Result<StoredSigningKey, sqlx::Error>;
    fn app(row: &Self::Row) -> Result<StoredApp, sqlx::Error>;
    /// The text in column `index` of a row.
    fn text_at(row: &Self::Row, index: usize) -> Result<String, sqlx::Error>;
    /// The integer in column `index` of a row.
    fn integer_at(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;
    fn optional_text_at(row: &Self::Row, index: usize) -> Result<Option<String>, sqlx::Error>;
    fn optional_integer_at(row: &Self::Row, index: usize) -> Result<Option<i64>, sqlx::Error>;
    /// A boolean column (an integer on SQLite).
    fn optional_bool_at(row: &Self::Row, index: usize) -> Result<Option<bool>, sqlx::Error>;
}

#[async_trait]
impl<B: SqlBackend> SubscriptionStore for B {
    async fn create_subscription(
        &self,
        tenant: &TenantId,
        subscription: &StoredSubscription,
        quota: u32,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let count = count_unexpired_subscriptions(B::DIALECT, tenant, now);
        let insert = insert_subscription(B::DIALECT, tenant, subscription);
        self.insert_within_quota(tenant, count, quota, insert).await
    }

    async fn get_subscription(
        &self,
        tenant: &TenantId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<StoredSubscription>> {
        let row = self
            .fetch_optional(get_subscription(B::DIALECT, tenant, id, now))
            .await?;
        Ok(row.as_ref().map(B::subscription).transpose()?)
    }

    async fn list_subscriptions(&self, tenant: &TenantId, now: Timestamp) -> StoreResult<Vec<StoredSubscription>> {
        let rows = self.fetch_all(list_subscriptions(B::DIALECT, tenant, now)).await?;
        Ok(rows.iter().map(B::subscription).collect::<Result<_, _>>()?)
    }

    async fn replace_subscription(&self, tenant: &TenantId, subscription: &StoredSubscription) -> StoreResult<bool> {
        let changed = self
            .write_all(vec![replace_subscription(B::DIALECT, tenant, subscription)])
            .await?;
        Ok(changed.first() == Some(&1))
    }

    async fn delete_subscription(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let changed = self
            .write_all(delete_subscription(B::DIALECT, tenant, id).into())
            .await?;
        Ok(changed.first() == Some(&1))
    }

    async fn remove_expired_subscriptions(&self, now: Timestamp) -> StoreResult<u64> {
        let changed = self
            .write_all(remove_expired_subscriptions(B::DIALECT, now).into())
            .await?;
        Ok(changed.get(1).copied().unwrap_or(0))
    }

    async fn take_reauthorization_due(
        &self,
        now: Timestamp,
        within: Duration,
        every: Duration,
    ) -> StoreResult<Vec<(TenantId, StoredSubscription)>> {
        let rows = self
            .write_returning(take_reauthorization_due(B::DIALECT, now, within, every))
            .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((B::tenant(row)?, B::subscription(row)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

#[async_trait]
impl<B: SqlBackend> IssuerStore for B {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let rows = self
            .fetch_all(Statement::new(B::DIALECT, SIGNING_KEYS, Vec::new()))
            .await?;
        Ok(rows.iter().map(B::signing_key).collect::<Result<_, _>>()?)
    }

    async fn add_signing_key(&self, key: &StoredSigningKey, retire_others_at: Option<Timestamp>) -> StoreResult<()> {
        let retire = retire_others_at.map(|at| retire_signing_keys(B::DIALECT, at));
        let insert = insert_signing_key(B::DIALECT, key);
        self.write_all(retire.into_iter().chain([insert]).collect()).await?;
        Ok(())
    }

    async fn add_app(&self, tenant: &TenantId, app: &StoredApp) -> StoreResult<()> {
        self.write_all(vec![insert_app(B::DIALECT, tenant, app)]).await?;
        Ok(())
    }

    async fn get_app(&self, tenant: &TenantId, client_id: &str) -> StoreResult<Option<StoredApp>> {
        let row = self.fetch_optional(get_app(B::DIALECT, tenant, client_id)).await?;
        Ok(row.as_ref().map(B::app).transpose()?)
    }

    async fn add_app_certificate(
        &self,
        tenant: &TenantId,
        client_id: &str,
        thumbprint: &str,
        certificate_pem: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        let statement = Statement::new(
            B::DIALECT,
            "INSERT INTO app_certificate (tenant_id, client_id, thumbprint_sha256, certificate_pem, added_ticks)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, client_id, thumbprint_sha256) DO NOTHING",
            vec![
                tenant.into(),
                client_id.into(),
                thumbprint.into(),
                certificate_pem.into(),
                at.into(),
            ],
        );
        self.write_all(vec![statement]).await?;
        Ok(())
    }

    async fn app_certificate(
        &self,
        tenant: &TenantId,
        client_id: &str,
        thumbprint: &str,
    ) -> StoreResult<Option<String>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT certificate_pem FROM app_certificate WHERE tenant_id = ? AND client_id = ? AND thumbprint_sha256 = ?",
            vec![tenant.into(), client_id.into(), thumbprint.into()],
        );
        let row = self.fetch_optional(statement).await?;
        Ok(row.as_ref().map(|row| B::text_at(row, 0)).transpose()?)
    }
}

/// The test that a value is among a list bound as one value (`SqlValue::TextList`,
/// `IntegerList`), written after the value: one statement text whatever the list's length.
pub(crate) fn among_list(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "IN (SELECT value FROM json_each(?))",
        Dialect::Postgres => "= ANY(?)",
    }
}

/// The stored versions of some of a tenant's records, by id.
pub(crate) fn stored_versions(dialect: Dialect, tenant: &TenantId, ids: &[String]) -> Statement {
    let among = among_list(dialect);
    Statement::new(
        dialect,
        &format!(
            "SELECT r.id, r.version FROM record r JOIN tenant t ON t.key = r.tenant_key WHERE t.id = ? AND r.id {among}"
        ),
        vec![tenant.into(), SqlValue::TextList(Some(ids.to_vec()))],
    )
}

#[async_trait]
impl<B: SqlBackend> BuildingStore for B {
    async fn add_building_file(&self, tenant: &TenantId, file: &StoredBuildingFile) -> StoreResult<()> {
        let statement = Statement::new(
            B::DIALECT,
            "INSERT INTO building_file (tenant_id, uploaded_ticks, subnets, body) VALUES (?, ?, ?, ?)
             ON CONFLICT (tenant_id, uploaded_ticks) DO UPDATE SET subnets = excluded.subnets, body = excluded.body",
            vec![
                tenant.into(),
                file.uploaded.into(),
                SqlValue::Integer(file.subnets),
                (&file.body).into(),
            ],
        );
        // The place rollup's days were classified by the previous file.
        let stale = Statement::new(
            B::DIALECT,
            "UPDATE place_day SET stale = 1 WHERE tenant_key = (SELECT key FROM tenant WHERE id = ?)",
            vec![tenant.into()],
        );
        self.write_all(vec![statement, stale]).await?;
        Ok(())
    }

    async fn active_building_file(&self, tenant: &TenantId) -> StoreResult<Option<StoredBuildingFile>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT uploaded_ticks, subnets, body FROM building_file WHERE tenant_id = ?
             ORDER BY uploaded_ticks DESC LIMIT 1",
            vec![tenant.into()],
        );
        let row = self.fetch_optional(statement).await?;
        Ok(row
            .as_ref()
            .map(|row| {
                Ok::<_, sqlx::Error>(StoredBuildingFile {
                    uploaded: Timestamp::from_ticks(B::integer_at(row, 0)?),
                    subnets: B::integer_at(row, 1)?,
                    body: B::text_at(row, 2)?,
                })
            })
            .transpose()?)
    }
}

/// One statement per id, all in one transaction.
async fn write_each<B: SqlBackend>(
    backend: &B,
    ids: &[String],
    statement: impl Fn(&String) -> Statement,
) -> StoreResult<()> {
    if !ids.is_empty() {
        backend.write_all(ids.iter().map(statement).collect()).await?;
    }
    Ok(())
}

#[async_trait]
impl<B: SqlBackend> SyncStore for B {
    async fn stored_versions(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, i64>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let rows = self.fetch_all(stored_versions(B::DIALECT, tenant, ids)).await?;
        Ok(rows
            .iter()
            .map(|row| Ok((B::text_at(row, 0)?, B::integer_at(row, 1)?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn sync_value(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<String>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT value FROM sync_state WHERE tenant_id = ? AND name = ?",
            vec![tenant.into(), name.into()],
        );
        let row = self.fetch_optional(statement).await?;
        Ok(row.as_ref().map(|row| B::text_at(row, 0)).transpose()?)
    }

    async fn set_sync_value(&self, tenant: &TenantId, name: &str, value: &str) -> StoreResult<()> {
        let statement = Statement::new(
            B::DIALECT,
            "INSERT INTO sync_state (tenant_id, name, value) VALUES (?, ?, ?)
             ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
            vec![tenant.into(), name.into(), value.into()],
        );
        self.write_all(vec![statement]).await?;
        Ok(())
    }

    async fn note_pending_records(&self, tenant: &TenantId, ids: &[String], now: Timestamp) -> StoreResult<()> {
        write_each(self, ids, |id| {
            Statement::new(
                B::DIALECT,
                "INSERT INTO sync_pending (tenant_id, record_id, noted_ticks) VALUES (?, ?, ?)
                 ON CONFLICT (tenant_id, record_id) DO UPDATE SET noted_ticks = excluded.noted_ticks",
                vec![tenant.into(), id.into(), now.into()],
            )
        })
        .await
    }

    async fn pending_records(&self, tenant: &TenantId, limit: u32) -> StoreResult<Vec<(String, Timestamp)>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT record_id, noted_ticks FROM sync_pending WHERE tenant_id = ? ORDER BY noted_ticks, record_id LIMIT ?",
            vec![tenant.into(), SqlValue::Integer(i64::from(limit))],
        );
        let rows = self.fetch_all(statement).await?;
        Ok(rows
            .iter()
            .map(|row| Ok((B::text_at(row, 0)?, Timestamp::from_ticks(B::integer_at(row, 1)?))))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn clear_pending_records(&self, tenant: &TenantId, ids: &[String], noted_by: Timestamp) -> StoreResult<()> {
        write_each(self, ids, |id| {
            Statement::new(
                B::DIALECT,
                "DELETE FROM sync_pending WHERE tenant_id = ? AND record_id = ? AND noted_ticks <= ?",
                vec![tenant.into(), id.into(), noted_by.into()],
            )
        })
        .await
    }

    async fn take_sync_lease(
        &self,
        tenant: &TenantId,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let statement = Statement::new(
            B::DIALECT,
            "INSERT INTO sync_lease (tenant_id, holder, expires_ticks) VALUES (?, ?, ?)
             ON CONFLICT (tenant_id) DO UPDATE SET holder = excluded.holder, expires_ticks = excluded.expires_ticks
             WHERE sync_lease.holder = excluded.holder OR sync_lease.expires_ticks <= ?",
            vec![tenant.into(), holder.into(), until.into(), now.into()],
        );
        let changed = self.write_all(vec![statement]).await?;
        Ok(changed.first() == Some(&1))
    }

    async fn collected_tenants(&self) -> StoreResult<Vec<TenantId>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT DISTINCT tenant_id FROM sync_state ORDER BY tenant_id",
            Vec::new(),
        );
        let rows = self.fetch_all(statement).await?;
        Ok(rows.iter().map(B::tenant).collect::<Result<_, _>>()?)
    }

    async fn release_sync_lease(&self, tenant: &TenantId, holder: &str) -> StoreResult<()> {
        let statement = Statement::new(
            B::DIALECT,
            "DELETE FROM sync_lease WHERE tenant_id = ? AND holder = ?",
            vec![tenant.into(), holder.into()],
        );
        self.write_all(vec![statement]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_is_one_statement_in_either_dialect() {
        let selection = RecordSelection {
            start_from: Some(Timestamp::from_ticks(10)),
            start_before: Some(Timestamp::from_ticks(20)),
            participant_ids: vec!["alice".to_owned(), "bob".to_owned()],
            ..RecordSelection::default()
        };
        let cursor = RecordCursor {
            start: Timestamp::from_ticks(15),
            id: "r".to_owned(),
        };
        let page = SelectionRead::Page {
            cursor: Some(&cursor),
            limit: 7,
        };
        let sqlite = selection_statement(Dialect::Sqlite, 3, &selection, page);
        let postgres = selection_statement(Dialect::Postgres, 3, &selection, page);
        assert_eq!(sqlite.values, postgres.values);
        assert_eq!(
            sqlite.values,
            [
                SqlValue::Integer(3),
                SqlValue::Text("alice".to_owned()),
                SqlValue::Integer(10),
                SqlValue::Integer(20),
                SqlValue::Integer(15),
                SqlValue::Integer(15),
                SqlValue::Text("r".to_owned()),
                SqlValue::Text("bob".to_owned()),
                SqlValue::Integer(7),
            ]
        );
        assert_eq!(sqlite.sql.matches('?').count(), 9);
        assert!(postgres.sql.contains("$9") && !postgres.sql.contains('?'));
        assert!(postgres.sql.contains("r.start_ticks = p.start_ticks"));
        assert!(postgres.sql.ends_with("ORDER BY p.start_ticks, p.record_id LIMIT $9"));
        assert!(sqlite.sql.ends_with("ORDER BY p.start_ticks, r.id LIMIT ?"));

        let count = selection_statement(Dialect::Postgres, 3, &RecordSelection::default(), SelectionRead::Count);
        assert_eq!(count.sql, "SELECT COUNT(*) FROM record r WHERE r.tenant_key = $1");
    }

    #[test]
    fn a_statement_is_written_once_with_question_marks() {
        let tenant = TenantId::default_tenant();
        let sqlite = get_subscription(Dialect::Sqlite, &tenant, "s", Timestamp::from_ticks(5));
        let postgres = get_subscription(Dialect::Postgres, &tenant, "s", Timestamp::from_ticks(5));
        assert_eq!(sqlite.values, postgres.values);
        assert!(sqlite
            .sql
            .ends_with("WHERE tenant_id = ? AND id = ? AND expiration_ticks > ?"));
        assert!(postgres
            .sql
            .ends_with("WHERE tenant_id = $1 AND id = $2 AND expiration_ticks > $3"));
        let [first, second] = remove_expired_subscriptions(Dialect::Postgres, Timestamp::from_ticks(9));
        assert!(first.sql.ends_with("s.expiration_ticks <= $1)"));
        assert_eq!(second.sql, "DELETE FROM subscription WHERE expiration_ticks <= $1");
    }
}
