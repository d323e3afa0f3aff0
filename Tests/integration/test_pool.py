"""Upstream connection pool: bounded, kept alive, queued requests all served."""
import json
import threading
import time

import sender
from conftest import UPSTREAM_PATH, make_route


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
