//! The columns of each flat table an export writes (streams, sessions, records and the two
//! usage logs): a name, a type and where its value is found. Names are Graph's property names
//! in PascalCase, prefixed by what they belong to (`Caller`, `Callee`, `Session`, `Segment`)
//! where two would clash, as Call Record Insights names its columns; durations are numbers of
//! milliseconds and say so (`…Ms`). The README lists them; tests read them by name, so a
//! column is added, never renamed.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::Value;

use crate::model::{DateTimeOffset, Duration};

/// A column's type in Parquet (and how NDJSON rows write it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string as sent; an enum member's name; an object or array as its JSON text.
    Text,
    /// An array of strings joined by commas (`audio,video`).
    TextList,
    /// An `@odata.type` without its namespace (`participantEndpoint`).
    TypeName,
    Int,
    /// A number; Graph's `"NaN"`, `"INF"` and `"-INF"` become the floating-point values.
    Float,
    /// An `Edm.Decimal` money amount, exactly, to `MONEY_SCALE` places.
    Money,
    Bool,
    /// A UTC instant, to the microsecond.
    Timestamp,
    /// An ISO 8601 duration (`PT0.016S`) as milliseconds.
    DurationMs,
}

/// Which object of a row a column reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The call record (or the usage-log row).
    Record = 0,
    Session = 1,
    Segment = 2,
    Media = 3,
    Stream = 4,
    /// What the export works out: CQD's classification and the call's facts.
    Derived = 5,
}

pub(crate) const SCOPES: usize = 6;

#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    scope: Scope,
    path: Vec<&'static str>,
}

/// A row: the objects its columns read, by scope.
#[derive(Default)]
pub(crate) struct Scopes<'a>(pub(crate) [Option<&'a Value>; SCOPES]);

impl<'a> Scopes<'a> {
    pub(crate) fn with(mut self, scope: Scope, value: &'a Value) -> Self {
        self.0[scope as usize] = Some(value);
        self
    }
}

/// Decimal places a money amount keeps (Graph's amounts have two to four).
pub(crate) const MONEY_SCALE: u32 = 6;

/// One value of a row, typed.
#[derive(Debug, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    /// A money amount in units of 10^-`MONEY_SCALE`.
    Money(i128),
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC.
    Micros(i64),
}

impl Cell<'_> {
    /// The cell with its text copied out of the row, so it can leave the thread that read it.
    pub(crate) fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Null => Cell::Null,
            Cell::Text(text) => Cell::Text(Cow::Owned(text.into_owned())),
            Cell::Int(value) => Cell::Int(value),
            Cell::Float(value) => Cell::Float(value),
            Cell::Money(value) => Cell::Money(value),
            Cell::Bool(value) => Cell::Bool(value),
            Cell::Micros(value) => Cell::Micros(value),
        }
    }
}

impl Column {
    fn new(name: impl Into<String>, kind: Kind, scope: Scope, path: &[&'static str]) -> Self {
        Self {
            name: name.into(),
            kind,
            scope,
            path: path.to_vec(),
        }
    }

    /// This column's value in a row.
    pub(crate) fn cell<'a>(&self, row: &Scopes<'a>) -> Cell<'a> {
        let value = row.0[self.scope as usize].and_then(|root| {
            self.path
                .iter()
                .try_fold(root, |value, key| value.as_object().and_then(|object| object.get(*key)))
        });
        match value {
            None | Some(Value::Null) => Cell::Null,
            Some(value) => self.kind.cell(value),
        }
    }
}

impl Kind {
    fn cell(self, value: &Value) -> Cell<'_> {
        match (self, value) {
            (Kind::Text, Value::String(text)) => Cell::Text(Cow::Borrowed(text)),
            (Kind::Text, other) => Cell::Text(Cow::Owned(other.to_string())),
            (Kind::TextList, Value::Array(items)) => Cell::Text(Cow::Owned(
                items
                    .iter()
                    .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            (Kind::TypeName, Value::String(text)) => Cell::Text(Cow::Borrowed(
                text.rsplit_once('.')
                    .map_or(text.trim_start_matches('#'), |(_, name)| name),
            )),
            (Kind::Int, Value::Number(number)) => number.as_i64().map_or(Cell::Null, Cell::Int),
            (Kind::Float, Value::Number(number)) => number.as_f64().map_or(Cell::Null, Cell::Float),
            (Kind::Float, Value::String(text)) => match text.as_str() {
                "NaN" => Cell::Float(f64::NAN),
                "INF" => Cell::Float(f64::INFINITY),
                "-INF" => Cell::Float(f64::NEG_INFINITY),
                _ => Cell::Null,
            },
            (Kind::Money, Value::Number(number)) => rust_decimal::Decimal::from_str_exact(&number.to_string())
                .ok()
                .map(|mut amount| {
                    amount.rescale(MONEY_SCALE);
                    amount
                })
                .filter(|amount| amount.scale() == MONEY_SCALE)
                .map_or(Cell::Null, |amount| Cell::Money(amount.mantissa())),
            (Kind::Bool, Value::Bool(flag)) => Cell::Bool(*flag),
            (Kind::Timestamp, Value::String(text)) => {
                DateTimeOffset::parse(text).map_or(Cell::Null, |at| Cell::Micros(at.unix_ticks().div_euclid(10)))
            }
            (Kind::DurationMs, Value::String(text)) => {
                Duration::parse(text).map_or(Cell::Null, |length| Cell::Float(length.ticks() as f64 / 10_000.0))
            }
            _ => Cell::Null,
        }
    }
}

use Kind::*;
use Scope::*;

/// The two sides of a segment or session, as column prefixes and as the members that hold
/// their endpoint, network and device.
const SIDES: [(&str, &str, &str, &str); 2] = [
    ("Caller", "caller", "callerNetwork", "callerDevice"),
    ("Callee", "callee", "calleeNetwork", "calleeDevice"),
];

/// An endpoint's columns (a segment's or a session's `caller`/`callee`).
fn endpoint_columns(prefix: &str, side: &'static str, scope: Scope, columns: &mut Vec<Column>) {
    let endpoint: [(&str, Kind, &[&'static str]); 14] = [
        ("EndpointType", TypeName, &["@odata.type"]),
        ("UserId", Text, &["identity", "user", "id"]),
        ("UserDisplayName", Text, &["identity", "user", "displayName"]),
        ("Name", Text, &["name"]),
        ("UserAgentPlatform", Text, &["userAgent", "platform"]),
        ("UserAgentProductFamily", Text, &["userAgent", "productFamily"]),
        ("UserAgentRole", Text, &["userAgent", "role"]),
        (
            "UserAgentApplicationVersion",
            Text,
            &["userAgent", "applicationVersion"],
        ),
        ("UserAgentHeaderValue", Text, &["userAgent", "headerValue"]),
        ("CpuName", Text, &["cpuName"]),
        ("CpuCoresCount", Int, &["cpuCoresCount"]),
        ("CpuProcessorSpeedInMhz", Int, &["cpuProcessorSpeedInMhz"]),
        ("FeedbackRating", Text, &["feedback", "rating"]),
        ("FeedbackText", Text, &["feedback", "text"]),
    ];
    for (name, kind, path) in endpoint {
        let mut full = vec![side];
        full.extend_from_slice(path);
        columns.push(Column::new(format!("{prefix}{name}"), kind, scope, &full));
    }
}

fn network_columns(prefix: &str, network: &'static str, columns: &mut Vec<Column>) {
    let fields: [(&str, Kind, &'static str); 26] = [
        ("IpAddress", Text, "ipAddress"),
        ("Subnet", Text, "subnet"),
        ("Port", Int, "port"),
        ("ReflexiveIpAddress", Text, "reflexiveIPAddress"),
        ("RelayIpAddress", Text, "relayIPAddress"),
        ("RelayPort", Int, "relayPort"),
        ("MacAddress", Text, "macAddress"),
        ("DnsSuffix", Text, "dnsSuffix"),
        ("LinkSpeed", Int, "linkSpeed"),
        ("ConnectionType", Text, "connectionType"),
        ("NetworkTransportProtocol", Text, "networkTransportProtocol"),
        ("BandwidthLowEventRatio", Float, "bandwidthLowEventRatio"),
        ("DelayEventRatio", Float, "delayEventRatio"),
        ("ReceivedQualityEventRatio", Float, "receivedQualityEventRatio"),
        ("SentQualityEventRatio", Float, "sentQualityEventRatio"),
        ("BasicServiceSetIdentifier", Text, "basicServiceSetIdentifier"),
        ("WifiBand", Text, "wifiBand"),
        ("WifiRadioType", Text, "wifiRadioType"),
        ("WifiChannel", Int, "wifiChannel"),
        ("WifiSignalStrength", Int, "wifiSignalStrength"),
        ("WifiBatteryCharge", Int, "wifiBatteryCharge"),
        ("WifiMicrosoftDriver", Text, "wifiMicrosoftDriver"),
        ("WifiMicrosoftDriverVersion", Text, "wifiMicrosoftDriverVersion"),
        ("WifiVendorDriver", Text, "wifiVendorDriver"),
        ("WifiVendorDriverVersion", Text, "wifiVendorDriverVersion"),
        ("TraceRouteHops", Text, "traceRouteHops"),
    ];
    for (name, kind, member) in fields {
        columns.push(Column::new(format!("{prefix}{name}"), kind, Media, &[network, member]));
    }
}

fn device_columns(prefix: &str, device: &'static str, columns: &mut Vec<Column>) {
    let fields: [(&str, Kind, &'static str); 21] = [
        ("CaptureDeviceName", Text, "captureDeviceName"),
        ("CaptureDeviceDriver", Text, "captureDeviceDriver"),
        ("RenderDeviceName", Text, "renderDeviceName"),
        ("RenderDeviceDriver", Text, "renderDeviceDriver"),
        (
            "CaptureNotFunctioningEventRatio",
            Float,
            "captureNotFunctioningEventRatio",
        ),
        ("CpuInsufficentEventRatio", Float, "cpuInsufficentEventRatio"),
        ("DeviceClippingEventRatio", Float, "deviceClippingEventRatio"),
        ("DeviceGlitchEventRatio", Float, "deviceGlitchEventRatio"),
        ("HowlingEventCount", Int, "howlingEventCount"),
        (
            "InitialSignalLevelRootMeanSquare",
            Float,
            "initialSignalLevelRootMeanSquare",
        ),
        ("LowSpeechLevelEventRatio", Float, "lowSpeechLevelEventRatio"),
        ("LowSpeechToNoiseEventRatio", Float, "lowSpeechToNoiseEventRatio"),
        ("MicGlitchRate", Float, "micGlitchRate"),
        ("ReceivedNoiseLevel", Int, "receivedNoiseLevel"),
        ("ReceivedSignalLevel", Int, "receivedSignalLevel"),
        ("RenderMuteEventRatio", Float, "renderMuteEventRatio"),
        (
            "RenderNotFunctioningEventRatio",
            Float,
            "renderNotFunctioningEventRatio",
        ),
        ("RenderZeroVolumeEventRatio", Float, "renderZeroVolumeEventRatio"),
        ("SentNoiseLevel", Int, "sentNoiseLevel"),
        ("SentSignalLevel", Int, "sentSignalLevel"),
        ("SpeakerGlitchRate", Float, "speakerGlitchRate"),
    ];
    for (name, kind, member) in fields {
        columns.push(Column::new(format!("{prefix}{name}"), kind, Media, &[device, member]));
    }
}

fn call_columns(columns: &mut Vec<Column>) {
    columns.extend([
        Column::new("CallId", Text, Record, &["id"]),
        Column::new("CallVersion", Int, Record, &["version"]),
        Column::new("CallType", Text, Record, &["type"]),
        Column::new("CallStartDateTime", Timestamp, Record, &["startDateTime"]),
        Column::new("CallEndDateTime", Timestamp, Record, &["endDateTime"]),
    ]);
}

fn session_columns(columns: &mut Vec<Column>) {
    columns.extend([
        Column::new("SessionId", Text, Session, &["id"]),
        Column::new("SessionStartDateTime", Timestamp, Session, &["startDateTime"]),
        Column::new("SessionEndDateTime", Timestamp, Session, &["endDateTime"]),
    ]);
}

/// What the export works out for a stream or a session, beside what was sent (`Scope::Derived`).
fn cqd_columns(columns: &mut Vec<Column>) {
    columns.extend([
        Column::new("IsConference", Bool, Derived, &["isConference"]),
        Column::new("IsPstn", Bool, Derived, &["isPstn"]),
        Column::new("ExcludedByDefaultFilters", Bool, Derived, &["excludedByDefaultFilters"]),
        Column::new("FirstIsCaller", Bool, Derived, &["firstIsCaller"]),
        Column::new("CallerIsServer", Bool, Derived, &["callerIsServer"]),
        Column::new("CalleeIsServer", Bool, Derived, &["calleeIsServer"]),
    ]);
}

/// One row per stream of every media of every segment of every session.
pub(crate) static STREAMS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    let mut columns = Vec::new();
    call_columns(&mut columns);
    session_columns(&mut columns);
    columns.extend([
        Column::new("SegmentId", Text, Segment, &["id"]),
        Column::new("SegmentStartDateTime", Timestamp, Segment, &["startDateTime"]),
        Column::new("SegmentEndDateTime", Timestamp, Segment, &["endDateTime"]),
        Column::new("SegmentFailureStage", Text, Segment, &["failureInfo", "stage"]),
        Column::new("SegmentFailureReason", Text, Segment, &["failureInfo", "reason"]),
        Column::new("MediaLabel", Text, Media, &["label"]),
        Column::new("StreamId", Text, Stream, &["streamId"]),
        Column::new("StreamDirection", Text, Stream, &["streamDirection"]),
        Column::new("StreamStartDateTime", Timestamp, Stream, &["startDateTime"]),
        Column::new("StreamEndDateTime", Timestamp, Stream, &["endDateTime"]),
        Column::new("MediaType", Text, Derived, &["mediaType"]),
        Column::new("Classification", Text, Derived, &["classification"]),
        Column::new("PoorDueTo", Text, Derived, &["poorDueTo"]),
        Column::new("FirstToSecond", Bool, Derived, &["firstToSecond"]),
    ]);
    cqd_columns(&mut columns);
    let metrics: [(&str, Kind, &'static str); 26] = [
        ("AudioCodec", Text, "audioCodec"),
        ("VideoCodec", Text, "videoCodec"),
        ("AverageJitterMs", DurationMs, "averageJitter"),
        ("MaxJitterMs", DurationMs, "maxJitter"),
        ("AveragePacketLossRate", Float, "averagePacketLossRate"),
        ("MaxPacketLossRate", Float, "maxPacketLossRate"),
        ("AverageRoundTripTimeMs", DurationMs, "averageRoundTripTime"),
        ("MaxRoundTripTimeMs", DurationMs, "maxRoundTripTime"),
        ("AverageAudioDegradation", Float, "averageAudioDegradation"),
        ("AverageAudioNetworkJitterMs", DurationMs, "averageAudioNetworkJitter"),
        ("MaxAudioNetworkJitterMs", DurationMs, "maxAudioNetworkJitter"),
        (
            "AverageRatioOfConcealedSamples",
            Float,
            "averageRatioOfConcealedSamples",
        ),
        ("MaxRatioOfConcealedSamples", Float, "maxRatioOfConcealedSamples"),
        ("AverageBandwidthEstimate", Int, "averageBandwidthEstimate"),
        ("PacketUtilization", Int, "packetUtilization"),
        (
            "PostForwardErrorCorrectionPacketLossRate",
            Float,
            "postForwardErrorCorrectionPacketLossRate",
        ),
        (
            "IsAudioForwardErrorCorrectionUsed",
            Bool,
            "isAudioForwardErrorCorrectionUsed",
        ),
        ("AverageReceivedFrameRate", Float, "averageReceivedFrameRate"),
        ("AverageVideoFrameRate", Float, "averageVideoFrameRate"),
        (
            "AverageVideoFrameLossPercentage",
            Float,
            "averageVideoFrameLossPercentage",
        ),
        ("AverageVideoPacketLossRate", Float, "averageVideoPacketLossRate"),
        ("LowFrameRateRatio", Float, "lowFrameRateRatio"),
        (
            "LowVideoProcessingCapabilityRatio",
            Float,
            "lowVideoProcessingCapabilityRatio",
        ),
        ("AverageFreezeDurationMs", DurationMs, "averageFreezeDuration"),
        ("RmsFreezeDurationMs", DurationMs, "rmsFreezeDuration"),
        ("WasMediaBypassed", Bool, "wasMediaBypassed"),
    ];
    for (name, kind, member) in metrics {
        columns.push(Column::new(name, kind, Stream, &[member]));
    }
    for (prefix, side, network, device) in SIDES {
        endpoint_columns(prefix, side, Segment, &mut columns);
        network_columns(prefix, network, &mut columns);
        device_columns(prefix, device, &mut columns);
    }
    columns
});

/// One row per session (call leg).
pub(crate) static SESSIONS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    let mut columns = Vec::new();
    call_columns(&mut columns);
    session_columns(&mut columns);
    columns.extend([
        Column::new("Modalities", TextList, Session, &["modalities"]),
        Column::new("IsTest", Bool, Session, &["isTest"]),
        Column::new("FailureStage", Text, Session, &["failureInfo", "stage"]),
        Column::new("FailureReason", Text, Session, &["failureInfo", "reason"]),
        Column::new("SegmentCount", Int, Derived, &["segmentCount"]),
        Column::new("Outcome", Text, Derived, &["outcome"]),
    ]);
    cqd_columns(&mut columns);
    for (prefix, side, _, _) in SIDES {
        endpoint_columns(prefix, side, Session, &mut columns);
    }
    columns
});

/// One row per call record.
pub(crate) static RECORDS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    let mut columns = Vec::new();
    call_columns(&mut columns);
    columns.extend([
        Column::new("CallDurationMs", Int, Derived, &["callDurationMs"]),
        Column::new("Modalities", TextList, Record, &["modalities"]),
        Column::new("LastModifiedDateTime", Timestamp, Record, &["lastModifiedDateTime"]),
        Column::new("JoinWebUrl", Text, Record, &["joinWebUrl"]),
        Column::new("OrganizerId", Text, Record, &["organizer_v2", "id"]),
        Column::new(
            "OrganizerUserId",
            Text,
            Record,
            &["organizer_v2", "identity", "user", "id"],
        ),
        Column::new(
            "OrganizerUserDisplayName",
            Text,
            Record,
            &["organizer_v2", "identity", "user", "displayName"],
        ),
        Column::new("SessionCount", Int, Derived, &["sessionCount"]),
        Column::new("ParticipantCount", Int, Derived, &["participantCount"]),
    ]);
    columns
});

/// A usage-log row's columns: each property, in PascalCase, read from the row itself.
fn log_columns(fields: &[(&str, Kind, &'static str)]) -> Vec<Column> {
    fields
        .iter()
        .map(|(name, kind, member)| Column::new(*name, *kind, Record, &[member]))
        .collect()
}

pub(crate) static PSTN_CALLS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    log_columns(&[
        ("Id", Text, "id"),
        ("CallId", Text, "callId"),
        ("UserId", Text, "userId"),
        ("UserPrincipalName", Text, "userPrincipalName"),
        ("UserDisplayName", Text, "userDisplayName"),
        ("StartDateTime", Timestamp, "startDateTime"),
        ("EndDateTime", Timestamp, "endDateTime"),
        ("DurationSeconds", Int, "duration"),
        ("Charge", Money, "charge"),
        ("ConnectionCharge", Money, "connectionCharge"),
        ("Currency", Text, "currency"),
        ("CallType", Text, "callType"),
        ("CallerNumber", Text, "callerNumber"),
        ("CalleeNumber", Text, "calleeNumber"),
        ("UsageCountryCode", Text, "usageCountryCode"),
        ("TenantCountryCode", Text, "tenantCountryCode"),
        ("DestinationContext", Text, "destinationContext"),
        ("DestinationName", Text, "destinationName"),
        ("ConferenceId", Text, "conferenceId"),
        ("LicenseCapability", Text, "licenseCapability"),
        ("InventoryType", Text, "inventoryType"),
        ("Operator", Text, "operator"),
        ("CallDurationSource", Text, "callDurationSource"),
        ("OtherPartyCountryCode", Text, "otherPartyCountryCode"),
        ("AdministrativeUnitInfos", Text, "administrativeUnitInfos"),
        ("ClientLocalIpV4Address", Text, "clientLocalIpV4Address"),
        ("ClientLocalIpV6Address", Text, "clientLocalIpV6Address"),
        ("ClientPublicIpV4Address", Text, "clientPublicIpV4Address"),
        ("ClientPublicIpV6Address", Text, "clientPublicIpV6Address"),
    ])
});

pub(crate) static DIRECT_ROUTING_CALLS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    log_columns(&[
        ("Id", Text, "id"),
        ("CorrelationId", Text, "correlationId"),
        ("UserId", Text, "userId"),
        ("UserPrincipalName", Text, "userPrincipalName"),
        ("UserDisplayName", Text, "userDisplayName"),
        ("StartDateTime", Timestamp, "startDateTime"),
        ("InviteDateTime", Timestamp, "inviteDateTime"),
        ("FailureDateTime", Timestamp, "failureDateTime"),
        ("EndDateTime", Timestamp, "endDateTime"),
        ("DurationSeconds", Int, "duration"),
        ("CallType", Text, "callType"),
        ("SuccessfulCall", Bool, "successfulCall"),
        ("CallerNumber", Text, "callerNumber"),
        ("CalleeNumber", Text, "calleeNumber"),
        ("MediaPathLocation", Text, "mediaPathLocation"),
        ("SignalingLocation", Text, "signalingLocation"),
        ("FinalSipCode", Int, "finalSipCode"),
        ("CallEndSubReason", Int, "callEndSubReason"),
        ("FinalSipCodePhrase", Text, "finalSipCodePhrase"),
        ("TrunkFullyQualifiedDomainName", Text, "trunkFullyQualifiedDomainName"),
        ("MediaBypassEnabled", Bool, "mediaBypassEnabled"),
        ("OtherPartyCountryCode", Text, "otherPartyCountryCode"),
        ("TransferorCorrelationId", Text, "transferorCorrelationId"),
        ("UserCountryCode", Text, "userCountryCode"),
        ("AdministrativeUnitInfos", Text, "administrativeUnitInfos"),
    ])
});

pub(crate) static SMS_LOGS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    log_columns(&[
        ("Id", Text, "id"),
        ("SmsId", Text, "smsId"),
        ("SentDateTime", Timestamp, "sentDateTime"),
        ("SmsType", Text, "smsType"),
        ("SmsUnits", Int, "smsUnits"),
        ("SourceNumber", Text, "sourceNumber"),
        ("DestinationNumber", Text, "destinationNumber"),
        ("DestinationContext", Text, "destinationContext"),
        ("DestinationName", Text, "destinationName"),
        ("CallCharge", Money, "callCharge"),
        ("Currency", Text, "currency"),
        ("LicenseCapability", Text, "licenseCapability"),
        ("OtherPartyCountryCode", Text, "otherPartyCountryCode"),
        ("TenantCountryCode", Text, "tenantCountryCode"),
        ("UserCountryCode", Text, "userCountryCode"),
        ("UserId", Text, "userId"),
        ("UserDisplayName", Text, "userDisplayName"),
        ("UserPrincipalName", Text, "userPrincipalName"),
        ("AdministrativeUnitInfos", Text, "administrativeUnitInfos"),
    ])
});

pub(crate) static PSTN_BLOCKED_USERS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    log_columns(&[
        ("BlockDateTime", Timestamp, "blockDateTime"),
        ("BlockReason", Text, "blockReason"),
        ("RemediationId", Text, "remediationId"),
        ("UserBlockMode", Text, "userBlockMode"),
        ("UserId", Text, "userId"),
        ("UserDisplayName", Text, "userDisplayName"),
        ("UserPrincipalName", Text, "userPrincipalName"),
        ("UserTelephoneNumber", Text, "userTelephoneNumber"),
    ])
});

/// One row per user and day, as ingested (`usageDate`); Graph sums the days of a period.
pub(crate) static PSTN_ONLINE_MEETING_DIALOUT_REPORT: LazyLock<Vec<Column>> = LazyLock::new(|| {
    log_columns(&[
        ("UsageDate", Text, "usageDate"),
        ("UserId", Text, "userId"),
        ("UserDisplayName", Text, "userDisplayName"),
        ("UserPrincipalName", Text, "userPrincipalName"),
        ("UsageLocation", Text, "usageLocation"),
        ("DestinationContext", Text, "destinationContext"),
        ("Currency", Text, "currency"),
        ("TotalCallCharge", Money, "totalCallCharge"),
        ("TotalCalls", Int, "totalCalls"),
        ("TotalCallSeconds", Int, "totalCallSeconds"),
    ])
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The README is where analysts look the columns up: every column of every table is there.
    #[test]
    fn the_readme_lists_every_column() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split_once("## Export and backup")
            .and_then(|(_, rest)| rest.split_once("\n## "))
            .map(|(section, _)| section)
            .expect("the README has an export section");
        let tables: [(&str, &[Column]); 8] = [
            ("streams", &STREAMS),
            ("sessions", &SESSIONS),
            ("records", &RECORDS),
            ("pstnCalls", &PSTN_CALLS),
            ("directRoutingCalls", &DIRECT_ROUTING_CALLS),
            ("smsLogs", &SMS_LOGS),
            ("pstnBlockedUsers", &PSTN_BLOCKED_USERS),
            ("pstnOnlineMeetingDialoutReport", &PSTN_ONLINE_MEETING_DIALOUT_REPORT),
        ];
        for (table, columns) in tables {
            let mut names = std::collections::HashSet::new();
            for column in columns {
                assert!(names.insert(&column.name), "{table}: {} twice", column.name);
                let side = ["Caller", "Callee"]
                    .iter()
                    .find_map(|side| column.name.strip_prefix(side).filter(|rest| !rest.starts_with("Is")));
                let listed = section.contains(&format!("`{}`", column.name))
                    || side.is_some_and(|rest| section.contains(&format!("`{rest}`")));
                assert!(listed, "{table}: the README does not list {}", column.name);
            }
        }
    }

    #[test]
    fn cells_are_typed_as_their_columns_say() {
        let value = serde_json::json!({
            "at": "2024-03-01T10:00:00.1234567Z", "jitter": "PT0.016S", "loss": "NaN", "n": 7,
            "modalities": ["audio", "video"], "type": "#microsoft.graph.callRecords.serviceEndpoint",
            "hops": [{"hopCount": 1}], "flag": true
        });
        let row = Scopes::default().with(Record, &value);
        let cell = |kind, member| Column::new("c", kind, Record, &[member]).cell(&row);
        assert_eq!(cell(Timestamp, "at"), Cell::Micros(1_709_287_200_123_456));
        assert_eq!(cell(DurationMs, "jitter"), Cell::Float(16.0));
        assert!(matches!(cell(Float, "loss"), Cell::Float(value) if value.is_nan()));
        assert_eq!(cell(Int, "n"), Cell::Int(7));
        assert_eq!(cell(TextList, "modalities"), Cell::Text("audio,video".into()));
        assert_eq!(cell(TypeName, "type"), Cell::Text("serviceEndpoint".into()));
        assert_eq!(cell(Text, "hops"), Cell::Text(r#"[{"hopCount":1}]"#.into()));
        assert_eq!(cell(Bool, "flag"), Cell::Bool(true));
        let money = serde_json::json!({ "charge": serde_json::Number::from_string_unchecked("1.50".to_owned()) });
        let row = Scopes::default().with(Record, &money);
        assert_eq!(
            Column::new("c", Money, Record, &["charge"]).cell(&row),
            Cell::Money(1_500_000)
        );
        assert_eq!(cell(Int, "missing"), Cell::Null);
        assert_eq!(cell(Timestamp, "n"), Cell::Null);
    }
}
