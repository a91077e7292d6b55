//! The enumerations of `microsoft.graph.callRecords`, member names exactly as in the CSDL.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Declares an enum whose JSON form is the CSDL member name. Names are spelled out rather than
/// derived, because Graph's are not regular camelCase (`macOS`, `g7221c`, `frequency24GHz`).
macro_rules! graph_enum {
    ($(#[$meta:meta])* $name:ident : $csdl:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            /// Every member, in CSDL order.
            pub(crate) const MEMBERS: &'static [&'static str] = &[$($text),+];
            /// The qualified CSDL name, used in error messages.
            pub(crate) const CSDL_NAME: &'static str = $csdl;

            pub(crate) fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| {
                    de::Error::custom(format!(
                        "'{}' is not a member of {}; expected one of: {}",
                        text, Self::CSDL_NAME, Self::MEMBERS.join(", ")
                    ))
                })
            }
        }
    };
}

graph_enum!(CallType: "microsoft.graph.callRecords.callType" {
    Unknown = "unknown", GroupCall = "groupCall", PeerToPeer = "peerToPeer",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(
    /// `unknown` is listed by the docs but absent from the v1.0 CSDL and SDK; see `modalities`.
    Modality: "microsoft.graph.callRecords.modality" {
    Audio = "audio", Video = "video", VideoBasedScreenSharing = "videoBasedScreenSharing",
    Data = "data", ScreenSharing = "screenSharing", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(ClientPlatform: "microsoft.graph.callRecords.clientPlatform" {
    Unknown = "unknown", Windows = "windows", MacOs = "macOS", IOs = "iOS", Android = "android",
    Web = "web", IpPhone = "ipPhone", RoomSystem = "roomSystem", SurfaceHub = "surfaceHub",
    HoloLens = "holoLens", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(ProductFamily: "microsoft.graph.callRecords.productFamily" {
    Unknown = "unknown", Teams = "teams", SkypeForBusiness = "skypeForBusiness", Lync = "lync",
    UnknownFutureValue = "unknownFutureValue", AzureCommunicationServices = "azureCommunicationServices",
});

graph_enum!(ServiceRole: "microsoft.graph.callRecords.serviceRole" {
    Unknown = "unknown", CustomBot = "customBot",
    SkypeForBusinessMicrosoftTeamsGateway = "skypeForBusinessMicrosoftTeamsGateway",
    SkypeForBusinessAudioVideoMcu = "skypeForBusinessAudioVideoMcu",
    SkypeForBusinessApplicationSharingMcu = "skypeForBusinessApplicationSharingMcu",
    SkypeForBusinessCallQueues = "skypeForBusinessCallQueues",
    SkypeForBusinessAutoAttendant = "skypeForBusinessAutoAttendant",
    MediationServer = "mediationServer",
    MediationServerCloudConnectorEdition = "mediationServerCloudConnectorEdition",
    ExchangeUnifiedMessagingService = "exchangeUnifiedMessagingService",
    MediaController = "mediaController",
    ConferencingAnnouncementService = "conferencingAnnouncementService",
    ConferencingAttendant = "conferencingAttendant",
    AudioTeleconferencerController = "audioTeleconferencerController",
    SkypeForBusinessUnifiedCommunicationApplicationPlatform = "skypeForBusinessUnifiedCommunicationApplicationPlatform",
    ResponseGroupServiceAnnouncementService = "responseGroupServiceAnnouncementService",
    Gateway = "gateway", SkypeTranslator = "skypeTranslator",
    SkypeForBusinessAttendant = "skypeForBusinessAttendant", ResponseGroupService = "responseGroupService",
    Voicemail = "voicemail", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(UserFeedbackRating: "microsoft.graph.callRecords.userFeedbackRating" {
    NotRated = "notRated", Bad = "bad", Poor = "poor", Fair = "fair", Good = "good",
    Excellent = "excellent", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(FailureStage: "microsoft.graph.callRecords.failureStage" {
    Unknown = "unknown", CallSetup = "callSetup", Midcall = "midcall",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(MediaStreamDirection: "microsoft.graph.callRecords.mediaStreamDirection" {
    CallerToCallee = "callerToCallee", CalleeToCaller = "calleeToCaller",
});

graph_enum!(AudioCodec: "microsoft.graph.callRecords.audioCodec" {
    Unknown = "unknown", Invalid = "invalid", Cn = "cn", Pcma = "pcma", Pcmu = "pcmu",
    AmrWide = "amrWide", G722 = "g722", G7221 = "g7221", G7221c = "g7221c", G729 = "g729",
    MultiChannelAudio = "multiChannelAudio", Muchv2 = "muchv2", Opus = "opus", Satin = "satin",
    SatinFullband = "satinFullband", RtAudio8 = "rtAudio8", RtAudio16 = "rtAudio16", Silk = "silk",
    SilkNarrow = "silkNarrow", SilkWide = "silkWide", Siren = "siren", XmsRta = "xmsRta",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(VideoCodec: "microsoft.graph.callRecords.videoCodec" {
    Unknown = "unknown", Invalid = "invalid", Av1 = "av1", H263 = "h263", H264 = "h264",
    H264s = "h264s", H264uc = "h264uc", H265 = "h265", Rtvc1 = "rtvc1", RtVideo = "rtVideo",
    Xrtvc1 = "xrtvc1", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(NetworkConnectionType: "microsoft.graph.callRecords.networkConnectionType" {
    Unknown = "unknown", Wired = "wired", Wifi = "wifi", Mobile = "mobile", Tunnel = "tunnel",
    UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(NetworkTransportProtocol: "microsoft.graph.callRecords.networkTransportProtocol" {
    Unknown = "unknown", Udp = "udp", Tcp = "tcp", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(WifiBand: "microsoft.graph.callRecords.wifiBand" {
    Unknown = "unknown", Frequency24GHz = "frequency24GHz", Frequency50GHz = "frequency50GHz",
    Frequency60GHz = "frequency60GHz", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(WifiRadioType: "microsoft.graph.callRecords.wifiRadioType" {
    Unknown = "unknown", Wifi80211a = "wifi80211a", Wifi80211b = "wifi80211b",
    Wifi80211g = "wifi80211g", Wifi80211n = "wifi80211n", Wifi80211ac = "wifi80211ac",
    Wifi80211ax = "wifi80211ax", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(PstnCallDurationSource: "microsoft.graph.callRecords.pstnCallDurationSource" {
    Microsoft = "microsoft", Operator = "operator",
});

graph_enum!(PstnUserBlockMode: "microsoft.graph.callRecords.pstnUserBlockMode" {
    Blocked = "blocked", Unblocked = "unblocked", UnknownFutureValue = "unknownFutureValue",
});

graph_enum!(EndpointType: "microsoft.graph.endpointType" {
    Default = "default", Voicemail = "voicemail", SkypeForBusiness = "skypeForBusiness",
    SkypeForBusinessVoipPhone = "skypeForBusinessVoipPhone", UnknownFutureValue = "unknownFutureValue",
});

/// Evolvable members (those after `unknownFutureValue`), by the JSON property that carries them.
/// They are written under their own name only when the client sends
/// `Prefer: include-unknown-enum-members`, as Graph does; in v1.0 there is exactly one.
pub(crate) const EVOLVABLE_MEMBERS: &[(&str, &str)] = &[("productFamily", "azureCommunicationServices")];

macro_rules! defaults_to {
    ($($name:ident => $variant:ident),+ $(,)?) => {
        $(impl Default for $name { fn default() -> Self { Self::$variant } })+
    };
}

// Non-nullable enums that a sender may leave out take the member that means "not known".
defaults_to!(
    CallType => Unknown, ClientPlatform => Unknown, ProductFamily => Unknown,
    ServiceRole => Unknown, UserFeedbackRating => NotRated, FailureStage => Unknown,
    NetworkConnectionType => Unknown, NetworkTransportProtocol => Unknown,
    WifiBand => Unknown, WifiRadioType => Unknown,
);
