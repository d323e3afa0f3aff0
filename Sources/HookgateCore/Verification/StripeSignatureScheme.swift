/// Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, each v1 an HMAC-SHA256
/// of `"{t}.{raw body}"` under the endpoint's `whsec_...` secret used as-is. Any v1 may match
/// (Stripe sends two while a secret is being rolled); other schemes (`v0`) are ignored. The
/// event id for de-duplication is the body's top-level `id`, read after the signature passes.
public struct StripeSignatureScheme: SignatureScheme {
    public static let signatureHeader = "Stripe-Signature"

    /// A parsed `Stripe-Signature` value.
    public struct Header: Equatable, Sendable {
        public var timestampText: String
        public var timestamp: Int64
        public var signatures: [Digest32]
    }

    private let keys: HMACKeyRing
    public let window: TimestampWindow

    public init(secrets: [[UInt8]], toleranceSeconds: Int64) {
        keys = HMACKeyRing(secrets: secrets)
        window = TimestampWindow(toleranceSeconds: toleranceSeconds)
    }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        let text: String
        switch SchemeHeaders.signature(headers, Self.signatureHeader) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        let header: Header
        switch Self.parseHeader(text) {
        case .failure(let r): return r
        case .success(let h): header = h
        }
        guard window.contains(header.timestamp, now: now) else { return SchemeHeaders.outside("Stripe-Signature t", window) }
        let matched = keys.matchesAny(header.signatures) { emit in
            emitText(header.timestampText, emit)
            withUnsafeBytes(of: UInt8(ascii: ".")) { emit($0) }
            body.forEachSegment(emit)
        }
        return matched ? nil : Rejection(.signatureMismatch, "no v1 signature in Stripe-Signature matches the body")
    }

    /// Comma-separated `key=value` items: exactly one `t` (strict Unix seconds), at least one and
    /// at most `SchemeHeaders.maximumSignatures` `v1` (64 hex digits each); items with other keys
    /// are skipped. No spaces, no empty items.
    public static func parseHeader(_ text: String) -> Result<Header, Rejection> {
        var timestamp: (String, Int64)?
        var signatures: [Digest32] = []
        var items = 0
        for item in text.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            items += 1
            guard items <= 4 * SchemeHeaders.maximumSignatures else {
                return .failure(Rejection(.signatureMalformed, "Stripe-Signature has too many items"))
            }
            guard let eq = item.firstIndex(of: UInt8(ascii: "=")), eq != item.startIndex else {
                return .failure(Rejection(.signatureMalformed, "Stripe-Signature items must be key=value"))
            }
            let key = item[item.startIndex..<eq]
            let value = item[item.index(after: eq)...]
            if key.elementsEqual("t".utf8) {
                guard timestamp == nil else {
                    return .failure(Rejection(.timestampInvalid, "Stripe-Signature has more than one t"))
                }
                guard let seconds = TimestampWindow.parseTimestamp(value) else {
                    return .failure(Rejection(.timestampInvalid, "Stripe-Signature t must be Unix seconds (digits only)"))
                }
                timestamp = (String(decoding: value, as: UTF8.self), seconds)
            } else if key.elementsEqual("v1".utf8) {
                guard signatures.count < SchemeHeaders.maximumSignatures else {
                    return .failure(Rejection(.signatureMalformed, "Stripe-Signature has more than \(SchemeHeaders.maximumSignatures) v1 signatures"))
                }
                guard let digest = Digest32(hex: value) else {
                    return .failure(Rejection(.signatureMalformed, "Stripe-Signature v1 must be 64 hex digits"))
                }
                signatures.append(digest)
            }
        }
        guard let timestamp else { return .failure(Rejection(.timestampMissing, "Stripe-Signature has no t")) }
        guard !signatures.isEmpty else { return .failure(Rejection(.signatureMissing, "Stripe-Signature has no v1 signature")) }
        return .success(Header(timestampText: timestamp.0, timestamp: timestamp.1, signatures: signatures))
    }

    public static func sign(secret: [UInt8], timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=" + HMACSHA256Key(key: secret).authenticate(Array("\(timestamp).".utf8) + body).hex
    }
}
