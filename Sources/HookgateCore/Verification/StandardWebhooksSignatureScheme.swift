/// Standard Webhooks (standardwebhooks.com, also Svix): `webhook-signature: v1,<base64>` in a
/// space-separated list, each an HMAC-SHA256 of `"{webhook-id}.{webhook-timestamp}.{raw body}"`
/// under the base64-decoded `whsec_` secret; any v1 may match, other versions (`v1a`, asymmetric)
/// are skipped. Svix's `svix-id`/`svix-timestamp`/`svix-signature` names are read when the
/// request carries no `webhook-signature`. The event id is `webhook-id`.
public struct StandardWebhooksSignatureScheme: SignatureScheme {
    /// The three header names of one spelling.
    public struct Names: Sendable {
        public var id: String
        public var timestamp: String
        public var signature: String
    }
    public static let standard = Names(id: "webhook-id", timestamp: "webhook-timestamp", signature: "webhook-signature")
    public static let svix = Names(id: "svix-id", timestamp: "svix-timestamp", signature: "svix-signature")
    static let version = Array("v1,".utf8)

    private let keys: HMACKeyRing
    public let window: TimestampWindow

    /// `secrets` are the decoded key bytes (the loader strips `whsec_` and decodes the base64).
    public init(secrets: [[UInt8]], toleranceSeconds: Int64) {
        keys = HMACKeyRing(secrets: secrets)
        window = TimestampWindow(toleranceSeconds: toleranceSeconds)
    }

    /// Which spelling a request uses: Svix's only when it has no standard signature header.
    public static func names(in headers: some HeaderFields) -> Names {
        if case .missing = headers.value(named: standard.signature), headers.value(named: svix.signature) != .missing {
            return svix
        }
        return standard
    }

    public func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection? {
        let names = Self.names(in: headers)
        let id: String
        switch headers.value(named: names.id) {
        case .missing: return Rejection(.signatureMalformed, "\(names.id) header is required (it is signed)")
        case .repeated: return Rejection(.signatureMalformed, "\(names.id) header appears more than once")
        case .one(let v): id = v
        }
        let stamp: (text: String, seconds: Int64)
        switch SchemeHeaders.timestamp(headers, names.timestamp) {
        case .failure(let r): return r
        case .success(let v): stamp = v
        }
        let text: String
        switch SchemeHeaders.signature(headers, names.signature) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        guard let claimed = Self.parseSignatures(text) else {
            return Rejection(.signatureMalformed, "\(names.signature) must be space-separated v1,<base64> entries")
        }
        guard !claimed.isEmpty else { return Rejection(.signatureMissing, "\(names.signature) has no v1 signature") }
        guard window.contains(stamp.seconds, now: now) else { return SchemeHeaders.outside(names.timestamp, window) }
        let matched = keys.matchesAny(claimed) { emit in
            emitText(id, emit)
            withUnsafeBytes(of: UInt8(ascii: ".")) { emit($0) }
            emitText(stamp.text, emit)
            withUnsafeBytes(of: UInt8(ascii: ".")) { emit($0) }
            body.forEachSegment(emit)
        }
        return matched ? nil : Rejection(.signatureMismatch, "no v1 signature in \(names.signature) matches the body")
    }

    /// The v1 digests of a signature list, nil when the list is malformed: entries are
    /// `version,signature` separated by single spaces; a `v1` entry must carry 44 characters of
    /// padded base64 (32 bytes); other versions are skipped; at most
    /// `SchemeHeaders.maximumSignatures` entries.
    public static func parseSignatures(_ text: String) -> [Digest32]? {
        var result: [Digest32] = []
        var entries = 0
        for entry in text.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false) {
            entries += 1
            guard entries <= SchemeHeaders.maximumSignatures else { return nil }
            guard let comma = entry.firstIndex(of: UInt8(ascii: ",")), comma != entry.startIndex else { return nil }
            if entry.starts(with: version) {
                guard let digest = SignatureEncoding.base64.digest(entry.dropFirst(version.count)) else { return nil }
                result.append(digest)
            }
        }
        return result
    }

    /// The `webhook-signature` value a sender with the decoded `secret` would send.
    public static func sign(secret: [UInt8], id: String, timestamp: Int64, body: [UInt8]) -> String {
        "v1," + SignatureEncoding.base64.text(HMACSHA256Key(key: secret).authenticate(Array("\(id).\(timestamp).".utf8) + body))
    }

    /// The key bytes of a `whsec_<base64>` secret (the prefix is optional, as in the reference
    /// libraries); nil when the rest is not canonical padded base64.
    public static func decodeSecret(_ text: [UInt8]) -> [UInt8]? {
        let prefix = Array("whsec_".utf8)
        return Base64.decode(text.starts(with: prefix) ? Array(text.dropFirst(prefix.count)) : text)
    }
}
