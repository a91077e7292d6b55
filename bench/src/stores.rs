//! The stores the bench reads and writes: where they live, how they are named, and how they are
//! built with the generator. A store is reused when it already holds the wanted number of
//! records, because building a large one takes many minutes.
//!
//! SQLite stores are files in a directory (`./data/bench/` by default); PostgreSQL stores are
//! databases the bench creates on the server it is given (`callrecords_bench_<records>_seed<seed>`).
//! The name carries everything that decides the content (size and seed; the time window is a
//! constant of the bench), so a reused store holds exactly what a fresh build would.
//! Never: touch a store whose name the bench did not make.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Connection as _;
use time::OffsetDateTime;

use callrecords::generate::GenerateOptions;
use callrecords::store::{self, RecordSelection, TenantId};

/// Where the bench's stores live.
#[derive(Clone, Debug)]
pub(crate) enum StoreServer {
    /// A directory of SQLite files.
    Sqlite { dir: PathBuf },
    /// A PostgreSQL server, reached through the URL of any database on it.
    Postgres {
        base_url: reqwest::Url,
        /// The size of an empty, migrated database there, measured once per run.
        empty_bytes: std::sync::Arc<tokio::sync::OnceCell<u64>>,
    },
}

/// A store of generated records, ready to serve.
#[derive(Clone, Debug)]
pub(crate) struct BuiltStore {
    pub(crate) url: String,
    pub(crate) records: u64,
    /// Time spent building it now; None when an existing store was reused.
    pub(crate) build_time: Option<Duration>,
    pub(crate) footprint: Footprint,
}

/// What a store of generated records takes on disk, beside the NDJSON it was built from.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Footprint {
    /// SQLite: the database file and its write-ahead log after a checkpoint. PostgreSQL: the
    /// database's size less that of an empty, migrated one.
    pub(crate) store_bytes: u64,
    /// How `store_bytes` was counted, for the report.
    pub(crate) counted: String,
    /// Bytes of the call records' NDJSON lines it was built from, every version included; None
    /// for a store reused from before the bench kept that figure.
    pub(crate) ndjson_bytes: Option<u64>,
    /// Call-record lines in that NDJSON (later versions of a record included).
    pub(crate) ndjson_lines: Option<u64>,
}

impl StoreServer {
    /// `sqlite://DIR` or a `postgres://` URL.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if let Some(dir) = url.strip_prefix("sqlite://") {
            Ok(Self::Sqlite {
                dir: PathBuf::from(dir),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let base_url = reqwest::Url::parse(url)
                .with_context(|| format!("parsing --db {}", callrecords::app::redact_url(url)))?;
            Ok(Self::Postgres {
                base_url,
                empty_bytes: Default::default(),
            })
        } else {
            anyhow::bail!("unsupported --db '{url}': expected sqlite://DIRECTORY or postgres://USER@HOST:PORT/DB")
        }
    }

    /// `SQLite` or `PostgreSQL 15.2 …`, for the report's header.
    pub(crate) async fn describe(&self) -> anyhow::Result<String> {
        match self {
            Self::Sqlite { dir } => Ok(format!("SQLite (files under {})", dir.display())),
            Self::Postgres { base_url, .. } => {
                let mut db = connect(base_url.as_str()).await?;
                let version: String = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(&mut db)
                    .await
                    .context("asking PostgreSQL for its version")?;
                Ok(format!(
                    "PostgreSQL {version} at {}",
                    callrecords::app::redact_url(base_url.as_str())
                ))
            }
        }
    }

    /// The store of `options.calls` generated records, reused if it is complete, otherwise
    /// (re)built from nothing.
    pub(crate) async fn ensure(&self, options: &GenerateOptions) -> anyhow::Result<BuiltStore> {
        let name = format!("records-{}-seed{}", options.calls, options.seed);
        let url = match self {
            Self::Sqlite { dir } => {
                let path = dir.join(format!("{name}.db"));
                let url = sqlite_url(&path);
                if path.exists() && count_records(&url).await? == options.calls {
                    self.settle(&url).await?;
                    let footprint = self.footprint(&url, read_ndjson_figures(&path)).await?;
                    return Ok(reused(url, options.calls, footprint));
                }
                remove_sqlite_files(&path)?;
                url
            }
            Self::Postgres { base_url, .. } => {
                let database = format!("callrecords_bench_{}", name.replace('-', "_"));
                let url = database_url(base_url, &database);
                if database_exists(base_url, &database).await? && count_records(&url).await? == options.calls {
                    let figures = read_database_comment(&url).await?;
                    let footprint = self.footprint(&url, figures).await?;
                    return Ok(reused(url, options.calls, footprint));
                }
                recreate_database(base_url, &database).await?;
                url
            }
        };
        eprintln!(
            "bench: building a store of {} records in {} (seed {}); this is done once and reused",
            options.calls,
            callrecords::app::redact_url(&url),
            options.seed
        );
        let started = Instant::now();
        let store = store::open(&url).await?;
        let generated =
            callrecords::ingest::ingest_generated(store.as_ref(), &TenantId::default_tenant(), options.clone()).await?;
        drop(store);
        self.settle(&url).await?;
        let build_time = started.elapsed();
        let report = &generated.call_records;
        let figures = NdjsonFigures {
            bytes: generated.call_record_bytes,
            lines: report.accepted(),
        };
        self.keep_ndjson_figures(&url, figures).await?;
        let records = count_records(&url).await?;
        anyhow::ensure!(
            records == options.calls,
            "the store at {} holds {records} records after building, not {}",
            callrecords::app::redact_url(&url),
            options.calls
        );
        eprintln!(
            "bench: built {} records ({} replaced by later versions) in {:.0} s",
            report.stored,
            report.replaced,
            build_time.as_secs_f64()
        );
        let footprint = self.footprint(&url, Some(figures)).await?;
        Ok(BuiltStore {
            url,
            records,
            build_time: Some(build_time),
            footprint,
        })
    }

    /// What the store at `url` takes on disk; it has been settled.
    async fn footprint(&self, url: &str, ndjson: Option<NdjsonFigures>) -> anyhow::Result<Footprint> {
        let (store_bytes, counted) = match self {
            Self::Sqlite { .. } => {
                let path = url.strip_prefix("sqlite://").unwrap_or(url);
                let file = file_size(std::path::Path::new(path))?;
                let wal = file_size(std::path::Path::new(&format!("{path}-wal")))?;
                (
                    file + wal,
                    format!(
                        "file {} + write-ahead log {}, after a checkpoint",
                        bytes(file),
                        bytes(wal)
                    ),
                )
            }
            Self::Postgres { base_url, empty_bytes } => {
                let size = database_size(url).await?;
                let empty = *empty_bytes.get_or_try_init(|| empty_database_size(base_url)).await?;
                (
                    size.saturating_sub(empty),
                    format!("database {} less an empty migrated one, {}", bytes(size), bytes(empty)),
                )
            }
        };
        Ok(Footprint {
            store_bytes,
            counted,
            ndjson_bytes: ndjson.map(|figures| figures.bytes),
            ndjson_lines: ndjson.map(|figures| figures.lines),
        })
    }

    /// Keeps the NDJSON figures of a store it built beside the store, so a reused store reports
    /// them too: a file next to a SQLite store, the database's comment on PostgreSQL.
    async fn keep_ndjson_figures(&self, url: &str, figures: NdjsonFigures) -> anyhow::Result<()> {
        let text = format!("{NDJSON_FIGURES_PREFIX}{} {}", figures.bytes, figures.lines);
        match self {
            Self::Sqlite { .. } => {
                let path = url.strip_prefix("sqlite://").unwrap_or(url);
                let sidecar = ndjson_sidecar(std::path::Path::new(path));
                std::fs::write(&sidecar, text).with_context(|| format!("writing {}", sidecar.display()))
            }
            Self::Postgres { .. } => {
                let mut db = connect(url).await?;
                let database: String = sqlx::query_scalar("SELECT current_database()")
                    .fetch_one(&mut db)
                    .await?;
                // Identifiers and COMMENT's literal cannot be bound; both are the bench's own text.
                sqlx::query(&format!("COMMENT ON DATABASE \"{database}\" IS '{text}'"))
                    .execute(&mut db)
                    .await
                    .context("commenting the bench database")?;
                Ok(())
            }
        }
    }

    /// Leaves a store as a long-running deployment would have it, so that every run reads the
    /// same layout: SQLite's write-ahead log folded into the database file (a store whose last
    /// writer was killed keeps a WAL that every read must consult), PostgreSQL's tables vacuumed
    /// and analysed (as autovacuum would have done by the time anyone reads them).
    async fn settle(&self, url: &str) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { .. } => {
                let mut db = sqlx::SqliteConnection::connect(url)
                    .await
                    .with_context(|| format!("opening {url}"))?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut db)
                    .await
                    .with_context(|| format!("checkpointing {url}"))?;
                db.close().await.with_context(|| format!("closing {url}"))?;
            }
            Self::Postgres { .. } => {
                let mut db = connect(url).await?;
                sqlx::query("VACUUM (ANALYZE)")
                    .execute(&mut db)
                    .await
                    .with_context(|| format!("vacuuming {}", callrecords::app::redact_url(url)))?;
                db.close().await.context("closing the PostgreSQL connection")?;
            }
        }
        Ok(())
    }

    /// An empty store for the ingest case, made fresh so that the ingested records never change
    /// the stores that are reused. Returns its URL.
    pub(crate) async fn fresh_ingest_store(&self) -> anyhow::Result<String> {
        let url = match self {
            Self::Sqlite { dir } => {
                let path = dir.join("ingest.db");
                remove_sqlite_files(&path)?;
                sqlite_url(&path)
            }
            Self::Postgres { base_url, .. } => {
                recreate_database(base_url, INGEST_DATABASE).await?;
                database_url(base_url, INGEST_DATABASE)
            }
        };
        // Migrate now so the server's start-up is not part of anything measured.
        drop(store::open(&url).await?);
        Ok(url)
    }

    /// Removes the ingest store; its server must have stopped.
    pub(crate) async fn remove_ingest_store(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite { dir } => remove_sqlite_files(&dir.join("ingest.db")),
            Self::Postgres { base_url, .. } => drop_database(base_url, INGEST_DATABASE).await,
        }
    }

    /// A fresh, empty directory where the ingest baseline writes its files: beside the SQLite
    /// stores (the same disk), or in the system's temporary directory for PostgreSQL.
    pub(crate) fn fresh_sink_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = match self {
            Self::Sqlite { dir } => dir.join("ingest-baseline"),
            Self::Postgres { .. } => {
                std::env::temp_dir().join(format!("callrecords-bench-sink-{}", std::process::id()))
            }
        };
        remove_sink_dir(&dir)?;
        Ok(dir)
    }
}

const INGEST_DATABASE: &str = "callrecords_bench_ingest";
const EMPTY_DATABASE: &str = "callrecords_bench_empty";

/// The NDJSON a store was built from, as the bench keeps it beside the store.
#[derive(Clone, Copy, Debug)]
struct NdjsonFigures {
    bytes: u64,
    lines: u64,
}

const NDJSON_FIGURES_PREFIX: &str = "callrecords-bench ndjson bytes and lines: ";

fn parse_ndjson_figures(text: &str) -> Option<NdjsonFigures> {
    let (bytes, lines) = text.trim().strip_prefix(NDJSON_FIGURES_PREFIX)?.split_once(' ')?;
    Some(NdjsonFigures {
        bytes: bytes.parse().ok()?,
        lines: lines.parse().ok()?,
    })
}

fn ndjson_sidecar(store: &std::path::Path) -> PathBuf {
    PathBuf::from(format!("{}.ndjson-figures", store.display()))
}

fn read_ndjson_figures(store: &std::path::Path) -> Option<NdjsonFigures> {
    parse_ndjson_figures(&std::fs::read_to_string(ndjson_sidecar(store)).ok()?)
}

async fn read_database_comment(url: &str) -> anyhow::Result<Option<NdjsonFigures>> {
    let mut db = connect(url).await?;
    let comment: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()",
    )
    .fetch_one(&mut db)
    .await
    .context("reading the bench database's comment")?;
    Ok(comment.as_deref().and_then(parse_ndjson_figures))
}

/// The size of a freshly migrated, empty database on this server: what every store holds
/// before its first record (catalog, empty tables and partitions).
async fn empty_database_size(base_url: &reqwest::Url) -> anyhow::Result<u64> {
    recreate_database(base_url, EMPTY_DATABASE).await?;
    let url = database_url(base_url, EMPTY_DATABASE);
    drop(store::open(&url).await?);
    let size = database_size(&url).await?;
    drop_database(base_url, EMPTY_DATABASE).await?;
    Ok(size)
}

async fn database_size(url: &str) -> anyhow::Result<u64> {
    let mut db = connect(url).await?;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut db)
        .await
        .context("reading the database's size")?;
    Ok(u64::try_from(size).unwrap_or(0))
}

fn file_size(path: &std::path::Path) -> anyhow::Result<u64> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(metadata.len()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error).with_context(|| format!("reading the size of {}", path.display())),
    }
}

fn bytes(count: u64) -> String {
    format!("{:.1} MB", count as f64 / 1e6)
}

/// Removes the ingest baseline's directory and its files; a missing one is fine.
pub(crate) fn remove_sink_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", dir.display())),
    }
}

fn reused(url: String, records: u64, footprint: Footprint) -> BuiltStore {
    eprintln!(
        "bench: reusing {} ({records} records)",
        callrecords::app::redact_url(&url)
    );
    BuiltStore {
        url,
        records,
        build_time: None,
        footprint,
    }
}

fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn count_records(url: &str) -> anyhow::Result<u64> {
    let store = store::open(url).await?;
    let count = store
        .count_call_records(&TenantId::default_tenant(), &RecordSelection::default())
        .await
        .with_context(|| format!("counting the records in {}", callrecords::app::redact_url(url)))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

fn remove_sqlite_files(path: &std::path::Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", ".ndjson-figures"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("removing {}", file.display())),
        }
    }
    Ok(())
}

/// The URL of `database` on the server of `base_url`, with the same user and options.
fn database_url(base_url: &reqwest::Url, database: &str) -> String {
    let mut url = base_url.clone();
    url.set_path(&format!("/{database}"));
    url.to_string()
}

async fn connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {}", callrecords::app::redact_url(url)))
}

async fn database_exists(base_url: &reqwest::Url, database: &str) -> anyhow::Result<bool> {
    let mut db = connect(base_url.as_str()).await?;
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(database)
        .fetch_optional(&mut db)
        .await
        .with_context(|| format!("looking for the database {database}"))?;
    Ok(found.is_some())
}

async fn recreate_database(base_url: &reqwest::Url, database: &str) -> anyhow::Result<()> {
    drop_database(base_url, database).await?;
    let mut db = connect(base_url.as_str()).await?;
    // Identifiers cannot be bound; the name is made by the bench from digits and ASCII letters.
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut db)
        .await
        .with_context(|| format!("creating the database {database}"))?;
    Ok(())
}

async fn drop_database(base_url: &reqwest::Url, database: &str) -> anyhow::Result<()> {
    let mut db = connect(base_url.as_str()).await?;
    // FORCE ends the sessions a killed server may have left behind (PostgreSQL 13 and later).
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"))
        .execute(&mut db)
        .await
        .with_context(|| format!("dropping the database {database}"))?;
    Ok(())
}

/// The generator's options for a bench store: a fixed window, so that stores are reproducible
/// whatever the date.
pub(crate) fn generate_options(calls: u64, seed: u64) -> GenerateOptions {
    GenerateOptions {
        calls,
        seed,
        days: WINDOW_DAYS,
        until: WINDOW_UNTIL,
    }
}

/// Start times of the bench's records fall in `[WINDOW_UNTIL - WINDOW_DAYS, WINDOW_UNTIL)`.
pub(crate) const WINDOW_UNTIL: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);
pub(crate) const WINDOW_DAYS: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_figures_are_kept_as_text_and_read_back() {
        let text = format!("{NDJSON_FIGURES_PREFIX}63400000 2065");
        let figures = parse_ndjson_figures(&text).unwrap();
        assert_eq!((figures.bytes, figures.lines), (63_400_000, 2_065));
        assert!(parse_ndjson_figures("a comment of someone else's").is_none());
        assert!(parse_ndjson_figures(&format!("{NDJSON_FIGURES_PREFIX}63400000")).is_none());
    }
}
