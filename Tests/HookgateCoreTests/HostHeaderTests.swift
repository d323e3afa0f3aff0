import Testing
@testable import HookgateCore

/// The Host header: one, valid (RFC 9112 §3.2, RFC 3986), in HTTP/1.1 and HTTP/1.0.
@Suite("Host header")
struct HostHeaderTests {
    @Test(arguments: [
        "example.com", "EXAMPLE.com", "gw", "127.0.0.1", "127.0.0.1:8080", "example.com:1", "example.com:65535",
        "[::1]", "[::1]:8080", "[2001:db8::7]:443", "[::ffff:10.0.0.1]", "under_score.example", "xn--caf-dma.example",
        "a-b.example.", "localhost:080",
    ])
    func valid(_ value: String) {
        #expect(HostHeader.isValid(value.bytes))
    }

    @Test(arguments: [
        "", "evil.example/../x?y", "a b", "evil..example", ".example", "a..", "example.com..", "host:port:port",
        "host:1:2", "host:", "host:x1", "host:-1", "host:65536", "host:123456", "a@b", "user:pw@host", "caf\u{E9}.example",
        "\u{212A}.example", "[::1", "[::1]x", "[::1]:", "[fe80::1%25eth0]", "[v1.x]", "[1.2.3.4]", "::1", "a%2eb",
        "host\\x", "a,b", "*", String(repeating: "a", count: 64) + ".example", String(repeating: "a.", count: 128) + "a",
    ])
    func invalid(_ value: String) {
        #expect(!HostHeader.isValid(value.bytes))
    }

    private static func parse(_ head: String) -> Result<HTTPRequestHead, HTTPRequestHead.Failure> {
        Array(head.utf8).withUnsafeBytes { HTTPRequestHead.parse($0) }
    }

    @Test(arguments: ["HTTP/1.1", "HTTP/1.0"])
    func twoHostLinesAreRefused(_ version: String) {
        #expect(Self.parse("POST / \(version)\r\nHost: a\r\nHost: b\r\n\r\n").failureKind == .malformed)
        #expect(Self.parse("POST / \(version)\r\nHost: a\r\nhost: a\r\n\r\n").failureKind == .malformed)
    }

    @Test(arguments: ["HTTP/1.1", "HTTP/1.0"])
    func invalidHostIsRefused(_ version: String) {
        for value in ["evil.example/../x?y", "a b", "evil..example", "a@b", ""] {
            #expect(Self.parse("POST / \(version)\r\nHost: \(value)\r\n\r\n").failureKind == .malformed, "\(value)")
        }
    }

    @Test func hostRequiredInHTTP11Only() throws {
        #expect(Self.parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").failureKind == .malformed)
        #expect(try Self.parse("POST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n").get().version == .http10)
        #expect(try Self.parse("POST / HTTP/1.1\r\nHost: gw.example:8443\r\n\r\n").get().version == .http11)
    }

    @Test func hostBytesNotUTF8AreRefused() {
        let head = Array("POST / HTTP/1.1\r\nHost: a".utf8) + [0xC3, 0xA9] + Array("\r\n\r\n".utf8)
        #expect(head.withUnsafeBytes { HTTPRequestHead.parse($0) }.failureKind == .malformed)
    }
}
