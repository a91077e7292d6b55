//! The cast: one tenant's users, rooms, guests, ACS users and outside phone numbers, with
//! their devices, plus the recurring meetings they hold.
//!
//! Built once per run from the seed before any call, so the same person keeps the same id,
//! name, UPN and laptop across calls; dashboards that group by user need that. The identity
//! and endpoint JSON of each person is built here once and cloned into calls, which keeps
//! large runs fast.

use serde_json::{json, Value};

use super::sample::{self, chance, pick, weighted, Rng};
use super::vocab::{self, AudioDevices};
use super::wire::Obj;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A licensed user of the tenant.
    Member,
    /// A Teams Rooms or Surface Hub resource account; joins meetings, never places calls.
    Room,
    /// Someone from outside the tenant in a meeting (B2B or anonymous).
    Guest,
    /// An Azure Communication Services user (a custom app built on ACS).
    Acs,
    /// A PSTN party; its participant id is the E.164 number.
    Phone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Connection {
    Wired,
    Wifi,
    Mobile,
    Tunnel,
}

impl Connection {
    pub(super) fn wire_name(self) -> &'static str {
        match self {
            Connection::Wired => "wired",
            Connection::Wifi => "wifi",
            Connection::Mobile => "mobile",
            Connection::Tunnel => "tunnel",
        }
    }
}

pub(super) struct Device {
    pub(super) platform: &'static str,
    /// Skype for Business and Lync clients negotiate the older codecs.
    pub(super) legacy_client: bool,
    pub(super) audio: AudioDevices,
    pub(super) on_battery: bool,
    pub(super) connections: &'static [(Connection, u32)],
    /// Windows reports Wi-Fi driver details; other platforms leave them out.
    pub(super) wifi_adapter: Option<(&'static str, &'static str)>,
    /// The participantEndpoint, without the deprecated `identity`.
    pub(super) endpoint: Value,
    /// The same endpoint with the deprecated `identity` as older records carry it.
    pub(super) endpoint_with_identity: Value,
}

pub(super) struct Person {
    pub(super) kind: Kind,
    /// Participant id: the Entra object id, an ACS id, or the E.164 number for phones.
    pub(super) id: String,
    /// communicationsIdentitySet, for `organizer_v2` and `participants_v2`.
    pub(super) identity: Value,
    /// The deprecated graph.identitySet shape, for `organizer` and `participants`.
    pub(super) legacy_identity: Value,
    pub(super) administrative_units: Value,
    /// Primary device first; members may have a phone second. Empty for phone parties.
    pub(super) devices: Vec<Device>,
    pub(super) site: usize,
    pub(super) home_network: u8,
    pub(super) home_public_ip: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Service {
    AudioVideoMcu,
    MediaController,
    Announcement,
    Attendant,
    Mediation,
}

/// A recurring meeting series: same organizer, join URL and regulars every time.
pub(super) struct Series {
    pub(super) organizer: usize,
    pub(super) join_web_url: String,
    pub(super) attendees: Vec<usize>,
    pub(super) length_minutes: i64,
}

pub(super) struct Directory {
    pub(super) tenant_id: String,
    /// Business hours are local to the tenant; this is its offset from UTC in minutes.
    pub(super) utc_offset_minutes: i64,
    pub(super) people: Vec<Person>,
    pub(super) members: Vec<usize>,
    pub(super) rooms: Vec<usize>,
    pub(super) guests: Vec<usize>,
    pub(super) acs_users: Vec<usize>,
    pub(super) phones: Vec<usize>,
    pub(super) series: Vec<Series>,
    services: Vec<Value>,
}

impl Directory {
    /// The serviceEndpoint value for a Microsoft service in the media path.
    pub(super) fn service_endpoint(&self, service: Service) -> &Value {
        &self.services[service as usize]
    }

    pub(super) fn person(&self, index: usize) -> &Person {
        &self.people[index]
    }
}

/// Builds the directory for a run. `n_users` counts tenant accounts (members and rooms).
pub(super) fn build(rng: &mut Rng, n_users: usize) -> Directory {
    let tenant_id = sample::guid(rng);
    let utc_offset_minutes = *weighted(
        rng,
        &[
            (-480, 30),
            (-300, 25),
            (0, 15),
            (60, 15),
            (330, 5),
            (480, 5),
            (540, 5),
        ],
    );
    let partner_tenants = [sample::guid(rng), sample::guid(rng)];
    let administrative_units: Vec<String> = (0..4).map(|_| sample::guid(rng)).collect();
    let acs_resource_id = sample::guid(rng);

    let n_rooms = (n_users / 25).max(2);
    let n_members = n_users - n_rooms;
    let mut builder = Builder {
        rng,
        tenant_id: &tenant_id,
        people: Vec::new(),
        upns: Vec::new(),
    };

    let members: Vec<usize> = (0..n_members)
        .map(|_| builder.member(&administrative_units))
        .collect();
    let rooms: Vec<usize> = (0..n_rooms).map(|number| builder.room(number)).collect();
    let guests: Vec<usize> = (0..(n_users / 8).max(5))
        .map(|_| builder.guest(&partner_tenants))
        .collect();
    let acs_users: Vec<usize> = (0..(n_users / 40).max(4))
        .map(|_| builder.acs_user(&acs_resource_id))
        .collect();
    let phones: Vec<usize> = (0..(n_users / 6).max(10))
        .map(|_| builder.phone())
        .collect();
    let Builder { rng, people, .. } = builder;

    let series = (0..(n_members / 4).max(5))
        .map(|_| build_series(rng, &tenant_id, &members, &people))
        .collect();
    let services = vec![
        service_endpoint(Service::AudioVideoMcu),
        service_endpoint(Service::MediaController),
        service_endpoint(Service::Announcement),
        service_endpoint(Service::Attendant),
        service_endpoint(Service::Mediation),
    ];
    Directory {
        tenant_id,
        utc_offset_minutes,
        people,
        members,
        rooms,
        guests,
        acs_users,
        phones,
        series,
        services,
    }
}

struct Builder<'a> {
    rng: &'a mut Rng,
    tenant_id: &'a str,
    people: Vec<Person>,
    /// UPNs handed out so far; a linear scan is fine at directory sizes and avoids hash order.
    upns: Vec<String>,
}

impl Builder<'_> {
    fn push(&mut self, person: Person) -> usize {
        self.people.push(person);
        self.people.len() - 1
    }

    fn unique_upn(&mut self, local: &str) -> String {
        let mut candidate = format!("{local}@{}", vocab::DOMAIN);
        let mut suffix = 2;
        while self.upns.binary_search(&candidate).is_ok() {
            candidate = format!("{local}{suffix}@{}", vocab::DOMAIN);
            suffix += 1;
        }
        let position = self
            .upns
            .binary_search(&candidate)
            .unwrap_or_else(|position| position);
        self.upns.insert(position, candidate.clone());
        candidate
    }

    fn member(&mut self, administrative_units: &[String]) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        let id = sample::guid(self.rng);
        let display_name = format!("{first} {last}");
        let upn = self.unique_upn(&format!("{}.{}", first.to_lowercase(), last.to_lowercase()));
        let site = sample::index(self.rng, vocab::SITES.len());
        let administrative_units = if chance(self.rng, 0.7) {
            json!([{ "id": pick(self.rng, administrative_units) }])
        } else {
            json!([])
        };
        let (identity, legacy_identity, associated) =
            user_identities(&id, &display_name, self.tenant_id, &upn);

        let platform = *weighted(
            self.rng,
            &[
                ("windows", 60),
                ("macOS", 17),
                ("web", 7),
                ("iOS", 5),
                ("android", 5),
                ("ipPhone", 2),
            ],
        );
        let product_family = match platform {
            "windows" => *weighted(
                self.rng,
                &[("teams", 90), ("skypeForBusiness", 6), ("lync", 4)],
            ),
            "macOS" | "iOS" | "android" => {
                *weighted(self.rng, &[("teams", 95), ("skypeForBusiness", 5)])
            }
            _ => "teams",
        };
        let mut devices = vec![self.client_device(
            platform,
            product_family,
            first,
            &associated,
            &legacy_identity,
        )];
        if matches!(platform, "windows" | "macOS") && chance(self.rng, 0.4) {
            let phone_platform = *weighted(self.rng, &[("iOS", 55), ("android", 45)]);
            devices.push(self.client_device(
                phone_platform,
                "teams",
                first,
                &associated,
                &legacy_identity,
            ));
        }
        let home_network = *pick(self.rng, &[0u8, 1, 1, 86, 178]);
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Member,
            id,
            identity,
            legacy_identity,
            administrative_units,
            devices,
            site,
            home_network,
            home_public_ip,
        })
    }

    fn room(&mut self, number: usize) -> usize {
        let site = sample::index(self.rng, vocab::SITES.len());
        let city = vocab::SITES[site].0;
        let floor = sample::between(self.rng, 1, 9);
        let room_number = number + 1;
        let display_name = format!("Conference Room {city} {floor}.{room_number}");
        let upn = self.unique_upn(&format!(
            "room-{}-{floor}{room_number}",
            city.to_lowercase()
        ));
        let id = sample::guid(self.rng);
        let (identity, legacy_identity, associated) =
            user_identities(&id, &display_name, self.tenant_id, &upn);
        let platform = *weighted(self.rng, &[("roomSystem", 85), ("surfaceHub", 15)]);
        let devices =
            vec![self.client_device(platform, "teams", city, &associated, &legacy_identity)];
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Room,
            id,
            identity,
            legacy_identity,
            administrative_units: json!([]),
            devices,
            site,
            home_network: 0,
            home_public_ip,
        })
    }

    fn guest(&mut self, partner_tenants: &[String; 2]) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        let id = sample::guid(self.rng);
        // B2B guests carry their home tenant and Teams' "(Guest)" suffix; anonymous joiners
        // carry whatever name they typed and no tenant.
        let b2b = chance(self.rng, 0.6);
        let mut guest = Obj::new();
        guest.put("id", id.as_str());
        if b2b {
            guest.put("displayName", format!("{first} {last} (Guest)"));
            guest.put("tenantId", pick(self.rng, partner_tenants).as_str());
        } else {
            guest.put("displayName", format!("{first} {last}"));
        }
        let associated = guest.into_value();
        let identity = json!({ "guest": associated.clone() });
        let platform = *weighted(self.rng, &[("web", 55), ("windows", 35), ("macOS", 10)]);
        let devices = vec![self.client_device(platform, "teams", first, &associated, &identity)];
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Guest,
            id,
            legacy_identity: identity.clone(),
            identity,
            administrative_units: json!([]),
            devices,
            site: 0,
            home_network: 1,
            home_public_ip,
        })
    }

    fn acs_user(&mut self, acs_resource_id: &str) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        // ACS identities look like `8:acs:{resource id}_{user guid}`.
        let id = format!("8:acs:{acs_resource_id}_{}", sample::guid(self.rng));
        let associated = json!({ "id": id, "displayName": format!("{first} {last}") });
        let identity = json!({ "azureCommunicationServicesUser": associated.clone() });
        let platform = *weighted(self.rng, &[("web", 70), ("iOS", 15), ("android", 15)]);
        let mut device = self.client_device(
            platform,
            "azureCommunicationServices",
            first,
            &associated,
            &identity,
        );
        for endpoint in [&mut device.endpoint, &mut device.endpoint_with_identity] {
            endpoint["userAgent"]["communicationServiceId"] = Value::from(acs_resource_id);
        }
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Acs,
            id,
            legacy_identity: identity.clone(),
            identity,
            administrative_units: json!([]),
            devices: vec![device],
            site: 0,
            home_network: 1,
            home_public_ip,
        })
    }

    fn phone(&mut self) -> usize {
        // Fictional ranges: NANP 555-01xx style, Ofcom's drama range, Australia's 0491 570.
        let number = match sample::index(self.rng, 10) {
            0..=5 => format!("+1425555{:04}", sample::between(self.rng, 100, 9999)),
            6 | 7 => format!("+44207946{:04}", sample::between(self.rng, 0, 999)),
            _ => format!("+61491570{:03}", sample::between(self.rng, 0, 999)),
        };
        // Caller-ID names come through for some carriers only.
        let display_name = if chance(self.rng, 0.3) {
            Value::from(format!(
                "{} {}",
                pick(self.rng, vocab::FIRST_NAMES),
                pick(self.rng, vocab::LAST_NAMES)
            ))
        } else {
            Value::Null
        };
        let identity = json!({ "phone": { "id": number, "displayName": display_name } });
        self.push(Person {
            kind: Kind::Phone,
            id: number,
            legacy_identity: identity.clone(),
            identity,
            administrative_units: json!([]),
            devices: Vec::new(),
            site: 0,
            home_network: 1,
            home_public_ip: String::new(),
        })
    }

    fn public_ip(&mut self) -> String {
        let first = *pick(self.rng, &[24u8, 67, 73, 86, 98, 109, 174, 185, 212]);
        format!(
            "{first}.{}.{}.{}",
            sample::between(self.rng, 1, 254),
            sample::between(self.rng, 1, 254),
            sample::between(self.rng, 1, 254)
        )
    }

    fn client_device(
        &mut self,
        platform: &'static str,
        product_family: &'static str,
        first_name: &str,
        associated_identity: &Value,
        legacy_identity: &Value,
    ) -> Device {
        let rng = &mut *self.rng;
        let version = *pick(rng, vocab::TEAMS_VERSIONS);
        let legacy_client = matches!(product_family, "skypeForBusiness" | "lync");
        let (header_value, application_version, app_id) =
            user_agent_strings(rng, platform, product_family, version);

        let mut user_agent = Obj::new();
        user_agent.put("@odata.type", vocab::CLIENT_USER_AGENT);
        user_agent.put("headerValue", header_value);
        user_agent.put("applicationVersion", application_version);
        user_agent.put_some("azureADAppId", app_id);
        user_agent.put("platform", platform);
        user_agent.put("productFamily", product_family);

        let (name, cpu): (Option<String>, Option<(&str, i64, i64)>) = match platform {
            "windows" => {
                let name = if chance(rng, 0.6) {
                    format!("CONTOSO-LT-{}", sample::between(rng, 1000, 9999))
                } else {
                    format!("DESKTOP-{}", sample::alphanumeric(rng, 7))
                };
                (Some(name), Some(*pick(rng, vocab::WINDOWS_CPUS)))
            }
            "macOS" => (
                Some(format!("{first_name}s-MacBook-Pro")),
                Some(*pick(rng, vocab::MAC_CPUS)),
            ),
            "iOS" => (Some(pick(rng, vocab::IOS_MODELS).to_string()), None),
            "android" => (Some(pick(rng, vocab::ANDROID_MODELS).to_string()), None),
            "roomSystem" => (
                Some(format!("MTR-{}", sample::alphanumeric(rng, 6))),
                Some(*pick(rng, vocab::ROOM_CPUS)),
            ),
            "surfaceHub" => (
                Some(format!("SURFACEHUB-{}", sample::alphanumeric(rng, 5))),
                Some(("Intel(R) Core(TM) i5-7300U CPU @ 2.60GHz", 4, 2611)),
            ),
            "ipPhone" => (Some(pick(rng, vocab::IP_PHONES).to_string()), None),
            // Browsers don't expose the machine.
            _ => (None, None),
        };

        let mut endpoint = Obj::new();
        endpoint.put("@odata.type", vocab::PARTICIPANT_ENDPOINT);
        endpoint.put("userAgent", user_agent.into_value());
        endpoint.put("associatedIdentity", associated_identity.clone());
        if let Some((cpu_name, cores, mhz)) = cpu {
            endpoint.put("cpuCoresCount", cores);
            endpoint.put("cpuName", cpu_name);
            endpoint.put("cpuProcessorSpeedInMhz", mhz);
        }
        endpoint.put_some("name", name);
        let endpoint = endpoint.into_value();
        let mut endpoint_with_identity = endpoint.clone();
        endpoint_with_identity["identity"] = legacy_identity.clone();

        let audio = *match platform {
            "windows" | "web" => pick(rng, vocab::WINDOWS_AUDIO),
            "macOS" => pick(rng, vocab::MAC_AUDIO),
            "roomSystem" | "surfaceHub" => pick(rng, vocab::ROOM_AUDIO),
            _ => pick(rng, vocab::MOBILE_AUDIO),
        };
        let connections: &'static [(Connection, u32)] = match platform {
            "windows" => &[
                (Connection::Wired, 40),
                (Connection::Wifi, 52),
                (Connection::Tunnel, 6),
                (Connection::Mobile, 2),
            ],
            "macOS" => &[
                (Connection::Wired, 12),
                (Connection::Wifi, 80),
                (Connection::Tunnel, 6),
                (Connection::Mobile, 2),
            ],
            "web" => &[
                (Connection::Wired, 35),
                (Connection::Wifi, 58),
                (Connection::Tunnel, 5),
                (Connection::Mobile, 2),
            ],
            "iOS" | "android" => &[(Connection::Wifi, 55), (Connection::Mobile, 45)],
            "surfaceHub" => &[(Connection::Wired, 80), (Connection::Wifi, 20)],
            _ => &[(Connection::Wired, 1)],
        };
        let wifi_adapter = (platform == "windows").then(|| *pick(rng, vocab::WIFI_ADAPTERS));
        let on_battery = match platform {
            "windows" => chance(rng, 0.75),
            "macOS" | "iOS" | "android" => true,
            _ => false,
        };
        Device {
            platform,
            legacy_client,
            audio,
            on_battery,
            connections,
            wifi_adapter,
            endpoint,
            endpoint_with_identity,
        }
    }
}

/// The three shapes of a tenant user's identity: communicationsIdentitySet (with the
/// graph-namespace userIdentity Graph's examples use), the deprecated identitySet as in
/// Graph's 2020 examples, and `associatedIdentity` typed as the callRecords userIdentity.
fn user_identities(
    id: &str,
    display_name: &str,
    tenant_id: &str,
    upn: &str,
) -> (Value, Value, Value) {
    let identity = json!({ "user": {
        "@odata.type": vocab::GRAPH_USER_IDENTITY,
        "id": id,
        "displayName": display_name,
        "tenantId": tenant_id,
        "userPrincipalName": upn,
    } });
    let legacy =
        json!({ "user": { "id": id, "displayName": display_name, "tenantId": tenant_id } });
    let associated = json!({
        "@odata.type": vocab::CALL_RECORDS_USER_IDENTITY,
        "id": id,
        "displayName": display_name,
        "tenantId": tenant_id,
        "userPrincipalName": upn,
    });
    (identity, legacy, associated)
}

/// Header value, application version and Entra app id a client of this kind reports.
fn user_agent_strings(
    rng: &mut Rng,
    platform: &str,
    product_family: &str,
    version: &str,
) -> (String, String, Option<&'static str>) {
    match (product_family, platform) {
        ("skypeForBusiness", "windows") => (
            "UCCAPI/16.0.12527.20122 OC/16.0.12527.20194 (Skype for Business)".into(),
            "16.0.12527.20194".into(),
            None,
        ),
        ("lync", _) => (
            "UCCAPI/15.0.5023.1000 OC/15.0.5023.1000 (Microsoft Lync)".into(),
            "15.0.5023.1000".into(),
            None,
        ),
        ("skypeForBusiness", "android") => (
            "RTCC/7.0.0.0 UCWA/7.0.0.0 AndroidLync/6.25.0.27 (SM-G930U Android 8.0.0)".into(),
            "6.25.0.27".into(),
            None,
        ),
        ("skypeForBusiness", "iOS") => (
            "RTCC/7.0.0.0 UCWA/7.0.0.0 iPhoneLync/6.26.0.10 (iPhone iOS 16.0)".into(),
            "6.26.0.10".into(),
            None,
        ),
        ("skypeForBusiness", _) => (
            "UCWA/7.0.0.0 MacSkypeForBusiness/16.29.0.42 (Mac OS X 10.15.7)".into(),
            "16.29.0.42".into(),
            None,
        ),
        ("azureCommunicationServices", "web") => (
            "azsdk-js-communication-calling/1.22.1 (Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0.0.0)".into(),
            "1.22.1".into(),
            None,
        ),
        ("azureCommunicationServices", "iOS") => (
            "azsdk-ios-communication-calling/2.8.0 (iOS 17.4)".into(),
            "2.8.0".into(),
            None,
        ),
        ("azureCommunicationServices", _) => (
            "azsdk-android-communication-calling/2.8.0 (Android 14)".into(),
            "2.8.0".into(),
            None,
        ),
        (_, "web") => {
            let browser = *pick(rng, &[
                "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
                "Chrome/123.0.0.0 Safari/537.36",
                "Firefox/124.0",
            ]);
            (
                format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) {browser}"),
                version.to_owned(),
                Some(vocab::TEAMS_WEB_APP_ID),
            )
        }
        (_, "windows") => (
            format!("Microsoft Teams/{version} (Windows 10.0.22631; x64)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        (_, "macOS") => (
            format!("Microsoft Teams/{version} (macOS 14.4.1; arm64)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        (_, "iOS") => (
            format!("Microsoft Teams/{version} (iOS 17.4.1)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        (_, "android") => (
            format!("Microsoft Teams/{version} (Android 14)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        (_, "roomSystem") => (
            format!("Microsoft Teams Rooms/5.0.111.0 Teams/{version} (Windows 10 IoT Enterprise)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        (_, "surfaceHub") => (
            format!("Microsoft Teams/{version} (Windows 10 Team; Surface Hub 2S)"),
            version.to_owned(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
        _ => (
            "Microsoft Teams Phone/1449/1.0.94.2023022302".into(),
            "1449/1.0.94.2023022302".into(),
            Some(vocab::TEAMS_CLIENT_APP_ID),
        ),
    }
}

fn service_endpoint(service: Service) -> Value {
    let (role, header_value, version) = match service {
        Service::AudioVideoMcu => (
            "skypeForBusinessAudioVideoMcu",
            "AVMCU/2024.15.1.7 (Microsoft Teams)",
            "2024.15.1.7",
        ),
        Service::MediaController => (
            "mediaController",
            "Microsoft.Skype.MediaController/2024.14.2.3",
            "2024.14.2.3",
        ),
        Service::Announcement => (
            "conferencingAnnouncementService",
            "Microsoft.Skype.ConferencingAnnouncementService/2024.12.3.1",
            "2024.12.3.1",
        ),
        Service::Attendant => (
            "conferencingAttendant",
            "Microsoft.Skype.ConferencingAttendant/2024.12.3.1",
            "2024.12.3.1",
        ),
        Service::Mediation => (
            "mediationServer",
            "Microsoft.PSTNHub.SIPProxy v.2024.4.3.1 i.USWE.2",
            "2024.4.3.1",
        ),
    };
    json!({
        "@odata.type": vocab::SERVICE_ENDPOINT,
        "userAgent": {
            "@odata.type": vocab::SERVICE_USER_AGENT,
            "headerValue": header_value,
            "applicationVersion": version,
            "role": role,
        },
    })
}

fn build_series(rng: &mut Rng, tenant_id: &str, members: &[usize], people: &[Person]) -> Series {
    let organizer = *pick(rng, members);
    let n_attendees = sample::between(rng, 2, 12) as usize;
    let mut attendees: Vec<usize> = Vec::with_capacity(n_attendees);
    for _ in 0..n_attendees * 2 {
        let candidate = *pick(rng, members);
        if candidate != organizer && !attendees.contains(&candidate) {
            attendees.push(candidate);
        }
        if attendees.len() == n_attendees {
            break;
        }
    }
    let length_minutes = *weighted(rng, &[(15, 20), (30, 45), (45, 5), (60, 25), (90, 5)]);
    let join_web_url = join_web_url(rng, tenant_id, &people[organizer].id);
    Series {
        organizer,
        join_web_url,
        attendees,
        length_minutes,
    }
}

/// A Teams meeting join link. Teams' thread id is `19:meeting_` plus base64 of a GUID string.
pub(super) fn join_web_url(rng: &mut Rng, tenant_id: &str, organizer_id: &str) -> String {
    // The thread id sits inside a URL path, so base64's `+` and `/` are escaped like `:` and `@`.
    let thread = base64(sample::guid(rng).as_bytes())
        .replace('+', "%2b")
        .replace('/', "%2f");
    format!(
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22{tenant_id}%22%2c%22Oid%22%3a%22{organizer_id}%22%7d"
    )
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let triple = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(triple >> (18 - 6 * position) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}
