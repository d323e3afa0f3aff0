"""Hostile envelopes, all correctly signed: deep nesting, huge strings, duplicate and escaped keys,
non-string ids, invalid UTF-8, a BOM, oversized ids, unicode ids.

Refused bodies get 400 envelope_invalid, reach no upstream and do not touch dedup: the same event
id, sent afterwards in a valid envelope, is forwarded."""
import json
import time
import uuid

import pytest

import sender
from conftest import (SECRET, UPSTREAM_PATH, assert_error, make_route, raw_exchange, record_headers, request_bytes,
                      signed_headers)

MAX_DEPTH = 128  # deepest accepted nesting of objects and arrays, the top-level object being level 1


@pytest.fixture(scope="module")
def egw(module_launch_gateway, module_upstream):
    return module_launch_gateway([make_route(module_upstream.url(UPSTREAM_PATH))])


@pytest.fixture
def upstream(module_upstream, egw):
    module_upstream.reset()
    yield module_upstream
    assert egw.alive(), "the gateway died: %s" % egw.stderr()[-2000:]


def new_id():
    return "evt_" + uuid.uuid4().hex


def envelope(id_json=None, data_json='{"vin":"5XXXX00000XEXMPL0"}', extra=""):
    """An envelope written by hand (so that anything can be put in it) as UTF-8 bytes. id_json is
    the JSON text of the id value (default: a fresh string id)."""
    if id_json is None:
        id_json = json.dumps(new_id())
    text = ('{"id":%s,"source":"vecu.custody-service","type":"custody.vehicle.released",'
            '"specversion":"1.0"%s,"data":%s}' % (id_json, extra, data_json))
    return text.encode("utf-8")


def send_signed(g, body):
    """Correctly signed; no X-VECU-Event-ID / -Type headers, so only the body decides (and the
    body is not parsed here: some of them would exhaust Python's own JSON recursion)."""
    headers = {"Content-Type": "application/json", "X-VECU-Retry-Count": "0"}
    headers.update(sender.sign(SECRET, int(time.time()), body))
    return sender.request(g.url(), body, headers)


def rejected(g, upstream, body, event_id=None):
    r = send_signed(g, body)
    assert_error(r, 400, "envelope_invalid")
    assert upstream.count() == 0, "an invalid envelope reached the upstream"
    # dedup untouched: the id (or a fresh one) in a valid envelope is forwarded
    ok = sender.make_event(id=event_id or new_id())
    r2 = g.send(ok)
    assert r2.status == 200 and r2.body == b'{"ok":true}', r2
    assert upstream.count() == 1
    return r


def accepted(g, upstream, body):
    r = send_signed(g, body)
    assert r.status == 200 and r.body == b'{"ok":true}', r
    recs = upstream.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == body, "forwarded body differs"
    return recs[0]


def nested(levels, kind):
    """A JSON value `levels` containers deep."""
    if kind == "array":
        return "[" * levels + "]" * levels
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


# ------------------------------------------------------------------ nesting
# The envelope object is level 1, so data nested n deep makes a document n + 1 levels deep.
@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_200_levels_is_400(egw, upstream, kind):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid), nested(199, kind)), eid)


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_100_levels_is_accepted(egw, upstream, kind):
    accepted(egw, upstream, envelope(data_json=nested(99, kind)))


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_128_levels_is_accepted(egw, upstream, kind):
    accepted(egw, upstream, envelope(data_json=nested(MAX_DEPTH - 1, kind)))


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_129_levels_is_400(egw, upstream, kind):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid), nested(MAX_DEPTH, kind)), eid)


@pytest.mark.parametrize("kind", ["array", "object"])
def test_nesting_130_levels_is_400(egw, upstream, kind):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid), nested(MAX_DEPTH + 1, kind)), eid)


def test_deep_nesting_in_an_extension_attribute_is_400(egw, upstream):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid), extra=',"ext":' + nested(500, "array")), eid)


def test_unclosed_deep_nesting_is_400(egw, upstream):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid), "[" * 100000), eid)


# ------------------------------------------------------------------ size
def test_huge_string_in_data_is_accepted_byte_for_byte(egw, upstream):
    big = "x" * (500 * 1024)
    body = envelope(data_json=json.dumps({"blob": big, "esc": "\\\"\u00e9\n" * 100}))
    assert len(body) > 500 * 1024
    rec = accepted(egw, upstream, body)
    assert int(record_headers(rec, "Content-Length")[0]) == len(body)


@pytest.mark.parametrize("n_bytes,ok", [(1024, True), (1025, False), (4096, False)])
def test_id_length_limit_is_1024_bytes(egw, upstream, n_bytes, ok):
    eid = "i" * n_bytes
    body = envelope(json.dumps(eid))
    if ok:
        accepted(egw, upstream, body)
    else:
        rejected(egw, upstream, body)


@pytest.mark.parametrize("n_chars,ok", [(512, True), (513, False)])
def test_id_length_limit_counts_utf8_bytes(egw, upstream, n_chars, ok):
    eid = "\u00e9" * n_chars  # 2 bytes each
    body = envelope(json.dumps(eid, ensure_ascii=False))
    if ok:
        accepted(egw, upstream, body)
    else:
        rejected(egw, upstream, body)


@pytest.mark.parametrize("field", ["source", "type"])
def test_source_or_type_over_1024_bytes_is_400(egw, upstream, field):
    ev = json.loads(sender.make_event())
    ev[field] = "s" * 1025
    rejected(egw, upstream, json.dumps(ev).encode(), ev["id"])


# ------------------------------------------------------------------ keys
@pytest.mark.parametrize("second", ["same", "other"])
def test_duplicate_id_keys_are_400(egw, upstream, second):
    eid = new_id()
    other = eid if second == "same" else new_id()
    body = envelope(json.dumps(eid), extra=',"id":%s' % json.dumps(other))
    rejected(egw, upstream, body, eid)
    # neither id was consumed
    assert egw.send(sender.make_event(id=other if other != eid else new_id())).status == 200


def test_duplicate_id_key_spelled_with_an_escape_is_400(egw, upstream):
    eid = new_id()
    body = envelope(json.dumps(eid), extra=',"\\u0069d":%s' % json.dumps(new_id()))
    assert b'"\\u0069d"' in body
    rejected(egw, upstream, body, eid)


@pytest.mark.parametrize("key", ["source", "type", "specversion"])
def test_other_duplicate_envelope_keys_are_400(egw, upstream, key):
    eid = new_id()
    value = {"source": '"vecu.other"', "type": '"credential.revoked"', "specversion": '"1.0"'}[key]
    rejected(egw, upstream, envelope(json.dumps(eid), extra=',"%s":%s' % (key, value)), eid)


def test_id_key_spelled_with_an_escape_is_the_id(egw, upstream):
    eid = new_id()
    body = ('{"\\u0069d":%s,"source":"vecu.custody-service","type":"custody.vehicle.released",'
            '"specversion":"1.0","data":{}}' % json.dumps(eid)).encode()
    rec = accepted(egw, upstream, body)
    assert record_headers(rec, "X-Hookgate-Event-Id") == [eid]
    dup = egw.send(sender.make_event(id=eid))  # same event in the usual spelling
    assert dup.status == 200 and dup.json() == {"duplicate": True}, dup
    assert upstream.count() == 1


@pytest.mark.parametrize("id_json", ["123", "null", "true", "{}", '["x"]', '""', "1.5"],
                         ids=["number", "null", "bool", "object", "array", "empty", "float"])
def test_non_string_or_empty_id_is_400(egw, upstream, id_json):
    rejected(egw, upstream, envelope(id_json))


# ------------------------------------------------------------------ encoding
@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80"],
                         ids=["ff", "overlong-slash", "utf8-surrogate", "truncated", "above-10ffff", "lone-continuation"])
@pytest.mark.parametrize("where", ["data", "id", "key"])
def test_invalid_utf8_in_a_string_is_400(egw, upstream, bad, where):
    eid = new_id()
    if where == "data":
        body = _splice(eid, data=b'{"note":"a' + bad + b'b"}')
    elif where == "id":
        body = _splice(eid, id_raw=b'"' + eid.encode() + bad + b'"')
    else:
        body = _splice(eid, extra=b',"k' + bad + b'":1')
    rejected(egw, upstream, body, eid)


def _splice(eid, id_raw=None, data=b"{}", extra=b""):
    """An envelope assembled from raw bytes (for invalid UTF-8)."""
    return (b'{"id":' + (id_raw or json.dumps(eid).encode()) + b',"source":"vecu.custody-service",'
            b'"type":"custody.vehicle.released","specversion":"1.0"' + extra + b',"data":' + data + b"}")


@pytest.mark.parametrize("esc", ["\\ud800", "\\udc00", "\\ud800\\u0041", "\\ud83d"],
                         ids=["lone-high", "lone-low", "high-then-ascii", "high-at-end"])
def test_lone_surrogate_escapes_are_400(egw, upstream, esc):
    eid = new_id()
    rejected(egw, upstream, _splice(eid, data=('{"s":"%s"}' % esc).encode()), eid)


def test_utf8_bom_before_the_json_is_400(egw, upstream):
    eid = new_id()
    rejected(egw, upstream, b"\xef\xbb\xbf" + envelope(json.dumps(eid)), eid)


@pytest.mark.parametrize("raw_data", [b'{"a":"tab\there"}', b'{"a":"nl\nhere"}', b'{"a":01}', b'{"a":1.}',
                                      b'{"a":-}', b'{"a":NaN}', b'{"a":tru}', b'{"a":1,}', b"{'a':1}",
                                      b'{"a":"\\x41"}'],
                         ids=["raw-tab", "raw-newline", "leading-zero", "bare-dot", "bare-minus", "nan",
                              "bad-literal", "trailing-comma", "single-quotes", "bad-escape"])
def test_invalid_json_inside_data_is_400(egw, upstream, raw_data):
    eid = new_id()
    rejected(egw, upstream, _splice(eid, data=raw_data), eid)


@pytest.mark.parametrize("tail", [b"{}", b"x", b"\x00", b',{"id":"y"}'])
def test_data_after_the_envelope_is_400(egw, upstream, tail):
    eid = new_id()
    rejected(egw, upstream, envelope(json.dumps(eid)) + tail, eid)


def test_whitespace_around_the_envelope_is_fine(egw, upstream):
    accepted(egw, upstream, b" \r\n\t" + envelope() + b"\n\n ")


# ------------------------------------------------------------------ unicode ids
def test_unicode_escaped_id_is_accepted_and_delivered_as_utf8(egw, upstream):
    tail = uuid.uuid4().hex[:8]
    decoded = "\u00e9v\u4e2d\U0001F600-" + tail
    escaped = json.dumps(decoded, ensure_ascii=True)  # "\u00e9v\u4e2d\ud83d\ude00-..."
    assert "\\ud83d\\ude00" in escaped
    rec = accepted(egw, upstream, envelope(escaped))
    got = record_headers(rec, "X-Hookgate-Event-Id")
    assert len(got) == 1
    # the upstream peer decodes header bytes as latin-1; recover the bytes sent on the wire
    assert got[0].encode("latin-1") == decoded.encode("utf-8"), got[0].encode("latin-1")

    # the same id written as raw UTF-8 is the same event: a duplicate, with a matching
    # X-VECU-Event-ID header (UTF-8 on the wire) accepted
    raw_body = envelope(json.dumps(decoded, ensure_ascii=False))
    pairs = list(signed_headers(raw_body, extra_headers={"X-VECU-Event-ID": None}).items())
    pairs.append(("X-VECU-Event-ID", decoded.encode("utf-8")))
    r = raw_exchange(egw.port, request_bytes("POST", "/webhooks/vecu", pairs, raw_body))
    assert r is not None and r.status == 200 and r.json() == {"duplicate": True}, r
    assert upstream.count() == 1


def test_event_id_header_must_match_the_decoded_id(egw, upstream):
    decoded = "caf\u00e9-" + uuid.uuid4().hex[:8]
    body = envelope(json.dumps(decoded))  # escaped in the body
    pairs = list(signed_headers(body, extra_headers={"X-VECU-Event-ID": None}).items())
    pairs.append(("X-VECU-Event-ID", decoded.replace("\u00e9", "e").encode()))
    r = raw_exchange(egw.port, request_bytes("POST", "/webhooks/vecu", pairs, body))
    assert r is not None
    assert_error(r, 400, "event_id_mismatch")
    assert upstream.count() == 0
    assert send_signed(egw, body).status == 200


# ------------------------------------------------------------------ CloudEvents string characters
# CloudEvents 1.0 String attributes exclude controls (U+0000-U+001F, U+007F-U+009F) and
# noncharacters; JSON escapes decode to the same characters, so they are refused too.
FORBIDDEN = [
    ("escaped-nul", b'"a\\u0000b"'),
    ("escaped-0x1f", b'"a\\u001fb"'),
    ("raw-del", b'"a\x7fb"'),
    ("raw-c1-nel", b'"a\xc2\x85b"'),
    ("escaped-c1-nel", b'"a\\u0085b"'),
    ("escaped-0x9f", b'"a\\u009fb"'),
    ("raw-fdd0", b'"a\xef\xb7\x90b"'),
    ("escaped-fffe", b'"a\\ufffeb"'),
    ("raw-ffff", b'"a\xef\xbf\xbfb"'),
    ("escaped-1fffe", b'"a\\ud83f\\udffeb"'),
    ("raw-10ffff", b'"a\xf4\x8f\xbf\xbfb"'),
    ("lone-surrogate", b'"a\\ud800b"'),
]


def envelope_with(field, value_json):
    values = {"id": json.dumps(new_id()).encode(), "source": b'"vecu.custody-service"',
              "type": b'"custody.vehicle.released"', "specversion": b'"1.0"'}
    values[field] = value_json
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in values.items()) + b',"data":{}}'


@pytest.mark.parametrize("value", [v for _, v in FORBIDDEN], ids=[n for n, _ in FORBIDDEN])
@pytest.mark.parametrize("field", ["id", "source", "type"])
def test_control_and_noncharacter_in_an_attribute_is_400(egw, upstream, field, value):
    r = rejected(egw, upstream, envelope_with(field, value))
    assert '"%s"' % field in r.json()["message"], r.json()


def test_ids_a_nul_b_and_a_c1_b_are_refused_not_forwarded_as_one_event(egw, upstream):
    """`a\\u0000b` and `a<U+0085>b` once reached the app with the same X-Hookgate-Event-Id."""
    for value in (b'"a\\u0000b"', b'"a\xc2\x85b"'):
        r = send_signed(egw, envelope_with("id", value))
        assert_error(r, 400, "envelope_invalid")
    assert upstream.count() == 0


@pytest.mark.parametrize("value", ['"a\\u0020b"', '"a\\u00a0b"', '"a\\ufdcfb"', '"a\\ufdf0b"', '"a\\ufffdb"'],
                         ids=["space", "nbsp", "fdcf", "fdf0", "fffd"])
def test_neighbours_of_forbidden_characters_are_accepted(egw, upstream, value):
    accepted(egw, upstream, envelope_with("id", value.encode()))


def test_event_id_header_nfd_against_an_nfc_body_is_a_mismatch(egw, upstream):
    decoded = "caf\u00e9-" + uuid.uuid4().hex[:8]
    body = envelope(json.dumps(decoded, ensure_ascii=False))
    pairs = list(signed_headers(body, extra_headers={"X-VECU-Event-ID": None}).items())
    pairs.append(("X-VECU-Event-ID", decoded.replace("\u00e9", "e\u0301").encode("utf-8")))
    r = raw_exchange(egw.port, request_bytes("POST", "/webhooks/vecu", pairs, body))
    assert r is not None
    assert_error(r, 400, "event_id_mismatch")
    assert upstream.count() == 0
