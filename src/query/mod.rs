//! OData query options of the call-records API: raw query string and `Prefer`
//! header in, typed values out.
//!
//! This module owns the grammars of `$filter`, `$select` and `$expand`, the
//! scalar options `$top`, `$count` and `$skip`, the `Prefer` preferences, and the
//! opaque `$skiptoken`; `QueryOptions` is a request's options, all parsed. Every parser returns either a typed value or a
//! `QueryError` with a client-facing message, and never panics on user input.
//!
//! It must never do IO, know HTTP status codes, or produce SQL: the store turns
//! these values into bind parameters, and `api` maps `QueryError` to a 400.
//! Start at `parse_query_string`, then the per-option parsers.

mod entity;
mod error;
mod expand;
mod filter;
mod options;
mod prefer;
mod select;
mod skiptoken;
mod subscription_filter;
mod syntax;

pub(crate) use entity::EntityKind;
pub(crate) use error::QueryError;
pub(crate) use expand::{context_projection, format_expand, ExpandItem};
pub(crate) use filter::{CallRecordFilter, Comparison};
pub(crate) use options::{parse_query_string, OptionRules, QueryOption, QueryOptions};
pub(crate) use prefer::{parse_prefer, Preferences};
pub(crate) use skiptoken::{decode_skiptoken, encode_skiptoken, SkipToken};
pub(crate) use subscription_filter::parse_subscription_filter;
