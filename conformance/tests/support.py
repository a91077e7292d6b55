"""Helpers shared by conftest.py and the tests: raw HTTP over urllib, SDK paging with PageIterator, and a
webhook receiver (stdlib http.server) for subscriptions and change notifications."""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator
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


class _Session:
    """What every raw request of the session carries: trust in the server's self-signed CA, and a
    bearer token (set by conftest once the server is up)."""
    ssl_context: Optional[ssl.SSLContext] = None
    token: Optional[str] = None


def configure(ca_file: Optional[str] = None, token: Optional[str] = None) -> None:
    if ca_file is not None:
        _Session.ssl_context = ssl.create_default_context(cafile=ca_file)
    if token is not None:
        _Session.token = token


def ssl_context() -> Optional[ssl.SSLContext]:
    return _Session.ssl_context


def session_token() -> Optional[str]:
    return _Session.token


def http(method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict] = None,
         timeout: float = 60.0, token: Optional[str] = "session") -> RawResponse:
    """One request with urllib; 4xx/5xx are returned, not raised.  429 is retried (bounded) honouring Retry-After.

    Sends the session's token unless `headers` has an Authorization of its own or `token` is None."""
    headers = dict(headers or {})
    if token == "session":
        token = _Session.token
    if token and not any(name.lower() == "authorization" for name in headers):
        headers["Authorization"] = f"Bearer {token}"
    for attempt in range(4):
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=_Session.ssl_context) as resp:
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


# --------------------------------------------------------------------------- tokens for the SDK


class LocalTokenProvider(AccessTokenProvider):
    """Client credentials against the server's `/{tenant}/oauth2/v2.0/token`, as MSAL would do it,
    cached until shortly before the token expires."""

    def __init__(self, root: str, tenant: str, client_id: str, client_secret: str,
                 scope: str = "https://graph.microsoft.com/.default") -> None:
        self.root = root
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.fetched = 0
        self.cache_tokens = True
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._validator = AllowedHostsValidator([urllib.parse.urlsplit(root).hostname or ""])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict = {}) -> str:
        if not self._validator.is_url_host_valid(uri):
            return ""
        if self.cache_tokens and self._token and time.monotonic() < self._expires_at:
            return self._token
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self.client_secret, "scope": self.scope,
        }).encode()
        answer = http("POST", f"{self.root}/{self.tenant}/oauth2/v2.0/token", form,
                      {"Content-Type": "application/x-www-form-urlencoded"}, token=None)
        assert answer.status == 200, answer.body
        self.fetched += 1
        body = answer.json()
        self._token = body["access_token"]
        self._expires_at = time.monotonic() + float(body.get("expires_in", 300)) - 60
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


def graph_http_client(api_version: Any, options: dict) -> Any:
    """The SDK's own middleware pipeline (retry, redirect, telemetry...) over an httpx client that
    trusts the session server's CA; HTTP/2 as the SDK's default client has it."""
    import httpx
    from msgraph_core import GraphClientFactory
    from kiota_http.kiota_client_factory import DEFAULT_CONNECTION_TIMEOUT, DEFAULT_REQUEST_TIMEOUT

    client = httpx.AsyncClient(timeout=httpx.Timeout(DEFAULT_REQUEST_TIMEOUT, connect=DEFAULT_CONNECTION_TIMEOUT),
                               http2=True, verify=_Session.ssl_context or True)
    return GraphClientFactory.create_with_default_middleware(api_version=api_version, client=client, options=options)


async def close_graph_http_client(client: Any) -> None:
    """Closes an SDK http client and its pooled connections.  msgraph-core's AsyncGraphTransport has no
    `aclose`, so `AsyncClient.aclose()` alone leaves the wrapped transport's HTTP/2 connections open (an
    SDK bug; the server then waits out its shutdown grace period for them)."""
    await client.aclose()
    inner = getattr(getattr(client, "_transport", None), "transport", None)
    if inner is not None:
        await inner.aclose()


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


# --------------------------------------------------------------------------- $metadata


class Csdl:
    """The microsoft.graph.callRecords schema of a $metadata document (CSDL XML): its elements by (kind, name)."""

    EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
    NAMESPACE = "microsoft.graph.callRecords"

    def __init__(self, text: str) -> None:
        root = ET.fromstring(text)
        schema = next(s for s in root.iter(self.EDM + "Schema") if s.get("Namespace") == self.NAMESPACE)
        self.elements = {(el.tag[len(self.EDM):], el.get("Name")): el for el in schema}

    def names(self, kind: str) -> set[str]:
        """Names of the schema's elements of one kind (ComplexType, EnumType, Function...)."""
        return {name for tag, name in self.elements if tag == kind}

    def properties(self, name: str) -> list[str]:
        """Declared properties of a complex or entity type of the namespace, its base types' first."""
        el = self.elements.get(("ComplexType", name)) or self.elements[("EntityType", name)]
        own = [p.get("Name") for p in el if p.tag == self.EDM + "Property"]
        base = el.get("BaseType")
        return (self.properties(base[len(self.NAMESPACE) + 1:]) if base else []) + own


def get_csdl(url: str) -> Csdl:
    r = http("GET", url)
    assert r.status == 200, (url, r.status, r.body[:300])
    return Csdl(r.text)


# --------------------------------------------------------------------------- webhook receiver


@dataclass
class ReceivedPost:
    """One POST that reached the receiver."""
    path: str                   # without the query
    query: dict[str, list[str]]  # parse_qs of the query (values URL-decoded)
    headers: Any                # email.message.Message: case-insensitive .get()
    body: bytes

    @property
    def validation_token(self) -> Optional[str]:
        values = self.query.get("validationToken")
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A real `ThreadingHTTPServer` on 127.0.0.1, on a port the OS picks, serving from a background thread.

    - `POST …?validationToken=T` (the validation handshake) is recorded in `validations` and answered
      `200 text/plain` with `token_reply(T)` (by default T itself, URL-decoded, as Graph requires).
    - Any other POST is a change notification: recorded in `notifications` and answered `202`.
    Waiters are woken through a Condition whenever a POST is recorded.
    """

    def __init__(self) -> None:
        self.validations: list[ReceivedPost] = []
        self.notifications: list[ReceivedPost] = []
        self.token_reply: Callable[[str], str] = lambda token: token
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"webhook-{self.port}", daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    # -- request handling (runs on the server's threads)

    @staticmethod
    def _read_body(h: BaseHTTPRequestHandler) -> bytes:
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(h.path)
        post = ReceivedPost(path=parts.path, query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                            headers=h.headers, body=self._read_body(h))
        token = post.validation_token
        if token is not None:
            reply = self.token_reply(token).encode("utf-8")
            status, content_type = 200, "text/plain; charset=utf-8"
        else:
            reply, status, content_type = b"", 202, None
        with self._cond:
            (self.validations if token is not None else self.notifications).append(post)
            self._cond.notify_all()
        h.send_response(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(reply)))
        h.end_headers()
        h.wfile.write(reply)

    # -- what the tests read

    def changes(self, subscription_id: Optional[str] = None) -> list[dict]:
        """Every changeNotification received so far (flattened over POSTs), optionally for one subscription."""
        with self._cond:
            posts = list(self.notifications)
        items = [item for post in posts for item in post.json()["value"]]
        return [i for i in items if subscription_id is None or i.get("subscriptionId") == subscription_id]

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> None:
        """Block until `condition()` holds, re-checking on every received POST and at least every `poll` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():  # evaluated without the lock: it may do HTTP
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; "
                                     f"validations={len(self.validations)}, "
                                     f"notifications={[p.body[:500] for p in self.notifications]}")
            with self._cond:
                self._cond.wait(min(remaining, poll))
