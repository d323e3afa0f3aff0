"""Timestamp and HMAC verification (401s), envelope checks (400s), secret rotation."""
import json
import time

import pytest

import sender
from conftest import SECRET, SECRET2, UPSTREAM_PATH, assert_error, make_route


# ------------------------------------------------------------------ timestamp
def test_timestamp_missing(gw, upstream):
    body = sender.make_event()
    r = gw.send(body, extra_headers={"X-VECU-Timestamp": None})
    assert_error(r, 401, "timestamp_missing")
    assert upstream.count() == 0


@pytest.mark.parametrize("ts", ["abc", "1700000000.5", "17e8", "0x6553f100", "12 34"])
def test_timestamp_not_integer(gw, upstream, ts):
    body = sender.make_event()
    # sign over the bogus timestamp so only the timestamp check can reject it
    r = gw.send(body, extra_headers=sender.sign(SECRET, ts, body))
    assert_error(r, 401, "timestamp_invalid")
    assert upstream.count() == 0


@pytest.mark.parametrize("offset", [-301 - 60, +301 + 60, -86400, 86400 * 365])
def test_timestamp_outside_window(gw, upstream, offset):
    body = sender.make_event()
    ts = int(time.time()) + offset
    r = gw.send(body, ts=ts)  # correctly signed for that timestamp
    assert_error(r, 401, "timestamp_outside_window")
    assert upstream.count() == 0


@pytest.mark.parametrize("offset", [-240, +240])
def test_timestamp_inside_window_passes(gw, upstream, offset):
    body = sender.make_event()
    r = gw.send(body, ts=int(time.time()) + offset)
    assert r.status == 200, r
    assert upstream.count() == 1


def test_short_tolerance_is_honoured(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH), tolerance="10s")])
    body = sender.make_event()
    assert_error(g.send(body, ts=int(time.time()) - 60), 401, "timestamp_outside_window")
    assert g.send(body, ts=int(time.time()) - 2).status == 200
    assert upstream.count() == 1


# ------------------------------------------------------------------ signature
def test_signature_missing(gw, upstream):
    body = sender.make_event()
    r = gw.send(body, extra_headers={"X-VECU-Signature": None})
    assert_error(r, 401, "signature_missing")
    assert upstream.count() == 0


@pytest.mark.parametrize("sig", [
    "deadbeef",
    "sha256=",
    "sha256=" + "a" * 63,
    "sha256=" + "a" * 65,
    "sha256=" + "g" * 64,
    "sha1=" + "a" * 64,
    "a" * 64,                      # no prefix
    "sha256:" + "a" * 64,
])
def test_signature_malformed(gw, upstream, sig):
    body = sender.make_event()
    r = gw.send(body, extra_headers={"X-VECU-Signature": sig})
    assert_error(r, 401, "signature_malformed")
    assert upstream.count() == 0


def test_signature_wrong_secret(gw, upstream):
    body = sender.make_event()
    r = gw.send(body, secret="some-other-secret-that-is-long-enough-0123456789")
    assert_error(r, 401, "signature_mismatch")
    assert upstream.count() == 0


def test_signature_over_tampered_body(gw, upstream):
    body = sender.make_event(id="evt_tamper")
    headers = sender.sign(SECRET, int(time.time()), body)
    tampered = body.replace(b"5XXXX00000XEXMPL0", b"5XXXX00000XEXMPL1")
    assert tampered != body
    r = gw.send(tampered, extra_headers=headers)
    assert_error(r, 401, "signature_mismatch")
    assert upstream.count() == 0


def test_signature_with_other_timestamp(gw, upstream):
    """The signature covers the timestamp: replaying it with a new timestamp fails."""
    body = sender.make_event()
    now = int(time.time())
    headers = sender.sign(SECRET, now - 10, body)
    headers["X-VECU-Timestamp"] = str(now)
    assert_error(gw.send(body, extra_headers=headers), 401, "signature_mismatch")
    assert upstream.count() == 0


def test_flipped_signature_is_mismatch_and_correct_one_passes(gw, upstream):
    """A correct signature must verify; the wrong one with the right shape is a mismatch."""
    body = sender.make_event()
    ts = int(time.time())
    good = sender.sign(SECRET, ts, body)
    flipped = good["X-VECU-Signature"][:-1] + ("0" if good["X-VECU-Signature"][-1] != "0" else "1")
    assert_error(gw.send(body, extra_headers={"X-VECU-Timestamp": str(ts), "X-VECU-Signature": flipped}),
                 401, "signature_mismatch")
    assert gw.send(body, extra_headers=good).status == 200
    assert upstream.count() == 1


# ------------------------------------------------------------------ rotation
def test_secret_rotation_two_secrets(start_gateway, upstream, tmp_path):
    secret_file = tmp_path / "second.secret"
    secret_file.write_text(SECRET2)
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH),
                                  secrets=[{"env": "VECU_WEBHOOK_SECRET"}, {"file": str(secret_file)}])])
    r2 = g.send(sender.make_event(id="evt_rot_2"), secret=SECRET2)
    assert r2.status == 200, r2
    r1 = g.send(sender.make_event(id="evt_rot_1"), secret=SECRET)
    assert r1.status == 200, r1
    bad = g.send(sender.make_event(id="evt_rot_x"), secret=SECRET2[::-1])
    assert_error(bad, 401, "signature_mismatch")
    ids = [json.loads(r["body_bytes"])["id"] for r in upstream.records()]
    assert sorted(ids) == ["evt_rot_1", "evt_rot_2"]


def test_secret_from_second_env(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH),
                                  secrets=[{"env": "VECU_WEBHOOK_SECRET"}, {"env": "VECU_WEBHOOK_SECRET_NEXT"}])],
                      env_extra={"VECU_WEBHOOK_SECRET_NEXT": SECRET2})
    assert g.send(sender.make_event(), secret=SECRET2).status == 200
    assert upstream.count() == 1


# ------------------------------------------------------------------ envelope
def _signed_raw(gw, raw):
    return gw.send(raw, extra_headers={"X-VECU-Event-ID": None, "X-VECU-Event-Type": None})


def _ev(**changes):
    ev = json.loads(sender.make_event())
    for k, v in changes.items():
        if v is ...:
            ev.pop(k)
        else:
            ev[k] = v
    return json.dumps(ev).encode()


@pytest.mark.parametrize("raw", [
    b"not json at all",
    b"",
    b"[1,2,3]",
    b'"a string"',
    b"null",
    b'{"id": "x", "source": "s", "type": "t", "specversion": "1.0"',   # truncated
    _ev(id=...),
    _ev(id=123),
    _ev(id=None),
    _ev(source=...),
    _ev(source=["vecu"]),
    _ev(type=...),
    _ev(type=7),
    _ev(specversion=...),
    _ev(specversion="0.3"),
    _ev(specversion=1.0),
], ids=["text", "empty", "array", "string", "null", "truncated", "no-id", "int-id", "null-id",
        "no-source", "list-source", "no-type", "int-type", "no-specversion", "specversion-0.3",
        "specversion-number"])
def test_envelope_invalid(gw, upstream, raw):
    r = _signed_raw(gw, raw)
    assert_error(r, 400, "envelope_invalid")
    assert upstream.count() == 0


def test_envelope_check_comes_after_signature(gw, upstream):
    """An unsigned garbage body is a 401, not a 400: nothing is parsed before verification."""
    r = gw.send(b"not json", secret="wrong-secret-wrong-secret-wrong-secret-123")
    assert_error(r, 401, "signature_mismatch")


def test_event_id_header_mismatch(gw, upstream):
    body = sender.make_event(id="evt_body_id")
    r = gw.send(body, extra_headers={"X-VECU-Event-ID": "evt_other_id"})
    assert_error(r, 400, "event_id_mismatch")
    assert upstream.count() == 0


def test_event_id_header_absent_is_fine(gw, upstream):
    body = sender.make_event(id="evt_no_header")
    r = gw.send(body, extra_headers={"X-VECU-Event-ID": None})
    assert r.status == 200, r
    recs = upstream.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == body
