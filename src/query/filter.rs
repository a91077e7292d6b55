//! `$filter` on the callRecords list, as Graph documents it: a small grammar, not OData.
//!
//! ```text
//! filter     := expression
//! expression := term ( "and" term )*
//! term       := "(" expression ")" | predicate
//! predicate  := "startDateTime" op DATETIME
//!             | "participants_v2/any(" VAR ":" VAR "/id eq " STRING ")"
//! op         := "lt" | "le" | "gt" | "ge"
//! ```
//!
//! Keywords and property names match case-insensitively; blanks separate
//! tokens. Everything the grammar does not describe (`or`, `not`, functions,
//! other properties, `eq` on a date) is rejected with a message that says what
//! is supported, because Graph answers 400 for it too.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use winnow::combinator::{opt, preceded};
use winnow::error::ErrMode;
use winnow::prelude::*;
use winnow::token::{one_of, take_till, take_while};

use super::entity::EntityKind;
use super::error::QueryError;
use super::syntax::{blanks, blanks1, expected, identifier, into_query_error, punct, reject, Fault, PResult};

/// A comparison operator allowed on `startDateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Comparison {
    /// `lt`: strictly before.
    Lt,
    /// `le`: before or equal.
    Le,
    /// `gt`: strictly after.
    Gt,
    /// `ge`: after or equal.
    Ge,
}

impl Comparison {
    /// The OData keyword, lower case.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Comparison::Lt => "lt",
            Comparison::Le => "le",
            Comparison::Gt => "gt",
            Comparison::Ge => "ge",
        }
    }
}

/// A parsed callRecords `$filter`: a conjunction of every condition listed.
///
/// A record matches when its `startDateTime` satisfies every entry of `start`
/// (the value on the right of the operator, normalised to UTC) and it has a
/// participant in `participant_ids` for every entry, compared as exact strings.
/// Parentheses only group, so they leave no trace here. Both lists keep
/// the order of the text and may hold duplicates or contradictions, which
/// simply match nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CallRecordFilter {
    /// `startDateTime {op} {value}` conditions.
    pub(crate) start: Vec<(Comparison, OffsetDateTime)>,
    /// `participants_v2/any(p:p/id eq '{id}')` conditions.
    pub(crate) participant_ids: Vec<String>,
}

const OPTION: &str = "$filter";
const WHAT: &str = "Invalid filter clause";
const SUPPORTED: &str = "$filter supports startDateTime (lt, le, gt, ge) \
     and participants_v2/any(p:p/id eq '…'), joined with and.";
/// Deep enough for any real filter, shallow enough that hostile input cannot
/// exhaust the stack through recursion.
const MAX_DEPTH: usize = 32;
const MAX_FRACTION_DIGITS: usize = 7;

enum Predicate {
    Start(Comparison, OffsetDateTime),
    Participant(String),
}

/// Parses the callRecords `$filter` value (already URL-decoded).
///
/// Errors carry option `$filter`, a client-facing message and the character
/// position of the fault. Never panics, whatever the input.
pub(crate) fn parse_call_record_filter(text: &str) -> Result<CallRecordFilter, QueryError> {
    let mut input = text;
    let predicates = filter(&mut input).map_err(|err| into_query_error(OPTION, WHAT, text, err))?;
    let mut res = CallRecordFilter::default();
    for predicate in predicates {
        match predicate {
            Predicate::Start(comparison, at) => res.start.push((comparison, at)),
            Predicate::Participant(id) => res.participant_ids.push(id),
        }
    }
    Ok(res)
}

fn filter(input: &mut &str) -> PResult<Vec<Predicate>> {
    let start = *input;
    blanks(input)?;
    if input.is_empty() {
        return Err(reject(
            start,
            format!("{WHAT}: the $filter value is empty. {SUPPORTED}"),
        ));
    }
    let predicates = expression(input, 0)?;
    blanks(input)?;
    if !input.is_empty() {
        return Err(expected(input, "'and' or the end of the filter"));
    }
    Ok(predicates)
}

fn expression(input: &mut &str, depth: usize) -> PResult<Vec<Predicate>> {
    let mut predicates = term(input, depth)?;
    loop {
        let before = *input;
        blanks(input)?;
        let keyword_start = *input;
        let keyword = opt(identifier).parse_next(input)?;
        match keyword {
            Some(word) if word.eq_ignore_ascii_case("and") => {
                blanks(input)?;
                predicates.extend(term(input, depth)?);
            }
            Some(word) if word.eq_ignore_ascii_case("or") => {
                return Err(reject(
                    keyword_start,
                    format!("{WHAT}: the 'or' operator is not supported. {SUPPORTED}"),
                ));
            }
            _ => {
                *input = before;
                return Ok(predicates);
            }
        }
    }
}

fn term(input: &mut &str, depth: usize) -> PResult<Vec<Predicate>> {
    if depth >= MAX_DEPTH {
        return Err(reject(
            input,
            format!("{WHAT}: parentheses are nested more than {MAX_DEPTH} levels deep."),
        ));
    }
    if opt('(').parse_next(input)?.is_some() {
        blanks(input)?;
        let predicates = expression(input, depth + 1)?;
        blanks(input)?;
        punct(input, ')', "')' or 'and'")?;
        return Ok(predicates);
    }
    predicate(input).map(|predicate| vec![predicate])
}

fn predicate(input: &mut &str) -> PResult<Predicate> {
    let name_start = *input;
    let Some(name) = opt(identifier).parse_next(input)? else {
        return Err(expected(
            input,
            "a predicate on startDateTime or participants_v2, or '('",
        ));
    };
    if name.eq_ignore_ascii_case("startDateTime") {
        return start_predicate(input);
    }
    if name.eq_ignore_ascii_case("participants_v2") {
        return participant_predicate(input, name_start);
    }
    if name.eq_ignore_ascii_case("not") {
        return Err(reject(
            name_start,
            format!("{WHAT}: the 'not' operator is not supported. {SUPPORTED}"),
        ));
    }
    if name.eq_ignore_ascii_case("and") || name.eq_ignore_ascii_case("or") {
        *input = name_start;
        return Err(expected(
            input,
            "a predicate on startDateTime or participants_v2, or '('",
        ));
    }
    let rest = *input;
    let message = if rest.starts_with('(') {
        format!("{WHAT}: the function '{name}' is not supported. {SUPPORTED}")
    } else if let Some(property) = EntityKind::CallRecord.property(name) {
        format!("{WHAT}: filtering on '{property}' is not supported. {SUPPORTED}")
    } else {
        format!(
            "Could not find a property named '{name}' on type '{}'. {SUPPORTED}",
            EntityKind::CallRecord.type_name()
        )
    };
    Err(reject(name_start, message))
}

fn start_predicate(input: &mut &str) -> PResult<Predicate> {
    const OPERATORS: &str = "one of lt, le, gt, ge";
    if blanks1(input).is_err() {
        return Err(expected(input, OPERATORS));
    }
    let operator_start = *input;
    let operator = opt(identifier).parse_next(input)?.unwrap_or_default();
    let comparison = match operator.to_ascii_lowercase().as_str() {
        "lt" => Comparison::Lt,
        "le" => Comparison::Le,
        "gt" => Comparison::Gt,
        "ge" => Comparison::Ge,
        "eq" | "ne" => {
            return Err(reject(
                operator_start,
                format!(
                    "{WHAT}: the operator '{operator}' is not supported on startDateTime; \
                     use lt, le, gt or ge. {SUPPORTED}"
                ),
            ))
        }
        _ => return Err(expected(operator_start, OPERATORS)),
    };
    if blanks1(input).is_err() {
        return Err(expected(input, "a DateTimeOffset literal"));
    }
    let value_start = *input;
    if input.starts_with('\'') {
        let quoted = string_literal(input)?;
        return quoted_datetime(comparison, &quoted)
            .map(|at| Predicate::Start(comparison, at))
            .map_err(|message| reject(value_start, message));
    }
    let token = take_while(0.., |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')
    })
    .parse_next(input)?;
    if token.is_empty() {
        return Err(expected(input, "a DateTimeOffset literal such as 2024-01-01T00:00:00Z"));
    }
    parse_datetime(token)
        .map(|at| Predicate::Start(comparison, at))
        .map_err(|message| reject(value_start, message))
}

/// The one place that decides what a quoted DateTimeOffset means, so it can be relaxed.
///
/// OData typing rejects `startDateTime ge '2024-01-01T00:00:00Z'` and Graph's
/// behaviour is unknown, so we answer 400 and show the unquoted form. To accept
/// it instead, return `parse_datetime(quoted)` here.
fn quoted_datetime(comparison: Comparison, quoted: &str) -> Result<OffsetDateTime, String> {
    Err(format!(
        "{WHAT}: startDateTime must be compared with an unquoted DateTimeOffset literal; \
         write startDateTime {} {quoted} without quotes.",
        comparison.as_str()
    ))
}

/// Parses an unquoted OData DateTimeOffset literal and normalises it to UTC.
///
/// Seconds are optional as in the OData ABNF; the fraction is limited to the
/// 7 digits of `Edm.DateTimeOffset`'s precision; the zone is `Z` or `±hh:mm`.
fn parse_datetime(token: &str) -> Result<OffsetDateTime, String> {
    let invalid = || {
        format!(
            "{WHAT}: '{token}' is not a valid DateTimeOffset literal; \
             expected a value such as 2024-01-01T00:00:00Z."
        )
    };
    let mut input = token;
    let parts = datetime_parts(&mut input).map_err(|_| invalid())?;
    if parts.fraction.len() > MAX_FRACTION_DIGITS {
        return Err(format!(
            "{WHAT}: '{token}' has more than {MAX_FRACTION_DIGITS} digits of fractional seconds."
        ));
    }
    let Some(offset) = parts.offset else {
        return Err(format!(
            "{WHAT}: '{token}' has no time zone; end it with 'Z' or an offset such as +02:00 \
             (in a URL, write '+' as %2B)."
        ));
    };
    if !input.is_empty() {
        return Err(invalid());
    }
    let nanos = parts
        .fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
    let (sign, offset_hours, offset_minutes) = offset;
    let date = Month::try_from(parts.month)
        .ok()
        .and_then(|month| Date::from_calendar_date(parts.year, month, parts.day).ok());
    let time = Time::from_hms_nano(parts.hour, parts.minute, parts.second, nanos).ok();
    let offset = UtcOffset::from_hms(sign * offset_hours, sign * offset_minutes, 0).ok();
    match (date, time, offset) {
        (Some(date), Some(time), Some(offset)) => PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .checked_to_offset(UtcOffset::UTC)
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

struct DateTimeParts<'i> {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// The digits after the decimal point, unchecked in length.
    fraction: &'i str,
    /// Sign, hours and minutes; `None` when the literal has no zone.
    offset: Option<(i8, i8, i8)>,
}

fn datetime_parts<'i>(input: &mut &'i str) -> PResult<DateTimeParts<'i>> {
    let year = digits(4).parse_next(input)?;
    let month = preceded('-', digits(2)).parse_next(input)?;
    let day = preceded('-', digits(2)).parse_next(input)?;
    let hour = preceded(one_of(['T', 't']), digits(2)).parse_next(input)?;
    let minute = preceded(':', digits(2)).parse_next(input)?;
    let second = opt(preceded(':', digits(2))).parse_next(input)?;
    let fraction = match second {
        Some(_) => opt(preceded('.', take_while(1.., |c: char| c.is_ascii_digit())))
            .parse_next(input)?
            .unwrap_or_default(),
        None => "",
    };
    let offset = opt(zone).parse_next(input)?;
    Ok(DateTimeParts {
        year: i32::from(year),
        month: narrow(month),
        day: narrow(day),
        hour: narrow(hour),
        minute: narrow(minute),
        second: narrow(second.unwrap_or(0)),
        fraction,
        offset,
    })
}

fn zone(input: &mut &str) -> PResult<(i8, i8, i8)> {
    if opt(one_of(['Z', 'z'])).parse_next(input)?.is_some() {
        return Ok((1, 0, 0));
    }
    let sign = one_of(['+', '-']).parse_next(input)?;
    let hours = digits(2).parse_next(input)?;
    let minutes = preceded(':', digits(2)).parse_next(input)?;
    let sign = if sign == '-' { -1 } else { 1 };
    Ok((sign, narrow(hours), narrow(minutes)))
}

/// Exactly `n` ASCII digits (n ≤ 4) as a number.
fn digits<'i>(n: usize) -> impl Parser<&'i str, u16, ErrMode<Fault>> {
    take_while(n, |c: char| c.is_ascii_digit()).map(|digits: &str| {
        digits
            .bytes()
            .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'))
    })
}

/// Two-digit fields fit any small integer type; out-of-range values such as a
/// month of 99 are caught by the `time` constructors.
fn narrow<T: TryFrom<u16> + Default>(value: u16) -> T {
    T::try_from(value).unwrap_or_default()
}

fn participant_predicate(input: &mut &str, name_start: &str) -> PResult<Predicate> {
    const SHAPE: &str = "participants_v2/any(p:p/id eq '…')";
    if punct(input, '/', "'/'").is_err() {
        return Err(reject(
            name_start,
            format!("{WHAT}: participants_v2 is a collection; filter it as {SHAPE}."),
        ));
    }
    let operator_start = *input;
    let operator = opt(identifier).parse_next(input)?.unwrap_or_default();
    if !operator.eq_ignore_ascii_case("any") {
        return Err(reject(
            operator_start,
            format!("{WHAT}: only the any operator is supported on participants_v2, as in {SHAPE}."),
        ));
    }
    blanks(input)?;
    punct(input, '(', "'('")?;
    blanks(input)?;
    let Some(variable) = opt(identifier).parse_next(input)? else {
        return Err(expected(input, "a lambda variable, as in any(p:p/id eq '…')"));
    };
    blanks(input)?;
    punct(input, ':', "':'")?;
    blanks(input)?;
    let body_start = *input;
    let Some(body_variable) = opt(identifier).parse_next(input)? else {
        return Err(expected(input, "the lambda variable"));
    };
    if body_variable != variable {
        return Err(reject(
            body_start,
            format!(
                "{WHAT}: '{body_variable}' is not the lambda variable; \
                 participants_v2/any({variable}:…) must compare {variable}/id."
            ),
        ));
    }
    punct(input, '/', "'/id'")?;
    let property_start = *input;
    let Some(property) = opt(identifier).parse_next(input)? else {
        return Err(expected(input, "'id'"));
    };
    if !property.eq_ignore_ascii_case("id") {
        let participant = EntityKind::Participant;
        let message = match participant.property(property) {
            Some(known) => format!(
                "{WHAT}: filtering on participant '{known}' is not supported; \
                 compare {variable}/id instead. {SUPPORTED}"
            ),
            None => format!(
                "Could not find a property named '{property}' on type '{}'. {SUPPORTED}",
                participant.type_name()
            ),
        };
        return Err(reject(property_start, message));
    }
    if blanks1(input).is_err() {
        return Err(expected(input, "'eq'"));
    }
    let operator_start = *input;
    let operator = opt(identifier).parse_next(input)?.unwrap_or_default();
    if !operator.eq_ignore_ascii_case("eq") {
        if is_operator(operator) {
            return Err(reject(
                operator_start,
                format!(
                    "{WHAT}: the operator '{operator}' is not supported inside participants_v2/any(…); \
                     use eq, as in {SHAPE}."
                ),
            ));
        }
        return Err(expected(operator_start, "'eq'"));
    }
    if blanks1(input).is_err() {
        return Err(expected(input, "a single-quoted string"));
    }
    if !input.starts_with('\'') {
        return Err(expected(input, "a single-quoted string"));
    }
    let id = string_literal(input)?;
    blanks(input)?;
    let after_start = *input;
    if let Some(word) = opt(identifier).parse_next(input)? {
        if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
            return Err(reject(
                after_start,
                format!(
                    "{WHAT}: combining conditions inside participants_v2/any(…) is not supported; \
                     write one any(…) per participant and join them with and."
                ),
            ));
        }
        *input = after_start;
    }
    punct(input, ')', "')'")?;
    Ok(Predicate::Participant(id))
}

fn is_operator(word: &str) -> bool {
    ["eq", "ne", "lt", "le", "gt", "ge", "has", "in"]
        .iter()
        .any(|operator| operator.eq_ignore_ascii_case(word))
}

/// A single-quoted OData string; `''` stands for one quote.
pub(super) fn string_literal(input: &mut &str) -> PResult<String> {
    let start = *input;
    punct(input, '\'', "a single-quoted string")?;
    let mut res = String::new();
    loop {
        let chunk: &str = take_till(0.., '\'').parse_next(input)?;
        res.push_str(chunk);
        if opt("''").parse_next(input)?.is_some() {
            res.push('\'');
        } else if opt('\'').parse_next(input)?.is_some() {
            return Ok(res);
        } else {
            return Err(reject(
                start,
                format!("{WHAT}: a string literal is not closed with a quote."),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;

    fn check_filter(text: &str, expect: Expect) {
        let actual = match parse_call_record_filter(text) {
            Ok(filter) => {
                let mut res = String::new();
                for (comparison, at) in &filter.start {
                    let at = at.format(&Rfc3339).unwrap_or_default();
                    res.push_str(&format!("startDateTime {} {at}\n", comparison.as_str()));
                }
                for id in &filter.participant_ids {
                    res.push_str(&format!("participant {id:?}\n"));
                }
                res
            }
            Err(err) => format!("error {} at {:?}: {}\n", err.option, err.position, err.message),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn accepted_date_predicates() {
        check_filter(
            "startDateTime ge 2023-09-25T09:25:00Z",
            expect![[r#"
            startDateTime ge 2023-09-25T09:25:00Z
        "#]],
        );
        check_filter(
            "startDateTime ge 2023-09-25T09:25:00Z and startDateTime lt 2023-09-25T09:30:00Z",
            expect![[r#"
                startDateTime ge 2023-09-25T09:25:00Z
                startDateTime lt 2023-09-25T09:30:00Z
            "#]],
        );
        check_filter(
            "startDateTime gt 2024-01-01T00:00:00.1234567Z",
            expect![[r#"
            startDateTime gt 2024-01-01T00:00:00.1234567Z
        "#]],
        );
        check_filter(
            "startDateTime le 2024-01-01T00:00:00.5Z",
            expect![[r#"
            startDateTime le 2024-01-01T00:00:00.5Z
        "#]],
        );
        check_filter(
            "startDateTime lt 2024-01-01T02:00:00+02:00",
            expect![[r#"
            startDateTime lt 2024-01-01T00:00:00Z
        "#]],
        );
        check_filter(
            "startDateTime lt 2024-01-01T00:30:00-01:15",
            expect![[r#"
            startDateTime lt 2024-01-01T01:45:00Z
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00Z",
            expect![[r#"
            startDateTime ge 2024-01-01T00:00:00Z
        "#]],
        );
        check_filter(
            "STARTDATETIME GE 2024-02-29t10:00:00z",
            expect![[r#"
            startDateTime ge 2024-02-29T10:00:00Z
        "#]],
        );
        check_filter(
            "  startDateTime   ge   2024-01-01T00:00:00Z  ",
            expect![[r#"
            startDateTime ge 2024-01-01T00:00:00Z
        "#]],
        );
        check_filter(
            "startDateTime\tge\t2024-01-01T00:00:00Z",
            expect![[r#"
            startDateTime ge 2024-01-01T00:00:00Z
        "#]],
        );
    }

    #[test]
    fn accepted_participant_predicates() {
        check_filter(
            "participants_v2/any(p:p/id eq 'a1b2')",
            expect![[r#"
            participant "a1b2"
        "#]],
        );
        check_filter(
            "participants_v2/any(x: x/id eq '821809f5-0000-0000-0000-000000000000')",
            expect![[r#"
                participant "821809f5-0000-0000-0000-000000000000"
            "#]],
        );
        check_filter(
            "Participants_V2/ANY( p : p/ID EQ 'it''s' )",
            expect![[r#"
            participant "it's"
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq '')",
            expect![[r#"
            participant ""
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq '+15555550100')",
            expect![[r#"
            participant "+15555550100"
        "#]],
        );
    }

    #[test]
    fn accepted_combinations() {
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z and participants_v2/any(p:p/id eq 'a') and participants_v2/any(q:q/id eq 'b')",
            expect![[r#"
                startDateTime ge 2024-01-01T00:00:00Z
                participant "a"
                participant "b"
            "#]],
        );
        check_filter(
            "(startDateTime ge 2024-01-01T00:00:00Z) and (participants_v2/any(p:p/id eq 'a'))",
            expect![[r#"
                startDateTime ge 2024-01-01T00:00:00Z
                participant "a"
            "#]],
        );
        check_filter(
            "((startDateTime ge 2024-01-01T00:00:00Z and startDateTime lt 2024-01-02T00:00:00Z))",
            expect![[r#"
                startDateTime ge 2024-01-01T00:00:00Z
                startDateTime lt 2024-01-02T00:00:00Z
            "#]],
        );
        check_filter(
            "(startDateTime ge 2024-01-01T00:00:00Z)AND(startDateTime lt 2024-01-02T00:00:00Z)",
            expect![[r#"
            startDateTime ge 2024-01-01T00:00:00Z
            startDateTime lt 2024-01-02T00:00:00Z
        "#]],
        );
    }

    #[test]
    fn rejected_operators_and_properties() {
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z or startDateTime lt 2023-01-01T00:00:00Z",
            expect![[r#"
                error $filter at Some(38): Invalid filter clause: the 'or' operator is not supported. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
            "#]],
        );
        check_filter(
            "not startDateTime ge 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: the 'not' operator is not supported. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "startDateTime eq 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(14): Invalid filter clause: the operator 'eq' is not supported on startDateTime; use lt, le, gt or ge. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "startDateTime ne 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(14): Invalid filter clause: the operator 'ne' is not supported on startDateTime; use lt, le, gt or ge. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "startDateTime gx 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(14): Invalid filter clause: syntax error at position 14 in 'startDateTime gx 2024-01-01T00:00:00Z': expected one of lt, le, gt, ge.
        "#]],
        );
        check_filter(
            "startDateTime",
            expect![[r#"
            error $filter at Some(13): Invalid filter clause: syntax error at position 13 in 'startDateTime': expected one of lt, le, gt, ge.
        "#]],
        );
        check_filter(
            "startDateTime ge",
            expect![[r#"
            error $filter at Some(16): Invalid filter clause: syntax error at position 16 in 'startDateTime ge': expected a DateTimeOffset literal.
        "#]],
        );
        check_filter(
            "foo eq 'bar'",
            expect![[r#"
            error $filter at Some(0): Could not find a property named 'foo' on type 'microsoft.graph.callRecords.callRecord'. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "endDateTime ge 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: filtering on 'endDateTime' is not supported. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "contains(joinWebUrl, 'x')",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: the function 'contains' is not supported. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "organizer_v2/id eq 'x'",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: filtering on 'organizer_v2' is not supported. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "2024-01-01T00:00:00Z lt startDateTime",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: syntax error at position 0 in '2024-01-01T00:00:00Z lt startDateTime': expected a predicate on startDateTime or participants_v2, or '('.
        "#]],
        );
        check_filter(
            "and startDateTime ge 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: syntax error at position 0 in 'and startDateTime ge 2024-01-01T00:00:00Z': expected a predicate on startDateTime or participants_v2, or '('.
        "#]],
        );
    }

    #[test]
    fn rejected_datetimes() {
        check_filter(
            "startDateTime ge '2024-01-01T00:00:00Z'",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: startDateTime must be compared with an unquoted DateTimeOffset literal; write startDateTime ge 2024-01-01T00:00:00Z without quotes.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00.12345678Z",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01T00:00:00.12345678Z' has more than 7 digits of fractional seconds.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01T00:00:00' has no time zone; end it with 'Z' or an offset such as +02:00 (in a URL, write '+' as %2B).
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00 02:00",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01T00:00:00' has no time zone; end it with 'Z' or an offset such as +02:00 (in a URL, write '+' as %2B).
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-13-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-13-01T00:00:00Z' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge 2023-02-29T00:00:00Z",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2023-02-29T00:00:00Z' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T24:00:00Z",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01T24:00:00Z' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00ZZ",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '2024-01-01T00:00:00ZZ' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge 9999-12-31T23:59:59-23:00",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: '9999-12-31T23:59:59-23:00' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge now()",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: 'now' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
        check_filter(
            "startDateTime ge datetimeoffset'2024-01-01T00:00:00Z'",
            expect![[r#"
            error $filter at Some(17): Invalid filter clause: 'datetimeoffset' is not a valid DateTimeOffset literal; expected a value such as 2024-01-01T00:00:00Z.
        "#]],
        );
    }

    #[test]
    fn rejected_structure() {
        check_filter(
            "",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: the $filter value is empty. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "   ",
            expect![[r#"
                error $filter at Some(0): Invalid filter clause: the $filter value is empty. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
            "#]],
        );
        check_filter(
            "(startDateTime ge 2024-01-01T00:00:00Z",
            expect![[r#"
            error $filter at Some(38): Invalid filter clause: syntax error at position 38 in '(startDateTime ge 2024-01-01T00:00:00Z': expected ')' or 'and'.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z)",
            expect![[r#"
            error $filter at Some(37): Invalid filter clause: syntax error at position 37 in 'startDateTime ge 2024-01-01T00:00:00Z)': expected 'and' or the end of the filter.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z garbage",
            expect![[r#"
            error $filter at Some(38): Invalid filter clause: syntax error at position 38 in 'startDateTime ge 2024-01-01T00:00:00Z garbage': expected 'and' or the end of the filter.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z and",
            expect![[r#"
            error $filter at Some(41): Invalid filter clause: syntax error at position 41 in 'startDateTime ge 2024-01-01T00:00:00Z and': expected a predicate on startDateTime or participants_v2, or '('.
        "#]],
        );
        check_filter(
            "()",
            expect![[r#"
            error $filter at Some(1): Invalid filter clause: syntax error at position 1 in '()': expected a predicate on startDateTime or participants_v2, or '('.
        "#]],
        );
        check_filter(
            &"(".repeat(100),
            expect![[r#"
            error $filter at Some(32): Invalid filter clause: parentheses are nested more than 32 levels deep.
        "#]],
        );
        check_filter(
            "startDateTime ge 2024-01-01T00:00:00Z é",
            expect![[r#"
            error $filter at Some(38): Invalid filter clause: syntax error at position 38 in 'startDateTime ge 2024-01-01T00:00:00Z é': expected 'and' or the end of the filter.
        "#]],
        );
    }

    #[test]
    fn rejected_participant_forms() {
        check_filter(
            "participants_v2/any(p:q/id eq 'x')",
            expect![[r#"
            error $filter at Some(22): Invalid filter clause: 'q' is not the lambda variable; participants_v2/any(p:…) must compare p/id.
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id ne 'x')",
            expect![[r#"
            error $filter at Some(27): Invalid filter clause: the operator 'ne' is not supported inside participants_v2/any(…); use eq, as in participants_v2/any(p:p/id eq '…').
        "#]],
        );
        check_filter(
            "participants_v2/all(p:p/id eq 'x')",
            expect![[r#"
            error $filter at Some(16): Invalid filter clause: only the any operator is supported on participants_v2, as in participants_v2/any(p:p/id eq '…').
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/identity eq 'x')",
            expect![[r#"
            error $filter at Some(24): Invalid filter clause: filtering on participant 'identity' is not supported; compare p/id instead. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/name eq 'x')",
            expect![[r#"
            error $filter at Some(24): Could not find a property named 'name' on type 'microsoft.graph.callRecords.participant'. $filter supports startDateTime (lt, le, gt, ge) and participants_v2/any(p:p/id eq '…'), joined with and.
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq x)",
            expect![[r#"
            error $filter at Some(30): Invalid filter clause: syntax error at position 30 in 'participants_v2/any(p:p/id eq x)': expected a single-quoted string.
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq 'x)",
            expect![[r#"
            error $filter at Some(30): Invalid filter clause: a string literal is not closed with a quote.
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq 'x' or p/id eq 'y')",
            expect![[r#"
            error $filter at Some(34): Invalid filter clause: combining conditions inside participants_v2/any(…) is not supported; write one any(…) per participant and join them with and.
        "#]],
        );
        check_filter(
            "participants_v2/any()",
            expect![[r#"
            error $filter at Some(20): Invalid filter clause: syntax error at position 20 in 'participants_v2/any()': expected a lambda variable, as in any(p:p/id eq '…').
        "#]],
        );
        check_filter(
            "participants_v2 eq 'x'",
            expect![[r#"
            error $filter at Some(0): Invalid filter clause: participants_v2 is a collection; filter it as participants_v2/any(p:p/id eq '…').
        "#]],
        );
        check_filter(
            "participants_v2/any(p:p/id eq 'x'",
            expect![[r#"
            error $filter at Some(33): Invalid filter clause: syntax error at position 33 in 'participants_v2/any(p:p/id eq 'x'': expected ')'.
        "#]],
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,64}") {
            let _ = parse_call_record_filter(&text);
        }

        #[test]
        fn never_panics_on_filter_like_text(
            text in "[ ()':/a-zA-Z0-9_.+\\-]{0,80}"
        ) {
            let _ = parse_call_record_filter(&text);
        }

        #[test]
        fn error_positions_are_inside_the_text(text in "\\PC{0,64}") {
            if let Err(err) = parse_call_record_filter(&text) {
                prop_assert!(err.position.unwrap_or(0) <= text.chars().count());
            }
        }

        #[test]
        fn any_valid_datetime_round_trips(seconds in 0i64..253_402_300_799, nanos in 0u32..10_000_000) {
            let at = OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| TestCaseError::fail(e.to_string()))?
                + time::Duration::nanoseconds(i64::from(nanos * 100));
            let text = format!("startDateTime lt {}", at.format(&Rfc3339).map_err(|e| TestCaseError::fail(e.to_string()))?);
            let filter = parse_call_record_filter(&text).map_err(|e| TestCaseError::fail(e.message))?;
            prop_assert_eq!(filter.start, vec![(Comparison::Lt, at)]);
        }
    }
}
