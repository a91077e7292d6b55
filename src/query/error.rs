//! The one error type every parser in this module returns.

/// A rejected query option, ready to become a 400 `BadRequest` at the HTTP edge.
///
/// `message` is client-facing, OData-style text and is also what
/// `Display` prints. `option` names the query option at fault (`"$filter"`,
/// `"$select"`, …); it is `"query"` when the fault is the query string itself,
/// such as an unknown `$`-option, whose name is user text and cannot be a
/// `&'static str`. `position` is the 0-based character offset into the decoded
/// option value where parsing failed, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct QueryError {
    /// The query option at fault, spelled with its `$`, or `"query"`.
    pub(crate) option: &'static str,
    /// Client-facing message.
    pub(crate) message: String,
    /// 0-based character offset into the option value, for syntax errors.
    pub(crate) position: Option<usize>,
}

impl QueryError {
    pub(super) fn new(option: &'static str, message: impl Into<String>) -> Self {
        Self {
            option,
            message: message.into(),
            position: None,
        }
    }

    pub(super) fn at(option: &'static str, message: impl Into<String>, position: usize) -> Self {
        Self {
            option,
            message: message.into(),
            position: Some(position),
        }
    }
}
