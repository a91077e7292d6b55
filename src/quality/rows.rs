//! What analytics keeps of a record: a row per classified stream and a row per session (call
//! leg), each with its endpoints put in CQD's First and Second order. Pure code over a
//! `CallRecord`; the stores write these rows beside the record, in the same transaction.
//!
//! CQD's endpoint rule: when exactly one side of a segment is a server (a `serviceEndpoint`, or
//! an endpoint whose user agent is a service's), that side is First; otherwise the caller is.
//! A stream's `streamDirection` is then turned into First-to-Second or Second-to-First.

use crate::clock::Timestamp;
use crate::model::{
    CallRecord, CallType, Endpoint, FailureStage, MediaStream, MediaStreamDirection, NetworkInfo, ServiceRole,
    UserAgent, UserFeedbackRating,
};

use super::classify::{classify, reported, Classification, Condition, MediaType};

/// One endpoint of a stream or a leg, as analytics groups by it. Identifying values
/// (`ip_address`, `mac_address`, `user_id`, `user_name`) are the ones the personal-data scrub
/// clears.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointFacts {
    pub(crate) server: bool,
    pub(crate) connection_type: Option<&'static str>,
    pub(crate) subnet: Option<String>,
    pub(crate) wifi_band: Option<&'static str>,
    pub(crate) product_family: Option<&'static str>,
    pub(crate) platform: Option<&'static str>,
    pub(crate) version: Option<String>,
    pub(crate) service_role: Option<&'static str>,
    pub(crate) ip_address: Option<String>,
    pub(crate) mac_address: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) user_name: Option<String>,
}

/// What every row of a segment or session shares.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CallFacts {
    pub(crate) conference: bool,
    pub(crate) pstn: bool,
    /// Excluded by CQD's default filters: a bot, auto attendant, call queue or announcement
    /// service on either side.
    pub(crate) excluded: bool,
    pub(crate) first_is_caller: bool,
    pub(crate) first: EndpointFacts,
    pub(crate) second: EndpointFacts,
}

/// A stream's metrics as reported: durations in milliseconds, `None` when not reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StreamMetrics {
    pub(crate) average_jitter_ms: Option<f64>,
    pub(crate) max_jitter_ms: Option<f64>,
    pub(crate) average_packet_loss_rate: Option<f64>,
    pub(crate) max_packet_loss_rate: Option<f64>,
    pub(crate) average_round_trip_time_ms: Option<f64>,
    pub(crate) max_round_trip_time_ms: Option<f64>,
    pub(crate) average_audio_degradation: Option<f64>,
    pub(crate) average_ratio_of_concealed_samples: Option<f64>,
    pub(crate) average_video_frame_loss_percentage: Option<f64>,
    pub(crate) average_video_frame_rate: Option<f64>,
    pub(crate) post_forward_error_correction_packet_loss_rate: Option<f64>,
}

impl StreamMetrics {
    fn of(stream: &MediaStream) -> Self {
        let ms = |value: Option<crate::model::Duration>| value.map(|d| d.ticks() as f64 / 10_000.0);
        let single = |value| reported(value).map(f64::from);
        Self {
            average_jitter_ms: ms(stream.average_jitter),
            max_jitter_ms: ms(stream.max_jitter),
            average_packet_loss_rate: single(stream.average_packet_loss_rate),
            max_packet_loss_rate: single(stream.max_packet_loss_rate),
            average_round_trip_time_ms: ms(stream.average_round_trip_time),
            max_round_trip_time_ms: ms(stream.max_round_trip_time),
            average_audio_degradation: single(stream.average_audio_degradation),
            average_ratio_of_concealed_samples: single(stream.average_ratio_of_concealed_samples),
            average_video_frame_loss_percentage: single(stream.average_video_frame_loss_percentage),
            average_video_frame_rate: single(stream.average_video_frame_rate),
            post_forward_error_correction_packet_loss_rate: single(
                stream.post_forward_error_correction_packet_loss_rate,
            ),
        }
    }

    /// CQD's "QoE record available": the stream reported at least one metric.
    fn any_reported(&self) -> bool {
        self.values().iter().any(Option::is_some)
    }

    pub(crate) fn values(&self) -> [Option<f64>; 11] {
        [
            self.average_jitter_ms,
            self.max_jitter_ms,
            self.average_packet_loss_rate,
            self.max_packet_loss_rate,
            self.average_round_trip_time_ms,
            self.max_round_trip_time_ms,
            self.average_audio_degradation,
            self.average_ratio_of_concealed_samples,
            self.average_video_frame_loss_percentage,
            self.average_video_frame_rate,
            self.post_forward_error_correction_packet_loss_rate,
        ]
    }
}

/// One classified stream.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StreamRow {
    pub(crate) session_id: String,
    pub(crate) segment_id: String,
    pub(crate) segment_start: Timestamp,
    pub(crate) media_type: MediaType,
    pub(crate) first_to_second: bool,
    pub(crate) classification: Classification,
    pub(crate) poor_due_to: Vec<Condition>,
    pub(crate) qoe_reported: bool,
    pub(crate) call: CallFacts,
    pub(crate) metrics: StreamMetrics,
}

impl StreamRow {
    /// The conditions as a bit set, bit `Condition as u8`: how the stores keep them.
    pub(crate) fn poor_due_to_bits(&self) -> i64 {
        self.poor_due_to
            .iter()
            .fold(0, |bits, condition| bits | 1 << *condition as u8)
    }
}

/// How a leg ended, as CQD's reliability counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegOutcome {
    Completed = 0,
    SetupFailed = 1,
    Dropped = 2,
}

/// One session (call leg): reliability and Rate My Call.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LegRow {
    pub(crate) session_id: String,
    pub(crate) outcome: LegOutcome,
    /// Rate My Call from 1 (bad) to 5 (excellent); `None` when not rated.
    pub(crate) first_rating: Option<i64>,
    pub(crate) second_rating: Option<i64>,
    pub(crate) call: CallFacts,
}

/// A record's analytics rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityRows {
    pub(crate) streams: Vec<StreamRow>,
    pub(crate) legs: Vec<LegRow>,
}

impl QualityRows {
    pub(crate) fn of(record: &CallRecord) -> Self {
        let conference = is_conference(record.call_type);
        let mut rows = QualityRows::default();
        for session in record.sessions.iter().flatten() {
            let segments = session.segments.as_deref().unwrap_or_default();
            let mut outcome = outcome_of(session.failure_info.as_ref().map(|f| f.stage));
            for segment in segments {
                outcome = outcome.max_by_severity(outcome_of(segment.failure_info.as_ref().map(|f| f.stage)));
                for media in &segment.media {
                    let Some(media_type) = media.label.as_deref().and_then(MediaType::of_label) else {
                        continue;
                    };
                    let call = CallFacts::of(
                        conference,
                        segment.caller.as_ref(),
                        segment.callee.as_ref(),
                        media.caller_network.as_ref(),
                        media.callee_network.as_ref(),
                    );
                    for stream in &media.streams {
                        let verdict = classify(media_type, stream);
                        let metrics = StreamMetrics::of(stream);
                        let caller_to_callee = stream.stream_direction == MediaStreamDirection::CallerToCallee;
                        rows.streams.push(StreamRow {
                            session_id: session.id.clone(),
                            segment_id: segment.id.clone(),
                            segment_start: Timestamp::from(segment.start_date_time),
                            media_type,
                            first_to_second: caller_to_callee == call.first_is_caller,
                            classification: verdict.classification,
                            poor_due_to: verdict.poor_due_to,
                            qoe_reported: metrics.any_reported(),
                            call: call.clone(),
                            metrics,
                        });
                    }
                }
            }
            let call = CallFacts::of(conference, session.caller.as_ref(), session.callee.as_ref(), None, None);
            let rating = |endpoint: Option<&Endpoint>| match endpoint {
                Some(Endpoint::Participant(participant)) => {
                    participant.feedback.as_ref().and_then(|f| rating_of(f.rating))
                }
                _ => None,
            };
            let (caller_rating, callee_rating) = (rating(session.caller.as_ref()), rating(session.callee.as_ref()));
            let (first_rating, second_rating) = if call.first_is_caller {
                (caller_rating, callee_rating)
            } else {
                (callee_rating, caller_rating)
            };
            rows.legs.push(LegRow {
                session_id: session.id.clone(),
                outcome,
                first_rating,
                second_rating,
                call,
            });
        }
        rows
    }
}

impl LegOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LegOutcome::Completed => "completed",
            LegOutcome::SetupFailed => "setupFailed",
            LegOutcome::Dropped => "dropped",
        }
    }

    fn max_by_severity(self, other: LegOutcome) -> LegOutcome {
        // A failed setup says more than a drop: the leg never carried media.
        match (self, other) {
            (LegOutcome::SetupFailed, _) | (_, LegOutcome::SetupFailed) => LegOutcome::SetupFailed,
            (LegOutcome::Dropped, _) | (_, LegOutcome::Dropped) => LegOutcome::Dropped,
            _ => LegOutcome::Completed,
        }
    }
}

fn outcome_of(stage: Option<FailureStage>) -> LegOutcome {
    match stage {
        Some(FailureStage::CallSetup) => LegOutcome::SetupFailed,
        Some(FailureStage::Midcall) => LegOutcome::Dropped,
        _ => LegOutcome::Completed,
    }
}

/// Rate My Call's 1 to 5 stars.
fn rating_of(rating: UserFeedbackRating) -> Option<i64> {
    match rating {
        UserFeedbackRating::Bad => Some(1),
        UserFeedbackRating::Poor => Some(2),
        UserFeedbackRating::Fair => Some(3),
        UserFeedbackRating::Good => Some(4),
        UserFeedbackRating::Excellent => Some(5),
        UserFeedbackRating::NotRated | UserFeedbackRating::UnknownFutureValue => None,
    }
}

/// CQD's conference: a group call; every other type of call is peer to peer.
pub(crate) fn is_conference(call_type: CallType) -> bool {
    call_type == CallType::GroupCall
}

/// Rate My Call counts ratings of 1 and 2 as poor.
pub(crate) const POOR_RATING_AT_MOST: i64 = 2;

impl CallFacts {
    pub(crate) fn of(
        conference: bool,
        caller: Option<&Endpoint>,
        callee: Option<&Endpoint>,
        caller_network: Option<&NetworkInfo>,
        callee_network: Option<&NetworkInfo>,
    ) -> Self {
        let caller = EndpointFacts::of(caller, caller_network);
        let callee = EndpointFacts::of(callee, callee_network);
        // The caller is First unless the callee alone is a server.
        let first_is_caller = caller.server || !callee.server;
        let pstn = [&caller, &callee]
            .iter()
            .any(|side| side.service_role.is_some_and(is_pstn_role));
        let excluded = [&caller, &callee]
            .iter()
            .any(|side| side.service_role.is_some_and(is_excluded_role));
        let (first, second) = if first_is_caller {
            (caller, callee)
        } else {
            (callee, caller)
        };
        Self {
            conference,
            pstn,
            excluded,
            first_is_caller,
            first,
            second,
        }
    }
}

fn is_pstn_role(role: &str) -> bool {
    [
        ServiceRole::Gateway,
        ServiceRole::MediationServer,
        ServiceRole::MediationServerCloudConnectorEdition,
    ]
    .iter()
    .any(|pstn| pstn.as_str() == role)
}

/// CQD's default filters leave out bots, auto attendants, call queues and announcement services.
fn is_excluded_role(role: &str) -> bool {
    [
        ServiceRole::CustomBot,
        ServiceRole::SkypeForBusinessAutoAttendant,
        ServiceRole::SkypeForBusinessCallQueues,
        ServiceRole::ConferencingAnnouncementService,
        ServiceRole::ResponseGroupServiceAnnouncementService,
    ]
    .iter()
    .any(|excluded| excluded.as_str() == role)
}

impl EndpointFacts {
    fn of(endpoint: Option<&Endpoint>, network: Option<&NetworkInfo>) -> Self {
        let mut facts = EndpointFacts::default();
        let user_agent = match endpoint {
            Some(Endpoint::Base(base)) => base.user_agent.as_ref(),
            Some(Endpoint::Service(base)) => {
                facts.server = true;
                base.user_agent.as_ref()
            }
            Some(Endpoint::Participant(participant)) => {
                let identity = participant
                    .associated_identity
                    .as_ref()
                    .or_else(|| participant.identity.as_ref().and_then(|set| set.user.as_ref()));
                facts.user_id = identity.and_then(|identity| identity.id.clone());
                facts.user_name = identity
                    .and_then(|identity| identity.display_name.clone())
                    .or_else(|| participant.name.clone());
                participant.user_agent.as_ref()
            }
            None => None,
        };
        match user_agent {
            Some(UserAgent::Client(client)) => {
                facts.product_family = Some(client.product_family.as_str());
                facts.platform = Some(client.platform.as_str());
                facts.version = client.application_version.clone();
            }
            Some(UserAgent::Service(service)) => {
                facts.server = true;
                facts.service_role = Some(service.role.as_str());
                facts.version = service.application_version.clone();
            }
            None => {}
        }
        if let Some(network) = network {
            facts.connection_type = Some(network.connection_type.as_str());
            facts.subnet = network.subnet.clone();
            facts.wifi_band = Some(network.wifi_band.as_str());
            facts.ip_address = network.ip_address.clone();
            facts.mac_address = network.mac_address.clone();
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(caller: serde_json::Value, callee: serde_json::Value) -> CallRecord {
        let record = json!({
            "id": "r1", "version": 1, "type": "peerToPeer", "modalities": ["audio"],
            "startDateTime": "2024-03-01T10:00:00Z", "endDateTime": "2024-03-01T10:05:00Z",
            "sessions": [{ "id": "s1", "modalities": ["audio"], "startDateTime": "2024-03-01T10:00:00Z",
                "endDateTime": "2024-03-01T10:05:00Z", "caller": caller.clone(), "callee": callee.clone(),
                "failureInfo": { "stage": "midcall", "reason": "x" },
                "segments": [{ "id": "g1", "startDateTime": "2024-03-01T10:00:00Z", "endDateTime": "2024-03-01T10:05:00Z",
                    "caller": caller, "callee": callee,
                    "media": [{ "label": "main-audio",
                        "callerNetwork": { "connectionType": "wifi", "subnet": "10.0.0.0", "ipAddress": "10.0.0.7", "wifiBand": "frequency50GHz" },
                        "calleeNetwork": { "connectionType": "wired", "subnet": "52.1.0.0" },
                        "streams": [
                            { "streamDirection": "callerToCallee", "averageJitter": "PT0.05S", "maxJitter": "PT0.1S" },
                            { "streamDirection": "calleeToCaller", "averagePacketLossRate": "NaN" }
                        ]}]}]}]
        });
        crate::model::parse_call_record(record.to_string().as_bytes()).expect("a record")
    }

    fn client(rating: &str) -> serde_json::Value {
        json!({ "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
            "associatedIdentity": { "id": "u1", "displayName": "Ann" },
            "feedback": { "rating": rating },
            "userAgent": { "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
                "platform": "windows", "productFamily": "teams", "applicationVersion": "1.7" } })
    }

    #[test]
    fn a_server_callee_is_first_and_directions_follow() {
        let server = json!({ "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
            "userAgent": { "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent", "role": "mediationServer" } });
        let rows = QualityRows::of(&record(client("poor"), server));
        let [caller_to_callee, callee_to_caller] = &rows.streams[..] else {
            panic!("two streams")
        };
        assert!(!caller_to_callee.call.first_is_caller);
        assert!(caller_to_callee.call.pstn);
        assert!(!caller_to_callee.first_to_second);
        assert!(callee_to_caller.first_to_second);
        assert!(caller_to_callee.call.first.server);
        assert_eq!(caller_to_callee.call.second.connection_type, Some("wifi"));
        assert_eq!(caller_to_callee.call.second.user_id.as_deref(), Some("u1"));
        assert_eq!(caller_to_callee.call.second.version.as_deref(), Some("1.7"));
        assert_eq!(caller_to_callee.classification, Classification::Poor);
        assert_eq!(caller_to_callee.poor_due_to_bits(), 1 << Condition::Jitter as u8);
        assert_eq!(caller_to_callee.metrics.max_jitter_ms, Some(100.0));
        assert_eq!(callee_to_caller.classification, Classification::Unclassified);
        assert!(!callee_to_caller.qoe_reported, "NaN is not reported");
        let [leg] = &rows.legs[..] else { panic!("one leg") };
        assert_eq!(leg.outcome, LegOutcome::Dropped);
        assert_eq!((leg.first_rating, leg.second_rating), (None, Some(2)));
    }

    #[test]
    fn between_two_clients_the_caller_is_first() {
        let rows = QualityRows::of(&record(client("excellent"), client("notRated")));
        assert!(rows
            .streams
            .iter()
            .all(|row| row.call.first_is_caller && !row.call.pstn));
        assert!(rows.streams[0].first_to_second);
        assert_eq!(rows.streams[0].call.first.subnet.as_deref(), Some("10.0.0.0"));
        assert_eq!((rows.legs[0].first_rating, rows.legs[0].second_rating), (Some(5), None));
    }
}
