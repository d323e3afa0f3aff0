import CLibevent
import Foundation
import HookgateCore

/// One event loop: its own libevent base, listening socket (SO_REUSEPORT when there are several
/// workers), client connections and upstream pools. Everything here runs on the worker's thread;
/// other threads reach it only through `mailbox`.
final class Worker {
    let index: Int
    unowned let gateway: Gateway
    let base: OpaquePointer
    private let dns: OpaquePointer?
    private(set) var mailbox: Mailbox!
    /// This worker's access-log lines, written once per loop turn.
    private(set) var accessLog: AccessLogBatch!
    private var listener: OpaquePointer?
    private var listenerPaused = false
    private var connections: [ObjectIdentifier: InboundConnection] = [:]
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
        requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16) + "-\(index)"
        mailbox = Mailbox(base: base)
        accessLog = AccessLogBatch(base: base)
    }

    deinit {
        let open = connections.values
        connections.removeAll()
        for connection in open { connection.detach() }
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
        self.listener = listener
        return port
    }

    private func accept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: Int32) {
        let client = Self.describe(address)
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
            return
        }
        let connection = InboundConnection(worker: self, bufferevent: bev, clientAddress: client, isTLS: tls, limits: limits)
        connections[ObjectIdentifier(connection)] = connection
        gateway.metrics.clientConnectionAccepted()
        if connections.count >= connectionCap, let listener, !listenerPaused {
            // At the cap, new connections wait in the kernel's backlog instead of being accepted.
            evconnlistener_disable(listener)
            listenerPaused = true
            gateway.connectionCapReached(worker: index, cap: connectionCap)
        }
    }

    func connectionClosed(_ connection: InboundConnection) {
        connections[ObjectIdentifier(connection)] = nil
        gateway.metrics.clientConnectionClosed()
        if listenerPaused, connections.count < connectionCap, let listener {
            evconnlistener_enable(listener)
            listenerPaused = false
        }
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
        return String(cString: text)
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
            dateText = String(cString: buffer)
        }
        return dateText
    }

    private func nextRequestID() -> String {
        requestCounter &+= 1
        return "\(requestIDPrefix)-\(requestCounter)"
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
        switch gateway.ledger.claimOrWait(route: route.name, key: key, waiter: WaitingCopy(exchange: exchange, worker: self)) {
        case nil:
            return  // answered when the copy in flight finishes
        case .delivered?:
            exchange.answerDuplicate()
            gateway.store.renew(route: route.name, key: key, ttlMilliseconds: route.settings.dedup.ttl.milliseconds, worker: self)
        case .inFlight?:
            exchange.reject(Rejection(.inFlight, "too many copies of this event are waiting; retry"))
        case .forward?:
            claimInStore(exchange, route: route, envelope: envelope, key: key)
        }
    }

    /// The first copy in this process: the ledger store may know the event from another replica
    /// or from before a restart. Counted as a forward in flight from here, so that a drain waits
    /// for the store's answer too.
    private func claimInStore(_ exchange: InboundExchange, route: CompiledRoute, envelope: CloudEventEnvelope, key: EventKey) {
        gateway.forwardStarted()
        let retryCount = exchange.retryCount
        gateway.store.claim(route: route.name, key: key, retryCount: retryCount, worker: self) { [self] answer in
            switch answer {
            case .forward:
                forward(exchange, route: route, envelope: envelope)
                return
            case .delivered:
                endWithoutForward(exchange, route: route, key: key, delivered: true) { $0.answerDuplicate() }
            case .claimedElsewhere:
                endWithoutForward(exchange, route: route, key: key, delivered: false) {
                    $0.reject(Rejection(.inFlight, "another copy of this event is being forwarded; retry"))
                }
            case .unavailable:
                endWithoutForward(exchange, route: route, key: key, delivered: false) {
                    $0.reject(Rejection(.ledgerUnavailable, "the shared ledger is unavailable; retry"))
                }
            }
        }
    }

    /// The store answered for the event: the local claim ends (remembered as delivered or released)
    /// and every copy that waited on it gets the same outcome.
    private func endWithoutForward(_ exchange: InboundExchange, route: CompiledRoute, key: EventKey, delivered: Bool,
                                   answer: (InboundExchange) -> Void) {
        let waiters = gateway.ledger.finish(route: route.name, key: key, delivered: delivered)
        answer(exchange)
        gateway.forwardFinished()
        for waiter in waiters {
            waiter.worker.mailbox.post { waiter.exchange.answerAsWaiter(firstCopyDelivered: delivered) }
        }
    }

    private func forward(_ exchange: InboundExchange, route: CompiledRoute, envelope: CloudEventEnvelope) {
        let head = ForwardedHeaders.requestHead(
            target: route.upstream.url.target, authority: route.upstreamAuthority, inbound: exchange.headers,
            context: .init(clientAddress: exchange.connection.clientAddress, scheme: tls ? "https" : "http",
                           requestID: exchange.requestID, envelope: envelope),
            addHeaders: route.upstream.addHeaders, contentLength: evbuffer_get_length(exchange.body))
        let pool = self.pool(for: route)
        pool.submit(ForwardJob(exchange: exchange, requestHead: head, pool: pool))
    }

    private func pool(for route: CompiledRoute) -> UpstreamPool {
        if let pool = pools[ObjectIdentifier(route)] { return pool }
        let pool = UpstreamPool(route: route, base: base, dns: dns)
        pools[ObjectIdentifier(route)] = pool
        return pool
    }
}
