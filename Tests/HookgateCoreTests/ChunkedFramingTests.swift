import Testing
@testable import HookgateCore

/// Chunk-size lines and trailer lines (RFC 9112 §7.1), as the chunked reader checks them.
@Suite("Chunked framing lines")
struct ChunkedFramingTests {
    private static func size(_ line: [UInt8]) -> Int? { line.withUnsafeBytes { ChunkedFraming.chunkSize($0) } }
    private static func trailer(_ line: [UInt8]) -> Bool { line.withUnsafeBytes { ChunkedFraming.isValidTrailerLine($0) } }

    @Test(arguments: [
        ("5", 5), ("5;a", 5), ("5;a=b", 5), ("5 ; a = b", 5), ("5;a=b;c", 5), ("5;a=\"x y\"", 5),
        ("5;a=\"q\\\"u\\\\o\"", 5), ("5;a=\"tab\there\"", 5), ("5\t;\ta\t=\tb\t", 5), ("5;a=b ;c=\"\"", 5),
        ("5;name=va!#$%&'*+-.^_`|~", 5), ("5 ", 5), ("5;a=\"\u{E9}\"", 5),
    ] as [(String, Int)])
    func validSizeLines(_ line: String, _ expected: Int) {
        #expect(Self.size(line.bytes) == expected)
    }

    @Test(arguments: [
        ("empty extension", "5;"), ("empty name", "5;=b"), ("empty value", "5;a="), ("two semicolons", "5;;a"),
        ("bare LF in an extension", "5;a\nb"), ("bare LF after the size", "5\n"), ("lone CR in an extension", "5;a\rb"),
        ("lone CR after the size", "5\r"), ("NUL in an extension", "5;a\u{0}"), ("NUL in a value", "5;a=b\u{0}c"),
        ("SOH in a name", "5;a\u{1}b"), ("DEL in a value", "5;a=b\u{7F}"), ("ESC in a quoted value", "5;a=\"\u{1B}\""),
        ("LF in a quoted value", "5;a=\"x\ny\""), ("unterminated quoted value", "5;a=\"xy"),
        ("backslash at the end", "5;a=\"x\\"), ("escaped control", "5;a=\"\\\u{1}\""), ("separator in a name", "5;a/b"),
        ("space inside a name", "5;a b"), ("text after a quoted value", "5;a=\"x\"y"), ("comma", "5;a=b,c"),
        ("non-ASCII name", "5;\u{E9}"), ("non-ASCII token value", "5;a=\u{E9}"), ("10 then text", "10 P.1TnT/1ne"),
        ("size then digits", "1 2"), ("leading space", " 5"),
    ] as [(String, String)])
    func invalidSizeLines(_ label: String, _ line: String) {
        #expect(Self.size(line.bytes) == nil, "\(label)")
    }

    @Test(arguments: [
        ("X-Checksum: abc", true), ("X-A:", true), ("x: v v\tv", true), ("X-U: caf\u{E9}", true),
        ("", false), ("GET /hidden HTTP/1.1", false), ("\nGET /hidden HTTP/1.1", false), (" X-A: folded", false),
        ("\tX-A: folded", false), ("X-A : v", false), ("X A: v", false), ("X-A: a\nb", false), ("X-A: a\rb", false),
        ("X-A: a\u{0}b", false), ("X-A: a\u{7F}", false), ("X-A: a\u{1}", false), (": v", false), ("X\u{E9}: v", false),
    ] as [(String, Bool)])
    func trailerLines(_ line: String, _ valid: Bool) {
        #expect(Self.trailer(line.bytes) == valid)
    }

    @Test func trailerValueNotUTF8() {
        #expect(!Self.trailer("X-A: ".bytes + [0xFF, 0xFE]))
    }
}
