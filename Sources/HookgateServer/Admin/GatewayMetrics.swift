import Foundation
import HookgateCore
import Prometheus
import Synchronization

/// The gateway's Prometheus metrics (swift-prometheus registry, text exposition on the admin
/// listener's `/metrics`). Labelled series are created on first use and cached. What a request
/// records goes to per-thread cells (`MetricCells`) and is summed into the registry at scrape time.
final class GatewayMetrics {
    let registry = PrometheusCollectorRegistry()
    private let cache = Locked<[String: AnyObject]>([:])
    private let inFlight: CellGauge
    private let reloadSuccess: Counter
    private let reloadFailure: Counter
    private let lastReloadSuccessful: Gauge
    private let lastReloadSuccessTime: Gauge
    private let clientConnectionsOpen: CellGauge
    private let clientConnectionsAccepted: CellCounter
    /// The latency histograms, rendered after the registry's text (see `CellDurationHistogram`).
    private let requestDurations = DurationHistogramFamily(name: "hookgate_request_duration_seconds", help: "Time from request to answer.")
    private let upstreamDurations = DurationHistogramFamily(name: "hookgate_upstream_duration_seconds",
                                                            help: "Time from forward to the upstream's answer.")
    /// Every route's series made so far, folded at each scrape.
    private let routes = Locked<[RouteMetrics]>([])
    private let process: ProcessMetrics
    private var evictionsSeen: [String: Int] = [:]
    private let scrapeLock = NSLock()

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(25),
    ]

    init() {
        inFlight = CellGauge(registry.makeGauge(descriptor: .named("hookgate_requests_in_flight", "Requests received and not yet answered.")))
        let reloads = MetricNameDescriptor.named("hookgate_config_reloads_total", "Configuration reloads by result.")
        reloadSuccess = registry.makeCounter(descriptor: reloads, labels: [("result", "success")])
        reloadFailure = registry.makeCounter(descriptor: reloads, labels: [("result", "failure")])
        // The configuration loaded at start-up counts as the first successful load.
        lastReloadSuccessful = registry.makeGauge(descriptor: .named(
            "hookgate_config_last_reload_successful", "1 if the last configuration load (start-up or reload) succeeded."))
        lastReloadSuccessful.set(1.0)
        lastReloadSuccessTime = registry.makeGauge(descriptor: .named(
            "hookgate_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration load."))
        lastReloadSuccessTime.set(Double(WallClock.seconds()))
        clientConnectionsOpen = CellGauge(registry.makeGauge(descriptor: .named(
            "hookgate_client_connections_open", "Client connections open on the webhook listener, all workers.")))
        clientConnectionsAccepted = CellCounter(registry.makeCounter(descriptor: .named(
            "hookgate_client_connections_accepted_total", "Client connections accepted on the webhook listener.")))
        registry.makeGauge(descriptor: .named("hookgate_build_info", "The running hookgate's version (always 1)."),
                           labels: [("version", HookgateVersion.current)]).set(1.0)
        process = ProcessMetrics(registry: registry)
    }

    private func cached<T: AnyObject>(_ key: String, _ make: () -> T) -> T {
        cache.withLock { entries in
            if let found = entries[key] as? T { return found }
            let made = make()
            entries[key] = made
            return made
        }
    }

    func requestStarted() { inFlight.add(1) }

    func clientConnectionAccepted() {
        clientConnectionsAccepted.increment()
        clientConnectionsOpen.add(1)
    }

    func clientConnectionClosed() { clientConnectionsOpen.add(-1) }

    /// The series of one route, made once and then held by the compiled route, so that a request
    /// records its metrics without building a key or taking the cache lock.
    func route(named name: String) -> RouteMetrics {
        cached("route|\(name)") { made(RouteMetrics(route: name, registry: registry, inFlight: inFlight, forwards: true,
                                                    requestDurations: requestDurations, upstreamDurations: upstreamDurations)) }
    }

    private func made(_ route: RouteMetrics) -> RouteMetrics {
        routes.withLock { $0.append(route) }
        return route
    }

    /// Requests that matched no route or could not be parsed. They are never forwarded, so they
    /// have no upstream series (which would stay empty forever).
    private(set) lazy var unrouted = cached("route|") {
        made(RouteMetrics(route: "none", registry: registry, inFlight: inFlight, forwards: false,
                          requestDurations: requestDurations, upstreamDurations: upstreamDurations))
    }

    func reloaded(success: Bool) {
        (success ? reloadSuccess : reloadFailure).increment()
        lastReloadSuccessful.set(success ? 1.0 : 0.0)
        if success { lastReloadSuccessTime.set(Double(WallClock.seconds())) }
    }

    /// The exposition text, with the dedup ledgers' sizes, the process's figures and the
    /// listener certificate's expiry read at scrape time.
    func exposition(ledger: SharedLedger, listenerTLS: TLSContext?) -> [UInt8] {
        scrapeLock.lock()
        defer { scrapeLock.unlock() }
        process.update()
        if let notAfter = listenerTLS?.certificateNotAfter() {
            cached("tls|listen") {
                registry.makeGauge(descriptor: .named("hookgate_tls_certificate_expiry_timestamp_seconds",
                                                      "Unix time at which the listener's certificate expires."),
                                   labels: [("listener", "listen")])
            }.set(notAfter)
        }
        for stat in ledger.statistics() {
            cached("dedup|\(stat.route)") {
                registry.makeGauge(descriptor: .named("hookgate_dedup_entries", "Delivered event ids remembered."),
                                   labels: [("route", stat.route)])
            }.set(Double(stat.entries))
            cached("dedupflight|\(stat.route)") {
                registry.makeGauge(descriptor: .named("hookgate_dedup_in_flight", "Event ids being forwarded right now."),
                                   labels: [("route", stat.route)])
            }.set(Double(stat.inFlight))
            let evictions = cached("evict|\(stat.route)") {
                registry.makeCounter(descriptor: .named("hookgate_dedup_evictions_total",
                                                        "Delivered ids forgotten early to stay within dedup.capacity."),
                                     labels: [("route", stat.route)])
            }
            let delta = stat.evictions - evictionsSeen[stat.route, default: 0]
            if delta > 0 { evictions.increment(by: Int64(delta)) }
            evictionsSeen[stat.route] = stat.evictions
        }
        inFlight.fold()
        clientConnectionsOpen.fold()
        clientConnectionsAccepted.fold()
        for route in routes.withLock({ $0 }) { route.fold() }
        var text = registry.emitToBuffer()
        requestDurations.emit(into: &text)
        upstreamDurations.emit(into: &text)
        return text
    }
}

/// One route's series. Counters for an outcome/reason/status triple are made on first use; every
/// figure a request records goes to the calling thread's metric cells (`MetricCells`), without a lock.
final class RouteMetrics {
    let route: String
    private let registry: PrometheusCollectorRegistry
    private let inFlight: CellGauge
    /// Guards making a counter and `made`.
    private let lock = NSLock()
    /// Every counter made, for the scrape; also what keeps the objects `slots` points to alive.
    private var made: [Int: CellCounter] = [:]
    /// `Reason.allCases`, made once (the synthesized property builds a new array on every use).
    private static let reasons = Reason.allCases
    private let requestDuration: CellDurationHistogram
    /// Nil for the unrouted requests, which are never forwarded.
    private let upstreamDuration: CellDurationHistogram?
    private let connections: CellGauge?
    /// Counters by key, read without a lock: open addressing over `slotCount` pairs of (key + 1,
    /// counter address); a pair is written under `lock`, the address first, then the key with a
    /// release store. Full (three quarters used): later keys are found in `made` under the lock.
    private static let slotCount = 512
    private let slotKeys: UnsafeMutablePointer<Atomic<Int>>
    private let slotCounters: UnsafeMutablePointer<Atomic<Int>>
    private var slotsUsed = 0
    /// Keys of `hookgate_upstream_responses_total` series, apart from the requests' keys.
    private static let upstreamKeyBase = 1 << 40

    init(route: String, registry: PrometheusCollectorRegistry, inFlight: CellGauge, forwards: Bool,
         requestDurations: DurationHistogramFamily, upstreamDurations: DurationHistogramFamily) {
        self.route = route
        self.registry = registry
        self.inFlight = inFlight
        requestDuration = requestDurations.make(labels: [("route", route)], buckets: GatewayMetrics.latencyBuckets)
        upstreamDuration = forwards ? upstreamDurations.make(labels: [("route", route)], buckets: GatewayMetrics.latencyBuckets) : nil
        connections = forwards ? CellGauge(registry.makeGauge(
            descriptor: .named("hookgate_upstream_connections_in_use", "Upstream connections carrying a request, all workers."),
            labels: [("route", route)])) : nil
        slotKeys = calloc(Self.slotCount, MemoryLayout<Atomic<Int>>.stride)!.assumingMemoryBound(to: Atomic<Int>.self)
        slotCounters = calloc(Self.slotCount, MemoryLayout<Atomic<Int>>.stride)!.assumingMemoryBound(to: Atomic<Int>.self)
    }

    /// One answered request: its outcome, reason (nil: the upstream's answer was relayed) and
    /// the status sent to the client.
    func answered(outcome: Outcome, reason: Reason?, status: Int, microseconds: Int64) {
        inFlight.add(-1)
        let reasonIndex = reason.map { Self.reasons.firstIndex(of: $0)! + 1 } ?? 0
        let key = (outcome.ordinal * 1000 + reasonIndex) * 1000 + min(max(status, 0), 999)
        counter(key) {
            registry.makeCounter(
                descriptor: .named("hookgate_requests_total", "Answered requests by route, outcome, reason and status code sent."),
                labels: [("route", route), ("outcome", outcome.rawValue), ("reason", reason?.rawValue ?? "upstream_answer"),
                         ("code", String(status))])
        }.increment()
        requestDuration.recordNanoseconds(microseconds * 1000)
    }

    /// One forward's result: status class (`2xx`, `4xx`, `429`, `5xx`, or `error` when no answer
    /// came) and latency.
    func upstreamAnswered(status: Int?, microseconds: Int64) {
        let key: Int = switch status {
        case nil: 0
        case 429?: 429
        case let s?: s / 100
        }
        counter(Self.upstreamKeyBase + key) {
            let statusClass = key == 0 ? "error" : key == 429 ? "429" : "\(key)xx"
            return registry.makeCounter(
                descriptor: .named("hookgate_upstream_responses_total", "Upstream answers by status class; error = unreachable or timed out."),
                labels: [("route", route), ("class", statusClass)])
        }.increment()
        upstreamDuration?.recordNanoseconds(microseconds * 1000)
    }

    func connectionsInUse(change: Double) { connections?.add(Int(change)) }

    /// At scrape time, under the scrape lock: the cells into the registry's counters and gauges.
    func fold() {
        lock.lock()
        let counters = Array(made.values)
        lock.unlock()
        for counter in counters { counter.fold() }
        connections?.fold()
    }

    @inline(__always)
    private func counter(_ key: Int, _ make: () -> Counter) -> CellCounter {
        let mask = Self.slotCount - 1
        var slot = Self.firstSlot(key)
        for _ in 0..<Self.slotCount {
            let found = slotKeys[slot].load(ordering: .acquiring)
            if found == key + 1, let address = UnsafeRawPointer(bitPattern: slotCounters[slot].load(ordering: .relaxed)) {
                return Unmanaged<CellCounter>.fromOpaque(address).takeUnretainedValue()
            }
            if found == 0 { break }
            slot = (slot + 1) & mask
        }
        return madeCounter(key, make)
    }

    @inline(__always)
    private static func firstSlot(_ key: Int) -> Int {
        Int(truncatingIfNeeded: (UInt(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> 54) & (slotCount - 1)
    }

    private func madeCounter(_ key: Int, _ make: () -> Counter) -> CellCounter {
        lock.lock()
        defer { lock.unlock() }
        if let found = made[key] { return found }
        let counter = CellCounter(make())
        made[key] = counter
        if slotsUsed < Self.slotCount * 3 / 4 {
            var slot = Self.firstSlot(key)
            while slotKeys[slot].load(ordering: .relaxed) != 0 { slot = (slot + 1) & (Self.slotCount - 1) }
            slotCounters[slot].store(Int(bitPattern: Unmanaged.passUnretained(counter).toOpaque()), ordering: .relaxed)
            slotKeys[slot].store(key + 1, ordering: .releasing)
            slotsUsed += 1
        }
        return counter
    }
}

extension MetricNameDescriptor {
    /// A descriptor for a name written in full (swift-prometheus joins the parts with `_`).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
