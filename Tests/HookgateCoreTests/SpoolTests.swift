import Testing
@testable import HookgateCore

/// `spool:` and `routes[i].spool`, and the pure rules of the spool (issue 11): when a failed
/// forward is spooled, what a redelivery's answer means, the backoff, the redelivery's headers.
@Suite("Spool")
struct SpoolTests {
    private static let environment = SecretEnvironment(
        variables: [:], readFile: { _ in throw ConfigurationProblem(key: "", message: "No such file") },
        isWritableDirectory: { $0 == "/var/lib/hookgate" })

    private func route(scheme: String = "vecu", spool: String) -> String {
        """
        routes:
          - name: vecu
            path: /webhooks/vecu
            verify:
              scheme: \(scheme)
              secrets:
                - value: "0123456789abcdef0123456789abcdef"
            upstream:
              url: http://127.0.0.1:3000/
        \(spool)
        """
    }

    private func load(_ yaml: String) -> Result<Configuration, ConfigurationProblems> {
        ConfigurationLoader.load(yaml: yaml, environment: Self.environment)
    }

    private func problems(_ yaml: String) -> [String] {
        guard case .failure(let p) = load(yaml) else { return [] }
        return p.problems.map(\.description)
    }

    @Test func offWhenAbsent() throws {
        let config = try load(route(spool: "")).get()
        #expect(config.spool == nil)
        #expect(config.routes[0].spool == nil)
    }

    @Test func everyKey() throws {
        let config = try load("""
        spool:
          path: /var/lib/hookgate/spool.sqlite
          max_events: 500
          max_connections: 4
        """ + "\n" + route(spool: """
            spool:
              from_retry: 3
              max_age: 2h
              backoff: {initial: 200ms, max: 10s}
        """)).get()
        #expect(config.spool == SpoolConfiguration(path: "/var/lib/hookgate/spool.sqlite").with { $0.maxEvents = 500; $0.maxConnections = 4 })
        let spool = try #require(config.routes[0].spool)
        #expect(spool.fromRetry == 3)
        #expect(spool.maxAge == .seconds(7200))
        #expect(spool.initialBackoff == .init(milliseconds: 200))
        #expect(spool.maximumBackoff == .seconds(10))
    }

    @Test func defaults() throws {
        let config = try load("spool: {path: /var/lib/hookgate/spool.sqlite}\n" + route(spool: "    spool: {}")).get()
        #expect(config.spool?.maxEvents == 100_000)
        #expect(config.spool?.maxConnections == 2)
        #expect(config.routes[0].spool == RouteSpool())
        #expect(RouteSpool().fromRetry == 5 && RouteSpool().maxAge == .seconds(72 * 3600))
    }

    @Test func routeSpoolNeedsTheTopLevelSpool() {
        #expect(problems(route(spool: "    spool: {from_retry: 5}")).contains { $0.hasPrefix("routes[0].spool:") && $0.contains("top-level spool") })
    }

    @Test func onlyVecuRoutesSpool() {
        let found = problems("spool: {path: /var/lib/hookgate/spool.sqlite}\n" + route(scheme: "github", spool: "    spool: {}"))
        #expect(found.contains { $0.hasPrefix("routes[0].spool:") && $0.contains("only vecu routes") })
    }

    @Test func hostileValues() {
        let top = "spool: {path: /var/lib/hookgate/spool.sqlite}\n"
        #expect(problems(top + route(spool: "    spool: {from_retry: -1}")).contains { $0.hasPrefix("routes[0].spool.from_retry") })
        #expect(problems(top + route(spool: "    spool: {from_retry: 101}")).contains { $0.hasPrefix("routes[0].spool.from_retry") })
        #expect(problems(top + route(spool: "    spool: {from_retry: \"５\"}")).contains { $0.hasPrefix("routes[0].spool.from_retry") })
        #expect(problems(top + route(spool: "    spool: {max_age: 0s}")).contains { $0.hasPrefix("routes[0].spool.max_age") })
        #expect(problems(top + route(spool: "    spool: {backoff: {initial: 10ms}}")).contains { $0.hasPrefix("routes[0].spool.backoff.initial") })
        #expect(problems(top + route(spool: "    spool: {backoff: {initial: 10s, max: 1s}}")).contains { $0.hasPrefix("routes[0].spool.backoff.max") })
        #expect(problems(top + route(spool: "    spool: {retry_from: 5}")).contains { $0.contains("retry_from") })
        #expect(problems(top + route(spool: "    spool: true")).contains { $0.hasPrefix("routes[0].spool") })
        #expect(problems("spool: {path: /nonexistent/spool.sqlite}\n" + route(spool: "")).contains { $0.hasPrefix("spool.path") })
        #expect(problems("spool: {path: /var/lib/hookgate/}\n" + route(spool: "")).contains { $0.hasPrefix("spool.path") })
        #expect(problems("spool: {max_events: 5}\n" + route(spool: "")).contains { $0.hasPrefix("spool") && $0.contains("path") })
        #expect(problems("spool: {path: /var/lib/hookgate/s.sqlite, max_events: 0}\n" + route(spool: "")).contains { $0.hasPrefix("spool.max_events") })
        #expect(problems("spool: {path: /var/lib/hookgate/s.sqlite, max_connections: 65}\n" + route(spool: "")).contains { $0.hasPrefix("spool.max_connections") })
    }

    @Test func spoolsOnlyRetriableFailuresOfTheLastAttempts() {
        let settings = RouteSpool()
        let unavailable = SenderAnswer.relay(status: 503, delivered: false)
        #expect(SpoolPolicy.shouldSpool(unavailable, retryCount: 5, settings: settings))
        #expect(SpoolPolicy.shouldSpool(unavailable, retryCount: 9, settings: settings))
        #expect(!SpoolPolicy.shouldSpool(unavailable, retryCount: 4, settings: settings))
        #expect(SpoolPolicy.shouldSpool(.relay(status: 429, delivered: false), retryCount: 5, settings: settings))
        #expect(!SpoolPolicy.shouldSpool(.relay(status: 400, delivered: false), retryCount: 5, settings: settings))
        #expect(!SpoolPolicy.shouldSpool(.relay(status: 409, delivered: false), retryCount: 5, settings: settings))
        #expect(!SpoolPolicy.shouldSpool(.relay(status: 200, delivered: true), retryCount: 5, settings: settings))
        for outcome in [UpstreamOutcome.timedOut, .unreachable("refused"), .invalidResponse("garbage"), .response(status: 302)] {
            #expect(SpoolPolicy.shouldSpool(SenderAnswer.forOutcome(outcome), retryCount: 5, settings: settings))
        }
        #expect(SpoolPolicy.shouldSpool(.reject(Rejection(.upstreamBusy, "busy")), retryCount: 5, settings: settings))
        var always = RouteSpool()
        always.fromRetry = 0
        #expect(SpoolPolicy.shouldSpool(unavailable, retryCount: 0, settings: always))
    }

    @Test func redeliveryResults() {
        #expect(SpoolPolicy.redeliveryResult(.response(status: 200)) == .delivered)
        #expect(SpoolPolicy.redeliveryResult(.response(status: 204)) == .delivered)
        #expect(SpoolPolicy.redeliveryResult(.response(status: 400)) == .dead("upstream answered 400"))
        #expect(SpoolPolicy.redeliveryResult(.response(status: 401)) == .dead("upstream answered 401"))
        #expect(SpoolPolicy.redeliveryResult(.response(status: 429)).word == "retry")
        #expect(SpoolPolicy.redeliveryResult(.response(status: 503)).word == "retry")
        #expect(SpoolPolicy.redeliveryResult(.response(status: 301)).word == "retry")
        #expect(SpoolPolicy.redeliveryResult(.timedOut).word == "retry")
        #expect(SpoolPolicy.redeliveryResult(.unreachable("reset")).word == "retry")
        #expect(SpoolPolicy.redeliveryResult(nil, busy: true).word == "retry")
    }

    @Test func backoffDoublesWithJitterAndCap() {
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 1, initial: 30_000, maximum: 3_600_000, unit: 0.999999) == 29_999)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 1, initial: 30_000, maximum: 3_600_000, unit: 0) == 15_000)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 2, initial: 30_000, maximum: 3_600_000, unit: 0) == 30_000)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 3, initial: 30_000, maximum: 3_600_000, unit: 0) == 60_000)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 30, initial: 30_000, maximum: 3_600_000, unit: 1) == 3_600_000)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: Int.max, initial: 30_000, maximum: 3_600_000, unit: 1) == 3_600_000)
        #expect(RedeliveryBackoff.delayMilliseconds(attempt: 0, initial: 100, maximum: 100, unit: 0.5) == 75)
        for attempt in 1...50 {
            let d = RedeliveryBackoff.delayMilliseconds(attempt: attempt, initial: 100, maximum: 1_000, unit: Double(attempt % 7) / 7)
            #expect(d >= 50 && d <= 1_000)
        }
    }

    @Test func redeliveryIsSignedAfresh() {
        let body = Array(#"{"specversion":"1.0","id":"e1"}"#.utf8)
        let secret = Array("0123456789abcdef0123456789abcdef".utf8)
        let stored: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("x-vecu-timestamp", "1000"), ("X-VECU-Signature", "sha256=old"),
            ("X-VECU-Event-ID", "e1"), ("x-hookgate-redelivery", "7"), ("X-Request-Id", "r1"),
        ]
        let out = RedeliveryHeaders.build(stored: stored, body: body, secret: secret, now: 2_000_000_000, attempt: 3,
                                          addHeaders: [("X-Api-Key", "k2")])
        let names = out.map { $0.name.lowercased() }
        #expect(names.filter { $0 == "x-vecu-timestamp" }.count == 1)
        #expect(names.filter { $0 == "x-vecu-signature" }.count == 1)
        #expect(names.filter { $0 == "x-hookgate-redelivery" }.count == 1)
        #expect(out.first { $0.name == "X-VECU-Timestamp" }?.value == "2000000000")
        #expect(out.first { $0.name == "X-VECU-Signature" }?.value == VecuSignatureScheme.sign(secret: secret, timestamp: 2_000_000_000, body: body))
        #expect(out.first { $0.name == "X-Hookgate-Redelivery" }?.value == "3")
        #expect(out.last! == ("X-Api-Key", "k2"))
        #expect(out.contains { $0 == ("X-Request-Id", "r1") } && out.contains { $0 == ("X-VECU-Event-ID", "e1") })
        // A look-alike name is not the signature header: kept as it is.
        let lookalike = RedeliveryHeaders.build(stored: [("X-VECU-Signaturе", "x")], body: body, secret: secret, now: 1, attempt: 1, addHeaders: [])
        #expect(lookalike.contains { $0 == ("X-VECU-Signaturе", "x") })
    }

    @Test func storedHeadersRoundTrip() {
        let fields: [(name: String, value: String)] = [("A", "1"), ("X-Empty", ""), ("X-Colon", "a: b"), ("X-Utf8", "café")]
        let decoded = RedeliveryHeaders.decode(RedeliveryHeaders.encode(fields))
        #expect(decoded.count == fields.count)
        for (a, b) in zip(decoded, fields) { #expect(a == b) }
        #expect(RedeliveryHeaders.decode([]).isEmpty)
        #expect(RedeliveryHeaders.decode(Array("garbage\r\n\r\nA: 1".utf8)).map(\.name) == ["A"])
    }

    @Test func fanOutWithASpooledDestinationIsAccepted() {
        let answer = FanOutAnswer.aggregate([("a", .delivered), ("b", .spooled)])
        #expect(answer.status == 202 && answer.error == nil && answer.isSpooled)
        #expect(answer.jsonBody == #"{"spooled":true,"destinations":{"a":"delivered","b":"spooled"}}"#)
        let failed = FanOutAnswer.aggregate([("a", .failed), ("b", .spooled)])
        #expect(failed.status == 503 && !failed.isSpooled)
        #expect(FanOutAnswer.aggregate([("a", .delivered)]).status == 200)
        #expect(Reason.spooled.status == 202)
    }
}

extension SpoolConfiguration {
    func with(_ change: (inout SpoolConfiguration) -> Void) -> SpoolConfiguration {
        var copy = self
        change(&copy)
        return copy
    }
}
