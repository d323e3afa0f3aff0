import CLibevent
import Foundation
import HookgateCore
import Logging

/// One event loop: its own libevent base, listening socket (SO_REUSEPORT when there are several
/// workers), client connections and upstream pools. Everything here runs on the worker's thread;
/// other threads reach it only through `mailbox` (which is why it may be handed to them:
/// `@unchecked Sendable` records that confinement, which the compiler cannot see through C callbacks).
final class Worker: @unchecked Sendable {
    let index: Int
    unowned let gateway: Gateway
    let base: OpaquePointer
    private let dns: OpaquePointer?
    private(set) var mailbox: Mailbox!
    /// This worker's access-log lines, written once per loop turn.
    private(set) var accessLog: AccessLogBatch!
    private var listener: OpaquePointer?
    private var listenerPaused = false
    /// Accepting is off for a moment after a failed accept (out of descriptors): retrying at once
    /// would spin the loop.
    private var acceptPaused = false
    private var acceptRetry: OpaquePointer!
    private var connections: [ObjectIdentifier: InboundConnection] = [:]
    /// Accepted connections whose PROXY protocol header has not arrived yet (they count against the cap).
    private var pendingHeaders: [ObjectIdentifier: ProxyHeaderReader] = [:]
    private var repeatedLines = RepeatedLineLimiter()
    private let log = Logger(label: "hookgate")
    /// How long accepting pauses after a failed accept (nginx waits 500 ms on EMFILE).
    private static let acceptPauseMilliseconds: Int64 = 500
    /// This worker's share of `limits.max_connections`.
    private let connectionCap: Int
    private var pools: [ObjectIdentifier: UpstreamPool] = [:]
    /// Pools of a configuration replaced by a reload, kept until their last forward ends.
    var retiring: [UpstreamPool] = []
    private var requestCounter: UInt64 = 0
    private let requestIDPrefix: String
    /// Whether the listener speaks TLS (fixed at start; certificates follow reloads).
    private let tls: Bool
    /// Limits for requests that start from now on (reload replaces them).
    private(set) var limits: Configuration.Limits
    private var dateSecond = 0
    private var dateText = ""

    init(index: Int, gateway: Gateway, limits: Configuration.Limits, tls: Bool, connectionCap: Int) throws {
        _ = Libevent.initialize
        self.index = index
        self.gateway = gateway
        self.limits = limits
        self.tls = tls
        self.connectionCap = connectionCap
        guard let base = event_base_new() else { throw SystemError("event_base_new") }
        self.base = base
        dns = UpstreamResolver.make(base: base)
        requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16) + "-\(index)-"
        mailbox = Mailbox(base: base)
        accessLog = AccessLogBatch(base: base)
        acceptRetry = event_new(base, -1, 0, { _, _, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().resumeAccepting()
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        let open = connections.values
        connections.removeAll()
        for connection in open { connection.detach() }
        for reader in pendingHeaders.values { close(reader.fd) }
        pendingHeaders.removeAll()
        event_free(acceptRetry)
        for pool in Array(pools.values) + retiring { pool.abandonAll() }
        pools.removeAll()
        retiring.removeAll()
        if let listener { evconnlistener_free(listener) }
        mailbox = nil
        accessLog = nil
        if let dns { evdns_base_free(dns, 0) }
        event_base_free(base)
    }

    /// Binds the listening socket. `reusePort` lets every worker bind the same port.
    func listen(on address: ListenAddress, reusePort: Bool) throws -> UInt16 {
        let fd = try ListeningSocket.open(address, reusePort: reusePort)
        let port = try ListeningSocket.port(of: fd)
        // Ownership: the callback argument is this worker, unretained; the listener is freed
        // before the worker (stopAccepting or deinit).
        guard let listener = evconnlistener_new(base, { _, fd, address, length, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().accept(fd, address, length)
        }, Unmanaged.passUnretained(self).toOpaque(), LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd) else {
            close(fd)
            throw SystemError("cannot accept on \(address)")
        }
        evconnlistener_set_error_cb(listener) { _, arg in
            let code = hg_errno()
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().acceptFailed(code)
        }
        self.listener = listener
        return port
    }

    /// A failed accept that libevent would retry at once (EMFILE, ENFILE, ENOBUFS...): the backlog
    /// stays readable, so accepting pauses for a moment instead of spinning, and the log line is
    /// written at most once a second.
    private func acceptFailed(_ code: Int32) {
        warnRepeated("accept failed; accepting paused", [
            "error": .string(String(cString: strerror(code))), "worker": .stringConvertible(index),
            "pause_ms": .stringConvertible(Self.acceptPauseMilliseconds),
        ])
        guard let listener, !acceptPaused else { return }
        evconnlistener_disable(listener)
        acceptPaused = true
        var pause = timeval(milliseconds: Self.acceptPauseMilliseconds)
        event_add(acceptRetry, &pause)
    }

    private func resumeAccepting() {
        acceptPaused = false
        if let listener, !listenerPaused { evconnlistener_enable(listener) }
    }

    /// A warning that may repeat fast: the same message at most once a second on this worker; the
    /// next one written says how many were dropped (`suppressed`).
    private func warnRepeated(_ message: String, _ metadata: Logger.Metadata) {
        guard let suppressed = repeatedLines.admit(message, now: MonotonicClock.milliseconds()) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = .stringConvertible(suppressed) }
        log.warning("\(message)", metadata: metadata)
    }

    private func accept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: Int32) {
        let client = Self.describe(address)
        if gateway.runtime.configuration.proxyProtocol {
            let reader = ProxyHeaderReader(worker: self, fd: fd, peer: client, timeoutMilliseconds: limits.clientTimeout.milliseconds)
            pendingHeaders[ObjectIdentifier(reader)] = reader
            pauseAtCap()
            return
        }
        open(fd, client: client)
    }

    /// The PROXY header named the client (or kept the peer): the connection starts as any other.
    func proxyHeaderRead(_ reader: ProxyHeaderReader, client: String) {
        pendingHeaders[ObjectIdentifier(reader)] = nil
        open(reader.fd, client: client)
    }

    /// No valid PROXY header in time: closed without an answer.
    func proxyHeaderFailed(_ reader: ProxyHeaderReader) {
        pendingHeaders[ObjectIdentifier(reader)] = nil
        evutil_closesocket(reader.fd)
        resumeBelowCap()
    }

    private func open(_ fd: Int32, client: String) {
        let bev: OpaquePointer?
        if tls {
            if let context = gateway.runtime.serverTLS ?? gateway.startupTLS, let ssl = SSL_new(context.context) {
                bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
            } else {
                bev = nil
            }
        } else {
            bev = bufferevent_socket_new(base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        }
        guard let bev else {
            evutil_closesocket(fd)
            resumeBelowCap()
            return
        }
        let connection = InboundConnection(worker: self, bufferevent: bev, clientAddress: client, isTLS: tls, limits: limits)
        connections[ObjectIdentifier(connection)] = connection
        gateway.metrics.clientConnectionAccepted()
        pauseAtCap()
    }

    private var openCount: Int { connections.count + pendingHeaders.count }

    private func pauseAtCap() {
        if openCount >= connectionCap, let listener, !listenerPaused {
            // At the cap, new connections wait in the kernel's backlog instead of being accepted.
            evconnlistener_disable(listener)
            listenerPaused = true
            warnRepeated("connection cap reached; new connections wait in the backlog",
                         ["worker": .stringConvertible(index), "cap": .stringConvertible(connectionCap)])
        }
    }

    private func resumeBelowCap() {
        if listenerPaused, openCount < connectionCap, let listener {
            if !acceptPaused { evconnlistener_enable(listener) }
            listenerPaused = false
        }
    }

    func connectionClosed(_ connection: InboundConnection) {
        connections[ObjectIdentifier(connection)] = nil
        gateway.metrics.clientConnectionClosed()
        resumeBelowCap()
    }

    private static func describe(_ address: UnsafeMutablePointer<sockaddr>?) -> String {
        guard let address else { return "unknown" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { a in
                var addr = a.pointee.sin_addr
                _ = inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            }
        case AF_INET6:
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { a in
                var addr = a.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
            }
        default:
            return "unknown"
        }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Takes a reloaded configuration: new limits for new requests, new pools for new forwards;
    /// the old pools finish what they carry and are then freed.
    func apply(_ runtime: RuntimeConfiguration) {
        limits = runtime.configuration.limits
        retiring.append(contentsOf: pools.values)
        pools.removeAll()
        freeIdleRetiredPools()
    }

    /// Runs from the mailbox, never inside a libevent callback of a connection being freed.
    func freeIdleRetiredPools() {
        retiring.removeAll { $0.busyConnections == 0 && $0.waitingCount == 0 }
    }

    /// Stops accepting. Open connections stay: a request that arrives on one is answered 503 with
    /// `Connection: close`, so its sender learns to retry elsewhere instead of seeing a reset.
    func stopAccepting() {
        if let listener {
            evconnlistener_free(listener)
            self.listener = nil
        }
    }

    /// `Date` header value, computed once per second.
    func httpDate() -> String {
        let now = time(nil)
        if now != dateSecond {
            dateSecond = now
            var t = now
            var parts = tm()
            gmtime_r(&t, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            dateText = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return dateText
    }

    private func nextRequestID() -> String {
        requestCounter &+= 1
        return DecimalDigits.string(requestIDPrefix, requestCounter)
    }

    /// A request whose head or body could not be read: answered and the connection closed.
    func handleUnreadable(_ connection: InboundConnection, head: HTTPRequestHead?, rejection: Rejection) {
        gateway.metrics.requestStarted()
        let exchange = InboundExchange(connection: connection, head: head, worker: self, runtime: gateway.runtime,
                                       generatedID: nextRequestID)
        exchange.reject(rejection, closeConnection: true)
    }

    func handle(_ request: InboundRequest) {
        let runtime = gateway.runtime
        gateway.metrics.requestStarted()
        let exchange = InboundExchange(connection: request.connection, head: request.head, worker: self, runtime: runtime,
                                       generatedID: nextRequestID)
        if gateway.isDraining {
            exchange.reject(Rejection(.shuttingDown, "hookgate is shutting down; retry"), closeConnection: true)
            return
        }
        guard let route = runtime.routes.route(forTarget: request.head.target) else {
            exchange.reject(Rejection(.routeNotFound, "no route is configured for this path"))
            return
        }
        exchange.route = route
        let body = EvBufferSegments(buffer: exchange.body)
        let admitted = route.admission.admit(
            method: request.head.method,
            headers: exchange.headers,
            body: body,
            contiguousBody: { body.contiguous() },
            now: WallClock.seconds())
        let event: AdmittedEvent
        switch admitted {
        case .failure(let rejection):
            exchange.reject(rejection)
            return
        case .success(let e):
            event = e
        }
        exchange.event = event
        let destination: CompiledDestination
        if route.settings.isFanOut {
            let matched = FanOut.select(route, type: event.type)
            guard matched.count == 1 else {
                FanOut(exchange: exchange, route: route, matched: matched, worker: self).start(event: event)
                return
            }
            destination = matched[0]
            exchange.destination = destination.name
        } else {
            destination = route.destinations[0]
        }
        guard let key = event.key else {
            // No id to de-duplicate on (a scheme or body without one): forwarded every time.
            gateway.forwardStarted()
            forward(exchange, destination: destination, event: event)
            return
        }
        switch gateway.ledger.claimOrWait(route: destination.ledgerName, key: key, waiter: WaitingCopy(exchange: exchange, worker: self)) {
        case nil:
            return  // answered when the copy in flight finishes
        case .delivered?:
            destination.metrics.record(.duplicate)
            exchange.answerDuplicate()
            gateway.store.renew(route: destination.ledgerName, key: key, ttlMilliseconds: route.settings.dedup.ttl.milliseconds, worker: self)
        case .inFlight?:
            exchange.reject(Rejection(.inFlight, "too many copies of this event are waiting; retry"))
        case .forward?:
            claimInStore(exchange, destination: destination, event: event, key: key)
        }
    }

    /// The first copy in this process: the ledger store may know the event from another replica
    /// or from before a restart. Counted as a forward in flight from here, so that a drain waits
    /// for the store's answer too.
    private func claimInStore(_ exchange: InboundExchange, destination: CompiledDestination, event: AdmittedEvent, key: EventKey) {
        gateway.forwardStarted()
        let retryCount = exchange.retryCount
        gateway.store.claim(route: destination.ledgerName, key: key, retryCount: retryCount, worker: self) { [self] answer in
            switch answer {
            case .forward:
                forward(exchange, destination: destination, event: event)
                return
            case .delivered:
                destination.metrics.record(.duplicate)
                endWithoutForward(exchange, destination: destination, key: key, delivered: true) { $0.answerDuplicate() }
            case .claimedElsewhere:
                endWithoutForward(exchange, destination: destination, key: key, delivered: false) {
                    $0.reject(Rejection(.inFlight, "another copy of this event is being forwarded; retry"))
                }
            case .unavailable:
                endWithoutForward(exchange, destination: destination, key: key, delivered: false) {
                    $0.reject(Rejection(.ledgerUnavailable, "the shared ledger is unavailable; retry"))
                }
            }
        }
    }

    /// The store answered for the event: the local claim ends (remembered as delivered or released)
    /// and every copy that waited on it gets the same outcome.
    private func endWithoutForward(_ exchange: InboundExchange, destination: CompiledDestination, key: EventKey, delivered: Bool,
                                   answer: (InboundExchange) -> Void) {
        let waiters = gateway.ledger.finish(route: destination.ledgerName, key: key, delivered: delivered)
        answer(exchange)
        gateway.forwardFinished()
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: delivered) }
        }
    }

    /// Sends the event to one destination; `fanOut` hears the result when it is one of several.
    func forward(_ exchange: InboundExchange, destination: CompiledDestination, event: AdmittedEvent, fanOut: FanOut? = nil) {
        let upstream = destination.upstream
        let addHeaders = destination.header.map { upstream.addHeaders + [("X-Hookgate-Destination", $0)] } ?? upstream.addHeaders
        let head = ForwardedHeaders.requestHead(
            target: upstream.url.target, authority: destination.upstreamAuthority, inbound: exchange.headers,
            context: forwardContext(exchange, event: event), addHeaders: addHeaders, contentLength: evbuffer_get_length(exchange.body))
        let pool = self.pool(for: destination)
        // One of the sender's last attempts on a route that spools: the body is kept, since a
        // failed forward will be spooled and the buffer is gone once sent.
        let keep = gateway.spool != nil && event.key != nil
            && exchange.route?.settings.spool.map { exchange.retryCount >= $0.fromRetry } == true
        pool.submit(ForwardJob(exchange: exchange, requestHead: head, pool: pool, fanOut: fanOut, keepForSpool: keep))
    }

    /// What the forwarded headers say about the inbound request.
    func forwardContext(_ exchange: InboundExchange, event: AdmittedEvent) -> ForwardedHeaders.Context {
        .init(clientAddress: exchange.connection.clientAddress, scheme: tls ? "https" : "http",
              requestID: exchange.requestID, event: event, peerTrusted: exchange.peerTrusted)
    }

    /// A pool of this worker's loop outside its live pools: the spool's redeliveries, on their own
    /// connection budget.
    func makePool(for destination: CompiledDestination, maxConnections: Int) -> UpstreamPool {
        UpstreamPool(destination: destination, base: base, dns: dns, maxConnections: maxConnections)
    }

    private func pool(for destination: CompiledDestination) -> UpstreamPool {
        if let pool = pools[ObjectIdentifier(destination)] { return pool }
        let pool = UpstreamPool(destination: destination, base: base, dns: dns)
        pools[ObjectIdentifier(destination)] = pool
        return pool
    }
}
