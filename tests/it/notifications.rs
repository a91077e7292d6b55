//! Subscriptions and change notifications with real HTTP receivers: the handshake and each of
//! its failures, Graph's payload, one notification per version, retries that lose nothing and
//! repeat nothing, expiry, deletion, lifecycle events, metrics, and hosts that resolve to a
//! private address only after they were checked.

use std::time::Duration;

use callrecords::clock::Clock;
use callrecords::model::{DateTimeOffset, SubscriptionScope};
use callrecords::notify::{NotifySettings, Resolver};
use callrecords::store::{StoredSubscription, TenantId, Timestamp};
use serde_json::{json, Value};

use crate::support::*;

fn in_minutes(minutes: i64) -> String {
    DateTimeOffset::from_offset_date_time(time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
        .to_string()
}

fn subscription_body(url: &str) -> Value {
    json!({
        "changeType": "created,updated", "notificationUrl": url, "resource": "/communications/callRecords",
        "expirationDateTime": in_minutes(120), "clientState": "secret-state"
    })
}

both!(create_read_renew_and_delete_a_subscription);
async fn create_read_renew_and_delete_a_subscription(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;

    let created = app.subscribe(&receiver.url("/hook"), "created,updated").await;
    assert_eq!(receiver.validations(), 1);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["@odata.context"],
        format!("http://{}/v1.0/$metadata#subscriptions/$entity", app.addr)
    );
    assert_eq!(created["resource"], "/communications/callRecords");
    assert_eq!(created["changeType"], "created,updated");
    assert_eq!(created["clientState"], "secret-state");
    assert_eq!(created["latestSupportedTlsVersion"], "v1_2");
    assert_eq!(created["includeResourceData"], Value::Null);

    let got = app.graph(&format!("/subscriptions/{id}")).await.json();
    assert_eq!(got["id"], id.as_str());
    let list = app.graph("/subscriptions").await.json();
    assert_eq!(ids(list["value"].as_array().unwrap()), std::slice::from_ref(&id));

    let renewed_to = in_minutes(4000);
    let renewed = app
        .graph_send(
            reqwest::Method::PATCH,
            &format!("/subscriptions/{id}"),
            &json!({ "expirationDateTime": renewed_to }),
        )
        .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(renewed.json()["expirationDateTime"], renewed_to.as_str());

    let reauthorized = app
        .send(
            reqwest::Method::POST,
            &format!("/v1.0/subscriptions/{id}/reauthorize"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(reauthorized.status, 204);
    let deleted = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1.0/subscriptions/{id}"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(deleted.status, 204);
    let body = app
        .graph(&format!("/subscriptions/{id}"))
        .await
        .assert_error(404, "ResourceNotFound");
    assert_eq!(body["error"]["message"], "The object was not found.");
}

both!(each_handshake_failure_is_graphs_error);
async fn each_handshake_failure_is_graphs_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    for (mode, code, message) in [
        (Mode::RefuseValidation, "ValidationError", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."),
        (Mode::WrongToken, "ValidationError", "Subscription validation request failed. Response must exactly match validationToken query parameter."),
        (Mode::SlowValidation, "InvalidRequest", "Subscription validation request timed out."),
    ] {
        receiver.set_mode(mode);
        let answer = app.graph_send(reqwest::Method::POST, "/subscriptions", &subscription_body(&receiver.url("/hook"))).await;
        let body = answer.assert_error(400, code);
        assert_eq!(body["error"]["message"], message, "{mode:?}");
    }
    let unreachable = app
        .graph_send(
            reqwest::Method::POST,
            "/subscriptions",
            &subscription_body("http://127.0.0.1:9/hook"),
        )
        .await;
    unreachable.assert_error(400, "ValidationError");
    assert!(app.graph("/subscriptions").await.json()["value"]
        .as_array()
        .unwrap()
        .is_empty());
}

both!(invalid_subscriptions_say_what_is_supported);
async fn invalid_subscriptions_say_what_is_supported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let url = receiver.url("/hook");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |key: &str, value: Value| {
        let mut body = subscription_body(&url);
        body[key] = value;
        body
    };
    cases.push((with("resource", json!("/users")), "Resource '/users' is not supported"));
    cases.push((
        with("changeType", json!("deleted")),
        "changeType 'deleted' is not supported for call records",
    ));
    cases.push((
        with("expirationDateTime", json!(in_minutes(4300))),
        "Subscription expiration can only be 4230 minutes in the future.",
    ));
    cases.push((
        with("expirationDateTime", json!("2020-01-01T00:00:00Z")),
        "Subscription expiration must be in the future.",
    ));
    cases.push((with("includeResourceData", json!(true)), "Rich notifications"));
    cases.push((
        with("clientState", json!("x".repeat(129))),
        "clientState must be at most 128 characters.",
    ));
    cases.push((with("notificationUrl", json!("not a url")), "is not an absolute URL"));
    cases.push((with("bogus", json!(1)), "'bogus' is not a property"));
    let mut missing = subscription_body(&url);
    missing.as_object_mut().unwrap().remove("expirationDateTime");
    cases.push((
        missing,
        "The property 'expirationDateTime' is required to create a subscription.",
    ));
    for (body, mentions) in cases {
        let answer = app.graph_send(reqwest::Method::POST, "/subscriptions", &body).await;
        let error = answer.assert_error(400, "InvalidRequest");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(mentions),
            "{body}: {error}"
        );
    }
    app.send(reqwest::Method::POST, "/v1.0/subscriptions", "text/plain", "{}")
        .await
        .assert_error(415, "UnsupportedMediaType");
    let created = app.subscribe(&url, "created").await;
    let id = created["id"].as_str().unwrap();
    let patch = app
        .graph_send(
            reqwest::Method::PATCH,
            &format!("/subscriptions/{id}"),
            &json!({ "lifecycleNotificationUrl": url }),
        )
        .await;
    patch.assert_error(400, "InvalidRequest");
    app.graph("/subscriptions/nope")
        .await
        .assert_error(404, "ResourceNotFound");
}

both!(notifications_arrive_once_per_version_with_graphs_payload);
async fn notifications_arrive_once_per_version_with_graphs_payload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let created_only = Receiver::start().await;
    let subscription = app.subscribe(&receiver.url("/hook?tag=1"), "created,updated").await;
    app.subscribe(&created_only.url("/hook"), "created").await;

    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    let mut v2 = record("r1", "2024-01-01T00:00:00Z", 2, &["a"]);
    v2["version"] = json!(2);
    app.ingest_ok(&[v2.clone()]).await;
    app.ingest_ok(&[v2]).await;

    let got = receiver.wait_for(2).await;
    assert_eq!(
        got[0],
        json!({
            "subscriptionId": subscription["id"],
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "changeType": "created",
            "resource": "communications/callRecords/r1",
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.callRecord",
                "@odata.id": "communications/callRecords/r1",
                "id": "r1"
            },
            "clientState": "secret-state",
            "tenantId": "00000000-0000-0000-0000-000000000000"
        })
    );
    assert_eq!(got[1]["changeType"], "updated");
    let only_created = created_only.wait_for(1).await;
    app.outbox_drained().await;
    assert_eq!(
        receiver.notifications().len(),
        2,
        "the replay of version 2 gives nothing"
    );
    assert_eq!(only_created.len(), 1);
    assert_eq!(
        created_only.notifications().len(),
        1,
        "a created-only subscription hears nothing of updates"
    );
}

both!(participant_filtered_subscriptions_hear_only_their_participants);
async fn participant_filtered_subscriptions_hear_only_their_participants(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let mut body = subscription_body(&receiver.url("/hook"));
    body["resource"] =
        json!("/communications/callRecords?$filter=participants/any(p:p/id eq 'bob' or p/id eq 'carol')");
    assert_eq!(
        app.graph_send(reqwest::Method::POST, "/subscriptions", &body)
            .await
            .status,
        201
    );
    app.ingest_ok(&[
        record("with-alice", "2024-01-01T00:00:00Z", 1, &["alice"]),
        record("with-bob", "2024-01-01T00:01:00Z", 1, &["alice", "bob"]),
    ])
    .await;
    let got = receiver.wait_for(1).await;
    app.outbox_drained().await;
    assert_eq!(receiver.notifications().len(), 1);
    assert_eq!(got[0]["resourceData"]["id"], "with-bob");
}

both!(a_receiver_that_fails_three_times_gets_everything_once_in_order);
async fn a_receiver_that_fails_three_times_gets_everything_once_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    app.subscribe(&receiver.url("/hook"), "created,updated").await;
    receiver.fail_next(3);

    for version in 1..=3 {
        let mut next = record("r1", "2024-01-01T00:00:00Z", 1, &["a"]);
        next["version"] = json!(version);
        app.ingest_ok(&[
            next,
            record(&format!("other-{version}"), "2024-01-01T00:00:00Z", 1, &["a"]),
        ])
        .await;
    }

    let got = receiver.wait_for(6).await;
    app.outbox_drained().await;
    let got_now = receiver.notifications();
    assert_eq!(got_now.len(), 6, "exactly once: {got:#?}");
    let r1: Vec<&str> = got_now
        .iter()
        .filter(|n| n["resourceData"]["id"] == "r1")
        .map(|n| n["changeType"].as_str().unwrap())
        .collect();
    assert_eq!(r1, ["created", "updated", "updated"]);
    // The worker records a batch as sent (and samples the outbox depth) after the receiver has
    // answered, so on a loaded machine the counters may trail the receiver for a moment.
    let wanted = [
        "callrecords_deliveries_sent_total 6",
        "callrecords_deliveries_failed_total 3",
        "callrecords_outbox_depth 0",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.get_with("/metrics", &[]).await.text;
        if wanted.iter().all(|line| metrics.contains(line)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both!(expired_and_deleted_subscriptions_stop_receiving);
async fn expired_and_deleted_subscriptions_stop_receiving(backend: Backend) {
    let clock = callrecords::clock::ManualClock::starting_now();
    let app = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let expiring = Receiver::start().await;
    let deleted = Receiver::start().await;
    let mut body = subscription_body(&expiring.url("/hook"));
    body["expirationDateTime"] = json!(DateTimeOffset::from_offset_date_time(
        clock.now().as_offset_date_time() + time::Duration::seconds(2)
    )
    .to_string());
    let short = app
        .graph_send(reqwest::Method::POST, "/subscriptions", &body)
        .await
        .json();
    let gone = app.subscribe(&deleted.url("/hook"), "created").await;
    let id = gone["id"].as_str().unwrap();
    assert_eq!(
        app.send(
            reqwest::Method::DELETE,
            &format!("/v1.0/subscriptions/{id}"),
            "application/json",
            ""
        )
        .await
        .status,
        204
    );
    clock.advance(Duration::from_millis(2500));

    // Notifications are planned in the ingest's own transaction: an empty outbox after it means
    // nothing will be sent.
    app.ingest_ok(&[record("late", "2024-01-01T00:00:00Z", 1, &["a"])])
        .await;
    assert_eq!(app.store.outbox_depth().await.unwrap(), 0);
    assert!(expiring.notifications().is_empty());
    assert!(deleted.notifications().is_empty());
    app.graph(&format!("/subscriptions/{}", short["id"].as_str().unwrap()))
        .await
        .assert_error(404, "ResourceNotFound");
}

both!(quota_is_one_hundred_subscriptions_per_tenant);
async fn quota_is_one_hundred_subscriptions_per_tenant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    for _ in 0..100 {
        app.subscribe(&receiver.url("/hook"), "created").await;
    }
    let answer = app
        .graph_send(
            reqwest::Method::POST,
            "/subscriptions",
            &subscription_body(&receiver.url("/hook")),
        )
        .await;
    let body = answer.assert_error(403, "Forbidden");
    assert_eq!(
        body["error"]["message"],
        "Subscription quota exceeded for resource communications/callRecords."
    );
}

both!(an_endpoint_that_stays_down_gets_missed_and_subscription_removed);
async fn an_endpoint_that_stays_down_gets_missed_and_subscription_removed(backend: Backend) {
    let mut settings = notify_settings();
    settings.retry_window = Duration::from_millis(400);
    let app = TestApp::spawn_with_notify(backend, settings_with_retention(0), settings).await;
    let receiver = Receiver::start().await;
    let lifecycle = Receiver::start().await;
    let mut body = subscription_body(&receiver.url("/hook"));
    body["lifecycleNotificationUrl"] = json!(lifecycle.url("/lifecycle"));
    let subscription = app
        .graph_send(reqwest::Method::POST, "/subscriptions", &body)
        .await
        .json();
    receiver.fail_next(usize::MAX);

    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;

    let events = lifecycle.wait_for(2).await;
    let names: Vec<&str> = events.iter().map(|e| e["lifecycleEvent"].as_str().unwrap()).collect();
    assert_eq!(names, ["missed", "subscriptionRemoved"]);
    assert_eq!(events[0]["subscriptionId"], subscription["id"]);
    assert_eq!(events[0]["clientState"], "secret-state");
    assert!(events[0].get("resource").is_none(), "lifecycle items carry no resource");
    app.graph(&format!("/subscriptions/{}", subscription["id"].as_str().unwrap()))
        .await
        .assert_error(404, "ResourceNotFound");
}

both!(a_subscription_close_to_expiry_gets_reauthorization_required);
async fn a_subscription_close_to_expiry_gets_reauthorization_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    let lifecycle = Receiver::start().await;
    let mut body = subscription_body(&receiver.url("/hook"));
    body["lifecycleNotificationUrl"] = json!(lifecycle.url("/lifecycle"));
    body["expirationDateTime"] = json!(in_minutes(30));
    let subscription = app
        .graph_send(reqwest::Method::POST, "/subscriptions", &body)
        .await
        .json();

    let events = lifecycle.wait_for(1).await;
    assert_eq!(events[0]["lifecycleEvent"], "reauthorizationRequired");
    assert_eq!(events[0]["subscriptionId"], subscription["id"]);
    assert_eq!(
        events[0]["subscriptionExpirationDateTime"],
        subscription["expirationDateTime"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        lifecycle.notifications().len(),
        1,
        "at most one reminder per 15 minutes"
    );
}

/// A server that refuses private webhook targets and resolves webhook hosts with `dns`.
async fn refusing_private_targets(backend: Backend, dns: &ScriptedDns, retry_window: Duration) -> TestApp {
    let settings = NotifySettings {
        allow_private_targets: false,
        resolver: Resolver::new(dns.clone()),
        retry_window,
        ..notify_settings()
    };
    TestApp::spawn_with_notify(backend, settings_with_retention(0), settings).await
}

both!(private_targets_are_refused_when_the_subscription_is_made);
async fn private_targets_are_refused_when_the_subscription_is_made(backend: Backend) {
    let receiver = Receiver::start().await;
    let dns = ScriptedDns::new(&["10.1.2.3"]);
    let app = refusing_private_targets(backend, &dns, Duration::from_secs(60)).await;
    let port = receiver.addr.port();
    // IP literals never reach a resolver, so the check itself must catch them.
    for url in [
        format!("https://private.test:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
        format!("https://localhost:{port}/hook"),
    ] {
        let answer = app
            .graph_send(reqwest::Method::POST, "/subscriptions", &subscription_body(&url))
            .await;
        let body = answer.assert_error(400, "InvalidRequest");
        assert_eq!(
            body["error"]["message"],
            "notificationUrl must point at a public address; loopback and private targets are refused.",
            "{url}"
        );
    }
    assert_eq!(dns.lookups(), 1, "only the host name is resolved");
    assert_eq!(receiver.connections(), 0);
}

both!(a_host_that_turns_private_after_the_check_fails_the_handshake_unreached);
async fn a_host_that_turns_private_after_the_check_fails_the_handshake_unreached(backend: Backend) {
    let receiver = Receiver::start().await;
    // Public when the URL is checked, the receiver's loopback address when we connect.
    let dns = ScriptedDns::new(&["52.114.188.32", "127.0.0.1"]);
    let app = refusing_private_targets(backend, &dns, Duration::from_secs(60)).await;
    let url = format!("https://rebind.test:{}/hook", receiver.addr.port());

    let answer = app
        .graph_send(reqwest::Method::POST, "/subscriptions", &subscription_body(&url))
        .await;

    let body = answer.assert_error(400, "InvalidRequest");
    assert_eq!(
        body["error"]["message"],
        "notificationUrl must point at a public address; its host resolved to a loopback or private address when the validation request was sent."
    );
    assert_eq!(dns.lookups(), 2, "once for the check, once for the connection");
    assert_eq!(receiver.connections(), 0, "nothing may reach the receiver");
    assert!(app.graph("/subscriptions").await.json()["value"]
        .as_array()
        .unwrap()
        .is_empty());
}

both!(a_host_that_turns_private_later_gets_no_delivery_and_fails_like_any_receiver);
async fn a_host_that_turns_private_later_gets_no_delivery_and_fails_like_any_receiver(backend: Backend) {
    let receiver = Receiver::start().await;
    let dns = ScriptedDns::new(&["127.0.0.1"]);
    let app = refusing_private_targets(backend, &dns, Duration::from_secs(1)).await;
    // No receiver in a test can pass the handshake over https at a public address, so the
    // subscription is stored as create stores it once the name has checked out as public; from
    // then on the name resolves to the receiver's loopback address.
    let url = format!("https://rebind.test:{}/hook", receiver.addr.port());
    let expiration = in_minutes(120);
    let stored = StoredSubscription {
        id: "rebound".to_owned(),
        expiration: Timestamp::from(DateTimeOffset::parse(&expiration).unwrap()),
        scope: SubscriptionScope {
            created: true,
            updated: true,
            participant_ids: None,
        },
        document: json!({
            "id": "rebound", "resource": "/communications/callRecords", "changeType": "created,updated",
            "notificationUrl": url, "expirationDateTime": expiration, "clientState": "secret-state"
        })
        .to_string(),
    };
    assert!(app
        .store
        .create_subscription(
            &TenantId::default_tenant(),
            &stored,
            100,
            callrecords::clock::system().timestamp()
        )
        .await
        .unwrap());

    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;

    // Retried, then abandoned past the retry window with the subscription removed, as for a
    // receiver that is down.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = app.get_with("/metrics", &[]).await.text;
        let counter = |name: &str| {
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if counter("callrecords_deliveries_abandoned_total") == 1 {
            assert!(
                counter("callrecords_deliveries_failed_total") >= 2,
                "retried before it was abandoned: {metrics}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The abandonment is counted before the worker removes the subscription in its next step.
    loop {
        let answer = app.graph("/subscriptions/rebound").await;
        if answer.status == 404 {
            answer.assert_error(404, "ResourceNotFound");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still there: {}", answer.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dns.lookups() >= 2, "every attempt resolves again: {}", dns.lookups());
    assert_eq!(receiver.connections(), 0, "nothing may reach the receiver");
    assert!(receiver.notifications().is_empty());
}
