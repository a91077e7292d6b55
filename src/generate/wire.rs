//! Wire-format helpers: instants, durations, numbers and JSON objects as Graph writes them.
//!
//! Time is kept as `i64` ticks of 100 ns since the Unix epoch, the resolution of Graph's
//! seven fractional digits, so every instant the generator picks is exactly representable.
//! Formatting is done by hand because it runs millions of times per large run.

use serde_json::{Map, Value};

/// Ticks are 100 ns, the finest unit Graph prints.
pub(super) const MILLISECOND: i64 = 10_000;
pub(super) const SECOND: i64 = 1_000 * MILLISECOND;
pub(super) const MINUTE: i64 = 60 * SECOND;
pub(super) const HOUR: i64 = 60 * MINUTE;
pub(super) const DAY: i64 = 24 * HOUR;

/// Ticks since the Unix epoch for an `OffsetDateTime`, rounded down to 100 ns.
pub(super) fn ticks_of(instant: time::OffsetDateTime) -> i64 {
    let nanos = instant.unix_timestamp_nanos();
    // The generator only handles years 1970..=9999, well inside i64 ticks.
    i64::try_from(nanos.div_euclid(100)).expect("instant fits in i64 ticks")
}

/// Day of the week for a day number since the epoch: 0 = Sunday … 6 = Saturday.
pub(super) fn weekday(day: i64) -> i64 {
    // 1970-01-01 was a Thursday.
    (day + 4).rem_euclid(7)
}

/// Whether a record prints instants with their fraction or in whole seconds.
///
/// Graph does both (`2020-02-25T18:52:21.2169889Z`, `2023-09-25T09:28:38Z`). Coarse records
/// floor every instant to the second; flooring is monotonic, so `start <= end` survives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Precision {
    Ticks,
    Seconds,
}

impl Precision {
    pub(super) fn apply(self, ticks: i64) -> i64 {
        match self {
            Precision::Ticks => ticks,
            Precision::Seconds => ticks - ticks.rem_euclid(SECOND),
        }
    }
}

/// An Edm.DateTimeOffset string in UTC with up to 7 fraction digits, trailing zeros trimmed.
pub(super) fn datetime(ticks: i64, precision: Precision) -> Value {
    let ticks = precision.apply(ticks);
    let day = ticks.div_euclid(DAY);
    let in_day = ticks.rem_euclid(DAY);
    let (year, month, day_of_month) = civil_from_days(day);
    let seconds = in_day / SECOND;
    let fraction = in_day % SECOND;
    let mut out = String::with_capacity(28);
    push_padded(&mut out, year, 4);
    out.push('-');
    push_padded(&mut out, month, 2);
    out.push('-');
    push_padded(&mut out, day_of_month, 2);
    out.push('T');
    push_padded(&mut out, seconds / 3600, 2);
    out.push(':');
    push_padded(&mut out, seconds / 60 % 60, 2);
    out.push(':');
    push_padded(&mut out, seconds % 60, 2);
    push_fraction(&mut out, fraction);
    out.push('Z');
    Value::String(out)
}

/// An Edm.Duration string the way .NET `XmlConvert` writes it (`PT0.016S`, `PT1M30.5S`).
pub(super) fn duration(ticks: i64) -> Value {
    let ticks = ticks.max(0);
    let total_seconds = ticks / SECOND;
    let fraction = ticks % SECOND;
    let (hours, minutes, seconds) = (total_seconds / 3600, total_seconds / 60 % 60, total_seconds % 60);
    let mut out = String::with_capacity(16);
    out.push_str("PT");
    if hours > 0 {
        push_number(&mut out, hours);
        out.push('H');
    }
    if minutes > 0 {
        push_number(&mut out, minutes);
        out.push('M');
    }
    if seconds > 0 || fraction > 0 || (hours == 0 && minutes == 0) {
        push_number(&mut out, seconds);
        push_fraction(&mut out, fraction);
        out.push('S');
    }
    Value::String(out)
}

/// An Edm.Single as the shortest decimal that survives a round trip.
///
/// Whole values print as integers (`0`, `1`) as in Graph's examples, instead of serde_json's `0.0`.
pub(super) fn single(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        // Exact: the value is integral and far inside i64.
        Value::from(value as i64)
    } else {
        Value::from(value)
    }
}

/// Rounds to a number of decimals, so Edm.Single values print short like Graph's (`0.27`).
pub(super) fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A JSON object under construction; keys keep insertion order (serde_json `preserve_order`).
pub(super) struct Obj(Map<String, Value>);

impl Obj {
    pub(super) fn new() -> Obj {
        Obj(Map::new())
    }

    /// Sizing the map up front spares the index table's rehashes, a visible cost in profiles.
    pub(super) fn with_capacity(capacity: usize) -> Obj {
        Obj(Map::with_capacity(capacity))
    }

    pub(super) fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), value.into());
    }

    pub(super) fn put_some<T: Into<Value>>(&mut self, key: &str, value: Option<T>) {
        if let Some(value) = value {
            self.put(key, value);
        }
    }

    pub(super) fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    pub(super) fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Proleptic Gregorian date for a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day_of_month = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day_of_month)
}

fn push_padded(out: &mut String, value: i64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut remaining = value.unsigned_abs();
    let mut len = 0;
    while remaining > 0 || len == 0 {
        digits[len] = b'0' + (remaining % 10) as u8;
        remaining /= 10;
        len += 1;
    }
    for _ in len..width {
        out.push('0');
    }
    for &digit in digits[..len].iter().rev() {
        out.push(char::from(digit));
    }
}

fn push_number(out: &mut String, value: i64) {
    push_padded(out, value, 1);
}

/// Writes `.ddddddd` with trailing zeros trimmed, or nothing for a zero fraction.
fn push_fraction(out: &mut String, fraction_ticks: i64) {
    if fraction_ticks == 0 {
        return;
    }
    let mut digits = fraction_ticks;
    let mut width = 7;
    while digits % 10 == 0 {
        digits /= 10;
        width -= 1;
    }
    out.push('.');
    push_padded(out, digits, width);
}
