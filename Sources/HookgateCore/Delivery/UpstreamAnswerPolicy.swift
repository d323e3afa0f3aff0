/// What became of a forward, as seen by the connection pool.
public enum UpstreamOutcome: Sendable, Equatable {
    /// The upstream answered with this status.
    case response(status: Int)
    /// Connection refused, reset, or closed before a complete answer.
    case unreachable(String)
    /// No complete answer within the route's timeout.
    case timedOut
    /// The answer could not be parsed or was too large.
    case invalidResponse(String)
}

extension UpstreamOutcome {
    /// What went wrong with the upstream, for the access log's `upstream.error` only: it names
    /// hosts, addresses and TLS failures, which the sender (anyone on the internet) must not
    /// learn; the sender gets the reason code and a fixed message. Nil when nothing went wrong
    /// or the reason code says it all (a timeout).
    public var errorDetail: String? {
        switch self {
        case .response(let status) where !(200...299).contains(status) && !(400...599).contains(status):
            return "upstream answered \(status), which is not an acceptance"
        case .response, .timedOut: return nil
        case .unreachable(let detail): return detail
        case .invalidResponse(let detail): return "invalid answer: " + detail
        }
    }
}

/// What the sender is told about a forwarded event, and whether the event now counts as
/// delivered. This is where "a 2xx to the sender means the upstream has the event" is decided.
public enum SenderAnswer: Sendable, Equatable {
    /// Relay the upstream's status and body.
    case relay(status: Int, delivered: Bool)
    /// hookgate answers itself.
    case reject(Rejection)

    public static func forOutcome(_ outcome: UpstreamOutcome) -> SenderAnswer {
        switch outcome {
        case .response(let status) where (200...299).contains(status):
            return .relay(status: status, delivered: true)
        case .response(let status) where (400...599).contains(status):
            // 4xx is the app's decision (the sender will not retry); 429 and 5xx make the sender
            // retry. Neither counts as delivered, so a retry is forwarded again.
            return .relay(status: status, delivered: false)
        case .response:
            // 1xx/3xx are not an acceptance; a retriable 502 keeps the event safe.
            return .reject(Rejection(.upstreamInvalidResponse, "the upstream's answer was not an acceptance"))
        case .unreachable:
            return .reject(Rejection(.upstreamUnreachable, "the upstream could not be reached"))
        case .timedOut:
            return .reject(Rejection(.upstreamTimeout, "upstream did not answer in time"))
        case .invalidResponse:
            return .reject(Rejection(.upstreamInvalidResponse, "the upstream's answer was not valid"))
        }
    }

    /// The answer for a copy that waited while another copy of the same event was forwarded:
    /// a duplicate if that copy was delivered, otherwise a retriable 503 (never a 4xx, which
    /// would make the sender give up on an event the upstream does not have).
    public static func forWaiter(firstCopyDelivered: Bool) -> SenderAnswer? {
        firstCopyDelivered ? nil : .reject(Rejection(.inFlight, "another copy of this event was being forwarded and did not succeed; retry"))
    }
}

/// The body and header of the answer to a duplicate.
public enum DuplicateAnswer {
    public static let status = 200
    public static let body = "{\"duplicate\":true}"
    public static let header = (name: "X-Hookgate-Duplicate", value: "true")
}
