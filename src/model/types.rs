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
    pub id: String,
    pub version: i64,
    #[serde(rename = "type", default)]
    pub call_type: CallType,
    #[serde(default, deserialize_with = "super::deserialize_modalities")]
    pub modalities: Vec<Modality>,
    #[serde(default)]
    pub last_modified_date_time: Option<DateTimeOffset>,
    pub start_date_time: DateTimeOffset,
    pub end_date_time: DateTimeOffset,
    #[serde(default)]
    pub join_web_url: Option<String>,
    /// Deprecated by Graph in favour of `organizer_v2`; derived from it when absent (see `retired`).
    #[serde(default)]
    pub organizer: Option<IdentitySet>,
    /// Deprecated by Graph for `participants_v2`; derived from it when absent (see `retired`).
    #[serde(default)]
    pub participants: Option<Vec<IdentitySet>>,
    #[serde(rename = "organizer_v2", default, skip_serializing_if = "Option::is_none")]
    pub organizer_v2: Option<Participant>,
    #[serde(rename = "participants_v2", default, skip_serializing_if = "Option::is_none")]
    pub participants_v2: Option<Vec<Participant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<Session>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: String,
    #[serde(default)]
    pub caller: Option<Endpoint>,
    #[serde(default)]
    pub callee: Option<Endpoint>,
    #[serde(default)]
    pub failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub is_test: Option<bool>,
    #[serde(default, deserialize_with = "super::deserialize_modalities")]
    pub modalities: Vec<Modality>,
    pub start_date_time: DateTimeOffset,
    pub end_date_time: DateTimeOffset,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<Segment>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub id: String,
    #[serde(default)]
    pub caller: Option<Endpoint>,
    #[serde(default)]
    pub callee: Option<Endpoint>,
    #[serde(default)]
    pub failure_info: Option<FailureInfo>,
    #[serde(default)]
    pub media: Vec<Media>,
    pub start_date_time: DateTimeOffset,
    pub end_date_time: DateTimeOffset,
}

/// `participant` and `organizer` share `participantBase` and add nothing, so one type serves both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: String,
    #[serde(default)]
    pub identity: Option<CommunicationsIdentitySet>,
    #[serde(default)]
    pub administrative_unit_infos: Vec<AdministrativeUnitInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdministrativeUnitInfo {
    #[serde(default)]
    pub id: Option<String>,
}

/// `graph.identity`: open, so undeclared properties (`tenantId`, `userPrincipalName`) are kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(flatten)]
    pub additional_data: Map<String, Value>,
}

/// `graph.identitySet`: open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySet {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub application: Option<Identity>,
    #[serde(default)]
    pub device: Option<Identity>,
    #[serde(default)]
    pub user: Option<Identity>,
    #[serde(flatten)]
    pub additional_data: Map<String, Value>,
}

/// `graph.communicationsIdentitySet`: open; Graph's examples carry `acsUser`, `spoolUser` and
/// others as undeclared properties, which land in `additional_data`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunicationsIdentitySet {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub application: Option<Identity>,
    #[serde(default)]
    pub device: Option<Identity>,
    #[serde(default)]
    pub user: Option<Identity>,
    #[serde(default)]
    pub application_instance: Option<Identity>,
    #[serde(default)]
    pub asserted_identity: Option<Identity>,
    #[serde(default)]
    pub azure_communication_services_user: Option<Identity>,
    #[serde(default)]
    pub encrypted: Option<Identity>,
    #[serde(default)]
    pub endpoint_type: Option<EndpointType>,
    #[serde(default)]
    pub guest: Option<Identity>,
    #[serde(default)]
    pub on_premises: Option<Identity>,
    #[serde(default)]
    pub phone: Option<Identity>,
    #[serde(flatten)]
    pub additional_data: Map<String, Value>,
}

impl CommunicationsIdentitySet {
    /// The first identity present, in the order a reader would name the participant by.
    pub fn primary_identity(&self) -> Option<&Identity> {
        [
            &self.user,
            &self.phone,
            &self.guest,
            &self.azure_communication_services_user,
            &self.application_instance,
            &self.application,
            &self.device,
            &self.on_premises,
            &self.encrypted,
            &self.asserted_identity,
        ]
        .into_iter()
        .find_map(|identity| identity.as_ref())
    }

    /// The deprecated `graph.identitySet` shape of this identity (see `retired`).
    pub fn to_identity_set(&self) -> IdentitySet {
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
pub enum Endpoint {
    #[serde(rename = "#microsoft.graph.callRecords.endpoint")]
    Base(BaseEndpoint),
    #[serde(rename = "#microsoft.graph.callRecords.participantEndpoint")]
    Participant(Box<ParticipantEndpoint>),
    #[serde(rename = "#microsoft.graph.callRecords.serviceEndpoint")]
    Service(BaseEndpoint),
}

impl Endpoint {
    pub fn user_agent(&self) -> Option<&UserAgent> {
        match self {
            Endpoint::Base(base) | Endpoint::Service(base) => base.user_agent.as_ref(),
            Endpoint::Participant(participant) => participant.user_agent.as_ref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseEndpoint {
    pub user_agent: Option<UserAgent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantEndpoint {
    pub user_agent: Option<UserAgent>,
    pub associated_identity: Option<Identity>,
    pub cpu_cores_count: Option<i32>,
    pub cpu_name: Option<String>,
    pub cpu_processor_speed_in_mhz: Option<i32>,
    pub feedback: Option<UserFeedback>,
    /// Deprecated by Graph for `associatedIdentity`; derived from it when absent (see `retired`).
    pub identity: Option<IdentitySet>,
    pub name: Option<String>,
}

/// A polymorphic `userAgent` value: `userAgent` itself is abstract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type", try_from = "super::wire::UserAgentWire")]
pub enum UserAgent {
    #[serde(rename = "#microsoft.graph.callRecords.clientUserAgent")]
    Client(ClientUserAgent),
    #[serde(rename = "#microsoft.graph.callRecords.serviceUserAgent")]
    Service(ServiceUserAgent),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientUserAgent {
    pub application_version: Option<String>,
    pub header_value: Option<String>,
    #[serde(rename = "azureADAppId")]
    pub azure_ad_app_id: Option<String>,
    pub communication_service_id: Option<String>,
    pub platform: ClientPlatform,
    pub product_family: ProductFamily,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUserAgent {
    pub application_version: Option<String>,
    pub header_value: Option<String>,
    pub role: ServiceRole,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFeedback {
    #[serde(default)]
    pub rating: UserFeedbackRating,
    #[serde(default)]
    pub text: Option<String>,
    /// `feedbackTokenSet` is open with no declared properties: kept as the object that was sent.
    #[serde(default)]
    pub tokens: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureInfo {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub stage: FailureStage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Media {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub caller_network: Option<NetworkInfo>,
    #[serde(default)]
    pub callee_network: Option<NetworkInfo>,
    #[serde(default)]
    pub caller_device: Option<DeviceInfo>,
    #[serde(default)]
    pub callee_device: Option<DeviceInfo>,
    #[serde(default)]
    pub streams: Vec<MediaStream>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaStream {
    #[serde(default)]
    pub stream_id: Option<String>,
    pub stream_direction: MediaStreamDirection,
    #[serde(default)]
    pub audio_codec: Option<AudioCodec>,
    #[serde(default)]
    pub video_codec: Option<VideoCodec>,
    #[serde(default)]
    pub start_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub end_date_time: Option<DateTimeOffset>,
    #[serde(default)]
    pub average_audio_degradation: Option<Single>,
    #[serde(default)]
    pub average_audio_network_jitter: Option<Duration>,
    #[serde(default)]
    pub max_audio_network_jitter: Option<Duration>,
    #[serde(default)]
    pub average_jitter: Option<Duration>,
    #[serde(default)]
    pub max_jitter: Option<Duration>,
    #[serde(default)]
    pub average_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub max_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub average_ratio_of_concealed_samples: Option<Single>,
    #[serde(default)]
    pub max_ratio_of_concealed_samples: Option<Single>,
    #[serde(default)]
    pub average_round_trip_time: Option<Duration>,
    #[serde(default)]
    pub max_round_trip_time: Option<Duration>,
    #[serde(default)]
    pub average_bandwidth_estimate: Option<i64>,
    #[serde(default)]
    pub packet_utilization: Option<i64>,
    #[serde(default)]
    pub post_forward_error_correction_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub is_audio_forward_error_correction_used: Option<bool>,
    #[serde(default)]
    pub average_received_frame_rate: Option<Single>,
    #[serde(default)]
    pub average_video_frame_rate: Option<Single>,
    #[serde(default)]
    pub average_video_frame_loss_percentage: Option<Single>,
    #[serde(default)]
    pub average_video_packet_loss_rate: Option<Single>,
    #[serde(default)]
    pub low_frame_rate_ratio: Option<Single>,
    #[serde(default)]
    pub low_video_processing_capability_ratio: Option<Single>,
    #[serde(default)]
    pub average_freeze_duration: Option<Duration>,
    #[serde(default)]
    pub rms_freeze_duration: Option<Duration>,
    #[serde(default)]
    pub was_media_bypassed: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInfo {
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(rename = "reflexiveIPAddress", default)]
    pub reflexive_ip_address: Option<String>,
    #[serde(rename = "relayIPAddress", default)]
    pub relay_ip_address: Option<String>,
    #[serde(default)]
    pub relay_port: Option<i32>,
    #[serde(default)]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub dns_suffix: Option<String>,
    #[serde(default)]
    pub link_speed: Option<i64>,
    #[serde(default)]
    pub connection_type: NetworkConnectionType,
    #[serde(default)]
    pub network_transport_protocol: NetworkTransportProtocol,
    #[serde(default)]
    pub bandwidth_low_event_ratio: Option<Single>,
    #[serde(default)]
    pub delay_event_ratio: Option<Single>,
    #[serde(default)]
    pub received_quality_event_ratio: Option<Single>,
    #[serde(default)]
    pub sent_quality_event_ratio: Option<Single>,
    #[serde(default)]
    pub basic_service_set_identifier: Option<String>,
    #[serde(default)]
    pub trace_route_hops: Vec<TraceRouteHop>,
    #[serde(default)]
    pub wifi_band: WifiBand,
    #[serde(default)]
    pub wifi_radio_type: WifiRadioType,
    #[serde(default)]
    pub wifi_channel: Option<i32>,
    #[serde(default)]
    pub wifi_signal_strength: Option<i32>,
    #[serde(default)]
    pub wifi_battery_charge: Option<i32>,
    #[serde(default)]
    pub wifi_microsoft_driver: Option<String>,
    #[serde(default)]
    pub wifi_microsoft_driver_version: Option<String>,
    #[serde(default)]
    pub wifi_vendor_driver: Option<String>,
    #[serde(default)]
    pub wifi_vendor_driver_version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceRouteHop {
    #[serde(default)]
    pub hop_count: Option<i32>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub round_trip_time: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    #[serde(default)]
    pub capture_device_driver: Option<String>,
    #[serde(default)]
    pub capture_device_name: Option<String>,
    #[serde(default)]
    pub capture_not_functioning_event_ratio: Option<Single>,
    #[serde(default)]
    pub cpu_insufficent_event_ratio: Option<Single>,
    #[serde(default)]
    pub device_clipping_event_ratio: Option<Single>,
    #[serde(default)]
    pub device_glitch_event_ratio: Option<Single>,
    #[serde(default)]
    pub howling_event_count: Option<i32>,
    #[serde(default)]
    pub initial_signal_level_root_mean_square: Option<Single>,
    #[serde(default)]
    pub low_speech_level_event_ratio: Option<Single>,
    #[serde(default)]
    pub low_speech_to_noise_event_ratio: Option<Single>,
    #[serde(default)]
    pub mic_glitch_rate: Option<Single>,
    #[serde(default)]
    pub received_noise_level: Option<i32>,
    #[serde(default)]
    pub received_signal_level: Option<i32>,
    #[serde(default)]
    pub render_device_driver: Option<String>,
    #[serde(default)]
    pub render_device_name: Option<String>,
    #[serde(default)]
    pub render_mute_event_ratio: Option<Single>,
    #[serde(default)]
    pub render_not_functioning_event_ratio: Option<Single>,
    #[serde(default)]
    pub render_zero_volume_event_ratio: Option<Single>,
    #[serde(default)]
    pub sent_noise_level: Option<i32>,
    #[serde(default)]
    pub sent_signal_level: Option<i32>,
    #[serde(default)]
    pub speaker_glitch_rate: Option<Single>,
}
