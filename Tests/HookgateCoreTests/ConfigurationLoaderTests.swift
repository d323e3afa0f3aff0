import Testing
@testable import HookgateCore

/// Loading and validating the YAML configuration, with secrets read from an injected environment.

private let envSecret = "vecu-secret-0123456789abcdef-0123456789"  // 39 bytes
private let fileSecret = "file-secret-0123456789abcdef-0123456789"
private let secret31 = String(repeating: "s", count: 31)
private let secret32 = String(repeating: "s", count: 32)

private struct NoSuchFile: Error, CustomStringConvertible {
    var description: String { "No such file or directory" }
}

private let files: [String: [UInt8]] = [
    "/run/secrets/vecu": Array((fileSecret + "\n").utf8),
    "/run/secrets/crlf": Array((fileSecret + "\r\n").utf8),
    "/run/secrets/bare": Array(fileSecret.utf8),
    "/run/secrets/short": Array((secret31 + "\n").utf8),
    "/run/secrets/newlines-only": Array("\n\n".utf8),
    "/etc/hookgate/cert.pem": Array("-----BEGIN CERTIFICATE-----\n".utf8),
    "/etc/hookgate/key.pem": Array("-----BEGIN PRIVATE KEY-----\n".utf8),
    "/etc/hookgate/ca.pem": Array("-----BEGIN CERTIFICATE-----\n".utf8),
]

private let environment = SecretEnvironment(
    variables: ["VECU_WEBHOOK_SECRET": envSecret, "NEXT_SECRET": secret32, "SHORT_SECRET": "short", "EMPTY_SECRET": ""],
    readFile: { path in
        guard let bytes = files[path] else { throw NoSuchFile() }
        return bytes
    }
)

private let exampleConfig = """
listen: 127.0.0.1:8080
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
        - env: VECU_WEBHOOK_SECRET
      tolerance: 300s
    dedup:
      capacity: 100000
      ttl: 72h
    upstream:
      url: http://127.0.0.1:3000/webhooks/vecu
      timeout: 25s
      max_connections: 64
      add_headers:
        X-Source: hookgate
"""

/// One route written as YAML; nil leaves a key out, blocks are the lines inside a mapping.
private struct RouteYAML {
    var name: String? = "vecu"
    var path: String? = "/webhooks/vecu"
    var verify: String? = "scheme: vecu\nsecrets:\n  - env: VECU_WEBHOOK_SECRET"
    var dedup: String?
    var upstream: String? = "url: http://127.0.0.1:3000/webhooks/vecu"
    var extra: String?

    var rendered: String {
        var lines: [String] = []
        func block(_ key: String, _ body: String?) {
            guard let body else { return }
            lines.append("\(key):")
            lines += body.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        }
        if let name { lines.append("name: \(name)") }
        if let path { lines.append("path: \(path)") }
        block("verify", verify)
        block("dedup", dedup)
        block("upstream", upstream)
        if let extra { lines += extra.split(separator: "\n").map(String.init) }
        guard let first = lines.first else { return "  - {}" }
        return (["  - " + first] + lines.dropFirst().map { "    " + $0 }).joined(separator: "\n")
    }
}

private func configYAML(top: String = "", routes: [RouteYAML] = [RouteYAML()]) -> String {
    top + "routes:\n" + routes.map(\.rendered).joined(separator: "\n") + "\n"
}

private func route(verify: String? = nil, upstream: String? = nil, dedup: String? = nil) -> String {
    var r = RouteYAML()
    if let verify { r.verify = verify }
    if let upstream { r.upstream = upstream }
    r.dedup = dedup
    return configYAML(routes: [r])
}

private func verifyWithSecrets(_ lines: String) -> String {
    route(verify: "scheme: vecu\nsecrets:\n" + lines.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
}

private func upstreamWith(_ lines: String) -> String {
    route(upstream: "url: http://127.0.0.1:3000/webhooks/vecu\n" + lines)
}

private func problems(_ yaml: String) -> [ConfigurationProblem] {
    switch ConfigurationLoader.load(yaml: yaml, environment: environment) {
    case .success: return []
    case .failure(let failure): return failure.problems
    }
}

private func loaded(_ yaml: String) throws -> Configuration {
    try ConfigurationLoader.load(yaml: yaml, environment: environment).get()
}

/// An inline secret that must never appear in a problem's text.
private let inlineSecret = "inline-Secret-Q7vX2mK9pL4wR8tZ-0123456789"

/// A file Yams cannot read at all (or that is not UTF-8), and the line:column its problem names.
struct UnreadableFileCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var bytes: [UInt8]
    var position: String
}

private func secretRoute(_ upstream: String = "url: http://127.0.0.1:3000/webhooks/vecu") -> String {
    route(verify: "scheme: vecu\nsecrets:\n  - value: \(inlineSecret)", upstream: upstream)
}

private let unreadableFileCases: [UnreadableFileCase] = [
    .init(testDescription: "repeated top-level key", bytes: Array((secretRoute() + "\nlisten: 127.0.0.1:8080\nlisten: 127.0.0.1:8081\n").utf8),
          position: "first at 11:1, again at 12:1"),
    .init(testDescription: "repeated nested key", bytes: Array(secretRoute("url: http://127.0.0.1:3000/x\ntimeout: 10s\ntimeout: 20s").utf8),
          position: "first at 10:7, again at 11:7"),
    .init(testDescription: "repeated value: of a secret",
          bytes: Array(route(verify: "scheme: vecu\nsecrets:\n  - value: \(inlineSecret)\n    value: \(inlineSecret)x").utf8),
          position: "first at 7:11, again at 8:11"),
    .init(testDescription: "tab indentation", bytes: Array(secretRoute().replacing("    url:", with: "\turl:").utf8),
          position: "9:3"),
    .init(testDescription: "unterminated quote",
          bytes: Array(secretRoute().replacing("path: /webhooks/vecu", with: "path: \"/webhooks/vecu").utf8),
          position: "while scanning a quoted scalar at 3:11"),
    .init(testDescription: "invalid UTF-8 byte", bytes: Array("routes:\n  - name: ve".utf8) + [0xC3, 0x28] + Array("cu\n    verify: {value: \(inlineSecret)}\n".utf8),
          position: "2:13"),
    .init(testDescription: "binary file (PNG header)", bytes: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D] + Array(inlineSecret.utf8),
          position: "1:1"),
    .init(testDescription: "binary file (ELF header, valid UTF-8 with control bytes)",
          bytes: [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00] + Array(inlineSecret.utf8) + [0x00, 0x01],
          position: "at 1:1: control characters"),
    .init(testDescription: "NUL byte after a secret", bytes: Array(secretRoute().utf8) + Array("    ca_fil".utf8) + [0] + Array("e: /x\n".utf8),
          position: "at 10:11: control characters"),
]

/// A configuration with something wrong: the keys the problems must name, in order, and part
/// of the first problem's message.
struct ProblemCase: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var yaml: String
    var keys: [String]
    var message: String
}

private func problem(_ label: String, _ yaml: String, _ keys: [String], _ message: String) -> ProblemCase {
    ProblemCase(testDescription: label, yaml: yaml, keys: keys, message: message)
}

private let problemCases: [ProblemCase] = [
    // Unknown keys, at every level.
    problem("unknown top-level key", configYAML(top: "colour: blue\n"), ["colour"], "unknown key"),
    problem("unknown key in limits", configYAML(top: "limits:\n  max_bodies: 1\n"), ["limits.max_bodies"], "unknown key"),
    problem("unknown key in a route", configYAML(routes: [RouteYAML(extra: "retry: true")]), ["routes[0].retry"], "unknown key"),
    problem("unknown key in verify", route(verify: "scheme: vecu\nsecrets:\n  - env: VECU_WEBHOOK_SECRET\nalgorithm: sha1"),
            ["routes[0].verify.algorithm"], "unknown key"),
    problem("unknown key in dedup", route(dedup: "size: 10"), ["routes[0].dedup.size"], "unknown key"),
    problem("unknown key in upstream", upstreamWith("retries: 3"), ["routes[0].upstream.retries"], "unknown key"),
    problem("unknown secret source", verifyWithSecrets("- vault: vecu"), ["routes[0].verify.secrets[0].vault"], "unknown key"),
    problem("misspelt key is not silently ignored", configYAML(top: "listne: 127.0.0.1:9\n"), ["listne"], "allowed here:"),
    // Required keys.
    problem("routes missing", "listen: 127.0.0.1:8080\n", ["routes"], "is required"),
    problem("routes empty", "routes: []\n", ["routes"], "at least one route is required"),
    problem("routes not a list", "routes:\n  vecu: {}\n", ["routes"], "expected a list"),
    problem("route not a mapping", "routes:\n  - vecu\n", ["routes[0]"], "expected a mapping"),
    problem("empty route", configYAML(routes: [RouteYAML(name: nil, path: nil, verify: nil, upstream: nil)]),
            ["routes[0].name", "routes[0].path", "routes[0].verify", "routes[0].upstream"], "is required"),
    problem("name missing", configYAML(routes: [RouteYAML(name: nil)]), ["routes[0].name"], "is required"),
    problem("path missing", configYAML(routes: [RouteYAML(path: nil)]), ["routes[0].path"], "is required"),
    problem("verify missing", configYAML(routes: [RouteYAML(verify: nil)]), ["routes[0].verify"], "is required"),
    problem("upstream missing", configYAML(routes: [RouteYAML(upstream: nil)]), ["routes[0].upstream"], "is required"),
    problem("url missing", route(upstream: "timeout: 10s"), ["routes[0].upstream.url"], "is required"),
    problem("scheme missing", route(verify: "secrets:\n  - env: VECU_WEBHOOK_SECRET"), ["routes[0].verify.scheme"], "is required"),
    problem("secrets missing", route(verify: "scheme: vecu"), ["routes[0].verify.secrets"], "is required"),
    problem("secrets empty", route(verify: "scheme: vecu\nsecrets: []"), ["routes[0].verify.secrets"], "at least one secret"),
    // Secrets.
    problem("environment variable not set", verifyWithSecrets("- env: NOT_SET"), ["routes[0].verify.secrets[0]"],
            "environment variable NOT_SET is not set"),
    problem("environment variable empty", verifyWithSecrets("- env: EMPTY_SECRET"), ["routes[0].verify.secrets[0]"],
            "environment variable EMPTY_SECRET is not set"),
    problem("secret from the environment too short", verifyWithSecrets("- env: SHORT_SECRET"), ["routes[0].verify.secrets[0]"],
            "secret is 5 bytes; at least 32 are required"),
    problem("literal secret of 31 bytes", verifyWithSecrets("- value: \(secret31)"), ["routes[0].verify.secrets[0]"],
            "secret is 31 bytes"),
    problem("secret file unreadable", verifyWithSecrets("- file: /run/secrets/missing"), ["routes[0].verify.secrets[0]"],
            "cannot read secret file /run/secrets/missing: No such file or directory"),
    problem("secret file of 31 bytes plus a newline", verifyWithSecrets("- file: /run/secrets/short"), ["routes[0].verify.secrets[0]"],
            "secret is 31 bytes"),
    problem("secret file with only newlines", verifyWithSecrets("- file: /run/secrets/newlines-only"), ["routes[0].verify.secrets[0]"],
            "secret is 0 bytes"),
    problem("two sources in one secret", verifyWithSecrets("- env: VECU_WEBHOOK_SECRET\n  file: /run/secrets/vecu"),
            ["routes[0].verify.secrets[0]"], "expected exactly one of env, file or value"),
    problem("empty secret entry", verifyWithSecrets("- {}"), ["routes[0].verify.secrets[0]"], "expected exactly one"),
    problem("secret given as a bare string", verifyWithSecrets("- \(secret32)"), ["routes[0].verify.secrets[0]"], "expected a mapping"),
    problem("second of two secrets missing", verifyWithSecrets("- env: VECU_WEBHOOK_SECRET\n- env: NOT_SET"),
            ["routes[0].verify.secrets[1]"], "NOT_SET is not set"),
    problem("unknown scheme", route(verify: "scheme: gitlab\nsecrets:\n  - env: VECU_WEBHOOK_SECRET"), ["routes[0].verify.scheme"],
            "unknown scheme \"gitlab\" (known: vecu, standard-webhooks, stripe, github, slack, shopify, hmac)"),
    problem("scheme name is case-sensitive", route(verify: "scheme: VECU\nsecrets:\n  - env: VECU_WEBHOOK_SECRET"),
            ["routes[0].verify.scheme"], "unknown scheme"),
    problem("tolerance above 24h", route(verify: "scheme: vecu\nsecrets:\n  - env: VECU_WEBHOOK_SECRET\ntolerance: 25h"),
            ["routes[0].verify.tolerance"], "must be at most 24h, got 25h"),
    problem("tolerance zero", route(verify: "scheme: vecu\nsecrets:\n  - env: VECU_WEBHOOK_SECRET\ntolerance: 0s"),
            ["routes[0].verify.tolerance"], "must be at least 1s"),
    // Upstream.
    problem("timeout 30s", upstreamWith("timeout: 30s"), ["routes[0].upstream.timeout"], "must be below the sender's 30s deadline, got 30s"),
    problem("timeout 45s", upstreamWith("timeout: 45s"), ["routes[0].upstream.timeout"], "must be below the sender's 30s deadline"),
    problem("timeout 30000ms", upstreamWith("timeout: 30000ms"), ["routes[0].upstream.timeout"], "deadline"),
    problem("timeout 1m", upstreamWith("timeout: 1m"), ["routes[0].upstream.timeout"], "deadline"),
    problem("timeout below 100ms", upstreamWith("timeout: 50ms"), ["routes[0].upstream.timeout"], "must be at least 100ms"),
    problem("ftp upstream", route(upstream: "url: ftp://app.example.com/x"), ["routes[0].upstream.url"], "expected http://host:port/path"),
    problem("upstream without scheme", route(upstream: "url: 127.0.0.1:3000"), ["routes[0].upstream.url"], "expected http://"),
    problem("upstream with user info", route(upstream: "url: http://user@app/x"), ["routes[0].upstream.url"], "expected http://"),
    problem("max_connections 0", upstreamWith("max_connections: 0"), ["routes[0].upstream.max_connections"], "from 1 to 4096"),
    problem("max_connections 5000", upstreamWith("max_connections: 5000"), ["routes[0].upstream.max_connections"], "from 1 to 4096"),
    problem("add_headers not a mapping", upstreamWith("add_headers: [X-A]"), ["routes[0].upstream.add_headers"], "expected a mapping"),
    problem("add_headers duplicate in another case", upstreamWith("add_headers:\n  X-Team: a\n  x-team: b"),
            ["routes[0].upstream.add_headers.x-team"], "duplicate header name"),
    problem("add_headers value with a control character", upstreamWith("add_headers:\n  X-Team: \"a\\u0001b\""),
            ["routes[0].upstream.add_headers.X-Team"], "control characters"),
    problem("add_headers value with a newline", upstreamWith("add_headers:\n  X-Team: \"a\\r\\nX-Evil: 1\""),
            ["routes[0].upstream.add_headers.X-Team"], "control characters"),
    // Routes.
    problem("duplicate paths", configYAML(routes: [RouteYAML(), RouteYAML(name: "other")]), ["routes[1].path"],
            "duplicate path \"/webhooks/vecu\" (also routes[0].path)"),
    problem("duplicate names", configYAML(routes: [RouteYAML(), RouteYAML(path: "/other")]), ["routes[1].name"],
            "duplicate name \"vecu\" (also routes[0].name)"),
    problem("path without a leading slash", configYAML(routes: [RouteYAML(path: "webhooks/vecu")]), ["routes[0].path"], "absolute path"),
    problem("path with a query", configYAML(routes: [RouteYAML(path: "\"/webhooks?x=1\"")]), ["routes[0].path"], "without query"),
    problem("name with a space", configYAML(routes: [RouteYAML(name: "\"ve cu\"")]), ["routes[0].name"], "expected letters"),
    problem("empty name", configYAML(routes: [RouteYAML(name: "\"\"")]), ["routes[0].name"], "expected letters"),
    problem("dedup capacity 0", route(dedup: "capacity: 0"), ["routes[0].dedup.capacity"], "from 1 to 50000000"),
    problem("dedup capacity not a number", route(dedup: "capacity: lots"), ["routes[0].dedup.capacity"], "got \"lots\""),
    problem("dedup ttl below 1s", route(dedup: "ttl: 500ms"), ["routes[0].dedup.ttl"], "must be at least 1s"),
    // Limits.
    problem("max_body_bytes 0", configYAML(top: "limits:\n  max_body_bytes: 0\n"), ["limits.max_body_bytes"], "whole number"),
    problem("max_body_bytes with a unit", configYAML(top: "limits:\n  max_body_bytes: 1MB\n"), ["limits.max_body_bytes"], "got \"1MB\""),
    problem("max_header_bytes too small", configYAML(top: "limits:\n  max_header_bytes: 100\n"), ["limits.max_header_bytes"], "from 1024"),
    problem("limits not a mapping", configYAML(top: "limits: 5\n"), ["limits"], "expected a mapping"),
    problem("listen as a list", configYAML(top: "listen: [a, b]\n"), ["listen"], "expected a single value"),
    // TLS, admin listener and connection limits.
    problem("listen mapping without address", configYAML(top: "listen:\n  tls:\n    cert: /etc/hookgate/cert.pem\n    key: /etc/hookgate/key.pem\n"),
            ["listen.address"], "is required"),
    problem("listen mapping with a bad address", configYAML(top: "listen:\n  address: nowhere\n"), ["listen.address"], "expected host:port"),
    problem("unknown key in listen", configYAML(top: "listen:\n  address: 127.0.0.1:8443\n  port: 1\n"), ["listen.port"], "unknown key"),
    problem("tls certificate unreadable",
            configYAML(top: "listen:\n  address: 127.0.0.1:8443\n  tls:\n    cert: /missing.pem\n    key: /etc/hookgate/key.pem\n"),
            ["listen.tls.cert"], "cannot read /missing.pem"),
    problem("tls key missing", configYAML(top: "listen:\n  address: 127.0.0.1:8443\n  tls:\n    cert: /etc/hookgate/cert.pem\n"),
            ["listen.tls.key"], "is required"),
    problem("admin without listen", configYAML(top: "admin: {}\n"), ["admin.listen"], "is required"),
    problem("admin listen invalid", configYAML(top: "admin:\n  listen: \"9090\"\n"), ["admin.listen"], "expected host:port"),
    problem("admin listen equal to listen", configYAML(top: "listen: 127.0.0.1:8080\nadmin:\n  listen: 127.0.0.1:8080\n"),
            ["admin.listen"], "must differ from listen"),
    problem("admin listen equal to the default listen", configYAML(top: "admin:\n  listen: 127.0.0.1:8080\n"),
            ["admin.listen"], "must differ from listen"),
    problem("limits.max_connections 0", configYAML(top: "limits:\n  max_connections: 0\n"), ["limits.max_connections"], "from 1 to 1000000"),
    problem("ca_file unreadable", route(upstream: "url: https://app.example.com/x\nca_file: /missing-ca.pem"),
            ["routes[0].upstream.ca_file"], "cannot read /missing-ca.pem"),
    problem("ca_file on an http upstream", upstreamWith("ca_file: /etc/hookgate/ca.pem"), ["routes[0].upstream.url"],
            "apply only to https:// upstreams"),
    problem("tls_insecure_skip_verify on an http upstream", upstreamWith("tls_insecure_skip_verify: true"), ["routes[0].upstream.url"],
            "apply only to https:// upstreams"),
    problem("tls_insecure_skip_verify not a boolean", route(upstream: "url: https://app.example.com/x\ntls_insecure_skip_verify: yes"),
            ["routes[0].upstream.tls_insecure_skip_verify"], "expected true or false, got \"yes\""),
    // Whole file.
    problem("invalid YAML (unclosed flow sequence)", "routes: [\n", [""], "not valid YAML"),
    problem("invalid YAML (unterminated quote)", "listen: \"127.0.0.1:8080\nroutes: []\n", [""], "not valid YAML"),
    problem("invalid YAML (bad indentation)", "listen: a\n  workers: 1\n", [""], "not valid YAML"),
    problem("root is a list", "- listen: 127.0.0.1:8080\n", [""], "the file must be a YAML mapping"),
    problem("root is a string", "hookgate\n", [""], "the file must be a YAML mapping"),
    problem("root is a number", "42\n", [""], "the file must be a YAML mapping"),
    problem("empty file", "", [""], "the file must be a YAML mapping"),
    problem("comments only", "# nothing here\n", [""], "the file must be a YAML mapping"),
    problem("non-string key", configYAML(top: "? [a, b]\n: c\n"), [""], "keys must be plain strings"),
]

/// Durations that are not `<digits><unit>`.
private let badDurations = ["10", "1.5s", "-1s", "10d", "+5s", "5 s", "s", "1h30m", "10S", "ten seconds"]

/// Where durations appear, and how to write a config with `value` there.
private let durationKeys: [(key: String, yaml: @Sendable (String) -> String)] = [
    ("limits.client_timeout", { configYAML(top: "limits:\n  client_timeout: \"\($0)\"\n") }),
    ("shutdown_grace", { configYAML(top: "shutdown_grace: \"\($0)\"\n") }),
    ("routes[0].verify.tolerance", { route(verify: "scheme: vecu\nsecrets:\n  - env: VECU_WEBHOOK_SECRET\ntolerance: \"\($0)\"") }),
    ("routes[0].dedup.ttl", { route(dedup: "ttl: \"\($0)\"") }),
    ("routes[0].upstream.timeout", { upstreamWith("timeout: \"\($0)\"") }),
]

@Suite("Configuration loader")
struct ConfigurationLoaderTests {
    @Test func exampleConfigLoadsWithAllValues() throws {
        let config = try loaded(exampleConfig)
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(config.workers == .fixed(1))
        #expect(config.limits.maxBodyBytes == 1_048_576)
        #expect(config.limits.maxHeaderBytes == 16_384)
        #expect(config.limits.clientTimeout == .seconds(15))
        #expect(config.shutdownGrace == .seconds(25))
        try #require(config.routes.count == 1)
        let route = config.routes[0]
        #expect(route.name == "vecu")
        #expect(route.path == "/webhooks/vecu")
        #expect(route.verify.scheme == .vecu)
        #expect(route.verify.secrets.map(\.origin) == [.environment("VECU_WEBHOOK_SECRET")])
        #expect(route.verify.secrets.map(\.bytes) == [Array(envSecret.utf8)])
        #expect(route.verify.tolerance == .seconds(300))
        #expect(route.dedup.capacity == 100_000)
        #expect(route.dedup.ttl == .seconds(72 * 3600))
        #expect(route.dedup.ttl.milliseconds == 259_200_000)
        #expect(route.upstream.url.scheme == .http)
        #expect(route.upstream.url.host == "127.0.0.1")
        #expect(route.upstream.url.port == 3000)
        #expect(route.upstream.url.target == "/webhooks/vecu")
        #expect(route.upstream.timeout == .seconds(25))
        #expect(route.upstream.maxConnections == 64)
        #expect(route.upstream.addHeaders.map(\.name) == ["X-Source"])
        #expect(route.upstream.addHeaders.map(\.value) == ["hookgate"])
    }

    @Test func defaultsApplyWhenOptionalKeysAreAbsent() throws {
        let config = try loaded(configYAML())
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(config.workers == .fixed(1))
        #expect(config.limits == Configuration.Limits())
        #expect(config.limits.maxBodyBytes == 1_048_576)
        #expect(config.limits.maxHeaderBytes == 16_384)
        #expect(config.limits.clientTimeout == .seconds(15))
        #expect(config.shutdownGrace == .seconds(25))
        try #require(config.routes.count == 1)
        let route = config.routes[0]
        #expect(route.verify.tolerance == .seconds(300))
        #expect(route.dedup == Configuration.Dedup())
        #expect(route.dedup.capacity == 100_000)
        #expect(route.dedup.ttl == .seconds(259_200))
        #expect(route.upstream.timeout == .seconds(25))
        #expect(route.upstream.maxConnections == 64)
        #expect(route.upstream.addHeaders.isEmpty)
    }

    @Test func everyOptionalValueIsRead() throws {
        let yaml = configYAML(
            top: "listen: \"[::1]:9000\"\nworkers: auto\nshutdown_grace: 0s\nlimits:\n  max_body_bytes: 2048\n  max_header_bytes: 1024\n  client_timeout: 250ms\n",
            routes: [RouteYAML(
                verify: "scheme: vecu\nsecrets:\n  - env: NEXT_SECRET\n  - file: /run/secrets/vecu\n  - value: \(secret32)\ntolerance: 24h",
                dedup: "capacity: 1\nttl: 1s",
                upstream: "url: http://app:80\ntimeout: 29s\nmax_connections: 4096\nadd_headers:\n  X-B: 2\n  X-A: 1\n  X-Empty: \"\""
            )]
        )
        let config = try loaded(yaml)
        #expect(config.listen == ListenAddress(host: "::1", port: 9000))
        #expect(config.workers == .auto)
        #expect(config.shutdownGrace == .init(milliseconds: 0))
        #expect(config.limits.maxBodyBytes == 2048)
        #expect(config.limits.maxHeaderBytes == 1024)
        #expect(config.limits.clientTimeout == .init(milliseconds: 250))
        let route = try #require(config.routes.first)
        #expect(route.verify.secrets.map(\.origin) == [.environment("NEXT_SECRET"), .file("/run/secrets/vecu"), .literal])
        #expect(route.verify.secrets.map(\.bytes) == [Array(secret32.utf8), Array(fileSecret.utf8), Array(secret32.utf8)])
        #expect(route.verify.tolerance == .seconds(86_400))
        #expect(route.dedup.capacity == 1)
        #expect(route.dedup.ttl == .seconds(1))
        #expect(route.upstream.url.host == "app")
        #expect(route.upstream.url.port == 80)
        #expect(route.upstream.url.target == "/")
        #expect(route.upstream.timeout == .seconds(29))
        #expect(route.upstream.maxConnections == 4096)
        #expect(route.upstream.addHeaders.map(\.name) == ["X-B", "X-A", "X-Empty"], "file order is kept")
        #expect(route.upstream.addHeaders.map(\.value) == ["2", "1", ""])
    }

    @Test(arguments: problemCases)
    func reportsProblem(_ c: ProblemCase) {
        let found = problems(c.yaml)
        #expect(found.map(\.key) == c.keys, "\(found)")
        #expect(found.first?.message.contains(c.message) == true, "\(found)")
    }

    @Test func unsetEnvironmentVariableMessageIsExact() throws {
        let result = ConfigurationLoader.load(yaml: exampleConfig, environment: SecretEnvironment(variables: [:], readFile: { _ in [] }))
        guard case .failure(let failure) = result else {
            Issue.record("loaded without the secret")
            return
        }
        #expect(failure.problems.count == 1)
        #expect(failure.problems.map(\.description) == ["routes[0].verify.secrets[0]: environment variable VECU_WEBHOOK_SECRET is not set"])
        #expect(failure.description == "routes[0].verify.secrets[0]: environment variable VECU_WEBHOOK_SECRET is not set")
    }

    @Test(arguments: ["/run/secrets/vecu", "/run/secrets/crlf", "/run/secrets/bare"])
    func fileSecretHasItsLineEndingTrimmed(path: String) throws {
        let config = try loaded(verifyWithSecrets("- file: \(path)"))
        #expect(config.routes.first?.verify.secrets.map(\.bytes) == [Array(fileSecret.utf8)])
        #expect(config.routes.first?.verify.secrets.map(\.origin) == [.file(path)])
    }

    @Test func literalSecretOfExactly32BytesLoads() throws {
        let config = try loaded(verifyWithSecrets("- value: \(secret32)"))
        #expect(config.routes.first?.verify.secrets.map(\.bytes) == [Array(secret32.utf8)])
    }

    /// (timeout, accepted) around the sender's 30 s deadline.
    @Test(arguments: [("29s", true), ("29999ms", true), ("100ms", true), ("30s", false), ("30000ms", false), ("45s", false)])
    func upstreamTimeoutMustBeBelowTheSenderDeadline(_ text: String, _ accepted: Bool) throws {
        let found = problems(upstreamWith("timeout: \(text)"))
        if accepted {
            #expect(found.isEmpty, "\(found)")
            let config = try loaded(upstreamWith("timeout: \(text)"))
            #expect(config.routes.first?.upstream.timeout == ConfigDuration(parsing: text))
        } else {
            #expect(found.map(\.key) == ["routes[0].upstream.timeout"])
        }
    }

    @Test(arguments: badDurations, 0..<durationKeys.count)
    func badDurationNamesItsKey(_ text: String, _ location: Int) {
        let (key, yaml) = durationKeys[location]
        let found = problems(yaml(text))
        #expect(found.map(\.key) == [key], "\(found)")
        #expect(found.first?.message.contains("expected a duration such as") == true)
        #expect(found.first?.message.contains("got \"\(text)\"") == true)
    }

    @Test(arguments: ["8080", "localhost", ":8080", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:http", "[::1]8080", "::1:8080", "[::1]", ""])
    func badListenAddress(_ text: String) {
        let found = problems(configYAML(top: "listen: \"\(text)\"\n"))
        #expect(found.map(\.key) == ["listen"], "\(found)")
        #expect(found.first?.message.contains("expected host:port") == true)
    }

    @Test(arguments: [("1", WorkerCount.fixed(1)), ("8", .fixed(8)), ("1024", .fixed(1024)), ("auto", .auto)] as [(String, WorkerCount)])
    func workersAccepted(_ text: String, _ expected: WorkerCount) throws {
        #expect(try loaded(configYAML(top: "workers: \(text)\n")).workers == expected)
    }

    @Test(arguments: ["0", "abc", "-1", "1025", "1.5", "Auto", "\"\""])
    func workersRejected(_ text: String) {
        let found = problems(configYAML(top: "workers: \(text)\n"))
        #expect(found.map(\.key) == ["workers"], "\(found)")
        #expect(found.first?.message.contains("expected a number from 1 to 1024 or \"auto\"") == true)
    }

    @Test(arguments: [("debug", LogLevel.debug), ("info", .info), ("warn", .warn), ("error", .error)] as [(String, LogLevel)])
    func logLevelAccepted(_ text: String, _ expected: LogLevel) throws {
        #expect(try loaded(configYAML(top: "log_level: \(text)\n")).logLevel == expected)
    }

    @Test func logLevelDefaultsToInfo() throws {
        #expect(try loaded(configYAML()).logLevel == .info)
    }

    @Test(arguments: ["warning", "INFO", "Debug", "trace", "\"\"", "[info]", "\"info \""])
    func logLevelRejected(_ text: String) {
        let found = problems(configYAML(top: "log_level: \(text)\n"))
        #expect(found.map(\.key) == ["log_level"], "\(found)")
    }

    @Test func workerCountResolves() {
        #expect(WorkerCount.auto.resolved(cores: 8) == 8)
        #expect(WorkerCount.auto.resolved(cores: 0) == 1)
        #expect(WorkerCount.fixed(3).resolved(cores: 8) == 3)
    }

    @Test(arguments: ["Bad Header", "X(Y)", "X/Y", "Ünïcode", "X-A;", "\"\""])
    func addHeadersInvalidNames(_ name: String) {
        let quoted = name.hasPrefix("\"") ? name : "\"\(name)\""
        let found = problems(upstreamWith("add_headers:\n  \(quoted): v"))
        let bare = name == "\"\"" ? "" : name
        #expect(found.map(\.key) == ["routes[0].upstream.add_headers.\(bare)"], "\(found)")
        #expect(found.first?.message == "not a valid header name")
    }

    @Test(arguments: [
        "X-Hookgate-Foo", "x-hookgate-verified", "X-HOOKGATE-EVENT-ID", "Host", "host", "Connection", "Keep-Alive", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Content-Length", "Proxy-Authorization", "Proxy-Whatever", "X-Forwarded-For",
        "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X-VECU-Signature", "x-vecu-event-id",
    ])
    func addHeadersReservedNames(_ name: String) {
        let found = problems(upstreamWith("add_headers:\n  \(name): v"))
        #expect(found.map(\.key) == ["routes[0].upstream.add_headers.\(name)"], "\(found)")
        #expect(found.first?.message.contains("cannot be added") == true)
    }

    @Test(arguments: ["X-Source", "X-Hookgate", "Authorization", "X-Forwarded", "X-VECU", "Accept", "x~custom!"])
    func addHeadersAllowedNames(_ name: String) throws {
        let config = try loaded(upstreamWith("add_headers:\n  \"\(name)\": v"))
        #expect(config.routes.first?.upstream.addHeaders.map(\.name) == [name])
    }

    @Test func severalProblemsAreReportedAtOnce() {
        let yaml = """
        colour: blue
        listen: nowhere
        workers: 0
        limits:
          client_timeout: 10
        routes:
          - name: vecu
            path: /webhooks/vecu
            verify:
              scheme: vecu
              secrets:
                - env: MISSING_SECRET
            upstream:
              url: http://127.0.0.1:3000/webhooks/vecu
              timeout: 45s
              add_headers:
                Host: example.com
          - name: vecu
            path: /webhooks/other
            verify:
              scheme: hmac-sha1
              secrets:
                - value: short
            upstream:
              url: ftp://example.com/
        """
        let found = problems(yaml)
        #expect(found.count == 10, "\(found)")
        #expect(found.map(\.key) == [
            "colour",
            "listen",
            "workers",
            "limits.client_timeout",
            "routes[0].verify.secrets[0]",
            "routes[0].upstream.timeout",
            "routes[0].upstream.add_headers.Host",
            "routes[1].verify.scheme",
            "routes[1].verify.secrets[0]",
            "routes[1].upstream.url",
        ])
        guard case .failure(let all) = ConfigurationLoader.load(yaml: yaml, environment: environment) else {
            Issue.record("loaded")
            return
        }
        #expect(all.description.split(separator: "\n").count == 10)
        #expect(all.description.hasPrefix("colour: unknown key"))
    }

    @Test func duplicateRoutesAreReportedOnEveryRepeat() {
        let found = problems(configYAML(routes: [RouteYAML(), RouteYAML(), RouteYAML()]))
        #expect(found.map(\.key) == ["routes[1].path", "routes[1].name", "routes[2].path", "routes[2].name"])
        #expect(found.allSatisfy { $0.message.contains("routes[0]") })
    }

    /// Yams refuses repeated keys while parsing; the problem names the key and both positions.
    @Test func duplicateYAMLKeyIsAProblem() {
        let found = problems("listen: 127.0.0.1:8080\nlisten: 0.0.0.0:9090\n" + configYAML())
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message == "key \"listen\" appears more than once in one mapping (first at 1:1, again at 2:1)", "\(found)")
    }

    @Test func duplicateNestedYAMLKeyIsAProblem() {
        let found = problems(upstreamWith("timeout: 10s\ntimeout: 20s"))
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.message.hasPrefix("key \"timeout\" appears more than once") == true, "\(found)")
    }

    @Test(arguments: unreadableFileCases)
    func unreadableFileProblemNamesThePositionAndQuotesNothing(_ c: UnreadableFileCase) throws {
        let found: [ConfigurationProblem]
        switch ConfigurationLoader.load(bytes: c.bytes, environment: environment) {
        case .success: found = []
        case .failure(let failure): found = failure.problems
        }
        try #require(found.count == 1, "\(found)")
        let text = found[0].description
        #expect(text.contains(c.position), "\(text)")
        #expect(!text.contains(inlineSecret))
        #expect(!text.contains(String(inlineSecret.prefix(8))))
        // No line of the document, nor any 8-character run of it, appears in the message.
        let document = String(decoding: c.bytes, as: UTF8.self)
        for line in document.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingPrefix(while: { $0 == " " || $0 == "-" || $0 == "\t" })
            guard trimmed.count >= 8 else { continue }
            for start in 0...(trimmed.count - 8) {
                let window = trimmed.dropFirst(start).prefix(8)
                #expect(!text.contains(window), "message quotes \"\(window)\": \(text)")
            }
        }
    }

    @Test func httpsUpstreamLoads() throws {
        let config = try loaded(route(upstream: "url: https://app.example.com/webhooks/vecu"))
        let url = try #require(config.routes.first?.upstream.url)
        #expect(url.scheme == .https)
        #expect(url.port == 443)
        #expect(url.authority == "app.example.com")
    }

    @Test func tlsListenerAdminListenerAndLimitsLoad() throws {
        let config = try loaded(configYAML(top: """
        listen:
          address: 0.0.0.0:8443
          tls:
            cert: /etc/hookgate/cert.pem
            key: /etc/hookgate/key.pem
        admin:
          listen: 127.0.0.1:9090
        limits:
          max_connections: 500

        """))
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 8443))
        #expect(config.tls == TLSFiles(certificate: "/etc/hookgate/cert.pem", key: "/etc/hookgate/key.pem"))
        #expect(config.adminListen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.limits.maxConnections == 500)
    }

    @Test func tlsAndAdminAreOffByDefault() throws {
        let config = try loaded(configYAML())
        #expect(config.tls == nil)
        #expect(config.adminListen == nil)
        #expect(config.limits.maxConnections == 10_000)
        #expect(config.routes.first?.upstream.caFile == nil)
        #expect(config.routes.first?.upstream.tlsInsecureSkipVerify == false)
    }

    @Test func listenMappingWithoutTLSIsPlainHTTP() throws {
        let config = try loaded(configYAML(top: "listen:\n  address: 127.0.0.1:9000\n"))
        #expect(config.listen == ListenAddress(host: "127.0.0.1", port: 9000))
        #expect(config.tls == nil)
    }

    @Test func ephemeralPortsMayCoincide() throws {
        let config = try loaded(configYAML(top: "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n"))
        #expect(config.adminListen == config.listen)
    }

    @Test(arguments: [("true", true), ("false", false)])
    func httpsUpstreamTLSSettingsLoad(_ text: String, _ skip: Bool) throws {
        let config = try loaded(route(upstream: "url: https://app.example.com/x\nca_file: /etc/hookgate/ca.pem\ntls_insecure_skip_verify: \(text)"))
        let upstream = try #require(config.routes.first?.upstream)
        #expect(upstream.caFile == "/etc/hookgate/ca.pem")
        #expect(upstream.tlsInsecureSkipVerify == skip)
    }

    @Test func problemDescriptionsNameTheirKey() {
        #expect(ConfigurationProblem(key: "listen", message: "bad").description == "listen: bad")
        #expect(ConfigurationProblem(key: "", message: "not valid YAML").description == "not valid YAML")
        let all = ConfigurationProblems(problems: [.init(key: "a", message: "x"), .init(key: "b.c", message: "y")])
        #expect(all.description == "a: x\nb.c: y")
    }
}
