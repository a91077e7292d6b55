//! `getPstnCalls`, `getDirectRoutingCalls` (v1.0 and beta), `getSmsLog` and
//! `getPstnBlockedUsersLog` (beta): usage-log rows of a time range, 1,000 a page;
//! and beta's `getPstnOnlineMeetingDialoutReport`, the sums of the days in the range.
//!
//! Our next links carry a keyset `$skiptoken` rather than the `$skip` of Graph's examples: an
//! offset would skip or repeat rows when rows arrive between pages, and would cost more the
//! deeper the page. A `$skip` the client sends itself is still honoured.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::response::Response;

use super::call_records::{ApiVersion, Graph};
use super::error::{ApiError, Result};
use super::odata::{self, context_url};
use super::paging::{after_page, Paging};
use super::path::{function_name, FunctionRange};
use super::raw::{JsonObject, RawEntity};
use crate::model::{LogKind, PstnOnlineMeetingDialoutReport};
use crate::store::{LogRowQuery, RecordCursor, Timestamp};

/// Graph's page size for the usage-log functions.
const LOG_PAGE: u32 = 1000;

/// The paging of a log function: tokens bound to its kind and range, next links to the same call.
fn function_paging(kind: LogKind, range: &FunctionRange, count: Option<&str>) -> Paging {
    let range_text = format!("fromDateTime={},toDateTime={}", range.from, range.to);
    let path = format!("communications/callRecords/{}({range_text})", function_name(kind));
    Paging::new(kind.as_str(), path, &[("$count", count)]).bound_to_path(range_text)
}

impl Graph {
    // Graph's getPstnCalls and getDirectRoutingCalls pages.
    pub(super) async fn call_log_function(&self, kind: LogKind, range: &FunctionRange) -> Result<Response> {
        // `$count=true` is accepted; the count of the page is always written (Graph's docs
        // define it as the rows in this response, not the total).
        let (top, skip) = (self.options.top, self.options.skip);
        let paging = function_paging(kind, range, self.options.raw.count.as_deref());
        let position = paging.position::<RecordCursor>(self.options.raw.skiptoken.as_deref(), top)?;
        let resumed = position.resumed();
        let (after, remaining) = (position.after, position.remaining);
        let size = remaining.map_or(LOG_PAGE, |r| LOG_PAGE.min(u32::try_from(r).unwrap_or(u32::MAX)));
        let mut rows = self
            .state
            .store
            .list_log_rows(
                &self.tenant,
                &LogRowQuery {
                    kind,
                    from: Timestamp::from(range.from),
                    to: Timestamp::from(range.to),
                    after,
                    skip: if resumed { 0 } else { skip },
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
        // Rows are served as stored (the store wrote them with our serializer, see `api::raw`),
        // with the beta-only properties taken out on v1.0 and filled in on beta.
        let values = rows
            .iter()
            .map(|row| row_for_version(kind, &row.document, self.version))
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(ApiError::internal)?;
        body.raw_array("value", &values);
        if let (Some(left), Some(last)) = (after_page(more, remaining, u64::from(size)), rows.last()) {
            let last = RecordCursor {
                start: last.start,
                id: last.id.clone(),
            };
            body.string("@odata.nextLink", &paging.next_link(&self.ctx, &last, left));
        }
        Ok(odata::json_text_response(&self.ctx, body.finish(), Vec::new()))
    }
}

/// A stored row as the version serves it: without the properties only beta declares on v1.0,
/// with every one of them on beta (null, or `[]` for a collection, where the sender gave none).
fn row_for_version(kind: LogKind, document: &str, version: ApiVersion) -> anyhow::Result<Cow<'_, str>> {
    let beta_only = kind.beta_only_properties();
    // `"name":` can only be a member name in our compact text (quotes in strings are escaped).
    let present = |name: &str| memchr::memmem::find(document.as_bytes(), format!("\"{name}\":").as_bytes()).is_some();
    match version {
        ApiVersion::V1 if beta_only.iter().any(|(name, _)| present(name)) => {
            let mut row = RawEntity::parse(document)?;
            for (name, _) in beta_only {
                row.remove(name);
            }
            Ok(Cow::Owned(row.to_json()))
        }
        ApiVersion::Beta if !beta_only.iter().all(|(name, _)| present(name)) => {
            let mut row = RawEntity::parse(document)?;
            for (name, absent) in beta_only {
                if !row.contains(name) {
                    row.push(name, *absent);
                }
            }
            Ok(Cow::Owned(row.to_json()))
        }
        _ => Ok(Cow::Borrowed(document)),
    }
}

/// The dial-out report is read from the store this many days at a time.
const DIALOUT_READ_BATCH: u32 = 5000;

impl Graph {
    /// `getPstnOnlineMeetingDialoutReport` (beta): the stored days whose start lies in the range,
    /// summed by user, user location, destination context and currency, in the order of those
    /// keys; 1,000 entries a page, a `$skiptoken` holding the last entry's key.
    pub(super) async fn dialout_report(&self, range: &FunctionRange) -> Result<Response> {
        let kind = LogKind::PstnOnlineMeetingDialout;
        let top = self.options.top;
        let paging = function_paging(kind, range, self.options.raw.count.as_deref());
        let position = paging.position::<Vec<Option<String>>>(self.options.raw.skiptoken.as_deref(), top)?;
        let after = position.after;
        let mut groups: BTreeMap<Vec<Option<String>>, PstnOnlineMeetingDialoutReport> = BTreeMap::new();
        let mut cursor = None;
        loop {
            let rows = self
                .state
                .store
                .list_log_rows(
                    &self.tenant,
                    &LogRowQuery {
                        kind,
                        from: Timestamp::from(range.from),
                        to: Timestamp::from(range.to),
                        after: cursor.take(),
                        skip: 0,
                        limit: DIALOUT_READ_BATCH,
                    },
                )
                .await?;
            for row in &rows {
                let mut day: PstnOnlineMeetingDialoutReport =
                    serde_json::from_str(&row.document).map_err(|e| ApiError::internal(e.into()))?;
                day.usage_date = None;
                let key: Vec<Option<String>> = day.group().iter().map(|part| part.map(str::to_owned)).collect();
                if after.as_ref().is_some_and(|after| &key <= after) {
                    continue;
                }
                match groups.get_mut(&key) {
                    Some(sum) => sum.add(&day),
                    None => {
                        groups.insert(key, day);
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == DIALOUT_READ_BATCH as usize => {
                    cursor = Some(RecordCursor {
                        start: last.start,
                        id: last.id.clone(),
                    });
                }
                _ => break,
            }
        }
        let remaining = position.remaining;
        let size = remaining.map_or(LOG_PAGE, |r| LOG_PAGE.min(u32::try_from(r).unwrap_or(u32::MAX))) as usize;
        let more = groups.len() > size;
        let page: Vec<(Vec<Option<String>>, PstnOnlineMeetingDialoutReport)> = groups.into_iter().take(size).collect();

        let mut body = JsonObject::with_capacity(page.len() * 320 + 512);
        body.string(
            "@odata.context",
            &context_url(&self.ctx, &format!("Collection({})", kind.row_type())),
        );
        body.integer("@odata.count", i64::try_from(page.len()).unwrap_or(i64::MAX));
        let values: Vec<String> = page.iter().map(|(_, entry)| crate::model::to_json(entry)).collect();
        body.raw_array("value", &values);
        if let (Some(left), Some((last, _))) = (after_page(more, remaining, size as u64), page.last()) {
            body.string("@odata.nextLink", &paging.next_link(&self.ctx, last, left));
        }
        Ok(odata::json_text_response(&self.ctx, body.finish(), Vec::new()))
    }
}
