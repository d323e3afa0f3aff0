"""TLS: the HTTPS listener (listen.tls), `check` of its files, and https:// upstreams with
certificate and host name verification (ca_file, system store, tls_insecure_skip_verify).

Certificates are made at test time by the session-scoped `tls_material` fixture (conftest)."""
import json
import socket
import ssl
import time

import pytest

import sender
from conftest import (SECRET, UPSTREAM_PATH, RawClient, assert_error, make_config, make_route,
                      record_headers, signed_request_bytes, to_yaml)


def tls_listen(pair):
    return {"cert": pair.cert, "key": pair.key}


@pytest.fixture
def tls_gw(launch_gateway, upstream, tls_material):
    """A gateway with an HTTPS listener (server cert for localhost / 127.0.0.1) before the plain upstream."""
    return launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], tls=tls_listen(tls_material.server),
                          client_tls=tls_material.client)


# ------------------------------------------------------------------ HTTPS listener
def test_https_listener_forwards_signed_event(tls_gw, upstream):
    body = sender.make_event(id="evt_tls_in_1")
    r = tls_gw.send(body)
    assert r.status == 200, r
    assert r.body == b'{"ok":true}'
    recs = upstream.records()
    assert len(recs) == 1
    assert recs[0]["body_bytes"] == body
    assert record_headers(recs[0], "X-Forwarded-Proto") == ["https"]
    # a duplicate over HTTPS is still recognised
    again = tls_gw.send(body, retry_count=1)
    assert again.status == 200 and again.json() == {"duplicate": True}, again
    assert upstream.count() == 1


def test_https_listener_answers_errors_as_json(tls_gw, upstream):
    r = tls_gw.send(sender.make_event(), secret="x" * 40)
    assert_error(r, 401, "signature_mismatch")
    r = tls_gw.send(sender.make_event(), path="/nope")
    assert_error(r, 404, "route_not_found")
    assert upstream.count() == 0


def test_https_listener_by_host_name_and_keep_alive(tls_gw, upstream, tls_material):
    """The certificate is valid for `localhost` too; two requests share one TLS connection."""
    c = RawClient(tls_gw.port, ssl_context=tls_material.client, server_hostname="localhost")
    try:
        for i in range(2):
            c.send(signed_request_bytes(sender.make_event(id="evt_tls_ka_%d" % i)))
            r = c.read_response(timeout=5)
            assert r is not None and r.status == 200, r
    finally:
        c.close()
    recs = upstream.records()
    assert sorted(json.loads(x["body_bytes"])["id"] for x in recs) == ["evt_tls_ka_0", "evt_tls_ka_1"]


def test_plain_http_on_tls_port_is_closed_cleanly(tls_gw, upstream):
    body = sender.make_event(id="evt_tls_plain")
    c = RawClient(tls_gw.port, timeout=5)
    try:
        c.try_send(signed_request_bytes(body))
        assert c.wait_closed(timeout=5), "the gateway kept a plain-HTTP connection open on its TLS port"
        assert not c.buf.startswith(b"HTTP/"), "plain HTTP was answered on the TLS port: %r" % c.buf[:200]
    finally:
        c.close()
    assert upstream.count() == 0
    # still serving HTTPS, and the event was not consumed
    r = tls_gw.send(body)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 1


def test_client_trusting_another_ca_fails(tls_gw, upstream, tls_material):
    with pytest.raises(ssl.SSLCertVerificationError):
        RawClient(tls_gw.port, ssl_context=tls_material.other_client, server_hostname="localhost")
    assert upstream.count() == 0
    assert tls_gw.send(sender.make_event()).status == 200
    assert tls_gw.alive()


def test_client_handshake_garbage_does_not_hurt(tls_gw, upstream):
    """Random bytes instead of a ClientHello, and a connection that never speaks: both end without
    taking the listener down."""
    c = RawClient(tls_gw.port, timeout=5)
    c.try_send(b"\x16\x03\x01\x00\x05garbage-garbage-garbage")
    assert c.wait_closed(timeout=5)
    c.close()
    idle = socket.create_connection(("127.0.0.1", tls_gw.port), timeout=5)
    try:
        assert tls_gw.send(sender.make_event()).status == 200
    finally:
        idle.close()


# ------------------------------------------------------------------ check
def _tls_config(tmp_path, cert, key):
    cfg = make_config(18443, [make_route("http://127.0.0.1:3000/hook")])
    cfg["listen"] = {"address": "127.0.0.1:18443", "tls": {"cert": cert, "key": key}}
    p = tmp_path / "tls.yaml"
    p.write_text(to_yaml(cfg) + "\n")
    return p


def test_check_accepts_valid_tls_files(run_cli, tmp_path, tls_material):
    res = run_cli(["check", "--config", _tls_config(tmp_path, tls_material.server.cert, tls_material.server.key)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "configuration is valid" in res.stdout


def test_check_missing_cert_names_listen_tls_cert(run_cli, tmp_path, tls_material):
    res = run_cli(["check", "--config", _tls_config(tmp_path, str(tmp_path / "absent.pem"), tls_material.server.key)])
    assert res.returncode == 1, res.stdout + res.stderr
    assert "listen.tls.cert" in res.stdout + res.stderr


def test_check_key_not_matching_cert_names_listen_tls_key(run_cli, tmp_path, tls_material):
    res = run_cli(["check", "--config", _tls_config(tmp_path, tls_material.server.cert, tls_material.stray_key)])
    assert res.returncode == 1, res.stdout + res.stderr
    assert "listen.tls.key" in res.stdout + res.stderr


def test_serve_refuses_to_start_with_mismatched_key(hookgate_bin, tmp_path, tls_material):
    import subprocess
    p = _tls_config(tmp_path, tls_material.server.cert, tls_material.stray_key)
    res = subprocess.run([str(hookgate_bin), "serve", "--config", str(p)], capture_output=True, text=True,
                         timeout=15, env={"VECU_WEBHOOK_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "listen.tls.key" in res.stdout + res.stderr


# ------------------------------------------------------------------ https upstreams
def _https_route(up, host="127.0.0.1", **upstream_keys):
    route = make_route(up.url(UPSTREAM_PATH, host=host))
    route["upstream"].update(upstream_keys)
    return route


def test_https_upstream_with_ca_file(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.server)
    g = launch_gateway([_https_route(up, ca_file=tls_material.ca)])
    body = sender.make_event(id="evt_up_tls_1")
    r = g.send(body)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    recs = up.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == body
    assert record_headers(recs[0], "X-Hookgate-Event-Id") == ["evt_up_tls_1"]
    # kept alive and reused over TLS
    for i in range(3):
        assert g.send(sender.make_event(id="evt_up_tls_ka_%d" % i)).status == 200
    assert up.stats()["connections"] == 1


def test_https_upstream_by_host_name(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.server)
    g = launch_gateway([_https_route(up, host="localhost", ca_file=tls_material.ca)])
    r = g.send(sender.make_event(id="evt_up_tls_name"))
    assert r.status == 200, r
    assert up.count() == 1


def test_https_upstream_wrong_ca_is_unreachable(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.other_server)  # signed by the other CA
    g = launch_gateway([_https_route(up, ca_file=tls_material.ca)])
    body = sender.make_event(id="evt_up_wrong_ca")
    assert_error(g.send(body), 502, "upstream_unreachable")
    assert up.count() == 0
    # not recorded as delivered: a retry is forwarded again (and fails again)
    assert_error(g.send(body, retry_count=1), 502, "upstream_unreachable")


def test_https_upstream_not_in_system_store_is_unreachable(launch_gateway, start_tls_upstream, tls_material):
    """Verification is on by default, against the system store, which does not hold the test CA."""
    up = start_tls_upstream(tls_material.server)
    g = launch_gateway([_https_route(up)])
    assert_error(g.send(sender.make_event()), 502, "upstream_unreachable")
    assert up.count() == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_upstream_wrong_host_name_is_unreachable(launch_gateway, start_tls_upstream, tls_material, host):
    up = start_tls_upstream(tls_material.wrong_host)  # trusted CA, but issued to wrong-host.invalid
    g = launch_gateway([_https_route(up, host=host, ca_file=tls_material.ca)])
    assert_error(g.send(sender.make_event()), 502, "upstream_unreachable")
    assert up.count() == 0


def test_https_upstream_insecure_skip_verify(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.wrong_host)
    g = launch_gateway([_https_route(up, tls_insecure_skip_verify=True)])
    body = sender.make_event(id="evt_up_insecure")
    r = g.send(body)
    assert r.status == 200, r
    assert up.count() == 1 and up.records()[0]["body_bytes"] == body
    warned = [e for e in g.logs() if e.get("level") in ("warning", "warn") and "tls_insecure_skip_verify" in json.dumps(e)]
    assert warned, "switching verification off should be logged as a warning: %s" % g.log_lines()[:5]


def test_https_listener_and_https_upstream_together(launch_gateway, start_tls_upstream, tls_material):
    up = start_tls_upstream(tls_material.server)
    g = launch_gateway([_https_route(up, ca_file=tls_material.ca)], tls=tls_listen(tls_material.server),
                       client_tls=tls_material.client)
    t0 = time.monotonic()
    for i in range(3):
        r = g.send(sender.make_event(id="evt_tls_both_%d" % i))
        assert r.status == 200, r
    assert time.monotonic() - t0 < 3
    recs = up.records()
    assert len(recs) == 3
    assert all(record_headers(rec, "X-Forwarded-Proto") == ["https"] for rec in recs)


# ------------------------------------------------------------------ TLS and limits / reload
def test_tls_refusals_are_json_and_stalled_handshakes_are_cut(launch_gateway, upstream, tls_material):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], tls=tls_listen(tls_material.server),
                       client_tls=tls_material.client, client_timeout="1s", max_body_bytes=8192)
    body = sender.make_event()
    # an oversized body sent in full: the 413 still reaches the client over TLS
    c = RawClient(g.port, ssl_context=tls_material.client)
    try:
        head = signed_request_bytes(body).split(b"\r\n\r\n")[0].replace(
            b"Content-Length: %d" % len(body), b"Content-Length: 100000")
        c.try_send(head + b"\r\n\r\n" + b"x" * 100000)
        r = c.read_response(timeout=5)
    finally:
        c.close()
    assert r is not None, "the 413 was lost over TLS"
    assert_error(r, 413, "body_too_large")
    # a client that connects and never completes the handshake is closed at client_timeout
    for first in (b"", b"\x16\x03\x01"):
        s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
        try:
            s.sendall(first)
            t0 = time.monotonic()
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            assert data == b"" and 0.5 <= time.monotonic() - t0 <= 2.5, (first, data)
        finally:
            s.close()
    assert upstream.count() == 0
    assert g.send(body).status == 200


def test_reload_switches_the_listener_certificate(launch_gateway, upstream, tls_material):
    import copy
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], tls=tls_listen(tls_material.server),
                       client_tls=tls_material.client, admin=True)
    assert g.send(sender.make_event()).status == 200
    cfg = copy.deepcopy(g.config)
    cfg["listen"]["tls"] = tls_listen(tls_material.other_server)
    g.reload(cfg)
    assert g.wait_metric(lambda m: m.get("hookgate_config_reloads_total", result="success") == 1).get(
        "hookgate_config_reloads_total", result="success") == 1
    g.client_tls = tls_material.other_client
    assert g.send(sender.make_event()).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        RawClient(g.port, ssl_context=tls_material.client, server_hostname="localhost")
    assert upstream.count() == 2
