//! Access tokens for the upstream, as an app gets them from Entra ID: the OAuth 2.0
//! client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token`, the secret in the form,
//! the token cached and renewed before it expires. The app proves itself with a secret or with a
//! certificate (a client assertion: a JWT signed with the certificate's key, RFC 7523), as Entra
//! ID allows. callrecords' own issuer answers the same grant at the same path.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use sha1::Digest as _;
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

/// A certificate and its private key, which sign client assertions.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    key: EncodingKey,
}

impl Certificate {
    /// The certificate and its RSA private key (PKCS#8 or PKCS#1) from one PEM text, as
    /// `openssl pkcs12 -nodes` writes them.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let blocks = pem::parse_many(text).map_err(|error| format!("not PEM: {error}"))?;
        let der = blocks
            .iter()
            .find(|block| block.tag() == "CERTIFICATE")
            .map(|block| block.contents().to_vec())
            .ok_or("no CERTIFICATE block")?;
        let key = blocks
            .iter()
            .find(|block| matches!(block.tag(), "PRIVATE KEY" | "RSA PRIVATE KEY"))
            .ok_or("no PRIVATE KEY block (the certificate's key, unencrypted)")?;
        let key = EncodingKey::from_rsa_pem(pem::encode(key).as_bytes())
            .map_err(|error| format!("the private key is not an RSA key: {error}"))?;
        Ok(Self { der, key })
    }

    /// A client assertion for `token_url`, valid for ten minutes.
    fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, SyncError> {
        let mut header = Header::new(Algorithm::RS256);
        // Entra ID names the certificate by its SHA-1 thumbprint; our issuer (and Entra, lately)
        // by its SHA-256 one. Both are sent.
        header.x5t = Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&self.der)));
        header.x5t_s256 = Some(crate::auth::local::certificate_thumbprint(&self.der));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|error| SyncError::Credentials(format!("signing a client assertion: {error}")))
    }
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Certificate(x5t#S256 {})",
            crate::auth::local::certificate_thumbprint(&self.der)
        )
    }
}

/// How the app proves itself.
#[derive(Clone, Debug)]
pub enum Credential {
    Secret(Secret),
    Certificate(Certificate),
}

/// Where and as whom tokens are asked for.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
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
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", credentials.client_id.clone()),
            ("scope", credentials.scope.clone()),
        ];
        match &credentials.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.expose().to_owned())),
            Credential::Certificate(certificate) => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", certificate.assertion(&credentials.client_id, &url)?));
            }
        }
        let response = self
            .http
            .post(&url)
            .form(&form)
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
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
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
            credential: Credential::Secret(Secret::new("hunter2".to_owned())),
            scope: "s".to_owned(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn roles_are_read_from_the_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"roles":["CallRecords.Read.All"]}"#);
        assert_eq!(
            roles_of(&format!("h.{payload}.s")),
            Some(vec!["CallRecords.Read.All".to_owned()])
        );
        assert_eq!(roles_of("not a token"), None);
    }
}
