"""One fault scenario's run: the platform-like sender in a thread while the fault is injected on
this one, then the reconciliation with the upstream's records, the printed figures and the
assertions every scenario shares (nothing wrong, every event at the upstream)."""
import json
import threading
import time
import zlib

from delivery_check import reconcile

SCENARIO_BUDGET = 60.0   # hard bound on one sender run (each scenario takes well under 20 s)


def drive(name, sender, upstream, events, prefix, during=None, allow=None, settle=0.0, **run_kw):
    """Runs `sender.run(events, ...)` in a thread and `during(sender)` meanwhile on this thread;
    `settle` seconds before reconciling let late upstream records land. Returns (report, counts)."""
    box = {}

    def go():
        try:
            box["report"] = sender.run(events, id_prefix=prefix, seed=zlib.crc32(name.encode()), **run_kw)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=go, name="sender-" + name, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        if during is not None:
            during(sender)
    finally:
        t.join(timeout=max(1.0, SCENARIO_BUDGET - (time.monotonic() - t0)))
    assert not t.is_alive(), "%s: the sender did not finish within %.0f s (%d deliveries done)" % (
        name, SCENARIO_BUDGET, sender.completed)
    if "error" in box:
        raise box["error"]
    report = box["report"]
    if settle:
        time.sleep(settle)
    counts, problems = reconcile(report, upstream.records(), id_prefix=prefix, allow=allow)
    allowed = sum(counts["allowed"].values())
    line = ("[%s] sent=%d acknowledged=%d forwarded=%d duplicates_dropped=%d retried=%d (retries=%d) "
            "dead_lettered=%d | events=%d upstream_accepted=%d upstream_faults=%d double_accepts=%d "
            "(allowed %s, after-ack not duplicate %d) strict_unexplained=%d attempts=%s %.1fs" % (
                name, counts["sent"], counts["acknowledged"], counts["forwarded"], counts["duplicates"],
                counts["retried"], counts["retries"], counts["dead_lettered"], counts["events"],
                counts["upstream_accepted"], counts["upstream_faults"], counts["accepted_twice"],
                json.dumps(counts["allowed"]) if allowed else "0", counts["allowed_after_ack"],
                counts["accepted_twice_unexplained_strict"], json.dumps(counts["attempt_statuses"]),
                counts["seconds"]))
    print("\n" + line)
    if counts.get("strict_examples"):
        print("  strict examples: %s" % counts["strict_examples"])
    assert not problems, "%s:\n  %s" % (name, "\n  ".join(problems))
    assert counts["events"] == events
    assert counts["upstream_accepted"] == events, "every event should have reached the upstream"
    return report, counts
