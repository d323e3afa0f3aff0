#!/usr/bin/env python3
"""A local HTTPS stand-in of the platform's subscription API (standard library only).

    python3 subscription_api.py --port N --cert C --key K --token T

Prints ``READY <port>`` once listening on 127.0.0.1 (TLS only). It follows the guide's step 1
and 2 exactly and checks every request:

  POST /event-relay/subscriptions
      Authorization: Bearer <token>     (else 401 {"message": "invalid or missing token"})
      Content-Type: application/json    (else 415)
      {"url": "https://...", "authType": "HMAC_SHA256", "authConfig": {"secret": "<32+ chars>"},
       "eventFilters": {"productGroups"|"patterns"|"include"|"exclude": [str, ...]}}
      exactly these keys (else 400 {"message": ...}); a URL with an active subscription: 409.
      -> 201 {"id", "subscriberId", "url", "authType", "authConfig": {"secret", "secretArn"},
              "eventFilters", "status": "active"}   (the secret is the one sent, unless the mode
              says `answer_secret`)
  GET    /event-relay/subscriptions        -> 200 [ {id, subscriberId, url, authType, eventFilters, status} ]
                                              (never a secret: the guide returns it only once)
  DELETE /event-relay/subscriptions/<id>   -> 204, or 404 {"message": "no such subscription"}

Control (no TLS client auth, loopback only):
  POST /_control/mode {"status": 403, "body": {...}, "hang": 0.0, "trickle": 0.0, "answer_secret": "...",
                       "omit_secret": false}      force the next answers (fields not given: defaults);
                                                 trickle: seconds between the body's bytes
  GET  /_control/requests   every request: method, path, headers (Authorization redacted to
                            "Bearer <ok>" / "Bearer <wrong>"), json body, answered status
  GET  /_control/subscriptions   the stored subscriptions, secrets included (for the tests)
"""
import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COLLECTION = "/event-relay/subscriptions"
FILTER_NAMES = {"productGroups", "patterns", "include", "exclude"}


class State:
    def __init__(self, token):
        self.token = token
        self.lock = threading.Lock()
        self.mode = {}
        self.requests = []
        self.subscriptions = {}
        self.counter = 0


def validate_create(doc):
    """None when `doc` is the guide's request, else the problem."""
    if not isinstance(doc, dict):
        return "the body must be a JSON object"
    keys = set(doc)
    if keys != {"url", "authType", "authConfig", "eventFilters"}:
        return "expected exactly url, authType, authConfig, eventFilters; got %s" % sorted(keys)
    if not isinstance(doc["url"], str) or not doc["url"].startswith("https://"):
        return "url must be an https:// URL"
    if doc["authType"] != "HMAC_SHA256":
        return "authType must be HMAC_SHA256"
    auth = doc["authConfig"]
    if not isinstance(auth, dict) or set(auth) != {"secret"}:
        return "authConfig must hold exactly secret"
    if not isinstance(auth["secret"], str) or len(auth["secret"]) < 32:
        return "authConfig.secret must be at least 32 characters"
    filters = doc["eventFilters"]
    if not isinstance(filters, dict):
        return "eventFilters must be an object"
    for name, values in filters.items():
        if name not in FILTER_NAMES:
            return "unknown filter %r (productGroups, patterns, include, exclude)" % name
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            return "eventFilters.%s must be a non-empty list of non-empty strings" % name
    return None


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _answer(self, status, obj=None):
            mode = state.mode
            if not self.path.startswith("/_control/") and mode.get("hang"):
                time.sleep(mode["hang"])
            data = b"" if obj is None else json.dumps(obj).encode()
            self.send_response(status)
            if obj is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if mode.get("trickle") and not self.path.startswith("/_control/"):
                try:
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(mode["trickle"])
                except OSError:
                    pass
            else:
                self.wfile.write(data)
            return status

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _record(self, raw, status):
            auth = self.headers.get("Authorization")
            shown = None if auth is None else ("Bearer <ok>" if auth == "Bearer " + state.token else "Bearer <wrong>")
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = "<not json>"
            headers = [[k, shown if k.lower() == "authorization" else v] for k, v in self.headers.items()]
            with state.lock:
                state.requests.append({"method": self.command, "path": self.path, "headers": headers,
                                       "json": body, "status": status})

        def _handle(self):
            raw = self._body()
            if self.path.startswith("/_control/"):
                return self._control(raw)
            status = self._api(raw)
            self._record(raw, status)

        def _api(self, raw):
            mode = state.mode
            if self.headers.get("Authorization") != "Bearer " + state.token:
                return self._answer(401, {"message": "invalid or missing token"})
            if "status" in mode:
                return self._answer(mode["status"], mode.get("body", {"message": "forced by the test"}))
            if self.path == COLLECTION and self.command == "POST":
                if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                    return self._answer(415, {"message": "Content-Type must be application/json"})
                try:
                    doc = json.loads(raw)
                except ValueError:
                    return self._answer(400, {"message": "the body is not JSON"})
                problem = validate_create(doc)
                if problem:
                    return self._answer(400, {"message": problem})
                with state.lock:
                    if any(s["url"] == doc["url"] and s["status"] == "active" for s in state.subscriptions.values()):
                        return self._answer(409, {"message": "a subscription for this url already exists"})
                    state.counter += 1
                    sid = "01JA4KXYZ%06d" % state.counter
                    secret = mode.get("answer_secret", doc["authConfig"]["secret"])
                    sub = {"id": sid, "subscriberId": "hookgate-test-client", "url": doc["url"], "authType": "HMAC_SHA256",
                           "authConfig": {"secret": secret,
                                          "secretArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + sid},
                           "eventFilters": doc["eventFilters"], "status": "active"}
                    state.subscriptions[sid] = sub
                answer = json.loads(json.dumps(sub))
                if mode.get("omit_secret"):
                    del answer["authConfig"]["secret"]
                return self._answer(201, answer)
            if self.path == COLLECTION and self.command == "GET":
                with state.lock:
                    listed = [{k: v for k, v in s.items() if k != "authConfig"} for s in state.subscriptions.values()]
                return self._answer(200, listed)
            if self.path.startswith(COLLECTION + "/") and self.command == "DELETE":
                sid = self.path[len(COLLECTION) + 1:]
                with state.lock:
                    found = state.subscriptions.pop(sid, None)
                if found is None:
                    return self._answer(404, {"message": "no such subscription"})
                return self._answer(204)
            return self._answer(404, {"message": "not found"})

        def _control(self, raw):
            if self.path == "/_control/mode" and self.command == "POST":
                state.mode = json.loads(raw or b"{}")
                return self._answer(200, state.mode)
            if self.path == "/_control/requests":
                with state.lock:
                    return self._answer(200, list(state.requests))
            if self.path == "/_control/subscriptions":
                with state.lock:
                    return self._answer(200, list(state.subscriptions.values()))
            return self._answer(404, {"message": "unknown control path"})

        do_GET = do_POST = do_DELETE = do_PUT = _handle

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.token)))
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
