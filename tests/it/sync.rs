//! `callrecords sync` against a real callrecords server standing in for Graph and Entra ID:
//! `--auth local` (its token endpoint is the authority), throttling on, an app registered with
//! `callrecords apps add`. The collector runs as the real binary, so it can be killed.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::support::process::{spawn_serve, ServerProcess};
use crate::support::{direct_routing_row, pstn_row, record, Backend, TestDatabase, BIN};

const SECRET_VARIABLE: &str = "CALLRECORDS_TEST_SYNC_SECRET";

/// A callrecords server with its own SQLite store, standing in for Graph and Entra ID.
struct Upstream {
    server: ServerProcess,
    base: String,
    listen: String,
    db_url: String,
    extra: Vec<String>,
    tenant: String,
    client_id: String,
    secret: String,
    _dir: TempDir,
}

fn cli(args: &[&str]) -> String {
    let output = Command::new(BIN).args(args).output().expect("runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

impl Upstream {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}", dir.path().join("graph.db").display());
        let tenant = uuid::Uuid::new_v4().to_string();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (server, base) = Self::serve("127.0.0.1:0", &db_url, &extra);
        let listen = base.trim_start_matches("http://").to_owned();
        let (client_id, secret) = Self::add_app(&db_url, &tenant, "CallRecords.Read.All");
        Self {
            server,
            base,
            listen,
            db_url,
            extra,
            tenant,
            client_id,
            secret,
            _dir: dir,
        }
    }

    fn serve(listen: &str, db_url: &str, extra: &[String]) -> (ServerProcess, String) {
        let mut args = vec![
            "--listen",
            listen,
            "--db",
            db_url,
            "--auth",
            "local",
            "--retention-days",
            "0",
            "--allow-private-webhooks",
            "true",
            "--webhook-retry-base-ms",
            "200",
        ];
        args.extend(extra.iter().map(String::as_str));
        spawn_serve(&args)
    }

    /// Registers an app with `roles`; its client id and secret.
    fn add_app(db_url: &str, tenant: &str, roles: &str) -> (String, String) {
        let printed = cli(&[
            "apps", "add", "--tenant", tenant, "--name", "sync", "--roles", roles, "--db", db_url,
        ]);
        let field = |name: &str| {
            printed
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
                .unwrap_or_else(|| panic!("{name} in {printed}"))
        };
        (field("client_id"), field("client_secret"))
    }

    fn token(&self, roles: &str) -> String {
        cli(&[
            "token",
            "--db",
            &self.db_url,
            "--tenant",
            &self.tenant,
            "--roles",
            roles,
        ])
        .trim()
        .to_owned()
    }

    /// Kills the server and starts it again on the same address and store.
    fn restart(&mut self) {
        self.server.kill_9();
        let (server, _) = Self::serve(&self.listen, &self.db_url, &self.extra);
        self.server = server;
    }

    async fn ingest(&self, kind: &str, items: &[Value]) {
        let body: String = items.iter().map(|item| format!("{item}\n")).collect();
        let answer = reqwest::Client::new()
            .post(format!("{}/ingest/{kind}", self.base))
            .bearer_auth(self.token("CallRecords.Ingest"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .expect("ingested");
        let status = answer.status();
        let report: Value = answer.json().await.expect("a report");
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["rejected"], 0, "{report}");
    }

    fn sync(&self, db_url: &str, secret: &str, extra: &[&str]) -> Command {
        self.sync_as(&self.client_id, db_url, secret, extra)
    }

    fn sync_as(&self, client_id: &str, db_url: &str, secret: &str, extra: &[&str]) -> Command {
        let graph_url = format!("{}/v1.0", self.base);
        let authority = extra
            .windows(2)
            .find(|pair| pair[0] == "--authority")
            .map_or(self.base.as_str(), |pair| pair[1]);
        let extra: Vec<&str> = extra
            .iter()
            .enumerate()
            .filter(|(i, arg)| **arg != "--authority" && (*i == 0 || extra[i - 1] != "--authority"))
            .map(|(_, arg)| *arg)
            .collect();
        let mut command = Command::new(BIN);
        command
            .args(["sync", "--once", "--db", db_url, "--tenant-id", &self.tenant])
            .args(["--client-id", client_id, "--client-secret-env", SECRET_VARIABLE])
            .args(["--authority", authority, "--graph-url", &graph_url])
            .args(extra)
            .env(SECRET_VARIABLE, secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// A collector that listens (a port chosen now) for notifications, with a pass an hour: the
    /// collector, and the address it listens on.
    fn collect_continuously(&self, db_url: &str) -> (std::process::Child, String) {
        let listen = format!("127.0.0.1:{}", free_port());
        let receiver = format!("http://{listen}/sync/notifications");
        let graph_url = format!("{}/v1.0", self.base);
        let collector = Command::new(BIN)
            .args(["sync", "--db", db_url, "--tenant-id", &self.tenant])
            .args(["--client-id", &self.client_id, "--client-secret-env", SECRET_VARIABLE])
            .args(["--authority", &self.base, "--graph-url", &graph_url])
            .args([
                "--listen",
                &listen,
                "--notification-url",
                &receiver,
                "--interval-secs",
                "3600",
            ])
            .env(SECRET_VARIABLE, &self.secret)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (collector, listen)
    }

    fn sync_once(&self, db_url: &str) -> Output {
        self.sync(db_url, &self.secret, &[]).output().expect("sync runs")
    }
}

/// A port nothing listens on, as of now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn at(offset: Duration) -> String {
    let instant = OffsetDateTime::now_utc().replace_nanosecond(0).expect("valid") - offset;
    instant.format(&Rfc3339).expect("formats")
}

/// A day ago plus `minutes`.
fn recent(minutes: u64) -> String {
    at(Duration::from_secs(86_400 - minutes * 60))
}

/// One record of 130 sessions and 300 participants (three pages of each), 99 of one session.
fn calls() -> Vec<Value> {
    let people: Vec<String> = (0..300).map(|n| format!("p{n:03}")).collect();
    let people: Vec<&str> = people.iter().map(String::as_str).collect();
    let mut calls = vec![record("big-meeting", &recent(0), 130, &people)];
    calls.extend((1..100).map(|n| record(&format!("call-{n:03}"), &recent(n), 1, &["alice", "bob"])));
    calls
}

async fn ingest_calls_and_logs(upstream: &Upstream) {
    upstream.ingest("callRecords", &calls()).await;
    let pstn: Vec<Value> = (0..5).map(|n| pstn_row(&format!("pstn-{n}"), &recent(n))).collect();
    upstream.ingest("pstnCalls", &pstn).await;
    let routed: Vec<Value> = (0..3)
        .map(|n| direct_routing_row(&format!("dr-{n}"), &recent(n)))
        .collect();
    upstream.ingest("directRoutingCalls", &routed).await;
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A GET that waits out the upstream's throttling, as any client must; the text with the
/// server's own base URL replaced, so two servers' answers compare.
async fn get(client: &reqwest::Client, url: &str, base: &str, token: Option<&str>) -> String {
    loop {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("answered");
        if answer.status() == 429 {
            let wait = answer
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        assert_eq!(answer.status(), 200, "{url}");
        return answer.text().await.expect("a body").replace(base, "BASE");
    }
}

/// The text of every page from `first` on, following `first_link` on the first page and
/// `@odata.nextLink` after it.
async fn pages(
    client: &reqwest::Client,
    base: &str,
    first: String,
    first_link: &str,
    token: Option<&str>,
) -> Vec<String> {
    let mut pages = Vec::new();
    let mut next = Some(first);
    let mut link_name = first_link;
    while let Some(url) = next.take() {
        let text = get(client, &url, base, token).await;
        let page: Value = serde_json::from_str(&text).expect("JSON");
        next = page[link_name].as_str().map(|link| link.replace("BASE", base));
        link_name = "@odata.nextLink";
        pages.push(text);
    }
    pages
}

/// The items of every page of a collection.
async fn items(client: &reqwest::Client, base: &str, first: String, token: Option<&str>) -> Vec<Value> {
    let mut items = Vec::new();
    for page in pages(client, base, first, "@odata.nextLink", token).await {
        let page: Value = serde_json::from_str(&page).expect("JSON");
        items.extend(page["value"].as_array().expect("a collection").iter().cloned());
    }
    items
}

/// Every page a client reads of a record: the record with its first sessions (and their
/// segments), further session pages, every page of participants.
async fn record_pages(client: &reqwest::Client, base: &str, id: &str, token: Option<&str>) -> Vec<String> {
    let record = format!("{base}/v1.0/communications/callRecords/{id}");
    let mut read = pages(
        client,
        base,
        format!("{record}?$expand=sessions($expand=segments)"),
        "sessions@odata.nextLink",
        token,
    )
    .await;
    read.extend(
        pages(
            client,
            base,
            format!("{record}/participants_v2"),
            "@odata.nextLink",
            token,
        )
        .await,
    );
    read
}

async fn log_pages(client: &reqwest::Client, base: &str, function: &str, token: Option<&str>) -> Vec<String> {
    let first = format!(
        "{base}/v1.0/communications/callRecords/{function}(fromDateTime={},toDateTime={})",
        at(Duration::from_secs(20 * 86_400)),
        at(Duration::ZERO)
    );
    pages(client, base, first, "@odata.nextLink", token).await
}

/// `serve` on a collector's store, and a token for the upstream's tenant there.
fn serve_collected(db_url: &str, tenant: &str) -> (ServerProcess, String, String) {
    let (server, base) = spawn_serve(&["--listen", "127.0.0.1:0", "--db", db_url, "--auth", "local"]);
    let token = cli(&[
        "token",
        "--db",
        db_url,
        "--tenant",
        tenant,
        "--roles",
        "CallRecords.Read.All",
    ]);
    (server, base, token.trim().to_owned())
}

/// Asserts that the store at `db_url` answers every record (each page of sessions, segments
/// and participants) and log row exactly as the upstream does; the number of records.
async fn assert_same(upstream: &Upstream, db_url: &str) -> usize {
    let (_downstream, down, down_token) = serve_collected(db_url, &upstream.tenant);
    let client = reqwest::Client::new();
    let token = upstream.token("CallRecords.Read.All");
    let down_token = Some(down_token.as_str());
    let list = format!("{}/v1.0/communications/callRecords?$select=id", upstream.base);
    let ids: Vec<String> = items(&client, &upstream.base, list, Some(&token))
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let count = format!("{down}/v1.0/communications/callRecords/$count");
    let stored: usize = get(&client, &count, &down, down_token).await.parse().expect("a count");
    assert_eq!(stored, ids.len(), "records downstream");
    for id in &ids {
        let expected = record_pages(&client, &upstream.base, id, Some(&token)).await;
        let stored = record_pages(&client, &down, id, down_token).await;
        assert_eq!(stored, expected, "record {id}");
    }
    for function in ["getPstnCalls", "getDirectRoutingCalls"] {
        let expected = log_pages(&client, &upstream.base, function, Some(&token)).await;
        let stored = log_pages(&client, &down, function, down_token).await;
        assert_eq!(stored, expected, "{function}");
    }
    ids.len()
}

both!(sync_once_copies_every_page_and_picks_up_a_risen_version);
async fn sync_once_copies_every_page_and_picks_up_a_risen_version(backend: Backend) {
    let upstream = Upstream::start(&[]);
    ingest_calls_and_logs(&upstream).await;
    let database = TestDatabase::new(backend).await;

    let output = upstream.sync_once(&database.url);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("100 records listed, 100 fetched"),
        "{}",
        stderr(&output)
    );
    assert_eq!(assert_same(&upstream, &database.url).await, 100);

    // Graph writes a later version: more sessions, another participant.
    let mut later = record("call-007", &recent(7), 3, &["alice", "bob", "carol"]);
    later["version"] = json!(2);
    upstream.ingest("callRecords", &[later]).await;
    let output = upstream.sync_once(&database.url);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("100 records listed, 1 fetched, 99 already current"),
        "{}",
        stderr(&output)
    );
    assert_eq!(assert_same(&upstream, &database.url).await, 100);
}

#[tokio::test]
async fn a_wrong_secret_a_missing_role_and_an_unreachable_authority_are_clear_errors() {
    let upstream = Upstream::start(&[]);
    let database = TestDatabase::new(Backend::Sqlite).await;

    let output = upstream.sync(&database.url, "not-the-secret", &[]).output().unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains("refused a token") && said.contains("invalid_client"),
        "{said}"
    );
    assert!(!said.contains(&upstream.secret));

    let (client_id, secret) = Upstream::add_app(&upstream.db_url, &upstream.tenant, "CallRecords.Ingest");
    let output = upstream
        .sync_as(&client_id, &database.url, &secret, &[])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains("missing permission") && said.contains("CallRecords.Read.All") && said.contains("admin consent"),
        "{said}"
    );

    let closed = format!("http://127.0.0.1:{}", free_port());
    let output = upstream
        .sync(&database.url, &upstream.secret, &["--authority", &closed])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("cannot reach the authority"), "{said}");

    let output = Command::new(BIN)
        .args(["sync", "--once", "--db", &database.url, "--tenant-id", &upstream.tenant])
        .args(["--client-id", &upstream.client_id])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("client secret"), "{}", stderr(&output));
}

#[tokio::test]
async fn a_throttled_upstream_slows_the_collector_and_loses_nothing() {
    // Fifteen requests a second for the app: the collector's own pacing allows far more, so
    // it meets 429s and must wait them out, request by request.
    let upstream = Upstream::start(&["--throttle-limit", "app-tenant=30/2"]);
    ingest_calls_and_logs(&upstream).await;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let output = upstream.sync_once(&database.url);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    let throttled: u64 = said
        .split("throttled (429): ")
        .nth(1)
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no throttling count in {said}"));
    assert!(throttled > 0, "{said}");
    assert_eq!(assert_same(&upstream, &database.url).await, 100);
}

/// The version of each record a server holds.
async fn versions(base: &str, token: &str) -> Vec<i64> {
    let list = format!("{base}/v1.0/communications/callRecords?$select=id,version");
    items(&reqwest::Client::new(), base, list, Some(token))
        .await
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect()
}

/// Waits until `child` exits, at most `within`.
async fn wait_for_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the collector did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both!(an_upstream_killed_mid_sync_and_a_collector_killed_mid_sync_lose_nothing);
async fn an_upstream_killed_mid_sync_and_a_collector_killed_mid_sync_lose_nothing(backend: Backend) {
    // Slow enough (ten requests a second) that each kill lands mid-sync.
    let mut upstream = Upstream::start(&["--throttle-limit", "app-tenant=20/2"]);
    ingest_calls_and_logs(&upstream).await;
    let database = TestDatabase::new(backend).await;

    let mut collector = upstream.sync(&database.url, &upstream.secret, &[]).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        collector.try_wait().unwrap().is_none(),
        "the collector finished before the kill"
    );
    upstream.restart();
    let status = wait_for_exit(&mut collector, Duration::from_secs(180)).await;
    let mut said = String::new();
    std::io::Read::read_to_string(&mut collector.stderr.take().unwrap(), &mut said).unwrap();
    assert!(status.success(), "{said}");
    assert_eq!(assert_same(&upstream, &database.url).await, 100);

    // Now the collector dies: a new version of every record upstream, a collector killed with
    // half of them fetched, and one run more.
    let mut later = calls();
    for call in &mut later {
        call["version"] = json!(2);
        call["modalities"] = json!(["audio", "video"]);
    }
    upstream.ingest("callRecords", &later).await;
    let (_downstream, down, down_token) = serve_collected(&database.url, &upstream.tenant);
    let mut collector = upstream.sync(&database.url, &upstream.secret, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let updated_at_kill = loop {
        let updated = versions(&down, &down_token).await.iter().filter(|v| **v == 2).count();
        if updated > 0 {
            collector.kill().unwrap();
            collector.wait().unwrap();
            break versions(&down, &down_token).await.iter().filter(|v| **v == 2).count();
        }
        assert!(
            collector.try_wait().unwrap().is_none(),
            "the collector finished before the kill"
        );
        assert!(Instant::now() < deadline, "the collector stored nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(updated_at_kill < 100, "the kill came after the collector was done");
    let output = upstream.sync_once(&database.url);
    let said = stderr(&output);
    assert!(output.status.success(), "{said}");
    let fetched: u64 = said
        .split(" records listed, ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no fetched count in {said}"));
    assert_eq!(
        fetched,
        100 - updated_at_kill as u64,
        "the restarted collector fetches what the killed one had not stored: {said}"
    );
    assert_eq!(assert_same(&upstream, &database.url).await, 100);
}

#[tokio::test]
async fn notifications_bring_a_new_record_before_the_next_pass() {
    let upstream = Upstream::start(&[]);
    upstream.ingest("callRecords", &calls()[..3]).await;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let (mut collector, listen) = upstream.collect_continuously(&database.url);
    let killer = scopeguard(&mut collector);
    let client = reqwest::Client::new();
    let token = upstream.token("CallRecords.Read.All");

    // The first pass, and the subscription made after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client
            .get(format!("{}/v1.0/subscriptions", upstream.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let subscriptions: Value = answer.json().await.unwrap();
        if subscriptions["value"].as_array().is_some_and(|list| !list.is_empty()) {
            let subscription = &subscriptions["value"][0];
            assert_eq!(subscription["changeType"], "created,updated");
            assert_eq!(subscription["resource"], "/communications/callRecords");
            break;
        }
        assert!(Instant::now() < deadline, "no subscription was made");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    upstream
        .ingest("callRecords", &[record("notified", &recent(200), 2, &["dana"])])
        .await;
    let metrics_url = format!("http://{listen}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_downstream, down, down_token) = serve_collected(&database.url, &upstream.tenant);
    loop {
        let answer = client
            .get(format!("{down}/v1.0/communications/callRecords/notified"))
            .bearer_auth(&down_token)
            .send()
            .await
            .unwrap();
        if answer.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the notified record was not fetched");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status: Value = client
        .get(format!("http://{listen}/sync/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = &status["tenants"][0];
    assert_eq!(tenant["tenantId"], upstream.tenant.as_str(), "{status}");
    assert!(tenant["lastSweepCompleted"].is_string(), "{status}");
    assert!(tenant["logsCompleteUntil"]["pstnCalls"].is_string(), "{status}");
    assert!(tenant["subscription"]["id"].is_string(), "{status}");
    let metrics = client.get(&metrics_url).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("callrecords_sync_notifications_total"), "{metrics}");
    assert!(
        !metrics.contains("callrecords_sync_notifications_total 0\n"),
        "{metrics}"
    );
    drop(killer);
}

/// Kills the child when the test ends, whatever way it ends.
fn scopeguard(child: &mut std::process::Child) -> impl Drop + '_ {
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    Kill(child)
}

#[tokio::test]
async fn a_store_collected_into_keeps_and_serves_records_past_30_days() {
    let upstream = Upstream::start(&[]);
    let old = record("old-call", &at(Duration::from_secs(40 * 86_400)), 1, &["alice"]);
    upstream.ingest("callRecords", &[old]).await;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let output = upstream
        .sync(&database.url, &upstream.secret, &["--sweep-days", "60"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // No --retention-days: a store that a collector fills keeps everything.
    let (_downstream, down, token) = serve_collected(&database.url, &upstream.tenant);
    let answer = reqwest::Client::new()
        .get(format!("{down}/v1.0/communications/callRecords/old-call"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

both!(one_collector_at_a_time_collects_a_tenant);
async fn one_collector_at_a_time_collects_a_tenant(backend: Backend) {
    let upstream = Upstream::start(&["--throttle-limit", "app-tenant=20/2"]);
    ingest_calls_and_logs(&upstream).await;
    let database = TestDatabase::new(backend).await;
    let mut first = upstream
        .sync(&database.url, &upstream.secret, &["--node-name", "node-a"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first collector finished too soon"
    );

    let second = upstream
        .sync(&database.url, &upstream.secret, &["--node-name", "node-b"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("another collector holds tenant"),
        "{}",
        stderr(&second)
    );

    let status = wait_for_exit(&mut first, Duration::from_secs(180)).await;
    assert!(status.success());
    // The first gave its lease back when it was done.
    let second = upstream
        .sync(&database.url, &upstream.secret, &["--node-name", "node-b"])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("0 fetched, 100 already current"),
        "{}",
        stderr(&second)
    );
}

/// A self-signed RSA certificate and its key, as one PEM text and as the certificate alone.
fn rsa_certificate() -> (String, String) {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let key_pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let signing = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["collector".to_owned()])
        .unwrap()
        .self_signed(&signing)
        .unwrap()
        .pem();
    (format!("{certificate}{key_pem}"), certificate)
}

#[tokio::test]
async fn an_app_proves_itself_with_a_certificate_instead_of_a_secret() {
    let upstream = Upstream::start(&[]);
    upstream.ingest("callRecords", &calls()[1..4]).await;
    let dir = tempfile::tempdir().unwrap();
    let (with_key, certificate) = rsa_certificate();
    std::fs::write(dir.path().join("app.crt"), &certificate).unwrap();
    std::fs::write(dir.path().join("app.pem"), &with_key).unwrap();
    let app_crt = dir.path().join("app.crt").display().to_string();
    let app_pem = dir.path().join("app.pem").display().to_string();
    let printed = cli(&[
        "apps",
        "add",
        "--tenant",
        &upstream.tenant,
        "--name",
        "cert",
        "--roles",
        "CallRecords.Read.All",
        "--certificate",
        &app_crt,
        "--db",
        &upstream.db_url,
    ]);
    assert!(printed.contains("x5t#S256"), "{printed}");
    let client_id = printed
        .lines()
        .find_map(|line| line.strip_prefix("client_id"))
        .unwrap()
        .trim()
        .to_owned();
    let database = TestDatabase::new(Backend::Sqlite).await;
    let graph_url = format!("{}/v1.0", upstream.base);
    let sync = |certificate_file: &str| {
        Command::new(BIN)
            .args(["sync", "--once", "--db", &database.url, "--tenant-id", &upstream.tenant])
            .args(["--client-id", &client_id, "--client-certificate-file", certificate_file])
            .args(["--authority", &upstream.base, "--graph-url", &graph_url])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let output = sync(&app_pem);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("3 fetched"), "{}", stderr(&output));

    // Another key, even with the same subject, proves nothing.
    let (other, _) = rsa_certificate();
    std::fs::write(dir.path().join("other.pem"), &other).unwrap();
    let output = sync(&dir.path().join("other.pem").display().to_string());
    assert!(!output.status.success());
    assert!(stderr(&output).contains("invalid_client"), "{}", stderr(&output));
}

#[tokio::test]
async fn serve_collects_from_the_same_config_and_takes_notifications_itself() {
    let upstream = Upstream::start(&[]);
    upstream.ingest("callRecords", &calls()[1..6]).await;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{}\n", upstream.secret)).unwrap();
    let config = dir.path().join("sync.toml");
    std::fs::write(
        &config,
        format!(
            "[[tenant]]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nauthority = \"{}\"\ngraph_url = \"{}/v1.0\"\n",
            upstream.tenant,
            upstream.client_id,
            secret_file.display(),
            upstream.base,
            upstream.base
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let notification_url = format!("http://{listen}/sync/notifications");
    let (_server, base) = spawn_serve(&[
        "--listen",
        &listen,
        "--db",
        &database.url,
        "--auth",
        "local",
        "--sync-config",
        &config.display().to_string(),
        "--sync-notification-url",
        &notification_url,
    ]);
    let token = cli(&[
        "token",
        "--db",
        &database.url,
        "--tenant",
        &upstream.tenant,
        "--roles",
        "CallRecords.Read.All",
    ]);
    let client = reqwest::Client::new();
    let fetched = |id: &'static str| {
        let client = client.clone();
        let url = format!("{base}/v1.0/communications/callRecords/{id}");
        let token = token.trim().to_owned();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let answer = client.get(&url).bearer_auth(&token).send().await.unwrap();
                if answer.status() == 200 {
                    return;
                }
                assert!(Instant::now() < deadline, "{url} was not collected");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    fetched("call-005").await;

    // The first pass is done and the subscription made; a new record comes by notification
    // (the next pass is ten minutes away).
    let deadline = Instant::now() + Duration::from_secs(60);
    let upstream_token = upstream.token("CallRecords.Read.All");
    loop {
        let subscriptions: Value = client
            .get(format!("{}/v1.0/subscriptions", upstream.base))
            .bearer_auth(&upstream_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if subscriptions["value"].as_array().is_some_and(|list| !list.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "no subscription was made");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    upstream
        .ingest("callRecords", &[record("notified", &recent(300), 1, &["erin"])])
        .await;
    fetched("notified").await;

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("callrecords_sync_passes_total 1"), "{metrics}");
    assert!(metrics.contains("callrecords_http_requests_total"), "{metrics}");
    assert!(
        !metrics.contains("callrecords_sync_notifications_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn lifecycle_events_recreate_renew_and_list_again() {
    let upstream = Upstream::start(&[]);
    upstream.ingest("callRecords", &calls()[1..3]).await;
    let database = TestDatabase::new(Backend::Sqlite).await;
    let (mut collector, listen) = upstream.collect_continuously(&database.url);
    let receiver = format!("http://{listen}/sync/notifications");
    let _killer = scopeguard(&mut collector);
    let client = reqwest::Client::new();
    // Null until the collector listens.
    let status = || async {
        let Ok(answer) = client.get(format!("http://{listen}/sync/status")).send().await else {
            return Value::Null;
        };
        let status: Value = answer.json().await.unwrap();
        status["tenants"][0]["subscription"].clone()
    };
    let metrics_url = format!("http://{listen}/metrics");
    let metric = |name: &'static str| {
        let url = metrics_url.clone();
        async move {
            let text = reqwest::get(url).await.unwrap().text().await.unwrap();
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().parse::<u64>().ok())
                .unwrap_or(0)
        }
    };
    let until = |what: &'static str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        move || assert!(Instant::now() < deadline, "{what}")
    };
    let check = until("no subscription was made");
    let first = loop {
        let subscription = status().await;
        if subscription["id"].as_str().is_some_and(|id| !id.is_empty()) {
            break subscription;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The client state a notification must carry is the one kept with the subscription.
    let held_client_state = || {
        let path = database.url.trim_start_matches("sqlite://");
        let connection = rusqlite::Connection::open(path).unwrap();
        let held: String = connection
            .query_row("SELECT value FROM sync_state WHERE name = 'subscription'", [], |row| {
                row.get(0)
            })
            .unwrap();
        serde_json::from_str::<Value>(&held).unwrap()["client_state"].clone()
    };
    let client_state = held_client_state();
    let lifecycle = |event: &str, client_state: &Value| {
        json!({ "value": [{
            "subscriptionId": first["id"], "tenantId": upstream.tenant, "clientState": client_state,
            "lifecycleEvent": event,
        }]})
    };
    let post = |body: Value| {
        let client = client.clone();
        let receiver = receiver.clone();
        async move {
            let answer = client.post(&receiver).json(&body).send().await.unwrap();
            assert_eq!(answer.status(), 202);
        }
    };

    // A notification without our client state is ignored.
    post(lifecycle("subscriptionRemoved", &json!("forged"))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status().await["id"], first["id"]);

    post(lifecycle("subscriptionRemoved", &client_state)).await;
    let check = until("the removed subscription was not made again");
    let second = loop {
        let subscription = status().await;
        if subscription["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty() && subscription["id"] != first["id"])
        {
            break subscription;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let client_state = held_client_state();
    post(lifecycle("reauthorizationRequired", &client_state)).await;
    let check = until("the subscription was not renewed");
    loop {
        let subscription = status().await;
        if subscription["expirationDateTime"] != second["expirationDateTime"] {
            assert_eq!(subscription["id"], second["id"], "renewed, not made again");
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let passes = metric("callrecords_sync_passes_total").await;
    post(lifecycle("missed", &client_state)).await;
    let check = until("missed notifications did not start a pass");
    while metric("callrecords_sync_passes_total").await <= passes {
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
