//! The load generator: a fixed number of concurrent workers on one keep-alive `reqwest` client,
//! each sending its next request as soon as the previous answer has been read in full (a closed
//! loop), for a warm-up and then a fixed measured duration. Also the ingest driver, which sends
//! pre-built NDJSON batches over a few connections and counts only acknowledged records.
//!
//! It runs in the bench's own process, on the same cores as the server under test; nothing
//! here knows which server it talks to beyond the URLs a `Workload` makes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;
use tokio::task::JoinSet;

use super::stats::{self, LatencySummary};

/// A read request is abandoned after this long; it bounds how long a case can outlive its
/// duration.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An ingest batch of 1,000 records is tens of megabytes; give it longer.
const INGEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A list query follows at most this many next links before a worker starts a new query, so
/// that an unfiltered list does not walk the whole store.
pub(crate) const MAX_PAGES_PER_QUERY: u32 = 5;

/// The client every case uses: HTTP/1.1 keep-alive, no proxy (a proxy from the environment
/// would measure itself), no compression (none is asked for, so none is sent).
pub(crate) fn http_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .timeout(READ_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

/// Warm-up, then the measured duration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
}

/// What each request of a case asks for.
#[derive(Debug)]
pub(crate) enum Workload {
    /// One record with its sessions and their segments, by a random id from `ids`.
    GetRecord { base: String, ids: Vec<String> },
    /// A list query, following next links.
    List { base: String, query: ListQuery },
    /// The same URL every time (the baseline).
    Fixed { url: String },
    /// One of these URLs at random each time (the dashboard's analytics queries).
    AnyOf { urls: Vec<String> },
}

/// The list queries of cases 2 and 4.
#[derive(Debug)]
pub(crate) enum ListQuery {
    /// No filter: the first pages of the whole list.
    Unfiltered,
    /// `startDateTime ge T and startDateTime lt T + span`, T the start of a random sampled
    /// record, so that windows fall where records are.
    Window {
        starts: Vec<OffsetDateTime>,
        span: Duration,
    },
    /// `participants_v2/any(p:p/id eq '…')` for a random sampled participant id.
    Participant { ids: Vec<String> },
}

impl ListQuery {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ListQuery::Unfiltered => "unfiltered",
            ListQuery::Window { .. } => "startDateTime window",
            ListQuery::Participant { .. } => "participants_v2/any",
        }
    }
}

/// A worker's position in a list query.
#[derive(Default)]
struct Paging {
    next_link: Option<String>,
    pages: u32,
}

impl Workload {
    fn next_url(&self, rng: &mut ChaCha8Rng, paging: &mut Paging) -> String {
        match self {
            Workload::GetRecord { base, ids } => {
                let id = &ids[rng.gen_range(0..ids.len())];
                format!("{base}/{id}?$expand=sessions($expand=segments)")
            }
            Workload::Fixed { url } => url.clone(),
            Workload::AnyOf { urls } => urls[rng.gen_range(0..urls.len())].clone(),
            Workload::List { base, query } => {
                if let Some(next) = paging.next_link.take().filter(|_| paging.pages < MAX_PAGES_PER_QUERY) {
                    paging.pages += 1;
                    return next;
                }
                paging.pages = 1;
                match query {
                    ListQuery::Unfiltered => base.clone(),
                    ListQuery::Window { starts, span } => {
                        let from = starts[rng.gen_range(0..starts.len())];
                        let to = from + *span;
                        format!(
                            "{base}?$filter=startDateTime%20ge%20{}%20and%20startDateTime%20lt%20{}",
                            odata_datetime(from),
                            odata_datetime(to)
                        )
                    }
                    ListQuery::Participant { ids } => {
                        let id = &ids[rng.gen_range(0..ids.len())];
                        format!("{base}?$filter=participants_v2/any(p:p/id%20eq%20'{id}')")
                    }
                }
            }
        }
    }

    fn follows_links(&self) -> bool {
        matches!(self, Workload::List { .. })
    }
}

/// `2025-12-05T10:11:12Z`: whole seconds, UTC, as the OData grammar takes it unquoted.
pub(crate) fn odata_datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The figures of one closed-loop run.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadResult {
    /// Answers completed inside the measured window.
    pub(crate) completed: u64,
    /// Bytes of those answers' bodies.
    pub(crate) body_bytes: u64,
    pub(crate) window: Duration,
    /// Latencies of the requests sent inside the measured window.
    pub(crate) latency: LatencySummary,
    /// Failed requests (transport errors and non-2xx answers) sent inside the measured window.
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
}

#[derive(Default)]
struct WorkerSamples {
    latencies: Vec<Duration>,
    completed: u64,
    body_bytes: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `workload` with `concurrency` workers for `timing`, then summarises what was measured.
pub(crate) async fn run_closed_loop(
    client: &reqwest::Client,
    workload: Arc<Workload>,
    concurrency: usize,
    timing: Timing,
    seed: u64,
) -> anyhow::Result<LoadResult> {
    let measure_from = Instant::now() + timing.warmup;
    let end = measure_from + timing.duration;
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let workload = workload.clone();
        let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(worker as u64));
        workers.spawn(run_worker(client, workload, rng, measure_from, end));
    }
    let mut latencies = Vec::new();
    let mut res = LoadResult {
        window: timing.duration,
        ..LoadResult::default()
    };
    while let Some(joined) = workers.join_next().await {
        let samples = joined.context("a load worker panicked")?;
        latencies.extend(samples.latencies);
        res.completed += samples.completed;
        res.body_bytes += samples.body_bytes;
        res.errors += samples.errors;
        if res.first_error.is_none() {
            res.first_error = samples.first_error;
        }
    }
    res.latency = stats::summarize(&mut latencies);
    Ok(res)
}

async fn run_worker(
    client: reqwest::Client,
    workload: Arc<Workload>,
    mut rng: ChaCha8Rng,
    measure_from: Instant,
    end: Instant,
) -> WorkerSamples {
    let mut samples = WorkerSamples::default();
    let mut paging = Paging::default();
    while Instant::now() < end {
        let url = workload.next_url(&mut rng, &mut paging);
        let sent = Instant::now();
        let answer = fetch(&client, &url).await;
        let done = Instant::now();
        match answer {
            Ok(body) => {
                if workload.follows_links() {
                    paging.next_link = next_link(&body);
                }
                if sent >= measure_from {
                    samples.latencies.push(done - sent);
                }
                if done >= measure_from && done <= end {
                    samples.completed += 1;
                    samples.body_bytes += body.len() as u64;
                }
            }
            Err(error) => {
                paging = Paging::default();
                if sent >= measure_from {
                    samples.errors += 1;
                    samples.first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
    }
    samples
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Bytes> {
    let resp = client.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("reading the answer to GET {url}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        anyhow::bail!("GET {url} answered {status}: {text}");
    }
    Ok(body)
}

/// GETs `url` and parses the JSON answer; for the sampling done before a case.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    let body = fetch(client, url).await?;
    serde_json::from_slice(&body).with_context(|| format!("parsing the answer to GET {url}"))
}

/// The page's `@odata.nextLink`. The envelope puts it last, so it is found from the end without
/// parsing the page (the load generator's CPU is taken from the server's).
fn next_link(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"@odata.nextLink\":\"";
    let at = body.windows(KEY.len()).rposition(|window| window == KEY)? + KEY.len();
    let rest = &body[at..];
    let len = rest.iter().position(|byte| *byte == b'"')?;
    let link = std::str::from_utf8(&rest[..len]).ok()?;
    if link.contains('\\') {
        // An escaped character: let serde_json read the string properly.
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        return value.get("@odata.nextLink")?.as_str().map(str::to_owned);
    }
    Some(link.to_owned())
}

/// One NDJSON request body and the number of records in it.
pub(crate) struct IngestBatch {
    pub(crate) body: Bytes,
    pub(crate) records: u64,
}

/// Whether an ingest run may send a batch twice. A store would ignore the second copy (same
/// versions), which is not what ingest is measured on; the baseline stores bytes, so it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchReuse {
    Once,
    Cycle,
}

/// The figures of an ingest run.
#[derive(Clone, Debug, Default)]
pub(crate) struct IngestResult {
    /// Records acknowledged (stored, replaced or ignored) by answers that arrived in the window.
    pub(crate) acknowledged: u64,
    pub(crate) rejected: u64,
    pub(crate) window: Duration,
    /// Latency of whole batches sent inside the measured window.
    pub(crate) batch_latency: LatencySummary,
    pub(crate) batches_sent: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// Why the window differs from the planned one, when it does.
    pub(crate) note: Option<String>,
}

struct Acknowledgement {
    sent: Instant,
    done: Instant,
    accepted: u64,
    rejected: u64,
}

/// Posts `batches` to `url` over `connections` connections until the measured duration is over
/// or the batches run out.
pub(crate) async fn run_ingest(
    client: &reqwest::Client,
    url: &str,
    batches: Arc<Vec<IngestBatch>>,
    connections: usize,
    timing: Timing,
    reuse: BatchReuse,
) -> anyhow::Result<IngestResult> {
    let started = Instant::now();
    let measure_from = started + timing.warmup;
    let end = measure_from + timing.duration;
    let next_batch = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.to_owned();
        let batches = batches.clone();
        let next_batch = next_batch.clone();
        workers.spawn(async move {
            let mut acks = Vec::new();
            let mut failures = Vec::new();
            while Instant::now() < end {
                let mut index = next_batch.fetch_add(1, Ordering::Relaxed);
                if reuse == BatchReuse::Cycle {
                    index %= batches.len();
                }
                let Some(batch) = batches.get(index) else { break };
                let sent = Instant::now();
                match post_ndjson(&client, &url, batch.body.clone()).await {
                    Ok((accepted, rejected)) => acks.push(Acknowledgement {
                        sent,
                        done: Instant::now(),
                        accepted,
                        rejected,
                    }),
                    Err(error) => failures.push((sent, format!("{error:#}"))),
                }
            }
            (acks, failures)
        });
    }
    let mut acks = Vec::new();
    let mut res = IngestResult::default();
    while let Some(joined) = workers.join_next().await {
        let (worker_acks, failures) = joined.context("an ingest worker panicked")?;
        acks.extend(worker_acks);
        res.errors += failures.len() as u64;
        if res.first_error.is_none() {
            res.first_error = failures.into_iter().next().map(|(_, error)| error);
        }
    }
    res.batches_sent = (acks.len() as u64) + res.errors;
    let ran_out = reuse == BatchReuse::Once && next_batch.load(Ordering::Relaxed) >= batches.len();
    let last_done = acks.iter().map(|ack| ack.done).max().unwrap_or(started);
    let in_window: Vec<&Acknowledgement> = acks
        .iter()
        .filter(|ack| ack.done >= measure_from && ack.done <= end)
        .collect();
    if in_window.is_empty() {
        // Batches slower than the whole window (a debug build, a tiny --duration-secs): measure
        // over everything rather than report nothing.
        res.acknowledged = acks.iter().map(|ack| ack.accepted).sum();
        res.rejected = acks.iter().map(|ack| ack.rejected).sum();
        res.window = last_done - started;
        let mut latencies: Vec<Duration> = acks.iter().map(|ack| ack.done - ack.sent).collect();
        res.batch_latency = stats::summarize(&mut latencies);
        res.note = Some(format!(
            "no batch was acknowledged inside the measured window; figures cover the whole run ({:.1} s, warm-up included)",
            res.window.as_secs_f64()
        ));
        return Ok(res);
    }
    res.acknowledged = in_window.iter().map(|ack| ack.accepted).sum();
    res.rejected = in_window.iter().map(|ack| ack.rejected).sum();
    res.window = timing.duration;
    if ran_out && last_done < end {
        res.window = last_done - measure_from;
        res.note = Some(format!(
            "the {} pre-built batches ran out after {:.1} s of the {:.1} s window",
            batches.len(),
            res.window.as_secs_f64(),
            timing.duration.as_secs_f64()
        ));
    }
    let mut latencies: Vec<Duration> = acks
        .iter()
        .filter(|ack| ack.sent >= measure_from)
        .map(|ack| ack.done - ack.sent)
        .collect();
    res.batch_latency = stats::summarize(&mut latencies);
    Ok(res)
}

/// Posts one NDJSON body; returns (accepted, rejected) from the server's report.
async fn post_ndjson(client: &reqwest::Client, url: &str, body: Bytes) -> anyhow::Result<(u64, u64)> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .timeout(INGEST_TIMEOUT)
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let text = resp
        .bytes()
        .await
        .with_context(|| format!("reading the answer to POST {url}"))?;
    anyhow::ensure!(
        status.is_success(),
        "POST {url} answered {status}: {}",
        String::from_utf8_lossy(&text[..text.len().min(300)])
    );
    let report: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing the ingest report from {url}"))?;
    let count = |name: &str| report.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok((
        count("stored") + count("replaced") + count("ignored"),
        count("rejected"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_read_from_the_end_of_the_page() {
        let page = br#"{"@odata.context":"x","value":[{"id":"a","note":"@odata.nextLink"}],"@odata.nextLink":"http://h/v1.0/communications/callRecords?$skiptoken=abc"}"#;
        assert_eq!(
            next_link(page).as_deref(),
            Some("http://h/v1.0/communications/callRecords?$skiptoken=abc")
        );
        assert_eq!(next_link(br#"{"value":[]}"#), None);
        let escaped = br#"{"value":[],"@odata.nextLink":"http://h/a\"b"}"#;
        assert_eq!(next_link(escaped).as_deref(), Some("http://h/a\"b"));
    }

    #[test]
    fn list_workers_follow_at_most_a_few_links_then_start_again() {
        let workload = Workload::List {
            base: "http://h/v1.0/communications/callRecords".into(),
            query: ListQuery::Participant { ids: vec!["u1".into()] },
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut paging = Paging::default();
        let first = workload.next_url(&mut rng, &mut paging);
        assert_eq!(
            first,
            "http://h/v1.0/communications/callRecords?$filter=participants_v2/any(p:p/id%20eq%20'u1')"
        );
        for page in 2..=MAX_PAGES_PER_QUERY {
            paging.next_link = Some(format!("next-{page}"));
            assert_eq!(workload.next_url(&mut rng, &mut paging), format!("next-{page}"));
        }
        paging.next_link = Some("one too many".into());
        assert_eq!(workload.next_url(&mut rng, &mut paging), first);
    }

    #[test]
    fn datetimes_are_written_in_whole_utc_seconds() {
        let at = time::macros::datetime!(2025-12-05 10:11:12.75 +01:00);
        assert_eq!(odata_datetime(at), "2025-12-05T09:11:12Z");
    }
}
