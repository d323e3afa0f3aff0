"""`hookgate check`, `hookgate sign` (with curl) and `hookgate demo`."""
import copy
import hashlib
import hmac
import re
import subprocess
import time

import pytest

import sender
from conftest import REPO_ROOT, SECRET, UPSTREAM_PATH, make_config, make_route, to_yaml, wait_port


def base_config():
    return make_config(18080, [make_route("http://127.0.0.1:3000/webhooks/vecu")])


def write(tmp_path, cfg, name="hookgate.yaml"):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else to_yaml(cfg) + "\n")
    return p


def out_of(proc):
    return (proc.stdout or "") + (proc.stderr or "")


# ------------------------------------------------------------------ check
def test_check_valid_config(run_cli, tmp_path):
    p = write(tmp_path, base_config())
    res = run_cli(["check", "--config", p])
    assert res.returncode == 0, out_of(res)
    assert "configuration is valid" in res.stdout


def test_check_valid_config_from_the_brief(run_cli, tmp_path):
    """The example config from the documentation, verbatim."""
    text = """listen: 127.0.0.1:8080
workers: 1
limits:
  max_body_bytes: 1048576
  max_header_bytes: 16384
  client_timeout: 15s
routes:
  - name: vecu
    path: /webhooks/vecu
    verify:
      scheme: vecu
      secrets:
        - env: VECU_WEBHOOK_SECRET      # also `- file: PATH`; secrets must be >= 32 bytes
      tolerance: 300s
    dedup:
      capacity: 100000
      ttl: 72h
    upstream:
      url: http://127.0.0.1:3000/webhooks/vecu
      timeout: 25s                      # must be < 30s
      max_connections: 64
      add_headers:
        X-Source: hookgate
"""
    res = run_cli(["check", "--config", write(tmp_path, text)])
    assert res.returncode == 0, out_of(res)
    assert "configuration is valid" in res.stdout


def test_check_valid_edge_values(run_cli, tmp_path):
    """A 32-byte secret from a file and a 29s upstream timeout are allowed."""
    f = tmp_path / "secret32"
    f.write_text("s" * 32)
    cfg = base_config()
    cfg["routes"][0]["verify"]["secrets"] = [{"file": str(f)}]
    cfg["routes"][0]["upstream"]["timeout"] = "29s"
    res = run_cli(["check", "--config", write(tmp_path, cfg)], env_remove=["VECU_WEBHOOK_SECRET"])
    assert res.returncode == 0, out_of(res)
    assert "configuration is valid" in res.stdout


def _mut_unknown_top(cfg, tmp):
    cfg["bogus_top_key"] = 1


def _mut_unknown_route(cfg, tmp):
    cfg["routes"][0]["verify"]["bogus_verify_key"] = "x"


def _mut_unknown_upstream(cfg, tmp):
    cfg["routes"][0]["upstream"]["bogus_upstream_key"] = "x"


def _mut_file_missing(cfg, tmp):
    cfg["routes"][0]["verify"]["secrets"] = [{"file": str(tmp / "does-not-exist.secret")}]


def _mut_short_env(cfg, tmp):
    cfg["routes"][0]["verify"]["secrets"] = [{"env": "HOOKGATE_SHORT_SECRET"}]


def _mut_short_file(cfg, tmp):
    f = tmp / "short.secret"
    f.write_text("s" * 31)
    cfg["routes"][0]["verify"]["secrets"] = [{"file": str(f)}]


def _mut_no_secrets(cfg, tmp):
    cfg["routes"][0]["verify"]["secrets"] = []


def _mut_secrets_key_absent(cfg, tmp):
    del cfg["routes"][0]["verify"]["secrets"]


def _mut_timeout_30(cfg, tmp):
    cfg["routes"][0]["upstream"]["timeout"] = "30s"


def _mut_timeout_45(cfg, tmp):
    cfg["routes"][0]["upstream"]["timeout"] = "45s"


def _mut_dup_paths(cfg, tmp):
    second = copy.deepcopy(cfg["routes"][0])
    second["name"] = "vecu-copy"
    cfg["routes"].append(second)


def _mut_scheme(cfg, tmp):
    cfg["routes"][0]["verify"]["scheme"] = "gitlab"


INVALID = [
    ("unknown-top-key", _mut_unknown_top, [r"bogus_top_key"]),
    ("unknown-verify-key", _mut_unknown_route, [r"routes\[0\]\.verify", r"bogus_verify_key"]),
    ("unknown-upstream-key", _mut_unknown_upstream, [r"routes\[0\]\.upstream", r"bogus_upstream_key"]),
    ("secret-file-missing", _mut_file_missing, [r"routes\[0\]\.verify\.secrets\[0\]"]),
    ("secret-env-short", _mut_short_env, [r"routes\[0\]\.verify\.secrets\[0\]"]),
    ("secret-file-short", _mut_short_file, [r"routes\[0\]\.verify\.secrets\[0\]"]),
    ("secrets-empty", _mut_no_secrets, [r"routes\[0\]\.verify\.secrets"]),
    ("secrets-absent", _mut_secrets_key_absent, [r"routes\[0\]\.verify\.secrets"]),
    ("timeout-30s", _mut_timeout_30, [r"routes\[0\]\.upstream\.timeout"]),
    ("timeout-45s", _mut_timeout_45, [r"routes\[0\]\.upstream\.timeout"]),
    ("duplicate-paths", _mut_dup_paths, [r"routes\[[01]\]\.path"]),
    ("unknown-scheme", _mut_scheme, [r"routes\[0\]\.verify\.scheme"]),
]


@pytest.mark.parametrize("name,mutate,patterns", INVALID, ids=[i[0] for i in INVALID])
def test_check_rejects(run_cli, tmp_path, name, mutate, patterns):
    cfg = base_config()
    mutate(cfg, tmp_path)
    res = run_cli(["check", "--config", write(tmp_path, cfg)],
                  env_extra={"HOOKGATE_SHORT_SECRET": "s" * 31})
    out = out_of(res)
    assert res.returncode == 1, "check should exit 1 for %s, got %d:\n%s" % (name, res.returncode, out)
    assert "configuration is valid" not in out
    for pat in patterns:
        assert re.search(pat, out), "output should name %s:\n%s" % (pat, out)


def test_check_missing_env_secret_message(run_cli, tmp_path):
    res = run_cli(["check", "--config", write(tmp_path, base_config())], env_remove=["VECU_WEBHOOK_SECRET"])
    assert res.returncode == 1, out_of(res)
    lines = [l.strip() for l in out_of(res).splitlines()]
    assert "routes[0].verify.secrets[0]: environment variable VECU_WEBHOOK_SECRET is not set" in lines, lines


def test_check_reports_each_problem_on_its_own_line(run_cli, tmp_path):
    cfg = make_config(18080, [
        make_route("http://127.0.0.1:3000/a", name="a", path="/a", timeout="31s"),
        make_route("http://127.0.0.1:3000/b", name="b", path="/b", scheme="gitlab"),
    ])
    res = run_cli(["check", "--config", write(tmp_path, cfg)])
    out = out_of(res)
    assert res.returncode == 1, out
    lines = out.splitlines()
    assert any("routes[0].upstream.timeout" in l for l in lines), out
    assert any("routes[1].verify.scheme" in l for l in lines), out
    assert not any("routes[0].upstream.timeout" in l and "routes[1].verify.scheme" in l for l in lines), out


def test_check_missing_file(run_cli, tmp_path):
    res = run_cli(["check", "--config", tmp_path / "nope.yaml"])
    assert res.returncode != 0
    assert "configuration is valid" not in out_of(res)


def test_serve_refuses_invalid_config(run_cli, tmp_path):
    from conftest import free_port
    port = free_port()
    cfg = make_config(port, [make_route("http://127.0.0.1:3000/x", timeout="30s")])
    res = run_cli(["serve", "--config", write(tmp_path, cfg)], timeout=15)
    assert res.returncode != 0
    assert "routes[0].upstream.timeout" in out_of(res)


# ------------------------------------------------------------------ sign
def test_sign_output_exact(run_cli, tmp_path):
    body = sender.make_event(id="evt_sign_cli", data={"t": "caf\u00e9"})
    f = tmp_path / "body.json"
    f.write_bytes(body)
    res = run_cli(["sign", "--secret-env", "VECU_WEBHOOK_SECRET", "--timestamp", "1700000000", "--body-file", f])
    assert res.returncode == 0, out_of(res)
    expected_hex = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert res.stdout.splitlines() == [
        "X-VECU-Timestamp: 1700000000",
        "X-VECU-Signature: sha256=" + expected_hex,
    ]


def test_sign_defaults_to_now(run_cli, tmp_path):
    f = tmp_path / "body.json"
    f.write_bytes(b'{"x":1}')
    before = int(time.time())
    res = run_cli(["sign", "--secret-env", "VECU_WEBHOOK_SECRET", "--body-file", f])
    after = int(time.time())
    assert res.returncode == 0, out_of(res)
    lines = res.stdout.splitlines()
    assert len(lines) == 2, lines
    ts = int(lines[0].split(": ", 1)[1])
    assert before <= ts <= after
    assert lines[1] == "X-VECU-Signature: " + sender.sign(SECRET, ts, b'{"x":1}')["X-VECU-Signature"]


def test_sign_missing_env_fails(run_cli, tmp_path):
    f = tmp_path / "body.json"
    f.write_bytes(b"{}")
    res = run_cli(["sign", "--secret-env", "HOOKGATE_NOT_SET_ANYWHERE", "--body-file", f])
    assert res.returncode != 0
    assert "X-VECU-Signature" not in res.stdout


def test_sign_then_curl_is_delivered(run_cli, gw, upstream, tmp_path):
    body = sender.make_event(id="evt_curl")
    f = tmp_path / "event.json"
    f.write_bytes(body)
    res = run_cli(["sign", "--secret-env", "VECU_WEBHOOK_SECRET", "--body-file", f])
    assert res.returncode == 0, out_of(res)
    headers = res.stdout.splitlines()
    assert len(headers) == 2
    cmd = ["curl", "-s", "-o", str(tmp_path / "resp.out"), "-w", "%{http_code}", "-X", "POST",
           "-H", "Content-Type: application/json", "-H", "X-VECU-Event-ID: evt_curl",
           "-H", "X-VECU-Event-Type: custody.vehicle.released", "-H", "X-VECU-Retry-Count: 0"]
    for h in headers:
        cmd += ["-H", h]
    cmd += ["--data-binary", "@" + str(f), gw.url()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.stdout == "200", (out.stdout, out.stderr, (tmp_path / "resp.out").read_bytes())
    assert (tmp_path / "resp.out").read_bytes() == b'{"ok":true}'
    recs = upstream.records()
    assert len(recs) == 1 and recs[0]["body_bytes"] == body
    # same again through curl: a duplicate
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.stdout == "200"
    assert (tmp_path / "resp.out").read_bytes() == b'{"duplicate":true}'
    assert upstream.count() == 1


# ------------------------------------------------------------------ demo
def test_demo_runs(run_cli):
    # run where a user would: the repo root (demo's default --config is conf/hookgate.yaml)
    res = run_cli(["demo"], timeout=60, cwd=REPO_ROOT)
    out = out_of(res)
    assert res.returncode == 0, out
    assert out.strip(), "demo should print what happened"
    assert "duplicate" in out.lower(), out
