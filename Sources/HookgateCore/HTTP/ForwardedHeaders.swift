/// The header set sent to the upstream: the inbound headers less hop-by-hop and gateway-owned
/// ones (and those `HeaderPolicy.isDroppedFromRequest` names), then the forwarding headers, the
/// verification headers and the route's static headers.
public struct ForwardedHeaders {
    /// Facts about the inbound request that the added headers report.
    public struct Context {
        /// The connection's peer, appended to `X-Forwarded-For`.
        public var clientAddress: String
        public var scheme: String
        public var requestID: String
        public var event: AdmittedEvent
        /// The peer is in `trusted_proxies`: its `X-Forwarded-Proto`, `X-Forwarded-Host`,
        /// `X-Real-IP` and `Forwarded` are passed on instead of replaced or removed.
        public var peerTrusted: Bool

        public init(clientAddress: String, scheme: String, requestID: String, event: AdmittedEvent,
                    peerTrusted: Bool = false) {
            self.clientAddress = clientAddress
            self.scheme = scheme
            self.requestID = requestID
            self.event = event
            self.peerTrusted = peerTrusted
        }
    }

    /// One header to send: an inbound field passed on byte for byte, or one the gateway sets.
    public enum Piece {
        case inbound(Int)
        case set(String, String)
    }

    /// The upstream's headers in sending order (without Host and Content-Length, which the
    /// connection sets), given to `emit` one at a time.
    public static func forEach(
        inbound: HeaderList,
        context: Context,
        addHeaders: [(name: String, value: String)],
        _ emit: (Piece) -> Void
    ) {
        var connectionListed: Set<String> = []
        var forwardedFor: String?
        var host: String?
        var keptProto = false
        var keptHost = false
        let trusted = context.peerTrusted
        inbound.forEachField { _, name, value in
            switch SpecialName(name) {
            case .xForwardedProto where trusted: keptProto = true
            case .xForwardedHost where trusted: keptHost = true
            case .connection: connectionListed.formUnion(HeaderPolicy.connectionListed(String(decoding: value, as: UTF8.self)))
            case .xForwardedFor:
                let text = String(decoding: value, as: UTF8.self)
                forwardedFor = forwardedFor.map { "\($0), \(text)" } ?? text
            case .host where host == nil: host = String(decoding: value, as: UTF8.self)
            default: break
            }
        }
        inbound.forEachField { i, name, _ in
            switch SpecialName(name) {
            case .xForwardedFor, .xRequestID: return
            case .xForwardedProto where keptProto: break
            case .xForwardedHost where keptHost: break
            default:
                if HeaderPolicy.isDroppedWhenForwarding(name, connectionListed: connectionListed)
                    || HeaderPolicy.isDroppedFromRequest(name, trustedPeer: trusted) { return }
            }
            emit(.inbound(i))
        }
        emit(.set("X-Forwarded-For", forwardedFor.map { "\($0), \(context.clientAddress)" } ?? context.clientAddress))
        if !keptProto { emit(.set("X-Forwarded-Proto", context.scheme)) }
        if !keptHost, let host { emit(.set("X-Forwarded-Host", host)) }
        emit(.set("X-Request-Id", context.requestID))
        emit(.set("X-Hookgate-Verified", context.event.verifiedBy))
        if let id = context.event.id { emit(.set("X-Hookgate-Event-Id", headerSafe(id))) }
        if let type = context.event.type { emit(.set("X-Hookgate-Event-Type", headerSafe(type))) }
        for (name, value) in addHeaders { emit(.set(name, value)) }
    }

    /// The upstream request's head: `POST target`, `Host`, the forwarded headers, `Content-Length`.
    public static func requestHead(
        target: String, authority: String, inbound: HeaderList, context: Context,
        addHeaders: [(name: String, value: String)], contentLength: Int
    ) -> [UInt8] {
        var writer = HeadWriter(postTo: target, authority: authority)
        forEach(inbound: inbound, context: context, addHeaders: addHeaders) { piece in
            switch piece {
            case .inbound(let i): writer.add(field: i, of: inbound)
            case .set(let name, let value): writer.add(name, value)
            }
        }
        return writer.finish(contentLength: contentLength)
    }

    /// The same headers as name/value pairs.
    public static func build(
        inbound: HeaderList,
        context: Context,
        addHeaders: [(name: String, value: String)]
    ) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        forEach(inbound: inbound, context: context, addHeaders: addHeaders) { piece in
            switch piece {
            case .inbound(let i): out.append((inbound.name(at: i), inbound.value(at: i)))
            case .set(let name, let value): out.append((name, value))
            }
        }
        return out
    }

    /// Body fields may hold characters a header cannot carry (control characters after JSON
    /// unescaping); those become `?` so the header stays well-formed.
    public static func headerSafe(_ value: String) -> String {
        if HeaderPolicy.isValidValue(value) { return value }
        return String(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }

    /// The inbound names the forward treats specially, told apart by length first.
    enum SpecialName {
        case host, connection, xRequestID, xForwardedFor, xForwardedHost, xForwardedProto, other

        init(_ name: UnsafeBufferPointer<UInt8>) {
            switch name.count {
            case 4 where ASCIICase.equal(name, "host"): self = .host
            case 10 where ASCIICase.equal(name, "connection"): self = .connection
            case 12 where ASCIICase.equal(name, "x-request-id"): self = .xRequestID
            case 15 where ASCIICase.equal(name, "x-forwarded-for"): self = .xForwardedFor
            case 16 where ASCIICase.equal(name, "x-forwarded-host"): self = .xForwardedHost
            case 17 where ASCIICase.equal(name, "x-forwarded-proto"): self = .xForwardedProto
            default: self = .other
            }
        }
    }
}
