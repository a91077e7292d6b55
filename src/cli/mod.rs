//! The command line. Defaults live in the clap structs; every flag has a `CALLRECORDS_*`
//! environment variable. `--help` is the reference and the README's table mirrors it.
//! This is the only module (with `main`) that reads arguments and the environment, and the only
//! one that writes to stdout.

mod auth;
mod bench;
mod buildings;
mod export;
mod import;
mod sync;

pub use bench::BENCH_SERVER_ENV;

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use crate::api::ApiSettings;
use crate::app::{redact_url, App, ServeConfig};
use crate::generate::{self, GenerateOptions};
use crate::ingest::IngestKind;
use crate::model::DateTimeOffset;
use crate::notify::NotifySettings;
use crate::retention::RetentionPolicy;
use crate::store::{self, RecordSelection, Store, TenantId};
use crate::tls::TlsSource;

const DEFAULT_DB: &str = "sqlite://./data/callrecords.db";
/// The directory of `DEFAULT_DB`, the one directory made for a store: any other `--db` names a
/// file in a directory that exists.
const DEFAULT_DB_DIR: &str = "./data";

#[derive(Parser, Debug)]
#[command(
    name = "callrecords",
    version,
    about = "A self-hostable Microsoft Graph call records API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// How log lines are written to stderr.
    #[arg(long, global = true, env = "CALLRECORDS_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: crate::telemetry::LogFormat,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Serve the Graph call records API (under /v1.0/) and the ingest endpoints.
    Serve(Box<ServeArgs>),
    /// Store records from an NDJSON file (or - for stdin), as POST /ingest/... does.
    Import(ImportArgs),
    /// Write a tenant's call records, sessions, classified streams or usage-log rows to a file, as
    /// NDJSON (records: the form import takes back) or Parquet.
    Export(export::ExportArgs),
    /// Write realistic, deterministic call records as NDJSON to stdout, or into a store.
    Generate(GenerateArgs),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Print an access token of the local issuer (for scripts and tests).
    Token(auth::TokenArgs),
    /// Applications of the local issuer.
    #[command(subcommand)]
    Apps(auth::AppsCommand),
    /// Signing keys of the local issuer.
    #[command(subcommand)]
    Keys(auth::KeysCommand),
    /// CQD building data: the subnets a tenant maps to buildings, networks and places.
    #[command(subcommand)]
    Buildings(buildings::BuildingsCommand),
    /// Collect Graph tenants' call records, PSTN and Direct Routing logs into the store, and keep
    /// them past Graph's 30 days.
    Sync(Box<sync::SyncArgs>),
    /// Measure a server over HTTP against the project's performance targets, each figure also as
    /// a ratio to a minimal server measured in the same run, and print a Markdown report.
    Bench(bench::BenchArgs),
}

impl Command {
    /// The store the command opens, if it opens one.
    fn db_url(&self) -> Option<&str> {
        match self {
            Command::Serve(args) => Some(&args.db.db_url),
            Command::Import(args) => Some(&args.db.db_url),
            Command::Export(args) => Some(&args.db.db_url),
            Command::Generate(args) => args.db_url.as_deref(),
            Command::Migrate(args) => Some(&args.db.db_url),
            Command::Keys(auth::KeysCommand::Rotate(db)) => Some(&db.db_url),
            Command::Token(args) => Some(&args.db.db_url),
            Command::Apps(auth::AppsCommand::Add(args)) => Some(&args.db.db_url),
            Command::Sync(args) => Some(&args.db.db_url),
            Command::Buildings(buildings::BuildingsCommand::Import(args)) => Some(&args.db.db_url),
            Command::Bench(_) => None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Records converted per transaction when the store holds records in the previous, larger
    /// layout: each batch commits on its own, so an interrupted conversion resumes where it was.
    #[arg(long, default_value_t = store::CONVERSION_BATCH, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) conversion_batch: u32,
}

#[derive(clap::Args, Debug)]
pub(crate) struct DbArgs {
    /// The store: sqlite://PATH (the file is created if missing, its directory is not) or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
    #[arg(long = "db", env = "CALLRECORDS_DB", default_value = DEFAULT_DB)]
    pub(crate) db_url: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "CALLRECORDS_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// Days a call record stays visible after it started (Graph: 30); 0 keeps and shows everything
    /// [default: 30, or 0 for a store that `callrecords sync` collects into, whose records are
    /// kept to outlive Graph's 30 days].
    #[arg(long, env = "CALLRECORDS_RETENTION_DAYS")]
    pub(crate) retention_days: Option<u32>,
    /// Collect the Graph tenants of this file (as `callrecords sync --config` takes it) into the
    /// store while serving it; notifications, if --sync-notification-url is set, arrive at this
    /// server's /sync/notifications.
    #[arg(long, env = "CALLRECORDS_SYNC_CONFIG")]
    pub(crate) sync_config: Option<std::path::PathBuf>,
    /// With --sync-config: the public URL that reaches this server's /sync/notifications.
    #[arg(long, env = "CALLRECORDS_SYNC_NOTIFICATION_URL", requires = "sync_config")]
    pub(crate) sync_notification_url: Option<String>,
    /// Days a usage-log row (PSTN, Direct Routing, SMS) is kept; 0 keeps everything.
    #[arg(long, env = "CALLRECORDS_LOG_RETENTION_DAYS", default_value_t = 365)]
    pub(crate) log_retention_days: u32,
    /// Days after which a call record's personal data (IP and MAC addresses, names, user principal
    /// names, device names) is cleared, its quality data kept; 0 keeps it as long as the record.
    #[arg(long, env = "CALLRECORDS_SCRUB_PERSONAL_DATA_DAYS", default_value_t = 0)]
    pub(crate) scrub_personal_data_days: u32,
    /// Seconds between purges of data past its retention window.
    #[arg(long, env = "CALLRECORDS_PURGE_INTERVAL_SECS", default_value_t = 600)]
    pub(crate) purge_interval_secs: u64,
    /// Scheme and host written into @odata.context and next links (e.g. https://calls.example.com);
    /// by default the scheme and Host header of each request.
    #[arg(long, env = "CALLRECORDS_PUBLIC_BASE_URL")]
    pub(crate) public_base_url: Option<String>,
    /// Allow webhook targets on loopback and private addresses, and plain http:// (local
    /// development only) [default: true with --auth none, false otherwise].
    #[arg(long, env = "CALLRECORDS_ALLOW_PRIVATE_WEBHOOKS", action = clap::ArgAction::Set)]
    pub(crate) allow_private_webhooks: Option<bool>,
    /// The first retry delay of a failed webhook delivery, in milliseconds; later retries wait
    /// 3, 6, 12, 30 and 60 times as long (Graph: 10 s, 30 s, 1 min, 2 min, 5 min, 10 min).
    #[arg(long, env = "CALLRECORDS_WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000)]
    pub(crate) webhook_retry_base_ms: u64,
    /// Fill an empty store with a generated month of calls, so there is data to look at at once.
    #[arg(long, env = "CALLRECORDS_DEMO")]
    pub(crate) demo: bool,
    /// SQLite only: the most the database file may grow to (e.g. 20GiB); past it, ingest is
    /// refused with 507 and reads go on [default: as large as the disk allows].
    #[arg(long, env = "CALLRECORDS_SQLITE_MAX_SIZE")]
    pub(crate) sqlite_max_size: Option<bytesize::ByteSize>,
    /// Open connections at most; past it, new ones are closed at once [default: the open file
    /// limit, raised to its hard limit at start, less 256 for everything else; at most 16384].
    #[arg(long, env = "CALLRECORDS_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Seconds a client has to send a request's head, from opening the connection or from the
    /// previous response; idle keep-alive connections close after as long.
    #[arg(long, env = "CALLRECORDS_REQUEST_HEAD_TIMEOUT_SECS", default_value_t = 10)]
    pub(crate) request_head_timeout_secs: u64,
    /// Largest ingest request body, in bytes.
    #[arg(long, env = "CALLRECORDS_MAX_INGEST_BYTES", default_value_t = 1 << 30)]
    pub(crate) max_ingest_bytes: usize,
    /// Ingest requests parsing and committing at once; others read their next batch meanwhile
    /// and wait their turn once it is in hand.
    #[arg(long, env = "CALLRECORDS_MAX_CONCURRENT_INGESTS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) max_concurrent_ingests: u16,
    /// The memory all ingest requests together may hold read but not yet stored (e.g. 32MiB);
    /// past it, bodies wait unread.
    #[arg(long, env = "CALLRECORDS_INGEST_MEMORY", default_value_t = bytesize::ByteSize::b(crate::api::DEFAULT_INGEST_MEMORY_BYTES as u64))]
    pub(crate) ingest_memory: bytesize::ByteSize,
    /// The slowest an ingest body may arrive, in bytes a second over each 10 seconds spent
    /// waiting for it; a slower body is cut off with 408.
    #[arg(long, env = "CALLRECORDS_INGEST_MIN_RATE", default_value_t = crate::api::DEFAULT_INGEST_MIN_RATE)]
    pub(crate) ingest_min_rate: u64,
    /// Who may call: `local` (tokens of the built-in issuer, see `callrecords token` and
    /// `callrecords apps add`), `oidc` (tokens of an external OpenID Connect issuer, see --issuer)
    /// or `none` (no token; the default tenant) [default: none for --demo on a loopback address,
    /// local otherwise].
    #[arg(long, env = "CALLRECORDS_AUTH", value_parser = ["none", "local", "oidc"])]
    pub(crate) auth: Option<String>,
    /// With --auth oidc: the issuer tokens must name (`iss`); `{tenantid}` stands for the token's
    /// tenant, e.g. https://login.microsoftonline.com/{tenantid}/v2.0 for any Entra ID tenant.
    #[arg(long, env = "CALLRECORDS_ISSUER")]
    pub(crate) issuer: Option<String>,
    /// With --auth oidc: the issuer's OpenID discovery document [default: the issuer's
    /// /.well-known/openid-configuration, with `common` for a tenant placeholder].
    #[arg(long, env = "CALLRECORDS_OIDC_DISCOVERY_URL")]
    pub(crate) oidc_discovery_url: Option<String>,
    /// With --auth none, listen on a non-loopback address anyway (anyone who reaches the port
    /// reads and writes everything).
    #[arg(long, env = "CALLRECORDS_ALLOW_INSECURE_NETWORK")]
    pub(crate) allow_insecure_network: bool,
    /// Throttle as Graph does (429 with Retry-After): `on` with Graph's limits, or `off`.
    #[arg(long, env = "CALLRECORDS_THROTTLE", default_value = "on", value_parser = ["on", "off"])]
    pub(crate) throttle: String,
    /// Let browser apps of this origin call the service (CORS), e.g. http://localhost:5173, or `*`
    /// for any origin (repeatable) [default: none].
    #[arg(long = "cors-origin", env = "CALLRECORDS_CORS_ORIGINS", value_delimiter = ' ', value_parser = parse_origin)]
    pub(crate) cors_origins: Vec<axum::http::HeaderValue>,
    /// Serve the retired `organizer`, `participants` and `participantEndpoint.identity` with
    /// values derived from `organizer_v2`, `participants_v2` and `associatedIdentity`, for apps
    /// still moving off them [default: null and empty, as Graph serves them now].
    #[arg(long, env = "CALLRECORDS_DERIVE_RETIRED_PROPERTIES")]
    pub(crate) derive_retired_properties: bool,
    /// Change one throttle limit, NAME=COUNT/SECONDS (repeatable); names: tenant, app-tenant,
    /// record (also accepted as record-first-page or record-later-pages), functions-tenant,
    /// functions-app-tenant, ingest-tenant.
    #[arg(long = "throttle-limit", env = "CALLRECORDS_THROTTLE_LIMITS", value_delimiter = ' ')]
    pub(crate) throttle_limits: Vec<String>,
    /// Serve HTTPS with a certificate of a local CA made and kept in --tls-dir (`self-signed`);
    /// the CA's PEM, for clients to trust, is printed at start.
    #[arg(long, env = "CALLRECORDS_TLS", value_parser = ["self-signed"], conflicts_with_all = ["tls_cert", "tls_key"])]
    pub(crate) tls: Option<String>,
    /// Serve HTTPS with this certificate chain (PEM, server certificate first); reloaded when
    /// the file changes.
    #[arg(long, env = "CALLRECORDS_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CALLRECORDS_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Where --tls self-signed keeps its CA, certificate and keys.
    #[arg(long, env = "CALLRECORDS_TLS_DIR", default_value = "./data/tls")]
    pub(crate) tls_dir: std::path::PathBuf,
    /// The audience tokens must carry (`aud`) [default: https://graph.microsoft.com with --auth
    /// local; required with --auth oidc].
    #[arg(long, env = "CALLRECORDS_AUDIENCE")]
    pub(crate) audience: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// NDJSON file of records, or - for stdin.
    pub(crate) file: String,
    /// What the file holds: callRecords, pstnCalls, directRoutingCalls or smsLogs.
    #[arg(long, default_value = "callRecords", value_parser = clap::builder::PossibleValuesParser::new(IngestKind::NAMES))]
    pub(crate) kind: String,
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// The tenant (a GUID) the records belong to [default: the one tenant of a server without
    /// authentication].
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub(crate) quiet: bool,
}

/// A `--tenant` as given, or the tenant of a server without authentication.
pub(crate) fn tenant_arg(tenant: Option<&str>) -> anyhow::Result<TenantId> {
    match tenant {
        None => Ok(TenantId::default_tenant()),
        Some(text) => {
            TenantId::parse(text).ok_or_else(|| anyhow::anyhow!("--tenant: '{text}' is not a tenant id (a GUID)"))
        }
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Number of distinct calls.
    #[arg(long, default_value_t = 1000)]
    pub(crate) calls: u64,
    /// Seed: the same seed (and --until) gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Start times are spread over this many days before --until. The default keeps every call
    /// inside `serve`'s default retention of 30 days counted back from now.
    #[arg(long, default_value_t = DEMO_DAYS)]
    pub(crate) days: u32,
    /// End of the time window (RFC 3339); defaults to the start of the current UTC day, so
    /// output is stable within a day.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Which records to write to stdout: callRecords, or the usage-log rows that belong with them
    /// (pstnCalls, directRoutingCalls, and beta's smsLogs, pstnBlockedUsers and
    /// pstnOnlineMeetingDialoutReport). With --db, every kind is stored.
    #[arg(long, default_value = "callRecords", value_parser = clap::builder::PossibleValuesParser::new(IngestKind::NAMES))]
    pub(crate) kind: String,
    /// Store the records here instead of writing NDJSON to stdout.
    #[arg(long = "db", env = "CALLRECORDS_GENERATE_DB")]
    pub(crate) db_url: Option<String>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.command.db_url() == Some(DEFAULT_DB) {
        std::fs::create_dir_all(DEFAULT_DB_DIR).with_context(|| format!("creating {DEFAULT_DB_DIR}"))?;
    }
    match cli.command {
        Command::Serve(args) => serve(*args, cli.log_format).await,
        Command::Import(args) => import::run(args).await,
        Command::Export(args) => export::run(args).await,
        Command::Generate(args) => generate_command(args).await,
        Command::Migrate(args) => {
            let options = store::StoreOptions {
                conversion_batch: args.conversion_batch,
                ..Default::default()
            };
            store::open_with(&args.db.db_url, &options).await?;
            eprintln!("migrations applied to {}", redact_url(&args.db.db_url));
            Ok(())
        }
        Command::Bench(args) => bench::run(args),
        Command::Sync(args) => sync::run(*args).await,
        Command::Token(args) => print_line(&auth::token(args).await?),
        Command::Apps(command) => print_line(&auth::apps(command).await?),
        Command::Keys(command) => print_line(&auth::keys(command).await?),
        Command::Buildings(command) => print_line(&buildings::run(command).await?),
    }
}

fn print_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

/// `--auth` as given, or its default: the quick start (`serve --demo` on loopback) needs no
/// token; anything else is the local issuer.
fn auth_mode(args: &ServeArgs) -> anyhow::Result<crate::api::AuthMode> {
    let mode = match args.auth.as_deref() {
        Some(mode) => mode,
        None if args.demo && args.listen.ip().is_loopback() => "none",
        None => "local",
    };
    if mode != "oidc" && (args.issuer.is_some() || args.oidc_discovery_url.is_some()) {
        anyhow::bail!("--issuer and --oidc-discovery-url go with --auth oidc");
    }
    Ok(match mode {
        "none" => crate::api::AuthMode::None,
        "local" => crate::api::AuthMode::Local {
            audience: args
                .audience
                .clone()
                .unwrap_or_else(|| crate::auth::local::DEFAULT_AUDIENCE.to_owned()),
        },
        _ => crate::api::AuthMode::Oidc {
            issuer: args
                .issuer
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--auth oidc needs --issuer (the `iss` of the tokens to accept)"))?,
            audience: args.audience.clone().ok_or_else(|| {
                anyhow::anyhow!("--auth oidc needs --audience (the `aud` of the tokens to accept: your API's application ID URI or client id)")
            })?,
            discovery_url: args.oidc_discovery_url.clone(),
        },
    })
}

/// An origin as browsers send it (`scheme://host[:port]`, no path), or `*`.
fn parse_origin(text: &str) -> Result<axum::http::HeaderValue, String> {
    let well_formed = text == "*"
        || reqwest::Url::parse(text).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some()
                && url.path() == "/"
                && !text.ends_with('/')
                && url.query().is_none()
        });
    if !well_formed {
        return Err(format!(
            "'{text}' is not an origin such as http://localhost:5173 (scheme, host and port, no path), nor *"
        ));
    }
    axum::http::HeaderValue::from_str(text).map_err(|error| error.to_string())
}

/// `--retention-days` as given, or its default: Graph's 30 days, except in a store that a
/// collector fills, where purging after 30 days would throw away what it was run to keep.
async fn retention_days(args: &ServeArgs, store: &dyn Store) -> anyhow::Result<u32> {
    let collected = store.collected_tenants().await?.len();
    let collecting = collected > 0 || args.sync_config.is_some();
    Ok(match (args.retention_days, collecting) {
        (Some(days), false) => days,
        (Some(0), true) => 0,
        (Some(days), true) => {
            tracing::warn!(
                days,
                collected_tenants = collected,
                "this store holds tenants collected from Graph; their records are purged after {days} days here too"
            );
            days
        }
        (None, false) => DEFAULT_RETENTION_DAYS,
        (None, true) => 0,
    })
}

async fn serve(args: ServeArgs, log_format: crate::telemetry::LogFormat) -> anyhow::Result<()> {
    let auth = auth_mode(&args)?;
    let without_auth = auth == crate::api::AuthMode::None;
    if without_auth {
        if !args.listen.ip().is_loopback() && !args.allow_insecure_network {
            anyhow::bail!(
                "--auth none would serve every tenant's data without a token on {}; listen on a loopback address, use --auth local, or pass --allow-insecure-network",
                args.listen
            );
        }
        tracing::warn!(
            "authentication is off (--auth none): every request acts for the default tenant with every role"
        );
    }
    let allow_private_webhooks = args.allow_private_webhooks.unwrap_or(without_auth);
    let mut throttle = crate::api::throttle::ThrottleSettings::default();
    throttle.enabled = args.throttle == "on";
    for assignment in &args.throttle_limits {
        throttle
            .set(assignment)
            .map_err(|error| anyhow::anyhow!("--throttle-limit: {error}"))?;
    }
    let tls = match (&args.tls, &args.tls_cert, &args.tls_key) {
        (Some(_), _, _) => Some(TlsSource::SelfSigned {
            dir: args.tls_dir.clone(),
            hosts: crate::tls::self_signed_hosts(args.listen, args.public_base_url.as_deref()),
        }),
        (None, Some(cert), Some(key)) => Some(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let auth_summary = match &auth {
        crate::api::AuthMode::None => "none: no token needed".to_owned(),
        crate::api::AuthMode::Local { .. } => {
            "local: tokens of this server (`callrecords apps add`, then the client-credentials grant at /{tenant}/oauth2/v2.0/token)".to_owned()
        }
        crate::api::AuthMode::Oidc { issuer, .. } => format!("oidc: tokens of {issuer}"),
    };
    let store_options = crate::store::StoreOptions {
        sqlite_max_size: args.sqlite_max_size.map(|size| size.as_u64()),
        ..Default::default()
    };
    // Opened once, here: the retention default depends on what the store holds.
    let store = store::open_with(&args.db.db_url, &store_options).await?;
    let retention = retention_days(&args, store.as_ref()).await?;
    let retention_summary = format!(
        "call records {}, usage-log rows {}",
        days_or_forever(retention),
        days_or_forever(args.log_retention_days)
    );
    let store_summary = redact_url(&args.db.db_url);
    let sync = match &args.sync_config {
        Some(path) => Some(sync::in_serve(path, args.sync_notification_url.clone())?),
        None => None,
    };
    let config = ServeConfig {
        sync,
        listen: args.listen,
        clock: crate::clock::system(),
        tls,
        db_url: args.db.db_url,
        connections: crate::connections::ConnectionLimits {
            max_connections: args
                .max_connections
                .unwrap_or_else(crate::connections::raise_open_file_limit),
            request_head_timeout: std::time::Duration::from_secs(args.request_head_timeout_secs.max(1)),
        },
        store: store_options,
        api: ApiSettings {
            retention_days: retention,
            public_base_url: args.public_base_url,
            max_ingest_bytes: args.max_ingest_bytes,
            max_concurrent_ingests: usize::from(args.max_concurrent_ingests),
            ingest_memory_bytes: usize::try_from(args.ingest_memory.as_u64()).unwrap_or(usize::MAX),
            ingest_min_rate: args.ingest_min_rate,
            throttle,
            auth,
            // App sets it from `tls`.
            https: false,
            cors_origins: args.cors_origins,
            derive_retired_properties: args.derive_retired_properties,
        },
        notify: NotifySettings {
            allow_private_targets: allow_private_webhooks,
            backoff_base: std::time::Duration::from_millis(args.webhook_retry_base_ms.max(1)),
            ..NotifySettings::default()
        },
        retention: RetentionPolicy {
            call_record_days: retention,
            log_row_days: args.log_retention_days,
            interval: std::time::Duration::from_secs(args.purge_interval_secs.max(1)),
            scrub_personal_data: (args.scrub_personal_data_days > 0)
                .then(|| crate::privacy::ScrubPolicy::after_days(args.scrub_personal_data_days)),
            ..RetentionPolicy::default()
        },
    };
    tracing::debug!(?config, "configuration");
    let app = App::with_store(config, store).await?;
    if args.demo {
        fill_demo(app.store().as_ref()).await?;
    }
    let root = format!("{}://{}", app.scheme(), app.local_addr());
    let ca = app
        .ca_certificate()
        .map(|ca| std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_owned()));
    // The first line is the one scripts and tests wait for; keep its form.
    let listening = format!("callrecords listening on {root}/v1.0/communications/callRecords");
    match log_format {
        crate::telemetry::LogFormat::Json => tracing::info!(
            start_page = %format!("{root}/"),
            store = %store_summary,
            authentication = %auth_summary,
            retention = %retention_summary,
            tls_ca = ca.as_ref().map(|ca| ca.display().to_string()),
            "{listening}"
        ),
        crate::telemetry::LogFormat::Text => {
            let mut summary = format!(
                "{listening}\n  start page      {root}/\n  SDK base URLs   {root}/v1.0 and {root}/beta\n  store           {store_summary}\n  authentication  {auth_summary}\n  retention       {retention_summary}"
            );
            if let Some(ca) = &ca {
                summary.push_str(&format!(
                    "\n  TLS             self-signed: trust the CA at {} (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS or curl --cacert)",
                    ca.display()
                ));
            }
            eprintln!("{summary}");
        }
    }
    app.run(async {
        let signal = crate::app::termination_signal().await;
        tracing::info!(signal, "shutting down");
    })
    .await
}

fn days_or_forever(days: u32) -> String {
    match days {
        0 => "kept forever".to_owned(),
        1 => "1 day".to_owned(),
        days => format!("{days} days"),
    }
}

/// The demo month: enough calls to page through, with every long-tail shape the generator makes.
const DEMO_CALLS: u64 = 3000;
const DEMO_DAYS: u32 = 28;
/// Graph keeps call records for 30 days.
const DEFAULT_RETENTION_DAYS: u32 = 30;

async fn fill_demo(store: &dyn Store) -> anyhow::Result<()> {
    let tenant = TenantId::default_tenant();
    if store.count_call_records(&tenant, &RecordSelection::default()).await? > 0 {
        tracing::info!("--demo: the store already holds records; leaving it as it is");
        return Ok(());
    }
    let options = GenerateOptions {
        calls: DEMO_CALLS,
        seed: 1,
        days: DEMO_DAYS,
        until: OffsetDateTime::now_utc(),
    };
    let report = crate::ingest::ingest_generated(store, &tenant, options)
        .await?
        .call_records;
    tracing::info!(
        stored = report.stored,
        replaced = report.replaced,
        "--demo: generated a month of calls"
    );
    // The offices' subnets, so the dashboard can tell inside from outside and name buildings.
    let buildings = crate::generate::building_file();
    let subnets = crate::quality::buildings::parse(&buildings)
        .map_err(|problems| anyhow::anyhow!("the demo building file does not parse: {problems:?}"))?
        .len();
    let file = crate::store::StoredBuildingFile {
        uploaded: crate::clock::Timestamp::from(DateTimeOffset::now()),
        subnets: subnets as i64,
        body: buildings,
    };
    store.add_building_file(&tenant, &file).await?;
    Ok(())
}

fn parse_until(until: Option<&str>) -> anyhow::Result<OffsetDateTime> {
    match until {
        Some(text) => DateTimeOffset::parse(text)
            .map(|value| value.as_offset_date_time())
            .map_err(|error| anyhow::anyhow!("--until: {error}")),
        None => {
            let now = OffsetDateTime::now_utc();
            Ok(now.replace_time(time::Time::MIDNIGHT))
        }
    }
}

async fn generate_command(args: GenerateArgs) -> anyhow::Result<()> {
    let options = GenerateOptions {
        calls: args.calls,
        seed: args.seed,
        days: args.days,
        until: parse_until(args.until.as_deref())?,
    };
    let earliest = options.until - time::Duration::days(i64::from(options.days));
    let retained_from = OffsetDateTime::now_utc() - time::Duration::days(i64::from(DEFAULT_RETENTION_DAYS));
    if earliest < retained_from {
        tracing::warn!(
            "calls starting before {} are past serve's default retention of {DEFAULT_RETENTION_DAYS} days and will not be listed; serve with --retention-days 0 to see them",
            DateTimeOffset::from_offset_date_time(retained_from)
        );
    }
    match args.db_url {
        Some(db_url) => {
            let store = store::open(&db_url).await?;
            let started = std::time::Instant::now();
            let report = crate::ingest::ingest_generated(store.as_ref(), &TenantId::default_tenant(), options)
                .await?
                .call_records;
            eprintln!(
                "generated into {}: {} stored, {} replaced, {} ignored, {} rejected in {:.1}s",
                redact_url(&db_url),
                report.stored,
                report.replaced,
                report.ignored,
                report.rejected,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        None => {
            let kind = IngestKind::parse(&args.kind).ok_or_else(|| anyhow::anyhow!("unknown --kind {}", args.kind))?;
            tokio::task::spawn_blocking(move || write_ndjson(&options, kind))
                .await
                .context("the generator thread panicked")?
        }
    }
}

/// Writes the generated items of `kind` to stdout as NDJSON. Serializing an item (escaping its
/// strings, walking its tree) and freeing it take about a third of the generator's time, so a
/// second thread does them while this one generates the next: the output is the same bytes.
fn write_ndjson(options: &GenerateOptions, kind: IngestKind) -> anyhow::Result<()> {
    // Enough items in flight to ride out a large record, few enough to keep memory flat.
    const IN_FLIGHT: usize = 64;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<generate::Generated>(IN_FLIGHT);
    let writer = std::thread::Builder::new()
        .name("generate-writer".to_owned())
        .spawn(move || -> anyhow::Result<()> {
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            for item in receiver {
                serde_json::to_writer(&mut out, item.value())?;
                out.write_all(b"\n").context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")
        })
        .context("starting the generator's writer thread")?;
    generate::generate(options, |item| {
        if IngestKind::of_generated(&item) == kind {
            // A closed channel means the writer failed; its error is the one reported.
            let _ = sender.send(item);
        }
    });
    drop(sender);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the generator's writer thread panicked"))?
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{auth_mode, Cli, Command};
    use crate::api::AuthMode;

    fn mode_of(args: &[&str]) -> anyhow::Result<AuthMode> {
        let cli = Cli::try_parse_from(["callrecords", "serve"].iter().chain(args)).expect("the arguments parse");
        let Command::Serve(serve) = cli.command else {
            unreachable!("serve was given")
        };
        auth_mode(&serve)
    }

    #[test]
    fn only_the_demo_on_loopback_runs_without_tokens_by_default() {
        assert_eq!(mode_of(&["--demo"]).unwrap(), AuthMode::None);
        assert_eq!(mode_of(&["--demo", "--listen", "[::1]:8080"]).unwrap(), AuthMode::None);
        let local = AuthMode::Local {
            audience: crate::auth::local::DEFAULT_AUDIENCE.to_owned(),
        };
        assert_eq!(mode_of(&[]).unwrap(), local);
        assert_eq!(mode_of(&["--demo", "--listen", "0.0.0.0:8080"]).unwrap(), local);
        assert_eq!(mode_of(&["--auth", "none"]).unwrap(), AuthMode::None);
    }

    #[test]
    fn oidc_needs_an_issuer_and_an_audience_and_nothing_else_takes_them() {
        let error = mode_of(&["--auth", "oidc", "--audience", "api://x"]).unwrap_err();
        assert!(error.to_string().contains("--issuer"), "{error}");
        let error = mode_of(&["--auth", "oidc", "--issuer", "https://idp.example/"]).unwrap_err();
        assert!(error.to_string().contains("--audience"), "{error}");
        let error = mode_of(&["--auth", "local", "--issuer", "https://idp.example/"]).unwrap_err();
        assert!(error.to_string().contains("--auth oidc"), "{error}");
        assert_eq!(
            mode_of(&[
                "--auth",
                "oidc",
                "--issuer",
                "https://idp.example/",
                "--audience",
                "api://x"
            ])
            .unwrap(),
            AuthMode::Oidc {
                issuer: "https://idp.example/".to_owned(),
                audience: "api://x".to_owned(),
                discovery_url: None,
            }
        );
    }

    #[test]
    fn tls_flags_go_together() {
        let parse = |args: &[&str]| Cli::try_parse_from(["callrecords", "serve"].iter().chain(args)).map(|_| ());
        assert!(parse(&["--tls", "self-signed"]).is_ok());
        assert!(parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_ok());
        assert!(parse(&["--tls-cert", "c.pem"]).is_err(), "a certificate needs its key");
        assert!(parse(&["--tls", "self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_err());
        assert!(parse(&["--tls", "on"]).is_err());
    }
}
