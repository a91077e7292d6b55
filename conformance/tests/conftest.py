"""Session fixtures for the msgraph-sdk conformance suite.

One `callrecords serve` process is started for the whole session on a free loopback port, with a fresh
SQLite file in a temp dir, as Graph is reached: over HTTPS (`--tls self-signed`; clients trust the CA the
server prints) and with application tokens (`--auth local`): the SDK clients get theirs from the server's
token endpoint with the client credentials of an app registered by `callrecords apps add`, and the raw
urllib helpers send one made by `callrecords token`.  It is loaded over HTTP with the generator's NDJSON output plus one
handcrafted record (tests/data/handcrafted_record.json) and a copy of it whose media measures are Graph's
"NaN"/"INF"/"-INF" strings (`special_floats_record`), then with handcrafted usage-log rows (2,500
pstnCallLogRows, 50 directRoutingLogRows, 20 beta smsLogRows, all on yesterday UTC, some PSTN and Direct
Routing rows with beta's extra properties; see `build_usage_logs`), 1,010 beta pstnBlockedUsersLogRows
(`build_blocked_users`) and beta pstnOnlineMeetingDialoutReport day entries on the last five days
(`build_dialout_report`).  The tests talk to it through the official Python SDKs (msgraph-sdk 1.65.0 for
v1.0, msgraph-beta-sdk for /beta) and, for cross-checks, through plain urllib.

Environment:
  CALLRECORDS_BIN         server binary (default: <repo>/target/debug/callrecords)
  CALLRECORDS_SERVE_ARGS  extra arguments appended to `serve` (shell-split), e.g. to relax throttling
  CALLRECORDS_CONFORMANCE_DB  the store to serve from (default: a fresh SQLite file); must be empty
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import uuid
from decimal import Decimal
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph import graph_request_adapter as v1_adapter_module
from msgraph_beta import GraphRequestAdapter as BetaGraphRequestAdapter
from msgraph_beta import GraphServiceClient as BetaGraphServiceClient
from msgraph_beta import graph_request_adapter as beta_adapter_module
from msgraph_core import APIVersion

import support
from support import LocalTokenProvider, close_graph_http_client, WebhookReceiver, graph_http_client, http, raw_collect

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / "data"
# --until is pinned: the generator's output depends on it (default: the start of the current UTC day), and
# on some days seed 42 yields no call with more than 60 sessions (2026-11-23: 48 at most), which the
# session-paging tests need (`big_record`).  With --until 2026-11-22 the largest has 115.  The serve
# runs with --retention-days 0, so the records stay visible however old they get.
GENERATE_ARGS = ["--calls", "300", "--seed", "42", "--days", "20", "--until", "2026-11-22T00:00:00Z"]

_server_log: Optional[Path] = None

# The tenant the suite's data and tokens belong to, and the roles of the app the SDK clients act as.
TENANT = "0c0ffee0-5eed-4c0d-9e00-000000000042"
SDK_ROLES = "CallRecords.Read.All,CallRecord-PstnCalls.Read.All"
# The raw helpers also ingest.
RAW_ROLES = SDK_ROLES + ",CallRecords.Ingest"


# --------------------------------------------------------------------------- server lifecycle


@dataclass
class Server:
    root: str
    base_url: str
    tmpdir: Path
    log_path: Path
    generated_ids: set[str]
    generated_lines: int
    handcrafted: dict
    ingest_reports: list[dict]
    usage: "UsageLogs"
    ca_file: str
    client_id: str
    client_secret: str
    db_url: str
    binary: Path
    # The handcrafted record's copy with "NaN"/"INF"/"-INF" measures, as sent (`special_floats_record`).
    special_floats: dict = field(default_factory=dict)
    # Generated records whose NDJSON line carries "NaN" (a degradation the generator could not compute),
    # smallest line first.
    generated_nan_ids: list[str] = field(default_factory=list)
    # Call records that tests ingest later (test_subscriptions.py), so that totals stay right in any order.
    extra_ids: set[str] = field(default_factory=set)

    @property
    def all_ids(self) -> set[str]:
        ids = self.generated_ids | {self.handcrafted["id"]} | self.extra_ids
        return ids | {self.special_floats["id"]} if self.special_floats else ids

    def url(self, path: str) -> str:
        return self.base_url + path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_DT_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T.*)$")


def _shift_dates(value: Any, days: int, key: str = "") -> Any:
    """Move every *DateTime string by whole days, keeping time of day and all fraction digits."""
    if isinstance(value, dict):
        return {k: _shift_dates(v, days, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_dates(v, days, key) for v in value]
    if isinstance(value, str) and key.endswith("DateTime"):
        m = _DT_RE.match(value)
        if m:
            d = dt.date.fromisoformat(m.group(1)) + dt.timedelta(days=days)
            return d.isoformat() + m.group(2)
    return value


def load_handcrafted() -> dict:
    """The Get callRecord docs example, moved so that it started yesterday (UTC): inside any retention window."""
    rec = json.loads((DATA_DIR / "handcrafted_record.json").read_text())
    original = dt.date.fromisoformat(rec["startDateTime"][:10])
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    return _shift_dates(rec, (yesterday - original).days)


# A copy of the handcrafted record (fixed id) whose Edm.Single media measures are the strings Graph sends for
# values that are not numbers.  It starts three days ago, so that no test's window on the handcrafted record
# (yesterday) meets it.
SPECIAL_FLOATS_ID = "0badf10a-7e57-4000-8000-00000000f10a"


def special_floats_record() -> dict:
    """The handcrafted record, moved two more days back, with "NaN", "INF" and "-INF" in its streams,
    devices and a network (Edm.Single), next to ordinary numbers."""
    rec = _shift_dates(load_handcrafted(), -2)
    rec["id"] = SPECIAL_FLOATS_ID
    media = rec["sessions"][0]["segments"][0]["media"][0]
    s0, s1 = media["streams"]
    s0.update(averageAudioDegradation="NaN", averagePacketLossRate="INF", averageRatioOfConcealedSamples="-INF")
    s1.update(averageAudioDegradation="-INF", averagePacketLossRate="NaN", averageRatioOfConcealedSamples="INF",
              maxPacketLossRate="NaN")
    media["callerDevice"].update(micGlitchRate="NaN", speakerGlitchRate="-INF")
    media["calleeDevice"].update(micGlitchRate="INF")
    media["callerNetwork"].update(sentQualityEventRatio="INF")
    return rec


def _ingest(root: str, body: bytes, content_type: str) -> dict:
    r = http("POST", root + "/ingest/callRecords", body=body, headers={"Content-Type": content_type}, timeout=600)
    assert r.status in (200, 201, 202), f"ingest ({content_type}) -> {r.status}: {r.body[:2000]!r}"
    report = r.json()
    assert report.get("rejected") == 0, f"ingest rejected records: {json.dumps(report)[:4000]}"
    return report


# --------------------------------------------------------------------------- usage-log rows

_ROW_NS = uuid.UUID("7d0c3a52-6a8e-4f43-9e0b-2f1d7c6b5a10")  # fixed: ids are the same on every run
PSTN_ROWS = 2500          # 3 pages of 1,000
PSTN_STEP_S = 34          # 2,500 x 34 s < 1 day
PSTN_TIE = range(995, 1005)  # these rows share row 995's startDateTime: page 1 ends inside the tie
PSTN_BOUNDARY = 1234      # a row with a unique start (fraction .5 s) for the [from, to) checks
DIRECT_ROWS = 50
SMS_ROWS = 20
# Beta's extra properties: PSTN rows i % 10 == 3 and Direct Routing rows j % 4 == 1 carry them, rows i % 10 == 8
# and j % 4 == 3 send them as null and [], the others leave them out.
PSTN_BETA, PSTN_BETA_NULL = 3, 8
DIRECT_BETA, DIRECT_BETA_NULL = 1, 3
BLOCKED_ROWS = 1010       # 2 pages of 1,000
BLOCKED_STEP_S = 80       # 1,010 x 80 s < 1 day
BLOCKED_TIE = range(995, 1005)  # these rows share row 995's blockDateTime: page 1 ends inside the tie
BLOCKED_DUPLICATE = 5     # this row is sent twice (the NDJSON body ends with it again)
DIALOUT_CROWD = 1005      # users with one dial-out day each, three days before yesterday: 2 pages of entries


def row_id(kind: str, i: int) -> str:
    return str(uuid.uuid5(_ROW_NS, f"{kind}-{i}"))


def _ts(value: dt.datetime) -> str:
    """Graph's wire form: UTC, 7 fraction digits, `Z`."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def encode_json(value: Any) -> str:
    """Compact JSON in which a Decimal is written as its own text (`Decimal("0.00")` -> `0.00`), so scale is sent;
    always in positional notation (`Decimal("1E-9")` -> `0.000000001`), as Edm.Decimal JSON has it."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + encode_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _user(n: int) -> tuple[str, str, str]:
    names = ["Richard Malk", "Zoë Ångström", "O'Brien, Pat", "Adele Vance", "Megan Bowen", "Lee Gu", "Nestor Wilke"]
    name = names[n % len(names)] + ("" if n < len(names) else f" {n}")
    return str(uuid.uuid5(_ROW_NS, f"user-{n}")), f"user{n}@contoso.com", name


@dataclass
class UsageLogs:
    day: dt.date                 # yesterday (UTC): every row starts on it
    pstn: list[dict]             # as sent (money as Decimal), in ingest order
    direct: list[dict]
    sms: list[dict]
    blocked: list[dict]          # pstnBlockedUsersLogRows (no id; remediationId tells them apart)
    dialout: list[dict]          # dial-out day entries, with their ingest-only usageDate
    reports: dict[str, list[dict]]

    @property
    def day_start(self) -> dt.datetime:
        return dt.datetime(self.day.year, self.day.month, self.day.day, tzinfo=dt.timezone.utc)

    @property
    def day_end(self) -> dt.datetime:
        return self.day_start + dt.timedelta(days=1)

    @property
    def pstn_by_id(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.pstn}

    @property
    def blocked_by_remediation(self) -> dict[str, dict]:
        return {r["remediationId"]: r for r in self.blocked}

    @property
    def charged_pstn_ids(self) -> set[str]:
        return {r["id"] for r in self.pstn if r["charge"] == Decimal("1.37")}


def build_usage_logs(day: dt.date) -> tuple[list[dict], list[dict], list[dict]]:
    """Deterministic rows with every property of pstnCallLogRow / directRoutingLogRow (CSDL) and beta smsLogRow."""
    start0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    call_types = ["user_in", "user_out", "user_out_transfer", "conf_in", "conf_out", "user_in_transfer"]

    pstn = []
    for i in range(PSTN_ROWS):
        base = PSTN_TIE.start if i in PSTN_TIE else i
        start = start0 + dt.timedelta(seconds=base * PSTN_STEP_S, milliseconds=250 * (base % 4))
        duration = 30 + (i * 37) % 900
        operator = i % 3 == 0
        call_type = call_types[i % len(call_types)]
        if i % 250 == 17:       # 10 rows: a real charge, and a zero connection charge that keeps its scale
            charge, connection = Decimal("1.37"), Decimal("0.00")
        elif i % 500 == 101:    # 5 rows: other scales
            charge, connection = Decimal("12.5"), Decimal("0.10")
        else:
            charge, connection = Decimal("0.00"), Decimal("0.00")
        uid, upn, name = _user(i % 40)
        international = i % 7 == 0
        pstn.append({
            "id": row_id("pstn", i),
            "callId": f"{1835317186 + i}_{112562680 + i}@61.221.3.176",
            "userId": uid,
            "userPrincipalName": upn,
            "userDisplayName": name,
            "startDateTime": _ts(start),
            "endDateTime": _ts(start + dt.timedelta(seconds=duration)),
            "duration": duration,
            "charge": charge,
            "callType": call_type,
            "currency": "USD",
            "calleeNumber": f"+1425555{i % 10000:04d}",
            "usageCountryCode": "US",
            "tenantCountryCode": "US",
            "connectionCharge": connection,
            "callerNumber": f"+1206555{(i * 7) % 10000:04d}",
            "destinationContext": ("International" if international else "Domestic") if "out" in call_type else None,
            "destinationName": "Germany" if international else "United States",
            "conferenceId": f"{100000 + i}" if call_type.startswith("conf") else None,
            "licenseCapability": "MCOPSTNEAU2" if operator else "MCOPSTNU",
            "inventoryType": "Service" if operator else "Subscriber",
            "operator": "Contoso Telecom" if operator else "Microsoft",
            "callDurationSource": "operator" if operator else "microsoft",
        })
        if i % 10 == PSTN_BETA:
            pstn[-1].update({
                "administrativeUnitInfos": [{"id": str(uuid.uuid5(_ROW_NS, f"au-{n}"))} for n in range(1 + i % 3)],
                "otherPartyCountryCode": "DE" if international else "US",
                "clientLocalIpV4Address": f"192.168.{i % 256}.{1 + i % 200}",
                "clientLocalIpV6Address": f"fd00::{i:x}",
                "clientPublicIpV4Address": f"203.0.113.{i % 256}",
                "clientPublicIpV6Address": f"2001:db8::{i:x}",
            })
        elif i % 10 == PSTN_BETA_NULL:
            pstn[-1].update(administrativeUnitInfos=[], otherPartyCountryCode=None, clientLocalIpV4Address=None,
                            clientLocalIpV6Address=None, clientPublicIpV4Address=None,
                            clientPublicIpV6Address=None)

    direct = []
    for j in range(DIRECT_ROWS):
        kind = j % 5
        invite = start0 + dt.timedelta(seconds=600 + j * 1703, microseconds=123456 * (j % 3))
        uid, upn, name = _user(j % 9)
        row = {
            "id": row_id("direct", j),
            "correlationId": str(uuid.uuid5(_ROW_NS, f"correlation-{j}")),
            "userId": uid,
            "userPrincipalName": upn,
            "userDisplayName": name,
            "startDateTime": None,
            "inviteDateTime": _ts(invite),
            "failureDateTime": None,
            "endDateTime": None,
            "duration": 0,
            "callType": ["ByotIn", "ByotOut", "ByotOutUserForwarding", "ByotOutUserTransfer"][j % 4],
            "successfulCall": kind < 3,
            "callerNumber": f"+4930555{j:04d}",
            "calleeNumber": f"+4989555{(j * 3) % 10000:04d}",
            "mediaBypassEnabled": j % 2 == 0,
            "finalSipCode": 200,
            "finalSipCodePhrase": "BYE",
            "callEndSubReason": 540200,
            "trunkFullyQualifiedDomainName": f"sbc{1 + j % 2}.contoso.com",
            "mediaPathLocation": "EUWE",
            "signalingLocation": "EUNO",
        }
        if kind < 3:        # answered, ended normally
            start = invite + dt.timedelta(seconds=3)
            duration = 45 + j * 11
            row.update(startDateTime=_ts(start), endDateTime=_ts(start + dt.timedelta(seconds=duration)),
                       duration=duration)
        else:               # 486 Busy Here / 487 Request Terminated: fails before answer
            failed = invite + dt.timedelta(seconds=7)
            row.update(startDateTime=_ts(invite), failureDateTime=_ts(failed),
                       finalSipCode=486 if kind == 3 else 487,
                       finalSipCodePhrase="Busy Here" if kind == 3 else "Request Terminated",
                       callEndSubReason=560486 if kind == 3 else 540487)
        if j % 4 == DIRECT_BETA:
            row.update({
                "administrativeUnitInfos": [{"id": str(uuid.uuid5(_ROW_NS, f"au-{j % 2}"))}],
                "otherPartyCountryCode": "AT" if j % 3 else "DE",
                "transferorCorrelationId": str(uuid.uuid5(_ROW_NS, f"transferor-{j}")),
                "userCountryCode": "DE",
            })
        elif j % 4 == DIRECT_BETA_NULL:
            row.update(administrativeUnitInfos=[], otherPartyCountryCode=None, transferorCorrelationId=None,
                       userCountryCode=None)
        direct.append(row)

    sms = []
    for k in range(SMS_ROWS):
        sent = start0 + dt.timedelta(seconds=900 + k * 4000)
        outbound = k % 4 != 3
        units = 1 + k % 3
        uid, upn, name = _user(k % 5)
        sms.append({
            "id": row_id("sms", k),
            "smsId": f"SM{k:02d}" + uuid.uuid5(_ROW_NS, f"sms-{k}").hex[:30],
            "sentDateTime": _ts(sent),
            "smsType": "outbound" if outbound else "inbound",
            "smsUnits": units,
            "sourceNumber": "+1425555XXXX" if outbound else f"+44207946{k:04d}",
            "destinationNumber": f"+44207946{k:04d}" if outbound else "+1425555XXXX",
            "destinationContext": ("International" if k % 2 else "Domestic") if outbound else None,
            "destinationName": "United Kingdom" if outbound else "United States",
            "callCharge": Decimal("0.0075") * units if outbound else Decimal("0.00"),
            "currency": "USD",
            "licenseCapability": "MCOPSTNU",
            "otherPartyCountryCode": "GB",
            "tenantCountryCode": "US",
            "userCountryCode": "US",
            "userDisplayName": name,
            "userId": uid,
            "userPrincipalName": upn,
            "administrativeUnitInfos": [{"id": str(uuid.uuid5(_ROW_NS, f"au-{k % 2}"))}] if k % 3 == 0 else [],
        })
    return pstn, direct, sms


def build_blocked_users(day: dt.date) -> list[dict]:
    """Deterministic beta pstnBlockedUsersLogRows with every property, all on `day`: users blocked and let
    back in turn (one `unknownFutureValue`, one null blockReason), each with its own remediationId, which the
    tests use to tell rows apart (the type has no id)."""
    start0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    reasons = ["Fraud detected", "International calling policy", "Blocked by admin"]
    rows = []
    for i in range(BLOCKED_ROWS):
        base = BLOCKED_TIE.start if i in BLOCKED_TIE else i
        blocked = base % 3 != 2
        uid, upn, name = _user(i % 12)
        stamp = _ts(start0 + dt.timedelta(seconds=600 + base * BLOCKED_STEP_S, microseconds=123456 * (base % 3)))
        if base % 7 == 1:   # 7 fraction digits, as Graph writes them
            stamp = stamp[:-2] + "7Z"
        rows.append({
            "blockDateTime": stamp,
            "blockReason": (reasons[i % 3] if blocked else "Remediation completed") if i != 11 else None,
            "remediationId": str(uuid.uuid5(_ROW_NS, f"remediation-{i}")),
            "userBlockMode": "unknownFutureValue" if i == 7 else ("blocked" if blocked else "unblocked"),
            "userDisplayName": name,
            "userId": uid,
            "userPrincipalName": upn,
            "userTelephoneNumber": f"+1425555{i:04d}",
        })
    return rows


# Handcrafted dial-out days: (days before `day`, user, usageLocation, destinationContext, currency, totalCalls,
# totalCallSeconds, totalCallCharge as text).  Several days of one user, location, context and currency sum
# into one entry; money is Edm.Decimal and sums exactly, keeping the larger scale.
DIALOUT_DAYS = [
    (0, 0, "US", "Domestic", "USD", 3, 420, "1.10"),
    (1, 0, "US", "Domestic", "USD", 2, 185, "0.255"),
    (4, 0, "US", "Domestic", "USD", 7, 900, "4.00"),
    (0, 0, "US", "International", "USD", 1, 60, "0.90"),
    (0, 1, "GB", "Domestic", "GBP", 4, 300, "0.1"),
    (1, 1, "GB", "Domestic", "GBP", 1, 20, "0.2"),
    (1, 1, "US", "Domestic", "USD", 1, 45, "0.50"),
    (2, 1, "US", "Domestic", "USD", 1, 15, "0.5"),
    (0, 2, "DE", "International", "EUR", 2, 130, "0.00"),
    (2, 2, "DE", "International", "EUR", 1, 40, "0.000"),
    (1, 3, "JP", "Domestic", "JPY", 5, 600, "123456789.123456789"),
    (2, 3, "JP", "Domestic", "JPY", 1, 1, "0.000000001"),
    (0, 4, "FR", "Domestic", "EUR", 1, 30, "1.5"),
    (1, 4, "FR", "Domestic", "EUR", 0, 0, "0.000"),
]
DIALOUT_CROWD_OFFSET = 3


def build_dialout_report(day: dt.date) -> list[dict]:
    """Deterministic beta pstnOnlineMeetingDialoutReport entries, each the figures of one UTC day named by
    our ingest-only `usageDate`: DIALOUT_DAYS on `day` and the four days before it, then DIALOUT_CROWD
    users with one day each (three days before `day`), enough for two pages of entries."""
    rows = []

    def entry(offset: int, n: int, location: str, context: str, currency: str, calls: int, seconds: int,
              charge: str) -> dict:
        uid, upn, name = _user(n)
        return {"usageDate": (day - dt.timedelta(days=offset)).isoformat(), "currency": currency,
                "destinationContext": context, "totalCallCharge": Decimal(charge), "totalCalls": calls,
                "totalCallSeconds": seconds, "usageLocation": location, "userDisplayName": name, "userId": uid,
                "userPrincipalName": upn}

    for spec in DIALOUT_DAYS:
        rows.append(entry(*spec))
    for k in range(DIALOUT_CROWD):
        rows.append(entry(DIALOUT_CROWD_OFFSET, 100 + k, "US", "International" if k % 4 == 0 else "Domestic",
                          "USD", 1 + k % 3, 30 + k % 500, f"0.{k % 100:02d}"))
    return rows


def _ingest_logs(root: str, kind: str, rows: list[dict], content_type: str) -> dict:
    if content_type == "application/json":
        assert len(rows) == 1
        body = encode_json(rows[0])
    else:
        body = "\n".join(encode_json(r) for r in rows) + "\n"
    r = http("POST", f"{root}/ingest/{kind}", body=body.encode(), headers={"Content-Type": content_type}, timeout=600)
    assert r.status in (200, 201, 202), f"ingest {kind} ({content_type}) -> {r.status}: {r.body[:2000]!r}"
    report = r.json()
    assert report.get("rejected") == 0, f"ingest {kind} rejected rows: {json.dumps(report)[:4000]}"
    return report


def load_usage_logs(root: str) -> UsageLogs:
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    pstn, direct, sms = build_usage_logs(day)
    blocked = build_blocked_users(day)
    dialout = build_dialout_report(day)
    reports = {
        # One row as application/json first, then the rest as NDJSON, for each kind.
        "pstnCalls": [_ingest_logs(root, "pstnCalls", pstn[:1], "application/json"),
                      _ingest_logs(root, "pstnCalls", pstn[1:], "application/x-ndjson")],
        "directRoutingCalls": [_ingest_logs(root, "directRoutingCalls", direct[:1], "application/json"),
                               _ingest_logs(root, "directRoutingCalls", direct[1:], "application/x-ndjson")],
        "smsLogs": [_ingest_logs(root, "smsLogs", sms[:1], "application/json"),
                    _ingest_logs(root, "smsLogs", sms[1:], "application/x-ndjson")],
        # The NDJSON body ends with row BLOCKED_DUPLICATE once more: it is stored once.
        "pstnBlockedUsers": [_ingest_logs(root, "pstnBlockedUsers", blocked[:1], "application/json"),
                             _ingest_logs(root, "pstnBlockedUsers", blocked[1:] + [blocked[BLOCKED_DUPLICATE]],
                                          "application/x-ndjson")],
        "pstnOnlineMeetingDialoutReport": [
            _ingest_logs(root, "pstnOnlineMeetingDialoutReport", dialout[:1], "application/json"),
            _ingest_logs(root, "pstnOnlineMeetingDialoutReport", dialout[1:], "application/x-ndjson")],
    }
    return UsageLogs(day=day, pstn=pstn, direct=direct, sms=sms, blocked=blocked, dialout=dialout, reports=reports)


# --------------------------------------------------------------------------- the session server


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the server outlives its 30 s shutdown grace period."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    global _server_log
    binary = Path(os.environ.get("CALLRECORDS_BIN") or REPO_ROOT / "target" / "debug" / "callrecords")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"server binary not found or not executable: {binary} (build it or set CALLRECORDS_BIN)")

    tmpdir = tmp_path_factory.mktemp("callrecords")
    log_path = tmpdir / "server.log"
    _server_log = log_path
    port = _free_port()
    root = f"https://127.0.0.1:{port}"
    db_url = os.environ.get("CALLRECORDS_CONFORMANCE_DB") or f"sqlite://{tmpdir}/conf.db"
    tls_dir = tmpdir / "tls"
    cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--db", db_url, "--retention-days", "0",
           "--auth", "local", "--tls", "self-signed", "--tls-dir", str(tls_dir),
           # The webhook receivers are http:// on loopback (allowed by our choice; Graph wants HTTPS).
           "--allow-private-webhooks", "true",
           *shlex.split(os.environ.get("CALLRECORDS_SERVE_ARGS", ""))]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmpdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before /healthz answered.\n"
                            f"cmd: {shlex.join(cmd)}\n--- server log ---\n{_log_tail(log_path)}")
            try:
                # The CA is written before the server listens.
                if (tls_dir / "ca.pem").is_file():
                    support.configure(ca_file=str(tls_dir / "ca.pem"))
                    if http("GET", root + "/healthz", timeout=2, token=None).status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz not 200 within 30 s.\ncmd: {shlex.join(cmd)}\n"
                            f"--- server log ---\n{_log_tail(log_path)}")
            time.sleep(0.1)

        app = subprocess.run([str(binary), "apps", "add", "--tenant", TENANT, "--name", "conformance",
                              "--roles", SDK_ROLES, "--db", db_url], capture_output=True, text=True)
        assert app.returncode == 0, f"apps add: {app.stderr}"
        credentials = dict(re.findall(r"^(client_id|client_secret)\s+(\S+)$", app.stdout, re.M))
        raw_token = subprocess.run([str(binary), "token", "--tenant", TENANT, "--roles", RAW_ROLES,
                                    "--lifetime-secs", "14400", "--db", db_url], capture_output=True, text=True)
        assert raw_token.returncode == 0, f"token: {raw_token.stderr}"
        support.configure(token=raw_token.stdout.strip())

        gen = subprocess.run([str(binary), "generate", *GENERATE_ARGS], capture_output=True, timeout=300)
        if gen.returncode != 0:
            pytest.fail(f"`generate {' '.join(GENERATE_ARGS)}` exited {gen.returncode}: "
                        f"{gen.stderr.decode(errors='replace')[-2000:]}")
        lines = [ln for ln in gen.stdout.splitlines() if ln.strip()]
        assert lines, "generator printed nothing"
        generated_ids = {json.loads(ln)["id"] for ln in lines}
        generated_nan_ids = list(dict.fromkeys(json.loads(ln)["id"] for ln in sorted(lines, key=len)
                                               if b'"NaN"' in ln))

        reports = [_ingest(root, gen.stdout, "application/x-ndjson")]
        handcrafted = load_handcrafted()
        reports.append(_ingest(root, json.dumps(handcrafted).encode(), "application/json"))
        special = special_floats_record()
        stored = _ingest(root, json.dumps(special).encode(), "application/json")
        assert stored["stored"] == 1, stored
        usage = load_usage_logs(root)

        yield Server(root=root, base_url=root + "/v1.0", tmpdir=tmpdir, log_path=log_path,
                     generated_ids=generated_ids, generated_lines=len(lines),
                     handcrafted=handcrafted, ingest_reports=reports, usage=usage,
                     ca_file=str(tls_dir / "ca.pem"), client_id=credentials["client_id"],
                     client_secret=credentials["client_secret"], db_url=db_url, binary=binary,
                     special_floats=special, generated_nan_ids=generated_nan_ids)
    finally:
        stop_server(proc)
        log.close()


@pytest.fixture(scope="session")
def run() -> Callable:
    """Run a coroutine on one event loop shared by the whole session (the SDK's httpx client is loop-bound)."""
    runner = asyncio.Runner()
    yield runner.run
    runner.close()


@pytest.fixture(scope="session")
def token_provider(server: Server) -> LocalTokenProvider:
    return LocalTokenProvider(server.root, TENANT, server.client_id, server.client_secret)


@pytest.fixture(scope="session")
def adapter(server: Server, token_provider: LocalTokenProvider, run: Callable) -> GraphRequestAdapter:
    request_adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(token_provider),
                                          graph_http_client(APIVersion.v1, v1_adapter_module.options))
    request_adapter.base_url = server.base_url
    yield request_adapter
    run(close_graph_http_client(request_adapter._http_client))


@pytest.fixture(scope="session")
def client(adapter: GraphRequestAdapter) -> GraphServiceClient:
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture(scope="session")
def beta_adapter(server: Server, token_provider: LocalTokenProvider, run: Callable) -> BetaGraphRequestAdapter:
    """msgraph-beta-sdk's own adapter (its middleware is configured for APIVersion.beta)."""
    request_adapter = BetaGraphRequestAdapter(BaseBearerTokenAuthenticationProvider(token_provider),
                                              graph_http_client(APIVersion.beta, beta_adapter_module.options))
    request_adapter.base_url = server.root + "/beta"
    yield request_adapter
    run(close_graph_http_client(request_adapter._http_client))


@pytest.fixture(scope="session")
def beta_client(beta_adapter: BetaGraphRequestAdapter) -> BetaGraphServiceClient:
    return BetaGraphServiceClient(request_adapter=beta_adapter)


@pytest.fixture
def webhook() -> WebhookReceiver:
    """A fresh webhook receiver per test: stdlib ThreadingHTTPServer on 127.0.0.1, port picked by the OS."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def all_records(server: Server) -> list[dict]:
    """Every record as the list endpoint returns it, via urllib and default paging (cached)."""
    items, _ = raw_collect(server.url("/communications/callRecords"))
    return items


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _server_log is not None and (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        terminalreporter.write_sep("-", f"server log tail ({_server_log})")
        terminalreporter.write_line(_log_tail(_server_log, 40))
