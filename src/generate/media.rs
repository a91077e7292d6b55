//! Media lines of a segment: network, device and per-direction stream metrics.
//!
//! Detail is uneven, as in real records and to keep records near 10 KB: the main-audio line of
//! a session's first segment carries the full networkInfo and deviceInfo, and the first
//! segment's streams all metrics. Other media lines and later segments carry a lean shape:
//! streams with the core metrics (jitter, loss, round trip, bandwidth, packets) and networks
//! with address, subnet, connection type, port and link speed. Trace routes come with about
//! one media line in twenty.
//!
//! Quality is decided once per session, from each leg's connection (mobile and Wi-Fi go bad
//! more often than wired), and every stream of the session follows it, so a dashboard sees
//! the poor sessions as a consistent 15 % or so rather than noise. Good streams have 2–20 ms
//! jitter, 0–1 % loss and 20–120 ms round trips; poor ones 30–120 ms, 3–15 % and 300–900 ms,
//! with degraded audio, concealment, frame rates and freezes to match.

use serde_json::{json, Map, Value};

use super::directory::{Connection, Device, Person, Service};
use super::sample::{self, chance, pick, uniform, weighted, Rng};
use super::vocab;
use super::wire::{self, round, single, Obj, Precision, MILLISECOND};

/// One end of a session.
#[derive(Clone, Copy)]
pub(super) enum Side<'a> {
    Client { person: &'a Person, device: &'a Device },
    Service(Service),
}

/// One end of a session with the network it used; fixed for the session's duration.
struct Leg<'a> {
    side: Side<'a>,
    /// The full networkInfo, without `port` (per media line) and `traceRouteHops`.
    network: Map<String, Value>,
    /// The lean networkInfo of later segments and secondary media lines, without `port`.
    lean_network: Map<String, Value>,
    /// The first hop of a trace route: the client's default gateway. `None` for services.
    gateway: Option<String>,
    poor: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Audio,
    Video,
    ScreenSharing,
}

impl Label {
    fn wire_name(self) -> &'static str {
        match self {
            Label::Audio => "main-audio",
            Label::Video => "main-video",
            Label::ScreenSharing => "applicationsharing-video",
        }
    }

    fn first_port(self) -> i64 {
        // Teams' recommended client port ranges per media type.
        match self {
            Label::Audio => 50_000,
            Label::Video => 50_020,
            Label::ScreenSharing => 50_040,
        }
    }
}

/// What is fixed across the segments of one session: legs, quality and codecs.
pub(super) struct SessionMedia<'a> {
    caller: Leg<'a>,
    callee: Leg<'a>,
    poor: bool,
    audio_codec: &'static str,
    video_codec: &'static str,
    screen_codec: &'static str,
    /// PSTN legs are SIP, the only streams Graph gives start and end times.
    sip: bool,
    media_bypassed: bool,
}

impl<'a> SessionMedia<'a> {
    /// `media_bypass`: the PSTN leg's media went straight to the SBC (Direct Routing only).
    pub(super) fn new(rng: &mut Rng, caller: Side<'a>, callee: Side<'a>, media_bypass: bool) -> SessionMedia<'a> {
        let caller = Leg::new(rng, caller);
        let callee = Leg::new(rng, callee);
        let sip = [&caller, &callee]
            .iter()
            .any(|leg| matches!(leg.side, Side::Service(Service::Mediation)));
        let legacy = [&caller, &callee]
            .iter()
            .any(|leg| matches!(leg.side, Side::Client { device, .. } if device.legacy_client));
        let audio_codec = *weighted(
            rng,
            match (sip, legacy) {
                (true, _) => vocab::PSTN_AUDIO_CODECS,
                (false, true) => vocab::LEGACY_AUDIO_CODECS,
                (false, false) => vocab::TEAMS_AUDIO_CODECS,
            },
        );
        let video_codec = *weighted(
            rng,
            if legacy {
                vocab::LEGACY_VIDEO_CODECS
            } else {
                vocab::TEAMS_VIDEO_CODECS
            },
        );
        let screen_codec = *weighted(rng, vocab::SCREEN_SHARING_CODECS);
        let poor = caller.poor || callee.poor;
        SessionMedia {
            caller,
            callee,
            poor,
            audio_codec,
            video_codec,
            screen_codec,
            sip,
            media_bypassed: sip && media_bypass,
        }
    }

    pub(super) fn poor(&self) -> bool {
        self.poor
    }

    /// The `media` array of one segment spanning `[start, end)`; `first_segment` says whether
    /// it is the session's first, the one that carries full detail.
    pub(super) fn render(
        &self,
        rng: &mut Rng,
        start: i64,
        end: i64,
        labels: &[Label],
        precision: Precision,
        first_segment: bool,
    ) -> Value {
        let seconds = ((end - start) as f64 / wire::SECOND as f64).max(1.0);
        let media: Vec<Value> = labels
            .iter()
            .map(|&label| {
                // Device metrics are about microphones and speakers, so only audio carries them.
                let detailed = first_segment && label == Label::Audio;
                let mut media = Obj::with_capacity(6);
                media.put("label", label.wire_name());
                media.put("callerNetwork", self.caller.network_for(rng, label, detailed));
                media.put("calleeNetwork", self.callee.network_for(rng, label, detailed));
                if detailed {
                    if let Side::Client { device, .. } = self.caller.side {
                        media.put("callerDevice", device_info(rng, device, self.caller.poor));
                    }
                    if let Side::Client { device, .. } = self.callee.side {
                        media.put("calleeDevice", device_info(rng, device, self.callee.poor));
                    }
                }
                let streams: Vec<Value> = ["callerToCallee", "calleeToCaller"]
                    .iter()
                    .map(|direction| match label {
                        Label::Audio if first_segment => {
                            self.audio_stream(rng, direction, seconds, start, end, precision)
                        }
                        Label::Video | Label::ScreenSharing if first_segment => {
                            self.video_stream(rng, direction, seconds, label)
                        }
                        _ => self.lean_stream(rng, direction, seconds, label),
                    })
                    .collect();
                media.put("streams", streams);
                media.into_value()
            })
            .collect();
        Value::Array(media)
    }

    fn audio_stream(
        &self,
        rng: &mut Rng,
        direction: &str,
        seconds: f64,
        start: i64,
        end: i64,
        precision: Precision,
    ) -> Value {
        let network = NetworkSample::draw(rng, self.poor);
        let mut stream = Obj::with_capacity(20);
        let stream_id = sample::u32_string(rng);
        // Picked by the id rather than drawn, so the random stream is as it was without them.
        let unmeasurable = stream_id.parse::<u32>().is_ok_and(|id| id % 16 == 0);
        stream.put("streamId", stream_id);
        stream.put("streamDirection", direction);
        stream.put("audioCodec", self.audio_codec);
        let degradation = if self.poor {
            single(round(uniform(rng, 1.0, 3.2), 6))
        } else if chance(rng, 0.5) {
            // Graph leaves it null when there was nothing to measure, as in its example, and
            // sends "NaN" (OData's spelling for a Single that is no number) when the measure
            // could not be computed.
            if unmeasurable {
                Value::from("NaN")
            } else {
                Value::Null
            }
        } else {
            single(round(uniform(rng, 0.0, 0.6), 6))
        };
        stream.put("averageAudioDegradation", degradation);
        network.put_jitter_loss_rtt(rng, &mut stream);
        let concealed = if self.poor {
            uniform(rng, 0.05, 0.25)
        } else {
            uniform(rng, 0.0, 0.02)
        };
        stream.put("averageRatioOfConcealedSamples", single(round(concealed, 6)));
        stream.put(
            "maxRatioOfConcealedSamples",
            single(round((concealed * uniform(rng, 1.2, 3.0)).min(1.0), 6)),
        );
        stream.put("packetUtilization", (seconds * 50.0 * uniform(rng, 0.9, 1.0)) as i64);
        stream.put("averageBandwidthEstimate", network.bandwidth);
        stream.put("wasMediaBypassed", self.media_bypassed);
        let network_jitter = network.jitter_ms * uniform(rng, 1.5, 4.0);
        stream.put("averageAudioNetworkJitter", milliseconds(network_jitter));
        stream.put(
            "maxAudioNetworkJitter",
            milliseconds(network_jitter * uniform(rng, 1.1, 2.0)),
        );
        stream.put(
            "isAudioForwardErrorCorrectionUsed",
            chance(rng, if self.poor { 0.8 } else { 0.2 }),
        );
        if self.sip {
            stream.put("startDateTime", wire::datetime(start, precision));
            stream.put("endDateTime", wire::datetime(end, precision));
        }
        stream.into_value()
    }

    /// A stream with the core metrics only: jitter, loss, round trip, bandwidth and packets.
    fn lean_stream(&self, rng: &mut Rng, direction: &str, seconds: f64, label: Label) -> Value {
        let network = NetworkSample::draw(rng, self.poor);
        let mut stream = Obj::with_capacity(11);
        stream.put("streamId", sample::u32_string(rng));
        stream.put("streamDirection", direction);
        let packets_per_second = match label {
            Label::Audio => {
                stream.put("audioCodec", self.audio_codec);
                uniform(rng, 45.0, 50.0)
            }
            Label::Video => {
                stream.put("videoCodec", self.video_codec);
                uniform(rng, 90.0, 250.0)
            }
            Label::ScreenSharing => {
                stream.put("videoCodec", self.screen_codec);
                uniform(rng, 10.0, 60.0)
            }
        };
        network.put_jitter_loss_rtt(rng, &mut stream);
        stream.put("packetUtilization", (seconds * packets_per_second) as i64);
        stream.put("averageBandwidthEstimate", network.bandwidth);
        stream.into_value()
    }

    fn video_stream(&self, rng: &mut Rng, direction: &str, seconds: f64, label: Label) -> Value {
        let network = NetworkSample::draw(rng, self.poor);
        let screen = label == Label::ScreenSharing;
        let mut stream = Obj::with_capacity(21);
        stream.put("streamId", sample::u32_string(rng));
        stream.put("streamDirection", direction);
        stream.put("videoCodec", if screen { self.screen_codec } else { self.video_codec });
        network.put_jitter_loss_rtt(rng, &mut stream);
        let packets_per_second = if screen {
            uniform(rng, 10.0, 60.0)
        } else {
            uniform(rng, 90.0, 250.0)
        };
        stream.put("packetUtilization", (seconds * packets_per_second) as i64);
        stream.put("averageBandwidthEstimate", network.bandwidth);
        let frame_rate = match (screen, self.poor) {
            (false, false) => uniform(rng, 24.0, 30.0),
            (false, true) => uniform(rng, 6.0, 15.0),
            (true, false) => uniform(rng, 5.0, 15.0),
            (true, true) => uniform(rng, 1.0, 5.0),
        };
        stream.put("averageVideoFrameRate", single(round(frame_rate, 4)));
        stream.put(
            "averageReceivedFrameRate",
            single(round(frame_rate * uniform(rng, 0.9, 1.0), 4)),
        );
        let frame_loss = if self.poor {
            uniform(rng, 5.0, 30.0)
        } else {
            uniform(rng, 0.0, 2.0)
        };
        stream.put("averageVideoFrameLossPercentage", single(round(frame_loss, 4)));
        let video_loss = if self.poor {
            uniform(rng, 0.03, 0.15)
        } else {
            uniform(rng, 0.0, 0.01)
        };
        stream.put("averageVideoPacketLossRate", single(round(video_loss, 6)));
        stream.put(
            "postForwardErrorCorrectionPacketLossRate",
            single(round(video_loss * uniform(rng, 0.1, 0.5), 6)),
        );
        let (low_frame_rate, low_processing) = if self.poor {
            (uniform(rng, 0.2, 0.7), uniform(rng, 0.0, 0.3))
        } else {
            (uniform(rng, 0.0, 0.05), uniform(rng, 0.0, 0.05))
        };
        stream.put("lowFrameRateRatio", single(round(low_frame_rate, 4)));
        stream.put("lowVideoProcessingCapabilityRatio", single(round(low_processing, 4)));
        let freeze_ms = if self.poor {
            Some(uniform(rng, 500.0, 4000.0))
        } else if chance(rng, 0.3) {
            Some(uniform(rng, 100.0, 500.0))
        } else {
            None
        };
        if let Some(freeze_ms) = freeze_ms {
            stream.put("averageFreezeDuration", milliseconds(freeze_ms));
            stream.put("rmsFreezeDuration", milliseconds(freeze_ms * uniform(rng, 1.1, 1.8)));
        }
        stream.put("wasMediaBypassed", false);
        stream.into_value()
    }
}

/// Jitter, loss, round trip and bandwidth of one stream, drawn inside its quality class.
struct NetworkSample {
    jitter_ms: f64,
    loss: f64,
    rtt_ms: f64,
    bandwidth: i64,
}

impl NetworkSample {
    fn draw(rng: &mut Rng, poor: bool) -> NetworkSample {
        if poor {
            NetworkSample {
                jitter_ms: uniform(rng, 30.0, 120.0),
                loss: uniform(rng, 0.03, 0.15),
                rtt_ms: uniform(rng, 300.0, 900.0),
                bandwidth: uniform(rng, 1e5, 1.5e6) as i64,
            }
        } else {
            NetworkSample {
                jitter_ms: uniform(rng, 2.0, 20.0),
                loss: if chance(rng, 0.4) { 0.0 } else { uniform(rng, 0.0, 0.01) },
                rtt_ms: uniform(rng, 20.0, 120.0),
                bandwidth: uniform(rng, 2e6, 5e7) as i64,
            }
        }
    }

    fn put_jitter_loss_rtt(&self, rng: &mut Rng, stream: &mut Obj) {
        stream.put("averageJitter", milliseconds(self.jitter_ms));
        stream.put("maxJitter", milliseconds(self.jitter_ms * uniform(rng, 1.2, 2.5)));
        stream.put("averagePacketLossRate", single(round(self.loss, 6)));
        stream.put(
            "maxPacketLossRate",
            single(round((self.loss * uniform(rng, 1.5, 4.0)).min(1.0), 6)),
        );
        stream.put("averageRoundTripTime", milliseconds(self.rtt_ms));
        stream.put("maxRoundTripTime", milliseconds(self.rtt_ms * uniform(rng, 1.1, 2.0)));
    }
}

/// Graph reports these durations to the millisecond (`PT0.016S`).
fn milliseconds(value: f64) -> Value {
    wire::duration(value.round() as i64 * MILLISECOND)
}

impl<'a> Leg<'a> {
    fn new(rng: &mut Rng, side: Side<'a>) -> Leg<'a> {
        match side {
            Side::Client { person, device } => {
                let connection = *weighted(rng, device.connections);
                let tcp = chance(rng, 0.06);
                let poor_probability = match connection {
                    Connection::Wired => 0.08,
                    Connection::Wifi => 0.17,
                    Connection::Mobile => 0.30,
                    Connection::Tunnel => 0.25,
                } + if tcp { 0.15 } else { 0.0 };
                let poor = chance(rng, poor_probability);
                let (network, gateway) = client_network(rng, person, device, connection, tcp, poor);
                Leg {
                    side,
                    lean_network: lean(&network),
                    network,
                    gateway: Some(gateway),
                    poor,
                }
            }
            Side::Service(service) => {
                // A PSTN leg is the only service leg that can spoil a session (carrier trouble).
                let poor = service == Service::Mediation && chance(rng, 0.1);
                let network = service_network(rng);
                Leg {
                    side,
                    lean_network: lean(&network),
                    network,
                    gateway: None,
                    poor,
                }
            }
        }
    }

    /// The networkInfo of one media line: full or lean, with its own port.
    fn network_for(&self, rng: &mut Rng, label: Label, detailed: bool) -> Value {
        let mut network = if detailed {
            self.network.clone()
        } else {
            self.lean_network.clone()
        };
        let port = match self.side {
            Side::Client { .. } => label.first_port() + sample::between(rng, 0, 19),
            Side::Service(_) => sample::between(rng, 49_152, 53_247),
        };
        network.insert("port".to_owned(), Value::from(port));
        // Clients run a trace route now and then; it rides on the detailed media line.
        if let (true, Some(gateway)) = (detailed, &self.gateway) {
            if chance(rng, TRACE_ROUTE_SHARE) {
                network.insert(
                    "traceRouteHops".to_owned(),
                    Value::Array(trace_route(rng, gateway, self.poor)),
                );
            }
        }
        Value::Object(network)
    }
}

/// Share of detailed client networks with a trace route; about 5 % of all media lines.
const TRACE_ROUTE_SHARE: f64 = 0.08;

/// The keys of a lean networkInfo, in the order the full one writes them.
const LEAN_NETWORK_KEYS: &[&str] = &["ipAddress", "subnet", "linkSpeed", "connectionType", "port"];

fn lean(network: &Map<String, Value>) -> Map<String, Value> {
    let mut lean = Map::with_capacity(LEAN_NETWORK_KEYS.len());
    for &key in LEAN_NETWORK_KEYS {
        if let Some(value) = network.get(key) {
            lean.insert(key.to_owned(), value.clone());
        }
    }
    lean
}

fn client_network(
    rng: &mut Rng,
    person: &Person,
    device: &Device,
    connection: Connection,
    tcp: bool,
    poor: bool,
) -> (Map<String, Value>, String) {
    let site = person.site as i64;
    let in_office = device.platform == "roomSystem"
        || device.platform == "surfaceHub"
        || (matches!(connection, Connection::Wired | Connection::Wifi) && chance(rng, 0.55));
    let (ip_address, subnet, reflexive, dns_suffix, link_speed) = match connection {
        Connection::Mobile => {
            let (a, b) = (sample::between(rng, 64, 127), sample::between(rng, 0, 255));
            (
                format!("100.{a}.{b}.{}", sample::between(rng, 2, 254)),
                format!("100.{a}.{b}.0"),
                Some(format!(
                    "174.{}.{}.{}",
                    sample::between(rng, 192, 255),
                    sample::between(rng, 0, 255),
                    sample::between(rng, 1, 254)
                )),
                None,
                *pick(rng, &[50_000_000i64, 150_000_000, 300_000_000]),
            )
        }
        Connection::Tunnel => {
            let (a, b) = (sample::between(rng, 16, 31), sample::between(rng, 0, 255));
            (
                format!("172.{a}.{b}.{}", sample::between(rng, 2, 254)),
                format!("172.{a}.{b}.0"),
                Some(office_public_ip(rng, site)),
                Some("corp.contoso.com"),
                1_000_000_000,
            )
        }
        Connection::Wired | Connection::Wifi if in_office => {
            let second = 10 + site * 10 + sample::between(rng, 0, 3);
            let third = if connection == Connection::Wifi {
                sample::between(rng, 128, 255)
            } else {
                sample::between(rng, 0, 127)
            };
            let link_speed = if connection == Connection::Wired {
                *weighted(
                    rng,
                    &[
                        (1_000_000_000i64, 70),
                        (100_000_000, 15),
                        (4_294_967_295, 10),
                        (2_500_000_000, 5),
                    ],
                )
            } else {
                wifi_link_speed(rng)
            };
            (
                format!("10.{second}.{third}.{}", sample::between(rng, 4, 250)),
                format!("10.{second}.{third}.0"),
                Some(office_public_ip(rng, site)),
                Some("corp.contoso.com"),
                link_speed,
            )
        }
        Connection::Wired | Connection::Wifi => {
            let home = person.home_network;
            let link_speed = if connection == Connection::Wired {
                1_000_000_000
            } else {
                wifi_link_speed(rng)
            };
            (
                format!("192.168.{home}.{}", sample::between(rng, 2, 250)),
                format!("192.168.{home}.0"),
                Some(person.home_public_ip.clone()),
                None,
                link_speed,
            )
        }
    };

    let gateway = format!("{}1", subnet.trim_end_matches('0'));
    let mut network = Obj::with_capacity(26);
    network.put("ipAddress", ip_address);
    network.put("subnet", subnet);
    network.put("linkSpeed", link_speed);
    network.put("connectionType", connection.wire_name());
    // Set per media line by `network_for`; reserved here so it sits next to the address.
    network.put("port", 0);
    network.put_some("reflexiveIPAddress", reflexive);
    if chance(rng, 0.85) {
        network.put("relayIPAddress", relay_ip(rng));
        network.put("relayPort", sample::between(rng, 3478, 3481));
    }
    match device.platform {
        "web" => {}
        "iOS" | "android" => network.put("macAddress", "02:00:00:00:00:00"),
        _ => network.put("macAddress", sample::mac_address(rng)),
    }
    network.put("dnsSuffix", dns_suffix.map_or(Value::Null, Value::from));
    let ratio = |rng: &mut Rng, poor_range: (f64, f64)| {
        if poor && chance(rng, 0.7) {
            single(round(uniform(rng, poor_range.0, poor_range.1), 2))
        } else if chance(rng, 0.05) {
            single(round(uniform(rng, 0.01, 0.05), 2))
        } else {
            single(0.0)
        }
    };
    network.put("sentQualityEventRatio", ratio(rng, (0.02, 0.3)));
    network.put("receivedQualityEventRatio", ratio(rng, (0.05, 0.45)));
    network.put("delayEventRatio", ratio(rng, (0.0, 0.3)));
    network.put("bandwidthLowEventRatio", ratio(rng, (0.0, 0.25)));
    network.put("networkTransportProtocol", if tcp { "tcp" } else { "udp" });
    if connection == Connection::Wifi {
        put_wifi(rng, &mut network, device, poor);
    } else {
        network.put("wifiBand", "unknown");
        network.put("wifiRadioType", "unknown");
    }
    (network.into_map(), gateway)
}

fn put_wifi(rng: &mut Rng, network: &mut Obj, device: &Device, poor: bool) {
    if chance(rng, 0.7) {
        network.put("basicServiceSetIdentifier", sample::bssid(rng));
    }
    let band = *weighted(
        rng,
        &[("frequency50GHz", 60), ("frequency24GHz", 32), ("frequency60GHz", 8)],
    );
    let (radio, channel) = match band {
        "frequency24GHz" => (*pick(rng, &["wifi80211n", "wifi80211g"]), *pick(rng, &[1i64, 6, 11])),
        "frequency50GHz" => (
            *pick(rng, &["wifi80211ac", "wifi80211ax", "wifi80211n"]),
            *pick(rng, &[36i64, 40, 44, 48, 149, 153, 157, 161]),
        ),
        _ => ("wifi80211ax", *pick(rng, &[5i64, 21, 37, 53])),
    };
    network.put("wifiBand", band);
    network.put("wifiRadioType", radio);
    network.put("wifiChannel", channel);
    let signal = if poor {
        sample::between(rng, 15, 55)
    } else {
        sample::between(rng, 60, 99)
    };
    network.put("wifiSignalStrength", signal);
    if device.on_battery {
        network.put("wifiBatteryCharge", sample::between(rng, 8, 100));
    }
    if let Some((vendor_driver, vendor_version)) = device.wifi_adapter {
        network.put("wifiMicrosoftDriver", "Microsoft Wi-Fi Direct Virtual Adapter");
        network.put("wifiMicrosoftDriverVersion", "10.0.22621.1");
        network.put("wifiVendorDriver", vendor_driver);
        network.put("wifiVendorDriverVersion", vendor_version);
    }
}

fn wifi_link_speed(rng: &mut Rng) -> i64 {
    *pick(
        rng,
        &[
            54_000_000i64,
            144_400_000,
            300_000_000,
            866_700_000,
            1_201_000_000,
            2_402_000_000,
        ],
    )
}

fn office_public_ip(rng: &mut Rng, site: i64) -> String {
    format!("{}.{}", vocab::SITES[site as usize].1, sample::between(rng, 2, 250))
}

/// Microsoft's Teams relays live in 52.112.0.0/14.
fn relay_ip(rng: &mut Rng) -> String {
    format!(
        "52.{}.{}.{}",
        sample::between(rng, 112, 115),
        sample::between(rng, 0, 255),
        sample::between(rng, 1, 254)
    )
}

fn service_network(rng: &mut Rng) -> Map<String, Value> {
    let mut network = Map::with_capacity(6);
    network.insert("ipAddress".to_owned(), Value::from(relay_ip(rng)));
    network.insert("connectionType".to_owned(), Value::from("wired"));
    network.insert("port".to_owned(), Value::from(0));
    network.insert("networkTransportProtocol".to_owned(), Value::from("udp"));
    network.insert("wifiBand".to_owned(), Value::from("unknown"));
    network.insert("wifiRadioType".to_owned(), Value::from("unknown"));
    network
}

fn trace_route(rng: &mut Rng, gateway: &str, poor: bool) -> Vec<Value> {
    let n_hops = sample::between(rng, 3, 7);
    let final_rtt = if poor {
        uniform(rng, 150.0, 600.0)
    } else {
        uniform(rng, 10.0, 60.0)
    };
    (1..=n_hops)
        .map(|hop| {
            let ip_address = if hop == 1 {
                gateway.to_owned()
            } else if hop == n_hops {
                relay_ip(rng)
            } else {
                format!(
                    "{}.{}.{}.{}",
                    sample::between(rng, 62, 213),
                    sample::between(rng, 0, 255),
                    sample::between(rng, 0, 255),
                    sample::between(rng, 1, 254)
                )
            };
            let rtt = final_rtt * hop as f64 / n_hops as f64 * uniform(rng, 0.8, 1.1);
            json!({ "hopCount": hop, "ipAddress": ip_address, "roundTripTime": milliseconds(rtt.max(1.0)) })
        })
        .collect()
}

fn device_info(rng: &mut Rng, device: &Device, poor: bool) -> Value {
    let (capture_name, capture_driver, render_name, render_driver) = device.audio;
    // Graph leaves event ratios out when nothing happened (see its example), so only the
    // occasional non-zero ratio is written.
    let rare = |rng: &mut Rng, info: &mut Obj, key: &str, probability: f64, low: f64, high: f64| {
        if chance(rng, probability) {
            info.put(key, single(round(uniform(rng, low, high), 3)));
        }
    };
    let mut info = Obj::with_capacity(20);
    info.put("captureDeviceName", capture_name);
    info.put_some("captureDeviceDriver", capture_driver);
    info.put("renderDeviceName", render_name);
    info.put_some("renderDeviceDriver", render_driver);
    info.put("receivedSignalLevel", sample::between(rng, -30, -8));
    info.put("receivedNoiseLevel", sample::between(rng, -95, -60));
    info.put("sentSignalLevel", sample::between(rng, -30, -8));
    info.put("sentNoiseLevel", sample::between(rng, -95, -60));
    info.put(
        "initialSignalLevelRootMeanSquare",
        single(round(uniform(rng, 20.0, 200.0), 4)),
    );
    let glitch_scale = if poor { 4.0 } else { 1.0 };
    info.put(
        "micGlitchRate",
        single(round(uniform(rng, 0.0, 150.0) * glitch_scale, 0)),
    );
    info.put(
        "speakerGlitchRate",
        single(round(uniform(rng, 0.0, 300.0) * glitch_scale, 0)),
    );
    rare(rng, &mut info, "captureNotFunctioningEventRatio", 0.005, 0.5, 1.0);
    rare(rng, &mut info, "renderNotFunctioningEventRatio", 0.005, 0.5, 1.0);
    rare(
        rng,
        &mut info,
        "cpuInsufficentEventRatio",
        if poor { 0.2 } else { 0.03 },
        0.01,
        0.3,
    );
    rare(rng, &mut info, "deviceClippingEventRatio", 0.05, 0.01, 0.2);
    rare(
        rng,
        &mut info,
        "deviceGlitchEventRatio",
        if poor { 0.3 } else { 0.05 },
        0.01,
        0.2,
    );
    rare(rng, &mut info, "lowSpeechLevelEventRatio", 0.08, 0.01, 0.4);
    rare(rng, &mut info, "lowSpeechToNoiseEventRatio", 0.08, 0.01, 0.3);
    rare(rng, &mut info, "renderMuteEventRatio", 0.03, 0.05, 1.0);
    rare(rng, &mut info, "renderZeroVolumeEventRatio", 0.02, 0.05, 1.0);
    if chance(rng, 0.01) {
        info.put("howlingEventCount", sample::between(rng, 1, 3));
    }
    info.into_value()
}

/// A user's call-quality rating; poor sessions get poor ratings far more often.
pub(super) fn feedback(rng: &mut Rng, poor: bool, video: bool) -> Value {
    let rating = *if poor {
        weighted(
            rng,
            &[
                ("notRated", 2),
                ("bad", 25),
                ("poor", 35),
                ("fair", 25),
                ("good", 10),
                ("excellent", 3),
            ],
        )
    } else {
        weighted(
            rng,
            &[
                ("notRated", 2),
                ("bad", 2),
                ("poor", 4),
                ("fair", 12),
                ("good", 35),
                ("excellent", 45),
            ],
        )
    };
    let unhappy = matches!(rating, "bad" | "poor");
    let mut tokens = Obj::new();
    let token_names = vocab::AUDIO_TOKENS
        .iter()
        .chain(if video { vocab::VIDEO_TOKENS } else { &[] });
    for token in token_names {
        tokens.put(token, unhappy && chance(rng, 0.3));
    }
    let mut feedback = Obj::new();
    feedback.put("rating", rating);
    if chance(rng, 0.3) {
        let text = if unhappy {
            pick(rng, vocab::FEEDBACK_TEXTS_POOR)
        } else {
            pick(rng, vocab::FEEDBACK_TEXTS_GOOD)
        };
        feedback.put("text", *text);
    }
    feedback.put("tokens", tokens.into_value());
    feedback.into_value()
}
