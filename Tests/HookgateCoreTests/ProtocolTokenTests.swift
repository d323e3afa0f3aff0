import Testing
@testable import HookgateCore

/// Protocol tokens (Transfer-Encoding, Expect, Connection, Content-Length, the upstream's
/// answer) compare as ASCII bytes: Unicode letters that case-fold to ASCII ones are not them.
@Suite("Protocol tokens as bytes")
struct ProtocolTokenTests {
    private static func request(_ fields: [String], version: String = "HTTP/1.1") -> Result<HTTPRequestHead, HTTPRequestHead.Failure> {
        Array(("POST /webhooks/vecu \(version)\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n").utf8)
            .withUnsafeBytes { HTTPRequestHead.parse($0) }
    }

    private static func answer(_ fields: [String], status: String = "HTTP/1.1 200 OK") -> Result<HTTPResponseHead, Rejection> {
        Array((status + "\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n").utf8).withUnsafeBytes { HTTPResponseHead.parse($0) }
    }

    /// Look-alikes: KELVIN SIGN (folds to k), LATIN SMALL LETTER LONG S (folds to s), LATIN
    /// CAPITAL LETTER I WITH DOT ABOVE (lower-cases to i + combining dot), fullwidth letters.
    @Test(arguments: ["chun\u{212A}ed", "CHUN\u{212A}ED", "chunked\u{17F}", "\u{FF43}hunked", "chunked\u{130}", "ch\u{130}nked"])
    func transferEncodingLookAlikeIsNotChunked(_ value: String) throws {
        let result = Self.request(["Host: a", "Transfer-Encoding: \(value)"])
        #expect(result.failureKind == .unsupportedTransferEncoding)
        let reply = Self.answer(["Transfer-Encoding: \(value)"])
        #expect(throws: Rejection.self) { try reply.get() }
    }

    @Test(arguments: ["chunked", "CHUNKED", "Chunked", "cHuNkEd"])
    func chunkedInAnyASCIICase(_ value: String) throws {
        #expect(try Self.request(["Host: a", "Transfer-Encoding: \(value)"]).get().framing == .chunked)
        #expect(try Self.answer(["Transfer-Encoding: \(value)"]).get().framing == .chunked)
    }

    @Test(arguments: ["100-\u{212A}ontinue", "100-continue\u{17F}", "100-\u{FF43}ontinue", "100-cont\u{130}nue"])
    func expectLookAlikeIsRefused(_ value: String) {
        #expect(Self.request(["Host: a", "Expect: \(value)", "Content-Length: 0"]).failureKind == .expectationFailed)
    }

    @Test(arguments: ["100-continue", "100-CONTINUE", "100-Continue"])
    func expectContinueInAnyASCIICase(_ value: String) throws {
        #expect(try Self.request(["Host: a", "Expect: \(value)", "Content-Length: 0"]).get().expectsContinue)
    }

    /// `cloſe` and `keep-aliveſ` are neither close nor keep-alive.
    @Test(arguments: [
        ("HTTP/1.1", "clo\u{17F}e", true), ("HTTP/1.1", "CLOSE", false), ("HTTP/1.1", "\u{FF43}lose", true),
        ("HTTP/1.0", "keep-alive\u{17F}", false), ("HTTP/1.0", "\u{212A}eep-alive", false), ("HTTP/1.0", "Keep-Alive", true),
    ] as [(String, String, Bool)])
    func connectionTokens(_ version: String, _ value: String, _ keepAlive: Bool) throws {
        #expect(try Self.request(["Host: a", "Connection: \(value)"], version: version).get().keepAlive == keepAlive)
    }

    @Test(arguments: [("clo\u{17F}e", true), ("close", false), ("\u{212A}eep-alive", true)] as [(String, Bool)])
    func upstreamConnectionTokens(_ value: String, _ keepAlive: Bool) throws {
        #expect(try Self.answer(["Connection: \(value)", "Content-Length: 0"]).get().keepAlive == keepAlive)
    }

    /// Digits from other scripts (Arabic-Indic, fullwidth) are not Content-Length digits.
    @Test(arguments: ["\u{661}", "\u{FF11}", "1\u{FF10}", "\u{661}0"])
    func contentLengthNonASCIIDigits(_ value: String) throws {
        #expect(Self.request(["Host: a", "Content-Length: \(value)"]).failureKind == .malformed)
        #expect(throws: Rejection.self) { try Self.answer(["Content-Length: \(value)"]).get() }
    }

    /// A `Connection` list naming a header with a look-alike letter does not remove the ASCII one.
    @Test func connectionListedIsASCIILowercased() {
        #expect(HeaderPolicy.connectionListed("X-\u{212A}ey, X-TOKEN") == ["x-\u{212A}ey", "x-token"])
        #expect(!HeaderPolicy.isDroppedWhenForwarding("X-Key", connectionListed: HeaderPolicy.connectionListed("X-\u{212A}ey")))
        #expect(HeaderPolicy.isDroppedWhenForwarding("X-Key", connectionListed: HeaderPolicy.connectionListed("x-KEY")))
    }

    @Test func asciiLowercasedLeavesOtherBytes() {
        #expect("ABC-\u{212A}\u{130}z".withUTF8Bytes { ASCIICase.lowercased($0) } == "abc-\u{212A}\u{130}z")
    }
}

extension Result where Failure == HTTPRequestHead.Failure {
    var failureKind: HeadFailureKind? {
        if case .failure(let f) = self { return HeadFailureKind(f) }
        return nil
    }
}
