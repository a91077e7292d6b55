//! The `$filter` of a call-records subscription resource (Graph documents `eq`, `or` and `in`):
//! `participants/any(p:p/id eq 'a' or p/id eq 'b')`, `participants/any(p:p/id in ('a','b'))`,
//! and `or` between several `any(...)` clauses; `participants_v2` is a synonym.

use winnow::combinator::opt;
use winnow::prelude::*;

use super::error::QueryError;
use super::filter::string_literal;
use super::syntax::{blanks, expected, identifier, into_query_error, punct, reject, PResult};

const OPTION: &str = "resource";
const WHAT: &str = "Invalid subscription filter";
const SUPPORTED: &str = "A call-records subscription may filter on participants only: \
     participants/any(p:p/id eq '…' or p/id eq '…'), participants/any(p:p/id in ('…','…')), joined with or.";

/// Parses the filter of a subscription resource into the participant ids it names. A record
/// matches when any of its participants is among them.
pub(crate) fn parse_subscription_filter(text: &str) -> Result<Vec<String>, QueryError> {
    let mut input = text;
    let parse = |input: &mut &str| -> PResult<Vec<String>> {
        blanks(input)?;
        let ids = expression(input, 0)?;
        blanks(input)?;
        if !input.is_empty() {
            return Err(expected(input, "or, or the end of the filter"));
        }
        Ok(ids)
    };
    parse(&mut input).map_err(|err| into_query_error(OPTION, WHAT, text, err))
}

fn keyword(input: &mut &str, word: &'static str) -> PResult<bool> {
    let checkpoint = *input;
    match identifier.parse_next(input) {
        Ok(found) if found.eq_ignore_ascii_case(word) => Ok(true),
        _ => {
            *input = checkpoint;
            Ok(false)
        }
    }
}

fn expression(input: &mut &str, depth: usize) -> PResult<Vec<String>> {
    if depth > 16 {
        return Err(reject(input, format!("{WHAT}: too deeply nested.")));
    }
    let mut ids = clause(input, depth)?;
    loop {
        let checkpoint = *input;
        blanks(input)?;
        if keyword(input, "or")? {
            blanks(input)?;
            ids.extend(clause(input, depth)?);
        } else {
            *input = checkpoint;
            return Ok(ids);
        }
    }
}

fn clause(input: &mut &str, depth: usize) -> PResult<Vec<String>> {
    if opt('(').parse_next(input)?.is_some() {
        blanks(input)?;
        let ids = expression(input, depth + 1)?;
        blanks(input)?;
        punct(input, ')', "')'")?;
        return Ok(ids);
    }
    let start = *input;
    let navigation = identifier
        .parse_next(input)
        .map_err(|_| expected(start, "participants/any(...)"))?;
    if !(navigation.eq_ignore_ascii_case("participants") || navigation.eq_ignore_ascii_case("participants_v2")) {
        return Err(reject(
            start,
            format!("{WHAT}: '{navigation}' cannot be filtered on. {SUPPORTED}"),
        ));
    }
    punct(input, '/', "'/any('")?;
    if !keyword(input, "any")? {
        return Err(reject(
            input,
            format!("{WHAT}: only any(...) is supported. {SUPPORTED}"),
        ));
    }
    punct(input, '(', "'('")?;
    blanks(input)?;
    let variable = identifier
        .parse_next(input)
        .map_err(|_| expected(input, "a lambda variable"))?;
    blanks(input)?;
    punct(input, ':', "':'")?;
    blanks(input)?;
    let mut ids = comparison(input, variable)?;
    loop {
        blanks(input)?;
        if keyword(input, "or")? {
            blanks(input)?;
            ids.extend(comparison(input, variable)?);
        } else {
            break;
        }
    }
    punct(input, ')', "')'")?;
    Ok(ids)
}

/// `p/id eq 'a'` or `p/id in ('a','b')`.
fn comparison(input: &mut &str, variable: &str) -> PResult<Vec<String>> {
    let start = *input;
    let used = identifier
        .parse_next(input)
        .map_err(|_| expected(start, "the lambda variable"))?;
    if used != variable {
        return Err(reject(
            start,
            format!("{WHAT}: '{used}' is not the lambda variable '{variable}'."),
        ));
    }
    punct(input, '/', "'/id'")?;
    if !keyword(input, "id")? {
        return Err(reject(
            input,
            format!("{WHAT}: only the participant's id can be compared. {SUPPORTED}"),
        ));
    }
    blanks(input)?;
    if keyword(input, "eq")? {
        blanks(input)?;
        return Ok(vec![string_literal(input)?]);
    }
    if keyword(input, "in")? {
        blanks(input)?;
        punct(input, '(', "'('")?;
        let mut ids = Vec::new();
        loop {
            blanks(input)?;
            ids.push(string_literal(input)?);
            blanks(input)?;
            if opt(',').parse_next(input)?.is_none() {
                break;
            }
        }
        punct(input, ')', "')'")?;
        return Ok(ids);
    }
    Err(expected(input, "eq or in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        for (text, ids) in [
            ("participants/any(p:p/id eq 'a')", vec!["a"]),
            (
                "participants_v2/any(x: x/id eq 'a' or x/id eq 'b''c')",
                vec!["a", "b'c"],
            ),
            ("participants/any(p:p/id in ('a', 'b'))", vec!["a", "b"]),
            (
                "participants/any(p:p/id eq 'a') or participants/any(q:q/id in ('b'))",
                vec!["a", "b"],
            ),
            ("(participants/any(p:p/id eq 'a'))", vec!["a"]),
        ] {
            assert_eq!(parse_subscription_filter(text).unwrap(), ids, "{text}");
        }
    }

    #[test]
    fn rejected_forms() {
        for text in [
            "startDateTime ge 2024-01-01T00:00:00Z",
            "participants/all(p:p/id eq 'a')",
            "participants/any(p:q/id eq 'a')",
            "participants/any(p:p/displayName eq 'a')",
            "participants/any(p:p/id ne 'a')",
            "participants/any(p:p/id eq 'a') and participants/any(p:p/id eq 'b')",
            "participants/any(p:p/id eq 'a'",
            "",
        ] {
            assert!(parse_subscription_filter(text).is_err(), "{text}");
        }
    }
}
