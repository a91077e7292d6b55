//! Call record fixtures: small, explicit, and shaped like Graph's examples.

use serde_json::{json, Value};

/// A group call with `n_sessions` sessions (one segment each, with audio media) and the given
/// participants, starting at `start` (RFC 3339).
pub fn record(id: &str, start: &str, n_sessions: usize, participants: &[&str]) -> Value {
    let sessions: Vec<Value> = (0..n_sessions)
        .map(|i| {
            json!({
                "id": format!("{id}-s{i}"),
                "modalities": ["audio"],
                "startDateTime": start,
                "endDateTime": start,
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "name": format!("machine-{i}"),
                    "userAgent": {
                        "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
                        "headerValue": "RTCC/7.0.0.0 UCWA/7.0.0.0 AndroidLync/6.25.0.27",
                        "platform": "android",
                        "productFamily": if i == 0 { "azureCommunicationServices" } else { "teams" }
                    }
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                    "userAgent": { "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent", "role": "skypeForBusinessAudioVideoMcu" }
                },
                "segments": [{
                    "id": format!("{id}-s{i}-g0"),
                    "startDateTime": start,
                    "endDateTime": start,
                    "media": [{
                        "label": "main-audio",
                        "streams": [{
                            "streamId": "1504545584",
                            "streamDirection": "callerToCallee",
                            "averageJitter": "PT0.016S",
                            "averagePacketLossRate": 0.01381693,
                            "averageBandwidthEstimate": 9965083
                        }]
                    }]
                }]
            })
        })
        .collect();
    let participants_v2: Vec<Value> = participants
        .iter()
        .map(|p| json!({ "id": p, "identity": { "user": { "id": p, "displayName": format!("User {p}") } } }))
        .collect();
    json!({
        "id": id,
        "version": 1,
        "type": "groupCall",
        "modalities": ["audio"],
        "startDateTime": start,
        "endDateTime": start,
        "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/1",
        "organizer_v2": participants.first().map(|p| json!({ "id": p, "identity": { "user": { "id": p, "displayName": format!("User {p}") } } })),
        "participants_v2": participants_v2,
        "sessions": sessions
    })
}

/// `count` one-session records, one a minute from 2024-03-01T00:00:00Z, ids `{prefix}-{n:04}`.
pub fn minute_records(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let start = format!("2024-03-01T{:02}:{:02}:00Z", n / 60, n % 60);
            record(&format!("{prefix}-{n:04}"), &start, 1, &["alice"])
        })
        .collect()
}

/// A pstnCallLogRow starting at `start`, as Graph's example has it.
pub fn pstn_row(id: &str, start: &str) -> Value {
    json!({
        "id": id, "callId": "1835317186_112562680@61.221.3.176",
        "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27", "userPrincipalName": "richard.malk@contoso.com",
        "userDisplayName": "Richard Malk", "startDateTime": start, "endDateTime": start,
        "duration": 219, "charge": 0.00, "callType": "user_in", "currency": "USD",
        "calleeNumber": "+1234567890", "usageCountryCode": "US", "tenantCountryCode": "US", "connectionCharge": 0.00,
        "callerNumber": "+0123456789", "destinationContext": null, "destinationName": "United States",
        "conferenceId": null, "licenseCapability": "MCOPSTNU", "inventoryType": "Subscriber",
        "operator": "Microsoft", "callDurationSource": "microsoft"
    })
}

/// A directRoutingLogRow starting at `start`.
pub fn direct_routing_row(id: &str, start: &str) -> Value {
    json!({
        "id": id, "correlationId": "a1b2", "userId": "u1", "userPrincipalName": "u1@contoso.com", "userDisplayName": "U One",
        "startDateTime": start, "inviteDateTime": start, "failureDateTime": "0001-01-01T00:00:00Z", "endDateTime": start,
        "duration": 30, "callType": "ByotIn", "successfulCall": true, "callerNumber": "+12345678***", "calleeNumber": "+14255550100",
        "mediaPathLocation": "USWE", "signalingLocation": "USWE", "finalSipCode": 200, "callEndSubReason": 540200,
        "finalSipCodePhrase": "BYE", "trunkFullyQualifiedDomainName": "sbc1.contoso.com", "mediaBypassEnabled": false
    })
}

/// An smsLogRow sent at `sent`.
pub fn sms_row(id: &str, sent: &str) -> Value {
    json!({
        "id": id, "smsId": "sms-1", "sentDateTime": sent, "smsType": "outbound", "smsUnits": 1,
        "sourceNumber": "+14255550100", "destinationNumber": "+4930123***", "destinationContext": "International",
        "destinationName": "Germany", "callCharge": 0.0075, "currency": "USD", "licenseCapability": "MCOSMS",
        "otherPartyCountryCode": "DE", "tenantCountryCode": "US", "userCountryCode": "US",
        "userDisplayName": "U One", "userId": "u1", "userPrincipalName": "u1@contoso.com", "administrativeUnitInfos": []
    })
}
