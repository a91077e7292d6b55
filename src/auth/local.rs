//! The local token issuer (`--auth local`): RS256 keys kept in the store, tokens shaped like
//! Entra ID's application tokens (`tid`, `azp`, `roles`, per-tenant issuer), the JWKS that
//! verifies them, and client-credentials apps whose secrets are stored hashed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::clock::{Clock as _, SystemClock};
use crate::store::{IssuerStore, StoredApp, StoredSigningKey, TenantId, Timestamp};

/// The audience of the tokens we issue and accept by default: Graph's, so that SDK scopes
/// (`https://graph.microsoft.com/.default`) need no change.
pub const DEFAULT_AUDIENCE: &str = "https://graph.microsoft.com";

/// Our issuer, per tenant as Entra's is (`https://login.microsoftonline.com/{tid}/v2.0`). It is an
/// identifier, not an address: tokens minted by `callrecords token` must verify on any node.
pub const ISSUER_TEMPLATE: &str = "https://callrecords.local/{tenant}/v2.0";

/// How long an issued token lives, as Entra's app tokens do by default.
pub(crate) const TOKEN_LIFETIME_SECS: i64 = 3600;

/// How long a rotated-out key keeps verifying: a token's lifetime and some clock skew.
pub(crate) const ROTATION_OVERLAP_SECS: i64 = TOKEN_LIFETIME_SECS + 300;

/// The system's time: jsonwebtoken checks `exp` against it, so keys and tokens are dated by it too.
fn now() -> Timestamp {
    SystemClock.timestamp()
}

/// A new 2048-bit RSA key. Takes about a second in a release build.
fn new_signing_key() -> anyhow::Result<StoredSigningKey> {
    let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).context("generating an RSA key")?;
    let pem = private.to_pkcs8_pem(LineEnding::LF).context("encoding the RSA key")?;
    let public = RsaPublicKey::from(&private);
    Ok(StoredSigningKey {
        kid: key_id(&public),
        private_key_pem: pem.to_string(),
        created: now(),
        retired: None,
    })
}

/// RFC 7638 thumbprint of the public key: stable, and the same on every node.
fn key_id(public: &RsaPublicKey) -> String {
    let jwk = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(public.n().to_bytes_be())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

/// Makes sure the store holds a current signing key; creates one on first start. Two nodes
/// starting together may both create one: both are published and either verifies.
pub(crate) async fn ensure_signing_key(store: &dyn IssuerStore) -> anyhow::Result<()> {
    let now = now();
    let keys = store.signing_keys().await?;
    if keys.iter().any(|key| key.retired.is_none_or(|at| at > now)) {
        return Ok(());
    }
    let key = tokio::task::spawn_blocking(new_signing_key).await??;
    store.add_signing_key(&key, None).await?;
    tracing::info!(kid = %key.kid, "created the local issuer's signing key");
    Ok(())
}

/// `callrecords keys rotate`: a new current key; the old ones verify for `ROTATION_OVERLAP_SECS`
/// more, so tokens already handed out keep working until they expire.
pub async fn rotate_signing_key(store: &dyn IssuerStore) -> anyhow::Result<String> {
    let key = tokio::task::spawn_blocking(new_signing_key).await??;
    store
        .add_signing_key(
            &key,
            Some(now() + Duration::from_secs(ROTATION_OVERLAP_SECS.unsigned_abs())),
        )
        .await?;
    Ok(key.kid)
}

fn public_key(key: &StoredSigningKey) -> anyhow::Result<RsaPublicKey> {
    let private = RsaPrivateKey::from_pkcs8_pem(&key.private_key_pem)
        .with_context(|| format!("reading signing key {}", key.kid))?;
    Ok(RsaPublicKey::from(&private))
}

/// The keys that verify tokens now: current ones and those still inside their overlap.
pub(crate) async fn verification_keys(store: &dyn IssuerStore) -> anyhow::Result<HashMap<String, Arc<DecodingKey>>> {
    let now = now();
    let mut keys = HashMap::new();
    for key in store.signing_keys().await? {
        if key.retired.is_some_and(|at| at <= now) {
            continue;
        }
        let public = public_key(&key)?;
        let decoding = DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be());
        keys.insert(key.kid.clone(), Arc::new(decoding));
    }
    Ok(keys)
}

/// One key of the JWKS document.
#[derive(Debug, Serialize)]
pub(crate) struct Jwk {
    kty: &'static str,
    #[serde(rename = "use")]
    usage: &'static str,
    alg: &'static str,
    kid: String,
    n: String,
    e: String,
}

/// The JWKS document: every key that verifies tokens now.
pub(crate) async fn jwks(store: &dyn IssuerStore) -> anyhow::Result<Vec<Jwk>> {
    let now = now();
    let mut keys = Vec::new();
    for key in store.signing_keys().await? {
        if key.retired.is_some_and(|at| at <= now) {
            continue;
        }
        let public = public_key(&key)?;
        keys.push(Jwk {
            kty: "RSA",
            usage: "sig",
            alg: "RS256",
            kid: key.kid.clone(),
            n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
    }
    Ok(keys)
}

/// What a token says about its caller.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub tenant: TenantId,
    pub app_id: String,
    pub roles: Vec<String>,
    pub audience: String,
    pub lifetime_secs: i64,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    tid: &'a str,
    azp: &'a str,
    appid: &'a str,
    sub: &'a str,
    oid: &'a str,
    roles: &'a [String],
    ver: &'static str,
}

/// Signs an application token with the newest current key.
pub async fn issue_token(store: &dyn IssuerStore, request: &TokenRequest) -> anyhow::Result<String> {
    let now = now();
    let key = store
        .signing_keys()
        .await?
        .into_iter()
        .find(|key| key.retired.is_none_or(|at| at > now))
        .context("the local issuer has no signing key; start `callrecords serve --auth local` once")?;
    let encoding = EncodingKey::from_rsa_pem(key.private_key_pem.as_bytes()).context("loading the signing key")?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let issued_at = now.unix_seconds();
    let claims = Claims {
        aud: &request.audience,
        iss: ISSUER_TEMPLATE.replace("{tenant}", request.tenant.as_str()),
        iat: issued_at,
        nbf: issued_at,
        exp: issued_at + request.lifetime_secs,
        tid: request.tenant.as_str(),
        azp: &request.app_id,
        appid: &request.app_id,
        sub: &request.app_id,
        oid: &request.app_id,
        roles: &request.roles,
        ver: "2.0",
    };
    jsonwebtoken::encode(&header, &claims, &encoding).context("signing the token")
}

/// A registered app and its secret, shown once.
pub struct NewApp {
    pub client_id: String,
    pub client_secret: String,
}

fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The name a client assertion gives its certificate by (`x5t#S256`): the SHA-256 of the
/// certificate's DER, base64url.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// The DER of the first certificate in a PEM text.
pub fn certificate_der(pem_text: &str) -> anyhow::Result<Vec<u8>> {
    pem::parse_many(pem_text)
        .context("reading PEM")?
        .into_iter()
        .find(|block| block.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .context("no CERTIFICATE block in the PEM")
}

/// The RSA public key (PKCS#1 DER) of a certificate: Entra ID verifies client assertions with
/// RSA certificates only, and so do we.
fn rsa_public_key(certificate_der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(certificate_der)
        .map_err(|error| anyhow::anyhow!("not an X.509 certificate: {error}"))?;
    let key = certificate.public_key();
    match key.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => Ok(key.subject_public_key.data.to_vec()),
        _ => anyhow::bail!("the certificate's key is not RSA; client assertions are signed with RSA keys"),
    }
}

/// A certificate checked for use as an app's credential: RSA, named by its thumbprint.
pub struct AppCertificate {
    pub thumbprint: String,
    pem: String,
}

impl AppCertificate {
    pub fn from_pem(certificate_pem: &str) -> anyhow::Result<Self> {
        let der = certificate_der(certificate_pem)?;
        rsa_public_key(&der)?;
        Ok(Self {
            thumbprint: certificate_thumbprint(&der),
            pem: pem::encode(&pem::Pem::new("CERTIFICATE", der)),
        })
    }
}

/// Lets an app prove itself with a client assertion signed by the certificate's key, as Entra
/// ID's certificate credentials do.
pub async fn add_app_certificate(
    store: &dyn IssuerStore,
    tenant: &TenantId,
    client_id: &str,
    certificate: &AppCertificate,
) -> anyhow::Result<()> {
    store
        .add_app_certificate(tenant, client_id, &certificate.thumbprint, &certificate.pem, now())
        .await?;
    Ok(())
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: String,
}

/// The app a client assertion (RFC 7523's JWT bearer client authentication) proves, if it does:
/// signed (RS256 or PS256) by a certificate the app registered and names by `x5t#S256`, issued
/// by and about the app (`iss` and `sub`), for this tenant's token endpoint (`aud`), and not
/// expired.
pub(crate) async fn authenticate_assertion(
    store: &dyn IssuerStore,
    tenant: &TenantId,
    client_id: Option<&str>,
    assertion: &str,
) -> anyhow::Result<Option<StoredApp>> {
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return Ok(None);
    };
    let (Some(thumbprint), Algorithm::RS256 | Algorithm::PS256) = (header.x5t_s256.as_deref(), header.alg) else {
        return Ok(None);
    };
    let claimed_client = match client_id {
        Some(client_id) => client_id.to_owned(),
        None => {
            let payload = assertion.split('.').nth(1).unwrap_or_default();
            let claims = URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<AssertionClaims>(&bytes).ok());
            match claims {
                Some(claims) => claims.sub,
                None => return Ok(None),
            }
        }
    };
    let Some(pem) = store.app_certificate(tenant, &claimed_client, thumbprint).await? else {
        return Ok(None);
    };
    let key = DecodingKey::from_rsa_der(&rsa_public_key(&certificate_der(&pem)?)?);
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    // The token endpoint's address depends on how the client reached us; its path does not.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let Ok(verified) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) else {
        return Ok(None);
    };
    let claims = verified.claims;
    let endpoint = format!("/{}/oauth2/v2.0/token", tenant.as_str());
    if claims.iss != claimed_client || claims.sub != claimed_client || !claims.aud.ends_with(&endpoint) {
        return Ok(None);
    }
    Ok(store.get_app(tenant, &claimed_client).await?)
}

/// `callrecords apps add`: registers an app of `tenant` with the given roles.
pub async fn add_app(
    store: &dyn IssuerStore,
    tenant: &TenantId,
    name: &str,
    roles: &[String],
) -> anyhow::Result<NewApp> {
    if let Some(unknown) = roles.iter().find(|role| !super::ROLES.contains(&role.as_str())) {
        anyhow::bail!(
            "'{unknown}' is not a role; expected one of: {}",
            super::ROLES.join(", ")
        );
    }
    let client_id = uuid::Uuid::new_v4().to_string();
    let mut secret_bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret_bytes);
    let client_secret = URL_SAFE_NO_PAD.encode(secret_bytes);
    store
        .add_app(
            tenant,
            &StoredApp {
                client_id: client_id.clone(),
                name: name.to_owned(),
                roles: roles.to_vec(),
                secret_sha256: secret_hash(&client_secret),
                created: now(),
            },
        )
        .await?;
    Ok(NewApp {
        client_id,
        client_secret,
    })
}

/// The app behind a client-credentials request, if the secret matches.
pub(crate) async fn authenticate_app(
    store: &dyn IssuerStore,
    tenant: &TenantId,
    client_id: &str,
    client_secret: &str,
) -> anyhow::Result<Option<StoredApp>> {
    let Some(app) = store.get_app(tenant, client_id).await? else {
        return Ok(None);
    };
    let presented = secret_hash(client_secret);
    // Constant-time comparison of the two digests.
    let equal = presented.len() == app.secret_sha256.len()
        && presented
            .bytes()
            .zip(app.secret_sha256.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    Ok(equal.then_some(app))
}
