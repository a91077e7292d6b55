//! `callrecords bench` (this crate's binary, `callrecords-bench`, which `callrecords bench` runs):
//! builds stores of a given size with the generator, starts the real server
//! on them as a child process, drives it over HTTP with the load generator in this process, and
//! reports requests/s, latency percentiles and the server's peak memory against the project's
//! performance targets (`report`), each figure also as a ratio to a minimal server measured in
//! the same run.
//!
//! The cases, in the order they run: (1) one record with its sessions and segments by random
//! id; (2) list pages, unfiltered, in a `startDateTime` window and by participant, following
//! next links; (3) NDJSON ingest in batches of 1,000 into a fresh store; (4) the list queries
//! again on a small store; (5) the baseline (`callrecords-bench baseline`, hidden), pre-built bytes of the
//! size of case 1's answers.
//!
//! This module owns orchestration only: `stores` builds and names the stores, `server` runs and
//! measures the child processes, `load` generates the load, `stats` does the arithmetic and
//! `report` prints. It never writes to stdout (`main` prints the report it returns) and never
//! changes a store it did not create. It shares the generator, ingest and the store with the
//! service as the `callrecords` library, and reaches the server only over HTTP. See BENCHMARKS.md for figures and what they mean.

mod load;
mod report;
mod server;
mod stats;
mod stores;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;

use callrecords::generate::{self, Generated};
use callrecords::model::DateTimeOffset;
use load::{BatchReuse, IngestBatch, ListQuery, Timing, Workload};
use report::{BenchReport, CaseResult, Machine, LIST_CASES};
use server::{ChildServer, ExportRate, ProcessUsage};
use stores::{BuiltStore, StoreServer};

/// `callrecords bench`: the benchmark's command line.
#[derive(clap::Parser)]
#[command(
    name = "callrecords bench",
    version,
    about = "Measure a server over HTTP against the project's performance targets, each figure also as a ratio \
             to a minimal server measured in the same run, and print a Markdown report.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub baseline: Option<Baseline>,
    #[command(flatten)]
    pub args: BenchArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum Baseline {
    /// The minimal server of case 5, started by the bench itself.
    #[command(hide = true)]
    Baseline(BaselineArgs),
}

/// What to measure, and how long.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Records in the main store [default: 1000000; 2000 with --quick].
    #[arg(long, env = "CALLRECORDS_BENCH_RECORDS")]
    pub(crate) records: Option<u64>,
    /// Records in the small store that case 4 compares the main one with [default: 10000; 500 with --quick].
    #[arg(long, env = "CALLRECORDS_BENCH_SMALL")]
    pub(crate) small: Option<u64>,
    /// Concurrent connections of the read cases.
    #[arg(long, env = "CALLRECORDS_BENCH_CONCURRENCY", default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Concurrent connections of the ingest case.
    #[arg(long, env = "CALLRECORDS_BENCH_INGEST_CONNECTIONS", default_value_t = 4)]
    pub(crate) ingest_connections: usize,
    /// Measured seconds per case [default: 10; 2 with --quick].
    #[arg(long, env = "CALLRECORDS_BENCH_DURATION_SECS")]
    pub(crate) duration_secs: Option<f64>,
    /// Warm-up seconds per case, not measured [default: 2; 0.5 with --quick].
    #[arg(long, env = "CALLRECORDS_BENCH_WARMUP_SECS")]
    pub(crate) warmup_secs: Option<f64>,
    /// Where the bench's stores live: sqlite://DIRECTORY, or a postgres:// URL of any database
    /// on the server, where the bench creates its own databases (callrecords_bench_*).
    #[arg(long = "db", env = "CALLRECORDS_BENCH_DB", default_value = "sqlite://./data/bench")]
    pub(crate) db: String,
    /// Every case for a few seconds on small stores: the mode CI runs so the bench cannot rot.
    #[arg(long, env = "CALLRECORDS_BENCH_QUICK")]
    pub(crate) quick: bool,
    /// Generator seed of the stores (the ingest case uses records of another seed).
    #[arg(long, env = "CALLRECORDS_BENCH_SEED", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Also save the raw figures as JSON here.
    #[arg(long, env = "CALLRECORDS_BENCH_JSON")]
    pub(crate) json: Option<PathBuf>,
}

impl std::fmt::Debug for BenchArgs {
    // --db may hold a password; never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchArgs")
            .field("records", &self.records)
            .field("small", &self.small)
            .field("concurrency", &self.concurrency)
            .field("ingest_connections", &self.ingest_connections)
            .field("duration_secs", &self.duration_secs)
            .field("warmup_secs", &self.warmup_secs)
            .field("db", &callrecords::app::redact_url(&self.db))
            .field("quick", &self.quick)
            .field("seed", &self.seed)
            .field("json", &self.json)
            .finish()
    }
}

/// `callrecords-bench baseline` (hidden): the minimal server of case 5.
#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Size of the body answered to every GET.
    #[arg(long)]
    pub(crate) bytes: usize,
    /// Also accept POSTs, writing each body durably to a new file in this directory.
    #[arg(long)]
    pub(crate) sink_dir: Option<std::path::PathBuf>,
}

/// Serves the baseline until killed.
pub async fn serve_baseline(args: BaselineArgs) -> anyhow::Result<()> {
    server::serve_baseline(args.listen, server::baseline_body(args.bytes), args.sink_dir).await
}

/// Calls the generator is timed on: enough for a steady rate, few enough to take seconds.
const GENERATOR_CALLS: u64 = 20_000;

/// Case 6's key.
const ANALYTICS_CASE: &str = "analytics";

/// The dashboard's heaviest queries, each over the whole window (the range is appended).
const ANALYTICS_QUERIES: &[&str] = &[
    "/analytics/quality?groupBy=day",
    "/analytics/quality?groupBy=insideOutside,wiredWifi",
    "/analytics/quality?groupBy=callType",
    "/analytics/reliability?groupBy=day",
    "/analytics/worst?by=subnet&mediaType=audio",
];

/// The run's settings with `--quick`'s defaults applied.
#[derive(Clone, Debug)]
struct Plan {
    records: u64,
    small: u64,
    concurrency: usize,
    ingest_connections: usize,
    timing: Timing,
    seed: u64,
    quick: bool,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> anyhow::Result<Self> {
        let seconds = |value: Option<f64>, normal: f64, quick: f64, flag: &str| -> anyhow::Result<Duration> {
            let secs = value.unwrap_or(if args.quick { quick } else { normal });
            Duration::try_from_secs_f64(secs).map_err(|_| anyhow::anyhow!("{flag} must be a number of seconds ≥ 0"))
        };
        let plan = Self {
            records: args.records.unwrap_or(if args.quick { 2_000 } else { 1_000_000 }),
            small: args.small.unwrap_or(if args.quick { 500 } else { 10_000 }),
            concurrency: args.concurrency,
            ingest_connections: args.ingest_connections,
            timing: Timing {
                warmup: seconds(args.warmup_secs, 2.0, 0.5, "--warmup-secs")?,
                duration: seconds(args.duration_secs, 10.0, 2.0, "--duration-secs")?,
            },
            seed: args.seed,
            quick: args.quick,
        };
        anyhow::ensure!(
            plan.records >= 1 && plan.small >= 1,
            "--records and --small must be at least 1"
        );
        anyhow::ensure!(
            plan.concurrency >= 1 && plan.ingest_connections >= 1,
            "--concurrency and --ingest-connections must be at least 1"
        );
        anyhow::ensure!(!plan.timing.duration.is_zero(), "--duration-secs must be above 0");
        Ok(plan)
    }
}

/// Runs every case and returns the Markdown report; progress goes to stderr. On SIGINT or
/// SIGTERM the run is dropped, which kills the server it has running, and an error is returned.
pub async fn run(args: BenchArgs) -> anyhow::Result<String> {
    tokio::select! {
        res = run_cases(args) => res,
        signal = callrecords::app::termination_signal() => anyhow::bail!("interrupted by {signal}; the bench's servers were stopped"),
    }
}

async fn run_cases(args: BenchArgs) -> anyhow::Result<String> {
    let plan = Plan::from_args(&args)?;
    let store_server = StoreServer::parse(&args.db)?;
    let client = load::http_client(plan.concurrency.max(plan.ingest_connections))?;
    let mut report = BenchReport {
        machine: Machine::detect(),
        store_kind: store_server.describe().await?,
        records: plan.records,
        small_records: plan.small,
        build_secs: Vec::new(),
        footprints: Vec::new(),
        generator: None,
        exports: Vec::new(),
        concurrency: plan.concurrency,
        ingest_connections: plan.ingest_connections,
        warmup_secs: plan.timing.warmup.as_secs_f64(),
        duration_secs: plan.timing.duration.as_secs_f64(),
        quick: plan.quick,
        seed: plan.seed,
        cases: Vec::new(),
    };
    let mut bench = Bench {
        plan: plan.clone(),
        client,
        cases: Vec::new(),
    };

    // Cases 1 and 2, on the main store.
    let large = store_server
        .ensure(&stores::generate_options(plan.records, plan.seed))
        .await?;
    report.add_store(&large);
    let sample = bench.sample(&large).await?;
    bench
        .read_case(
            "get",
            1,
            "get one record, $expand=sessions($expand=segments)",
            &large,
            |base| Workload::GetRecord {
                base,
                ids: sample.ids.clone(),
            },
        )
        .await?;
    bench.list_cases(&large, &sample, "", 2).await?;
    bench.analytics_case(&large).await?;
    report.exports = export_rates(&store_server, &large).await?;

    // Case 3.
    bench.ingest_case(&store_server).await?;

    // Case 4: the same list queries on the small store.
    let small = store_server
        .ensure(&stores::generate_options(plan.small, plan.seed))
        .await?;
    report.add_store(&small);
    let small_sample = bench.sample(&small).await?;
    bench.list_cases(&small, &small_sample, "small-", 4).await?;

    // The generator, as `callrecords generate` runs into a pipe.
    eprintln!(
        "bench: callrecords generate --calls {}…",
        plan.records.min(GENERATOR_CALLS)
    );
    let generator = server::generator_rate(plan.records.min(GENERATOR_CALLS), plan.seed).await?;
    eprintln!("bench:   {} records in {:.1} s", generator.records, generator.secs);
    report.generator = Some(generator);

    // Case 5.
    let body_bytes = bench
        .cases
        .iter()
        .find(|case| case.key == "get")
        .map_or(0, |case| case.mean_body_bytes);
    bench.baseline_case(body_bytes as usize).await?;

    report.cases = bench.cases;
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("serializing the figures")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report.to_markdown())
}

/// Ids and times to aim the requests at, read from the store over HTTP before its cases.
struct Sample {
    ids: Vec<String>,
    starts: Vec<OffsetDateTime>,
    participants: Vec<String>,
}

/// Pages of 60 ids read at random start times to sample a store; bounded so that sampling a
/// large store takes seconds.
const MAX_SAMPLE_PAGES: u64 = 300;

/// Records whose participants are read to sample participant ids.
const PARTICIPANT_SAMPLE_RECORDS: usize = 100;

/// A `startDateTime` window of case 2 holds about this many records on average: three pages.
const WINDOW_RECORDS: f64 = 180.0;

struct Bench {
    plan: Plan,
    client: reqwest::Client,
    cases: Vec<CaseResult>,
}

impl Bench {
    async fn sample(&self, store: &BuiltStore) -> anyhow::Result<Sample> {
        let server = ChildServer::serve(&store.url).await?;
        let base = records_url(server.addr());
        let mut rng = ChaCha8Rng::seed_from_u64(self.plan.seed);
        let window_start = stores::WINDOW_UNTIL - time::Duration::days(i64::from(stores::WINDOW_DAYS));
        let window_secs = i64::from(stores::WINDOW_DAYS) * 86_400;
        let mut records: Vec<(String, OffsetDateTime)> = Vec::new();
        for _ in 0..store.records.div_ceil(60).min(MAX_SAMPLE_PAGES) {
            let from = window_start + time::Duration::seconds(rng.gen_range(0..window_secs));
            let url = format!(
                "{base}?$select=id,startDateTime&$filter=startDateTime%20ge%20{}",
                load::odata_datetime(from)
            );
            let page = load::get_json(&self.client, &url).await?;
            for record in page["value"].as_array().into_iter().flatten() {
                let id = record["id"].as_str().context("a listed record without an id")?;
                let start = record["startDateTime"]
                    .as_str()
                    .and_then(|text| DateTimeOffset::parse(text).ok())
                    .context("a listed record without a valid startDateTime")?;
                records.push((id.to_owned(), start.as_offset_date_time()));
            }
        }
        records.sort();
        records.dedup();
        anyhow::ensure!(!records.is_empty(), "sampling found no records in {}", store.url);
        // Shuffle, so the records whose participants are read come from all over the store.
        for index in (1..records.len()).rev() {
            records.swap(index, rng.gen_range(0..=index));
        }
        let mut participants = Vec::new();
        for (id, _) in records.iter().take(PARTICIPANT_SAMPLE_RECORDS) {
            let page = load::get_json(&self.client, &format!("{base}/{id}/participants_v2")).await?;
            for participant in page["value"].as_array().into_iter().flatten() {
                if let Some(participant_id) = participant["id"].as_str() {
                    participants.push(participant_id.to_owned());
                }
            }
        }
        participants.sort();
        participants.dedup();
        anyhow::ensure!(
            !participants.is_empty(),
            "sampling found no participants in {}",
            store.url
        );
        server.stop().await?;
        eprintln!(
            "bench: sampled {} record ids and {} participant ids of the {}-record store",
            records.len(),
            participants.len(),
            store.records
        );
        let (ids, starts) = records.into_iter().unzip();
        Ok(Sample {
            ids,
            starts,
            participants,
        })
    }

    async fn list_cases(&mut self, store: &BuiltStore, sample: &Sample, prefix: &str, case: u8) -> anyhow::Result<()> {
        // The window is sized so that it holds about WINDOW_RECORDS records whatever the store's
        // size, so that pages compare across stores.
        let span = Duration::from_secs_f64(
            (f64::from(stores::WINDOW_DAYS) * 86_400.0 * WINDOW_RECORDS / store.records as f64).max(60.0),
        );
        for (key, _) in LIST_CASES {
            let query = match key {
                "list-unfiltered" => ListQuery::Unfiltered,
                "list-window" => ListQuery::Window {
                    starts: sample.starts.clone(),
                    span,
                },
                _ => ListQuery::Participant {
                    ids: sample.participants.clone(),
                },
            };
            let title = format!("list pages, {}", query.name());
            let mut query = Some(query);
            self.read_case(&format!("{prefix}{key}"), case, &title, store, |base| Workload::List {
                base,
                query: query.take().expect("the workload is made once"),
            })
            .await?;
        }
        Ok(())
    }

    /// Starts a server on `store`, runs the closed loop made by `workload`, stops the server.
    async fn read_case(
        &mut self,
        key: &str,
        case: u8,
        title: &str,
        store: &BuiltStore,
        workload: impl FnOnce(String) -> Workload,
    ) -> anyhow::Result<()> {
        let server = ChildServer::serve(&store.url).await?;
        let workload = Arc::new(workload(records_url(server.addr())));
        let result = self
            .measure(key, case, title, Some(store.records), server, workload)
            .await?;
        self.push(result);
        Ok(())
    }

    /// Case 6: the dashboard's analytics queries over the store's whole 30-day window, one at a
    /// time, as a person waits for each chart.
    async fn analytics_case(&mut self, store: &BuiltStore) -> anyhow::Result<()> {
        let server = ChildServer::serve(&store.url).await?;
        let base = format!("http://{}", server.addr());
        let from =
            load::odata_datetime(stores::WINDOW_UNTIL - Duration::from_secs(u64::from(stores::WINDOW_DAYS) * 86_400));
        let to = load::odata_datetime(stores::WINDOW_UNTIL + Duration::from_secs(86_400));
        let urls = ANALYTICS_QUERIES
            .iter()
            .map(|query| format!("{base}{query}&fromDateTime={from}&toDateTime={to}"))
            .collect();
        let workload = Arc::new(Workload::AnyOf { urls });
        let title = "analytics over 30 days, one query at a time (quality by day, by pairs, poor due to, reliability, worst subnets)";
        let mut result = self
            .measure_at(ANALYTICS_CASE, 6, title, Some(store.records), server, workload, 1)
            .await?;
        result.note = Some(format!("{} queries", ANALYTICS_QUERIES.len()));
        self.push(result);
        Ok(())
    }

    async fn baseline_case(&mut self, body_bytes: usize) -> anyhow::Result<()> {
        let server = ChildServer::baseline(body_bytes).await?;
        let workload = Arc::new(Workload::Fixed {
            url: records_url(server.addr()),
        });
        let title = format!("baseline: {} pre-built bytes", report::thousands(body_bytes as u64));
        let result = self.measure("baseline", 5, &title, None, server, workload).await?;
        self.push(result);
        Ok(())
    }

    async fn measure(
        &self,
        key: &str,
        case: u8,
        title: &str,
        store_records: Option<u64>,
        server: ChildServer,
        workload: Arc<Workload>,
    ) -> anyhow::Result<CaseResult> {
        let concurrency = self.plan.concurrency;
        self.measure_at(key, case, title, store_records, server, workload, concurrency)
            .await
    }

    /// `measure` with `concurrency` requests in flight.
    #[allow(clippy::too_many_arguments)]
    async fn measure_at(
        &self,
        key: &str,
        case: u8,
        title: &str,
        store_records: Option<u64>,
        mut server: ChildServer,
        workload: Arc<Workload>,
        concurrency: usize,
    ) -> anyhow::Result<CaseResult> {
        eprintln!("bench: case {case}, {title}…");
        let before = Usage::read(&mut server)?;
        let result =
            load::run_closed_loop(&self.client, workload, concurrency, self.plan.timing, self.plan.seed).await?;
        let after = Usage::read(&mut server)?;
        server.stop().await?;
        let (server_cores, load_generator_cores) = before.cores_until(&after);
        Ok(CaseResult {
            key: key.to_owned(),
            case,
            title: title.to_owned(),
            store_records,
            unit: "requests",
            throughput: stats::rate(result.completed, result.window),
            units: result.completed,
            window_secs: result.window.as_secs_f64(),
            mean_body_bytes: result.body_bytes.checked_div(result.completed).unwrap_or(0),
            latency: result.latency,
            errors: result.errors,
            first_error: result.first_error,
            server_peak_rss_bytes: after.server.peak_rss_bytes,
            server_cores,
            load_generator_cores,
            note: None,
        })
    }

    /// Case 3 on a fresh store, then the same batches against the ingest baseline.
    async fn ingest_case(&mut self, store_server: &StoreServer) -> anyhow::Result<()> {
        let title = "NDJSON ingest into an empty store, batches of 1,000";
        let batches = Arc::new(self.ingest_batches().await?);
        let url = store_server.fresh_ingest_store().await?;
        let server = ChildServer::serve(&url).await?;
        let mut result = self
            .measure_ingest("ingest", 3, title, server, batches.clone(), BatchReuse::Once)
            .await?;
        store_server.remove_ingest_store().await?;
        let cpu = one_core_ingest_rates(batches.clone(), self.plan.timing.duration.min(Duration::from_secs(4))).await?;
        let cpu_note = format!(
            "one core of this machine, in this run, scans {} records/s of these batches as JSON (serde_json, nothing kept) and prepares {} records/s for the store (parsed into the model, validated, stored documents written)",
            report::thousands(cpu.scanned_per_sec.round() as u64),
            report::thousands(cpu.prepared_per_sec.round() as u64),
        );
        result.note = Some(match result.note.take() {
            Some(note) => format!("{note}; {cpu_note}"),
            None => cpu_note,
        });
        self.push(result);

        let sink_dir = store_server.fresh_sink_dir()?;
        let server = ChildServer::ingest_baseline(&sink_dir).await?;
        let title = "baseline: the same batches written to a file each and fsynced";
        let result = self
            .measure_ingest("ingest-baseline", 5, title, server, batches, BatchReuse::Cycle)
            .await;
        stores::remove_sink_dir(&sink_dir)?;
        self.push(result?);
        Ok(())
    }

    async fn measure_ingest(
        &self,
        key: &str,
        case: u8,
        title: &str,
        mut server: ChildServer,
        batches: Arc<Vec<IngestBatch>>,
        reuse: BatchReuse,
    ) -> anyhow::Result<CaseResult> {
        let ingest_url = format!("http://{}/ingest/callRecords", server.addr());
        eprintln!("bench: case {case}, {title}…");
        let before = Usage::read(&mut server)?;
        let result = load::run_ingest(
            &self.client,
            &ingest_url,
            batches,
            self.plan.ingest_connections,
            self.plan.timing,
            reuse,
        )
        .await?;
        let after = Usage::read(&mut server)?;
        server.stop().await?;
        let (server_cores, load_generator_cores) = before.cores_until(&after);
        let mut note = result.note;
        if result.rejected > 0 {
            note = Some(format!("{} records were rejected", result.rejected));
        }
        Ok(CaseResult {
            key: key.into(),
            case,
            title: title.into(),
            store_records: None,
            unit: "records",
            throughput: stats::rate(result.acknowledged, result.window),
            units: result.acknowledged,
            window_secs: result.window.as_secs_f64(),
            latency: result.batch_latency,
            mean_body_bytes: 0,
            errors: result.errors,
            first_error: result.first_error,
            server_peak_rss_bytes: after.server.peak_rss_bytes,
            server_cores,
            load_generator_cores,
            note,
        })
    }

    /// Pre-builds the ingest batches in memory, before anything is timed: records of another
    /// seed than the stores', so every id is new. Enough for the run at ASSUMED_INGEST_RATE,
    /// within memory bounds; if the server is faster they run out and the window shortens.
    async fn ingest_batches(&self) -> anyhow::Result<Vec<IngestBatch>> {
        const BATCH: u64 = 1_000;
        const ASSUMED_INGEST_RATE: f64 = 2_500.0;
        const MAX_BATCHES: u64 = 40;
        let planned_secs = (self.plan.timing.warmup + self.plan.timing.duration).as_secs_f64();
        let n_batches = ((planned_secs * ASSUMED_INGEST_RATE / BATCH as f64).ceil() as u64).clamp(
            self.plan.ingest_connections as u64 * 2,
            MAX_BATCHES.max(self.plan.ingest_connections as u64 * 2),
        );
        let options = stores::generate_options(n_batches * BATCH, self.plan.seed.wrapping_add(1_000_000));
        let started = Instant::now();
        let batches = tokio::task::spawn_blocking(move || {
            let mut batches = Vec::new();
            let mut body = Vec::new();
            let mut records = 0;
            generate::generate(&options, |item| {
                if let Generated::CallRecord(record) = item {
                    body.extend_from_slice(generate::ndjson_line(&record).as_bytes());
                    records += 1;
                    if records == BATCH {
                        batches.push(IngestBatch {
                            body: std::mem::take(&mut body).into(),
                            records,
                        });
                        records = 0;
                    }
                }
            });
            batches
        })
        .await
        .context("the generator thread panicked")?;
        let bytes: usize = batches.iter().map(|batch| batch.body.len()).sum();
        eprintln!(
            "bench: pre-built {} ingest batches ({} records, {:.0} MB) in {:.1} s",
            batches.len(),
            batches.iter().map(|batch| batch.records).sum::<u64>(),
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        Ok(batches)
    }

    fn push(&mut self, case: CaseResult) {
        eprintln!(
            "bench:   {:.0} {}/s, p50 {:.2} ms, p99 {:.2} ms, server peak RSS {:.0} MB, {} errors",
            case.throughput,
            case.unit,
            case.latency.p50_us as f64 / 1000.0,
            case.latency.p99_us as f64 / 1000.0,
            case.server_peak_rss_bytes as f64 / 1e6,
            case.errors
        );
        self.cases.push(case);
    }
}

/// What one core does with the ingest batches, without HTTP or a store.
struct CpuIngestRates {
    scanned_per_sec: f64,
    prepared_per_sec: f64,
}

/// Measures, on one blocking thread, how many of the batches' records per second serde_json can
/// merely scan, and how many `ingest::prepare_record` makes ready for the store, each for about
/// `budget`: the CPU floor under case 3, which no store and no HTTP can lower.
async fn one_core_ingest_rates(batches: Arc<Vec<IngestBatch>>, budget: Duration) -> anyhow::Result<CpuIngestRates> {
    tokio::task::spawn_blocking(move || {
        let now = DateTimeOffset::now();
        let lines = || {
            batches
                .iter()
                .cycle()
                .flat_map(|batch| batch.body.split(|&b| b == b'\n').filter(|line| !line.is_empty()))
        };
        let rate = |work: &dyn Fn(&[u8])| {
            let started = Instant::now();
            let mut records = 0u64;
            for line in lines() {
                work(line);
                records += 1;
                if records.is_multiple_of(64) && started.elapsed() >= budget {
                    break;
                }
            }
            stats::rate(records, started.elapsed())
        };
        CpuIngestRates {
            scanned_per_sec: rate(&|line| {
                let _ = std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(line));
            }),
            prepared_per_sec: rate(&|line| {
                let _ = std::hint::black_box(callrecords::ingest::prepare_record(line, now));
            }),
        }
    })
    .await
    .context("the ingest CPU measurement panicked")
}

/// Case 7: the whole store exported by `callrecords export`, as a backup (records as NDJSON)
/// and for analysts (classified streams as Parquet).
async fn export_rates(store_server: &StoreServer, store: &BuiltStore) -> anyhow::Result<Vec<ExportRate>> {
    let dir = store_server.fresh_sink_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rates = Vec::new();
    for (what, format) in [("records", "ndjson"), ("streams", "parquet")] {
        eprintln!("bench: case 7, export {what} as {format}…");
        let rate = server::export_rate(&store.url, store.records, what, format, &dir).await;
        if let Ok(rate) = &rate {
            eprintln!(
                "bench:   {:.0} records/s, {:.1} MB, peak RSS {:.0} MB",
                stats::rate(rate.records, Duration::from_secs_f64(rate.secs)),
                rate.bytes as f64 / 1e6,
                rate.peak_rss_bytes as f64 / 1e6
            );
        }
        rates.push(rate);
    }
    stores::remove_sink_dir(&dir)?;
    rates.into_iter().collect()
}

fn records_url(addr: SocketAddr) -> String {
    format!("http://{addr}/v1.0/communications/callRecords")
}

/// The server's and the bench's own usage at one moment, to share CPU out over a case.
struct Usage {
    at: Instant,
    server: ProcessUsage,
    load_generator: ProcessUsage,
}

impl Usage {
    fn read(server: &mut ChildServer) -> anyhow::Result<Self> {
        Ok(Self {
            at: Instant::now(),
            server: server.usage()?,
            load_generator: ProcessUsage::of("self")?,
        })
    }

    /// Cores used on average by the server and by the load generator between the two readings.
    fn cores_until(&self, later: &Usage) -> (f64, f64) {
        let wall = (later.at - self.at).as_secs_f64();
        let cores = |before: Duration, after: Duration| {
            stats::ratio(after.saturating_sub(before).as_secs_f64(), wall).unwrap_or(0.0)
        };
        (
            cores(self.server.cpu, later.server.cpu),
            cores(self.load_generator.cpu, later.load_generator.cpu),
        )
    }
}
