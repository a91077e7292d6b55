//! The analytics rows (`stream`, `call_leg`): how they are written beside a record, and the
//! grouped reads `crate::analytics` asks for. The SQL is written once, over `Dialect`, like the
//! rest of `sql`; every value is bound and every column name comes from the enums here.

use async_trait::async_trait;

use super::sql::{Dialect, SqlBackend, SqlValue, Statement};
use super::{StoreResult, TenantId, Timestamp};
use crate::model::{ClientPlatform, NetworkConnectionType, ProductFamily, ServiceRole, WifiBand};
use crate::quality::{EndpointFacts, LegRow, QualityRows, StreamRow, POOR_RATING_AT_MOST};

/// A day in 100 ns ticks: `start_ticks / TICKS_PER_DAY` is a day number since 1970-01-01.
pub(crate) const TICKS_PER_DAY: i64 = 864_000_000_000;

/// The table a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A row per classified stream.
    Streams,
    /// A row per session: reliability and Rate My Call.
    Legs,
}

impl Fact {
    fn table(self) -> &'static str {
        match self {
            Fact::Streams => "stream",
            Fact::Legs => "call_leg",
        }
    }

    /// What each group counts, in `GroupRow::measures` order: a name (the column of the daily
    /// table) and what it adds up over the fact's rows.
    fn measures(self) -> Vec<(&'static str, String)> {
        match self {
            Fact::Streams => {
                let mut measures = vec![
                    ("streams", "1".to_owned()),
                    ("good", "CASE WHEN classification = 0 THEN 1 ELSE 0 END".to_owned()),
                    ("poor", "CASE WHEN classification = 1 THEN 1 ELSE 0 END".to_owned()),
                    ("unclassified", "CASE WHEN classification = 2 THEN 1 ELSE 0 END".to_owned()),
                ];
                for (bit, name) in [
                    "poor_jitter",
                    "poor_packet_loss",
                    "poor_degradation",
                    "poor_round_trip",
                    "poor_concealed",
                    "poor_frame_loss",
                    "poor_frame_rate",
                    "poor_post_fec",
                ]
                .into_iter()
                .enumerate()
                {
                    measures.push((name, format!("CASE WHEN (poor_due_to & {}) <> 0 THEN 1 ELSE 0 END", 1 << bit)));
                }
                measures
            }
            Fact::Legs => vec![
                ("sessions", "1".to_owned()),
                ("setup_failed", "CASE WHEN outcome = 1 THEN 1 ELSE 0 END".to_owned()),
                ("dropped", "CASE WHEN outcome = 2 THEN 1 ELSE 0 END".to_owned()),
                (
                    "ratings",
                    "CASE WHEN first_rating IS NULL THEN 0 ELSE 1 END + CASE WHEN second_rating IS NULL THEN 0 ELSE 1 END"
                        .to_owned(),
                ),
                ("rating_sum", "COALESCE(first_rating, 0) + COALESCE(second_rating, 0)".to_owned()),
                (
                    "poor_ratings",
                    format!(
                        "CASE WHEN first_rating <= {POOR_RATING_AT_MOST} THEN 1 ELSE 0 END
                         + CASE WHEN second_rating <= {POOR_RATING_AT_MOST} THEN 1 ELSE 0 END"
                    ),
                ),
            ],
        }
    }

    /// The daily table kept beside the fact's rows, and the columns it keeps days apart by.
    fn daily(self) -> (&'static str, &'static [Column]) {
        match self {
            Fact::Streams => ("stream_day", &STREAM_DAY_KEYS),
            Fact::Legs => ("call_leg_day", &LEG_DAY_KEYS),
        }
    }

    pub(crate) fn measure_count(self) -> usize {
        self.measures().len()
    }
}

/// The columns the daily tables keep apart: every one the dashboard's time series and pairs
/// group or filter by, and those of the default filters. Subnets, versions and people are too
/// many to keep a day apart by; queries naming them read the rows.
const STREAM_DAY_KEYS: [Column; 9] = [
    Column::MediaType,
    Column::Conference,
    Column::Pstn,
    Column::Excluded,
    Column::QoeReported,
    Column::Endpoint(Side::First, EndpointColumn::Server),
    Column::Endpoint(Side::Second, EndpointColumn::Server),
    Column::Endpoint(Side::First, EndpointColumn::ConnectionType),
    Column::Endpoint(Side::Second, EndpointColumn::ConnectionType),
];

const LEG_DAY_KEYS: [Column; 5] = [
    Column::Conference,
    Column::Pstn,
    Column::Excluded,
    Column::Endpoint(Side::First, EndpointColumn::Server),
    Column::Endpoint(Side::Second, EndpointColumn::Server),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    First,
    Second,
}

/// A column of an endpoint, kept once for each side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointColumn {
    Server,
    ConnectionType,
    Subnet,
    WifiBand,
    ProductFamily,
    Platform,
    Version,
    ServiceRole,
    UserId,
    UserName,
}

impl EndpointColumn {
    fn name(self) -> &'static str {
        match self {
            EndpointColumn::Server => "server",
            EndpointColumn::ConnectionType => "connection_type",
            EndpointColumn::Subnet => "subnet",
            EndpointColumn::WifiBand => "wifi_band",
            EndpointColumn::ProductFamily => "product_family",
            EndpointColumn::Platform => "platform",
            EndpointColumn::Version => "version",
            EndpointColumn::ServiceRole => "service_role",
            EndpointColumn::UserId => "user_id",
            EndpointColumn::UserName => "user_name",
        }
    }

    /// Whether the legs table knows it: legs carry no network.
    fn on_legs(self) -> bool {
        !matches!(
            self,
            EndpointColumn::ConnectionType | EndpointColumn::Subnet | EndpointColumn::WifiBand
        )
    }
}

/// What a query may group or filter by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// Days since 1970-01-01 of the record's start (UTC).
    Day,
    /// 0 audio, 1 video, 2 VBSS (streams only).
    MediaType,
    /// Streams only: 0 good, 1 poor, 2 unclassified.
    Classification,
    Conference,
    Pstn,
    /// Streams only.
    FirstToSecond,
    FirstIsCaller,
    /// Only through `GroupQuery::default_filters`.
    Excluded,
    /// Streams only; only through `GroupQuery::default_filters`.
    QoeReported,
    Endpoint(Side, EndpointColumn),
}

impl Column {
    fn expression(self) -> String {
        match self {
            Column::Day => format!("(start_ticks / {TICKS_PER_DAY})"),
            Column::MediaType => "media_type".to_owned(),
            Column::Classification => "classification".to_owned(),
            Column::Conference => "conference".to_owned(),
            Column::Pstn => "pstn".to_owned(),
            Column::FirstToSecond => "first_to_second".to_owned(),
            Column::FirstIsCaller => "first_is_caller".to_owned(),
            Column::Excluded => "excluded".to_owned(),
            Column::QoeReported => "qoe_reported".to_owned(),
            Column::Endpoint(side, column) => {
                let side = match side {
                    Side::First => "first",
                    Side::Second => "second",
                };
                format!("{side}_{}", column.name())
            }
        }
    }

    /// Whether `fact`'s table has it.
    pub fn on(self, fact: Fact) -> bool {
        match (self, fact) {
            (_, Fact::Streams) => true,
            (Column::MediaType | Column::Classification | Column::FirstToSecond | Column::QoeReported, Fact::Legs) => {
                false
            }
            (Column::Endpoint(_, column), Fact::Legs) => column.on_legs(),
            (_, Fact::Legs) => true,
        }
    }

    /// Whether the stores keep it as a boolean (an integer on SQLite).
    fn is_boolean(self) -> bool {
        matches!(
            self,
            Column::Conference
                | Column::Pstn
                | Column::FirstToSecond
                | Column::FirstIsCaller
                | Column::Excluded
                | Column::QoeReported
                | Column::Endpoint(_, EndpointColumn::Server)
        )
    }

    fn is_integer(self) -> bool {
        matches!(self, Column::Day | Column::MediaType | Column::Classification)
    }
}

/// A value a column is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i64),
    Text(String),
}

/// `column IN values` (or `NOT IN`); `Value::Null` among them matches a missing value.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub column: Column,
    pub values: Vec<Value>,
    pub negated: bool,
}

/// A grouped read over `[from, to)` of record start.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupQuery {
    pub fact: Fact,
    pub from: Timestamp,
    pub to: Timestamp,
    pub group_by: Vec<Column>,
    pub conditions: Vec<Condition>,
    /// CQD's default filters: QoE reported (streams), no bots, auto attendants, call queues or
    /// announcement services.
    pub default_filters: bool,
}

/// One group: its key values in `group_by` order, and the fact's measures.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    pub keys: Vec<Value>,
    pub measures: Vec<i64>,
}

/// A call behind some streams.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSummary {
    pub id: String,
    pub start: Timestamp,
    pub conference: bool,
    pub streams: i64,
    pub poor_streams: i64,
}

/// One stream of a call as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredStream {
    pub session_id: String,
    pub segment_id: String,
    pub segment_start: Timestamp,
    pub media_type: i64,
    pub classification: i64,
    pub poor_due_to: i64,
    pub first_to_second: bool,
    pub first_is_caller: bool,
    pub first: EndpointFacts,
    pub second: EndpointFacts,
    pub metrics: [Option<f64>; 11],
}

/// Analytics over the stream and call-leg rows, implemented once for every SQL backend.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn group(&self, tenant: &TenantId, query: &GroupQuery) -> StoreResult<Vec<GroupRow>>;

    /// The distinct values of an endpoint column of streams in `[from, to)`, both sides.
    async fn distinct_values(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        column: EndpointColumn,
    ) -> StoreResult<Vec<String>>;

    /// The calls with streams matching `query`'s range and conditions (its `group_by` unused),
    /// most poor streams first, at most `limit`.
    async fn calls(&self, tenant: &TenantId, query: &GroupQuery, limit: u32) -> StoreResult<Vec<CallSummary>>;

    /// Every stream of a call, in order; empty when the tenant has no such call.
    async fn call_streams(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<StoredStream>>;

    /// Clears the personal data (addresses, user ids and names) of rows whose record started
    /// before `before`; returns how many rows changed.
    async fn scrub_personal_data(&self, before: Timestamp) -> StoreResult<u64>;
}

/// How a backend's analytics rows name their record: SQLite by the record's integer key,
/// PostgreSQL by its id (its rows live in the record's month partition).
#[derive(Clone, Copy, Debug)]
pub(crate) enum RecordRef<'a> {
    Key(i64),
    Id(&'a str),
}

impl RecordRef<'_> {
    fn column(self) -> &'static str {
        match self {
            RecordRef::Key(_) => "record_key",
            RecordRef::Id(_) => "record_id",
        }
    }

    fn value(self) -> SqlValue {
        match self {
            RecordRef::Key(key) => SqlValue::Integer(key),
            RecordRef::Id(id) => SqlValue::Text(id.to_owned()),
        }
    }
}

/// An endpoint's columns, in the order `endpoint_values` writes them.
const ENDPOINT_COLUMN_NAMES: [&str; 12] = [
    "server",
    "connection_type",
    "subnet",
    "wifi_band",
    "product_family",
    "platform",
    "version",
    "service_role",
    "ip_address",
    "mac_address",
    "user_id",
    "user_name",
];

const METRIC_COLUMNS: [&str; 11] = [
    "average_jitter_ms",
    "max_jitter_ms",
    "average_packet_loss_rate",
    "max_packet_loss_rate",
    "average_round_trip_time_ms",
    "max_round_trip_time_ms",
    "average_audio_degradation",
    "average_ratio_of_concealed_samples",
    "average_video_frame_loss_percentage",
    "average_video_frame_rate",
    "post_fec_packet_loss_rate",
];

fn endpoint_values(facts: &EndpointFacts) -> [SqlValue; 12] {
    let text = |value: Option<&str>| SqlValue::OptionalText(value.map(str::to_owned));
    [
        SqlValue::Bool(facts.server),
        text(facts.connection_type),
        text(facts.subnet.as_deref()),
        text(facts.wifi_band),
        text(facts.product_family),
        text(facts.platform),
        text(facts.version.as_deref()),
        text(facts.service_role),
        text(facts.ip_address.as_deref()),
        text(facts.mac_address.as_deref()),
        text(facts.user_id.as_deref()),
        text(facts.user_name.as_deref()),
    ]
}

fn endpoint_column_list(prefix: &str) -> String {
    ENDPOINT_COLUMN_NAMES
        .iter()
        .map(|name| format!("{prefix}_{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn stream_values(row: &StreamRow, ordinal: usize) -> Vec<SqlValue> {
    let mut values = vec![
        SqlValue::Integer(ordinal as i64),
        SqlValue::Text(row.session_id.clone()),
        SqlValue::Text(row.segment_id.clone()),
        row.segment_start.into(),
        SqlValue::Integer(row.media_type as i64),
        SqlValue::Integer(row.classification as i64),
        SqlValue::Integer(row.poor_due_to_bits()),
        SqlValue::Bool(row.first_to_second),
        SqlValue::Bool(row.call.first_is_caller),
        SqlValue::Bool(row.call.conference),
        SqlValue::Bool(row.call.pstn),
        SqlValue::Bool(row.call.excluded),
        SqlValue::Bool(row.qoe_reported),
    ];
    values.extend(endpoint_values(&row.call.first));
    values.extend(endpoint_values(&row.call.second));
    values.extend(row.metrics.values().into_iter().map(SqlValue::Real));
    values
}

fn leg_values(row: &LegRow, ordinal: usize) -> Vec<SqlValue> {
    let mut values = vec![
        SqlValue::Integer(ordinal as i64),
        SqlValue::Text(row.session_id.clone()),
        SqlValue::Integer(row.outcome as i64),
        SqlValue::OptionalInteger(row.first_rating),
        SqlValue::OptionalInteger(row.second_rating),
        SqlValue::Bool(row.call.first_is_caller),
        SqlValue::Bool(row.call.conference),
        SqlValue::Bool(row.call.pstn),
        SqlValue::Bool(row.call.excluded),
    ];
    values.extend(endpoint_values(&row.call.first));
    values.extend(endpoint_values(&row.call.second));
    values
}

/// Bound values a statement may carry on both backends (SQLite's limit is 32,766).
const VALUES_PER_STATEMENT: usize = 30_000;

/// The inserts of a record's analytics rows, in as few statements as the limits allow.
pub(crate) fn insert_rows(
    dialect: Dialect,
    tenant_key: i64,
    record: RecordRef<'_>,
    start: Timestamp,
    rows: &QualityRows,
) -> Vec<Statement> {
    let stream_columns = format!(
        "tenant_key, start_ticks, {}, ordinal, session_id, segment_id, segment_start_ticks, media_type, classification,
         poor_due_to, first_to_second, first_is_caller, conference, pstn, excluded, qoe_reported, {}, {}, {}",
        record.column(),
        endpoint_column_list("first"),
        endpoint_column_list("second"),
        METRIC_COLUMNS.join(", ")
    );
    let leg_columns = format!(
        "tenant_key, start_ticks, {}, ordinal, session_id, outcome, first_rating, second_rating, first_is_caller,
         conference, pstn, excluded, {}, {}",
        record.column(),
        endpoint_column_list("first"),
        endpoint_column_list("second"),
    );
    let mut statements = Vec::new();
    let streams: Vec<Vec<SqlValue>> = rows
        .streams
        .iter()
        .enumerate()
        .map(|(ordinal, row)| stream_values(row, ordinal))
        .collect();
    let legs: Vec<Vec<SqlValue>> = rows
        .legs
        .iter()
        .enumerate()
        .map(|(ordinal, row)| leg_values(row, ordinal))
        .collect();
    for (table, columns, rows) in [("stream", stream_columns, streams), ("call_leg", leg_columns, legs)] {
        let Some(width) = rows.first().map(|row| row.len() + 3) else {
            continue;
        };
        for chunk in rows.chunks(VALUES_PER_STATEMENT / width) {
            let row_placeholders = format!("({})", vec!["?"; width].join(", "));
            let sql = format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                vec![row_placeholders.as_str(); chunk.len()].join(", ")
            );
            let mut values = Vec::with_capacity(width * chunk.len());
            for row in chunk {
                values.extend([SqlValue::Integer(tenant_key), start.into(), record.value()]);
                values.extend(row.iter().cloned());
            }
            statements.push(Statement::new(dialect, &sql, values));
        }
    }
    statements.extend(daily_changes(dialect, tenant_key, record, start, 1));
    statements
}

/// The daily tables' change for one record's rows.
fn daily_changes(
    dialect: Dialect,
    tenant_key: i64,
    record: RecordRef<'_>,
    start: Timestamp,
    sign: i64,
) -> Vec<Statement> {
    let rows_where = format!("tenant_key = ? AND start_ticks = ? AND {} = ?", record.column());
    [Fact::Streams, Fact::Legs]
        .iter()
        .map(|fact| {
            Statement::new(
                dialect,
                &daily_change(*fact, sign, &rows_where),
                vec![SqlValue::Integer(tenant_key), start.into(), record.value()],
            )
        })
        .collect()
}

/// The deletes of a record's analytics rows.
pub(crate) fn delete_rows(
    dialect: Dialect,
    tenant_key: i64,
    record: RecordRef<'_>,
    start: Timestamp,
) -> Vec<Statement> {
    let mut statements = daily_changes(dialect, tenant_key, record, start, -1);
    for table in ["stream", "call_leg"] {
        statements.push(Statement::new(
            dialect,
            &format!(
                "DELETE FROM {table} WHERE tenant_key = ? AND start_ticks = ? AND {} = ?",
                record.column()
            ),
            vec![SqlValue::Integer(tenant_key), start.into(), record.value()],
        ));
    }
    statements
}

fn bind_value(column: Column, value: &Value) -> SqlValue {
    match value {
        Value::Null => SqlValue::OptionalText(None),
        Value::Bool(flag) if column.is_boolean() => SqlValue::Bool(*flag),
        Value::Bool(flag) => SqlValue::Integer(i64::from(*flag)),
        Value::Integer(number) => SqlValue::Integer(*number),
        Value::Text(text) => SqlValue::Text(text.clone()),
    }
}

/// The conditions a query puts on rows: its own and CQD's default filters.
fn all_conditions(query: &GroupQuery) -> Vec<Condition> {
    let mut conditions = query.conditions.clone();
    if query.default_filters {
        conditions.push(Condition {
            column: Column::Excluded,
            values: vec![Value::Bool(false)],
            negated: false,
        });
        if query.fact == Fact::Streams {
            conditions.push(Condition {
                column: Column::QoeReported,
                values: vec![Value::Bool(true)],
                negated: false,
            });
        }
    }
    conditions
}

/// The daily tables keep a missing text as '' (a key column cannot be NULL).
fn is_daily_text(column: Column) -> bool {
    matches!(column, Column::Endpoint(_, EndpointColumn::ConnectionType))
}

/// The `WHERE` of a query over the rows (`daily` false) or the daily table: tenant, range and
/// every condition.
fn where_clause(query: &GroupQuery, tenant: &TenantId, daily: bool) -> (String, Vec<SqlValue>) {
    let mut sql =
        String::from("tenant_key = (SELECT key FROM tenant WHERE id = ?) AND start_ticks >= ? AND start_ticks < ?");
    let mut values = vec![tenant.into(), query.from.into(), query.to.into()];
    for condition in all_conditions(query) {
        let expression = condition.column.expression();
        let mut wanted = condition.values.clone();
        if daily && is_daily_text(condition.column) {
            for value in &mut wanted {
                if *value == Value::Null {
                    *value = Value::Text(String::new());
                }
            }
        }
        let has_null = wanted.contains(&Value::Null);
        let listed: Vec<&Value> = wanted.iter().filter(|v| **v != Value::Null).collect();
        let mut alternatives = Vec::new();
        if !listed.is_empty() {
            alternatives.push(format!("{expression} IN ({})", vec!["?"; listed.len()].join(", ")));
            values.extend(listed.iter().map(|value| bind_value(condition.column, value)));
        }
        if has_null {
            alternatives.push(format!("{expression} IS NULL"));
        }
        let matched = if alternatives.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", alternatives.join(" OR "))
        };
        if condition.negated {
            // NOT (x IN (…)) is unknown for a missing x, and a missing value is not one listed.
            let missing = if has_null || daily {
                String::new()
            } else {
                format!(" OR {expression} IS NULL")
            };
            sql.push_str(&format!(" AND (NOT {matched}{missing})"));
        } else {
            sql.push_str(&format!(" AND {matched}"));
        }
    }
    (sql, values)
}

/// Whether the daily table can answer `query`: whole days, and only the columns it keeps.
fn daily_answers(query: &GroupQuery) -> bool {
    let (_, keys) = query.fact.daily();
    let whole_days = query.from.ticks() % TICKS_PER_DAY == 0 && query.to.ticks() % TICKS_PER_DAY == 0;
    let kept = |column: &Column| *column == Column::Day || keys.contains(column);
    whole_days && query.group_by.iter().all(kept) && all_conditions(query).iter().all(|c| kept(&c.column))
}

fn group_statement(dialect: Dialect, tenant: &TenantId, query: &GroupQuery) -> Statement {
    let daily = daily_answers(query);
    let (where_sql, values) = where_clause(query, tenant, daily);
    let keys: Vec<String> = query.group_by.iter().map(|column| column.expression()).collect();
    let select_keys = query
        .group_by
        .iter()
        .zip(&keys)
        .map(|(column, key)| {
            if column.is_integer() {
                format!("CAST({key} AS BIGINT), ")
            } else if daily && is_daily_text(*column) {
                format!("NULLIF({key}, ''), ")
            } else {
                format!("{key}, ")
            }
        })
        .collect::<String>();
    let group = if keys.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", keys.join(", "))
    };
    let measures = query.fact.measures();
    let (table, sums): (&str, Vec<String>) = if daily {
        let (table, _) = query.fact.daily();
        (
            table,
            measures
                .iter()
                .map(|(name, _)| format!("CAST(SUM({name}) AS BIGINT)"))
                .collect(),
        )
    } else {
        (
            query.fact.table(),
            measures
                .iter()
                .map(|(_, expression)| format!("CAST(SUM({expression}) AS BIGINT)"))
                .collect(),
        )
    };
    let sql = format!(
        "SELECT {select_keys}{} FROM {table} WHERE {where_sql}{group}",
        sums.join(", ")
    );
    Statement::new(dialect, &sql, values)
}

/// Adds (`sign` 1) or takes away (`sign` -1) the fact's rows chosen by `rows_where` to or from
/// its daily table, a day and key at a time. Run after inserting rows and before deleting them,
/// in the same transaction, it keeps the daily table the sum of the rows.
pub(crate) fn daily_change(fact: Fact, sign: i64, rows_where: &str) -> String {
    let (table, keys) = fact.daily();
    let key_names: Vec<String> = keys.iter().map(|column| column.expression()).collect();
    let key_values: Vec<String> = keys
        .iter()
        .zip(&key_names)
        .map(|(column, name)| match is_daily_text(*column) {
            true => format!("COALESCE({name}, '')"),
            false => name.clone(),
        })
        .collect();
    let measures = fact.measures();
    let names: Vec<&str> = measures.iter().map(|(name, _)| *name).collect();
    let sums: Vec<String> = measures
        .iter()
        .map(|(_, expression)| format!("CAST(SUM({expression}) * {sign} AS BIGINT)"))
        .collect();
    let day = format!("(start_ticks / {TICKS_PER_DAY}) * {TICKS_PER_DAY}");
    format!(
        "INSERT INTO {table} (tenant_key, start_ticks, {}, {})
         SELECT tenant_key, {day}, {}, {} FROM {} WHERE {rows_where}
         GROUP BY tenant_key, {day}, {}
         ON CONFLICT (tenant_key, start_ticks, {}) DO UPDATE SET {}",
        key_names.join(", "),
        names.join(", "),
        key_values.join(", "),
        sums.join(", "),
        fact.table(),
        key_values.join(", "),
        key_names.join(", "),
        names
            .iter()
            .map(|name| format!("{name} = {table}.{name} + excluded.{name}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn key_at<B: SqlBackend>(row: &B::Row, index: usize, column: Column) -> Result<Value, sqlx::Error> {
    Ok(if column.is_boolean() {
        B::optional_bool_at(row, index)?.map_or(Value::Null, Value::Bool)
    } else if column.is_integer() {
        B::optional_integer_at(row, index)?.map_or(Value::Null, Value::Integer)
    } else {
        B::optional_text_at(row, index)?.map_or(Value::Null, Value::Text)
    })
}

#[async_trait]
impl<B: SqlBackend> AnalyticsStore for B {
    async fn group(&self, tenant: &TenantId, query: &GroupQuery) -> StoreResult<Vec<GroupRow>> {
        let rows = self.fetch_analytics(group_statement(B::DIALECT, tenant, query)).await?;
        let width = query.group_by.len();
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            let count = B::integer_at(row, width)?;
            if count == 0 {
                // An aggregate without GROUP BY answers one row even when nothing matched.
                continue;
            }
            let keys = query
                .group_by
                .iter()
                .enumerate()
                .map(|(index, column)| key_at::<B>(row, index, *column))
                .collect::<Result<Vec<_>, _>>()?;
            let measures = (0..query.fact.measure_count())
                .map(|index| B::integer_at(row, width + index))
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(GroupRow { keys, measures });
        }
        Ok(groups)
    }

    async fn distinct_values(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        column: EndpointColumn,
    ) -> StoreResult<Vec<String>> {
        let mut found = std::collections::BTreeSet::new();
        for side in [Side::First, Side::Second] {
            let expression = Column::Endpoint(side, column).expression();
            let statement = Statement::new(
                B::DIALECT,
                &format!(
                    "SELECT DISTINCT {expression} FROM stream
                     WHERE tenant_key = (SELECT key FROM tenant WHERE id = ?) AND start_ticks >= ? AND start_ticks < ?
                       AND {expression} IS NOT NULL"
                ),
                vec![tenant.into(), from.into(), to.into()],
            );
            for row in self.fetch_analytics(statement).await? {
                found.insert(B::text_at(&row, 0)?);
            }
        }
        Ok(found.into_iter().collect())
    }

    async fn calls(&self, tenant: &TenantId, query: &GroupQuery, limit: u32) -> StoreResult<Vec<CallSummary>> {
        let (where_sql, mut values) = where_clause(query, tenant, false);
        values.push(SqlValue::Integer(i64::from(limit)));
        // The calls are found in the stream rows alone; SQLite's rows name their record by key,
        // so its ids come from a join outside.
        let (reference, id, join) = match B::DIALECT {
            Dialect::Sqlite => ("record_key", "r.id", "JOIN record r ON r.key = m.record_key"),
            Dialect::Postgres => ("record_id", "m.record_id", ""),
        };
        let sql = format!(
            "SELECT {id}, m.first_start, m.conference, m.streams, m.poor FROM (
                 SELECT {reference}, MIN(start_ticks) AS first_start,
                        CAST(MAX(CASE WHEN conference THEN 1 ELSE 0 END) AS BIGINT) AS conference,
                        CAST(COUNT(*) AS BIGINT) AS streams,
                        CAST(SUM(CASE WHEN classification = 1 THEN 1 ELSE 0 END) AS BIGINT) AS poor
                 FROM stream WHERE {where_sql}
                 GROUP BY {reference} ORDER BY poor DESC, first_start DESC LIMIT ?
             ) m {join}
             ORDER BY m.poor DESC, m.first_start DESC, 1"
        );
        let rows = self.fetch_analytics(Statement::new(B::DIALECT, &sql, values)).await?;
        rows.iter()
            .map(|row| {
                Ok(CallSummary {
                    id: B::text_at(row, 0)?,
                    start: Timestamp::from_ticks(B::integer_at(row, 1)?),
                    conference: B::integer_at(row, 2)? != 0,
                    streams: B::integer_at(row, 3)?,
                    poor_streams: B::integer_at(row, 4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn call_streams(&self, tenant: &TenantId, id: &str) -> StoreResult<Vec<StoredStream>> {
        let record = match B::DIALECT {
            Dialect::Sqlite => {
                "s.record_key = (SELECT r.key FROM record r WHERE r.tenant_key = s.tenant_key AND r.id = ?)"
            }
            Dialect::Postgres => "s.record_id = ?",
        };
        let endpoint = |prefix: &str| {
            ENDPOINT_COLUMN_NAMES
                .iter()
                .map(|name| format!("s.{prefix}_{name}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "SELECT s.session_id, s.segment_id, s.segment_start_ticks, CAST(s.media_type AS BIGINT),
                    CAST(s.classification AS BIGINT), CAST(s.poor_due_to AS BIGINT),
                    s.first_to_second, s.first_is_caller, {}, {}, {}
             FROM stream s WHERE s.tenant_key = (SELECT key FROM tenant WHERE id = ?) AND {record}
             ORDER BY s.start_ticks, s.ordinal",
            endpoint("first"),
            endpoint("second"),
            METRIC_COLUMNS
                .iter()
                .map(|name| format!("s.{name}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = self
            .fetch_all(Statement::new(B::DIALECT, &sql, vec![tenant.into(), id.into()]))
            .await?;
        let endpoint_at = |row: &B::Row, at: usize| -> Result<EndpointFacts, sqlx::Error> {
            let text = |index: usize| B::optional_text_at(row, at + index);
            Ok(EndpointFacts {
                server: B::optional_bool_at(row, at)?.unwrap_or(false),
                connection_type: text(1)?
                    .as_deref()
                    .and_then(NetworkConnectionType::parse)
                    .map(NetworkConnectionType::as_str),
                subnet: text(2)?,
                wifi_band: text(3)?.as_deref().and_then(WifiBand::parse).map(WifiBand::as_str),
                product_family: text(4)?
                    .as_deref()
                    .and_then(ProductFamily::parse)
                    .map(ProductFamily::as_str),
                platform: text(5)?
                    .as_deref()
                    .and_then(ClientPlatform::parse)
                    .map(ClientPlatform::as_str),
                version: text(6)?,
                service_role: text(7)?
                    .as_deref()
                    .and_then(ServiceRole::parse)
                    .map(ServiceRole::as_str),
                ip_address: text(8)?,
                mac_address: text(9)?,
                user_id: text(10)?,
                user_name: text(11)?,
            })
        };
        rows.iter()
            .map(|row| {
                let mut metrics = [None; 11];
                for (index, metric) in metrics.iter_mut().enumerate() {
                    *metric = B::optional_real_at(row, 32 + index)?;
                }
                Ok(StoredStream {
                    session_id: B::text_at(row, 0)?,
                    segment_id: B::text_at(row, 1)?,
                    segment_start: Timestamp::from_ticks(B::integer_at(row, 2)?),
                    media_type: B::integer_at(row, 3)?,
                    classification: B::integer_at(row, 4)?,
                    poor_due_to: B::integer_at(row, 5)?,
                    first_to_second: B::optional_bool_at(row, 6)?.unwrap_or(false),
                    first_is_caller: B::optional_bool_at(row, 7)?.unwrap_or(false),
                    first: endpoint_at(row, 8)?,
                    second: endpoint_at(row, 20)?,
                    metrics,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn scrub_personal_data(&self, before: Timestamp) -> StoreResult<u64> {
        let personal = ["ip_address", "mac_address", "user_id", "user_name"];
        let mut statements = Vec::new();
        for table in ["stream", "call_leg"] {
            let columns: Vec<String> = ["first", "second"]
                .iter()
                .flat_map(|side| personal.iter().map(move |name| format!("{side}_{name}")))
                .collect();
            let set = columns
                .iter()
                .map(|column| format!("{column} = NULL"))
                .collect::<Vec<_>>()
                .join(", ");
            let any = columns
                .iter()
                .map(|column| format!("{column} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            statements.push(Statement::new(
                B::DIALECT,
                &format!("UPDATE {table} SET {set} WHERE start_ticks < ? AND ({any})"),
                vec![before.into()],
            ));
        }
        Ok(self.write_all(statements).await?.into_iter().sum())
    }
}

/// The analytics rows of a stored record, from its document and its sessions' documents: how
/// records stored before the rows existed get theirs. A document that is no call record (only
/// a store's own tests write such) gets none, with a warning, rather than keeping the store
/// from opening.
pub(crate) fn rows_of_stored(id: &str, document: &str, sessions: Vec<String>) -> QualityRows {
    let parsed = crate::model::parse_call_record(document.as_bytes()).and_then(|mut record| {
        let sessions = sessions
            .iter()
            .map(|session| crate::model::parse_document::<crate::model::Session>(session.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        record.sessions = Some(sessions);
        Ok(record)
    });
    match parsed {
        Ok(record) => QualityRows::of(&record),
        Err(error) => {
            tracing::warn!(record = id, %error, "a stored record does not parse; it gets no analytics rows");
            QualityRows::default()
        }
    }
}

/// The store fact whose presence says that records stored before the analytics rows existed
/// may still lack theirs.
pub(crate) const ROWS_PENDING: &str = "quality_rows_pending";
