"""Upstream connection pool: bounded, kept alive, queued requests all served."""
import json
import socket
import ssl
import threading
import time

import pytest

import sender
from conftest import UPSTREAM_PATH, RawClient, make_route, raw_exchange, request_bytes, signed_request_bytes


def test_pool_bounds_upstream_concurrency(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH), max_connections=2)])
    upstream.mode(delay=0.3)
    n = 10
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def worker(i):
        try:
            barrier.wait(timeout=10)
            results[i] = g.send(sender.make_event(id="evt_pool_%d" % i), timeout=30)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    assert [r.status for r in results] == [200] * n, [(r.status, r.body) for r in results]
    assert all(r.body == b'{"ok":true}' for r in results)
    st = upstream.stats()
    assert st["count"] == n
    ids = sorted(json.loads(rec["body_bytes"])["id"] for rec in upstream.records())
    assert ids == sorted("evt_pool_%d" % i for i in range(n))
    assert st["max_concurrency"] <= 2, "max_connections: 2 but upstream saw %d at once" % st["max_concurrency"]
    assert st["connections"] <= 2, "pool should reuse at most 2 connections, upstream saw %d" % st["connections"]
    # 10 requests x 0.3 s over 2 connections cannot take less than 1.5 s
    assert elapsed >= 1.4


def test_sequential_requests_reuse_one_keepalive_connection(gw, upstream):
    for i in range(5):
        r = gw.send(sender.make_event(id="evt_keepalive_%d" % i))
        assert r.status == 200, r
    recs = upstream.records()
    assert len(recs) == 5
    conns = {rec["connection"] for rec in recs}
    assert len(conns) == 1, "upstream connections should be kept alive and reused, saw %d" % len(conns)


class StrayAnswerUpstream:
    """A raw-socket upstream that answers the first request with an answer of exactly
    `answer_bytes` bytes followed, in the same write, by a complete answer nobody asked for;
    every later request for an event is answered 503 the first time and 200 after that. It
    answers the first request only once `release` is set, so the test can queue a second event
    behind it first."""

    STRAY = b'HTTP/1.1 200 X\r\nContent-Length: 13\r\n\r\n{"fake":true}'

    def __init__(self, answer_bytes, tls=None):
        self.answer_bytes = answer_bytes
        self.tls = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls.cert, tls.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.release = threading.Event()
        self.first_received = threading.Event()
        self.lock = threading.Lock()
        self.requests = []  # (connection number, event id) in arrival order
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, UPSTREAM_PATH)

    def first_answer(self):
        """An answer whose bytes, head included, number exactly `answer_bytes`."""
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        length = self.answer_bytes - len(head % 0)
        while len(head % length) + length != self.answer_bytes:
            length -= 1
        body = (b'{"ok":true,"pad":"' + b"p" * (length - 20) + b'"}')
        answer = head % length + body
        assert len(answer) == self.answer_bytes and len(body) == length
        return answer

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn, number):
        buffered = b""
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        with conn:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buffered) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                body, buffered = buffered[:length], buffered[length:]
                event_id = json.loads(body)["id"]
                with self.lock:
                    earlier = [i for _, i in self.requests]
                    self.requests.append((number, event_id))
                if not earlier:
                    self.first_received.set()
                    self.release.wait(timeout=20)
                    conn.sendall(self.first_answer() + self.STRAY)
                elif event_id not in earlier:
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 15\r\n\r\n{\"again\":true}\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")

    def close(self):
        self.release.set()
        self.listener.close()


@pytest.mark.parametrize("answer_bytes", [4096, 16384])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_bytes_after_an_answer_never_answer_the_next_event(start_gateway, tls_material, scheme, answer_bytes):
    """With one connection and a second event queued, an answer that ends exactly at a read
    boundary and is followed by a stray answer in the same write: the stray answer must not be
    taken as the second event's (it would be relayed to its sender as a 200 and the event
    recorded as delivered although the upstream answered it 503)."""
    up = StrayAnswerUpstream(answer_bytes, tls=tls_material.server if scheme == "https" else None)
    try:
        route = make_route(up.url(), max_connections=1)
        if scheme == "https":
            route["upstream"]["ca_file"] = tls_material.ca
        g = start_gateway([route], workers=1)
        first = sender.make_event(id="evt_stray_first_%d" % answer_bytes)
        second = sender.make_event(id="evt_stray_second_%d" % answer_bytes)
        results = {}
        t1 = threading.Thread(target=lambda: results.__setitem__("first", g.send(first, timeout=30)))
        t1.start()
        assert up.first_received.wait(timeout=20), "the first event never reached the upstream"
        queued = RawClient(g.port, timeout=30)
        queued.send(signed_request_bytes(second))
        # The gateway answers this itself on the same loop: once it has, the second event,
        # written before it, has been read and queued behind the busy connection.
        assert raw_exchange(g.port, request_bytes("GET", "/not-a-route")).status == 404
        up.release.set()
        t1.join(timeout=30)
        r2 = queued.read_response(timeout=30)
        queued.close()
        assert results["first"].status == 200 and results["first"].body.startswith(b'{"ok":true,"pad":'), results["first"]
        assert r2.body != b'{"fake":true}', "the stray answer was relayed to the second event's sender"
        assert r2.status >= 500, "the upstream answered the second event 503, the sender got %r" % r2
        assert [i for _, i in up.requests] == [json.loads(first)["id"], json.loads(second)["id"]], up.requests
        # Not recorded as delivered: the retry is forwarded again, and delivered now.
        retry = g.send(second, retry_count=1)
        assert retry.status == 200 and retry.body == b'{"ok":true}', retry
        assert [i for _, i in up.requests].count(json.loads(second)["id"]) == 2, up.requests
    finally:
        up.close()
