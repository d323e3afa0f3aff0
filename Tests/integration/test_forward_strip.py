"""Inbound headers that must not reach the upstream: unsigned CloudEvents binary-mode headers
(read by the official CloudEvents SDK), underscore spellings of the headers hookgate owns,
`Expect` after hookgate answered it, and `X-Real-IP` / `Forwarded` from the internet."""
import json
import time

import pytest

import sender
from conftest import (PEERS, SECRET, UPSTREAM_PATH, Peer, RawClient, make_route, record_headers,
                      signed_request_bytes)


class CloudEventsUpstream(Peer):
    """Tests/peers/cloudevents_upstream.py: parses each request with the CloudEvents SDK."""

    def __init__(self, log_dir=None):
        super().__init__(PEERS / "cloudevents_upstream.py", log_dir=log_dir)

    def records(self):
        import urllib.request
        with urllib.request.urlopen(self.url("/_control/records"), timeout=10) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def ce_upstream(module_workdir):
    peer = CloudEventsUpstream(log_dir=module_workdir)
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def ce_gw(module_launch_gateway, ce_upstream):
    return module_launch_gateway([make_route(ce_upstream.url(UPSTREAM_PATH))])


@pytest.fixture(scope="module")
def sgw(module_launch_gateway, module_upstream):
    return module_launch_gateway([make_route(module_upstream.url(UPSTREAM_PATH))])


@pytest.fixture
def upstream(module_upstream, sgw):
    module_upstream.reset()
    yield module_upstream
    assert sgw.alive(), "the gateway died: %s" % sgw.stderr()[-2000:]


ATTACK = [("ce-id", "attacker-id"), ("ce-type", "custody.vehicle.deleted"), ("ce-specversion", "1.0"), ("ce-source", "x")]


@pytest.mark.parametrize("headers", [
    ATTACK,
    [("CE-ID", "attacker-id"), ("CE-TYPE", "custody.vehicle.deleted"), ("CE-SPECVERSION", "1.0"), ("CE-SOURCE", "x")],
    [("Ce-Id", "attacker-id"), ("ce-Type", "custody.vehicle.deleted"), ("cE-specversion", "1.0"), ("ce-source", "x")],
], ids=["lower", "upper", "mixed"])
def test_unsigned_ce_headers_do_not_override_the_signed_event(ce_gw, ce_upstream, headers):
    """The SDK switches to binary mode on any ce- header; hookgate forwards none, so it reads the body."""
    event_id = "evt_ce_" + str(time.monotonic_ns())
    body = sender.make_event(id=event_id, type="custody.vehicle.released")
    before = len(ce_upstream.records())
    r = ce_gw.send(body, extra_headers=dict(headers))
    assert r.status == 200, r
    records = ce_upstream.records()
    assert len(records) == before + 1
    rec = records[-1]
    assert not [k for k, _ in rec["headers"] if k.lower().startswith("ce-")], rec["headers"]
    assert rec["v1"] == {"id": event_id, "type": "custody.vehicle.released"}, rec["v1"]
    assert rec["core"] is not None, "the installed cloudevents has cloudevents.core.bindings.http"
    assert rec["core"] == {"id": event_id, "type": "custody.vehicle.released"}, rec["core"]


@pytest.mark.parametrize("name", ["X_Forwarded_Host", "X_Hookgate_Verified", "X_VECU_Signature", "X_Forwarded_For",
                                  "x_hookgate_event_id", "X_Request_Id"])
def test_underscore_header_names_are_not_forwarded(sgw, upstream, name):
    body = sender.make_event()
    r = sgw.send(body, extra_headers={name: "attacker", "X-Plain": "kept"})
    assert r.status == 200, r
    rec = upstream.records()[-1]
    assert not [k for k, _ in rec["headers"] if "_" in k], rec["headers"]
    assert not [v for _, v in rec["headers"] if "attacker" in v], rec["headers"]
    assert record_headers(rec, "X-Plain") == ["kept"]


def test_underscore_signature_is_not_read_as_the_signature(sgw, upstream):
    """X_VECU_Signature is not X-VECU-Signature for hookgate either: without the real one, 401."""
    body = sender.make_event()
    good = sender.delivery_headers(sender._to_bytes(body), SECRET)
    r = sgw.send(body, extra_headers={"X-VECU-Signature": None, "X_VECU_Signature": good["X-VECU-Signature"]})
    assert r.status == 401, r
    assert upstream.count() == 0


def test_expect_is_not_forwarded(sgw, upstream):
    body = sender._to_bytes(sender.make_event())
    c = RawClient(sgw.port)
    try:
        head, _, payload = signed_request_bytes(body, more_headers=[("Expect", "100-continue")]).partition(b"\r\n\r\n")
        c.send(head + b"\r\n\r\n")
        interim = c.read_response()
        assert interim is not None and interim.status == 100, interim
        c.send(payload)
        r = c.read_response()
        assert r is not None and r.status == 200, r
    finally:
        c.close()
    rec = upstream.records()[-1]
    assert record_headers(rec, "Expect") == [], rec["headers"]


@pytest.mark.parametrize("name,value", [("X-Real-IP", "6.6.6.6"), ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
                                        ("x-real-ip", "6.6.6.6"), ("FORWARDED", "for=6.6.6.6")])
def test_client_claims_from_the_internet_are_removed(sgw, upstream, name, value):
    r = sgw.send(sender.make_event(), extra_headers={name: value})
    assert r.status == 200, r
    rec = upstream.records()[-1]
    assert record_headers(rec, name) == [], rec["headers"]
    assert not [v for _, v in rec["headers"] if "6.6.6.6" in v], rec["headers"]
