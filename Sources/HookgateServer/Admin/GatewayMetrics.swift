import Foundation
import HookgateCore
import Prometheus

/// The gateway's Prometheus metrics (swift-prometheus registry, text exposition on the admin
/// listener's `/metrics`). Labelled series are created on first use and cached.
final class GatewayMetrics {
    let registry = PrometheusCollectorRegistry()
    private let cache = Locked<[String: AnyObject]>([:])
    private let inFlight: Gauge
    private let reloadSuccess: Counter
    private let reloadFailure: Counter
    private let lastReloadSuccessful: Gauge
    private let lastReloadSuccessTime: Gauge
    private let clientConnectionsOpen: Gauge
    private let clientConnectionsAccepted: Counter
    private let process: ProcessMetrics
    private var evictionsSeen: [String: Int] = [:]
    private let scrapeLock = NSLock()

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(25),
    ]

    init() {
        inFlight = registry.makeGauge(descriptor: .named("hookgate_requests_in_flight", "Requests received and not yet answered."))
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
        clientConnectionsOpen = registry.makeGauge(descriptor: .named(
            "hookgate_client_connections_open", "Client connections open on the webhook listener, all workers."))
        clientConnectionsAccepted = registry.makeCounter(descriptor: .named(
            "hookgate_client_connections_accepted_total", "Client connections accepted on the webhook listener."))
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

    func requestStarted() { inFlight.increment() }

    func clientConnectionAccepted() {
        clientConnectionsAccepted.increment()
        clientConnectionsOpen.increment()
    }

    func clientConnectionClosed() { clientConnectionsOpen.decrement() }

    /// The series of one route, made once and then held by the compiled route, so that a request
    /// records its metrics without building a key or taking the cache lock.
    func route(named name: String) -> RouteMetrics {
        cached("route|\(name)") { RouteMetrics(route: name, registry: registry, inFlight: inFlight, forwards: true) }
    }

    /// Requests that matched no route or could not be parsed. They are never forwarded, so they
    /// have no upstream series (which would stay empty forever).
    private(set) lazy var unrouted = cached("route|") { RouteMetrics(route: "none", registry: registry, inFlight: inFlight, forwards: false) }

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
        return registry.emitToBuffer()
    }
}

/// One route's series. Counters for an outcome/reason/status triple are made on first use.
final class RouteMetrics {
    let route: String
    private let registry: PrometheusCollectorRegistry
    private let inFlight: Gauge
    private let lock = NSLock()
    /// Keyed by outcome, reason and the status sent, packed in one Int so that a request looks
    /// its counter up without building a String.
    private var requests: [Int: Counter] = [:]
    /// Keyed by status class: 0 = no answer, 429, else the hundreds digit.
    private var upstreamClasses: [Int: Counter] = [:]
    /// `Reason.allCases`, made once (the synthesized property builds a new array on every use).
    private static let reasons = Reason.allCases
    private let requestDuration: DurationHistogram
    /// Nil for the unrouted requests, which are never forwarded.
    private let upstreamDuration: DurationHistogram?
    private let connections: Gauge?

    init(route: String, registry: PrometheusCollectorRegistry, inFlight: Gauge, forwards: Bool) {
        self.route = route
        self.registry = registry
        self.inFlight = inFlight
        requestDuration = registry.makeDurationHistogram(
            descriptor: .named("hookgate_request_duration_seconds", "Time from request to answer."),
            labels: [("route", route)], buckets: GatewayMetrics.latencyBuckets)
        upstreamDuration = forwards ? registry.makeDurationHistogram(
            descriptor: .named("hookgate_upstream_duration_seconds", "Time from forward to the upstream's answer."),
            labels: [("route", route)], buckets: GatewayMetrics.latencyBuckets) : nil
        connections = forwards ? registry.makeGauge(
            descriptor: .named("hookgate_upstream_connections_in_use", "Upstream connections carrying a request, all workers."),
            labels: [("route", route)]) : nil
    }

    /// One answered request: its outcome, reason (nil: the upstream's answer was relayed) and
    /// the status sent to the client.
    func answered(outcome: Outcome, reason: Reason?, status: Int, microseconds: Int64) {
        inFlight.decrement()
        let reasonIndex = reason.map { Self.reasons.firstIndex(of: $0)! + 1 } ?? 0
        let key = (outcome.ordinal * 1000 + reasonIndex) * 1000 + min(max(status, 0), 999)
        lock.lock()
        var counter = requests[key]
        if counter == nil {
            counter = registry.makeCounter(
                descriptor: .named("hookgate_requests_total", "Answered requests by route, outcome, reason and status code sent."),
                labels: [("route", route), ("outcome", outcome.rawValue), ("reason", reason?.rawValue ?? "upstream_answer"),
                         ("code", String(status))])
            requests[key] = counter
        }
        lock.unlock()
        counter!.increment()
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
        lock.lock()
        var counter = upstreamClasses[key]
        if counter == nil {
            let statusClass = key == 0 ? "error" : key == 429 ? "429" : "\(key)xx"
            counter = registry.makeCounter(
                descriptor: .named("hookgate_upstream_responses_total", "Upstream answers by status class; error = unreachable or timed out."),
                labels: [("route", route), ("class", statusClass)])
            upstreamClasses[key] = counter
        }
        lock.unlock()
        counter!.increment()
        upstreamDuration?.recordNanoseconds(microseconds * 1000)
    }

    func connectionsInUse(change: Double) { connections?.increment(by: change) }
}

extension MetricNameDescriptor {
    /// A descriptor for a name written in full (swift-prometheus joins the parts with `_`).
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
