//! Every error is a Graph OData error body with the right status: bad query options, unknown
//! paths, write methods, and garbage sent to every route.

use crate::support::*;

both!(unknown_segments_under_v1_are_400_and_elsewhere_404);
async fn unknown_segments_under_v1_are_400_and_elsewhere_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.graph("/communications/calls").await.assert_error(400, "BadRequest");
    assert_eq!(body["error"]["message"], "Resource not found for the segment 'calls'.");
    app.graph("/communications/callRecords/r1/nope")
        .await
        .assert_error(400, "BadRequest");
    app.graph("/nothing").await.assert_error(400, "BadRequest");
    app.get_with("/nope", &[]).await.assert_error(404, "NotFound");
    app.get_with("/v2.0/communications/callRecords", &[])
        .await
        .assert_error(404, "NotFound");
}

both!(unknown_record_is_404_with_graphs_message_and_client_request_id);
async fn unknown_record_is_404_with_graphs_message_and_client_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let answer = app
        .graph_with(
            "/communications/callRecords/00000000-0000-0000-0000-000000000001",
            &[("client-request-id", "abc")],
        )
        .await;
    let body = answer.assert_error(404, "NotFound");
    assert_eq!(
        body["error"]["message"],
        "Could not find the requested call record. Records about calls or online meetings that started more than 30 days ago are not available."
    );
    assert_eq!(body["error"]["innerError"]["client-request-id"], "abc");
}

both!(write_methods_are_405_with_allow_get);
async fn write_methods_are_405_with_allow_get(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
    ] {
        for path in [
            "/v1.0/communications/callRecords",
            "/v1.0/communications/callRecords/r1",
            "/v1.0/communications/callRecords/r1/sessions",
        ] {
            let answer = app.send(method.clone(), path, "application/json", "{}").await;
            answer.assert_error(405, "MethodNotAllowed");
            assert_eq!(answer.header("allow"), Some("GET"), "{method} {path}");
        }
    }
}

both!(bad_query_options_are_400_saying_what_is_wrong);
async fn bad_query_options_are_400_saying_what_is_wrong(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    let cases = [
        ("/communications/callRecords?$filter=startDateTime%20eq%202024-01-01T00:00:00Z", "$filter", "'eq'"),
        ("/communications/callRecords?$filter=version%20gt%201", "$filter", "version"),
        ("/communications/callRecords?$filter=startDateTime%20ge%20'2024-01-01T00:00:00Z'", "$filter", "unquoted"),
        ("/communications/callRecords?$filter=startDateTime%20ge%202024-01-01T00:00:00Z%20or%20startDateTime%20lt%202023-01-01T00:00:00Z", "$filter", "or"),
        ("/communications/callRecords?$filter=(startDateTime%20ge%202024-01-01T00:00:00Z", "$filter", ""),
        ("/communications/callRecords?$select=nope", "$select", "nope"),
        ("/communications/callRecords?$expand=sessions", "$expand", "sessions"),
        ("/communications/callRecords/r1?$expand=sessions($filter=id%20eq%20'x')", "$expand", ""),
        ("/communications/callRecords/r1?$expand=segments", "$expand", "segments"),
        ("/communications/callRecords?$top=0", "$top", ""),
        ("/communications/callRecords?$top=abc", "$top", ""),
        ("/communications/callRecords?$orderby=startDateTime", "$orderby", "$orderby"),
        ("/communications/callRecords?$search=x", "$search", "$search"),
        ("/communications/callRecords?$skip=10", "$skip", "$skip"),
        ("/communications/callRecords?$bogus=1", "query", "$bogus"),
        ("/communications/callRecords?$top=1&$top=2", "$top", "more than once"),
        ("/communications/callRecords/r1?$top=1", "$top", "$top"),
        ("/communications/callRecords/r1/sessions?$expand=media", "$expand", "media"),
    ];
    for (path, target, mentions) in cases {
        let body = app.graph(path).await.assert_error(400, "BadRequest");
        assert_eq!(body["error"]["target"], target, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{path}: {message}");
    }
}

both!(garbage_on_every_route_gets_an_odata_error_and_the_server_lives);
async fn garbage_on_every_route_gets_an_odata_error_and_the_server_lives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 1, &["a"])]).await;
    let garbage_paths = [
        "/v1.0/communications/callRecords/%FF%FE",
        "/v1.0/communications/callRecords('unterminated",
        "/v1.0/communications/callRecords?$filter=%00%01",
        "/v1.0/communications/callRecords?$filter=((((((((((((((((((((((((((((((((((((((((x",
        "/v1.0/communications/callRecords?$skiptoken=%FF",
        "/v1.0/communications/callRecords?$expand=sessions((((((((",
        "/v1.0/communications/callRecords/r1/sessions?$skiptoken=eyJ2IjoxfQ",
        "/v1.0/$metadata/x",
    ];
    for path in garbage_paths {
        let answer = app.get_with(path, &[]).await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{path}: {}",
            answer.status
        );
        answer.assert_error(
            answer.status,
            if answer.status == 400 { "BadRequest" } else { "NotFound" },
        );
    }
    let bodies: [&[u8]; 4] = [b"\xff\xfe\x00", b"{\"id\": ", b"[1,2,3]", b"{}"];
    for body in bodies {
        for content_type in ["application/json", "application/x-ndjson"] {
            let answer = app
                .send(
                    reqwest::Method::POST,
                    "/ingest/callRecords",
                    content_type,
                    body.to_vec(),
                )
                .await;
            if content_type == "application/json" {
                answer.assert_error(400, "BadRequest");
            } else {
                assert_eq!(answer.status, 200, "{}", answer.text);
                assert_eq!(answer.json()["rejected"], 1);
            }
        }
    }
    let still_there = app.graph("/communications/callRecords/r1").await;
    assert_eq!(still_there.status, 200);
}
