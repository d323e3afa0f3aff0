"""Fixtures for hookgate's black-box integration tests.

The gateway and its peers run as real subprocesses on loopback ports:

  * the binary is $HOOKGATE_BIN, else <repo>/.build/debug/hookgate;
  * Tests/peers/upstream.py is the recording upstream (controlled over HTTP);
  * the gateway gets a generated YAML config in a temp dir and
    VECU_WEBHOOK_SECRET in its environment; its stdout is captured to a file
    for the log assertions.

Every process started here is killed at teardown.
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


def make_config(listen_port, routes, workers=1, max_body_bytes=1048576,
                max_header_bytes=16384, client_timeout="15s"):
    return {
        "listen": "127.0.0.1:%d" % listen_port,
        "workers": workers,
        "limits": {
            "max_body_bytes": max_body_bytes,
            "max_header_bytes": max_header_bytes,
            "client_timeout": client_timeout,
        },
        "routes": routes,
    }


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


def _popen_retry_busy(args, **kw):
    """Popen, retrying briefly on ETXTBSY (the binary being relinked by a concurrent `swift build`)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return subprocess.Popen(args, **kw)
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
            r["body_bytes"] = base64.b64decode(r["body"])
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
        self.port = int(config["listen"].rsplit(":", 1)[1])
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
                self.proc.wait(timeout=3)
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
    dead = []
    for gw in gateways:
        if gw.proc is None:  # never started
            continue
        was_alive = gw.alive()
        gw.stop()
        if not was_alive:
            dead.append("hookgate on port %d exited with %s during the test\nstderr tail:\n%s" % (
                gw.port, gw.proc.returncode, gw.stderr()[-2000:]))
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)


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
