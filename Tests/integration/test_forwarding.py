"""What the upstream receives, and how its answers come back to the sender."""
import json
import time

import pytest

import sender
from conftest import SECRET, UPSTREAM_PATH, assert_error, make_route, record_headers

HOP_BY_HOP = {"keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
              "proxy-authorization", "proxy-connection", "proxy-foo"}


def one_record(upstream):
    recs = upstream.records()
    assert len(recs) == 1, "upstream should have exactly one request, got %d" % len(recs)
    return recs[0]


def test_forwarded_request_contract(gw, upstream):
    # a body whose exact bytes matter: pretty-printed, odd key order, unicode, trailing newline
    event = {
        "type": "custody.vehicle.released",
        "specversion": "1.0",
        "id": "evt_contract_1",
        "source": "vecu.custody-service",
        "data": {"note": "caf\u00e9 \u2603 \"quoted\" \\ slash", "n": 1.50, "vin": "5XXXX00000XEXMPL0"},
    }
    body = (json.dumps(event, indent=3, ensure_ascii=False) + "\n").encode("utf-8")
    ts = int(time.time())
    r = gw.send(body, ts=ts, retry_count=2, extra_headers={
        "X-Hookgate-Verified": "forged",
        "X-Hookgate-Foo": "x",
        "X-Hookgate-Event-Id": "evt_forged",
        "Keep-Alive": "timeout=7, max=99",
        "TE": "trailers",
        "Trailer": "X-Checksum",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "Proxy-Connection": "keep-alive",
        "Proxy-Foo": "bar",
        "X-Custom-Header": "custom value 1",
        "User-Agent": "vecu-relay/1.0",
    })
    assert r.status == 200, r
    assert r.body == b'{"ok":true}'

    rec = one_record(upstream)
    assert rec["method"] == "POST"
    assert rec["path"] == UPSTREAM_PATH
    assert rec["body_bytes"] == body, "body must be forwarded byte-identical"

    h = lambda name: record_headers(rec, name)  # noqa: E731
    sig = sender.sign(SECRET, ts, body)
    # the sender's own headers stay
    assert h("X-VECU-Event-ID") == ["evt_contract_1"]
    assert h("X-VECU-Event-Type") == ["custody.vehicle.released"]
    assert h("X-VECU-Timestamp") == [str(ts)]
    assert h("X-VECU-Retry-Count") == ["2"]
    assert h("X-VECU-Signature") == [sig["X-VECU-Signature"]]
    assert h("X-Custom-Header") == ["custom value 1"]
    assert h("User-Agent") == ["vecu-relay/1.0"]
    assert [v.split(";")[0] for v in h("Content-Type")] == ["application/json"]
    assert h("Content-Length") in ([str(len(body))], []), h("Content-Length")
    # added by hookgate
    assert h("X-Forwarded-For") == ["127.0.0.1"]
    assert h("X-Forwarded-Proto") == ["http"]
    assert h("X-Forwarded-Host") == ["127.0.0.1:%d" % gw.port]
    assert len(h("X-Request-Id")) == 1 and h("X-Request-Id")[0].strip()
    assert h("X-Hookgate-Verified") == ["hmac-sha256"]
    assert h("X-Hookgate-Event-Id") == ["evt_contract_1"]
    assert h("X-Hookgate-Event-Type") == ["custody.vehicle.released"]
    assert h("X-Source") == ["hookgate"]
    # spoofed X-Hookgate-* removed
    assert h("X-Hookgate-Foo") == []
    # hop-by-hop removed
    present = {k.lower() for k, _ in rec["headers"]}
    assert not (present & HOP_BY_HOP), "hop-by-hop headers forwarded: %s" % sorted(present & HOP_BY_HOP)


def test_event_headers_come_from_body(gw, upstream):
    """X-Hookgate-Event-Id/-Type are taken from the body (here the sender sent no X-VECU-Event-* headers)."""
    body = sender.make_event(id="evt_type_src", type="credential.revoked")
    r = gw.send(body, extra_headers={"X-VECU-Event-Type": None, "X-VECU-Event-ID": None})
    assert r.status == 200, r
    rec = one_record(upstream)
    assert record_headers(rec, "X-Hookgate-Event-Type") == ["credential.revoked"]
    assert record_headers(rec, "X-Hookgate-Event-Id") == ["evt_type_src"]
    assert record_headers(rec, "X-VECU-Event-Type") == []


def test_request_id_kept_or_generated(gw, upstream):
    r1 = gw.send(sender.make_event(id="evt_rid_1"), extra_headers={"X-Request-Id": "req-from-sender-42"})
    r2 = gw.send(sender.make_event(id="evt_rid_2"))
    r3 = gw.send(sender.make_event(id="evt_rid_3"))
    assert (r1.status, r2.status, r3.status) == (200, 200, 200)
    recs = {json.loads(r["body_bytes"])["id"]: r for r in upstream.records()}
    assert record_headers(recs["evt_rid_1"], "X-Request-Id") == ["req-from-sender-42"]
    g2 = record_headers(recs["evt_rid_2"], "X-Request-Id")
    g3 = record_headers(recs["evt_rid_3"], "X-Request-Id")
    assert len(g2) == 1 and len(g3) == 1 and g2[0] and g3[0] and g2[0] != g3[0]


def test_multiple_add_headers(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH),
                                  add_headers={"X-Source": "hookgate", "X-Tenant": "acme", "X-Env": "test"})])
    assert g.send(sender.make_event()).status == 200
    rec = one_record(upstream)
    assert record_headers(rec, "X-Source") == ["hookgate"]
    assert record_headers(rec, "X-Tenant") == ["acme"]
    assert record_headers(rec, "X-Env") == ["test"]


# ------------------------------------------------------------------ upstream answers
def test_upstream_2xx_status_and_body_passed_through(gw, upstream):
    upstream.mode(status=202, body='{"queued":"yes-xyz"}')
    r = gw.send(sender.make_event(id="evt_202"))
    assert r.status == 202
    assert r.body == b'{"queued":"yes-xyz"}'
    # recorded as delivered: the resend is a duplicate and does not reach upstream
    r2 = gw.send(sender.make_event(id="evt_202"), retry_count=1)
    assert r2.status == 200 and r2.body == b'{"duplicate":true}'
    assert upstream.count() == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_upstream_4xx_passed_through_and_not_recorded(gw, upstream, status):
    upstream.mode(status=status, body='{"rejected":"by-app-%d"}' % status)
    body = sender.make_event(id="evt_4xx_%d" % status)
    r = gw.send(body)
    assert r.status == status and r.body == b'{"rejected":"by-app-%d"}' % status
    r = gw.send(body, retry_count=1)
    assert r.status == status, "a resend after an upstream %d must be forwarded again, got %r" % (status, r)
    assert upstream.count() == 2
    upstream.mode()  # back to 200
    r = gw.send(body, retry_count=2)
    assert r.status == 200 and r.body == b'{"ok":true}'
    assert upstream.count() == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_upstream_429_5xx_passed_through_and_not_recorded(gw, upstream, status):
    upstream.mode(status=status, body="app says %d" % status, content_type="text/plain")
    body = sender.make_event(id="evt_5xx_%d" % status)
    r = gw.send(body)
    assert r.status == status
    assert r.body == b"app says %d" % status
    upstream.mode()
    r = gw.send(body, retry_count=1)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 2


def test_500_then_resend_is_forwarded_and_delivered(gw, upstream):
    upstream.mode(fail_next=1, fail_status=500)
    body = sender.make_event(id="evt_500_then_ok")
    first = gw.send(body, retry_count=0)
    assert first.status == 500
    second = gw.send(body, ts=int(time.time()) + 1, retry_count=1)
    assert second.status == 200 and second.body == b'{"ok":true}', second
    assert upstream.count() == 2
    third = gw.send(body, retry_count=2)
    assert third.status == 200 and third.body == b'{"duplicate":true}'
    assert upstream.count() == 2


def test_upstream_down_then_started(start_gateway, start_upstream):
    from conftest import free_port
    port = free_port()
    g = start_gateway([make_route("http://127.0.0.1:%d%s" % (port, UPSTREAM_PATH))])
    body = sender.make_event(id="evt_down_then_up")
    t0 = time.monotonic()
    r = g.send(body)
    assert_error(r, 502, "upstream_unreachable")
    assert time.monotonic() - t0 < 5, "connection refused should fail fast"
    up = start_upstream(port=port)
    r = g.send(body, retry_count=1)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert up.count() == 1
    r = g.send(body, retry_count=2)
    assert r.status == 200 and r.body == b'{"duplicate":true}'
    assert up.count() == 1


def test_upstream_stopped_after_use(gw, upstream, start_upstream):
    """Pooled keep-alive connection to an upstream that went away: 502, then recovers."""
    assert gw.send(sender.make_event(id="evt_before_stop")).status == 200
    port = upstream.port
    upstream.stop()
    body = sender.make_event(id="evt_while_down")
    assert_error(gw.send(body), 502, "upstream_unreachable")
    up2 = start_upstream(port=port)
    r = gw.send(body, retry_count=1)
    assert r.status == 200, r
    assert up2.count() == 1


def test_upstream_connection_reset(gw, upstream):
    upstream.mode(drop=True)
    body = sender.make_event(id="evt_reset")
    assert_error(gw.send(body), 502, "upstream_unreachable")
    upstream.mode()
    r = gw.send(body, retry_count=1)
    assert r.status == 200 and r.body == b'{"ok":true}', r


def test_upstream_timeout_is_504(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH), timeout="1s")])
    upstream.mode(hang=6)
    body = sender.make_event(id="evt_slow")
    t0 = time.monotonic()
    r = g.send(body, timeout=15)
    elapsed = time.monotonic() - t0
    assert_error(r, 504, "upstream_timeout")
    assert 0.9 <= elapsed <= 3.0, "504 should come shortly after the 1s timeout, took %.2fs" % elapsed
    upstream.mode()
    r = g.send(body, retry_count=1)
    assert r.status == 200 and r.body == b'{"ok":true}', "a timed-out event is not recorded: %r" % r


# ------------------------------------------------------------------ inbound HTTP/1.1 details
def test_chunked_inbound_body_verified_and_forwarded_identical(gw, upstream):
    import http.client
    body = sender.make_event(id="evt_chunked", data={"text": "chunk \u00e9" * 50})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.putrequest("POST", "/webhooks/vecu")
        for k, v in sender.delivery_headers(body, SECRET).items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), 64):
            part = body[i:i + 64]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b'{"ok":true}'
    finally:
        conn.close()
    rec = one_record(upstream)
    assert rec["body_bytes"] == body
    assert [v.lower() for v in record_headers(rec, "Transfer-Encoding")] in ([], ["chunked"])


def test_inbound_keepalive_several_requests_one_connection(gw, upstream):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        for i in range(3):
            b = sender.make_event(id="evt_inbound_ka_%d" % i)
            conn.request("POST", "/webhooks/vecu", b, sender.delivery_headers(b, SECRET))
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b'{"ok":true}'
        conn.request("GET", "/webhooks/vecu")  # an error answer keeps the connection usable
        r = conn.getresponse()
        assert r.status == 405
        r.read()
        b = sender.make_event(id="evt_inbound_ka_after")
        conn.request("POST", "/webhooks/vecu", b, sender.delivery_headers(b, SECRET))
        r = conn.getresponse()
        assert r.status == 200 and r.read() == b'{"ok":true}'
    finally:
        conn.close()
    assert upstream.count() == 4


def test_curl_expect_100_continue_large_body(gw, upstream, tmp_path):
    """curl sends `Expect: 100-continue` for bodies over 1 KiB; it must not stall or break."""
    import subprocess
    body = sender.make_event(id="evt_expect", data={"pad": "x" * 5000})
    f = tmp_path / "big.json"
    f.write_bytes(body)
    cmd = ["curl", "-s", "-o", str(tmp_path / "out"), "-w", "%{http_code}", "-X", "POST"]
    for k, v in sender.delivery_headers(body, SECRET).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    cmd += ["--data-binary", "@" + str(f), gw.url()]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.stdout == "200", out
    assert time.monotonic() - t0 < 0.9, "curl waited for the 1 s Expect timeout: no 100 Continue"
    assert one_record(upstream)["body_bytes"] == body
