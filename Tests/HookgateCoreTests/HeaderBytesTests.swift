import Testing
@testable import HookgateCore

/// Headers kept as bytes: what the parsers record, how fields are looked up, and how heads are
/// written from them without becoming strings.
@Suite("Header bytes")
struct HeaderBytesTests {
    static func parsed(_ fields: [String]) throws -> HeaderList {
        let text = "POST / HTTP/1.1\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n"
        return try Array(text.utf8).withUnsafeBytes { try HTTPRequestHead.parse($0).get() }.headers
    }

    @Test func parsedFieldsKeepTheirSpellingAndTrimmedValues() throws {
        let headers = try Self.parsed(["Host: a", "x-VeCu-Signature:  \tsha256=ab \t", "X-Empty:", "X-UTF8: évt 😀"])
        #expect(headers.count == 4)
        #expect(headers.pairs.map(\.name) == ["Host", "x-VeCu-Signature", "X-Empty", "X-UTF8"])
        #expect(headers.pairs.map(\.value) == ["a", "sha256=ab", "", "évt 😀"])
        #expect(headers.nameIs(1, "x-vecu-signature"))
        #expect(!headers.nameIs(1, "x-vecu-signatur"))
        #expect(!headers.nameIs(0, "hos"))
    }

    @Test func lookupsIgnoreCaseAndReportRepeats() throws {
        for headers in [try Self.parsed(["Host: a", "X-A: 1", "x-b: 2", "X-B: 3"]),
                        HeaderList([("Host", "a"), ("X-A", "1"), ("x-b", "2"), ("X-B", "3")])] {
            #expect(headers.value(named: "x-a") == .one("1"))
            #expect(headers.value(named: "X-A") == .one("1"))
            #expect(headers.value(named: "X-B") == .repeated)
            #expect(headers.value(named: "X-C") == .missing)
            #expect(headers.value(named: "X-") == .missing)
            #expect(headers.value(named: "") == .missing)
        }
    }

    @Test func fieldsAreWrittenByteForByte() throws {
        let headers = try Self.parsed(["Host: gw", "x-Custom:  a:b  c ", "X-UTF8: évt"])
        var writer = HeadWriter(postTo: "/app", authority: "app:80")
        writer.add(field: 1, of: headers)
        writer.add("X-Own", "v")
        writer.add(field: 2, of: headers)
        #expect(String(decoding: writer.finish(contentLength: 0), as: UTF8.self)
            == "POST /app HTTP/1.1\r\nHost: app:80\r\nx-Custom: a:b  c\r\nX-Own: v\r\nX-UTF8: évt\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func relayedAnswerFieldsRoundTrip() throws {
        let text = "HTTP/1.1 201 Created\r\nX-App: one\r\nContent-Length: 2\r\n\r\n"
        let head = try Array(text.utf8).withUnsafeBytes { try HTTPResponseHead.parse($0).get() }
        var writer = HeadWriter(status: head.status)
        for i in 0..<head.headers.count where !head.headers.nameIs(i, "content-length") { writer.add(field: i, of: head.headers) }
        #expect(String(decoding: writer.finish(contentLength: 2), as: UTF8.self)
            == "HTTP/1.1 201 Created\r\nX-App: one\r\nContent-Length: 2\r\n\r\n")
    }

    @Test(arguments: [(0, "0"), (7, "7"), (10, "10"), (200, "200"), (1_048_576, "1048576"), (Int.max, "9223372036854775807"), (-5, "-5")])
    func decimals(_ value: Int, _ text: String) {
        var out = ByteWriter(capacity: 4)
        out.write(UInt8(0x2A))
        out.writeDecimal(value)
        #expect(out.finish() == [0x2A] + Array(text.utf8))
    }

    @Test(arguments: [
        ("content-length", "Content-Length", true), ("a", "A", true), ("", "", true), ("ab", "a", false),
        ("[", "{", false), ("@", "`", false),
    ] as [(String, String, Bool)])
    func caseInsensitiveBytes(_ a: String, _ b: String, _ equal: Bool) {
        let x = Array(a.utf8), y = Array(b.utf8)
        #expect(x.withUnsafeBufferPointer { p in y.withUnsafeBufferPointer { ASCIICase.equal(p, $0) } } == equal)
        #expect(Array(b.utf8).withUnsafeBufferPointer { p in x.withUnsafeBufferPointer { ASCIICase.hasLowercasePrefix(p, $0) } } == equal)
    }
}
