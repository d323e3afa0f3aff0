import Testing
@testable import HookgateCore

/// The dedup ledger with time passed in (milliseconds); waiters are plain integers.
@Suite("Delivery ledger")
struct DeliveryLedgerTests {
    typealias Ledger = DeliveryLedger<Int>

    static let ttl: Int64 = 60_000

    func key(_ id: String, source: String = "vecu.custody-service") -> EventKey { EventKey(source: source, id: id) }

    /// Forwards and delivers `ids` in order, one millisecond apart starting at `start`.
    func deliver(_ ledger: Ledger, _ ids: [String], start: Int64 = 0) {
        for (i, id) in ids.enumerated() {
            let now = start + Int64(i)
            #expect(ledger.claim(key(id), now: now) == .forward, "first claim of \(id)")
            ledger.finish(key(id), delivered: true, now: now)
        }
    }

    @Test func forwardThenDeliveredIsADuplicate() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        #expect(ledger.inFlightCount == 1)
        #expect(ledger.count == 0)
        #expect(ledger.finish(key("a"), delivered: true, now: 5).isEmpty)
        #expect(ledger.inFlightCount == 0)
        #expect(ledger.count == 1)
        #expect(ledger.claim(key("a"), now: 10) == .delivered)
        #expect(ledger.claim(key("a"), now: 11) == .delivered)
        #expect(ledger.inFlightCount == 0, "a duplicate is not put in flight")
    }

    @Test func secondClaimWhileInFlight() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        #expect(ledger.claim(key("a"), now: 1) == .inFlight)
        #expect(ledger.claim(key("a"), now: 2) == .inFlight)
        #expect(ledger.claim(key("b"), now: 3) == .forward, "other ids are independent")
        #expect(ledger.inFlightCount == 2)
    }

    /// Pairs that Swift's `String ==` calls equal (canonical equivalence) but whose bytes differ:
    /// two distinct events, in the in-flight table as in the delivered one.
    static let lookAlikes: [(String, String)] = [
        ("caf\u{E9}-1", "cafe\u{301}-1"),  // NFC, NFD
        ("K-1", "\u{212A}-1"),  // K, KELVIN SIGN
        ("\u{C5}-1", "\u{212B}-1"),  // Å, ANGSTROM SIGN
        ("\u{C5}-1", "A\u{30A}-1"),  // Å, A + COMBINING RING ABOVE
    ]

    @Test(arguments: lookAlikes)
    func lookAlikeIDsAreDistinctEvents(_ a: String, _ b: String) {
        #expect(a == b, "the pair is canonically equivalent (the trap this guards against)")
        #expect(!a.utf8.elementsEqual(b.utf8))
        for (first, second) in [(key(a), key(b)), (key("evt-1", source: a), key("evt-1", source: b))] {
            #expect(first != second)
            let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
            #expect(ledger.claim(first, now: 0) == .forward)
            #expect(ledger.claim(second, now: 1) == .forward, "in flight: a different event is not a copy")
            #expect(ledger.inFlightCount == 2)
            #expect(!ledger.wait(key("never"), 1))
            #expect(ledger.finish(first, delivered: true, now: 2).isEmpty)
            #expect(ledger.claim(second, now: 3) == .inFlight, "the second is still in flight")
            ledger.finish(second, delivered: false, now: 4)
            #expect(ledger.claim(second, now: 5) == .forward, "delivered: only the first is recorded")
            #expect(ledger.claim(first, now: 6) == .delivered)
            ledger.finish(second, delivered: true, now: 7)
            #expect(ledger.claim(second, now: 8) == .delivered)
            #expect(ledger.count == 2)
        }
    }

    @Test func failedForwardReleasesTheID() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        ledger.finish(key("a"), delivered: false, now: 1)
        #expect(ledger.count == 0)
        #expect(ledger.inFlightCount == 0)
        #expect(ledger.claim(key("a"), now: 2) == .forward, "the sender's retry is forwarded again")
        #expect(ledger.claim(key("a"), now: 3) == .inFlight)
    }

    @Test(arguments: [true, false])
    func finishReturnsWaitersInArrivalOrder(delivered: Bool) {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        #expect(ledger.claim(key("b"), now: 0) == .forward)
        for w in [3, 1, 2] {
            #expect(ledger.claim(key("a"), now: 1) == .inFlight)
            #expect(ledger.wait(key("a"), w))
        }
        #expect(ledger.wait(key("b"), 99))
        #expect(ledger.finish(key("a"), delivered: delivered, now: 2) == [3, 1, 2])
        #expect(ledger.finish(key("a"), delivered: delivered, now: 3) == [], "waiters are handed out once")
        #expect(ledger.finish(key("b"), delivered: delivered, now: 3) == [99])
    }

    @Test func waitRequiresAnInFlightID() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(!ledger.wait(key("never-claimed"), 1))
        deliver(ledger, ["done"])
        #expect(!ledger.wait(key("done"), 1), "a delivered id has nothing to wait for")
    }

    @Test func waitersAreCappedAtMaximumWaiters() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        let cap = Ledger.maximumWaiters
        #expect(cap == 64)
        for w in 0..<cap { #expect(ledger.wait(key("a"), w)) }
        #expect(!ledger.wait(key("a"), cap))
        #expect(!ledger.wait(key("a"), cap + 1))
        #expect(ledger.finish(key("a"), delivered: true, now: 1) == Array(0..<cap))
    }

    @Test func capacityEvictsTheLeastRecentlyUsed() {
        let ledger = Ledger(capacity: 3, ttlMilliseconds: Self.ttl)
        deliver(ledger, ["a", "b", "c"])
        #expect(ledger.count == 3)
        #expect(ledger.evictions == 0)
        deliver(ledger, ["d"], start: 10)
        #expect(ledger.count == 3)
        #expect(ledger.evictions == 1)
        #expect(ledger.claim(key("b"), now: 11) == .delivered)
        #expect(ledger.claim(key("c"), now: 11) == .delivered)
        #expect(ledger.claim(key("d"), now: 11) == .delivered)
        #expect(ledger.claim(key("a"), now: 11) == .forward, "a was the least recently used")
        ledger.finish(key("a"), delivered: true, now: 12)
        // Before a's delivery the recency was d, c, b (b was touched first at 11): b goes.
        #expect(ledger.evictions == 2)
        #expect(ledger.claim(key("b"), now: 13) == .forward)
    }

    @Test func duplicateHitRefreshesRecency() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: Self.ttl)
        deliver(ledger, ["a", "b"])
        #expect(ledger.claim(key("a"), now: 5) == .delivered)  // a is now the most recent
        deliver(ledger, ["c"], start: 6)
        #expect(ledger.evictions == 1)
        #expect(ledger.claim(key("a"), now: 7) == .delivered)
        #expect(ledger.claim(key("c"), now: 7) == .delivered)
        #expect(ledger.claim(key("b"), now: 7) == .forward, "b, not the refreshed a, was evicted")
    }

    @Test func redeliveryRefreshesRecencyAndExpiry() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: 100)
        deliver(ledger, ["a", "b"])
        // Delivering a again (a sender retry that raced) renews its expiry to 150.
        ledger.finish(key("a"), delivered: true, now: 50)
        #expect(ledger.count == 2)
        #expect(ledger.claim(key("a"), now: 149) == .delivered)
        #expect(ledger.claim(key("b"), now: 149) == .forward, "b expired at 101")
    }

    /// (claim time, still remembered) for an id delivered at 1000 with a 500 ms TTL.
    @Test(arguments: [(Int64(1000), true), (1499, true), (1500, false), (1501, false), (100_000, false)])
    func ttlExpiry(at now: Int64, remembered: Bool) {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: 500)
        #expect(ledger.claim(key("a"), now: 1000) == .forward)
        ledger.finish(key("a"), delivered: true, now: 1000)
        #expect(ledger.claim(key("a"), now: now) == (remembered ? .delivered : .forward))
        if !remembered {
            #expect(ledger.count == 0, "the expired entry is dropped")
            #expect(ledger.inFlightCount == 1)
            #expect(ledger.evictions == 0, "expiry is not a capacity eviction")
        }
    }

    @Test func expiredEntriesMakeRoomBeforeLiveOnesAreEvicted() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: 100)
        deliver(ledger, ["a"], start: 0)
        deliver(ledger, ["b"], start: 90)
        // At 150, a (expired at 100) is dropped to make room; b is still live.
        deliver(ledger, ["c"], start: 150)
        #expect(ledger.evictions == 0)
        #expect(ledger.count == 2)
        #expect(ledger.claim(key("b"), now: 151) == .delivered)
        #expect(ledger.claim(key("c"), now: 151) == .delivered)
    }

    /// Known issue: a duplicate hit moves an entry to the front without renewing its expiry, so
    /// expired entries need not be at the tail, and `remember` (which drops expired entries only
    /// from the tail) can evict a live entry while an expired one stays. Here b, delivered at 50
    /// and remembered until 150, is evicted at 120 while a (expired at 100) is kept, so b's retry
    /// at 130 is forwarded again. When this is fixed, withKnownIssue fails: drop the wrapper.
    @Test func capacityPrefersExpiredEntriesOverLiveOnes() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: 100)
        deliver(ledger, ["a"], start: 0)
        deliver(ledger, ["b"], start: 50)
        #expect(ledger.claim(key("a"), now: 60) == .delivered)  // a now lives until 160
        deliver(ledger, ["c"], start: 155)                      // b expired at 150: dropped, nothing evicted
        #expect(ledger.evictions == 0)
        #expect(ledger.claim(key("a"), now: 156) == .delivered)
        #expect(ledger.claim(key("b"), now: 156) == .forward)
    }

    @Test func aDuplicateHitExtendsTheTTL() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: 100)
        deliver(ledger, ["a"], start: 0)
        #expect(ledger.claim(key("a"), now: 90) == .delivered)
        #expect(ledger.claim(key("a"), now: 150) == .delivered)  // would have expired at 100
        #expect(ledger.claim(key("a"), now: 250) == .forward)    // 150 + 100
    }

    @Test func reconfigureShrinksCapacity() {
        let ledger = Ledger(capacity: 5, ttlMilliseconds: Self.ttl)
        deliver(ledger, ["a", "b", "c", "d", "e"])
        #expect(ledger.claim(key("a"), now: 10) == .delivered)  // recency: a, e, d, c, b
        ledger.reconfigure(capacity: 2, ttlMilliseconds: Self.ttl)
        #expect(ledger.capacity == 2)
        #expect(ledger.count == 2)
        #expect(ledger.evictions == 3)
        #expect(ledger.claim(key("a"), now: 11) == .delivered)
        #expect(ledger.claim(key("e"), now: 11) == .delivered)
        for id in ["b", "c", "d"] { #expect(ledger.claim(key(id), now: 11) == .forward, "\(id) was trimmed") }
    }

    @Test func reconfigureAppliesTheNewTTLToNewDeliveries() {
        let ledger = Ledger(capacity: 5, ttlMilliseconds: 1000)
        ledger.reconfigure(capacity: 5, ttlMilliseconds: 10)
        #expect(ledger.ttlMilliseconds == 10)
        deliver(ledger, ["a"], start: 0)
        #expect(ledger.claim(key("a"), now: 9) == .delivered)   // seen again: now remembered until 19
        #expect(ledger.claim(key("a"), now: 19) == .forward)
    }

    @Test func reconfigureGrowingKeepsEverything() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: Self.ttl)
        deliver(ledger, ["a", "b"])
        ledger.reconfigure(capacity: 4, ttlMilliseconds: Self.ttl)
        deliver(ledger, ["c", "d"], start: 10)
        #expect(ledger.count == 4)
        #expect(ledger.evictions == 0)
        for id in ["a", "b", "c", "d"] { #expect(ledger.claim(key(id), now: 20) == .delivered) }
    }

    @Test func inFlightEntriesAreNeverEvictedByCapacity() {
        let ledger = Ledger(capacity: 1, ttlMilliseconds: Self.ttl)
        let inFlight = (0..<5).map { "pending-\($0)" }
        for id in inFlight { #expect(ledger.claim(key(id), now: 0) == .forward) }
        deliver(ledger, ["x", "y", "z"], start: 1)
        ledger.reconfigure(capacity: 1, ttlMilliseconds: Self.ttl)
        #expect(ledger.inFlightCount == 5)
        #expect(ledger.count == 1)
        for id in inFlight { #expect(ledger.claim(key(id), now: 10) == .inFlight, "\(id) is still in flight") }
        // Finishing them now fills the LRU, each evicting the previous one.
        for id in inFlight { ledger.finish(key(id), delivered: true, now: 20) }
        #expect(ledger.count == 1)
        #expect(ledger.claim(key("pending-4"), now: 21) == .delivered)
    }

    @Test func keysDifferingOnlyInSourceAreDistinct() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: Self.ttl)
        #expect(ledger.claim(key("same", source: "vecu.custody-service"), now: 0) == .forward)
        #expect(ledger.claim(key("same", source: "vecu.credential-service"), now: 0) == .forward)
        ledger.finish(key("same", source: "vecu.custody-service"), delivered: true, now: 1)
        #expect(ledger.claim(key("same", source: "vecu.custody-service"), now: 2) == .delivered)
        #expect(ledger.claim(key("same", source: "vecu.credential-service"), now: 2) == .inFlight)
        #expect(ledger.claim(key("same", source: "other"), now: 2) == .forward)
        #expect(EventKey(source: "a", id: "b") != EventKey(source: "b", id: "a"))
    }

    /// The index grows in steps (two tables while entries move over): every id delivered so far
    /// stays a duplicate at every point of the growth, and the old table empties.
    @Test func everyIDStaysFoundWhileTheIndexGrows() {
        let ledger = Ledger(capacity: 10_000, ttlMilliseconds: 1_000_000)
        let ids = (0..<1_400).map { "evt-\($0)" }
        var checksWhileGrowing = 0
        for (i, id) in ids.enumerated() {
            deliver(ledger, [id], start: Int64(i))
            guard ledger.indexIsGrowing || i % 101 == 0 else { continue }
            if ledger.indexIsGrowing { checksWhileGrowing += 1 }
            for earlier in ids[...i] where ledger.claim(key(earlier), now: Int64(i)) != .delivered {
                Issue.record("\(earlier) forgotten after delivering \(id)")
                return
            }
        }
        #expect(checksWhileGrowing > 0, "the ids must cross a growth of the index")
        #expect(!ledger.indexIsGrowing, "the growth must finish")
        #expect(ledger.count == ids.count)
    }

    /// Slots freed by eviction and expiry are reused without mixing up entries.
    @Test func longRunKeepsExactlyTheMostRecent() {
        let capacity = 16
        let ledger = Ledger(capacity: capacity, ttlMilliseconds: 1_000_000)
        let ids = (0..<200).map { "evt-\($0)" }
        deliver(ledger, ids)
        #expect(ledger.count == capacity)
        #expect(ledger.evictions == ids.count - capacity)
        for (i, id) in ids.enumerated() {
            let expected: Ledger.Claim = i >= ids.count - capacity ? .delivered : .forward
            #expect(ledger.claim(key(id), now: 500) == expected, "\(id)")
        }
    }
}

/// `restore`: ids loaded from a durable store at start-up, oldest first, with their expiry.
@Suite("Delivery ledger restored from a store")
struct DeliveryLedgerRestoreTests {
    typealias Ledger = DeliveryLedger<Int>

    func key(_ id: String) -> EventKey { EventKey(source: "vecu.custody-service", id: id) }

    /// An id restored at 1000 with `expiresAt` (ttl 10s), then claimed `probe` ms later.
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let expiresAt: Int64
        let probe: Int64
        let duplicate: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "live id is a duplicate", expiresAt: 1_500, probe: 100, duplicate: true),
        Case(name: "live id is forgotten at its expiry", expiresAt: 1_500, probe: 500, duplicate: false),
        Case(name: "already expired is ignored", expiresAt: 1_000, probe: 0, duplicate: false),
        Case(name: "expiry beyond one ttl is cut to it", expiresAt: 1_000_000, probe: 10_000, duplicate: false),
        Case(name: "expiry of exactly one ttl is kept", expiresAt: 11_000, probe: 9_999, duplicate: true),
    ]

    @Test(arguments: cases)
    func expiry(_ c: Case) {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: 10_000)
        ledger.restore(key("a"), expiresAt: c.expiresAt, now: 1_000)
        #expect(ledger.claim(key("a"), now: 1_000 + c.probe) == (c.duplicate ? .delivered : .forward))
    }

    @Test func loadedOldestFirstKeepsTheNewestWithinCapacity() {
        let ledger = Ledger(capacity: 3, ttlMilliseconds: 10_000)
        let ids = (0..<5).map { "e\($0)" }
        for (i, id) in ids.enumerated() { ledger.restore(key(id), expiresAt: 5_000 + Int64(i), now: 0) }
        #expect(ledger.count == 3)
        #expect(ledger.evictions == 0, "loading more than fits is not counted as evictions")
        // A delivery in this process evicts the least recently used restored id: e2.
        #expect(ledger.claim(key("new"), now: 1) == .forward)
        ledger.finish(key("new"), delivered: true, now: 1)
        #expect(ledger.evictions == 1)
        for (id, expected) in [("e0", Ledger.Claim.forward), ("e1", .forward), ("e2", .forward), ("e3", .delivered),
                               ("e4", .delivered), ("new", .delivered)] {
            #expect(ledger.claim(key(id), now: 2) == expected, "\(id)")
        }
    }

    @Test func restoringAnIDTwiceKeepsOneEntryWithTheLaterPosition() {
        let ledger = Ledger(capacity: 2, ttlMilliseconds: 10_000)
        ledger.restore(key("a"), expiresAt: 5_000, now: 0)
        ledger.restore(key("b"), expiresAt: 5_000, now: 0)
        ledger.restore(key("a"), expiresAt: 6_000, now: 0)
        #expect(ledger.count == 2)
        ledger.restore(key("c"), expiresAt: 6_000, now: 0)
        #expect(ledger.claim(key("b"), now: 1) == .forward, "b was the least recently used")
        #expect(ledger.claim(key("a"), now: 1) == .delivered)
        #expect(ledger.claim(key("c"), now: 1) == .delivered)
    }

    @Test func restoredIDsCompareByBytes() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: 10_000)
        ledger.restore(key("caf\u{E9}"), expiresAt: 5_000, now: 0)  // NFC
        #expect(ledger.claim(key("cafe\u{301}"), now: 1) == .forward, "NFD is another id")
        #expect(ledger.claim(key("caf\u{E9}"), now: 1) == .delivered)
    }

    @Test func anIDInFlightIsNotRestored() {
        let ledger = Ledger(capacity: 10, ttlMilliseconds: 10_000)
        #expect(ledger.claim(key("a"), now: 0) == .forward)
        ledger.restore(key("a"), expiresAt: 5_000, now: 0)
        #expect(ledger.count == 0)
        #expect(ledger.claim(key("a"), now: 1) == .inFlight)
    }
}

/// The compact ledger (arena, open addressing, backward-shift deletion) against a plain model,
/// over a long random run with a small key space so that hits, expiries, evictions, slot reuse,
/// table growth and arena compaction all happen many times.
@Suite("Delivery ledger against a reference model")
struct DeliveryLedgerModelTests {
    final class Model {
        var order: [EventKey] = []  // least recently used first
        var expiry: [EventKey: Int64] = [:]
        var inFlight: Set<EventKey> = []
        let capacity: Int
        let ttl: Int64
        init(capacity: Int, ttl: Int64) { self.capacity = capacity; self.ttl = ttl }

        func claim(_ k: EventKey, now: Int64) -> DeliveryLedger<Int>.Claim {
            if let e = expiry[k] {
                if e > now {
                    expiry[k] = now + ttl
                    order.removeAll { $0 == k }
                    order.append(k)
                    return .delivered
                }
                expiry[k] = nil
                order.removeAll { $0 == k }
            }
            if inFlight.contains(k) { return .inFlight }
            inFlight.insert(k)
            return .forward
        }

        func finish(_ k: EventKey, delivered: Bool, now: Int64) {
            inFlight.remove(k)
            guard delivered else { return }
            if expiry[k] != nil {
                expiry[k] = now + ttl
                order.removeAll { $0 == k }
                order.append(k)
                return
            }
            while let first = order.first, expiry[first]! <= now { order.removeFirst(); expiry[first] = nil }
            if order.count >= capacity { let first = order.removeFirst(); expiry[first] = nil }
            expiry[k] = now + ttl
            order.append(k)
        }
    }

    @Test(arguments: [1, 7, 64], [UInt64(1), 2, 3])
    func matchesTheModel(capacity: Int, seed: UInt64) {
        _ = run(capacity: capacity, seed: seed, keys: 150, ttl: 500)
    }

    /// Enough distinct live ids that the index grows several times, with expiries, evictions and
    /// duplicate hits landing while entries are still being moved from the old table to the new.
    @Test(arguments: [UInt64(4), 5])
    func matchesTheModelWhileTheIndexGrows(seed: UInt64) {
        let growingSteps = run(capacity: 600, seed: seed, keys: 2_000, ttl: 2_000)
        #expect(growingSteps > 100, "the run must exercise the two-table state")
    }

    /// The random run; returns how many steps found the index between two tables.
    func run(capacity: Int, seed: UInt64, keys: UInt64, ttl: Int64) -> Int {
        var rng = SplitMix(seed: seed)
        let ledger = DeliveryLedger<Int>(capacity: capacity, ttlMilliseconds: ttl)
        let model = Model(capacity: capacity, ttl: ttl)
        var now: Int64 = 0
        var growingSteps = 0
        for step in 0..<20_000 {
            if ledger.indexIsGrowing { growingSteps += 1 }
            now += Int64(rng.next() % 7)
            let n = Int(rng.next() % keys)
            // long ids make the arena grow and compact; two sources share ids
            let key = EventKey(source: n % 3 == 0 ? "s" : "source-\(n % 2)", id: "event-\(n)-" + String(repeating: "x", count: n % 40))
            let expected = model.claim(key, now: now)
            let got = ledger.claim(key, now: now)
            #expect(got == expected, "step \(step): \(key) got \(got), expected \(expected)")
            if got != expected { return growingSteps }
            if got == .forward {
                let delivered = rng.next() % 4 != 0
                model.finish(key, delivered: delivered, now: now)
                ledger.finish(key, delivered: delivered, now: now)
            }
            #expect(ledger.count == model.order.count)
        }
        return growingSteps
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
    }
}
