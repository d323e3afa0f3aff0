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

    /// One answered request: its outcome and reason, and the end-to-end latency.
    func requestAnswered(route: String?, outcome: Outcome, reason: String?, microseconds: Int64) {
        inFlight.decrement()
        let routeLabel = route ?? "none"
        let reasonLabel = reason ?? "upstream_answer"
        cached("req|\(routeLabel)|\(outcome.rawValue)|\(reasonLabel)") {
            registry.makeCounter(name: "hookgate_requests_total",
                                 labels: [("route", routeLabel), ("outcome", outcome.rawValue), ("reason", reasonLabel)],
                                 help: "Answered requests by route, outcome and reason.")
        }.increment()
        cached("lat|\(routeLabel)") {
            registry.makeDurationHistogram(name: "hookgate_request_duration_seconds", labels: [("route", routeLabel)],
                                           buckets: Self.latencyBuckets, help: "Time from request to answer.")
        }.recordNanoseconds(microseconds * 1000)
    }

    /// One forward's result at the upstream: its status class (`2xx`, `4xx`, `429`, `5xx`, or
    /// `error` when no answer came) and latency.
    func upstreamAnswered(route: String, status: Int?, microseconds: Int64) {
        let statusClass: String
        switch status {
        case nil: statusClass = "error"
        case 429?: statusClass = "429"
        case let s?: statusClass = "\(s / 100)xx"
        }
        cached("up|\(route)|\(statusClass)") {
            registry.makeCounter(name: "hookgate_upstream_responses_total", labels: [("route", route), ("class", statusClass)],
                                 help: "Upstream answers by status class; error = unreachable or timed out.")
        }.increment()
        cached("uplat|\(route)") {
            registry.makeDurationHistogram(name: "hookgate_upstream_duration_seconds", labels: [("route", route)],
                                           buckets: Self.latencyBuckets, help: "Time from forward to the upstream's answer.")
        }.recordNanoseconds(microseconds * 1000)
    }

    func connectionsInUse(route: String, change: Double) {
        cached("conn|\(route)") {
            registry.makeGauge(name: "hookgate_upstream_connections_in_use", labels: [("route", route)],
                               help: "Upstream connections carrying a request, all workers.")
        }.increment(by: change)
    }

    func reloaded(success: Bool) {
        (success ? reloadSuccess : reloadFailure).increment()
    }

    /// The exposition text, with the dedup ledgers' sizes read at scrape time.
    func exposition(ledgers: DeliveryLedgers) -> [UInt8] {
        scrapeLock.lock()
        defer { scrapeLock.unlock() }
        for stat in ledgers.statistics() {
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
