"""Hostile HTTP on raw sockets: malformed and oversized heads, ambiguous framing, slow clients,
pipelining, many idle connections and the connection cap.

Every refusal must be a JSON answer with an `error` code, must leave the upstream untouched, and
must not consume the event in the dedup ledger: each test then sends the same event correctly and
sees it forwarded."""
import json
import resource
import socket
import time

import pytest

import sender
from conftest import (ROUTE_PATH, UPSTREAM_PATH, RawClient, assert_error, make_route, raw_exchange,
                      request_bytes, signed_headers, signed_request_bytes)

MAX_HEADER = 8192
MAX_BODY = 8192


@pytest.fixture(scope="module")
def hgw(module_launch_gateway, module_upstream):
    """One gateway for the module: client_timeout 1s, 8 KiB header and body limits."""
    return module_launch_gateway([make_route(module_upstream.url(UPSTREAM_PATH))], client_timeout="1s",
                                 max_header_bytes=MAX_HEADER, max_body_bytes=MAX_BODY)


@pytest.fixture
def upstream(module_upstream, hgw):
    module_upstream.reset()
    yield module_upstream
    assert hgw.alive(), "the gateway died: %s" % hgw.stderr()[-2000:]


def untouched_then_delivered(g, upstream, body):
    """Nothing reached the upstream, and the event was not consumed: sent properly now, it is forwarded."""
    assert upstream.count() == 0, "a refused request reached the upstream: %r" % upstream.records()[:1]
    r = g.send(body)
    assert r.status == 200 and r.body == b'{"ok":true}', "event not deliverable afterwards: %r" % (r,)
    assert upstream.count() == 1


def signed_pairs(body):
    return list(signed_headers(body).items())


def refused(g, upstream, data, status, code, body):
    r = raw_exchange(g.port, data)
    assert r is not None, "connection closed without an answer"
    assert_error(r, status, code)
    assert r.header("X-Request-Id")
    untouched_then_delivered(g, upstream, body)
    return r


# ------------------------------------------------------------------ heads
def test_request_line_over_max_header_bytes_is_431(hgw, upstream):
    body = sender.make_event()
    data = signed_request_bytes(body, path=ROUTE_PATH + "?pad=" + "a" * (MAX_HEADER + 100))
    refused(hgw, upstream, data, 431, "headers_too_large", body)


def test_headers_over_max_header_bytes_are_431(hgw, upstream):
    body = sender.make_event()
    pad = [("X-Pad-%04d" % i, "v" * 20) for i in range(3000)]  # ~100 KB of headers
    data = signed_request_bytes(body, more_headers=pad)
    refused(hgw, upstream, data, 431, "headers_too_large", body)


def test_thousands_of_tiny_headers_within_byte_limit_are_431(hgw, upstream):
    body = sender.make_event()
    data = signed_request_bytes(body, more_headers=[("a", "b")] * 1000)
    assert len(data) < MAX_HEADER
    refused(hgw, upstream, data, 431, "headers_too_large", body)


def _mangle(body, how):
    pairs = signed_pairs(body)
    if how == "no-colon":
        raw = request_bytes("POST", ROUTE_PATH, pairs + [("X-Broken", "x")], body)
        return raw.replace(b"X-Broken: x\r\n", b"X-Broken-Header-Without-Colon\r\n")
    if how == "bare-lf-everywhere":
        return request_bytes("POST", ROUTE_PATH, pairs, body).replace(b"\r\n", b"\n")
    if how == "bare-lf-one-line":
        raw = request_bytes("POST", ROUTE_PATH, pairs + [("X-A", "1"), ("X-B", "2")], body)
        return raw.replace(b"X-A: 1\r\n", b"X-A: 1\n")
    if how == "nul-in-value":
        return request_bytes("POST", ROUTE_PATH, pairs + [("X-Nul", b"a\x00b")], body)
    if how == "nul-in-name":
        return request_bytes("POST", ROUTE_PATH, pairs + [(b"X-N\x00l", "v")], body)
    if how == "cr-in-value":
        return request_bytes("POST", ROUTE_PATH, pairs + [("X-Cr", b"a\rb")], body)
    if how == "conflicting-content-length":
        return request_bytes("POST", ROUTE_PATH, pairs + [("Content-Length", len(body)),
                                                          ("Content-Length", len(body) + 5)], body)
    if how == "content-length-list":
        return request_bytes("POST", ROUTE_PATH, pairs + [("Content-Length", "%d, %d" % (len(body), len(body) - 5))],
                             body)
    if how == "content-length-signed":
        return request_bytes("POST", ROUTE_PATH, pairs + [("Content-Length", "+%d" % len(body))], body)
    if how == "content-length-and-chunked":
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        return request_bytes("POST", ROUTE_PATH, pairs + [("Content-Length", len(chunked)),
                                                          ("Transfer-Encoding", "chunked")], chunked)
    if how == "space-before-colon":
        return request_bytes("POST", ROUTE_PATH, pairs + [("X-Space ", "v")], body)
    if how == "obs-fold":
        raw = request_bytes("POST", ROUTE_PATH, pairs + [("X-Fold", "a")], body)
        return raw.replace(b"X-Fold: a\r\n", b"X-Fold: a\r\n  continued\r\n")
    if how == "no-host":
        return request_bytes("POST", ROUTE_PATH, pairs, body, host=None)
    if how == "two-hosts":
        raw = request_bytes("POST", ROUTE_PATH, pairs, body)
        return raw.replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nHost: evil.example\r\n", 1)
    if how == "absolute-form-garbage":
        return request_bytes("POST", "webhooks/vecu", pairs, body)
    raise AssertionError(how)


@pytest.mark.parametrize("how", [
    "no-colon", "bare-lf-everywhere", "bare-lf-one-line", "nul-in-value", "nul-in-name", "cr-in-value",
    "conflicting-content-length", "content-length-list", "content-length-signed", "content-length-and-chunked",
    "space-before-colon", "obs-fold", "no-host", "two-hosts", "absolute-form-garbage",
])
def test_malformed_head_is_400(hgw, upstream, how):
    body = sender.make_event()
    refused(hgw, upstream, _mangle(body, how), 400, "malformed_request", body)


@pytest.mark.parametrize("data_fn,status,code", [
    (lambda b: request_bytes("POST", ROUTE_PATH, signed_pairs(b), b, version="HTTP/2.0"), 505,
     "http_version_not_supported"),
    (lambda b: request_bytes("POST", ROUTE_PATH, signed_pairs(b) + [("Transfer-Encoding", "gzip")], b), 501,
     "unsupported_transfer_encoding"),
    (lambda b: request_bytes("POST", ROUTE_PATH, signed_pairs(b) + [("Expect", "teapot")], b), 417,
     "expectation_failed"),
], ids=["http-2.0", "te-gzip", "expect-other"])
def test_other_refused_heads(hgw, upstream, data_fn, status, code):
    body = sender.make_event()
    refused(hgw, upstream, data_fn(body), status, code, body)


# ------------------------------------------------------------------ chunked bodies
def chunked_request(body_chunks, body_for_sig, trailer=b""):
    pairs = signed_pairs(body_for_sig) + [("Transfer-Encoding", "chunked")]
    head = request_bytes("POST", ROUTE_PATH, pairs, b"", content_length=False)
    return head + body_chunks + trailer


@pytest.mark.parametrize("chunks", [
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"-1\r\nabc\r\n0\r\n\r\n",
    b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    b"\r\nabc\r\n0\r\n\r\n",
    b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
], ids=["zz", "negative", "0x-prefix", "empty", "huge"])
def test_invalid_chunk_size_is_400(hgw, upstream, chunks):
    body = sender.make_event()
    refused(hgw, upstream, chunked_request(chunks, body), 400, "malformed_request", body)


def test_chunk_data_not_followed_by_crlf_is_400(hgw, upstream):
    body = sender.make_event()
    chunks = b"%x\r\n%sXX0\r\n\r\n" % (len(body), body)
    refused(hgw, upstream, chunked_request(chunks, body), 400, "malformed_request", body)


def test_valid_chunked_body_is_forwarded(hgw, upstream):
    body = sender.make_event()
    half = len(body) // 2
    chunks = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    r = raw_exchange(hgw.port, chunked_request(chunks, body))
    assert r is not None and r.status == 200 and r.body == b'{"ok":true}', r
    recs = upstream.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == body


def test_chunked_body_over_max_body_bytes_is_413(hgw, upstream):
    body = sender.make_event()
    one_big = b"%x\r\n" % (MAX_BODY + 1000) + b"a" * (MAX_BODY + 1000) + b"\r\n0\r\n\r\n"
    refused(hgw, upstream, chunked_request(one_big, body), 413, "body_too_large", body)


def test_many_small_chunks_over_max_body_bytes_are_413(hgw, upstream):
    body = sender.make_event()
    chunks = (b"400\r\n" + b"a" * 0x400 + b"\r\n") * (MAX_BODY // 0x400 + 2) + b"0\r\n\r\n"
    refused(hgw, upstream, chunked_request(chunks, body), 413, "body_too_large", body)


def test_content_length_over_max_body_bytes_is_413(hgw, upstream):
    body = sender.make_event()
    data = request_bytes("POST", ROUTE_PATH, signed_pairs(body) + [("Content-Length", MAX_BODY + 1)],
                         body + b" " * (MAX_BODY + 1 - len(body)))
    refused(hgw, upstream, data, 413, "body_too_large", body)


# ------------------------------------------------------------------ timing
def test_body_shorter_than_content_length_then_silence_is_408(hgw, upstream):
    body = sender.make_event()
    data = request_bytes("POST", ROUTE_PATH, signed_pairs(body) + [("Content-Length", len(body) + 10)], body)
    c = RawClient(hgw.port, timeout=5)
    try:
        t0 = time.monotonic()
        c.send(data)
        r = c.read_response(timeout=4)
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert r is not None, "closed without an answer"
    assert_error(r, 408, "request_timeout")
    assert 0.8 <= elapsed <= 2.0, "408 after %.2fs with client_timeout: 1s" % elapsed
    untouched_then_delivered(hgw, upstream, body)


def test_expect_100_continue_with_oversized_length_is_413_before_the_body(hgw, upstream):
    body = sender.make_event()
    head = request_bytes("POST", ROUTE_PATH, signed_pairs(body) + [("Content-Length", 10 * MAX_BODY),
                                                                   ("Expect", "100-continue")],
                         b"", content_length=False)
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(head)  # only the head: the body is never sent
        r = c.read_response(timeout=0.9)  # well before client_timeout would answer 408
    finally:
        c.close()
    assert r is not None, "no answer to the head alone"
    assert r.status != 100, "100 Continue for a body that can never be accepted"
    assert_error(r, 413, "body_too_large")
    untouched_then_delivered(hgw, upstream, body)


def test_expect_100_continue_with_acceptable_length_continues(hgw, upstream):
    body = sender.make_event()
    head = request_bytes("POST", ROUTE_PATH, signed_pairs(body) + [("Content-Length", len(body)),
                                                                   ("Expect", "100-continue")],
                         b"", content_length=False)
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(head)
        interim = c.read_response(timeout=0.9)
        assert interim is not None and interim.status == 100, interim
        c.send(body)
        r = c.read_response(timeout=5)
    finally:
        c.close()
    assert r is not None and r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 1


def test_slowloris_head_is_408_within_client_timeout(hgw, upstream):
    body = sender.make_event()
    data = signed_request_bytes(body)
    c = RawClient(hgw.port, timeout=5)
    r = None
    try:
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 3.0:
            c.try_send(data[sent:sent + 1])  # one byte of the head every 0.3 s
            sent += 1
            if c.readable_within(0.3):
                r = c.read_response(timeout=2)
                break
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert r is not None, "no answer to a slowloris head within 3 s"
    assert_error(r, 408, "request_timeout")
    assert elapsed <= 1.6, "a slowloris head kept the connection for %.2fs (client_timeout: 1s)" % elapsed
    untouched_then_delivered(hgw, upstream, body)


def test_slow_body_is_408_within_client_timeout(hgw, upstream):
    body = sender.make_event()
    data = signed_request_bytes(body)
    head_len = data.index(b"\r\n\r\n") + 4
    c = RawClient(hgw.port, timeout=5)
    r = None
    try:
        t0 = time.monotonic()
        c.send(data[:head_len])
        sent = head_len
        while time.monotonic() - t0 < 3.0:
            if c.readable_within(0.3):
                r = c.read_response(timeout=2)
                break
            c.try_send(data[sent:sent + 1])  # one byte of the body every 0.3 s
            sent += 1
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert r is not None, "no answer to a slow body within 3 s"
    assert_error(r, 408, "request_timeout")
    assert elapsed <= 1.6, "a slow body kept the connection for %.2fs (client_timeout: 1s)" % elapsed
    untouched_then_delivered(hgw, upstream, body)


def test_idle_keep_alive_connection_is_closed_after_client_timeout(hgw, upstream):
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(signed_request_bytes(sender.make_event()))
        r = c.read_response()
        assert r is not None and r.status == 200, r
        t0 = time.monotonic()
        assert c.wait_closed(timeout=3), "idle keep-alive connection still open 3 s later"
        assert 0.7 <= time.monotonic() - t0 <= 2.0
        assert c.buf == b"", "an idle connection should close silently, got %r" % c.buf[:200]
    finally:
        c.close()


def test_client_timeout_does_not_cut_a_request_waiting_on_the_upstream(hgw, upstream):
    """client_timeout bounds receiving the request, not the forward: a 1.5 s upstream is waited for."""
    upstream.mode(delay=1.5)
    body = sender.make_event()
    r = hgw.send(body, timeout=10)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 1


# ------------------------------------------------------------------ versions and pipelining
def test_http10_request_is_served_and_closed(hgw, upstream):
    body = sender.make_event()
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(signed_request_bytes(body, version="HTTP/1.0", host=None))
        r = c.read_response()
        assert r is not None and r.status == 200 and r.body == b'{"ok":true}', r
        assert c.wait_closed(timeout=2), "HTTP/1.0 without keep-alive must close after the answer"
    finally:
        c.close()
    assert upstream.count() == 1 and upstream.records()[0]["body_bytes"] == body


def test_pipelined_requests_are_answered_in_order(hgw, upstream):
    first = sender.make_event()
    data = (signed_request_bytes(first) + signed_request_bytes(first)   # the event, then its retry
            + request_bytes("GET", "/no/such/route", [], b"")
            + signed_request_bytes(sender.make_event(), secret="x" * 40))
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(data)  # all four in one write
        answers = [c.read_response(timeout=5) for _ in range(4)]
    finally:
        c.close()
    assert None not in answers, answers
    assert answers[0].status == 200 and answers[0].body == b'{"ok":true}', answers[0]
    assert answers[1].status == 200 and answers[1].json() == {"duplicate": True}, answers[1]
    assert_error(answers[2], 404, "route_not_found")
    assert_error(answers[3], 401, "signature_mismatch")
    assert upstream.count() == 1


def test_large_answers_to_a_client_that_reads_late_arrive_whole_and_in_order(hgw, upstream):
    # Answers go to the socket directly when nothing is queued; what the socket does not take is
    # queued. Two 4 MiB answers to a client that reads nothing for a while, then reads slowly: the
    # first cannot fit in the socket buffers, the second must wait behind its remainder, and both
    # arrive byte-exact. Reading takes several times client_timeout (1 s): a connection whose
    # client keeps taking its answer is not idle, so it is not cut.
    size = 4 * 1024 * 1024
    upstream.mode(body="".join(chr(0x61 + i % 26) for i in range(size)), content_type="text/plain")
    expected = "".join(chr(0x61 + i % 26) for i in range(size)).encode()
    first, second = sender.make_event(), sender.make_event()
    c = RawClient(hgw.port, timeout=20)
    fill = c._fill

    def slow_fill(deadline):
        time.sleep(0.03)  # ~64 KiB per 30 ms: 8 MiB take about 4 s
        return fill(deadline)

    c._fill = slow_fill
    started = time.monotonic()
    try:
        c.send(signed_request_bytes(first) + signed_request_bytes(second))
        time.sleep(0.5)  # both answered by the upstream meanwhile; the client reads nothing
        answers = [c.read_response(timeout=30) for _ in range(2)]
        assert None not in answers, (answers, c.eof, c.reset)
        assert time.monotonic() - started > 2.0, "the client was meant to read for longer than client_timeout"
        for r in answers:
            assert r.status == 200, r
            assert len(r.body) == size and r.body == expected, "answer body changed (%d bytes)" % len(r.body)
    finally:
        c.close()
    assert upstream.count() == 2
    upstream.reset()


def test_fifty_pipelined_requests_in_one_write(hgw, upstream):
    events = [sender.make_event() for _ in range(25)]
    data = b"".join(signed_request_bytes(e) + request_bytes("GET", "/nope/%d" % i, [], b"")
                    for i, e in enumerate(events))
    c = RawClient(hgw.port, timeout=10)
    try:
        c.send(data)
        answers = [c.read_response(timeout=10) for _ in range(50)]
    finally:
        c.close()
    assert None not in answers, "only %d answers" % sum(a is not None for a in answers)
    assert [a.status for a in answers] == [200, 404] * 25
    assert upstream.count() == 25
    got = [json.loads(rec["body_bytes"])["id"] for rec in upstream.records()]
    assert got == [json.loads(e)["id"] for e in events], "forwarded out of order"


def test_connection_close_request_ends_the_connection(hgw, upstream):
    first, second = sender.make_event(), sender.make_event()
    data = signed_request_bytes(first, more_headers=[("Connection", "close")]) + signed_request_bytes(second)
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(data)
        r = c.read_response()
        assert r is not None and r.status == 200, r
        assert (r.header("Connection") or "").lower() == "close"
        assert c.wait_closed(timeout=3) and c.buf == b""
    finally:
        c.close()
    assert upstream.count() == 1
    r = hgw.send(second)  # the request after the close was not processed, so it is not a duplicate
    assert r.status == 200 and r.body == b'{"ok":true}', r


def test_pipelined_request_after_a_malformed_one_is_not_processed(hgw, upstream):
    """After a refused head the stream cannot be trusted: the gateway answers once and closes."""
    smuggled = sender.make_event()
    data = (request_bytes("POST", ROUTE_PATH, [("Content-Length", "5"), ("Content-Length", "7")], b"12345")
            + signed_request_bytes(smuggled))
    c = RawClient(hgw.port, timeout=5)
    try:
        c.send(data)
        r = c.read_response()
        assert r is not None
        assert_error(r, 400, "malformed_request")
        assert c.wait_closed(timeout=3)
        assert c.buf == b"", "a second answer after the refusal: %r" % c.buf[:200]
    finally:
        c.close()
    untouched_then_delivered(hgw, upstream, smuggled)


# ------------------------------------------------------------------ many connections
def _raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _open_idle(port, n):
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    return socks


def test_1000_idle_connections_while_an_event_is_served_quickly(launch_gateway, start_upstream):
    up = start_upstream()
    if _raise_nofile(2500) < 2200:
        pytest.skip("cannot raise RLIMIT_NOFILE enough for 1000 connections")
    g = launch_gateway([make_route(up.url(UPSTREAM_PATH))], client_timeout="10s")
    idle = _open_idle(g.port, 1000)
    try:
        body = sender.make_event()
        t0 = time.monotonic()
        r = g.send(body, timeout=5)
        elapsed = time.monotonic() - t0
        assert r.status == 200 and r.body == b'{"ok":true}', r
        assert elapsed < 1.0, "a signed event took %.2fs with 1000 idle connections open" % elapsed
        # the idle connections are still open and usable
        for s in (idle[0], idle[499], idle[-1]):
            s.sendall(signed_request_bytes(sender.make_event()))
        for s in (idle[0], idle[499], idle[-1]):
            s.settimeout(5)
            assert s.recv(65536).startswith(b"HTTP/1.1 200 "), "an idle connection was dropped"
    finally:
        for s in idle:
            s.close()
    assert up.count() == 4
    assert g.send(sender.make_event()).status == 200


def _capped_gateway(launch_gateway, up, client_timeout):
    return launch_gateway([make_route(up.url(UPSTREAM_PATH))], max_connections=50, client_timeout=client_timeout)


def test_connection_cap_makes_new_connections_wait_until_idle_ones_close(launch_gateway, start_upstream):
    up = start_upstream()
    g = _capped_gateway(launch_gateway, up, "5s")
    idle = _open_idle(g.port, 60)  # 50 accepted, 10 wait in the backlog
    c = None
    try:
        time.sleep(0.2)
        body = sender.make_event()
        c = RawClient(g.port, timeout=5)  # the 61st: connects (backlog) but is not accepted
        c.send(signed_request_bytes(body))
        assert not c.readable_within(0.7), "the 61st connection was served although 50 were open"
        assert up.count() == 0
        t0 = time.monotonic()
        for s in idle[:20]:
            s.close()
        r = c.read_response(timeout=3)
        assert r is not None and r.status == 200 and r.body == b'{"ok":true}', r
        assert time.monotonic() - t0 < 1.5
    finally:
        for s in idle[20:]:
            s.close()
        if c is not None:
            c.close()
    assert g.alive()
    assert g.send(sender.make_event()).status == 200
    assert up.count() == 2


def test_connection_cap_waiting_connection_served_after_idle_timeouts(launch_gateway, start_upstream):
    up = start_upstream()
    g = _capped_gateway(launch_gateway, up, "1s")
    idle = _open_idle(g.port, 60)
    c = None
    try:
        body = sender.make_event()
        t0 = time.monotonic()
        c = RawClient(g.port, timeout=5)
        c.send(signed_request_bytes(body))
        # the idle ones are closed at client_timeout; then the waiting one is accepted and served
        r = c.read_response(timeout=4)
        elapsed = time.monotonic() - t0
        assert r is not None, "the waiting connection was never served"
        assert r.status == 200 and r.body == b'{"ok":true}', r
        assert 0.5 <= elapsed <= 3.0, "served after %.2fs" % elapsed
    finally:
        for s in idle:
            s.close()
        if c is not None:
            c.close()
    assert g.alive()
    assert g.send(sender.make_event()).status == 200
    assert up.count() == 2
