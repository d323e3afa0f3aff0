"""Hostile verification: replays, forged and malformed signatures, odd timestamp spellings,
header name case and repetition, delivery headers that disagree with the signed body.

Every refusal must leave the upstream untouched and the event deliverable afterwards."""
import hashlib
import hmac
import http.client
import json
import time

import pytest

import sender
from conftest import (SECRET, UPSTREAM_PATH, RawClient, assert_error, make_route, request_bytes,
                      signed_headers)


@pytest.fixture(scope="module")
def vgw(module_launch_gateway, module_upstream):
    return module_launch_gateway([make_route(module_upstream.url(UPSTREAM_PATH), tolerance="300s")])


@pytest.fixture
def upstream(module_upstream, vgw):
    module_upstream.reset()
    yield module_upstream
    assert vgw.alive(), "the gateway died: %s" % vgw.stderr()[-2000:]


def untouched_then_delivered(g, upstream, body):
    assert upstream.count() == 0, "a refused request reached the upstream"
    r = g.send(body)
    assert r.status == 200 and r.body == b'{"ok":true}', "event not deliverable afterwards: %r" % (r,)
    assert upstream.count() == 1


def sig_over(ts_text, body, secret=SECRET):
    """sha256=HMAC(secret, "<ts text>.<body>") for any timestamp text (UTF-8)."""
    return "sha256=" + hmac.new(secret.encode(), ts_text.encode("utf-8") + b"." + body, hashlib.sha256).hexdigest()


def send_pairs(g, body, pairs, timeout=10):
    """POST body with exactly these header pairs (repeats and case kept), on a new connection."""
    c = RawClient(g.port, timeout=timeout)
    try:
        c.send(request_bytes("POST", "/webhooks/vecu", pairs, body))
        r = c.read_response(timeout=timeout)
    finally:
        c.close()
    assert r is not None, "connection closed without an answer"
    return r


# ------------------------------------------------------------------ replays
def test_replay_inside_window_is_a_duplicate_not_forwarded(vgw, upstream):
    body = sender.make_event()
    captured = sender.delivery_headers(body, SECRET)  # same timestamp and signature every time
    r1 = sender.request(vgw.url(), body, captured)
    assert r1.status == 200 and r1.body == b'{"ok":true}', r1
    for _ in range(3):
        r = sender.request(vgw.url(), body, captured)
        assert r.status == 200 and r.json() == {"duplicate": True}, r
        assert r.header("X-Hookgate-Duplicate") == "true"
    assert upstream.count() == 1


def test_replay_of_a_captured_pair_outside_window_is_401(vgw, upstream):
    body = sender.make_event()
    captured = sender.delivery_headers(body, SECRET, ts=int(time.time()) - 400)  # tolerance is 300s
    r = sender.request(vgw.url(), body, captured)
    assert_error(r, 401, "timestamp_outside_window")
    untouched_then_delivered(vgw, upstream, body)


def test_replay_with_body_of_another_event_is_401(vgw, upstream):
    """A captured timestamp+signature does not carry over to another body."""
    first = sender.make_event()
    captured = sender.delivery_headers(first, SECRET)
    assert sender.request(vgw.url(), first, captured).status == 200
    upstream.reset()
    other = sender.make_event()
    forged = dict(captured)
    forged.pop("X-VECU-Event-ID")
    assert_error(sender.request(vgw.url(), other, forged), 401, "signature_mismatch")
    untouched_then_delivered(vgw, upstream, other)


# ------------------------------------------------------------------ signatures
def test_right_length_wrong_signature_is_401_mismatch(vgw, upstream):
    body = sender.make_event()
    for sig in ("sha256=" + "0" * 64, "sha256=" + "f" * 64,
                "sha256=" + sender.signature_hex(SECRET, int(time.time()), body + b" ")):
        r = vgw.send(body, extra_headers={"X-VECU-Signature": sig})
        assert_error(r, 401, "signature_mismatch")
    untouched_then_delivered(vgw, upstream, body)


@pytest.mark.parametrize("case", ["lower", "upper", "mixed"])
def test_header_names_in_any_case_are_accepted(vgw, upstream, case):
    body = sender.make_event()
    conv = {"lower": str.lower, "upper": str.upper, "mixed": lambda s: "".join(
        ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(s))}[case]
    pairs = [(conv(k), v) for k, v in signed_headers(body).items()]
    names = [k for k, _ in pairs]
    assert "X-VECU-Signature" not in names and "X-VECU-Timestamp" not in names, names
    r = send_pairs(vgw, body, pairs)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 1


@pytest.mark.parametrize("second", ["same", "wrong", "lower-case-name"])
def test_two_signature_headers_are_401_malformed(vgw, upstream, second):
    body = sender.make_event()
    headers = signed_headers(body)
    sig = headers["X-VECU-Signature"]
    extra = {"same": ("X-VECU-Signature", sig),
             "wrong": ("X-VECU-Signature", "sha256=" + "0" * 64),
             "lower-case-name": ("x-vecu-signature", sig)}[second]
    r = send_pairs(vgw, body, list(headers.items()) + [extra])
    assert_error(r, 401, "signature_malformed")
    untouched_then_delivered(vgw, upstream, body)


def test_two_timestamp_headers_are_401_invalid(vgw, upstream):
    body = sender.make_event()
    headers = signed_headers(body)
    r = send_pairs(vgw, body, list(headers.items()) + [("X-VECU-Timestamp", headers["X-VECU-Timestamp"])])
    assert_error(r, 401, "timestamp_invalid")
    untouched_then_delivered(vgw, upstream, body)


@pytest.mark.parametrize("sig", ["sha256=", "sha256= ", "SHA256=" + "a" * 64, "sha256=" + "a" * 62 + " a",
                                 "sha256=" + "é" * 32])
def test_malformed_signature_values(vgw, upstream, sig):
    body = sender.make_event()
    pairs = list(signed_headers(body, extra_headers={"X-VECU-Signature": sig}).items())
    assert_error(send_pairs(vgw, body, pairs), 401, "signature_malformed")
    untouched_then_delivered(vgw, upstream, body)


def test_empty_signature_prefix_is_401_malformed(vgw, upstream):
    body = sender.make_event()
    assert_error(vgw.send(body, extra_headers={"X-VECU-Signature": "sha256="}), 401, "signature_malformed")
    untouched_then_delivered(vgw, upstream, body)


def test_signature_over_other_secret_length_extension_style_is_mismatch(vgw, upstream):
    """Signing with the secret plus extra bytes, or a prefix of it, is a different key."""
    body = sender.make_event()
    for secret in (SECRET + "x", SECRET[:-1], SECRET.upper()):
        assert_error(vgw.send(body, secret=secret), 401, "signature_mismatch")
    untouched_then_delivered(vgw, upstream, body)


# ------------------------------------------------------------------ timestamps
@pytest.mark.parametrize("ts", ["+1700000000", "-5", "1700000000.5", "01700000000", "99999999999999999999",
                                "1e9", "١٧٠٠٠٠٠٠٠٠", "0x6553f100", "1700000000 1"],
                         ids=["plus", "negative", "fraction", "leading-zero", "20-digits", "exponent",
                              "arabic-indic-digits", "hex", "two-numbers"])
def test_odd_timestamp_spellings_are_401_invalid(vgw, upstream, ts):
    body = sender.make_event()
    headers = signed_headers(body)
    headers.update({"X-VECU-Timestamp": ts,
                    "X-VECU-Signature": sig_over(ts, body)})  # signed over the text itself
    r = send_pairs(vgw, body, list(headers.items()))
    assert_error(r, 401, "timestamp_invalid")
    untouched_then_delivered(vgw, upstream, body)


@pytest.mark.parametrize("pad", [" %s", "%s ", "\t%s", "  %s\t "], ids=["leading-space", "trailing-space",
                                                                      "leading-tab", "both"])
def test_timestamp_surrounded_by_ows_is_valid(vgw, upstream, pad):
    """Whitespace around a field value is not part of it (RFC 9110 OWS): the value is the number."""
    body = sender.make_event()
    now = str(int(time.time()))
    headers = signed_headers(body, ts=now)  # signed over the bare number
    pairs = [(k, pad % v if k == "X-VECU-Timestamp" else v) for k, v in headers.items()]
    r = send_pairs(vgw, body, pairs)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    assert upstream.count() == 1


def test_timestamp_signed_with_its_padding_is_a_mismatch(vgw, upstream):
    """The OWS is not the value: a signature computed over " <ts>" does not verify."""
    body = sender.make_event()
    now = str(int(time.time()))
    sig = sig_over(" " + now, body)
    headers = signed_headers(body, extra_headers={"X-VECU-Timestamp": " " + now, "X-VECU-Signature": sig})
    r = send_pairs(vgw, body, list(headers.items()))
    assert_error(r, 401, "signature_mismatch")
    untouched_then_delivered(vgw, upstream, body)


def test_empty_timestamp_is_401(vgw, upstream):
    body = sender.make_event()
    headers = signed_headers(body, extra_headers={"X-VECU-Timestamp": ""})
    r = send_pairs(vgw, body, list(headers.items()))
    assert r.status == 401 and r.json()["error"] in ("timestamp_invalid", "timestamp_missing"), r
    untouched_then_delivered(vgw, upstream, body)


# ------------------------------------------------------------------ delivery headers vs signed body
def test_event_type_header_differing_from_body_is_400(vgw, upstream):
    body = sender.make_event(type="custody.vehicle.released")
    r = vgw.send(body, extra_headers={"X-VECU-Event-Type": "credential.revoked"})
    assert_error(r, 400, "event_type_mismatch")
    untouched_then_delivered(vgw, upstream, body)


def test_two_event_type_headers_are_400(vgw, upstream):
    body = sender.make_event(type="custody.vehicle.released")
    headers = signed_headers(body)
    r = send_pairs(vgw, body, list(headers.items()) + [("X-VECU-Event-Type", "custody.vehicle.released")])
    assert_error(r, 400, "event_type_mismatch")
    untouched_then_delivered(vgw, upstream, body)


def test_event_id_header_of_another_event_is_400(vgw, upstream):
    delivered = sender.make_event()
    assert vgw.send(delivered).status == 200
    upstream.reset()
    body = sender.make_event()
    r = vgw.send(body, extra_headers={"X-VECU-Event-ID": json.loads(delivered)["id"]})
    assert_error(r, 400, "event_id_mismatch")
    untouched_then_delivered(vgw, upstream, body)


def test_spoofed_hookgate_headers_do_not_bypass_verification(vgw, upstream):
    body = sender.make_event()
    r = vgw.send(body, secret="z" * 40, extra_headers={"X-Hookgate-Verified": "hmac-sha256",
                                                        "X-Hookgate-Duplicate": "true"})
    assert_error(r, 401, "signature_mismatch")
    untouched_then_delivered(vgw, upstream, body)


def test_verification_runs_before_dedup(vgw, upstream):
    """A forged copy of a delivered event is a 401, not a 200 duplicate (no oracle for ids)."""
    body = sender.make_event()
    assert vgw.send(body).status == 200
    assert_error(vgw.send(body, secret="q" * 40), 401, "signature_mismatch")
    assert_error(vgw.send(body, ts=int(time.time()) - 1000), 401, "timestamp_outside_window")
    assert upstream.count() == 1


def test_keep_alive_connection_survives_verification_failures(vgw, upstream):
    """401s are answers, not connection errors: the same connection then delivers the event."""
    body = sender.make_event()
    conn = http.client.HTTPConnection("127.0.0.1", vgw.port, timeout=5)
    try:
        for headers in (signed_headers(body, secret="k" * 40), signed_headers(body, ts=int(time.time()) - 999),
                        signed_headers(body)):
            conn.request("POST", "/webhooks/vecu", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            last = r.status
        assert last == 200
    finally:
        conn.close()
    assert upstream.count() == 1
