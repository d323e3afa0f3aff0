/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`. GitHub signs no
/// time, so there is no window: a captured delivery can be replayed until its
/// `X-GitHub-Delivery` id leaves the dedup ledger. `ping` events are signed the same way and
/// pass through to the app.
public struct GitHubSignatureScheme: SignatureScheme {
    public static let signatureHeader = "X-Hub-Signature-256"
    public static let deliveryHeader = "X-GitHub-Delivery"
    static let prefix = Array("sha256=".utf8)

    static let check = BodySignature(header: signatureHeader, prefix: prefix, encoding: .hex,
                                      expected: "sha256= followed by 64 hex digits")

    private let keys: HMACKeyRing

    public init(secrets: [[UInt8]]) { keys = HMACKeyRing(secrets: secrets) }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        Self.check.verify(keys: keys, headers: headers, body: body)
    }

    /// `sha256=` (exactly, lower case) followed by 64 hex digits of either case.
    public static func parseSignature(_ text: String) -> Digest32? {
        check.parse(text)
    }

    public static func sign(secret: [UInt8], body: [UInt8]) -> String {
        "sha256=" + HMACSHA256Key(key: secret).authenticate(body).hex
    }
}
