//! Per-request facts every handler needs, parsed once: ids for the envelope, the client's
//! `Prefer` preferences and the base URL links are built on.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::error::ApiError;
use super::AppState;
use crate::query::{self, Preferences};

/// The request-id we issue, the client's own id when it sent one, and the time for `innerError`.
#[derive(Clone, Debug)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: Option<String>,
    /// UTC to the second, no zone suffix, as Graph writes `innerError.date`.
    pub date: String,
}

impl RequestIds {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: headers
                .get("client-request-id")
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty() && value.len() <= 200)
                .map(str::to_owned),
            date: format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            ),
        }
    }
}

/// What a Graph handler knows about the request beyond its path and query.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub prefer: Preferences,
    /// `https://host` with no trailing slash; links append `/v1.0/...`.
    pub base_url: String,
    /// `v1.0`, or `beta` for the few beta-only functions we serve.
    pub version: &'static str,
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let prefer = query::parse_prefer(
            parts
                .headers
                .get_all("prefer")
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        let base_url = match &state.settings.public_base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = parts
                    .headers
                    .get("host")
                    .and_then(|value| value.to_str().ok())
                    .filter(|host| host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
                    .unwrap_or("localhost");
                format!("http://{host}")
            }
        };
        let version = if parts.uri.path().starts_with("/beta/") {
            "beta"
        } else {
            "v1.0"
        };
        Ok(Self {
            prefer,
            base_url,
            version,
        })
    }
}
