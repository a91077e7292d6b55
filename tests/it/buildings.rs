//! CQD building data: a tenant's file taken whole or refused with its bad lines (the active one
//! left in place), served back by subnet and by address, kept apart per tenant.

use callrecords::auth::local::{self, TokenRequest, DEFAULT_AUDIENCE};
use callrecords::auth::{INGEST, READ_ALL};
use callrecords::store::TenantId;
use serde_json::Value;

use crate::support::*;

const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";
const TENANT_B: &str = "22222222-2222-2222-2222-222222222222";

const FILE: &str = "\
10.0.0.0,HQ wired,24,Contoso HQ,Contoso,Office,Main,Redmond,98052,US,WA,NOAM,1,0,0
10.0.0.0,Campus,16,Contoso Campus,Contoso,Campus,,Redmond,98052,US,WA,NOAM,1,1,0
192.168.0.0\tmistyped
";

async fn token(app: &TestApp, tenant: &str, roles: &[&str]) -> String {
    local::issue_token(
        app.store.as_ref(),
        &TokenRequest {
            tenant: TenantId::parse(tenant).unwrap(),
            app_id: "test-app".to_owned(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            lifetime_secs: 3600,
        },
    )
    .await
    .unwrap()
}

async fn put(app: &TestApp, token: &str, body: &str) -> Answer {
    let request = reqwest::Client::new()
        .put(app.url("/ingest/buildings"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_owned());
    let answer = request.send().await.unwrap();
    Answer {
        status: answer.status().as_u16(),
        headers: answer.headers().clone(),
        text: answer.text().await.unwrap(),
    }
}

async fn get(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .get(app.url(&format!("/analytics/buildings{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

both!(a_building_file_is_taken_whole_or_not_at_all);
async fn a_building_file_is_taken_whole_or_not_at_all(backend: Backend) {
    let app = TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await;
    let (writer, reader) = (
        token(&app, TENANT_A, &[INGEST]).await,
        token(&app, TENANT_A, &[READ_ALL]).await,
    );

    let (status, none) = get(&app, &reader, "").await;
    assert_eq!((status, none["error"]["code"].as_str()), (404, Some("NotFound")));

    // The third line has two columns: nothing is taken.
    let refused = put(&app, &writer, FILE).await;
    let error = refused.assert_error(400, "BadRequest");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 3: 1 columns"), "{message}");
    assert_eq!(error["error"]["details"][0]["target"], "line 3");
    assert_eq!(get(&app, &reader, "").await.0, 404);

    let good: String = FILE.lines().take(2).map(|line| format!("{line}\n")).collect();
    let taken = put(&app, &writer, &good).await;
    assert_eq!(taken.status, 200, "{}", taken.text);
    assert_eq!(taken.json()["subnets"], 2);
    let (status, file) = get(&app, &reader, "").await;
    assert_eq!(status, 200);
    assert_eq!(file["subnets"], 2);
    assert_eq!(file["value"][0]["networkIp"], "10.0.0.0");
    assert_eq!(file["value"][0]["networkRange"], 24);
    assert_eq!(file["value"][1]["buildingName"], "Contoso Campus");
    assert_eq!(file["value"][1]["expressRoute"], true);

    // A bad file later leaves the good one active.
    assert_eq!(put(&app, &writer, "10.0.0.1,x,24,,,,,,,,,,1,0,0\n").await.status, 400);
    let (_, by_address) = get(&app, &reader, "?address=10.0.0.42").await;
    assert_eq!(by_address["value"].as_array().unwrap().len(), 1);
    assert_eq!(by_address["value"][0]["networkName"], "HQ wired", "the longest prefix");
    let (_, campus) = get(&app, &reader, "?address=10.0.7.1").await;
    assert_eq!(campus["value"][0]["networkName"], "Campus");
    let (_, outside) = get(&app, &reader, "?address=172.16.0.1").await;
    assert_eq!(outside["value"], serde_json::json!([]));
    let (status, bad) = get(&app, &reader, "?address=somewhere").await;
    assert_eq!((status, bad["error"]["target"].as_str()), (400, Some("address")));

    // A file past the limit is refused before it is read whole.
    let huge = "10.0.0.0,x,24,,,,,,,,,,1,0,0\n".repeat(600_000);
    assert_eq!(put(&app, &writer, &huge).await.status, 413);

    // Another tenant sees nothing of it; roles are checked.
    let other = token(&app, TENANT_B, &[READ_ALL]).await;
    assert_eq!(get(&app, &other, "").await.0, 404);
    assert_eq!(put(&app, &reader, &good).await.status, 403, "reading is not writing");
    assert_eq!(get(&app, &writer, "").await.0, 403, "writing is not reading");
}

#[tokio::test]
async fn the_command_takes_a_file_or_names_its_bad_lines() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("buildings.tsv");
    std::fs::write(&good, "10.1.0.0\tLab\t16\tLab\t\t\t\t\t\t\t\t\t1\t0\t0\n").unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "10.1.0.0,Lab,99,Lab,,,,,,,,,1,0,0\n").unwrap();
    let run = |file: &std::path::Path| {
        std::process::Command::new(BIN)
            .args(["buildings", "import"])
            .arg(file)
            .args(["--tenant", TENANT_A, "--db", &database.url])
            .output()
            .unwrap()
    };
    let output = run(&good);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 subnets"));
    let output = run(&bad);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("line 1") && said.contains("NetworkRange"), "{said}");
}
