import Testing
@testable import HookgateCore

/// The PROXY protocol header parser (v1 text, v2 binary), with hostile input.

private func v1(_ text: String) -> [UInt8] { Array(text.utf8) }

private let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// A v2 header: command (0 LOCAL, 1 PROXY), family/transport byte, then `block` (addresses and TLVs).
private func v2(command: UInt8 = 1, family: UInt8 = 0x11, block: [UInt8], declaredLength: Int? = nil, version: UInt8 = 2) -> [UInt8] {
    let length = declaredLength ?? block.count
    return signature + [version << 4 | command, family, UInt8(length >> 8), UInt8(length & 0xFF)] + block
}

private let inet4Block: [UInt8] = [203, 0, 113, 7, 10, 0, 0, 1, 0xDB, 0xF0, 0x01, 0xBB]  // 203.0.113.7:56304 -> 10.0.0.1:443
private let inet6Block: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [0x01]
    + [UInt8](repeating: 0, count: 15) + [0x01] + [0x30, 0x39, 0x01, 0xBB]  // [2001:db8::1]:12345 -> [::1]:443
private let tlv: [UInt8] = [0x01, 0x00, 0x02, 0x68, 0x32]  // PP2_TYPE_ALPN "h2"

private struct HeaderCase: CustomTestStringConvertible, Sendable {
    let label: String
    let bytes: [UInt8]
    let expected: ProxyProtocolHeader.Parse
    var testDescription: String { label }
}

private func ok(_ label: String, _ bytes: [UInt8], _ address: String?, _ port: UInt16 = 0, length: Int? = nil) -> HeaderCase {
    HeaderCase(label: label, bytes: bytes,
               expected: .header(length: length ?? bytes.count, source: address.map { .init(address: $0, port: port) }))
}

private func isInvalid(_ parse: ProxyProtocolHeader.Parse) -> Bool {
    if case .invalid = parse { true } else { false }
}

private let validCases: [HeaderCase] = [
    ok("v1 TCP4", v1("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n"), "192.0.2.1", 56324),
    ok("v1 TCP6", v1("PROXY TCP6 2001:DB8::A 2001:db8::1 1 65535\r\n"), "2001:db8::a", 1),
    ok("v1 TCP6 mapped", v1("PROXY TCP6 ::ffff:192.0.2.9 ::1 0 80\r\n"), "::ffff:192.0.2.9", 0),
    ok("v1 TCP6 full form", v1("PROXY TCP6 1:2:3:4:5:6:7:8 ::1 8 80\r\n"), "1:2:3:4:5:6:7:8", 8),
    ok("v1 TCP6 zero run compressed once", v1("PROXY TCP6 1:0:0:2:0:0:0:3 ::1 8 80\r\n"), "1:0:0:2::3", 8),
    ok("v1 UNKNOWN", v1("PROXY UNKNOWN\r\n"), nil),
    ok("v1 UNKNOWN with addresses", v1("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n"), nil),
    ok("v1 followed by a request", v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n"), "1.2.3.4", 1,
       length: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".utf8.count),
    ok("v1 at exactly 107 bytes", v1("PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"), nil),
    ok("v2 PROXY INET", v2(block: inet4Block), "203.0.113.7", 56304),
    ok("v2 PROXY INET6", v2(family: 0x21, block: inet6Block), "2001:db8::1", 12345),
    ok("v2 PROXY INET with TLVs", v2(block: inet4Block + tlv + [0x04, 0x00, 0x00]), "203.0.113.7", 56304),
    ok("v2 LOCAL keeps the peer", v2(command: 0, family: 0x00, block: []), nil),
    ok("v2 LOCAL with an address block", v2(command: 0, block: inet4Block), nil),
    ok("v2 PROXY UNSPEC", v2(family: 0x00, block: [1, 2, 3]), nil),
    ok("v2 PROXY AF_UNIX", v2(family: 0x31, block: [UInt8](repeating: 0x2F, count: 216)), nil),
    ok("v2 followed by TLS bytes", v2(block: inet4Block) + [0x16, 0x03, 0x01], "203.0.113.7", 56304, length: 28),
    ok("v2 at the cap", v2(block: inet4Block + [0xEE, 0x01, 0xF9] + [UInt8](repeating: 7, count: 505)), "203.0.113.7", 56304),
]

private let invalidCases: [HeaderCase] = [
    HeaderCase(label: "plain HTTP", bytes: v1("GET / HTTP/1.1\r\n\r\n"), expected: .invalid("")),
    HeaderCase(label: "TLS ClientHello", bytes: [0x16, 0x03, 0x01, 0x00], expected: .invalid("")),
    HeaderCase(label: "lowercase proxy", bytes: v1("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 bare LF", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), expected: .invalid("")),
    HeaderCase(label: "v1 CR without LF", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), expected: .invalid("")),
    HeaderCase(label: "v1 NUL", bytes: v1("PROXY TCP4 1.2.3.4\u{0} 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 tab", bytes: v1("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 UTF-8", bytes: v1("PROXY TCP4 1.2.3.４ 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 108 bytes without CRLF", bytes: v1("PROXY UNKNOWN " + String(repeating: "x", count: 94)), expected: .invalid("")),
    HeaderCase(label: "v1 CRLF past 107 bytes", bytes: v1("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 TCP5", bytes: v1("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 tcp4 lowercase", bytes: v1("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 IPv6 in TCP4", bytes: v1("PROXY TCP4 ::1 ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 IPv4 in TCP6", bytes: v1("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 octet 256", bytes: v1("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 leading zero octet", bytes: v1("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 three octets", bytes: v1("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 hostname", bytes: v1("PROXY TCP4 evil.example 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 bad destination", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 two double colons", bytes: v1("PROXY TCP6 1::2::3 ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 nine groups", bytes: v1("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 five hex digits", bytes: v1("PROXY TCP6 12345::1 ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 zone id", bytes: v1("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 trailing colon", bytes: v1("PROXY TCP6 1:2:3:4:5:6:7: ::1 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 port 65536", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 negative port", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 leading zero port", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 port with plus", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 missing port", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 extra field", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 double space", bytes: v1("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 trailing space", bytes: v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 empty", bytes: v1("PROXY \r\n"), expected: .invalid("")),
    HeaderCase(label: "v1 no space", bytes: v1("PROXY\r\n"), expected: .invalid("")),
    HeaderCase(label: "v2 bad signature", bytes: [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x55, 0x0A, 0x21, 0x11, 0, 12] + inet4Block, expected: .invalid("")),
    HeaderCase(label: "v2 version 1", bytes: v2(block: inet4Block, version: 1), expected: .invalid("")),
    HeaderCase(label: "v2 version 3", bytes: v2(block: inet4Block, version: 3), expected: .invalid("")),
    HeaderCase(label: "v2 command 2", bytes: v2(command: 2, block: inet4Block), expected: .invalid("")),
    HeaderCase(label: "v2 family 4", bytes: v2(family: 0x41, block: inet4Block), expected: .invalid("")),
    HeaderCase(label: "v2 transport 3", bytes: v2(family: 0x13, block: inet4Block), expected: .invalid("")),
    HeaderCase(label: "v2 DGRAM", bytes: v2(family: 0x12, block: inet4Block), expected: .invalid("")),
    HeaderCase(label: "v2 INET block too short", bytes: v2(block: Array(inet4Block.prefix(11))), expected: .invalid("")),
    HeaderCase(label: "v2 INET6 block too short", bytes: v2(family: 0x21, block: inet4Block), expected: .invalid("")),
    HeaderCase(label: "v2 AF_UNIX block too short", bytes: v2(family: 0x31, block: [UInt8](repeating: 0, count: 215)), expected: .invalid("")),
    HeaderCase(label: "v2 TLV header cut", bytes: v2(block: inet4Block + [0x01, 0x00]), expected: .invalid("")),
    HeaderCase(label: "v2 TLV value overruns", bytes: v2(block: inet4Block + [0x01, 0x00, 0x05, 0x68, 0x32]), expected: .invalid("")),
    HeaderCase(label: "v2 length over the cap", bytes: v2(block: inet4Block, declaredLength: 521), expected: .invalid("")),
    HeaderCase(label: "v2 length 0xFFFF", bytes: v2(block: [], declaredLength: 0xFFFF), expected: .invalid("")),
]

/// Every proper prefix of a valid header asks for more: a header split across reads is awaited.
private let truncatedCases: [HeaderCase] = validCases.flatMap { c -> [HeaderCase] in
    guard case .header(let length, _) = c.expected else { return [] }
    return (0..<length).map { HeaderCase(label: "\(c.label) cut at \($0)", bytes: Array(c.bytes.prefix($0)), expected: .needMore) }
}

@Suite("PROXY protocol header")
struct ProxyProtocolHeaderTests {
    @Test(arguments: validCases)
    fileprivate func validHeadersGiveTheirSource(_ c: HeaderCase) {
        #expect(ProxyProtocolHeader.parse(c.bytes) == c.expected)
    }

    @Test(arguments: invalidCases)
    fileprivate func hostileHeadersAreRejected(_ c: HeaderCase) {
        let parsed = ProxyProtocolHeader.parse(c.bytes)
        #expect(isInvalid(parsed), "got \(parsed)")
    }

    @Test(arguments: truncatedCases)
    fileprivate func truncatedHeadersWaitForMore(_ c: HeaderCase) {
        #expect(ProxyProtocolHeader.parse(c.bytes) == .needMore)
    }

    @Test func aWrongByteInThePrefixIsRejectedAtOnce() {
        #expect(isInvalid(ProxyProtocolHeader.parse(v1("PROXZ"))))
        #expect(isInvalid(ProxyProtocolHeader.parse(Array(signature.prefix(6)) + [0x00])))
        #expect(isInvalid(ProxyProtocolHeader.parse(signature + [0x11])))  // version 1 nibble
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("0:0:0:0:0:ffff:10.1.2.3", "::ffff:10.1.2.3"), ("::10.1.2.3", "::10.1.2.3"), ("fe80::1:0", "fe80::1:0"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"), ("ABCD:EF01::", "abcd:ef01::"),
    ])
    func ipv6IsWrittenAsInetNtopWritesIt(_ text: String, _ expected: String) throws {
        let bytes = try #require(IPAddressText.parseIPv6(Array(text.utf8)))
        #expect(IPAddressText.format(bytes) == expected)
    }

    @Test(arguments: [":", ":::", "1:::2", ":1::", "1::2:", "::g", "1.2.3.4", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3"])
    func malformedIPv6IsRejected(_ text: String) {
        #expect(IPAddressText.parseIPv6(Array(text.utf8)) == nil)
    }
}
