"""ledger.store: redis — two hookgate processes sharing one real redis-server (started here on a
free loopback port, no persistence, killed at teardown): delivered at one is a duplicate at the
other, a copy at one waits while the other forwards, a failed forward is released, Redis down
under `local` and `reject`, an ACL user with the README's least-privilege list, and TLS."""
import hashlib
import os
import shutil
import struct
import subprocess
import threading
import time

import pytest

import sender
from conftest import (SECRET, UPSTREAM_PATH, ExtGateway, _openssl, _teardown_gateways, assert_error,
                      free_port, log_get, make_gateway_config, make_route, poll_until, wait_port)
from test_dedup import assert_duplicate

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")

# The README's ACL for hookgate (commands inside the release script count: GET and DEL).
ACL = ["on", ">hookgate-pw", "~hookgate:*", "resetchannels", "-@all",
       "+set", "+get", "+del", "+eval", "+evalsha", "+info", "+select"]


class RedisServer:
    """A redis-server on 127.0.0.1 with no persistence; `tls` = (cert, key, ca) serves TLS only."""

    def __init__(self, workdir, port=None, args=(), tls=None, admin_password=None):
        self.workdir = workdir
        self.port = port or free_port()
        self.args = list(args)
        self.tls = tls
        self.admin_password = admin_password
        self.proc = None

    def start(self):
        cmd = [REDIS, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
               "--logfile", str(self.workdir / ("redis-%d.log" % self.port))]
        if self.tls:
            cert, key, ca = self.tls
            cmd += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key,
                    "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]
        else:
            cmd += ["--port", str(self.port)]
        self.proc = subprocess.Popen(cmd + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, what="redis-server")
        poll_until(lambda: self.cli("PING") == "PONG", timeout=10)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def cli(self, *args):
        cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning"]
        if self.tls:
            cmd += ["--tls", "--cacert", self.tls[2]]
        if self.admin_password:
            cmd += ["--user", "admin", "--pass", self.admin_password]
        out = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=10)
        return out.stdout.strip()


def event_key(route, source, id, prefix="hookgate"):
    material = b"".join(struct.pack(">Q", len(p.encode())) + p.encode() for p in (route, source, id))
    return "%s:%s" % (prefix, hashlib.sha256(material).hexdigest())


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def start(**kw):
        server = RedisServer(tmp_path, **kw)
        servers.append(server)
        return server.start()

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def replicas(hookgate_bin, tmp_path):
    """replicas(n, upstream, ledger) -> n running hookgate processes with the same routes and ledger."""
    gateways = []

    def launch(n, upstream, ledger, timeout="5s", env_extra=None):
        out = []
        for _ in range(n):
            port, admin = free_port(), free_port()
            while admin == port:
                admin = free_port()
            cfg = make_gateway_config(port, [make_route(upstream.url(UPSTREAM_PATH), timeout=timeout)], admin_port=admin)
            cfg["ledger"] = {"store": "redis", "redis": dict(ledger)}
            gw = ExtGateway(hookgate_bin, tmp_path, cfg, env_extra=env_extra)
            gateways.append(gw)
            out.append(gw.start())
        return out

    yield launch
    dead = _teardown_gateways(gateways)
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)


def redis_ledger(server, **kw):
    ledger = {"url": "redis://127.0.0.1:%d/0" % server.port, "claim_lifetime": "60s"}
    ledger.update(kw)
    return ledger


def ok(r):
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert r.header("X-Hookgate-Duplicate") is None


def test_delivered_at_one_replica_is_a_duplicate_at_another(redis_server, replicas, upstream):
    server = redis_server()
    a, b = replicas(2, upstream, redis_ledger(server))
    body = sender.make_event(id="evt_shared_1")
    ok(a.send(body))
    assert_duplicate(b.send(body, retry_count=1))
    assert_duplicate(a.send(body, retry_count=2))
    assert upstream.count() == 1
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_shared_1")
    assert server.cli("GET", key) == "delivered"
    ttl = int(server.cli("PTTL", key))
    assert 71 * 3600_000 < ttl <= 72 * 3600_000, "the mark lives for the route's dedup ttl: %d" % ttl
    # another id is another key; nothing else was written
    ok(b.send(sender.make_event(id="evt_shared_2")))
    assert sorted(server.cli("--scan", "--pattern", "hookgate:*").split()) == sorted(
        [key, event_key("vecu", sender.DEFAULT_SOURCE, "evt_shared_2")])
    m = a.metrics()
    assert m.get("hookgate_ledger_redis_commands_total", command="claim", result="ok") == 1
    assert m.get("hookgate_ledger_redis_commands_total", command="delivered", result="ok") == 1
    assert m.get("hookgate_ledger_redis_fallback_active") == 0


def _send_in_thread(gw, body, **kw):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", gw.send(body, **kw)))
    t.start()
    return t, result


def _wait_claimed(server, key):
    assert poll_until(lambda: server.cli("GET", key).startswith("c:"), timeout=10), "no claim in redis"


def test_a_copy_waits_while_another_replica_forwards(redis_server, replicas, upstream):
    server = redis_server()
    a, b = replicas(2, upstream, redis_ledger(server))
    upstream.mode(delay=1.5)
    body = sender.make_event(id="evt_wait_1")
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_wait_1")
    t, first = _send_in_thread(a, body)
    _wait_claimed(server, key)
    second = b.send(body, retry_count=1)
    t.join(30)
    ok(first["r"])
    assert_duplicate(second)
    assert upstream.count() == 1
    assert b.metrics().get("hookgate_ledger_redis_commands_total", command="poll", result="ok") >= 1


def test_a_copy_waiting_on_a_failed_forward_gets_in_flight_then_its_retry_is_forwarded(redis_server, replicas, upstream):
    server = redis_server()
    a, b = replicas(2, upstream, redis_ledger(server))
    upstream.mode(delay=1.5, status=500)
    body = sender.make_event(id="evt_wait_fail")
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_wait_fail")
    t, first = _send_in_thread(a, body)
    _wait_claimed(server, key)
    second = b.send(body, retry_count=1)
    t.join(30)
    assert first["r"].status == 500
    assert_error(second, 503, "in_flight")
    assert second.header("Retry-After") == "1"
    assert server.cli("EXISTS", key) == "0", "the failed forward released its claim"
    upstream.mode(status=200)
    ok(b.send(body, retry_count=2))
    assert_duplicate(a.send(body, retry_count=3))
    assert upstream.count() == 2


def test_the_last_attempt_waiting_on_a_failed_forward_is_forwarded(redis_server, replicas, upstream):
    """X-VECU-Retry-Count: 5 is the sender's last attempt: a 503 would dead-letter the event, so a
    wait that ends without a delivered mark forwards instead (a possible duplicate beats the DLQ)."""
    server = redis_server()
    a, b = replicas(2, upstream, redis_ledger(server))
    upstream.mode(delay=1.5, status=500)
    body = sender.make_event(id="evt_wait_last")
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_wait_last")
    t, first = _send_in_thread(a, body, retry_count=4)
    _wait_claimed(server, key)
    upstream_fixed = threading.Timer(0.5, lambda: upstream.mode(status=200))
    upstream_fixed.start()
    last = b.send(body, retry_count=5)
    t.join(30)
    upstream_fixed.join()
    assert first["r"].status == 500
    ok(last)
    assert upstream.count() == 2
    assert server.cli("GET", key) == "delivered"


def test_a_released_claim_lets_another_replica_forward_the_retry(redis_server, replicas, upstream):
    server = redis_server()
    a, b = replicas(2, upstream, redis_ledger(server))
    upstream.mode(fail_next=1, fail_status=500)
    body = sender.make_event(id="evt_release")
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_release")
    assert a.send(body).status == 500
    # the release is sent before the sender gets its 500, but Redis may run it a moment later than
    # a retry's claim on another replica (which would wait and get 503 in_flight, the test above)
    assert poll_until(lambda: server.cli("EXISTS", key) == "0", timeout=10)
    ok(b.send(body, retry_count=1))
    assert upstream.count() == 2
    assert server.cli("GET", key) == "delivered"


def test_a_late_release_does_not_erase_another_claim(redis_server, replicas, upstream):
    """The release script compares before deleting: a key that holds someone else's token (our
    claim expired and another replica claimed) is left alone."""
    server = redis_server()
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_late")
    (a,) = replicas(1, upstream, redis_ledger(server))
    upstream.mode(delay=1.0, status=500)
    t, first = _send_in_thread(a, sender.make_event(id="evt_late"))
    _wait_claimed(server, key)
    server.cli("SET", key, "c:other-replica:1", "PX", "60000")
    t.join(30)
    assert first["r"].status == 500
    assert server.cli("GET", key) == "c:other-replica:1"


def test_redis_down_with_local_goes_on_and_replays_marks(redis_server, replicas, upstream, tmp_path):
    port = free_port()
    down = RedisServer(tmp_path, port=port)
    a, b = replicas(2, upstream, {"url": "redis://127.0.0.1:%d" % port, "on_unavailable": "local", "timeout": "100ms"})
    bodies = [sender.make_event(id="evt_local_%d" % i) for i in range(5)]
    for body in bodies:
        ok(a.send(body))
        assert_duplicate(a.send(body, retry_count=1))
    assert upstream.count() == 5
    m = a.wait_metric(lambda m: m.get("hookgate_ledger_redis_fallback_active") == 1)
    assert m.get("hookgate_ledger_redis_fallbacks_total", answer="local") == 5
    assert m.get("hookgate_ledger_redis_replay_queue_marks") == 5
    assert any(e.get("msg", "").startswith("redis unavailable") for e in a.logs())
    # Redis comes back: the next request probes it, and the marks recorded meanwhile are replayed.
    redis_server_started = down.start()
    try:
        def replayed():
            ok(a.send(sender.make_event(id="evt_local_probe_%d" % time.monotonic_ns())))
            # the probes delivered while the breaker was still open are queued and replayed too
            return a.metrics().get("hookgate_ledger_redis_replayed_marks_total") >= 5
        assert poll_until(replayed, timeout=15, interval=0.3)
        for i, body in enumerate(bodies):
            assert redis_server_started.cli("GET", event_key("vecu", sender.DEFAULT_SOURCE, "evt_local_%d" % i)) == "delivered"
            assert_duplicate(b.send(body, retry_count=2))
        assert a.metrics().get("hookgate_ledger_redis_fallback_active") == 0
        assert any(e.get("msg") == "redis available again" for e in a.logs())
    finally:
        down.stop()


def test_redis_down_with_reject_answers_503_except_on_the_last_attempt(replicas, upstream):
    port = free_port()
    (a,) = replicas(1, upstream, {"url": "redis://127.0.0.1:%d" % port, "on_unavailable": "reject", "timeout": "100ms"})
    body = sender.make_event(id="evt_reject")
    for n in range(5):
        r = a.send(body, retry_count=n)
        assert_error(r, 503, "ledger_unavailable")
        assert r.header("Retry-After") == "1"
    assert upstream.count() == 0
    ok(a.send(body, retry_count=5))
    assert upstream.count() == 1
    m = a.metrics()
    assert m.get("hookgate_ledger_redis_fallbacks_total", answer="rejected") == 5
    assert m.get("hookgate_ledger_redis_fallbacks_total", answer="last_attempt") == 1
    assert a.admin("/readyz").status == 200, "readiness does not depend on Redis"


def test_acl_user_with_the_least_privilege_list(redis_server, replicas, upstream):
    server = redis_server(args=["--user", "default", "off", "--user", "admin", "on", ">admin-pw", "~*", "&*", "+@all",
                                "--user", "hookgate", *ACL], admin_password="admin-pw")
    ledger = redis_ledger(server, url="redis://127.0.0.1:%d/2" % server.port, username={"env": "REDIS_USERNAME"},
                          password={"env": "REDIS_PASSWORD"}, on_unavailable="reject")
    env = {"REDIS_USERNAME": "hookgate", "REDIS_PASSWORD": "hookgate-pw"}
    a, b = replicas(2, upstream, ledger, env_extra=env)
    body = sender.make_event(id="evt_acl")
    upstream.mode(fail_next=1, fail_status=500)
    assert a.send(body).status == 500            # claim, then release (EVALSHA -> NOSCRIPT -> EVAL: GET, DEL)
    # The release takes two round trips on the script's first use (NOSCRIPT, then EVAL): wait for
    # it, or B could find A's claim still there and answer 503 in_flight, as it should.
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_acl")
    assert poll_until(lambda: server.cli("-n", "2", "EXISTS", key) == "0", timeout=10)
    ok(b.send(body, retry_count=1))              # claim, delivered
    assert_duplicate(b.send(body, retry_count=2))  # local hit: renew (SET XX)
    assert_duplicate(a.send(body, retry_count=3))  # claim answers delivered
    upstream.mode(fail_next=1, fail_status=500)
    assert a.send(sender.make_event(id="evt_acl_2")).status == 500  # release by EVALSHA, cached now
    assert upstream.count() == 3
    assert server.cli("ACL", "LOG") == "", "a command was denied: %s" % server.cli("ACL", "LOG")
    assert server.cli("-n", "2", "GET", key) == "delivered"
    for gw in (a, b):
        m = gw.metrics()
        assert m.get("hookgate_ledger_redis_commands_total", result="error_reply") == 0
        assert m.get("hookgate_ledger_redis_fallbacks_total") == 0


def test_wrong_password_is_unavailable(redis_server, replicas, upstream):
    server = redis_server(args=["--requirepass", "right-password"])
    (a,) = replicas(1, upstream, redis_ledger(server, password={"env": "REDIS_PASSWORD"}, on_unavailable="reject"),
                    env_extra={"REDIS_PASSWORD": "wrong-password"})
    assert_error(a.send(sender.make_event(id="evt_wrong_pw")), 503, "ledger_unavailable")
    assert upstream.count() == 0
    assert a.wait_logs(lambda es: any("authentication failed" in e.get("msg", "") for e in es))


@pytest.fixture
def redis_tls(tls_material):
    return (tls_material.server.cert, tls_material.server.key, tls_material.ca)


def test_redis_over_tls_with_ca_file(redis_server, replicas, upstream, redis_tls, tls_material):
    server = redis_server(tls=redis_tls)
    ledger = {"url": "rediss://localhost:%d" % server.port, "ca_file": tls_material.ca}
    a, b = replicas(2, upstream, ledger)
    body = sender.make_event(id="evt_tls")
    ok(a.send(body))
    assert_duplicate(b.send(body, retry_count=1))
    assert upstream.count() == 1
    assert server.cli("GET", event_key("vecu", sender.DEFAULT_SOURCE, "evt_tls")) == "delivered"


def test_redis_over_tls_refuses_an_unknown_ca(redis_server, replicas, upstream, redis_tls, tls_material):
    server = redis_server(tls=redis_tls)
    ledger = {"url": "rediss://localhost:%d" % server.port, "ca_file": tls_material.other_ca, "on_unavailable": "reject"}
    (a,) = replicas(1, upstream, ledger)
    assert_error(a.send(sender.make_event(id="evt_tls_bad")), 503, "ledger_unavailable")
    assert upstream.count() == 0
    assert server.cli("DBSIZE") == "0"


def test_shutdown_writes_the_marks_recorded_while_redis_was_down(redis_server, replicas, upstream, tmp_path):
    port = free_port()
    later = RedisServer(tmp_path, port=port)
    (a,) = replicas(1, upstream, {"url": "redis://127.0.0.1:%d" % port, "timeout": "100ms"})
    for i in range(3):
        ok(a.send(sender.make_event(id="evt_flush_%d" % i)))
    assert a.metrics().get("hookgate_ledger_redis_replay_queue_marks") == 3
    later.start()
    try:
        # no request probes Redis before SIGTERM: the shutdown flush writes the queued marks
        assert a.terminate(timeout=20) == 0
        for i in range(3):
            assert later.cli("GET", event_key("vecu", sender.DEFAULT_SOURCE, "evt_flush_%d" % i)) == "delivered"
    finally:
        later.stop()


def test_a_frozen_redis_is_bypassed_after_the_timeout(redis_server, replicas, upstream):
    server = redis_server()
    (a,) = replicas(1, upstream, redis_ledger(server, timeout="100ms"))
    ok(a.send(sender.make_event(id="evt_before_freeze")))
    assert any(e.get("msg") == "redis connected" and str(log_get(e, "redis.version")).startswith("redis 7.")
               for e in a.logs())
    server.proc.send_signal(subprocess.signal.SIGSTOP)
    try:
        for i in range(4):
            ok(a.send(sender.make_event(id="evt_frozen_%d" % i)))
        m = a.metrics()
        assert m.get("hookgate_ledger_redis_commands_total", command="claim", result="timeout") >= 1
        assert m.get("hookgate_ledger_redis_fallbacks_total", answer="local") == 4
    finally:
        server.proc.send_signal(subprocess.signal.SIGCONT)
    assert upstream.count() == 5


class HostileRedis:
    """A TCP server on loopback that answers every connection with `reply` (then keeps it open)."""

    def __init__(self, reply):
        import socket
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                conn.recv(65536)
                conn.sendall(self.reply)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("reply", [
    b"$99999999999\r\n",
    b"$1048577\r\n" + b"x" * 4096,
    b"*1\r\n" * 50_000,
    b"+OK\n",
    b":12a\r\n",
    b"_\r\n",
    b"$3\r\nabcXY\r\n",
    b"+" + b"a" * 200_000,
], ids=["huge-bulk", "over-limit-bulk", "endless-nesting", "bare-lf", "bad-integer", "resp3", "bulk-no-crlf",
        "endless-line"])
def test_hostile_redis_replies_are_unavailable_not_a_crash(replicas, upstream, reply):
    server = HostileRedis(reply)
    try:
        (a,) = replicas(1, upstream, {"url": "redis://127.0.0.1:%d" % server.port, "on_unavailable": "reject",
                                      "timeout": "3s"})
        for i in range(2):
            assert_error(a.send(sender.make_event(id="evt_hostile_%d" % i)), 503, "ledger_unavailable")
        assert upstream.count() == 0
        m = a.metrics()
        # refused as unreadable (the connection is closed at once), not waited out to the timeout
        assert m.get("hookgate_ledger_redis_commands_total", command="claim", result="connection") == 2
        assert m.get("hookgate_ledger_redis_commands_total", command="claim", result="timeout") == 0
        ok(a.send(sender.make_event(id="evt_hostile_last"), retry_count=5))
        assert a.alive()
    finally:
        server.close()


def test_key_prefix_names_the_keys(redis_server, replicas, upstream):
    server = redis_server()
    (a,) = replicas(1, upstream, redis_ledger(server, key_prefix="team-a.hookgate"))
    ok(a.send(sender.make_event(id="evt_prefix")))
    key = event_key("vecu", sender.DEFAULT_SOURCE, "evt_prefix", prefix="team-a.hookgate")
    assert server.cli("--scan", "--pattern", "*") == key
    assert server.cli("GET", key) == "delivered"
