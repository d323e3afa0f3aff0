"""`hookgate subscribe`, `subscriptions list` and `unsubscribe` against a local HTTPS stand-in of
the platform's subscription API (Tests/peers/subscription_api.py), which checks every request
against the guide and answers as the guide shows, including its refusals."""
import json
import os
import ssl
import stat
import subprocess
import sys
import urllib.request

import pytest

from conftest import PEERS, STARTUP_TIMEOUT, _kill, _read_ready

TOKEN = "test-access-token-0123456789"
APP_URL = "https://your-app.example/webhooks/vecu"


class SubscriptionAPI:
    def __init__(self, tls):
        self.proc = subprocess.Popen(
            [sys.executable, str(PEERS / "subscription_api.py"), "--port", "0", "--cert", tls.server.cert,
             "--key", tls.server.key, "--token", TOKEN], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = _read_ready(self.proc, STARTUP_TIMEOUT, "subscription_api.py")
        self.ctx = ssl.create_default_context(cafile=tls.ca)

    @property
    def api(self):
        return "https://127.0.0.1:%d" % self.port

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
            return json.loads(r.read())

    def mode(self, **kw):
        return self._call("POST", "/_control/mode", kw)

    def requests(self):
        return self._call("GET", "/_control/requests")

    def subscriptions(self):
        return self._call("GET", "/_control/subscriptions")

    def stop(self):
        _kill(self.proc)
        self.proc.stdout.close()


@pytest.fixture
def api(tls_material):
    a = SubscriptionAPI(tls_material)
    yield a
    a.stop()


@pytest.fixture
def subscribe(run_cli, api, tls_material):
    def run(*args, token_env=True, env=None):
        base = ["--api", api.api, "--ca-file", tls_material.ca]
        if token_env:
            base += ["--token-env", "VECU_TOKEN"]
        e = {"VECU_TOKEN": TOKEN}
        e.update(env or {})
        n = 2 if args[0] == "subscriptions" else 1
        return run_cli(list(args[:n]) + base + list(args[n:]), env_extra=e)
    return run


def assert_quiet(r, secret=None):
    """Nothing secret on the terminal."""
    out = r.stdout + r.stderr
    assert TOKEN not in out
    if secret:
        assert secret not in out


def test_subscribe_sends_the_guides_request_and_saves_the_secret(subscribe, api, tmp_path):
    path = tmp_path / "vecu.secret"
    r = subscribe("subscribe", "--url", APP_URL, "--product-group", "CUSTODY_SDK", "--secret-file", path)
    assert r.returncode == 0, r.stderr
    [req] = api.requests()
    assert req["method"] == "POST" and req["path"] == "/event-relay/subscriptions" and req["status"] == 201
    headers = {k.lower(): v for k, v in req["headers"]}
    assert headers["authorization"] == "Bearer <ok>"
    assert headers["content-type"] == "application/json"
    body = req["json"]
    assert set(body) == {"url", "authType", "authConfig", "eventFilters"}
    assert body["url"] == APP_URL and body["authType"] == "HMAC_SHA256"
    assert body["eventFilters"] == {"productGroups": ["CUSTODY_SDK"]}
    sent = body["authConfig"]["secret"]
    assert len(sent) == 48 and sent.isalnum()
    [sub] = api.subscriptions()
    assert path.read_text() == sub["authConfig"]["secret"] + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "subscription %s status active" % sub["id"] in r.stdout
    assert_quiet(r, sent)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".hookgate-secret")] == []


def test_secrets_differ_between_runs(subscribe, api, tmp_path):
    for i in range(2):
        r = subscribe("subscribe", "--url", APP_URL + str(i), "--secret-file", tmp_path / ("s%d" % i))
        assert r.returncode == 0, r.stderr
    a, b = [q["json"]["authConfig"]["secret"] for q in api.requests()]
    assert a != b


def test_the_answer_secret_is_what_is_written(subscribe, api, tmp_path):
    api.mode(answer_secret="platform-chosen-secret-0123456789abcdef")
    path = tmp_path / "s"
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", path)
    assert r.returncode == 0, r.stderr
    assert path.read_text() == "platform-chosen-secret-0123456789abcdef\n"
    assert_quiet(r, "platform-chosen-secret")


def test_every_filter_flag_uses_the_guides_names(subscribe, api, tmp_path):
    r = subscribe("subscribe", "--url", APP_URL, "--product-group", "CUSTODY_SDK", "--product-group", "CREDENTIAL_SDK",
                  "--pattern", "custody.*", "--include", "custody.vehicle.released", "--exclude", "credential.expired",
                  "--secret-file", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert api.requests()[0]["json"]["eventFilters"] == {
        "productGroups": ["CUSTODY_SDK", "CREDENTIAL_SDK"], "patterns": ["custody.*"],
        "include": ["custody.vehicle.released"], "exclude": ["credential.expired"]}


def test_token_file(run_cli, api, tls_material, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    r = run_cli(["subscribe", "--api", api.api, "--ca-file", tls_material.ca, "--token-file", token, "--url", APP_URL,
                 "--secret-file", tmp_path / "s"])
    assert r.returncode == 0, r.stderr
    assert_quiet(r)


@pytest.mark.parametrize("args, message", [
    (["--pattern", ""], "--pattern \"\": an empty pattern"),
    (["--include", "custody.*"], "cannot hold '*'"),
    (["--exclude", "cust\u043edy.a"], "printable ASCII"),
    (["--product-group", "CUSTODY-SDK"], "group name"),
    (["--pattern", "custody .*"], "printable ASCII"),
])
def test_bad_filters_are_refused_before_anything_is_sent(subscribe, api, tmp_path, args, message):
    r = subscribe("subscribe", "--url", APP_URL, *args, "--secret-file", tmp_path / "s")
    assert r.returncode != 0
    assert message in r.stderr
    assert api.requests() == []
    assert not (tmp_path / "s").exists()


def test_http_url_is_refused(subscribe, api, tmp_path):
    r = subscribe("subscribe", "--url", "http://your-app.example/hooks", "--secret-file", tmp_path / "s")
    assert r.returncode != 0 and "https://" in r.stderr
    assert api.requests() == []


@pytest.mark.parametrize("status, body, expect", [
    (401, None, "refused the token (401"),
    (403, {"message": "insufficient scope"}, "403 Forbidden"),
    (409, {"message": "a subscription for this url already exists"}, "conflict (409): a subscription for this url already exists"),
    (422, {"message": "url is not reachable"}, "refused the request (422): url is not reachable"),
    (500, {"message": "boom"}, "the API failed (500)"),
    (503, {}, "the API failed (503)"),
])
def test_refusals_write_nothing(subscribe, api, tmp_path, status, body, expect):
    if status == 401:
        r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s", env={"VECU_TOKEN": "wrong-token"})
    else:
        api.mode(status=status, body=body)
        r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s")
    assert r.returncode == 1
    assert expect in r.stderr, r.stderr
    assert list(tmp_path.glob("s")) == [] and list(tmp_path.glob(".hookgate-secret*")) == []
    assert_quiet(r)
    assert "wrong-token" not in r.stdout + r.stderr


def test_real_conflict_from_the_stand_in(subscribe, api, tmp_path):
    assert subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "a").returncode == 0
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "b")
    assert r.returncode == 1 and "409" in r.stderr
    assert not (tmp_path / "b").exists()


def test_timeout_writes_nothing(subscribe, api, tmp_path):
    api.mode(hang=5)
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s", "--timeout", "1")
    assert r.returncode == 1
    assert "within 1s" in r.stderr, r.stderr
    assert not (tmp_path / "s").exists() and list(tmp_path.glob(".hookgate-secret*")) == []


def test_untrusted_certificate_is_refused(run_cli, api, tls_material, tmp_path):
    r = run_cli(["subscribe", "--api", api.api, "--ca-file", tls_material.other_ca, "--token-env", "VECU_TOKEN",
                 "--url", APP_URL, "--secret-file", tmp_path / "s"], env_extra={"VECU_TOKEN": TOKEN})
    assert r.returncode == 1 and "TLS" in r.stderr, r.stderr
    assert api.requests() == [] and not (tmp_path / "s").exists()


def test_existing_secret_file_needs_force(subscribe, api, tmp_path):
    path = tmp_path / "s"
    path.write_text("old-secret\n")
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", path)
    assert r.returncode == 1 and "--force" in r.stderr
    assert api.requests() == [], "nothing is sent when the file cannot be written"
    assert path.read_text() == "old-secret\n"
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", path, "--force")
    assert r.returncode == 0, r.stderr
    assert path.read_text() == api.subscriptions()[0]["authConfig"]["secret"] + "\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_answer_without_secret_writes_nothing(subscribe, api, tmp_path):
    api.mode(omit_secret=True)
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s")
    assert r.returncode == 1 and "unsubscribe" in r.stderr
    assert not (tmp_path / "s").exists()


def test_from_config_takes_the_union_of_the_destinations(subscribe, api, tmp_path):
    cfg = tmp_path / "hookgate.yaml"
    cfg.write_text("""
product_groups:
  CUSTODY_SDK: ["custody.*"]
routes:
  - name: vecu
    path: /webhooks/vecu
    verify: {scheme: vecu, secrets: [{env: VECU_WEBHOOK_SECRET}]}
    destinations:
      - name: custody-app
        filter: {product_groups: [CUSTODY_SDK], exclude: [credential.expired]}
        upstream: {url: http://127.0.0.1:9/a}
      - name: credential-app
        filter: {include: [credential.revoked], exclude: [credential.expired], patterns: ["credential.key.*"]}
        upstream: {url: http://127.0.0.1:9/b}
""")
    r = subscribe("subscribe", "--url", APP_URL, "--from-config", cfg, "--route", "vecu", "--secret-file", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert api.requests()[0]["json"]["eventFilters"] == {
        "productGroups": ["CUSTODY_SDK"], "patterns": ["credential.key.*"], "include": ["credential.revoked"],
        "exclude": ["credential.expired"]}
    r = subscribe("subscribe", "--url", APP_URL + "2", "--from-config", cfg, "--route", "nope", "--secret-file", tmp_path / "t")
    assert r.returncode == 1 and "no route named \"nope\"" in r.stderr
    r = subscribe("subscribe", "--url", APP_URL + "2", "--from-config", cfg, "--route", "vecu", "--pattern", "x.*",
                  "--secret-file", tmp_path / "t")
    assert r.returncode != 0 and "no filter flags" in r.stderr


def test_list_and_unsubscribe(subscribe, api, tmp_path):
    assert subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s").returncode == 0
    sid = api.subscriptions()[0]["id"]
    secret = (tmp_path / "s").read_text().strip()
    r = subscribe("subscriptions", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "%s\tactive\t%s" % (sid, APP_URL)
    assert_quiet(r, secret)
    reqs = api.requests()
    assert reqs[-1]["method"] == "GET" and reqs[-1]["path"] == "/event-relay/subscriptions"
    r = subscribe("unsubscribe", sid)
    assert r.returncode == 0, r.stderr
    assert "subscription %s deleted" % sid in r.stdout
    assert api.requests()[-1]["method"] == "DELETE" and api.requests()[-1]["path"] == "/event-relay/subscriptions/" + sid
    assert api.subscriptions() == []
    r = subscribe("unsubscribe", sid)
    assert r.returncode == 1 and "404" in r.stderr and "no such subscription" in r.stderr
    r = subscribe("unsubscribe", "../../admin")
    assert r.returncode != 0 and api.requests()[-1]["path"].endswith(sid)


def test_list_and_unsubscribe_refusals(subscribe, api):
    api.mode(status=403, body={"message": "no"})
    r = subscribe("subscriptions", "list")
    assert r.returncode == 1 and "403" in r.stderr
    r = subscribe("unsubscribe", "01JA4KXYZ000001")
    assert r.returncode == 1 and "403" in r.stderr
    assert_quiet(r)


def test_token_flags_are_exclusive_and_required(run_cli, api, tmp_path):
    r = run_cli(["subscribe", "--api", api.api, "--url", APP_URL, "--secret-file", tmp_path / "s"])
    assert r.returncode != 0 and "--token-env or --token-file" in r.stderr
    r = run_cli(["subscribe", "--api", api.api.replace("https", "http"), "--token-env", "X", "--url", APP_URL,
                 "--secret-file", tmp_path / "s"])
    assert r.returncode != 0 and "https://" in r.stderr


@pytest.mark.parametrize("answer, expect", [
    ({"id": "01JA4KXYZ9", "status": "active"}, "no usable authConfig.secret"),
    ({"id": "01JA4KXYZ9", "status": "active", "authConfig": {"secret": "short"}}, "no usable authConfig.secret"),
    ({"id": "01JA4KXYZ9", "status": "active", "authConfig": {"secret": 12345678901234567890123456789012345}},
     "no usable authConfig.secret"),
    ({"status": "active", "authConfig": {"secret": "s" * 40}}, "without a usable subscription id"),
    ({"id": "\u001b[31mred", "authConfig": {"secret": "s" * 40}}, "without a usable subscription id"),
    ({"id": "../../x", "authConfig": {"secret": "s" * 40}}, "without a usable subscription id"),
    ("not an object", "without a usable subscription id"),
    ([1, 2, 3], "without a usable subscription id"),
])
def test_hostile_success_answers_write_nothing(subscribe, api, tmp_path, answer, expect):
    api.mode(status=201, body=answer)
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s")
    assert r.returncode == 1, r.stdout
    assert expect in r.stderr, r.stderr
    assert "\u001b" not in r.stdout + r.stderr
    assert not (tmp_path / "s").exists() and list(tmp_path.glob(".hookgate-secret*")) == []


def test_escape_sequences_from_the_api_are_not_printed(subscribe, api, tmp_path):
    api.mode(status=400, body={"message": "bad \u001b]0;owned\u0007 request"})
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s")
    assert r.returncode == 1 and "\u001b" not in r.stderr and "\u0007" not in r.stderr
    assert "bad ]0;owned request" in r.stderr


def test_huge_answer_is_not_an_answer(subscribe, api, tmp_path):
    api.mode(status=201, body={"id": "01JA4KXYZ9", "pad": "x" * (2 << 20), "authConfig": {"secret": "s" * 40}})
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s")
    assert r.returncode == 1
    assert not (tmp_path / "s").exists()


def test_trickling_answer_is_cut_at_the_timeout(subscribe, api, tmp_path):
    """Each byte comes before the read timeout, the whole answer would take minutes: the
    deadline bounds the whole exchange. The subscription may exist on the platform then; the
    message says the answer never came, and nothing is written."""
    api.mode(trickle=0.5)
    r = subscribe("subscribe", "--url", APP_URL, "--secret-file", tmp_path / "s", "--timeout", "2")
    assert r.returncode == 1
    assert "within 2s" in r.stderr, r.stderr
    assert not (tmp_path / "s").exists() and list(tmp_path.glob(".hookgate-secret*")) == []
