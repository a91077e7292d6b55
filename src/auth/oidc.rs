//! An external OpenID Connect issuer (such as Microsoft Entra ID): its discovery document names
//! its JWKS, whose RSA keys verify the tokens. Keys are fetched again when a token names a key id
//! we do not hold (the issuer rotated) and when the ones we hold are an hour old (the issuer
//! withdrew one), so rotation needs neither a restart nor an operator.
//!
//! Never: token checks themselves (`JwtAuthenticator`), HTTP status codes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// The placeholders an issuer template may hold where the tenant id goes: ours (`{tenant}`) and
/// Entra's multi-tenant discovery documents' (`{tenantid}`).
pub(crate) const TENANT_PLACEHOLDERS: [&str; 2] = ["{tenantid}", "{tenant}"];

/// Where the keys of an external issuer come from.
pub(crate) struct RemoteIssuer {
    /// `--issuer`, possibly with a tenant placeholder (multi-tenant issuers).
    issuer: String,
    discovery_url: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

impl RemoteIssuer {
    /// `discovery_url` defaults to the issuer's `/.well-known/openid-configuration`; a tenant
    /// placeholder in the issuer becomes `common` there, which is where Entra serves the
    /// multi-tenant document.
    pub fn new(issuer: String, discovery_url: Option<String>) -> anyhow::Result<Self> {
        let discovery_url = discovery_url.unwrap_or_else(|| {
            let mut base = issuer.trim_end_matches('/').to_owned();
            for placeholder in TENANT_PLACEHOLDERS {
                base = base.replace(placeholder, "common");
            }
            format!("{base}/.well-known/openid-configuration")
        });
        require_secure(&discovery_url).context("the OpenID discovery URL")?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .context("building the OpenID Connect client")?;
        Ok(Self {
            issuer,
            discovery_url,
            client,
        })
    }

    pub(crate) fn discovery_url(&self) -> &str {
        &self.discovery_url
    }

    /// The issuer's current verification keys, by key id: RSA keys meant for signatures. Keys of
    /// other types and malformed entries are skipped, not fatal: an issuer may publish keys for
    /// other uses beside the ones that sign our tokens.
    pub(crate) async fn verification_keys(&self) -> anyhow::Result<HashMap<String, Arc<DecodingKey>>> {
        let discovery: DiscoveryDocument = self.get_json(&self.discovery_url).await?;
        if !issuer_matches(&self.issuer, &discovery.issuer) {
            anyhow::bail!(
                "{} names the issuer '{}', not '{}' (--issuer)",
                self.discovery_url,
                discovery.issuer,
                self.issuer
            );
        }
        require_secure(&discovery.jwks_uri).context("the issuer's jwks_uri")?;
        let key_set: RawKeySet = self.get_json(&discovery.jwks_uri).await?;
        let mut keys = HashMap::new();
        for value in key_set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let for_signing = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
            let rs256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
            let rsa = matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_));
            if !(for_signing && rs256 && rsa) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(&jwk) {
                keys.insert(kid, Arc::new(key));
            }
        }
        if keys.is_empty() {
            anyhow::bail!("{} holds no RSA signing key", discovery.jwks_uri);
        }
        Ok(keys)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> anyhow::Result<T> {
        let response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("fetching {url}"))?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("{url} answered {status}");
        }
        let body = response.bytes().await.with_context(|| format!("reading {url}"))?;
        serde_json::from_slice(&body).with_context(|| format!("{url} is not the JSON expected"))
    }
}

/// Whether a discovery document's `issuer` is the configured one. With a tenant placeholder, a
/// document may carry a placeholder too (Entra's `common` document) or a concrete tenant id (a
/// tenant's own document).
fn issuer_matches(configured: &str, discovered: &str) -> bool {
    let normalise = |text: &str| text.replace("{tenantid}", "{tenant}");
    let configured = normalise(configured.trim_end_matches('/'));
    let discovered = normalise(discovered.trim_end_matches('/'));
    if configured == discovered {
        return true;
    }
    match configured.split_once("{tenant}") {
        Some((prefix, suffix)) => discovered
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|tenant| crate::store::TenantId::parse(tenant).is_some()),
        None => false,
    }
}

/// Keys fetched over plain HTTP could be swapped by anyone on the path; only loopback (a local
/// issuer, tests) may use it.
fn require_secure(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("'{url}' is not a URL"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(parsed.host_str().unwrap_or_default()) => Ok(()),
        _ => anyhow::bail!("'{url}' must be https:// (plain http:// only on loopback)"),
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_match_with_or_without_a_tenant_placeholder() {
        let entra = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(issuer_matches(entra, entra));
        assert!(issuer_matches(
            entra,
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
        ));
        assert!(issuer_matches(
            "https://callrecords.local/{tenant}/v2.0",
            "https://callrecords.local/{tenantid}/v2.0/"
        ));
        assert!(!issuer_matches(entra, "https://login.microsoftonline.com/common/v2.0"));
        assert!(!issuer_matches(
            entra,
            "https://evil.example/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
        ));
        assert!(!issuer_matches("https://idp.example/", "https://idp.example.org/"));
        assert!(issuer_matches("https://idp.example/", "https://idp.example"));
    }

    #[test]
    fn the_discovery_url_defaults_to_the_issuers_well_known_document() {
        let issuer = RemoteIssuer::new("https://login.microsoftonline.com/{tenantid}/v2.0".into(), None).unwrap();
        assert_eq!(
            issuer.discovery_url(),
            "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
        );
        let issuer = RemoteIssuer::new("https://idp.example/".into(), None).unwrap();
        assert_eq!(
            issuer.discovery_url(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn keys_travel_over_https_except_on_loopback() {
        assert!(require_secure("https://idp.example/keys").is_ok());
        assert!(require_secure("http://127.0.0.1:8080/keys").is_ok());
        assert!(require_secure("http://[::1]:8080/keys").is_ok());
        assert!(require_secure("http://localhost/keys").is_ok());
        assert!(require_secure("http://idp.example/keys").is_err());
        assert!(require_secure("ftp://127.0.0.1/keys").is_err());
    }
}
