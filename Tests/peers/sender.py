#!/usr/bin/env python3
"""Sign and send VECU-style webhook events (standard library only).

Library:
    make_event(id=None, type="custody.vehicle.released", source="vecu.custody-service", data=None) -> bytes
    sign(secret, ts, body) -> {"X-VECU-Timestamp": ..., "X-VECU-Signature": "sha256=<hex>"}
    delivery_headers(body, secret, ts=None, retry_count=0) -> dict of the platform's headers
    send(url, body, secret, ts=None, retry_count=0, extra_headers=None, method="POST", timeout=30) -> Response

In ``extra_headers`` a value of None removes that header from what is sent.

CLI:
    python3 sender.py --url URL [--secret-env NAME | --secret S] [--body-file F | --id ID --type T]
                      [--ts UNIX] [--retry-count N] [-H 'Name: value' ...]
prints the status line, then the response body.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid

DEFAULT_TYPE = "custody.vehicle.released"
DEFAULT_SOURCE = "vecu.custody-service"


def make_event(id=None, type=DEFAULT_TYPE, source=DEFAULT_SOURCE, data=None, **extra):
    """A CloudEvents 1.0 envelope like the guide's example, as compact JSON bytes."""
    event = {
        "id": id or "evt_" + uuid.uuid4().hex,
        "source": source,
        "type": type,
        "specversion": "1.0",
        "time": "2025-01-15T14:30:00Z",
        "datacontenttype": "application/json",
        "data": data if data is not None else {
            "_platform": {
                "correlationId": "corr_" + uuid.uuid4().hex[:8],
                "actor": {"actorId": "driver_456", "actorType": "user"},
            },
            "vin": "5XXXX00000XEXMPL0",
        },
    }
    event.update(extra)
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _to_bytes(body):
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def signature_hex(secret, ts, body):
    secret = _to_bytes(secret)
    message = str(ts).encode("ascii") + b"." + _to_bytes(body)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret, ts, body):
    return {
        "X-VECU-Timestamp": str(ts),
        "X-VECU-Signature": "sha256=" + signature_hex(secret, ts, body),
    }


def delivery_headers(body, secret, ts=None, retry_count=0):
    """All the headers the platform sends with a delivery."""
    body = _to_bytes(body)
    ts = int(time.time()) if ts is None else ts
    headers = {"Content-Type": "application/json"}
    try:
        event = json.loads(body)
        if isinstance(event, dict):
            if isinstance(event.get("id"), str):
                headers["X-VECU-Event-ID"] = event["id"]
            if isinstance(event.get("type"), str):
                headers["X-VECU-Event-Type"] = event["type"]
    except ValueError:
        pass
    headers["X-VECU-Retry-Count"] = str(retry_count)
    headers.update(sign(secret, ts, body))
    return headers


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.status_code = status
        self.reason = reason
        self.header_list = headers  # list of (name, value)
        self.body = body

    def header(self, name, default=None):
        for k, v in self.header_list:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def headers(self):
        return {k: v for k, v in self.header_list}

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


def request(url, body=b"", headers=None, method="POST", timeout=30):
    """One HTTP/1.1 request on a fresh connection; returns a Response."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.putrequest(method, path, skip_accept_encoding=True)
        body = _to_bytes(body) if body is not None else b""
        hdrs = dict(headers or {})
        if not any(k.lower() == "content-length" for k in hdrs):
            if body or method in ("POST", "PUT", "PATCH"):
                hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.getheaders(), data)
    finally:
        conn.close()


def send(url, body, secret, ts=None, retry_count=0, extra_headers=None, method="POST", timeout=30):
    body = _to_bytes(body)
    headers = delivery_headers(body, secret, ts=ts, retry_count=retry_count)
    for k, v in (extra_headers or {}).items():
        for existing in [h for h in headers if h.lower() == k.lower()]:
            del headers[existing]
        if v is not None:
            headers[k] = v
    return request(url, body, headers, method=method, timeout=timeout)


def main(argv=None):
    ap = argparse.ArgumentParser(description="sign and send a VECU webhook event")
    ap.add_argument("--url", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--secret-env")
    g.add_argument("--secret")
    ap.add_argument("--body-file")
    ap.add_argument("--id")
    ap.add_argument("--type", default=DEFAULT_TYPE)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--ts", type=int)
    ap.add_argument("--retry-count", type=int, default=0)
    ap.add_argument("-H", "--header", action="append", default=[])
    args = ap.parse_args(argv)
    secret = os.environ[args.secret_env] if args.secret_env else args.secret
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = f.read()
    else:
        body = make_event(id=args.id, type=args.type, source=args.source)
    extra = {}
    for h in args.header:
        k, _, v = h.partition(":")
        extra[k.strip()] = v.strip()
    r = send(args.url, body, secret, ts=args.ts, retry_count=args.retry_count, extra_headers=extra)
    print(r.status, r.reason)
    sys.stdout.write(r.text + "\n")
    return 0 if 200 <= r.status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
