"""Fixtures for hookgate's black-box integration tests.

The gateway and its peers run as real subprocesses on loopback ports:

  * the binary is $HOOKGATE_BIN, else <repo>/.build/debug/hookgate;
  * Tests/peers/upstream.py is the recording upstream (controlled over HTTP);
  * the gateway gets a generated YAML config in a temp dir and
    VECU_WEBHOOK_SECRET in its environment; its stdout is captured to a file
    for the log assertions.

Every process started here is killed at teardown.

Environment:
  * HOOKGATE_WORKERS=N|auto sets `workers:` in every generated config (default: 1, or what the
    test asks for); used by the ThreadSanitizer run (Tests/sanitizers/run).
  * HOOKGATE_SIGNAL_TO_LOOP=1 sends SIGTERM/SIGINT/SIGHUP to a gateway event-loop thread rather
    than the process (needed under ThreadSanitizer; see _LoopSignalledPopen).
  * HOOKGATE_SANITIZER=1: after each test, the stderr of every gateway it started is searched for
    sanitizer reports ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer"); any report fails the test and is printed.
"""
import errno
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS = REPO_ROOT / "Tests" / "peers"
sys.path.insert(0, str(PEERS))

import sender  # noqa: E402  (Tests/peers/sender.py)

SECRET = "hookgate-test-secret-6f1d0c3e9a8b7c6d5e4f3a2b1c0d"  # 48 bytes
SECRET2 = "hookgate-rotated-secret-0a1b2c3d4e5f6a7b8c9d0e1f"  # 47 bytes
ROUTE_PATH = "/webhooks/vecu"
UPSTREAM_PATH = "/hook/in"
STARTUP_TIMEOUT = 10.0


# ---------------------------------------------------------------- helpers
def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc=None, timeout=STARTUP_TIMEOUT, what="process"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %d" % (what, proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on 127.0.0.1:%d within %.0fs" % (what, port, timeout))


def poll_until(pred, timeout=5.0, interval=0.05):
    """Call pred() until it returns a truthy value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    value = pred()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = pred()
    return value


def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./:\-]+", s) and not s.startswith(("-", ":")) \
            and ": " not in s and s.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "~"):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent=0):
    """A small YAML emitter for dicts / lists / scalars (block style)."""
    pad = " " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(v, indent + 2))
            elif isinstance(v, dict):
                lines.append("%s%s: {}" % (pad, k))
            elif isinstance(v, list):
                lines.append("%s%s: []" % (pad, k))
            else:
                lines.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                sub = to_yaml(item, indent + 2).split("\n")
                sub[0] = pad + "- " + sub[0][indent + 2:]
                lines.extend(sub)
            else:
                lines.append("%s- %s" % (pad, _yaml_scalar(item)))
    else:
        lines.append(pad + _yaml_scalar(obj))
    return "\n".join(lines)


def make_route(upstream_url, name="vecu", path=ROUTE_PATH, secrets=None, tolerance="300s",
               timeout="25s", max_connections=64, add_headers=None, dedup=None, scheme="vecu"):
    return {
        "name": name,
        "path": path,
        "verify": {
            "scheme": scheme,
            "secrets": secrets if secrets is not None else [{"env": "VECU_WEBHOOK_SECRET"}],
            "tolerance": tolerance,
        },
        "dedup": dedup if dedup is not None else {"capacity": 100000, "ttl": "72h"},
        "upstream": {
            "url": upstream_url,
            "timeout": timeout,
            "max_connections": max_connections,
            "add_headers": add_headers if add_headers is not None else {"X-Source": "hookgate"},
        },
    }


def configured_workers(default=1):
    """`workers:` for generated configs: $HOOKGATE_WORKERS when set, else `default`."""
    env = os.environ.get("HOOKGATE_WORKERS", "").strip()
    if not env:
        return default
    return env if env == "auto" else int(env)


def workers_resolved(workers):
    """How many event loops a `workers:` value means on this machine."""
    return (os.cpu_count() or 1) if workers == "auto" else int(workers)


def make_config(listen_port, routes, workers=None, max_body_bytes=1048576,
                max_header_bytes=16384, client_timeout="15s", shutdown_delay="0s"):
    """`shutdown_delay` is 0s unless a test asks for one (None leaves the key out): SIGTERM
    drains at once, as the shutdown tests expect."""
    cfg = {
        "listen": "127.0.0.1:%d" % listen_port,
        "workers": configured_workers(1) if workers is None else workers,
        "limits": {
            "max_body_bytes": max_body_bytes,
            "max_header_bytes": max_header_bytes,
            "client_timeout": client_timeout,
        },
        "routes": routes,
    }
    if shutdown_delay is not None:
        cfg["shutdown_delay"] = shutdown_delay
    return cfg


def log_get(entry, dotted):
    """Log keys are specified as `event.id` etc.; accept a flat dotted key or a nested object."""
    if dotted in entry:
        return entry[dotted]
    cur = entry
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def log_has(entry, dotted):
    try:
        log_get(entry, dotted)
        return True
    except KeyError:
        return False


def assert_error(resp, status, code):
    """An answer hookgate makes itself: status, application/json, {"error": code, "message": str}."""
    assert resp.status == status, "expected %d %s, got %d: %r" % (status, code, resp.status, resp.body)
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/json", \
        "Content-Type should be application/json, got %r" % ctype
    try:
        doc = json.loads(resp.body)
    except ValueError:
        raise AssertionError("error body is not JSON: %r" % resp.body)
    assert isinstance(doc, dict), doc
    assert doc.get("error") == code, "expected error %r, got %r" % (code, doc)
    assert isinstance(doc.get("message"), str) and doc["message"], "message missing: %r" % doc
    return doc


# ---------------------------------------------------------------- processes
def _read_ready(proc, timeout, what):
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited early (%s): %r" % (what, proc.returncode, buf))
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
            m = re.search(rb"READY (\d+)\n", buf)
            if m:
                return int(m.group(1))
    raise RuntimeError("%s printed no READY line within %.0fs: %r" % (what, timeout, buf))


class _LoopSignalledPopen(subprocess.Popen):
    """With HOOKGATE_SIGNAL_TO_LOOP=1 (the ThreadSanitizer run), SIGTERM/SIGINT/SIGHUP go to one of
    the gateway's event-loop threads (tgkill) instead of the process. Under TSan a signal is only
    handled once the thread that received it enters an intercepted function; the kernel picks the
    main thread, which waits in DispatchGroup.wait (a futex TSan does not intercept), so a
    process-directed signal would never be handled. The loop threads wait in epoll_wait, which
    TSan intercepts. Other signals (SIGKILL) and the normal build are unaffected."""

    def send_signal(self, sig):
        if (os.environ.get("HOOKGATE_SIGNAL_TO_LOOP") == "1" and self.poll() is None
                and sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):
            tid = self._loop_thread()
            if tid is not None:
                import ctypes
                if ctypes.CDLL(None, use_errno=True).syscall(234, self.pid, tid, int(sig)) == 0:  # SYS_tgkill
                    return
        super().send_signal(sig)

    def _loop_thread(self):
        """A gateway event-loop thread: one seen waiting in epoll_wait (remembered -- a busy loop
        thread still makes intercepted calls all the time, so it handles the signal promptly
        too). Gateway.start() calls this once while the gateway is idle. Under load no thread
        may be in epoll_wait at a given instant: then any running thread other than the main
        one and TSan's background thread (which sleeps in nanosleep) will do."""
        known = getattr(self, "_loop_tid", None)
        if known is not None and os.path.exists("/proc/%d/task/%d" % (self.pid, known)):
            return known
        running = None
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                tasks = sorted(os.listdir("/proc/%d/task" % self.pid), key=int)
            except OSError:
                return None
            for tid in tasks:
                if int(tid) == self.pid:
                    continue
                try:
                    with open("/proc/%d/task/%s/wchan" % (self.pid, tid)) as f:
                        wchan = f.read().strip()
                except OSError:
                    continue
                if wchan == "do_epoll_wait":
                    self._loop_tid = int(tid)
                    return self._loop_tid
                if wchan == "0" and running is None:
                    running = int(tid)
            time.sleep(0.001)
        return running


def _popen_retry_busy(args, **kw):
    """Popen, retrying briefly on ETXTBSY (the binary being relinked by a concurrent `swift build`)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return _LoopSignalledPopen(args, **kw)
        except OSError as e:
            if e.errno != errno.ETXTBSY or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _kill(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=3)


class Peer:
    """A Python peer (upstream.py / flask_receiver.py) in its own process."""

    def __init__(self, script, port=0, env=None, log_dir=None):
        self.script = script
        self.env = env
        self.log_dir = log_dir
        self.proc = None
        self.port = None
        self.start(port)

    def start(self, port=0):
        stderr = subprocess.DEVNULL
        if self.log_dir is not None:
            stderr = open(os.path.join(str(self.log_dir), "%s.stderr" % Path(self.script).stem), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=self.env)
        self.port = _read_ready(self.proc, STARTUP_TIMEOUT, Path(self.script).name)
        return self

    def stop(self):
        _kill(self.proc)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)


class Upstream(Peer):
    def __init__(self, port=0, log_dir=None):
        super().__init__(PEERS / "upstream.py", port=port, log_dir=log_dir)

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def mode(self, **kw):
        return self._call("POST", "/_control/mode", kw)

    def records(self):
        recs = self._call("GET", "/_control/records")
        import base64
        for r in recs:
            r["body_bytes"] = base64.b64decode(r.get("body", ""))
        return recs

    def stats(self):
        return self._call("GET", "/_control/stats")

    def reset(self):
        return self._call("POST", "/_control/reset")

    def count(self):
        return self.stats()["count"]


def record_headers(record, name):
    """All values of header `name` (case-insensitive) in an upstream record."""
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


class Gateway:
    def __init__(self, binary, workdir, config, env_extra=None, env_remove=()):
        self.binary = binary
        self.workdir = Path(workdir)
        self.config = config
        self.port = listen_port_of(config)
        self.config_path = self.workdir / ("hookgate-%d.yaml" % self.port)
        self.config_path.write_text(to_yaml(config) + "\n")
        self.stdout_path = self.workdir / ("hookgate-%d.stdout" % self.port)
        self.stderr_path = self.workdir / ("hookgate-%d.stderr" % self.port)
        env = dict(os.environ)
        env["VECU_WEBHOOK_SECRET"] = SECRET
        env.update(env_extra or {})
        for k in env_remove:
            env.pop(k, None)
        self.env = env
        self.proc = None
        self.crashed = None
        self.expect_exit = False  # a test that stops the gateway itself sets this

    def start(self):
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = _popen_retry_busy(
                [str(self.binary), "serve", "--config", str(self.config_path)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env, cwd=str(self.workdir))
        finally:
            out.close()
            err.close()
        try:
            wait_port(self.port, self.proc, what="hookgate serve")
            if os.environ.get("HOOKGATE_SIGNAL_TO_LOOP") == "1":
                self.proc._loop_thread()  # found now, while the gateway is idle
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s\nconfig:\n%s\nstdout:\n%s\nstderr:\n%s" % (
                e, self.config_path.read_text(), self.stdout(), self.stderr()))
        return self

    def url(self, path=ROUTE_PATH):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def send(self, body, secret=SECRET, path=ROUTE_PATH, **kw):
        return sender.send(self.url(path), body, secret, **kw)

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return [l for l in self.stdout().splitlines() if l.strip()]

    def logs(self):
        """Parsed JSON log lines (lines that are not JSON objects are skipped here)."""
        out = []
        for line in self.log_lines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_logs(self, pred, timeout=5.0):
        """Poll until pred(list_of_entries) is truthy; returns the entries."""
        entries = poll_until(lambda: (lambda e: e if pred(e) else None)(self.logs()), timeout=timeout)
        return entries or self.logs()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def sanitizer_reports(self):
        """Sanitizer reports in the gateway's stderr (ASan, LSan, TSan)."""
        text = self.stderr()
        markers = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer")
        return text if any(m in text for m in markers) else ""

    def terminate(self, timeout=10.0):
        """SIGTERM (graceful shutdown) as part of a test; returns the exit code (None = still
        running after `timeout`). A gateway stopped this way is not reported as having died."""
        self.expect_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is not None and self.crashed is None:
            rc = self.proc.returncode
            # negative = killed by a signal (a crash, as we had not stopped it yet)
            self.crashed = rc
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                # a sanitizer build may take a while to exit (leak check), and its report is
                # only written if it is allowed to finish
                self.proc.wait(timeout=20 if os.environ.get("HOOKGATE_SANITIZER") == "1" else 3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=3)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def hookgate_bin():
    env_bin = os.environ.get("HOOKGATE_BIN")
    path = Path(env_bin) if env_bin else REPO_ROOT / ".build" / "debug" / "hookgate"
    if not path.is_file() or not os.access(str(path), os.X_OK):
        pytest.fail("hookgate binary not found at %s (build it with `swift build`, or set HOOKGATE_BIN)" % path,
                    pytrace=False)
    return path.resolve()


@pytest.fixture
def upstream(tmp_path):
    peer = Upstream(log_dir=tmp_path)
    yield peer
    peer.stop()


@pytest.fixture
def start_upstream(tmp_path):
    """Factory: start another upstream peer (optionally on a given port)."""
    peers = []

    def start(port=0):
        p = Upstream(port=port, log_dir=tmp_path)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.stop()


@pytest.fixture
def start_gateway(hookgate_bin, tmp_path):
    """Factory: start_gateway(routes=[...], **limits) -> running Gateway. Killed at teardown;
    a gateway that died during the test (before teardown) fails the test."""
    gateways = []

    def start(routes, env_extra=None, env_remove=(), **cfg_kw):
        port = free_port()
        gw = Gateway(hookgate_bin, tmp_path, make_config(port, routes, **cfg_kw),
                     env_extra=env_extra, env_remove=env_remove)
        gateways.append(gw)
        return gw.start()

    yield start
    dead = _teardown_gateways(gateways)
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)


@pytest.fixture
def run_gateway(hookgate_bin, tmp_path):
    """run_gateway(config) -> a started Gateway for a whole config (start_gateway builds one from
    routes); a fresh port per run, so that every restart has its own config and log files. Every
    one is stopped at teardown (a restart test stops or kills them itself)."""
    started = []

    def run(config):
        g = Gateway(hookgate_bin, tmp_path, config)
        started.append(g)
        return g.start()

    yield run
    for g in started:
        g.stop()


@pytest.fixture
def gw(start_gateway, upstream):
    """A gateway with the default single `vecu` route in front of the recording upstream."""
    return start_gateway([make_route(upstream.url(UPSTREAM_PATH))])


@pytest.fixture
def run_cli(hookgate_bin, tmp_path):
    """run_cli(args, env_extra=None, env_remove=(), timeout=30, cwd=tmp_path) -> CompletedProcess (text)."""

    def run(args, env_extra=None, env_remove=(), timeout=30, cwd=None):
        env = dict(os.environ)
        env["VECU_WEBHOOK_SECRET"] = SECRET
        env.update(env_extra or {})
        for k in env_remove:
            env.pop(k, None)
        return subprocess.run([str(hookgate_bin)] + [str(a) for a in args], capture_output=True,
                              text=True, env=env, cwd=str(cwd or tmp_path), timeout=timeout,
                              stdin=subprocess.DEVNULL)

    return run


# ================================================================ additions
# TLS material, an HTTPS upstream, gateways with listen.tls / admin.listen / shutdown_grace /
# limits.max_connections, reload and signals, Prometheus text, and a raw-socket HTTP client.
import ssl  # noqa: E402
import types  # noqa: E402

ADMIN_PATHS = ("/healthz", "/readyz", "/metrics")


def make_gateway_config(listen_port, routes, tls=None, admin_port=None, shutdown_grace=None,
                        max_connections=None, **kw):
    """make_config() plus the newer keys: `listen: {address, tls: {cert, key}}` when tls is given
    (a dict with cert/key), `admin.listen`, `shutdown_grace` and `limits.max_connections`."""
    cfg = make_config(listen_port, routes, **kw)
    if tls is not None:
        cfg["listen"] = {"address": cfg["listen"], "tls": dict(tls)}
    if max_connections is not None:
        cfg["limits"]["max_connections"] = max_connections
    if shutdown_grace is not None:
        cfg["shutdown_grace"] = shutdown_grace
    if admin_port is not None:
        cfg["admin"] = {"listen": "127.0.0.1:%d" % admin_port}
    return cfg


def listen_port_of(config):
    listen = config["listen"]
    address = listen["address"] if isinstance(listen, dict) else listen
    return int(str(address).rsplit(":", 1)[1])


def signed_headers(body, secret=SECRET, ts=None, retry_count=0, extra_headers=None):
    """sender.send()'s headers: the platform's delivery headers, then extra_headers (None removes)."""
    headers = sender.delivery_headers(body, secret, ts=ts, retry_count=retry_count)
    for k, v in (extra_headers or {}).items():
        for existing in [h for h in headers if h.lower() == k.lower()]:
            del headers[existing]
        if v is not None:
            headers[k] = v
    return headers


def https_request(url, body=b"", headers=None, method="POST", timeout=30, context=None):
    """sender.request() over HTTPS with the given client SSLContext."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout, context=context)
    try:
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        conn.putrequest(method, path, skip_accept_encoding=True)
        body = sender._to_bytes(body) if body is not None else b""
        hdrs = dict(headers or {})
        if not any(k.lower() == "content-length" for k in hdrs) and (body or method in ("POST", "PUT", "PATCH")):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        return sender.Response(resp.status, resp.reason, resp.getheaders(), resp.read())
    finally:
        conn.close()


class Metrics:
    """Prometheus text exposition, parsed: samples (name, labels, value) and # TYPE lines."""
    LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
    LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

    def __init__(self, text):
        self.text = text
        self.samples = []
        self.types = {}
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = self.LINE.match(line)
            assert m, "not a Prometheus sample line: %r" % line
            labels = dict(self.LABEL.findall(m.group(2) or ""))
            self.samples.append((m.group(1), labels, float(m.group(3))))

    def values(self, name, **labels):
        return [v for n, l, v in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def get(self, name, default=None, **labels):
        """Sum of the samples of `name` whose labels include `labels`; default if there are none."""
        found = self.values(name, **labels)
        return sum(found) if found else default

    def names(self):
        return {n for n, _, _ in self.samples}


class ExtGateway(Gateway):
    """A gateway whose configuration may use the newer keys (listen.tls, admin, shutdown_grace,
    limits.max_connections), with helpers for HTTPS, reload (SIGHUP), signals, admin and metrics."""

    def __init__(self, binary, workdir, config, env_extra=None, env_remove=(), client_tls=None):
        super().__init__(binary, workdir, config, env_extra, env_remove)
        self.tls = isinstance(config["listen"], dict) and "tls" in config["listen"]
        self.client_tls = client_tls
        self.admin_port = int(config["admin"]["listen"].rsplit(":", 1)[1]) if "admin" in config else None

    def start(self):
        super().start()
        if self.admin_port is not None:
            wait_port(self.admin_port, self.proc, what="hookgate admin listener")
        return self

    def url(self, path=ROUTE_PATH):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, path)

    def send(self, body, secret=SECRET, path=ROUTE_PATH, ts=None, retry_count=0, extra_headers=None,
             method="POST", timeout=30):
        if not self.tls:
            return super().send(body, secret=secret, path=path, ts=ts, retry_count=retry_count,
                                extra_headers=extra_headers, method=method, timeout=timeout)
        body = sender._to_bytes(body)
        headers = signed_headers(body, secret, ts=ts, retry_count=retry_count, extra_headers=extra_headers)
        return https_request(self.url(path), body, headers, method=method, timeout=timeout,
                             context=self.client_tls)

    # ---- configuration reload and signals
    def write_config(self, config):
        self.config = config
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(to_yaml(config) + "\n")
        os.replace(str(tmp), str(self.config_path))

    def wait_signal_handlers(self):
        """Signal handlers are installed just after the "listening" log line; a signal sent before
        that would take the default action, so wait for the line and a moment more (once)."""
        if getattr(self, "_signals_ready", False):
            return
        self.wait_logs(lambda es: any(e.get("msg") == "listening" for e in es), timeout=5)
        time.sleep(0.1)
        self._signals_ready = True

    def reload(self, config=None):
        """Optionally rewrite the file, then SIGHUP."""
        if config is not None:
            self.write_config(config)
        self.wait_signal_handlers()
        self.proc.send_signal(signal.SIGHUP)

    def signal(self, sig):
        self.wait_signal_handlers()
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """The exit code, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # ---- admin listener
    def admin(self, path, method="GET", body=None, timeout=5):
        return sender.request("http://127.0.0.1:%d%s" % (self.admin_port, path), body=body,
                              headers={}, method=method, timeout=timeout)

    def metrics(self):
        r = self.admin("/metrics")
        assert r.status == 200, r
        return Metrics(r.text)

    def wait_metric(self, pred, timeout=5.0):
        """Polls /metrics until pred(Metrics) is truthy; returns the last Metrics."""
        last = [None]

        def probe():
            last[0] = self.metrics()
            return pred(last[0])
        poll_until(probe, timeout=timeout)
        return last[0]


def _launch(hookgate_bin, workdir, gateways, routes, tls=None, admin=False, client_tls=None,
            env_extra=None, env_remove=(), **cfg_kw):
    port = free_port()
    admin_port = free_port() if admin else None
    while admin_port == port:
        admin_port = free_port()
    cfg = make_gateway_config(port, routes, tls=tls, admin_port=admin_port, **cfg_kw)
    gw = ExtGateway(hookgate_bin, workdir, cfg, env_extra=env_extra, env_remove=env_remove,
                    client_tls=client_tls)
    gateways.append(gw)
    return gw.start()


def _teardown_gateways(gateways):
    dead = []
    for gw in gateways:
        if gw.proc is None:  # never started
            continue
        was_alive = gw.alive()
        gw.stop()
        if not was_alive and not gw.expect_exit:
            dead.append("hookgate on port %d exited with %s during the test\nstderr tail:\n%s" % (
                gw.port, gw.proc.returncode, gw.stderr()[-2000:]))
        if os.environ.get("HOOKGATE_SANITIZER") == "1":
            report = gw.sanitizer_reports()
            if report:
                dead.append("sanitizer report from hookgate on port %d (%s):\n%s" % (
                    gw.port, gw.stderr_path, report[-12000:]))
    return dead


@pytest.fixture
def launch_gateway(hookgate_bin, tmp_path):
    """Factory: launch_gateway(routes, tls=None, admin=False, client_tls=None, shutdown_grace=None,
    max_connections=None, **make_config kw) -> running ExtGateway (admin=True picks a free admin
    port). Stopped at teardown; one that died during the test fails it unless gw.expect_exit."""
    gateways = []

    def launch(routes, **kw):
        return _launch(hookgate_bin, tmp_path, gateways, routes, **kw)

    yield launch
    dead = _teardown_gateways(gateways)
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)


@pytest.fixture(scope="module")
def module_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("module")


@pytest.fixture(scope="module")
def module_launch_gateway(hookgate_bin, module_workdir):
    """launch_gateway for gateways shared by a whole test module (stopped after the module)."""
    gateways = []

    def launch(routes, **kw):
        return _launch(hookgate_bin, module_workdir, gateways, routes, **kw)

    launch.gateways = gateways
    yield launch
    reports = [d for d in _teardown_gateways(gateways) if d.startswith("sanitizer report")]
    if reports:
        pytest.fail("\n".join(reports), pytrace=False)


@pytest.fixture(scope="module")
def module_upstream(module_workdir):
    """A recording upstream shared by a test module (tests reset it themselves)."""
    peer = Upstream(log_dir=module_workdir)
    yield peer
    peer.stop()


# ---------------------------------------------------------------- TLS
def _openssl(workdir, *args):
    res = subprocess.run(["openssl"] + [str(a) for a in args], cwd=str(workdir), capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s%s" % (" ".join(map(str, args)), res.stdout, res.stderr))


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    """A throwaway PKI made with the openssl CLI (EC P-256):
      ca / other_ca            two unrelated CAs (.pem, .key)
      server                   signed by ca, SAN DNS:localhost, IP:127.0.0.1
      other_server             signed by other_ca, same names
      wrong_host               signed by ca, SAN DNS:wrong-host.invalid only
      stray_key                a key that matches none of the certificates
    and client contexts: client (trusts ca), other_client (trusts other_ca)."""
    d = tmp_path_factory.mktemp("tls")
    curve = ["-pkeyopt", "ec_paramgen_curve:prime256v1"]

    def make_ca(name):
        _openssl(d, "req", "-x509", "-newkey", "ec", *curve, "-nodes", "-keyout", name + ".key",
                 "-out", name + ".pem", "-days", "3", "-subj", "/CN=hookgate test " + name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def make_leaf(name, ca, san):
        _openssl(d, "req", "-new", "-newkey", "ec", *curve, "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", "/CN=" + name)
        (d / (name + ".ext")).write_text(
            "subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % san)
        _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")

    make_ca("ca")
    make_ca("other-ca")
    make_leaf("server", "ca", "DNS:localhost,IP:127.0.0.1")
    make_leaf("other-server", "other-ca", "DNS:localhost,IP:127.0.0.1")
    make_leaf("wrong-host", "ca", "DNS:wrong-host.invalid")
    _openssl(d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "stray.key")

    def pair(name):
        return types.SimpleNamespace(cert=str(d / (name + ".pem")), key=str(d / (name + ".key")))

    def client(ca):
        ctx = ssl.create_default_context(cafile=str(d / ca))
        return ctx

    return types.SimpleNamespace(
        dir=d,
        ca=str(d / "ca.pem"),
        other_ca=str(d / "other-ca.pem"),
        server=pair("server"),
        other_server=pair("other-server"),
        wrong_host=pair("wrong-host"),
        stray_key=str(d / "stray.key"),
        client=client("ca.pem"),
        other_client=client("other-ca.pem"),
    )


class TLSUpstream(Upstream):
    """The recording upstream over HTTPS (Tests/peers/tls_upstream.py) with a given cert/key."""

    def __init__(self, cert, key, port=0, log_dir=None):
        self.cert = cert
        self.key = key
        self._control_tls = ssl.create_default_context()
        self._control_tls.check_hostname = False
        self._control_tls.verify_mode = ssl.CERT_NONE
        Peer.__init__(self, PEERS / "tls_upstream.py", port=port, log_dir=log_dir)

    def start(self, port=0):
        stderr = subprocess.DEVNULL
        if self.log_dir is not None:
            stderr = open(os.path.join(str(self.log_dir), "tls_upstream.stderr"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "--port", str(port), "--tls-cert", self.cert, "--tls-key", self.key],
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=self.env)
        self.port = _read_ready(self.proc, STARTUP_TIMEOUT, "tls_upstream.py")
        return self

    def url(self, path="", host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.port, path)

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self._control_tls) as r:
            return json.loads(r.read())


@pytest.fixture
def start_tls_upstream(tmp_path):
    """Factory: start_tls_upstream(pair) -> TLSUpstream serving pair.cert / pair.key."""
    peers = []

    def start(pair, port=0):
        p = TLSUpstream(pair.cert, pair.key, port=port, log_dir=tmp_path)
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.stop()


# ---------------------------------------------------------------- raw HTTP
def request_bytes(method="POST", path=ROUTE_PATH, headers=(), body=b"", version="HTTP/1.1",
                  host="127.0.0.1", content_length=True):
    """An HTTP/1.x request as exact bytes. headers: (name, value) pairs (str or bytes), sent in
    order after Host (host=None: no Host); Content-Length is added for a body / POST unless
    content_length is False or a Content-Length / Transfer-Encoding header is given."""
    def b(x):
        return x if isinstance(x, bytes) else str(x).encode("utf-8")
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers)
    names = {b(k).lower() for k, _ in headers}
    lines = [b(method) + b" " + b(path) + b" " + b(version)]
    if host is not None and b"host" not in names:
        lines.append(b"Host: " + b(host))
    for k, v in headers:
        lines.append(b(k) + b": " + b(v))
    body = b(body)
    if content_length and b"content-length" not in names and b"transfer-encoding" not in names \
            and (body or method == "POST"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def signed_request_bytes(body, secret=SECRET, ts=None, path=ROUTE_PATH, extra_headers=None,
                         more_headers=(), version="HTTP/1.1", host="127.0.0.1", content_length=True):
    """A signed delivery as exact bytes: signed_headers(...) then more_headers (raw pairs, appended)."""
    body = sender._to_bytes(body)
    pairs = list(signed_headers(body, secret, ts=ts, extra_headers=extra_headers).items()) + list(more_headers)
    return request_bytes("POST", path, pairs, body, version=version, host=host, content_length=content_length)


class RawClient:
    """One TCP connection (TLS if ssl_context is given) that sends exact bytes and parses the
    answers itself. read_response() returns a sender.Response (a 1xx interim answer too), or
    None if the connection closed (or was reset) before a whole answer arrived."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1", ssl_context=None, server_hostname="localhost"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_hostname)
        self.buf = b""
        self.eof = False
        self.reset = False

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send() that reports a closed/reset connection as False instead of raising."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no answer in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            self.eof = self.reset = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        length = 0
        for k, v in headers:
            if k.lower() == "content-length":
                length = int(v)
        if 100 <= status < 200:
            length = 0
        while len(rest) < length:
            if not self._fill(deadline):
                return None
            rest = self.buf.partition(b"\r\n\r\n")[2]
        self.buf = rest[length:]
        return sender.Response(status, parts[2] if len(parts) > 2 else "", headers, rest[:length])

    def wait_closed(self, timeout=3.0):
        """True once the peer closed (EOF or reset) within timeout; data received meanwhile is kept."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
        return True

    def readable_within(self, timeout):
        """Whether anything (data or EOF) arrives within timeout, without consuming it."""
        if self.buf or self.eof:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_exchange(port, data, timeout=5.0):
    """Sends data on a new connection and returns the first answer (or None if it closed first)."""
    c = RawClient(port, timeout=timeout)
    try:
        c.try_send(data)
        return c.read_response(timeout=timeout)
    finally:
        c.close()


def request_ids_worker(request_id):
    """The worker index in a generated request id `<hex>-<workerIndex>-<n>` (None if not that shape)."""
    m = re.fullmatch(r"([0-9a-f]+)-(\d+)-(\d+)", request_id or "")
    return int(m.group(2)) if m else None
