/// The request line and header section of an HTTP/1.x request, parsed strictly (RFC 9112): CRLF
/// line endings only, no NUL or other control characters, no obsolete line folding, no
/// whitespace before a colon, a single unambiguous message length. Anything a correct client
/// would not send is refused, because a lenient reading is where request smuggling begins.
public struct HTTPRequestHead: Sendable {
    public enum Version: Sendable, Equatable { case http10, http11 }

    /// How the body is delimited.
    public enum Framing: Sendable, Equatable {
        case length(Int)
        case chunked
    }

    public var method: String
    public var target: String
    public var version: Version
    public var headers: HeaderList
    public var framing: Framing
    /// Whether the client wants the connection kept open after the answer.
    public var keepAlive: Bool
    /// `Expect: 100-continue` was sent.
    public var expectsContinue: Bool

    public init(method: String, target: String, version: Version, headers: HeaderList,
                framing: Framing, keepAlive: Bool, expectsContinue: Bool) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.framing = framing
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
    }

    /// Headers beyond this count are refused with 431.
    public static let maximumHeaderCount = 128

    /// Why a head was refused, with the status to answer.
    public enum Failure: Error, Equatable, Sendable {
        case malformed(String)
        case tooManyHeaders
        case versionNotSupported
        case unsupportedTransferEncoding
        case expectationFailed

        public var rejection: Rejection {
            switch self {
            case .malformed(let detail): return Rejection(.malformedRequest, detail)
            case .tooManyHeaders: return Rejection(.headersTooLarge, "more than \(HTTPRequestHead.maximumHeaderCount) header fields")
            case .versionNotSupported: return Rejection(.httpVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served")
            case .unsupportedTransferEncoding: return Rejection(.unsupportedTransferEncoding, "only Transfer-Encoding: chunked is accepted")
            case .expectationFailed: return Rejection(.expectationFailed, "only Expect: 100-continue is supported")
            }
        }
    }

    /// Parses `bytes`, which hold the head up to and including the blank line's CRLF.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<HTTPRequestHead, Failure> { parse(bytes, onePass: true) }

    /// `onePass: false` reads every head line by line (the reference the one pass is tested against).
    static func parse(_ bytes: UnsafeRawBufferPointer, onePass: Bool) -> Result<HTTPRequestHead, Failure> {
        // One pass over the head when nothing in it is unusual; otherwise the line-by-line
        // reading, which names the first fault (see `HTTPHeadLines.scan`).
        let scanned = onePass ? HTTPHeadLines.scan(bytes) : nil
        var lines: [UnsafeRawBufferPointer] = []
        if scanned == nil {
            switch HTTPHeadLines.split(bytes) {
            case .failure(let error): return .failure(.malformed(error.message))
            case .success(let l): lines = l
            }
        }
        guard (scanned?.fields.count ?? lines.count - 1) <= maximumHeaderCount else { return .failure(.tooManyHeaders) }

        // Request line: method SP request-target SP HTTP-version
        let line = scanned?.firstLine ?? lines[0]
        guard let firstSpace = line.firstIndex(of: 0x20),
              let lastSpace = line.lastIndex(of: 0x20), firstSpace < lastSpace else {
            return .failure(.malformed("request line must be: method SP target SP version"))
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[0..<firstSpace])
        let targetBytes = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard !methodBytes.isEmpty, methodBytes.count <= 32, methodBytes.allSatisfy(isTokenByte) else {
            return .failure(.malformed("invalid method"))
        }
        guard !targetBytes.isEmpty, targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
              targetBytes[0] == UInt8(ascii: "/") || (targetBytes.count == 1 && targetBytes[0] == UInt8(ascii: "*")) else {
            return .failure(.malformed("request target must be an absolute path"))
        }
        let version: Version
        if ByteCompare.equal(versionBytes, "HTTP/1.1") {
            version = .http11
        } else if ByteCompare.equal(versionBytes, "HTTP/1.0") {
            version = .http10
        } else if versionBytes.starts(with: "HTTP/".utf8), versionBytes.count == 8 {
            return .failure(.versionNotSupported)
        } else {
            return .failure(.malformed("invalid HTTP version"))
        }

        let fields: HTTPHeadLines.Fields
        switch scanned.map({ HTTPHeadLines.parseFields(scanned: $0.fields, of: bytes) }) ?? HTTPHeadLines.parseFields(lines.dropFirst(), of: bytes) {
        case .failure(let error): return .failure(.malformed(error.message))
        case .success(let f): fields = f
        }
        if fields.repeatedTransferEncoding { return .failure(.unsupportedTransferEncoding) }
        if fields.repeatedExpect { return .failure(.expectationFailed) }
        let (headers, contentLength, transferEncoding, expect) =
            (fields.headers, fields.contentLength, fields.transferEncoding, fields.expect)
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0, and a valid one;
        // it becomes the upstream's X-Forwarded-Host.
        if fields.hostCount > 1 { return .failure(.malformed("Host header appears more than once")) }
        if version == .http11, fields.hostCount == 0 { return .failure(.malformed("Host header is required")) }
        if let host = fields.host, !HostHeader.isValid(UnsafeRawBufferPointer(rebasing: bytes[host]).assumingMemoryBound(to: UInt8.self)) {
            return .failure(.malformed("invalid Host header"))
        }
        let framing: Framing
        if let te = transferEncoding {
            guard contentLength == nil else { return .failure(.malformed("both Content-Length and Transfer-Encoding")) }
            guard version == .http11 else { return .failure(.malformed("Transfer-Encoding in an HTTP/1.0 request")) }
            guard te == .chunked else { return .failure(.unsupportedTransferEncoding) }
            framing = .chunked
        } else {
            framing = .length(contentLength ?? 0)
        }
        var expectsContinue = false
        if let expect {
            guard expect == .continue100 else { return .failure(.expectationFailed) }
            expectsContinue = version == .http11
        }
        let keepAlive = version == .http11 ? !fields.connectionClose : fields.connectionKeepAlive
        return .success(HTTPRequestHead(
            method: String(decoding: methodBytes, as: UTF8.self),
            target: String(decoding: targetBytes, as: UTF8.self),
            version: version, headers: headers, framing: framing, keepAlive: keepAlive, expectsContinue: expectsContinue))
    }

    static func isTokenByte(_ c: UInt8) -> Bool { HTTPHeadLines.isTokenByte(c) }

    /// Parses a chunk-size line (without its CRLF): hex digits, optionally followed by RFC 9112
    /// chunk extensions, which are checked and ignored. nil for anything else or sizes beyond 2^48.
    public static func parseChunkSize(_ line: UnsafeRawBufferPointer) -> Int? {
        ChunkedFraming.chunkSize(line)
    }
}
