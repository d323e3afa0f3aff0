/// How many times a header occurs, and its value when it occurs once.
public enum HeaderValue: Equatable, Sendable {
    case missing
    case one(String)
    case repeated
}

/// Read access to a request's headers, implemented over libevent's header list by the server
/// and over an array in tests. Names compare case-insensitively.
public protocol HeaderFields {
    func value(named name: String) -> HeaderValue
}

/// Headers as a list of pairs (tests, the demo, parsed fixtures).
public struct HeaderList: HeaderFields, Sendable {
    public var pairs: [(name: String, value: String)]
    public init(_ pairs: [(String, String)]) { self.pairs = pairs.map { (name: $0.0, value: $0.1) } }

    public func value(named name: String) -> HeaderValue {
        var found: String?
        for pair in pairs where pair.name.lowercased() == name.lowercased() {
            if found != nil { return .repeated }
            found = pair.value
        }
        return found.map { .one($0) } ?? .missing
    }
}
