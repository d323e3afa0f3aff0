"""Why the spool exists (issue 11): the upstream is down for longer than the platform's whole retry
schedule (6 attempts, backoff shortened to 0.05 s doubling: about 1.6 s per delivery), then comes
back. Without a spool the platform-like sender dead-letters events; with one, its last attempts
are answered 202 once the event is on disk, nothing is dead-lettered, and every event reaches the
upstream exactly once after it returns. Also: the gateway restarted (SIGTERM) while redelivering,
and two replicas sharing a Redis ledger, each with its own spool. Last, the latency cost of a
spooled answer (the fsync) beside a relayed failure, printed.

Each scenario prints: sent (deliveries), acknowledged, spooled (202 answers), duplicates dropped,
dead-lettered, events, upstream accepted (events with a 2xx record), double accepts (events with
more than one), and how long the spool took to drain.
Run: HOOKGATE_BIN=.build/debug/hookgate python3 -m pytest -q -s Tests/faults/test_spool_outage.py
"""
import collections
import json
import os
import statistics
import subprocess
import time

import pytest

import sender
from conftest import SECRET, UPSTREAM_PATH, free_port, integration, make_config, make_route, poll_until
from platform_sender import PlatformSender
from replicas import ledger_config, redis_env

EVENTS = 150
BACKOFF = 0.05
DRAIN_BUDGET = 40.0   # seconds for the spool to drain once the upstream is back
FAST = {"initial": "200ms", "max": "1s"}


def gateway_config(upstream, spool_path=None, ledger=None):
    route = make_route(upstream.url(UPSTREAM_PATH), timeout="2s")
    cfg = make_config(free_port(), [route])
    if spool_path is not None:
        cfg["spool"] = {"path": str(spool_path)}
        route["spool"] = {"from_retry": 5, "backoff": dict(FAST)}
    if ledger is not None:
        cfg["ledger"] = ledger
    return cfg


@pytest.fixture
def gateways(hookgate_bin, tmp_path):
    started = []

    def start(config, env=None):
        g = integration.Gateway(hookgate_bin, tmp_path, config, env_extra=env)
        started.append(g)
        return g.start()

    yield start
    for g in started:
        g.stop()


def spool_pending(hookgate_bin, gateway):
    p = subprocess.run([str(hookgate_bin), "spool", "list", "--json", "--config", str(gateway.config_path)],
                       capture_output=True, text=True, timeout=30, env=dict(os.environ, **gateway.env))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def accepted_per_event(upstream, prefix):
    counts = collections.Counter(r["id"] for r in upstream.records()
                                 if r.get("id", "").startswith(prefix) and r.get("status") and 200 <= r["status"] < 300)
    return counts


def figures(name, report, upstream, prefix, drained=None):
    s = report.summary()
    spooled = sum(1 for d in report.deliveries for a in d.attempts if a.status == 202)
    accepted = accepted_per_event(upstream, prefix)
    twice = sum(1 for n in accepted.values() if n > 1)
    line = ("[%s] sent=%d acknowledged=%d spooled=%d duplicates_dropped=%d dead_lettered=%d | events=%d "
            "upstream_accepted=%d double_accepts=%d attempts=%s%s" % (
                name, s["sent"], s["acknowledged"], spooled, s["duplicates"], s["dead_lettered"], s["events"],
                len(accepted), twice, json.dumps(s["attempt_statuses"]),
                "" if drained is None else " spool_drained_in=%.1fs" % drained))
    print("\n" + line)
    return s, spooled, accepted, twice


def outage_run(name, urls, upstream, events, dup_share=0.1):
    """The sender's whole run happens while the upstream answers 503: every delivery meets the
    outage on every attempt (the outage lasts longer than the retry schedule)."""
    upstream.mode(status=503)
    s = PlatformSender(urls, SECRET, max_attempts=6, backoff=BACKOFF, timeout=10, concurrency=16)
    prefix = "evt_%s_" % name
    report = s.run(events, dup_share=dup_share, id_prefix=prefix, seed=7)
    return report, prefix


def drain(hookgate_bin, gateways_list):
    t0 = time.monotonic()
    ok = poll_until(lambda: all(not spool_pending(hookgate_bin, g) for g in gateways_list), timeout=DRAIN_BUDGET, interval=0.2)
    return ok, time.monotonic() - t0


def test_outage_longer_than_the_retry_schedule_without_a_spool(gateways, recording_upstream):
    up = recording_upstream()
    g = gateways(gateway_config(up))
    report, prefix = outage_run("nospool", [g.url()], up, EVENTS)
    up.mode(status=200)
    s, spooled, accepted, twice = figures("outage without spool", report, up, prefix)
    assert spooled == 0
    # Every delivery met the outage on all six attempts: the platform dead-letters them all.
    assert s["dead_lettered"] == s["sent"] and s["dead_lettered"] > 0
    assert len(accepted) == 0


def test_outage_longer_than_the_retry_schedule_with_a_spool(hookgate_bin, gateways, recording_upstream, tmp_path):
    up = recording_upstream()
    g = gateways(gateway_config(up, spool_path=tmp_path / "spool.sqlite"))
    report, prefix = outage_run("spool", [g.url()], up, EVENTS)
    pending = len(spool_pending(hookgate_bin, g))
    up.mode(status=200)
    ok, seconds = drain(hookgate_bin, [g])
    time.sleep(0.5)
    s, spooled, accepted, twice = figures("outage with spool", report, up, prefix, drained=seconds)
    print("  spooled events pending when the upstream came back: %d" % pending)
    assert ok, "the spool did not drain within %.0f s" % DRAIN_BUDGET
    assert s["dead_lettered"] == 0 and s["refused"] == 0
    assert s["acknowledged"] == s["sent"]
    assert pending == EVENTS
    assert len(accepted) == EVENTS, "every event reaches the upstream after it returns"
    assert twice == 0, "no event accepted twice: %s" % [e for e, n in accepted.items() if n > 1][:5]


def test_gateway_restarted_while_redelivering(hookgate_bin, gateways, recording_upstream, tmp_path):
    up = recording_upstream()
    config = gateway_config(up, spool_path=tmp_path / "spool.sqlite")
    g = gateways(config)
    report, prefix = outage_run("restart", [g.url()], up, EVENTS, dup_share=0.0)
    assert report.summary()["dead_lettered"] == 0
    # Back, but slow: redelivering the backlog takes seconds, and the restart lands in the middle.
    up.mode(status=200, delay=0.03)
    assert poll_until(lambda: len(accepted_per_event(up, prefix)) >= 10, timeout=10, interval=0.05)
    assert g.terminate(timeout=30) == 0
    left = len(spool_pending(hookgate_bin, g))
    g2 = gateways(dict(config, listen="127.0.0.1:%d" % free_port()))
    ok, seconds = drain(hookgate_bin, [g2])
    time.sleep(0.5)
    s, spooled, accepted, twice = figures("restart while redelivering", report, up, prefix, drained=seconds)
    print("  still spooled at the restart: %d of %d" % (left, EVENTS))
    assert 0 < left < EVENTS, "the restart should land while redelivering (%d left)" % left
    assert ok
    assert len(accepted) == EVENTS and twice == 0


def test_two_replicas_with_redis_each_with_its_own_spool(hookgate_bin, gateways, recording_upstream, redis_server, tmp_path):
    redis = redis_server()
    up = recording_upstream()
    ledger = ledger_config(redis)
    g1 = gateways(gateway_config(up, spool_path=tmp_path / "spool-1.sqlite", ledger=ledger), env=redis_env(redis))
    g2 = gateways(gateway_config(up, spool_path=tmp_path / "spool-2.sqlite", ledger=ledger), env=redis_env(redis))
    report, prefix = outage_run("replicas", [g1.url(), g2.url()], up, EVENTS, dup_share=0.25)
    held = {g: [r["event_id"] for r in spool_pending(hookgate_bin, g)] for g in (g1, g2)}
    # A copy of an event one replica spooled, sent to the other: a duplicate (the shared ledger holds it).
    for g, other in ((g1, g2), (g2, g1)):
        for eid in held[g][:5]:
            r = other.send(sender.make_event(id=eid), retry_count=5)
            assert r.status == 200 and r.body == b'{"duplicate":true}', (eid, r.status, r.body)
    up.mode(status=200)
    ok, seconds = drain(hookgate_bin, [g1, g2])
    time.sleep(0.5)
    s, spooled, accepted, twice = figures("two replicas, redis ledger, spool each", report, up, prefix, drained=seconds)
    print("  spooled per replica: %d and %d; held by both: %d" % (
        len(held[g1]), len(held[g2]), len(set(held[g1]) & set(held[g2]))))
    assert ok
    assert s["dead_lettered"] == 0 and s["acknowledged"] == s["sent"]
    assert held[g1] and held[g2], "each replica spools the last attempts it received"
    assert not set(held[g1]) & set(held[g2]), "an event is spooled by one replica only"
    assert len(accepted) == EVENTS and twice == 0


def test_latency_of_a_spooled_answer(gateways, recording_upstream, tmp_path):
    """Printed, not asserted (speed is for benchmarks): what the fsync adds to a last attempt."""
    up = recording_upstream()
    up.mode(status=503)
    plain = gateways(gateway_config(up))
    spooling = gateways(gateway_config(up, spool_path=tmp_path / "spool.sqlite"))
    results = {}
    for name, g in (("relayed 503, no spool", plain), ("spooled 202", spooling)):
        times, statuses = [], collections.Counter()
        for i in range(200):
            body = sender.make_event(id="lat-%s-%d" % (name[:3], i))
            t = time.perf_counter()
            r = g.send(body, retry_count=5)
            times.append((time.perf_counter() - t) * 1000)
            statuses[r.status] += 1
        times.sort()
        results[name] = statuses
        print("\n  [%s] n=200 statuses=%s median=%.2f ms p99=%.2f ms max=%.2f ms" % (
            name, dict(statuses), statistics.median(times), times[int(len(times) * 0.99) - 1], times[-1]))
    assert results["spooled 202"] == {202: 200}
    assert results["relayed 503, no spool"] == {503: 200}
