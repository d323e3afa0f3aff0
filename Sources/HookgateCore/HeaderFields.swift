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
        for pair in pairs where Self.sameName(pair.name, name) {
            if found != nil { return .repeated }
            found = pair.value
        }
        return found.map { .one($0) } ?? .missing
    }

    /// ASCII case-insensitive comparison without allocating.
    public static func sameName(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    let lx = x[i] >= 0x41 && x[i] <= 0x5A ? x[i] | 0x20 : x[i]
                    let ly = y[i] >= 0x41 && y[i] <= 0x5A ? y[i] | 0x20 : y[i]
                    if lx != ly { return false }
                }
                return true
            }
        }
    }
}

/// Reason phrases for the statuses hookgate sends itself (relayed statuses use the same table;
/// the phrase carries no meaning in HTTP/1.1).
public enum HTTPStatusPhrase {
    public static func phrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}
