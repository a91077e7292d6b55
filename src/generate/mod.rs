//! Seeded, deterministic generator of realistic call records and usage logs for demos, load
//! tests and benches.
//!
//! It owns the shape of synthetic data: a stable directory of people, devices and phone numbers
//! per seed, the mix of calls and meetings, their timing, media quality and failures, the JSON
//! of each callRecord in the full-details ingest shape (sessions, segments and participants_v2
//! inline), and the usage-log rows that go with
//! them (pstnCallLogRow, directRoutingLogRow, beta smsLogRow). Same options give
//! the same bytes.
//!
//! It never does IO, never touches the store and never reads the clock or the environment:
//! callers pass `until` and receive values through a callback, so the CLI decides whether they
//! go to a file, to the ingest path or over HTTP. Start with `call.rs` for the shape of a call,
//! `media.rs` for the quality model and `usage.rs` for the logs.

mod calendar;
mod call;
mod directory;
mod media;
mod sample;
mod usage;
mod vocab;
mod wire;

#[cfg(test)]
mod tests;

use rand::SeedableRng as _;
use serde_json::Value;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Number of distinct calls; re-published versions of some calls come on top.
    pub calls: u64,
    /// Seeds everything: directory, calls and order.
    pub seed: u64,
    /// Length of the window that start times fall in; 0 counts as 1.
    pub days: u32,
    /// Start times fall in `[until - days, until)`. Ends may fall later, as real calls do.
    pub until: time::OffsetDateTime,
}

/// One generated item: a callRecord or a usage-log row, each a JSON object in its ingest shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Generated {
    /// A callRecord with `sessions` (and their `segments`) and `participants_v2` inline.
    CallRecord(Value),
    /// A v1.0 `pstnCallLogRow` (Calling Plan, Audio Conferencing or Operator Connect).
    PstnCall(Value),
    /// A v1.0 `directRoutingLogRow`.
    DirectRoutingCall(Value),
    /// A beta `smsLogRow`.
    SmsLog(Value),
    /// A beta `pstnBlockedUsersLogRow`.
    PstnBlockedUser(Value),
    /// A beta `pstnOnlineMeetingDialoutReport` entry for one day, with `usageDate`.
    PstnOnlineMeetingDialout(Value),
}

impl Generated {
    /// The JSON object, whatever its kind.
    pub fn value(&self) -> &Value {
        match self {
            Generated::CallRecord(value)
            | Generated::PstnCall(value)
            | Generated::DirectRoutingCall(value)
            | Generated::SmsLog(value)
            | Generated::PstnBlockedUser(value)
            | Generated::PstnOnlineMeetingDialout(value) => value,
        }
    }
}

/// Calls `emit` once per item in a deterministic order. Same options → same items → same bytes.
///
/// Records: one callRecord per call with `organizer_v2`, `participants_v2` and `sessions` (with
/// their `segments`) inline. About 3 % of calls are emitted twice: first as version 1 without
/// late data, then a few records later as version 2 with all of it and a later
/// `lastModifiedDateTime`, as Graph re-publishes records. Records come in generation order, not
/// sorted by time.
///
/// Usage logs: right after a call's first record come its rows, one per PSTN participant: a
/// `PstnCall` row, or a `DirectRoutingCall` row when the leg went through the tenant's SBC.
/// Re-published versions bring no rows. Direct Routing calls that never became records (failed
/// or unanswered) and SMS come in between the calls, at positions proportional to their time.
/// After them come the beta-only kinds: users blocked from (and let back to) PSTN calling, and
/// the daily dial-out report tallied from the `conf_out` rows. Every row starts inside
/// `[until - days, until)`.
pub fn generate(options: &GenerateOptions, mut emit: impl FnMut(Generated)) {
    let mut rng = sample::Rng::seed_from_u64(options.seed);
    let n_users = usize::try_from(options.calls / 20).unwrap_or(usize::MAX).max(20);
    let directory = directory::build(&mut rng, n_users);
    let window = calendar::Window::new(options.until, options.days, directory.utc_offset_minutes);
    let mut background = usage::Background::plan(&mut rng, &directory, &window, options.calls, options.days);

    // Later versions wait here until their turn: (position due, record), sorted by position.
    let mut pending: Vec<(u64, Value)> = Vec::new();
    let mut dialouts = usage::DialoutTally::default();
    for position in 0..options.calls {
        let call = call::generate(&mut rng, &directory, &window);
        emit(Generated::CallRecord(call.first));
        for row in usage::rows(&mut rng, &directory, &call.legs) {
            dialouts.count(&row);
            emit(row);
        }
        if let Some(later) = call.later {
            let due = position + sample::between(&mut rng, 2, 12) as u64;
            let slot = pending.partition_point(|(pending_due, _)| *pending_due <= due);
            pending.insert(slot, (due, later));
        }
        let n_due = pending.partition_point(|(due, _)| *due <= position);
        for (_, record) in pending.drain(..n_due) {
            emit(Generated::CallRecord(record));
        }
        background.emit_due(&mut rng, &directory, Some(position), &mut emit);
    }
    for (_, record) in pending {
        emit(Generated::CallRecord(record));
    }
    background.emit_due(&mut rng, &directory, None, &mut emit);
    usage::blocked_users(&directory, &window, &mut emit);
    dialouts.emit(&mut emit);
}

/// The NDJSON text of one record or row: compact JSON and a trailing newline.
pub fn ndjson_line(record: &Value) -> String {
    // Records run to tens of kilobytes; starting large spares the doubling copies.
    let mut line = Vec::with_capacity(64 * 1024);
    serde_json::to_writer(&mut line, record).expect("a serde_json::Value always serializes");
    line.push(b'\n');
    String::from_utf8(line).expect("serde_json writes UTF-8")
}

/// A CQD building file for the generated offices: each office's wired and Wi-Fi subnets (the
/// addresses `media` gives people in the office) as its building, inside the corporate network,
/// and the VPN range people tunnel in through. Headerless CSV in CQD's column order.
pub fn building_file() -> String {
    let region = |country: &str| match country {
        "US" => "North America",
        "SG" => "Asia Pacific",
        _ => "Europe",
    };
    let mut lines = String::new();
    for (site, (city, _, country)) in vocab::SITES.iter().enumerate() {
        let country = vocab::COUNTRIES[*country].code;
        for second in 10 + site * 10..10 + site * 10 + 4 {
            for (third, network) in [(0, "Wired"), (128, "Wi-Fi")] {
                lines.push_str(&format!(
                    "10.{second}.{third}.0,{city} {network},17,{city} Office,Contoso,Office,Main,{city},,{country},,{},1,0,0\n",
                    region(country)
                ));
            }
        }
    }
    lines.push_str("172.16.0.0,Corporate VPN,12,VPN,Contoso,Virtual,VPN,,,,,Global,1,0,1\n");
    lines
}
