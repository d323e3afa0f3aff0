import HookgateCore

/// Where an event is recorded as delivered: only here, and only when the upstream accepted it
/// (the rule is `SenderAnswer.forOutcome` in HookgateCore/Delivery/UpstreamAnswerPolicy.swift).
extension Worker {
    /// Ends a forward: records the event as delivered only if the upstream accepted it, answers
    /// the sender, then answers every copy that waited on this one.
    func finishForward(_ job: ForwardJob, outcome: UpstreamOutcome?, reply: UpstreamReply?, busy: Rejection?) {
        let exchange = job.exchange
        let route = exchange.route!
        let answer: SenderAnswer = busy.map { .reject($0) } ?? SenderAnswer.forOutcome(outcome!)
        var delivered = false
        if case .relay(_, let accepted) = answer { delivered = accepted }
        let upstreamStatus: Int? = if case .response(let s)? = outcome { s } else { nil }
        if outcome != nil {
            gateway.recordUpstream(route: route, status: upstreamStatus,
                                   microseconds: MonotonicClock.microseconds() - job.startedMicroseconds)
        }
        // An event without an id was never claimed: nothing to record, nobody waits on it.
        let key = exchange.event?.key
        let destination = job.destination
        destination.metrics.record(delivered ? .forwarded : .failed)
        let waiters = key.map { gateway.ledger.finish(route: destination.ledgerName, key: $0, delivered: delivered) } ?? []
        if let key, !delivered {
            // Released before the sender hears of the failure, so that its retry, on whichever
            // replica it lands, finds the claim gone rather than waiting on it.
            gateway.store.release(route: destination.ledgerName, key: key, worker: self)
        }
        if let fanOut = job.fanOut {
            // One of several destinations: the sender is answered when the last one finishes.
            fanOut.finished(destination, result: delivered ? .delivered : .forStatus(upstreamStatus),
                            upstreamStatus: upstreamStatus, upstreamError: outcome?.errorDetail)
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
        if let key, delivered {
            // After the answer: a store that fails here never turns the upstream's 2xx into a 5xx.
            gateway.store.recordDelivered(route: destination.ledgerName, key: key, ttlMilliseconds: route.settings.dedup.ttl.milliseconds,
                                          worker: self)
        }
        if !retiring.isEmpty { mailbox.post { [self] in freeIdleRetiredPools() } }
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: delivered) }
        }
    }
}
