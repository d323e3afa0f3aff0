import Testing
@testable import HookgateCore

/// The strict HTTP/1.x head reader used on the webhook port.

private func parseHead(_ text: String) -> Result<HTTPRequestHead, HTTPRequestHead.Failure> {
    parseHead(Array(text.utf8))
}

private func parseHead(_ bytes: [UInt8]) -> Result<HTTPRequestHead, HTTPRequestHead.Failure> {
    bytes.withUnsafeBytes { HTTPRequestHead.parse($0) }
}

/// A POST head with `fields` (each without its CRLF).
private func post(_ fields: [String], version: String = "HTTP/1.1") -> String {
    "POST /webhooks/vecu \(version)\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n"
}

/// The failure without its detail text.
enum HeadFailureKind: Sendable, Equatable {
    case malformed, tooManyHeaders, versionNotSupported, unsupportedTransferEncoding, expectationFailed

    init(_ failure: HTTPRequestHead.Failure) {
        switch failure {
        case .malformed: self = .malformed
        case .tooManyHeaders: self = .tooManyHeaders
        case .versionNotSupported: self = .versionNotSupported
        case .unsupportedTransferEncoding: self = .unsupportedTransferEncoding
        case .expectationFailed: self = .expectationFailed
        }
    }
}

struct BadHead: Sendable, CustomTestStringConvertible {
    var testDescription: String
    var bytes: [UInt8]
    var kind: HeadFailureKind
}

private func bad(_ label: String, _ text: String, _ kind: HeadFailureKind = .malformed) -> BadHead {
    BadHead(testDescription: label, bytes: Array(text.utf8), kind: kind)
}

private let badHeads: [BadHead] = [
    bad("empty", ""),
    bad("no blank line", "POST / HTTP/1.1\r\nHost: a\r\n"),
    bad("only the request line", "POST / HTTP/1.1\r\n"),
    bad("bare LF line endings", "POST / HTTP/1.1\nHost: a\n\n"),
    bad("bare LF in a header", post(["Host: a", "X-A: 1\nX-B: 2"])),
    bad("CR not followed by LF", post(["Host: a", "X-A: 1\rX-B: 2"])),
    bad("NUL in a header value", post(["Host: a", "X-A: a\u{0}b"])),
    bad("obsolete line folding", post(["Host: a", "X-A: one", " two"])),
    bad("tab-folded line", post(["Host: a", "X-A: one", "\ttwo"])),
    bad("blank line inside the head", "POST / HTTP/1.1\r\nHost: a\r\n\r\nX-A: 1\r\n\r\n"),
    bad("space before the colon", post(["Host : a"])),
    bad("no colon", post(["Host: a", "X-A 1"])),
    bad("empty field name", post(["Host: a", ": value"])),
    bad("non-token field name", post(["Host: a", "X(A): 1"])),
    bad("control character in a value", post(["Host: a", "X-A: a\u{1}b"])),
    bad("DEL in a value", post(["Host: a", "X-A: a\u{7F}b"])),
    bad("request line with two parts", "POST /\r\nHost: a\r\n\r\n"),
    bad("request line with one part", "POST\r\nHost: a\r\n\r\n"),
    bad("two spaces after the method", "POST  / HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("absolute-form target", "POST http://gw/webhooks HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("relative target", "POST webhooks HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("non-ASCII target", "POST /é HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("invalid method", "PO@ST / HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("method longer than 32 bytes", String(repeating: "P", count: 33) + " / HTTP/1.1\r\nHost: a\r\n\r\n"),
    bad("lower-case version", "POST / http/1.1\r\nHost: a\r\n\r\n"),
    bad("version with three digits", "POST / HTTP/1.10\r\nHost: a\r\n\r\n"),
    bad("garbage version", "POST / FTP\r\nHost: a\r\n\r\n"),
    bad("HTTP/2.0", "POST / HTTP/2.0\r\nHost: a\r\n\r\n", .versionNotSupported),
    bad("HTTP/1.2", "POST / HTTP/1.2\r\nHost: a\r\n\r\n", .versionNotSupported),
    bad("HTTP/0.9", "POST / HTTP/0.9\r\nHost: a\r\n\r\n", .versionNotSupported),
    bad("HTTP/1.1 without Host", post(["Content-Length: 0"])),
    bad("two Host headers", post(["Host: a", "host: a"])),
    bad("Content-Length not a number", post(["Host: a", "Content-Length: abc"])),
    bad("negative Content-Length", post(["Host: a", "Content-Length: -1"])),
    bad("Content-Length with a plus", post(["Host: a", "Content-Length: +1"])),
    bad("Content-Length with inner space", post(["Host: a", "Content-Length: 1 2"])),
    bad("empty Content-Length", post(["Host: a", "Content-Length:"])),
    bad("Content-Length with an empty list item", post(["Host: a", "Content-Length: 1,,1"])),
    bad("conflicting Content-Length list", post(["Host: a", "Content-Length: 5, 6"])),
    bad("conflicting Content-Length headers", post(["Host: a", "Content-Length: 5", "Content-Length: 6"])),
    bad("16-digit Content-Length", post(["Host: a", "Content-Length: 1000000000000000"])),
    bad("hex Content-Length", post(["Host: a", "Content-Length: 0x10"])),
    bad("Content-Length and Transfer-Encoding", post(["Host: a", "Content-Length: 5", "Transfer-Encoding: chunked"])),
    bad("Transfer-Encoding in HTTP/1.0", post(["Transfer-Encoding: chunked"], version: "HTTP/1.0")),
    bad("gzip transfer coding", post(["Host: a", "Transfer-Encoding: gzip"]), .unsupportedTransferEncoding),
    bad("gzip then chunked", post(["Host: a", "Transfer-Encoding: gzip, chunked"]), .unsupportedTransferEncoding),
    bad("chunked twice in one header", post(["Host: a", "Transfer-Encoding: chunked, chunked"]), .unsupportedTransferEncoding),
    bad("two Transfer-Encoding headers", post(["Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]),
        .unsupportedTransferEncoding),
    bad("unknown expectation", post(["Host: a", "Expect: 200-ok"]), .expectationFailed),
    bad("two Expect headers", post(["Host: a", "Expect: 100-continue", "Expect: 100-continue"]), .expectationFailed),
    bad("129 header fields", post(["Host: a"] + (1...128).map { "X-H\($0): v" }), .tooManyHeaders),
    BadHead(testDescription: "value that is not UTF-8",
            bytes: Array("POST / HTTP/1.1\r\nHost: a\r\nX-A: ".utf8) + [0xFF, 0xFE] + Array("\r\n\r\n".utf8), kind: .malformed),
]

@Suite("HTTP request head")
struct HTTPRequestHeadTests {
    @Test(arguments: badHeads)
    func refused(_ c: BadHead) {
        switch parseHead(c.bytes) {
        case .success(let head): Issue.record("accepted: \(head.method) \(head.target) \(head.headers)")
        case .failure(let failure): #expect(HeadFailureKind(failure) == c.kind, "\(failure)")
        }
    }

    @Test func typicalDelivery() throws {
        let head = try parseHead(post(["Host: gw.example", "Content-Type: application/json", "Content-Length: 120",
                                       "X-VECU-Signature:   sha256=ab  \t"])).get()
        #expect(head.method == "POST")
        #expect(head.target == "/webhooks/vecu")
        #expect(head.version == .http11)
        #expect(head.framing == .length(120))
        #expect(head.keepAlive)
        #expect(!head.expectsContinue)
        #expect(head.headers.pairs.map(\.name) == ["Host", "Content-Type", "Content-Length", "X-VECU-Signature"])
        #expect(head.headers.pairs.map(\.value) == ["gw.example", "application/json", "120", "sha256=ab"], "values are trimmed")
        #expect(head.headers.value(named: "x-vecu-signature") == .one("sha256=ab"))
    }

    /// (fields, version, framing, keep-alive, expects continue).
    @Test(arguments: [
        (["Host: a"], "HTTP/1.1", HTTPRequestHead.Framing.length(0), true, false),
        (["Host: a", "Content-Length: 5, 5"], "HTTP/1.1", .length(5), true, false),
        (["Host: a", "Content-Length: 5", "content-length: 5"], "HTTP/1.1", .length(5), true, false),
        (["Host: a", "Content-Length: 007"], "HTTP/1.1", .length(7), true, false),
        (["Host: a", "Transfer-Encoding: chunked"], "HTTP/1.1", .chunked, true, false),
        (["Host: a", "transfer-encoding: Chunked"], "HTTP/1.1", .chunked, true, false),
        (["Host: a", "Connection: close"], "HTTP/1.1", .length(0), false, false),
        (["Host: a", "Connection: Keep-Alive, Close"], "HTTP/1.1", .length(0), false, false),
        (["Host: a", "Connection: keep-alive"], "HTTP/1.1", .length(0), true, false),
        (["Host: a", "Expect: 100-continue", "Content-Length: 3"], "HTTP/1.1", .length(3), true, true),
        (["Host: a", "Expect: 100-Continue"], "HTTP/1.1", .length(0), true, true),
        ([], "HTTP/1.0", .length(0), false, false),
        (["Connection: keep-alive"], "HTTP/1.0", .length(0), true, false),
        (["Connection: Keep-Alive"], "HTTP/1.0", .length(0), true, false),
        (["Host: a", "Connection: , close ,"], "HTTP/1.1", .length(0), false, false),
        (["Host: a", "Connection: \tCLOSE\t"], "HTTP/1.1", .length(0), false, false),
        (["Host: a", "Connection: keep-alive", "Connection: close"], "HTTP/1.1", .length(0), false, false),
        (["Host: a", "Connection: closed, x-close, close-ish"], "HTTP/1.1", .length(0), true, false),
        (["Connection: keep-alive-ish"], "HTTP/1.0", .length(0), false, false),
        (["Expect: 100-continue"], "HTTP/1.0", .length(0), false, false),
    ] as [([String], String, HTTPRequestHead.Framing, Bool, Bool)])
    func framingAndConnection(_ fields: [String], _ version: String, _ framing: HTTPRequestHead.Framing,
                              _ keepAlive: Bool, _ expectsContinue: Bool) throws {
        let head = try parseHead(post(fields, version: version)).get()
        #expect(head.framing == framing)
        #expect(head.keepAlive == keepAlive)
        #expect(head.expectsContinue == expectsContinue)
    }

    @Test(arguments: ["/", "*", "/webhooks/vecu?attempt=2&x=%20", "/a/b/c"])
    func acceptedTargets(_ target: String) throws {
        let head = try parseHead("POST \(target) HTTP/1.1\r\nHost: a\r\n\r\n").get()
        #expect(head.target == target)
    }

    @Test func edgeValuesAreKept() throws {
        let head = try parseHead(post(["Host: a", "X-Empty:", "X-UTF8: évt 😀", "X-Inner-Tab: a\tb", "X-Colon: a:b: c"])).get()
        #expect(head.headers.pairs.map(\.value) == ["a", "", "évt 😀", "a\tb", "a:b: c"])
    }

    @Test func exactly128HeaderFieldsAreAccepted() throws {
        let head = try parseHead(post(["Host: a"] + (1...127).map { "X-H\($0): v" })).get()
        #expect(head.headers.count == HTTPRequestHead.maximumHeaderCount)
    }

    @Test(arguments: [
        (HTTPRequestHead.Failure.malformed("x"), Reason.malformedRequest, 400),
        (.tooManyHeaders, .headersTooLarge, 431),
        (.versionNotSupported, .httpVersionNotSupported, 505),
        (.unsupportedTransferEncoding, .unsupportedTransferEncoding, 501),
        (.expectationFailed, .expectationFailed, 417),
    ] as [(HTTPRequestHead.Failure, Reason, Int)])
    func failureAnswers(_ failure: HTTPRequestHead.Failure, _ reason: Reason, _ status: Int) {
        #expect(failure.rejection.reason == reason)
        #expect(failure.rejection.status == status)
    }

    @Test(arguments: [
        ("0", 0), ("a", 10), ("A", 10), ("1a", 26), ("00000000001F", 31), ("ffffffffffff", 0xFFFF_FFFF_FFFF),
        ("1;name=value", 1), ("1 ;name", 1), ("1\t; name", 1), ("1 ", 1),
    ] as [(String, Int)])
    func chunkSize(_ line: String, _ size: Int) {
        let parsed = Array(line.utf8).withUnsafeBytes { HTTPRequestHead.parseChunkSize($0) }
        #expect(parsed == size)
    }

    @Test(arguments: ["", ";ext", " 1", "g", "-1", "+1", "0x1", "1000000000000", "1 2", "1 x", "1\t2;ext", "١", "10;"])
    func chunkSizeRefused(_ line: String) {
        let parsed = Array(line.utf8).withUnsafeBytes { HTTPRequestHead.parseChunkSize($0) }
        #expect(parsed == nil)
    }

    @Test(arguments: [
        ("Content-Type", "content-type", true), ("X-VECU-Signature", "x-vecu-signature", true), ("a", "A", true),
        ("", "", true), ("ab", "abc", false), ("X-A", "X-B", false), ("[", "{", false), ("@", "`", false), ("É", "é", false),
    ] as [(String, String, Bool)])
    func sameName(_ a: String, _ b: String, _ same: Bool) {
        #expect(HeaderList.sameName(a, b) == same)
        #expect(HeaderList.sameName(b, a) == same)
    }

    @Test func statusPhrases() {
        #expect(HTTPStatusPhrase.phrase(200) == "OK")
        #expect(HTTPStatusPhrase.phrase(503) == "Service Unavailable")
        for reason in Reason.allCases {
            #expect(HTTPStatusPhrase.phrase(reason.status) != "Status", "a phrase for \(reason.status)")
        }
    }
}
