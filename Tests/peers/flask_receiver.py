#!/usr/bin/env python3
"""The Flask receiver from the VECU "Webhook Setup" guide, made runnable.

It is also the application behind hookgate in docker/compose.yaml (served there by gunicorn as
``app:app``; docker/app/Dockerfile copies this file).

Changes from the guide, and only these:
  * the handler body is indented (the guide's copy lost its indentation);
  * handle_vehicle_released / handle_credential_revoked are defined as no-ops;
  * when $VECU_WEBHOOK_SECRET is unset, the secret is read from the file named by
    $VECU_WEBHOOK_SECRET_FILE (a compose secret or a Kubernetes Secret);
  * run as a script, it is served on 127.0.0.1 with the port from --port or $PORT (0 = pick
    one), printing ``READY <port>`` on stdout once listening.

Signature verification is exactly the guide's: HMAC-SHA256 over
"{X-VECU-Timestamp}.{body utf-8}" with $VECU_WEBHOOK_SECRET, compared after
stripping "sha256=".

    VECU_WEBHOOK_SECRET=... python3 flask_receiver.py --port 0
"""
import hashlib
import hmac
import os
from flask import Flask, request, jsonify

if "VECU_WEBHOOK_SECRET" not in os.environ and os.environ.get("VECU_WEBHOOK_SECRET_FILE"):
    with open(os.environ["VECU_WEBHOOK_SECRET_FILE"], encoding="utf-8") as f:
        os.environ["VECU_WEBHOOK_SECRET"] = f.read().rstrip("\r\n")

app = Flask('vecu-webhook')
WEBHOOK_SECRET = os.environ["VECU_WEBHOOK_SECRET"] # Set in your environment


def handle_vehicle_released(data):
    pass


def handle_credential_revoked(data):
    pass


@app.route("/webhooks/vecu", methods=["POST"])
def handle_webhook(): # Verify HMAC signature
    timestamp = request.headers.get("X-VECU-Timestamp", "")
    raw_signature = request.headers.get("X-VECU-Signature", "")
    signature = raw_signature.removeprefix("sha256=")
    message = f"{timestamp}.{request.data.decode('utf-8')}".encode()
    expected = hmac.new(
        WEBHOOK_SECRET.encode(),
        message,
        hashlib.sha256,
    ).hexdigest()

    if not hmac.compare_digest(signature, expected):
        return jsonify({"error": "Invalid signature"}), 401

    event = request.json
    event_type = event["type"]   # CloudEvents field
    data = event["data"]         # Event-specific fields (platform metadata under data["_platform"])

    # Route by event type
    if event_type == "custody.vehicle.released":
        handle_vehicle_released(data)
    elif event_type == "credential.revoked":
        handle_credential_revoked(data)

    return jsonify({"received": True}), 200


def main(argv=None):
    import argparse
    import logging
    from werkzeug.serving import make_server

    ap = argparse.ArgumentParser(description="VECU guide Flask receiver")
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.host, args.port, app, threaded=True)
    print("READY %d" % server.server_port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
