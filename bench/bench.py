#!/usr/bin/env python3
"""hookgate's benchmark harness. Run it through bench/run (which installs what is
missing, builds hookgate into .build-bench and cleans up); see bench/README.md.

Two modes:
  throughput (default)  hookgate against nginx/njs/Flask peers, interleaved rounds, median
  --memory              deliver N distinct events, report RSS per remembered id

Python 3 standard library only. Everything listens on 127.0.0.1, every child gets its
own session and is killed (by its process group id) on exit, every wait has a deadline.
"""
import argparse
import datetime
import hmac
import http.client
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
OUT = os.path.join(BENCH, "out")
LUA = os.path.join(BENCH, "signed.lua")
NJS = os.path.join(BENCH, "njs_verify.js")
FLASK_DIR = os.path.join(ROOT, "Tests", "peers")  # flask_receiver.py: the guide's receiver
NJS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"
PATH = "/webhooks/vecu"
TOLERANCE_S = 300        # hookgate's and njs's window
RESIGN_AFTER_S = 240     # re-sign the lists before a measurement could outlive the window
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The guide's example event; only the id varies (~300 bytes with a 26-character id).
BODY_TEMPLATE = ('{"id":"{ID}","source":"vecu.custody-service","type":"custody.vehicle.released",'
                 '"specversion":"1.0","time":"2025-01-15T14:30:00Z","datacontenttype":"application/json",'
                 '"data":{"_platform":{"correlationId":"corr_abc123","actor":{"actorId":"driver_456",'
                 '"actorType":"user"}},"vin":"5XXXX00000XEXMPL0"}}')

# Filler for bigger bodies: line items of a typical event payload (strings, numbers, objects),
# so the envelope scanner sees structure as well as string contents.
PAD_ITEM = '{"sku":"SKU-%06d","description":"wheel nut M14x1.5, zinc plated","qty":4,"price":1.25}'


def body_template(size=0):
    """BODY_TEMPLATE, or with a `data.items` array of line items making the body (with a 26-character
    id) exactly `size` bytes long when size is larger than the plain event."""
    base = len(BODY_TEMPLATE) - len("{ID}") + 26
    if size <= base:
        return BODY_TEMPLATE
    target = size - base - len('"items":[],')   # bytes the joined items must take
    if target < 2:  # too close to the plain event for an item: valid trailing whitespace instead
        return BODY_TEMPLATE + " " * (size - base)
    items, used, n = [], 0, 0
    while True:
        item = PAD_ITEM % n
        if used + len(item) + 1 + 3 > target:  # keep room for ',""'
            break
        items.append(item)
        used += len(item) + 1
        n += 1
    items.append('"' + "x" * (target - used - 2) + '"')  # the remainder: the length is exact
    t = BODY_TEMPLATE.replace('"data":{', '"data":{"items":[' + ",".join(items) + '],', 1)
    assert len(t) - len("{ID}") + 26 == size, (len(t), size)
    return t


PEERS = ["direct", "nginx-proxy", "nginx-njs", "flask-gunicorn", "hookgate-1", "hookgate-auto", "hookgate-sqlite"]
PEER_NOTES = {
    "direct": "the upstream nginx itself, no verification (the floor)",
    "nginx-proxy": "nginx proxy_pass to the upstream, upstream keepalive, no verification",
    "nginx-njs": "nginx + njs: timestamp window + HMAC (crypto module), then proxy_pass; no envelope check, no dedup",
    "flask-gunicorn": "the guide's Flask receiver (Tests/peers/flask_receiver.py) under gunicorn, 1 sync worker: "
                      "HMAC only (the guide has no timestamp window, no dedup), no upstream; "
                      "the sync worker closes the connection after every answer",
    "hookgate-1": "hookgate workers: 1: timestamp + HMAC + CloudEvents envelope + dedup, then forwards to the upstream",
    "hookgate-auto": "hookgate workers: auto (one event loop per core), same work",
    "hookgate-sqlite": "hookgate-1 with ledger.store: sqlite (a fresh file each round, default commit_interval)",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Timeout(Exception):
    pass


# --------------------------------------------------------------------------- processes

class Procs:
    """Every child this run starts: own session, pid recorded for bench/run's trap."""

    def __init__(self, pidfile):
        self.pidfile = pidfile
        self.live = []

    def start(self, name, cmd, logpath, env=None, stdout_null=False, cwd=None):
        err = open(logpath, "ab")
        out = subprocess.DEVNULL if stdout_null else err
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                             start_new_session=True)
        err.close()
        p.bench_name = name
        p.bench_log = logpath
        self.live.append(p)
        self.write_pidfile()
        return p

    def stop(self, p, grace=8.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log("  %s did not stop in %.0f s after SIGTERM; SIGKILL" % (p.bench_name, grace))
        # the group may hold workers that outlive their parent: kill what is left of it
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if p in self.live:
            self.live.remove(p)
        self.write_pidfile()

    def write_pidfile(self):
        # only live children: bench/run's trap must never signal a recycled pid
        if self.pidfile:
            with open(self.pidfile + ".new", "w") as f:
                f.writelines("%d\n" % q.pid for q in self.live)
            os.replace(self.pidfile + ".new", self.pidfile)

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p, grace=3.0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (status %s) before listening on %d:\n%s"
                               % (proc.bench_name, proc.returncode, port, tail(proc.bench_log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s is not listening on %d after %.0f s:\n%s"
                       % (proc.bench_name, port, timeout, tail(proc.bench_log)))


def proc_tree(root):
    """root and its descendants (nginx master + worker, gunicorn arbiter + worker)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def user_system_seconds(pid):
    """CPU seconds `pid` (all its threads) spent in user space and in the kernel; zeros if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def cpu_seconds(pids):
    return sum(sum(user_system_seconds(pid)) for pid in pids)


def machine_busy_seconds():
    """CPU seconds all cores spent not idle (from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # user..steal minus idle, iowait


def proc_status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- signed events

class EventLists:
    """Per-thread files of "<id> <signature>" lines for bench/signed.lua, all signed with one
    timestamp. `tag` makes the ids of every list this run writes distinct."""

    def __init__(self, workdir, secret, threads, template=BODY_TEMPLATE):
        self.workdir = workdir
        self.template = template
        self.key = secret.encode()
        self.threads = threads
        self.run_tag = secrets.token_hex(3)
        self.generation = 0
        self.ts = None
        self.signed_at = None

    def new_timestamp(self):
        self.ts = int(time.time())
        self.signed_at = time.monotonic()
        self.generation += 1

    def age(self):
        return time.monotonic() - self.signed_at

    def write(self, name, per_thread):
        """Writes <workdir>/<name>.<t> for each wrk thread (per_thread: a count, or one
        count per thread); returns the prefix."""
        counts = per_thread if isinstance(per_thread, list) else [per_thread] * self.threads
        prefix = os.path.join(self.workdir, "%s-g%d" % (name, self.generation))
        pre = self.template.split("{ID}")
        ts_dot = ("%d." % self.ts).encode()
        key = self.key
        digest = hmac.digest
        for t in range(self.threads):
            idp = "%s%d%s%d-" % (self.run_tag, self.generation, name[:1], t)
            lines = ["%d\n%s\n" % (self.ts, self.template)]
            for n in range(counts[t]):
                eid = "%s%0*d" % (idp, 26 - len(idp), n)  # 26 characters, like a ULID
                body = eid.join(pre)
                lines.append("%s %s\n" % (eid, digest(key, ts_dot + body.encode(), "sha256").hex()))
            with open("%s.%d" % (prefix, t), "w") as f:
                f.writelines(lines)
        return prefix

    @staticmethod
    def first_event(prefix, thread=0):
        with open("%s.%d" % (prefix, thread)) as f:
            ts = f.readline().strip()
            template = f.readline().rstrip("\n")
            eid, sig = f.readline().split()
        return ts, eid, sig, eid.join(template.split("{ID}"))


def post_event(port, ts, eid, sig, body, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", PATH, body=body.encode(), headers={
            "Content-Type": "application/json", "X-VECU-Event-ID": eid,
            "X-VECU-Event-Type": "custody.vehicle.released", "X-VECU-Retry-Count": "0",
            "X-VECU-Timestamp": ts, "X-VECU-Signature": "sha256=" + sig})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


# --------------------------------------------------------------------------- wrk

def run_wrk(procs, url, prefix, duration, connections, threads, mode, logpath, probe=None, done_files=None,
            slack=30):
    """Runs wrk with bench/signed.lua; returns its BENCH_JSON summary plus CPU figures.

    probe() (optional) returns a tuple of CPU-second counters; it is read when wrk prints
    "Running" (its threads have loaded their lists and are about to send) and when wrk has
    exited, so the CPU window is the load window. done_files (mode "once"): when all exist,
    wrk is sent SIGINT, which ends its run early with the usual summary."""
    cmd = ["stdbuf", "-oL", "wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration, "--latency",
           "-s", LUA, url, "--", prefix, mode]
    open(logpath, "w").close()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = procs.start("wrk", cmd, logpath)  # stdout and stderr both go to logpath
    deadline = time.monotonic() + duration + slack
    t_start = s0 = None
    wrk0 = 0.0
    interrupted = False
    try:
        while p.poll() is None:
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError("wrk did not finish within %d s:\n%s" % (duration + slack, tail(logpath)))
            if t_start is None:
                with open(logpath, "rb") as f:
                    if b"Running " in f.read():
                        t_start = now
                        s0 = probe() if probe else None
                        wrk0 = cpu_seconds([p.pid])
            elif done_files and not interrupted and all(os.path.exists(x) for x in done_files):
                os.kill(p.pid, signal.SIGINT)
                interrupted = True
            time.sleep(0.01 if t_start is None else 0.02)
        t_end = time.monotonic()
        s1 = probe() if probe else None
    finally:
        if p.poll() is None:
            procs.stop(p)
    if p in procs.live:
        procs.live.remove(p)
        procs.write_pidfile()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(logpath, encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = None
    for m in re.finditer(r"^BENCH_JSON (\{.*\})$", text, re.M):
        pass
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (status %s):\n%s" % (p.returncode, text[-2000:]))
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    r["socket_errors"] = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    window = (t_end - t_start) if t_start is not None else r["duration_us"] / 1e6
    r["cpu_window"] = window
    wrk_total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    r["wrk_cpu"] = max(0.0, wrk_total - wrk0) / window if window > 0 else 0.0
    r["wrk_load_cpu"] = wrk0  # CPU seconds wrk spent before sending (reading its lists)
    if probe and s0 is not None:
        r["probe"] = [(y - x) / window for x, y in zip(s0, s1)]
    r["text"] = text
    return r


# --------------------------------------------------------------------------- peers

NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes 1;
user root;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
{load_module}
{env}
events {{ worker_connections 4096; }}
http {{
    log_format count '$status';
    access_log {access_log};
    default_type application/json;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 1m;
    client_body_buffer_size 64k;
    client_body_in_single_buffer on;
{http}
}}
"""

PROXY_TO_APP = """\
    upstream app {{
        server 127.0.0.1:{up};
        keepalive 64;
        keepalive_requests 10000000;
    }}
"""

PROXY_DIRECTIVES = """\
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
"""


def start_nginx(procs, workdir, name, port, http, njs=False, access_log="off", env=None):
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_MAIN.format(
            dir=d, http=http, access_log=access_log,
            load_module=("load_module %s;" % NJS_MODULE) if njs else "",
            env="env VECU_WEBHOOK_SECRET;" if njs else ""))
    p = procs.start(name, ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf],
                    os.path.join(d, "stderr.log"), env=env)
    p.bench_log = os.path.join(d, "error.log")
    wait_port(port, p)
    wait_worker(p)
    return p


def wait_worker(master, timeout=20.0):
    """Waits until nginx's master has forked its worker: the master listens before the worker
    exists, and a process list read earlier misses the worker (its CPU would read 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(proc_tree(master.pid)) >= 2:
            return
        if master.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("%s started no worker within %.0f s:\n%s" % (master.bench_name, timeout, tail(master.bench_log)))


def start_upstream(procs, workdir, access_log="off", name="upstream"):
    port = free_port()
    http = """\
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 '{{"ok":true}}'; }}
    }}
""".format(port=port)
    if access_log != "off":
        access_log = "%s count" % access_log
    return start_nginx(procs, workdir, name, port, http, access_log=access_log), port


def hookgate_config(port, up_port, workers, capacity, ledger=""):
    return """\
listen: 127.0.0.1:{port}
workers: {workers}
shutdown_grace: 3s
{ledger}routes:
  - name: vecu
    path: {path}
    verify: {{scheme: vecu, secrets: [{{env: VECU_WEBHOOK_SECRET}}], tolerance: {tol}s}}
    dedup: {{capacity: {capacity}, ttl: 72h}}
    upstream: {{url: "http://127.0.0.1:{up}{path}", timeout: 25s, max_connections: 64}}
""".format(port=port, workers=workers, path=PATH, tol=TOLERANCE_S, capacity=capacity, up=up_port, ledger=ledger)


def start_hookgate(procs, ctx, name, workers, capacity, up_port, sqlite=False):
    port = free_port()
    d = os.path.join(ctx.workdir, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "hookgate.yaml")
    ledger = ""
    if sqlite:
        # a fresh file each round: the rounds send the same events, which must not be duplicates
        path = os.path.join(d, "ledger.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        ledger = "ledger: {store: sqlite, sqlite: {path: %s}}\n" % path
    with open(conf, "w") as f:
        f.write(hookgate_config(port, up_port, workers, capacity, ledger))
    chk = subprocess.run([ctx.hookgate, "check", "--config", conf], env=ctx.env, capture_output=True,
                         text=True, timeout=30)
    if chk.returncode != 0:
        raise RuntimeError("hookgate check --config failed:\n%s%s" % (chk.stdout, chk.stderr))
    # one JSON log line per request on stdout: discarded (it would cost the disk, not hookgate)
    p = procs.start(name, [ctx.hookgate, "serve", "--config", conf], os.path.join(d, "stderr.log"),
                    env=ctx.env, stdout_null=True)
    wait_port(port, p)
    return p, port


class Peer:
    def __init__(self, name, port, procs, rss_pid=None):
        self.name, self.port, self.procs, self.rss_pid = name, port, procs, rss_pid
        self.url = "http://127.0.0.1:%d%s" % (port, PATH)


def start_peer(procs, ctx, name):
    if name == "direct":
        return Peer(name, ctx.up_port, [])
    if name in ("nginx-proxy", "nginx-njs"):
        port = free_port()
        if name == "nginx-proxy":
            loc = "        location / {\n%s        }\n" % PROXY_DIRECTIVES
        else:
            loc = ("        location = %s {\n            js_content verify.verify;\n        }\n"
                   "        location @upstream {\n%s        }\n"
                   "        location / { return 404 '{\"error\":\"route_not_found\"}'; }\n") % (PATH, PROXY_DIRECTIVES)
        http = PROXY_TO_APP.format(up=ctx.up_port)
        if name == "nginx-njs":
            http += "    js_import verify from %s;\n" % NJS
        http += "    server {\n        listen 127.0.0.1:%d backlog=4096;\n%s    }\n" % (port, loc)
        p = start_nginx(procs, ctx.workdir, name, port, http, njs=(name == "nginx-njs"), env=ctx.env)
        return Peer(name, port, [p])
    if name == "flask-gunicorn":
        port = free_port()
        d = os.path.join(ctx.workdir, name)
        os.makedirs(d, exist_ok=True)
        p = procs.start(name, [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
                               "--bind", "127.0.0.1:%d" % port, "--backlog", "2048", "--chdir", FLASK_DIR,
                               "--log-level", "warning", "flask_receiver:app"],
                        os.path.join(d, "gunicorn.log"), env=ctx.env)
        wait_port(port, p)
        return Peer(name, port, [p])
    if name in ("hookgate-1", "hookgate-auto", "hookgate-sqlite"):
        p, port = start_hookgate(procs, ctx, name, "auto" if name == "hookgate-auto" else 1,
                                 ctx.capacity, ctx.up_port, sqlite=(name == "hookgate-sqlite"))
        return Peer(name, port, [p], rss_pid=p.pid)
    raise ValueError(name)


# --------------------------------------------------------------------------- throughput mode

VERIFYING = {"nginx-njs", "flask-gunicorn", "hookgate-1", "hookgate-auto", "hookgate-sqlite"}
FORWARDING = {"direct", "nginx-proxy", "nginx-njs", "hookgate-1", "hookgate-auto", "hookgate-sqlite"}  # answer is the upstream's


def check_peer(name, port, probe_list):
    """Before loading a peer: a correct event must pass (and reach the upstream where the peer
    forwards), a tampered signature must be refused by the peers that verify, and hookgate
    must answer a retry as a duplicate. A peer that fails this is a setup error, not a number."""
    ts, eid, sig, body = EventLists.first_event(probe_list)
    status, headers, answer = post_event(port, ts, eid, sig, body)
    if not 200 <= status < 300:
        raise RuntimeError("%s answered %d to a correctly signed event: %s" % (name, status, answer[:300]))
    if name in FORWARDING and '"ok":true' not in answer:
        raise RuntimeError("%s answered %d without the upstream's body: %s" % (name, status, answer[:300]))
    bad = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    bstatus, _, banswer = post_event(port, ts, eid + "x", bad, body.replace(eid, eid + "x"))
    if name in VERIFYING and bstatus != 401:
        raise RuntimeError("%s answered %d to a tampered signature (expected 401): %s" % (name, bstatus, banswer[:300]))
    if name.startswith("hookgate"):
        dstatus, dheaders, danswer = post_event(port, ts, eid, sig, body)
        if dstatus != 200 or dheaders.get("X-Hookgate-Duplicate", "").lower() != "true":
            raise RuntimeError("%s did not answer a retry as a duplicate: %d %s" % (name, dstatus, danswer[:300]))


class Ctx:
    pass


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt_int(x):
    return "{:,.0f}".format(x) if x == x else "—"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine_info():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip() or platform.processor()
    git = sh("cd %s && git rev-parse --short HEAD" % ROOT)
    if sh("cd %s && git status --porcelain -- Sources Package.swift" % ROOT):
        git += " (with uncommitted changes in Sources/)"
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")),
        ("nproc", sh("nproc")),
        ("CPU", cpu),
        ("kernel", platform.release()),
        ("memory", sh("free -m | awk '/Mem:/ {print $2 \" MiB\"}'")),
        ("load average (1 min) at start / end", "%s / %.2f" % (LOAD_AT_START[0] if LOAD_AT_START else "?",
                                                              os.getloadavg()[0])),
        ("hookgate", "%s, commit %s" % (os.path.relpath(ROOT_BIN[0], ROOT) if ROOT_BIN else "?", git)),
        ("tools", "; ".join(x for x in [
            sh("wrk -v 2>&1 | head -1 | cut -d' ' -f1-2"),
            sh("nginx -v 2>&1 | sed 's/^nginx version: //'"),
            "njs " + sh("dpkg-query -W -f='${Version}' libnginx-mod-http-js"),
            "gunicorn " + sh("%s -c 'import importlib.metadata as m; print(m.version(\"gunicorn\"))'" % sys.executable),
            "Flask " + sh("%s -c 'import importlib.metadata as m; print(m.version(\"flask\"))'" % sys.executable),
            "Python " + platform.python_version()] if x.strip())),
    ]


ROOT_BIN = []
LOAD_AT_START = []


def throughput(args, ctx, procs):
    peers = args.peers
    lists = EventLists(ctx.workdir, ctx.secret, args.threads)
    per_thread = int(args.max_rate * args.duration / args.threads) + 1
    warm_per_thread = int(args.max_rate * max(args.warmup, 1) / args.threads) + 1

    def sign():
        t0 = time.monotonic()
        lists.new_timestamp()
        ctx.run_list = lists.write("run", per_thread)
        ctx.warm_list = lists.write("warm", warm_per_thread)
        ctx.probe_list = lists.write("probe", 1)
        log("signed %s + %s events with X-VECU-Timestamp %d in %.1f s"
            % (fmt_int(per_thread * args.threads), fmt_int(warm_per_thread * args.threads), lists.ts,
               time.monotonic() - t0))

    sign()
    resigned = 0
    ctx.upstream, ctx.up_port = start_upstream(procs, ctx.workdir)
    results = {p: [] for p in peers}
    rss = {p: {"idle": [], "peak": []} for p in peers}
    raw = []

    for rnd in range(1, args.rounds + 1):
        for name in peers:
            if lists.age() + args.warmup + args.duration + 20 > RESIGN_AFTER_S:
                sign()
                resigned += 1
            log("round %d/%d  %-15s" % (rnd, args.rounds, name))
            peer = start_peer(procs, ctx, name)
            try:
                if peer.rss_pid:
                    time.sleep(0.2)
                    rss[name]["idle"].append(proc_status_kib(peer.rss_pid, "VmRSS"))
                check_peer(name, peer.port, ctx.probe_list)
                if args.warmup > 0:
                    run_wrk(procs, peer.url, ctx.warm_list, args.warmup, args.connections,
                            args.threads, "cycle", os.path.join(ctx.workdir, "wrk-warm.log"))
                up_pids = proc_tree(ctx.upstream.pid)  # read now: a worker that was replaced is counted
                peer_pids = [q for p in peer.procs for q in proc_tree(p.pid)] or up_pids
                uses_up = bool(peer.procs) and name != "flask-gunicorn"

                def probe():
                    return (cpu_seconds(peer_pids), cpu_seconds(up_pids), machine_busy_seconds())

                r = run_wrk(procs, peer.url, ctx.run_list, args.duration, args.connections, args.threads,
                            "cycle", os.path.join(ctx.workdir, "wrk-%s-r%d.log" % (name, rnd)), probe=probe)
                r["peer_cpu"], up_cpu, r["machine_cpu"] = r["probe"]
                r["up_cpu"] = up_cpu if uses_up else None
                r["other_cpu"] = max(0.0, r["machine_cpu"] - r["peer_cpu"] - (r["up_cpu"] or 0) - r["wrk_cpu"])
                if peer.rss_pid:
                    rss[name]["peak"].append(proc_status_kib(peer.rss_pid, "VmHWM"))
                results[name].append(r)
                raw.append("### %s round %d\n%s" % (name, rnd, r.pop("text")))
                log("    %9s req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %d  socket errors %d  "
                    "cores: peer %.2f upstream %s wrk %.2f other %.2f%s"
                    % (fmt_int(r["rps"]), r["p50_us"] / 1000, r["p99_us"] / 1000, r["non2xx"], r["socket_errors"],
                       r["peer_cpu"], "%.2f" % r["up_cpu"] if r["up_cpu"] is not None else "-", r["wrk_cpu"],
                       r["other_cpu"],
                       "  (ids repeated: list wrapped %d×)" % r["wraps"] if r["wraps"] and peer.rss_pid else ""))
            finally:
                for p in peer.procs:
                    procs.stop(p)
                    if p.returncode not in (0, None, -signal.SIGTERM):
                        log("    note: %s exited with status %s" % (name, p.returncode))

    # ---- report
    med = {}
    for name in peers:
        rs = results[name]
        reqs = sum(r["requests"] for r in rs)
        med[name] = {
            "rps": median([r["rps"] for r in rs]),
            "p50": median([r["p50_us"] / 1000 for r in rs]),
            "p99": median([r["p99_us"] / 1000 for r in rs]),
            "non2xx": sum(r["non2xx"] for r in rs),
            "sock": sum(r["socket_errors"] for r in rs),
            "reqs": reqs,
            "peer_cpu": median([r["peer_cpu"] for r in rs]),
            "up_cpu": median([r["up_cpu"] for r in rs]) if rs and rs[0]["up_cpu"] is not None else None,
            "wrk_cpu": median([r["wrk_cpu"] for r in rs]),
            "other_cpu": median([r["other_cpu"] for r in rs]),
            "machine_cpu": median([r["machine_cpu"] for r in rs]),
            "us_per_req": median([r["peer_cpu"] / r["rps"] * 1e6 for r in rs if r["rps"]]),
            "wraps": sum(r["wraps"] for r in rs),
            "all": [r["rps"] for r in rs],
        }
    hg1 = med.get("hookgate-1", {}).get("rps")

    lines = ["# hookgate benchmark", ""]
    for k, v in machine_info():
        lines.append("- **%s**: %s" % (k, v))
    lines += [
        "- **load**: `wrk -t%d -c%d -d%ds --latency -s bench/signed.lua`, %d round(s) interleaved "
        "(all peers in order, then again), %ss warm-up per peer start, median per peer"
        % (args.threads, args.connections, args.duration, args.rounds, args.warmup),
        "- **events**: distinct CloudEvents of %d bytes, each with its own id and "
        "`X-VECU-Signature: sha256=<HMAC-SHA256(secret, \"{ts}.{body}\")>`, pre-signed (wrk does not hash); "
        "%s per round per peer available, signed %d time(s) this run (re-signed before the %d s window could expire); "
        "each peer is started fresh for each round, so hookgate never sees an id twice"
        % (len(BODY_TEMPLATE.replace("{ID}", "x" * 26)), fmt_int(per_thread * args.threads), 1 + resigned, TOLERANCE_S),
        "- **upstream**: nginx, 1 worker, `return 200 {\"ok\":true}` on 127.0.0.1; every peer has one worker/thread "
        "except hookgate-auto; load generator, peer and upstream share the same %s cores" % sh("nproc"),
        "- hookgate's stdout (one JSON log line per request) goes to /dev/null during the benchmark",
        "",
        "| peer | req/s | p50 ms | p99 ms | non-2xx | hookgate-1 req/s ÷ peer | peer CPU µs/req | peer CPU | upstream CPU | wrk CPU | other CPU | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in peers:
        m = med[name]
        notes = []
        bad = m["non2xx"] + m["sock"]
        if m["reqs"] == 0 or bad > 0.001 * m["reqs"]:
            notes.append("**ERROR: %s non-2xx, %s socket errors of %s requests**"
                         % (fmt_int(m["non2xx"]), fmt_int(m["sock"]), fmt_int(m["reqs"])))
        elif m["sock"]:
            notes.append("%s socket errors" % fmt_int(m["sock"]))
        if m["wraps"] and name.startswith("hookgate"):
            notes.append("**ids repeated (list too short: raise --max-rate); duplicates skew this row**")
        ncpu = os.cpu_count() or 1
        if m["peer_cpu"] >= 0.85 * (1 if name != "hookgate-auto" else ncpu):
            notes.append("peer CPU-bound")
        elif m["machine_cpu"] >= 0.9 * ncpu:
            notes.append("all %d cores busy" % ncpu)
        lines.append("| %s | %s | %.2f | %.2f | %s | %s | %s | %.2f | %s | %.2f | %.2f | %s |" % (
            name, fmt_int(m["rps"]), m["p50"], m["p99"], fmt_int(m["non2xx"]),
            ("%.2f" % (hg1 / m["rps"])) if hg1 and m["rps"] else "—",
            fmt_int(m["us_per_req"]),
            m["peer_cpu"], "%.2f" % m["up_cpu"] if m["up_cpu"] is not None else "—", m["wrk_cpu"],
            m["other_cpu"], "; ".join(notes)))
    lines += ["", "peer CPU µs/req: the peer's CPU time per answered request (for direct, the upstream's) — "
              "less sensitive to other load on the machine than req/s. "
              "The other CPU columns are cores in use (CPU seconds per second of the run, all processes/threads "
              "of the peer; upstream = the shared nginx upstream, — where the peer does not use it; wrk = the load generator; "
              "other = everything else busy on the machine meanwhile, from /proc/stat: well above 0 means the numbers are "
              "disturbed by other work).",
              "non-2xx counts answers ≥ 400 as wrk does, summed over all rounds; a peer above 0.1% "
              "(non-2xx + socket errors) is marked ERROR.", ""]
    for name in peers:
        if name.startswith("hookgate"):
            idle = [x for x in rss[name]["idle"] if x]
            peak = [x for x in rss[name]["peak"] if x]
            if idle or peak:
                lines.append("- **%s memory**: idle RSS right after start %s MiB (VmRSS, median), peak RSS during its "
                             "rounds %s MiB (VmHWM, max over rounds; dedup capacity %s)"
                             % (name, "%.1f" % (median(idle) / 1024) if idle else "?",
                                "%.1f" % (max(peak) / 1024) if peak else "?", fmt_int(ctx.capacity)))
    lines += ["", "req/s per round: " + "; ".join(
        "%s %s" % (n, " / ".join(fmt_int(x) for x in med[n]["all"])) for n in peers), "", "Peers:"]
    for name in peers:
        lines.append("- `%s`: %s" % (name, PEER_NOTES[name]))
    lines.append("")
    report = "\n".join(lines)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "latest.md"), "w") as f:
        f.write(report)
    with open(os.path.join(OUT, "latest-wrk.txt"), "w") as f:
        f.write("\n".join(raw))
    print(report)
    log("saved bench/out/latest.md (wrk's own output: bench/out/latest-wrk.txt)")
    failed = [n for n in peers if med[n]["reqs"] == 0]
    return 1 if failed else 0


# --------------------------------------------------------------------------- memory mode

CHECKPOINTS = (0.10, 0.25, 0.50, 0.75, 1.00)   # RSS is read after each share of the ids


def memory_chunks(n, threads, min_rate):
    """Chunk sizes (each a multiple of `threads` where possible) ending at every checkpoint;
    a chunk is signed just before it is sent and must finish well inside the 300 s window
    at min_rate, so big segments are split."""
    cap = max(threads, int(min_rate * 150))
    chunks, done = [], 0
    for frac in CHECKPOINTS:
        end = n if frac >= 1.0 else max(done, int(n * frac))
        seg = end - done
        while seg > 0:
            k = min(seg, cap)
            chunks.append(k)
            seg -= k
        done = end
    return [c for c in chunks if c > 0]


def memory_bound(args):
    chunks = memory_chunks(args.ids, args.threads, args.min_rate)
    return 120 + sum(60 + c / args.min_rate for c in chunks)


def memory(args, ctx, procs):
    n = args.ids
    if n < 10 * args.threads:
        raise SystemExit("--ids must be at least %d" % (10 * args.threads))
    ctx.capacity = n
    lists = EventLists(ctx.workdir, ctx.secret, args.threads)
    chunks = memory_chunks(n, args.threads, args.min_rate)

    up_log = os.path.join(ctx.workdir, "upstream-access.log")
    ctx.upstream, ctx.up_port = start_upstream(procs, ctx.workdir, access_log=up_log)
    hg, port = start_hookgate(procs, ctx, "hookgate-memory", args.workers, n, ctx.up_port)
    url = "http://127.0.0.1:%d%s" % (port, PATH)
    time.sleep(0.3)
    rss_idle = proc_status_kib(hg.pid, "VmRSS")

    def count_upstream():
        try:
            with open(up_log, "rb") as f:
                return sum(1 for line in f if line.startswith(b"2"))
        except OSError:
            return 0

    log("memory: delivering %s distinct events in %d chunk(s) to hookgate workers: %s, dedup capacity %s; "
        "idle RSS %.1f MiB" % (fmt_int(n), len(chunks), args.workers, fmt_int(n), rss_idle / 1024))
    points = []            # (ids delivered so far, RSS KiB)
    totals = {"answered": 0, "ok": 0, "sock": 0, "up": 0, "secs": 0.0}
    first_id = None
    sent = 0
    for i, count in enumerate(chunks, 1):
        # sign this chunk now: its timestamp is fresh when it is sent
        t0 = time.monotonic()
        lists.new_timestamp()
        per = [count // args.threads] * args.threads
        per[0] += count - sum(per)
        prefix = lists.write("m%d" % i, per)
        sign_s = time.monotonic() - t0
        if first_id is None:
            first_id = EventLists.first_event(prefix, 0)[1]
        budget = int(60 + count / args.min_rate)
        done_files = ["%s.%d.done" % (prefix, t) for t in range(args.threads)]
        before = count_upstream()
        r = run_wrk(procs, url, prefix, budget, args.connections, args.threads, "once",
                    os.path.join(ctx.workdir, "wrk-memory-%d.log" % i), done_files=done_files)
        # nginx writes its access log per request; let the count settle
        deadline = time.monotonic() + 10
        while count_upstream() - before < count and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        got = count_upstream() - before
        secs = r["duration_us"] / 1e6
        sent += count
        rss = proc_status_kib(hg.pid, "VmRSS")
        points.append((sent, rss))
        totals["answered"] += r["answered"]
        totals["ok"] += r["answered_2xx"]
        totals["sock"] += r["socket_errors"]
        totals["up"] += got
        totals["secs"] += secs
        log("  chunk %d/%d: signed %s in %.1f s; answered %s in %.1f s (%s/s), %s 2xx, upstream received %s; "
            "RSS %.1f MiB after %s ids" % (i, len(chunks), fmt_int(count), sign_s, fmt_int(r["answered"]), secs,
                                           fmt_int(r["answered"] / secs if secs else 0), fmt_int(r["answered_2xx"]),
                                           fmt_int(got), rss / 1024, fmt_int(sent)))
        for t in range(args.threads):
            for suffix in ("", ".done"):
                try:
                    os.remove("%s.%d%s" % (prefix, t, suffix))
                except OSError:
                    pass
        if r["answered"] != count:
            log("  stopping: %d of %d events of chunk %d were answered before its deadline"
                % (r["answered"], count, i))
            break

    # the ledger must now answer a retry of the very first event as a duplicate, without forwarding
    dup_ok, status, answer = False, 0, ""
    if first_id:
        up_before = count_upstream()
        ts = str(int(time.time()))
        body = first_id.join(BODY_TEMPLATE.split("{ID}"))
        sig = hmac.digest(ctx.secret.encode(), ("%s.%s" % (ts, body)).encode(), "sha256").hex()
        status, headers, answer = post_event(port, ts, first_id, sig, body)
        time.sleep(0.3)
        dup_ok = (status == 200 and headers.get("X-Hookgate-Duplicate", "").lower() == "true"
                  and count_upstream() == up_before)
    hwm = proc_status_kib(hg.pid, "VmHWM")

    delivered = totals["up"]
    rss_last = points[-1][1] if points else rss_idle
    # least-squares slope of RSS over ids after the first checkpoint: the steady cost per id
    tail_pts = points[1:] if len(points) >= 3 else points
    slope = None
    if len(tail_pts) >= 2:
        mx = sum(x for x, _ in tail_pts) / len(tail_pts)
        my = sum(y for _, y in tail_pts) / len(tail_pts)
        den = sum((x - mx) ** 2 for x, _ in tail_pts)
        if den:
            slope = sum((x - mx) * (y - my) for x, y in tail_pts) / den * 1024

    lines = ["# hookgate memory per remembered id", ""]
    for k, v in machine_info():
        lines.append("- **%s**: %s" % (k, v))
    lines += [
        "- **setup**: hookgate `workers: %s`, dedup capacity %s (= ids), ttl 72h, forwarding to nginx (1 worker, "
        "access log counted); hookgate's stdout to /dev/null; %s distinct events, each sent once with "
        "`wrk -t%d -c%d -s bench/signed.lua -- LIST once`, in %d chunks, each signed just before it is sent"
        % (args.workers, fmt_int(n), fmt_int(n), args.threads, args.connections, len(chunks)),
        "",
        "| measure | value |",
        "|---|---:|",
        "| events sent | %s |" % fmt_int(sent),
        "| answered 2xx (wrk) | %s |" % fmt_int(totals["ok"]),
        "| non-2xx answers / socket errors | %s / %s |" % (fmt_int(totals["answered"] - totals["ok"]),
                                                          fmt_int(totals["sock"])),
        "| received by the upstream (access log) | %s |" % fmt_int(delivered),
        "| delivery rate | %s events/s |" % fmt_int(totals["ok"] / totals["secs"] if totals["secs"] else 0),
        "| RSS idle, right after start | %.1f MiB |" % (rss_idle / 1024),
    ]
    for ids, rss in points:
        lines.append("| RSS after %s ids | %.1f MiB |" % (fmt_int(ids), rss / 1024))
    lines += [
        "| peak RSS (VmHWM) | %.1f MiB |" % (hwm / 1024),
        "| **bytes per id**: (RSS at the end − idle RSS) ÷ ids | **%.0f** |" % ((rss_last - rss_idle) * 1024 / max(sent, 1)),
        "| bytes per id, marginal: slope of RSS over ids after the first %d%% | %s |"
        % (int(CHECKPOINTS[0] * 100), "%.0f" % slope if slope is not None else "—"),
        "| a retry of the very first event at the end (re-signed) | %s |" % (
            "200 duplicate, not forwarded (still remembered)" if dup_ok
            else "**%d %s** (expected a duplicate)" % (status, answer[:80])),
        "",
        "The marginal figure leaves out start-up costs the first chunk absorbs (upstream pool, buffers, allocator arenas).",
        "",
    ]
    problems = []
    if sent != n:
        problems.append("only %d of %d events were sent" % (sent, n))
    if delivered != sent:
        problems.append("the upstream received %d events, expected %d" % (delivered, sent))
    if totals["ok"] != sent:
        problems.append("%d of %d answers were 2xx" % (totals["ok"], sent))
    if not dup_ok:
        problems.append("the retry of the first event was not answered as a duplicate")
    if problems:
        lines += ["**PROBLEMS**: " + "; ".join(problems), ""]
    report = "\n".join(lines)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "memory-latest.md"), "w") as f:
        f.write(report)
    print(report)
    log("saved bench/out/memory-latest.md")
    return 1 if problems else 0


# --------------------------------------------------------------------------- body-size mode

BODY_PEERS = ["nginx-proxy", "hookgate-1"]


def bodies(args, ctx, procs):
    """MB/s and CPU per request of hookgate-1 against nginx-proxy with bigger bodies (the guide's
    event with line items added), rounds interleaved, median per peer and size."""
    sizes = [int(x) for x in args.body_sizes.split(",") if x.strip()]
    ctx.upstream, ctx.up_port = start_upstream(procs, ctx.workdir)
    rows = {}
    for size in sizes:
        template = body_template(size)
        blen = len(template) - len("{ID}") + 26
        lists = EventLists(ctx.workdir, ctx.secret, args.threads, template)
        # events per second shrink with the body; the list only holds ids and signatures
        rate = max(2000, int(args.max_rate * min(1.0, 4096.0 / blen)))
        per_thread = int(rate * args.duration / args.threads) + 1
        warm = int(rate * max(args.warmup, 1) / args.threads) + 1
        for rnd in range(1, args.rounds + 1):
            lists.new_timestamp()  # fresh ids every round: hookgate never sees one twice
            run_list = lists.write("b%d" % size, per_thread)
            warm_list = lists.write("w%d" % size, warm)
            probe_list = lists.write("p%d" % size, 1)
            for name in BODY_PEERS:
                log("body %s bytes, round %d/%d  %s" % (fmt_int(blen), rnd, args.rounds, name))
                peer = start_peer(procs, ctx, name)
                try:
                    check_peer(name, peer.port, probe_list)
                    run_wrk(procs, peer.url, warm_list, max(args.warmup, 1), args.connections, args.threads,
                            "cycle", os.path.join(ctx.workdir, "wrk-warm.log"))
                    up_pids = proc_tree(ctx.upstream.pid)
                    peer_pids = [q for p in peer.procs for q in proc_tree(p.pid)]
                    r = run_wrk(procs, peer.url, run_list, args.duration, args.connections, args.threads, "cycle",
                                os.path.join(ctx.workdir, "wrk-%s-%d-r%d.log" % (name, size, rnd)),
                                probe=lambda: (cpu_seconds(peer_pids), cpu_seconds(up_pids), machine_busy_seconds()))
                finally:
                    for p in peer.procs:
                        procs.stop(p)
                peer_cpu, up_cpu, machine = r["probe"]
                r["us_per_req"] = peer_cpu / r["rps"] * 1e6 if r["rps"] else float("nan")
                r["mbs"] = r["rps"] * blen / 1e6
                r["other"] = max(0.0, machine - peer_cpu - up_cpu - r["wrk_cpu"])
                rows.setdefault((blen, name), []).append(r)
                log("    %9s req/s  %7.1f MB/s  p99 %7.2f ms  %7.0f µs CPU/req  non-2xx %d  other %.2f cores%s"
                    % (fmt_int(r["rps"]), r["mbs"], r["p99_us"] / 1000, r["us_per_req"], r["non2xx"], r["other"],
                       "  (ids repeated)" if r["wraps"] and name.startswith("hookgate") else ""))
    lines = ["# hookgate vs nginx proxy_pass by body size", ""]
    for k, v in machine_info():
        lines.append("- **%s**: %s" % (k, v))
    lines += ["- **load**: `wrk -t%d -c%d -d%ds -s bench/signed.lua`, %d round(s) interleaved, median; bodies are the "
              "guide's event with `data.items` line items added" % (args.threads, args.connections, args.duration,
                                                                     args.rounds), "",
              "| body bytes | peer | req/s | MB/s | p99 ms | CPU µs/req | MB/s ÷ nginx | CPU/req ÷ nginx | non-2xx | other cores |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    failed = False
    for size in sizes:
        blen = len(body_template(size)) - len("{ID}") + 26
        med = {}
        for name in BODY_PEERS:
            rs = rows.get((blen, name), [])
            med[name] = {k: median([r[k] for r in rs]) for k in ("rps", "mbs", "us_per_req", "other")}
            med[name]["p99"] = median([r["p99_us"] / 1000 for r in rs])
            med[name]["non2xx"] = sum(r["non2xx"] + r["socket_errors"] for r in rs)
            failed |= not rs or med[name]["non2xx"] > 0.001 * sum(r["requests"] for r in rs)
        ng = med["nginx-proxy"]
        for name in BODY_PEERS:
            m = med[name]
            lines.append("| %s | %s | %s | %.1f | %.2f | %s | %s | %s | %s | %.2f |" % (
                fmt_int(blen), name, fmt_int(m["rps"]), m["mbs"], m["p99"], fmt_int(m["us_per_req"]),
                "%.2f" % (m["mbs"] / ng["mbs"]) if ng["mbs"] else "—",
                "%.2f" % (m["us_per_req"] / ng["us_per_req"]) if ng["us_per_req"] else "—",
                fmt_int(m["non2xx"]), m["other"]))
    lines += ["", "CPU µs/req: the peer's own processes (user + kernel) per answered request; other = cores busy "
              "with everything else on the machine meanwhile (well above 0: the figures are disturbed).", ""]
    report = "\n".join(lines)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "bodies-latest.md"), "w") as f:
        f.write(report)
    print(report)
    log("saved bench/out/bodies-latest.md")
    return 1 if failed else 0


# --------------------------------------------------------------------------- fill mode

def fill(args, ctx, procs):
    """Latency while the ledger fills from empty to capacity: N distinct events (capacity N) sent
    once each in steps of --fill-step ids, wrk's latency distribution per step."""
    n, step = args.ids, args.fill_step
    ctx.capacity = n
    lists = EventLists(ctx.workdir, ctx.secret, args.threads)
    ctx.upstream, ctx.up_port = start_upstream(procs, ctx.workdir)
    hg, port = start_hookgate(procs, ctx, "hookgate-fill", args.workers, n, ctx.up_port)
    url = "http://127.0.0.1:%d%s" % (port, PATH)
    log("fill: %s distinct events to hookgate workers: %s, dedup capacity %s, in steps of %s"
        % (fmt_int(n), args.workers, fmt_int(n), fmt_int(step)))
    rows, sent, problems = [], 0, []
    while sent < n:
        count = min(step, n - sent)
        lists.new_timestamp()  # each step signed just before it is sent
        per = [count // args.threads] * args.threads
        per[0] += count - sum(per)
        prefix = lists.write("f%d" % sent, per)
        done = ["%s.%d.done" % (prefix, t) for t in range(args.threads)]
        r = run_wrk(procs, url, prefix, int(60 + count / args.min_rate), args.connections, args.threads, "once",
                    os.path.join(ctx.workdir, "wrk-fill-%d.log" % sent), done_files=done)
        secs = r["duration_us"] / 1e6
        rows.append((sent, sent + count, r["answered"] / secs if secs else 0, r))
        log("  ids %s–%s: %s/s  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  non-2xx %d"
            % (fmt_int(sent), fmt_int(sent + count), fmt_int(rows[-1][2]), r["p50_us"] / 1000, r["p99_us"] / 1000,
               r["p999_us"] / 1000, r["max_us"] / 1000, r["answered"] - r["answered_2xx"]))
        for t in range(args.threads):
            for suffix in ("", ".done"):
                try:
                    os.remove("%s.%d%s" % (prefix, t, suffix))
                except OSError:
                    pass
        if r["answered"] != count or r["answered_2xx"] != count:
            problems.append("ids %d–%d: %d answered, %d 2xx of %d" % (sent, sent + count, r["answered"],
                                                                      r["answered_2xx"], count))
            break
        sent += count
    lines = ["# hookgate latency while the ledger fills", ""]
    for k, v in machine_info():
        lines.append("- **%s**: %s" % (k, v))
    lines += ["- **setup**: hookgate `workers: %s`, dedup capacity %s, each event sent once with `wrk -t%d -c%d "
              "-s bench/signed.lua -- LIST once` in steps of %s ids (latency includes the filler requests "
              "that end each step)" % (args.workers, fmt_int(n), args.threads, args.connections, fmt_int(step)), "",
              "| ids remembered | events/s | p50 ms | p99 ms | p99.9 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for a, b, rate, r in rows:
        lines.append("| %s–%s | %s | %.2f | %.2f | %.2f | %.2f |" % (
            fmt_int(a), fmt_int(b), fmt_int(rate), r["p50_us"] / 1000, r["p99_us"] / 1000, r["p999_us"] / 1000,
            r["max_us"] / 1000))
    if problems:
        lines += ["", "**PROBLEMS**: " + "; ".join(problems)]
    lines.append("")
    report = "\n".join(lines)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "fill-latest.md"), "w") as f:
        f.write(report)
    print(report)
    log("saved bench/out/fill-latest.md")
    return 1 if problems else 0


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured round (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up load per peer start (default 1)")
    ap.add_argument("--quick", action="store_true", help="CI smoke: 2 s, 1 round")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    ap.add_argument("--max-rate", type=int, default=60000,
                    help="req/s the event list is sized for (ids repeat beyond it; default 60000)")
    ap.add_argument("--capacity", type=int, default=2000000, help="hookgate dedup capacity (default 2000000)")
    ap.add_argument("--memory", action="store_true", help="memory per remembered id instead")
    ap.add_argument("--bodies", action="store_true",
                    help="body-size mode: hookgate-1 vs nginx-proxy MB/s and CPU/request at --body-sizes")
    ap.add_argument("--body-sizes", default="16384,262144", help="--bodies: body sizes in bytes (default 16384,262144)")
    ap.add_argument("--fill", action="store_true",
                    help="fill mode: latency per --fill-step ids while the ledger fills from empty to --ids")
    ap.add_argument("--fill-step", type=int, default=100000, help="--fill: ids per measured step (default 100000)")
    ap.add_argument("--ids", type=int, default=None,
                    help="--memory, --fill: distinct events to deliver (default 1000000; --fill --quick 300000)")
    ap.add_argument("--workers", default="1", help="--memory: hookgate workers (default 1)")
    ap.add_argument("--min-rate", type=int, default=1000,
                    help="--memory: slowest delivery rate waited for before giving up (default 1000/s)")
    ap.add_argument("--hookgate", default=os.environ.get("HOOKGATE_BIN",
                                                         os.path.join(ROOT, ".build-bench", "release", "hookgate")))
    args = ap.parse_args()
    if args.ids is None:
        args.ids = 300000 if args.fill and args.quick else 1000000
    if args.quick:
        args.duration, args.rounds, args.warmup = 2, 1, min(args.warmup, 1)
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in args.peers:
        if p not in PEERS:
            ap.error("unknown peer %r" % p)
    if args.duration < 1 or args.rounds < 1 or args.connections < args.threads:
        ap.error("need --duration ≥ 1, --rounds ≥ 1, --connections ≥ --threads")

    if args.memory:
        bound = memory_bound(args)
    elif args.fill:
        bound = 120 + sum(75 + min(args.fill_step, args.ids - k) / args.min_rate
                          for k in range(0, args.ids, args.fill_step))
    elif args.bodies:
        bound = 120 + len(args.body_sizes.split(",")) * args.rounds * len(BODY_PEERS) * (args.warmup + args.duration + 40)
    else:
        bound = 120 + args.rounds * len(args.peers) * (args.warmup + args.duration + 15)
    bound = int(bound)

    def on_alarm(signum, frame):
        raise Timeout("the run exceeded its time bound of %d s" % bound)

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(bound)

    ctx = Ctx()
    ctx.hookgate = args.hookgate
    ROOT_BIN.append(args.hookgate)
    ctx.capacity = args.capacity
    ctx.secret = "bench-" + secrets.token_hex(24)  # 54 bytes
    ctx.env = dict(os.environ, VECU_WEBHOOK_SECRET=ctx.secret)
    ctx.workdir = os.environ.get("BENCH_WORKDIR") or tempfile.mkdtemp(prefix="hookgate-bench.")
    procs = Procs(os.environ.get("BENCH_PIDFILE"))
    if not os.access(args.hookgate, os.X_OK):
        raise SystemExit("no hookgate binary at %s (bench/run builds it)" % args.hookgate)
    LOAD_AT_START.append("%.2f" % os.getloadavg()[0])
    if os.getloadavg()[0] > 0.5:
        log("note: load average %.2f before the run: other work on this machine will skew the numbers"
            % os.getloadavg()[0])
    log("time bound %d s; work files in %s" % (bound, ctx.workdir))
    try:
        mode = memory if args.memory else fill if args.fill else bodies if args.bodies else throughput
        rc = mode(args, ctx, procs)
    except (Timeout, RuntimeError) as e:
        log("bench: %s" % e)
        rc = 2
    except KeyboardInterrupt:
        log("bench: interrupted")
        rc = 130
    finally:
        signal.alarm(0)
        procs.stop_all()
    return rc


if __name__ == "__main__":
    sys.exit(main())
