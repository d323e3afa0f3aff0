"""The inbound side under pressure and behind load balancers: a pipelining client that never reads
is bounded in memory and closed; running out of descriptors neither spins nor floods the log; a
second gateway on a taken port refuses to start; `shutdown_delay` keeps accepting while readiness
is off; `listen.proxy_protocol` takes the client from a PROXY v1/v2 header; secret files and the
configuration file are watched and reloaded on change."""
import json
import os
import resource
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

import sender
from conftest import (SECRET, SECRET2, UPSTREAM_PATH, ExtGateway, RawClient, free_port, make_gateway_config,
                      make_route, poll_until, record_headers, request_bytes, signed_request_bytes, to_yaml,
                      wait_port)


@pytest.fixture
def gateways():
    """Gateways a test builds itself (custom listen forms, limits on the process); stopped at teardown."""
    started = []
    yield started
    for g in started:
        g.stop()


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# ------------------------------------------------------------ item 4: answers queued for a client
def test_pipelining_client_that_never_reads_is_bounded_and_closed(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], client_timeout="3s")
    assert g.send(sender.make_event(id="evt_pipeline_warmup")).status == 200
    baseline_kb = proc_status_kb(g.proc.pid, "VmRSS")
    request = request_bytes("GET", "/nope", host="x")
    payload = request * (6_000_000 // len(request))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # a client that reads nothing
    sock.settimeout(30)
    sock.connect(("127.0.0.1", g.port))
    outcome = {}

    def send_all():
        try:
            sock.sendall(payload)
            outcome["sent"] = True
        except OSError as e:
            outcome["error"] = e

    t = threading.Thread(target=send_all, daemon=True)
    t.start()
    peak_kb = baseline_kb
    deadline = time.monotonic() + 40
    while t.is_alive() and time.monotonic() < deadline:
        peak_kb = max(peak_kb, proc_status_kb(g.proc.pid, "VmRSS"))
        time.sleep(0.05)
    # sent or not, the client has still not read: what gateway holds for it stays bounded
    for _ in range(20):
        peak_kb = max(peak_kb, proc_status_kb(g.proc.pid, "VmRSS"))
        time.sleep(0.05)
    assert peak_kb < baseline_kb + 30 * 1024, "RSS grew from %d kB to %d kB" % (baseline_kb, peak_kb)
    # the idle timer closes the connection of a client that never reads (EOF or reset after what
    # was already written)
    closed = False
    sock.settimeout(1.0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    sock.close()
    t.join(timeout=5)
    assert closed, "the connection of a client that never reads was not closed"
    assert g.send(sender.make_event(id="evt_pipeline_after")).status == 200


# ------------------------------------------------------------ item 5: out of descriptors
class LimitedGateway(ExtGateway):
    """A gateway started with RLIMIT_NOFILE lowered (soft and hard) in the child."""
    nofile = 64

    def start(self):
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        limit = self.nofile
        try:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--config", str(self.config_path)], stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, env=self.env, cwd=str(self.workdir),
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        finally:
            out.close()
            err.close()
        wait_port(self.port, self.proc, what="hookgate serve")
        return self


def test_out_of_descriptors_neither_spins_nor_floods_the_log(hookgate_bin, tmp_path, upstream, gateways):
    cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))], client_timeout="60s")
    g = LimitedGateway(hookgate_bin, tmp_path, cfg)
    gateways.append(g)
    g.start()
    assert g.send(sender.make_event(id="evt_fd_before")).status == 200
    held = []
    try:
        for _ in range(100):
            held.append(socket.create_connection(("127.0.0.1", g.port), timeout=5))
        time.sleep(0.5)  # the gateway meets its limit
        lines_before = len(g.log_lines())
        cpu_before = cpu_seconds(g.proc.pid)
        time.sleep(2.0)
        cpu = cpu_seconds(g.proc.pid) - cpu_before
        grown = len(g.log_lines()) - lines_before
        assert g.alive()
        assert cpu < 0.5, "%.2f s of CPU in 2 s while out of descriptors" % cpu
        assert grown <= 6, "%d log lines in 2 s while out of descriptors:\n%s" % (
            grown, "\n".join(g.log_lines()[-5:]))
        paused = [e for e in g.logs() if e.get("msg") == "accept failed; accepting paused"]
        assert paused and "open files" in paused[0].get("error", ""), g.log_lines()[-5:]
    finally:
        for s in held:
            s.close()
    start = [e for e in g.logs() if e.get("msg") == "descriptor limit"]
    assert start and start[0].get("nofile.hard") == 64, start
    def served():
        try:
            return g.send(sender.make_event(id="evt_fd_after"), timeout=5).status == 200
        except OSError:
            return False
    assert poll_until(served, timeout=20, interval=0.5), "no signed event was served after the connections closed"


def test_soft_descriptor_limit_is_raised_to_the_hard_limit(hookgate_bin, tmp_path, upstream, gateways):
    cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))])
    g = LimitedGateway(hookgate_bin, tmp_path, cfg)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    g.nofile = 256
    gateways.append(g)
    g.start()
    entry = g.wait_logs(lambda es: any(e.get("msg") == "descriptor limit" for e in es))
    line = [e for e in entry if e.get("msg") == "descriptor limit"][0]
    assert line["nofile.soft_at_start"] == 256 and line["nofile.soft"] == 256 and line["nofile.hard"] == 256, line
    with open("/proc/%d/limits" % g.proc.pid) as f:
        row = [l for l in f if l.startswith("Max open files")][0].split()
    assert row[3] == row[4] == "256", row
    assert hard >= 256


# ------------------------------------------------------------ item 13: a port already taken
@pytest.mark.parametrize("second_workers", [2, 1])
def test_second_gateway_on_a_taken_port_refuses_to_start(launch_gateway, upstream, tmp_path, hookgate_bin,
                                                         second_workers):
    first = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], workers=2)
    cfg = make_gateway_config(first.port, [make_route(upstream.url(UPSTREAM_PATH))], workers=second_workers)
    path = tmp_path / "second.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    env = dict(os.environ, VECU_WEBHOOK_SECRET=SECRET)
    proc = subprocess.Popen([str(hookgate_bin), "serve", "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("a second gateway started on port %d, which another gateway serves" % first.port)
    assert proc.returncode != 0
    assert "127.0.0.1:%d" % first.port in out + err and "in use" in out + err, (out, err)
    for i in range(4):
        assert first.send(sender.make_event(id="evt_first_keeps_%d_%d" % (second_workers, i))).status == 200


# ------------------------------------------------------------ shutdown_delay
def test_shutdown_delay_keeps_accepting_with_readiness_off(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, shutdown_delay="2s",
                       shutdown_grace="5s")
    assert poll_until(lambda: g.admin("/readyz").status == 200, timeout=3)
    g.wait_signal_handlers()
    answers = []
    failures = []
    stop = threading.Event()
    signalled = []

    def client():
        i = 0
        while not stop.is_set():
            i += 1
            body = sender.make_event(id="evt_delay_%d" % i)
            try:
                c = RawClient(g.port, timeout=5)
                c.send(signed_request_bytes(body))
                r = c.read_response(timeout=5)
                c.close()
                if r is None:
                    failures.append((i, "closed without an answer"))
                else:
                    answers.append((i, r.status, bool(signalled)))
            except OSError as e:
                failures.append((i, repr(e)))
            time.sleep(0.02)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    time.sleep(0.3)
    g.expect_exit = True
    g.proc.send_signal(15)
    t0 = time.monotonic()
    signalled.append(t0)
    assert poll_until(lambda: g.admin("/readyz").status == 503, timeout=1.0, interval=0.02), \
        "/readyz did not turn 503 at once"
    # well inside the 2 s delay (the machine may be slow): every new connection is served
    while time.monotonic() - t0 < 1.5:
        time.sleep(0.05)
    stop.set()
    t.join(timeout=10)
    assert not failures, failures[:5]
    after = [a for a in answers if a[2]]
    assert len(after) >= 3, "too few connections during the delay: %d" % len(after)
    assert all(status == 200 for _, status, _ in answers), [a for a in answers if a[1] != 200][:5]
    assert g.admin("/healthz").status == 200
    assert g.wait_exit(15) == 0
    msgs = [e.get("msg") for e in g.logs()]
    assert "shutdown: delay over, draining" in msgs, msgs[-6:]
    delivered = {json.loads(r["body_bytes"])["id"] for r in upstream.records()}
    assert {"evt_delay_%d" % i for i, _, _ in answers} <= delivered


@pytest.mark.parametrize("signals", [(15, 15), (2,)], ids=["second-sigterm", "sigint"])
def test_second_sigterm_or_sigint_skips_the_delay(launch_gateway, upstream, signals):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True, shutdown_delay="60s")
    g.wait_signal_handlers()
    g.expect_exit = True
    g.proc.send_signal(signals[0])
    assert poll_until(lambda: g.admin("/readyz").status == 503, timeout=2, interval=0.02)
    if len(signals) > 1:
        assert g.send(sender.make_event(id="evt_delay_still_serving")).status == 200  # in the delay
        g.proc.send_signal(signals[1])
    assert g.wait_exit(15) == 0, "the delay of 60 s was not skipped"


def test_shutdown_delay_is_validated(run_cli, tmp_path, upstream):
    for value, ok in (("0s", True), ("60s", True), ("61s", False), ("-1s", False), ("soon", False)):
        cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))], shutdown_delay=value)
        path = tmp_path / "delay.yaml"
        path.write_text(to_yaml(cfg) + "\n")
        r = run_cli(["check", "--config", path])
        assert (r.returncode == 0) == ok, (value, r.stdout, r.stderr)
        if not ok:
            assert "shutdown_delay" in r.stdout + r.stderr, (value, r.stdout, r.stderr)


# ------------------------------------------------------------ listen.proxy_protocol
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(command=1, family=0x11, block=b""):
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


def v2_inet(src, dst, sport, dport, tlvs=b""):
    return v2_header(block=socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs)


def v2_inet6(src, dst, sport, dport):
    return v2_header(family=0x21, block=socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                     + struct.pack("!HH", sport, dport))


def proxy_gateway(hookgate_bin, tmp_path, upstream, gateways, tls=None, client_tls=None, **kw):
    cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))], tls=tls, **kw)
    listen = cfg["listen"]
    cfg["listen"] = dict(listen) if isinstance(listen, dict) else {"address": listen}
    cfg["listen"]["proxy_protocol"] = True
    g = ExtGateway(hookgate_bin, tmp_path, cfg, client_tls=client_tls)
    gateways.append(g)
    return g.start()


@pytest.fixture
def pgw(hookgate_bin, tmp_path, upstream, gateways):
    return proxy_gateway(hookgate_bin, tmp_path, upstream, gateways, client_timeout="2s")


def proxied_exchange(port, header, event_id, split=False):
    c = RawClient(port, timeout=5)
    try:
        data = header + signed_request_bytes(sender.make_event(id=event_id))
        if split:
            # the header in pieces, across reads
            for piece in (data[:3], data[3:9], data[9:len(header) - 1], data[len(header) - 1:]):
                c.send(piece)
                time.sleep(0.05)
        else:
            c.send(data)
        return c.read_response(timeout=5)
    finally:
        c.close()


@pytest.mark.parametrize("header,client", [
    (b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n", "203.0.113.9"),
    (b"PROXY TCP6 2001:DB8:0:0::7 ::1 40000 8080\r\n", "2001:db8::7"),
    (b"PROXY UNKNOWN\r\n", "127.0.0.1"),
    (v2_inet("198.51.100.20", "10.0.0.1", 5555, 443), "198.51.100.20"),
    (v2_inet("198.51.100.21", "10.0.0.1", 5555, 443, tlvs=b"\x01\x00\x02h2\x04\x00\x00"), "198.51.100.21"),
    (v2_inet6("2001:db8::42", "2001:db8::1", 5555, 443), "2001:db8::42"),
    (v2_header(command=0, family=0), "127.0.0.1"),  # LOCAL: the balancer's health check
    (v2_header(family=0x31, block=b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")), "127.0.0.1"),
], ids=["v1-tcp4", "v1-tcp6", "v1-unknown", "v2-inet", "v2-inet-tlvs", "v2-inet6", "v2-local", "v2-unix"])
def test_proxy_protocol_source_becomes_the_client(pgw, upstream, header, client):
    event_id = "evt_pp_%s" % client.replace(":", "_").replace(".", "_")
    for split in (False, True):
        r = proxied_exchange(pgw.port, header, event_id + ("_split" if split else ""), split=split)
        assert r is not None and r.status == 200, r
    recs = upstream.records()
    assert [record_headers(x, "X-Forwarded-For") for x in recs] == [[client], [client]]
    lines = pgw.wait_logs(lambda es: sum(1 for e in es if e.get("status") == 200) >= 2)
    assert {e.get("client") for e in lines if e.get("status") == 200} == {client}


@pytest.mark.parametrize("data", [
    b"POST /webhooks/vecu HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",  # no header at all
    b"PROXY TCP4 1.2.3.256 127.0.0.1 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\n",
    b"PROXY TCP4 1.2.3.4 127.0.0.1 1 65536\r\n",
    b"PROXY " + b"x" * 120,
    V2_SIGNATURE + b"\x21\x11\x02\x20" + b"\0" * 544,  # 544 bytes of addresses: over the cap
    V2_SIGNATURE + b"\x21\x11\x00\x0b" + b"\0" * 11,  # INET block one byte short
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\0" * 12,  # command 2
    v2_inet("1.2.3.4", "5.6.7.8", 1, 2, tlvs=b"\x01\x00\x09h2"),  # TLV longer than the header
], ids=["plain-http", "v1-octet", "v1-bare-lf", "v1-port", "v1-too-long", "v2-too-long", "v2-short-block",
        "v2-command", "v2-tlv"])
def test_connection_without_a_valid_proxy_header_is_closed_without_an_answer(pgw, upstream, data):
    c = RawClient(pgw.port, timeout=5)
    c.try_send(data + signed_request_bytes(sender.make_event(id="evt_pp_bad")))
    assert c.wait_closed(timeout=5), "the connection stayed open"
    c.close()
    assert c.buf == b"", c.buf[:200]
    assert upstream.count() == 0
    assert pgw.alive()


def test_proxy_header_must_arrive_within_client_timeout(pgw, upstream):
    c = RawClient(pgw.port, timeout=10)
    c.send(b"PROXY TCP4 1.2.3.4")  # and nothing more
    t0 = time.monotonic()
    assert c.wait_closed(timeout=8), "a connection without a whole PROXY header was kept"
    assert time.monotonic() - t0 >= 1.0
    assert c.buf == b""
    c.close()
    r = proxied_exchange(pgw.port, b"PROXY TCP4 192.0.2.77 127.0.0.1 1 2\r\n", "evt_pp_after_timeout")
    assert r is not None and r.status == 200, r


def test_proxy_protocol_before_tls(hookgate_bin, tmp_path, upstream, gateways, tls_material):
    g = proxy_gateway(hookgate_bin, tmp_path, upstream, gateways,
                      tls={"cert": tls_material.server.cert, "key": tls_material.server.key})
    for i, header in enumerate([b"PROXY TCP4 192.0.2.55 127.0.0.1 1 2\r\n", v2_inet("192.0.2.56", "10.0.0.1", 1, 2)]):
        raw = socket.create_connection(("127.0.0.1", g.port), timeout=5)
        raw.sendall(header)
        tls = tls_material.client.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(signed_request_bytes(sender.make_event(id="evt_pp_tls_%d" % i)))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
        tls.close()
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert [record_headers(x, "X-Forwarded-For") for x in upstream.records()] == [["192.0.2.55"], ["192.0.2.56"]]


def test_proxy_protocol_follows_a_reload(launch_gateway, upstream):
    import copy
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], admin=True)
    assert g.send(sender.make_event(id="evt_pp_reload_before")).status == 200
    cfg = copy.deepcopy(g.config)
    cfg["listen"] = {"address": cfg["listen"], "proxy_protocol": True}
    g.reload(cfg)
    assert g.wait_metric(lambda m: m.get("hookgate_config_reloads_total", default=0, result="success") >= 1)
    r = proxied_exchange(g.port, b"PROXY TCP4 192.0.2.99 127.0.0.1 1 2\r\n", "evt_pp_reload_after")
    assert r is not None and r.status == 200, r
    assert record_headers(upstream.records()[-1], "X-Forwarded-For") == ["192.0.2.99"]


def test_proxy_protocol_value_is_checked(run_cli, tmp_path, upstream):
    cfg = make_gateway_config(free_port(), [make_route(upstream.url(UPSTREAM_PATH))])
    cfg["listen"] = {"address": cfg["listen"], "proxy_protocol": "yes"}
    path = tmp_path / "pp.yaml"
    path.write_text(to_yaml(cfg) + "\n")
    r = run_cli(["check", "--config", path])
    assert r.returncode != 0 and "listen.proxy_protocol" in r.stdout + r.stderr, (r.stdout, r.stderr)


# ------------------------------------------------------------ watched secret files
def passes_with(g, secret, prefix):
    counter = [0]

    def attempt():
        counter[0] += 1
        return g.send(sender.make_event(id="%s_%d" % (prefix, counter[0])), secret=secret).status == 200
    return attempt


def reload_lines(g, msg_prefix):
    return [e for e in g.logs() if str(e.get("msg", "")).startswith(msg_prefix)]


def test_secret_file_written_in_place_is_reloaded(launch_gateway, upstream, tmp_path):
    secret_file = tmp_path / "watched.secret"
    secret_file.write_text(SECRET + "\n")
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), secrets=[{"file": str(secret_file)}])], admin=True)
    assert g.send(sender.make_event(id="evt_watch_old"), secret=SECRET).status == 200
    with open(secret_file, "w") as f:  # in place: same inode
        f.write(SECRET2 + "\n")
    assert poll_until(passes_with(g, SECRET2, "evt_watch_new"), timeout=10, interval=0.2), \
        "the rewritten secret file was not picked up without SIGHUP"
    entries = g.wait_logs(lambda es: reload_lines(g, "configuration reloaded"))
    reloaded = [e for e in entries if e.get("msg") == "configuration reloaded"]
    assert reloaded and all(e.get("trigger") == "file_change" for e in reloaded), reloaded
    assert g.send(sender.make_event(id="evt_watch_old_late"), secret=SECRET).status == 401
    # a touch that changes no byte reloads nothing
    count = len(reloaded)
    os.utime(secret_file)
    time.sleep(0.6)
    assert len([e for e in g.logs() if e.get("msg") == "configuration reloaded"]) == count


def test_kubernetes_style_secret_swap_is_reloaded(launch_gateway, upstream, tmp_path):
    mount = tmp_path / "secret-volume"
    (mount / "..2026_12_01_a").mkdir(parents=True)
    (mount / "..2026_12_01_a" / "vecu").write_text(SECRET)
    os.symlink("..2026_12_01_a", mount / "..data")
    os.symlink("..data/vecu", mount / "vecu")
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), secrets=[{"file": str(mount / "vecu")}])])
    assert g.send(sender.make_event(id="evt_k8s_old"), secret=SECRET).status == 200
    # what the kubelet does: a new timestamped directory, a new ..data link renamed over the old
    (mount / "..2026_12_01_b").mkdir()
    (mount / "..2026_12_01_b" / "vecu").write_text(SECRET2)
    os.symlink("..2026_12_01_b", mount / "..data_tmp")
    os.rename(mount / "..data_tmp", mount / "..data")
    assert poll_until(passes_with(g, SECRET2, "evt_k8s_new"), timeout=10, interval=0.2), \
        "the swapped Kubernetes secret was not picked up without SIGHUP"
    reloaded = [e for e in g.logs() if e.get("msg") == "configuration reloaded"]
    assert reloaded and reloaded[-1].get("trigger") == "file_change", reloaded


def test_invalid_file_change_is_rejected_and_the_old_configuration_serves(launch_gateway, upstream, tmp_path):
    secret_file = tmp_path / "short.secret"
    secret_file.write_text(SECRET + "\n")
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), secrets=[{"file": str(secret_file)}])], admin=True)
    secret_file.write_text("too-short\n")
    entries = g.wait_logs(lambda es: any(str(e.get("msg", "")).startswith("reload rejected") for e in es), timeout=10)
    rejected = [e for e in entries if str(e.get("msg", "")).startswith("reload rejected")]
    assert rejected and rejected[0].get("trigger") == "file_change", entries[-5:]
    assert "too-short" not in g.stdout()
    assert g.send(sender.make_event(id="evt_watch_bad_old"), secret=SECRET).status == 200
    m = g.metrics()
    assert m.get("hookgate_config_reloads_total", result="failure") >= 1, m.text
    # the configuration file is watched too: a valid rewrite is applied
    g.config["routes"][0]["verify"]["secrets"] = [{"env": "VECU_WEBHOOK_SECRET"}]
    g.write_config(g.config)
    assert poll_until(lambda: any(e.get("msg") == "configuration reloaded" for e in g.logs()), timeout=10)
    assert g.send(sender.make_event(id="evt_watch_config"), secret=SECRET).status == 200


def test_listener_certificate_replaced_on_disk_is_reloaded(launch_gateway, upstream, tmp_path, tls_material):
    import shutil
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(tls_material.server.cert, cert)
    shutil.copy(tls_material.server.key, key)
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH))], tls={"cert": str(cert), "key": str(key)},
                       client_tls=tls_material.client)
    assert g.send(sender.make_event(id="evt_cert_old")).status == 200
    # as cert-manager or an operator would: new files renamed over the old ones
    for source, target in ((tls_material.other_server.cert, cert), (tls_material.other_server.key, key)):
        shutil.copy(source, str(target) + ".new")
        os.replace(str(target) + ".new", target)

    def serves_the_new_certificate():
        try:
            RawClient(g.port, ssl_context=tls_material.other_client, server_hostname="localhost").close()
            return True
        except ssl.SSLError:
            return False
    assert poll_until(serves_the_new_certificate, timeout=10, interval=0.2), "the new certificate was not picked up"
    g.client_tls = tls_material.other_client
    assert g.send(sender.make_event(id="evt_cert_new")).status == 200
    reloaded = [e for e in g.logs() if e.get("msg") == "configuration reloaded"]
    assert reloaded and reloaded[-1].get("trigger") == "file_change", reloaded
