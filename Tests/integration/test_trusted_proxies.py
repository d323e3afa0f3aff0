"""`trusted_proxies`: behind a load balancer the client is the last untrusted X-Forwarded-For
address (nginx `real_ip_recursive on`) and the proxy's X-Forwarded-Proto/Host, X-Real-IP and
Forwarded are kept; from any other peer they are replaced or removed."""
import pytest

import sender
from conftest import (UPSTREAM_PATH, ExtGateway, _teardown_gateways, free_port, make_config, make_gateway_config,
                      make_route, record_headers, to_yaml)


@pytest.fixture(scope="module")
def launch_with(hookgate_bin, module_workdir):
    """A gateway with `trusted_proxies` set to the given list."""
    gateways = []

    def launch(upstream, trusted):
        cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))])
        cfg["trusted_proxies"] = trusted
        gw = ExtGateway(hookgate_bin, module_workdir, cfg)
        gateways.append(gw)
        return gw.start()

    yield launch
    dead = _teardown_gateways(gateways)
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)


@pytest.fixture(scope="module")
def trusted_gw(launch_with, module_upstream):
    return launch_with(module_upstream, ["10.0.0.0/8", "127.0.0.1/8", "fd00::/8"])


@pytest.fixture(scope="module")
def untrusted_gw(launch_with, module_upstream):
    return launch_with(module_upstream, ["10.0.0.0/8", "::1"])


@pytest.fixture
def upstream(module_upstream):
    module_upstream.reset()
    return module_upstream


def access_client(gw, request_id):
    entries = gw.wait_logs(lambda es: any(e.get("msg") == "request" and e.get("request_id") == request_id for e in es))
    found = [e for e in entries if e.get("msg") == "request" and e.get("request_id") == request_id]
    assert len(found) == 1, found
    return found[0]["client"]


PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example",
                 "X-Real-IP": "203.0.113.9", "Forwarded": "for=203.0.113.9;proto=https"}


@pytest.mark.parametrize("chain,client", [
    ("203.0.113.9", "203.0.113.9"),
    ("198.51.100.1, 203.0.113.9, 10.1.2.3, 127.0.0.9", "203.0.113.9"),
    ("203.0.113.9, not-an-address, 10.1.2.3", "10.1.2.3"),
    ("203.0.113.9, 10.1.2.3:8080", "127.0.0.1"),
    ("2001:db8::9, fd00::5", "2001:db8::9"),
    ("10.0.0.1, 127.0.0.2", "10.0.0.1"),
], ids=["one-hop", "many-hops", "garbage", "port-is-garbage", "ipv6", "all-trusted"])
def test_trusted_peer_names_the_client(trusted_gw, upstream, chain, client):
    request_id = "tp-%d-%s" % (free_port(), client.replace(":", "-"))
    r = trusted_gw.send(sender.make_event(), extra_headers=dict(PROXY_HEADERS, **{"X-Forwarded-For": chain,
                                                                                   "X-Request-Id": request_id}))
    assert r.status == 200, r
    assert access_client(trusted_gw, request_id) == client
    rec = upstream.records()[-1]
    assert record_headers(rec, "X-Forwarded-For") == [chain + ", 127.0.0.1"]
    assert record_headers(rec, "X-Forwarded-Proto") == ["https"]
    assert record_headers(rec, "X-Forwarded-Host") == ["public.example"]
    assert record_headers(rec, "X-Real-IP") == ["203.0.113.9"]
    assert record_headers(rec, "Forwarded") == ["for=203.0.113.9;proto=https"]


def test_trusted_peer_without_forwarding_headers(trusted_gw, upstream):
    request_id = "tp-plain-%d" % free_port()
    r = trusted_gw.send(sender.make_event(), extra_headers={"X-Request-Id": request_id})
    assert r.status == 200, r
    assert access_client(trusted_gw, request_id) == "127.0.0.1"
    rec = upstream.records()[-1]
    assert record_headers(rec, "X-Forwarded-For") == ["127.0.0.1"]
    assert record_headers(rec, "X-Forwarded-Proto") == ["http"]
    assert record_headers(rec, "X-Forwarded-Host") == ["127.0.0.1:%d" % trusted_gw.port]


def test_untrusted_peer_claims_are_replaced(untrusted_gw, upstream):
    request_id = "tp-untrusted-%d" % free_port()
    r = untrusted_gw.send(sender.make_event(), extra_headers=dict(PROXY_HEADERS, **{"X-Forwarded-For": "203.0.113.9",
                                                                                     "X-Request-Id": request_id}))
    assert r.status == 200, r
    assert access_client(untrusted_gw, request_id) == "127.0.0.1"
    rec = upstream.records()[-1]
    assert record_headers(rec, "X-Forwarded-For") == ["203.0.113.9, 127.0.0.1"]
    assert record_headers(rec, "X-Forwarded-Proto") == ["http"]
    assert record_headers(rec, "X-Forwarded-Host") == ["127.0.0.1:%d" % untrusted_gw.port]
    assert record_headers(rec, "X-Real-IP") == []
    assert record_headers(rec, "Forwarded") == []


def test_check_names_invalid_trusted_proxies(run_cli, tmp_path):
    cfg = make_config(18080, [make_route("http://127.0.0.1:3000/webhooks/vecu")])
    cfg["trusted_proxies"] = ["10.0.0.0/8", "10.0.0.0/33", "not-an-ip", "::1", "1.2.3.4:80", "fd00::/8"]
    path = tmp_path / "hookgate.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    res = run_cli(["check", "--config", path])
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    for i in (1, 2, 4):
        assert "trusted_proxies[%d]" % i in out, out
    for i in (0, 3, 5):
        assert "trusted_proxies[%d]" % i not in out, out


def test_check_accepts_trusted_proxies(run_cli, tmp_path):
    cfg = make_config(18080, [make_route("http://127.0.0.1:3000/webhooks/vecu")])
    cfg["trusted_proxies"] = ["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "::ffff:10.0.0.0/104"]
    path = tmp_path / "hookgate.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    res = run_cli(["check", "--config", path])
    assert res.returncode == 0, res.stdout + res.stderr
