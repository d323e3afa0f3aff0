import Testing
@testable import HookgateCore

@Suite("Header policy")
struct HeaderPolicyTests {
    @Test(arguments: [
        "Connection", "connection", "Keep-Alive", "TE", "te", "Trailer", "Transfer-Encoding", "TRANSFER-ENCODING", "Upgrade",
        "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Anything-Else", "proxy-x",
        "Content-Length", "Host",
        "X-Hookgate-Verified", "x-hookgate-event-id", "X-HOOKGATE-DUPLICATE", "X-Hookgate-", "x-HookGate-Anything",
        "X-Forwarded-Proto", "X-Forwarded-Host",
    ])
    func droppedWhenForwarding(_ name: String) {
        #expect(HeaderPolicy.isDroppedWhenForwarding(name))
    }

    @Test(arguments: [
        "X-VECU-Signature", "X-VECU-Timestamp", "X-VECU-Event-ID", "x-vecu-event-type", "X-VECU-Retry-Count",
        "Content-Type", "User-Agent", "Accept", "Authorization", "X-Hookgate", "X-Hookgatex", "Hookgate-X",
        "Trailers", "Proxy", "X-Proxy-Id", "Hosts", "X-Forwarded-For", "X-Request-Id", "Connection-Id",
    ])
    func keptWhenForwarding(_ name: String) {
        #expect(!HeaderPolicy.isDroppedWhenForwarding(name))
    }

    @Test func namesListedInConnectionAreDropped() {
        let listed = HeaderPolicy.connectionListed("keep-alive, X-Secret-Hop")
        #expect(HeaderPolicy.isDroppedWhenForwarding("X-Secret-Hop", connectionListed: listed))
        #expect(HeaderPolicy.isDroppedWhenForwarding("x-secret-hop", connectionListed: listed))
        #expect(!HeaderPolicy.isDroppedWhenForwarding("X-Other", connectionListed: listed))
    }

    @Test(arguments: [
        ("close", ["close"]),
        ("Keep-Alive, X-Foo", ["keep-alive", "x-foo"]),
        (" X-Foo ,\tX-Bar\t,, ,x-foo", ["x-foo", "x-bar"]),
        ("", []),
        (" , ", []),
    ] as [(String, Set<String>)])
    func connectionListParsing(_ value: String, _ expected: Set<String>) {
        #expect(HeaderPolicy.connectionListed(value) == expected)
    }

    @Test(arguments: [
        ("X-Source", true), ("x", true), ("!#$%&'*+-.^_`|~09azAZ", true),
        ("", false), ("Bad Header", false), ("X:Y", false), ("X(Y)", false), ("X/Y", false), ("X\"Y", false),
        ("X;Y", false), ("X\tY", false), ("Ünïcode", false), ("X-Ä", false), ("X\r\nY", false), ("{x}", false),
    ] as [(String, Bool)])
    func validNames(_ name: String, _ valid: Bool) {
        #expect(HeaderPolicy.isValidName(name) == valid)
    }

    @Test(arguments: [
        ("hookgate", true), ("", true), ("a b\tc", true), ("é😀", true), ("~!@#", true),
        ("a\rb", false), ("a\nb", false), ("a\u{0}b", false), ("a\u{1}", false), ("\u{1F}", false), ("a\u{7F}", false),
    ] as [(String, Bool)])
    func validValues(_ value: String, _ valid: Bool) {
        #expect(HeaderPolicy.isValidValue(value) == valid)
    }

    @Test(arguments: [
        ("X-Source", false), ("Authorization", false), ("X-Team", false),
        ("X-Hookgate-Foo", true), ("Host", true), ("Connection", true), ("Proxy-X", true), ("Content-Length", true),
        ("X-Forwarded-For", true), ("x-forwarded-proto", true), ("X-Forwarded-Host", true), ("X-Request-Id", true),
        ("X-VECU-Signature", true), ("x-vecu-anything", true),
    ] as [(String, Bool)])
    func reservedForAddHeaders(_ name: String, _ reserved: Bool) {
        #expect(HeaderPolicy.isReservedForAddHeaders(name) == reserved)
    }

    @Test(arguments: [
        ("req-123", true), ("01JA4KXYZ", true), ("a.b_c-d:e", true), (String(repeating: "a", count: 128), true),
        ("", false), (String(repeating: "a", count: 129), false), ("a b", false), ("a\r\nb", false), ("ä", false),
        ("a/b", false), ("a\"b", false),
    ] as [(String, Bool)])
    func acceptableRequestIDs(_ value: String, _ acceptable: Bool) {
        #expect(HeaderPolicy.isAcceptableRequestID(value) == acceptable)
    }

    @Test func headerListLooksUpCaseInsensitively() {
        let headers = HeaderList([("X-VECU-Timestamp", "1"), ("x-vecu-signature", "a"), ("X-VECU-SIGNATURE", "b")])
        #expect(headers.value(named: "x-vecu-timestamp") == .one("1"))
        #expect(headers.value(named: "X-VECU-TIMESTAMP") == .one("1"))
        #expect(headers.value(named: "X-VECU-Signature") == .repeated)
        #expect(headers.value(named: "X-VECU-Event-ID") == .missing)
        #expect(HeaderList([("A", "")]).value(named: "a") == .one(""))
    }
}
