/// What requests and responses share: splitting a head into CRLF lines and reading header fields,
/// both strictly (RFC 9112). Failures are messages; each caller maps them to its own error.
enum HTTPHeadLines {
    /// The lines of a head that ends with an empty line, without their CRLFs and without the final
    /// empty line. Bare LF, a CR without LF and NUL bytes are refused.
    static func split(_ bytes: UnsafeRawBufferPointer) -> Result<[UnsafeRawBufferPointer], HeadError> {
        var lines: [UnsafeRawBufferPointer] = []
        lines.reserveCapacity(32)
        var start = 0
        var i = 0
        let n = bytes.count
        while i < n {
            // Eight bytes at a time while none of them is a control character, DEL or non-ASCII:
            // only those can be CR, LF or NUL.
            while i + 8 <= n, PlainBytes.isPlain(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
            guard i < n else { break }
            let c = bytes[i]
            if c == 0x0D {
                guard i + 1 < n, bytes[i + 1] == 0x0A else { return .failure("CR not followed by LF") }
                lines.append(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
                i += 2
                start = i
                continue
            }
            if c == 0x0A { return .failure("bare LF line ending") }
            if c == 0x00 { return .failure("NUL byte in the head") }
            i += 1
        }
        guard start == n, lines.count >= 2, lines.last!.isEmpty else { return .failure("incomplete head") }
        lines.removeLast()
        return .success(lines)
    }

    /// Header fields with the ones that decide framing and connection handling pulled out.
    struct Fields {
        var headers = HeaderList.empty
        var contentLength: Int?
        var transferEncoding: Coding?
        var repeatedTransferEncoding = false
        /// `Connection` lists `close` / `keep-alive` (in any of its fields).
        var connectionClose = false
        var connectionKeepAlive = false
        var expect: Expectation?
        var repeatedExpect = false
        var hostCount = 0
        /// Where the first `Host` field's value lies in the head.
        var host: Range<Int>?

        enum Coding { case chunked, other }
        enum Expectation { case continue100, other }

        /// Reads one field (already checked) of `head`: the framing and connection fields are
        /// pulled out; a fault in one of them is returned.
        mutating func take(_ field: HeaderList.Field, of head: UnsafeRawBufferPointer) -> HeadError? {
            let nameBytes = UnsafeRawBufferPointer(rebasing: head[Int(field.nameStart)..<Int(field.nameEnd)]).assumingMemoryBound(to: UInt8.self)
            let value = UnsafeRawBufferPointer(rebasing: head[Int(field.valueStart)..<Int(field.valueEnd)]).assumingMemoryBound(to: UInt8.self)
            func named(_ name: StaticString) -> Bool { ASCIICase.equal(nameBytes, name) }
            // Protocol tokens are ASCII and compare as bytes: a Unicode case mapping would read
            // `chun\u{212A}ed` (KELVIN SIGN) as `chunked`.
            switch nameBytes.count {
            case 14 where named("content-length"):
                // Comma-separated decimal values (RFC 9110 §8.6 allows a list of equal ones), each
                // 1 to 15 digits with spaces or tabs around it; read in place, without splitting.
                var k = 0
                while true {
                    var start = k
                    while start < value.count, value[start] == 0x20 || value[start] == 0x09 { start += 1 }
                    var end = start
                    while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
                    let next = end
                    while end > start, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
                    guard end > start, end - start <= 15 else { return "invalid Content-Length" }
                    var n = 0
                    for d in value[start..<end] {
                        guard d >= 0x30 && d <= 0x39 else { return "invalid Content-Length" }
                        n = n * 10 + Int(d - 0x30)
                    }
                    if let known = contentLength, known != n { return "conflicting Content-Length values" }
                    contentLength = n
                    guard next < value.count else { break }
                    k = next + 1
                }
            case 17 where named("transfer-encoding"):
                if transferEncoding != nil { repeatedTransferEncoding = true }
                transferEncoding = ASCIICase.equal(value, "chunked") ? .chunked : .other
            case 10 where named("connection"):
                HeaderPolicy.forEachListElement(value) { token in
                    if ASCIICase.equal(token, "close") { connectionClose = true }
                    if ASCIICase.equal(token, "keep-alive") { connectionKeepAlive = true }
                }
            case 6 where named("expect"):
                if expect != nil { repeatedExpect = true }
                expect = ASCIICase.equal(value, "100-continue") ? .continue100 : .other
            case 4 where named("host"):
                hostCount += 1
                if host == nil { host = Int(field.valueStart)..<Int(field.valueEnd) }
            default:
                break
            }
            return nil
        }
    }

    /// Where a field line's colon is and where its value starts and ends (without the spaces
    /// and tabs around it).
    struct FieldBounds {
        var colon: Int
        var valueStart: Int
        var valueEnd: Int
    }

    /// One field line (without its CRLF) checked as RFC 9112 wants it: no obsolete line folding,
    /// a colon, a token name with no space before the colon, a value of visible characters,
    /// spaces and tabs only (no NUL, CR, LF or other controls), valid UTF-8. Header sections
    /// and chunked trailer sections use the same rules.
    static func fieldBounds(_ field: UnsafeRawBufferPointer) -> Result<FieldBounds, HeadError> {
        guard let first = field.first, first != 0x20, first != 0x09 else {
            return .failure("obsolete line folding or empty field name")
        }
        // The name: token bytes up to the colon.
        var colon = 0
        while colon < field.count, isTokenByte(field[colon]) { colon += 1 }
        guard colon < field.count, field[colon] == UInt8(ascii: ":") else {
            return .failure(field.firstIndex(of: UInt8(ascii: ":")) == nil ? "header field without a colon" : "invalid header field name")
        }
        guard colon > 0 else { return .failure("invalid header field name") }
        var valueStart = colon + 1
        var valueEnd = field.count
        while valueStart < valueEnd, field[valueStart] == 0x20 || field[valueStart] == 0x09 { valueStart += 1 }
        while valueEnd > valueStart, field[valueEnd - 1] == 0x20 || field[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        var ascii = true
        var i = valueStart
        while i < valueEnd {
            while i + 8 <= valueEnd, PlainBytes.isPlain(field.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
            guard i < valueEnd else { break }
            let c = field[i]
            guard c == 0x09 || (c >= 0x20 && c != 0x7F) else { return .failure("control character in a header value") }
            if c >= 0x80 { ascii = false }
            i += 1
        }
        guard ascii || String(validating: UnsafeRawBufferPointer(rebasing: field[valueStart..<valueEnd]), as: UTF8.self) != nil else {
            return .failure("header value is not UTF-8")
        }
        return .success(FieldBounds(colon: colon, valueStart: valueStart, valueEnd: valueEnd))
    }

    /// `lines` are the field lines of `head` (slices of it); the fields keep one copy of `head`.
    /// Each line is checked, then read, in order, so the first fault in the head is the one named.
    static func parseFields(_ lines: ArraySlice<UnsafeRawBufferPointer>, of head: UnsafeRawBufferPointer) -> Result<Fields, HeadError> {
        var fields = Fields()
        var offsets: [HeaderList.Field] = []
        offsets.reserveCapacity(lines.count)
        for field in lines {
            let bounds: FieldBounds
            switch fieldBounds(field) {
            case .failure(let error): return .failure(error)
            case .success(let b): bounds = b
            }
            let at = field.baseAddress! - head.baseAddress!
            let offset = HeaderList.Field(nameStart: Int32(at), nameEnd: Int32(at + bounds.colon),
                                          valueStart: Int32(at + bounds.valueStart), valueEnd: Int32(at + bounds.valueEnd))
            offsets.append(offset)
            if let error = fields.take(offset, of: head) { return .failure(error) }
        }
        fields.headers = HeaderList(bytes: Array(head), fields: offsets)
        return .success(fields)
    }

    /// The fields `scan` found, read in order.
    static func parseFields(scanned offsets: [HeaderList.Field], of head: UnsafeRawBufferPointer) -> Result<Fields, HeadError> {
        var fields = Fields()
        for offset in offsets {
            if let error = fields.take(offset, of: head) { return .failure(error) }
        }
        fields.headers = HeaderList(bytes: Array(head), fields: offsets)
        return .success(fields)
    }

    /// A head's first line and its fields' bounds, found in one pass over the bytes: lines are
    /// split, names checked as tokens and values as visible characters, eight plain bytes at a
    /// time. It answers only for heads with nothing unusual in them (no obsolete folding, no
    /// control character but tab, non-ASCII values valid UTF-8); for any other it returns nil and
    /// the caller reads the head with `split` and `fieldBounds`, whose rules are the reference
    /// and whose messages name the first fault. A unit test holds both readings to the same result.
    static func scan(_ bytes: UnsafeRawBufferPointer) -> (firstLine: UnsafeRawBufferPointer, fields: [HeaderList.Field])? {
        let n = bytes.count
        var i = 0
        // The first line: up to CRLF, with no LF or NUL (its own rules are the caller's).
        while true {
            while i + 8 <= n, PlainBytes.isPlain(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
            guard i < n else { return nil }
            let c = bytes[i]
            if c == 0x0D { break }
            if c == 0x0A || c == 0x00 { return nil }
            i += 1
        }
        guard i + 1 < n, bytes[i + 1] == 0x0A else { return nil }
        let firstLine = UnsafeRawBufferPointer(rebasing: bytes[0..<i])
        i += 2
        var fields: [HeaderList.Field] = []
        fields.reserveCapacity(16)
        while true {
            guard i < n else { return nil }
            if bytes[i] == 0x0D {
                // The empty line: it must end the head.
                guard i + 2 == n, bytes[i + 1] == 0x0A else { return nil }
                return (firstLine, fields)
            }
            let nameStart = i
            while i < n, isTokenByte(bytes[i]) { i += 1 }
            guard i > nameStart, i < n, bytes[i] == UInt8(ascii: ":") else { return nil }
            let nameEnd = i
            i += 1
            while i < n, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            let valueStart = i
            var ascii = true
            while true {
                while i + 8 <= n, PlainBytes.isPlain(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { i += 8 }
                guard i < n else { return nil }
                let c = bytes[i]
                if c == 0x0D { break }
                if c >= 0x80 {
                    ascii = false
                } else if c != 0x09 && (c < 0x20 || c == 0x7F) {
                    return nil
                }
                i += 1
            }
            guard i + 1 < n, bytes[i + 1] == 0x0A else { return nil }
            var valueEnd = i
            while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            if !ascii, String(validating: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self) == nil {
                return nil
            }
            fields.append(HeaderList.Field(nameStart: Int32(nameStart), nameEnd: Int32(nameEnd),
                                           valueStart: Int32(valueStart), valueEnd: Int32(valueEnd)))
            i += 2
        }
    }

    /// RFC 9110 `tchar`, looked up in a 256-entry table (one load per byte, no chain of comparisons).
    @inline(__always)
    static func isTokenByte(_ c: UInt8) -> Bool { tokenTable.utf8Start[Int(c)] == UInt8(ascii: "1") }

    /// `1` at the index of each token byte: `! # $ % & ' * + - .`, digits, letters, `^ _ ` | ~`.
    static let tokenTable: StaticString = """
        0000000000000000000000000000000001011111001101101111111111000000\
        0111111111111111111111111110001111111111111111111111111111101010\
        0000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000
        """

    /// A parse failure's message.
    struct HeadError: Error, ExpressibleByStringLiteral {
        var message: String
        init(stringLiteral value: String) { message = value }
    }
}

extension Result where Failure == HTTPHeadLines.HeadError {
    static func failure(_ message: String) -> Result { .failure(HTTPHeadLines.HeadError(stringLiteral: message)) }
}

