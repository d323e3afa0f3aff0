"""The admin listener: /healthz, /readyz (503 while draining), /metrics (Prometheus text), and
nothing else; admin paths are never served on the webhook port."""
import json
import signal
import socket
import threading

import pytest

import sender
from conftest import (ADMIN_PATHS, SECRET, UPSTREAM_PATH, assert_error, make_route, poll_until,
                      signed_request_bytes)

ROUTE = "vecu"


@pytest.fixture
def agw(launch_gateway, upstream):
    return launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)


def test_healthz_and_readyz(agw):
    # the webhook port accepts (backlog) a moment before the workers run: readiness may lag
    assert poll_until(lambda: agw.admin("/readyz").status == 200, timeout=3), agw.admin("/readyz")
    for path, status in (("/healthz", 200), ("/readyz", 200)):
        r = agw.admin(path)
        assert r.status == status, (path, r)
        assert (r.header("Content-Type") or "").startswith("application/json"), r.header_list
        assert isinstance(r.json(), dict)


def test_metrics_exposition_names_and_types(agw, upstream):
    assert agw.send(sender.make_event()).status == 200
    r = agw.admin("/metrics")
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/plain"), r.header_list
    m = agw.metrics()
    expected_types = {
        "hookgate_requests_total": "counter",
        "hookgate_upstream_responses_total": "counter",
        "hookgate_upstream_duration_seconds": "histogram",
        "hookgate_request_duration_seconds": "histogram",
        "hookgate_dedup_entries": "gauge",
        "hookgate_dedup_evictions_total": "counter",
        "hookgate_dedup_in_flight": "gauge",
        "hookgate_requests_in_flight": "gauge",
        "hookgate_upstream_connections_in_use": "gauge",
        "hookgate_config_reloads_total": "counter",
    }
    for name, kind in expected_types.items():
        assert m.types.get(name) == kind, "%s: TYPE %r, expected %r\n%s" % (name, m.types.get(name), kind, m.text)
    for name in ("hookgate_upstream_duration_seconds", "hookgate_request_duration_seconds"):
        assert m.values(name + "_bucket", le="+Inf"), m.text
        assert m.values(name + "_sum") and m.values(name + "_count"), m.text


def test_metrics_move_with_forwarded_duplicate_and_bad_signature(agw, upstream):
    m0 = agw.metrics()
    assert m0.get("hookgate_config_reloads_total", result="success") == 0
    assert m0.get("hookgate_config_reloads_total", result="failure") == 0
    assert m0.get("hookgate_requests_in_flight") == 0

    body = sender.make_event(id="evt_metrics_1")
    assert agw.send(body).status == 200                                   # forwarded
    assert agw.send(body, retry_count=1).json() == {"duplicate": True}   # duplicate
    assert_error(agw.send(sender.make_event(id="evt_metrics_bad"), secret="w" * 40), 401, "signature_mismatch")

    m = agw.wait_metric(lambda m: m.get("hookgate_request_duration_seconds_count", 0) >= 3)
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="forwarded") == 1, m.text
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="duplicate") == 1, m.text
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="duplicate", reason="duplicate") == 1, m.text
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="rejected", reason="signature_mismatch") == 1, m.text
    assert m.get("hookgate_requests_total") == 3, m.text
    assert m.get("hookgate_upstream_responses_total", route=ROUTE, **{"class": "2xx"}) == 1, m.text
    assert m.get("hookgate_upstream_responses_total") == 1, m.text
    assert m.get("hookgate_upstream_duration_seconds_count") == 1, m.text
    assert m.get("hookgate_upstream_duration_seconds_bucket", le="+Inf") == 1, m.text
    assert m.get("hookgate_request_duration_seconds_count") == 3, m.text
    assert m.get("hookgate_dedup_entries", route=ROUTE) == 1, m.text
    assert m.get("hookgate_dedup_evictions_total", route=ROUTE) == 0, m.text
    assert m.get("hookgate_dedup_in_flight", route=ROUTE) == 0, m.text
    assert m.get("hookgate_requests_in_flight") == 0, m.text
    assert m.get("hookgate_upstream_connections_in_use", route=ROUTE, default=0) == 0, m.text


def test_upstream_response_classes(agw, upstream):
    plan = [(dict(status=202), "2xx"), (dict(status=400), "4xx"), (dict(status=409), "4xx"),
            (dict(status=429), "429"), (dict(status=500), "5xx"), (dict(status=503), "5xx"),
            (dict(drop=True), "error")]
    for i, (mode, _) in enumerate(plan):
        upstream.mode(**mode)
        agw.send(sender.make_event(id="evt_class_%d" % i))
    m = agw.wait_metric(lambda m: m.get("hookgate_upstream_responses_total", 0) >= len(plan))
    for cls in ("2xx", "4xx", "429", "5xx", "error"):
        want = sum(1 for _, c in plan if c == cls)
        assert m.get("hookgate_upstream_responses_total", route=ROUTE, **{"class": cls}) == want, (cls, m.text)
    # only the 2xx one is remembered as delivered
    assert m.get("hookgate_dedup_entries", route=ROUTE) == 1, m.text


def test_dedup_evictions_counted(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), dedup={"capacity": 2, "ttl": "1h"})], admin=True)
    for i in range(5):
        assert g.send(sender.make_event(id="evt_evict_%d" % i)).status == 200
    m = g.metrics()
    assert m.get("hookgate_dedup_entries", route=ROUTE) == 2, m.text
    assert m.get("hookgate_dedup_evictions_total", route=ROUTE) == 3, m.text


def test_in_flight_gauges_while_upstream_hangs(agw, upstream):
    upstream.mode(delay=1.5)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", agw.send(sender.make_event(id="evt_gauge"))))
    t.start()

    def busy(m):
        return (m.get("hookgate_requests_in_flight") == 1 and m.get("hookgate_dedup_in_flight", route=ROUTE) == 1
                and m.get("hookgate_upstream_connections_in_use", route=ROUTE) == 1)
    try:
        assert poll_until(lambda: upstream.stats()["in_flight"] == 1, timeout=3), "the forward never started"
        m = agw.wait_metric(busy, timeout=1.0)
        assert busy(m), m.text
    finally:
        t.join(timeout=10)
    assert result["r"].status == 200

    def idle(m):
        return (m.get("hookgate_requests_in_flight") == 0 and m.get("hookgate_dedup_in_flight", route=ROUTE) == 0
                and m.get("hookgate_upstream_connections_in_use", route=ROUTE) == 0)
    m = agw.wait_metric(idle, timeout=2)
    assert idle(m), m.text
    assert m.get("hookgate_upstream_duration_seconds_bucket", le="0.5") == 0, m.text
    assert m.get("hookgate_upstream_duration_seconds_bucket", le="2.5") == 1, m.text


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_paths_are_not_served_on_the_webhook_port(agw, upstream, path):
    for method in ("GET", "POST"):
        r = sender.request(agw.url(path), body=b"" if method == "GET" else b"{}", method=method, timeout=5)
        assert_error(r, 404, "route_not_found")
    assert upstream.count() == 0


def _admin_error(r, status):
    assert r.status == status, r
    assert (r.header("Content-Type") or "").split(";")[0] == "application/json", r.header_list
    doc = json.loads(r.body)
    assert isinstance(doc.get("error"), str) and doc["error"], doc


def test_admin_port_serves_only_its_three_paths(agw, upstream):
    for path in ("/", "/metrics/", "/healthz/x", "/ready", "/webhooks/vecu", "/debug/pprof", "/_control/records"):
        _admin_error(agw.admin(path), 404)
        _admin_error(agw.admin(path, method="POST", body=b""), 404)
    for path in ADMIN_PATHS:
        for method in ("POST", "PUT", "DELETE"):
            r = agw.admin(path, method=method, body=b"" if method != "DELETE" else None)
            _admin_error(r, 405)
    assert upstream.count() == 0


def test_admin_port_post_with_body_is_405_or_404_json(agw, upstream):
    for path in ADMIN_PATHS:
        _admin_error(agw.admin(path, method="POST", body=b'{"x":1}'), 405)
    # a signed event sent to the admin port is not a webhook: 404 JSON, nothing forwarded
    body = sender.make_event(id="evt_admin_port")
    r = sender.send("http://127.0.0.1:%d/webhooks/vecu" % agw.admin_port, body, SECRET)
    _admin_error(r, 404)
    assert upstream.count() == 0
    assert agw.send(body).body == b'{"ok":true}'


def test_signed_event_on_admin_port_is_not_forwarded(agw, upstream):
    body = sender.make_event(id="evt_admin_port_2")
    r = sender.send("http://127.0.0.1:%d/webhooks/vecu" % agw.admin_port, body, SECRET)
    assert r.status >= 400, r
    assert upstream.count() == 0
    # and it is still deliverable on the webhook port
    assert agw.send(body).body == b'{"ok":true}'
    assert agw.admin("/healthz").status == 200


def test_readyz_503_while_draining(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, shutdown_grace="10s")
    assert poll_until(lambda: g.admin("/readyz").status == 200, timeout=3)
    upstream.mode(delay=1.5)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", g.send(sender.make_event(id="evt_drain_ready"))))
    t.start()
    try:
        assert poll_until(lambda: upstream.stats()["in_flight"] == 1, timeout=3)
        g.expect_exit = True
        g.signal(signal.SIGTERM)
        ready = poll_until(lambda: g.admin("/readyz").status == 503, timeout=1.0, interval=0.02)
        assert ready, "/readyz did not turn 503 after SIGTERM"
        r = g.admin("/readyz")
        assert r.status == 503 and isinstance(r.json(), dict), r
        assert g.admin("/healthz").status == 200  # alive, just not ready
    finally:
        t.join(timeout=10)
    assert result["r"].status == 200, result
    assert g.wait_exit(5) == 0


def test_gauges_return_to_zero_after_upstream_failures(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), timeout="300ms")], admin=True)
    upstream.mode(drop=True)
    assert_error(g.send(sender.make_event()), 502, "upstream_unreachable")
    upstream.mode(delay=1.0)
    assert_error(g.send(sender.make_event()), 504, "upstream_timeout")
    upstream.mode(status=500)
    assert g.send(sender.make_event()).status == 500
    m = g.metrics()
    assert m.get("hookgate_upstream_responses_total", route=ROUTE, **{"class": "error"}) == 2, m.text
    assert m.get("hookgate_upstream_responses_total", route=ROUTE, **{"class": "5xx"}) == 1, m.text
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="forwarded", reason="upstream_unreachable") == 1, m.text
    assert m.get("hookgate_requests_total", route=ROUTE, outcome="forwarded", reason="upstream_timeout") == 1, m.text
    assert m.get("hookgate_upstream_connections_in_use", route=ROUTE) == 0, m.text
    assert m.get("hookgate_dedup_in_flight", route=ROUTE) == 0, m.text
    assert m.get("hookgate_dedup_entries", route=ROUTE) == 0, m.text
    assert m.get("hookgate_requests_in_flight") == 0, m.text


def test_sender_gone_mid_forward_is_still_accounted(agw, upstream):
    """The sender hangs up while the upstream works: the forward completes, the event counts as
    delivered (a retry is a duplicate) and no gauge is left behind."""
    upstream.mode(delay=0.5)
    body = sender.make_event()
    s = socket.create_connection(("127.0.0.1", agw.port), timeout=5)
    s.sendall(signed_request_bytes(body))
    assert poll_until(lambda: upstream.stats()["in_flight"] == 1, timeout=3)
    s.close()
    assert poll_until(lambda: upstream.stats()["in_flight"] == 0, timeout=3)
    m = agw.wait_metric(lambda m: m.get("hookgate_requests_in_flight") == 0, timeout=3)
    assert m.get("hookgate_requests_in_flight") == 0, m.text
    assert m.get("hookgate_upstream_connections_in_use", route=ROUTE) == 0, m.text
    assert m.get("hookgate_dedup_in_flight", route=ROUTE) == 0, m.text
    upstream.mode()
    r = agw.send(body, retry_count=1)
    assert r.status == 200 and r.json() == {"duplicate": True}, r
    assert upstream.count() == 1
