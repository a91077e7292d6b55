"""Usage logs: getPstnCalls / getDirectRoutingCalls (v1.0, msgraph-sdk) and getSmsLog (beta, msgraph-beta-sdk).

References are to Graph's getPstnCalls, getDirectRoutingCalls and beta getSmsLog pages.  Each test says
whether it checks a MUST, a SHOULD or one of our own choices (see ../README.md).  The rows are the handcrafted
ones that conftest.py ingests (`build_usage_logs`): 2,500 PSTN rows, 50 Direct Routing rows and 20 SMS rows, all on yesterday (UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from decimal import Decimal

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.communications.call_records.microsoft_graph_call_records_get_direct_routing_calls_with_from_date_time_with_to_date_time.get_direct_routing_calls_with_from_date_time_with_to_date_time_get_response import (
    GetDirectRoutingCallsWithFromDateTimeWithToDateTimeGetResponse,
)
from msgraph.generated.communications.call_records.microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time.get_pstn_calls_with_from_date_time_with_to_date_time_get_response import (
    GetPstnCallsWithFromDateTimeWithToDateTimeGetResponse,
)
from msgraph.generated.communications.call_records.microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time.microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time_request_builder import (
    MicrosoftGraphCallRecordsGetPstnCallsWithFromDateTimeWithToDateTimeRequestBuilder as PstnBuilder,
)
from msgraph.generated.models.call_records.direct_routing_log_row import DirectRoutingLogRow
from msgraph.generated.models.call_records.pstn_call_duration_source import PstnCallDurationSource
from msgraph.generated.models.call_records.pstn_call_log_row import PstnCallLogRow
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_beta.generated.communications.call_records.microsoft_graph_call_records_get_sms_log_with_from_date_time_with_to_date_time.get_sms_log_with_from_date_time_with_to_date_time_get_response import (
    GetSmsLogWithFromDateTimeWithToDateTimeGetResponse,
)
from msgraph_beta.generated.models.call_records.sms_log_row import SmsLogRow
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaODataError

from conftest import PSTN_BOUNDARY, PSTN_ROWS, PSTN_TIE, encode_json, row_id
from support import get_json, http, sdk_collect, ticks, to_python_datetime

PstnQ = PstnBuilder.MicrosoftGraphCallRecordsGetPstnCallsWithFromDateTimeWithToDateTimeRequestBuilderGetQueryParameters
PAGE = 1000  # Graph's usage-log functions page at 1,000 rows


def config(query=None) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=query)


def odata_error(run, coro, error_class: type = ODataError) -> ODataError:
    """The SDK's ODataError (msgraph-beta-sdk raises its own class, not msgraph's)."""
    with pytest.raises(error_class) as info:
        run(coro)
    return info.value


def pstn(client, frm: dt.datetime, to: dt.datetime):
    return client.communications.call_records.microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time(frm, to)


def direct(client, frm: dt.datetime, to: dt.datetime):
    return client.communications.call_records.microsoft_graph_call_records_get_direct_routing_calls_with_from_date_time_with_to_date_time(frm, to)


def sms(beta_client, frm: dt.datetime, to: dt.datetime):
    return beta_client.communications.call_records.microsoft_graph_call_records_get_sms_log_with_from_date_time_with_to_date_time(frm, to)


def follow(run, builder, first):
    """Follow @odata.nextLink verbatim with `builder.with_url(link).get()`; returns every page, first included."""
    pages = [first]
    while pages[-1].odata_next_link:
        assert len(pages) < 20, "nextLink loop?"
        pages.append(run(builder.with_url(pages[-1].odata_next_link).get()))
    return pages


def in_order(rows: list[dict], key: str = "startDateTime") -> list[str]:
    """Ids of rows in the function's order: start time, then id (the list's order, our choice, applied to the keyset)."""
    return [r["id"] for r in sorted(rows, key=lambda r: (ticks(r[key]), r["id"]))]


# --------------------------------------------------------------------------- ingest


def test_usage_log_ingest_reports(server):
    """Our ingest endpoints (not Graph): every row stored once, nothing rejected, `errors` empty."""
    usage = server.usage
    for kind, rows in (("pstnCalls", usage.pstn), ("directRoutingCalls", usage.direct), ("smsLogs", usage.sms)):
        reports = usage.reports[kind]
        for report in reports:
            for key in ("stored", "replaced", "ignored", "rejected"):
                assert isinstance(report.get(key), int), f"{kind}: report lacks integer {key!r}: {report}"
            assert report["rejected"] == 0 and not report.get("errors"), report
        assert [r["stored"] for r in reports] == [1, len(rows) - 1], (kind, reports)


def test_usage_log_ingest_is_idempotent(server, beta_client, run):
    """Our ingest (not Graph): re-sending a row with a known id stores nothing new (rows are keyed by id)."""
    usage = server.usage
    row = usage.sms[5]
    r = http("POST", server.root + "/ingest/smsLogs", body=encode_json(row).encode(),
             headers={"Content-Type": "application/json"})
    assert r.status in (200, 201, 202), r.body[:500]
    report = r.json()
    assert report["stored"] == 0 and report["rejected"] == 0, report
    assert report["replaced"] + report["ignored"] == 1, report
    page = run(sms(beta_client, usage.day_start, usage.day_end).get())
    assert len(page.value) == len(usage.sms)


# --------------------------------------------------------------------------- getPstnCalls


def test_pstn_calls_typed_rows_and_pages(server, client, run):
    """MUST (getPstnCalls; @odata.count as its page defines it): 1,000-row pages, each with @odata.count = rows
    in that page, nextLinks followed verbatim with with_url(); 2,500 distinct typed PstnCallLogRows with every
    property as ingested."""
    usage = server.usage
    builder = pstn(client, usage.day_start, usage.day_end)
    first = run(builder.get())
    assert isinstance(first, GetPstnCallsWithFromDateTimeWithToDateTimeGetResponse)
    pages = follow(run, builder, first)
    assert [len(p.value) for p in pages] == [PAGE, PAGE, PSTN_ROWS - 2 * PAGE]
    for p in pages:
        assert p.odata_count == len(p.value), (p.odata_count, len(p.value))
    assert pages[-1].odata_next_link is None

    rows = [r for p in pages for r in p.value]
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)) == PSTN_ROWS, "a row was skipped or returned twice across pages"
    assert ids == in_order(usage.pstn), "rows not in (startDateTime, id) order"

    sent = usage.pstn_by_id
    sources = set()
    for row in rows:
        assert isinstance(row, PstnCallLogRow), type(row)
        want = sent[row.id]
        assert isinstance(row.duration, int) and row.duration == want["duration"]
        assert isinstance(row.start_date_time, dt.datetime)
        assert row.start_date_time == to_python_datetime(want["startDateTime"])
        assert row.end_date_time == to_python_datetime(want["endDateTime"])
        assert isinstance(row.call_duration_source, PstnCallDurationSource)
        assert row.call_duration_source == PstnCallDurationSource(want["callDurationSource"])
        sources.add(row.call_duration_source)
        assert row.charge == pytest.approx(float(want["charge"]))
        assert row.connection_charge == pytest.approx(float(want["connectionCharge"]))
        for attr, key in (("call_id", "callId"), ("user_id", "userId"), ("user_principal_name", "userPrincipalName"),
                          ("user_display_name", "userDisplayName"), ("call_type", "callType"),
                          ("currency", "currency"), ("callee_number", "calleeNumber"),
                          ("caller_number", "callerNumber"), ("usage_country_code", "usageCountryCode"),
                          ("tenant_country_code", "tenantCountryCode"),
                          ("destination_context", "destinationContext"), ("destination_name", "destinationName"),
                          ("conference_id", "conferenceId"), ("license_capability", "licenseCapability"),
                          ("inventory_type", "inventoryType"), ("operator", "operator")):
            assert getattr(row, attr) == want[key], (row.id, attr, getattr(row, attr), want[key])
        assert not row.additional_data, row.additional_data
    assert sources == {PstnCallDurationSource.Microsoft, PstnCallDurationSource.Operator}

    charged = [r for r in rows if r.id in usage.charged_pstn_ids]
    assert len(charged) == 10
    for r in charged:
        assert r.charge == pytest.approx(1.37) and r.connection_charge == 0


def test_pstn_calls_page_iterator(server, client, adapter, run):
    """MUST (getPstnCalls paging): msgraph-core's PageIterator walks the three pages and sees every row once."""
    usage = server.usage
    first = run(pstn(client, usage.day_start, usage.day_end).get())
    paged = run(sdk_collect(first, adapter))
    assert paged.page_sizes == [PAGE, PAGE, PSTN_ROWS - 2 * PAGE]
    ids = [r.id for r in paged.items]
    assert len(ids) == len(set(ids)) == PSTN_ROWS
    assert set(ids) == set(usage.pstn_by_id)
    assert all(isinstance(r, PstnCallLogRow) for r in paged.items)


def test_pstn_next_link_shape(server, client, run):
    """MUST (getPstnCalls paging): absolute nextLink on our base URL that repeats fromDateTime/toDateTime; no raw `+`
    (WIRE.md: it would arrive as a space); the page before a tie on startDateTime still loses no row (keyset)."""
    usage = server.usage
    first = run(pstn(client, usage.day_start, usage.day_end).get())
    link = first.odata_next_link
    assert link and link.startswith(server.base_url + "/communications/callRecords/"), link
    path, _, query = link.partition("?")
    assert "getPstnCalls(" in path and "fromDateTime=" in path and "toDateTime=" in path, link
    assert "+" not in query, link
    names = {urllib.parse.unquote(k).lower() for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    assert names & {"$skiptoken", "$skip"}, link
    assert "$top" not in names
    # Page 1 ends in the middle of rows PSTN_TIE (same startDateTime): they must all appear exactly once.
    tie_ids = {row_id("pstn", i) for i in PSTN_TIE}
    order = in_order(server.usage.pstn)
    assert tie_ids & set(order[:PAGE]) and tie_ids & set(order[PAGE:]), "fixture no longer splits the tie"
    assert {r.id for r in first.value} == set(order[:PAGE])


def test_pstn_top_and_skip(server, client, run):
    """Our choice (getPstnCalls): $top caps the total (700: one page, no nextLink; 1500: pages of at most 1,000, our
    reading of "at most 1000"); $skip is honoured and the nextLink continues after the skipped rows;
    $count=true is accepted and kept in the nextLink."""
    usage = server.usage
    order = in_order(usage.pstn)
    builder = pstn(client, usage.day_start, usage.day_end)

    single = run(builder.get(config(PstnQ(top=700))))
    assert len(single.value) == single.odata_count == 700 and single.odata_next_link is None
    assert [r.id for r in single.value] == order[:700]

    first = run(builder.get(config(PstnQ(top=1500, count=True))))
    pages = follow(run, builder, first)
    assert [len(p.value) for p in pages] == [PAGE, 500]
    assert [r.id for p in pages for r in p.value] == order[:1500]

    first = run(builder.get(config(PstnQ(skip=10))))
    pages = follow(run, builder, first)
    assert [len(p.value) for p in pages] == [PAGE, PAGE, PSTN_ROWS - 2 * PAGE - 10]
    assert [r.id for p in pages for r in p.value] == order[10:]

    tail = run(builder.get(config(PstnQ(skip=PSTN_ROWS - 3, top=2))))
    assert [r.id for r in tail.value] == order[-3:-1] and tail.odata_next_link is None


def test_pstn_range_is_half_open_on_start(server, client, run):
    """Our choice (the PSTN and Direct Routing pages disagree on toDateTime): the range is [from, to) on
    startDateTime: a row starting exactly at `from` is in, one starting exactly at `to` is out (here at a .5 s
    fraction, sent by the SDK as isoformat microseconds)."""
    usage = server.usage
    row = usage.pstn[PSTN_BOUNDARY]
    start = to_python_datetime(row["startDateTime"])
    assert start.microsecond == 500000

    at_from = run(pstn(client, start, start + dt.timedelta(seconds=1)).get())
    assert [r.id for r in at_from.value] == [row["id"]]
    assert at_from.odata_count == 1 and at_from.odata_next_link is None

    at_to = run(pstn(client, start - dt.timedelta(seconds=1), start).get())
    assert at_to.value == [] and at_to.odata_count == 0

    just_after = run(pstn(client, start + dt.timedelta(microseconds=1), start + dt.timedelta(seconds=1)).get())
    assert just_after.value == []

    # Offsets other than +00:00 name the same instant (the SDK sends isoformat with an offset).
    plus2 = dt.timezone(dt.timedelta(hours=2))
    shifted = run(pstn(client, start.astimezone(plus2), (start + dt.timedelta(seconds=1)).astimezone(plus2)).get())
    assert [r.id for r in shifted.value] == [row["id"]]


def test_pstn_range_limits(server, client, run):
    """MUST (getPstnCalls): a range longer than 90 days, or to before from, answers 400 BadRequest as ODataError;
    exactly 90 days is allowed."""
    end = server.usage.day_end
    err = odata_error(run, pstn(client, end - dt.timedelta(days=91), end).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest", err.error
    assert err.error.message
    err = odata_error(run, pstn(client, end - dt.timedelta(days=90, seconds=1), end).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    err = odata_error(run, pstn(client, end, end - dt.timedelta(seconds=1)).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    ok = run(pstn(client, end - dt.timedelta(days=90), end).get())
    assert ok.odata_count == PAGE


def test_pstn_filter_and_search_are_400(server, client, run):
    """getPstnCalls: the builder exposes $filter and $search; both answer 400 BadRequest."""
    usage = server.usage
    builder = pstn(client, usage.day_start, usage.day_end)
    for query in (PstnQ(filter="duration gt 10"), PstnQ(search='"x"')):
        err = odata_error(run, builder.get(config(query)))
        assert err.response_status_code == 400 and err.error.code == "BadRequest", query


def test_function_parameter_errors_name_the_parameter(server):
    """getPstnCalls, Graph's errors: missing or malformed parameters answer 400 BadRequest; message and error.target name it."""
    fn = server.url("/communications/callRecords/microsoft.graph.callRecords.getPstnCalls")
    day = server.usage.day.isoformat()
    cases = {
        "fromDateTime": [f"{fn}(fromDateTime=yesterday,toDateTime={day})", f"{fn}(toDateTime={day})"],
        "toDateTime": [f"{fn}(fromDateTime={day},toDateTime=2026-13-45)", f"{fn}(fromDateTime={day})"],
    }
    for name, urls in cases.items():
        for url in urls:
            r = http("GET", url)
            assert r.status == 400, (url, r.status, r.body[:300])
            error = r.json()["error"]
            assert error["code"] == "BadRequest", (url, error)
            assert name in error["message"], (url, error)
            assert error.get("target") == name, (url, error)


def test_pstn_raw_forms_and_decimal_text(server):
    """MUST (getPstnCalls, OData JSON): date-only, comma-separated, unqualified form; Edm.Decimal money keeps its scale on the
    wire (`"charge":1.37`, `"connectionCharge":0.00`), and every row's amounts come back as the text sent."""
    usage = server.usage
    url = server.url(f"/communications/callRecords/getPstnCalls(fromDateTime={usage.day.isoformat()},"
                     f"toDateTime={(usage.day + dt.timedelta(days=1)).isoformat()})")
    r = http("GET", url)
    assert r.status == 200, r.body[:500]
    body = json.loads(r.body, parse_float=Decimal)
    assert body["@odata.context"].endswith("$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)")
    assert body["@odata.count"] == PAGE == len(body["value"])

    charged = usage.charged_pstn_ids
    text = r.text
    first_charged = next(row["id"] for row in body["value"] if row["id"] in charged)
    m = re.search(r'\{[^{}]*"id"\s*:\s*"' + re.escape(first_charged) + r'"[^{}]*\}', text)
    assert m, "charged row not found in the raw body"
    assert re.search(r'"charge"\s*:\s*1\.37[,}\s]', m.group(0)), m.group(0)
    assert re.search(r'"connectionCharge"\s*:\s*0\.00[,}\s]', m.group(0)), m.group(0)

    # Our choice: DateTimeOffsets in UTC with `Z`, trailing fraction zeros trimmed (sent as .2500000Z / .0000000Z).
    by_id = {row["id"]: row for row in body["value"]}
    assert by_id[row_id("pstn", 1)]["startDateTime"].endswith(":34.25Z"), by_id[row_id("pstn", 1)]
    assert by_id[row_id("pstn", 0)]["startDateTime"].endswith("T00:00:00Z"), by_id[row_id("pstn", 0)]
    # As Graph does: declared properties that are null are written as null, not left out.
    assert by_id[row_id("pstn", 1)]["conferenceId"] is None and "conferenceId" in by_id[row_id("pstn", 1)]

    rows, pages = [], 0
    while url:
        page = json.loads(http("GET", url).body, parse_float=Decimal)
        pages += 1
        rows += page["value"]
        url = page.get("@odata.nextLink")
    assert pages == 3 and len(rows) == PSTN_ROWS
    sent = usage.pstn_by_id
    for row in rows:
        for key in ("charge", "connectionCharge"):
            got, want = row[key], sent[row["id"]][key]
            assert isinstance(got, Decimal) and str(got) == str(want), (row["id"], key, got, want)


# --------------------------------------------------------------------------- getDirectRoutingCalls


def test_direct_routing_calls_typed_rows(server, client, run):
    """MUST (getDirectRoutingCalls): typed DirectRoutingLogRows: final_sip_code int, successful_call bool, failure_date_time
    datetime on failed (486/487) rows and None on answered (200/BYE) ones; @odata.count = rows in the page (as documented)."""
    usage = server.usage
    page = run(direct(client, usage.day_start, usage.day_end).get())
    assert isinstance(page, GetDirectRoutingCallsWithFromDateTimeWithToDateTimeGetResponse)
    assert page.odata_next_link is None
    assert page.odata_count == len(page.value) == len(usage.direct)
    assert [r.id for r in page.value] == in_order(usage.direct)
    sent = {r["id"]: r for r in usage.direct}
    codes = set()
    for row in page.value:
        assert isinstance(row, DirectRoutingLogRow), type(row)
        want = sent[row.id]
        assert isinstance(row.final_sip_code, int) and row.final_sip_code == want["finalSipCode"]
        codes.add(row.final_sip_code)
        assert isinstance(row.successful_call, bool) and row.successful_call is want["successfulCall"]
        assert isinstance(row.media_bypass_enabled, bool) and row.media_bypass_enabled is want["mediaBypassEnabled"]
        assert row.call_end_sub_reason == want["callEndSubReason"]
        assert row.final_sip_code_phrase == want["finalSipCodePhrase"]
        assert row.start_date_time == to_python_datetime(want["startDateTime"])
        assert row.invite_date_time == to_python_datetime(want["inviteDateTime"])
        assert isinstance(row.duration, int) and row.duration == want["duration"]
        if want["successfulCall"]:
            assert row.final_sip_code == 200 and row.failure_date_time is None
            assert row.end_date_time == to_python_datetime(want["endDateTime"])
        else:
            assert row.final_sip_code in (486, 487)
            assert isinstance(row.failure_date_time, dt.datetime)
            assert row.failure_date_time == to_python_datetime(want["failureDateTime"])
            assert row.end_date_time is None
        for attr, key in (("correlation_id", "correlationId"), ("user_id", "userId"),
                          ("user_principal_name", "userPrincipalName"), ("user_display_name", "userDisplayName"),
                          ("call_type", "callType"), ("caller_number", "callerNumber"),
                          ("callee_number", "calleeNumber"),
                          ("trunk_fully_qualified_domain_name", "trunkFullyQualifiedDomainName"),
                          ("media_path_location", "mediaPathLocation"), ("signaling_location", "signalingLocation")):
            assert getattr(row, attr) == want[key], (row.id, attr)
    assert codes == {200, 486, 487}


def test_direct_routing_range_limits_and_half_open(server, client, run):
    """MUST (getDirectRoutingCalls, as getPstnCalls): > 90 days and to < from answer 400 BadRequest; our choice:
    [from, to) on startDateTime."""
    usage = server.usage
    end = usage.day_end
    err = odata_error(run, direct(client, end - dt.timedelta(days=91), end).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    err = odata_error(run, direct(client, end, usage.day_start).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"

    row = usage.direct[1]   # start has a .123456 s fraction
    start = to_python_datetime(row["startDateTime"])
    assert [r.id for r in run(direct(client, start, start + dt.timedelta(seconds=1)).get()).value] == [row["id"]]
    assert run(direct(client, start - dt.timedelta(seconds=1), start).get()).value == []


def test_direct_routing_raw_date_only(server):
    """MUST (getDirectRoutingCalls): date-only parameters in either order, unqualified name; context names directRoutingLogRow."""
    usage = server.usage
    a, b = usage.day.isoformat(), (usage.day + dt.timedelta(days=1)).isoformat()
    body = get_json(server.url(f"/communications/callRecords/getDirectRoutingCalls(toDateTime={b},fromDateTime={a})"))
    assert body["@odata.context"].endswith("$metadata#Collection(microsoft.graph.callRecords.directRoutingLogRow)")
    assert body["@odata.count"] == len(body["value"]) == len(usage.direct)
    assert "@odata.nextLink" not in body


# --------------------------------------------------------------------------- beta getSmsLog


def test_beta_sms_log_typed_rows(server, beta_client, run):
    """Beta only: msgraph-beta-sdk's getSmsLog builder returns typed SmsLogRows with every property."""
    usage = server.usage
    page = run(sms(beta_client, usage.day_start, usage.day_end).get())
    assert isinstance(page, GetSmsLogWithFromDateTimeWithToDateTimeGetResponse)
    assert page.odata_next_link is None
    assert page.odata_count == len(page.value) == len(usage.sms)
    assert [r.id for r in page.value] == in_order(usage.sms, key="sentDateTime")
    sent = {r["id"]: r for r in usage.sms}
    for row in page.value:
        assert isinstance(row, SmsLogRow), type(row)
        want = sent[row.id]
        assert isinstance(row.sent_date_time, dt.datetime)
        assert row.sent_date_time == to_python_datetime(want["sentDateTime"])
        assert isinstance(row.sms_units, int) and row.sms_units == want["smsUnits"]
        assert row.call_charge == pytest.approx(float(want["callCharge"]))
        assert [a.id for a in row.administrative_unit_infos] == [a["id"] for a in want["administrativeUnitInfos"]]
        for attr, key in (("sms_id", "smsId"), ("sms_type", "smsType"), ("source_number", "sourceNumber"),
                          ("destination_number", "destinationNumber"), ("destination_context", "destinationContext"),
                          ("destination_name", "destinationName"), ("currency", "currency"),
                          ("license_capability", "licenseCapability"),
                          ("other_party_country_code", "otherPartyCountryCode"),
                          ("tenant_country_code", "tenantCountryCode"), ("user_country_code", "userCountryCode"),
                          ("user_display_name", "userDisplayName"), ("user_id", "userId"),
                          ("user_principal_name", "userPrincipalName")):
            assert getattr(row, attr) == want[key], (row.id, attr)


def test_beta_sms_log_range_limits(server, beta_client, run):
    """Beta (same rules as getPstnCalls): > 90 days and to < from answer 400 BadRequest; our choice: [from, to)."""
    usage = server.usage
    end = usage.day_end
    err = odata_error(run, sms(beta_client, end - dt.timedelta(days=91), end).get(), BetaODataError)
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    err = odata_error(run, sms(beta_client, end, usage.day_start).get(), BetaODataError)
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    row = usage.sms[3]
    sent = to_python_datetime(row["sentDateTime"])
    assert [r.id for r in run(sms(beta_client, sent, sent + dt.timedelta(seconds=1)).get()).value] == [row["id"]]
    assert run(sms(beta_client, sent - dt.timedelta(seconds=1), sent).get()).value == []


def test_sms_log_is_not_in_v1(server):
    """MUST (beta reference): getSmsLog is beta only; under /v1.0 it answers 400 BadRequest with a JSON error body.
    Under /beta (raw, date-only, unqualified) it serves smsLogRows whose Decimal callCharge keeps its scale."""
    a, b = server.usage.day.isoformat(), (server.usage.day + dt.timedelta(days=1)).isoformat()
    r = http("GET", server.url(f"/communications/callRecords/microsoft.graph.callRecords.getSmsLog("
                               f"fromDateTime={a},toDateTime={b})"))
    assert r.status == 400, (r.status, r.body[:300])
    assert r.json()["error"]["code"] == "BadRequest"
    r = http("GET", server.root + f"/beta/communications/callRecords/getSmsLog(fromDateTime={a},toDateTime={b})")
    assert r.status == 200, r.body[:300]
    raw = json.loads(r.body, parse_float=Decimal)
    assert raw["@odata.context"].endswith("$metadata#Collection(microsoft.graph.callRecords.smsLogRow)")
    assert len(raw["value"]) == len(server.usage.sms)
    # callCharge is Edm.Decimal too: its scale (0.0150, 0.00) survives (our choice: the stored scale is kept).
    sent = {row["id"]: row for row in server.usage.sms}
    for row in raw["value"]:
        assert str(row["callCharge"]) == str(sent[row["id"]]["callCharge"]), row
