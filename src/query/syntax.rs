//! Shared winnow plumbing for the `$filter`, `$select` and `$expand` grammars.
//!
//! Parsers run on `&str` and report failures as a [`Fault`] that remembers how
//! much input was left, so the byte offset of every error is known without a
//! located stream, and the furthest failure wins when branches are combined.

use winnow::error::{ErrMode, ParserError};
use winnow::prelude::*;
use winnow::token::{one_of, take_while};

use super::error::QueryError;

pub(super) type PResult<T> = ModalResult<T, Fault>;

/// Why a grammar gave up, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fault {
    /// Bytes of input left when the failure was found; the offset is
    /// `text.len() - remaining`.
    remaining: usize,
    kind: FaultKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FaultKind {
    /// A syntax error: the label says what would have been accepted.
    Expected(Option<&'static str>),
    /// A complete client-facing message, for inputs that are well-formed but
    /// ask for something we do not support.
    Message(String),
}

impl<'i> ParserError<&'i str> for Fault {
    type Inner = Self;

    fn from_input(input: &&'i str) -> Self {
        Fault {
            remaining: input.len(),
            kind: FaultKind::Expected(None),
        }
    }

    // winnow's default panics in debug builds when a combinator's invariant
    // breaks; bad input must never panic, so report a plain syntax error.
    fn assert(input: &&'i str, _message: &'static str) -> Self {
        Self::from_input(input)
    }

    fn or(self, other: Self) -> Self {
        // The branch that got further explains the failure better.
        if self.remaining < other.remaining {
            self
        } else {
            other
        }
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

/// A recoverable syntax error at the current position.
pub(super) fn expected(input: &str, label: &'static str) -> ErrMode<Fault> {
    ErrMode::Backtrack(Fault {
        remaining: input.len(),
        kind: FaultKind::Expected(Some(label)),
    })
}

/// A final rejection with a complete message, located at `at` (a suffix of
/// the original text, usually the start of the offending token).
pub(super) fn reject(at: &str, message: String) -> ErrMode<Fault> {
    ErrMode::Cut(Fault {
        remaining: at.len(),
        kind: FaultKind::Message(message),
    })
}

/// Turns a failed parse into the client-facing error.
///
/// `what` opens syntax-error messages, e.g. `Invalid filter clause`.
pub(super) fn into_query_error(option: &'static str, what: &str, text: &str, err: ErrMode<Fault>) -> QueryError {
    let fault = match err {
        ErrMode::Backtrack(fault) | ErrMode::Cut(fault) => fault,
        // Complete `&str` input never asks for more; treat it as the end.
        ErrMode::Incomplete(_) => Fault {
            remaining: 0,
            kind: FaultKind::Expected(None),
        },
    };
    let byte_offset = text.len().saturating_sub(fault.remaining);
    let position = text.get(..byte_offset).map_or(0, |consumed| consumed.chars().count());
    let message = match fault.kind {
        FaultKind::Message(message) => message,
        FaultKind::Expected(label) => {
            let label = label.unwrap_or("valid syntax");
            format!(
                "{what}: syntax error at position {position} in '{}': expected {label}.",
                excerpt(text)
            )
        }
    };
    QueryError::at(option, message, position)
}

/// The option value as echoed in messages, cut short so a huge value does not
/// make a huge error body.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut res: String = text.chars().take(MAX_CHARS).collect();
        res.push('…');
        res
    }
}

/// Any run of blanks between tokens. OData's RWS/BWS are spaces and tabs
/// (`%20`, `%09`, or a `+` decoded earlier).
pub(super) fn blanks<'i>(input: &mut &'i str) -> PResult<&'i str> {
    take_while(0.., [' ', '\t']).parse_next(input)
}

/// At least one blank, as required between keywords.
pub(super) fn blanks1<'i>(input: &mut &'i str) -> PResult<&'i str> {
    take_while(1.., [' ', '\t']).parse_next(input)
}

/// An OData identifier: a letter or `_`, then letters, digits or `_`.
pub(super) fn identifier<'i>(input: &mut &'i str) -> PResult<&'i str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .parse_next(input)
}

/// Consumes `c`, or fails with a syntax error naming `label`.
pub(super) fn punct(input: &mut &str, mut c: char, label: &'static str) -> PResult<()> {
    match c.parse_next(input) {
        Ok(_) => Ok(()),
        Err(ErrMode::Backtrack(_)) => Err(expected(input, label)),
        Err(other) => Err(other),
    }
}
