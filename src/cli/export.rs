//! `callrecords export`: `crate::export` into a file (written under a temporary name and renamed
//! once complete, so an interrupted export leaves no file that looks whole) or to stdout.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use super::DbArgs;
use crate::app::redact_url;
use crate::clock::Clock as _;
use crate::export::{self, ExportRequest, Format, Output, RequestError, What};
use crate::store;

/// How far back the printed `--changed-since` for the next run reaches before this export
/// began: a write that chose its time of storage before the export read its range, and
/// committed after, is still caught by the next run. Exporting a record twice is harmless:
/// import keeps the higher version.
const CHANGED_SINCE_OVERLAP: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// What to export: records (each call record whole), streams (one row per classified stream),
    /// sessions (one row per session), pstnCalls or directRoutingCalls.
    #[arg(long, default_value = "records", value_parser = clap::builder::PossibleValuesParser::new(What::NAMES))]
    pub(crate) what: String,
    /// ndjson (records: as the API serves them with every page merged in, the form import
    /// takes) or parquet (zstd-compressed columns).
    #[arg(long, default_value = "ndjson", value_parser = clap::builder::PossibleValuesParser::new(Format::NAMES))]
    pub(crate) format: String,
    /// The file to write, or - for stdout.
    #[arg(short = 'o', long = "output")]
    pub(crate) output: String,
    /// The tenant (a GUID) whose data to export [default: the one tenant of a server without
    /// authentication].
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Records (or rows) that started at or after this date or date and time (ISO 8601, UTC
    /// unless it says otherwise).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Records (or rows) that started before this date or date and time.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Call records stored (new, or a new version) at or after this date and time: what
    /// changed since an earlier export, which prints the value for the next one.
    #[arg(long)]
    pub(crate) changed_since: Option<String>,
    /// Print nothing but errors.
    #[arg(long)]
    pub(crate) quiet: bool,
}

fn instant(flag: &str, text: Option<&str>) -> anyhow::Result<Option<crate::clock::Timestamp>> {
    text.map(|text| {
        crate::analytics::parse_instant(text.trim())
            .ok_or_else(|| anyhow::anyhow!("--{flag}: '{text}' is not an ISO 8601 date or date and time"))
    })
    .transpose()
}

/// A file being written under a temporary name beside its final one.
struct PendingFile {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temporary: PathBuf,
    target: PathBuf,
}

impl PendingFile {
    async fn create(target: &Path) -> anyhow::Result<Self> {
        let name = target
            .file_name()
            .with_context(|| format!("-o {}: names no file", target.display()))?;
        if target.is_dir() {
            anyhow::bail!("-o {}: is a directory", target.display());
        }
        let temporary = target.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
        let file = tokio::fs::File::create(&temporary)
            .await
            .with_context(|| format!("-o {}: cannot write there", target.display()))?;
        Ok(Self {
            file: tokio::io::BufWriter::with_capacity(1 << 20, file),
            temporary,
            target: target.to_owned(),
        })
    }

    /// Flushes and syncs the file, then gives it its name.
    async fn complete(mut self) -> anyhow::Result<()> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        tokio::fs::rename(&self.temporary, &self.target)
            .await
            .with_context(|| format!("renaming the finished export to {}", self.target.display()))
    }
}

enum Destination {
    File(PendingFile),
    Stdout(tokio::io::Stdout),
}

#[async_trait::async_trait]
impl Output for Destination {
    async fn write(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Destination::File(pending) => pending.file.write_all(&bytes).await,
            Destination::Stdout(stdout) => stdout.write_all(&bytes).await,
        }
        .context("writing the export")
    }
}

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let what = What::parse(&args.what).with_context(|| format!("--what: unknown '{}'", args.what))?;
    let format = Format::parse(&args.format).with_context(|| format!("--format: unknown '{}'", args.format))?;
    let request = ExportRequest {
        tenant: super::tenant_arg(args.tenant.as_deref())?,
        what,
        format,
        from: instant("from", args.from.as_deref())?,
        to: instant("to", args.to.as_deref())?,
        changed_since: instant("changed-since", args.changed_since.as_deref())?,
    };
    request.check().map_err(|error| match error {
        RequestError::ToNotAfterFrom => anyhow::anyhow!("--to: must be after --from"),
        RequestError::ChangedSinceOnLogs(what) => anyhow::anyhow!(
            "--changed-since: applies to call records only; {} rows never change once stored, so select new ones by --from",
            what.as_str()
        ),
    })?;
    let store = store::open(&args.db.db_url).await?;
    let mut destination = if args.output == "-" {
        Destination::Stdout(tokio::io::stdout())
    } else {
        Destination::File(PendingFile::create(Path::new(&args.output)).await?)
    };
    let began = crate::clock::SystemClock.timestamp();
    let started = Instant::now();
    let summary = match export::export(store.as_ref(), &request, None, &mut destination).await {
        Ok(summary) => summary,
        Err(error) => {
            if let Destination::File(pending) = destination {
                let _ = tokio::fs::remove_file(&pending.temporary).await;
            }
            return Err(error.context(format!(
                "exporting {} from {}",
                what.as_str(),
                redact_url(&args.db.db_url)
            )));
        }
    };
    match destination {
        Destination::File(pending) => pending.complete().await?,
        Destination::Stdout(mut stdout) => stdout.flush().await?,
    }
    if !args.quiet {
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "exported {} of {}: {} records, {} rows, {} bytes to {} in {:.1}s ({:.0} records/s)",
            what.as_str(),
            redact_url(&args.db.db_url),
            summary.records,
            summary.rows,
            summary.bytes,
            args.output,
            seconds,
            summary.records as f64 / seconds.max(1e-9)
        );
        if what.log_kind().is_none() {
            if let Some(next) = (began - CHANGED_SINCE_OVERLAP).to_date_time() {
                eprintln!("what changes after this export: --changed-since {next}");
            }
        }
    }
    Ok(())
}
