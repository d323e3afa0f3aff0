"""Framing and Host attacks on raw sockets: Unicode look-alikes of protocol tokens, hostile
chunk extensions and trailers (request smuggling), duplicate and invalid Host headers.

Each refusal is `400 malformed_request` (or 501 for an unknown transfer coding), nothing reaches
the upstream, and the event is still deliverable afterwards."""
import pytest

import sender
from conftest import (ROUTE_PATH, UPSTREAM_PATH, RawClient, assert_error, make_route, raw_exchange, request_bytes,
                      signed_headers, signed_request_bytes)


@pytest.fixture(scope="module")
def fgw(module_launch_gateway, module_upstream):
    return module_launch_gateway([make_route(module_upstream.url(UPSTREAM_PATH))], client_timeout="2s")


@pytest.fixture
def upstream(module_upstream, fgw):
    module_upstream.reset()
    yield module_upstream
    assert fgw.alive(), "the gateway died: %s" % fgw.stderr()[-2000:]


def untouched_then_delivered(g, upstream, body):
    assert upstream.count() == 0, "a refused request reached the upstream: %r" % upstream.records()[:1]
    r = g.send(body)
    assert r.status == 200, "event not deliverable afterwards: %r" % (r,)
    assert upstream.count() == 1


def chunked(body, chunks, head_extra=()):
    pairs = list(signed_headers(body).items()) + [("Transfer-Encoding", "chunked")] + list(head_extra)
    return request_bytes("POST", ROUTE_PATH, pairs, b"", content_length=False) + chunks


# ------------------------------------------------------------------ look-alike tokens
@pytest.mark.parametrize("value", ["chun\u212aed".encode(), "CHUN\u212aED".encode(), "chunked\u017f".encode(),
                                   "\uff43hunked".encode()], ids=["kelvin", "kelvin-upper", "long-s", "fullwidth"])
def test_transfer_encoding_look_alike_is_not_chunked(fgw, upstream, value):
    body = sender._to_bytes(sender.make_event())
    data = chunked(body, b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    data = data.replace(b"Transfer-Encoding: chunked", b"Transfer-Encoding: " + value)
    r = raw_exchange(fgw.port, data)
    assert r is not None
    assert r.status in (400, 501), r
    assert_error(r, r.status, "unsupported_transfer_encoding" if r.status == 501 else "malformed_request")
    untouched_then_delivered(fgw, upstream, body)


# ------------------------------------------------------------------ chunk extensions and trailers
HOSTILE_CHUNKS = {
    "ext-bare-lf": b"%x;a\nb\r\n%s\r\n0\r\n\r\n",
    "ext-lone-cr": b"%x;a\rb\r\n%s\r\n0\r\n\r\n",
    "ext-nul": b"%x;a\x00b\r\n%s\r\n0\r\n\r\n",
    "ext-ctl": b"%x;a=\x01\r\n%s\r\n0\r\n\r\n",
    "ext-empty-name": b"%x;=v\r\n%s\r\n0\r\n\r\n",
    "ext-empty": b"%x;\r\n%s\r\n0\r\n\r\n",
    "ext-unterminated-quote": b"%x;a=\"xy\r\n%s\r\n0\r\n\r\n",
    "size-bare-lf": b"%x\n\r\n%s\r\n0\r\n\r\n",
    "trailer-bare-lf": b"%x\r\n%s\r\n0\r\nX-T: a\nb\r\n\r\n",
    "trailer-no-colon": b"%x\r\n%s\r\n0\r\nX-T\r\n\r\n",
    "trailer-folded": b"%x\r\n%s\r\n0\r\nX-T: a\r\n folded\r\n\r\n",
    "trailer-nul": b"%x\r\n%s\r\n0\r\nX-T: a\x00\r\n\r\n",
    "trailer-space-before-colon": b"%x\r\n%s\r\n0\r\nX-T : a\r\n\r\n",
    "last-chunk-ext-lone-cr": b"%x\r\n%s\r\n0;a\r\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CHUNKS))
def test_hostile_chunk_lines_are_400(fgw, upstream, name):
    body = sender._to_bytes(sender.make_event())
    r = raw_exchange(fgw.port, chunked(body, HOSTILE_CHUNKS[name] % (len(body), body)))
    assert r is not None, "connection closed without an answer"
    assert_error(r, 400, "malformed_request")
    untouched_then_delivered(fgw, upstream, body)


def test_bare_lf_after_last_chunk_does_not_swallow_the_next_request(fgw, upstream):
    """`0\\r\\n\\nGET /hidden ...`: the hidden head is not taken as trailers, no second request runs."""
    body = sender._to_bytes(sender.make_event())
    hidden_body = sender._to_bytes(sender.make_event())
    hidden = signed_request_bytes(hidden_body)
    data = chunked(body, b"%x\r\n%s\r\n0\r\n\n" % (len(body), body)) + hidden
    c = RawClient(fgw.port)
    try:
        c.try_send(data)
        first = c.read_response()
        assert first is not None
        assert_error(first, 400, "malformed_request")
        assert c.read_response(timeout=1.0) is None, "a second answer: the hidden request was served"
    finally:
        c.close()
    assert upstream.count() == 0, upstream.records()[:1]
    untouched_then_delivered(fgw, upstream, hidden_body)


def test_valid_extensions_and_trailers_are_forwarded(fgw, upstream):
    body = sender._to_bytes(sender.make_event())
    half = len(body) // 2
    chunks = b'%x ; name = "quoted \\" value" ; flag\r\n%s\r\n%x;a=b\r\n%s\r\n0\r\nX-Checksum: abc\r\n\r\n' % (
        half, body[:half], len(body) - half, body[half:])
    r = raw_exchange(fgw.port, chunked(body, chunks))
    assert r is not None and r.status == 200, r
    assert upstream.records()[-1]["body_bytes"] == body


# ------------------------------------------------------------------ Host
@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_two_host_lines_are_400(fgw, upstream, version):
    body = sender._to_bytes(sender.make_event())
    data = signed_request_bytes(body, more_headers=[("Host", "127.0.0.1"), ("Host", "evil.example")], version=version)
    assert data.count(b"\r\nHost: ") == 2
    r = raw_exchange(fgw.port, data)
    assert r is not None
    assert_error(r, 400, "malformed_request")
    untouched_then_delivered(fgw, upstream, body)


INVALID_HOSTS = [b"evil.example/../x?y", b"a b", b"evil..example", b".example", b"host:80:80", b"host:8o",
                 b"host:65536", b"a@b", b"caf\xc3\xa9.example", b"\xe2\x84\xaa.example", b"", b"[::1", b"host:"]


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
@pytest.mark.parametrize("host", INVALID_HOSTS, ids=[h.decode("utf-8", "replace") or "empty" for h in INVALID_HOSTS])
def test_invalid_host_is_400(fgw, upstream, host, version):
    body = sender._to_bytes(sender.make_event())
    r = raw_exchange(fgw.port, signed_request_bytes(body, host=host, version=version))
    assert r is not None
    assert_error(r, 400, "malformed_request")
    untouched_then_delivered(fgw, upstream, body)


def test_http11_without_host_is_400(fgw, upstream):
    body = sender._to_bytes(sender.make_event())
    r = raw_exchange(fgw.port, signed_request_bytes(body, host=None))
    assert r is not None
    assert_error(r, 400, "malformed_request")
    untouched_then_delivered(fgw, upstream, body)


@pytest.mark.parametrize("host", ["gw.example", "gw.example:8443", "[::1]:8080", "127.0.0.1"])
def test_valid_host_becomes_x_forwarded_host(fgw, upstream, host):
    body = sender._to_bytes(sender.make_event())
    r = raw_exchange(fgw.port, signed_request_bytes(body, host=host))
    assert r is not None and r.status == 200, r
    rec = upstream.records()[-1]
    assert [v for k, v in rec["headers"] if k.lower() == "x-forwarded-host"] == [host]


# ------------------------------------------------------------------ the upstream's answer
class RawUpstream:
    """A loopback upstream that reads one request per connection and writes `answer` verbatim."""

    def __init__(self, answer):
        import socket
        import threading
        self.answer = answer
        self.requests = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(body) < length:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        body += chunk
                    self.requests += 1
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, UPSTREAM_PATH)

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("answer", [
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode(),
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\nb\r\n\r\n",
], ids=["kelvin-transfer-encoding", "bare-lf-in-extension", "bare-lf-in-trailer"])
def test_hostile_upstream_framing_is_502_and_not_recorded(launch_gateway, answer):
    raw = RawUpstream(answer)
    try:
        g = launch_gateway([make_route(raw.url())])
        body = sender.make_event()
        r = g.send(body)
        assert_error(r, 502, "upstream_invalid_response")
        r = g.send(body)
        assert_error(r, 502, "upstream_invalid_response")
        assert raw.requests == 2, "the event was recorded as delivered after an invalid answer"
    finally:
        raw.close()
