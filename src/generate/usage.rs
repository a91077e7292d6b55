//! Usage-log rows beside the call records, as the v1.0 and beta log functions serve them.
//!
//! Every PSTN party of a generated call gets one row: a `pstnCallLogRow` when its leg went over
//! a Calling Plan, Audio Conferencing or Operator Connect, a `directRoutingLogRow` when it went
//! through one of the tenant's SBCs. Rows take their times, numbers and users from the call, so
//! reports built on the logs agree with the records. Besides those, a background of events that
//! never became call records runs through the window: failed and unanswered Direct Routing calls
//! and SMS (beta `smsLogRow`). Every row writes every declared property, `null` when unknown.

use serde_json::Value;

use super::calendar::Window;
use super::call::{LegKind, PstnLeg};
use super::directory::{Directory, Route, Trunk};
use super::sample::{self, chance, pick, weighted, Rng};
use super::vocab;
use super::wire::{self, Obj, Precision, MILLISECOND, SECOND};
use super::Generated;

/// Graph's `failureDateTime` when a call did not fail.
const NO_FAILURE: &str = "0001-01-01T00:00:00Z";

/// Final SIP code, phrase and sub-codes of established Direct Routing calls. Graph's own example
/// reports `0` / `540000` / `BYE`; most rows carry the `200` of the answered INVITE.
const SIP_SUCCESSES: &[(vocab::SipOutcome, u32)] =
    &[((200, "BYE", &[540200, 560200]), 85), ((0, "BYE", &[540000]), 15)];

/// Standalone (failed or unanswered) Direct Routing calls per call generated, when every phone
/// user goes through an SBC; scaled by the share that does. Tuned so that they make up about a
/// fifth of all Direct Routing rows.
const STANDALONE_DIRECT_ROUTING_RATE: f64 = 0.04;

/// SMS per phone user per day.
const SMS_RATE: f64 = 0.05;

/// The rows for a call's PSTN parties, in participant order.
pub(super) fn rows(rng: &mut Rng, directory: &Directory, legs: &[PstnLeg]) -> Vec<Generated> {
    legs.iter()
        .map(|leg| match leg.trunk {
            Some(trunk) => Generated::DirectRoutingCall(direct_routing_row(rng, directory, leg, trunk)),
            None => Generated::PstnCall(pstn_row(rng, directory, leg)),
        })
        .collect()
}

/// Who is on each end of a leg, as numbers and countries.
struct Numbers {
    caller: String,
    callee: String,
    /// The outside party's country.
    external_country: usize,
    /// Country of the tenant's side: the user's number or the conferencing bridge.
    own_country: usize,
    inbound: bool,
}

fn numbers(directory: &Directory, leg: &PstnLeg, masked_digits: usize) -> Numbers {
    let phone = directory.person(leg.phone);
    let tenant_country = directory.telephony.country;
    let (own, own_country) = match leg.kind {
        LegKind::UserIn | LegKind::UserOut => (
            directory.line(leg.user).number.as_str(),
            directory.person(leg.user).country,
        ),
        LegKind::ConferenceIn { toll_free: true } => (directory.telephony.bridge_toll_free.as_str(), tenant_country),
        LegKind::ConferenceIn { toll_free: false } | LegKind::ConferenceOut => {
            (directory.telephony.bridge_toll.as_str(), tenant_country)
        }
    };
    let external = if directory.masks(phone.country) {
        mask(&phone.id, masked_digits)
    } else {
        phone.id.clone()
    };
    let inbound = matches!(leg.kind, LegKind::UserIn | LegKind::ConferenceIn { .. });
    let (caller, callee) = if inbound {
        (external, own.to_owned())
    } else {
        (own.to_owned(), external)
    };
    Numbers {
        caller,
        callee,
        external_country: phone.country,
        own_country,
        inbound,
    }
}

/// `+14255550172` → `+1425555****`: privacy rules hide the last digits of outside numbers.
fn mask(number: &str, digits: usize) -> String {
    let keep = number.len().saturating_sub(digits);
    let mut masked = number[..keep].to_owned();
    masked.extend(std::iter::repeat_n('*', number.len() - keep));
    masked
}

/// An amount in `1 / 10^scale` units as an Edm.Decimal that keeps its scale (`0.00`, `0.0150`).
/// serde_json's `arbitrary_precision` keeps the number's text exactly as parsed.
pub(super) fn decimal(units: i64, scale: u32) -> Value {
    let factor = 10i64.pow(scale);
    let text = format!("{}.{:0width$}", units / factor, units % factor, width = scale as usize);
    serde_json::from_str(&text).expect("a plain decimal is valid JSON")
}

/// A SIP Call-ID in the shape Graph's PSTN log shows: `1835317186_112562680@61.221.3.176`.
fn sip_call_id(rng: &mut Rng) -> String {
    format!(
        "{}_{}@{}.{}.{}.{}",
        sample::between(rng, 100_000_000, 4_000_000_000),
        sample::between(rng, 10_000_000, 999_999_999),
        sample::between(rng, 13, 223),
        sample::between(rng, 0, 255),
        sample::between(rng, 0, 255),
        sample::between(rng, 1, 254)
    )
}

fn put_user(row: &mut Obj, directory: &Directory, user: usize) {
    let person = directory.person(user);
    row.put("userId", person.id.as_str());
    let text = |text: Option<&str>| text.map_or(Value::Null, Value::from);
    row.put("userPrincipalName", text(person.user_principal_name()));
    row.put("userDisplayName", text(person.display_name()));
}

fn pstn_row(rng: &mut Rng, directory: &Directory, leg: &PstnLeg) -> Value {
    let telephony = &directory.telephony;
    let tenant = &vocab::COUNTRIES[telephony.country];
    let numbers = numbers(directory, leg, 4);
    let conference = matches!(leg.kind, LegKind::ConferenceIn { .. } | LegKind::ConferenceOut);
    let usage_country = if conference {
        telephony.country
    } else {
        directory.person(leg.user).country
    };
    let (call_type, license, inventory, operator) = match leg.kind {
        LegKind::UserIn | LegKind::UserOut => {
            let line = directory.line(leg.user);
            let operator = match (line.route, telephony.carrier) {
                (Route::OperatorConnect, Some(carrier)) => carrier,
                _ => "Microsoft",
            };
            let call_type = if numbers.inbound { "user_in" } else { "user_out" };
            (call_type, line.license, "Subscriber", operator)
        }
        LegKind::ConferenceIn { toll_free } => (
            "conf_in",
            vocab::CONFERENCING_LICENSE,
            if toll_free { "Toll free" } else { "Service" },
            "Microsoft",
        ),
        LegKind::ConferenceOut => ("conf_out", vocab::CONFERENCING_LICENSE, "Service", "Microsoft"),
    };
    let domestic = numbers.external_country == usage_country;
    let duration = if leg.connected {
        (leg.end - leg.start) / SECOND
    } else {
        0
    };
    // Billed per started minute, in thousandths of the currency. Calls in are free except to
    // toll-free numbers; Operator Connect carriers bill the tenant themselves.
    let minutes = (duration + 59) / 60;
    let (domestic_rate, international_rate) = tenant.rates;
    let (rate, connection) = match leg.kind {
        _ if operator != "Microsoft" => (0, 0),
        LegKind::UserIn | LegKind::ConferenceIn { toll_free: false } => (0, 0),
        LegKind::ConferenceIn { toll_free: true } => (domestic_rate + 10, 0),
        LegKind::UserOut | LegKind::ConferenceOut if domestic => (domestic_rate, 0),
        LegKind::UserOut | LegKind::ConferenceOut => (international_rate, international_rate / 2),
    };
    let cents = |thousandths: i64| (thousandths + 5) / 10;
    let connection = if minutes > 0 { connection } else { 0 };

    let mut row = Obj::with_capacity(23);
    row.put("id", sample::guid(rng));
    row.put("callId", sip_call_id(rng));
    put_user(&mut row, directory, leg.user);
    row.put("startDateTime", wire::datetime(leg.start, Precision::Ticks));
    row.put(
        "endDateTime",
        wire::datetime(leg.start + duration * SECOND, Precision::Ticks),
    );
    row.put("duration", duration);
    row.put("charge", decimal(cents(rate * minutes), 2));
    row.put("callType", call_type);
    row.put("currency", tenant.currency);
    row.put("calleeNumber", numbers.callee);
    row.put("usageCountryCode", vocab::COUNTRIES[usage_country].code);
    row.put("tenantCountryCode", tenant.code);
    row.put("connectionCharge", decimal(cents(connection), 2));
    row.put("callerNumber", numbers.caller);
    // Calls in have no destination context; the destination is the number called.
    row.put(
        "destinationContext",
        match (numbers.inbound, domestic) {
            (true, _) => Value::Null,
            (false, true) => Value::from("Domestic"),
            (false, false) => Value::from("International"),
        },
    );
    let destination = if numbers.inbound {
        numbers.own_country
    } else {
        numbers.external_country
    };
    row.put("destinationName", vocab::COUNTRIES[destination].name);
    row.put(
        "conferenceId",
        leg.conference_id
            .as_deref()
            .filter(|_| conference)
            .map_or(Value::Null, Value::from),
    );
    row.put("licenseCapability", license);
    row.put("inventoryType", inventory);
    row.put("operator", operator);
    row.put(
        "callDurationSource",
        if operator == "Microsoft" {
            "microsoft"
        } else {
            "operator"
        },
    );
    // Beta only. Derived rather than drawn, so the random stream (and every other row and
    // record of a seed) is the same as without them.
    row.put("administrativeUnitInfos", directory.administrative_units(leg.user));
    row.put("otherPartyCountryCode", vocab::COUNTRIES[numbers.external_country].code);
    let client = matches!(leg.kind, LegKind::UserOut | LegKind::UserIn).then(|| client_addresses(&leg.session_id));
    let address = |pick: fn(&(String, String, String)) -> &String| {
        client.as_ref().map_or(Value::Null, |c| Value::from(pick(c).as_str()))
    };
    row.put("clientLocalIpV4Address", address(|c| &c.0));
    row.put("clientLocalIpV6Address", address(|c| &c.1));
    row.put("clientPublicIpV4Address", address(|c| &c.2));
    row.put("clientPublicIpV6Address", Value::Null);
    row.into_value()
}

/// A Teams client's local IPv4 and IPv6 and public IPv4 addresses, from the call's session id.
fn client_addresses(session_id: &str) -> (String, String, String) {
    use sha2::{Digest, Sha256};
    let b = Sha256::digest(session_id.as_bytes());
    (
        format!("10.{}.{}.{}", b[0], b[1], b[2].max(1)),
        format!("fd00::{:02x}{:02x}:{:02x}{:02x}", b[3], b[4], b[5], b[6].max(1)),
        format!("203.0.113.{}", b[7].max(1)),
    )
}

/// The beta-only properties of a Direct Routing row.
fn put_direct_routing_beta(row: &mut Obj, directory: &Directory, user: usize, other_country: usize) {
    row.put("administrativeUnitInfos", directory.administrative_units(user));
    row.put("otherPartyCountryCode", vocab::COUNTRIES[other_country].code);
    row.put("transferorCorrelationId", Value::Null);
    row.put("userCountryCode", vocab::COUNTRIES[directory.person(user).country].code);
}

/// How a Direct Routing call ended: final SIP code, Microsoft sub-code and phrase.
struct Outcome {
    code: i64,
    sub_reason: i64,
    phrase: &'static str,
}

fn outcome(rng: &mut Rng, success: bool) -> Outcome {
    let (code, phrase, sub_reasons) = *weighted(rng, if success { SIP_SUCCESSES } else { vocab::SIP_FAILURES });
    Outcome {
        code,
        sub_reason: *pick(rng, sub_reasons),
        phrase,
    }
}

/// A Teams datacenter serving a country.
fn datacenter(rng: &mut Rng, country: usize) -> &'static str {
    let (_, datacenters) = vocab::DATACENTERS
        .iter()
        .find(|(datacenter_country, _)| *datacenter_country == country)
        .unwrap_or(&vocab::DATACENTERS[0]);
    pick::<&'static str>(rng, datacenters)
}

/// The times of a Direct Routing row: invite, start, end (established calls) and failure.
struct Times {
    invite: i64,
    start: i64,
    end: Option<i64>,
    failure: Option<i64>,
}

impl Times {
    /// A failed call invited at `invite` and given up at `failure`; Graph's start time is one
    /// or the other.
    fn failed(rng: &mut Rng, invite: i64, failure: i64) -> Times {
        Times {
            invite,
            start: if chance(rng, 0.5) { invite } else { failure },
            end: None,
            failure: Some(failure),
        }
    }
}

/// What a Direct Routing row says beyond its ids and user.
struct DirectRoutingCall<'a> {
    times: Times,
    call_type: &'a str,
    caller: String,
    callee: String,
    /// Datacenters of the media path and of signaling.
    locations: (&'static str, &'static str),
    outcome: Outcome,
    trunk: &'a Trunk,
}

fn put_direct_routing(row: &mut Obj, call: DirectRoutingCall<'_>) {
    let DirectRoutingCall {
        times,
        call_type,
        caller,
        callee,
        locations,
        outcome,
        trunk,
    } = call;
    let ticks = |ticks: i64| wire::datetime(ticks, Precision::Ticks);
    row.put("startDateTime", ticks(times.start));
    row.put("inviteDateTime", ticks(times.invite));
    row.put("failureDateTime", times.failure.map_or(Value::from(NO_FAILURE), ticks));
    row.put("endDateTime", times.end.map_or(Value::Null, ticks));
    row.put("duration", times.end.map_or(0, |end| (end - times.start) / SECOND));
    row.put("callType", call_type);
    row.put("successfulCall", times.end.is_some());
    row.put("callerNumber", caller);
    row.put("calleeNumber", callee);
    row.put("mediaPathLocation", locations.0);
    row.put("signalingLocation", locations.1);
    row.put("finalSipCode", outcome.code);
    row.put("callEndSubReason", outcome.sub_reason);
    row.put("finalSipCodePhrase", outcome.phrase);
    row.put("trunkFullyQualifiedDomainName", trunk.fqdn.as_str());
    row.put("mediaBypassEnabled", trunk.media_bypass);
}

/// Floors to the millisecond, the resolution of Graph's Direct Routing times.
fn milliseconds(ticks: i64) -> i64 {
    ticks - ticks.rem_euclid(MILLISECOND)
}

fn direct_routing_row(rng: &mut Rng, directory: &Directory, leg: &PstnLeg, trunk: usize) -> Value {
    let trunk = &directory.telephony.trunks[trunk];
    let numbers = numbers(directory, leg, 3);
    // The INVITE goes out a moment before the call is answered (longer when it rings).
    let ring = if numbers.inbound {
        sample::between(rng, 300, 8_000)
    } else {
        sample::between(rng, 300, 4_000)
    } * MILLISECOND;
    let times = if leg.connected {
        let duration = (leg.end - leg.start) / SECOND;
        Times {
            invite: milliseconds(leg.start - ring),
            start: leg.start,
            end: Some(leg.start + duration * SECOND),
            failure: None,
        }
    } else {
        Times::failed(rng, leg.start, leg.end)
    };
    let outcome = outcome(rng, leg.connected);
    let call_type = if numbers.inbound { "ByotIn" } else { "ByotOut" };
    let media = datacenter(rng, directory.person(leg.user).country);
    let signaling = datacenter(rng, trunk.country);

    let mut row = Obj::with_capacity(25);
    row.put("id", sample::guid(rng));
    row.put("correlationId", leg.session_id.as_str());
    put_user(&mut row, directory, leg.user);
    put_direct_routing(
        &mut row,
        DirectRoutingCall {
            times,
            call_type,
            caller: numbers.caller,
            callee: numbers.callee,
            locations: (media, signaling),
            outcome,
            trunk,
        },
    );
    put_direct_routing_beta(&mut row, directory, leg.user, numbers.external_country);
    row.into_value()
}

#[derive(Clone, Copy)]
enum Event {
    Sms,
    FailedDirectRouting,
}

/// Rows that belong to no call record, planned up front and emitted among the calls at positions
/// proportional to their time, so they come roughly in time order through the run.
pub(super) struct Background {
    /// (position due, time, event), sorted by time and so by position.
    events: Vec<(u64, i64, Event)>,
    next: usize,
    direct_routing_users: Vec<usize>,
    sms_users: Vec<usize>,
}

impl Background {
    pub(super) fn plan(rng: &mut Rng, directory: &Directory, window: &Window, calls: u64, days: u32) -> Background {
        let is_direct = |user: &usize| matches!(directory.line(*user).route, Route::DirectRouting(_));
        let direct_routing_users: Vec<usize> = directory.phone_users.iter().copied().filter(is_direct).collect();
        // SMS needs a Calling Plan or Operator Connect number.
        let mut sms_users: Vec<usize> = directory
            .phone_users
            .iter()
            .copied()
            .filter(|user| !is_direct(user))
            .collect();
        if sms_users.is_empty() {
            sms_users.clone_from(&directory.phone_users);
        }
        let direct_share = direct_routing_users.len() as f64 / directory.phone_users.len() as f64;
        let n_failed = (calls as f64 * STANDALONE_DIRECT_ROUTING_RATE * direct_share).round();
        let n_sms = (f64::from(days.max(1)) * sms_users.len() as f64 * SMS_RATE)
            .round()
            .min(calls as f64 / 2.0);
        let span = (window.end - window.start).max(1);
        let mut events: Vec<(u64, i64, Event)> = (0..n_failed as u64)
            .map(|_| Event::FailedDirectRouting)
            .chain((0..n_sms as u64).map(|_| Event::Sms))
            .map(|event| {
                let time = window.sample_start(rng, false);
                let position = (i128::from(time - window.start) * i128::from(calls) / i128::from(span)) as u64;
                (position.min(calls.saturating_sub(1)), time, event)
            })
            .collect();
        // Stable: equal times keep their planned order.
        events.sort_by_key(|&(_, time, _)| time);
        Background {
            events,
            next: 0,
            direct_routing_users,
            sms_users,
        }
    }

    /// Emits the events due at or before `position`; `None` emits all that are left.
    pub(super) fn emit_due(
        &mut self,
        rng: &mut Rng,
        directory: &Directory,
        position: Option<u64>,
        emit: &mut impl FnMut(Generated),
    ) {
        while let Some(&(due, time, event)) = self.events.get(self.next) {
            if position.is_some_and(|position| due > position) {
                break;
            }
            self.next += 1;
            emit(match event {
                Event::Sms => {
                    let user = *pick(rng, &self.sms_users);
                    Generated::SmsLog(sms_row(rng, directory, user, time))
                }
                Event::FailedDirectRouting => {
                    let user = *pick(rng, &self.direct_routing_users);
                    Generated::DirectRoutingCall(failed_direct_routing_row(rng, directory, user, time))
                }
            });
        }
    }
}

/// An outside party for a user: mostly someone in the user's own country.
fn outside_party(rng: &mut Rng, directory: &Directory, user: usize, domestic: f64) -> usize {
    let local = &directory.phones_by_country[directory.person(user).country];
    if !local.is_empty() && chance(rng, domestic) {
        *pick(rng, local)
    } else {
        *pick(rng, &directory.phones)
    }
}

/// A Direct Routing call that never became a call record: unanswered, busy or failed.
fn failed_direct_routing_row(rng: &mut Rng, directory: &Directory, user: usize, time: i64) -> Value {
    let line = directory.line(user);
    let Route::DirectRouting(trunk) = line.route else {
        unreachable!("standalone Direct Routing rows are for Direct Routing users")
    };
    let trunk = &directory.telephony.trunks[trunk];
    let call_type = *weighted(
        rng,
        &[
            ("ByotIn", 44),
            ("ByotOut", 44),
            ("ByotOutUserForwarding", 9),
            ("ByotInUserForwarding", 3),
        ],
    );
    let phone = directory.person(outside_party(rng, directory, user, 0.7));
    let external = if directory.masks(phone.country) {
        mask(&phone.id, 3)
    } else {
        phone.id.clone()
    };
    let (caller, callee) = if call_type.starts_with("ByotIn") {
        (external, line.number.clone())
    } else {
        (line.number.clone(), external)
    };
    let outcome = outcome(rng, false);
    // Unanswered calls ring for a while before they give up; errors come back at once.
    let ring = match outcome.code {
        486..=487 | 480 => sample::between(rng, 5_000, 40_000),
        408 => sample::between(rng, 10_000, 32_000),
        _ => sample::between(rng, 80, 3_000),
    } * MILLISECOND;
    // The sampled time is the row's start, which Graph sets to the invite or the failure.
    let time = milliseconds(time);
    let times = if chance(rng, 0.5) {
        Times {
            invite: time,
            start: time,
            end: None,
            failure: Some(time + ring),
        }
    } else {
        Times {
            invite: time - ring,
            start: time,
            end: None,
            failure: Some(time),
        }
    };
    let media = datacenter(rng, directory.person(user).country);
    let signaling = datacenter(rng, trunk.country);

    let mut row = Obj::with_capacity(25);
    row.put("id", sample::guid(rng));
    row.put("correlationId", sample::guid(rng));
    put_user(&mut row, directory, user);
    put_direct_routing(
        &mut row,
        DirectRoutingCall {
            times,
            call_type,
            caller,
            callee,
            locations: (media, signaling),
            outcome,
            trunk,
        },
    );
    put_direct_routing_beta(&mut row, directory, user, phone.country);
    row.into_value()
}

/// One SMS a user sent or received (beta `smsLogRow`).
fn sms_row(rng: &mut Rng, directory: &Directory, user: usize, time: i64) -> Value {
    let person = directory.person(user);
    let line = directory.line(user);
    let tenant = &vocab::COUNTRIES[directory.telephony.country];
    let outbound = chance(rng, 0.55);
    let phone = directory.person(outside_party(rng, directory, user, 0.85));
    let external = if directory.masks(phone.country) {
        mask(&phone.id, 3)
    } else {
        phone.id.clone()
    };
    let domestic = phone.country == person.country;
    let units = *weighted(rng, &[(1i64, 80), (2, 15), (3, 5)]);
    // Sending costs per unit (in ten-thousandths); receiving is free, as in Graph's example.
    let charge = if outbound {
        decimal(units * if domestic { 75 } else { 400 }, 4)
    } else {
        decimal(0, 2)
    };
    let (source, destination, destination_country) = if outbound {
        (line.number.clone(), external, phone.country)
    } else {
        (external, line.number.clone(), person.country)
    };

    let mut row = Obj::with_capacity(19);
    row.put("id", sample::guid(rng));
    row.put("smsId", sample::guid(rng));
    put_user(&mut row, directory, user);
    row.put("userCountryCode", vocab::COUNTRIES[person.country].code);
    row.put("tenantCountryCode", tenant.code);
    row.put("sourceNumber", source);
    row.put("destinationNumber", destination);
    row.put("sentDateTime", wire::datetime(time, Precision::Ticks));
    row.put("callCharge", charge);
    row.put("currency", tenant.currency);
    row.put("smsType", if outbound { "outbound" } else { "inbound" });
    row.put(
        "destinationContext",
        if domestic { "Domestic" } else { "International" },
    );
    row.put("destinationName", vocab::COUNTRIES[destination_country].name);
    row.put("otherPartyCountryCode", vocab::COUNTRIES[phone.country].code);
    row.put("licenseCapability", vocab::SMS_LICENSE);
    row.put("smsUnits", units);
    row.put("administrativeUnitInfos", directory.administrative_units(user));
    row.into_value()
}

/// The audio-conferencing dial-out report (beta `pstnOnlineMeetingDialoutReport`), tallied from
/// the `conf_out` PSTN rows as they are made: one entry per UTC day, user, usage country,
/// destination context and currency, emitted after everything else.
#[derive(Default)]
pub(super) struct DialoutTally {
    /// Key: day, user id, user principal name, display name, usage country, destination
    /// context, currency. Value: calls, seconds, charge in cents.
    days: std::collections::BTreeMap<[String; 7], (i64, i64, i64)>,
}

impl DialoutTally {
    pub(super) fn count(&mut self, item: &Generated) {
        let Generated::PstnCall(row) = item else {
            return;
        };
        if row["callType"] != "conf_out" {
            return;
        }
        let text = |name: &str| match &row[name] {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let cents = |name: &str| text(name).replace('.', "").parse::<i64>().unwrap_or(0);
        let day = text("startDateTime").chars().take(10).collect::<String>();
        let key = [
            day,
            text("userId"),
            text("userPrincipalName"),
            text("userDisplayName"),
            text("usageCountryCode"),
            text("destinationContext"),
            text("currency"),
        ];
        let entry = self.days.entry(key).or_default();
        entry.0 += 1;
        entry.1 += row["duration"].as_i64().unwrap_or(0);
        entry.2 += cents("charge") + cents("connectionCharge");
    }

    pub(super) fn emit(self, emit: &mut impl FnMut(Generated)) {
        for ([day, user_id, upn, name, location, context, currency], (calls, seconds, cents)) in self.days {
            let text = |text: String| {
                if text.is_empty() {
                    Value::Null
                } else {
                    Value::from(text)
                }
            };
            let mut row = Obj::with_capacity(10);
            row.put("usageDate", day);
            row.put("userId", text(user_id));
            row.put("userPrincipalName", text(upn));
            row.put("userDisplayName", text(name));
            row.put("usageLocation", text(location));
            row.put("destinationContext", text(context));
            row.put("currency", text(currency));
            row.put("totalCalls", calls);
            row.put("totalCallSeconds", seconds);
            row.put("totalCallCharge", decimal(cents, 2));
            emit(Generated::PstnOnlineMeetingDialout(row.into_value()));
        }
    }
}

/// Users blocked from PSTN calling, and some let back (beta `pstnBlockedUsersLogRow`): one in
/// 20 phone users, at times spread over the window, derived rather than drawn so the random
/// stream stays as it is.
pub(super) fn blocked_users(directory: &Directory, window: &Window, emit: &mut impl FnMut(Generated)) {
    const REASONS: &[&str] = &[
        "Suspected toll fraud",
        "Unusual international calling",
        "Blocked by administrator",
    ];
    let span = (window.end - window.start).max(1);
    for (n, &user) in directory.phone_users.iter().enumerate().step_by(20) {
        let blocked_at = window.start + (i64::try_from(n).unwrap_or(0) * 7_919 * SECOND * 60) % span;
        let mut events = vec![(blocked_at, "blocked")];
        let unblocked_at = blocked_at + 26 * 3600 * SECOND;
        if n % 40 == 0 && unblocked_at < window.end {
            events.push((unblocked_at, "unblocked"));
        }
        for (at, mode) in events {
            let mut row = Obj::with_capacity(8);
            row.put("blockDateTime", wire::datetime(milliseconds(at), Precision::Ticks));
            row.put(
                "blockReason",
                if mode == "blocked" {
                    Value::from(REASONS[n % REASONS.len()])
                } else {
                    Value::Null
                },
            );
            row.put("remediationId", format!("{:08x}-0000-4000-8000-{:012x}", n, user));
            row.put("userBlockMode", mode);
            put_user(&mut row, directory, user);
            row.put("userTelephoneNumber", directory.line(user).number.as_str());
            emit(Generated::PstnBlockedUser(row.into_value()));
        }
    }
}
