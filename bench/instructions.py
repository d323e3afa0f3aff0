#!/usr/bin/env python3
"""bench/instructions: user-space instructions per request, counted by callgrind (repeatable on a
shared machine, unlike time), for hookgate and nginx proxy_pass serving the same requests.

    bench/instructions [--body-bytes N] [--requests N] [--peers hookgate,nginx-proxy] [--top 15]

Both run under `valgrind --tool=callgrind` in bench/run's configuration (hookgate-1: workers 1,
timestamp + HMAC + envelope + dedup; nginx-proxy: one worker, upstream keepalive), in front of the
same upstream nginx (not under valgrind). A small client on one keep-alive loopback connection
sends --warmup requests, then callgrind's counters are zeroed (callgrind_control), then it sends
--requests pre-signed distinct events one after the other and the counters are dumped. The idle
cost (timers) is measured the same way over an idle window and subtracted pro rata. Also counts
HMAC-SHA256 alone (bench/hmac_floor.c, the same OpenSSL calls) per byte of a 256 KiB buffer: the
per-byte floor. Prints a table and hookgate's inclusive profile (callgrind_annotate).
"""
import argparse
import hmac
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

VALGRIND = ["valgrind", "--tool=callgrind", "--quiet"] + os.environ.get("BENCH_VALGRIND_ARGS", "").split()


def callgrind_total(path):
    """Instructions (Ir) in one callgrind output file."""
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("no totals in %s" % path)


def control(pid, *command, timeout=120):
    """A callgrind monitor command through vgdb (callgrind_control finds processes by their command
    line, which nginx's worker rewrites)."""
    r = subprocess.run(["vgdb", "--pid=%d" % pid] + list(command), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("vgdb %s to %d failed: %s%s" % (" ".join(command), pid, r.stdout, r.stderr))


def dump(pid, outdir, label):
    """Dumps (and zeroes) pid's counters; returns the new file's path."""
    before = set(os.listdir(outdir))
    control(pid, "dump", label)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [x for x in set(os.listdir(outdir)) - before if x.startswith("cg.%d." % pid)]
        if new:
            path = os.path.join(outdir, sorted(new)[-1])
            time.sleep(0.2)  # let callgrind finish writing
            return path
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump for %d" % pid)


class Client:
    """One keep-alive connection; sends a request, reads one answer (Content-Length framed)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def exchange(self, request):
        self.s.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if not m:
            raise RuntimeError("answer without Content-Length: %r" % head[:300])
        n = int(m.group(1))
        while len(self.buf) < n:
            self._more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, body

    def _more(self):
        chunk = self.s.recv(1 << 16)
        if not chunk:
            raise RuntimeError("connection closed by the server")
        self.buf += chunk

    def close(self):
        self.s.close()


def requests(secret, template, port, count, tag):
    """count distinct signed events, signed now (inside the 300 s window)."""
    ts = str(int(time.time()))
    key = secret.encode()
    pre = template.split("{ID}")
    out = []
    for n in range(count):
        eid = "%s%0*d" % (tag, 26 - len(tag), n)
        body = eid.join(pre).encode()
        sig = hmac.digest(key, ts.encode() + b"." + body, "sha256").hex()
        out.append(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\nX-VECU-Event-Type: custody.vehicle.released\r\nX-VECU-Retry-Count: 0\r\n"
                    "X-VECU-Timestamp: %s\r\nX-VECU-Event-ID: %s\r\nX-VECU-Signature: sha256=%s\r\n\r\n"
                    % (bench.PATH, port, len(body), ts, eid, sig)).encode() + body)
    return out


def send_all(port, reqs):
    c = Client(port)
    bad = 0
    try:
        for r in reqs:
            status, body = c.exchange(r)
            if not 200 <= status < 300 or b'"ok":true' not in body:
                bad += 1
                if bad == 1:
                    bench.log("  unexpected answer %d: %r" % (status, body[:200]))
    finally:
        c.close()
    return bad


def start_nginx_proxy(procs, work, up_port, outdir):
    port = bench.free_port()
    d = os.path.join(work, "nginx-proxy")
    os.makedirs(d, exist_ok=True)
    http = bench.PROXY_TO_APP.format(up=up_port)
    http += "    server {\n        listen 127.0.0.1:%d backlog=4096;\n        location / {\n%s        }\n    }\n" % (
        port, bench.PROXY_DIRECTIVES)
    conf = os.path.join(d, "nginx.conf")
    # bench/run's configuration with the master and its one worker folded into one process:
    # valgrind's gdbserver (vgdb, which zeroes and dumps the counters) does not reach a forked child
    main = bench.NGINX_MAIN.replace("master_process on;", "master_process off;")
    with open(conf, "w") as f:
        f.write(main.format(dir=d, http=http, access_log="off", load_module="", env=""))
    p = procs.start("nginx-proxy", VALGRIND + ["--callgrind-out-file=%s/cg.%%p" % outdir, "nginx", "-p", d,
                                               "-e", os.path.join(d, "error.log"), "-c", conf],
                    os.path.join(d, "stderr.log"))
    bench.wait_port(port, p, timeout=180)
    return p, port, p.pid


def start_hookgate(procs, work, up_port, outdir, hookgate, env, capacity):
    # valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes: a copy without debug
    # information (the symbol table stays, so the profile still names functions)
    stripped = os.path.join(work, "hookgate-nodebug")
    subprocess.run(["objcopy", "--strip-debug", hookgate, stripped], check=True)
    hookgate = stripped
    port = bench.free_port()
    conf = os.path.join(work, "hookgate.yaml")
    with open(conf, "w") as f:
        f.write(bench.hookgate_config(port, up_port, 1, capacity))
    p = procs.start("hookgate", VALGRIND + ["--callgrind-out-file=%s/cg.%%p" % outdir, hookgate, "serve",
                                            "--config", conf],
                    os.path.join(work, "hookgate.log"), env=env, stdout_null=True)
    bench.wait_port(port, p, timeout=180)
    return p, port, p.pid


def measure(procs, name, start, args, secret, template, outdir, tag):
    p, port, pid = start()
    try:
        bad = send_all(port, requests(secret, template, port, args.warmup, tag + "w"))
        if bad:
            raise RuntimeError("%s: %d warm-up answers were not the upstream's 2xx" % (name, bad))
        reqs = requests(secret, template, port, args.requests, tag + "r")
        # idle cost per second (timers, housekeeping), over a short idle window
        control(pid, "zero")
        t0 = time.monotonic()
        time.sleep(args.idle)
        idle_path = dump(pid, outdir, "idle")
        idle_rate = callgrind_total(idle_path) / (time.monotonic() - t0)
        control(pid, "zero")
        t0 = time.monotonic()
        bad = send_all(port, reqs)
        path = dump(pid, outdir, "load")
        elapsed = time.monotonic() - t0
        if bad:
            raise RuntimeError("%s: %d of %d answers were not the upstream's 2xx" % (name, bad, args.requests))
        total = callgrind_total(path)
        net = total - idle_rate * elapsed
        return {"total": total, "idle_rate": idle_rate, "elapsed": elapsed, "per_req": net / args.requests,
                "path": path}
    finally:
        procs.stop(p, grace=60)


def hmac_floor(work, size, rounds):
    exe = os.path.join(work, "hmac_floor")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(bench.BENCH, "hmac_floor.c"), "-lcrypto"], check=True)
    totals = []
    for r in (0, rounds):
        out = os.path.join(work, "hmac.%d" % r)
        subprocess.run(VALGRIND + ["--callgrind-out-file=" + out, exe, str(size), str(r)], check=True,
                       capture_output=True, timeout=600)
        totals.append(callgrind_total(out))
    return (totals[1] - totals[0]) / (rounds * (size + 11))


def profile(path, inclusive, top):
    """The top functions of a callgrind dump, Swift names demangled and shortened."""
    ann = subprocess.run(["callgrind_annotate", "--inclusive=%s" % ("yes" if inclusive else "no"), "--threshold=100",
                          path], capture_output=True, text=True, timeout=300).stdout
    rows = [x for x in ann.splitlines() if re.match(r"^\s*[\d,]+ \(", x)]
    if shutil.which("swift"):
        r = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(rows), capture_output=True,
                           text=True, timeout=120)
        if r.returncode == 0:
            rows = r.stdout.splitlines()
    out = []
    for x in rows:
        x = re.sub(r" \[[^\]]*/([^/\]]+)\]$", r" [\1]", x).replace("???:", "")
        # frames every request passes through (thread start, the event loop) say nothing; the
        # annotator lists them in its self-cost view too
        if re.search(r"PROGRAM TOTALS|clone|start_thread|NSThreadStart|Thread\.main|"
                     r"Gateway\.start|event_base_loop|0x[0-9a-f]+ \[libevent", x):
            continue
        out.append(x[:170])
        if len(out) >= top:
            break
    return out


def main():
    ap = argparse.ArgumentParser(prog="bench/instructions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--body-bytes", type=int, default=0,
                    help="body size (default: the guide's 319-byte event; larger adds line items)")
    ap.add_argument("--requests", type=int, default=0,
                    help="measured requests (default 20000 for small bodies, fewer for big ones: ~64 MB in all)")
    ap.add_argument("--warmup", type=int, default=0, help="requests before counting (default requests/10, ≥ 20)")
    ap.add_argument("--idle", type=float, default=2.0, help="seconds of the idle-cost window (default 2)")
    ap.add_argument("--peers", default="hookgate,nginx-proxy", help="subset of hookgate,nginx-proxy")
    ap.add_argument("--top", type=int, default=15, help="functions of hookgate's profile to print (default 15)")
    ap.add_argument("--no-floor", action="store_true", help="skip the HMAC-SHA256 floor")
    ap.add_argument("--hookgate", default=os.environ.get("HOOKGATE_BIN",
                                                         os.path.join(bench.ROOT, ".build-bench", "release", "hookgate")))
    args = ap.parse_args()
    template = bench.body_template(args.body_bytes)
    body_len = len(template) - len("{ID}") + 26
    if args.requests <= 0:
        args.requests = max(50, min(20000, (64 << 20) // body_len))
    if args.warmup <= 0:
        args.warmup = max(20, args.requests // 10)
    peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    for x in peers:
        if x not in ("hookgate", "nginx-proxy"):
            ap.error("unknown peer %r" % x)
    for tool in ("valgrind", "vgdb", "callgrind_annotate", "nginx", "cc", "objcopy"):
        if not shutil.which(tool):
            ap.error("%s is missing (apt-get install valgrind nginx-light gcc libssl-dev)" % tool)
    if "hookgate" in peers and not os.access(args.hookgate, os.X_OK):
        ap.error("no hookgate binary at %s (bench/run builds it; or set HOOKGATE_BIN)" % args.hookgate)

    # a bound on the whole run: callgrind is ~50x slower than native
    bound = 300 + int(args.requests + args.warmup) * (0.01 + body_len / 2e6) * len(peers)
    def on_alarm(signum, frame):
        raise bench.Timeout("the run exceeded its time bound of %d s" % bound)

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(bound))

    work = os.environ.get("BENCH_WORKDIR") or tempfile.mkdtemp(prefix="hookgate-instr.")
    outdir = os.path.join(work, "callgrind")
    os.makedirs(outdir, exist_ok=True)
    procs = bench.Procs(os.environ.get("BENCH_PIDFILE"))
    secret = "bench-" + os.urandom(24).hex()
    env = dict(os.environ, VECU_WEBHOOK_SECRET=secret)
    tag = os.urandom(2).hex()
    bench.log("bench/instructions: %d-byte bodies, %d requests (+%d warm-up) per peer, time bound %d s"
              % (body_len, args.requests, args.warmup, bound))
    res = {}
    rc = 0
    try:
        _, up_port = bench.start_upstream(procs, work)
        for name in peers:
            bench.log("  %s under callgrind ..." % name)
            if name == "hookgate":
                start = lambda: start_hookgate(procs, work, up_port, outdir, args.hookgate, env,  # noqa: E731
                                               args.requests + args.warmup + 10)
            else:
                start = lambda: start_nginx_proxy(procs, work, up_port, outdir)  # noqa: E731
            res[name] = measure(procs, name, start, args, secret, template, outdir, tag + name[0])
            bench.log("    %s instructions/request (%.1f s, idle %.0f instructions/s subtracted)"
                      % (bench.fmt_int(res[name]["per_req"]), res[name]["elapsed"], res[name]["idle_rate"]))
        floor = None if args.no_floor else hmac_floor(work, 262144, 8)
    except (bench.Timeout, RuntimeError, subprocess.SubprocessError) as e:
        bench.log("bench/instructions: %s" % e)
        rc = 2
    except KeyboardInterrupt:
        bench.log("bench/instructions: interrupted")
        rc = 130
    finally:
        signal.alarm(0)
        procs.stop_all()
    if rc == 0:
        print("\n| peer | body bytes | requests | instructions/request | per body byte | ÷ nginx-proxy |")
        print("|---|---:|---:|---:|---:|---:|")
        ng = res.get("nginx-proxy", {}).get("per_req")
        for name in peers:
            r = res[name]
            print("| %s | %s | %s | %s | %.1f | %s |" % (
                name, bench.fmt_int(body_len), bench.fmt_int(args.requests), bench.fmt_int(r["per_req"]),
                r["per_req"] / body_len, "%.2f" % (r["per_req"] / ng) if ng else "—"))
        if floor is not None:
            print("\nHMAC-SHA256 alone (bench/hmac_floor.c, OpenSSL SHA256_* as hookgate calls it, 256 KiB, "
                  "under callgrind): %.1f instructions per byte" % floor)
        if "hookgate" in res:
            for inclusive in (True, False):
                print("\nhookgate, %s, top %d (callgrind_annotate; instructions over all %s measured requests):"
                      % ("inclusive" if inclusive else "self", args.top, bench.fmt_int(args.requests)))
                for x in profile(res["hookgate"]["path"], inclusive, args.top):
                    print("  " + x)
    if os.environ.get("BENCH_KEEP"):
        bench.log("work files kept in %s" % work)
    elif not os.environ.get("BENCH_WORKDIR"):
        shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
