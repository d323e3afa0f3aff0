#!/usr/bin/env python3
"""Verification cost per signature scheme, beside vecu (bench/README.md, "Cost per scheme").

One hookgate (workers: 1) with a route per scheme. For each scheme one signed request (the guide's
CloudEvents body, ~300 bytes) is delivered once to a recording upstream, then wrk repeats exactly
that request: every repeat is verified (headers parsed, HMAC over the raw body, constant-time
compare, the event id found) and answered as a duplicate from the ledger, without a forward. So the
rows differ only in what each scheme does; hookgate's CPU per request is the figure to compare.

  python3 bench/schemes.py --hookgate .build-bench/release/hookgate [--duration 8] [--rounds 3]

Python 3 standard library and wrk. Loopback only; every child is killed on exit; every wait has a
deadline.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = ('{"id":"evt_bench_0001","source":"vecu.custody-service","type":"custody.vehicle.released",'
        '"specversion":"1.0","time":"2025-01-15T14:30:00Z","datacontenttype":"application/json",'
        '"data":{"_platform":{"correlationId":"corr_abc123","actor":{"actorId":"driver_456",'
        '"actorType":"user"}},"vin":"5XXXX00000XEXMPL0"},"event_id":"Ev0001"}').encode()
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
SW_KEY = b"bench-standard-webhooks-key-0001"
SCHEMES = ["vecu", "standard-webhooks", "stripe", "github", "slack", "shopify", "hmac"]


def hexmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def b64mac(key, msg):
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def signed_headers(scheme, ts):
    k = SECRET.encode()
    if scheme == "vecu":
        return {"X-VECU-Timestamp": str(ts), "X-VECU-Signature": "sha256=" + hexmac(k, b"%d." % ts + BODY)}
    if scheme == "standard-webhooks":
        return {"webhook-id": "msg_0001", "webhook-timestamp": str(ts),
                "webhook-signature": "v1," + b64mac(SW_KEY, b"msg_0001.%d." % ts + BODY)}
    if scheme == "stripe":
        return {"Stripe-Signature": "t=%d,v1=%s" % (ts, hexmac(b"whsec_" + k, b"%d." % ts + BODY))}
    if scheme == "github":
        return {"X-Hub-Signature-256": "sha256=" + hexmac(k, BODY), "X-GitHub-Delivery": "d-0001"}
    if scheme == "slack":
        return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": "v0=" + hexmac(k, b"v0:%d:" % ts + BODY)}
    if scheme == "shopify":
        return {"X-Shopify-Hmac-Sha256": b64mac(k, BODY), "X-Shopify-Webhook-Id": "s-0001"}
    return {"X-Acme-Timestamp": str(ts), "X-Acme-Delivery": "a-0001",
            "X-Acme-Signature": "sha256=" + hexmac(k, b"%d.a-0001." % ts + BODY)}


def route(scheme, upstream_port):
    secret = "whsec_" + base64.b64encode(SW_KEY).decode() if scheme == "standard-webhooks" else SECRET
    if scheme == "stripe":
        secret = "whsec_" + SECRET
    verify = {"scheme": scheme, "secrets": [{"value": secret}]}
    if scheme == "hmac":
        verify.update({"header": "X-Acme-Signature", "prefix": "sha256=", "signed": "{timestamp}.{id}.{body}",
                       "timestamp_header": "X-Acme-Timestamp", "id": "header:X-Acme-Delivery"})
    return {"name": scheme, "path": "/in/" + scheme, "verify": verify,
            "upstream": {"url": "http://127.0.0.1:%d/hook" % upstream_port}}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited before listening on %d" % port)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listened on %d within %.0fs" % (port, timeout))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def post(port, path, headers):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, BODY, headers)
        r = c.getresponse()
        return r.status, r.getheader("X-Hookgate-Duplicate"), r.read()
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hookgate", required=True)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hookgate-schemes-")
    procs = []

    def start(cmd, **kw):
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        procs.append(p)
        return p

    def stop_all(*_):
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(1)))
    try:
        up_port = free_port()
        up = start([sys.executable, os.path.join(ROOT, "Tests", "peers", "upstream.py"), "--port", str(up_port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(up_port, up)
        port = free_port()
        cfg = {"listen": "127.0.0.1:%d" % port, "workers": 1, "routes": [route(s, up_port) for s in SCHEMES]}
        path = os.path.join(work, "hookgate.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f)  # JSON is YAML
        gw = start([args.hookgate, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, gw)
        results = {s: [] for s in SCHEMES}
        for _ in range(args.rounds):
            for scheme in SCHEMES:
                headers = signed_headers(scheme, int(time.time()))
                first = post(port, "/in/" + scheme, headers)
                again = post(port, "/in/" + scheme, headers)
                if first[0] != 200 or again[1] != "true":
                    raise RuntimeError("%s: not delivered then duplicate: %r %r" % (scheme, first, again))
                lua = os.path.join(work, scheme + ".lua")
                with open(lua, "w") as f:
                    f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'
                            % json.dumps(BODY.decode()))
                    for k, v in headers.items():
                        f.write('wrk.headers[%s] = %s\n' % (json.dumps(k), json.dumps(v)))
                before = cpu_seconds(gw.pid)
                out = subprocess.run(["wrk", "-t1", "-c%d" % args.connections, "-d%ds" % args.duration, "-s", lua,
                                      "http://127.0.0.1:%d/in/%s" % (port, scheme)],
                                     capture_output=True, text=True, timeout=args.duration + 30).stdout
                cpu = cpu_seconds(gw.pid) - before
                rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                total = int(re.search(r"(\d+) requests in", out).group(1))
                non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                if non2xx:
                    raise RuntimeError("%s: %s non-2xx answers" % (scheme, non2xx.group(1)))
                results[scheme].append((rate, cpu * 1e6 / max(total, 1)))
        base = statistics.median(us for _, us in results["vecu"])
        print("| scheme | req/s (median) | hookgate CPU µs/request (median) | vs vecu |")
        print("|---|---|---|---|")
        for scheme in SCHEMES:
            rate = statistics.median(r for r, _ in results[scheme])
            us = statistics.median(u for _, u in results[scheme])
            print("| `%s` | %.0f | %.1f | %+.0f%% |" % (scheme, rate, us, (us / base - 1) * 100))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
