"""Session fixtures for the msgraph-sdk conformance suite.

One `callrecords serve` process is started for the whole session on a free loopback port, with a fresh
SQLite file in a temp dir.  It is loaded over HTTP with the generator's NDJSON output plus one
handcrafted record (tests/data/handcrafted_record.json), then the tests talk to it through the
official Python SDK (msgraph-sdk 1.65.0) and, for cross-checks, through plain urllib.

Environment:
  CALLRECORDS_BIN         server binary (default: <repo>/target/debug/callrecords)
  CALLRECORDS_SERVE_ARGS  extra arguments appended to `serve` (shell-split), e.g. to relax throttling
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
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from kiota_abstractions.authentication.anonymous_authentication_provider import (
    AnonymousAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

from support import http, raw_collect

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(__file__).resolve().parent / "data"
GENERATE_ARGS = ["--calls", "300", "--seed", "42", "--days", "20"]

_server_log: Optional[Path] = None


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

    @property
    def all_ids(self) -> set[str]:
        return self.generated_ids | {self.handcrafted["id"]}

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
    """The §3.2 example record, moved so that it started yesterday (UTC): inside any retention window."""
    rec = json.loads((DATA_DIR / "handcrafted_record.json").read_text())
    original = dt.date.fromisoformat(rec["startDateTime"][:10])
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    return _shift_dates(rec, (yesterday - original).days)


def _ingest(root: str, body: bytes, content_type: str) -> dict:
    r = http("POST", root + "/ingest/callRecords", body=body, headers={"Content-Type": content_type}, timeout=600)
    assert r.status in (200, 201, 202), f"ingest ({content_type}) -> {r.status}: {r.body[:2000]!r}"
    report = r.json()
    assert report.get("rejected") == 0, f"ingest rejected records: {json.dumps(report)[:4000]}"
    return report


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
    root = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite://{tmpdir}/conf.db",
           "--retention-days", "0", *shlex.split(os.environ.get("CALLRECORDS_SERVE_ARGS", ""))]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmpdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before /healthz answered.\n"
                            f"cmd: {shlex.join(cmd)}\n--- server log ---\n{_log_tail(log_path)}")
            try:
                with urllib.request.urlopen(root + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz not 200 within 30 s.\ncmd: {shlex.join(cmd)}\n"
                            f"--- server log ---\n{_log_tail(log_path)}")
            time.sleep(0.1)

        gen = subprocess.run([str(binary), "generate", *GENERATE_ARGS], capture_output=True, timeout=300)
        if gen.returncode != 0:
            pytest.fail(f"`generate {' '.join(GENERATE_ARGS)}` exited {gen.returncode}: "
                        f"{gen.stderr.decode(errors='replace')[-2000:]}")
        lines = [ln for ln in gen.stdout.splitlines() if ln.strip()]
        assert lines, "generator printed nothing"
        generated_ids = {json.loads(ln)["id"] for ln in lines}

        reports = [_ingest(root, gen.stdout, "application/x-ndjson")]
        handcrafted = load_handcrafted()
        reports.append(_ingest(root, json.dumps(handcrafted).encode(), "application/json"))

        yield Server(root=root, base_url=root + "/v1.0", tmpdir=tmpdir, log_path=log_path,
                     generated_ids=generated_ids, generated_lines=len(lines),
                     handcrafted=handcrafted, ingest_reports=reports)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def run() -> Callable:
    """Run a coroutine on one event loop shared by the whole session (the SDK's httpx client is loop-bound)."""
    runner = asyncio.Runner()
    yield runner.run
    runner.close()


@pytest.fixture(scope="session")
def adapter(server: Server, run: Callable) -> GraphRequestAdapter:
    request_adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    request_adapter.base_url = server.base_url
    yield request_adapter
    run(request_adapter._http_client.aclose())


@pytest.fixture(scope="session")
def client(adapter: GraphRequestAdapter) -> GraphServiceClient:
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture(scope="session")
def all_records(server: Server) -> list[dict]:
    """Every record as the list endpoint returns it, via urllib and default paging (cached)."""
    items, _ = raw_collect(server.url("/communications/callRecords"))
    return items


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _server_log is not None and (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        terminalreporter.write_sep("-", f"server log tail ({_server_log})")
        terminalreporter.write_line(_log_tail(_server_log, 40))
