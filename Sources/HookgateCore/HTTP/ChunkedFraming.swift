/// The line-level rules of a chunked body (RFC 9112 §7.1): the chunk-size line with its
/// extensions, and the trailer section's field lines. Pure, so the server's chunked reader
/// (inbound requests and upstream answers alike) only finds CRLFs and asks here.
///
/// A line is what lies before the first CRLF, so a bare LF, a lone CR or a NUL inside it is
/// refused here: accepting them is how `0\r\n\nGET /hidden ...` would turn the next request
/// into "trailers".
public enum ChunkedFraming {
    /// The size of a chunk-size line (without its CRLF):
    /// `chunk-size *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, the name a
    /// token, the value a token or a quoted-string. Whitespace may follow the size alone.
    /// nil for anything else, or for sizes of more than 12 hex digits (2^48).
    public static func chunkSize(_ line: UnsafeRawBufferPointer) -> Int? {
        var size = 0
        var i = 0
        while i < line.count, let v = hexValue(line[i]) {
            guard i < 12 else { return nil }
            size = size << 4 | v
            i += 1
        }
        guard i > 0 else { return nil }
        func skipBWS() { while i < line.count, line[i] == 0x20 || line[i] == 0x09 { i += 1 } }
        func token() -> Bool {
            let start = i
            while i < line.count, HTTPHeadLines.isTokenByte(line[i]) { i += 1 }
            return i > start
        }
        skipBWS()
        while i < line.count {
            guard line[i] == UInt8(ascii: ";") else { return nil }
            i += 1
            skipBWS()
            guard token() else { return nil }
            skipBWS()
            guard i < line.count, line[i] == UInt8(ascii: "=") else { continue }
            i += 1
            skipBWS()
            if i < line.count, line[i] == UInt8(ascii: "\"") {
                guard let end = quotedStringEnd(line, from: i) else { return nil }
                i = end
            } else {
                guard token() else { return nil }
            }
            skipBWS()
        }
        return size
    }

    /// Whether a trailer line (without its CRLF, not the empty last line) is a valid field line,
    /// by the same rules as a header field line.
    public static func isValidTrailerLine(_ line: UnsafeRawBufferPointer) -> Bool {
        if case .success = HTTPHeadLines.fieldBounds(line) { return true }
        return false
    }

    /// The index after the quoted-string that starts at `start` (RFC 9110 §5.6.4): qdtext is
    /// tab, space and visible characters but `"` and `\`, obs-text allowed; `\` quotes one
    /// tab, space, visible character or obs-text. nil when unterminated or holding controls.
    private static func quotedStringEnd(_ line: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var i = start + 1
        while i < line.count {
            let c = line[i]
            switch c {
            case UInt8(ascii: "\""):
                return i + 1
            case UInt8(ascii: "\\"):
                guard i + 1 < line.count, isQuotable(line[i + 1]) else { return nil }
                i += 2
            default:
                guard isQuotable(c) else { return nil }
                i += 1
            }
        }
        return nil
    }

    private static func isQuotable(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 0x30...0x39: return Int(c - 0x30)
        case 0x61...0x66: return Int(c - 0x61 + 10)
        case 0x41...0x46: return Int(c - 0x41 + 10)
        default: return nil
        }
    }
}
