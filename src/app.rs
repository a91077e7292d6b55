//! The startup seam: `App::build` opens the store and binds the listener (so `--listen
//! 127.0.0.1:0` works and `local_addr` reports the real port); `App::run` serves until the
//! shutdown future resolves. Tests use exactly these two calls.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, ApiSettings, AppState};
use crate::connections::ConnectionLimits;
use crate::notify::{delivery, Notifier, NotifySettings};
use crate::retention::{self, RetentionPolicy};
use crate::store::{self, Store};
use crate::tls::{PreparedTls, TlsSource};

/// Everything `serve` needs, parsed once in `main` and passed down.
#[derive(Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub db_url: String,
    pub store: store::StoreOptions,
    pub api: ApiSettings,
    pub retention: RetentionPolicy,
    pub notify: NotifySettings,
    /// HTTPS when set; plain HTTP otherwise.
    pub tls: Option<TlsSource>,
    pub connections: ConnectionLimits,
    /// What every decision by time reads (`crate::clock`): the system clock, or a test's.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Graph tenants to collect into the store beside serving it (`serve --sync-config`).
    pub sync: Option<crate::sync::SyncConfig>,
}

impl std::fmt::Debug for ServeConfig {
    // The database URL may hold a password; never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("db_url", &redact_url(&self.db_url))
            .field("store", &self.store)
            .field("api", &self.api)
            .field("retention", &self.retention)
            .field("notify", &self.notify)
            .field("tls", &self.tls)
            .field("connections", &self.connections)
            .field("clock", &self.clock)
            .field("sync", &self.sync)
            .finish()
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// How long open HTTPS connections get to finish their requests once shutdown starts.
const GRACEFUL_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(30);

pub struct App {
    listener: TcpListener,
    state: AppState,
    retention: RetentionPolicy,
    tls: Option<PreparedTls>,
    connections: ConnectionLimits,
    sync: Option<crate::sync::Prepared>,
}

impl App {
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        let store = store::open_with(&config.db_url, &config.store).await?;
        Self::with_store(config, store).await
    }

    pub async fn with_store(mut config: ServeConfig, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let tls = match &config.tls {
            Some(source) => Some(crate::tls::prepare(source).await?),
            None => None,
        };
        config.api.https = tls.is_some();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let authenticator = match &config.api.auth {
            crate::api::AuthMode::None => crate::auth::Authenticator::None,
            crate::api::AuthMode::Local { audience } => {
                crate::auth::local::ensure_signing_key(store.as_ref())
                    .await
                    .context("preparing the local issuer's signing key")?;
                crate::auth::Authenticator::Jwt(crate::auth::JwtAuthenticator::new(
                    crate::auth::KeySource::Local(store.clone()),
                    crate::auth::local::ISSUER_TEMPLATE.to_owned(),
                    audience.clone(),
                    config.clock.clone(),
                ))
            }
            crate::api::AuthMode::Oidc {
                issuer,
                audience,
                discovery_url,
            } => {
                let remote = crate::auth::oidc::RemoteIssuer::new(issuer.clone(), discovery_url.clone())
                    .context("--auth oidc")?;
                let discovery = remote.discovery_url().to_owned();
                let jwt = crate::auth::JwtAuthenticator::new(
                    crate::auth::KeySource::Remote(Arc::new(remote)),
                    issuer.clone(),
                    audience.clone(),
                    config.clock.clone(),
                );
                // An issuer that is down at start may be up by the first request: warn, go on.
                match jwt.preload().await {
                    Ok(keys) => tracing::info!(%discovery, keys, "loaded the issuer's signing keys"),
                    Err(error) => {
                        tracing::warn!(%discovery, error = %format!("{error:#}"), "the issuer's signing keys could not be loaded yet; will retry on the first request")
                    }
                }
                crate::auth::Authenticator::Jwt(jwt)
            }
        };
        let notifier = Arc::new(
            Notifier::new(store.clone(), config.notify, config.clock.clone()).context("building the webhook client")?,
        );
        let sync_metrics = config.sync.as_ref().map(|_| Arc::new(crate::sync::Metrics::default()));
        let sync = match (config.sync.take(), &sync_metrics) {
            (Some(in_serve), Some(metrics)) => {
                Some(in_serve.prepare(store.clone(), config.clock.clone(), metrics.clone())?)
            }
            _ => None,
        };
        Ok(Self {
            listener,
            tls,
            connections: config.connections,
            retention: config.retention,
            sync,
            state: AppState {
                authenticator: Arc::new(authenticator),
                throttle: Arc::new(crate::api::throttle::Throttle::new(
                    config.api.throttle.clone(),
                    config.clock.clone(),
                )),
                store,
                ingest_slots: Arc::new(tokio::sync::Semaphore::new(config.api.max_concurrent_ingests.max(1))),
                ingest_memory: Arc::new(tokio::sync::Semaphore::new(config.api.ingest_memory_bytes.max(1))),
                write_health: Arc::default(),
                metrics: Arc::new(crate::metrics::Metrics::new(&notifier.metrics, sync_metrics)),
                clock: config.clock.clone(),
                settings: Arc::new(config.api),
                notifier,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// With `--tls self-signed`, the CA certificate clients should trust.
    pub fn ca_certificate(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().and_then(|tls| tls.ca_certificate.as_deref())
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        self.state.settings.scheme()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves HTTP and runs the background tasks until `shutdown` resolves; the tasks get the
    /// same signal and finish what they hold.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stopping, stop_signal) = watch::channel(false);
        let purge = tokio::spawn(retention::run(
            self.state.store.clone(),
            self.retention,
            self.state.clock.clone(),
            stop_signal.clone(),
        ));
        let delivery = tokio::spawn(delivery::run(self.state.notifier.clone(), stop_signal.clone()));
        tokio::spawn(crate::analytics::classify_places(
            self.state.store.clone(),
            crate::analytics::PLACE_CLASSIFYING_INTERVAL,
            stop_signal.clone(),
        ));
        let mut router = api::router(self.state);
        if let Some(sync) = self.sync {
            router = router.merge(sync.routes());
            let mut sync_stop = stop_signal.clone();
            tokio::spawn(sync.run(async move {
                let _ = sync_stop.wait_for(|stopping| *stopping).await;
            }));
        }
        let mut http_stop = stop_signal.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stopping.send(true);
        });
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            let _ = http_stop.wait_for(|stopping| *stopping).await;
            stopper.graceful_shutdown(Some(GRACEFUL_SHUTDOWN));
        });
        let listener = self
            .listener
            .into_std()
            .context("handing the listener to the HTTP server")?;
        let server = axum_server::from_tcp(listener)
            .context("starting the HTTP server")?
            .handle(handle);
        let make_service = router.into_make_service();
        let served = match self.tls {
            None => self
                .connections
                .apply(server)
                .serve(make_service)
                .await
                .context("serving HTTP"),
            Some(tls) => {
                let config = tls.config.clone();
                let renewal = tokio::spawn(async move { tls.watch_for_renewal(stop_signal).await });
                let handshake_timeout = self.connections.request_head_timeout;
                let server = server
                    .map(|_| axum_server::tls_rustls::RustlsAcceptor::new(config).handshake_timeout(handshake_timeout));
                let served = self
                    .connections
                    .apply(server)
                    .serve(make_service)
                    .await
                    .context("serving HTTPS");
                let _ = renewal.await;
                served
            }
        };
        let _ = purge.await;
        let _ = delivery.await;
        served
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name: how `serve` and `callrecords bench`
/// learn they should stop.
pub async fn termination_signal() -> &'static str {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => "SIGINT",
        _ = terminate => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://app:s3cret@db:5432/calls"),
            "postgres://app:***@db:5432/calls"
        );
        assert_eq!(super::redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
