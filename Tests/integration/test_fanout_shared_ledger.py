"""Per-destination dedup across the shared ledger: two replicas in front of the same two
destinations, with `ledger: {store: redis}` and a real redis-server (installed by .ci/run).
"""
import json
import shutil
import socket
import subprocess
import time

import pytest

import sender
from conftest import UPSTREAM_PATH, assert_error, free_port, make_route

@pytest.fixture
def redis_server(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed", pytrace=False)
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield "redis://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(timeout=10)


def fanout_route(a, b):
    route = make_route("http://unused.invalid/")
    del route["upstream"]
    route["destinations"] = [{"name": "a", "upstream": {"url": a.url(UPSTREAM_PATH)}},
                             {"name": "b", "upstream": {"url": b.url(UPSTREAM_PATH)}}]
    return route


def test_two_replicas_share_per_destination_dedup(start_gateway, start_upstream, redis_server, monkeypatch):
    import conftest
    a, b = start_upstream(), start_upstream()
    original = conftest.make_config

    def with_redis(*args, **kw):
        cfg = original(*args, **kw)
        cfg["ledger"] = {"store": "redis", "redis": {"url": redis_server, "key_prefix": "hookgate-fanout-test"}}
        return cfg

    monkeypatch.setattr(conftest, "make_config", with_redis)
    one = start_gateway([fanout_route(a, b)])
    two = start_gateway([fanout_route(a, b)])
    body = sender.make_event(id="shared-1", type="custody.vehicle.released")

    b.mode(status=500)
    doc = assert_error(one.send(body), 503, "destination_failed")
    assert doc["destinations"] == {"a": "delivered", "b": "failed"}
    b.mode(status=200)
    # The retry lands on the other replica: a's key is in redis, b's was released.
    r = two.send(body)
    assert r.status == 200, r.body
    assert json.loads(r.body) == {"destinations": {"a": "duplicate", "b": "delivered"}}
    r = one.send(body)
    assert json.loads(r.body) == {"destinations": {"a": "duplicate", "b": "duplicate"}}
    assert [x["id"] for x in a.records()] == ["shared-1"]
    assert [x["id"] for x in b.records()] == ["shared-1", "shared-1"]
    assert [x["status"] for x in b.records()] == [500, 200]
