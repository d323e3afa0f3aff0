/// The check shared by the schemes that sign the raw body alone (GitHub, Shopify): one header
/// holding one digest, `prefix` then hex or base64, matched against every secret.
struct BodySignature: Sendable {
    let header: String
    let prefix: [UInt8]
    let encoding: SignatureEncoding
    /// What `signature_malformed` says the header must look like.
    let expected: String

    func verify(keys: HMACKeyRing, headers: some HeaderFields, body: some ByteSegments) -> Rejection? {
        let text: String
        switch SchemeHeaders.signature(headers, header) {
        case .failure(let r): return r
        case .success(let v): text = v
        }
        guard let claimed = parse(text) else {
            return Rejection(.signatureMalformed, "\(header) must be \(expected)")
        }
        guard keys.matchesAny([claimed], { emit in body.forEachSegment(emit) }) else {
            return Rejection(.signatureMismatch, "\(header) does not match the body")
        }
        return nil
    }

    func parse(_ text: String) -> Digest32? {
        Digest32.parse(text, prefix: prefix, encoding: encoding)
    }
}
