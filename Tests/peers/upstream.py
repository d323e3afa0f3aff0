#!/usr/bin/env python3
"""Recording upstream for hookgate's integration tests (standard library only).

    python3 upstream.py --port N        # N = 0 picks a free port
    python3 upstream.py --port N --record-file F.jsonl [--lean]

Prints ``READY <port>`` on stdout (flushed) once it is listening on 127.0.0.1.

--record-file: every recorded request is also appended to F as JSON lines (append-only, one
``write`` per line, so a SIGKILL loses nothing already answered): first an ``answer`` line written
*before* the answer goes out ({"seq", "pid", "time", "method", "path", "id", "source", "status",
"fault", "phase": "answer"}; status null for a drop), then a ``done`` line ({"seq", "phase":
"done", "client_gone"}) once the answer was written. A record without its done line was cut off
(the process was killed). On start, an existing file is read back: /_control/records keeps
answering with the records of earlier runs, and seq numbers continue after them.
--lean: keep only the summary fields in memory (no headers/body), for long soaks.

Every request outside ``/_control/`` is recorded (method, path, header pairs in
arrival order with duplicates kept, base64 body, connection id = client port)
and answered according to the current mode.  Control endpoints:

    POST /_control/mode     {"status": 200, "body": "...", "hang": 0.0, "delay": 0.0,
                             "fail_next": N, "fail_status": 500,
                             "content_type": "application/json", "drop": false}
                            Fields not given take their default values.
                            hang / delay: seconds to sleep before answering.
                            fail_next: answer fail_status for the next N requests.
                            drop: close the connection without answering (a reset).
                            Random faults, each drawn per request (r = uniform [0,1)):
                              random_fail: p    answer one of random_fail_statuses ([500])
                              random_drop: p    reset the connection; of those, a fraction
                                                drop_partial first writes part of the answer
                                                (half of them cut in the head, half in the body)
                              random_hang: p    sleep random_hang_seconds (2.0), then answer
                              seed: N           reseed the random generator (reproducible runs)
    GET  /_control/mode     current mode
    GET  /_control/records  JSON list of recorded requests
    POST /_control/reset    forget records and stats, back to the default mode
    GET  /_control/stats    {"count", "max_concurrency", "in_flight", "connections"}

Each record also carries what was answered: ``id``/``source`` (from a JSON body, else null),
``status`` (the status answered; null for a drop), ``fault`` (null, "fail", "fail_next" ... see
below), ``done`` (the answer was written) and ``client_gone`` (the client had closed the
connection before the answer, e.g. it timed out while we hung or delayed).
fault is one of: null (a plain answer from the mode's status), "fail" (fail_next or
random_fail), "drop", "drop_partial", "hang" (random_hang, or a mode hang > 0).

HTTP/1.1 keep-alive; every answer has a correct Content-Length.
"""

import argparse
import base64
import json
import os
import random
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_MODE = {
    "status": 200,
    "body": '{"ok":true}',
    "content_type": "application/json",
    "hang": 0.0,
    "delay": 0.0,
    "fail_next": 0,
    "fail_status": 500,
    "drop": False,
    "random_fail": 0.0,
    "random_fail_statuses": [500],
    "random_drop": 0.0,
    "drop_partial": 0.0,
    "random_hang": 0.0,
    "random_hang_seconds": 2.0,
    "seed": None,
}

LEAN_KEYS = ("seq", "pid", "time", "method", "path", "id", "source", "status", "fault", "done",
             "client_gone", "connection")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.record_path = None
        self.record_fd = None
        self.lean = False
        self.rng = random.Random()
        self.reset()

    def reset(self):
        self.mode = dict(DEFAULT_MODE)
        self.records = []
        self.in_flight = 0
        self.max_concurrency = 0
        self.connections = set()
        self.seq = 0
        self.by_seq = {}
        if self.record_path:
            self._load_records()

    def _load_records(self):
        """Reads an existing record file back (records of earlier runs of this upstream)."""
        try:
            with open(self.record_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        for line in data.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill (cannot happen with one write per line, but be safe)
            if entry.get("phase") == "answer":
                rec = {k: entry.get(k) for k in LEAN_KEYS}
                rec["done"] = False
                rec["client_gone"] = False
                self.records.append(rec)
                self.by_seq[rec["seq"]] = rec
            elif entry.get("phase") == "done" and entry.get("seq") in self.by_seq:
                rec = self.by_seq[entry["seq"]]
                rec["done"] = True
                rec["client_gone"] = bool(entry.get("client_gone"))
        self.seq = max(self.by_seq, default=0)

    def write_line(self, obj):
        if self.record_fd is not None:
            os.write(self.record_fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())


STATE = State()


def _peer_closed(sock):
    """True if the client has closed its end (EOF readable) -- it gave up waiting for us."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _event_fields(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    ident, source = doc.get("id"), doc.get("source")
    return (ident if isinstance(ident, str) else None), (source if isinstance(source, str) else None)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hookgate-test-upstream/1"
    # The head and the body are written with two send()s; with Nagle on, the body waits for the
    # client's delayed ACK (40 ms on Linux), capping a kept-alive connection at ~25 answers/s.
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # keep stdout for READY only
        pass

    # ---- body reading -------------------------------------------------
    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # CRLF after chunk
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        return b""

    def _send(self, status, body, content_type="application/json", extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _json(self, status, obj):
        self._send(status, json.dumps(obj))

    # ---- dispatch -----------------------------------------------------
    def _handle(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if self.path.startswith("/_control/"):
            self._control(body)
        else:
            self._record_and_answer(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _control(self, body):
        path = self.path.split("?", 1)[0]
        if path == "/_control/mode" and self.command == "POST":
            try:
                given = json.loads(body or b"{}")
                assert isinstance(given, dict)
            except Exception:
                return self._json(400, {"error": "bad mode json"})
            unknown = set(given) - set(DEFAULT_MODE)
            if unknown:
                return self._json(400, {"error": "unknown mode keys %s" % sorted(unknown)})
            with STATE.lock:
                STATE.mode = dict(DEFAULT_MODE, **given)
                if STATE.mode.get("seed") is not None:
                    STATE.rng.seed(STATE.mode["seed"])
                mode = dict(STATE.mode)
            return self._json(200, mode)
        if path == "/_control/mode" and self.command == "GET":
            with STATE.lock:
                return self._json(200, dict(STATE.mode))
        if path == "/_control/records" and self.command == "GET":
            with STATE.lock:
                recs = list(STATE.records)
            return self._json(200, recs)
        if path == "/_control/reset" and self.command == "POST":
            with STATE.lock:
                if STATE.record_fd is not None:
                    os.ftruncate(STATE.record_fd, 0)
                STATE.reset()
            return self._json(200, {"reset": True})
        if path == "/_control/stats" and self.command == "GET":
            with STATE.lock:
                stats = {
                    "count": len(STATE.records),
                    "max_concurrency": STATE.max_concurrency,
                    "in_flight": STATE.in_flight,
                    "connections": len(STATE.connections),
                }
            return self._json(200, stats)
        return self._json(404, {"error": "unknown control endpoint"})

    def _record_and_answer(self, body):
        conn_id = self.client_address[1]
        event_id, source = _event_fields(body)
        with STATE.lock:
            STATE.seq += 1
            seq = STATE.seq
            STATE.in_flight += 1
            STATE.max_concurrency = max(STATE.max_concurrency, STATE.in_flight)
            STATE.connections.add(conn_id)
            mode = dict(STATE.mode)
            failing = STATE.mode["fail_next"] > 0
            if failing:
                STATE.mode["fail_next"] -= 1
            # one uniform draw decides this request's random fault, if any
            r = STATE.rng.random()
            partial = STATE.rng.random()
            choice = STATE.rng.random()
            pause = float(mode.get("hang") or 0) + float(mode.get("delay") or 0)
            fault = None
            status = int(mode["status"])
            drop = bool(mode.get("drop"))
            p_fail = float(mode.get("random_fail") or 0)
            p_drop = float(mode.get("random_drop") or 0)
            p_hang = float(mode.get("random_hang") or 0)
            if float(mode.get("hang") or 0) > 0:
                fault = "hang"
            if failing:
                fault, status = "fail", int(mode.get("fail_status", 500))
            elif r < p_fail:
                statuses = mode.get("random_fail_statuses") or [500]
                fault, status = "fail", int(statuses[int(choice * len(statuses)) % len(statuses)])
            elif r < p_fail + p_drop:
                drop = True
            elif r < p_fail + p_drop + p_hang:
                fault = "hang"
                pause += float(mode.get("random_hang_seconds") or 0)
            if drop:
                fault = "drop_partial" if partial < float(mode.get("drop_partial") or 0) else "drop"
                status = None
            record = {
                "seq": seq,
                "pid": os.getpid(),
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "id": event_id,
                "source": source,
                "status": status,
                "fault": fault,
                "done": False,
                "client_gone": False,
                "connection": conn_id,
            }
            STATE.write_line(dict({k: record[k] for k in LEAN_KEYS if k not in ("done", "client_gone")},
                                  phase="answer"))
            if not STATE.lean:
                record.update({
                    "request_version": self.request_version,
                    "headers": [[k, v] for k, v in self.headers.items()],
                    "body": base64.b64encode(body).decode("ascii"),
                })
            STATE.records.append(record)
        client_gone = False
        try:
            if pause > 0:
                time.sleep(pause)
                client_gone = _peer_closed(self.connection)
            if drop:
                if fault == "drop_partial":
                    # part of an answer, then a reset: cut in the head or in the body
                    whole = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 11\r\n\r\n{\"ok\":true}")
                    cut = whole.index(b"\r\n\r\n") + 4 + 5 if choice < 0.5 else 20
                    try:
                        self.connection.sendall(whole[:cut])
                    except OSError:
                        pass
                # Answer nothing (more); reset the connection (RST via SO_LINGER 0).
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                self.close_connection = True
            elif fault == "fail":
                self._send(status, json.dumps({"error": "injected failure", "status": status}))
            else:
                self._send(status, mode["body"], mode.get("content_type") or "application/json")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with STATE.lock:
                STATE.in_flight -= 1
                record["done"] = True
                record["client_gone"] = client_gone
                STATE.write_line({"seq": seq, "phase": "done", "client_gone": client_gone})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--record-file", help="append every record to this JSON-lines file (kept across restarts)")
    ap.add_argument("--lean", action="store_true", help="keep no headers/bodies in memory")
    args = ap.parse_args(argv)
    if args.record_file:
        with STATE.lock:
            STATE.record_path = args.record_file
            STATE.reset()
            STATE.record_fd = os.open(args.record_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    STATE.lean = args.lean
    serve(Server((args.host, args.port), Handler))


def serve(httpd):
    """Announces the port on stdout (READY <port>), then serves until interrupted."""
    print("READY %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
