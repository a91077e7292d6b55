//! OData response shaping shared by the Graph handlers: the JSON response with its headers,
//! context URLs, next links, `$select` projection and paging arithmetic.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::ApiError;
use super::ODATA_JSON;
use crate::model;

/// Characters left readable in query values of the links we write; everything else (notably
/// `&`, `+`, `#`, `%` and spaces) is percent-encoded so the link survives being followed verbatim.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b',')
    .remove(b'(')
    .remove(b')')
    .remove(b':')
    .remove(b'/')
    .remove(b'=');

/// Characters percent-encoded inside a quoted key in a path segment.
const PATH_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'\'')
    .remove(b'+');

pub(crate) fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// `callRecords('id')` with the id quoted as OData quotes strings and percent-encoded.
pub(crate) fn keyed(name: &str, key: &str) -> String {
    format!("{name}('{}')", utf8_percent_encode(&key.replace('\'', "''"), PATH_KEY))
}

/// `{base}/{version}/$metadata#{fragment}`.
pub(crate) fn context_url(ctx: &RequestContext, fragment: &str) -> String {
    format!("{}/{}/$metadata#{fragment}", ctx.base_url, ctx.version)
}

/// An absolute link to `path` (relative to `/v1.0/` or `/beta/`) with the given query options.
pub(crate) fn link(ctx: &RequestContext, path: &str, options: &[(&str, String)]) -> String {
    let mut url = format!("{}/{}/{path}", ctx.base_url, ctx.version);
    for (i, (name, value)) in options.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(&encode_query_value(value));
    }
    url
}

/// The page size for a collection: the server maximum, lowered by `odata.maxpagesize` (clamped,
/// never refused) and by what remains of `$top`. Returns the size and the preference to report.
pub(crate) fn page_size(ctx: &RequestContext, server_max: u32, remaining_top: Option<u64>) -> (u32, Option<String>) {
    let preferred = ctx.prefer.max_page_size.map(|n| n.min(server_max));
    let mut size = preferred.unwrap_or(server_max);
    if let Some(remaining) = remaining_top {
        size = size.min(u32::try_from(remaining).unwrap_or(u32::MAX));
    }
    (size, preferred.map(|n| format!("odata.maxpagesize={n}")))
}

/// Keeps the selected properties of an entity (and always `id`), plus annotations.
pub(crate) fn project(entity: &mut Map<String, Value>, select: &[String]) {
    if select.is_empty() {
        return;
    }
    entity.retain(|key, _| key == "id" || key.starts_with('@') || select.iter().any(|s| s == key));
}

/// A 200 JSON response with the preferences that were honoured; applies `include-unknown-enum-members`
/// and `omit-values=nulls` to the whole body.
pub(crate) fn json_response(ctx: &RequestContext, mut body: Value, mut applied: Vec<String>) -> Response {
    let saw_evolvable = model::shape_for_client(
        &mut body,
        ctx.prefer.include_unknown_enum_members,
        ctx.prefer.omit_nulls,
    );
    if ctx.prefer.omit_nulls {
        applied.push("omit-values=nulls".to_owned());
    }
    if ctx.prefer.include_unknown_enum_members && saw_evolvable {
        applied.push("include-unknown-enum-members".to_owned());
    }
    ok_json(body.to_string(), &applied)
}

/// `json_response` for a body already written as compact JSON text (see `api::raw`): the text is
/// sent as it is unless `omit-values=nulls` asks for a rewrite of the whole tree.
pub(crate) fn json_text_response(ctx: &RequestContext, mut body: String, mut applied: Vec<String>) -> Response {
    if ctx.prefer.omit_nulls {
        return match serde_json::from_str(&body) {
            Ok(value) => json_response(ctx, value, applied),
            Err(error) => ApiError::internal(anyhow::Error::new(error)).into_response(),
        };
    }
    if model::shape_text_for_client(&mut body, ctx.prefer.include_unknown_enum_members)
        && ctx.prefer.include_unknown_enum_members
    {
        applied.push("include-unknown-enum-members".to_owned());
    }
    ok_json(body, &applied)
}

/// A 200 with an OData JSON body and the preferences that were applied to it.
fn ok_json(body: String, applied: &[String]) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    if !applied.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&applied.join(",")) {
            headers.insert("Preference-Applied", value);
        }
    }
    response
}

/// A `$count` answer: a bare integer as text/plain, as OData's `/$count` is.
pub(crate) fn count_response(count: i64) -> Response {
    let mut response = (StatusCode::OK, count.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    response
}

/// Parses a document the store wrote. A failure means the store holds something we did not
/// write, which is a bug, not a client error.
pub(crate) fn parse_document(document: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str(document)? {
        Value::Object(map) => Ok(map),
        _ => anyhow::bail!("stored document is not a JSON object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_segments_quote_and_encode_ids() {
        assert_eq!(keyed("callRecords", "abc-1"), "callRecords('abc-1')");
        assert_eq!(keyed("participants_v2", "+1 425"), "participants_v2('+1%20425')");
        assert_eq!(keyed("sessions", "it's/x"), "sessions('it''s%2Fx')");
    }

    #[test]
    fn query_values_survive_being_followed() {
        assert_eq!(
            encode_query_value("startDateTime ge 2024-01-01T00:00:00+01:00 and participants_v2/any(p:p/id eq 'a&b')"),
            "startDateTime%20ge%202024-01-01T00:00:00%2B01:00%20and%20participants_v2/any(p:p/id%20eq%20%27a%26b%27)"
        );
    }
}
