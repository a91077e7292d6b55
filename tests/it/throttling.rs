//! Throttling: token buckets per tenant, app and record, 429 `TooManyRequests` with
//! `Retry-After` and Graph's innerError, and a bucket of its own for ingest.

use callrecords::api::throttle::ThrottleSettings;
use callrecords::api::{ApiSettings, AuthMode};
use callrecords::auth::local::{self, TokenRequest, DEFAULT_AUDIENCE};
use callrecords::auth::{INGEST, READ_ALL};
use callrecords::store::TenantId;

use crate::support::*;

fn throttled(limits: &[&str], auth: AuthMode) -> ApiSettings {
    let mut throttle = ThrottleSettings::default();
    for limit in limits {
        throttle.set(limit).unwrap();
    }
    ApiSettings {
        throttle,
        ..settings_with_auth(auth)
    }
}

fn assert_throttled(answer: &Answer) -> u64 {
    let body = answer.assert_error(429, "TooManyRequests");
    assert_eq!(body["error"]["message"], "Please retry again later.");
    assert_eq!(body["error"]["innerError"]["status"], "429");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let seconds: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(seconds >= 1, "{seconds}");
    seconds
}

both!(a_record_past_its_limit_is_429_with_retry_after_until_the_bucket_refills);
async fn a_record_past_its_limit_is_429_with_retry_after_until_the_bucket_refills(backend: Backend) {
    let clock = callrecords::clock::ManualClock::starting_now();
    let app =
        TestApp::spawn_with_settings_and_clock(backend, throttled(&["record=3/2"], AuthMode::None), clock.clone())
            .await;
    app.ingest_ok(&[
        record("busy", "2024-01-01T00:00:00Z", 1, &["a"]),
        record("quiet", "2024-01-01T00:00:00Z", 1, &["a"]),
    ])
    .await;
    for _ in 0..3 {
        assert_eq!(app.graph("/communications/callRecords/busy").await.status, 200);
    }
    // The sub-resources of a record share its bucket.
    let wait = assert_throttled(&app.graph("/communications/callRecords/busy/sessions").await);
    assert!(wait <= 2, "{wait}");
    // Other records, and the collection, are not held back.
    assert_eq!(app.graph("/communications/callRecords/quiet").await.status, 200);
    assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    clock.advance(std::time::Duration::from_secs(wait));
    assert_eq!(app.graph("/communications/callRecords/busy").await.status, 200);
}

both!(a_record_has_forty_requests_per_twenty_seconds_for_all_its_pages);
async fn a_record_has_forty_requests_per_twenty_seconds_for_all_its_pages(backend: Backend) {
    let app = TestApp::spawn_with(backend, throttled(&[], AuthMode::None)).await;
    app.ingest_ok(&[record("r", "2024-01-01T00:00:00Z", 3, &["a", "b", "c"])])
        .await;
    let small_pages = [("Prefer", "odata.maxpagesize=1")];
    let first = app
        .graph_with("/communications/callRecords/r/sessions", &small_pages)
        .await;
    assert_eq!(first.status, 200);
    let later = first.json()["@odata.nextLink"].as_str().unwrap().to_owned();
    // Refused before they reach the record: an unknown segment, an unknown option, a bad
    // value. None of them spends its budget.
    for refused in [
        "/communications/callRecords/r/sessionz",
        "/communications/callRecords/r?$orderby=id",
        "/communications/callRecords/r/sessions?$top=many",
        "/communications/callRecords/r/participants_v2?$select=nothing",
    ] {
        assert_eq!(app.graph(refused).await.status, 400, "{refused}");
    }
    // First and later pages draw on one budget of 40: one spent above, 39 more here.
    for n in 1..40 {
        let answer = if n % 2 == 0 {
            app.follow(&later, &small_pages).await
        } else {
            app.graph("/communications/callRecords/r/participants_v2").await
        };
        assert_eq!(answer.status, 200, "request {n}");
    }
    let wait = assert_throttled(&app.follow(&later, &small_pages).await);
    assert!(wait <= 20, "{wait}");
    assert_throttled(&app.graph("/communications/callRecords/r").await);
}

both!(tenants_and_apps_have_buckets_of_their_own);
async fn tenants_and_apps_have_buckets_of_their_own(backend: Backend) {
    let mut app = TestApp::spawn_with(
        backend,
        throttled(
            &["app-tenant=2/60", "ingest-tenant=1/60"],
            AuthMode::Local {
                audience: DEFAULT_AUDIENCE.to_owned(),
            },
        ),
    )
    .await;
    let token = |tenant: &'static str, app_id: &'static str| {
        let store = app.store.clone();
        async move {
            local::issue_token(
                store.as_ref(),
                &TokenRequest {
                    tenant: TenantId::parse(tenant).unwrap(),
                    app_id: app_id.to_owned(),
                    roles: vec![READ_ALL.to_owned(), INGEST.to_owned()],
                    audience: DEFAULT_AUDIENCE.to_owned(),
                    lifetime_secs: 600,
                },
            )
            .await
            .unwrap()
        }
    };
    let a_one = token("11111111-1111-1111-1111-111111111111", "one").await;
    let a_two = token("11111111-1111-1111-1111-111111111111", "two").await;
    let b_one = token("22222222-2222-2222-2222-222222222222", "one").await;

    app.use_token(Some(&a_one));
    app.ingest_ok(&[record("r", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    assert_throttled(
        &app.ingest_ndjson(&[record("s", "2024-01-01T00:00:00Z", 1, &["a"])])
            .await,
    );
    for _ in 0..2 {
        assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    }
    assert_throttled(&app.graph("/communications/callRecords").await);

    app.use_token(Some(&a_two));
    assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    app.use_token(Some(&b_one));
    assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    app.ingest_ok(&[record("r", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
}

// Readers that spend the whole tenant budget leave ingest its own: records still come in, and
// reads are refused only by the buckets reads spend.
both!(readers_cannot_spend_the_ingest_budget);
async fn readers_cannot_spend_the_ingest_budget(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        throttled(
            &["tenant=5/60", "app-tenant=5/60", "ingest-tenant=20/60"],
            AuthMode::None,
        ),
    )
    .await;
    let mut refused = 0;
    for _ in 0..8 {
        let answer = app.graph("/communications/callRecords").await;
        if answer.status == 429 {
            assert_throttled(&answer);
            refused += 1;
        }
    }
    assert_eq!(refused, 3, "five reads a minute, then 429s");
    for batch in 0..10 {
        app.ingest_ok(&minute_records(&format!("b{batch}"), 2)).await;
    }
    assert_throttled(&app.graph("/communications/callRecords/$count").await);
}
