/// The status line and header section of an upstream's HTTP/1.x answer, parsed with the same
/// strict rules as requests, and how its body is delimited.
public struct HTTPResponseHead: Sendable {
    /// How the body is delimited.
    public enum Framing: Sendable, Equatable {
        case length(Int)
        case chunked
        /// The body runs until the upstream closes the connection.
        case untilClose
    }

    public var status: Int
    public var headers: HeaderList
    public var framing: Framing
    /// Whether the connection may carry another request after this answer.
    public var keepAlive: Bool

    /// Parses `bytes` (up to and including the blank line) of an answer to a POST.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<HTTPResponseHead, Rejection> { parse(bytes, onePass: true) }

    /// `onePass: false` reads every head line by line (the reference the one pass is tested against).
    static func parse(_ bytes: UnsafeRawBufferPointer, onePass: Bool) -> Result<HTTPResponseHead, Rejection> {
        func invalid(_ detail: String) -> Result<HTTPResponseHead, Rejection> {
            .failure(Rejection(.upstreamInvalidResponse, "upstream answer was not valid HTTP: \(detail)"))
        }
        // One pass when nothing is unusual, as for requests (`HTTPHeadLines.scan`).
        let scanned = onePass ? HTTPHeadLines.scan(bytes) : nil
        var lines: [UnsafeRawBufferPointer] = []
        if scanned == nil {
            switch HTTPHeadLines.split(bytes) {
            case .failure(let error): return invalid(error.message)
            case .success(let l): lines = l
            }
        }
        guard (scanned?.fields.count ?? lines.count - 1) <= HTTPRequestHead.maximumHeaderCount else { return invalid("too many header fields") }
        // status-line = HTTP-version SP 3DIGIT SP [reason-phrase]
        let line = scanned?.firstLine ?? lines[0]
        guard line.count >= 12, line.starts(with: "HTTP/1.".utf8), line[7] == 0x30 || line[7] == 0x31, line[8] == 0x20,
              line[9...11].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), line.count == 12 || line[12] == 0x20 else {
            return invalid("malformed status line")
        }
        let http11 = line[7] == 0x31
        let status = Int(line[9] - 0x30) * 100 + Int(line[10] - 0x30) * 10 + Int(line[11] - 0x30)
        guard status >= 100 else { return invalid("status below 100") }
        let fields: HTTPHeadLines.Fields
        switch scanned.map({ HTTPHeadLines.parseFields(scanned: $0.fields, of: bytes) }) ?? HTTPHeadLines.parseFields(lines.dropFirst(), of: bytes) {
        case .failure(let error): return invalid(error.message)
        case .success(let f): fields = f
        }
        let framing: Framing
        if status < 200 || status == 204 || status == 304 {
            framing = .length(0)
        } else if let te = fields.transferEncoding {
            guard !fields.repeatedTransferEncoding, te == .chunked, fields.contentLength == nil else {
                return invalid("unsupported or conflicting Transfer-Encoding")
            }
            framing = .chunked
        } else if let length = fields.contentLength {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
        let keepAlive = framing != .untilClose
            && (http11 ? !fields.connectionClose : fields.connectionKeepAlive)
        return .success(HTTPResponseHead(status: status, headers: fields.headers, framing: framing, keepAlive: keepAlive))
    }
}
