#!/usr/bin/env python3
"""An upstream that reads every request with the official CloudEvents SDK, as an application
behind hookgate would.

    python3 cloudevents_upstream.py --port N     # N = 0 picks a free port

Prints ``READY <port>`` once listening on 127.0.0.1. Every POST outside ``/_control/`` is
parsed with the v1 API (``cloudevents.http.from_http``, or ``cloudevents.v1.http.from_http`` in
SDK 2.x) and, when the installed SDK has it, with ``cloudevents.core.bindings.http
.from_http_event``; the id and type each returned (or the error it raised) are recorded and the
request is answered ``200 {"ok":true}``.

    GET  /_control/records   JSON list: {"headers": [[name, value], ...],
                                         "v1": {"id", "type"} | {"error"},
                                         "core": {"id", "type"} | {"error"} | null}
    POST /_control/reset     forget the records
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from cloudevents.v1.http import from_http as v1_from_http  # SDK 2.x
except ImportError:
    from cloudevents.http import from_http as v1_from_http  # SDK 1.x

try:
    from cloudevents.core.bindings.http import HTTPMessage, from_http_event
except ImportError:
    HTTPMessage = from_http_event = None

RECORDS = []
LOCK = threading.Lock()


def _attributes(event):
    get = event.get_attributes if hasattr(event, "get_attributes") else None
    if get is not None:
        attrs = get()
        return {"id": attrs.get("id"), "type": attrs.get("type")}
    return {"id": event.get_id(), "type": event.get_type()}


def _parse(fn, *args):
    try:
        return _attributes(fn(*args))
    except Exception as e:  # the SDK refusing the request is a result too
        return {"error": "%s: %s" % (type(e).__name__, e)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_control/records":
            with LOCK:
                return self._answer(200, list(RECORDS))
        self._answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_control/reset":
            with LOCK:
                RECORDS.clear()
            return self._answer(200, {"ok": True})
        pairs = list(self.headers.items())
        headers = {}
        for k, v in pairs:
            headers[k] = headers[k] + ", " + v if k in headers else v
        record = {"headers": pairs, "v1": _parse(v1_from_http, headers, body), "core": None}
        if from_http_event is not None:
            record["core"] = _parse(from_http_event, HTTPMessage(headers=headers, body=body))
        with LOCK:
            RECORDS.append(record)
        self._answer(200, {"ok": True})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    sys.stdout.write("READY %d\n" % server.server_address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
