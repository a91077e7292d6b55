//! Ingest-side shapes of the polymorphic types. A sender may omit `@odata.type` (we infer the
//! type from the properties present) or spell it without `#` or in another case (the SDKs
//! compare it case-insensitively); these flat shapes accept all of that and then convert to the
//! typed enums, refusing properties that the resolved type does not declare.

use serde::Deserialize;

use super::enums::*;
use super::types::*;

const NAMESPACE: &str = "microsoft.graph.callrecords.";

fn type_name(odata_type: &str) -> String {
    let lowered = odata_type.trim_start_matches('#').to_ascii_lowercase();
    lowered.strip_prefix(NAMESPACE).map(str::to_owned).unwrap_or(lowered)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointWire {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(default)]
    user_agent: Option<UserAgent>,
    #[serde(default)]
    associated_identity: Option<Identity>,
    #[serde(default)]
    cpu_cores_count: Option<i32>,
    #[serde(default)]
    cpu_name: Option<String>,
    #[serde(default)]
    cpu_processor_speed_in_mhz: Option<i32>,
    #[serde(default)]
    feedback: Option<UserFeedback>,
    #[serde(default)]
    identity: Option<IdentitySet>,
    #[serde(default)]
    name: Option<String>,
}

impl EndpointWire {
    fn has_participant_properties(&self) -> bool {
        self.associated_identity.is_some()
            || self.cpu_cores_count.is_some()
            || self.cpu_name.is_some()
            || self.cpu_processor_speed_in_mhz.is_some()
            || self.feedback.is_some()
            || self.identity.is_some()
            || self.name.is_some()
    }
}

impl TryFrom<EndpointWire> for Endpoint {
    type Error = String;

    fn try_from(wire: EndpointWire) -> Result<Self, Self::Error> {
        let kind = match &wire.odata_type {
            Some(odata_type) => type_name(odata_type),
            None if wire.has_participant_properties() => "participantendpoint".to_owned(),
            None => "endpoint".to_owned(),
        };
        match kind.as_str() {
            "participantendpoint" => Ok(Endpoint::Participant(Box::new(ParticipantEndpoint {
                user_agent: wire.user_agent,
                associated_identity: wire.associated_identity,
                cpu_cores_count: wire.cpu_cores_count,
                cpu_name: wire.cpu_name,
                cpu_processor_speed_in_mhz: wire.cpu_processor_speed_in_mhz,
                feedback: wire.feedback,
                identity: wire.identity,
                name: wire.name,
            }))),
            "endpoint" | "serviceendpoint" => {
                if wire.has_participant_properties() {
                    return Err(format!(
                        "a {kind} has only userAgent; properties such as name, feedback and associatedIdentity belong to #microsoft.graph.callRecords.participantEndpoint"
                    ));
                }
                let base = BaseEndpoint {
                    user_agent: wire.user_agent,
                };
                Ok(if kind == "endpoint" {
                    Endpoint::Base(base)
                } else {
                    Endpoint::Service(base)
                })
            }
            _ => Err(format!(
                "'{}' is not an endpoint type; expected #microsoft.graph.callRecords.participantEndpoint, #microsoft.graph.callRecords.serviceEndpoint or #microsoft.graph.callRecords.endpoint",
                wire.odata_type.unwrap_or_default()
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserAgentWire {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(default)]
    application_version: Option<String>,
    #[serde(default)]
    header_value: Option<String>,
    #[serde(rename = "azureADAppId", default)]
    azure_ad_app_id: Option<String>,
    #[serde(default)]
    communication_service_id: Option<String>,
    #[serde(default)]
    platform: Option<ClientPlatform>,
    #[serde(default)]
    product_family: Option<ProductFamily>,
    #[serde(default)]
    role: Option<ServiceRole>,
}

impl TryFrom<UserAgentWire> for UserAgent {
    type Error = String;

    fn try_from(wire: UserAgentWire) -> Result<Self, Self::Error> {
        let has_client_properties = wire.azure_ad_app_id.is_some()
            || wire.communication_service_id.is_some()
            || wire.platform.is_some()
            || wire.product_family.is_some();
        let kind = match &wire.odata_type {
            Some(odata_type) => type_name(odata_type),
            None if wire.role.is_some() => "serviceuseragent".to_owned(),
            None => "clientuseragent".to_owned(),
        };
        match kind.as_str() {
            "clientuseragent" if wire.role.is_none() => Ok(UserAgent::Client(ClientUserAgent {
                application_version: wire.application_version,
                header_value: wire.header_value,
                azure_ad_app_id: wire.azure_ad_app_id,
                communication_service_id: wire.communication_service_id,
                platform: wire.platform.unwrap_or_default(),
                product_family: wire.product_family.unwrap_or_default(),
            })),
            "serviceuseragent" if !has_client_properties => {
                Ok(UserAgent::Service(ServiceUserAgent {
                    application_version: wire.application_version,
                    header_value: wire.header_value,
                    role: wire.role.unwrap_or_default(),
                }))
            }
            "clientuseragent" => Err("role belongs to #microsoft.graph.callRecords.serviceUserAgent, not to a clientUserAgent".to_owned()),
            "serviceuseragent" => Err("platform, productFamily, azureADAppId and communicationServiceId belong to #microsoft.graph.callRecords.clientUserAgent, not to a serviceUserAgent".to_owned()),
            _ => Err(format!(
                "'{}' is not a user agent type; expected #microsoft.graph.callRecords.clientUserAgent or #microsoft.graph.callRecords.serviceUserAgent (userAgent itself is abstract)",
                wire.odata_type.unwrap_or_default()
            )),
        }
    }
}
