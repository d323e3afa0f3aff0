import HookgateCore
import Logging

/// One event on its way to the several destinations of a route that it matched (or to none):
/// each destination is claimed in its own ledger and forwarded on its own pool, in parallel,
/// and the sender is answered once, when the last one finished (`FanOutAnswer`). Events that
/// match exactly one destination never come here: they take the one-destination path, whose
/// answer is the upstream's own. Runs on its worker's loop thread.
final class FanOut {
    let exchange: InboundExchange
    let route: CompiledRoute
    unowned let worker: Worker
    private let matched: [CompiledDestination]
    private var results: [DestinationResult?]
    private var pending: Int
    private let log = Logger(label: "hookgate")

    init(exchange: InboundExchange, route: CompiledRoute, matched: [CompiledDestination], worker: Worker) {
        self.exchange = exchange
        self.route = route
        self.matched = matched
        self.worker = worker
        results = Array(repeating: nil, count: matched.count)
        pending = matched.count
    }

    /// The destinations whose filter wants the event, in configuration order; the others count
    /// it as filtered. An event without a type (only `vecu` has one, and filters are refused on
    /// other schemes' routes) goes to the destinations that take everything.
    static func select(_ route: CompiledRoute, type: String?) -> [CompiledDestination] {
        route.destinations.filter { destination in
            let wanted = type.map { destination.filter.delivers($0) } ?? (destination.filter == .everything)
            if !wanted { destination.metrics.record(.filtered) }
            return wanted
        }
    }

    func start(event: AdmittedEvent) {
        guard !matched.isEmpty else {
            log.info("event filtered", metadata: [
                "route": .string(route.name), "event.id": .string(event.id ?? ""), "event.type": .string(event.type ?? ""),
            ])
            exchange.answerFanOut(FanOutAnswer.aggregate([]))
            return
        }
        let gateway = worker.gateway
        guard let key = event.key else {
            // No id to de-duplicate on: forwarded to every matching destination, every time.
            for destination in matched {
                gateway.forwardStarted()
                worker.forward(exchange, destination: destination, event: event, fanOut: self)
            }
            return
        }
        let ttl = route.settings.dedup.ttl.milliseconds
        for destination in matched {
            switch gateway.ledger.claim(route: destination.ledgerName, key: key) {
            case .delivered:
                destination.metrics.record(.duplicate)
                gateway.store.renew(route: destination.ledgerName, key: key, ttlMilliseconds: ttl, worker: worker)
                finished(destination, result: .duplicate)
            case .inFlight:
                // Another copy is on its way there: this one is answered retriable rather than
                // made to wait, and its retry finds the outcome.
                destination.metrics.record(.failed)
                finished(destination, result: .failed, detail: "another copy is being forwarded to this destination")
            case .forward:
                gateway.forwardStarted()
                gateway.store.claim(route: destination.ledgerName, key: key, retryCount: exchange.retryCount, worker: worker) { [self] answer in
                    switch answer {
                    case .forward:
                        worker.forward(exchange, destination: destination, event: event, fanOut: self)
                    case .delivered:
                        destination.metrics.record(.duplicate)
                        endWithoutForward(destination, key: key, delivered: true)
                        finished(destination, result: .duplicate)
                    case .claimedElsewhere, .unavailable:
                        destination.metrics.record(.failed)
                        endWithoutForward(destination, key: key, delivered: false)
                        finished(destination, result: .failed, detail: answer == .unavailable ? "ledger unavailable" : "claimed by another replica")
                    }
                }
            }
        }
    }

    /// The store answered for the destination without a forward: its local claim ends and the
    /// copies that waited on it get the same outcome.
    private func endWithoutForward(_ destination: CompiledDestination, key: EventKey, delivered: Bool) {
        let gateway = worker.gateway
        let waiters = gateway.ledger.finish(route: destination.ledgerName, key: key, delivered: delivered)
        gateway.forwardFinished()
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: delivered) }
        }
    }

    /// One destination is done (its ledger already updated): logged, and when it is the last,
    /// the sender is answered.
    /// `upstreamError` is what went wrong with the upstream; `detail`, why no forward was made.
    func finished(_ destination: CompiledDestination, result: DestinationResult, upstreamStatus: Int? = nil,
                  upstreamError: String? = nil, detail: String? = nil) {
        guard let i = matched.firstIndex(where: { $0 === destination }), results[i] == nil else { return }
        results[i] = result
        pending -= 1
        var metadata: Logger.Metadata = [
            "route": .string(route.name), "destination": .string(destination.name), "result": .string(result.word),
            "event.id": .string(exchange.event?.id ?? ""), "request.id": .string(exchange.requestID),
        ]
        if let upstreamStatus { metadata["upstream.status"] = .stringConvertible(upstreamStatus) }
        if let upstreamError { metadata["upstream.error"] = .string(upstreamError) }
        if let detail { metadata["detail"] = .string(detail) }
        log.info("destination finished", metadata: metadata)
        guard pending == 0 else { return }
        exchange.answerFanOut(FanOutAnswer.aggregate(zip(matched, results).map { ($0.name, $1!) }))
    }
}
