"""Fixtures for the fault-injection suite (Tests/faults).

Reuses the integration suite's helpers (Tests/integration/conftest.py, loaded under another
module name so both suites can be collected) and adds an upstream that can be SIGKILLed and
restarted on the same port, keeping its records in an append-only JSON-lines file; for the
multi-replica scenarios, a real redis-server (redis_server) and restartable hookgate replicas
(replica_group), built in replicas.py.

Run: HOOKGATE_BIN=.build/debug/hookgate python3 -m pytest -q -s Tests/faults
"""
import importlib.util
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

_INTEGRATION = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("hookgate_integration_conftest", _INTEGRATION)
integration = importlib.util.module_from_spec(_spec)
sys.modules["hookgate_integration_conftest"] = integration
_spec.loader.exec_module(integration)

# fixtures and helpers re-exported from the integration suite
hookgate_bin = integration.hookgate_bin
start_gateway = integration.start_gateway
SECRET = integration.SECRET
ROUTE_PATH = integration.ROUTE_PATH
UPSTREAM_PATH = integration.UPSTREAM_PATH
PEERS = integration.PEERS
make_route = integration.make_route
make_config = integration.make_config
free_port = integration.free_port
to_yaml = integration.to_yaml
poll_until = integration.poll_until

sys.path.insert(0, str(PEERS))


class RecordingUpstream:
    """Tests/peers/upstream.py with --record-file, on a fixed port, killable and restartable."""

    def __init__(self, workdir, port=None, lean=False):
        self.port = port or free_port()
        self.record_file = Path(workdir) / ("upstream-%d.jsonl" % self.port)
        self.stderr_path = Path(workdir) / ("upstream-%d.stderr" % self.port)
        self.lean = lean
        self.proc = None
        self.restarts = 0
        self.start()

    def start(self):
        args = [sys.executable, str(PEERS / "upstream.py"), "--port", str(self.port),
                "--record-file", str(self.record_file)]
        if self.lean:
            args.append("--lean")
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        port = integration._read_ready(self.proc, integration.STARTUP_TIMEOUT, "upstream.py")
        assert port == self.port
        return self

    def kill(self):
        """SIGKILL: no chance to finish answers in flight."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def restart(self):
        self.kill()
        self.restarts += 1
        return self.start()

    def stop(self):
        integration._kill(self.proc)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def url(self, path=""):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def mode(self, **kw):
        return self._call("POST", "/_control/mode", kw)

    def stats(self):
        return self._call("GET", "/_control/stats")

    def records(self):
        """Every record of every run of this upstream (read from the record file)."""
        recs, by_seq = [], {}
        with open(self.record_file, "rb") as f:
            for line in f:
                entry = json.loads(line)
                if entry.get("phase") == "answer":
                    entry = dict(entry, done=False, client_gone=False)
                    recs.append(entry)
                    by_seq[entry["seq"]] = entry
                elif entry.get("phase") == "done" and entry["seq"] in by_seq:
                    by_seq[entry["seq"]].update(done=True, client_gone=bool(entry.get("client_gone")))
        return recs

    def full_records(self):
        """In-memory records of the running process (headers and bodies), via the control API."""
        return self._call("GET", "/_control/records")


@pytest.fixture
def recording_upstream(tmp_path):
    ups = []

    def start(**kw):
        u = RecordingUpstream(tmp_path, **kw)
        ups.append(u)
        return u

    yield start
    for u in ups:
        u.stop()


# ---- the multi-replica scenarios (Tests/faults/test_redis_replicas.py, harness in replicas.py)
tls_material = integration.tls_material


@pytest.fixture
def redis_server(tmp_path):
    """Factory: redis_server(tls=None, acl=False, persist=False) -> a running replicas.RedisServer
    on a free loopback port; killed at teardown. Skips only when redis-server is not installed
    (.ci/run installs it, so CI never skips)."""
    import replicas
    if not replicas.is_redis_available():
        pytest.skip("redis-server is not installed")
    servers = []

    def start(**kw):
        r = replicas.RedisServer(tmp_path, **kw)
        servers.append(r)
        return r

    yield start
    for r in servers:
        r.stop()


@pytest.fixture
def replica_group(hookgate_bin, tmp_path):
    """A replicas.ReplicaGroup; every replica it started is stopped at teardown, and one that died
    during the test without being killed by it fails the test."""
    import replicas
    group = replicas.ReplicaGroup(hookgate_bin, tmp_path)
    yield group
    dead = group.stop()
    if dead:
        pytest.fail("\n".join(dead), pytrace=False)
