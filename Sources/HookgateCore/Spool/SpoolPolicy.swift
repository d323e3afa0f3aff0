/// When a failed forward goes to the spool, and what a redelivery's answer means (issue 11).
/// Pure: the server asks, with the facts of one forward.
public enum SpoolPolicy {
    /// Whether a forward that ended with `answer` is spooled on a route with `settings`: the
    /// sender would retry it (429, 5xx, or hookgate's own 502/503/504) and this was one of its
    /// last attempts (`retryCount` at least `from_retry`). A final 4xx is the app's decision and
    /// is never spooled; an accepted event needs no spool.
    public static func shouldSpool(_ answer: SenderAnswer, retryCount: Int, settings: RouteSpool) -> Bool {
        guard retryCount >= settings.fromRetry else { return false }
        switch answer {
        case .relay(let status, let delivered):
            return !delivered && isRetriable(status)
        case .reject(let rejection):
            return isRetriable(rejection.status)
        }
    }

    /// A status the sender retries: 429 and 5xx (the platform's contract).
    public static func isRetriable(_ status: Int) -> Bool { status == 429 || (500...599).contains(status) }

    /// What a redelivery's outcome makes of the spooled event.
    public enum RedeliveryResult: Sendable, Equatable {
        /// 2xx: the upstream has it; recorded delivered and removed from the spool.
        case delivered
        /// A final 4xx (not 429): the app refused it; kept as dead, never retried.
        case dead(String)
        /// Anything the sender itself would retry (and 1xx/3xx, which are no acceptance).
        case retry(String)

        /// The word of the `result` label and log field.
        public var word: String {
            switch self {
            case .delivered: return "delivered"
            case .dead: return "dead"
            case .retry: return "retry"
            }
        }
    }

    public static func redeliveryResult(_ outcome: UpstreamOutcome?, busy: Bool = false) -> RedeliveryResult {
        guard let outcome else { return .retry(busy ? "no redelivery connection became free" : "not sent") }
        switch outcome {
        case .response(let status) where (200...299).contains(status):
            return .delivered
        case .response(let status) where (400...499).contains(status) && status != 429:
            return .dead("upstream answered \(status)")
        case .response(let status):
            return .retry("upstream answered \(status)")
        case .unreachable(let detail):
            return .retry("upstream unreachable: \(detail)")
        case .timedOut:
            return .retry("upstream did not answer in time")
        case .invalidResponse(let detail):
            return .retry("invalid answer: \(detail)")
        }
    }
}

/// The wait before redelivery `attempt` (1 for the first): `initial` doubled per attempt, capped
/// at `maximum`, then drawn between half and all of it (`unit` in 0..<1, the caller's random
/// number), so that events spooled together do not all come back at the same moment.
public enum RedeliveryBackoff {
    public static func delayMilliseconds(attempt: Int, initial: Int64, maximum: Int64, unit: Double) -> Int64 {
        let doublings = min(max(attempt - 1, 0), 40)
        var exponential = initial
        for _ in 0..<doublings where exponential < maximum { exponential = exponential * 2 }
        exponential = min(exponential, maximum)
        let fraction = 0.5 + 0.5 * min(max(unit, 0), 1)
        return max(1, Int64(Double(exponential) * fraction))
    }
}

/// The answer to a sender whose event was spooled.
public enum SpooledAnswer {
    public static let status = 202
    public static let body = "{\"spooled\":true}"
    public static let header = (name: "X-Hookgate-Spooled", value: "true")
}
