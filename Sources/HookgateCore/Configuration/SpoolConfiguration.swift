/// `spool`: where verified events are kept durably when the sender's last attempts fail, so that
/// the platform never moves them to its dead-letter queue (issue 11). Off when absent. One file
/// for every route; each route opts in with its own `routes[i].spool`.
public struct SpoolConfiguration: Sendable, Equatable {
    /// `path`: the SQLite file; its folder must exist and be writable. Required.
    public var path: String
    /// `max_events`: rows the file may hold (pending and dead). When full, the sender gets what it
    /// would have got without a spool. Default 100000.
    public var maxEvents = 100_000
    /// `max_connections`: the redeliverer's own connections per destination, apart from the pool
    /// that live traffic uses. Default 2.
    public var maxConnections = 2

    public init(path: String) { self.path = path }
}

/// `routes[i].spool`: when this route's failed forwards are spooled and how they are redelivered.
public struct RouteSpool: Sendable, Equatable {
    /// `from_retry`: the sender's `X-VECU-Retry-Count` at or above which a retriable failure is
    /// spooled (the platform's sixth attempt has retry count 5). Default 5.
    public var fromRetry = 5
    /// `max_age`: redelivery stops this long after the event was spooled; it stays, marked dead.
    public var maxAge: ConfigDuration = .seconds(72 * 3600)
    /// `backoff.initial`: the wait before the first redelivery; it doubles with each attempt.
    public var initialBackoff: ConfigDuration = .seconds(30)
    /// `backoff.max`: the longest wait between two redeliveries.
    public var maximumBackoff: ConfigDuration = .seconds(3600)

    public init() {}
}
