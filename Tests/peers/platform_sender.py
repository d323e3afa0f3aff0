#!/usr/bin/env python3
"""A test sender that behaves like the VECU platform (standard library only).

Each *delivery* of an event is what the platform does for one event:

  * sign every attempt afresh (new X-VECU-Timestamp and X-VECU-Signature, X-VECU-Retry-Count =
    attempts so far), always with the same body bytes;
  * retry on 5xx, 429, a timeout or a connection error, with exponential backoff
    (``backoff * 2**n`` seconds before retry n+1; fast in tests, 20 ms by default), at most
    ``max_attempts`` attempts (6, as the platform);
  * stop on any other answer that is not 2xx (a 4xx other than 429: the app refused it);
  * dead-letter the delivery when every attempt failed.

``run()`` sends many events through a bounded thread pool (each worker thread keeps one
keep-alive connection per gateway), with a share of deliberate duplicate deliveries: a "dup"
event is delivered ``concurrent_copies`` times (2 by default) at the same moment (concurrent
deliveries, each with its own retries) and once more later (queued after every first delivery).
Nothing here decides what is correct; see ``delivery_check.py`` for the reconciliation with the
upstream's records.

Several gateways (replicas behind a load balancer): pass a list of URLs. Each delivery starts on
a replica drawn at random; with ``spread="round_robin"`` (default) attempt n goes to the replica
after the one of attempt n-1, so every retry lands on another replica; with ``spread="random"``
each attempt picks a replica at random. The concurrent copies of a "dup" event start on
consecutive replicas (so on different ones while there are enough), and its later copy on the
next one. ``Attempt.target`` is the index of the URL an attempt went to.

Library:
    s = PlatformSender(url, secret, max_attempts=6, backoff=0.02, timeout=10.0, concurrency=32)
    s = PlatformSender([url1, url2, url3], secret, spread="round_robin")   # replicas
    d = s.deliver(body)                 # one delivery (blocking) -> Delivery
    report = s.run(n_events, dup_share=0.1, id_prefix="evt_")   # -> Report
    report.summary()                    # counts: sent, acknowledged, duplicates, retried, ...

CLI:
    python3 platform_sender.py --url URL (--secret-env NAME | --secret S) [--events N]
        [--concurrency C] [--dup-share F] [--max-attempts 6] [--backoff 0.02] [--timeout 10]
        [--json-out FILE]
prints the summary as JSON; exit 0 when nothing was dead-lettered or refused.
"""
import argparse
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sender  # noqa: E402  (Tests/peers/sender.py)

DUPLICATE_BODY = b'{"duplicate":true}'


class Attempt:
    __slots__ = ("number", "status", "error", "duplicate", "started", "seconds", "body", "target", "retry_after")

    def __init__(self, number, status=None, error=None, duplicate=False, started=0.0, seconds=0.0, body=b"",
                 target=0, retry_after=None):
        self.number = number
        self.target = target      # index of the gateway URL this attempt went to
        self.retry_after = retry_after  # the Retry-After header of the answer, if any
        self.status = status      # HTTP status, or None when no answer came
        self.error = error        # "timeout" / "connection: <exc>" when no answer came
        self.duplicate = duplicate
        self.started = started
        self.seconds = seconds
        self.body = body

    def as_dict(self):
        return {"n": self.number, "status": self.status, "error": self.error, "duplicate": self.duplicate,
                "seconds": round(self.seconds, 4), "body": self.body[:200].decode("utf-8", "replace"),
                "target": self.target}

    @property
    def error_code(self):
        """The "error" field of a JSON error answer from hookgate (None otherwise)."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return None
        return doc.get("error") if isinstance(doc, dict) and isinstance(doc.get("error"), str) else None

    def describe(self):
        if self.status is not None:
            text = "%d%s" % (self.status, " dup" if self.duplicate else "")
            if self.status >= 400 and self.error_code:
                text += " " + self.error_code
        else:
            text = self.error or "?"
        return text + ("@%d" % self.target if self.target else "")


class Delivery:
    """One platform delivery of one event: its attempts and how it ended."""

    def __init__(self, event_id, kind):
        self.event_id = event_id
        self.kind = kind          # "single", "concurrent" (one of two at once), "later"
        self.attempts = []
        self.outcome = None       # "acknowledged", "refused" (non-retryable 4xx), "dead_letter"

    @property
    def acknowledged(self):
        return self.outcome == "acknowledged"

    @property
    def duplicate(self):
        return self.acknowledged and self.attempts[-1].duplicate

    def as_dict(self):
        return {"id": self.event_id, "kind": self.kind, "outcome": self.outcome,
                "attempts": [a.as_dict() for a in self.attempts]}

    def describe(self):
        return "%s [%s] %s: %s" % (self.event_id, self.kind, self.outcome,
                                   ", ".join(a.describe() for a in self.attempts))


class Report:
    def __init__(self, deliveries, seconds):
        self.deliveries = deliveries
        self.seconds = seconds

    @property
    def event_ids(self):
        return {d.event_id for d in self.deliveries}

    @property
    def acknowledged_ids(self):
        return {d.event_id for d in self.deliveries if d.acknowledged}

    def summary(self):
        ds = self.deliveries
        attempts = sum(len(d.attempts) for d in ds)
        statuses = {}
        for d in ds:
            for a in d.attempts:
                key = str(a.status) if a.status is not None else (a.error or "?").split(":")[0]
                statuses[key] = statuses.get(key, 0) + 1
        return {
            "events": len(self.event_ids),
            "sent": len(ds),                                   # deliveries
            "attempts": attempts,
            "acknowledged": sum(1 for d in ds if d.acknowledged),
            "duplicates": sum(1 for d in ds if d.duplicate),   # acknowledged by hookgate as a duplicate
            "retried": sum(1 for d in ds if len(d.attempts) > 1),
            "retries": attempts - len(ds),
            "refused": sum(1 for d in ds if d.outcome == "refused"),
            "dead_lettered": sum(1 for d in ds if d.outcome == "dead_letter"),
            "attempt_statuses": dict(sorted(statuses.items())),
            "seconds": round(self.seconds, 2),
        }


class _Pacer:
    """Hands out start times `1/rate` seconds apart (a steady load instead of a burst)."""

    def __init__(self, rate):
        self.interval = 1.0 / rate
        self.next = None
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            now = time.monotonic()
            slot = now if self.next is None else max(now, self.next)
            self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def retryable(status):
    return status == 429 or 500 <= status <= 599


class PlatformSender:
    def __init__(self, url, secret, max_attempts=6, backoff=0.02, timeout=10.0, concurrency=32,
                 extra_headers=None, spread="round_robin", concurrent_copies=2):
        urls = [url] if isinstance(url, str) else list(url)
        if not urls or spread not in ("round_robin", "random") or concurrent_copies < 2:
            raise ValueError("need at least one URL, spread round_robin|random, concurrent_copies >= 2")
        self.urls = urls
        self.url = urls[0]
        self.targets = []
        for one in urls:
            u = urllib.parse.urlsplit(one)
            self.targets.append((u.hostname, u.port or 80, (u.path or "/") + ("?" + u.query if u.query else "")))
        self.host, self.port, self.path = self.targets[0]
        self.spread = spread
        self.concurrent_copies = concurrent_copies
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout
        self.concurrency = concurrency
        self.extra_headers = dict(extra_headers or {})
        self._local = threading.local()
        self._lock = threading.Lock()
        self.completed = 0          # deliveries finished (progress, for tests that act mid-run)
        self.attempts_made = 0
        self._stop = threading.Event()

    # ---- one attempt ----------------------------------------------------------------------
    def _connections(self):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        return conns

    def _connection(self, target):
        conns = self._connections()
        conn = conns.get(target)
        if conn is None:
            host, port, _ = self.targets[target]
            conn = conns[target] = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return conn

    def _drop_connection(self, target):
        conn = self._connections().pop(target, None)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def attempt(self, body, number, target=0):
        """One signed POST (fresh timestamp) to gateway URL number `target`; returns an Attempt."""
        headers = sender.delivery_headers(body, self.secret, ts=int(time.time()), retry_count=number - 1)
        headers.update(self.extra_headers)
        headers["Content-Length"] = str(len(body))
        started = time.monotonic()
        conn = self._connection(target)
        try:
            conn.putrequest("POST", self.targets[target][2], skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                self._drop_connection(target)
            dup = (resp.getheader("X-Hookgate-Duplicate") or "").lower() == "true"
            return Attempt(number, status=resp.status, duplicate=dup, started=started,
                           seconds=time.monotonic() - started, body=data, target=target,
                           retry_after=resp.getheader("Retry-After"))
        except (socket.timeout, TimeoutError):
            self._drop_connection(target)
            return Attempt(number, error="timeout", started=started, seconds=time.monotonic() - started,
                           target=target)
        except (OSError, http.client.HTTPException) as e:
            self._drop_connection(target)
            return Attempt(number, error="connection: %s" % type(e).__name__, started=started,
                           seconds=time.monotonic() - started, target=target)
        finally:
            with self._lock:
                self.attempts_made += 1

    # ---- one delivery ---------------------------------------------------------------------
    def _target(self, first, n):
        """The gateway URL index for attempt n of a delivery that starts on `first`."""
        if self.spread == "random" and n > 1:
            rng = getattr(self._local, "rng", None)
            if rng is None:
                rng = self._local.rng = random.Random(threading.get_ident())
            return rng.randrange(len(self.targets))
        return (first + n - 1) % len(self.targets)

    def deliver(self, body, event_id=None, kind="single", first_target=0):
        if event_id is None:
            event_id = json.loads(body)["id"]
        d = Delivery(event_id, kind)
        for n in range(1, self.max_attempts + 1):
            if n > 1:
                time.sleep(self.backoff * (2 ** (n - 2)))
            a = self.attempt(body, n, self._target(first_target, n))
            d.attempts.append(a)
            if a.status is not None and 200 <= a.status <= 299:
                d.outcome = "acknowledged"
                break
            if a.status is not None and not retryable(a.status):
                d.outcome = "refused"
                break
        else:
            d.outcome = "dead_letter"
        with self._lock:
            self.completed += 1
        return d

    def _deliver_twice_at_once(self, body, event_id, first_target=0):
        """`concurrent_copies` deliveries of the same event started together (all but one on
        helper threads), each starting on the next gateway URL."""
        copies = self.concurrent_copies
        start = threading.Barrier(copies, timeout=10)
        out = []

        def helper(target):
            try:
                start.wait()
            except threading.BrokenBarrierError:
                pass
            out.append(self.deliver(body, event_id, "concurrent", target))

        helpers = [threading.Thread(target=helper, args=((first_target + i) % len(self.targets),), daemon=True)
                   for i in range(1, copies)]
        for t in helpers:
            t.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        mine = self.deliver(body, event_id, "concurrent", first_target)
        for t in helpers:
            t.join(timeout=self.max_attempts * (self.timeout + 1) + 60)
        return [mine] + out

    # ---- a workload -------------------------------------------------------------------------
    def run(self, n_events, dup_share=0.1, id_prefix=None, seed=None, later_delay=0.0, rate=None, types=None):
        """Delivers n_events new events; a dup_share of them twice at once and once more later.
        rate: start at most this many deliveries per second (the copies of a "dup" event sent at
        once count as one), so that a fault injected mid-run meets a steady load.
        `types`: event types given to the events in turn (default: make_event's one).
        Returns a Report with every delivery."""
        rng = random.Random(seed)
        prefix = id_prefix or "evt_%s_" % uuid.uuid4().hex[:8]
        events = []
        for i in range(n_events):
            eid = "%s%06d" % (prefix, i)
            kind = {"type": types[i % len(types)]} if types else {}
            events.append((eid, sender.make_event(id=eid, **kind), rng.random() < dup_share))
        first = [(e, b, dup) for e, b, dup in events]
        rng.shuffle(first)
        later = [(e, b) for e, b, dup in events if dup]
        # where each event's deliveries start (its own generator: one gateway draws nothing)
        placement = random.Random(seed if seed is None else seed ^ 0x5EED)
        n = len(self.targets)
        starts = {e: (placement.randrange(n) if n > 1 else 0) for e, _, _ in events}
        pacer = _Pacer(rate) if rate else None

        def paced(fn):
            def go(*args):
                if pacer is not None:
                    pacer.wait()
                return fn(*args)
            return go

        t0 = time.monotonic()
        results = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="platform") as pool:
            futures = [pool.submit(paced(self._deliver_twice_at_once if dup else
                                         (lambda b, e, t: [self.deliver(b, e, "single", t)])), b, e, starts[e])
                       for e, b, dup in first]
            if later_delay:
                time.sleep(later_delay)
            futures += [pool.submit(paced(lambda b, e, t: [self.deliver(b, e, "later", t)]), b, e,
                                    (starts[e] + self.concurrent_copies) % n)
                        for e, b in later]
            for f in futures:
                results.extend(f.result())
        return Report(results, time.monotonic() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description="deliver events like the VECU platform")
    ap.add_argument("--url", required=True, action="append",
                    help="a gateway URL; repeat for replicas (retries go to the next one)")
    ap.add_argument("--spread", choices=("round_robin", "random"), default="round_robin")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--secret-env")
    g.add_argument("--secret")
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--dup-share", type=float, default=0.1)
    ap.add_argument("--max-attempts", type=int, default=6)
    ap.add_argument("--backoff", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    secret = os.environ[args.secret_env] if args.secret_env else args.secret
    s = PlatformSender(args.url, secret, max_attempts=args.max_attempts, backoff=args.backoff,
                       timeout=args.timeout, concurrency=args.concurrency, spread=args.spread)
    report = s.run(args.events, dup_share=args.dup_share)
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"summary": summary, "deliveries": [d.as_dict() for d in report.deliveries]}, f)
    return 0 if summary["dead_lettered"] == 0 and summary["refused"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
