import Testing
@testable import HookgateCore

/// Addresses, CIDRs and the client behind trusted proxies (`trusted_proxies`).
@Suite("Client address")
struct ClientAddressTests {
    @Test(arguments: [
        ("127.0.0.1", [127, 0, 0, 1]), ("0.0.0.0", [0, 0, 0, 0]), ("255.255.255.255", [255, 255, 255, 255]),
        ("::ffff:10.1.2.3", [10, 1, 2, 3]), ("::FFFF:10.1.2.3", [10, 1, 2, 3]), ("::ffff:a01:203", [10, 1, 2, 3]),
        ("::1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), ("::", [UInt8](repeating: 0, count: 16)),
        ("2001:db8::7", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]),
        ("1:2:3:4:5:6:7:8", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]),
        ("1::", [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("64:ff9b::1.2.3.4", [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
    ] as [(String, [UInt8])])
    func addresses(_ text: String, _ bytes: [UInt8]) {
        #expect(IPAddress(parsing: text)?.bytes == bytes)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4:80", "[::1]", "::1%eth0",
        "1:2:3:4:5:6:7:8:9", "1::2::3", ":::", ":1::", "1:", "12345::", "g::1", "1.2.3.4::", "::1.2.3", "unknown",
        "1.2.3.\u{661}", "\u{FF11}.2.3.4", "1:2:3:4:5:6:7:8::", "::ffff:1.2.3.4.5", "1.2.3.-4", "0x1.2.3.4",
    ])
    func notAddresses(_ text: String) {
        #expect(IPAddress(parsing: text) == nil)
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false), ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false), ("0.0.0.0/0", "203.0.113.9", true), ("0.0.0.0/0", "::1", false),
        ("192.168.1.7/24", "192.168.1.200", true), ("192.168.1.0/25", "192.168.1.200", false),
        ("fd00::/8", "fd12:3456::1", true), ("fd00::/8", "fe80::1", false), ("::1", "::1", true), ("::/0", "2001:db8::1", true),
        ("::/0", "10.0.0.1", false), ("::ffff:10.0.0.0/104", "10.9.9.9", true), ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
        ("10.0.0.0/8", "::ffff:10.9.9.9", true), ("2001:db8::/127", "2001:db8::1", true), ("2001:db8::/128", "2001:db8::1", false),
    ] as [(String, String, Bool)])
    func networks(_ cidr: String, _ address: String, _ inside: Bool) throws {
        let network = try #require(IPNetwork(parsing: cidr))
        #expect(network.contains(try #require(IPAddress(parsing: address))) == inside)
    }

    @Test(arguments: ["", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8/8", "::/129", "x/8", "10.0.0.0/ 8",
                      "10.0.0.0/08a", "::ffff:10.0.0.0/95", "localhost", "10.0.0.0/\u{FF18}"])
    func notNetworks(_ text: String) {
        #expect(IPNetwork(parsing: text) == nil)
    }

    private static let proxies = ["127.0.0.0/8", "10.0.0.0/8", "fd00::/8"].map { IPNetwork(parsing: $0)! }

    private static func resolve(_ peer: String, _ forwardedFor: [String], trusted: [IPNetwork] = proxies) -> (String, Bool) {
        let r = ClientAddress.resolve(peer: peer, headers: HeaderList(forwardedFor.map { ("X-Forwarded-For", $0) }), trusted: trusted)
        return (r.client, r.peerTrusted)
    }

    @Test(arguments: [
        ("untrusted peer: header ignored", "203.0.113.5", ["198.51.100.1"], "203.0.113.5", false),
        ("trusted peer, no header", "127.0.0.1", [], "127.0.0.1", true),
        ("one hop", "127.0.0.1", ["198.51.100.1"], "198.51.100.1", true),
        ("rightmost untrusted wins", "127.0.0.1", ["1.1.1.1, 2.2.2.2, 10.0.0.3"], "2.2.2.2", true),
        ("many hops, several fields", "10.0.0.1", ["6.6.6.6, 1.1.1.1", "10.1.1.1", " 10.2.2.2 ,10.3.3.3"], "1.1.1.1", true),
        ("all trusted: leftmost", "127.0.0.1", ["10.0.0.9, 127.0.0.2"], "10.0.0.9", true),
        ("garbage stops the walk", "127.0.0.1", ["6.6.6.6, evil, 10.0.0.2"], "10.0.0.2", true),
        ("garbage at the right end", "127.0.0.1", ["6.6.6.6, not-an-ip"], "127.0.0.1", true),
        ("empty element", "127.0.0.1", ["6.6.6.6,,10.0.0.2"], "10.0.0.2", true),
        ("port is garbage", "127.0.0.1", ["6.6.6.6:1234"], "127.0.0.1", true),
        ("bracketed IPv6 is garbage", "127.0.0.1", ["[2001:db8::1]"], "127.0.0.1", true),
        ("IPv6 client via IPv6 proxy", "fd00::1", ["2001:db8::1"], "2001:db8::1", true),
        ("IPv4-mapped peer", "::ffff:127.0.0.1", ["198.51.100.7"], "198.51.100.7", true),
        ("mapped hop is trusted", "127.0.0.1", ["198.51.100.7, ::ffff:10.0.0.5"], "198.51.100.7", true),
        ("tabs and spaces", "127.0.0.1", ["\t198.51.100.7 \t"], "198.51.100.7", true),
        ("non-ASCII digits", "127.0.0.1", ["1.1.1.\u{661}"], "127.0.0.1", true),
        ("unknown peer", "unknown", ["1.1.1.1"], "unknown", false),
    ] as [(String, String, [String], String, Bool)])
    func resolve(_ label: String, _ peer: String, _ forwardedFor: [String], _ client: String, _ trusted: Bool) {
        let (got, peerTrusted) = Self.resolve(peer, forwardedFor)
        #expect(got == client, "\(label)")
        #expect(peerTrusted == trusted, "\(label)")
    }

    @Test func noTrustedProxiesMeansThePeer() {
        let (client, trusted) = Self.resolve("127.0.0.1", ["198.51.100.1"], trusted: [])
        #expect(client == "127.0.0.1" && !trusted)
    }

    @Test func manyHopsAreBounded() {
        let chain = (0..<500).map { "10.0.\($0 / 256).\($0 % 256)" }.joined(separator: ", ")
        #expect(Self.resolve("127.0.0.1", ["203.0.113.1, " + chain]).0 == "203.0.113.1")
    }
}
