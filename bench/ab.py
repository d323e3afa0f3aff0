#!/usr/bin/env python3
"""bench/ab: before/after for a change on the request path. Several hookgate binaries under the
same signed load, rounds interleaved (A, B, A, B, ...), CPU time per answered request as the
measure: on a machine whose speed drifts, CPU per request moves far less than req/s.

    bench/ab [--rounds N] [--duration S] BINARY_A BINARY_B [BINARY_C ...]

hookgate (workers: 1, the configuration of bench/run's hookgate-1) is pinned to CPU 0; wrk and the
nginx upstream run on the other CPUs, so the binaries do not share their core with the load.
Needs wrk and nginx (bench/run installs them). Loopback only; every child is killed on exit.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(prog="bench/ab", description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="+", help="hookgate binaries to compare (the first is the reference)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--duration", type=int, default=5, help="seconds of load per binary and round (default 5)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    args = ap.parse_args()
    for b in args.binaries:
        if not os.access(b, os.X_OK):
            ap.error("not an executable: %s" % b)
    for tool in ("wrk", "nginx", "taskset"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            ap.error("%s is missing (bench/run installs wrk and nginx)" % tool)
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2
    if pinned:
        os.sched_setaffinity(0, set(cpus[1:]))  # wrk and the upstream inherit this
    # every run ends, whatever happens: a whole-run bound, like bench/run's
    bound = args.rounds * len(args.binaries) * (args.duration + 40) + 120

    def on_alarm(signum, frame):
        raise bench.Timeout("bench/ab ran over %d s" % bound)

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(bound)

    work = tempfile.mkdtemp(prefix="hookgate-ab.")
    secret = "bench-ab-secret-" + os.urandom(16).hex()
    env = dict(os.environ, VECU_WEBHOOK_SECRET=secret)
    procs = bench.Procs(None)
    lists = bench.EventLists(work, secret, 2)
    per_thread = int(60000 * args.duration / 2) + 1
    results = {b: [] for b in args.binaries}
    try:
        upstream, up_port = bench.start_upstream(procs, work)
        bench.log("bench/ab: %d rounds x %d s; hookgate %s" % (
            args.rounds, args.duration, "on CPU %d, wrk and upstream on CPUs %s" % (cpus[0], cpus[1:]) if pinned
            else "unpinned (one CPU)"))
        for rnd in range(1, args.rounds + 1):
            lists.new_timestamp()  # fresh ids and a fresh timestamp each round: nothing is a duplicate
            prefix = lists.write("r%d" % rnd, per_thread)
            for b in args.binaries:
                port = bench.free_port()
                conf = os.path.join(work, "hookgate-%d.yaml" % port)
                with open(conf, "w") as f:
                    f.write(bench.hookgate_config(port, up_port, 1, 2000000))
                cmd = (["taskset", "-c", str(cpus[0])] if pinned else []) + [b, "serve", "--config", conf]
                p = procs.start("hookgate", cmd, os.path.join(work, "hookgate-%d.log" % port), env=env, stdout_null=True)
                try:
                    bench.wait_port(port, p)
                    r = bench.run_wrk(procs, "http://127.0.0.1:%d%s" % (port, bench.PATH), prefix, args.duration,
                                      args.connections, 2, "cycle", os.path.join(work, "wrk.log"),
                                      probe=lambda: bench.user_system_seconds(p.pid))
                finally:
                    procs.stop(p)
                bad = r["non2xx"] + r["socket_errors"]
                if bad > r["requests"] // 1000:
                    raise RuntimeError("%s: %d of %d answers were errors" % (b, bad, r["requests"]))
                user, system = (x / r["rps"] * 1e6 if r["rps"] else float("nan") for x in r["probe"])
                results[b].append((user + system, r["rps"], user, system))
                bench.log("round %d  %-40s %7.1f µs/req (user %.1f, kernel %.1f)  %9s req/s"
                          % (rnd, b, user + system, user, system, bench.fmt_int(r["rps"])))
    finally:
        procs.stop_all()
        signal.alarm(0)
        if os.environ.get("BENCH_KEEP"):
            bench.log("work files kept in %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    ref = statistics.median(x[0] for x in results[args.binaries[0]])
    print("\n| binary | CPU µs/req (median) | user | kernel | req/s (median) | CPU ÷ first | µs/req per round |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for b in args.binaries:
        rows = results[b]
        us = statistics.median(x[0] for x in rows)
        print("| %s | %.1f | %.1f | %.1f | %s | %.2f | %s |" % (
            b, us, statistics.median(x[2] for x in rows), statistics.median(x[3] for x in rows),
            bench.fmt_int(statistics.median(x[1] for x in rows)), us / ref, " / ".join("%.1f" % x[0] for x in rows)))


if __name__ == "__main__":
    main()
