"""Route lookup, method and body-size limits: answered by hookgate, nothing reaches upstream."""
import json

import pytest

import sender
from conftest import ROUTE_PATH, UPSTREAM_PATH, SECRET, assert_error, make_route


def test_unknown_path_is_404(gw, upstream):
    body = sender.make_event()
    for path in ("/nope", "/webhooks/vecu2", "/webhooks", "/"):
        r = gw.send(body, path=path)
        assert_error(r, 404, "route_not_found")
    assert upstream.count() == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_non_post_is_405_with_allow(gw, upstream, method):
    body = b"" if method in ("GET", "DELETE") else sender.make_event()
    r = sender.request(gw.url(), body, headers=sender.delivery_headers(body, SECRET), method=method)
    assert_error(r, 405, "method_not_allowed")
    assert (r.header("Allow") or "").replace(" ", "").upper() == "POST"
    assert upstream.count() == 0


def _event_of_size(size, id):
    """A valid signed-able CloudEvents body of exactly `size` bytes."""
    base = json.loads(sender.make_event(id=id))
    base["data"]["pad"] = ""
    raw = json.dumps(base, separators=(",", ":")).encode()
    base["data"]["pad"] = "x" * (size - len(raw))
    raw = json.dumps(base, separators=(",", ":")).encode()
    assert len(raw) == size
    return raw


def test_body_over_limit_is_413_and_at_limit_passes(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH))], max_body_bytes=2048)
    over = _event_of_size(2049, "evt_big_over")
    assert_error(g.send(over), 413, "body_too_large")
    much_over = _event_of_size(20000, "evt_big_much")
    assert_error(g.send(much_over), 413, "body_too_large")
    assert upstream.count() == 0

    at_limit = _event_of_size(2048, "evt_big_at")
    r = g.send(at_limit)
    assert r.status == 200, r
    recs = upstream.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == at_limit


def test_route_path_is_exact(gw, upstream):
    """A path below the route's path is not the route."""
    body = sender.make_event()
    r = gw.send(body, path=ROUTE_PATH + "/extra")
    assert_error(r, 404, "route_not_found")
    assert upstream.count() == 0
