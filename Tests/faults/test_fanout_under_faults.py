"""Routing by event type under faults: three destinations with different filters and failure
modes (one down, then back; one answering 429 for a while; one that hangs past its timeout at
random), driven by the platform-like sender. Every destination whose filter matches gets each
event exactly once, no other destination gets it, and nothing is dead-lettered.

Run: HOOKGATE_BIN=.build/debug/hookgate python3 -m pytest -q -s Tests/faults/test_fanout_under_faults.py
"""
import threading
import time

from conftest import SECRET, UPSTREAM_PATH, make_route, poll_until
from delivery_check import is_2xx, is_clean_2xx
from platform_sender import PlatformSender

EVENTS = 400
TYPES = ["custody.vehicle.released", "credential.revoked", "credential.expired", "billing.invoice.paid",
         "custody.key.issued"]
FILTERS = {
    "custody-app": {"patterns": ["custody.*"]},
    "credential-app": {"include": ["credential.revoked"], "exclude": ["credential.expired"]},
    "audit": {"exclude": ["credential.expired"]},
}


def wanted(destination, event_type):
    f = FILTERS[destination]
    if event_type in f.get("exclude", []):
        return False
    if event_type in f.get("include", []):
        return True
    if any(event_type.startswith(p[:-1]) for p in f.get("patterns", [])):
        return True
    return not f.get("include") and not f.get("patterns")


def test_three_destinations_each_get_what_they_want_exactly_once(start_gateway, recording_upstream):
    ups = {name: recording_upstream() for name in FILTERS}
    route = make_route("http://unused.invalid/")
    del route["upstream"]
    route["destinations"] = [
        {"name": name, "filter": FILTERS[name], "upstream": {"url": ups[name].url(UPSTREAM_PATH), "timeout": "1s"}}
        for name in FILTERS]
    gw = start_gateway([route])
    ups["custody-app"].kill()                                   # down from the start
    ups["credential-app"].mode(fail_next=60, fail_status=429)   # rate-limits for a while
    ups["audit"].mode(random_hang=0.05, random_hang_seconds=2.0, seed=7)   # hangs past its 1 s timeout

    # Backoff 0.25 s x 2^n: 7.75 s of retries per delivery, enough to outlast the outage.
    s = PlatformSender(gw.url(), SECRET, max_attempts=6, backoff=0.25, timeout=10.0, concurrency=24)
    box = {}

    def go():
        box["report"] = s.run(EVENTS, dup_share=0.1, id_prefix="evt_fan_", seed=12, types=TYPES)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    assert poll_until(lambda: s.completed >= 20 or not t.is_alive(), timeout=60, interval=0.01)
    time.sleep(1.0)
    ups["custody-app"].start()                                  # comes back on the same port
    t.join(timeout=120)
    assert not t.is_alive(), "the sender did not finish"
    report = box["report"]
    summary = report.summary()

    types = {"evt_fan_%06d" % i: TYPES[i % len(TYPES)] for i in range(EVENTS)}
    figures = {}
    problems = []
    for name, up in ups.items():
        recs = [r for r in up.records() if (r.get("id") or "").startswith("evt_fan_")]
        clean, accepted, by_id = {}, {}, {}
        for r in recs:
            by_id.setdefault(r["id"], []).append(r)
            if is_clean_2xx(r):
                clean[r["id"]] = clean.get(r["id"], 0) + 1
            if is_2xx(r):
                accepted[r["id"]] = accepted.get(r["id"], 0) + 1
        for eid, t_ in types.items():
            if wanted(name, t_):
                if clean.get(eid, 0) != 1:
                    problems.append("%s: %s (%s) accepted cleanly %d times: %s" % (
                        name, eid, t_, clean.get(eid, 0), [(r["status"], r["fault"]) for r in by_id.get(eid, [])]))
                extra = accepted.get(eid, 0) - clean.get(eid, 0)
                if extra and not all(r["fault"] == "hang" for r in by_id[eid] if is_2xx(r) and not is_clean_2xx(r)):
                    problems.append("%s: %s accepted again without a hang to explain it" % (name, eid))
            elif by_id.get(eid):
                problems.append("%s: %s (%s) is not wanted there but arrived %d times" % (name, eid, t_, len(by_id[eid])))
        figures[name] = {"requests": len(recs), "events_accepted": len(clean),
                         "late_accepts_after_hang": sum(accepted.values()) - sum(clean.values()),
                         "statuses": sorted({str(r["status"]) for r in recs})}
    print("\n[fanout] sender=%s" % summary)
    for name, f in figures.items():
        print("[fanout] %s: %s" % (name, f))
    assert not problems, "\n".join(problems[:20])
    assert summary["dead_lettered"] == 0, summary
    assert summary["refused"] == 0, summary
    assert summary["acknowledged"] == summary["sent"], summary
    assert summary["attempt_statuses"].get("503", 0) > 0, "no destination failure was seen"
    assert figures["credential-app"]["statuses"].count("429") == 1
    assert ups["custody-app"].restarts == 0
