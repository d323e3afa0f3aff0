/// Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:{X-Slack-Request-Timestamp}:{raw
/// body}")>`, the timestamp inside the window. The `url_verification` handshake is signed the
/// same way and passes through to the app (it has no `event_id`, so it is not de-duplicated).
public struct SlackSignatureScheme: SignatureScheme {
    public static let timestampHeader = "X-Slack-Request-Timestamp"
    public static let signatureHeader = "X-Slack-Signature"
    static let prefix = Array("v0=".utf8)
    static let version = Array("v0:".utf8)

    private let keys: HMACKeyRing
    public let window: TimestampWindow

    public init(secrets: [[UInt8]], toleranceSeconds: Int64) {
        keys = HMACKeyRing(secrets: secrets)
        window = TimestampWindow(toleranceSeconds: toleranceSeconds)
    }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        let stamp: (text: String, seconds: Int64)
        switch SchemeHeaders.timestamp(headers, Self.timestampHeader) {
        case .failure(let r): return r
        case .success(let v): stamp = v
        }
        let text: String
        switch SchemeHeaders.signature(headers, Self.signatureHeader) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        guard let claimed = Self.parseSignature(text) else {
            return Rejection(.signatureMalformed, "\(Self.signatureHeader) must be v0= followed by 64 hex digits")
        }
        guard window.contains(stamp.seconds, now: now) else { return SchemeHeaders.outside(Self.timestampHeader, window) }
        let matched = keys.matchesAny([claimed]) { emit in
            emitBytes(Self.version, emit)
            emitText(stamp.text, emit)
            withUnsafeBytes(of: UInt8(ascii: ":")) { emit($0) }
            body.forEachSegment(emit)
        }
        return matched ? nil : Rejection(.signatureMismatch, "\(Self.signatureHeader) does not match the body")
    }

    /// `v0=` (exactly) followed by 64 hex digits of either case.
    public static func parseSignature(_ text: String) -> Digest32? {
        Digest32.parse(text, prefix: prefix, encoding: .hex)
    }

    public static func sign(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        "v0=" + HMACSHA256Key(key: secret).authenticate(version + Array("\(timestamp):".utf8) + body).hex
    }
}
