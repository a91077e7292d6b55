//! Per-request facts every handler needs, parsed once: ids for the envelope, the client's
//! `Prefer` preferences and the base URL links are built on.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Uri};

use super::error::ApiError;
use super::{ApiSettings, AppState};
use crate::query::{self, Preferences};

/// The request-id we issue, the client's own id when it sent one, and the time for `innerError`.
#[derive(Clone, Debug)]
pub(crate) struct RequestIds {
    pub(crate) request_id: String,
    pub(crate) client_request_id: Option<String>,
    /// UTC to the second, no zone suffix, as Graph writes `innerError.date`.
    pub(crate) date: String,
}

impl RequestIds {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
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
pub(crate) struct RequestContext {
    pub(crate) prefer: Preferences,
    /// `https://host` with no trailing slash; links append `/v1.0/...`.
    pub(crate) base_url: String,
    /// `v1.0`, or `beta` for requests under `/beta/`.
    pub(crate) version: &'static str,
}

/// The scheme and host of the links we write: `--public-base-url`, or the scheme we serve and the
/// host the client asked for: HTTP/2's `:authority` (which hyper puts in the URI, not in a `Host`
/// header), else HTTP/1.1's `Host`. A host with characters no host name has is ignored, so a
/// forged header cannot inject text into links.
pub(crate) fn base_url(settings: &ApiSettings, uri: &Uri, headers: &HeaderMap) -> String {
    if let Some(url) = &settings.public_base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = uri
        .authority()
        .map(|authority| authority.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|value| value.to_str().ok()))
        .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
        .unwrap_or("localhost");
    format!("{}://{host}", settings.scheme())
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
        let base_url = base_url(&state.settings, &parts.uri, &parts.headers);
        let path = parts.uri.path();
        let version = if path == "/beta" || path.starts_with("/beta/") {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn links_use_the_host_the_client_asked_for_in_either_http_version() {
        let https = ApiSettings {
            https: true,
            ..ApiSettings::default()
        };
        // HTTP/2: the authority is in the URI and there is no Host header.
        let h2: Uri = "https://127.0.0.1:8443/v1.0/communications/callRecords"
            .parse()
            .unwrap();
        assert_eq!(base_url(&https, &h2, &HeaderMap::new()), "https://127.0.0.1:8443");
        // HTTP/1.1: origin-form URI, Host header.
        let h1: Uri = "/v1.0/communications/callRecords".parse().unwrap();
        assert_eq!(
            base_url(&https, &h1, &headers("calls.example:443")),
            "https://calls.example:443"
        );
        assert_eq!(
            base_url(&ApiSettings::default(), &h1, &headers("[::1]:8080")),
            "http://[::1]:8080"
        );
        assert_eq!(base_url(&https, &h1, &headers("evil\"/x")), "https://localhost");
        let proxied = ApiSettings {
            public_base_url: Some("https://graph.example.com/".to_owned()),
            ..ApiSettings::default()
        };
        assert_eq!(base_url(&proxied, &h2, &HeaderMap::new()), "https://graph.example.com");
    }
}
