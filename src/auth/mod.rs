//! Who is calling: bearer tokens (JWT) checked as Graph checks them, application roles, and the
//! tenant a request acts for (the `tid`, `azp`/`appid` and `roles` claims).
//!
//! `Authenticator` turns an `Authorization` header into a `Principal` or an `AuthFailure`; the
//! roles below are what `Principal::may` checks. Which roles a request needs is decided by the
//! HTTP layer from the parsed resource (`api::auth::required_roles`), which also maps failures
//! to 401/403.
//! Signature checks are jsonwebtoken's; nothing here does cryptography by hand.
//!
//! Never: HTTP status codes, SQL. Next: `local` for the built-in issuer, `oidc` for an
//! external one.

pub mod local;
pub(crate) mod oidc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::clock::Clock;
use crate::store::{Store, TenantId};

/// Read call records, sessions, segments, participants and subscriptions (and, as Graph's
/// function pages list it, the usage-log functions).
pub const READ_ALL: &str = "CallRecords.Read.All";
/// Read the PSTN, Direct Routing and SMS usage logs.
pub const PSTN_READ_ALL: &str = "CallRecord-PstnCalls.Read.All";
/// Ours, not Graph's: write through `/ingest/…`.
pub const INGEST: &str = "CallRecords.Ingest";

/// Every role a token may carry here.
pub(crate) const ROLES: &[&str] = &[READ_ALL, PSTN_READ_ALL, INGEST];

/// The caller of one request.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub(crate) tenant: TenantId,
    /// The calling application (`azp`, or `appid` in v1 tokens).
    pub(crate) app_id: String,
    pub(crate) roles: Vec<String>,
    /// Whether the token was delegated (`scp`, no `roles`): Graph's call records APIs support no
    /// delegated permission, so they refuse it.
    pub(crate) delegated: bool,
}

impl Principal {
    /// The caller when authentication is off: the default tenant, every role.
    pub(crate) fn anonymous() -> Self {
        Self {
            tenant: TenantId::default_tenant(),
            app_id: "anonymous".to_owned(),
            roles: ROLES.iter().map(|role| (*role).to_owned()).collect(),
            delegated: false,
        }
    }

    /// The caller of a path that needs no token while authentication is on: no role at all.
    pub(crate) fn nobody() -> Self {
        Self {
            tenant: TenantId::default_tenant(),
            app_id: String::new(),
            roles: Vec::new(),
            delegated: false,
        }
    }

    /// Whether the caller holds one of `any_of` as an application role.
    pub(crate) fn may(&self, any_of: &[&str]) -> bool {
        !self.delegated && self.roles.iter().any(|role| any_of.contains(&role.as_str()))
    }
}

/// Why a request carries no usable token. Every variant is a 401; the text goes to the log and
/// to `WWW-Authenticate`'s `error_description`, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthFailure {
    #[error("no bearer token")]
    Missing,
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("the token is not valid: {0}")]
    Invalid(String),
}

/// The claims we read from an access token. `exp`, `nbf`, `iss` and `aud` are checked by
/// jsonwebtoken's `Validation` before these are looked at.
#[derive(Debug, Deserialize)]
struct AccessClaims {
    tid: String,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scp: Option<String>,
}

/// Where verification keys come from.
#[derive(Clone)]
pub(crate) enum KeySource {
    /// The local issuer's keys in our own store.
    Local(Arc<dyn Store>),
    /// An external OpenID Connect issuer's JWKS (`--auth oidc`).
    Remote(Arc<oidc::RemoteIssuer>),
}

impl KeySource {
    async fn load(&self) -> anyhow::Result<HashMap<String, Arc<DecodingKey>>> {
        match self {
            KeySource::Local(store) => local::verification_keys(store.as_ref()).await,
            KeySource::Remote(issuer) => issuer.verification_keys().await,
        }
    }

    /// The least time between two loads: a flood of tokens naming unknown keys must not become
    /// a flood of requests to the issuer (or of queries to the store).
    fn refresh_after(&self) -> Duration {
        match self {
            KeySource::Local(_) => Duration::from_secs(1),
            KeySource::Remote(_) => Duration::from_secs(5),
        }
    }
}

/// Checks bearer tokens against an issuer's keys, refreshing them when a token names a key id
/// it has not seen (at most once per `KeySource::refresh_after`) and when they are `MAX_KEY_AGE`
/// old, so a rotation needs no restart and a withdrawn key stops working within the hour.
pub(crate) struct JwtAuthenticator {
    audience: String,
    /// `{issuer}` with `{tenant}` standing for the token's `tid`, as Entra's issuers are per tenant.
    issuer_template: String,
    source: KeySource,
    keys: RwLock<KeyCache>,
    /// Times the cache's reloads (`Clock::monotonic`); jsonwebtoken checks `exp` against the
    /// system clock itself.
    clock: Arc<dyn Clock>,
}

struct KeyCache {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    /// `Clock::monotonic` at the last load.
    loaded_at: Option<Duration>,
}

/// Keys held this long are loaded again before the next check, even if the token's key is known.
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

impl JwtAuthenticator {
    pub fn new(source: KeySource, issuer_template: String, audience: String, clock: Arc<dyn Clock>) -> Self {
        Self {
            audience,
            issuer_template,
            source,
            keys: RwLock::new(KeyCache {
                by_kid: HashMap::new(),
                loaded_at: None,
            }),
            clock,
        }
    }

    fn age(&self, cache: &KeyCache) -> Option<Duration> {
        cache.loaded_at.map(|at| self.clock.monotonic().saturating_sub(at))
    }

    pub(crate) fn issuer_for(&self, tenant: &TenantId) -> String {
        oidc::TENANT_PLACEHOLDERS
            .iter()
            .fold(self.issuer_template.clone(), |issuer, placeholder| {
                issuer.replace(placeholder, tenant.as_str())
            })
    }

    async fn key(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, anyhow::Error> {
        let refresh_after = self.source.refresh_after();
        {
            let cache = self.keys.read().await;
            let age = self.age(&cache);
            if let Some(key) = cache.by_kid.get(kid) {
                if age.is_some_and(|age| age < MAX_KEY_AGE) {
                    return Ok(Some(key.clone()));
                }
            } else if age.is_some_and(|age| age < refresh_after) {
                return Ok(None);
            }
        }
        let mut cache = self.keys.write().await;
        // Another request may have reloaded while this one waited for the lock.
        let stale = self.age(&cache).is_none_or(|age| age >= refresh_after);
        if stale {
            match self.source.load().await {
                Ok(keys) => cache.by_kid = keys,
                // Keys that still verify are better than none while the issuer is unreachable.
                Err(error) if !cache.by_kid.is_empty() => {
                    tracing::warn!(error = %format!("{error:#}"), "the signing keys could not be reloaded; keeping those held");
                }
                Err(error) => return Err(error),
            }
            cache.loaded_at = Some(self.clock.monotonic());
        }
        Ok(cache.by_kid.get(kid).cloned())
    }

    /// Loads the keys now, so that a misconfigured issuer shows at start rather than at the
    /// first request.
    pub(crate) async fn preload(&self) -> anyhow::Result<usize> {
        let keys = self.source.load().await?;
        let count = keys.len();
        let mut cache = self.keys.write().await;
        cache.by_kid = keys;
        cache.loaded_at = Some(self.clock.monotonic());
        Ok(count)
    }

    /// Verifies a compact JWS and returns its caller.
    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| AuthFailure::Invalid(error.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthFailure::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthFailure::Invalid("the token names no key (kid)".to_owned()))?;
        let key = self
            .key(&kid)
            .await
            .map_err(|error| AuthFailure::Invalid(format!("the signing keys could not be loaded: {error:#}")))?
            .ok_or_else(|| AuthFailure::Invalid(format!("unknown signing key '{kid}'")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        // The issuer depends on the tenant inside the token: checked below, once `tid` is read.
        validation.iss = None;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|error| AuthFailure::Invalid(error.to_string()))?;
        let claims: AccessClaims = serde_json::from_value(data.claims.clone())
            .map_err(|error| AuthFailure::Invalid(format!("claims: {error}")))?;
        let tenant = TenantId::parse(&claims.tid)
            .ok_or_else(|| AuthFailure::Invalid(format!("tid '{}' is not a tenant id", claims.tid)))?;
        let issuer = data
            .claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if issuer != self.issuer_for(&tenant) {
            return Err(AuthFailure::Invalid(format!("issuer '{issuer}' is not trusted")));
        }
        let delegated = claims.scp.is_some() && claims.roles.is_empty();
        Ok(Principal {
            tenant,
            app_id: claims.azp.or(claims.appid).unwrap_or_default(),
            roles: claims.roles,
            delegated,
        })
    }
}

/// How `serve` authenticates requests.
pub(crate) enum Authenticator {
    /// `--auth none`: every request is the anonymous principal of the default tenant.
    None,
    Jwt(JwtAuthenticator),
}

impl Authenticator {
    /// The caller of a request with this `Authorization` header value.
    pub(crate) async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthFailure> {
        match self {
            Authenticator::None => Ok(Principal::anonymous()),
            Authenticator::Jwt(jwt) => {
                let value = authorization.ok_or(AuthFailure::Missing)?;
                let (scheme, token) = value.trim().split_once(' ').ok_or(AuthFailure::NotBearer)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(AuthFailure::NotBearer);
                }
                let token = token.trim();
                if token.is_empty() {
                    return Err(AuthFailure::Missing);
                }
                jwt.verify(token).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_callers_hold_no_role() {
        let mut principal = Principal::anonymous();
        assert!(principal.may(&[READ_ALL]));
        principal.delegated = true;
        assert!(!principal.may(&[READ_ALL]));
    }
}
