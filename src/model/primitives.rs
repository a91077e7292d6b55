//! Edm primitive types whose JSON form Graph fixes: DateTimeOffset, Duration and Single.
//! Each keeps the value a client sent as exactly as Graph would print it back.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// 100-nanosecond ticks: the resolution of .NET's DateTime, and so of every Graph timestamp.
const NANOS_PER_TICK: i128 = 100;
const TICKS_PER_SECOND: i64 = 10_000_000;

/// An `Edm.DateTimeOffset`, held in UTC at 100 ns resolution.
///
/// Graph writes 0 to 7 fractional digits; we keep up to 7, trim trailing zeros and drop the dot
/// when the fraction is zero, so `2020-02-25T18:52:21.2169889Z` comes back as sent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTimeOffset(OffsetDateTime);

impl DateTimeOffset {
    /// Parses an RFC 3339 timestamp with any offset, normalising it to UTC.
    /// More than 7 fractional digits are refused rather than silently rounded.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| format!("'{text}' is not an ISO 8601 date and time such as 2024-01-31T09:30:00Z"))?;
        if let Some(fraction) = text.split_once('.').map(|(_, rest)| rest) {
            let digits = fraction.chars().take_while(char::is_ascii_digit).count();
            if digits > 7 {
                return Err(format!("'{text}' has more than 7 fractional digits"));
            }
        }
        Ok(Self(parsed.to_offset(UtcOffset::UTC)))
    }

    pub fn from_offset_date_time(value: OffsetDateTime) -> Self {
        let value = value.to_offset(UtcOffset::UTC);
        let truncated = value.nanosecond() - value.nanosecond() % 100;
        Self(value.replace_nanosecond(truncated).unwrap_or(value))
    }

    pub fn now() -> Self {
        Self::from_offset_date_time(OffsetDateTime::now_utc())
    }

    /// Ticks of 100 ns since the Unix epoch: the integer the stores index and page on.
    pub fn unix_ticks(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / NANOS_PER_TICK) as i64
    }

    pub fn from_unix_ticks(ticks: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp_nanos(ticks as i128 * NANOS_PER_TICK)
            .ok()
            .map(Self)
    }

    pub fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }
}

impl fmt::Display for DateTimeOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        write_fraction(f, t.nanosecond() / 100)?;
        f.write_str("Z")
    }
}

impl fmt::Debug for DateTimeOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Writes `.ddddddd` with trailing zeros trimmed, or nothing when the fraction is zero.
fn write_fraction(f: &mut fmt::Formatter<'_>, ticks: u32) -> fmt::Result {
    if ticks == 0 {
        return Ok(());
    }
    let digits = format!("{ticks:07}");
    write!(f, ".{}", digits.trim_end_matches('0'))
}

impl Serialize for DateTimeOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateTimeOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// An `Edm.Duration`, held as 100 ns ticks and written as an ISO 8601 duration (`PT0.016S`).
///
/// Values under a minute are written `PT{s}S`; longer ones use `D`, `H` and `M` parts as .NET's
/// `XmlConvert` does, with up to 7 fractional digits of seconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    ticks: i64,
}

impl Duration {
    pub(crate) fn from_ticks(ticks: i64) -> Self {
        Self { ticks }
    }

    /// The length in 100 ns ticks, Graph's resolution.
    pub(crate) fn ticks(self) -> i64 {
        self.ticks
    }

    /// Parses `[-]P[nD][T[nH][nM][n[.f]S]]`. Years and months are refused: their length in
    /// seconds is not fixed, and no call-quality figure is measured in them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("'{text}' is not an ISO 8601 duration such as PT0.016S or PT1M30S");
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let rest = rest.strip_prefix('P').ok_or_else(invalid)?;
        let (date_part, time_part) = match rest.split_once('T') {
            Some((d, t)) => {
                if t.is_empty() {
                    return Err(invalid());
                }
                (d, Some(t))
            }
            None => (rest, None),
        };
        if date_part.is_empty() && time_part.is_none() {
            return Err(invalid());
        }
        let mut ticks: i128 = 0;
        if !date_part.is_empty() {
            let days = date_part.strip_suffix('D').ok_or_else(invalid)?;
            let days: i128 = parse_digits(days).ok_or_else(invalid)?;
            ticks += days * 86_400 * TICKS_PER_SECOND as i128;
        }
        if let Some(mut time_part) = time_part {
            for (unit, scale) in [('H', 3_600i128), ('M', 60)] {
                if let Some(pos) = time_part.find(unit) {
                    let value = parse_digits(&time_part[..pos]).ok_or_else(invalid)?;
                    ticks += value * scale * TICKS_PER_SECOND as i128;
                    time_part = &time_part[pos + 1..];
                }
            }
            if !time_part.is_empty() {
                let seconds = time_part.strip_suffix('S').ok_or_else(invalid)?;
                let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
                let whole = parse_digits(whole).ok_or_else(invalid)?;
                if fraction.len() > 7 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "'{text}' has more than 7 fractional digits of seconds or a malformed fraction"
                    ));
                }
                let fraction_ticks: i128 = if fraction.is_empty() {
                    0
                } else {
                    format!("{fraction:0<7}").parse().map_err(|_| invalid())?
                };
                ticks += whole * TICKS_PER_SECOND as i128 + fraction_ticks;
            }
        }
        let ticks = if negative { -ticks } else { ticks };
        i64::try_from(ticks)
            .map(Self::from_ticks)
            .map_err(|_| format!("'{text}' is too long a duration"))
    }
}

fn parse_digits(text: &str) -> Option<i128> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ticks < 0 {
            f.write_str("-")?;
        }
        let total = self.ticks.unsigned_abs();
        let per_second = TICKS_PER_SECOND as u64;
        let fraction = (total % per_second) as u32;
        let mut seconds = total / per_second;
        f.write_str("P")?;
        let days = seconds / 86_400;
        seconds %= 86_400;
        if days > 0 {
            write!(f, "{days}D")?;
            if seconds == 0 && fraction == 0 {
                return Ok(());
            }
        }
        f.write_str("T")?;
        let hours = seconds / 3_600;
        let minutes = seconds % 3_600 / 60;
        seconds %= 60;
        if hours > 0 {
            write!(f, "{hours}H")?;
        }
        if minutes > 0 {
            write!(f, "{minutes}M")?;
        }
        if seconds > 0 || fraction > 0 || (hours == 0 && minutes == 0) {
            write!(f, "{seconds}")?;
            write_fraction(f, fraction)?;
            f.write_str("S")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// An `Edm.Single`, printed as the shortest text that round-trips (`0.27`, not `0.2700000107`),
/// and without a trailing `.0` for whole numbers, as Graph prints them (`"micGlitchRate": 23`).
/// OData JSON has no number for the values a measurement may fail to have: Graph sends them as
/// the strings `"NaN"`, `"INF"` and `"-INF"`, and the SDKs type these properties as number or
/// string. Ingest takes those three strings (and only those) and they are served as sent.
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Single(pub f32);

impl fmt::Debug for Single {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Single {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.is_nan() {
            return serializer.serialize_str("NaN");
        }
        if value.is_infinite() {
            return serializer.serialize_str(if value > 0.0 { "INF" } else { "-INF" });
        }
        // 2^24 is the largest range in which every whole f32 is exact.
        if value.fract() == 0.0 && value.abs() < 16_777_216.0 {
            serializer.serialize_i64(value as i64)
        } else {
            // serde_json writes an f32 as its shortest decimal text (`0.27`, not the f64 of the
            // f32's exact binary value), in text and, with `arbitrary_precision`, in a Value.
            serializer.serialize_f32(value)
        }
    }
}

impl<'de> Deserialize<'de> for Single {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through a Value: with serde_json's arbitrary_precision, a number read "as any type"
        // arrives as a private map, which only Value knows how to take.
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => match number.as_f64() {
                Some(value) if value.is_finite() && value.abs() <= f32::MAX as f64 => Ok(Self(value as f32)),
                _ => Err(de::Error::custom(format!("{number} does not fit an Edm.Single"))),
            },
            serde_json::Value::String(text) => match text.as_str() {
                "NaN" => Ok(Self(f32::NAN)),
                "INF" => Ok(Self(f32::INFINITY)),
                "-INF" => Ok(Self(f32::NEG_INFINITY)),
                _ => Err(de::Error::custom(format!(
                    "'{text}' is not an Edm.Single: a number, or one of \"NaN\", \"INF\", \"-INF\""
                ))),
            },
            other => Err(de::Error::custom(format!(
                "{other} is not an Edm.Single: a number, or one of \"NaN\", \"INF\", \"-INF\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_offset_keeps_seven_fraction_digits_and_trims_zeros() {
        for (input, output) in [
            ("2020-02-25T18:52:21.2169889Z", "2020-02-25T18:52:21.2169889Z"),
            ("2020-02-25T19:00:24.582757Z", "2020-02-25T19:00:24.582757Z"),
            ("2023-09-25T10:36:40Z", "2023-09-25T10:36:40Z"),
            ("2023-09-25T10:36:40.000Z", "2023-09-25T10:36:40Z"),
            ("2023-09-25T12:36:40.5+02:00", "2023-09-25T10:36:40.5Z"),
        ] {
            assert_eq!(DateTimeOffset::parse(input).unwrap().to_string(), output, "{input}");
        }
        assert!(DateTimeOffset::parse("2023-09-25T10:36:40.123456789Z").is_err());
        assert!(DateTimeOffset::parse("2023-09-25").is_err());
        assert!(DateTimeOffset::parse("yesterday").is_err());
    }

    #[test]
    fn date_time_offset_ticks_round_trip() {
        let value = DateTimeOffset::parse("2020-02-25T18:52:21.2169889Z").unwrap();
        assert_eq!(DateTimeOffset::from_unix_ticks(value.unix_ticks()), Some(value));
    }

    #[test]
    fn duration_round_trips_graph_forms() {
        for (input, output) in [
            ("PT0.016S", "PT0.016S"),
            ("PT1S", "PT1S"),
            ("PT0S", "PT0S"),
            ("PT1M30.5S", "PT1M30.5S"),
            ("PT90S", "PT1M30S"),
            ("PT2H", "PT2H"),
            ("P1DT2H", "P1DT2H"),
            ("P2D", "P2D"),
            ("PT0.0000001S", "PT0.0000001S"),
            ("-PT0.5S", "-PT0.5S"),
        ] {
            assert_eq!(Duration::parse(input).unwrap().to_string(), output, "{input}");
        }
        for bad in ["", "P", "PT", "0.016", "PT0.016", "P1Y", "PT1.123456789S", "PTxS", "1S"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn single_takes_and_gives_back_the_odata_strings_for_what_no_number_is() {
        let parsed: Vec<Single> = serde_json::from_str(r#"["NaN","INF","-INF",0.5]"#).unwrap();
        assert!(parsed[0].0.is_nan());
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#"["NaN","INF","-INF",0.5]"#);
        for bad in [r#""nan""#, r#""Infinity""#, r#""1.5""#, "true", "1e39"] {
            let error = serde_json::from_str::<Single>(bad).unwrap_err().to_string();
            assert!(!error.is_empty(), "{bad}");
        }
    }

    #[test]
    fn single_prints_shortest_form() {
        let text = serde_json::to_string(&[Single(0.27), Single(23.0), Single(60.25816), Single(0.0)]).unwrap();
        assert_eq!(text, "[0.27,23,60.25816,0]");
    }

    proptest::proptest! {
        #[test]
        fn duration_display_parses_back(ticks in -1_000_000_000_000i64..1_000_000_000_000) {
            let duration = Duration::from_ticks(ticks);
            proptest::prop_assert_eq!(Duration::parse(&duration.to_string()).unwrap(), duration);
        }

        #[test]
        fn date_time_display_parses_back(ticks in 0i64..40_000_000_000_000_000) {
            let value = DateTimeOffset::from_unix_ticks(ticks).unwrap();
            proptest::prop_assert_eq!(DateTimeOffset::parse(&value.to_string()).unwrap(), value);
        }

        #[test]
        fn duration_parse_never_panics(text in ".{0,30}") {
            let _ = Duration::parse(&text);
        }
    }
}
