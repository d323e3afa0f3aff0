import Testing
@testable import HookgateCore

/// `shutdown_delay` and `listen.proxy_protocol`: defaults, values, and what is refused.

private let noFiles = SecretEnvironment(variables: ["S": String(repeating: "s", count: 32)], readFile: { _ in [] })

private func yaml(_ top: String) -> String {
    top + """

    routes:
      - name: r
        path: /in
        verify: {scheme: vecu, secrets: [{env: S}]}
        upstream: {url: "http://127.0.0.1:9/x"}

    """
}

private func load(_ top: String) -> Result<Configuration, ConfigurationProblems> {
    ConfigurationLoader.load(yaml: yaml(top), environment: noFiles)
}

@Suite("Inbound configuration keys")
struct InboundConfigurationTests {
    @Test func defaults() throws {
        let config = try load("listen: 127.0.0.1:8080").get()
        #expect(config.shutdownDelay == .seconds(5))
        #expect(config.proxyProtocol == false)
    }

    @Test(arguments: [("0s", Int64(0)), ("250ms", 250), ("5s", 5_000), ("60s", 60_000), ("1m", 60_000)])
    func shutdownDelayIsRead(_ text: String, _ milliseconds: Int64) throws {
        #expect(try load("shutdown_delay: \(text)").get().shutdownDelay == .init(milliseconds: milliseconds))
    }

    @Test(arguments: ["61s", "2m", "-1s", "5", "soon", "\"\"", "[5s]", "5 s"])
    func shutdownDelayOutOfRangeOrMalformedIsRefused(_ text: String) {
        guard case .failure(let problems) = load("shutdown_delay: \(text)") else {
            Issue.record("shutdown_delay: \(text) was accepted")
            return
        }
        #expect(problems.problems.map(\.key) == ["shutdown_delay"])
    }

    @Test(arguments: [("true", true), ("false", false)])
    func proxyProtocolIsRead(_ text: String, _ expected: Bool) throws {
        let config = try load("listen: {address: \"0.0.0.0:8080\", proxy_protocol: \(text)}").get()
        #expect(config.proxyProtocol == expected)
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 8080))
    }

    @Test(arguments: ["yes", "on", "1", "True", "TRUE", "\"\"", "[true]", "tru\u{0435}"])
    func proxyProtocolOtherThanTrueOrFalseIsRefused(_ text: String) {
        guard case .failure(let problems) = load("listen: {address: \"0.0.0.0:8080\", proxy_protocol: \(text)}") else {
            Issue.record("proxy_protocol: \(text) was accepted")
            return
        }
        #expect(problems.problems.map(\.key) == ["listen.proxy_protocol"])
    }
}
