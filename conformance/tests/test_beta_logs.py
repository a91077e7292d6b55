"""Beta-only log functions and beta-only row properties, through msgraph-beta-sdk 1.66.0's function builders
(URL templates `/communications/callRecords/microsoft.graph.callRecords.<fn>(fromDateTime=…,toDateTime=…)`),
with v1.0 (msgraph-sdk 1.65.0) and raw HTTP for cross-checks.

- getPstnBlockedUsersLog: users blocked from, or let back to, PSTN calling, as pstnBlockedUsersLogRows (no id),
  by blockDateTime in [from, to), in pages of 1,000.
- getPstnOnlineMeetingDialoutReport: dial-out calls, seconds and charges, one pstnOnlineMeetingDialoutReport entry
  per user, usageLocation, destinationContext and currency, summed over the stored days (our ingest takes one
  entry per UTC day, named by the ingest-only `usageDate`) whose date (as its 00:00 UTC) lies in [from, to);
  totalCallCharge is an Edm.Decimal, summed exactly with the larger scale.
- Beta's pstnCallLogRow and directRoutingLogRow derive from callLogRow and carry properties v1.0 has not.

The rows are the handcrafted ones conftest.py ingests: `build_blocked_users` (1,010 rows on yesterday, one sent
twice), `build_dialout_report` (DIALOUT_DAYS over yesterday and the four days before, and DIALOUT_CROWD users
three days before yesterday), and the PSTN and Direct Routing rows of `build_usage_logs`, some with beta's
properties (PSTN_BETA, DIRECT_BETA), some sending them as null and [] (PSTN_BETA_NULL, DIRECT_BETA_NULL).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.call_records.direct_routing_log_row import DirectRoutingLogRow as V1DirectRoutingLogRow
from msgraph_beta.generated.communications.call_records.microsoft_graph_call_records_get_pstn_blocked_users_log_with_from_date_time_with_to_date_time.get_pstn_blocked_users_log_with_from_date_time_with_to_date_time_get_response import (
    GetPstnBlockedUsersLogWithFromDateTimeWithToDateTimeGetResponse,
)
from msgraph_beta.generated.communications.call_records.microsoft_graph_call_records_get_pstn_online_meeting_dialout_report_with_from_date_time_with_to_date_time.get_pstn_online_meeting_dialout_report_with_from_date_time_with_to_date_time_get_response import (
    GetPstnOnlineMeetingDialoutReportWithFromDateTimeWithToDateTimeGetResponse,
)
from msgraph_beta.generated.communications.call_records.microsoft_graph_call_records_get_pstn_online_meeting_dialout_report_with_from_date_time_with_to_date_time.microsoft_graph_call_records_get_pstn_online_meeting_dialout_report_with_from_date_time_with_to_date_time_request_builder import (
    MicrosoftGraphCallRecordsGetPstnOnlineMeetingDialoutReportWithFromDateTimeWithToDateTimeRequestBuilder as DialoutBuilder,
)
from msgraph_beta.generated.communications.call_records.microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time.get_pstn_calls_with_from_date_time_with_to_date_time_get_response import (
    GetPstnCallsWithFromDateTimeWithToDateTimeGetResponse as BetaPstnResponse,
)
from msgraph_beta.generated.models.call_records.administrative_unit_info import AdministrativeUnitInfo
from msgraph_beta.generated.models.call_records.call_log_row import CallLogRow
from msgraph_beta.generated.models.call_records.direct_routing_log_row import DirectRoutingLogRow
from msgraph_beta.generated.models.call_records.pstn_blocked_users_log_row import PstnBlockedUsersLogRow
from msgraph_beta.generated.models.call_records.pstn_call_duration_source import PstnCallDurationSource
from msgraph_beta.generated.models.call_records.pstn_call_log_row import PstnCallLogRow
from msgraph_beta.generated.models.call_records.pstn_online_meeting_dialout_report import (
    PstnOnlineMeetingDialoutReport,
)
from msgraph_beta.generated.models.call_records.pstn_user_block_mode import PstnUserBlockMode
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError as BetaODataError

from conftest import (BLOCKED_DUPLICATE, BLOCKED_ROWS, BLOCKED_TIE, DIALOUT_CROWD, DIALOUT_CROWD_OFFSET, DIRECT_BETA,
                      PSTN_ROWS, encode_json)
from support import get_csdl, get_json, http, sdk_collect, ticks, to_python_datetime

DialoutQ = DialoutBuilder.MicrosoftGraphCallRecordsGetPstnOnlineMeetingDialoutReportWithFromDateTimeWithToDateTimeRequestBuilderGetQueryParameters
PAGE = 1000
PSTN_EXTRA = ("administrativeUnitInfos", "otherPartyCountryCode", "clientLocalIpV4Address", "clientLocalIpV6Address",
              "clientPublicIpV4Address", "clientPublicIpV6Address")
DIRECT_EXTRA = ("administrativeUnitInfos", "otherPartyCountryCode", "transferorCorrelationId", "userCountryCode")
BLOCKED_PROPS = {"blockDateTime", "blockReason", "remediationId", "userBlockMode", "userDisplayName", "userId",
                 "userPrincipalName", "userTelephoneNumber"}
DIALOUT_PROPS = {"currency", "destinationContext", "totalCallCharge", "totalCalls", "totalCallSeconds",
                 "usageLocation", "userDisplayName", "userId", "userPrincipalName"}


def config(query=None) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=query)


def odata_error(run, coro) -> BetaODataError:
    with pytest.raises(BetaODataError) as info:
        run(coro)
    return info.value


def calls(beta_client):
    return beta_client.communications.call_records


def blocked(beta_client, frm: dt.datetime, to: dt.datetime):
    return calls(beta_client).microsoft_graph_call_records_get_pstn_blocked_users_log_with_from_date_time_with_to_date_time(frm, to)


def dialout(beta_client, frm: dt.datetime, to: dt.datetime):
    return calls(beta_client).microsoft_graph_call_records_get_pstn_online_meeting_dialout_report_with_from_date_time_with_to_date_time(frm, to)


def beta_pstn(beta_client, frm: dt.datetime, to: dt.datetime):
    return calls(beta_client).microsoft_graph_call_records_get_pstn_calls_with_from_date_time_with_to_date_time(frm, to)


def beta_direct(beta_client, frm: dt.datetime, to: dt.datetime):
    return calls(beta_client).microsoft_graph_call_records_get_direct_routing_calls_with_from_date_time_with_to_date_time(frm, to)


def follow(run, builder, first):
    """Follow @odata.nextLink verbatim with `builder.with_url(link).get()`; every page, first included."""
    pages = [first]
    while pages[-1].odata_next_link:
        assert len(pages) < 20, "nextLink loop?"
        pages.append(run(builder.with_url(pages[-1].odata_next_link).get()))
    return pages


def raw_rows(url: str) -> tuple[list[dict], int]:
    """Every row of a log function over raw HTTP, numbers as Decimal (so a scale can be seen); (rows, pages)."""
    rows, pages = [], 0
    while url:
        r = http("GET", url)
        assert r.status == 200, (url, r.status, r.body[:500])
        page = json.loads(r.body, parse_float=Decimal)
        pages += 1
        assert pages < 20, "nextLink loop?"
        rows += page["value"]
        url = page.get("@odata.nextLink")
    return rows, pages


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def dialout_key(entry: dict) -> tuple:
    return entry["userId"], entry["usageLocation"], entry["destinationContext"], entry["currency"]


def expected_dialout(rows: list[dict], frm: dt.datetime, to: dt.datetime) -> dict[tuple, dict]:
    """The entries the function should answer: the day entries whose usageDate (at 00:00 UTC) lies in [frm, to),
    summed per user, usageLocation, destinationContext and currency (Decimal addition keeps the larger scale)."""
    sums: dict[tuple, dict] = {}
    for row in rows:
        if not frm <= midnight(dt.date.fromisoformat(row["usageDate"])) < to:
            continue
        key = dialout_key(row)
        if key not in sums:
            sums[key] = {k: v for k, v in row.items() if k != "usageDate"}
        else:
            total = sums[key]
            total["totalCalls"] += row["totalCalls"]
            total["totalCallSeconds"] += row["totalCallSeconds"]
            total["totalCallCharge"] += row["totalCallCharge"]
    return sums


def dialout_url(server, frm: dt.datetime, to: dt.datetime) -> str:
    q = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return (server.root + "/beta/communications/callRecords/microsoft.graph.callRecords."
            f"getPstnOnlineMeetingDialoutReport(fromDateTime={q(frm)},toDateTime={q(to)})")


# --------------------------------------------------------------------------- ingest


def test_beta_log_ingest_reports(server):
    """Our ingest (not Graph): every blocked-users row and dial-out day stored, nothing rejected; the
    blocked-users row sent twice in one NDJSON body (the type has no id) is stored once."""
    usage = server.usage
    first, rest = usage.reports["pstnBlockedUsers"]
    assert first["stored"] == 1 and first["rejected"] == 0 and not first.get("errors"), first
    assert rest["stored"] == BLOCKED_ROWS - 1 and rest["rejected"] == 0 and not rest.get("errors"), rest
    assert rest["replaced"] + rest["ignored"] == 1, rest
    first, rest = usage.reports["pstnOnlineMeetingDialoutReport"]
    assert first["stored"] == 1 and first["rejected"] == 0, first
    assert rest["stored"] == len(usage.dialout) - 1 and rest["rejected"] == 0 and not rest.get("errors"), rest


# --------------------------------------------------------------------------- getPstnBlockedUsersLog


def test_blocked_users_typed_rows_and_pages(server, beta_client, run):
    """Graph beta (getPstnBlockedUsersLog): typed PstnBlockedUsersLogRows with every property as ingested (the
    PstnUserBlockMode enum, all three members; blockDateTime truncated to microseconds by the SDK), 1,000-row
    pages with @odata.count = rows in the page, nextLinks followed with with_url(); in blockDateTime order, no row
    lost or repeated across a page break inside a tie, and the row sent twice there once."""
    usage = server.usage
    builder = blocked(beta_client, usage.day_start, usage.day_end)
    first = run(builder.get())
    assert isinstance(first, GetPstnBlockedUsersLogWithFromDateTimeWithToDateTimeGetResponse), type(first)
    assert first.additional_data["@odata.context"] == (
        server.root + "/beta/$metadata#Collection(microsoft.graph.callRecords.pstnBlockedUsersLogRow)")
    pages = follow(run, builder, first)
    assert [len(p.value) for p in pages] == [PAGE, BLOCKED_ROWS - PAGE]
    assert [p.odata_count for p in pages] == [len(p.value) for p in pages]
    link = first.odata_next_link
    assert link.startswith(server.root + "/beta/communications/callRecords/") and "+" not in link.partition("?")[2]

    rows = [r for p in pages for r in p.value]
    keys = [r.remediation_id for r in rows]
    assert len(keys) == len(set(keys)) == BLOCKED_ROWS, "a row was skipped or returned twice"
    sent = usage.blocked_by_remediation
    assert set(keys) == set(sent)
    order = [ticks(sent[k]["blockDateTime"]) for k in keys]
    assert order == sorted(order), "rows not in blockDateTime order"
    tie = {usage.blocked[i]["remediationId"] for i in BLOCKED_TIE}
    assert tie & set(keys[:PAGE]) and tie & set(keys[PAGE:]), "the fixture no longer splits the tie"
    modes = set()
    for row in rows:
        assert isinstance(row, PstnBlockedUsersLogRow), type(row)
        want = sent[row.remediation_id]
        assert isinstance(row.block_date_time, dt.datetime)
        assert row.block_date_time == to_python_datetime(want["blockDateTime"])
        assert isinstance(row.user_block_mode, PstnUserBlockMode)
        assert row.user_block_mode == PstnUserBlockMode(want["userBlockMode"])
        modes.add(row.user_block_mode)
        for attr, key in (("block_reason", "blockReason"), ("user_display_name", "userDisplayName"),
                          ("user_id", "userId"), ("user_principal_name", "userPrincipalName"),
                          ("user_telephone_number", "userTelephoneNumber")):
            assert getattr(row, attr) == want[key], (row.remediation_id, attr, getattr(row, attr), want[key])
        assert not row.additional_data, row.additional_data
    assert modes == set(PstnUserBlockMode)
    assert sum(r.block_reason is None for r in rows) == 1


def test_blocked_users_page_iterator(server, beta_client, beta_adapter, run):
    """Graph beta (getPstnBlockedUsersLog paging): msgraph-core's PageIterator on the beta adapter walks both pages
    and sees every row once."""
    usage = server.usage
    first = run(blocked(beta_client, usage.day_start, usage.day_end).get())
    paged = run(sdk_collect(first, beta_adapter))
    assert paged.page_sizes == [PAGE, BLOCKED_ROWS - PAGE]
    keys = [r.remediation_id for r in paged.items]
    assert len(keys) == len(set(keys)) == BLOCKED_ROWS
    assert all(isinstance(r, PstnBlockedUsersLogRow) for r in paged.items)


def test_blocked_users_range_and_limits(server, beta_client, run):
    """Graph beta (getPstnBlockedUsersLog, as getPstnCalls): the range is [from, to) on blockDateTime, whatever the
    offset the SDK sends; more than 90 days, or to before from, answers 400 BadRequest as msgraph_beta's
    ODataError."""
    usage = server.usage
    row = usage.blocked[2]      # a .246912 s fraction, which the SDK can send exactly
    at = to_python_datetime(row["blockDateTime"])
    assert at.microsecond == 246912
    got = run(blocked(beta_client, at, at + dt.timedelta(seconds=1)).get())
    assert [r.remediation_id for r in got.value] == [row["remediationId"]] and got.odata_count == 1
    assert run(blocked(beta_client, at - dt.timedelta(seconds=1), at).get()).value == []
    plus5 = dt.timezone(dt.timedelta(hours=5, minutes=30))
    got = run(blocked(beta_client, at.astimezone(plus5), (at + dt.timedelta(seconds=1)).astimezone(plus5)).get())
    assert [r.remediation_id for r in got.value] == [row["remediationId"]]

    end = usage.day_end
    err = odata_error(run, blocked(beta_client, end - dt.timedelta(days=91), end).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest", err.error
    err = odata_error(run, blocked(beta_client, end, usage.day_start).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"


def test_blocked_users_same_row_twice_is_stored_once(server, beta_client, run):
    """Our ingest (not Graph): pstnBlockedUsersLogRow has no id, so a row sent again (also with its
    blockDateTime written at another offset) is acknowledged, not stored twice; the function still lists it
    once."""
    usage = server.usage
    row = dict(usage.blocked[BLOCKED_DUPLICATE])
    at = to_python_datetime(row["blockDateTime"])
    shifted = dict(row, blockDateTime=at.astimezone(dt.timezone(dt.timedelta(hours=-7))).isoformat())
    for again in (row, shifted):
        r = http("POST", server.root + "/ingest/pstnBlockedUsers", body=encode_json(again).encode(),
                 headers={"Content-Type": "application/json"})
        assert r.status in (200, 201, 202), r.body[:500]
        report = r.json()
        assert report["stored"] == 0 and report["rejected"] == 0, (again["blockDateTime"], report)
        assert report["replaced"] + report["ignored"] == 1, report
    got = run(blocked(beta_client, at, at + dt.timedelta(milliseconds=1)).get())
    assert [r.remediation_id for r in got.value] == [row["remediationId"]]


def test_blocked_users_raw_and_not_in_v1(server):
    """Graph: getPstnBlockedUsersLog and getPstnOnlineMeetingDialoutReport are beta only (400 BadRequest under
    /v1.0, as an unknown segment); under /beta the date-only, unqualified form answers rows with exactly the CSDL's
    properties (no id), blockDateTime in UTC with `Z`."""
    usage = server.usage
    a, b = usage.day.isoformat(), (usage.day + dt.timedelta(days=1)).isoformat()
    for fn in ("getPstnBlockedUsersLog", "getPstnOnlineMeetingDialoutReport"):
        for form in (fn, "microsoft.graph.callRecords." + fn):
            r = http("GET", server.url(f"/communications/callRecords/{form}(fromDateTime={a},toDateTime={b})"))
            assert r.status == 400, (form, r.status, r.body[:300])
            assert r.json()["error"]["code"] == "BadRequest"
    body = get_json(server.root + f"/beta/communications/callRecords/getPstnBlockedUsersLog(toDateTime={b},"
                                  f"fromDateTime={a})")
    assert body["@odata.context"].endswith("/beta/$metadata#Collection(microsoft.graph.callRecords.pstnBlockedUsersLogRow)")
    assert body["@odata.count"] == len(body["value"]) == PAGE and body["@odata.nextLink"]
    sent = usage.blocked_by_remediation
    for row in body["value"]:
        assert set(row) == BLOCKED_PROPS, row
        want = sent[row["remediationId"]]
        assert row["blockDateTime"].endswith("Z") and ticks(row["blockDateTime"]) == ticks(want["blockDateTime"])
        assert {k: v for k, v in row.items() if k != "blockDateTime"} == {
            k: v for k, v in want.items() if k != "blockDateTime"}


# --------------------------------------------------------------------------- getPstnOnlineMeetingDialoutReport


def check_dialout_entries(entries: list, expected: dict[tuple, dict]) -> None:
    """Typed entries (SDK) against the expected sums: one per key, every property."""
    keys = [(e.user_id, e.usage_location, e.destination_context, e.currency) for e in entries]
    assert len(keys) == len(set(keys)), "an entry was returned twice"
    assert set(keys) == set(expected), set(keys) ^ set(expected)
    for e in entries:
        assert isinstance(e, PstnOnlineMeetingDialoutReport), type(e)
        want = expected[(e.user_id, e.usage_location, e.destination_context, e.currency)]
        assert isinstance(e.total_calls, int) and e.total_calls == want["totalCalls"]
        assert isinstance(e.total_call_seconds, int) and e.total_call_seconds == want["totalCallSeconds"]
        assert e.total_call_charge == pytest.approx(float(want["totalCallCharge"]))
        assert e.user_display_name == want["userDisplayName"]
        assert e.user_principal_name == want["userPrincipalName"]
        assert not e.additional_data, e.additional_data      # usageDate is never served


def test_dialout_report_sums_the_days_in_range(server, beta_client, run):
    """Graph beta (getPstnOnlineMeetingDialoutReport): one typed PstnOnlineMeetingDialoutReport per user,
    usageLocation, destinationContext and currency, its totalCalls, totalCallSeconds and totalCallCharge the sums
    of that key's days in [from, to): two days of one user add up, a day of the same key four days back is
    outside and not counted, another location, context or currency is an entry of its own."""
    usage = server.usage
    frm, to = usage.day_start - dt.timedelta(days=2), usage.day_end
    page = run(dialout(beta_client, frm, to).get())
    assert isinstance(page, GetPstnOnlineMeetingDialoutReportWithFromDateTimeWithToDateTimeGetResponse), type(page)
    assert page.additional_data["@odata.context"] == (
        server.root + "/beta/$metadata#Collection(microsoft.graph.callRecords.pstnOnlineMeetingDialoutReport)")
    assert page.odata_next_link is None and page.odata_count == len(page.value)
    expected = expected_dialout(usage.dialout, frm, to)
    assert len(expected) == 7
    check_dialout_entries(page.value, expected)
    # The first user's domestic USD calls: yesterday 3 calls / 420 s / 1.10 and the day before 2 / 185 / 0.255;
    # the 7 calls four days back are outside the range.
    richard = next(e for e in page.value if e.user_principal_name == "user0@contoso.com"
                   and e.destination_context == "Domestic")
    assert (richard.total_calls, richard.total_call_seconds) == (5, 605)
    assert richard.total_call_charge == pytest.approx(1.355)
    assert richard.usage_location == "US" and richard.currency == "USD"
    zoe = [e for e in page.value if e.user_principal_name == "user1@contoso.com"]
    assert sorted((e.usage_location, e.currency, e.total_calls) for e in zoe) == [("GB", "GBP", 5), ("US", "USD", 2)]


def _raw_dialout_charges(server) -> tuple[dict, dict, set]:
    """The raw entries of [two days before yesterday, today), the expected sums, and the keys one of whose days
    has a zero charge."""
    usage = server.usage
    frm, to = usage.day_start - dt.timedelta(days=2), usage.day_end
    rows, pages = raw_rows(dialout_url(server, frm, to))
    assert pages == 1
    expected = expected_dialout(usage.dialout, frm, to)
    got = {dialout_key(r): r for r in rows}
    assert set(got) == set(expected)
    zero_days = {dialout_key(r) for r in usage.dialout
                 if r["totalCallCharge"] == 0 and frm <= midnight(dt.date.fromisoformat(r["usageDate"])) < to}
    return got, expected, zero_days


def test_dialout_report_charges_are_exact_decimals(server):
    """Graph beta: totalCallCharge is Edm.Decimal: the sum is exact and keeps the larger scale of its days
    (0.1 + 0.2 = 0.3, 0.50 + 0.5 = 1.00, 1.10 + 0.255 = 1.355,
    123456789.123456789 + 0.000000001 = 123456789.123456790), written as JSON numbers with that text; the entries
    carry exactly the CSDL's properties (no id, no usageDate).  Sums with a zero-charge day: the next test."""
    got, expected, zero_days = _raw_dialout_charges(server)
    assert len(zero_days) == 2
    for key, row in got.items():
        assert set(row) == DIALOUT_PROPS, row
        assert isinstance(row["totalCallCharge"], Decimal), row
        assert row["totalCallCharge"] == expected[key]["totalCallCharge"], (key, row)
        if key not in zero_days:
            assert str(row["totalCallCharge"]) == str(expected[key]["totalCallCharge"]), (key, row)
            assert row == expected[key], (key, row, expected[key])
    assert sorted(str(got[k]["totalCallCharge"]) for k in got if k not in zero_days) == sorted(
        ["1.355", "0.90", "0.3", "1.00", "123456789.123456790"])


def test_dialout_report_zero_charge_days_keep_their_scale(server):
    """Graph beta (Edm.Decimal; the total is the exact sum of the days in range): a day charged 0.000 still
    counts for the scale, like any other: 0.00 + 0.000 = 0.000 and 1.5 + 0.000 = 1.500."""
    got, expected, zero_days = _raw_dialout_charges(server)
    assert sorted(str(expected[k]["totalCallCharge"]) for k in zero_days) == ["0.000", "1.500"]
    assert {k: str(got[k]["totalCallCharge"]) for k in zero_days} == {
        k: str(expected[k]["totalCallCharge"]) for k in zero_days}


def test_dialout_report_counts_whole_days_by_date(server, beta_client, run):
    """Our reading of the day entries: a stored day counts when its date, taken as 00:00 UTC, lies in [from, to):
    [yesterday, today) is yesterday's figures alone; a range ending 1 µs after yesterday's midnight still holds
    yesterday, one starting 1 µs after it does not; an empty range of days answers no entries."""
    usage = server.usage
    day, end = usage.day_start, usage.day_end
    for frm, to in ((day, end), (day - dt.timedelta(days=1), day + dt.timedelta(microseconds=1)),
                    (day + dt.timedelta(microseconds=1), end + dt.timedelta(days=0, hours=12)),
                    (day - dt.timedelta(days=4), day - dt.timedelta(days=3, hours=1))):
        page = run(dialout(beta_client, frm, to).get())
        check_dialout_entries(page.value, expected_dialout(usage.dialout, frm, to))
    only_yesterday = run(dialout(beta_client, day, end).get())
    assert {(e.user_principal_name, e.destination_context, e.total_calls) for e in only_yesterday.value} >= {
        ("user0@contoso.com", "Domestic", 3), ("user0@contoso.com", "International", 1)}
    none = run(dialout(beta_client, day + dt.timedelta(microseconds=1), end).get())
    assert none.value == [] and none.odata_count == 0


def test_dialout_report_pages(server, beta_client, beta_adapter, run):
    """Graph beta (log paging): more than 1,000 entries come in 1,000-entry pages with @odata.count = entries in the
    page; PageIterator and with_url() see every entry once, sums intact across the page break."""
    usage = server.usage
    crowd_day = usage.day_start - dt.timedelta(days=DIALOUT_CROWD_OFFSET)
    first = run(dialout(beta_client, crowd_day, crowd_day + dt.timedelta(days=1)).get())
    paged = run(sdk_collect(first, beta_adapter))
    assert paged.page_sizes == [PAGE, DIALOUT_CROWD - PAGE]
    assert first.odata_count == PAGE
    check_dialout_entries(paged.items, expected_dialout(usage.dialout, crowd_day, crowd_day + dt.timedelta(days=1)))

    frm, to = usage.day_start - dt.timedelta(days=4), usage.day_end
    builder = dialout(beta_client, frm, to)
    pages = follow(run, builder, run(builder.get()))
    expected = expected_dialout(usage.dialout, frm, to)
    assert len(expected) == DIALOUT_CROWD + 7
    assert [len(p.value) for p in pages] == [PAGE, len(expected) - PAGE]
    assert [p.odata_count for p in pages] == [len(p.value) for p in pages]
    check_dialout_entries([e for p in pages for e in p.value], expected)
    top = run(builder.get(config(DialoutQ(top=3))))
    assert len(top.value) == 3 and top.odata_next_link is None


def test_dialout_report_range_limits(server, beta_client, run):
    """Graph beta (as getPstnCalls): a range longer than 90 days, or to before from, answers 400 BadRequest as
    msgraph_beta's ODataError; exactly 90 days is allowed."""
    end = server.usage.day_end
    err = odata_error(run, dialout(beta_client, end - dt.timedelta(days=91), end).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest", err.error
    err = odata_error(run, dialout(beta_client, end, end - dt.timedelta(days=1)).get())
    assert err.response_status_code == 400 and err.error.code == "BadRequest"
    assert run(dialout(beta_client, end - dt.timedelta(days=90), end).get()).odata_count == PAGE


def test_dialout_day_sent_again_is_not_counted_twice(server, beta_client, run):
    """Our ingest (not Graph): a day entry sent again for the same user, location, context and currency is
    acknowledged without a second copy: the sums stay those of the days ingested."""
    usage = server.usage
    r = http("POST", server.root + "/ingest/pstnOnlineMeetingDialoutReport",
             body=encode_json(usage.dialout[0]).encode(), headers={"Content-Type": "application/json"})
    assert r.status in (200, 201, 202), r.body[:500]
    report = r.json()
    assert report["stored"] == 0 and report["rejected"] == 0, report
    assert report["replaced"] + report["ignored"] == 1, report
    page = run(dialout(beta_client, usage.day_start, usage.day_end).get())
    check_dialout_entries(page.value, expected_dialout(usage.dialout, usage.day_start, usage.day_end))


# --------------------------------------------------------------------------- beta-only row properties


def test_beta_pstn_rows_carry_beta_properties(server, beta_client, run):
    """Graph beta: getPstnCalls through msgraph-beta-sdk gives its PstnCallLogRow (a CallLogRow) with beta's
    administrativeUnitInfos, otherPartyCountryCode and client IP addresses as ingested; rows sent without them
    (or with null and []) have them null and administrativeUnitInfos []; v1.0's properties as on v1.0."""
    usage = server.usage
    builder = beta_pstn(beta_client, usage.day_start, usage.day_end)
    first = run(builder.get())
    assert isinstance(first, BetaPstnResponse), type(first)
    assert first.additional_data["@odata.context"].startswith(server.root + "/beta/$metadata#")
    pages = follow(run, builder, first)
    rows = [r for p in pages for r in p.value]
    assert len(rows) == PSTN_ROWS
    assert all(link.startswith(server.root + "/beta/") for link in (p.odata_next_link for p in pages[:-1]))
    sent = usage.pstn_by_id
    carrying = 0
    for row in rows:
        assert isinstance(row, PstnCallLogRow) and isinstance(row, CallLogRow), type(row)
        want = sent[row.id]
        assert isinstance(row.administrative_unit_infos, list)
        assert all(isinstance(a, AdministrativeUnitInfo) for a in row.administrative_unit_infos)
        assert [a.id for a in row.administrative_unit_infos] == [a["id"] for a in want.get("administrativeUnitInfos", [])]
        for attr, key in (("other_party_country_code", "otherPartyCountryCode"),
                          ("client_local_ip_v4_address", "clientLocalIpV4Address"),
                          ("client_local_ip_v6_address", "clientLocalIpV6Address"),
                          ("client_public_ip_v4_address", "clientPublicIpV4Address"),
                          ("client_public_ip_v6_address", "clientPublicIpV6Address")):
            assert getattr(row, attr) == want.get(key), (row.id, attr)
        carrying += want.get("clientPublicIpV4Address") is not None
        assert row.start_date_time == to_python_datetime(want["startDateTime"])
        assert row.call_duration_source == PstnCallDurationSource(want["callDurationSource"])
        assert row.charge == pytest.approx(float(want["charge"]))
        assert (row.user_id, row.call_id, row.destination_context) == (
            want["userId"], want["callId"], want["destinationContext"])
        assert not row.additional_data, row.additional_data
    assert carrying == PSTN_ROWS // 10
    assert sum(len(r.administrative_unit_infos) > 1 for r in rows) > 0


def test_beta_direct_routing_rows_carry_beta_properties(server, beta_client, run):
    """Graph beta: getDirectRoutingCalls through msgraph-beta-sdk gives its DirectRoutingLogRow (a CallLogRow)
    with administrativeUnitInfos, otherPartyCountryCode, transferorCorrelationId and userCountryCode as ingested,
    null (and []) on rows sent without them."""
    usage = server.usage
    page = run(beta_direct(beta_client, usage.day_start, usage.day_end).get())
    assert page.odata_next_link is None and len(page.value) == len(usage.direct)
    sent = {r["id"]: r for r in usage.direct}
    for row in page.value:
        assert isinstance(row, DirectRoutingLogRow) and isinstance(row, CallLogRow), type(row)
        want = sent[row.id]
        assert [a.id for a in row.administrative_unit_infos] == [a["id"] for a in want.get("administrativeUnitInfos", [])]
        assert row.other_party_country_code == want.get("otherPartyCountryCode")
        assert row.transferor_correlation_id == want.get("transferorCorrelationId")
        assert row.user_country_code == want.get("userCountryCode")
        assert row.final_sip_code == want["finalSipCode"] and row.successful_call is want["successfulCall"]
        assert not row.additional_data, row.additional_data
    assert sum(r.transferor_correlation_id is not None for r in page.value) == len(
        [j for j in range(len(usage.direct)) if j % 4 == DIRECT_BETA])


@pytest.mark.parametrize("fn,row_type,extra", [("getPstnCalls", "pstnCallLogRow", PSTN_EXTRA),
                                                ("getDirectRoutingCalls", "directRoutingLogRow", DIRECT_EXTRA)],
                         ids=["pstn", "directRouting"])
def test_v1_rows_have_no_beta_properties(server, fn, row_type, extra):
    """Graph v1.0: the same rows under /v1.0 carry none of beta's properties on the wire, whether they were
    ingested with them or not: every row has the same members, in the same order, those v1.0's CSDL declares;
    under /beta every row has those of beta's CSDL."""
    usage = server.usage
    a, b = usage.day.isoformat(), (usage.day + dt.timedelta(days=1)).isoformat()
    path = f"/communications/callRecords/{fn}(fromDateTime={a},toDateTime={b})"
    v1_rows, _ = raw_rows(server.url(path))
    beta_rows, _ = raw_rows(server.root + "/beta" + path)
    assert len(v1_rows) == len(beta_rows) == (PSTN_ROWS if fn == "getPstnCalls" else len(usage.direct))
    shapes = {tuple(row) for row in v1_rows}
    assert len(shapes) == 1, shapes
    (shape,) = shapes
    assert not set(extra) & set(shape), set(extra) & set(shape)
    assert set(shape) == set(get_csdl(server.url("/$metadata")).properties(row_type))
    beta_shapes = {tuple(row) for row in beta_rows}
    assert len(beta_shapes) == 1 and set(next(iter(beta_shapes))) == set(shape) | set(extra)
    assert set(next(iter(beta_shapes))) == set(get_csdl(server.root + "/beta/$metadata").properties(row_type))
    by_id = {row["id"]: row for row in beta_rows}
    for row in v1_rows:
        assert {k: v for k, v in by_id[row["id"]].items() if k not in extra} == row, row["id"]


def test_v1_sdk_reads_rows_that_carry_beta_properties(server, client, run):
    """Graph v1.0: msgraph-sdk reads Direct Routing rows ingested with beta's properties as before, nothing of
    them in additional_data."""
    usage = server.usage
    page = run(client.communications.call_records
               .microsoft_graph_call_records_get_direct_routing_calls_with_from_date_time_with_to_date_time(
                   usage.day_start, usage.day_end).get())
    with_beta = {r["id"] for r in usage.direct if r.get("transferorCorrelationId")}
    assert with_beta
    for row in page.value:
        assert isinstance(row, V1DirectRoutingLogRow)
        assert not row.additional_data, (row.id, row.additional_data)
    assert with_beta <= {r.id for r in page.value}
