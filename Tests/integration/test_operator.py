"""What an operator looks for first: the version (`--version`, `version`, the start-up log line,
`hookgate_build_info`), the metrics (a `code` label, `process_*`, client connections, last
reload, certificate expiry, nothing empty for unrouted requests, promtool-clean exposition),
`check` printing serve's warnings, `log_level`, `--config -` and `HOOKGATE_CONFIG`."""
import copy
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time

import pytest

import sender
from conftest import (REPO_ROOT, SECRET, UPSTREAM_PATH, _openssl, free_port, make_config, make_route, poll_until,
                      to_yaml, wait_port)

VERSION = re.search(r'static let current = "([^"]+)"',
                    (REPO_ROOT / "Sources" / "HookgateCore" / "Version.swift").read_text()).group(1)
LITERAL = "literal-secret-0123456789abcdef-0123456789"


def hookgate_path():
    return os.environ.get("HOOKGATE_BIN") or str(REPO_ROOT / ".build" / "debug" / "hookgate")


def out_of(res):
    return (res.stdout or "") + (res.stderr or "")


def write(tmp_path, cfg, name="hookgate.yaml"):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else to_yaml(cfg) + "\n")
    return p


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


# ------------------------------------------------------------------ version
@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version_is_printed(run_cli, args):
    res = run_cli(args)
    assert res.returncode == 0, out_of(res)
    assert res.stdout.strip() == "hookgate " + VERSION


def test_startup_log_and_build_info_carry_the_version(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    listening = g.wait_logs(lambda es: any(e.get("msg") == "listening" for e in es))
    assert [e.get("version") for e in listening if e.get("msg") == "listening"] == [VERSION]
    m = g.metrics()
    assert m.get("hookgate_build_info", version=VERSION) == 1, m.text


# ------------------------------------------------------------------ metrics
def test_requests_total_has_the_status_code_sent(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    assert g.send(sender.make_event(id="evt_code_1")).status == 200
    assert g.send(sender.make_event(id="evt_code_1")).status == 200  # duplicate
    assert g.send(sender.make_event(id="evt_code_2"), secret="wrong-secret-0123456789abcdef0123456789").status == 401
    upstream.mode(status=503)
    assert g.send(sender.make_event(id="evt_code_3")).status == 503
    m = g.wait_metric(lambda m: m.get("hookgate_requests_total", default=0) >= 4)
    assert m.get("hookgate_requests_total", route="vecu", outcome="forwarded", code="200") == 1, m.text
    assert m.get("hookgate_requests_total", route="vecu", outcome="duplicate", code="200") == 1, m.text
    assert m.get("hookgate_requests_total", route="vecu", code="401") == 1, m.text
    assert m.get("hookgate_requests_total", route="vecu", code="503") == 1, m.text
    assert all("code" in labels for name, labels, _ in m.samples if name == "hookgate_requests_total"), m.text


def test_unrouted_requests_have_no_upstream_series(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    r = sender.request(g.url("/nowhere"), body=b"{}", headers={}, method="POST")
    assert r.status == 404
    m = g.wait_metric(lambda m: m.get("hookgate_requests_total", default=0, route="none") == 1)
    assert m.get("hookgate_requests_total", route="none", code="404") == 1, m.text
    unrouted = sorted({name for name, labels, _ in m.samples if labels.get("route") == "none"})
    assert unrouted and all(n.startswith(("hookgate_requests_total", "hookgate_request_duration_seconds")) for n in unrouted), unrouted


def test_process_metrics_come_from_proc(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    m = g.metrics()
    pid = g.proc.pid
    rss = int(open("/proc/%d/statm" % pid).read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.5 * rss <= m.get("process_resident_memory_bytes") <= 2 * rss, m.text
    fds = len(os.listdir("/proc/%d/fd" % pid))
    assert abs(m.get("process_open_fds") - fds) <= 4, (m.get("process_open_fds"), fds)
    soft = int(re.search(r"Max open files\s+(\d+)", open("/proc/%d/limits" % pid).read()).group(1))
    assert m.get("process_max_fds") == soft
    assert m.get("process_cpu_seconds_total") > 0
    assert abs(m.get("process_start_time_seconds") - time.time()) < 600, m.text
    assert abs(m.get("process_start_time_seconds") - os.stat("/proc/%d" % pid).st_ctime) < 30


def test_client_connection_metrics(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    # The start-up probe's connection is counted too: start from wherever it left the counter.
    m = g.wait_metric(lambda m: m.get("hookgate_client_connections_open") == 0)
    before = m.get("hookgate_client_connections_accepted_total")
    socks = [socket.create_connection(("127.0.0.1", g.port)) for _ in range(3)]
    try:
        m = g.wait_metric(lambda m: m.get("hookgate_client_connections_open") == 3)
        assert m.get("hookgate_client_connections_open") == 3, m.text
        assert m.get("hookgate_client_connections_accepted_total") == before + 3, m.text
    finally:
        for s in socks:
            s.close()
    m = g.wait_metric(lambda m: m.get("hookgate_client_connections_open") == 0)
    assert m.get("hookgate_client_connections_open") == 0, m.text
    assert m.get("hookgate_client_connections_accepted_total") == before + 3, m.text


def test_last_reload_metrics(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    m = g.metrics()
    assert m.get("hookgate_config_last_reload_successful") == 1, m.text
    started = m.get("hookgate_config_last_reload_success_timestamp_seconds")
    assert abs(started - time.time()) < 600
    time.sleep(1.1)  # the timestamp must move on a later reload
    g.reload(copy.deepcopy(g.config))
    m = g.wait_metric(lambda m: m.get("hookgate_config_reloads_total", result="success") == 1)
    assert m.get("hookgate_config_last_reload_successful") == 1
    reloaded = m.get("hookgate_config_last_reload_success_timestamp_seconds")
    assert reloaded > started, m.text
    bad = copy.deepcopy(g.config)
    bad["bogus_key"] = 1
    g.reload(bad)
    m = g.wait_metric(lambda m: m.get("hookgate_config_reloads_total", result="failure") == 1)
    assert m.get("hookgate_config_last_reload_successful") == 0, m.text
    assert m.get("hookgate_config_last_reload_success_timestamp_seconds") == reloaded


def make_cert(d, name, days):
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", str(days), "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(d / (name + ".pem"))],
                         capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
    expiry = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    return {"cert": str(d / (name + ".pem")), "key": str(d / (name + ".key"))}, expiry.timestamp()


def test_tls_certificate_expiry_follows_the_loaded_certificate(launch_gateway, upstream, tmp_path):
    first, first_expiry = make_cert(tmp_path, "first", 10)
    second, second_expiry = make_cert(tmp_path, "second", 40)
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, tls=first)
    m = g.metrics()
    assert m.get("hookgate_tls_certificate_expiry_timestamp_seconds") == first_expiry, m.text
    cfg = copy.deepcopy(g.config)
    cfg["listen"]["tls"] = second
    g.reload(cfg)
    m = g.wait_metric(lambda m: m.get("hookgate_tls_certificate_expiry_timestamp_seconds") == second_expiry)
    assert m.get("hookgate_tls_certificate_expiry_timestamp_seconds") == second_expiry, m.text


def test_plain_listener_has_no_certificate_expiry(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    assert "hookgate_tls_certificate_expiry_timestamp_seconds" not in g.metrics().names()


def test_exposition_passes_promtool(launch_gateway, upstream, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    tls, _ = make_cert(tmp_path, "listener", 5)
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, tls=tls)
    # A little of everything: forwarded, duplicate, rejected, unrouted, an upstream error.
    import ssl
    ctx = ssl.create_default_context(cafile=tls["cert"])
    g.client_tls = ctx
    assert g.send(sender.make_event(id="evt_prom_1")).status == 200
    assert g.send(sender.make_event(id="evt_prom_1")).status == 200
    assert g.send(sender.make_event(id="evt_prom_2"), secret="wrong-secret-0123456789abcdef0123456789").status == 401
    text = g.metrics().text
    assert "hookgate_tls_certificate_expiry_timestamp_seconds" in text and "process_open_fds" in text
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "" and res.stderr.strip() == "", res.stdout + res.stderr


# ------------------------------------------------------------------ check and config
def test_check_prints_the_warnings_serve_logs(run_cli, tmp_path):
    cfg = make_config(free_port(), [make_route("https://127.0.0.1:3443/x", secrets=[{"value": LITERAL}])])
    cfg["routes"][0]["upstream"]["tls_insecure_skip_verify"] = True
    cfg["limits"]["max_connections"] = 5000
    p = write(tmp_path, cfg)

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    # run_cli has no hook to lower the limit: the binary is started directly.
    env = dict(os.environ, VECU_WEBHOOK_SECRET=SECRET)
    hookgate = hookgate_path()
    res = subprocess.run([hookgate, "check", "--config", str(p)], capture_output=True, text=True, env=env,
                         preexec_fn=low_limit, timeout=30)
    out = out_of(res)
    assert res.returncode == 0, out
    assert "configuration is valid" in res.stdout
    for key in ("routes[0].upstream.tls_insecure_skip_verify", "routes[0].verify.secrets[0]", "limits.max_connections"):
        assert "warning: %s: " % key in res.stderr, out
    assert "hard limit 1024" in res.stderr, out
    assert LITERAL not in out

    cfg["listen"] = "127.0.0.1:%d" % free_port()
    write(tmp_path, cfg)
    log = tmp_path / "serve.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([hookgate, "serve", "--config", str(p)], stdout=f, stderr=subprocess.STDOUT,
                                env=env, preexec_fn=low_limit)
    try:
        assert poll_until(lambda: any(e.get("msg") == "listening" for e in json_lines(log.read_text())), timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    warned = {e.get("key") for e in json_lines(log.read_text()) if e.get("level") == "warning"}
    assert {"routes[0].upstream.tls_insecure_skip_verify", "routes[0].verify.secrets[0]", "limits.max_connections"} <= warned


def test_check_of_a_plain_file_prints_no_warning(run_cli, tmp_path):
    res = run_cli(["check", "--config", write(tmp_path, make_config(18080, [make_route("http://127.0.0.1:3000/x")]))])
    assert res.returncode == 0 and "warning" not in out_of(res), out_of(res)


@pytest.mark.parametrize("level,shown", [("debug", True), ("info", True), ("warn", False), ("error", False)])
def test_log_level_filters_the_json_log_not_the_access_log(upstream, tmp_path, level, shown):
    port = free_port()
    cfg = make_config(port, [make_route(upstream.url(UPSTREAM_PATH))])
    cfg["log_level"] = level
    proc = serve_process(["serve", "--config", str(write(tmp_path, cfg))], tmp_path)
    log = tmp_path / "serve.log"
    try:
        wait_port(port, proc, what="hookgate serve")
        assert sender.send("http://127.0.0.1:%d/webhooks/vecu" % port, sender.make_event(id="evt_level"),
                           SECRET).status == 200
        assert poll_until(lambda: any(e.get("msg") == "request" for e in json_lines(log.read_text())))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    entries = json_lines(log.read_text())
    assert any(e.get("msg") == "request" and e.get("outcome") == "forwarded" for e in entries), entries
    for msg in ("listening", "stopped"):
        assert any(e.get("msg") == msg for e in entries) == shown, entries


@pytest.mark.parametrize("value", ["verbose", "INFO", "warning", "", "[info]"])
def test_log_level_rejects_other_values(run_cli, tmp_path, value):
    cfg = make_config(18080, [make_route("http://127.0.0.1:3000/x")])
    cfg["log_level"] = value
    res = run_cli(["check", "--config", write(tmp_path, cfg)])
    assert res.returncode == 1 and "log_level:" in res.stderr, out_of(res)


def serve_process(args, tmp_path, env_extra=None, stdin_text=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "HOOKGATE_CONFIG"}
    env.update(VECU_WEBHOOK_SECRET=SECRET, **(env_extra or {}))
    hookgate = hookgate_path()
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([hookgate] + args, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=str(cwd or tmp_path))
    log.close()
    if stdin_text is not None:
        proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    return proc


def test_config_from_standard_input(run_cli, upstream, tmp_path):
    port = free_port()
    text = to_yaml(make_config(port, [make_route(upstream.url(UPSTREAM_PATH))])) + "\n"
    hookgate = hookgate_path()
    res = subprocess.run([hookgate, "check", "--config", "-"], input=text, capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, VECU_WEBHOOK_SECRET=SECRET))
    assert res.returncode == 0 and "configuration is valid" in res.stdout, out_of(res)
    res = subprocess.run([hookgate, "check", "--config", "-"], input="routes: [\n", capture_output=True, text=True, timeout=30)
    assert res.returncode == 1, out_of(res)

    proc = serve_process(["serve", "--config", "-"], tmp_path, stdin_text=text)
    log = tmp_path / "serve.log"
    try:
        wait_port(port, proc, what="hookgate serve --config -")
        assert poll_until(lambda: any(e.get("msg") == "listening" for e in json_lines(log.read_text())))
        time.sleep(0.1)
        assert sender.send("http://127.0.0.1:%d%s" % (port, "/webhooks/vecu"), sender.make_event(id="evt_stdin"),
                           SECRET).status == 200
        proc.send_signal(signal.SIGHUP)
        assert poll_until(lambda: any("standard input" in e.get("msg", "") and e.get("level") == "warning"
                                      for e in json_lines(log.read_text())), timeout=5), log.read_text()
        assert proc.poll() is None
        assert sender.send("http://127.0.0.1:%d%s" % (port, "/webhooks/vecu"), sender.make_event(id="evt_stdin_2"),
                           SECRET).status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert upstream.count() == 2


def test_hookgate_config_names_the_file(run_cli, upstream, tmp_path):
    port = free_port()
    p = write(tmp_path, make_config(port, [make_route(upstream.url(UPSTREAM_PATH))]), name="from-env.yaml")
    res = run_cli(["check"], env_extra={"HOOKGATE_CONFIG": str(p)})
    assert res.returncode == 0 and "configuration is valid" in res.stdout, out_of(res)
    # --config wins over the variable
    res = run_cli(["check", "--config", p], env_extra={"HOOKGATE_CONFIG": str(tmp_path / "missing.yaml")})
    assert res.returncode == 0, out_of(res)
    res = run_cli(["check"], env_extra={"HOOKGATE_CONFIG": str(tmp_path / "missing.yaml")})
    assert res.returncode == 1 and "missing.yaml" in out_of(res), out_of(res)
    res = run_cli(["check"], env_remove=("HOOKGATE_CONFIG",))
    assert res.returncode != 0 and "HOOKGATE_CONFIG" in res.stderr, out_of(res)

    proc = serve_process(["serve"], tmp_path, env_extra={"HOOKGATE_CONFIG": str(p)})
    try:
        wait_port(port, proc, what="hookgate serve with HOOKGATE_CONFIG")
        assert sender.send("http://127.0.0.1:%d/webhooks/vecu" % port, sender.make_event(id="evt_env_cfg"),
                           SECRET).status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert upstream.count() == 1
