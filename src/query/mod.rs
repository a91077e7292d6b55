//! OData query options of the call-records API: raw query string and `Prefer`
//! header in, typed values out.
//!
//! This module owns the grammars of `$filter`, `$select` and `$expand`, the
//! scalar options `$top` and `$count`, the `Prefer` preferences, and the
//! opaque `$skiptoken`. Every parser returns either a typed value or a
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
pub(crate) use expand::{context_projection, ensure_expand_only, format_expand, parse_expand, ExpandItem};
pub(crate) use filter::{parse_call_record_filter, CallRecordFilter, Comparison};
pub(crate) use options::{parse_count, parse_query_string, parse_top, QueryOption, RawQueryOptions};
pub(crate) use prefer::{parse_prefer, Preferences};
pub(crate) use select::parse_select;
pub(crate) use skiptoken::{decode_skiptoken, encode_skiptoken, SkipToken};
pub(crate) use subscription_filter::parse_subscription_filter;
