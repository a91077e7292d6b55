//! One call: who takes part, when each of them joins and leaves, and the callRecord JSON.
//!
//! A call is planned first (participants, sessions with their times, video and failures) and
//! rendered second. Record-level times and modalities are derived from the rendered sessions,
//! so `startDateTime <= session <= endDateTime` holds by construction.

use serde_json::Value;

use super::calendar::Window;
use super::directory::{self, Directory, Kind, Route, Service};
use super::media::{self, Label, SessionMedia, Side};
use super::sample::{self, chance, pick, uniform, weighted, Rng};
use super::vocab;
use super::wire::{self, Obj, Precision, MINUTE, SECOND};

/// What `generate` emits for one call: the record, for some calls a fuller later version, and
/// what the usage logs need to know about its PSTN parties.
pub(super) struct Call {
    pub(super) first: Value,
    pub(super) later: Option<Value>,
    pub(super) legs: Vec<PstnLeg>,
}

/// How a PSTN party came into a call, which decides its usage-log `callType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LegKind {
    /// A user took a call from outside.
    UserIn,
    /// A user called out.
    UserOut,
    /// Someone dialled into a meeting's conferencing bridge.
    ConferenceIn { toll_free: bool },
    /// The meeting called someone's phone.
    ConferenceOut,
}

/// One PSTN party of a call as the usage logs see it. Times are as the record prints them.
pub(super) struct PstnLeg {
    /// The outside party (a `Kind::Phone` person).
    pub(super) phone: usize,
    /// The Teams user on the other end: the peer, or the organizer for meetings.
    pub(super) user: usize,
    pub(super) kind: LegKind,
    /// The SBC the leg went through; `None` for Calling Plans and Operator Connect.
    pub(super) trunk: Option<usize>,
    pub(super) conference_id: Option<String>,
    /// Id of the party's first session; Direct Routing rows quote it as `correlationId`.
    pub(super) session_id: String,
    pub(super) start: i64,
    pub(super) end: i64,
    /// False when call setup failed: the leg never connected.
    pub(super) connected: bool,
}

/// A PSTN party as planned, before its sessions have ids.
struct PlannedLeg {
    /// Position in the call's participant list.
    position: usize,
    phone: usize,
    user: usize,
    kind: LegKind,
    trunk: Option<usize>,
}

const AUDIO: u8 = 1;
const VIDEO: u8 = 2;
const SCREEN_SHARING: u8 = 4;

#[derive(Clone, Copy)]
enum Endpoint {
    /// A person's client; `device` indexes `Person::devices`.
    Client {
        person: usize,
        device: usize,
    },
    Service(Service),
}

struct Failure {
    stage: &'static str,
    reason: &'static str,
}

struct SessionPlan {
    /// Position in the call's participant list; `None` for service-to-service sessions.
    participant: Option<usize>,
    caller: Endpoint,
    callee: Endpoint,
    start: i64,
    end: i64,
    video: bool,
    screen_sharing: bool,
    failure: Option<Failure>,
    /// Clients rate a call when they leave it, so only a participant's last session can.
    rateable: bool,
    /// Media flowed straight between the client and the SBC (Direct Routing media bypass).
    media_bypass: bool,
}

/// Who is in a call, as planned.
struct Cast {
    organizer: usize,
    /// Person indexes in `participants_v2` order: organizer (if present) first, then join order.
    participants: Vec<usize>,
    join_web_url: Option<String>,
    legs: Vec<PlannedLeg>,
    conference_id: Option<String>,
}

struct Header {
    id: String,
    group: bool,
    join_web_url: Option<String>,
    organizer: usize,
    /// Person indexes in `participants_v2` order: organizer (if present) first, then join order.
    participants: Vec<usize>,
    /// Older records still carry the deprecated `organizer`, `participants` and endpoint
    /// `identity`; the server derives them for the rest (see `model::retired`).
    legacy: bool,
    precision: Precision,
}

struct RenderedSession {
    value: Value,
    span: Span,
}

/// What the record level needs to know about a session, kept apart from its JSON.
#[derive(Clone, Copy)]
struct Span {
    participant: Option<usize>,
    start: i64,
    end: i64,
    modalities: u8,
}

pub(super) fn generate(rng: &mut Rng, directory: &Directory, window: &Window) -> Call {
    let id = sample::guid(rng);
    let group = chance(rng, 0.55);
    let legacy = chance(rng, 0.5);
    let precision = if chance(rng, 0.7) {
        Precision::Ticks
    } else {
        Precision::Seconds
    };
    let (mut cast, plans) = if group {
        plan_meeting(rng, directory, window)
    } else {
        plan_peer_to_peer(rng, directory, window)
    };
    let header = Header {
        id,
        group,
        join_web_url: cast.join_web_url.take(),
        organizer: cast.organizer,
        participants: std::mem::take(&mut cast.participants),
        legacy,
        precision,
    };

    let sessions: Vec<RenderedSession> = plans
        .iter()
        .enumerate()
        .map(|(position, plan)| {
            // Graph's peer-to-peer example reuses the call id for the session and its first segment.
            let session_id = if !header.group && position == 0 {
                header.id.clone()
            } else {
                sample::guid(rng)
            };
            let first_segment_id = (!header.group && position == 0).then(|| header.id.clone());
            render_session(rng, directory, &header, plan, session_id, first_segment_id)
        })
        .collect();

    let legs = cast
        .legs
        .iter()
        .map(|leg| pstn_leg(leg, &header, &plans, &sessions, cast.conference_id.as_deref()))
        .collect();

    let end = sessions
        .iter()
        .map(|session| session.span.end)
        .max()
        .unwrap_or_default();
    let first_modified = end + sample::between(rng, 90 * SECOND, 40 * MINUTE);
    if chance(rng, 0.03) {
        // Graph publishes a first version soon after the call and a fuller one later. The first
        // lacks the late sessions and the quality data (media, feedback) that arrives late.
        let start = sessions
            .iter()
            .map(|session| session.span.start)
            .min()
            .unwrap_or_default();
        let cutoff = start + ((end - start) as f64 * uniform(rng, 0.5, 0.9)) as i64;
        let early: Vec<&RenderedSession> = sessions
            .iter()
            .enumerate()
            .filter(|(position, session)| *position == 0 || session.span.start < cutoff)
            .map(|(_, session)| session)
            .collect();
        let early_spans: Vec<Span> = early.iter().map(|session| session.span).collect();
        let early_values = early
            .iter()
            .map(|session| without_quality_data(&session.value))
            .collect();
        let first = assemble(directory, &header, &early_spans, early_values, 1, first_modified);
        let later_modified = first_modified + sample::between(rng, 20 * MINUTE, 8 * 60 * MINUTE);
        let (spans, values): (Vec<Span>, Vec<Value>) = sessions
            .into_iter()
            .map(|session| (session.span, session.value))
            .unzip();
        let later = assemble(directory, &header, &spans, values, 2, later_modified);
        return Call {
            first,
            later: Some(later),
            legs,
        };
    }
    let version = *weighted(rng, &[(1i64, 70), (2, 25), (3, 5)]);
    let (spans, values): (Vec<Span>, Vec<Value>) = sessions
        .into_iter()
        .map(|session| (session.span, session.value))
        .unzip();
    Call {
        first: assemble(directory, &header, &spans, values, version, first_modified),
        later: None,
        legs,
    }
}

/// Where a planned PSTN party's sessions put it: from its first session's start to its last's end.
fn pstn_leg(
    leg: &PlannedLeg,
    header: &Header,
    plans: &[SessionPlan],
    sessions: &[RenderedSession],
    conference_id: Option<&str>,
) -> PstnLeg {
    // Both parties of a peer-to-peer call share its one session.
    let mine: Vec<usize> = (0..plans.len())
        .filter(|&index| !header.group || plans[index].participant == Some(leg.position))
        .collect();
    let first = mine[0];
    let start = mine.iter().map(|&index| plans[index].start).min();
    let end = mine.iter().map(|&index| plans[index].end).max();
    let connected = plans[first]
        .failure
        .as_ref()
        .is_none_or(|failure| failure.stage != "callSetup");
    PstnLeg {
        phone: leg.phone,
        user: leg.user,
        kind: leg.kind,
        trunk: leg.trunk,
        conference_id: conference_id.map(str::to_owned),
        session_id: sessions[first].value["id"]
            .as_str()
            .expect("sessions have ids")
            .to_owned(),
        start: header.precision.apply(start.unwrap_or_default()),
        end: header.precision.apply(end.unwrap_or_default()),
        connected,
    }
}

fn plan_peer_to_peer(rng: &mut Rng, directory: &Directory, window: &Window) -> (Cast, Vec<SessionPlan>) {
    #[derive(Clone, Copy)]
    enum Shape {
        Users,
        PstnOut,
        PstnIn,
        Acs,
    }
    let shape = *weighted(
        rng,
        &[
            (Shape::Users, 905),
            (Shape::PstnOut, 45),
            (Shape::PstnIn, 35),
            (Shape::Acs, 15),
        ],
    );
    let pstn = matches!(shape, Shape::PstnOut | Shape::PstnIn);
    let user = if pstn {
        *pick(rng, &directory.phone_users)
    } else {
        *pick(rng, &directory.members)
    };
    let user_endpoint = client(rng, directory, user);
    let start = window.sample_start(rng, false);
    let setup_failed = chance(rng, 0.02);
    let duration = if setup_failed {
        sample::between(rng, 2 * SECOND, 15 * SECOND)
    } else {
        (sample::log_normal(rng, 150.0, 1.1, 4.0, 7200.0) * SECOND as f64) as i64
    };
    let failure = if setup_failed {
        Some(failure(rng, "callSetup"))
    } else if chance(rng, 0.01) {
        Some(failure(rng, "midcall"))
    } else {
        None
    };

    let (organizer, participants, caller, callee) = match shape {
        Shape::Users => {
            let other = loop {
                let candidate = *pick(rng, &directory.members);
                if candidate != user {
                    break candidate;
                }
            };
            (user, vec![user, other], user_endpoint, client(rng, directory, other))
        }
        Shape::PstnOut => {
            let line = directory.line(user);
            // Most calls out are domestic; a domestic-only plan allows nothing else.
            let domestic = line.license == "MCOPSTN1" || chance(rng, 0.75);
            let local = &directory.phones_by_country[directory.person(user).country];
            let phone = if domestic && !local.is_empty() {
                *pick(rng, local)
            } else {
                *pick(rng, &directory.phones)
            };
            (
                user,
                vec![user, phone],
                user_endpoint,
                Endpoint::Service(Service::Mediation),
            )
        }
        // An inbound PSTN call is organized by the caller, as in Graph's list example.
        Shape::PstnIn => {
            let phone = *pick(rng, &directory.phones);
            (
                phone,
                vec![phone, user],
                Endpoint::Service(Service::Mediation),
                user_endpoint,
            )
        }
        Shape::Acs => {
            let acs_user = *pick(rng, &directory.acs_users);
            (
                acs_user,
                vec![acs_user, user],
                client(rng, directory, acs_user),
                user_endpoint,
            )
        }
    };
    let trunk = match directory.person(user).line.as_ref().map(|line| line.route) {
        Some(Route::DirectRouting(trunk)) if pstn => Some(trunk),
        _ => None,
    };
    let legs = match shape {
        Shape::PstnOut | Shape::PstnIn => {
            let (position, kind) = if matches!(shape, Shape::PstnOut) {
                (1, LegKind::UserOut)
            } else {
                (0, LegKind::UserIn)
            };
            vec![PlannedLeg {
                position,
                phone: participants[position],
                user,
                kind,
                trunk,
            }]
        }
        _ => Vec::new(),
    };
    // Media bypass needs an SBC that allows it and a client that can reach it.
    let media_bypass = trunk.is_some_and(|trunk| directory.telephony.trunks[trunk].media_bypass) && chance(rng, 0.9);
    let both_clients = matches!((caller, callee), (Endpoint::Client { .. }, Endpoint::Client { .. }));
    let video = both_clients && !setup_failed && chance(rng, 0.2);
    let screen_sharing = matches!(shape, Shape::Users) && !setup_failed && duration > 60 * SECOND && chance(rng, 0.08);
    let plan = SessionPlan {
        participant: Some(0),
        caller,
        callee,
        start,
        end: start + duration,
        video,
        screen_sharing,
        failure,
        rateable: true,
        media_bypass,
    };
    let cast = Cast {
        organizer,
        participants,
        join_web_url: None,
        legs,
        conference_id: None,
    };
    (cast, vec![plan])
}

fn plan_meeting(rng: &mut Rng, directory: &Directory, window: &Window) -> (Cast, Vec<SessionPlan>) {
    // About 1 % of meetings run long with people dropping and rejoining, giving more than 60
    // sessions: the page size of `sessions`, so clients must follow nextLinks.
    let marathon = chance(rng, 0.01);
    let series = if !marathon && chance(rng, 0.35) {
        Some(pick(rng, &directory.series))
    } else {
        None
    };
    let scheduled = series.is_some() || marathon || chance(rng, 0.75);
    let planned_start = window.sample_start(rng, scheduled);
    let organizer = series.map_or_else(|| *pick(rng, &directory.members), |series| series.organizer);

    let n_wanted = if marathon {
        sample::between(rng, 25, 50) as usize
    } else if chance(rng, 0.04) {
        sample::between(rng, 12, 50) as usize
    } else {
        // Exponential tail over a floor of 3: most meetings are small.
        (3.0 - uniform(rng, 0.0, 1.0).max(1e-9).ln() * 2.0).min(50.0) as usize
    };
    let mut participants: Vec<usize> = Vec::with_capacity(n_wanted + 1);
    if chance(rng, 0.95) {
        participants.push(organizer);
    }
    if let Some(series) = series {
        for &attendee in &series.attendees {
            if chance(rng, 0.8) {
                participants.push(attendee);
            }
        }
    }
    let mut attempts = 0;
    while participants.len() < n_wanted.max(3) && attempts < 200 {
        attempts += 1;
        let pool = match sample::index(rng, 100) {
            0..=81 => &directory.members,
            82..=85 => &directory.rooms,
            86..=91 => &directory.guests,
            92..=97 => &directory.phones,
            _ => &directory.acs_users,
        };
        let candidate = *pick(rng, pool);
        if candidate != organizer && !participants.contains(&candidate) {
            participants.push(candidate);
        }
    }

    let length = if marathon {
        sample::between(rng, 90, 180) * MINUTE
    } else if let Some(series) = series {
        (series.length_minutes as f64 * uniform(rng, 0.6, 1.1) * MINUTE as f64) as i64
    } else if scheduled {
        let minutes = *weighted(rng, &[(15i64, 12), (30, 45), (45, 8), (60, 28), (90, 5), (120, 2)]);
        (minutes as f64 * uniform(rng, 0.55, 1.1) * MINUTE as f64) as i64
    } else {
        (sample::log_normal(rng, 12.0, 0.8, 3.0, 90.0) * MINUTE as f64) as i64
    };
    let planned_end = planned_start + length;
    let video_meeting = chance(rng, 0.4);
    let screen_sharing_meeting = length > 5 * MINUTE && chance(rng, 0.25);

    let mut rejoins: Vec<usize> = (0..participants.len())
        .map(|_| *weighted(rng, &[(0usize, 88), (1, 9), (2, 2), (3, 1)]))
        .collect();
    if marathon {
        let target = sample::between(rng, 61, 120) as usize;
        let mut total: usize = participants.len() + rejoins.iter().sum::<usize>();
        while total < target {
            rejoins[sample::index(rng, participants.len())] += 1;
            total += 1;
        }
    }

    let mut plans: Vec<SessionPlan> = Vec::with_capacity(participants.len() * 2);
    let mut legs: Vec<PlannedLeg> = Vec::new();
    for (position, &person_index) in participants.iter().enumerate() {
        let person = directory.person(person_index);
        let is_organizer = person_index == organizer;
        let join = if is_organizer {
            planned_start + sample::between(rng, -4 * MINUTE, MINUTE)
        } else {
            match sample::index(rng, 100) {
                0..=64 => planned_start + sample::between(rng, -3 * MINUTE, 3 * MINUTE),
                65..=89 => planned_start + sample::between(rng, 3 * MINUTE, 10 * MINUTE),
                _ => planned_start + sample::between(rng, 10 * MINUTE, (length * 6 / 10).max(11 * MINUTE)),
            }
        };
        let stays = if marathon { chance(rng, 0.85) } else { chance(rng, 0.75) };
        let leave = if stays {
            planned_end + sample::between(rng, -2 * MINUTE, 90 * SECOND)
        } else {
            let share = if marathon {
                uniform(rng, 0.5, 1.0)
            } else {
                uniform(rng, 0.2, 0.9)
            };
            join + ((planned_end - join) as f64 * share) as i64
        };
        let leave = leave.max(join + 30 * SECOND + sample::between(rng, 0, 60 * SECOND));
        // Keeping joins inside the window keeps every session's start (and every usage-log
        // row's) inside it too.
        let join = join.clamp(window.start + MINUTE, window.end - MINUTE);

        let phone = person.kind == Kind::Phone;
        // A quarter of phone parties are called out to from the meeting; the rest dial in.
        let dial_out = phone && chance(rng, 0.25);
        if phone {
            let trunks = &directory.telephony.trunks;
            // Conferencing can reach the PSTN over the tenant's SBCs too.
            let trunk = (!trunks.is_empty() && chance(rng, 0.4)).then(|| sample::index(rng, trunks.len()));
            let kind = if dial_out {
                LegKind::ConferenceOut
            } else {
                LegKind::ConferenceIn {
                    toll_free: chance(rng, 0.15),
                }
            };
            legs.push(PlannedLeg {
                position,
                phone: person_index,
                user: organizer,
                kind,
                trunk,
            });
        }

        let (endpoint, join) = if dial_out {
            (Endpoint::Service(Service::Mediation), join)
        } else if phone {
            // Dial-in: the caller first talks to the conferencing attendant to enter the meeting id.
            let attendant_end = join + sample::between(rng, 10 * SECOND, 40 * SECOND);
            plans.push(SessionPlan {
                participant: Some(position),
                caller: Endpoint::Service(Service::Mediation),
                callee: Endpoint::Service(Service::Attendant),
                start: join,
                end: attendant_end,
                video: false,
                screen_sharing: false,
                failure: None,
                rateable: false,
                media_bypass: false,
            });
            (Endpoint::Service(Service::Mediation), attendant_end + SECOND)
        } else {
            (client(rng, directory, person_index), join)
        };
        let is_client = matches!(endpoint, Endpoint::Client { .. });
        let leave = leave.max(join + 20 * SECOND);

        if is_client && chance(rng, 0.015) {
            // A failed first attempt, retried a few seconds later.
            let failed_end = join - sample::between(rng, 2 * SECOND, 8 * SECOND);
            plans.push(SessionPlan {
                participant: Some(position),
                caller: endpoint,
                callee: Endpoint::Service(Service::AudioVideoMcu),
                start: failed_end - sample::between(rng, 2 * SECOND, 12 * SECOND),
                end: failed_end,
                video: false,
                screen_sharing: false,
                failure: Some(failure(rng, "callSetup")),
                rateable: false,
                media_bypass: false,
            });
        }
        let camera = is_client && video_meeting && (person.kind == Kind::Room || chance(rng, 0.75));
        let screen_sharing = is_client && screen_sharing_meeting && chance(rng, 0.6);
        // A phone party that hangs up and dials again is a new PSTN call; keep one per party.
        let pieces = split(
            rng,
            join,
            leave,
            if phone { 1 } else { rejoins[position] + 1 },
            (3 * SECOND, 45 * SECOND),
            10 * SECOND,
        );
        let n_pieces = pieces.len();
        for (piece, (start, end)) in pieces.into_iter().enumerate() {
            let last = piece + 1 == n_pieces;
            let failure = if !last && chance(rng, 0.08) || last && chance(rng, 0.008) {
                Some(failure(rng, "midcall"))
            } else {
                None
            };
            let callee = if is_client && chance(rng, 0.08) {
                Service::MediaController
            } else {
                Service::AudioVideoMcu
            };
            // The meeting places dial-out calls, so the bridge is the caller.
            let (caller, callee) = if dial_out {
                (Endpoint::Service(callee), endpoint)
            } else {
                (endpoint, Endpoint::Service(callee))
            };
            plans.push(SessionPlan {
                participant: Some(position),
                caller,
                callee,
                start,
                end,
                video: camera,
                screen_sharing,
                failure,
                rateable: last,
                media_bypass: false,
            });
        }
    }

    if chance(rng, 0.1) {
        // Recording start: the announcement service tells everyone the meeting is recorded.
        let start = planned_start + sample::between(rng, 0, 10 * MINUTE).min(length / 2);
        plans.push(SessionPlan {
            participant: None,
            caller: Endpoint::Service(Service::Announcement),
            callee: Endpoint::Service(Service::AudioVideoMcu),
            start,
            end: start + sample::between(rng, 5 * SECOND, 20 * SECOND),
            video: false,
            screen_sharing: false,
            failure: None,
            rateable: false,
            media_bypass: false,
        });
    }
    // Stable sort: equal starts keep generation order, so output stays deterministic.
    plans.sort_by_key(|plan| plan.start);

    let join_web_url = series.map_or_else(
        || directory::join_web_url(rng, &directory.tenant_id, &directory.person(organizer).id),
        |series| series.join_web_url.clone(),
    );
    let conference_id = (!legs.is_empty())
        .then(|| series.map_or_else(|| directory::conference_id(rng), |series| series.conference_id.clone()));
    let cast = Cast {
        organizer,
        participants,
        join_web_url: Some(join_web_url),
        legs,
        conference_id,
    };
    (cast, plans)
}

/// A person's client endpoint; members sometimes join from their phone instead of their laptop.
fn client(rng: &mut Rng, directory: &Directory, person: usize) -> Endpoint {
    let n_devices = directory.person(person).devices.len();
    let device = if n_devices > 1 && chance(rng, 0.15) { 1 } else { 0 };
    Endpoint::Client { person, device }
}

fn failure(rng: &mut Rng, stage: &'static str) -> Failure {
    let reasons = if stage == "callSetup" {
        vocab::SETUP_FAILURE_REASONS
    } else {
        vocab::MIDCALL_FAILURE_REASONS
    };
    let reason = *weighted(rng, reasons);
    Failure { stage, reason }
}

/// Splits `[start, end)` into up to `pieces` consecutive intervals of at least `min_length`,
/// separated by gaps drawn from `gap`. Fewer pieces come back when the interval is too short.
fn split(rng: &mut Rng, start: i64, end: i64, pieces: usize, gap: (i64, i64), min_length: i64) -> Vec<(i64, i64)> {
    let mut pieces = pieces.max(1);
    let mut gaps: Vec<i64> = Vec::new();
    let available = loop {
        gaps.clear();
        gaps.extend((1..pieces).map(|_| sample::between(rng, gap.0, gap.1)));
        let available = end - start - gaps.iter().sum::<i64>();
        if pieces == 1 || available >= pieces as i64 * min_length {
            break available;
        }
        pieces -= 1;
    };
    if pieces == 1 {
        return vec![(start, end)];
    }
    let weights: Vec<f64> = (0..pieces).map(|_| uniform(rng, 0.2, 1.0)).collect();
    let weight_sum: f64 = weights.iter().sum();
    let spare = (available - pieces as i64 * min_length) as f64;
    let mut out = Vec::with_capacity(pieces);
    let mut cursor = start;
    for (piece, weight) in weights.iter().enumerate() {
        let piece_end = if piece + 1 == pieces {
            end
        } else {
            cursor + min_length + (spare * weight / weight_sum) as i64
        };
        out.push((cursor, piece_end));
        cursor = piece_end + gaps.get(piece).copied().unwrap_or(0);
    }
    out
}

fn render_session(
    rng: &mut Rng,
    directory: &Directory,
    header: &Header,
    plan: &SessionPlan,
    session_id: String,
    first_segment_id: Option<String>,
) -> RenderedSession {
    let side = |endpoint: Endpoint| match endpoint {
        Endpoint::Client { person, device } => {
            let person = directory.person(person);
            Side::Client {
                person,
                device: &person.devices[device],
            }
        }
        Endpoint::Service(service) => Side::Service(service),
    };
    let endpoint_value = |endpoint: Endpoint| match endpoint {
        Endpoint::Client { person, device } => directory.client_endpoint(person, device, header.legacy),
        Endpoint::Service(service) => directory.service_endpoint(service).clone(),
    };
    let session_media = SessionMedia::new(rng, side(plan.caller), side(plan.callee), plan.media_bypass);
    let mut labels = vec![Label::Audio];
    let mut modalities = AUDIO;
    if plan.video {
        labels.push(Label::Video);
        modalities |= VIDEO;
    }
    if plan.screen_sharing {
        labels.push(Label::ScreenSharing);
        modalities |= SCREEN_SHARING;
    }

    let caller = endpoint_value(plan.caller);
    let callee = endpoint_value(plan.callee);
    let n_segments = if plan.end - plan.start < 20 * SECOND {
        1
    } else {
        *weighted(rng, &[(1usize, 78), (2, 17), (3, 5)])
    };
    let pieces = split(rng, plan.start, plan.end, n_segments, (0, 0), 2 * SECOND);
    let n_pieces = pieces.len();
    let mut first_segment_id = first_segment_id;
    let segments: Vec<Value> = pieces
        .into_iter()
        .enumerate()
        .map(|(position, (start, end))| {
            let last = position + 1 == n_pieces;
            let mut segment = Obj::with_capacity(7);
            segment.put("id", first_segment_id.take().unwrap_or_else(|| sample::guid(rng)));
            segment.put("startDateTime", wire::datetime(start, header.precision));
            segment.put("endDateTime", wire::datetime(end, header.precision));
            segment.put("caller", caller.clone());
            segment.put("callee", callee.clone());
            if last {
                if let Some(failure) = &plan.failure {
                    segment.put("failureInfo", failure_info(failure));
                }
            } else if chance(rng, 0.01) {
                // A dropped media link that the client re-established as the next segment.
                segment.put("failureInfo", failure_info(&failure(rng, "midcall")));
            }
            segment.put(
                "media",
                session_media.render(rng, start, end, &labels, header.precision, position == 0),
            );
            segment.into_value()
        })
        .collect();

    let mut session = Obj::with_capacity(8);
    session.put("id", session_id);
    session.put("modalities", modality_names(modalities));
    session.put("startDateTime", wire::datetime(plan.start, header.precision));
    session.put("endDateTime", wire::datetime(plan.end, header.precision));
    session.put_some("failureInfo", plan.failure.as_ref().map(failure_info));
    session.put("caller", with_feedback(rng, caller, plan, &session_media));
    session.put("callee", with_feedback(rng, callee, plan, &session_media));
    session.put("segments", segments);
    RenderedSession {
        value: session.into_value(),
        span: Span {
            participant: plan.participant,
            start: plan.start,
            end: plan.end,
            modalities,
        },
    }
}

/// Teams asks for a rating as people leave, so only a participant's last session can carry
/// feedback; 12 % of those gives about one participant endpoint in ten.
fn with_feedback(rng: &mut Rng, mut endpoint: Value, plan: &SessionPlan, session_media: &SessionMedia) -> Value {
    let is_participant = endpoint.get("@odata.type").and_then(Value::as_str) == Some(vocab::PARTICIPANT_ENDPOINT);
    if plan.rateable && is_participant && chance(rng, 0.12) {
        endpoint["feedback"] = media::feedback(rng, session_media.poor(), plan.video);
    }
    endpoint
}

fn failure_info(failure: &Failure) -> Value {
    let mut info = Obj::new();
    info.put("stage", failure.stage);
    info.put("reason", failure.reason);
    info.into_value()
}

fn modality_names(modalities: u8) -> Value {
    let mut names = Vec::with_capacity(3);
    if modalities & AUDIO != 0 {
        names.push(Value::from("audio"));
    }
    if modalities & VIDEO != 0 {
        names.push(Value::from("video"));
    }
    if modalities & SCREEN_SHARING != 0 {
        names.push(Value::from("screenSharing"));
    }
    Value::Array(names)
}

/// A session as the first, early version of a record shows it: no media, no feedback yet.
fn without_quality_data(session: &Value) -> Value {
    let mut session = session.clone();
    if let Some(session) = session.as_object_mut() {
        for key in ["caller", "callee"] {
            if let Some(endpoint) = session.get_mut(key).and_then(Value::as_object_mut) {
                endpoint.shift_remove("feedback");
            }
        }
        if let Some(segments) = session.get_mut("segments").and_then(Value::as_array_mut) {
            for segment in segments.iter_mut().filter_map(Value::as_object_mut) {
                segment.shift_remove("media");
            }
        }
    }
    session
}

/// The callRecord in its full-details ingest shape, with `sessions` and `participants_v2` inline.
fn assemble(
    directory: &Directory,
    header: &Header,
    sessions: &[Span],
    session_values: Vec<Value>,
    version: i64,
    last_modified: i64,
) -> Value {
    let start = sessions.iter().map(|session| session.start).min().unwrap_or_default();
    let end = sessions.iter().map(|session| session.end).max().unwrap_or_default();
    let modalities = sessions.iter().fold(0, |bits, session| bits | session.modalities);
    // participants_v2 lists who has a session in this version of the record; both parties of a
    // peer-to-peer call share its one session.
    let present: Vec<usize> = (0..header.participants.len())
        .filter(|position| !header.group || sessions.iter().any(|session| session.participant == Some(*position)))
        .map(|position| header.participants[position])
        .collect();

    let mut record = Obj::with_capacity(13);
    record.put("id", header.id.as_str());
    record.put("version", version);
    record.put("type", if header.group { "groupCall" } else { "peerToPeer" });
    record.put("modalities", modality_names(modalities));
    record.put("lastModifiedDateTime", wire::datetime(last_modified, header.precision));
    record.put("startDateTime", wire::datetime(start, header.precision));
    record.put("endDateTime", wire::datetime(end, header.precision));
    record.put_some("joinWebUrl", header.join_web_url.as_deref());
    if header.legacy {
        record.put("organizer", directory.legacy_identity(header.organizer));
        let legacy: Vec<Value> = present
            .iter()
            .take(130)
            .map(|&person| directory.legacy_identity(person))
            .collect();
        record.put("participants", legacy);
    }
    record.put("organizer_v2", participant(directory, header.organizer));
    let participants: Vec<Value> = present.iter().map(|&person| participant(directory, person)).collect();
    record.put("participants_v2", participants);
    record.put("sessions", session_values);
    record.into_value()
}

fn participant(directory: &Directory, person: usize) -> Value {
    let mut participant = Obj::with_capacity(3);
    participant.put("id", directory.person(person).id.as_str());
    participant.put("identity", directory.identity(person));
    participant.put("administrativeUnitInfos", directory.administrative_units(person));
    participant.into_value()
}
