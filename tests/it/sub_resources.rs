//! Sessions, segments, participants and the organizer addressed directly, by key segment and in
//! OData parentheses.

use serde_json::json;

use crate::support::*;

async fn app_with_record(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[record("r1", "2024-01-01T00:00:00Z", 2, &["alice", "+14255550123"])])
        .await;
    app
}

both!(a_key_as_segment_and_in_parentheses_address_the_same_resource);
async fn a_key_as_segment_and_in_parentheses_address_the_same_resource(backend: Backend) {
    let app = app_with_record(backend).await;
    for path in [
        "/communications/callRecords/r1/sessions/r1-s1",
        "/communications/callRecords('r1')/sessions('r1-s1')",
        "/Communications/CallRecords/r1/Sessions/r1-s1",
    ] {
        let body = app.graph(path).await.json();
        assert_eq!(body["id"], "r1-s1", "{path}");
        assert!(body.get("segments").is_none());
        assert_eq!(
            body["@odata.context"],
            format!(
                "http://{}/v1.0/$metadata#communications/callRecords('r1')/sessions/$entity",
                app.addr
            )
        );
    }
}

both!(segments_list_get_and_count);
async fn segments_list_get_and_count(backend: Backend) {
    let app = app_with_record(backend).await;
    let list = app
        .graph("/communications/callRecords/r1/sessions/r1-s0/segments")
        .await
        .json();
    assert_eq!(ids(list["value"].as_array().unwrap()), ["r1-s0-g0"]);
    assert_eq!(
        list["@odata.context"],
        format!(
            "http://{}/v1.0/$metadata#communications/callRecords('r1')/sessions('r1-s0')/segments",
            app.addr
        )
    );
    let one = app
        .graph("/communications/callRecords/r1/sessions/r1-s0/segments/r1-s0-g0?$select=startDateTime")
        .await
        .json();
    assert_eq!(one["id"], "r1-s0-g0");
    assert!(one.get("media").is_none());
    assert_eq!(
        app.graph("/communications/callRecords/r1/sessions/r1-s0/segments/$count")
            .await
            .text,
        "1"
    );
    let session = app
        .graph("/communications/callRecords/r1/sessions/r1-s0?$expand=segments")
        .await
        .json();
    assert_eq!(session["segments"][0]["media"][0]["label"], "main-audio");
}

both!(participants_and_organizer);
async fn participants_and_organizer(backend: Backend) {
    let app = app_with_record(backend).await;
    let phone = app
        .graph("/communications/callRecords/r1/participants_v2/%2B14255550123")
        .await
        .json();
    assert_eq!(phone["id"], "+14255550123");
    let raw_plus = app
        .graph("/communications/callRecords/r1/participants_v2/+14255550123")
        .await
        .json();
    assert_eq!(raw_plus["id"], "+14255550123");
    let organizer = app.graph("/communications/callRecords/r1/organizer_v2").await.json();
    assert_eq!(organizer["id"], "alice");
    assert_eq!(
        organizer["@odata.context"],
        format!(
            "http://{}/v1.0/$metadata#communications/callRecords('r1')/organizer_v2/$entity",
            app.addr
        )
    );
    assert_eq!(
        app.graph("/communications/callRecords/r1/participants_v2/$count")
            .await
            .text,
        "2"
    );
    let selected = app
        .graph("/communications/callRecords/r1/participants_v2?$select=id")
        .await
        .json();
    assert_eq!(selected["value"], json!([{ "id": "alice" }, { "id": "+14255550123" }]));
}

both!(unknown_children_are_404_resource_not_found);
async fn unknown_children_are_404_resource_not_found(backend: Backend) {
    let app = app_with_record(backend).await;
    for path in [
        "/communications/callRecords/r1/sessions/nope",
        "/communications/callRecords/r1/sessions/r1-s0/segments/nope",
        "/communications/callRecords/r1/sessions/nope/segments",
        "/communications/callRecords/r1/participants_v2/nope",
    ] {
        let body = app.graph(path).await.assert_error(404, "NotFound");
        assert_eq!(body["error"]["message"], "Resource not found.", "{path}");
    }
    let mut no_organizer = record("lonely", "2024-01-01T00:00:00Z", 1, &[]);
    no_organizer.as_object_mut().unwrap().remove("organizer_v2");
    app.ingest_ok(&[no_organizer]).await;
    app.graph("/communications/callRecords/lonely/organizer_v2")
        .await
        .assert_error(404, "NotFound");
}
