"""What an upstream failure tells whom: the sender (anyone on the internet) gets the stable
reason code and one fixed message, never a host, an address or a TLS error; the access-log line
carries that detail as `upstream.error`, at level `warn`."""
import json

import pytest

import sender
from conftest import UPSTREAM_PATH, assert_error, free_port, log_get, log_has, make_route

UNREACHABLE = {"error": "upstream_unreachable", "message": "the upstream could not be reached"}


def answer_and_log_line(g, event_id, status, code):
    r = g.send(sender.make_event(id=event_id))
    doc = assert_error(r, status, code)
    entries = g.wait_logs(lambda e: any(log_has(x, "event.id") and log_get(x, "event.id") == event_id for x in e),
                          timeout=10)
    lines = [e for e in entries if log_has(e, "event.id") and log_get(e, "event.id") == event_id]
    assert len(lines) == 1, entries
    return r, doc, lines[0]


def assert_detail_only_in_log(r, doc, line, detail_words):
    assert doc == UNREACHABLE, "the sender must get the reason code and a fixed message: %r" % doc
    body = r.body.decode("utf-8", "replace").lower()
    for word in detail_words:
        assert word.lower() not in body, "upstream detail %r sent to the sender: %r" % (word, r.body)
    assert log_get(line, "reason") == "upstream_unreachable", line
    assert log_get(line, "level") == "warn", line
    error = log_get(line, "upstream.error")
    assert isinstance(error, str) and any(w.lower() in error.lower() for w in detail_words), line


def test_connection_refused_detail_goes_to_the_log_only(start_gateway):
    down = free_port()  # nothing listens there
    g = start_gateway([make_route("http://127.0.0.1:%d%s" % (down, UPSTREAM_PATH))])
    r, doc, line = answer_and_log_line(g, "evt_err_refused", 502, "upstream_unreachable")
    assert_detail_only_in_log(r, doc, line, ["refused"])
    assert "127.0.0.1" not in r.body.decode() and str(down) not in r.body.decode()


def test_unresolvable_host_detail_goes_to_the_log_only(start_gateway):
    # .invalid never resolves (RFC 6761)
    g = start_gateway([make_route("http://upstream-hookgate-test.invalid:8080" + UPSTREAM_PATH)])
    r, doc, line = answer_and_log_line(g, "evt_err_dns", 502, "upstream_unreachable")
    assert_detail_only_in_log(r, doc, line, ["resolve"])
    assert "invalid" not in r.body.decode() and "upstream-hookgate-test" not in r.body.decode()


def test_untrusted_tls_certificate_detail_goes_to_the_log_only(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.server)  # the test CA is not in the system store
    route = make_route(up.url(UPSTREAM_PATH))
    g = launch_gateway([route])
    r, doc, line = answer_and_log_line(g, "evt_err_tls", 502, "upstream_unreachable")
    assert_detail_only_in_log(r, doc, line, ["TLS", "certificate"])
    assert "certificate" not in r.body.decode().lower() and "verify" not in r.body.decode().lower()
    assert up.count() == 0


def test_a_relayed_answer_is_logged_at_info_without_upstream_error(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH))])
    upstream.mode(status=503, body='{"busy":true}')
    r = g.send(sender.make_event(id="evt_err_relayed"))
    assert r.status == 503 and r.body == b'{"busy":true}', r
    entries = g.wait_logs(lambda e: any(log_has(x, "event.id") and log_get(x, "event.id") == "evt_err_relayed" for x in e))
    line = [e for e in entries if log_has(e, "event.id") and log_get(e, "event.id") == "evt_err_relayed"][0]
    assert log_get(line, "level") == "info" and not log_has(line, "upstream.error"), line
    assert log_get(line, "upstream.status") == 503, line
