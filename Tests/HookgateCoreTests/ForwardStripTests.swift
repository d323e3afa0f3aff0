import Testing
@testable import HookgateCore

/// Inbound headers that must not reach the upstream although the hop-by-hop and gateway rules
/// would let them through, and what a trusted proxy may keep.
@Suite("Forward strip rules")
struct ForwardStripTests {
    static let event = AdmittedEvent(id: "evt-1", type: "custody.vehicle.released", source: "vecu.custody-service",
                                     verifiedBy: "hmac-sha256")

    static func built(_ inbound: [(String, String)], trusted: Bool = false) -> [(name: String, value: String)] {
        let context = ForwardedHeaders.Context(clientAddress: "127.0.0.1", scheme: "http", requestID: "r-1", event: event,
                                               peerTrusted: trusted)
        return ForwardedHeaders.build(inbound: HeaderList([("Host", "gw.example")] + inbound), context: context, addHeaders: [])
    }

    static func values(_ headers: [(name: String, value: String)], _ name: String) -> [String] {
        headers.filter { HeaderList.sameName($0.name, name) }.map(\.value)
    }

    @Test(arguments: [
        "ce-id", "ce-type", "CE-ID", "Ce-Source", "ce-specversion", "ce-", "cE-anything",
        "X_Forwarded_Host", "X_Hookgate_Verified", "X_VECU_Signature", "x_forwarded_for", "_", "a_b",
        "Expect", "EXPECT", "X-Real-IP", "x-real-ip", "Forwarded", "FORWARDED",
    ])
    func droppedFromUntrustedPeer(_ name: String) {
        let headers = Self.built([(name, "attacker"), ("X-Kept", "1")])
        #expect(Self.values(headers, name).isEmpty)
        #expect(Self.values(headers, "X-Kept") == ["1"])
        #expect(!headers.contains { $0.value == "attacker" })
    }

    /// Names that merely resemble the dropped ones are ordinary headers.
    @Test(arguments: ["ce", "cex-id", "x-ce-id", "Expected", "X-Real-IPs", "Forwarded-By", "c\u{212A}"])
    func similarNamesPass(_ name: String) {
        #expect(Self.values(Self.built([(name, "v")]), name) == ["v"])
    }

    /// hookgate reads no underscore spelling of the headers it uses.
    @Test(arguments: ["X_VECU_Signature", "X_VECU_Timestamp", "X_VECU_Event_ID", "X_Request_Id"])
    func underscoreSpellingIsNotTheHeader(_ name: String) {
        let dashed = name.replacingUnderscores()
        #expect(HeaderList([(name, "v")]).value(named: dashed) == .missing)
    }

    @Test func untrustedPeerForwardingHeadersAreReplaced() {
        let headers = Self.built([("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-For", "6.6.6.6")])
        #expect(Self.values(headers, "X-Forwarded-Proto") == ["http"])
        #expect(Self.values(headers, "X-Forwarded-Host") == ["gw.example"])
        #expect(Self.values(headers, "X-Forwarded-For") == ["6.6.6.6, 127.0.0.1"])
    }

    @Test func trustedPeerForwardingHeadersAreKept() {
        let headers = Self.built([("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "public.example"),
                                  ("X-Forwarded-For", "198.51.100.7"), ("X-Real-IP", "198.51.100.7"),
                                  ("Forwarded", "for=198.51.100.7;proto=https")], trusted: true)
        #expect(Self.values(headers, "X-Forwarded-Proto") == ["https"])
        #expect(Self.values(headers, "X-Forwarded-Host") == ["public.example"])
        #expect(Self.values(headers, "X-Forwarded-For") == ["198.51.100.7, 127.0.0.1"])
        #expect(Self.values(headers, "X-Real-IP") == ["198.51.100.7"])
        #expect(Self.values(headers, "Forwarded") == ["for=198.51.100.7;proto=https"])
    }

    /// A trusted proxy that sent no X-Forwarded-Proto/Host gets hookgate's own.
    @Test func trustedPeerWithoutForwardingHeaders() {
        let headers = Self.built([], trusted: true)
        #expect(Self.values(headers, "X-Forwarded-Proto") == ["http"])
        #expect(Self.values(headers, "X-Forwarded-Host") == ["gw.example"])
    }

    /// Even a trusted proxy cannot send ce-*, underscore names or Expect upstream.
    @Test(arguments: ["ce-id", "X_Forwarded_Host", "Expect"])
    func trustedPeerStillStripped(_ name: String) {
        #expect(Self.values(Self.built([(name, "v")], trusted: true), name).isEmpty)
    }
}

private extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? "-" : $0 }) }
}
