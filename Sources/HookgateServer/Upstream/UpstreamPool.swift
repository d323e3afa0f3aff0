import CLibevent
import HookgateCore

/// The connections of one worker to one destination's upstream: at most `maxConnections`, each reused
/// (keep-alive); requests beyond that wait in FIFO order, at most `queueLimit`, and are then
/// answered 503 (nothing was sent, so the retry is safe). A request that is sent always gets the
/// whole `upstream.timeout` for its answer: sending it with only a sliver of time left would make
/// hookgate answer 504 while the upstream accepts it, and the sender's retry a second delivery.
final class UpstreamPool {
    let destination: CompiledDestination
    private let url: UpstreamURL
    private let base: OpaquePointer
    private let dns: OpaquePointer?
    /// Connections ready for a request.
    private var idle: [UpstreamConnection] = []
    /// Connections that finished an answer this loop turn, waiting for the next (`settled`).
    private var parked: [ObjectIdentifier: UpstreamConnection] = [:]
    private var opened = 0
    private var busy = 0
    private var waiting: [ForwardJob] = []
    private var waitingHead = 0
    /// Every job placed and not yet ended, so that a teardown can release them.
    private var active: [ObjectIdentifier: ForwardJob] = [:]
    /// Requests waiting beyond this many are refused at once (503) instead of queued.
    static let maximumWaiting = 10_000
    /// At most this many connections: the upstream's `max_connections`, or the spool's own
    /// budget for a redelivery pool.
    private let connectionLimit: Int

    init(destination: CompiledDestination, base: OpaquePointer, dns: OpaquePointer?, maxConnections: Int? = nil) {
        self.destination = destination
        connectionLimit = maxConnections ?? destination.upstream.maxConnections
        url = destination.upstream.url
        self.base = base
        self.dns = dns
    }

    /// Connections currently carrying a request.
    var busyConnections: Int { busy }
    var waitingCount: Int { waiting.count - waitingHead }

    /// How long a request may wait for a free connection: what the sender's 30 s leave after the
    /// upstream's own timeout and a second of margin, and never more than that timeout.
    var queueLimitMilliseconds: Int64 {
        let timeout = destination.upstream.timeout.milliseconds
        return max(0, min(timeout, ConfigurationLoader.senderDeadline.milliseconds - 1_000 - timeout))
    }

    func submit(_ job: ForwardJob) {
        active[ObjectIdentifier(job)] = job
        place(job)
    }

    /// Releases every job still in the pool when the loop has ended with forwards in flight (the
    /// shutdown grace expired): their timers, connections and exchanges are freed, nothing is
    /// reported.
    func abandonAll() {
        for job in active.values {
            job.connection?.abandon()
            job.connection = nil
            _ = job.finish()
        }
        active.removeAll()
        waiting.removeAll()
        waitingHead = 0
        idle.removeAll()
        for connection in parked.values { connection.abandon() }
        parked.removeAll()
    }

    private func place(_ job: ForwardJob) {
        while let last = idle.last, last.closed {
            idle.removeLast()
            opened -= 1
        }
        if let connection = idle.popLast() {
            dispatch(job, on: connection)
        } else if opened < connectionLimit {
            guard let connection = UpstreamConnection(pool: self, base: base, dns: dns, url: url, tls: destination.upstreamTLS,
                                                      verify: !destination.upstream.tlsInsecureSkipVerify) else {
                end(job, outcome: .unreachable("cannot open a connection"), reply: nil)
                return
            }
            opened += 1
            dispatch(job, on: connection)
        } else if waitingCount >= Self.maximumWaiting || queueLimitMilliseconds == 0 {
            end(job, busy: Rejection(.upstreamBusy, "every upstream connection is busy"))
        } else {
            job.arm(base: base, milliseconds: queueLimitMilliseconds)
            waiting.append(job)
        }
    }

    private func dispatch(_ job: ForwardJob, on connection: UpstreamConnection) {
        job.connection = connection
        job.arm(base: base, milliseconds: destination.upstream.timeout.milliseconds)
        busy += 1
        destination.route.metrics.connectionsInUse(change: 1)
        connection.send(job)
    }

    /// The job's one timer fired.
    func deadlinePassed(_ job: ForwardJob) {
        if let connection = job.connection {
            connection.abort()  // reports back through `finished`
        } else {
            // Still waiting for a connection: `dequeue` skips finished jobs.
            end(job, busy: Rejection(.upstreamBusy, "no upstream connection became free in time"))
        }
    }

    /// A connection's report on the job it carried. A connection still open is parked, not
    /// reused now: the queued job waits for `settled`, on a later loop turn.
    func finished(_ job: ForwardJob, on connection: UpstreamConnection, outcome: UpstreamOutcome, reply: UpstreamReply?) {
        job.connection = nil
        busy -= 1
        destination.route.metrics.connectionsInUse(change: -1)
        let closed = connection.closed
        if closed {
            opened -= 1
        } else {
            parked[ObjectIdentifier(connection)] = connection
            connection.park()
        }
        end(job, outcome: outcome, reply: reply)
        if closed, let next = dequeue() { place(next) }
    }

    /// A parked connection has been through a loop turn under its idle read handler (which
    /// closed it if anything arrived): it takes the next queued job if nothing is readable now,
    /// or becomes idle; a closed one makes room for a new connection.
    func settled(_ connection: UpstreamConnection) {
        guard parked.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        guard !connection.closed else {
            opened -= 1
            if let next = dequeue() { place(next) }
            return
        }
        guard let next = dequeue() else {
            idle.append(connection)
            return
        }
        if connection.hasNothingToRead() {
            dispatch(next, on: connection)
        } else {
            connection.close()
            opened -= 1
            place(next)
        }
    }

    private func end(_ job: ForwardJob, outcome: UpstreamOutcome? = nil, reply: UpstreamReply? = nil, busy rejection: Rejection? = nil) {
        active[ObjectIdentifier(job)] = nil
        guard job.finish() else { return }
        switch job.owner {
        case .exchange(let exchange): exchange.worker.finishForward(job, outcome: outcome, reply: reply, busy: rejection)
        case .redelivery(let redelivery): redelivery.finished(job, outcome: outcome, busy: rejection != nil)
        }
    }

    private func dequeue() -> ForwardJob? {
        while waitingHead < waiting.count {
            let job = waiting[waitingHead]
            waitingHead += 1
            if waitingHead == waiting.count {
                waiting.removeAll(keepingCapacity: true)
                waitingHead = 0
            } else if waitingHead > 1024 && waitingHead * 2 > waiting.count {
                waiting.removeFirst(waitingHead)
                waitingHead = 0
            }
            if !job.finished { return job }
        }
        return nil
    }
}
