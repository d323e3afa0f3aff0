import HookgateCore

/// A copy of an event that waits while another copy is forwarded: the request and the worker
/// that must answer it (answers are sent on the worker's own thread).
struct WaitingCopy {
    let exchange: InboundExchange
    let worker: Worker
}

/// The dedup ledgers of all routes, shared by every worker under one lock, so that a duplicate
/// is recognised whichever worker receives it. Keyed by ledger name (the route's, or
/// `route/destination`), so they survive reloads.
final class SharedLedger {
    private let state = Locked<[String: DeliveryLedger<WaitingCopy>]>([:])

    /// Creates or resizes the ledger of each route's destinations (start-up and reload), named
    /// by `Configuration.Route.ledgerName`: the route's name in the one-destination form.
    func configure(_ routes: [Configuration.Route]) {
        state.withLock { ledgers in
            for route in routes {
                for i in route.destinations.indices {
                    let name = route.ledgerName(i)
                    if let ledger = ledgers[name] {
                        ledger.reconfigure(capacity: route.dedup.capacity, ttlMilliseconds: route.dedup.ttl.milliseconds)
                    } else {
                        ledgers[name] = DeliveryLedger(capacity: route.dedup.capacity, ttlMilliseconds: route.dedup.ttl.milliseconds)
                    }
                }
            }
        }
    }

    /// Claims without waiting (a destination of a fan-out: a copy in flight there is answered
    /// retriable instead of waiting, since the other destinations' answers are already due).
    func claim(route: String, key: EventKey) -> DeliveryLedger<WaitingCopy>.Claim {
        let now = MonotonicClock.milliseconds()
        return state.withLock { $0[route]!.claim(key, now: now) }
    }

    /// Start-up: `body` gets a function that remembers one delivered id of a route, loaded from a
    /// durable store oldest first (route, key, monotonic expiry, now); ids of routes not
    /// configured are ignored. Runs under the lock, before any request is served.
    func restoring(_ body: ((String, EventKey, Int64, Int64) -> Void) throws -> Void) rethrows {
        try state.withLock { ledgers in
            try body { route, key, expiresAt, now in ledgers[route]?.restore(key, expiresAt: expiresAt, now: now) }
        }
    }

    /// Remembers `key` as delivered for the ledger's ttl (a spooled event, which counts as held,
    /// and one the spool redelivered); an id in flight is left to its forward.
    func hold(route: String, key: EventKey) {
        let now = MonotonicClock.milliseconds()
        state.withLock { $0[route]?.restore(key, expiresAt: Int64.max / 2, now: now) }
    }

    /// Each route's `dedup.capacity` (a durable store trims its file to it).
    func capacities() -> [String: Int] {
        state.withLock { $0.mapValues(\.capacity) }
    }

    /// Claims, and when the event is in flight adds `waiter`; returns nil if the waiter was added.
    func claimOrWait(route: String, key: EventKey, waiter: WaitingCopy) -> DeliveryLedger<WaitingCopy>.Claim? {
        let now = MonotonicClock.milliseconds()
        return state.withLock { ledgers in
            let ledger = ledgers[route]!
            let claim = ledger.claim(key, now: now)
            if claim == .inFlight, ledger.wait(key, waiter) { return nil }
            return claim
        }
    }

    func finish(route: String, key: EventKey, delivered: Bool) -> [WaitingCopy] {
        let now = MonotonicClock.milliseconds()
        return state.withLock { $0[route]?.finish(key, delivered: delivered, now: now) ?? [] }
    }

    /// Entries and evictions per route (metrics).
    func statistics() -> [(route: String, entries: Int, evictions: Int, inFlight: Int)] {
        state.withLock { ledgers in
            ledgers.keys.sorted().map { name in
                let l = ledgers[name]!
                return (name, l.count, l.evictions, l.inFlightCount)
            }
        }
    }
}
