"""Signature schemes other than vecu, end to end through the real binary, with signatures made by
the providers' own published libraries (standardwebhooks, svix, stripe, slack_sdk), GitHub's and
Slack's documented test vectors, and Shopify's computed as its documentation describes."""
import base64
import datetime
import hashlib
import hmac
import json
import time
import uuid

import pytest
import standardwebhooks.webhooks
import stripe
import svix.webhooks
from slack_sdk.signature import SignatureVerifier

import sender
from conftest import UPSTREAM_PATH, assert_error, raw_exchange, record_headers, request_bytes

SW_SECRETS = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + base64.b64encode(b"second-standard-webhooks-key-32b").decode()]
STRIPE_SECRETS = ["whsec_test_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d", "whsec_test_rotated_9f8e7d6c5b4a39281706"]
GITHUB_SECRETS = ["It's a Secret to Everybody", "github-second-secret"]
SLACK_SECRETS = ["8f742231b10e8888abcd99yyyzzz85a5", "slack-second-signing-secret-0000"]
SHOPIFY_SECRETS = ["shopify-app-client-secret-1", "shopify-app-client-secret-2"]
HMAC_SECRETS = ["generic-hmac-secret-0123456789", "generic-hmac-rotated-9876543210"]
WRONG = "a-secret-nobody-configured-whsec"


def _route(name, scheme, secrets, **verify):
    v = {"scheme": scheme, "secrets": [{"value": s} for s in secrets]}
    v.update(verify)
    return {"name": name, "path": "/in/" + name, "verify": v,
            "upstream": {"url": None, "timeout": "10s"}}


ROUTES = [
    _route("standard-webhooks", "standard-webhooks", SW_SECRETS),
    _route("stripe", "stripe", STRIPE_SECRETS),
    _route("github", "github", GITHUB_SECRETS),
    _route("slack", "slack", SLACK_SECRETS),
    _route("shopify", "shopify", SHOPIFY_SECRETS),
    _route("hmac", "hmac", HMAC_SECRETS, header="X-Acme-Signature", prefix="sha256=", encoding="hex",
           signed="{timestamp}.{id}.{body}", timestamp_header="X-Acme-Timestamp", id="header:X-Acme-Delivery"),
    _route("hmac-b64", "hmac", HMAC_SECRETS, header="X-Other-Hmac", encoding="base64", id="body:/data/object/id"),
    _route("hmac-noid", "hmac", HMAC_SECRETS, header="X-Other-Hmac", encoding="base64"),
    dict(_route("stripe-override", "stripe", STRIPE_SECRETS), dedup={"id": "body:/data/object/id"}),
]
TIMED = {"standard-webhooks", "stripe", "slack", "hmac"}


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


# ---------------------------------------------------------------- signers
# Each returns (headers, id) for body bytes signed with `secret` at `ts`; `sigs` replaces the
# signature value (several signatures, malformed ones).
def sign_sw(body, secret, ts, eid, lib="standardwebhooks"):
    wh = (svix.webhooks.Webhook if lib == "svix" else standardwebhooks.webhooks.Webhook)(secret)
    prefix = "svix-" if lib == "svix" else "webhook-"
    return {prefix + "id": eid, prefix + "timestamp": str(ts),
            prefix + "signature": wh.sign(eid, _utc(ts), body.decode())}


def sign_stripe(body, secret, ts, eid):
    return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=ts)}


def sign_github(body, secret, ts, eid):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": "sha256=" + digest, "X-GitHub-Delivery": eid, "X-GitHub-Event": "push"}


def sign_slack(body, secret, ts, eid):
    sig = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body.decode())
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig}


def sign_shopify(body, secret, ts, eid):
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Webhook-Id": eid, "X-Shopify-Topic": "orders/create"}


def sign_hmac(body, secret, ts, eid):
    digest = hmac.new(secret.encode(), ("%d.%s." % (ts, eid)).encode() + body, hashlib.sha256).hexdigest()
    return {"X-Acme-Signature": "sha256=" + digest, "X-Acme-Timestamp": str(ts), "X-Acme-Delivery": eid}


def sign_hmac_b64(body, secret, ts, eid):
    return {"X-Other-Hmac": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()}


def body_for(name, eid):
    if name == "stripe":
        return json.dumps({"id": eid, "object": "event", "type": "charge.succeeded"}).encode()
    if name == "slack":
        return json.dumps({"type": "event_callback", "event_id": eid, "event": {"type": "app_mention"}}).encode()
    if name == "hmac-b64":
        return json.dumps({"data": {"object": {"id": eid}}}).encode()
    return json.dumps({"hello": "world", "n": eid}).encode()


SCHEMES = {
    "standard-webhooks": (sign_sw, SW_SECRETS, "webhook-signature"),
    "stripe": (sign_stripe, STRIPE_SECRETS, "Stripe-Signature"),
    "github": (sign_github, GITHUB_SECRETS, "X-Hub-Signature-256"),
    "slack": (sign_slack, SLACK_SECRETS, "X-Slack-Signature"),
    "shopify": (sign_shopify, SHOPIFY_SECRETS, "X-Shopify-Hmac-Sha256"),
    "hmac": (sign_hmac, HMAC_SECRETS, "X-Acme-Signature"),
    "hmac-b64": (sign_hmac_b64, HMAC_SECRETS, "X-Other-Hmac"),
}


@pytest.fixture(scope="module")
def gwu(module_launch_gateway, module_upstream):
    routes = json.loads(json.dumps(ROUTES))
    for r in routes:
        r["upstream"]["url"] = module_upstream.url(UPSTREAM_PATH)
    return module_launch_gateway(routes), module_upstream


def post(gw, name, body, headers):
    return sender.request(gw.url("/in/" + name), body, headers)


def signed(name, secret_index=0, ts=None, eid=None, body=None, secret=None):
    eid = eid or "evt_" + uuid.uuid4().hex
    body = body if body is not None else body_for(name, eid)
    sign, secrets, _ = SCHEMES[name]
    ts = int(time.time()) if ts is None else ts
    return body, sign(body, secret or secrets[secret_index], ts, eid), eid


def last_record(upstream):
    return upstream.records()[-1]


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_good_signature_is_forwarded_with_verified_headers(gwu, name):
    gw, upstream = gwu
    upstream.reset()
    body, headers, eid = signed(name)
    r = post(gw, name, body, headers)
    assert r.status == 200, r
    rec = last_record(upstream)
    assert rec["body_bytes"] == body
    scheme = "hmac" if name.startswith("hmac") else name
    assert record_headers(rec, "X-Hookgate-Verified") == [scheme]
    assert record_headers(rec, "X-Hookgate-Event-Id") == [eid]
    assert record_headers(rec, "X-Hookgate-Event-Type") == []
    # The sender's own signature header stays, so an app that still verifies keeps working.
    sig_header = SCHEMES[name][2]
    assert record_headers(rec, sig_header) == [headers[sig_header]]


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_retry_with_same_id_is_duplicate(gwu, name):
    gw, upstream = gwu
    upstream.reset()
    body, headers, eid = signed(name, ts=int(time.time()) - 20)
    assert post(gw, name, body, headers).status == 200
    # A retry: same event id, signed anew (later time, the rotated secret).
    body2, headers2, _ = signed(name, secret_index=1, eid=eid, body=body)
    r = post(gw, name, body2, headers2)
    assert r.status == 200 and r.header("X-Hookgate-Duplicate") == "true", r
    assert upstream.count() == 1


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_second_secret_passes(gwu, name):
    gw, upstream = gwu
    body, headers, _ = signed(name, secret_index=1)
    assert post(gw, name, body, headers).status == 200


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_tampered_body_and_wrong_secret_are_refused(gwu, name):
    gw, upstream = gwu
    upstream.reset()
    body, headers, _ = signed(name)
    tampered = body.replace(b"}", b',"x":1}', 1)
    assert_error(post(gw, name, tampered, headers), 401, "signature_mismatch")
    body, headers, _ = signed(name, secret=WRONG if name != "standard-webhooks" else "whsec_" + base64.b64encode(b"w" * 24).decode())
    assert_error(post(gw, name, body, headers), 401, "signature_mismatch")
    assert upstream.count() == 0


@pytest.mark.parametrize("name", sorted(TIMED))
@pytest.mark.parametrize("offset", [-3600, 3600])
def test_expired_and_future_timestamps_are_refused(gwu, name, offset):
    gw, upstream = gwu
    upstream.reset()
    body, headers, _ = signed(name, ts=int(time.time()) + offset)
    assert_error(post(gw, name, body, headers), 401, "timestamp_outside_window")
    assert upstream.count() == 0


def test_svix_library_signatures_and_header_names_pass(gwu):
    gw, upstream = gwu
    eid = "msg_" + uuid.uuid4().hex
    body = b'{"type":"invoice.paid"}'
    headers = sign_sw(body, SW_SECRETS[1], int(time.time()), eid, lib="svix")
    assert post(gw, "standard-webhooks", body, headers).status == 200
    assert record_headers(last_record(upstream), "X-Hookgate-Event-Id") == [eid]


def test_several_signatures_in_one_header_any_match_passes(gwu):
    gw, upstream = gwu
    now = int(time.time())
    # Standard Webhooks: space-separated list, an unknown version and a wrong v1 before the good one.
    body, headers, _ = signed("standard-webhooks", ts=now)
    wrong = "v1," + base64.b64encode(b"\0" * 32).decode()
    headers["webhook-signature"] = "v1a,AAAA %s %s" % (wrong, headers["webhook-signature"])
    assert post(gw, "standard-webhooks", body, headers).status == 200
    # Stripe: two v1 (a secret being rolled) and a v0 that is ignored.
    body, headers, _ = signed("stripe", ts=now)
    t, good = headers["Stripe-Signature"].split(",")
    headers["Stripe-Signature"] = "%s,v1=%s,%s,v0=%s" % (t, "0" * 64, good, "1" * 64)
    assert post(gw, "stripe", body, headers).status == 200
    # Only wrong ones: refused.
    headers["Stripe-Signature"] = "%s,v1=%s,v1=%s" % (t, "0" * 64, "f" * 64)
    assert_error(post(gw, "stripe", body, headers), 401, "signature_mismatch")


@pytest.mark.parametrize("name", ["github", "slack", "shopify", "hmac"])
def test_single_signature_schemes_refuse_a_list(gwu, name):
    gw, upstream = gwu
    body, headers, _ = signed(name)
    h = SCHEMES[name][2]
    headers[h] = headers[h] + "," + headers[h]
    assert_error(post(gw, name, body, headers), 401, "signature_malformed")


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_duplicated_signature_header_lines_are_malformed(gwu, name):
    gw, upstream = gwu
    upstream.reset()
    body, headers, _ = signed(name)
    h = SCHEMES[name][2]
    pairs = list(headers.items()) + [(h, headers[h])]
    resp = raw_exchange(gw.port, request_bytes(path="/in/" + name, headers=pairs, body=body))
    assert resp is not None and resp.status == 401, resp
    assert json.loads(resp.body)["error"] == "signature_malformed"
    assert upstream.count() == 0


def _lookalike(value):
    """The value with its first character replaced by the fullwidth form of the same letter."""
    return chr(0xFF01 + ord(value[0]) - 0x21) + value[1:]


# What a look-alike first character makes of each header: Stripe loses its `t=` item and Standard
# Webhooks its `v1` entry (unknown items are skipped by both); the others no longer parse.
LOOKALIKE_REASON = {"stripe": "timestamp_missing", "standard-webhooks": "signature_missing"}


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_malformed_and_missing_signature_headers(gwu, name):
    gw, upstream = gwu
    upstream.reset()
    body, headers, _ = signed(name)
    h = SCHEMES[name][2]
    missing = {k: v for k, v in headers.items() if k != h}
    assert_error(post(gw, name, body, missing), 401, "signature_missing")
    cases = [(headers[h][:-2], "signature_malformed"), ("", "signature_malformed"),
             (headers[h] + "x" * 5000, "signature_malformed"),
             (_lookalike(headers[h]), LOOKALIKE_REASON.get(name, "signature_malformed"))]
    for bad, code in cases:
        pairs = [(k, v) for k, v in headers.items() if k != h] + [(h, bad.encode("utf-8"))]
        resp = raw_exchange(gw.port, request_bytes(path="/in/" + name, headers=pairs, body=body))
        assert resp is not None and resp.status == 401, (bad, resp)
        assert json.loads(resp.body)["error"] == code, (bad, resp.body)
    assert upstream.count() == 0


@pytest.mark.parametrize("name,header", [("standard-webhooks", "webhook-timestamp"), ("slack", "X-Slack-Request-Timestamp"),
                                         ("hmac", "X-Acme-Timestamp")])
def test_timestamp_header_missing_and_invalid(gwu, name, header):
    gw, upstream = gwu
    body, headers, _ = signed(name)
    missing = {k: v for k, v in headers.items() if k != header}
    assert_error(post(gw, name, body, missing), 401, "timestamp_missing")
    for bad in ["", "12.5", "-5", "0123", "\uff11\uff12\uff13", "1" * 13]:
        headers[header] = bad
        pairs = list(headers.items())
        resp = raw_exchange(gw.port, request_bytes(path="/in/" + name, headers=pairs, body=body))
        assert resp.status == 401 and json.loads(resp.body)["error"] == "timestamp_invalid", (bad, resp)


def test_stripe_header_without_t_or_with_two(gwu):
    gw, upstream = gwu
    body, headers, _ = signed("stripe")
    t, v1 = headers["Stripe-Signature"].split(",")
    assert_error(post(gw, "stripe", body, {"Stripe-Signature": v1}), 401, "timestamp_missing")
    assert_error(post(gw, "stripe", body, {"Stripe-Signature": "%s,%s,%s" % (t, t, v1)}), 401, "timestamp_invalid")
    assert_error(post(gw, "stripe", body, {"Stripe-Signature": t}), 401, "signature_missing")


def test_github_documented_test_vector(gwu):
    gw, upstream = gwu
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
               "X-GitHub-Delivery": "vector-" + uuid.uuid4().hex, "X-GitHub-Event": "ping"}
    # GitHub's ping is signed like any event and passes through to the app.
    r = post(gw, "github", b"Hello, World!", headers)
    assert r.status == 200, r
    assert last_record(upstream)["body_bytes"] == b"Hello, World!"


def test_slack_url_verification_passes_through_without_dedup(gwu):
    gw, upstream = gwu
    upstream.reset()
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"}).encode()
    for _ in range(2):
        _, headers, _ = signed("slack", body=body)
        r = post(gw, "slack", body, headers)
        assert r.status == 200 and r.header("X-Hookgate-Duplicate") is None, r
    assert upstream.count() == 2
    assert record_headers(last_record(upstream), "X-Hookgate-Event-Id") == []


def test_non_json_body_forwards_without_dedup(gwu):
    gw, upstream = gwu
    upstream.reset()
    # Slack slash commands are form-encoded: no event_id, forwarded every time.
    body = b"token=x&command=%2Fweather&text=94070"
    for _ in range(2):
        _, headers, _ = signed("slack", body=body)
        assert post(gw, "slack", body, headers).status == 200
    assert upstream.count() == 2


def test_route_without_id_forwards_every_copy_and_warns_at_start(gwu):
    gw, upstream = gwu
    upstream.reset()
    body = b'{"data":{"object":{"id":"same"}}}'
    for _ in range(2):
        _, headers, _ = signed("hmac-b64", body=body)
        r = post(gw, "hmac-noid", body, headers)
        assert r.status == 200 and r.header("X-Hookgate-Duplicate") is None, r
    assert upstream.count() == 2
    assert record_headers(last_record(upstream), "X-Hookgate-Event-Id") == []
    warnings = [json.loads(l) for l in (gw.stdout() + gw.stderr()).splitlines() if l.startswith("{")]
    assert any("without de-duplication" in json.dumps(w) and "routes[7].dedup.id" in json.dumps(w) for w in warnings)


def test_dedup_id_overrides_the_schemes_id(gwu):
    gw, upstream = gwu
    upstream.reset()
    # Two Stripe events (different top-level ids) about the same object: one delivery.
    for n in range(2):
        body = json.dumps({"id": "evt_%d_%s" % (n, uuid.uuid4().hex), "data": {"object": {"id": "ch_shared"}}}).encode()
        _, headers, _ = signed("stripe", body=body)
        r = post(gw, "stripe-override", body, headers)
        assert r.status == 200, r
    assert upstream.count() == 1
    assert record_headers(last_record(upstream), "X-Hookgate-Event-Id") == ["ch_shared"]


def test_config_errors_name_the_key(run_cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""
listen: 127.0.0.1:0
routes:
  - name: a
    path: /a
    verify: {scheme: standard-webhooks, secrets: [{value: "whsec_not*base64"}]}
    upstream: {url: "http://127.0.0.1:9/x"}
  - name: b
    path: /b
    verify: {scheme: github, secrets: [{value: "s"}], tolerance: 5m, header: X-Sig}
    upstream: {url: "http://127.0.0.1:9/x"}
  - name: c
    path: /c
    verify: {scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-Sig, encoding: hex32, signed: "{time}.{body}"}
    upstream: {url: "http://127.0.0.1:9/x"}
  - name: d
    path: /d
    verify: {scheme: stripe, secrets: [{value: "sk_live_notawebhooksecret"}]}
    upstream: {url: "http://127.0.0.1:9/x"}
""")
    r = run_cli(["check", "--config", cfg])
    assert r.returncode != 0
    out = r.stdout + r.stderr
    for key in ["routes[0].verify.secrets[0]", "routes[1].verify.tolerance", "routes[1].verify.header",
                "routes[2].verify.encoding", "routes[2].verify.signed", "routes[3].verify.secrets[0]"]:
        assert key in out, (key, out)


def test_check_warns_about_a_route_without_event_id(run_cli, tmp_path):
    cfg = tmp_path / "warn.yaml"
    cfg.write_text("""
listen: 127.0.0.1:0
routes:
  - name: a
    path: /a
    verify: {scheme: hmac, secrets: [{value: "0123456789abcdef"}], header: X-Sig}
    upstream: {url: "http://127.0.0.1:9/x"}
""")
    r = run_cli(["check", "--config", cfg])
    assert r.returncode == 0, r.stderr
    assert "configuration is valid" in r.stdout
    assert "routes[0].dedup.id" in r.stderr and "without de-duplication" in r.stderr
