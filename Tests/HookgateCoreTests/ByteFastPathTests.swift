import Testing
@testable import HookgateCore

/// The word-at-a-time and table-driven checks of the request path (issue 14) give the same answer
/// as the byte-by-byte rules they replace, for every byte value at every position of a word, and
/// the heads they split fail with the same messages.
@Suite struct ByteFastPathTests {
    private static func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @Test func plainWordsAreExactlyVisibleASCIIAndSpace() {
        for position in 0..<8 {
            for b in 0...255 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 8)
                bytes[position] = UInt8(b)
                #expect(PlainBytes.isPlain(Self.word(bytes)) == (b >= 0x20 && b <= 0x7E), "byte \(b) at \(position)")
            }
        }
        // A flagged byte below another one must not hide or invent anything above it.
        #expect(!PlainBytes.isPlain(Self.word([0x00, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x7F])))
        #expect(!PlainBytes.isPlain(Self.word([0xFF, 0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0x7E, 0x7E])))
        #expect(PlainBytes.isPlain(Self.word(Array("~ ~ ~ ~ ".utf8))))
    }

    @Test func wordContainsFindsExactlyTheByte() {
        for position in 0..<8 {
            for b in [0x00, 0x01, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x80, 0xA2, 0xDC, 0xFF] {
                var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: 8)
                bytes[position] = UInt8(b)
                let w = Self.word(bytes)
                #expect(PlainBytes.contains(w, 0x22) == (b == 0x22), "byte \(b) at \(position)")
                #expect(PlainBytes.contains(w, 0x5C) == (b == 0x5C), "byte \(b) at \(position)")
            }
        }
    }

    @Test func jsonEscapeCheckAgreesWithTheRuleAtEveryLength() {
        func reference(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C } }
        for length in 0..<20 {
            for position in 0..<max(length, 1) {
                for b: UInt8 in [0x22, 0x5C, 0x0A, 0x7F, 0xE2, 0x41] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "k"), count: length)
                    if length > 0 { bytes[position] = b }
                    #expect(bytes.withUnsafeBytes { PlainBytes.needNoJSONEscape($0) } == reference(bytes))
                    #expect(bytes.withUnsafeBytes { PlainBytes.allPlain($0) } == bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F })
                }
            }
        }
        // The quoting result is the same whichever path it takes.
        #expect(JSONText.quoted("a\"b\\c\u{2028}d\u{7F}é-and-some-plain-text") == #""a\"b\\c\u2028d\u007fé-and-some-plain-text""#)
    }

    @Test func tokenTableIsRFC9110Tchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for b in 0...255 { #expect(HTTPHeadLines.isTokenByte(UInt8(b)) == tchar.contains(UInt8(b)), "byte \(b)") }
    }

    /// The head splitter skips plain words; a CR, LF or NUL anywhere, whatever its alignment, is
    /// still found and refused with the message the byte-by-byte reading gave.
    @Test func splitFindsEveryLineBreakAndForbiddenByteAtAnyAlignment() {
        let head = Array("POST /webhooks/vecu HTTP/1.1\r\nHost: gateway.example\r\nX-VECU-Signature: sha256=abcdef0123456789\r\n\r\n".utf8)
        guard case .success(let lines) = head.withUnsafeBytes({ HTTPHeadLines.split($0) }) else {
            Issue.record("a valid head was refused")
            return
        }
        #expect(lines.map { String(decoding: $0, as: UTF8.self) }
                == ["POST /webhooks/vecu HTTP/1.1", "Host: gateway.example", "X-VECU-Signature: sha256=abcdef0123456789"])
        let lastLine = head.count - 4
        for position in 0..<lastLine where head[position] != 0x0D && head[position] != 0x0A {
            for (byte, message) in [(UInt8(0x0A), "bare LF line ending"), (0x00, "NUL byte in the head")] {
                var bad = head
                bad[position] = byte
                #expect(bad.withUnsafeBytes { HTTPHeadLines.split($0) }.failureMessage == message, "\(byte) at \(position)")
            }
            var cr = head
            cr[position] = 0x0D
            if head[position + 1] != 0x0A {
                #expect(cr.withUnsafeBytes { HTTPHeadLines.split($0) }.failureMessage == "CR not followed by LF", "CR at \(position)")
            }
        }
    }

    /// What a parsed request head says, to compare the one-pass reading with the line-by-line one.
    private static func describe(_ r: Result<HTTPRequestHead, HTTPRequestHead.Failure>) -> String {
        switch r {
        case .failure(let f): return "failure \(f)"
        case .success(let h):
            return "\(h.method) \(h.target) \(h.version) \(h.framing) keepAlive=\(h.keepAlive) continue=\(h.expectsContinue) "
                + h.headers.pairs.map { "[\($0.name)|\($0.value)]" }.joined()
        }
    }

    private static func describe(_ r: Result<HTTPResponseHead, Rejection>) -> String {
        switch r {
        case .failure(let f): return "failure \(f.reason) \(f.message)"
        case .success(let h):
            return "\(h.status) \(h.framing) keepAlive=\(h.keepAlive) " + h.headers.pairs.map { "[\($0.name)|\($0.value)]" }.joined()
        }
    }

    /// The one-pass head reading (`HTTPHeadLines.scan`) and the line-by-line one give the same
    /// head or the same error for every head here and for every one-byte change of them to a
    /// hostile byte (CR, LF, NUL, other controls, DEL, space, tab, colon, comma, non-ASCII, a
    /// lone continuation byte), and for every truncation.
    @Test func onePassHeadReadingAgreesWithLineByLineReading() {
        let requests = [
            "POST /webhooks/vecu HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nContent-Length: 319\r\n"
                + "X-VECU-Event-Type: custody.vehicle.released\r\nX-VECU-Timestamp: 1764680000\r\n"
                + "X-VECU-Signature: sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n\r\n",
            "POST /a?b=c HTTP/1.0\r\nConnection: keep-alive, x-custom\r\nX-Note:  caf\u{E9}\t \r\nContent-Length: 5, 5\r\n\r\n",
            "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nX-Empty:\r\n\r\n",
            "\r\n\r\n",
        ]
        let responses = [
            "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]
        let hostile: [UInt8] = [0x0D, 0x0A, 0x00, 0x01, 0x1F, 0x7F, 0x20, 0x09, 0x3A, 0x2C, 0x80, 0xC3, 0xE2, 0xFF, 0x41]
        func variants(_ text: String) -> [[UInt8]] {
            let head = Array(text.utf8)
            var out = [head]
            for position in head.indices {
                for b in hostile where b != head[position] {
                    var v = head
                    v[position] = b
                    out.append(v)
                }
                out.append(Array(head[..<position]))
            }
            return out
        }
        var compared = 0
        func compare(_ texts: [String], _ describe: (UnsafeRawBufferPointer, Bool) -> String) {
            for text in texts {
                for v in variants(text) {
                    let fast = v.withUnsafeBytes { describe($0, true) }
                    let reference = v.withUnsafeBytes { describe($0, false) }
                    #expect(fast == reference, "\(String(decoding: v, as: UTF8.self).debugDescription)")
                    compared += 1
                }
            }
        }
        compare(requests) { Self.describe(HTTPRequestHead.parse($0, onePass: $1)) }
        compare(responses) { Self.describe(HTTPResponseHead.parse($0, onePass: $1)) }
        #expect(compared > 8000)
        // The one pass does answer for ordinary heads (the fast path is taken, not always refused).
        #expect(Array(requests[0].utf8).withUnsafeBytes { HTTPHeadLines.scan($0) }?.fields.count == 6)
        #expect(Array(requests[1].utf8).withUnsafeBytes { HTTPHeadLines.scan($0) }?.fields.count == 3)
    }

    @Test func fieldValuesAreCheckedAtEveryPosition() {
        let name = "X-VECU-Signature: "
        let value = Array("sha256=0123456789abcdef0123456789abcdef".utf8)
        for position in value.indices {
            for b: UInt8 in [0x00, 0x01, 0x0B, 0x1F, 0x7F] {
                var bad = value
                bad[position] = b
                let field = Array(name.utf8) + bad
                #expect(field.withUnsafeBytes { HTTPHeadLines.fieldBounds($0) }.failureMessage == "control character in a header value")
            }
            var tab = value
            tab[position] = 0x09
            #expect(tab.isEmpty || (Array(name.utf8) + tab).withUnsafeBytes { HTTPHeadLines.fieldBounds($0) }.failureMessage == nil)
        }
        let utf8 = Array("X-Note: caf\u{E9} and more text here".utf8)
        #expect(utf8.withUnsafeBytes { HTTPHeadLines.fieldBounds($0) }.failureMessage == nil)
        let broken = Array("X-Note: abcdefgh".utf8) + [0xC3, 0x28] + Array("ijklmnop".utf8)
        #expect(broken.withUnsafeBytes { HTTPHeadLines.fieldBounds($0) }.failureMessage == "header value is not UTF-8")
    }

    @Test func fieldNamesKeepTheirMessages() {
        func message(_ text: [UInt8]) -> String? { text.withUnsafeBytes { HTTPHeadLines.fieldBounds($0) }.failureMessage }
        #expect(message(Array("Content-Length 5".utf8)) == "header field without a colon")
        #expect(message(Array(": 5".utf8)) == "invalid header field name")
        #expect(message(Array("Content Length: 5".utf8)) == "invalid header field name")
        #expect(message(Array("Content-Length : 5".utf8)) == "invalid header field name")
        // U+2010 HYPHEN and U+212A KELVIN SIGN are not token bytes.
        #expect(message(Array("Content\u{2010}Length: 5".utf8)) == "invalid header field name")
        #expect(message(Array("\u{212A}eep-Alive: 5".utf8)) == "invalid header field name")
        #expect(message(Array(" Host: x".utf8)) == "obsolete line folding or empty field name")
        guard case .success(let b) = Array("Host:  a b\t ".utf8).withUnsafeBytes({ HTTPHeadLines.fieldBounds($0) }) else {
            Issue.record("a valid field was refused")
            return
        }
        #expect((b.colon, b.valueStart, b.valueEnd) == (4, 7, 10))
    }

    @Test func hostNamesAreLabelsBetweenDots() {
        func valid(_ s: String) -> Bool { HostHeader.isValid(Array(s.utf8)) }
        for good in ["a", "a.", "gateway.example", "gateway.example.", "127.0.0.1", "a_b-c", String(repeating: "a", count: 63) + ".b",
                     "example:8080", "[::1]:443"] {
            #expect(valid(good), "\(good)")
        }
        for bad in [".", "..", "a..", ".a", "a..b", "a b", "a/b", "caf\u{E9}", String(repeating: "a", count: 64) + ".b",
                    String(repeating: "a.", count: 127) + "ab", "example:", "example:65536", ":80", "a.:x"] {
            #expect(!valid(bad), "\(bad)")
        }
        let longest = String(repeating: "abc.", count: 63) + "abc"  // 255 bytes
        #expect(longest.utf8.count == 255 && valid(longest))
        #expect(!valid(longest + "d"))
    }

    @Test func everyHopByHopAndGatewayNameIsDroppedInAnyCase() {
        for name in HeaderPolicy.hopByHop.union(HeaderPolicy.gatewaySet) {
            #expect(HeaderPolicy.isDroppedWhenForwarding(name), "\(name)")
            #expect(HeaderPolicy.isDroppedWhenForwarding(name.uppercased()), "\(name)")
        }
        for name in ["X-Hookgate-Anything", "Proxy-Whatever", "x-forwarded-for", "x-request-id", "hosts", "tee", "content-type",
                     "x-forwarded-hos", "X-Vecu-Signature"] {
            #expect(HeaderPolicy.isDroppedWhenForwarding(name) == (name.lowercased().hasPrefix("x-hookgate-")
                                                                  || name.lowercased().hasPrefix("proxy-")), "\(name)")
        }
        #expect(HeaderPolicy.isDroppedWhenForwarding("X-Custom", connectionListed: ["x-custom"]))
    }

    @Test func eventKeysCompareAndHashBytes() {
        let nfc = EventKey(source: "/s", id: "caf\u{E9}")
        let nfd = EventKey(source: "/s", id: "cafe\u{301}")
        #expect(nfc != nfd)
        #expect(nfc == EventKey(source: "/s", id: "caf\u{E9}"))
        #expect(nfc.hashValue == EventKey(source: "/s", id: "caf\u{E9}").hashValue)
        // The source's length is hashed, so moving bytes between source and id changes the key.
        #expect(EventKey(source: "ab", id: "c") != EventKey(source: "a", id: "bc"))
        #expect(Set([EventKey(source: "ab", id: "c"), EventKey(source: "a", id: "bc")]).count == 2)
        #expect("POST".hasSameBytes(as: "POST") && !"POST".hasSameBytes(as: "POSt") && !"".hasSameBytes(as: " "))
    }

    @Test func byteWriterGrowsAndWritesFieldsAndNumbers() {
        var w = ByteWriter(capacity: 4)
        w.write("HTTP/1.1 " as StaticString)
        w.writeDecimal(0)
        w.write(UInt8(ascii: " "))
        w.writeDecimal(-12)
        w.write(UInt8(ascii: " "))
        w.writeDecimal(Int.max)
        let long = String(repeating: "v", count: 3000)
        long.withUTF8Bytes { value in "X-Long".withUTF8Bytes { name in w.writeField(name, value) } }
        "".withUTF8Bytes { empty in w.writeField(empty, empty) }
        let text = String(decoding: w.finish(), as: UTF8.self)
        #expect(text == "HTTP/1.1 0 -12 \(Int.max)\r\nX-Long: \(long)\r\n: ")
        #expect(DecimalDigits.string("a1b2-0-", UInt64.max) == "a1b2-0-\(UInt64.max)")
        #expect(DecimalDigits.string("p-", 0) == "p-0")
    }
}

private extension Result {
    var failureMessage: String? {
        switch self {
        case .success: return nil
        case .failure(let e): return (e as? HTTPHeadLines.HeadError)?.message ?? "\(e)"
        }
    }
}
