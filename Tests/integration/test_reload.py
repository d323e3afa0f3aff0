"""SIGHUP reload: routes, upstream URLs and secrets follow the file; the dedup ledger survives;
an invalid file is rejected and the running configuration keeps serving; a request in flight
finishes under the configuration it started with."""
import copy
import json
import threading

import pytest

import sender
from conftest import SECRET, SECRET2, UPSTREAM_PATH, assert_error, make_route, poll_until

OTHER_PATH = "/webhooks/other"


def reloads(g, result):
    return g.metrics().get("hookgate_config_reloads_total", default=0, result=result)


def reload_and_wait(g, config, result="success"):
    """Rewrites the file, sends SIGHUP, and waits until the reload counter for `result` moves."""
    before = {r: reloads(g, r) for r in ("success", "failure")}
    g.reload(config)
    m = g.wait_metric(lambda m: m.get("hookgate_config_reloads_total", default=0, result=result) > before[result],
                      timeout=5)
    assert m.get("hookgate_config_reloads_total", result=result) == before[result] + 1, m.text
    other = "failure" if result == "success" else "success"
    assert m.get("hookgate_config_reloads_total", default=0, result=other) == before[other], m.text
    return m


@pytest.fixture
def rgw(launch_gateway, upstream):
    return launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)


def test_reload_adds_a_route(rgw, upstream, start_upstream):
    other = start_upstream()
    assert_error(rgw.send(sender.make_event(), path=OTHER_PATH), 404, "route_not_found")
    cfg = copy.deepcopy(rgw.config)
    cfg["routes"].append(make_route(other.url("/other/in"), name="other", path=OTHER_PATH))
    reload_and_wait(rgw, cfg)
    body = sender.make_event(id="evt_reload_new_route")
    r = rgw.send(body, path=OTHER_PATH)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    recs = other.records()
    assert len(recs) == 1 and recs[0]["path"] == "/other/in" and recs[0]["body_bytes"] == body
    # the old route still works and still goes to its own upstream
    assert rgw.send(sender.make_event(id="evt_reload_old_route")).status == 200
    assert upstream.count() == 1 and other.count() == 1
    logged = rgw.wait_logs(lambda es: any(e.get("route") == "other" for e in es))
    assert any(e.get("route") == "other" and e.get("status") == 200 for e in logged)


def test_reload_changes_the_upstream_url(rgw, upstream, start_upstream):
    second = start_upstream()
    assert rgw.send(sender.make_event(id="evt_url_before")).status == 200
    cfg = copy.deepcopy(rgw.config)
    cfg["routes"][0]["upstream"]["url"] = second.url("/second/in")
    reload_and_wait(rgw, cfg)
    r = rgw.send(sender.make_event(id="evt_url_after"))
    assert r.status == 200, r
    assert [json.loads(x["body_bytes"])["id"] for x in upstream.records()] == ["evt_url_before"]
    recs = second.records()
    assert [json.loads(x["body_bytes"])["id"] for x in recs] == ["evt_url_after"]
    assert recs[0]["path"] == "/second/in"


def test_reload_applies_a_rotated_secret_file(launch_gateway, upstream, tmp_path):
    secret_file = tmp_path / "vecu.secret"
    secret_file.write_text(SECRET + "\n")
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), secrets=[{"file": str(secret_file)}])], admin=True)
    assert g.send(sender.make_event(id="evt_rot_old_ok"), secret=SECRET).status == 200
    assert_error(g.send(sender.make_event(id="evt_rot_new_early"), secret=SECRET2), 401, "signature_mismatch")
    g.wait_signal_handlers()  # SIGHUP right after the write: before the file watch would reload it
    secret_file.write_text(SECRET2 + "\n")  # the configuration file itself is unchanged
    reload_and_wait(g, None)
    r = g.send(sender.make_event(id="evt_rot_new_ok"), secret=SECRET2)
    assert r.status == 200, r
    assert_error(g.send(sender.make_event(id="evt_rot_old_late"), secret=SECRET), 401, "signature_mismatch")
    ids = [json.loads(x["body_bytes"])["id"] for x in upstream.records()]
    assert ids == ["evt_rot_old_ok", "evt_rot_new_ok"]


def test_dedup_ledger_survives_reload(rgw, upstream, start_upstream):
    second = start_upstream()
    body = sender.make_event(id="evt_ledger_survives")
    assert rgw.send(body).body == b'{"ok":true}'
    cfg = copy.deepcopy(rgw.config)
    cfg["routes"][0]["upstream"]["url"] = second.url(UPSTREAM_PATH)
    cfg["routes"][0]["verify"]["tolerance"] = "200s"
    m = reload_and_wait(rgw, cfg)
    assert m.get("hookgate_dedup_entries", route="vecu") == 1, m.text
    r = rgw.send(body, retry_count=1)  # new timestamp and signature, same event
    assert r.status == 200 and r.json() == {"duplicate": True}, r
    assert r.header("X-Hookgate-Duplicate") == "true"
    assert upstream.count() == 1 and second.count() == 0


def test_invalid_file_is_rejected_and_old_config_keeps_serving(rgw, upstream, start_upstream):
    second = start_upstream()
    original = copy.deepcopy(rgw.config)
    bad = copy.deepcopy(original)
    bad["routes"][0]["upstream"]["url"] = second.url(UPSTREAM_PATH)  # would move traffic if applied
    bad["routes"][0]["upstream"]["bogus_reload_key"] = "x"
    reload_and_wait(rgw, bad, result="failure")
    entries = rgw.wait_logs(lambda es: any(e.get("level") == "error" and "bogus_reload_key" in json.dumps(e)
                                           for e in es))
    errors = [e for e in entries if e.get("level") == "error" and "bogus_reload_key" in json.dumps(e)]
    assert errors, "no error log line names the offending key: %s" % rgw.log_lines()[-5:]
    assert rgw.alive()
    r = rgw.send(sender.make_event(id="evt_after_bad_reload"))
    assert r.status == 200, r
    assert upstream.count() == 1 and second.count() == 0

    # a file that is not YAML at all, and one with a too-short secret: rejected as well
    rgw.config_path.write_text("routes: [ {name: x\n")
    reload_and_wait(rgw, None, result="failure")
    short = copy.deepcopy(original)
    short["routes"][0]["verify"]["secrets"] = [{"value": "too-short"}]
    reload_and_wait(rgw, short, result="failure")
    assert rgw.send(sender.make_event(id="evt_after_bad_reload_2")).status == 200
    assert upstream.count() == 2

    # then a valid one is applied and counted
    good = copy.deepcopy(short)
    good["routes"][0]["verify"]["secrets"] = [{"env": "VECU_WEBHOOK_SECRET"}]
    good["routes"][0]["upstream"]["url"] = second.url(UPSTREAM_PATH)
    m = reload_and_wait(rgw, good)
    assert m.get("hookgate_config_reloads_total", result="failure") == 3, m.text
    assert m.get("hookgate_config_reloads_total", result="success") == 1, m.text
    assert rgw.send(sender.make_event(id="evt_after_good_reload")).status == 200
    assert second.count() == 1


def test_in_flight_request_finishes_under_the_old_config(rgw, upstream, start_upstream):
    second = start_upstream()
    upstream.mode(delay=1.0, body='{"from":"old"}')
    second.mode(body='{"from":"new"}')
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", rgw.send(sender.make_event(id="evt_inflight_reload"))))
    t.start()
    try:
        assert poll_until(lambda: upstream.stats()["in_flight"] == 1, timeout=3), "the forward never started"
        cfg = copy.deepcopy(rgw.config)
        cfg["routes"][0]["upstream"]["url"] = second.url(UPSTREAM_PATH)
        reload_and_wait(rgw, cfg)
        # new requests already go to the new upstream while the old one is still answering
        r2 = rgw.send(sender.make_event(id="evt_after_switch"))
        assert r2.status == 200 and r2.body == b'{"from":"new"}', r2
        assert upstream.stats()["in_flight"] == 1
    finally:
        t.join(timeout=10)
    r = result["r"]
    assert r.status == 200 and r.body == b'{"from":"old"}', r
    assert [json.loads(x["body_bytes"])["id"] for x in upstream.records()] == ["evt_inflight_reload"]
    assert [json.loads(x["body_bytes"])["id"] for x in second.records()] == ["evt_after_switch"]
    # the delivered in-flight event is remembered across the switch
    dup = rgw.send(sender.make_event(id="evt_inflight_reload"), retry_count=1)
    assert dup.status == 200 and dup.json() == {"duplicate": True}, dup
    assert second.count() == 1


def test_reload_changes_limits_for_new_requests(rgw, upstream):
    body = sender.make_event(id="evt_limits_reload", data={"pad": "x" * 2000})
    cfg = copy.deepcopy(rgw.config)
    cfg["limits"]["max_body_bytes"] = 1024
    reload_and_wait(rgw, cfg)
    assert_error(rgw.send(body), 413, "body_too_large")
    assert upstream.count() == 0
    cfg["limits"]["max_body_bytes"] = 1048576
    reload_and_wait(rgw, cfg)
    assert rgw.send(body).status == 200
    assert upstream.count() == 1


def test_repeated_reloads_keep_serving(rgw, upstream):
    for i in range(5):
        reload_and_wait(rgw, None)
        assert rgw.send(sender.make_event(id="evt_rr_%d" % i)).status == 200
    assert upstream.count() == 5
    assert reloads(rgw, "success") == 5


def test_reload_reaches_every_worker(launch_gateway, upstream, start_upstream):
    other = start_upstream()
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, workers=4)
    cfg = copy.deepcopy(g.config)
    cfg["routes"].append(make_route(other.url("/other/in"), name="other", path=OTHER_PATH))
    cfg["routes"][0]["upstream"]["url"] = other.url("/moved/in")
    reload_and_wait(g, cfg)
    rs = [g.send(sender.make_event(id="evt_rw_%d" % i), path=OTHER_PATH if i % 2 else "/webhooks/vecu")
          for i in range(24)]  # 24 new connections: spread over the workers
    assert [r.status for r in rs] == [200] * 24, [(r.status, r.body) for r in rs if r.status != 200]
    assert upstream.count() == 0 and other.count() == 24
    paths = sorted({rec["path"] for rec in other.records()})
    assert paths == ["/moved/in", "/other/in"]
