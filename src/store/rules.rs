//! The storage rules every backend applies, as pure code: Graph's version rule over a batch, the
//! change notifications a batch plans, the subscription quota and where an outbox row is
//! delivered. A backend runs what these return and maps rows; it decides none of it itself. The
//! SQL they share is in `sql`.

use std::collections::HashMap;

use crate::model::{ChangeType, SubscriptionScope};

use super::{ClaimedNotification, PreparedRecord, StoreError, Timestamp, UpsertOutcome};

/// What a batch of call records does, by Graph's version rule applied in order, as if record by
/// record: a later copy of an id in the same batch is judged against the earlier one.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UpsertPlan {
    /// One outcome per record of the batch, in its order.
    pub(crate) outcomes: Vec<UpsertOutcome>,
    /// The records to write, by index into the batch, in batch order: each accepted id's last
    /// accepted version (an earlier accepted copy is superseded within the batch).
    pub(crate) writes: Vec<usize>,
    /// Stored ids that a write replaces, with the start they are stored under, so the old row
    /// and its children can be removed first (a new version may start at another time).
    pub(crate) replaces: Vec<(String, i64)>,
}

/// Plans a batch against the `(version, start)` of the ids already stored.
pub(crate) fn plan_upsert(stored: &HashMap<String, (i64, i64)>, batch: &[PreparedRecord]) -> UpsertPlan {
    let mut version_of: HashMap<&str, i64> = stored
        .iter()
        .map(|(id, (version, _))| (id.as_str(), *version))
        .collect();
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    for (index, record) in batch.iter().enumerate() {
        let outcome = match version_of.get(record.id.as_str()) {
            // A rewrite (the personal-data scrub) replaces the very version it read, never a
            // newer one that was stored since.
            Some(&version) if record.rewrite && version == record.version => UpsertOutcome::Replaced,
            Some(_) if record.rewrite => UpsertOutcome::Ignored,
            Some(&version) if version >= record.version => UpsertOutcome::Ignored,
            Some(_) => UpsertOutcome::Replaced,
            None if record.rewrite => UpsertOutcome::Ignored,
            None => UpsertOutcome::Stored,
        };
        if outcome != UpsertOutcome::Ignored {
            version_of.insert(&record.id, record.version);
            accepted.insert(&record.id, index);
        }
        outcomes.push(outcome);
    }
    let mut writes: Vec<usize> = accepted.values().copied().collect();
    writes.sort_unstable();
    let mut replaces: Vec<(String, i64)> = writes
        .iter()
        .filter_map(|&index| {
            let id = &batch[index].id;
            stored.get(id).map(|(_, start)| (id.clone(), *start))
        })
        .collect();
    replaces.sort();
    UpsertPlan {
        outcomes,
        writes,
        replaces,
    }
}

/// Refuses a record that names one session or participant twice, as a unique key would: in
/// parts nothing else would, and a read by id could not tell the two apart. Ingest refuses such
/// records first; this keeps a store from holding one whatever writes to it.
pub(crate) fn refuse_repeated_ids(record: &PreparedRecord) -> Result<(), StoreError> {
    for (what, children) in [("session", &record.sessions), ("participant", &record.participants)] {
        let mut seen = std::collections::HashSet::with_capacity(children.len());
        if let Some((id, _)) = children.iter().find(|(id, _)| !seen.insert(id.as_str())) {
            return Err(StoreError::Other(anyhow::anyhow!(
                "call record {} names {what} {id} twice",
                record.id
            )));
        }
    }
    Ok(())
}

/// One change notification to queue: `change` of `record_id` for `subscription_id`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlannedNotification<'a> {
    pub(crate) subscription_id: &'a str,
    pub(crate) change: ChangeType,
    pub(crate) record_id: &'a str,
}

/// The change notifications a planned batch gives, in batch order and, for one record, in the
/// order of `scopes` (the tenant's unexpired subscriptions, by id). Every accepted version
/// notifies, even one a later copy in the same batch superseded: each was stored, if only for an
/// instant, and a sender that sends versions one by one would have caused the same.
pub(crate) fn plan_notifications<'a>(
    scopes: &'a [(String, SubscriptionScope)],
    batch: &'a [PreparedRecord],
    outcomes: &[UpsertOutcome],
) -> Vec<PlannedNotification<'a>> {
    let mut planned = Vec::new();
    if scopes.is_empty() {
        return planned;
    }
    for (record, &outcome) in batch.iter().zip(outcomes) {
        if record.rewrite {
            // The same version, only without personal data: nothing for a subscriber to fetch.
            continue;
        }
        let first_version = match outcome {
            UpsertOutcome::Stored => true,
            UpsertOutcome::Replaced => false,
            UpsertOutcome::Ignored => continue,
        };
        let participant_ids: Vec<&str> = record.participants.iter().map(|(id, _)| id.as_str()).collect();
        for (subscription_id, scope) in scopes {
            if let Some(change) = scope.notification_for(first_version, &participant_ids) {
                planned.push(PlannedNotification {
                    subscription_id,
                    change,
                    record_id: &record.id,
                });
            }
        }
    }
    planned
}

/// Whether a tenant with `unexpired` subscriptions may create another under `quota`.
pub(crate) fn quota_allows(unexpired: i64, quota: u32) -> bool {
    unexpired < i64::from(quota)
}

/// An outbox row as claimed, before its delivery target is known.
#[derive(Debug)]
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) tenant_id: String,
    pub(crate) subscription_id: String,
    pub(crate) event: String,
    pub(crate) call_record_id: Option<String>,
    /// A lifecycle row's own target; `None` for a change row.
    pub(crate) target_url: Option<String>,
    pub(crate) client_state: Option<String>,
    pub(crate) expiration: Option<Timestamp>,
    pub(crate) created: Timestamp,
    pub(crate) first_attempt: Option<Timestamp>,
    pub(crate) attempts: i64,
}

impl ClaimedRow {
    /// Reads the outbox columns of a claim's row (named as in the table).
    pub(crate) fn from_row<R: sqlx::Row>(row: &R) -> Result<Self, sqlx::Error>
    where
        for<'r> &'r str: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            subscription_id: row.try_get("subscription_id")?,
            event: row.try_get("event")?,
            call_record_id: row.try_get("call_record_id")?,
            target_url: row.try_get("target_url")?,
            client_state: row.try_get("client_state")?,
            expiration: instant_or_none(row.try_get("expiration_ticks")?),
            created: Timestamp::from_ticks(row.try_get("created_ticks")?),
            first_attempt: instant_or_none(row.try_get("first_attempt_ticks")?),
            attempts: row.try_get("attempts")?,
        })
    }

    /// Where the row goes. A lifecycle row carries its own target; a change row goes to its
    /// subscription's current `notificationUrl` with its current `clientState`, so a renewed or
    /// re-pointed subscription gets its backlog at its new address. `subscription` is the
    /// subscription's `(expiration, stored document)`, read with the claim; `None` when it is
    /// gone, and then so is the row's delivery.
    pub(crate) fn deliver_to(
        self,
        subscription: Option<(Timestamp, &str)>,
    ) -> Result<Option<ClaimedNotification>, StoreError> {
        let (url, client_state, subscription_expiration) = match self.target_url {
            Some(url) => (
                url,
                self.client_state,
                self.expiration.unwrap_or(Timestamp::from_ticks(0)),
            ),
            None => {
                let Some((expiration, document)) = subscription else {
                    return Ok(None);
                };
                let parsed: crate::model::Subscription = serde_json::from_str(document)
                    .map_err(|error| StoreError::Other(anyhow::anyhow!("stored subscription is not valid: {error}")))?;
                (parsed.notification_url, parsed.client_state, expiration)
            }
        };
        Ok(Some(ClaimedNotification {
            id: self.id,
            tenant_id: self.tenant_id,
            subscription_id: self.subscription_id,
            event: self.event,
            call_record_id: self.call_record_id,
            url,
            client_state,
            subscription_expiration,
            created: self.created,
            first_attempt: self.first_attempt,
            attempts: self.attempts,
        }))
    }
}

/// An optional instant column, read generically as the integer it is stored as.
pub(crate) fn instant_or_none(ticks: Option<i64>) -> Option<Timestamp> {
    ticks.map(Timestamp::from_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::record;
    use UpsertOutcome::{Ignored, Replaced, Stored};

    #[test]
    fn the_version_rule_judges_copies_in_a_batch_against_each_other() {
        let stored = HashMap::from([("a".to_owned(), (2, 100)), ("b".to_owned(), (1, 200))]);
        let batch = [
            record("a", 2, "2024-03-01T00:00:00Z", &[], &[]),
            record("b", 3, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 1, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 1, "2024-03-01T00:00:00Z", &[], &[]),
            record("b", 4, "2024-03-01T00:00:00Z", &[], &[]),
            record("c", 2, "2024-03-01T00:00:00Z", &[], &[]),
            record("a", 1, "2024-03-01T00:00:00Z", &[], &[]),
        ];
        let plan = plan_upsert(&stored, &batch);
        assert_eq!(
            plan.outcomes,
            [Ignored, Replaced, Stored, Ignored, Replaced, Replaced, Ignored]
        );
        assert_eq!(plan.writes, [4, 5], "b's and c's last accepted versions");
        assert_eq!(plan.replaces, [("b".to_owned(), 200)], "c was not stored before");
        assert_eq!(
            plan_upsert(&HashMap::new(), &[]),
            UpsertPlan {
                outcomes: vec![],
                writes: vec![],
                replaces: vec![]
            }
        );
    }

    #[test]
    fn every_accepted_version_notifies_the_subscriptions_that_want_it() {
        let all = SubscriptionScope {
            created: true,
            updated: true,
            participant_ids: None,
        };
        let updates_of_p2 = SubscriptionScope {
            created: false,
            updated: true,
            participant_ids: Some(vec!["p2".to_owned()]),
        };
        let scopes = [("all".to_owned(), all), ("p2".to_owned(), updates_of_p2)];
        let batch = [
            record("a", 1, "2024-03-01T00:00:00Z", &[], &["p1"]),
            record("a", 2, "2024-03-01T00:00:00Z", &[], &["p2"]),
            record("a", 2, "2024-03-01T00:00:00Z", &[], &["p2"]),
        ];
        let planned = plan_notifications(&scopes, &batch, &[Stored, Replaced, Ignored]);
        let seen: Vec<(&str, &str)> = planned.iter().map(|p| (p.subscription_id, p.change.as_str())).collect();
        assert_eq!(seen, [("all", "created"), ("all", "updated"), ("p2", "updated")]);
        assert!(plan_notifications(&[], &batch, &[Stored, Replaced, Ignored]).is_empty());
    }

    #[test]
    fn the_quota_counts_unexpired_subscriptions() {
        assert!(quota_allows(0, 1));
        assert!(quota_allows(2, 3));
        assert!(!quota_allows(3, 3));
        assert!(!quota_allows(0, 0));
    }
}
