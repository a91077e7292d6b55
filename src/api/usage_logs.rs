//! `getPstnCalls`, `getDirectRoutingCalls` (v1.0) and `getSmsLog` (beta): usage-log rows of a
//! time range, 1,000 a page (spec §3.6–3.7, §8).
//!
//! Our next links carry a keyset `$skiptoken` rather than the `$skip` of Graph's examples: an
//! offset would skip or repeat rows when rows arrive between pages, and would cost more the
//! deeper the page. A `$skip` the client sends itself is still honoured.

use axum::response::Response;

use super::call_records::{fingerprint, invalid_skiptoken, Graph};
use super::error::{ApiError, Result};
use super::odata::{self, context_url, link};
use super::path::{function_name, FunctionRange};
use super::raw::JsonObject;
use crate::model::LogKind;
use crate::query::{self, QueryOption as Q, SkipToken};
use crate::store::{LogRowQuery, RecordCursor};

/// Graph's page size for the usage-log functions.
const LOG_PAGE: u32 = 1000;

impl Graph {
    // Spec: shared/spec/graph-callrecords.md, "3.6 getPstnCalls" and "3.7 getDirectRoutingCalls"
    pub(super) async fn call_log_function(&self, kind: LogKind, range: &FunctionRange) -> Result<Response> {
        self.options.ensure_only(&[Q::Top, Q::Skip, Q::Count, Q::SkipToken])?;
        let top = self.parse_top()?;
        // `$count=true` is accepted; the count of the page is always written (spec A8).
        self.parse_count()?;
        let skip = match self.options.skip.as_deref() {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("$skip '{text}' is too large.")).with_target("$skip"))?,
            Some(text) => {
                return Err(
                    ApiError::bad_request(format!("$skip must be a non-negative integer, not '{text}'."))
                        .with_target("$skip"),
                )
            }
            None => 0,
        };
        let range_text = format!("fromDateTime={},toDateTime={}", range.from, range.to);
        let fingerprint = fingerprint(kind.as_str(), &[Some(&range_text), self.options.count.as_deref()]);
        let token = self.decode_skiptoken(&fingerprint)?;
        let after = match &token {
            Some(token) => match token.key.as_slice() {
                [start, id] => Some(RecordCursor {
                    start_ticks: start.parse().map_err(|_| invalid_skiptoken())?,
                    id: id.clone(),
                }),
                _ => return Err(invalid_skiptoken()),
            },
            None => None,
        };
        let remaining = token.as_ref().map_or(top, |token| token.remaining);
        let size = remaining.map_or(LOG_PAGE, |r| LOG_PAGE.min(u32::try_from(r).unwrap_or(u32::MAX)));
        let mut rows = self
            .state
            .store
            .list_log_rows(
                &self.tenant,
                &LogRowQuery {
                    kind,
                    from_ticks: range.from.unix_ticks(),
                    to_ticks: range.to.unix_ticks(),
                    after,
                    skip: if token.is_some() { 0 } else { skip },
                    limit: size + 1,
                },
            )
            .await?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);

        let mut body = JsonObject::with_capacity(rows.iter().map(|row| row.document.len() + 1).sum::<usize>() + 512);
        body.string(
            "@odata.context",
            &context_url(&self.ctx, &format!("Collection({})", kind.row_type())),
        );
        body.integer("@odata.count", i64::try_from(rows.len()).unwrap_or(i64::MAX));
        // Rows are served as stored: the store wrote them with our serializer (see `api::raw`).
        let values: Vec<&str> = rows.iter().map(|row| row.document.as_str()).collect();
        body.raw_array("value", &values);
        let left = remaining.map(|r| r.saturating_sub(u64::from(size)));
        if let (true, Some(last)) = (more && left != Some(0), rows.last()) {
            let token = SkipToken {
                key: vec![last.start_ticks.to_string(), last.id.clone()],
                remaining: left,
            };
            let mut options = Vec::new();
            if let Some(count) = &self.options.count {
                options.push(("$count", count.clone()));
            }
            options.push(("$skiptoken", query::encode_skiptoken(&token, &fingerprint)));
            let path = format!("communications/callRecords/{}({range_text})", function_name(kind));
            body.string("@odata.nextLink", &link(&self.ctx, &path, &options));
        }
        Ok(odata::json_text_response(&self.ctx, body.finish(), Vec::new()))
    }
}
