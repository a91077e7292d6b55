//! `microsoft.graph.subscription` as Graph serves it for call records, and the pure
//! rule that decides which change notification a stored record version gives (one at most).

use serde::{Deserialize, Serialize};

use super::primitives::DateTimeOffset;

/// A subscription as the API reads and writes it. Every property is written, null when unset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    pub(crate) id: String,
    pub(crate) resource: String,
    pub(crate) change_type: String,
    pub(crate) client_state: Option<String>,
    pub(crate) notification_url: String,
    pub(crate) notification_query_options: Option<String>,
    pub(crate) lifecycle_notification_url: Option<String>,
    pub(crate) expiration_date_time: DateTimeOffset,
    pub(crate) application_id: Option<String>,
    pub(crate) creator_id: Option<String>,
    pub(crate) include_resource_data: Option<bool>,
    pub(crate) latest_supported_tls_version: Option<String>,
    pub(crate) encryption_certificate: Option<String>,
    pub(crate) encryption_certificate_id: Option<String>,
    pub(crate) notification_url_app_id: Option<String>,
}

/// What a subscription listens to, in the form the stores index and the outbox planner reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionScope {
    pub created: bool,
    pub updated: bool,
    /// Participant ids of a filtered resource; `None` for every record of the tenant.
    pub participant_ids: Option<Vec<String>>,
}

/// The change a notification reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Created,
    Updated,
}

impl ChangeType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
        }
    }
}

impl SubscriptionScope {
    /// The only notification a stored version of a record gives this subscription:
    /// a record's first version is `created` when the subscription has `created`, else `updated`;
    /// later versions are `updated`, only for subscriptions that have `updated`.
    pub(crate) fn notification_for(&self, first_version: bool, record_participant_ids: &[&str]) -> Option<ChangeType> {
        if let Some(wanted) = &self.participant_ids {
            if !record_participant_ids.iter().any(|id| wanted.iter().any(|w| w == id)) {
                return None;
            }
        }
        match (first_version, self.created, self.updated) {
            (true, true, _) => Some(ChangeType::Created),
            (true, false, true) | (false, _, true) => Some(ChangeType::Updated),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(created: bool, updated: bool, ids: Option<&[&str]>) -> SubscriptionScope {
        SubscriptionScope {
            created,
            updated,
            participant_ids: ids.map(|ids| ids.iter().map(|id| (*id).to_owned()).collect()),
        }
    }

    #[test]
    fn one_notification_per_version() {
        let both = scope(true, true, None);
        assert_eq!(both.notification_for(true, &[]), Some(ChangeType::Created));
        assert_eq!(both.notification_for(false, &[]), Some(ChangeType::Updated));
        let created = scope(true, false, None);
        assert_eq!(created.notification_for(true, &[]), Some(ChangeType::Created));
        assert_eq!(created.notification_for(false, &[]), None);
        let updated = scope(false, true, None);
        assert_eq!(updated.notification_for(true, &[]), Some(ChangeType::Updated));
        assert_eq!(updated.notification_for(false, &[]), Some(ChangeType::Updated));
    }

    #[test]
    fn participant_filters_match_any_listed_participant() {
        let filtered = scope(true, true, Some(&["a", "b"]));
        assert_eq!(filtered.notification_for(true, &["x", "b"]), Some(ChangeType::Created));
        assert_eq!(filtered.notification_for(true, &["x"]), None);
    }
}
