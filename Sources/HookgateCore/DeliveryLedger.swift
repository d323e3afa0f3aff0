/// What identifies an event for de-duplication within one route: CloudEvents says `source` + `id`
/// is unique, and both come from the signed body.
public struct EventKey: Hashable, Sendable {
    public var source: String
    public var id: String
    public init(source: String, id: String) {
        self.source = source
        self.id = id
    }
}

/// The record of which events a route has delivered (the upstream answered 2xx) and which are
/// being forwarded right now. Delivered ids are kept in an LRU bounded by `capacity` and
/// forgotten `ttl` after they were delivered or last seen again as a duplicate; in-flight ids are never evicted, so a second copy cannot be forwarded
/// while the first is still on its way. Not thread-safe: the server holds it under one lock.
/// Time is passed in (milliseconds on a monotonic clock), never read here.
public final class DeliveryLedger<Waiter> {
    /// What to do with an arriving event.
    public enum Claim: Equatable {
        /// New: forward it. The id is now in flight until `finish` is called.
        case forward
        /// Delivered before and still remembered: answer 200 without forwarding.
        case delivered
        /// Another copy is being forwarded right now.
        case inFlight
    }

    /// Most copies that may wait on one in-flight event; more are answered 503 at once.
    public static var maximumWaiters: Int { 64 }

    public private(set) var capacity: Int
    public private(set) var ttlMilliseconds: Int64
    /// Delivered ids dropped to stay within `capacity` (not counting TTL expiry).
    public private(set) var evictions = 0

    private var index: [EventKey: Int32] = [:]
    private var keys: [EventKey?] = []
    private var expiries: [Int64] = []
    private var previous: [Int32] = []
    private var next: [Int32] = []
    private var head: Int32 = -1  // most recently used
    private var tail: Int32 = -1  // least recently used
    private var free: [Int32] = []
    private var inFlight: [EventKey: [Waiter]] = [:]

    public init(capacity: Int, ttlMilliseconds: Int64) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.ttlMilliseconds = ttlMilliseconds
    }

    /// Delivered ids currently remembered.
    public var count: Int { index.count }
    /// Ids being forwarded right now.
    public var inFlightCount: Int { inFlight.count }

    public func claim(_ key: EventKey, now: Int64) -> Claim {
        if let slot = index[key] {
            if expiries[Int(slot)] > now {
                // Seen again: the sender is still retrying it, so it is remembered for another
                // full ttl. Every entry's expiry is then its last use + ttl, so expiries grow
                // along the LRU list and expired entries are always found at the tail.
                expiries[Int(slot)] = now + ttlMilliseconds
                moveToFront(slot)
                return .delivered
            }
            remove(slot)
        }
        if inFlight[key] != nil { return .inFlight }
        inFlight[key] = []
        return .forward
    }

    /// Adds a copy to wait for the in-flight one's outcome. False when the event is not in flight
    /// or already has `maximumWaiters` waiting.
    public func wait(_ key: EventKey, _ waiter: Waiter) -> Bool {
        guard var waiters = inFlight[key], waiters.count < Self.maximumWaiters else { return false }
        inFlight[key] = nil  // keep the array uniquely referenced while appending
        waiters.append(waiter)
        inFlight[key] = waiters
        return true
    }

    /// Ends the forward of `key`. With `delivered` the id is remembered, otherwise it is released so
    /// that the sender's retry is forwarded again. Returns the copies that waited on it.
    @discardableResult
    public func finish(_ key: EventKey, delivered: Bool, now: Int64) -> [Waiter] {
        let waiters = inFlight.removeValue(forKey: key) ?? []
        if delivered { remember(key, now: now) }
        return waiters
    }

    /// Applies new limits (configuration reload) and trims to the new capacity.
    public func reconfigure(capacity: Int, ttlMilliseconds: Int64) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.ttlMilliseconds = ttlMilliseconds
        while index.count > capacity { evictTail() }
    }

    private func remember(_ key: EventKey, now: Int64) {
        if let slot = index[key] {
            expiries[Int(slot)] = now + ttlMilliseconds
            moveToFront(slot)
            return
        }
        // Expired entries collect at the tail (all share one TTL); drop them first.
        while tail >= 0, expiries[Int(tail)] <= now { remove(tail) }
        if index.count >= capacity { evictTail() }
        let slot: Int32
        if let reused = free.popLast() {
            slot = reused
            keys[Int(slot)] = key
            expiries[Int(slot)] = now + ttlMilliseconds
        } else {
            slot = Int32(keys.count)
            keys.append(key)
            expiries.append(now + ttlMilliseconds)
            previous.append(-1)
            next.append(-1)
        }
        index[key] = slot
        linkAtFront(slot)
    }

    private func evictTail() {
        guard tail >= 0 else { return }
        remove(tail)
        evictions += 1
    }

    private func remove(_ slot: Int32) {
        unlink(slot)
        if let key = keys[Int(slot)] { index[key] = nil }
        keys[Int(slot)] = nil
        free.append(slot)
    }

    private func moveToFront(_ slot: Int32) {
        guard head != slot else { return }
        unlink(slot)
        linkAtFront(slot)
    }

    private func linkAtFront(_ slot: Int32) {
        previous[Int(slot)] = -1
        next[Int(slot)] = head
        if head >= 0 { previous[Int(head)] = slot }
        head = slot
        if tail < 0 { tail = slot }
    }

    private func unlink(_ slot: Int32) {
        let p = previous[Int(slot)]
        let n = next[Int(slot)]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { previous[Int(n)] = p } else { tail = p }
        previous[Int(slot)] = -1
        next[Int(slot)] = -1
    }
}
