"""Harness for the multi-replica scenarios (Tests/faults/test_redis_replicas.py): a real
redis-server on a loopback port (plain or TLS, optionally with ACL users and an append-only
file), that can be SIGKILLed and restarted on the same port or frozen (SIGSTOP) and thawed; a
minimal RESP2 client for the test's own look-ups; hookgate replicas (separate processes on fixed
ports, restartable) that share one ledger; and the load runner that drives a platform-like sender
over every replica and reconciles with the recording upstream.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from conftest import SECRET, UPSTREAM_PATH, integration, make_config, make_route
from platform_sender import PlatformSender
from scenario import drive

REDIS_SERVER = shutil.which("redis-server")
ADMIN_USER, ADMIN_PASSWORD = "harness", "harness-pw-0c1d2e3f"
# Least privilege for hookgate (the commands inside the release script, GET and DEL, count too).
HOOKGATE_ACL = "~hookgate:* -@all +set +get +del +pexpire +evalsha +eval +script|load +info +ping +select +auth"


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


class RedisClient:
    """One RESP2 connection (TLS when ca_file is given), for the harness's own commands."""

    def __init__(self, port, ca_file=None, user=None, password=None, timeout=5.0):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ca_file:
            sock = ssl.create_default_context(cafile=ca_file).wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.buf = b""
        if password is not None:
            self.call("AUTH", *([user] if user else []), password)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)


class RedisServer:
    """redis-server on 127.0.0.1:port, started from a config file in workdir. tls: an object with
    ca, server.cert, server.key (the integration suite's tls_material) -> TLS only (`port 0`,
    `tls-port`); acl: True -> `user default off`, a harness user with every right and the
    least-privilege `hookgate` user (password in self.hookgate_password); persist: an append-only
    file (fsync every second, which a SIGKILL of the process does not lose) so a restart keeps
    the ledger, else `--save '' --appendonly no`."""

    def __init__(self, workdir, tls=None, acl=False, persist=False):
        self.workdir = Path(workdir) / ("redis-%d" % id(self))
        self.workdir.mkdir()
        self.port = integration.free_port()
        self.tls, self.acl, self.persist = tls, acl, persist
        self.hookgate_password = "hookgate-redis-pw-7a6b5c4d" if acl else None
        self.log_path = self.workdir / "redis.log"
        self.proc = None
        self.frozen = False
        self.start()

    def _config(self):
        lines = ["bind 127.0.0.1", "protected-mode yes", "daemonize no", "dir %s" % self.workdir,
                 "logfile %s" % self.log_path, 'save ""']
        lines += (["appendonly yes", "appendfsync everysec"] if self.persist else ["appendonly no"])
        if self.tls is not None:
            lines += ["port 0", "tls-port %d" % self.port, "tls-cert-file %s" % self.tls.server.cert,
                      "tls-key-file %s" % self.tls.server.key, "tls-ca-cert-file %s" % self.tls.ca,
                      "tls-auth-clients no"]
        else:
            lines += ["port %d" % self.port]
        if self.acl:
            lines += ["user default off",
                      "user %s on >%s ~* &* +@all" % (ADMIN_USER, ADMIN_PASSWORD),
                      "user hookgate on >%s %s" % (self.hookgate_password, HOOKGATE_ACL)]
        return "\n".join(lines) + "\n"

    def start(self):
        conf = self.workdir / "redis.conf"
        conf.write_text(self._config())
        self.proc = subprocess.Popen([REDIS_SERVER, str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + integration.STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                if self.call("PING") == "PONG":
                    return self
            except (OSError, RedisError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING within %.0f s:\n%s" % (
                        integration.STARTUP_TIMEOUT, self.log()))
                time.sleep(0.05)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def client(self, timeout=5.0):
        return RedisClient(self.port, ca_file=self.tls.ca if self.tls else None,
                           user=ADMIN_USER if self.acl else None,
                           password=ADMIN_PASSWORD if self.acl else None, timeout=timeout)

    def call(self, *args):
        c = self.client()
        try:
            return c.call(*args)
        finally:
            c.close()

    def keys(self, pattern="*"):
        """Every key matching pattern (SCAN, so the server is never blocked)."""
        c = self.client()
        try:
            found, cursor = [], b"0"
            while True:
                cursor, batch = c.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                found.extend(batch)
                if cursor == b"0":
                    return found
        finally:
            c.close()

    def url(self):
        return "%s://127.0.0.1:%d/0" % ("rediss" if self.tls else "redis", self.port)

    def kill(self):
        """SIGKILL (a crash): clients see their connections reset and the port refused."""
        if self.frozen:
            self.thaw()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def freeze(self):
        """SIGSTOP: connections stay open, nothing is answered."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.proc.kill()
        self.proc.wait(timeout=5)


def ledger_config(redis, timeout="1s", on_unavailable="local", claim_lifetime="10s"):
    """The `ledger:` block of a replica on this Redis (credentials from the environment)."""
    block = {"url": redis.url(), "key_prefix": "hookgate", "timeout": timeout,
             "on_unavailable": on_unavailable, "claim_lifetime": claim_lifetime}
    if redis.acl:
        block["username"] = {"env": "REDIS_USERNAME"}
        block["password"] = {"env": "REDIS_PASSWORD"}
    if redis.tls is not None:
        block["ca_file"] = redis.tls.ca
    return {"store": "redis", "redis": block}


def redis_env(redis):
    if not redis.acl:
        return {}
    return {"REDIS_USERNAME": "hookgate", "REDIS_PASSWORD": redis.hookgate_password}


class Replica:
    """One hookgate replica on a fixed port; every incarnation (start) is tagged `<name>.g<n>`
    in an X-Replica header it adds to its forwards, so the upstream's records say which process
    forwarded what."""

    def __init__(self, group, name, workers, upstream_url, ledger, env, upstream_timeout):
        self.group, self.name, self.workers = group, name, workers
        self.upstream_url, self.ledger, self.env = upstream_url, ledger, env
        self.upstream_timeout = upstream_timeout
        self.port = integration.free_port()
        self.generation = -1
        self.gw = None
        self.killed = []      # (tag, time.time(), time.monotonic()) of every SIGKILL

    @property
    def tag(self):
        return "%s.g%d" % (self.name, self.generation)

    def start(self):
        self.generation += 1
        route = make_route(self.upstream_url, timeout=self.upstream_timeout,
                           add_headers={"X-Source": "hookgate", "X-Replica": self.tag})
        cfg = make_config(self.port, [route], workers=self.workers)
        cfg["ledger"] = self.ledger
        gw = integration.ExtGateway(self.group.hookgate_bin, self.group.workdir, cfg, env_extra=self.env)
        # one set of files per incarnation (the default names depend on the port only)
        stem = "hookgate-%s-g%d" % (self.name, self.generation)
        gw.config_path = self.group.workdir / (stem + ".yaml")
        gw.config_path.write_text(integration.to_yaml(cfg) + "\n")
        gw.stdout_path = self.group.workdir / (stem + ".stdout")
        gw.stderr_path = self.group.workdir / (stem + ".stderr")
        self.group.gateways.append(gw)
        self.gw = gw.start()
        return self

    def url(self):
        return self.gw.url()

    def kill(self):
        self.gw.expect_exit = True
        self.killed.append((self.tag, time.time(), time.monotonic()))
        self.gw.proc.send_signal(signal.SIGKILL)
        self.gw.proc.wait(timeout=5)

    def terminate(self, timeout=15.0):
        """SIGTERM (a rolling deploy); returns the exit code."""
        return self.gw.terminate(timeout=timeout)


class ReplicaGroup:
    """The replicas of one scenario, all in front of one upstream and one ledger."""

    def __init__(self, hookgate_bin, workdir):
        self.hookgate_bin, self.workdir = hookgate_bin, Path(workdir)
        self.gateways = []
        self.replicas = []

    def start(self, upstream, ledger, workers=(1, 1, 1), env=None, upstream_timeout="2s"):
        for i, w in enumerate(workers):
            r = Replica(self, "r%d" % i, w, upstream.url(UPSTREAM_PATH), ledger, env or {}, upstream_timeout)
            self.replicas.append(r.start())
        return self.replicas

    def urls(self):
        return [r.url() for r in self.replicas]

    def stop(self):
        return integration._teardown_gateways(self.gateways)


# ------------------------------------------------------------------------------------------------
class Windows:
    """Intervals (time.monotonic) during which the shared ledger was unavailable, and a grace
    after each for the replicas to notice it is back (circuit breaker, replay)."""

    def __init__(self, grace):
        self.grace = grace
        self.spans = []

    def begin(self):
        self.spans.append([time.monotonic(), None])

    def end(self):
        self.spans[-1][1] = time.monotonic()

    def touches(self, attempt):
        a0, a1 = attempt.started, attempt.started + attempt.seconds
        return any(a0 <= (t1 if t1 is not None else float("inf")) + self.grace and a1 >= t0
                   for t0, t1 in self.spans)

    def allow(self, reason):
        """A delivery_check allow(): the event had an attempt while the ledger was unavailable."""
        def check(event_id, records, deliveries):
            if any(self.touches(a) for d in deliveries for a in d.attempts):
                return reason
            return None
        return check

    def allow_lost(self, reason):
        """A delivery_check allow() for a Redis that came back empty: the event had an attempt
        before it was back (its delivered mark may be gone), or during the grace after."""
        def check(event_id, records, deliveries):
            back = max(t1 for _, t1 in self.spans) + self.grace
            if any(a.started <= back for d in deliveries for a in d.attempts):
                return reason
            return None
        return check

    def describe(self):
        return ", ".join("%.2f s" % (t1 - t0) for t0, t1 in self.spans if t1 is not None)


def run_load(name, urls, upstream, events, concurrency=24, backoff=0.05, during=None, dup_share=0.25,
             copies=2, allow=None, timeout=10.0, rate=None, spread="round_robin"):
    """Runs a platform-like sender over every replica URL in a thread (a share `dup_share` of the
    events delivered `copies` times at once, each copy starting on another replica, and once more
    later on the next replica; every retry on the next replica, or with spread="random" on one
    drawn at random); `during(sender)` runs meanwhile on this thread; rate paces the sender
    (deliveries started per second). Reconciles with the upstream's records (allow: see
    delivery_check), prints the figures and asserts every event reached the upstream and nothing
    else went wrong. Returns (report, counts)."""
    s = PlatformSender(urls, SECRET, max_attempts=6, backoff=backoff, timeout=timeout,
                       concurrency=concurrency, spread=spread, concurrent_copies=copies)
    # settle: answers of forwards abandoned by a killed replica are recorded meanwhile
    return drive(name, s, upstream, events, "evt_%s_" % name, during=during, allow=allow, settle=0.3,
                 dup_share=dup_share, rate=rate)


def error_codes(report):
    """{error code: count} over every attempt hookgate answered with a JSON error."""
    out = {}
    for d in report.deliveries:
        for a in d.attempts:
            code = a.error_code if a.status is not None and a.status >= 400 else None
            if code:
                out[code] = out.get(code, 0) + 1
    return out


def replica_tag(record):
    """The X-Replica header of a full upstream record (which hookgate process forwarded it)."""
    for k, v in record.get("headers", []):
        if k.lower() == "x-replica":
            return v
    return None


def is_redis_available():
    return REDIS_SERVER is not None and os.access(REDIS_SERVER, os.X_OK)
