/// The generic `hmac` scheme, for senders not covered by a named one: one header holding
/// `prefix` + the digest (hex or base64) of an HMAC-SHA256 over the `signed` template, where
/// `{body}` is the raw body, `{timestamp}` the `timestamp_header` value (then checked against the
/// window) and `{id}` the value of the `id: header:NAME` header. One signature per header.
public struct GenericHMACSignatureScheme: SignatureScheme {
    /// One piece of the signed message.
    public enum Part: Sendable, Equatable {
        case literal([UInt8])
        case body
        case timestamp
        case id
    }

    /// Why a `signed` template was refused.
    public struct TemplateProblem: Error, Equatable {
        public var message: String
    }

    /// The parts of a `signed` template, or why it is refused: exactly one `{body}`, placeholders
    /// among `{body}`, `{timestamp}` and `{id}`, no other braces.
    public static func parseTemplate(_ text: String) -> Result<[Part], TemplateProblem> {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var bodies = 0
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "}") { return .failure(TemplateProblem(message: "a '}' without its '{'")) }
            guard c == UInt8(ascii: "{") else {
                literal.append(c)
                i += 1
                continue
            }
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: "}")) else { return .failure(TemplateProblem(message: "a '{' without its '}'")) }
            let name = String(decoding: bytes[(i + 1)..<close], as: UTF8.self)
            let part: Part
            switch name {
            case "body": part = .body; bodies += 1
            case "timestamp": part = .timestamp
            case "id": part = .id
            default: return .failure(TemplateProblem(message: "unknown placeholder {\(name)} (known: {body}, {timestamp}, {id})"))
            }
            if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
            parts.append(part)
            i = close + 1
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        guard bodies == 1 else { return .failure(TemplateProblem(message: "must contain {body} exactly once")) }
        return .success(parts)
    }

    public let header: String
    public let prefix: [UInt8]
    public let encoding: SignatureEncoding
    public let parts: [Part]
    public let timestampHeader: String?
    public let idHeader: String?
    /// Whether `{id}` is signed, so the id header must be present once.
    private let signsID: Bool
    private let keys: HMACKeyRing
    public let window: TimestampWindow

    /// The loader guarantees that `{timestamp}` comes with a `timestampHeader` and `{id}` with an `idHeader`.
    public init(secrets: [[UInt8]], header: String, prefix: String, encoding: SignatureEncoding, parts: [Part],
                timestampHeader: String?, idHeader: String?, toleranceSeconds: Int64) {
        keys = HMACKeyRing(secrets: secrets)
        self.header = header
        self.prefix = Array(prefix.utf8)
        self.encoding = encoding
        self.parts = parts
        self.timestampHeader = timestampHeader
        self.idHeader = idHeader
        signsID = parts.contains(.id)
        window = TimestampWindow(toleranceSeconds: toleranceSeconds)
    }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        var stamp: (text: String, seconds: Int64)?
        if let timestampHeader {
            switch SchemeHeaders.timestamp(headers, timestampHeader) {
            case .failure(let r): return r
            case .success(let v): stamp = v
            }
        }
        var id = ""
        if let idHeader, signsID {
            switch headers.value(named: idHeader) {
            case .missing: return Rejection(.signatureMalformed, "\(idHeader) header is required (it is signed)")
            case .repeated: return Rejection(.signatureMalformed, "\(idHeader) header appears more than once")
            case .one(let v): id = v
            }
        }
        let text: String
        switch SchemeHeaders.signature(headers, header) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        guard let claimed = Digest32.parse(text, prefix: prefix, encoding: encoding) else {
            let what = encoding == .hex ? "64 hex digits" : "44 characters of padded base64"
            return Rejection(.signatureMalformed, "\(header) must be \(prefix.isEmpty ? "" : "the configured prefix followed by ")\(what)")
        }
        if let stamp, let timestampHeader, !window.contains(stamp.seconds, now: now) {
            return SchemeHeaders.outside(timestampHeader, window)
        }
        let stampText = stamp?.text ?? ""
        let matched = keys.matchesAny([claimed]) { emit in
            for part in parts {
                switch part {
                case .literal(let bytes): emitBytes(bytes, emit)
                case .body: body.forEachSegment(emit)
                case .timestamp: emitText(stampText, emit)
                case .id: emitText(id, emit)
                }
            }
        }
        return matched ? nil : Rejection(.signatureMismatch, "\(header) does not match the body")
    }
}
