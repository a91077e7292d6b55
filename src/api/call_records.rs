//! The call records surface under `/v1.0/` and `/beta/`: list, get,
//! sessions, segments, participants_v2, organizer_v2, `$count` and `$metadata`.
//!
//! Stored documents are already in Graph's wire form; these handlers project, page and annotate
//! them. Paging is keyset-based: a `$skiptoken` holds the sort key of the last item returned,
//! bound to the query options it was issued for.

use std::borrow::Cow;

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::{ApiError, Result};
use super::odata::{self, context_url, keyed, page_size, parse_document, project};
use super::paging::{after_page, Paging};
use super::path::{Resource, Target};
use super::raw::{self, JsonObject, RawEntity};
use super::AppState;
use crate::auth::Principal;
use crate::model::{retired, DateTimeOffset, LogKind, CSDL, CSDL_BETA};
use crate::query::{
    self, CallRecordFilter, Comparison, EntityKind, ExpandItem, OptionRules, QueryOption, QueryOption as Q,
    QueryOptions,
};
use crate::store::{self, RecordCursor, RecordSelection, StoredChild, StoredRecord, TenantId, Timestamp};

/// Largest pages Graph serves; the list's maximum is our choice (Graph documents none).
const MAX_RECORDS_PAGE: u32 = 60;
const MAX_SESSIONS_PAGE: u32 = 60;
const MAX_PARTICIPANTS_PAGE: u32 = 130;

/// The Graph version a request addresses. Beta serves everything v1.0 does with beta's schema:
/// its extra usage-log functions and row properties, its `$metadata`, and system query options
/// with or without their `$`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ApiVersion {
    V1,
    Beta,
}

/// Every request under `/v1.0/`.
pub(crate) async fn dispatch(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(target): Extension<Target>,
    ctx: RequestContext,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Result<Response> {
    serve(ApiVersion::V1, state, principal, target, ctx, method, uri).await
}

/// Every request under `/beta/`.
pub(crate) async fn dispatch_beta(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(target): Extension<Target>,
    ctx: RequestContext,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Result<Response> {
    serve(ApiVersion::Beta, state, principal, target, ctx, method, uri).await
}

/// Takes the resource the authenticate middleware parsed (the one its roles were checked for),
/// refuses what the version does not have and write methods, parses the query options and
/// hands over to the resource's handler.
async fn serve(
    version: ApiVersion,
    state: AppState,
    principal: Principal,
    target: Target,
    ctx: RequestContext,
    method: Method,
    uri: axum::http::Uri,
) -> Result<Response> {
    let resource = target.into_resource()?;
    if let Resource::Function(kind, _) = &resource {
        if version == ApiVersion::V1 && !kind.in_v1() {
            // Graph v1.0 has no such function: its name is an unknown segment there.
            let last = uri.path().rsplit('/').next().unwrap_or_default();
            return Err(ApiError::unknown_segment(last.split('(').next().unwrap_or(last)));
        }
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::method_not_allowed("GET"));
    }
    let query = uri.query().unwrap_or_default();
    let raw = match version {
        ApiVersion::V1 => query::parse_query_string(query)?,
        ApiVersion::Beta => query::parse_query_string(&with_dollar_prefixes(query))?,
    };
    let options = match option_rules(&resource) {
        Some(rules) => QueryOptions::parse(raw, &rules)?,
        // The documents read no option: any that splits cleanly is ignored.
        None => QueryOptions::default(),
    };
    let graph = Graph {
        state,
        ctx,
        options,
        tenant: principal.tenant,
        version,
    };
    match resource {
        Resource::ServiceDocument => Ok(service_document(&graph.ctx)),
        Resource::Metadata => Ok(metadata(version)),
        Resource::CallRecords => graph.list_call_records().await,
        Resource::CallRecordsCount => graph.count_call_records().await,
        Resource::CallRecord(id) => graph.get_call_record(&id).await,
        Resource::Sessions(id) => graph.list_sessions(&id).await,
        Resource::SessionsCount(id) => graph.count_children(&id, Child::Sessions).await,
        Resource::Session(id, session_id) => graph.get_session(&id, &session_id).await,
        Resource::Segments(id, session_id) => graph.list_segments(&id, &session_id).await,
        Resource::SegmentsCount(id, session_id) => graph.count_segments(&id, &session_id).await,
        Resource::Segment(id, session_id, segment_id) => graph.get_segment(&id, &session_id, &segment_id).await,
        Resource::Participants(id) => graph.list_participants(&id).await,
        Resource::ParticipantsCount(id) => graph.count_children(&id, Child::Participants).await,
        Resource::Participant(id, participant_id) => graph.get_participant(&id, &participant_id).await,
        Resource::Organizer(id) => graph.get_organizer(&id).await,
        Resource::Function(LogKind::PstnOnlineMeetingDialout, range) => graph.dialout_report(&range).await,
        Resource::Function(kind, range) => graph.call_log_function(kind, &range).await,
    }
}

/// The query options each resource takes, the entity its `$select` and `$expand` name
/// properties of, and what it may expand. Graph's listed records never carry sessions or
/// participants (`organizer_v2` is inlined anyway); participants expand nothing. `None` for the
/// service and metadata documents, which read no option.
fn option_rules(resource: &Resource) -> Option<OptionRules> {
    let rules = |supported: &'static [QueryOption], entity, expandable: &'static [&'static str]| OptionRules {
        supported,
        entity: Some(entity),
        expandable,
    };
    Some(match resource {
        Resource::ServiceDocument | Resource::Metadata => return None,
        Resource::CallRecords => rules(
            &[Q::Filter, Q::Select, Q::Expand, Q::Top, Q::SkipToken, Q::Count],
            EntityKind::CallRecord,
            &["organizer_v2"],
        ),
        Resource::CallRecordsCount => rules(&[Q::Filter], EntityKind::CallRecord, &[]),
        Resource::CallRecord(_) => rules(
            &[Q::Select, Q::Expand],
            EntityKind::CallRecord,
            &["sessions", "participants_v2", "organizer_v2"],
        ),
        Resource::Sessions(_) => rules(
            &[Q::Select, Q::Top, Q::SkipToken, Q::Count, Q::Expand],
            EntityKind::Session,
            &["segments"],
        ),
        Resource::Participants(_) => rules(
            &[Q::Select, Q::Top, Q::SkipToken, Q::Count],
            EntityKind::Participant,
            &[],
        ),
        Resource::SessionsCount(_) | Resource::ParticipantsCount(_) | Resource::SegmentsCount(..) => OptionRules::NONE,
        Resource::Session(..) => rules(&[Q::Select, Q::Expand], EntityKind::Session, &["segments"]),
        Resource::Segments(..) => rules(&[Q::Select, Q::Count], EntityKind::Segment, &[]),
        Resource::Segment(..) => rules(&[Q::Select], EntityKind::Segment, &[]),
        Resource::Participant(..) => rules(&[Q::Select], EntityKind::Participant, &[]),
        Resource::Organizer(_) => rules(&[Q::Select], EntityKind::Organizer, &[]),
        Resource::Function(LogKind::PstnOnlineMeetingDialout, _) => OptionRules {
            supported: &[Q::Top, Q::Count, Q::SkipToken],
            ..OptionRules::NONE
        },
        Resource::Function(..) => OptionRules {
            supported: &[Q::Top, Q::Skip, Q::Count, Q::SkipToken],
            ..OptionRules::NONE
        },
    })
}

/// On beta the `$` of system query options is optional: `top=2` means `$top=2`.
fn with_dollar_prefixes(query: &str) -> String {
    const OPTIONS: &[&str] = &[
        "filter",
        "select",
        "expand",
        "top",
        "skip",
        "skiptoken",
        "count",
        "orderby",
        "search",
        "format",
        "apply",
        "compute",
    ];
    query
        .split('&')
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            if OPTIONS.iter().any(|option| option.eq_ignore_ascii_case(name)) {
                format!("${pair}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The version's root, as Graph's: the OData service document, naming what can be addressed
/// from here (the `communications` singleton through which call records are reached, and
/// `subscriptions`).
fn service_document(ctx: &RequestContext) -> Response {
    let body = serde_json::json!({
        "@odata.context": format!("{}/{}/$metadata", ctx.base_url, ctx.version),
        "value": [
            { "name": "communications", "kind": "Singleton", "url": "communications" },
            { "name": "subscriptions", "kind": "EntitySet", "url": "subscriptions" },
        ],
    });
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(super::ODATA_JSON));
    response
}

fn metadata(version: ApiVersion) -> Response {
    let csdl = match version {
        ApiVersion::V1 => CSDL,
        ApiVersion::Beta => CSDL_BETA,
    };
    let mut response = (StatusCode::OK, csdl).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml;charset=utf-8"),
    );
    response
}

#[derive(Clone, Copy)]
enum Child {
    Sessions,
    Participants,
}

/// One Graph request in progress: who asks, with which preferences and options.
pub(super) struct Graph {
    pub(super) state: AppState,
    pub(super) ctx: RequestContext,
    pub(super) options: QueryOptions,
    pub(super) tenant: TenantId,
    pub(super) version: ApiVersion,
}

/// The paging of a record's sessions or participants, listed or expanded: an expanded
/// collection's next link continues as the list request with the same nested options.
fn child_paging(
    record_path: &str,
    child: &str,
    record_id: &str,
    select: Option<&str>,
    expand: Option<&str>,
    count: Option<&str>,
) -> Paging {
    Paging::new(
        format!("{child}|{record_id}"),
        format!("{record_path}/{child}"),
        &[("$select", select), ("$expand", expand), ("$count", count)],
    )
}

pub(super) fn selection_from(filter: Option<&CallRecordFilter>, visible_from: Option<Timestamp>) -> RecordSelection {
    let mut selection = RecordSelection::default();
    if let Some(from) = visible_from {
        selection.start_at_or_after(from);
    }
    if let Some(filter) = filter {
        for (comparison, at) in &filter.start {
            let at = Timestamp::from(DateTimeOffset::from_offset_date_time(*at));
            match comparison {
                Comparison::Ge => selection.start_at_or_after(at),
                Comparison::Gt => selection.start_at_or_after(at.next_tick()),
                Comparison::Lt => selection.start_before(at),
                Comparison::Le => selection.start_before(at.next_tick()),
            }
        }
        selection.participant_ids = filter.participant_ids.clone();
    }
    selection
}

pub(super) fn invalid_skiptoken() -> ApiError {
    ApiError::bad_request("Invalid skip token.").with_target("$skiptoken")
}

/// The `$select` a listing continues an expanded collection with: the nested one as the list
/// request spells it (`*` for all, never an empty value), or none.
fn select_option(item: &ExpandItem) -> Option<String> {
    item.select.as_ref().map(|select| {
        if select.is_empty() {
            "*".to_owned()
        } else {
            select.join(",")
        }
    })
}

/// What a request's `$expand` asks of a record's `organizer_v2`: inlined whatever `$select`
/// says, and projected by its nested `$select`.
#[derive(Clone, Copy, Default)]
struct OrganizerExpansion<'a> {
    expanded: bool,
    select: &'a [String],
}

impl<'a> OrganizerExpansion<'a> {
    fn of(expand: &'a [ExpandItem]) -> Self {
        match expand.iter().find(|item| item.property == "organizer_v2") {
            Some(item) => Self {
                expanded: true,
                select: item.select.as_deref().unwrap_or_default(),
            },
            None => Self::default(),
        }
    }
}

/// A page of children and whether more follow, from a fetch of `size + 1` rows.
fn split_page(mut rows: Vec<StoredChild>, size: u32) -> (Vec<StoredChild>, bool) {
    let more = rows.len() > size as usize;
    rows.truncate(size as usize);
    (rows, more)
}

impl Graph {
    fn visible_from(&self) -> Option<Timestamp> {
        store::visible_from(self.state.settings.retention_days, self.state.clock.timestamp())
    }

    /// The record `id`, after its throttle budget: every handler of a record or a sub-resource
    /// comes here once its options passed, before anything else reads the store.
    async fn require_record(&self, id: &str) -> Result<store::StoredRecord> {
        self.state.throttle.check_record(&self.tenant, id)?;
        self.state
            .store
            .get_call_record(&self.tenant, id, self.visible_from())
            .await?
            .ok_or_else(ApiError::call_record_not_found)
    }

    /// The retired `participants` of a record as `--derive-retired-properties` serves them, when
    /// it is on and the answer shows them.
    async fn derived_participants(&self, id: &str, select: &[String]) -> Result<Option<String>> {
        if !self.state.settings.derive_retired_properties
            || !(select.is_empty() || select.iter().any(|s| s == "participants"))
        {
            return Ok(None);
        }
        let limit = retired::MAX_DERIVED_PARTICIPANTS as u32;
        let rows = self
            .state
            .store
            .list_participants(&self.tenant, id, None, limit)
            .await?;
        let documents: Vec<&str> = rows.iter().map(|row| row.document.as_str()).collect();
        Ok(Some(
            retired::participants_from(&documents).map_err(|e| ApiError::internal(e.into()))?,
        ))
    }

    /// A record document as served, written into `object`: projected, with `organizer_v2`
    /// inlined when `$select` is absent or names it, or when it is expanded, and its
    /// context annotation before it.
    fn write_record(
        &self,
        object: &mut JsonObject,
        record: &StoredRecord,
        select: &[String],
        organizer: OrganizerExpansion<'_>,
        derived_participants: Option<&str>,
    ) -> Result<()> {
        let force_organizer = organizer.expanded;
        let derive = self.state.settings.derive_retired_properties;
        let (record_id, document) = (record.id.as_str(), record.document.as_str());
        let organizer_context = || {
            context_url(
                &self.ctx,
                &format!(
                    "communications/{}/organizer_v2/$entity",
                    keyed("callRecords", record_id)
                ),
            )
        };
        // The whole record, as most reads want it: copied as stored, with the organizer's
        // annotation spliced in where the store says the member starts.
        if select.is_empty() && organizer.select.is_empty() && !derive {
            match record.organizer_at.map(|at| split_at_organizer(document, at)) {
                Some(Some(OrganizerSplit::Absent(members)))
                    if !force_organizer && retired::record_is_current(members) =>
                {
                    object.members(members);
                    return Ok(());
                }
                Some(Some(OrganizerSplit::At { before, organizer })) if retired::record_is_current(before) => {
                    object.members(before);
                    object.string("organizer_v2@odata.context", &organizer_context());
                    object.members(organizer);
                    return Ok(());
                }
                _ => {}
            }
        }
        let mut entity = RawEntity::parse(document).map_err(ApiError::internal)?;
        // The retired members, as served now or derived from their successors (model::retired).
        let organizer_json = match (derive, entity.get("organizer_v2")) {
            (true, Some(organizer_v2)) => {
                retired::organizer_from(organizer_v2).map_err(|e| ApiError::internal(e.into()))?
            }
            _ => "null".to_owned(),
        };
        entity.replace("organizer", organizer_json);
        entity.replace("participants", derived_participants.unwrap_or("[]").to_owned());
        let keep_organizer = force_organizer || select.is_empty() || select.iter().any(|s| s == "organizer_v2");
        if keep_organizer && !select.is_empty() {
            let mut kept = select.to_vec();
            kept.push("organizer_v2".to_owned());
            entity.project(&kept);
        } else {
            entity.project(select);
        }
        if !keep_organizer {
            entity.remove("organizer_v2");
        } else if force_organizer && !entity.contains("organizer_v2") {
            entity.push("organizer_v2", "null");
        }
        if !organizer.select.is_empty() {
            let projected = match entity.get("organizer_v2") {
                Some(text) if text.starts_with('{') => {
                    let mut inner = RawEntity::parse(text).map_err(ApiError::internal)?;
                    inner.project(organizer.select);
                    Some(inner.to_json())
                }
                _ => None,
            };
            if let Some(projected) = projected {
                entity.replace("organizer_v2", projected);
            }
        }
        let context = organizer_context();
        let annotation =
            entity
                .contains("organizer_v2")
                .then_some(("organizer_v2", "organizer_v2@odata.context", context.as_str()));
        entity.write_members(object, annotation);
        Ok(())
    }

    async fn list_call_records(&self) -> Result<Response> {
        let QueryOptions {
            filter,
            select,
            expand,
            top,
            count: with_count,
            raw,
            ..
        } = &self.options;
        let paging = Paging::new(
            "callRecords",
            "communications/callRecords",
            &[
                ("$filter", raw.filter.as_deref()),
                ("$select", raw.select.as_deref()),
                ("$expand", raw.expand.as_deref()),
                ("$count", raw.count.as_deref()),
            ],
        );
        let position = paging.position::<RecordCursor>(self.options.raw.skiptoken.as_deref(), *top)?;
        let (cursor, remaining) = (position.after, position.remaining);
        let selection = selection_from(filter.as_ref(), self.visible_from());
        let (size, max_page_applied) = page_size(&self.ctx, MAX_RECORDS_PAGE, remaining);
        let mut rows = self
            .state
            .store
            .list_call_records(&self.tenant, &selection, cursor.as_ref(), size + 1)
            .await?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);

        let projection = query::context_projection(select, &[]).unwrap_or_default();
        let mut body = JsonObject::with_capacity(rows.iter().map(|row| row.document.len() + 256).sum());
        body.string(
            "@odata.context",
            &context_url(&self.ctx, &format!("communications/callRecords{projection}")),
        );
        if *with_count {
            let total = self.state.store.count_call_records(&self.tenant, &selection).await?;
            body.integer("@odata.count", total);
        }
        let organizer = OrganizerExpansion::of(expand);
        let mut derived = Vec::with_capacity(rows.len());
        for row in &rows {
            derived.push(self.derived_participants(&row.id, select).await?);
        }
        let mut derived = derived.into_iter();
        body.object_array("value", &rows, |item, row| {
            let participants = derived.next().flatten();
            self.write_record(item, row, select, organizer, participants.as_deref())
        })?;
        if let (Some(left), Some(last)) = (after_page(more, remaining, u64::from(size)), rows.last()) {
            let last = RecordCursor {
                start: last.start,
                id: last.id.clone(),
            };
            body.string("@odata.nextLink", &paging.next_link(&self.ctx, &last, left));
        }
        Ok(odata::json_text_response(
            &self.ctx,
            body.finish(),
            max_page_applied.into_iter().collect(),
        ))
    }

    async fn count_call_records(&self) -> Result<Response> {
        let selection = selection_from(self.options.filter.as_ref(), self.visible_from());
        let count = self.state.store.count_call_records(&self.tenant, &selection).await?;
        Ok(odata::count_response(count))
    }

    async fn get_call_record(&self, id: &str) -> Result<Response> {
        let QueryOptions { select, expand, .. } = &self.options;
        let expanded = |name: &str| expand.iter().any(|item| item.property == name);
        // `odata.maxpagesize` sizes the expanded collections as it sizes listed ones.
        let (sessions_size, _) = page_size(&self.ctx, MAX_SESSIONS_PAGE, None);
        let (participants_size, _) = page_size(&self.ctx, MAX_PARTICIPANTS_PAGE, None);
        let applied: Vec<String> = match self.ctx.prefer.max_page_size {
            Some(preferred) if expanded("sessions") || expanded("participants_v2") => {
                let largest = if expanded("participants_v2") {
                    MAX_PARTICIPANTS_PAGE
                } else {
                    MAX_SESSIONS_PAGE
                };
                vec![format!("odata.maxpagesize={}", preferred.min(largest))]
            }
            _ => Vec::new(),
        };
        // With sessions expanded, the record and its first page of sessions come in one read.
        let (record, mut first_sessions) = if expanded("sessions") {
            self.state.throttle.check_record(&self.tenant, id)?;
            let (record, sessions) = self
                .state
                .store
                .get_call_record_with_sessions(&self.tenant, id, self.visible_from(), sessions_size + 1)
                .await?
                .ok_or_else(ApiError::call_record_not_found)?;
            (record, Some(sessions))
        } else {
            (self.require_record(id).await?, None)
        };
        let projection = query::context_projection(select, expand).unwrap_or_default();
        // Sized for the whole answer when sessions come with it, so the buffer is never regrown.
        let sessions_len: usize = first_sessions
            .iter()
            .flatten()
            .map(|session| session.document.len() + 1)
            .sum();
        let mut body = JsonObject::with_capacity(record.document.len() + sessions_len + 1024);
        body.string(
            "@odata.context",
            &context_url(&self.ctx, &format!("communications/callRecords{projection}/$entity")),
        );
        let participants = self.derived_participants(id, select).await?;
        self.write_record(
            &mut body,
            &record,
            select,
            OrganizerExpansion::of(expand),
            participants.as_deref(),
        )?;
        let record_path = format!("communications/{}", keyed("callRecords", id));
        for item in expand {
            match item.property.as_str() {
                "sessions" => {
                    let first_page = match first_sessions.take() {
                        Some(rows) => rows,
                        None => {
                            self.state
                                .store
                                .list_sessions(&self.tenant, id, None, sessions_size + 1)
                                .await?
                        }
                    };
                    let (rows, more) = split_page(first_page, sessions_size);
                    let nested = query::context_projection(&[], &item.expand).unwrap_or_default();
                    let nested_select = item.select.clone().unwrap_or_default();
                    body.string(
                        "sessions@odata.context",
                        &context_url(&self.ctx, &format!("{record_path}/sessions{nested}")),
                    );
                    let sessions = self.render_sessions(&rows, &nested_select, &item.expand)?;
                    body.raw_array("sessions", &sessions);
                    if let (true, Some(last)) = (more, rows.last()) {
                        let expand_text = (!item.expand.is_empty()).then(|| query::format_expand(&item.expand));
                        let select = select_option(item);
                        let paging = child_paging(
                            &record_path,
                            "sessions",
                            id,
                            select.as_deref(),
                            expand_text.as_deref(),
                            None,
                        );
                        body.string(
                            "sessions@odata.nextLink",
                            &paging.next_link(&self.ctx, &last.ordinal, None),
                        );
                    }
                }
                "participants_v2" => {
                    let (rows, more) = split_page(
                        self.state
                            .store
                            .list_participants(&self.tenant, id, None, participants_size + 1)
                            .await?,
                        participants_size,
                    );
                    let nested_select = item.select.clone().unwrap_or_default();
                    body.string(
                        "participants_v2@odata.context",
                        &context_url(&self.ctx, &format!("{record_path}/participants_v2")),
                    );
                    let participants = render_participants(&rows, &nested_select)?;
                    body.raw_array("participants_v2", &participants);
                    if let (true, Some(last)) = (more, rows.last()) {
                        let select = select_option(item);
                        let paging = child_paging(&record_path, "participants_v2", id, select.as_deref(), None, None);
                        body.string(
                            "participants_v2@odata.nextLink",
                            &paging.next_link(&self.ctx, &last.ordinal, None),
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(odata::json_text_response(&self.ctx, body.finish(), applied))
    }

    /// Sessions as served: projected, with segments kept only when expanded.
    fn render_sessions<'a>(
        &self,
        rows: &'a [StoredChild],
        select: &[String],
        expand: &[ExpandItem],
    ) -> Result<Vec<Cow<'a, str>>> {
        let segments = expand.iter().find(|item| item.property == "segments");
        let derive = self.state.settings.derive_retired_properties;
        rows.iter()
            .map(|row| render_session(&row.document, select, segments, derive).map_err(ApiError::internal))
            .collect()
    }

    /// Lists sessions or participants of a record, keyset-paged by their ordinal.
    async fn list_children(&self, id: &str, child: Child) -> Result<Response> {
        let (name, max) = match child {
            Child::Sessions => ("sessions", MAX_SESSIONS_PAGE),
            Child::Participants => ("participants_v2", MAX_PARTICIPANTS_PAGE),
        };
        let QueryOptions {
            select,
            expand,
            top,
            count: with_count,
            raw,
            ..
        } = &self.options;
        let record_path = format!("communications/{}", keyed("callRecords", id));
        let paging = child_paging(
            &record_path,
            name,
            id,
            raw.select.as_deref(),
            raw.expand.as_deref(),
            raw.count.as_deref(),
        );
        let position = paging.position::<i64>(self.options.raw.skiptoken.as_deref(), *top)?;
        let (after, remaining) = (position.after, position.remaining);
        let record = self.require_record(id).await?;
        let (size, max_page_applied) = page_size(&self.ctx, max, remaining);
        let fetched = match child {
            Child::Sessions => {
                self.state
                    .store
                    .list_sessions(&self.tenant, id, after, size + 1)
                    .await?
            }
            Child::Participants => {
                self.state
                    .store
                    .list_participants(&self.tenant, id, after, size + 1)
                    .await?
            }
        };
        let (rows, more) = split_page(fetched, size);
        let projection = query::context_projection(select, expand).unwrap_or_default();
        let mut body = JsonObject::with_capacity(rows.iter().map(|row| row.document.len() + 1).sum::<usize>() + 512);
        body.string(
            "@odata.context",
            &context_url(&self.ctx, &format!("{record_path}/{name}{projection}")),
        );
        if *with_count {
            let total = match child {
                Child::Sessions => record.n_sessions,
                Child::Participants => record.n_participants,
            };
            body.integer("@odata.count", total);
        }
        let items = match child {
            Child::Sessions => self.render_sessions(&rows, select, expand)?,
            Child::Participants => render_participants(&rows, select)?,
        };
        body.raw_array("value", &items);
        if let (Some(left), Some(last)) = (after_page(more, remaining, u64::from(size)), rows.last()) {
            body.string("@odata.nextLink", &paging.next_link(&self.ctx, &last.ordinal, left));
        }
        Ok(odata::json_text_response(
            &self.ctx,
            body.finish(),
            max_page_applied.into_iter().collect(),
        ))
    }

    async fn list_sessions(&self, id: &str) -> Result<Response> {
        self.list_children(id, Child::Sessions).await
    }

    async fn list_participants(&self, id: &str) -> Result<Response> {
        self.list_children(id, Child::Participants).await
    }

    async fn count_children(&self, id: &str, child: Child) -> Result<Response> {
        let record = self.require_record(id).await?;
        Ok(odata::count_response(match child {
            Child::Sessions => record.n_sessions,
            Child::Participants => record.n_participants,
        }))
    }

    async fn require_session(&self, id: &str, session_id: &str) -> Result<Map<String, Value>> {
        self.require_record(id).await?;
        let row = self
            .state
            .store
            .get_session(&self.tenant, id, session_id)
            .await?
            .ok_or_else(ApiError::resource_not_found)?;
        let mut session = parse_document(&row.document).map_err(ApiError::internal)?;
        retired::endpoints(&mut session, self.state.settings.derive_retired_properties);
        Ok(session)
    }

    async fn get_session(&self, id: &str, session_id: &str) -> Result<Response> {
        let QueryOptions { select, expand, .. } = &self.options;
        let mut session = self.require_session(id, session_id).await?;
        project_session(&mut session, select, expand.first());
        let projection = query::context_projection(select, expand).unwrap_or_default();
        let context = context_url(
            &self.ctx,
            &format!(
                "communications/{}/sessions{projection}/$entity",
                keyed("callRecords", id)
            ),
        );
        Ok(odata::json_response(
            &self.ctx,
            with_context(context, session),
            Vec::new(),
        ))
    }

    async fn session_segments(&self, id: &str, session_id: &str) -> Result<Vec<Value>> {
        let mut session = self.require_session(id, session_id).await?;
        Ok(match session.remove("segments") {
            Some(Value::Array(segments)) => segments,
            _ => Vec::new(),
        })
    }

    async fn list_segments(&self, id: &str, session_id: &str) -> Result<Response> {
        let QueryOptions {
            select,
            count: with_count,
            ..
        } = &self.options;
        let mut segments = self.session_segments(id, session_id).await?;
        for segment in &mut segments {
            if let Value::Object(entity) = segment {
                project(entity, select);
            }
        }
        let projection = query::context_projection(select, &[]).unwrap_or_default();
        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            context_url(
                &self.ctx,
                &format!(
                    "communications/{}/{}/segments{projection}",
                    keyed("callRecords", id),
                    keyed("sessions", session_id)
                ),
            )
            .into(),
        );
        if *with_count {
            body.insert("@odata.count".into(), segments.len().into());
        }
        body.insert("value".into(), Value::Array(segments));
        Ok(odata::json_response(&self.ctx, Value::Object(body), Vec::new()))
    }

    async fn count_segments(&self, id: &str, session_id: &str) -> Result<Response> {
        let segments = self.session_segments(id, session_id).await?;
        Ok(odata::count_response(segments.len() as i64))
    }

    async fn get_segment(&self, id: &str, session_id: &str, segment_id: &str) -> Result<Response> {
        let select = &self.options.select;
        let segment = self
            .session_segments(id, session_id)
            .await?
            .into_iter()
            .find_map(|segment| match segment {
                Value::Object(entity) if entity.get("id").and_then(Value::as_str) == Some(segment_id) => Some(entity),
                _ => None,
            })
            .ok_or_else(ApiError::resource_not_found)?;
        let mut segment = segment;
        project(&mut segment, select);
        let projection = query::context_projection(select, &[]).unwrap_or_default();
        let context = context_url(
            &self.ctx,
            &format!(
                "communications/{}/{}/segments{projection}/$entity",
                keyed("callRecords", id),
                keyed("sessions", session_id)
            ),
        );
        Ok(odata::json_response(
            &self.ctx,
            with_context(context, segment),
            Vec::new(),
        ))
    }

    async fn get_participant(&self, id: &str, participant_id: &str) -> Result<Response> {
        let select = &self.options.select;
        self.require_record(id).await?;
        let row = self
            .state
            .store
            .get_participant(&self.tenant, id, participant_id)
            .await?
            .ok_or_else(ApiError::resource_not_found)?;
        let mut participant = parse_document(&row.document).map_err(ApiError::internal)?;
        project(&mut participant, select);
        let context = context_url(
            &self.ctx,
            &format!("communications/{}/participants_v2/$entity", keyed("callRecords", id)),
        );
        Ok(odata::json_response(
            &self.ctx,
            with_context(context, participant),
            Vec::new(),
        ))
    }

    async fn get_organizer(&self, id: &str) -> Result<Response> {
        let select = &self.options.select;
        let record = self.require_record(id).await?;
        let mut document = parse_document(&record.document).map_err(ApiError::internal)?;
        let Some(Value::Object(mut organizer)) = document.remove("organizer_v2") else {
            return Err(ApiError::resource_not_found());
        };
        project(&mut organizer, select);
        let context = context_url(
            &self.ctx,
            &format!("communications/{}/organizer_v2/$entity", keyed("callRecords", id)),
        );
        Ok(odata::json_response(
            &self.ctx,
            with_context(context, organizer),
            Vec::new(),
        ))
    }
}

fn with_context(context: String, entity: Map<String, Value>) -> Value {
    let mut body = Map::with_capacity(entity.len() + 1);
    body.insert("@odata.context".into(), context.into());
    body.extend(entity);
    Value::Object(body)
}

/// A stored record document cut where its `organizer_v2` member starts, each part the members'
/// text without braces.
enum OrganizerSplit<'a> {
    Absent(&'a str),
    At { before: &'a str, organizer: &'a str },
}

/// Cuts `document` at `organizer_at` (0: the record has no organizer). `None` when the offset
/// does not land on a top-level `organizer_v2` member of a one-object document, so the caller
/// falls back to splitting the document into its members.
fn split_at_organizer(document: &str, organizer_at: i64) -> Option<OrganizerSplit<'_>> {
    let inner = document.strip_prefix('{')?.strip_suffix('}')?;
    if organizer_at == 0 {
        return Some(OrganizerSplit::Absent(inner));
    }
    let at = usize::try_from(organizer_at).ok()?.checked_sub(1)?;
    let (before, organizer) = (inner.get(..at)?, inner.get(at..)?);
    if !organizer.starts_with(r#""organizer_v2":"#) {
        return None;
    }
    let before = match before.strip_suffix(',') {
        Some(before) => before,
        None if before.is_empty() => before,
        None => return None,
    };
    Some(OrganizerSplit::At { before, organizer })
}

/// A session as served: its endpoints' retired `identity` as `model::retired` says, projected,
/// with its segments kept (last, each under the nested `$select`) only when `segments` is
/// expanded.
fn render_session<'a>(
    document: &'a str,
    select: &[String],
    segments: Option<&ExpandItem>,
    derive: bool,
) -> anyhow::Result<Cow<'a, str>> {
    match retired::session_text(document, derive)? {
        Cow::Borrowed(document) => render_stored_session(document, select, segments),
        Cow::Owned(text) => Ok(Cow::Owned(render_stored_session(&text, select, segments)?.into_owned())),
    }
}

fn render_stored_session<'a>(
    document: &'a str,
    select: &[String],
    segments: Option<&ExpandItem>,
) -> anyhow::Result<Cow<'a, str>> {
    let all_segments = segments.is_some_and(|item| item.select.as_deref().is_none_or(<[String]>::is_empty));
    if select.is_empty() && all_segments {
        // The stored document is the answer: `segments` is its last member, where we would put
        // it anyway (model::Session declares it last; a model test holds that in place).
        return Ok(Cow::Borrowed(document));
    }
    let mut session = RawEntity::parse(document)?;
    let segments_json = session.remove("segments");
    session.project(select);
    if let (Some(item), Some(list)) = (segments, segments_json) {
        match item.select.as_deref() {
            None | Some([]) => session.push("segments", list),
            Some(nested_select) => {
                let projected = raw::array_items(&list)?
                    .into_iter()
                    .map(|segment| {
                        let mut entity = RawEntity::parse(segment)?;
                        entity.project(nested_select);
                        Ok(entity.to_json())
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                session.push("segments", raw::array_json(&projected));
            }
        }
    }
    Ok(Cow::Owned(session.to_json()))
}

/// Participants as served, each projected.
fn render_participants<'a>(rows: &'a [StoredChild], select: &[String]) -> Result<Vec<Cow<'a, str>>> {
    rows.iter()
        .map(|row| {
            if select.is_empty() {
                return Ok(Cow::Borrowed(row.document.as_str()));
            }
            let mut entity = RawEntity::parse(&row.document).map_err(ApiError::internal)?;
            entity.project(select);
            Ok(Cow::Owned(entity.to_json()))
        })
        .collect()
}

/// Projects a session and keeps its segments only when `segments` is expanded, applying the
/// nested `$select` to each segment.
fn project_session(session: &mut Map<String, Value>, select: &[String], segments: Option<&ExpandItem>) {
    let segments_value = session.remove("segments");
    project(session, select);
    if let (Some(item), Some(Value::Array(mut list))) = (segments, segments_value) {
        let nested_select = item.select.clone().unwrap_or_default();
        for segment in &mut list {
            if let Value::Object(entity) = segment {
                project(entity, &nested_select);
            }
        }
        session.insert("segments".into(), Value::Array(list));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(split: Option<OrganizerSplit<'_>>) -> Option<(Option<&str>, &str)> {
        split.map(|split| match split {
            OrganizerSplit::Absent(members) => (None, members),
            OrganizerSplit::At { before, organizer } => (Some(before), organizer),
        })
    }

    #[test]
    fn a_document_splits_where_its_organizer_starts() {
        let document = r#"{"id":"é","organizer_v2":{"id":"o"}}"#;
        let at = document.find(r#""organizer_v2""#).unwrap() as i64;
        assert_eq!(
            parts(split_at_organizer(document, at)),
            Some((Some(r#""id":"é""#), r#""organizer_v2":{"id":"o"}"#))
        );
        assert_eq!(
            parts(split_at_organizer(r#"{"organizer_v2":null}"#, 1)),
            Some((Some(""), r#""organizer_v2":null"#))
        );
        assert_eq!(
            parts(split_at_organizer(r#"{"id":"a"}"#, 0)),
            Some((None, r#""id":"a""#))
        );
    }

    #[test]
    fn an_offset_that_misses_the_member_is_refused() {
        let document = r#"{"id":"é","organizer_v2":{"id":"o"}}"#;
        let at = document.find(r#""organizer_v2""#).unwrap() as i64;
        for wrong in [at - 1, at + 1, 7, 8, -5, 1, 10_000] {
            assert!(split_at_organizer(document, wrong).is_none(), "{wrong}");
        }
        assert!(split_at_organizer("[1]", 0).is_none());
    }
}
