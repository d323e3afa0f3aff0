/// The VECU platform's scheme: `X-VECU-Signature: sha256=<hex HMAC-SHA256(secret,
/// "{X-VECU-Timestamp}.{raw body}")>`, with the timestamp inside a window around now.
/// Several secrets may be configured during rotation; a match with any of them passes.
public struct VecuSignatureScheme: SignatureScheme {
    public static let timestampHeader = "X-VECU-Timestamp"
    public static let signatureHeader = "X-VECU-Signature"
    static let prefix = Array("sha256=".utf8)

    private let keys: [HMACSHA256Key]
    public let window: TimestampWindow

    public init(secrets: [[UInt8]], toleranceSeconds: Int64) {
        keys = secrets.map(HMACSHA256Key.init(key:))
        window = TimestampWindow(toleranceSeconds: toleranceSeconds)
    }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        // Both values are read as bytes where they lie: no String per request.
        headers.withValue(named: Self.timestampHeader) { timestampValue in
            let stampBytes: UnsafeBufferPointer<UInt8>
            switch timestampValue {
            case .missing: return Rejection(.timestampMissing, "X-VECU-Timestamp header is required")
            case .repeated: return Rejection(.timestampInvalid, "X-VECU-Timestamp header appears more than once")
            case .one(let v): stampBytes = v
            }
            guard let timestamp = TimestampWindow.parseTimestamp(stampBytes) else {
                return Rejection(.timestampInvalid, "X-VECU-Timestamp must be Unix seconds (digits only)")
            }
            return headers.withValue(named: Self.signatureHeader) { signatureValue in
                let claimed: Digest32
                switch signatureValue {
                case .missing: return Rejection(.signatureMissing, "X-VECU-Signature header is required")
                case .repeated: return Rejection(.signatureMalformed, "X-VECU-Signature header appears more than once")
                case .one(let v):
                    guard let parsed = Self.parseSignature(bytes: v) else {
                        return Rejection(.signatureMalformed, "X-VECU-Signature must be sha256= followed by 64 hex digits")
                    }
                    claimed = parsed
                }
                guard window.contains(timestamp, now: now) else {
                    return Rejection(.timestampOutsideWindow,
                                     "X-VECU-Timestamp is more than \(window.toleranceSeconds)s away from the gateway's clock")
                }
                guard matchesAnyKey(claimed, timestamp: stampBytes, body: body) else {
                    return Rejection(.signatureMismatch, "X-VECU-Signature does not match the body")
                }
                return nil
            }
        }
    }

    /// `sha256=` (exactly, lower case) followed by 64 hex digits of either case.
    public static func parseSignature(_ text: String) -> Digest32? {
        text.withUTF8Bytes { parseSignature(bytes: $0) }
    }

    static func parseSignature(bytes: UnsafeBufferPointer<UInt8>) -> Digest32? {
        guard bytes.count == prefix.count + 64, bytes.starts(with: prefix) else { return nil }
        return Digest32.parse(hex: UnsafeBufferPointer(rebasing: bytes[prefix.count...]))
    }

    /// The signature a sender with `secret` would send for `body` at `timestamp`.
    public static func sign(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        let digest = HMACSHA256Key(key: secret).authenticate(Array("\(timestamp).".utf8) + body)
        return "sha256=" + digest.hex
    }

    private func matchesAnyKey(_ claimed: Digest32, timestamp stampBytes: UnsafeBufferPointer<UInt8>, body: some ByteSegments) -> Bool {
        var matched = false
        for key in keys {
            let digest = key.authenticate { emit in
                emit(UnsafeRawBufferPointer(stampBytes))
                withUnsafeBytes(of: UInt8(ascii: ".")) { emit($0) }
                body.forEachSegment(emit)
            }
            // Every key is tried so the time taken does not reveal which one matched.
            if digest.constantTimeEquals(claimed) { matched = true }
        }
        return matched
    }
}
