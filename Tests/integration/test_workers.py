"""Several workers (event loops) on one port with SO_REUSEPORT: connections spread over them,
the dedup ledger is shared, every event is delivered exactly once."""
import json
import os
import threading

import pytest

import sender
from conftest import UPSTREAM_PATH, make_route, request_ids_worker


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def run_concurrently(n, fn, timeout=30):
    """Runs fn(i) for i in range(n) on n threads released together; returns results (exceptions kept)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a sender thread did not finish"
    return results


def worker_indices(responses):
    return [request_ids_worker(r.header("X-Request-Id")) for r in responses]


def listening_entry(gw):
    entries = gw.wait_logs(lambda es: any("workers" in e for e in es))
    found = [e for e in entries if "workers" in e]
    assert found, gw.log_lines()[:5]
    return found[0]


def test_workers_auto_is_one_per_core_and_spreads_connections(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], workers="auto")
    n_workers = int(listening_entry(g)["workers"])
    assert n_workers in (cores(), os.cpu_count()), "workers: auto started %d workers on %d cores" % (n_workers, cores())

    n = 50
    results = run_concurrently(n, lambda i: g.send(sender.make_event(id="evt_auto_%d" % i)))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    assert [r.status for r in results] == [200] * n, [(r.status, r.body) for r in results if r.status != 200]
    ids = sorted(json.loads(rec["body_bytes"])["id"] for rec in upstream.records())
    assert ids == sorted("evt_auto_%d" % i for i in range(n))

    idx = worker_indices(results)
    assert None not in idx, [r.header("X-Request-Id") for r in results]
    assert set(idx) <= set(range(n_workers)), idx
    if n_workers > 1:
        assert len(set(idx)) > 1, "50 new connections were all served by worker %s" % idx[0]


@pytest.mark.parametrize("delay", [0.3, 0.0], ids=["slow-upstream", "fast-upstream"])
def test_four_workers_one_event_forty_copies_delivered_once(launch_gateway, upstream, delay):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], workers=4)
    assert int(listening_entry(g)["workers"]) == 4
    upstream.mode(delay=delay)  # slow: the first copy is still in flight while the others arrive
    body = sender.make_event(id="evt_4w_copies")
    n = 40
    results = run_concurrently(n, lambda i: g.send(body, retry_count=i % 6))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    statuses = [r.status for r in results]
    assert not [s for s in statuses if 400 <= s < 500], "a copy got a 4xx: %s" % statuses
    assert statuses == [200] * n, [(r.status, r.body) for r in results if r.status != 200]
    fresh = [r for r in results if r.body == b'{"ok":true}']
    dups = [r for r in results if r.body == b'{"duplicate":true}']
    assert len(fresh) == 1 and len(dups) == n - 1, [r.body for r in results]
    assert all(r.header("X-Hookgate-Duplicate") == "true" for r in dups)
    assert upstream.count() == 1, "the upstream got %d copies" % upstream.count()
    assert len(set(worker_indices(results))) > 1, "all 40 connections landed on one worker"
    # and later retries, on new connections, are duplicates too
    upstream.mode()
    for i in range(4):
        r = g.send(body, retry_count=1)
        assert r.status == 200 and r.json() == {"duplicate": True}, r
    assert upstream.count() == 1


def test_four_workers_distinct_events_all_delivered(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), max_connections=4)], workers=4)
    upstream.mode(delay=0.05)
    n = 40
    results = run_concurrently(n, lambda i: g.send(sender.make_event(id="evt_4w_%02d" % i)))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors[:3]
    assert [r.status for r in results] == [200] * n, [(r.status, r.body) for r in results if r.status != 200]
    assert all(r.body == b'{"ok":true}' for r in results)
    ids = [json.loads(rec["body_bytes"])["id"] for rec in upstream.records()]
    assert sorted(ids) == sorted("evt_4w_%02d" % i for i in range(n)), "lost or doubled: %s" % sorted(ids)
    idx = worker_indices(results)
    assert set(idx) <= {0, 1, 2, 3} and len(set(idx)) > 1, idx
    # request ids are unique across workers
    rids = [r.header("X-Request-Id") for r in results]
    assert len(set(rids)) == n
    # each worker keeps its own pool of at most max_connections
    assert upstream.stats()["max_concurrency"] <= 16


@pytest.mark.parametrize("workers", [4])
def test_request_id_in_log_matches_answer_header(launch_gateway, upstream, workers):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], workers=workers)
    rs = [g.send(sender.make_event(id="evt_rid_%d" % i)) for i in range(12)]
    rids = {r.header("X-Request-Id") for r in rs}
    entries = g.wait_logs(lambda es: len([e for e in es if e.get("msg") == "request"]) >= 12)
    logged = {e.get("request_id") for e in entries if e.get("msg") == "request"}
    assert rids <= logged, (rids, logged)
