"""Deduplication: delivered events are answered from memory; concurrent copies collapse."""
import json
import threading
import time
import uuid

import pytest

import sender
from conftest import SECRET, UPSTREAM_PATH, assert_error, make_route, poll_until

DUP_BODY = b'{"duplicate":true}'


def assert_duplicate(r):
    assert r.status == 200, r
    assert r.body == DUP_BODY, "duplicate answer body must be exactly %r, got %r" % (DUP_BODY, r.body)
    assert (r.header("X-Hookgate-Duplicate") or "").lower() == "true"
    assert (r.header("Content-Type") or "").split(";")[0].strip().lower() == "application/json"


def test_identical_resend_is_duplicate(gw, upstream):
    body = sender.make_event(id="evt_dup_1")
    ts = int(time.time())
    first = gw.send(body, ts=ts)
    assert first.status == 200 and first.body == b'{"ok":true}'
    assert first.header("X-Hookgate-Duplicate") is None
    assert_duplicate(gw.send(body, ts=ts))
    assert upstream.count() == 1


def test_retry_with_new_timestamp_and_signature_is_duplicate(gw, upstream):
    body = sender.make_event(id="evt_dup_retry")
    ts = int(time.time())
    assert gw.send(body, ts=ts - 30, retry_count=0).status == 200
    for n in range(1, 4):
        assert_duplicate(gw.send(body, ts=ts - 30 + 10 * n, retry_count=n))
    assert upstream.count() == 1


def test_retry_with_rotated_secret_is_duplicate(start_gateway, upstream, tmp_path):
    f = tmp_path / "s2"
    f.write_text("hookgate-rotated-secret-0a1b2c3d4e5f6a7b8c9d0e1f")
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH),
                                  secrets=[{"env": "VECU_WEBHOOK_SECRET"}, {"file": str(f)}])])
    body = sender.make_event(id="evt_dup_rot")
    assert g.send(body, secret=SECRET).status == 200
    assert_duplicate(g.send(body, secret=f.read_text(), retry_count=1))
    assert upstream.count() == 1


def test_duplicate_still_needs_valid_signature(gw, upstream):
    body = sender.make_event(id="evt_dup_badsig")
    assert gw.send(body).status == 200
    r = gw.send(body, secret="not-the-secret-not-the-secret-not-the-secret")
    assert_error(r, 401, "signature_mismatch")
    r = gw.send(body, ts=int(time.time()) - 3600)
    assert_error(r, 401, "timestamp_outside_window")
    assert upstream.count() == 1


def test_same_id_other_source_is_not_duplicate(gw, upstream):
    a = sender.make_event(id="evt_shared_id", source="vecu.custody-service")
    b = sender.make_event(id="evt_shared_id", source="vecu.credential-service")
    assert gw.send(a).status == 200
    r = gw.send(b)
    assert r.status == 200 and r.body == b'{"ok":true}', "same id from another source is another event: %r" % r
    assert upstream.count() == 2
    assert_duplicate(gw.send(b, retry_count=1))
    assert upstream.count() == 2


def test_same_event_on_other_route_is_not_duplicate(start_gateway, upstream):
    g = start_gateway([
        make_route(upstream.url("/a"), name="a", path="/webhooks/a"),
        make_route(upstream.url("/b"), name="b", path="/webhooks/b"),
    ])
    body = sender.make_event(id="evt_two_routes")
    assert g.send(body, path="/webhooks/a").status == 200
    r = g.send(body, path="/webhooks/b")
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert sorted(rec["path"] for rec in upstream.records()) == ["/a", "/b"]
    assert_duplicate(g.send(body, path="/webhooks/a", retry_count=1))
    assert_duplicate(g.send(body, path="/webhooks/b", retry_count=1))
    assert upstream.count() == 2


def test_different_body_same_id_is_duplicate(gw, upstream):
    """The dedup key is route + source + id, not the body bytes."""
    a = sender.make_event(id="evt_same_id_diff_body", data={"v": 1})
    b = sender.make_event(id="evt_same_id_diff_body", data={"v": 2})
    assert gw.send(a).status == 200
    assert_duplicate(gw.send(b))
    assert upstream.count() == 1


def _fire(gw, body, n, ts=None):
    """Send n copies of body at once (barrier-released threads); returns the responses."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = gw.send(body, ts=ts, retry_count=i % 6, timeout=30)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert not errors, errors
    return results


def test_concurrent_copies_delivered_once(gw, upstream):
    upstream.mode(delay=0.5)
    body = sender.make_event(id="evt_concurrent")
    results = _fire(gw, body, 20)
    statuses = [r.status for r in results]
    assert not [s for s in statuses if 400 <= s < 500], "no copy may get a 4xx: %s" % statuses
    assert upstream.count() == 1, "upstream must see the event exactly once, saw %d" % upstream.count()
    forwarded = [r for r in results if r.body == b'{"ok":true}']
    dups = [r for r in results if r.body == DUP_BODY]
    assert len(forwarded) == 1, statuses
    # the first copy was delivered, so every waiting copy is answered as a duplicate
    assert len(dups) == 19, [(r.status, r.body) for r in results]
    for r in dups:
        assert_duplicate(r)
    # and afterwards too
    assert_duplicate(gw.send(body, retry_count=1))
    assert upstream.count() == 1


def test_concurrent_copies_when_first_fails(gw, upstream):
    upstream.mode(delay=1.0, fail_next=1, fail_status=500)
    body = sender.make_event(id="evt_concurrent_fail")
    results = _fire(gw, body, 8)
    statuses = sorted(r.status for r in results)
    assert upstream.count() == 1, "only the first copy goes upstream, saw %d" % upstream.count()
    assert statuses.count(500) == 1, statuses
    waiting = [r for r in results if r.status != 500]
    for r in waiting:
        assert r.status == 503, "a copy waiting on a failed first copy gets 503, got %r" % r
        assert r.header("Retry-After"), "503 needs Retry-After"
        doc = json.loads(r.body)
        assert doc.get("error") == "in_flight", doc
    # the event was not recorded: a later resend is forwarded and delivered
    upstream.mode()
    r = gw.send(body, retry_count=1)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 2


# Canonically equivalent (Swift's String == says equal) but different bytes: different events.
LOOK_ALIKES = [
    ("id", "caf\u00e9-1", "cafe\u0301-1"),  # NFC, NFD
    ("id", "K-1", "\u212a-1"),  # K, KELVIN SIGN
    ("source", "vecu.\u00c5", "vecu.\u212b"),  # A-ring, ANGSTROM SIGN
]


@pytest.mark.parametrize("field,first,second", LOOK_ALIKES, ids=["nfc-nfd-id", "kelvin-id", "angstrom-source"])
def test_look_alike_event_arriving_while_the_first_is_in_flight_is_forwarded(gw, upstream, field, first, second):
    suffix = uuid.uuid4().hex[:8]

    def event(value):
        if field == "id":
            return sender.make_event(id=value + "-" + suffix)
        return sender.make_event(id="evt_lookalike_" + suffix, source=value)

    body_one, body_two = event(first), event(second)
    assert body_one != body_two
    # http.client writes header values as latin-1; the ids travel in the signed body only
    no_id_header = {"X-VECU-Event-ID": None}
    upstream.mode(delay=1.5)  # the first copy is held at the upstream
    results = {}
    t = threading.Thread(target=lambda: results.__setitem__("one", gw.send(body_one, timeout=30, extra_headers=no_id_header)))
    t.start()
    assert poll_until(lambda: upstream.count() == 1, timeout=10), "the first event never reached the upstream"
    two = gw.send(body_two, timeout=30, extra_headers=no_id_header)
    t.join(timeout=30)
    assert two.body != DUP_BODY, "a different event (other bytes) was answered as a duplicate of one in flight"
    assert two.status == 200 and two.body == b'{"ok":true}', two
    assert results["one"].status == 200 and results["one"].body == b'{"ok":true}', results["one"]
    assert sorted(rec["body_bytes"] for rec in upstream.records()) == sorted([body_one, body_two])
    # both are recorded as delivered, each under its own bytes
    upstream.mode()
    assert_duplicate(gw.send(body_one, retry_count=1, extra_headers=no_id_header))
    assert_duplicate(gw.send(body_two, retry_count=1, extra_headers=no_id_header))
    assert upstream.count() == 2
