//! The analytics rows (`stream`, `call_leg`): how they are written beside a record, and the
//! grouped reads `crate::analytics` asks for. The SQL is written once, over `Dialect`, like the
//! rest of `sql`; every value is bound and every column name comes from the enums here.
//!
//! A row names its two endpoints by key: an endpoint profile (`endpoint_profile`: server or
//! not, network, client) is what CQD groups an endpoint by, and a tenant has few of them next to
//! its streams; a user (`analytics_user`) is an Entra user id. Profiles and users are written
//! before the rows that name them (`resolve_dimensions`) and never deleted. A query over the rows
//! filters endpoints through their profiles (a subquery per condition) and joins the profiles
//! and users it groups by.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;

use super::sql::{self, Dialect, SqlBackend, SqlValue, Statement};
use super::{StoreError, StoreResult, TenantId, Timestamp};
use crate::quality::buildings::BuildingMap;
use crate::quality::{EndpointFacts, LegRow, QualityRows, StreamRow, POOR_RATING_AT_MOST};

/// A day in 100 ns ticks: `start_ticks / TICKS_PER_DAY` is a day number since 1970-01-01.
pub(crate) const TICKS_PER_DAY: i64 = 864_000_000_000;
const TICKS_PER_SECOND: i64 = 10_000_000;
const DAYS_PER_WEEK: i64 = 7;

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

    /// The call's facts every rollup of the fact keeps apart: those of CQD's default filters,
    /// the call type and PSTN, and for streams the media type.
    fn call_keys(self) -> &'static [Column] {
        match self {
            Fact::Streams => &[
                Column::MediaType,
                Column::Conference,
                Column::Pstn,
                Column::Excluded,
                Column::QoeReported,
            ],
            Fact::Legs => &[Column::Conference, Column::Pstn, Column::Excluded],
        }
    }
}

/// A table of daily totals kept beside a fact's rows, in the transactions that write and delete
/// them (`daily_change`): a query over whole days that groups and filters only by the columns
/// one keeps apart reads a few rows a day instead of every stream.
#[derive(Debug)]
struct Rollup {
    table: &'static str,
    fact: Fact,
    /// A row per side of each stream: the endpoint columns (written here as the first side's)
    /// are one side's, named without the side, and a `side` column says which. A stream counts
    /// once in each side's totals, so a query may name one side only.
    per_side: bool,
    /// What it keeps apart besides the day and the call's facts (`Fact::call_keys`).
    keys: &'static [Column],
    /// A table of the same totals by week (`week_start`), for a rollup with so many keys a day
    /// that a month of days is slow to sum: a query over whole weeks reads a row where it
    /// would read up to seven. It holds the sum of the daily table's rows.
    weekly: Option<&'static str>,
}

/// The rollups, in the order a query tries them: the first that keeps every column it names
/// answers it. Subnets and versions are too many for one table of both sides (a day's pairs of
/// them are nearly as many as its streams), so each has a table of one side's; users are never
/// rolled up.
const ROLLUPS: [Rollup; 4] = [
    Rollup {
        table: "stream_day",
        fact: Fact::Streams,
        per_side: false,
        keys: &[
            Column::Endpoint(Side::First, EndpointColumn::Server),
            Column::Endpoint(Side::Second, EndpointColumn::Server),
            Column::Endpoint(Side::First, EndpointColumn::ConnectionType),
            Column::Endpoint(Side::Second, EndpointColumn::ConnectionType),
        ],
        weekly: None,
    },
    Rollup {
        table: "stream_client_day",
        fact: Fact::Streams,
        per_side: true,
        keys: &[
            Column::Endpoint(Side::First, EndpointColumn::Server),
            Column::Endpoint(Side::First, EndpointColumn::ConnectionType),
            Column::Endpoint(Side::First, EndpointColumn::WifiBand),
            Column::Endpoint(Side::First, EndpointColumn::ProductFamily),
            Column::Endpoint(Side::First, EndpointColumn::Platform),
            Column::Endpoint(Side::First, EndpointColumn::Version),
            Column::Endpoint(Side::First, EndpointColumn::ServiceRole),
        ],
        weekly: None,
    },
    Rollup {
        table: "stream_network_day",
        fact: Fact::Streams,
        per_side: true,
        keys: &[
            Column::Endpoint(Side::First, EndpointColumn::Server),
            Column::Endpoint(Side::First, EndpointColumn::ConnectionType),
            Column::Endpoint(Side::First, EndpointColumn::Subnet),
        ],
        weekly: Some("stream_network_week"),
    },
    Rollup {
        table: "call_leg_day",
        fact: Fact::Legs,
        per_side: false,
        keys: &[
            Column::Endpoint(Side::First, EndpointColumn::Server),
            Column::Endpoint(Side::Second, EndpointColumn::Server),
        ],
        weekly: None,
    },
];

/// Daily totals by both sides' inside flags, which depend on the tenant's building file: not
/// kept by the writes of rows but classified again, a day at a time, when a query finds a day
/// changed since (`place_day.stale`, which every write of a day's rows sets) or classified
/// with another file (`classified_days`).
const PLACE_ROLLUP: Rollup = Rollup {
    table: "stream_place_day",
    fact: Fact::Streams,
    per_side: false,
    keys: &[
        Column::Endpoint(Side::First, EndpointColumn::Server),
        Column::Endpoint(Side::Second, EndpointColumn::Server),
        Column::Endpoint(Side::First, EndpointColumn::ConnectionType),
        Column::Endpoint(Side::Second, EndpointColumn::ConnectionType),
        Column::Inside(Side::First),
        Column::Inside(Side::Second),
    ],
    weekly: None,
};

/// Which rollup answers a query, and for a rollup of one side's totals, which side.
#[derive(Clone, Copy, Debug)]
struct RollupRead {
    rollup: &'static Rollup,
    side: Option<Side>,
}

impl RollupRead {
    /// The tables and ranges that hold a query's whole days: the weekly table (if any) for its
    /// whole weeks, unless the query names days, and the daily table for the days around them.
    fn spans(&self, query: &GroupQuery) -> Vec<(&'static str, Timestamp, Timestamp)> {
        let daily = self.rollup.table;
        let whole = vec![(daily, query.from, query.to)];
        let Some(weekly) = self.rollup.weekly else {
            return whole;
        };
        let names_days = query.group_by.contains(&Column::Day)
            || query.conditions.iter().any(|condition| condition.column == Column::Day);
        let weeks = whole_weeks(query.from.ticks() / TICKS_PER_DAY, query.to.ticks() / TICKS_PER_DAY);
        let Some((first, end)) = weeks.filter(|_| !names_days) else {
            return whole;
        };
        let at = |day: i64| Timestamp::from_ticks(day * TICKS_PER_DAY);
        [
            (daily, query.from, at(first)),
            (weekly, at(first), at(end)),
            (daily, at(end), query.to),
        ]
        .into_iter()
        .filter(|(_, from, to)| from.ticks() < to.ticks())
        .collect()
    }
}

impl Rollup {
    fn of(fact: Fact) -> impl Iterator<Item = &'static Rollup> {
        ROLLUPS.iter().filter(move |rollup| rollup.fact == fact)
    }

    /// Its key columns as a side's: the side's own for a rollup per side.
    fn keys_of(&self, side: Option<Side>) -> Vec<Column> {
        let own = self.keys.iter().map(|column| match (column, side) {
            (Column::Endpoint(_, endpoint), Some(side)) => Column::Endpoint(side, *endpoint),
            (column, _) => *column,
        });
        self.fact.call_keys().iter().copied().chain(own).collect()
    }

    /// The names of its key columns, `side` first for a rollup per side.
    fn key_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.per_side.then(|| "side".to_owned()).into_iter().collect();
        names.extend(
            self.fact
                .call_keys()
                .iter()
                .chain(self.keys)
                .map(|column| self.column_name(*column)),
        );
        names
    }

    /// What the table calls `column` (one of its keys, or the day).
    fn column_name(&self, column: Column) -> String {
        match column {
            Column::Endpoint(_, endpoint) if self.per_side => endpoint.name().to_owned(),
            other => other.expression(),
        }
    }
}

/// Where a daily rollup's row of the time `ticks` starts (in ticks).
fn day_start(ticks: &str) -> String {
    format!("({ticks} / {TICKS_PER_DAY}) * {TICKS_PER_DAY}")
}

/// Where a weekly rollup's row of the time `ticks` starts (in ticks): the start of its week,
/// a week being seven days from 1970-01-01, or of its month if that is later. Cut at the month
/// so that a week's row lives in one month, as the PostgreSQL partitions and their purge are by
/// month. `week_of` is the same rule in days.
fn week_start(dialect: Dialect, ticks: &str) -> String {
    let week = DAYS_PER_WEEK * TICKS_PER_DAY;
    let week = format!("({ticks} / {week}) * {week}");
    let seconds = format!("{ticks} / {TICKS_PER_SECOND}");
    match dialect {
        Dialect::Sqlite => format!(
            "MAX({week}, CAST(strftime('%s', {seconds}, 'unixepoch', 'start of month') AS BIGINT) * {TICKS_PER_SECOND})"
        ),
        Dialect::Postgres => format!(
            "GREATEST({week}, CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp({seconds}) AT TIME ZONE 'UTC')) AS BIGINT) * {TICKS_PER_SECOND})"
        ),
    }
}

/// The days `[start, end)` of the week row (`week_start`) that holds `day` (days since
/// 1970-01-01), if the calendar has the day.
fn week_of(day: i64) -> Option<(i64, i64)> {
    // 1970-01-01 is Julian day 2,440,588.
    let julian = |day: i64| i32::try_from(day + 2_440_588).ok();
    let date = time::Date::from_julian_day(julian(day)?).ok()?;
    let month_start = date.replace_day(1).ok()?;
    let next_month = match date.month() {
        time::Month::December => time::Date::from_calendar_date(date.year() + 1, time::Month::January, 1),
        month => time::Date::from_calendar_date(date.year(), month.next(), 1),
    }
    .ok()?;
    let days = |date: time::Date| i64::from(date.to_julian_day()) - 2_440_588;
    let week = day.div_euclid(DAYS_PER_WEEK) * DAYS_PER_WEEK;
    Some((
        week.max(days(month_start)),
        (week + DAYS_PER_WEEK).min(days(next_month)),
    ))
}

/// The days of `[first_day, end_day)` a weekly rollup answers: from the first week row that
/// starts in the range to the last that ends in it, if there is one.
fn whole_weeks(first_day: i64, end_day: i64) -> Option<(i64, i64)> {
    let (start, end) = week_of(first_day)?;
    let from = if start == first_day { first_day } else { end };
    let mut to = from;
    loop {
        let (_, end) = week_of(to)?;
        if end > end_day {
            break;
        }
        to = end;
    }
    (to > from).then_some((from, to))
}

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
    /// Kept apart from the profile: a user's profiles are many.
    UserId,
}

/// The columns of an endpoint profile, in the order `Profile::values` gives them.
const PROFILE_COLUMNS: [EndpointColumn; 8] = [
    EndpointColumn::Server,
    EndpointColumn::ConnectionType,
    EndpointColumn::Subnet,
    EndpointColumn::WifiBand,
    EndpointColumn::ProductFamily,
    EndpointColumn::Platform,
    EndpointColumn::Version,
    EndpointColumn::ServiceRole,
];

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
    /// Whether a side's subnet is inside the corporate network by the building file the place
    /// rollup was classified with (`InsideCorp::code`). Only the place rollup has it.
    Inside(Side),
}

/// Where a subnet is by a building file: CQD's Inside and Outside, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsideCorp {
    Outside,
    Inside,
    /// No subnet, or one in no building.
    Unknown,
}

impl InsideCorp {
    pub fn code(self) -> i64 {
        match self {
            InsideCorp::Outside => 0,
            InsideCorp::Inside => 1,
            InsideCorp::Unknown => 2,
        }
    }

    /// Where `subnet` is by a building file's map (none: every subnet is unknown).
    pub fn of_subnet(buildings: Option<&BuildingMap>, subnet: &str) -> Self {
        match buildings.and_then(|map| map.lookup(subnet)) {
            Some(building) if building.inside_corp => InsideCorp::Inside,
            Some(_) => InsideCorp::Outside,
            None => InsideCorp::Unknown,
        }
    }

    pub fn of_code(code: i64) -> Option<Self> {
        [InsideCorp::Outside, InsideCorp::Inside, InsideCorp::Unknown]
            .into_iter()
            .find(|inside| inside.code() == code)
    }
}

/// The place rollup's code for a subnet the mapping of its file does not have yet: a day that
/// has one is classified again.
const UNMAPPED: i64 = 3;

impl Column {
    /// The column's name in the daily tables, and its expression over a fact's rows for every
    /// column but an endpoint's (`row_expression`).
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
            Column::Endpoint(side, column) => format!("{}_{}", side.prefix(), column.name()),
            Column::Inside(side) => format!("{}_inside", side.prefix()),
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
            (Column::Inside(_), Fact::Legs) => false,
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
        matches!(
            self,
            Column::Day | Column::MediaType | Column::Classification | Column::Inside(_)
        )
    }

    /// What a row keeps of the column: an endpoint's value through its profile or user key,
    /// every other column as itself.
    fn row_expression(self) -> String {
        match self {
            Column::Endpoint(side, EndpointColumn::UserId) => format!("{}_user", side.prefix()),
            Column::Endpoint(side, _) => format!("{}_endpoint", side.prefix()),
            other => other.expression(),
        }
    }

    /// The column's value in a grouped read over the rows joined with their profiles and users
    /// (`joins`).
    fn joined_expression(self) -> String {
        match self {
            Column::Endpoint(side, EndpointColumn::UserId) => format!("{}.user_id", side.user_alias()),
            Column::Endpoint(side, column) => format!("{}.{}", side.profile_alias(), column.name()),
            Column::Inside(side) => format!(
                "CASE WHEN {profile}.subnet IS NULL THEN {unknown} ELSE COALESCE({mapping}.inside, {UNMAPPED}) END",
                profile = side.profile_alias(),
                mapping = side.mapping_alias(),
                unknown = InsideCorp::Unknown.code(),
            ),
            other => other.expression(),
        }
    }
}

impl Side {
    /// Its value in a rollup's `side` column.
    fn code(self) -> i64 {
        match self {
            Side::First => 0,
            Side::Second => 1,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Side::First => "first",
            Side::Second => "second",
        }
    }

    fn profile_alias(self) -> &'static str {
        match self {
            Side::First => "fp",
            Side::Second => "sp",
        }
    }

    fn user_alias(self) -> &'static str {
        match self {
            Side::First => "fu",
            Side::Second => "su",
        }
    }

    fn mapping_alias(self) -> &'static str {
        match self {
            Side::First => "fm",
            Side::Second => "sm",
        }
    }
}

/// The joins a grouped read over the rows needs for its `group_by`: a side's profile when it
/// groups by one of its columns, its user when by its user id (a row may have none), and for
/// its inside flag its profile and the subnet's place by the building file bound (`?`) there.
fn joins(group_by: &[Column]) -> String {
    let mut joins = String::new();
    for side in [Side::First, Side::Second] {
        let (profile, user, prefix) = (side.profile_alias(), side.user_alias(), side.prefix());
        let named = |wanted: fn(&EndpointColumn) -> bool| {
            group_by
                .iter()
                .any(|column| matches!(column, Column::Endpoint(s, c) if *s == side && wanted(c)))
        };
        let inside = group_by.contains(&Column::Inside(side));
        if inside || named(|column| *column != EndpointColumn::UserId) {
            joins.push_str(&format!(
                " JOIN endpoint_profile {profile} ON {profile}.tenant_key = s.tenant_key AND {profile}.key = s.{prefix}_endpoint"
            ));
        }
        if inside {
            let mapping = side.mapping_alias();
            joins.push_str(&format!(
                " LEFT JOIN subnet_place {mapping} ON {mapping}.tenant_key = s.tenant_key AND {mapping}.building_file = ?
                 AND {mapping}.subnet = {profile}.subnet"
            ));
        }
        if named(|column| *column == EndpointColumn::UserId) {
            joins.push_str(&format!(
                " LEFT JOIN analytics_user {user} ON {user}.tenant_key = s.tenant_key AND {user}.key = s.{prefix}_user"
            ));
        }
    }
    joins
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
    pub measures: Measures,
}

/// Which of the fact's measures (`Fact::measures`) a query sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measures {
    All,
    /// The first three of streams (streams, good, poor): what a ranking by poor ratio needs.
    /// Summing a rollup's columns is most of what reading it costs, so a ranking over a month of
    /// subnets reads three times faster without the others.
    Ranking,
}

impl GroupQuery {
    /// The measures it sums: a name (the rollups' column) and what it adds up over the rows.
    fn summed(&self) -> Vec<(&'static str, String)> {
        let mut measures = self.fact.measures();
        if self.measures == Measures::Ranking {
            measures.truncate(3);
        }
        measures
    }
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

/// Days (numbers since 1970-01-01) of a range, as the place rollup holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassifiedDays {
    /// Classified by the active building file, and unchanged since.
    pub classified: Vec<i64>,
    /// With streams, but not (or no longer) classified.
    pub others: Vec<i64>,
}

/// Analytics over the stream and call-leg rows, implemented once for every SQL backend.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn group(&self, tenant: &TenantId, query: &GroupQuery) -> StoreResult<Vec<GroupRow>>;

    /// Every value an endpoint profile of the tenant has in `column` (not the user id).
    async fn distinct_values(&self, tenant: &TenantId, column: EndpointColumn) -> StoreResult<Vec<String>>;

    /// The calls with streams matching `query`'s range and conditions (its `group_by` unused),
    /// most poor streams first, at most `limit`.
    async fn calls(&self, tenant: &TenantId, query: &GroupQuery, limit: u32) -> StoreResult<Vec<CallSummary>>;

    /// Classifies into the place rollup the days of `[from, to)` (whole days) with streams that
    /// changed since they were classified or were classified with another building file than
    /// the one uploaded at `file` (0: none), whose map is `buildings`; answers which days the
    /// rollup now holds as of `file`, and which other days have streams (those written
    /// meanwhile).
    async fn classified_days(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        file: i64,
        buildings: Option<&BuildingMap>,
    ) -> StoreResult<ClassifiedDays>;

    /// The tenants with days of streams the place rollup does not hold as they are now.
    async fn tenants_with_unclassified_days(&self) -> StoreResult<Vec<TenantId>>;
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

/// What a row's endpoint profile holds of its `EndpointFacts`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Profile {
    server: bool,
    connection_type: Option<&'static str>,
    subnet: Option<String>,
    wifi_band: Option<&'static str>,
    product_family: Option<&'static str>,
    platform: Option<&'static str>,
    version: Option<String>,
    service_role: Option<&'static str>,
}

impl Profile {
    fn of(facts: &EndpointFacts) -> Self {
        Self {
            server: facts.server,
            connection_type: facts.connection_type,
            subnet: facts.subnet.clone(),
            wifi_band: facts.wifi_band,
            product_family: facts.product_family,
            platform: facts.platform,
            version: facts.version.clone(),
            service_role: facts.service_role,
        }
    }

    /// Its values in `PROFILE_COLUMNS` order.
    fn values(&self) -> [SqlValue; 8] {
        let text = |value: Option<&str>| SqlValue::OptionalText(value.map(str::to_owned));
        [
            SqlValue::Bool(self.server),
            text(self.connection_type),
            text(self.subnet.as_deref()),
            text(self.wifi_band),
            text(self.product_family),
            text(self.platform),
            text(self.version.as_deref()),
            text(self.service_role),
        ]
    }

    /// Its unique key in the store: 64 bits of the SHA-256 of its values as a JSON array (which
    /// no two profiles share). Two of a tenant's profiles share a digest with a chance of about
    /// n²/2⁶⁵, 3·10⁻⁸ for a million profiles; the second would then be counted as the first.
    fn digest(&self) -> i64 {
        use sha2::Digest;
        let values = serde_json::json!([
            self.server,
            self.connection_type,
            self.subnet,
            self.wifi_band,
            self.product_family,
            self.platform,
            self.version,
            self.service_role,
        ])
        .to_string();
        let hash = sha2::Sha256::digest(values.as_bytes());
        i64::from_be_bytes(hash[..8].try_into().expect("a SHA-256 is 32 bytes"))
    }
}

/// The keys of the endpoint profiles and users some records' rows name.
#[derive(Debug, Default)]
pub(crate) struct DimensionKeys {
    /// By value, for the rows: a digest is worked out once a profile, not once a row.
    profiles: HashMap<Profile, i64>,
    users: HashMap<String, i64>,
}

impl DimensionKeys {
    fn profile(&self, facts: &EndpointFacts) -> StoreResult<i64> {
        self.profiles
            .get(&Profile::of(facts))
            .copied()
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("an endpoint profile was not written before its rows")))
    }

    fn user(&self, facts: &EndpointFacts) -> StoreResult<SqlValue> {
        let Some(id) = facts.user_id.as_deref() else {
            return Ok(SqlValue::OptionalInteger(None));
        };
        let key = self
            .users
            .get(id)
            .copied()
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("a user was not written before its rows")))?;
        Ok(SqlValue::OptionalInteger(Some(key)))
    }
}

/// Writes the endpoint profiles and users `rows` name that the tenant lacks, and answers the
/// keys of all of them. Run before the transaction that writes the rows, in statements of its
/// own: a profile is shared by many records, and taking its lock inside a record's transaction
/// could deadlock two batches on PostgreSQL. A profile whose rows then fail to commit stays,
/// unused.
pub(crate) async fn resolve_dimensions<B: SqlBackend>(
    backend: &B,
    tenant_key: i64,
    rows: &[&QualityRows],
) -> StoreResult<DimensionKeys> {
    let mut distinct: HashSet<Profile> = HashSet::new();
    let mut users: BTreeSet<&str> = BTreeSet::new();
    let endpoints = rows.iter().flat_map(|rows| {
        let streams = rows.streams.iter().map(|row| &row.call);
        let legs = rows.legs.iter().map(|row| &row.call);
        streams.chain(legs).flat_map(|call| [&call.first, &call.second])
    });
    for facts in endpoints {
        distinct.insert(Profile::of(facts));
        users.extend(facts.user_id.as_deref());
    }
    let mut profiles: HashMap<i64, Profile> = distinct
        .into_iter()
        .map(|profile| (profile.digest(), profile))
        .collect();
    let (mut digest_keys, mut user_keys) = (HashMap::new(), HashMap::new());
    let digests: Vec<i64> = profiles.keys().copied().collect();
    let users: Vec<&str> = users.into_iter().collect();
    read_keys(backend, tenant_key, &digests, &users, &mut digest_keys, &mut user_keys).await?;
    let mut missing_profiles: Vec<i64> = digests
        .iter()
        .copied()
        .filter(|digest| !digest_keys.contains_key(digest))
        .collect();
    let missing_users: Vec<&str> = users
        .iter()
        .copied()
        .filter(|user| !user_keys.contains_key(*user))
        .collect();
    if !missing_profiles.is_empty() || !missing_users.is_empty() {
        // In one order everywhere, so two nodes adding the same ones wait rather than deadlock.
        missing_profiles.sort_unstable();
        let profile_columns: Vec<&str> = ["tenant_key", "digest"]
            .into_iter()
            .chain(PROFILE_COLUMNS.iter().map(|column| column.name()))
            .collect();
        let profile_rows: Vec<Vec<SqlValue>> = missing_profiles
            .iter()
            .map(|digest| {
                [SqlValue::Integer(tenant_key), SqlValue::Integer(*digest)]
                    .into_iter()
                    .chain(profiles[digest].values())
                    .collect()
            })
            .collect();
        let user_rows: Vec<Vec<SqlValue>> = missing_users
            .iter()
            .map(|user| vec![SqlValue::Integer(tenant_key), SqlValue::Text((*user).to_owned())])
            .collect();
        let mut writes = insert_bound_rows(
            B::DIALECT,
            "endpoint_profile",
            &profile_columns,
            &profile_rows,
            " ON CONFLICT (tenant_key, digest) DO NOTHING",
        );
        writes.extend(insert_bound_rows(
            B::DIALECT,
            "analytics_user",
            &["tenant_key", "user_id"],
            &user_rows,
            " ON CONFLICT (tenant_key, user_id) DO NOTHING",
        ));
        backend.write_all(writes).await?;
        read_keys(
            backend,
            tenant_key,
            &missing_profiles,
            &missing_users,
            &mut digest_keys,
            &mut user_keys,
        )
        .await?;
    }
    let profiles = digest_keys
        .into_iter()
        .filter_map(|(digest, key)| Some((profiles.remove(&digest)?, key)))
        .collect();
    Ok(DimensionKeys {
        profiles,
        users: user_keys,
    })
}

/// `resolve_dimensions` for records of several tenants, each given with its tenant's key.
pub(crate) async fn resolve_dimensions_by_tenant<B: SqlBackend>(
    backend: &B,
    rows: &[(i64, &QualityRows)],
) -> StoreResult<HashMap<i64, DimensionKeys>> {
    let mut by_tenant: HashMap<i64, Vec<&QualityRows>> = HashMap::new();
    for (tenant_key, rows) in rows {
        by_tenant.entry(*tenant_key).or_default().push(rows);
    }
    let mut keys = HashMap::new();
    for (tenant_key, rows) in by_tenant {
        keys.insert(tenant_key, resolve_dimensions(backend, tenant_key, &rows).await?);
    }
    Ok(keys)
}

async fn read_keys<B: SqlBackend>(
    backend: &B,
    tenant_key: i64,
    digests: &[i64],
    users: &[&str],
    digest_keys: &mut HashMap<i64, i64>,
    user_keys: &mut HashMap<String, i64>,
) -> StoreResult<()> {
    let among = sql::among_list(B::DIALECT);
    if !digests.is_empty() {
        let sql = format!("SELECT digest, key FROM endpoint_profile WHERE tenant_key = ? AND digest {among}");
        let values = vec![SqlValue::Integer(tenant_key), SqlValue::IntegerList(digests.to_vec())];
        for row in backend.fetch_all(Statement::new(B::DIALECT, &sql, values)).await? {
            digest_keys.insert(B::integer_at(&row, 0)?, B::integer_at(&row, 1)?);
        }
    }
    if !users.is_empty() {
        let sql = format!("SELECT user_id, key FROM analytics_user WHERE tenant_key = ? AND user_id {among}");
        let users = users.iter().map(|user| (*user).to_owned()).collect();
        let values = vec![SqlValue::Integer(tenant_key), SqlValue::TextList(Some(users))];
        for row in backend.fetch_all(Statement::new(B::DIALECT, &sql, values)).await? {
            user_keys.insert(B::text_at(&row, 0)?, B::integer_at(&row, 1)?);
        }
    }
    Ok(())
}

fn stream_values(row: &StreamRow, ordinal: usize, keys: &DimensionKeys) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![
        SqlValue::Integer(ordinal as i64),
        SqlValue::Integer(row.media_type as i64),
        SqlValue::Integer(row.classification as i64),
        SqlValue::Integer(row.poor_due_to_bits()),
        SqlValue::Bool(row.first_to_second),
        SqlValue::Bool(row.call.first_is_caller),
        SqlValue::Bool(row.call.conference),
        SqlValue::Bool(row.call.pstn),
        SqlValue::Bool(row.call.excluded),
        SqlValue::Bool(row.qoe_reported),
        SqlValue::Integer(keys.profile(&row.call.first)?),
        SqlValue::Integer(keys.profile(&row.call.second)?),
        keys.user(&row.call.first)?,
        keys.user(&row.call.second)?,
    ])
}

fn leg_values(row: &LegRow, ordinal: usize, keys: &DimensionKeys) -> StoreResult<Vec<SqlValue>> {
    Ok(vec![
        SqlValue::Integer(ordinal as i64),
        SqlValue::Integer(row.outcome as i64),
        SqlValue::OptionalInteger(row.first_rating),
        SqlValue::OptionalInteger(row.second_rating),
        SqlValue::Bool(row.call.first_is_caller),
        SqlValue::Bool(row.call.conference),
        SqlValue::Bool(row.call.pstn),
        SqlValue::Bool(row.call.excluded),
        SqlValue::Integer(keys.profile(&row.call.first)?),
        SqlValue::Integer(keys.profile(&row.call.second)?),
        keys.user(&row.call.first)?,
        keys.user(&row.call.second)?,
    ])
}

/// The inserts of the analytics rows of `records` (each with its start), all of a tenant, in
/// as few statements as the limits allow; `keys` from `resolve_dimensions` over them.
fn insert_rows(
    dialect: Dialect,
    tenant_key: i64,
    records: &[(RecordRef<'_>, Timestamp, &QualityRows)],
    keys: &DimensionKeys,
) -> StoreResult<Vec<Statement>> {
    let mut statements = Vec::new();
    let Some((first, _, _)) = records.first() else {
        return Ok(statements);
    };
    let record = first.column();
    let stream_columns = [
        "tenant_key",
        "start_ticks",
        record,
        "ordinal",
        "media_type",
        "classification",
        "poor_due_to",
        "first_to_second",
        "first_is_caller",
        "conference",
        "pstn",
        "excluded",
        "qoe_reported",
        "first_endpoint",
        "second_endpoint",
        "first_user",
        "second_user",
    ];
    let leg_columns = [
        "tenant_key",
        "start_ticks",
        record,
        "ordinal",
        "outcome",
        "first_rating",
        "second_rating",
        "first_is_caller",
        "conference",
        "pstn",
        "excluded",
        "first_endpoint",
        "second_endpoint",
        "first_user",
        "second_user",
    ];
    // Each row's values, the record's columns first.
    let (mut streams, mut legs) = (Vec::new(), Vec::new());
    for (record, start, rows) in records {
        let with_record = |values: Vec<SqlValue>| -> Vec<SqlValue> {
            [SqlValue::Integer(tenant_key), SqlValue::from(*start), record.value()]
                .into_iter()
                .chain(values)
                .collect()
        };
        for (ordinal, row) in rows.streams.iter().enumerate() {
            streams.push(with_record(stream_values(row, ordinal, keys)?));
        }
        for (ordinal, row) in rows.legs.iter().enumerate() {
            legs.push(with_record(leg_values(row, ordinal, keys)?));
        }
    }
    for (table, columns, rows) in [
        ("stream", &stream_columns[..], streams),
        ("call_leg", &leg_columns[..], legs),
    ] {
        statements.extend(insert_bound_rows(dialect, table, columns, &rows, ""));
    }
    Ok(statements)
}

/// An `INSERT` of `rows` into `columns` of `table` (then `tail`, such as an `ON CONFLICT`) whose
/// text is the same whatever their number (`sql::bound_rows`).
fn insert_bound_rows(
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    rows: &[Vec<SqlValue>],
    tail: &str,
) -> Vec<Statement> {
    let columns_text = columns.join(", ");
    sql::bound_rows(dialect, "batch", columns, rows)
        .into_iter()
        .map(|rows| {
            // SQLite reads an `ON` after a `SELECT`'s source as the join's, unless a `WHERE`
            // comes between.
            let sql = format!(
                "INSERT INTO {table} ({columns_text}) SELECT * FROM {} WHERE true{tail}",
                rows.source
            );
            Statement::new(dialect, &sql, rows.values).one_off(rows.one_off)
        })
        .collect()
}

/// The inserts of the analytics rows of `records` (all of a tenant), then the rollups' change
/// that adds them: what a transaction that writes records runs once they are written.
pub(crate) fn added_rows(
    dialect: Dialect,
    tenant_key: i64,
    records: &[(RecordRef<'_>, Timestamp, &QualityRows)],
    keys: &DimensionKeys,
) -> StoreResult<Vec<Statement>> {
    let mut statements = insert_rows(dialect, tenant_key, records, keys)?;
    let written: Vec<_> = records.iter().map(|(record, start, _)| (*record, *start)).collect();
    statements.extend(daily_changes(dialect, tenant_key, &written, 1));
    Ok(statements)
}

/// The rollups' change (`sign` 1 after inserting, -1 before deleting) for the rows of
/// `records` (each with its start), all of a tenant, in their transaction. A batch at a time,
/// since each statement groups whatever rows it is given.
pub(crate) fn daily_changes(
    dialect: Dialect,
    tenant_key: i64,
    records: &[(RecordRef<'_>, Timestamp)],
    sign: i64,
) -> Vec<Statement> {
    let mut statements = Vec::new();
    if records.is_empty() {
        return statements;
    }
    statements.extend(rollups_writer_lock(dialect, tenant_key));
    let (parts, column) = batch_pairs(dialect, tenant_key, records);
    for pairs in parts {
        let rows = ChangedRows::OfRecords {
            source: &pairs.source,
            column,
        };
        for fact in [Fact::Streams, Fact::Legs] {
            for sql in daily_change(dialect, fact, sign, &rows) {
                statements.push(Statement::new(dialect, &sql, pairs.values.clone()).one_off(pairs.one_off));
            }
        }
    }
    statements
}

/// The deletes of a record's analytics rows.
pub(crate) fn delete_rows(
    dialect: Dialect,
    tenant_key: i64,
    record: RecordRef<'_>,
    start: Timestamp,
) -> Vec<Statement> {
    let mut statements = daily_changes(dialect, tenant_key, &[(record, start)], -1);
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

/// The rollups keep a missing endpoint text as '' (a key column cannot be NULL).
fn kept_as_text(column: Column) -> bool {
    matches!(column, Column::Endpoint(_, endpoint) if !matches!(endpoint, EndpointColumn::Server | EndpointColumn::UserId))
}

const TENANT_KEY: &str = "(SELECT key FROM tenant WHERE id = ?)";

/// `expression` as `condition` wants it: among the listed values (`listed` renders the `IN`
/// over placeholders, after a placeholder for `listed_prefix` when given), missing when
/// `Value::Null` is listed; a negated condition also takes a missing value, which is never one
/// listed (unless `missing_is_listed`).
fn predicate(
    condition: &Condition,
    expression: &str,
    listed: impl Fn(&str) -> String,
    listed_prefix: Option<SqlValue>,
    missing_is_listed: bool,
    values: &mut Vec<SqlValue>,
) -> String {
    let has_null = condition.values.contains(&Value::Null);
    let wanted: Vec<&Value> = condition.values.iter().filter(|v| **v != Value::Null).collect();
    let mut alternatives = Vec::new();
    if !wanted.is_empty() {
        alternatives.push(listed(&vec!["?"; wanted.len()].join(", ")));
        values.extend(listed_prefix);
        values.extend(wanted.iter().map(|value| bind_value(condition.column, value)));
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
        let missing = if has_null || missing_is_listed {
            String::new()
        } else {
            format!(" OR {expression} IS NULL")
        };
        format!("(NOT {matched}{missing})")
    } else {
        matched
    }
}

/// The `WHERE` of a query over the rows (`rollup` None) or a rollup: tenant, range, side and
/// every condition.
fn where_clause(query: &GroupQuery, tenant: &TenantId, rollup: Option<RollupRead>) -> (String, Vec<SqlValue>) {
    let mut sql = format!("tenant_key = {TENANT_KEY} AND start_ticks >= ? AND start_ticks < ?");
    let mut values = vec![tenant.into(), query.from.into(), query.to.into()];
    if let Some(RollupRead { side: Some(side), .. }) = rollup {
        sql.push_str(" AND side = ?");
        values.push(SqlValue::Integer(side.code()));
    }
    for condition in all_conditions(query) {
        let column = condition.column;
        let clause = match (column, rollup) {
            (Column::Endpoint(_, EndpointColumn::UserId), None) => {
                let expression = column.row_expression();
                predicate(
                    &condition,
                    &expression,
                    |placeholders| {
                        format!(
                            "{expression} IN (SELECT key FROM analytics_user WHERE tenant_key = {TENANT_KEY} AND user_id IN ({placeholders}))"
                        )
                    },
                    Some(tenant.into()),
                    false,
                    &mut values,
                )
            }
            (Column::Endpoint(_, endpoint), None) => {
                values.push(tenant.into());
                let inner = predicate(
                    &condition,
                    endpoint.name(),
                    |placeholders| format!("{} IN ({placeholders})", endpoint.name()),
                    None,
                    false,
                    &mut values,
                );
                format!(
                    "{} IN (SELECT key FROM endpoint_profile WHERE tenant_key = {TENANT_KEY} AND {inner})",
                    column.row_expression()
                )
            }
            (_, None) => {
                let expression = column.expression();
                predicate(
                    &condition,
                    &expression,
                    |placeholders| format!("{expression} IN ({placeholders})"),
                    None,
                    false,
                    &mut values,
                )
            }
            (_, Some(read)) => {
                let expression = read.rollup.column_name(column);
                let mut condition = condition.clone();
                if kept_as_text(column) {
                    for value in &mut condition.values {
                        if *value == Value::Null {
                            *value = Value::Text(String::new());
                        }
                    }
                }
                predicate(
                    &condition,
                    &expression,
                    |placeholders| format!("{expression} IN ({placeholders})"),
                    None,
                    true,
                    &mut values,
                )
            }
        };
        sql.push_str(" AND ");
        sql.push_str(&clause);
    }
    (sql, values)
}

/// Whether a rollup answers `query` (a query naming `Column::Inside` has no other answer).
pub fn rollup_answers(query: &GroupQuery) -> bool {
    rollup_for(query).is_some()
}

/// The rollup that can answer `query`, if any: whole days, and only columns it keeps (of one
/// side, for a rollup per side).
fn rollup_for(query: &GroupQuery) -> Option<RollupRead> {
    let whole_days = query.from.ticks() % TICKS_PER_DAY == 0 && query.to.ticks() % TICKS_PER_DAY == 0;
    if !whole_days {
        return None;
    }
    let mut named: Vec<Column> = query.group_by.clone();
    named.extend(all_conditions(query).iter().map(|condition| condition.column));
    named.retain(|column| *column != Column::Day);
    let mut sides: Vec<Side> = named
        .iter()
        .filter_map(|column| match column {
            Column::Endpoint(side, _) => Some(*side),
            _ => None,
        })
        .collect();
    sides.sort_unstable();
    sides.dedup();
    let by_place = named.iter().any(|column| matches!(column, Column::Inside(_)));
    let candidates: Vec<&'static Rollup> = match by_place {
        true => vec![&PLACE_ROLLUP],
        false => Rollup::of(query.fact).collect(),
    };
    candidates.into_iter().find_map(|rollup| {
        let side = match (rollup.per_side, &sides[..]) {
            (false, _) => None,
            (true, [side]) => Some(*side),
            (true, _) => return None,
        };
        let keys = rollup.keys_of(side);
        named
            .iter()
            .all(|column| keys.contains(column))
            .then_some(RollupRead { rollup, side })
    })
}

fn group_statement(dialect: Dialect, tenant: &TenantId, query: &GroupQuery) -> Statement {
    let rollup = rollup_for(query);
    let keys: Vec<String> = query
        .group_by
        .iter()
        .map(|column| match rollup {
            Some(read) => read.rollup.column_name(*column),
            None => column.joined_expression(),
        })
        .collect();
    let select_keys = query
        .group_by
        .iter()
        .zip(&keys)
        .map(|(column, key)| {
            if column.is_integer() {
                format!("CAST({key} AS BIGINT), ")
            } else if rollup.is_some() && kept_as_text(*column) {
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
    let measures = query.summed();
    let (source, sums, values): (String, Vec<String>, Vec<SqlValue>) = match rollup {
        Some(read) => {
            let sums = measures
                .iter()
                .map(|(name, _)| format!("CAST(SUM({name}) AS BIGINT)"))
                .collect();
            let spans = read.spans(query);
            let mut values = Vec::new();
            let mut branches = Vec::new();
            for (table, from, to) in &spans {
                let span = GroupQuery {
                    from: *from,
                    to: *to,
                    ..query.clone()
                };
                let (where_sql, span_values) = where_clause(&span, tenant, rollup);
                values.extend(span_values);
                branches.push((table, where_sql));
            }
            let source = match &branches[..] {
                [(table, where_sql)] => format!("{table} WHERE {where_sql}"),
                _ => {
                    // The key columns (plain columns: a query by days reads days only; once
                    // each, though two dimensions may group by one) and the measures of each
                    // table, summed outside.
                    let mut columns: Vec<String> = Vec::new();
                    for key in &keys {
                        if !columns.contains(key) {
                            columns.push(key.clone());
                        }
                    }
                    columns.extend(measures.iter().map(|(name, _)| (*name).to_owned()));
                    let columns = columns.join(", ");
                    let selects: Vec<String> = branches
                        .iter()
                        .map(|(table, where_sql)| format!("SELECT {columns} FROM {table} WHERE {where_sql}"))
                        .collect();
                    format!("({}) r", selects.join(" UNION ALL "))
                }
            };
            (source, sums, values)
        }
        None => {
            let (where_sql, values) = where_clause(query, tenant, None);
            (
                format!(
                    "(SELECT * FROM {} WHERE {where_sql}) s{}",
                    query.fact.table(),
                    joins(&query.group_by)
                ),
                measures
                    .iter()
                    .map(|(_, expression)| format!("CAST(SUM({expression}) AS BIGINT)"))
                    .collect(),
                values,
            )
        }
    };
    let sql = format!("SELECT {select_keys}{} FROM {source}{group}", sums.join(", "));
    Statement::new(dialect, &sql, values)
}

/// Which of a fact table's rows a change of its rollups takes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ChangedRows<'a> {
    /// The rows that meet a condition on the table's columns (placeholders its own).
    Where(&'a str),
    /// Every row of a batch's records: `source` is the (start, record) pairs as bound rows
    /// named `batch(start_ticks, record)`, and `column` the rows' column that names their
    /// record; its placeholders are the pairs' values and then the tenant's key.
    OfRecords { source: &'a str, column: &'static str },
}

impl ChangedRows<'_> {
    /// A `SELECT` of the rows, with every column of `fact`'s table.
    fn select(self, dialect: Dialect, fact: Fact) -> String {
        let table = fact.table();
        let (source, column) = match self {
            ChangedRows::Where(condition) => return format!("SELECT * FROM {table} WHERE {condition}"),
            ChangedRows::OfRecords { source, column } => (source, column),
        };
        // The pairs drive the join, so each finds its record's rows by the primary key
        // (tenant, start, record); lists of starts and of records would try every start with
        // every record, and PostgreSQL without statistics read the tenant's whole month that
        // way. Without statistics SQLite would rather scan the tenant's rows unless CROSS JOIN
        // fixes the order (PostgreSQL takes a function's rows for few and needs no telling).
        let join = match dialect {
            Dialect::Sqlite => "CROSS JOIN",
            Dialect::Postgres => "JOIN",
        };
        format!(
            "SELECT t.* FROM {source} {join} {table} t
             ON t.tenant_key = ? AND t.start_ticks = batch.start_ticks AND t.{column} = batch.record"
        )
    }
}

/// The (start, record) pairs of `records` as bound rows for `ChangedRows::OfRecords`, with the
/// tenant's key after them (the values its select binds), and the column that names a record.
fn batch_pairs(
    dialect: Dialect,
    tenant_key: i64,
    records: &[(RecordRef<'_>, Timestamp)],
) -> (Vec<sql::BoundRows>, &'static str) {
    let pairs: Vec<Vec<SqlValue>> = records
        .iter()
        .map(|(record, start)| vec![SqlValue::from(*start), record.value()])
        .collect();
    let mut parts = sql::bound_rows(dialect, "batch", &["start_ticks", "record"], &pairs);
    for part in &mut parts {
        part.values.push(SqlValue::Integer(tenant_key));
    }
    let column = records
        .first()
        .map_or(RecordRef::Key(0), |(record, _)| *record)
        .column();
    (parts, column)
}

/// Adds (`sign` 1) or takes away (`sign` -1) the fact's `rows` to or from each of its
/// rollups, a day and key at a time: a statement per rollup and side, each taking the values
/// `rows` names. Run after inserting rows and before deleting them, in the same transaction, it
/// keeps every rollup the sum of the rows. The endpoint columns come from the rows' profiles.
pub(crate) fn daily_change(dialect: Dialect, fact: Fact, sign: i64, rows: &ChangedRows) -> Vec<String> {
    let mut statements = Vec::new();
    let day = day_start("s.start_ticks");
    let selected = rows.select(dialect, fact);
    for rollup in Rollup::of(fact) {
        let sides: &[Option<Side>] = match rollup.per_side {
            true => &[Some(Side::First), Some(Side::Second)],
            false => &[None],
        };
        let weekly = rollup
            .weekly
            .map(|weekly| (weekly, week_start(dialect, "s.start_ticks")));
        for (table, start) in [(rollup.table, day.clone())].into_iter().chain(weekly) {
            for side in sides {
                statements.push(rollup_change(rollup, table, &start, *side, sign, &selected));
            }
        }
    }
    if fact == Fact::Streams {
        // The place rollup is classified again when next asked for these days.
        statements.push(format!(
            "INSERT INTO place_day (tenant_key, start_ticks, stale, building_file)
             SELECT s.tenant_key, {day}, 1, {NEVER_CLASSIFIED} FROM ({selected}) s
             GROUP BY s.tenant_key, {day}
             ON CONFLICT (tenant_key, start_ticks) DO UPDATE SET stale = 1"
        ));
    }
    statements
}

/// The `place_day.building_file` of a day never classified.
const NEVER_CLASSIFIED: i64 = -1;

/// Adds (`sign` 1) or takes away (`sign` -1) the rows `selected` (a `SELECT` of them) to or
/// from `rollup`'s `table` (its daily or weekly one), whose rows start at `start` (over the
/// rows' `s.start_ticks`); `side`'s totals of a rollup per side.
fn rollup_change(rollup: &Rollup, table: &str, start: &str, side: Option<Side>, sign: i64, selected: &str) -> String {
    let measures = rollup.fact.measures();
    let names: Vec<&str> = measures.iter().map(|(name, _)| *name).collect();
    let sums: Vec<String> = measures
        .iter()
        .map(|(_, expression)| format!("CAST(SUM({expression}) * {sign} AS BIGINT)"))
        .collect();
    let keys = rollup.keys_of(side);
    let key_values: Vec<String> = keys
        .iter()
        .map(|column| {
            let value = column.joined_expression();
            match kept_as_text(*column) {
                true => format!("COALESCE({value}, '')"),
                false => value,
            }
        })
        .collect();
    // The side is a constant of the statement, outside its GROUP BY (where a number would name
    // a column).
    let side_value = side.map_or(String::new(), |side| format!("{}, ", side.code()));
    let key_names = rollup.key_names().join(", ");
    format!(
        "INSERT INTO {table} (tenant_key, start_ticks, {key_names}, {})
         SELECT s.tenant_key, {start}, {side_value}{}, {}
         FROM ({selected}) s{}
         GROUP BY s.tenant_key, {start}, {}
         {}",
        names.join(", "),
        key_values.join(", "),
        sums.join(", "),
        joins(&keys),
        key_values.join(", "),
        added_on_conflict(table, &key_names, &names)
    )
}

/// The end of an insert into a rollup table that adds its measures to a row already there.
fn added_on_conflict(table: &str, key_names: &str, names: &[&str]) -> String {
    let added: Vec<String> = names
        .iter()
        .map(|name| format!("{name} = {table}.{name} + excluded.{name}"))
        .collect();
    format!(
        "ON CONFLICT (tenant_key, start_ticks, {key_names}) DO UPDATE SET {}",
        added.join(", ")
    )
}

/// Adds (`sign` 1) or takes away (`sign` -1) the rows of `rollup`'s daily table chosen by
/// `days_where` to or from its weekly table.
fn weeks_from_days(dialect: Dialect, rollup: &Rollup, weekly: &str, sign: i64, days_where: &str) -> String {
    let keys = rollup.key_names().join(", ");
    let names: Vec<&str> = rollup.fact.measures().iter().map(|(name, _)| *name).collect();
    let sums: Vec<String> = names
        .iter()
        .map(|name| format!("CAST(SUM({name}) * {sign} AS BIGINT)"))
        .collect();
    let start = week_start(dialect, "start_ticks");
    format!(
        "INSERT INTO {weekly} (tenant_key, start_ticks, {keys}, {})
         SELECT tenant_key, {start}, {keys}, {} FROM {} WHERE {days_where}
         GROUP BY tenant_key, {start}, {keys}
         {}",
        names.join(", "),
        sums.join(", "),
        rollup.table,
        added_on_conflict(weekly, &keys, &names)
    )
}

/// The rollup tables in the order writers of rows change them (`daily_change`'s), which is the
/// order a lock of them all takes them in, so that neither waits on the other in a cycle.
fn rollup_tables() -> Vec<&'static str> {
    ROLLUPS
        .iter()
        .flat_map(|rollup| std::iter::once(rollup.table).chain(rollup.weekly))
        .collect()
}

/// On PostgreSQL, the lock that keeps writers of rows out of every rollup until the
/// transaction ends (SQLite's writer is one).
fn rollups_lock(dialect: Dialect) -> Option<Statement> {
    let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", rollup_tables().join(", "));
    (dialect == Dialect::Postgres).then(|| Statement::new(dialect, &lock, Vec::new()))
}

/// The two-key advisory lock class of `rollups_writer_lock`; it spells "crol".
const ROLLUPS_WRITER_LOCK: i64 = 0x6372_6f6c;

/// On PostgreSQL, the lock a transaction takes before it first changes a tenant's rollups, held
/// to its end (taking it again is free). Two batches meet on the same rollup rows in whatever
/// order each statement's grouping yields them, so two writers of a tenant would deadlock; with
/// it they take turns for the end of their transactions only. SQLite's writer is one.
pub(crate) fn rollups_writer_lock(dialect: Dialect, tenant_key: i64) -> Option<Statement> {
    (dialect == Dialect::Postgres).then(|| {
        Statement::new(
            dialect,
            "SELECT pg_advisory_xact_lock(CAST(? AS INTEGER), CAST(? AS INTEGER))",
            vec![SqlValue::Integer(ROLLUPS_WRITER_LOCK), SqlValue::Integer(tenant_key)],
        )
    })
}

/// Reads the value of the store fact `name` (no row: the fact is absent).
fn store_fact(dialect: Dialect, name: &str) -> Statement {
    Statement::new(
        dialect,
        "SELECT value FROM store_fact WHERE name = ?",
        vec![SqlValue::Text(name.to_owned())],
    )
}

fn forget_store_fact(dialect: Dialect, name: &str) -> Statement {
    Statement::new(
        dialect,
        "DELETE FROM store_fact WHERE name = ?",
        vec![SqlValue::Text(name.to_owned())],
    )
}

/// Sums the weekly tables again from the daily ones if a migration added one (the pending fact
/// `WEEKS_PENDING`), in one transaction.
async fn rebuild_pending_weeks<B: SqlBackend>(backend: &B) -> StoreResult<()> {
    let dialect = B::DIALECT;
    if backend
        .fetch_optional(store_fact(dialect, WEEKS_PENDING))
        .await?
        .is_none()
    {
        return Ok(());
    }
    let mut statements: Vec<Statement> = rollups_lock(dialect).into_iter().collect();
    for rollup in &ROLLUPS {
        if let Some(weekly) = rollup.weekly {
            statements.push(Statement::new(dialect, &format!("DELETE FROM {weekly}"), Vec::new()));
            let sql = weeks_from_days(dialect, rollup, weekly, 1, "1 = 1");
            statements.push(Statement::new(dialect, &sql, Vec::new()));
        }
    }
    statements.push(forget_store_fact(dialect, WEEKS_PENDING));
    backend.write_all(statements).await?;
    tracing::info!("the weekly analytics rollups are summed from the daily ones");
    Ok(())
}

/// Every rollup computed again from the rows, a UTC day a transaction, from the day the
/// pending fact names on: how rollups added to a store with rows get their totals. The days are
/// those the first rollups (`stream_day`, `call_leg_day`) have, which every write of rows has
/// kept since the rows exist. Each day's totals are deleted and summed again under a lock that
/// keeps writers of rows out of the rollups meanwhile (PostgreSQL; SQLite's writer is one), so a
/// day done twice, or concurrently by two nodes, ends the same; a weekly table stays the sum of
/// its daily one, the day's old totals taken away from it and the new added. Removes the fact
/// when done. Weekly tables a migration added are summed first.
pub(crate) async fn rebuild_pending_rollups<B: SqlBackend>(backend: &B) -> StoreResult<()> {
    rebuild_pending_weeks(backend).await?;
    let dialect = B::DIALECT;
    let Some(row) = backend.fetch_optional(store_fact(dialect, ROLLUPS_PENDING)).await? else {
        return Ok(());
    };
    let mut next = B::integer_at(&row, 0)?;
    let mut days = 0;
    loop {
        let first_row = Statement::new(
            dialect,
            "SELECT MIN(start_ticks) FROM (
                 SELECT MIN(start_ticks) AS start_ticks FROM stream_day WHERE start_ticks >= ?
                 UNION ALL SELECT MIN(start_ticks) FROM call_leg_day WHERE start_ticks >= ?
             ) f",
            vec![SqlValue::Integer(next), SqlValue::Integer(next)],
        );
        let first = match backend.fetch_optional(first_row).await? {
            Some(row) => B::optional_integer_at(&row, 0)?,
            None => None,
        };
        let Some(first) = first else {
            backend
                .write_all(vec![forget_store_fact(dialect, ROLLUPS_PENDING)])
                .await?;
            tracing::info!(days, "every analytics rollup is summed from the rows");
            return Ok(());
        };
        let day = first.div_euclid(TICKS_PER_DAY) * TICKS_PER_DAY;
        let range = || vec![SqlValue::Integer(day), SqlValue::Integer(day + TICKS_PER_DAY)];
        let mut statements: Vec<Statement> = rollups_lock(dialect).into_iter().collect();
        let days_where = "start_ticks >= ? AND start_ticks < ?";
        for rollup in &ROLLUPS {
            if let Some(weekly) = rollup.weekly {
                let sql = weeks_from_days(dialect, rollup, weekly, -1, days_where);
                statements.push(Statement::new(dialect, &sql, range()));
            }
            let delete = format!("DELETE FROM {} WHERE {days_where}", rollup.table);
            statements.push(Statement::new(dialect, &delete, range()));
        }
        for fact in [Fact::Streams, Fact::Legs] {
            for sql in daily_change(dialect, fact, 1, &ChangedRows::Where(days_where)) {
                statements.push(Statement::new(dialect, &sql, range()));
            }
        }
        next = day + TICKS_PER_DAY;
        statements.push(Statement::new(
            dialect,
            "UPDATE store_fact SET value = ? WHERE name = ?",
            vec![SqlValue::Integer(next), SqlValue::Text(ROLLUPS_PENDING.to_owned())],
        ));
        backend.write_all(statements).await?;
        days += 1;
        if days % 10 == 0 {
            tracing::info!(days, "summing the analytics rollups from the rows");
        }
    }
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
        let measure_count = query.summed().len();
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
            let measures = (0..measure_count)
                .map(|index| B::integer_at(row, width + index))
                .collect::<Result<Vec<_>, _>>()?;
            groups.push(GroupRow { keys, measures });
        }
        Ok(groups)
    }

    async fn classified_days(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        file: i64,
        buildings: Option<&BuildingMap>,
    ) -> StoreResult<ClassifiedDays> {
        let dialect = B::DIALECT;
        let lookup = Statement::new(
            dialect,
            "SELECT COALESCE(MAX(key), 0) FROM tenant WHERE id = ?",
            vec![tenant.into()],
        );
        let tenant_key = self.count(lookup).await?;
        if tenant_key == 0 {
            return Ok(ClassifiedDays::default());
        }
        // Each day of the range with streams, and whether the rollup holds it as of `file`.
        let day_states = || async {
            let states = Statement::new(
                dialect,
                "SELECT DISTINCT d.start_ticks,
                        CAST(CASE WHEN p.stale = 0 AND p.building_file = ? THEN 1 ELSE 0 END AS BIGINT)
                 FROM stream_day d
                 LEFT JOIN place_day p ON p.tenant_key = d.tenant_key AND p.start_ticks = d.start_ticks
                 WHERE d.tenant_key = ? AND d.start_ticks >= ? AND d.start_ticks < ?
                 ORDER BY d.start_ticks",
                vec![
                    SqlValue::Integer(file),
                    SqlValue::Integer(tenant_key),
                    from.into(),
                    to.into(),
                ],
            );
            self.fetch_all(states)
                .await?
                .iter()
                .map(|row| Ok((B::integer_at(row, 0)?, B::integer_at(row, 1)? == 1)))
                .collect::<Result<Vec<(i64, bool)>, sqlx::Error>>()
                .map_err(StoreError::from)
        };
        let pending: Vec<i64> = day_states()
            .await?
            .into_iter()
            .filter_map(|(day, classified)| (!classified).then_some(day))
            .collect();
        if !pending.is_empty() {
            // One classifier at a time in this process (`serve`'s and a query's would otherwise
            // do the same days together); each day is looked at again once it is this one's
            // turn.
            let _turn = CLASSIFYING.lock().await;
            map_subnets(self, tenant_key, file, buildings).await?;
            for day in pending {
                let state = Statement::new(
                    dialect,
                    "SELECT COUNT(*) FROM place_day
                     WHERE tenant_key = ? AND start_ticks = ? AND stale = 0 AND building_file = ?",
                    vec![
                        SqlValue::Integer(tenant_key),
                        SqlValue::Integer(day),
                        SqlValue::Integer(file),
                    ],
                );
                if self.count(state).await? == 0 {
                    self.write_all(classify_day(dialect, tenant_key, day, file)).await?;
                }
            }
        }
        let mut answer = ClassifiedDays::default();
        for (day, classified) in day_states().await? {
            match classified {
                true => answer.classified.push(day / TICKS_PER_DAY),
                false => answer.others.push(day / TICKS_PER_DAY),
            }
        }
        Ok(answer)
    }

    async fn tenants_with_unclassified_days(&self) -> StoreResult<Vec<TenantId>> {
        let statement = Statement::new(
            B::DIALECT,
            "SELECT t.id AS tenant_id FROM tenant t
             WHERE EXISTS (SELECT 1 FROM place_day p WHERE p.tenant_key = t.key AND p.stale <> 0)",
            Vec::new(),
        );
        self.fetch_all(statement)
            .await?
            .iter()
            .map(|row| B::tenant(row))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    async fn distinct_values(&self, tenant: &TenantId, column: EndpointColumn) -> StoreResult<Vec<String>> {
        let name = column.name();
        let statement = Statement::new(
            B::DIALECT,
            &format!(
                "SELECT DISTINCT {name} FROM endpoint_profile
                 WHERE tenant_key = {TENANT_KEY} AND {name} IS NOT NULL ORDER BY {name}"
            ),
            vec![tenant.into()],
        );
        self.fetch_analytics(statement)
            .await?
            .iter()
            .map(|row| B::text_at(row, 0))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn calls(&self, tenant: &TenantId, query: &GroupQuery, limit: u32) -> StoreResult<Vec<CallSummary>> {
        let (where_sql, mut values) = where_clause(query, tenant, None);
        values.push(SqlValue::Integer(i64::from(limit)));
        // The calls are found in the stream rows alone; SQLite's rows name their record by key,
        // so its ids come from a join outside. A record's rows share its start and follow each
        // other in the key's order, so grouping by both needs no sort.
        let (reference, id, join) = match B::DIALECT {
            Dialect::Sqlite => ("record_key", "r.id", "JOIN record r ON r.key = m.record_key"),
            Dialect::Postgres => ("record_id", "m.record_id", ""),
        };
        let sql = format!(
            "SELECT {id}, m.first_start, m.conference, m.streams, m.poor FROM (
                 SELECT {reference}, start_ticks AS first_start,
                        CAST(MAX(CASE WHEN conference THEN 1 ELSE 0 END) AS BIGINT) AS conference,
                        CAST(COUNT(*) AS BIGINT) AS streams,
                        CAST(SUM(CASE WHEN classification = 1 THEN 1 ELSE 0 END) AS BIGINT) AS poor
                 FROM stream WHERE {where_sql}
                 GROUP BY start_ticks, {reference} ORDER BY poor DESC, first_start DESC LIMIT ?
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
}

/// Places by `file` every subnet of the tenant's profiles that its mapping lacks, and drops the
/// mappings of other files.
async fn map_subnets<B: SqlBackend>(
    backend: &B,
    tenant_key: i64,
    file: i64,
    buildings: Option<&BuildingMap>,
) -> StoreResult<()> {
    let dialect = B::DIALECT;
    let unmapped = Statement::new(
        dialect,
        "SELECT DISTINCT p.subnet FROM endpoint_profile p
         WHERE p.tenant_key = ? AND p.subnet IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM subnet_place m
             WHERE m.tenant_key = p.tenant_key AND m.building_file = ? AND m.subnet = p.subnet)",
        vec![SqlValue::Integer(tenant_key), SqlValue::Integer(file)],
    );
    let subnets: Vec<String> = backend
        .fetch_all(unmapped)
        .await?
        .iter()
        .map(|row| B::text_at(row, 0))
        .collect::<Result<_, _>>()?;
    let mut writes = vec![Statement::new(
        dialect,
        "DELETE FROM subnet_place WHERE tenant_key = ? AND building_file <> ?",
        vec![SqlValue::Integer(tenant_key), SqlValue::Integer(file)],
    )];
    let rows: Vec<Vec<SqlValue>> = subnets
        .iter()
        .map(|subnet| {
            vec![
                SqlValue::Integer(tenant_key),
                SqlValue::Integer(file),
                SqlValue::Text(subnet.clone()),
                SqlValue::Integer(InsideCorp::of_subnet(buildings, subnet).code()),
            ]
        })
        .collect();
    let columns = ["tenant_key", "building_file", "subnet", "inside"];
    let tail = " ON CONFLICT (tenant_key, building_file, subnet) DO NOTHING";
    writes.extend(insert_bound_rows(dialect, "subnet_place", &columns, &rows, tail));
    backend.write_all(writes).await?;
    Ok(())
}

/// Held while days are classified into the place rollup.
static CLASSIFYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One transaction classifying a day into the place rollup by `file`'s mapping. On PostgreSQL
/// it first locks `place_day`, which writers of rows mark after everything else they write, so
/// a write either is in the day's rows read here or marks the day stale after this commits. A
/// subnet the mapping lacked (a profile added since `map_subnets`) leaves the day stale.
fn classify_day(dialect: Dialect, tenant_key: i64, day: i64, file: i64) -> Vec<Statement> {
    let day_keys = || vec![SqlValue::Integer(tenant_key), SqlValue::Integer(day)];
    let mut statements = Vec::new();
    if dialect == Dialect::Postgres {
        statements.push(Statement::new(
            dialect,
            "LOCK TABLE place_day IN EXCLUSIVE MODE",
            Vec::new(),
        ));
    }
    statements.push(Statement::new(
        dialect,
        "DELETE FROM stream_place_day WHERE tenant_key = ? AND start_ticks = ?",
        day_keys(),
    ));
    let mut insert_values = vec![
        SqlValue::Integer(tenant_key),
        SqlValue::Integer(day),
        SqlValue::Integer(day + TICKS_PER_DAY),
    ];
    insert_values.extend([SqlValue::Integer(file), SqlValue::Integer(file)]);
    statements.push(Statement::new(
        dialect,
        &rollup_change(
            &PLACE_ROLLUP,
            PLACE_ROLLUP.table,
            &day_start("s.start_ticks"),
            None,
            1,
            &ChangedRows::Where("tenant_key = ? AND start_ticks >= ? AND start_ticks < ?")
                .select(dialect, PLACE_ROLLUP.fact),
        ),
        insert_values,
    ));
    let mut mark = day_keys();
    mark.push(SqlValue::Integer(file));
    statements.push(Statement::new(
        dialect,
        "INSERT INTO place_day (tenant_key, start_ticks, stale, building_file) VALUES (?, ?, 0, ?)
         ON CONFLICT (tenant_key, start_ticks) DO UPDATE SET stale = 0, building_file = excluded.building_file",
        mark,
    ));
    let mut unmapped = day_keys();
    unmapped.extend(day_keys());
    statements.push(Statement::new(
        dialect,
        &format!(
            "UPDATE place_day SET stale = 1 WHERE tenant_key = ? AND start_ticks = ? AND EXISTS (
                 SELECT 1 FROM stream_place_day
                 WHERE tenant_key = ? AND start_ticks = ? AND (first_inside = {UNMAPPED} OR second_inside = {UNMAPPED}))"
        ),
        unmapped,
    ));
    statements
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

/// The store fact whose presence says that the rollups must be summed from the rows again,
/// from the day (in ticks) it holds.
pub(crate) const ROLLUPS_PENDING: &str = "quality_rollups_pending";
/// The store fact of a weekly rollup table added to a store: its rows are to be summed from the
/// daily table's.
const WEEKS_PENDING: &str = "quality_weekly_rollups_pending";

#[cfg(test)]
mod tests {
    use super::*;

    fn query(fact: Fact, group_by: Vec<Column>, conditions: Vec<Condition>) -> GroupQuery {
        GroupQuery {
            fact,
            from: Timestamp::from_ticks(20_000 * TICKS_PER_DAY),
            to: Timestamp::from_ticks(20_030 * TICKS_PER_DAY),
            group_by,
            conditions,
            default_filters: true,
            measures: Measures::All,
        }
    }

    fn chosen(query: &GroupQuery) -> Option<(&'static str, Option<Side>)> {
        rollup_for(query).map(|read| (read.rollup.table, read.side))
    }

    const fn endpoint(side: Side, column: EndpointColumn) -> Column {
        Column::Endpoint(side, column)
    }

    #[test]
    fn a_query_is_answered_by_the_first_rollup_that_keeps_what_it_names() {
        use EndpointColumn::*;
        use Side::*;
        let cases = [
            (vec![Column::Day, Column::MediaType], Some(("stream_day", None))),
            (
                vec![endpoint(First, ConnectionType), endpoint(Second, ConnectionType)],
                Some(("stream_day", None)),
            ),
            (vec![endpoint(Second, ConnectionType)], Some(("stream_day", None))),
            (
                vec![endpoint(Second, ProductFamily), endpoint(Second, Version)],
                Some(("stream_client_day", Some(Second))),
            ),
            (
                vec![endpoint(First, WifiBand), Column::Conference],
                Some(("stream_client_day", Some(First))),
            ),
            (
                vec![endpoint(First, Server), endpoint(First, Subnet)],
                Some(("stream_network_day", Some(First))),
            ),
            // Both sides' subnets, a version with a subnet, users, direction: the rows.
            (vec![endpoint(First, Subnet), endpoint(Second, Subnet)], None),
            (vec![endpoint(First, Subnet), endpoint(First, Version)], None),
            (vec![endpoint(First, UserId)], None),
            (vec![Column::FirstToSecond], None),
            // Inside flags: the place rollup, or nothing (the rows have none).
            (
                vec![
                    Column::Inside(First),
                    Column::Inside(Second),
                    endpoint(First, ConnectionType),
                ],
                Some(("stream_place_day", None)),
            ),
            (vec![Column::Inside(First), endpoint(First, Subnet)], None),
        ];
        for (group_by, expected) in cases {
            assert_eq!(
                chosen(&query(Fact::Streams, group_by.clone(), Vec::new())),
                expected,
                "{group_by:?}"
            );
        }
        // A condition counts as a named column; one on the other side rules a side's rollup out.
        let subnet_of_first = Condition {
            column: endpoint(First, Subnet),
            values: vec![Value::Text("10.0.0.0".into())],
            negated: false,
        };
        let by_version = |side| vec![endpoint(side, Version)];
        assert_eq!(
            chosen(&query(Fact::Streams, by_version(First), vec![subnet_of_first.clone()])),
            None
        );
        assert_eq!(
            chosen(&query(Fact::Streams, vec![Column::Day], vec![subnet_of_first.clone()])),
            Some(("stream_network_day", Some(First)))
        );
        assert_eq!(
            chosen(&query(Fact::Streams, by_version(Second), vec![subnet_of_first])),
            None
        );
        // Legs have one rollup; a part of a day is read from the rows.
        assert_eq!(
            chosen(&query(Fact::Legs, vec![Column::Conference], Vec::new())),
            Some(("call_leg_day", None))
        );
        assert_eq!(
            chosen(&query(Fact::Legs, vec![endpoint(First, Version)], Vec::new())),
            None
        );
        let mut part_of_a_day = query(Fact::Streams, vec![Column::MediaType], Vec::new());
        part_of_a_day.to = Timestamp::from_ticks(part_of_a_day.to.ticks() - 1);
        assert_eq!(chosen(&part_of_a_day), None);
    }

    #[test]
    fn a_per_side_rollup_is_changed_once_for_each_side() {
        let statements = daily_change(Dialect::Sqlite, Fact::Streams, 1, &ChangedRows::Where("tenant_key = ?"));
        let count = |table: &str| {
            statements
                .iter()
                .filter(|sql| sql.contains(&format!("INTO {table} ")))
                .count()
        };
        assert_eq!(
            (
                count("stream_day"),
                count("stream_client_day"),
                count("stream_network_day"),
                count("stream_network_week")
            ),
            (1, 2, 2, 2)
        );
        assert_eq!(
            daily_change(Dialect::Sqlite, Fact::Legs, -1, &ChangedRows::Where("tenant_key = ?")).len(),
            1
        );
    }

    /// Days since 1970-01-01 of a date.
    fn day(year: i32, month: time::Month, day: u8) -> i64 {
        let date = time::Date::from_calendar_date(year, month, day).unwrap();
        i64::from(date.to_julian_day()) - 2_440_588
    }

    #[test]
    fn a_week_row_is_seven_days_from_1970_cut_at_the_month() {
        use time::Month::*;
        // 1970-01-01 starts a week; 2025-12-04 is 2,891 weeks later, a Thursday too.
        assert_eq!(week_of(0), Some((0, 7)));
        assert_eq!(
            week_of(day(2025, December, 6)),
            Some((day(2025, December, 4), day(2025, December, 11)))
        );
        // The week of Thursday 2025-12-25 runs into January: cut at both sides of the month.
        assert_eq!(
            week_of(day(2025, December, 31)),
            Some((day(2025, December, 25), day(2026, January, 1)))
        );
        assert_eq!(
            week_of(day(2026, January, 1)),
            Some((day(2026, January, 1), day(2026, January, 8)))
        );
        // 2024-02-29 (a leap year): the week of Thursday 2024-02-29 is cut at March.
        assert_eq!(
            week_of(day(2024, February, 29)),
            Some((day(2024, February, 29), day(2024, March, 1)))
        );
        assert_eq!(
            week_of(day(2024, March, 2)),
            Some((day(2024, March, 1), day(2024, March, 7)))
        );
    }

    #[test]
    fn a_range_is_read_from_its_whole_weeks_and_the_days_around_them() {
        use time::Month::*;
        // 2025-12-02 to 2026-01-01: weeks from Thursday 2025-12-04, the last cut at the month.
        let (from, to) = (day(2025, December, 2), day(2026, January, 1));
        assert_eq!(whole_weeks(from, to), Some((day(2025, December, 4), to)));
        // Six days hold no whole week unless they start one.
        assert_eq!(whole_weeks(day(2025, December, 5), day(2025, December, 11)), None);
        assert_eq!(
            whole_weeks(day(2025, December, 4), day(2025, December, 11)),
            Some((day(2025, December, 4), day(2025, December, 11)))
        );
        // A range across a month's end reads the cut weeks on both sides.
        assert_eq!(
            whole_weeks(day(2025, December, 20), day(2026, January, 12)),
            Some((day(2025, December, 25), day(2026, January, 8)))
        );

        let subnets = |from: i64, to: i64, group_by: Vec<Column>| {
            let mut query = query(Fact::Streams, group_by, Vec::new());
            query.from = Timestamp::from_ticks(from * TICKS_PER_DAY);
            query.to = Timestamp::from_ticks(to * TICKS_PER_DAY);
            let spans = rollup_for(&query).unwrap().spans(&query);
            spans
                .into_iter()
                .map(|(table, from, to)| (table, from.ticks() / TICKS_PER_DAY, to.ticks() / TICKS_PER_DAY))
                .collect::<Vec<_>>()
        };
        let by_subnet = vec![endpoint(Side::Second, EndpointColumn::Subnet)];
        assert_eq!(
            subnets(from, to, by_subnet.clone()),
            vec![
                ("stream_network_day", from, day(2025, December, 4)),
                ("stream_network_week", day(2025, December, 4), to),
            ]
        );
        // By day, the days.
        let mut by_day = by_subnet.clone();
        by_day.push(Column::Day);
        assert_eq!(subnets(from, to, by_day), vec![("stream_network_day", from, to)]);
        // A rollup without weeks reads its days.
        let by_version = vec![endpoint(Side::Second, EndpointColumn::Version)];
        assert_eq!(subnets(from, to, by_version), vec![("stream_client_day", from, to)]);
    }
}
