/// Finds the route for an inbound request path (exact match; the query string is ignored).
public struct RouteTable<Route>: Sendable where Route: Sendable {
    private let byPath: [String: Route]

    public init(_ routes: [(path: String, route: Route)]) {
        var map: [String: Route] = [:]
        for entry in routes { map[entry.path] = entry.route }
        byPath = map
    }

    /// `target` is the request-target as received (`/webhooks/vecu?x=1`).
    public func route(forTarget target: String) -> Route? {
        // The query starts at the first `?` byte (searched in the UTF-8 bytes, not as Characters).
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return byPath[String(Substring(target.utf8[..<q]))] }
        return byPath[target]
    }
}
