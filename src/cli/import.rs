//! `callrecords import FILE|-`: NDJSON from disk or stdin through the same ingest path as HTTP,
//! with a progress bar on stderr and a summary at the end.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::ImportArgs;
use crate::app::redact_url;
use crate::ingest::{BatchIngest, IngestKind};
use crate::store;

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let tenant = super::tenant_arg(args.tenant.as_deref())?;
    let store = store::open(&args.db.db_url).await?;
    let (reader, total_bytes): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) = if args.file == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .with_context(|| format!("opening {}", args.file))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = match (args.quiet, total_bytes) {
        (true, _) => ProgressBar::hidden(),
        (false, Some(total)) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        (false, None) => ProgressBar::new_spinner(),
    };
    let started = std::time::Instant::now();
    let kind = IngestKind::parse(&args.kind).ok_or_else(|| anyhow::anyhow!("unknown --kind {}", args.kind))?;
    let mut batch = BatchIngest::of_kind(store.as_ref(), &tenant, kind, &crate::clock::SystemClock);
    let mut lines = BufReader::with_capacity(1 << 20, reader).split(b'\n');
    let mut line_number = 0u64;
    while let Some(line) = lines.next_segment().await.context("reading the input")? {
        line_number += 1;
        progress.inc(line.len() as u64 + 1);
        batch.push_line(line_number, &line).await?;
        if line_number.is_multiple_of(1000) {
            let report = batch.report();
            progress.set_message(format!("{} records", report.accepted() + report.rejected));
        }
    }
    let report = batch.finish().await?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    for error in &report.errors {
        eprintln!("line {}: {}: {}", error.line, error.path, error.reason);
    }
    let handled = report.accepted() + report.rejected;
    eprintln!(
        "imported into {}: {} stored, {} replaced, {} ignored, {} rejected ({} records in {:.1}s, {:.0} records/s)",
        redact_url(&args.db.db_url),
        report.stored,
        report.replaced,
        report.ignored,
        report.rejected,
        handled,
        seconds,
        handled as f64 / seconds.max(1e-9)
    );
    if report.rejected > 0 {
        anyhow::bail!("{} records were rejected", report.rejected);
    }
    Ok(())
}
