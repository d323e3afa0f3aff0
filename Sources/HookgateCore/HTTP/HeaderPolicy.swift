/// Which inbound headers reach the upstream, which are the gateway's own, and what a valid
/// header looks like. Names compare case-insensitively, as HTTP requires.
public enum HeaderPolicy {
    /// Hop-by-hop headers (RFC 9110 §7.6.1) and framing headers the gateway recomputes:
    /// never forwarded.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "content-length", "host",
    ]

    /// Headers the gateway sets on every forward; inbound copies are dropped so a client cannot
    /// choose their values (X-Forwarded-For is appended to, the rest are replaced).
    public static let gatewaySet: Set<String> = ["x-forwarded-proto", "x-forwarded-host"]

    /// Prefix of the names the gateway owns; inbound headers with it are removed.
    public static let gatewayPrefix = "x-hookgate-"

    /// Whether an inbound header is dropped before forwarding. `connectionListed` holds the
    /// lower-cased names the inbound `Connection` header declared hop-by-hop.
    /// Compares without allocating: this runs for every header of every forward and answer.
    public static func isDroppedWhenForwarding(_ name: String, connectionListed: Set<String> = []) -> Bool {
        name.withUTF8Bytes { isDroppedWhenForwarding($0, connectionListed: connectionListed) }
    }

    /// The same for a name given as bytes: the prefixes, then the names of `hopByHop` and
    /// `gatewaySet` by length (a unit test checks that every one of them is matched here).
    public static func isDroppedWhenForwarding(_ name: UnsafeBufferPointer<UInt8>, connectionListed: Set<String> = []) -> Bool {
        if hasPrefixIgnoringCase(name, proxyPrefix) || hasPrefixIgnoringCase(name, ownedPrefix) { return true }
        let listed: Bool
        switch name.count {
        case 2: listed = ASCIICase.equal(name, "te")
        case 4: listed = ASCIICase.equal(name, "host")
        case 7: listed = ASCIICase.equal(name, "trailer") || ASCIICase.equal(name, "upgrade")
        case 10: listed = ASCIICase.equal(name, "connection") || ASCIICase.equal(name, "keep-alive")
        case 14: listed = ASCIICase.equal(name, "content-length")
        case 16: listed = ASCIICase.equal(name, "x-forwarded-host")
        case 17: listed = ASCIICase.equal(name, "transfer-encoding") || ASCIICase.equal(name, "x-forwarded-proto")
        default: listed = false
        }
        if listed { return true }
        return !connectionListed.isEmpty && connectionListed.contains(ASCIICase.lowercased(name))
    }

    private static let proxyPrefix: StaticString = "proxy-"
    private static let ownedPrefix: StaticString = "x-hookgate-"

    static func hasPrefixIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { ASCIICase.hasLowercasePrefix(bytes, $0) }
    }

    /// Whether an inbound request header is left out of the forward although the general rule
    /// above keeps it:
    /// - names with `_`: CGI and WSGI servers read `X_Forwarded_Host` as `X-Forwarded-Host`,
    ///   so an underscore spelling would slip past every rule here (nginx drops them by default);
    /// - `ce-*`: the sender uses structured mode only, and a CloudEvents SDK that sees one
    ///   `ce-` header switches to binary mode and reads the event's id and type from unsigned
    ///   headers;
    /// - `Expect`: hookgate already answered it (nginx and Envoy drop it too);
    /// - `X-Real-IP` and `Forwarded`, unless `trustedPeer`: only a trusted proxy may say who
    ///   the client is.
    public static func isDroppedFromRequest(_ name: UnsafeBufferPointer<UInt8>, trustedPeer: Bool) -> Bool {
        if name.contains(UInt8(ascii: "_")) || hasPrefixIgnoringCase(name, cloudEventsPrefix) { return true }
        if ASCIICase.equal(name, "expect") { return true }
        return !trustedPeer && (ASCIICase.equal(name, "x-real-ip") || ASCIICase.equal(name, "forwarded"))
    }
    private static let cloudEventsPrefix: StaticString = "ce-"

    /// Names the route's `add_headers` may not use: those the gateway owns or recomputes.
    public static func isReservedForAddHeaders(_ name: String) -> Bool {
        let lower = name.withUTF8Bytes { ASCIICase.lowercased($0) }
        return isDroppedWhenForwarding(lower) || lower == "x-forwarded-for" || lower == "x-request-id"
            || lower.utf8.starts(with: "x-vecu-".utf8)
    }

    /// RFC 9110 token characters.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Visible ASCII, space and tab; no CR, LF, NUL or other controls.
    public static func isValidValue(_ value: String) -> Bool {
        value.withUTF8Bytes { bytes in
            PlainBytes.allPlain(UnsafeRawBufferPointer(bytes)) || bytes.allSatisfy { c in c == 0x09 || (c >= 0x20 && c != 0x7F) }
        }
    }

    /// The names listed in a `Connection` header value, ASCII lower-cased (a Unicode mapping
    /// would turn `\u{212A}eep-alive` into `keep-alive`).
    public static func connectionListed(_ value: String) -> Set<String> {
        var names: Set<String> = []
        value.withUTF8Bytes { bytes in
            forEachListElement(bytes) { names.insert(ASCIICase.lowercased($0)) }
        }
        return names
    }

    /// The elements of a comma-separated header value (RFC 9110 §5.6.1), spaces and tabs around
    /// them trimmed, empty ones skipped.
    static func forEachListElement(_ value: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var k = 0
        while k < value.count {
            var end = k
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var start = k
            let next = end + 1
            while start < end, value[start] == 0x20 || value[start] == 0x09 { start += 1 }
            while end > start, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
            if start < end { body(UnsafeBufferPointer(rebasing: value[start..<end])) }
            k = next
        }
    }

    /// A sender's `X-Request-Id` is kept only if it is short and plain; otherwise one is generated.
    public static func isAcceptableRequestID(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || "-_.:".utf8.contains(c)
        }
    }
}
