//! TLS for `serve` (rustls): an operator's certificate and key from PEM files, reloaded when
//! the files change (so a renewed certificate needs no restart), or a self-signed set for local
//! use: a long-lived local CA that clients trust once, and a server certificate it signs for the
//! names the server answers to, made again before it expires or when a name is missing.
//!
//! Never: HTTP, routing. The server side is axum-server's; certificates are rcgen's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where `serve` gets its certificate.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// `--tls-cert` (the chain, server certificate first) and `--tls-key`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls self-signed`: kept in `dir`, valid for `hosts`.
    SelfSigned { dir: PathBuf, hosts: Vec<String> },
}

/// The server's TLS configuration, and what a client should trust for a self-signed one.
pub(crate) struct PreparedTls {
    pub(crate) config: RustlsConfig,
    /// `--tls self-signed`: the local CA's certificate (PEM), for clients to trust.
    pub(crate) ca_certificate: Option<PathBuf>,
    /// `--tls-cert`: the files to watch for renewal.
    watched: Option<(PathBuf, PathBuf)>,
}

/// rustls needs a process-wide crypto provider; ring is the one already in the build (reqwest's).
fn install_crypto_provider() {
    // Err means one is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) async fn prepare(source: &TlsSource) -> anyhow::Result<PreparedTls> {
    install_crypto_provider();
    match source {
        TlsSource::Files { cert, key } => {
            let config = RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading --tls-cert {} and --tls-key {}", cert.display(), key.display()))?;
            Ok(PreparedTls {
                config,
                ca_certificate: None,
                watched: Some((cert.clone(), key.clone())),
            })
        }
        TlsSource::SelfSigned { dir, hosts } => {
            let dir = dir.clone();
            let hosts = hosts.clone();
            let files =
                tokio::task::spawn_blocking(move || ensure_self_signed(&dir, &hosts, OffsetDateTime::now_utc()))
                    .await
                    .context("the certificate thread panicked")??;
            let config = RustlsConfig::from_pem_file(&files.certificate, &files.key)
                .await
                .with_context(|| format!("loading {}", files.certificate.display()))?;
            Ok(PreparedTls {
                config,
                ca_certificate: Some(files.ca_certificate),
                watched: None,
            })
        }
    }
}

impl PreparedTls {
    /// Reloads an operator's certificate when its files change, until `stop` turns true. A
    /// reload that fails (a half-written file) keeps the certificate in use and is tried again.
    pub(crate) async fn watch_for_renewal(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some((cert, key)) = self.watched.clone() else {
            return;
        };
        let modified = |path: &Path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
        let mut seen = (modified(&cert), modified(&key));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEWAL_POLL) => {}
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
            let now = (modified(&cert), modified(&key));
            if now == seen {
                continue;
            }
            match self.config.reload_from_pem_file(&cert, &key).await {
                Ok(()) => {
                    tracing::info!(cert = %cert.display(), "reloaded the TLS certificate");
                    seen = now;
                }
                Err(error) => {
                    tracing::warn!(cert = %cert.display(), %error, "the changed TLS certificate could not be loaded; keeping the one in use")
                }
            }
        }
    }
}

const RENEWAL_POLL: Duration = Duration::from_secs(30);

/// The files of a self-signed set.
#[derive(Debug)]
pub struct SelfSignedFiles {
    pub ca_certificate: PathBuf,
    /// The server certificate followed by the CA's.
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// What the server certificate was made for, kept beside it to decide whether to make it again.
#[derive(Serialize, Deserialize)]
struct IssuedFor {
    hosts: Vec<String>,
    /// Unix seconds.
    not_after: i64,
}

const CA_LIFETIME: time::Duration = time::Duration::days(3650);
/// The longest lifetime clients such as Apple's accept for a server certificate.
const SERVER_LIFETIME: time::Duration = time::Duration::days(397);
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// The CA's parameters, the same every time: a server certificate signed later with the kept CA
/// key names the same issuer and key identifier as the CA certificate clients trust.
fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "callrecords");
    name.push(DnType::CommonName, "callrecords local CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + CA_LIFETIME;
    params
}

/// Makes what is missing or stale in `dir`, keeps the rest, and returns the files' paths.
pub fn ensure_self_signed(dir: &Path, hosts: &[String], now: OffsetDateTime) -> anyhow::Result<SelfSignedFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = SelfSignedFiles {
        ca_certificate: dir.join("ca.pem"),
        certificate: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let ca_key_path = dir.join("ca-key.pem");
    let issued_for_path = dir.join("cert.json");

    let (ca_key, ca_made) = if files.ca_certificate.exists() && ca_key_path.exists() {
        let pem =
            std::fs::read_to_string(&ca_key_path).with_context(|| format!("reading {}", ca_key_path.display()))?;
        (
            KeyPair::from_pem(&pem).with_context(|| format!("{} is not a private key", ca_key_path.display()))?,
            false,
        )
    } else {
        let key = KeyPair::generate().context("making the CA key")?;
        let certificate = ca_params(now).self_signed(&key).context("making the CA certificate")?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&files.ca_certificate, certificate.pem())
            .with_context(|| format!("writing {}", files.ca_certificate.display()))?;
        (key, true)
    };

    let issued_for: Option<IssuedFor> = std::fs::read(&issued_for_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let current = !ca_made
        && files.certificate.exists()
        && files.key.exists()
        && issued_for.is_some_and(|issued| {
            hosts.iter().all(|host| issued.hosts.contains(host))
                && issued.not_after - (now + RENEW_BEFORE).unix_timestamp() > 0
        });
    if current {
        return Ok(files);
    }

    let mut params = CertificateParams::new(hosts.to_vec()).context("a host name the certificate cannot hold")?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, hosts.first().map_or("localhost", String::as_str));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + SERVER_LIFETIME;
    let key = KeyPair::generate().context("making the server key")?;
    let issuer = Issuer::new(ca_params(now), &ca_key);
    let certificate = params
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;
    let ca_pem = std::fs::read_to_string(&files.ca_certificate)
        .with_context(|| format!("reading {}", files.ca_certificate.display()))?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.certificate, format!("{}{ca_pem}", certificate.pem()))
        .with_context(|| format!("writing {}", files.certificate.display()))?;
    let issued = IssuedFor {
        hosts: hosts.to_vec(),
        not_after: (now + SERVER_LIFETIME).unix_timestamp(),
    };
    std::fs::write(&issued_for_path, serde_json::to_vec_pretty(&issued)?)
        .with_context(|| format!("writing {}", issued_for_path.display()))?;
    Ok(files)
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The names a self-signed certificate is made for: loopback always, and the names a client on
/// the network would use for this server.
pub fn self_signed_hosts(listen: std::net::SocketAddr, public_base_url: Option<&str>) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let mut add = |host: String| {
        if !host.is_empty() && !hosts.contains(&host) {
            hosts.push(host);
        }
    };
    if !listen.ip().is_unspecified() {
        add(listen.ip().to_string());
    }
    if let Some(host) = public_base_url
        .and_then(|url| reqwest::Url::parse(url).ok())
        .and_then(|url| url.host_str().map(|host| host.trim_matches(['[', ']']).to_owned()))
    {
        add(host);
    }
    if let Ok(hostname) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        add(hostname.trim().to_owned());
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into()]
    }

    #[test]
    fn a_self_signed_set_is_kept_while_it_is_good_and_remade_when_it_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = ensure_self_signed(dir.path(), &hosts(), now).unwrap();
        let ca = std::fs::read(&first.ca_certificate).unwrap();
        let certificate = std::fs::read(&first.certificate).unwrap();

        ensure_self_signed(dir.path(), &hosts(), now).unwrap();
        assert_eq!(
            std::fs::read(&first.certificate).unwrap(),
            certificate,
            "a good certificate is kept"
        );

        ensure_self_signed(dir.path(), &["localhost".into(), "calls.internal".into()], now).unwrap();
        let for_new_name = std::fs::read(&first.certificate).unwrap();
        assert_ne!(for_new_name, certificate, "a missing name makes a new certificate");

        ensure_self_signed(dir.path(), &["calls.internal".into()], now + time::Duration::days(380)).unwrap();
        assert_ne!(
            std::fs::read(&first.certificate).unwrap(),
            for_new_name,
            "a certificate close to expiry is made again"
        );
        assert_eq!(
            std::fs::read(&first.ca_certificate).unwrap(),
            ca,
            "the CA clients trust stays"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private keys are the owner's only");
        }
    }

    #[test]
    fn the_hosts_include_loopback_and_the_public_name() {
        let hosts = self_signed_hosts("0.0.0.0:443".parse().unwrap(), Some("https://calls.example.com/"));
        assert!(hosts.starts_with(&["localhost".into(), "127.0.0.1".into(), "::1".into()]));
        assert!(hosts.contains(&"calls.example.com".to_owned()));
        assert!(!hosts.contains(&"0.0.0.0".to_owned()));
    }
}
