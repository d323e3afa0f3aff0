/// The stages a request passes before it may be forwarded, in order: method, signature and
/// timestamp (on the raw bytes), then the envelope (parsed only once authentic), then the
/// consistency of the delivery headers with the signed body. Schemes other than `vecu` have no
/// envelope: their event id comes from where the route's `EventIdentity` says, once authentic.
/// De-duplication comes after. Every comparison here is of bytes: `String ==` is canonical
/// equivalence, under which an NFD header would match an NFC body although they name different events.
public struct EventAdmission: Sendable {
    public let scheme: any SignatureScheme
    public let identity: EventIdentity
    /// The `X-Hookgate-Verified` value.
    public let verifiedBy: String
    /// The ledger key's source for events without an envelope.
    public let source: String

    public init(scheme: any SignatureScheme, identity: EventIdentity = .envelope, verifiedBy: String = "hmac-sha256",
                source: String = "") {
        self.scheme = scheme
        self.identity = identity
        self.verifiedBy = verifiedBy
        self.source = source
    }

    /// `body` is hashed where it lies; `contiguousBody` is called at most once, only after the
    /// signature has been verified, to parse the envelope.
    public func admit(
        method: String,
        headers: some HeaderFields,
        body: some ByteSegments,
        contiguousBody: () -> UnsafeRawBufferPointer,
        now: Int64
    ) -> Result<AdmittedEvent, Rejection> {
        guard method.hasSameBytes(as: "POST") else {
            return .failure(Rejection(.methodNotAllowed, "only POST is accepted on this path"))
        }
        if let rejection = scheme.verify(headers: headers, body: body, now: now) {
            return .failure(rejection)
        }
        let idSource: EventIDSource
        switch identity {
        case .none: return .success(AdmittedEvent(id: nil, type: nil, source: source, verifiedBy: verifiedBy))
        case .source(let s): idSource = s
        case .envelope: return admitEnvelope(headers: headers, contiguousBody: contiguousBody)
        }
        switch idSource.eventID(headers: headers, contiguousBody: contiguousBody) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let id): return .success(AdmittedEvent(id: id, type: nil, source: source, verifiedBy: verifiedBy))
        }
    }

    private func admitEnvelope(headers: some HeaderFields, contiguousBody: () -> UnsafeRawBufferPointer) -> Result<AdmittedEvent, Rejection> {
        let envelope: CloudEventEnvelope
        switch CloudEventEnvelope.parse(contiguousBody()) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let e): envelope = e
        }
        if let mismatch = Self.mismatch(headers, "X-VECU-Event-ID", repeats: envelope.id, "id", .eventIDMismatch)
            ?? Self.mismatch(headers, "X-VECU-Event-Type", repeats: envelope.type, "type", .eventTypeMismatch) {
            return .failure(mismatch)
        }
        return .success(AdmittedEvent(id: envelope.id, type: envelope.type, source: envelope.source, verifiedBy: verifiedBy))
    }

    /// A header that, when present, must say what the body says: its bytes are compared with the
    /// body's value, without making a string of them.
    private static func mismatch(_ headers: some HeaderFields, _ name: String, repeats bodyValue: String, _ field: String,
                                 _ reason: Reason) -> Rejection? {
        headers.withValue(named: name) { value in
            switch value {
            case .missing: return nil
            case .one(let v) where bodyValue.hasSameBytes(as: v): return nil
            case .one: return Rejection(reason, "\(name) differs from the body's \(field)")
            case .repeated: return Rejection(reason, "\(name) appears more than once")
            }
        }
    }
}

/// Where a route's de-duplication id comes from.
public enum EventIdentity: Sendable, Equatable {
    /// The CloudEvents envelope's `source` and `id` (`vecu`).
    case envelope
    case source(EventIDSource)
    /// The route forwards without de-duplication.
    case none
}
