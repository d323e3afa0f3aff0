import CLibevent
import HookgateCore

/// One forward: the request to send and the exchange that waits for its answer.
final class ForwardJob {
    let exchange: InboundExchange
    let headers: [(name: String, value: String)]
    let deadlineMilliseconds: Int64
    let startedMicroseconds: Int64 = MonotonicClock.microseconds()
    var error: evhttp_request_error?
    var connection: UpstreamConnection?
    let pool: UpstreamPool

    init(exchange: InboundExchange, headers: [(name: String, value: String)], deadlineMilliseconds: Int64, pool: UpstreamPool) {
        self.exchange = exchange
        self.headers = headers
        self.deadlineMilliseconds = deadlineMilliseconds
        self.pool = pool
    }
}

/// A kept-alive connection to the upstream; it carries one request at a time. Once its TCP (or
/// TLS) connection has closed it is not reused: an OpenSSL session cannot be reconnected, and a
/// fresh object costs nothing next to a new handshake.
final class UpstreamConnection {
    let connection: OpaquePointer
    private(set) var closed = false

    init?(base: OpaquePointer, dns: OpaquePointer?, url: UpstreamURL, tls: TLSContext?, verify: Bool) {
        if let tls {
            guard let ssl = tls.clientSession(host: url.host, verify: verify),
                  let bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                           Int32(BEV_OPT_CLOSE_ON_FREE.rawValue | BEV_OPT_DEFER_CALLBACKS.rawValue))
            else { return nil }
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
            connection = evhttp_connection_base_bufferevent_new(base, dns, bev, url.host, url.port)
        } else {
            connection = evhttp_connection_base_new(base, dns, url.host, url.port)
        }
        // Ownership: unretained; the connection object outlives its evhttp connection (deinit frees it).
        evhttp_connection_set_closecb(connection, { _, arg in
            Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue().closed = true
        }, Unmanaged.passUnretained(self).toOpaque())
        evhttp_connection_set_retries(connection, 0)
        evhttp_connection_set_max_headers_size(connection, 64 * 1024)
        evhttp_connection_set_max_body_size(connection, 16 * 1024 * 1024)
    }

    deinit { evhttp_connection_free(connection) }

    private var noDelaySocket: Int32 = -1

    /// TLS writes a request as several records; without TCP_NODELAY the second one waits for the
    /// peer's delayed ACK (40 ms on Linux).
    func disableNagle() {
        let fd = Int32(bufferevent_getfd(evhttp_connection_get_bufferevent(connection)))
        guard fd >= 0, fd != noDelaySocket else { return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        noDelaySocket = fd
    }
}

/// The connections of one worker to one route's upstream: at most `maxConnections`, each reused
/// (keep-alive); requests beyond that wait in FIFO order. A waiting request that reaches its
/// deadline before a connection frees up is answered 503 (nothing was sent, so the retry is safe).
final class UpstreamPool {
    let route: CompiledRoute
    private let url: UpstreamURL
    private let base: OpaquePointer
    private let dns: OpaquePointer?
    private var idle: [UpstreamConnection] = []
    private var opened = 0
    private var waiting: [ForwardJob] = []
    private var waitingHead = 0
    private var sweep: OpaquePointer!
    private let metrics: GatewayMetrics
    /// Requests waiting beyond this many are refused at once (503) instead of queued.
    static let maximumWaiting = 10_000

    init(route: CompiledRoute, base: OpaquePointer, dns: OpaquePointer?, metrics: GatewayMetrics) {
        self.route = route
        self.metrics = metrics
        url = route.upstream.url
        self.base = base
        self.dns = dns
        // Ownership: the timer's argument is this pool, unretained; the worker keeps its pools for
        // the life of its loop and frees the timer in deinit.
        sweep = event_new(base, -1, Int16(EV_PERSIST), { _, _, arg in
            Unmanaged<UpstreamPool>.fromOpaque(arg!).takeUnretainedValue().expireWaiting()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { event_free(sweep) }

    /// Connections currently carrying a request.
    var busyConnections: Int { opened - idle.count }
    var waitingCount: Int { waiting.count - waitingHead }

    func submit(_ job: ForwardJob) {
        while let last = idle.last, last.closed {
            idle.removeLast()  // freed here, outside any callback of its own
            opened -= 1
        }
        if let connection = idle.popLast() {
            dispatch(job, on: connection)
        } else if opened < route.upstream.maxConnections {
            guard let connection = UpstreamConnection(base: base, dns: dns, url: url, tls: route.upstreamTLS,
                                                      verify: !route.upstream.tlsInsecureSkipVerify) else {
                job.exchange.worker.finishForward(job, outcome: .unreachable("cannot create a TLS session"), response: nil, busy: nil)
                return
            }
            opened += 1
            dispatch(job, on: connection)
        } else if waitingCount >= Self.maximumWaiting {
            job.exchange.worker.finishForward(job, outcome: nil, response: nil,
                                              busy: Rejection(.upstreamBusy, "too many requests are waiting for the upstream"))
        } else {
            waiting.append(job)
            if waitingCount == 1 {
                var tick = timeval(milliseconds: 100)
                event_add(sweep, &tick)
            }
        }
    }

    private func dispatch(_ job: ForwardJob, on connection: UpstreamConnection) {
        let remaining = job.deadlineMilliseconds - MonotonicClock.milliseconds()
        guard remaining > 0 else {
            release(connection)
            job.exchange.worker.finishForward(job, outcome: nil, response: nil,
                                              busy: Rejection(.upstreamBusy, "no upstream connection became free in time"))
            return
        }
        job.connection = connection
        metrics.connectionsInUse(route: route.name, change: 1)
        var timeout = timeval(milliseconds: remaining)
        evhttp_connection_set_timeout_tv(connection.connection, &timeout)

        // Ownership: the request's callback argument is the job, retained here and released in
        // `requestDone`, which libevent calls exactly once per request made.
        let context = Unmanaged.passRetained(job).toOpaque()
        let request = evhttp_request_new({ response, arg in
            let job = Unmanaged<ForwardJob>.fromOpaque(arg!).takeRetainedValue()
            job.pool.requestDone(job, response: response)
        }, context)!
        evhttp_request_set_error_cb(request) { error, arg in
            Unmanaged<ForwardJob>.fromOpaque(arg!).takeUnretainedValue().error = error
        }
        let headers = EvHeaders(list: evhttp_request_get_output_headers(request))
        headers.add("Host", url.authority)
        for (name, value) in job.headers { headers.add(name, value) }
        evbuffer_add_buffer(evhttp_request_get_output_buffer(request), job.exchange.body)
        if evhttp_make_request(connection.connection, request, EVHTTP_REQ_POST, url.target) != 0 {
            // libevent may or may not have reported this through the callback already. The retain
            // is left for a late callback to balance (a leak at worst, never a double free);
            // `requestDone` runs its body once either way.
            requestDone(job, response: nil)
            return
        }
        connection.disableNagle()
    }

    private func requestDone(_ job: ForwardJob, response: OpaquePointer?) {
        guard let connection = job.connection else { return }
        job.connection = nil
        metrics.connectionsInUse(route: route.name, change: -1)
        let outcome: UpstreamOutcome
        let status = response.map { Int(evhttp_request_get_response_code($0)) } ?? 0
        if status > 0 {
            outcome = .response(status: status)
        } else {
            switch job.error {
            case EVREQ_HTTP_TIMEOUT?: outcome = .timedOut
            case EVREQ_HTTP_INVALID_HEADER?: outcome = .invalidResponse("malformed response headers")
            case EVREQ_HTTP_DATA_TOO_LONG?: outcome = .invalidResponse("response too large")
            default: outcome = .unreachable("connection failed or closed")
            }
        }
        release(connection)
        job.exchange.worker.finishForward(job, outcome: outcome, response: status > 0 ? response : nil, busy: nil)
    }

    private func release(_ connection: UpstreamConnection) {
        if connection.closed {
            // Its callback may still be on the stack: free it on a later turn of the loop.
            opened -= 1
            retire(connection)
            if let next = dequeue() { submit(next) }
            return
        }
        if let next = dequeue() {
            dispatch(next, on: connection)
        } else {
            idle.append(connection)
        }
    }

    private func retire(_ connection: UpstreamConnection) {
        var now = timeval(tv_sec: 0, tv_usec: 0)
        // Ownership: the connection is retained until the one-shot callback runs.
        event_base_once(base, -1, Int16(EV_TIMEOUT), { _, _, arg in
            Unmanaged<UpstreamConnection>.fromOpaque(arg!).release()
        }, Unmanaged.passRetained(connection).toOpaque(), &now)
    }

    private func dequeue() -> ForwardJob? {
        guard waitingHead < waiting.count else { return nil }
        let job = waiting[waitingHead]
        waitingHead += 1
        if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
            event_del(sweep)
        } else if waitingHead > 1024 && waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        }
        return job
    }

    /// Answers waiting requests whose deadline has passed (every 100 ms while any wait).
    private func expireWaiting() {
        let now = MonotonicClock.milliseconds()
        let expired = waiting[waitingHead...].filter { $0.deadlineMilliseconds <= now }
        guard !expired.isEmpty else { return }
        waiting = waiting[waitingHead...].filter { $0.deadlineMilliseconds > now }
        waitingHead = 0
        if waiting.isEmpty { event_del(sweep) }
        for job in expired {
            job.exchange.worker.finishForward(job, outcome: nil, response: nil,
                                              busy: Rejection(.upstreamBusy, "no upstream connection became free in time"))
        }
    }
}
