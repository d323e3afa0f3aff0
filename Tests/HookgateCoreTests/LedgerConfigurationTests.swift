import Testing
@testable import HookgateCore

/// `ledger:`: the store, its settings, and what `check` refuses because it cannot work.
@Suite("Ledger configuration")
struct LedgerConfigurationTests {
    private static let route = """
    routes:
      - name: vecu
        path: /webhooks/vecu
        verify:
          scheme: vecu
          secrets:
            - value: "0123456789abcdef0123456789abcdef"
        upstream:
          url: http://127.0.0.1:3000/
          timeout: 25s
    """

    private static let environment = SecretEnvironment(
        variables: ["REDIS_PASSWORD": "hunter2", "REDIS_USERNAME": "hookgate"],
        readFile: { path in
            guard path == "/etc/hookgate/redis-ca.pem" else { throw ConfigurationProblem(key: "", message: "No such file") }
            return Array("-----BEGIN CERTIFICATE-----\n".utf8)
        },
        isWritableDirectory: { $0 == "/var/lib/hookgate" || $0 == "." })

    private func load(_ ledger: String) -> Result<Configuration, ConfigurationProblems> {
        ConfigurationLoader.load(yaml: Self.route + "\n" + ledger, environment: Self.environment)
    }

    private func problems(_ ledger: String) -> [String] {
        guard case .failure(let p) = load(ledger) else { return [] }
        return p.problems.map(\.description)
    }

    @Test func memoryIsTheDefault() throws {
        let config = try load("").get()
        #expect(config.ledger.store == .memory)
        #expect(config.ledger.sqlite == nil && config.ledger.redis == nil)
    }

    @Test func sqliteWithDefaults() throws {
        let config = try load("ledger:\n  store: sqlite\n  sqlite:\n    path: /var/lib/hookgate/ledger.sqlite\n").get()
        #expect(config.ledger.store == .sqlite)
        #expect(config.ledger.sqlite?.path == "/var/lib/hookgate/ledger.sqlite")
        #expect(config.ledger.sqlite?.commitInterval == .init(milliseconds: 5))
    }

    @Test func redisWithEveryKey() throws {
        let config = try load("""
        ledger:
          store: redis
          redis:
            url: rediss://redis.example:6380/2
            username: {env: REDIS_USERNAME}
            password: {env: REDIS_PASSWORD}
            key_prefix: hg-prod
            timeout: 150ms
            on_unavailable: reject
            claim_lifetime: 45s
            ca_file: /etc/hookgate/redis-ca.pem
        """).get()
        let redis = try #require(config.ledger.redis)
        #expect(redis.url == RedisURL(parsing: "rediss://redis.example:6380/2"))
        #expect(redis.url.tls && redis.url.port == 6380 && redis.url.database == 2)
        #expect(redis.username?.bytes == Array("hookgate".utf8))
        #expect(redis.password?.bytes == Array("hunter2".utf8))
        #expect(redis.keyPrefix == "hg-prod")
        #expect(redis.timeout == .init(milliseconds: 150))
        #expect(redis.onUnavailable == .reject)
        #expect(redis.claimLifetime == .seconds(45))
        #expect(redis.caFile == "/etc/hookgate/redis-ca.pem")
    }

    @Test(arguments: [
        ("ledger:\n  store: disk\n", "ledger.store"),
        ("ledger:\n  store: sqlite\n", "ledger.sqlite: is required"),
        ("ledger:\n  store: redis\n", "ledger.redis: is required"),
        ("ledger:\n  store: sqlite\n  sqlite:\n    path: /nonexistent/ledger.sqlite\n", "folder /nonexistent does not exist"),
        ("ledger:\n  store: sqlite\n  sqlite:\n    path: /var/lib/hookgate/\n", "expected a file path"),
        ("ledger:\n  store: sqlite\n  sqlite:\n    path: /var/lib/hookgate/l.sqlite\n    extra: 1\n", "ledger.sqlite.extra: unknown key"),
        ("ledger:\n  store: redis\n  redis:\n    url: http://127.0.0.1:6379\n", "ledger.redis.url"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://user:pw@127.0.0.1:6379\n", "ledger.redis.url"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1:6379/x\n", "ledger.redis.url"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1:99999\n", "ledger.redis.url"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    on_unavailable: maybe\n", "ledger.redis.on_unavailable"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    claim_lifetime: 20s\n", "shorter than the longest forward"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    key_prefix: \"a b\"\n", "ledger.redis.key_prefix"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    ca_file: /etc/hookgate/redis-ca.pem\n", "apply only to rediss://"),
        ("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    password: {env: NOT_SET}\n", "NOT_SET is not set"),
    ])
    func refuses(_ ledger: String, _ expected: String) {
        let found = problems(ledger)
        #expect(found.contains { $0.contains(expected) }, "\(found)")
    }

    @Test func claimLifetimeCoversTheLongestForward() {
        // 25 s timeout: the pool wait is min(25, 29 - 25) = 4 s, so 29 s plus the 5 s margin.
        var upstream = Configuration.Upstream(url: UpstreamURL(parsing: "http://127.0.0.1/")!)
        upstream.timeout = .seconds(25)
        #expect(ConfigurationLoader.longestForward(upstream) == .seconds(29))
        upstream.timeout = .seconds(10)
        #expect(ConfigurationLoader.longestForward(upstream) == .seconds(20))
        #expect(problems("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    claim_lifetime: 34s\n").isEmpty)
        #expect(!problems("ledger:\n  store: redis\n  redis:\n    url: redis://127.0.0.1\n    claim_lifetime: 33s\n").isEmpty)
    }

    @Test(arguments: [
        ("redis://127.0.0.1", "redis://127.0.0.1:6379/0"),
        ("redis://[::1]:7000/3", "redis://[::1]:7000/3"),
        ("rediss://cache.internal", "rediss://cache.internal:6379/0"),
    ])
    func redisURLs(_ text: String, _ normalized: String) throws {
        #expect(try #require(RedisURL(parsing: text)).description == normalized)
    }

    @Test(arguments: ["", "redis://", "redis:///0", "redis://h:0", "redis://h/1/2", "redis://h?x=1", "redis://h#f", "REDIS://h",
                      "redis://h%2f", "redis://[::1", "redis://h:1:2", "redis://h/123456", "redis://h é"])
    func malformedRedisURLs(_ text: String) {
        #expect(RedisURL(parsing: text) == nil)
    }
}
