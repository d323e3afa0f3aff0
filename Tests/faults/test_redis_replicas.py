"""Effectively once across replicas and restarts: three hookgate replicas (separate processes) on
one real redis-server and one recording upstream, driven by the platform-like sender over every
replica -- a quarter of the events delivered twice at once (each copy starting on another
replica) and once more later on the third replica, every retry on the next replica
(Tests/peers/platform_sender.py, spread="round_robin"; scenario (a) also with three copies at
once, one per replica; (c) with every attempt on a replica drawn at random) -- while one fault
is injected. Then a durable ledger (sqlite) across restarts of one gateway.

After every scenario (Tests/peers/delivery_check.py, harness in replicas.py): every acknowledged
event has a 2xx record at the upstream; nothing was dead-lettered or refused; no event was accepted
twice by the upstream, and no attempt after an acknowledgement was answered other than as a
duplicate, unless the upstream failed or hung on the first copy or the scenario's fault explains
it: the shared ledger was unavailable (under `on_unavailable: local`) while the event's copies
were handled -- within REDIS_RECOVERY_GRACE after it came back --, or the replica that forwarded
it was SIGKILLed with the forward in flight. Those are counted apart ("allowed") and printed.

Each scenario prints: sent, acknowledged, forwarded, duplicates dropped, retried, dead-lettered,
double accepts (allowed ones apart). Bounded: each sender run under SCENARIO_BUDGET (60 s).
Run: HOOKGATE_BIN=.build/debug/hookgate python3 -m pytest -q -s Tests/faults/test_redis_replicas.py
"""
import time

import pytest

from conftest import SECRET, poll_until
from platform_sender import PlatformSender
from replicas import (RedisClient, RedisError, Windows, error_codes, ledger_config, redis_env, replica_tag,
                      run_load)

MIXED = (1, "auto", 1)        # workers of the three replicas where one run covers both kinds
REDIS_RECOVERY_GRACE = 3.0    # after Redis is back, how long replicas may still decide locally
PACE = 120                    # deliveries started per second where a fault meets the load mid-run
UPSTREAM_TIMEOUT = "2s"       # short, so that claim_lifetime 10s passes check (2s + 2s wait + 5s)


def _start(redis_server, recording_upstream, replica_group, workers=MIXED, redis_kw=None, **ledger_kw):
    redis = redis_server(**(redis_kw or {}))
    up = recording_upstream()
    replica_group.start(up, ledger_config(redis, **ledger_kw), workers=workers, env=redis_env(redis),
                        upstream_timeout=UPSTREAM_TIMEOUT)
    return redis, up


def _progress(s, fraction, events, dup_share=0.25, copies=2):
    total = events * (1 + dup_share * copies)
    assert poll_until(lambda: s.completed >= fraction * total, timeout=40, interval=0.01), "sender made no progress"


def _assert_ledger_keys(redis, events, timeout=5.0, missing_allowed=0):
    """One key per event under the prefix (up to `missing_allowed` fewer), nothing outside it.
    Polled: the last delivered marks are written after the sender's answer, and replays after an
    outage may still be under way."""
    got = poll_until(lambda: events - missing_allowed <= len(redis.keys("hookgate:*")) <= events,
                     timeout=timeout, interval=0.2)
    keys = redis.keys("*")
    inside = sum(1 for k in keys if k.startswith(b"hookgate:"))
    print("  redis keys: %d under hookgate: (events %d), %d outside" % (inside, events, len(keys) - inside))
    assert not [k for k in keys if not k.startswith(b"hookgate:")], "keys outside the prefix: %r" % keys[:5]
    assert got, "the shared ledger should hold one key per delivered event: %d keys, %d events" % (inside, events)


def _touching(report, windows):
    return sum(1 for d in report.deliveries if any(windows.touches(a) for a in d.attempts))


def _killed_forward_allow(up, replicas, before):
    """allow(): an earlier record of the event was forwarded by a replica incarnation that was
    SIGKILLed within `before` seconds of that forward's arrival (in flight, or answered and its
    delivered mark possibly not yet written), or whose answer found that incarnation gone (the
    kill took it before it could read the 2xx, however long the forward had taken on a loaded
    machine). The upstream's records are read at the first call, so build it before the run and
    pass it to run_load."""
    seen = {}

    def check(event_id, records, deliveries):
        if not seen:
            seen["tags"] = {r["seq"]: replica_tag(r) for r in up.full_records()}
            seen["kills"] = {tag: wall for r in replicas for tag, wall, _ in r.killed}
        for rec in records:
            wall = seen["kills"].get(seen["tags"].get(rec["seq"]))
            if wall is not None and (wall - before <= rec["time"] <= wall or rec.get("client_gone")):
                return "replica_killed"
        return None
    return check


def _outage_scenario(name, redis, up, replica_group, events, windows, stop, resume, seconds, reason, **run_kw):
    """Steady load; at 40 % of it Redis is stopped (`stop`) for `seconds`, then resumed. Double
    accepts are allowed for deliveries with an attempt in the outage (plus the recovery grace);
    afterwards every event's key is in Redis (the marks made meanwhile were replayed)."""
    def during(s):
        _progress(s, 0.4, events)
        windows.begin()
        stop()
        time.sleep(seconds)
        resume()
        windows.end()
        assert s.completed < events * 1.3, "the outage came after the load"

    report, counts = run_load(name, replica_group.urls(), up, events, during=during, rate=PACE,
                              allow=windows.allow(reason), **run_kw)
    print("  outages: %s; deliveries with an attempt in an outage (+%.0f s): %d; double accepts allowed: %s" % (
        windows.describe(), REDIS_RECOVERY_GRACE, _touching(report, windows), counts["allowed"]))
    assert _touching(report, windows) > 0
    _assert_ledger_keys(redis, events, timeout=10)


# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers,copies", [((1, 1, 1), 3), (("auto", "auto", "auto"), 2)],
                         ids=["workers1_3copies", "workers_auto_2copies"])
def test_a_steady_state_copies_on_every_replica(redis_server, recording_upstream, replica_group, workers, copies):
    """(a) copies of each event at once on two or three replicas, a later copy (on the third
    replica with two copies), and retries on the next replica: the shared ledger lets exactly one
    forward through (the others wait for its outcome or find it delivered)."""
    redis, up = _start(redis_server, recording_upstream, replica_group, workers=workers)
    up.mode(delay=0.02)   # forwards overlap the concurrent copies' claims
    events = 1200
    report, counts = run_load("a_steady_%s_%dcopies" % (workers[0], copies), replica_group.urls(), up, events,
                              copies=copies)
    assert counts["accepted_twice"] == 0, "no fault was injected: no event may reach the upstream twice"
    assert counts["forwarded"] == events, "one forward per event, got %d for %d" % (counts["forwarded"], events)
    _assert_ledger_keys(redis, events)


def test_b_redis_killed_and_restarted(redis_server, recording_upstream, replica_group):
    """(b) Redis SIGKILLed mid-run (a steady load of 120 deliveries/s) and restarted on the same
    port a second later (append-only file: what it acknowledged survives). `local`: the replicas
    go on with their own ledgers; an event whose copies were handled during the outage may reach
    the upstream twice (counted apart), no other."""
    redis, up = _start(redis_server, recording_upstream, replica_group, redis_kw={"persist": True})
    up.mode(delay=0.01)
    events = 1500
    windows = Windows(REDIS_RECOVERY_GRACE)

    _outage_scenario("b_redis_kill", redis, up, replica_group, events, windows, redis.kill, redis.start, 1.0,
                     "redis_down")


def test_b_redis_killed_and_restarted_empty(redis_server, recording_upstream, replica_group):
    """(b, as a cache) the same kill with `--save '' --appendonly no`: Redis comes back empty, so
    an event seen before it was back may be forwarded once more (counted apart, never lost); an
    event first sent after it was back (and the grace) reaches the upstream exactly once."""
    redis, up = _start(redis_server, recording_upstream, replica_group)
    up.mode(delay=0.01)
    events = 1200
    windows = Windows(REDIS_RECOVERY_GRACE)

    def during(s):
        _progress(s, 0.3, events)
        windows.begin()
        redis.kill()
        time.sleep(0.5)
        redis.start()
        windows.end()

    report, counts = run_load("b_redis_kill_empty", replica_group.urls(), up, events, during=during, rate=PACE,
                              allow=windows.allow_lost("redis_lost_its_keys"))
    back = windows.spans[-1][1] + REDIS_RECOVERY_GRACE
    after = {d.event_id for d in report.deliveries} - {
        d.event_id for d in report.deliveries if any(a.started <= back for a in d.attempts)}
    print("  outage %s; events first sent after Redis was back: %d; double accepts allowed: %s" % (
        windows.describe(), len(after), counts["allowed"]))
    assert len(after) > events / 4, "too few events came after the outage for the check to mean anything"


def test_c_redis_frozen_past_timeout(redis_server, recording_upstream, replica_group):
    """(c) Redis SIGSTOPped for 1.5 s (its timeout is 300 ms) mid-run, then SIGCONTed: connections
    stay open and nothing answers (what was sent meanwhile is executed late); `local` takes over,
    with the same accounting as (b)."""
    redis, up = _start(redis_server, recording_upstream, replica_group, timeout="300ms")
    up.mode(delay=0.01)
    events = 1500
    windows = Windows(REDIS_RECOVERY_GRACE)

    _outage_scenario("c_redis_freeze", redis, up, replica_group, events, windows, redis.freeze, redis.thaw, 1.5,
                     "redis_frozen", spread="random")


def test_d_replica_killed_with_forwards_in_flight(redis_server, recording_upstream, replica_group):
    """(d) the upstream takes 300 ms; one replica is SIGKILLed with forwards in flight and restarted
    a second later. The sender's retries go to the other replicas, which wait on the dead
    replica's claims until they expire (claim_lifetime 10 s; the backoff, 0.4 s x 2^n, spans 12 s)
    and then forward. Only events the killed replica was forwarding may reach the upstream twice."""
    redis, up = _start(redis_server, recording_upstream, replica_group, claim_lifetime="10s")
    delay = 0.3
    up.mode(delay=delay)
    events = 500
    victim = replica_group.replicas[1]

    def during(s):
        _progress(s, 0.4, events)
        victim.kill()
        time.sleep(1.0)
        victim.start()

    allow = _killed_forward_allow(up, replica_group.replicas, before=delay + 1.0)
    report, counts = run_load("d_replica_kill", replica_group.urls(), up, events, concurrency=32, backoff=0.4,
                              during=during, allow=allow)
    (tag, wall, _), = victim.killed
    in_flight = [r for r in up.full_records() if replica_tag(r) == tag and wall - delay <= r["time"] <= wall]
    print("  killed %s with %d forwards in flight; double accepts allowed: %s; statuses %s" % (
        tag, len(in_flight), counts["allowed"], error_codes(report)))
    assert in_flight, "the kill should have caught forwards in flight"
    _assert_ledger_keys(redis, events, timeout=10)


def test_e_rolling_restart_under_load(redis_server, recording_upstream, replica_group):
    """(e) a rolling deploy: each replica in turn gets SIGTERM (drains, exits 0) and is started again
    while the others take the load. Nothing is forgotten: no event reaches the upstream twice."""
    redis, up = _start(redis_server, recording_upstream, replica_group)
    up.mode(delay=0.02)
    events = 1500
    exits = []

    def during(s):
        for i, replica in enumerate(replica_group.replicas):
            _progress(s, 0.15 + 0.25 * i, events)
            replica.gw.wait_signal_handlers()
            exits.append(replica.terminate())
            replica.start()

    report, counts = run_load("e_rolling_restart", replica_group.urls(), up, events, during=during, rate=PACE)
    print("  exit codes %s; statuses %s" % (exits, error_codes(report)))
    assert exits == [0, 0, 0]
    assert counts["accepted_twice"] == 0, "a drained replica forgets nothing: no event may reach the upstream twice"
    _assert_ledger_keys(redis, events)


def test_f_redis_over_tls_with_acl_user(redis_server, recording_upstream, replica_group, tls_material):
    """(f) rediss:// with the test CA and a least-privilege ACL user (`user default off`): the
    steady state of (a), with zero double accepts."""
    redis, up = _start(redis_server, recording_upstream, replica_group,
                       redis_kw={"tls": tls_material, "acl": True})
    # the harness's Redis really is that strict: the hookgate user can touch nothing else
    c = RedisClient(redis.port, ca_file=tls_material.ca, user="hookgate", password=redis.hookgate_password)
    try:
        with pytest.raises(RedisError, match="NOPERM"):
            c.call("SET", "elsewhere", "1")
        with pytest.raises(RedisError, match="NOPERM"):
            c.call("FLUSHALL")
    finally:
        c.close()
    with pytest.raises(RedisError):
        RedisClient(redis.port, ca_file=tls_material.ca).call("PING")   # default user is off
    up.mode(delay=0.02)
    events = 1000
    report, counts = run_load("f_tls_acl", replica_group.urls(), up, events)
    assert counts["accepted_twice"] == 0
    assert counts["forwarded"] == events
    _assert_ledger_keys(redis, events)


def test_g_reject_while_redis_is_down(redis_server, recording_upstream, replica_group):
    """(g) `on_unavailable: reject`: while Redis is down (2.5 s), attempts are answered 503
    ledger_unavailable with Retry-After and retried -- except the sender's last attempt
    (X-VECU-Retry-Count: 5), which is forwarded anyway. Nothing is dead-lettered."""
    redis, up = _start(redis_server, recording_upstream, replica_group, redis_kw={"persist": True},
                       timeout="300ms", on_unavailable="reject")
    up.mode(delay=0.01)
    events = 1200
    windows = Windows(REDIS_RECOVERY_GRACE)

    def during(s):
        _progress(s, 0.3, events)
        windows.begin()
        redis.kill()
        time.sleep(2.5)
        redis.start()
        windows.end()

    report, counts = run_load("g_reject", replica_group.urls(), up, events, during=during, rate=PACE,
                              allow=windows.allow("redis_down_last_attempt"))
    unavailable = [(d, a) for d in report.deliveries for a in d.attempts
                   if a.status == 503 and a.error_code == "ledger_unavailable"]
    last = [d for d in report.deliveries if d.acknowledged and len(d.attempts) == 6 and not d.duplicate
            and windows.touches(d.attempts[-1])]
    print("  outage %s; 503 ledger_unavailable: %d; forwarded on the last attempt during the outage: %d; "
          "double accepts allowed: %s" % (windows.describe(), len(unavailable), len(last), counts["allowed"]))
    assert unavailable, "with Redis down, `reject` should answer 503 ledger_unavailable"
    assert all(a.retry_after for _, a in unavailable), "503 ledger_unavailable without Retry-After"
    assert not [a for _, a in unavailable if a.number == 6], "the last attempt must be forwarded, not rejected"
    assert all(windows.touches(a) for _, a in unavailable), "ledger_unavailable while Redis was up"
    # an event forwarded on its last attempt while Redis was down may have no mark in Redis
    _assert_ledger_keys(redis, events, timeout=10, missing_allowed=len(last))


# ------------------------------------------------------------------------------------------------
def _sqlite_replica(replica_group, recording_upstream, tmp_path):
    up = recording_upstream()
    ledger = {"store": "sqlite", "sqlite": {"path": str(tmp_path / "ledger.sqlite")}}
    replica_group.start(up, ledger, workers=(1,), upstream_timeout=UPSTREAM_TIMEOUT)
    return up, replica_group.replicas[0]


def _resend_all(name, gw_url, up, events, prefix):
    """Delivers every event once more (fresh deliveries); returns (report, forwards it caused)."""
    before = {r["seq"] for r in up.records()}
    s = PlatformSender(gw_url, SECRET, max_attempts=6, backoff=0.05, timeout=10.0, concurrency=16)
    report = s.run(events, dup_share=0.0, id_prefix=prefix, seed=1)
    time.sleep(0.3)
    forwards = [r for r in up.records() if r["seq"] not in before and str(r.get("id")).startswith(prefix)]
    summary = report.summary()
    print("[%s] resent=%d acknowledged=%d duplicates=%d forwarded_again=%d dead_lettered=%d" % (
        name, summary["sent"], summary["acknowledged"], summary["duplicates"], len(forwards), summary["dead_lettered"]))
    assert summary["dead_lettered"] == 0 and summary["acknowledged"] == summary["sent"]
    return report, forwards


def test_h_sqlite_survives_sigterm(replica_group, recording_upstream, tmp_path):
    """(h) sqlite: deliver N events, SIGTERM (commits everything), restart, resend all N: every one
    is answered as a duplicate and nothing reaches the upstream again."""
    up, gw = _sqlite_replica(replica_group, recording_upstream, tmp_path)
    events = 600
    run_load("h_sqlite_term", [gw.url()], up, events, dup_share=0.1, copies=2)
    gw.gw.wait_signal_handlers()
    assert gw.terminate() == 0
    gw.start()
    report, forwards = _resend_all("h_sqlite_term_resend", gw.url(), up, events, "evt_h_sqlite_term_")
    assert not forwards, "after a SIGTERM and a restart, %d events were forwarded again" % len(forwards)
    assert report.summary()["duplicates"] == events


KILL_FORGETS = 0.5   # seconds before a SIGKILL whose deliveries the sqlite ledger may not have committed


def test_i_sqlite_sigkill_midrun(replica_group, recording_upstream, tmp_path):
    """(i) sqlite: SIGKILL mid-run (100 deliveries/s), restart on the same port (the sender's
    retries, 0.1 s x 2^n, cover it), then resend all N: every acknowledged event is in the
    upstream's record, and only events forwarded in the last KILL_FORGETS seconds before the kill
    (in flight, or within the last commit interval on a loaded machine) may be forwarded again."""
    up, gw = _sqlite_replica(replica_group, recording_upstream, tmp_path)
    up.mode(delay=0.01)
    events = 800

    def during(s):
        _progress(s, 0.5, events, dup_share=0.1, copies=2)
        gw.kill()
        gw.start()

    run_load("i_sqlite_kill", [gw.url()], up, events, dup_share=0.1, copies=2, backoff=0.1, during=during,
             allow=_killed_forward_allow(up, [gw], before=KILL_FORGETS), rate=100)
    check = _killed_forward_allow(up, [gw], before=KILL_FORGETS)
    report, forwards = _resend_all("i_sqlite_kill_resend", gw.url(), up, events, "evt_i_sqlite_kill_")
    by_id = {}
    for r in up.records():
        by_id.setdefault(r["id"], []).append(r)
    unexplained = [r["id"] for r in forwards if check(r["id"], [x for x in by_id[r["id"]] if x["seq"] < r["seq"]], [])
                   is None]
    print("  forwarded again after the restart: %d (of them not forwarded just before the kill: %d)" % (
        len(forwards), len(unexplained)))
    assert not unexplained, "%d events delivered long before the SIGKILL were forgotten, e.g. %s" % (
        len(unexplained), unexplained[:5])
