import Testing
@testable import HookgateCore

/// The shared ledger's rules (`SharedClaim`) run by two replicas against a model of Redis, over
/// every interleaving of their steps, every upstream outcome and every moment a claim can
/// expire. The replicas send the exact command arrays the Redis store sends; the model executes
/// them as Redis does (SET NX/XX/PX/GET, GET, DEL, EVAL/EVALSHA of the release script).
@Suite("Shared claim model")
struct SharedClaimModelTests {
    static let key = SharedClaim.key(prefix: "hookgate", route: "orders", source: "vecu.custody-service", id: "e-1")

    /// One key of Redis and its script cache.
    struct ModelRedis: Hashable {
        var value: [UInt8]?
        var scriptCached = false

        mutating func execute(_ command: [[UInt8]]) -> RESPValue {
            let name = String(decoding: command[0], as: UTF8.self)
            precondition(command.count == 1 || name == "EVAL" || name == "EVALSHA" || command[1] == SharedClaimModelTests.key)
            switch name {
            case "GET":
                return .bulk(value)
            case "DEL":
                defer { value = nil }
                return .integer(value == nil ? 0 : 1)
            case "SET":
                let options = Set(command.dropFirst(3).map { String(decoding: $0, as: UTF8.self) })
                let old = value
                let allowed = options.contains("NX") ? old == nil : options.contains("XX") ? old != nil : true
                precondition(options.contains("PX"), "every write expires")
                if allowed { value = command[2] }
                if options.contains("GET") { return .bulk(old) }
                return allowed ? .simple(Array("OK".utf8)) : .bulk(nil)
            case "EVALSHA":
                guard scriptCached, command[1] == Array(SharedClaim.releaseScriptSHA1.utf8) else {
                    return .error(Array("NOSCRIPT No matching script. Please use EVAL.".utf8))
                }
                return release(token: command[4])
            case "EVAL":
                precondition(command[1] == Array(SharedClaim.releaseScript.utf8) && command[2] == Array("1".utf8))
                scriptCached = true
                return release(token: command[4])
            default:
                preconditionFailure("the model does not know \(name)")
            }
        }

        /// The release script's semantics: compare-and-delete.
        private mutating func release(token: [UInt8]) -> RESPValue {
            guard value == token else { return .integer(0) }
            value = nil
            return .integer(1)
        }
    }

    enum Phase: Hashable {
        case start
        case polling(Int)
        case forwarding
        /// The upstream answered 2xx and the sender got it; the mark is sent next.
        case acknowledged
        case releasing(cached: Bool)
        /// Delivered and marked: a later local duplicate may renew.
        case renewable
        case done
    }

    struct World: Hashable {
        var redis = ModelRedis()
        var phases: [Phase] = [.start, .start]
        var expired = [false, false]
        var acknowledged = [false, false]
        var upstreamAccepted = false
        var expiries = 0
        /// A rule broken inside a step (checked by `explore` after the step).
        var violation: String?
    }

    /// Counts what the exploration reached, so that the test proves it covered the hard cases.
    struct Coverage {
        var terminal = 0
        var concurrentAfterExpiry = 0
        var duplicates = 0
        var inFlightAnswers = 0
        var lateReleases = 0
        var bothAcknowledged = 0
    }

    typealias Release = (_ token: [UInt8], _ cached: Bool) -> [[UInt8]]

    static let tokens = [SharedClaim.token(process: 0xA, sequence: 1), SharedClaim.token(process: 0xB, sequence: 1)]

    /// Explores every reachable world and returns the first violated property, if any.
    static func explore(release: Release, maximumExpiries: Int, coverage: inout Coverage) -> String? {
        var seen: Set<World> = []
        var stack = [World()]
        while let world = stack.popLast() {
            guard seen.insert(world).inserted else { continue }
            if world.phases.allSatisfy({ $0 == .done }) {
                coverage.terminal += 1
                if world.acknowledged.contains(true), world.redis.value != SharedClaim.deliveredMark {
                    return "an acknowledged event is not delivered at the end: \(world)"
                }
                if world.acknowledged == [true, true] { coverage.bothAcknowledged += 1 }
                continue
            }
            var next: [World] = []
            for r in 0..<2 {
                next += step(world, replica: r, release: release, coverage: &coverage)
            }
            if world.expiries < maximumExpiries, let value = world.redis.value, let owner = tokens.firstIndex(of: value) {
                var w = world
                w.redis.value = nil
                w.expired[owner] = true
                w.expiries += 1
                next.append(w)
            }
            for w in next {
                if world.redis.value == SharedClaim.deliveredMark, w.redis.value != SharedClaim.deliveredMark {
                    return "a delivered mark was erased: \(world) -> \(w)"
                }
                if w.phases == [.forwarding, .forwarding] {
                    if !w.expired[0] && !w.expired[1] { return "two forwards at once with valid claims: \(w)" }
                    coverage.concurrentAfterExpiry += 1
                }
                if let violation = w.violation { return violation }
                stack.append(w)
            }
        }
        return nil
    }

    /// The worlds after one step of `replica` (two when the step has two outcomes).
    static func step(_ world: World, replica r: Int, release: Release, coverage: inout Coverage) -> [World] {
        var w = world
        let other = 1 - r
        switch world.phases[r] {
        case .start:
            let reply = w.redis.execute(SharedClaim.claimCommand(key: key, token: tokens[r], lifetimeMilliseconds: 60_000))
            switch SharedClaim.claimAnswer(reply) {
            case .forward: w.phases[r] = .forwarding
            case .delivered: w.phases[r] = duplicate(&w, coverage: &coverage)
            case .claimedElsewhere: w.phases[r] = .polling(0)
            case .failed: w.violation = "the model answered a claim with \(reply)"
            }
            return [w]
        case .polling(let n):
            let reply = w.redis.execute(SharedClaim.pollCommand(key: key))
            switch SharedClaim.pollAnswer(reply) {
            case .delivered: w.phases[r] = duplicate(&w, coverage: &coverage)
            case .gone:
                coverage.inFlightAnswers += 1
                w.phases[r] = .done
            case .stillClaimed: w.phases[r] = n < 2 ? .polling(n + 1) : .done
            case .failed: w.violation = "the model answered a poll with \(reply)"
            }
            return [w]
        case .forwarding:
            var accepted = w
            accepted.upstreamAccepted = true
            accepted.acknowledged[r] = true
            accepted.phases[r] = .acknowledged
            var failed = w
            failed.phases[r] = .releasing(cached: true)
            return [accepted, failed]
        case .acknowledged:
            let reply = w.redis.execute(SharedClaim.deliveredCommand(key: key, ttlMilliseconds: 86_400_000))
            if !SharedClaim.writeSucceeded(reply) { w.violation = "the mark was refused: \(reply)" }
            w.phases[r] = .renewable
            return [w]
        case .releasing(let cached):
            let before = w.redis.value
            if w.expired[r] { coverage.lateReleases += 1 }
            let reply = w.redis.execute(release(tokens[r], cached))
            if SharedClaim.isNoScript(reply) {
                w.phases[r] = .releasing(cached: false)
                return [w]
            }
            if before == tokens[other], w.redis.value != before {
                w.violation = "replica \(r)'s release erased replica \(other)'s claim"
            }
            w.phases[r] = .done
            return [w]
        case .renewable:
            var renewed = w
            let reply = renewed.redis.execute(SharedClaim.renewCommand(key: key, ttlMilliseconds: 86_400_000))
            if !SharedClaim.writeSucceeded(reply) { renewed.violation = "the renewal was refused: \(reply)" }
            renewed.phases[r] = .done
            var quiet = w
            quiet.phases[r] = .done
            return [renewed, quiet]
        case .done:
            return []
        }
    }

    /// A duplicate answer is a 2xx to the sender: only true if the upstream accepted the event.
    static func duplicate(_ w: inout World, coverage: inout Coverage) -> Phase {
        coverage.duplicates += 1
        if !w.upstreamAccepted { w.violation = "a duplicate was answered though the upstream never accepted the event" }
        return .done
    }

    @Test func everyInterleavingOfTwoReplicasKeepsTheRules() {
        var coverage = Coverage()
        let violation = Self.explore(release: { SharedClaim.releaseCommand(key: Self.key, token: $0, cached: $1) },
                                     maximumExpiries: 2, coverage: &coverage)
        #expect(violation == nil, "\(violation ?? "")")
        #expect(coverage.terminal >= 10, "distinct end states")
        #expect(coverage.concurrentAfterExpiry > 0, "a claim expiring during a slow forward was explored")
        #expect(coverage.duplicates > 0)
        #expect(coverage.inFlightAnswers > 0)
        #expect(coverage.lateReleases > 0)
        #expect(coverage.bothAcknowledged > 0)
    }

    /// The checker is not blind: a plain DEL as the release erases another replica's claim.
    @Test func aPlainDeleteAsReleaseIsCaught() {
        var coverage = Coverage()
        let violation = Self.explore(release: { _, _ in [Array("DEL".utf8), Self.key] }, maximumExpiries: 2, coverage: &coverage)
        #expect(violation != nil)
    }

    /// A second claim sees the first and leaves it in place.
    @Test func aSecondClaimSeesTheFirst() {
        var redis = ModelRedis()
        let first = redis.execute(SharedClaim.claimCommand(key: Self.key, token: Self.tokens[0], lifetimeMilliseconds: 1_000))
        let second = redis.execute(SharedClaim.claimCommand(key: Self.key, token: Self.tokens[1], lifetimeMilliseconds: 1_000))
        #expect(SharedClaim.claimAnswer(first) == .forward)
        #expect(SharedClaim.claimAnswer(second) == .claimedElsewhere)
        #expect(redis.value == Self.tokens[0])
    }

    @Test func repliesAreReadAsBytes() {
        #expect(SharedClaim.claimAnswer(.bulk(Array("delivered".utf8))) == .delivered)
        #expect(SharedClaim.claimAnswer(.bulk(Array("Delivered".utf8))) == .claimedElsewhere)
        #expect(SharedClaim.claimAnswer(.bulk(Array("delivered ".utf8))) == .claimedElsewhere)
        #expect(SharedClaim.claimAnswer(.error(Array("WRONGTYPE".utf8))) == .failed)
        #expect(SharedClaim.claimAnswer(.simple(Array("OK".utf8))) == .failed)
        #expect(SharedClaim.claimAnswer(.bulk([])) == .failed)
        #expect(SharedClaim.pollAnswer(.integer(1)) == .failed)
        #expect(SharedClaim.writeSucceeded(.simple(Array("OK".utf8))))
        #expect(!SharedClaim.writeSucceeded(.error(Array("NOPERM".utf8))))
        #expect(SharedClaim.isNoScript(.error(Array("NOSCRIPT No matching script".utf8))))
        #expect(!SharedClaim.isNoScript(.error(Array("ERR".utf8))))
    }

    @Test func keysAreDigestsOverLengthPrefixedBytes() {
        let a = SharedClaim.key(prefix: "p", route: "r", source: "s", id: "ab")
        #expect(a.count == 2 + 64)
        #expect(a.starts(with: Array("p:".utf8)))
        #expect(a != SharedClaim.key(prefix: "p", route: "r", source: "sa", id: "b"), "boundaries are part of the digest")
        #expect(SharedClaim.key(prefix: "p", route: "r", source: "s", id: "\u{E9}")
                != SharedClaim.key(prefix: "p", route: "r", source: "s", id: "e\u{301}"), "NFC and NFD are different ids")
        #expect(a == SharedClaim.key(prefix: "p", route: "r", source: "s", id: "ab"))
    }

    @Test func pollingBacksOffWithinTheBound() {
        var schedule = SharedClaim.PollSchedule(boundMilliseconds: 2_000)
        var delays: [Int64] = []
        while let d = schedule.nextDelay() { delays.append(d) }
        #expect(delays == [50, 100, 200, 400, 500, 500, 250])
        #expect(delays.reduce(0, +) == 2_000)
    }

    @Test func releaseScriptDigestIsTheScriptsSHA1() {
        #expect(SharedClaim.releaseScriptSHA1.count == 40)
        #expect(SharedClaim.releaseCommand(key: Self.key, token: Self.tokens[0], cached: true)[1] == Array(SharedClaim.releaseScriptSHA1.utf8))
    }
}
