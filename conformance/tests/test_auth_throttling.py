"""Real tokens and throttling through msgraph-sdk 1.65.0, reached as Graph is: HTTPS and application tokens.

This module starts its own `callrecords serve --auth local --tls self-signed` (a fresh SQLite file, a
free loopback port, the session server's CA directory so the same CA is trusted) with a tight
per-record limit, registers an application with `callrecords apps add`, and drives the server through
the SDK with `BaseBearerTokenAuthenticationProvider` and an access-token provider that fetches a
client-credentials token from the server's own token endpoint (`allowed_hosts` limits it to
127.0.0.1).  The last test checks that the SDK's retry handler waits out a 429's `Retry-After`.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph import graph_request_adapter as v1_adapter_module
from msgraph_core import APIVersion

from conftest import _free_port, _log_tail, load_handcrafted, stop_server
from support import LocalTokenProvider, close_graph_http_client, graph_http_client, http, ssl_context

TENANT = "33333333-3333-3333-3333-333333333333"
# Two first-page requests per record every 2 seconds: the third in a row is a 429.
SERVE_ARGS = ["--auth", "local", "--throttle-limit", "record=2/2"]


@pytest.fixture(scope="module")
def secured(server, tmp_path_factory: pytest.TempPathFactory):
    binary = server.binary
    tmpdir = tmp_path_factory.mktemp("secured")
    db = f"sqlite://{tmpdir}/secured.db"
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
                pytest.fail(f"secured server did not start\n{_log_tail(log_path)}")
            time.sleep(0.2)
        app = subprocess.run([str(binary), "apps", "add", "--tenant", TENANT, "--name", "conformance",
                              "--roles", "CallRecords.Read.All", "--db", db],
                             capture_output=True, text=True, check=True)
        fields = dict(re.findall(r"^(client_id|client_secret)\s+(\S+)$", app.stdout, re.M))
        ingest_token = subprocess.run([str(binary), "token", "--tenant", TENANT, "--roles", "CallRecords.Ingest",
                                       "--db", db], capture_output=True, text=True, check=True).stdout.strip()
        record = load_handcrafted()
        stored = http("POST", root + "/ingest/callRecords", json.dumps(record).encode(),
                      {"Content-Type": "application/json", "Authorization": f"Bearer {ingest_token}"})
        assert stored.status == 200, stored.body
        yield {"root": root, "client_id": fields["client_id"], "client_secret": fields["client_secret"],
               "record_id": record["id"], "ingest_token": ingest_token}
    finally:
        stop_server(proc)
        log.close()


def _up(root: str) -> bool:
    try:
        return http("GET", root + "/healthz", timeout=2, token=None).status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def secured_token_provider(secured) -> LocalTokenProvider:
    return LocalTokenProvider(secured["root"], TENANT, secured["client_id"], secured["client_secret"])


@pytest.fixture(scope="module")
def secured_client(secured, secured_token_provider, run) -> GraphServiceClient:
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(secured_token_provider),
                                  graph_http_client(APIVersion.v1, v1_adapter_module.options))
    adapter.base_url = secured["root"] + "/v1.0"
    yield GraphServiceClient(request_adapter=adapter)
    run(close_graph_http_client(adapter._http_client))


def test_requests_without_a_token_are_refused_as_graph_refuses_them(secured):
    """MUST (Graph's errors): 401 InvalidAuthenticationToken with WWW-Authenticate: Bearer."""
    answer = http("GET", secured["root"] + "/v1.0/communications/callRecords", token=None)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_the_sdk_reads_with_a_token_from_the_token_endpoint(secured, secured_client, secured_token_provider, run):
    """MUST (the SDK authenticates with application tokens): the SDK's bearer provider, fed by our token
    endpoint, reads the tenant's records."""
    page = run(secured_client.communications.call_records.get())
    assert [record.id for record in page.value] == [secured["record_id"]]
    assert secured_token_provider.fetched >= 1


def test_a_role_the_app_lacks_is_403(secured, run):
    """MUST (Graph's permissions and errors): the app holds only CallRecords.Read.All, so ingest
    (CallRecords.Ingest) is 403."""
    answer = http("POST", secured["root"] + "/ingest/callRecords", b"{}",
                  {"Content-Type": "application/json",
                   "Authorization": "Bearer " + run(_token_of(secured))})
    assert answer.status == 403
    assert answer.json()["error"]["code"] == "Forbidden"


async def _token_of(secured) -> str:
    return await LocalTokenProvider(secured["root"], TENANT, secured["client_id"],
                                    secured["client_secret"]).get_authorization_token(secured["root"] + "/v1.0")


def test_the_sdk_retry_handler_waits_out_retry_after(secured, secured_client, run):
    """MUST (Graph's throttling limits): past the per-record limit the server answers 429 with Retry-After, and
    msgraph-sdk's retry handler waits that long and retries, so the call still succeeds."""
    item = secured_client.communications.call_records.by_call_record_id(secured["record_id"])
    # Let the record's bucket refill, then spend it.
    time.sleep(2.1)
    run(item.get())
    run(item.get())
    # The bucket is empty now: a raw request sees the 429 itself.
    raw = http_once(secured["root"] + f"/v1.0/communications/callRecords/{secured['record_id']}",
                    run(_token_of(secured)))
    assert raw[0] == 429, raw
    assert int(raw[1]) >= 1
    assert raw[2]["error"]["code"] == "TooManyRequests"
    started = time.monotonic()
    record = run(item.get())
    waited = time.monotonic() - started
    assert record.id == secured["record_id"]
    assert waited >= 0.9, f"the SDK answered after {waited:.2f} s: it did not wait for Retry-After"


def http_once(url: str, token: str) -> tuple[int, str, dict]:
    """One GET without support.http's own 429 retries."""
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10, context=ssl_context()) as response:
            return response.status, "", json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After", ""), json.loads(error.read())
