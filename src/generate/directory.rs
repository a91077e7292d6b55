//! The cast: one tenant's users, rooms, guests, ACS users and outside phone numbers, with
//! their devices, plus the recurring meetings they hold.
//!
//! Built once per run from the seed before any call, so the same person keeps the same id,
//! name, UPN and laptop across calls; dashboards that group by user need that. People are
//! stored compactly (strings and enums, no JSON): a directory of prebuilt `Value`s cost
//! 17 KB a person and, at 5,000 people, made glibc's allocator twice as slow for every
//! call generated after it. Identity and endpoint JSON is built on demand instead.

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
    product_family: &'static str,
    header_value: String,
    application_version: String,
    azure_ad_app_id: Option<&'static str>,
    name: Option<String>,
    cpu: Option<(&'static str, i64, i64)>,
    /// Skype for Business and Lync clients negotiate the older codecs.
    pub(super) legacy_client: bool,
    pub(super) audio: AudioDevices,
    pub(super) on_battery: bool,
    pub(super) connections: &'static [(Connection, u32)],
    /// Windows reports Wi-Fi driver details; other platforms leave them out.
    pub(super) wifi_adapter: Option<(&'static str, &'static str)>,
}

/// Which tenant an identity names, if any.
#[derive(Clone, Copy)]
enum Tenant {
    Home,
    Partner(usize),
    None,
}

/// How a user's phone number reaches the PSTN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// A Microsoft Calling Plan.
    CallingPlan,
    /// A number from the tenant's Operator Connect carrier.
    OperatorConnect,
    /// The tenant's own SBC; the index is into `Telephony::trunks`.
    DirectRouting(usize),
}

/// A user's phone number and how it is served.
pub(super) struct Line {
    pub(super) number: String,
    pub(super) license: &'static str,
    pub(super) route: Route,
}

/// A Direct Routing trunk: one of the tenant's session border controllers.
pub(super) struct Trunk {
    pub(super) fqdn: String,
    pub(super) media_bypass: bool,
    /// Country (index into `vocab::COUNTRIES`) of the site the SBC stands in.
    pub(super) country: usize,
}

/// The tenant's voice setup, fixed per run.
pub(super) struct Telephony {
    /// Tenant country, an index into `vocab::COUNTRIES`.
    pub(super) country: usize,
    /// The Operator Connect carrier, if the tenant buys numbers from one.
    pub(super) carrier: Option<&'static str>,
    /// Empty when the tenant has no SBC (no Direct Routing).
    pub(super) trunks: Vec<Trunk>,
    /// Audio Conferencing dial-in numbers: toll and toll free.
    pub(super) bridge_toll: String,
    pub(super) bridge_toll_free: String,
}

pub(super) struct Person {
    pub(super) kind: Kind,
    /// Participant id: the Entra object id, an ACS id, or the E.164 number for phones.
    pub(super) id: String,
    display_name: Option<String>,
    user_principal_name: Option<String>,
    tenant: Tenant,
    administrative_unit: Option<usize>,
    /// Primary device first; members may have a phone second. Empty for phone parties.
    pub(super) devices: Vec<Device>,
    pub(super) site: usize,
    pub(super) home_network: u8,
    pub(super) home_public_ip: String,
    /// Usage location of members and rooms (their site's country); the number's country for
    /// phone parties. An index into `vocab::COUNTRIES`.
    pub(super) country: usize,
    /// Members with a Teams Phone number have one.
    pub(super) line: Option<Line>,
}

impl Person {
    pub(super) fn display_name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    pub(super) fn user_principal_name(&self) -> Option<&str> {
        self.user_principal_name.as_deref()
    }
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
    /// The Audio Conferencing id dial-in callers enter; fixed for a series.
    pub(super) conference_id: String,
}

pub(super) struct Directory {
    pub(super) tenant_id: String,
    /// Business hours are local to the tenant; this is its offset from UTC in minutes.
    pub(super) utc_offset_minutes: i64,
    partner_tenants: [String; 2],
    administrative_units: Vec<String>,
    acs_resource_id: String,
    people: Vec<Person>,
    pub(super) members: Vec<usize>,
    pub(super) rooms: Vec<usize>,
    pub(super) guests: Vec<usize>,
    pub(super) acs_users: Vec<usize>,
    pub(super) phones: Vec<usize>,
    /// `phones` by country (index into `vocab::COUNTRIES`).
    pub(super) phones_by_country: Vec<Vec<usize>>,
    /// Members with a phone number (`Person::line`); never empty.
    pub(super) phone_users: Vec<usize>,
    pub(super) series: Vec<Series>,
    pub(super) telephony: Telephony,
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

    fn tenant_id(&self, tenant: Tenant) -> Option<&str> {
        match tenant {
            Tenant::Home => Some(&self.tenant_id),
            Tenant::Partner(index) => Some(&self.partner_tenants[index]),
            Tenant::None => None,
        }
    }

    /// The communicationsIdentitySet of `participants_v2` and `organizer_v2`. Tenant users
    /// carry the graph-namespace userIdentity type, as in Graph's participants_v2 example.
    pub(super) fn identity(&self, index: usize) -> Value {
        let person = self.person(index);
        let mut inner = Obj::with_capacity(5);
        let key = match person.kind {
            Kind::Member | Kind::Room => {
                inner.put("@odata.type", vocab::GRAPH_USER_IDENTITY);
                "user"
            }
            Kind::Guest => "guest",
            Kind::Acs => "azureCommunicationServicesUser",
            Kind::Phone => "phone",
        };
        inner.put("id", person.id.as_str());
        // Phones always carry displayName, null when the carrier sent no caller-ID name.
        match (&person.display_name, person.kind) {
            (Some(name), _) => inner.put("displayName", name.as_str()),
            (None, Kind::Phone) => inner.put("displayName", Value::Null),
            (None, _) => {}
        }
        inner.put_some("tenantId", self.tenant_id(person.tenant));
        inner.put_some("userPrincipalName", person.user_principal_name.as_deref());
        let mut identity = Obj::with_capacity(1);
        identity.put(key, inner.into_value());
        identity.into_value()
    }

    /// The deprecated graph.identitySet shape of `organizer`, `participants` and endpoint
    /// `identity`; tenant users look as in Graph's 2020 examples (id, displayName, tenantId).
    pub(super) fn legacy_identity(&self, index: usize) -> Value {
        let person = self.person(index);
        if !matches!(person.kind, Kind::Member | Kind::Room) {
            return self.identity(index);
        }
        let mut user = Obj::with_capacity(3);
        user.put("id", person.id.as_str());
        user.put_some("displayName", person.display_name.as_deref());
        user.put_some("tenantId", self.tenant_id(person.tenant));
        let mut identity = Obj::with_capacity(1);
        identity.put("user", user.into_value());
        identity.into_value()
    }

    /// The line of a member with a phone number.
    pub(super) fn line(&self, index: usize) -> &Line {
        self.person(index).line.as_ref().expect("phone users have a line")
    }

    /// Whether numbers of this country show partly masked in this tenant's usage logs: per-country
    /// privacy rules apply to the tenant's country and to the other party's.
    pub(super) fn masks(&self, other_country: usize) -> bool {
        vocab::COUNTRIES[self.telephony.country].masks || vocab::COUNTRIES[other_country].masks
    }

    pub(super) fn administrative_units(&self, index: usize) -> Value {
        match self.person(index).administrative_unit {
            Some(unit) => json!([{ "id": self.administrative_units[unit] }]),
            None => json!([]),
        }
    }

    /// A participantEndpoint for one of the person's devices; `with_identity` adds the
    /// deprecated `identity` that older records still carry.
    pub(super) fn client_endpoint(&self, index: usize, device: usize, with_identity: bool) -> Value {
        let person = self.person(index);
        let device = &person.devices[device];
        let mut user_agent = Obj::with_capacity(7);
        user_agent.put("@odata.type", vocab::CLIENT_USER_AGENT);
        user_agent.put("headerValue", device.header_value.as_str());
        user_agent.put("applicationVersion", device.application_version.as_str());
        user_agent.put_some("azureADAppId", device.azure_ad_app_id);
        if person.kind == Kind::Acs {
            user_agent.put("communicationServiceId", self.acs_resource_id.as_str());
        }
        user_agent.put("platform", device.platform);
        user_agent.put("productFamily", device.product_family);

        // associatedIdentity is a graph.identity; tenant users are the callRecords userIdentity.
        let mut associated = Obj::with_capacity(5);
        if matches!(person.kind, Kind::Member | Kind::Room) {
            associated.put("@odata.type", vocab::CALL_RECORDS_USER_IDENTITY);
        }
        associated.put("id", person.id.as_str());
        associated.put_some("displayName", person.display_name.as_deref());
        associated.put_some("tenantId", self.tenant_id(person.tenant));
        associated.put_some("userPrincipalName", person.user_principal_name.as_deref());

        let mut endpoint = Obj::with_capacity(8);
        endpoint.put("@odata.type", vocab::PARTICIPANT_ENDPOINT);
        endpoint.put("userAgent", user_agent.into_value());
        endpoint.put("associatedIdentity", associated.into_value());
        if let Some((cpu_name, cores, mhz)) = device.cpu {
            endpoint.put("cpuCoresCount", cores);
            endpoint.put("cpuName", cpu_name);
            endpoint.put("cpuProcessorSpeedInMhz", mhz);
        }
        endpoint.put_some("name", device.name.as_deref());
        if with_identity {
            endpoint.put("identity", self.legacy_identity(index));
        }
        endpoint.into_value()
    }
}

/// Builds the directory for a run. `n_users` counts tenant accounts (members and rooms).
pub(super) fn build(rng: &mut Rng, n_users: usize) -> Directory {
    let tenant_id = sample::guid(rng);
    let utc_offset_minutes = *weighted(
        rng,
        &[(-480, 30), (-300, 25), (0, 15), (60, 15), (330, 5), (480, 5), (540, 5)],
    );
    let partner_tenants = [sample::guid(rng), sample::guid(rng)];
    let administrative_units: Vec<String> = (0..4).map(|_| sample::guid(rng)).collect();
    let acs_resource_id = sample::guid(rng);
    let tenant_country = tenant_country(utc_offset_minutes);

    let n_rooms = (n_users / 25).max(2);
    let n_members = n_users - n_rooms;
    let mut builder = Builder {
        rng,
        people: Vec::new(),
        upns: Vec::new(),
        numbers: Vec::new(),
        tenant_country,
    };

    let members: Vec<usize> = (0..n_members)
        .map(|_| builder.member(administrative_units.len()))
        .collect();
    let rooms: Vec<usize> = (0..n_rooms).map(|number| builder.room(number)).collect();
    let guests: Vec<usize> = (0..(n_users / 8).max(5)).map(|_| builder.guest()).collect();
    let acs_users: Vec<usize> = (0..(n_users / 40).max(4))
        .map(|_| builder.acs_user(&acs_resource_id))
        .collect();
    let phones: Vec<usize> = (0..(n_users / 6).max(10)).map(|serial| builder.phone(serial)).collect();
    let Builder { rng, mut people, .. } = builder;

    let series = (0..(n_members / 4).max(5))
        .map(|_| build_series(rng, &tenant_id, &members, &people))
        .collect();
    let telephony = build_telephony(rng, tenant_country);
    let phone_users = assign_lines(rng, &telephony, &members, &mut people);
    let mut phones_by_country = vec![Vec::new(); vocab::COUNTRIES.len()];
    for &phone in &phones {
        phones_by_country[people[phone].country].push(phone);
    }
    // In declaration order: `Directory::service_endpoint` indexes by discriminant.
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
        partner_tenants,
        administrative_units,
        acs_resource_id,
        people,
        members,
        rooms,
        guests,
        acs_users,
        phones,
        phones_by_country,
        phone_users,
        series,
        telephony,
        services,
    }
}

/// Where the tenant is registered, from its business hours: it decides the currency of charges.
fn tenant_country(utc_offset_minutes: i64) -> usize {
    match utc_offset_minutes {
        ..=-180 => vocab::US,
        -179..=30 => vocab::GB,
        31..=180 => vocab::DE,
        _ => vocab::SG,
    }
}

/// Three tenants in four run Direct Routing on two or three SBCs; a third buy numbers from an
/// Operator Connect carrier as well.
fn build_telephony(rng: &mut Rng, country: usize) -> Telephony {
    let trunks = if chance(rng, 0.75) {
        let n_trunks = sample::between(rng, 2, 3) as usize;
        (1..=n_trunks)
            .map(|number| Trunk {
                fqdn: format!("sbc{number}.{}", vocab::DOMAIN),
                media_bypass: chance(rng, 0.4),
                // The first SBC stands at home; the others at a random office.
                country: if number == 1 {
                    country
                } else {
                    pick(rng, vocab::SITES).2
                },
            })
            .collect()
    } else {
        Vec::new()
    };
    let carrier = vocab::CARRIERS
        .iter()
        .find(|(carrier_country, _)| *carrier_country == country)
        .filter(|_| chance(rng, 0.35))
        .map(|(_, carriers)| *pick(rng, carriers));
    let (_, toll, toll_free) = vocab::BRIDGE_NUMBERS
        .iter()
        .find(|(bridge_country, ..)| *bridge_country == country)
        .copied()
        .unwrap_or(vocab::BRIDGE_NUMBERS[0]);
    Telephony {
        country,
        carrier,
        trunks,
        bridge_toll: sample::digits(rng, toll),
        bridge_toll_free: sample::digits(rng, toll_free),
    }
}

/// Gives about 70 % of members a number from their site's block; the first member always gets
/// one, so PSTN calls always have someone to place them. Returns the members with a line.
fn assign_lines(rng: &mut Rng, telephony: &Telephony, members: &[usize], people: &mut [Person]) -> Vec<usize> {
    let mut serials = [0i64; 4];
    let mut phone_users = Vec::new();
    for (position, &member) in members.iter().enumerate() {
        if position > 0 && !chance(rng, 0.7) {
            continue;
        }
        let person = &mut people[member];
        let (block, (_, prefix, base)) = vocab::DID_BLOCKS
            .iter()
            .enumerate()
            .find(|(_, (country, ..))| *country == person.country)
            .expect("every site country has a number block");
        let number = format!("{prefix}{}", base + serials[block]);
        serials[block] += 1;
        let license = *weighted(rng, vocab::CALLING_PLANS);
        let route = if !telephony.trunks.is_empty() && chance(rng, 0.45) {
            // Users go out through the SBC of their own country when there is one.
            let local = telephony
                .trunks
                .iter()
                .position(|trunk| trunk.country == person.country);
            Route::DirectRouting(local.unwrap_or_else(|| sample::index(rng, telephony.trunks.len())))
        } else if telephony.carrier.is_some() && chance(rng, 0.3) {
            Route::OperatorConnect
        } else {
            Route::CallingPlan
        };
        person.line = Some(Line { number, license, route });
        phone_users.push(member);
    }
    phone_users
}

struct Builder<'a> {
    rng: &'a mut Rng,
    people: Vec<Person>,
    /// UPNs handed out so far, sorted; binary search is fast enough and avoids hash order.
    upns: Vec<String>,
    /// Outside phone numbers handed out so far, sorted, so no two parties share a number.
    numbers: Vec<String>,
    tenant_country: usize,
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
        let position = self.upns.binary_search(&candidate).unwrap_or_else(|position| position);
        self.upns.insert(position, candidate.clone());
        candidate
    }

    fn member(&mut self, n_administrative_units: usize) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        let id = sample::guid(self.rng);
        let upn = self.unique_upn(&format!("{}.{}", first.to_lowercase(), last.to_lowercase()));
        let site = sample::index(self.rng, vocab::SITES.len());
        let administrative_unit = chance(self.rng, 0.7).then(|| sample::index(self.rng, n_administrative_units));
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
            "windows" => *weighted(self.rng, &[("teams", 90), ("skypeForBusiness", 6), ("lync", 4)]),
            "macOS" | "iOS" | "android" => *weighted(self.rng, &[("teams", 95), ("skypeForBusiness", 5)]),
            _ => "teams",
        };
        let mut devices = vec![self.client_device(platform, product_family, first)];
        if matches!(platform, "windows" | "macOS") && chance(self.rng, 0.4) {
            let phone_platform = *weighted(self.rng, &[("iOS", 55), ("android", 45)]);
            devices.push(self.client_device(phone_platform, "teams", first));
        }
        let home_network = *pick(self.rng, &[0u8, 1, 1, 86, 178]);
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Member,
            id,
            display_name: Some(format!("{first} {last}")),
            user_principal_name: Some(upn),
            tenant: Tenant::Home,
            administrative_unit,
            devices,
            site,
            home_network,
            home_public_ip,
            country: vocab::SITES[site].2,
            line: None,
        })
    }

    fn room(&mut self, number: usize) -> usize {
        let site = sample::index(self.rng, vocab::SITES.len());
        let city = vocab::SITES[site].0;
        let floor = sample::between(self.rng, 1, 9);
        let room_number = number + 1;
        let upn = self.unique_upn(&format!("room-{}-{floor}{room_number}", city.to_lowercase()));
        let id = sample::guid(self.rng);
        let platform = *weighted(self.rng, &[("roomSystem", 85), ("surfaceHub", 15)]);
        let devices = vec![self.client_device(platform, "teams", city)];
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Room,
            id,
            display_name: Some(format!("Conference Room {city} {floor}.{room_number}")),
            user_principal_name: Some(upn),
            tenant: Tenant::Home,
            administrative_unit: None,
            devices,
            site,
            home_network: 0,
            home_public_ip,
            country: vocab::SITES[site].2,
            line: None,
        })
    }

    fn guest(&mut self) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        let id = sample::guid(self.rng);
        // B2B guests carry their home tenant and Teams' "(Guest)" suffix; anonymous joiners
        // carry whatever name they typed and no tenant.
        let (display_name, tenant) = if chance(self.rng, 0.6) {
            (
                format!("{first} {last} (Guest)"),
                Tenant::Partner(sample::index(self.rng, 2)),
            )
        } else {
            (format!("{first} {last}"), Tenant::None)
        };
        let platform = *weighted(self.rng, &[("web", 55), ("windows", 35), ("macOS", 10)]);
        let devices = vec![self.client_device(platform, "teams", first)];
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Guest,
            id,
            display_name: Some(display_name),
            user_principal_name: None,
            tenant,
            administrative_unit: None,
            devices,
            site: 0,
            home_network: 1,
            home_public_ip,
            country: self.tenant_country,
            line: None,
        })
    }

    fn acs_user(&mut self, acs_resource_id: &str) -> usize {
        let first = *pick(self.rng, vocab::FIRST_NAMES);
        let last = *pick(self.rng, vocab::LAST_NAMES);
        // ACS identities look like `8:acs:{resource id}_{user guid}`.
        let id = format!("8:acs:{acs_resource_id}_{}", sample::guid(self.rng));
        let platform = *weighted(self.rng, &[("web", 70), ("iOS", 15), ("android", 15)]);
        let devices = vec![self.client_device(platform, "azureCommunicationServices", first)];
        let home_public_ip = self.public_ip();
        self.push(Person {
            kind: Kind::Acs,
            id,
            display_name: Some(format!("{first} {last}")),
            user_principal_name: None,
            tenant: Tenant::None,
            administrative_unit: None,
            devices,
            site: 0,
            home_network: 1,
            home_public_ip,
            country: self.tenant_country,
            line: None,
        })
    }

    /// The `serial`-th outside party.
    fn phone(&mut self, serial: usize) -> usize {
        // Half the outside world a tenant talks to is at home; the rest mostly where it has
        // offices. The first few cover every office country, so everyone has someone local to call.
        let country = if serial < 2 * vocab::SITES.len() {
            vocab::SITES[serial % vocab::SITES.len()].2
        } else if chance(self.rng, 0.5) {
            self.tenant_country
        } else {
            *weighted(self.rng, vocab::OUTSIDE_COUNTRIES)
        };
        let formats = vocab::COUNTRIES[country].numbers;
        // Numbers are unique while the formats have room; huge directories may repeat one.
        let mut number = String::new();
        for _ in 0..16 {
            let format = *weighted(self.rng, formats);
            number = sample::digits(self.rng, format);
            match self.numbers.binary_search(&number) {
                Ok(_) => continue,
                Err(position) => {
                    self.numbers.insert(position, number.clone());
                    break;
                }
            }
        }
        // Caller-ID names come through for some carriers only.
        let display_name = chance(self.rng, 0.3).then(|| {
            format!(
                "{} {}",
                pick(self.rng, vocab::FIRST_NAMES),
                pick(self.rng, vocab::LAST_NAMES)
            )
        });
        self.push(Person {
            kind: Kind::Phone,
            id: number,
            display_name,
            user_principal_name: None,
            tenant: Tenant::None,
            administrative_unit: None,
            devices: Vec::new(),
            site: 0,
            home_network: 1,
            home_public_ip: String::new(),
            country,
            line: None,
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

    fn client_device(&mut self, platform: &'static str, product_family: &'static str, first_name: &str) -> Device {
        let rng = &mut *self.rng;
        let version = *pick(rng, vocab::TEAMS_VERSIONS);
        let (header_value, application_version, azure_ad_app_id) =
            user_agent_strings(rng, platform, product_family, version);
        let (name, cpu): (Option<String>, Option<(&'static str, i64, i64)>) = match platform {
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
            product_family,
            header_value,
            application_version,
            azure_ad_app_id,
            name,
            cpu,
            legacy_client: matches!(product_family, "skypeForBusiness" | "lync"),
            audio,
            on_battery,
            connections,
            wifi_adapter,
        }
    }
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
            let browser = *pick(
                rng,
                &[
                    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.0.0",
                    "Chrome/123.0.0.0 Safari/537.36",
                    "Firefox/124.0",
                ],
            );
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
    let n_attendees = sample::between(rng, 2, 8) as usize;
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
        conference_id: conference_id(rng),
    }
}

/// An Audio Conferencing id: the digits dial-in callers enter for a meeting.
pub(super) fn conference_id(rng: &mut Rng) -> String {
    sample::between(rng, 100_000_000, 999_999_999).to_string()
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
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let triple = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(ALPHABET[(triple >> (18 - 6 * position) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
