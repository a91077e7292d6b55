//! `--auth oidc`: a server that trusts an external OpenID Connect issuer. The issuer here is a
//! second callrecords server in `--auth local` mode, reached through its real discovery document
//! and JWKS over HTTP, as an Entra ID tenant would be.

use callrecords::api::AuthMode;
use callrecords::auth::local::{self, TokenRequest, DEFAULT_AUDIENCE, ISSUER_TEMPLATE};
use callrecords::auth::READ_ALL;
use callrecords::store::TenantId;

use crate::support::*;

const TENANT: &str = "44444444-4444-4444-4444-444444444444";
const AUDIENCE: &str = "api://callrecords-test";

async fn issuer(backend: Backend) -> TestApp {
    TestApp::spawn_local_issuer(backend, AUDIENCE).await
}

async fn relying_party(backend: Backend, issuer_template: &str, discovery_url: String) -> TestApp {
    TestApp::spawn_with(
        backend,
        settings_with_auth(AuthMode::Oidc {
            issuer: issuer_template.to_owned(),
            audience: AUDIENCE.to_owned(),
            discovery_url: Some(discovery_url),
        }),
    )
    .await
}

fn discovery_of(issuer: &TestApp) -> String {
    issuer.url(&format!("/{TENANT}/v2.0/.well-known/openid-configuration"))
}

async fn token_of(issuer: &TestApp, audience: &str) -> String {
    local::issue_token(
        issuer.store.as_ref(),
        &TokenRequest {
            tenant: TenantId::parse(TENANT).unwrap(),
            app_id: "oidc-client".to_owned(),
            roles: vec![READ_ALL.to_owned()],
            audience: audience.to_owned(),
            lifetime_secs: 600,
        },
    )
    .await
    .unwrap()
}

async fn list_with(app: &TestApp, token: &str) -> Answer {
    app.graph_with(
        "/communications/callRecords",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
}

both!(tokens_of_the_external_issuer_are_accepted_and_others_are_not);
async fn tokens_of_the_external_issuer_are_accepted_and_others_are_not(backend: Backend) {
    let idp = issuer(backend).await;
    let app = relying_party(backend, ISSUER_TEMPLATE, discovery_of(&idp)).await;

    let answer = list_with(&app, &token_of(&idp, AUDIENCE).await).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let wrong_audience = list_with(&app, &token_of(&idp, DEFAULT_AUDIENCE).await).await;
    wrong_audience.assert_error(401, "InvalidAuthenticationToken");

    // A token of another issuer with the same claims: its key is not in the trusted JWKS.
    let stranger = issuer(backend).await;
    let foreign = list_with(&app, &token_of(&stranger, AUDIENCE).await).await;
    foreign.assert_error(401, "InvalidAuthenticationToken");
    assert!(foreign
        .header("www-authenticate")
        .unwrap()
        .contains("unknown signing key"));

    let none = app.graph("/communications/callRecords").await;
    none.assert_error(401, "InvalidAuthenticationToken");

    // The relying party is not an issuer itself.
    let own_token_endpoint = app
        .send(
            reqwest::Method::POST,
            &format!("/{TENANT}/oauth2/v2.0/token"),
            "application/x-www-form-urlencoded",
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(own_token_endpoint.status, 404);
}

both!(a_rotated_issuer_key_is_picked_up_without_a_restart);
async fn a_rotated_issuer_key_is_picked_up_without_a_restart(backend: Backend) {
    let idp = issuer(backend).await;
    let app = relying_party(backend, ISSUER_TEMPLATE, discovery_of(&idp)).await;
    let before = token_of(&idp, AUDIENCE).await;
    assert_eq!(list_with(&app, &before).await.status, 200);

    local::rotate_signing_key(idp.store.as_ref()).await.unwrap();
    let after = token_of(&idp, AUDIENCE).await;
    assert_ne!(
        jsonwebtoken::decode_header(&before).unwrap().kid,
        jsonwebtoken::decode_header(&after).unwrap().kid
    );
    // The relying party reloads the JWKS at most every few seconds; within ten the new key works.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = list_with(&app, &after).await;
        if answer.status == 200 {
            break;
        }
        answer.assert_error(401, "InvalidAuthenticationToken");
        assert!(std::time::Instant::now() < deadline, "the new key was never accepted");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(
        list_with(&app, &before).await.status,
        200,
        "the old key is still published"
    );
}

both!(an_unreachable_or_mismatched_issuer_refuses_tokens_but_the_server_runs);
async fn an_unreachable_or_mismatched_issuer_refuses_tokens_but_the_server_runs(backend: Backend) {
    let idp = issuer(backend).await;
    let token = token_of(&idp, AUDIENCE).await;

    // Nothing listens there: the server starts, answers /healthz, and refuses tokens it cannot check.
    let unreachable = relying_party(
        backend,
        ISSUER_TEMPLATE,
        "http://127.0.0.1:9/.well-known/openid-configuration".to_owned(),
    )
    .await;
    assert_eq!(unreachable.get_with("/healthz", &[]).await.status, 200);
    let refused = list_with(&unreachable, &token).await;
    refused.assert_error(401, "InvalidAuthenticationToken");

    // The discovery document names another issuer than --issuer: its keys are not trusted.
    let mismatched = relying_party(backend, "https://login.example.com/{tenantid}/v2.0", discovery_of(&idp)).await;
    let refused = list_with(&mismatched, &token).await;
    refused.assert_error(401, "InvalidAuthenticationToken");
    assert!(refused.header("www-authenticate").unwrap().contains("names the issuer"));
}
