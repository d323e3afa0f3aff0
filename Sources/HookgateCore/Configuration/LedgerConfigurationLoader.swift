import Yams

extension ConfigurationLoader {
    /// Safety margin added to the longest possible forward when checking `claim_lifetime`.
    public static let claimMargin = ConfigDuration.seconds(5)

    /// The longest a forward of `upstream` can take from claim to answer: the wait for a pooled
    /// connection (at most `min(timeout, 29s - timeout)`) plus the upstream's whole timeout.
    public static func longestForward(_ upstream: Configuration.Upstream) -> ConfigDuration {
        let timeout = upstream.timeout.milliseconds
        let wait = max(0, min(timeout, senderDeadline.milliseconds - 1_000 - timeout))
        return ConfigDuration(milliseconds: timeout + wait)
    }

    static func loadLedger(_ node: Node, routes: [Configuration.Route], reader: inout NodeReader,
                           environment: SecretEnvironment) -> LedgerConfiguration {
        var ledger = LedgerConfiguration()
        guard let map = reader.mapping(node, at: "ledger") else { return ledger }
        let f = reader.fields(map, at: "ledger", allowed: ["store", "sqlite", "redis"])
        if let n = f["store"], let text = reader.string(n, at: "ledger.store") {
            if let store = LedgerConfiguration.Store(rawValue: text) {
                ledger.store = store
            } else {
                reader.problem("ledger.store", "expected memory, sqlite or redis, got \"\(text)\"")
            }
        }
        if let n = f["sqlite"], let m = reader.mapping(n, at: "ledger.sqlite") {
            let s = reader.fields(m, at: "ledger.sqlite", allowed: ["path", "commit_interval"])
            if let path = loadFilePath(s, at: "ledger.sqlite", reader: &reader, environment: environment) {
                ledger.sqlite = LedgerConfiguration.SQLite(path: path)
            }
            if let c = s["commit_interval"],
               let d = reader.duration(c, at: "ledger.sqlite.commit_interval", minimum: .init(milliseconds: 1)) {
                if d > .seconds(1) { reader.problem("ledger.sqlite.commit_interval", "must be at most 1s, got \(d)") }
                ledger.sqlite?.commitInterval = d
            }
        }
        if let n = f["redis"], let m = reader.mapping(n, at: "ledger.redis") {
            ledger.redis = loadRedis(m, routes: routes, reader: &reader, environment: environment)
        }
        switch ledger.store {
        case .memory:
            break
        case .sqlite:
            if f["sqlite"] == nil { reader.problem("ledger.sqlite", "is required when ledger.store is sqlite") }
        case .redis:
            if f["redis"] == nil { reader.problem("ledger.redis", "is required when ledger.store is redis") }
        }
        return ledger
    }

    private static func loadRedis(_ m: Node.Mapping, routes: [Configuration.Route], reader: inout NodeReader,
                                  environment: SecretEnvironment) -> LedgerConfiguration.Redis? {
        let key = "ledger.redis"
        let f = reader.fields(m, at: key, allowed: ["url", "username", "password", "key_prefix", "timeout", "on_unavailable",
                                                     "claim_lifetime", "ca_file", "tls_insecure_skip_verify"])
        var redis: LedgerConfiguration.Redis?
        if let n = reader.required(f, "url", at: key), let text = reader.string(n, at: "\(key).url") {
            if let url = RedisURL(parsing: text) {
                redis = LedgerConfiguration.Redis(url: url)
            } else {
                reader.problem("\(key).url", "expected redis://host[:port][/db] or rediss://... without credentials, got a malformed URL")
            }
        }
        for name in ["username", "password"] {
            guard let n = f[name] else { continue }
            let secret = loadSecret(n, at: "\(key).\(name)", reader: &reader, environment: environment, minimumBytes: 1)
            if name == "username" { redis?.username = secret } else { redis?.password = secret }
        }
        if let n = f["key_prefix"], let text = reader.string(n, at: "\(key).key_prefix") {
            if text.isEmpty || text.utf8.count > 64
                || !text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "*") && $0 != UInt8(ascii: "?") }) {
                reader.problem("\(key).key_prefix", "expected 1 to 64 printable ASCII characters without spaces, '*' or '?'")
            } else {
                redis?.keyPrefix = text
            }
        }
        if let n = f["timeout"], let d = reader.duration(n, at: "\(key).timeout", minimum: .init(milliseconds: 1)) {
            if d > .seconds(5) { reader.problem("\(key).timeout", "must be at most 5s, got \(d)") }
            redis?.timeout = d
        }
        if let n = f["on_unavailable"], let text = reader.string(n, at: "\(key).on_unavailable") {
            if let policy = LedgerConfiguration.UnavailablePolicy(rawValue: text) {
                redis?.onUnavailable = policy
            } else {
                reader.problem("\(key).on_unavailable", "expected local or reject, got \"\(text)\"")
            }
        }
        if let n = f["claim_lifetime"], let d = reader.duration(n, at: "\(key).claim_lifetime", minimum: .seconds(1)) {
            redis?.claimLifetime = d
        }
        if let lifetime = redis?.claimLifetime {
            for (i, route) in routes.enumerated() {
                let longest = route.destinations.map { longestForward($0.upstream).milliseconds }.max() ?? 0
                let needed = ConfigDuration(milliseconds: longest + claimMargin.milliseconds)
                if lifetime < needed {
                    reader.problem("\(key).claim_lifetime",
                                   "\(lifetime) is shorter than the longest forward of routes[\(i)] (upstream.timeout plus the pool wait plus \(claimMargin)): at least \(needed)")
                }
            }
        }
        if let n = f["ca_file"], let path = reader.string(n, at: "\(key).ca_file") {
            do { _ = try environment.readFile(path) } catch { reader.problem("\(key).ca_file", "cannot read \(path): \(error)") }
            redis?.caFile = path
        }
        if let n = f["tls_insecure_skip_verify"], let skip = reader.boolean(n, at: "\(key).tls_insecure_skip_verify") {
            redis?.tlsInsecureSkipVerify = skip
        }
        if let r = redis, !r.url.tls, r.caFile != nil || r.tlsInsecureSkipVerify {
            reader.problem("\(key).url", "ca_file and tls_insecure_skip_verify apply only to rediss:// URLs")
        }
        return redis
    }

    /// The required `path` of a file hookgate creates and writes (`ledger.sqlite.path`,
    /// `spool.path`): a file name in a folder that exists and is writable; nil after a problem.
    static func loadFilePath(_ fields: [String: Node], at key: String, reader: inout NodeReader,
                             environment: SecretEnvironment) -> String? {
        guard let p = reader.required(fields, "path", at: key), let path = reader.string(p, at: "\(key).path") else { return nil }
        let folder = Self.folder(of: path)
        if path.isEmpty || path.hasSuffix("/") {
            reader.problem("\(key).path", "expected a file path, got \"\(path)\"")
        } else if !environment.isWritableDirectory(folder) {
            reader.problem("\(key).path", "folder \(folder) does not exist or is not writable")
        } else {
            return path
        }
        return nil
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}
