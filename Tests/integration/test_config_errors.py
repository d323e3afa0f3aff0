"""Configuration errors name the key and its line:column and never echo the file: a repeated key,
a tab, an unterminated quote or bytes that are not UTF-8, reported by `check`, by `serve` at
start-up and by a SIGHUP reload, with an inline `value:` secret in the file."""
import copy
import json
import re

import pytest

from conftest import UPSTREAM_PATH, free_port, make_config, make_route, poll_until, to_yaml

INLINE_SECRET = "inline-Secret-Zq81Xv0Lm3Tr6Wk2-0123456789abcdef"


def config_with_inline_secret(upstream_url="http://127.0.0.1:3000/webhooks/vecu", port=18080):
    return make_config(port, [make_route(upstream_url, secrets=[{"value": INLINE_SECRET}])])


def repeated_key(text):
    """The file with `timeout:` repeated inside the upstream mapping (a nested repeated key)."""
    return re.sub(r"^( +)timeout: 25s$", r"\1timeout: 25s\n\1timeout: 20s", text, count=1, flags=re.M)


def line_column_of(text, needle, occurrence=2):
    lines = text.split("\n")
    found = [(i + 1, line.index(needle) + 1) for i, line in enumerate(lines) if line.lstrip().startswith(needle)]
    return found[occurrence - 1]


def broken_files():
    """(name, file bytes, text the problem must contain) for each kind of unreadable file."""
    text = to_yaml(config_with_inline_secret()) + "\n"
    nested = repeated_key(text)
    first = line_column_of(nested, "timeout:", 1)
    again = line_column_of(nested, "timeout:", 2)
    top = text + "workers: 2\n"
    workers = [(i + 1, 1) for i, l in enumerate(top.split("\n")) if l.startswith("workers:")]
    return [
        ("repeated nested key", nested.encode(),
         'key "timeout" appears more than once in one mapping (first at %d:%d, again at %d:%d)' % (first + again)),
        ("repeated top-level key", top.encode(),
         'key "workers" appears more than once in one mapping (first at %d:%d, again at %d:%d)' % (workers[0] + workers[1])),
        ("tab indentation", text.replace("    upstream:", "\tupstream:", 1).encode(), "tab character"),
        ("unterminated quote", text.replace("path: /webhooks/vecu", 'path: "/webhooks/vecu', 1).encode(),
         "while scanning a quoted scalar at"),
        ("invalid UTF-8", text.encode().replace(b"name: vecu", b"name: ve\xc3\x28cu", 1), "not UTF-8 at"),
    ]


def assert_nothing_echoed(output, data):
    assert INLINE_SECRET not in output
    assert INLINE_SECRET[:10] not in output
    for line in data.decode("utf-8", "replace").split("\n"):
        body = line.strip(" -\t")
        if len(body) >= 10:
            assert body not in output, "the output quotes the file's line %r:\n%s" % (body, output)


@pytest.mark.parametrize("name,data,expected", broken_files(), ids=[c[0] for c in broken_files()])
def test_check_names_the_position_and_echoes_nothing(run_cli, tmp_path, name, data, expected):
    p = tmp_path / "hookgate.yaml"
    p.write_bytes(data)
    res = run_cli(["check", "--config", p])
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert expected in out, out
    assert re.search(r"\b\d+:\d+\b", out), out
    assert_nothing_echoed(out, data)


def test_serve_names_the_position_and_echoes_nothing(run_cli, tmp_path):
    text = to_yaml(config_with_inline_secret(port=free_port())) + "\n"
    data = repeated_key(text).encode()
    p = tmp_path / "hookgate.yaml"
    p.write_bytes(data)
    res = run_cli(["serve", "--config", p], timeout=15)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    entries = [json.loads(l) for l in res.stdout.splitlines() if l.strip()]
    problems = [e for e in entries if e.get("msg") == "invalid configuration"]
    assert problems and 'key "timeout" appears more than once' in problems[0]["problem"], out
    assert re.search(r"first at \d+:\d+, again at \d+:\d+", problems[0]["problem"]), out
    assert_nothing_echoed(out, data)


def test_reload_log_names_the_position_and_echoes_nothing(launch_gateway, upstream):
    g = launch_gateway([make_route(upstream.url(UPSTREAM_PATH), secrets=[{"env": "VECU_WEBHOOK_SECRET"}])], admin=True)
    bad = copy.deepcopy(g.config)
    bad["routes"][0]["verify"]["secrets"] = [{"value": INLINE_SECRET}]
    data = repeated_key(to_yaml(bad) + "\n").encode()
    assert data.count(b"timeout:") >= 2
    g.config_path.write_bytes(data)
    g.reload()
    entries = g.wait_logs(lambda es: any(e.get("msg", "").startswith("reload rejected") for e in es))
    rejected = [e for e in entries if e.get("msg", "").startswith("reload rejected")]
    assert rejected, g.log_lines()[-5:]
    assert 'key "timeout" appears more than once' in rejected[0]["problem"], rejected
    assert re.search(r"first at \d+:\d+, again at \d+:\d+", rejected[0]["problem"]), rejected
    assert_nothing_echoed(g.stdout() + g.stderr(), data)
    assert g.alive()
