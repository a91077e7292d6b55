//! `--auth local`: bearer tokens checked as Graph checks them (401 with `WWW-Authenticate`, 403
//! without the role), tenants kept apart on every endpoint, the local issuer's token endpoint,
//! discovery and JWKS, and key rotation.

use callrecords::auth::local::{self, TokenRequest, DEFAULT_AUDIENCE};
use callrecords::auth::{INGEST, PSTN_READ_ALL, READ_ALL};
use callrecords::store::TenantId;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::*;

const TENANT_A: &str = "11111111-1111-1111-1111-111111111111";
const TENANT_B: &str = "22222222-2222-2222-2222-222222222222";

async fn secured(backend: Backend) -> TestApp {
    TestApp::spawn_local_issuer(backend, DEFAULT_AUDIENCE).await
}

async fn token_for(app: &TestApp, tenant: &str, roles: &[&str]) -> String {
    token_with(app, tenant, roles, DEFAULT_AUDIENCE, 3600).await
}

async fn token_with(app: &TestApp, tenant: &str, roles: &[&str], audience: &str, lifetime_secs: i64) -> String {
    local::issue_token(
        app.store.as_ref(),
        &TokenRequest {
            tenant: TenantId::parse(tenant).unwrap(),
            app_id: "test-app".to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            audience: audience.to_owned(),
            lifetime_secs,
        },
    )
    .await
    .unwrap()
}

/// A token with claims of our choosing, signed with the store's current key (or `other_key`).
async fn crafted(app: &TestApp, claims: Value, other_key: Option<&str>) -> String {
    let key = app.store.signing_keys().await.unwrap().remove(0);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let pem = other_key.unwrap_or(&key.private_key_pem);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(tenant: &str) -> Value {
    json!({
        "aud": DEFAULT_AUDIENCE, "iss": format!("https://callrecords.local/{tenant}/v2.0"),
        "iat": now(), "nbf": now(), "exp": now() + 3600, "tid": tenant, "azp": "crafted", "roles": [READ_ALL]
    })
}

fn assert_unauthorized(answer: &Answer, message: &str) {
    let body = answer.assert_error(401, "InvalidAuthenticationToken");
    assert_eq!(body["error"]["message"], message, "{}", answer.text);
    let challenge = answer.header("www-authenticate").expect("a challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

both!(requests_without_a_valid_token_are_401_with_a_challenge);
async fn requests_without_a_valid_token_are_401_with_a_challenge(backend: Backend) {
    let app = secured(backend).await;
    let list = "/v1.0/communications/callRecords";
    assert_unauthorized(&app.get_with(list, &[]).await, "Access token is empty.");
    assert_unauthorized(
        &app.get_with(list, &[("authorization", "Basic dXNlcjpwYXNz")]).await,
        "Access token validation failure.",
    );
    assert_unauthorized(
        &app.get_with(list, &[("authorization", "Bearer not.a.token")]).await,
        "Access token validation failure.",
    );

    let good = claims(TENANT_A);
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 600);
    expired["nbf"] = json!(now() - 4200);
    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now() + 600);
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("api://someone-else");
    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/v2.0");
    let mut bad_tenant = good.clone();
    bad_tenant["tid"] = json!("not-a-guid");
    let stranger = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let stranger_pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&stranger, rsa::pkcs8::LineEnding::LF).unwrap();
    let mut tokens = vec![
        ("expired", crafted(&app, expired, None).await),
        ("not yet valid", crafted(&app, not_yet, None).await),
        ("wrong audience", crafted(&app, wrong_audience, None).await),
        ("wrong issuer", crafted(&app, wrong_issuer, None).await),
        ("tid not a GUID", crafted(&app, bad_tenant, None).await),
        (
            "signed by another key",
            crafted(&app, good.clone(), Some(&stranger_pem)).await,
        ),
    ];
    let valid = crafted(&app, good, None).await;
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims(TENANT_B).to_string(),
    );
    tokens.push((
        "payload swapped under a valid signature",
        format!("{head}.{forged_payload}.{signature}"),
    ));
    for (what, token) in tokens {
        let answer = app
            .get_with(list, &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        assert_unauthorized(&answer, "Access token validation failure.");
    }
    let answer = app
        .get_with(list, &[("authorization", &format!("Bearer {valid}"))])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // What needs no token: health, $metadata and the issuer's own documents.
    assert_eq!(app.get_with("/healthz", &[]).await.status, 200);
    assert_eq!(app.get_with("/v1.0/$metadata", &[]).await.status, 200);
    let jwks = app
        .get_with(&format!("/{TENANT_A}/discovery/v2.0/keys"), &[])
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}

both!(a_token_without_the_role_is_403);
async fn a_token_without_the_role_is_403(backend: Backend) {
    let mut app = secured(backend).await;
    let reader = token_for(&app, TENANT_A, &[READ_ALL]).await;
    let pstn_reader = token_for(&app, TENANT_A, &[PSTN_READ_ALL]).await;
    let writer = token_for(&app, TENANT_A, &[INGEST]).await;
    let mut delegated_claims = claims(TENANT_A);
    delegated_claims.as_object_mut().unwrap().remove("roles");
    delegated_claims["scp"] = json!("CallRecords.Read.All");
    let delegated = crafted(&app, delegated_claims, None).await;
    let functions =
        "/v1.0/communications/callRecords/microsoft.graph.callRecords.getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)";

    app.use_token(Some(&reader));
    assert_eq!(
        app.ingest_ndjson(&[record("r", "2024-01-01T00:00:00Z", 1, &["a"])])
            .await
            .status,
        403
    );
    assert_eq!(app.graph("/communications/callRecords").await.status, 200);
    assert_eq!(app.get_with(functions, &[]).await.status, 200);

    app.use_token(Some(&pstn_reader));
    app.graph("/communications/callRecords")
        .await
        .assert_error(403, "Forbidden");
    assert_eq!(app.get_with(functions, &[]).await.status, 200);

    app.use_token(Some(&writer));
    app.graph("/communications/callRecords")
        .await
        .assert_error(403, "Forbidden");
    app.ingest_ok(&[record("r", "2024-01-01T00:00:00Z", 1, &["a"])]).await;

    app.use_token(Some(&delegated));
    let body = app
        .graph("/communications/callRecords")
        .await
        .assert_error(403, "Forbidden");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
}

both!(the_log_functions_role_reads_the_log_functions_and_nothing_else);
async fn the_log_functions_role_reads_the_log_functions_and_nothing_else(backend: Backend) {
    let mut app = secured(backend).await;
    let reader = token_for(&app, TENANT_A, &[READ_ALL]).await;
    let pstn_reader = token_for(&app, TENANT_A, &[PSTN_READ_ALL]).await;
    let writer = token_for(&app, TENANT_A, &[INGEST]).await;
    // An id that spells a function's name: the role must follow what the path addresses, not
    // the words it contains.
    let lookalike = "getPstnCalls-4a1b7c9e-0d2f-4e6a-8b3c-5d7e9f1a2b3c";
    app.use_token(Some(&writer));
    app.ingest_ok(&[
        record(lookalike, "2024-01-01T00:00:00Z", 1, &["alice"]),
        record("r1", "2024-01-01T00:01:00Z", 1, &["alice"]),
    ])
    .await;
    app.ingest_kind_ok("pstnCalls", &[pstn_row("pstn-1", "2024-01-01T00:00:00Z")])
        .await;

    app.use_token(Some(&pstn_reader));
    for path in [
        format!("/communications/callRecords/{lookalike}"),
        format!("/communications/callRecords('{lookalike}')"),
        format!("/communications/callRecords/{lookalike}/sessions"),
        format!("/communications/callRecords/{lookalike}/sessions/{lookalike}-s0/segments"),
        format!("/communications/callRecords/{lookalike}/participants_v2"),
        format!("/communications/callRecords/{lookalike}/organizer_v2"),
        "/communications/callRecords/getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)/x".to_owned(),
        "/subscriptions/getPstnCalls".to_owned(),
    ] {
        app.graph(&path).await.assert_error(403, "Forbidden");
    }
    // Whether a record exists must not show: the same answer for one that does and one that
    // does not.
    for record_id in ["r1", "no-such-record"] {
        for tail in [
            "sessions/getpstncalls",
            "sessions/getDirectRoutingCalls",
            "participants_v2/getSmsLog",
        ] {
            let path = format!("/communications/callRecords/{record_id}/{tail}");
            let body = app.graph(&path).await.assert_error(403, "Forbidden");
            assert_eq!(
                body["error"]["message"], "Insufficient privileges to complete the operation.",
                "{path}"
            );
        }
    }

    // Either role reads the log functions; Graph's function pages list both.
    let functions = [
        "/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)",
        "/v1.0/communications/callRecords/microsoft.graph.callRecords.getDirectRoutingCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)",
        "/beta/communications/callRecords/getSmsLog(fromDateTime=2024-01-01,toDateTime=2024-01-02)",
    ];
    for token in [&pstn_reader, &reader] {
        app.use_token(Some(token));
        for path in functions {
            let answer = app.get_with(path, &[]).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        }
        let pstn = app.get_with(functions[0], &[]).await.json();
        assert_eq!(ids(pstn["value"].as_array().unwrap()), ["pstn-1"]);
    }
    // The reader reads the record with the lookalike id, in both key forms.
    for path in [
        format!("/communications/callRecords/{lookalike}"),
        format!("/communications/callRecords('{lookalike}')"),
    ] {
        let answer = app.graph(&path).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert_eq!(answer.json()["id"], lookalike);
    }
    assert_eq!(
        app.graph("/communications/callRecords/no-such-record/sessions/getpstncalls")
            .await
            .status,
        404
    );
}

both!(tenants_never_see_each_others_data);
async fn tenants_never_see_each_others_data(backend: Backend) {
    let mut app = secured(backend).await;
    let everything = [READ_ALL, PSTN_READ_ALL, INGEST];
    let a = token_for(&app, TENANT_A, &everything).await;
    let b = token_for(&app, TENANT_B, &everything).await;
    let receiver = Receiver::start().await;

    app.use_token(Some(&a));
    app.ingest_ok(&[record("shared-id", "2024-01-01T00:00:00Z", 2, &["alice"])])
        .await;
    app.ingest_ok(&[record("only-a", "2024-01-01T00:01:00Z", 1, &["alice"])])
        .await;
    app.ingest_kind_ok("pstnCalls", &[pstn_row("pstn-a", "2024-01-01T00:00:00Z")])
        .await;
    let subscription = app.subscribe(&receiver.url("/a"), "created").await;
    let subscription_id = subscription["id"].as_str().unwrap().to_owned();

    app.use_token(Some(&b));
    app.ingest_ok(&[record("shared-id", "2024-01-01T00:00:00Z", 1, &["bob"])])
        .await;

    // B sees its own record under the shared id and nothing of A's.
    let list = app.graph("/communications/callRecords").await.json();
    assert_eq!(ids(list["value"].as_array().unwrap()), ["shared-id"]);
    assert_eq!(app.graph("/communications/callRecords/$count").await.text, "1");
    let shared = app
        .graph("/communications/callRecords/shared-id?$expand=sessions,participants_v2")
        .await
        .json();
    assert_eq!(shared["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(shared["participants_v2"][0]["id"], "bob");
    let by_participant = app
        .graph("/communications/callRecords?$filter=participants_v2/any(p:p/id%20eq%20'alice')")
        .await
        .json();
    assert_eq!(by_participant["value"].as_array().unwrap().len(), 0);
    for path in [
        "/communications/callRecords/only-a",
        "/communications/callRecords/only-a/sessions",
        "/communications/callRecords/only-a/sessions/only-a-s0",
        "/communications/callRecords/only-a/sessions/only-a-s0/segments",
        "/communications/callRecords/only-a/participants_v2",
        "/communications/callRecords/only-a/participants_v2/alice",
        "/communications/callRecords/only-a/organizer_v2",
    ] {
        assert_eq!(app.graph(path).await.status, 404, "{path}");
    }
    let pstn = app
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)")
        .await
        .json();
    assert_eq!(pstn["value"].as_array().unwrap().len(), 0, "{pstn}");
    let subscriptions = app.graph("/subscriptions").await.json();
    assert_eq!(subscriptions["value"].as_array().unwrap().len(), 0);
    assert_eq!(
        app.graph(&format!("/subscriptions/{subscription_id}")).await.status,
        404
    );
    assert_eq!(
        app.send(
            reqwest::Method::DELETE,
            &format!("/v1.0/subscriptions/{subscription_id}"),
            "application/json",
            ""
        )
        .await
        .status,
        404
    );

    // A still sees exactly its own.
    app.use_token(Some(&a));
    let list = app.graph("/communications/callRecords").await.json();
    assert_eq!(ids(list["value"].as_array().unwrap()), ["shared-id", "only-a"]);
    let shared = app
        .graph("/communications/callRecords/shared-id?$expand=sessions")
        .await
        .json();
    assert_eq!(shared["sessions"].as_array().unwrap().len(), 2);
    let pstn = app
        .graph("/communications/callRecords/getPstnCalls(fromDateTime=2024-01-01,toDateTime=2024-01-02)")
        .await
        .json();
    assert_eq!(ids(pstn["value"].as_array().unwrap()), ["pstn-a"]);
    assert_eq!(
        app.graph(&format!("/subscriptions/{subscription_id}")).await.status,
        200
    );
}

both!(registered_apps_get_tokens_from_the_token_endpoint);
async fn registered_apps_get_tokens_from_the_token_endpoint(backend: Backend) {
    let app = secured(backend).await;
    let registered = local::add_app(
        app.store.as_ref(),
        &TenantId::parse(TENANT_A).unwrap(),
        "dashboard",
        &[READ_ALL.to_owned()],
    )
    .await
    .unwrap();
    let token_url = app.url(&format!("/{TENANT_A}/oauth2/v2.0/token"));
    let scope = format!("{DEFAULT_AUDIENCE}/.default");
    let ask = |secret: String, scope: String| {
        let client = reqwest::Client::new();
        let token_url = token_url.clone();
        let client_id = registered.client_id.clone();
        async move {
            client
                .post(token_url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", scope.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    let granted = ask(registered.client_secret.clone(), scope.clone()).await;
    assert_eq!(granted.status(), 200);
    let granted: Value = granted.json().await.unwrap();
    assert_eq!(granted["token_type"], "Bearer");
    let token = granted["access_token"].as_str().unwrap();
    let answer = app
        .get_with(
            "/v1.0/communications/callRecords",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let refused = ask("wrong".to_owned(), scope.clone()).await;
    assert_eq!(refused.status(), 401);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_client", "OAuth 2.0's error shape: {refused}");
    let bad_scope = ask(
        registered.client_secret.clone(),
        "https://example.com/.default".to_owned(),
    )
    .await;
    assert_eq!(bad_scope.status(), 400);
    assert_eq!(bad_scope.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // An app of tenant A does not exist in tenant B.
    let other_tenant = reqwest::Client::new()
        .post(app.url(&format!("/{TENANT_B}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", registered.client_id.as_str()),
            ("client_secret", registered.client_secret.as_str()),
            ("scope", scope.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(other_tenant.status(), 401);

    let discovery = app
        .get_with(&format!("/{TENANT_A}/v2.0/.well-known/openid-configuration"), &[])
        .await
        .json();
    assert_eq!(
        discovery["issuer"],
        format!("https://callrecords.local/{TENANT_A}/v2.0")
    );
    assert_eq!(discovery["token_endpoint"], token_url);
}

both!(tokens_of_a_rotated_key_keep_working_and_new_ones_work_at_once);
async fn tokens_of_a_rotated_key_keep_working_and_new_ones_work_at_once(backend: Backend) {
    let clock = callrecords::clock::ManualClock::starting_now();
    let app = TestApp::spawn_local_issuer_with_clock(backend, DEFAULT_AUDIENCE, clock.clone()).await;
    let before = token_for(&app, TENANT_A, &[READ_ALL]).await;
    let list = "/v1.0/communications/callRecords";
    assert_eq!(
        app.get_with(list, &[("authorization", &format!("Bearer {before}"))])
            .await
            .status,
        200
    );
    let new_kid = local::rotate_signing_key(app.store.as_ref()).await.unwrap();
    let after = token_for(&app, TENANT_A, &[READ_ALL]).await;
    let header = jsonwebtoken::decode_header(&after).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    // The server learns the new key when a token names it (its key cache refreshes at most once a second).
    clock.advance(std::time::Duration::from_millis(1100));
    for token in [&before, &after] {
        let answer = app
            .get_with(list, &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let jwks = app
        .get_with(&format!("/{TENANT_A}/discovery/v2.0/keys"), &[])
        .await
        .json();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "both keys verify during the overlap"
    );
}
