/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, raw body)>`. Shopify signs no
/// time: a captured delivery can be replayed until its `X-Shopify-Webhook-Id` leaves the ledger.
public struct ShopifySignatureScheme: SignatureScheme {
    public static let signatureHeader = "X-Shopify-Hmac-Sha256"
    public static let webhookIDHeader = "X-Shopify-Webhook-Id"

    static let check = BodySignature(header: signatureHeader, prefix: [], encoding: .base64,
                                      expected: "44 characters of padded base64")

    private let keys: HMACKeyRing

    public init(secrets: [[UInt8]]) { keys = HMACKeyRing(secrets: secrets) }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        Self.check.verify(keys: keys, headers: headers, body: body)
    }

    /// Exactly one padded standard-base64 digest, nothing around it.
    public static func parseSignature(_ text: String) -> Digest32? {
        check.parse(text)
    }

    public static func sign(secret: [UInt8], body: [UInt8]) -> String {
        SignatureEncoding.base64.text(HMACSHA256Key(key: secret).authenticate(body))
    }
}
