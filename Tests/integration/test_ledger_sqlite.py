"""ledger.store: sqlite: delivered ids survive a restart (real sqlite files, the real binary).

SIGTERM commits everything; SIGKILL forgets at most the last commit interval (those events are
forwarded once more, never lost); expired rows and rows beyond capacity are not loaded; a file
that is not a hookgate ledger is refused at start and left exactly as it was.
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata

import pytest

import sender
from conftest import (REPO_ROOT, UPSTREAM_PATH, ExtGateway, free_port, make_config, make_gateway_config,
                      make_route, poll_until, to_yaml)

sys.path.insert(0, str(REPO_ROOT / "bench"))
import ledger_fill  # noqa: E402  (bench/ledger_fill.py: the file layout, shared with the benchmark)

DUP_BODY = b'{"duplicate":true}'
SOURCE = sender.DEFAULT_SOURCE


def ledger_config(upstream, path, dedup=None, commit_interval=None, routes=None):
    cfg = make_config(free_port(), routes or [make_route(upstream.url(UPSTREAM_PATH), dedup=dedup)])
    cfg["ledger"] = {"store": "sqlite", "sqlite": {"path": str(path)}}
    if commit_interval is not None:
        cfg["ledger"]["sqlite"]["commit_interval"] = commit_interval
    return cfg


def serve_once(hookgate_bin, tmp_path, config, timeout=30):
    """`hookgate serve` that is expected to refuse to start: (exit code, stdout + stderr)."""
    path = tmp_path / ("refused-%d.yaml" % free_port())
    path.write_text(to_yaml(config) + "\n")
    env = dict(os.environ, VECU_WEBHOOK_SECRET="hookgate-test-secret-6f1d0c3e9a8b7c6d5e4f3a2b1c0d")
    p = subprocess.run([str(hookgate_bin), "serve", "--config", str(path)], capture_output=True, text=True,
                       env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def deliver(g, ids, retry_count=0, ts=None):
    """Sends one event per id; returns the answers in order."""
    return [g.send(sender.make_event(id=i), retry_count=retry_count, ts=ts) for i in ids]


def send_id(g, event_id, retry_count=0):
    """One event whose id may be non-ASCII: the X-VECU-Event-ID header carries its UTF-8 bytes."""
    return g.send(sender.make_event(id=event_id), retry_count=retry_count,
                  extra_headers={"X-VECU-Event-ID": event_id.encode("utf-8")})


def upstream_ids(upstream):
    return [json.loads(r["body_bytes"])["id"] for r in upstream.records()]


def kill(g):
    g.expect_exit = True
    g.proc.send_signal(signal.SIGKILL)
    g.proc.wait(timeout=10)


def rows(path):
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return conn.execute("SELECT route, source, id, expires_ms FROM delivered ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_sigterm_restart_remembers_every_delivered_event(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    ids = ["evt_term_%03d" % n for n in range(200)]
    g = run_gateway(ledger_config(upstream, path))
    assert all(r.status == 200 and r.body == b'{"ok":true}' for r in deliver(g, ids))
    assert g.terminate() == 0
    assert upstream.count() == len(ids)

    # What is on disk: the exact bytes, and wall-clock expiries about one ttl (72h) from now.
    on_disk = rows(path)
    assert sorted(r[2] for r in on_disk) == sorted(i.encode() for i in ids)
    assert {(r[0], r[1]) for r in on_disk} == {(b"vecu", SOURCE.encode())}
    ttl = 72 * 3_600_000
    assert all(abs(r[3] - (ledger_fill.now_ms() + ttl)) < 600_000 for r in on_disk)

    g2 = run_gateway(ledger_config(upstream, path))
    later = int(time.time()) + 1  # new timestamps, so new signatures
    answers = deliver(g2, ids, retry_count=1, ts=later)
    assert [r.status for r in answers] == [200] * len(ids)
    assert [r.body for r in answers] == [DUP_BODY] * len(ids)
    assert upstream.count() == len(ids), "no event reached the upstream twice"


def test_sigkill_forgets_at_most_the_last_commit_interval(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    ids = ["evt_kill_%03d" % n for n in range(200)]
    g = run_gateway(ledger_config(upstream, path, commit_interval="5ms"))
    assert all(r.status == 200 and r.body == b'{"ok":true}' for r in deliver(g, ids))
    kill(g)

    g2 = run_gateway(ledger_config(upstream, path, commit_interval="5ms"))
    answers = deliver(g2, ids, retry_count=1, ts=int(time.time()) + 1)
    assert all(r.status == 200 for r in answers), "every retry is acknowledged"
    duplicates = sum(r.body == DUP_BODY for r in answers)
    forwarded_again = len(ids) - duplicates
    seen = upstream_ids(upstream)
    assert set(seen) == set(ids), "nothing lost: every event is in the upstream's record"
    assert len(seen) == len(ids) + forwarded_again
    # Only the tail of the run can be missing from the file (the last commit interval, plus
    # however long this loaded machine kept the writer from running).
    assert forwarded_again <= 40, "%d of %d events forwarded again after SIGKILL" % (forwarded_again, len(ids))
    again = {i for i, r in zip(ids, answers) if r.body != DUP_BODY}
    assert again <= set(ids[-40:]), "only the last events can be forgotten: %r" % sorted(again)


def test_expired_rows_are_not_loaded(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    conn = ledger_fill.create(str(path))
    now = ledger_fill.now_ms()
    ledger_fill.add(conn, [("vecu", SOURCE, "evt_expired_1", now - 1000),
                           ("vecu", SOURCE, "evt_live_1", now + 3_600_000),
                           ("vecu", SOURCE, "evt_expired_2", now - 1),
                           ("vecu", SOURCE, "evt_live_2", now + 3_600_000)])
    conn.close()
    g = run_gateway(ledger_config(upstream, path))
    answers = dict(zip(["evt_expired_1", "evt_live_1", "evt_expired_2", "evt_live_2"],
                       deliver(g, ["evt_expired_1", "evt_live_1", "evt_expired_2", "evt_live_2"])))
    assert answers["evt_live_1"].body == DUP_BODY and answers["evt_live_2"].body == DUP_BODY
    assert answers["evt_expired_1"].body == b'{"ok":true}' and answers["evt_expired_2"].body == b'{"ok":true}'
    assert sorted(upstream_ids(upstream)) == ["evt_expired_1", "evt_expired_2"]


def test_a_ttl_shorter_than_the_file_says_wins(run_gateway, upstream, tmp_path):
    """An expiry written under a longer ttl is cut to the route's ttl now (here: 1s from start)."""
    path = tmp_path / "ledger.sqlite"
    conn = ledger_fill.create(str(path))
    ledger_fill.add(conn, [("vecu", SOURCE, "evt_long", ledger_fill.now_ms() + 3_600_000)])
    conn.close()
    g = run_gateway(ledger_config(upstream, path, dedup={"capacity": 100, "ttl": "1s"}))
    assert g.send(sender.make_event(id="evt_long")).body == DUP_BODY
    # A duplicate renews the id for one ttl (1s), not for the hour the file said.
    time.sleep(1.5)
    assert g.send(sender.make_event(id="evt_long")).body == b'{"ok":true}', "forgotten one route ttl after its last use"


def test_capacity_is_respected_on_load_and_unconfigured_routes_are_skipped(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    conn = ledger_fill.create(str(path))
    expires = ledger_fill.now_ms() + 3_600_000
    ids = ["evt_cap_%02d" % n for n in range(10)]
    ledger_fill.add(conn, [("vecu", SOURCE, i, expires) for i in ids])
    ledger_fill.add(conn, [("gone", SOURCE, "evt_other_route", expires)])
    ledger_fill.add(conn, [("vecu", SOURCE, ids[0], expires)])  # seen again last: the most recent
    conn.close()
    g = run_gateway(ledger_config(upstream, path, dedup={"capacity": 4, "ttl": "1h"}))
    # The remembered ones first: a forward would evict one of them (capacity 4).
    kept = [ids[0], ids[7], ids[8], ids[9]]
    assert [r.body for r in deliver(g, kept)] == [DUP_BODY] * 4
    forgotten = ids[1:7] + ["evt_other_route"]
    assert [r.body for r in deliver(g, forgotten)] == [b'{"ok":true}'] * len(forgotten)
    assert sorted(upstream_ids(upstream)) == sorted(forgotten)
    logs = [e for e in g.logs() if e.get("msg") == "ledger loaded"]
    assert logs and str(logs[0].get("ledger.ids")) == "4", logs


def test_odd_rows_in_a_ledger_file_do_not_stop_the_start(run_gateway, upstream, tmp_path):
    """Hand-edited or damaged rows: nonsense expiries, bytes that are not UTF-8, an empty id."""
    path = tmp_path / "ledger.sqlite"
    conn = ledger_fill.create(str(path))
    live = ledger_fill.now_ms() + 3_600_000
    conn.execute("BEGIN")
    for route, source, eid, expires in [(b"vecu", SOURCE.encode(), b"evt_huge_expiry", 1e300),
                                        (b"vecu", SOURCE.encode(), b"evt_max_expiry", 2**63 - 1),
                                        (b"vecu", SOURCE.encode(), b"evt_text_expiry", "soon"),
                                        (b"vecu", SOURCE.encode(), b"evt_\xff\xfe", live),
                                        (b"vecu", b"", b"", live),
                                        (b"\xff", SOURCE.encode(), b"evt_bad_route", live),
                                        (b"vecu", SOURCE.encode(), b"evt_fine", live)]:
        conn.execute("INSERT INTO delivered (route, source, id, expires_ms) VALUES (?, ?, ?, ?)",
                     (route, source, eid, expires))
    conn.execute("COMMIT")
    conn.close()
    g = run_gateway(ledger_config(upstream, path, dedup={"capacity": 100, "ttl": "1h"}))
    assert g.send(sender.make_event(id="evt_fine")).body == DUP_BODY
    # A huge expiry is one ttl; text is no expiry at all (forwarded).
    assert g.send(sender.make_event(id="evt_huge_expiry")).body == DUP_BODY
    assert g.send(sender.make_event(id="evt_max_expiry")).body == DUP_BODY
    assert g.send(sender.make_event(id="evt_text_expiry")).body == b'{"ok":true}'
    assert g.send(sender.make_event(id="evt_bad_route")).body == b'{"ok":true}'
    assert upstream_ids(upstream) == ["evt_text_expiry", "evt_bad_route"]


def test_file_stays_bounded_by_capacity(run_gateway, upstream, tmp_path):
    """The file keeps the newest 2 x capacity rows of a route (a renewal is a row of its own)."""
    path = tmp_path / "ledger.sqlite"
    ids = ["evt_bound_%02d" % n for n in range(30)]
    config = ledger_config(upstream, path, dedup={"capacity": 10, "ttl": "1h"})
    g = run_gateway(config)
    deliver(g, ids)
    assert [r.body for r in deliver(g, ids[-5:], retry_count=1)] == [DUP_BODY] * 5  # renewed: 5 rows more
    assert g.terminate() == 0
    kept = [r[2].decode() for r in rows(path)]
    assert kept == ids[15:] + ids[-5:], kept

    # Loaded, the newest row of each id counts: the 10 most recently used ids.
    g2 = run_gateway(config)
    remembered = ids[20:]
    assert [r.body for r in deliver(g2, remembered, retry_count=2)] == [DUP_BODY] * 10
    assert upstream.count() == len(ids)


@pytest.mark.parametrize("kind", ["random_bytes", "foreign_sqlite", "other_format", "truncated_ledger"])
def test_a_file_that_is_not_a_hookgate_ledger_is_refused_and_left_untouched(hookgate_bin, upstream, tmp_path,
                                                                             run_cli, kind):
    path = tmp_path / "ledger.sqlite"
    if kind == "random_bytes":
        path.write_bytes(os.urandom(8192))
        reason = "is not a hookgate ledger"
    elif kind == "foreign_sqlite":
        conn = sqlite3.connect(str(path))
        conn.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');")
        conn.close()
        reason = "another application"
    elif kind == "other_format":
        conn = ledger_fill.create(str(path))
        conn.execute("PRAGMA user_version = 7")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
        reason = "format 7"
    else:
        conn = ledger_fill.create(str(path))
        ledger_fill.add(conn, [("vecu", SOURCE, "evt_%05d" % n, ledger_fill.now_ms() + 3_600_000) for n in range(3000)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.close()
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2])  # pages cut off: the header promises more
        reason = "ledger.sqlite.path"
    before = path.read_bytes()
    config = ledger_config(upstream, path)
    rc, output = serve_once(hookgate_bin, tmp_path, config)
    assert rc != 0, output
    assert str(path) in output and reason in output, output
    assert "cannot start" in output
    assert path.read_bytes() == before, "a refused file is never changed"

    config_path = tmp_path / "check.yaml"
    config_path.write_text(to_yaml(config) + "\n")
    check = run_cli(["check", "--config", config_path])
    assert check.returncode == 1, check.stdout + check.stderr
    assert str(path) in check.stderr and reason in check.stderr, check.stderr
    assert path.read_bytes() == before
    assert upstream.count() == 0


def test_check_rejects_a_folder_that_is_missing_or_read_only(upstream, tmp_path, run_cli, hookgate_bin):
    missing = tmp_path / "no-such-folder" / "ledger.sqlite"
    config_path = tmp_path / "missing.yaml"
    config_path.write_text(to_yaml(ledger_config(upstream, missing)) + "\n")
    r = run_cli(["check", "--config", config_path])
    assert r.returncode == 1 and "ledger.sqlite.path" in r.stderr and "not writable" in r.stderr, r.stderr

    # A read-only folder: root may write anywhere, so as root the check runs as nobody.
    base = tempfile.mkdtemp(prefix="hookgate-ro-")
    try:
        os.chmod(base, 0o755)
        folder = os.path.join(base, "ro")
        os.mkdir(folder, 0o555)
        os.chmod(folder, 0o555)
        config_path = os.path.join(base, "ro.yaml")
        with open(config_path, "w") as f:
            f.write(to_yaml(ledger_config(upstream, os.path.join(folder, "ledger.sqlite"))) + "\n")
        os.chmod(config_path, 0o644)
        args = [str(hookgate_bin), "check", "--config", config_path]
        if os.getuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot make a folder read-only")
            args = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + args
        p = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, VECU_WEBHOOK_SECRET="hookgate-test-secret-6f1d0c3e9a8b7c6d5e4f3a2b1c0d"))
        assert p.returncode == 1, p.stdout + p.stderr
        assert "ledger.sqlite.path" in p.stderr and "not writable" in p.stderr, p.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_ids_that_differ_only_in_normalization_stay_distinct_across_restarts(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    nfc = unicodedata.normalize("NFC", "evt_caf\u00e9")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd and nfc.encode() != nfd.encode()
    g = run_gateway(ledger_config(upstream, path))
    assert send_id(g, nfc).body == b'{"ok":true}'
    assert g.terminate() == 0
    assert [r[2] for r in rows(path)] == [nfc.encode("utf-8")], "stored as its exact bytes"

    g2 = run_gateway(ledger_config(upstream, path))
    assert send_id(g2, nfd, 1).body == b'{"ok":true}', "NFD is another event"
    assert send_id(g2, nfc, 1).body == DUP_BODY
    assert g2.terminate() == 0

    g3 = run_gateway(ledger_config(upstream, path))
    assert send_id(g3, nfc, 2).body == DUP_BODY
    assert send_id(g3, nfd, 2).body == DUP_BODY
    assert upstream_ids(upstream) == [nfc, nfd]


def test_reload_keeps_the_store_and_warns_about_ledger_changes(run_gateway, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    config = ledger_config(upstream, path)
    g = run_gateway(config)
    assert g.send(sender.make_event(id="evt_reload_1")).body == b'{"ok":true}'
    g.wait_logs(lambda es: any(e.get("msg") == "listening" for e in es))
    time.sleep(0.1)  # the SIGHUP handler is installed just after the "listening" line
    moved = dict(config, ledger={"store": "sqlite", "sqlite": {"path": str(tmp_path / "other.sqlite")}})
    g.config_path.write_text(to_yaml(moved) + "\n")
    g.proc.send_signal(signal.SIGHUP)
    logs = g.wait_logs(lambda es: any(e.get("msg") == "configuration reloaded" for e in es))
    assert any("ledger" in str(e.get("msg")) and "restart" in str(e.get("msg")) for e in logs), logs
    assert g.send(sender.make_event(id="evt_reload_2")).body == b'{"ok":true}'
    assert g.terminate() == 0
    assert not (tmp_path / "other.sqlite").exists()
    assert sorted(r[2] for r in rows(path)) == [b"evt_reload_1", b"evt_reload_2"]


def test_a_second_process_on_the_same_file_is_refused(run_gateway, hookgate_bin, upstream, tmp_path, run_cli):
    path = tmp_path / "ledger.sqlite"
    g = run_gateway(ledger_config(upstream, path))
    assert g.send(sender.make_event(id="evt_locked")).body == b'{"ok":true}'
    rc, output = serve_once(hookgate_bin, tmp_path, ledger_config(upstream, path))
    assert rc != 0 and str(path) in output and "in use by another process" in output, output
    # `check` beside the running gateway: the file it holds is fine.
    config_path = tmp_path / "live.yaml"
    config_path.write_text(to_yaml(ledger_config(upstream, path)) + "\n")
    r = run_cli(["check", "--config", config_path])
    assert r.returncode == 0 and "configuration is valid" in r.stdout, r.stdout + r.stderr
    assert g.send(sender.make_event(id="evt_locked"), retry_count=1).body == DUP_BODY
    assert g.terminate() == 0
    g2 = run_gateway(ledger_config(upstream, path))  # the lock went with the first process
    assert g2.send(sender.make_event(id="evt_locked"), retry_count=2).body == DUP_BODY
    assert upstream.count() == 1


def test_store_metrics_count_the_writes(hookgate_bin, upstream, tmp_path):
    path = tmp_path / "ledger.sqlite"
    cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))], admin_port=free_port())
    cfg["ledger"] = {"store": "sqlite", "sqlite": {"path": str(path)}}
    g = ExtGateway(hookgate_bin, tmp_path, cfg).start()
    try:
        deliver(g, ["evt_metric_%d" % n for n in range(5)])
        assert g.send(sender.make_event(id="evt_metric_0"), retry_count=1).body == DUP_BODY  # a renewal: a write
        written = poll_until(lambda: g.metrics().get("hookgate_ledger_store_writes_total", store="sqlite") == 6)
        m = g.metrics()
        assert written, m.text
        assert m.get("hookgate_ledger_store_errors_total", store="sqlite") == 0
        assert m.get("hookgate_ledger_store_pending", store="sqlite") is not None
        assert m.types.get("hookgate_ledger_store_writes_total") == "counter"
    finally:
        g.stop()


def test_fan_out_destinations_have_their_own_rows_and_survive_a_restart(run_gateway, start_upstream, tmp_path):
    a, b = start_upstream(), start_upstream()
    route = make_route("http://unused.invalid/")
    del route["upstream"]
    route["destinations"] = [{"name": "a", "upstream": {"url": a.url(UPSTREAM_PATH)}},
                             {"name": "b", "upstream": {"url": b.url(UPSTREAM_PATH)}}]
    path = tmp_path / "ledger.sqlite"
    b.mode(status=500)
    g = run_gateway(ledger_config(None, path, routes=[route]))
    r = g.send(sender.make_event(id="fan-1"))
    assert r.status == 503, r.body
    assert json.loads(r.body)["destinations"] == {"a": "delivered", "b": "failed"}
    assert g.terminate() == 0
    # Only the destination that has the event is on disk, under its own ledger name.
    assert [(row[0], row[2]) for row in rows(path)] == [(b"vecu/a", b"fan-1")]

    b.mode(status=200)
    g2 = run_gateway(ledger_config(None, path, routes=[route]))
    r = g2.send(sender.make_event(id="fan-1"), retry_count=1, ts=int(time.time()) + 1)
    assert r.status == 200, r.body
    assert json.loads(r.body) == {"destinations": {"a": "duplicate", "b": "delivered"}}
    assert a.count() == 1 and b.count() == 2
