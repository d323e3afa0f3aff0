/// What became of an event at one destination of a route with several (`destinations:`).
public enum DestinationResult: Sendable, Equatable {
    /// The destination answered 2xx: recorded as delivered there.
    case delivered
    /// It had the event already (its ledger said so): not forwarded again.
    case duplicate
    /// A failure the sender retries: 429, 5xx, unreachable, timed out, busy, in flight.
    case failed
    /// A final 4xx (not 429): the destination's own decision; the sender will not retry.
    case refused(status: Int)
    /// It failed retriably on the sender's last attempts and hookgate holds it in the spool,
    /// which redelivers it (issue 11): held, like a delivery.
    case spooled

    /// The word in the answer's `destinations` map (never the upstream's body or error detail).
    public var word: String {
        switch self {
        case .delivered: return "delivered"
        case .duplicate: return "duplicate"
        case .failed: return "failed"
        case .refused: return "refused"
        case .spooled: return "spooled"
        }
    }

    /// The result of a forward that ended in an upstream status, or in hookgate's own error.
    public static func forStatus(_ status: Int?) -> DestinationResult {
        guard let status else { return .failed }
        if (200...299).contains(status) { return .delivered }
        if status == 429 || !(400...499).contains(status) { return .failed }
        return .refused(status: status)
    }
}

/// hookgate's own answer to an event that matched several destinations (or none): the sender is
/// answered once, after every matched destination finished. A 2xx only when every one has it;
/// any retriable failure makes the whole answer retriable (the retry reaches only those that
/// do not have it yet, the others answer duplicate); otherwise a final 4xx is passed on.
public struct FanOutAnswer: Sendable, Equatable {
    public var status: Int
    /// `destination_failed` or `destination_refused`; nil for a 2xx.
    public var error: String?
    /// Seconds, with the 503.
    public var retryAfter: Int?
    /// Destination names and results, in configuration order.
    public var destinations: [(name: String, result: DestinationResult)]

    public static func == (a: FanOutAnswer, b: FanOutAnswer) -> Bool {
        a.status == b.status && a.error == b.error && a.retryAfter == b.retryAfter
            && a.destinations.map(\.name) == b.destinations.map(\.name) && a.destinations.map(\.result) == b.destinations.map(\.result)
    }

    public static let failedStatus = 503
    public static let retryAfterSeconds = 1

    /// Aggregates the results of the matched destinations (empty: none matched, `filtered`).
    public static func aggregate(_ results: [(name: String, result: DestinationResult)]) -> FanOutAnswer {
        if results.contains(where: { $0.result == .failed }) {
            return FanOutAnswer(status: failedStatus, error: "destination_failed", retryAfter: retryAfterSeconds, destinations: results)
        }
        for (_, result) in results {
            if case .refused(let status) = result {
                return FanOutAnswer(status: status, error: "destination_refused", retryAfter: nil, destinations: results)
            }
        }
        // Every destination has it, some only through the spool: 202, as for a one-destination route.
        let status = results.contains(where: { $0.result == .spooled }) ? SpooledAnswer.status : 200
        return FanOutAnswer(status: status, error: nil, retryAfter: nil, destinations: results)
    }

    /// Some destination holds the event only through the spool (the answer carries `X-Hookgate-Spooled`).
    public var isSpooled: Bool { error == nil && destinations.contains(where: { $0.result == .spooled }) }

    /// `{"destinations":{...}}`, with `error` and `message` first when it is not a 2xx. Names
    /// are configuration names (letters, digits, `-_.`), so they need no escaping.
    public var jsonBody: String {
        let map = destinations.map { "\"\($0.name)\":\"\($0.result.word)\"" }.joined(separator: ",")
        guard let error else { return isSpooled ? "{\"spooled\":true,\"destinations\":{\(map)}}" : "{\"destinations\":{\(map)}}" }
        let message = error == "destination_failed"
            ? "a destination did not accept the event; retry" : "a destination refused the event"
        return "{\"error\":\"\(error)\",\"message\":\"\(message)\",\"destinations\":{\(map)}}"
    }
}
