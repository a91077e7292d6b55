//! The personal-data scrub: records older than `ScrubPolicy::after` lose what identifies people
//! (IP and MAC addresses, names, user principal names, device names), as CQD removes them
//! after 30 days, while their quality data and the streams' classification stay.
//!
//! A pass runs with each retention purge (`crate::retention`). It rewrites each record that
//! still has such values, tenant by tenant from where the last pass stopped (the analytics rows
//! keep nothing personal but user ids): the record is read whole, scrubbed and stored again as
//! the same version (`PreparedRecord::rewrite`), which replaces only that version and notifies
//! nobody.
//! Ids are kept: the Graph surface is addressed by them (`participants_v2/any(...)`, paths).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::store::codec::PartKind;
use crate::store::{RecordCursor, RecordSelection, Store, StoreResult, TenantId};

/// Members whose values identify a person, cleared (set to null) wherever they appear.
const PERSONAL_MEMBERS: &[&str] = &[
    "ipAddress",
    "reflexiveIPAddress",
    "relayIPAddress",
    "macAddress",
    "basicServiceSetIdentifier",
    "displayName",
    "userPrincipalName",
    "captureDeviceName",
    "renderDeviceName",
];

/// Where `name` is an endpoint's (a device or person), it is personal too.
const NAMED_ENDPOINT: &str = "#microsoft.graph.callRecords.participantEndpoint";

/// The sync-state entry (per tenant) holding the start time up to which records are scrubbed.
const SCRUBBED_BEFORE: &str = "personal_data_scrubbed_before";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubPolicy {
    /// Records that started longer ago than this are scrubbed.
    pub after: Duration,
    /// Records rewritten per store transaction.
    pub batch: u32,
}

impl ScrubPolicy {
    pub fn after_days(days: u32) -> Self {
        Self {
            after: Duration::from_secs(u64::from(days) * 86_400),
            batch: 50,
        }
    }
}

/// Clears every personal value in `value`; true when it changed anything.
pub(crate) fn scrub(value: &mut Value) -> bool {
    match value {
        Value::Object(object) => scrub_object(object),
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| scrub(item) | changed),
        _ => false,
    }
}

fn scrub_object(object: &mut Map<String, Value>) -> bool {
    let endpoint = object.get("@odata.type").and_then(Value::as_str) == Some(NAMED_ENDPOINT);
    let mut changed = false;
    for (key, member) in object.iter_mut() {
        let personal = PERSONAL_MEMBERS.contains(&key.as_str()) || (endpoint && key == "name");
        if personal {
            if !member.is_null() {
                *member = Value::Null;
                changed = true;
            }
        } else {
            changed |= scrub(member);
        }
    }
    changed
}

/// Every child of a record as JSON, through `read(after)`.
async fn all_children<F, Fut>(read: F) -> StoreResult<Vec<Value>>
where
    F: FnMut(Option<i64>) -> Fut,
    Fut: std::future::Future<Output = StoreResult<Vec<crate::store::StoredChild>>>,
{
    crate::store::all_children(read)
        .await?
        .iter()
        .map(|child| {
            serde_json::from_str(&child.document).map_err(|error| {
                crate::store::StoreError::Other(anyhow::anyhow!("a stored document does not parse: {error}"))
            })
        })
        .collect()
}

/// One pass over every tenant; returns how many records were rewritten.
pub async fn scrub_pass(store: &dyn Store, policy: &ScrubPolicy, now: Timestamp) -> StoreResult<u64> {
    let before = now - policy.after;
    let mut rewritten = 0;
    let tenants: Vec<TenantId> = store
        .stats()
        .await?
        .call_records_by_tenant
        .into_iter()
        .map(|(tenant, _)| tenant)
        .collect();
    for tenant in tenants {
        rewritten += scrub_tenant(store, &tenant, policy, before, now).await?;
    }
    Ok(rewritten)
}

async fn scrub_tenant(
    store: &dyn Store,
    tenant: &TenantId,
    policy: &ScrubPolicy,
    before: Timestamp,
    now: Timestamp,
) -> StoreResult<u64> {
    let done_before = store
        .sync_value(tenant, SCRUBBED_BEFORE)
        .await?
        .and_then(|text| text.parse::<i64>().ok())
        .map(Timestamp::from_ticks);
    let mut selection = RecordSelection::default();
    if let Some(done) = done_before {
        if done >= before {
            return Ok(0);
        }
        selection.start_at_or_after(done);
    }
    selection.start_before(before);
    let mut cursor: Option<RecordCursor> = None;
    let mut rewritten = 0;
    loop {
        let page = store
            .list_call_records(tenant, &selection, cursor.as_ref(), policy.batch)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = Some(RecordCursor {
            start: last.start,
            id: last.id.clone(),
        });
        let mut batch = Vec::new();
        for record in &page {
            let mut whole: Value = serde_json::from_str(&record.document).map_err(|error| {
                crate::store::StoreError::Other(anyhow::anyhow!("a stored record does not parse: {error}"))
            })?;
            // A part's worth a read: the store decodes whole parts anyway.
            let page = |kind: PartKind| kind.per_part() as u32;
            let sessions =
                all_children(|after| store.list_sessions(tenant, &record.id, after, page(PartKind::Sessions))).await?;
            let participants =
                all_children(|after| store.list_participants(tenant, &record.id, after, page(PartKind::Participants)))
                    .await?;
            if let Value::Object(object) = &mut whole {
                object.insert("sessions".to_owned(), Value::Array(sessions));
                object.insert("participants_v2".to_owned(), Value::Array(participants));
            }
            if !scrub(&mut whole) {
                continue;
            }
            let json = serde_json::to_vec(&whole).expect("a JSON value serializes");
            match crate::ingest::prepare_record(
                &json,
                now.to_date_time().unwrap_or_else(crate::model::DateTimeOffset::now),
            ) {
                Ok(mut prepared) => {
                    prepared.rewrite = true;
                    batch.push(prepared);
                }
                // A stored record always passed these checks; one that no longer does is left as
                // it is rather than lost.
                Err(error) => tracing::warn!(record = %record.id, %error, "a stored record could not be scrubbed"),
            }
        }
        if !batch.is_empty() {
            let outcomes = store.upsert_call_records(tenant, &batch, now).await?;
            rewritten += outcomes
                .iter()
                .filter(|outcome| **outcome == crate::store::UpsertOutcome::Replaced)
                .count() as u64;
        }
    }
    store
        .set_sync_value(tenant, SCRUBBED_BEFORE, &before.ticks().to_string())
        .await?;
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_values_are_cleared_and_the_rest_kept() {
        let mut record = json!({
            "id": "r", "sessions": [{ "caller": {
                "@odata.type": NAMED_ENDPOINT, "name": "Ann's laptop",
                "associatedIdentity": { "id": "u1", "displayName": "Ann", "userPrincipalName": "ann@contoso.com" } },
                "segments": [{ "media": [{ "callerNetwork": { "ipAddress": "10.0.0.7", "subnet": "10.0.0.0",
                    "macAddress": "00-11", "connectionType": "wifi" },
                    "callerDevice": { "captureDeviceName": "Ann's AirPods", "micGlitchRate": 0.1 },
                    "streams": [{ "averageJitter": "PT0.01S" }] }] }] }]
        });
        assert!(scrub(&mut record));
        let caller = &record["sessions"][0]["caller"];
        assert_eq!(caller["name"], Value::Null);
        assert_eq!(
            caller["associatedIdentity"],
            json!({ "id": "u1", "displayName": null, "userPrincipalName": null })
        );
        let media = &record["sessions"][0]["segments"][0]["media"][0];
        assert_eq!(
            media["callerNetwork"],
            json!({ "ipAddress": null, "subnet": "10.0.0.0", "macAddress": null, "connectionType": "wifi" })
        );
        assert_eq!(media["callerDevice"]["micGlitchRate"], 0.1);
        assert_eq!(media["streams"][0]["averageJitter"], "PT0.01S");
        assert!(!scrub(&mut record), "a second scrub changes nothing");
    }
}
