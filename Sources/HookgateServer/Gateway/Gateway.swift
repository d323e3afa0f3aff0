import CLibevent
import Foundation
import HookgateCore
import Logging

/// The running gateway: its workers, the shared dedup ledgers, the current configuration, and the
/// shutdown sequence (readiness off while still serving for `shutdown_delay`, then stop accepting,
/// answer 503 to new requests, let forwards finish, exit).
public final class Gateway {
    private let runtimeBox: Locked<RuntimeConfiguration>
    let ledger = SharedLedger()
    /// Where delivered ids live beyond this process's memory (`ledger.store`).
    let store: LedgerStore
    /// The durable last-chance spool (`spool`), and the loop part that redelivers from it.
    let spool: Spool?
    private var redeliverer: Redeliverer?
    private var workers: [Worker] = []
    private let threads = DispatchGroup()
    private let draining = Locked(false)
    /// Set by the first SIGTERM: `/readyz` says 503 from then on, while the delay still serves.
    private let stopping = Locked(false)
    private var delayTimer: OpaquePointer?
    /// Reloads when a file the configuration is made of changes (first worker's loop).
    private var watcher: ConfigurationWatcher?
    private let forwardsInFlight = Locked(0)
    private var signalEvents: [OpaquePointer] = []
    private var drainTimer: OpaquePointer?
    private var drainDeadline: Int64 = 0
    private let log: Logger
    let metrics = GatewayMetrics()
    private var admin: AdminServer?
    private let serving = Locked(false)
    private let configurationPath: String?
    /// The admin listener's port, when there is one.
    public var adminPort: UInt16? { admin?.port }
    /// The port actually bound (useful when the configuration asks for port 0).
    public private(set) var port: UInt16 = 0

    /// Whether each answered request is written to stdout as a JSON line.
    private let writesAccessLog: Bool

    /// `configurationPath` is what SIGHUP re-reads; without it, reloading is off.
    public init(configuration: Configuration, configurationPath: String? = nil, accessLog: Bool = true) throws {
        self.configurationPath = configurationPath
        writesAccessLog = accessLog
        let runtime = try RuntimeConfiguration.make(configuration).get()
        for route in runtime.compiledRoutes { route.metrics = metrics.route(named: route.name) }
        // Made here, on one thread: a lazy property first read by several workers at once would race.
        _ = metrics.unrouted
        metrics.attachDestinations(runtime.compiledRoutes)
        runtimeBox = Locked(runtime)
        ledger.configure(configuration.routes)
        store = try makeLedgerStore(configuration, ledger: ledger, metrics: metrics)
        // Every event the spool holds counts as held for dedup, as it did before the restart.
        spool = try configuration.spool.map { [ledger] in try Spool($0, held: { ledger.hold(route: $0, key: $1) }) }
        log = Logger(label: "hookgate")
        if let spool, spool.heldAtStart > 0 {
            log.info("spool loaded", metadata: ["spool.path": .string(spool.configuration.path),
                                                "events": .stringConvertible(spool.heldAtStart)])
        }
    }

    var runtime: RuntimeConfiguration { runtimeBox.withLock { $0 } }
    /// The listener's TLS context at start; kept if a reload drops `listen.tls` (that needs a restart).
    private(set) lazy var startupTLS: TLSContext? = runtime.serverTLS
    var isDraining: Bool { draining.withLock { $0 } }
    /// Listening with a valid configuration and no shutdown started (`/readyz`).
    var isReady: Bool { serving.withLock { $0 } && !stopping.withLock { $0 } }

    func metricsExposition() -> [UInt8] {
        metrics.exposition(ledger: ledger, listenerTLS: runtime.serverTLS ?? startupTLS) + (spool?.metrics.exposition() ?? [])
    }

    /// Binds the listening sockets and starts every worker on its own thread.
    public func start() throws {
        let configuration = runtime.configuration
        let count = configuration.workers.resolved(cores: ProcessInfo.processInfo.activeProcessorCount)
        var address = configuration.listen
        raiseDescriptorLimit()
        if count > 1, address.port != 0 {
            // SO_REUSEPORT would let the workers share the port with another hookgate (two ledgers
            // splitting one sender's traffic): bind once without it first, as a probe.
            try ListeningSocket.probe(address)
        }
        for index in 0..<count {
            let worker = try Worker(index: index, gateway: self, limits: configuration.limits, tls: startupTLS != nil,
                                    connectionCap: (configuration.limits.maxConnections + count - 1) / count)
            port = try worker.listen(on: address, reusePort: count > 1)
            address.port = port  // port 0: the other workers join the port the first one got
            workers.append(worker)
        }
        if let adminListen = configuration.adminListen {
            let server = try AdminServer(listen: adminListen, gateway: self)
            server.start()
            admin = server
            log.info("admin listening", metadata: ["admin.listen": .string("\(adminListen.host):\(server.port)")])
        }
        for worker in workers {
            threads.enter()
            let thread = Thread { [threads] in
                event_base_loop(worker.base, EVLOOP_NO_EXIT_ON_EMPTY)
                worker.accessLog.flush()
                threads.leave()
            }
            thread.name = "hg-worker-\(worker.index)"  // Linux keeps 15 characters
            thread.stackSize = 8 << 20
            thread.start()
        }
        if let spool, let first = workers.first {
            let redeliverer = Redeliverer(gateway: self, worker: first, spool: spool)
            self.redeliverer = redeliverer
            first.mailbox.post { redeliverer.start() }
        }
        if let first = workers.first, configurationPath != nil {
            let watcher = ConfigurationWatcher(gateway: self, base: first.base)
            self.watcher = watcher
            first.mailbox.post { [self] in watcher.arm(paths: watchedPaths(runtime.configuration)) }
        }
        serving.withLock { $0 = true }
        log.info("listening", metadata: [
            "listen": .string("\(configuration.listen.host):\(port)"),
            "version": .string(HookgateVersion.current),
            "workers": .stringConvertible(count),
            "routes": .array(configuration.routes.map { .string("\($0.path) -> " + $0.destinations.map { "\($0.upstream.url)" }.joined(separator: ", ")) }),
        ])
    }

    /// Installs SIGTERM/SIGINT (graceful shutdown) and SIGHUP (reload) on the first worker's loop.
    public func handleSignals() {
        guard let first = workers.first else { return }
        first.mailbox.post { [self] in
            for number in [SIGTERM, SIGINT, SIGHUP] {
                // Ownership: unretained; the gateway outlives its workers' loops.
                let event = event_new(first.base, number, Int16(EV_SIGNAL | EV_PERSIST), { signal, _, arg in
                    let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
                    if signal == SIGHUP {
                        gateway.reload(trigger: .sighup)
                    } else {
                        gateway.log.info("signal received, shutting down", metadata: ["signal": .stringConvertible(signal)])
                        // SIGINT is someone at a terminal: no load balancer to wait for.
                        gateway.shutdown(immediately: signal == SIGINT)
                    }
                }, Unmanaged.passUnretained(self).toOpaque())!
                event_add(event, nil)
                signalEvents.append(event)
            }
        }
    }

    /// Blocks until every worker has stopped. The calling thread stops taking SIGTERM, SIGINT and
    /// SIGHUP so that the kernel hands them to a loop thread, where libevent turns them into events
    /// (the workers were started before this, with the signals unblocked).
    public func wait() {
        var signals = sigset_t()
        sigemptyset(&signals)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, number) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        threads.wait()
        redeliverer?.tearDown()
        redeliverer = nil
        spool?.close()
        store.flush()
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        for event in signalEvents { event_free(event) }
        if let drainTimer { event_free(drainTimer) }
        if let delayTimer { event_free(delayTimer) }
        watcher = nil
        signalEvents.removeAll()
        drainTimer = nil
        delayTimer = nil
        workers.removeAll()
        admin?.stop()
        admin = nil
        log.info("stopped")
    }

    /// Starts the graceful shutdown; safe from any thread. The first call turns readiness off and
    /// keeps serving for `shutdown_delay`, so that load balancers stop sending here before any
    /// connection is refused; then the drain starts. A second call (another SIGTERM), or
    /// `immediately`, starts the drain at once.
    public func shutdown(immediately: Bool = false) {
        let first = stopping.withLock { flag -> Bool in
            defer { flag = true }
            return !flag
        }
        guard let firstWorker = workers.first else { return }
        let delay = runtime.configuration.shutdownDelay.milliseconds
        guard first, !immediately, delay > 0 else {
            log.info("shutdown: draining", metadata: ["shutdown_grace": .string("\(runtime.configuration.shutdownGrace)")])
            drain()
            return
        }
        log.info("shutdown: not ready, still serving until the delay ends", metadata: [
            "shutdown_delay": .string("\(runtime.configuration.shutdownDelay)"),
        ])
        firstWorker.mailbox.post { [self] in
            delayTimer = event_new(firstWorker.base, -1, 0, { _, _, arg in
                let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
                gateway.log.info("shutdown: delay over, draining", metadata: [
                    "shutdown_grace": .string("\(gateway.runtime.configuration.shutdownGrace)"),
                ])
                gateway.drain()
            }, Unmanaged.passUnretained(self).toOpaque())
            var wait = timeval(milliseconds: delay)
            event_add(delayTimer, &wait)
        }
    }

    /// Stops accepting and waits for the forwards in flight (at most `shutdown_grace`); idempotent.
    private func drain() {
        let already = draining.withLock { flag -> Bool in
            defer { flag = true }
            return flag
        }
        guard !already, let first = workers.first else { return }
        let grace = runtime.configuration.shutdownGrace.milliseconds
        for worker in workers { worker.mailbox.post { worker.stopAccepting() } }
        first.mailbox.post { [self] in
            drainDeadline = MonotonicClock.milliseconds() + grace
            drainTimer = event_new(first.base, -1, Int16(EV_PERSIST), { _, _, arg in
                Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue().checkDrained()
            }, Unmanaged.passUnretained(self).toOpaque())
            var tick = timeval(milliseconds: 20)
            event_add(drainTimer, &tick)
            checkDrained()
        }
    }

    private func checkDrained() {
        let remaining = forwardsInFlight.withLock { $0 }
        let expired = MonotonicClock.milliseconds() >= drainDeadline
        guard remaining == 0 || expired else { return }
        if remaining > 0 {
            log.warning("shutdown grace expired with forwards in flight", metadata: ["in_flight": .stringConvertible(remaining)])
        }
        if let drainTimer { event_del(drainTimer) }
        // One more turn of each loop lets the last answers be written before the loops end.
        for worker in workers {
            worker.mailbox.post {
                var flush = timeval(milliseconds: 50)
                event_base_loopexit(worker.base, &flush)
            }
        }
    }

    func forwardStarted() { forwardsInFlight.withLock { $0 += 1 } }
    func forwardFinished() { forwardsInFlight.withLock { $0 -= 1 } }

    func recordUpstream(route: CompiledRoute, status: Int?, microseconds: Int64) {
        route.metrics.upstreamAnswered(status: status, microseconds: microseconds)
    }

    /// What started a reload (the `trigger` field of its log lines).
    public enum ReloadTrigger: String, Sendable {
        case sighup
        /// A watched file changed: the configuration file, a `file:` secret, a certificate or key.
        case fileChange = "file_change"
    }

    /// Re-reads the configuration file. A valid one applies to requests that arrive from now on
    /// (in-flight ones finish under the old one) and the dedup ledgers carry over; an invalid one
    /// is logged and the old configuration keeps serving. Runs on the first worker's loop (signal
    /// and file-watch events are there); the file watch is re-armed after it, for the files the
    /// configuration now names.
    public func reload(trigger: ReloadTrigger = .sighup) {
        guard let path = configurationPath else { return }
        if path == ConfigurationFile.standardInput {
            log.warning("the configuration was read from standard input and cannot be read again; restart to change it")
            return
        }
        defer { watcher?.arm(paths: watchedPaths(runtime.configuration)) }
        switch ConfigurationFile.loadRuntime(path: path) {
        case .failure(let problems):
            for problem in problems.problems {
                log.error("reload rejected, keeping the running configuration",
                          metadata: ["key": .string(problem.key), "problem": .string(problem.message),
                                     "trigger": .string(trigger.rawValue)])
            }
            metrics.reloaded(success: false)
        case .success(let fresh):
            let configuration = fresh.configuration
            let old = runtime.configuration
            if configuration.listen != old.listen || configuration.workers != old.workers
                || configuration.adminListen != old.adminListen || (configuration.tls == nil) != (old.tls == nil) {
                log.warning("changes to listen, listen.tls on/off, workers and admin.listen take effect only after a restart; certificates, routes, secrets, upstreams and limits are reloaded")
            }
            if configuration.spool != old.spool {
                log.warning("changes to spool.* take effect only after a restart; the running spool is kept (routes' spool settings are reloaded)")
            }
            if configuration.ledger.store != old.ledger.store || configuration.ledger.sqlite != old.ledger.sqlite {
                log.warning("changes to ledger.* take effect only after a restart; the running ledger store is kept")
            }
            ledger.configure(configuration.routes)
            for route in fresh.compiledRoutes { route.metrics = metrics.route(named: route.name) }
            metrics.attachDestinations(fresh.compiledRoutes)
            runtimeBox.withLock { $0 = fresh }
            for worker in workers {
                worker.mailbox.post { worker.apply(fresh) }
            }
            metrics.reloaded(success: true)
            log.info("configuration reloaded", metadata: [
                "routes": .array(configuration.routes.map { .string("\($0.path) -> " + $0.destinations.map { "\($0.upstream.url)" }.joined(separator: ", ")) }),
                "trigger": .string(trigger.rawValue),
            ])
        }
    }

    /// The files a configuration is made of: the file itself, `file:` secrets, the listener's
    /// certificate and key.
    private func watchedPaths(_ configuration: Configuration) -> [String] {
        var paths = configurationPath.map { [$0] } ?? []
        if let tls = configuration.tls { paths += [tls.certificate, tls.key] }
        for route in configuration.routes {
            for secret in route.verify.secrets {
                if case .file(let path) = secret.origin { paths.append(path) }
            }
        }
        return paths
    }

    /// Raises the soft descriptor limit to the hard one: each client connection and each upstream
    /// connection is a descriptor, and a low soft limit (often 1024) starves `max_connections`.
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard hg_getrlimit_nofile(&limit) == 0 else { return }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            if hg_setrlimit_nofile(&limit) != 0 { limit.rlim_cur = before }
        }
        log.info("descriptor limit", metadata: [
            "nofile.soft_at_start": .stringConvertible(before), "nofile.soft": .stringConvertible(limit.rlim_cur),
            "nofile.hard": .stringConvertible(limit.rlim_max),
        ])
    }

    /// The access log: one line per answered request, rendered without swift-log's metadata
    /// dictionary because it is on every request's path.
    func recordAnswer(_ exchange: InboundExchange, status: Int, outcome: Outcome, reason: Reason?, upstreamStatus: Int?, client: String) {
        let elapsed = MonotonicClock.microseconds() - exchange.startedMicroseconds
        (exchange.route?.metrics ?? metrics.unrouted).answered(outcome: outcome, reason: reason, status: status, microseconds: elapsed)
        guard writesAccessLog else { return }
        let record = AccessLogRecord(
            time: exchange.worker.accessLog.clock.now(), route: exchange.route?.name, eventID: exchange.event?.id,
            eventType: exchange.event?.type, eventSource: exchange.event?.source, outcome: outcome.rawValue,
            reason: reason?.rawValue, status: status, upstreamStatus: upstreamStatus, durationMicroseconds: elapsed,
            requestID: exchange.requestID, client: client, upstreamError: exchange.upstreamError, destination: exchange.destination)
        exchange.worker.accessLog.append(record)
    }
}
