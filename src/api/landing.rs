//! `GET /`: the start page. What this server is, the base URLs an SDK takes, how to get a token
//! in the mode it runs in, what the store holds, and links that run sample queries.
//!
//! The page needs no token, so what it tells depends on the mode: without authentication every
//! request acts for the default tenant anyway, and the page lists the tenants with their record
//! counts and links to one of the records; with authentication it gives totals only, so an
//! anonymous visitor learns no tenant ids.

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::call_records::selection_from;
use super::error::{ApiError, Result};
use super::{AppState, AuthMode};
use crate::model::DateTimeOffset;
use crate::store::{self, TenantId, Timestamp};

/// Tenants listed by name; the rest are counted.
const LISTED_TENANTS: usize = 20;

/// The tenant the page's `--auth local` commands use: any GUID names a tenant.
const EXAMPLE_TENANT: &str = "11111111-1111-1111-1111-111111111111";

struct Sample {
    label: String,
    href: String,
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    version: &'static str,
    root: String,
    auth_mode: &'static str,
    auth_summary: String,
    local_tenant_example: Option<&'static str>,
    total_records: i64,
    tenant_count: usize,
    retention: String,
    tenants: Vec<(String, i64)>,
    hidden_tenants: usize,
    log_rows: Vec<(String, i64)>,
    needs_token: bool,
    samples: Vec<Sample>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<Response> {
    let settings = &state.settings;
    let now = state.clock.now();
    let stats = state.store.stats().await?;
    let open = settings.auth == AuthMode::None;
    let (auth_mode, auth_summary) = match &settings.auth {
        AuthMode::None => ("none", "no token needed; every request acts for the default tenant.".to_owned()),
        AuthMode::Local { .. } => (
            "local",
            "this server issues the tokens. Register an application, then use the client-credentials grant as with Entra ID:"
                .to_owned(),
        ),
        AuthMode::Oidc { issuer, audience, .. } => (
            "oidc",
            format!(
                "tokens of the issuer {issuer} for the audience {audience}, with the application roles {} (reads), {} (usage logs) or {} (ingest).",
                crate::auth::READ_ALL,
                crate::auth::PSTN_READ_ALL,
                crate::auth::INGEST
            ),
        ),
    };
    let retention = match settings.retention_days {
        0 => "every stored call record is served".to_owned(),
        days => format!("records are served for {days} days after they start, as Graph does"),
    };
    let example_record = if open {
        let selection = selection_from(None, store::visible_from(settings.retention_days, Timestamp::from(now)));
        let newest = state
            .store
            .list_call_records(&TenantId::default_tenant(), &selection, None, 1)
            .await?;
        newest.into_iter().next().map(|record| record.id)
    } else {
        None
    };
    let tenants: Vec<(String, i64)> = if open {
        stats
            .call_records_by_tenant
            .iter()
            .take(LISTED_TENANTS)
            .map(|(tenant, count)| (tenant.as_str().to_owned(), *count))
            .collect()
    } else {
        Vec::new()
    };
    let landing = Landing {
        version: env!("CARGO_PKG_VERSION"),
        root: super::context::base_url(settings, &uri, &headers),
        auth_mode,
        auth_summary,
        local_tenant_example: matches!(settings.auth, AuthMode::Local { .. }).then_some(EXAMPLE_TENANT),
        total_records: stats.call_records(),
        tenant_count: stats.call_records_by_tenant.len(),
        retention,
        hidden_tenants: stats.call_records_by_tenant.len() - tenants.len(),
        tenants,
        log_rows: stats.log_rows_by_kind.clone(),
        needs_token: !open,
        samples: samples(now, example_record.as_deref()),
    };
    let html = landing
        .render()
        .map_err(|error| ApiError::internal(anyhow::Error::new(error)))?;
    let mut response = (StatusCode::OK, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(response)
}

/// Sample queries, dated from today so that they find what the demo and recent ingests hold.
fn samples(now: DateTimeOffset, record_id: Option<&str>) -> Vec<Sample> {
    let day = |offset: i64| {
        let date = (now.as_offset_date_time() + time::Duration::days(offset)).date();
        format!("{date}")
    };
    let (yesterday, today, tomorrow, week_ago) = (day(-1), day(0), day(1), day(-7));
    let list = "/v1.0/communications/callRecords";
    let mut samples = vec![
        Sample {
            label: "the first five call records, a few properties each".to_owned(),
            href: format!("{list}?$select=id,type,modalities,startDateTime,endDateTime&$top=5"),
        },
        Sample {
            label: format!("calls that started yesterday ({yesterday})"),
            href: format!(
                "{list}?$filter=startDateTime%20ge%20{yesterday}T00:00:00Z%20and%20startDateTime%20lt%20{today}T00:00:00Z&$select=id,startDateTime"
            ),
        },
        Sample {
            label: "how many call records are served".to_owned(),
            href: format!("{list}/$count"),
        },
    ];
    if let Some(id) = record_id {
        let id = utf8_percent_encode(id, SEGMENT);
        samples.push(Sample {
            label: "one call with its sessions and their segments".to_owned(),
            href: format!("{list}/{id}?$expand=sessions($expand=segments)"),
        });
        samples.push(Sample {
            label: "its participants".to_owned(),
            href: format!("{list}/{id}/participants_v2"),
        });
    }
    samples.extend([
        Sample {
            label: format!("PSTN calls of the last week ({week_ago} to {today})"),
            href: format!("{list}/getPstnCalls(fromDateTime={week_ago},toDateTime={tomorrow})"),
        },
        Sample {
            label: "Direct Routing calls of the last week".to_owned(),
            href: format!("{list}/getDirectRoutingCalls(fromDateTime={week_ago},toDateTime={tomorrow})"),
        },
        Sample {
            label: "the v1.0 service document".to_owned(),
            href: "/v1.0".to_owned(),
        },
        Sample {
            label: "the v1.0 schema (CSDL)".to_owned(),
            href: "/v1.0/$metadata".to_owned(),
        },
        Sample {
            label: "the beta schema".to_owned(),
            href: "/beta/$metadata".to_owned(),
        },
    ]);
    samples
}

/// What a path segment cannot hold as it is: all but RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
