/// `host:port` or `[v6]:port`, as written in `listen`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080`, `localhost:8080`.
    public init?(parsing text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return nil }
        }
        guard !hostPart.isEmpty, !portPart.isEmpty, portPart.count <= 5,
              portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = UInt16(portPart) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The upstream's URL, split into what the connection pool needs.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable { case http, https }
    public var scheme: Scheme
    public var host: String
    public var port: UInt16
    /// Path and query sent in the request line, e.g. `/webhooks/vecu`.
    public var target: String

    /// Value for the `Host` header sent upstream.
    public var authority: String {
        Self.authority(scheme: scheme, host: host, port: port)
    }

    static func authority(scheme: Scheme, host: String, port: UInt16) -> String {
        let h = host.contains(":") ? "[\(host)]" : host
        let defaultPort: UInt16 = scheme == .http ? 80 : 443
        return port == defaultPort ? h : "\(h):\(port)"
    }

    public var description: String { "\(scheme.rawValue)://\(authority)\(target)" }

    /// Parses `http(s)://host[:port][/path[?query]]`. No user info, no fragment.
    public init?(parsing text: String) {
        let scheme: Scheme
        let rest: Substring
        if text.hasPrefix("http://") {
            scheme = .http
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            scheme = .https
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty { target = "/" } else if target.hasPrefix("?") { target = "/" + target }
        guard !authority.isEmpty, !authority.contains("@"), !target.contains("#"),
              !target.contains(where: { $0 == " " || $0.isNewline }) else { return nil }
        guard let (host, port) = ListenAddress.hostAndPort(authority, defaultPort: scheme == .http ? 80 : 443) else { return nil }
        self.host = host
        self.port = port
        self.scheme = scheme
        self.target = target
    }
}

extension ListenAddress {
    /// `host[:port]` or `[v6][:port]` of a URL's authority, with `defaultPort` when none is given;
    /// nil for an empty host, port 0 or a stray colon.
    static func hostAndPort(_ authority: Substring, defaultPort: UInt16) -> (String, UInt16)? {
        let host: String
        let port: UInt16
        if let parsed = ListenAddress(parsing: String(authority)) {
            host = parsed.host
            port = parsed.port
        } else if authority.hasPrefix("[") {
            guard authority.hasSuffix("]") else { return nil }
            host = String(authority.dropFirst().dropLast())
            port = defaultPort
        } else {
            guard !authority.contains(":") else { return nil }
            host = String(authority)
            port = defaultPort
        }
        guard !host.isEmpty, port != 0 else { return nil }
        return (host, port)
    }
}
