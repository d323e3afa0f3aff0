import CLibevent
import Foundation
import HookgateCore
import Logging
import Prometheus

/// `ledger.store: redis`: one ledger for every replica. The local ledger stays in front (a
/// delivered hit is answered locally, copies in this process wait on the first); only the first
/// copy in a process asks Redis, following the rules of `SharedClaim` (HookgateCore): claim with
/// `SET NX GET`, mark delivered after the upstream's 2xx, release with compare-and-delete.
///
/// When Redis cannot answer (unreachable, slower than `timeout`, error replies) a circuit
/// breaker opens after a few consecutive failures, so requests stop waiting for it, and probes
/// it again after a second. Meanwhile `on_unavailable: local` lets the local ledger decide and
/// queues the delivered marks to replay into Redis when it is back; `reject` answers 503
/// `ledger_unavailable`, except on the sender's last attempt (a possible duplicate beats the
/// dead-letter queue). `/readyz` never asks Redis.
///
/// Threads: each worker has its own lane (connection, its claims, marks awaiting a reply),
/// touched only on that worker's thread; the breaker and the replay queue are shared, under
/// locks. `flush` runs after every worker's loop has stopped.
final class RedisLedgerStore: LedgerStore, @unchecked Sendable {
    /// `X-VECU-Retry-Count` of the sender's last attempt (the platform sends at most six).
    static let lastAttempt = 5
    /// Delivered marks kept for replay; beyond it the oldest are dropped (counted: each may
    /// cause one duplicate, never a loss).
    static let replayCapacity = 100_000
    /// Marks replayed per round trip after an outage.
    static let replayBatch = 128

    /// One worker's share of the store.
    private final class Lane {
        let connection: RedisConnection
        let index: UInt64
        var sequence: UInt64 = 0
        /// Claims this worker holds: key to token (none for events decided locally).
        var claims: [[UInt8]: [UInt8]] = [:]
        /// Delivered marks sent and not yet confirmed: key to monotonic expiry.
        var unconfirmed: [[UInt8]: Int64] = [:]
        init(connection: RedisConnection, index: Int) {
            self.connection = connection
            self.index = UInt64(index)
        }
    }

    /// A delivered mark waiting to be written: until when it should live (monotonic ms).
    private struct Mark {
        let key: [UInt8]
        let expires: Int64
    }

    /// Marks recorded while Redis could not take them, oldest first, bounded.
    private struct ReplayQueue {
        var marks: [Mark] = []
        var head = 0
        var replaying = false
        var count: Int { marks.count - head }

        /// Adds a mark; returns how many old ones were dropped to make room.
        mutating func add(_ mark: Mark) -> Int {
            var dropped = 0
            if count >= RedisLedgerStore.replayCapacity {
                head += 1
                dropped = 1
            }
            marks.append(mark)
            if head > 1024, head * 2 > marks.count {
                marks.removeFirst(head)
                head = 0
            }
            return dropped
        }

        mutating func take(_ n: Int) -> [Mark] {
            let taken = Array(marks[head..<min(marks.count, head + n)])
            head += taken.count
            if head == marks.count {
                marks.removeAll(keepingCapacity: true)
                head = 0
            }
            return taken
        }
    }

    private let endpoint: RedisEndpoint
    private let prefix: String
    private let claimLifetime: Int64
    private let policy: LedgerConfiguration.UnavailablePolicy
    private let metrics: RedisMetrics
    private let log = Logger(label: "hookgate.ledger.redis")
    private let process = UInt64.random(in: 1...UInt64.max)
    private let lanes = Locked<[Int: Lane]>([:])
    private let breaker = Locked(CircuitBreaker(threshold: 3, openMilliseconds: 1_000))
    private let replay = Locked(ReplayQueue())

    private init(_ settings: LedgerConfiguration.Redis, tls: TLSContext?, metrics: RedisMetrics) {
        endpoint = RedisEndpoint(host: settings.url.host, port: settings.url.port, database: settings.url.database,
                                 username: settings.username?.bytes, password: settings.password?.bytes,
                                 timeoutMilliseconds: settings.timeout.milliseconds, tls: tls,
                                 verifyPeer: !settings.tlsInsecureSkipVerify)
        prefix = settings.keyPrefix
        claimLifetime = settings.claimLifetime.milliseconds
        policy = settings.onUnavailable
        self.metrics = metrics
    }

    /// The store for `ledger.redis`; fails only if the TLS context cannot be built (`ca_file`).
    static func make(_ settings: LedgerConfiguration.Redis, registry: PrometheusCollectorRegistry) throws -> RedisLedgerStore {
        var tls: TLSContext?
        if settings.url.tls {
            switch TLSContext.client(caFile: settings.caFile, insecureSkipVerify: settings.tlsInsecureSkipVerify, key: "ledger.redis") {
            case .success(let context): tls = context
            case .failure(let problems): throw problems
            }
        }
        return RedisLedgerStore(settings, tls: tls, metrics: RedisMetrics(registry: registry))
    }

    // MARK: LedgerStore

    func claim(route: String, key: EventKey, retryCount: Int, worker: Worker, answer: @escaping (StoreClaim) -> Void) {
        let lane = lane(for: worker)
        let redisKey = SharedClaim.key(prefix: prefix, route: route, source: key.source, id: key.id)
        guard admitted(.claim) else {
            fallBack(retryCount: retryCount, answer: answer)
            return
        }
        lane.sequence &+= 1
        let token = SharedClaim.token(process: process, sequence: lane.index << 48 | lane.sequence)
        let command = SharedClaim.claimCommand(key: redisKey, token: token, lifetimeMilliseconds: claimLifetime)
        send(command, as: .claim, on: lane) { [self] reply in
            switch reply.map(SharedClaim.claimAnswer) ?? .failed {
            case .forward:
                lane.claims[redisKey] = token
                answer(.forward)
            case .delivered:
                answer(.delivered)
            case .claimedElsewhere:
                var schedule = SharedClaim.PollSchedule(boundMilliseconds: longestForward(route: route, worker: worker))
                poll(redisKey, schedule: &schedule, lastAttempt: retryCount >= Self.lastAttempt, lane: lane, worker: worker, answer: answer)
            case .failed:
                if reply != nil { failed(.claim, .errorReply) }
                fallBack(retryCount: retryCount, answer: answer)
            }
        }
    }

    func recordDelivered(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {
        let lane = lane(for: worker)
        let redisKey = SharedClaim.key(prefix: prefix, route: route, source: key.source, id: key.id)
        lane.claims[redisKey] = nil
        let expires = MonotonicClock.milliseconds() + ttlMilliseconds
        guard admitted(.delivered) else {
            queue(Mark(key: redisKey, expires: expires))
            return
        }
        lane.unconfirmed[redisKey] = expires
        send(SharedClaim.deliveredCommand(key: redisKey, ttlMilliseconds: ttlMilliseconds), as: .delivered, on: lane) { [self] reply in
            lane.unconfirmed[redisKey] = nil
            guard let reply, SharedClaim.writeSucceeded(reply) else {
                if reply != nil { failed(.delivered, .errorReply) }
                queue(Mark(key: redisKey, expires: expires))
                return
            }
            if replay.withLock({ $0.count > 0 && !$0.replaying }) { replayMarks(on: lane) }
        }
    }

    func release(route: String, key: EventKey, worker: Worker) {
        let lane = lane(for: worker)
        let redisKey = SharedClaim.key(prefix: prefix, route: route, source: key.source, id: key.id)
        // Events decided locally hold no claim; a claim not released here expires after
        // claim_lifetime (until then other replicas answer its retries 503 in_flight).
        guard let token = lane.claims.removeValue(forKey: redisKey), admitted(.release) else { return }
        send(SharedClaim.releaseCommand(key: redisKey, token: token, cached: true), as: .release, on: lane, acceptNoScript: true) { [self] reply in
            guard let reply, SharedClaim.isNoScript(reply) else {
                if let reply, !SharedClaim.releaseRan(reply) { failed(.release, .errorReply) }
                return
            }
            send(SharedClaim.releaseCommand(key: redisKey, token: token, cached: false), as: .release, on: lane) { [self] reply in
                if let reply, !SharedClaim.releaseRan(reply) { failed(.release, .errorReply) }
            }
        }
    }

    func renew(route: String, key: EventKey, ttlMilliseconds: Int64, worker: Worker) {
        let lane = lane(for: worker)
        let redisKey = SharedClaim.key(prefix: prefix, route: route, source: key.source, id: key.id)
        guard admitted(.renew) else { return }
        send(SharedClaim.renewCommand(key: redisKey, ttlMilliseconds: ttlMilliseconds), as: .renew, on: lane) { [self] reply in
            if let reply, !SharedClaim.writeSucceeded(reply) { failed(.renew, .errorReply) }
        }
    }

    /// Shutdown, after every worker's loop has stopped: writes the marks still queued or not
    /// yet confirmed over a fresh connection, waiting at most a few seconds. What cannot be
    /// written is logged (each such event may be forwarded once more by another replica).
    func flush() {
        let all = lanes.withLock { lanes in
            defer { lanes.removeAll() }
            return Array(lanes.values)
        }
        var marks = replay.withLock { $0.take(Int.max) }
        for lane in all {
            marks += lane.unconfirmed.map { Mark(key: $0.key, expires: $0.value) }
            lane.connection.shutDown()
        }
        metrics.replayQueued.set(Int64(0))
        let now = MonotonicClock.milliseconds()
        marks.removeAll { $0.expires <= now }
        guard !marks.isEmpty, let base = event_base_new() else { return }
        var endpoint = self.endpoint
        endpoint.timeoutMilliseconds = 2_000
        let connection = RedisConnection(base: base, endpoint: endpoint, log: log)
        var remaining = marks.count
        var written = 0
        for mark in marks {
            connection.send(SharedClaim.deliveredCommand(key: mark.key, ttlMilliseconds: max(1, mark.expires - now))) { result in
                remaining -= 1
                if case .success(let reply) = result, SharedClaim.writeSucceeded(reply) { written += 1 }
            }
        }
        let deadline = now + 3_000
        while remaining > 0, MonotonicClock.milliseconds() < deadline {
            var tick = timeval(milliseconds: 50)
            event_base_loopexit(base, &tick)
            event_base_loop(base, 0)
        }
        connection.shutDown()
        event_base_free(base)
        if written < marks.count {
            log.warning("delivered marks not written to redis at shutdown", metadata: [
                "ledger.marks.written": .stringConvertible(written), "ledger.marks.lost": .stringConvertible(marks.count - written),
            ])
        }
    }

    // MARK: Commands, breaker, fallback

    private func lane(for worker: Worker) -> Lane {
        if let lane = lanes.withLock({ $0[worker.index] }) { return lane }
        let lane = Lane(connection: RedisConnection(base: worker.base, endpoint: endpoint, log: log), index: worker.index)
        lanes.withLock { $0[worker.index] = lane }
        return lane
    }

    /// Whether to send a command now (false while the breaker is open; counted as skipped).
    private func admitted(_ command: RedisMetrics.Command) -> Bool {
        let admission = breaker.withLock { $0.allows(now: MonotonicClock.milliseconds()) }
        if admission == .skip { metrics.command(command, .skipped) }
        return admission != .skip
    }

    /// Sends a command and hands its reply on, or nil when none came or it was an error reply
    /// (both counted, and both count against the breaker; `NOSCRIPT` passes when asked for).
    private func send(_ command: [[UInt8]], as kind: RedisMetrics.Command, on lane: Lane, acceptNoScript: Bool = false,
                      then: @escaping (RESPValue?) -> Void) {
        let started = MonotonicClock.microseconds()
        lane.connection.send(command) { [self] result in
            let elapsed = MonotonicClock.microseconds() - started
            switch result {
            case .success(let reply):
                if case .error = reply, !(acceptNoScript && SharedClaim.isNoScript(reply)) {
                    metrics.command(kind, .errorReply, microseconds: elapsed)
                    broke(on: lane)
                    then(nil)
                    return
                }
                metrics.command(kind, .ok, microseconds: elapsed)
                let change = breaker.withLock { $0.succeeded() }
                if change == .closed { recovered(on: lane) }
                then(reply)
            case .failure(let failure):
                if case .timedOut = failure { metrics.command(kind, .timeout) } else { metrics.command(kind, .connection) }
                broke(on: lane, failure)
                then(nil)
            }
        }
    }

    /// A reply that was not an error but not what the command can answer either.
    private func failed(_ kind: RedisMetrics.Command, _ result: RedisMetrics.Result) {
        metrics.command(kind, result)
        _ = breaker.withLock { $0.failed(now: MonotonicClock.milliseconds()) }
    }

    private func broke(on lane: Lane, _ failure: RedisFailure? = nil) {
        let change = breaker.withLock { $0.failed(now: MonotonicClock.milliseconds()) }
        guard change == .opened else { return }
        metrics.fallbackActive.set(Int64(1))
        log.warning("redis unavailable: the shared ledger is bypassed", metadata: [
            "redis.host": .string(endpoint.host), "ledger.on_unavailable": .string(policy.rawValue),
            "error": .string(failure?.description ?? "error replies"),
        ])
    }

    private func recovered(on lane: Lane) {
        metrics.fallbackActive.set(Int64(0))
        let queued = replay.withLock { $0.count }
        log.info("redis available again", metadata: ["redis.host": .string(endpoint.host), "ledger.marks.to_replay": .stringConvertible(queued)])
        replayMarks(on: lane)
    }

    /// Redis could not answer for this event: the policy decides.
    private func fallBack(retryCount: Int, answer: (StoreClaim) -> Void) {
        switch policy {
        case .local:
            metrics.fellBack(.local)
            answer(.forward)
        case .reject where retryCount >= Self.lastAttempt:
            metrics.fellBack(.lastAttempt)
            answer(.forward)
        case .reject:
            metrics.fellBack(.rejected)
            answer(.unavailable)
        }
    }

    /// Another replica holds the claim: look again after the next delay, until it is delivered
    /// (a duplicate), gone (released or expired: 503 in_flight, the sender retries) or the wait
    /// passed the longest forward. A poll Redis cannot answer ends the wait with 503 in_flight,
    /// never with a forward: the other replica may still be forwarding. Except on the sender's
    /// last attempt: a wait that ends without a delivered mark forwards, because a possible
    /// duplicate beats the dead-letter queue (a claim still there after the longest forward
    /// most likely belongs to a replica that died).
    private func poll(_ redisKey: [UInt8], schedule: inout SharedClaim.PollSchedule, lastAttempt: Bool, lane: Lane,
                      worker: Worker, answer: @escaping (StoreClaim) -> Void) {
        let notDelivered: StoreClaim = lastAttempt ? .forward : .claimedElsewhere
        guard let delay = schedule.nextDelay() else {
            answer(notDelivered)
            return
        }
        var next = schedule
        Self.after(milliseconds: delay, on: worker.base) { [self] in
            guard admitted(.poll) else {
                answer(notDelivered)
                return
            }
            send(SharedClaim.pollCommand(key: redisKey), as: .poll, on: lane) { [self] reply in
                switch reply.map(SharedClaim.pollAnswer) ?? .failed {
                case .delivered:
                    answer(.delivered)
                case .stillClaimed:
                    poll(redisKey, schedule: &next, lastAttempt: lastAttempt, lane: lane, worker: worker, answer: answer)
                case .gone:
                    answer(notDelivered)
                case .failed:
                    if reply != nil { failed(.poll, .errorReply) }
                    answer(notDelivered)
                }
            }
        }
    }

    /// The longest the claimer of an event of ledger `route` (`Configuration.Route.ledgerName`) can
    /// take: as long as waiting for it helps.
    private func longestForward(route: String, worker: Worker) -> Int64 {
        for compiled in worker.gateway.runtime.compiledRoutes {
            if let found = compiled.destinations.first(where: { $0.ledgerName == route }) {
                return ConfigurationLoader.longestForward(found.upstream).milliseconds
            }
        }
        return claimLifetime
    }

    private func queue(_ mark: Mark) {
        let (dropped, count) = replay.withLock { q in (q.add(mark), q.count) }
        if dropped > 0 { metrics.replayDropped.increment(by: Int64(dropped)) }
        metrics.replayQueued.set(Double(count))
    }

    /// Writes queued marks in batches, one batch in flight at a time (process-wide), with the
    /// time each has left; stops at the first failure (the failed marks go back in the queue).
    private func replayMarks(on lane: Lane) {
        let batch = replay.withLock { q -> [Mark] in
            guard !q.replaying, q.count > 0 else { return [] }
            q.replaying = true
            return q.take(Self.replayBatch)
        }
        guard !batch.isEmpty else { return }
        let now = MonotonicClock.milliseconds()
        let live = batch.filter { $0.expires > now }
        var remaining = live.count
        var failedMarks: [Mark] = []
        let finish = { [self] in
            let count = replay.withLock { q -> Int in
                q.replaying = false
                for mark in failedMarks { _ = q.add(mark) }
                return q.count
            }
            metrics.replayQueued.set(Double(count))
            if failedMarks.isEmpty, count > 0 { replayMarks(on: lane) }
        }
        guard remaining > 0 else {
            finish()
            return
        }
        for mark in live {
            send(SharedClaim.deliveredCommand(key: mark.key, ttlMilliseconds: mark.expires - now), as: .replay, on: lane) { [self] reply in
                if let reply, SharedClaim.writeSucceeded(reply) {
                    metrics.replayed.increment()
                } else {
                    failedMarks.append(mark)
                }
                remaining -= 1
                if remaining == 0 { finish() }
            }
        }
    }

    /// Runs `work` on `base`'s thread after a delay (libevent frees the one-shot event).
    private static func after(milliseconds: Int64, on base: OpaquePointer, _ work: @escaping () -> Void) {
        final class Box {
            let work: () -> Void
            init(_ work: @escaping () -> Void) { self.work = work }
        }
        // Ownership: the box is retained until the timer fires (leaked if the loop stops first,
        // at shutdown).
        let box = Unmanaged.passRetained(Box(work)).toOpaque()
        var tv = timeval(milliseconds: max(1, milliseconds))
        event_base_once(base, -1, Int16(EV_TIMEOUT), { _, _, arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().work()
        }, box, &tv)
    }
}
