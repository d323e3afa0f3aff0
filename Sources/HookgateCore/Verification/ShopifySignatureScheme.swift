/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, raw body)>`. Shopify signs no
/// time: a captured delivery can be replayed until its `X-Shopify-Webhook-Id` leaves the ledger.
public struct ShopifySignatureScheme: SignatureScheme {
    public static let signatureHeader = "X-Shopify-Hmac-Sha256"
    public static let webhookIDHeader = "X-Shopify-Webhook-Id"

    private let keys: HMACKeyRing

    public init(secrets: [[UInt8]]) { keys = HMACKeyRing(secrets: secrets) }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        let text: String
        switch SchemeHeaders.signature(headers, Self.signatureHeader) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        guard let claimed = Self.parseSignature(text) else {
            return Rejection(.signatureMalformed, "\(Self.signatureHeader) must be 44 characters of padded base64")
        }
        guard keys.matchesAny([claimed], { emit in body.forEachSegment(emit) }) else {
            return Rejection(.signatureMismatch, "\(Self.signatureHeader) does not match the body")
        }
        return nil
    }

    /// Exactly one padded standard-base64 digest, nothing around it.
    public static func parseSignature(_ text: String) -> Digest32? {
        Digest32.parse(text, prefix: [], encoding: .base64)
    }

    public static func sign(secret: [UInt8], body: [UInt8]) -> String {
        SignatureEncoding.base64.text(HMACSHA256Key(key: secret).authenticate(body))
    }
}
