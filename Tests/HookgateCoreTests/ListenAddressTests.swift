import Testing
@testable import HookgateCore

@Suite("Listen address")
struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1", UInt16(8080)),
        ("0.0.0.0:80", "0.0.0.0", 80),
        ("localhost:8080", "localhost", 8080),
        ("[::1]:8080", "::1", 8080),
        ("[::]:9000", "::", 9000),
        ("[fe80::1%eth0]:1", "fe80::1%eth0", 1),
        ("host:65535", "host", 65535),
        ("host:0", "host", 0),
    ] as [(String, String, UInt16)])
    func parses(_ text: String, _ host: String, _ port: UInt16) {
        #expect(ListenAddress(parsing: text) == ListenAddress(host: host, port: port))
    }

    @Test(arguments: [
        "", "8080", "localhost", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:http",
        "127.0.0.1:+80", "127.0.0.1:-1", "127.0.0.1: 80", "127.0.0.1:123456", "::1:8080", "[::1]8080", "[::1]", "[::1:8080",
        "[]:8080", "host:٨٠",
    ])
    func rejects(_ text: String) {
        #expect(ListenAddress(parsing: text) == nil)
    }

    @Test(arguments: ["127.0.0.1:8080", "[::1]:8080", "localhost:1"])
    func descriptionRoundTrips(_ text: String) {
        #expect(ListenAddress(parsing: text)?.description == text)
    }
}

@Suite("Upstream URL")
struct UpstreamURLTests {
    /// (text, scheme, host, port, target, authority).
    @Test(arguments: [
        ("http://127.0.0.1:3000/webhooks/vecu", UpstreamURL.Scheme.http, "127.0.0.1", UInt16(3000), "/webhooks/vecu", "127.0.0.1:3000"),
        ("http://app.internal/webhooks", .http, "app.internal", 80, "/webhooks", "app.internal"),
        ("http://app.internal", .http, "app.internal", 80, "/", "app.internal"),
        ("http://app.internal:80/", .http, "app.internal", 80, "/", "app.internal"),
        ("http://app.internal?x=1", .http, "app.internal", 80, "/?x=1", "app.internal"),
        ("http://app.internal:8080/a/b?c=d&e", .http, "app.internal", 8080, "/a/b?c=d&e", "app.internal:8080"),
        ("http://[::1]:8080/x", .http, "::1", 8080, "/x", "[::1]:8080"),
        ("http://[::1]/x", .http, "::1", 80, "/x", "[::1]"),
        ("https://app.example.com/hook", .https, "app.example.com", 443, "/hook", "app.example.com"),
        ("https://app.example.com:8443", .https, "app.example.com", 8443, "/", "app.example.com:8443"),
    ] as [(String, UpstreamURL.Scheme, String, UInt16, String, String)])
    func parses(_ text: String, _ scheme: UpstreamURL.Scheme, _ host: String, _ port: UInt16, _ target: String, _ authority: String) throws {
        let url = try #require(UpstreamURL(parsing: text))
        #expect(url.scheme == scheme)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.target == target)
        #expect(url.authority == authority)
        #expect(UpstreamURL(parsing: url.description) == url, "description parses back")
    }

    @Test(arguments: [
        "", "127.0.0.1:3000/x", "ftp://host/x", "HTTP://host/x", "http:/host/x", "http://", "http:///x", "http://?x",
        "http://user@host/x", "http://user:pass@host/x", "http://host/x#frag", "http://host/a b", "http://host/a\nb",
        "http://host:0/x", "http://host:65536/x", "http://host:abc/x", "http://:80/x", "http://[::1/x", "http://::1/x", "http://[]/x",
    ])
    func rejects(_ text: String) {
        #expect(UpstreamURL(parsing: text) == nil)
    }
}
