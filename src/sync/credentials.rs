//! Access tokens for the upstream, as an app gets them from Entra ID: the OAuth 2.0
//! client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token`, the secret in the form,
//! the token cached and renewed before it expires. callrecords' own issuer answers the same
//! grant at the same path.

use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::SyncError;

/// A token is renewed when this little of its life is left (or half of it, for short-lived ones).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where and as whom tokens are asked for.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub secret: Secret,
    pub scope: String,
}

impl ClientCredentials {
    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant
        )
    }
}

struct CachedToken {
    value: String,
    renew_at: Instant,
}

/// Tokens for one app in one tenant, asked for when needed and reused until shortly before
/// they expire.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    credentials: ClientCredentials,
    cached: Mutex<Option<CachedToken>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource {
    pub(crate) fn new(http: reqwest::Client, credentials: ClientCredentials) -> Self {
        Self {
            http,
            credentials,
            cached: Mutex::new(None),
        }
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub(crate) async fn token(&self) -> Result<String, SyncError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|token| Instant::now() < token.renew_at) {
            return Ok(token.value.clone());
        }
        let fresh = self.request().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets the cached token, after the upstream refused it.
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self) -> Result<CachedToken, SyncError> {
        let credentials = &self.credentials;
        let url = credentials.token_url();
        let response = self
            .http
            .post(&url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", credentials.client_id.as_str()),
                ("client_secret", credentials.secret.expose()),
                ("scope", credentials.scope.as_str()),
            ])
            .send()
            .await
            .map_err(|error| SyncError::Unreachable {
                what: format!("the authority at {url}"),
                cause: super::graph::describe(&error),
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let error: OAuthError = serde_json::from_slice(&body).unwrap_or_default();
            return Err(SyncError::Credentials(format!(
                "the authority at {url} refused a token to app {} in tenant {} ({status}{}{})",
                credentials.client_id,
                credentials.tenant,
                if error.error.is_empty() { "" } else { ": " },
                [error.error, error.error_description]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ")
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|error| SyncError::Credentials(format!("the authority at {url} answered no token: {error}")))?;
        let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let renew_in = life.saturating_sub(RENEW_BEFORE.min(life / 2));
        Ok(CachedToken {
            value: answer.access_token,
            renew_at: Instant::now() + renew_in,
        })
    }
}

/// The application roles an access token carries (its `roles` claim), read without checking the
/// signature: the collector only uses it to say early and clearly which permission is missing;
/// the upstream decides.
pub(crate) fn roles_of(token: &str) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Claims {
        #[serde(default)]
        roles: Vec<String>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Claims>(&bytes).ok().map(|claims| claims.roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let credentials = ClientCredentials {
            authority: "https://login.example".to_owned(),
            tenant: "t".to_owned(),
            client_id: "c".to_owned(),
            secret: Secret::new("hunter2".to_owned()),
            scope: "s".to_owned(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn roles_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"roles":["CallRecords.Read.All"]}"#);
        assert_eq!(
            roles_of(&format!("h.{payload}.s")),
            Some(vec!["CallRecords.Read.All".to_owned()])
        );
        assert_eq!(roles_of("not a token"), None);
    }
}
