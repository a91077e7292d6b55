//! List and get: filters, `$select`, `$expand`, Graph's envelope and headers, retention,
//! `Prefer` preferences.

use serde_json::{json, Value};

use crate::support::*;

async fn app_with_three_calls(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[
        record("c1", "2023-09-25T09:28:38Z", 1, &["alice", "bob"]),
        record("c2", "2023-09-25T09:29:00.5Z", 2, &["bob", "+5564981205182"]),
        record("c3", "2023-09-25T14:03:36Z", 1, &["carol"]),
    ])
    .await;
    app
}

async fn list_ids(app: &TestApp, query: &str) -> Vec<String> {
    let (items, _) = app
        .collect_pages(&format!("/communications/callRecords{query}"), &[])
        .await;
    ids(&items)
}

both!(start_date_time_filters_use_every_operator);
async fn start_date_time_filters_use_every_operator(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    for (filter, expected) in [
        (
            "startDateTime%20ge%202023-09-25T09:25:00Z%20and%20startDateTime%20lt%202023-09-25T09:30:00Z",
            vec!["c1", "c2"],
        ),
        ("startDateTime%20gt%202023-09-25T09:28:38Z", vec!["c2", "c3"]),
        ("startDateTime%20le%202023-09-25T09:29:00.5Z", vec!["c1", "c2"]),
        ("startDateTime%20lt%202023-09-25T09:29:00.5Z", vec!["c1"]),
        ("startDateTime%20ge%202023-09-25T11:29:00.5%2B02:00", vec!["c2", "c3"]),
        (
            "(startDateTime%20ge%202023-09-25T10:00:00Z)%20and%20(startDateTime%20lt%202023-09-25T09:00:00Z)",
            vec![],
        ),
    ] {
        assert_eq!(
            list_ids(&app, &format!("?$filter={filter}")).await,
            expected,
            "{filter}"
        );
    }
}

both!(participant_any_filter_alone_and_with_a_window);
async fn participant_any_filter_alone_and_with_a_window(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    assert_eq!(
        list_ids(&app, "?$filter=participants_v2/any(p:p/id%20eq%20'bob')").await,
        ["c1", "c2"]
    );
    assert_eq!(
        list_ids(&app, "?$filter=participants_v2/any(x:x/id%20eq%20'%2B5564981205182')").await,
        ["c2"]
    );
    assert_eq!(
        list_ids(
            &app,
            "?$filter=participants_v2/any(p:p/id%20eq%20'bob')%20and%20startDateTime%20ge%202023-09-25T09:29:00Z"
        )
        .await,
        ["c2"]
    );
    assert_eq!(
        list_ids(
            &app,
            "?$filter=participants_v2/any(p:p/id%20eq%20'bob')%20and%20participants_v2/any(p:p/id%20eq%20'alice')"
        )
        .await,
        ["c1"]
    );
    assert!(list_ids(&app, "?$filter=participants_v2/any(p:p/id%20eq%20'nobody')")
        .await
        .is_empty());
    assert_eq!(
        app.graph("/communications/callRecords/$count?$filter=participants_v2/any(p:p/id%20eq%20'bob')")
            .await
            .text,
        "2"
    );
}

both!(list_items_have_graph_shape_and_no_navigation_collections);
async fn list_items_have_graph_shape_and_no_navigation_collections(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let answer = app
        .graph_with("/communications/callRecords", &[("client-request-id", "my-id-1")])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
    );
    assert_eq!(answer.header("client-request-id"), Some("my-id-1"));
    assert_eq!(answer.header("odata-version"), Some("4.0"));
    assert!(answer.header("request-id").is_some_and(|id| id.len() == 36));
    let body = answer.json();
    let base = format!("http://{}/v1.0", app.addr);
    assert_eq!(
        body["@odata.context"],
        format!("{base}/$metadata#communications/callRecords")
    );
    let item = body["value"][0].as_object().unwrap();
    let keys: Vec<&str> = item.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "version",
            "type",
            "modalities",
            "lastModifiedDateTime",
            "startDateTime",
            "endDateTime",
            "joinWebUrl",
            "organizer",
            "participants",
            "organizer_v2@odata.context",
            "organizer_v2"
        ]
    );
    assert_eq!(
        item["organizer_v2@odata.context"],
        format!("{base}/$metadata#communications/callRecords('c1')/organizer_v2/$entity")
    );
    // Retired by Graph: served as Graph serves it now (tests/it/retired.rs).
    assert_eq!(item["organizer"], Value::Null);
    assert_eq!(item["participants"], serde_json::json!([]));
}

both!(select_projects_and_keeps_id);
async fn select_projects_and_keeps_id(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let body = app
        .graph("/communications/callRecords?$select=startDateTime,type")
        .await
        .json();
    assert_eq!(
        body["@odata.context"],
        format!(
            "http://{}/v1.0/$metadata#communications/callRecords(startDateTime,type)",
            app.addr
        )
    );
    assert_eq!(
        body["value"][0],
        json!({ "id": "c1", "type": "groupCall", "startDateTime": "2023-09-25T09:28:38Z" })
    );
    let with_organizer = app
        .graph("/communications/callRecords/c1?$select=id,organizer_v2")
        .await
        .json();
    assert_eq!(with_organizer["organizer_v2"]["id"], "alice");
}

both!(get_with_expand_writes_contexts_and_typed_values);
async fn get_with_expand_writes_contexts_and_typed_values(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let base = format!("http://{}/v1.0", app.addr);
    let got = app
        .graph("/communications/callRecords/c2?$expand=sessions($expand=segments),participants_v2")
        .await
        .json();
    assert_eq!(
        got["@odata.context"],
        format!("{base}/$metadata#communications/callRecords(sessions(segments()),participants_v2())/$entity")
    );
    assert_eq!(got["startDateTime"], "2023-09-25T09:29:00.5Z");
    let session = &got["sessions"][0];
    assert_eq!(
        session["caller"]["@odata.type"],
        "#microsoft.graph.callRecords.participantEndpoint"
    );
    assert_eq!(
        session["callee"]["@odata.type"],
        "#microsoft.graph.callRecords.serviceEndpoint"
    );
    assert_eq!(session["callee"]["userAgent"]["role"], "skypeForBusinessAudioVideoMcu");
    assert_eq!(
        ids(got["participants_v2"].as_array().unwrap()),
        ["bob", "+5564981205182"]
    );
    assert!(got.get("sessions@odata.nextLink").is_none());

    let plain = app.graph("/communications/callRecords/c2").await.json();
    assert_eq!(
        plain["@odata.context"],
        format!("{base}/$metadata#communications/callRecords/$entity")
    );
    assert!(plain.get("sessions").is_none() && plain.get("participants_v2").is_none());
    assert_eq!(plain["organizer_v2"]["id"], "bob");
}

both!(evolvable_enum_members_need_the_preference);
async fn evolvable_enum_members_need_the_preference(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let path = "/communications/callRecords/c1/sessions/c1-s0";
    let plain = app.graph(path).await;
    assert_eq!(
        plain.json()["caller"]["userAgent"]["productFamily"],
        "unknownFutureValue"
    );
    assert_eq!(plain.header("preference-applied"), None);

    let opted = app
        .graph_with(path, &[("Prefer", "include-unknown-enum-members")])
        .await;
    assert_eq!(
        opted.json()["caller"]["userAgent"]["productFamily"],
        "azureCommunicationServices"
    );
    assert_eq!(opted.header("preference-applied"), Some("include-unknown-enum-members"));

    // The record, its session list and its expansions are written from the stored text; they
    // must shape enums exactly as the single session above.
    for (path, pointer) in [
        (
            "/communications/callRecords/c1?$expand=sessions($expand=segments)",
            "/sessions/0/caller/userAgent/productFamily",
        ),
        (
            "/communications/callRecords/c1/sessions?$expand=segments",
            "/value/0/caller/userAgent/productFamily",
        ),
    ] {
        let plain = app.graph(path).await;
        assert_eq!(plain.json().pointer(pointer).unwrap(), "unknownFutureValue", "{path}");
        assert!(!plain.text.contains("\"azureCommunicationServices\""), "{path}");
        assert_eq!(plain.header("preference-applied"), None, "{path}");
        let opted = app
            .graph_with(path, &[("Prefer", "include-unknown-enum-members")])
            .await;
        assert_eq!(
            opted.json().pointer(pointer).unwrap(),
            "azureCommunicationServices",
            "{path}"
        );
        assert_eq!(
            opted.header("preference-applied"),
            Some("include-unknown-enum-members"),
            "{path}"
        );
    }
}

both!(an_expanded_organizer_survives_a_select_that_leaves_it_out);
async fn an_expanded_organizer_survives_a_select_that_leaves_it_out(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let got = app
        .graph("/communications/callRecords/c2?$select=version&$expand=organizer_v2")
        .await
        .json();
    assert_eq!(got["organizer_v2"]["id"], "bob");
    assert_eq!(got["version"], 1);
    assert!(got.get("type").is_none());
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    let annotation = keys.iter().position(|k| *k == "organizer_v2@odata.context").unwrap();
    assert_eq!(
        keys[annotation + 1],
        "organizer_v2",
        "the annotation comes just before what it annotates"
    );

    let listed = app
        .graph("/communications/callRecords?$select=version&$expand=organizer_v2")
        .await
        .json();
    for item in listed["value"].as_array().unwrap() {
        assert!(
            item["organizer_v2"].is_object() || item["organizer_v2"].is_null(),
            "{item}"
        );
        assert!(item.get("type").is_none());
    }
}

both!(omit_values_nulls_drops_nulls_and_keeps_empty_collections);
async fn omit_values_nulls_drops_nulls_and_keeps_empty_collections(backend: Backend) {
    let app = app_with_three_calls(backend).await;
    let answer = app
        .graph_with(
            "/communications/callRecords/c1?$expand=sessions($expand=segments)",
            &[("Prefer", "omit-values=nulls, odata.maxpagesize=5")],
        )
        .await;
    assert_eq!(
        answer.header("preference-applied"),
        Some("odata.maxpagesize=5,omit-values=nulls")
    );
    let text = answer.text.clone();
    assert!(!text.contains("null"), "{text}");
    let with_nulls = app.graph("/communications/callRecords/c1").await.json();
    assert_eq!(with_nulls["joinWebUrl"], "https://teams.microsoft.com/l/meetup-join/1");
    assert_eq!(with_nulls["organizer"], Value::Null);
}

both!(retention_hides_old_records_everywhere);
async fn retention_hides_old_records_everywhere(backend: Backend) {
    let app = TestApp::spawn_with(backend, settings_with_retention(30)).await;
    let recent = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    let recent = callrecords::model::DateTimeOffset::from_offset_date_time(recent).to_string();
    app.ingest_ok(&[
        record("old", "2020-02-25T18:52:21Z", 1, &["a"]),
        record("new", &recent, 1, &["a"]),
    ])
    .await;

    assert_eq!(list_ids(&app, "").await, ["new"]);
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "1");
    for path in [
        "/communications/callRecords/old",
        "/communications/callRecords/old/sessions",
        "/communications/callRecords/old/participants_v2",
        "/communications/callRecords/old/organizer_v2",
    ] {
        let body = app.graph(path).await.assert_error(404, "NotFound");
        assert_eq!(
            body["error"]["message"],
            "Could not find the requested call record. Records about calls or online meetings that started more than 30 days ago are not available.",
            "{path}"
        );
    }
}

both!(metadata_and_health);
async fn metadata_and_health(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let metadata = app.graph("/$metadata").await;
    assert_eq!(metadata.status, 200);
    assert!(metadata.header("content-type").unwrap().starts_with("application/xml"));
    assert!(metadata
        .text
        .contains("<Schema Namespace=\"microsoft.graph.callRecords\""));
    let health = app.get_with("/healthz", &[]).await;
    assert_eq!((health.status, health.json()), (200, json!({ "status": "ok" })));
}

both!(public_base_url_is_used_for_links);
async fn public_base_url_is_used_for_links(backend: Backend) {
    let mut settings = settings_with_retention(0);
    settings.public_base_url = Some("https://calls.example.com/".into());
    let app = TestApp::spawn_with(backend, settings).await;
    app.ingest_ok(&minute_records("r", 61)).await;
    let body = app.graph("/communications/callRecords").await.json();
    assert_eq!(
        body["@odata.context"],
        "https://calls.example.com/v1.0/$metadata#communications/callRecords"
    );
    assert!(body["@odata.nextLink"]
        .as_str()
        .unwrap()
        .starts_with("https://calls.example.com/v1.0/communications/callRecords?$skiptoken="));
}

both!(measures_that_are_no_number_are_taken_and_served_as_graph_spells_them);
async fn measures_that_are_no_number_are_taken_and_served_as_graph_spells_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut value = record("odd", "2024-01-01T00:00:00Z", 1, &["a"]);
    let stream = &mut value["sessions"][0]["segments"][0]["media"][0]["streams"][0];
    stream["averageAudioDegradation"] = json!("NaN");
    stream["averagePacketLossRate"] = json!("INF");
    stream["averageRatioOfConcealedSamples"] = json!("-INF");
    value["sessions"][0]["segments"][0]["media"][0]["callerDevice"] =
        json!({ "micGlitchRate": "NaN", "speakerGlitchRate": 2 });
    app.ingest_ok(&[value]).await;
    let answer = app
        .graph("/communications/callRecords/odd/sessions?$expand=segments")
        .await;
    for sent in [
        r#""averageAudioDegradation":"NaN""#,
        r#""averagePacketLossRate":"INF""#,
        r#""averageRatioOfConcealedSamples":"-INF""#,
        r#""micGlitchRate":"NaN""#,
        r#""speakerGlitchRate":2"#,
    ] {
        assert!(answer.text.contains(sent), "{sent}: {}", answer.text);
    }

    let mut wrong = record("wrong", "2024-01-01T00:00:00Z", 1, &["a"]);
    wrong["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!("PT0.01S");
    wrong["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averagePacketLossRate"] = json!("Infinity");
    let report = app.ingest_ndjson(&[wrong]).await.json();
    assert_eq!(report["rejected"], 1, "{report}");
    let error = report["errors"][0].to_string();
    assert!(
        error.contains("averagePacketLossRate") && error.contains("\\\"NaN\\\""),
        "{error}"
    );
}
