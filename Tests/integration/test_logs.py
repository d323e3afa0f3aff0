"""Access logs: one JSON object per request on stdout, with no secrets, signatures or bodies."""
import json
import time

import sender
from conftest import SECRET, log_get, log_has

BODY_MARKER = "BODYMARKER-7f3a9c-not-for-logs"
REQUIRED_KEYS = ["route", "outcome", "status", "duration_ms"]


def test_logs_are_json_lines_with_required_keys(gw, upstream):
    ev_ok = sender.make_event(id="evt_log_ok", type="custody.vehicle.released", data={"m": BODY_MARKER})
    ts = int(time.time())
    sigs = []

    def send(body, **kw):
        sigs.append(sender.sign(kw.get("secret", SECRET), kw.get("ts", ts), body)["X-VECU-Signature"][7:])
        return gw.send(body, ts=ts, **{k: v for k, v in kw.items() if k != "ts"})

    assert send(ev_ok).status == 200                                           # forwarded
    assert send(ev_ok, retry_count=1).body == b'{"duplicate":true}'            # duplicate
    bad = sender.make_event(id="evt_log_bad", data={"m": BODY_MARKER})
    assert send(bad, secret="wrong-secret-" + "w" * 30).status == 401          # rejected
    upstream.mode(status=500, body="nope")
    assert send(sender.make_event(id="evt_log_500", data={"m": BODY_MARKER})).status == 500

    entries = gw.wait_logs(lambda e: sum(1 for x in e if log_has(x, "outcome")) >= 4)
    lines = gw.log_lines()
    # every stdout line is a JSON object
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
    req = [e for e in entries if log_has(e, "outcome")]
    assert len(req) >= 4, entries

    for e in req:
        for k in REQUIRED_KEYS:
            assert log_has(e, k), "log entry lacks %r: %s" % (k, e)
        assert log_get(e, "outcome") in ("forwarded", "duplicate", "rejected"), e
        assert isinstance(log_get(e, "duration_ms"), (int, float)), e

    by_id = {}
    for e in req:
        if log_has(e, "event.id"):
            by_id.setdefault(log_get(e, "event.id"), []).append(e)

    ok = by_id.get("evt_log_ok", [])
    assert [log_get(e, "outcome") for e in ok] == ["forwarded", "duplicate"], ok
    fwd = ok[0]
    assert log_get(fwd, "route") == "vecu"
    assert log_get(fwd, "event.type") == "custody.vehicle.released"
    assert log_get(fwd, "status") == 200
    assert log_get(fwd, "upstream.status") == 200
    assert log_get(ok[1], "status") == 200

    rejected = [e for e in req if log_get(e, "outcome") == "rejected"]
    assert any(log_has(e, "reason") and log_get(e, "reason") == "signature_mismatch" and log_get(e, "status") == 401
               for e in rejected), rejected

    failed = by_id.get("evt_log_500", [])
    assert len(failed) == 1 and log_get(failed[0], "upstream.status") == 500 and log_get(failed[0], "status") == 500, failed

    everything = gw.stdout() + gw.stderr()
    assert SECRET not in everything, "the secret appears in the logs"
    for s in sigs:
        assert s not in everything, "a signature value appears in the logs"
    assert BODY_MARKER not in everything, "body text appears in the logs"


def test_logs_for_404_and_405_and_timeout_reason(gw, upstream):
    body = sender.make_event(id="evt_log_404")
    assert gw.send(body, path="/nowhere").status == 404
    assert sender.request(gw.url(), b"", method="GET").status == 405
    entries = gw.wait_logs(lambda e: len([x for x in e if log_has(x, "outcome")]) >= 2)
    req = [e for e in entries if log_has(e, "outcome")]
    statuses = sorted(log_get(e, "status") for e in req)
    assert statuses[:2] == [404, 405], req
    for e in req:
        assert log_get(e, "outcome") == "rejected", e
        assert log_has(e, "reason"), e
    reasons = {log_get(e, "reason") for e in req}
    assert {"route_not_found", "method_not_allowed"} <= reasons, reasons


def test_upstream_error_reasons_logged(start_gateway, upstream):
    from conftest import UPSTREAM_PATH, make_route
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH), timeout="1s")])
    upstream.mode(hang=3)
    assert g.send(sender.make_event(id="evt_log_slow")).status == 504
    entries = g.wait_logs(lambda e: any(log_has(x, "reason") and log_get(x, "reason") == "upstream_timeout"
                                        for x in e))
    slow = [e for e in entries if log_has(e, "event.id") and log_get(e, "event.id") == "evt_log_slow"]
    assert slow and log_get(slow[0], "reason") == "upstream_timeout" and log_get(slow[0], "status") == 504, entries


def test_body_too_large_is_logged(start_gateway, upstream):
    from conftest import UPSTREAM_PATH, make_route
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH))], max_body_bytes=1024)
    body = sender.make_event(id="evt_log_big", data={"pad": "p" * 4000})
    assert g.send(body).status == 413
    entries = g.wait_logs(lambda e: any(log_has(x, "status") and log_get(x, "status") == 413 for x in e))
    big = [e for e in entries if log_has(e, "status") and log_get(e, "status") == 413]
    assert big, "a 413 request should be logged like any other: %s" % entries
    assert log_get(big[0], "outcome") == "rejected" and log_get(big[0], "reason") == "body_too_large", big
    assert upstream.count() == 0
