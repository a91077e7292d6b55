"""The retired `callRecord.organizer`, `callRecord.participants` and `participantEndpoint.identity`
through msgraph-sdk 1.65.0.

Graph stopped filling them on 2026-06-30 (the CSDL marks them deprecated in favour of `organizer_v2`,
`participants_v2` and `associatedIdentity`): it serves `organizer` and `identity` as null and
`participants` as `[]`, while the successors keep their data.  The session server is checked for
that, although the handcrafted record was ingested with all three filled.

`serve --derive-retired-properties` fills them again at read, for apps still moving off them:
`organizer` is the identity set (user, application, device) of `organizer_v2.identity`,
`participants` the identity sets of the first 130 `participants_v2`, and a participant endpoint's
`identity` is `{"user": associatedIdentity}`.  This module starts its own server with that flag, as
test_auth_throttling.py does (`--auth local --tls self-signed`, a fresh SQLite file, a free loopback
port, the session server's CA directory), and ingests the handcrafted record plus a few built from it
(`derived_records`): organizers that are an application and a device, an endpoint without an
associated identity, and a call with 140 participants.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time

import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph import graph_request_adapter as v1_adapter_module
from msgraph.generated.communications.call_records.call_records_request_builder import CallRecordsRequestBuilder
from msgraph.generated.communications.call_records.item.call_record_item_request_builder import (
    CallRecordItemRequestBuilder,
)
from msgraph.generated.communications.call_records.item.sessions.sessions_request_builder import (
    SessionsRequestBuilder,
)
from msgraph.generated.models.call_records.participant_endpoint import ParticipantEndpoint
from msgraph.generated.models.identity_set import IdentitySet
from msgraph.generated.models.user_identity import UserIdentity
from msgraph_core import APIVersion

from conftest import _free_port, _log_tail, load_handcrafted, stop_server
from support import (HANDCRAFTED_ID, LocalTokenProvider, close_graph_http_client, get_json, graph_http_client, http,
                     raw_collect, sdk_collect)

ListQ = CallRecordsRequestBuilder.CallRecordsRequestBuilderGetQueryParameters
ItemQ = CallRecordItemRequestBuilder.CallRecordItemRequestBuilderGetQueryParameters
SessionsQ = SessionsRequestBuilder.SessionsRequestBuilderGetQueryParameters
ABBIE = "821809f5-0000-0000-0000-3b5136c0e777"
OWEN = "f69e2c00-0000-0000-0000-185e5f5f5d8a"

TENANT = "44444444-4444-4444-4444-444444444444"
SERVE_ARGS = ["--auth", "local", "--derive-retired-properties"]
# Records built from the handcrafted one for the derived-properties server (ids are fixed).
# organizer_v2 is an application, and the session's caller has no associatedIdentity:
APP_ORGANIZED = "c0ffee00-0000-4000-8000-0000000000a1"
DEVICE_ORGANIZED = "c0ffee00-0000-4000-8000-0000000000d1"  # organizer_v2 is a device
CROWDED = "c0ffee00-0000-4000-8000-000000000140"          # 140 participants_v2
APP_ID = "aaaaaaaa-0000-4000-8000-000000000001"
DEVICE_ID = "aaaaaaaa-0000-4000-8000-000000000002"
CROWD = 140
MAX_DERIVED_PARTICIPANTS = 130


def config(query=None) -> RequestConfiguration:
    return RequestConfiguration(query_parameters=query)


def endpoints_of(session) -> list:
    """The caller and callee of a session and of each of its segments."""
    found = [session.caller, session.callee]
    for segment in session.segments or []:
        found += [segment.caller, segment.callee]
    return [e for e in found if e is not None]


# --------------------------------------------------------------------------- the session server: retired


def test_retired_organizer_and_participants_are_null_and_empty(server, client, run):
    """MUST (Graph since 2026-06-30): callRecord.organizer is served null and participants as an empty
    collection, although the record was ingested with both filled; organizer_v2 keeps its data."""
    assert server.handcrafted["organizer"]["user"]["id"] == ABBIE and len(server.handcrafted["participants"]) == 2
    rec = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).get())
    assert rec.organizer is None
    assert rec.participants == []
    assert rec.organizer_v2 is not None and rec.organizer_v2.id == ABBIE
    assert rec.organizer_v2.identity.user.display_name == "Abbie Wilkins"
    # participants_v2 keeps both participants.
    v2 = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).participants_v2.get())
    assert {p.id for p in v2.value} == {ABBIE, OWEN}
    # On the wire both members are present: `null` and `[]`, not left out.
    raw = get_json(server.url(f"/communications/callRecords/{HANDCRAFTED_ID}"))
    assert "organizer" in raw and raw["organizer"] is None
    assert raw["participants"] == []


def test_retired_properties_on_list_items_and_when_selected(client, run, all_records):
    """MUST (Graph since 2026-06-30): every listed record, and $select=organizer,participants, gives
    organizer null and participants [] while organizer_v2 is still filled."""
    for r in all_records:
        assert r["organizer"] is None and r["participants"] == [], r["id"]
        assert r["organizer_v2"] and r["organizer_v2"]["id"], r["id"]
    page = run(client.communications.call_records.get(config(ListQ(select=["id", "organizer", "participants"],
                                                                       top=40))))
    assert len(page.value) == 40
    for r in page.value:
        assert r.id and r.organizer is None and r.participants == [], r.id


def test_retired_endpoint_identity_is_null(client, run, all_records):
    """MUST (Graph since 2026-06-30): participantEndpoint.identity is null on session and segment callers
    and callees, while associatedIdentity keeps the user (the handcrafted record was ingested with both)."""
    sessions = run(client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).sessions.get(
        config(SessionsQ(expand=["segments"])))).value
    assert len(sessions) == 1 and len(sessions[0].segments) == 1
    endpoints = endpoints_of(sessions[0])
    assert len(endpoints) == 4
    for endpoint in endpoints:
        assert isinstance(endpoint, ParticipantEndpoint), type(endpoint)
        assert endpoint.identity is None
    assert [e.associated_identity.id for e in endpoints] == [ABBIE, OWEN, ABBIE, OWEN]
    assert endpoints[1].associated_identity.display_name == "Owen Franklin"

    # A generated group call: the same for every participant endpoint in it.
    group = next(r["id"] for r in all_records if r["type"] == "groupCall")
    rec = run(client.communications.call_records.by_call_record_id(group).get(
        config(ItemQ(expand=["sessions($expand=segments)"]))))
    participants = [e for s in rec.sessions for e in endpoints_of(s) if isinstance(e, ParticipantEndpoint)]
    assert participants, f"{group}: no participant endpoints"
    assert all(e.identity is None for e in participants)
    assert any(e.associated_identity is not None for e in participants)


# --------------------------------------------------------------------------- a server deriving them


def _identity_set(kind: str, ident_id: str, name: str) -> dict:
    return {kind: {"id": ident_id, "displayName": name}}


def derived_records() -> list[dict]:
    """The handcrafted record (retired properties filled as ingested) and three built from it, without
    organizer and participants so that nothing but the _v2 forms can feed the derived values."""
    hand = load_handcrafted()

    def variant(record_id: str) -> dict:
        rec = copy.deepcopy(hand)
        rec["id"] = record_id
        del rec["organizer"], rec["participants"]
        return rec

    app = variant(APP_ORGANIZED)
    app["organizer_v2"] = {"id": APP_ID, "identity": _identity_set("application", APP_ID, "The application"),
                           "administrativeUnitInfos": []}
    app["participants_v2"] = [copy.deepcopy(app["organizer_v2"]), hand["participants_v2"][1]]
    session = app["sessions"][0]
    for endpoint in (session["caller"], session["segments"][0]["caller"]):
        endpoint.pop("identity")
        endpoint["associatedIdentity"] = None

    device = variant(DEVICE_ORGANIZED)
    device["organizer_v2"] = {"id": DEVICE_ID, "identity": _identity_set("device", DEVICE_ID, "The device"),
                              "administrativeUnitInfos": []}

    crowded = variant(CROWDED)
    template = hand["participants_v2"][1]
    crowd = []
    for i in range(CROWD):
        p = copy.deepcopy(template)
        uid = f"00000000-0000-4000-8000-{i:012d}"
        p["id"] = uid
        p["identity"]["user"].update(id=uid, displayName=f"Attendee {i:03d}", userPrincipalName=f"a{i:03d}@contoso.com")
        p["administrativeUnitInfos"] = []
        crowd.append(p)
    crowded["participants_v2"] = crowd
    return [hand, app, device, crowded]


def _up(root: str) -> bool:
    try:
        return http("GET", root + "/healthz", timeout=2, token=None).status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def deriving(server, tmp_path_factory: pytest.TempPathFactory):
    """A second `callrecords serve --derive-retired-properties` with the records of `derived_records`."""
    binary = server.binary
    tmpdir = tmp_path_factory.mktemp("deriving")
    db = f"sqlite://{tmpdir}/deriving.db"
    port = _free_port()
    root = f"https://127.0.0.1:{port}"
    log_path = tmpdir / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--db", db,
                             "--retention-days", "0", "--tls", "self-signed",
                             "--tls-dir", str(server.tmpdir / "tls"), *SERVE_ARGS],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _up(root):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"deriving server did not start\n{_log_tail(log_path)}")
            time.sleep(0.2)
        app = subprocess.run([str(binary), "apps", "add", "--tenant", TENANT, "--name", "conformance",
                              "--roles", "CallRecords.Read.All", "--db", db],
                             capture_output=True, text=True, check=True)
        fields = dict(re.findall(r"^(client_id|client_secret)\s+(\S+)$", app.stdout, re.M))
        token = subprocess.run([str(binary), "token", "--tenant", TENANT,
                                "--roles", "CallRecords.Read.All,CallRecords.Ingest", "--db", db],
                               capture_output=True, text=True, check=True).stdout.strip()
        records = derived_records()
        body = "\n".join(json.dumps(r) for r in records).encode() + b"\n"
        stored = http("POST", root + "/ingest/callRecords", body,
                      {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {token}"})
        assert stored.status == 200, stored.body
        report = stored.json()
        assert report["stored"] == len(records) and report["rejected"] == 0, report
        yield {"root": root, "client_id": fields["client_id"], "client_secret": fields["client_secret"],
               "token": token, "records": {r["id"]: r for r in records}}
    finally:
        stop_server(proc)
        log.close()


@pytest.fixture(scope="module")
def deriving_adapter(deriving, run) -> GraphRequestAdapter:
    provider = LocalTokenProvider(deriving["root"], TENANT, deriving["client_id"], deriving["client_secret"])
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider),
                                  graph_http_client(APIVersion.v1, v1_adapter_module.options))
    adapter.base_url = deriving["root"] + "/v1.0"
    yield adapter
    run(close_graph_http_client(adapter._http_client))


@pytest.fixture(scope="module")
def deriving_client(deriving_adapter) -> GraphServiceClient:
    return GraphServiceClient(request_adapter=deriving_adapter)


def test_derived_organizer_is_the_identity_set_of_organizer_v2(deriving_client, run):
    """--derive-retired-properties: organizer is served as Graph served it before 2026-06-30, an
    identitySet with the user, application or device of organizer_v2.identity."""
    rec = run(deriving_client.communications.call_records.by_call_record_id(HANDCRAFTED_ID).get())
    assert isinstance(rec.organizer, IdentitySet), type(rec.organizer)
    user = rec.organizer.user
    assert isinstance(user, UserIdentity), type(user)
    assert user.id == rec.organizer_v2.identity.user.id == ABBIE
    assert user.display_name == "Abbie Wilkins"
    # The ingested organizer had no userPrincipalName; organizer_v2 has it, so this comes from organizer_v2.
    assert user.user_principal_name == "abbie.wilkins@contoso.com"
    assert str(user.additional_data.get("tenantId")) == "dc368399-474c-4d40-900c-6265431fd81f"
    assert rec.organizer.application is None and rec.organizer.device is None

    app = run(deriving_client.communications.call_records.by_call_record_id(APP_ORGANIZED).get())
    assert app.organizer.user is None and app.organizer.device is None
    assert app.organizer.application.id == APP_ID
    assert app.organizer.application.display_name == "The application"

    device = run(deriving_client.communications.call_records.by_call_record_id(DEVICE_ORGANIZED).get())
    assert device.organizer.user is None and device.organizer.application is None
    assert device.organizer.device.id == DEVICE_ID
    assert device.organizer.device.display_name == "The device"


def test_derived_organizer_on_list_items(deriving, deriving_client, run):
    """--derive-retired-properties: listed records carry the derived organizer and participants too,
    also with $select=organizer,participants."""
    page = run(deriving_client.communications.call_records.get(
        config(ListQ(select=["id", "organizer", "participants"]))))
    by_id = {r.id: r for r in page.value}
    assert set(by_id) == set(deriving["records"])
    assert by_id[HANDCRAFTED_ID].organizer.user.id == ABBIE
    assert [p.user.id for p in by_id[HANDCRAFTED_ID].participants] == [ABBIE, OWEN]
    assert by_id[APP_ORGANIZED].organizer.application.id == APP_ID
    assert by_id[DEVICE_ORGANIZED].organizer.device.id == DEVICE_ID
    assert len(by_id[CROWDED].participants) == MAX_DERIVED_PARTICIPANTS


def test_derived_participants_are_the_identity_sets_of_participants_v2(deriving_client, run):
    """--derive-retired-properties: participants is served as Graph served it before 2026-06-30, the
    identity sets of participants_v2 in their order."""
    builder = deriving_client.communications.call_records.by_call_record_id(HANDCRAFTED_ID)
    rec = run(builder.get())
    v2 = run(builder.participants_v2.get()).value
    assert all(isinstance(p, IdentitySet) for p in rec.participants)
    assert [p.user.id for p in rec.participants] == [p.identity.user.id for p in v2]
    assert {p.user.id for p in rec.participants} == {ABBIE, OWEN}
    owen = next(p.user for p in rec.participants if p.user.id == OWEN)
    assert isinstance(owen, UserIdentity) and owen.display_name == "Owen Franklin"
    assert owen.user_principal_name == "owen.franklin@contoso.com"

    app = run(deriving_client.communications.call_records.by_call_record_id(APP_ORGANIZED).get())
    assert app.participants[0].application.id == APP_ID and app.participants[0].user is None
    assert app.participants[1].user.id == OWEN


def test_derived_participants_stop_at_130(deriving, deriving_client, deriving_adapter, run):
    """--derive-retired-properties: Graph's participants held at most 130 entries; a call with 140
    participants_v2 lists all 140 there and the first 130 of them in participants."""
    builder = deriving_client.communications.call_records.by_call_record_id(CROWDED)
    paged = run(sdk_collect(run(builder.participants_v2.get()), deriving_adapter))
    listed = [p.id for p in paged.items]
    assert len(listed) == len(set(listed)) == CROWD
    rec = run(builder.get())
    derived = [p.user.id for p in rec.participants]
    assert len(derived) == MAX_DERIVED_PARTICIPANTS
    assert len(set(derived)) == MAX_DERIVED_PARTICIPANTS
    assert derived == listed[:MAX_DERIVED_PARTICIPANTS]
    assert rec.participants[0].user.display_name == "Attendee 000"
    # Raw cross-check: the same 130 on the wire.
    raw = get_json(deriving["root"] + f"/v1.0/communications/callRecords/{CROWDED}",
                   {"Authorization": f"Bearer {deriving['token']}"})
    assert [p["user"]["id"] for p in raw["participants"]] == derived


def test_derived_endpoint_identity_is_the_associated_identity(deriving, deriving_client, run):
    """--derive-retired-properties: participantEndpoint.identity is served as {"user": associatedIdentity}
    on session and segment callers and callees, and null where associatedIdentity is null."""
    builder = deriving_client.communications.call_records.by_call_record_id(HANDCRAFTED_ID)
    sessions = run(builder.sessions.get(config(SessionsQ(expand=["segments"])))).value
    endpoints = endpoints_of(sessions[0])
    assert len(endpoints) == 4
    for endpoint in endpoints:
        assert isinstance(endpoint, ParticipantEndpoint), type(endpoint)
        assert isinstance(endpoint.identity, IdentitySet), type(endpoint.identity)
        user, associated = endpoint.identity.user, endpoint.associated_identity
        assert user is not None and associated is not None
        assert (user.id, user.display_name) == (associated.id, associated.display_name)
        assert user.additional_data.get("userPrincipalName") == associated.additional_data.get("userPrincipalName")
        assert endpoint.identity.application is None and endpoint.identity.device is None
    assert [e.identity.user.id for e in endpoints] == [ABBIE, OWEN, ABBIE, OWEN]

    # Inline under the record too ($expand=sessions($expand=segments)).
    rec = run(builder.get(config(ItemQ(expand=["sessions($expand=segments)"]))))
    assert [e.identity.user.id for e in endpoints_of(rec.sessions[0])] == [ABBIE, OWEN, ABBIE, OWEN]

    # The application-organized record's caller has no associated identity: identity stays null.
    other = run(deriving_client.communications.call_records.by_call_record_id(APP_ORGANIZED).sessions.get(
        config(SessionsQ(expand=["segments"])))).value[0]
    caller, callee = other.caller, other.callee
    assert caller.associated_identity is None and caller.identity is None
    assert other.segments[0].caller.identity is None
    assert callee.identity.user.id == OWEN
    # Raw cross-check: `identity` is present as null, not left out.
    raw, _ = raw_collect(deriving["root"] + f"/v1.0/communications/callRecords/{APP_ORGANIZED}/sessions",
                         {"Authorization": f"Bearer {deriving['token']}"})
    assert "identity" in raw[0]["caller"] and raw[0]["caller"]["identity"] is None
    assert raw[0]["callee"]["identity"] == {"application": None, "device": None,
                                           "user": raw[0]["callee"]["associatedIdentity"]}
