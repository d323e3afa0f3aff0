import Testing
@testable import HookgateCore

/// `product_groups` and `routes[].destinations[]`: loading, defaults, and every problem named
/// by its key.

private let secret = "vecu-secret-0123456789abcdef-0123456789"
private let environment = SecretEnvironment(variables: ["S": secret], readFile: { _ in throw CocoaLikeError() })
private struct CocoaLikeError: Error {}

private func yaml(groups: String = "product_groups:\n  CUSTODY_SDK: [\"custody.*\"]\n  CREDENTIAL_SDK: [\"credential.*\"]\n",
                  route: String) -> String {
    """
    \(groups)routes:
      - name: vecu
        path: /webhooks/vecu
        verify: {scheme: vecu, secrets: [{env: S}]}
    \(route.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
    """
}

private let issueExample = yaml(route: """
destinations:
  - name: custody-app
    filter:
      exclude: [credential.expired]
      include: [custody.vehicle.released]
      patterns: ["custody.*"]
      product_groups: [CUSTODY_SDK]
    upstream: {url: http://custody:3000/hooks, timeout: 25s}
  - name: audit
    upstream: {url: http://audit:8000/events}
""")

private func problems(_ text: String) -> [ConfigurationProblem] {
    switch ConfigurationLoader.load(yaml: text, environment: environment) {
    case .success: return []
    case .failure(let f): return f.problems
    }
}

@Suite struct DestinationsConfigurationTests {
    @Test func issueExampleLoads() throws {
        let config = try ConfigurationLoader.load(yaml: issueExample, environment: environment).get()
        #expect(config.productGroups["CUSTODY_SDK"] == ["custody.*"])
        let route = config.routes[0]
        #expect(route.isFanOut)
        #expect(route.destinations.map(\.name) == ["custody-app", "audit"])
        let f = route.destinations[0].filter
        #expect(f.exclude == ["credential.expired"])
        #expect(f.include == ["custody.vehicle.released"])
        #expect(f.patterns == ["custody.*"])
        #expect(f.productGroups == ["CUSTODY_SDK"])
        #expect(f.productGroupPatterns == ["custody.*"])
        #expect(route.destinations[0].upstream.url.authority == "custody:3000")
        #expect(route.destinations[0].upstream.timeout == .seconds(25))
        #expect(route.destinations[1].filter == .everything)
        #expect(route.ledgerName(0) == "vecu/custody-app")
        #expect(route.ledgerName(1) == "vecu/audit")
        #expect(route.upstream.url.authority == "custody:3000")
    }

    @Test func oneDestinationFormKeepsTheRouteName() throws {
        let config = try ConfigurationLoader.load(yaml: yaml(route: "upstream: {url: http://127.0.0.1:3000/x}"), environment: environment).get()
        let route = config.routes[0]
        #expect(!route.isFanOut)
        #expect(route.destinations.count == 1)
        #expect(route.destinations[0].filter == .everything)
        #expect(route.ledgerName(0) == "vecu")
    }

    @Test func everyUpstreamKeyIsReadInADestination() throws {
        let config = try ConfigurationLoader.load(yaml: yaml(route: """
        destinations:
          - name: a
            upstream:
              url: http://127.0.0.1:3000/x
              timeout: 3s
              max_connections: 7
              add_headers: {X-Team: custody}
        """), environment: environment).get()
        let up = config.routes[0].destinations[0].upstream
        #expect(up.timeout == .seconds(3))
        #expect(up.maxConnections == 7)
        #expect(up.addHeaders.map(\.name) == ["X-Team"])
    }

    struct Problem: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var yaml: String
        var key: String
        var message: String
    }

    private static let dest = "destinations:\n  - name: a\n    upstream: {url: http://127.0.0.1:3000/x}\n"

    static let cases: [Problem] = [
        .init(testDescription: "neither upstream nor destinations", yaml: yaml(route: ""), key: "routes[0].upstream", message: "is required"),
        .init(testDescription: "both upstream and destinations", yaml: yaml(route: "upstream: {url: http://127.0.0.1:3000/x}\n" + dest),
              key: "routes[0].destinations", message: "mutually exclusive"),
        .init(testDescription: "empty destinations", yaml: yaml(route: "destinations: []"), key: "routes[0].destinations",
              message: "at least one destination"),
        .init(testDescription: "destinations not a list", yaml: yaml(route: "destinations: {a: 1}"), key: "routes[0].destinations",
              message: "expected a list"),
        .init(testDescription: "duplicate destination names", yaml: yaml(route: dest + "  - name: a\n    upstream: {url: http://127.0.0.1:3001/x}"),
              key: "routes[0].destinations[1].name", message: "duplicate destination name \"a\""),
        .init(testDescription: "destination name with a slash", yaml: yaml(route: "destinations:\n  - name: a/b\n    upstream: {url: http://127.0.0.1:3000/x}"),
              key: "routes[0].destinations[0].name", message: "expected letters"),
        .init(testDescription: "destination name look-alike", yaml: yaml(route: "destinations:\n  - name: \"\u{430}udit\"\n    upstream: {url: http://127.0.0.1:3000/x}"),
              key: "routes[0].destinations[0].name", message: "expected letters"),
        .init(testDescription: "destination without name", yaml: yaml(route: "destinations:\n  - upstream: {url: http://127.0.0.1:3000/x}"),
              key: "routes[0].destinations[0].name", message: "is required"),
        .init(testDescription: "destination without upstream", yaml: yaml(route: "destinations:\n  - name: a"),
              key: "routes[0].destinations[0].upstream", message: "is required"),
        .init(testDescription: "bad upstream key in a destination", yaml: yaml(route: dest + "    filter: {}\n  - name: b\n    upstream: {url: http://127.0.0.1:3000/x, retries: 3}"),
              key: "routes[0].destinations[1].upstream.retries", message: "unknown key"),
        .init(testDescription: "unknown destination key", yaml: yaml(route: dest + "    weight: 3"),
              key: "routes[0].destinations[0].weight", message: "unknown key"),
        .init(testDescription: "unknown filter key (camelCase)", yaml: yaml(route: dest + "    filter: {productGroups: [CUSTODY_SDK]}"),
              key: "routes[0].destinations[0].filter.productGroups", message: "unknown key"),
        .init(testDescription: "unknown product group", yaml: yaml(route: dest + "    filter: {product_groups: [BILLING_SDK]}"),
              key: "routes[0].destinations[0].filter.product_groups[0]", message: "unknown product group \"BILLING_SDK\""),
        .init(testDescription: "product group in the wrong case", yaml: yaml(route: dest + "    filter: {product_groups: [custody_sdk]}"),
              key: "routes[0].destinations[0].filter.product_groups[0]", message: "unknown product group"),
        .init(testDescription: "product group repeated", yaml: yaml(route: dest + "    filter: {product_groups: [CUSTODY_SDK, CUSTODY_SDK]}"),
              key: "routes[0].destinations[0].filter.product_groups[1]", message: "appears more than once"),
        .init(testDescription: "empty pattern", yaml: yaml(route: dest + "    filter: {patterns: [\"\"]}"),
              key: "routes[0].destinations[0].filter.patterns[0]", message: "an empty pattern"),
        .init(testDescription: "pattern with a space", yaml: yaml(route: dest + "    filter: {patterns: [\"custody .*\"]}"),
              key: "routes[0].destinations[0].filter.patterns[0]", message: "printable ASCII"),
        .init(testDescription: "include with a star", yaml: yaml(route: dest + "    filter: {include: [\"custody.*\"]}"),
              key: "routes[0].destinations[0].filter.include[0]", message: "cannot hold '*'"),
        .init(testDescription: "exclude empty entry", yaml: yaml(route: dest + "    filter: {exclude: [\"\"]}"),
              key: "routes[0].destinations[0].filter.exclude[0]", message: "an empty event type"),
        .init(testDescription: "include not a list", yaml: yaml(route: dest + "    filter: {include: custody.a}"),
              key: "routes[0].destinations[0].filter.include", message: "expected a list"),
        .init(testDescription: "include repeated entry", yaml: yaml(route: dest + "    filter: {include: [a.b, a.b]}"),
              key: "routes[0].destinations[0].filter.include[1]", message: "appears more than once"),
        .init(testDescription: "include with a non-ASCII look-alike", yaml: yaml(route: dest + "    filter: {include: [\"cust\u{43E}dy.a\"]}"),
              key: "routes[0].destinations[0].filter.include[0]", message: "printable ASCII"),
        .init(testDescription: "product group with no patterns", yaml: yaml(groups: "product_groups:\n  EMPTY: []\n", route: dest),
              key: "product_groups.EMPTY", message: "at least one pattern"),
        .init(testDescription: "product group with an empty pattern", yaml: yaml(groups: "product_groups:\n  G: [\"\"]\n", route: dest),
              key: "product_groups.G[0]", message: "an empty pattern"),
        .init(testDescription: "product group badly named", yaml: yaml(groups: "product_groups:\n  \"CUSTODY-SDK\": [\"a.*\"]\n", route: dest),
              key: "product_groups.CUSTODY-SDK", message: "group name"),
        .init(testDescription: "product group repeated", yaml: yaml(groups: "product_groups:\n  G: [\"a.*\"]\n  G: [\"b.*\"]\n", route: dest),
              key: "", message: "appears more than once in one mapping"),
        .init(testDescription: "product groups not a mapping", yaml: yaml(groups: "product_groups: [G]\n", route: dest),
              key: "product_groups", message: "expected a mapping"),
    ]

    @Test(arguments: cases)
    func problemNamesItsKey(_ c: Problem) {
        let found = problems(c.yaml)
        #expect(found.contains { $0.key == c.key && $0.message.contains(c.message) }, "\(found)")
    }

    /// Only `vecu` events carry a type: a filter on another scheme's route would miss every event.
    @Test(arguments: ["exclude: [a.b]", "include: [a.b]", "patterns: [\"a.*\"]", "product_groups: [CUSTODY_SDK]"])
    func filterOnARouteWithoutEventTypesIsAProblem(_ filter: String) {
        let text = yaml(route: "destinations:\n  - name: a\n    upstream: {url: http://a:1/}\n  - name: b\n    filter: {\(filter)}\n    upstream: {url: http://b:1/}")
            .replacingOccurrences(of: "scheme: vecu", with: "scheme: github")
        let found = problems(text)
        #expect(found.contains { $0.key == "routes[0].destinations[1].filter" && $0.message.contains("only vecu events carry") }, "\(found)")
        #expect(found.count == 1, "\(found)")
    }

    @Test func destinationsWithoutFiltersLoadOnARouteWithoutEventTypes() throws {
        let text = yaml(route: "destinations:\n  - name: a\n    upstream: {url: http://a:1/}\n  - name: b\n    upstream: {url: http://b:1/}")
            .replacingOccurrences(of: "scheme: vecu", with: "scheme: github")
        let route = try ConfigurationLoader.load(yaml: text, environment: environment).get().routes[0]
        #expect(route.destinations.map(\.filter) == [.everything, .everything])
    }
}
