"""Self-tests of the test peers (no hookgate needed)."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import threading
import time

import pytest

import sender
from conftest import PEERS, SECRET, Peer, Upstream, record_headers


def test_sign_matches_guide_formula():
    body = sender.make_event(id="evt_1")
    h = sender.sign(SECRET, 1700000000, body)
    expected = hmac.new(SECRET.encode(), ("1700000000." + body.decode()).encode(), hashlib.sha256).hexdigest()
    assert h == {"X-VECU-Timestamp": "1700000000", "X-VECU-Signature": "sha256=" + expected}


def test_make_event_is_cloudevents():
    ev = json.loads(sender.make_event(id="abc", type="credential.revoked", source="vecu.x"))
    assert ev["id"] == "abc" and ev["type"] == "credential.revoked" and ev["source"] == "vecu.x"
    assert ev["specversion"] == "1.0" and isinstance(ev["data"], dict)
    assert json.loads(sender.make_event())["id"] != json.loads(sender.make_event())["id"]


def test_upstream_records_and_modes(upstream):
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    # two requests on one keep-alive connection, duplicate header kept
    for i in range(2):
        conn.putrequest("POST", "/a/b?x=1")
        conn.putheader("X-Dup", "1")
        conn.putheader("X-Dup", "2")
        conn.putheader("Content-Length", "5")
        conn.endheaders(b"hello")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b'{"ok":true}'
        assert r.getheader("Content-Type") == "application/json"
    conn.close()
    recs = upstream.records()
    assert len(recs) == 2
    assert recs[0]["method"] == "POST" and recs[0]["path"] == "/a/b?x=1"
    assert record_headers(recs[0], "x-dup") == ["1", "2"]
    assert recs[0]["body_bytes"] == b"hello"
    assert recs[0]["connection"] == recs[1]["connection"]
    st = upstream.stats()
    assert st["count"] == 2 and st["connections"] == 1 and st["max_concurrency"] == 1

    upstream.mode(status=201, body="made", fail_next=2, fail_status=503)
    statuses = [sender.request(upstream.url("/x"), b"{}").status for _ in range(3)]
    assert statuses == [503, 503, 201]
    upstream.reset()
    assert upstream.stats()["count"] == 0
    assert sender.request(upstream.url("/x"), b"{}").body == b'{"ok":true}'


def test_upstream_concurrency_and_delay(upstream):
    upstream.mode(delay=0.3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(sender.request(upstream.url("/c"), b"x").status))
               for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert time.monotonic() - t0 < 1.2
    assert upstream.stats()["max_concurrency"] == 4


def test_upstream_drop_resets(upstream):
    upstream.mode(drop=True)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        sender.request(upstream.url("/d"), b"x", timeout=5)
    assert upstream.count() == 1


@pytest.fixture
def flask_peer(tmp_path):
    env = dict(os.environ, VECU_WEBHOOK_SECRET=SECRET)
    p = Peer(PEERS / "flask_receiver.py", env=env, log_dir=tmp_path)
    yield p
    p.stop()


def test_flask_receiver_verifies_like_the_guide(flask_peer):
    body = sender.make_event()
    ok = sender.send(flask_peer.url("/webhooks/vecu"), body, SECRET)
    assert ok.status == 200 and ok.json() == {"received": True}
    bad = sender.send(flask_peer.url("/webhooks/vecu"), body, SECRET + "x")
    assert bad.status == 401 and bad.json() == {"error": "Invalid signature"}
    tampered = sender.send(flask_peer.url("/webhooks/vecu"), body, SECRET,
                           extra_headers={"X-VECU-Timestamp": "1"})
    assert tampered.status == 401
