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
        for i in 0..<inbound.count {
            if context.peerTrusted, inbound.nameIs(i, "x-forwarded-proto") {
                keptProto = true
            } else if context.peerTrusted, inbound.nameIs(i, "x-forwarded-host") {
                keptHost = true
            } else if inbound.nameIs(i, "connection") {
                connectionListed.formUnion(HeaderPolicy.connectionListed(inbound.value(at: i)))
            } else if inbound.nameIs(i, "x-forwarded-for") {
                let value = inbound.value(at: i)
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            } else if host == nil, inbound.nameIs(i, "host") {
                host = inbound.value(at: i)
            }
        }
        for i in 0..<inbound.count {
            if inbound.nameIs(i, "x-forwarded-for") || inbound.nameIs(i, "x-request-id") { continue }
            let kept = (keptProto && inbound.nameIs(i, "x-forwarded-proto")) || (keptHost && inbound.nameIs(i, "x-forwarded-host"))
            if !kept, inbound.withFieldBytes(i, { name, _ in
                HeaderPolicy.isDroppedWhenForwarding(name, connectionListed: connectionListed)
                    || HeaderPolicy.isDroppedFromRequest(name, trustedPeer: context.peerTrusted)
            }) {
                continue
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
}
