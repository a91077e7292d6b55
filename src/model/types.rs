//! The resource and complex types of `microsoft.graph.callRecords`, as the CSDL declares them.
//!
//! Their serialized form is our wire contract with the Graph SDKs: property names are the CSDL
//! names, declared properties are written even when null (as Graph does), and collections are
//! written as `[]` rather than null. Closed types refuse unknown properties at ingest (see
//! `crate::model::parse_call_record`); open types keep them verbatim in `additional_data`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::enums::*;
use super::primitives::{DateTimeOffset, Duration, Single};

/// A call record in its full-details shape: what ingest takes and what the stores split into a
/// record document, its sessions and its participants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub(crate) id: String,
    pub(crate) version: i64,
    #[serde(rename = "type", default)]
    pub(crate) call_type: CallType,
    #[serde(default, deserialize_with = "super::deserialize_modalities")]
    pub(crate) modalities: Vec<Modality>,
    #[serde(default)]
    pub(crate) last_modified_date_time: Option<DateTimeOffset>,
    pub(crate) start_date_time: DateTimeOffset,
    pub(crate) end_date_time: DateTimeOffset,
    #[serde(default)]
    pub(crate) join_web_url: Option<String>,
    /// Deprecated by Graph in favour of `organizer_v2`; derived from it when absent (see `retired`).
    #[serde(default)]
    pub(crate) organizer: Option<IdentitySet>,
    /// Deprecated by Graph for `participants_v2`; derived from it when absent (see `retired`).
    #[serde(default)]
    pub(crate) participants: Option<Vec<IdentitySet>>,
    #[serde(rename = "organizer_v2", default, skip_serializing_if = "Option::is_none")]
    pub(crate) organizer_v2: Option<Participant>,
    #[serde(rename = "participants_v2", default, skip_serializing_if = "Option::is_none")]
    pub(crate) participants_v2: Option<Vec<Participant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sessions: Option<Vec<Session>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Session {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) caller: Option<Endpoint>,
    #[serde(default)]
    pub(crate) callee: Option<Endpoint>,
    #[serde(default)]
    pub(crate) failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub(crate) is_test: Option<bool>,
    #[serde(default, deserialize_with = "super::deserialize_modalities")]
    pub(crate) modalities: Vec<Modality>,
    pub(crate) start_date_time: DateTimeOffset,
    pub(crate) end_date_time: DateTimeOffset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) segments: Option<Vec<Segment>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Segment {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) caller: Option<Endpoint>,
    #[serde(default)]
    pub(crate) callee: Option<Endpoint>,
    #[serde(default)]
    pub(crate) failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub(crate) media: Vec<Media>,
    pub(crate) start_date_time: DateTimeOffset,
    pub(crate) end_date_time: DateTimeOffset,
}

/// `participant` and `organizer` share `participantBase` and add nothing, so one type serves both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Participant {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) identity: Option<CommunicationsIdentitySet>,
    #[serde(default)]
    pub(crate) administrative_unit_infos: Vec<AdministrativeUnitInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdministrativeUnitInfo {
    #[serde(default)]
    pub(crate) id: Option<String>,
}

/// `graph.identity`: open, so undeclared properties (`tenantId`, `userPrincipalName`) are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) odata_type: Option<String>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(flatten)]
    pub(crate) additional_data: Map<String, Value>,
}

/// `graph.identitySet`: open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentitySet {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) odata_type: Option<String>,
    #[serde(default)]
    pub(crate) application: Option<Identity>,
    #[serde(default)]
    pub(crate) device: Option<Identity>,
    #[serde(default)]
    pub(crate) user: Option<Identity>,
    #[serde(flatten)]
    pub(crate) additional_data: Map<String, Value>,
}

/// `graph.communicationsIdentitySet`: open; Graph's examples carry `acsUser`, `spoolUser` and
/// others as undeclared properties, which land in `additional_data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommunicationsIdentitySet {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub(crate) odata_type: Option<String>,
    #[serde(default)]
    pub(crate) application: Option<Identity>,
    #[serde(default)]
    pub(crate) device: Option<Identity>,
    #[serde(default)]
    pub(crate) user: Option<Identity>,
    #[serde(default)]
    pub(crate) application_instance: Option<Identity>,
    #[serde(default)]
    pub(crate) asserted_identity: Option<Identity>,
    #[serde(default)]
    pub(crate) azure_communication_services_user: Option<Identity>,
    #[serde(default)]
    pub(crate) encrypted: Option<Identity>,
    #[serde(default)]
    pub(crate) endpoint_type: Option<EndpointType>,
    #[serde(default)]
    pub(crate) guest: Option<Identity>,
    #[serde(default)]
    pub(crate) on_premises: Option<Identity>,
    #[serde(default)]
    pub(crate) phone: Option<Identity>,
    #[serde(flatten)]
    pub(crate) additional_data: Map<String, Value>,
}

impl CommunicationsIdentitySet {
    /// The deprecated `graph.identitySet` shape of this identity (see `retired`).
    pub(crate) fn to_identity_set(&self) -> IdentitySet {
        IdentitySet {
            odata_type: None,
            application: self.application.clone(),
            device: self.device.clone(),
            user: self.user.clone(),
            additional_data: Map::new(),
        }
    }
}

/// A polymorphic `endpoint` value: always written with its `@odata.type`, because
/// the SDKs pick the class from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type", try_from = "super::wire::EndpointWire")]
pub(crate) enum Endpoint {
    #[serde(rename = "#microsoft.graph.callRecords.endpoint")]
    Base(BaseEndpoint),
    #[serde(rename = "#microsoft.graph.callRecords.participantEndpoint")]
    Participant(Box<ParticipantEndpoint>),
    #[serde(rename = "#microsoft.graph.callRecords.serviceEndpoint")]
    Service(BaseEndpoint),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BaseEndpoint {
    pub(crate) user_agent: Option<UserAgent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ParticipantEndpoint {
    pub(crate) user_agent: Option<UserAgent>,
    pub(crate) associated_identity: Option<Identity>,
    pub(crate) cpu_cores_count: Option<i32>,
    pub(crate) cpu_name: Option<String>,
    pub(crate) cpu_processor_speed_in_mhz: Option<i32>,
    pub(crate) feedback: Option<UserFeedback>,
    /// Deprecated by Graph for `associatedIdentity`; derived from it when absent (see `retired`).
    pub(crate) identity: Option<IdentitySet>,
    pub(crate) name: Option<String>,
}

/// A polymorphic `userAgent` value: `userAgent` itself is abstract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type", try_from = "super::wire::UserAgentWire")]
pub(crate) enum UserAgent {
    #[serde(rename = "#microsoft.graph.callRecords.clientUserAgent")]
    Client(ClientUserAgent),
    #[serde(rename = "#microsoft.graph.callRecords.serviceUserAgent")]
    Service(ServiceUserAgent),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClientUserAgent {
    pub(crate) application_version: Option<String>,
    pub(crate) header_value: Option<String>,
    #[serde(rename = "azureADAppId")]
    pub(crate) azure_ad_app_id: Option<String>,
    pub(crate) communication_service_id: Option<String>,
    pub(crate) platform: ClientPlatform,
    pub(crate) product_family: ProductFamily,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceUserAgent {
    pub(crate) application_version: Option<String>,
    pub(crate) header_value: Option<String>,
    pub(crate) role: ServiceRole,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserFeedback {
    #[serde(default)]
    pub(crate) rating: UserFeedbackRating,
    #[serde(default)]
    pub(crate) text: Option<String>,
    /// `feedbackTokenSet` is open with no declared properties: kept as the object that was sent.
    #[serde(default)]
    pub(crate) tokens: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FailureInfo {
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) stage: FailureStage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Media {
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) caller_network: Option<NetworkInfo>,
    #[serde(default)]
    pub(crate) callee_network: Option<NetworkInfo>,
    #[serde(default)]
    pub(crate) caller_device: Option<DeviceInfo>,
    #[serde(default)]
    pub(crate) callee_device: Option<DeviceInfo>,
    #[serde(default)]
    pub(crate) streams: Vec<MediaStream>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MediaStream {
    #[serde(default)]
    pub(crate) stream_id: Option<String>,
    pub(crate) stream_direction: MediaStreamDirection,
    #[serde(default)]
    pub(crate) audio_codec: Option<AudioCodec>,
    #[serde(default)]
    pub(crate) video_codec: Option<VideoCodec>,
    #[serde(default)]
    pub(crate) start_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) end_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub(crate) average_audio_degradation: Option<Single>,
    #[serde(default)]
    pub(crate) average_audio_network_jitter: Option<Duration>,
    #[serde(default)]
    pub(crate) max_audio_network_jitter: Option<Duration>,
    #[serde(default)]
    pub(crate) average_jitter: Option<Duration>,
    #[serde(default)]
    pub(crate) max_jitter: Option<Duration>,
    #[serde(default)]
    pub(crate) average_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub(crate) max_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub(crate) average_ratio_of_concealed_samples: Option<Single>,
    #[serde(default)]
    pub(crate) max_ratio_of_concealed_samples: Option<Single>,
    #[serde(default)]
    pub(crate) average_round_trip_time: Option<Duration>,
    #[serde(default)]
    pub(crate) max_round_trip_time: Option<Duration>,
    #[serde(default)]
    pub(crate) average_bandwidth_estimate: Option<i64>,
    #[serde(default)]
    pub(crate) packet_utilization: Option<i64>,
    #[serde(default)]
    pub(crate) post_forward_error_correction_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub(crate) is_audio_forward_error_correction_used: Option<bool>,
    #[serde(default)]
    pub(crate) average_received_frame_rate: Option<Single>,
    #[serde(default)]
    pub(crate) average_video_frame_rate: Option<Single>,
    #[serde(default)]
    pub(crate) average_video_frame_loss_percentage: Option<Single>,
    #[serde(default)]
    pub(crate) average_video_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub(crate) low_frame_rate_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) low_video_processing_capability_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) average_freeze_duration: Option<Duration>,
    #[serde(default)]
    pub(crate) rms_freeze_duration: Option<Duration>,
    #[serde(default)]
    pub(crate) was_media_bypassed: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NetworkInfo {
    #[serde(default)]
    pub(crate) ip_address: Option<String>,
    #[serde(default)]
    pub(crate) subnet: Option<String>,
    #[serde(default)]
    pub(crate) port: Option<i32>,
    #[serde(rename = "reflexiveIPAddress", default)]
    pub(crate) reflexive_ip_address: Option<String>,
    #[serde(rename = "relayIPAddress", default)]
    pub(crate) relay_ip_address: Option<String>,
    #[serde(default)]
    pub(crate) relay_port: Option<i32>,
    #[serde(default)]
    pub(crate) mac_address: Option<String>,
    #[serde(default)]
    pub(crate) dns_suffix: Option<String>,
    #[serde(default)]
    pub(crate) link_speed: Option<i64>,
    #[serde(default)]
    pub(crate) connection_type: NetworkConnectionType,
    #[serde(default)]
    pub(crate) network_transport_protocol: NetworkTransportProtocol,
    #[serde(default)]
    pub(crate) bandwidth_low_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) delay_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) received_quality_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) sent_quality_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) basic_service_set_identifier: Option<String>,
    #[serde(default)]
    pub(crate) trace_route_hops: Vec<TraceRouteHop>,
    #[serde(default)]
    pub(crate) wifi_band: WifiBand,
    #[serde(default)]
    pub(crate) wifi_radio_type: WifiRadioType,
    #[serde(default)]
    pub(crate) wifi_channel: Option<i32>,
    #[serde(default)]
    pub(crate) wifi_signal_strength: Option<i32>,
    #[serde(default)]
    pub(crate) wifi_battery_charge: Option<i32>,
    #[serde(default)]
    pub(crate) wifi_microsoft_driver: Option<String>,
    #[serde(default)]
    pub(crate) wifi_microsoft_driver_version: Option<String>,
    #[serde(default)]
    pub(crate) wifi_vendor_driver: Option<String>,
    #[serde(default)]
    pub(crate) wifi_vendor_driver_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TraceRouteHop {
    #[serde(default)]
    pub(crate) hop_count: Option<i32>,
    #[serde(default)]
    pub(crate) ip_address: Option<String>,
    #[serde(default)]
    pub(crate) round_trip_time: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeviceInfo {
    #[serde(default)]
    pub(crate) capture_device_driver: Option<String>,
    #[serde(default)]
    pub(crate) capture_device_name: Option<String>,
    #[serde(default)]
    pub(crate) capture_not_functioning_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) cpu_insufficent_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) device_clipping_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) device_glitch_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) howling_event_count: Option<i32>,
    #[serde(default)]
    pub(crate) initial_signal_level_root_mean_square: Option<Single>,
    #[serde(default)]
    pub(crate) low_speech_level_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) low_speech_to_noise_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) mic_glitch_rate: Option<Single>,
    #[serde(default)]
    pub(crate) received_noise_level: Option<i32>,
    #[serde(default)]
    pub(crate) received_signal_level: Option<i32>,
    #[serde(default)]
    pub(crate) render_device_driver: Option<String>,
    #[serde(default)]
    pub(crate) render_device_name: Option<String>,
    #[serde(default)]
    pub(crate) render_mute_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) render_not_functioning_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) render_zero_volume_event_ratio: Option<Single>,
    #[serde(default)]
    pub(crate) sent_noise_level: Option<i32>,
    #[serde(default)]
    pub(crate) sent_signal_level: Option<i32>,
    #[serde(default)]
    pub(crate) speaker_glitch_rate: Option<Single>,
}
