/// A way of proving that a request came from the sender. Chosen per route by name from the
/// configuration; the request never chooses it.
public protocol SignatureScheme: Sendable {
    /// nil when the request is authentic and fresh at `now` (Unix seconds); otherwise why not.
    /// Looks only at headers and raw body bytes: the body is not parsed before this passes.
    func verify(headers: some HeaderFields, body: some ByteSegments, now: Int64) -> Rejection?
}

extension SignatureSchemeName {
    /// The scheme for a route's verify settings.
    public func makeScheme(_ verify: Configuration.Verify) -> any SignatureScheme {
        let secrets = verify.secrets.map(\.bytes)
        let tolerance = verify.tolerance.seconds
        switch self {
        case .vecu: return VecuSignatureScheme(secrets: secrets, toleranceSeconds: tolerance)
        case .standardWebhooks: return StandardWebhooksSignatureScheme(secrets: secrets, toleranceSeconds: tolerance)
        case .stripe: return StripeSignatureScheme(secrets: secrets, toleranceSeconds: tolerance)
        case .github: return GitHubSignatureScheme(secrets: secrets)
        case .slack: return SlackSignatureScheme(secrets: secrets, toleranceSeconds: tolerance)
        case .shopify: return ShopifySignatureScheme(secrets: secrets)
        case .hmac:
            let h = verify.hmac!  // the loader refuses an hmac route without its settings
            var idHeader: String?
            if case .header(let name)? = h.id { idHeader = name }
            return GenericHMACSignatureScheme(secrets: secrets, header: h.header, prefix: h.prefix, encoding: h.encoding,
                                              parts: h.signed, timestampHeader: h.timestampHeader, idHeader: idHeader,
                                              toleranceSeconds: tolerance)
        }
    }
}

extension EventAdmission {
    /// The admission stages for a route: its scheme, where its event id comes from, and the
    /// `X-Hookgate-Verified` value (`hmac-sha256` for `vecu`, as before; the scheme's name otherwise).
    public init(route: Configuration.Route) {
        let name = route.verify.scheme
        self.init(scheme: name.makeScheme(route.verify), identity: route.eventIdentity,
                  verifiedBy: name == .vecu ? "hmac-sha256" : name.rawValue, source: name.rawValue)
    }
}
