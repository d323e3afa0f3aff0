import CLibevent
import HookgateCore
import Logging

/// One redelivery in flight: the spooled event and the route it goes out under.
final class Redelivery {
    let event: SpooledEvent
    let attempt: Int
    let route: CompiledRoute
    let destination: CompiledDestination
    unowned let deliverer: Redeliverer

    init(event: SpooledEvent, attempt: Int, route: CompiledRoute, destination: CompiledDestination, deliverer: Redeliverer) {
        self.event = event
        self.attempt = attempt
        self.route = route
        self.destination = destination
        self.deliverer = deliverer
    }

    /// The pool's report (`UpstreamPool.end`).
    func finished(_ job: ForwardJob, outcome: UpstreamOutcome?, busy: Bool) {
        deliverer.finished(self, outcome: outcome, busy: busy)
    }
}

/// Sends the spool's pending events to their upstreams when they are due (issue 11), on the first
/// worker's loop but on its own connections (`spool.max_connections` per destination), so that
/// live traffic keeps its pool. Each redelivery is signed afresh (`RedeliveryHeaders`); its
/// outcome (`SpoolPolicy.redeliveryResult`) removes the event, marks it dead, or schedules the next
/// attempt (`RedeliveryBackoff`). Every change goes to the spool thread; this loop never touches
/// the file. Stops starting redeliveries when the gateway drains; those in flight count as
/// forwards in flight, so a graceful shutdown lets them finish.
final class Redeliverer: @unchecked Sendable {
    unowned let gateway: Gateway
    unowned let worker: Worker
    let spool: Spool
    private let log = Logger(label: "hookgate")
    private var timer: OpaquePointer?
    private var inFlight: [Int64: Redelivery] = [:]
    /// Events whose outcome is known but whose spool row may not say so yet (its change is queued
    /// on the spool thread): never fetched again meanwhile.
    private var settling: [Int64: Int64] = [:]
    private var pools: [ObjectIdentifier: UpstreamPool] = [:]
    private var fetching = false
    /// How often the spool is asked for due events (also how soon a CLI `retry` is seen).
    static let tickMilliseconds: Int64 = 250
    /// Redeliveries in flight at most, over every destination.
    static let maximumInFlight = 256
    /// How long a finished redelivery's event is not fetched again: its outcome is queued before
    /// any later read, so this only matters when recording the outcome failed.
    static let settlingMilliseconds: Int64 = 2_000

    init(gateway: Gateway, worker: Worker, spool: Spool) {
        self.gateway = gateway
        self.worker = worker
        self.spool = spool
    }

    /// Runs on the worker's loop.
    func start() {
        timer = event_new(worker.base, -1, Int16(EV_PERSIST), { _, _, arg in
            Unmanaged<Redeliverer>.fromOpaque(arg!).takeUnretainedValue().tick()
        }, Unmanaged.passUnretained(self).toOpaque())
        var interval = timeval(milliseconds: Self.tickMilliseconds)
        event_add(timer, &interval)
    }

    /// After the loop ended: connections and timer freed, nothing reported.
    func tearDown() {
        if let timer { event_free(timer) }
        timer = nil
        for pool in pools.values { pool.abandonAll() }
        pools.removeAll()
        inFlight.removeAll()
    }

    private func tick() {
        guard !gateway.isDraining, !fetching else { return }
        // Only as many events as there are free redelivery connections: each row carries its body.
        let spooling = gateway.runtime.compiledRoutes.reduce(0) { $0 + ($1.settings.spool == nil ? 0 : $1.destinations.count) }
        let room = min(Self.maximumInFlight, max(spooling, 1) * spool.configuration.maxConnections) - inFlight.count
        guard room > 0 else { return }
        let now = WallClock.milliseconds()
        settling = settling.filter { now - $0.value < Self.settlingMilliseconds }
        let skip = Set(inFlight.keys).union(settling.keys)
        fetching = true
        spool.read { [self, worker] file in
            var expired: [SpooledEvent] = []
            var due: [SpooledEvent] = []
            var failure: String?
            do {
                expired = try file.transaction { try file.expire(now: now) }
                due = try file.due(now: now, limit: room + skip.count).filter { !skip.contains($0.id) }
            } catch {
                failure = "\(error)"
            }
            worker.mailbox.post { self.fetched(due, expired: expired, failure: failure) }
        }
    }

    private func fetched(_ due: [SpooledEvent], expired: [SpooledEvent], failure: String?) {
        fetching = false
        if let failure { log.error("spool: cannot read due events", metadata: ["error": .string(failure)]) }
        for event in expired {
            log.warning("spooled event dead", metadata: metadata(event, [
                "reason": .string("max_age passed"), "attempts": .stringConvertible(event.attempts),
            ]))
        }
        guard !gateway.isDraining else { return }
        let current = destinations()
        pools = pools.filter { key, pool in current.identities.contains(key) || pool.busyConnections > 0 || pool.waitingCount > 0 }
        // Redeliveries in flight per destination (each has `spool.max_connections`).
        var busy: [String: Int] = [:]
        for redelivery in inFlight.values { busy[redelivery.event.ledger, default: 0] += 1 }
        for event in due where inFlight[event.id] == nil && inFlight.count < Self.maximumInFlight {
            guard let (route, destination) = current.byLedger[event.ledger] else {
                let next = WallClock.milliseconds() + 60_000
                spool.record { try $0.markRetry(id: event.id, attempts: event.attempts, next: next,
                                                 error: "route or destination no longer configured") }
                continue
            }
            guard busy[event.ledger, default: 0] < spool.configuration.maxConnections else { continue }
            busy[event.ledger, default: 0] += 1
            send(event, route: route, destination: destination)
        }
    }

    private func destinations() -> (byLedger: [String: (CompiledRoute, CompiledDestination)], identities: Set<ObjectIdentifier>) {
        var byLedger: [String: (CompiledRoute, CompiledDestination)] = [:]
        var identities: Set<ObjectIdentifier> = []
        for route in gateway.runtime.compiledRoutes {
            for destination in route.destinations {
                byLedger[destination.ledgerName] = (route, destination)
                identities.insert(ObjectIdentifier(destination))
            }
        }
        return (byLedger, identities)
    }

    private func send(_ event: SpooledEvent, route: CompiledRoute, destination: CompiledDestination) {
        let attempt = event.attempts + 1
        let upstream = destination.upstream
        let addHeaders = destination.header.map { upstream.addHeaders + [("X-Hookgate-Destination", $0)] } ?? upstream.addHeaders
        let secret = route.settings.verify.secrets.first?.bytes ?? []
        let fields = RedeliveryHeaders.build(stored: RedeliveryHeaders.decode(event.headers), body: event.body, secret: secret,
                                             now: WallClock.seconds(), attempt: attempt, addHeaders: addHeaders)
        var head = HeadWriter(postTo: upstream.url.target, authority: destination.upstreamAuthority)
        head.add(contentsOf: fields.map { ($0.name, $0.value) })
        let requestHead = head.finish(contentLength: event.body.count)
        let pool = pool(for: destination)
        // What stays in memory while it is in flight: the row without its body and headers.
        var light = event
        light.body = []
        light.headers = []
        let redelivery = Redelivery(event: light, attempt: attempt, route: route, destination: destination, deliverer: self)
        inFlight[event.id] = redelivery
        gateway.forwardStarted()
        pool.submit(ForwardJob(redelivery: redelivery, requestHead: requestHead, body: event.body, pool: pool))
    }

    private func pool(for destination: CompiledDestination) -> UpstreamPool {
        if let pool = pools[ObjectIdentifier(destination)] { return pool }
        let pool = worker.makePool(for: destination, maxConnections: spool.configuration.maxConnections)
        pools[ObjectIdentifier(destination)] = pool
        return pool
    }

    func finished(_ redelivery: Redelivery, outcome: UpstreamOutcome?, busy: Bool) {
        let event = redelivery.event
        inFlight[event.id] = nil
        gateway.forwardFinished()
        let now = WallClock.milliseconds()
        settling[event.id] = now
        let result = SpoolPolicy.redeliveryResult(outcome, busy: busy)
        var fields: Logger.Metadata = [
            "attempt": .stringConvertible(redelivery.attempt), "result": .string(result.word),
        ]
        if case .response(let status)? = outcome { fields["upstream.status"] = .stringConvertible(status) }
        spool.metrics.redelivered(route: event.route, result: result.word)
        // A connection is free: the next due event goes out now, not at the next tick, so that a
        // backlog drains at the upstream's pace once it is back.
        defer { worker.mailbox.post { [self] in tick() } }
        let id = event.id
        let attempts = redelivery.attempt
        switch result {
        case .delivered:
            log.info("event redelivered", metadata: metadata(event, fields))
            spool.record { try $0.remove(id: id) }
            spool.removed(1)
            gateway.ledger.hold(route: event.ledger, key: event.key)
            gateway.store.recordDelivered(route: event.ledger, key: event.key,
                                          ttlMilliseconds: redelivery.route.settings.dedup.ttl.milliseconds, worker: worker)
        case .dead(let reason):
            fields["reason"] = .string(reason)
            log.warning("spooled event dead", metadata: metadata(event, fields))
            spool.record { try $0.markDead(id: id, attempts: attempts, error: reason) }
        case .retry(let reason):
            let settings = redelivery.route.settings.spool ?? RouteSpool()
            let delay = RedeliveryBackoff.delayMilliseconds(attempt: attempts + 1, initial: settings.initialBackoff.milliseconds,
                                                            maximum: settings.maximumBackoff.milliseconds, unit: Double.random(in: 0..<1))
            fields["error"] = .string(reason)
            fields["next_attempt_ms"] = .stringConvertible(delay)
            log.info("event redelivered", metadata: metadata(event, fields))
            spool.record { try $0.markRetry(id: id, attempts: attempts, next: now + delay, error: reason) }
        }
    }

    private func metadata(_ event: SpooledEvent, _ extra: Logger.Metadata) -> Logger.Metadata {
        var fields: Logger.Metadata = [
            "route": .string(event.route), "destination": .string(event.destination), "event.id": .string(event.eventID),
            "spool.id": .stringConvertible(event.id),
        ]
        fields.merge(extra) { $1 }
        return fields
    }
}
