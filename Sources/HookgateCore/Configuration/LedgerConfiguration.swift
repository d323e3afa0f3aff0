/// `ledger`: where delivered ids are remembered, one store for all routes (routes keep
/// `dedup.capacity` and `dedup.ttl`).
public struct LedgerConfiguration: Sendable {
    /// `ledger.store`: `memory` (default; lost on restart), `sqlite` (survives restarts of one
    /// replica) or `redis` (shared by every replica).
    public enum Store: String, Sendable, CaseIterable {
        case memory, sqlite, redis
    }

    public var store: Store = .memory
    /// `ledger.sqlite`, present when `store` is `sqlite`.
    public var sqlite: SQLite?
    /// `ledger.redis`, present when `store` is `redis`.
    public var redis: Redis?

    public init() {}

    /// `ledger.sqlite`.
    public struct SQLite: Sendable, Equatable {
        /// `path`: the database file; its folder must exist and be writable. Required.
        public var path: String
        /// `commit_interval`: how often the background writer commits. Default 5ms. After a
        /// SIGKILL at most this much is forgotten (those events may be forwarded once more).
        public var commitInterval: ConfigDuration = .init(milliseconds: 5)
        public init(path: String) { self.path = path }
    }

    /// `ledger.redis`.
    public struct Redis: Sendable {
        /// `url`: `redis://host[:port][/db]` or `rediss://` for TLS. Required.
        public var url: RedisURL
        /// `username`, `password`: optional ACL user and password (secret sources).
        public var username: Secret?
        public var password: Secret?
        /// `key_prefix`: every key is `<prefix>:<digest>`. Default `hookgate`.
        public var keyPrefix = "hookgate"
        /// `timeout`: deadline of one command. Default 150ms.
        public var timeout: ConfigDuration = .init(milliseconds: 150)
        /// `on_unavailable`: what to do when Redis cannot answer in time. Default `local`.
        public var onUnavailable: UnavailablePolicy = .local
        /// `claim_lifetime`: how long a claim lives in Redis if its replica dies before releasing
        /// it. Must exceed the longest possible forward. Default 60s.
        public var claimLifetime: ConfigDuration = .seconds(60)
        /// `ca_file`, `tls_insecure_skip_verify`: as for upstreams, for `rediss://`.
        public var caFile: String?
        public var tlsInsecureSkipVerify = false

        public init(url: RedisURL) { self.url = url }
    }

    /// `ledger.redis.on_unavailable`.
    public enum UnavailablePolicy: String, Sendable, CaseIterable {
        /// Go on with this process's ledger (a retry on another replica may be forwarded again).
        case local
        /// Answer `503 ledger_unavailable` (except on the sender's last attempt).
        case reject
    }
}

/// `redis://host[:port][/db]` or `rediss://host[:port][/db]`. Credentials never go in the URL
/// (they would be logged and shown by `check`): use `username` and `password`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: UInt16
    public var database: Int

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "rediss" : "redis")://\(h):\(port)/\(database)"
    }

    public init?(parsing text: String) {
        let rest: Substring
        if text.hasPrefix("redis://") {
            tls = false
            rest = text.dropFirst(8)
        } else if text.hasPrefix("rediss://") {
            tls = true
            rest = text.dropFirst(9)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let path = rest[authorityEnd...].dropFirst()
        guard !authority.isEmpty, !authority.contains("@"), !rest.contains("?"), !rest.contains("#") else { return nil }
        guard let (host, port) = ListenAddress.hostAndPort(authority, defaultPort: 6379) else { return nil }
        self.host = host
        self.port = port
        if path.isEmpty {
            database = 0
        } else {
            guard path.utf8.count <= 5, path.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let db = Int(path) else { return nil }
            database = db
        }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "%") }) else { return nil }
    }
}
