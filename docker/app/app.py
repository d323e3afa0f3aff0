"""The Flask receiver from the VECU "Webhook Setup" guide, as the application behind hookgate.

It verifies the signature itself, exactly as the guide does: hookgate forwards the byte-identical
body and keeps the X-VECU-* headers, so an application written from the guide needs no change.
Changes from the guide, and only these: the handler body is indented (the guide's copy lost its
indentation), the two handlers are defined (they log the event), and it is served by gunicorn
(see Dockerfile) instead of the Flask development server.

The secret comes from $VECU_WEBHOOK_SECRET or, when that is unset, from the file named by
$VECU_WEBHOOK_SECRET_FILE (a compose secret or a Kubernetes Secret).
"""
import hashlib
import hmac
import logging
import os

from flask import Flask, request, jsonify

if "VECU_WEBHOOK_SECRET" not in os.environ and os.environ.get("VECU_WEBHOOK_SECRET_FILE"):
    with open(os.environ["VECU_WEBHOOK_SECRET_FILE"], encoding="utf-8") as f:
        os.environ["VECU_WEBHOOK_SECRET"] = f.read().rstrip("\r\n")

app = Flask('vecu-webhook')
WEBHOOK_SECRET = os.environ["VECU_WEBHOOK_SECRET"] # Set in your environment

log = logging.getLogger("gunicorn.error")


def handle_vehicle_released(data):
    log.info("custody.vehicle.released vin=%s", data.get("vin"))


def handle_credential_revoked(data):
    log.info("credential.revoked")


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
