//! `GET /dashboard`: CQD's summary views in the browser. The page, its script and styles and the
//! vendored Chart.js are compiled into the binary, so the dashboard needs no network at run time;
//! the page reads `/analytics/...` with the person's token like any client.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Each asset: its path under `/dashboard/`, content type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/style.css"),
    ),
    (
        "vendor/chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/vendor/chart.umd.min.js"),
    ),
    (
        "vendor/LICENSE.md",
        "text/markdown; charset=utf-8",
        include_bytes!("../../assets/dashboard/vendor/LICENSE.md"),
    ),
];

const PAGE: &str = include_str!("../../assets/dashboard/index.html");

/// The page itself: no token needed to load it, only to read the data.
pub(crate) async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    secure(&mut response);
    response
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == path) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("/dashboard/{path} is not a dashboard file"),
        )
        .into_response();
    };
    let mut response = ([(header::CONTENT_TYPE, *content_type)], *body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(&mut response);
    response
}

/// The page runs only its own scripts and talks only to its own origin.
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
