"""SIGTERM / SIGINT: stop accepting, answer new requests on open connections 503 shutting_down,
let forwards in flight finish (at most shutdown_grace), exit 0."""
import signal
import socket
import threading
import time

import pytest

import sender
from conftest import (UPSTREAM_PATH, RawClient, assert_error, make_route, poll_until,
                      signed_request_bytes)


class InFlight:
    """A signed event sent on its own thread and connection; .result is the Response or exception."""

    def __init__(self, g, body, timeout=20):
        self.result = None
        self.answered_at = None
        self.thread = threading.Thread(target=self._run, args=(g, body, timeout))
        self.thread.start()

    def _run(self, g, body, timeout):
        try:
            self.result = g.send(body, timeout=timeout)
        except Exception as e:  # noqa: BLE001
            self.result = e
        self.answered_at = time.monotonic()

    def join(self, timeout=15):
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the in-flight request never finished"
        return self.result


def start_in_flight(g, upstream, event_id, delay):
    upstream.mode(delay=delay)
    f = InFlight(g, sender.make_event(id=event_id))
    assert poll_until(lambda: upstream.stats()["in_flight"] == 1, timeout=3), "the forward never reached the upstream"
    return f


def _refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


@pytest.fixture(params=[1, 4], ids=["1-worker", "4-workers"])
def sgw(launch_gateway, upstream, request):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], shutdown_grace="25s", workers=request.param)
    g.expect_exit = True
    return g


def test_in_flight_event_still_delivered_after_sigterm(sgw, upstream):
    f = start_in_flight(sgw, upstream, "evt_drain_inflight", delay=1.0)
    t0 = time.monotonic()
    sgw.signal(signal.SIGTERM)
    r = f.join()
    assert not isinstance(r, Exception), r
    assert r.status == 200 and r.body == b'{"ok":true}', r
    rc = sgw.wait_exit(5)
    exited = time.monotonic() - t0
    assert rc == 0, "exit code %s\n%s" % (rc, sgw.stderr()[-2000:])
    assert exited < 5, "took %.1fs to exit with a 25s grace and a 1s upstream" % exited
    assert f.answered_at - t0 <= exited + 0.1
    recs = upstream.records()
    assert len(recs) == 1 and b"evt_drain_inflight" in recs[0]["body_bytes"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_gateway_exits_zero_promptly(sgw, upstream, sig):
    assert sgw.send(sender.make_event()).status == 200
    t0 = time.monotonic()
    sgw.signal(sig)
    rc = sgw.wait_exit(5)
    assert rc == 0, rc
    assert time.monotonic() - t0 < 2.0
    assert _refused(sgw.port)


def test_open_idle_keep_alive_connection_does_not_hold_the_exit(sgw, upstream):
    """Open connections stay open during the drain, but an idle one must not keep the process alive."""
    c = RawClient(sgw.port, timeout=5)
    try:
        c.send(signed_request_bytes(sender.make_event()))
        r = c.read_response()
        assert r is not None and r.status == 200, r
        t0 = time.monotonic()
        sgw.signal(signal.SIGTERM)
        assert sgw.wait_exit(5) == 0
        assert time.monotonic() - t0 < 2.0
        assert c.wait_closed(timeout=2)
        assert c.buf == b"", "an idle connection got %r at exit" % c.buf[:200]
    finally:
        c.close()


def test_new_connections_are_refused_while_draining(sgw, upstream):
    f = start_in_flight(sgw, upstream, "evt_drain_refuse", delay=1.5)
    sgw.signal(signal.SIGTERM)
    assert poll_until(lambda: _refused(sgw.port), timeout=1.0, interval=0.02), \
        "new connections were still accepted after SIGTERM"
    assert sgw.alive(), "the gateway did not wait for the forward in flight"
    r = f.join()
    assert not isinstance(r, Exception) and r.status == 200, r
    assert sgw.wait_exit(5) == 0


def test_request_on_open_keep_alive_connection_during_drain_gets_503(sgw, upstream):
    c = RawClient(sgw.port, timeout=5)
    f = None
    try:
        c.send(signed_request_bytes(sender.make_event(id="evt_ka_first")))
        first = c.read_response()
        assert first is not None and first.status == 200, first
        assert (first.header("Connection") or "").lower() != "close"

        f = start_in_flight(sgw, upstream, "evt_ka_hold", delay=1.5)
        sgw.signal(signal.SIGTERM)
        assert poll_until(lambda: _refused(sgw.port), timeout=1.0, interval=0.02)

        body = sender.make_event(id="evt_ka_during_drain")
        c.try_send(signed_request_bytes(body))
        r = c.read_response(timeout=5)
        assert r is not None, "the keep-alive connection was closed instead of answered"
        assert_error(r, 503, "shutting_down")
        assert r.header("Retry-After"), r.header_list
        assert (r.header("Connection") or "").lower() == "close", r.header_list
        assert c.wait_closed(timeout=3)
        assert f.join().status == 200
    finally:
        c.close()
        if f is not None:
            f.join()
    assert sgw.wait_exit(5) == 0
    assert b"evt_ka_during_drain" not in b"".join(rec["body_bytes"] for rec in upstream.records())


def test_request_started_before_sigterm_gets_503_shutting_down(sgw, upstream):
    """A request whose head was still arriving when SIGTERM came is answered 503 shutting_down
    with Retry-After and Connection: close, and not forwarded."""
    body = sender.make_event(id="evt_drain_partial")
    raw = signed_request_bytes(body)
    c = RawClient(sgw.port, timeout=5)
    try:
        c.send(raw[:20])
        time.sleep(0.1)
        f = start_in_flight(sgw, upstream, "evt_drain_hold2", delay=1.5)
        sgw.signal(signal.SIGTERM)
        assert poll_until(lambda: _refused(sgw.port), timeout=1.0, interval=0.02)
        c.try_send(raw[20:])
        r = c.read_response(timeout=5)
        assert r is not None, "connection closed without an answer"
        assert_error(r, 503, "shutting_down")
        assert r.header("Retry-After"), r.header_list
        assert (r.header("Connection") or "").lower() == "close", r.header_list
        assert r.header("X-Request-Id")
        assert c.wait_closed(timeout=3)
        assert f.join().status == 200
    finally:
        c.close()
    assert sgw.wait_exit(5) == 0
    ids = [rec["body_bytes"] for rec in upstream.records()]
    assert not any(b"evt_drain_partial" in b for b in ids), ids


def _grace_expiry_runs(launch_gateway, upstream, n):
    """n gateways (shutdown_grace: 1s) each with a forward in flight at an upstream that hangs
    10 s, all sent SIGTERM together. Returns [(gateway, exit code or None, seconds to exit, result)]."""
    gws = [launch_gateway([make_route(upstream.url(UPSTREAM_PATH), timeout="20s")], shutdown_grace="1s")
           for _ in range(n)]
    upstream.mode(delay=10)
    flights = []
    for i, g in enumerate(gws):
        g.expect_exit = True
        g.wait_signal_handlers()
        flights.append(InFlight(g, sender.make_event(id="evt_grace_hang_%d" % i)))
    assert poll_until(lambda: upstream.stats()["in_flight"] == n, timeout=3), upstream.stats()
    t0 = time.monotonic()
    for g in gws:
        g.signal(signal.SIGTERM)
    out = []
    for g, f in zip(gws, flights):
        rc = g.wait_exit(max(0.1, t0 + 6 - time.monotonic()))
        out.append((g, rc, time.monotonic() - t0 if rc is not None else None, f.join(timeout=5)))
    return out


def test_shutdown_grace_bounds_the_wait_for_a_hanging_upstream(launch_gateway, upstream):
    (g, rc, elapsed, r), = _grace_expiry_runs(launch_gateway, upstream, 1)
    assert rc is not None, "still running 6 s after SIGTERM with shutdown_grace: 1s"
    assert 0.8 <= elapsed <= 3.0, "exited %.2fs after SIGTERM with shutdown_grace: 1s" % elapsed
    # the upstream never answered: the sender must not have been told it was delivered
    assert isinstance(r, Exception) or r.status >= 500, r
    warned = [e for e in g.logs() if e.get("level") in ("warning", "warn", "error")]
    assert warned, "grace expiry with a forward in flight should be logged"


def test_shutdown_grace_expiry_exits_zero(launch_gateway, upstream):
    # four at once: the abort is intermittent (about 5 runs in 6), so one lucky run cannot hide it
    runs = _grace_expiry_runs(launch_gateway, upstream, 4)
    codes = [rc for _, rc, _, _ in runs]
    assert codes == [0] * len(runs), "exit codes %s\n%s" % (codes, "\n".join(
        g.stderr()[:300] for g, rc, _, _ in runs if rc != 0))
    for _, _, elapsed, _ in runs:
        assert elapsed <= 3.0


def test_default_grace_waits_for_a_slow_upstream(launch_gateway, upstream):
    """Without shutdown_grace in the file (default 25s) a 2 s forward is waited for."""
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))])
    g.expect_exit = True
    f = start_in_flight(g, upstream, "evt_default_grace", delay=2.0)
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    r = f.join()
    assert not isinstance(r, Exception) and r.status == 200, r
    assert g.wait_exit(5) == 0
    assert time.monotonic() - t0 >= 1.5
