//! What a bench run found, as data (`BenchReport`, saved by `--json`) and as Markdown: a header
//! describing the machine and the run, the table of figures with ratios to the baseline, and
//! the performance targets with PASS or MISS. Formatting only; the figures come from `load`.

use std::fmt::Write as _;

use serde::Serialize;

use super::server::{ExportRate, GeneratorRate};
use super::stats::{self, LatencySummary};
use super::stores::{BuiltStore, Footprint};

/// Everything a run measured, with what it ran on.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BenchReport {
    pub(crate) machine: Machine,
    pub(crate) store_kind: String,
    pub(crate) records: u64,
    pub(crate) small_records: u64,
    /// Seconds spent building each store in this run; absent for a store that was reused.
    pub(crate) build_secs: Vec<(u64, Option<f64>)>,
    /// What each store (by its records) takes on disk, beside the NDJSON it was built from.
    pub(crate) footprints: Vec<(u64, Footprint)>,
    /// `callrecords generate` into a pipe.
    pub(crate) generator: Option<GeneratorRate>,
    /// `callrecords export` of the main store (case 7).
    pub(crate) exports: Vec<ExportRate>,
    pub(crate) concurrency: usize,
    pub(crate) ingest_connections: usize,
    pub(crate) warmup_secs: f64,
    pub(crate) duration_secs: f64,
    pub(crate) quick: bool,
    pub(crate) seed: u64,
    pub(crate) cases: Vec<CaseResult>,
}

/// The figures of one case.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CaseResult {
    /// Stable key: `get`, `list-unfiltered`, `list-window`, `list-participant`, `ingest`,
    /// `small-list-…`, `baseline`, `ingest-baseline`.
    pub(crate) key: String,
    /// The case number (1 to 6, as BENCHMARKS.md numbers them; both baselines are 5).
    pub(crate) case: u8,
    pub(crate) title: String,
    /// Records in the store the server read, or None for the baseline and the ingest store.
    pub(crate) store_records: Option<u64>,
    /// `requests` or `records`.
    pub(crate) unit: &'static str,
    /// Units per second over the measured window.
    pub(crate) throughput: f64,
    pub(crate) units: u64,
    pub(crate) window_secs: f64,
    /// Per request; per batch for ingest.
    pub(crate) latency: LatencySummary,
    pub(crate) mean_body_bytes: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) server_peak_rss_bytes: u64,
    /// The server's CPU time over the whole case (warm-up included) divided by its wall time.
    pub(crate) server_cores: f64,
    /// The same for the bench process, which generates the load.
    pub(crate) load_generator_cores: f64,
    pub(crate) note: Option<String>,
}

/// The machine the run happened on.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) memory_bytes: u64,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned()),
            memory_bytes: meminfo
                .lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kilobytes| kilobytes.parse::<u64>().ok())
                .map_or(0, |kilobytes| kilobytes * 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".to_owned(), |release| release.trim().to_owned()),
        }
    }
}

/// The performance targets, set for a 1,000,000-record SQLite store at concurrency 32 (BENCHMARKS.md
/// lists them with the latest figures).
const GET_THROUGHPUT_OF_BASELINE: f64 = 0.5;
const GET_P99_MS: f64 = 5.0;
const LIST_P99_MS: f64 = 10.0;
/// Case 6: a dashboard query over 30 days of the store answers "in well under a second".
const ANALYTICS_P99_MS: f64 = 500.0;
const LARGE_TO_SMALL_P99: f64 = 1.2;
const INGEST_RECORDS_PER_SEC: f64 = 20_000.0;
/// The compact store's floors, on either backend: get as a share of the baseline (SQLite,
/// PostgreSQL), and durably acknowledged ingest.
const GET_OF_BASELINE_BY_STORE: (f64, f64) = (0.35, 0.2);
const STORE_INGEST_RECORDS_PER_SEC: f64 = 3_000.0;
const PEAK_RSS_MB: f64 = 150.0;
const GENERATOR_RECORDS_PER_SEC: f64 = 6_000.0;
/// An export of any size streams: its process stays under this.
const EXPORT_PEAK_RSS_MB: f64 = 200.0;
/// Bytes on disk per stored record, indexes included.
const SQLITE_BYTES_PER_RECORD: f64 = 4_000.0;
const POSTGRES_BYTES_PER_RECORD: f64 = 5_000.0;

impl BenchReport {
    /// Records how a store was come by: its build time and what it takes on disk.
    pub(crate) fn add_store(&mut self, store: &BuiltStore) {
        self.build_secs
            .push((store.records, store.build_time.map(|time| time.as_secs_f64())));
        self.footprints.push((store.records, store.footprint.clone()));
    }

    fn case(&self, key: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|case| case.key == key)
    }

    pub(crate) fn to_markdown(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        self.write_table(&mut out);
        self.write_targets(&mut out);
        self.write_notes(&mut out);
        out
    }

    fn write_header(&self, out: &mut String) {
        let machine = &self.machine;
        let _ = writeln!(
            out,
            "# callrecords bench{}\n",
            if self.quick { " (--quick)" } else { "" }
        );
        let _ = writeln!(
            out,
            "- Machine: {} CPUs ({}), {:.1} GiB memory, Linux {}.",
            machine.cpus,
            machine.cpu_model,
            machine.memory_bytes as f64 / f64::from(1u32 << 30),
            machine.kernel
        );
        let _ = writeln!(
            out,
            "- The load generator runs in the bench process on the same {} CPUs as the server under test, so every figure is what is left once the client has taken its share (see the CPU columns).",
            machine.cpus
        );
        let _ = writeln!(out, "- Store: {}.", self.store_kind);
        if self.store_kind.starts_with("PostgreSQL") {
            let _ = writeln!(
                out,
                "- Server peak RSS and CPU count the callrecords process only; PostgreSQL's own processes share the same CPUs and are not counted."
            );
        }
        let builds: Vec<String> = self
            .build_secs
            .iter()
            .map(|(records, secs)| match secs {
                Some(secs) => format!("{} records built in {secs:.0} s", thousands(*records)),
                None => format!("{} records reused", thousands(*records)),
            })
            .collect();
        let _ = writeln!(
            out,
            "- Stores: {} (generator seed {}, 30 days of calls ending 2026-01-01).",
            builds.join(", "),
            self.seed
        );
        for (records, footprint) in &self.footprints {
            let _ = writeln!(
                out,
                "- On disk, {} records: {}.",
                thousands(*records),
                footprint_text(*records, footprint)
            );
        }
        let _ = writeln!(
            out,
            "- Load: {} concurrent keep-alive connections (ingest: {}), closed loop, {} s warm-up then {} s measured per case; each case on a freshly started server.",
            self.concurrency, self.ingest_connections, self.warmup_secs, self.duration_secs
        );
        let _ = writeln!(out);
    }

    /// The baseline a case compares with: the ingest baseline for records, the GET one otherwise.
    fn baseline_of(&self, case: &CaseResult) -> Option<&CaseResult> {
        self.case(if case.unit == "records" {
            "ingest-baseline"
        } else {
            "baseline"
        })
    }

    fn write_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "| # | Case | Store | Throughput | × baseline | p50 | p99 | p99.9 | p99 × baseline | Server peak RSS | Server CPU | Load-gen CPU | Errors |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for case in &self.cases {
            let baseline = self.baseline_of(case);
            let throughput_ratio = baseline.and_then(|baseline| stats::ratio(case.throughput, baseline.throughput));
            let p99_ratio =
                baseline.and_then(|baseline| stats::ratio(case.latency.p99_us as f64, baseline.latency.p99_us as f64));
            let unit = if case.unit == "records" { "records/s" } else { "req/s" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} {unit} | {} | {} | {} | {} | {} | {} | {:.2} cores | {:.2} cores | {} |",
                case.case,
                case.title,
                case.store_records.map_or_else(|| "–".to_owned(), thousands),
                thousands(case.throughput.round() as u64),
                throughput_ratio.map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×")),
                millis(case.latency.p50_us),
                millis(case.latency.p99_us),
                millis(case.latency.p999_us),
                p99_ratio.map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.1}×")),
                megabytes(case.server_peak_rss_bytes),
                case.server_cores,
                case.load_generator_cores,
                case.errors,
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Latency is per request (per 1,000-record batch for ingest). Mean answer size of case 1: {} bytes; the baseline answers the same number of bytes. Ingest compares with its own baseline, which writes the same batches to disk without reading them.",
            thousands(self.case("get").map_or(0, |case| case.mean_body_bytes))
        );
        let _ = writeln!(out);
        self.write_exports(out);
    }

    /// Case 7: each export's rate, also as a ratio to the generator's in this run (both turn
    /// records into bytes on one core of this machine), its output and its peak memory.
    fn write_exports(&self, out: &mut String) {
        if self.exports.is_empty() {
            return;
        }
        let generator = self
            .generator
            .as_ref()
            .map(|rate| stats::rate(rate.records, std::time::Duration::from_secs_f64(rate.secs)));
        let _ = writeln!(
            out,
            "| # | Export of the {}-record store | Records/s | × generate | Bytes per record | Peak RSS |",
            thousands(self.records)
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
        for export in &self.exports {
            let rate = stats::rate(export.records, std::time::Duration::from_secs_f64(export.secs));
            let _ = writeln!(
                out,
                "| 7 | {} as {} | {} | {} | {} | {} |",
                export.what,
                export.format,
                thousands(rate.round() as u64),
                generator
                    .and_then(|generator| stats::ratio(rate, generator))
                    .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×")),
                per_record(export.bytes, export.records).map_or_else(|| "–".to_owned(), kilobytes),
                megabytes(export.peak_rss_bytes),
            );
        }
        let _ = writeln!(out);
    }

    fn write_targets(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Targets (set for a 1,000,000-record SQLite store at concurrency 32; this run: {} records, {}, concurrency {})\n",
            thousands(self.records),
            if self.store_kind.starts_with("SQLite") { "SQLite" } else { "PostgreSQL" },
            self.concurrency
        );
        let _ = writeln!(out, "| Target | Measured | Verdict |");
        let _ = writeln!(out, "|---|---:|---|");
        let mut row = |target: String, measured: Option<(f64, String)>, pass: &dyn Fn(f64) -> bool| {
            let (verdict, measured) = match measured {
                Some((value, text)) => (if pass(value) { "PASS" } else { "MISS" }, text),
                None => ("–", "not measured".to_owned()),
            };
            let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
        };
        let get = self.case("get");
        let baseline = self.case("baseline");
        row(
            format!(
                "1. get with sessions and segments: ≥ {:.0} % of baseline req/s",
                GET_THROUGHPUT_OF_BASELINE * 100.0
            ),
            get.zip(baseline)
                .and_then(|(get, baseline)| stats::ratio(get.throughput, baseline.throughput))
                .map(|ratio| (ratio, format!("{:.0} %", ratio * 100.0))),
            &|ratio| ratio >= GET_THROUGHPUT_OF_BASELINE,
        );
        let sqlite = self.store_kind.starts_with("SQLite");
        let get_floor = if sqlite {
            GET_OF_BASELINE_BY_STORE.0
        } else {
            GET_OF_BASELINE_BY_STORE.1
        };
        row(
            format!(
                "1. get with sessions and segments on {}: ≥ {get_floor} × baseline req/s",
                if sqlite { "SQLite" } else { "PostgreSQL" }
            ),
            get.zip(baseline)
                .and_then(|(get, baseline)| stats::ratio(get.throughput, baseline.throughput))
                .map(|ratio| (ratio, format!("{ratio:.2} ×"))),
            &|ratio| ratio >= get_floor,
        );
        row(
            format!("1. get with sessions and segments: p99 ≤ {GET_P99_MS} ms"),
            get.map(p99_ms),
            &|ms| ms <= GET_P99_MS,
        );
        for (key, name) in LIST_CASES {
            row(
                format!("2. list, {name}: p99 ≤ {LIST_P99_MS} ms"),
                self.case(key).map(p99_ms),
                &|ms| ms <= LIST_P99_MS,
            );
        }
        row(
            format!("6. analytics over 30 days, one query at a time: p99 ≤ {ANALYTICS_P99_MS} ms"),
            self.case("analytics").map(p99_ms),
            &|ms| ms <= ANALYTICS_P99_MS,
        );
        row(
            format!(
                "3. NDJSON ingest: ≥ {} records/s",
                thousands(INGEST_RECORDS_PER_SEC as u64)
            ),
            self.case("ingest").map(|case| {
                let mut measured = format!("{} records/s", thousands(case.throughput.round() as u64));
                if let Some(baseline) = self.baseline_of(case) {
                    let _ = write!(
                        measured,
                        " (the ingest baseline, which only writes the bytes: {} records/s)",
                        thousands(baseline.throughput.round() as u64)
                    );
                }
                (case.throughput, measured)
            }),
            &|rate| rate >= INGEST_RECORDS_PER_SEC,
        );
        row(
            format!(
                "3. NDJSON ingest, durably acknowledged, on either store: ≥ {} records/s",
                thousands(STORE_INGEST_RECORDS_PER_SEC as u64)
            ),
            self.case("ingest").map(|case| {
                (
                    case.throughput,
                    format!("{} records/s", thousands(case.throughput.round() as u64)),
                )
            }),
            &|rate| rate >= STORE_INGEST_RECORDS_PER_SEC,
        );
        for (key, name) in LIST_CASES {
            let large = self.case(key);
            let small = self.case(&format!("small-{key}"));
            row(
                format!(
                    "4. list, {name}: p99 on {} ÷ p99 on {} records ≤ {LARGE_TO_SMALL_P99}",
                    thousands(self.records),
                    thousands(self.small_records)
                ),
                large
                    .zip(small)
                    .and_then(|(large, small)| stats::ratio(large.latency.p99_us as f64, small.latency.p99_us as f64))
                    .map(|ratio| (ratio, format!("{ratio:.2}"))),
                &|ratio| ratio <= LARGE_TO_SMALL_P99,
            );
        }
        row(
            format!(
                "generate: ≥ {} records/s to stdout",
                thousands(GENERATOR_RECORDS_PER_SEC as u64)
            ),
            self.generator.as_ref().and_then(|rate| {
                let per_sec = stats::rate(rate.records, std::time::Duration::from_secs_f64(rate.secs));
                (per_sec > 0.0).then(|| {
                    (
                        per_sec,
                        format!(
                            "{} records/s ({} records in {:.1} s)",
                            thousands(per_sec.round() as u64),
                            thousands(rate.records),
                            rate.secs
                        ),
                    )
                })
            }),
            &|rate| rate >= GENERATOR_RECORDS_PER_SEC,
        );
        let (per_record_target, store) = if self.store_kind.starts_with("SQLite") {
            (SQLITE_BYTES_PER_RECORD, "SQLite")
        } else {
            (POSTGRES_BYTES_PER_RECORD, "PostgreSQL")
        };
        row(
            format!(
                "bytes on disk per record, indexes included: ≤ {} KB on {store} ({} records)",
                per_record_target / 1000.0,
                thousands(self.records)
            ),
            self.footprints
                .iter()
                .find(|(records, _)| *records == self.records)
                .and_then(|(records, footprint)| per_record(footprint.store_bytes, *records))
                .map(|bytes| (bytes, kilobytes(bytes))),
            &|bytes| bytes <= per_record_target,
        );
        for export in &self.exports {
            row(
                format!(
                    "7. export {} as {}: peak RSS ≤ {EXPORT_PEAK_RSS_MB} MB",
                    export.what, export.format
                ),
                Some((export.peak_rss_bytes as f64 / 1e6, megabytes(export.peak_rss_bytes))),
                &|mb| mb <= EXPORT_PEAK_RSS_MB,
            );
        }
        let peak = self
            .cases
            .iter()
            .filter(|case| !case.key.ends_with("baseline"))
            .map(|case| case.server_peak_rss_bytes)
            .max();
        row(
            format!("server peak RSS ≤ {PEAK_RSS_MB} MB (largest over the server's cases)"),
            peak.map(|bytes| (bytes as f64 / 1e6, megabytes(bytes))),
            &|mb| mb <= PEAK_RSS_MB,
        );
        let _ = writeln!(out);
    }

    fn write_notes(&self, out: &mut String) {
        let notes: Vec<String> = self
            .cases
            .iter()
            .flat_map(|case| {
                let note = case.note.as_ref().map(|note| format!("- {}: {note}.", case.title));
                let error = case
                    .first_error
                    .as_ref()
                    .map(|error| format!("- {}: {} failed requests; the first: {error}", case.title, case.errors));
                note.into_iter().chain(error)
            })
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(out, "Notes:\n");
            for note in notes {
                let _ = writeln!(out, "{note}");
            }
            let _ = writeln!(out);
        }
    }
}

/// The list cases: key and name, in the order they run.
pub(crate) const LIST_CASES: [(&str, &str); 3] = [
    ("list-unfiltered", "unfiltered"),
    ("list-window", "startDateTime window"),
    ("list-participant", "participants_v2/any"),
];

fn p99_ms(case: &CaseResult) -> (f64, String) {
    (case.latency.p99_us as f64 / 1000.0, millis(case.latency.p99_us))
}

fn millis(micros: u64) -> String {
    let ms = micros as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", thousands(ms.round() as u64))
    }
}

fn per_record(bytes: u64, records: u64) -> Option<f64> {
    (records > 0).then(|| bytes as f64 / records as f64)
}

fn kilobytes(bytes: f64) -> String {
    format!("{:.1} KB", bytes / 1e3)
}

/// `113.9 MB, 56.9 KB a record (file … + write-ahead log …); NDJSON 30.7 KB a record over 2,065
/// lines: the store takes 1.85 × the NDJSON`.
fn footprint_text(records: u64, footprint: &Footprint) -> String {
    let mut text = format!("{:.1} MB", footprint.store_bytes as f64 / 1e6);
    if let Some(bytes) = per_record(footprint.store_bytes, records) {
        let _ = write!(text, ", {} a record", kilobytes(bytes));
    }
    let _ = write!(text, " ({})", footprint.counted);
    if let (Some(ndjson), Some(lines)) = (footprint.ndjson_bytes, footprint.ndjson_lines) {
        if let (Some(line_bytes), Some(store_bytes)) =
            (per_record(ndjson, lines), per_record(footprint.store_bytes, records))
        {
            let _ = write!(
                text,
                "; NDJSON {} a record over {} lines: the store takes {:.2} × the NDJSON",
                kilobytes(line_bytes),
                thousands(lines),
                store_bytes / line_bytes
            );
        }
    }
    text
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut res = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            res.push(',');
        }
        res.push(digit);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(millis(1_234), "1.23 ms");
        assert_eq!(millis(12_345), "12.3 ms");
        assert_eq!(millis(1_234_567), "1,235 ms");
        assert_eq!(megabytes(150_400_000), "150 MB");
    }

    #[test]
    fn a_footprint_is_told_per_record_and_against_its_ndjson() {
        let footprint = Footprint {
            store_bytes: 113_876_992,
            counted: "file 113.9 MB + write-ahead log 0.0 MB, after a checkpoint".to_owned(),
            ndjson_bytes: Some(63_400_000),
            ndjson_lines: Some(2_065),
        };
        assert_eq!(
            footprint_text(2_000, &footprint),
            "113.9 MB, 56.9 KB a record (file 113.9 MB + write-ahead log 0.0 MB, after a checkpoint); \
             NDJSON 30.7 KB a record over 2,065 lines: the store takes 1.85 × the NDJSON"
        );
        let reused = Footprint {
            ndjson_bytes: None,
            ndjson_lines: None,
            ..footprint
        };
        assert!(footprint_text(2_000, &reused).ends_with("after a checkpoint)"));
        assert_eq!(per_record(1, 0), None);
    }
}
