//! `callrecords sync`: the collector's command line. One tenant from flags, or several from a
//! TOML file (`--config`); the secret comes from an environment variable or a file, never argv.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use super::DbArgs;
use crate::ingest::IngestKind;
use crate::store::{self, TenantId};
use crate::sync::{
    self, Certificate, ClientCredentials, Collector, Credential, PassKind, Secret, SyncError, SyncSettings, Upstream,
};

#[derive(clap::Args, Debug)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// The Graph tenant to collect (its GUID); its records are kept under the same tenant id, so
    /// that tenant's tokens read them here.
    #[arg(
        long,
        env = "CALLRECORDS_SYNC_TENANT_ID",
        required_unless_present = "config",
        conflicts_with = "config"
    )]
    pub(crate) tenant_id: Option<String>,
    /// The application (client) id registered in Entra ID.
    #[arg(long, env = "CALLRECORDS_SYNC_CLIENT_ID", required_unless_present = "config")]
    pub(crate) client_id: Option<String>,
    /// The name of the environment variable that holds the client secret.
    #[arg(
        long,
        env = "CALLRECORDS_SYNC_CLIENT_SECRET_ENV",
        conflicts_with = "client_secret_file"
    )]
    pub(crate) client_secret_env: Option<String>,
    /// A file whose first line is the client secret.
    #[arg(
        long,
        env = "CALLRECORDS_SYNC_CLIENT_SECRET_FILE",
        conflicts_with = "client_certificate_file"
    )]
    pub(crate) client_secret_file: Option<PathBuf>,
    /// Prove the app with a certificate instead of a secret: a PEM file with the certificate and
    /// its unencrypted RSA private key (`openssl pkcs12 -in app.pfx -nodes` writes one).
    #[arg(
        long,
        env = "CALLRECORDS_SYNC_CLIENT_CERTIFICATE_FILE",
        conflicts_with = "client_secret_env"
    )]
    pub(crate) client_certificate_file: Option<PathBuf>,
    /// Where tokens come from: {authority}/{tenant}/oauth2/v2.0/token.
    #[arg(long, env = "CALLRECORDS_SYNC_AUTHORITY", default_value = sync::DEFAULT_AUTHORITY)]
    pub(crate) authority: String,
    /// Graph's base URL, with its version.
    #[arg(long, env = "CALLRECORDS_SYNC_GRAPH_URL", default_value = sync::DEFAULT_GRAPH_URL)]
    pub(crate) graph_url: String,
    /// The scope tokens are asked for (a national cloud's Graph, e.g.
    /// https://graph.microsoft.us/.default).
    #[arg(long, env = "CALLRECORDS_SYNC_SCOPE", default_value = sync::DEFAULT_SCOPE)]
    pub(crate) scope: String,
    /// Several tenants from a TOML file: a [[tenant]] table each, with tenant_id, client_id and
    /// client_secret_env or client_secret_file, and optionally authority, graph_url and scope
    /// (defaults: the flags').
    #[arg(long, env = "CALLRECORDS_SYNC_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// One complete reconcile (a full sweep and the logs), then exit: 0 when everything visible
    /// upstream is stored, 1 saying why otherwise.
    #[arg(long)]
    pub(crate) once: bool,
    /// Serve /metrics, /healthz and the notification receiver (/sync/notifications) here.
    #[arg(long, env = "CALLRECORDS_SYNC_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// The public URL that reaches --listen's /sync/notifications: with it, the collector
    /// subscribes to created and updated call records and fetches what notifications name.
    #[arg(long, env = "CALLRECORDS_SYNC_NOTIFICATION_URL", requires = "listen")]
    pub(crate) notification_url: Option<String>,
    /// Seconds between passes.
    #[arg(long, env = "CALLRECORDS_SYNC_INTERVAL_SECS", default_value_t = 600)]
    pub(crate) interval_secs: u64,
    /// Hours back a trailing pass lists (later versions arrive for hours after a call).
    #[arg(long, env = "CALLRECORDS_SYNC_TRAILING_HOURS", default_value_t = 24)]
    pub(crate) trailing_hours: u64,
    /// Days back a full sweep lists (Graph keeps 30); one runs daily.
    #[arg(long, env = "CALLRECORDS_SYNC_SWEEP_DAYS", default_value_t = 30)]
    pub(crate) sweep_days: u64,
    /// Days of PSTN and Direct Routing logs read the first time.
    #[arg(long, env = "CALLRECORDS_SYNC_LOG_BACKFILL_DAYS", default_value_t = 90)]
    pub(crate) log_backfill_days: u64,
    /// Which logs to collect, comma-separated: pstnCalls, directRoutingCalls, or none.
    #[arg(
        long,
        env = "CALLRECORDS_SYNC_LOGS",
        value_delimiter = ',',
        default_value = "pstnCalls,directRoutingCalls"
    )]
    pub(crate) logs: Vec<String>,
    /// This collector's name in the tenant leases that keep two nodes from collecting one tenant
    /// [default: the host name].
    #[arg(long, env = "CALLRECORDS_SYNC_NODE_NAME")]
    pub(crate) node_name: Option<String>,
}

/// A `[[tenant]]` table of the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantTable {
    tenant_id: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_certificate_file: Option<PathBuf>,
    authority: Option<String>,
    graph_url: Option<String>,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    tenant: Vec<TenantTable>,
}

/// The app's credential: a secret from an environment variable or a file, or a certificate.
fn read_credential(tenant: &str, table: &TenantTable) -> anyhow::Result<Credential> {
    let secret = match (
        &table.client_secret_env,
        &table.client_secret_file,
        &table.client_certificate_file,
    ) {
        (Some(name), None, None) => std::env::var(name)
            .with_context(|| format!("tenant {tenant}: the environment variable {name} (the client secret) is not set"))?,
        (None, Some(path), None) => std::fs::read_to_string(path)
            .with_context(|| format!("tenant {tenant}: reading the client secret from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        (None, None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("tenant {tenant}: reading the client certificate from {}", path.display()))?;
            let certificate = Certificate::from_pem(&text)
                .map_err(|error| anyhow::anyhow!("tenant {tenant}: {}: {error}", path.display()))?;
            return Ok(Credential::Certificate(certificate));
        }
        (None, None, None) => anyhow::bail!(
            "tenant {tenant}: the app proves itself with a client secret from an environment variable (--client-secret-env) or a file (--client-secret-file), or with a certificate (--client-certificate-file)"
        ),
        _ => anyhow::bail!(
            "tenant {tenant}: give one of client_secret_env, client_secret_file and client_certificate_file"
        ),
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        anyhow::bail!("tenant {tenant}: the client secret is empty");
    }
    Ok(Credential::Secret(Secret::new(secret)))
}

/// Where tenants go that do not say: the command line's `--authority`, `--graph-url` and
/// `--scope`, or their defaults.
struct Defaults<'a> {
    authority: &'a str,
    graph_url: &'a str,
    scope: &'a str,
}

impl Default for Defaults<'static> {
    fn default() -> Self {
        Self {
            authority: sync::DEFAULT_AUTHORITY,
            graph_url: sync::DEFAULT_GRAPH_URL,
            scope: sync::DEFAULT_SCOPE,
        }
    }
}

fn upstream_of(defaults: &Defaults<'_>, table: TenantTable) -> anyhow::Result<Upstream> {
    let tenant =
        TenantId::parse(&table.tenant_id).with_context(|| format!("tenant id '{}' is not a GUID", table.tenant_id))?;
    let credential = read_credential(tenant.as_str(), &table)?;
    let authority = table.authority.unwrap_or_else(|| defaults.authority.to_owned());
    let graph_url = table.graph_url.unwrap_or_else(|| defaults.graph_url.to_owned());
    for (name, url) in [("authority", &authority), ("graph URL", &graph_url)] {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("the {name} '{url}' is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("the {name} '{url}' is not an http(s) URL");
        }
    }
    Ok(Upstream {
        credentials: ClientCredentials {
            authority,
            tenant: tenant.as_str().to_owned(),
            client_id: table.client_id,
            credential,
            scope: table.scope.unwrap_or_else(|| defaults.scope.to_owned()),
        },
        tenant,
        graph_url,
    })
}

/// The tenants of a config file: a `[[tenant]]` table each.
fn config_tables(path: &Path) -> anyhow::Result<Vec<TenantTable>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: ConfigFile =
        toml::from_str(&text).with_context(|| format!("{} is not a sync config", path.display()))?;
    Ok(config.tenant)
}

fn upstreams_of(defaults: &Defaults<'_>, tables: Vec<TenantTable>) -> anyhow::Result<Vec<Upstream>> {
    if tables.is_empty() {
        anyhow::bail!("the config names no [[tenant]]");
    }
    let upstreams = tables
        .into_iter()
        .map(|table| upstream_of(defaults, table))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tenants: Vec<&str> = upstreams.iter().map(|upstream| upstream.tenant.as_str()).collect();
    tenants.sort_unstable();
    if tenants.windows(2).any(|pair| pair[0] == pair[1]) {
        anyhow::bail!("a tenant is named twice in the config");
    }
    Ok(upstreams)
}

fn upstreams(args: &SyncArgs) -> anyhow::Result<Vec<Upstream>> {
    let tables = match &args.config {
        Some(path) => config_tables(path)?,
        None => vec![TenantTable {
            tenant_id: args.tenant_id.clone().unwrap_or_default(),
            client_id: args.client_id.clone().unwrap_or_default(),
            client_secret_env: args.client_secret_env.clone(),
            client_secret_file: args.client_secret_file.clone(),
            client_certificate_file: args.client_certificate_file.clone(),
            authority: None,
            graph_url: None,
            scope: None,
        }],
    };
    let defaults = Defaults {
        authority: &args.authority,
        graph_url: &args.graph_url,
        scope: &args.scope,
    };
    upstreams_of(&defaults, tables)
}

/// The collectors `serve --sync-config` runs: the config's tenants, the default settings.
pub(crate) fn in_serve(config: &Path, notification_url: Option<String>) -> anyhow::Result<sync::SyncConfig> {
    Ok(sync::SyncConfig {
        upstreams: upstreams_of(&Defaults::default(), config_tables(config)?)?,
        settings: SyncSettings {
            notification_url,
            holder: host_name(),
            ..SyncSettings::default()
        },
    })
}

fn settings(args: &SyncArgs) -> anyhow::Result<SyncSettings> {
    let mut log_kinds = Vec::new();
    for name in &args.logs {
        match (name.as_str(), IngestKind::parse(name)) {
            ("none", _) => {}
            (_, Some(IngestKind::Log(kind)))
                if matches!(
                    kind,
                    crate::model::LogKind::PstnCall | crate::model::LogKind::DirectRoutingCall
                ) =>
            {
                log_kinds.push(kind)
            }
            _ => anyhow::bail!("--logs: '{name}' is not pstnCalls, directRoutingCalls or none"),
        }
    }
    let hours = |n: u64| Duration::from_secs(n * 3_600);
    Ok(SyncSettings {
        interval: Duration::from_secs(args.interval_secs.max(1)),
        trailing: hours(args.trailing_hours),
        sweep: hours(args.sweep_days * 24),
        log_backfill: hours(args.log_backfill_days * 24),
        log_kinds,
        notification_url: args.notification_url.clone(),
        holder: args.node_name.clone().unwrap_or_else(host_name),
        ..SyncSettings::default()
    })
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "callrecords".to_owned())
}

pub(crate) async fn run(args: SyncArgs) -> anyhow::Result<()> {
    let upstreams = upstreams(&args)?;
    let settings = settings(&args)?;
    let store = store::open(&args.db.db_url).await?;
    let clock = crate::clock::system();
    let metrics = Arc::new(sync::Metrics::default());
    let prepared = sync::SyncConfig { upstreams, settings }.prepare(store, clock, metrics.clone())?;
    let collectors = prepared.collectors();
    for collector in collectors {
        match collector.check_access().await {
            Ok(()) => {}
            Err(error @ (SyncError::Credentials(_) | SyncError::Permission(_))) => {
                return Err(anyhow::Error::new(error).context(format!("tenant {}", collector.tenant().as_str())))
            }
            Err(error) if args.once => {
                return Err(anyhow::Error::new(error).context(format!("tenant {}", collector.tenant().as_str())))
            }
            Err(error) => {
                tracing::warn!(tenant = %collector.tenant().as_str(), %error, "cannot check access yet; trying again at each pass")
            }
        }
    }
    if let Some(listen) = args.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr()?;
        eprintln!("callrecords sync listening on http://{address}");
        let router = prepared.listener_routes();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the collector's listener stopped");
            }
        });
    }
    if args.once {
        let outcome = once(collectors).await;
        eprintln!(
            "upstream requests: {}, throttled (429): {}, given up: {}",
            metrics.requests.get(),
            metrics.throttled.get(),
            metrics.errors.get()
        );
        return outcome;
    }
    prepared
        .run(async {
            let signal = crate::app::termination_signal().await;
            tracing::info!(signal, "shutting down");
        })
        .await;
    Ok(())
}

/// A full reconcile of each tenant; an error names the tenant and what is missing.
async fn once(collectors: &[Arc<Collector>]) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for collector in collectors {
        let tenant = collector.tenant().as_str().to_owned();
        let outcome = collector.pass(PassKind::Sweep).await;
        collector.release().await;
        match outcome {
            Ok(summary) if summary.rejected.is_empty() => {
                eprintln!(
                    "tenant {tenant}: {} records listed, {} fetched, {} already current, {} gone upstream, {} log rows",
                    summary.listed, summary.fetched, summary.unchanged, summary.gone, summary.log_rows
                );
            }
            Ok(summary) => failures.push(format!(
                "tenant {tenant}: {} refused by the store: {}",
                summary.rejected.len(),
                summary.rejected.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            )),
            Err(error) => failures.push(format!("tenant {tenant}: {error}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("not everything upstream is stored: {}", failures.join(" | "))
    }
}
