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
    private var evictionsSeen: [String: Int] = [:]
    private let scrapeLock = NSLock()

    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(25),
    ]

    init() {
        inFlight = registry.makeGauge(name: "hookgate_requests_in_flight", help: "Requests received and not yet answered.")
        reloadSuccess = registry.makeCounter(name: "hookgate_config_reloads_total", labels: [("result", "success")],
                                             help: "Configuration reloads by result.")
        reloadFailure = registry.makeCounter(name: "hookgate_config_reloads_total", labels: [("result", "failure")],
                                             help: "Configuration reloads by result.")
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

    /// The series of one route, made once and then held by the compiled route, so that a request
    /// records its metrics without building a key or taking the cache lock.
    func route(named name: String) -> RouteMetrics {
        cached("route|\(name)") { RouteMetrics(route: name, registry: registry, inFlight: inFlight) }
    }

    /// Requests that matched no route or could not be parsed.
    private(set) lazy var unrouted = route(named: "none")

    func reloaded(success: Bool) {
        (success ? reloadSuccess : reloadFailure).increment()
    }

    /// The exposition text, with the dedup ledgers' sizes read at scrape time.
    func exposition(ledger: SharedLedger) -> [UInt8] {
        scrapeLock.lock()
        defer { scrapeLock.unlock() }
        for stat in ledger.statistics() {
            cached("dedup|\(stat.route)") {
                registry.makeGauge(name: "hookgate_dedup_entries", labels: [("route", stat.route)],
                                   help: "Delivered event ids remembered.")
            }.set(Double(stat.entries))
            cached("dedupflight|\(stat.route)") {
                registry.makeGauge(name: "hookgate_dedup_in_flight", labels: [("route", stat.route)],
                                   help: "Event ids being forwarded right now.")
            }.set(Double(stat.inFlight))
            let evictions = cached("evict|\(stat.route)") {
                registry.makeCounter(name: "hookgate_dedup_evictions_total", labels: [("route", stat.route)],
                                     help: "Delivered ids forgotten early to stay within dedup.capacity.")
            }
            let delta = stat.evictions - evictionsSeen[stat.route, default: 0]
            if delta > 0 { evictions.increment(by: Int64(delta)) }
            evictionsSeen[stat.route] = stat.evictions
        }
        return registry.emitToBuffer()
    }
}

/// One route's series. Counters for an outcome/reason pair are made on first use.
final class RouteMetrics {
    let route: String
    private let registry: PrometheusCollectorRegistry
    private let inFlight: Gauge
    private let lock = NSLock()
    private var requests: [Int: Counter] = [:]
    /// Keyed by status class: 0 = no answer, 429, else the hundreds digit.
    private var upstreamClasses: [Int: Counter] = [:]
    /// `Reason.allCases`, made once (the synthesized property builds a new array on every use).
    private static let reasons = Reason.allCases
    private let requestDuration: DurationHistogram
    private let upstreamDuration: DurationHistogram
    private let connections: Gauge

    init(route: String, registry: PrometheusCollectorRegistry, inFlight: Gauge) {
        self.route = route
        self.registry = registry
        self.inFlight = inFlight
        requestDuration = registry.makeDurationHistogram(name: "hookgate_request_duration_seconds", labels: [("route", route)],
                                                         buckets: GatewayMetrics.latencyBuckets, help: "Time from request to answer.")
        upstreamDuration = registry.makeDurationHistogram(name: "hookgate_upstream_duration_seconds", labels: [("route", route)],
                                                          buckets: GatewayMetrics.latencyBuckets,
                                                          help: "Time from forward to the upstream's answer.")
        connections = registry.makeGauge(name: "hookgate_upstream_connections_in_use", labels: [("route", route)],
                                         help: "Upstream connections carrying a request, all workers.")
    }

    /// One answered request: its outcome and reason (nil: the upstream's answer was relayed).
    func answered(outcome: Outcome, reason: Reason?, microseconds: Int64) {
        inFlight.decrement()
        let key = outcome.ordinal * 1000 + (reason.map { Self.reasons.firstIndex(of: $0)! + 1 } ?? 0)
        lock.lock()
        var counter = requests[key]
        if counter == nil {
            counter = registry.makeCounter(
                name: "hookgate_requests_total",
                labels: [("route", route), ("outcome", outcome.rawValue), ("reason", reason?.rawValue ?? "upstream_answer")],
                help: "Answered requests by route, outcome and reason.")
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
            counter = registry.makeCounter(name: "hookgate_upstream_responses_total", labels: [("route", route), ("class", statusClass)],
                                           help: "Upstream answers by status class; error = unreachable or timed out.")
            upstreamClasses[key] = counter
        }
        lock.unlock()
        counter!.increment()
        upstreamDuration.recordNanoseconds(microseconds * 1000)
    }

    func connectionsInUse(change: Double) { connections.increment(by: change) }
}
