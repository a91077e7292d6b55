"""Subscriptions and change notifications (Graph's webhook docs) through msgraph-sdk 1.65.0's request builders.

Every test gets its own webhook receiver (the `webhook` fixture: a stdlib ThreadingHTTPServer on 127.0.0.1,
on a port the OS picks, see `support.WebhookReceiver`).  The session server runs with its default
`--allow-private-webhooks true`, so http:// loopback targets are accepted (our choice; Graph requires
HTTPS).  Each test deletes the subscriptions it created, even when it fails (the `created_ids` fixture), so
none is left to receive notifications meant for another test.  Each test names the Graph docs it checks and
whether it checks a MUST, a SHOULD or one of our own choices (see ../README.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
import uuid

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.subscription_collection_response import SubscriptionCollectionResponse

from conftest import load_handcrafted
from support import WebhookReceiver, http, ticks, to_python_datetime

RESOURCE = "/communications/callRecords"
MAX_MINUTES = 4230
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DELIVERY_TIMEOUT_S = 30.0


def expiry(minutes: float) -> dt.datetime:
    """`minutes` from now, UTC, whole seconds (the SDK then sends `isoformat()`: `…+00:00`)."""
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)).replace(microsecond=0)


def odata_error(run, coro) -> ODataError:
    with pytest.raises(ODataError) as info:
        run(coro)
    return info.value


@pytest.fixture
def created_ids(server):
    """Ids of subscriptions a test created; whatever is left is deleted afterwards (raw DELETE, 404 is fine)."""
    ids: list[str] = []
    yield ids
    for sid in ids:
        r = http("DELETE", server.url(f"/subscriptions/{urllib.parse.quote(sid, safe='')}"))
        assert r.status in (204, 404), f"cleanup DELETE /subscriptions/{sid} -> {r.status}: {r.body[:500]!r}"


def create(run, client, created_ids: list[str], **props) -> Subscription:
    sub = run(client.subscriptions.post(Subscription(**props)))
    assert isinstance(sub, Subscription), type(sub)
    if sub.id:
        created_ids.append(sub.id)
    return sub


@pytest.fixture
def subscription(run, client, webhook: WebhookReceiver, created_ids):
    """One subscription made through `client.subscriptions.post`, and the Subscription that was sent."""
    sent = Subscription(
        change_type="created,updated",
        notification_url=webhook.url("/hook/crud?tag=a%20b"),
        resource=RESOURCE,
        expiration_date_time=expiry(24 * 60),
        client_state="secret-" + uuid.uuid4().hex,
    )
    sub = create(run, client, created_ids, change_type=sent.change_type, notification_url=sent.notification_url,
                 resource=sent.resource, expiration_date_time=sent.expiration_date_time,
                 client_state=sent.client_state)
    return sub, sent


# --------------------------------------------------------------------------- create / read / list / renew / delete


def test_create_returns_typed_subscription(subscription, webhook):
    """MUST (subscription resource): create answers the subscription: a server-assigned GUID id and the properties as sent."""
    sub, sent = subscription
    assert sub.id and GUID_RE.match(sub.id), sub.id
    assert sub.resource == sent.resource
    assert sub.change_type == sent.change_type
    assert sub.client_state == sent.client_state
    assert sub.notification_url == sent.notification_url
    assert sub.expiration_date_time == sent.expiration_date_time
    assert sub.include_resource_data in (None, False)


def test_create_validation_handshake(subscription, webhook):
    """MUST (notificationUrl validation): before create answers, one POST {notificationUrl}&validationToken=… with
    text/plain and an empty body reached the receiver; the URL's own query string is kept.  Our choice: the token
    is URL-safe and long enough for 32 bytes of entropy."""
    assert len(webhook.validations) == 1, [v.path for v in webhook.validations]
    v = webhook.validations[0]
    assert v.path == "/hook/crud"
    assert v.query.get("tag") == ["a b"], v.query
    assert v.body == b""
    assert (v.headers.get("Content-Type") or "").lower().startswith("text/plain"), v.headers.get("Content-Type")
    token = v.validation_token
    assert re.fullmatch(r"[A-Za-z0-9_\-.~]+", token), token
    assert len(token) >= 43, f"token shorter than 32 bytes of base64url: {token!r}"
    assert webhook.notifications == []


def test_create_raw_is_201_with_every_property(server, webhook, created_ids):
    """MUST (create subscription): 201 with `@odata.context …/$metadata#subscriptions/$entity`; declared properties are
    written, nulls included."""
    body = {"changeType": "created", "notificationUrl": webhook.url("/hook/raw"), "resource": RESOURCE,
            "expirationDateTime": expiry(60).isoformat()}
    r = http("POST", server.url("/subscriptions"), body=json.dumps(body).encode(),
             headers={"Content-Type": "application/json"})
    assert r.status == 201, f"{r.status}: {r.body[:1000]!r}"
    doc = r.json()
    if doc.get("id"):
        created_ids.append(doc["id"])
    assert doc["@odata.context"].endswith("/$metadata#subscriptions/$entity"), doc["@odata.context"]
    for key in ("id", "resource", "changeType", "notificationUrl", "expirationDateTime", "clientState",
                "lifecycleNotificationUrl", "includeResourceData", "encryptionCertificate",
                "encryptionCertificateId", "latestSupportedTlsVersion", "notificationUrlAppId",
                "notificationQueryOptions", "applicationId", "creatorId"):
        assert key in doc, f"property {key!r} missing from {sorted(doc)}"
    assert doc["clientState"] is None
    assert ticks(doc["expirationDateTime"]) == ticks(body["expirationDateTime"])


def test_get_by_id(subscription, client, run):
    """MUST (get subscription): GET /subscriptions/{id} answers the same subscription."""
    sub, sent = subscription
    got = run(client.subscriptions.by_subscription_id(sub.id).get())
    assert isinstance(got, Subscription)
    assert got.id == sub.id
    assert (got.resource, got.change_type, got.client_state, got.notification_url) == \
        (sent.resource, sent.change_type, sent.client_state, sent.notification_url)
    assert got.expiration_date_time == sent.expiration_date_time


def test_list_contains_it(subscription, client, run):
    """MUST (list subscriptions): GET /subscriptions lists the app's subscriptions, this one included."""
    sub, sent = subscription
    page = run(client.subscriptions.get())
    assert isinstance(page, SubscriptionCollectionResponse)
    mine = [s for s in page.value if s.id == sub.id]
    assert len(mine) == 1, [s.id for s in page.value]
    assert mine[0].client_state == sent.client_state
    assert mine[0].expiration_date_time == sent.expiration_date_time


def test_renew_with_patch(subscription, client, run, webhook):
    """MUST (update subscription): PATCH with a new expirationDateTime answers the updated subscription; GET reads it back."""
    sub, sent = subscription
    later = expiry(2 * 24 * 60)
    assert later != sent.expiration_date_time
    item = client.subscriptions.by_subscription_id(sub.id)
    patched = run(item.patch(Subscription(expiration_date_time=later)))
    assert isinstance(patched, Subscription)
    assert patched.id == sub.id
    assert patched.expiration_date_time == later
    assert patched.client_state == sent.client_state and patched.resource == sent.resource
    got = run(item.get())
    assert got.expiration_date_time == later


def test_delete_then_get_is_not_found(subscription, client, run):
    """MUST (delete subscription): DELETE answers 204 (the SDK returns None); the id then gives 404 `ResourceNotFound`."""
    sub, _ = subscription
    item = client.subscriptions.by_subscription_id(sub.id)
    assert run(item.delete()) is None
    err = odata_error(run, item.get())
    assert err.response_status_code == 404
    assert err.error.code == "ResourceNotFound"
    page = run(client.subscriptions.get())
    assert sub.id not in [s.id for s in page.value]


# --------------------------------------------------------------------------- create errors


def test_wrong_validation_token_is_validation_error(client, run, webhook, created_ids):
    """MUST (notificationUrl validation): a receiver that answers something other than the token fails create with
    400 `ValidationError`, and no subscription is made."""
    webhook.token_reply = lambda token: token[::-1] + "x"
    url = webhook.url(f"/hook/wrong-{uuid.uuid4().hex}")
    err = odata_error(run, client.subscriptions.post(Subscription(
        change_type="created", notification_url=url, resource=RESOURCE, expiration_date_time=expiry(60))))
    assert err.response_status_code == 400
    assert err.error.code == "ValidationError"
    assert len(webhook.validations) == 1
    page = run(client.subscriptions.get())
    leaked = [s.id for s in page.value if s.notification_url == url]
    created_ids.extend(leaked)
    assert leaked == []


def test_expiration_beyond_4230_minutes_is_invalid_request(client, run, webhook, created_ids):
    """MUST (subscription limits): expirationDateTime more than 4230 minutes ahead answers 400 `InvalidRequest`."""
    url = webhook.url(f"/hook/far-{uuid.uuid4().hex}")
    err = odata_error(run, client.subscriptions.post(Subscription(
        change_type="created", notification_url=url, resource=RESOURCE,
        expiration_date_time=expiry(MAX_MINUTES + 5))))
    assert err.response_status_code == 400
    assert err.error.code == "InvalidRequest"
    page = run(client.subscriptions.get())
    leaked = [s.id for s in page.value if s.notification_url == url]
    created_ids.extend(leaked)
    assert leaked == []


# --------------------------------------------------------------------------- end to end: ingest -> notification


def _shift(value, delta: dt.timedelta, key: str = ""):
    """Move every *DateTime string by `delta` (exact to 100 ns), written back as UTC with 7 digits and `Z`."""
    if isinstance(value, dict):
        return {k: _shift(v, delta, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta, key) for v in value]
    if isinstance(value, str) and key.endswith("DateTime"):
        t = ticks(value) + int(delta.total_seconds()) * 10_000_000
        whole = dt.datetime.fromtimestamp(t // 10_000_000, dt.timezone.utc)
        return whole.strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 10_000_000:07d}Z"
    return value


def _outbox_depth(server) -> int | None:
    """`callrecords_outbox_depth` from our /metrics (not Graph); None if it cannot be read."""
    r = http("GET", server.root + "/metrics", timeout=10)
    if r.status != 200:
        return None
    m = re.search(r"^callrecords_outbox_depth(?:\{[^}]*\})?\s+(\d+)", r.text, re.M)
    return int(m.group(1)) if m else None


def test_ingested_record_is_notified(server, client, run, webhook, created_ids):
    """MUST (call records notifications, webhook delivery): a record ingested after the subscription was made is
    POSTed to notificationUrl (query string kept, application/json) as one `created` changeNotification with the
    documented resource, resourceData (`#Microsoft.Graph.callRecord`, as the docs spell it), clientState and
    subscriptionId; a subscription whose participant $filter does not match the record gets nothing."""
    state = "e2e-" + uuid.uuid4().hex
    sub = create(run, client, created_ids, change_type="created", notification_url=webhook.url("/hook/e2e?k=v"),
                 resource=RESOURCE, expiration_date_time=expiry(60), client_state=state)
    stranger = str(uuid.uuid4())
    other = create(run, client, created_ids, change_type="created,updated",
                   notification_url=webhook.url("/hook/filtered"),
                   resource=f"{RESOURCE}?$filter=participants/any(p:p/id eq '{stranger}')",
                   expiration_date_time=expiry(60), client_state="filtered")
    assert len(webhook.validations) == 2
    assert webhook.notifications == []

    # The Get callRecord docs example with a fresh id, moved 2 days back so it collides with no other test's data.
    rid = str(uuid.uuid4())
    record = _shift(load_handcrafted(), dt.timedelta(days=-1))
    record["id"] = rid
    server.extra_ids.add(rid)
    r = http("POST", server.root + "/ingest/callRecords", body=json.dumps(record).encode(),
             headers={"Content-Type": "application/json"})
    assert r.status in (200, 201, 202), f"ingest -> {r.status}: {r.body[:1000]!r}"
    assert r.json().get("stored") == 1, r.json()

    # Wait for our notification, then for the outbox to drain, so that a duplicate would have arrived too.
    webhook.wait_until(lambda: webhook.changes(sub.id), DELIVERY_TIMEOUT_S, "the created notification")
    webhook.wait_until(lambda: _outbox_depth(server) in (0, None), DELIVERY_TIMEOUT_S, "an empty outbox")

    changes = webhook.changes()
    assert len(changes) == 1, changes
    n = changes[0]
    assert n["subscriptionId"] == sub.id
    assert n["changeType"] == "created"
    assert n["resource"] == f"communications/callRecords/{rid}"
    assert n["resourceData"] == {"@odata.type": "#Microsoft.Graph.callRecord",
                                 "@odata.id": f"communications/callRecords/{rid}", "id": rid}
    assert n["clientState"] == state
    assert GUID_RE.match(n["tenantId"]), n["tenantId"]
    assert to_python_datetime(n["subscriptionExpirationDateTime"]) == sub.expiration_date_time
    assert not webhook.changes(other.id)

    posts = webhook.notifications
    assert len(posts) == 1
    assert posts[0].path == "/hook/e2e" and posts[0].query == {"k": ["v"]}, (posts[0].path, posts[0].query)
    assert (posts[0].headers.get("Content-Type") or "").lower().startswith("application/json")
