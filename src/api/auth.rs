//! Authentication at the HTTP edge: the middleware that turns a bearer token into a
//! `Principal` (401 and 403 as Graph answers them), and the local issuer's OAuth 2.0
//! endpoints: OpenID discovery, JWKS and the client-credentials token endpoint.
//!
//! The issuer's endpoints answer errors in OAuth 2.0's shape (RFC 6749 §5.2), not OData's: they
//! are not Graph, and the clients that call them (MSAL, azure-identity) read `error`.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::path::{Resource, Target};
use super::AppState;
use crate::auth::{self, local, AuthFailure, Authenticator, Principal};
use crate::store::TenantId;

/// Marks a 4xx whose body is already in its final shape, so the OData envelope leaves it alone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnErrorBody;

/// Authenticates every request whose path needs a role, and checks the role, before anything
/// looks at the store. The path was parsed once, by the outermost layer (`count_request`): the
/// roles, the throttle buckets and (through the request's extensions) the handler all use that
/// one `Target`. The principal goes
/// into the extensions too; paths that need no token get the role-less principal of the default
/// tenant.
pub(crate) async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let target = match request.extensions_mut().remove::<Target>() {
        Some(target) => target,
        None => Target::of(request.uri().path()),
    };
    let principal = match (required_roles(&target), state.authenticator.as_ref()) {
        (_, Authenticator::None) => Principal::anonymous(),
        (None, _) => Principal::nobody(),
        (Some(roles), authenticator) => {
            let header_value = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok());
            match authenticator.authenticate(header_value).await {
                Ok(principal) if principal.may(roles) => principal,
                Ok(principal) => {
                    tracing::info!(app = %principal.app_id, tenant = %principal.tenant.as_str(), delegated = principal.delegated, "refused: the token lacks the role");
                    return forbidden().into_response();
                }
                Err(failure) => {
                    tracing::info!(reason = %failure, "refused: no valid token");
                    return unauthorized(&failure).into_response();
                }
            }
        }
    };
    if let Err(throttled) = state.throttle.check(&principal, &target) {
        return throttled.into_response();
    }
    request.extensions_mut().insert(principal);
    request.extensions_mut().insert(target);
    next.run(request).await
}

/// The roles a request needs, from what its path addresses: `None` for what needs no
/// token (the service document, `$metadata`, `/`, `/healthz`, `/metrics`, the issuer's endpoints), otherwise any one of the
/// listed roles. Only a log function itself takes the weaker role; any other Graph path,
/// including one that names no resource, needs `CallRecords.Read.All`.
pub(crate) fn required_roles(target: &Target) -> Option<&'static [&'static str]> {
    match target {
        Target::Ingest => Some(&[auth::INGEST]),
        Target::Analytics | Target::Export { logs: false } => Some(&[auth::READ_ALL]),
        Target::Export { logs: true } => Some(&[auth::READ_ALL, auth::PSTN_READ_ALL]),
        Target::Graph(Ok(Resource::Metadata | Resource::ServiceDocument)) => None,
        Target::Graph(Ok(Resource::Function(..))) => Some(&[auth::READ_ALL, auth::PSTN_READ_ALL]),
        Target::Graph(..) => Some(&[auth::READ_ALL]),
        Target::Other => None,
    }
}

fn unauthorized(failure: &AuthFailure) -> ApiError {
    let (message, challenge) = match failure {
        AuthFailure::Missing => ("Access token is empty.", "Bearer".to_owned()),
        AuthFailure::NotBearer | AuthFailure::Invalid(_) => (
            "Access token validation failure.",
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                failure.to_string().replace(['"', '\\'], "'")
            ),
        ),
    };
    let mut error = ApiError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message);
    error.www_authenticate = Some(challenge);
    error
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "Insufficient privileges to complete the operation.",
    )
}

/// An OAuth 2.0 error response: a JSON body with `error` and `error_description` (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    response.extensions_mut().insert(OwnErrorBody);
    response
}

fn local_issuer_enabled(state: &AppState) -> bool {
    matches!(state.settings.auth, crate::api::AuthMode::Local { .. })
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    if !local_issuer_enabled(&state) {
        return ApiError::resource_not_found().into_response();
    }
    let Some(tenant) = TenantId::parse(&tenant) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_tenant", "The tenant must be a GUID.");
    };
    let base = super::context::base_url(&state.settings, &uri, &headers);
    let tid = tenant.as_str();
    Json(json!({
        "issuer": local::ISSUER_TEMPLATE.replace("{tenant}", tid),
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_types_supported": ["token"],
        "grant_types_supported": ["client_credentials"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`: the JWKS.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    if !local_issuer_enabled(&state) {
        return ApiError::resource_not_found().into_response();
    }
    match local::jwks(state.store.as_ref()).await {
        Ok(keys) => Json(json!({ "keys": keys })).into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    scope: Option<String>,
}

/// RFC 7523's client assertion type: a JWT signed with the app's certificate.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, with the client's id and
/// secret in the form or in HTTP Basic authentication.
pub(crate) async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: axum::http::HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let crate::api::AuthMode::Local { audience } = &state.settings.auth else {
        return ApiError::resource_not_found().into_response();
    };
    let Some(tenant) = TenantId::parse(&tenant) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The tenant must be a GUID.");
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the client_credentials grant is supported.",
        );
    }
    let expected_scope = format!("{audience}/.default");
    match form.scope.as_deref() {
        Some(scope) if scope.split_whitespace().any(|s| s == expected_scope) => {}
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("The scope must be '{expected_scope}'."),
            )
        }
    }
    let authenticated = match (form.client_assertion_type.as_deref(), form.client_assertion) {
        (Some(JWT_BEARER_ASSERTION), Some(assertion)) => {
            local::authenticate_assertion(state.store.as_ref(), &tenant, form.client_id.as_deref(), &assertion).await
        }
        (Some(_), _) | (None, Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("client_assertion_type must be '{JWT_BEARER_ASSERTION}', with a client_assertion."),
            )
        }
        (None, None) => {
            let (client_id, client_secret) = match (form.client_id, form.client_secret, basic_credentials(&headers)) {
                (_, _, Some((id, secret))) => (id, secret),
                (Some(id), Some(secret), None) => (id, secret),
                _ => {
                    return oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "Send client_id and client_secret, or a client_assertion.",
                    )
                }
            };
            local::authenticate_app(state.store.as_ref(), &tenant, &client_id, &client_secret).await
        }
    };
    let app = match authenticated {
        Ok(Some(app)) => app,
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client credentials are not valid for this tenant.",
            )
        }
        Err(error) => return ApiError::internal(error).into_response(),
    };
    let request = local::TokenRequest {
        tenant,
        app_id: app.client_id,
        roles: app.roles,
        audience: audience.clone(),
        lifetime_secs: local::TOKEN_LIFETIME_SECS,
    };
    match local::issue_token(state.store.as_ref(), &request).await {
        Ok(token) => {
            let mut response = Json(json!({
                "token_type": "Bearer",
                "expires_in": local::TOKEN_LIFETIME_SECS,
                "ext_expires_in": local::TOKEN_LIFETIME_SECS,
                "access_token": token,
            }))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => ApiError::internal(error).into_response(),
    }
}

fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{INGEST, PSTN_READ_ALL, READ_ALL};

    fn roles(path: &str) -> Option<&'static [&'static str]> {
        required_roles(&Target::of(path))
    }

    #[test]
    fn paths_need_the_application_roles_graph_documents() {
        assert_eq!(roles("/healthz"), None);
        assert_eq!(roles("/v1.0/$metadata"), None);
        assert_eq!(roles("/v1.0/communications/callRecords"), Some(&[READ_ALL][..]));
        assert_eq!(roles("/v1.0/subscriptions"), Some(&[READ_ALL][..]));
        let either = Some(&[READ_ALL, PSTN_READ_ALL][..]);
        assert_eq!(
            roles("/v1.0/communications/callRecords/microsoft.graph.callRecords.getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)"),
            either
        );
        assert_eq!(
            roles("/beta/communications/callRecords/getSmsLog(fromDateTime=2024-01-01,toDateTime=2024-01-02)"),
            either
        );
        assert_eq!(roles("/ingest/callRecords"), Some(&[INGEST][..]));
    }

    #[test]
    fn only_the_log_functions_themselves_take_the_weaker_role() {
        for path in [
            "/v1.0/communications/callRecords/getPstnCalls-1",
            "/v1.0/communications/callRecords('getPstnCalls-1')/sessions",
            "/v1.0/communications/callRecords/r/sessions/getpstncalls",
            "/v1.0/communications/callRecords/r/participants_v2/getSmsLog",
            "/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)/x",
            "/v1.0/communications/callRecords/getPstnCalls(fromDateTime=yesterday,toDateTime=2024-01-02)",
            "/v1.0/subscriptions/getDirectRoutingCalls",
            "/v1.0/nothing",
            "/V1.0/communications/callRecords/r",
            "/beta/communications/callRecords/r/getSmsLog",
        ] {
            assert_eq!(roles(path), Some(&[READ_ALL][..]), "{path}");
        }
    }
}
