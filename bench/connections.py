#!/usr/bin/env python3
"""Memory per client connection and per request in flight (issue 14), loopback only, bounded.

  python3 bench/connections.py [--hookgate BIN] [--connections 2000] [--in-flight 1000]

Starts hookgate (`workers: 1`, memory ledger) in front of an upstream written here that holds
every request until told to answer, then measures hookgate's RSS (VmRSS, and RssAnon: the part
that is the gateway's own memory) at four points:

  idle           after start, no connection
  connections    N idle keep-alive client connections, each having completed one request (the
                 same event each time, so the ledger holds one id)
  in flight      M more connections, each with one signed 319-byte event sent and forwarded,
                 the upstream holding all M
  released       the upstream answered all M, every client read its answer

and prints bytes per idle connection ((connections - idle) / N) and per request in flight
((in flight - connections) / M, which includes that request's client connection, its upstream
connection and both sides' buffers). The time bound is 120 s.
"""
import argparse
import asyncio
import hmac
import os
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class HoldingUpstream:
    """HTTP/1.1 upstream that reads each request and answers 200 only after `release()`."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.released = None
        self.held = 0
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.released = asyncio.Event()

        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    await reader.readexactly(length)
                    self.held += 1
                    if b"X-Hold: 1" in head or b"x-hold: 1" in head.lower():
                        await self.released.wait()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()

        server = self.loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def release(self):
        self.loop.call_soon_threadsafe(self.released.set)


def signed(secret, eid, hold, port):
    ts = str(int(time.time()))
    body = bench.BODY_TEMPLATE.replace("{ID}", eid).encode()
    sig = hmac.digest(secret.encode(), ts.encode() + b"." + body, "sha256").hex()
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            "X-VECU-Event-Type: custody.vehicle.released\r\nX-VECU-Retry-Count: 0\r\nX-VECU-Timestamp: %s\r\n"
            "X-VECU-Event-ID: %s\r\nX-VECU-Signature: sha256=%s\r\n%s\r\n"
            % (bench.PATH, port, len(body), ts, eid, sig, "X-Hold: 1\r\n" if hold else "")).encode() + body


def read_answer(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before an answer")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        rest += s.recv(65536)
    status = int(head.split(b" ", 2)[1])
    return status


def rss(pid):
    return bench.proc_status_kib(pid, "VmRSS"), bench.proc_status_kib(pid, "RssAnon")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hookgate", default=os.environ.get("HOOKGATE_BIN",
                                                         os.path.join(bench.ROOT, ".build-bench", "release", "hookgate")))
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--in-flight", type=int, default=1000)
    args = ap.parse_args()
    if not os.access(args.hookgate, os.X_OK):
        ap.error("no hookgate binary at %s (bench/run builds it; or set HOOKGATE_BIN)" % args.hookgate)
    def on_alarm(signum, frame):
        raise bench.Timeout("120 s bound")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(120)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (args.connections + args.in_flight) + 200
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))

    work = tempfile.mkdtemp(prefix="hookgate-conn.")
    procs = bench.Procs(None)
    secret = "bench-" + os.urandom(24).hex()
    up = HoldingUpstream()
    port = bench.free_port()
    conf = os.path.join(work, "hookgate.yaml")
    with open(conf, "w") as f:
        f.write(bench.hookgate_config(port, up.port, 1, 100000).replace(
            "max_connections: 64", "max_connections: %d" % (args.in_flight + 16)))
    env = dict(os.environ, VECU_WEBHOOK_SECRET=secret)
    p = procs.start("hookgate", [args.hookgate, "serve", "--config", conf], os.path.join(work, "hookgate.log"),
                    env=env, stdout_null=True)
    socks = []
    try:
        bench.wait_port(port, p)
        time.sleep(1.0)
        points = {"idle": rss(p.pid)}
        tag = os.urandom(3).hex()
        for n in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            # one event for all of them (the first forwarded, the rest duplicates): the ledger
            # holds one id, so the figure is the connections' own
            s.sendall(signed(secret, "idle-%s" % tag, False, port))
            if read_answer(s) != 200:
                raise RuntimeError("an idle connection's request was not answered 200")
            socks.append(s)
        time.sleep(1.0)
        points["connections"] = rss(p.pid)
        held = []
        base = up.held
        for n in range(args.in_flight):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(signed(secret, "held-%s-%07d" % (tag, n), True, port))
            held.append(s)
        deadline = time.monotonic() + 60
        while up.held < base + args.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        if up.held < base + args.in_flight:
            raise RuntimeError("only %d of %d held requests reached the upstream" % (up.held - base, args.in_flight))
        time.sleep(1.0)
        points["in flight"] = rss(p.pid)
        up.release()
        bad = sum(1 for s in held if read_answer(s) != 200)
        if bad:
            raise RuntimeError("%d held requests were not answered 200" % bad)
        time.sleep(1.0)
        points["released"] = rss(p.pid)
        socks += held
    except (bench.Timeout, RuntimeError, OSError) as e:
        print("bench/connections.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        for s in socks:
            s.close()
        procs.stop_all()
    print("| point | VmRSS KiB | RssAnon KiB |")
    print("|---|---:|---:|")
    for k, (v, a) in points.items():
        print("| %s | %s | %s |" % (k, bench.fmt_int(v), bench.fmt_int(a)))
    per_conn = (points["connections"][0] - points["idle"][0]) * 1024 / args.connections
    per_req = (points["in flight"][0] - points["connections"][0]) * 1024 / args.in_flight
    print("\n%d idle keep-alive connections: %.0f bytes each; %d requests in flight (client and upstream "
          "connection each): %.0f bytes each (VmRSS)" % (args.connections, per_conn, args.in_flight, per_req))
    return 0


if __name__ == "__main__":
    sys.exit(main())
