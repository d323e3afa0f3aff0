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
        switch self {
        case .vecu:
            return VecuSignatureScheme(secrets: verify.secrets.map(\.bytes), toleranceSeconds: verify.tolerance.seconds)
        }
    }
}
