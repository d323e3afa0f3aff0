import CLibevent
import HookgateCore

/// One client connection on the webhook port: reads requests with the core's strict HTTP/1.x
/// parser, one at a time (pipelined requests wait in the input buffer, reading is paused while a
/// request is being handled), and writes answers in order. One timer bounds every phase: the
/// whole head and body must arrive within `client_timeout` (slowloris and slow bodies are cut,
/// not merely idle ones), and an idle keep-alive connection is closed after it. A client that
/// pipelines requests but does not read the answers is not read from while more than
/// `maximumQueuedAnswerBytes` of answers wait for it (nginx stops reading a pipelining client
/// until its answer is written): the answers queued for a client are bounded, and its idle timer
/// closes it if it never reads.
///
/// Ownership: the worker's connection table holds the connection while it is open; an exchange
/// holds it while its request is handled. libevent callbacks get it unretained and never outlive
/// `close()`, which frees the bufferevent and timer.
///
/// Plain-TCP connections are read by the connection's own read event (`SocketRead`: one `readv`
/// into the bufferevent's input, no `ioctl(FIONREAD)`), sized by what is expected (the rest of a
/// body, up to 64 KiB); the bufferevent only writes. TLS connections are read by the bufferevent.
final class InboundConnection {
    private enum State {
        case idle
        case head
        case body(HTTPRequestHead, remaining: Int)
        case chunked(HTTPRequestHead, ChunkedBodyReader)
        case processing(HTTPRequestHead)
        case closing
        case closed

        var isIdle: Bool { if case .idle = self { true } else { false } }
    }

    unowned let worker: Worker
    let clientAddress: String
    let isTLS: Bool
    private var bev: OpaquePointer?
    private var timer: OpaquePointer!
    /// Plain TCP only: the socket's read event, and why it is not armed (input at `readLimit`
    /// until it is consumed; end of stream or an error until reading is asked for again).
    private var readEvent: OpaquePointer?
    private var readPaused = false
    private var readStopped = false
    /// Unread input beyond which the socket is not read (a bufferevent's high read watermark).
    private var readLimit: Int
    /// The most a read takes while a head is expected (libevent's own read size).
    private static let headReadBytes = 4_096
    private static let bodyReadBytes = 65_536
    /// The body of the request being read or handled; emptied before the next one.
    let body: OpaquePointer = evbuffer_new()
    private var state: State = .idle
    private var limits: Configuration.Limits
    private var lingering = false
    private var peerClosed = false
    private var lingeringBytes = 0
    /// Bytes of answers still queued when the timer was last armed: a timer that finds fewer
    /// queued is re-armed (the client is reading a large answer slowly, it is not idle).
    private var queuedAtArm = 0
    /// How long a connection being closed waits for its client to take (more of) the last answer:
    /// a client that never reads it does not hold the connection.
    private static let closingMilliseconds: Int64 = 5_000
    /// Beyond this many bytes of answers queued for the client, no further request is read.
    static let maximumQueuedAnswerBytes = 65_536

    init(worker: Worker, bufferevent: OpaquePointer, clientAddress: String, isTLS: Bool, limits: Configuration.Limits) {
        self.worker = worker
        bev = bufferevent
        self.clientAddress = clientAddress
        self.isTLS = isTLS
        self.limits = limits
        readLimit = limits.maxHeaderBytes + 16_384
        let me = Unmanaged.passUnretained(self).toOpaque()
        timer = event_new(worker.base, -1, 0, { _, _, arg in
            Unmanaged<InboundConnection>.fromOpaque(arg!).takeUnretainedValue().timedOut()
        }, me)
        bufferevent_setcb(bufferevent, { _, arg in
            Unmanaged<InboundConnection>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, { _, arg in
            Unmanaged<InboundConnection>.fromOpaque(arg!).takeUnretainedValue().writable()
        }, { _, events, arg in
            Unmanaged<InboundConnection>.fromOpaque(arg!).takeUnretainedValue().event(events)
        }, me)
        if isTLS {
            bufferevent_enable(bufferevent, Int16(EV_READ | EV_WRITE))
        } else {
            bufferevent_enable(bufferevent, Int16(EV_WRITE))
            readEvent = event_new(worker.base, bufferevent_getfd(bufferevent), Int16(EV_READ | EV_PERSIST), { _, _, arg in
                Unmanaged<InboundConnection>.fromOpaque(arg!).takeUnretainedValue().socketReadable()
            }, me)
            event_add(readEvent, nil)
        }
        arm(limits.clientTimeout.milliseconds)
    }

    deinit {
        if let readEvent { event_free(readEvent) }
        event_free(timer)
        evbuffer_free(body)
    }

    private func arm(_ milliseconds: Int64) {
        var tv = timeval(milliseconds: milliseconds)
        event_add(timer, &tv)
    }

    // MARK: reading

    /// Plain TCP: the socket has something (data, end of stream or an error).
    private func socketReadable() {
        guard let bev, let readEvent else { return }
        let input = bufferevent_get_input(bev)!
        let room = readLimit - evbuffer_get_length(input)
        guard room > 0 else {
            event_del(readEvent)
            readPaused = true
            return
        }
        let wanted: Int = switch state {
        case .body(_, let remaining): min(max(remaining, Self.headReadBytes), Self.bodyReadBytes)
        case .chunked: Self.bodyReadBytes
        default: Self.headReadBytes
        }
        switch SocketRead.read(Int32(bufferevent_getfd(bev)), into: input, maximum: min(room, wanted)) {
        case .read:
            readable()
        case .wouldBlock:
            return
        case .endOfStream:
            stopReading()
            event(Int16(BEV_EVENT_READING | BEV_EVENT_EOF))
        case .failed:
            stopReading()
            event(Int16(BEV_EVENT_READING | BEV_EVENT_ERROR))
        }
    }

    /// As a bufferevent does after end of stream or an error: no more reads until asked.
    private func stopReading() {
        guard let readEvent else { return }
        event_del(readEvent)
        readStopped = true
    }

    /// Reads again (plain TCP: after end of stream too, so that a lingering close sees it again).
    private func startReading() {
        guard let bev else { return }
        guard let readEvent else {
            bufferevent_enable(bev, Int16(EV_READ))
            return
        }
        readStopped = false
        readPaused = false
        event_add(readEvent, nil)
    }

    private func setReadLimit(_ bytes: Int) {
        guard let bev else { return }
        if readEvent == nil {
            bufferevent_setwatermark(bev, Int16(EV_READ), 0, bytes)
        } else {
            readLimit = bytes
        }
    }

    private func readable() {
        consumeInput()
        // Plain TCP: input consumed below the limit, the socket is read again.
        if readPaused, !readStopped, let bev, let readEvent, evbuffer_get_length(bufferevent_get_input(bev)) < readLimit {
            readPaused = false
            event_add(readEvent, nil)
        }
    }

    private func consumeInput() {
        guard let bev else { return }
        let input = bufferevent_get_input(bev)!
        while true {
            switch state {
            case .idle, .head:
                guard evbuffer_get_length(input) > 0 else { return }
                if case .idle = state {
                    // Read on once the client has taken its answers (`writable`).
                    guard queuedOutput <= Self.maximumQueuedAnswerBytes else { return }
                    state = .head
                    limits = worker.limits
                    arm(limits.clientTimeout.milliseconds)
                    // Reading stays on while a request is handled (so a vanished client is noticed),
                    // bounded: beyond this much unread input libevent stops reading the socket.
                    setReadLimit(limits.maxHeaderBytes + 16_384)
                }
                guard readHead(input) else { return }
            case .body(let head, let remaining):
                let moved = min(remaining, evbuffer_get_length(input))
                if moved > 0 { evbuffer_remove_buffer(input, body, moved) }
                if moved < remaining {
                    state = .body(head, remaining: remaining - moved)
                    return
                }
                dispatch(head)
            case .chunked(let head, var reader):
                switch reader.read(from: input, into: body) {
                case .needMore:
                    state = .chunked(head, reader)
                    return
                case .done:
                    dispatch(head)
                case .failed(let message, let exceeded):
                    let reason: Reason = switch exceeded {
                    case .body?: .bodyTooLarge
                    case .trailer?: .headersTooLarge
                    case nil: .malformedRequest
                    }
                    fail(Rejection(reason, message), head: head)
                    return
                }
            case .closing:
                // Lingering close: what the client still sends is read and dropped, so that its
                // kernel does not answer our close with a reset that destroys our answer.
                lingeringBytes += evbuffer_get_length(input)
                evbuffer_drain(input, evbuffer_get_length(input))
                if lingeringBytes > 4 * limits.maxBodyBytes { close() }
                return
            case .processing, .closed:
                return
            }
        }
    }

    /// Reads a head if a whole one has arrived. Returns whether to keep going.
    private func readHead(_ input: OpaquePointer) -> Bool {
        let found = evbuffer_search(input, "\r\n\r\n", 4, nil)
        guard found.pos >= 0 else {
            let length = evbuffer_get_length(input)
            if length > limits.maxHeaderBytes {
                fail(Rejection(.headersTooLarge, "request line and headers exceed \(limits.maxHeaderBytes) bytes"))
            } else if evbuffer_search(input, "\n\n", 2, nil).pos >= 0 {
                fail(Rejection(.malformedRequest, "bare LF line ending"))
            }
            return false
        }
        let headLength = found.pos + 4
        guard headLength <= limits.maxHeaderBytes else {
            fail(Rejection(.headersTooLarge, "request line and headers exceed \(limits.maxHeaderBytes) bytes"))
            return false
        }
        let parsed = HTTPRequestHead.parse(UnsafeRawBufferPointer(start: evbuffer_pullup(input, headLength), count: headLength))
        evbuffer_drain(input, headLength)
        let head: HTTPRequestHead
        switch parsed {
        case .failure(let failure):
            fail(failure.rejection)
            return false
        case .success(let h):
            head = h
        }
        switch head.framing {
        case .length(let length):
            if length > limits.maxBodyBytes {
                // Refused before a byte of the body is read; the connection closes after the answer.
                fail(Rejection(.bodyTooLarge, "body of \(length) bytes exceeds \(limits.maxBodyBytes)"), head: head)
                return false
            }
            if head.expectsContinue && length > 0 { sendContinue() }
            if length == 0 { dispatch(head); return true }
            state = .body(head, remaining: length)
        case .chunked:
            if head.expectsContinue { sendContinue() }
            state = .chunked(head, ChunkedBodyReader(maximumBody: limits.maxBodyBytes, maximumTrailer: limits.maxHeaderBytes))
        }
        return true
    }

    private func sendContinue() {
        guard let bev else { return }
        let line = "HTTP/1.1 100 Continue\r\n\r\n"
        _ = line.withCString { evbuffer_add(bufferevent_get_output(bev), $0, 25) }
    }

    private func dispatch(_ head: HTTPRequestHead) {
        state = .processing(head)
        event_del(timer)
        worker.handle(InboundRequest(connection: self, head: head))
    }

    /// A request that cannot be read: answered, then the connection closes (what follows in the
    /// stream cannot be trusted to start a new request).
    private func fail(_ rejection: Rejection, head: HTTPRequestHead? = nil) {
        if let head {
            state = .processing(head)
        } else {
            state = .processing(HTTPRequestHead(method: "", target: "", version: .http11, headers: HeaderList.empty, framing: .length(0),
                                                keepAlive: false, expectsContinue: false))
        }
        event_del(timer)
        worker.handleUnreadable(self, head: head, rejection: rejection)
    }

    // MARK: writing

    /// Writes one answer. `keepAlive` false closes the connection once it is written.
    /// `answerHead` holds the status line and the answer's fields; `Date`, `Connection` and
    /// `Content-Length` are added here.
    func respond(head answerHead: consuming HeadWriter, body answer: OpaquePointer?, keepAlive wanted: Bool) {
        guard case .processing(let head) = state, let bev else { return }
        let length = answer.map { evbuffer_get_length($0) } ?? 0
        let keepAlive = wanted && head.keepAlive && !head.method.isEmpty && !peerClosed
        var fields = answerHead
        fields.add("Date", worker.httpDate())
        if !keepAlive { fields.add("Connection", "close") } else if head.version == .http10 { fields.add("Connection", "keep-alive") }
        let isHEAD = head.method.hasSameBytes(as: "HEAD")
        let written = fields.finish(contentLength: length) {
            SocketWrite.send(head: $0, body: isHEAD ? nil : answer, on: bev, direct: !isTLS)
        }
        evbuffer_drain(body, evbuffer_get_length(body))
        queuedAtArm = queuedOutput
        if keepAlive {
            state = .idle
            arm(limits.clientTimeout.milliseconds)
            if evbuffer_get_length(bufferevent_get_input(bev)) > 0 {
                // Pipelined requests already buffered are read on a later turn, never recursively.
                bufferevent_trigger(bev, Int16(EV_READ), Int32(BEV_TRIG_DEFER_CALLBACKS.rawValue))
            }
        } else {
            state = .closing
            arm(Self.closingMilliseconds)
            if written { writable() }  // nothing queued: the bufferevent will not call back
        }
    }

    private var queuedOutput: Int { bev.map { evbuffer_get_length(bufferevent_get_output($0)) } ?? 0 }

    /// The queued answers are all written.
    private func writable() {
        if case .idle = state {
            arm(limits.clientTimeout.milliseconds)  // idle from now, not from when the answer was queued
            if let bev, evbuffer_get_length(bufferevent_get_input(bev)) > 0 {
                // Requests that waited while answers were queued beyond the bound.
                bufferevent_trigger(bev, Int16(EV_READ), Int32(BEV_TRIG_DEFER_CALLBACKS.rawValue))
            }
            return
        }
        guard case .closing = state, !lingering, let bev else { return }
        if isTLS {
            close()
            return
        }
        lingering = true
        shutdown(Int32(bufferevent_getfd(bev)), Int32(SHUT_WR))
        startReading()
        arm(2_000)
    }

    private func event(_ events: Int16) {
        if events & Int16(BEV_EVENT_EOF) != 0, events & Int16(BEV_EVENT_ERROR) == 0, case .processing = state {
            // The client half-closed after its request: answer it, then close.
            peerClosed = true
            return
        }
        if events & Int16(BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT) != 0 { close() }
    }

    private func timedOut() {
        switch state {
        case .idle, .closing:
            let queued = queuedOutput
            if queued > 0, queued < queuedAtArm, !lingering {
                // Still writing answers, and the client took some since: not idle.
                queuedAtArm = queued
                arm(state.isIdle ? limits.clientTimeout.milliseconds : Self.closingMilliseconds)
                return
            }
            close()
        case .head:
            fail(Rejection(.requestTimeout, "the request was not received within \(limits.clientTimeout)"))
        case .body(let head, _), .chunked(let head, _):
            fail(Rejection(.requestTimeout, "the request body was not received within \(limits.clientTimeout)"), head: head)
        case .processing, .closed:
            break
        }
    }

    /// Frees the socket without telling the worker (the worker itself is going away).
    func detach() {
        guard let bev else { return }
        state = .closed
        event_del(timer)
        if let readEvent {
            event_free(readEvent)
            self.readEvent = nil
        }
        bufferevent_free(bev)
        self.bev = nil
    }

    /// Closes at once (drain, timeouts, errors). An exchange still holding this connection finds
    /// it closed and its answer is dropped; the sender sees a closed connection and retries.
    func close() {
        guard bev != nil else { return }
        detach()
        worker.connectionClosed(self)
    }
}

/// A fully read request handed to the worker: head, body (in the connection's buffer) and the
/// connection to answer on.
struct InboundRequest {
    let connection: InboundConnection
    let head: HTTPRequestHead
}
