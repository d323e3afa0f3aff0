/// Keeps requests from each waiting a whole command timeout while a dependency (the shared
/// ledger's Redis) is down: after `threshold` consecutive failures it opens and callers skip the
/// dependency; after `openMilliseconds` one caller is let through as a probe (half-open); the
/// probe's success closes it, its failure opens it again. Time is passed in.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: Int64)
        case halfOpen
    }

    /// What `allows` tells the caller.
    public enum Admission: Sendable, Equatable {
        case call
        /// Call, as the probe: the breaker waits for this one's outcome.
        case probe
        case skip
    }

    /// A change worth logging (the breaker logs state changes only, not every request).
    public enum Change: Sendable, Equatable {
        case opened
        case closed
    }

    public let threshold: Int
    public let openMilliseconds: Int64
    public private(set) var state: State = .closed
    private var failures = 0

    public init(threshold: Int = 3, openMilliseconds: Int64 = 1_000) {
        self.threshold = threshold
        self.openMilliseconds = openMilliseconds
    }

    public var isOpen: Bool { state != .closed }

    public mutating func allows(now: Int64) -> Admission {
        switch state {
        case .closed:
            return .call
        case .open(let until) where now >= until:
            state = .halfOpen
            return .probe
        case .open, .halfOpen:
            return .skip
        }
    }

    public mutating func succeeded() -> Change? {
        failures = 0
        guard state != .closed else { return nil }
        state = .closed
        return .closed
    }

    public mutating func failed(now: Int64) -> Change? {
        failures += 1
        switch state {
        case .closed where failures >= threshold:
            state = .open(until: now + openMilliseconds)
            return .opened
        case .halfOpen:
            state = .open(until: now + openMilliseconds)
            return nil
        default:
            return nil
        }
    }
}
