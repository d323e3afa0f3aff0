import CLibevent
import HookgateCore
import Logging

private let spoolLog = Logger(label: "hookgate")

/// Where an event is recorded as delivered: only here, and only when the upstream accepted it
/// (the rule is `SenderAnswer.forOutcome` in HookgateCore/Delivery/UpstreamAnswerPolicy.swift),
/// or when the spool holds it on disk (`SpoolPolicy.shouldSpool`; issue 11).
extension Worker {
    /// Ends a forward: records the event as delivered only if the upstream accepted it, answers
    /// the sender, then answers every copy that waited on this one. A retriable failure of one of
    /// the sender's last attempts on a route that spools first waits for the spool: held on disk,
    /// it counts as delivered and the sender gets 202; refused (full, write failed), the sender
    /// gets what it would have got without a spool.
    func finishForward(_ job: ForwardJob, outcome: UpstreamOutcome?, reply: UpstreamReply?, busy: Rejection?) {
        guard case .exchange(let exchange) = job.owner else { return }
        let route = exchange.route!
        let answer: SenderAnswer = busy.map { .reject($0) } ?? SenderAnswer.forOutcome(outcome!)
        var delivered = false
        if case .relay(_, let accepted) = answer { delivered = accepted }
        let upstreamStatus: Int? = if case .response(let s)? = outcome { s } else { nil }
        if outcome != nil {
            gateway.recordUpstream(route: route, status: upstreamStatus,
                                   microseconds: MonotonicClock.microseconds() - job.startedMicroseconds)
        }
        if !delivered, let event = exchange.event, let key = event.key, let body = job.spoolCopy, let settings = route.settings.spool,
           let spool = gateway.spool, SpoolPolicy.shouldSpool(answer, retryCount: exchange.retryCount, settings: settings) {
            // The upstream's answer is relayed if the spool refuses: kept out of its connection,
            // which is reused meanwhile.
            let kept = reply.map { reply -> UpstreamReply in
                let copy = evbuffer_new()!
                evbuffer_add_buffer(copy, reply.body)
                return UpstreamReply(head: reply.head, body: copy)
            }
            let spooled = spooledEvent(exchange, event: event, key: key, body: body, destination: job.destination, settings: settings)
            spool.hold(spooled, worker: self) { [self] result in
                defer { if let kept { evbuffer_free(kept.body) } }
                switch result {
                case .held(let id, let new):
                    if new { spool.metrics.spooled(route: route.name) }
                    spoolLog.info("event spooled", metadata: [
                        "route": .string(route.name), "destination": .string(job.destination.name), "event.id": .string(key.id),
                        "spool.id": .stringConvertible(id), "already_held": .stringConvertible(!new),
                        "retry_count": .stringConvertible(exchange.retryCount), "request.id": .string(exchange.requestID),
                    ])
                    settle(job, exchange: exchange, answer: answer, delivered: false, spooled: true, key: key, outcome: outcome,
                           reply: kept, upstreamStatus: upstreamStatus)
                case .full, .failed:
                    let why = if case .failed(let why) = result { why } else { "spool full (spool.max_events)" }
                    spoolLog.error("spool write failed; answered as without a spool", metadata: [
                        "route": .string(route.name), "destination": .string(job.destination.name), "event.id": .string(key.id),
                        "error": .string(why), "request.id": .string(exchange.requestID),
                    ])
                    settle(job, exchange: exchange, answer: answer, delivered: false, spooled: false, key: key, outcome: outcome,
                           reply: kept, upstreamStatus: upstreamStatus)
                }
            }
            return
        }
        settle(job, exchange: exchange, answer: answer, delivered: delivered, spooled: false, key: exchange.event?.key,
               outcome: outcome, reply: reply, upstreamStatus: upstreamStatus)
    }

    /// The forward's end once its outcome is final: ledgers, the sender's answer, the waiting copies.
    /// `spooled`: the spool holds the event on disk (it counts as delivered for dedup).
    private func settle(_ job: ForwardJob, exchange: InboundExchange, answer: SenderAnswer, delivered: Bool, spooled: Bool,
                        key: EventKey?, outcome: UpstreamOutcome?, reply: UpstreamReply?, upstreamStatus: Int?) {
        let route = exchange.route!
        let held = delivered || spooled
        // An event without an id was never claimed: nothing to record, nobody waits on it.
        let destination = job.destination
        destination.metrics.record(delivered ? .forwarded : spooled ? .spooled : .failed)
        let waiters = key.map { gateway.ledger.finish(route: destination.ledgerName, key: $0, delivered: held) } ?? []
        if let key, !held {
            // Released before the sender hears of the failure, so that its retry, on whichever
            // replica it lands, finds the claim gone rather than waiting on it.
            gateway.store.release(route: destination.ledgerName, key: key, worker: self)
        }
        if let fanOut = job.fanOut {
            // One of several destinations: the sender is answered when the last one finishes.
            fanOut.finished(destination, result: delivered ? .delivered : spooled ? .spooled : .forStatus(upstreamStatus),
                            upstreamStatus: upstreamStatus, upstreamError: outcome?.errorDetail)
        } else if spooled {
            exchange.upstreamError = outcome?.errorDetail
            exchange.answerSpooled(upstreamStatus: upstreamStatus)
        } else {
            switch answer {
            case .relay(let status, _):
                exchange.relay(status: status, reply: reply!)
            case .reject(let rejection):
                exchange.upstreamError = outcome?.errorDetail
                exchange.reject(rejection, upstreamStatus: upstreamStatus)
            }
        }
        gateway.forwardFinished()
        if let key, held {
            // After the answer: a store that fails here never turns the upstream's 2xx into a 5xx.
            gateway.store.recordDelivered(route: destination.ledgerName, key: key, ttlMilliseconds: route.settings.dedup.ttl.milliseconds,
                                          worker: self)
        }
        if !retiring.isEmpty { mailbox.post { [self] in freeIdleRetiredPools() } }
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: held) }
        }
    }

    /// The spool's row for a forward that failed: the headers hookgate forwarded (without the
    /// route's `add_headers`, which the redelivery takes from the configuration then) and the body.
    private func spooledEvent(_ exchange: InboundExchange, event: AdmittedEvent, key: EventKey, body: [UInt8],
                              destination: CompiledDestination, settings: RouteSpool) -> SpooledEvent {
        let fields = ForwardedHeaders.build(inbound: exchange.headers, context: forwardContext(exchange, event: event), addHeaders: [])
        let now = WallClock.milliseconds()
        let delay = RedeliveryBackoff.delayMilliseconds(attempt: 1, initial: settings.initialBackoff.milliseconds,
                                                        maximum: settings.maximumBackoff.milliseconds, unit: Double.random(in: 0..<1))
        var spooled = SpooledEvent(route: exchange.route!.name, ledger: destination.ledgerName, source: key.source, eventID: key.id,
                                   type: event.type, firstSeen: now, expires: now + settings.maxAge.milliseconds, nextAttempt: now + delay)
        spooled.headers = RedeliveryHeaders.encode(fields)
        spooled.body = body
        return spooled
    }
}
