"""msgraph-sdk 1.65.0 against `callrecords serve`.

Each test names the Graph docs it checks and says whether it checks a MUST, a SHOULD or one of our own
choices (see ../README.md), so a failure can be weighed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import urllib.parse

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph.generated.communications.call_records.call_records_request_builder import CallRecordsRequestBuilder
from msgraph.generated.communications.call_records.item.call_record_item_request_builder import (
    CallRecordItemRequestBuilder,
)
from msgraph.generated.models.call_records.call_record import CallRecord
from msgraph.generated.models.call_records.call_type import CallType
from msgraph.generated.models.call_records.client_platform import ClientPlatform
from msgraph.generated.models.call_records.client_user_agent import ClientUserAgent
from msgraph.generated.models.call_records.media_stream_direction import MediaStreamDirection
from msgraph.generated.models.call_records.modality import Modality
from msgraph.generated.models.call_records.network_connection_type import NetworkConnectionType
from msgraph.generated.models.call_records.organizer import Organizer
from msgraph.generated.models.call_records.participant import Participant
from msgraph.generated.models.call_records.participant_endpoint import ParticipantEndpoint
from msgraph.generated.models.call_records.product_family import ProductFamily
from msgraph.generated.models.call_records.session import Session
from msgraph.generated.models.call_records.user_feedback_rating import UserFeedbackRating
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user_identity import UserIdentity

from support import HANDCRAFTED_ID, get_json, http, raw_collect, sdk_collect, ticks, to_python_datetime

ListQ = CallRecordsRequestBuilder.CallRecordsRequestBuilderGetQueryParameters
ItemQ = CallRecordItemRequestBuilder.CallRecordItemRequestBuilderGetQueryParameters
ABBIE = "821809f5-0000-0000-0000-3b5136c0e777"
OWEN = "f69e2c00-0000-0000-0000-185e5f5f5d8a"


def config(query=None, prefer: str | None = None) -> RequestConfiguration:
    rc = RequestConfiguration(query_parameters=query)
    if prefer:
        rc.headers.add("Prefer", prefer)
    return rc


def inspected(query=None, prefer: str | None = None) -> tuple[RequestConfiguration, HeadersInspectionHandlerOption]:
    """A request configuration whose request and response headers kiota's HeadersInspectionHandler
    (part of the SDK's default middleware) copies into the returned option."""
    option = HeadersInspectionHandlerOption(inspect_request_headers=True, inspect_response_headers=True)
    rc = config(query, prefer)
    rc.options = [option]
    return rc, option


def header(collection, name: str) -> str:
    """A header's values as one string, from a kiota HeadersCollection ("" when absent)."""
    return ", ".join(sorted(collection.get(name)))


def odata_error(run, coro) -> ODataError:
    with pytest.raises(ODataError) as info:
        run(coro)
    return info.value


# --------------------------------------------------------------------------- ingest


def test_ingest_reports_are_consistent(server):
    """Our ingest endpoint (not Graph): every line accounted for, nothing rejected, the handcrafted record new."""
    generated, handcrafted = server.ingest_reports
    for report in (generated, handcrafted):
        for key in ("stored", "replaced", "ignored", "rejected"):
            assert isinstance(report.get(key), int), f"ingest report lacks integer {key!r}: {report}"
    assert generated["stored"] + generated["replaced"] + generated["ignored"] == server.generated_lines, generated
    assert generated["stored"] + generated["replaced"] >= len(server.generated_ids), generated
    assert handcrafted["stored"] == 1, handcrafted


# --------------------------------------------------------------------------- list + paging


def test_list_pages_with_page_iterator(server, client, adapter, run):
    """MUST (List callRecords, paging): absolute @odata.nextLink that PageIterator follows; odata.maxpagesize honoured."""
    prefer = "odata.maxpagesize=25"
    first = run(client.communications.call_records.get(config(prefer=prefer)))
    assert len(first.value) == 25
    paged = run(sdk_collect(first, adapter, prefer=prefer))
    ids = [r.id for r in paged.items]
    assert len(ids) == len(set(ids)), "a record was returned twice"
    assert set(ids) == server.all_ids
    expected_pages = -(-len(server.all_ids) // 25)
    assert paged.pages == expected_pages, paged.page_sizes
    assert all(size == 25 for size in paged.page_sizes[:-1]), paged.page_sizes
    for link in paged.next_links:
        assert link.startswith(server.base_url + "/communications/callRecords"), link
    assert all(isinstance(r, CallRecord) for r in paged.items)


def test_list_default_page_is_60_and_maxpagesize_is_clamped(server, client, run):
    """List callRecords: default page 60.  Our choice (Graph gives no maximum): a larger odata.maxpagesize is
    clamped to 60 and reported."""
    first = run(client.communications.call_records.get())
    assert len(first.value) == 60 and first.odata_next_link
    r = http("GET", server.url("/communications/callRecords"), headers={"Prefer": "odata.maxpagesize=1000"})
    assert r.status == 200
    assert len(r.json()["value"]) == 60
    assert "odata.maxpagesize=60" in (r.headers.get("Preference-Applied") or ""), dict(r.headers)


def test_list_order_is_start_then_id(all_records):
    """Our choice (Graph documents no order): startDateTime ascending, then id ascending (the keyset behind
    $skiptoken)."""
    keys = [(ticks(r["startDateTime"]), r["id"]) for r in all_records]
    assert keys == sorted(keys)


def test_list_items_carry_organizer_v2_and_no_navigation_collections(all_records):
    """List callRecords: organizer_v2 auto-expanded on list items; sessions and participants_v2 never inlined."""
    hand = next(r for r in all_records if r["id"] == HANDCRAFTED_ID)
    assert hand["organizer_v2"]["id"] == ABBIE
    for r in all_records:
        assert "sessions" not in r and "participants_v2" not in r, r["id"]


def test_top_caps_the_total(client, run):
    """Our choice (the SDK exposes $top; Graph documents none): $top caps the number of items across pages."""
    page = run(client.communications.call_records.get(config(ListQ(top=7), prefer="odata.maxpagesize=5")))
    assert len(page.value) == 5 and page.odata_next_link
    rest = run(client.communications.call_records.with_url(page.odata_next_link).get())
    assert len(rest.value) == 2 and not rest.odata_next_link


def test_count_segment(server, client, run):
    """Our choice (Graph documents no $count here): /callRecords/$count answers text/plain with the total
    (the SDK reads it as int)."""
    assert run(client.communications.call_records.count.get()) == len(server.all_ids)


# --------------------------------------------------------------------------- $filter


def _window(all_records):
    starts = sorted(r["startDateTime"] for r in all_records)
    return starts[len(starts) // 4], starts[3 * len(starts) // 4]


def test_filter_start_window(server, client, adapter, run, all_records):
    """MUST (List callRecords): startDateTime ge/lt with unquoted literals, across pages, same as raw HTTP and as the data."""
    lo, hi = _window(all_records)
    flt = f"startDateTime ge {lo} and startDateTime lt {hi}"
    expected = {r["id"] for r in all_records if ticks(lo) <= ticks(r["startDateTime"]) < ticks(hi)}
    assert len(expected) > 60, "window too small to span pages"

    first = run(client.communications.call_records.get(config(ListQ(filter=flt), prefer="odata.maxpagesize=40")))
    paged = run(sdk_collect(first, adapter, prefer="odata.maxpagesize=40"))
    assert paged.pages >= 2
    got = [r.id for r in paged.items]
    assert len(got) == len(set(got))
    lo_dt, hi_dt = to_python_datetime(lo), to_python_datetime(hi)
    for r in paged.items:
        assert lo_dt <= r.start_date_time <= hi_dt, (r.id, r.start_date_time)

    raw_items, raw_pages = raw_collect(server.url("/communications/callRecords?")
                                       + urllib.parse.urlencode({"$filter": flt}, quote_via=urllib.parse.quote))
    assert raw_pages >= 2
    assert len(raw_items) == len(got)
    assert set(got) == {r["id"] for r in raw_items} == expected


def test_filter_participant_any(client, run):
    """MUST (List callRecords): participants_v2/any(p:p/id eq '…')."""
    flt = f"participants_v2/any(p:p/id eq '{OWEN}')"
    page = run(client.communications.call_records.get(config(ListQ(filter=flt))))
    ids = [r.id for r in page.value]
    assert HANDCRAFTED_ID in ids
    assert len(ids) == len(set(ids))


def test_filter_participant_and_window(server, client, run):
    """List callRecords: the participant predicate joined with a date range by `and`."""
    start = server.handcrafted["startDateTime"]
    later = (to_python_datetime(start) + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    inside = f"participants_v2/any(x:x/id eq '{ABBIE}') and startDateTime ge {start} and startDateTime lt {later}"
    page = run(client.communications.call_records.get(config(ListQ(filter=inside))))
    assert [r.id for r in page.value] == [HANDCRAFTED_ID]
    outside = f"(participants_v2/any(x:x/id eq '{ABBIE}')) and startDateTime gt {start}"
    page = run(client.communications.call_records.get(config(ListQ(filter=outside))))
    assert HANDCRAFTED_ID not in [r.id for r in page.value]


def test_unsupported_filter_is_400(client, run):
    """MUST (List callRecords): anything outside the documented grammar answers 400 BadRequest."""
    err = odata_error(run, client.communications.call_records.get(
        config(ListQ(filter="endDateTime ge 2024-01-01T00:00:00Z"))))
    assert err.response_status_code == 400
    assert err.error.code == "BadRequest"


# --------------------------------------------------------------------------- $select


def test_select_id_and_start(client, run):
    """List callRecords, OData $select: $select=id,startDateTime leaves every other property out (our choice:
    organizer_v2 too, unless selected)."""
    page = run(client.communications.call_records.get(config(ListQ(select=["id", "startDateTime"]))))
    assert page.value
    for r in page.value:
        assert r.id and isinstance(r.start_date_time, dt.datetime)
        assert r.end_date_time is None and r.version is None and r.type is None
        assert r.modalities is None and r.last_modified_date_time is None
        assert r.organizer_v2 is None and r.sessions is None and r.participants_v2 is None


# --------------------------------------------------------------------------- get by id


def test_get_expand_sessions_segments_typed(server, client, run):
    """MUST (@odata.type on derived values, Get callRecord): typed, polymorphic values come back exactly as ingested."""
    sent = server.handcrafted
    rec = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).get(
        config(ItemQ(expand=["sessions($expand=segments)"]))))
    assert isinstance(rec, CallRecord)
    assert rec.id == HANDCRAFTED_ID and rec.version == 1
    assert rec.type == CallType.PeerToPeer
    assert rec.modalities == [Modality.Audio]
    assert rec.start_date_time == to_python_datetime(sent["startDateTime"])
    assert rec.start_date_time.microsecond == 216988
    assert rec.end_date_time == to_python_datetime(sent["endDateTime"])
    assert rec.organizer_v2 is not None and rec.organizer_v2.id == ABBIE
    assert rec.organizer_v2.identity.user.display_name == "Abbie Wilkins"
    assert "sessions@odata.nextLink" not in rec.additional_data

    assert len(rec.sessions) == 1
    session = rec.sessions[0]
    assert isinstance(session, Session) and session.is_test is False
    caller = session.caller
    assert isinstance(caller, ParticipantEndpoint), type(caller)
    assert caller.name == "machineName_2"
    assert isinstance(caller.user_agent, ClientUserAgent), type(caller.user_agent)
    assert caller.user_agent.platform == ClientPlatform.Android
    assert caller.user_agent.product_family == ProductFamily.SkypeForBusiness
    assert caller.user_agent.header_value.startswith("RTCC/7.0.0.0")
    assert caller.associated_identity.id == ABBIE
    assert caller.associated_identity.additional_data.get("userPrincipalName") == "abbie.wilkins@contoso.com"
    # Kiota turns GUID-looking open properties into uuid.UUID.
    assert str(caller.associated_identity.additional_data.get("tenantId")) == "dc368399-474c-4d40-900c-6265431fd81f"

    callee = session.callee
    assert isinstance(callee, ParticipantEndpoint)
    assert callee.user_agent.platform == ClientPlatform.Windows
    assert callee.cpu_cores_count == 8
    assert callee.feedback.rating == UserFeedbackRating.Poor
    assert callee.feedback.tokens.additional_data == sent["sessions"][0]["callee"]["feedback"]["tokens"]

    assert len(session.segments) == 1
    media = session.segments[0].media[0]
    assert media.label == "main-audio"
    assert media.caller_network.connection_type == NetworkConnectionType.Wifi
    assert media.caller_network.received_quality_event_ratio == pytest.approx(0.27)
    assert media.caller_network.dns_suffix is None
    assert media.callee_network.link_speed == 4294967295
    assert [h.round_trip_time for h in media.callee_network.trace_route_hops] == [
        dt.timedelta(milliseconds=2), dt.timedelta(microseconds=11300)]
    assert media.caller_device.received_signal_level == -10
    s0, s1 = media.streams
    assert s0.stream_direction == MediaStreamDirection.CallerToCallee
    assert s0.average_jitter == dt.timedelta(milliseconds=16)
    assert s0.max_jitter == dt.timedelta(milliseconds=21)
    assert s0.average_audio_degradation is None
    assert s0.average_bandwidth_estimate == 9965083 and s0.packet_utilization == 67
    assert s0.was_media_bypassed is False
    assert s1.average_audio_degradation == pytest.approx(1.160898, rel=1e-6)
    assert s1.max_audio_network_jitter == dt.timedelta(seconds=90, milliseconds=500)


def test_get_key_in_parentheses(server):
    """MUST (OData key syntax): /callRecords('{id}') resolves like /callRecords/{id}."""
    a = get_json(server.url(f"/communications/callRecords/{HANDCRAFTED_ID}"))
    b = get_json(server.url(f"/communications/callRecords('{HANDCRAFTED_ID}')"))
    a.pop("@odata.context", None), b.pop("@odata.context", None)
    assert a == b


def test_get_unknown_id_is_not_found(client, run):
    """MUST (Get callRecord, Graph's errors): 404 with a JSON error body the SDK maps to ODataError."""
    err = odata_error(run, client.communications.call_records.by_call_record_id(
        "00000000-0000-0000-0000-000000000000").get())
    assert err.response_status_code == 404
    assert err.error.code == "NotFound"
    assert err.error.message
    assert err.error.inner_error is not None and err.error.inner_error.request_id


def test_unknown_session_is_not_found(client, run):
    """List sessions: unknown session id under a known record is 404 NotFound."""
    err = odata_error(run, client.communications.call_records.by_call_record_id(HANDCRAFTED_ID)
                      .sessions.by_session_id("no-such-session").get())
    assert err.response_status_code == 404 and err.error.code == "NotFound"


def test_write_method_is_405(client, run):
    """Our choice (Graph rejects writes, code undocumented): the SDK's generated POST on call records answers
    405 MethodNotAllowed."""
    err = odata_error(run, client.communications.call_records.post(CallRecord(id="x")))
    assert err.response_status_code == 405 and err.error.code == "MethodNotAllowed"


# --------------------------------------------------------------------------- a record with > 60 sessions


@pytest.fixture(scope="session")
def big_record(server, all_records) -> tuple[str, int]:
    """A generated record with more than 60 sessions, and its session count (via raw paging)."""
    candidates = sorted(all_records, key=lambda r: (r.get("type") == "groupCall", len(r.get("participants") or [])),
                        reverse=True)
    for rec in candidates:
        first = get_json(server.url(f"/communications/callRecords/{rec['id']}/sessions"))
        if first.get("@odata.nextLink"):
            items, _ = raw_collect(server.url(f"/communications/callRecords/{rec['id']}/sessions"))
            assert len(items) > 60
            return rec["id"], len(items)
    pytest.fail("no record with more than 60 sessions: `generate --calls 300 --seed 42` should produce some "
                "large group calls so that session paging can be tested")


def test_big_record_expanded_sessions_are_paged(server, client, run, big_record):
    """Get callRecord: expanded sessions stop at 60 with sessions@odata.nextLink, which continues the sessions list."""
    rid, total = big_record
    builder = client.communications.call_records.by_call_record_id(rid)
    rec = run(builder.get(config(ItemQ(expand=["sessions"]))))
    assert len(rec.sessions) == 60
    # Kiota keeps unknown annotations, including the inline nextLink, in additional_data.
    link = rec.additional_data.get("sessions@odata.nextLink")
    assert isinstance(link, str) and link.startswith(server.base_url + "/communications/callRecords"), link
    assert "/sessions" in link
    seen = [s.id for s in rec.sessions]
    while link:
        page = run(builder.sessions.with_url(link).get())
        seen += [s.id for s in page.value]
        link = page.odata_next_link
    assert len(seen) == len(set(seen)) == total


def test_big_record_sessions_page_iterator(client, adapter, run, big_record):
    """MUST (List sessions): the sessions list pages at 60 and PageIterator visits each session once."""
    rid, total = big_record
    first = run(client.communications.call_records.by_call_record_id(rid).sessions.get())
    assert len(first.value) == 60 and first.odata_next_link
    paged = run(sdk_collect(first, adapter))
    ids = [s.id for s in paged.items]
    assert len(ids) == len(set(ids)) == total
    assert all(isinstance(s, Session) for s in paged.items)
    assert paged.pages == -(-total // 60)


# --------------------------------------------------------------------------- expanded collections: paging and $select


@pytest.fixture(scope="session")
def sized_records(server, all_records) -> dict:
    """Two generated calls found by listing their sessions (raw, default page of 60):
    `mid`: more than 10 sessions and more than 5 participants_v2, fewer than 60 of each, with the ids in
    list order; `five`: exactly 5 sessions."""
    found: dict = {}
    for rec in all_records:
        if "mid" in found and "five" in found:
            break
        if rec["id"] not in server.generated_ids:
            continue
        base = f"/communications/callRecords/{rec['id']}"
        sessions = get_json(server.url(base + "/sessions"))
        count = len(sessions["value"])
        if sessions.get("@odata.nextLink"):
            continue
        if count == 5:
            found.setdefault("five", rec["id"])
        elif count > 10 and "mid" not in found:
            participants = get_json(server.url(base + "/participants_v2"))
            if not participants.get("@odata.nextLink") and len(participants["value"]) > 5:
                found["mid"] = (rec["id"], [x["id"] for x in sessions["value"]],
                                [x["id"] for x in participants["value"]])
    if "mid" not in found or "five" not in found:
        pytest.fail(f"the generated data lacks a call with 11-59 sessions and 6-59 participants, or one with "
                    f"exactly 5 sessions (found: {sorted(found)})")
    return found


@pytest.mark.parametrize("nav", ["sessions", "participants_v2"])
def test_maxpagesize_applies_to_expanded_collections(server, client, run, sized_records, nav):
    """Graph (OData odata.maxpagesize): `Prefer: odata.maxpagesize=5` on a record with $expand of a
    collection inlines at most 5 items with `<nav>@odata.nextLink` and answers Preference-Applied; the link
    and its successors, sent with the same preference, list the rest in pages of 5, without gaps or
    repeats, ending with the same ids as the collection's own list."""
    rid, session_ids, participant_ids = sized_records["mid"]
    prefer = "odata.maxpagesize=5"
    builder = client.communications.call_records.by_call_record_id(rid)
    child = getattr(builder, nav)
    rc, seen = inspected(ItemQ(expand=[nav]), prefer=prefer)
    rec = run(builder.get(rc))
    assert header(seen.request_headers, "prefer") == prefer
    assert prefer in header(seen.response_headers, "preference-applied"), seen.response_headers.get_all()
    inline = getattr(rec, nav)
    assert len(inline) == 5
    link = rec.additional_data.get(f"{nav}@odata.nextLink")
    assert isinstance(link, str) and link.startswith(server.base_url + "/communications/callRecords"), link
    assert f"/{nav}" in link
    ids, sizes = [x.id for x in inline], [len(inline)]
    while link:
        assert len(sizes) <= 60, "nextLink loop?"
        rc, seen = inspected(prefer=prefer)
        page = run(child.with_url(link).get(rc))
        assert prefer in header(seen.response_headers, "preference-applied")
        sizes.append(len(page.value))
        ids += [x.id for x in page.value]
        link = page.odata_next_link
    listed = [x.id for x in run(child.get()).value]
    assert listed == (session_ids if nav == "sessions" else participant_ids)
    assert len(ids) == len(set(ids)), "an item was listed twice"
    assert ids == listed
    assert all(size == 5 for size in sizes[:-1]) and 1 <= sizes[-1] <= 5, sizes
    assert len(sizes) == -(-len(listed) // 5), sizes

    # Raw cross-check of the headers and the inline annotation.
    r = http("GET", server.url(f"/communications/callRecords/{rid}?$expand={nav}"), headers={"Prefer": prefer})
    assert r.status == 200
    assert prefer in (r.headers.get("Preference-Applied") or ""), dict(r.headers)
    body = r.json()
    assert [x["id"] for x in body[nav]] == listed[:5]
    assert body[f"{nav}@odata.nextLink"].startswith(server.base_url)


def test_maxpagesize_on_expanded_collection_that_fits_has_no_next_link(server, client, run, sized_records):
    """Graph (OData server-driven paging): an expanded collection of exactly odata.maxpagesize items is
    inlined whole, with no nextLink (a link to an empty page would stop PageIterator anyway)."""
    rid = sized_records["five"]
    rc, seen = inspected(ItemQ(expand=["sessions"]), prefer="odata.maxpagesize=5")
    rec = run(client.communications.call_records.by_call_record_id(rid).get(rc))
    assert len(rec.sessions) == 5
    assert "sessions@odata.nextLink" not in rec.additional_data
    assert "odata.maxpagesize=5" in header(seen.response_headers, "preference-applied")


def test_expanded_sessions_select_star_next_link_continues(server, client, run, big_record):
    """Graph: $expand=sessions($select=*) selects every session property; on a record with more than 60
    sessions its sessions@odata.nextLink (which carries no empty `$select=`) is accepted and continues
    the sessions list without gaps or repeats, still with every property."""
    rid, total = big_record
    builder = client.communications.call_records.by_call_record_id(rid)
    rec = run(builder.get(config(ItemQ(expand=["sessions($select=*)"]))))
    assert len(rec.sessions) == 60
    link = rec.additional_data.get("sessions@odata.nextLink")
    assert isinstance(link, str) and link.startswith(server.base_url + "/communications/callRecords"), link
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query, keep_blank_values=True)
    assert all(value for values in query.values() for value in values), f"empty query option in {link}"
    ids = [s.id for s in rec.sessions]
    raw_link = link
    while link:
        page = run(builder.sessions.with_url(link).get())
        assert page.value, link
        ids += [s.id for s in page.value]
        link = page.odata_next_link
    expected, _ = raw_collect(server.url(f"/communications/callRecords/{rid}/sessions"))
    assert len(ids) == len(set(ids)) == total
    assert ids == [s["id"] for s in expected]
    assert all(s.start_date_time is not None and s.modalities for s in rec.sessions)
    # Raw cross-check: the second page has the same members as the plain list (all of them, as `*` asks).
    second = get_json(raw_link)
    by_id = {s["id"]: s for s in expected}
    for s in second["value"]:
        assert set(s) == set(by_id[s["id"]]), s["id"]


# --------------------------------------------------------------------------- participants_v2, organizer_v2


def test_participants_v2_page_iterator(server, client, adapter, run):
    """List participants_v2: participants_v2 list, iterated with PageIterator."""
    first = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).participants_v2.get())
    paged = run(sdk_collect(first, adapter))
    assert paged.pages == 1
    assert all(isinstance(p, Participant) for p in paged.items)
    by_id = {p.id: p for p in paged.items}
    assert set(by_id) == {ABBIE, OWEN}
    owen = by_id[OWEN].identity.user
    # `@odata.type: #microsoft.graph.userIdentity` must survive, or userPrincipalName lands in additional_data.
    assert isinstance(owen, UserIdentity), type(owen)
    assert owen.display_name == "Owen Franklin"
    assert owen.user_principal_name == "owen.franklin@contoso.com"
    assert str(owen.additional_data.get("tenantId")) == "dc368399-474c-4d40-900c-6265431fd81f"
    assert [u.id for u in by_id[ABBIE].administrative_unit_infos] == ["5a2f3c6e-0000-0000-0000-8e1c9f3a7b21"]


def test_participants_v2_of_big_record(server, client, adapter, run, big_record):
    """List participants_v2: every participant of a large call, once each, matching the raw list."""
    rid, _ = big_record
    raw, _ = raw_collect(server.url(f"/communications/callRecords/{rid}/participants_v2"))
    first = run(client.communications.call_records.by_call_record_id(rid).participants_v2.get())
    paged = run(sdk_collect(first, adapter))
    ids = [p.id for p in paged.items]
    assert len(ids) == len(set(ids))
    assert set(ids) == {p["id"] for p in raw}


def test_organizer_v2_get(client, run):
    """organizer_v2 (in the CSDL and SDK): GET …/organizer_v2 returns the organizer entity."""
    org = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).organizer_v2.get())
    assert isinstance(org, Organizer)
    assert org.id == ABBIE
    assert org.identity.user.display_name == "Abbie Wilkins"


def test_expand_organizer_v2_select_is_applied(server, client, run):
    """Graph: $expand=organizer_v2($select=id) narrows the inline organizer to its id (and annotations);
    the record's own properties are not narrowed by it."""
    rec = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).get(
        config(ItemQ(expand=["organizer_v2($select=id)"]))))
    assert rec.organizer_v2 is not None and rec.organizer_v2.id == ABBIE
    assert rec.organizer_v2.identity is None
    assert rec.organizer_v2.administrative_unit_infos is None
    assert rec.version == 1 and rec.start_date_time is not None and rec.type == CallType.PeerToPeer
    # Raw cross-check: nothing but id (and @-annotations) in the object; without $select it has identity.
    option = urllib.parse.quote("organizer_v2($select=id)")
    raw = get_json(server.url(f"/communications/callRecords/{HANDCRAFTED_ID}?$expand={option}"))
    assert {k for k in raw["organizer_v2"] if not k.startswith("@")} == {"id"}, raw["organizer_v2"]
    assert "startDateTime" in raw and "version" in raw
    full = get_json(server.url(f"/communications/callRecords/{HANDCRAFTED_ID}?$expand=organizer_v2"))
    assert full["organizer_v2"]["identity"]["user"]["id"] == ABBIE


def test_list_expand_organizer_v2_select_holds_across_pages(client, run):
    """Graph: on the list, $expand=organizer_v2($select=id) narrows every item's organizer_v2, also on the
    page its @odata.nextLink leads to."""
    prefer = "odata.maxpagesize=5"
    first = run(client.communications.call_records.get(
        config(ListQ(expand=["organizer_v2($select=id)"]), prefer=prefer)))
    assert len(first.value) == 5 and first.odata_next_link
    assert "organizer_v2" in urllib.parse.unquote(first.odata_next_link), first.odata_next_link
    second = run(client.communications.call_records.with_url(first.odata_next_link).get(config(prefer=prefer)))
    assert len(second.value) == 5
    assert not {r.id for r in first.value} & {r.id for r in second.value}
    for r in first.value + second.value:
        assert r.organizer_v2 is not None and r.organizer_v2.id, r.id
        assert r.organizer_v2.identity is None and r.organizer_v2.administrative_unit_infos is None, r.id
        assert r.start_date_time is not None, r.id


# --------------------------------------------------------------------------- functions



def test_error_bodies_are_odata_json(server):
    """Graph's errors page: error bodies are JSON with error.code, error.message, error.innerError."""
    r = http("GET", server.url("/communications/callRecords?$orderby=startDateTime"))
    assert r.status == 400
    assert r.headers.get("Content-Type", "").startswith("application/json")
    body = json.loads(r.body)
    assert body["error"]["code"] == "BadRequest" and body["error"]["message"]
    assert "request-id" in body["error"]["innerError"]


# --------------------------------------------------------------------------- compression


def test_sdk_asks_for_gzip_and_gets_it(client, run):
    """HTTP (RFC 9110 §8.4, §12.5.3), as Graph does it: the SDK's httpx sends Accept-Encoding: gzip, and the
    answer comes with Content-Encoding: gzip, which the SDK decodes and parses into the typed model."""
    rc, seen = inspected(ItemQ(expand=["sessions($expand=segments)"]))
    rec = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).get(rc))
    assert "gzip" in header(seen.request_headers, "accept-encoding")
    assert header(seen.response_headers, "content-encoding") == "gzip", seen.response_headers.get_all()
    assert isinstance(rec, CallRecord) and rec.id == HANDCRAFTED_ID
    assert rec.sessions[0].segments[0].media[0].label == "main-audio"
    # A list page too.
    rc, seen = inspected(ListQ(top=3))
    page = run(client.communications.call_records.get(rc))
    assert len(page.value) == 3
    assert header(seen.response_headers, "content-encoding") == "gzip"


@pytest.mark.parametrize("path", [
    f"/communications/callRecords/{HANDCRAFTED_ID}?$expand=" + urllib.parse.quote("sessions($expand=segments)"),
    "/communications/callRecords",
    f"/communications/callRecords/{HANDCRAFTED_ID}/participants_v2",
], ids=["record", "list", "participants_v2"])
def test_gzip_only_when_asked_and_same_json(server, path):
    """HTTP (RFC 9110 §8.4, §12.5.3, §12.5.5), as Graph does it: with Accept-Encoding: gzip the body is
    gzip (Content-Encoding: gzip, Vary: Accept-Encoding) and gunzips to the same JSON as the uncompressed
    answer; without it (urllib sends `identity`), or with gzip;q=0, the body is not encoded."""
    url = server.url(path)
    plain = http("GET", url)
    assert plain.status == 200
    assert plain.headers.get("Content-Encoding") is None
    expected = plain.json()
    packed = http("GET", url, headers={"Accept-Encoding": "gzip"})
    assert packed.status == 200
    assert packed.headers.get("Content-Encoding") == "gzip", dict(packed.headers)
    assert "accept-encoding" in (packed.headers.get("Vary") or "").lower(), dict(packed.headers)
    assert packed.body[:2] == b"\x1f\x8b", packed.body[:20]
    assert json.loads(gzip.decompress(packed.body)) == expected
    refused = http("GET", url, headers={"Accept-Encoding": "gzip;q=0"})
    assert refused.status == 200 and refused.headers.get("Content-Encoding") is None
    assert refused.json() == expected
