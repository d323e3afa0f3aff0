#!/usr/bin/env python3
"""Recording upstream for hookgate's integration tests (standard library only).

    python3 upstream.py --port N        # N = 0 picks a free port

Prints ``READY <port>`` on stdout (flushed) once it is listening on 127.0.0.1.

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
    GET  /_control/mode     current mode
    GET  /_control/records  JSON list of recorded requests
    POST /_control/reset    forget records and stats, back to the default mode
    GET  /_control/stats    {"count", "max_concurrency", "in_flight", "connections"}

HTTP/1.1 keep-alive; every answer has a correct Content-Length.
"""

import argparse
import base64
import json
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
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.mode = dict(DEFAULT_MODE)
        self.records = []
        self.in_flight = 0
        self.max_concurrency = 0
        self.connections = set()
        self.seq = 0


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hookgate-test-upstream/1"

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
        with STATE.lock:
            STATE.seq += 1
            STATE.in_flight += 1
            STATE.max_concurrency = max(STATE.max_concurrency, STATE.in_flight)
            STATE.connections.add(conn_id)
            mode = dict(STATE.mode)
            failing = STATE.mode["fail_next"] > 0
            if failing:
                STATE.mode["fail_next"] -= 1
            STATE.records.append({
                "seq": STATE.seq,
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "request_version": self.request_version,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": base64.b64encode(body).decode("ascii"),
                "connection": conn_id,
            })
        try:
            pause = float(mode.get("hang") or 0) + float(mode.get("delay") or 0)
            if pause > 0:
                time.sleep(pause)
            if mode.get("drop"):
                # Answer nothing; reset the connection (RST via SO_LINGER 0).
                try:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                self.close_connection = True
                return
            if failing:
                status = int(mode.get("fail_status", 500))
                self._send(status, json.dumps({"error": "injected failure", "status": status}))
            else:
                self._send(int(mode["status"]), mode["body"],
                           mode.get("content_type") or "application/json")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with STATE.lock:
                STATE.in_flight -= 1


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    httpd = Server((args.host, args.port), Handler)
    print("READY %d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
