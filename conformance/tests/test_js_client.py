"""The most used JavaScript client, @microsoft/microsoft-graph-client 3.x, against the session server.

Its `PageIterator` follows an `@odata.nextLink` only when it is an `https://` URL, and its auth handler
attaches the token only to https URLs of Graph or of `customHosts`: so this walks every page only if the
server speaks TLS and writes its links with the scheme the client used.  The client runs in
Node (conformance/js/page_iterator.mjs, installed by run.sh with `npm ci`), trusting the server's
self-signed CA through NODE_EXTRA_CA_CERTS.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pytest

import support
from conftest import REPO_ROOT

JS_DIR = REPO_ROOT / "conformance" / "js"


def _walk(server, path: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (the JavaScript client needs Node.js 18 or later)")
    if not (JS_DIR / "node_modules" / "@microsoft" / "microsoft-graph-client").is_dir():
        pytest.fail("the JavaScript client is not installed: run conformance/run.sh (it runs npm ci)")
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=server.ca_file, CALLRECORDS_ROOT=server.root,
               CALLRECORDS_TOKEN=support.session_token() or "", CALLRECORDS_PATH=path)
    done = subprocess.run([node, "page_iterator.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"node exited {done.returncode}: {done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_page_iterator_walks_every_record_over_https(server, all_records):
    """MUST (the client follows only https next links): PageIterator of @microsoft/microsoft-graph-client 3.x
    sees every record once."""
    walked = _walk(server, "/communications/callRecords")
    expected = sorted(record["id"] for record in all_records)
    assert sorted(walked["ids"]) == expected
    assert len(walked["ids"]) == len(set(walked["ids"])), "a record was seen twice"
    # Graph's page size for callRecords is 60: one request per page, every one over https with a token.
    assert len(walked["urls"]) == math.ceil(len(expected) / 60) > 1
    assert all(url.startswith(server.root + "/v1.0/communications/callRecords") for url in walked["urls"]), walked["urls"]
    assert walked["tokens"] == len(walked["urls"])


def test_the_page_iterator_keeps_the_query_across_pages(server, all_records):
    """SHOULD: a $select and a $filter survive the nextLinks the JavaScript client follows."""
    all_walked = _walk(server, "/communications/callRecords?$select=id,type")
    assert sorted(all_walked["ids"]) == sorted(record["id"] for record in all_records)
    assert len(all_walked["urls"]) > 1
    assert all("select" in url for url in all_walked["urls"]), all_walked["urls"]
    # The later half of the records, by start time: a window that spans pages.
    starts = sorted(record["startDateTime"] for record in all_records)
    since = starts[len(starts) // 2]
    later = sorted(record["id"] for record in all_records if support.ticks(record["startDateTime"]) >= support.ticks(since))
    walked = _walk(server, f"/communications/callRecords?$filter=startDateTime ge {since}")
    assert sorted(walked["ids"]) == later
    assert len(walked["urls"]) == max(1, math.ceil(len(later) / 60))
