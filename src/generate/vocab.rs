//! Fixed word lists and wire constants the generator draws from.
//!
//! Enum strings here must be members of the v1.0 CSDL's enums (no `unknown` modality); the
//! Python SDK turns anything else into `None`. The tests check the output against their own
//! copy of the CSDL lists, so a typo here fails a test instead of a dashboard.

pub(super) const PARTICIPANT_ENDPOINT: &str = "#microsoft.graph.callRecords.participantEndpoint";
pub(super) const SERVICE_ENDPOINT: &str = "#microsoft.graph.callRecords.serviceEndpoint";
pub(super) const CLIENT_USER_AGENT: &str = "#microsoft.graph.callRecords.clientUserAgent";
pub(super) const SERVICE_USER_AGENT: &str = "#microsoft.graph.callRecords.serviceUserAgent";
/// Graph's examples type `identity.user` with the graph namespace…
pub(super) const GRAPH_USER_IDENTITY: &str = "#microsoft.graph.userIdentity";
/// …and `associatedIdentity` with the callRecords one.
pub(super) const CALL_RECORDS_USER_IDENTITY: &str = "#microsoft.graph.callRecords.userIdentity";

pub(super) const DOMAIN: &str = "contoso.com";

/// Public Microsoft client application ids that Teams clients report as `azureADAppId`.
pub(super) const TEAMS_CLIENT_APP_ID: &str = "1fec8e78-bce4-4aaf-ab1b-5451cc387264";
pub(super) const TEAMS_WEB_APP_ID: &str = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346";

pub(super) const FIRST_NAMES: &[&str] = &[
    "Abbie",
    "Adele",
    "Alex",
    "Allan",
    "Amara",
    "Anette",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Christie",
    "Dana",
    "Diego",
    "Elena",
    "Emily",
    "Enrico",
    "Fatima",
    "Grady",
    "Hana",
    "Henrietta",
    "Irvin",
    "Isaiah",
    "Jamal",
    "Johanna",
    "Joni",
    "Kenji",
    "Lee",
    "Lidia",
    "Lynne",
    "Mai",
    "Marta",
    "Megan",
    "Miriam",
    "Nestor",
    "Nia",
    "Noah",
    "Olga",
    "Omar",
    "Owen",
    "Patti",
    "Pradeep",
    "Priya",
    "Quinn",
    "Raul",
    "Rosa",
    "Sakura",
    "Samir",
    "Sara",
    "Sean",
    "Sofia",
    "Tariq",
    "Tomas",
    "Uma",
    "Valentina",
    "Victor",
    "Wei",
    "Xavier",
    "Yara",
    "Yusuf",
    "Zoe",
];

pub(super) const LAST_NAMES: &[&str] = &[
    "Adams",
    "Ahmed",
    "Alvarez",
    "Bauer",
    "Bell",
    "Brown",
    "Castillo",
    "Chowdhury",
    "Cohen",
    "Diaz",
    "Dubois",
    "Evans",
    "Fischer",
    "Franklin",
    "Garcia",
    "Gupta",
    "Hansen",
    "Hughes",
    "Ibrahim",
    "Ito",
    "Jensen",
    "Johnson",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lee",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Petrov",
    "Quinn",
    "Rossi",
    "Sanchez",
    "Schmidt",
    "Silva",
    "Singh",
    "Smith",
    "Sorensen",
    "Suzuki",
    "Tanaka",
    "Thomsen",
    "Turner",
    "Vargas",
    "Vogel",
    "Walker",
    "Wang",
    "Wilkins",
    "Wright",
    "Yamamoto",
    "Young",
    "Zhang",
    "Zimmerman",
];

/// Office sites: city code for room names, the public address the office NATs to, and the
/// country (an index into `COUNTRIES`) that is the usage location of the people based there.
pub(super) const SITES: &[(&str, &str, usize)] = &[
    ("Redmond", "131.107.8", US),
    ("London", "194.73.112", GB),
    ("Munich", "62.159.77", DE),
    ("Singapore", "101.100.160", SG),
];

pub(super) const WINDOWS_CPUS: &[(&str, i64, i64)] = &[
    ("Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", 8, 2995),
    ("11th Gen Intel(R) Core(TM) i5-1145G7 @ 2.60GHz", 8, 2611),
    ("Intel(R) Core(TM) i7-10610U CPU @ 1.80GHz", 8, 2304),
    ("12th Gen Intel(R) Core(TM) i7-1265U", 12, 2688),
    ("13th Gen Intel(R) Core(TM) i7-1365U", 12, 1800),
    ("Intel(R) Core(TM) Ultra 7 165U", 14, 2100),
    ("AMD Ryzen 7 PRO 5850U with Radeon Graphics", 16, 1901),
    ("AMD Ryzen 5 PRO 7540U w/ Radeon 740M Graphics", 12, 3201),
    ("Intel(R) Xeon(R) W-2245 CPU @ 3.90GHz", 16, 3912),
    ("Intel(R) Core(TM) i5-8365U CPU @ 1.60GHz", 8, 1896),
];

pub(super) const MAC_CPUS: &[(&str, i64, i64)] = &[
    ("Apple M1", 8, 3204),
    ("Apple M1 Pro", 10, 3228),
    ("Apple M2", 8, 3490),
    ("Apple M2 Pro", 12, 3504),
    ("Apple M3", 8, 4056),
    ("Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz", 16, 2300),
];

pub(super) const ROOM_CPUS: &[(&str, i64, i64)] = &[
    ("Intel(R) Core(TM) i5-8500T CPU @ 2.10GHz", 6, 2100),
    ("Intel(R) Core(TM) i7-8700T CPU @ 2.40GHz", 12, 2400),
];

pub(super) const ANDROID_MODELS: &[&str] = &["SM-G991B", "SM-S918B", "Pixel 7", "Pixel 8 Pro", "SM-A546B"];
pub(super) const IOS_MODELS: &[&str] = &["iPhone", "iPhone15,2", "iPhone16,1", "iPad13,4"];
pub(super) const IP_PHONES: &[&str] = &["Poly CCX 600", "Yealink MP58", "Poly CCX 400", "AudioCodes C450HD"];

pub(super) const TEAMS_VERSIONS: &[&str] = &[
    "24004.1309.2689.2246",
    "24033.813.2773.520",
    "24074.2321.2810.3500",
    "24102.2223.2870.9480",
    "24124.2311.2911.3341",
];

/// Audio devices as (capture name, capture driver, render name, render driver).
pub(super) type AudioDevices = (&'static str, Option<&'static str>, &'static str, Option<&'static str>);

pub(super) const WINDOWS_AUDIO: &[AudioDevices] = &[
    (
        "Headset Microphone (Jabra Evolve2 65)",
        Some("Jabra: 10.0.22621.1"),
        "Headphones (Jabra Evolve2 65)",
        Some("Jabra: 10.0.22621.1"),
    ),
    (
        "Microphone (Poly BT700)",
        Some("Microsoft: 10.0.22621.2506"),
        "Headset Earphone (Poly BT700)",
        Some("Microsoft: 10.0.22621.2506"),
    ),
    (
        "Echo Cancelling Speakerphone (Jabra Speak 510 USB)",
        Some("Microsoft: 10.0.22621.1"),
        "Echo Cancelling Speakerphone (Jabra Speak 510 USB)",
        Some("Microsoft: 10.0.22621.1"),
    ),
    (
        "Microphone (Logitech Zone Wired)",
        Some("Microsoft: 10.0.19041.1"),
        "Headphones (Logitech Zone Wired)",
        Some("Microsoft: 10.0.19041.1"),
    ),
    (
        "Microphone Array (Realtek(R) Audio)",
        Some("Realtek: 6.0.9235.1"),
        "Speakers (Realtek(R) Audio)",
        Some("Realtek: 6.0.9235.1"),
    ),
    (
        "Microphone Array (Intel® Smart Sound Technology for Digital Microphones)",
        Some("Intel: 10.29.0.7767"),
        "Speakers (Realtek(R) Audio)",
        Some("Realtek: 6.0.9235.1"),
    ),
    (
        "Microphone (Surface Dock 2 Audio)",
        Some("Microsoft: 10.0.22621.1"),
        "Speakers (Surface Omnisonic Speakers)",
        Some("Realtek: 6.0.9549.1"),
    ),
];

pub(super) const MAC_AUDIO: &[AudioDevices] = &[
    ("MacBook Pro Microphone", None, "MacBook Pro Speakers", None),
    ("MacBook Air Microphone", None, "MacBook Air Speakers", None),
    ("AirPods Pro", None, "AirPods Pro", None),
    ("Jabra Evolve2 75", None, "Jabra Evolve2 75", None),
];

pub(super) const MOBILE_AUDIO: &[AudioDevices] = &[
    ("Default input device", None, "Default output device", None),
    ("Bluetooth headset", None, "Bluetooth headset", None),
];

pub(super) const ROOM_AUDIO: &[AudioDevices] = &[
    (
        "Echo Cancelling Speakerphone (Logitech Rally)",
        Some("Microsoft: 10.0.19041.1"),
        "Echo Cancelling Speakerphone (Logitech Rally)",
        Some("Microsoft: 10.0.19041.1"),
    ),
    (
        "Microphone (Poly Studio X50)",
        Some("Microsoft: 10.0.19041.1"),
        "Speakers (Poly Studio X50)",
        Some("Microsoft: 10.0.19041.1"),
    ),
    (
        "Microphone Array (Yealink MVC)",
        Some("Microsoft: 10.0.19041.1"),
        "Speakers (Yealink MVC)",
        Some("Microsoft: 10.0.19041.1"),
    ),
];

/// Wi-Fi adapters as (vendor driver, vendor driver version).
pub(super) const WIFI_ADAPTERS: &[(&str, &str)] = &[
    ("Intel(R) Wi-Fi 6 AX201 160MHz", "22.200.0.6"),
    ("Intel(R) Wi-Fi 6E AX211 160MHz", "23.30.0.6"),
    (
        "Killer(R) Wi-Fi 6E AX1675i 160MHz Wireless Network Adapter (211NGW)",
        "22.160.0.4",
    ),
    ("Realtek RTL8852BE WiFi 6 802.11ax PCIe Adapter", "6001.16.147.0"),
    ("Qualcomm Atheros QCA61x4A Wireless Network Adapter", "12.0.0.1118"),
];

/// Codecs weighted by how often each kind of session negotiates them: PSTN trunks speak the
/// G.7xx family, Skype for Business and Lync the older Microsoft codecs, Teams SATIN and Opus.
pub(super) const PSTN_AUDIO_CODECS: &[(&str, u32)] =
    &[("pcmu", 35), ("pcma", 20), ("g722", 20), ("silkWide", 10), ("opus", 15)];
pub(super) const LEGACY_AUDIO_CODECS: &[(&str, u32)] = &[
    ("rtAudio16", 35),
    ("siren", 20),
    ("g722", 25),
    ("silkWide", 15),
    ("g7221", 5),
];
pub(super) const TEAMS_AUDIO_CODECS: &[(&str, u32)] = &[
    ("satin", 35),
    ("opus", 30),
    ("silk", 12),
    ("silkWide", 6),
    ("satinFullband", 6),
    ("g722", 6),
    ("rtAudio16", 3),
    ("silkNarrow", 2),
];
pub(super) const LEGACY_VIDEO_CODECS: &[(&str, u32)] = &[("h264uc", 50), ("rtvc1", 30), ("xrtvc1", 20)];
pub(super) const TEAMS_VIDEO_CODECS: &[(&str, u32)] = &[
    ("h264", 55),
    ("av1", 20),
    ("h264s", 15),
    ("h264uc", 5),
    ("h265", 3),
    ("rtVideo", 2),
];
pub(super) const SCREEN_SHARING_CODECS: &[(&str, u32)] = &[("h264", 70), ("rtvc1", 15), ("av1", 15)];

pub(super) const SETUP_FAILURE_REASONS: &[(&str, u32)] = &[
    ("CallSetupTimedOut", 30),
    ("MediaConnectivityFailure", 25),
    ("IceConnectivityChecksFailed", 15),
    ("TransportConnectionFailed", 10),
    ("", 20),
];

pub(super) const MIDCALL_FAILURE_REASONS: &[(&str, u32)] = &[
    ("MediaDisconnected", 30),
    ("NetworkConnectionLost", 25),
    ("MediaTimeout", 15),
    ("UnexpectedClientError", 10),
    ("", 20),
];

/// Feedback tokens Teams asks about for audio, as in Graph's example.
pub(super) const AUDIO_TOKENS: &[&str] = &[
    "NoSound",
    "OtherNoSound",
    "Echo",
    "Noisy",
    "LowVolume",
    "Stopped",
    "DistortedSound",
    "Interruptions",
];
pub(super) const VIDEO_TOKENS: &[&str] = &["FrozenVideo", "PixelatedVideo", "VideoAudioOutOfSync"];

pub(super) const FEEDBACK_TEXTS_POOR: &[&str] = &[
    "Audio kept cutting out.",
    "Could not hear the other side for a while.",
    "Robotic voice, lots of echo.",
    "Video froze several times.",
    "Dropped out of the meeting twice.",
];
pub(super) const FEEDBACK_TEXTS_GOOD: &[&str] = &["Worked fine.", "Clear audio.", "Great call quality."];

/// A country as the usage logs name it.
pub(super) struct Country {
    /// ISO 3166-1 alpha-2, for `tenantCountryCode`, `usageCountryCode` and the like.
    pub(super) code: &'static str,
    /// What `destinationName` says.
    pub(super) name: &'static str,
    /// Currency Microsoft bills a tenant based here in (ISO 4217).
    pub(super) currency: &'static str,
    /// Outside numbers as (format, weight): each `#` is a random digit. Where a regulator
    /// reserves numbers for drama (NANP 555, Ofcom's 020 7946 0xxx, ACMA's 0491 570), we use those.
    pub(super) numbers: &'static [(&'static str, u32)],
    /// Per-minute rates for outbound calls from a tenant here, in thousandths of the currency:
    /// (domestic, international).
    pub(super) rates: (i64, i64),
    /// Whether external numbers are partly masked in this country's logs (privacy rules).
    pub(super) masks: bool,
}

pub(super) const US: usize = 0;
pub(super) const GB: usize = 1;
pub(super) const DE: usize = 2;
pub(super) const SG: usize = 3;
const FR: usize = 4;
const AU: usize = 5;
const IN: usize = 6;
const NL: usize = 7;
const JP: usize = 8;

pub(super) const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        name: "United States",
        currency: "USD",
        numbers: &[
            ("+1425555####", 3),
            ("+1206555####", 2),
            ("+1212555####", 2),
            ("+1312555####", 1),
            ("+1415555####", 1),
            ("+1617555####", 1),
        ],
        rates: (20, 240),
        masks: false,
    },
    Country {
        code: "GB",
        name: "United Kingdom",
        currency: "GBP",
        numbers: &[
            ("+442079460###", 2),
            ("+441134960###", 1),
            ("+441614960###", 1),
            ("+447700900###", 2),
        ],
        rates: (18, 200),
        masks: true,
    },
    Country {
        code: "DE",
        name: "Germany",
        currency: "EUR",
        numbers: &[
            ("+4930########", 2),
            ("+4989########", 2),
            ("+49151########", 1),
            ("+4940########", 1),
        ],
        rates: (19, 220),
        masks: true,
    },
    Country {
        code: "SG",
        name: "Singapore",
        currency: "USD",
        numbers: &[("+659#######", 2), ("+658#######", 1)],
        rates: (16, 260),
        masks: false,
    },
    Country {
        code: "FR",
        name: "France",
        currency: "EUR",
        numbers: &[("+3319900####", 1), ("+33639980###", 1)],
        rates: (19, 220),
        masks: true,
    },
    Country {
        code: "AU",
        name: "Australia",
        currency: "AUD",
        numbers: &[("+61491570###", 1), ("+6125550####", 1)],
        rates: (22, 250),
        masks: false,
    },
    Country {
        code: "IN",
        name: "India",
        currency: "INR",
        numbers: &[("+9122########", 1), ("+9198########", 1)],
        rates: (20, 300),
        masks: false,
    },
    Country {
        code: "NL",
        name: "Netherlands",
        currency: "EUR",
        numbers: &[("+3120#######", 1), ("+316########", 1)],
        rates: (19, 220),
        masks: true,
    },
    Country {
        code: "JP",
        name: "Japan",
        currency: "JPY",
        numbers: &[("+813########", 1), ("+8190########", 1)],
        rates: (25, 280),
        masks: false,
    },
];

/// Where outside parties' numbers come from, besides the tenant's own country (see
/// `directory::build`): mostly the countries the tenant has offices in.
pub(super) const OUTSIDE_COUNTRIES: &[(usize, u32)] = &[
    (US, 12),
    (GB, 8),
    (DE, 8),
    (SG, 5),
    (FR, 3),
    (AU, 3),
    (IN, 3),
    (NL, 2),
    (JP, 2),
];

/// Blocks of direct-dial numbers handed to users, per site country: the user's number is the
/// prefix followed by the digits of `base + serial`.
pub(super) const DID_BLOCKS: &[(usize, &str, i64)] = &[
    (US, "+1425", 7_000_000),
    (GB, "+4420", 30_000_000),
    (DE, "+4989", 20_000_000),
    (SG, "+656", 3_000_000),
];

/// Audio conferencing bridge numbers per tenant country: (toll, toll free) formats.
pub(super) const BRIDGE_NUMBERS: &[(usize, &str, &str)] = &[
    (US, "+1872555####", "+1833555####"),
    (GB, "+443303######", "+44800#######"),
    (DE, "+496950######", "+49800#######"),
    (SG, "+6531######", "+65800#######"),
];

/// Operator Connect carriers a tenant may buy numbers from, per tenant country.
pub(super) const CARRIERS: &[(usize, &[&str])] = &[
    (US, &["Verizon", "AT&T", "Lumen"]),
    (GB, &["BT", "Vodafone"]),
    (DE, &["Deutsche Telekom", "Vodafone"]),
    (SG, &["Singtel", "NTT"]),
];

/// Calling Plan licenses: domestic and international, domestic only, and the Telstra plan.
pub(super) const CALLING_PLANS: &[(&str, u32)] = &[("MCOPSTNU", 60), ("MCOPSTN1", 37), ("MCOPSTNEAU2", 3)];
/// Audio Conferencing's own capability, for dial-in and dial-out rows of meetings.
pub(super) const CONFERENCING_LICENSE: &str = "MCOPSTNC";
pub(super) const SMS_LICENSE: &str = "MCOSMS1";

/// Teams datacenters Direct Routing reports as signaling and media locations, per site country.
pub(super) const DATACENTERS: &[(usize, &[&str])] = &[
    (US, &["USWE", "USEA", "USSO"]),
    (GB, &["EUNO", "EUWE"]),
    (DE, &["EUWE", "EUNO"]),
    (SG, &["APSE", "APEA"]),
];

/// A final SIP code, the phrase Teams reports for it and the Microsoft sub-codes it comes with.
pub(super) type SipOutcome = (i64, &'static str, &'static [i64]);

/// Final SIP responses of Direct Routing calls that were never established, with Microsoft's
/// sub-codes (`callEndSubReason`) and the phrase Teams reports, weighted. Unanswered calls
/// (487, 480, 486) dominate; network and SBC trouble makes up the rest.
pub(super) const SIP_FAILURES: &[(SipOutcome, u32)] = &[
    ((487, "Request Terminated", &[540487, 560487]), 30),
    ((486, "Busy Here", &[540486, 560486]), 20),
    ((480, "Temporarily Unavailable", &[560480, 540480]), 16),
    ((408, "Request Timeout", &[560408, 510408]), 9),
    ((404, "Not Found", &[560404, 510404]), 7),
    ((503, "Service Unavailable", &[560503, 510503]), 7),
    ((500, "Server Internal Error", &[560500, 510500]), 4),
    ((403, "Forbidden", &[560403, 510403]), 4),
    ((488, "Not Acceptable Here", &[560488, 540488]), 3),
];
