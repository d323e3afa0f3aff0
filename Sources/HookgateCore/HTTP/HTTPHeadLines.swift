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
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x0D {
                guard i + 1 < bytes.count, bytes[i + 1] == 0x0A else { return .failure("CR not followed by LF") }
                lines.append(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
                i += 2
                start = i
                continue
            }
            if c == 0x0A { return .failure("bare LF line ending") }
            if c == 0x00 { return .failure("NUL byte in the head") }
            i += 1
        }
        guard start == bytes.count, lines.count >= 2, lines.last!.isEmpty else { return .failure("incomplete head") }
        lines.removeLast()
        return .success(lines)
    }

    /// Header fields with the ones that decide framing and connection handling pulled out.
    struct Fields {
        var headers = HeaderList([])
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
        guard let colon = field.firstIndex(of: UInt8(ascii: ":")) else { return .failure("header field without a colon") }
        let nameBytes = UnsafeRawBufferPointer(rebasing: field[0..<colon])
        guard !nameBytes.isEmpty, nameBytes.allSatisfy(isTokenByte) else { return .failure("invalid header field name") }
        var valueStart = colon + 1
        var valueEnd = field.count
        while valueStart < valueEnd, field[valueStart] == 0x20 || field[valueStart] == 0x09 { valueStart += 1 }
        while valueEnd > valueStart, field[valueEnd - 1] == 0x20 || field[valueEnd - 1] == 0x09 { valueEnd -= 1 }
        let valueBytes = UnsafeRawBufferPointer(rebasing: field[valueStart..<valueEnd])
        var ascii = true
        for c in valueBytes {
            guard c == 0x09 || (c >= 0x20 && c != 0x7F) else { return .failure("control character in a header value") }
            if c >= 0x80 { ascii = false }
        }
        guard ascii || String(validating: valueBytes, as: UTF8.self) != nil else { return .failure("header value is not UTF-8") }
        return .success(FieldBounds(colon: colon, valueStart: valueStart, valueEnd: valueEnd))
    }

    /// `lines` are the field lines of `head` (slices of it); the fields keep one copy of `head`.
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
            let (colon, valueStart, valueEnd) = (bounds.colon, bounds.valueStart, bounds.valueEnd)
            let nameBytes = UnsafeRawBufferPointer(rebasing: field[0..<colon])
            let valueBytes = UnsafeRawBufferPointer(rebasing: field[valueStart..<valueEnd])
            let value = valueBytes.assumingMemoryBound(to: UInt8.self)
            let at = field.baseAddress! - head.baseAddress!
            offsets.append(HeaderList.Field(nameStart: Int32(at), nameEnd: Int32(at + colon),
                                            valueStart: Int32(at + valueStart), valueEnd: Int32(at + valueEnd)))
            func named(_ name: StaticString) -> Bool { ASCIICase.equal(nameBytes.assumingMemoryBound(to: UInt8.self), name) }
            // Protocol tokens are ASCII and compare as bytes: a Unicode case mapping would read
            // `chun\u{212A}ed` (KELVIN SIGN) as `chunked`.
            switch nameBytes.count {
            case 14 where named("content-length"):
                for item in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                    var digits = item[...]
                    while let f = digits.first, f == 0x20 || f == 0x09 { digits = digits.dropFirst() }
                    while let l = digits.last, l == 0x20 || l == 0x09 { digits = digits.dropLast() }
                    guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                        return .failure("invalid Content-Length")
                    }
                    let n = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                    if let known = fields.contentLength, known != n { return .failure("conflicting Content-Length values") }
                    fields.contentLength = n
                }
            case 17 where named("transfer-encoding"):
                if fields.transferEncoding != nil { fields.repeatedTransferEncoding = true }
                fields.transferEncoding = ASCIICase.equal(value, "chunked") ? .chunked : .other
            case 10 where named("connection"):
                HeaderPolicy.forEachListElement(value) { token in
                    if ASCIICase.equal(token, "close") { fields.connectionClose = true }
                    if ASCIICase.equal(token, "keep-alive") { fields.connectionKeepAlive = true }
                }
            case 6 where named("expect"):
                if fields.expect != nil { fields.repeatedExpect = true }
                fields.expect = ASCIICase.equal(value, "100-continue") ? .continue100 : .other
            case 4 where named("host"):
                fields.hostCount += 1
                if fields.host == nil { fields.host = (at + valueStart)..<(at + valueEnd) }
            default:
                break
            }
        }
        fields.headers = HeaderList(bytes: Array(head), fields: offsets)
        return .success(fields)
    }

    /// RFC 9110 `tchar`.
    static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
            || c == 0x21 || (c >= 0x23 && c <= 0x27) || c == 0x2A || c == 0x2B || c == 0x2D || c == 0x2E
            || c == 0x5E || c == 0x5F || c == 0x60 || c == 0x7C || c == 0x7E
    }

    /// A parse failure's message.
    struct HeadError: Error, ExpressibleByStringLiteral {
        var message: String
        init(stringLiteral value: String) { message = value }
    }
}

extension Result where Failure == HTTPHeadLines.HeadError {
    static func failure(_ message: String) -> Result { .failure(HTTPHeadLines.HeadError(stringLiteral: message)) }
}
