import CLibevent
import HookgateCore

/// An upstream's answer: its head and its body (in the connection's buffer, to be moved out
/// before the connection's next request).
struct UpstreamReply {
    let head: HTTPResponseHead
    let body: OpaquePointer
}

/// Who waits for a forward's end: the inbound request it carries, or the spool's redeliverer.
enum ForwardOwner {
    case exchange(InboundExchange)
    case redelivery(Redelivery)
}

/// One forward: the request to send, who waits for its answer, and the one timer that bounds it:
/// first the wait for a free connection, then, re-armed when the request is sent, the upstream's
/// whole answer.
final class ForwardJob {
    let owner: ForwardOwner
    let requestHead: [UInt8]
    let startedMicroseconds: Int64 = MonotonicClock.microseconds()
    let pool: UpstreamPool
    /// The body to send, moved out as it is sent: the inbound buffer itself, or this job's own
    /// copy when the event goes to several destinations or is redelivered.
    let body: OpaquePointer
    private let ownsBody: Bool
    /// The body's bytes, kept when the forward may end in the spool (the route spools and this is
    /// one of the sender's last attempts): `body` is gone once sent.
    let spoolCopy: [UInt8]?
    /// The coordinator that answers the sender once every matched destination finished; nil
    /// when this is the event's only forward (its answer is relayed).
    let fanOut: FanOut?
    var connection: UpstreamConnection?
    private(set) var finished = false
    private var deadline: OpaquePointer?

    init(exchange: InboundExchange, requestHead: [UInt8], pool: UpstreamPool, fanOut: FanOut? = nil, keepForSpool: Bool = false) {
        owner = .exchange(exchange)
        self.requestHead = requestHead
        self.pool = pool
        self.fanOut = fanOut
        let length = evbuffer_get_length(exchange.body)
        spoolCopy = keepForSpool
            ? (length > 0 ? Array(UnsafeRawBufferPointer(start: evbuffer_pullup(exchange.body, -1), count: length)) : []) : nil
        if fanOut != nil {
            let copy = evbuffer_new()!
            if length > 0 { evbuffer_add(copy, evbuffer_pullup(exchange.body, -1), length) }
            body = copy
            ownsBody = true
        } else {
            body = exchange.body
            ownsBody = false
        }
    }

    /// A redelivery from the spool: its own copy of the body.
    init(redelivery: Redelivery, requestHead: [UInt8], body bytes: [UInt8], pool: UpstreamPool) {
        owner = .redelivery(redelivery)
        self.requestHead = requestHead
        self.pool = pool
        fanOut = nil
        spoolCopy = nil
        let copy = evbuffer_new()!
        bytes.withUnsafeBytes { if $0.count > 0 { _ = evbuffer_add(copy, $0.baseAddress, $0.count) } }
        body = copy
        ownsBody = true
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
