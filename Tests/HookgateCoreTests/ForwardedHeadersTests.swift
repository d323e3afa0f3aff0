import Testing
@testable import HookgateCore

/// The header set sent upstream, built from a realistic inbound request.
@Suite("Forwarded headers")
struct ForwardedHeadersTests {
    static let event = AdmittedEvent(id: "evt-1", type: "custody.vehicle.released", source: "vecu.custody-service",
                                     verifiedBy: "hmac-sha256")
    static var context: ForwardedHeaders.Context {
        ForwardedHeaders.Context(clientAddress: "10.0.0.5", scheme: "http", requestID: "req-gateway-1", event: event)
    }

    static let inbound: [(name: String, value: String)] = [
        ("Host", "gateway.example.com"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("Proxy-Authorization", "Basic abc"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Secret-Hop", "1"),
        ("Content-Length", "123"),
        ("Content-Type", "application/json"),
        ("X-VECU-Event-ID", "evt-1"),
        ("X-VECU-Event-Type", "custody.vehicle.released"),
        ("X-VECU-Timestamp", "1736951400"),
        ("x-vecu-retry-count", "2"),
        ("X-VECU-Signature", "sha256=abc"),
        ("X-Hookgate-Verified", "forged"),
        ("x-hookgate-event-id", "forged"),
        ("X-HOOKGATE-Duplicate", "true"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Request-Id", "client-chosen"),
        ("User-Agent", "VECU-Relay/1.0"),
    ]

    static let addHeaders: [(name: String, value: String)] = [("X-Source", "hookgate"), ("X-Team", "custody")]

    static func built(
        inbound: [(name: String, value: String)] = inbound,
        context: ForwardedHeaders.Context = context,
        addHeaders: [(name: String, value: String)] = addHeaders
    ) -> [(name: String, value: String)] {
        ForwardedHeaders.build(inbound: HeaderList(inbound), context: context, addHeaders: addHeaders)
    }

    static func values(_ headers: [(name: String, value: String)], _ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    @Test(arguments: [
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Connection",
        "X-Secret-Hop", "Content-Length", "Host",
    ])
    func hopByHopHeadersAreRemoved(_ name: String) {
        #expect(Self.values(Self.built(), name).isEmpty)
    }

    @Test(arguments: ["keep-alive", "KEEP-ALIVE", "Keep-Alive"])
    func eachHopByHopHeaderAloneIsRemoved(_ name: String) {
        let out = Self.built(inbound: [(name, "timeout=5"), ("Content-Type", "application/json")], addHeaders: [])
        #expect(Self.values(out, "keep-alive").isEmpty)
        #expect(Self.values(out, "content-type") == ["application/json"])
    }

    @Test func headersNamedInConnectionAreRemovedWhereverTheyAppear() {
        let out = Self.built(inbound: [
            ("X-Early", "1"), ("X-Kept", "k"), ("Connection", "X-Early"), ("connection", "x-late, close"), ("X-Late", "2"),
        ], addHeaders: [])
        #expect(Self.values(out, "x-early").isEmpty)
        #expect(Self.values(out, "x-late").isEmpty)
        #expect(Self.values(out, "x-kept") == ["k"])
    }

    @Test func gatewayHeadersCarryOnlyTheGatewaysValues() {
        let out = Self.built()
        #expect(Self.values(out, "X-Hookgate-Verified") == ["hmac-sha256"])
        #expect(Self.values(out, "X-Hookgate-Event-Id") == ["evt-1"])
        #expect(Self.values(out, "X-Hookgate-Event-Type") == ["custody.vehicle.released"])
        #expect(Self.values(out, "X-Hookgate-Duplicate").isEmpty)
        #expect(!out.contains { $0.value == "forged" })
        #expect(Self.values(out, "X-Forwarded-Proto") == ["http"])
        #expect(Self.values(out, "X-Forwarded-Host") == ["gateway.example.com"])
        #expect(Self.values(out, "X-Request-Id") == ["req-gateway-1"])
    }

    @Test func vecuHeadersAndOrdinaryHeadersAreKeptInOrder() {
        let out = Self.built()
        let kept = out.prefix { !$0.name.hasPrefix("X-Forwarded-") }
        #expect(kept.map(\.name) == [
            "Content-Type", "X-VECU-Event-ID", "X-VECU-Event-Type", "X-VECU-Timestamp", "x-vecu-retry-count", "X-VECU-Signature",
            "User-Agent",
        ])
        #expect(Self.values(out, "X-VECU-Signature") == ["sha256=abc"])
        #expect(Self.values(out, "X-VECU-Retry-Count") == ["2"])
    }

    @Test(arguments: [
        ([], "10.0.0.5"),
        (["203.0.113.7"], "203.0.113.7, 10.0.0.5"),
        (["203.0.113.7, 198.51.100.2"], "203.0.113.7, 198.51.100.2, 10.0.0.5"),
        (["203.0.113.7", "198.51.100.2"], "203.0.113.7, 198.51.100.2, 10.0.0.5"),
    ] as [([String], String)])
    func forwardedForIsAppendedTo(_ inboundValues: [String], _ expected: String) {
        let inbound = inboundValues.map { (name: "x-forwarded-for", value: $0) } + [(name: "Accept", value: "*/*")]
        let out = Self.built(inbound: inbound, addHeaders: [])
        #expect(Self.values(out, "X-Forwarded-For") == [expected])
    }

    @Test func forwardedHostComesFromTheFirstHost() {
        #expect(Self.values(Self.built(inbound: [("host", "a.example:8080"), ("Host", "b.example")]), "X-Forwarded-Host") == ["a.example:8080"])
        #expect(Self.values(Self.built(inbound: [("Accept", "*/*")]), "X-Forwarded-Host").isEmpty, "no Host, no X-Forwarded-Host")
    }

    @Test func addedHeadersComeLastInOrder() {
        let out = Self.built()
        #expect(out.suffix(2).map(\.name) == ["X-Source", "X-Team"])
        #expect(out.suffix(2).map(\.value) == ["hookgate", "custody"])
        let gatewayNames = ["X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id",
                            "X-Hookgate-Verified", "X-Hookgate-Event-Id", "X-Hookgate-Event-Type"]
        #expect(out.dropLast(2).suffix(gatewayNames.count).map(\.name) == gatewayNames)
    }

    @Test func noInboundHeadersStillGetsTheGatewaysHeaders() {
        let out = Self.built(inbound: [], addHeaders: [])
        #expect(out.map(\.name) == ["X-Forwarded-For", "X-Forwarded-Proto", "X-Request-Id",
                                    "X-Hookgate-Verified", "X-Hookgate-Event-Id", "X-Hookgate-Event-Type"])
    }

    @Test(arguments: [
        ("evt-1", "evt-1"),
        ("évt 😀\tx", "évt 😀\tx"),
        ("evt\r\nX-Injected: 1", "evt??X-Injected: 1"),
        ("a\u{0}b", "a?b"),
        ("a\u{7F}b", "a?b"),
        ("\u{1B}[31m", "?[31m"),
    ] as [(String, String)])
    func headerSafe(_ raw: String, _ expected: String) {
        #expect(ForwardedHeaders.headerSafe(raw) == expected)
        #expect(HeaderPolicy.isValidValue(ForwardedHeaders.headerSafe(raw)))
    }

    @Test func unsafeEnvelopeValuesAreReplacedInTheHeaders() {
        let context = ForwardedHeaders.Context(
            clientAddress: "10.0.0.5", scheme: "http", requestID: "r",
            event: AdmittedEvent(id: "evt\r\nX-Evil: 1", type: "t\u{0}ype", source: "s", verifiedBy: "hmac-sha256"))
        let out = Self.built(inbound: [], context: context, addHeaders: [])
        #expect(Self.values(out, "X-Hookgate-Event-Id") == ["evt??X-Evil: 1"])
        #expect(Self.values(out, "X-Hookgate-Event-Type") == ["t?ype"])
        #expect(out.allSatisfy { HeaderPolicy.isValidName($0.name) && HeaderPolicy.isValidValue($0.value) })
    }
}
