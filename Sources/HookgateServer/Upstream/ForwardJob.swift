import CLibevent
import HookgateCore

/// An upstream's answer: its head and its body (in the connection's buffer, to be moved out
/// before the connection's next request).
struct UpstreamReply {
    let head: HTTPResponseHead
    let body: OpaquePointer
}

/// One forward: the request to send, the exchange that waits for its answer, and the one timer
/// that bounds it: first the wait for a free connection, then, re-armed when the request is sent,
/// the upstream's whole answer.
final class ForwardJob {
    let exchange: InboundExchange
    let requestHead: [UInt8]
    let startedMicroseconds: Int64 = MonotonicClock.microseconds()
    let pool: UpstreamPool
    /// The body to send, moved out as it is sent: the inbound buffer itself, or this job's own
    /// copy when the event goes to several destinations.
    let body: OpaquePointer
    private let ownsBody: Bool
    /// The coordinator that answers the sender once every matched destination finished; nil
    /// when this is the event's only forward (its answer is relayed).
    let fanOut: FanOut?
    var connection: UpstreamConnection?
    private(set) var finished = false
    private var deadline: OpaquePointer?

    init(exchange: InboundExchange, requestHead: [UInt8], pool: UpstreamPool, fanOut: FanOut? = nil) {
        self.exchange = exchange
        self.requestHead = requestHead
        self.pool = pool
        self.fanOut = fanOut
        if fanOut != nil {
            let copy = evbuffer_new()!
            let length = evbuffer_get_length(exchange.body)
            if length > 0 { evbuffer_add(copy, evbuffer_pullup(exchange.body, -1), length) }
            body = copy
            ownsBody = true
        } else {
            body = exchange.body
            ownsBody = false
        }
    }

    deinit {
        if ownsBody { evbuffer_free(body) }
    }

    var destination: CompiledDestination { pool.destination }

    /// (Re)arms the timer to fire `milliseconds` from now.
    /// Ownership: the timer's argument is this job, retained until the timer is freed in `finish`.
    func arm(base: OpaquePointer, milliseconds: Int64) {
        if deadline == nil {
            deadline = event_new(base, -1, 0, { _, _, arg in
                let job = Unmanaged<ForwardJob>.fromOpaque(arg!).takeUnretainedValue()
                job.pool.deadlinePassed(job)
            }, Unmanaged.passRetained(self).toOpaque())
        }
        var tv = timeval(milliseconds: milliseconds)
        event_add(deadline, &tv)
    }

    /// Marks the job done and frees its timer; false if it was already done.
    func finish() -> Bool {
        guard !finished else { return false }
        finished = true
        if let deadline {
            event_free(deadline)
            Unmanaged.passUnretained(self).release()
        }
        deadline = nil
        return true
    }
}
