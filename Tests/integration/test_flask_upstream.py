"""The guide's own Flask receiver behind hookgate: what hookgate forwards still verifies there."""
import os

import pytest

import sender
from conftest import PEERS, SECRET, Peer, assert_error, make_route


@pytest.fixture
def flask_peer(tmp_path):
    p = Peer(PEERS / "flask_receiver.py", env=dict(os.environ, VECU_WEBHOOK_SECRET=SECRET), log_dir=tmp_path)
    yield p
    p.stop()


def test_flask_receiver_accepts_events_through_hookgate(start_gateway, flask_peer):
    g = start_gateway([make_route(flask_peer.url("/webhooks/vecu"))])
    for i, etype in enumerate(["custody.vehicle.released", "credential.revoked", "something.else"]):
        body = sender.make_event(id="evt_flask_%d" % i, type=etype)
        r = g.send(body, retry_count=i)
        assert r.status == 200, r
        assert r.json() == {"received": True}
    # a duplicate is answered by hookgate itself
    r = g.send(sender.make_event(id="evt_flask_0"), retry_count=1)
    assert r.status == 200 and r.body == b'{"duplicate":true}'
    # a tampered event is stopped by hookgate before Flask
    assert_error(g.send(sender.make_event(), secret="x" * 40), 401, "signature_mismatch")


def test_flask_receiver_large_unicode_body(start_gateway, flask_peer):
    g = start_gateway([make_route(flask_peer.url("/webhooks/vecu"))])
    body = sender.make_event(data={"text": "\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9 " * 2000})
    r = g.send(body)
    assert r.status == 200 and r.json() == {"received": True}, r
