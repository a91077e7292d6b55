//! The processes under test. Both the real server (`callrecords serve`) and the baseline run as
//! child processes of the bench, so that their peak memory (`VmHWM`) and CPU time can be read
//! from `/proc/PID/` without counting the load generator. `ChildServer` kills its process when
//! dropped, so an error anywhere in the bench never leaves a server behind.
//!
//! Also here: the baselines themselves (`callrecords-bench baseline`, hidden), the least a server
//! on this machine can do for the same request shapes: one route answering pre-built bytes, and
//! (with `--sink-dir`) one writing each posted body to a file of its own and syncing it to disk.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The line `serve` (and the baseline) print on stderr once the listener is bound.
const LISTENING_PREFIX: &str = "callrecords listening on http://";

/// How long a child may take to migrate its store and bind; a fresh PostgreSQL database with
/// its partitions is the slow case.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Lines of stderr kept to explain a child that died before it listened.
const KEPT_STDERR_LINES: usize = 20;

/// The `callrecords` binary to measure: the one `callrecords bench` ran from, else the one built
/// beside this benchmark.
fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(callrecords::cli::BENCH_SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    let beside = bench_binary()?.with_file_name(format!("callrecords{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.is_file(),
        "no callrecords binary to measure: {} is missing; run the bench as `callrecords bench`",
        beside.display()
    );
    Ok(beside)
}

/// How fast `callrecords generate` writes NDJSON to a pipe.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct GeneratorRate {
    pub(crate) records: u64,
    pub(crate) secs: f64,
}

/// Runs `callrecords generate --calls CALLS` into a pipe read to the end, counting its lines:
/// the generator as an operator runs it, allocator and serialization included.
pub(crate) async fn generator_rate(calls: u64, seed: u64) -> anyhow::Result<GeneratorRate> {
    use tokio::io::AsyncReadExt as _;
    let (calls, seed) = (calls.to_string(), seed.to_string());
    let mut child = Command::new(server_binary()?)
        .args([
            "generate",
            "--calls",
            &calls,
            "--seed",
            &seed,
            "--until",
            "2026-01-01T00:00:00Z",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting callrecords generate")?;
    let mut stdout = child.stdout.take().context("generate's stdout is not piped")?;
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 1 << 20];
    let mut records = 0u64;
    loop {
        let read = stdout.read(&mut buffer).await.context("reading generate's output")?;
        if read == 0 {
            break;
        }
        records += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
    }
    let status = child.wait().await.context("waiting for callrecords generate")?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "callrecords generate failed: {status}");
    Ok(GeneratorRate { records, secs })
}

/// How fast `callrecords export` writes a store out, and the most memory it took.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct ExportRate {
    /// `records` or `streams`.
    pub(crate) what: String,
    /// `ndjson` or `parquet`.
    pub(crate) format: String,
    /// Call records read.
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) secs: f64,
    /// The export process's `VmHWM`, read every few milliseconds while it ran.
    pub(crate) peak_rss_bytes: u64,
}

/// How often a running export's peak resident set is read.
const EXPORT_POLL: Duration = Duration::from_millis(20);

/// Runs `callrecords export` of a whole store (`records` call records in it) into a file of
/// `dir`, removed afterwards.
pub(crate) async fn export_rate(
    db_url: &str,
    records: u64,
    what: &str,
    format: &str,
    dir: &Path,
) -> anyhow::Result<ExportRate> {
    let file = dir.join(format!("bench-export-{what}.{format}"));
    let file_arg = file.to_string_lossy().into_owned();
    let mut child = Command::new(server_binary()?)
        .args([
            "export", "--db", db_url, "--what", what, "--format", format, "-o", &file_arg, "--quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting callrecords export")?;
    let pid = child.id().context("the export exited at once")?.to_string();
    let started = std::time::Instant::now();
    let mut peak_rss_bytes = 0;
    let status = loop {
        if let Ok(usage) = ProcessUsage::of(&pid) {
            peak_rss_bytes = peak_rss_bytes.max(usage.peak_rss_bytes);
        }
        tokio::select! {
            status = child.wait() => break status.context("waiting for callrecords export")?,
            _ = tokio::time::sleep(EXPORT_POLL) => {}
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        let _ = pipe.read_to_string(&mut stderr).await;
    }
    anyhow::ensure!(status.success(), "callrecords export failed: {status}: {stderr}");
    let bytes = std::fs::metadata(&file).map(|meta| meta.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&file);
    Ok(ExportRate {
        what: what.to_owned(),
        format: format.to_owned(),
        records,
        bytes,
        secs,
        peak_rss_bytes,
    })
}

/// This benchmark's own binary, which also serves the baselines.
fn bench_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the callrecords-bench executable")
}

/// A server running as a child process, killed on drop.
pub(crate) struct ChildServer {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    what: String,
}

impl ChildServer {
    /// `callrecords serve` on a free port of 127.0.0.1, showing every record (retention 0) and
    /// never purging log rows, so a fixed-date store stays as it was built; without tokens or
    /// throttling, which would measure the limits rather than the server.
    pub(crate) async fn serve(db_url: &str) -> anyhow::Result<Self> {
        let args = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db_url,
            "--retention-days",
            "0",
            "--log-retention-days",
            "0",
            "--auth",
            "none",
            "--throttle",
            "off",
        ];
        Self::spawn(
            &server_binary()?,
            &args,
            format!("callrecords serve --db {}", callrecords::app::redact_url(db_url)),
        )
        .await
    }

    /// The baseline server answering `bytes` bytes to every GET.
    pub(crate) async fn baseline(bytes: usize) -> anyhow::Result<Self> {
        let bytes = bytes.to_string();
        let args = ["baseline", "--listen", "127.0.0.1:0", "--bytes", &bytes];
        Self::spawn(
            &bench_binary()?,
            &args,
            format!("callrecords-bench baseline --bytes {bytes}"),
        )
        .await
    }

    /// The baseline server writing every POSTed body durably into a file under `dir`.
    pub(crate) async fn ingest_baseline(dir: &Path) -> anyhow::Result<Self> {
        let dir = dir.to_string_lossy();
        let args = [
            "baseline",
            "--listen",
            "127.0.0.1:0",
            "--bytes",
            "2",
            "--sink-dir",
            &dir,
        ];
        Self::spawn(
            &bench_binary()?,
            &args,
            format!("callrecords-bench baseline --sink-dir {dir}"),
        )
        .await
    }

    async fn spawn(exe: &Path, args: &[&str], what: String) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The child runs with its defaults (log level included), whatever this shell exports.
        command.env_remove("RUST_LOG");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CALLRECORDS_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().with_context(|| format!("starting {what}"))?;
        let pid = child.id().context("the child exited at once")?;
        let stderr = child.stderr.take().context("the child's stderr is not piped")?;
        let (listening, address) = oneshot::channel();
        // Reads stderr for the listening line, then keeps draining it so the child never blocks
        // on a full pipe. Ends when the child's stderr closes.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut kept: Vec<String> = Vec::new();
            let mut listening = Some(listening);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(sender) = listening.take() {
                    match parse_listening_line(&line) {
                        Some(addr) => {
                            let _ = sender.send(Ok(addr));
                        }
                        None => {
                            if kept.len() == KEPT_STDERR_LINES {
                                kept.remove(0);
                            }
                            kept.push(line);
                            listening = Some(sender);
                        }
                    }
                }
            }
            if let Some(sender) = listening {
                let _ = sender.send(Err(kept.join("\n")));
            }
        });
        let mut server = Self {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            what,
        };
        server.addr = match tokio::time::timeout(STARTUP_TIMEOUT, address).await {
            Ok(Ok(Ok(addr))) => addr,
            Ok(Ok(Err(stderr))) => anyhow::bail!("{} exited before listening:\n{stderr}", server.what),
            Ok(Err(_)) => anyhow::bail!("{} closed its stderr before listening", server.what),
            Err(_) => anyhow::bail!("{} did not listen within {STARTUP_TIMEOUT:?}", server.what),
        };
        Ok(server)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the process's peak resident set and CPU time so far, failing if it has died
    /// (a crashed server makes every figure of its case meaningless).
    pub(crate) fn usage(&mut self) -> anyhow::Result<ProcessUsage> {
        if let Some(status) = self.child.try_wait().context("polling the server process")? {
            anyhow::bail!("{} died during the case ({status})", self.what);
        }
        ProcessUsage::of(&self.pid.to_string())
    }

    /// Kills the process and waits for it, so the next case starts with the port, the SQLite
    /// file and the PostgreSQL connections released.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill().context("killing the server process")?;
        self.child.wait().await.context("waiting for the server process")?;
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // kill_on_drop covers the common case; this also covers a Child that tokio has already
        // reaped (start_kill then fails harmlessly).
        let _ = self.child.start_kill();
    }
}

fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once(LISTENING_PREFIX)?.1;
    rest.split('/').next()?.parse().ok()
}

/// What `/proc/PID/` says about a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ProcessUsage {
    /// Peak resident set (`VmHWM`), in bytes.
    pub(crate) peak_rss_bytes: u64,
    /// User plus system CPU time of all its threads.
    pub(crate) cpu: Duration,
}

/// Linux's USER_HZ, the unit of the CPU times in `/proc/PID/stat`: 100 on x86-64 and arm64
/// whatever the kernel's own tick rate.
const CLOCK_TICKS_PER_SECOND: u64 = 100;

impl ProcessUsage {
    /// `pid` is a number or `self`.
    pub(crate) fn of(pid: &str) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        Ok(Self {
            peak_rss_bytes: parse_vm_hwm(&status).with_context(|| format!("no VmHWM in /proc/{pid}/status"))?,
            cpu: parse_cpu_time(&stat).with_context(|| format!("no CPU times in /proc/{pid}/stat"))?,
        })
    }
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces; count from after it.
    // utime and stime are fields 14 and 15, so the 12th and 13th after the parenthesis.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 1000 / CLOCK_TICKS_PER_SECOND))
}

/// Serves `body` to every GET on any path until the process is killed, after printing the same
/// listening line as `serve`. With a `sink_dir`, every POST's body is also stored there as
/// `sink_body` describes.
pub(crate) async fn serve_baseline(listen: SocketAddr, body: Bytes, sink_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use axum::http::header;
    let get = axum::routing::get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    });
    let router = match sink_dir {
        None => axum::Router::new().fallback(get),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let sink = Arc::new(Sink {
                dir,
                next_file: AtomicU64::new(0),
            });
            // A batch of 1,000 generated records is about 33 MB, over axum's default bound.
            axum::Router::new()
                .fallback(get.post(move |body: Bytes| sink_body(sink.clone(), body)))
                .layer(axum::extract::DefaultBodyLimit::disable())
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    eprintln!("{LISTENING_PREFIX}{addr}/v1.0/communications/callRecords");
    axum::serve(listener, router).await.context("serving the baseline")
}

struct Sink {
    dir: PathBuf,
    next_file: AtomicU64,
}

/// The least an ingest endpoint must do with a batch: take the whole body, write it to a new
/// file, make file and directory entry durable (`fsync`), and answer with the number of lines in
/// the shape of our ingest report. No parsing, no store: the machine's limit for durably
/// accepting these bytes over HTTP.
async fn sink_body(sink: Arc<Sink>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = sink.dir.join(format!(
        "batch-{}.ndjson",
        sink.next_file.fetch_add(1, Ordering::Relaxed)
    ));
    let lines = ndjson_lines(&body);
    let dir = sink.dir.clone();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&body)?;
        file.sync_data()?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .unwrap_or_else(|error| Err(std::io::Error::other(error)));
    match written {
        Ok(()) => axum::Json(serde_json::json!({ "stored": lines, "replaced": 0, "ignored": 0, "rejected": 0 }))
            .into_response(),
        Err(error) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Lines of an NDJSON body, the last one counted whether or not a newline ends it.
fn ndjson_lines(body: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', body).count() + usize::from(body.last().is_some_and(|&b| b != b'\n'))
}

/// A JSON document of exactly `n_bytes` bytes (at least 2), shaped like the real answer
/// closely enough for the client: an object with one long string.
pub(crate) fn baseline_body(n_bytes: usize) -> Bytes {
    const OPEN: &str = "{\"value\":\"";
    const CLOSE: &str = "\"}";
    let n_bytes = n_bytes.max(2);
    let mut body = String::with_capacity(n_bytes);
    if n_bytes < OPEN.len() + CLOSE.len() {
        // Too small for the string: an empty object padded with whitespace.
        body.push('{');
        body.extend(std::iter::repeat_n(' ', n_bytes - 2));
        body.push('}');
        return Bytes::from(body);
    }
    body.push_str(OPEN);
    body.extend(std::iter::repeat_n('x', n_bytes - OPEN.len() - CLOSE.len()));
    body.push_str(CLOSE);
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            parse_listening_line("callrecords listening on http://127.0.0.1:40123/v1.0/communications/callRecords"),
            Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
        );
        assert_eq!(parse_listening_line("INFO starting"), None);
    }

    #[test]
    fn proc_files_are_parsed() {
        let status = "Name:\tcallrecords\nVmPeak:\t  200 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(51200 * 1024));
        let stat = "4242 (call records) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_secs(3)));
    }

    #[test]
    fn the_ingest_baseline_counts_the_lines_of_a_body() {
        assert_eq!(ndjson_lines(b""), 0);
        assert_eq!(ndjson_lines(b"{}"), 1);
        assert_eq!(ndjson_lines(b"{}\n"), 1);
        assert_eq!(ndjson_lines(b"{}\n{}"), 2);
        assert_eq!(ndjson_lines(b"{}\n{}\n"), 2);
    }

    #[test]
    fn the_baseline_body_has_the_requested_size() {
        for n_bytes in [2, 5, 12, 13, 31_337] {
            let body = baseline_body(n_bytes);
            assert_eq!(body.len(), n_bytes);
            assert!(
                serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                "{n_bytes} bytes"
            );
        }
    }
}
