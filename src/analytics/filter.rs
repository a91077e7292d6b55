//! The `filter` of an analytics query:
//!
//! ```text
//! filter  := clause ( "and" clause )*
//! clause  := NAME ( "eq" | "ne" ) value | NAME "in" "(" value ( "," value )* ")"
//! value   := "'" text with '' for a quote "'" | true | false | null
//! ```
//!
//! Names are dimensions (`Dimension::parse`); keywords match case-insensitively.

use winnow::ascii::{multispace0, multispace1, Caseless};
use winnow::combinator::{alt, delimited, repeat, separated, terminated};
use winnow::error::ContextError;
use winnow::prelude::*;
use winnow::token::{take_till, take_while};

use super::{Dimension, ParamError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Eq,
    Ne,
    In,
}

/// One clause: a dimension compared with values. A value is `None` for the literal `null`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clause {
    pub(crate) dimension: Dimension,
    pub(crate) operator: Operator,
    pub(crate) values: Vec<Option<String>>,
}

/// The longest filter taken: generous for any dashboard, small enough to bound the work.
const MAX_FILTER_BYTES: usize = 8 * 1024;

type Result<T> = winnow::ModalResult<T, ContextError>;

fn quoted(input: &mut &str) -> Result<String> {
    let pieces: Vec<&str> = delimited('\'', separated(1.., take_till(0.., '\''), "''"), '\'').parse_next(input)?;
    Ok(pieces.join("'"))
}

fn value(input: &mut &str) -> Result<Option<String>> {
    alt((
        quoted.map(Some),
        Caseless("true").value(Some("true".to_owned())),
        Caseless("false").value(Some("false".to_owned())),
        Caseless("null").value(None),
    ))
    .parse_next(input)
}

fn name<'i>(input: &mut &'i str) -> Result<&'i str> {
    take_while(1.., |c: char| c.is_ascii_alphanumeric()).parse_next(input)
}

type RawClause<'i> = (&'i str, Operator, Vec<Option<String>>);

fn clause<'i>(input: &mut &'i str) -> Result<RawClause<'i>> {
    let name = terminated(name, multispace1).parse_next(input)?;
    let compared = alt((
        (
            alt((Caseless("eq").value(Operator::Eq), Caseless("ne").value(Operator::Ne))),
            multispace1,
            value,
        )
            .map(|(operator, _, value)| (operator, vec![value])),
        (
            Caseless("in"),
            multispace0,
            delimited(
                ('(', multispace0),
                separated(1.., value, (multispace0, ',', multispace0)),
                (multispace0, ')'),
            ),
        )
            .map(|(_, _, values)| (Operator::In, values)),
    ))
    .parse_next(input)?;
    Ok((name, compared.0, compared.1))
}

fn clauses<'i>(input: &mut &'i str) -> Result<Vec<RawClause<'i>>> {
    let first = clause.parse_next(input)?;
    let rest: Vec<RawClause<'i>> = repeat(
        0..,
        (multispace1, Caseless("and"), multispace1, clause).map(|(_, _, _, clause)| clause),
    )
    .parse_next(input)?;
    Ok(std::iter::once(first).chain(rest).collect())
}

/// Parses a filter; an error names what is wrong and where.
pub(crate) fn parse_filter(text: &str) -> std::result::Result<Vec<Clause>, ParamError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(ParamError::new(
            "filter",
            format!("the filter is longer than {MAX_FILTER_BYTES} bytes"),
        ));
    }
    let trimmed = text.trim();
    let raw = delimited(multispace0, clauses, multispace0)
        .parse(trimmed)
        .map_err(|error| {
            ParamError::new(
                "filter",
                format!(
                    "malformed filter at character {}: expected clauses such as \"mediaType eq 'audio'\", \
                     \"day in ('2026-11-05','2026-11-06')\" or \"firstSubnet ne null\", joined with and",
                    error.offset() + 1
                ),
            )
        })?;
    raw.into_iter()
        .map(|(name, operator, values)| {
            let dimension = Dimension::parse(name).ok_or_else(|| {
                ParamError::new(
                    "filter",
                    format!("'{name}' is not a dimension; known: {}", Dimension::all_names()),
                )
            })?;
            Ok(Clause {
                dimension,
                operator,
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_values_and_quotes() {
        let clauses =
            parse_filter("mediaType eq 'audio' AND firstSubnet in ('10.0.0.0', 'it''s', null) and pstn ne true")
                .expect("a filter");
        assert_eq!(clauses.len(), 3);
        assert_eq!(clauses[0].dimension, Dimension::MediaType);
        assert_eq!(clauses[0].values, [Some("audio".to_owned())]);
        assert_eq!(clauses[1].operator, Operator::In);
        assert_eq!(
            clauses[1].values,
            [Some("10.0.0.0".to_owned()), Some("it's".to_owned()), None]
        );
        assert_eq!(clauses[2].operator, Operator::Ne);
        assert_eq!(clauses[2].values, [Some("true".to_owned())]);
    }

    #[test]
    fn malformed_filters_and_unknown_names_are_refused() {
        for bad in [
            "",
            "mediaType eq",
            "mediaType = 'audio'",
            "mediaType eq 'audio' or pstn eq true",
            "mediaType eq 'audio",
            "mediaType in ()",
        ] {
            let error = parse_filter(bad).expect_err(bad);
            assert_eq!(error.parameter, "filter");
            assert!(error.message.contains("malformed"), "{bad}: {}", error.message);
        }
        let error = parse_filter("colour eq 'red'").unwrap_err();
        assert!(
            error.message.contains("'colour' is not a dimension"),
            "{}",
            error.message
        );
    }
}
