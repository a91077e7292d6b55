//! The rules of call-records subscriptions: what a create or update may say,
//! the validation handshake with the receiver, and the quota.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use reqwest::dns::{Name, Resolve};
use serde::Deserialize;

use super::resolve::{is_private, NonPublicAddress};
use super::Notifier;
use crate::model::{self, DateTimeOffset, Subscription, SubscriptionScope};
use crate::query;
use crate::store::{StoreError, StoredSubscription, TenantId, Timestamp};

/// Graph's limit for call-record subscriptions: at most 4,230 minutes ahead.
pub(crate) const MAX_EXPIRATION_MINUTES: i64 = 4230;
/// Graph's limit of call-record subscriptions per tenant.
pub(crate) const MAX_SUBSCRIPTIONS_PER_TENANT: u32 = 100;
const MAX_CLIENT_STATE_CHARS: usize = 128;
const TLS_VERSIONS: &[&str] = &["v1_0", "v1_1", "v1_2", "v1_3"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubscriptionErrorKind {
    /// The request says something Graph does not accept for call records.
    InvalidRequest,
    /// The receiver did not answer the handshake correctly.
    ValidationError,
    /// The receiver did not answer the handshake in time.
    ValidationTimeout,
    /// The tenant has its quota of subscriptions.
    QuotaExceeded,
    /// No such (unexpired) subscription.
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscriptionError {
    #[error("{message}")]
    Rejected {
        kind: SubscriptionErrorKind,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn rejected(kind: SubscriptionErrorKind, message: impl Into<String>) -> SubscriptionError {
    SubscriptionError::Rejected {
        kind,
        message: message.into(),
    }
}

fn invalid(message: impl Into<String>) -> SubscriptionError {
    rejected(SubscriptionErrorKind::InvalidRequest, message)
}

/// The body of a create or update: the writable properties of `microsoft.graph.subscription`.
/// Read-only ones (`id`, `applicationId`, `creatorId`) are accepted and ignored, as the SDKs may
/// send back an object they read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionInput {
    #[serde(default)]
    pub(crate) change_type: Option<String>,
    #[serde(default)]
    pub(crate) notification_url: Option<String>,
    #[serde(default)]
    pub(crate) resource: Option<String>,
    #[serde(default)]
    pub(crate) expiration_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) client_state: Option<String>,
    #[serde(default)]
    pub(crate) lifecycle_notification_url: Option<String>,
    #[serde(default)]
    pub(crate) include_resource_data: Option<bool>,
    #[serde(default)]
    pub(crate) encryption_certificate: Option<String>,
    #[serde(default)]
    pub(crate) encryption_certificate_id: Option<String>,
    #[serde(default)]
    pub(crate) latest_supported_tls_version: Option<String>,
    #[serde(default)]
    pub(crate) notification_url_app_id: Option<String>,
    #[serde(default)]
    pub(crate) notification_query_options: Option<String>,
    // Read-only properties a client may send back from a subscription it read: accepted so the
    // body parses, never used (the server sets them).
    #[serde(default, rename = "id")]
    _id: Option<String>,
    #[serde(default, rename = "applicationId")]
    _application_id: Option<String>,
    #[serde(default, rename = "creatorId")]
    _creator_id: Option<String>,
}

/// Parses a request body, refusing undeclared properties with the path and reason.
pub(crate) fn parse_input(json: &[u8]) -> Result<SubscriptionInput, SubscriptionError> {
    model::parse_document(json).map_err(|error| {
        invalid(format!(
            "The subscription is not valid: {}: {}",
            error.path, error.reason
        ))
    })
}

/// The participant ids of a resource's filter, or None for every record; refuses anything else.
fn parse_resource(resource: &str) -> Result<Option<Vec<String>>, SubscriptionError> {
    let unsupported = || {
        invalid(format!(
            "Resource '{resource}' is not supported. Call-records subscriptions take /communications/callRecords, \
             optionally with ?$filter=participants/any(p:p/id eq '…')."
        ))
    };
    let path_and_query = resource.trim().trim_start_matches('/');
    let (path, query_text) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    if !path.eq_ignore_ascii_case("communications/callRecords") {
        return Err(unsupported());
    }
    if query_text.is_empty() {
        return Ok(None);
    }
    let options = query::parse_query_string(query_text).map_err(|error| invalid(error.message))?;
    options
        .ensure_only(&[query::QueryOption::Filter])
        .map_err(|error| invalid(error.message))?;
    let filter = options.filter.as_deref().ok_or_else(unsupported)?;
    query::parse_subscription_filter(filter)
        .map(Some)
        .map_err(|error| invalid(error.message))
}

fn parse_change_type(text: &str) -> Result<(bool, bool), SubscriptionError> {
    let mut created = false;
    let mut updated = false;
    for part in text.split(',').map(str::trim) {
        match part {
            "created" => created = true,
            "updated" => updated = true,
            other => {
                return Err(invalid(format!(
                    "changeType '{other}' is not supported for call records; use created, updated or both (comma-separated)."
                )))
            }
        }
    }
    Ok((created, updated))
}

fn non_public(property: &str) -> SubscriptionError {
    invalid(format!(
        "{property} must point at a public address; loopback and private targets are refused."
    ))
}

/// Checks a receiver URL: absolute http(s); https and a public address unless private targets
/// are allowed (local development). A host name is resolved through the webhook client's own
/// resolver, which refuses private answers here and again at every connection (the answer may
/// change in between); an IP literal never reaches a resolver, so it is checked here.
async fn check_target(notifier: &Notifier, property: &str, url: &str) -> Result<reqwest::Url, SubscriptionError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| invalid(format!("{property} '{url}' is not an absolute URL.")))?;
    let allow = notifier.settings.allow_private_targets;
    match parsed.scheme() {
        "https" => {}
        "http" if allow => {}
        _ => return Err(invalid(format!("{property} must be an https URL."))),
    }
    if !allow {
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(address) = host.parse::<IpAddr>() {
            if is_private(address) {
                return Err(non_public(property));
            }
        } else if host.eq_ignore_ascii_case("localhost") {
            return Err(non_public(property));
        } else {
            let unresolvable = || invalid(format!("{property}: the host '{host}' cannot be resolved."));
            let name: Name = host.parse().map_err(|_| unresolvable())?;
            if let Err(error) = notifier.resolver.resolve(name).await {
                return Err(match NonPublicAddress::cause_of(&*error) {
                    Some(_) => non_public(property),
                    None => unresolvable(),
                });
            }
        }
    }
    Ok(parsed)
}

/// The validation handshake: POST `?validationToken=…` and expect the token back,
/// as text, with 200, within the timeout. `property` names the URL in a refusal.
pub(crate) async fn validate_endpoint(
    notifier: &Notifier,
    property: &str,
    url: &reqwest::Url,
) -> Result<(), SubscriptionError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut target = url.clone();
    target.query_pairs_mut().append_pair("validationToken", &token);
    let not_ok = || {
        rejected(
            SubscriptionErrorKind::ValidationError,
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
        )
    };
    let response = notifier
        .client
        .post(target)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .timeout(notifier.settings.validation_timeout)
        .send()
        .await
        .map_err(|error| {
            if error.is_timeout() {
                rejected(
                    SubscriptionErrorKind::ValidationTimeout,
                    "Subscription validation request timed out.",
                )
            } else if NonPublicAddress::cause_of(&error).is_some() {
                // The host passed the check, then resolved to a private address when we
                // connected: the subscriber should hear why, not that the endpoint failed.
                invalid(format!(
                    "{property} must point at a public address; its host resolved to a loopback or private address when the validation request was sent."
                ))
            } else {
                not_ok()
            }
        })?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(not_ok());
    }
    let body = response.text().await.map_err(|error| {
        if error.is_timeout() {
            rejected(
                SubscriptionErrorKind::ValidationTimeout,
                "Subscription validation request timed out.",
            )
        } else {
            not_ok()
        }
    })?;
    let body = body
        .strip_suffix('\n')
        .map(|b| b.strip_suffix('\r').unwrap_or(b))
        .unwrap_or(&body);
    if body != token {
        return Err(rejected(
            SubscriptionErrorKind::ValidationError,
            "Subscription validation request failed. Response must exactly match validationToken query parameter.",
        ));
    }
    Ok(())
}

fn check_expiration(expiration: DateTimeOffset, now: DateTimeOffset) -> Result<(), SubscriptionError> {
    let limit = Timestamp::from(now) + Duration::from_secs(MAX_EXPIRATION_MINUTES.unsigned_abs() * 60);
    if expiration <= now {
        return Err(invalid("Subscription expiration must be in the future."));
    }
    if Timestamp::from(expiration) > limit {
        return Err(invalid(format!(
            "Subscription expiration can only be {MAX_EXPIRATION_MINUTES} minutes in the future."
        )));
    }
    Ok(())
}

fn check_common(input: &SubscriptionInput) -> Result<(), SubscriptionError> {
    if input.include_resource_data == Some(true) {
        return Err(invalid(
            "Rich notifications (includeResourceData) are not available for call records.",
        ));
    }
    if input.notification_query_options.is_some() {
        return Err(invalid(
            "notificationQueryOptions is supported only for Universal Print, not for call records.",
        ));
    }
    if let Some(client_state) = &input.client_state {
        if client_state.chars().count() > MAX_CLIENT_STATE_CHARS {
            return Err(invalid(format!(
                "clientState must be at most {MAX_CLIENT_STATE_CHARS} characters."
            )));
        }
    }
    if let Some(version) = &input.latest_supported_tls_version {
        if !TLS_VERSIONS.contains(&version.as_str()) {
            return Err(invalid(format!(
                "latestSupportedTlsVersion must be one of {}.",
                TLS_VERSIONS.join(", ")
            )));
        }
    }
    Ok(())
}

fn stored(subscription: &Subscription, scope: SubscriptionScope) -> StoredSubscription {
    StoredSubscription {
        id: subscription.id.clone(),
        expiration: Timestamp::from(subscription.expiration_date_time),
        scope,
        document: model::to_json(subscription),
    }
}

fn scope_of(subscription: &Subscription) -> Result<SubscriptionScope, SubscriptionError> {
    let (created, updated) = parse_change_type(&subscription.change_type)?;
    Ok(SubscriptionScope {
        created,
        updated,
        participant_ids: parse_resource(&subscription.resource)?,
    })
}

fn from_stored(stored: &StoredSubscription) -> Result<Subscription, SubscriptionError> {
    serde_json::from_str(&stored.document).map_err(|error| {
        SubscriptionError::Store(StoreError::Other(anyhow::anyhow!(
            "stored subscription is not valid: {error}"
        )))
    })
}

/// Creates a subscription after the handshake with its receiver(s).
pub(crate) async fn create(
    notifier: &Notifier,
    tenant: &TenantId,
    input: SubscriptionInput,
    application_id: Option<String>,
) -> Result<Subscription, SubscriptionError> {
    let now = notifier.clock.now();
    let missing = |name: &str| invalid(format!("The property '{name}' is required to create a subscription."));
    let resource = input.resource.clone().ok_or_else(|| missing("resource"))?;
    let change_type = input.change_type.clone().ok_or_else(|| missing("changeType"))?;
    let notification_url = input
        .notification_url
        .clone()
        .ok_or_else(|| missing("notificationUrl"))?;
    let expiration = input
        .expiration_date_time
        .ok_or_else(|| missing("expirationDateTime"))?;
    check_common(&input)?;
    check_expiration(expiration, now)?;
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource,
        change_type,
        client_state: input.client_state,
        notification_url,
        notification_query_options: None,
        lifecycle_notification_url: input.lifecycle_notification_url,
        expiration_date_time: expiration,
        application_id,
        creator_id: None,
        include_resource_data: input.include_resource_data,
        latest_supported_tls_version: Some(input.latest_supported_tls_version.unwrap_or_else(|| "v1_2".to_owned())),
        encryption_certificate: input.encryption_certificate,
        encryption_certificate_id: input.encryption_certificate_id,
        notification_url_app_id: input.notification_url_app_id,
    };
    let scope = scope_of(&subscription)?;
    let notification_target = check_target(notifier, "notificationUrl", &subscription.notification_url).await?;
    let lifecycle_target = match &subscription.lifecycle_notification_url {
        Some(url) => Some(check_target(notifier, "lifecycleNotificationUrl", url).await?),
        None => None,
    };
    validate_endpoint(notifier, "notificationUrl", &notification_target).await?;
    if let Some(target) = &lifecycle_target {
        validate_endpoint(notifier, "lifecycleNotificationUrl", target).await?;
    }
    if !notifier
        .store
        .create_subscription(
            tenant,
            &stored(&subscription, scope),
            MAX_SUBSCRIPTIONS_PER_TENANT,
            Timestamp::from(now),
        )
        .await?
    {
        return Err(rejected(
            SubscriptionErrorKind::QuotaExceeded,
            "Subscription quota exceeded for resource communications/callRecords.",
        ));
    }
    Ok(subscription)
}

pub(crate) async fn get(notifier: &Notifier, tenant: &TenantId, id: &str) -> Result<Subscription, SubscriptionError> {
    let stored = notifier
        .store
        .get_subscription(tenant, id, notifier.clock.timestamp())
        .await?
        .ok_or_else(not_found)?;
    from_stored(&stored)
}

pub(crate) async fn list(notifier: &Notifier, tenant: &TenantId) -> Result<Vec<Subscription>, SubscriptionError> {
    let stored = notifier
        .store
        .list_subscriptions(tenant, notifier.clock.timestamp())
        .await?;
    stored.iter().map(from_stored).collect()
}

fn not_found() -> SubscriptionError {
    rejected(SubscriptionErrorKind::NotFound, "The object was not found.")
}

/// Renews or changes a subscription. A changed notificationUrl is validated again; the
/// lifecycle URL can be set only at creation (Graph's subscription resource).
pub(crate) async fn update(
    notifier: &Notifier,
    tenant: &TenantId,
    id: &str,
    input: SubscriptionInput,
) -> Result<Subscription, SubscriptionError> {
    let mut subscription = get(notifier, tenant, id).await?;
    check_common(&input)?;
    if input.lifecycle_notification_url.is_some() {
        return Err(invalid(
            "lifecycleNotificationUrl can only be set when the subscription is created.",
        ));
    }
    for (name, given) in [("resource", &input.resource), ("changeType", &input.change_type)] {
        if given.is_some() {
            return Err(invalid(format!(
                "{name} cannot be changed; create a new subscription instead."
            )));
        }
    }
    if let Some(expiration) = input.expiration_date_time {
        check_expiration(expiration, notifier.clock.now())?;
        subscription.expiration_date_time = expiration;
    }
    if let Some(url) = input.notification_url {
        if url != subscription.notification_url {
            let target = check_target(notifier, "notificationUrl", &url).await?;
            validate_endpoint(notifier, "notificationUrl", &target).await?;
            subscription.notification_url = url;
        }
    }
    if input.client_state.is_some() {
        subscription.client_state = input.client_state;
    }
    if input.latest_supported_tls_version.is_some() {
        subscription.latest_supported_tls_version = input.latest_supported_tls_version;
    }
    if input.notification_url_app_id.is_some() {
        subscription.notification_url_app_id = input.notification_url_app_id;
    }
    let scope = scope_of(&subscription)?;
    if !notifier
        .store
        .replace_subscription(tenant, &stored(&subscription, scope))
        .await?
    {
        return Err(not_found());
    }
    Ok(subscription)
}

pub(crate) async fn delete(notifier: &Notifier, tenant: &TenantId, id: &str) -> Result<(), SubscriptionError> {
    if notifier.store.delete_subscription(tenant, id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// `POST /subscriptions/{id}/reauthorize`: nothing to renew here but the reminder clock.
pub(crate) async fn reauthorize(notifier: &Notifier, tenant: &TenantId, id: &str) -> Result<(), SubscriptionError> {
    let subscription = get(notifier, tenant, id).await?;
    let scope = scope_of(&subscription)?;
    notifier
        .store
        .replace_subscription(tenant, &stored(&subscription, scope))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_graph_accepts_for_call_records() {
        assert_eq!(parse_resource("/communications/callRecords").unwrap(), None);
        assert_eq!(parse_resource("communications/callRecords").unwrap(), None);
        assert_eq!(
            parse_resource("/communications/callRecords?$filter=participants/any(p:p/id eq 'a' or p/id eq 'b')")
                .unwrap(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        for bad in [
            "/communications/calls",
            "/users",
            "/communications/callRecords?$filter=startDateTime ge 2024-01-01T00:00:00Z",
            "/communications/callRecords?$top=1",
        ] {
            assert!(parse_resource(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn change_types() {
        assert_eq!(parse_change_type("created,updated").unwrap(), (true, true));
        assert_eq!(parse_change_type("updated").unwrap(), (false, true));
        assert!(parse_change_type("deleted").is_err());
        assert!(parse_change_type("").is_err());
    }
}
