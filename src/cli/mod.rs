//! The command line. Defaults live in the clap structs; every flag has a `CALLRECORDS_*`
//! environment variable. `--help` is the reference and the README's table mirrors it.
//! This is the only module (with `main`) that reads arguments and the environment, and the only
//! one that writes to stdout.

mod auth;
mod import;

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

use crate::api::ApiSettings;
use crate::app::{redact_url, App, ServeConfig};
use crate::generate::{self, GenerateOptions, Generated};
use crate::ingest::{BatchIngest, IngestKind, IngestReport};
use crate::model::{DateTimeOffset, LogKind};
use crate::notify::NotifySettings;
use crate::retention::RetentionPolicy;
use crate::store::{self, RecordSelection, Store, TenantId};

const DEFAULT_DB: &str = "sqlite://./data/callrecords.db";

#[derive(Parser, Debug)]
#[command(
    name = "callrecords",
    version,
    about = "A self-hostable Microsoft Graph call records API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the Graph call records API (under /v1.0/) and the ingest endpoints.
    Serve(ServeArgs),
    /// Store records from an NDJSON file (or - for stdin), as POST /ingest/... does.
    Import(ImportArgs),
    /// Write realistic, deterministic call records as NDJSON to stdout, or into a store.
    Generate(GenerateArgs),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Print an access token of the local issuer (for scripts and tests).
    Token(auth::TokenArgs),
    /// Applications of the local issuer.
    #[command(subcommand)]
    Apps(auth::AppsCommand),
    /// Signing keys of the local issuer.
    #[command(subcommand)]
    Keys(auth::KeysCommand),
    /// Measure the server over HTTP against the targets of issue 7 and print a Markdown report.
    Bench(crate::bench::BenchArgs),
    /// The bench's baseline: a minimal server answering pre-built bytes (started by `bench`).
    #[command(hide = true)]
    BenchBaseline(crate::bench::BaselineArgs),
}

#[derive(clap::Args, Debug)]
pub struct DbArgs {
    /// The store: sqlite://PATH.
    #[arg(long = "db", env = "CALLRECORDS_DB", default_value = DEFAULT_DB)]
    pub db_url: String,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "CALLRECORDS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// Days a call record stays visible after it started (Graph: 30); 0 keeps and shows everything.
    #[arg(long, env = "CALLRECORDS_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Days a usage-log row (PSTN, Direct Routing, SMS) is kept; 0 keeps everything.
    #[arg(long, env = "CALLRECORDS_LOG_RETENTION_DAYS", default_value_t = 365)]
    pub log_retention_days: u32,
    /// Seconds between purges of data past its retention window.
    #[arg(long, env = "CALLRECORDS_PURGE_INTERVAL_SECS", default_value_t = 600)]
    pub purge_interval_secs: u64,
    /// Scheme and host written into @odata.context and next links (e.g. https://calls.example.com);
    /// by default the scheme and Host header of each request.
    #[arg(long, env = "CALLRECORDS_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Allow webhook targets on loopback and private addresses, and plain http:// (local
    /// development only) [default: true with --auth none, false otherwise].
    #[arg(long, env = "CALLRECORDS_ALLOW_PRIVATE_WEBHOOKS", action = clap::ArgAction::Set)]
    pub allow_private_webhooks: Option<bool>,
    /// The first retry delay of a failed webhook delivery, in milliseconds; later retries wait
    /// 3, 6, 12, 30 and 60 times as long (Graph: 10 s, 30 s, 1 min, 2 min, 5 min, 10 min).
    #[arg(long, env = "CALLRECORDS_WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000)]
    pub webhook_retry_base_ms: u64,
    /// Fill an empty store with a generated month of calls, so there is data to look at at once.
    #[arg(long, env = "CALLRECORDS_DEMO")]
    pub demo: bool,
    /// Largest ingest request body, in bytes.
    #[arg(long, env = "CALLRECORDS_MAX_INGEST_BYTES", default_value_t = 1 << 30)]
    pub max_ingest_bytes: usize,
    /// Ingest requests processed at once; more wait their turn (each holds up to two batches in memory).
    #[arg(long, env = "CALLRECORDS_MAX_CONCURRENT_INGESTS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_ingests: u16,
    /// Who may call: `none` (no token; the default tenant) or `local` (tokens of the built-in
    /// issuer, see `callrecords token` and `callrecords apps add`).
    #[arg(long, env = "CALLRECORDS_AUTH", default_value = "none", value_parser = ["none", "local"])]
    pub auth: String,
    /// With --auth none, listen on a non-loopback address anyway (anyone who reaches the port
    /// reads and writes everything).
    #[arg(long, env = "CALLRECORDS_ALLOW_INSECURE_NETWORK")]
    pub allow_insecure_network: bool,
    /// Throttle as Graph does (429 with Retry-After): `on` with Graph's limits, or `off`.
    #[arg(long, env = "CALLRECORDS_THROTTLE", default_value = "on", value_parser = ["on", "off"])]
    pub throttle: String,
    /// Change one throttle limit, NAME=COUNT/SECONDS (repeatable); names: tenant, app-tenant,
    /// record-first-page, record-later-pages, functions-tenant, functions-app-tenant, ingest-tenant.
    #[arg(long = "throttle-limit", env = "CALLRECORDS_THROTTLE_LIMITS", value_delimiter = ' ')]
    pub throttle_limits: Vec<String>,
    /// The audience tokens must carry (`aud`).
    #[arg(long, env = "CALLRECORDS_AUDIENCE", default_value = crate::auth::local::DEFAULT_AUDIENCE)]
    pub audience: String,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// NDJSON file of records, or - for stdin.
    pub file: String,
    /// What the file holds: callRecords, pstnCalls, directRoutingCalls or smsLogs.
    #[arg(long, default_value = "callRecords", value_parser = clap::builder::PossibleValuesParser::new(IngestKind::NAMES))]
    pub kind: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Number of distinct calls.
    #[arg(long, default_value_t = 1000)]
    pub calls: u64,
    /// Seed: the same seed (and --until) gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start times are spread over this many days before --until.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// End of the time window (RFC 3339); defaults to the start of the current UTC day, so
    /// output is stable within a day.
    #[arg(long)]
    pub until: Option<String>,
    /// Which records to write to stdout: callRecords, or the usage-log rows that belong with them
    /// (pstnCalls, directRoutingCalls, smsLogs). With --db, every kind is stored.
    #[arg(long, default_value = "callRecords", value_parser = clap::builder::PossibleValuesParser::new(IngestKind::NAMES))]
    pub kind: String,
    /// Store the records here instead of writing NDJSON to stdout.
    #[arg(long = "db", env = "CALLRECORDS_GENERATE_DB")]
    pub db_url: Option<String>,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Generate(args) => generate_command(args).await,
        Command::Migrate(args) => {
            store::open(&args.db_url).await?;
            eprintln!("migrations applied to {}", redact_url(&args.db_url));
            Ok(())
        }
        Command::Bench(args) => {
            let report = crate::bench::run(args).await?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), report.as_bytes()).context("writing to stdout")
        }
        Command::BenchBaseline(args) => crate::bench::serve_baseline(args).await,
        Command::Token(args) => print_line(&auth::token(args).await?),
        Command::Apps(command) => print_line(&auth::apps(command).await?),
        Command::Keys(command) => print_line(&auth::keys(command).await?),
    }
}

fn print_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{text}").context("writing to stdout")
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let without_auth = args.auth == "none";
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
    let config = ServeConfig {
        listen: args.listen,
        db_url: args.db.db_url,
        api: ApiSettings {
            retention_days: args.retention_days,
            public_base_url: args.public_base_url,
            max_ingest_bytes: args.max_ingest_bytes,
            max_concurrent_ingests: usize::from(args.max_concurrent_ingests),
            throttle,
            auth: match args.auth.as_str() {
                "local" => crate::api::AuthMode::Local {
                    audience: args.audience,
                },
                _ => crate::api::AuthMode::None,
            },
        },
        notify: NotifySettings {
            allow_private_targets: allow_private_webhooks,
            backoff_base: std::time::Duration::from_millis(args.webhook_retry_base_ms.max(1)),
            ..NotifySettings::default()
        },
        retention: RetentionPolicy {
            call_record_days: args.retention_days,
            log_row_days: args.log_retention_days,
            interval: std::time::Duration::from_secs(args.purge_interval_secs.max(1)),
            ..RetentionPolicy::default()
        },
    };
    tracing::info!(?config, "starting");
    let app = App::build(config).await?;
    if args.demo {
        fill_demo(app.store().as_ref()).await?;
    }
    let addr = app.local_addr();
    tracing::info!("listening on http://{addr} (Graph base URL http://{addr}/v1.0)");
    eprintln!("callrecords listening on http://{addr}/v1.0/communications/callRecords");
    app.run(shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The demo month: enough calls to page through, with every long-tail shape the generator makes.
const DEMO_CALLS: u64 = 3000;
const DEMO_DAYS: u32 = 28;

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
    let report = generate_into(store, &tenant, options).await?;
    tracing::info!(
        stored = report.stored,
        replaced = report.replaced,
        "--demo: generated a month of calls"
    );
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
    match args.db_url {
        Some(db_url) => {
            let store = store::open(&db_url).await?;
            let started = std::time::Instant::now();
            let report = generate_into(store.as_ref(), &TenantId::default_tenant(), options).await?;
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

fn write_ndjson(options: &GenerateOptions, kind: IngestKind) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut result = Ok(());
    generate::generate(options, |item| {
        if result.is_ok() && kind_of(&item) == kind {
            result = serde_json::to_writer(&mut out, item.value())
                .map_err(anyhow::Error::from)
                .and_then(|()| out.write_all(b"\n").map_err(anyhow::Error::from));
        }
    });
    result?;
    out.flush().context("writing to stdout")?;
    Ok(())
}

fn kind_of(item: &Generated) -> IngestKind {
    match item {
        Generated::CallRecord(_) => IngestKind::CallRecords,
        Generated::PstnCall(_) => IngestKind::Log(LogKind::PstnCall),
        Generated::DirectRoutingCall(_) => IngestKind::Log(LogKind::DirectRoutingCall),
        Generated::SmsLog(_) => IngestKind::Log(LogKind::SmsLog),
    }
}

/// Runs the generator on a blocking thread and feeds everything it makes through ingest, each
/// kind in its own batches. Returns the call records' report; the log rows' counts are logged.
pub(crate) async fn generate_into(
    store: &dyn Store,
    tenant: &TenantId,
    options: GenerateOptions,
) -> anyhow::Result<IngestReport> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<(IngestKind, Vec<u8>)>(1024);
    let producer = tokio::task::spawn_blocking(move || {
        generate::generate(&options, |item| {
            let kind = kind_of(&item);
            // A closed channel means the consumer failed; its error is the one reported.
            let _ = sender.blocking_send((kind, serde_json::to_vec(item.value()).unwrap_or_default()));
        });
    });
    let kinds = [
        IngestKind::CallRecords,
        IngestKind::Log(LogKind::PstnCall),
        IngestKind::Log(LogKind::DirectRoutingCall),
        IngestKind::Log(LogKind::SmsLog),
    ];
    let mut batches: Vec<BatchIngest> = kinds
        .iter()
        .map(|kind| BatchIngest::of_kind(store, tenant, *kind))
        .collect();
    let mut line = 0;
    while let Some((kind, json)) = receiver.recv().await {
        line += 1;
        let index = kinds.iter().position(|k| *k == kind).expect("every kind has a batch");
        batches[index].push_line(line, &json).await?;
    }
    producer.await.context("the generator thread panicked")?;
    let mut reports = Vec::with_capacity(kinds.len());
    for batch in batches {
        reports.push(batch.finish().await?);
    }
    for report in &reports {
        if let Some(error) = report.errors.first() {
            anyhow::bail!(
                "the generator made a record the model refuses (line {}): {}: {}",
                error.line,
                error.path,
                error.reason
            );
        }
    }
    tracing::info!(
        pstn_calls = reports[1].stored,
        direct_routing_calls = reports[2].stored,
        sms_logs = reports[3].stored,
        "generated usage-log rows"
    );
    Ok(reports.swap_remove(0))
}
