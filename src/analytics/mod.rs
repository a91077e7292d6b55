//! Call-quality analytics as CQD reports it: the dimensions a query groups and filters by, the
//! filter language, and the answers (`quality`, `reliability`, `rateMyCall`, worst places and
//! users, the calls behind a group). The store groups its stream and leg rows by stored columns;
//! this module asks it for what a query needs, maps subnets to places with the tenant's active
//! building file (so a new file applies to old data) and adds the groups up again.
//!
//! Never: HTTP or SQL text. `api/analytics.rs` parses the request into `Params` and answers the
//! JSON built here.

mod filter;

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value as Json};

pub(crate) use filter::{parse_filter, Clause, Operator};

use crate::clock::Timestamp;
use crate::quality::buildings::{Building, BuildingMap};
use crate::quality::{Classification, Condition as PoorCondition, MediaType};
use crate::store::analytics::rows_of_stored;
use crate::store::analytics::{
    rollup_answers, AnalyticsStore, Column, Condition, EndpointColumn, Fact, GroupQuery, GroupRow, InsideCorp,
    Measures, Side, Value, TICKS_PER_DAY,
};
use crate::store::codec::PartKind;
use crate::store::{all_children, Store, StoreError, TenantId};

/// How often `serve` classifies the days written since into the place rollup.
pub const PLACE_CLASSIFYING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// A place a subnet maps to through the building file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    Building,
    NetworkName,
    City,
    Country,
    Region,
    Inside,
    Vpn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum EndpointDimension {
    Stored(EndpointColumn),
    Place(Place),
}

/// CQD's pairs of First and Second values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Pair {
    InsideOutside,
    WiredWifi,
    ClientServer,
}

/// What a query can group and filter by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dimension {
    Day,
    Month,
    MediaType,
    CallType,
    Pstn,
    Direction,
    FirstIsCaller,
    Endpoint(Side, EndpointDimension),
    Pair(Pair),
}

const ENDPOINT_NAMES: [(&str, EndpointDimension); 15] = [
    (
        "ConnectionType",
        EndpointDimension::Stored(EndpointColumn::ConnectionType),
    ),
    ("Subnet", EndpointDimension::Stored(EndpointColumn::Subnet)),
    ("WifiBand", EndpointDimension::Stored(EndpointColumn::WifiBand)),
    (
        "ProductFamily",
        EndpointDimension::Stored(EndpointColumn::ProductFamily),
    ),
    ("Platform", EndpointDimension::Stored(EndpointColumn::Platform)),
    ("Version", EndpointDimension::Stored(EndpointColumn::Version)),
    ("ServiceRole", EndpointDimension::Stored(EndpointColumn::ServiceRole)),
    ("Building", EndpointDimension::Place(Place::Building)),
    ("NetworkName", EndpointDimension::Place(Place::NetworkName)),
    ("City", EndpointDimension::Place(Place::City)),
    ("Country", EndpointDimension::Place(Place::Country)),
    ("Region", EndpointDimension::Place(Place::Region)),
    ("Inside", EndpointDimension::Place(Place::Inside)),
    ("Vpn", EndpointDimension::Place(Place::Vpn)),
    ("IsServer", EndpointDimension::Stored(EndpointColumn::Server)),
];

const PLAIN_NAMES: [(&str, Dimension); 10] = [
    ("day", Dimension::Day),
    ("month", Dimension::Month),
    ("mediaType", Dimension::MediaType),
    ("callType", Dimension::CallType),
    ("pstn", Dimension::Pstn),
    ("direction", Dimension::Direction),
    ("firstIsCaller", Dimension::FirstIsCaller),
    ("insideOutside", Dimension::Pair(Pair::InsideOutside)),
    ("wiredWifi", Dimension::Pair(Pair::WiredWifi)),
    ("clientServer", Dimension::Pair(Pair::ClientServer)),
];

impl Dimension {
    /// A dimension by its name in `groupBy` and `filter` (case-insensitive).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        if let Some((_, dimension)) = PLAIN_NAMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) {
            return Some(*dimension);
        }
        let lower = name.to_ascii_lowercase();
        let (side, rest) = if let Some(rest) = lower.strip_prefix("first") {
            (Side::First, rest)
        } else {
            (Side::Second, lower.strip_prefix("second")?)
        };
        ENDPOINT_NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(rest))
            .map(|(_, dimension)| Dimension::Endpoint(side, *dimension))
    }

    pub(crate) fn name(self) -> String {
        if let Some((name, _)) = PLAIN_NAMES.iter().find(|(_, known)| *known == self) {
            return (*name).to_owned();
        }
        let Dimension::Endpoint(side, dimension) = self else {
            unreachable!("every dimension but an endpoint's is named in PLAIN_NAMES")
        };
        let suffix = ENDPOINT_NAMES
            .iter()
            .find(|(_, known)| *known == dimension)
            .map_or("", |(name, _)| name);
        format!("{}{suffix}", side_name(side))
    }

    /// Every dimension's name, for error messages.
    pub(crate) fn all_names() -> String {
        let mut names: Vec<String> = PLAIN_NAMES.iter().map(|(name, _)| (*name).to_owned()).collect();
        names.push(format!(
            "first… or second… followed by one of {}",
            ENDPOINT_NAMES
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        names.join(", ")
    }

    /// The stored columns its value is made from.
    fn columns(self) -> Vec<Column> {
        let both = |column| {
            vec![
                Column::Endpoint(Side::First, column),
                Column::Endpoint(Side::Second, column),
            ]
        };
        match self {
            Dimension::Day | Dimension::Month => vec![Column::Day],
            Dimension::MediaType => vec![Column::MediaType],
            Dimension::CallType => vec![Column::Conference],
            Dimension::Pstn => vec![Column::Pstn],
            Dimension::Direction => vec![Column::FirstToSecond],
            Dimension::FirstIsCaller => vec![Column::FirstIsCaller],
            Dimension::Endpoint(side, EndpointDimension::Stored(column)) => vec![Column::Endpoint(side, column)],
            Dimension::Endpoint(side, EndpointDimension::Place(_)) => {
                vec![Column::Endpoint(side, EndpointColumn::Subnet)]
            }
            Dimension::Pair(Pair::InsideOutside) => both(EndpointColumn::Subnet),
            Dimension::Pair(Pair::WiredWifi) => both(EndpointColumn::ConnectionType),
            Dimension::Pair(Pair::ClientServer) => both(EndpointColumn::Server),
        }
    }

    /// The columns of the place rollup its value is made from: inside flags instead of subnets.
    fn place_columns(self) -> Vec<Column> {
        match self {
            Dimension::Pair(Pair::InsideOutside) => vec![Column::Inside(Side::First), Column::Inside(Side::Second)],
            Dimension::Endpoint(side, EndpointDimension::Place(Place::Inside)) => vec![Column::Inside(side)],
            other => other.columns(),
        }
    }

    /// Its value from the place rollup's values of `place_columns()`.
    fn place_value(self, keys: &[Value], places: &Places) -> Json {
        let inside = |value: &Value| match value {
            Value::Integer(code) => InsideCorp::of_code(*code).unwrap_or(InsideCorp::Unknown),
            _ => InsideCorp::Unknown,
        };
        match self {
            Dimension::Pair(Pair::InsideOutside) => Json::from(format!(
                "{}:{}",
                inside_name(inside(&keys[0])),
                inside_name(inside(&keys[1]))
            )),
            Dimension::Endpoint(_, EndpointDimension::Place(Place::Inside)) => match inside(&keys[0]) {
                InsideCorp::Inside => Json::Bool(true),
                InsideCorp::Outside => Json::Bool(false),
                InsideCorp::Unknown => Json::Null,
            },
            other => other.value(keys, places),
        }
    }

    /// Whether `fact`'s rows have what it is made from.
    pub(crate) fn available_on(self, fact: Fact) -> bool {
        self.columns().iter().all(|column| column.on(fact))
    }

    fn needs_places(self) -> bool {
        matches!(
            self,
            Dimension::Endpoint(_, EndpointDimension::Place(_)) | Dimension::Pair(Pair::InsideOutside)
        )
    }

    /// Its value from the stored values of `columns()`.
    fn value(self, keys: &[Value], places: &Places) -> Json {
        let text = |value: &Value| match value {
            Value::Text(text) => Json::from(text.as_str()),
            Value::Integer(number) => Json::from(*number),
            Value::Bool(flag) => Json::from(*flag),
            Value::Null => Json::Null,
        };
        let flag = |value: &Value| match value {
            Value::Bool(flag) => Some(*flag),
            Value::Integer(number) => Some(*number != 0),
            _ => None,
        };
        match self {
            Dimension::Day => match &keys[0] {
                Value::Integer(day) => Json::from(day_name(*day)),
                _ => Json::Null,
            },
            Dimension::Month => match &keys[0] {
                Value::Integer(day) => {
                    let day = day_name(*day);
                    Json::from(day.get(..7).unwrap_or(&day).to_owned())
                }
                _ => Json::Null,
            },
            Dimension::MediaType => match &keys[0] {
                Value::Integer(code) => media_type_of(*code).map_or(Json::Null, |media| Json::from(media.as_str())),
                _ => Json::Null,
            },
            Dimension::CallType => flag(&keys[0]).map_or(Json::Null, |conference| {
                Json::from(if conference { "conference" } else { "peerToPeer" })
            }),
            Dimension::Pstn | Dimension::FirstIsCaller => flag(&keys[0]).map_or(Json::Null, Json::from),
            Dimension::Direction => flag(&keys[0]).map_or(Json::Null, |forward| {
                Json::from(if forward { "firstToSecond" } else { "secondToFirst" })
            }),
            Dimension::Endpoint(_, EndpointDimension::Stored(EndpointColumn::Server)) => {
                flag(&keys[0]).map_or(Json::Null, Json::from)
            }
            Dimension::Endpoint(_, EndpointDimension::Stored(_)) => text(&keys[0]),
            Dimension::Endpoint(_, EndpointDimension::Place(place)) => places.value(&keys[0], place),
            Dimension::Pair(Pair::InsideOutside) => {
                let side = |value: &Value| {
                    inside_name(match places.value(value, Place::Inside) {
                        Json::Bool(true) => InsideCorp::Inside,
                        Json::Bool(false) => InsideCorp::Outside,
                        _ => InsideCorp::Unknown,
                    })
                };
                Json::from(format!("{}:{}", side(&keys[0]), side(&keys[1])))
            }
            Dimension::Pair(Pair::WiredWifi) => {
                let side = |value: &Value| match value {
                    Value::Text(text) => text.clone(),
                    _ => "unknown".to_owned(),
                };
                Json::from(format!("{}:{}", side(&keys[0]), side(&keys[1])))
            }
            Dimension::Pair(Pair::ClientServer) => {
                let side = |value: &Value| if flag(value) == Some(true) { "server" } else { "client" };
                Json::from(format!("{}:{}", side(&keys[0]), side(&keys[1])))
            }
        }
    }
}

/// A side's part of an `insideOutside` value.
fn inside_name(inside: InsideCorp) -> &'static str {
    match inside {
        InsideCorp::Inside => "inside",
        InsideCorp::Outside => "outside",
        InsideCorp::Unknown => "unknown",
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::First => "first",
        Side::Second => "second",
    }
}

fn media_type_of(code: i64) -> Option<MediaType> {
    [MediaType::Audio, MediaType::Video, MediaType::Vbss]
        .into_iter()
        .find(|media| *media as i64 == code)
}

/// `2026-11-05` for a day number since 1970-01-01.
fn day_name(day: i64) -> String {
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    i32::try_from(day + UNIX_EPOCH_JULIAN_DAY)
        .ok()
        .and_then(|julian| time::Date::from_julian_day(julian).ok())
        .map_or_else(|| day.to_string(), |date| date.to_string())
}

/// The day number of `2026-11-05`.
fn day_number(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    Some(i64::from(date.to_julian_day()) - 2_440_588)
}

/// The day numbers of the month `2026-11`.
fn month_days(text: &str) -> Option<Vec<i64>> {
    let first = day_number(&format!("{text}-01"))?;
    let date = time::Date::from_julian_day(i32::try_from(first + 2_440_588).ok()?).ok()?;
    let length = i64::from(date.month().length(date.year()));
    Some((first..first + length).collect())
}

/// Subnets mapped to places by the tenant's building file, looked up once each.
pub(crate) struct Places {
    map: Option<BuildingMap>,
    /// The file's upload time in ticks, which names it in the place rollup; 0 without a file.
    file: i64,
    found: std::sync::Mutex<HashMap<String, Option<Building>>>,
}

impl Places {
    /// By the building file uploaded at the given time, or none.
    pub(crate) fn new(file: Option<(Timestamp, BuildingMap)>) -> Self {
        let (file, map) = match file {
            Some((uploaded, map)) => (uploaded.ticks(), Some(map)),
            None => (0, None),
        };
        Self {
            map,
            file,
            found: Default::default(),
        }
    }

    fn building(&self, subnet: &str) -> Option<Building> {
        let map = self.map.as_ref()?;
        let mut found = self.found.lock().expect("places cache poisoned");
        found
            .entry(subnet.to_owned())
            .or_insert_with(|| map.lookup(subnet).cloned())
            .clone()
    }

    /// A place of a stored subnet: null when the subnet is unknown or in no building.
    fn value(&self, subnet: &Value, place: Place) -> Json {
        let Value::Text(subnet) = subnet else {
            return Json::Null;
        };
        let Some(building) = self.building(subnet) else {
            return Json::Null;
        };
        match place {
            Place::Building => Json::from(building.building_name),
            Place::NetworkName => Json::from(building.network_name),
            Place::City => Json::from(building.city),
            Place::Country => Json::from(building.country),
            Place::Region => Json::from(building.region),
            Place::Inside => Json::from(building.inside_corp),
            Place::Vpn => Json::from(building.vpn),
        }
    }
}

/// The places of the tenant's active building file (none when it has uploaded none).
pub(crate) async fn places_of(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<Places> {
    let Some(file) = store.active_building_file(tenant).await? else {
        return Ok(Places::new(None));
    };
    let parsed = crate::quality::buildings::parse(&file.body)
        .map_err(|problems| anyhow::anyhow!("the stored building file does not parse: {problems:?}"))?;
    Ok(Places::new(Some((file.uploaded, BuildingMap::new(parsed)))))
}

/// Classifies into the place rollup every tenant's days written (or given a new building file)
/// since they were classified, every `interval` until `shutdown` turns true, so that a query by
/// inside and outside finds them ready. A failure is logged and tried again at the next
/// interval; queries classify what they need themselves meanwhile.
pub async fn classify_places(
    store: std::sync::Arc<dyn Store>,
    interval: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every_day = (
        Timestamp::from_ticks(0),
        Timestamp::from_ticks(i64::MAX / TICKS_PER_DAY * TICKS_PER_DAY),
    );
    loop {
        let classified = async {
            for tenant in store.tenants_with_unclassified_days().await? {
                let places = places_of(store.as_ref(), &tenant).await?;
                store
                    .classified_days(&tenant, every_day.0, every_day.1, places.file, places.map.as_ref())
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        };
        if let Err(error) = classified.await {
            tracing::warn!(%error, "classifying days into the place rollup failed; retrying at the next interval");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
    }
}

/// A parsed analytics request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Params {
    pub(crate) from: Timestamp,
    pub(crate) to: Timestamp,
    pub(crate) group_by: Vec<Dimension>,
    pub(crate) filter: Vec<Clause>,
    pub(crate) default_filters: bool,
}

/// Why a request cannot be answered: a parameter and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParamError {
    pub(crate) parameter: &'static str,
    pub(crate) message: String,
}

/// Why an analytics answer could not be given: a parameter at fault, or the store.
#[derive(Debug)]
pub(crate) enum AnalyticsError {
    Param(ParamError),
    Store(StoreError),
}

impl From<ParamError> for AnalyticsError {
    fn from(error: ParamError) -> Self {
        AnalyticsError::Param(error)
    }
}

impl From<StoreError> for AnalyticsError {
    fn from(error: StoreError) -> Self {
        AnalyticsError::Store(error)
    }
}

type Answer<T> = Result<T, AnalyticsError>;

impl ParamError {
    pub(crate) fn new(parameter: &'static str, message: impl Into<String>) -> Self {
        Self {
            parameter,
            message: message.into(),
        }
    }
}

/// The store conditions of a filter's clauses. Clauses on places become conditions on subnets
/// (those of the range whose place matches), so the store can filter every row itself.
async fn conditions(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    fact: Fact,
    places: &Places,
) -> Answer<Vec<Condition>> {
    let mut conditions = Vec::new();
    let mut subnets: Option<Vec<String>> = None;
    for clause in &params.filter {
        if !clause.dimension.available_on(fact) {
            return Err(ParamError::new(
                "filter",
                format!("'{}' is not known for this measure", clause.dimension.name()),
            )
            .into());
        }
        let needs_subnets = clause.dimension.needs_places();
        if needs_subnets && subnets.is_none() {
            subnets = Some(store.distinct_values(tenant, EndpointColumn::Subnet).await?);
        }
        conditions.extend(clause_conditions(
            clause,
            places,
            subnets.as_deref().unwrap_or_default(),
        )?);
    }
    Ok(conditions)
}

fn clause_conditions(clause: &Clause, places: &Places, subnets: &[String]) -> Result<Vec<Condition>, ParamError> {
    let bad = |what: &str| {
        ParamError::new(
            "filter",
            format!(
                "'{}' takes {what}; {} is not",
                clause.dimension.name(),
                clause
                    .values
                    .iter()
                    .map(|value| value.as_deref().map_or("null".to_owned(), |text| format!("'{text}'")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    let negated = clause.operator == Operator::Ne;
    let each = |parse: &dyn Fn(&str) -> Option<Vec<Value>>| -> Result<Vec<Value>, ()> {
        let mut values = Vec::new();
        for text in &clause.values {
            values.extend(parse(text.as_deref().ok_or(())?).ok_or(())?);
        }
        Ok(values)
    };
    let flag = |text: &str| match text {
        "true" => Some(vec![Value::Bool(true)]),
        "false" => Some(vec![Value::Bool(false)]),
        _ => None,
    };
    let single = |column: Column, values: Vec<Value>| {
        vec![Condition {
            column,
            values,
            negated,
        }]
    };
    Ok(match clause.dimension {
        Dimension::Day => single(
            Column::Day,
            each(&|text| day_number(text).map(|day| vec![Value::Integer(day)]))
                .map_err(|_| bad("dates (2026-11-05)"))?,
        ),
        Dimension::Month => single(
            Column::Day,
            each(&|text| month_days(text).map(|days| days.into_iter().map(Value::Integer).collect()))
                .map_err(|_| bad("months (2026-11)"))?,
        ),
        Dimension::MediaType => single(
            Column::MediaType,
            each(&|text| {
                [MediaType::Audio, MediaType::Video, MediaType::Vbss]
                    .into_iter()
                    .find(|media| media.as_str() == text)
                    .map(|media| vec![Value::Integer(media as i64)])
            })
            .map_err(|_| bad("audio, video or vbss"))?,
        ),
        Dimension::CallType => single(
            Column::Conference,
            each(&|text| match text {
                "conference" => Some(vec![Value::Bool(true)]),
                "peerToPeer" => Some(vec![Value::Bool(false)]),
                _ => None,
            })
            .map_err(|_| bad("conference or peerToPeer"))?,
        ),
        Dimension::Pstn => single(Column::Pstn, each(&flag).map_err(|_| bad("true or false"))?),
        Dimension::FirstIsCaller => single(Column::FirstIsCaller, each(&flag).map_err(|_| bad("true or false"))?),
        Dimension::Direction => single(
            Column::FirstToSecond,
            each(&|text| match text {
                "firstToSecond" => Some(vec![Value::Bool(true)]),
                "secondToFirst" => Some(vec![Value::Bool(false)]),
                _ => None,
            })
            .map_err(|_| bad("firstToSecond or secondToFirst"))?,
        ),
        Dimension::Endpoint(side, EndpointDimension::Stored(EndpointColumn::Server)) => single(
            Column::Endpoint(side, EndpointColumn::Server),
            each(&flag).map_err(|_| bad("true or false"))?,
        ),
        Dimension::Endpoint(side, EndpointDimension::Stored(column)) => single(
            Column::Endpoint(side, column),
            clause
                .values
                .iter()
                .map(|text| text.clone().map_or(Value::Null, Value::Text))
                .collect(),
        ),
        Dimension::Endpoint(side, EndpointDimension::Place(place)) => {
            let wanted: Vec<Json> = clause
                .values
                .iter()
                .map(|text| place_literal(place, text.as_deref()))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("true or false"))?;
            vec![place_condition(side, place, &wanted, negated, places, subnets)]
        }
        Dimension::Pair(pair) => {
            let [Some(text)] = &clause.values[..] else {
                return Err(ParamError::new(
                    "filter",
                    format!(
                        "'{}' takes eq and one value: filter each side for more",
                        clause.dimension.name()
                    ),
                ));
            };
            if negated {
                return Err(ParamError::new(
                    "filter",
                    format!("'{}' takes eq only: filter each side for more", clause.dimension.name()),
                ));
            }
            let Some((first, second)) = text.split_once(':') else {
                return Err(bad("a pair such as 'inside:outside'"));
            };
            let mut both = Vec::new();
            for (side, value) in [(Side::First, first), (Side::Second, second)] {
                both.push(match pair {
                    Pair::InsideOutside => {
                        let wanted = match value {
                            "inside" => Json::Bool(true),
                            "outside" => Json::Bool(false),
                            "unknown" => Json::Null,
                            _ => return Err(bad("inside, outside or unknown on each side")),
                        };
                        place_condition(side, Place::Inside, &[wanted], false, places, subnets)
                    }
                    Pair::WiredWifi => Condition {
                        column: Column::Endpoint(side, EndpointColumn::ConnectionType),
                        values: vec![match value {
                            "unknown" => Value::Null,
                            other => Value::Text(other.to_owned()),
                        }],
                        negated: false,
                    },
                    Pair::ClientServer => Condition {
                        column: Column::Endpoint(side, EndpointColumn::Server),
                        values: vec![match value {
                            "server" => Value::Bool(true),
                            "client" => Value::Bool(false),
                            _ => return Err(bad("client or server on each side")),
                        }],
                        negated: false,
                    },
                });
                if pair == Pair::WiredWifi && value == "unknown" {
                    // A stored `unknown` and a missing network are both unknown.
                    if let Some(last) = both.last_mut() {
                        last.values.push(Value::Text("unknown".to_owned()));
                    }
                }
            }
            both
        }
    })
}

fn place_literal(place: Place, text: Option<&str>) -> Option<Json> {
    let Some(text) = text else {
        return Some(Json::Null);
    };
    match place {
        Place::Inside | Place::Vpn => match text {
            "true" => Some(Json::Bool(true)),
            "false" => Some(Json::Bool(false)),
            _ => None,
        },
        _ => Some(Json::from(text)),
    }
}

/// The subnets (of those stored in the range) whose place is among `wanted` (or not, when
/// `negated`), with a missing subnet when no place matches that too.
fn place_condition(
    side: Side,
    place: Place,
    wanted: &[Json],
    negated: bool,
    places: &Places,
    subnets: &[String],
) -> Condition {
    let matches = |value: &Json| wanted.contains(value) != negated;
    let mut values: Vec<Value> = subnets
        .iter()
        .filter(|subnet| matches(&places.value(&Value::Text((*subnet).clone()), place)))
        .map(|subnet| Value::Text(subnet.clone()))
        .collect();
    if matches(&Json::Null) {
        values.push(Value::Null);
    }
    Condition {
        column: Column::Endpoint(side, EndpointColumn::Subnet),
        values,
        negated: false,
    }
}

/// The groups of `fact` for `params` (and `extra` dimensions first, as `mediaType` is for
/// streams), each as its keys by name and its measures, in key order.
async fn grouped(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    fact: Fact,
    dimensions: &[Dimension],
    places: &Places,
) -> Answer<Vec<(Vec<Json>, Vec<i64>)>> {
    for dimension in dimensions {
        if !dimension.available_on(fact) {
            return Err(ParamError::new(
                "groupBy",
                format!("'{}' is not known for this measure", dimension.name()),
            )
            .into());
        }
    }
    let conditions = conditions(store, tenant, params, fact, places).await?;
    let by_rows = |from: Timestamp, to: Timestamp| {
        let (group_by, spans) = columns_of(dimensions, Dimension::columns);
        let query = GroupQuery {
            fact,
            from,
            to,
            group_by,
            conditions: conditions.clone(),
            default_filters: params.default_filters,
            measures: Measures::All,
        };
        async move {
            let rows = store.group(tenant, &query).await?;
            Ok::<_, AnalyticsError>(valued(rows, &spans, |index, keys| {
                dimensions[index].value(keys, places)
            }))
        }
    };
    let (place_columns, place_spans) = columns_of(dimensions, Dimension::place_columns);
    let by_place = GroupQuery {
        fact,
        from: params.from,
        to: params.to,
        group_by: place_columns,
        conditions: conditions.clone(),
        default_filters: params.default_filters,
        measures: Measures::All,
    };
    let names_inside = by_place
        .group_by
        .iter()
        .any(|column| matches!(column, Column::Inside(_)));
    if !names_inside || !rollup_answers(&by_place) {
        return Ok(merge(by_rows(params.from, params.to).await?));
    }
    // Inside and outside over whole days: the days the place rollup holds as of the active
    // building file from it, any other day with streams (written a moment ago) from its rows.
    let days = store
        .classified_days(tenant, params.from, params.to, places.file, places.map.as_ref())
        .await?;
    let mut groups = Vec::new();
    if !days.classified.is_empty() {
        let mut query = by_place;
        query.conditions.push(Condition {
            column: Column::Day,
            values: days.classified.iter().map(|day| Value::Integer(*day)).collect(),
            negated: false,
        });
        let rows = store.group(tenant, &query).await?;
        groups.extend(valued(rows, &place_spans, |index, keys| {
            dimensions[index].place_value(keys, places)
        }));
    }
    for day in days.others {
        let from = Timestamp::from_ticks(day * TICKS_PER_DAY);
        let to = Timestamp::from_ticks((day + 1) * TICKS_PER_DAY);
        groups.extend(by_rows(from, to).await?);
    }
    Ok(merge(groups))
}

/// The columns a store query groups by for `dimensions`, and where each dimension's are.
fn columns_of(
    dimensions: &[Dimension],
    columns: fn(Dimension) -> Vec<Column>,
) -> (Vec<Column>, Vec<std::ops::Range<usize>>) {
    let mut all: Vec<Column> = Vec::new();
    let spans = dimensions
        .iter()
        .map(|dimension| {
            let start = all.len();
            all.extend(columns(*dimension));
            start..all.len()
        })
        .collect();
    (all, spans)
}

/// Each group's dimension values (`value` of a dimension's index and its keys) and measures.
fn valued(
    rows: Vec<GroupRow>,
    spans: &[std::ops::Range<usize>],
    value: impl Fn(usize, &[Value]) -> Json,
) -> Vec<(Vec<Json>, Vec<i64>)> {
    rows.into_iter()
        .map(|row| {
            let keys = spans
                .iter()
                .enumerate()
                .map(|(index, span)| value(index, &row.keys[span.clone()]))
                .collect();
            (keys, row.measures)
        })
        .collect()
}

/// Adds up groups whose dimension values are the same (two subnets of one building, the days
/// of a month), in the order of their keys.
fn merge(groups: Vec<(Vec<Json>, Vec<i64>)>) -> Vec<(Vec<Json>, Vec<i64>)> {
    let mut merged: BTreeMap<Vec<SortKey>, (Vec<Json>, Vec<i64>)> = BTreeMap::new();
    for (keys, measures) in groups {
        let sort: Vec<SortKey> = keys.iter().map(SortKey::of).collect();
        let entry = merged.entry(sort).or_insert_with(|| (keys, vec![0; measures.len()]));
        for (sum, measure) in entry.1.iter_mut().zip(&measures) {
            *sum += measure;
        }
    }
    merged.into_values().collect()
}

/// A JSON key in an order people expect: nulls last, then booleans, numbers, texts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Bool(bool),
    Number(i64),
    Text(String),
    Null,
}

impl SortKey {
    fn of(value: &Json) -> Self {
        match value {
            Json::Bool(flag) => SortKey::Bool(*flag),
            Json::Number(number) => SortKey::Number(number.as_i64().unwrap_or_default()),
            Json::String(text) => SortKey::Text(text.clone()),
            _ => SortKey::Null,
        }
    }
}

fn ratio(part: i64, whole: i64) -> Json {
    if whole == 0 {
        Json::Null
    } else {
        Json::from(part as f64 / whole as f64)
    }
}

fn keyed(dimensions: &[Dimension], keys: Vec<Json>) -> Map<String, Json> {
    dimensions
        .iter()
        .zip(keys)
        .map(|(dimension, key)| (dimension.name(), key))
        .collect()
}

const CONDITIONS: [PoorCondition; 8] = [
    PoorCondition::Jitter,
    PoorCondition::PacketLoss,
    PoorCondition::Degradation,
    PoorCondition::RoundTrip,
    PoorCondition::ConcealedRatio,
    PoorCondition::FrameLoss,
    PoorCondition::FrameRate,
    PoorCondition::PostFecPacketLoss,
];

/// Stream counts and poor ratios: one row per group, `mediaType` always among the keys.
pub(crate) async fn quality(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    places: &Places,
) -> Answer<Vec<Json>> {
    let mut dimensions = params.group_by.clone();
    if !dimensions.contains(&Dimension::MediaType) {
        dimensions.push(Dimension::MediaType);
    }
    let groups = grouped(store, tenant, params, Fact::Streams, &dimensions, places).await?;
    Ok(groups
        .into_iter()
        .map(|(keys, measures)| {
            let mut row = keyed(&dimensions, keys);
            let (streams, good, poor, unclassified) = (measures[0], measures[1], measures[2], measures[3]);
            row.insert("streams".into(), streams.into());
            row.insert("poorStreams".into(), poor.into());
            row.insert("goodStreams".into(), good.into());
            row.insert("unclassifiedStreams".into(), unclassified.into());
            row.insert("poorRatio".into(), ratio(poor, poor + good));
            let due: Map<String, Json> = CONDITIONS
                .iter()
                .map(|condition| (condition.as_str().to_owned(), measures[4 + *condition as usize].into()))
                .collect();
            row.insert("poorDueTo".into(), Json::Object(due));
            Json::Object(row)
        })
        .collect())
}

/// Legs that failed to set up or dropped.
pub(crate) async fn reliability(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    places: &Places,
) -> Answer<Vec<Json>> {
    let groups = grouped(store, tenant, params, Fact::Legs, &params.group_by, places).await?;
    Ok(groups
        .into_iter()
        .map(|(keys, measures)| {
            let mut row = keyed(&params.group_by, keys);
            let (sessions, setup_failed, dropped) = (measures[0], measures[1], measures[2]);
            row.insert("sessions".into(), sessions.into());
            row.insert("setupFailed".into(), setup_failed.into());
            row.insert("dropped".into(), dropped.into());
            row.insert("setupFailedRatio".into(), ratio(setup_failed, sessions));
            row.insert("droppedRatio".into(), ratio(dropped, sessions));
            Json::Object(row)
        })
        .collect())
}

/// Rate My Call: ratings from 1 to 5, poor at `quality::POOR_RATING_AT_MOST` or below.
pub(crate) async fn rate_my_call(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    places: &Places,
) -> Answer<Vec<Json>> {
    let groups = grouped(store, tenant, params, Fact::Legs, &params.group_by, places).await?;
    Ok(groups
        .into_iter()
        .filter(|(_, measures)| measures[3] > 0)
        .map(|(keys, measures)| {
            let mut row = keyed(&params.group_by, keys);
            let (ratings, sum, poor) = (measures[3], measures[4], measures[5]);
            row.insert("ratings".into(), ratings.into());
            row.insert(
                "averageRating".into(),
                if ratings == 0 {
                    Json::Null
                } else {
                    Json::from(sum as f64 / ratings as f64)
                },
            );
            row.insert("poorRatings".into(), poor.into());
            row.insert("poorRatingRatio".into(), ratio(poor, ratings));
            Json::Object(row)
        })
        .collect())
}

/// What the worst list ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Worst {
    Subnet,
    Building,
    User,
}

impl Worst {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "subnet" => Some(Worst::Subnet),
            "building" => Some(Worst::Building),
            "user" => Some(Worst::User),
            _ => None,
        }
    }
}

/// The client subnets, buildings or users with the highest poor ratio among those with at
/// least `min_streams` classified streams. A stream counts for each client side it has.
pub(crate) async fn worst(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    places: &Places,
    by: Worst,
    min_streams: i64,
    top: usize,
) -> Answer<Vec<Json>> {
    let conditions = conditions(store, tenant, params, Fact::Streams, places).await?;
    let grouped_by = match by {
        Worst::Subnet | Worst::Building => EndpointColumn::Subnet,
        Worst::User => EndpointColumn::UserId,
    };
    // A side at a time: grouping both sides together would make a group of nearly every pair.
    let mut totals: HashMap<String, [i64; 3]> = HashMap::new();
    for side in [Side::First, Side::Second] {
        let mut conditions = conditions.clone();
        conditions.push(Condition {
            column: Column::Endpoint(side, EndpointColumn::Server),
            values: vec![Value::Bool(false)],
            negated: false,
        });
        let query = GroupQuery {
            fact: Fact::Streams,
            from: params.from,
            to: params.to,
            group_by: vec![Column::Endpoint(side, grouped_by)],
            conditions,
            default_filters: params.default_filters,
            measures: Measures::Ranking,
        };
        for row in store.group(tenant, &query).await? {
            let Value::Text(key) = &row.keys[0] else { continue };
            let key = match by {
                Worst::Subnet | Worst::User => key.clone(),
                Worst::Building => match places.value(&row.keys[0], Place::Building) {
                    Json::String(building) => building,
                    _ => continue,
                },
            };
            let total = totals.entry(key).or_default();
            total[0] += row.measures[0];
            total[1] += row.measures[1];
            total[2] += row.measures[2];
        }
    }
    let mut ranked: Vec<(String, [i64; 3])> = totals
        .into_iter()
        .filter(|(_, [_, good, poor])| good + poor >= min_streams.max(1))
        .collect();
    let poor_ratio = |[_, good, poor]: &[i64; 3]| *poor as f64 / (*good + *poor) as f64;
    ranked.sort_by(|a, b| {
        poor_ratio(&b.1)
            .total_cmp(&poor_ratio(&a.1))
            .then(b.1[2].cmp(&a.1[2]))
            .then(a.0.cmp(&b.0))
    });
    let name = match by {
        Worst::Subnet => "subnet",
        Worst::Building => "building",
        Worst::User => "user",
    };
    Ok(ranked
        .into_iter()
        .take(top)
        .map(|(key, [streams, good, poor])| {
            let mut row = Map::new();
            row.insert(name.into(), key.into());
            row.insert("streams".into(), streams.into());
            row.insert("poorStreams".into(), poor.into());
            row.insert("goodStreams".into(), good.into());
            row.insert("poorRatio".into(), ratio(poor, poor + good));
            Json::Object(row)
        })
        .collect())
}

/// The calls behind a group: those with streams matching the filter (and the classification).
pub(crate) async fn calls(
    store: &dyn AnalyticsStore,
    tenant: &TenantId,
    params: &Params,
    places: &Places,
    classification: Option<Classification>,
    top: u32,
) -> Answer<Vec<Json>> {
    let mut conditions = conditions(store, tenant, params, Fact::Streams, places).await?;
    if let Some(classification) = classification {
        conditions.push(Condition {
            column: Column::Classification,
            values: vec![Value::Integer(classification as i64)],
            negated: false,
        });
    }
    let query = GroupQuery {
        fact: Fact::Streams,
        from: params.from,
        to: params.to,
        group_by: Vec::new(),
        conditions,
        default_filters: params.default_filters,
        measures: Measures::All,
    };
    let calls = store.calls(tenant, &query, top).await?;
    Ok(calls
        .into_iter()
        .map(|call| {
            json!({
                "id": call.id,
                "startDateTime": call.start.to_date_time().map(|at| at.to_string()),
                "callType": if call.conference { "conference" } else { "peerToPeer" },
                "streams": call.streams,
                "poorStreams": call.poor_streams,
            })
        })
        .collect())
}

/// Every classified stream of one call, with its endpoints and metrics, classified from the
/// stored record (the rows keep neither metrics nor addresses); empty when there is no such call.
pub(crate) async fn call_streams(store: &dyn Store, tenant: &TenantId, id: &str, places: &Places) -> Answer<Vec<Json>> {
    let Some(record) = store.get_call_record(tenant, id, None).await? else {
        return Ok(Vec::new());
    };
    let page = PartKind::Sessions.per_part() as u32;
    let sessions = all_children(|after| store.list_sessions(tenant, id, after, page)).await?;
    let sessions = sessions.into_iter().map(|child| child.document).collect();
    let streams = rows_of_stored(id, &record.document, sessions).streams;
    let metric_names = [
        "averageJitterMs",
        "maxJitterMs",
        "averagePacketLossRate",
        "maxPacketLossRate",
        "averageRoundTripTimeMs",
        "maxRoundTripTimeMs",
        "averageAudioDegradation",
        "averageRatioOfConcealedSamples",
        "averageVideoFrameLossPercentage",
        "averageVideoFrameRate",
        "postForwardErrorCorrectionPacketLossRate",
    ];
    let endpoint = |facts: &crate::quality::EndpointFacts| {
        let subnet = facts.subnet.clone().map_or(Value::Null, Value::Text);
        json!({
            "isServer": facts.server,
            "connectionType": facts.connection_type,
            "subnet": facts.subnet,
            "wifiBand": facts.wifi_band,
            "productFamily": facts.product_family,
            "platform": facts.platform,
            "version": facts.version,
            "serviceRole": facts.service_role,
            "ipAddress": facts.ip_address,
            "userId": facts.user_id,
            "userDisplayName": facts.user_name,
            "building": places.value(&subnet, Place::Building),
            "inside": places.value(&subnet, Place::Inside),
        })
    };
    Ok(streams
        .iter()
        .map(|stream| {
            let mut row = json!({
                "sessionId": stream.session_id,
                "segmentId": stream.segment_id,
                "startDateTime": stream.segment_start.to_date_time().map(|at| at.to_string()),
                "mediaType": stream.media_type.as_str(),
                "direction": if stream.first_to_second { "firstToSecond" } else { "secondToFirst" },
                "firstIsCaller": stream.call.first_is_caller,
                "classification": stream.classification.as_str(),
                "poorDueTo": CONDITIONS
                    .iter()
                    .filter(|condition| stream.poor_due_to.contains(condition))
                    .map(|condition| condition.as_str())
                    .collect::<Vec<_>>(),
                "first": endpoint(&stream.call.first),
                "second": endpoint(&stream.call.second),
            });
            if let Json::Object(row) = &mut row {
                for (name, value) in metric_names.iter().zip(stream.metrics.values()) {
                    row.insert((*name).to_owned(), value.map_or(Json::Null, Json::from));
                }
            }
            row
        })
        .collect())
}

/// An instant of `fromDateTime` or `toDateTime`: ISO 8601 with a time, or a date (its midnight,
/// UTC).
pub(crate) fn parse_instant(text: &str) -> Option<Timestamp> {
    if let Ok(at) = crate::model::DateTimeOffset::parse(text) {
        return Some(Timestamp::from(at));
    }
    day_number(text).map(|day| Timestamp::from_ticks(day * TICKS_PER_DAY))
}
