import CLibevent
import Foundation
import HookgateCore

/// One event loop: its own libevent base, HTTP server and listening socket (SO_REUSEPORT when
/// there are several workers), its own upstream pools. Everything here runs on the worker's
/// thread; other threads reach it only through `mailbox`.
final class Worker {
    let index: Int
    unowned let gateway: Gateway
    let base: OpaquePointer
    private let http: OpaquePointer
    private var boundSocket: OpaquePointer?
    private let dns: OpaquePointer?
    private(set) var mailbox: Mailbox!
    private var pools: [ObjectIdentifier: UpstreamPool] = [:]
    /// Pools of a configuration replaced by a reload, kept until their last forward ends.
    private var retiring: [UpstreamPool] = []

    private var requestCounter: UInt64 = 0
    private let requestIDPrefix: String

    /// Whether the listener speaks TLS (fixed at start; certificates follow reloads).
    private let tls: Bool

    init(index: Int, gateway: Gateway, limits: Configuration.Limits, tls: Bool) throws {
        self.tls = tls
        _ = Libevent.initialize
        self.index = index
        self.gateway = gateway
        guard let base = event_base_new() else { throw SystemError("event_base_new") }
        self.base = base
        http = evhttp_new(base)
        dns = evdns_base_new(base, Int32(EVDNS_BASE_INITIALIZE_NAMESERVERS))
        requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16) + "-\(index)"
        mailbox = Mailbox(base: base)
        applyLimits(limits)
        // Accept every method so that hookgate, not libevent, answers the ones a route refuses.
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_HEAD.rawValue
            | EVHTTP_REQ_PUT.rawValue | EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_OPTIONS.rawValue
            | EVHTTP_REQ_TRACE.rawValue | EVHTTP_REQ_CONNECT.rawValue | EVHTTP_REQ_PATCH.rawValue))
        evhttp_set_default_content_type(http, "application/json")
        if tls {
            // Each accepted connection gets an OpenSSL bufferevent from the current certificate.
            evhttp_set_bevcb(http, { base, arg in
                let worker = Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue()
                guard let context = worker.gateway.runtime.serverTLS ?? worker.gateway.startupTLS,
                      let ssl = SSL_new(context.context) else { return nil }
                return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
            }, Unmanaged.passUnretained(self).toOpaque())
        }
        // Ownership: the callback argument is this worker, unretained; the gateway keeps every
        // worker alive until its loop has ended and the server is freed.
        evhttp_set_gencb(http, { request, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().handle(request!)
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        pools.removeAll()
        mailbox = nil
        evhttp_free(http)
        if let dns { evdns_base_free(dns, 0) }
        event_base_free(base)
    }

    private func applyLimits(_ limits: Configuration.Limits) {
        evhttp_set_max_headers_size(http, Int(limits.maxHeaderBytes))
        evhttp_set_max_body_size(http, Int(limits.maxBodyBytes))
        var timeout = timeval(milliseconds: limits.clientTimeout.milliseconds)
        evhttp_set_timeout_tv(http, &timeout)
    }

    /// Takes a reloaded configuration: new limits for new connections, new pools for new
    /// forwards; the old pools finish what they carry and are then freed.
    func apply(_ runtime: RuntimeConfiguration) {
        applyLimits(runtime.configuration.limits)
        retiring.append(contentsOf: pools.values)
        pools.removeAll()
        freeIdleRetiredPools()
    }

    /// Runs from the mailbox, never inside a libevent HTTP callback of the connection being freed.
    private func freeIdleRetiredPools() {
        retiring.removeAll { $0.busyConnections == 0 && $0.waitingCount == 0 }
    }

    /// Binds the listening socket. `reusePort` lets every worker bind the same port.
    func listen(on address: ListenAddress, reusePort: Bool) throws -> UInt16 {
        let fd = try ListeningSocket.open(address, reusePort: reusePort)
        guard let bound = evhttp_accept_socket_with_handle(http, fd) else {
            close(fd)
            throw SystemError("cannot accept on \(address)")
        }
        boundSocket = bound
        return try ListeningSocket.port(of: fd)
    }

    /// Stops accepting new connections; open ones keep being served.
    func stopAccepting() {
        if let bound = boundSocket {
            evhttp_del_accept_socket(http, bound)
            boundSocket = nil
        }
    }

    func run() {
        event_base_dispatch(base)
    }

    func stop() {
        event_base_loopexit(base, nil)
    }

    private func nextRequestID() -> String {
        requestCounter &+= 1
        return "\(requestIDPrefix)-\(requestCounter)"
    }

    private func handle(_ request: OpaquePointer) {
        let runtime = gateway.runtime
        gateway.metrics.requestStarted()
        let exchange = InboundExchange(request: request, worker: self, runtime: runtime, generatedID: nextRequestID)
        if gateway.isDraining {
            exchange.reject(Rejection(.shuttingDown, "hookgate is shutting down; retry"), closeConnection: true)
            return
        }
        let target = String(cString: evhttp_request_get_uri(request))
        guard let route = runtime.routes.route(forTarget: target) else {
            exchange.reject(Rejection(.routeNotFound, "no route is configured for this path"))
            return
        }
        exchange.route = route
        let body = EvBufferSegments(buffer: exchange.inputBody)
        let admitted = route.admission.admit(
            method: evhttp_request_get_command(request).methodName,
            headers: exchange.inputHeaders,
            body: body,
            contiguousBody: { body.contiguous() },
            now: WallClock.seconds())
        let envelope: CloudEventEnvelope
        switch admitted {
        case .failure(let rejection):
            exchange.reject(rejection)
            return
        case .success(let e):
            envelope = e
        }
        exchange.envelope = envelope
        let key = EventKey(source: envelope.source, id: envelope.id)
        switch gateway.ledgers.claimOrWait(route: route.name, key: key, waiter: WaitingCopy(exchange: exchange, worker: self)) {
        case nil:
            return  // answered when the copy in flight finishes
        case .delivered?:
            exchange.answerDuplicate()
        case .inFlight?:
            exchange.reject(Rejection(.inFlight, "too many copies of this event are waiting; retry"))
        case .forward?:
            forward(exchange, route: route, envelope: envelope)
        }
    }

    private func forward(_ exchange: InboundExchange, route: CompiledRoute, envelope: CloudEventEnvelope) {
        let headers = ForwardedHeaders.build(
            inbound: exchange.inputHeaders.pairs,
            context: .init(clientAddress: exchange.clientAddress, scheme: tls ? "https" : "http", requestID: exchange.requestID, envelope: envelope),
            addHeaders: route.upstream.addHeaders)
        let pool = self.pool(for: route)
        gateway.forwardStarted()
        let deadline = MonotonicClock.milliseconds() + route.upstream.timeout.milliseconds
        pool.submit(ForwardJob(exchange: exchange, headers: headers, deadlineMilliseconds: deadline, pool: pool))
    }

    private func pool(for route: CompiledRoute) -> UpstreamPool {
        if let pool = pools[ObjectIdentifier(route)] { return pool }
        let pool = UpstreamPool(route: route, base: base, dns: dns, metrics: gateway.metrics)
        pools[ObjectIdentifier(route)] = pool
        return pool
    }

    /// Ends a forward: records the event as delivered only if the upstream accepted it, answers
    /// the sender, then answers every copy that waited on this one.
    func finishForward(_ job: ForwardJob, outcome: UpstreamOutcome?, response: OpaquePointer?, busy: Rejection?) {
        let exchange = job.exchange
        let answer: SenderAnswer = busy.map { .reject($0) } ?? SenderAnswer.forOutcome(outcome!)
        var delivered = false
        if case .relay(_, let accepted) = answer { delivered = accepted }
        let upstreamStatus: Int? = if case .response(let s)? = outcome { s } else { nil }
        if outcome != nil { gateway.recordUpstream(route: exchange.route!.name, status: upstreamStatus, microseconds: MonotonicClock.microseconds() - job.startedMicroseconds) }
        let key = EventKey(source: exchange.envelope!.source, id: exchange.envelope!.id)
        let waiters = gateway.ledgers.finish(route: exchange.route!.name, key: key, delivered: delivered)
        switch answer {
        case .relay(let status, _):
            exchange.relay(status: status, upstreamResponse: response!)
        case .reject(let rejection):
            exchange.reject(rejection, upstreamStatus: upstreamStatus)
        }
        gateway.forwardFinished()
        if !retiring.isEmpty { mailbox.post { [self] in freeIdleRetiredPools() } }
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: delivered) }
        }
    }
}
