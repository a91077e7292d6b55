//! The properties Graph retired (`organizer`, `participants`, `participantEndpoint.identity`):
//! served as Graph serves them now by default, derived from their successors with
//! `--derive-retired-properties`, and still accepted by ingest.

use callrecords::api::ApiSettings;
use callrecords::store::TenantId;
use serde_json::{json, Value};

use crate::support::*;

fn deriving() -> ApiSettings {
    ApiSettings {
        derive_retired_properties: true,
        ..settings_with_retention(0)
    }
}

/// A record whose caller has an `associatedIdentity`, and a session that names the retired
/// properties as an old sender would.
fn with_identities(id: &str, participants: &[&str]) -> Value {
    let mut value = record(id, "2024-01-01T00:00:00Z", 2, participants);
    value["sessions"][0]["caller"]["associatedIdentity"] = json!({ "id": "u-a", "displayName": "Ann" });
    value["sessions"][0]["segments"][0]["caller"] = value["sessions"][0]["caller"].clone();
    value["sessions"][1]["caller"]["identity"] = json!({ "user": { "id": "u-old", "displayName": "Old" } });
    value
}

fn endpoint_identities(session: &Value) -> Vec<Value> {
    let mut found = vec![session["caller"]["identity"].clone()];
    for segment in session["segments"].as_array().into_iter().flatten() {
        found.push(segment["caller"]["identity"].clone());
    }
    found
}

both!(retired_properties_are_null_or_empty_everywhere_by_default);
async fn retired_properties_are_null_or_empty_everywhere_by_default(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ingest_ok(&[with_identities("r", &["alice", "bob"])]).await;
    for path in [
        "/communications/callRecords/r",
        "/communications/callRecords/r?$select=id,organizer,participants",
        "/communications/callRecords/r?$expand=sessions($expand=segments)",
    ] {
        let got = app.graph(path).await.json();
        assert_eq!(got["organizer"], Value::Null, "{path}");
        assert_eq!(got["participants"], json!([]), "{path}");
        if !path.contains("$select") {
            assert_eq!(got["organizer_v2"]["id"], "alice", "{path}");
        }
        for session in got["sessions"].as_array().into_iter().flatten() {
            assert!(
                endpoint_identities(session).iter().all(Value::is_null),
                "{path}: {session}"
            );
        }
    }
    let listed = app.graph("/communications/callRecords").await.json();
    assert_eq!(listed["value"][0]["organizer"], Value::Null);
    assert_eq!(listed["value"][0]["participants"], json!([]));

    let sessions = app
        .graph("/communications/callRecords/r/sessions?$expand=segments")
        .await
        .json();
    for session in sessions["value"].as_array().unwrap() {
        assert!(endpoint_identities(session).iter().all(Value::is_null), "{session}");
    }
    let session = app
        .graph("/communications/callRecords/r/sessions/r-s0?$expand=segments")
        .await
        .json();
    assert!(endpoint_identities(&session).iter().all(Value::is_null), "{session}");
    // The successor keeps what was sent.
    assert_eq!(session["caller"]["associatedIdentity"]["displayName"], "Ann");
    let segment = app
        .graph("/communications/callRecords/r/sessions/r-s0/segments/r-s0-g0")
        .await
        .json();
    assert_eq!(segment["caller"]["identity"], Value::Null);
    // An identity sent only in the retired form moved to associatedIdentity.
    let old = app.graph("/communications/callRecords/r/sessions/r-s1").await.json();
    assert_eq!(old["caller"]["identity"], Value::Null);
    assert_eq!(old["caller"]["associatedIdentity"]["id"], "u-old");
}

both!(the_flag_derives_the_retired_properties_from_their_successors);
async fn the_flag_derives_the_retired_properties_from_their_successors(backend: Backend) {
    let app = TestApp::spawn_with(backend, deriving()).await;
    let crowd: Vec<String> = (0..140).map(|n| format!("p{n:03}")).collect();
    let crowd: Vec<&str> = crowd.iter().map(String::as_str).collect();
    app.ingest_ok(&[
        with_identities("r", &["alice", "bob"]),
        record("crowd", "2024-01-02T00:00:00Z", 1, &crowd),
    ])
    .await;
    let got = app
        .graph("/communications/callRecords/r?$expand=sessions($expand=segments)")
        .await
        .json();
    assert_eq!(got["organizer"]["user"]["displayName"], "User alice");
    let participants: Vec<&str> = got["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(participants, ["alice", "bob"]);
    let identities = endpoint_identities(&got["sessions"][0]);
    assert!(
        identities
            .iter()
            .all(|identity| identity["user"]["displayName"] == "Ann"),
        "{identities:?}"
    );
    let session = app.graph("/communications/callRecords/r/sessions/r-s1").await.json();
    assert_eq!(session["caller"]["identity"]["user"]["id"], "u-old");

    let listed = app
        .graph("/communications/callRecords?$select=id,participants")
        .await
        .json();
    let lengths: Vec<usize> = listed["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["participants"].as_array().unwrap().len())
        .collect();
    // Capped at 130 entries as Graph capped them.
    assert_eq!(lengths, [2, 130]);
}

both!(documents_stored_with_derived_values_are_served_by_the_same_rule);
async fn documents_stored_with_derived_values_are_served_by_the_same_rule(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let record =
        callrecords::model::parse_call_record(with_identities("legacy", &["alice"]).to_string().as_bytes()).unwrap();
    let mut prepared = callrecords::ingest::prepare(record, callrecords::model::DateTimeOffset::now());
    // What an earlier build stored: the retired members filled.
    let filled = r#""organizer":{"application":null,"device":null,"user":{"id":"alice","displayName":"User alice"}},"participants":[{"application":null,"device":null,"user":{"id":"alice","displayName":"User alice"}}]"#;
    let before = prepared.document.len();
    prepared.document = prepared
        .document
        .replace(r#""organizer":null,"participants":[]"#, filled);
    assert_ne!(prepared.document.len(), before);
    prepared.organizer_at += (prepared.document.len() - before) as i64;
    for (_, session) in &mut prepared.sessions {
        *session = session.replace(
            r#""identity":null"#,
            r#""identity":{"application":null,"device":null,"user":{"id":"u-a","displayName":"Ann"}}"#,
        );
    }
    app.store
        .upsert_call_records(
            &TenantId::default_tenant(),
            &[prepared],
            callrecords::clock::system().timestamp(),
        )
        .await
        .unwrap();
    let got = app
        .graph("/communications/callRecords/legacy?$expand=sessions")
        .await
        .json();
    assert_eq!(got["organizer"], Value::Null);
    assert_eq!(got["participants"], json!([]));
    assert_eq!(got["organizer_v2"]["id"], "alice");
    for session in got["sessions"].as_array().unwrap() {
        assert_eq!(session["caller"]["identity"], Value::Null, "{session}");
    }
    let session = app
        .graph("/communications/callRecords/legacy/sessions/legacy-s0")
        .await
        .json();
    assert_eq!(session["caller"]["identity"], Value::Null);
}

both!(ingest_still_takes_the_retired_forms);
async fn ingest_still_takes_the_retired_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut old = record("old", "2024-01-01T00:00:00Z", 1, &[]);
    let object = old.as_object_mut().unwrap();
    object.remove("organizer_v2");
    object.remove("participants_v2");
    object.insert(
        "organizer".into(),
        json!({ "user": { "id": "u9", "displayName": "Bo" } }),
    );
    object.insert(
        "participants".into(),
        json!([{ "user": { "id": "u9" } }, { "user": { "id": "u8" } }]),
    );
    app.ingest_ok(&[old]).await;
    let got = app
        .graph("/communications/callRecords/old?$expand=participants_v2")
        .await
        .json();
    assert_eq!(got["organizer"], Value::Null);
    assert_eq!(got["organizer_v2"]["identity"]["user"]["displayName"], "Bo");
    assert_eq!(ids(got["participants_v2"].as_array().unwrap()), ["u9", "u8"]);
}
