import Yams

/// `routes[i].verify` keys of the generic `hmac` scheme.
public struct GenericHMACSettings: Sendable, Equatable {
    /// `header`: the signature header. Required.
    public var header: String
    /// `prefix`: text before the digest (e.g. `sha256=`). Default empty.
    public var prefix = ""
    /// `encoding`: `hex` or `base64`. Default hex.
    public var encoding: SignatureEncoding = .hex
    /// `signed`: the signed message template. Default `{body}`.
    public var signed: [GenericHMACSignatureScheme.Part] = [.body]
    /// `timestamp_header`: the signed Unix-seconds header, checked against `tolerance`. Optional.
    public var timestampHeader: String?
    /// `id`: `header:NAME` or `body:/json/pointer`. Optional; without it the route has no dedup.
    public var id: EventIDSource?

    public init(header: String) { self.header = header }
}

extension SignatureSchemeName {
    /// The `verify` keys this scheme accepts besides `scheme`, `secrets` and `tolerance`.
    var extraKeys: [String] {
        self == .hmac ? ["header", "prefix", "encoding", "signed", "timestamp_header", "id"] : []
    }

    /// Whether the scheme checks a signed time (and so reads `tolerance`).
    var signsTime: Bool {
        switch self {
        case .vecu, .standardWebhooks, .stripe, .slack: return true
        case .github, .shopify: return false
        case .hmac: return true  // with timestamp_header
        }
    }

    /// Fewest key bytes a secret may have. The platform issues 32+ characters for `vecu`; the
    /// Standard Webhooks spec asks for 24 to 64 random bytes. GitHub, Slack and Shopify document
    /// no minimum (GitHub's own test vector's secret is 26 bytes), so any non-empty secret is
    /// taken; the generic scheme asks for 16, what an HMAC key needs against brute force.
    public var minimumSecretBytes: Int {
        switch self {
        case .vecu: return 32
        case .standardWebhooks: return 24
        case .stripe, .github, .slack, .shopify: return 1
        case .hmac: return 16
        }
    }

    /// Where the scheme itself finds the event id (`dedup.id` overrides it).
    public var defaultIdentity: EventIdentity {
        switch self {
        case .vecu: return .envelope
        case .standardWebhooks: return .source(.standardWebhooksID)
        case .stripe: return .source(.body(JSONPointer(["id"])))
        case .github: return .source(.header(GitHubSignatureScheme.deliveryHeader))
        case .slack: return .source(.body(JSONPointer(["event_id"])))
        case .shopify: return .source(.header(ShopifySignatureScheme.webhookIDHeader))
        case .hmac: return .none
        }
    }
}

extension Configuration.Route {
    /// Where this route's de-duplication id comes from.
    public var eventIdentity: EventIdentity {
        if let id = dedup.id { return .source(id) }
        if verify.scheme == .hmac { return verify.hmac?.id.map { .source($0) } ?? .none }
        return verify.scheme.defaultIdentity
    }
}

extension Configuration {
    /// Things that are valid but deserve the operator's attention, said at start and by `check`.
    public var warnings: [ConfigurationProblem] {
        routes.enumerated().compactMap { i, route in
            route.eventIdentity == .none
                ? ConfigurationProblem(key: "routes[\(i)].dedup.id",
                                       message: "the \(route.verify.scheme.rawValue) scheme yields no event id here; events are forwarded without de-duplication")
                : nil
        }
    }
}

extension ConfigurationLoader {
    /// Applies a scheme's secret rule to a loaded secret: the minimum length, `whsec_` base64
    /// decoding for Standard Webhooks and the `whsec_` prefix Stripe's secrets carry.
    static func applySecretRule(_ secret: Secret, scheme: SignatureSchemeName, at key: String, reader: inout NodeReader) -> Secret? {
        var secret = secret
        switch scheme {
        case .standardWebhooks:
            guard let bytes = StandardWebhooksSignatureScheme.decodeSecret(secret.bytes) else {
                reader.problem(key, "expected whsec_ followed by base64 (the Standard Webhooks secret format)")
                return nil
            }
            secret.bytes = bytes
        case .stripe:
            guard secret.bytes.starts(with: Array("whsec_".utf8)), secret.bytes.count > 6 else {
                reader.problem(key, "expected a Stripe endpoint secret (whsec_...)")
                return nil
            }
        default: break
        }
        if secret.bytes.count < scheme.minimumSecretBytes {
            reader.problem(key, "secret is \(secret.bytes.count) bytes; at least \(scheme.minimumSecretBytes) are required")
            return nil
        }
        return secret
    }

    /// The generic scheme's keys, each checked and named.
    static func loadGenericHMAC(_ f: [String: Node], at key: String, reader: inout NodeReader) -> GenericHMACSettings? {
        var settings: GenericHMACSettings?
        if let n = reader.required(f, "header", at: key), let text = reader.string(n, at: "\(key).header") {
            if HeaderPolicy.isValidName(text) { settings = GenericHMACSettings(header: text) }
            else { reader.problem("\(key).header", "not a valid header name") }
        }
        if let n = f["prefix"], let text = reader.string(n, at: "\(key).prefix") {
            if text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) { settings?.prefix = text }
            else { reader.problem("\(key).prefix", "expected printable ASCII without spaces") }
        }
        if let n = f["encoding"], let text = reader.string(n, at: "\(key).encoding") {
            if let e = SignatureEncoding(rawValue: text) { settings?.encoding = e }
            else { reader.problem("\(key).encoding", "expected hex or base64, got \"\(text)\"") }
        }
        if let n = f["timestamp_header"], let text = reader.string(n, at: "\(key).timestamp_header") {
            if HeaderPolicy.isValidName(text) { settings?.timestampHeader = text }
            else { reader.problem("\(key).timestamp_header", "not a valid header name") }
        }
        if let n = f["id"], let text = reader.string(n, at: "\(key).id") {
            if let id = EventIDSource(parsing: text) { settings?.id = id }
            else { reader.problem("\(key).id", "expected header:NAME or body:/json/pointer, got \"\(text)\"") }
        }
        if let n = f["signed"], let text = reader.string(n, at: "\(key).signed") {
            switch GenericHMACSignatureScheme.parseTemplate(text) {
            case .failure(let why): reader.problem("\(key).signed", why.message)
            case .success(let parts): settings?.signed = parts
            }
        }
        guard let s = settings else { return nil }
        if s.signed.contains(.timestamp), s.timestampHeader == nil {
            reader.problem("\(key).signed", "uses {timestamp} but timestamp_header is not set")
        }
        if s.timestampHeader != nil, !s.signed.contains(.timestamp) {
            reader.problem("\(key).timestamp_header", "is set but signed does not include {timestamp}, so the time would not be signed")
        }
        if s.signed.contains(.id) {
            guard case .header? = s.id else {
                reader.problem("\(key).signed", "uses {id}, which needs id: header:NAME")
                return nil
            }
        }
        return s
    }
}
