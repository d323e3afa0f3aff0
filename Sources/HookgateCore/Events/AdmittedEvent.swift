/// What admission learned about an authentic request: the scheme that verified it and, when the
/// scheme or the route names one, the sender's event id (the de-duplication key). Only `vecu`
/// has a CloudEvents envelope, so `type` is set only there and `source` is otherwise the scheme's
/// name (the ledger is per route, so it only has to be fixed for the route).
///
/// A class, not a struct: the request path hands it to the ledger, the forward, the headers and
/// the access log, and each copy of a struct of four strings retains all four (profiled at about
/// twenty copies per request); a reference is one retain.
public final class AdmittedEvent: Sendable, Equatable {
    public let id: String?
    public let type: String?
    public let source: String
    /// The `X-Hookgate-Verified` value.
    public let verifiedBy: String

    public static func == (a: AdmittedEvent, b: AdmittedEvent) -> Bool {
        a === b || (a.id == b.id && a.type == b.type && a.source == b.source && a.verifiedBy == b.verifiedBy)
    }

    public init(id: String?, type: String?, source: String, verifiedBy: String) {
        self.id = id
        self.type = type
        self.source = source
        self.verifiedBy = verifiedBy
    }

    /// The ledger key, or nil when the event has no id and is forwarded without de-duplication.
    public var key: EventKey? { id.map { EventKey(source: source, id: $0) } }
}

/// Where a route's event id comes from: a header (read before or after the signature, it is
/// covered either way by being in the same request), or a JSON value in the body, read only after
/// the signature has passed. Config syntax: `header:NAME` or `body:/json/pointer` (RFC 6901).
public enum EventIDSource: Sendable, Equatable {
    case header(String)
    case body(JSONPointer)
    /// `webhook-id`, or `svix-id` when the request uses Svix's names: the same choice the
    /// Standard Webhooks scheme made, so the id is always the signed one.
    case standardWebhooksID

    /// Parses the config text; nil when it is neither form.
    public init?(parsing text: String) {
        if text.hasPrefix("header:") {
            let name = String(text.dropFirst("header:".count))
            guard HeaderPolicy.isValidName(name) else { return nil }
            self = .header(name)
        } else if text.hasPrefix("body:") {
            guard let pointer = JSONPointer(parsing: String(text.dropFirst("body:".count))), !pointer.tokens.isEmpty else { return nil }
            self = .body(pointer)
        } else {
            return nil
        }
    }

    /// The id in a request already verified, or nil when there is none usable: absent, not a
    /// non-empty string of at most `CloudEventEnvelope.maximumFieldBytes`, or a body that is not
    /// valid JSON or names the key twice. Such an event is forwarded without de-duplication: a
    /// possible duplicate, never a loss. A repeated id header is refused (two readers, two ids).
    public func eventID(headers: some HeaderFields, contiguousBody: () -> UnsafeRawBufferPointer) -> Result<String?, Rejection> {
        let name: String
        switch self {
        case .header(let n): name = n
        case .standardWebhooksID: name = StandardWebhooksSignatureScheme.names(in: headers).id
        case .body(let pointer):
            var scanner = JSONScanner(contiguousBody())
            guard case .string(let s)? = try? scanner.scanValue(at: pointer) else { return .success(nil) }
            return .success(Self.usable(s))
        }
        switch headers.value(named: name) {
        case .missing: return .success(nil)
        case .one(let v): return .success(Self.usable(v))
        case .repeated: return .failure(Rejection(.eventIDMismatch, "\(name) appears more than once"))
        }
    }

    private static func usable(_ id: String) -> String? {
        id.isEmpty || id.utf8.count > CloudEventEnvelope.maximumFieldBytes ? nil : id
    }
}

/// An RFC 6901 JSON pointer (`/data/object/id`), kept as its unescaped reference tokens.
public struct JSONPointer: Sendable, Equatable {
    public var tokens: [[UInt8]]

    /// nil unless `text` is empty or starts with `/` and every `~` is `~0` or `~1`.
    public init?(parsing text: String) {
        var bytes = Array(text.utf8)
        guard bytes.isEmpty || bytes.first == UInt8(ascii: "/") else { return nil }
        if !bytes.isEmpty { bytes.removeFirst() } else { tokens = []; return }
        var result: [[UInt8]] = []
        for raw in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            var token: [UInt8] = []
            var tilde = false
            for c in raw {
                if tilde {
                    switch c {
                    case UInt8(ascii: "0"): token.append(UInt8(ascii: "~"))
                    case UInt8(ascii: "1"): token.append(UInt8(ascii: "/"))
                    default: return nil
                    }
                    tilde = false
                } else if c == UInt8(ascii: "~") {
                    tilde = true
                } else {
                    token.append(c)
                }
            }
            guard !tilde else { return nil }
            result.append(token)
        }
        tokens = result
    }

    public init(_ tokens: [String]) { self.tokens = tokens.map { Array($0.utf8) } }
}
