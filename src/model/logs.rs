//! The usage-log rows Graph serves beside call records: `pstnCallLogRow` and
//! `directRoutingLogRow` (v1.0), and in beta only `smsLogRow`,
//! `pstnBlockedUsersLogRow` and `pstnOnlineMeetingDialoutReport`. Every property is
//! nullable in the CSDL; ingest requires only what keys and indexes a row: its key and its time.
//!
//! Beta declares more properties on `pstnCallLogRow` and `directRoutingLogRow` than v1.0 (those
//! of its base type `callLogRow`, and a few of their own). They are stored only when sent, so a
//! v1.0 sender's rows are stored, and served on v1.0, exactly as before; `BetaOnly` names them
//! for the serving of each version.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::enums::{PstnCallDurationSource, PstnUserBlockMode};
use super::primitives::DateTimeOffset;
use super::types::AdministrativeUnitInfo;
use super::RecordError;

/// An `Edm.Decimal` money amount, kept with the scale it was sent with: `0.00` prints as `0.00`
/// (a JSON number). serde_json's `arbitrary_precision` keeps the number's text exactly.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Decimal(serde_json::Number);

impl Decimal {
    pub(crate) fn as_text(&self) -> String {
        self.0.to_string()
    }

    /// The exact sum, at the larger scale of the two (`1.50 + 2.1` is `3.60`).
    pub(crate) fn plus(&self, other: &Decimal) -> Decimal {
        let parse = |d: &Decimal| rust_decimal::Decimal::from_str_exact(&d.as_text()).unwrap_or_default();
        let (a, b) = (parse(self), parse(other));
        let mut sum = a.saturating_add(b);
        // rust_decimal returns the other operand as it is when one is zero, dropping the larger
        // scale that Edm.Decimal's sum keeps (`1.5 + 0.000` is `1.500`).
        sum.rescale(a.scale().max(b.scale()));
        Decimal(sum.to_string().parse().unwrap_or_else(|_| serde_json::Number::from(0)))
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        let text = number.to_string();
        if text.contains(['e', 'E']) || text.len() > 40 {
            return Err(de::Error::custom(format!(
                "{text} is not a decimal amount such as 0.00 or 12.5"
            )));
        }
        Ok(Self(number))
    }
}

/// One PSTN call (Calling Plan or Operator Connect).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PstnCallLogRow {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) call_id: Option<String>,
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) user_display_name: Option<String>,
    #[serde(default)]
    pub(crate) start_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) end_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) duration: Option<i32>,
    #[serde(default)]
    pub(crate) charge: Option<Decimal>,
    #[serde(default)]
    pub(crate) call_type: Option<String>,
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) callee_number: Option<String>,
    #[serde(default)]
    pub(crate) usage_country_code: Option<String>,
    #[serde(default)]
    pub(crate) tenant_country_code: Option<String>,
    #[serde(default)]
    pub(crate) connection_charge: Option<Decimal>,
    #[serde(default)]
    pub(crate) caller_number: Option<String>,
    #[serde(default)]
    pub(crate) destination_context: Option<String>,
    #[serde(default)]
    pub(crate) destination_name: Option<String>,
    #[serde(default)]
    pub(crate) conference_id: Option<String>,
    #[serde(default)]
    pub(crate) license_capability: Option<String>,
    #[serde(default)]
    pub(crate) inventory_type: Option<String>,
    #[serde(default)]
    pub(crate) operator: Option<String>,
    #[serde(default)]
    pub(crate) call_duration_source: Option<PstnCallDurationSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) administrative_unit_infos: Option<Vec<AdministrativeUnitInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) other_party_country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_local_ip_v4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_local_ip_v6_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_public_ip_v4_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_public_ip_v6_address: Option<String>,
}

/// One Direct Routing (SBC trunk) call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DirectRoutingLogRow {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) correlation_id: Option<String>,
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) user_display_name: Option<String>,
    #[serde(default)]
    pub(crate) start_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) invite_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) failure_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) end_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) duration: Option<i32>,
    #[serde(default)]
    pub(crate) call_type: Option<String>,
    #[serde(default)]
    pub(crate) successful_call: Option<bool>,
    #[serde(default)]
    pub(crate) caller_number: Option<String>,
    #[serde(default)]
    pub(crate) callee_number: Option<String>,
    #[serde(default)]
    pub(crate) media_path_location: Option<String>,
    #[serde(default)]
    pub(crate) signaling_location: Option<String>,
    #[serde(default)]
    pub(crate) final_sip_code: Option<i32>,
    #[serde(default)]
    pub(crate) call_end_sub_reason: Option<i32>,
    #[serde(default)]
    pub(crate) final_sip_code_phrase: Option<String>,
    #[serde(default)]
    pub(crate) trunk_fully_qualified_domain_name: Option<String>,
    #[serde(default)]
    pub(crate) media_bypass_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) administrative_unit_infos: Option<Vec<AdministrativeUnitInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) other_party_country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transferor_correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_country_code: Option<String>,
}

/// One user blocked from, or let back to, PSTN calling (Graph beta only). The type has no key;
/// the store keys a row by what tells one block event from another (`PstnBlockedUsersLogRow::key`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PstnBlockedUsersLogRow {
    #[serde(default)]
    pub(crate) block_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) block_reason: Option<String>,
    #[serde(default)]
    pub(crate) remediation_id: Option<String>,
    #[serde(default)]
    pub(crate) user_block_mode: Option<PstnUserBlockMode>,
    #[serde(default)]
    pub(crate) user_display_name: Option<String>,
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) user_telephone_number: Option<String>,
}

/// One entry of the audio-conferencing dial-out report (Graph beta only): a meeting
/// organizer's dial-out calls, seconds and charges, by user location, destination context and
/// currency. Graph aggregates them over the requested period; we store one entry per UTC day
/// (`usageDate`, which only ingest takes) and sum the days of the period when serving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PstnOnlineMeetingDialoutReport {
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) destination_context: Option<String>,
    #[serde(default)]
    pub(crate) total_call_charge: Option<Decimal>,
    #[serde(default)]
    pub(crate) total_calls: Option<i32>,
    #[serde(default)]
    pub(crate) total_call_seconds: Option<i32>,
    #[serde(default)]
    pub(crate) usage_location: Option<String>,
    #[serde(default)]
    pub(crate) user_display_name: Option<String>,
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    /// The UTC day the figures are for, `YYYY-MM-DD`: ours, for ingest and storage; never served.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "usage_date")]
    pub(crate) usage_date: Option<String>,
}

fn usage_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    time::Date::parse(&text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| de::Error::custom(format!("'{text}' is not a date such as 2026-11-30")))?;
    Ok(Some(text))
}

impl PstnOnlineMeetingDialoutReport {
    /// What the report aggregates by: user, user location, destination context, currency.
    pub(crate) fn group(&self) -> [Option<&str>; 6] {
        [
            self.user_id.as_deref(),
            self.user_principal_name.as_deref(),
            self.user_display_name.as_deref(),
            self.usage_location.as_deref(),
            self.destination_context.as_deref(),
            self.currency.as_deref(),
        ]
    }

    /// Adds another day's figures of the same group.
    pub(crate) fn add(&mut self, other: &Self) {
        let sum = |a: Option<i32>, b: Option<i32>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.total_calls = sum(self.total_calls, other.total_calls);
        self.total_call_seconds = sum(self.total_call_seconds, other.total_call_seconds);
        self.total_call_charge = match (self.total_call_charge.take(), &other.total_call_charge) {
            (None, None) => None,
            (Some(a), None) => Some(a),
            (None, Some(b)) => Some(b.clone()),
            (Some(a), Some(b)) => Some(a.plus(b)),
        };
    }
}

/// One SMS sent or received (Graph beta only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SmsLogRow {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) sms_id: Option<String>,
    #[serde(default)]
    pub(crate) sent_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) sms_type: Option<String>,
    #[serde(default)]
    pub(crate) sms_units: Option<i32>,
    #[serde(default)]
    pub(crate) source_number: Option<String>,
    #[serde(default)]
    pub(crate) destination_number: Option<String>,
    #[serde(default)]
    pub(crate) destination_context: Option<String>,
    #[serde(default)]
    pub(crate) destination_name: Option<String>,
    #[serde(default)]
    pub(crate) call_charge: Option<Decimal>,
    #[serde(default)]
    pub(crate) currency: Option<String>,
    #[serde(default)]
    pub(crate) license_capability: Option<String>,
    #[serde(default)]
    pub(crate) other_party_country_code: Option<String>,
    #[serde(default)]
    pub(crate) tenant_country_code: Option<String>,
    #[serde(default)]
    pub(crate) user_country_code: Option<String>,
    #[serde(default)]
    pub(crate) user_display_name: Option<String>,
    #[serde(default)]
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) administrative_unit_infos: Vec<AdministrativeUnitInfo>,
}

/// The kinds of usage-log row; each has its own ingest endpoint and function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogKind {
    PstnCall,
    DirectRoutingCall,
    SmsLog,
    PstnBlockedUser,
    PstnOnlineMeetingDialout,
}

impl LogKind {
    pub(crate) const ALL: [LogKind; 5] = [
        LogKind::PstnCall,
        LogKind::DirectRoutingCall,
        LogKind::SmsLog,
        LogKind::PstnBlockedUser,
        LogKind::PstnOnlineMeetingDialout,
    ];

    /// The name used in storage, on the command line (`import --kind`) and in `/ingest/{name}`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogKind::PstnCall => "pstnCalls",
            LogKind::DirectRoutingCall => "directRoutingCalls",
            LogKind::SmsLog => "smsLogs",
            LogKind::PstnBlockedUser => "pstnBlockedUsers",
            LogKind::PstnOnlineMeetingDialout => "pstnOnlineMeetingDialoutReport",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The qualified type of the rows, for `@odata.context`.
    pub(crate) fn row_type(self) -> &'static str {
        match self {
            LogKind::PstnCall => "microsoft.graph.callRecords.pstnCallLogRow",
            LogKind::DirectRoutingCall => "microsoft.graph.callRecords.directRoutingLogRow",
            LogKind::SmsLog => "microsoft.graph.callRecords.smsLogRow",
            LogKind::PstnBlockedUser => "microsoft.graph.callRecords.pstnBlockedUsersLogRow",
            LogKind::PstnOnlineMeetingDialout => "microsoft.graph.callRecords.pstnOnlineMeetingDialoutReport",
        }
    }

    /// Whether Graph v1.0 has the kind's function; the others exist only in beta.
    pub(crate) fn in_v1(self) -> bool {
        matches!(self, LogKind::PstnCall | LogKind::DirectRoutingCall)
    }

    /// The properties beta declares on the kind's rows and v1.0 does not, each with the JSON a
    /// row that lacks it is served with on beta.
    pub(crate) fn beta_only_properties(self) -> &'static [(&'static str, &'static str)] {
        match self {
            LogKind::PstnCall => &[
                ("administrativeUnitInfos", "[]"),
                ("otherPartyCountryCode", "null"),
                ("clientLocalIpV4Address", "null"),
                ("clientLocalIpV6Address", "null"),
                ("clientPublicIpV4Address", "null"),
                ("clientPublicIpV6Address", "null"),
            ],
            LogKind::DirectRoutingCall => &[
                ("administrativeUnitInfos", "[]"),
                ("otherPartyCountryCode", "null"),
                ("transferorCorrelationId", "null"),
                ("userCountryCode", "null"),
            ],
            LogKind::SmsLog | LogKind::PstnBlockedUser | LogKind::PstnOnlineMeetingDialout => &[],
        }
    }
}

/// A log row checked and serialized: its id, the ticks of its time property, its document.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParsedLogRow {
    pub(crate) id: String,
    pub(crate) start: DateTimeOffset,
    pub(crate) document: String,
}

fn required<T: Clone>(value: &Option<T>, path: &str) -> Result<T, RecordError> {
    value
        .clone()
        .ok_or_else(|| RecordError::at(path, "is required to store a row: it keys and orders the log"))
}

/// Parses, checks and serializes one usage-log row of `kind`.
pub(crate) fn parse_log_row(kind: LogKind, json: &[u8]) -> Result<ParsedLogRow, RecordError> {
    let (id, start, document) = match kind {
        LogKind::PstnCall => {
            let row: PstnCallLogRow = super::parse_document(json)?;
            check_span(&row.start_date_time, &row.end_date_time)?;
            (
                required(&row.id, "id")?,
                required(&row.start_date_time, "startDateTime")?,
                super::to_json(&row),
            )
        }
        LogKind::DirectRoutingCall => {
            let row: DirectRoutingLogRow = super::parse_document(json)?;
            check_span(&row.start_date_time, &row.end_date_time)?;
            (
                required(&row.id, "id")?,
                required(&row.start_date_time, "startDateTime")?,
                super::to_json(&row),
            )
        }
        LogKind::SmsLog => {
            let row: SmsLogRow = super::parse_document(json)?;
            (
                required(&row.id, "id")?,
                required(&row.sent_date_time, "sentDateTime")?,
                super::to_json(&row),
            )
        }
        LogKind::PstnBlockedUser => {
            let row: PstnBlockedUsersLogRow = super::parse_document(json)?;
            let at = required(&row.block_date_time, "blockDateTime")?;
            let key = derived_key(&(
                &row.user_id,
                &row.user_principal_name,
                &row.user_telephone_number,
                at.to_string(),
                &row.user_block_mode,
            ));
            (key, at, super::to_json(&row))
        }
        LogKind::PstnOnlineMeetingDialout => {
            let row: PstnOnlineMeetingDialoutReport = super::parse_document(json)?;
            let day = required(&row.usage_date, "usageDate")?;
            let start = DateTimeOffset::parse(&format!("{day}T00:00:00Z"))
                .map_err(|error| RecordError::at("usageDate", error.to_string()))?;
            (derived_key(&(&day, row.group())), start, super::to_json(&row))
        }
    };
    super::check_id("id", &id)?;
    Ok(ParsedLogRow { id, start, document })
}

/// The store key of a row whose type has none: a digest of what tells one row from another, so
/// the same row sent twice is stored once.
fn derived_key(identifying: &impl Serialize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(serde_json::to_vec(identifying).unwrap_or_default());
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

fn check_span(start: &Option<DateTimeOffset>, end: &Option<DateTimeOffset>) -> Result<(), RecordError> {
    match (start, end) {
        (Some(start), Some(end)) => super::check_span("", start, end),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pstn_example_round_trips_with_decimal_scale() {
        let sent = json!({ "id": "9c4984c7-6c3c-427d-a30c-bd0b2eacee90", "callId": "1835317186_112562680@61.221.3.176",
            "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27", "userPrincipalName": "richard.malk@contoso.com", "userDisplayName": "Richard Malk",
            "startDateTime": "2019-11-01T00:00:08.2589935Z", "endDateTime": "2019-11-01T00:03:47.2589935Z",
            "duration": 219, "charge": 0.00, "callType": "user_in", "currency": "USD",
            "calleeNumber": "+1234567890", "usageCountryCode": "US", "tenantCountryCode": "US", "connectionCharge": 0.00,
            "callerNumber": "+0123456789", "destinationContext": null, "destinationName": "United States",
            "conferenceId": null, "licenseCapability": "MCOPSTNU", "inventoryType": "Subscriber",
            "operator": "Microsoft", "callDurationSource": "microsoft" });
        let text = r#"{"id":"9c4984c7-6c3c-427d-a30c-bd0b2eacee90","charge":0.00,"connectionCharge":1.50,"startDateTime":"2019-11-01T00:00:08.2589935Z"}"#;
        let parsed = parse_log_row(LogKind::PstnCall, text.as_bytes()).unwrap();
        assert!(parsed.document.contains(r#""charge":0.00"#), "{}", parsed.document);
        assert!(
            parsed.document.contains(r#""connectionCharge":1.50"#),
            "{}",
            parsed.document
        );
        let full = parse_log_row(LogKind::PstnCall, sent.to_string().as_bytes()).unwrap();
        let back: serde_json::Value = serde_json::from_str(&full.document).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn decimal_sums_are_exact_at_the_larger_scale() {
        let cases = [
            ("1.50", "2.1", "3.60"),
            ("1.5", "0.000", "1.500"),
            ("0.00", "0.000", "0.000"),
            ("0.000", "0.00", "0.000"),
            ("123456789.123456789", "0.000000001", "123456789.123456790"),
            ("0.1", "0.2", "0.3"),
        ];
        for (a, b, sum) in cases {
            let decimal = |text: &str| serde_json::from_str::<Decimal>(text).unwrap();
            assert_eq!(decimal(a).plus(&decimal(b)).as_text(), sum, "{a} + {b}");
        }
    }

    #[test]
    fn rows_need_an_id_and_a_time_and_refuse_unknown_properties() {
        let cases = [
            (LogKind::PstnCall, r#"{"startDateTime":"2019-11-01T00:00:08Z"}"#, "id: is required to store a row: it keys and orders the log"),
            (LogKind::SmsLog, r#"{"id":"x"}"#, "sentDateTime: is required to store a row: it keys and orders the log"),
            (LogKind::DirectRoutingCall, r#"{"id":"x","startDateTime":"2019-11-01T00:00:08Z","finalSipCode":"200"}"#, "finalSipCode: invalid type: string \"200\", expected i32"),
            (LogKind::PstnCall, r#"{"id":"x","startDateTime":"2019-11-01T00:00:08Z","charge":1e3}"#, "charge: 1e+3 is not a decimal amount such as 0.00 or 12.5"),
            (LogKind::PstnCall, r#"{"id":"x","startDateTime":"2019-11-01T00:00:08Z","cost":1}"#, "cost: 'cost' is not a property of the type at '.'"),
            (LogKind::PstnCall, r#"{"id":"x","startDateTime":"2019-11-01T00:00:08Z","callDurationSource":"carrier"}"#,
                "callDurationSource: 'carrier' is not a member of microsoft.graph.callRecords.pstnCallDurationSource; expected one of: microsoft, operator"),
        ];
        for (kind, text, expected) in cases {
            assert_eq!(
                parse_log_row(kind, text.as_bytes()).unwrap_err().to_string(),
                expected,
                "{text}"
            );
        }
    }
}
