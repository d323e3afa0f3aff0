"""Routing by event type (`destinations:` with the guide's filters) and the one answer to the
sender for several destinations."""
import json

import sender
from conftest import UPSTREAM_PATH, assert_error, make_route, record_headers

GROUPS = {"CUSTODY_SDK": ["custody.*"], "CREDENTIAL_SDK": ["credential.*"]}


def fanout_route(destinations, name="vecu"):
    route = make_route("http://unused.invalid/", name=name)
    del route["upstream"]
    route["destinations"] = destinations
    return route


def dest(name, upstream, filt=None, timeout="5s"):
    d = {"name": name, "upstream": {"url": upstream.url(UPSTREAM_PATH), "timeout": timeout}}
    if filt is not None:
        d["filter"] = filt
    return d


def start(start_gateway, destinations, **kw):
    g = start_gateway([fanout_route(destinations)], **kw)
    return g


def start_with(start_gateway, monkeypatch, routes, **top):
    """start_gateway with extra top-level keys (product_groups, admin) in the generated config."""
    import conftest
    original = conftest.make_config

    def extended(*a, **kw):
        cfg = original(*a, **kw)
        cfg.update(top)
        return cfg

    monkeypatch.setattr(conftest, "make_config", extended)
    return start_gateway(routes)


def ids(upstream):
    return [r["id"] for r in upstream.records()]


def test_issue_example_routes_by_type(start_gateway, start_upstream, monkeypatch):
    custody, credential, audit = start_upstream(), start_upstream(), start_upstream()
    g = start_with(start_gateway, monkeypatch, product_groups=GROUPS, routes=[fanout_route([
        dest("custody-app", custody, {"exclude": ["credential.expired"], "include": ["custody.vehicle.released"],
                                      "patterns": ["custody.*"], "product_groups": ["CUSTODY_SDK"]}),
        dest("credential-app", credential, {"product_groups": ["CREDENTIAL_SDK"], "exclude": ["credential.expired"]}),
        dest("audit", audit),
    ])])
    r = g.send(sender.make_event(id="e1", type="custody.vehicle.released"))
    assert r.status == 200, r.body
    assert json.loads(r.body) == {"destinations": {"custody-app": "delivered", "audit": "delivered"}}
    r = g.send(sender.make_event(id="e2", type="credential.revoked"))
    assert json.loads(r.body) == {"destinations": {"credential-app": "delivered", "audit": "delivered"}}
    # credential.expired: excluded by both apps, only the audit sink: its own answer is relayed.
    audit.mode(status=202, body='{"audit":"ok"}')
    r = g.send(sender.make_event(id="e3", type="credential.expired"))
    assert r.status == 202 and r.body == b'{"audit":"ok"}'
    entries = g.wait_logs(lambda es: any(e.get("event.id") == "e3" and e.get("msg") == "request" for e in es))
    [e3] = [e for e in entries if e.get("event.id") == "e3" and e.get("msg") == "request"]
    assert e3["destination"] == "audit" and e3["upstream.status"] == 202
    fanned = [e for e in entries if e.get("msg") == "destination finished" and e.get("event.id") == "e1"]
    assert sorted((e["destination"], e["result"]) for e in fanned) == [("audit", "delivered"), ("custody-app", "delivered")]
    assert ids(custody) == ["e1"]
    assert ids(credential) == ["e2"]
    assert ids(audit) == ["e1", "e2", "e3"]
    assert [record_headers(x, "X-Hookgate-Destination") for x in audit.records()] == [["audit"]] * 3
    assert record_headers(custody.records()[0], "X-Hookgate-Destination") == ["custody-app"]


def test_no_destination_matched_is_filtered(start_gateway, start_upstream):
    a = start_upstream()
    g = start(start_gateway, [dest("a", a, {"include": ["custody.vehicle.released"]})])
    r = g.send(sender.make_event(id="f1", type="billing.invoice.paid"))
    assert r.status == 200
    assert json.loads(r.body) == {"destinations": {}}
    assert a.count() == 0
    entries = g.wait_logs(lambda es: any(e.get("outcome") == "filtered" for e in es))
    assert any(e.get("outcome") == "filtered" and e.get("status") == 200 for e in entries)


def test_one_destination_form_has_no_destination_header(start_gateway, upstream):
    g = start_gateway([make_route(upstream.url(UPSTREAM_PATH))])
    assert g.send(sender.make_event(id="p1")).status == 200
    assert record_headers(upstream.records()[0], "X-Hookgate-Destination") == []


def test_inbound_destination_header_is_not_trusted(start_gateway, start_upstream):
    a = start_upstream()
    g = start(start_gateway, [dest("a", a)])
    body = sender.make_event(id="h1")
    r = sender.request(g.url(), body, headers=dict(sender.delivery_headers(body, sender_secret()),
                                                   **{"X-Hookgate-Destination": "evil"}))
    assert r.status == 200
    assert record_headers(a.records()[0], "X-Hookgate-Destination") == ["a"]


def sender_secret():
    from conftest import SECRET
    return SECRET


def test_retriable_failure_is_503_and_retry_reaches_only_the_missing(start_gateway, start_upstream):
    a, b = start_upstream(), start_upstream()
    g = start(start_gateway, [dest("a", a), dest("b", b)])
    b.mode(status=500, body='{"secret":"upstream detail"}')
    body = sender.make_event(id="r1")
    r = g.send(body)
    doc = assert_error(r, 503, "destination_failed")
    assert doc["destinations"] == {"a": "delivered", "b": "failed"}
    assert r.header("Retry-After") == "1"
    assert b"upstream detail" not in r.body
    b.mode(status=200)
    r = g.send(body)
    assert r.status == 200
    assert json.loads(r.body) == {"destinations": {"a": "duplicate", "b": "delivered"}}
    assert ids(a) == ["r1"]
    assert ids(b) == ["r1", "r1"]
    r = g.send(body)
    assert json.loads(r.body) == {"destinations": {"a": "duplicate", "b": "duplicate"}}
    assert ids(a) == ["r1"] and len(ids(b)) == 2


def test_429_and_unreachable_are_retriable(start_gateway, start_upstream):
    a, b = start_upstream(), start_upstream()
    g = start(start_gateway, [dest("a", a), dest("b", b)])
    a.mode(status=429)
    b_url = b.url(UPSTREAM_PATH)
    b.stop()
    r = g.send(sender.make_event(id="u1"))
    doc = assert_error(r, 503, "destination_failed")
    assert doc["destinations"] == {"a": "failed", "b": "failed"}
    assert "127.0.0.1" not in r.body.decode() and b_url not in r.body.decode()


def test_final_4xx_without_failure_is_passed_on_with_the_map(start_gateway, start_upstream):
    a, b = start_upstream(), start_upstream()
    g = start(start_gateway, [dest("a", a), dest("b", b)])
    b.mode(status=422, body='{"why":"private"}')
    r = g.send(sender.make_event(id="q1"))
    doc = assert_error(r, 422, "destination_refused")
    assert doc["destinations"] == {"a": "delivered", "b": "refused"}
    assert b"private" not in r.body


def test_timeout_is_retriable(start_gateway, start_upstream):
    a, b = start_upstream(), start_upstream()
    g = start(start_gateway, [dest("a", a), dest("b", b, timeout="300ms")])
    b.mode(hang=2.0)
    r = g.send(sender.make_event(id="t1"))
    doc = assert_error(r, 503, "destination_failed")
    assert doc["destinations"] == {"a": "delivered", "b": "failed"}


def test_each_destination_has_its_own_dedup_key(start_gateway, start_upstream):
    """The same event id and source reach two destinations: neither's ledger answers for the other."""
    a, b = start_upstream(), start_upstream()
    g = start(start_gateway, [dest("a", a, {"include": ["x.one"]}), dest("b", b, {"include": ["x.two"]})])
    # Same id and source, different types (a sender that reuses ids across types).
    assert g.send(sender.make_event(id="k1", type="x.one")).status == 200
    r = g.send(sender.make_event(id="k1", type="x.two"))
    assert r.status == 200 and r.header("X-Hookgate-Duplicate") is None
    assert ids(a) == ["k1"] and ids(b) == ["k1"]


def test_destination_metrics(start_gateway, start_upstream, monkeypatch):
    import conftest
    a, b = start_upstream(), start_upstream()
    admin = conftest.free_port()
    g = start_with(start_gateway, monkeypatch, admin={"listen": "127.0.0.1:%d" % admin},
                   routes=[fanout_route([dest("a", a, {"patterns": ["custody.*"]}), dest("b", b)])])
    conftest.wait_port(admin)
    body = sender.make_event(id="m1", type="custody.a")
    g.send(body)
    g.send(body)
    g.send(sender.make_event(id="m2", type="billing.b"))
    import urllib.request
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=10).read().decode()
    m = conftest.Metrics(text)
    get = lambda d, res: m.get("hookgate_destination_events_total", 0, route="vecu", destination=d, result=res)
    assert get("a", "forwarded") == 1 and get("a", "duplicate") == 1 and get("a", "filtered") == 1
    assert get("b", "forwarded") == 2 and get("b", "duplicate") == 1 and get("b", "filtered") == 0


def test_check_names_the_keys(run_cli, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""
product_groups:
  CUSTODY_SDK: ["custody.*"]
routes:
  - name: vecu
    path: /webhooks/vecu
    verify: {scheme: vecu, secrets: [{env: VECU_WEBHOOK_SECRET}]}
    destinations:
      - name: a
        filter: {product_groups: [BILLING_SDK], patterns: [""]}
        upstream: {url: http://127.0.0.1:9/x}
      - name: a
        upstream: {url: http://127.0.0.1:9/y}
""")
    r = run_cli(["check", "--config", cfg])
    assert r.returncode == 1
    assert "routes[0].destinations[0].filter.patterns[0]: an empty pattern" in r.stderr + r.stdout
    assert "routes[0].destinations[0].filter.product_groups[0]: unknown product group \"BILLING_SDK\"" in r.stderr + r.stdout
    assert "routes[0].destinations[1].name: duplicate destination name \"a\"" in r.stderr + r.stdout


GITHUB_SECRET = "fan-out-github-secret"


def github_post(g, body, delivery=None):
    import hashlib
    import hmac

    import requests
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-Hub-Signature-256": "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return requests.post(g.url(), data=body, headers=headers, timeout=30)


def test_event_without_id_reaches_every_destination_every_time(start_gateway, start_upstream):
    a, b = start_upstream(), start_upstream()
    route = fanout_route([dest("a", a), dest("b", b)], name="repo")
    route["verify"] = {"scheme": "github", "secrets": [{"value": GITHUB_SECRET}]}
    g = start_gateway([route])
    body = b'{"zen":"Keep it logically awesome."}'
    # No X-GitHub-Delivery: no id, so no dedup; each copy goes to both destinations.
    for _ in range(2):
        r = github_post(g, body)
        assert r.status_code == 200, r.text
        assert r.json() == {"destinations": {"a": "delivered", "b": "delivered"}}
    assert a.count() == 2 and b.count() == 2
    for up, name in ((a, "a"), (b, "b")):
        rec = up.records()[-1]
        assert record_headers(rec, "X-Hookgate-Destination") == [name]
        assert record_headers(rec, "X-Hookgate-Event-Id") == []
    # With an id, each destination de-duplicates it in its own ledger.
    assert github_post(g, body, delivery="d-1").json() == {"destinations": {"a": "delivered", "b": "delivered"}}
    assert github_post(g, body, delivery="d-1").json() == {"destinations": {"a": "duplicate", "b": "duplicate"}}
    assert a.count() == 3 and b.count() == 3


def test_check_warns_about_each_destination_that_skips_verification_and_refuses_filters_without_types(run_cli, tmp_path):
    cfg = tmp_path / "skip.yaml"
    cfg.write_text("""
listen: 127.0.0.1:0
routes:
  - name: vecu
    path: /a
    verify: {scheme: vecu, secrets: [{env: VECU_WEBHOOK_SECRET}]}
    destinations:
      - name: checked
        upstream: {url: "https://127.0.0.1:9/x"}
      - name: unchecked
        upstream: {url: "https://127.0.0.1:9/y", tls_insecure_skip_verify: true}
""")
    r = run_cli(["check", "--config", cfg])
    assert r.returncode == 0, r.stderr
    assert "warning: routes[0].destinations[1].upstream.tls_insecure_skip_verify:" in r.stderr
    assert "destinations[0].upstream.tls_insecure_skip_verify" not in r.stderr
    cfg.write_text("""
listen: 127.0.0.1:0
routes:
  - name: repo
    path: /a
    verify: {scheme: github, secrets: [{value: "x"}]}
    destinations:
      - name: all
        upstream: {url: "http://127.0.0.1:9/x"}
      - name: pushes
        filter: {include: [push]}
        upstream: {url: "http://127.0.0.1:9/y"}
""")
    r = run_cli(["check", "--config", cfg])
    assert r.returncode == 1
    assert "routes[0].destinations[1].filter" in r.stderr and "only vecu events carry" in r.stderr
