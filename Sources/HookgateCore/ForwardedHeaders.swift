/// The header set sent to the upstream: the inbound headers less hop-by-hop and gateway-owned
/// ones, then the forwarding headers, the verification headers and the route's static headers.
public struct ForwardedHeaders {
    /// Facts about the inbound request that the added headers report.
    public struct Context {
        public var clientAddress: String
        public var scheme: String
        public var requestID: String
        public var envelope: CloudEventEnvelope

        public init(clientAddress: String, scheme: String, requestID: String, envelope: CloudEventEnvelope) {
            self.clientAddress = clientAddress
            self.scheme = scheme
            self.requestID = requestID
            self.envelope = envelope
        }
    }

    /// `inbound` in arrival order; returns the upstream's headers in sending order (without Host
    /// and Content-Length, which the connection sets).
    public static func build(
        inbound: [(name: String, value: String)],
        context: Context,
        addHeaders: [(name: String, value: String)]
    ) -> [(name: String, value: String)] {
        var connectionListed: Set<String> = []
        var forwardedFor: String?
        var host: String?
        for (name, value) in inbound {
            if HeaderList.sameName(name, "connection") {
                connectionListed.formUnion(HeaderPolicy.connectionListed(value))
            } else if HeaderList.sameName(name, "x-forwarded-for") {
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            } else if HeaderList.sameName(name, "host") {
                host = host ?? value
            }
        }
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(inbound.count + 8 + addHeaders.count)
        for header in inbound {
            if HeaderList.sameName(header.name, "x-forwarded-for") || HeaderList.sameName(header.name, "x-request-id") { continue }
            if HeaderPolicy.isDroppedWhenForwarding(header.name, connectionListed: connectionListed) { continue }
            out.append(header)
        }
        out.append(("X-Forwarded-For", forwardedFor.map { "\($0), \(context.clientAddress)" } ?? context.clientAddress))
        out.append(("X-Forwarded-Proto", context.scheme))
        if let host { out.append(("X-Forwarded-Host", host)) }
        out.append(("X-Request-Id", context.requestID))
        out.append(("X-Hookgate-Verified", "hmac-sha256"))
        out.append(("X-Hookgate-Event-Id", headerSafe(context.envelope.id)))
        out.append(("X-Hookgate-Event-Type", headerSafe(context.envelope.type)))
        out.append(contentsOf: addHeaders)
        return out
    }

    /// Body fields may hold characters a header cannot carry (control characters after JSON
    /// unescaping); those become `?` so the header stays well-formed.
    public static func headerSafe(_ value: String) -> String {
        if HeaderPolicy.isValidValue(value) { return value }
        return String(value.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }
}
