"""The call records surface under /beta, through msgraph-beta-sdk 1.66.0 (its own GraphServiceClient and
GraphRequestAdapter, base URL https://HOST:PORT/beta; the `beta_client` fixture).

Graph serves the same callRecords, sessions, segments, participants_v2 and organizer_v2 under /beta as under
/v1.0, described by beta's CSDL (`/beta/$metadata`), whose microsoft.graph.callRecords schema adds the beta-only
functions getPstnBlockedUsersLog, getPstnOnlineMeetingDialoutReport and getSmsLog, their row types, the base type
callLogRow and the enum pstnUserBlockMode.  On beta the system query options may also be written without their
`$` (`?top=2`).  The log functions are in test_beta_logs.py.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.call_records.direct_routing_log_row import DirectRoutingLogRow as V1DirectRoutingLogRow
from msgraph.generated.models.call_records.pstn_call_log_row import PstnCallLogRow as V1PstnCallLogRow
from msgraph_beta.generated.communications.call_records.call_records_request_builder import CallRecordsRequestBuilder
from msgraph_beta.generated.communications.call_records.item.call_record_item_request_builder import (
    CallRecordItemRequestBuilder,
)
from msgraph_beta.generated.models.call_records.call_log_row import CallLogRow
from msgraph_beta.generated.models.call_records.call_record import CallRecord
from msgraph_beta.generated.models.call_records.call_record_collection_response import CallRecordCollectionResponse
from msgraph_beta.generated.models.call_records.direct_routing_log_row import DirectRoutingLogRow
from msgraph_beta.generated.models.call_records.organizer import Organizer
from msgraph_beta.generated.models.call_records.participant import Participant
from msgraph_beta.generated.models.call_records.participant_collection_response import ParticipantCollectionResponse
from msgraph_beta.generated.models.call_records.pstn_blocked_users_log_row import PstnBlockedUsersLogRow
from msgraph_beta.generated.models.call_records.pstn_call_log_row import PstnCallLogRow
from msgraph_beta.generated.models.call_records.pstn_online_meeting_dialout_report import (
    PstnOnlineMeetingDialoutReport,
)
from msgraph_beta.generated.models.call_records.segment import Segment
from msgraph_beta.generated.models.call_records.segment_collection_response import SegmentCollectionResponse
from msgraph_beta.generated.models.call_records.session import Session
from msgraph_beta.generated.models.call_records.session_collection_response import SessionCollectionResponse
from msgraph_beta.generated.models.call_records.sms_log_row import SmsLogRow
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaODataError

from support import Csdl, get_json, http, sdk_collect, to_python_datetime

ListQ = CallRecordsRequestBuilder.CallRecordsRequestBuilderGetQueryParameters
ItemQ = CallRecordItemRequestBuilder.CallRecordItemRequestBuilderGetQueryParameters
EDM = Csdl.EDM
CR = Csdl.NAMESPACE + "."
BETA_ONLY_NAMES = ("getPstnBlockedUsersLog", "getPstnOnlineMeetingDialoutReport", "getSmsLog",
                   "pstnBlockedUsersLogRow", "pstnOnlineMeetingDialoutReport", "smsLogRow", "callLogRow",
                   "pstnUserBlockMode")


def config(query=None, prefer: str | None = None) -> RequestConfiguration:
    rc = RequestConfiguration(query_parameters=query)
    if prefer:
        rc.headers.add("Prefer", prefer)
    return rc


def beta_url(server, path: str) -> str:
    return server.root + "/beta" + path


# --------------------------------------------------------------------------- $metadata


@pytest.fixture(scope="module")
def metadata(server) -> dict[str, Csdl]:
    found = {}
    for version in ("beta", "v1.0"):
        r = http("GET", f"{server.root}/{version}/$metadata")
        assert r.status == 200, (version, r.status, r.body[:300])
        assert "xml" in (r.headers.get("Content-Type") or ""), r.headers.get("Content-Type")
        found[version] = Csdl(r.text)
        found[version + " text"] = r.text
    return found


def fields(model: type) -> set[str]:
    """The JSON names a kiota model reads (without @odata.type)."""
    return set(model().get_field_deserializers()) - {"@odata.type"}


def test_beta_metadata_is_betas_csdl(metadata):
    """Graph beta: GET /beta/$metadata is beta's CSDL, whose callRecords schema has the beta-only functions
    getPstnBlockedUsersLog, getPstnOnlineMeetingDialoutReport and getSmsLog, their return types, the base type
    callLogRow of the log rows and the enum pstnUserBlockMode (blocked, unblocked, unknownFutureValue);
    GET /v1.0/$metadata has none of them."""
    beta, v1 = metadata["beta"], metadata["v1.0"]
    functions = beta.names("Function")
    assert {"getPstnBlockedUsersLog", "getPstnOnlineMeetingDialoutReport", "getSmsLog", "getPstnCalls",
            "getDirectRoutingCalls"} <= functions, functions
    for fn, row in (("getPstnBlockedUsersLog", "pstnBlockedUsersLogRow"),
                    ("getPstnOnlineMeetingDialoutReport", "pstnOnlineMeetingDialoutReport")):
        el = beta.elements[("Function", fn)]
        assert el.get("IsBound") == "true"
        assert [p.get("Name") for p in el if p.tag == EDM + "Parameter"] == ["bindingParameter", "fromDateTime",
                                                                              "toDateTime"], fn
        assert next(p for p in el if p.tag == EDM + "ReturnType").get("Type") == f"Collection({CR}{row})"
    mode = beta.elements[("EnumType", "pstnUserBlockMode")]
    assert [m.get("Name") for m in mode] == ["blocked", "unblocked", "unknownFutureValue"]
    assert {"callLogRow", "pstnBlockedUsersLogRow", "pstnOnlineMeetingDialoutReport", "smsLogRow"} <= beta.names(
        "ComplexType")
    for row in ("pstnCallLogRow", "directRoutingLogRow", "smsLogRow"):
        assert beta.elements[("ComplexType", row)].get("BaseType") == CR + "callLogRow", row

    assert not {"getPstnBlockedUsersLog", "getPstnOnlineMeetingDialoutReport", "getSmsLog"} & v1.names("Function")
    assert not v1.names("EnumType") & {"pstnUserBlockMode"}
    assert not v1.names("ComplexType") & {"callLogRow", "pstnBlockedUsersLogRow", "pstnOnlineMeetingDialoutReport",
                                          "smsLogRow"}
    text = metadata["v1.0 text"]
    for name in BETA_ONLY_NAMES:
        assert f'"{name}"' not in text and f".{name}\"" not in text and f".{name})" not in text, name
    assert v1.elements[("ComplexType", "pstnCallLogRow")].get("BaseType") is None


def test_metadata_matches_the_sdk_models(metadata):
    """The row types' properties in /beta/$metadata are the JSON names msgraph-beta-sdk's models read (base
    type callLogRow included), and those in /v1.0/$metadata the names msgraph-sdk's read: beta's pstnCallLogRow
    has the client IP addresses, otherPartyCountryCode and administrativeUnitInfos, v1.0's has not."""
    beta, v1 = metadata["beta"], metadata["v1.0"]
    for name, model in (("pstnBlockedUsersLogRow", PstnBlockedUsersLogRow),
                        ("pstnOnlineMeetingDialoutReport", PstnOnlineMeetingDialoutReport),
                        ("pstnCallLogRow", PstnCallLogRow), ("directRoutingLogRow", DirectRoutingLogRow),
                        ("smsLogRow", SmsLogRow), ("callLogRow", CallLogRow)):
        props = beta.properties(name)
        assert len(props) == len(set(props)), (name, props)
        assert set(props) == fields(model), (name, set(props) ^ fields(model))
    for name, model in (("pstnCallLogRow", V1PstnCallLogRow), ("directRoutingLogRow", V1DirectRoutingLogRow)):
        assert set(v1.properties(name)) == fields(model), name
    assert "id" not in beta.properties("pstnBlockedUsersLogRow")
    assert "id" not in beta.properties("pstnOnlineMeetingDialoutReport")
    extra = set(beta.properties("pstnCallLogRow")) - set(v1.properties("pstnCallLogRow"))
    assert extra == {"administrativeUnitInfos", "otherPartyCountryCode", "clientLocalIpV4Address",
                     "clientLocalIpV6Address", "clientPublicIpV4Address", "clientPublicIpV6Address"}, extra
    extra = set(beta.properties("directRoutingLogRow")) - set(v1.properties("directRoutingLogRow"))
    assert extra == {"administrativeUnitInfos", "otherPartyCountryCode", "transferorCorrelationId",
                     "userCountryCode"}, extra


# --------------------------------------------------------------------------- list, paging, $count


def test_beta_list_pages_with_page_iterator(server, beta_client, beta_adapter, run):
    """Graph beta (the list, as on v1.0): the list through msgraph-beta-sdk parses into its own
    CallRecordCollectionResponse; @odata.context names /beta/$metadata and the nextLinks stay under /beta,
    keeping $select; PageIterator on the beta adapter sees every record once, in pages of 60."""
    first = run(beta_client.communications.call_records.get(config(ListQ(select=["id", "startDateTime"]))))
    assert isinstance(first, CallRecordCollectionResponse), type(first)
    assert first.additional_data["@odata.context"] == (
        server.root + "/beta/$metadata#communications/callRecords(id,startDateTime)")
    assert len(first.value) == 60 and first.odata_next_link
    paged = run(sdk_collect(first, beta_adapter))
    ids = [r.id for r in paged.items]
    assert len(ids) == len(set(ids)), "a record was returned twice"
    assert set(ids) == server.all_ids
    assert paged.pages == -(-len(server.all_ids) // 60), paged.page_sizes
    assert all(isinstance(r, CallRecord) and isinstance(r.start_date_time, dt.datetime) for r in paged.items)
    assert all(r.version is None and r.organizer_v2 is None for r in paged.items), "$select lost on a later page"
    for link in paged.next_links:
        assert link.startswith(server.root + "/beta/communications/callRecords?"), link
        assert "select" in urllib.parse.unquote(link), link


def test_beta_count(server, beta_client, run):
    """Graph beta (our choice, as on v1.0): /beta/.../callRecords/$count through the beta SDK's count builder is the
    total as an integer, and $count=true puts the same total in @odata.count."""
    assert run(beta_client.communications.call_records.count.get()) == len(server.all_ids)
    page = run(beta_client.communications.call_records.get(config(ListQ(count=True, top=1))))
    assert page.odata_count == len(server.all_ids) and len(page.value) == 1


# --------------------------------------------------------------------------- one record's sub-resources


@pytest.fixture(scope="module")
def beta_record(server, all_records) -> dict:
    """A generated group call with 3 to 59 sessions and more than one participant (raw v1.0 listing, first
    by id), with its v1.0 sessions (segments expanded) and participants as served."""
    for rec in sorted(all_records, key=lambda r: r["id"]):
        if rec["id"] not in server.generated_ids or rec["type"] != "groupCall":
            continue
        base = f"/communications/callRecords/{rec['id']}"
        sessions = get_json(server.url(base + "/sessions?$expand=segments"))
        if sessions.get("@odata.nextLink") or not 3 <= len(sessions["value"]) < 60:
            continue
        participants = get_json(server.url(base + "/participants_v2"))
        if len(participants["value"]) > 1 and not participants.get("@odata.nextLink"):
            return {"id": rec["id"], "sessions": sessions["value"], "participants": participants["value"],
                    "organizer": rec["organizer_v2"]}
    pytest.fail("no generated group call with 3-59 sessions and several participants")


def test_beta_record_sessions_and_segments(server, beta_client, run, beta_record):
    """Graph beta (get and sessions as on v1.0): GET a callRecord with $expand=sessions($expand=segments), its
    sessions list, one session, its segments list and one segment, all through msgraph-beta-sdk's builders
    into its typed models, with the data v1.0 serves and @odata.context under /beta/$metadata."""
    rid = beta_record["id"]
    sent_sessions = beta_record["sessions"]
    builder = beta_client.communications.call_records.by_call_record_id(rid)
    rec = run(builder.get(config(ItemQ(expand=["sessions($expand=segments)"]))))
    assert isinstance(rec, CallRecord) and rec.id == rid
    assert rec.additional_data["@odata.context"] == (
        server.root + "/beta/$metadata#communications/callRecords(sessions(segments()))/$entity")
    assert rec.additional_data["sessions@odata.context"].startswith(server.root + "/beta/$metadata#")
    assert "sessions@odata.nextLink" not in rec.additional_data
    assert [s.id for s in rec.sessions] == [s["id"] for s in sent_sessions]
    for got, want in zip(rec.sessions, sent_sessions):
        assert isinstance(got, Session)
        assert got.start_date_time == to_python_datetime(want["startDateTime"])
        assert [g.id for g in got.segments] == [g["id"] for g in want["segments"]]
        assert all(isinstance(g, Segment) for g in got.segments)
    assert rec.organizer_v2.id == beta_record["organizer"]["id"]

    listed = run(builder.sessions.get())
    assert isinstance(listed, SessionCollectionResponse)
    assert listed.additional_data["@odata.context"] == (
        f"{server.root}/beta/$metadata#communications/callRecords('{rid}')/sessions")
    assert [s.id for s in listed.value] == [s["id"] for s in sent_sessions] and listed.odata_next_link is None
    assert all(s.segments is None for s in listed.value)
    assert run(builder.sessions.count.get()) == len(sent_sessions)

    want = next(s for s in sent_sessions if len(s["segments"]) >= 1)
    one = run(builder.sessions.by_session_id(want["id"]).get())
    assert isinstance(one, Session) and one.id == want["id"]
    assert one.additional_data["@odata.context"].startswith(server.root + "/beta/$metadata#")
    segments = run(builder.sessions.by_session_id(want["id"]).segments.get())
    assert isinstance(segments, SegmentCollectionResponse)
    assert [g.id for g in segments.value] == [g["id"] for g in want["segments"]]
    assert segments.additional_data["@odata.context"].startswith(server.root + "/beta/$metadata#")
    segment = run(builder.sessions.by_session_id(want["id"]).segments.by_segment_id(want["segments"][0]["id"]).get())
    assert isinstance(segment, Segment) and segment.id == want["segments"][0]["id"]
    assert segment.start_date_time == to_python_datetime(want["segments"][0]["startDateTime"])


def test_beta_participants_v2_and_organizer_v2(server, beta_client, beta_adapter, run, beta_record):
    """Graph beta (as on v1.0): participants_v2 (list with PageIterator, $count, one item) and
    organizer_v2 through msgraph-beta-sdk's builders, typed Participant / Organizer, contexts under /beta."""
    rid = beta_record["id"]
    builder = beta_client.communications.call_records.by_call_record_id(rid)
    first = run(builder.participants_v2.get())
    assert isinstance(first, ParticipantCollectionResponse)
    assert first.additional_data["@odata.context"] == (
        f"{server.root}/beta/$metadata#communications/callRecords('{rid}')/participants_v2")
    paged = run(sdk_collect(first, beta_adapter))
    assert [p.id for p in paged.items] == [p["id"] for p in beta_record["participants"]]
    assert all(isinstance(p, Participant) for p in paged.items)
    assert run(builder.participants_v2.count.get()) == len(beta_record["participants"])
    want = beta_record["participants"][1]
    one = run(builder.participants_v2.by_participant_id(want["id"]).get())
    assert isinstance(one, Participant) and one.id == want["id"]
    assert one.identity.user.display_name == want["identity"]["user"]["displayName"]

    org = run(builder.organizer_v2.get())
    assert isinstance(org, Organizer) and org.id == beta_record["organizer"]["id"]
    assert org.additional_data["@odata.context"] == (
        f"{server.root}/beta/$metadata#communications/callRecords('{rid}')/organizer_v2/$entity")


def test_beta_unknown_record_is_beta_odata_error(beta_client, run):
    """Graph beta (as on v1.0): an unknown id answers 404 NotFound, raised as msgraph_beta's ODataError."""
    with pytest.raises(BetaODataError) as info:
        run(beta_client.communications.call_records.by_call_record_id("00000000-0000-0000-0000-000000000000").get())
    assert info.value.response_status_code == 404 and info.value.error.code == "NotFound"


# --------------------------------------------------------------------------- raw cross-checks


def _as_v1(body: str) -> str:
    return body.replace("/beta/", "/v1.0/")


def test_beta_serves_what_v1_serves(server, beta_record):
    """Graph: the callRecord entities are the same in both schemas, so /beta answers what /v1.0 answers, byte
    for byte but for the version in @odata.context and next links (record, list page, sessions,
    participants_v2, organizer_v2, $count)."""
    rid = beta_record["id"]
    for path in (f"/communications/callRecords/{rid}?$expand=" + urllib.parse.quote("sessions($expand=segments)"),
                 "/communications/callRecords?$top=5&$count=true",
                 "/communications/callRecords?$filter=" + urllib.parse.quote(
                     f"participants_v2/any(p:p/id eq '{beta_record['participants'][0]['id']}')"),
                 f"/communications/callRecords/{rid}/sessions",
                 f"/communications/callRecords/{rid}/participants_v2",
                 f"/communications/callRecords/{rid}/organizer_v2",
                 "/communications/callRecords/$count"):
        v1 = http("GET", server.url(path))
        beta = http("GET", beta_url(server, path))
        assert v1.status == beta.status == 200, (path, v1.status, beta.status, beta.body[:300])
        assert v1.headers.get("Content-Type") == beta.headers.get("Content-Type"), path
        assert _as_v1(beta.text) == v1.text, path
        if beta.text.startswith("{"):
            assert beta.json()["@odata.context"].startswith(server.root + "/beta/$metadata#"), path


@pytest.mark.parametrize("query", ["top=2", "select=id,type&top=3", "count=true&top=1",
                                   "filter=startDateTime%20ge%202026-11-20T00:00:00Z&select=id,startDateTime",
                                   "top=70&select=id"])
def test_beta_query_options_without_dollar(server, query):
    """Graph beta: system query options may be written without their `$`: `?top=2` answers exactly what
    `?$top=2` does (also select, count, filter, and the nextLink of a capped top)."""
    dollar = "&".join("$" + option for option in query.split("&"))
    bare = http("GET", beta_url(server, "/communications/callRecords?" + query))
    full = http("GET", beta_url(server, "/communications/callRecords?" + dollar))
    assert bare.status == full.status == 200, (query, bare.status, bare.body[:300])
    assert bare.json() == full.json(), query


def test_beta_item_options_without_dollar(server, beta_record):
    """Graph beta: `?expand=sessions`, `?select=id,type` and both together on a record answer what their `$`
    forms do."""
    rid = beta_record["id"]
    for query in ("expand=sessions", "select=id,type", "expand=participants_v2&select=id"):
        dollar = "&".join("$" + option for option in query.split("&"))
        bare = get_json(beta_url(server, f"/communications/callRecords/{rid}?{query}"))
        full = get_json(beta_url(server, f"/communications/callRecords/{rid}?{dollar}"))
        assert bare == full, query
