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
