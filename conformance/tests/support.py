"""Helpers shared by conftest.py and the tests: raw HTTP over urllib, and SDK paging with PageIterator."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Optional

from msgraph_core.tasks.page_iterator import PageIterator

HANDCRAFTED_ID = "e523d2ed-2966-4b6b-925b-754a88034cc5"


# --------------------------------------------------------------------------- raw HTTP (stdlib only)


@dataclass
class RawResponse:
    status: int
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def http(method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
         timeout: float = 60.0) -> RawResponse:
    """One request with urllib; 4xx/5xx are returned, not raised.  429 is retried (bounded) honouring Retry-After."""
    for attempt in range(4):
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return RawResponse(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            r = RawResponse(e.code, e.headers, e.read())
            if r.status == 429 and attempt < 3:
                time.sleep(min(float(r.headers.get("Retry-After") or 1), 20.0))
                continue
            return r
    raise AssertionError("unreachable")


def get_json(url: str, headers: Optional[dict] = None) -> Any:
    r = http("GET", url, headers=headers)
    assert r.status == 200, f"GET {url} -> {r.status}: {r.body[:500]!r}"
    return r.json()


def raw_collect(url: str, headers: Optional[dict] = None, max_pages: int = 200) -> tuple[list, int]:
    """Follow @odata.nextLink from `url` with urllib.  Returns (items, pages)."""
    items: list = []
    pages = 0
    while url:
        page = get_json(url, headers)
        pages += 1
        assert pages <= max_pages, "nextLink loop?"
        items.extend(page["value"])
        url = page.get("@odata.nextLink")
    return items, pages


# --------------------------------------------------------------------------- SDK paging helper


@dataclass
class Paged:
    items: list
    pages: int
    page_sizes: list[int]
    next_links: list[str] = field(default_factory=list)


async def sdk_collect(first_page: Any, adapter: Any, prefer: Optional[str] = None) -> Paged:
    """Iterate every page with msgraph_core's PageIterator, exactly as SDK users do.

    PageIterator re-sends only the headers in `iterator.headers`.  Its `set_headers(dict)` is broken in
    msgraph-core 1.5.2 (it calls `add_all(**headers)`, a TypeError), so we add to `headers` directly.
    """
    iterator = PageIterator(first_page, adapter)
    if prefer:
        iterator.headers.add("Prefer", prefer)
    paged = Paged(items=[], pages=1, page_sizes=[len(first_page.value or [])])
    if first_page.odata_next_link:
        paged.next_links.append(first_page.odata_next_link)
    original_fetch = iterator.fetch_next_page

    async def counting_fetch():
        resp = await original_fetch()
        paged.pages += 1
        paged.page_sizes.append(len(getattr(resp, "value", None) or []))
        link = getattr(resp, "odata_next_link", None)
        if link:
            paged.next_links.append(link)
        return resp

    iterator.fetch_next_page = counting_fetch  # type: ignore[method-assign]

    def callback(item: Any) -> bool:
        paged.items.append(item)
        return True  # PageIterator stops on a falsy return

    await iterator.iterate(callback)
    return paged


# --------------------------------------------------------------------------- timestamps

_TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})$")


def ticks(value: str) -> int:
    """An Edm.DateTimeOffset string as 100-ns ticks since the epoch (keeps all 7 fraction digits)."""
    m = _TS_RE.match(value)
    assert m, f"not an RFC 3339 timestamp with <= 7 fraction digits: {value!r}"
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    whole = dt.datetime.fromisoformat(m.group(1) + zone)
    frac = int((m.group(2) or "").ljust(7, "0"))
    return int(whole.timestamp()) * 10_000_000 + frac


def to_python_datetime(value: str) -> dt.datetime:
    """What the SDK makes of a timestamp: UTC, fraction truncated to microseconds."""
    t = ticks(value)
    return dt.datetime.fromtimestamp(t // 10_000_000, dt.timezone.utc).replace(microsecond=(t % 10_000_000) // 10)
