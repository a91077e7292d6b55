"""The README's commands, run as a newcomer runs them: its quick-start server (`serve --demo`, on the
embedded SQLite default, in a fresh directory), then the tour's shell block and its Python SDK snippet
verbatim, with only the address replaced by the port this run picked.  Every command must answer
something real: no error bodies, the dated filter finds calls, the ingest line stores records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
QUICK_START_ROOT = "http://127.0.0.1:8080"


def readme_block(section: str, language: str) -> str:
    """The first fenced block of `language` under the `## section` heading."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else len(text)]
    match = re.search(rf"```{language}\n(.*?)```", body, re.S)
    assert match, f"no ```{language} block under ## {section}"
    return match.group(1)


def documents(output: str) -> list:
    """The JSON documents a run of curl commands printed back to back."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while True:
        while position < len(output) and output[position].isspace():
            position += 1
        if position == len(output):
            return found
        document, position = decoder.raw_decode(output, position)
        found.append(document)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory: pytest.TempPathFactory):
    if os.environ.get("CALLRECORDS_CONFORMANCE_DB"):
        pytest.skip("the README's commands run once, on the embedded default store")
    binary = Path(os.environ.get("CALLRECORDS_BIN") or REPO_ROOT / "target" / "debug" / "callrecords")
    workdir = tmp_path_factory.mktemp("readme")
    # The quick start's command, on a port of this run's choosing; ./data is made in the fresh directory.
    proc = subprocess.Popen([str(binary), "serve", "--demo", "--listen", "127.0.0.1:0"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Warnings (auth off, say) may come first; the summary's first line names the address.
        seen = []
        match = None
        while match is None:
            line = proc.stderr.readline()
            assert line and len(seen) < 20, f"the server never said where it listens: {''.join(seen)!r}"
            seen.append(line)
            match = re.match(r"callrecords listening on (http://127\.0\.0\.1:\d+)/v1\.0/communications/callRecords", line)
        root = match.group(1)
        # The rest of the log is not needed, but a full pipe would stall the server.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        deadline = time.monotonic() + 60
        while json.load(urllib.request.urlopen(f"{root}/v1.0/communications/callRecords?$top=1"))["value"] == []:
            assert time.monotonic() < deadline, "the demo store stayed empty"
            time.sleep(0.2)
        yield root, workdir, binary
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_tour_shell_block_answers_every_command(quick_start):
    root, workdir, binary = quick_start
    script = readme_block("A tour", "sh").replace(QUICK_START_ROOT, root)
    env = dict(os.environ, PATH=f"{binary.parent}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stderr}\n{run.stdout[-2000:]}"
    answers = documents(run.stdout)
    for answer in answers:
        assert not (isinstance(answer, dict) and "error" in answer), answer
    service, listed, record, participants, filtered, count, ingested = answers
    assert service["value"][0]["name"] == "communications"
    assert 0 < len(listed["value"]) <= 5
    assert record["sessions"] and "segments" in record["sessions"][0]
    assert participants["value"]
    assert filtered["value"], "the dated filter found no calls"
    assert isinstance(count, int) and count > 0
    # The generator also writes later versions of some calls, as Graph revises a record after the call.
    lines = (workdir / "calls.ndjson").read_text().splitlines()
    distinct = {json.loads(line)["id"] for line in lines}
    assert len(distinct) == 10
    assert ingested["rejected"] == 0, ingested
    assert ingested["stored"] + ingested["replaced"] + ingested["ignored"] == len(lines), ingested
    assert ingested["stored"] == 10, ingested


def test_the_python_sdk_snippet_prints_the_sessions(quick_start):
    root, workdir, _ = quick_start
    snippet = readme_block("A tour", "python").replace(QUICK_START_ROOT, root)
    run = subprocess.run([sys.executable, "-c", snippet], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines, "the snippet printed nothing"
    for line in lines:
        session_id, caller_type, _ = line.split(" ", 2)
        assert caller_type.endswith("Endpoint"), line
        assert session_id
